//! The manifest's typed schema: what `ward sign` reads and what the runtime enforces.
//!
//! Deserialisation refuses unknown keys and malformed values (with the line, from the TOML
//! parser); `validate` then checks what spans several keys.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A workload manifest, unsigned or signed (then every trusted file carries its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// What runs, with which arguments and environment.
    #[serde(default)]
    pub loader: Loader,
    /// `[libos]`: the user's own program, when the workload is not a built-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libos: Option<Libos>,
    /// `[network]`: none by default; a program may opt in to the host's network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// What the workload's file system contains.
    #[serde(default)]
    pub fs: Fs,
    /// Identity fields and the trusted/allowed file lists, named as in Gramine.
    #[serde(default)]
    pub sgx: Sgx,
    /// Where the workload's keys come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provision: Option<Provision>,
}

/// `[loader]`: the entrypoint and its arguments and environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loader {
    /// A built-in workload, `ward:NAME` (e.g. `ward:checksum`); absent when `[libos]` names a
    /// program instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Entrypoint>,
    /// Arguments passed to the workload (the signed ones; `ward run` may append only if
    /// `insecure_host_args` is set). For a program, as in Gramine, `argv[0]` comes first (default:
    /// `[libos.entrypoint]`).
    #[serde(default)]
    pub argv: Vec<String>,
    /// Whether `ward run MANIFEST ARGS…` may append host-chosen arguments (unmeasured, so off by
    /// default, like Gramine's `loader.insecure__use_cmdline_argv`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_host_args: bool,
    /// Environment of the workload: a value, or `{ passthrough = true }` to copy the host's.
    #[serde(default)]
    pub env: BTreeMap<EnvName, EnvValue>,
}

/// `[libos]`: the user's own program (Gramine's `libos.entrypoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Libos {
    /// The program, as a path in the workload's view (`/usr/bin/python3`); it must be a trusted
    /// file.
    pub entrypoint: WorkloadPath,
}

/// `[network]`: what network a program has. Without the section (or with `host = false`) it has
/// none: a new, empty network namespace, and no socket but `AF_UNIX`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Share the host's network. ward does not protect that traffic: the program must encrypt
    /// and authenticate whatever it sends (the key material ward provisions never leaves
    /// otherwise).
    #[serde(default)]
    pub host: bool,
}

impl Manifest {
    /// Whether the program shares the host's network.
    pub fn host_network(&self) -> bool {
        self.network.is_some_and(|n| n.host)
    }
}

/// What a manifest runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload<'a> {
    /// A built-in, `loader.entrypoint = "ward:NAME"`.
    Builtin(&'a Entrypoint),
    /// The user's program, `libos.entrypoint = "/path/in/view"`.
    Program(&'a WorkloadPath),
}

impl<'a> Workload<'a> {
    /// The name a person and a policy know it by: `ward:NAME` or the program's path.
    pub fn name(&self) -> &'a str {
        match self {
            Workload::Builtin(e) => e.as_str(),
            Workload::Program(p) => p.as_str(),
        }
    }
}

impl fmt::Display for Workload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Manifest {
    /// What this manifest runs. A manifest that parsed but names neither or both (which
    /// validation refuses) is treated as naming its program.
    pub fn workload(&self) -> Option<Workload<'_>> {
        match (&self.libos, &self.loader.entrypoint) {
            (Some(l), _) => Some(Workload::Program(&l.entrypoint)),
            (None, Some(e)) => Some(Workload::Builtin(e)),
            (None, None) => None,
        }
    }

    /// The workload's name (see [`Workload::name`]); empty for an invalid manifest naming none.
    pub fn workload_name(&self) -> &str {
        self.workload().map_or("", |w| w.name())
    }
}

/// A built-in workload name, `ward:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Entrypoint(String);

impl Entrypoint {
    /// The built-in's name without the `ward:` prefix.
    pub fn builtin(&self) -> &str {
        &self.0["ward:".len()..]
    }
    /// The entrypoint as written (`ward:NAME`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Entrypoint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = s.strip_prefix("ward:").is_some_and(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if ok {
            Ok(Entrypoint(s))
        } else {
            Err(format!(
                "entrypoint {s:?} is not a built-in workload; write \"ward:NAME\" (e.g. \
                 \"ward:checksum\" or \"ward:classify\"), or name your own program with \
                 [libos] entrypoint = \"/usr/bin/python3\""
            ))
        }
    }
}

impl From<Entrypoint> for String {
    fn from(e: Entrypoint) -> String {
        e.0
    }
}

impl fmt::Display for Entrypoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvName(String);

impl EnvName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EnvName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let mut bytes = s.bytes();
        let ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(EnvName(s))
        } else {
            Err(format!(
                "{s:?} is not an environment variable name (letters, digits and _, not starting \
                 with a digit)"
            ))
        }
    }
}

impl std::borrow::Borrow<str> for EnvName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<EnvName> for String {
    fn from(e: EnvName) -> String {
        e.0
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One environment variable's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EnvValue {
    /// A fixed value, measured with the manifest.
    Value(String),
    /// `{ value = "…" }` or `{ passthrough = true }`.
    Table(EnvTable),
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, { value = \"…\" } or { passthrough = true }")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<EnvValue, E> {
                Ok(EnvValue::Value(s.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<EnvValue, A::Error> {
                let t = EnvTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                match (&t.value, t.passthrough) {
                    (Some(_), true) => Err(serde::de::Error::custom(
                        "give either value or passthrough = true, not both",
                    )),
                    (None, false) => Err(serde::de::Error::custom(
                        "give value = \"…\" or passthrough = true",
                    )),
                    // A table with only a value is the same as a plain string.
                    (Some(v), false) => Ok(EnvValue::Value(v.clone())),
                    (None, true) => Ok(EnvValue::Table(t)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The table form of an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvTable {
    /// A fixed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Copy the host's value at run time (unmeasured: the host chooses it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passthrough: bool,
}

impl EnvValue {
    /// The fixed value, or `None` for a passthrough variable.
    pub fn fixed(&self) -> Option<&str> {
        match self {
            EnvValue::Value(v) => Some(v),
            EnvValue::Table(t) => t.value.as_deref(),
        }
    }
    /// Whether the host's value is copied in.
    pub fn is_passthrough(&self) -> bool {
        matches!(self, EnvValue::Table(t) if t.passthrough)
    }
}

/// `[fs]`: mounts and pinned protected files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fs {
    /// `[[fs.mounts]]`, in any order; the longest matching path wins.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// `[[fs.pinned]]`: protected files whose plaintext must have this SHA-256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinned: Vec<Pinned>,
    /// The program's working directory (Gramine's `fs.start_dir`; default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_dir: Option<WorkloadPath>,
    /// Development only: wrap keys written into the manifest (Gramine's `fs.insecure__keys`,
    /// `NAME = "32 hex digits"`). See [`Manifest::has_dev_keys`].
    // Skipped when empty, as every key below, so manifests without them measure as before.
    #[serde(
        rename = "insecure__keys",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub insecure_keys: BTreeMap<String, InsecureKey>,
    /// Development only: wrap keys read from host files of 16 raw bytes (`ward pf keygen`),
    /// `NAME = "file:PATH"`. Only the path is measured, not the key.
    #[serde(
        rename = "insecure__key_files",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub insecure_key_files: BTreeMap<String, FileUri>,
    /// The largest file the runtime reads whole into memory (a built-in's model, a small file
    /// at open); default 1 GiB, at most [`MAX_WHOLE_READ_LIMIT`]. Gramine-style size: `"2G"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whole_read_limit: Option<Size>,
}

/// The largest `fs.whole_read_limit` accepted: a whole read takes that much memory at once.
pub const MAX_WHOLE_READ_LIMIT: u64 = 64 << 30;

impl Manifest {
    /// Whether the manifest gives any wrap key for development (`fs.insecure__keys` or
    /// `fs.insecure__key_files`). Such a key needs no attestation and no provisioning server,
    /// and the host can read it, so nothing the workload reads or writes under it is protected
    /// from the host.
    pub fn has_dev_keys(&self) -> bool {
        !self.fs.insecure_keys.is_empty() || !self.fs.insecure_key_files.is_empty()
    }

    /// Whether the workload presents itself as a debug workload: `sgx.debug`, or any dev key.
    ///
    /// A dev key is treated as debug (rather than as a new flag) because every policy already
    /// refuses a debug workload unless it sets `allow_debug`, in the workload claim of the
    /// evidence as in the enclave's attributes: a provisioning server that was never told about
    /// dev keys still refuses such a workload. The measurement is separated as well (see
    /// [`crate::measurement`]), so no policy naming a production manifest names this one.
    pub fn is_debug(&self) -> bool {
        self.sgx.debug || self.has_dev_keys()
    }
}

/// A development wrap key written in the manifest: 16 bytes as 32 hex digits. Wiped on drop,
/// never shown by `Debug` (it is written out only when the manifest is serialised).
#[derive(Clone, PartialEq, Eq)]
pub struct InsecureKey(zeroize::Zeroizing<[u8; 16]>);

impl InsecureKey {
    /// The key's 16 raw bytes.
    pub fn expose_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for InsecureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InsecureKey(<redacted>)")
    }
}

impl Serialize for InsecureKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = zeroize::Zeroizing::new(hex::encode(*self.0));
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for InsecureKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(d)?);
        let mut key = zeroize::Zeroizing::new([0u8; 16]);
        // The message never repeats the value: it is (meant to be) a key.
        hex::decode_to_slice(text.trim(), &mut *key).map_err(|_| {
            serde::de::Error::custom(format!(
                "a development key is 16 bytes written as 32 hex digits (this is {} characters, \
                 or not hex); or use fs.insecure__key_files.NAME = \"file:KEYFILE\" with a \
                 16-byte key file (`ward pf keygen`)",
                text.trim().chars().count()
            ))
        })?;
        Ok(InsecureKey(key))
    }
}

/// A size in bytes, written as Gramine writes sizes: `"2G"`, `"512M"`, `"64K"` (powers of 1024)
/// or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    /// Parses `"2G"`, `"512M"`, `"64K"` or `"4096"` (suffixes in either case).
    pub fn parse(s: &str) -> Result<Size, String> {
        let bad = || {
            format!("{s:?} is not a size; write a number of bytes or one with K, M or G (\"2G\")")
        };
        let t = s.trim();
        let (digits, shift) = match t.as_bytes().last() {
            Some(b'K' | b'k') => (&t[..t.len() - 1], 10),
            Some(b'M' | b'm') => (&t[..t.len() - 1], 20),
            Some(b'G' | b'g') => (&t[..t.len() - 1], 30),
            _ => (t, 0),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        n.checked_mul(1 << shift)
            .map(Size)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl fmt::Display for Size {
    // The largest exact unit, so the canonical form is the same whichever way it was written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        match n {
            0 => f.write_str("0"),
            _ if n.is_multiple_of(1 << 30) => write!(f, "{}G", n >> 30),
            _ if n.is_multiple_of(1 << 20) => write!(f, "{}M", n >> 20),
            _ if n.is_multiple_of(1 << 10) => write!(f, "{}K", n >> 10),
            _ => write!(f, "{n}"),
        }
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: bytes, or \"64K\", \"512M\", \"2G\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Size, E> {
                Size::parse(s).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Size, E> {
                u64::try_from(n)
                    .map(Size)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Size, E> {
                Ok(Size(n))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a mount makes visible.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// Host files, visible only when trusted or allowed.
    #[default]
    Chroot,
    /// Gramine protected files, decrypted with the mount's key.
    Encrypted,
    /// Files in memory, gone when the workload ends.
    Tmpfs,
}

impl fmt::Display for MountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MountType::Chroot => "chroot",
            MountType::Encrypted => "encrypted",
            MountType::Tmpfs => "tmpfs",
        })
    }
}

/// One `[[fs.mounts]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// `chroot` (default), `encrypted` or `tmpfs`.
    #[serde(rename = "type", default)]
    pub kind: MountType,
    /// Where the workload sees it (absolute).
    pub path: WorkloadPath,
    /// The host directory or file (`file:…`); not for tmpfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<FileUri>,
    /// Which provisioned key decrypts an encrypted mount (Gramine's default name: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
}

impl Mount {
    /// The key name of an encrypted mount, with Gramine's default.
    pub fn key_name(&self) -> &str {
        self.key_name.as_deref().unwrap_or("default")
    }
}

/// One `[[fs.pinned]]` entry: a protected file's expected plaintext hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinned {
    /// The file as the workload sees it (under an encrypted mount).
    pub path: WorkloadPath,
    /// SHA-256 of its plaintext (`ward pf info -w KEY` or `sha256sum` of the plain file).
    pub sha256: Sha256,
}

/// `[sgx]`: identity and file lists (Gramine's names, for every TEE).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sgx {
    /// Build as a debug workload (policies refuse it unless they allow debug).
    #[serde(default)]
    pub debug: bool,
    /// ISV product id (policies may require it).
    #[serde(default)]
    pub isv_prod_id: u16,
    /// ISV security version (policies may set a minimum).
    #[serde(default)]
    pub isv_svn: u16,
    /// Host files checked against their SHA-256 on every open.
    #[serde(default)]
    pub trusted_files: Vec<TrustedFile>,
    /// Host files passed through unchecked (`file:dir/` means everything under `dir`).
    #[serde(default)]
    pub allowed_files: Vec<FileUri>,
    /// The sidecar holding the trusted trees (written by `ward sign` beside the signed manifest;
    /// each tree is pinned by the digest in its `trusted_files` entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_trees: Option<FileUri>,
}

/// A trusted file: `"file:…"` (or `{ uri }`) before signing, `{ uri, sha256 }` after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TrustedFile {
    /// A file or directory still to be hashed by `ward sign`.
    Uri(FileUri),
    /// A file with its hash.
    Hashed(HashedFile),
    /// A directory signed as a tree (see [`crate::tree`]).
    Tree(TreeRef),
}

/// The table form of a trusted file, as written (the hash is optional before signing).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedFileTable {
    uri: FileUri,
    #[serde(default)]
    sha256: Option<Sha256>,
    #[serde(default)]
    tree: Option<Sha256>,
    #[serde(default)]
    mode: Option<FileMode>,
    #[serde(default)]
    mtime: Option<Mtime>,
}

// Hand-written so a bad entry gets the precise reason, not "did not match any variant".
impl<'de> Deserialize<'de> for TrustedFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TrustedFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"file:PATH\" or { uri = \"file:PATH\", sha256 = \"…\" }")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TrustedFile, E> {
                FileUri::try_from(s.to_owned())
                    .map(TrustedFile::Uri)
                    .map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<TrustedFile, A::Error> {
                let t = TrustedFileTable::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(match (t.sha256, t.tree) {
                    (Some(_), Some(_)) => {
                        return Err(serde::de::Error::custom(
                            "a trusted file has either a sha256 (a file) or a tree (a directory), \
                             not both",
                        ))
                    }
                    (Some(sha256), None) => TrustedFile::Hashed(HashedFile {
                        uri: t.uri,
                        sha256,
                        mode: t.mode,
                        mtime: t.mtime,
                    }),
                    (None, Some(tree)) => TrustedFile::Tree(TreeRef { uri: t.uri, tree }),
                    (None, None) => TrustedFile::Uri(t.uri),
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl TrustedFile {
    /// The URI, whatever the form.
    pub fn uri(&self) -> &FileUri {
        match self {
            TrustedFile::Uri(u) => u,
            TrustedFile::Hashed(h) => &h.uri,
            TrustedFile::Tree(t) => &t.uri,
        }
    }
}

/// A trusted directory after signing: its tree's digest (the tree itself is in the sidecar
/// named by `sgx.trusted_trees`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeRef {
    /// The host directory (`file:dir/`).
    pub uri: FileUri,
    /// SHA-256 of the tree's section of the sidecar.
    pub tree: Sha256,
}

/// A file and its SHA-256, with the mode and mtime the workload sees (`ward sign` records them;
/// a Gramine-style `{ uri, sha256 }` without them shows the host's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashedFile {
    /// The host file.
    pub uri: FileUri,
    /// Its SHA-256 (filled in by `ward sign`).
    pub sha256: Sha256,
    /// Its permission bits, as signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FileMode>,
    /// Its modification time, as signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<Mtime>,
}

impl HashedFile {
    /// A file with only its hash (no signed metadata).
    pub fn new(uri: FileUri, sha256: Sha256) -> Self {
        HashedFile {
            uri,
            sha256,
            mode: None,
            mtime: None,
        }
    }
}

/// Permission bits, written in octal (`"0755"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileMode(pub u32);

impl TryFrom<String> for FileMode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        u32::from_str_radix(&s, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(FileMode)
            .ok_or_else(|| format!("{s:?} is not a file mode (octal, e.g. \"0644\")"))
    }
}

impl From<FileMode> for String {
    fn from(m: FileMode) -> String {
        format!("{:04o}", m.0)
    }
}

pub use crate::tree::Mtime;

impl Serialize for Mtime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mtime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `[provision]`: the secret-provisioning servers and what their secrets become.
///
/// Each owner of a secret runs her own servers under her own CA: a secret may name its own
/// `servers` and `ca_chain`; one that names neither is fetched from the table's (so a Gramine-style
/// single `[provision]` is the one-owner case). See [`Provision::owners`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provision {
    /// `host:port` of each server, tried in order (fail-over between one owner's servers); needed
    /// unless every secret names its own.
    // Skipped when empty so a one-owner manifest measures as it did before per-secret servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// The CA chain (PEM) that the servers' certificates must chain to; hashed by `ward sign`
    /// so the host cannot substitute its own CA. Needed unless every secret names its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_chain: Option<TrustedFile>,
    /// `[[provision.secrets]]`: which secret becomes which key or variable.
    pub secrets: Vec<SecretBinding>,
}

/// One owner's servers and CA, and the secrets fetched from them (see [`Provision::owners`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner<'a> {
    /// Her servers, tried in order.
    pub servers: &'a [String],
    /// The CA her servers' certificates chain to.
    pub ca_chain: &'a TrustedFile,
    /// Indices into [`Provision::secrets`] of the secrets she releases, in manifest order.
    pub secrets: Vec<usize>,
}

impl Provision {
    /// The servers and CA that secret `i` is fetched from: its own, or the table's. `None` when
    /// it names only one of the two, or neither and the table has no `servers`/`ca_chain` (both
    /// refused by validation).
    pub fn source_of(&self, i: usize) -> Option<(&[String], &TrustedFile)> {
        let s = self.secrets.get(i)?;
        match (&s.servers, &s.ca_chain) {
            (Some(servers), Some(ca)) => Some((servers.as_slice(), ca)),
            (None, None) if !self.servers.is_empty() => self
                .ca_chain
                .as_ref()
                .map(|ca| (self.servers.as_slice(), ca)),
            _ => None,
        }
    }

    /// The secrets grouped by owner: the same servers (in the same order) and the same CA chain
    /// are one owner, fetched over one connection. Secrets without a source (see
    /// [`Provision::source_of`]) are left out.
    pub fn owners(&self) -> Vec<Owner<'_>> {
        let mut owners: Vec<Owner<'_>> = Vec::new();
        for i in 0..self.secrets.len() {
            let Some((servers, ca_chain)) = self.source_of(i) else {
                continue;
            };
            match owners
                .iter_mut()
                .find(|o| o.servers == servers && o.ca_chain == ca_chain)
            {
                Some(o) => o.secrets.push(i),
                None => owners.push(Owner {
                    servers,
                    ca_chain,
                    secrets: vec![i],
                }),
            }
        }
        owners
    }

    /// Every CA chain named: the table's, then each secret's own, in manifest order.
    pub fn ca_chains(&self) -> impl Iterator<Item = &TrustedFile> {
        self.ca_chain
            .iter()
            .chain(self.secrets.iter().filter_map(|s| s.ca_chain.as_ref()))
    }

    /// [`Provision::ca_chains`], mutably (for `ward sign` to pin them).
    pub fn ca_chains_mut(&mut self) -> impl Iterator<Item = &mut TrustedFile> {
        self.ca_chain
            .iter_mut()
            .chain(self.secrets.iter_mut().filter_map(|s| s.ca_chain.as_mut()))
    }
}

/// One provisioned secret and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretBinding {
    /// The secret's name on the server.
    pub name: String,
    /// Install it as this wrap key (16 bytes, for encrypted mounts with this `key_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// Or install it as this environment variable (UTF-8 secrets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvName>,
    /// The servers of this secret's owner (`host:port`, tried in order), instead of the table's;
    /// given together with `ca_chain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<Vec<String>>,
    /// The CA chain of this secret's owner, instead of the table's; pinned by `ward sign` like
    /// the table's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_chain: Option<TrustedFile>,
}

/// A host file URI, `file:PATH`, relative to the manifest's directory unless absolute.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileUri(String);

impl FileUri {
    /// The path part, as written (e.g. `encrypted/` for `file:encrypted/`).
    pub fn path(&self) -> &str {
        &self.0["file:".len()..]
    }
    /// The URI as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Whether it was written with a trailing `/` (a directory).
    pub fn is_dir_syntax(&self) -> bool {
        self.0.ends_with('/')
    }
    /// Builds `file:PATH`.
    pub fn from_path(path: &str) -> Result<Self, String> {
        FileUri::try_from(format!("file:{path}"))
    }
}

impl TryFrom<String> for FileUri {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.strip_prefix("file:") {
            None => Err(format!(
                "{s:?} is not a file URI; write \"file:PATH\" (relative to the manifest's \
                 directory, or absolute)"
            )),
            Some("") => Err(format!("{s:?} names no path")),
            Some(p) if p.contains('\0') => Err("a file URI may not contain NUL".into()),
            Some(_) => Ok(FileUri(s)),
        }
    }
}

impl From<FileUri> for String {
    fn from(u: FileUri) -> String {
        u.0
    }
}

impl fmt::Display for FileUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An absolute, normalised path inside the workload (`/data/model.onnx`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkloadPath(String);

impl WorkloadPath {
    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Whether `other` is this path or below it.
    pub fn contains(&self, other: &WorkloadPath) -> bool {
        self.0 == "/"
            || other.0 == self.0
            || (other.0.starts_with(&self.0) && other.0.as_bytes()[self.0.len()] == b'/')
    }
}

impl TryFrom<String> for WorkloadPath {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if !s.starts_with('/') {
            return Err(format!("{s:?} is not an absolute path (write \"/{s}\")"));
        }
        if s.contains('\0') {
            return Err("a path may not contain NUL".into());
        }
        let mut parts = Vec::new();
        for part in s.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(format!(
                        "{s:?} contains \"..\"; write the path it means without it"
                    ))
                }
                p => parts.push(p),
            }
        }
        Ok(WorkloadPath(format!("/{}", parts.join("/"))))
    }
}

impl From<WorkloadPath> for String {
    fn from(p: WorkloadPath) -> String {
        p.0
    }
}

impl fmt::Display for WorkloadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SHA-256 digest, written as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(pub [u8; 32]);

impl TryFrom<String> for Sha256 {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out)
            .map_err(|_| format!("{s:?} is not a SHA-256 digest (64 hex digits)"))?;
        Ok(Sha256(out))
    }
}

impl From<Sha256> for String {
    fn from(h: Sha256) -> String {
        hex::encode(h.0)
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}
