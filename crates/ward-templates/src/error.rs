use std::io;
use std::path::PathBuf;

/// Why a template could not be written. Every variant names what was run or read; causes are
/// kept as the `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The interpreter path names no file.
    #[error("interpreter {} does not exist; give the path of a Python 3 interpreter (e.g. /usr/bin/python3)", path.display())]
    InterpreterMissing {
        /// The path given.
        path: PathBuf,
    },
    /// The interpreter could not be started.
    #[error("running `{command}`")]
    Spawn {
        /// The command line, as run.
        command: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The interpreter ran but failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    InterpreterFailed {
        /// The command line, as run.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// The interpreter's output is not the JSON the inspection script prints.
    #[error("`{command}` printed {output:?}, not the JSON expected from a Python interpreter")]
    NotJson {
        /// The command line, as run.
        command: String,
        /// The start of its standard output.
        output: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The interpreter is not Python 3.
    #[error("`{command}` is Python {version}; only Python 3 is supported")]
    NotPython3 {
        /// The command line, as run.
        command: String,
        /// The version it reported.
        version: String,
    },
    /// The script is missing or not a file.
    #[error("script {}: {reason}", path.display())]
    Script {
        /// The script's host path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file or directory could not be read.
    #[error("{context} {}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The interpreter is not an ELF file this crate can read.
    #[error("reading the ELF file {}", path.display())]
    Elf {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: goblin::error::Error,
    },
    /// A path cannot be written in a manifest (not UTF-8, or not a valid workload path).
    #[error("{path:?} cannot be written in a manifest: {reason}")]
    Path {
        /// The path, lossily converted.
        path: String,
        /// Why.
        reason: String,
    },
    /// An option given by the caller is malformed (e.g. an `--encrypted PATH=URI` pair).
    #[error("{0}")]
    Option(String),
}

pub(crate) fn io_err(
    context: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> TemplateError {
    let path = path.into();
    move |source| TemplateError::Io {
        context,
        path,
        source,
    }
}
