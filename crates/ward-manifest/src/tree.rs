//! Trusted trees: a directory signed as one digest over every entry's name, kind, mode, mtime,
//! size, symlink target and per-chunk SHA-256s.
//!
//! A trusted directory (`"file:/usr/lib/python3.11/"`) would otherwise become one manifest entry
//! per file — 85,000 for a Python installation with a venv — and the runtime would have to hash
//! each file whole at open before serving a byte. Instead `ward sign` records the directory as a
//! [`TrustTree`], writes every tree into one sidecar file beside the signed manifest
//! (`x.signed.trees`, named by `sgx.trusted_trees`), and the manifest entry carries only the
//! tree's digest: `{ uri = "file:/usr/lib/python3.11/", tree = "…" }`. The measurement covers the
//! digest, so the sidecar can live on the untrusted host: the runtime recomputes each section's
//! digest before using it. At run time a file of the tree is served chunk by chunk, each chunk
//! checked against its hash when it is first read; the listing, modes, mtimes (Python decides
//! `.pyc` staleness from them) and symlinks are the signed ones, never the host's.
//!
//! A tree is a snapshot, not a view: symlinks inside it are recorded as symlinks (their target
//! text), never followed, so a link leading out of the directory is resolved in the workload's
//! view at run time. Sockets, FIFOs and devices are left out.
//!
//! The sidecar format is text, one section per tree, each entry on one line; names are
//! percent-escaped (every byte outside `!`..`~`, and `%`), so a name with spaces or newlines
//! cannot break the framing:
//!
//! ```text
//! ward-trust-tree 1 chunk=65536 file:/usr/lib/python3.11/
//! d 0755 1693051200.123456789 .
//! f 0644 1693051200.123456789 5 abc.py 8ed3f6ad…
//! l 1693051200.000000000 lib64 lib
//! end 3
//! ```
//!
//! The section's digest is the SHA-256 of its bytes from its header line through its `end` line.

use crate::schema::{FileUri, Sha256};
use sha2::Digest;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The chunk size `ward sign` uses: each chunk read is verified on its own, so a program that
/// touches a few pages of a 30 MB shared library verifies those, not 30 MB.
pub const DEFAULT_CHUNK_SIZE: u32 = 64 << 10;

/// The largest sidecar the runtime reads (a Python installation's is a few MiB).
pub const MAX_SIDECAR_BYTES: u64 = 512 << 20;

const MAGIC: &str = "ward-trust-tree";
const VERSION: &str = "1";

/// What went wrong building, reading or checking a trusted tree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// Reading a file or directory of the tree failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The host path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A name in the tree is not UTF-8 (the workload could not name it).
    #[error("{} is not valid UTF-8; a trusted tree holds only nameable files", path.display())]
    NotUtf8 {
        /// The host path.
        path: PathBuf,
    },
    /// The sidecar does not parse.
    #[error("{file}, line {line}: {problem}")]
    Syntax {
        /// The sidecar file, as shown.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong there.
        problem: String,
    },
    /// The sidecar holds no section for a tree the manifest names.
    #[error(
        "{file} holds no trusted tree for {uri}; it must be the sidecar `ward sign` wrote with \
         this manifest"
    )]
    Missing {
        /// The sidecar file, as shown.
        file: String,
        /// The tree's URI.
        uri: String,
    },
    /// A section's digest is not the one the manifest signed.
    #[error(
        "the trusted tree for {uri} in {file} has digest {found}, but the signed manifest gives \
         {expected}: the sidecar was changed after signing; restore it or re-sign"
    )]
    Mismatch {
        /// The sidecar file, as shown.
        file: String,
        /// The tree's URI.
        uri: String,
        /// The manifest's digest.
        expected: String,
        /// The section's digest.
        found: String,
    },
}

/// A modification time, as the file system records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mtime {
    /// Seconds since the epoch (negative before it).
    pub secs: i64,
    /// Nanoseconds, below 1,000,000,000.
    pub nanos: u32,
}

impl Mtime {
    /// The time as a `SystemTime` (the epoch if the platform cannot represent it).
    pub fn system_time(self) -> std::time::SystemTime {
        use std::time::{Duration, UNIX_EPOCH};
        let nanos = Duration::from_nanos(u64::from(self.nanos));
        let secs = Duration::from_secs(self.secs.unsigned_abs());
        let t = if self.secs >= 0 {
            UNIX_EPOCH.checked_add(secs)
        } else {
            UNIX_EPOCH.checked_sub(secs)
        };
        t.and_then(|t| t.checked_add(nanos)).unwrap_or(UNIX_EPOCH)
    }

    /// The mtime recorded in `md`.
    pub fn of(md: &fs::Metadata) -> Mtime {
        Mtime {
            secs: md.mtime(),
            nanos: u32::try_from(md.mtime_nsec()).unwrap_or(0).min(999_999_999),
        }
    }

    fn parse(s: &str) -> Result<Mtime, String> {
        s.parse()
    }
}

impl std::str::FromStr for Mtime {
    type Err = String;
    fn from_str(s: &str) -> Result<Mtime, String> {
        let bad = || format!("{s:?} is not a time (SECONDS.NANOSECONDS)");
        let (secs, nanos) = s.split_once('.').ok_or_else(bad)?;
        if nanos.len() != 9 || !nanos.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(Mtime {
            secs: secs.parse().map_err(|_| bad())?,
            nanos: nanos.parse().map_err(|_| bad())?,
        })
    }
}

impl std::fmt::Display for Mtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:09}", self.secs, self.nanos)
    }
}

/// A regular file of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Modification time.
    pub mtime: Mtime,
    /// Length in bytes.
    pub size: u64,
    /// SHA-256 of each chunk, in order (none for an empty file).
    pub chunks: Vec<[u8; 32]>,
}

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEntry {
    /// A directory; its children are the entries named below it.
    Dir {
        /// Permission bits.
        mode: u32,
        /// Modification time.
        mtime: Mtime,
    },
    /// A regular file.
    File(TreeFile),
    /// A symbolic link, with its target as written.
    Symlink {
        /// The link's text (relative, or absolute in the workload's view).
        target: String,
        /// Modification time.
        mtime: Mtime,
    },
}

/// A signed directory: every entry below it by relative path (`""` is the directory itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustTree {
    uri: FileUri,
    chunk_size: u32,
    /// Sorted by path, bytewise: a directory's descendants are contiguous right after it. A
    /// sorted vector rather than a map, and no separate child lists: a Python installation's
    /// tree has ~85,000 entries, held for the whole run.
    entries: Vec<(Box<str>, TreeEntry)>,
}

impl TrustTree {
    /// The directory's URI as the manifest names it.
    pub fn uri(&self) -> &FileUri {
        &self.uri
    }

    /// Bytes per chunk hash.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    fn position(&self, rel: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| (**k).cmp(rel))
    }

    /// The entry at `rel` (`""`, `"a"`, `"a/b.py"`), if the tree holds it.
    pub fn get(&self, rel: &str) -> Option<&TreeEntry> {
        self.position(rel).ok().map(|i| &self.entries[i].1)
    }

    /// The names directly inside directory `rel`, sorted; `None` unless `rel` is a directory.
    pub fn children(&self, rel: &str) -> Option<Vec<&str>> {
        let at = self.position(rel).ok()?;
        if !matches!(self.entries[at].1, TreeEntry::Dir { .. }) {
            return None;
        }
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        // Everything below `rel` is contiguous from the first key starting with "rel/"; a
        // child directory's own descendants ("rel/c/…", up to "rel/c0", '0' following '/')
        // are skipped by a binary search.
        let mut out = Vec::new();
        let mut i = at + self.entries[at..].partition_point(|(k, _)| **k < *prefix);
        while let Some((key, _)) = self.entries.get(i) {
            let Some(name) = key.strip_prefix(prefix.as_str()) else {
                break;
            };
            match name.find('/') {
                _ if name.is_empty() => i += 1,
                None => {
                    out.push(name);
                    i += 1;
                }
                Some(slash) => {
                    let end = format!("{prefix}{}0", &name[..slash]);
                    i += self.entries[i..].partition_point(|(k, _)| **k < *end);
                }
            }
        }
        Some(out)
    }

    /// Every entry, by relative path, sorted.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &TreeEntry)> {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }

    /// Regular files and their total size.
    pub fn file_count_and_bytes(&self) -> (u64, u64) {
        self.entries
            .iter()
            .map(|(_, e)| e)
            .filter_map(|e| match e {
                TreeEntry::File(f) => Some(f.size),
                _ => None,
            })
            .fold((0, 0), |(n, b), s| (n + 1, b + s))
    }

    fn from_entries(uri: FileUri, chunk_size: u32, entries: BTreeMap<String, TreeEntry>) -> Self {
        TrustTree {
            uri,
            chunk_size,
            entries: entries
                .into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v))
                .collect(),
        }
    }

    /// Walks the directory at `dir` (named `uri` in the manifest) and hashes every file in
    /// chunks of `chunk_size`, on all cores; `on_file` is called as each file is done with
    /// (host path, size).
    pub fn build(
        uri: &FileUri,
        dir: &Path,
        chunk_size: u32,
        on_file: &mut dyn FnMut(&Path, u64),
    ) -> Result<TrustTree, TreeError> {
        let chunk_size = chunk_size.max(1);
        let mut entries = BTreeMap::new();
        let mut files: Vec<(String, PathBuf, fs::Metadata)> = Vec::new();
        let root_md = fs::metadata(dir).map_err(|e| io_err("reading", dir, e))?;
        entries.insert(
            String::new(),
            TreeEntry::Dir {
                mode: root_md.mode() & 0o7777,
                mtime: Mtime::of(&root_md),
            },
        );
        walk(dir, "", &mut entries, &mut files)?;

        // Hash on every core; results come back in any order and land by index.
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(files.len().max(1));
        let next = AtomicUsize::new(0);
        let mut hashed: Vec<Option<Vec<[u8; 32]>>> = vec![None; files.len()];
        let result = std::thread::scope(|s| -> Result<(), TreeError> {
            let (tx, rx) = std::sync::mpsc::channel();
            let mut workers_running = Vec::with_capacity(workers);
            for _ in 0..workers {
                let tx = tx.clone();
                let (next, files) = (&next, &files);
                workers_running.push(s.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, path, md)) = files.get(i) else {
                        break;
                    };
                    let r = chunk_hashes(path, md.len(), chunk_size);
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                }));
            }
            drop(tx);
            let mut outcome = Ok(());
            for (i, r) in rx {
                let (_, path, md) = &files[i];
                match r {
                    Ok(chunks) => {
                        on_file(path, md.len());
                        hashed[i] = Some(chunks);
                    }
                    Err(e) => {
                        // Stop the other workers early; they notice when they next take work.
                        next.store(files.len(), Ordering::Relaxed);
                        outcome = Err(e);
                        break;
                    }
                }
            }
            // Joined explicitly, not just waited for by the scope: a join returns only once the
            // OS thread is gone, so a caller that forks next (the sandbox) sees one thread.
            for worker in workers_running {
                if let Err(panic) = worker.join() {
                    std::panic::resume_unwind(panic);
                }
            }
            outcome
        });
        result?;
        for ((rel, _, md), chunks) in files.into_iter().zip(hashed) {
            entries.insert(
                rel,
                TreeEntry::File(TreeFile {
                    mode: md.mode() & 0o7777,
                    mtime: Mtime::of(&md),
                    size: md.len(),
                    chunks: chunks.unwrap_or_default(),
                }),
            );
        }
        Ok(TrustTree::from_entries(uri.clone(), chunk_size, entries))
    }

    /// The tree's section of the sidecar (see the module documentation).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{MAGIC} {VERSION} chunk={} {}",
            self.chunk_size,
            escape(self.uri.as_str())
        );
        for (rel, e) in &self.entries {
            let name = if rel.is_empty() { "." } else { &**rel };
            let name = escape(name);
            let _ = match e {
                TreeEntry::Dir { mode, mtime } => writeln!(out, "d {mode:04o} {mtime} {name}"),
                TreeEntry::File(f) => {
                    let _ = write!(out, "f {:04o} {} {} {name}", f.mode, f.mtime, f.size);
                    for c in &f.chunks {
                        out.push(' ');
                        out.push_str(&hex::encode(c));
                    }
                    writeln!(out)
                }
                TreeEntry::Symlink { target, mtime } => {
                    writeln!(out, "l {mtime} {name} {}", escape(target))
                }
            };
        }
        let _ = writeln!(out, "end {}", self.entries.len());
        out
    }

    /// The digest the manifest signs: SHA-256 of [`encode`](Self::encode).
    pub fn digest(&self) -> Sha256 {
        Sha256(sha2::Sha256::digest(self.encode().as_bytes()).into())
    }
}

fn io_err(op: &'static str, path: &Path, source: io::Error) -> TreeError {
    TreeError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

// Entries below `dir` (relative path prefix `rel`): directories and symlinks recorded now,
// regular files collected for hashing.
fn walk(
    dir: &Path,
    rel: &str,
    entries: &mut BTreeMap<String, TreeEntry>,
    files: &mut Vec<(String, PathBuf, fs::Metadata)>,
) -> Result<(), TreeError> {
    let list = fs::read_dir(dir).map_err(|e| io_err("listing", dir, e))?;
    for entry in list {
        let entry = entry.map_err(|e| io_err("listing", dir, e))?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| TreeError::NotUtf8 { path: path.clone() })?;
        if ward_fsio::is_temp_name(&name) {
            continue;
        }
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let md = fs::symlink_metadata(&path).map_err(|e| io_err("reading", &path, e))?;
        let ft = md.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(|e| io_err("reading the link", &path, e))?;
            let target = target
                .into_os_string()
                .into_string()
                .map_err(|_| TreeError::NotUtf8 { path: path.clone() })?;
            entries.insert(
                child,
                TreeEntry::Symlink {
                    target,
                    mtime: Mtime::of(&md),
                },
            );
        } else if ft.is_dir() {
            entries.insert(
                child.clone(),
                TreeEntry::Dir {
                    mode: md.mode() & 0o7777,
                    mtime: Mtime::of(&md),
                },
            );
            walk(&path, &child, entries, files)?;
        } else if ft.is_file() {
            files.push((child, path, md));
        }
    }
    Ok(())
}

/// SHA-256 of each `chunk`-byte piece of the file, which must be `size` bytes long.
fn chunk_hashes(path: &Path, size: u64, chunk: u32) -> Result<Vec<[u8; 32]>, TreeError> {
    let mut file = fs::File::open(path).map_err(|e| io_err("opening", path, e))?;
    let mut buf = vec![0u8; chunk as usize];
    let mut out = Vec::with_capacity(size.div_ceil(u64::from(chunk)) as usize);
    let mut total = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("hashing", path, e)),
            }
        }
        if filled == 0 {
            break;
        }
        out.push(sha2::Sha256::digest(&buf[..filled]).into());
        total += filled as u64;
        if filled < buf.len() {
            break;
        }
    }
    if total != size {
        return Err(io_err(
            "hashing",
            path,
            io::Error::other(format!(
                "it changed size while being signed ({size} bytes, then {total})"
            )),
        ));
    }
    Ok(out)
}

// Every byte outside '!'..='~', and '%', as %XX.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn unescape(s: &str) -> Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("{s:?} has a bad %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once unescaped"))
}

/// The trees of a signed manifest, as one sidecar file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustTrees {
    trees: Vec<TrustTree>,
}

impl TrustTrees {
    /// Adds a tree.
    pub fn push(&mut self, tree: TrustTree) {
        self.trees.push(tree);
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }

    /// The trees, in the order added.
    pub fn iter(&self) -> impl Iterator<Item = &TrustTree> {
        self.trees.iter()
    }

    /// Consumes the set.
    pub fn into_vec(self) -> Vec<TrustTree> {
        self.trees
    }

    /// The sidecar's bytes: every tree's section, in order.
    pub fn encode(&self) -> String {
        self.trees.iter().map(TrustTree::encode).collect()
    }

    /// Reads the sidecar `text` (shown as `file` in errors) and returns the tree for each
    /// `(uri, digest)` the signed manifest names, in that order. A section is used only if its
    /// bytes hash to the digest signed for its URI; sections for other URIs are ignored.
    pub fn parse_signed(
        text: &str,
        file: &str,
        wanted: &[(FileUri, Sha256)],
    ) -> Result<Vec<TrustTree>, TreeError> {
        let syntax = |line: usize, problem: String| TreeError::Syntax {
            file: file.to_string(),
            line,
            problem,
        };
        // Split into sections: (first line number, uri as written, bytes).
        let mut sections: Vec<(usize, String, &str)> = Vec::new();
        let mut start: Option<(usize, usize, String)> = None;
        let mut offset = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let n = i + 1;
            let body = line.strip_suffix('\n').ok_or_else(|| {
                syntax(
                    n,
                    "the last line has no newline: the file is cut short".into(),
                )
            })?;
            if let Some(rest) = body.strip_prefix(MAGIC) {
                if start.is_some() {
                    return Err(syntax(
                        n,
                        "a new tree starts before the last one ended".into(),
                    ));
                }
                let mut parts = rest.split(' ').skip(1);
                let version = parts.next().unwrap_or("");
                if version != VERSION {
                    return Err(syntax(
                        n,
                        format!(
                            "tree format version {version:?}; this ward reads version {VERSION}"
                        ),
                    ));
                }
                let _chunk = parts.next();
                let uri = parts
                    .next()
                    .ok_or_else(|| syntax(n, "the tree header names no URI".into()))?;
                let uri = unescape(uri).map_err(|p| syntax(n, p))?;
                start = Some((n, offset, uri));
            } else if body.starts_with("end ") {
                let (first, from, uri) = start
                    .take()
                    .ok_or_else(|| syntax(n, "\"end\" outside a tree".into()))?;
                sections.push((first, uri, &text[from..offset + line.len()]));
            } else if start.is_none() {
                return Err(syntax(n, "a line outside any tree".into()));
            }
            offset += line.len();
        }
        if let Some((first, _, _)) = start {
            return Err(syntax(
                first,
                "this tree has no \"end\" line: the file is cut short".into(),
            ));
        }
        let mut out = Vec::with_capacity(wanted.len());
        for (uri, expected) in wanted {
            let candidates: Vec<_> = sections
                .iter()
                .filter(|(_, u, _)| u == uri.as_str())
                .collect();
            if candidates.is_empty() {
                return Err(TreeError::Missing {
                    file: file.to_string(),
                    uri: uri.to_string(),
                });
            }
            let mut found = None;
            let mut last_digest = Sha256([0; 32]);
            for (first, _, bytes) in candidates {
                let digest = Sha256(sha2::Sha256::digest(bytes.as_bytes()).into());
                if digest == *expected {
                    found = Some((*first, *bytes));
                    break;
                }
                last_digest = digest;
            }
            let Some((first, bytes)) = found else {
                return Err(TreeError::Mismatch {
                    file: file.to_string(),
                    uri: uri.to_string(),
                    expected: expected.to_string(),
                    found: last_digest.to_string(),
                });
            };
            out.push(parse_section(bytes, first, uri).map_err(|(line, p)| syntax(line, p))?);
        }
        Ok(out)
    }
}

// Parses one section whose digest was already checked; errors carry the 1-based line.
fn parse_section(text: &str, first: usize, uri: &FileUri) -> Result<TrustTree, (usize, String)> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (first + i, l));
    let (n, header) = lines.next().ok_or((first, "empty tree".to_string()))?;
    let chunk_size = header
        .split(' ')
        .nth(2)
        .and_then(|c| c.strip_prefix("chunk="))
        .and_then(|c| c.parse::<u32>().ok())
        .filter(|c| *c > 0)
        .ok_or((n, "the header has no chunk=BYTES".to_string()))?;
    let mut entries: Vec<(Box<str>, TreeEntry)> = Vec::new();
    let mut last_parent: Option<String> = None;
    let mut count = None;
    for (n, line) in lines {
        let mut f = line.split(' ');
        let kind = f.next().unwrap_or("");
        // Error texts are made only on error: this loop runs once per file of an installation.
        let mut field = |what: &str| {
            f.next()
                .ok_or_else(|| (n, format!("{kind:?} line has no {what}")))
        };
        let mode = |s: &str| {
            u32::from_str_radix(s, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| (n, format!("{s:?} is not a mode (octal, at most 7777)")))
        };
        let (name, entry) = match kind {
            "d" => {
                let mode = mode(field("mode")?)?;
                let mtime = Mtime::parse(field("mtime")?).map_err(|p| (n, p))?;
                (field("name")?, TreeEntry::Dir { mode, mtime })
            }
            "f" => {
                let mode = mode(field("mode")?)?;
                let mtime = Mtime::parse(field("mtime")?).map_err(|p| (n, p))?;
                let size_text = field("size")?;
                let size: u64 = size_text
                    .parse()
                    .map_err(|_| (n, format!("{size_text:?} is not a size")))?;
                let name = field("name")?;
                let mut chunks = Vec::new();
                for h in f.by_ref() {
                    let mut c = [0u8; 32];
                    hex::decode_to_slice(h, &mut c)
                        .map_err(|_| (n, format!("{h:?} is not a SHA-256 (64 hex digits)")))?;
                    chunks.push(c);
                }
                let want = size.div_ceil(u64::from(chunk_size));
                if chunks.len() as u64 != want {
                    return Err((
                        n,
                        format!(
                            "{} bytes need {want} chunk hash(es), the line has {}",
                            size,
                            chunks.len()
                        ),
                    ));
                }
                let file = TreeFile {
                    mode,
                    mtime,
                    size,
                    chunks,
                };
                (name, TreeEntry::File(file))
            }
            "l" => {
                let mtime = Mtime::parse(field("mtime")?).map_err(|p| (n, p))?;
                let name = field("name")?;
                let target = unescape(field("target")?).map_err(|p| (n, p))?;
                if target.is_empty() {
                    return Err((n, "a symlink with an empty target".into()));
                }
                (name, TreeEntry::Symlink { target, mtime })
            }
            "end" => {
                let c = field("count")?;
                count = Some(
                    c.parse::<usize>()
                        .map_err(|_| (n, format!("{c:?} is not a count")))?,
                );
                continue;
            }
            other => return Err((n, format!("unknown entry kind {other:?}"))),
        };
        if f.next().is_some() {
            return Err((n, "extra fields at the end of the line".into()));
        }
        let name = unescape(name).map_err(|p| (n, p))?;
        let rel = if name == "." { String::new() } else { name };
        check_rel(&rel).map_err(|p| (n, p))?;
        // Sorted, as `ward sign` writes them: a parent always comes before its children.
        if let Some((last, _)) = entries.last() {
            if **last >= *rel {
                return Err((n, format!("{rel:?} is out of order or listed twice")));
            }
        }
        if !rel.is_empty() {
            let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
            // Siblings come in runs: look the parent up only when it changes.
            if last_parent.as_deref() != Some(parent) {
                let found = entries
                    .binary_search_by(|(k, _)| (**k).cmp(parent))
                    .ok()
                    .map(|i| &entries[i].1);
                if !matches!(found, Some(TreeEntry::Dir { .. })) {
                    return Err((n, format!("{rel:?} comes before its directory {parent:?}")));
                }
                last_parent = Some(parent.to_owned());
            }
        } else if !matches!(entry, TreeEntry::Dir { .. }) {
            return Err((n, "the tree's root must be a directory".into()));
        }
        entries.push((rel.into_boxed_str(), entry));
    }
    if count != Some(entries.len()) {
        return Err((
            first,
            "the entry count does not match the \"end\" line".into(),
        ));
    }
    if entries.first().is_none_or(|(k, _)| !k.is_empty()) {
        return Err((first, "the tree has no root entry \".\"".into()));
    }
    Ok(TrustTree {
        uri: uri.clone(),
        chunk_size,
        entries,
    })
}

fn check_rel(rel: &str) -> Result<(), String> {
    if rel.is_empty() {
        return Ok(());
    }
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
    {
        return Err(format!("{rel:?} is not a relative path of plain names"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> FileUri {
        FileUri::from_path(s).unwrap()
    }

    fn sample(dir: &Path) -> TrustTree {
        fs::create_dir_all(dir.join("sub dir")).unwrap();
        fs::write(dir.join("a.py"), b"alpha").unwrap();
        fs::write(dir.join("sub dir/big"), vec![7u8; 10_000]).unwrap();
        fs::write(dir.join("empty"), b"").unwrap();
        std::os::unix::fs::symlink("a.py", dir.join("link")).unwrap();
        std::os::unix::fs::symlink("/elsewhere/x", dir.join("out")).unwrap();
        let mut seen = 0;
        let t = TrustTree::build(&uri("t/"), dir, 4096, &mut |_, _| seen += 1).unwrap();
        assert_eq!(seen, 3);
        t
    }

    #[test]
    fn build_encode_parse_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let t = sample(d.path());
        assert_eq!(
            t.children(""),
            Some(vec!["a.py", "empty", "link", "out", "sub dir"])
        );
        assert_eq!(t.children("sub dir"), Some(vec!["big"]));
        assert_eq!(t.children("a.py"), None);
        match t.get("sub dir/big") {
            Some(TreeEntry::File(f)) => {
                assert_eq!(f.size, 10_000);
                assert_eq!(f.chunks.len(), 3);
                assert_eq!(
                    f.chunks[0],
                    <[u8; 32]>::from(sha2::Sha256::digest([7u8; 4096]))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(t.get("empty"), Some(TreeEntry::File(f)) if f.chunks.is_empty()));
        assert!(
            matches!(t.get("out"), Some(TreeEntry::Symlink { target, .. }) if target == "/elsewhere/x")
        );
        let text = t.encode();
        assert!(text.contains(" sub%20dir/big "), "{text}");
        let mut all = TrustTrees::default();
        all.push(t.clone());
        let back =
            TrustTrees::parse_signed(&all.encode(), "x.trees", &[(uri("t/"), t.digest())]).unwrap();
        assert_eq!(back, vec![t]);
    }

    #[test]
    fn a_changed_sidecar_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let t = sample(d.path());
        let text = t.encode();
        let digest = t.digest();
        let want = [(uri("t/"), digest)];
        // One byte of a hash changed.
        let at = text.find(" f").unwrap_or(0);
        let edited = text.replacen("0644", "0755", 1);
        assert_ne!(edited, text, "{at}");
        let e = TrustTrees::parse_signed(&edited, "x.trees", &want).unwrap_err();
        assert!(matches!(e, TreeError::Mismatch { .. }), "{e}");
        // Cut short.
        let e = TrustTrees::parse_signed(&text[..text.len() - 3], "x.trees", &want).unwrap_err();
        assert!(e.to_string().contains("cut short"), "{e}");
        // Not there at all.
        let e = TrustTrees::parse_signed("", "x.trees", &want).unwrap_err();
        assert!(matches!(e, TreeError::Missing { .. }), "{e}");
        // Garbage.
        let e = TrustTrees::parse_signed("hello\n", "x.trees", &want).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn malformed_sections_get_their_line() {
        let u = uri("t/");
        let bad = |body: &str| {
            let text = format!("{MAGIC} 1 chunk=4 file:t/\n{body}end 2\n");
            let digest = Sha256(sha2::Sha256::digest(text.as_bytes()).into());
            TrustTrees::parse_signed(&text, "x.trees", &[(u.clone(), digest)])
                .unwrap_err()
                .to_string()
        };
        let root = "d 0755 1.000000000 .\n";
        let e = bad(&format!(
            "{root}f 0644 1.000000000 5 a {}\n",
            hex::encode([0u8; 32])
        ));
        assert!(e.contains("line 3") && e.contains("2 chunk"), "{e}");
        let e = bad(&format!(
            "{root}f 0644 1.000000000 1 ../a {}\n",
            hex::encode([0u8; 32])
        ));
        assert!(e.contains("plain names"), "{e}");
        let e = bad(&format!("{root}l 1.000000000 x/y z\n"));
        assert!(e.contains("before its directory"), "{e}");
        let e = bad(&format!("{root}d 9999 1.000000000 x\n"));
        assert!(e.contains("not a mode"), "{e}");
        let e = bad(&format!("{root}d 0755 1.5 x\n"));
        assert!(e.contains("not a time"), "{e}");
        let e = bad(&format!("{root}q\n"));
        assert!(e.contains("unknown entry kind"), "{e}");
    }

    #[test]
    fn children_skip_descendants_but_not_siblings_that_sort_among_them() {
        let d = tempfile::tempdir().unwrap();
        for dir in ["b/c/d", "b/e", "b-x", "a/b"] {
            fs::create_dir_all(d.path().join(dir)).unwrap();
        }
        for f in ["b.y", "b/c/d/f", "b/c/g", "b/e/h", "b/z", "b-x/i", "c"] {
            fs::write(d.path().join(f), b"x").unwrap();
        }
        let t = TrustTree::build(&uri("t/"), d.path(), 4, &mut |_, _| {}).unwrap();
        assert_eq!(t.children(""), Some(vec!["a", "b", "b-x", "b.y", "c"]));
        assert_eq!(t.children("b"), Some(vec!["c", "e", "z"]));
        assert_eq!(t.children("b/c"), Some(vec!["d", "g"]));
        assert_eq!(t.children("b/c/d"), Some(vec!["f"]));
        assert_eq!(t.children("a/b"), Some(vec![]));
        assert_eq!(t.children("b-x"), Some(vec!["i"]));
        assert_eq!(t.children("nope"), None);
        // Out of order in the sidecar is refused, not mis-served.
        let text = t.encode();
        let lines: Vec<&str> = text.lines().collect();
        let mut swapped = lines.clone();
        swapped.swap(2, 3);
        let swapped = swapped.join("\n") + "\n";
        let digest = Sha256(sha2::Sha256::digest(swapped.as_bytes()).into());
        let e = TrustTrees::parse_signed(&swapped, "x", &[(uri("t/"), digest)]).unwrap_err();
        assert!(
            e.to_string().contains("out of order")
                || e.to_string().contains("before its directory"),
            "{e}"
        );
    }

    #[test]
    fn extreme_mtimes_do_not_panic() {
        for secs in [i64::MAX, i64::MIN, 0, -1] {
            let _ = Mtime {
                secs,
                nanos: 999_999_999,
            }
            .system_time();
        }
        assert_eq!(
            Mtime { secs: 1, nanos: 5 }.system_time(),
            std::time::UNIX_EPOCH + std::time::Duration::new(1, 5)
        );
    }

    #[test]
    fn escaping_round_trips() {
        for s in ["plain", "with space", "new\nline", "per%cent", "ünï"] {
            assert_eq!(unescape(&escape(s)).unwrap(), s);
            assert!(!escape(s).contains([' ', '\n']));
        }
    }
}
