//! Gramine-compatible protected files.
//!
//! A protected file is encrypted and integrity-protected on disk in the format of Gramine's
//! protected (encrypted) files: a metadata node keyed from the user's 16-byte [`WrapKey`], a
//! Merkle tree of MHT nodes holding a fresh random AES-128-GCM key and tag for every node, and the
//! data nodes. Files written by `gramine-sgx-pf-crypt` open here and files written here open in
//! Gramine ≥ 1.9 (format 2.0; 1.0 files are read too).
//!
//! What this crate offers:
//! - whole-file [`encrypt`], [`decrypt`] (or [`decrypt_to_vec`] into memory) and [`verify`], streaming with bounded memory and data
//!   nodes processed across threads;
//! - [`ProtectedFile`], a random-access handle with a node cache, for a virtual file system;
//! - [`rewrap`] / [`rewrap_in_place`]: key rotation by re-encrypting the metadata node only;
//! - [`normalize`]: Gramine's path normalisation for the path each file is bound to;
//! - [`files`]: the same by path, for one file or a tree, with atomic outputs and the refusals a
//!   command-line tool needs (an output over its own input, a temporary of a killed run as input).
//!
//! What it is not: it knows nothing of attestation, TLS or where keys come from, and it does not
//! stop rollback to an older file encrypted under the same key (pin a plaintext hash for that).
//!
//! Every integrity failure is a typed [`Error`] naming the node; no unauthenticated plaintext is
//! ever returned.

mod crypto;
mod error;
mod file;
pub mod files;
pub mod layout;
mod node;
mod path;
mod pipeline;
mod rewrap;
mod storage;
mod stream;

pub use crypto::{WrapKey, KEY_LEN};
pub use error::{Error, Result};
pub use file::{Mode, ProtectedFile, DEFAULT_CACHE_NODES};
pub use layout::NodeId;
pub use node::{MetadataNode, Version};
pub use path::normalize;
pub use rewrap::{journal_path, rewrap, rewrap_in_place};
pub use storage::{Source, Storage};
pub use stream::{
    decrypt, decrypt_to_vec, encrypt, header_info, info, verify, FileInfo, HeaderInfo, Options,
    Progress, DEFAULT_MEMORY_LIMIT,
};
