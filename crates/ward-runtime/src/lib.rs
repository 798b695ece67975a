//! The ward runtime: bootstrap a workload from its signed manifest and confine it.
//!
//! [`bootstrap::boot`] verifies the signed manifest for this runtime binary, attests (sim, Gramine
//! or configfs-tsm), fetches the workload's keys over RA-TLS, and builds the [`vfs::Vfs`]: the
//! only way a workload reaches files, enforcing the manifest (trusted files hash-checked as they
//! are read, protected files decrypted with their mount's key and bound path, allowed files passed
//! through, tmpfs in memory, everything else refused with the rule that would allow it).
//! [`workload::Registry`] runs the manifest's built-in entrypoint in that context.
//!
//! [`workload::Registry::check`] checks an entrypoint and its arguments without running them, so
//! `ward sign` refuses a typo before any key is released.
//!
//! This crate contains no ML code (the classifier is `ward-classify`, which registers itself),
//! and it is not a sandbox for arbitrary binaries: built-in workloads are trusted to use only
//! their [`bootstrap::Context`].

#[cfg(target_os = "linux")]
pub mod attestation_dev;
pub mod bootstrap;
#[cfg(target_os = "linux")]
pub mod program;
pub mod receipt;
pub mod report;
pub mod vfs;
pub mod workload;

pub use bootstrap::{boot, runtime_digest, BootError, BootOptions, Context};
pub use receipt::ReceiptSigner;
/// Which attester produces the workload's evidence (defined in `ward-attest`).
pub use ward_attest::attester::AttesterKind;
pub use workload::{Builtin, CheckFn, Registry, RunError, WorkloadError, WorkloadFn};
