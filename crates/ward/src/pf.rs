//! `ward pf …`: protected files from the command line, in the spirit of gramine-sgx-pf-crypt.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use ward_fsio::AtomicFile;
use ward_pf::{Options, WrapKey};

/// Files smaller than this get no progress bar.
const PROGRESS_MIN_BYTES: u64 = 4 << 20;

#[derive(Subcommand)]
pub(crate) enum PfCommand {
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
    /// workload will open it under. Use --path to bind another.
    ///
    /// An existing OUT is replaced, as cp and gramine-sgx-pf-crypt do. Each output is written to
    /// a temporary file beside it (`.NAME.XXXXXX.ward-tmp`), verified, and only then renamed into
    /// place: on an error, Ctrl-C or SIGTERM the temporary is removed and an existing OUT is left
    /// as it was. OUT may not be IN itself, nor (for a directory) inside IN.
    Encrypt(EncryptArgs),
    /// Decrypt protected files back to plaintext.
    ///
    /// Every node is authenticated before a byte of it is written; the output appears only when
    /// the whole file checked out. With -V the bound path must equal the normalised IN path.
    ///
    /// An existing OUT is replaced, as cp and gramine-sgx-pf-crypt do, atomically: on an error,
    /// Ctrl-C or SIGTERM no partial plaintext is left and an existing OUT is left as it was. OUT
    /// may not be IN itself, nor (for a directory) inside IN.
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
        /// Print one JSON object (fields: file, format, nodes, bytes_on_disk, bound_path, size;
        /// the last two are null without -w).
        #[arg(long)]
        json: bool,
    },
    /// Remove the temporary files (`.NAME.XXXXXX.ward-tmp`) that killed runs left under DIR.
    ///
    /// ward removes its temporaries itself on errors, Ctrl-C and SIGTERM; only a crash, SIGKILL
    /// or a power cut leaves one. Directory walks skip them with a warning, and the next write of
    /// the same output removes its own. Prints each path removed.
    Clean {
        /// The directory to clean, recursively.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
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
        /// Write the rewrapped file here instead of in place (an existing file is replaced).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
    },
}

#[derive(Args)]
pub(crate) struct Threads {
    /// Worker threads for node encryption/decryption (0 = all cores).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
}

#[derive(Args)]
pub(crate) struct EncryptArgs {
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
pub(crate) struct DecryptArgs {
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
pub(crate) struct VerifyArgs {
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
    /// Print one JSON object per file, one per line (fields: file, intact, and either format,
    /// nodes, size, bound_path, path_checked, or error).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct PathCheck {
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

pub(crate) fn run(cmd: PfCommand) -> Result<ExitCode> {
    // Ctrl-C or SIGTERM mid-output removes the temporary in progress (and with it any partial
    // plaintext), then exits 130 / 143.
    ward_fsio::install_signal_cleanup()?;
    let result = match cmd {
        PfCommand::Keygen { output } => keygen(&output),
        PfCommand::Encrypt(args) => encrypt(args),
        PfCommand::Decrypt(args) => decrypt(args),
        PfCommand::Verify(args) => verify(args),
        PfCommand::Info { key, input, json } => info(key.as_deref(), &input, json),
        PfCommand::Clean { dir } => clean(&dir),
        PfCommand::Rewrap {
            old_key,
            new_key,
            input,
            output,
        } => rewrap(&old_key, &new_key, &input, output.as_deref()),
    };
    result.or_else(|e| {
        report(&e);
        Ok(ExitCode::FAILURE)
    })
}

/// Prints an error chain once, each cause once, and what to do last.
fn report(e: &anyhow::Error) {
    eprint!("{}", crate::render_error(e.chain().map(|c| c.to_string())));
    if let Some(hint) = hint(e) {
        eprintln!("hint: {hint}");
    }
}

/// What to do about an error, when there is something better to say than its text.
fn hint(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .find_map(|cause| match cause.downcast_ref::<ward_pf::Error>()? {
            ward_pf::Error::PathMismatch { bound, .. } => Some(format!(
                "the bound path is set when encrypting (the -o path as typed, or `ward pf \
                 encrypt --path BOUND`); if the file was moved on purpose, check it against the \
                 path it is bound to with `--path {bound:?}` instead of -V"
            )),
            _ => None,
        })
}

/// Reads a wrap key file: exactly 16 raw bytes.
pub(crate) fn load_key(path: &Path) -> Result<WrapKey> {
    match ward_fsio::read_secret_exact(path, ward_pf::KEY_LEN) {
        Ok(bytes) => Ok(WrapKey::from_slice(&bytes)?),
        Err(ward_fsio::Error::WrongLength { found, .. }) => bail!(
            "wrap key file {}: {}; a wrap key is exactly 16 raw bytes (`ward pf keygen` makes one)",
            path.display(),
            match found {
                Some(1) => "1 byte".to_owned(),
                Some(n) => format!("{n} bytes"),
                None => "more than 16 bytes".to_owned(),
            }
        ),
        Err(e) => Err(anyhow::Error::new(e).context("reading the wrap key file")),
    }
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().with_context(|| {
        format!(
            "{} is not valid UTF-8; protected files bind UTF-8 paths",
            p.display()
        )
    })
}

pub(crate) fn keygen(output: &Path) -> Result<ExitCode> {
    let key = WrapKey::generate()?;
    ward_fsio::create_secret_file(output, key.expose_bytes())?;
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

/// Lists the regular files under `dir`, as paths relative to it, sorted; skips ward temporaries
/// (leftovers of killed runs) with one warning.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    fn rec(root: &Path, rel: &Path, out: &mut Vec<PathBuf>, temps: &mut usize) -> Result<()> {
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
                rec(root, &rel, out, temps)?;
            } else if ty.is_file() && ward_fsio::is_temp_name(e.file_name()) {
                *temps += 1;
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
    let mut temps = 0;
    rec(dir, Path::new(""), &mut out, &mut temps)?;
    if temps > 0 {
        eprintln!(
            "warning: skipping {temps} stale temporary file{} (.ward-tmp) that interrupted runs \
             left under {}; `ward pf clean {}` removes them",
            if temps == 1 { "" } else { "s" },
            dir.display(),
            dir.display()
        );
    }
    Ok(out)
}

/// The absolute path `p` names, symlinks resolved as far as it exists (an output may not exist
/// yet; the part that does not exist holds no symlinks, so its `..` are resolved as written).
fn resolve(p: &Path) -> Result<PathBuf> {
    use std::path::Component;
    let abs = std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))?;
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    let real = loop {
        if let Ok(real) = existing.canonicalize() {
            break real;
        }
        match (existing.components().next_back(), existing.parent()) {
            (Some(last), Some(parent)) => {
                rest.push(last.as_os_str().to_owned());
                existing = parent;
            }
            _ => return Ok(abs),
        }
    };
    Ok(rest.iter().rev().fold(real, |mut acc, part| {
        match Path::new(part).components().next() {
            Some(Component::ParentDir) => {
                acc.pop();
            }
            Some(Component::Normal(name)) => acc.push(name),
            _ => {}
        }
        acc
    }))
}

/// True when `a` and `b` are the same file (device and inode), links and all.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Refuses an output that is its own input: writing it would destroy the input.
fn check_not_own_input(input: &Path, output: &Path) -> Result<()> {
    if same_file(input, output) {
        bail!(
            "refusing to write {} over its own input {} (the same file); choose another output",
            output.display(),
            input.display()
        );
    }
    Ok(())
}

/// Refuses a temporary of a killed run as an input.
fn check_not_temp(input: &Path) -> Result<()> {
    if input.file_name().is_some_and(ward_fsio::is_temp_name) {
        bail!(
            "{} is a temporary file that an interrupted ward run left, not an input; \
             `ward pf clean DIR` removes such files",
            input.display()
        );
    }
    Ok(())
}

/// Runs `one(in, out)` on a file, or on every file of a tree (continuing past failures).
fn each_file(
    input: &Path,
    output: Option<&Path>,
    mut one: impl FnMut(&Path, Option<&Path>) -> Result<()>,
) -> Result<ExitCode> {
    let meta = std::fs::metadata(input).with_context(|| format!("{}", input.display()))?;
    if !meta.is_dir() {
        check_not_temp(input)?;
        if let Some(out) = output {
            check_not_own_input(input, out)?;
        }
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
        if resolve(out)?.starts_with(resolve(input)?) {
            bail!(
                "refusing to write into {}: it is inside the input directory {}, so outputs would \
                 replace or join the inputs; choose an output directory outside it",
                out.display(),
                input.display()
            );
        }
    }
    let files = walk(input)?;
    let mut failed = 0;
    for rel in &files {
        let i = input.join(rel);
        let o = output.map(|o| o.join(rel));
        let done = match &o {
            Some(o) => check_not_own_input(&i, o),
            None => Ok(()),
        }
        .and_then(|()| one(&i, o.as_deref()));
        if let Err(e) = done {
            let mut chain = e.chain().map(|c| c.to_string());
            let top = format!("{}: {}", i.display(), chain.next().unwrap_or_default());
            eprint!("{}", crate::render_error(std::iter::once(top).chain(chain)));
            if let Some(hint) = hint(&e) {
                eprintln!("hint: {hint}");
            }
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} files failed", files.len());
    }
    eprintln!("{} files done", files.len());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn encrypt(args: EncryptArgs) -> Result<ExitCode> {
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

/// Starts the output `target`, saying which stale temporaries of it (from killed runs) it removed.
fn create_output(target: &Path) -> Result<AtomicFile> {
    let out = AtomicFile::create(target)?;
    for stale in out.stale_removed() {
        eprintln!(
            "removed {}, a stale temporary that an interrupted run left",
            stale.display()
        );
    }
    Ok(out)
}

/// Encrypts one file to `output` atomically; returns the bound path.
pub(crate) fn encrypt_file(
    key: &WrapKey,
    input: &Path,
    output: &Path,
    bound: &str,
    check: bool,
    threads: usize,
) -> Result<String> {
    let mut src = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let size = src.metadata().map(|m| m.len()).unwrap_or(0);
    let mut tmp = create_output(output)?;
    let info = {
        let bar = Bar::new(size, "encrypting", input);
        ward_pf::encrypt(&mut src, key, bound, tmp.file_mut(), bar.options(threads))
            .with_context(|| format!("encrypting {}", input.display()))?
    };
    if check {
        let bar = Bar::new(size, "verifying", output);
        ward_pf::verify(
            tmp.file(),
            key,
            Some(&info.bound_path),
            bar.options(threads),
        )
        .context("verifying the encrypted output before renaming it into place")?;
    }
    tmp.commit(0o644)?;
    eprintln!(
        "encrypted {} -> {} ({} bytes, bound to {:?})",
        input.display(),
        output.display(),
        info.size,
        info.bound_path
    );
    Ok(info.bound_path)
}

pub(crate) fn decrypt(args: DecryptArgs) -> Result<ExitCode> {
    let key = load_key(&args.key)?;
    each_file(&args.input, Some(&args.output), |i, o| {
        let o = o.expect("decrypt always has an output");
        let expected = args.check.expected(i)?;
        decrypt_file(&key, i, o, expected.as_deref(), args.threads.threads)
    })
}

/// Decrypts one file to `output` atomically.
pub(crate) fn decrypt_file(
    key: &WrapKey,
    input: &Path,
    output: &Path,
    expected: Option<&str>,
    threads: usize,
) -> Result<()> {
    let src = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let size = src.metadata().map(|m| m.len()).unwrap_or(0);
    let mut tmp = create_output(output)?;
    let info = {
        let bar = Bar::new(size, "decrypting", input);
        // ward_pf::decrypt flushes it, so no write error is lost in the drop.
        let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.file_mut());
        ward_pf::decrypt(&src, key, expected, &mut out, bar.options(threads))
            .with_context(|| format!("decrypting {}", input.display()))?
    };
    tmp.commit(0o600)?;
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

pub(crate) fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let key = load_key(&args.key)?;
    each_file(&args.input, None, |i, _| {
        let expected = args.check.expected(i)?;
        let src = File::open(i).with_context(|| format!("opening {}", i.display()))?;
        let size = src.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = Bar::new(size, "verifying", i);
        let checked = ward_pf::verify(
            &src,
            &key,
            expected.as_deref(),
            bar.options(args.threads.threads),
        )
        .with_context(|| format!("{} is NOT intact", i.display()));
        drop(bar);
        let info = match checked {
            Ok(info) => info,
            Err(e) => {
                if args.json {
                    let object = serde_json::json!({
                        "file": i.display().to_string(),
                        "intact": false,
                        "error": format!("{e:#}"),
                    });
                    println!("{object}");
                }
                return Err(e);
            }
        };
        if args.json {
            let object = serde_json::json!({
                "file": i.display().to_string(),
                "intact": true,
                "format": info.version.to_string(),
                "nodes": info.nodes,
                "size": info.size,
                "bound_path": info.bound_path,
                "path_checked": expected.is_some(),
            });
            println!("{object}");
            return Ok(());
        }
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

pub(crate) fn info(key: Option<&Path>, input: &Path, json: bool) -> Result<ExitCode> {
    let src = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let header =
        ward_pf::header_info(&src).with_context(|| format!("reading {}", input.display()))?;
    if json {
        let keyed = match key {
            Some(key) => Some(
                ward_pf::info(&src, &load_key(key)?, None)
                    .with_context(|| format!("opening {} with the key", input.display()))?,
            ),
            None => None,
        };
        let object = serde_json::json!({
            "file": input.display().to_string(),
            "format": header.version.to_string(),
            "nodes": header.nodes,
            "bytes_on_disk": header.nodes * 4096,
            "bound_path": keyed.as_ref().map(|i| &i.bound_path),
            "size": keyed.as_ref().map(|i| i.size),
        });
        println!("{object}");
        return Ok(ExitCode::SUCCESS);
    }
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

pub(crate) fn rewrap(
    old: &Path,
    new: &Path,
    input: &Path,
    output: Option<&Path>,
) -> Result<ExitCode> {
    let old_key = load_key(old)?;
    let new_key = load_key(new)?;
    if old_key == new_key {
        bail!("the old and new keys are the same; nothing to rotate");
    }
    let info = match output {
        None => ward_pf::rewrap_in_place(input, &old_key, &new_key, None)
            .with_context(|| format!("rewrapping {} in place", input.display()))?,
        Some(out) => {
            check_not_temp(input)?;
            if same_file(input, out) {
                bail!(
                    "refusing to write {} over its own input; to rewrap in place, leave out -o",
                    out.display()
                );
            }
            let mut src =
                File::open(input).with_context(|| format!("opening {}", input.display()))?;
            let mut tmp = create_output(out)?;
            std::io::copy(&mut src, tmp.file_mut())
                .with_context(|| format!("copying {}", input.display()))?;
            let info = ward_pf::rewrap(tmp.file_mut(), &old_key, &new_key, None)
                .with_context(|| format!("rewrapping {}", input.display()))?;
            tmp.commit(0o644)?;
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

/// `ward pf clean DIR`: removes the temporaries killed runs left, printing each one.
pub(crate) fn clean(dir: &Path) -> Result<ExitCode> {
    let removed = ward_fsio::clean_tree(dir)?;
    for path in &removed {
        println!("removed {}", path.display());
    }
    eprintln!(
        "{} stale temporary file{} removed under {}",
        removed.len(),
        if removed.len() == 1 { "" } else { "s" },
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
