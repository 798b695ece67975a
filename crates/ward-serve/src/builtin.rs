//! The `ward:serve` built-in: what a service manifest's `loader.argv` says, checked at sign time.

use clap::Parser;
use std::path::PathBuf;
use ward_runtime::{Builtin, Context, Registry, WorkloadError};

/// The arguments of `ward:serve` (the manifest's `loader.argv`): which model answers. They are
/// part of the measurement, so a client's policy pins the model as well as the code.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct ServeArgs {
    /// The ONNX model, a path in the workload's file system (usually a protected file).
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,
    /// The class names, one per line in the model's class order.
    #[arg(long, value_name = "PATH")]
    pub labels: PathBuf,
    /// How the model wants its input (TOML; see `ward classify --help`). Without it: the shipped
    /// EfficientNet-Lite0's.
    #[arg(long, value_name = "PATH")]
    pub spec: Option<PathBuf>,
}

#[derive(Parser)]
#[command(name = "ward:serve", no_binary_name = true)]
struct Argv {
    #[command(flatten)]
    args: ServeArgs,
}

impl ServeArgs {
    /// Parses a manifest's `loader.argv` (no program name first).
    pub fn from_argv<I, T>(argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Argv::try_parse_from(argv).map(|a| a.args)
    }

    /// The classifier's arguments for the same model (no images: requests bring them).
    pub(crate) fn classify_args(&self) -> ward_classify::ClassifyArgs {
        ward_classify::ClassifyArgs {
            model: self.model.clone(),
            labels: self.labels.clone(),
            images: Vec::new(),
            image_dirs: Vec::new(),
            spec: self.spec.clone(),
            output: None,
            top: 5,
            json: false,
            // A pool of one thread per core: a request that has the machine to itself splits
            // its inference across it; under load each runs on its worker alone.
            threads: 0,
        }
    }
}

/// `ward:serve` is started by `ward serve`, which listens; `ward run` has no address to listen on.
#[derive(Debug, thiserror::Error)]
#[error(
    "ward:serve is a service: start it with `ward serve SIGNED_MANIFEST --listen ADDR`, not \
     `ward run`"
)]
struct ServeNotRun;

fn run(_: &Context) -> Result<(), WorkloadError> {
    Err(WorkloadError::Other(Box::new(ServeNotRun)))
}

fn check(argv: &[String]) -> Result<(), WorkloadError> {
    ServeArgs::from_argv(argv)
        .map(|_| ())
        .map_err(|e| WorkloadError::Usage(e.render().to_string().trim().to_owned()))
}

/// The runtime's registry with ward's built-ins: `ward:checksum`, `ward:classify` and
/// `ward:serve`.
pub fn registry() -> Registry {
    let mut r = ward_classify::registry();
    r.register(
        "serve",
        Builtin {
            summary: "an attested HTTPS image classifier (start it with `ward serve`)",
            usage: "--model PATH --labels PATH [--spec PATH]",
            run,
            check,
        },
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked_at_sign_time() {
        let ok: Vec<String> = ["--model", "/m/model.onnx", "--labels", "/m/labels.txt"]
            .map(String::from)
            .into();
        check(&ok).unwrap();
        let missing: Vec<String> = ["--model", "/m/model.onnx"].map(String::from).into();
        let e = check(&missing).unwrap_err().to_string();
        assert!(e.contains("--labels"), "{e}");
        let unknown: Vec<String> = [
            "--model",
            "/m",
            "--labels",
            "/l",
            "--image",
            "/protected/x.png",
        ]
        .map(String::from)
        .into();
        assert!(check(&unknown).is_err());
    }

    #[test]
    fn the_registry_knows_serve_and_the_other_builtins() {
        let names: Vec<_> = registry().builtins().map(|(n, _)| n).collect();
        assert!(
            names.contains(&"serve") && names.contains(&"classify"),
            "{names:?}"
        );
    }
}
