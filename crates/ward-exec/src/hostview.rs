//! [`HostDirView`]: a read-only view of a host directory, served as it is (unverified).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};

use crate::view::{Attr, DirEntry, Handle, Kind, View};

/// A read-only [`View`] of a host directory: what is there, served unverified (whoever can
/// write the directory can change what the program reads). For tests, and for runtimes a
/// manifest trusts as they are.
///
/// Every path is resolved beneath the directory with `openat2(RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS)`: a symlink is reported as a symlink (its target resolves inside the
/// sandbox), and one swapped in on the host never leads out of the directory.
#[derive(Debug)]
pub struct HostDirView {
    root: OwnedFd,
}

impl HostDirView {
    /// A view of the directory `root` (which must not be, or contain, the view's own mount
    /// point).
    pub fn new(root: &Path) -> Result<Self, Errno> {
        let root = nix::fcntl::open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(HostDirView { root })
    }

    /// Opens `path` (absolute inside the view) beneath the root, following no symlink.
    fn open_beneath(&self, path: &str, flags: OFlag) -> Result<OwnedFd, Errno> {
        let relative = path.trim_start_matches('/');
        let relative = if relative.is_empty() { "." } else { relative };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        openat2(&self.root, relative, how)
    }
}

fn attr(stat: &FileStat) -> Result<Attr, Errno> {
    let kind = match SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFDIR => Kind::Dir,
        SFlag::S_IFLNK => Kind::Symlink,
        // Devices, sockets and fifos are not part of a view.
        _ => return Err(Errno::ENOENT),
    };
    let mtime = SystemTime::UNIX_EPOCH
        + Duration::new(
            u64::try_from(stat.st_mtime).unwrap_or(0),
            u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
        );
    Ok(Attr {
        kind,
        size: u64::try_from(stat.st_size).unwrap_or(0),
        mode: (stat.st_mode & 0o7777) as u16,
        mtime,
        nlink: u32::try_from(stat.st_nlink).unwrap_or(u32::MAX),
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
                Err(e) => return Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }
}

impl View for HostDirView {
    fn lookup(&self, path: &str) -> Result<Attr, Errno> {
        attr(&fstat(self.open_beneath(path, OFlag::O_PATH)?)?)
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Errno> {
        let dir = self.open_beneath(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let mut entries = Vec::new();
        for entry in nix::dir::Dir::from_fd(dir)? {
            let entry = entry?;
            let Ok(name) = std::str::from_utf8(entry.file_name().to_bytes()) else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let child = if path == "/" {
                format!("/{name}")
            } else {
                format!("{path}/{name}")
            };
            // Entries that vanished or are not files, directories or symlinks are left out.
            if let Ok(attr) = self.lookup(&child) {
                entries.push(DirEntry {
                    name: name.to_string(),
                    kind: attr.kind,
                });
            }
        }
        Ok(entries)
    }

    fn read_link(&self, path: &str) -> Result<Vec<u8>, Errno> {
        let link = self.open_beneath(path, OFlag::O_PATH)?;
        Ok(readlinkat(&link, "")?.as_bytes().to_vec())
    }

    fn open(&self, path: &str, flags: i32) -> Result<Box<dyn Handle>, Errno> {
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            return Err(Errno::EROFS);
        }
        let fd = self.open_beneath(path, OFlag::O_RDONLY)?;
        Ok(Box::new(HostFile(File::from(fd))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_leaves_the_directory() {
        let dir = std::env::temp_dir().join(format!("ward-exec-hostview-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/f"), "inside").unwrap();
        let _ = std::fs::remove_file(dir.join("out"));
        std::os::unix::fs::symlink("/etc", dir.join("out")).unwrap();
        let view = HostDirView::new(&dir).unwrap();
        let result = (|| {
            assert_eq!(view.lookup("/sub/f")?.kind, Kind::File);
            assert_eq!(view.lookup("/out")?.kind, Kind::Symlink);
            assert_eq!(view.read_link("/out")?, b"/etc");
            // Through the link would be the host's /etc: refused.
            assert_eq!(view.lookup("/out/hostname").unwrap_err(), Errno::ELOOP);
            assert_eq!(
                view.open("/out/hostname", libc::O_RDONLY).err(),
                Some(Errno::ELOOP)
            );
            assert_eq!(
                view.open("/sub/f", libc::O_WRONLY).err(),
                Some(Errno::EROFS)
            );
            let handle = view.open("/sub/f", libc::O_RDONLY)?;
            assert_eq!(handle.read_at(2, 100)?, b"side");
            let mut names: Vec<_> = view.read_dir("/")?.into_iter().map(|e| e.name).collect();
            names.sort();
            assert_eq!(names, ["out", "sub"]);
            Ok::<(), Errno>(())
        })();
        std::fs::remove_dir_all(&dir).unwrap();
        result.unwrap();
    }
}
