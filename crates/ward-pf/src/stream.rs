//! Whole-file encryption, decryption and verification, streaming with bounded memory and data
//! nodes processed in parallel.
//!
//! Memory: one batch of nodes (a few MiB) plus 32 bytes per MHT node still waiting for its parent.
//! Encryption writes each MHT node provisionally (under a throwaway key) as soon as its data nodes
//! are done and finalises all MHT nodes children-first at the end, because with breadth-first MHT
//! numbering a parent is complete only when the stream is.

use crate::crypto::{self, KeyRng, NodeKey, Tag, WrapKey};
use crate::error::{io, Error, Result};
use crate::layout::{
    data_node_start, data_physical, mht_physical, NodeId, Shape, CHILDREN_PER_MHT, DATA_PER_MHT,
    INLINE_DATA_SIZE, NODE_SIZE,
};
use crate::node::{Metadata, MetadataNode, MhtNode, NodeCrypto, Version};
use crate::path::normalize;
use crate::pipeline::{with_writer, Writer};
use crate::storage::{Source, Storage};
use std::collections::HashMap;
use std::io::{Read, Write};
use zeroize::Zeroize;

/// MHT groups (1 MHT node + 96 data nodes, ~388 KiB) handled per batch.
const GROUPS_PER_BATCH: usize = 8;
/// Bytes of one group on disk.
const GROUP_BYTES: usize = (DATA_PER_MHT as usize + 1) * NODE_SIZE;

/// Reports progress in plaintext bytes done so far.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// The largest plaintext [`decrypt_to_vec`] holds in memory unless told otherwise (1 GiB).
pub const DEFAULT_MEMORY_LIMIT: u64 = 1 << 30;

/// How to run a whole-file operation.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// Worker threads for node encryption/decryption: 0 = all cores (rayon's global pool),
    /// 1 = the calling thread. Output writes always overlap on a thread of their own.
    pub threads: usize,
    /// Called after each batch with the plaintext bytes processed so far.
    pub progress: Option<Progress<'a>>,
    /// The largest plaintext [`decrypt_to_vec`] accepts (default [`DEFAULT_MEMORY_LIMIT`]); a
    /// file recording a larger size fails with [`Error::OverLimit`] before any data is read.
    /// Streaming operations ignore it: their memory does not grow with the file.
    pub memory_limit: u64,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            threads: 0,
            progress: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
        }
    }
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("threads", &self.threads)
            .field("memory_limit", &self.memory_limit)
            .finish_non_exhaustive()
    }
}

/// What a protected file says about itself once opened with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Format version.
    pub version: Version,
    /// Plaintext size in bytes.
    pub size: u64,
    /// The path bound in the metadata.
    pub bound_path: String,
    /// Physical nodes on disk.
    pub nodes: u64,
}

/// The header of a protected file, readable without its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Format version.
    pub version: Version,
    /// Physical nodes on disk.
    pub nodes: u64,
}

/// Reads the plaintext header and checks the file is a whole number of nodes.
pub(crate) fn read_header<S: Source + ?Sized>(src: &S) -> Result<(MetadataNode, u64)> {
    let len = src.byte_len().map_err(io("reading the file length"))?;
    if len == 0 || len % NODE_SIZE as u64 != 0 {
        // A cut-short protected file and some other file are different mistakes, with different
        // fixes: tell them apart by the file id.
        let mut id = [0u8; 8];
        if len >= id.len() as u64
            && src.read_exact_at(&mut id, 0).is_ok()
            && id == crate::node::FILE_ID
        {
            return Err(Error::PartialNode { len });
        }
        return Err(Error::BadLength { len });
    }
    let mut node = Box::new([0u8; NODE_SIZE]);
    src.read_exact_at(&mut node[..], 0)
        .map_err(io("reading the metadata node"))?;
    let header = MetadataNode::parse(&node)?;
    Ok((header, len / NODE_SIZE as u64))
}

/// Version and node count, without the key.
pub fn header_info<S: Source + ?Sized>(src: &S) -> Result<HeaderInfo> {
    let (header, nodes) = read_header(src)?;
    Ok(HeaderInfo {
        version: header.version,
        nodes,
    })
}

/// An opened file: authenticated metadata, path checked, node count checked against the size.
pub(crate) struct Opened {
    pub version: Version,
    pub meta: Metadata,
    pub shape: Shape,
    pub nodes: u64,
}

impl Opened {
    pub(crate) fn info(&self) -> FileInfo {
        FileInfo {
            version: self.version,
            size: self.meta.size,
            bound_path: self.meta.path(),
            nodes: self.nodes,
        }
    }
}

/// Checks the bound path against `expected` after normalising the latter.
pub(crate) fn check_path(meta: &Metadata, expected: Option<&str>) -> Result<()> {
    if let Some(expected) = expected {
        let expected = normalize(expected);
        if meta.path_bytes() != expected.as_bytes() {
            return Err(Error::PathMismatch { expected });
        }
    }
    Ok(())
}

pub(crate) fn open_metadata<S: Source + ?Sized>(
    src: &S,
    key: &WrapKey,
    expected_path: Option<&str>,
) -> Result<Opened> {
    let (header, nodes) = read_header(src)?;
    let meta = header.decrypt(key)?;
    check_path(&meta, expected_path)?;
    let shape = Shape::for_size(meta.size).ok_or(Error::TooLarge)?;
    let expected = shape.physical_nodes();
    if nodes < expected {
        return Err(Error::Truncated {
            expected,
            found: nodes,
        });
    }
    if nodes > expected {
        return Err(Error::TrailingNodes {
            expected,
            extra: nodes - expected,
        });
    }
    Ok(Opened {
        version: header.version,
        meta,
        shape,
        nodes,
    })
}

/// Opens the metadata only: checks key, path and node count. O(1).
pub fn info<S: Source + ?Sized>(
    src: &S,
    key: &WrapKey,
    expected_path: Option<&str>,
) -> Result<FileInfo> {
    Ok(open_metadata(src, key, expected_path)?.info())
}

/// Where node crypto runs.
#[derive(Clone, Copy)]
enum Pool<'p> {
    /// On the calling thread.
    Inline,
    /// On rayon's global pool (all cores), shared across calls.
    Global,
    /// On a pool of the size the caller asked for.
    Sized(&'p rayon::ThreadPool),
}

/// Runs `f` with workers for `threads` (0 = all cores, 1 = the calling thread).
fn with_pool<T>(threads: usize, f: impl FnOnce(Pool<'_>) -> T) -> T {
    match threads {
        1 => f(Pool::Inline),
        0 => f(Pool::Global),
        n => match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
            Ok(pool) => f(Pool::Sized(&pool)),
            // No threads to be had: still correct, just slower.
            Err(_) => f(Pool::Inline),
        },
    }
}

/// Applies `job` to every element, in parallel unless inline.
fn for_each<T: Send>(pool: Pool<'_>, items: &mut [T], job: impl Fn(&mut T) + Sync) {
    use rayon::prelude::*;
    match pool {
        _ if items.len() < 2 => items.iter_mut().for_each(job),
        Pool::Inline => items.iter_mut().for_each(job),
        Pool::Global => items.par_iter_mut().for_each(&job),
        Pool::Sized(pool) => pool.install(|| items.par_iter_mut().for_each(&job)),
    }
}

/// Decrypts a whole protected file into `out`, checking every node before writing its bytes.
///
/// `expected_path`, when given, is normalised and must equal the bound path. Errors leave `out`
/// with a prefix of authenticated plaintext at most; callers writing files should write to a
/// temporary file and rename it only on success.
pub fn decrypt<S: Source + Sync + ?Sized, W: Write + Send>(
    src: &S,
    key: &WrapKey,
    expected_path: Option<&str>,
    out: &mut W,
    opts: Options<'_>,
) -> Result<FileInfo> {
    let opened = open_metadata(src, key, expected_path)?;
    let size = opened.meta.size;
    let inline_len = size.min(INLINE_DATA_SIZE as u64) as usize;
    out.write_all(&opened.meta.inline[..inline_len])
        .map_err(io("writing decrypted data"))?;
    if let Some(p) = opts.progress {
        p(inline_len as u64);
    }
    if opened.shape.data_nodes > 0 {
        with_pool(opts.threads, |pool| {
            decrypt_nodes(src, &opened, out, pool, opts.progress)
        })?;
    }
    out.flush().map_err(io("writing decrypted data"))?;
    Ok(opened.info())
}

/// Checks every node of a protected file without writing anything.
pub fn verify<S: Source + Sync + ?Sized>(
    src: &S,
    key: &WrapKey,
    expected_path: Option<&str>,
    opts: Options<'_>,
) -> Result<FileInfo> {
    let opened = open_metadata(src, key, expected_path)?;
    if let Some(p) = opts.progress {
        p(opened.meta.size.min(INLINE_DATA_SIZE as u64));
    }
    if opened.shape.data_nodes > 0 {
        with_pool(opts.threads, |pool| {
            decrypt_batches(src, &opened, None, pool, opts.progress)
        })?;
    }
    Ok(opened.info())
}

/// Decrypts a whole protected file into memory.
///
/// Unlike [`decrypt`] into a `Vec`, every data node is read from `src` straight into its place
/// in the result and authenticated there, the groups of 96 nodes spread across `opts.threads`:
/// one copy of the data instead of three and no writer thread.
///
/// Memory grows only as the file authenticates: a batch of MHT nodes is opened first, then the
/// result grows by that batch's data, which is read and checked in place. A forged file that
/// records a huge size thus costs at most one batch (and the buffer's doubling) beyond what
/// authenticated. A recorded size above `opts.memory_limit` is refused with
/// [`Error::OverLimit`] before any data node is read.
///
/// On any error nothing is returned and every byte written so far is wiped.
pub fn decrypt_to_vec<S: Source + Sync + ?Sized>(
    src: &S,
    key: &WrapKey,
    expected_path: Option<&str>,
    opts: Options<'_>,
) -> Result<(zeroize::Zeroizing<Vec<u8>>, FileInfo)> {
    let opened = open_metadata(src, key, expected_path)?;
    let shape = opened.shape;
    let size = opened.meta.size;
    if size > opts.memory_limit {
        return Err(Error::OverLimit {
            limit: opts.memory_limit,
        });
    }
    let inline_len = size.min(INLINE_DATA_SIZE as u64) as usize;
    // Whole nodes, the last one's padding included; trimmed at the end.
    let full = if shape.data_nodes > 0 {
        INLINE_DATA_SIZE as u64 + shape.data_nodes * NODE_SIZE as u64
    } else {
        inline_len as u64
    };
    let full = usize::try_from(full).map_err(|_| Error::TooLarge)?;
    // Address space for the whole file up front (so growing never copies), but no memory: the
    // pages are only touched, batch by batch, after each batch's MHT nodes authenticated. A
    // forged size costs address space within `memory_limit`, not RSS.
    let mut out = zeroize::Zeroizing::new(Vec::new());
    out.try_reserve_exact(full).map_err(|_| Error::Io {
        context: "allocating memory for the plaintext",
        source: std::io::ErrorKind::OutOfMemory.into(),
    })?;
    if let Err(e) = grow(&mut out, inline_len, full) {
        discard(&mut out);
        return Err(e);
    }
    out.extend_from_slice(&opened.meta.inline[..inline_len]);
    if shape.data_nodes > 0 {
        let result = with_pool(opts.threads, |pool| {
            decrypt_groups_into(src, &opened, &mut out, full, pool, opts.progress)
        });
        if let Err(e) = result {
            discard(&mut out);
            return Err(e);
        }
        out.truncate(size as usize);
    }
    if let Some(p) = opts.progress {
        p(size);
    }
    let info = opened.info();
    Ok((out, info))
}

/// Wipes what was written to `out` and frees it without touching the rest of its reservation
/// (`Zeroizing`'s drop would write the whole capacity, faulting in every reserved page).
fn discard(out: &mut zeroize::Zeroizing<Vec<u8>>) {
    out.as_mut_slice().zeroize();
    drop(std::mem::take(&mut **out));
}

/// Makes room in `out` for `extra` more bytes, at least doubling its capacity (but not beyond
/// `full`), and wipes the old buffer: a plain `Vec` reallocation would leave authenticated
/// plaintext behind in freed memory.
fn grow(out: &mut zeroize::Zeroizing<Vec<u8>>, extra: usize, full: usize) -> Result<()> {
    if out.capacity() - out.len() >= extra {
        return Ok(());
    }
    let need = out.len() + extra;
    let cap = out.capacity().saturating_mul(2).min(full).max(need);
    let mut bigger = Vec::new();
    bigger.try_reserve_exact(cap).map_err(|_| Error::Io {
        context: "allocating memory for the plaintext",
        source: std::io::ErrorKind::OutOfMemory.into(),
    })?;
    bigger.extend_from_slice(out);
    drop(zeroize::Zeroizing::new(std::mem::replace(
        &mut **out, bigger,
    )));
    Ok(())
}

/// Groups of 96 data nodes [`decrypt_to_vec`] grows its result by at a time (~12 MiB): enough
/// work per batch for many cores, little beyond what authenticated.
const GROUPS_PER_GROWTH: usize = 4 * GROUPS_PER_BATCH;

/// Opens the MHT nodes and decrypts the data nodes into `out` batch by batch, growing `out` by
/// a batch only once that batch's MHT nodes authenticated. The first failure is the one
/// [`decrypt`] reports (it goes by batches of [`GROUPS_PER_BATCH`] groups, an MHT node failing
/// before its batch's data nodes), whatever the number of threads.
fn decrypt_groups_into<S: Source + Sync + ?Sized>(
    src: &S,
    opened: &Opened,
    out: &mut zeroize::Zeroizing<Vec<u8>>,
    full: usize,
    pool: Pool<'_>,
    progress: Option<Progress<'_>>,
) -> Result<()> {
    let shape = opened.shape;
    let mut walk = MhtWalk::new(opened);
    let group_bytes = DATA_PER_MHT as usize * NODE_SIZE;
    let mut m = 0;
    while m < shape.mht_nodes {
        let m_end = (m + GROUPS_PER_GROWTH as u64).min(shape.mht_nodes);
        let mut groups: Vec<Vec<NodeCrypto>> = Vec::with_capacity(GROUPS_PER_GROWTH);
        let mut mht_failure = None;
        for mi in m..m_end {
            let mut node = Box::new([0u8; NODE_SIZE]);
            let opened = src
                .read_exact_at(&mut node[..], mht_physical(mi) * NODE_SIZE as u64)
                .map_err(io("reading the protected file"))
                .and_then(|()| walk.open(mi, node));
            match opened {
                Ok(mht) => {
                    let first = mi * DATA_PER_MHT;
                    let count = (shape.data_nodes - first).min(DATA_PER_MHT);
                    groups.push((0..count as usize).map(|slot| mht.data(slot)).collect());
                }
                Err(e) => {
                    mht_failure = Some((mi, e));
                    break;
                }
            }
        }
        // Only the groups whose MHT node authenticated get room in the result.
        let start = out.len();
        let end = (start + groups.len() * group_bytes).min(full);
        grow(out, end - start, full)?;
        out.resize(end, 0);
        let mut jobs: Vec<GroupJob<'_>> = out[start..end]
            .chunks_mut(group_bytes)
            .zip(groups)
            .zip(m..)
            .map(|((buf, nodes), mht)| GroupJob {
                mht,
                nodes,
                buf,
                result: Ok(()),
            })
            .collect();
        for_each(pool, &mut jobs, |job| job.result = job.run(src));
        // The first failure in file order, so the error is the same on any number of threads.
        let data_failure = jobs
            .into_iter()
            .find_map(|j| j.result.err().map(|e| (j.mht, e)));
        let batch = |mi: u64| mi / GROUPS_PER_BATCH as u64;
        match (data_failure, mht_failure) {
            (Some((d, e)), Some((mi, _))) if batch(d) < batch(mi) => return Err(e),
            (_, Some((_, e))) | (Some((_, e)), None) => return Err(e),
            (None, None) => {}
        }
        if let Some(p) = progress {
            p((out.len() as u64).min(opened.meta.size));
        }
        m = m_end;
    }
    Ok(())
}

/// Opens MHT nodes in file order (breadth-first, so parents come first), each with the key and
/// tag its parent holds.
struct MhtWalk {
    /// Keys and tags of MHT nodes not yet reached, from their already-opened parents.
    pending: HashMap<u64, NodeCrypto>,
    mht_nodes: u64,
}

impl MhtWalk {
    fn new(opened: &Opened) -> Self {
        let mut pending = HashMap::new();
        pending.insert(0, opened.meta.root.clone());
        MhtWalk {
            pending,
            mht_nodes: opened.shape.mht_nodes,
        }
    }

    /// Authenticates MHT node `m` from its bytes on disk and remembers its children's keys.
    fn open(&mut self, m: u64, node: Box<[u8; NODE_SIZE]>) -> Result<MhtNode> {
        let crypto = self
            .pending
            .remove(&m)
            .expect("parents are opened before their children");
        let mht = MhtNode::open(node, &crypto).ok_or(Error::NodeAuthentication {
            node: NodeId::Mht { index: m },
        })?;
        for slot in 0..CHILDREN_PER_MHT {
            let child = m * CHILDREN_PER_MHT + 1 + slot;
            if child < self.mht_nodes {
                self.pending.insert(child, mht.child(slot as usize));
            }
        }
        Ok(mht)
    }
}

/// The data nodes under one MHT node, decrypted in place in the caller's buffer.
struct GroupJob<'b> {
    mht: u64,
    nodes: Vec<NodeCrypto>,
    buf: &'b mut [u8],
    result: Result<()>,
}

impl GroupJob<'_> {
    fn run<S: Source + ?Sized>(&mut self, src: &S) -> Result<()> {
        let first = self.mht * DATA_PER_MHT;
        // The group's data nodes follow its MHT node on disk, as they follow each other in the
        // plaintext: one read.
        src.read_exact_at(self.buf, data_physical(first) * NODE_SIZE as u64)
            .map_err(io("reading the protected file"))?;
        for (slot, (node, crypto)) in self.buf.chunks_mut(NODE_SIZE).zip(&self.nodes).enumerate() {
            if !crypto::open(&crypto.key, &crypto.tag, node) {
                return Err(Error::NodeAuthentication {
                    node: NodeId::Data {
                        index: first + slot as u64,
                    },
                });
            }
        }
        Ok(())
    }
}

struct DataJob<'b> {
    index: u64,
    crypto: NodeCrypto,
    buf: &'b mut [u8],
    ok: bool,
}

fn decrypt_nodes<S: Source + ?Sized, W: Write + Send>(
    src: &S,
    opened: &Opened,
    out: &mut W,
    pool: Pool<'_>,
    progress: Option<Progress<'_>>,
) -> Result<()> {
    let write = |bytes: &[u8], _offset: u64| out.write_all(bytes);
    with_writer(write, "writing decrypted data", |writer| {
        decrypt_batches(src, opened, Some(writer), pool, progress)
    })
}

fn decrypt_batches<S: Source + ?Sized>(
    src: &S,
    opened: &Opened,
    mut writer: Option<&mut Writer<'_>>,
    pool: Pool<'_>,
    progress: Option<Progress<'_>>,
) -> Result<()> {
    let shape = opened.shape;
    let mut walk = MhtWalk::new(opened);
    let batch_nodes = (GROUPS_PER_BATCH * GROUP_BYTES / NODE_SIZE) as u64;
    let mut buf = vec![0u8; (shape.physical_nodes() - 1).min(batch_nodes) as usize * NODE_SIZE];
    let mut done = INLINE_DATA_SIZE as u64;

    let mut m = 0;
    let result = (|| {
        while m < shape.mht_nodes {
            let m_end = (m + GROUPS_PER_BATCH as u64).min(shape.mht_nodes);
            let first_phys = mht_physical(m);
            let last_data = (m_end * DATA_PER_MHT).min(shape.data_nodes) - 1;
            let n_phys = (data_physical(last_data) + 1 - first_phys) as usize;
            let bytes = &mut buf[..n_phys * NODE_SIZE];
            src.read_exact_at(bytes, first_phys * NODE_SIZE as u64)
                .map_err(io("reading the protected file"))?;

            // Open the MHT nodes of this batch (in order: a child's key comes from its parent).
            let mut jobs = Vec::with_capacity(n_phys);
            for (g, group) in bytes.chunks_mut(GROUP_BYTES).enumerate() {
                let mi = m + g as u64;
                let (mht_bytes, data_bytes) = group.split_at_mut(NODE_SIZE);
                let mut node = Box::new([0u8; NODE_SIZE]);
                node.copy_from_slice(mht_bytes);
                let mht = walk.open(mi, node)?;
                for (slot, chunk) in data_bytes.chunks_mut(NODE_SIZE).enumerate() {
                    jobs.push(DataJob {
                        index: mi * DATA_PER_MHT + slot as u64,
                        crypto: mht.data(slot),
                        buf: chunk,
                        ok: false,
                    });
                }
            }
            for_each(pool, &mut jobs, |job| {
                job.ok = crypto::open(&job.crypto.key, &job.crypto.tag, job.buf);
            });
            if let Some(bad) = jobs.iter().find(|j| !j.ok) {
                return Err(Error::NodeAuthentication {
                    node: NodeId::Data { index: bad.index },
                });
            }
            let last = jobs.last().expect("a batch has data nodes").index;
            let batch_end = (data_node_start(last) + NODE_SIZE as u64).min(opened.meta.size);
            if let Some(writer) = writer.as_mut() {
                let mut plain = writer.buffer(0);
                for job in &jobs {
                    let start = data_node_start(job.index);
                    let take = (opened.meta.size - start).min(NODE_SIZE as u64) as usize;
                    plain.extend_from_slice(&job.buf[..take]);
                }
                writer.send(plain, 0)?;
            }
            drop(jobs);
            done = batch_end;
            if let Some(p) = progress {
                p(done);
            }
            m = m_end;
        }
        Ok(())
    })();
    buf.zeroize();
    result
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read + ?Sized>(input: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::Io {
                    context: "reading the input",
                    source: e,
                })
            }
        }
    }
    Ok(n)
}

/// Encrypts everything `input` yields into a new protected file (format 2.0) in `out`, binding
/// `bound_path` (normalised first, as Gramine does).
///
/// `out` is overwritten from offset 0 and set to the exact length of the result. It must be
/// readable too: MHT nodes are written provisionally and read back to be finalised.
pub fn encrypt<R: Read + ?Sized, S: Storage + Send + ?Sized>(
    input: &mut R,
    key: &WrapKey,
    bound_path: &str,
    out: &mut S,
    opts: Options<'_>,
) -> Result<FileInfo> {
    let mut meta = Metadata::new(&normalize(bound_path))?;
    let mut rng = KeyRng::from_os()?;
    let n = read_full(input, &mut meta.inline[..])?;
    meta.size = n as u64;
    if let Some(p) = opts.progress {
        p(meta.size);
    }
    if n == INLINE_DATA_SIZE {
        let (size, root) = with_pool(opts.threads, |pool| {
            encrypt_nodes(input, out, &mut rng, pool, opts.progress)
        })?;
        meta.size += size;
        if let Some(root) = root {
            meta.root = root;
        }
    }
    let shape = Shape::for_size(meta.size).ok_or(Error::TooLarge)?;
    let node = meta.encrypt(key, &mut rng);
    out.write_all_at(&node.to_bytes()[..], 0)
        .map_err(io("writing the metadata node"))?;
    out.set_len(shape.physical_len())
        .map_err(io("setting the output length"))?;
    Ok(FileInfo {
        version: Version::V2_0,
        size: meta.size,
        bound_path: meta.path(),
        nodes: shape.physical_nodes(),
    })
}

/// Encrypts the data nodes; returns the bytes encrypted and the root MHT's key and tag.
fn encrypt_nodes<R: Read + ?Sized, S: Storage + Send + ?Sized>(
    input: &mut R,
    out: &mut S,
    rng: &mut KeyRng,
    pool: Pool<'_>,
    progress: Option<Progress<'_>>,
) -> Result<(u64, Option<NodeCrypto>)> {
    // Throwaway keys of MHT nodes written provisionally (data slots only).
    let mut provisional: Vec<NodeCrypto> = Vec::new();
    let write = |bytes: &[u8], offset: u64| out.write_all_at(bytes, offset);
    let total = with_writer(write, "writing the output", |writer| {
        encrypt_batches(input, writer, rng, &mut provisional, pool, progress)
    })?;
    if provisional.is_empty() {
        return Ok((total, None));
    }

    // Finalise MHT nodes children first, each under a fresh key recorded in its parent.
    let mut waiting: HashMap<u64, NodeCrypto> = HashMap::new();
    let mut root = None;
    for m in (0..provisional.len() as u64).rev() {
        let mut mht = reopen_provisional(out, m, &provisional[m as usize])?;
        for slot in 0..CHILDREN_PER_MHT {
            if let Some(c) = waiting.remove(&(m * CHILDREN_PER_MHT + 1 + slot)) {
                mht.set_child(slot as usize, &c);
            }
        }
        let (sealed, crypto) = mht.seal(rng);
        out.write_all_at(&sealed[..], mht_physical(m) * NODE_SIZE as u64)
            .map_err(io("writing the output"))?;
        if m == 0 {
            root = Some(crypto);
        } else {
            waiting.insert(m, crypto);
        }
    }
    Ok((total, root))
}

/// Reads, encrypts and queues for writing batches laid out as on disk: each group is an MHT
/// node (written provisionally) followed by its data nodes.
fn encrypt_batches<R: Read + ?Sized>(
    input: &mut R,
    writer: &mut Writer<'_>,
    rng: &mut KeyRng,
    provisional: &mut Vec<NodeCrypto>,
    pool: Pool<'_>,
    progress: Option<Progress<'_>>,
) -> Result<u64> {
    let mut total = 0u64;
    let mut eof = false;
    // Small inputs should not pay for big buffers: batches grow to full size.
    let mut groups = 1;
    while !eof {
        let first_group = provisional.len() as u64;
        // Plaintext until sealed: wiped if an error (a failed read) drops it early.
        let mut buf = zeroize::Zeroizing::new(writer.buffer(groups * GROUP_BYTES));
        groups = (groups * 2).min(GROUPS_PER_BATCH);
        // Fill the data part of each group straight from the input, zero-padding the last node.
        let mut counts = Vec::with_capacity(GROUPS_PER_BATCH);
        for group in buf.chunks_mut(GROUP_BYTES) {
            let data = &mut group[NODE_SIZE..];
            let n = read_full(input, data)?;
            total += n as u64;
            let nodes = n.div_ceil(NODE_SIZE);
            data[n..nodes * NODE_SIZE].fill(0);
            if nodes > 0 {
                counts.push(nodes);
            }
            if n < data.len() {
                eof = true;
                break;
            }
        }
        if counts.is_empty() {
            break;
        }
        let used = (counts.len() - 1) * GROUP_BYTES + (1 + counts[counts.len() - 1]) * NODE_SIZE;
        buf.truncate(used);

        let mut jobs: Vec<(NodeKey, Tag, &mut [u8])> = Vec::with_capacity(GROUPS_PER_BATCH * 96);
        let mut mht_slots = Vec::with_capacity(counts.len());
        for (group, &nodes) in buf.chunks_mut(GROUP_BYTES).zip(&counts) {
            let (mht, data) = group.split_at_mut(NODE_SIZE);
            mht_slots.push(mht);
            for chunk in data[..nodes * NODE_SIZE].chunks_mut(NODE_SIZE) {
                jobs.push((rng.node_key(), [0u8; 16], chunk));
            }
        }
        for_each(pool, &mut jobs, |(key, tag, chunk)| {
            *tag = crypto::seal(key, chunk);
        });
        let mut sealed = jobs
            .into_iter()
            .map(|(key, tag, _)| NodeCrypto { key, tag });
        for (slot_bytes, &nodes) in mht_slots.into_iter().zip(&counts) {
            let mut mht = MhtNode::default();
            for (slot, c) in sealed.by_ref().take(nodes).enumerate() {
                mht.set_data(slot, &c);
            }
            let (ciphertext, crypto) = mht.seal(rng);
            slot_bytes.copy_from_slice(&ciphertext[..]);
            provisional.push(crypto);
        }
        drop(sealed);
        writer.send(
            std::mem::take(&mut *buf),
            mht_physical(first_group) * NODE_SIZE as u64,
        )?;
        if let Some(p) = progress {
            p(INLINE_DATA_SIZE as u64 + total);
        }
    }
    Ok(total)
}

fn reopen_provisional<S: Storage + ?Sized>(out: &S, m: u64, c: &NodeCrypto) -> Result<MhtNode> {
    let mut node = Box::new([0u8; NODE_SIZE]);
    out.read_exact_at(&mut node[..], mht_physical(m) * NODE_SIZE as u64)
        .map_err(io("reading back the output"))?;
    // Fails only if someone modified the output while we wrote it.
    MhtNode::open(node, c).ok_or(Error::NodeAuthentication {
        node: NodeId::Mht { index: m },
    })
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
