//! `ward manifest …`: write the manifest of a user's own program from its installation.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use ward_templates::python::{self, EncryptedMount, PythonOptions};

#[derive(Subcommand)]
pub(crate) enum ManifestCommand {
    /// Write the manifest that runs a Python script unmodified under `ward run`.
    ///
    /// Runs the interpreter once to learn its prefix, stdlib and site-packages, follows the ELF
    /// dependencies of the interpreter and of every extension module, and writes a manifest
    /// that mounts what is needed and trusts (hash-pins) the interpreter, its loader and
    /// libraries, the stdlib, the script's directory (at /app, the working directory) and,
    /// with --site-packages, the installed packages. Sign it with `ward sign`.
    ///
    /// Example:  ward manifest python app/infer.py --encrypted /data=file:enc \
    ///               --server localhost:4433 --ca provision/ca.pem -o infer.toml
    Python(PythonArgs),
    /// Write the Gramine manifest template that runs `ward run` on a signed ward manifest
    /// inside an SGX enclave (docs/DEPLOY.md, recipe 1).
    ///
    /// Gramine's MRENCLAVE then pins ward's binary, its fixed arguments and the signed ward
    /// manifest with every file it trusts; ward's encrypted mounts, allowed files and receipt
    /// are Gramine allowed files (ward authenticates them itself). Every path is mounted at the
    /// same path inside. Built-in workloads only: ward cannot confine a program inside Gramine.
    ///
    /// Example:  ward manifest gramine /srv/ward/app/classify.signed.toml \
    ///               --ward /usr/local/bin/ward -o ward.manifest.template
    ///           gramine-manifest ward.manifest.template ward.manifest
    ///           gramine-sgx-sign --manifest ward.manifest --output ward.manifest.sgx
    Gramine(GramineArgs),
}

#[derive(Args)]
pub(crate) struct GramineArgs {
    /// The signed ward manifest (made absolute; the enclave sees it at the same path).
    #[arg(value_name = "SIGNED_MANIFEST")]
    signed: PathBuf,
    /// The ward binary the enclave runs (default: this one).
    #[arg(long, value_name = "PATH")]
    ward: Option<PathBuf>,
    /// Have ward write its run receipt here (`ward run --receipt`); allowed for writing.
    #[arg(long, value_name = "PATH")]
    receipt: Option<PathBuf>,
    /// The host library directory ward's dependencies come from.
    #[arg(long, value_name = "DIR", default_value = "/lib/x86_64-linux-gnu")]
    arch_libdir: PathBuf,
    /// sgx.enclave_size.
    #[arg(long, value_name = "SIZE", default_value = "4G")]
    enclave_size: String,
    /// sgx.max_threads.
    #[arg(long, value_name = "N", default_value_t = 32)]
    max_threads: u32,
    /// Write the template here (default: stdout).
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct PythonArgs {
    /// The script (on this machine); its directory is mounted at /app and trusted whole.
    #[arg(value_name = "SCRIPT")]
    script: PathBuf,
    /// Arguments after the script (signed with the manifest).
    #[arg(value_name = "ARGS", trailing_var_arg = true)]
    args: Vec<String>,
    /// The interpreter (a venv's `bin/python` works too).
    #[arg(long, value_name = "PATH", default_value = python::DEFAULT_INTERPRETER)]
    python: PathBuf,
    /// Trust the installation's site-packages too (for a venv: the venv's).
    #[arg(long)]
    site_packages: bool,
    /// The working directory in the view (default /app, the script's directory); e.g. an
    /// --encrypted mount, for a script that opens its protected files by relative paths.
    #[arg(long, value_name = "PATH")]
    start_dir: Option<String>,
    /// An encrypted mount of protected files: PATH=file:DIR[,key=NAME] (repeatable). Its key
    /// comes from --server (checked against --ca) or, when another owner releases it from her
    /// own server, from the mount's own options ,server=HOST:PORT and ,ca=FILE (server=
    /// repeatable, tried in order).
    #[arg(long, value_name = "PATH=file:DIR")]
    encrypted: Vec<EncryptedMount>,
    /// A provisioning server host:port (repeatable; tried in order), for the keys of encrypted
    /// mounts that name no server of their own.
    #[arg(long = "server", value_name = "HOST:PORT", id = "servers")]
    servers: Vec<String>,
    /// The --server servers' CA chain (PEM), pinned by hash when signing.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The secret on the servers that holds each key: the key named `default` is fetched as
    /// this secret, any other key under its own name.
    #[arg(long, value_name = "NAME", default_value = "wrap_key")]
    secret: String,
    /// Write the manifest here (default: stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(crate) fn run(cmd: ManifestCommand) -> Result<ExitCode> {
    match cmd {
        ManifestCommand::Python(a) => python_manifest(a),
        ManifestCommand::Gramine(a) => gramine_manifest(a),
    }
}

fn gramine_manifest(a: GramineArgs) -> Result<ExitCode> {
    let signed_path = std::path::absolute(&a.signed)?;
    let signed = ward_manifest::SignedManifest::load(&signed_path)
        .with_context(|| format!("reading the signed manifest {}", signed_path.display()))?;
    let ward = match a.ward {
        Some(w) => std::path::absolute(w)?,
        None => std::env::current_exe().context("finding this ward binary")?,
    };
    let mut d = ward_templates::gramine::GramineDeployment::new(signed_path, ward);
    d.receipt = a.receipt.map(std::path::absolute).transpose()?;
    d.arch_libdir = a.arch_libdir;
    d.enclave_size = a.enclave_size;
    d.max_threads = a.max_threads;
    let text = ward_templates::gramine::gramine_manifest(&signed, &d)?;
    match &a.output {
        Some(out) => {
            ward_fsio::write_atomic(out, text.as_bytes(), 0o644)?;
            eprintln!(
                "wrote {}; render it with `gramine-manifest {} ward.manifest`, sign it with \
                 `gramine-sgx-sign`, and pin the enclave's MRENCLAVE/MRSIGNER next to the \
                 workload_* fields in the data owner's policy",
                out.display(),
                out.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn python_manifest(a: PythonArgs) -> Result<ExitCode> {
    let install = python::inspect(&a.python)?;
    let mut opts = PythonOptions::new(&a.script);
    opts.include_site_packages = a.site_packages;
    opts.args = a.args;
    if let Some(dir) = a.start_dir {
        opts.start_dir = Some(
            ward_manifest::WorkloadPath::try_from(dir.clone())
                .map_err(|e| anyhow::anyhow!("--start-dir {dir:?}: {e}"))?,
        );
    }
    opts.manifest_dir = Some(match &a.output {
        Some(out) => std::path::absolute(out)?
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default(),
        None => std::env::current_dir()?,
    });
    if !a.encrypted.is_empty() {
        opts.provision = Some(python::provision_for(
            &a.encrypted,
            a.servers,
            a.ca.as_deref(),
            &a.secret,
        )?);
        opts.encrypted = a.encrypted;
    }
    let made = python::manifest(&install, &opts)?;
    for s in &made.skipped {
        eprintln!("skipped {} ({:?})", s.path.display(), s.reason);
    }
    for (file, name) in &made.unresolved {
        eprintln!(
            "warning: {name} (needed by {}) was not found; add it to sgx.trusted_files by hand",
            file.display()
        );
    }
    let text = made.to_toml();
    match &a.output {
        Some(out) => {
            ward_fsio::write_atomic(out, text.as_bytes(), 0o644)?;
            eprintln!(
                "wrote {} (Python {}.{}.{}, {} trusted entries); sign it with `ward sign --key SIGNER_KEY {}`",
                out.display(),
                install.version.0,
                install.version.1,
                install.version.2,
                made.manifest.sgx.trusted_files.len(),
                out.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
