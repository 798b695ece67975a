//! `ward:classify`, the built-in image classifier: ward-infer on files read through the VFS.

use std::io::Write;
use ward_runtime::{Builtin, Context, Registry, WorkloadError};

const USAGE: &str = "--model PATH --labels PATH (--image PATH)... [--image-dir DIR] \
                     [--spec PATH] --output PATH [--top K] [--json] [--threads N]";

/// Adds `ward:classify` to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(
        "classify",
        Builtin {
            summary: "classify images with an ONNX model; top-k classes to a protected result file",
            usage: USAGE,
            run: classify,
        },
    );
}

#[derive(Default)]
struct ClassifyArgs {
    model: Option<String>,
    labels: Option<String>,
    spec: Option<String>,
    images: Vec<String>,
    image_dirs: Vec<String>,
    output: Option<String>,
    top: usize,
    json: bool,
    threads: usize,
}

fn parse(argv: &[String]) -> Result<ClassifyArgs, WorkloadError> {
    let mut a = ClassifyArgs {
        top: 5,
        threads: 0,
        ..Default::default()
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| WorkloadError::Usage(format!("{flag} needs a value")))
        };
        let number = |v: String| {
            v.parse::<usize>()
                .map_err(|_| WorkloadError::Usage(format!("{flag} needs a number, got {v:?}")))
        };
        match flag.as_str() {
            "--model" => a.model = Some(value()?),
            "--labels" => a.labels = Some(value()?),
            "--spec" => a.spec = Some(value()?),
            "--image" => a.images.push(value()?),
            "--image-dir" => a.image_dirs.push(value()?),
            "--output" | "-o" => a.output = Some(value()?),
            "--top" => a.top = number(value()?)?,
            "--threads" => a.threads = number(value()?)?,
            "--json" => a.json = true,
            other => return Err(WorkloadError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    Ok(a)
}

/// Why one image failed: reading it (through the VFS) or classifying it.
enum ImageError {
    Read(WorkloadError),
    Infer(ward_infer::Error),
}

impl From<ward_infer::Error> for ImageError {
    fn from(e: ward_infer::Error) -> Self {
        ImageError::Infer(e)
    }
}

fn failed(what: &str) -> impl FnOnce(ward_infer::Error) -> WorkloadError + '_ {
    move |e| WorkloadError::Failed(format!("{what}: {e}"))
}

fn classify(ctx: &Context) -> Result<(), WorkloadError> {
    let a = parse(&ctx.argv)?;
    let need = |v: &Option<String>, flag: &str| {
        v.clone()
            .ok_or_else(|| WorkloadError::Usage(format!("{flag} is required")))
    };
    let model_path = need(&a.model, "--model")?;
    let labels_path = need(&a.labels, "--labels")?;
    let output = need(&a.output, "--output")?;
    let mut images = a.images.clone();
    for dir in &a.image_dirs {
        let mut names = ctx.vfs.read_dir(dir)?;
        names.sort();
        let dir = dir.trim_end_matches('/');
        images.extend(names.into_iter().map(|n| format!("{dir}/{n}")));
    }
    if images.is_empty() {
        return Err(WorkloadError::Usage(
            "name an --image or an --image-dir".into(),
        ));
    }
    let spec = match &a.spec {
        Some(p) => {
            ward_infer::ModelSpec::from_toml(&ctx.vfs.read_to_string(p)?).map_err(failed(p))?
        }
        None => ward_infer::ModelSpec::default(),
    };
    let mut classifier = {
        let model = ctx.vfs.read(&model_path)?;
        let labels = ctx.vfs.read_to_string(&labels_path)?;
        ward_infer::Classifier::load(&model, &labels, &spec).map_err(failed(&model_path))?
    };
    // 0 (the default) means one thread per core, as in `ward classify`.
    if a.threads != 1 {
        classifier
            .set_threads(a.threads)
            .map_err(failed("--threads"))?;
    }
    let outcomes = classifier.classify_many(
        &images,
        |path| ctx.vfs.read(path).map_err(|e| ImageError::Read(e.into())),
        a.top,
    );
    let mut results = Vec::with_capacity(images.len());
    for (image, outcome) in images.iter().zip(outcomes) {
        let top = outcome.map_err(|e| match e {
            ImageError::Read(e) => e,
            ImageError::Infer(e) => WorkloadError::Failed(format!("{image}: {e}")),
        })?;
        results.push((image.clone(), top));
    }
    // The result is the data owner's secret too: wiped from memory once written.
    let text = zeroize::Zeroizing::new(ward_infer::format_results(&results, a.json));
    let mut out = ctx.vfs.create(&output)?;
    out.write_all(text.as_bytes())
        .map_err(|e| WorkloadError::Failed(format!("writing {output}: {e}")))?;
    out.commit()?;
    Ok(())
}
