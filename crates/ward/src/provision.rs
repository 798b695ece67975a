//! `ward provision …`: the data owner's secret-provisioning server, its client, a first-run
//! setup and a load generator.

use crate::attest::SimClientArgs;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use ward_attest::AnyVerifier;
use ward_provision::config::ServerConfig;
use ward_ratls::{EvidenceForm, RaTlsIdentity};

#[derive(Subcommand)]
pub(crate) enum ProvisionCommand {
    /// Create everything a first run needs in DIR: a development CA and a server certificate
    /// for localhost, a simulated platform key, a random 16-byte wrap key, a policy and a
    /// server configuration.
    Init {
        /// The directory to fill (created; must be empty or absent).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The workload measurement the policy accepts (64 hex characters, as `ward sign`
        /// prints). Without it the policy refuses every client until you put the workload's
        /// identity in it.
        #[arg(long, value_name = "HEX")]
        mr_enclave: Option<String>,
        /// Address the server will listen on.
        #[arg(long, default_value = "127.0.0.1:4433")]
        listen: std::net::SocketAddr,
    },
    /// Run the provisioning server. Clients must present an RA-TLS certificate; each secret is
    /// released only when its own policy accepts the client's verified evidence, and every
    /// decision is appended to the audit log before anything is sent.
    Serve(ServeArgs),
    /// Fetch secrets as an attested client (simulated TEE): make a fresh RA-TLS certificate,
    /// connect to the servers in order, and write each granted secret to OUT_DIR/NAME (0600).
    Fetch(FetchArgs),
    /// Load-test a server with many concurrent simulated RA-TLS clients; prints one summary line.
    Bench(BenchArgs),
    /// Work with policy files (docs/PROVISIONING.md lists every key).
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Load each policy as the server would and say what it lets through: every rule loosened
    /// from the strict defaults (simulated evidence, debug, out-of-date platforms) and every
    /// identity that pins only one layer (on hardware, a platform-only identity accepts any ward
    /// manifest the host runs). Exit 1 if a file does not load, or with --strict if any warns.
    Check {
        /// Policy files (TOML).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Also fail (exit 1) when a policy has warnings.
        #[arg(long)]
        strict: bool,
    },
    /// Show each policy's identities (any one may match) as the server loads them, and its
    /// warnings.
    List {
        /// Policy files (TOML).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Add an [[identity]] to a policy file (created, strict, if absent), keeping its comments.
    /// The edited policy must load, or the file is left untouched. A running server takes the
    /// change on SIGHUP.
    ///
    /// Examples:
    ///   # ward inside a Gramine enclave: the enclave and the ward manifest
    ///   ward provision policy add policy.toml --name "classifier v3" \
    ///       --mr-enclave HEX --mr-signer HEX --min-isv-svn 1 --from-signed classify.signed.toml
    ///   # the simulated TEE (development): the manifest is the enclave
    ///   ward provision policy add policy.toml --name dev --tee sim --from-signed app.signed.toml
    #[command(verbatim_doc_comment)]
    Add(PolicyAddArgs),
    /// Remove the [[identity]] named NAME from a policy file (it must still accept someone).
    Remove {
        /// The policy file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The identity's name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum TeeArg {
    Sgx,
    Tdx,
    Sim,
}

#[derive(Args)]
pub(crate) struct PolicyAddArgs {
    /// The policy file (created if absent).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The identity's name (refusals and the audit log show it); unique in the file.
    #[arg(long)]
    name: String,
    /// Take the ward workload fields (workload_measurement, _signer, _isv_prod_id, _min_isv_svn)
    /// from this signed ward manifest; with --tee sim also the enclave fields, which on the
    /// simulated TEE are the manifest's.
    #[arg(long, value_name = "SIGNED_MANIFEST")]
    from_signed: Option<PathBuf>,
    /// Only evidence from this TEE matches.
    #[arg(long, value_enum)]
    tee: Option<TeeArg>,
    /// SGX MRENCLAVE accepted (repeat for several).
    #[arg(long, value_name = "HEX")]
    mr_enclave: Vec<String>,
    /// SGX MRSIGNER accepted (repeat for several).
    #[arg(long, value_name = "HEX")]
    mr_signer: Vec<String>,
    /// SGX ISV_PROD_ID required.
    #[arg(long, value_name = "N")]
    isv_prod_id: Option<u16>,
    /// Lowest SGX ISV_SVN accepted.
    #[arg(long, value_name = "N")]
    min_isv_svn: Option<u16>,
    /// TDX MRTD accepted (repeat for several).
    #[arg(long, value_name = "HEX")]
    mr_td: Vec<String>,
    /// Any other measurement field of an [[identity]] (rtmr0..rtmr3, mr_config_id, mr_owner,
    /// mr_owner_config, workload_measurement, workload_signer) as FIELD=HEX; repeat a field to
    /// accept several values.
    #[arg(long, value_name = "FIELD=HEX")]
    accept: Vec<String>,
    /// The ward workload's product id required (overrides --from-signed's).
    #[arg(long, value_name = "N")]
    workload_isv_prod_id: Option<u16>,
    /// The lowest ward workload SVN accepted (overrides --from-signed's).
    #[arg(long, value_name = "N")]
    workload_min_isv_svn: Option<u16>,
    /// Print the edited policy instead of writing it.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("source").required(true).multiple(false))]
pub(crate) struct ServeArgs {
    /// Server configuration (TOML; see `ward provision init`).
    #[arg(long, value_name = "FILE", group = "source")]
    config: Option<PathBuf>,
    /// The tutorial's one-key case without a config file: serve FILE (16 raw bytes) as NAME,
    /// with --policy, --cert, --key and --audit-log.
    #[arg(long, value_name = "NAME=FILE", group = "source", requires_all = ["policy", "cert", "key"])]
    secret: Option<String>,
    /// Policy (TOML) for --secret.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Server TLS certificate chain (PEM) for --secret.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Server TLS private key (PEM) for --secret.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Audit log for --secret.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "ward-provision-audit.jsonl"
    )]
    audit_log: PathBuf,
    /// Override the configured listen address.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Serve Prometheus metrics at http://ADDR/metrics (grants, refusals by rule, failures,
    /// decision latency). Plain HTTP without authentication: use a loopback or private address.
    /// Overrides `metrics_listen` in the configuration.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Also accept SGX/TDX DCAP evidence, with collateral fetched from this PCCS/PCS URL (cached).
    #[arg(long, value_name = "URL")]
    pccs: Option<String>,
    /// Where fetched collateral is cached.
    #[arg(long, value_name = "DIR", default_value = "collateral-cache")]
    cache_dir: PathBuf,
}

#[derive(Args)]
pub(crate) struct FetchArgs {
    /// Servers to try in order (`host:port`, separated by `,` `;` or spaces).
    #[arg(long, value_name = "LIST", default_value = "localhost:4433")]
    servers: String,
    /// CA chain (PEM) that signed the server's TLS certificate.
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// Secret names to fetch (repeatable).
    #[arg(long = "name", value_name = "NAME", required = true)]
    names: Vec<String>,
    /// Directory to write the secrets to.
    #[arg(short = 'o', long = "output", value_name = "OUT_DIR")]
    output: PathBuf,
    #[command(flatten)]
    sim: SimClientArgs,
}

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 200, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    clients: usize,
    /// Requests (TLS connections) per client.
    #[arg(long, default_value_t = 10, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    requests: usize,
    /// Benchmark this server (host:port) instead of one started in-process; needs the --dir
    /// it was set up from (its CA and simulated platform key).
    #[arg(long, value_name = "ADDR", requires = "dir")]
    server: Option<String>,
    /// A directory made by `ward provision init` (default: a temporary one).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub(crate) fn run(cmd: ProvisionCommand) -> Result<ExitCode> {
    match cmd {
        ProvisionCommand::Init {
            dir,
            mr_enclave,
            listen,
        } => {
            init(&dir, mr_enclave.as_deref(), listen)?;
            Ok(ExitCode::SUCCESS)
        }
        ProvisionCommand::Serve(a) => serve(a),
        ProvisionCommand::Fetch(a) => fetch(a),
        ProvisionCommand::Bench(a) => bench(a),
        ProvisionCommand::Policy(PolicyCommand::Check { files, strict }) => {
            policy_check(&files, strict)
        }
        ProvisionCommand::Policy(PolicyCommand::List { files }) => policy_list(&files),
        ProvisionCommand::Policy(PolicyCommand::Add(a)) => policy_add(a),
        ProvisionCommand::Policy(PolicyCommand::Remove { file, name }) => {
            policy_remove(&file, &name)
        }
    }
}

/// Creates the first-run directory. Returns the simulated platform's public key.
fn init(dir: &Path, mr_enclave: Option<&str>, listen: std::net::SocketAddr) -> Result<String> {
    let setup = ward_provision::dev::init_dir(dir, mr_enclave, listen)?;
    eprintln!(
        "created in {}: ca.pem (clients trust it), server.pem/server-key.pem, sim-platform.pem, secrets/wrap_key, policy.toml, server.toml",
        dir.display()
    );
    if setup.refuses_until_edited {
        eprintln!(
            "{0} REFUSES EVERY CLIENT until you replace its placeholder [[identity]] with the one \
             `ward sign` prints for your workload (or run init with --mr-enclave):\n  \
             ward provision policy add {0} --name NAME --tee sim --from-signed SIGNED_MANIFEST\n  \
             ward provision policy remove {0} --name 'PLACEHOLDER: replace with the [[identity]] \
             that `ward sign` prints'",
            setup.policy.display()
        );
    }
    eprintln!(
        "start the server:  ward provision serve --config {}",
        setup.server_config.display()
    );
    Ok(setup.sim_public)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(crate) fn evidence_verifier(pccs: Option<&str>, cache_dir: &Path) -> Result<Arc<AnyVerifier>> {
    Ok(Arc::new(ward_pccs::sim_and_dcap_verifier(pccs, cache_dir)?))
}

fn one_key_config(a: &ServeArgs) -> Result<ServerConfig> {
    let spec = a.secret.as_deref().expect("clap requires --secret here");
    let (name, file) = spec
        .split_once('=')
        .context("--secret takes NAME=FILE (e.g. --secret default=wrap_key)")?;
    // clap's `requires_all` guarantees these with --secret.
    let need = |o: &Option<PathBuf>, flag: &str| -> Result<PathBuf> {
        o.clone().with_context(|| format!("--secret needs {flag}"))
    };
    let mut config = ServerConfig::one_key(
        a.listen.unwrap_or_else(|| ([127, 0, 0, 1], 4433).into()),
        need(&a.cert, "--cert")?,
        need(&a.key, "--key")?,
        a.audit_log.clone(),
        name,
        file,
        need(&a.policy, "--policy")?,
        std::env::current_dir()?,
    );
    config.source_name = "the command line".into();
    config.validate()?;
    Ok(config)
}

fn serve(a: ServeArgs) -> Result<ExitCode> {
    let mut config = match &a.config {
        Some(path) => ServerConfig::load(path)?,
        None => one_key_config(&a)?,
    };
    if let Some(l) = a.listen {
        config.listen = l;
    }
    if let Some(m) = a.metrics {
        config.metrics_listen = Some(m);
    }
    let evidence = evidence_verifier(a.pccs.as_deref(), &a.cache_dir)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let server = ward_provision::server::Server::bind(&config, evidence).await?;
        // Installed before "listening" is printed: a SIGHUP from then on reloads, never kills.
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        eprintln!(
            "ward provisioning server listening on {} ({} secret(s); audit log {}); Ctrl-C stops it, SIGHUP reloads secrets and policies",
            server.local_addr()?,
            config.secrets.len(),
            config.resolve(&config.audit_log).display()
        );
        if let Some(m) = server.metrics_addr()? {
            eprintln!("metrics at http://{m}/metrics (plain HTTP, no authentication)");
        }
        // SIGHUP: read the configuration file again (or the --secret/--policy files) and swap
        // in its secrets and policies, all or nothing.
        let reloader = server.reloader();
        let source = match &a.config {
            Some(path) => ward_provision::ConfigSource::File(path.clone()),
            None => ward_provision::ConfigSource::Fixed(Box::new(config.clone())),
        };
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match reloader.reload_from(&source) {
                    Ok(names) => tracing::info!(
                        "reloaded on SIGHUP: serving {} secret(s) ({})",
                        names.len(),
                        names.join(", ")
                    ),
                    Err(e) => tracing::error!(
                        "reload on SIGHUP failed; still serving the previous secrets and policies: {}",
                        ward_attest::ErrorChain(&e)
                    ),
                }
            }
        });
        server
            .run(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn policy_check(files: &[PathBuf], strict: bool) -> Result<ExitCode> {
    let mut failed = false;
    for file in files {
        match ward_attest::Policy::load(file) {
            Err(e) => {
                eprintln!(
                    "{}: does not load: {}",
                    file.display(),
                    ward_attest::ErrorChain(&e)
                );
                failed = true;
            }
            Ok(policy) => {
                let warnings = policy.warnings();
                if warnings.is_empty() {
                    println!(
                        "{}: ok (strict rules; every identity pins both layers)",
                        file.display()
                    );
                } else {
                    println!(
                        "{}: loads, with {} warning(s):",
                        file.display(),
                        warnings.len()
                    );
                    for w in &warnings {
                        println!("  warning: {w}");
                    }
                    failed |= strict;
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn sim_identity(a: &SimClientArgs) -> Result<RaTlsIdentity> {
    Ok(RaTlsIdentity::generate(
        &a.sim_attester()?,
        EvidenceForm::Dice,
    )?)
}

fn fetch(a: FetchArgs) -> Result<ExitCode> {
    let identity = sim_identity(&a.sim)?;
    let ca = std::fs::read(&a.ca).with_context(|| format!("reading {}", a.ca.display()))?;
    let servers = ward_provision::client::parse_server_list(&a.servers);
    let names: Vec<&str> = a.names.iter().map(String::as_str).collect();
    let mut secrets = ward_provision::client::fetch(&servers, &ca, &identity, &names)?;
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("creating {}", a.output.display()))?;
    for name in &a.names {
        let value = secrets
            .take(name)
            .with_context(|| format!("the server did not return {name:?}"))?;
        if name.contains('/') || name.starts_with('.') {
            bail!("secret name {name:?} cannot be used as a file name");
        }
        let path = a.output.join(name);
        ward_fsio::write_atomic(&path, &value[..], 0o600)?;
        eprintln!(
            "received {name:?} ({} bytes) -> {}",
            value.len(),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn bench(a: BenchArgs) -> Result<ExitCode> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            let d = tmp.path().join("provision");
            // The policy names what the bench's simulated clients claim: an all-zero identity.
            init(&d, Some(&"00".repeat(32)), ([127, 0, 0, 1], 0).into())?;
            d
        }
    };
    let rt = runtime()?;
    let mut handle = None;
    let server = match &a.server {
        Some(s) => s.clone(),
        None => {
            let mut config = ServerConfig::load(&dir.join("server.toml"))?;
            config.limits.max_connections = config.limits.max_connections.max(a.clients);
            let evidence = evidence_verifier(None, &dir)?;
            let h = rt.block_on(async {
                ward_provision::server::Server::bind(&config, evidence)
                    .await?
                    .spawn()
            })?;
            let addr = h.local_addr();
            handle = Some(h);
            addr.to_string()
        }
    };
    let ca_path = dir.join("ca.pem");
    let summary = ward_provision::bench::run(&ward_provision::bench::BenchOptions {
        server,
        ca_pem: std::fs::read(&ca_path)
            .with_context(|| format!("reading {}", ca_path.display()))?,
        sim_key: dir.join("sim-platform.pem"),
        secret: "wrap_key".into(),
        clients: a.clients,
        requests: a.requests,
    })?;
    if let Some(e) = &summary.first_error {
        eprintln!("first error: {e}");
    }
    println!("{summary}");
    let errors = summary.errors;
    if let Some(h) = handle {
        rt.block_on(h.shutdown())?;
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn load_policy_file(file: &Path) -> Result<ward_provision::PolicyFile> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading policy {}", file.display()))?;
    Ok(ward_provision::PolicyFile::parse(
        &text,
        &file.display().to_string(),
    )?)
}

/// Writes the edited policy in place (atomically, keeping the file's permissions).
fn write_policy_file(file: &Path, edited: &ward_provision::PolicyFile) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file).map_or(0o644, |m| m.permissions().mode() & 0o7777);
    ward_fsio::write_atomic(file, edited.to_toml().as_bytes(), mode)
        .with_context(|| format!("writing policy {}", file.display()))?;
    Ok(())
}

fn identity_count(f: &ward_provision::PolicyFile) -> String {
    match f.names().len() {
        1 => "1 identity".into(),
        n => format!("{n} identities"),
    }
}

fn policy_list(files: &[PathBuf]) -> Result<ExitCode> {
    let mut failed = false;
    for file in files {
        let f = match load_policy_file(file) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{}: does not load: {e:#}", file.display());
                failed = true;
                continue;
            }
        };
        let Some(policy) = f.policy() else { continue };
        println!(
            "{}: {} (any one may match){}",
            file.display(),
            identity_count(&f),
            if policy.identities().is_empty() {
                "; accept_any_identity = true: the platform alone is judged"
            } else {
                ""
            }
        );
        for (i, id) in policy.identities().iter().enumerate() {
            println!(
                "  [[identity]] #{} {}",
                i + 1,
                id.name()
                    .map(|n| format!("{n:?}"))
                    .unwrap_or_else(|| "(unnamed)".into())
            );
            for line in id.to_toml().lines().filter(|l| !l.starts_with("name = ")) {
                println!("    {line}");
            }
        }
        for w in policy.warnings() {
            println!("  warning: {w}");
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The identity `policy add` describes: the signed manifest's (both layers on the simulated TEE,
/// the workload layer alone otherwise), then every flag on top.
fn identity_from_args(a: &PolicyAddArgs) -> Result<ward_attest::Identity> {
    let tee = a.tee.map(|t| match t {
        TeeArg::Sgx => ward_attest::TeeKind::Sgx,
        TeeArg::Tdx => ward_attest::TeeKind::Tdx,
        TeeArg::Sim => ward_attest::TeeKind::Sim,
    });
    let base = match &a.from_signed {
        None => None,
        Some(path) => {
            let signed = ward_manifest::SignedManifest::load(path)
                .with_context(|| format!("reading the signed manifest {}", path.display()))?;
            Some(if tee == Some(ward_attest::TeeKind::Sim) {
                ward_manifest::identity(&signed)
            } else {
                ward_manifest::workload_identity(&signed)
            })
        }
    };
    let flag = |field: &str, values: &[String]| {
        values
            .iter()
            .map(|v| (field.to_owned(), v.clone()))
            .collect::<Vec<_>>()
    };
    let spec = ward_provision::IdentitySpec {
        name: a.name.clone(),
        tee,
        measurements: [
            flag("mr_enclave", &a.mr_enclave),
            flag("mr_signer", &a.mr_signer),
            flag("mr_td", &a.mr_td),
        ]
        .concat(),
        accept: a.accept.clone(),
        isv_prod_id: a.isv_prod_id,
        min_isv_svn: a.min_isv_svn,
        workload_isv_prod_id: a.workload_isv_prod_id,
        workload_min_isv_svn: a.workload_min_isv_svn,
    };
    Ok(spec.build(base)?)
}

fn policy_add(a: PolicyAddArgs) -> Result<ExitCode> {
    let identity = identity_from_args(&a)?;
    let mut f = if a.file.exists() {
        load_policy_file(&a.file)?
    } else {
        ward_provision::PolicyFile::new(&a.file.display().to_string())
    };
    let created = f.policy().is_none();
    f.add(&identity)?;
    if a.dry_run {
        print!("{}", f.to_toml());
        return Ok(ExitCode::SUCCESS);
    }
    write_policy_file(&a.file, &f)?;
    eprintln!(
        "{} {}: identity {:?} added ({}); a running server takes it on SIGHUP",
        if created { "created" } else { "updated" },
        a.file.display(),
        a.name,
        identity_count(&f)
    );
    if let Some(p) = f.policy() {
        for w in p.warnings() {
            eprintln!("warning: {w}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn policy_remove(file: &Path, name: &str) -> Result<ExitCode> {
    let mut f = load_policy_file(file)?;
    f.remove(name)?;
    write_policy_file(file, &f)?;
    eprintln!(
        "updated {}: identity {name:?} removed ({} left); a running server takes it on SIGHUP",
        file.display(),
        identity_count(&f)
    );
    Ok(ExitCode::SUCCESS)
}
