//! `ward classify`: the built-in image classifier (ward-classify) on plain files — the "before
//! the enclave" baseline: no keys, no attestation, no VFS, the same model, arguments and output
//! as `ward:classify`.

use anyhow::{Context, Result};
use clap::Args;
use std::path::Path;
use std::time::Instant;
use ward_classify::{Inputs, PlainFiles};
use ward_infer::Classifier;

/// Classify images with an ONNX model, on plain files.
///
/// Decodes each image, resizes and centre-crops it as the model expects, runs the model (pure
/// Rust, tract) and prints the most probable classes with their softmax probabilities. This is
/// what `ward run` does inside the (simulated) TEE, minus the encryption: use it to check a model
/// and its labels, or to measure the cost of the enclave against it (--bench).
#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ClassifyCommand {
    #[command(flatten)]
    pub args: ward_classify::ClassifyArgs,

    /// Measure: after printing the result, classify each image N more times (after one
    /// warm-up) and print to stderr the model load time and, per image, the latency of a whole
    /// classification (decode, preprocess, inference, top-k) and of inference alone: median, 90th
    /// percentile and minimum.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub bench: Option<u64>,
}

const EXAMPLES: &str = "\
Examples, with the shipped model (text, then JSON for two images, then timings on 2 threads):
  ward classify --model models/efficientnet-lite0/model.onnx \\
      --labels models/efficientnet-lite0/labels.txt --image models/images/chelsea.png
  ward classify --model ... --labels ... --image a.jpg --image b.png --top 3 --json
  ward classify --model ... --labels ... --image a.jpg --threads 2 --bench 50";

/// `ward classify`.
pub(crate) fn run(cli: &ClassifyCommand) -> Result<()> {
    let args = &cli.args;
    let images = ward_classify::images(args, &PlainFiles)?;
    let started = Instant::now();
    let classifier = ward_classify::load(args, &PlainFiles)?;
    let load_ms = ms(started);
    let results = ward_classify::classify(&classifier, &images, args.top, &PlainFiles)?;
    let text = ward_classify::format(&results, args);
    match &args.output {
        Some(out) => std::fs::write(out, text.as_bytes())
            .with_context(|| format!("writing {}", out.display()))?,
        None => print!("{}", text.as_str()),
    }

    if let Some(runs) = cli.bench {
        eprintln!(
            "model load + optimise: {load_ms:.1} ms ({}, {} classes); inference on {} thread{}",
            args.model.display(),
            classifier.labels().len(),
            classifier.threads(),
            if classifier.threads() == 1 { "" } else { "s" }
        );
        for path in &images {
            let bytes = PlainFiles
                .read(path)
                .map_err(anyhow::Error::from_boxed)
                .with_context(|| format!("reading the image {}", path.display()))?;
            bench_one(&classifier, path, &bytes, runs as usize, args.top)?;
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
