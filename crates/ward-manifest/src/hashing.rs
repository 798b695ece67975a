//! Filling in trusted-file hashes at sign time (directories expand to every file inside).

use crate::error::Error;
use crate::schema::{FileUri, HashedFile, Manifest, Sha256, TrustedFile};
use sha2::Digest;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Resolves a `file:` URI against the manifest's directory.
pub fn resolve(base_dir: &Path, uri: &FileUri) -> PathBuf {
    let p = Path::new(uri.path());
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// SHA-256 of a file, streamed; `progress` gets the bytes read so far.
pub fn sha256_file(path: &Path, progress: &mut dyn FnMut(u64)) -> std::io::Result<Sha256> {
    let mut file = fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(done);
    }
    Ok(Sha256(hasher.finalize().into()))
}

/// Called before each file is hashed: (uri, host path, size).
pub type OnFile<'a> = dyn FnMut(&FileUri, &Path, u64) + 'a;

impl Manifest {
    /// Returns the manifest with every trusted file (and the provisioning CA chain) hashed:
    /// directories become one entry per regular file inside (recursively, sorted), entries that
    /// already carry a hash are checked against the file.
    pub fn hash_trusted_files(
        &self,
        base_dir: &Path,
        on_file: &mut OnFile<'_>,
    ) -> Result<Manifest, Error> {
        let mut out = self.clone();
        let mut hashed: BTreeMap<FileUri, Sha256> = BTreeMap::new();
        for entry in &self.sgx.trusted_files {
            for (uri, expected) in expand(base_dir, entry)? {
                let sha = hash_one(base_dir, &uri, expected, on_file)?;
                hashed.insert(uri, sha);
            }
        }
        out.sgx.trusted_files = hashed
            .into_iter()
            .map(|(uri, sha256)| TrustedFile::Hashed(HashedFile { uri, sha256 }))
            .collect();
        if let Some(pr) = &mut out.provision {
            let uri = pr.ca_chain.uri().clone();
            let expected = match &pr.ca_chain {
                TrustedFile::Hashed(h) => Some(h.sha256),
                TrustedFile::Uri(_) => None,
            };
            let path = resolve(base_dir, &uri);
            if path.is_dir() {
                return Err(Error::Io {
                    context: format!(
                        "provision.ca_chain {uri} ({}) is a directory; name the PEM file",
                        path.display()
                    ),
                    source: std::io::ErrorKind::InvalidInput.into(),
                });
            }
            let sha256 = hash_one(base_dir, &uri, expected, on_file)?;
            pr.ca_chain = TrustedFile::Hashed(HashedFile { uri, sha256 });
        }
        Ok(out)
    }
}

fn hash_one(
    base_dir: &Path,
    uri: &FileUri,
    expected: Option<Sha256>,
    on_file: &mut OnFile<'_>,
) -> Result<Sha256, Error> {
    let path = resolve(base_dir, uri);
    let size = fs::metadata(&path)
        .map_err(Error::io(format!(
            "trusted file {uri} ({})",
            path.display()
        )))?
        .len();
    on_file(uri, &path, size);
    let found = sha256_file(&path, &mut |_| {}).map_err(Error::io(format!(
        "hashing trusted file {uri} ({})",
        path.display()
    )))?;
    match expected {
        Some(e) if e != found => Err(Error::StaleHash {
            uri: uri.to_string(),
            path,
            expected: e.to_string(),
            found: found.to_string(),
        }),
        _ => Ok(found),
    }
}

// One entry becomes the files it names, each with the hash written for it (if any).
fn expand(base_dir: &Path, entry: &TrustedFile) -> Result<Vec<(FileUri, Option<Sha256>)>, Error> {
    let uri = entry.uri();
    let path = resolve(base_dir, uri);
    let meta = fs::metadata(&path).map_err(Error::io(format!(
        "trusted file {uri} ({})",
        path.display()
    )))?;
    if !meta.is_dir() {
        if uri.is_dir_syntax() {
            return Err(Error::Io {
                context: format!(
                    "trusted file {uri} ends in / but {} is not a directory",
                    path.display()
                ),
                source: std::io::ErrorKind::NotADirectory.into(),
            });
        }
        let expected = match entry {
            TrustedFile::Hashed(h) => Some(h.sha256),
            TrustedFile::Uri(_) => None,
        };
        return Ok(vec![(uri.clone(), expected)]);
    }
    if let TrustedFile::Hashed(_) = entry {
        return Err(Error::Io {
            context: format!(
                "trusted file {uri} has a sha256 but {} is a directory",
                path.display()
            ),
            source: std::io::ErrorKind::IsADirectory.into(),
        });
    }
    let mut files = Vec::new();
    walk(&path, &mut files)?;
    files.sort();
    let prefix = uri.path().trim_end_matches('/');
    files
        .into_iter()
        .map(|rel| {
            let rel = rel.to_str().ok_or_else(|| Error::Io {
                context: format!(
                    "{} under trusted directory {uri} is not valid UTF-8",
                    rel.display()
                ),
                source: std::io::ErrorKind::InvalidData.into(),
            })?;
            let joined = format!("{prefix}/{rel}");
            let file_uri = FileUri::from_path(&joined).map_err(|m| Error::Io {
                context: m,
                source: std::io::ErrorKind::InvalidData.into(),
            })?;
            Ok((file_uri, None))
        })
        .collect()
}

// Regular files under `dir`, relative to it.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
        let entries = fs::read_dir(dir).map_err(Error::io(format!("listing {}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(Error::io(format!("listing {}", dir.display())))?;
            let path = entry.path();
            // Follow symlinks as a read would; the VFS re-checks containment at run time.
            let meta =
                fs::metadata(&path).map_err(Error::io(format!("reading {}", path.display())))?;
            if meta.is_dir() {
                go(root, &path, out)?;
            } else if meta.is_file() {
                out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
            }
        }
        Ok(())
    }
    go(dir, dir, out)
}
