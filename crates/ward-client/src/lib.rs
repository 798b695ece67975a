//! A client of ward's attested inference service (`ward serve`).
//!
//! The client holds its own [`ward_attest::Policy`]: which measurements and signers, which TEE,
//! which TCB status it accepts. Each connection's TLS handshake verifies the server's RA-TLS
//! certificate (its evidence, the evidence's binding to the TLS key, and the policy) before the
//! handshake completes, so a server the policy refuses never receives a byte of the request:
//! [`ClientError::Refused`] carries the rule that failed.
//!
//! - [`Connector`]: the policy and the evidence verifier, shared by every connection.
//! - [`Connection`]: one verified TLS session (HTTP/1.1 keep-alive), async; what the server
//!   proved is in [`Connection::claims`].
//! - [`Client`]: the same, blocking, reconnecting when the server closed the session; what the
//!   CLI and the Python package use.
//! - [`bench`](mod@bench): a load generator of concurrent clients, with latency percentiles.
//!
//! What it is not: it trusts nothing the server says about itself outside the handshake (the
//! `/v1/attestation` document is informative), it keeps no evidence cache across processes, and
//! it does no DNS-based server authentication: the server name is only used to connect.

pub mod bench;
mod client;
mod connection;

pub use client::Client;
pub use connection::{Connection, Connector, Prediction};

use std::sync::Arc;

/// Why a request to the service failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server address is not `HOST:PORT`.
    #[error("server address {0:?}: give HOST:PORT (e.g. 127.0.0.1:8443)")]
    Address(String),
    /// No TCP connection could be made.
    #[error("connecting to {server}")]
    Connect {
        /// The server, as given.
        server: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server's evidence was verified and the client's policy refused it. Nothing was sent.
    #[error("refused the server {server} before sending anything")]
    Refused {
        /// The server, as given.
        server: String,
        /// The policy's refusal (or why the evidence could not be verified); its
        /// [`ward_ratls::RaTlsError::refusal`] names the rule.
        #[source]
        reason: Arc<ward_ratls::RaTlsError>,
    },
    /// The TLS handshake failed for another reason (not an RA-TLS server, protocol error).
    #[error("TLS handshake with {server} (nothing was sent)")]
    Handshake {
        /// The server, as given.
        server: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The client's policy file could not be read or is not a valid policy.
    #[error(transparent)]
    Policy(#[from] ward_attest::PolicyError),
    /// The DCAP evidence verifier (its PCCS client) could not be set up.
    #[error("setting up DCAP verification")]
    Verifier(#[source] ward_pccs::Error),
    /// The TLS configuration could not be built.
    #[error("TLS configuration")]
    Tls(#[source] ward_ratls::RaTlsError),
    /// The HTTP exchange failed (connection closed, protocol error).
    #[error("HTTP with {server}")]
    Http {
        /// The server, as given.
        server: String,
        /// Why.
        #[source]
        source: hyper::Error,
    },
    /// The server answered with an error status; `message` is its reason.
    #[error("the server answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's `error` field (or the body's start when it has none).
        message: String,
    },
    /// The server's answer is not what the API says.
    #[error("unexpected answer from {server}: {problem}")]
    Response {
        /// The server, as given.
        server: String,
        /// What was wrong.
        problem: String,
    },
    /// Connecting, the handshake or the answer took longer than the client's timeout.
    #[error("{what} with {server} timed out after {after:?}")]
    Timeout {
        /// The server, as given.
        server: String,
        /// What was being done.
        what: &'static str,
        /// The timeout.
        after: std::time::Duration,
    },
    /// The client's async runtime could not start.
    #[error("starting the client's async runtime")]
    Runtime(#[source] std::io::Error),
}

/// An error with its causes, on one line (`a: b: c`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// The host of `HOST:PORT` (brackets of an IPv6 address removed), or why it is not one.
pub(crate) fn host_of(server: &str) -> Result<&str, ClientError> {
    let (host, _port) = server
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        .ok_or_else(|| ClientError::Address(server.to_owned()))?;
    Ok(host.trim_start_matches('[').trim_end_matches(']'))
}

impl ClientError {
    /// Whether the server was refused by the client's policy (or its evidence failed
    /// verification) before anything was sent.
    pub fn is_refusal(&self) -> bool {
        matches!(self, ClientError::Refused { .. })
    }
}
