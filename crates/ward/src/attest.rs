//! `ward attest …` and `ward sim …`: verify and explain evidence, produce it, set up the
//! simulated TEE.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use ward_attest::attester::{AttesterKind, SimAttester};
use ward_attest::claims::VerificationReport;
use ward_attest::dcap::Collateral;
use ward_attest::sim::{SimIdentity, SimPlatformKey};
use ward_attest::verify::evidence_kind;
use ward_attest::{
    AnyVerifier, DcapEvidenceVerifier, EvidenceVerifier, Policy, SimVerifier, TeeKind,
};

#[derive(Subcommand)]
pub(crate) enum AttestCommand {
    /// Verify evidence (an SGX/TDX DCAP quote, or a simulated quote), explain it, and judge it
    /// against a policy.
    ///
    /// DCAP quotes are verified completely and offline against Intel's collateral: quote and QE
    /// signatures, the PCK chain to the pinned Intel SGX Root CA, CRLs, TCB info and QE identity,
    /// and the platform's TCB status. Exit status 0 only if the evidence is valid and the policy
    /// accepts it: the file given with --policy or, without one, the default rules (any workload
    /// identity, but a platform TCB UpToDate, no debug enclave or TD, no service TD and no
    /// simulated evidence).
    Verify(VerifyArgs),
    /// Produce evidence on this machine binding 64 bytes of report data.
    Quote(QuoteArgs),
}

#[derive(Subcommand)]
pub(crate) enum SimCommand {
    /// Create a simulated-TEE platform key (ECDSA P-256, PKCS#8 PEM, mode 0600) and print the
    /// policy lines that trust it.
    ///
    /// Simulated evidence proves nothing about hardware: whoever holds this key can claim any
    /// measurement. Verifiers accept it only with allow_simulated = true and this key listed.
    Init {
        /// Where to write the platform key.
        #[arg(
            short = 'o',
            long = "output",
            value_name = "KEYFILE",
            default_value = "ward-sim-platform.pem"
        )]
        output: PathBuf,
    },
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// The quote (binary; trailing bytes after the signature data are ignored).
    #[arg(long, value_name = "FILE")]
    quote: PathBuf,
    /// Intel collateral for the quote's platform: QuoteCollateralV3 JSON (from PCCS/PCS).
    #[arg(long, value_name = "FILE", conflicts_with = "pccs")]
    collateral: Option<PathBuf>,
    /// Fetch the collateral from this PCCS or Intel PCS base URL (e.g.
    /// https://api.trustedservices.intel.com), caching it on disk until it expires.
    #[arg(long, value_name = "URL")]
    pccs: Option<String>,
    /// Where fetched collateral is cached (default: $XDG_CACHE_HOME/ward/collateral or
    /// ~/.cache/ward/collateral).
    #[arg(long, value_name = "DIR", requires = "pccs")]
    cache_dir: Option<PathBuf>,
    /// Verify as of this time (unix seconds) instead of now; collateral is valid only ~30 days.
    #[arg(long, value_name = "UNIX_SECONDS")]
    at: Option<u64>,
    /// Judge the claims against this policy (TOML); without it, by the default rules, which
    /// accept any workload identity on a trustworthy platform.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Print one JSON object instead of the explanation.
    #[arg(long)]
    json: bool,
}

/// The identity a simulated-TEE workload claims, and the platform key that signs it.
#[derive(Args)]
pub(crate) struct SimClientArgs {
    /// Simulated platform key (`ward sim init` makes one).
    #[arg(long, value_name = "KEYFILE", default_value = "ward-sim-platform.pem")]
    pub sim_key: PathBuf,
    /// Simulated MRENCLAVE (hex, 32 bytes).
    #[arg(long, value_name = "HEX")]
    pub mr_enclave: Option<String>,
    /// Simulated MRSIGNER (hex, 32 bytes).
    #[arg(long, value_name = "HEX")]
    pub mr_signer: Option<String>,
    /// Simulated ISV_PROD_ID.
    #[arg(long, default_value_t = 0)]
    pub isv_prod_id: u16,
    /// Simulated ISV_SVN.
    #[arg(long, default_value_t = 0)]
    pub isv_svn: u16,
    /// Claim to be a debug enclave (policies refuse this unless allow_debug = true).
    #[arg(long)]
    pub debug: bool,
}

impl SimClientArgs {
    /// The simulated attester these arguments describe (with a loud notice).
    pub(crate) fn sim_attester(&self) -> Result<SimAttester> {
        eprintln!("NOTICE: simulated TEE — this evidence proves nothing about hardware");
        let key = load_sim_key(&self.sim_key)?;
        let hex32 = |flag: &str, v: &Option<String>| -> Result<[u8; 32]> {
            v.as_deref().map_or(Ok([0; 32]), |h| hex_array(flag, h))
        };
        let identity = SimIdentity {
            mr_enclave: hex32("--mr-enclave", &self.mr_enclave)?,
            mr_signer: hex32("--mr-signer", &self.mr_signer)?,
            isv_prod_id: self.isv_prod_id,
            isv_svn: self.isv_svn,
            debug: self.debug,
        };
        Ok(SimAttester::new(key, identity))
    }
}

#[derive(Args)]
pub(crate) struct QuoteArgs {
    /// Which attester produces the evidence: sim (ward's simulated TEE, no hardware
    /// protection), gramine (/dev/attestation inside an SGX enclave) or tsm (configfs-tsm
    /// inside a TDX guest).
    #[arg(long, value_name = "ATTESTER", default_value_t = AttesterKind::Sim)]
    attester: AttesterKind,
    /// Report data to bind: up to 64 bytes as hex (zero-padded).
    #[arg(long, value_name = "HEX", default_value = "")]
    report_data: String,
    #[command(flatten)]
    sim: SimClientArgs,
    /// Where to write the quote.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

pub(crate) fn run(cmd: AttestCommand) -> Result<ExitCode> {
    match cmd {
        AttestCommand::Verify(a) => verify(a),
        AttestCommand::Quote(a) => quote(a),
    }
}

pub(crate) fn run_sim(cmd: SimCommand) -> Result<ExitCode> {
    match cmd {
        SimCommand::Init { output } => sim_init(&output),
    }
}

fn sim_init(output: &Path) -> Result<ExitCode> {
    let key = SimPlatformKey::generate();
    key.save(output)?;
    let public = key.public().to_hex();
    eprintln!(
        "wrote a simulated-TEE platform key to {} (mode 0600)",
        output.display()
    );
    println!("simulated platform public key: {public}");
    println!();
    println!("# To let a verifier accept this platform (development only), add to its policy:");
    println!("allow_simulated = true");
    println!("simulated_platform_keys = [\"{public}\"]");
    Ok(ExitCode::SUCCESS)
}

/// Loads a simulated platform key, saying how to make one if it is missing.
pub(crate) fn load_sim_key(path: &Path) -> Result<SimPlatformKey> {
    SimPlatformKey::load(path).with_context(|| {
        format!(
            "loading the simulated platform key {}\nhint: create one with `ward sim init -o {}`",
            path.display(),
            path.display()
        )
    })
}

fn hex_array<const N: usize>(what: &str, s: &str) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s.trim(), &mut out)
        .with_context(|| format!("{what} must be {N} bytes of hex ({} characters)", 2 * N))?;
    Ok(out)
}

fn quote(a: QuoteArgs) -> Result<ExitCode> {
    let rd = hex::decode(a.report_data.trim()).context("--report-data must be hex")?;
    if rd.len() > 64 {
        bail!("--report-data is {} bytes; at most 64", rd.len());
    }
    let mut report_data = [0u8; 64];
    report_data[..rd.len()].copy_from_slice(&rd);
    let sim = match a.attester {
        AttesterKind::Sim => Some(a.sim.sim_attester()?),
        _ => None,
    };
    let attester = a.attester.attester(sim)?;
    let evidence = attester.attest(&report_data)?;
    ward_fsio::write_atomic(&a.output, &evidence.quote, 0o644)?;
    eprintln!(
        "wrote {} evidence ({} bytes) from the {} attester to {}",
        evidence.tee,
        evidence.quote.len(),
        attester.name(),
        a.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What the human output says of the default rules, when no policy file was given.
const DEFAULT_RULES: &str = "any workload identity; platform TCB UpToDate only; no debug enclave \
     or TD; no service TD; no simulated evidence";

fn verify(a: VerifyArgs) -> Result<ExitCode> {
    let now = match a.at {
        Some(t) => t,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_secs(),
    };
    // Without a policy file the evidence is still judged: valid signatures alone say nothing
    // about a debug enclave, an unpatched platform or a simulated TEE.
    let (policy, policy_name) = match &a.policy {
        Some(p) => (Policy::load(p)?, p.display().to_string()),
        None => (Policy::default_rules(), "default".to_string()),
    };
    let bytes =
        std::fs::read(&a.quote).with_context(|| format!("reading {}", a.quote.display()))?;
    let verified = evidence_verifier(&a, &bytes, now).and_then(|v| Ok(v.verify(&bytes)?));
    let claims = match verified {
        Ok(c) => c,
        Err(e) => {
            if a.json {
                println!(
                    "{}",
                    json!({"valid": false, "accepted": false, "error": format!("{e:#}"), "verified_at": now, "policy": policy_name})
                );
            }
            return Err(e.context(format!("{} is not valid evidence", a.quote.display())));
        }
    };
    let verdict = policy.evaluate(&claims);
    let report = VerificationReport::new(&claims, now, Some(&verdict));
    if a.json {
        let mut j = serde_json::to_value(&report)?;
        j["policy"] = json!(policy_name);
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        print!("{report}");
        let decision = if verdict.is_ok() {
            "ACCEPTED"
        } else {
            "REFUSED"
        };
        match &a.policy {
            None => println!(
                "\nPolicy: no policy file given; the default rules were applied ({DEFAULT_RULES}): \
                 {decision}\n  pass --policy FILE to require this workload's identity"
            ),
            Some(p) => println!("\nPolicy: {}: {decision}", p.display()),
        }
    }
    match verdict {
        Err(refusal) if a.policy.is_none() => Err(anyhow::Error::new(refusal).context(
            "the evidence is refused by the default rules (no --policy was given; pass --policy FILE to judge it by your own)",
        )),
        Err(refusal) => bail!("{refusal}"),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

/// Sim and DCAP verification, DCAP with the collateral file given (if any), as of `now`.
pub(crate) fn verifier_with_collateral(collateral: Option<&Path>, now: u64) -> Result<AnyVerifier> {
    let dcap = match collateral {
        Some(path) => Some(DcapEvidenceVerifier::with_collateral(
            Collateral::load(path)?,
            move || now,
        )),
        None => None,
    };
    Ok(AnyVerifier::new(Some(SimVerifier), dcap))
}

/// The library's routing (sim or DCAP, by the quote's form), with DCAP collateral from the
/// file or the PCCS given, as of `now`.
fn evidence_verifier(a: &VerifyArgs, quote: &[u8], now: u64) -> Result<AnyVerifier> {
    let clock = move || now;
    let dcap = match (&a.collateral, &a.pccs) {
        (Some(path), _) => Some(DcapEvidenceVerifier::with_collateral(
            Collateral::load(path)?,
            clock,
        )),
        (None, Some(url)) => {
            let dir = match &a.cache_dir {
                Some(d) => d.clone(),
                None => ward_pccs::Cache::default_dir()
                    .context("no --cache-dir, and neither XDG_CACHE_HOME nor HOME is set")?,
            };
            let source = ward_pccs::CachingSource::new(
                ward_pccs::Pccs::new(url)?,
                ward_pccs::Cache::new(dir),
            );
            Some(DcapEvidenceVerifier::new(source, clock))
        }
        (None, None) if evidence_kind(quote) != TeeKind::Sim => {
            // Say what the file is before asking for collateral it cannot use.
            ward_attest::quote::Quote::parse(quote)
                .context("neither simulated evidence nor a DCAP quote")?;
            bail!(
                "{} is a DCAP quote; verifying it needs Intel's collateral for its platform: pass --collateral FILE (QuoteCollateralV3 JSON) or --pccs URL",
                a.quote.display()
            )
        }
        (None, None) => None,
    };
    Ok(AnyVerifier::new(Some(SimVerifier), dcap))
}
