//! [`HostDirView`]: a read-only view of a host directory, served as it is (unverified).

use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;

use crate::view::{Attr, DirEntry, Handle, Kind, View};

/// A read-only [`View`] of a host directory: what is there, served unverified (the host can
/// change it underneath). For tests, and for runtimes a manifest trusts as they are. Symlinks
/// are reported as symlinks (their targets resolve inside the sandbox, not on the host).
#[derive(Clone, Debug)]
pub struct HostDirView {
    root: PathBuf,
}

impl HostDirView {
    /// A view of `root` (which must not be, or contain, the view's own mount point).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostDirView { root: root.into() }
    }

    fn host(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }
}

fn errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

fn mtime(meta: &std::fs::Metadata) -> SystemTime {
    let secs = u64::try_from(meta.mtime()).unwrap_or(0);
    let nanos = u32::try_from(meta.mtime_nsec()).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
}

fn attr(meta: &std::fs::Metadata) -> Result<Attr, Errno> {
    let kind = if meta.file_type().is_symlink() {
        Kind::Symlink
    } else if meta.is_dir() {
        Kind::Dir
    } else if meta.is_file() {
        Kind::File
    } else {
        // Devices, sockets, fifos are not part of a view.
        return Err(Errno::ENOENT);
    };
    Ok(Attr {
        kind,
        size: meta.len(),
        mode: (meta.permissions().mode() & 0o7777) as u16,
        mtime: mtime(meta),
        nlink: u32::try_from(meta.nlink()).unwrap_or(u32::MAX),
    })
}

struct HostFile(File);

impl Handle for HostFile {
    fn read_at(&self, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match self.0.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(errno(&e)),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }
}

impl View for HostDirView {
    fn lookup(&self, path: &str) -> Result<Attr, Errno> {
        attr(&std::fs::symlink_metadata(self.host(path)).map_err(|e| errno(&e))?)
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Errno> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(self.host(path)).map_err(|e| errno(&e))? {
            let entry = entry.map_err(|e| errno(&e))?;
            let Ok(meta) = entry.metadata() else { continue };
            let (Ok(attr), Some(name)) =
                (attr(&meta), entry.file_name().to_str().map(String::from))
            else {
                continue;
            };
            entries.push(DirEntry {
                name,
                kind: attr.kind,
            });
        }
        Ok(entries)
    }

    fn read_link(&self, path: &str) -> Result<Vec<u8>, Errno> {
        let target = std::fs::read_link(self.host(path)).map_err(|e| errno(&e))?;
        Ok(target.as_os_str().as_bytes().to_vec())
    }

    fn open(&self, path: &str, flags: i32) -> Result<Box<dyn Handle>, Errno> {
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            return Err(Errno::EROFS);
        }
        let host = self.host(path);
        // Never follow a symlink on the host: the kernel resolves links inside the sandbox.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(Path::new(&host))
            .map_err(|e| errno(&e))?;
        Ok(Box::new(HostFile(file)))
    }
}
