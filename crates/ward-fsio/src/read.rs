//! Bounded reads and secret key files.

use crate::error::{io, Error, Result, Step};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use zeroize::Zeroizing;

/// The size to report for a file that had more than `bound` bytes: its metadata length when that
/// agrees, else unknown (a pipe, or a file that grew).
fn size_beyond(file: &File, bound: u64) -> Option<u64> {
    file.metadata()
        .ok()
        .map(|m| m.len())
        .filter(|&len| len > bound)
}

/// Reads all of `path` if it holds at most `max_bytes`; otherwise [`Error::TooLarge`] with the
/// size found. Reads no more than `max_bytes + 1` bytes, whatever the metadata says (a file can
/// grow, a pipe has no size).
pub fn read_bounded(path: impl AsRef<Path>, max_bytes: u64) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(io(Step::Opening, path))?;
    let mut bytes = Vec::new();
    (&file)
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io(Step::Reading, path))?;
    if bytes.len() as u64 > max_bytes {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            found: size_beyond(&file, max_bytes),
            limit: max_bytes,
        });
    }
    Ok(bytes)
}

/// [`read_bounded`] for secrets (a PEM private key): the bytes go into zeroized memory allocated
/// once at `max_bytes + 1`, so reading never reallocates and leaves no stray copy behind.
pub fn read_secret_bounded(path: impl AsRef<Path>, max_bytes: usize) -> Result<Zeroizing<Vec<u8>>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(io(Step::Opening, path))?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(max_bytes.saturating_add(1)));
    (&file)
        .take(max_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io(Step::Reading, path))?;
    if bytes.len() > max_bytes {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            found: size_beyond(&file, max_bytes as u64),
            limit: max_bytes as u64,
        });
    }
    Ok(bytes)
}

/// Reads a secret file that must hold exactly `len` bytes (a raw key) into zeroized memory.
///
/// Reads at most `len + 1` bytes into a buffer allocated once (so no stray copy is left by a
/// reallocation). A file of another length is [`Error::WrongLength`] with the size found; the
/// bytes themselves never appear in an error.
pub fn read_secret_exact(path: impl AsRef<Path>, len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let path = path.as_ref();
    let mut file = File::open(path).map_err(io(Step::Opening, path))?;
    let mut buf = Zeroizing::new(vec![0u8; len + 1]);
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io(Step::Reading, path)(e)),
        }
    }
    if filled != len {
        let found = if filled > len {
            size_beyond(&file, len as u64)
        } else {
            Some(filled as u64)
        };
        return Err(Error::WrongLength {
            path: path.to_owned(),
            found,
            expected: len,
        });
    }
    buf.truncate(len);
    Ok(buf)
}

/// Creates `path` new with mode 0600, writes `bytes` and syncs the file and its directory.
///
/// Never overwrites: an existing file is [`Error::AlreadyExists`] and stays as it was. If the
/// write fails, the partial file is removed.
pub fn create_secret_file(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == ErrorKind::AlreadyExists {
                Error::AlreadyExists {
                    path: path.to_owned(),
                }
            } else {
                io(Step::Creating, path)(e)
            }
        })?;
    let written = file
        .write_all(bytes)
        .map_err(io(Step::Writing, path))
        .and_then(|()| file.sync_all().map_err(io(Step::Syncing, path)));
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(Step::SyncingDir, dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn bounded_reads_accept_up_to_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, [7u8; 10]).unwrap();
        assert_eq!(read_bounded(&p, 10).unwrap(), [7u8; 10]);
        assert_eq!(read_bounded(&p, 11).unwrap(), [7u8; 10]);
        let e = read_bounded(&p, 9).unwrap_err();
        assert!(
            matches!(
                e,
                Error::TooLarge {
                    found: Some(10),
                    limit: 9,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("{}: 10 bytes, over the limit of 9 bytes", p.display())
        );
        let e = read_bounded(d.path().join("missing"), 9).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Io {
                    step: Step::Opening,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            !e.to_string().contains("No such file"),
            "cause is the source"
        );
    }

    #[test]
    fn bounded_reads_stop_at_the_limit_on_endless_input() {
        // /dev/zero says it is 0 bytes long and never ends: only the read bound stops it.
        let e = read_bounded("/dev/zero", 1000).unwrap_err();
        assert!(
            matches!(
                e,
                Error::TooLarge {
                    found: None,
                    limit: 1000,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("more than 1000 bytes"), "{e}");
    }

    #[test]
    fn secret_files_are_created_private_and_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        create_secret_file(&p, b"0123456789abcdef").unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let e = create_secret_file(&p, b"other").unwrap_err();
        assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
        assert!(e
            .to_string()
            .ends_with("already exists; refusing to overwrite it"));
        assert_eq!(std::fs::read(&p).unwrap(), b"0123456789abcdef");
        let e = create_secret_file(d.path().join("no/dir/k"), b"x").unwrap_err();
        assert!(
            matches!(
                e,
                Error::Io {
                    step: Step::Creating,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn secret_reads_check_the_exact_length_and_never_show_the_bytes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        std::fs::write(&p, b"0123456789abcdef").unwrap();
        assert_eq!(&read_secret_exact(&p, 16).unwrap()[..], b"0123456789abcdef");
        for (content, found) in [
            (&b"0123456789abcde"[..], "15 bytes"),
            (b"0123456789abcdef0", "17 bytes"),
            (b"", "0 bytes"),
            (b"0123456789abcdef0123456789", "26 bytes"),
        ] {
            std::fs::write(&p, content).unwrap();
            let e = read_secret_exact(&p, 16).unwrap_err();
            assert!(
                matches!(e, Error::WrongLength { expected: 16, .. }),
                "{e:?}"
            );
            let text = e.to_string();
            assert_eq!(
                text,
                format!("{}: {found}, expected exactly 16", p.display())
            );
            assert!(!text.contains("0123"), "no key bytes in errors: {text}");
        }
        let e = read_secret_exact("/dev/zero", 16).unwrap_err();
        assert!(e.to_string().contains("more than 16 bytes"), "{e}");
    }
}
