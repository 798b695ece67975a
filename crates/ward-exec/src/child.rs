//! What runs after `fork`: the zygote, the sandbox's init (PID 1) and the program's process up
//! to `execve`, and the framed report they send back to the supervisor.
//!
//! Each of these processes is forked from a single-threaded parent (the supervisor checks that
//! it is single-threaded before forking the zygote), so the code here may allocate and lock as
//! usual. None of them returns: each ends with `_exit` or `execve`.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::prctl;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{
    chdir, execve, fork, getppid, pivot_root, sethostname, setresgid, setresuid, setsid,
    ForkResult, Gid, Pid, Uid,
};
use seccompiler::BpfProgram;

use crate::error::ExecError;
use crate::filter::{self, LandlockStatus};

/// A mount of the new root, as the sandbox's init makes it.
pub(crate) enum RootMount {
    Tmpfs {
        target: PathBuf,
        size_bytes: u64,
    },
    Bind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
    },
    Symlink {
        target: PathBuf,
        points_to: PathBuf,
    },
    /// A `/dev/fuse` descriptor opened by the supervisor, inherited through the forks.
    Fuse {
        target: PathBuf,
        fd: RawFd,
        read_only: bool,
    },
}

/// Everything the sandbox's processes need, computed by the supervisor before forking.
pub(crate) struct Plan {
    pub(crate) program: CString,
    pub(crate) argv: Vec<CString>,
    pub(crate) env: Vec<CString>,
    pub(crate) cwd: PathBuf,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) new_network: bool,
    pub(crate) hostname: String,
    pub(crate) mounts: Vec<RootMount>,
    pub(crate) root_size_bytes: u64,
    pub(crate) shm_size_bytes: u64,
    /// Where Landlock lets the program write.
    pub(crate) writable: Vec<PathBuf>,
    pub(crate) filters: Vec<BpfProgram>,
    pub(crate) stdio: [Option<OwnedFd>; 3],
}

/// The two pipes between the supervisor and the sandbox, both close-on-exec.
pub(crate) struct Pipes {
    /// The zygote waits on this for the supervisor's go (one byte) or its end (no byte).
    pub(crate) go_read: OwnedFd,
    pub(crate) go_write: OwnedFd,
    /// The sandbox reports on this; it reaches end of file when the program's `execve`
    /// succeeded (close-on-exec) or every process of the sandbox is gone.
    pub(crate) report_read: OwnedFd,
    pub(crate) report_write: OwnedFd,
}

/// One message of the report.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Every mount of the root is made (the views can be served); the device number
    /// (`major:minor`) of each view's mount, in order, empty where it could not be found.
    Mounted { devices: Vec<String> },
    /// A step failed with an OS error.
    Failed { step: String, errno: Errno },
    /// A restriction could not be applied.
    Refused { step: String, reason: String },
    /// Every restriction is in place; the program is about to be executed.
    Restricted { landlock: LandlockStatus },
    /// `execve` of the program failed.
    Exec { errno: Errno },
}

const TAG_MOUNTED: u8 = 1;
const TAG_FAILED: u8 = 2;
const TAG_REFUSED: u8 = 3;
const TAG_EXEC: u8 = 4;
const TAG_RESTRICTED: u8 = 5;
/// Frames stay below `PIPE_BUF`, so each is written atomically.
const MAX_TEXT: usize = 3000;

fn encode(frame: &Frame) -> Vec<u8> {
    let (tag, errno, text) = match frame {
        Frame::Mounted { devices } => (TAG_MOUNTED, 0, devices.join(",")),
        Frame::Failed { step, errno } => (TAG_FAILED, *errno as i32, step.clone()),
        Frame::Refused { step, reason } => (TAG_REFUSED, 0, format!("{step}\0{reason}")),
        Frame::Exec { errno } => (TAG_EXEC, *errno as i32, String::new()),
        Frame::Restricted { landlock } => {
            (TAG_RESTRICTED, i32::from(landlock.code()), String::new())
        }
    };
    let mut text = text.into_bytes();
    text.truncate(MAX_TEXT);
    let mut out = Vec::with_capacity(9 + text.len());
    out.push(tag);
    out.extend_from_slice(&errno.to_le_bytes());
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(&text);
    out
}

/// Reads the next frame; `None` at end of file.
pub(crate) fn read_frame(report: &mut File) -> io::Result<Option<Frame>> {
    let mut tag = [0u8; 1];
    loop {
        match report.read(&mut tag) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut header = [0u8; 8];
    report.read_exact(&mut header)?;
    let errno = Errno::from_raw(i32::from_le_bytes([
        header[0], header[1], header[2], header[3],
    ]));
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > MAX_TEXT {
        return Err(io::Error::from(io::ErrorKind::InvalidData));
    }
    let mut text = vec![0u8; len];
    report.read_exact(&mut text)?;
    let text = String::from_utf8_lossy(&text).into_owned();
    Ok(Some(match tag[0] {
        TAG_MOUNTED => Frame::Mounted {
            devices: if text.is_empty() {
                Vec::new()
            } else {
                text.split(',').map(str::to_string).collect()
            },
        },
        TAG_FAILED => Frame::Failed { step: text, errno },
        TAG_REFUSED => {
            let (step, reason) = text.split_once('\0').unwrap_or((&text, ""));
            Frame::Refused {
                step: step.to_string(),
                reason: reason.to_string(),
            }
        }
        TAG_EXEC => Frame::Exec { errno },
        TAG_RESTRICTED => Frame::Restricted {
            landlock: LandlockStatus::from_code(errno as i32),
        },
        _ => return Err(io::Error::from(io::ErrorKind::InvalidData)),
    }))
}

/// The sandbox's end of the report pipe.
struct Reporter(File);

impl Reporter {
    fn send(&mut self, frame: &Frame) {
        // If the supervisor is gone there is no one to tell.
        let _ = self.0.write_all(&encode(frame));
    }

    /// Reports `frame` and exits with `code`.
    fn fail(mut self, frame: &Frame, code: i32) -> ! {
        self.send(frame);
        exit_now(code)
    }
}

/// A failed step inside the sandbox.
fn failed(step: impl Into<String>, errno: Errno) -> Frame {
    Frame::Failed {
        step: step.into(),
        errno,
    }
}

fn io_failed(step: impl Into<String>, e: &io::Error) -> Frame {
    failed(step, Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// The device nodes of the sandbox's `/dev`, bound from the host's.
const DEV_NODES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// Every entry of the sandbox's own `/dev` (nothing else may take these names).
pub(crate) const DEV_ENTRIES: [&str; 10] = [
    "null", "zero", "full", "random", "urandom", "fd", "stdin", "stdout", "stderr", "shm",
];

/// Exit code of the zygote or init when the sandbox could not be built.
const SETUP_FAILED: i32 = 125;

/// `_exit(2)`: ends the process at once, without running the exit handlers or flushing the
/// stdio buffers this forked copy inherited from the supervisor (they would be written twice).
#[allow(unsafe_code)]
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` takes a plain integer, touches no memory and never returns.
    unsafe { libc::_exit(code) }
}

/// `fork(2)`, for a caller that is single-threaded.
#[allow(unsafe_code)]
fn fork_single_threaded() -> nix::Result<ForkResult> {
    // SAFETY: every caller is single-threaded: the supervisor checks `/proc/self/status`
    // before forking the zygote (`Sandbox::prepare`), and the zygote and init never start a
    // thread. The child of a single-threaded process has consistent locks and allocator
    // state, so it may run arbitrary code, which is what the children here do.
    unsafe { fork() }
}

/// Marks every descriptor from 3 up close-on-exec, so that the program inherits only its
/// standard streams (not `/dev/fuse`, not the report pipe, not anything of the caller).
#[allow(unsafe_code)]
fn close_range_cloexec() -> nix::Result<()> {
    // SAFETY: close_range(2) takes plain integers and touches no memory of this process;
    // with CLOSE_RANGE_CLOEXEC it closes nothing, so no descriptor owned by Rust code is
    // invalidated before `execve`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Resets every signal's disposition to the default, real-time signals included. Ignored
/// signals survive `execve`, and the Rust runtime ignores SIGPIPE in the supervisor: without
/// this the program would inherit that (and any other signal the caller ignores). glibc
/// refuses to touch the two signals it reserves (32 and 33), and SIGKILL and SIGSTOP cannot be
/// changed: those fail with `EINVAL` and are skipped.
#[allow(unsafe_code)]
fn reset_signal_dispositions() -> nix::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler};
    let default: libc::sigaction =
        SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty()).into();
    for signo in 1..=libc::SIGRTMAX() {
        // SAFETY: `default` is a valid, initialised `struct sigaction` (built by nix) that
        // outlives the call, the old action is not asked for (null), and SIG_DFL runs no code
        // of ours in signal context.
        let rc = unsafe { libc::sigaction(signo, &default, std::ptr::null_mut()) };
        if rc != 0 && Errno::last() != Errno::EINVAL {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// Forks the zygote. Returns, in the supervisor, the zygote's pid and the supervisor's ends of
/// the pipes; the zygote never returns.
pub(crate) fn fork_zygote(
    plan: Plan,
    staging: &Path,
    pipes: Pipes,
) -> Result<(Pid, OwnedFd, OwnedFd), ExecError> {
    let supervisor = nix::unistd::getpid();
    match fork_single_threaded() {
        Err(e) => Err(ExecError::step("forking the zygote", e)),
        Ok(ForkResult::Parent { child }) => {
            drop(pipes.go_read);
            drop(pipes.report_write);
            drop(plan);
            Ok((child, pipes.go_write, pipes.report_read))
        }
        Ok(ForkResult::Child) => {
            drop(pipes.go_write);
            drop(pipes.report_read);
            zygote(
                plan,
                staging,
                supervisor,
                pipes.go_read,
                Reporter(File::from(pipes.report_write)),
            )
        }
    }
}

/// The signals that init and the zygote forward, plus SIGCHLD: blocked and read from a
/// signalfd (a PID 1 receives only signals it handles or blocks-and-reads).
fn relay_mask() -> SigSet {
    let mut mask = SigSet::empty();
    for signal in FORWARDED {
        mask.add(signal);
    }
    mask.add(Signal::SIGCHLD);
    mask
}

const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

fn zygote(mut plan: Plan, staging: &Path, supervisor: Pid, go: OwnedFd, report: Reporter) -> ! {
    // Die with the supervisor (with the thread that forked us, strictly).
    if prctl::set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != supervisor {
        exit_now(SETUP_FAILED);
    }
    // Out of the caller's session: a terminal's Ctrl-C reaches only the supervisor.
    let _ = setsid();
    let mut go = File::from(go);
    let mut byte = [0u8; 1];
    match go.read(&mut byte) {
        Ok(1) if byte[0] == GO => {}
        Ok(1) if byte[0] == GO_WITH_ENV => match read_late_env(&mut go) {
            Some(env) => plan.env.extend(env),
            None => exit_now(SETUP_FAILED),
        },
        // The supervisor dropped the sandbox without starting it.
        _ => exit_now(0),
    }
    drop(go);
    let mut namespaces = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if plan.new_network {
        namespaces |= CloneFlags::CLONE_NEWNET;
    }
    if let Err(e) = unshare(namespaces) {
        report.fail(
            &failed("creating the sandbox's namespaces", e),
            SETUP_FAILED,
        );
    }
    if let Err(e) = relay_mask().thread_block() {
        report.fail(&failed("blocking signals", e), SETUP_FAILED);
    }
    match fork_single_threaded() {
        Err(e) => report.fail(&failed("forking the sandbox's init", e), SETUP_FAILED),
        Ok(ForkResult::Child) => init(plan, staging, report),
        Ok(ForkResult::Parent { child }) => {
            drop(report);
            drop(plan);
            exit_now(relay(child))
        }
    }
}

/// The go byte: start with the environment planned.
pub(crate) const GO: u8 = 1;
/// The go byte followed by more environment: a u32 (LE) length, then `NAME=VALUE\0` entries.
pub(crate) const GO_WITH_ENV: u8 = 2;
/// The most late environment the zygote reads.
pub(crate) const MAX_LATE_ENV: usize = 1 << 20;

/// Reads the environment sent after [`GO_WITH_ENV`]; `None` if it is malformed.
fn read_late_env(go: &mut File) -> Option<Vec<CString>> {
    let mut len = [0u8; 4];
    go.read_exact(&mut len).ok()?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_LATE_ENV {
        return None;
    }
    let mut blob = vec![0u8; len];
    go.read_exact(&mut blob).ok()?;
    let env = blob
        .split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| CString::new(e).ok())
        .collect();
    blob.fill(0);
    std::hint::black_box(&blob);
    env
}

/// PID 1 of the sandbox: builds the root, starts the program, then reaps and forwards signals
/// until the program ends, and exits with the program's status (128 + N for signal N). Its
/// exit ends every other process of the sandbox.
fn init(mut plan: Plan, staging: &Path, mut report: Reporter) -> ! {
    if let Err(e) = prctl::set_pdeathsig(Signal::SIGKILL) {
        report.fail(
            &failed("setting init's parent-death signal", e),
            SETUP_FAILED,
        );
    }
    let devices = match build_root(&plan, staging) {
        Ok(devices) => devices,
        Err(frame) => report.fail(&frame, SETUP_FAILED),
    };
    report.send(&Frame::Mounted { devices });
    match fork_single_threaded() {
        Err(e) => report.fail(&failed("forking the program's process", e), SETUP_FAILED),
        Ok(ForkResult::Child) => program(plan, report),
        Ok(ForkResult::Parent { child }) => {
            drop(report);
            plan.stdio = [None, None, None];
            exit_now(relay(child))
        }
    }
}

/// Forwards signals to `child` and reaps every child until `child` ends; returns its status as
/// an exit code.
fn relay(child: Pid) -> i32 {
    let Ok(signals) = SignalFd::with_flags(&relay_mask(), SfdFlags::SFD_CLOEXEC) else {
        let _ = kill(child, Signal::SIGKILL);
        return SETUP_FAILED;
    };
    loop {
        match signals.read_signal() {
            Ok(Some(info)) => {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    if let Some(code) = reap(child) {
                        return code;
                    }
                } else if let Ok(signal) = Signal::try_from(signo) {
                    let _ = kill(child, signal);
                }
            }
            Ok(None) | Err(Errno::EINTR) => {}
            Err(_) => {
                let _ = kill(child, Signal::SIGKILL);
                return SETUP_FAILED;
            }
        }
    }
}

/// Reaps every child that has ended; the exit code once `child` is among them.
fn reap(child: Pid) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => return Some(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => {
                return Some(128 + signal as i32)
            }
            Ok(WaitStatus::StillAlive) => return None,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
}

fn mkdirs(path: &Path, shown: &Path) -> Result<(), Frame> {
    std::fs::create_dir_all(path)
        .map_err(|e| io_failed(format!("creating {}", shown.display()), &e))
}

/// Creates the mount point `target` (a directory, or an empty file when `file`) beneath
/// `root`, one component at a time, refusing to pass through a symlink: the root is not
/// pivoted into yet, so an absolute link (made by an earlier [`RootMount::Symlink`] or found
/// in a bound host directory) would lead out to the host's own tree.
fn mount_point(root: &Path, target: &Path, file: bool) -> Result<PathBuf, Frame> {
    let parts: Vec<_> = target
        .strip_prefix("/")
        .unwrap_or(target)
        .components()
        .collect();
    let mut path = root.to_path_buf();
    let mut shown = PathBuf::from("/");
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        shown.push(part);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(failed(
                    format!(
                        "making the mount point {}: {} is a symlink",
                        target.display(),
                        shown.display()
                    ),
                    Errno::ELOOP,
                ))
            }
            Ok(meta) if meta.is_dir() || last => {}
            Ok(_) => {
                return Err(failed(
                    format!("making the mount point {}", target.display()),
                    Errno::ENOTDIR,
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let made = if last && file {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map(drop)
                } else {
                    std::fs::create_dir(&path)
                };
                made.map_err(|e| io_failed(format!("creating {}", shown.display()), &e))?;
            }
            Err(e) => return Err(io_failed(format!("reading {}", shown.display()), &e)),
        }
    }
    Ok(path)
}

fn tmpfs(target: &Path, shown: &Path, options: &str, flags: MsFlags) -> Result<(), Frame> {
    let step = || format!("mounting tmpfs at {}", shown.display());
    // Never swapped where the kernel supports it (Linux 6.4+).
    let noswap = format!("{options},noswap");
    match mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        flags,
        Some(noswap.as_str()),
    ) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) => mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(options))
            .map_err(|e| failed(step(), e)),
        Err(e) => Err(failed(step(), e)),
    }
}

fn bind(source: &Path, target: &Path, shown: &Path, extra: MsFlags) -> Result<(), Frame> {
    let step = || format!("binding {} at {}", source.display(), shown.display());
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| failed(step(), e))?;
    // A bind mount takes its flags on a remount; keep the source's noexec.
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
    if statvfs(source).is_ok_and(|s| s.flags().contains(FsFlags::ST_NOEXEC)) {
        flags |= MsFlags::MS_NOEXEC;
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>).map_err(|e| failed(step(), e))
}

/// The device number (`major:minor`) of the mount at `target`, from `/proc/self/mountinfo`
/// (reading it asks nothing of the mount itself: a FUSE view is not served yet).
fn device_of(target: &Path) -> String {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return String::new();
    };
    let target = target.to_string_lossy();
    // The last mount at the target is the one on top.
    mountinfo
        .lines()
        .rev()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            (fields.get(4) == Some(&target.as_ref())).then(|| fields.get(2).map(|d| d.to_string()))
        })
        .flatten()
        .unwrap_or_default()
}

/// Builds the new root on a tmpfs at `staging` (in the sandbox's own mount namespace), then
/// pivots into it and makes it read-only. Returns the device numbers of the views' mounts.
fn build_root(plan: &Plan, staging: &Path) -> Result<Vec<String>, Frame> {
    let mut devices = Vec::new();
    let root = staging;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| failed("making the sandbox's mounts private", e))?;
    tmpfs(
        root,
        Path::new("/"),
        &format!("size={},mode=0755", plan.root_size_bytes),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )?;

    // /dev: a few device nodes bound from the host, links into /proc, a tmpfs /dev/shm.
    let dev = root.join("dev");
    mkdirs(&dev, Path::new("/dev"))?;
    tmpfs(
        &dev,
        Path::new("/dev"),
        "size=65536,mode=0755",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
    )?;
    for name in DEV_NODES {
        let node = dev.join(name);
        let shown = Path::new("/dev").join(name);
        File::create(&node).map_err(|e| io_failed(format!("creating {}", shown.display()), &e))?;
        bind(
            &Path::new("/dev").join(name),
            &node,
            &shown,
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        )?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link))
            .map_err(|e| io_failed(format!("creating /dev/{link}"), &e))?;
    }
    let shm = dev.join("shm");
    mkdirs(&shm, Path::new("/dev/shm"))?;
    tmpfs(
        &shm,
        Path::new("/dev/shm"),
        &format!("size={},mode=1777", plan.shm_size_bytes),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )?;
    // The mount points of the views in /dev ([`crate::Sandbox::dev_view`]) must exist before
    // /dev turns read-only; the views themselves are mounted with the others, below.
    for m in &plan.mounts {
        if let RootMount::Fuse { target, .. } = m {
            if let Ok(name) = target.strip_prefix("/dev") {
                mkdirs(&dev.join(name), target)?;
            }
        }
    }
    mount(
        None::<&str>,
        &dev,
        None::<&str>,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| failed("making /dev read-only", e))?;

    // /proc of the new PID namespace (this process is its PID 1), showing the program only
    // its own processes: init, a copy of the supervisor, stays invisible (its command line
    // would otherwise be readable by anyone).
    let proc = root.join("proc");
    mkdirs(&proc, Path::new("/proc"))?;
    mount(
        Some("proc"),
        &proc,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("hidepid=invisible"),
    )
    .map_err(|e| failed("mounting /proc", e))?;

    for m in &plan.mounts {
        match m {
            RootMount::Tmpfs { target, size_bytes } => {
                let dst = mount_point(root, target, false)?;
                tmpfs(
                    &dst,
                    target,
                    &format!("size={size_bytes},mode=1777"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                )?;
            }
            RootMount::Bind {
                source,
                target,
                read_only,
            } => {
                let meta = std::fs::metadata(source).map_err(|e| {
                    io_failed(format!("reading the bind source {}", source.display()), &e)
                })?;
                let dst = mount_point(root, target, !meta.is_dir())?;
                let mut extra = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                if *read_only {
                    extra |= MsFlags::MS_RDONLY;
                }
                bind(source, &dst, target, extra)?;
            }
            RootMount::Symlink { target, points_to } => {
                let parent = target.parent().unwrap_or(Path::new("/"));
                let dst =
                    mount_point(root, parent, false)?.join(target.file_name().unwrap_or_default());
                std::os::unix::fs::symlink(points_to, &dst).map_err(|e| {
                    io_failed(format!("creating the symlink {}", target.display()), &e)
                })?;
            }
            RootMount::Fuse {
                target,
                fd,
                read_only,
            } => {
                let dst = mount_point(root, target, false)?;
                let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                if *read_only {
                    flags |= MsFlags::MS_RDONLY;
                }
                if target.starts_with("/dev") {
                    flags |= MsFlags::MS_NOEXEC;
                }
                let options = format!("fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other");
                mount(
                    Some("ward-view"),
                    &dst,
                    Some("fuse.ward-view"),
                    flags,
                    Some(options.as_str()),
                )
                .map_err(|e| failed(format!("mounting the view at {}", target.display()), e))?;
                devices.push(device_of(&dst));
            }
        }
    }

    sethostname(&plan.hostname).map_err(|e| failed("setting the host name", e))?;
    chdir(root).map_err(|e| failed("entering the new root", e))?;
    pivot_root(".", ".").map_err(|e| failed("pivoting into the new root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| failed("detaching the old root", e))?;
    chdir("/").map_err(|e| failed("entering the new root", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|e| failed("making / read-only", e))?;
    Ok(devices)
}

/// The program's process: standard streams, working directory, no core dumps, unprivileged
/// uid and gid, no new privileges, Landlock, seccomp, then `execve`.
fn program(plan: Plan, mut report: Reporter) -> ! {
    let code = 126;
    // A session of its own, without a controlling terminal (no TIOCSTI into the caller's).
    let _ = setsid();
    for (i, fd) in plan.stdio.iter().enumerate() {
        if let Some(fd) = fd {
            let result = match i {
                0 => nix::unistd::dup2_stdin(fd),
                1 => nix::unistd::dup2_stdout(fd),
                _ => nix::unistd::dup2_stderr(fd),
            };
            if let Err(e) = result {
                report.fail(&failed("setting up the standard streams", e), code);
            }
        }
    }
    if let Err(e) = chdir(&plan.cwd) {
        report.fail(
            &failed(
                format!("entering the working directory {}", plan.cwd.display()),
                e,
            ),
            code,
        );
    }
    if let Err(e) = setrlimit(Resource::RLIMIT_CORE, 0, 0) {
        report.fail(&failed("setting RLIMIT_CORE to 0", e), code);
    }
    let (uid, gid) = (Uid::from_raw(plan.uid), Gid::from_raw(plan.gid));
    if let Err(e) = nix::unistd::setgroups(&[]) {
        report.fail(&failed("dropping the supplementary groups", e), code);
    }
    if let Err(e) = setresgid(gid, gid, gid) {
        report.fail(&failed(format!("changing to gid {gid}"), e), code);
    }
    // With every uid non-zero the kernel clears the permitted, effective and ambient
    // capabilities.
    if let Err(e) = setresuid(uid, uid, uid) {
        report.fail(&failed(format!("changing to uid {uid}"), e), code);
    }
    if let Err(e) = prctl::set_no_new_privs() {
        report.fail(&failed("setting no_new_privs", e), code);
    }
    let landlock = match filter::apply_landlock(&plan.writable, plan.new_network) {
        Ok(landlock) => landlock,
        Err(reason) => report.fail(
            &Frame::Refused {
                step: "restricting the program with Landlock".to_string(),
                reason,
            },
            code,
        ),
    };
    if let Err(e) = close_range_cloexec() {
        report.fail(&failed("marking descriptors close-on-exec", e), code);
    }
    if let Err(reason) = filter::apply_seccomp(&plan.filters) {
        report.fail(
            &Frame::Refused {
                step: "installing the seccomp filter".to_string(),
                reason,
            },
            code,
        );
    }
    if let Err(e) = reset_signal_dispositions() {
        report.fail(&failed("resetting signal dispositions", e), code);
    }
    if let Err(e) =
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
    {
        report.fail(&failed("unblocking signals", e), code);
    }
    report.send(&Frame::Restricted { landlock });
    let Err(e) = execve(&plan.program, &plan.argv, &plan.env);
    report.fail(&Frame::Exec { errno: e }, 127)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let frames = [
            Frame::Mounted {
                devices: vec!["0:52".into(), String::new(), "0:53".into()],
            },
            Frame::Mounted { devices: vec![] },
            failed("mounting tmpfs at /tmp", Errno::EPERM),
            Frame::Refused {
                step: "a".into(),
                reason: "b c".into(),
            },
            Frame::Exec {
                errno: Errno::ENOENT,
            },
            Frame::Restricted {
                landlock: LandlockStatus::PartiallyEnforced,
            },
        ];
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut w = File::from(w);
        for frame in &frames {
            w.write_all(&encode(frame)).unwrap();
        }
        drop(w);
        let mut r = File::from(r);
        for frame in &frames {
            assert_eq!(read_frame(&mut r).unwrap().as_ref(), Some(frame));
        }
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }
}
