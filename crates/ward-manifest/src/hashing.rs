//! Filling in trusted-file hashes at sign time (directories become trusted trees).

use crate::error::Error;
use crate::schema::{FileMode, FileUri, HashedFile, Manifest, Mtime, Sha256, TreeRef, TrustedFile};
use crate::tree::{TrustTree, TrustTrees, DEFAULT_CHUNK_SIZE};
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

/// A manifest with every trusted file hashed, and the trees of its trusted directories (to be
/// written to the sidecar that `sgx.trusted_trees` names).
#[derive(Debug, Clone)]
pub struct Hashed {
    /// The manifest, its trusted files hashed and its directories pinned by tree digest.
    pub manifest: Manifest,
    /// One tree per trusted directory, in the manifest's order.
    pub trees: TrustTrees,
}

impl Manifest {
    /// Returns the manifest with every trusted file (and the provisioning CA chain) hashed, and
    /// every trusted directory recorded as a [`TrustTree`] pinned by its digest; entries that
    /// already carry a hash or digest are checked against the files. `on_file` is called for
    /// each file hashed (inside directories too).
    pub fn hash_trusted_files(
        &self,
        base_dir: &Path,
        on_file: &mut OnFile<'_>,
    ) -> Result<Hashed, Error> {
        let mut out = self.clone();
        let mut hashed: BTreeMap<FileUri, HashedFile> = BTreeMap::new();
        let mut trees: BTreeMap<FileUri, TrustTree> = BTreeMap::new();
        for entry in &self.sgx.trusted_files {
            let uri = entry.uri();
            let path = resolve(base_dir, uri);
            let meta = fs::metadata(&path).map_err(Error::io(format!(
                "trusted file {uri} ({})",
                path.display()
            )))?;
            if meta.is_dir() {
                let expected = match entry {
                    TrustedFile::Hashed(_) => {
                        return Err(Error::Io {
                            context: format!(
                                "trusted file {uri} has a sha256 but {} is a directory",
                                path.display()
                            ),
                            source: std::io::ErrorKind::IsADirectory.into(),
                        })
                    }
                    TrustedFile::Tree(t) => Some(t.tree),
                    TrustedFile::Uri(_) => None,
                };
                if trees.contains_key(uri) {
                    continue;
                }
                let tree = build_tree(uri, &path, on_file)?;
                let found = tree.digest();
                if let Some(e) = expected.filter(|e| *e != found) {
                    return Err(Error::StaleTree {
                        uri: uri.to_string(),
                        path,
                        expected: e.to_string(),
                        found: found.to_string(),
                    });
                }
                trees.insert(uri.clone(), tree);
                continue;
            }
            let expected = match entry {
                _ if uri.is_dir_syntax() => {
                    return Err(Error::Io {
                        context: format!(
                            "trusted file {uri} ends in / but {} is not a directory",
                            path.display()
                        ),
                        source: std::io::ErrorKind::NotADirectory.into(),
                    })
                }
                TrustedFile::Tree(_) => {
                    return Err(Error::Io {
                        context: format!(
                            "trusted file {uri} has a tree but {} is not a directory",
                            path.display()
                        ),
                        source: std::io::ErrorKind::NotADirectory.into(),
                    })
                }
                TrustedFile::Hashed(h) => Some(h.sha256),
                TrustedFile::Uri(_) => None,
            };
            let sha = hash_one(base_dir, uri, expected, on_file)?;
            hashed.insert(uri.clone(), sha);
        }
        let mut all = TrustTrees::default();
        out.sgx.trusted_files = hashed
            .into_values()
            .map(TrustedFile::Hashed)
            .chain(trees.into_values().map(|t| {
                let r = TreeRef {
                    uri: t.uri().clone(),
                    tree: t.digest(),
                };
                all.push(t);
                TrustedFile::Tree(r)
            }))
            .collect();
        if all.is_empty() {
            out.sgx.trusted_trees = None;
        }
        // Every owner's CA is pinned, so the host can impersonate none of their servers.
        if let Some(pr) = &mut out.provision {
            for ca_chain in pr.ca_chains_mut() {
                let uri = ca_chain.uri().clone();
                let expected = match &*ca_chain {
                    TrustedFile::Hashed(h) => Some(h.sha256),
                    _ => None,
                };
                let path = resolve(base_dir, &uri);
                if path.is_dir() {
                    return Err(Error::Io {
                        context: format!(
                            "provisioning CA chain {uri} ({}) is a directory; name the PEM file",
                            path.display()
                        ),
                        source: std::io::ErrorKind::InvalidInput.into(),
                    });
                }
                let sha256 = hash_one(base_dir, &uri, expected, on_file)?.sha256;
                *ca_chain = TrustedFile::Hashed(HashedFile::new(uri, sha256));
            }
        }
        Ok(Hashed {
            manifest: out,
            trees: all,
        })
    }
}

// Records directory `path` (the manifest's `uri`) as a tree, reporting each file as done.
fn build_tree(uri: &FileUri, path: &Path, on_file: &mut OnFile<'_>) -> Result<TrustTree, Error> {
    let prefix = uri.path().trim_end_matches('/');
    let root = path.to_owned();
    TrustTree::build(uri, path, DEFAULT_CHUNK_SIZE, &mut |file: &Path, size| {
        let rel = file.strip_prefix(&root).unwrap_or(file);
        // Names were checked to be UTF-8 by the walk.
        let shown = format!("{prefix}/{}", rel.display());
        if let Ok(u) = FileUri::from_path(&shown) {
            on_file(&u, file, size);
        }
    })
    .map_err(|source| Error::Tree {
        uri: uri.to_string(),
        source: Box::new(source),
    })
}

fn hash_one(
    base_dir: &Path,
    uri: &FileUri,
    expected: Option<Sha256>,
    on_file: &mut OnFile<'_>,
) -> Result<HashedFile, Error> {
    let path = resolve(base_dir, uri);
    let md = fs::metadata(&path).map_err(Error::io(format!(
        "trusted file {uri} ({})",
        path.display()
    )))?;
    on_file(uri, &path, md.len());
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
        _ => Ok(HashedFile {
            uri: uri.clone(),
            sha256: found,
            mode: Some(FileMode(
                std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777,
            )),
            mtime: Some(Mtime::of(&md)),
        }),
    }
}
