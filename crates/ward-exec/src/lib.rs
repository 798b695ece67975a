//! ward's confined execution: runs a user's own, unmodified program (`/usr/bin/python3
//! script.py`) so that it sees only a view chosen by the caller.
//!
//! What this crate is:
//! - a [`Sandbox`] builder and its run: a zygote forked while the caller is still
//!   single-threaded, new mount, PID, IPC, UTS and (unless [`Network::Host`]) network
//!   namespaces, a small init as PID 1 that reaps and forwards signals, a new root on a tmpfs
//!   holding only the caller's [`Mount`]s (tmpfs, bind mounts, FUSE views), a minimal `/dev`
//!   and `/proc`, `pivot_root`, a read-only `/`, `RLIMIT_CORE=0`, an unprivileged uid and gid
//!   with every capability gone, `PR_SET_NO_NEW_PRIVS`, Landlock (best effort) and a seccomp
//!   filter. The program's exit status is the result; a failure before the program starts
//!   (a mount, the entrypoint) is a typed [`ExecError`], never a silent exit status;
//! - a FUSE adapter ([`View`], [`Handle`]): the caller answers path-based questions (what is at
//!   `/models/a.onnx`, read these bytes) and the adapter speaks FUSE to the kernel through
//!   `fuser`, keeping the inode table, caching negative lookups and reporting mtimes.
//!   [`MemView`] (in memory) and [`HostDirView`] (a host directory as it is) are simple views
//!   for tests and examples.
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
//! that nix offers no safe wrapper for: `fork(2)`, `_exit(2)`, `close_range(2)` and
//! `sigaction(2)` (to reset every disposition, real-time signals included, to `SIG_DFL`
//! before `execve`). Everything else uses
//! nix's safe wrappers.

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
