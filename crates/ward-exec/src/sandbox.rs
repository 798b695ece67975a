//! The [`Sandbox`] builder and the supervisor's side of a run: [`Prepared`], [`Running`].

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Component, Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe2, Pid};
use seccompiler::BpfProgram;

use crate::child::{self, Frame};
use crate::error::ExecError;
use crate::filter::{self, LandlockStatus};
use crate::view::{View, ViewOptions, ViewSession};

/// Whether the program has a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Network {
    /// A new, empty network namespace, and every socket family but `AF_UNIX` refused
    /// (`socket()` fails with `EACCES`).
    None,
    /// The host's network namespace, sockets unrestricted.
    Host,
}

/// One mount of the sandbox's root, made in the order given (mount `/tmp` before binding
/// anything under it). Targets are absolute paths inside the sandbox; missing directories are
/// created on the way.
#[non_exhaustive]
pub enum Mount {
    /// A new tmpfs of at most `size_bytes` (never swapped where the kernel can promise it),
    /// writable by everyone with the sticky bit, like `/tmp`.
    Tmpfs {
        /// Where, inside the sandbox.
        target: PathBuf,
        /// Its size limit in bytes.
        size_bytes: u64,
    },
    /// A host file or directory bound into the sandbox (not recursively: mounts beneath
    /// `source` are not carried along), always `nosuid` and `nodev`.
    Bind {
        /// The host path.
        source: PathBuf,
        /// Where, inside the sandbox.
        target: PathBuf,
        /// Whether the program may write through it.
        read_only: bool,
    },
    /// A symbolic link in the root (`/bin` → `usr/bin` on a merged-/usr system).
    Symlink {
        /// Where, inside the sandbox.
        target: PathBuf,
        /// What the link points to (relative or absolute, inside the sandbox).
        points_to: PathBuf,
    },
    /// A [`View`] served over FUSE by the supervisor. Nothing may be mounted beneath a view.
    View {
        /// Where, inside the sandbox.
        target: PathBuf,
        /// What the program sees there.
        view: Box<dyn View>,
        /// How it is mounted and cached.
        options: ViewOptions,
    },
}

impl Mount {
    /// The mount's target inside the sandbox.
    pub fn target(&self) -> &Path {
        match self {
            Mount::Tmpfs { target, .. }
            | Mount::Bind { target, .. }
            | Mount::Symlink { target, .. }
            | Mount::View { target, .. } => target,
        }
    }
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mount::Tmpfs { target, size_bytes } => f
                .debug_struct("Tmpfs")
                .field("target", target)
                .field("size_bytes", size_bytes)
                .finish(),
            Mount::Bind {
                source,
                target,
                read_only,
            } => f
                .debug_struct("Bind")
                .field("source", source)
                .field("target", target)
                .field("read_only", read_only)
                .finish(),
            Mount::Symlink { target, points_to } => f
                .debug_struct("Symlink")
                .field("target", target)
                .field("points_to", points_to)
                .finish(),
            Mount::View {
                target, options, ..
            } => f
                .debug_struct("View")
                .field("target", target)
                .field("options", options)
                .finish_non_exhaustive(),
        }
    }
}

/// A view at `/dev/NAME`, checked when the sandbox is prepared.
struct DevView {
    name: String,
    view: Box<dyn View>,
    options: ViewOptions,
}

impl std::fmt::Debug for DevView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevView")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A program to run confined, and the view it gets. Built with chained calls, then
/// [`Sandbox::run`], [`Sandbox::spawn`] or [`Sandbox::prepare`].
///
/// ```no_run
/// # fn main() -> Result<(), ward_exec::ExecError> {
/// use ward_exec::{MemView, Sandbox, ViewOptions};
/// let view = MemView::new().file("/input.txt", "hello", 0o644);
/// let status = ward_exec::Sandbox::new("/bin/sh")
///     .arg("-c")
///     .arg("cat /data/input.txt > /tmp/copy")
///     .bind("/usr", "/usr", true)
///     .bind("/bin", "/bin", true)
///     .bind("/lib", "/lib", true)
///     .bind("/lib64", "/lib64", true)
///     .tmpfs("/tmp", 16 << 20)
///     .view("/data", view, ViewOptions::default())
///     .run()?;
/// assert!(status.success());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Sandbox {
    program: PathBuf,
    arg0: Option<OsString>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: PathBuf,
    uid: u32,
    gid: u32,
    network: Network,
    hostname: String,
    mounts: Vec<Mount>,
    /// Views under `/dev` ([`Sandbox::dev_view`]).
    dev_views: Vec<DevView>,
    root_size_bytes: u64,
    shm_size_bytes: u64,
    start_timeout: Option<Duration>,
    stdio: [Option<OwnedFd>; 3],
}

/// The uid and gid a program runs as unless told otherwise: `nobody`/`nogroup`.
pub const NOBODY: u32 = 65534;

impl Sandbox {
    /// A sandbox that will run `program` (an absolute path inside the sandbox, `argv[0]`),
    /// with an empty environment, in `/`, as uid and gid 65534, without network, and with
    /// nothing mounted but `/dev` and `/proc`.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Sandbox {
            program: program.into(),
            arg0: None,
            args: Vec::new(),
            env: Vec::new(),
            cwd: PathBuf::from("/"),
            uid: NOBODY,
            gid: NOBODY,
            network: Network::None,
            hostname: "ward".to_string(),
            mounts: Vec::new(),
            dev_views: Vec::new(),
            root_size_bytes: 1 << 20,
            shm_size_bytes: 256 << 20,
            start_timeout: None,
            stdio: [None, None, None],
        }
    }

    /// Sets `argv[0]` (default: the program's path). Python, for one, finds a venv from it.
    pub fn arg0(mut self, arg0: impl Into<OsString>) -> Self {
        self.arg0 = Some(arg0.into());
        self
    }

    /// Appends one argument (after `argv[0]`).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets one environment variable (the environment starts empty).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The working directory inside the sandbox.
    pub fn cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = cwd.into();
        self
    }

    /// The unprivileged uid and gid to run as (not 0).
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Whether the program gets a network.
    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// The host name inside the sandbox (its own UTS namespace), `ward` unless told otherwise.
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.hostname = name.into();
        self
    }

    /// The size of `/dev/shm` (a tmpfs), 256 MiB unless told otherwise.
    pub fn shm_size(mut self, bytes: u64) -> Self {
        self.shm_size_bytes = bytes;
        self
    }

    /// How long [`Prepared::start`] may wait for the program's `execve` (building the root,
    /// the views' first answers, loading the entrypoint) before it kills the sandbox and
    /// fails with [`ExecError::StartTimeout`]. Unbounded unless set.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = Some(timeout);
        self
    }

    /// Adds a mount (after the ones added before).
    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// Adds a [`Mount::Tmpfs`].
    pub fn tmpfs(self, target: impl Into<PathBuf>, size_bytes: u64) -> Self {
        self.mount(Mount::Tmpfs {
            target: target.into(),
            size_bytes,
        })
    }

    /// Adds a [`Mount::Bind`].
    pub fn bind(
        self,
        source: impl Into<PathBuf>,
        target: impl Into<PathBuf>,
        read_only: bool,
    ) -> Self {
        self.mount(Mount::Bind {
            source: source.into(),
            target: target.into(),
            read_only,
        })
    }

    /// Adds a [`Mount::Symlink`].
    pub fn symlink(self, target: impl Into<PathBuf>, points_to: impl Into<PathBuf>) -> Self {
        self.mount(Mount::Symlink {
            target: target.into(),
            points_to: points_to.into(),
        })
    }

    /// Adds a [`Mount::View`].
    pub fn view(self, target: impl Into<PathBuf>, view: impl View, options: ViewOptions) -> Self {
        self.mount(Mount::View {
            target: target.into(),
            view: Box::new(view),
            options,
        })
    }

    /// Serves `view` at `/dev/NAME` (`attestation` for `/dev/attestation`): the one way to add
    /// to the sandbox's own `/dev`, whose device nodes are fixed. `NAME` is one path component
    /// and not one of the sandbox's own entries (`null`, `shm`, `fd`, …); the view is mounted
    /// `nosuid`, `nodev` (and `noexec` as the rest of `/dev`), before the caller's mounts.
    pub fn dev_view(
        mut self,
        name: impl Into<String>,
        view: impl View,
        options: ViewOptions,
    ) -> Self {
        self.dev_views.push(DevView {
            name: name.into(),
            view: Box::new(view),
            options,
        });
        self
    }

    /// The program's standard input (inherited from the caller unless set).
    pub fn stdin(mut self, fd: impl Into<OwnedFd>) -> Self {
        self.stdio[0] = Some(fd.into());
        self
    }

    /// The program's standard output (inherited from the caller unless set).
    pub fn stdout(mut self, fd: impl Into<OwnedFd>) -> Self {
        self.stdio[1] = Some(fd.into());
        self
    }

    /// The program's standard error (inherited from the caller unless set).
    pub fn stderr(mut self, fd: impl Into<OwnedFd>) -> Self {
        self.stdio[2] = Some(fd.into());
        self
    }

    /// Prepares, starts and waits for the program; its exit status is the result (a program
    /// killed by signal N exits with 128 + N, as from a shell). Must be called while the
    /// process is single-threaded (see [`Sandbox::prepare`]).
    pub fn run(self) -> Result<ExitStatus, ExecError> {
        self.spawn()?.wait()
    }

    /// Prepares and starts the program. See [`Sandbox::prepare`].
    pub fn spawn(self) -> Result<Running, ExecError> {
        self.prepare()?.start()
    }

    /// Checks the description, opens `/dev/fuse` for each view, and forks the zygote, which
    /// waits for [`Prepared::start`]. Marks the caller non-dumpable (`PR_SET_DUMPABLE=0`).
    ///
    /// The zygote and the sandbox's init are copies of the caller's memory as it is now: they
    /// are root, non-dumpable and out of the program's reach (other uid, hidden in `/proc`,
    /// ptrace refused), but a secret loaded before `prepare` also lives in them until the run
    /// ends. Prepare first where that matters.
    ///
    /// Must be called while the process is single-threaded (fails with
    /// [`ExecError::Threaded`] otherwise), from the thread that will live as long as the
    /// sandbox (the zygote dies with that thread). Between `prepare` and `start` the caller may
    /// start threads again (for instance to decrypt files for the views): the FUSE servers
    /// themselves start in [`Prepared::start`], after the fork.
    pub fn prepare(mut self) -> Result<Prepared, ExecError> {
        let uid = nix::unistd::geteuid();
        if !uid.is_root() {
            return Err(ExecError::NotRoot { uid: uid.as_raw() });
        }
        let plan = self.plan()?;
        // A thread that was just joined may still be counted for a moment (the kernel
        // releases it after waking its joiner): look again for up to 50 ms.
        let mut threads = thread_count()?;
        for _ in 0..50 {
            if threads == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            threads = thread_count()?;
        }
        if threads != 1 {
            return Err(ExecError::Threaded {
                threads,
                others: other_thread_names(),
            });
        }
        nix::sys::prctl::set_dumpable(false)
            .map_err(|e| ExecError::step("making the supervisor non-dumpable", e))?;
        let (plan, views) = plan;
        let staging = Staging::create()?;
        let (go_read, go_write) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| ExecError::step("creating a pipe", e))?;
        let (report_read, report_write) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| ExecError::step("creating a pipe", e))?;
        let (zygote, go_write, report_read) = child::fork_zygote(
            plan,
            &staging.path,
            child::Pipes {
                go_read,
                go_write,
                report_read,
                report_write,
            },
        )?;
        Ok(Prepared {
            zygote: Some(zygote),
            go: Some(File::from(go_write)),
            report: File::from(report_read),
            views,
            staging: Some(staging),
            program: self.program,
            start_timeout: self.start_timeout,
        })
    }

    /// Validates the description and turns it into what the sandbox's processes need.
    fn plan(&mut self) -> Result<(child::Plan, Vec<PendingView>), ExecError> {
        check_path("the program", &self.program)?;
        check_path("the working directory", &self.cwd)?;
        if self.uid == 0 || self.gid == 0 {
            return Err(ExecError::Invalid(
                "the program must run as an unprivileged uid and gid, not 0".to_string(),
            ));
        }
        let mut mounts = Vec::new();
        let mut views = Vec::new();
        let mut writable = vec![PathBuf::from("/dev/shm")];
        let mut view_targets: Vec<PathBuf> = Vec::new();
        for DevView {
            name,
            view,
            options,
        } in std::mem::take(&mut self.dev_views)
        {
            let reserved = child::DEV_ENTRIES.contains(&name.as_str());
            if reserved
                || name.is_empty()
                || name == "."
                || name == ".."
                || name.contains(['/', '\0'])
            {
                return Err(ExecError::Invalid(format!(
                    "/dev/{name}: a view in /dev needs one new name, not one of the sandbox's \
                     own entries ({})",
                    child::DEV_ENTRIES.join(", ")
                )));
            }
            let target = Path::new("/dev").join(&name);
            if view_targets.contains(&target) {
                return Err(ExecError::Invalid(format!(
                    "{} is mounted twice",
                    target.display()
                )));
            }
            let mut roots = Roots {
                mounts: &mut mounts,
                views: &mut views,
                writable: &mut writable,
                view_targets: &mut view_targets,
            };
            roots.view(target, view, options)?;
        }
        for mount in std::mem::take(&mut self.mounts) {
            let target = mount.target().to_path_buf();
            check_path("a mount target", &target)?;
            if target == Path::new("/") {
                return Err(ExecError::Invalid(
                    "nothing may be mounted over /".to_string(),
                ));
            }
            if target.starts_with("/dev") || target.starts_with("/proc") {
                return Err(ExecError::Invalid(format!(
                    "{} is under /dev or /proc, which the sandbox makes itself",
                    target.display()
                )));
            }
            if let Some(view) = view_targets.iter().find(|v| target.starts_with(v)) {
                return Err(ExecError::Invalid(format!(
                    "{} is beneath the view at {}: nothing may be mounted inside a view",
                    target.display(),
                    view.display()
                )));
            }
            match mount {
                Mount::Tmpfs { target, size_bytes } => {
                    writable.push(target.clone());
                    mounts.push(child::RootMount::Tmpfs { target, size_bytes });
                }
                Mount::Bind {
                    source,
                    target,
                    read_only,
                } => {
                    if !source.is_absolute() {
                        return Err(ExecError::Invalid(format!(
                            "the bind source {} is not absolute",
                            source.display()
                        )));
                    }
                    if !read_only {
                        writable.push(target.clone());
                    }
                    mounts.push(child::RootMount::Bind {
                        source,
                        target,
                        read_only,
                    });
                }
                Mount::Symlink { target, points_to } => {
                    mounts.push(child::RootMount::Symlink { target, points_to });
                }
                Mount::View {
                    target,
                    view,
                    options,
                } => {
                    let mut roots = Roots {
                        mounts: &mut mounts,
                        views: &mut views,
                        writable: &mut writable,
                        view_targets: &mut view_targets,
                    };
                    roots.view(target, view, options)?;
                }
            }
        }
        let cstring = |what: &str, bytes: &[u8]| {
            CString::new(bytes)
                .map_err(|_| ExecError::Invalid(format!("{what} contains a NUL byte")))
        };
        let program = cstring("the program", self.program.as_os_str().as_bytes())?;
        let mut argv = vec![match &self.arg0 {
            Some(arg0) => cstring("argv[0]", arg0.as_bytes())?,
            None => program.clone(),
        }];
        for arg in &self.args {
            argv.push(cstring("an argument", arg.as_bytes())?);
        }
        let mut env = Vec::new();
        for (key, value) in &self.env {
            if key.is_empty() || key.as_bytes().contains(&b'=') {
                return Err(ExecError::Invalid(format!(
                    "bad environment variable name {key:?}"
                )));
            }
            let mut entry = key.clone();
            entry.push("=");
            entry.push(value);
            env.push(cstring("an environment variable", entry.as_bytes())?);
        }
        let deny_network = self.network == Network::None;
        let filters: Vec<BpfProgram> = filter::seccomp_filters(deny_network)?;
        let plan = child::Plan {
            program,
            argv,
            env,
            cwd: self.cwd.clone(),
            uid: self.uid,
            gid: self.gid,
            new_network: deny_network,
            hostname: self.hostname.clone(),
            mounts,
            root_size_bytes: self.root_size_bytes,
            shm_size_bytes: self.shm_size_bytes,
            writable,
            filters,
            stdio: std::mem::take(&mut self.stdio),
        };
        Ok((plan, views))
    }
}

/// A `/dev/fuse` descriptor for one view (close-on-exec: the sandbox mounts it by number
/// before the program's `execve`).
fn open_fuse() -> Result<OwnedFd, ExecError> {
    nix::fcntl::open(
        "/dev/fuse",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|source| ExecError::NoFuse { source })
}

fn check_path(what: &str, path: &Path) -> Result<(), ExecError> {
    let clean = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if clean && path.to_str().is_some() {
        Ok(())
    } else {
        Err(ExecError::Invalid(format!(
            "{what} {} must be an absolute UTF-8 path without . or ..",
            path.display()
        )))
    }
}

/// The names of this process's threads other than the calling one, best effort.
fn other_thread_names() -> Vec<String> {
    let me = nix::unistd::gettid().as_raw().to_string();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter(|t| t.file_name().to_str() != Some(me.as_str()))
        .map(|t| match std::fs::read_to_string(t.path().join("comm")) {
            Ok(name) => format!("{:?}", name.trim_end()),
            Err(_) => format!("task {}", t.file_name().to_string_lossy()),
        })
        .collect()
}

fn thread_count() -> Result<usize, ExecError> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| {
        ExecError::step(
            "reading /proc/self/status",
            Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| {
            ExecError::step(
                "reading the thread count in /proc/self/status",
                Errno::EINVAL,
            )
        })
}

/// A view waiting for its sandbox to mount it.
struct PendingView {
    view: Box<dyn View>,
    options: ViewOptions,
    fd: OwnedFd,
}

/// What `plan` collects while it lays out the root.
struct Roots<'a> {
    mounts: &'a mut Vec<child::RootMount>,
    views: &'a mut Vec<PendingView>,
    writable: &'a mut Vec<PathBuf>,
    view_targets: &'a mut Vec<PathBuf>,
}

impl Roots<'_> {
    /// A FUSE view at `target`: a `/dev/fuse` descriptor for the init to mount, served later.
    fn view(
        &mut self,
        target: PathBuf,
        view: Box<dyn View>,
        options: ViewOptions,
    ) -> Result<(), ExecError> {
        let fuse = open_fuse()?;
        if !options.read_only {
            self.writable.push(target.clone());
        }
        self.view_targets.push(target.clone());
        self.mounts.push(child::RootMount::Fuse {
            target,
            fd: fuse.as_raw_fd(),
            read_only: options.read_only,
        });
        self.views.push(PendingView {
            view,
            options,
            fd: fuse,
        });
        Ok(())
    }
}

/// The empty host directory on which the sandbox's root is built (inside the sandbox's own
/// mount namespace, so the host sees it empty). Removed when the run is over.
#[derive(Debug)]
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn create() -> Result<Self, ExecError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(".ward-exec-{}-{n}", std::process::id()));
        let mut builder = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).map_err(|e| {
            ExecError::step(
                format!("creating {}", path.display()),
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })?;
        Ok(Staging { path })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// A sandbox whose zygote is forked and waiting. Dropping it without [`Prepared::start`]
/// ends the zygote.
pub struct Prepared {
    zygote: Option<Pid>,
    go: Option<File>,
    report: File,
    views: Vec<PendingView>,
    staging: Option<Staging>,
    program: PathBuf,
    start_timeout: Option<Duration>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("zygote", &self.zygote)
            .field("views", &self.views.len())
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// The zygote's pid (in the caller's PID namespace).
    pub fn pid(&self) -> Option<u32> {
        self.zygote.map(|p| p.as_raw() as u32)
    }

    /// Tells the zygote to build the sandbox and start the program, serves the views once
    /// they are mounted, and returns when the program's `execve` has succeeded, or with the
    /// error that happened before.
    pub fn start(self) -> Result<Running, ExecError> {
        self.start_inner(&[child::GO])
    }

    /// Like [`Prepared::start`], adding `env` (`NAME`, `VALUE` pairs) to the program's
    /// environment: values known only after `prepare` (secrets fetched once the process may
    /// have threads). The bytes sent are wiped from the supervisor's memory afterwards.
    pub fn start_with_env<'a>(
        self,
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Running, ExecError> {
        let mut message = vec![child::GO_WITH_ENV, 0, 0, 0, 0];
        for (name, value) in env {
            if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
                message.fill(0);
                return Err(ExecError::Invalid(format!(
                    "environment variable {name:?}: a name is non-empty without '=' or NUL, a \
                     value has no NUL"
                )));
            }
            message.extend_from_slice(name.as_bytes());
            message.push(b'=');
            message.extend_from_slice(value.as_bytes());
            message.push(0);
        }
        let len = message.len() - 5;
        if len > child::MAX_LATE_ENV {
            message.fill(0);
            return Err(ExecError::Invalid(format!(
                "the environment is {len} bytes; at most {} can be added at start",
                child::MAX_LATE_ENV
            )));
        }
        message[1..5].copy_from_slice(&(len as u32).to_le_bytes());
        let result = self.start_inner(&message);
        message.fill(0);
        std::hint::black_box(&message);
        result
    }

    fn start_inner(mut self, message: &[u8]) -> Result<Running, ExecError> {
        let mut go = self
            .go
            .take()
            .ok_or_else(|| ExecError::Invalid("the sandbox was started twice".into()))?;
        go.write_all(message)
            .map_err(|e| ExecError::step("starting the zygote", io_errno(&e)))?;
        drop(go);
        let mut sessions = Vec::new();
        let mut mounted = false;
        let mut landlock = None;
        let deadline = self.start_timeout.map(|t| (Instant::now() + t, t));
        let outcome = loop {
            if let Some((deadline, timeout)) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                let left = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
                let mut fds = [PollFd::new(self.report.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, left) {
                    Ok(0) => break Err(ExecError::StartTimeout(timeout)),
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => break Err(ExecError::step("waiting for the sandbox's report", e)),
                }
            }
            match child::read_frame(&mut self.report) {
                Ok(Some(Frame::Mounted { devices })) => {
                    mounted = true;
                    if let Err(e) = self.serve(&mut sessions, &devices) {
                        break Err(ExecError::step("starting the FUSE server", io_errno(&e)));
                    }
                }
                Ok(Some(Frame::Failed { step, errno })) => break Err(ExecError::step(step, errno)),
                Ok(Some(Frame::Refused { step, reason })) => {
                    break Err(ExecError::Refused { step, reason })
                }
                Ok(Some(Frame::Restricted { landlock: status })) => landlock = Some(status),
                Ok(Some(Frame::Exec { errno })) => {
                    break Err(ExecError::Entrypoint {
                        path: self.program.clone(),
                        source: errno,
                    })
                }
                Ok(None) if mounted => break Ok(()),
                Ok(None) => break Err(ExecError::Vanished("before building its root".to_string())),
                Err(e) => {
                    break Err(ExecError::step(
                        "reading the sandbox's report",
                        io_errno(&e),
                    ))
                }
            }
        };
        let mut running = Running {
            zygote: self.zygote.take(),
            landlock,
            status: None,
            sessions,
            staging: self.staging.take(),
        };
        match outcome {
            Ok(()) => Ok(running),
            Err(e) => {
                running.finish();
                Err(e)
            }
        }
    }

    fn serve(
        &mut self,
        sessions: &mut Vec<ViewSession>,
        devices: &[String],
    ) -> std::io::Result<()> {
        for (i, pending) in std::mem::take(&mut self.views).into_iter().enumerate() {
            let device = devices.get(i).filter(|d| !d.is_empty()).cloned();
            sessions.push(ViewSession::serve_fd(
                pending.view,
                pending.options,
                pending.fd,
                device,
            )?);
        }
        Ok(())
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // Closing the go pipe without a byte tells the zygote to exit.
        self.go.take();
        if let Some(pid) = self.zygote.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// A program running in its sandbox.
#[derive(Debug)]
pub struct Running {
    zygote: Option<Pid>,
    landlock: Option<LandlockStatus>,
    status: Option<ExitStatus>,
    sessions: Vec<ViewSession>,
    staging: Option<Staging>,
}

impl Running {
    /// The zygote's pid (in the caller's PID namespace), the process that signals go to.
    pub fn pid(&self) -> Option<u32> {
        self.zygote.map(|p| p.as_raw() as u32)
    }

    /// How much of Landlock the kernel enforces on the program (as reported by the program's
    /// process just before `execve`).
    pub fn landlock(&self) -> Option<LandlockStatus> {
        self.landlock
    }

    /// Sends `signal` to the sandbox: its init forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT,
    /// SIGUSR1 and SIGUSR2 to the program. SIGKILL ends the whole sandbox at once.
    pub fn signal(&self, signal: Signal) -> Result<(), ExecError> {
        match self.zygote {
            Some(pid) => kill(pid, signal)
                .map_err(|e| ExecError::step(format!("sending {signal} to the sandbox"), e)),
            None => Ok(()),
        }
    }

    /// Ends the sandbox and everything in it now (SIGKILL).
    pub fn kill(&self) -> Result<(), ExecError> {
        self.signal(Signal::SIGKILL)
    }

    /// Waits for the program to end and returns its exit status (128 + N for a program killed
    /// by signal N), after the views have stopped being served.
    pub fn wait(mut self) -> Result<ExitStatus, ExecError> {
        self.wait_inner(None)?
            .ok_or_else(|| ExecError::Vanished("the sandbox was not waited for".to_string()))
    }

    /// Like [`Running::wait`], but gives up after `timeout` and returns `None` (the sandbox
    /// keeps running: [`Running::kill`] it, or drop it, which kills it).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, ExecError> {
        self.wait_inner(Some(timeout))
    }

    fn wait_inner(&mut self, timeout: Option<Duration>) -> Result<Option<ExitStatus>, ExecError> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let Some(pid) = self.zygote else {
            return Ok(self.status);
        };
        let deadline = timeout.map(|t| Instant::now() + t);
        let flags = deadline.map(|_| WaitPidFlag::WNOHANG);
        loop {
            match waitpid(pid, flags) {
                Ok(WaitStatus::StillAlive) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(None);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(status) => {
                    let status = exit_status(status);
                    self.zygote = None;
                    self.status = Some(status);
                    self.finish_views();
                    return Ok(Some(status));
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(ExecError::step("waiting for the sandbox", e)),
            }
        }
    }

    fn finish_views(&mut self) {
        for session in self.sessions.drain(..) {
            let _ = session.join();
        }
        self.staging.take();
    }

    /// Kills (if still running) and reaps the sandbox, then stops serving its views.
    fn finish(&mut self) -> Option<ExitStatus> {
        if let Some(pid) = self.zygote.take() {
            let _ = kill(pid, Signal::SIGKILL);
            if let Ok(status) = waitpid(pid, None) {
                self.status = Some(exit_status(status));
            }
        }
        self.finish_views();
        self.status
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.finish();
    }
}

fn exit_status(status: WaitStatus) -> ExitStatus {
    match status {
        WaitStatus::Exited(_, code) => ExitStatus::from_raw((code & 0xff) << 8),
        WaitStatus::Signaled(_, signal, _) => ExitStatus::from_raw(signal as i32),
        _ => ExitStatus::from_raw(0xff << 8),
    }
}
