//! Files of trusted trees: every chunk checked against its signed SHA-256 before any of its bytes
//! are served.
//!
//! A tree file no larger than [`WHOLE_MAX`] is read and checked whole at open and served from
//! memory (most of an interpreter's files: `.py`, `.pyc`, small extension modules), so a file
//! changed on the host before open is refused at open. A larger one is checked lazily: at open its
//! length must be the signed one and, when the host's mtime differs from the signed mtime, every
//! chunk is checked there and then (a file touched but unchanged still opens; a changed one is
//! refused at open). After that each chunk is read from the host when first needed and checked
//! against its hash; a chunk changed since open fails with [`VfsError::TrustedChanged`] and
//! nothing of it is returned. Only the chunks a program touches are hashed — the reason trees
//! exist: a Python process maps tens of megabytes of shared libraries and touches a fraction.

use super::file::Names;
use super::{Counters, VfsError};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
use ward_manifest::tree::{TreeEntry, TreeFile, TrustTree};
use zeroize::Zeroizing;

/// Tree files up to this size are verified whole at open and served from memory.
pub(crate) const WHOLE_MAX: u64 = 1 << 20;

/// A file of a tree: the tree (shared, holding the chunk hashes) and its path in it.
#[derive(Clone)]
pub(crate) struct TreeRef {
    pub(crate) tree: Arc<TrustTree>,
    pub(crate) rel: String,
}

impl TreeRef {
    pub(crate) fn entry(&self) -> Option<&TreeEntry> {
        self.tree.get(&self.rel)
    }

    pub(crate) fn file(&self) -> Option<&TreeFile> {
        match self.entry() {
            Some(TreeEntry::File(f)) => Some(f),
            _ => None,
        }
    }
}

fn changed(names: &Names, chunk: u64, chunk_size: u64) -> VfsError {
    VfsError::TrustedChanged {
        path: names.path.clone(),
        host: names.host.clone(),
        chunk,
        offset: chunk * chunk_size,
    }
}

fn resized(names: &Names, was: u64, now: u64) -> VfsError {
    VfsError::TrustedResized {
        path: names.path.clone(),
        host: names.host.clone(),
        was,
        now,
    }
}

fn chunk_ok(bytes: &[u8], expected: &[u8; 32]) -> bool {
    let found: [u8; 32] = Sha256::digest(bytes).into();
    bool::from(found.ct_eq(expected))
}

/// The length of chunk `i` of `f`.
fn chunk_len(f: &TreeFile, chunk_size: u64, i: u64) -> usize {
    (f.size - i * chunk_size).min(chunk_size) as usize
}

/// Reads chunk `i` of `f` into `buf` (resized to the chunk's length) and checks it.
fn load_chunk(
    file: &File,
    f: &TreeFile,
    chunk_size: u64,
    i: u64,
    buf: &mut Vec<u8>,
    names: &Names,
) -> Result<(), VfsError> {
    buf.clear();
    buf.resize(chunk_len(f, chunk_size, i), 0);
    let checked = load_chunk_into(file, f, chunk_size, i, buf, names);
    if checked.is_err() {
        buf.clear();
    }
    checked
}

/// Reads chunk `i` of `f` into `out`, exactly the chunk's length, and checks it. On error
/// `out` holds unverified bytes: the caller must not use them.
fn load_chunk_into(
    file: &File,
    f: &TreeFile,
    chunk_size: u64,
    i: u64,
    out: &mut [u8],
    names: &Names,
) -> Result<(), VfsError> {
    if let Err(e) = file.read_exact_at(out, i * chunk_size) {
        return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
            let now = file.metadata().map(|m| m.len()).unwrap_or(0);
            resized(names, f.size, now)
        } else {
            names.io("reading", e)
        });
    }
    let ok = f
        .chunks
        .get(i as usize)
        .is_some_and(|expected| chunk_ok(out, expected));
    if !ok {
        return Err(changed(names, i, chunk_size));
    }
    Ok(())
}

/// What opening a tree file gives: its bytes, verified, or a lazily verified handle.
pub(crate) enum Opened {
    Whole(Zeroizing<Vec<u8>>),
    Lazy(Box<TreeChunks>),
}

/// Opens host `file` as tree file `at`, checking what the module documentation says.
pub(crate) fn open(
    file: File,
    at: TreeRef,
    whole: bool,
    names: &Names,
    stats: &Counters,
) -> Result<Opened, VfsError> {
    let chunk_size = u64::from(at.tree.chunk_size());
    let Some(f) = at.file() else {
        return Err(VfsError::NotRegularFile {
            path: names.path.clone(),
            host: names.host.clone(),
        });
    };
    let md = file
        .metadata()
        .map_err(|e| names.io("reading metadata of", e))?;
    if md.len() != f.size {
        return Err(resized(names, f.size, md.len()));
    }
    if whole || f.size <= WHOLE_MAX {
        let len = usize::try_from(f.size).map_err(|_| resized(names, f.size, md.len()))?;
        let mut data = Zeroizing::new(Vec::new());
        data.try_reserve_exact(len).map_err(|_| {
            names.io(
                "allocating memory for",
                io::Error::new(io::ErrorKind::OutOfMemory, "file too large for memory"),
            )
        })?;
        // One read of the whole file, then each chunk checked where it lies: what is served is
        // exactly what was checked.
        data.resize(len, 0);
        if let Err(e) = file.read_exact_at(&mut data, 0) {
            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                let now = file.metadata().map(|m| m.len()).unwrap_or(0);
                resized(names, f.size, now)
            } else {
                names.io("reading", e)
            });
        }
        for (i, (bytes, expected)) in data.chunks(chunk_size as usize).zip(&f.chunks).enumerate() {
            if !chunk_ok(bytes, expected) {
                return Err(changed(names, i as u64, chunk_size));
            }
        }
        stats.trusted_bytes_verified.fetch_add(f.size, Relaxed);
        return Ok(Opened::Whole(data));
    }
    let signed_mtime = (f.mtime.secs, i64::from(f.mtime.nanos));
    if (md.mtime(), md.mtime_nsec()) != signed_mtime {
        // Touched since signing: check it all now, so a changed file is refused at open.
        let mut buf = Vec::new();
        for i in 0..f.chunks.len() as u64 {
            load_chunk(&file, f, chunk_size, i, &mut buf, names)?;
        }
        stats.trusted_bytes_verified.fetch_add(f.size, Relaxed);
    }
    let len = f.size;
    Ok(Opened::Lazy(Box::new(TreeChunks {
        file,
        at,
        len,
        chunk_size,
        cache: Mutex::new(Vec::new()),
    })))
}

/// Verified chunks a lazily checked file keeps. The kernel asks for a mapped library's pages
/// in scattered order from several threads; without a few chunks kept, the same chunk is read
/// and hashed again for each of its pages (measured: 40% of the loads for ONNX Runtime's start).
const CACHED_CHUNKS: usize = 4;

/// A large tree file, each chunk checked as it is first read; the last few chunks kept.
///
/// Reads take `&self`: the kernel sends a file's reads from several threads at once, and a
/// chunk is read and hashed outside the cache's lock, so they proceed in parallel.
pub(crate) struct TreeChunks {
    file: File,
    at: TreeRef,
    len: u64,
    chunk_size: u64,
    /// (chunk index, verified bytes), most recently used first.
    cache: Mutex<Vec<(u64, Arc<Vec<u8>>)>>,
}

impl TreeChunks {
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn read_at(
        &self,
        offset: u64,
        out: &mut [u8],
        names: &Names,
        stats: &Counters,
    ) -> Result<usize, VfsError> {
        if offset >= self.len || out.is_empty() {
            return Ok(0);
        }
        let i = offset / self.chunk_size;
        let within = (offset - i * self.chunk_size) as usize;
        if within == 0 {
            if let Some(f) = self.at.file() {
                let n = chunk_len(f, self.chunk_size, i);
                if out.len() >= n {
                    // A read that covers the whole chunk (the kernel's read-ahead and page
                    // faults): verified in the caller's buffer, with no copy and no cache entry
                    // (the kernel's page cache keeps what it asked for).
                    let checked =
                        load_chunk_into(&self.file, f, self.chunk_size, i, &mut out[..n], names);
                    if let Err(e) = checked {
                        out[..n].fill(0);
                        return Err(e);
                    }
                    stats.trusted_bytes_verified.fetch_add(n as u64, Relaxed);
                    return Ok(n);
                }
            }
        }
        let cached = self.cache.lock().ok().and_then(|mut cache| {
            let at = cache.iter().position(|(c, _)| *c == i)?;
            let hit = cache.remove(at);
            let bytes = hit.1.clone();
            cache.insert(0, hit);
            Some(bytes)
        });
        let chunk = match cached {
            Some(bytes) => bytes,
            None => {
                let Some(f) = self.at.file() else {
                    return Err(changed(names, i, self.chunk_size));
                };
                let mut buf = Vec::new();
                load_chunk(&self.file, f, self.chunk_size, i, &mut buf, names)?;
                stats
                    .trusted_bytes_verified
                    .fetch_add(buf.len() as u64, Relaxed);
                let buf = Arc::new(buf);
                if let Ok(mut cache) = self.cache.lock() {
                    cache.truncate(CACHED_CHUNKS - 1);
                    cache.insert(0, (i, buf.clone()));
                }
                buf
            }
        };
        let avail = chunk.get(within..).unwrap_or(&[]);
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        Ok(n)
    }
}
