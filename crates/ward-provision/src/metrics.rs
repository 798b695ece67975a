//! The server's metrics, and the opt-in plain-HTTP endpoint that serves them
//! (`GET /metrics`, OpenMetrics text as Prometheus scrapes it).
//!
//! Labels are only what the operator configured (secret names) or ward's own fixed vocabulary
//! (decisions, policy rules, failure events, protocols): nothing a client sends becomes a label,
//! so a client cannot grow the series without bound (a request for an unknown name is counted
//! under `secret="(unknown)"`). No secret, claim or address is exported.

use crate::{Error, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Scrapes served at once; more wait (a scraper is one process, not a crowd).
const MAX_SCRAPES: usize = 4;
/// Time a scraper has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    secret: String,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    secret: String,
    rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// What the server counts (see the module doc).
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    failures: Family<EventLabels, Counter>,
    requests: Family<ProtocolLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    decision_seconds: Histogram,
    connections: Gauge,
    secrets: Gauge,
}

/// The label of a requested name that is not configured.
pub(crate) const UNKNOWN_SECRET: &str = "(unknown)";

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ward_provision");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions on requested secrets, by secret and decision (granted, refused, unknown)",
            decisions.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refusals",
            "Refused secrets, by secret and the policy rule that failed",
            refusals.clone(),
        );
        let failures = Family::<EventLabels, Counter>::default();
        registry.register(
            "failures",
            "Connections that ended before a decision, by event (handshake_refused, \
             handshake_timeout, rate_limited, bad_request, request_timeout, audit_write_failed)",
            failures.clone(),
        );
        let requests = Family::<ProtocolLabels, Counter>::default();
        registry.register(
            "requests",
            "Decided requests, by protocol (ward, gramine)",
            requests.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reloads",
            "Reloads of secrets and policies, by result (ok, failed)",
            reloads.clone(),
        );
        // 0.5 ms … ~16 s: a cached verification is sub-millisecond, a collateral fetch or a
        // slow disk sync takes seconds.
        let decision_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "decision_seconds",
            "Time from accepting a connection to its decision being on disk (handshake, \
             evidence verification, request, policy, audit sync)",
            decision_seconds.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Connections being served now",
            connections.clone(),
        );
        let secrets = Gauge::default();
        registry.register("secrets", "Secrets configured now", secrets.clone());
        Metrics {
            registry,
            decisions,
            refusals,
            failures,
            requests,
            reloads,
            decision_seconds,
            connections,
            secrets,
        }
    }

    pub(crate) fn decision(&self, secret: &str, decision: &'static str) {
        self.decisions
            .get_or_create(&DecisionLabels {
                secret: secret.to_owned(),
                decision,
            })
            .inc();
    }

    pub(crate) fn refusal(&self, secret: &str, rule: &'static str) {
        self.refusals
            .get_or_create(&RefusalLabels {
                secret: secret.to_owned(),
                rule,
            })
            .inc();
    }

    pub(crate) fn failure(&self, event: &'static str) {
        self.failures.get_or_create(&EventLabels { event }).inc();
    }

    pub(crate) fn request(&self, protocol: &'static str, took: Duration) {
        self.requests
            .get_or_create(&ProtocolLabels { protocol })
            .inc();
        self.decision_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    pub(crate) fn set_secrets(&self, n: usize) {
        self.secrets.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts a connection as served until the guard drops.
    pub(crate) fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.inc();
        ConnectionGuard(self.clone())
    }

    /// The OpenMetrics text.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// See [`Metrics::connection`].
pub(crate) struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.dec();
    }
}

fn respond(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET /metrics\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found; the metrics are at /metrics\n".to_owned(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// Serves `GET /metrics` on `listener` until the task is dropped or aborted.
pub(crate) async fn serve(listener: TcpListener, metrics: Arc<Metrics>) -> Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_SCRAPES));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return Ok(());
        };
        let (tcp, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let resp = respond(&metrics, &req);
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service);
            // A scraper that stalls after its headers loses its connection too.
            if let Ok(Err(e)) = tokio::time::timeout(HEADER_TIMEOUT * 2, conn).await {
                tracing::debug!(error = %e, "metrics: connection failed");
            }
        });
    }
}

/// Binds the metrics address.
pub(crate) async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("listening for metrics on {addr}"), e))
}
