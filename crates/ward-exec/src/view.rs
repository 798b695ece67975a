//! The FUSE adapter: a path-based [`View`] supplied by the caller, served to the kernel through
//! `fuser`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use fuser::{
    Config, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    MountOption, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, Session, SessionACL, TimeOrNow,
    WriteFlags,
};
use fuser::{InitFlags, KernelConfig};
use nix::errno::Errno;
use zeroize::Zeroizing;

/// What a path of a view is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
}

/// The attributes of a path, as the program's `stat` will see them.
///
/// Report a real `mtime`: a constant one makes Python treat every `.pyc` as stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// File, directory or symlink.
    pub kind: Kind,
    /// Size in bytes (for a symlink: the length of its target).
    pub size: u64,
    /// Permission bits (`0o644`, `0o755`, …), without the file-type bits.
    pub mode: u16,
    /// Time of last modification.
    pub mtime: SystemTime,
    /// Number of hard links (2 for an empty directory).
    pub nlink: u32,
}

impl Attr {
    /// A regular file of `size` bytes.
    pub fn file(size: u64, mode: u16, mtime: SystemTime) -> Self {
        Attr {
            kind: Kind::File,
            size,
            mode,
            mtime,
            nlink: 1,
        }
    }

    /// A directory.
    pub fn dir(mode: u16, mtime: SystemTime) -> Self {
        Attr {
            kind: Kind::Dir,
            size: 4096,
            mode,
            mtime,
            nlink: 2,
        }
    }

    /// A symbolic link whose target is `target_len` bytes long.
    pub fn symlink(target_len: u64, mtime: SystemTime) -> Self {
        Attr {
            kind: Kind::Symlink,
            size: target_len,
            mode: 0o777,
            mtime,
            nlink: 1,
        }
    }
}

/// One entry of a directory listing (without `.` and `..`, which the adapter adds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (one component, no `/`).
    pub name: String,
    /// What it is.
    pub kind: Kind,
}

/// An open file of a view. Called from the FUSE server's threads; offsets are absolute.
pub trait Handle: Send + Sync {
    /// Reads up to `size` bytes at `offset`; fewer only at the end of the file.
    fn read_at(&self, offset: u64, size: u32) -> Result<Vec<u8>, Errno>;

    /// Reads up to `out.len()` bytes at `offset` into `out`, returning how many; fewer only
    /// at the end of the file. What the server calls: `out` is a buffer each FUSE thread reuses,
    /// so a handle that fills it in place spares a fresh allocation (and its page faults) per
    /// read. The default copies from [`read_at`](Self::read_at). On error, nothing of `out`
    /// is sent.
    fn read_into(&self, offset: u64, out: &mut [u8]) -> Result<usize, Errno> {
        let size = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let data = self.read_at(offset, size)?;
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    /// Writes `data` at `offset`, returning how many bytes were written.
    fn write_at(&self, _offset: u64, _data: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }

    /// Writes `data` at the end of the file: a write through a descriptor with `O_APPEND`.
    /// `offset` is where the kernel put the end, from the size it last cached; a view that
    /// knows the file's real end should write there. Returns how many bytes were written.
    fn append(&self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.write_at(offset, data)
    }

    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, _len: u64) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    /// `fsync`/`fdatasync` of this open file.
    fn sync(&self, _datasync: bool) -> Result<(), Errno> {
        Ok(())
    }

    /// Called on each `close` of a descriptor of this open file.
    fn flush(&self) -> Result<(), Errno> {
        Ok(())
    }

    /// Called once, when the last descriptor and mapping of this open file are gone.
    fn release(&self) -> Result<(), Errno> {
        Ok(())
    }
}

/// A path-based view served over FUSE: the caller's rules are by path, so every question is
/// asked with the absolute path inside the view (`/`, `/models/a.onnx`). Answer with the
/// [`Errno`] the program should see (`ENOENT`, `EACCES`, `EROFS`, …).
///
/// The view is the access control: the mount has no `default_permissions`, so the kernel does
/// not check the reported modes against the program's uid (it still refuses writes on a
/// read-only mount and `execve` of a file without an execute bit). Every file is reported as
/// owned by root.
///
/// Never touch the view's own mount point from these methods: the FUSE server would wait for
/// itself.
pub trait View: Send + Sync + 'static {
    /// The attributes of `path`, or `ENOENT`.
    fn lookup(&self, path: &str) -> Result<Attr, Errno>;

    /// The entries of the directory `path`.
    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Errno>;

    /// The target of the symlink `path`.
    fn read_link(&self, _path: &str) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }

    /// Opens the file `path`; `flags` are the `open(2)` flags (`O_RDONLY`, `O_WRONLY`,
    /// `O_APPEND`, …, without `O_CREAT`, `O_EXCL` and `O_NOCTTY`). `O_TRUNC` is the view's to
    /// honour: the kernel then does not truncate by itself (atomic `O_TRUNC`).
    fn open(&self, path: &str, flags: i32) -> Result<Box<dyn Handle>, Errno>;

    /// Creates and opens the new file `path` with permission bits `mode`.
    fn create(
        &self,
        _path: &str,
        _mode: u16,
        _flags: i32,
    ) -> Result<(Attr, Box<dyn Handle>), Errno> {
        Err(Errno::EROFS)
    }

    /// Creates the directory `path` with permission bits `mode`.
    fn mkdir(&self, _path: &str, _mode: u16) -> Result<Attr, Errno> {
        Err(Errno::EROFS)
    }

    /// Removes `path`: a file or symlink (`unlink`), or an empty directory when `dir`
    /// (`rmdir`).
    fn remove(&self, _path: &str, _dir: bool) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    /// Renames `from` to `to`, replacing `to` if it exists (as `rename(2)` does).
    fn rename(&self, _from: &str, _to: &str) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }
}

/// How a view is mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewOptions {
    /// Mount the view read-only (the kernel refuses writes before asking the view).
    pub read_only: bool,
    /// How long the kernel may cache a path's existence and attributes.
    pub ttl: Duration,
    /// How long the kernel may cache that a path does not exist (Python probes thousands).
    pub negative_ttl: Duration,
    /// Keep the kernel's page cache of a file across opens (right when the view's files change
    /// only through this mount).
    pub keep_cache: bool,
    /// Bypass the kernel's page cache: every `read` and `write` reaches the view as the
    /// program made it, and reads are not cut at the size `stat` reports. Right for files whose
    /// content is made when read (pseudo-files), wrong for ordinary files (slower, and no
    /// shared `mmap`).
    pub direct_io: bool,
    /// Number of FUSE server threads.
    pub threads: usize,
    /// Ask the view on every `close` ([`Handle::flush`]). When false the first flush is
    /// answered `ENOSYS`, after which the kernel sends no more for the mount: one round trip
    /// less per file a program opens (Python opens hundreds at start-up).
    pub flush_on_close: bool,
    /// The kernel's read-ahead for the view, in KiB (its default, 128, is one FUSE request at
    /// a time per file; 1024 roughly doubles cold sequential reads). `None` keeps the default.
    pub read_ahead_kb: Option<u32>,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            read_only: true,
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(60),
            keep_cache: true,
            direct_io: false,
            threads: 2,
            read_ahead_kb: Some(1024),
            flush_on_close: true,
        }
    }
}

/// The inode table: FUSE speaks in inode numbers, views in paths. Entries are never forgotten
/// (the table grows with the distinct paths looked up during a run).
struct Inodes {
    paths: HashMap<u64, Arc<str>>,
    inos: HashMap<Arc<str>, u64>,
    next: u64,
}

const ROOT_INO: u64 = 1;

impl Inodes {
    fn new() -> Self {
        let root: Arc<str> = Arc::from("/");
        Inodes {
            paths: HashMap::from([(ROOT_INO, root.clone())]),
            inos: HashMap::from([(root, ROOT_INO)]),
            next: ROOT_INO + 1,
        }
    }

    /// Forgets `path` and everything beneath it (after an unlink, rmdir, or before a rename
    /// replaces it).
    fn forget(&mut self, path: &str) {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let gone: Vec<Arc<str>> = self
            .inos
            .keys()
            .filter(|p| p.as_ref() == path || p.starts_with(&prefix))
            .cloned()
            .collect();
        for p in gone {
            if let Some(ino) = self.inos.remove(&p) {
                self.paths.remove(&ino);
            }
        }
    }

    /// Moves `from` and everything beneath it to `to`, keeping their inode numbers.
    fn rename(&mut self, from: &str, to: &str) {
        self.forget(to);
        let prefix = format!("{}/", from.trim_end_matches('/'));
        let moved: Vec<(Arc<str>, u64)> = self
            .inos
            .iter()
            .filter(|(p, _)| p.as_ref() == from || p.starts_with(&prefix))
            .map(|(p, ino)| (p.clone(), *ino))
            .collect();
        for (old, ino) in moved {
            self.inos.remove(&old);
            let new: Arc<str> = Arc::from(format!("{to}{}", &old[from.len()..]));
            self.paths.insert(ino, new.clone());
            self.inos.insert(new, ino);
        }
    }

    fn intern(&mut self, path: &str) -> u64 {
        if let Some(ino) = self.inos.get(path) {
            return *ino;
        }
        let ino = self.next;
        self.next += 1;
        let path: Arc<str> = Arc::from(path);
        self.paths.insert(ino, path.clone());
        self.inos.insert(path, ino);
        ino
    }
}

/// An open directory: inode, type and name of each entry, `.` and `..` first.
type Listing = Arc<Vec<(u64, FileType, String)>>;

/// Declares [`Op`] and its names from one list, so the two cannot drift apart.
macro_rules! request_kinds {
    ($($op:ident => $name:literal,)*) => {
        /// The kinds of request a view answers, for [`Requests`].
        #[derive(Clone, Copy)]
        enum Op {
            $($op,)*
        }

        /// Each [`Op`]'s name, in declaration order.
        const OP_NAMES: &[&str] = &[$($name,)*];
    };
}

request_kinds! {
    Lookup => "lookup",
    Getattr => "getattr",
    Setattr => "setattr",
    Readlink => "readlink",
    Open => "open",
    Read => "read",
    Write => "write",
    Flush => "flush",
    Release => "release",
    Readdirplus => "readdirplus",
    Opendir => "opendir",
    Readdir => "readdir",
    Releasedir => "releasedir",
    Create => "create",
    Mkdir => "mkdir",
    Unlink => "unlink",
    Rmdir => "rmdir",
    Rename => "rename",
    Fsync => "fsync",
}

/// How many requests of each kind a view answered, logged (at debug level) when serving ends:
/// the first thing to look at when a program runs slower confined than natively, since each
/// request is a round trip through the kernel.
struct Requests([AtomicU64; OP_NAMES.len()]);

impl Requests {
    fn new() -> Self {
        Requests(std::array::from_fn(|_| AtomicU64::new(0)))
    }

    fn count(&self, op: Op) {
        self.0[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `N requests (lookup 3, open 2, …)`, kinds never asked left out.
    fn summary(&self) -> String {
        let counts: Vec<(&str, u64)> = OP_NAMES
            .iter()
            .zip(&self.0)
            .map(|(name, n)| (*name, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        let each: Vec<String> = counts
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        format!("{total} requests ({})", each.join(", "))
    }
}

/// Implements [`fuser::Filesystem`] over a [`View`].
struct Adapter {
    view: Box<dyn View>,
    options: ViewOptions,
    inodes: Mutex<Inodes>,
    files: Mutex<HashMap<u64, Arc<dyn Handle>>>,
    dirs: Mutex<HashMap<u64, Listing>>,
    next_fh: AtomicU64,
    requests: Requests,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in one request must not take every later request down with it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn fuse_errno(errno: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(errno as i32)
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl Adapter {
    fn new(view: Box<dyn View>, options: ViewOptions) -> Self {
        Adapter {
            view,
            options,
            inodes: Mutex::new(Inodes::new()),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            requests: Requests::new(),
        }
    }

    fn path(&self, ino: INodeNo) -> Result<Arc<str>, fuser::Errno> {
        lock(&self.inodes)
            .paths
            .get(&ino.0)
            .cloned()
            .ok_or(fuser::Errno::ESTALE)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<String, fuser::Errno> {
        let parent = self.path(parent)?;
        let name = std::str::from_utf8(name.as_bytes()).map_err(|_| fuser::Errno::ENOENT)?;
        Ok(join(&parent, name))
    }

    fn file_attr(&self, ino: u64, attr: &Attr) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: attr.size,
            blocks: attr.size.div_ceil(512),
            atime: attr.mtime,
            mtime: attr.mtime,
            ctime: attr.mtime,
            crtime: attr.mtime,
            kind: file_type(attr.kind),
            perm: attr.mode & 0o7777,
            nlink: attr.nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<dyn Handle>, fuser::Errno> {
        lock(&self.files)
            .get(&fh.0)
            .cloned()
            .ok_or(fuser::Errno::EBADF)
    }

    fn add_handle(&self, handle: Box<dyn Handle>) -> FileHandle {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.files).insert(fh, Arc::from(handle));
        FileHandle(fh)
    }

    fn open_flags(&self) -> FopenFlags {
        let mut flags = FopenFlags::empty();
        if self.options.keep_cache {
            flags |= FopenFlags::FOPEN_KEEP_CACHE;
        }
        if self.options.direct_io {
            flags |= FopenFlags::FOPEN_DIRECT_IO;
        }
        flags
    }

    fn attr_of(&self, ino: INodeNo) -> Result<FileAttr, fuser::Errno> {
        let path = self.path(ino)?;
        let attr = self.view.lookup(&path).map_err(fuse_errno)?;
        Ok(self.file_attr(ino.0, &attr))
    }
}

thread_local! {
    /// Each FUSE server thread's read buffer (up to the mount's largest read, 1 MiB).
    /// Wiped when the thread ends.
    static READ_BUFFER: std::cell::RefCell<Zeroizing<Vec<u8>>> =
        std::cell::RefCell::new(Zeroizing::new(Vec::new()));
}

impl Filesystem for Adapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // O_TRUNC is passed to the view's open, which starts the new version empty (instead of
        // copying the old one for the truncation that would follow). A kernel without it sends
        // that truncation as a setattr, which works too.
        if let Err(missing) = config.add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC) {
            tracing::debug!("the kernel lacks {missing:?}; O_TRUNC arrives as a setattr");
        }
        // A listing carries each entry's attributes: a program that lists a directory and then
        // opens files in it (Python's import system) needs no lookup round trip per file.
        if let Err(missing) = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS) {
            tracing::debug!("the kernel lacks {missing:?}; listings come without attributes");
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.requests.count(Op::Lookup);
        let path = match self.child(parent, name) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        match self.view.lookup(&path) {
            Ok(attr) => {
                let ino = lock(&self.inodes).intern(&path);
                reply.entry(
                    &self.options.ttl,
                    &self.file_attr(ino, &attr),
                    Generation(0),
                );
            }
            Err(Errno::ENOENT) => {
                // An entry with node id 0 and a TTL is how the kernel caches "does not exist".
                let none = Attr::file(0, 0, SystemTime::UNIX_EPOCH);
                reply.entry(
                    &self.options.negative_ttl,
                    &self.file_attr(0, &none),
                    Generation(0),
                );
            }
            Err(e) => reply.error(fuse_errno(e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.requests.count(Op::Getattr);
        match self.attr_of(ino) {
            Ok(attr) => reply.attr(&self.options.ttl, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.requests.count(Op::Setattr);
        // Only the size can be changed; modes, owners and times are the view's to report.
        if let Some(size) = size {
            let result = match fh {
                Some(fh) => self
                    .handle(fh)
                    .and_then(|h| h.set_len(size).map_err(fuse_errno)),
                None => self.path(ino).and_then(|path| {
                    // truncate(2) of a path: to zero is an O_TRUNC open.
                    let flags = if size == 0 {
                        libc::O_WRONLY | libc::O_TRUNC
                    } else {
                        libc::O_WRONLY
                    };
                    let handle = self.view.open(&path, flags).map_err(fuse_errno)?;
                    let result = handle.set_len(size).map_err(fuse_errno);
                    let _ = handle.release();
                    result
                }),
            };
            if let Err(e) = result {
                return reply.error(e);
            }
        }
        match self.attr_of(ino) {
            Ok(attr) => reply.attr(&self.options.ttl, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.requests.count(Op::Readlink);
        match self
            .path(ino)
            .and_then(|path| self.view.read_link(&path).map_err(fuse_errno))
        {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.requests.count(Op::Open);
        match self
            .path(ino)
            .and_then(|path| self.view.open(&path, flags.0).map_err(fuse_errno))
        {
            Ok(handle) => reply.opened(self.add_handle(handle), self.open_flags()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.requests.count(Op::Read);
        let handle = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        READ_BUFFER.with_borrow_mut(|buf| {
            // Grown once to the largest read the kernel sends, never shrunk or re-zeroed: only
            // the `n` bytes the handle wrote are sent.
            let size = size as usize;
            if buf.len() < size {
                // The old buffer is wiped as it is replaced (it held what the program read).
                *buf = Zeroizing::new(vec![0; size.max(1 << 20)]);
            }
            match handle.read_into(offset, &mut buf[..size]) {
                Ok(n) => reply.data(&buf[..n.min(size)]),
                Err(e) => reply.error(fuse_errno(e)),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.requests.count(Op::Write);
        // `flags` are the descriptor's; a write-back of cached pages carries a guessed
        // descriptor's flags and its own offset, never an append.
        let append =
            flags.0 & libc::O_APPEND != 0 && !write_flags.contains(WriteFlags::FUSE_WRITE_CACHE);
        match self.handle(fh).and_then(|h| {
            if append {
                h.append(offset, data)
            } else {
                h.write_at(offset, data)
            }
            .map_err(fuse_errno)
        }) {
            Ok(n) => reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.requests.count(Op::Flush);
        if !self.options.flush_on_close {
            return reply.error(fuser::Errno::ENOSYS);
        }
        match self.handle(fh).and_then(|h| h.flush().map_err(fuse_errno)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.requests.count(Op::Release);
        let handle = lock(&self.files).remove(&fh.0);
        match handle.map(|h| h.release()) {
            Some(Err(e)) => reply.error(fuse_errno(e)),
            _ => reply.ok(),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        self.requests.count(Op::Readdirplus);
        let Some(listing) = lock(&self.dirs).get(&fh.0).cloned() else {
            return reply.error(fuser::Errno::EBADF);
        };
        let Ok(dir) = self.path(ino) else {
            return reply.error(fuser::Errno::EBADF);
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (child, kind, name)) in listing.iter().enumerate().skip(start) {
            let path = match name.as_str() {
                "." => dir.to_string(),
                ".." => parent_of(&dir).to_string(),
                n => join(&dir, n),
            };
            // An entry the view will not describe is listed uncached (TTL 0): a later lookup
            // asks the view again and gets its answer.
            let (attr, ttl) = match self.view.lookup(&path) {
                Ok(attr) => (attr, self.options.ttl),
                Err(_) => (
                    Attr {
                        kind: match kind {
                            FileType::Directory => Kind::Dir,
                            FileType::Symlink => Kind::Symlink,
                            _ => Kind::File,
                        },
                        ..Attr::file(0, 0, SystemTime::UNIX_EPOCH)
                    },
                    Duration::ZERO,
                ),
            };
            let full = reply.add(
                INodeNo(*child),
                i as u64 + 1,
                name,
                &ttl,
                &self.file_attr(*child, &attr),
                Generation(0),
            );
            if full {
                break;
            }
        }
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.requests.count(Op::Opendir);
        let listing = self.path(ino).and_then(|path| {
            let entries = self.view.read_dir(&path).map_err(fuse_errno)?;
            let mut inodes = lock(&self.inodes);
            let parent = inodes.intern(parent_of(&path));
            let mut listing = Vec::with_capacity(entries.len() + 2);
            listing.push((ino.0, FileType::Directory, ".".to_string()));
            listing.push((parent, FileType::Directory, "..".to_string()));
            for entry in entries {
                let child = inodes.intern(&join(&path, &entry.name));
                listing.push((child, file_type(entry.kind), entry.name));
            }
            Ok(listing)
        });
        match listing {
            Ok(listing) => {
                let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
                lock(&self.dirs).insert(fh, Arc::new(listing));
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.requests.count(Op::Readdir);
        let Some(listing) = lock(&self.dirs).get(&fh.0).cloned() else {
            return reply.error(fuser::Errno::EBADF);
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (ino, kind, name)) in listing.iter().enumerate().skip(start) {
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.requests.count(Op::Releasedir);
        lock(&self.dirs).remove(&fh.0);
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        self.requests.count(Op::Create);
        let path = match self.child(parent, name) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        let mode = (mode & !umask & 0o7777) as u16;
        match self.view.create(&path, mode, flags) {
            Ok((attr, handle)) => {
                let ino = lock(&self.inodes).intern(&path);
                let fh = self.add_handle(handle);
                reply.created(
                    &self.options.ttl,
                    &self.file_attr(ino, &attr),
                    Generation(0),
                    fh,
                    self.open_flags(),
                );
            }
            Err(e) => reply.error(fuse_errno(e)),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        self.requests.count(Op::Mkdir);
        let path = match self.child(parent, name) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        match self.view.mkdir(&path, (mode & !umask & 0o7777) as u16) {
            Ok(attr) => {
                let ino = lock(&self.inodes).intern(&path);
                reply.entry(
                    &self.options.ttl,
                    &self.file_attr(ino, &attr),
                    Generation(0),
                );
            }
            Err(e) => reply.error(fuse_errno(e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.requests.count(Op::Unlink);
        self.remove(parent, name, false, reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.requests.count(Op::Rmdir);
        self.remove(parent, name, true, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.requests.count(Op::Rename);
        // RENAME_NOREPLACE, RENAME_EXCHANGE and RENAME_WHITEOUT are not offered to views.
        if !flags.is_empty() {
            return reply.error(fuser::Errno::EINVAL);
        }
        let paths = self
            .child(parent, name)
            .and_then(|from| Ok((from, self.child(newparent, newname)?)));
        let (from, to) = match paths {
            Ok(paths) => paths,
            Err(e) => return reply.error(e),
        };
        match self.view.rename(&from, &to) {
            Ok(()) => {
                lock(&self.inodes).rename(&from, &to);
                reply.ok();
            }
            Err(e) => reply.error(fuse_errno(e)),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.requests.count(Op::Fsync);
        match self
            .handle(fh)
            .and_then(|h| h.sync(datasync).map_err(fuse_errno))
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        tracing::debug!("view served {}", self.requests.summary());
    }
}

impl Adapter {
    fn remove(&self, parent: INodeNo, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        let path = match self.child(parent, name) {
            Ok(path) => path,
            Err(e) => return reply.error(e),
        };
        match self.view.remove(&path, dir) {
            Ok(()) => {
                lock(&self.inodes).forget(&path);
                reply.ok();
            }
            Err(e) => reply.error(fuse_errno(e)),
        }
    }
}

/// A FUSE view being served. Serving ends by itself when the last mount of the view is gone
/// (for a sandbox: when its mount namespace dies); [`ViewSession::join`] waits for that.
#[derive(Debug)]
pub struct ViewSession {
    threads: Vec<JoinHandle<io::Result<()>>>,
    unmount: Option<fuser::BackgroundSession>,
}

impl ViewSession {
    /// Serves `view` on an already mounted (or about to be mounted) `/dev/fuse` descriptor.
    /// `device` is the mount's `major:minor`, to set its read-ahead once the kernel knows the
    /// server (the INIT reply would otherwise cap it again).
    pub(crate) fn serve_fd(
        view: Box<dyn View>,
        options: ViewOptions,
        fd: OwnedFd,
        device: Option<String>,
    ) -> io::Result<ViewSession> {
        let config = session_config(&options);
        let read_ahead = options.read_ahead_kb.zip(device);
        let adapter = Adapter::new(view, options);
        // The handshake waits for the kernel's INIT, sent once the sandbox has mounted the
        // descriptor: run it on the server thread.
        let thread = std::thread::Builder::new()
            .name("ward-exec-fuse".to_string())
            .spawn(move || {
                let session = Session::from_fd(adapter, fd, SessionACL::All, config)?;
                if let Some((kb, device)) = read_ahead {
                    set_read_ahead(&device, kb);
                }
                session.run()
            })?;
        Ok(ViewSession {
            threads: vec![thread],
            unmount: None,
        })
    }

    /// Waits until serving ends (unmounting first if this session mounted the view itself).
    pub fn join(mut self) -> io::Result<()> {
        if let Some(session) = self.unmount.take() {
            return session.umount_and_join();
        }
        let mut result = Ok(());
        for thread in self.threads.drain(..) {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the FUSE server thread panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }
}

/// Sets the read-ahead of the backing device `major:minor` (best effort: a kernel without the
/// sysfs file keeps its default).
fn set_read_ahead(device: &str, kb: u32) {
    let path = format!("/sys/class/bdi/{device}/read_ahead_kb");
    if let Err(e) = std::fs::write(&path, kb.to_string()) {
        tracing::warn!("setting {path}: {e}");
    }
}

fn session_config(options: &ViewOptions) -> Config {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("ward-view".to_string()),
        MountOption::NoDev,
        MountOption::NoSuid,
        if options.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    config.acl = SessionACL::All;
    config.n_threads = Some(options.threads.max(1));
    config
}

/// Mounts `view` at `mountpoint` in the caller's own mount namespace and serves it on a
/// background thread, until [`ViewSession::join`] unmounts it. Meant for tests and tools;
/// a [`crate::Sandbox`] mounts its views inside the sandbox instead.
///
/// The calling process must never access `mountpoint` from the view's own methods.
pub fn mount(view: impl View, mountpoint: &Path, options: ViewOptions) -> io::Result<ViewSession> {
    let config = session_config(&options);
    let session = fuser::spawn_mount(Adapter::new(Box::new(view), options), mountpoint, &config)?;
    Ok(ViewSession {
        threads: Vec::new(),
        unmount: Some(session),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_and_split() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(parent_of("/a/b"), "/a");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/"), "/");
    }

    #[test]
    fn request_summary_names_the_kinds_asked() {
        let requests = Requests::new();
        assert_eq!(requests.summary(), "0 requests ()");
        requests.count(Op::Lookup);
        requests.count(Op::Read);
        requests.count(Op::Lookup);
        assert_eq!(requests.summary(), "3 requests (lookup 2, read 1)");
    }

    #[test]
    fn inodes_are_stable_per_path() {
        let mut inodes = Inodes::new();
        assert_eq!(inodes.intern("/"), ROOT_INO);
        let a = inodes.intern("/a");
        let b = inodes.intern("/a/b");
        assert_ne!(a, b);
        assert_eq!(inodes.intern("/a"), a);
        assert_eq!(inodes.paths[&b].as_ref(), "/a/b");

        let c = inodes.intern("/c");
        inodes.rename("/a", "/c");
        assert_eq!(inodes.intern("/c"), a);
        assert_eq!(inodes.intern("/c/b"), b);
        assert!(!inodes.paths.contains_key(&c));
        assert!(!inodes.inos.contains_key("/a/b"));
        inodes.forget("/c");
        assert!(!inodes.paths.contains_key(&a) && !inodes.paths.contains_key(&b));
        assert_eq!(inodes.paths.len(), 1);
    }
}
