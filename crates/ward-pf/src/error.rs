use crate::layout::NodeId;
use std::io;

/// Everything that can go wrong with a protected file.
///
/// Errors name the node and what failed; they never carry key material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // fields are named for what they hold
pub enum Error {
    /// Reading or writing the underlying storage failed.
    #[error("{context}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },

    /// The file is empty, or its length is not a whole number of 4096-byte nodes and it does
    /// not start like a protected file either.
    #[error("not a protected file: {len} bytes, not a positive multiple of 4096")]
    BadLength { len: u64 },

    /// The file starts like a protected file but its last node is cut short: a copy or download
    /// that stopped early.
    #[error("truncated protected file ({len} bytes, not a multiple of 4096: its last node is incomplete); copy the whole file again")]
    PartialNode { len: u64 },

    /// The first 8 bytes are not "GRAFS_PF".
    #[error("not a protected file: file id at offset 0 is {found:02x?}, expected \"GRAFS_PF\"")]
    NotProtectedFile { found: [u8; 8] },

    /// A format version ward does not read.
    #[error("unsupported protected-file format version {major}.{minor} (byte 8-9); ward reads 1.0 and 2.0")]
    UnsupportedVersion { major: u8, minor: u8 },

    /// The 2.0 header says a write was interrupted; the file must be recovered first.
    #[error("the file records an interrupted write (feature flags 0x{flags:02x} at byte 58); it must be recovered with Gramine's recovery file before use")]
    RecoveryNeeded { flags: u8 },

    /// Unknown feature flags in a 2.0 header.
    #[error("unsupported feature flags 0x{flags:02x} at byte 58")]
    UnsupportedFlags { flags: u8 },

    /// The metadata node failed authentication: wrong key, or node 0 was modified.
    #[error("metadata node (physical node 0) failed authentication: wrong key, or the metadata was modified")]
    MetadataAuthentication,

    /// A node failed authentication against the key and tag held by its parent.
    #[error("{node} failed authentication: the node was modified, moved or replaced")]
    NodeAuthentication { node: NodeId },

    /// The decrypted metadata is not well-formed (a bug in the writer, or a forged file).
    #[error("metadata is malformed: {what}")]
    MalformedMetadata { what: &'static str },

    /// The file has fewer nodes than its recorded size needs. (The recorded size itself is
    /// decrypted metadata and stays out of the message; node counts are on-disk facts.)
    #[error("truncated protected file: it has {found} nodes but its metadata needs {expected}; copy the whole file again")]
    Truncated { expected: u64, found: u64 },

    /// The file has more nodes than its recorded size needs.
    #[error("file has {extra} unexpected node(s) appended after its last node (its metadata needs {expected} nodes)")]
    TrailingNodes { expected: u64, extra: u64 },

    /// The bound path differs from the one the opener expected. The bound path is decrypted
    /// metadata: it is neither held nor shown (`ward pf info` shows it to the key holder).
    #[error("path check failed: the file is not bound to {expected:?}, the path it was opened as (was it renamed or moved?)")]
    PathMismatch { expected: String },

    /// A path longer than the format can hold.
    #[error("path is {len} bytes; a protected file can bind at most 771 bytes")]
    PathTooLong { len: usize },

    /// A path with a NUL byte cannot be bound.
    #[error("path contains a NUL byte")]
    PathHasNul,

    /// A wrap key of the wrong size or spelling.
    #[error("invalid wrap key: {0}")]
    InvalidKey(&'static str),

    /// A wrap key file could not be read, or is not exactly 16 bytes (the source says which, and
    /// the size found).
    #[error("reading the wrap key file (16 raw bytes; `ward pf keygen` makes one)")]
    KeyFile {
        #[source]
        source: ward_fsio::Error,
    },

    /// A size beyond what ward handles (the size is not shown: it may come from decrypted
    /// metadata).
    #[error("the size is beyond the largest supported protected file (2^50 bytes)")]
    TooLarge,

    /// Reading the whole file into memory was refused before any of it was read: its recorded
    /// size exceeds [`Options::memory_limit`](crate::Options::memory_limit).
    #[error("the file is larger than the memory limit of {limit} bytes for reading it whole; raise the limit or read it as a stream")]
    OverLimit { limit: u64 },

    /// The OS random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The file cannot be used any more after an earlier failure.
    #[error("the protected file is unusable after an earlier error")]
    Poisoned,

    /// Operation needs write access.
    #[error("the protected file was opened read-only")]
    ReadOnly,

    /// A rewrap journal exists that cannot be completed with the given key.
    #[error("an interrupted rewrap journal {journal:?} exists and {what}")]
    Journal { journal: String, what: &'static str },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { context, source }
}

impl Error {
    /// True when the error means the file's content failed an integrity check (as opposed to a
    /// storage error or a wrong argument).
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            Error::BadLength { .. }
                | Error::PartialNode { .. }
                | Error::NotProtectedFile { .. }
                | Error::MetadataAuthentication
                | Error::NodeAuthentication { .. }
                | Error::MalformedMetadata { .. }
                | Error::Truncated { .. }
                | Error::TrailingNodes { .. }
                | Error::PathMismatch { .. }
        )
    }
}
