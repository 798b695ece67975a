//! `ward sign` and `ward run`: measure and sign a manifest, then run its workload confined.

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use ward_attest::sim::SimPlatformKey;
use ward_manifest::{SignOptions, SignerKey};
use ward_runtime::program::{PreparedProgram, ProgramError};
use ward_runtime::report::RunReport;
use ward_runtime::{AttesterKind, BootOptions};

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
pub(crate) struct SignArgs {
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
    /// Print one JSON object (fields: signed_manifest, measurement, mr_signer, runtime_digest,
    /// trusted_files, trusted_bytes, policy) instead of the text; progress stays on stderr.
    #[arg(long)]
    json: bool,
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
/// workload through a file system that checks trusted files, decrypts protected files with their
/// mount's key and refuses everything else. Outputs appear only if the workload succeeds.
///
/// The workload is a built-in (`loader.entrypoint = "ward:NAME"`) or your own program
/// (`[libos] entrypoint = "/usr/bin/python3.11"`, see `ward manifest python`), which runs
/// unmodified in new namespaces as an unprivileged user behind a FUSE view of the manifest; that
/// needs root and /dev/fuse, and the program's exit status becomes ward's.
///
/// Example:  ward run classify.signed.toml
#[derive(Args)]
pub(crate) struct RunArgs {
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
    /// When the workload succeeds, print one JSON object on stdout after its own output
    /// (fields: workload, measurement, mr_signer, seconds, timings_ms, files).
    #[arg(long)]
    json: bool,
    /// When the workload succeeds, write a receipt here: the protected files it committed (each
    /// by the digest of its metadata), the workload's identity and the provisioning servers'
    /// run ids, signed by its attested key. The owner checks results against it with `ward pf
    /// decrypt --receipt`, so a substituted or older result is refused.
    #[arg(long, value_name = "FILE")]
    receipt: Option<PathBuf>,
}

/// Writes the receipt for `outputs`, if one was asked for.
fn write_receipt(
    target: Option<&Path>,
    signer: Option<&ward_runtime::ReceiptSigner>,
    outputs: &[ward_runtime::vfs::CommittedOutput],
) -> Result<()> {
    let (Some(target), Some(signer)) = (target, signer) else {
        return Ok(());
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let receipt = signer.sign(outputs, now)?;
    ward_fsio::write_atomic(target, receipt.to_json().as_bytes(), 0o644)
        .with_context(|| format!("writing the receipt {}", target.display()))?;
    eprintln!(
        "receipt for {} output(s) written to {}",
        receipt.statement().outputs.len(),
        target.display()
    );
    Ok(())
}

pub(crate) fn sign(a: SignArgs) -> Result<ExitCode> {
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
    let output = a
        .output
        .unwrap_or_else(|| ward_manifest::signed_name(&manifest_path));
    let key = SignerKey::load(&key_path)?;
    let runtime = match &a.runtime {
        Some(p) => ward_runtime::bootstrap::file_digest(p)?,
        None => ward_runtime::runtime_digest()?,
    };
    let registry = ward_serve::registry();
    let check = |m: &ward_manifest::Manifest| {
        registry
            .check(m.workload(), &m.loader.argv)
            .map_err(ward_classify::BoxError::from)
    };
    let mut on_file = |uri: &ward_manifest::FileUri, _: &Path, size: u64| {
        if size > 64 << 20 {
            eprintln!("hashing {uri} ({} MiB)…", size >> 20);
        }
    };
    let t = Instant::now();
    let (signed, stats) = ward_manifest::sign_to_file(
        &key,
        &manifest_path,
        &output,
        runtime,
        SignOptions {
            check: Some(&check),
            on_file: Some(&mut on_file),
        },
    )?;
    let s = &signed.signature;
    if signed.manifest.has_dev_keys() {
        // Not a quiet-able log line: a dev manifest must never be shipped by mistake.
        eprintln!(
            "WARNING: this manifest gives wrap keys for development (fs.insecure__keys / \
             fs.insecure__key_files): `ward run` will use them without attestation or any \
             provisioning server, the host can read them, and nothing under them is protected \
             from the host. It is measured apart from any production manifest and presents \
             itself as a debug workload, which policies refuse unless allow_debug = true. Use \
             [provision] secrets for production."
        );
    }
    eprintln!(
        "hashed {} trusted file(s), {:.1} MiB, in {:.0?}",
        stats.files,
        stats.bytes as f64 / (1 << 20) as f64,
        t.elapsed()
    );
    let policy = ward_attest::Policy::for_workload(ward_manifest::identity(&signed)).to_toml();
    if a.json {
        let object = serde_json::json!({
            "signed_manifest": output.display().to_string(),
            "measurement": s.measurement.to_string(),
            "mr_signer": s.mr_signer.to_string(),
            "runtime_digest": s.runtime_digest.to_string(),
            "trusted_files": stats.files,
            "trusted_bytes": stats.bytes,
            "policy": policy,
        });
        println!("{object}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("signed manifest: {}", output.display());
    println!("measurement (MRENCLAVE): {}", s.measurement);
    println!("signer      (MRSIGNER):  {}", s.mr_signer);
    println!("runtime     (ward digest): {}", s.runtime_digest);
    println!();
    println!(
        "# Policy for the provisioning server (save it, then ward provision serve --policy FILE)."
    );
    println!("# On the simulated TEE add allow_simulated = true and simulated_platform_keys.");
    println!(
        "# The identity names two layers. workload_* is this manifest as ward names it in its\n\
         # evidence on every TEE. mr_enclave, mr_signer and isv_* are the enclave as the simulated\n\
         # TEE reports it (there the enclave is this manifest); on hardware put the layer running\n\
         # ward there instead: the Gramine enclave's MRENCLAVE/MRSIGNER (gramine-sgx-sigstruct-view)\n\
         # or, in a TDX VM, mr_td and rtmr0..rtmr2 in place of the SGX fields."
    );
    print!("{policy}");
    Ok(ExitCode::SUCCESS)
}

/// The simulated platform key `ward run` needs for `--attester sim` (with the simulated TEE's
/// loud notice); no key for the hardware attesters.
pub(crate) fn attester_choice(
    kind: AttesterKind,
    sim_key: &Path,
) -> Result<Option<SimPlatformKey>> {
    if kind != AttesterKind::Sim {
        return Ok(None);
    }
    eprintln!(
        "NOTICE: simulated TEE — no hardware protects this workload; its evidence proves \
         nothing about the machine (use --attester gramine or tsm on a real TEE)"
    );
    Ok(Some(crate::attest::load_sim_key(sim_key)?))
}

pub(crate) fn run(a: RunArgs) -> Result<ExitCode> {
    let registry = ward_serve::registry();
    if a.list {
        for (name, b) in registry.builtins() {
            println!("ward:{name:<10} {}\n  arguments: {}", b.summary, b.usage);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(path) = a.manifest.clone() else {
        bail!("name the signed manifest to run");
    };
    // Before the attester's key, so a mistyped manifest path is what the user is told about.
    if !path.is_file() {
        bail!(
            "{} is not a file\nhint: give the signed manifest that `ward sign` wrote (NAME.signed.toml)",
            path.display()
        );
    }
    let t = Instant::now();
    // A program's sandbox is forked first, while ward is single-threaded; a built-in needs none.
    let program = match PreparedProgram::prepare(&path, &a.args) {
        Ok(prepared) => Some(prepared),
        Err(ProgramError::NotAProgram(_)) => None,
        Err(e) => return Err(e.into()),
    };
    ward_fsio::install_signal_cleanup()?;
    if let Some(prepared) = program {
        return run_program(prepared, a, t);
    }
    let runtime_digest = ward_runtime::runtime_digest()?;
    let self_measure = t.elapsed();
    let options = BootOptions {
        runtime_digest,
        attester: a.attester,
        sim_key: attester_choice(a.attester, &a.sim_key)?,
        host_args: a.args,
    };
    let ctx = ward_runtime::boot(&path, options)?;
    // Before the workload runs: a receipt that cannot be signed is known before any output.
    let signer = match &a.receipt {
        Some(_) => Some(ward_runtime::ReceiptSigner::for_context(&ctx)?),
        None => None,
    };
    let booted = t.elapsed();
    let m = &ctx.manifest;
    eprintln!(
        "workload {} measured {} signer {}",
        m.manifest.workload_name(),
        short(&m.measurement.to_string()),
        short(&m.mr_signer.to_string())
    );
    registry.run(&ctx)?;
    write_receipt(
        a.receipt.as_deref(),
        signer.as_ref(),
        &ctx.vfs.committed_outputs(),
    )?;
    let tm = &ctx.timings;
    let workload_time = t.elapsed() - booted;
    if a.verbose {
        eprintln!(
            "timings: self-measure {self_measure:.1?}, manifest {:.1?}, attest {:.1?}, \
             provision {:.1?}, vfs {:.1?}, boot total {booted:.1?}, workload {workload_time:.1?}",
            tm.manifest, tm.attest, tm.provision, tm.vfs,
        );
    }
    if a.json {
        let report =
            RunReport::new(&ctx, t.elapsed()).with_timings(&ctx, self_measure, workload_time);
        println!("{}", serde_json::to_string(&report)?);
    }
    eprintln!("workload finished in {:.0?}", t.elapsed());
    Ok(ExitCode::SUCCESS)
}

/// Runs the user's own program confined; its exit status becomes ward's.
fn run_program(prepared: PreparedProgram, a: RunArgs, t: Instant) -> Result<ExitCode> {
    let measuring = Instant::now();
    let runtime_digest = ward_runtime::runtime_digest()?;
    let self_measure = measuring.elapsed();
    let options = BootOptions {
        runtime_digest,
        attester: a.attester,
        sim_key: attester_choice(a.attester, &a.sim_key)?,
        host_args: a.args,
    };
    let running = prepared.start(options)?;
    let booted = t.elapsed();
    let ctx = running.context();
    let m = &ctx.manifest;
    eprintln!(
        "program {} measured {} signer {} (confined; booted in {booted:.0?})",
        m.manifest.workload_name(),
        short(&m.measurement.to_string()),
        short(&m.mr_signer.to_string())
    );
    let report = RunReport::new(ctx, booted);
    let boot_timings = ctx.timings.clone();
    let signer = match &a.receipt {
        Some(_) => Some(ward_runtime::ReceiptSigner::for_context(ctx)?),
        None => None,
    };
    let started = Instant::now();
    let outcome = running.wait()?;
    if outcome.code == 0 {
        write_receipt(a.receipt.as_deref(), signer.as_ref(), &outcome.outputs)?;
    }
    let report = report.with_timings_of(&boot_timings, self_measure, started.elapsed());
    if outcome.code == 0 {
        eprintln!(
            "program exited 0 after {:.0?}; {} output file(s) committed",
            t.elapsed(),
            outcome.committed
        );
    } else {
        eprintln!(
            "program exited {}; {} new file(s) discarded, existing files left as they were",
            outcome.code, outcome.discarded
        );
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&outcome.report(report, t.elapsed()))?
        );
    }
    Ok(ExitCode::from(outcome.code.clamp(0, 255) as u8))
}

fn short(hex: &str) -> String {
    format!("{}…", &hex[..16.min(hex.len())])
}
