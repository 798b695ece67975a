//! ward's confined execution: runs a user's own, unmodified program (`/usr/bin/python3
//! script.py`) so that it sees only a view chosen by the caller.
//!
//! What this crate is:
//! - a [`Sandbox`] builder and its run: a zygote forked while the caller is still
//!   single-threaded, new mount, PID, IPC, UTS and (unless [`Network::Host`]) network
//!   namespaces, a small init as PID 1 that reaps and forwards signals, a new root on a tmpfs
//!   holding only the caller's [`Mount`]s (tmpfs, bind mounts, symlinks, FUSE views), a
//!   minimal `/dev` (null, zero, full, random, urandom, the `fd`/`std*` links, a tmpfs
//!   `/dev/shm`, and any views the caller adds there with [`Sandbox::dev_view`]) and a `/proc` that shows the program only its own processes, `pivot_root`, a
//!   read-only `/`, `RLIMIT_CORE=0`, an unprivileged uid and gid (65534) with every
//!   capability gone, `PR_SET_NO_NEW_PRIVS`, Landlock (best effort, see
//!   [`Running::landlock`]) and a seccomp filter (below). The program's exit status is the
//!   result; a failure before the program starts (a mount, the entrypoint) is a typed
//!   [`ExecError`] naming the step, never a silent exit status;
//! - a FUSE adapter ([`View`], [`Handle`]): the caller answers path-based questions (what is at
//!   `/models/a.onnx`, read these bytes, create this file) and the adapter speaks FUSE to the
//!   kernel through `fuser`, keeping the inode table, caching negative lookups and reporting
//!   mtimes. The supervisor opens `/dev/fuse` and the sandbox mounts that descriptor, so a view
//!   is never mounted in the supervisor's own namespace. [`MemView`] (in memory) and
//!   [`HostDirView`] (a host directory as it is) are simple views for tests and examples;
//!   [`mount`] serves a view in the caller's own namespace.
//!
//! The seccomp filter: `clone3` and `io_uring_*` fail with `ENOSYS` (libc falls back to
//! `clone`, which the filter can inspect; io_uring would bypass it), x32 syscall numbers with
//! `ENOSYS`, other architectures kill the process; `ptrace`, `process_vm_readv`/`writev`, the
//! mount syscalls (old and new API), `pivot_root`, `chroot`, `bpf`, `kexec_*`, module loading,
//! `keyctl`/`add_key`/`request_key`, `perf_event_open`, `setns`, `userfaultfd`, and `unshare`
//! or `clone` with `CLONE_NEWUSER` fail with `EPERM`; without network, `socket()` of any family
//! but `AF_UNIX` fails with `EACCES`.
//!
//! What it is not: it knows nothing of manifests, keys, attestation or protected-file formats.
//! The caller decides what the view contains and serves its bytes; this crate only confines the
//! program to it. It runs on Linux only, as root (as ward does in a confidential VM).
//!
//! # Processes
//! ```text
//! supervisor (the caller: serves the FUSE views, waits)
//!  └─ zygote      forked by Sandbox::prepare; unshares the namespaces on Prepared::start
//!      └─ init    PID 1 of the new PID namespace: builds the root, pivots, reaps, forwards
//!          └─ program   uid/gid dropped, Landlock + seccomp, execve
//! ```
//! Signals sent with [`Running::signal`] go to the zygote, which forwards them to init, which
//! forwards them to the program. The zygote and the program each start a new session, so a
//! terminal's Ctrl-C reaches only the supervisor, which decides what to forward.
//!
//! # Unsafe code
//! The workspace forbids `unsafe`; this crate is its one reviewed exception, for four calls
//! that safe Rust with nix cannot make: `fork(2)` and `sigaction(2)` (unsafe in nix; the
//! latter resets every disposition, real-time signals included, to `SIG_DFL` before
//! `execve`), `_exit(2)` and `close_range(2)` (not in nix). Each is one small function with
//! `#[allow(unsafe_code)]` and a `// SAFETY:` comment; everything else uses nix's safe
//! wrappers.

#![cfg(target_os = "linux")]

mod child;
mod error;
mod filter;
mod hostview;
mod memview;
mod sandbox;
mod view;

pub use error::ExecError;
pub use filter::LandlockStatus;
pub use hostview::HostDirView;
pub use memview::MemView;
pub use nix::errno::Errno;
pub use nix::sys::signal::Signal;
pub use sandbox::{Mount, Network, Prepared, Running, Sandbox, NOBODY};
pub use view::{mount, Attr, DirEntry, Handle, Kind, View, ViewOptions, ViewSession};
