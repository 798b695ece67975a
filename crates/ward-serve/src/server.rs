//! The HTTPS endpoint: TLS with the RA-TLS identity, HTTP/1.1 and HTTP/2, limits, workers.

use crate::api::{Attestation, Classified, ErrorBody};
use crate::body::{wipe, WipedBuf};
use crate::builtin::ServeArgs;
use crate::ServeError;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Query, State};
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use ward_infer::Classifier;
use ward_ratls::RaTlsIdentity;
use ward_runtime::Context;
use zeroize::Zeroizing;

/// How much the service takes on. Every limit bounds memory or time; together they bound the
/// server's peak memory: about `max_connections × max_body` for requests being read, plus one
/// decoded image per worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at once; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Largest request body (an image, or a multipart form holding one), in bytes.
    pub max_body: usize,
    /// Requests waiting for a worker beyond which new ones get 503 at once.
    pub max_queued: usize,
    /// Threads running inference, one image each (0: one per core). A request alone uses the
    /// classifier's own thread pool (see [`ward_infer::Classifier::set_threads`]).
    pub workers: usize,
    /// Time for one request, from its headers to its answer (reading the body, waiting for a
    /// worker, inference).
    pub request_timeout: Duration,
    /// Time for a client to complete the TLS handshake, and to send a request's headers.
    pub handshake_timeout: Duration,
    /// HTTP/2 streams at once per connection.
    pub max_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_body: 16 << 20,
            max_queued: 256,
            workers: 0,
            request_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_streams: 16,
        }
    }
}

impl Limits {
    fn validate(&self) -> Result<(), ServeError> {
        let bad = |name, problem: &str| {
            Err(ServeError::Limit {
                name,
                problem: problem.to_owned(),
            })
        };
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if self.max_body < 64 {
            return bad("max_body", "must be at least 64 bytes");
        }
        if self.request_timeout.is_zero() || self.handshake_timeout.is_zero() {
            return bad("timeouts", "must be more than 0 seconds");
        }
        if self.max_streams == 0 {
            return bad("max_streams", "must be at least 1");
        }
        if self.workers > 1024 {
            return bad("workers", "at most 1024");
        }
        Ok(())
    }

    fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

/// What the service has done since it started (counts only: nothing of any request).
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Connections whose TLS handshake completed.
    pub connections: AtomicU64,
    /// Handshakes that failed or timed out.
    pub failed_handshakes: AtomicU64,
    /// Images classified.
    pub classified: AtomicU64,
    /// Requests refused with a 4xx.
    pub client_errors: AtomicU64,
    /// Requests refused because every worker was busy and the queue was full (503).
    pub busy: AtomicU64,
    /// Requests that ran out of time.
    pub timed_out: AtomicU64,
}

struct Shared {
    classifier: Classifier,
    workers: Semaphore,
    worker_count: usize,
    queued: AtomicUsize,
    limits: Limits,
    attestation: Attestation,
    stats: Arc<Stats>,
    started: Instant,
    model: String,
}

/// A loaded model and the identity that serves it, ready to listen.
pub struct Service {
    shared: Arc<Shared>,
    identity: Arc<RaTlsIdentity>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("model", &self.shared.model)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// The service a booted `ward:serve` workload describes: its model, labels and spec read
    /// through the workload's VFS, and the RA-TLS identity the provisioning servers saw (or, when
    /// none was contacted, a new one from the workload's attester, naming the same workload).
    pub fn from_context(ctx: &Context, limits: Limits) -> Result<Service, ServeError> {
        let entrypoint = ctx.manifest.manifest.workload_name().to_owned();
        if entrypoint != "ward:serve" {
            return Err(ServeError::NotServe(entrypoint));
        }
        let args = ServeArgs::from_argv(&ctx.argv).map_err(ServeError::Args)?;
        let classifier =
            ward_classify::load(&args.classify_args(), &ward_classify::VfsInputs(&ctx.vfs))?;
        let identity = match (&ctx.identity, &ctx.attester) {
            (Some(identity), _) => identity.clone(),
            (None, Some(attester)) => Arc::new(
                RaTlsIdentity::generate_for_workload(attester.as_ref(), &ctx.manifest.workload())
                    .map_err(ServeError::Identity)?,
            ),
            (None, None) => return Err(ServeError::NoAttester),
        };
        Service::new(
            classifier,
            identity,
            args.model.display().to_string(),
            limits,
        )
    }

    /// A service answering with `classifier` under `identity`; `model` names the model in
    /// `/v1/health`.
    pub fn new(
        classifier: Classifier,
        identity: Arc<RaTlsIdentity>,
        model: String,
        limits: Limits,
    ) -> Result<Service, ServeError> {
        limits.validate()?;
        let cert =
            ward_ratls::parse_certificate(identity.cert_der()).map_err(ServeError::Identity)?;
        let attestation = Attestation {
            tee: identity.tee().to_string(),
            evidence_form: identity.form().to_string(),
            certificate_pem: pem::encode(&pem::Pem::new("CERTIFICATE", identity.cert_der())),
            evidence_hex: hex::encode(cert.quote()),
            workload: cert.workload().and_then(|w| serde_json::to_value(w).ok()),
        };
        let worker_count = limits.worker_count();
        Ok(Service {
            shared: Arc::new(Shared {
                classifier,
                workers: Semaphore::new(worker_count),
                worker_count,
                queued: AtomicUsize::new(0),
                limits,
                attestation,
                stats: Arc::default(),
                started: Instant::now(),
                model,
            }),
            identity,
        })
    }

    /// The routes, without TLS (for tests of the HTTP layer; [`Service::bind`] serves them over
    /// RA-TLS).
    fn router(&self) -> Router {
        Router::new()
            .route("/v1/classify", post(classify))
            .route("/v1/health", get(health))
            .route("/v1/attestation", get(attestation))
            .route("/v1/openapi.json", get(openapi))
            .fallback(not_found)
            // The multipart extractor's own limit (2 MB by default) would otherwise apply
            // before ours; a form's boundaries and headers take a little more than the image.
            .layer(DefaultBodyLimit::max(
                self.shared.limits.max_body.saturating_add(64 << 10),
            ))
            .with_state(self.shared.clone())
    }

    /// Listens on `addr` (port 0 picks a free one) and serves until [`Server::shutdown`].
    /// Call within a tokio runtime with the time and I/O drivers on.
    pub async fn bind(self, addr: SocketAddr) -> Result<Server, ServeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Io {
                context: format!("listening on {addr}"),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| ServeError::Io {
            context: "reading the listening address".into(),
            source,
        })?;
        let mut tls = self
            .identity
            .server_config()
            .map_err(ServeError::Identity)?;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let (stop, stopped) = watch::channel(false);
        let stats = self.shared.stats.clone();
        let task = tokio::spawn(accept_loop(listener, acceptor, self, stopped));
        Ok(Server {
            addr: local,
            stop,
            task,
            stats,
        })
    }
}

/// A running service.
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Stops accepting, lets requests in progress finish (up to `grace`), then returns.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(grace + Duration::from_secs(1), self.task).await;
    }

    /// Serves until the task ends (it ends only after [`Server::shutdown`] or a panic).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    service: Service,
    mut stopped: watch::Receiver<bool>,
) {
    let shared = service.shared.clone();
    let limits = shared.limits.clone();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout)
        .keep_alive(true);
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let http = Arc::new(http);
    let hyper_service = TowerToHyperService::new(service.router());
    loop {
        // A permit before accepting: past the limit, clients wait in the accept queue rather
        // than being taken on and starved.
        let permit = tokio::select! {
            _ = stopped.changed() => break,
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, _peer) = tokio::select! {
            _ = stopped.changed() => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let http = http.clone();
        let svc = hyper_service.clone();
        let stats = shared.stats.clone();
        let handshake_timeout = limits.handshake_timeout;
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    stats.failed_handshakes.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    stats.failed_handshakes.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            };
            stats.connections.fetch_add(1, Ordering::Relaxed);
            let conn = http.serve_connection(TokioIo::new(tls), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!("connection ended with an error: {e}");
            }
        });
    }
    drop(listener);
    let grace = limits.request_timeout;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {grace:?}; closing them");
    }
}

/// An answer that is not 200: a status and what was wrong.
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(ErrorBody {
                error: &self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

#[derive(Deserialize)]
struct ClassifyQuery {
    top_k: Option<usize>,
}

/// Counts the request as waiting for a worker while it lives.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn classify(State(s): State<Arc<Shared>>, request: Request<Body>) -> Response {
    let t = Instant::now();
    let deadline = tokio::time::Instant::now() + s.limits.request_timeout;
    let answer = match tokio::time::timeout_at(deadline, classify_request(&s, request)).await {
        Ok(a) => a,
        Err(_) => {
            s.stats.timed_out.fetch_add(1, Ordering::Relaxed);
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request took longer than the server's limit of {:?}",
                    s.limits.request_timeout
                ),
            ))
        }
    };
    match answer {
        Ok(r) => {
            tracing::info!(
                status = 200,
                ms = t.elapsed().as_secs_f64() * 1e3,
                "POST /v1/classify"
            );
            r
        }
        Err(e) => {
            if e.status.is_client_error() {
                s.stats.client_errors.fetch_add(1, Ordering::Relaxed);
            }
            // The reason is ward's own words (never the image's bytes), but it stays out of the
            // log all the same: the status says enough there.
            tracing::info!(status = e.status.as_u16(), "POST /v1/classify");
            e.into_response()
        }
    }
}

async fn classify_request(s: &Arc<Shared>, request: Request<Body>) -> Result<Response, ApiError> {
    let query = Query::<ClassifyQuery>::try_from_uri(request.uri())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("query: {}", e.body_text())))?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_ascii_lowercase();
    let expected = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let max = s.limits.max_body;
    if expected > max {
        return Err(too_large(max));
    }
    // Anything but a form is the image itself, whatever its declared type (`curl --data-binary`
    // says application/x-www-form-urlencoded): the decoder recognises the format by its bytes.
    let (image, form_top_k) = if content_type.starts_with("multipart/form-data") {
        read_multipart(request, max).await?
    } else {
        (read_body(request.into_body(), expected, max).await?, None)
    };
    if image.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the request has no image: send the image's bytes as the body",
        ));
    }
    let top_k = match (query.top_k, form_top_k) {
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => 5,
    };
    if top_k == 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "top_k must be at least 1",
        ));
    }

    // Wait for a worker, unless too many already do.
    if s.queued.fetch_add(1, Ordering::Relaxed) >= s.limits.max_queued + s.worker_count {
        s.queued.fetch_sub(1, Ordering::Relaxed);
        s.stats.busy.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "every worker is busy and the queue is full; retry shortly",
        ));
    }
    let queued_at = Instant::now();
    let queued = Queued(&s.queued);
    let permit =
        s.workers.acquire().await.map_err(|_| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the service is stopping")
        })?;
    drop(queued);
    let queued_ms = queued_at.elapsed().as_secs_f64() * 1e3;
    let worker = s.clone();
    let started = Instant::now();
    // Alone (no other request running or waiting), an image may use the classifier's whole
    // pool; otherwise it runs on its worker thread only, so N requests use N cores without
    // splitting each one (which costs throughput).
    let alone = s.queued.load(Ordering::Relaxed) == 0
        && s.workers.available_permits() + 1 == s.worker_count;
    let result = tokio::task::spawn_blocking(move || {
        let r = if alone {
            worker.classifier.classify(&image, top_k)
        } else {
            worker.classifier.classify_on_calling_thread(&image, top_k)
        };
        drop(image);
        r
    })
    .await;
    drop(permit);
    let inference_ms = started.elapsed().as_secs_f64() * 1e3;
    let predictions = match result {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(inference_error(e)),
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "inference failed (the worker panicked)",
            ))
        }
    };
    s.stats.classified.fetch_add(1, Ordering::Relaxed);
    Ok(Json(Classified {
        predictions: &predictions,
        inference_ms,
        queued_ms,
    })
    .into_response())
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than the server's limit of {max} bytes"),
    )
}

fn inference_error(e: ward_infer::Error) -> ApiError {
    use ward_infer::Error as E;
    let status = match &e {
        E::NotAnImage
        | E::UnsupportedImageFormat(_)
        | E::ImageDecode(_)
        | E::ImageTooLarge(_)
        | E::ImageTooSmall { .. }
        | E::ImageTooElongated { .. }
        | E::InvalidTopK => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!("inference failed: {e}");
    }
    ApiError::new(status, e.to_string())
}

async fn read_body(
    mut body: Body,
    expected: usize,
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let mut buf = WipedBuf::new(expected, max);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("reading the request body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            let pushed = buf.push(&data);
            wipe(data);
            pushed.map_err(|_| too_large(max))?;
        }
    }
    Ok(buf.into_inner())
}

/// The field `image` (or the only file field) of a multipart form, and its `top_k` if given.
async fn read_multipart(
    request: Request<Body>,
    max: usize,
) -> Result<(Zeroizing<Vec<u8>>, Option<usize>), ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| bad(format!("multipart form: {}", e.body_text())))?;
    let mut image: Option<Zeroizing<Vec<u8>>> = None;
    let mut top_k = None;
    let mut total = 0usize;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| bad(format!("multipart form: {}", e.body_text())))?
    {
        let name = field.name().unwrap_or("").to_owned();
        let is_image = name == "image" || (name.is_empty() && field.file_name().is_some());
        if !is_image && name != "top_k" {
            return Err(bad(format!(
                "multipart form: unknown field {name:?} (send \"image\" and optionally \"top_k\")"
            )));
        }
        let mut buf = WipedBuf::new(0, max.saturating_sub(total));
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| bad(format!("multipart form: {}", e.body_text())))?
        {
            let pushed = buf.push(&chunk);
            wipe(chunk);
            pushed.map_err(|_| too_large(max))?;
        }
        let bytes = buf.into_inner();
        total += bytes.len();
        if is_image {
            if image.is_some() {
                return Err(bad("multipart form: more than one image".into()));
            }
            image = Some(bytes);
        } else {
            let k = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| t.trim().parse::<usize>().ok())
                .ok_or_else(|| bad("multipart form: top_k is not a whole number".into()))?;
            top_k = Some(k);
        }
    }
    let image =
        image.ok_or_else(|| bad("multipart form: no field \"image\" holding the image".into()))?;
    Ok((image, top_k))
}

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    model: &'a str,
    classes: usize,
    input_shape: [usize; 4],
    workers: usize,
    queued: usize,
    uptime_s: u64,
    stats: &'a Stats,
}

async fn health(State(s): State<Arc<Shared>>) -> Response {
    Json(Health {
        status: "ok",
        model: &s.model,
        classes: s.classifier.labels().len(),
        input_shape: s.classifier.spec().input_shape(),
        workers: s.worker_count,
        queued: s.queued.load(Ordering::Relaxed),
        uptime_s: s.started.elapsed().as_secs(),
        stats: &s.stats,
    })
    .into_response()
}

async fn attestation(State(s): State<Arc<Shared>>) -> Response {
    Json(&s.attestation).into_response()
}

async fn openapi() -> Response {
    Json(crate::api::openapi()).into_response()
}

async fn not_found(request: Request<Body>) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route {} {}; the service answers POST /v1/classify, GET /v1/health, \
             GET /v1/attestation and GET /v1/openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response()
}
