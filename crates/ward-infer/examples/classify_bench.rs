//! Classify an image and time each stage: model load + optimise, preprocess (decode, resize,
//! normalise), run, end to end; at one or more thread counts. Used by `scripts/bench-infer.sh`.
//!
//! ```sh
//! cargo run --release -p ward-infer --example classify_bench -- \
//!     --model models/efficientnet-lite0/model.onnx --labels models/efficientnet-lite0/labels.txt \
//!     --image models/images/chelsea.png --threads 1,2 --runs 50
//! ```
//!
//! Prints the top-k, then one line per measurement, `name threads=T median=… p90=… min=… n=…`
//! (milliseconds). `--dump-input F` writes the preprocessed tensor as raw little-endian f32 and
//! `--dump-logits F` the scores, for comparison with another engine.

use std::path::PathBuf;
use std::time::Instant;
use ward_infer::{format_text, Classifier, ModelSpec};

struct Args {
    model: PathBuf,
    labels: PathBuf,
    image: PathBuf,
    spec: Option<PathBuf>,
    threads: Vec<usize>,
    runs: usize,
    load_runs: usize,
    top: usize,
    dump_input: Option<PathBuf>,
    dump_logits: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let mut a = Args {
        model: root.join("efficientnet-lite0/model.onnx"),
        labels: root.join("efficientnet-lite0/labels.txt"),
        image: root.join("images/chelsea.png"),
        spec: None,
        threads: vec![1],
        runs: 30,
        load_runs: 3,
        top: 5,
        dump_input: None,
        dump_logits: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--model" => a.model = value()?.into(),
            "--labels" => a.labels = value()?.into(),
            "--image" => a.image = value()?.into(),
            "--spec" => a.spec = Some(value()?.into()),
            "--threads" => {
                a.threads = value()?
                    .split(',')
                    .map(|t| num(t.to_string()))
                    .collect::<Result<_, _>>()?
            }
            "--runs" => a.runs = num(value()?)?.max(1),
            "--load-runs" => a.load_runs = num(value()?)?.max(1),
            "--top" => a.top = num(value()?)?,
            "--dump-input" => a.dump_input = Some(value()?.into()),
            "--dump-logits" => a.dump_logits = Some(value()?.into()),
            "-h" | "--help" => {
                return Err(
                    "usage: classify_bench [--model F] [--labels F] [--image F] [--spec F] \
                            [--threads 1,2] [--runs N] [--load-runs N] [--top K] \
                            [--dump-input F] [--dump-logits F]"
                        .to_string(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// Median, 90th percentile and minimum of `samples` (milliseconds), as the report line.
fn stats(name: &str, threads: usize, mut samples: Vec<f64>) -> String {
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "{name} threads={threads} median={:.3} p90={:.3} min={:.3} n={}",
        pick(0.5),
        pick(0.9),
        samples[0],
        samples.len()
    )
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn write_f32(path: &PathBuf, data: &[f32]) -> Result<(), String> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> Result<(), String> {
    let a = parse_args()?;
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let model = read(&a.model)?;
    let labels = String::from_utf8(read(&a.labels)?).map_err(|e| format!("labels: {e}"))?;
    let image = read(&a.image)?;
    let spec = match &a.spec {
        Some(p) => {
            ModelSpec::from_toml(&String::from_utf8_lossy(&read(p)?)).map_err(|e| e.to_string())?
        }
        None => ModelSpec::default(),
    };

    let mut load = Vec::new();
    let mut classifier = None;
    for _ in 0..a.load_runs {
        let t = Instant::now();
        classifier = Some(Classifier::load(&model, &labels, &spec).map_err(|e| e.to_string())?);
        load.push(ms(t));
    }
    let mut classifier = classifier.ok_or("no load")?;

    let input = classifier.preprocess(&image).map_err(|e| e.to_string())?;
    let predictions = classifier
        .predict(&input, a.top)
        .map_err(|e| e.to_string())?;
    print!("{}", format_text(&predictions));
    if let Some(p) = &a.dump_input {
        write_f32(p, input.as_slice())?;
    }
    if let Some(p) = &a.dump_logits {
        write_f32(p, &classifier.run(&input).map_err(|e| e.to_string())?)?;
    }
    println!("{}", stats("load", 1, load));

    for &threads in &a.threads {
        classifier.set_threads(threads).map_err(|e| e.to_string())?;
        classifier.run(&input).map_err(|e| e.to_string())?; // warm-up (pool start, caches)
        let (mut pre, mut run, mut total) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..a.runs {
            let t = Instant::now();
            let x = classifier.preprocess(&image).map_err(|e| e.to_string())?;
            pre.push(ms(t));
            let t = Instant::now();
            classifier.run(&x).map_err(|e| e.to_string())?;
            run.push(ms(t));
        }
        for _ in 0..a.runs {
            let t = Instant::now();
            classifier
                .classify(&image, a.top)
                .map_err(|e| e.to_string())?;
            total.push(ms(t));
        }
        println!("{}", stats("preprocess", threads, pre));
        println!("{}", stats("run", threads, run));
        println!("{}", stats("classify", threads, total));
    }
    Ok(())
}
