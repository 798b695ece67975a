//! Secret provisioning for ward: a server that hands secrets to attested workloads over RA-TLS,
//! speaking Gramine's secret-provisioning protocol (so unmodified Gramine clients work) and a
//! ward extension that asks for several named secrets at once; and a client for both.
//!
//! - [`config`]: the server's TOML configuration (TLS certificate, audit log, limits, and one
//!   `[[secret]]` per secret, each with its own [`ward_attest::Policy`]).
//! - [`protocol`]: the wire formats (see `FORMATS.md` §3 for Gramine's part).
//! - [`server`]: the tokio + rustls server. The TLS handshake requires a client certificate and
//!   verifies its evidence and key binding only; each secret's own policy is then evaluated on
//!   the verified claims. Every attempt is written to a JSON-lines audit log, flushed to disk
//!   before any secret is sent. Secret bytes are never logged.
//! - [`dev`]: a development setup for a first run (dev CA, server certificate, simulated
//!   platform key, wrap key, policy, configuration).
//! - [`bench`](mod@bench): a load generator of simulated RA-TLS clients, summarised.
//! - [`client`]: a blocking client ([`client::fetch`] for the ward extension,
//!   [`client::fetch_gramine`] for Gramine's protocol).

mod audit;
pub mod bench;
pub mod client;
pub mod config;
pub mod dev;
mod metrics;
pub mod policy_file;
pub mod protocol;
mod ratelimit;
pub mod server;

pub use audit::{latest_grant, Grant};
pub use client::{fetch, fetch_gramine, Secrets};
pub use config::{Limits, SecretEntry, SecretKind, ServerConfig};
pub use policy_file::{IdentitySpec, PolicyFile};
pub use server::{serve, ConfigSource, Reloader, Server, ServerHandle};

/// Why provisioning failed, on either side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration, or a file it names, could not be used.
    #[error("configuration {file}: {problem}")]
    Config {
        /// The file at fault (the configuration itself, or a file it names).
        file: String,
        /// What was wrong, naming the key when there is one.
        problem: String,
        /// The underlying cause (a TOML, PEM, I/O or policy error), when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// An I/O error, with what was being done.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },

    /// TLS setup or the TLS session failed.
    #[error("TLS with {peer}")]
    Tls {
        /// The server or client at the other end (or "config").
        peer: String,
        /// The error.
        #[source]
        source: rustls::Error,
    },

    /// The RA-TLS identity could not be used.
    #[error(transparent)]
    RaTls(#[from] ward_ratls::RaTlsError),

    /// The server refused a secret (or has none of that name: a ward server answers both
    /// alike); `reason` is the server's, which names the audit record that says why.
    #[error("server {server} refused secret {name:?}: {reason}")]
    Refused {
        /// The server that refused (`host:port`, as given).
        server: String,
        /// The secret asked for.
        name: String,
        /// The server's reason (usually the policy's refusal).
        reason: String,
    },

    /// The server has no secret of that name.
    #[error("server {server} has no secret named {name:?}: {reason}")]
    UnknownSecret {
        /// The server that answered (`host:port`, as given).
        server: String,
        /// The secret asked for.
        name: String,
        /// The server's message.
        reason: String,
    },

    /// The server rejected the request as a whole (too large, malformed).
    #[error("server {server} rejected the request: {reason}")]
    RequestRejected {
        /// The server that rejected it (`host:port`, as given).
        server: String,
        /// The server's reason.
        reason: String,
    },

    /// The peer broke the protocol (or closed the connection without an answer).
    #[error("protocol error with {peer}: {problem}")]
    Protocol {
        /// The peer.
        peer: String,
        /// What was wrong.
        problem: String,
    },

    /// The request cannot be sent as asked (e.g. no names, a name too long).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// No server could be reached or completed the exchange; each server's error, in order.
    #[error("no provisioning server could be used: {}", list_errors(.0))]
    AllServersFailed(Vec<(String, Error)>),
}

fn list_errors(errors: &[(String, Error)]) -> String {
    if errors.is_empty() {
        return "no servers were given".into();
    }
    errors
        .iter()
        // Several causes cannot chain as one source: each server's whole chain, on its line.
        .map(|(s, e)| format!("{s}: {}", ward_attest::ErrorChain(e)))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub(crate) fn config(
        file: impl Into<String>,
        problem: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Config {
            file: file.into(),
            problem: problem.into(),
            source,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether this is the server's definitive answer (a refusal or an unknown name), which
    /// trying another server would not change.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::Refused { .. } | Error::UnknownSecret { .. } | Error::RequestRejected { .. }
        )
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
