//! Read handles, and the verification of trusted and protected files behind them.
//!
//! Trusted files. At open one streaming pass hashes the file and the digest is compared, in
//! constant time, with the manifest's. A file no larger than the memory limit is kept in memory
//! from that same pass, so what is served is exactly what was verified. A larger file is not kept:
//! instead, at every chunk boundary the pass records the SHA-256 state so far and the SHA-256 of
//! the prefix up to the end of that chunk. When chunk `i` is read back from disk later, it is
//! accepted only if continuing the recorded state with the bytes now read gives the recorded
//! prefix digest — i.e. SHA-256(verified prefix ‖ chunk as read now) = SHA-256(prefix as verified
//! at open). Forging a chunk means finding a SHA-256 collision. This costs one extra hash of each
//! chunk read, and no second hashing pass at open (per-chunk digests from fresh hashers would).
//!
//! Protected files. `open` reads them through a `ward_pf::ProtectedFile`, which authenticates
//! every node it loads against the metadata it read at open — so a file swapped after open fails at
//! its first node read, and no unauthenticated byte is ever returned. `Vfs::read`, and `open` of a
//! small pinned file, decrypt the whole file at once with `ward_pf::decrypt` (every node
//! authenticated, nodes spread over all cores, the pinned hash computed on the way) and return
//! nothing unless all of it checks out. A large pinned file is hashed whole through its
//! `ProtectedFile` handle before `open` returns.

use super::{Counters, FileKind, VfsError};

/// Protected files at least this large are decrypted across all cores by `Vfs::read`.
const PARALLEL_DECRYPT_MIN: u64 = 4 << 20;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use ward_pf::{Mode, ProtectedFile, WrapKey};
use zeroize::Zeroizing;

/// Size of each read while hashing a trusted file into memory.
const READ_STEP: u64 = 1 << 20;

/// The workload path and host path of a file, for messages.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) path: String,
    pub(crate) host: String,
}

impl Names {
    pub(crate) fn io(&self, op: &'static str, source: io::Error) -> VfsError {
        VfsError::Io {
            path: self.path.clone(),
            host: self.host.clone(),
            op,
            source,
        }
    }

    pub(crate) fn pf(&self, key_name: &str, source: ward_pf::Error) -> VfsError {
        VfsError::Protected {
            path: self.path.clone(),
            host: self.host.clone(),
            key_name: key_name.to_string(),
            source: Box::new(source),
        }
    }
}

fn digest_eq(found: &[u8], expected: &[u8; 32]) -> bool {
    bool::from(found.ct_eq(expected.as_slice()))
}

fn trusted_mismatch(names: &Names, expected: &[u8; 32], found: &[u8]) -> VfsError {
    let mut f = [0u8; 32];
    if found.len() == 32 {
        f.copy_from_slice(found);
    }
    VfsError::TrustedMismatch {
        path: names.path.clone(),
        host: names.host.clone(),
        expected: Box::new(*expected),
        found: Box::new(f),
    }
}

pub(crate) fn too_large_to_read(names: &Names, limit: u64) -> VfsError {
    VfsError::TooLargeToRead {
        path: names.path.clone(),
        host: names.host.clone(),
        limit,
    }
}

fn out_of_memory(names: &Names, len: u64) -> VfsError {
    names.io(
        "allocating memory for",
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("cannot hold {len} bytes in memory"),
        ),
    )
}

/// Files at least this large are read on a second thread while the calling thread hashes.
const PIPELINE_MIN: u64 = 4 << 20;

/// Reads all of a trusted file into memory, hashing it on the way; returns it only if the hash
/// matches. What is returned is exactly what was hashed, so a file changed meanwhile either still
/// matches (and is what the manifest signed) or is refused.
///
/// `size_hint` (the length the host reported) is at most `limit`; a file that has grown beyond
/// `limit` since is refused as too large rather than read on.
pub(crate) fn read_trusted(
    file: &mut File,
    size_hint: u64,
    limit: u64,
    expected: &[u8; 32],
    names: &Names,
    stats: &Counters,
) -> Result<Zeroizing<Vec<u8>>, VfsError> {
    let (data, found) = if size_hint >= PIPELINE_MIN {
        read_hashing_pipelined(file, size_hint, names)?
    } else {
        read_hashing(file, size_hint, limit, names)?
    };
    if !digest_eq(&found, expected) {
        return Err(trusted_mismatch(names, expected, &found));
    }
    stats
        .trusted_bytes_verified
        .fetch_add(data.len() as u64, Relaxed);
    Ok(data)
}

/// Reads to the end of `file` and hashes, on this thread.
fn read_hashing(
    file: &mut File,
    size_hint: u64,
    limit: u64,
    names: &Names,
) -> Result<(Zeroizing<Vec<u8>>, [u8; 32]), VfsError> {
    let mut data = Zeroizing::new(Vec::new());
    // One spare byte so that reading EOF does not grow the buffer.
    let want = usize::try_from(size_hint.saturating_add(1)).unwrap_or(usize::MAX);
    data.try_reserve_exact(want)
        .map_err(|_| out_of_memory(names, size_hint))?;
    let mut hasher = Sha256::new();
    loop {
        if data.len() as u64 > limit {
            return Err(too_large_to_read(names, limit));
        }
        let start = data.len();
        let n = (&mut *file)
            .take(READ_STEP)
            .read_to_end(&mut data)
            .map_err(|e| names.io("reading", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&data[start..]);
    }
    Ok((data, hasher.finalize().into()))
}

/// Reads the first `len` bytes of `file` (fewer if it ends first) on a second thread while this
/// one hashes each 1 MiB step as soon as it has arrived: the copy from the page cache and the
/// page faults of the buffer overlap with hashing.
fn read_hashing_pipelined(
    file: &mut File,
    len: u64,
    names: &Names,
) -> Result<(Zeroizing<Vec<u8>>, [u8; 32]), VfsError> {
    let len = usize::try_from(len).map_err(|_| out_of_memory(names, len))?;
    // Probe first so that an absurd size is an error rather than an abort; then allocate zeroed
    // memory, which the allocator maps lazily (no memset): the reader thread faults it in.
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(len)
        .map_err(|_| out_of_memory(names, len as u64))?;
    drop(probe);
    let mut data = Zeroizing::new(vec![0u8; len]);
    let mut hasher = Sha256::new();
    let step = READ_STEP as usize;
    let read = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<&[u8]>(8);
        let buf: &mut [u8] = &mut data;
        let reader = s.spawn(move || -> io::Result<usize> {
            let mut total = 0;
            for chunk in buf.chunks_mut(step) {
                let n = read_full(file, chunk)?;
                total += n;
                let chunk: &[u8] = chunk;
                if tx.send(&chunk[..n]).is_err() || n < chunk.len() {
                    break;
                }
            }
            Ok(total)
        });
        for part in rx {
            hasher.update(part);
        }
        reader.join()
    });
    let total = match read {
        Ok(r) => r.map_err(|e| names.io("reading", e))?,
        Err(_) => return Err(names.io("reading", io::Error::other("the reader thread panicked"))),
    };
    data.truncate(total);
    Ok((data, hasher.finalize().into()))
}

/// Reads an allowed (unchecked) file into memory: at most `limit` bytes (a file grown beyond it
/// since `size_hint` was taken is refused as too large).
pub(crate) fn read_allowed(
    file: &mut File,
    size_hint: u64,
    limit: u64,
    names: &Names,
) -> Result<Zeroizing<Vec<u8>>, VfsError> {
    let mut data = Zeroizing::new(Vec::new());
    let want = usize::try_from(size_hint.saturating_add(1)).unwrap_or(usize::MAX);
    data.try_reserve_exact(want)
        .map_err(|_| out_of_memory(names, size_hint))?;
    file.take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| names.io("reading", e))?;
    if data.len() as u64 > limit {
        return Err(too_large_to_read(names, limit));
    }
    Ok(data)
}

/// Grows `v` to hold `extra` more bytes without leaving a copy of its contents in freed memory.
pub(crate) fn reserve_zeroizing(v: &mut Zeroizing<Vec<u8>>, extra: usize) -> io::Result<()> {
    if v.capacity() - v.len() >= extra {
        return Ok(());
    }
    let need = v
        .len()
        .checked_add(extra)
        .ok_or(io::ErrorKind::OutOfMemory)?;
    let mut bigger = Vec::new();
    bigger
        .try_reserve_exact(need.max(v.capacity().saturating_mul(2)))
        .map_err(|_| io::ErrorKind::OutOfMemory)?;
    bigger.extend_from_slice(v);
    // The old buffer is zeroized as its `Zeroizing` wrapper drops.
    drop(Zeroizing::new(std::mem::replace(&mut **v, bigger)));
    Ok(())
}

/// Appends to a zeroizing buffer (tmpfs writers).
pub(crate) fn append_zeroizing(v: &mut Zeroizing<Vec<u8>>, buf: &[u8]) -> io::Result<()> {
    reserve_zeroizing(v, buf.len())?;
    v.extend_from_slice(buf);
    Ok(())
}

fn pin_mismatch(names: &Names, pin: &[u8; 32]) -> VfsError {
    VfsError::PinMismatch {
        path: names.path.clone(),
        host: names.host.clone(),
        expected: Box::new(*pin),
    }
}

/// What opening a protected file needs besides the file.
pub(crate) struct ProtectedOpen<'a> {
    pub(crate) key: &'a WrapKey,
    pub(crate) bound: &'a str,
    pub(crate) key_name: &'a str,
    pub(crate) pin: Option<&'a [u8; 32]>,
    pub(crate) names: &'a Names,
    pub(crate) stats: &'a Counters,
    /// The largest plaintext decrypted whole into memory.
    pub(crate) whole_read_limit: u64,
}

impl ProtectedOpen<'_> {
    /// Decrypts a whole protected file into memory (all nodes authenticated, bound path checked,
    /// the pin compared); nothing is returned unless all of it checks out. The buffer grows as
    /// nodes authenticate, up to the whole-read limit, which the recorded size is checked
    /// against first.
    pub(crate) fn decrypt_whole(
        &self,
        file: &File,
        physical_len: u64,
    ) -> Result<Zeroizing<Vec<u8>>, VfsError> {
        let names = self.names;
        // Nodes are read straight into the result and authenticated in place, across cores for
        // all but small files: spreading a few nodes across the pool costs more than it saves,
        // and callers may already run one file per core.
        let (data, _) = ward_pf::decrypt_to_vec(
            file,
            self.key,
            Some(self.bound),
            ward_pf::Options {
                threads: if physical_len < PARALLEL_DECRYPT_MIN {
                    1
                } else {
                    0
                },
                memory_limit: self.whole_read_limit,
                ..ward_pf::Options::default()
            },
        )
        .map_err(|e| match e {
            ward_pf::Error::OverLimit { limit } => too_large_to_read(names, limit),
            e => names.pf(self.key_name, e),
        })?;
        if let Some(pin) = self.pin {
            if !digest_eq(&Sha256::digest(&data[..]), pin) {
                return Err(pin_mismatch(names, pin));
            }
        }
        self.stats
            .protected_bytes_decrypted
            .fetch_add(data.len() as u64, Relaxed);
        Ok(data)
    }

    /// Opens a large protected file for random access; if it is pinned, hashes its whole
    /// plaintext through the same handle (so through the metadata it holds) and compares first.
    pub(crate) fn open_streaming(
        &self,
        file: File,
        step: usize,
    ) -> Result<ProtectedFile<File>, VfsError> {
        let names = self.names;
        let mut pf = ProtectedFile::open(file, self.key, Some(self.bound), Mode::Read)
            .map_err(|e| names.pf(self.key_name, e))?;
        let Some(pin) = self.pin else {
            return Ok(pf);
        };
        let mut buf = Zeroizing::new(vec![0u8; step.max(4096)]);
        let mut hasher = Sha256::new();
        let mut off = 0u64;
        loop {
            let n = pf
                .read_at(off, &mut buf[..])
                .map_err(|e| names.pf(self.key_name, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            off += n as u64;
        }
        self.stats.protected_bytes_decrypted.fetch_add(off, Relaxed);
        if !digest_eq(&hasher.finalize(), pin) {
            return Err(pin_mismatch(names, pin));
        }
        Ok(pf)
    }
}

/// Fills `buf` from `file` as far as the file goes; returns the count.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// A trusted file above the memory limit: verified whole at open, each chunk verified again as it
/// is read back (see the module documentation).
pub(crate) struct Chunked {
    file: File,
    len: u64,
    chunk: usize,
    /// `states[i]`: the hasher after every chunk before `i`.
    states: Vec<Sha256>,
    /// `prefix_digests[i]`: SHA-256 of the file up to the end of chunk `i`.
    prefix_digests: Vec<[u8; 32]>,
    /// The current chunk, verified; empty when none is loaded.
    buf: Vec<u8>,
    loaded: Option<u64>,
}

impl Chunked {
    pub(crate) fn open(
        mut file: File,
        expected: &[u8; 32],
        chunk: usize,
        names: &Names,
        stats: &Counters,
    ) -> Result<Chunked, VfsError> {
        let chunk = chunk.max(1);
        let mut buf = Vec::new();
        buf.try_reserve_exact(chunk)
            .map_err(|_| out_of_memory(names, chunk as u64))?;
        buf.resize(chunk, 0);
        let mut hasher = Sha256::new();
        let mut states = Vec::new();
        let mut prefix_digests = Vec::new();
        let mut len = 0u64;
        loop {
            let n = read_full(&mut file, &mut buf).map_err(|e| names.io("reading", e))?;
            if n == 0 {
                break;
            }
            states.push(hasher.clone());
            hasher.update(&buf[..n]);
            prefix_digests.push(hasher.clone().finalize().into());
            len += n as u64;
            if n < chunk {
                break;
            }
        }
        let found = hasher.finalize();
        if !digest_eq(&found, expected) {
            return Err(trusted_mismatch(names, expected, &found));
        }
        stats.trusted_bytes_verified.fetch_add(len, Relaxed);
        buf.clear();
        Ok(Chunked {
            file,
            len,
            chunk,
            states,
            prefix_digests,
            buf,
            loaded: None,
        })
    }

    /// The length verified at open.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    fn resized(&self, names: &Names, now: u64) -> VfsError {
        VfsError::TrustedResized {
            path: names.path.clone(),
            host: names.host.clone(),
            was: self.len,
            now,
        }
    }

    /// Reads chunk `i` from disk into `buf` and checks it; on failure nothing stays loaded.
    fn load(&mut self, i: u64, names: &Names, stats: &Counters) -> Result<(), VfsError> {
        self.loaded = None;
        self.buf.clear();
        let offset = i * self.chunk as u64;
        let n = (self.len - offset).min(self.chunk as u64) as usize;
        let now = self
            .file
            .metadata()
            .map_err(|e| names.io("checking the length of", e))?
            .len();
        if now != self.len {
            return Err(self.resized(names, now));
        }
        self.buf.resize(n, 0);
        if let Err(e) = self.file.read_exact_at(&mut self.buf, offset) {
            self.buf.clear();
            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                let now = self.file.metadata().map(|m| m.len()).unwrap_or(0);
                self.resized(names, now)
            } else {
                names.io("reading", e)
            });
        }
        let state = self.states.get(i as usize).cloned();
        let expected = self.prefix_digests.get(i as usize);
        let ok = match (state, expected) {
            (Some(mut h), Some(expected)) => {
                h.update(&self.buf);
                digest_eq(&h.finalize(), expected)
            }
            _ => false,
        };
        if !ok {
            self.buf.clear();
            return Err(VfsError::TrustedChanged {
                path: names.path.clone(),
                host: names.host.clone(),
                chunk: i,
                offset,
            });
        }
        stats.trusted_bytes_verified.fetch_add(n as u64, Relaxed);
        self.loaded = Some(i);
        Ok(())
    }

    fn read_at(
        &mut self,
        offset: u64,
        out: &mut [u8],
        names: &Names,
        stats: &Counters,
    ) -> Result<usize, VfsError> {
        if offset >= self.len || out.is_empty() {
            return Ok(0);
        }
        let i = offset / self.chunk as u64;
        if self.loaded != Some(i) {
            self.load(i, names, stats)?;
        }
        let within = (offset - i * self.chunk as u64) as usize;
        let avail = self.buf.get(within..).unwrap_or(&[]);
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        Ok(n)
    }
}

pub(crate) enum Inner {
    /// Verified or decrypted bytes (small trusted and protected files, tmpfs files, `read`).
    Memory(Arc<Zeroizing<Vec<u8>>>),
    /// A large trusted file.
    Chunked(Box<Chunked>),
    /// A large file of a trusted tree.
    Tree(Box<super::tree::TreeChunks>),
    /// A large protected file.
    Protected {
        pf: Box<ProtectedFile<File>>,
        key_name: String,
    },
    /// An allowed file: passed through unchecked.
    Host(File),
}

/// A read-only handle on a file the manifest lets the workload read: `Read + Seek`, plus
/// [`read_at`](Self::read_at) with typed errors.
///
/// Whatever it returns has been verified (trusted files), authenticated (protected files) or is
/// an allowed file, passed through as the manifest says:
/// - a trusted file up to the memory limit was hashed at open in one pass into memory and is
///   served from there, so later changes on disk cannot reach the workload;
/// - a larger trusted file was hashed at open, and each chunk is read back from disk and checked
///   against SHA-256 states recorded at open before any of its bytes are returned (a chunk changed
///   since open fails with [`VfsError::TrustedChanged`], a changed length with
///   [`VfsError::TrustedResized`]);
/// - a protected file's nodes are authenticated against the metadata read at open as they load.
///
/// Failures while reading come back from `Read` as an `io::Error` wrapping the [`VfsError`]
/// (`InvalidData` for integrity failures).
pub struct VfsFile {
    names: Names,
    kind: FileKind,
    len: u64,
    pos: u64,
    inner: Inner,
    stats: Arc<Counters>,
}

impl std::fmt::Debug for VfsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfsFile")
            .field("path", &self.names.path)
            .field("host", &self.names.host)
            .field("kind", &self.kind)
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl VfsFile {
    pub(crate) fn new(
        names: Names,
        kind: FileKind,
        len: u64,
        inner: Inner,
        stats: Arc<Counters>,
    ) -> VfsFile {
        VfsFile {
            names,
            kind,
            len,
            pos: 0,
            inner,
            stats,
        }
    }

    pub(crate) fn memory(
        names: Names,
        kind: FileKind,
        data: Arc<Zeroizing<Vec<u8>>>,
        stats: Arc<Counters>,
    ) -> VfsFile {
        let len = data.len() as u64;
        VfsFile::new(names, kind, len, Inner::Memory(data), stats)
    }

    /// The normalised workload path.
    pub fn path(&self) -> &str {
        &self.names.path
    }

    /// What kind of file this is.
    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// Length in bytes (plaintext length for protected files), as verified at open.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the whole file is held in memory (verified or decrypted at open).
    pub fn is_in_memory(&self) -> bool {
        matches!(self.inner, Inner::Memory(_))
    }

    /// Reads up to `buf.len()` bytes at `offset` (fewer only at the end of the file); does not
    /// move the `Read` position.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, VfsError> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.read_some(offset.saturating_add(done as u64), &mut buf[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Like [`read_at`](Self::read_at), through `&self`, for the kinds that allow reads in
    /// parallel (in memory, trusted-tree files, allowed files); `None` for the others.
    pub fn read_at_shared(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize, VfsError>> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            let r = match &self.inner {
                Inner::Memory(data) => {
                    let start = usize::try_from(at).unwrap_or(usize::MAX);
                    let avail = data.get(start..).unwrap_or(&[]);
                    let n = avail.len().min(buf.len() - done);
                    buf[done..done + n].copy_from_slice(&avail[..n]);
                    Ok(n)
                }
                Inner::Tree(c) => c.read_at(at, &mut buf[done..], &self.names, &self.stats),
                Inner::Host(file) => loop {
                    match file.read_at(&mut buf[done..], at) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        r => break r.map_err(|e| self.names.io("reading", e)),
                    }
                },
                _ => return None,
            };
            match r {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(done))
    }

    fn read_some(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, VfsError> {
        match &mut self.inner {
            Inner::Memory(data) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let avail = data.get(start..).unwrap_or(&[]);
                let n = avail.len().min(buf.len());
                buf[..n].copy_from_slice(&avail[..n]);
                Ok(n)
            }
            Inner::Chunked(c) => c.read_at(offset, buf, &self.names, &self.stats),
            Inner::Tree(c) => c.read_at(offset, buf, &self.names, &self.stats),
            Inner::Protected { pf, key_name } => {
                let n = pf
                    .read_at(offset, buf)
                    .map_err(|e| self.names.pf(key_name, e))?;
                self.stats
                    .protected_bytes_decrypted
                    .fetch_add(n as u64, Relaxed);
                Ok(n)
            }
            Inner::Host(file) => loop {
                match file.read_at(buf, offset) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r.map_err(|e| self.names.io("reading", e)),
                }
            },
        }
    }

    /// All of the file's bytes, consuming the handle (no copy for in-memory files).
    pub(crate) fn into_bytes(mut self) -> Result<Zeroizing<Vec<u8>>, VfsError> {
        if let Inner::Memory(data) = &mut self.inner {
            let data = std::mem::take(data);
            return Ok(
                Arc::try_unwrap(data).unwrap_or_else(|shared| Zeroizing::new(shared.to_vec()))
            );
        }
        let mut out = Zeroizing::new(Vec::new());
        let mut buf = Zeroizing::new(vec![0u8; 1 << 16]);
        let mut off = 0u64;
        loop {
            let n = self.read_some(off, &mut buf[..])?;
            if n == 0 {
                return Ok(out);
            }
            append_zeroizing(&mut out, &buf[..n]).map_err(|e| self.names.io("reading", e))?;
            off += n as u64;
        }
    }
}

impl Read for VfsFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_some(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for VfsFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )),
        }
    }
}
