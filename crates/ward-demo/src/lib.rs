//! ward's main job as a library: the PPML tutorial end to end on the simulated TEE.
//!
//! [`run`] works in a temporary directory (or one kept for inspection) and narrates each step
//! with the equivalent `ward` command and its duration: the data owner makes a development
//! provisioning setup and encrypts a model, its labels and a photo as protected files; the
//! workload author signs the classifier's manifest; the owner's provisioning server (in-process,
//! on loopback) gets a policy naming the workload's measurement; the runtime verifies the
//! manifest, attests, fetches the key over RA-TLS and runs `ward:classify` confined by the
//! manifest; the owner decrypts the result.
//!
//! What it is not: a security boundary. The TEE is ward's simulated one: the flow and the checks
//! are real, the hardware protection is not. It calls only the ward libraries, never the CLI.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use ward_attest::sim::SimPlatformKey;
use ward_manifest::{SignOptions, SignerKey};
use ward_runtime::{AttesterKind, BootOptions};
use zeroize::Zeroizing;

pub mod pytorch;

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["model.onnx", "labels.txt", "model.toml"];

/// The environment variable naming the model directory.
pub const MODEL_DIR_ENV: &str = "WARD_MODEL_DIR";

/// What to run.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DemoOptions {
    /// The photo to classify (default: the shipped cat, `images/chelsea.png` beside the model
    /// directory).
    pub image: Option<PathBuf>,
    /// Ask the workload for JSON instead of text.
    pub json: bool,
    /// Keep the working files in this directory (created; must be empty or absent).
    pub keep: Option<PathBuf>,
    /// The model directory (model.onnx, labels.txt, model.toml); see [`find_model_dir`].
    pub model_dir: Option<PathBuf>,
}

impl DemoOptions {
    /// The defaults: the shipped photo, text output, a temporary directory, the model found by
    /// [`find_model_dir`].
    pub fn new() -> Self {
        Self::default()
    }
}

/// Where the narration goes.
pub trait Narrator {
    /// One line (or a few) of narration.
    fn say(&mut self, text: &str);
    /// A warning the user must see even when narration is quiet; by default, narration.
    fn notice(&mut self, text: &str) {
        self.say(text);
    }
}

/// Narration discarded.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Narrator for Quiet {
    fn say(&mut self, _: &str) {}
}

/// What the demo produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct DemoOutcome {
    /// The decrypted result (text or JSON top-5); wiped from memory when dropped.
    pub result: Zeroizing<String>,
    /// The photo classified.
    pub image: PathBuf,
    /// The model directory used.
    pub model_dir: PathBuf,
    /// The working directory, when it was kept.
    pub kept: Option<PathBuf>,
    /// The provisioning server's audit log, one JSON object a line.
    pub audit: Vec<String>,
}

/// A boxed cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// No model directory holds the model.
    #[error(
        "the model (model.onnx, labels.txt, model.toml) was not found; looked in: {}; give \
         --model-dir DIR or set WARD_MODEL_DIR=DIR",
        looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    ModelNotFound {
        /// Every directory tried, in order.
        looked: Vec<PathBuf>,
    },
    /// The photo is not a file.
    #[error("{} is not a file; give --image PATH", .0.display())]
    NoImage(PathBuf),
    /// The directory to keep files in already holds files.
    #[error("{} is not empty; give --keep an empty or new directory", .0.display())]
    NotEmpty(PathBuf),
    /// A file operation failed.
    #[error("{context}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The Python given to `--pytorch` cannot import what the demo needs.
    #[error("{} cannot import {}\n{hint}", python.display(), missing.join(", "))]
    PyTorchMissing {
        /// The interpreter.
        python: PathBuf,
        /// The modules it lacks.
        missing: Vec<String>,
        /// How to install them.
        hint: String,
    },
    /// The Python given to `--pytorch` is not a file.
    #[error("{} is not a Python interpreter (no such file); give --python PATH\n{hint}", python.display())]
    NoPython {
        /// The path given.
        python: PathBuf,
        /// How to install them.
        hint: String,
    },
    /// A Python step of the data or model owner's (on plain files, natively) failed.
    #[error("{what}: Python exited with {status}:\n{stderr}")]
    Python {
        /// The step.
        what: String,
        /// Its exit status.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// The confined program exited with a failure; its outputs were discarded.
    #[error("the confined program exited with status {code}; its outputs were discarded")]
    ProgramFailed {
        /// Its exit code (128 + N when killed by signal N).
        code: i32,
    },
    /// The confined run's result is not the native run's.
    #[error("the confined run's result.txt differs from the native run's")]
    ResultsDiffer,
    /// A step failed; the cause is the library's error.
    #[error("{step}")]
    Step {
        /// The step, as narrated.
        step: &'static str,
        /// Why.
        #[source]
        source: BoxError,
    },
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> DemoError {
    move |source| DemoError::Io { context, source }
}

fn step<E: Into<BoxError>>(step: &'static str) -> impl FnOnce(E) -> DemoError {
    move |e| DemoError::Step {
        step,
        source: e.into(),
    }
}

/// The model directories tried, in order: `explicit` (`--model-dir`), then `$WARD_MODEL_DIR`,
/// then `<exe dir>/../share/ward/models/efficientnet-lite0` (an installed ward), then the source
/// tree's `models/efficientnet-lite0`.
pub fn model_dir_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_owned()];
    }
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os(MODEL_DIR_ENV).filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
    }
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
    {
        out.push(bin.join("../share/ward/models/efficientnet-lite0"));
    }
    out.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/efficientnet-lite0"));
    out
}

/// The first of [`model_dir_candidates`] that holds every [`MODEL_FILES`] file.
pub fn find_model_dir(explicit: Option<&Path>) -> Result<PathBuf, DemoError> {
    let looked = model_dir_candidates(explicit);
    looked
        .iter()
        .find(|d| MODEL_FILES.iter().all(|f| d.join(f).is_file()))
        .cloned()
        .ok_or(DemoError::ModelNotFound { looked })
}

struct Steps<'a> {
    n: usize,
    narrator: &'a mut dyn Narrator,
}

impl Steps<'_> {
    fn run<T>(
        &mut self,
        who: &str,
        what: &str,
        f: impl FnOnce(&mut dyn Narrator) -> Result<T, DemoError>,
    ) -> Result<T, DemoError> {
        self.n += 1;
        self.narrator.say(&format!("\n[{}] {who}: {what}", self.n));
        let t = Instant::now();
        let out = f(self.narrator)?;
        self.narrator
            .say(&format!("    done in {:.1} ms", ms(t.elapsed())));
        Ok(out)
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn copy(from: &Path, to: &Path) -> Result<(), DemoError> {
    std::fs::copy(from, to).map(drop).map_err(io(format!(
        "copying {} to {}",
        from.display(),
        to.display()
    )))
}

fn mkdir(p: &Path) -> Result<(), DemoError> {
    std::fs::create_dir_all(p).map_err(io(format!("creating {}", p.display())))
}

// Protected file written beside its target, synced, renamed into place.
fn encrypt(
    key: &ward_pf::WrapKey,
    input: &Path,
    output: &Path,
    bound: &str,
    threads: usize,
) -> Result<u64, DemoError> {
    let mut src = std::fs::File::open(input).map_err(io(format!("opening {}", input.display())))?;
    let dir = output.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .suffix(".ward-tmp")
        .tempfile_in(dir)
        .map_err(io(format!(
            "creating a temporary file in {}",
            dir.display()
        )))?;
    let options = ward_pf::Options {
        threads,
        ..Default::default()
    };
    ward_pf::encrypt(&mut src, key, bound, tmp.as_file_mut(), options)
        .map_err(step("encrypting the inputs"))?;
    tmp.as_file()
        .sync_all()
        .map_err(io(format!("syncing {}", output.display())))?;
    tmp.persist(output)
        .map_err(|e| e.error)
        .map_err(io(format!("renaming into place at {}", output.display())))?;
    std::fs::metadata(output)
        .map(|m| m.len())
        .map_err(io(format!("reading {}", output.display())))
}

/// The directory to work in: `keep` (created; must be empty), or a temporary one removed when
/// the returned guard drops.
fn work_dir(keep: Option<&Path>) -> Result<(Option<tempfile::TempDir>, PathBuf), DemoError> {
    match keep {
        Some(d) => {
            mkdir(d)?;
            let mut entries =
                std::fs::read_dir(d).map_err(io(format!("reading {}", d.display())))?;
            if entries.next().is_some() {
                return Err(DemoError::NotEmpty(d.to_owned()));
            }
            Ok((None, d.to_owned()))
        }
        None => {
            let tmp = tempfile::tempdir().map_err(io("creating a temporary directory".into()))?;
            let dir = tmp.path().to_owned();
            Ok((Some(tmp), dir))
        }
    }
}

/// A free loopback port, for a server the (measured) manifest names.
fn free_port() -> Result<u16, DemoError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(io("finding a free loopback port".into()))
        .map(|a| a.port())
}

/// The owner's policy naming `signed`'s workload (on the simulated platform of `setup`), and
/// her provisioning server on `port`, started on `rt`.
fn serve_owner(
    rt: &tokio::runtime::Runtime,
    setup: &ward_provision::dev::DevSetup,
    signed: &ward_manifest::SignedManifest,
    port: u16,
) -> Result<ward_provision::ServerHandle, DemoError> {
    let platform = SimPlatformKey::load(&setup.sim_key)
        .map_err(step("loading the simulated platform key"))?
        .public();
    let policy = ward_attest::Policy::for_workload(ward_manifest::identity(signed))
        .trust_simulated_platform(&platform)
        .to_toml();
    std::fs::write(&setup.policy, policy)
        .map_err(io(format!("writing {}", setup.policy.display())))?;
    let mut config = ward_provision::ServerConfig::load(&setup.server_config)
        .map_err(step("loading the server configuration"))?;
    config.listen = ([127, 0, 0, 1], port).into();
    let evidence = Arc::new(ward_attest::AnyVerifier::sim());
    rt.block_on(async {
        ward_provision::Server::bind(&config, evidence)
            .await?
            .spawn()
    })
    .map_err(step("starting the provisioning server"))
}

/// Decrypts the protected file at `dir/bound` (bound to that path) with `wrap`, writes the
/// plaintext to `out`, and returns it as text.
fn decrypt_text(
    wrap: &ward_pf::WrapKey,
    dir: &Path,
    bound: &str,
    out: &Path,
) -> Result<Zeroizing<String>, DemoError> {
    let path = dir.join(bound);
    let src = std::fs::File::open(&path).map_err(io(format!("opening {}", path.display())))?;
    let mut plain_bytes = Zeroizing::new(Vec::new());
    ward_pf::decrypt(
        &src,
        wrap,
        Some(bound),
        &mut *plain_bytes,
        Default::default(),
    )
    .map_err(step("decrypting the result"))?;
    std::fs::write(out, &plain_bytes[..]).map_err(io(format!("writing {}", out.display())))?;
    let text =
        String::from_utf8(std::mem::take(&mut *plain_bytes)).map_err(step("reading the result"))?;
    Ok(Zeroizing::new(text))
}

/// The provisioning server's audit log under `owner`, narrated.
fn audit_log(owner: &Path, narrator: &mut dyn Narrator) -> Vec<String> {
    let audit: Vec<String> = std::fs::read_to_string(owner.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    narrator.say("\nthe provisioning server's audit log:");
    for line in &audit {
        narrator.say(&format!("    {line}"));
    }
    audit
}

/// The model directory and the photo to classify (the shipped cat unless `options.image`).
fn inputs(options: &DemoOptions) -> Result<(PathBuf, PathBuf), DemoError> {
    let models = find_model_dir(options.model_dir.as_deref())?;
    let image = match &options.image {
        Some(i) => i.clone(),
        None => models.join("../images/chelsea.png"),
    };
    if !image.is_file() {
        return Err(DemoError::NoImage(image));
    }
    Ok((models, image))
}

/// The data owner's two steps: `ward provision init` in `dir/provision`, then each of `files`
/// encrypted from `dir/plaintext` to `dir/encrypted` (bound to `encrypted/NAME`) on `threads`
/// threads (0 = all cores). `what` names the files in the narration.
fn init_and_encrypt(
    steps: &mut Steps<'_>,
    dir: &Path,
    files: &[&str],
    what: &str,
    threads: usize,
) -> Result<(ward_provision::dev::DevSetup, ward_pf::WrapKey), DemoError> {
    let owner = dir.join("provision");
    let setup = steps.run(
        "data owner",
        "ward provision init --dir provision   (CA, server certificate, wrap key, sim platform key)",
        |_| {
            ward_provision::dev::init_dir(&owner, None, ([127, 0, 0, 1], 0).into())
                .map_err(step("making the provisioning setup"))
        },
    )?;
    let wrap = ward_pf::WrapKey::load(&setup.wrap_key).map_err(step("loading the wrap key"))?;
    let width = files.iter().map(|f| f.len()).max().unwrap_or(0) + 1;
    steps.run(
        "data owner",
        &format!(
            "ward pf encrypt -w provision/secrets/wrap_key -i plaintext/X -o encrypted/X   ({what})"
        ),
        |n| {
            for f in files {
                let bound = format!("encrypted/{f}");
                let plain = dir.join("plaintext").join(f);
                let size = encrypt(&wrap, &plain, &dir.join(&bound), &bound, threads)?;
                n.say(&format!(
                    "    encrypted/{f:<width$} {size:>10} bytes (Gramine protected file)"
                ));
            }
            Ok(())
        },
    )?;
    Ok((setup, wrap))
}

/// Runs the tutorial end to end; see the crate documentation.
pub fn run(options: &DemoOptions, narrator: &mut dyn Narrator) -> Result<DemoOutcome, DemoError> {
    let (models, image) = inputs(options)?;
    let (_tmp, dir) = work_dir(options.keep.as_deref())?;
    let dir = dir.as_path();
    let start = Instant::now();
    narrator.say(&format!(
        "ward demo: the PPML tutorial with a simulated TEE, in {}",
        dir.display()
    ));
    narrator.say(
        "The data owner's model, class list and photo are encrypted; the workload gets the key\n\
         only after the owner's server has checked its evidence; the result comes back encrypted.",
    );
    let mut steps = Steps { n: 0, narrator };

    // Plain inputs, as the data owner has them.
    let plain = dir.join("plaintext");
    let app = dir.join("app");
    mkdir(&plain)?;
    mkdir(&app)?;
    mkdir(&dir.join("encrypted"))?;
    copy(&models.join("model.onnx"), &plain.join("model.onnx"))?;
    copy(&models.join("labels.txt"), &plain.join("labels.txt"))?;
    copy(&image, &plain.join("input.img"))?;
    copy(&models.join("model.toml"), &app.join("model.toml"))?;

    let owner = dir.join("provision");
    let (setup, wrap) = init_and_encrypt(
        &mut steps,
        dir,
        &["model.onnx", "labels.txt", "input.img"],
        "model, labels, photo",
        0,
    )?;

    // A free loopback port for the server, named in the (measured) manifest.
    let port = free_port()?;
    let manifest_path = dir.join("classify.toml");
    std::fs::write(&manifest_path, manifest(port, options.json))
        .map_err(io(format!("writing {}", manifest_path.display())))?;
    let signed_path = ward_manifest::signed_name(&manifest_path);
    let registry = ward_classify::registry();
    let runtime_digest =
        ward_runtime::runtime_digest().map_err(step("measuring the ward runtime"))?;
    let signed = steps.run(
        "workload author",
        "ward sign keygen -o signer.pem; ward sign --key signer.pem classify.toml",
        |n| {
            let key = SignerKey::generate();
            key.save(&dir.join("signer.pem"))
                .map_err(step("saving the signer key"))?;
            let check = |m: &ward_manifest::Manifest| {
                registry
                    .check(m.workload(), &m.loader.argv)
                    .map_err(BoxError::from)
            };
            let (signed, stats) = ward_manifest::sign_to_file(
                &key,
                &manifest_path,
                &signed_path,
                runtime_digest,
                SignOptions {
                    check: Some(&check),
                    ..Default::default()
                },
            )
            .map_err(step("signing the manifest"))?;
            n.say(&format!(
                "    {} trusted file(s) hashed; measurement (MRENCLAVE) {}",
                stats.files, signed.signature.measurement
            ));
            n.say(&format!(
                "    signer (MRSIGNER) {}",
                signed.signature.mr_signer
            ));
            Ok(signed)
        },
    )?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("starting the async runtime".into()))?;
    let server = steps.run(
        "data owner",
        "policy.toml names the measurement; ward provision serve on loopback",
        |n| {
            n.say(&format!("    listening on 127.0.0.1:{port}"));
            serve_owner(&rt, &setup, &signed, port)
        },
    )?;

    let ran = steps.run(
        "host",
        "ward run classify.signed.toml   (verify manifest, attest, fetch key, classify)",
        |n| {
            n.notice("    NOTICE: simulated TEE — no hardware protects this workload");
            let t = Instant::now();
            let key = SimPlatformKey::load(&setup.sim_key)
                .map_err(step("loading the simulated platform key"))?;
            let ctx = ward_runtime::boot(
                &signed_path,
                BootOptions {
                    runtime_digest,
                    attester: AttesterKind::Sim,
                    sim_key: Some(key),
                    host_args: Vec::new(),
                },
            )
            .map_err(step("booting the workload"))?;
            let booted = t.elapsed();
            registry
                .run(&ctx)
                .map_err(step("running the workload"))?;
            let tm = &ctx.timings;
            n.say(&format!(
                "    boot {:.1} ms (manifest {:.1}, attest {:.1}, provision {:.1}), classify {:.1} ms",
                ms(booted),
                ms(tm.manifest),
                ms(tm.attest),
                ms(tm.provision),
                ms(t.elapsed() - booted)
            ));
            Ok(())
        },
    );
    // Stop the server whatever happened.
    let stopped = rt.block_on(server.shutdown());
    ran?;
    stopped.map_err(step("stopping the provisioning server"))?;

    let result = steps.run(
        "data owner",
        "ward pf decrypt -w provision/secrets/wrap_key -i encrypted/result.txt -o plaintext/result.txt",
        |_| decrypt_text(&wrap, dir, "encrypted/result.txt", &plain.join("result.txt")),
    )?;
    let narrator = steps.narrator;
    let audit = audit_log(&owner, narrator);
    narrator.say(&format!(
        "\nall steps passed in {:.1} ms{}",
        ms(start.elapsed()),
        match &options.keep {
            Some(d) => format!("; files kept in {}", d.display()),
            None => String::new(),
        }
    ));
    Ok(DemoOutcome {
        result,
        image,
        model_dir: models,
        kept: options.keep.clone(),
        audit,
    })
}

/// The tutorial's workload manifest (as `examples/ppml/classify.toml`), for a server on `port`.
pub fn manifest(port: u16, json: bool) -> String {
    format!(
        r#"# The PPML tutorial's workload (see examples/ppml/classify.toml).
[loader]
entrypoint = "ward:classify"
argv = ["--model", "/protected/model.onnx", "--labels", "/protected/labels.txt",
        "--image", "/protected/input.img", "--spec", "/app/model.toml",
        "--output", "/protected/result.txt", "--top", "5"{json}]

[[fs.mounts]]
type = "encrypted"
path = "/protected"
uri = "file:encrypted"
key_name = "default"

[[fs.mounts]]
path = "/app"
uri = "file:app"

[sgx]
isv_prod_id = 1
isv_svn = 1
trusted_files = ["file:app/"]

[provision]
servers = ["127.0.0.1:{port}"]
ca_chain = "file:provision/ca.pem"
secrets = [{{ name = "wrap_key", key_name = "default" }}]
"#,
        json = if json { r#", "--json""# } else { "" }
    )
}
