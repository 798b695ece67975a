//! Errors, and locating a key path in the manifest text so every error names its line.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong reading, checking, hashing or signing a manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TOML does not parse, or a key is unknown or has a value of the wrong kind.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// The manifest parses but breaks rules that span several keys.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    /// An error in a named file.
    #[error("{}", path.display())]
    InFile {
        /// The manifest file.
        path: PathBuf,
        /// What was wrong in it.
        #[source]
        error: Box<Error>,
    },
    /// Reading or writing a file failed.
    #[error("{context}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The OS error.
        source: io::Error,
    },
    /// A trusted file's hash in the manifest does not match the file.
    #[error(
        "trusted file {uri} ({}) has SHA-256 {found}, but the manifest gives {expected}; \
         remove the stale sha256 to have `ward sign` hash it, or restore the file",
        path.display()
    )]
    StaleHash {
        /// The URI as written.
        uri: String,
        /// Where it resolved.
        path: PathBuf,
        /// The hash written in the manifest.
        expected: String,
        /// The file's hash.
        found: String,
    },
    /// A trusted directory's tree is not the one the manifest gives.
    #[error(
        "trusted directory {uri} ({}) has changed since it was signed (its tree digest is \
         {found}, the manifest gives {expected}); remove the stale `tree` to have `ward sign` \
         record it again, or restore the directory",
        path.display()
    )]
    StaleTree {
        /// The URI as written.
        uri: String,
        /// Where it resolved.
        path: PathBuf,
        /// The digest written in the manifest.
        expected: String,
        /// The directory's digest now.
        found: String,
    },
    /// A trusted directory could not be recorded, or its tree read back.
    #[error("trusted directory {uri}")]
    Tree {
        /// The URI as written.
        uri: String,
        /// What failed.
        source: Box<crate::tree::TreeError>,
    },
    /// The manifest carries no `[signature]`, or lacks hashes only `ward sign` fills in.
    #[error("not a signed manifest: {0}")]
    Unsigned(String),
    /// The manifest was signed for another ward runtime binary.
    #[error(
        "this manifest was signed for the ward runtime with digest {signed_for}, but this \
         runtime's is {this}: its measurement would differ from the one the data owner's policy \
         names; re-sign it with this ward (`ward sign`)"
    )]
    RuntimeMismatch {
        /// The runtime hash in the signature.
        signed_for: String,
        /// The running runtime's hash.
        this: String,
    },
    /// The signature does not verify, or the signed measurement does not match the content.
    #[error("bad signature: {0}")]
    Signature(String),
    /// A signer key could not be made, read or written.
    #[error("signer key: {0}")]
    Key(String),
    /// The signer key file could not be written or read.
    #[error("signer key file (`ward sign keygen -o FILE` makes one)")]
    KeyFile(#[source] ward_attest::keyfile::KeyFileError),
    /// The signed manifest would be written outside the manifest's directory, where its
    /// relative `file:` URIs would name other files.
    #[error(
        "{} must be in the manifest's directory ({}): the manifest's file: URIs are relative \
         to it",
        output.display(),
        manifest_dir.display()
    )]
    OutputElsewhere {
        /// The requested output.
        output: PathBuf,
        /// The manifest's directory.
        manifest_dir: PathBuf,
    },
    /// Writing the signed manifest failed (the previous one, if any, is untouched).
    #[error("writing the signed manifest")]
    Output(#[source] ward_fsio::Error),
    /// A development key file (`fs.insecure__key_files`) is missing, unreadable or not exactly
    /// 16 bytes (the source says which, and the size found; never the bytes).
    #[error(
        "development key {key_name:?} ({uri}): a key file holds exactly 16 raw bytes \
         (`ward pf keygen` makes one)"
    )]
    DevKeyFile {
        /// The key name.
        key_name: String,
        /// The URI as written.
        uri: String,
        /// What reading it found.
        #[source]
        source: ward_fsio::Error,
    },
    /// The caller's check refused the manifest before anything was hashed or written (e.g. the
    /// runtime does not know its built-in entrypoint, or its arguments are wrong).
    #[error("refused before signing")]
    Refused(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    /// Attaches the file name to an error about a manifest's content.
    pub fn in_file(self, path: impl Into<PathBuf>) -> Error {
        match self {
            e @ (Error::Syntax { .. } | Error::Invalid(_)) => Error::InFile {
                path: path.into(),
                error: Box::new(e),
            },
            e => e,
        }
    }

    pub(crate) fn from_toml(e: &toml::de::Error, text: &str) -> Error {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        Error::Syntax {
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    }
}

/// One rule broken, with the key that breaks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the key, when it could be found in the text.
    pub line: Option<usize>,
    /// The key path, e.g. `fs.mounts[1].key_name`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}, {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// A segment of a key path.
#[derive(Debug, Clone)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

pub(crate) fn key_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Finds the line of `path` in `text`, or of its closest existing parent.
pub(crate) fn locate(text: &str, path: &[Seg]) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    walk(text, Node::Table(doc.as_table()), path, None)
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a toml_edit::Item),
    Table(&'a toml_edit::Table),
    Value(&'a toml_edit::Value),
}

fn walk(text: &str, node: Node<'_>, rest: &[Seg], best: Option<usize>) -> Option<usize> {
    use toml_edit::{Item, Value};
    let Some(seg) = rest.first() else {
        return best;
    };
    let line_of = |span: Option<std::ops::Range<usize>>| span.map(|s| line_col(text, s.start).0);
    let node = match node {
        Node::Item(Item::Table(t)) => Node::Table(t),
        Node::Item(Item::Value(v)) => Node::Value(v),
        n => n,
    };
    let (next, line) = match (seg, node) {
        (Seg::Key(k), Node::Table(t)) => match t.get_key_value(k) {
            Some((key, it)) => (Node::Item(it), line_of(key.span()).or(line_of(it.span()))),
            None => return best,
        },
        (Seg::Key(k), Node::Value(Value::InlineTable(t))) => match t.get_key_value(k) {
            Some((key, v)) => (Node::Item(v), line_of(key.span()).or(line_of(v.span()))),
            None => return best,
        },
        (Seg::Index(i), Node::Item(Item::ArrayOfTables(a))) => match a.get(*i) {
            Some(t) => (Node::Table(t), line_of(t.span())),
            None => return best,
        },
        (Seg::Index(i), Node::Value(Value::Array(a))) => match a.get(*i) {
            Some(v) => (Node::Value(v), line_of(v.span())),
            None => return best,
        },
        _ => return best,
    };
    walk(text, next, &rest[1..], line.or(best))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
    (line, column)
}
