use std::fmt;
use std::io;
use std::path::PathBuf;

/// What went wrong, naming the path and the step; never the file's contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An OS call failed; `source` is the OS error.
    #[error("{step} {}", path.display())]
    Io {
        /// The step that failed.
        step: Step,
        /// The file or directory it failed on.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The target path names no file (e.g. `/` or `dir/..`).
    #[error("{} does not name a file to write", path.display())]
    NoFileName {
        /// The path given.
        path: PathBuf,
    },
    /// The target exists and is not a regular file (a device such as `/dev/null`, a FIFO, a
    /// socket): renaming a new file over it would replace it.
    #[error(
        "{} is a {kind}, not a regular file; outputs are written as new files renamed into \
         place, which would replace it, so it is left alone (name a file instead)",
        path.display()
    )]
    NotARegularFile {
        /// The target.
        path: PathBuf,
        /// What it is ("character device", "FIFO", …).
        kind: &'static str,
    },
    /// A file that is only ever created new (a key) exists already.
    #[error("{} already exists; refusing to overwrite it", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A file is larger than the caller allows.
    #[error("{}: {}, over the limit of {limit} bytes", path.display(), Found(*found, *limit))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size, when known (`None`: more than `limit` bytes could be read, the size is
        /// unknown, as for a pipe).
        found: Option<u64>,
        /// The most the caller accepts.
        limit: u64,
    },
    /// A file that must have an exact length has another.
    #[error("{}: {}, expected exactly {expected}", path.display(), Found(*found, *expected as u64))]
    WrongLength {
        /// The file.
        path: PathBuf,
        /// Its size, when known (`None`: more than `expected` bytes).
        found: Option<u64>,
        /// The required length.
        expected: usize,
    },
    /// The SIGINT/SIGTERM handler could not be installed.
    #[error("installing the SIGINT/SIGTERM cleanup handler")]
    Signals {
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// A size found, or "more than" the bound when only that much is known.
struct Found(Option<u64>, u64);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(1) => f.write_str("1 byte"),
            Some(n) => write!(f, "{n} bytes"),
            None => write!(f, "more than {} bytes", self.1),
        }
    }
}

/// The step an [`Error::Io`] failed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Creating the target's directory.
    CreatingDir,
    /// Creating the temporary file in the target's directory.
    CreatingTemp,
    /// Listing a directory (for stale temporaries).
    ListingDir,
    /// Removing a stale temporary file.
    RemovingStale,
    /// Opening a file to read it.
    Opening,
    /// Reading a file.
    Reading,
    /// Creating a new file (a key).
    Creating,
    /// Writing a file.
    Writing,
    /// Syncing a file to disk.
    Syncing,
    /// Setting a file's mode.
    SettingMode,
    /// Renaming the finished temporary over the target.
    Renaming,
    /// Syncing the target's directory, so the rename is durable.
    SyncingDir,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::CreatingDir => "creating directory",
            Step::CreatingTemp => "creating a temporary file in",
            Step::ListingDir => "listing directory",
            Step::RemovingStale => "removing stale temporary file",
            Step::Opening => "opening",
            Step::Reading => "reading",
            Step::Creating => "creating",
            Step::Writing => "writing",
            Step::Syncing => "syncing",
            Step::SettingMode => "setting the mode of",
            Step::Renaming => "renaming the finished output into place at",
            Step::SyncingDir => "syncing directory",
        })
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(step: Step, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { step, path, source }
}
