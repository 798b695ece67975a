use std::fmt;
use ward_attest::Refusal;

/// Why an RA-TLS certificate could not be produced, read, verified or accepted.
///
/// Messages say what was wrong and where; they never contain key material. `Debug` shows the
/// same message as `Display`, because rustls shows the errors of custom verifiers with `Debug`.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum RaTlsError {
    /// The bytes are not a well-formed X.509 certificate.
    #[error("malformed certificate: {0}")]
    Certificate(String),

    /// A well-formed certificate that carries no evidence at all.
    #[error(
        "not an RA-TLS certificate (no evidence extension): it has neither the TCG DICE tagged \
         evidence extension (OID 2.23.133.5.4.9) nor Gramine's legacy SGX quote extension \
         (OID 1.2.840.113741.1337.6)"
    )]
    NotRaTls,

    /// The evidence extension is present but malformed.
    #[error("malformed {form} evidence extension: {problem}")]
    MalformedEvidence {
        /// Which extension ("TCG DICE tagged", "legacy SGX quote").
        form: &'static str,
        /// What was wrong with it.
        problem: String,
    },

    /// The evidence is valid, but it was not produced for this certificate's key.
    #[error("the evidence is not bound to the certificate's public key: {0}")]
    Binding(String),

    /// The quote itself failed verification (signature, collateral, format, or no verifier for
    /// its kind: [`ward_attest::Error::NoVerifier`]).
    #[error("evidence verification failed")]
    Evidence(#[source] ward_attest::Error),

    /// Verified evidence that the policy refused.
    #[error("{0}")]
    Refused(Refusal),

    /// The peer sent a certificate chain; an RA-TLS certificate stands alone.
    #[error(
        "the peer sent {0} certificate(s) besides its own; an RA-TLS certificate is self-signed \
         and must be sent alone"
    )]
    UnexpectedChain(usize),

    /// The peer presented no certificate where one is required.
    #[error("the peer presented no certificate; RA-TLS requires one")]
    NoCertificate,

    /// A signature is not the certificate key's signature over the message.
    #[error("the signature was not made by the certificate's key over these bytes")]
    Signature,

    /// Producing evidence on this machine failed.
    #[error("producing evidence with the {attester} attester failed")]
    Attestation {
        /// The attester's name ("sim", "gramine", "tsm").
        attester: &'static str,
        /// What went wrong.
        #[source]
        source: ward_attest::Error,
    },

    /// A key could not be generated, encoded or loaded, or the certificate could not be built.
    #[error("key or certificate generation: {0}")]
    Generation(String),

    /// rustls refused a configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

impl fmt::Debug for RaTlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl RaTlsError {
    /// The policy's refusal, if that is why verification failed.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            RaTlsError::Refused(r) => Some(r),
            _ => None,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = RaTlsError> = std::result::Result<T, E>;

pub(crate) fn dice_err(problem: impl Into<String>) -> RaTlsError {
    RaTlsError::MalformedEvidence {
        form: "TCG DICE tagged",
        problem: problem.into(),
    }
}

pub(crate) fn legacy_err(problem: impl Into<String>) -> RaTlsError {
    RaTlsError::MalformedEvidence {
        form: "legacy SGX quote",
        problem: problem.into(),
    }
}
