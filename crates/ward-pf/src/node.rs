//! The typed nodes: the metadata node (plaintext header + encrypted part) and MHT nodes.
//! Byte offsets of the format live here and nowhere else.

use crate::crypto::{self, KeyRng, NodeKey, Tag, WrapKey, KEY_LEN};
use crate::error::{Error, Result};
use crate::layout::{INLINE_DATA_SIZE, MAX_PLAINTEXT_SIZE, NODE_SIZE};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// "GRAFS_PF" as the little-endian u64 0x46505f5346415247.
pub(crate) const FILE_ID: [u8; 8] = *b"GRAFS_PF";
/// Bytes reserved for the bound path, NUL terminator included.
pub(crate) const PATH_FIELD_SIZE: usize = 772;
/// Size of the encrypted part of the metadata node.
pub(crate) const ENCRYPTED_PART_SIZE: usize =
    PATH_FIELD_SIZE + 8 + KEY_LEN + KEY_LEN + INLINE_DATA_SIZE;
const HEADER_V1_SIZE: usize = 8 + 1 + 1 + 32 + KEY_LEN;

/// The protected-file format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Gramine ≤ 1.8 (read only).
    V1_0,
    /// Gramine ≥ 1.9: adds a feature-flags byte.
    V2_0,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V1_0 => "1.0",
            Version::V2_0 => "2.0",
        })
    }
}

/// Feature flag: an update was in progress (Gramine's recovery file holds the old nodes).
const FLAG_WRITE_PENDING: u8 = 0x01;

/// The metadata node as stored: plaintext header and the still-encrypted part.
#[derive(Clone)]
pub struct MetadataNode {
    /// Format version.
    pub version: Version,
    /// Nonce the metadata key is derived from.
    pub nonce: [u8; 32],
    /// GCM tag over the encrypted part.
    pub tag: Tag,
    /// Feature flags (always 0 in 1.0).
    pub flags: u8,
    ciphertext: Box<[u8; ENCRYPTED_PART_SIZE]>,
}

impl MetadataNode {
    /// Parses physical node 0. Checks the file id, version and flags; does not decrypt.
    pub fn parse(node: &[u8; NODE_SIZE]) -> Result<MetadataNode> {
        let id: [u8; 8] = node[0..8].try_into().expect("8 bytes");
        if id != FILE_ID {
            return Err(Error::NotProtectedFile { found: id });
        }
        let (major, minor) = (node[8], node[9]);
        let version = match (major, minor) {
            (1, 0) => Version::V1_0,
            (2, 0) => Version::V2_0,
            _ => return Err(Error::UnsupportedVersion { major, minor }),
        };
        let nonce: [u8; 32] = node[10..42].try_into().expect("32 bytes");
        let tag: Tag = node[42..58].try_into().expect("16 bytes");
        let (flags, start) = match version {
            Version::V1_0 => (0, HEADER_V1_SIZE),
            Version::V2_0 => (node[HEADER_V1_SIZE], HEADER_V1_SIZE + 1),
        };
        if flags & FLAG_WRITE_PENDING != 0 {
            return Err(Error::RecoveryNeeded { flags });
        }
        if flags != 0 {
            return Err(Error::UnsupportedFlags { flags });
        }
        let mut ciphertext = Box::new([0u8; ENCRYPTED_PART_SIZE]);
        ciphertext.copy_from_slice(&node[start..start + ENCRYPTED_PART_SIZE]);
        Ok(MetadataNode {
            version,
            nonce,
            tag,
            flags,
            ciphertext,
        })
    }

    /// Serialises the node exactly as Gramine lays it out (padding zero).
    pub fn to_bytes(&self) -> Box<[u8; NODE_SIZE]> {
        let mut node = Box::new([0u8; NODE_SIZE]);
        node[0..8].copy_from_slice(&FILE_ID);
        let (major, start) = match self.version {
            Version::V1_0 => (1, HEADER_V1_SIZE),
            Version::V2_0 => (2, HEADER_V1_SIZE + 1),
        };
        node[8] = major;
        node[9] = 0;
        node[10..42].copy_from_slice(&self.nonce);
        node[42..58].copy_from_slice(&self.tag);
        if self.version == Version::V2_0 {
            node[HEADER_V1_SIZE] = self.flags;
        }
        node[start..start + ENCRYPTED_PART_SIZE].copy_from_slice(&self.ciphertext[..]);
        node
    }

    /// Decrypts and authenticates the encrypted part with the wrap key.
    pub fn decrypt(&self, key: &WrapKey) -> Result<Metadata> {
        let node_key = key.metadata_key(&self.nonce);
        let mut plain = Box::new(*self.ciphertext);
        if !crypto::open(&node_key, &self.tag, &mut plain[..]) {
            return Err(Error::MetadataAuthentication);
        }
        let meta = Metadata::from_plain(&plain);
        plain.zeroize();
        let meta = meta?;
        Ok(meta)
    }
}

/// Key and tag of a child node, as its parent stores them.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct NodeCrypto {
    /// The child's AES-128-GCM key.
    pub key: NodeKey,
    /// The child's GCM tag.
    pub tag: Tag,
}

impl NodeCrypto {
    fn read(bytes: &[u8]) -> NodeCrypto {
        let mut c = NodeCrypto::default();
        c.key.0.copy_from_slice(&bytes[..KEY_LEN]);
        c.tag.copy_from_slice(&bytes[KEY_LEN..2 * KEY_LEN]);
        c
    }

    fn write(&self, bytes: &mut [u8]) {
        bytes[..KEY_LEN].copy_from_slice(&self.key.0);
        bytes[KEY_LEN..2 * KEY_LEN].copy_from_slice(&self.tag);
    }
}

/// The decrypted metadata: bound path, plaintext size, root MHT key and tag, inline data.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Metadata {
    path: Vec<u8>,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Key and tag of the root MHT node (unused when `size <= 3072`).
    pub root: NodeCrypto,
    /// The first 3072 bytes of plaintext (zero beyond `size`).
    pub inline: Box<[u8; INLINE_DATA_SIZE]>,
}

impl Metadata {
    /// Empty metadata binding `path` (already normalised by the caller).
    pub fn new(path: &str) -> Result<Metadata> {
        let mut m = Metadata {
            path: Vec::new(),
            size: 0,
            root: NodeCrypto::default(),
            inline: Box::new([0u8; INLINE_DATA_SIZE]),
        };
        m.set_path(path)?;
        Ok(m)
    }

    fn from_plain(plain: &[u8; ENCRYPTED_PART_SIZE]) -> Result<Metadata> {
        let path_field = &plain[..PATH_FIELD_SIZE];
        let len = path_field
            .iter()
            .position(|&b| b == 0)
            .ok_or(Error::MalformedMetadata {
                what: "the bound path is not NUL-terminated",
            })?;
        let mut off = PATH_FIELD_SIZE;
        let size = u64::from_le_bytes(plain[off..off + 8].try_into().expect("8 bytes"));
        off += 8;
        if size > MAX_PLAINTEXT_SIZE {
            return Err(Error::MalformedMetadata {
                what: "the recorded plaintext size is beyond 2^50 bytes",
            });
        }
        let root = NodeCrypto::read(&plain[off..off + 2 * KEY_LEN]);
        off += 2 * KEY_LEN;
        let mut inline = Box::new([0u8; INLINE_DATA_SIZE]);
        inline.copy_from_slice(&plain[off..off + INLINE_DATA_SIZE]);
        Ok(Metadata {
            path: path_field[..len].to_vec(),
            size,
            root,
            inline,
        })
    }

    /// Encrypts under a key derived from `wrap` and a fresh nonce; always writes format 2.0.
    pub fn encrypt(&self, wrap: &WrapKey, rng: &mut KeyRng) -> MetadataNode {
        let mut plain = Box::new([0u8; ENCRYPTED_PART_SIZE]);
        plain[..self.path.len()].copy_from_slice(&self.path);
        let mut off = PATH_FIELD_SIZE;
        plain[off..off + 8].copy_from_slice(&self.size.to_le_bytes());
        off += 8;
        self.root.write(&mut plain[off..off + 2 * KEY_LEN]);
        off += 2 * KEY_LEN;
        plain[off..off + INLINE_DATA_SIZE].copy_from_slice(&self.inline[..]);
        let nonce = rng.nonce();
        let key = wrap.metadata_key(&nonce);
        let tag = crypto::seal(&key, &mut plain[..]);
        MetadataNode {
            version: Version::V2_0,
            nonce,
            tag,
            flags: 0,
            ciphertext: plain,
        }
    }

    /// The bound path, as stored (bytes; Gramine does not require UTF-8).
    pub fn path_bytes(&self) -> &[u8] {
        &self.path
    }

    /// The bound path for display (lossy if not UTF-8).
    pub fn path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    /// Replaces the bound path.
    pub fn set_path(&mut self, path: &str) -> Result<()> {
        if path.len() >= PATH_FIELD_SIZE {
            return Err(Error::PathTooLong { len: path.len() });
        }
        if path.as_bytes().contains(&0) {
            return Err(Error::PathHasNul);
        }
        self.path.zeroize();
        self.path = path.as_bytes().to_vec();
        Ok(())
    }
}

/// A decrypted MHT node: 96 data-node and 32 child-MHT {key, tag} slots.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MhtNode(Box<[u8; NODE_SIZE]>);

const DATA_SLOTS_BYTES: usize = 96 * 2 * KEY_LEN;

impl Default for MhtNode {
    fn default() -> Self {
        MhtNode(Box::new([0u8; NODE_SIZE]))
    }
}

impl MhtNode {
    /// Key and tag of the data node in `slot` (0..96).
    pub(crate) fn data(&self, slot: usize) -> NodeCrypto {
        let o = slot * 2 * KEY_LEN;
        NodeCrypto::read(&self.0[o..o + 2 * KEY_LEN])
    }

    /// Sets the data slot.
    pub(crate) fn set_data(&mut self, slot: usize, c: &NodeCrypto) {
        let o = slot * 2 * KEY_LEN;
        c.write(&mut self.0[o..o + 2 * KEY_LEN]);
    }

    /// Key and tag of the child MHT in `slot` (0..32).
    pub(crate) fn child(&self, slot: usize) -> NodeCrypto {
        let o = DATA_SLOTS_BYTES + slot * 2 * KEY_LEN;
        NodeCrypto::read(&self.0[o..o + 2 * KEY_LEN])
    }

    /// Sets the child slot.
    pub(crate) fn set_child(&mut self, slot: usize, c: &NodeCrypto) {
        let o = DATA_SLOTS_BYTES + slot * 2 * KEY_LEN;
        c.write(&mut self.0[o..o + 2 * KEY_LEN]);
    }

    /// Clears data slots from `slot` on (unused slots are zero, as Gramine leaves them).
    pub(crate) fn clear_data_from(&mut self, slot: usize) {
        self.0[slot * 2 * KEY_LEN..DATA_SLOTS_BYTES].zeroize();
    }

    /// Clears child slots from `slot` on.
    pub(crate) fn clear_children_from(&mut self, slot: usize) {
        self.0[DATA_SLOTS_BYTES + slot * 2 * KEY_LEN..].zeroize();
    }

    /// Encrypts a copy under a fresh key; returns the ciphertext and its key and tag.
    pub(crate) fn seal(&self, rng: &mut KeyRng) -> (Box<[u8; NODE_SIZE]>, NodeCrypto) {
        let mut buf = Box::new(*self.0);
        let key = rng.node_key();
        let tag = crypto::seal(&key, &mut buf[..]);
        (buf, NodeCrypto { key, tag })
    }

    /// Decrypts and authenticates `buf` (consumed) with its parent's key and tag.
    pub(crate) fn open(mut buf: Box<[u8; NODE_SIZE]>, c: &NodeCrypto) -> Option<MhtNode> {
        if crypto::open(&c.key, &c.tag, &mut buf[..]) {
            Some(MhtNode(buf))
        } else {
            None
        }
    }
}
