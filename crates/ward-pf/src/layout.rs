//! Where each node of a protected file lives.
//!
//! A protected file is a sequence of 4096-byte physical nodes: node 0 holds the metadata (and the
//! first 3072 bytes of data), then each MHT node is followed by the up-to-96 data nodes whose keys
//! it holds. MHT nodes form a 32-ary tree numbered breadth first (root = 0). All arithmetic here is
//! checked so that an absurd size from a file never overflows.

/// Size of every node on disk.
pub const NODE_SIZE: usize = 4096;
/// Plaintext bytes stored inline in the metadata node.
pub const INLINE_DATA_SIZE: usize = 3072;
/// Data nodes whose key/tag an MHT node holds.
pub const DATA_PER_MHT: u64 = 96;
/// Child MHT nodes whose key/tag an MHT node holds.
pub const CHILDREN_PER_MHT: u64 = 32;

/// Largest plaintext size ward accepts: keeps every node offset well inside `u64`.
pub const MAX_PLAINTEXT_SIZE: u64 = 1 << 50;

/// The shape of a file of a given plaintext size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Plaintext size in bytes.
    pub size: u64,
    /// Number of data nodes (0 when everything fits inline).
    pub data_nodes: u64,
    /// Number of MHT nodes (0 when everything fits inline).
    pub mht_nodes: u64,
}

impl Shape {
    /// The shape of a file holding `size` plaintext bytes. `None` if `size` is beyond
    /// [`MAX_PLAINTEXT_SIZE`].
    pub fn for_size(size: u64) -> Option<Shape> {
        if size > MAX_PLAINTEXT_SIZE {
            return None;
        }
        let data_nodes = size
            .saturating_sub(INLINE_DATA_SIZE as u64)
            .div_ceil(NODE_SIZE as u64);
        let mht_nodes = data_nodes.div_ceil(DATA_PER_MHT);
        Some(Shape {
            size,
            data_nodes,
            mht_nodes,
        })
    }

    /// Physical nodes the file occupies on disk: metadata, MHT and data nodes.
    pub fn physical_nodes(&self) -> u64 {
        1 + self.mht_nodes + self.data_nodes
    }

    /// Length of the file on disk in bytes.
    pub fn physical_len(&self) -> u64 {
        self.physical_nodes() * NODE_SIZE as u64
    }
}

/// Physical node of data node `d`.
pub fn data_physical(d: u64) -> u64 {
    d + 2 + d / DATA_PER_MHT
}

/// Physical node of MHT node `m`.
pub fn mht_physical(m: u64) -> u64 {
    1 + m * (DATA_PER_MHT + 1)
}

/// MHT node holding the key of data node `d`, and the slot in it.
pub fn data_parent(d: u64) -> (u64, usize) {
    (d / DATA_PER_MHT, (d % DATA_PER_MHT) as usize)
}

/// Parent of MHT node `m` (which must not be the root), and the child slot in it.
pub fn mht_parent(m: u64) -> (u64, usize) {
    debug_assert!(m > 0);
    (
        (m - 1) / CHILDREN_PER_MHT,
        ((m - 1) % CHILDREN_PER_MHT) as usize,
    )
}

/// Data node holding plaintext offset `offset` (which must be beyond the inline part), and the
/// offset inside it.
pub fn data_node_of(offset: u64) -> (u64, usize) {
    let rel = offset - INLINE_DATA_SIZE as u64;
    (rel / NODE_SIZE as u64, (rel % NODE_SIZE as u64) as usize)
}

/// Plaintext offset where data node `d` starts.
pub fn data_node_start(d: u64) -> u64 {
    INLINE_DATA_SIZE as u64 + d * NODE_SIZE as u64
}

/// Which node a physical node number is, for error messages and the fuzzer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeId {
    /// Physical node 0.
    Metadata,
    /// MHT node `index` (0 is the root).
    Mht {
        /// Breadth-first index of the MHT node.
        index: u64,
    },
    /// Data node `index`.
    Data {
        /// Index of the data node in plaintext order.
        index: u64,
    },
}

impl NodeId {
    /// Classifies physical node `p`.
    pub fn from_physical(p: u64) -> NodeId {
        if p == 0 {
            return NodeId::Metadata;
        }
        let group = (p - 1) / (DATA_PER_MHT + 1);
        let within = (p - 1) % (DATA_PER_MHT + 1);
        if within == 0 {
            NodeId::Mht { index: group }
        } else {
            NodeId::Data {
                index: group * DATA_PER_MHT + within - 1,
            }
        }
    }

    /// The physical node number.
    pub fn physical(&self) -> u64 {
        match *self {
            NodeId::Metadata => 0,
            NodeId::Mht { index } => mht_physical(index),
            NodeId::Data { index } => data_physical(index),
        }
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            NodeId::Metadata => write!(f, "metadata node (physical node 0, bytes 0..4096)"),
            NodeId::Mht { index } => {
                let p = self.physical();
                write!(
                    f,
                    "MHT node {index} (physical node {p}, bytes {}..{})",
                    p * NODE_SIZE as u64,
                    (p + 1) * NODE_SIZE as u64
                )
            }
            NodeId::Data { index } => {
                let p = self.physical();
                write!(
                    f,
                    "data node {index} (physical node {p}, bytes {}..{})",
                    p * NODE_SIZE as u64,
                    (p + 1) * NODE_SIZE as u64
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_at_boundaries() {
        let s = |n| Shape::for_size(n).unwrap().physical_nodes();
        assert_eq!(s(0), 1);
        assert_eq!(s(3072), 1);
        assert_eq!(s(3073), 3);
        assert_eq!(s(4096), 3);
        assert_eq!(s(100_000), 26); // Gramine's size_100000.pf is 106496 bytes
        let full = 3072 + 96 * 4096;
        assert_eq!(s(full), 98);
        assert_eq!(s(full + 1), 100);
        assert!(Shape::for_size(u64::MAX).is_none());
    }

    #[test]
    fn physical_numbering_matches_gramine() {
        assert_eq!(data_physical(0), 2);
        assert_eq!(data_physical(95), 97);
        assert_eq!(mht_physical(1), 98);
        assert_eq!(data_physical(96), 99);
        assert_eq!(mht_parent(1), (0, 0));
        assert_eq!(mht_parent(32), (0, 31));
        assert_eq!(mht_parent(33), (1, 0));
        for p in 0..10_000 {
            assert_eq!(NodeId::from_physical(p).physical(), p);
        }
    }
}
