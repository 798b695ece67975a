use std::io;

/// Why evidence could not be parsed, produced or verified.
///
/// Messages say what was wrong and where; they never contain secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The evidence is not well-formed.
    #[error("malformed {what}: field `{field}` at offset {offset}: {problem}")]
    Malformed {
        /// What was being parsed ("SGX quote", "simulated quote", …).
        what: &'static str,
        /// The field that was wrong.
        field: &'static str,
        /// Byte offset of that field in the input.
        offset: usize,
        /// What was wrong with it.
        problem: String,
    },

    /// The quote header's `qe_vendor_id` is not Intel's: the quote was not produced by Intel's
    /// quoting enclave, so Intel's collateral cannot vouch for it.
    #[error(
        "quote header field `qe_vendor_id` (offset 12) is {}, not Intel's QE vendor ID \
         939a7233f79c4ca9940a0db3957f0607: ward verifies only quotes from Intel's quoting enclave",
        hex::encode(found)
    )]
    QeVendor {
        /// The vendor ID found.
        found: [u8; 16],
    },

    /// Well-formed, but of a kind ward does not handle.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// A cryptographic or collateral check failed.
    #[error("verification failed: {step}: {detail}")]
    Verification {
        /// Which check failed.
        step: &'static str,
        /// Details, for the operator.
        detail: String,
    },

    /// The collateral is unusable (malformed, or for another platform).
    #[error("collateral: {0}")]
    Collateral(String),

    /// A field of the collateral is not in its format (JSON, hex, DER).
    #[error("collateral: field `{field}` is not {expected}")]
    CollateralField {
        /// The field (`tcb_info`, `pck_crl`, … or `(document)` for the whole JSON).
        field: &'static str,
        /// What it should be.
        expected: &'static str,
        /// The parser's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A collateral file could not be used.
    #[error("collateral file {}", path.display())]
    CollateralFile {
        /// The file.
        path: std::path::PathBuf,
        /// What was wrong with it.
        #[source]
        source: Box<Error>,
    },

    /// A piece of the collateral is past its `nextUpdate` at the verification time.
    #[error(
        "collateral expired: the {piece} was due to be replaced at {} (unix {expired_at}), before the verification time {} (unix {at}); fetch current collateral from your PCCS/Intel PCS (it is valid ~30 days), or pass an earlier time for a historical check",
        crate::time::rfc3339(*expired_at),
        crate::time::rfc3339(*at)
    )]
    CollateralExpired {
        /// Which piece.
        piece: crate::dcap::CollateralPiece,
        /// Its `nextUpdate` (or the earliest expiry of the set), unix seconds.
        expired_at: u64,
        /// The verification time, unix seconds.
        at: u64,
    },

    /// A piece of the collateral was issued after the verification time.
    #[error(
        "collateral not yet valid: the {piece} was issued at {} (unix {issued_at}), after the verification time {} (unix {at}); check the clock",
        crate::time::rfc3339(*issued_at),
        crate::time::rfc3339(*at)
    )]
    CollateralNotYetValid {
        /// Which piece.
        piece: crate::dcap::CollateralPiece,
        /// When it was issued, unix seconds.
        issued_at: u64,
        /// The verification time, unix seconds.
        at: u64,
    },

    /// The DCAP engine refused the quote or its collateral (signatures, chains, CRLs, TCB).
    #[error("DCAP verification refused the quote or its collateral")]
    Dcap {
        /// The engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The collateral source (a PCCS, a cache) could not provide collateral for the quote.
    #[error(
        "no collateral for the quote's platform; check that the PCCS is reachable and serves \
         current collateral for it"
    )]
    CollateralSource {
        /// The source's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// No verifier is configured for this kind of evidence.
    #[error("no verifier is configured for {0}")]
    NoVerifier(&'static str),

    /// Reading or writing a file or device failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A key could not be created, loaded or used.
    #[error("key: {0}")]
    Key(String),

    /// A key file could not be written or read.
    #[error("{what} file")]
    KeyFile {
        /// Which key.
        what: &'static str,
        /// Why.
        #[source]
        source: crate::keyfile::KeyFileError,
    },
}

/// An error and its causes on one line, joined by ": " — for logs, audit records and test
/// messages; a terminal shows the causes one per line instead.
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'a));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
