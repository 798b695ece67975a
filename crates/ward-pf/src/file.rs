//! A random-access handle on a protected file, for a virtual file system: `read_at`, `write_at`,
//! `set_len`, `flush`, with an LRU cache of decrypted nodes.
//!
//! Invariants that make it correct:
//! - a cached node marked dirty has every ancestor MHT cached and dirty, so dirty nodes are never
//!   evicted and a flush can re-key the whole chain up to the metadata;
//! - a clean cached node (and every node not cached) matches what is on disk, and its parent's slot
//!   holds its current key and tag, so any node can be (re)loaded and authenticated on demand;
//! - data node `d` exists iff `d < Shape::for_size(size).data_nodes` (likewise MHT nodes), and
//!   unused bytes — inline tail, data-node tail, unused MHT slots — are zero, as Gramine leaves them.

use crate::crypto::{self, KeyRng, WrapKey};
use crate::error::{io, Error, Result};
use crate::layout::{
    data_node_of, data_node_start, data_parent, data_physical, mht_parent, mht_physical, NodeId,
    Shape, CHILDREN_PER_MHT, INLINE_DATA_SIZE, MAX_PLAINTEXT_SIZE, NODE_SIZE,
};
use crate::node::{Metadata, MhtNode, NodeCrypto, Version};
use crate::path::normalize;
use crate::storage::Storage;
use crate::stream::{check_path, open_metadata, FileInfo};
use std::collections::HashMap;
use zeroize::Zeroize;

/// Default number of decrypted nodes kept in memory (Gramine keeps 48).
pub const DEFAULT_CACHE_NODES: usize = 64;

enum Cached {
    Mht(MhtNode),
    Data(Box<[u8; NODE_SIZE]>),
}

struct Entry {
    node: Cached,
    dirty: bool,
    last_use: u64,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Cached::Data(buf) = &mut self.node {
            buf.zeroize();
        }
        // MhtNode zeroizes itself.
    }
}

/// Whether a handle may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reads only; writes fail with [`Error::ReadOnly`].
    Read,
    /// Reads and writes.
    ReadWrite,
}

/// An open protected file with random access.
///
/// Changes reach storage on [`flush`](Self::flush) (or when the cache must make room); dropping a
/// handle with unflushed changes discards them. Writes are not crash-atomic in place: for a new
/// file, write to a temporary file and rename it after `flush` + `sync`.
pub struct ProtectedFile<S: Storage> {
    storage: S,
    key: WrapKey,
    meta: Metadata,
    version: Version,
    rng: KeyRng,
    cache: HashMap<NodeId, Entry>,
    capacity: usize,
    tick: u64,
    meta_dirty: bool,
    mode: Mode,
    /// The metadata node this handle wrote last (ciphertext, as on disk).
    written_metadata: Option<Box<[u8; NODE_SIZE]>>,
}

impl<S: Storage> std::fmt::Debug for ProtectedFile<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectedFile")
            .field("size", &self.meta.size)
            .field("bound_path", &self.meta.path())
            .field("cached_nodes", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl<S: Storage> ProtectedFile<S> {
    /// Opens an existing protected file. `expected_path`, if given, must equal the bound path
    /// after normalisation. Checks the key, the path and the node count; nodes are authenticated
    /// as they are read.
    pub fn open(
        storage: S,
        key: &WrapKey,
        expected_path: Option<&str>,
        mode: Mode,
    ) -> Result<Self> {
        let opened = open_metadata(&storage, key, expected_path)?;
        Ok(ProtectedFile {
            storage,
            key: key.clone(),
            meta: opened.meta,
            version: opened.version,
            rng: KeyRng::from_os()?,
            cache: HashMap::new(),
            capacity: DEFAULT_CACHE_NODES,
            tick: 0,
            meta_dirty: false,
            mode,
            written_metadata: None,
        })
    }

    /// Starts a new, empty protected file binding `bound_path` (normalised). Whatever `storage`
    /// held is replaced at the first flush.
    pub fn create(storage: S, key: &WrapKey, bound_path: &str) -> Result<Self> {
        Ok(ProtectedFile {
            storage,
            key: key.clone(),
            meta: Metadata::new(&normalize(bound_path))?,
            version: Version::V2_0,
            rng: KeyRng::from_os()?,
            cache: HashMap::new(),
            capacity: DEFAULT_CACHE_NODES,
            tick: 0,
            meta_dirty: true,
            mode: Mode::ReadWrite,
            written_metadata: None,
        })
    }

    /// Sets how many decrypted nodes may stay in memory (at least 4).
    pub fn set_cache_capacity(&mut self, nodes: usize) {
        self.capacity = nodes.max(4);
    }

    /// Plaintext size in bytes.
    pub fn len(&self) -> u64 {
        self.meta.size
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.meta.size == 0
    }

    /// The bound path.
    pub fn bound_path(&self) -> String {
        self.meta.path()
    }

    /// Checks the bound path against `expected` (normalised).
    pub fn check_path(&self, expected: &str) -> Result<()> {
        check_path(&self.meta, Some(expected))
    }

    /// Version, size, bound path and node count as they will be after the next flush.
    pub fn info(&self) -> FileInfo {
        FileInfo {
            version: self.version,
            size: self.meta.size,
            bound_path: self.meta.path(),
            nodes: Shape::for_size(self.meta.size)
                .map(|s| s.physical_nodes())
                .unwrap_or(0),
        }
    }

    /// Whether there are changes not yet flushed.
    pub fn is_dirty(&self) -> bool {
        self.meta_dirty || self.cache.values().any(|e| e.dirty)
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns the count (0 at or past the end).
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.meta.size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(self.meta.size - offset) as usize;
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            if pos < INLINE_DATA_SIZE as u64 {
                let start = pos as usize;
                let take = (n - done).min(INLINE_DATA_SIZE - start);
                buf[done..done + take].copy_from_slice(&self.meta.inline[start..start + take]);
                done += take;
                continue;
            }
            let (d, within) = data_node_of(pos);
            let take = (n - done).min(NODE_SIZE - within);
            self.load_data(d)?;
            let id = NodeId::Data { index: d };
            if let Some(Entry {
                node: Cached::Data(node),
                ..
            }) = self.cache.get(&id)
            {
                buf[done..done + take].copy_from_slice(&node[within..within + take]);
            }
            done += take;
            self.make_room()?;
        }
        Ok(n)
    }

    /// Writes all of `data` at `offset`, zero-filling any gap past the current end.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        if data.is_empty() {
            // Like pwrite(2): writing nothing changes nothing, even past the end.
            return Ok(());
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_PLAINTEXT_SIZE)
            .ok_or(Error::TooLarge)?;
        if offset > self.meta.size {
            self.set_len(offset)?;
        }
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            if pos < INLINE_DATA_SIZE as u64 {
                let start = pos as usize;
                let take = (data.len() - done).min(INLINE_DATA_SIZE - start);
                self.meta.inline[start..start + take].copy_from_slice(&data[done..done + take]);
                done += take;
                self.meta.size = self.meta.size.max(pos + take as u64);
                self.meta_dirty = true;
                continue;
            }
            let (d, within) = data_node_of(pos);
            let take = (data.len() - done).min(NODE_SIZE - within);
            self.data_for_write(d)?;
            if let Some(Entry {
                node: Cached::Data(node),
                ..
            }) = self.cache.get_mut(&NodeId::Data { index: d })
            {
                node[within..within + take].copy_from_slice(&data[done..done + take]);
            }
            done += take;
            self.meta.size = self.meta.size.max(pos + take as u64);
            self.make_room()?;
        }
        debug_assert!(self.meta.size >= end);
        Ok(())
    }

    /// Truncates or zero-extends the plaintext to `size` bytes.
    pub fn set_len(&mut self, size: u64) -> Result<()> {
        self.check_writable()?;
        if size > MAX_PLAINTEXT_SIZE {
            return Err(Error::TooLarge);
        }
        if size > self.meta.size {
            let zeros = vec![0u8; 64 * NODE_SIZE];
            while self.meta.size < size {
                let take = (size - self.meta.size).min(zeros.len() as u64) as usize;
                let at = self.meta.size;
                self.write_at(at, &zeros[..take])?;
            }
            return Ok(());
        }
        if size == self.meta.size {
            return Ok(());
        }
        self.shrink(size)
    }

    fn shrink(&mut self, size: u64) -> Result<()> {
        let old = Shape::for_size(self.meta.size).expect("size is always in range");
        let new = Shape::for_size(size).expect("smaller than a valid size");
        self.meta_dirty = true;
        if size <= INLINE_DATA_SIZE as u64 {
            self.meta.inline[size as usize..].zeroize();
            self.meta.root = NodeCrypto::default();
            self.cache.clear();
            self.meta.size = size;
            return Ok(());
        }
        self.cache.retain(|id, _| match *id {
            NodeId::Data { index } => index < new.data_nodes,
            NodeId::Mht { index } => index < new.mht_nodes,
            NodeId::Metadata => true,
        });
        // Zero the tail of the new last data node.
        let last = new.data_nodes - 1;
        let within = (size - data_node_start(last)) as usize;
        if within < NODE_SIZE {
            self.data_for_write(last)?;
            if let Some(Entry {
                node: Cached::Data(node),
                ..
            }) = self.cache.get_mut(&NodeId::Data { index: last })
            {
                node[within..].zeroize();
            }
        }
        // Clear the slots of data nodes that no longer exist in the last MHT.
        if new.data_nodes < old.data_nodes {
            let (m, slot) = data_parent(last);
            self.mht_for_write(m)?;
            if let Some(mht) = self.cached_mht_mut(m) {
                mht.clear_data_from(slot + 1);
            }
        }
        // Clear child slots pointing at MHT nodes that no longer exist.
        if new.mht_nodes < old.mht_nodes {
            let first_parent = (new.mht_nodes - 1) / CHILDREN_PER_MHT;
            let last_parent = ((old.mht_nodes - 1 - 1) / CHILDREN_PER_MHT).min(new.mht_nodes - 1);
            for p in first_parent..=last_parent {
                let first_child = p * CHILDREN_PER_MHT + 1;
                let keep = new
                    .mht_nodes
                    .saturating_sub(first_child)
                    .min(CHILDREN_PER_MHT);
                if keep < CHILDREN_PER_MHT {
                    self.mht_for_write(p)?;
                    if let Some(mht) = self.cached_mht_mut(p) {
                        mht.clear_children_from(keep as usize);
                    }
                }
            }
        }
        self.meta.size = size;
        self.make_room()
    }

    /// Encrypts every changed node under fresh keys and writes them, the metadata last.
    pub fn flush(&mut self) -> Result<()> {
        if !self.is_dirty() {
            return Ok(());
        }
        self.check_writable()?;
        let shape = Shape::for_size(self.meta.size).expect("size is always in range");
        let mut dirty: Vec<NodeId> = self
            .cache
            .iter()
            .filter(|(_, e)| e.dirty)
            .map(|(id, _)| *id)
            .collect();
        // Data nodes first, then MHT nodes children-first (higher index first).
        dirty.sort_by_key(|id| match *id {
            NodeId::Data { index } => (0, index),
            NodeId::Mht { index } => (1, u64::MAX - index),
            NodeId::Metadata => (2, 0),
        });
        let mut buf = Box::new([0u8; NODE_SIZE]);
        for id in &dirty {
            let entry = self.cache.get(id).expect("listed above");
            match &entry.node {
                Cached::Data(node) => buf.copy_from_slice(&node[..]),
                Cached::Mht(mht) => {
                    let (sealed, c) = mht.seal(&mut self.rng);
                    self.storage
                        .write_all_at(&sealed[..], id.physical() * NODE_SIZE as u64)
                        .map_err(io("writing an MHT node"))?;
                    self.record_in_parent(*id, c);
                    continue;
                }
            }
            let key = self.rng.node_key();
            let tag = crypto::seal(&key, &mut buf[..]);
            self.storage
                .write_all_at(&buf[..], id.physical() * NODE_SIZE as u64)
                .map_err(io("writing a data node"))?;
            self.record_in_parent(*id, NodeCrypto { key, tag });
        }
        let node = self.meta.encrypt(&self.key, &mut self.rng);
        let node = node.to_bytes();
        self.storage
            .write_all_at(&node[..], 0)
            .map_err(io("writing the metadata node"))?;
        self.written_metadata = Some(node);
        self.storage
            .set_len(shape.physical_len())
            .map_err(io("setting the file length"))?;
        for e in self.cache.values_mut() {
            e.dirty = false;
        }
        self.meta_dirty = false;
        self.version = Version::V2_0;
        Ok(())
    }

    /// The metadata node (the file's first 4096 bytes, ciphertext) that this handle's
    /// last flush wrote, or `None` before any flush.
    ///
    /// It commits to this version of the file and no other: it holds, under the wrap key, the
    /// size and the root MHT node's key and tag, which chain to every node's. So a record of its
    /// hash (a run receipt) names exactly what was written, and a reader that authenticates the
    /// file with the key and finds the same first node has that version. Unlike a hash of the
    /// file read back from disk, it cannot include a change the host made after the write.
    pub fn written_metadata_node(&self) -> Option<&[u8; NODE_SIZE]> {
        self.written_metadata.as_deref()
    }

    /// Flushes, then asks storage to make everything durable.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.storage.sync().map_err(io("syncing the file"))
    }

    /// Flushes and returns the storage.
    pub fn into_inner(mut self) -> Result<S> {
        self.flush()?;
        self.cache.clear();
        // Moving out of a type with no Drop impl is fine; secrets zeroize as fields drop.
        Ok(self.storage)
    }

    fn check_writable(&self) -> Result<()> {
        match self.mode {
            Mode::ReadWrite => Ok(()),
            Mode::Read => Err(Error::ReadOnly),
        }
    }

    fn record_in_parent(&mut self, id: NodeId, c: NodeCrypto) {
        match id {
            NodeId::Data { index } => {
                let (m, slot) = data_parent(index);
                if let Some(mht) = self.cached_mht_mut(m) {
                    mht.set_data(slot, &c);
                }
            }
            NodeId::Mht { index: 0 } => self.meta.root = c,
            NodeId::Mht { index } => {
                let (p, slot) = mht_parent(index);
                if let Some(mht) = self.cached_mht_mut(p) {
                    mht.set_child(slot, &c);
                }
            }
            NodeId::Metadata => {}
        }
    }

    fn cached_mht_mut(&mut self, m: u64) -> Option<&mut MhtNode> {
        match self.cache.get_mut(&NodeId::Mht { index: m }) {
            Some(Entry {
                node: Cached::Mht(mht),
                ..
            }) => Some(mht),
            _ => None,
        }
    }

    fn touch(&mut self, id: NodeId) -> bool {
        self.tick += 1;
        let tick = self.tick;
        match self.cache.get_mut(&id) {
            Some(e) => {
                e.last_use = tick;
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, id: NodeId, node: Cached, dirty: bool) {
        self.tick += 1;
        self.cache.insert(
            id,
            Entry {
                node,
                dirty,
                last_use: self.tick,
            },
        );
    }

    /// Key and tag of MHT `m` as its parent (or the metadata) holds them.
    fn mht_crypto(&mut self, m: u64) -> Result<NodeCrypto> {
        if m == 0 {
            return Ok(self.meta.root.clone());
        }
        let (p, slot) = mht_parent(m);
        self.load_mht(p)?;
        Ok(self
            .cached_mht_mut(p)
            .map(|mht| mht.child(slot))
            .unwrap_or_default())
    }

    /// Ensures MHT `m` (which must exist) is cached.
    fn load_mht(&mut self, m: u64) -> Result<()> {
        let id = NodeId::Mht { index: m };
        if self.touch(id) {
            return Ok(());
        }
        let c = self.mht_crypto(m)?;
        let mut buf = Box::new([0u8; NODE_SIZE]);
        self.storage
            .read_exact_at(&mut buf[..], mht_physical(m) * NODE_SIZE as u64)
            .map_err(io("reading an MHT node"))?;
        let mht = MhtNode::open(buf, &c).ok_or(Error::NodeAuthentication { node: id })?;
        self.insert(id, Cached::Mht(mht), false);
        Ok(())
    }

    /// Ensures data node `d` (which must exist) is cached.
    fn load_data(&mut self, d: u64) -> Result<()> {
        let id = NodeId::Data { index: d };
        if self.touch(id) {
            return Ok(());
        }
        let (m, slot) = data_parent(d);
        self.load_mht(m)?;
        let c = self
            .cached_mht_mut(m)
            .map(|mht| mht.data(slot))
            .unwrap_or_default();
        let mut buf = Box::new([0u8; NODE_SIZE]);
        self.storage
            .read_exact_at(&mut buf[..], data_physical(d) * NODE_SIZE as u64)
            .map_err(io("reading a data node"))?;
        if !crypto::open(&c.key, &c.tag, &mut buf[..]) {
            return Err(Error::NodeAuthentication { node: id });
        }
        self.insert(id, Cached::Data(buf), false);
        Ok(())
    }

    /// Ensures MHT `m` is cached and dirty with all its ancestors; creates it if it is new.
    fn mht_for_write(&mut self, m: u64) -> Result<()> {
        let exists = m < Shape::for_size(self.meta.size).expect("valid").mht_nodes;
        if m > 0 {
            self.mht_for_write(mht_parent(m).0)?;
        }
        let id = NodeId::Mht { index: m };
        if exists {
            self.load_mht(m)?;
        } else if !self.touch(id) {
            self.insert(id, Cached::Mht(MhtNode::default()), true);
        }
        if let Some(e) = self.cache.get_mut(&id) {
            e.dirty = true;
        }
        self.meta_dirty = true;
        Ok(())
    }

    /// Ensures data node `d` is cached and dirty (its MHT chain too); creates it zeroed if new.
    fn data_for_write(&mut self, d: u64) -> Result<()> {
        let exists = d < Shape::for_size(self.meta.size).expect("valid").data_nodes;
        self.mht_for_write(data_parent(d).0)?;
        let id = NodeId::Data { index: d };
        if exists {
            self.load_data(d)?;
        } else if !self.touch(id) {
            self.insert(id, Cached::Data(Box::new([0u8; NODE_SIZE])), true);
        }
        if let Some(e) = self.cache.get_mut(&id) {
            e.dirty = true;
        }
        Ok(())
    }

    /// Evicts least recently used clean nodes beyond capacity, flushing if only dirty ones remain.
    fn make_room(&mut self) -> Result<()> {
        while self.cache.len() > self.capacity {
            let victim = self
                .cache
                .iter()
                .filter(|(_, e)| !e.dirty)
                .min_by_key(|(_, e)| e.last_use)
                .map(|(id, _)| *id);
            match victim {
                Some(id) => {
                    self.cache.remove(&id);
                }
                None => self.flush()?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> WrapKey {
        WrapKey::from_bytes([9u8; 16])
    }

    #[test]
    fn write_flush_reopen_read() {
        let mut f = ProtectedFile::create(Vec::new(), &key(), "out.bin").unwrap();
        let data: Vec<u8> = (0..500_000u32).map(|i| (i * 7) as u8).collect();
        f.write_at(0, &data).unwrap();
        let storage = f.into_inner().unwrap();
        assert_eq!(
            storage.len() as u64,
            Shape::for_size(500_000).unwrap().physical_len()
        );
        let mut g = ProtectedFile::open(storage, &key(), Some("./out.bin"), Mode::Read).unwrap();
        let mut back = vec![0u8; data.len() + 10];
        assert_eq!(g.read_at(0, &mut back).unwrap(), data.len());
        assert_eq!(&back[..data.len()], &data[..]);
        assert!(matches!(g.write_at(0, b"x"), Err(Error::ReadOnly)));
    }
}
