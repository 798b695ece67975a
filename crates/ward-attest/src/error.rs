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

    /// The collateral is unusable (malformed, for another platform, not yet valid or expired).
    #[error("collateral: {0}")]
    Collateral(String),

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

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
