//! Writers: nothing becomes visible until `commit`, and then all of it at once.

use super::file::{reserve_zeroizing, Names};
use super::tmpfs::Tmpfs;
use super::{Counters, VfsError};
use sha2::Digest;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use ward_fsio::AtomicFile;
use ward_pf::ProtectedFile;
use zeroize::{Zeroize, Zeroizing};

/// Decrypted nodes a protected-file writer keeps before flushing (4 KiB each).
const WRITER_CACHE_NODES: usize = 256;

/// The largest allowed (host) file: what `off_t` can address.
const HOST_MAX: u64 = i64::MAX as u64;

/// The largest tmpfs file: what one allocation can hold.
const TMPFS_MAX: u64 = isize::MAX as u64;

pub(crate) enum Inner {
    /// An allowed file, written in the clear to a temporary file beside the target.
    Host { tmp: AtomicFile },
    /// A new protected file in a temporary file beside the target.
    Protected {
        pf: Box<ProtectedFile<File>>,
        tmp: AtomicFile,
        key_name: String,
    },
    /// A tmpfs file.
    Tmpfs {
        store: Arc<Tmpfs>,
        mount: String,
        data: Zeroizing<Vec<u8>>,
    },
}

/// A new version of a file, made visible atomically by [`commit`](Self::commit).
///
/// It is random-access — [`write_at`](Self::write_at), [`read_at`](Self::read_at),
/// [`set_len`](Self::set_len) — and also `Write` (sequentially, from a cursor starting at 0). A
/// version may start empty ([`Vfs::create`](super::Vfs::create)) or as a copy of the current
/// file ([`Vfs::edit`](super::Vfs::edit)).
///
/// On the host the bytes go to a temporary file in the target's directory (`.NAME.XXXXXX.ward-tmp`),
/// which `commit` syncs and renames over the target. Dropping the writer without committing — the
/// workload failed — removes the temporary file and leaves any existing file untouched. `flush`
/// makes nothing visible.
///
/// After a failed write or truncation the version is in an unknown state: every later operation
/// fails with [`VfsError::WriteFailed`] and `commit` refuses, so a half-done change never replaces
/// the old file. Refusals made before anything changed ([`VfsError::TooLarge`]) do not count.
pub struct VfsWriter {
    names: Names,
    inner: Option<Inner>,
    /// The length of the new version (plaintext for protected files).
    len: u64,
    /// Where `Write` writes next.
    cursor: u64,
    /// Started as a copy of the current file ([`Vfs::edit`](super::Vfs::edit)) and not changed
    /// since: committing it would only rewrite the same bytes.
    unchanged_copy: bool,
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
            .field("len", &self.len)
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
    fn with(names: Names, inner: Inner, stats: Arc<Counters>) -> Self {
        VfsWriter {
            names,
            inner: Some(inner),
            len: 0,
            cursor: 0,
            unchanged_copy: false,
            failed: false,
            stats,
        }
    }

    pub(crate) fn host(names: Names, tmp: AtomicFile, stats: Arc<Counters>) -> Self {
        Self::with(names, Inner::Host { tmp }, stats)
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
        let inner = Inner::Protected {
            pf: Box::new(pf),
            tmp,
            key_name: key_name.to_string(),
        };
        Ok(Self::with(names, inner, stats))
    }

    pub(crate) fn tmpfs(
        names: Names,
        store: Arc<Tmpfs>,
        mount: String,
        stats: Arc<Counters>,
    ) -> Self {
        let inner = Inner::Tmpfs {
            store,
            mount,
            data: Zeroizing::new(Vec::new()),
        };
        Self::with(names, inner, stats)
    }

    /// The normalised workload path being written.
    pub fn path(&self) -> &str {
        &self.names.path
    }

    /// The length of the new version so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the new version is empty so far.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether this version is a copy of the current file, unchanged since (see
    /// [`Vfs::edit`](super::Vfs::edit)): a program that opened a file for writing and wrote
    /// nothing. Dropping it instead of committing leaves the same bytes.
    pub fn is_unchanged_copy(&self) -> bool {
        self.unchanged_copy && !self.failed
    }

    pub(crate) fn mark_unchanged_copy(&mut self) {
        self.unchanged_copy = true;
    }

    /// Whether an earlier write or truncation failed (then nothing more can be done with it).
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// The largest size this kind of file can have, and its name for messages.
    fn max_len(&self) -> (u64, &'static str) {
        match &self.inner {
            Some(Inner::Protected { .. }) => (ward_pf::layout::MAX_PLAINTEXT_SIZE, "protected"),
            Some(Inner::Tmpfs { .. }) => (TMPFS_MAX, "tmpfs"),
            _ => (HOST_MAX, "allowed"),
        }
    }

    /// Refuses a size beyond what the file can hold, before anything changes.
    fn check_size(&self, size: Option<u64>) -> Result<(), VfsError> {
        let (max, kind) = self.max_len();
        match size {
            Some(s) if s <= max => Ok(()),
            _ => Err(VfsError::TooLarge {
                path: self.names.path.clone(),
                size: size.unwrap_or(u64::MAX),
                max,
                kind,
            }),
        }
    }

    fn usable(&mut self) -> Result<&mut Inner, VfsError> {
        match (&mut self.inner, self.failed) {
            (Some(inner), false) => Ok(inner),
            _ => Err(VfsError::WriteFailed {
                path: self.names.path.clone(),
            }),
        }
    }

    /// Runs `op` on the inner file; a failure poisons the writer (see the type's documentation).
    fn mutate<T>(
        &mut self,
        op: impl FnOnce(&mut Inner, &Names) -> Result<T, VfsError>,
    ) -> Result<T, VfsError> {
        let (Some(inner), false) = (&mut self.inner, self.failed) else {
            return Err(VfsError::WriteFailed {
                path: self.names.path.clone(),
            });
        };
        let r = op(inner, &self.names);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Writes all of `data` at `offset`, zero-filling any gap past the current end (a hole
    /// reads as zeros).
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), VfsError> {
        if data.is_empty() {
            // Like pwrite(2): writing nothing changes nothing, even past the end.
            return self.usable().map(|_| ());
        }
        let end = offset.checked_add(data.len() as u64);
        self.check_size(end)?;
        let end = end.unwrap_or(u64::MAX);
        let len = self.len;
        self.unchanged_copy = false;
        self.mutate(|inner, names| match inner {
            Inner::Host { tmp } => tmp
                .file()
                .write_all_at(data, offset)
                .map_err(|e| names.io("writing", e)),
            Inner::Protected { pf, key_name, .. } => {
                pf.write_at(offset, data).map_err(|e| names.pf(key_name, e))
            }
            Inner::Tmpfs { data: buf, .. } => {
                // Checked against TMPFS_MAX above, so these fit in usize.
                let (start, end) = (offset as usize, end as usize);
                if end as u64 > len {
                    resize_zeroizing(buf, end).map_err(|e| names.io("writing", e))?;
                }
                buf[start..end].copy_from_slice(data);
                Ok(())
            }
        })?;
        self.len = self.len.max(end);
        Ok(())
    }

    /// Reads up to `buf.len()` bytes of the new version at `offset`; returns the count (0 at or
    /// past the end).
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, VfsError> {
        if offset >= self.len || buf.is_empty() {
            return self.usable().map(|_| 0);
        }
        let n = usize::try_from(self.len - offset).map_or(buf.len(), |left| left.min(buf.len()));
        let buf = &mut buf[..n];
        self.mutate(|inner, names| match inner {
            Inner::Host { tmp } => {
                let mut done = 0;
                while done < n {
                    match tmp.file().read_at(&mut buf[done..], offset + done as u64) {
                        // A hole at the end of a host file that set_len extended reads as 0s;
                        // a shorter file than `len` cannot happen, but must not loop.
                        Ok(0) => {
                            buf[done..].fill(0);
                            done = n;
                        }
                        Ok(k) => done += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(names.io("reading back", e)),
                    }
                }
                Ok(n)
            }
            // A failed read of our own temporary means the host changed it: poisoning the
            // writer keeps such a version from being committed.
            Inner::Protected { pf, key_name, .. } => {
                pf.read_at(offset, buf).map_err(|e| names.pf(key_name, e))
            }
            Inner::Tmpfs { data, .. } => {
                let start = offset as usize;
                buf.copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
        })
    }

    /// Truncates or zero-extends the new version to `len` bytes.
    pub fn set_len(&mut self, len: u64) -> Result<(), VfsError> {
        self.check_size(Some(len))?;
        self.unchanged_copy = false;
        self.mutate(|inner, names| match inner {
            Inner::Host { tmp } => tmp
                .file()
                .set_len(len)
                .map_err(|e| names.io("truncating", e)),
            Inner::Protected { pf, key_name, .. } => {
                pf.set_len(len).map_err(|e| names.pf(key_name, e))
            }
            Inner::Tmpfs { data, .. } => {
                let len = len as usize;
                if len < data.len() {
                    data[len..].zeroize();
                    data.truncate(len);
                    Ok(())
                } else {
                    resize_zeroizing(data, len).map_err(|e| names.io("extending", e))
                }
            }
        })?;
        self.len = len;
        Ok(())
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
            Some(Inner::Host { tmp }) => persist(tmp, names)?,
            Some(Inner::Protected {
                mut pf,
                tmp,
                key_name,
            }) => {
                pf.sync().map_err(|e| names.pf(&key_name, e))?;
                // Taken before the file is on the host's disk under its name: what ward wrote,
                // not what is there later.
                let metadata_sha256: Option<[u8; 32]> = pf
                    .written_metadata_node()
                    .map(|node| sha2::Sha256::digest(&node[..]).into());
                drop(pf);
                persist(tmp, names)?;
                if let Some(metadata_sha256) = metadata_sha256 {
                    let output = super::CommittedOutput {
                        path: names.path.clone(),
                        metadata_sha256,
                    };
                    match self.stats.outputs.lock() {
                        Ok(mut o) => o.push(output),
                        Err(p) => p.into_inner().push(output),
                    }
                }
                self.stats
                    .protected_bytes_encrypted
                    .fetch_add(self.len, Relaxed);
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

    /// Writes all of `bytes` at the cursor, keeping the cause as a typed error.
    pub(crate) fn write_whole(&mut self, bytes: &[u8]) -> Result<(), VfsError> {
        self.write_at(self.cursor, bytes)?;
        self.cursor += bytes.len() as u64;
        Ok(())
    }
}

/// Grows `v` (zero-filled) to `len` bytes without leaving a copy of its contents in freed memory.
fn resize_zeroizing(v: &mut Zeroizing<Vec<u8>>, len: usize) -> io::Result<()> {
    if let Some(extra) = len.checked_sub(v.len()) {
        reserve_zeroizing(v, extra)?;
        v.resize(len, 0);
    }
    Ok(())
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
    /// Writes at the cursor (0 for a new writer), then moves it past what was written.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_whole(buf)?;
        Ok(buf.len())
    }

    /// Makes nothing visible (see `commit`); the bytes are already in the temporary file.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
