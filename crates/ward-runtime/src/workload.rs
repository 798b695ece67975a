//! Built-in workloads, registered by name (`ward:NAME` in the manifest's `loader.entrypoint`).
//!
//! A workload is a function of its [`Context`]: arguments, environment and the VFS. It has no
//! other way to reach files, and it writes its outputs through [`crate::vfs::VfsWriter`]s that it
//! commits only when it has succeeded, so a failed run leaves no partial output.

use crate::bootstrap::Context;
use crate::vfs::VfsError;
use sha2::Digest;
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// Why a workload failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// Its arguments (from the manifest) are wrong.
    #[error("usage: {0}")]
    Usage(String),
    /// A file access was refused or failed.
    #[error(transparent)]
    Vfs(#[from] VfsError),
    /// Anything else the workload reports.
    #[error("{0}")]
    Failed(String),
}

/// A workload's entry function.
pub type WorkloadFn = fn(&Context) -> Result<(), WorkloadError>;

/// One built-in.
#[derive(Clone, Copy)]
pub struct Builtin {
    /// One line for `ward run --list`.
    pub summary: &'static str,
    /// Its argument syntax, for usage errors.
    pub usage: &'static str,
    /// The entry function.
    pub run: WorkloadFn,
}

/// The workloads this runtime can run.
#[derive(Clone, Default)]
pub struct Registry {
    builtins: BTreeMap<&'static str, Builtin>,
}

/// Running a manifest's entrypoint failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The entrypoint names no registered workload.
    #[error("entrypoint ward:{name} is not a built-in workload of this runtime; known: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The registered names.
        known: String,
    },
    /// The workload failed.
    #[error("ward:{name}: {error}")]
    Workload {
        /// Its name.
        name: String,
        /// Why.
        error: WorkloadError,
    },
}

impl Registry {
    /// The built-ins of this crate (`ward:checksum`).
    pub fn with_builtins() -> Self {
        let mut r = Registry::default();
        r.register(
            "checksum",
            Builtin {
                summary:
                    "SHA-256 of each input file, written sha256sum-style to a protected output",
                usage: "--output OUT_PATH INPUT_PATH...",
                run: checksum,
            },
        );
        r
    }

    /// Adds (or replaces) a built-in.
    pub fn register(&mut self, name: &'static str, builtin: Builtin) {
        self.builtins.insert(name, builtin);
    }

    /// The registered built-ins, by name.
    pub fn builtins(&self) -> impl Iterator<Item = (&'static str, &Builtin)> {
        self.builtins.iter().map(|(k, v)| (*k, v))
    }

    /// Runs the manifest's entrypoint in `ctx`.
    pub fn run(&self, ctx: &Context) -> Result<(), RunError> {
        let name = ctx.manifest.manifest.loader.entrypoint.builtin().to_owned();
        let builtin = self
            .builtins
            .get(name.as_str())
            .ok_or_else(|| RunError::Unknown {
                name: name.clone(),
                known: self
                    .builtins
                    .keys()
                    .map(|k| format!("ward:{k}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        (builtin.run)(ctx).map_err(|error| RunError::Workload {
            name,
            error: match error {
                WorkloadError::Usage(m) => {
                    WorkloadError::Usage(format!("{m} (arguments: {})", builtin.usage))
                }
                e => e,
            },
        })
    }
}

/// Splits `--output PATH` (required) from the positional inputs.
pub fn output_and_inputs(argv: &[String]) -> Result<(String, Vec<String>), WorkloadError> {
    let mut output = None;
    let mut inputs = Vec::new();
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--output" | "-o" => {
                let v = it
                    .next()
                    .ok_or_else(|| WorkloadError::Usage(format!("{arg} needs a path")))?;
                output = Some(v.clone());
            }
            a if a.starts_with('-') => {
                return Err(WorkloadError::Usage(format!("unknown option {a}")))
            }
            a => inputs.push(a.to_owned()),
        }
    }
    let output = output.ok_or_else(|| WorkloadError::Usage("--output is required".into()))?;
    Ok((output, inputs))
}

// `ward:checksum`: proves the VFS contract with the simplest useful workload.
fn checksum(ctx: &Context) -> Result<(), WorkloadError> {
    let (output, inputs) = output_and_inputs(&ctx.argv)?;
    if inputs.is_empty() {
        return Err(WorkloadError::Usage("name at least one input".into()));
    }
    // Every input is read before the output is created: a refused input leaves no output.
    let mut lines = String::new();
    let mut buf = vec![0u8; 1 << 20];
    for input in &inputs {
        let mut file = ctx.vfs.open(input)?;
        let mut hasher = sha2::Sha256::new();
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| WorkloadError::Failed(format!("reading {input}: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        lines.push_str(&format!("{}  {input}\n", hex::encode(hasher.finalize())));
    }
    let mut out = ctx.vfs.create(&output)?;
    out.write_all(lines.as_bytes())
        .map_err(|e| WorkloadError::Failed(format!("writing {output}: {e}")))?;
    out.commit()?;
    Ok(())
}
