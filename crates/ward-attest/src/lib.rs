//! Evidence that a workload is what it claims to be, and the decision whether to trust it.
//!
//! - [`quote`]: typed parsing of Intel SGX (v3) and TDX (v4, v5) DCAP quotes at the boundary;
//!   malformed input is refused with the field and offset that were wrong.
//! - [`dcap`]: complete offline DCAP verification against Intel's collateral with a clock the
//!   caller supplies (the `dcap-qvl` crate is the engine).
//! - [`sim`]: a simulated TEE for development, honest about being one.
//! - [`verify`]: the [`EvidenceVerifier`] trait, a verifier per TEE kind, and [`AnyVerifier`],
//!   which routes a quote to the one for its kind; DCAP collateral comes from a
//!   [`verify::CollateralSource`] the caller supplies (`ward-pccs` implements one).
//! - [`claims`] and [`policy`]: what verification proved, and a readable policy that accepts or
//!   refuses it with a reason a person can act on.
//! - [`attester`]: producing evidence on this machine (simulated, Gramine's `/dev/attestation`,
//!   Linux configfs-tsm).
//!
//! What it is not: it does no network I/O (collateral arrives as data) and knows nothing of TLS.

pub mod attester;
pub mod claims;
pub mod dcap;
mod error;
pub mod keyfile;
pub mod policy;
pub mod quote;
pub mod sim;
pub mod time;
pub mod verify;

pub use claims::{TcbStatus, TeeKind, VerifiedClaims, WorkloadIdentity, WORKLOAD_REPORT_DATA_TAG};
pub use error::{Error, ErrorChain, Result};
pub use policy::{Identity, Policy, PolicyError, Refusal};
pub use verify::{
    AnyVerifier, CollateralSource, DcapEvidenceVerifier, EvidenceVerifier, SimVerifier,
};
