use std::io;
use std::path::PathBuf;

/// Why collateral could not be fetched, read from the cache or stored in it.
///
/// Each network failure names the URL that was asked and what was wrong with the answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL given for the PCCS/PCS (or an override) is not usable.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The TLS root certificates given are not usable.
    #[error("TLS root certificates: {0}")]
    TlsRoots(String),

    /// The quote does not say which collateral it needs (no PCK certificate chain, no FMSPC,
    /// an unknown issuing CA, …).
    #[error("quote: {0}")]
    Quote(String),

    /// The request did not complete: connection refused, DNS, TLS, timeout, I/O.
    #[error("GET {url}{note}")]
    Transport {
        /// The URL that was asked.
        url: String,
        /// What ward adds (the timeout in force), empty or starting with a space.
        note: String,
        /// The HTTP client's error.
        #[source]
        source: ureq::Error,
    },

    /// The server answered with a status other than 2xx.
    #[error("GET {url}: HTTP {status}{detail}")]
    Status {
        /// The URL that was asked.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// Intel's `Error-Code`/`Error-Message` headers and the start of the body, if any
        /// (empty, or starting with a space).
        detail: String,
    },

    /// The response body was larger than the configured maximum.
    #[error("GET {url}: response body larger than the limit of {limit} bytes; refused")]
    TooLarge {
        /// The URL that was asked.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },

    /// A header the collateral needs was absent.
    #[error("GET {url}: response has no {header} header")]
    MissingHeader {
        /// The URL that was asked.
        url: String,
        /// The header (or headers, any of which would do).
        header: String,
    },

    /// A header the collateral needs was present but unusable.
    #[error("GET {url}: header {header}: {reason}")]
    BadHeader {
        /// The URL that was asked.
        url: String,
        /// The header.
        header: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The response body is not what the endpoint serves (not JSON, no signature, not a CRL,
    /// TCB info for another platform, …).
    #[error("GET {url}: {reason}")]
    BadBody {
        /// The URL that was asked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The fetched pieces could not be assembled into collateral.
    #[error("collateral from {base_url} is unusable")]
    Collateral {
        /// The PCCS/PCS base URL.
        base_url: String,
        /// Why `ward-attest` refused it.
        #[source]
        source: ward_attest::Error,
    },

    /// When the collateral stops being current could not be determined.
    #[error("cannot tell when the collateral expires")]
    NextUpdate(#[source] ward_attest::Error),

    /// A cache file exists but does not hold usable collateral for its key.
    #[error("cached collateral {}: {reason}", path.display())]
    CacheCorrupt {
        /// The cache file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// What refused it, when another crate did.
        #[source]
        source: Option<ward_attest::Error>,
    },

    /// Writing a cache entry failed.
    #[error("storing cached collateral")]
    CacheStore {
        /// What failed.
        #[source]
        source: ward_fsio::Error,
    },

    /// Reading the cache failed.
    #[error("{context} {}", path.display())]
    CacheIo {
        /// What was being done.
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
