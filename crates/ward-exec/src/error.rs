//! Errors of building and starting a sandbox.

use std::path::PathBuf;

use nix::errno::Errno;

/// Why a sandbox could not be built, started or waited for.
///
/// Each variant names the step that failed and keeps the OS error as its source. Errors raised
/// inside the sandbox before the program starts (a mount, the uid drop, the entrypoint's
/// `execve`) are carried back to the supervisor over a close-on-exec pipe.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The caller is not root: namespaces, mounts and `/dev/fuse` need it.
    #[error("ward-exec must run as root to build a sandbox (running as uid {uid})")]
    NotRoot {
        /// The effective uid of the caller.
        uid: u32,
    },
    /// `/dev/fuse` cannot be opened, so no view can be mounted.
    #[error("/dev/fuse cannot be opened, so the view cannot be mounted")]
    NoFuse {
        /// Why opening it failed.
        #[source]
        source: Errno,
    },
    /// The caller has more than one thread: forking the zygote now would be unsafe.
    #[error(
        "a sandbox must be prepared while the process is single-threaded, but it has {threads} \
         threads (the others: {})", others.join(", ")
    )]
    Threaded {
        /// The number of threads seen in `/proc/self/status`.
        threads: usize,
        /// The other threads' names (`/proc/self/task/*/comm`), to tell whose they are.
        others: Vec<String>,
    },
    /// The sandbox's description is inconsistent (a relative target, a mount under a view, …).
    #[error("invalid sandbox: {0}")]
    Invalid(String),
    /// A step of building or starting the sandbox failed, in the supervisor or inside the
    /// sandbox before the program started.
    #[error("{step}")]
    Step {
        /// What was being done, e.g. `mounting tmpfs at /tmp`.
        step: String,
        /// The OS error.
        #[source]
        source: Errno,
    },
    /// A restriction could not be put in place inside the sandbox (Landlock, seccomp).
    #[error("{step}: {reason}")]
    Refused {
        /// What was being done.
        step: String,
        /// Why it failed.
        reason: String,
    },
    /// The entrypoint could not be executed (missing, not executable, bad interpreter, …).
    #[error("cannot execute the entrypoint {}", path.display())]
    Entrypoint {
        /// The entrypoint, as seen inside the sandbox.
        path: PathBuf,
        /// The error `execve` returned.
        #[source]
        source: Errno,
    },
    /// The program had not started (its `execve` had not returned) when the start timeout
    /// ([`crate::Sandbox::start_timeout`]) ran out; the sandbox was killed.
    #[error("the program had not started after {0:?}: the sandbox was killed")]
    StartTimeout(std::time::Duration),
    /// The sandbox ended before reporting that the program started, without saying why.
    #[error("the sandbox ended before the program started, without saying why ({0})")]
    Vanished(String),
}

impl ExecError {
    pub(crate) fn step(step: impl Into<String>, source: Errno) -> Self {
        ExecError::Step {
            step: step.into(),
            source,
        }
    }
}
