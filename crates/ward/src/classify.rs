//! `ward classify`: the built-in image classifier (ward-infer) on plain files — the "before the
//! enclave" baseline: no keys, no attestation, no VFS, the same model and the same output.

use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;
use ward_infer::{Classifier, ModelSpec};

/// Classify images with an ONNX model, on plain files.
///
/// Decodes each image, resizes and centre-crops it as the model expects, runs the model (pure
/// Rust, tract) and prints the most probable classes with their softmax probabilities. This is
/// what `ward run` does inside the (simulated) TEE, minus the encryption: use it to check a model
/// and its labels, or to measure the cost of the enclave against it (--bench).
#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct ClassifyArgs {
    /// The ONNX model: one float32 image input, one output of class scores (logits or
    /// probabilities). The shipped one is models/efficientnet-lite0/model.onnx.
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,

    /// The class names, one per line in the model's class order (line 1 is class 0); their number
    /// must equal the model's output size. The shipped ones: models/efficientnet-lite0/labels.txt.
    #[arg(long, value_name = "PATH")]
    pub labels: PathBuf,

    /// An image to classify: PNG, JPEG, GIF or WebP, at least 16 pixels a side. Repeat the flag
    /// for several images; the model is loaded once.
    #[arg(long = "image", value_name = "PATH", required = true)]
    pub images: Vec<PathBuf>,

    /// How the model wants its input, as TOML: input size, the side to resize to before the
    /// centre crop, per-channel mean and std, NCHW or NHWC, RGB or BGR (see
    /// models/efficientnet-lite0/model.toml). Without it: the shipped EfficientNet-Lite0's
    /// (256 → 224 crop, (pixel/255 - 0.498) / 0.502, NCHW, RGB).
    #[arg(long, value_name = "PATH")]
    pub spec: Option<PathBuf>,

    /// How many classes to print per image, most probable first (more than the model has prints
    /// them all).
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = at_least_one)]
    pub top: usize,

    /// Print JSON instead of text: for one image an array of {"rank", "index", "label",
    /// "probability"}; for several, an array of {"image", "predictions"}.
    #[arg(long)]
    pub json: bool,

    /// Threads for inference: 1 runs on the calling thread, N uses a pool of N, 0 one per core.
    /// On a 2-core machine 2 threads cut EfficientNet-Lite0's inference by about a third.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// Measure: after printing the result, classify each image N more times (after one
    /// warm-up) and print to stderr the model load time and, per image, the latency of a whole
    /// classification (decode, preprocess, inference, top-k) and of inference alone: median, 90th
    /// percentile and minimum.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub bench: Option<usize>,
}

const EXAMPLES: &str = "\
Examples, with the shipped model (text, then JSON for two images, then timings on 2 threads):
  ward classify --model models/efficientnet-lite0/model.onnx \\
      --labels models/efficientnet-lite0/labels.txt --image models/images/chelsea.png
  ward classify --model ... --labels ... --image a.jpg --image b.png --top 3 --json
  ward classify --model ... --labels ... --image a.jpg --threads 2 --bench 50";

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))
}

fn read_text(path: &Path, what: &str) -> Result<String> {
    String::from_utf8(read(path, what)?)
        .with_context(|| format!("the {what} {} is not UTF-8 text", path.display()))
}

/// `ward classify`.
pub fn run(args: &ClassifyArgs) -> Result<()> {
    let spec = match &args.spec {
        Some(p) => ModelSpec::from_toml(&read_text(p, "model spec")?)
            .with_context(|| format!("in the model spec {}", p.display()))?,
        None => ModelSpec::default(),
    };
    let labels = read_text(&args.labels, "labels file")?;
    let model = read(&args.model, "model")?;

    let started = Instant::now();
    let mut classifier = Classifier::load(&model, &labels, &spec).with_context(|| {
        format!(
            "loading the model {} with the labels {}",
            args.model.display(),
            args.labels.display()
        )
    })?;
    let load_ms = ms(started);
    drop(model);
    classifier.set_threads(args.threads).context("--threads")?;

    let outcomes = classifier.classify_many(
        &args.images,
        |path| -> Result<Vec<u8>> { read(path, "image") },
        args.top,
    );
    let mut results = Vec::with_capacity(args.images.len());
    for (path, outcome) in args.images.iter().zip(outcomes) {
        let top = outcome.with_context(|| format!("classifying {}", path.display()))?;
        results.push((path.display().to_string(), top));
    }
    let images = match args.bench {
        Some(_) => args
            .images
            .iter()
            .map(|p| read(p, "image"))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    print!("{}", ward_infer::format_results(&results, args.json));

    if let Some(runs) = args.bench {
        eprintln!(
            "model load + optimise: {load_ms:.1} ms ({}, {} classes); inference on {} thread{}",
            args.model.display(),
            classifier.labels().len(),
            classifier.threads(),
            if classifier.threads() == 1 { "" } else { "s" }
        );
        for (path, bytes) in args.images.iter().zip(&images) {
            bench_one(&classifier, path, bytes, runs, args.top)?;
        }
    }
    Ok(())
}

fn bench_one(c: &Classifier, path: &Path, bytes: &[u8], runs: usize, top: usize) -> Result<()> {
    c.classify(bytes, top)?; // warm-up
    let mut whole = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(c.classify(bytes, top)?);
        whole.push(ms(t));
    }
    let input = c.preprocess(bytes)?;
    let mut inference = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(c.run(&input)?);
        inference.push(ms(t));
    }
    eprintln!(
        "{}: {runs} runs; per image {}; inference alone {}",
        path.display(),
        summary(whole),
        summary(inference)
    );
    Ok(())
}

/// `median 24.1 ms, p90 25.0 ms, min 23.2 ms`
fn summary(mut samples: Vec<f64>) -> String {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:.2} ms, p90 {:.2} ms, min {:.2} ms",
        at(0.5),
        at(0.9),
        samples[0]
    )
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}
