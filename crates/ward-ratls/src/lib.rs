//! RA-TLS for ward: TLS certificates that carry TEE evidence, in Gramine's format, and rustls
//! verifiers that check them.
//!
//! An RA-TLS certificate is self-signed with a fresh key; a non-critical extension carries a
//! quote whose report data binds that key (see [`cert`] for both of Gramine's encodings). A peer
//! that completes a TLS handshake with it therefore talks to the holder of the key, which the
//! quote says lives inside the measured workload.
//!
//! - [`RaTlsIdentity::generate`] makes such a certificate with any
//!   [`ward_attest::attester::Attester`]; [`parse_certificate`] reads one back.
//! - An [`ward_attest::EvidenceVerifier`] verifies the quote (they live in
//!   [`ward_attest::verify`] and are re-exported here: [`SimVerifier`], [`DcapEvidenceVerifier`],
//!   [`AnyVerifier`]).
//! - [`verify_certificate`] does all of it for one certificate: parse, verify the evidence,
//!   check the key binding, apply the policy.
//! - [`RaTlsServerCertVerifier`] and [`RaTlsClientCertVerifier`] plug that into rustls (ring
//!   provider, TLS 1.2 and 1.3) for either side, and remember each outcome in a
//!   [`VerificationCache`] so the application can see what the peer proved, or why it was
//!   refused.
//!
//! ```
//! use std::sync::Arc;
//! use ward_attest::attester::SimAttester;
//! use ward_attest::sim::{SimIdentity, SimPlatformKey};
//! use ward_attest::Policy;
//! use ward_ratls::{EvidenceForm, RaTlsClientCertVerifier, RaTlsIdentity, SimVerifier};
//!
//! // In the workload: a certificate carrying evidence (here from the simulated TEE).
//! let identity = SimIdentity {
//!     mr_enclave: [0x11; 32],
//!     mr_signer: [0x22; 32],
//!     isv_prod_id: 1,
//!     isv_svn: 1,
//!     debug: false,
//! };
//! let attester = SimAttester::new(SimPlatformKey::generate(), identity);
//! let tls_identity = RaTlsIdentity::generate(&attester, EvidenceForm::Dice)?;
//!
//! // At the relying party: a policy, and a verifier that applies it during the handshake.
//! let policy = Policy::from_toml(
//!     &format!(
//!         "allow_simulated = true\nsimulated_platform_keys = [\"{}\"]\n\n[[identity]]\nmr_enclave = \"{}\"\n",
//!         attester.platform_key().to_hex(),
//!         "11".repeat(32),
//!     ),
//!     "example",
//! )
//! .unwrap();
//! let verifier = Arc::new(RaTlsClientCertVerifier::new(Arc::new(SimVerifier), policy));
//! let server_config = tls_identity.server_config_with_client_auth(verifier.clone())?;
//! # let _ = server_config;
//! // After a handshake: `verifier.claims_for(peer_cert_der)` says what the client proved, or
//! // `verifier.last_refusal_for(peer_cert_der)` why it was refused.
//! # Ok::<(), ward_ratls::RaTlsError>(())
//! ```
//!
//! What it is not: it decides nothing by itself. Whether verified evidence is acceptable is the
//! caller's [`ward_attest::Policy`]'s decision, and a refusal comes back as
//! [`RaTlsError::Refused`] with the policy's reason. It does no network I/O beyond the TLS
//! connections the application makes (collateral arrives through the caller's function), and it
//! never reads the wall clock to verify anything (the DCAP verifier uses the caller's clock;
//! only certificate generation uses the system time, for the informative validity dates).
//! Certificate validity dates and self-signatures are not checked, as in Gramine: trust comes
//! from the evidence, key possession from the handshake.

pub mod cert;
mod error;
pub mod tls;
pub mod verify;

pub use cert::{
    parse_certificate, EmbeddedEvidence, EvidenceForm, PubkeyHash, PubkeyHashAlg, RaTlsCertificate,
    RaTlsIdentity, Validity,
};
pub use error::{RaTlsError, Result};
pub use tls::{
    client_config_without_identity, crypto_provider, RaTlsClientCertVerifier,
    RaTlsServerCertVerifier, VerificationCache,
};
pub use verify::{verify_certificate, verify_evidence};
// Re-exported so RA-TLS users need not name `ward_attest::verify` for the common case.
pub use ward_attest::verify::{AnyVerifier, DcapEvidenceVerifier, EvidenceVerifier, SimVerifier};
