//! Atomic outputs: a temporary beside the target, renamed over it only when complete.

use crate::cleanup;
use crate::error::{io, Error, Result, Step};
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The suffix of every ward temporary: `.NAME.XXXXXX.ward-tmp`.
pub const TEMP_SUFFIX: &str = ".ward-tmp";

/// Length of the random part of a temporary's name.
const RANDOM_LEN: usize = 6;

/// True when `name` (a file name, not a path) is a ward temporary, `.NAME.XXXXXX.ward-tmp`.
///
/// Directory walks use it to skip the leftovers of killed runs instead of taking them as inputs.
pub fn is_temp_name(name: impl AsRef<OsStr>) -> bool {
    let name = name.as_ref().as_bytes();
    name.len() > 1 + RANDOM_LEN + TEMP_SUFFIX.len()
        && name.starts_with(b".")
        && name.ends_with(TEMP_SUFFIX.as_bytes())
}

/// True when `name` is a temporary of the output called `target_name` (and not, say, of
/// `target_name.ext`): `.` + target_name + `.` + 6 alphanumerics + [`TEMP_SUFFIX`].
fn is_temp_of(name: &[u8], target_name: &[u8]) -> bool {
    let prefix_len = 1 + target_name.len() + 1;
    name.len() == prefix_len + RANDOM_LEN + TEMP_SUFFIX.len()
        && name[0] == b'.'
        && name[1..].starts_with(target_name)
        && name[prefix_len - 1] == b'.'
        && name[prefix_len..prefix_len + RANDOM_LEN]
            .iter()
            .all(u8::is_ascii_alphanumeric)
        && name.ends_with(TEMP_SUFFIX.as_bytes())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Six random alphanumerics. Uniqueness comes from `create_new` and a retry, so the std hasher's
/// per-process random keys are random enough; this needs no RNG crate.
fn random_part(attempt: u32) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = RandomState::new().hash_one((std::process::id(), nanos, attempt));
    (0..RANDOM_LEN)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// An output in progress: a temporary file beside its target.
///
/// Write to it (it is [`Write`], and [`file_mut`](Self::file_mut) gives the [`File`] for
/// positioned writes), then [`commit`](Self::commit). Dropped uncommitted (an error, a panic),
/// the temporary is removed and the target is untouched. While it lives, the temporary is in the
/// registry that [`install_signal_cleanup`](crate::install_signal_cleanup) sweeps on SIGINT or
/// SIGTERM.
///
/// Two processes writing the same output at once are not supported: the second removes the
/// first one's temporary as stale, and the first then fails at its rename with a clear error.
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    temp: PathBuf,
    target: PathBuf,
    ticket: u64,
    stale_removed: Vec<PathBuf>,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temporary for `target` in the target's directory (created if missing), with
    /// mode 0600 until [`commit`](Self::commit) sets the final mode. First removes stale
    /// temporaries of the same target left by killed runs (see
    /// [`stale_removed`](Self::stale_removed)).
    pub fn create(target: impl AsRef<Path>) -> Result<AtomicFile> {
        let target = target.as_ref();
        let name = target
            .file_name()
            .ok_or_else(|| Error::NoFileName {
                path: target.to_owned(),
            })?
            .to_owned();
        // A rename over `/dev/null` would replace the device with a regular file (as root it
        // can). A symlink is fine: the rename replaces the link, not what it points to.
        if let Ok(md) = std::fs::symlink_metadata(target) {
            use std::os::unix::fs::FileTypeExt;
            let ft = md.file_type();
            let kind = if ft.is_char_device() {
                Some("character device")
            } else if ft.is_block_device() {
                Some("block device")
            } else if ft.is_fifo() {
                Some("FIFO")
            } else if ft.is_socket() {
                Some("socket")
            } else {
                None
            };
            if let Some(kind) = kind {
                return Err(Error::NotARegularFile {
                    path: target.to_owned(),
                    kind,
                });
            }
        }
        let dir = parent_dir(target);
        std::fs::create_dir_all(dir).map_err(io(Step::CreatingDir, dir))?;
        let stale_removed = remove_stale(dir, name.as_bytes())?;
        let mut attempt = 0;
        loop {
            let mut temp_name = std::ffi::OsString::from(".");
            temp_name.push(&name);
            temp_name.push(format!(".{}{TEMP_SUFFIX}", random_part(attempt)));
            let temp = dir.join(temp_name);
            let ticket = cleanup::register(&temp);
            match OpenOptions::new()
                .write(true)
                .read(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)
            {
                Ok(file) => {
                    return Ok(AtomicFile {
                        file,
                        temp,
                        target: target.to_owned(),
                        ticket,
                        stale_removed,
                        committed: false,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    cleanup::unregister(ticket);
                    attempt += 1;
                }
                Err(e) => {
                    cleanup::unregister(ticket);
                    return Err(io(Step::CreatingTemp, dir)(e));
                }
            }
        }
    }

    /// The temporary file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The temporary file, for writing.
    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// The temporary's path (it exists until commit or drop).
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// The target it will be renamed to.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Stale temporaries of this target (from killed runs) that [`create`](Self::create) removed.
    pub fn stale_removed(&self) -> &[PathBuf] {
        &self.stale_removed
    }

    /// Finishes the output: fsync, set `mode`, rename over the target, fsync the directory.
    ///
    /// On an error before the rename, the temporary is removed and the target is untouched.
    pub fn commit(mut self, mode: u32) -> Result<()> {
        self.file
            .sync_all()
            .map_err(io(Step::Syncing, &self.temp))?;
        self.file
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io(Step::SettingMode, &self.temp))?;
        std::fs::rename(&self.temp, &self.target).map_err(io(Step::Renaming, &self.target))?;
        self.committed = true;
        cleanup::unregister(self.ticket);
        let dir = parent_dir(&self.target);
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(Step::SyncingDir, dir))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
            cleanup::unregister(self.ticket);
        }
    }
}

/// Writes `bytes` to `target` atomically with `mode` (see [`AtomicFile`]).
pub fn write_atomic(target: impl AsRef<Path>, bytes: &[u8], mode: u32) -> Result<()> {
    let mut out = AtomicFile::create(target)?;
    let temp = out.path().to_owned();
    out.write_all(bytes).map_err(io(Step::Writing, temp))?;
    out.commit(mode)
}

/// Removes the stale temporaries of the output `name` in `dir`: those no live [`AtomicFile`] of
/// this process owns. Symlinks and directories are left alone.
fn remove_stale(dir: &Path, name: &[u8]) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return Err(io(Step::ListingDir, dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(Step::ListingDir, dir))?;
        if !is_temp_of(entry.file_name().as_bytes(), name) {
            continue;
        }
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_file()) && !cleanup::is_registered(&path) {
            remove_if_present(&path)?;
            removed.push(path);
        }
    }
    Ok(removed)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(Step::RemovingStale, path)(e)),
        _ => Ok(()),
    }
}

/// Removes every stale ward temporary (see [`is_temp_name`]) under `dir`, recursively, without
/// following symlinks; returns the paths removed, sorted. Temporaries of this process's live
/// outputs are kept.
pub fn clean_tree(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    fn rec(dir: &Path, removed: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries = std::fs::read_dir(dir)
            .map_err(io(Step::ListingDir, dir))?
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(io(Step::ListingDir, dir))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let ty = entry.file_type().map_err(io(Step::ListingDir, &path))?;
            if ty.is_dir() {
                rec(&path, removed)?;
            } else if ty.is_file()
                && is_temp_name(entry.file_name())
                && !cleanup::is_registered(&path)
            {
                remove_if_present(&path)?;
                removed.push(path);
            }
        }
        Ok(())
    }
    let mut removed = Vec::new();
    rec(dir.as_ref(), &mut removed)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temps(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| is_temp_name(n))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_replaces_the_target_with_the_mode_asked() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("sub/out.bin");
        let mut f = AtomicFile::create(&target).unwrap();
        let temp = f.path().to_owned();
        assert_eq!(temp.parent(), target.parent());
        let name = temp.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            name.starts_with(".out.bin.") && name.ends_with(".ward-tmp"),
            "{name}"
        );
        assert!(is_temp_of(name.as_bytes(), b"out.bin"));
        f.write_all(b"new").unwrap();
        assert!(!target.exists(), "nothing at the target before commit");
        f.commit(0o640).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert!(!temp.exists());
        assert!(!cleanup::is_registered(&temp));
    }

    #[test]
    fn dropping_uncommitted_removes_the_temporary_and_keeps_the_target() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("out");
        std::fs::write(&target, b"old").unwrap();
        let mut f = AtomicFile::create(&target).unwrap();
        let temp = f.path().to_owned();
        assert!(cleanup::is_registered(&temp));
        f.write_all(b"partial").unwrap();
        drop(f);
        assert!(!temp.exists());
        assert!(!cleanup::is_registered(&temp));
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert!(temps(d.path()).is_empty());
    }

    #[test]
    fn a_failed_rename_names_the_target_and_keeps_it() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("dir");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"x").unwrap();
        let e = write_atomic(&target, b"data", 0o644).unwrap_err();
        match &e {
            Error::Io { step, path, .. } => {
                assert_eq!(*step, Step::Renaming);
                assert_eq!(path, &target);
            }
            other => panic!("{other:?}"),
        }
        assert!(e
            .to_string()
            .starts_with("renaming the finished output into place at "));
        assert!(target.join("inside").exists());
        assert!(temps(d.path()).is_empty(), "the temporary is removed");
    }

    #[test]
    fn a_device_or_fifo_is_never_replaced() {
        // Found when `ward pf decrypt -o /dev/null` turned /dev/null into a regular file.
        let e = AtomicFile::create("/dev/null").unwrap_err();
        assert!(
            matches!(
                e,
                Error::NotARegularFile {
                    kind: "character device",
                    ..
                }
            ),
            "{e:?}"
        );
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("pipe");
        if std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success())
        {
            let e = write_atomic(&fifo, b"x", 0o644).unwrap_err();
            assert!(
                matches!(e, Error::NotARegularFile { kind: "FIFO", .. }),
                "{e:?}"
            );
            assert!(std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo());
        }
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
    }

    #[test]
    fn no_file_name_is_an_error() {
        let e = AtomicFile::create("/").unwrap_err();
        assert!(matches!(e, Error::NoFileName { .. }), "{e:?}");
    }

    #[test]
    fn temp_names_are_recognised() {
        assert!(is_temp_name(".model.onnx.aB3xZ9.ward-tmp"));
        assert!(!is_temp_name("model.onnx"));
        assert!(!is_temp_name(".ward-tmp"));
        assert!(!is_temp_name("x.ward-tmp"));
        assert!(!is_temp_name(".hidden"));
        assert!(is_temp_of(b".a.abc123.ward-tmp", b"a"));
        assert!(
            !is_temp_of(b".a.b.abc123.ward-tmp", b"a"),
            "a temporary of a.b"
        );
        assert!(!is_temp_of(b".a.abc-23.ward-tmp", b"a"));
    }

    #[test]
    fn the_next_write_of_an_output_removes_its_stale_temporaries_only() {
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join(".out.Zz9aB1.ward-tmp");
        let other = d.path().join(".out.b.Zz9aB1.ward-tmp");
        std::fs::write(&stale, b"left by a killed run").unwrap();
        std::fs::write(&other, b"another output's").unwrap();
        let f = AtomicFile::create(d.path().join("out")).unwrap();
        assert_eq!(f.stale_removed(), std::slice::from_ref(&stale));
        assert!(!stale.exists());
        assert!(other.exists());
        assert!(f.path().exists(), "its own temporary is not stale");
        // A second output in progress for the same target does not remove the live one.
        let g = AtomicFile::create(d.path().join("out")).unwrap();
        assert!(g.stale_removed().is_empty());
        assert!(f.path().exists());
    }

    #[test]
    fn clean_tree_removes_stale_temporaries_recursively_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        let t1 = d.path().join(".x.abcdef.ward-tmp");
        let t2 = d.path().join("a/b/.y.z.123456.ward-tmp");
        for p in [&t1, &t2] {
            std::fs::write(p, b"stale").unwrap();
        }
        std::fs::write(d.path().join("a/keep"), b"k").unwrap();
        std::fs::write(d.path().join(".hidden"), b"h").unwrap();
        let live = AtomicFile::create(d.path().join("a/live")).unwrap();
        let removed = clean_tree(d.path()).unwrap();
        assert_eq!(removed, vec![t1.clone(), t2.clone()]);
        assert!(!t1.exists() && !t2.exists());
        assert!(d.path().join("a/keep").exists());
        assert!(d.path().join(".hidden").exists());
        assert!(live.path().exists(), "a live output's temporary is kept");
        assert!(clean_tree(d.path()).unwrap().is_empty());
        let e = clean_tree(d.path().join("missing")).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Io {
                    step: Step::ListingDir,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
