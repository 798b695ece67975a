//! Protected files by path: one file or a whole tree, as `gramine-sgx-pf-crypt` and `ward pf`
//! work on them.
//!
//! Every output is written through [`ward_fsio::AtomicFile`]: a temporary beside the target,
//! synced and renamed into place only when the whole operation succeeded, so an error (or a
//! signal, with [`ward_fsio::install_signal_cleanup`]) leaves an existing output as it was and no
//! partial plaintext behind. An output that is its own input is refused before anything is
//! written, as is a directory output inside its input directory, and temporaries that killed runs
//! left (`.NAME.XXXXXX.ward-tmp`) are never taken as inputs.
//!
//! What this module is not: it prints nothing. What a command-line tool shows (progress, stale
//! temporaries removed) reaches it through an [`Observer`].

use crate::{FileInfo, Options, WrapKey};
use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};
use ward_fsio::AtomicFile;

/// What went wrong with a file-level operation, naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilesError {
    /// An OS call on an input failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done ("opening", "reading directory", …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Writing an output failed (creating, syncing or renaming its temporary).
    #[error(transparent)]
    Output(#[from] ward_fsio::Error),
    /// The output is the input itself (the same file, links and all).
    #[error("refusing to write {} over its own input {} (the same file); choose another output", output.display(), input.display())]
    OwnInput {
        /// The input.
        input: PathBuf,
        /// The output named.
        output: PathBuf,
    },
    /// A directory output lies inside the input directory.
    #[error("refusing to write into {}: it is inside the input directory {}, so outputs would replace or join the inputs; choose an output directory outside it", output.display(), input.display())]
    OutputInsideInput {
        /// The input directory.
        input: PathBuf,
        /// The output directory named.
        output: PathBuf,
    },
    /// The input is a directory but the output is an existing file.
    #[error("{} is a directory but {} is not; a directory input needs a directory output", input.display(), output.display())]
    DirectoryToFile {
        /// The input directory.
        input: PathBuf,
        /// The output file.
        output: PathBuf,
    },
    /// The input is a temporary that an interrupted run left.
    #[error("{} is a temporary file that an interrupted ward run left, not an input; `ward pf clean DIR` removes such files", path.display())]
    TemporaryInput {
        /// The temporary.
        path: PathBuf,
    },
    /// A path that must be bound into a protected file is not UTF-8.
    #[error("{} is not valid UTF-8; protected files bind UTF-8 paths", path.display())]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// One bound path was given for a whole tree.
    #[error("--path binds one path, so it works with a single input file, not a directory")]
    BoundPathForTree,
    /// The old and new keys of a rewrap are the same.
    #[error("the old and new keys are the same; nothing to rotate")]
    SameKey,
    /// The protected-file operation itself failed on `path`.
    #[error("{action} {}", path.display())]
    Format {
        /// What was being done ("encrypting", "decrypting", …).
        action: &'static str,
        /// The input file.
        path: PathBuf,
        /// What the format layer found.
        #[source]
        source: crate::Error,
    },
    /// Reading the encrypted output back before committing it failed: the output is not kept.
    #[error("verifying the encrypted output before renaming it into place")]
    OutputCheck {
        /// What the check found.
        #[source]
        source: crate::Error,
    },
    /// A file that `verify` checked is not intact.
    #[error("{} is NOT intact", path.display())]
    NotIntact {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: crate::Error,
    },
}

impl FilesError {
    /// The protected-file error underneath, if that is what failed.
    pub fn format_error(&self) -> Option<&crate::Error> {
        match self {
            FilesError::Format { source, .. }
            | FilesError::OutputCheck { source }
            | FilesError::NotIntact { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Result alias for this module.
pub type Result<T, E = FilesError> = std::result::Result<T, E>;

fn io_err<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> FilesError + 'p {
    move |source| FilesError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// A pass over one file, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Encrypting plaintext into a protected file.
    Encrypting,
    /// Reading a protected file back (after encryption) or checking one.
    Verifying,
    /// Decrypting a protected file.
    Decrypting,
}

impl Phase {
    /// The verb, for messages ("encrypting").
    pub fn verb(self) -> &'static str {
        match self {
            Phase::Encrypting => "encrypting",
            Phase::Verifying => "verifying",
            Phase::Decrypting => "decrypting",
        }
    }
}

/// Hears what a file-level operation is doing. Every method has a default that does nothing.
pub trait Observer: Sync {
    /// A pass over `path` of `total` plaintext bytes begins.
    fn start(&self, _phase: Phase, _path: &Path, _total: u64) {}
    /// `done` plaintext bytes of the current pass are processed.
    fn advance(&self, _done: u64) {}
    /// The current pass ended (successfully or not).
    fn finish(&self) {}
    /// A stale temporary of the output, left by a killed run, was removed.
    fn stale_removed(&self, _path: &Path) {}
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {}

/// Runs one pass with progress going to `observer`.
fn pass<T>(
    observer: &dyn Observer,
    phase: Phase,
    path: &Path,
    total: u64,
    threads: usize,
    f: impl FnOnce(Options<'_>) -> T,
) -> T {
    observer.start(phase, path, total);
    let advance = |n| observer.advance(n);
    let out = f(Options {
        threads,
        progress: Some(&advance),
        ..Options::default()
    });
    observer.finish();
    out
}

/// One unit of work: an input file and, for operations that write, its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The input file.
    pub input: PathBuf,
    /// The output file, for encrypt and decrypt.
    pub output: Option<PathBuf>,
}

/// The files an operation on `input` covers: the file itself, or every regular file of a tree.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The files to process, sorted by path.
    pub jobs: Vec<Job>,
    /// True when the input was a directory.
    pub is_tree: bool,
    /// Temporaries of killed runs found in the tree and skipped.
    pub stale_temporaries: usize,
    /// Entries of the tree that are neither regular files nor directories, skipped.
    pub not_regular: Vec<PathBuf>,
}

/// Plans an operation on `input` (a file or a directory), with outputs under `output` when the
/// operation writes.
///
/// Refused before anything is written: a temporary as input, an output that is the input
/// itself, a directory input with an existing non-directory output, and a directory output inside
/// the input directory.
pub fn plan(input: &Path, output: Option<&Path>) -> Result<Plan> {
    let meta = std::fs::metadata(input).map_err(io_err("reading", input))?;
    if !meta.is_dir() {
        check_not_temp(input)?;
        if let Some(out) = output {
            check_not_own_input(input, out)?;
        }
        return Ok(Plan {
            jobs: vec![Job {
                input: input.to_owned(),
                output: output.map(Path::to_owned),
            }],
            ..Plan::default()
        });
    }
    if let Some(out) = output {
        if out.exists() && !out.is_dir() {
            return Err(FilesError::DirectoryToFile {
                input: input.to_owned(),
                output: out.to_owned(),
            });
        }
        if resolve(out)?.starts_with(resolve(input)?) {
            return Err(FilesError::OutputInsideInput {
                input: input.to_owned(),
                output: out.to_owned(),
            });
        }
    }
    let mut plan = Plan {
        is_tree: true,
        ..Plan::default()
    };
    let mut files = Vec::new();
    walk(input, Path::new(""), &mut files, &mut plan)?;
    plan.jobs = files
        .into_iter()
        .map(|rel| Job {
            input: input.join(&rel),
            output: output.map(|o| o.join(&rel)),
        })
        .collect();
    Ok(plan)
}

/// Collects the regular files under `root/rel`, relative to `root`, sorted by name.
fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>, plan: &mut Plan) -> Result<()> {
    let here = root.join(rel);
    let mut entries = std::fs::read_dir(&here)
        .and_then(|dir| dir.collect::<io::Result<Vec<_>>>())
        .map_err(io_err("reading directory", &here))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let rel = rel.join(e.file_name());
        let ty = e
            .file_type()
            .map_err(io_err("reading the type of", &root.join(&rel)))?;
        if ty.is_dir() {
            walk(root, &rel, out, plan)?;
        } else if ty.is_file() && ward_fsio::is_temp_name(e.file_name()) {
            plan.stale_temporaries += 1;
        } else if ty.is_file() {
            out.push(rel);
        } else {
            plan.not_regular.push(root.join(&rel));
        }
    }
    Ok(())
}

/// The absolute path `p` names, symlinks resolved as far as it exists (an output may not exist
/// yet; the part that does not exist holds no symlinks, so its `..` are resolved as written).
fn resolve(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).map_err(io_err("resolving", p))?;
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

fn check_not_own_input(input: &Path, output: &Path) -> Result<()> {
    if same_file(input, output) {
        return Err(FilesError::OwnInput {
            input: input.to_owned(),
            output: output.to_owned(),
        });
    }
    Ok(())
}

fn check_not_temp(input: &Path) -> Result<()> {
    if input.file_name().is_some_and(ward_fsio::is_temp_name) {
        return Err(FilesError::TemporaryInput {
            path: input.to_owned(),
        });
    }
    Ok(())
}

/// `p` as the UTF-8 text a protected file binds.
pub fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| FilesError::NotUtf8 { path: p.to_owned() })
}

/// Opens an input and reads its length (for progress).
fn open_input(path: &Path) -> Result<(File, u64)> {
    let file = File::open(path).map_err(io_err("opening", path))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((file, len))
}

/// Starts the output `target`, telling the observer which stale temporaries of it it removed.
fn create_output(target: &Path, observer: &dyn Observer) -> Result<AtomicFile> {
    let out = AtomicFile::create(target)?;
    for stale in out.stale_removed() {
        observer.stale_removed(stale);
    }
    Ok(out)
}

/// How [`encrypt_file`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptSettings<'a> {
    /// The path to bind; `None` binds the output path as given (normalised).
    pub bound_path: Option<&'a str>,
    /// Read the output back and check every node before renaming it into place.
    pub verify: bool,
    /// Worker threads (0 = all cores).
    pub threads: usize,
}

impl Default for EncryptSettings<'_> {
    fn default() -> Self {
        EncryptSettings {
            bound_path: None,
            verify: true,
            threads: 0,
        }
    }
}

/// Encrypts the file `input` into the protected file `output`, atomically; returns what the new
/// file says about itself.
pub fn encrypt_file(
    key: &WrapKey,
    input: &Path,
    output: &Path,
    settings: &EncryptSettings<'_>,
    observer: &dyn Observer,
) -> Result<FileInfo> {
    check_not_temp(input)?;
    check_not_own_input(input, output)?;
    let bound = match settings.bound_path {
        Some(b) => b,
        None => path_str(output)?,
    };
    let (mut src, size) = open_input(input)?;
    let mut tmp = create_output(output, observer)?;
    let info = pass(
        observer,
        Phase::Encrypting,
        input,
        size,
        settings.threads,
        |opts| crate::encrypt(&mut src, key, bound, tmp.file_mut(), opts),
    )
    .map_err(|source| FilesError::Format {
        action: "encrypting",
        path: input.to_owned(),
        source,
    })?;
    if settings.verify {
        pass(
            observer,
            Phase::Verifying,
            output,
            size,
            settings.threads,
            |opts| crate::verify(tmp.file(), key, Some(&info.bound_path), opts),
        )
        .map_err(|source| FilesError::OutputCheck { source })?;
    }
    tmp.commit(0o644)?;
    Ok(info)
}

/// Decrypts the protected file `input` into `output`, atomically: the plaintext appears only when
/// every node authenticated. With `expected_path` the bound path must equal it (normalised).
pub fn decrypt_file(
    key: &WrapKey,
    input: &Path,
    output: &Path,
    expected_path: Option<&str>,
    threads: usize,
    observer: &dyn Observer,
) -> Result<FileInfo> {
    check_not_temp(input)?;
    check_not_own_input(input, output)?;
    let (src, size) = open_input(input)?;
    let mut tmp = create_output(output, observer)?;
    let info = pass(observer, Phase::Decrypting, input, size, threads, |opts| {
        // `decrypt` flushes the writer, so no write error is lost when it drops.
        let mut out = io::BufWriter::with_capacity(1 << 20, tmp.file_mut());
        crate::decrypt(&src, key, expected_path, &mut out, opts)
    })
    .map_err(|source| FilesError::Format {
        action: "decrypting",
        path: input.to_owned(),
        source,
    })?;
    tmp.commit(0o600)?;
    Ok(info)
}

/// Checks every node of the protected file `input`; writes nothing.
pub fn verify_file(
    key: &WrapKey,
    input: &Path,
    expected_path: Option<&str>,
    threads: usize,
    observer: &dyn Observer,
) -> Result<FileInfo> {
    check_not_temp(input)?;
    let (src, size) = open_input(input)?;
    pass(observer, Phase::Verifying, input, size, threads, |opts| {
        crate::verify(&src, key, expected_path, opts)
    })
    .map_err(|source| FilesError::NotIntact {
        path: input.to_owned(),
        source,
    })
}

/// Rotates the wrap key of `input` from `old` to `new`: in place (crash-safe, see
/// [`crate::rewrap_in_place`]) when `output` is `None`, else into `output`, atomically.
pub fn rewrap_file(
    old: &WrapKey,
    new: &WrapKey,
    input: &Path,
    output: Option<&Path>,
    observer: &dyn Observer,
) -> Result<FileInfo> {
    if old == new {
        return Err(FilesError::SameKey);
    }
    check_not_temp(input)?;
    let rewrapped = match output {
        None => crate::rewrap_in_place(input, old, new, None),
        Some(out) => {
            check_not_own_input(input, out)?;
            let (mut src, _) = open_input(input)?;
            let mut tmp = create_output(out, observer)?;
            io::copy(&mut src, tmp.file_mut()).map_err(io_err("copying", input))?;
            let info = crate::rewrap(tmp.file_mut(), old, new, None);
            if info.is_ok() {
                tmp.commit(0o644)?;
            }
            info
        }
    };
    rewrapped.map_err(|source| FilesError::Format {
        action: "rewrapping",
        path: input.to_owned(),
        source,
    })
}

/// Reads what a protected file says about itself: the header, and with `key` the metadata
/// (bound path, size), authenticated.
pub fn info_file(
    key: Option<&WrapKey>,
    input: &Path,
) -> Result<(crate::HeaderInfo, Option<FileInfo>)> {
    let (src, _) = open_input(input)?;
    let header = crate::header_info(&src).map_err(|source| FilesError::Format {
        action: "reading",
        path: input.to_owned(),
        source,
    })?;
    let keyed = key
        .map(|key| crate::info(&src, key, None))
        .transpose()
        .map_err(|source| FilesError::Format {
            action: "reading the metadata (with the key) of",
            path: input.to_owned(),
            source,
        })?;
    Ok((header, keyed))
}
