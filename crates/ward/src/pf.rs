//! `ward pf …`: protected files from the command line, in the spirit of gramine-sgx-pf-crypt.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use ward_pf::files::{self, Observer, Phase};
use ward_pf::WrapKey;

/// Files smaller than this get no progress bar.
const PROGRESS_MIN_BYTES: u64 = 4 << 20;

#[derive(Subcommand)]
pub(crate) enum PfCommand {
    /// Generate a new random 16-byte wrap key (mode 0600; never overwrites).
    ///
    /// The key file is 16 raw bytes, as gramine-sgx-pf-crypt expects. In a manifest the same key
    /// is spelled as 32 hex characters.
    Keygen {
        /// Where to write the key.
        #[arg(short = 'o', long = "output", value_name = "KEYFILE")]
        output: PathBuf,
    },
    /// Encrypt a file or directory tree into protected files.
    ///
    /// Each output binds a path inside its encrypted metadata: by default the normalised OUT
    /// path as you typed it (e.g. `-o ./enc/../enc/model.pf` binds `enc/model.pf`), the path the
    /// workload will open it under. Use --path to bind another.
    ///
    /// An existing OUT is replaced, as cp and gramine-sgx-pf-crypt do. Each output is written to
    /// a temporary file beside it (`.NAME.XXXXXX.ward-tmp`), verified, and only then renamed into
    /// place: on an error, Ctrl-C or SIGTERM the temporary is removed and an existing OUT is left
    /// as it was. OUT may not be IN itself, nor (for a directory) inside IN.
    Encrypt(EncryptArgs),
    /// Decrypt protected files back to plaintext.
    ///
    /// Every node is authenticated before a byte of it is written; the output appears only when
    /// the whole file checked out. With -V the bound path must equal the normalised IN path.
    ///
    /// With --receipt (what `ward run --receipt` wrote) each file must also be one the run
    /// committed: the receipt's certificate is verified against --policy, its signature checked,
    /// and the file's metadata matched against the outputs it names, so a result the host
    /// substituted or rolled back to an older version is refused. --run-id or --audit-log then
    /// pins which run: the one your provisioning server's audit log shows it granted.
    ///
    /// Example:  ward pf decrypt -w key -i result.txt -o - -V --receipt run.receipt.json \
    ///               --policy policy.toml --audit-log audit.log
    ///
    /// An existing OUT is replaced, as cp and gramine-sgx-pf-crypt do, atomically: on an error,
    /// Ctrl-C or SIGTERM no partial plaintext is left and an existing OUT is left as it was. OUT
    /// may not be IN itself, nor (for a directory) inside IN.
    Decrypt(DecryptArgs),
    /// Check every node of a protected file (or tree) with its key; write nothing.
    ///
    /// Exit status 0 only if every file is intact.
    Verify(VerifyArgs),
    /// Show a protected file's format version and node count; with the key, also its bound
    /// path and plaintext size.
    Info {
        /// Wrap key file (16 raw bytes); optional.
        #[arg(short = 'w', long = "wrap-key", value_name = "KEYFILE")]
        key: Option<PathBuf>,
        /// The protected file.
        #[arg(short = 'i', long = "input", value_name = "IN")]
        input: PathBuf,
        /// Print one JSON object (fields: file, format, nodes, bytes_on_disk, bound_path, size;
        /// the last two are null without -w).
        #[arg(long)]
        json: bool,
    },
    /// Remove the temporary files (`.NAME.XXXXXX.ward-tmp`) that killed runs left under DIR.
    ///
    /// ward removes its temporaries itself on errors, Ctrl-C and SIGTERM; only a crash, SIGKILL
    /// or a power cut leaves one. Directory walks skip them with a warning, and the next write of
    /// the same output removes its own. Prints each path removed.
    Clean {
        /// The directory to clean, recursively.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Rotate the wrap key: re-encrypt only the metadata node under NEW_KEY, whatever the file's
    /// size.
    ///
    /// In place when -o is absent, crash-safe: the new metadata node is journalled beside the
    /// file first, and an interrupted rewrap is completed by running the same command again.
    Rewrap {
        /// The current wrap key file.
        #[arg(short = 'w', long = "wrap-key", value_name = "OLD_KEY")]
        old_key: PathBuf,
        /// The new wrap key file (make one with `ward pf keygen`).
        #[arg(long = "new-key", value_name = "NEW_KEY")]
        new_key: PathBuf,
        /// The protected file.
        #[arg(short = 'i', long = "input", value_name = "IN")]
        input: PathBuf,
        /// Write the rewrapped file here instead of in place (an existing file is replaced).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
    },
}

#[derive(Args)]
pub(crate) struct Threads {
    /// Worker threads for node encryption/decryption (0 = all cores).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
}

#[derive(Args)]
pub(crate) struct EncryptArgs {
    /// Wrap key file (16 raw bytes).
    #[arg(short = 'w', long = "wrap-key", value_name = "KEYFILE")]
    key: PathBuf,
    /// Plaintext file or directory.
    #[arg(short = 'i', long = "input", value_name = "IN")]
    input: PathBuf,
    /// Protected file (or directory, when IN is one).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
    /// Bind this path instead of the normalised OUT path (single files only).
    #[arg(long = "path", value_name = "BOUND")]
    bound: Option<String>,
    /// Skip reading the output back to verify it before it is renamed into place.
    #[arg(long)]
    no_verify: bool,
    #[command(flatten)]
    threads: Threads,
}

#[derive(Args)]
pub(crate) struct DecryptArgs {
    /// Wrap key file (16 raw bytes).
    #[arg(short = 'w', long = "wrap-key", value_name = "KEYFILE")]
    key: PathBuf,
    /// Protected file or directory.
    #[arg(short = 'i', long = "input", value_name = "IN")]
    input: PathBuf,
    /// Plaintext file (or directory, when IN is one).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
    #[command(flatten)]
    check: PathCheck,
    #[command(flatten)]
    receipt: ReceiptCheck,
    #[command(flatten)]
    threads: Threads,
}

/// Checking files against a run receipt before decrypting them.
#[derive(Args)]
pub(crate) struct ReceiptCheck {
    /// The run's receipt (`ward run --receipt FILE`): decrypt only files that run committed.
    #[arg(long, value_name = "RECEIPT", requires = "policy")]
    receipt: Option<PathBuf>,
    /// The policy the receipt's certificate must satisfy (your provisioning server's policy
    /// for this workload).
    #[arg(long, value_name = "POLICY", requires = "receipt")]
    policy: Option<PathBuf>,
    /// DCAP collateral (QuoteCollateralV3 JSON) for a receipt made on SGX or TDX hardware.
    #[arg(long, value_name = "FILE", requires = "receipt")]
    collateral: Option<PathBuf>,
    /// Require the receipt to be for this run id (what your server's audit log records as the
    /// grant's "id").
    #[arg(
        long,
        value_name = "ID",
        requires = "receipt",
        conflicts_with = "audit_log"
    )]
    run_id: Option<String>,
    /// Require the receipt to be for the latest run this audit log shows granted keys to the
    /// receipt's workload (your provisioning server's audit.log).
    #[arg(long, value_name = "FILE", requires = "receipt")]
    audit_log: Option<PathBuf>,
}

impl ReceiptCheck {
    /// The verified receipt, when one was given, after saying what it proved.
    fn verify(&self) -> Result<Option<ward_receipt::VerifiedReceipt>> {
        use anyhow::Context as _;
        let (Some(path), Some(policy)) = (&self.receipt, &self.policy) else {
            return Ok(None);
        };
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening the receipt {}", path.display()))?;
        let receipt = ward_receipt::Receipt::read_from(file, &path.display().to_string())
            .with_context(|| format!("reading the receipt {}", path.display()))?;
        let policy = ward_attest::Policy::load(policy)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_secs();
        let verifier = crate::attest::verifier_with_collateral(self.collateral.as_deref(), now)?;
        let verified = receipt
            .verify(&verifier, &policy)
            .with_context(|| format!("the receipt {} is not accepted", path.display()))?;
        let workload = verified.statement().workload;
        eprintln!(
            "receipt {}: signed by workload {} (signer {}), {} output(s)",
            path.display(),
            hex::encode(workload.measurement),
            hex::encode(workload.signer),
            verified.statement().outputs.len()
        );
        if let Some(id) = &self.run_id {
            let run = verified.require_run(id)?;
            eprintln!(
                "receipt: run {} from {} as required",
                run.run_id, run.server
            );
        } else if let Some(log) = &self.audit_log {
            let grant = ward_provision::latest_grant(log, &workload.measurement)?.with_context(
                || {
                    format!(
                        "the audit log {} shows no grant to workload {}, so it cannot vouch for                          this receipt's run",
                        log.display(),
                        hex::encode(workload.measurement)
                    )
                },
            )?;
            verified.require_run(&grant.id).with_context(|| {
                format!(
                    "the latest grant to this workload in {} is run {} at {} (to {})",
                    log.display(),
                    grant.id,
                    ward_attest::dcap::rfc3339(grant.time),
                    grant.peer
                )
            })?;
            eprintln!(
                "receipt: run {} is the latest grant to this workload in {}",
                grant.id,
                log.display()
            );
        } else {
            eprintln!(
                "warning: the receipt was not checked against a run: an older run's result with                  its own receipt would pass too; pass --audit-log (your server's audit.log) or                  --run-id"
            );
        }
        Ok(Some(verified))
    }
}

/// Checks that `input` is a protected file the receipt's run committed.
fn check_receipt(receipt: &ward_receipt::VerifiedReceipt, input: &Path) -> Result<()> {
    use anyhow::Context as _;
    let file =
        std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let digest = ward_receipt::metadata_digest(file).with_context(|| {
        format!(
            "reading the metadata node of {} (is it a protected file?)",
            input.display()
        )
    })?;
    match receipt.output_for(&digest) {
        Some(o) => {
            eprintln!(
                "receipt: {} is {} as the run committed it",
                input.display(),
                o.path
            );
            Ok(())
        }
        None => bail!(
            "{} is not a file the receipt's run committed: its metadata matches none of the {}              output(s) the receipt names — the host substituted it, or it is from another run              (an older result)",
            input.display(),
            receipt.statement().outputs.len()
        ),
    }
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// Wrap key file (16 raw bytes).
    #[arg(short = 'w', long = "wrap-key", value_name = "KEYFILE")]
    key: PathBuf,
    /// Protected file or directory.
    #[arg(short = 'i', long = "input", value_name = "IN")]
    input: PathBuf,
    #[command(flatten)]
    check: PathCheck,
    #[command(flatten)]
    threads: Threads,
    /// Print one JSON object per file, one per line (fields: file, intact, and either format,
    /// nodes, size, bound_path, path_checked, or error).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct PathCheck {
    /// Check that the bound path equals the normalised IN path.
    #[arg(short = 'V', long = "verify-path", conflicts_with = "path")]
    verify_path: bool,
    /// Check that the bound path equals BOUND (normalised).
    #[arg(long = "path", value_name = "BOUND")]
    path: Option<String>,
}

impl PathCheck {
    fn expected(&self, input: &Path) -> Result<Option<String>> {
        if let Some(p) = &self.path {
            return Ok(Some(p.clone()));
        }
        if self.verify_path {
            return Ok(Some(files::path_str(input)?.to_owned()));
        }
        Ok(None)
    }
}

pub(crate) fn run(cmd: PfCommand) -> Result<ExitCode> {
    // Ctrl-C or SIGTERM mid-output removes the temporary in progress (and with it any partial
    // plaintext), then exits 130 / 143.
    ward_fsio::install_signal_cleanup()?;
    let result = match cmd {
        PfCommand::Keygen { output } => keygen(&output),
        PfCommand::Encrypt(args) => encrypt(args),
        PfCommand::Decrypt(args) => decrypt(args),
        PfCommand::Verify(args) => verify(args),
        PfCommand::Info { key, input, json } => info(key.as_deref(), &input, json),
        PfCommand::Clean { dir } => clean(&dir),
        PfCommand::Rewrap {
            old_key,
            new_key,
            input,
            output,
        } => rewrap(&old_key, &new_key, &input, output.as_deref()),
    };
    result.or_else(|e| {
        report(None, &e);
        Ok(ExitCode::FAILURE)
    })
}

/// Prints an error chain once, each cause once, and what to do last; `file` (in a tree) first.
fn report(file: Option<&Path>, e: &anyhow::Error) {
    let mut chain = e.chain().map(|c| c.to_string());
    let top = match (file, chain.next()) {
        (Some(f), Some(top)) if !top.contains(&*f.to_string_lossy()) => {
            format!("{}: {top}", f.display())
        }
        (_, top) => top.unwrap_or_default(),
    };
    eprint!("{}", crate::render_error(std::iter::once(top).chain(chain)));
    if let Some(hint) = hint(e) {
        eprintln!("hint: {hint}");
    }
}

/// What to do about an error, when there is something better to say than its text.
fn hint(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .find_map(|cause| match cause.downcast_ref::<ward_pf::Error>()? {
            // The bound path itself is not in the error (decrypted metadata stays out of
            // messages); `ward pf info` shows it to whoever holds the key.
            ward_pf::Error::PathMismatch { .. } => Some(
                "the bound path is set when encrypting (the -o path as typed, or `ward pf \
                 encrypt --path BOUND`); if the file was moved on purpose, `ward pf info` shows \
                 the path it is bound to: check it with `--path BOUND` instead of -V"
                    .to_string(),
            ),
            _ => None,
        })
}

pub(crate) fn keygen(output: &Path) -> Result<ExitCode> {
    let key = WrapKey::generate()?;
    ward_fsio::create_secret_file(output, key.expose_bytes())?;
    eprintln!(
        "wrote a new 16-byte wrap key to {} (mode 0600)",
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Progress bars on stderr for big files when stderr is a terminal, and notices of stale
/// temporaries removed.
struct Console {
    bar: Mutex<Option<ProgressBar>>,
    terminal: bool,
}

impl Console {
    fn new() -> Console {
        Console {
            bar: Mutex::new(None),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn bar(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.bar
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Observer for Console {
    fn start(&self, phase: Phase, path: &Path, total: u64) {
        if total < PROGRESS_MIN_BYTES || !self.terminal {
            return;
        }
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        pb.set_message(format!("{} {}", phase.verb(), path.display()));
        *self.bar() = Some(pb);
    }

    fn advance(&self, done: u64) {
        if let Some(pb) = &*self.bar() {
            pb.set_position(done);
        }
    }

    fn finish(&self) {
        if let Some(pb) = self.bar().take() {
            pb.finish_and_clear();
        }
    }

    fn stale_removed(&self, path: &Path) {
        eprintln!(
            "removed {}, a stale temporary that an interrupted run left",
            path.display()
        );
    }
}

/// Runs `one(job)` on every file of the plan for `input` (continuing past failures in a tree).
fn each_file(
    input: &Path,
    output: Option<&Path>,
    mut one: impl FnMut(&files::Job) -> Result<()>,
) -> Result<ExitCode> {
    let plan = files::plan(input, output)?;
    if !plan.is_tree {
        one(&plan.jobs[0])?;
        return Ok(ExitCode::SUCCESS);
    }
    for path in &plan.not_regular {
        eprintln!("skipping {} (not a regular file)", path.display());
    }
    if plan.stale_temporaries > 0 {
        eprintln!(
            "warning: skipping {} (.ward-tmp) that interrupted runs left under {}; \
             `ward pf clean {}` removes them",
            count(plan.stale_temporaries as u64, "stale temporary file"),
            input.display(),
            input.display()
        );
    }
    let mut failed = 0;
    for job in &plan.jobs {
        if let Err(e) = one(job) {
            report(Some(&job.input), &e);
            failed += 1;
        }
    }
    let total = plan.jobs.len() as u64;
    if failed > 0 {
        bail!("{failed} of {} failed", count(total, "file"));
    }
    eprintln!("{} done", count(total, "file"));
    Ok(ExitCode::SUCCESS)
}

/// "1 file", "2 files".
fn count(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

pub(crate) fn encrypt(args: EncryptArgs) -> Result<ExitCode> {
    let key = WrapKey::load(&args.key)?;
    if args.bound.is_some() && args.input.is_dir() {
        return Err(files::FilesError::BoundPathForTree.into());
    }
    let console = Console::new();
    let settings = files::EncryptSettings {
        bound_path: args.bound.as_deref(),
        verify: !args.no_verify,
        threads: args.threads.threads,
    };
    each_file(&args.input, Some(&args.output), |job| {
        let output = job.output.as_deref().expect("encrypt plans outputs");
        let info = files::encrypt_file(&key, &job.input, output, &settings, &console)?;
        eprintln!(
            "encrypted {} -> {} ({}, bound to {:?})",
            job.input.display(),
            output.display(),
            count(info.size, "byte"),
            info.bound_path
        );
        Ok(())
    })
}

pub(crate) fn decrypt(args: DecryptArgs) -> Result<ExitCode> {
    let key = WrapKey::load(&args.key)?;
    let receipt = args.receipt.verify()?;
    let console = Console::new();
    each_file(&args.input, Some(&args.output), |job| {
        let output = job.output.as_deref().expect("decrypt plans outputs");
        let expected = args.check.expected(&job.input)?;
        if let Some(receipt) = &receipt {
            check_receipt(receipt, &job.input)?;
        }
        let info = files::decrypt_file(
            &key,
            &job.input,
            output,
            expected.as_deref(),
            args.threads.threads,
            &console,
        )?;
        eprintln!(
            "decrypted {} -> {} ({}{})",
            job.input.display(),
            output.display(),
            count(info.size, "byte"),
            if expected.is_some() {
                ", path checked"
            } else {
                ""
            }
        );
        Ok(())
    })
}

pub(crate) fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let key = WrapKey::load(&args.key)?;
    let console = Console::new();
    each_file(&args.input, None, |job| {
        let i = &job.input;
        let expected = args.check.expected(i)?;
        let checked =
            files::verify_file(&key, i, expected.as_deref(), args.threads.threads, &console);
        let info = match checked {
            Ok(info) => info,
            Err(e) => {
                let e = anyhow::Error::new(e);
                if args.json {
                    let object = serde_json::json!({
                        "file": i.display().to_string(),
                        "intact": false,
                        "error": format!("{e:#}"),
                    });
                    println!("{object}");
                }
                return Err(e);
            }
        };
        if args.json {
            let object = serde_json::json!({
                "file": i.display().to_string(),
                "intact": true,
                "format": info.version.to_string(),
                "nodes": info.nodes,
                "size": info.size,
                "bound_path": info.bound_path,
                "path_checked": expected.is_some(),
            });
            println!("{object}");
            return Ok(());
        }
        println!(
            "{}: intact ({}, {}, format {}, bound to {:?}{})",
            i.display(),
            count(info.size, "byte"),
            count(info.nodes, "node"),
            info.version,
            info.bound_path,
            if expected.is_some() {
                ", path checked"
            } else {
                ""
            }
        );
        Ok(())
    })
}

pub(crate) fn info(key: Option<&Path>, input: &Path, json: bool) -> Result<ExitCode> {
    let key = key.map(WrapKey::load).transpose()?;
    let (header, keyed) = files::info_file(key.as_ref(), input)?;
    if json {
        let object = serde_json::json!({
            "file": input.display().to_string(),
            "format": header.version.to_string(),
            "nodes": header.nodes,
            "bytes_on_disk": header.nodes * 4096,
            "bound_path": keyed.as_ref().map(|i| &i.bound_path),
            "size": keyed.as_ref().map(|i| i.size),
        });
        println!("{object}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("file:         {}", input.display());
    println!("format:       Gramine protected file {}", header.version);
    println!(
        "nodes:        {} ({} on disk)",
        header.nodes,
        count(header.nodes * 4096, "byte")
    );
    match keyed {
        Some(info) => {
            println!("bound path:   {:?}", info.bound_path);
            println!("size:         {}", count(info.size, "byte"));
            println!(
                "metadata:     authenticated with the key (run `ward pf verify` to check every node)"
            );
        }
        None => println!("(pass -w KEYFILE to see the bound path and plaintext size)"),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn rewrap(
    old: &Path,
    new: &Path,
    input: &Path,
    output: Option<&Path>,
) -> Result<ExitCode> {
    let old_key = WrapKey::load(old)?;
    let new_key = WrapKey::load(new)?;
    let info = files::rewrap_file(&old_key, &new_key, input, output, &Console::new())?;
    eprintln!(
        "rewrapped {}{} under the new key ({}; only the metadata node was re-encrypted)",
        input.display(),
        output
            .map(|o| format!(" -> {}", o.display()))
            .unwrap_or_default(),
        count(info.size, "byte")
    );
    Ok(ExitCode::SUCCESS)
}

/// `ward pf clean DIR`: removes the temporaries killed runs left, printing each one.
pub(crate) fn clean(dir: &Path) -> Result<ExitCode> {
    let removed = ward_fsio::clean_tree(dir)?;
    for path in &removed {
        println!("removed {}", path.display());
    }
    eprintln!(
        "{} removed under {}",
        count(removed.len() as u64, "stale temporary file"),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
