//! `ward demo`: the whole PPML tutorial in a temporary directory, on the simulated TEE, narrated
//! step by step with timings. The main job on a fresh machine.

use crate::{pf, provision, runtime};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use ward_attest::sim::SimPlatformKey;
use ward_manifest::SignerKey;
use ward_runtime::{AttesterKind, BootOptions};

/// Run the tutorial end to end: encrypt a model, labels and a photo, provision the key only to
/// the measured workload, classify inside the (simulated) TEE, decrypt the result.
///
/// Works in a temporary directory (or --keep DIR) and prints each step with the equivalent
/// `ward` command and how long it took. The TEE is ward's simulated one: the flow and the checks
/// are real, the hardware protection is not.
#[derive(Args)]
pub struct DemoArgs {
    /// Classify this photo (JPEG, PNG, GIF or WebP) instead of the shipped cat.
    #[arg(long, value_name = "PATH")]
    image: Option<PathBuf>,
    /// Print only the decrypted top-5 as JSON on stdout (the narration goes to stderr).
    #[arg(long)]
    json: bool,
    /// Keep the working files in DIR (created; must be empty or absent).
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// The model directory (model.onnx, labels.txt, model.toml).
    #[arg(long, value_name = "DIR", default_value_os_t = default_models().join("efficientnet-lite0"))]
    model_dir: PathBuf,
}

/// `models/` of the source tree this binary was built from (the shipped model and photos).
pub fn default_models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

struct Narrator {
    step: usize,
    out: Out,
}

/// Where narration goes: stdout, or stderr when stdout carries the JSON result.
#[derive(Clone, Copy)]
struct Out {
    json: bool,
}

macro_rules! say {
    ($n:expr, $($arg:tt)*) => {
        if $n.json { eprintln!($($arg)*) } else { println!($($arg)*) }
    };
}

impl Narrator {
    fn step<T>(&mut self, who: &str, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.step += 1;
        say!(self.out, "\n[{}] {who}: {what}", self.step);
        let t = Instant::now();
        let out = f()?;
        say!(
            self.out,
            "    done in {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        Ok(out)
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}

pub fn run(args: DemoArgs) -> Result<ExitCode> {
    let tmp;
    let dir: &Path = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            if std::fs::read_dir(d)?.next().is_some() {
                bail!(
                    "{} is not empty; give --keep an empty or new directory",
                    d.display()
                );
            }
            d
        }
        None => {
            tmp = tempfile::tempdir().context("creating a temporary directory")?;
            tmp.path()
        }
    };
    let image = args
        .image
        .clone()
        .unwrap_or_else(|| default_models().join("images/chelsea.png"));
    let models = &args.model_dir;
    for f in ["model.onnx", "labels.txt", "model.toml"] {
        if !models.join(f).is_file() {
            bail!(
                "{} is missing; run from a ward source tree or give --model-dir",
                models.join(f).display()
            );
        }
    }
    if !image.is_file() {
        bail!("{} is not a file", image.display());
    }
    let o = Out { json: args.json };
    let mut n = Narrator { step: 0, out: o };
    let start = Instant::now();
    say!(
        o,
        "ward demo: the PPML tutorial with a simulated TEE, in {}",
        dir.display()
    );
    say!(
        o,
        "The data owner's model, class list and photo are encrypted; the workload gets the key"
    );
    say!(
        o,
        "only after the owner's server has checked its evidence; the result comes back encrypted."
    );

    // Plain inputs, as the data owner has them.
    let plain = dir.join("plaintext");
    let app = dir.join("app");
    std::fs::create_dir_all(&plain)?;
    std::fs::create_dir_all(&app)?;
    std::fs::create_dir_all(dir.join("encrypted"))?;
    copy(&models.join("model.onnx"), &plain.join("model.onnx"))?;
    copy(&models.join("labels.txt"), &plain.join("labels.txt"))?;
    copy(&image, &plain.join("input.img"))?;
    copy(&models.join("model.toml"), &app.join("model.toml"))?;

    let owner = dir.join("provision");
    n.step(
        "data owner",
        "ward provision init --dir provision   (CA, server certificate, wrap key, sim platform key)",
        || provision::init(&owner, None, "127.0.0.1:0").map(drop),
    )?;
    let key_file = owner.join("secrets/wrap_key");
    let wrap = pf::load_key(&key_file)?;
    n.step(
        "data owner",
        "ward pf encrypt -w provision/secrets/wrap_key -i plaintext/X -o encrypted/X   (model, labels, photo)",
        || {
            for f in ["model.onnx", "labels.txt", "input.img"] {
                let bound = format!("encrypted/{f}");
                pf::encrypt_file(&wrap, &plain.join(f), &dir.join(&bound), &bound, true, 0)?;
                let size = std::fs::metadata(dir.join(&bound))?.len();
                say!(o, "    encrypted/{f:<11} {:>10} bytes (Gramine protected file)", size);
            }
            Ok(())
        },
    )?;

    // A free loopback port for the server, named in the (measured) manifest.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let manifest_path = dir.join("classify.toml");
    std::fs::write(&manifest_path, manifest(port, args.json))?;
    let signed_path = runtime::signed_name(&manifest_path);
    let signed = n.step(
        "workload author",
        "ward sign keygen -o signer.pem; ward sign --key signer.pem classify.toml",
        || {
            let key = SignerKey::generate();
            key.save(&dir.join("signer.pem"))?;
            let (signed, files, _) = runtime::sign_file(
                &key,
                &manifest_path,
                &signed_path,
                ward_runtime::runtime_digest()?,
            )?;
            say!(
                o,
                "    {files} trusted file(s) hashed; measurement (MRENCLAVE) {}",
                signed.signature.measurement
            );
            say!(o, "    signer (MRSIGNER) {}", signed.signature.mr_signer);
            Ok(signed)
        },
    )?;

    let sim_key = owner.join("sim-platform.pem");
    let sim_public = SimPlatformKey::load(&sim_key)?.public().to_hex();
    let rt = provision::runtime()?;
    let server = n.step(
        "data owner",
        &format!("policy.toml names the measurement; ward provision serve on 127.0.0.1:{port}"),
        || {
            let policy = format!(
                "# DEVELOPMENT ONLY: the simulated TEE proves nothing about hardware.\n\
                 allow_simulated = true\nsimulated_platform_keys = [\"{sim_public}\"]\n\n{}",
                runtime::policy_snippet(&signed)
            );
            std::fs::write(owner.join("policy.toml"), policy)?;
            let mut config = ward_provision::ServerConfig::load(&owner.join("server.toml"))?;
            config.listen = ([127, 0, 0, 1], port).into();
            let evidence = provision::evidence_verifier(None, &owner)?;
            let handle = rt.block_on(async {
                ward_provision::Server::bind(&config, evidence)
                    .await?
                    .spawn()
            })?;
            Ok(handle)
        },
    )?;

    let ran = n.step(
        "host",
        "ward run classify.signed.toml   (verify manifest, attest, fetch key, classify)",
        || {
            eprintln!("    NOTICE: simulated TEE — no hardware protects this workload");
            let t = Instant::now();
            let ctx = ward_runtime::boot(
                &signed_path,
                BootOptions {
                    runtime_digest: ward_runtime::runtime_digest()?,
                    attester: AttesterKind::Sim,
                    sim_key: Some(SimPlatformKey::load(&sim_key)?),
                    host_args: Vec::new(),
                },
            )?;
            let booted = t.elapsed();
            runtime::registry().run(&ctx)?;
            let tm = &ctx.timings;
            say!(
                o,
                "    boot {:.1} ms (manifest {:.1}, attest {:.1}, provision {:.1}), classify {:.1} ms",
                booted.as_secs_f64() * 1e3,
                tm.manifest.as_secs_f64() * 1e3,
                tm.attest.as_secs_f64() * 1e3,
                tm.provision.as_secs_f64() * 1e3,
                (t.elapsed() - booted).as_secs_f64() * 1e3
            );
            Ok(())
        },
    );
    // Stop the server whatever happened.
    rt.block_on(server.shutdown())?;
    ran?;

    let result = plain.join("result.txt");
    n.step(
        "data owner",
        "ward pf decrypt -w provision/secrets/wrap_key -i encrypted/result.txt -o plaintext/result.txt",
        || {
            pf::decrypt_file(
                &wrap,
                &dir.join("encrypted/result.txt"),
                &result,
                Some("encrypted/result.txt"),
                0,
            )
        },
    )?;
    let text = std::fs::read_to_string(&result)?;
    let audit = std::fs::read_to_string(owner.join("audit.jsonl")).unwrap_or_default();
    say!(o, "\nthe provisioning server's audit log:");
    for line in audit.lines() {
        say!(o, "    {line}");
    }
    say!(
        o,
        "\nall steps passed in {:.1} ms{}",
        start.elapsed().as_secs_f64() * 1e3,
        match &args.keep {
            Some(d) => format!("; files kept in {}", d.display()),
            None => String::new(),
        }
    );
    if args.json {
        print!("{text}");
    } else {
        println!(
            "\ndecrypted result.txt (top-5 for {}):\n{text}",
            image.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn manifest(port: u16, json: bool) -> String {
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
