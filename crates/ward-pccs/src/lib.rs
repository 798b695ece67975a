//! Fetching Intel's DCAP collateral for a quote from a PCCS or Intel PCS, and keeping it on
//! disk until it expires.
//!
//! `ward-attest` verifies SGX/TDX quotes offline: collateral (TCB info, QE identity, the PCK
//! and root CA CRLs and their issuer chains) arrives as data. This crate is where that data
//! comes from:
//!
//! - [`CollateralKey`]: which collateral a quote needs — its TEE, and the FMSPC and issuing CA
//!   (Processor or Platform) read from the quote's PCK certificate.
//! - [`Pccs`]: a blocking HTTP(S) client for the PCCS/PCS v4 API at a base URL the user gives
//!   (a PCCS such as `https://localhost:8081`, or Intel PCS at [`INTEL_PCS_URL`]), with a
//!   timeout and a cap on response size. Every failure is a typed [`Error`] naming the URL and
//!   what was wrong.
//! - [`Cache`] and [`CachingSource`]: an on-disk cache, one file per TEE + FMSPC + CA, used
//!   until the earliest `nextUpdate` of the pieces it holds (see [`next_update`]), then
//!   refetched and atomically replaced. The caller supplies the time; nothing here reads the
//!   wall clock, except the factories below, which verify as of now.
//! - [`CachingSource`] is a [`ward_attest::CollateralSource`]; [`dcap_verifier`] and
//!   [`sim_and_dcap_verifier`] build the verifiers that use it in one call.
//!
//! What it is not: a verifier. A response is checked only for shape (the right headers, JSON
//! with the signed object and a 64-byte hex signature, CRLs that parse, the TCB info for the
//! FMSPC that was asked for); no signature, chain or CRL is checked here, and TLS is not what
//! makes collateral trustworthy. Pass what it returns to
//! `ward_attest::dcap::DcapVerifier::verify`, which checks all of it against Intel's pinned root.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ward_pccs::{Cache, CachingSource, Pccs};
//! let quote_bytes = std::fs::read("quote.bin")?;
//! let quote = ward_attest::quote::Quote::parse(&quote_bytes)?;
//! let source = CachingSource::new(
//!     Pccs::new("https://api.trustedservices.intel.com")?,
//!     Cache::new("/var/cache/ward/collateral"),
//! );
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
//! let collateral = source.collateral_for(&quote, now)?;
//! let claims = ward_attest::dcap::DcapVerifier::intel().verify(&quote_bytes, &collateral, now)?;
//! # let _ = claims; Ok(()) }
//! ```

mod cache;
mod error;
mod fetch;
mod key;
mod shape;
mod verifier;

pub use cache::{next_update, Cache, CachedCollateral, CachingSource};
pub use error::{Error, Result};
pub use fetch::{
    Pccs, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, INTEL_PCS_URL, INTEL_ROOT_CA_CRL_URL,
};
pub use key::{CollateralKey, PckCa, Tee};
pub use verifier::{dcap_verifier, sim_and_dcap_verifier, system_clock};
