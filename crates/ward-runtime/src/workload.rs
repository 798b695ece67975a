//! Built-in workloads, registered by name (`ward:NAME` in the manifest's `loader.entrypoint`).
//!
//! A workload is a function of its [`Context`]: arguments, environment and the VFS. It has no
//! other way to reach files, and it writes its outputs through [`crate::vfs::VfsWriter`]s that it
//! commits only when it has succeeded, so a failed run leaves no partial output.

use crate::bootstrap::Context;
use crate::vfs::VfsError;
use sha2::Digest;
use std::collections::BTreeMap;
use std::io::Read;
use ward_manifest::Workload;

/// Why a workload failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// Its arguments (from the manifest) are wrong.
    #[error("usage: {0}")]
    Usage(String),
    /// A file access was refused or failed.
    #[error(transparent)]
    Vfs(#[from] VfsError),
    /// Reading or writing an open file failed.
    #[error("{context}")]
    Io {
        /// What was being done, naming the workload path.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The workload's own error (e.g. the classifier's), kept whole.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// A workload's entry function.
pub type WorkloadFn = fn(&Context) -> Result<(), WorkloadError>;

/// Checks a workload's arguments without running it (at sign time: a typo must not wait until
/// the key has been released to show).
pub type CheckFn = fn(&[String]) -> Result<(), WorkloadError>;

/// One built-in.
#[derive(Clone, Copy)]
pub struct Builtin {
    /// One line for `ward run --list`.
    pub summary: &'static str,
    /// Its argument syntax, for usage errors.
    pub usage: &'static str,
    /// The entry function.
    pub run: WorkloadFn,
    /// Checks the manifest's arguments; what it accepts, `run` must not refuse as a usage error.
    pub check: CheckFn,
}

/// The workloads this runtime can run.
#[derive(Clone, Default)]
pub struct Registry {
    builtins: BTreeMap<&'static str, Builtin>,
}

/// Running (or checking) a manifest's entrypoint failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The entrypoint names no registered workload.
    #[error("entrypoint ward:{name} is not a built-in workload of this runtime; known: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The registered names.
        known: String,
    },
    /// The workload failed, or its arguments were refused.
    #[error("ward:{name}")]
    Workload {
        /// Its name.
        name: String,
        /// Why.
        #[source]
        error: WorkloadError,
    },
    /// The manifest runs a program ([libos] entrypoint), not a built-in.
    #[error("{program} is a program, not a built-in; ward run confines it with ward-exec")]
    NotBuiltin {
        /// The program's path.
        program: String,
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
                check: check_checksum,
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

    fn get(&self, name: &str) -> Result<&Builtin, RunError> {
        self.builtins.get(name).ok_or_else(|| RunError::Unknown {
            name: name.to_owned(),
            known: self
                .builtins
                .keys()
                .map(|k| format!("ward:{k}"))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Checks that a built-in `workload` is registered and accepts `argv`, without running
    /// anything (`ward sign` calls it before hashing or writing). A program passes: what it
    /// accepts is its own business.
    pub fn check(&self, workload: Option<Workload<'_>>, argv: &[String]) -> Result<(), RunError> {
        let entrypoint = match workload {
            Some(Workload::Builtin(e)) => e,
            // Validation refused a manifest naming no workload before this is reached.
            Some(Workload::Program(_)) | None => return Ok(()),
        };
        let name = entrypoint.builtin();
        let builtin = self.get(name)?;
        (builtin.check)(argv).map_err(|error| workload_error(name, builtin, error))
    }

    /// Runs the manifest's entrypoint in `ctx`.
    pub fn run(&self, ctx: &Context) -> Result<(), RunError> {
        let name = match ctx.manifest.manifest.workload() {
            Some(Workload::Builtin(e)) => e.builtin(),
            other => {
                return Err(RunError::NotBuiltin {
                    program: other.map(|w| w.name().to_owned()).unwrap_or_default(),
                })
            }
        };
        let builtin = self.get(name)?;
        (builtin.run)(ctx).map_err(|error| workload_error(name, builtin, error))
    }
}

fn workload_error(name: &str, builtin: &Builtin, error: WorkloadError) -> RunError {
    RunError::Workload {
        name: name.to_owned(),
        error: match error {
            WorkloadError::Usage(m) => {
                WorkloadError::Usage(format!("{m} (arguments: {})", builtin.usage))
            }
            e => e,
        },
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

fn check_checksum(argv: &[String]) -> Result<(), WorkloadError> {
    let (_, inputs) = output_and_inputs(argv)?;
    if inputs.is_empty() {
        return Err(WorkloadError::Usage("name at least one input".into()));
    }
    Ok(())
}

// `ward:checksum`: proves the VFS contract with the simplest useful workload.
fn checksum(ctx: &Context) -> Result<(), WorkloadError> {
    check_checksum(&ctx.argv)?;
    let (output, inputs) = output_and_inputs(&ctx.argv)?;
    // Every input is read before the output is created: a refused input leaves no output.
    let mut lines = String::new();
    let mut buf = vec![0u8; 1 << 20];
    for input in &inputs {
        let mut file = ctx.vfs.open(input)?;
        let mut hasher = sha2::Sha256::new();
        loop {
            let n = file.read(&mut buf).map_err(|source| WorkloadError::Io {
                context: format!("reading {input}"),
                source,
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        lines.push_str(&format!("{}  {input}\n", hex::encode(hasher.finalize())));
    }
    ctx.vfs.write(&output, lines.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(s: &str) -> ward_manifest::Manifest {
        ward_manifest::Manifest::from_toml(&format!("[loader]\nentrypoint = \"{s}\"\nargv = []\n"))
            .unwrap()
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn check_refuses_unknown_builtins_and_bad_arguments() {
        let r = Registry::with_builtins();
        r.check(
            entry("ward:checksum").workload(),
            &argv(&["--output", "/o", "/i"]),
        )
        .unwrap();
        let e = r.check(entry("ward:chcksum").workload(), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "entrypoint ward:chcksum is not a built-in workload of this runtime; known: \
             ward:checksum"
        );
        let e = r
            .check(
                entry("ward:checksum").workload(),
                &argv(&["--output", "/o"]),
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "ward:checksum");
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(
            cause,
            "usage: name at least one input (arguments: --output OUT_PATH INPUT_PATH...)"
        );
        let e = r
            .check(entry("ward:checksum").workload(), &argv(&["--bogus", "/i"]))
            .unwrap_err();
        assert!(
            std::error::Error::source(&e)
                .unwrap()
                .to_string()
                .contains("unknown option --bogus"),
            "{e:?}"
        );
    }
}
