//! `ward sign` and `ward run`: measure and sign a manifest, then run its workload confined.

use crate::fsutil;
use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use ward_attest::sim::SimPlatformKey;
use ward_manifest::{Manifest, SignedManifest, SignerKey};
use ward_runtime::{AttesterKind, BootOptions, Registry};

/// Sign a manifest: hash its trusted files, compute the measurement, write the signed manifest.
///
/// Reads MANIFEST (TOML), expands every trusted directory to the files inside it, fills in each
/// trusted file's SHA-256 (and the provisioning CA chain's), computes the measurement over the
/// manifest and this ward binary, signs it with SIGNER_KEY and writes MANIFEST with `.signed.toml`
/// beside it. It prints the measurement (MRENCLAVE), the signer (MRSIGNER) and a policy snippet
/// for the data owner's provisioning server.
///
/// Example:  ward sign keygen -o signer.pem && ward sign --key signer.pem classify.toml
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SignArgs {
    #[command(subcommand)]
    sub: Option<SignCommand>,
    /// The signer's private key (PKCS#8 PEM, P-256; `ward sign keygen` makes one).
    #[arg(long, value_name = "SIGNER_KEY", required = true)]
    key: Option<PathBuf>,
    /// The unsigned manifest.
    #[arg(value_name = "MANIFEST", required = true)]
    manifest: Option<PathBuf>,
    /// Where to write the signed manifest (default: MANIFEST with .signed.toml, beside it; file:
    /// URIs are relative to the manifest's directory, so it must stay in that directory).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Sign for another ward binary than this one (the measurement covers the runtime).
    #[arg(long, value_name = "WARD_BINARY")]
    runtime: Option<PathBuf>,
}

#[derive(Subcommand)]
enum SignCommand {
    /// Create a signer key (P-256, PKCS#8 PEM, mode 0600; never overwrites).
    Keygen {
        /// Where to write it.
        #[arg(
            short = 'o',
            long = "output",
            value_name = "FILE",
            default_value = "signer.pem"
        )]
        output: PathBuf,
    },
}

/// Run a signed manifest's workload, confined to what the manifest allows.
///
/// Verifies the signed manifest for this ward binary, attests (simulated TEE by default), fetches
/// the workload's keys from the manifest's provisioning servers over RA-TLS, then runs the
/// built-in entrypoint through a file system that checks trusted files, decrypts protected files
/// with their mount's key and refuses everything else. Outputs appear only if the workload
/// succeeds.
///
/// Example:  ward run classify.signed.toml
#[derive(Args)]
pub struct RunArgs {
    /// The signed manifest (`ward sign` output).
    #[arg(value_name = "SIGNED_MANIFEST", required_unless_present = "list")]
    manifest: Option<PathBuf>,
    /// Extra workload arguments (refused unless the manifest sets loader.insecure_host_args).
    #[arg(value_name = "ARGS", trailing_var_arg = true)]
    args: Vec<String>,
    /// Which TEE produces the evidence: sim, gramine or tsm.
    #[arg(long, value_name = "ATTESTER", default_value_t = AttesterKind::Sim)]
    attester: AttesterKind,
    /// Simulated platform key (`ward sim init` makes one).
    #[arg(long, value_name = "KEYFILE", default_value = "ward-sim-platform.pem")]
    sim_key: PathBuf,
    /// List the built-in workloads and exit.
    #[arg(long)]
    list: bool,
    /// Print how long each step took.
    #[arg(long, short = 'v')]
    verbose: bool,
}

/// The workloads `ward run` knows: the runtime's and the classifier.
pub fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    crate::workloads::register(&mut r);
    r
}

pub fn sign(a: SignArgs) -> Result<ExitCode> {
    if let Some(SignCommand::Keygen { output }) = a.sub {
        let key = SignerKey::generate();
        key.save(&output)?;
        let public = key.public();
        println!(
            "signer key written to {} (keep it private)",
            output.display()
        );
        println!("MRSIGNER: {}", public.mr_signer());
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(key_path), Some(manifest_path)) = (a.key, a.manifest) else {
        bail!("give --key SIGNER_KEY and MANIFEST (see ward sign --help)");
    };
    let output = match a.output {
        Some(o) => o,
        None => signed_name(&manifest_path),
    };
    let dir = |p: &Path| {
        std::path::absolute(p)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
    };
    if dir(&output) != dir(&manifest_path) {
        bail!(
            "{} must be in the manifest's directory: the manifest's file: URIs are relative \
             to it",
            output.display()
        );
    }
    let key = SignerKey::load(&key_path)?;
    let runtime = match &a.runtime {
        Some(p) => ward_runtime::bootstrap::file_digest(p)?,
        None => ward_runtime::runtime_digest()?,
    };
    let t = Instant::now();
    let (signed, files, bytes) = sign_file(&key, &manifest_path, &output, runtime)?;
    let s = &signed.signature;
    eprintln!(
        "hashed {files} trusted file(s), {:.1} MiB, in {:.0?}",
        bytes as f64 / (1 << 20) as f64,
        t.elapsed()
    );
    println!("signed manifest: {}", output.display());
    println!("measurement (MRENCLAVE): {}", s.measurement);
    println!("signer      (MRSIGNER):  {}", s.mr_signer);
    println!("runtime     (ward digest): {}", s.runtime_digest);
    println!();
    println!("# Policy for the provisioning server (ward provision serve --policy FILE):");
    println!("# top-level keys (allow_simulated, simulated_platform_keys…) go above this table.");
    print!("{}", policy_snippet(&signed));
    Ok(ExitCode::SUCCESS)
}

/// Hashes, signs and writes `manifest_path` to `output` (atomically); returns the signed
/// manifest, and the number and total size of the trusted files hashed.
pub fn sign_file(
    key: &SignerKey,
    manifest_path: &Path,
    output: &Path,
    runtime: ward_manifest::Sha256,
) -> Result<(SignedManifest, u64, u64)> {
    let manifest = Manifest::load(manifest_path)?;
    let base = manifest_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (mut files, mut bytes) = (0u64, 0u64);
    let hashed = manifest.hash_trusted_files(base, &mut |uri, _, size| {
        files += 1;
        bytes += size;
        if size > 64 << 20 {
            eprintln!("hashing {uri} ({} MiB)…", size >> 20);
        }
    })?;
    let signed = key.sign(hashed, runtime)?;
    let tmp = fsutil::temp_beside(output)?;
    std::fs::write(tmp.path(), signed.to_toml()).context("writing the signed manifest")?;
    fsutil::commit(tmp, output, 0o644)?;
    Ok((signed, files, bytes))
}

/// The `[[identity]]` policy table that admits exactly this signed workload.
pub fn policy_snippet(signed: &SignedManifest) -> String {
    let s = &signed.signature;
    let sgx = &signed.manifest.sgx;
    format!(
        "[[identity]]\nname = {:?}\nmr_enclave = \"{}\"\nmr_signer = \"{}\"\nisv_prod_id = {}\n\
         min_isv_svn = {}\n",
        signed.manifest.loader.entrypoint.as_str(),
        s.measurement,
        s.mr_signer,
        sgx.isv_prod_id,
        sgx.isv_svn
    )
}

/// `x.toml` → `x.signed.toml`, beside it.
pub fn signed_name(manifest: &Path) -> PathBuf {
    let name = manifest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".toml").unwrap_or(&name);
    manifest.with_file_name(format!("{stem}.signed.toml"))
}

/// The simulated platform key `ward run` needs for `--attester sim` (with the simulated TEE's
/// loud notice); no key for the hardware attesters.
pub fn attester_choice(kind: AttesterKind, sim_key: &Path) -> Result<Option<SimPlatformKey>> {
    if kind != AttesterKind::Sim {
        return Ok(None);
    }
    eprintln!(
        "NOTICE: simulated TEE — no hardware protects this workload; its evidence proves \
         nothing about the machine (use --attester gramine or tsm on a real TEE)"
    );
    let key = SimPlatformKey::load(sim_key)
        .with_context(|| format!("(create one with `ward sim init -o {}`)", sim_key.display()))?;
    Ok(Some(key))
}

pub fn run(a: RunArgs) -> Result<ExitCode> {
    let registry = registry();
    if a.list {
        for (name, b) in registry.builtins() {
            println!("ward:{name:<10} {}\n  arguments: {}", b.summary, b.usage);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(path) = a.manifest else {
        bail!("name the signed manifest to run");
    };
    let t = Instant::now();
    let runtime_digest = ward_runtime::runtime_digest()?;
    let self_measure = t.elapsed();
    let options = BootOptions {
        runtime_digest,
        attester: a.attester,
        sim_key: attester_choice(a.attester, &a.sim_key)?,
        host_args: a.args,
    };
    let ctx = ward_runtime::boot(&path, options)?;
    let booted = t.elapsed();
    let m = &ctx.manifest;
    eprintln!(
        "workload {} measured {} signer {}",
        m.manifest.loader.entrypoint,
        short(&m.measurement.to_string()),
        short(&m.mr_signer.to_string())
    );
    registry.run(&ctx)?;
    if a.verbose {
        let tm = &ctx.timings;
        eprintln!(
            "timings: self-measure {self_measure:.1?}, manifest {:.1?}, attest {:.1?}, \
             provision {:.1?}, vfs {:.1?}, boot total {booted:.1?}, workload {:.1?}",
            tm.manifest,
            tm.attest,
            tm.provision,
            tm.vfs,
            t.elapsed() - booted
        );
    }
    eprintln!("workload finished in {:.0?}", t.elapsed());
    Ok(ExitCode::SUCCESS)
}

fn short(hex: &str) -> String {
    format!("{}…", &hex[..16.min(hex.len())])
}
