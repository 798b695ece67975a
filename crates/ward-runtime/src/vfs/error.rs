//! The one error type of the VFS.

use std::io;

/// Everything the VFS refuses or fails at.
///
/// Each message says what was wrong, where (the workload path, and the host path as the manifest
/// spells it), and what to do. Messages never hold key material or file contents; for protected
/// files not even the hash of what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VfsError {
    /// The workload path is not a usable path.
    #[error("invalid workload path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given (NUL shown as `\0`).
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// No mount covers the path.
    #[error("{path} is not under any mount (mounts: {mounts}); add an [[fs.mounts]] entry covering {path} to the manifest")]
    NoMount {
        /// The normalised workload path.
        path: String,
        /// The mounts there are, e.g. `/app, /data (encrypted), /tmp (tmpfs)`.
        mounts: String,
    },

    /// A file under a chroot mount that the manifest lists neither as trusted nor as allowed.
    #[error("{path} (host {host}) is neither a trusted nor an allowed file; add \"file:{host}\" to sgx.trusted_files (hash-checked) or sgx.allowed_files (unchecked)")]
    NotListed {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
    },

    /// Writing a file under a chroot mount that is not an allowed file.
    #[error("{path} (host {host}) may not be written: it is not an allowed file; add \"file:{host}\" to sgx.allowed_files (unchecked, in the clear), or write it under an encrypted mount")]
    NotWritable {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
    },

    /// Writing a trusted file.
    #[error("{path} (host {host}) is a trusted file and read-only; write outputs under an encrypted mount, a tmpfs mount, or to an allowed file")]
    TrustedReadOnly {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
    },

    /// Writing a pinned protected file.
    #[error("{path} is pinned by the manifest (its plaintext SHA-256 is fixed) and read-only; write the output to another path")]
    PinnedReadOnly {
        /// The workload path.
        path: String,
    },

    /// A trusted file's content differs from the manifest's hash. Nothing of it was returned.
    #[error("trusted file {path} (host {host}) does not match the manifest: expected SHA-256 {}, found {}; the file changed after `ward sign`; re-sign the manifest or restore the file", hex::encode(&expected[..]), hex::encode(&found[..]))]
    TrustedMismatch {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
        /// The manifest's hash.
        expected: Box<[u8; 32]>,
        /// The hash of the file as read.
        found: Box<[u8; 32]>,
    },

    /// A chunk of a trusted file does not match what was signed (changed on the host before
    /// or after open).
    #[error("trusted file {path} (host {host}) has changed: chunk {chunk} at offset {offset} does not match what was signed; none of its bytes were returned; restore the file")]
    TrustedChanged {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
        /// Index of the chunk that failed.
        chunk: u64,
        /// Its offset in bytes.
        offset: u64,
    },

    /// A large trusted file was truncated or extended after it was verified at open.
    #[error("trusted file {path} (host {host}) changed while open: it is now {now} bytes long but was {was} bytes when verified; restore the file and open it again")]
    TrustedResized {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
        /// Length verified at open.
        was: u64,
        /// Length now.
        now: u64,
    },

    /// The host path leads out of its mount's host directory (a symlink).
    #[error("{path} (host {host}) resolves to {target}, outside its mount's host directory; a symlink may not lead out of a mount")]
    Escape {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
        /// Where it really leads.
        target: String,
    },

    /// The file or directory does not exist.
    #[error("{path} ({location}) does not exist")]
    NotFound {
        /// The workload path.
        path: String,
        /// `host <path>`, or `tmpfs`.
        location: String,
    },

    /// A mount's host directory (or file) does not exist.
    #[error("{path}: the host path {host} of mount {mount} does not exist; create it, or correct the mount's uri")]
    MountMissing {
        /// The workload path.
        path: String,
        /// The mount path.
        mount: String,
        /// The mount's host path.
        host: String,
    },

    /// A file operation on a directory.
    #[error("{path} is a directory")]
    IsADirectory {
        /// The workload path.
        path: String,
    },

    /// A directory operation on a file, or a file used as a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The workload path.
        path: String,
    },

    /// Not a regular file (a device, FIFO or socket) where one is needed.
    #[error("{path} (host {host}) is not a regular file; only regular files can be opened through the VFS")]
    NotRegularFile {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
    },

    /// The protected-file layer refused or failed: wrong key, moved or modified file, ….
    #[error("protected file {path} (host {host}, key {key_name:?}) could not be used{hint}", hint = pf_hint(source))]
    Protected {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
        /// The key the mount names.
        key_name: String,
        /// What ward-pf found (boxed to keep `VfsError` small).
        #[source]
        source: Box<ward_pf::Error>,
    },

    /// A pinned protected file's plaintext differs from the pin: an older version (rollback) or
    /// another file under the same key and path. Nothing of it was returned.
    #[error("protected file {path} (host {host}) does not match its pinned SHA-256 (rolled back or substituted?); expected {}; restore the file the manifest pins, or update the pin and re-sign", hex::encode(&expected[..]))]
    PinMismatch {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
        /// The pinned hash (the one found is not kept: it would fingerprint secret plaintext).
        expected: Box<[u8; 32]>,
    },

    /// `read_to_string` on bytes that are not UTF-8.
    #[error("{path} is not valid UTF-8 (the first bad byte is at offset {valid_up_to})")]
    NotUtf8 {
        /// The workload path.
        path: String,
        /// Length of the valid prefix.
        valid_up_to: usize,
    },

    /// A write to this writer failed earlier, so commit refuses.
    #[error("{path}: an earlier write failed, so nothing was committed; the previous file (if any) is untouched")]
    WriteFailed {
        /// The workload path.
        path: String,
    },

    /// A write or truncation would make the file larger than this kind of file can be (or the
    /// offset and length overflow); nothing was changed.
    #[error("{path}: {size} bytes is larger than the largest {kind} file ({max} bytes)")]
    TooLarge {
        /// The workload path.
        path: String,
        /// The size asked for (`u64::MAX` when the offset and length overflow).
        size: u64,
        /// The largest size allowed.
        max: u64,
        /// "protected", "allowed" or "tmpfs".
        kind: &'static str,
    },

    /// A file too large to read whole into memory ([`Vfs::read`](crate::vfs::Vfs::read), or a
    /// small file at open): refused before its memory was taken. For a protected file the size
    /// is not shown (it is decrypted metadata).
    #[error("{path} (host {host}) is larger than the {limit}-byte limit for reading a file whole into memory; open it and read it in parts, or raise the limit")]
    TooLargeToRead {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
        /// The whole-read limit in bytes.
        limit: u64,
    },

    /// An operating-system error, with what was being done.
    #[error("{op} {path} (host {host})")]
    Io {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
        /// What was being done ("opening", "renaming into place", …).
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },

    /// Writing a new version of a file failed (its temporary, sync or rename).
    #[error("writing {path} (host {host})")]
    Output {
        /// The workload path.
        path: String,
        /// The host path.
        host: String,
        /// What failed (boxed to keep `VfsError` small).
        #[source]
        source: Box<ward_fsio::Error>,
    },

    /// Two mounts at the same path.
    #[error("two mounts at {path}; each path may be mounted once in fs.mounts")]
    DuplicateMount {
        /// The mount path.
        path: String,
    },

    /// An encrypted mount names a key that was not provided.
    #[error("encrypted mount {mount} needs key {key_name:?}, which was not provided; provision a key named {key_name:?} or correct the mount's key_name")]
    MissingKey {
        /// The mount path.
        mount: String,
        /// The key it names.
        key_name: String,
    },

    /// Another configuration mistake, described.
    #[error("invalid VFS configuration: {problem}")]
    Config {
        /// What is wrong and what to do.
        problem: String,
    },
}

fn pf_hint(e: &ward_pf::Error) -> &'static str {
    match e {
        ward_pf::Error::MetadataAuthentication => {
            "; was the file encrypted with the key provisioned under this key_name?"
        }
        ward_pf::Error::PathMismatch { .. } => {
            "; a protected file opens only at the path it was encrypted for (`ward pf encrypt -o <that path>`)"
        }
        ward_pf::Error::BadLength { .. } | ward_pf::Error::NotProtectedFile { .. } => {
            "; every file under an encrypted mount must be a protected file (`ward pf encrypt`)"
        }
        ward_pf::Error::NodeAuthentication { .. }
        | ward_pf::Error::Truncated { .. }
        | ward_pf::Error::PartialNode { .. }
        | ward_pf::Error::TrailingNodes { .. } => {
            "; the file was modified or damaged on the host; restore it"
        }
        _ => "",
    }
}

impl VfsError {
    /// True when a file failed an integrity check: a trusted file's hash, a pin, or a protected
    /// file's authentication or bound path.
    pub fn is_integrity(&self) -> bool {
        match self {
            VfsError::TrustedMismatch { .. }
            | VfsError::TrustedChanged { .. }
            | VfsError::TrustedResized { .. }
            | VfsError::PinMismatch { .. } => true,
            VfsError::Protected { source, .. } => source.is_integrity(),
            _ => false,
        }
    }

    /// True when the manifest does not permit the operation (no mount, not listed, read-only,
    /// symlink escape).
    pub fn is_denied(&self) -> bool {
        matches!(
            self,
            VfsError::NoMount { .. }
                | VfsError::NotListed { .. }
                | VfsError::NotWritable { .. }
                | VfsError::TrustedReadOnly { .. }
                | VfsError::PinnedReadOnly { .. }
                | VfsError::Escape { .. }
        )
    }

    /// The closest `io::ErrorKind`, for the `Read`/`Write` impls.
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            VfsError::Io { source, .. } => source.kind(),
            VfsError::Output { source, .. } => match &**source {
                ward_fsio::Error::Io { source, .. } => source.kind(),
                _ => io::ErrorKind::Other,
            },
            VfsError::NotFound { .. } | VfsError::MountMissing { .. } => io::ErrorKind::NotFound,
            VfsError::IsADirectory { .. } | VfsError::NotADirectory { .. } => {
                io::ErrorKind::InvalidInput
            }
            VfsError::InvalidPath { .. } => io::ErrorKind::InvalidInput,
            VfsError::TooLarge { .. } | VfsError::TooLargeToRead { .. } => {
                io::ErrorKind::FileTooLarge
            }
            e if e.is_denied() => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::InvalidData,
        }
    }
}

impl From<VfsError> for io::Error {
    fn from(e: VfsError) -> io::Error {
        io::Error::new(e.io_kind(), e)
    }
}
