//! `ward serve` and `ward client …`: the attested inference service and its client.

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use ward_attest::claims::VerificationReport;
use ward_client::{bench, Client, Connector};
use ward_runtime::{AttesterKind, BootOptions};

/// Serve a signed `ward:serve` manifest's model over attested HTTPS.
///
/// Boots the manifest as `ward run` does (verify it for this ward binary, attest, fetch its keys
/// from the provisioning servers), loads the model it names through the manifest's file system
/// (a protected model is decrypted in memory), then listens. The TLS certificate is the
/// workload's RA-TLS certificate: clients verify its evidence against their own policy in the
/// handshake (`ward client`, or the Python ward_client) before they send an image.
///
/// Endpoints: POST /v1/classify (the image's bytes, or a multipart form with the field "image";
/// ?top_k=N), GET /v1/health, GET /v1/attestation, GET /v1/openapi.json. Images and results are
/// never logged or written to disk. Ctrl-C or SIGTERM stops it gracefully.
///
/// Example:  ward serve serve.signed.toml --listen 127.0.0.1:8443
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The signed manifest (`ward sign` output) whose loader.entrypoint is "ward:serve".
    #[arg(value_name = "SIGNED_MANIFEST")]
    manifest: PathBuf,
    /// Where to listen (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    listen: std::net::SocketAddr,
    /// Which TEE produces the evidence: sim, gramine or tsm.
    #[arg(long, value_name = "ATTESTER", default_value_t = AttesterKind::Sim)]
    attester: AttesterKind,
    /// Simulated platform key (`ward sim init` makes one).
    #[arg(long, value_name = "KEYFILE", default_value = "ward-sim-platform.pem")]
    sim_key: PathBuf,
    /// Threads running inference, one image each (0: one per core); a request that has the
    /// machine to itself uses all of them.
    #[arg(long, value_name = "N", default_value_t = 0)]
    workers: usize,
    /// Open connections at once (more wait to be accepted).
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_connections: usize,
    /// Largest request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    max_body: usize,
    /// Requests waiting for a worker beyond which new ones get 503 (Retry-After: 1).
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_queued: usize,
    /// Seconds one request may take, from its headers to its answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

#[derive(Subcommand)]
pub(crate) enum ClientCommand {
    /// Classify an image with an attested service, after verifying it against your policy.
    ///
    /// The server's RA-TLS evidence is verified and judged by POLICY during the TLS handshake;
    /// if the policy refuses it, nothing is sent and the refusal names the rule that failed.
    ///
    /// Example:  ward client classify --server 127.0.0.1:8443 --policy policy.toml --image cat.jpg
    Classify(ClassifyArgs),
    /// Verify an attested service against your policy and print what it proved, as `ward
    /// attest verify` prints evidence.
    ///
    /// Example:  ward client attest --server 127.0.0.1:8443 --policy policy.toml
    Attest(AttestArgs),
    /// Load-test an attested service: concurrent clients, each request on a new attested
    /// connection or kept alive; prints throughput and latency percentiles.
    ///
    /// Example:  ward client bench --server 127.0.0.1:8443 --policy policy.toml --image cat.jpg --clients 64
    Bench(BenchArgs),
}

#[derive(Args)]
struct Verification {
    /// The service, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    server: String,
    /// Your policy (TOML, as for `ward attest verify --policy`): which workload measurements,
    /// signers, TEEs and TCB statuses you accept.
    #[arg(long, value_name = "POLICY")]
    policy: PathBuf,
    /// Also accept SGX/TDX DCAP evidence, with collateral fetched from this PCCS/PCS URL (cached).
    #[arg(long, value_name = "URL")]
    pccs: Option<String>,
    /// Where fetched collateral is cached.
    #[arg(long, value_name = "DIR", default_value = "collateral-cache")]
    cache_dir: PathBuf,
    /// Seconds for connecting, the handshake and each answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

impl Verification {
    fn connector(&self) -> Result<Connector> {
        Ok(
            Connector::from_policy_file(&self.policy, self.pccs.as_deref(), &self.cache_dir)?
                .with_timeout(Duration::from_secs(self.timeout.max(1))),
        )
    }
}

#[derive(Args)]
pub(crate) struct ClassifyArgs {
    #[command(flatten)]
    verification: Verification,
    /// The image: PNG, JPEG, GIF or WebP.
    #[arg(long, value_name = "PATH")]
    image: PathBuf,
    /// How many classes to ask for.
    #[arg(long, value_name = "K", default_value_t = 5)]
    top: usize,
    /// Print JSON: {"server", "predictions": [{"rank", "index", "label", "probability"}],
    /// "evidence": what the server proved}.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct AttestArgs {
    #[command(flatten)]
    verification: Verification,
    /// Print what the server proved as JSON (the fields of `ward attest verify --json`).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    verification: Verification,
    /// Images to send, in turn (repeatable).
    #[arg(long = "image", value_name = "PATH", required = true)]
    images: Vec<PathBuf>,
    /// Concurrent clients.
    #[arg(long, value_name = "N", default_value_t = 8)]
    clients: usize,
    /// Requests in all.
    #[arg(long, value_name = "N", default_value_t = 200)]
    requests: usize,
    /// Connect and verify afresh for every request instead of keeping connections alive.
    #[arg(long)]
    new_connections: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn serve(a: ServeArgs) -> Result<ExitCode> {
    if !a.manifest.is_file() {
        bail!(
            "{} is not a file\nhint: give the signed manifest that `ward sign` wrote (NAME.signed.toml)",
            a.manifest.display()
        );
    }
    let t = Instant::now();
    let options = BootOptions {
        runtime_digest: ward_runtime::runtime_digest()?,
        attester: a.attester,
        sim_key: crate::runtime::attester_choice(a.attester, &a.sim_key)?,
        host_args: Vec::new(),
    };
    let ctx = ward_runtime::boot(&a.manifest, options)?;
    let limits = ward_serve::Limits {
        max_connections: a.max_connections,
        max_body: a.max_body,
        max_queued: a.max_queued,
        workers: a.workers,
        request_timeout: Duration::from_secs(a.timeout),
        ..Default::default()
    };
    let service = ward_serve::Service::from_context(&ctx, limits)
        .with_context(|| format!("starting the service of {}", a.manifest.display()))?;
    let m = &ctx.manifest;
    let (measurement, signer) = (m.measurement.to_string(), m.mr_signer.to_string());
    // The keys and the model are in the service now; nothing else of the boot is needed.
    drop(ctx);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let server = service.bind(a.listen).await?;
        let addr = server.local_addr();
        eprintln!(
            "ward:serve measured {measurement} signer {signer}, ready in {:.0?}",
            t.elapsed()
        );
        eprintln!(
            "clients verify it before sending anything: ward client attest --server {addr} \
             --policy POLICY.toml; Ctrl-C stops it"
        );
        // The one line on stdout, for scripts that started it on port 0.
        println!("listening on {addr}");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("stopping: finishing the requests in progress");
        let stats = serde_json::to_string(server.stats()).unwrap_or_default();
        server.shutdown(Duration::from_secs(a.timeout)).await;
        eprintln!("stopped; {stats}");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn client(cmd: ClientCommand) -> Result<ExitCode> {
    match cmd {
        ClientCommand::Classify(a) => classify(a),
        ClientCommand::Attest(a) => attest(a),
        ClientCommand::Bench(a) => run_bench(a),
    }
}

fn classify(a: ClassifyArgs) -> Result<ExitCode> {
    if a.top == 0 {
        bail!("--top must be at least 1");
    }
    // Read before connecting: a mistyped path is known before the server is contacted.
    let image = std::fs::read(&a.image)
        .with_context(|| format!("reading the image {}", a.image.display()))?;
    let v = &a.verification;
    let mut client = Client::new(&v.server, v.connector()?)?;
    let claims = client.attest()?;
    let predictions = client.classify(&image, a.top)?;
    if a.json {
        let object = serde_json::json!({
            "server": v.server,
            "predictions": predictions,
            "evidence": VerificationReport::new(&claims, ward_pccs::system_clock(), Some(&Ok(()))),
        });
        println!("{}", serde_json::to_string_pretty(&object)?);
    } else {
        eprintln!(
            "verified {} ({} evidence, workload {}) against {}",
            v.server,
            claims.tee,
            claims
                .workload
                .map(|w| hex::encode(w.measurement))
                .unwrap_or_else(|| "not named".into()),
            v.policy.display()
        );
        for p in &predictions {
            println!(
                "{:>2}. {:<40} {:>7.3}%",
                p.rank,
                p.label,
                p.probability * 100.0
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn attest(a: AttestArgs) -> Result<ExitCode> {
    let v = &a.verification;
    let mut client = Client::new(&v.server, v.connector()?)?;
    let claims = client.attest()?;
    let report = VerificationReport::new(&claims, ward_pccs::system_clock(), Some(&Ok(())));
    if a.json {
        let mut j = serde_json::to_value(&report)?;
        j["server"] = serde_json::json!(v.server);
        j["policy"] = serde_json::json!(v.policy.display().to_string());
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        println!("Server: {}", v.server);
        print!("{report}");
        println!("\nPolicy: {}: ACCEPTED", v.policy.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn run_bench(a: BenchArgs) -> Result<ExitCode> {
    let images = a
        .images
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading the image {}", p.display())))
        .collect::<Result<Vec<_>>>()?;
    let v = &a.verification;
    let connector = v.connector()?;
    // One verified connection first: a refused or absent server is one clear error, not N.
    Client::new(&v.server, connector.clone())?.attest()?;
    let opts = bench::BenchOptions {
        server: v.server.clone(),
        clients: a.clients,
        requests: a.requests,
        keep_alive: !a.new_connections,
        top_k: 5,
    };
    eprintln!(
        "{} request(s) from {} client(s) to {}…",
        a.requests, a.clients, v.server
    );
    let summary = bench::run(&connector, &images, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{summary}");
    }
    Ok(if summary.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
