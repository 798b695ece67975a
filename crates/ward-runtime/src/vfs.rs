//! The manifest-enforcing virtual file system: the only way a workload touches files.
//!
//! A [`Vfs`] is built from the signed manifest's mounts, trusted and allowed files, pins and the
//! keys the bootstrap fetched (with a [`VfsBuilder`], so this module does not depend on the
//! manifest's types). Workload paths are absolute POSIX-style strings (`/data/model.onnx`);
//! they are normalised lexically ([`normalize_path`]) and the longest mount prefix decides:
//!
//! - **chroot** mounts map a workload prefix to a host directory (or a single file). A file there
//!   is readable only if its host path is a *trusted* file (hash-checked, read-only) or an *allowed*
//!   file (exactly, or under an allowed directory; passed through unchecked, writable).
//! - **encrypted** mounts hold Gramine protected files under a named key. Each file is bound to
//!   `normalize(bound_prefix + "/" + path below the mount)` — what `ward pf encrypt -o` and Gramine
//!   bind — and a file bound to another path is refused (substitution). A *pinned* file must also
//!   match its plaintext SHA-256 (rollback).
//! - **tmpfs** mounts are in memory, gone (and zeroized) when the `Vfs` is dropped.
//!
//! Nothing unverified reaches the workload: a trusted file is hashed at open before any byte is
//! returned, and stays protected against changes after open (see [`VfsFile`]); a protected file's
//! nodes are authenticated before they are returned, and a pinned one is hashed whole at open.
//!
//! Writes ([`Vfs::create`], or [`Vfs::edit`] to start from a copy of the current file) go to a
//! temporary file beside the target (or a buffer, for tmpfs), at any offset, and become visible
//! atomically at [`VfsWriter::commit`]; a writer dropped uncommitted leaves nothing behind. Under an encrypted mount the new file is a protected file bound to its bound path.
//! Trusted and pinned files are read-only; under a chroot mount only allowed files are writable.
//!
//! Host symlinks may not lead out of a mount: every host path is canonicalised and must stay
//! under its mount's canonical host directory. This is confinement, checked just before opening;
//! it is not what makes content trustworthy (a host that races the check gains nothing: trusted
//! files are hash-checked and protected files authenticated and bound to their path).

mod error;
mod file;
mod path;
mod tmpfs;
mod tree;
mod writer;

pub use error::VfsError;
pub use file::VfsFile;
pub use path::normalize_path;
pub use writer::VfsWriter;

use file::{Inner, Names};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::SystemTime;
use tmpfs::Tmpfs;
use ward_manifest::tree::{TreeEntry, TrustTree};
use ward_pf::WrapKey;
use zeroize::Zeroizing;

/// Files up to this size (trusted, or protected on disk) are verified or decrypted whole at open
/// and served from memory; see [`VfsBuilder::memory_limit`].
pub const DEFAULT_MEMORY_LIMIT: u64 = 64 << 20;

/// The largest file [`Vfs::read`] reads whole into memory; see [`VfsBuilder::whole_read_limit`].
pub const DEFAULT_WHOLE_READ_LIMIT: u64 = 1 << 30;

/// Bytes copied at a time into a new version by [`Vfs::edit`].
const COPY_STEP: usize = 1 << 20;

/// Granularity of re-verification for trusted files above the memory limit; see
/// [`VfsBuilder::chunk_size`]. As small as a trusted tree's chunks: a mapped library is read
/// in scattered 128 KiB pieces, and each piece costs re-hashing the chunks it touches (with
/// 1 MiB chunks, `import torch` re-hashed 882 MB to serve about a third of that).
pub const DEFAULT_CHUNK_SIZE: usize = 64 << 10;

/// Symbolic links followed in a row before giving up (as the kernel's `ELOOP`).
const MAX_LINK_DEPTH: u8 = 40;

/// `O_NONBLOCK` on Linux.
const O_NONBLOCK: i32 = 0o4000;

/// What kind of file a path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A trusted file: hash-checked against the manifest, read-only.
    Trusted,
    /// An allowed file: passed through unchecked.
    Allowed,
    /// A protected file under an encrypted mount.
    Protected,
    /// An in-memory file.
    Tmpfs,
}

/// What [`Vfs::metadata`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VfsMetadata {
    /// Length in bytes (plaintext for protected files; 0 for directories; a symlink's target
    /// length).
    pub len: u64,
    /// The file's kind, or `None` for a directory.
    pub kind: Option<FileKind>,
    /// Permission bits signed in a trusted tree (`None`: not signed; the host's apply).
    pub mode: Option<u32>,
    /// Modification time signed in a trusted tree.
    pub mtime: Option<SystemTime>,
    /// A symbolic link of a trusted tree ([`Vfs::read_link`] gives its target).
    pub symlink: bool,
}

impl VfsMetadata {
    fn directory() -> Self {
        VfsMetadata {
            len: 0,
            kind: None,
            mode: None,
            mtime: None,
            symlink: false,
        }
    }
    fn file(len: u64, kind: FileKind) -> Self {
        VfsMetadata {
            kind: Some(kind),
            len,
            ..Self::directory()
        }
    }
    fn tree(entry: &TreeEntry) -> Self {
        match entry {
            TreeEntry::Dir { mode, mtime } => VfsMetadata {
                mode: Some(*mode),
                mtime: Some(mtime.system_time()),
                ..Self::directory()
            },
            TreeEntry::File(f) => VfsMetadata {
                mode: Some(f.mode),
                mtime: Some(f.mtime.system_time()),
                ..Self::file(f.size, FileKind::Trusted)
            },
            TreeEntry::Symlink { target, mtime } => VfsMetadata {
                mtime: Some(mtime.system_time()),
                symlink: true,
                ..Self::file(target.len() as u64, FileKind::Trusted)
            },
        }
    }
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind.is_none()
    }
    /// Whether this is a file (not a directory, not a symlink).
    pub fn is_file(&self) -> bool {
        self.kind.is_some() && !self.symlink
    }
}

/// The type of a mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountType {
    /// Host files, visible if trusted or allowed.
    Chroot,
    /// Protected files under the named key.
    Encrypted {
        /// The key's name.
        key_name: String,
    },
    /// In memory.
    Tmpfs,
}

/// Where a workload path leads, without touching the host ([`Vfs::locate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The normalised workload path.
    pub path: String,
    /// The mount it falls under.
    pub mount: String,
    /// That mount's type.
    pub mount_type: MountType,
    /// The host path (absolute, lexically normalised); `None` for tmpfs.
    pub host: Option<PathBuf>,
    /// For encrypted mounts, the path the protected file must be bound to.
    pub bound_path: Option<String>,
}

/// Counters since the `Vfs` was built ([`Vfs::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VfsStats {
    /// Successful `open`s and `read`s.
    pub files_opened: u64,
    /// Successful `commit`s.
    pub files_committed: u64,
    /// Bytes of trusted files that passed a hash check (at open, and again for chunks of large
    /// files read back from disk).
    pub trusted_bytes_verified: u64,
    /// Plaintext bytes of protected files decrypted and authenticated.
    pub protected_bytes_decrypted: u64,
    /// Plaintext bytes committed to new protected files.
    pub protected_bytes_encrypted: u64,
    /// Operations refused by the manifest or failing an integrity check.
    pub refused: u64,
}

/// A new version of a protected file that this `Vfs` committed ([`Vfs::committed_outputs`]):
/// what a run receipt names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOutput {
    /// The workload path.
    pub path: String,
    /// SHA-256 of the metadata node written (the file's first 4096 bytes), which commits to
    /// this version's whole content under its key ([`ward_pf::ProtectedFile::written_metadata_node`]).
    pub metadata_sha256: [u8; 32],
}

#[derive(Default)]
pub(crate) struct Counters {
    /// Protected files committed, in commit order.
    pub(crate) outputs: std::sync::Mutex<Vec<CommittedOutput>>,
    files_opened: AtomicU64,
    files_committed: AtomicU64,
    trusted_bytes_verified: AtomicU64,
    protected_bytes_decrypted: AtomicU64,
    protected_bytes_encrypted: AtomicU64,
    refused: AtomicU64,
}

enum MountKind {
    Chroot {
        host: PathBuf,
        host_abs: PathBuf,
    },
    Encrypted {
        host: PathBuf,
        host_abs: PathBuf,
        bound_prefix: String,
        key_name: String,
    },
    Tmpfs,
}

struct Mount {
    path: String,
    kind: MountKind,
}

impl Mount {
    fn host(&self) -> Option<(&Path, &Path)> {
        match &self.kind {
            MountKind::Chroot { host, host_abs } | MountKind::Encrypted { host, host_abs, .. } => {
                Some((host, host_abs))
            }
            MountKind::Tmpfs => None,
        }
    }

    fn describe(&self) -> String {
        match &self.kind {
            MountKind::Chroot { .. } => self.path.clone(),
            MountKind::Encrypted { .. } => format!("{} (encrypted)", self.path),
            MountKind::Tmpfs => format!("{} (tmpfs)", self.path),
        }
    }
}

/// A workload path resolved to a host file under a chroot or encrypted mount.
struct HostTarget<'v> {
    mount: &'v Mount,
    /// Path below the mount ("" for the mount itself).
    rel: String,
    /// Mount host directory (absolute) joined with `rel`.
    abs: PathBuf,
    names: Names,
    enc: Option<EncTarget<'v>>,
}

struct EncTarget<'v> {
    bound: String,
    key: &'v WrapKey,
    key_name: &'v str,
}

enum Resolved<'v> {
    Host(HostTarget<'v>),
    Tmpfs {
        mount: &'v str,
    },
    /// Not under any mount, but above one: a directory holding mount points.
    Virtual,
}

/// Builds a [`Vfs`]; see the module documentation. Problems are reported by [`build`](Self::build).
#[derive(Default)]
pub struct VfsBuilder {
    mounts: Vec<(String, PendingMount)>,
    trusted: Vec<(PathBuf, [u8; 32])>,
    trusted_meta: Vec<(PathBuf, u32, SystemTime)>,
    trees: Vec<(PathBuf, Arc<TrustTree>)>,
    allowed: Vec<PathBuf>,
    pins: Vec<(String, [u8; 32])>,
    keys: Vec<(String, WrapKey)>,
    memory_limit: Option<u64>,
    whole_read_limit: Option<u64>,
    chunk_size: Option<usize>,
    manifest_dir: Option<PathBuf>,
}

impl std::fmt::Debug for VfsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfsBuilder")
            .field("mounts", &self.mounts.len())
            .field("trusted", &self.trusted.len())
            .field("allowed", &self.allowed.len())
            .field("pins", &self.pins.len())
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

enum PendingMount {
    Chroot(PathBuf),
    Encrypted {
        host: PathBuf,
        bound_prefix: String,
        key_name: String,
    },
    Tmpfs,
}

impl VfsBuilder {
    /// A chroot mount: workload prefix `mount_path` shows host directory (or single file) `host`.
    /// Files under it are visible only if trusted or allowed. A relative host path is relative to
    /// the current directory at [`build`](Self::build).
    pub fn chroot(mut self, mount_path: &str, host: impl Into<PathBuf>) -> Self {
        self.mounts
            .push((mount_path.to_string(), PendingMount::Chroot(host.into())));
        self
    }

    /// An encrypted mount: every file under `mount_path` is a protected file in `host` under key
    /// `key_name`. `bound_prefix` is the mount's URI path exactly as the manifest wrote it (e.g.
    /// `encrypted` for `uri = "file:encrypted"`): a file `/data/x/y.bin` under mount `/data` is
    /// bound to `normalize("encrypted/x/y.bin")`.
    pub fn encrypted(
        mut self,
        mount_path: &str,
        host: impl Into<PathBuf>,
        bound_prefix: &str,
        key_name: &str,
    ) -> Self {
        self.mounts.push((
            mount_path.to_string(),
            PendingMount::Encrypted {
                host: host.into(),
                bound_prefix: bound_prefix.to_string(),
                key_name: key_name.to_string(),
            },
        ));
        self
    }

    /// A tmpfs mount: in-memory files, gone when the `Vfs` is dropped.
    pub fn tmpfs(mut self, mount_path: &str) -> Self {
        self.mounts
            .push((mount_path.to_string(), PendingMount::Tmpfs));
        self
    }

    /// A trusted file: the exact host file, whose SHA-256 the manifest fixes.
    pub fn trusted(mut self, host_file: impl Into<PathBuf>, sha256: [u8; 32]) -> Self {
        self.trusted.push((host_file.into(), sha256));
        self
    }

    /// The mode and mtime the workload sees for trusted file `host_file` (as signed), instead
    /// of the host's.
    pub fn trusted_metadata(
        mut self,
        host_file: impl Into<PathBuf>,
        mode: u32,
        mtime: SystemTime,
    ) -> Self {
        self.trusted_meta.push((host_file.into(), mode, mtime));
        self
    }

    /// Trusts the host directory `host_dir` as signed in `tree`: its files are served chunk by
    /// chunk, each chunk checked against its signed hash; its listing, modes, mtimes and
    /// symlinks are the tree's.
    pub fn trusted_tree(mut self, host_dir: impl Into<PathBuf>, tree: Arc<TrustTree>) -> Self {
        self.trees.push((host_dir.into(), tree));
        self
    }

    /// An allowed host file, or a directory (then everything under it is allowed).
    pub fn allowed(mut self, host: impl Into<PathBuf>) -> Self {
        self.allowed.push(host.into());
        self
    }

    /// Pins the plaintext SHA-256 of the protected file at `workload_path` (under an encrypted
    /// mount): an older version or another file under the same key and path is then refused, and
    /// the path is read-only.
    pub fn pin(mut self, workload_path: &str, plaintext_sha256: [u8; 32]) -> Self {
        self.pins
            .push((workload_path.to_string(), plaintext_sha256));
        self
    }

    /// The key named `key_name` (moved in, never copied out).
    pub fn key(mut self, key_name: &str, key: WrapKey) -> Self {
        self.keys.push((key_name.to_string(), key));
        self
    }

    /// Trusted files up to `bytes` long are read whole at open, verified and served from memory
    /// (default [`DEFAULT_MEMORY_LIMIT`]); larger ones are verified at open and then re-verified
    /// chunk by chunk as they are read. Pinned protected files up to `bytes` on disk are likewise
    /// decrypted whole at open; other protected files are read node by node. [`Vfs::read`]
    /// always reads whole files, whatever the limit (up to
    /// [`whole_read_limit`](Self::whole_read_limit)).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// The largest file read whole into memory, by [`Vfs::read`] or as a small file at open
    /// (default [`DEFAULT_WHOLE_READ_LIMIT`]). A larger one fails with
    /// [`VfsError::TooLargeToRead`] before its memory is taken; [`Vfs::open`] still reads it
    /// chunk by chunk. A protected file is judged by the size its authenticated metadata
    /// records, and its buffer grows only as its nodes authenticate.
    pub fn whole_read_limit(mut self, bytes: u64) -> Self {
        self.whole_read_limit = Some(bytes);
        self
    }

    /// Messages show host paths under `dir` relative to it — as the manifest spells them
    /// (`file:app/x.py`) when the bootstrap resolved the manifest's relative URIs against `dir`.
    /// Without it, host paths are shown as given to the builder.
    pub fn manifest_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.manifest_dir = Some(dir.into());
        self
    }

    /// Chunk size for re-verifying large trusted files (default [`DEFAULT_CHUNK_SIZE`]).
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = Some(bytes);
        self
    }

    /// Checks the configuration and builds the `Vfs`: mount paths must be absolute and distinct,
    /// every encrypted mount's key must be given, pins must lie under encrypted mounts, a trusted
    /// file may not have two hashes, a key name may not be given twice.
    pub fn build(self) -> Result<Vfs, VfsError> {
        let config = |problem: String| VfsError::Config { problem };
        let cwd = std::env::current_dir().map_err(|e| VfsError::Io {
            path: "/".into(),
            host: ".".into(),
            op: "finding the current directory to resolve relative host paths for",
            source: e,
        })?;

        let mut keys: BTreeMap<String, WrapKey> = BTreeMap::new();
        for (name, key) in self.keys {
            if keys.contains_key(&name) {
                return Err(config(format!(
                    "key {name:?} is given twice; give each key name once"
                )));
            }
            keys.insert(name, key);
        }

        let mut mounts: Vec<Mount> = Vec::new();
        for (raw, pending) in self.mounts {
            if !raw.starts_with('/') {
                return Err(config(format!(
                    "mount path {raw:?} is not absolute; mount paths start with \"/\""
                )));
            }
            let path = normalize_path(&raw)?;
            if mounts.iter().any(|m| m.path == path) {
                return Err(VfsError::DuplicateMount { path });
            }
            let host_of = |host: &Path| -> Result<PathBuf, VfsError> {
                if host.as_os_str().is_empty() {
                    return Err(config(format!("mount {path} has an empty host path")));
                }
                Ok(path::lexical_abs(host, &cwd))
            };
            let kind = match pending {
                PendingMount::Chroot(host) => MountKind::Chroot {
                    host_abs: host_of(&host)?,
                    host,
                },
                PendingMount::Encrypted {
                    host,
                    bound_prefix,
                    key_name,
                } => {
                    if !keys.contains_key(&key_name) {
                        return Err(VfsError::MissingKey {
                            mount: path,
                            key_name,
                        });
                    }
                    if bound_prefix.is_empty() || bound_prefix.contains('\0') {
                        return Err(config(format!(
                            "encrypted mount {path}: the bound path prefix {bound_prefix:?} must be the mount's URI path (e.g. \"encrypted\" for uri \"file:encrypted\")"
                        )));
                    }
                    MountKind::Encrypted {
                        host_abs: host_of(&host)?,
                        host,
                        bound_prefix,
                        key_name,
                    }
                }
                PendingMount::Tmpfs => MountKind::Tmpfs,
            };
            mounts.push(Mount { path, kind });
        }
        // Longest prefix first.
        mounts.sort_by(|a, b| b.path.len().cmp(&a.path.len()).then(a.path.cmp(&b.path)));

        let mut trusted: BTreeMap<PathBuf, [u8; 32]> = BTreeMap::new();
        for (host, hash) in self.trusted {
            let abs = path::lexical_abs(&host, &cwd);
            if let Some(old) = trusted.insert(abs, hash) {
                if old != hash {
                    return Err(config(format!(
                        "trusted file {} is listed twice with different hashes ({} and {})",
                        host.display(),
                        hex::encode(old),
                        hex::encode(hash)
                    )));
                }
            }
        }
        let trusted_meta = self
            .trusted_meta
            .into_iter()
            .map(|(p, mode, mtime)| (path::lexical_abs(&p, &cwd), (mode, mtime)))
            .collect();
        let mut trees: BTreeMap<PathBuf, Arc<TrustTree>> = BTreeMap::new();
        for (host, tree) in self.trees {
            let abs = path::lexical_abs(&host, &cwd);
            if let Some(old) = trees.insert(abs, tree.clone()) {
                if old.digest() != tree.digest() {
                    return Err(config(format!(
                        "trusted directory {} is given two different trees",
                        host.display()
                    )));
                }
            }
        }
        let allowed: BTreeSet<PathBuf> = self
            .allowed
            .iter()
            .map(|p| path::lexical_abs(p, &cwd))
            .collect();

        let mut vfs = Vfs {
            mounts,
            trusted,
            trusted_meta,
            trees,
            allowed,
            pins: BTreeMap::new(),
            keys,
            tmpfs: Arc::new(Tmpfs::default()),
            memory_limit: self.memory_limit.unwrap_or(DEFAULT_MEMORY_LIMIT),
            whole_read_limit: self.whole_read_limit.unwrap_or(DEFAULT_WHOLE_READ_LIMIT),
            chunk_size: self.chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE).max(1),
            manifest_dir: self.manifest_dir.map(|d| path::lexical_abs(&d, &cwd)),
            stats: Arc::new(Counters::default()),
        };
        for (raw, hash) in self.pins {
            let p = normalize_path(&raw)?;
            match vfs.mount_of(&p) {
                Some(Mount {
                    kind: MountKind::Encrypted { .. },
                    ..
                }) => {}
                other => {
                    let under = match other {
                        Some(m) => format!("it is under mount {}", m.describe()),
                        None => "it is under no mount".to_string(),
                    };
                    return Err(config(format!(
                        "pinned file {p}: {under}; only protected files under an encrypted mount can be pinned"
                    )));
                }
            }
            if let Some(old) = vfs.pins.insert(p.clone(), hash) {
                if old != hash {
                    return Err(config(format!(
                        "pinned file {p} is pinned twice with different hashes"
                    )));
                }
            }
        }
        for name in vfs.keys.keys() {
            let used = vfs.mounts.iter().any(
                |m| matches!(&m.kind, MountKind::Encrypted { key_name, .. } if key_name == name),
            );
            if !used {
                tracing::debug!("key {name:?} is not used by any encrypted mount");
            }
        }
        Ok(vfs)
    }
}

/// The manifest-enforcing virtual file system (see the module documentation).
///
/// `Send + Sync`; every method takes `&self`.
pub struct Vfs {
    /// Longest path first.
    mounts: Vec<Mount>,
    /// Absolute, lexically normalised host path → SHA-256.
    trusted: BTreeMap<PathBuf, [u8; 32]>,
    /// Trusted files' signed mode and mtime, where the manifest has them.
    trusted_meta: BTreeMap<PathBuf, (u32, SystemTime)>,
    /// Absolute, lexically normalised host directory → its signed tree.
    trees: BTreeMap<PathBuf, Arc<TrustTree>>,
    /// Absolute, lexically normalised host paths (files or directories).
    allowed: BTreeSet<PathBuf>,
    /// Normalised workload path → plaintext SHA-256.
    pins: BTreeMap<String, [u8; 32]>,
    keys: BTreeMap<String, WrapKey>,
    tmpfs: Arc<Tmpfs>,
    memory_limit: u64,
    whole_read_limit: u64,
    chunk_size: usize,
    /// Host paths under it are shown relative to it.
    manifest_dir: Option<PathBuf>,
    stats: Arc<Counters>,
}

impl std::fmt::Debug for Vfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vfs")
            .field("mounts", &self.mount_list())
            .field("trusted_files", &self.trusted.len())
            .field("allowed", &self.allowed.len())
            .field("pins", &self.pins.len())
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .field("memory_limit", &self.memory_limit)
            .field("whole_read_limit", &self.whole_read_limit)
            .finish_non_exhaustive()
    }
}

impl Vfs {
    /// A builder.
    pub fn builder() -> VfsBuilder {
        VfsBuilder::default()
    }

    /// The counters so far.
    pub fn stats(&self) -> VfsStats {
        let s = &self.stats;
        VfsStats {
            files_opened: s.files_opened.load(Relaxed),
            files_committed: s.files_committed.load(Relaxed),
            trusted_bytes_verified: s.trusted_bytes_verified.load(Relaxed),
            protected_bytes_decrypted: s.protected_bytes_decrypted.load(Relaxed),
            protected_bytes_encrypted: s.protected_bytes_encrypted.load(Relaxed),
            refused: s.refused.load(Relaxed),
        }
    }

    /// The protected files committed so far, in commit order (a path committed twice appears
    /// twice; the last is what is on disk).
    pub fn committed_outputs(&self) -> Vec<CommittedOutput> {
        match self.stats.outputs.lock() {
            Ok(o) => o.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Where `path` leads: its mount, host path and bound path. Lexical only; says nothing about
    /// whether the file exists or may be opened.
    pub fn locate(&self, path: &str) -> Result<Location, VfsError> {
        let norm = normalize_path(path)?;
        let m = self.mount_of(&norm).ok_or_else(|| self.no_mount(&norm))?;
        let rel = path::strip_mount(&norm, &m.path).unwrap_or("");
        let (mount_type, bound_path) = match &m.kind {
            MountKind::Chroot { .. } => (MountType::Chroot, None),
            MountKind::Encrypted {
                key_name,
                bound_prefix,
                ..
            } => (
                MountType::Encrypted {
                    key_name: key_name.clone(),
                },
                Some(path::bound_path(bound_prefix, rel)),
            ),
            MountKind::Tmpfs => (MountType::Tmpfs, None),
        };
        Ok(Location {
            host: m.host().map(|(_, abs)| path::join_rel(abs, rel)),
            path: norm.clone(),
            mount: m.path.clone(),
            mount_type,
            bound_path,
        })
    }

    /// Opens a file for reading. Trusted files are verified and protected files authenticated
    /// (and checked against their pin) before this returns.
    pub fn open(&self, path: &str) -> Result<VfsFile, VfsError> {
        self.note(self.open_with(path, false))
    }

    /// Reads a whole file into memory, verified or authenticated before it is returned (whatever
    /// the memory limit; a file above the whole-read limit is refused with
    /// [`VfsError::TooLargeToRead`]).
    pub fn read(&self, path: &str) -> Result<Zeroizing<Vec<u8>>, VfsError> {
        self.note(self.open_with(path, true).and_then(VfsFile::into_bytes))
    }

    /// Reads a whole file as UTF-8 text.
    pub fn read_to_string(&self, path: &str) -> Result<Zeroizing<String>, VfsError> {
        let mut bytes = self.read(path)?;
        match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(s) => Ok(Zeroizing::new(s)),
            Err(e) => {
                let valid_up_to = e.utf8_error().valid_up_to();
                drop(Zeroizing::new(e.into_bytes()));
                Err(self.note_err(VfsError::NotUtf8 {
                    path: normalize_path(path)?,
                    valid_up_to,
                }))
            }
        }
    }

    /// Starts writing a new version of the file at `path` (see [`VfsWriter`]): under an encrypted
    /// mount a protected file bound to its bound path, under a chroot mount an allowed file,
    /// under a tmpfs mount a memory file. Trusted and pinned files are read-only. The parent
    /// directory must exist ([`create_dir_all`](Self::create_dir_all)).
    pub fn create(&self, path: &str) -> Result<VfsWriter, VfsError> {
        self.note(self.create_inner(path))
    }

    /// Starts a new version of the file at `path` holding its current contents, for a program
    /// that opens an existing file for writing without truncating it (`r+`, `a`): as
    /// [`create`](Self::create), then the current file is copied in — a protected file decrypted
    /// (key and bound path checked, every node authenticated) and re-encrypted into the new
    /// one. A missing file starts empty. Nothing changes at `path` until the version is
    /// committed.
    pub fn edit(&self, path: &str) -> Result<VfsWriter, VfsError> {
        self.note(self.edit_inner(path))
    }

    /// Writes `bytes` as the new version of `path` and commits it: [`create`](Self::create),
    /// write, [`VfsWriter::commit`] in one call, for outputs that are ready whole.
    pub fn write(&self, path: &str, bytes: &[u8]) -> Result<(), VfsError> {
        let mut out = self.create(path)?;
        self.note(out.write_whole(bytes))?;
        self.note(out.commit())
    }

    /// Names of the entries of directory `path` that the workload may open or enter (mount
    /// points included), sorted. Under chroot mounts only trusted and allowed files, and
    /// directories leading to some, are listed.
    pub fn read_dir(&self, path: &str) -> Result<Vec<String>, VfsError> {
        self.note(self.read_dir_inner(path))
    }

    /// Length and kind of `path`. For protected files this opens the metadata (key and bound path
    /// checked) to learn the plaintext length.
    pub fn metadata(&self, path: &str) -> Result<VfsMetadata, VfsError> {
        self.note(self.metadata_inner(path))
    }

    /// Whether `path` exists and may be opened or listed.
    pub fn exists(&self, path: &str) -> bool {
        self.metadata_inner(path).is_ok()
    }

    /// Creates directory `path` and its missing parents: under an encrypted mount, under an
    /// allowed directory of a chroot mount, or in a tmpfs.
    pub fn create_dir_all(&self, path: &str) -> Result<(), VfsError> {
        self.note(self.create_dir_all_inner(path))
    }

    // ---- internals ----

    fn note<T>(&self, r: Result<T, VfsError>) -> Result<T, VfsError> {
        r.map_err(|e| self.note_err(e))
    }

    fn note_err(&self, e: VfsError) -> VfsError {
        if e.is_denied() || e.is_integrity() {
            self.stats.refused.fetch_add(1, Relaxed);
            tracing::debug!("vfs refused: {e}");
        }
        e
    }

    fn mount_of(&self, norm: &str) -> Option<&Mount> {
        self.mounts
            .iter()
            .find(|m| path::strip_mount(norm, &m.path).is_some())
    }

    fn mount_list(&self) -> String {
        let mut list: Vec<String> = self.mounts.iter().map(Mount::describe).collect();
        list.sort();
        if list.is_empty() {
            "none".to_string()
        } else {
            list.join(", ")
        }
    }

    fn no_mount(&self, norm: &str) -> VfsError {
        VfsError::NoMount {
            path: norm.to_string(),
            mounts: self.mount_list(),
        }
    }

    /// Mount points strictly below `norm`: the first component of each, below `norm`.
    fn child_mounts(&self, norm: &str) -> BTreeSet<String> {
        self.mounts
            .iter()
            .filter_map(|m| path::strip_mount(&m.path, norm))
            .filter(|rest| !rest.is_empty())
            .filter_map(|rest| rest.split('/').next().map(str::to_string))
            .collect()
    }

    fn resolve(&self, norm: &str) -> Result<Resolved<'_>, VfsError> {
        let Some(m) = self.mount_of(norm) else {
            return if self.child_mounts(norm).is_empty() {
                Err(self.no_mount(norm))
            } else {
                Ok(Resolved::Virtual)
            };
        };
        let rel = path::strip_mount(norm, &m.path).unwrap_or("").to_string();
        let (host, host_abs, enc) = match &m.kind {
            MountKind::Tmpfs => return Ok(Resolved::Tmpfs { mount: &m.path }),
            MountKind::Chroot { host, host_abs } => (host, host_abs, None),
            MountKind::Encrypted {
                host,
                host_abs,
                bound_prefix,
                key_name,
            } => {
                let key = self
                    .keys
                    .get(key_name)
                    .ok_or_else(|| VfsError::MissingKey {
                        mount: m.path.clone(),
                        key_name: key_name.clone(),
                    })?;
                (
                    host,
                    host_abs,
                    Some(EncTarget {
                        bound: path::bound_path(bound_prefix, &rel),
                        key,
                        key_name,
                    }),
                )
            }
        };
        let abs = path::join_rel(host_abs, &rel);
        let shown = match &self.manifest_dir {
            Some(dir) => match abs.strip_prefix(dir) {
                Ok(below) if below.as_os_str().is_empty() => ".".to_string(),
                Ok(below) => below.display().to_string(),
                Err(_) => abs.display().to_string(),
            },
            None => path::host_display(host, &rel),
        };
        Ok(Resolved::Host(HostTarget {
            mount: m,
            abs,
            names: Names {
                path: norm.to_string(),
                host: shown,
            },
            rel,
            enc,
        }))
    }

    /// The entry of a trusted tree at host path `abs` (the deepest tree holding it).
    fn tree_at(&self, abs: &Path) -> Option<tree::TreeRef> {
        if self.trees.is_empty() {
            return None;
        }
        abs.ancestors().find_map(|root| {
            let t = self.trees.get(root)?;
            let rel = abs.strip_prefix(root).ok()?.to_str()?;
            t.get(rel).map(|_| tree::TreeRef {
                tree: t.clone(),
                rel: rel.to_string(),
            })
        })
    }

    /// When `abs` lies in a trusted tree that does not hold it, and no other rule lists it: the
    /// error to give without asking the host (a program probes many names that do not exist, and
    /// resolving each on the host costs a syscall per path component).
    fn tree_miss(&self, t: &HostTarget<'_>) -> Option<VfsError> {
        let root = t
            .abs
            .ancestors()
            .skip(1)
            .find(|a| self.trees.contains_key(*a))?;
        if self.trusted.contains_key(&t.abs) || self.is_allowed(&t.abs) || self.listed_below(&t.abs)
        {
            return None;
        }
        let uri = self.trees.get(root).map(|tr| tr.uri().to_string());
        Some(VfsError::NotFound {
            path: t.names.path.clone(),
            location: format!(
                "host {}, which is not in trusted directory {} as signed; a file added since \
                 signing needs `ward sign` again",
                t.names.host,
                uri.unwrap_or_default()
            ),
        })
    }

    /// A symlink's target as a normalised workload path, from the link at workload path `norm`.
    fn link_target(norm: &str, target: &str) -> Result<String, VfsError> {
        if target.starts_with('/') {
            normalize_path(target)
        } else {
            let parent = norm.rsplit_once('/').map_or("", |(p, _)| p);
            normalize_path(&format!("{parent}/{target}"))
        }
    }

    fn open_tree(
        &self,
        t: &HostTarget<'_>,
        at: tree::TreeRef,
        whole: bool,
        depth: u8,
    ) -> Result<VfsFile, VfsError> {
        match at.entry() {
            Some(TreeEntry::Dir { .. }) => {
                return Err(VfsError::IsADirectory {
                    path: t.names.path.clone(),
                })
            }
            Some(TreeEntry::Symlink { target, .. }) => {
                // The kernel follows links in a program's view; built-ins get the same here.
                if depth >= MAX_LINK_DEPTH {
                    return Err(VfsError::InvalidPath {
                        path: t.names.path.clone(),
                        reason: "too many levels of symbolic links",
                    });
                }
                let next = Self::link_target(&t.names.path, target)?;
                return self.open_depth(&next, whole, depth + 1);
            }
            _ => {}
        }
        // The host file is opened wherever it leads: every byte served is checked against the
        // signed chunk hashes, so its location does not matter. Non-blocking, so that a FIFO
        // swapped in cannot hang the open; it is then refused as not a regular file.
        use std::os::unix::fs::OpenOptionsExt;
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_NONBLOCK)
            .open(&t.abs)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => Self::not_found(t),
                _ => t.names.io("opening", e),
            })?;
        let md = file
            .metadata()
            .map_err(|e| t.names.io("reading metadata of", e))?;
        if !md.is_file() {
            return Err(VfsError::NotRegularFile {
                path: t.names.path.clone(),
                host: t.names.host.clone(),
            });
        }
        let names = t.names.clone();
        if whole && at.file().is_some_and(|f| f.size > self.whole_read_limit) {
            return Err(self.too_large_to_read(&names));
        }
        let stats = self.stats.clone();
        let opened = tree::open(file, at, whole, &names, &stats)?;
        self.stats.files_opened.fetch_add(1, Relaxed);
        Ok(match opened {
            tree::Opened::Whole(data) => {
                VfsFile::memory(names, FileKind::Trusted, Arc::new(data), stats)
            }
            tree::Opened::Lazy(c) => {
                let len = c.len();
                VfsFile::new(names, FileKind::Trusted, len, Inner::Tree(c), stats)
            }
        })
    }

    /// The target of the symlink at `path` (a symlink of a trusted tree).
    pub fn read_link(&self, path: &str) -> Result<String, VfsError> {
        let r = (|| {
            let norm = normalize_path(path)?;
            if let Resolved::Host(t) = self.resolve(&norm)? {
                if t.enc.is_none() {
                    if let Some(at) = self.tree_at(&t.abs) {
                        if let Some(TreeEntry::Symlink { target, .. }) = at.entry() {
                            return Ok(target.clone());
                        }
                    }
                }
            }
            Err(VfsError::InvalidPath {
                path: norm,
                reason: "it is not a symbolic link",
            })
        })();
        self.note(r)
    }

    fn is_allowed(&self, abs: &Path) -> bool {
        abs.ancestors().any(|a| self.allowed.contains(a))
    }

    /// Whether some trusted or allowed path lies strictly below directory `abs`.
    fn listed_below(&self, abs: &Path) -> bool {
        let below = |p: &PathBuf| p.starts_with(abs) && p.as_path() != abs;
        self.trusted
            .range::<Path, _>((Bound::Excluded(abs), Bound::Unbounded))
            .next()
            .is_some_and(|(p, _)| below(p))
            || self
                .trees
                .range::<Path, _>((Bound::Excluded(abs), Bound::Unbounded))
                .next()
                .is_some_and(|(p, _)| below(p))
            || self
                .allowed
                .range::<Path, _>((Bound::Excluded(abs), Bound::Unbounded))
                .next()
                .is_some_and(below)
    }

    /// The mount's host directory, canonical.
    fn mount_root(&self, t: &HostTarget<'_>) -> Result<PathBuf, VfsError> {
        let (host, abs) = t.mount.host().unwrap_or((Path::new("."), Path::new(".")));
        fs::canonicalize(abs).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                VfsError::MountMissing {
                    path: t.names.path.clone(),
                    mount: t.mount.path.clone(),
                    host: host.display().to_string(),
                }
            } else {
                t.names.io("resolving the mount's host directory for", e)
            }
        })
    }

    fn escape(t: &HostTarget<'_>, target: &Path) -> VfsError {
        VfsError::Escape {
            path: t.names.path.clone(),
            host: t.names.host.clone(),
            target: target.display().to_string(),
        }
    }

    fn too_large_to_read(&self, names: &Names) -> VfsError {
        file::too_large_to_read(names, self.whole_read_limit)
    }

    fn not_found(t: &HostTarget<'_>) -> VfsError {
        VfsError::NotFound {
            path: t.names.path.clone(),
            location: format!("host {}", t.names.host),
        }
    }

    /// The host file's canonical path, which must lie under the mount's canonical host directory.
    fn contain(&self, t: &HostTarget<'_>) -> Result<PathBuf, VfsError> {
        let root = self.mount_root(t)?;
        let canon = fs::canonicalize(&t.abs).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Self::not_found(t),
            _ => t.names.io("resolving", e),
        })?;
        if !canon.starts_with(&root) {
            return Err(Self::escape(t, &canon));
        }
        Ok(canon)
    }

    /// Where a new version of `t` goes: (canonical directory, target path in it). The directory
    /// must exist and lie in the mount.
    fn prepare_target(&self, t: &HostTarget<'_>) -> Result<(PathBuf, PathBuf), VfsError> {
        let invalid = || VfsError::InvalidPath {
            path: t.names.path.clone(),
            reason: "it names no file",
        };
        let name = t.abs.file_name().ok_or_else(invalid)?;
        let parent = t.abs.parent().ok_or_else(invalid)?;
        let dir = fs::canonicalize(parent).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => VfsError::NotFound {
                path: t.names.path.clone(),
                location: format!(
                    "host {}: its directory is missing; create it first (create_dir_all)",
                    t.names.host
                ),
            },
            _ => t.names.io("resolving the directory of", e),
        })?;
        // A mount of a single file names its target itself; otherwise the directory must be in
        // the mount.
        if !t.rel.is_empty() {
            let root = self.mount_root(t)?;
            if !dir.starts_with(&root) {
                return Err(Self::escape(t, &dir));
            }
        }
        let target = dir.join(name);
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            return Err(VfsError::IsADirectory {
                path: t.names.path.clone(),
            });
        }
        Ok((dir, target))
    }

    fn open_file(t: &HostTarget<'_>, canon: &Path) -> Result<(File, fs::Metadata), VfsError> {
        let check = |md: &fs::Metadata| {
            if md.is_dir() {
                Err(VfsError::IsADirectory {
                    path: t.names.path.clone(),
                })
            } else if !md.is_file() {
                Err(VfsError::NotRegularFile {
                    path: t.names.path.clone(),
                    host: t.names.host.clone(),
                })
            } else {
                Ok(())
            }
        };
        // Checked before opening too: opening a FIFO would block.
        let before = fs::metadata(canon).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Self::not_found(t),
            _ => t.names.io("reading metadata of", e),
        })?;
        check(&before)?;
        let file = File::open(canon).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Self::not_found(t),
            _ => t.names.io("opening", e),
        })?;
        let md = file
            .metadata()
            .map_err(|e| t.names.io("reading metadata of", e))?;
        check(&md)?;
        Ok((file, md))
    }

    fn open_with(&self, path: &str, whole: bool) -> Result<VfsFile, VfsError> {
        self.open_depth(path, whole, 0)
    }

    fn open_depth(&self, path: &str, whole: bool, depth: u8) -> Result<VfsFile, VfsError> {
        let norm = normalize_path(path)?;
        let file = match self.resolve(&norm)? {
            Resolved::Virtual => return Err(VfsError::IsADirectory { path: norm }),
            Resolved::Tmpfs { mount } => {
                let data = self.tmpfs.get_file(&norm, mount)?;
                let names = Names {
                    path: norm,
                    host: "tmpfs".into(),
                };
                VfsFile::memory(names, FileKind::Tmpfs, data, self.stats.clone())
            }
            Resolved::Host(t) => match &t.enc {
                None => match self.tree_at(&t.abs) {
                    Some(at) => return self.open_tree(&t, at, whole, depth),
                    None => match self.tree_miss(&t) {
                        Some(e) => return Err(e),
                        None => self.open_chroot(&t, whole)?,
                    },
                },
                Some(enc) => self.open_protected(&t, enc, whole)?,
            },
        };
        self.stats.files_opened.fetch_add(1, Relaxed);
        tracing::debug!(path = file.path(), kind = ?file.kind(), len = file.len(), "vfs open");
        Ok(file)
    }

    fn open_chroot(&self, t: &HostTarget<'_>, whole: bool) -> Result<VfsFile, VfsError> {
        let expected = self.trusted.get(&t.abs);
        if expected.is_none() && !self.is_allowed(&t.abs) {
            return Err(VfsError::NotListed {
                path: t.names.path.clone(),
                host: t.names.host.clone(),
            });
        }
        // A trusted file is opened wherever a host symlink leads (a venv's bin/python into
        // /usr/bin): what is served is checked against the signed hash, so its location does
        // not matter. An allowed file must stay inside its mount.
        let canon = match expected {
            Some(_) => t.abs.clone(),
            None => self.contain(t)?,
        };
        let (mut file, md) = Self::open_file(t, &canon)?;
        let stats = self.stats.clone();
        let names = t.names.clone();
        let limit = self.whole_read_limit;
        if whole && md.len() > limit {
            return Err(self.too_large_to_read(&names));
        }
        Ok(match expected {
            None if whole => {
                let data = file::read_allowed(&mut file, md.len(), limit, &names)?;
                VfsFile::memory(names, FileKind::Allowed, Arc::new(data), stats)
            }
            None => VfsFile::new(names, FileKind::Allowed, md.len(), Inner::Host(file), stats),
            Some(hash) if whole || md.len() <= self.memory_limit.min(limit) => {
                let data = file::read_trusted(&mut file, md.len(), limit, hash, &names, &stats)?;
                VfsFile::memory(names, FileKind::Trusted, Arc::new(data), stats)
            }
            Some(hash) => {
                let c = file::Chunked::open(file, hash, self.chunk_size, &names, &stats)?;
                // The length verified, not the length the host reported before reading.
                let len = c.len();
                VfsFile::new(
                    names,
                    FileKind::Trusted,
                    len,
                    Inner::Chunked(Box::new(c)),
                    stats,
                )
            }
        })
    }

    fn open_protected(
        &self,
        t: &HostTarget<'_>,
        enc: &EncTarget<'_>,
        whole: bool,
    ) -> Result<VfsFile, VfsError> {
        let canon = self.contain(t)?;
        let (file, md) = Self::open_file(t, &canon)?;
        let open = file::ProtectedOpen {
            key: enc.key,
            bound: &enc.bound,
            key_name: enc.key_name,
            pin: self.pins.get(&t.names.path),
            names: &t.names,
            stats: &self.stats,
            whole_read_limit: self.whole_read_limit,
        };
        // A pinned file must be hashed whole before any byte is returned: when it is small,
        // decrypt it once into memory rather than twice (hash pass, then reads).
        let pinned_small =
            open.pin.is_some() && md.len() <= self.memory_limit.min(self.whole_read_limit);
        if whole || pinned_small {
            let data = open.decrypt_whole(&file, md.len())?;
            return Ok(VfsFile::memory(
                t.names.clone(),
                FileKind::Protected,
                Arc::new(data),
                self.stats.clone(),
            ));
        }
        let pf = open.open_streaming(file, self.chunk_size)?;
        let len = pf.len();
        Ok(VfsFile::new(
            t.names.clone(),
            FileKind::Protected,
            len,
            Inner::Protected {
                pf: Box::new(pf),
                key_name: enc.key_name.to_string(),
            },
            self.stats.clone(),
        ))
    }

    fn create_inner(&self, path: &str) -> Result<VfsWriter, VfsError> {
        let norm = normalize_path(path)?;
        if self.pins.contains_key(&norm) {
            return Err(VfsError::PinnedReadOnly { path: norm });
        }
        match self.resolve(&norm)? {
            Resolved::Virtual => Err(VfsError::IsADirectory { path: norm }),
            Resolved::Tmpfs { mount } => {
                self.tmpfs.prepare(&norm, mount)?;
                let names = Names {
                    path: norm,
                    host: "tmpfs".into(),
                };
                Ok(VfsWriter::tmpfs(
                    names,
                    self.tmpfs.clone(),
                    mount.to_string(),
                    self.stats.clone(),
                ))
            }
            Resolved::Host(t) => {
                if t.enc.is_none() {
                    if self.trusted.contains_key(&t.abs) || self.tree_at(&t.abs).is_some() {
                        return Err(VfsError::TrustedReadOnly {
                            path: t.names.path.clone(),
                            host: t.names.host.clone(),
                        });
                    }
                    if !self.is_allowed(&t.abs) {
                        return Err(VfsError::NotWritable {
                            path: t.names.path.clone(),
                            host: t.names.host.clone(),
                        });
                    }
                }
                let (_, target) = self.prepare_target(&t)?;
                let tmp = writer::temp_beside(&target, &t.names)?;
                match &t.enc {
                    None => Ok(VfsWriter::host(t.names, tmp, self.stats.clone())),
                    Some(enc) => VfsWriter::protected(
                        t.names.clone(),
                        tmp,
                        enc.key,
                        &enc.bound,
                        enc.key_name,
                        self.stats.clone(),
                    ),
                }
            }
        }
    }

    fn edit_inner(&self, path: &str) -> Result<VfsWriter, VfsError> {
        // The writer first: it is what refuses trusted, pinned and unlisted files.
        let mut out = self.create_inner(path)?;
        let mut src = match self.open_with(out.path(), false) {
            Ok(src) => src,
            Err(VfsError::NotFound { .. }) => return Ok(out),
            Err(e) => return Err(e),
        };
        // Plaintext of a protected file passes through here: a wiped buffer.
        let mut buf = Zeroizing::new(vec![0u8; COPY_STEP]);
        let mut off = 0u64;
        loop {
            let n = src.read_at(off, &mut buf)?;
            if n == 0 {
                break;
            }
            out.write_at(off, &buf[..n])?;
            off += n as u64;
        }
        out.mark_unchanged_copy();
        Ok(out)
    }

    fn read_dir_inner(&self, path: &str) -> Result<Vec<String>, VfsError> {
        let norm = normalize_path(path)?;
        let mut names = self.child_mounts(&norm);
        match self.resolve(&norm)? {
            Resolved::Virtual => {}
            Resolved::Tmpfs { mount } => names.extend(self.tmpfs.list(&norm, mount)?),
            Resolved::Host(t) => {
                if t.enc.is_none() {
                    if let Some(at) = self.tree_at(&t.abs) {
                        // A signed directory lists exactly what was signed.
                        return match at.tree.children(&at.rel) {
                            Some(children) => {
                                names.extend(children.into_iter().map(str::to_owned));
                                Ok(names.into_iter().collect())
                            }
                            None => Err(VfsError::NotADirectory {
                                path: t.names.path.clone(),
                            }),
                        };
                    }
                }
                let canon = match self.contain(&t) {
                    // Only a path to a mount point, e.g. /srv for a mount at /srv/www.
                    Err(VfsError::NotFound { .. } | VfsError::MountMissing { .. })
                        if !names.is_empty() =>
                    {
                        return Ok(names.into_iter().collect())
                    }
                    r => r?,
                };
                let entries = fs::read_dir(&canon).map_err(|e| match e.kind() {
                    io::ErrorKind::NotADirectory => VfsError::NotADirectory {
                        path: t.names.path.clone(),
                    },
                    _ => t.names.io("listing", e),
                })?;
                for entry in entries {
                    let entry = entry.map_err(|e| t.names.io("listing", e))?;
                    let Ok(name) = entry.file_name().into_string() else {
                        continue; // not nameable by the workload
                    };
                    if ward_fsio::is_temp_name(&name) {
                        continue;
                    }
                    // Follows symlinks; a dangling one is not listed.
                    let Ok(md) = fs::metadata(entry.path()) else {
                        continue;
                    };
                    let child = t.abs.join(&name);
                    let visible = if t.enc.is_some() {
                        md.is_file() || md.is_dir()
                    } else if md.is_dir() {
                        self.is_allowed(&child)
                            || self.trees.contains_key(&child)
                            || self.listed_below(&child)
                    } else {
                        md.is_file()
                            && (self.trusted.contains_key(&child) || self.is_allowed(&child))
                    };
                    if visible {
                        names.insert(name);
                    }
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    fn metadata_inner(&self, path: &str) -> Result<VfsMetadata, VfsError> {
        let norm = normalize_path(path)?;
        match self.resolve(&norm)? {
            Resolved::Virtual => Ok(VfsMetadata::directory()),
            Resolved::Tmpfs { mount } => self.tmpfs.stat(&norm, mount),
            Resolved::Host(t) => {
                if t.enc.is_none() {
                    if let Some(at) = self.tree_at(&t.abs) {
                        // Signed: the host is not asked.
                        return Ok(at
                            .entry()
                            .map_or_else(VfsMetadata::directory, VfsMetadata::tree));
                    }
                    if let Some(e) = self.tree_miss(&t) {
                        return Err(e);
                    }
                }
                let trusted = t.enc.is_none() && self.trusted.contains_key(&t.abs);
                let canon = match self.contain(&t) {
                    Err(VfsError::NotFound { .. } | VfsError::MountMissing { .. })
                        if !self.child_mounts(&norm).is_empty() =>
                    {
                        return Ok(VfsMetadata::directory())
                    }
                    // As at open: a trusted file may be a link out of its mount.
                    Err(VfsError::Escape { .. }) if trusted => t.abs.clone(),
                    r => r?,
                };
                let md = fs::metadata(&canon).map_err(|e| t.names.io("reading metadata of", e))?;
                if md.is_dir() {
                    return Ok(VfsMetadata::directory());
                }
                match &t.enc {
                    Some(enc) => {
                        let (file, _) = Self::open_file(&t, &canon)?;
                        let info = ward_pf::info(&file, enc.key, Some(&enc.bound))
                            .map_err(|e| t.names.pf(enc.key_name, e))?;
                        Ok(VfsMetadata::file(info.size, FileKind::Protected))
                    }
                    None if self.trusted.contains_key(&t.abs) => {
                        let signed = self.trusted_meta.get(&t.abs);
                        Ok(VfsMetadata {
                            mode: signed.map(|s| s.0),
                            mtime: signed.map(|s| s.1),
                            ..VfsMetadata::file(md.len(), FileKind::Trusted)
                        })
                    }
                    None if self.is_allowed(&t.abs) => {
                        Ok(VfsMetadata::file(md.len(), FileKind::Allowed))
                    }
                    None => Err(VfsError::NotListed {
                        path: t.names.path.clone(),
                        host: t.names.host.clone(),
                    }),
                }
            }
        }
    }

    fn create_dir_all_inner(&self, path: &str) -> Result<(), VfsError> {
        let norm = normalize_path(path)?;
        match self.resolve(&norm)? {
            Resolved::Virtual => Ok(()),
            Resolved::Tmpfs { mount } => self.tmpfs.mkdir_all(&norm, mount),
            Resolved::Host(t) => {
                if t.enc.is_none() && !self.is_allowed(&t.abs) {
                    return Err(VfsError::NotWritable {
                        path: t.names.path.clone(),
                        host: t.names.host.clone(),
                    });
                }
                let root = self.mount_root(&t)?;
                let mut cur = root.clone();
                for comp in t.rel.split('/').filter(|c| !c.is_empty()) {
                    let next = cur.join(comp);
                    match fs::create_dir(&next) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(t.names.io("creating directory", e)),
                    }
                    let canon = fs::canonicalize(&next).map_err(|e| t.names.io("resolving", e))?;
                    if !canon.starts_with(&root) {
                        return Err(Self::escape(&t, &canon));
                    }
                    if !canon.is_dir() {
                        return Err(VfsError::NotADirectory {
                            path: t.names.path.clone(),
                        });
                    }
                    cur = canon;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn types_are_thread_safe() {
        assert_send_sync::<Vfs>();
        assert_send_sync::<VfsError>();
        fn assert_send<T: Send>() {}
        assert_send::<VfsFile>();
        assert_send::<VfsWriter>();
    }
}
