//! A load generator: concurrent clients classifying images, each request on a fresh attested
//! connection or on one kept alive, summarised as throughput and latency percentiles.

use crate::{error_chain, ClientError, Connection, Connector};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The server, `HOST:PORT`.
    pub server: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Requests in all, shared among the clients.
    pub requests: usize,
    /// Reuse each client's connection (HTTP keep-alive), or connect and verify afresh for
    /// every request.
    pub keep_alive: bool,
    /// `top_k` of every request.
    pub top_k: usize,
}

/// What happened.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Concurrent clients.
    pub clients: usize,
    /// Whether connections were kept alive.
    pub keep_alive: bool,
    /// Requests answered with predictions.
    pub ok: usize,
    /// Requests that failed.
    pub errors: usize,
    /// The first failure, when there was one.
    pub first_error: Option<String>,
    /// Wall time of the whole run, seconds.
    pub seconds: f64,
    /// Answered requests per second.
    pub images_per_s: f64,
    /// Median latency of a request (with its connection and handshake when not kept alive), ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Slowest request, ms.
    pub max_ms: f64,
    /// Median time to connect and verify the server (TCP, TLS handshake, evidence, policy), ms.
    pub connect_p50_ms: f64,
    /// Connections made.
    pub connections: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} client(s), {}: {} ok, {} error(s) in {:.2} s = {:.1} images/s; latency p50 {:.1} ms, \
             p99 {:.1} ms, max {:.1} ms; {} connection(s), connect+verify p50 {:.1} ms",
            self.clients,
            if self.keep_alive {
                "keep-alive"
            } else {
                "a new connection per request"
            },
            self.ok,
            self.errors,
            self.seconds,
            self.images_per_s,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.connections,
            self.connect_p50_ms
        )?;
        if let Some(e) = &self.first_error {
            write!(f, "\nfirst error: {e}")?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    connects: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

/// Runs the load: `opts.clients` tasks on a multi-threaded runtime, taking requests from a
/// shared counter, cycling through `images`. Fails only if the options are unusable; request
/// failures are counted in the summary.
pub fn run(
    connector: &Connector,
    images: &[Vec<u8>],
    opts: &BenchOptions,
) -> Result<Summary, ClientError> {
    if opts.clients == 0 || opts.requests == 0 || images.is_empty() {
        return Err(ClientError::Response {
            server: opts.server.clone(),
            problem: "a load test needs at least one client, one request and one image".into(),
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ClientError::Runtime)?;
    let images: Arc<Vec<Vec<u8>>> = Arc::new(images.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..opts.clients {
            let connector = connector.clone();
            let images = images.clone();
            let next = next.clone();
            let tally = tally.clone();
            let opts = opts.clone();
            tasks.push(tokio::spawn(async move {
                let mut connection: Option<Connection> = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= opts.requests {
                        break;
                    }
                    let t = Instant::now();
                    let mut connect_time = None;
                    let outcome = async {
                        if !opts.keep_alive || !connection.as_ref().is_some_and(|c| c.is_open()) {
                            let c = connector.connect(&opts.server).await?;
                            connect_time = Some(t.elapsed());
                            connection = Some(c);
                        }
                        let c = connection.as_mut().expect("connected above");
                        c.classify(&images[i % images.len()], opts.top_k).await
                    }
                    .await;
                    let took = t.elapsed();
                    if !opts.keep_alive {
                        connection = None;
                    }
                    let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(c) = connect_time {
                        tally.connects.push(c);
                    }
                    match outcome {
                        Ok(_) => tally.latencies.push(took),
                        Err(e) => {
                            connection = None;
                            tally.errors += 1;
                            if tally.first_error.is_none() {
                                tally.first_error = Some(error_chain(&e));
                            }
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    tally.latencies.sort_unstable();
    tally.connects.sort_unstable();
    let ok = tally.latencies.len();
    Ok(Summary {
        clients: opts.clients,
        keep_alive: opts.keep_alive,
        ok,
        errors: tally.errors,
        first_error: tally.first_error,
        seconds,
        images_per_s: ok as f64 / seconds,
        p50_ms: percentile(&tally.latencies, 0.50),
        p99_ms: percentile(&tally.latencies, 0.99),
        max_ms: tally
            .latencies
            .last()
            .map_or(0.0, |d| d.as_secs_f64() * 1e3),
        connect_p50_ms: percentile(&tally.connects, 0.50),
        connections: tally.connects.len(),
    })
}

/// The `q` quantile of sorted durations (nearest rank), in ms.
fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.5), 50.0);
        assert_eq!(percentile(&d, 0.99), 99.0);
        assert_eq!(percentile(&d[..1], 0.99), 1.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
