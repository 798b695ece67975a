//! `ward pf …`: protected files from the command line, in the spirit of gramine-sgx-pf-crypt.

use crate::fsutil;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use ward_pf::{Options, WrapKey};

/// Files smaller than this get no progress bar.
const PROGRESS_MIN_BYTES: u64 = 4 << 20;

#[derive(Subcommand)]
pub enum PfCommand {
    /// Generate a new random 16-byte wrap key (mode 0600; never overwrites).
    ///
    /// The key file is 16 raw bytes, as gramine-sgx-pf-crypt expects. In a manifest the same key
    /// is spelled as 32 hex characters.
    Keygen {
        /// Where to write the key.
        #[arg(short = 'o', long = "output", value_name = "KEYFILE")]
        output: PathBuf,
    },
    /// Encrypt a file or directory tree into protected files.
    ///
    /// Each output binds a path inside its encrypted metadata: by default the normalised OUT
    /// path as you typed it (e.g. `-o ./enc/../enc/model.pf` binds `enc/model.pf`), the path the
    /// workload will open it under. Use --path to bind another. Outputs are written to a
    /// temporary file, verified, and only then renamed into place.
    Encrypt(EncryptArgs),
    /// Decrypt protected files back to plaintext.
    ///
    /// Every node is authenticated before a byte of it is written; the output appears only when
    /// the whole file checked out. With -V the bound path must equal the normalised IN path.
    Decrypt(DecryptArgs),
    /// Check every node of a protected file (or tree) with its key; write nothing.
    ///
    /// Exit status 0 only if every file is intact.
    Verify(VerifyArgs),
    /// Show a protected file's format version and node count; with the key, also its bound
    /// path and plaintext size.
    Info {
        /// Wrap key file (16 raw bytes); optional.
        #[arg(short = 'w', long = "wrap-key", value_name = "KEYFILE")]
        key: Option<PathBuf>,
        /// The protected file.
        #[arg(short = 'i', long = "input", value_name = "IN")]
        input: PathBuf,
    },
    /// Rotate the wrap key: re-encrypt only the metadata node under NEW_KEY, whatever the file's
    /// size.
    ///
    /// In place when -o is absent, crash-safe: the new metadata node is journalled beside the
    /// file first, and an interrupted rewrap is completed by running the same command again.
    Rewrap {
        /// The current wrap key file.
        #[arg(short = 'w', long = "wrap-key", value_name = "OLD_KEY")]
        old_key: PathBuf,
        /// The new wrap key file (make one with `ward pf keygen`).
        #[arg(long = "new-key", value_name = "NEW_KEY")]
        new_key: PathBuf,
        /// The protected file.
        #[arg(short = 'i', long = "input", value_name = "IN")]
        input: PathBuf,
        /// Write the rewrapped file here instead of in place.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct Threads {
    /// Worker threads for node encryption/decryption (0 = all cores).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
}

#[derive(Args)]
pub struct EncryptArgs {
    /// Wrap key file (16 raw bytes).
    #[arg(short = 'w', long = "wrap-key", value_name = "KEYFILE")]
    key: PathBuf,
    /// Plaintext file or directory.
    #[arg(short = 'i', long = "input", value_name = "IN")]
    input: PathBuf,
    /// Protected file (or directory, when IN is one).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
    /// Bind this path instead of the normalised OUT path (single files only).
    #[arg(long = "path", value_name = "BOUND")]
    bound: Option<String>,
    /// Skip reading the output back to verify it before it is renamed into place.
    #[arg(long)]
    no_verify: bool,
    #[command(flatten)]
    threads: Threads,
}

#[derive(Args)]
pub struct DecryptArgs {
    /// Wrap key file (16 raw bytes).
    #[arg(short = 'w', long = "wrap-key", value_name = "KEYFILE")]
    key: PathBuf,
    /// Protected file or directory.
    #[arg(short = 'i', long = "input", value_name = "IN")]
    input: PathBuf,
    /// Plaintext file (or directory, when IN is one).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
    #[command(flatten)]
    check: PathCheck,
    #[command(flatten)]
    threads: Threads,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Wrap key file (16 raw bytes).
    #[arg(short = 'w', long = "wrap-key", value_name = "KEYFILE")]
    key: PathBuf,
    /// Protected file or directory.
    #[arg(short = 'i', long = "input", value_name = "IN")]
    input: PathBuf,
    #[command(flatten)]
    check: PathCheck,
    #[command(flatten)]
    threads: Threads,
}

#[derive(Args)]
pub struct PathCheck {
    /// Check that the bound path equals the normalised IN path.
    #[arg(short = 'V', long = "verify-path", conflicts_with = "path")]
    verify_path: bool,
    /// Check that the bound path equals BOUND (normalised).
    #[arg(long = "path", value_name = "BOUND")]
    path: Option<String>,
}

impl PathCheck {
    fn expected(&self, input: &Path) -> Result<Option<String>> {
        if let Some(p) = &self.path {
            return Ok(Some(p.clone()));
        }
        if self.verify_path {
            return Ok(Some(path_str(input)?.to_owned()));
        }
        Ok(None)
    }
}

pub fn run(cmd: PfCommand) -> Result<ExitCode> {
    match cmd {
        PfCommand::Keygen { output } => keygen(&output),
        PfCommand::Encrypt(args) => encrypt(args),
        PfCommand::Decrypt(args) => decrypt(args),
        PfCommand::Verify(args) => verify(args),
        PfCommand::Info { key, input } => info(key.as_deref(), &input),
        PfCommand::Rewrap {
            old_key,
            new_key,
            input,
            output,
        } => rewrap(&old_key, &new_key, &input, output.as_deref()),
    }
}

pub fn load_key(path: &Path) -> Result<WrapKey> {
    WrapKey::load(path).with_context(|| format!("wrap key {}", path.display()))
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().with_context(|| {
        format!(
            "{} is not valid UTF-8; protected files bind UTF-8 paths",
            p.display()
        )
    })
}

pub fn keygen(output: &Path) -> Result<ExitCode> {
    let key = WrapKey::generate()?;
    fsutil::create_secret_file(output, key.expose_bytes())?;
    eprintln!(
        "wrote a new 16-byte wrap key to {} (mode 0600)",
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on stderr for big files when stderr is a terminal.
struct Bar(Option<(ProgressBar, Box<SetPosition>)>);

type SetPosition = dyn Fn(u64) + Sync;

impl Bar {
    fn new(total: u64, verb: &str, name: &Path) -> Bar {
        if total < PROGRESS_MIN_BYTES || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        pb.set_message(format!("{verb} {}", name.display()));
        let handle = pb.clone();
        Bar(Some((pb, Box::new(move |n| handle.set_position(n)))))
    }

    fn options(&self, threads: usize) -> Options<'_> {
        Options {
            threads,
            progress: self.0.as_ref().map(|(_, f)| &**f),
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some((pb, _)) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

/// Lists the regular files under `dir`, as paths relative to it, sorted.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    fn rec(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let here = root.join(rel);
        let mut entries: Vec<_> = std::fs::read_dir(&here)
            .with_context(|| format!("reading directory {}", here.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading directory {}", here.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let ty = e.file_type()?;
            let rel = rel.join(e.file_name());
            if ty.is_dir() {
                rec(root, &rel, out)?;
            } else if ty.is_file() {
                out.push(rel);
            } else {
                eprintln!(
                    "skipping {} (not a regular file)",
                    root.join(&rel).display()
                );
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    rec(dir, Path::new(""), &mut out)?;
    Ok(out)
}

/// Runs `one(in, out)` on a file, or on every file of a tree (continuing past failures).
fn each_file(
    input: &Path,
    output: Option<&Path>,
    mut one: impl FnMut(&Path, Option<&Path>) -> Result<()>,
) -> Result<ExitCode> {
    let meta = std::fs::metadata(input).with_context(|| format!("{}", input.display()))?;
    if !meta.is_dir() {
        one(input, output)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(out) = output {
        if out.exists() && !out.is_dir() {
            bail!(
                "{} is a directory but {} is not; a directory input needs a directory output",
                input.display(),
                out.display()
            );
        }
    }
    let files = walk(input)?;
    let mut failed = 0;
    for rel in &files {
        let i = input.join(rel);
        let o = output.map(|o| o.join(rel));
        if let Err(e) = one(&i, o.as_deref()) {
            eprintln!("error: {}: {e:#}", i.display());
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} files failed", files.len());
    }
    eprintln!("{} files done", files.len());
    Ok(ExitCode::SUCCESS)
}

pub fn encrypt(args: EncryptArgs) -> Result<ExitCode> {
    let key = load_key(&args.key)?;
    if args.bound.is_some() && args.input.is_dir() {
        bail!("--path binds one path, so it works with a single input file, not a directory");
    }
    each_file(&args.input, Some(&args.output), |i, o| {
        let o = o.expect("encrypt always has an output");
        let bound = match &args.bound {
            Some(b) => b.clone(),
            None => path_str(o)?.to_owned(),
        };
        encrypt_file(&key, i, o, &bound, !args.no_verify, args.threads.threads).map(drop)
    })
}

/// Encrypts one file to `output` atomically; returns the bound path.
pub fn encrypt_file(
    key: &WrapKey,
    input: &Path,
    output: &Path,
    bound: &str,
    check: bool,
    threads: usize,
) -> Result<String> {
    let mut src = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let size = src.metadata().map(|m| m.len()).unwrap_or(0);
    let mut tmp = fsutil::temp_beside(output)?;
    let info = {
        let bar = Bar::new(size, "encrypting", input);
        ward_pf::encrypt(
            &mut src,
            key,
            bound,
            tmp.as_file_mut(),
            bar.options(threads),
        )
        .with_context(|| format!("encrypting {}", input.display()))?
    };
    if check {
        let bar = Bar::new(size, "verifying", output);
        ward_pf::verify(
            tmp.as_file(),
            key,
            Some(&info.bound_path),
            bar.options(threads),
        )
        .context("verifying the encrypted output before renaming it into place")?;
    }
    fsutil::commit(tmp, output, 0o644)?;
    eprintln!(
        "encrypted {} -> {} ({} bytes, bound to {:?})",
        input.display(),
        output.display(),
        info.size,
        info.bound_path
    );
    Ok(info.bound_path)
}

pub fn decrypt(args: DecryptArgs) -> Result<ExitCode> {
    let key = load_key(&args.key)?;
    each_file(&args.input, Some(&args.output), |i, o| {
        let o = o.expect("decrypt always has an output");
        let expected = args.check.expected(i)?;
        decrypt_file(&key, i, o, expected.as_deref(), args.threads.threads)
    })
}

/// Decrypts one file to `output` atomically.
pub fn decrypt_file(
    key: &WrapKey,
    input: &Path,
    output: &Path,
    expected: Option<&str>,
    threads: usize,
) -> Result<()> {
    let src = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let size = src.metadata().map(|m| m.len()).unwrap_or(0);
    let mut tmp = fsutil::temp_beside(output)?;
    let info = {
        let bar = Bar::new(size, "decrypting", input);
        let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        ward_pf::decrypt(&src, key, expected, &mut out, bar.options(threads))
            .with_context(|| format!("decrypting {}", input.display()))?
    };
    fsutil::commit(tmp, output, 0o600)?;
    eprintln!(
        "decrypted {} -> {} ({} bytes{})",
        input.display(),
        output.display(),
        info.size,
        if expected.is_some() {
            ", path checked"
        } else {
            ""
        }
    );
    Ok(())
}

pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let key = load_key(&args.key)?;
    each_file(&args.input, None, |i, _| {
        let expected = args.check.expected(i)?;
        let src = File::open(i).with_context(|| format!("opening {}", i.display()))?;
        let size = src.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = Bar::new(size, "verifying", i);
        let info = ward_pf::verify(
            &src,
            &key,
            expected.as_deref(),
            bar.options(args.threads.threads),
        )
        .with_context(|| format!("{} is NOT intact", i.display()))?;
        drop(bar);
        println!(
            "{}: intact ({} bytes, {} nodes, format {}, bound to {:?}{})",
            i.display(),
            info.size,
            info.nodes,
            info.version,
            info.bound_path,
            if expected.is_some() {
                ", path checked"
            } else {
                ""
            }
        );
        Ok(())
    })
}

pub fn info(key: Option<&Path>, input: &Path) -> Result<ExitCode> {
    let src = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let header =
        ward_pf::header_info(&src).with_context(|| format!("reading {}", input.display()))?;
    println!("file:         {}", input.display());
    println!("format:       Gramine protected file {}", header.version);
    println!(
        "nodes:        {} ({} bytes on disk)",
        header.nodes,
        header.nodes * 4096
    );
    if let Some(key) = key {
        let key = load_key(key)?;
        let info = ward_pf::info(&src, &key, None)
            .with_context(|| format!("opening {} with the key", input.display()))?;
        println!("bound path:   {:?}", info.bound_path);
        println!("size:         {} bytes", info.size);
        println!(
            "metadata:     authenticated with the key (run `ward pf verify` to check every node)"
        );
    } else {
        println!("(pass -w KEYFILE to see the bound path and plaintext size)");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rewrap(old: &Path, new: &Path, input: &Path, output: Option<&Path>) -> Result<ExitCode> {
    let old_key = load_key(old)?;
    let new_key = load_key(new)?;
    if old_key == new_key {
        bail!("the old and new keys are the same; nothing to rotate");
    }
    let info = match output {
        None => ward_pf::rewrap_in_place(input, &old_key, &new_key, None)
            .with_context(|| format!("rewrapping {} in place", input.display()))?,
        Some(out) => {
            let mut src =
                File::open(input).with_context(|| format!("opening {}", input.display()))?;
            let mut tmp = fsutil::temp_beside(out)?;
            std::io::copy(&mut src, tmp.as_file_mut())
                .with_context(|| format!("copying {}", input.display()))?;
            let info = ward_pf::rewrap(tmp.as_file_mut(), &old_key, &new_key, None)
                .with_context(|| format!("rewrapping {}", input.display()))?;
            fsutil::commit(tmp, out, 0o644)?;
            info
        }
    };
    eprintln!(
        "rewrapped {}{} under the new key ({} bytes; only the metadata node was re-encrypted)",
        input.display(),
        output
            .map(|o| format!(" -> {}", o.display()))
            .unwrap_or_default(),
        info.size
    );
    Ok(ExitCode::SUCCESS)
}
