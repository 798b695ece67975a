//! ward's attested inference service: the tutorial's third scenario, where a client sends one
//! private image to a model running on a machine she does not trust.
//!
//! The contract is the one private-inference services offer: *the client verifies the server's
//! evidence and policy inside the TLS handshake, then sends the input; only the attested workload
//! can read it.* Here the TLS certificate is the workload's RA-TLS certificate
//! ([`ward_ratls::RaTlsIdentity`]), whose key is bound to evidence naming the signed manifest, so
//! a client that checks the certificate against its policy (`ward-client`) knows which
//! measured service holds the session key before a byte of her image leaves.
//!
//! - [`ServeArgs`] and [`registry`]: the `ward:serve` built-in. A manifest with
//!   `loader.entrypoint = "ward:serve"` names the model, labels and spec in its (measured)
//!   arguments, so the measurement says which model answers; [`Service::from_context`] loads
//!   them through the booted workload's VFS (the model is usually a protected file whose key a
//!   provisioning server released at boot).
//! - [`Service`] and [`Server`]: the HTTPS endpoint (hyper over tokio-rustls, HTTP/1.1 and
//!   HTTP/2 by ALPN, routes by axum): `POST /v1/classify`, `GET /v1/health`,
//!   `GET /v1/attestation`, `GET /v1/openapi.json`. [`Limits`] bound connections, request size,
//!   queued work and time. Inference runs on a fixed number of worker threads, one image each,
//!   so concurrent requests use every core; a request with the machine to itself splits its
//!   inference across the classifier's thread pool instead.
//!
//! What it is not: it verifies no evidence (clients do), fetches no keys (the runtime's boot
//! does, before [`Service::from_context`]), and it does not log or store requests' images or
//! results: only method, route, status and timings are logged, and each request's image bytes
//! are wiped when it is answered. The TLS library's own record buffers are outside its reach.

mod api;
mod body;
mod builtin;
mod server;

pub use api::openapi;
pub use builtin::{registry, ServeArgs};
pub use server::{Limits, Server, Service, Stats};

/// Why the service could not start, or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The manifest's `ward:serve` arguments are wrong.
    #[error("ward:serve arguments: {0}")]
    Args(#[source] clap::Error),
    /// The manifest's entrypoint is not `ward:serve`.
    #[error(
        "the manifest's entrypoint is {0}, not ward:serve; `ward serve` runs only a manifest \
         whose loader.entrypoint is \"ward:serve\" (use `ward run` for other workloads)"
    )]
    NotServe(String),
    /// The model, labels or spec could not be loaded.
    #[error(transparent)]
    Model(#[from] ward_classify::Error),
    /// No RA-TLS identity could be made for the service.
    #[error("making the service's RA-TLS certificate")]
    Identity(#[source] ward_ratls::RaTlsError),
    /// The workload has no attester (the simulated TEE needs its platform key).
    #[error(
        "the service cannot attest: no attester was available at boot (for the simulated TEE, \
         give its platform key with --sim-key)"
    )]
    NoAttester,
    /// A limit is out of range.
    #[error("limit {name}: {problem}")]
    Limit {
        /// The limit's name.
        name: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// Binding or serving the listening socket failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
