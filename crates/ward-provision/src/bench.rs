//! A load generator: many concurrent simulated RA-TLS clients fetching one secret, and a
//! summary of throughput and latency. For measuring a server, not for production clients.

use crate::{Error, Result};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use ward_attest::attester::SimAttester;
use ward_attest::sim::{SimIdentity, SimPlatformKey};
use ward_ratls::{EvidenceForm, RaTlsIdentity};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The server (`host:port`).
    pub server: String,
    /// The CA chain (PEM) that signed the server's certificate.
    pub ca_pem: Vec<u8>,
    /// The simulated platform key the clients' evidence is signed with.
    pub sim_key: PathBuf,
    /// The secret each request asks for.
    pub secret: String,
    /// Concurrent clients (each with its own RA-TLS identity), at least 1.
    pub clients: usize,
    /// Requests (TLS connections) per client, at least 1.
    pub requests: usize,
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Successful provisions.
    pub provisions: usize,
    /// Failed requests.
    pub errors: usize,
    /// Wall time of the timed requests.
    pub elapsed: Duration,
    /// Median latency of the successful requests.
    pub p50: Duration,
    /// 99th-percentile latency of the successful requests.
    pub p99: Duration,
    /// The first error seen, with its causes.
    pub first_error: Option<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self.provisions as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        write!(
            f,
            "{} provision{}, {} error{}, {rate:.0}/s, p50 {:.1} ms, p99 {:.1} ms",
            self.provisions,
            if self.provisions == 1 { "" } else { "s" },
            self.errors,
            if self.errors == 1 { "" } else { "s" },
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3
        )
    }
}

/// Runs the load: every client makes its requests one after another, all clients at once.
/// Evidence generation is not part of the timed requests.
pub fn run(opts: &BenchOptions) -> Result<Summary> {
    if opts.clients == 0 || opts.requests == 0 {
        return Err(Error::InvalidRequest(
            "a benchmark needs at least 1 client and 1 request per client".into(),
        ));
    }
    let identities: Vec<RaTlsIdentity> = (0..opts.clients)
        .map(|_| {
            let key = SimPlatformKey::load(&opts.sim_key).map_err(|e| {
                Error::config(
                    opts.sim_key.display().to_string(),
                    "is not a simulated platform key",
                    Some(Box::new(e)),
                )
            })?;
            let id = SimIdentity {
                mr_enclave: [0; 32],
                mr_signer: [0; 32],
                isv_prod_id: 0,
                isv_svn: 0,
                debug: false,
            };
            Ok(RaTlsIdentity::generate(
                &SimAttester::new(key, id),
                EvidenceForm::Dice,
            )?)
        })
        .collect::<Result<_>>()?;
    let servers = [opts.server.clone()];
    let start = Instant::now();
    let results: Vec<(Vec<Duration>, usize, Option<String>)> = std::thread::scope(|s| {
        let workers: Vec<_> = identities
            .iter()
            .map(|identity| {
                let servers = &servers;
                s.spawn(move || {
                    let mut lat = Vec::with_capacity(opts.requests);
                    let mut errors = 0;
                    let mut first_error = None;
                    for _ in 0..opts.requests {
                        let t = Instant::now();
                        match crate::client::fetch(
                            servers,
                            &opts.ca_pem,
                            identity,
                            &[opts.secret.as_str()],
                        ) {
                            Ok(_) => lat.push(t.elapsed()),
                            Err(e) => {
                                errors += 1;
                                first_error.get_or_insert_with(|| crate::server::error_chain(&e));
                            }
                        }
                    }
                    (lat, errors, first_error)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join().unwrap_or_else(|_| {
                    (
                        Vec::new(),
                        opts.requests,
                        Some("client thread panicked".into()),
                    )
                })
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let mut all: Vec<Duration> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    all.sort();
    let pct = |p: f64| -> Duration {
        if all.is_empty() {
            return Duration::ZERO;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i]
    };
    Ok(Summary {
        provisions: all.len(),
        errors: results.iter().map(|r| r.1).sum(),
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        first_error: results.iter().find_map(|r| r.2.clone()),
    })
}
