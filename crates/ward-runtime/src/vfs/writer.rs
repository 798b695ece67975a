//! Writers: nothing becomes visible until `commit`, and then all of it at once.

use super::file::{append_zeroizing, Names};
use super::tmpfs::Tmpfs;
use super::{Counters, VfsError};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use ward_fsio::AtomicFile;
use ward_pf::ProtectedFile;
use zeroize::Zeroizing;

/// Decrypted nodes a protected-file writer keeps before flushing (4 KiB each).
const WRITER_CACHE_NODES: usize = 256;

pub(crate) enum Inner {
    /// An allowed file, written in the clear to a temporary file beside the target.
    Host { out: BufWriter<AtomicFile> },
    /// A new protected file in a temporary file beside the target.
    Protected {
        pf: Box<ProtectedFile<File>>,
        tmp: AtomicFile,
        pos: u64,
        key_name: String,
    },
    /// A tmpfs file.
    Tmpfs {
        store: Arc<Tmpfs>,
        mount: String,
        data: Zeroizing<Vec<u8>>,
    },
}

/// A new version of a file, written with `Write` and made visible atomically by
/// [`commit`](Self::commit).
///
/// On the host the bytes go to a temporary file in the target's directory (`.NAME.XXXXXX.ward-tmp`),
/// which `commit` syncs and renames over the target. Dropping the writer without committing — the
/// workload failed — removes the temporary file and leaves any existing file untouched. `flush`
/// makes nothing visible.
pub struct VfsWriter {
    names: Names,
    inner: Option<Inner>,
    failed: bool,
    stats: Arc<Counters>,
}

impl std::fmt::Debug for VfsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner {
            Some(Inner::Host { .. }) => "allowed",
            Some(Inner::Protected { .. }) => "protected",
            Some(Inner::Tmpfs { .. }) => "tmpfs",
            None => "done",
        };
        f.debug_struct("VfsWriter")
            .field("path", &self.names.path)
            .field("host", &self.names.host)
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

/// A temporary file beside `target` (`.NAME.XXXXXX.ward-tmp`, removed on drop and by the signal
/// cleanup), for an atomic replace.
pub(crate) fn temp_beside(target: &Path, names: &Names) -> Result<AtomicFile, VfsError> {
    AtomicFile::create(target).map_err(|source| VfsError::Output {
        path: names.path.clone(),
        host: names.host.clone(),
        source: Box::new(source),
    })
}

impl VfsWriter {
    pub(crate) fn host(names: Names, tmp: AtomicFile, stats: Arc<Counters>) -> Self {
        VfsWriter {
            names,
            inner: Some(Inner::Host {
                out: BufWriter::with_capacity(1 << 18, tmp),
            }),
            failed: false,
            stats,
        }
    }

    pub(crate) fn protected(
        names: Names,
        tmp: AtomicFile,
        key: &ward_pf::WrapKey,
        bound: &str,
        key_name: &str,
        stats: Arc<Counters>,
    ) -> Result<Self, VfsError> {
        let file = tmp
            .file()
            .try_clone()
            .map_err(|e| names.io("opening the temporary file for", e))?;
        let mut pf = ProtectedFile::create(file, key, bound).map_err(|e| names.pf(key_name, e))?;
        pf.set_cache_capacity(WRITER_CACHE_NODES);
        Ok(VfsWriter {
            names,
            inner: Some(Inner::Protected {
                pf: Box::new(pf),
                tmp,
                pos: 0,
                key_name: key_name.to_string(),
            }),
            failed: false,
            stats,
        })
    }

    pub(crate) fn tmpfs(
        names: Names,
        store: Arc<Tmpfs>,
        mount: String,
        stats: Arc<Counters>,
    ) -> Self {
        VfsWriter {
            names,
            inner: Some(Inner::Tmpfs {
                store,
                mount,
                data: Zeroizing::new(Vec::new()),
            }),
            failed: false,
            stats,
        }
    }

    /// The normalised workload path being written.
    pub fn path(&self) -> &str {
        &self.names.path
    }

    /// Makes everything written visible at the path at once, replacing any earlier file: syncs
    /// the temporary file, renames it over the target and syncs the directory (tmpfs: swaps the
    /// contents). Fails, committing nothing, if any earlier write failed.
    pub fn commit(mut self) -> Result<(), VfsError> {
        if self.failed {
            return Err(VfsError::WriteFailed {
                path: self.names.path.clone(),
            });
        }
        let names = &self.names;
        match self.inner.take() {
            Some(Inner::Host { out }) => {
                let tmp = out
                    .into_inner()
                    .map_err(|e| names.io("writing", e.into_error()))?;
                persist(tmp, names)?;
            }
            Some(Inner::Protected {
                mut pf,
                tmp,
                pos,
                key_name,
            }) => {
                pf.sync().map_err(|e| names.pf(&key_name, e))?;
                drop(pf);
                persist(tmp, names)?;
                self.stats.protected_bytes_encrypted.fetch_add(pos, Relaxed);
            }
            Some(Inner::Tmpfs { store, mount, data }) => {
                store.commit(&names.path, &mount, data)?;
            }
            None => {
                return Err(VfsError::WriteFailed {
                    path: names.path.clone(),
                })
            }
        }
        self.stats.files_committed.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Writes all of `bytes`, keeping the cause as a typed error.
    pub(crate) fn write_whole(&mut self, bytes: &[u8]) -> Result<(), VfsError> {
        self.write_all(bytes).map_err(|e| {
            // The writer's own failures are VfsErrors inside the io::Error; an OS error is not.
            if e.get_ref().is_some_and(|inner| inner.is::<VfsError>()) {
                if let Some(Ok(vfs)) = e.into_inner().map(|inner| inner.downcast::<VfsError>()) {
                    return *vfs;
                }
                return VfsError::WriteFailed {
                    path: self.names.path.clone(),
                };
            }
            self.names.io("writing", e)
        })
    }

    fn write_inner(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Some(Inner::Host { out, .. }) => out.write(buf),
            Some(Inner::Protected {
                pf, pos, key_name, ..
            }) => {
                pf.write_at(*pos, buf)
                    .map_err(|e| io::Error::from(self.names.pf(key_name, e)))?;
                *pos += buf.len() as u64;
                Ok(buf.len())
            }
            Some(Inner::Tmpfs { data, .. }) => {
                append_zeroizing(data, buf)?;
                Ok(buf.len())
            }
            None => Err(io::Error::from(VfsError::WriteFailed {
                path: self.names.path.clone(),
            })),
        }
    }
}

/// Commits `tmp` over its target with the mode of the file it replaces (0600 for a new file):
/// fsync, rename, fsync of the directory.
fn persist(tmp: AtomicFile, names: &Names) -> Result<(), VfsError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match std::fs::symlink_metadata(tmp.target()) {
        Ok(md) if md.is_file() => md.permissions().mode() & 0o7777,
        _ => 0o600,
    };
    tmp.commit(mode).map_err(|source| VfsError::Output {
        path: names.path.clone(),
        host: names.host.clone(),
        source: Box::new(source),
    })
}

impl Write for VfsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::from(VfsError::WriteFailed {
                path: self.names.path.clone(),
            }));
        }
        let r = self.write_inner(buf);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Pushes buffered bytes to the temporary file; makes nothing visible (see `commit`).
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Some(Inner::Host { out, .. }) => out.flush(),
            _ => Ok(()),
        }
    }
}
