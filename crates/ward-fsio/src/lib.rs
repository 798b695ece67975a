//! ward's file I/O: how every ward crate and the CLI write outputs and keys, and read files whose
//! size they do not trust.
//!
//! What this crate is:
//! - atomic outputs ([`AtomicFile`], [`write_atomic`]): a temporary file beside the target
//!   (`.NAME.XXXXXX.ward-tmp`, in the target's directory) that is written, synced, given its mode
//!   and only then renamed over the target; dropped uncommitted, it is removed, and an existing
//!   target is never touched. Stale temporaries of the same output, left by killed runs, are
//!   removed when that output is written next ([`clean_tree`] removes them from a whole tree);
//! - cleanup on signals ([`install_signal_cleanup`]): every temporary in progress is registered
//!   process-wide, and on SIGINT or SIGTERM all of them are removed before the process exits with
//!   130 or 143, so Ctrl-C leaves no partial output (nor partial plaintext) behind;
//! - bounded reads ([`read_bounded`]): never more than the limit + 1 bytes, whatever the metadata
//!   says;
//! - secret key files ([`create_secret_file`], [`read_secret_exact`]): created new with mode 0600
//!   and synced, never overwritten; read back with an exact length check into zeroized memory.
//!
//! What it is not: it knows no file formats and does no cryptography. Errors name the path and
//! the step that failed, keep the OS error as their source, and never contain file contents.

mod atomic;
mod cleanup;
mod error;
mod read;

pub use atomic::{clean_tree, is_temp_name, write_atomic, AtomicFile, TEMP_SUFFIX};
pub use cleanup::install_signal_cleanup;
pub use error::{Error, Result, Step};
pub use read::{create_secret_file, read_bounded, read_secret_bounded, read_secret_exact};
