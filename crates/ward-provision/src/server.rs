//! The provisioning server (tokio + rustls, TLS 1.3 only).
//!
//! Each connection: a TLS handshake (bounded by `handshake_timeout_ms`) that requires a client
//! certificate and verifies its evidence and key binding, but applies no policy; then one
//! request (bounded by `idle_timeout_ms` and `max_request_bytes`); each requested secret's own
//! policy is evaluated on the verified claims; the decisions are appended to the audit log and
//! flushed to disk; only then are the answers sent. At most `max_connections` connections are
//! served at once. A client that stalls, sends garbage or fails the handshake only loses its own
//! connection.
//!
//! [`Server::reloader`] swaps in new secrets and policies while serving (`ward provision serve`
//! does it on SIGHUP): all of them load, or none change and the old ones keep serving.
//! Connections already deciding finish with the set they started with.

use crate::audit::{AuditLog, Record, SecretDecision};
use crate::config::{LoadedSecret, ServerConfig};
use crate::metrics::{Metrics, UNKNOWN_SECRET};
use crate::protocol::{
    encode_answer, encode_gramine_answer, read_request, BadRequest, Request, Status,
};
use crate::ratelimit::FailureLimiter;
use crate::{Error, Limits, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::NoServerSessionStorage;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use ward_attest::{TeeKind, VerifiedClaims};
use ward_ratls::{EvidenceVerifier, RaTlsClientCertVerifier, VerificationCache};
use zeroize::Zeroizing;

/// How much a rejected client may still send before the server stops draining it.
const DRAIN_LIMIT: usize = 64 * 1024;

struct Shared {
    acceptor: TlsAcceptor,
    verifier: Arc<RaTlsClientCertVerifier>,
    secrets: std::sync::RwLock<Arc<Vec<LoadedSecret>>>,
    /// Whether any loaded policy allows simulated evidence; when none does, simulated evidence
    /// is refused at the handshake, before any policy sees it (recomputed on reload).
    sim_trusted: AtomicBool,
    audit: AuditLog,
    limits: Limits,
    /// Unauthenticated failures per address: logged one by one up to a budget, then counted.
    failures: FailureLimiter,
    metrics: Arc<Metrics>,
}

/// Says, once per load, what each secret's policy lets through beyond the strict defaults.
fn warn_about(secrets: &[LoadedSecret]) {
    for s in secrets {
        for w in s.policy.warnings() {
            tracing::warn!("secret {:?}: {w}", s.name);
        }
    }
}

fn any_allows_simulated(secrets: &[LoadedSecret]) -> bool {
    secrets.iter().any(|s| s.policy.allows_simulated())
}

/// Swaps a running server's secrets and policies (see [`Server::reloader`]).
#[derive(Clone)]
pub struct Reloader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

impl Reloader {
    /// Loads every secret and policy `config` names and, only if all of them load, makes them
    /// the server's; otherwise the server keeps the ones it has and the error says why. Returns
    /// the names now served. The listen address, TLS certificate and limits are not reloaded.
    pub fn reload(&self, config: &ServerConfig) -> Result<Vec<String>> {
        let loaded = config.validate().and_then(|()| config.load_secrets());
        self.shared.metrics.reload(loaded.is_ok());
        let secrets = loaded?;
        self.shared.metrics.set_secrets(secrets.len());
        warn_about(&secrets);
        let names = secrets.iter().map(|s| s.name.clone()).collect();
        let sim = any_allows_simulated(&secrets);
        let mut guard = self
            .shared
            .secrets
            .write()
            .unwrap_or_else(|p| p.into_inner());
        self.shared.sim_trusted.store(sim, Ordering::SeqCst);
        *guard = Arc::new(secrets);
        drop(guard);
        Ok(names)
    }

    /// As [`Reloader::reload`], from `source`: a configuration file is read again (so edited
    /// `[[secret]]` entries count too); a configuration built in code is reloaded as it is (its
    /// secret and policy files are read again).
    pub fn reload_from(&self, source: &ConfigSource) -> Result<Vec<String>> {
        match source {
            ConfigSource::File(path) => self.reload(&ServerConfig::load(path)?),
            ConfigSource::Fixed(config) => self.reload(config),
        }
    }
}

/// Where a reload takes the configuration from (see [`Reloader::reload_from`]).
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// A configuration file, read again at each reload.
    File(std::path::PathBuf),
    /// A configuration built in code (e.g. from command-line flags).
    Fixed(Box<ServerConfig>),
}

/// A bound server, not yet serving. [`Server::run`] serves until a shutdown future completes;
/// [`Server::spawn`] serves in a task.
pub struct Server {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.listener.local_addr().ok())
            .field(
                "secrets",
                &self
                    .shared
                    .secrets()
                    .iter()
                    .map(|s| s.name.clone())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A server running in a task.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address `GET /metrics` is served on, when the configuration asks for it.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops accepting connections and waits for the accept loop to end (connections in
    /// progress finish on their own).
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .await
            .map_err(|e| Error::io("server task", std::io::Error::other(e.to_string())))?
    }
}

/// An error and its causes on one line, for the audit log.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    ward_attest::ErrorChain(e).to_string()
}

fn config_err(
    file: &std::path::Path,
    problem: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::config(file.display().to_string(), problem, Some(Box::new(source)))
}

fn tls_config(
    config: &ServerConfig,
    verifier: Arc<RaTlsClientCertVerifier>,
) -> Result<rustls::ServerConfig> {
    let chain_path = config.resolve(&config.cert_chain);
    let chain_pem = std::fs::read(&chain_path)
        .map_err(|e| config_err(&chain_path, "`cert_chain` cannot be read", e))?;
    let chain = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| config_err(&chain_path, "`cert_chain` is not valid PEM", e))?;
    if chain.is_empty() {
        return Err(Error::config(
            chain_path.display().to_string(),
            "`cert_chain`: no PEM CERTIFICATE in the file",
            None,
        ));
    }
    let key_path = config.resolve(&config.key);
    let key_pem = Zeroizing::new(
        std::fs::read(&key_path).map_err(|e| config_err(&key_path, "`key` cannot be read", e))?,
    );
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| config_err(&key_path, "`key` is not a PEM private key", e))?;
    let tls_err = |source| Error::Tls {
        peer: "config".into(),
        source,
    };
    let mut tls = rustls::ServerConfig::builder_with_provider(ward_ratls::crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    // No resumption: every connection verifies the client's evidence afresh.
    tls.session_storage = Arc::new(NoServerSessionStorage {});
    tls.send_tls13_tickets = 0;
    Ok(tls)
}

impl Server {
    /// Loads everything `config` names (TLS certificate and key, secrets, policies, audit log)
    /// and binds its listen address. `evidence` verifies client evidence (typically a
    /// [`ward_attest::AnyVerifier`] with the simulated and/or DCAP verifier, e.g. from
    /// `ward_pccs::sim_and_dcap_verifier`).
    pub async fn bind(
        config: &ServerConfig,
        evidence: Arc<dyn EvidenceVerifier>,
    ) -> Result<Server> {
        let secrets = config.load_secrets()?;
        warn_about(&secrets);
        // Each secret has its own policy, applied to the claims after the handshake.
        let verifier = Arc::new(
            RaTlsClientCertVerifier::defer_verification(evidence).with_cache(
                VerificationCache::new(config.limits.max_connections.saturating_mul(2).max(64)),
            ),
        );
        let tls = tls_config(config, verifier.clone())?;
        let audit = AuditLog::open(
            &config.resolve(&config.audit_log),
            config.audit_max_bytes,
            config.audit_keep,
        )?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::io(format!("listening on {}", config.listen), e))?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(crate::metrics::bind(addr).await?),
            None => None,
        };
        let metrics = Arc::new(Metrics::new());
        metrics.set_secrets(secrets.len());
        Ok(Server {
            listener,
            metrics_listener,
            shared: Arc::new(Shared {
                acceptor: TlsAcceptor::from(Arc::new(tls)),
                verifier,
                sim_trusted: AtomicBool::new(any_allows_simulated(&secrets)),
                secrets: std::sync::RwLock::new(Arc::new(secrets)),
                audit,
                limits: config.limits,
                failures: FailureLimiter::new(
                    config.limits.failures_burst,
                    config.limits.failures_per_minute,
                    config.limits.failures_report_ms,
                ),
                metrics,
            }),
        })
    }

    /// A handle that swaps this server's secrets and policies while it serves.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            shared: self.shared.clone(),
        }
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("local address", e))
    }

    /// The address `GET /metrics` is served on, when the configuration asks for it.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().map_err(|e| Error::io("metrics address", e)))
            .transpose()
    }

    /// Serves until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let limit = Arc::new(Semaphore::new(self.shared.limits.max_connections));
        let metrics_task = self.metrics_listener.take().map(|l| {
            tracing::info!(
                addr = ?l.local_addr().ok(),
                "metrics at GET /metrics (plain HTTP, no authentication)"
            );
            tokio::spawn(crate::metrics::serve(l, self.shared.metrics.clone()))
        });
        let reporter = {
            let shared = self.shared.clone();
            let every = Duration::from_millis(shared.limits.failures_report_ms);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    for a in shared.failures.due(std::time::Instant::now()) {
                        shared.log(Record::aggregate(a)).await;
                    }
                }
            })
        };
        tokio::pin!(shutdown);
        tracing::info!(
            addr = ?self.listener.local_addr().ok(),
            secrets = self.shared.secrets().len(),
            "provisioning server listening"
        );
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                p = limit.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (tcp, peer) = tokio::select! {
                _ = &mut shutdown => break,
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // An address over its failure budget is closed before the handshake: a flood costs
            // neither evidence verification nor an audit sync per attempt (it is counted).
            if !self
                .shared
                .failures
                .admit(peer.ip(), std::time::Instant::now())
            {
                self.shared.metrics.failure("rate_limited");
                drop(tcp);
                continue;
            }
            // Small messages: without this, Nagle + delayed ACK add ~40 ms per exchange.
            let _ = tcp.set_nodelay(true);
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let _permit = permit;
                shared.handle(tcp, peer).await;
            });
        }
        reporter.abort();
        if let Some(t) = metrics_task {
            t.abort();
        }
        // Nothing counted is lost at shutdown.
        for a in self.shared.failures.drain() {
            self.shared.log(Record::aggregate(a)).await;
        }
        tracing::info!("provisioning server stopped accepting connections");
        Ok(())
    }

    /// Serves in a new task; the handle stops it.
    pub fn spawn(self) -> Result<ServerHandle> {
        let local_addr = self.local_addr()?;
        let metrics_addr = self.metrics_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            let _ = stopped.await;
        }));
        Ok(ServerHandle {
            local_addr,
            metrics_addr,
            stop: Some(stop),
            task,
        })
    }
}

/// Binds `config`'s address and serves until `shutdown` completes.
pub async fn serve(
    config: &ServerConfig,
    evidence: Arc<dyn EvidenceVerifier>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    Server::bind(config, evidence).await?.run(shutdown).await
}

/// Why a secret was refused, for the audit log and the client. The secret's name travels beside
/// it (the decision record, the client's error), so it is not repeated here.
fn refusal_text(e: &ward_attest::Refusal) -> String {
    e.to_string()
}

impl Shared {
    /// The secrets and policies now in force (a reload may replace them at any time).
    fn secrets(&self) -> Arc<Vec<LoadedSecret>> {
        self.secrets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn handle(&self, tcp: TcpStream, peer: SocketAddr) {
        let started = std::time::Instant::now();
        let _counted = self.metrics.connection();
        let peer_s = peer.to_string();
        let handshake = Duration::from_millis(self.limits.handshake_timeout_ms);
        let idle = Duration::from_millis(self.limits.idle_timeout_ms);
        let mut tls = match timeout(handshake, self.acceptor.accept(tcp)).await {
            Err(_) => {
                let reason = format!(
                    "the TLS handshake did not complete within {} ms",
                    self.limits.handshake_timeout_ms
                );
                self.unauthenticated(peer, "handshake_timeout", reason)
                    .await;
                return;
            }
            Ok(Err(e)) => {
                let reason = format!("TLS handshake failed: {e}");
                self.unauthenticated(peer, "handshake_refused", reason)
                    .await;
                return;
            }
            Ok(Ok(s)) => s,
        };
        let cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec());
        // Evidence verification may fetch collateral or take ~0.5 ms of CPU: keep it off the
        // async workers, and bounded by the handshake timeout.
        let verified = match cert {
            None => Err("no client certificate".to_string()),
            Some(c) => {
                let verifier = self.verifier.clone();
                match timeout(
                    handshake,
                    tokio::task::spawn_blocking(move || verifier.verify_deferred(&c)),
                )
                .await
                {
                    Err(_) => Err(format!(
                        "evidence verification did not complete within {} ms",
                        self.limits.handshake_timeout_ms
                    )),
                    Ok(Err(e)) => Err(format!("evidence verification failed: {e}")),
                    Ok(Ok(r)) => r.map_err(|e| error_chain(&*e)),
                }
            }
        };
        let claims = match verified {
            Ok(c) if c.tee == TeeKind::Sim && !self.sim_trusted.load(Ordering::SeqCst) => {
                let reason =
                    "simulated evidence is not trusted: no loaded policy has allow_simulated = true";
                self.unauthenticated(peer, "handshake_refused", reason.into())
                    .await;
                return;
            }
            Ok(c) => c,
            Err(reason) => {
                self.unauthenticated(peer, "handshake_refused", reason)
                    .await;
                return;
            }
        };
        let request =
            match timeout(idle, read_request(&mut tls, self.limits.max_request_bytes)).await {
                Err(_) => {
                    self.metrics.failure("request_timeout");
                    let mut rec = Record::new(&peer_s, "request_timeout").with_claims(&claims);
                    rec.reason = Some(format!(
                        "no complete request within {} ms",
                        self.limits.idle_timeout_ms
                    ));
                    self.log(rec).await;
                    return;
                }
                Ok(Err(BadRequest::Close(reason))) => {
                    self.metrics.failure("bad_request");
                    let mut rec = Record::new(&peer_s, "bad_request").with_claims(&claims);
                    rec.reason = Some(reason);
                    self.log(rec).await;
                    return;
                }
                Ok(Err(BadRequest::Reject(reason))) => {
                    self.metrics.failure("bad_request");
                    let mut rec = Record::new(&peer_s, "bad_request").with_claims(&claims);
                    rec.reason = Some(reason.clone());
                    self.log(rec).await;
                    let answer = encode_answer(Status::RequestRejected, reason.as_bytes());
                    self.finish(&mut tls, &answer, idle, true).await;
                    return;
                }
                Ok(Ok(r)) => r,
            };
        let (protocol, (rec, answer)) = match request {
            Request::Gramine => ("gramine", self.decide_gramine(&peer_s, &claims)),
            Request::Ward(names) => ("ward", self.decide_ward(&peer_s, &claims, names)),
        };
        // The decision is on disk before any secret leaves; if it cannot be recorded, nothing
        // is sent.
        if let Err(e) = self.audit.write(&rec).await {
            self.metrics.failure("audit_write_failed");
            tracing::error!(peer = %peer_s, error = %e, "audit log write failed; no secret sent");
            return;
        }
        self.count_decisions(protocol, &rec, started.elapsed());
        self.trace(&rec);
        if let Some(answer) = answer {
            self.finish(&mut tls, &answer, idle, false).await;
        }
    }

    fn decide_gramine(
        &self,
        peer: &str,
        claims: &VerifiedClaims,
    ) -> (Record, Option<Zeroizing<Vec<u8>>>) {
        let mut rec = Record::new(peer, "gramine").with_claims(claims);
        rec.requested.push("(default)".into());
        let secrets = self.secrets();
        for s in secrets.iter() {
            match s.policy.evaluate(claims) {
                Ok(()) => {
                    rec.decisions.push(SecretDecision {
                        name: s.name.clone(),
                        decision: "granted",
                        rule: None,
                        reason: None,
                    });
                    return (rec, Some(encode_gramine_answer(&s.gramine_bytes())));
                }
                Err(r) => rec.decisions.push(SecretDecision {
                    name: s.name.clone(),
                    decision: "refused",
                    rule: Some(r.rule),
                    reason: Some(refusal_text(&r)),
                }),
            }
        }
        rec.reason = Some(
            "the evidence is allowed none of the configured secrets; closing without an answer \
             (Gramine's protocol cannot carry a refusal)"
                .into(),
        );
        (rec, None)
    }

    fn decide_ward(
        &self,
        peer: &str,
        claims: &VerifiedClaims,
        names: Vec<String>,
    ) -> (Record, Option<Zeroizing<Vec<u8>>>) {
        let mut rec = Record::new(peer, "ward").with_claims(claims);
        let mut out = Zeroizing::new(Vec::new());
        let secrets = self.secrets();
        // Why a secret was not granted stays in the audit log: the client is told only that it
        // was not, and which record says why. An unknown name answers exactly as a refused one,
        // so the answer reveals neither the policy nor which names exist.
        let not_granted = Zeroizing::new(
            format!(
                "not granted (the server's audit record {} says why)",
                rec.id
            )
            .into_bytes(),
        );
        for name in &names {
            let (status, body, decision) = match secrets.iter().find(|s| &s.name == name) {
                None => {
                    let reason = format!("no secret named {name:?} is configured on this server");
                    (
                        Status::Refused,
                        not_granted.clone(),
                        ("unknown", None, Some(reason)),
                    )
                }
                Some(s) => match s.policy.evaluate(claims) {
                    Ok(()) => (Status::Granted, s.bytes.clone(), ("granted", None, None)),
                    Err(r) => (
                        Status::Refused,
                        not_granted.clone(),
                        ("refused", Some(r.rule), Some(refusal_text(&r))),
                    ),
                },
            };
            out.extend_from_slice(&encode_answer(status, &body));
            rec.decisions.push(SecretDecision {
                name: name.clone(),
                decision: decision.0,
                rule: decision.1,
                reason: decision.2,
            });
        }
        rec.requested = names;
        out.extend_from_slice(&encode_answer(Status::Run, rec.id.as_bytes()));
        (rec, Some(out))
    }

    /// Sends `answer`, closes the TLS session, and, for a rejected request, reads away what the
    /// client may still be sending (so closing does not reset the connection before the client
    /// reads the answer).
    async fn finish<S>(&self, tls: &mut S, answer: &[u8], idle: Duration, drain: bool)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let result = timeout(idle, async {
            tls.write_all(answer).await?;
            tls.flush().await?;
            tls.shutdown().await?;
            if drain {
                let mut buf = [0u8; 4096];
                let mut drained = 0;
                while drained < DRAIN_LIMIT {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => drained += n,
                    }
                }
            }
            Ok::<(), std::io::Error>(())
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "sending the answer failed"),
            Err(_) => tracing::debug!("sending the answer timed out"),
        }
    }

    /// Logs a failure before the client was authenticated, within its address's budget:
    /// individually while it lasts (after the counts gathered since it last ran out), otherwise
    /// only counted, to be written as an aggregate.
    /// Counts a decided request in the metrics; a name not configured is counted as
    /// [`UNKNOWN_SECRET`] (client-chosen text never becomes a label).
    fn count_decisions(&self, protocol: &'static str, rec: &Record, took: Duration) {
        self.metrics.request(protocol, took);
        for d in &rec.decisions {
            let secret = if d.decision == "unknown" {
                UNKNOWN_SECRET
            } else {
                d.name.as_str()
            };
            self.metrics.decision(secret, d.decision);
            if let Some(rule) = d.rule {
                self.metrics.refusal(secret, rule);
            }
        }
    }

    async fn unauthenticated(&self, peer: SocketAddr, event: &'static str, reason: String) {
        self.metrics.failure(event);
        let (individually, pending) =
            self.failures
                .failure(peer.ip(), event, Some(&reason), std::time::Instant::now());
        if let Some(a) = pending {
            self.log(Record::aggregate(a)).await;
        }
        if individually {
            let mut rec = Record::new(&peer.to_string(), event);
            rec.reason = Some(reason);
            self.log(rec).await;
        }
    }

    async fn log(&self, rec: Record) {
        if let Err(e) = self.audit.write(&rec).await {
            self.metrics.failure("audit_write_failed");
            tracing::error!(peer = %rec.peer, error = %e, "audit log write failed");
        }
        self.trace(&rec);
    }

    /// The console's view of an attempt: one line per decision on a secret (granted or
    /// refused, which secret, which workload, why), or one line for an attempt that never got
    /// to ask (a refused handshake, a bad request).
    fn trace(&self, rec: &Record) {
        let workload = match (&rec.tee, &rec.measurement) {
            (Some(tee), Some(m)) => {
                let ward = rec
                    .workload_measurement
                    .as_deref()
                    .map(|w| format!(", ward manifest {w}"))
                    .unwrap_or_default();
                format!("{tee} workload {m}{ward}")
            }
            _ => "an unverified client".to_string(),
        };
        if let Some(a) = &rec.aggregated {
            let events = a
                .events
                .iter()
                .map(|(e, n)| format!("{n} {}", e.replace('_', " ")))
                .collect::<Vec<_>>()
                .join(", ");
            tracing::warn!(
                "{} unauthenticated failures from {} counted, not logged one by one ({events}) \
                 [audit {}]; last: {}",
                a.count,
                rec.peer,
                rec.id,
                rec.reason.as_deref().unwrap_or("-")
            );
            return;
        }
        if rec.decisions.is_empty() {
            tracing::info!(
                "{} from {} ({workload}) [audit {}]: {}",
                rec.event.replace('_', " "),
                rec.peer,
                rec.id,
                rec.reason.as_deref().unwrap_or("-")
            );
            return;
        }
        for d in &rec.decisions {
            let reason = d
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            tracing::info!(
                "{} {:?} to {workload} from {} [audit {}]{reason}",
                d.decision,
                d.name,
                rec.peer,
                rec.id
            );
        }
    }
}
