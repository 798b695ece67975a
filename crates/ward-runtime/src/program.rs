//! Running the user's own program (`[libos] entrypoint`) confined to the manifest's view.
//!
//! The manifest's mounts become the program's file system through `ward-exec`: each top-level
//! chroot or encrypted mount is a FUSE view answered by the [`Vfs`] (trusted files verified
//! before any byte is served, protected files decrypted, anything else absent), tmpfs mounts are
//! the kernel's. Files the program writes are new versions ([`VfsWriter`]s), one per path shared
//! by every descriptor on it, so the program reads back what it wrote; opening an existing file
//! without `O_TRUNC` starts its new version as a copy of it. New versions are committed (synced
//! and renamed into place) only if the program exits 0; otherwise they are discarded and
//! existing files stay as they were.
//!
//! The order matters: the sandbox's zygote is forked ([`PreparedProgram::prepare`]) while the
//! process is still single-threaded, before the runtime digest, attestation and key fetching
//! start threads; the keys then never exist in the zygote's copy of ward's memory. The manifest
//! is read (unverified) to lay out the sandbox, then verified by [`boot`]; a verified manifest
//! that differs from the one laid out is refused.
//!
//! What it is not: the confinement itself (namespaces, seccomp, Landlock) is `ward-exec`'s.

use crate::attestation_dev::AttestationView;
use crate::bootstrap::{boot, BootError, BootOptions, Context};
use crate::report::{FileCounts, RunReport};
use crate::vfs::{FileKind, Vfs, VfsError, VfsStats, VfsWriter};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime};
use ward_exec::{Attr, DirEntry, Errno, Handle, Kind, View, ViewOptions};
use ward_manifest::{Manifest, MountType, SignedManifest, Workload};

/// The size of a tmpfs mount of the manifest (the kernel's, in memory).
const TMPFS_BYTES: u64 = 256 << 20;

/// Why a program could not be run, or its outputs not be committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProgramError {
    /// The signed manifest could not be read.
    #[error("reading the signed manifest {}", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<ward_manifest::Error>,
    },
    /// The manifest names a built-in, not a program.
    #[error("the manifest runs the built-in {0}, not a program")]
    NotAProgram(String),
    /// The sandbox could not be prepared or started (not root, no FUSE, a mount, the
    /// entrypoint).
    #[error("confining the program")]
    Sandbox(#[source] ward_exec::ExecError),
    /// Verifying the manifest, attesting or fetching keys failed.
    #[error("booting the workload")]
    Boot(#[source] Box<BootError>),
    /// The file changed between the layout and its verification.
    #[error("the signed manifest changed while ward was starting (it was read twice and differed); run again")]
    ManifestChanged,
    /// Waiting for the program failed.
    #[error("waiting for the program")]
    Wait(#[source] ward_exec::ExecError),
    /// An output could not be committed after the program succeeded.
    #[error("committing {path} after the program succeeded")]
    Commit {
        /// The workload path.
        path: String,
        /// Why.
        #[source]
        source: VfsError,
    },
}

/// What a program's run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramOutcome {
    /// The program's exit code (128 + N when killed by signal N).
    pub code: i32,
    /// Files committed (only when `code` is 0).
    pub committed: usize,
    /// New files discarded because the program failed.
    pub discarded: usize,
    /// The file system's counters.
    pub stats: VfsStats,
    /// The protected files committed, in commit order (what a receipt names).
    pub outputs: Vec<crate::vfs::CommittedOutput>,
}

/// The new version of one file, shared by every handle on its path (so a read sees what was
/// written); `None` once taken for commit or discard at exit.
type Version = Arc<Mutex<Option<VfsWriter>>>;

/// What the views share: the booted context (set once booted), the new versions waiting for
/// the program's exit, and the paths already reported as refused.
#[derive(Default)]
struct Shared {
    /// Shared with `/dev/attestation` as well.
    ctx: Arc<OnceLock<Arc<Context>>>,
    /// New versions of files written in this run, by workload path; each is committed once, at
    /// exit 0.
    pending: Mutex<BTreeMap<String, Version>>,
    /// Held while a new version is started (a copy of a large file takes a while), so two opens
    /// of one path share one version, without making `stat`s wait on `pending`.
    starting: Mutex<()>,
    refused: Mutex<BTreeSet<String>>,
}

impl Shared {
    fn vfs(&self) -> Result<&Vfs, Errno> {
        self.ctx.get().map(|c| &c.vfs).ok_or(Errno::EIO)
    }

    /// The new version of `path` written in this run, if any.
    fn version(&self, path: &str) -> Option<Version> {
        self.pending.lock().ok()?.get(path).cloned()
    }

    /// The current size of `path`'s new version, if it has one.
    fn version_len(&self, path: &str) -> Option<u64> {
        let version = self.version(path)?;
        let writer = version.lock().ok()?;
        writer.as_ref().map(VfsWriter::len)
    }

    /// The errno the program sees for a failed read or write of a new version, logged (without
    /// any of the file's bytes).
    fn write_errno(&self, path: &str, op: &str, e: &VfsError) -> Errno {
        tracing::warn!("{op} {path}: {}", ward_attest::ErrorChain(e));
        self.errno(path, e)
    }

    /// The errno the program sees for `e`; refusals are reported once per path with the rule
    /// that would allow the access.
    fn errno(&self, path: &str, e: &VfsError) -> Errno {
        if e.is_denied() || e.is_integrity() {
            let first = self
                .refused
                .lock()
                .map(|mut r| r.insert(path.to_owned()))
                .unwrap_or(false);
            if first {
                tracing::warn!("refused {path}: {}", ward_attest::ErrorChain(e));
            }
        }
        match e {
            VfsError::NotFound { .. }
            | VfsError::MountMissing { .. }
            | VfsError::NoMount { .. }
            | VfsError::NotListed { .. } => Errno::ENOENT,
            VfsError::IsADirectory { .. } => Errno::EISDIR,
            VfsError::NotADirectory { .. } => Errno::ENOTDIR,
            VfsError::InvalidPath { .. } => Errno::EINVAL,
            VfsError::NotWritable { .. }
            | VfsError::TrustedReadOnly { .. }
            | VfsError::PinnedReadOnly { .. } => Errno::EACCES,
            VfsError::Escape { .. } => Errno::EACCES,
            VfsError::TooLarge { .. } => Errno::EFBIG,
            VfsError::Io { source, .. } if source.kind() == std::io::ErrorKind::OutOfMemory => {
                Errno::ENOMEM
            }
            VfsError::Io { source, .. } => source
                .raw_os_error()
                .map(Errno::from_raw)
                .unwrap_or(Errno::EIO),
            _ => Errno::EIO,
        }
    }
}

/// One top-level mount of the manifest, served as a FUSE view; paths below it (nested mounts
/// included) are resolved by the [`Vfs`].
struct MountView {
    /// The mount's workload path (`/usr`).
    prefix: String,
    shared: Arc<Shared>,
}

impl MountView {
    fn workload_path(&self, path: &str) -> String {
        match path.trim_start_matches('/') {
            "" => self.prefix.clone(),
            rest if self.prefix == "/" => format!("/{rest}"),
            rest => format!("{}/{rest}", self.prefix),
        }
    }

    /// Mode and mtime from the host file behind `path`, when there is one.
    fn host_attrs(vfs: &Vfs, path: &str) -> (u16, SystemTime) {
        use std::os::unix::fs::PermissionsExt;
        let host = vfs.locate(path).ok().and_then(|l| l.host);
        match host.and_then(|h| std::fs::metadata(h).ok()) {
            Some(md) => (
                (md.permissions().mode() & 0o7777) as u16,
                md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            ),
            None => (0o755, SystemTime::UNIX_EPOCH),
        }
    }

    fn attr(&self, path: &str) -> Result<Attr, Errno> {
        let vfs = self.shared.vfs()?;
        if let Some(size) = self.shared.version_len(path) {
            return Ok(Attr::file(size, 0o644, SystemTime::now()));
        }
        let md = vfs
            .metadata(path)
            .map_err(|e| self.shared.errno(path, &e))?;
        if md.symlink {
            return Ok(Attr::symlink(
                md.len,
                md.mtime.unwrap_or(SystemTime::UNIX_EPOCH),
            ));
        }
        // A trusted tree's entries carry their signed mode and mtime; the host is not asked.
        let (mode, mtime) = match (md.mode, md.mtime) {
            (Some(mode), Some(mtime)) => ((mode & 0o7777) as u16, mtime),
            _ => Self::host_attrs(vfs, path),
        };
        Ok(match md.kind {
            None => Attr::dir(mode | 0o555, mtime),
            // Trusted files cannot be written: say so in the mode as well.
            Some(FileKind::Trusted) => Attr::file(md.len, mode & !0o222, mtime),
            Some(_) => Attr::file(md.len, mode, mtime),
        })
    }

    /// The new version of `path`, shared with every other handle on it: the one already
    /// started in this run (emptied when `truncate`), or a new one — empty when `truncate` or
    /// not `copy`, else a copy of the current file.
    fn version_for(&self, path: &str, truncate: bool, copy: bool) -> Result<Version, Errno> {
        let _starting = self.shared.starting.lock().map_err(|_| Errno::EIO)?;
        if let Some(version) = self.shared.version(path) {
            if truncate {
                let mut writer = version.lock().map_err(|_| Errno::EIO)?;
                let writer = writer.as_mut().ok_or(Errno::EIO)?;
                writer
                    .set_len(0)
                    .map_err(|e| self.shared.write_errno(path, "truncating", &e))?;
            }
            return Ok(version);
        }
        let vfs = self.shared.vfs()?;
        let writer = if truncate || !copy {
            vfs.create(path)
        } else {
            vfs.edit(path)
        }
        .map_err(|e| self.shared.errno(path, &e))?;
        let version = Arc::new(Mutex::new(Some(writer)));
        self.shared
            .pending
            .lock()
            .map_err(|_| Errno::EIO)?
            .insert(path.to_owned(), version.clone());
        Ok(version)
    }

    fn version_handle(&self, path: &str, version: Version, write: bool) -> Box<dyn Handle> {
        Box::new(VersionHandle {
            path: path.to_owned(),
            version,
            write,
            shared: self.shared.clone(),
        })
    }
}

impl View for MountView {
    fn lookup(&self, path: &str) -> Result<Attr, Errno> {
        self.attr(&self.workload_path(path))
    }

    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Errno> {
        let dir = self.workload_path(path);
        let vfs = self.shared.vfs()?;
        let names = vfs
            .read_dir(&dir)
            .map_err(|e| self.shared.errno(&dir, &e))?;
        Ok(names
            .into_iter()
            .map(|name| {
                let child = if dir == "/" {
                    format!("/{name}")
                } else {
                    format!("{dir}/{name}")
                };
                let kind = match vfs.metadata(&child) {
                    Ok(md) if md.is_dir() => Kind::Dir,
                    Ok(md) if md.symlink => Kind::Symlink,
                    _ => Kind::File,
                };
                DirEntry { name, kind }
            })
            .collect())
    }

    fn read_link(&self, path: &str) -> Result<Vec<u8>, Errno> {
        let path = self.workload_path(path);
        let vfs = self.shared.vfs()?;
        vfs.read_link(&path)
            .map(String::into_bytes)
            .map_err(|e| self.shared.errno(&path, &e))
    }

    fn open(&self, path: &str, flags: i32) -> Result<Box<dyn Handle>, Errno> {
        let path = self.workload_path(path);
        if flags & O_ACCMODE != 0 {
            // Without O_TRUNC the new version keeps the current bytes (`r+`, `a`).
            let version = self.version_for(&path, flags & O_TRUNC != 0, true)?;
            return Ok(self.version_handle(&path, version, true));
        }
        if let Some(version) = self.shared.version(&path) {
            // Written in this run: read what was written.
            return Ok(self.version_handle(&path, version, false));
        }
        let vfs = self.shared.vfs()?;
        let file = vfs.open(&path).map_err(|e| self.shared.errno(&path, &e))?;
        Ok(Box::new(ReadHandle {
            path,
            file: RwLock::new(file),
            shared: self.shared.clone(),
        }))
    }

    fn create(&self, path: &str, _mode: u16, flags: i32) -> Result<(Attr, Box<dyn Handle>), Errno> {
        // The kernel believes the file does not exist: a new, empty version (or, after a race
        // with another open, the one just started).
        let path = self.workload_path(path);
        let version = self.version_for(&path, flags & O_TRUNC != 0, false)?;
        let size = self.shared.version_len(&path).unwrap_or(0);
        let handle = self.version_handle(&path, version, true);
        Ok((Attr::file(size, 0o644, SystemTime::now()), handle))
    }
}

/// `O_WRONLY | O_RDWR` (Linux).
const O_ACCMODE: i32 = 0o3;

/// `O_TRUNC` (Linux).
const O_TRUNC: i32 = 0o1000;

struct ReadHandle {
    path: String,
    /// Read-locked for the kinds that read in parallel (the kernel sends one file's reads from
    /// several threads), write-locked for the others.
    file: RwLock<crate::vfs::VfsFile>,
    shared: Arc<Shared>,
}

impl Handle for ReadHandle {
    fn read_at(&self, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0u8; size as usize];
        let n = self.read_into(offset, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    fn read_into(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if let Some(version) = self.shared.version(&self.path) {
            // Opened before the program started rewriting the file: same file, new bytes.
            let size = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            let data = read_version(&self.shared, &self.path, &version, offset, size)?;
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            return Ok(n);
        }
        {
            let file = self.file.read().map_err(|_| Errno::EIO)?;
            match file.read_at_shared(offset, buf) {
                Some(Ok(n)) => return Ok(n),
                Some(Err(e)) => return Err(self.shared.errno(&self.path, &e)),
                None => {}
            }
        }
        let mut file = self.file.write().map_err(|_| Errno::EIO)?;
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(offset + done as u64, &mut buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) => return Err(self.shared.errno(&self.path, &e)),
            }
        }
        Ok(done)
    }
}

/// Reads up to `size` bytes of a new version at `offset`.
fn read_version(
    shared: &Shared,
    path: &str,
    version: &Version,
    offset: u64,
    size: u32,
) -> Result<Vec<u8>, Errno> {
    let mut writer = version.lock().map_err(|_| Errno::EIO)?;
    let writer = writer.as_mut().ok_or(Errno::EIO)?;
    let want = u64::from(size).min(writer.len().saturating_sub(offset));
    let mut buf = vec![0u8; want as usize];
    let mut done = 0;
    while done < buf.len() {
        match writer.read_at(offset + done as u64, &mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) => return Err(shared.write_errno(path, "reading back", &e)),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// A descriptor on a file written in this run: reads and writes go to its new version, shared
/// with every other descriptor on the path. Closing it commits nothing; the program's exit does.
struct VersionHandle {
    path: String,
    version: Version,
    /// Opened for writing.
    write: bool,
    shared: Arc<Shared>,
}

impl VersionHandle {
    fn writer<T>(&self, op: impl FnOnce(&mut VfsWriter) -> Result<T, Errno>) -> Result<T, Errno> {
        if !self.write {
            return Err(Errno::EBADF);
        }
        let mut writer = self.version.lock().map_err(|_| Errno::EIO)?;
        op(writer.as_mut().ok_or(Errno::EIO)?)
    }
}

impl Handle for VersionHandle {
    fn read_at(&self, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        read_version(&self.shared, &self.path, &self.version, offset, size)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.writer(|w| {
            w.write_at(offset, data)
                .map_err(|e| self.shared.write_errno(&self.path, "writing", &e))
        })?;
        Ok(data.len())
    }

    fn append(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.writer(|w| {
            // The version's own end, not the kernel's cached size (they agree unless the
            // kernel's attributes are stale).
            let end = w.len();
            if end != offset {
                tracing::debug!("append to {}: at {end}, not {offset}", self.path);
            }
            w.write_at(end, data)
                .map_err(|e| self.shared.write_errno(&self.path, "appending to", &e))
        })?;
        Ok(data.len())
    }

    fn set_len(&self, len: u64) -> Result<(), Errno> {
        self.writer(|w| {
            w.set_len(len)
                .map_err(|e| self.shared.write_errno(&self.path, "truncating", &e))
        })
    }
}

/// A program's sandbox, forked and waiting for its keys and its start.
pub struct PreparedProgram {
    prepared: ward_exec::Prepared,
    shared: Arc<Shared>,
    layout: Manifest,
    path: PathBuf,
}

impl std::fmt::Debug for PreparedProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedProgram")
            .field("manifest", &self.path)
            .finish_non_exhaustive()
    }
}

impl PreparedProgram {
    /// Reads the signed manifest at `path` (unverified, for its layout) and forks the
    /// program's sandbox, with `host_args` after the manifest's arguments (refused at boot
    /// unless the manifest allows them). Must be called while the process is single-threaded.
    pub fn prepare(path: &Path, host_args: &[String]) -> Result<PreparedProgram, ProgramError> {
        let signed = SignedManifest::load(path).map_err(|source| ProgramError::Manifest {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        let layout = signed.manifest;
        let program = match layout.workload() {
            Some(Workload::Program(p)) => p.as_str().to_owned(),
            other => {
                return Err(ProgramError::NotAProgram(
                    other.map(|w| w.name().to_owned()).unwrap_or_default(),
                ))
            }
        };
        let shared = Arc::new(Shared::default());
        let mut sandbox = ward_exec::Sandbox::new(&program);
        // As in Gramine, loader.argv[0] is the program's argv[0] (its path when absent).
        if let Some(arg0) = layout.loader.argv.first() {
            sandbox = sandbox.arg0(arg0);
        }
        let mut sandbox = sandbox
            .args(layout.loader.argv.iter().skip(1).cloned())
            .args(host_args.iter().cloned())
            .cwd(layout.fs.start_dir.as_ref().map_or("/", |d| d.as_str()));
        // A mount is the sandbox's own (a FUSE view, or a kernel tmpfs) unless a view above it
        // serves it: the Vfs resolves nested mounts itself, and nothing may be mounted inside a
        // FUSE view. A mount under a tmpfs (a venv in /tmp) is mounted on top of it. Parents
        // first.
        if layout.host_network() {
            tracing::warn!(
                "INSECURE: the manifest gives the program the host's network ([network] host = \
                 true); ward does not protect what it sends or receives"
            );
            sandbox = sandbox.network(ward_exec::Network::Host);
        }
        // Gramine's attestation files, answered by the booted workload's attester.
        sandbox = sandbox.dev_view(
            "attestation",
            AttestationView::new(shared.ctx.clone()),
            AttestationView::options(),
        );
        let mounts = &layout.fs.mounts;
        let mut top: Vec<_> = mounts
            .iter()
            .filter(|m| {
                !mounts.iter().any(|o| {
                    o.path != m.path && o.path.contains(&m.path) && o.kind != MountType::Tmpfs
                })
            })
            .collect();
        top.sort_by_key(|m| m.path.as_str().matches('/').count());
        for m in &top {
            sandbox = match m.kind {
                MountType::Tmpfs => sandbox.tmpfs(m.path.as_str(), TMPFS_BYTES),
                MountType::Chroot | MountType::Encrypted => sandbox.view(
                    m.path.as_str(),
                    MountView {
                        prefix: m.path.as_str().to_owned(),
                        shared: shared.clone(),
                    },
                    ViewOptions {
                        // The Vfs decides what may be written (allowed files, encrypted mounts).
                        read_only: false,
                        ttl: Duration::from_secs(60),
                        negative_ttl: Duration::from_secs(60),
                        // Code is mapped and touched sparsely: a small read-around keeps the
                        // chunks verified close to the pages used. Data is read in sequence.
                        read_ahead_kb: Some(if m.kind == MountType::Chroot {
                            128
                        } else {
                            1024
                        }),
                        // Nothing happens at close (new versions commit at exit): no flushes.
                        flush_on_close: false,
                        ..ViewOptions::default()
                    },
                ),
            };
        }
        // A merged /usr: the host's /bin, /lib, /lib64, /sbin are links into it.
        if top.iter().any(|m| m.path.as_str() == "/usr") {
            for link in ["bin", "lib", "lib64", "sbin"] {
                let host = Path::new("/").join(link);
                let covered = top
                    .iter()
                    .any(|m| Path::new(m.path.as_str()).starts_with(&host));
                if let (false, Ok(target)) = (covered, std::fs::read_link(&host)) {
                    if target.starts_with("usr") || target.starts_with("/usr") {
                        sandbox = sandbox.symlink(&host, target);
                    }
                }
            }
        }
        let prepared = sandbox.prepare().map_err(ProgramError::Sandbox)?;
        Ok(PreparedProgram {
            prepared,
            shared,
            layout,
            path: path.to_owned(),
        })
    }

    /// Boots the workload (verifies the manifest, attests, fetches keys: threads are fine
    /// now), checks it is the manifest laid out, and starts the program with the manifest's
    /// environment.
    pub fn start(self, options: BootOptions) -> Result<RunningProgram, ProgramError> {
        let ctx = boot(&self.path, options).map_err(|e| ProgramError::Boot(Box::new(e)))?;
        if ctx.manifest.manifest != self.layout {
            return Err(ProgramError::ManifestChanged);
        }
        let ctx = Arc::new(ctx);
        let _ = self.shared.ctx.set(ctx.clone());
        let running = self
            .prepared
            .start_with_env(ctx.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(ProgramError::Sandbox)?;
        Ok(RunningProgram {
            running,
            shared: self.shared,
            ctx,
        })
    }
}

/// A program running confined.
pub struct RunningProgram {
    running: ward_exec::Running,
    shared: Arc<Shared>,
    ctx: Arc<Context>,
}

impl std::fmt::Debug for RunningProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningProgram").finish_non_exhaustive()
    }
}

impl ProgramOutcome {
    /// `report` (made before the program ended) completed with this outcome, after `elapsed`.
    pub fn report(&self, mut report: RunReport, elapsed: Duration) -> RunReport {
        report.exit_code = Some(self.code);
        report.seconds = elapsed.as_secs_f64();
        report.files = FileCounts {
            committed: self.committed as u64,
            discarded: Some(self.discarded as u64),
            ..FileCounts::from_stats(&self.stats)
        };
        report
    }
}

impl RunningProgram {
    /// The booted context (manifest, timings).
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Waits for the program; on exit 0 commits every file it wrote, otherwise discards them.
    pub fn wait(self) -> Result<ProgramOutcome, ProgramError> {
        let status = self.running.wait().map_err(ProgramError::Wait)?;
        let code = status
            .code()
            .or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                status.signal().map(|s| 128 + s)
            })
            .unwrap_or(1);
        let pending = std::mem::take(&mut *self.shared.pending.lock().map_err(|_| {
            ProgramError::Wait(ward_exec::ExecError::Invalid(
                "the output list was poisoned".into(),
            ))
        })?);
        // Taken out of their handles: a FUSE handle still held somewhere can no longer touch
        // a version being committed or discarded.
        let pending: Vec<(String, Option<VfsWriter>)> = pending
            .into_iter()
            .map(|(path, v)| {
                let writer = v.lock().ok().and_then(|mut w| w.take());
                (path, writer)
            })
            .collect();
        let mut outcome = ProgramOutcome {
            code,
            committed: 0,
            discarded: 0,
            stats: self.ctx.vfs.stats(),
            outputs: Vec::new(),
        };
        if code == 0 {
            for (path, writer) in pending {
                let Some(writer) = writer else {
                    let source = VfsError::WriteFailed { path: path.clone() };
                    return Err(ProgramError::Commit { path, source });
                };
                if writer.is_unchanged_copy() {
                    // Opened for writing, never written: the file is already what it holds.
                    continue;
                }
                writer
                    .commit()
                    .map_err(|source| ProgramError::Commit { path, source })?;
                outcome.committed += 1;
            }
        } else {
            // Dropping an uncommitted writer removes its temporary; old files stay.
            outcome.discarded = pending.len();
        }
        outcome.stats = self.ctx.vfs.stats();
        outcome.outputs = self.ctx.vfs.committed_outputs();
        Ok(outcome)
    }
}
