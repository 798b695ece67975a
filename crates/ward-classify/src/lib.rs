//! ward's image classifier workload: `ward classify` on plain files and the built-in
//! `ward:classify` inside the runtime, with one argument type and one implementation.
//!
//! [`ClassifyArgs`] is a clap argument struct: the CLI flattens it into `ward classify`, and the
//! runtime parses a manifest's `loader.argv` with it ([`ClassifyArgs::from_argv`]), so both
//! accept exactly the same flags with the same errors. [`run`] reads the model, labels, spec and
//! images through an [`Inputs`]: [`PlainFiles`] for the CLI, [`VfsInputs`] (the manifest-enforcing
//! file system) for the workload. [`registry`] is the runtime's registry with `ward:classify`
//! added, whose check refuses bad arguments at sign time.
//!
//! What it is not: the ML itself (that is `ward-infer`, which opens no files), nor the runtime
//! (`ward-runtime`, which contains no ML code). This crate is the glue between the two.

use clap::Parser;
use std::path::{Path, PathBuf};
use ward_infer::{Classifier, ModelSpec, Prediction};
use ward_runtime::vfs::Vfs;
use ward_runtime::{Builtin, Context, Registry, WorkloadError};
use zeroize::Zeroizing;

/// A boxed error from an [`Inputs`] implementation, kept whole as the cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The arguments of `ward classify` and of `ward:classify` (the manifest's `loader.argv`).
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
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
    #[arg(
        long = "image",
        value_name = "PATH",
        required_unless_present = "image_dirs"
    )]
    pub images: Vec<PathBuf>,

    /// Classify every file in DIR too (sorted by name). Repeatable.
    #[arg(long = "image-dir", value_name = "DIR")]
    pub image_dirs: Vec<PathBuf>,

    /// How the model wants its input, as TOML: input size, the side to resize to before the
    /// centre crop, per-channel mean and std, NCHW or NHWC, RGB or BGR (see
    /// models/efficientnet-lite0/model.toml). Without it: the shipped EfficientNet-Lite0's
    /// (256 → 224 crop, (pixel/255 - 0.498) / 0.502, NCHW, RGB).
    #[arg(long, value_name = "PATH")]
    pub spec: Option<PathBuf>,

    /// Write the result to this file instead of stdout (required for `ward:classify`, where it
    /// is a path in the workload's file system, usually a protected file).
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// How many classes to give per image, most probable first (more than the model has gives
    /// them all).
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = at_least_one)]
    pub top: usize,

    /// JSON instead of text: for one image an array of {"rank", "index", "label",
    /// "probability"}; for several, an array of {"image", "predictions"}.
    #[arg(long)]
    pub json: bool,

    /// Threads for inference: 1 runs on the calling thread, N uses a pool of N, 0 one per core.
    /// On a 2-core machine 2 threads cut EfficientNet-Lite0's inference by about a third.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

// `ward:classify`'s argv has no program name; clap still names it in its messages.
#[derive(Parser)]
#[command(name = "ward:classify", no_binary_name = true)]
struct Argv {
    #[command(flatten)]
    args: ClassifyArgs,
}

impl ClassifyArgs {
    /// Parses a manifest's `loader.argv` (no program name first).
    pub fn from_argv<I, T>(argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Argv::try_parse_from(argv).map(|a| a.args)
    }
}

/// Where the classifier's inputs come from.
pub trait Inputs: Sync {
    /// The whole content of the file at `path`.
    fn read(&self, path: &Path) -> Result<Zeroizing<Vec<u8>>, BoxError>;
    /// The names of the entries of the directory at `path`, in any order.
    fn list(&self, dir: &Path) -> Result<Vec<String>, BoxError>;
}

/// The host's files, as `ward classify` reads them.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFiles;

impl Inputs for PlainFiles {
    fn read(&self, path: &Path) -> Result<Zeroizing<Vec<u8>>, BoxError> {
        Ok(Zeroizing::new(std::fs::read(path)?))
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>, BoxError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }
}

/// The workload's file system, as `ward:classify` reads it: every access checked against the
/// manifest.
#[derive(Clone, Copy)]
pub struct VfsInputs<'a>(pub &'a Vfs);

fn vfs_path(path: &Path) -> Result<&str, BoxError> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()).into())
}

impl Inputs for VfsInputs<'_> {
    fn read(&self, path: &Path) -> Result<Zeroizing<Vec<u8>>, BoxError> {
        Ok(self.0.read(vfs_path(path)?)?)
    }

    fn list(&self, dir: &Path) -> Result<Vec<String>, BoxError> {
        Ok(self.0.read_dir(vfs_path(dir)?)?)
    }
}

/// Why classifying failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Neither `--image` nor a non-empty `--image-dir` was given.
    #[error("no image to classify: name an --image, or an --image-dir that holds images")]
    NoImages,
    /// An input could not be read.
    #[error("reading the {what} {}", path.display())]
    Read {
        /// model, labels file, model spec, image or image directory.
        what: &'static str,
        /// The path, as given.
        path: PathBuf,
        /// Why (an I/O error, or the VFS's refusal).
        #[source]
        source: BoxError,
    },
    /// A text input is not UTF-8.
    #[error("the {what} {} is not UTF-8 text", path.display())]
    NotText {
        /// labels file or model spec.
        what: &'static str,
        /// The path, as given.
        path: PathBuf,
        /// Where the first bad byte is.
        #[source]
        source: std::str::Utf8Error,
    },
    /// The model spec is invalid.
    #[error("in the model spec {}", path.display())]
    Spec {
        /// The spec file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: ward_infer::Error,
    },
    /// The model and labels could not be loaded together.
    #[error("loading the model {} with the labels {}", model.display(), labels.display())]
    Load {
        /// The model file.
        model: PathBuf,
        /// The labels file.
        labels: PathBuf,
        /// What is wrong.
        #[source]
        source: ward_infer::Error,
    },
    /// The thread pool could not be set up.
    #[error("--threads {threads}")]
    Threads {
        /// The count asked for.
        threads: usize,
        /// Why it failed.
        #[source]
        source: ward_infer::Error,
    },
    /// One image could not be classified.
    #[error("classifying {}", path.display())]
    Classify {
        /// The image.
        path: PathBuf,
        /// Why.
        #[source]
        source: ward_infer::Error,
    },
}

/// Each image's top classes, in the order given: (image path as given, predictions).
pub type Results = Vec<(String, Vec<Prediction>)>;

fn read(inputs: &dyn Inputs, what: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    inputs.read(path).map_err(|source| Error::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn read_text(
    inputs: &dyn Inputs,
    what: &'static str,
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bytes = read(inputs, what, path)?;
    std::str::from_utf8(&bytes).map_err(|source| Error::NotText {
        what,
        path: path.to_owned(),
        source,
    })?;
    Ok(bytes)
}

fn as_text(bytes: &[u8]) -> &str {
    // Checked by read_text.
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// Loads the model named by `args` (with its labels, spec and thread count).
pub fn load(args: &ClassifyArgs, inputs: &dyn Inputs) -> Result<Classifier, Error> {
    let spec = match &args.spec {
        Some(p) => {
            let text = read_text(inputs, "model spec", p)?;
            ModelSpec::from_toml(as_text(&text)).map_err(|source| Error::Spec {
                path: p.clone(),
                source,
            })?
        }
        None => ModelSpec::default(),
    };
    let labels = read_text(inputs, "labels file", &args.labels)?;
    let model = read(inputs, "model", &args.model)?;
    let mut classifier =
        Classifier::load(&model, as_text(&labels), &spec).map_err(|source| Error::Load {
            model: args.model.clone(),
            labels: args.labels.clone(),
            source,
        })?;
    classifier
        .set_threads(args.threads)
        .map_err(|source| Error::Threads {
            threads: args.threads,
            source,
        })?;
    Ok(classifier)
}

/// The images named by `args`: every `--image`, then each `--image-dir`'s files sorted by name.
pub fn images(args: &ClassifyArgs, inputs: &dyn Inputs) -> Result<Vec<PathBuf>, Error> {
    let mut images = args.images.clone();
    for dir in &args.image_dirs {
        let mut names = inputs.list(dir).map_err(|source| Error::Read {
            what: "image directory",
            path: dir.clone(),
            source,
        })?;
        names.sort();
        images.extend(names.into_iter().map(|n| dir.join(n)));
    }
    if images.is_empty() {
        return Err(Error::NoImages);
    }
    Ok(images)
}

enum ImageError {
    Read(BoxError),
    Infer(ward_infer::Error),
}

impl From<ward_infer::Error> for ImageError {
    fn from(e: ward_infer::Error) -> Self {
        ImageError::Infer(e)
    }
}

/// Classifies `images` with `classifier` (side by side when it has several threads); stops at
/// the first image that fails.
pub fn classify(
    classifier: &Classifier,
    images: &[PathBuf],
    top: usize,
    inputs: &dyn Inputs,
) -> Result<Results, Error> {
    let outcomes = classifier.classify_many(
        images,
        |path| inputs.read(path).map_err(ImageError::Read),
        top,
    );
    let mut results = Vec::with_capacity(images.len());
    for (path, outcome) in images.iter().zip(outcomes) {
        let top = outcome.map_err(|e| match e {
            ImageError::Read(source) => Error::Read {
                what: "image",
                path: path.clone(),
                source,
            },
            ImageError::Infer(source) => Error::Classify {
                path: path.clone(),
                source,
            },
        })?;
        results.push((path.display().to_string(), top));
    }
    Ok(results)
}

/// Loads the model and classifies every image `args` names.
pub fn run(args: &ClassifyArgs, inputs: &dyn Inputs) -> Result<Results, Error> {
    let images = images(args, inputs)?;
    let classifier = load(args, inputs)?;
    classify(&classifier, &images, args.top, inputs)
}

/// The result as `args` asks for it (text or JSON); wiped from memory when dropped, since it is
/// the data owner's secret too.
pub fn format(results: &Results, args: &ClassifyArgs) -> Zeroizing<String> {
    Zeroizing::new(ward_infer::format_results(results, args.json))
}

/// `ward:classify`'s argument syntax, for `ward run --list` and usage errors.
pub const USAGE: &str = "--model PATH --labels PATH (--image PATH)... [--image-dir DIR]... \
                         [--spec PATH] --output PATH [--top K] [--json] [--threads N]";

/// The built-in `ward:classify`.
pub fn builtin() -> Builtin {
    Builtin {
        summary: "classify images with an ONNX model; top-k classes to a protected result file",
        usage: USAGE,
        run: run_workload,
        check: check_workload,
    }
}

/// The registry of every built-in this ward has: the runtime's own and `ward:classify`.
pub fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    r.register("classify", builtin());
    r
}

// One line from clap's message, with its tips, without the usage (the registry appends ours).
fn usage_error(e: &clap::Error) -> WorkloadError {
    let text = e.to_string();
    let mut parts = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("Usage:") || line.starts_with("For more information")
        {
            continue;
        }
        parts.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    WorkloadError::Usage(parts.join("; "))
}

fn parse_workload(argv: &[String]) -> Result<(ClassifyArgs, PathBuf), WorkloadError> {
    let args = ClassifyArgs::from_argv(argv).map_err(|e| usage_error(&e))?;
    let output = args
        .output
        .clone()
        .ok_or_else(|| WorkloadError::Usage("--output is required".into()))?;
    Ok((args, output))
}

fn check_workload(argv: &[String]) -> Result<(), WorkloadError> {
    parse_workload(argv).map(drop)
}

fn run_workload(ctx: &Context) -> Result<(), WorkloadError> {
    let (args, output) = parse_workload(&ctx.argv)?;
    let results = run(&args, &VfsInputs(&ctx.vfs)).map_err(|e| WorkloadError::Other(e.into()))?;
    let text = format(&results, &args);
    let output = vfs_path(&output).map_err(WorkloadError::Other)?;
    ctx.vfs.write(output, text.as_bytes())?;
    Ok(())
}
