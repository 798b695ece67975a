//! The manifest of a Python program: [`inspect`] an interpreter, then write its [`manifest`].

use crate::elf::{self, Dependencies, LibrarySearch};
use crate::error::{io_err, TemplateError};
use crate::host::{normalize, Host};
use crate::tree::{self, Skipped};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use ward_manifest::{
    EnvName, EnvValue, FileUri, Fs, Libos, Loader, Manifest, Mount, MountType, Provision,
    SecretBinding, Sgx, TrustedFile, WorkloadPath,
};

/// The interpreter used when none is given.
pub const DEFAULT_INTERPRETER: &str = "/usr/bin/python3";

/// The script the interpreter runs to describe itself. It runs with `-E -s` (no `PYTHON*`
/// variables, no user site-packages; `-I` would also do, but Python 2 refuses `-I` before it
/// could say it is Python 2) from `/` (so no module in the caller's directory shadows `json`),
/// and *with* `site`, so the site-packages directories are the ones a normal start computes
/// (Debian's `dist-packages`, a venv's `site-packages`, `include-system-site-packages`).
/// Importing `site` runs the installation's `.pth` files and `sitecustomize`, as every start of
/// the interpreter does.
const INSPECT: &str = r#"
import json, os, sys, sysconfig
try:
    import site
    sp = site.getsitepackages()
except Exception:
    sp = []
paths = sysconfig.get_paths()
dyn = [p for p in sys.path if os.path.basename(p) == "lib-dynload"]
print(json.dumps({
    "ward_inspect": 1,
    "executable": sys.executable,
    "resolved": os.path.realpath(sys.executable),
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "exec_prefix": sys.exec_prefix,
    "base_exec_prefix": getattr(sys, "base_exec_prefix", sys.exec_prefix),
    "version": list(sys.version_info[:3]),
    "stdlib": paths.get("stdlib"),
    "platstdlib": paths.get("platstdlib"),
    "lib_dynload": dyn[0] if dyn else None,
    "site_packages": [p for p in sp if os.path.isdir(p)],
}))
"#;

/// What an interpreter reported about itself ([`inspect`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct PythonInstall {
    /// The interpreter as given, made absolute but not resolved (a venv's `bin/python` stays
    /// itself: Python finds `pyvenv.cfg` beside the name it was started by).
    #[serde(skip)]
    pub interpreter: PathBuf,
    /// `sys.executable` as Python reports it.
    pub executable: PathBuf,
    /// `sys.executable` with every symlink resolved: the ELF file that runs.
    pub resolved: PathBuf,
    /// `sys.prefix` (a venv's directory in a venv).
    pub prefix: PathBuf,
    /// `sys.base_prefix` (the installation a venv was made from; `prefix` otherwise).
    pub base_prefix: PathBuf,
    /// `sys.exec_prefix`.
    pub exec_prefix: PathBuf,
    /// `sys.base_exec_prefix`.
    pub base_exec_prefix: PathBuf,
    /// `sys.version_info[:3]`.
    pub version: (u32, u32, u32),
    /// `sysconfig`'s `stdlib` directory (`/usr/lib/python3.11`).
    pub stdlib: PathBuf,
    /// `sysconfig`'s `platstdlib` directory (usually the same as `stdlib`).
    pub platstdlib: PathBuf,
    /// The `lib-dynload` directory on `sys.path` (extension modules of the stdlib), if any.
    pub lib_dynload: Option<PathBuf>,
    /// `site.getsitepackages()` after a normal start, those that exist.
    pub site_packages: Vec<PathBuf>,
}

impl PythonInstall {
    /// Whether this is a virtual environment (`sys.prefix != sys.base_prefix`).
    pub fn is_venv(&self) -> bool {
        self.prefix != self.base_prefix
    }
}

#[derive(Deserialize)]
struct Report {
    ward_inspect: u32,
    #[serde(flatten)]
    install: PythonInstall,
}

/// Runs `interpreter -E -s -c SCRIPT` once and returns what it reports (see [`PythonInstall`]).
/// Errors name the command: the interpreter missing, failing, not printing the expected JSON,
/// or not being Python 3.
pub fn inspect(interpreter: &Path) -> Result<PythonInstall, TemplateError> {
    let interpreter = std::path::absolute(interpreter).map_err(io_err("resolving", interpreter))?;
    if !interpreter.exists() {
        return Err(TemplateError::InterpreterMissing { path: interpreter });
    }
    let command = format!("{} -E -s -c <inspection script>", interpreter.display());
    let out = Command::new(&interpreter)
        .args(["-E", "-s", "-c"])
        .arg(INSPECT)
        .current_dir("/")
        .output()
        .map_err(|source| TemplateError::Spawn {
            command: command.clone(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        return Err(TemplateError::InterpreterFailed {
            command,
            status: out.status.to_string(),
            stderr: tail,
        });
    }
    let value: serde_json::Value =
        serde_json::from_str(stdout.trim()).map_err(|source| TemplateError::NotJson {
            command: command.clone(),
            output: stdout.chars().take(200).collect(),
            source,
        })?;
    let major = value
        .get("version")
        .and_then(|v| v.get(0))
        .and_then(serde_json::Value::as_u64);
    if major != Some(3) {
        return Err(TemplateError::NotPython3 {
            command,
            version: value
                .get("version")
                .map(|v| v.to_string())
                .unwrap_or_else(|| "unknown".into()),
        });
    }
    let report: Report =
        serde_json::from_value(value).map_err(|source| TemplateError::NotJson {
            command: command.clone(),
            output: stdout.chars().take(200).collect(),
            source,
        })?;
    debug_assert_eq!(report.ward_inspect, 1);
    let mut install = report.install;
    install.interpreter = interpreter;
    Ok(install)
}

/// An encrypted mount to add; as a command-line value, `/data=file:enc` (key `default`),
/// `/data=file:enc,key=NAME`, and, for a key that another owner releases from her own server,
/// `…,server=HOST:PORT,ca=FILE` (`server=` repeatable, tried in order).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncryptedMount {
    /// Where the program sees it.
    pub path: WorkloadPath,
    /// The host directory of protected files.
    pub uri: FileUri,
    /// The provisioned key that decrypts it (`None`: Gramine's `default`).
    pub key_name: Option<String>,
    /// The servers of the key's owner, when not the manifest's own (given with `ca`).
    pub servers: Vec<String>,
    /// The CA chain of the key's owner's servers (given with `servers`).
    pub ca: Option<PathBuf>,
}

impl EncryptedMount {
    /// An encrypted mount at `path` of the protected files at `uri`.
    pub fn new(path: WorkloadPath, uri: FileUri, key_name: Option<String>) -> Self {
        EncryptedMount {
            path,
            uri,
            key_name,
            servers: Vec::new(),
            ca: None,
        }
    }

    /// The same mount, its key fetched from its owner's `servers`, authenticated by `ca`.
    pub fn with_owner(mut self, servers: Vec<String>, ca: PathBuf) -> Self {
        self.servers = servers;
        self.ca = Some(ca);
        self
    }
}

impl FromStr for EncryptedMount {
    type Err = TemplateError;
    /// Parses `/data=file:enc[,key=NAME][,server=HOST:PORT…][,ca=FILE]`.
    fn from_str(s: &str) -> Result<Self, TemplateError> {
        let bad = |why: String| {
            TemplateError::Option(format!(
                "encrypted mount {s:?}: {why}; write PATH=file:HOST_DIR (e.g. /data=file:enc), \
                 optionally followed by ,key=NAME and, for a key from its owner's own server, \
                 ,server=HOST:PORT,ca=FILE"
            ))
        };
        let (path, mut rest) = s.split_once('=').ok_or_else(|| bad("no '='".into()))?;
        let (mut key, mut servers, mut ca) = (None, Vec::new(), None);
        // Options are taken from the right, so a directory name may itself contain commas.
        while let Some((head, opt)) = rest.rsplit_once(',') {
            let Some((name, value)) = opt.split_once('=') else {
                break;
            };
            if !matches!(name, "key" | "server" | "ca") {
                break;
            }
            if value.is_empty() {
                return Err(bad(format!("empty {name}=")));
            }
            match name {
                "key" if key.is_some() => return Err(bad("key= given twice".into())),
                "key" => key = Some(value.to_owned()),
                "server" => servers.insert(0, value.to_owned()),
                _ if ca.is_some() => return Err(bad("ca= given twice".into())),
                _ => ca = Some(PathBuf::from(value)),
            }
            rest = head;
        }
        if servers.is_empty() != ca.is_none() {
            return Err(bad(
                "server= and ca= name the key owner's servers and their CA; give both or neither"
                    .into(),
            ));
        }
        Ok(EncryptedMount {
            path: WorkloadPath::try_from(path.to_owned()).map_err(bad)?,
            uri: FileUri::try_from(rest.to_owned()).map_err(bad)?,
            key_name: key,
            servers,
            ca,
        })
    }
}

fn ca_uri(ca: &Path) -> Result<TrustedFile, TemplateError> {
    FileUri::try_from(format!("file:{}", utf8(ca)?))
        .map(TrustedFile::Uri)
        .map_err(|reason| TemplateError::Path {
            path: ca.to_string_lossy().into_owned(),
            reason,
        })
}

/// The `[provision]` section that fetches the keys of `encrypted` mounts: one secret per
/// distinct key name, the key `default` fetched as the secret `default_secret` (what `ward
/// provision init` serves as `wrap_key`), any other key under its own name. A key whose mount
/// names its owner's servers and CA is fetched from those; any other from `servers`, whose
/// certificates chain to the CA at `ca` (each CA pinned by hash when signing).
pub fn provision_for(
    encrypted: &[EncryptedMount],
    servers: Vec<String>,
    ca: Option<&Path>,
    default_secret: &str,
) -> Result<Provision, TemplateError> {
    // Key name → its owner's servers and CA (empty and None: the table's).
    let mut keys: BTreeMap<&str, (&[String], Option<&Path>)> = BTreeMap::new();
    for m in encrypted {
        let key = m.key_name.as_deref().unwrap_or("default");
        let owner = (m.servers.as_slice(), m.ca.as_deref());
        match keys.get(key) {
            Some(first) if *first != owner => {
                return Err(TemplateError::Option(format!(
                    "key {key:?} is given two different owners (servers and CA) by its \
                     encrypted mounts; name its server= and ca= the same on each, or use \
                     another key"
                )))
            }
            _ => {
                keys.insert(key, owner);
            }
        }
    }
    let table_needed = keys.values().any(|(s, _)| s.is_empty());
    let table_ca = match (table_needed, ca) {
        (false, _) => None,
        (true, Some(ca)) if !servers.is_empty() => Some(ca_uri(ca)?),
        (true, _) => {
            return Err(TemplateError::Option(
                "encrypted mounts need a provisioning server to fetch their keys from: give \
                 --server and --ca (or server= and ca= on each mount)"
                    .into(),
            ))
        }
    };
    let mut secrets = Vec::new();
    for (key, (own_servers, own_ca)) in keys {
        let ca_chain = own_ca.map(ca_uri).transpose()?;
        secrets.push(SecretBinding {
            name: if key == "default" {
                default_secret.to_owned()
            } else {
                key.to_owned()
            },
            key_name: Some(key.to_owned()),
            env: None,
            servers: ca_chain.as_ref().map(|_| own_servers.to_vec()),
            ca_chain,
        });
    }
    Ok(Provision {
        servers: if table_ca.is_some() {
            servers
        } else {
            Vec::new()
        },
        ca_chain: table_ca,
        secrets,
    })
}

/// What [`manifest`] writes, besides the interpreter's installation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PythonOptions {
    /// The script on the host. Its directory is mounted at [`PythonOptions::app_dir`] and
    /// trusted whole (local modules and data files with it).
    pub script: PathBuf,
    /// Where the script's directory appears in the view, and the working directory (`/app`).
    pub app_dir: WorkloadPath,
    /// Where the manifest will be written: URIs under it are written relative to it (so the
    /// project can move); `None` writes absolute URIs only.
    pub manifest_dir: Option<PathBuf>,
    /// Trust the installation's site-packages too (for a venv: the venv's, and the system's if
    /// the venv includes them). Default: only the stdlib and the script's directory.
    pub include_site_packages: bool,
    /// More host directories to mount (at the same path) and trust, put on `PYTHONPATH`.
    pub extra_paths: Vec<PathBuf>,
    /// Encrypted mounts to add (they need a key, so `provision` too).
    pub encrypted: Vec<EncryptedMount>,
    /// The `[provision]` section (servers, CA, secrets), copied as is.
    pub provision: Option<Provision>,
    /// A tmpfs at `/tmp` (default true).
    pub tmpfs_tmp: bool,
    /// Directory names left out of every trusted tree, `NAME` or `PREFIX*` (default `.git` and
    /// `.venv`: a venv in the project is mounted as a prefix when it is the interpreter).
    pub exclude: Vec<String>,
    /// Directory names left out of the stdlib, same syntax (default `config-*`: the static
    /// `libpython` and `Makefile` for building C extensions, 25 MB on Debian, not needed to run).
    /// Without `include_site_packages`, `site-packages` and `dist-packages` inside the stdlib
    /// (as in a pyenv or a source build) are left out too.
    pub stdlib_exclude: Vec<String>,
    /// Arguments after the script (signed with the manifest).
    pub args: Vec<String>,
    /// The working directory (`fs.start_dir`), when not `app_dir`: e.g. an encrypted mount, for
    /// a script that opens its protected inputs by relative paths.
    pub start_dir: Option<WorkloadPath>,
}

impl PythonOptions {
    /// The defaults for `script`: mounted at `/app`, stdlib only, tmpfs `/tmp`, `.git` and `.venv`
    /// excluded.
    pub fn new(script: impl Into<PathBuf>) -> Self {
        PythonOptions {
            script: script.into(),
            app_dir: WorkloadPath::try_from("/app".to_owned()).expect("a valid path"),
            manifest_dir: None,
            include_site_packages: false,
            extra_paths: Vec::new(),
            encrypted: Vec::new(),
            provision: None,
            tmpfs_tmp: true,
            exclude: vec![".git".into(), ".venv".into()],
            stdlib_exclude: vec!["config-*".into()],
            args: Vec::new(),
            start_dir: None,
        }
    }
}

/// A generated manifest, with what the generator left out or could not resolve.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PythonManifest {
    /// The manifest (unsigned; directory URIs still to be expanded by `ward sign`).
    pub manifest: Manifest,
    /// Paths left out of trusted trees (dangling or escaping symlinks, excluded names).
    pub skipped: Vec<Skipped>,
    /// Library names that the ELF search did not find: (object, name). The program fails if it
    /// loads that object.
    pub unresolved: Vec<(PathBuf, String)>,
    /// The shared libraries found (as the loader names them), for the record.
    pub libraries: BTreeSet<PathBuf>,
}

impl PythonManifest {
    /// The manifest as TOML: the typed schema serialised (`toml::to_string_pretty`, one trusted
    /// file a line), no comments.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.manifest).expect("a manifest always serialises")
    }
}

fn utf8(p: &Path) -> Result<&str, TemplateError> {
    p.to_str().ok_or_else(|| TemplateError::Path {
        path: p.to_string_lossy().into_owned(),
        reason: "not valid UTF-8".into(),
    })
}

fn view_path(p: &Path) -> Result<WorkloadPath, TemplateError> {
    WorkloadPath::try_from(utf8(p)?.to_owned()).map_err(|reason| TemplateError::Path {
        path: p.to_string_lossy().into_owned(),
        reason,
    })
}

fn uri(p: &Path, dir: bool, base: Option<&Path>) -> Result<FileUri, TemplateError> {
    let rel = base.and_then(|b| p.strip_prefix(b).ok());
    let mut s = match rel {
        Some(r) if !r.as_os_str().is_empty() => utf8(r)?.to_owned(),
        _ => utf8(p)?.to_owned(),
    };
    if dir && !s.ends_with('/') {
        s.push('/');
    }
    FileUri::from_path(&s).map_err(|reason| TemplateError::Path {
        path: s.clone(),
        reason,
    })
}

/// Writes the manifest that runs `options.script` with `install`'s interpreter:
///
/// - `[libos] entrypoint` = the interpreter's resolved ELF file (`/usr/bin/python3.11`: a regular
///   file, so no symlink has to cross mounts, as a venv's `bin/python3` → `/usr/bin/python3`
///   would); `argv = [INTERPRETER, APP_DIR/SCRIPT, args…]` with `argv[0]` the interpreter as
///   given, absolute (merged-/usr mapped: `/bin/python3` is `/usr/bin/python3` in the view),
///   from which Python derives `sys.executable` and finds a venv's `pyvenv.cfg`;
/// - env `PYTHONDONTWRITEBYTECODE=1` (nothing to write `.pyc` to), `LANG=C.UTF-8`,
///   `PYTHONPATH` only for `extra_paths`, `LD_LIBRARY_PATH` only for libraries that only
///   `/etc/ld.so.cache` finds (the view has no cache); `PYTHONHASHSEED` unset (random hashing, as Python's
///   default);
/// - mounts: `/usr` (and any other prefix the files lie under, at the same path) as chroot, the
///   script's directory at `app_dir`, tmpfs `/tmp`, the encrypted mounts;
/// - trusted: the interpreter and every symlink on its way, the stdlib (`.pyc` included), the
///   site-packages if asked, every shared library the interpreter and the extension modules
///   need (with the program interpreter `ld.so`), the script's directory.
///
/// Host files are read (directories walked, ELF files parsed), nothing is hashed or run.
pub fn manifest(
    install: &PythonInstall,
    options: &PythonOptions,
) -> Result<PythonManifest, TemplateError> {
    let host = Host::read();
    let script =
        std::path::absolute(&options.script).map_err(io_err("resolving", &options.script))?;
    if !script.is_file() {
        return Err(TemplateError::Script {
            path: script,
            reason: "no such file".into(),
        });
    }
    let script_dir = script.parent().unwrap_or(Path::new("/")).to_owned();
    let script_name = script.file_name().unwrap_or_default();
    let base = match &options.manifest_dir {
        Some(d) => Some(std::path::absolute(d).map_err(io_err("resolving", d))?),
        None => None,
    };

    // The roots chroot mounts may have, longest first: /usr, then the prefixes.
    let mut prefixes: Vec<PathBuf> = [
        &install.prefix,
        &install.base_prefix,
        &install.exec_prefix,
        &install.base_exec_prefix,
    ]
    .into_iter()
    .map(|p| host.usr_map(&normalize(p)))
    .chain(
        options
            .extra_paths
            .iter()
            .map(|p| normalize(&std::path::absolute(p).unwrap_or_else(|_| p.clone()))),
    )
    .collect();
    let root_of = |p: &Path, prefixes: &[PathBuf]| -> PathBuf {
        if p.starts_with("/usr") {
            return PathBuf::from("/usr");
        }
        prefixes
            .iter()
            .filter(|pre| p.starts_with(pre) && pre.as_path() != Path::new("/"))
            .min_by_key(|pre| pre.as_os_str().len())
            .cloned()
            .unwrap_or_else(|| p.parent().unwrap_or(Path::new("/")).to_owned())
    };
    prefixes.sort();
    prefixes.dedup();

    // Trusted trees: the stdlib (lib-dynload inside it, or beside), site-packages if asked.
    let mut stdlib: Vec<PathBuf> = vec![host.usr_map(&normalize(&install.stdlib))];
    for p in [&install.platstdlib]
        .into_iter()
        .chain(install.lib_dynload.as_ref())
    {
        stdlib.push(host.usr_map(&normalize(p)));
    }
    let mut trees = stdlib.clone();
    if options.include_site_packages {
        trees.extend(
            install
                .site_packages
                .iter()
                .map(|p| host.usr_map(&normalize(p))),
        );
    }
    trees.extend(
        options
            .extra_paths
            .iter()
            .map(|p| normalize(&std::path::absolute(p).unwrap_or_else(|_| p.clone()))),
    );
    trees.sort();
    trees.dedup();
    // A tree inside another is covered by it.
    let outer: Vec<PathBuf> = trees
        .iter()
        .filter(|t| !trees.iter().any(|o| o != *t && t.starts_with(o)))
        .cloned()
        .collect();

    let mut trusted: BTreeMap<PathBuf, bool> = BTreeMap::new(); // host path → is a directory
    let mut skipped = Vec::new();
    let mut so_files = Vec::new();
    let mut link_targets = Vec::new();
    for t in &outer {
        if !t.is_dir() {
            continue;
        }
        let root = root_of(t, &prefixes);
        let mut exclude = options.exclude.clone();
        if stdlib.contains(t) {
            exclude.extend(options.stdlib_exclude.iter().cloned());
            if !options.include_site_packages {
                exclude.extend(["site-packages".to_owned(), "dist-packages".to_owned()]);
            }
        }
        let got = tree::trust(t, &root, &exclude)?;
        trusted.extend(got.entries);
        skipped.extend(got.skipped);
        link_targets.extend(got.link_targets);
        so_files.extend(got.files.into_iter().filter(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".so") || n.contains(".so."))
        }));
    }

    // The interpreter, and for a venv its pyvenv.cfg.
    let entry = host.usr_map(&normalize(&install.interpreter));
    let mut files: BTreeSet<PathBuf> = host.chain(&entry).into_iter().collect();
    files.extend(host.chain(&install.resolved));
    if install.is_venv() {
        let cfg = host.usr_map(&normalize(&install.prefix.join("pyvenv.cfg")));
        if cfg.is_file() {
            files.insert(cfg);
        }
    }

    // Shared libraries.
    let search = LibrarySearch::system();
    let Dependencies {
        libraries,
        unresolved,
        cache_dirs,
        ..
    } = elf::dependencies(&install.resolved, &so_files, &search)?;
    for lib in &libraries {
        files.extend(host.chain(lib));
    }
    for t in &link_targets {
        files.extend(host.chain(t));
    }

    // The locale LANG names (glibc reads it at Python's setlocale; without it Python falls back
    // to the C locale, with a warning).
    let locale = Path::new("/usr/lib/locale/C.utf8");
    if locale.is_dir() {
        let got = tree::trust(locale, Path::new("/usr"), &[])?;
        trusted.extend(got.entries);
        skipped.extend(got.skipped);
    }

    // Files not already under a trusted directory.
    let covered = |p: &Path, trusted: &BTreeMap<PathBuf, bool>| {
        trusted
            .iter()
            .any(|(t, dir)| p == t || (*dir && p.starts_with(t)))
    };
    for f in files {
        if !covered(&f, &trusted) && f.is_file() {
            trusted.insert(f, false);
        }
    }

    // Mounts: a root for every trusted path, roots inside others dropped.
    let mut roots: BTreeSet<PathBuf> = trusted.keys().map(|p| root_of(p, &prefixes)).collect();
    let all: Vec<PathBuf> = roots.iter().cloned().collect();
    roots.retain(|r| !all.iter().any(|o| o != r && r.starts_with(o)));

    let app = options.app_dir.clone();
    let mut mounts = Vec::new();
    for r in &roots {
        mounts.push(Mount {
            kind: MountType::Chroot,
            path: view_path(r)?,
            uri: Some(uri(r, false, None)?),
            key_name: None,
        });
    }
    mounts.push(Mount {
        kind: MountType::Chroot,
        path: app.clone(),
        uri: Some(uri(&script_dir, false, base.as_deref())?),
        key_name: None,
    });
    if options.tmpfs_tmp {
        mounts.push(Mount {
            kind: MountType::Tmpfs,
            path: WorkloadPath::try_from("/tmp".to_owned()).expect("a valid path"),
            uri: None,
            key_name: None,
        });
    }
    for e in &options.encrypted {
        mounts.push(Mount {
            kind: MountType::Encrypted,
            path: e.path.clone(),
            uri: Some(e.uri.clone()),
            key_name: e.key_name.clone(),
        });
    }

    // The script's directory.
    let app_tree = tree::trust(&script_dir, &script_dir, &options.exclude)?;
    skipped.extend(app_tree.skipped);
    let mut trusted_files = Vec::new();
    for (p, dir) in &trusted {
        trusted_files.push(TrustedFile::Uri(uri(p, *dir, base.as_deref())?));
    }
    for (p, dir) in &app_tree.entries {
        trusted_files.push(TrustedFile::Uri(uri(p, *dir, base.as_deref())?));
    }

    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(
            EnvName::try_from(k.to_owned()).expect("a valid name"),
            EnvValue::Value(v),
        );
    };
    set("PYTHONDONTWRITEBYTECODE", "1".into());
    set("LANG", "C.UTF-8".into());
    // The loader in the view has no /etc/ld.so.cache: directories only the cache led to are
    // given to it this way.
    if !cache_dirs.is_empty() {
        let dirs: Result<Vec<&str>, _> = cache_dirs.iter().map(|p| utf8(p)).collect();
        set("LD_LIBRARY_PATH", dirs?.join(":"));
    }
    if !options.extra_paths.is_empty() {
        let parts: Result<Vec<&str>, _> = options.extra_paths.iter().map(|p| utf8(p)).collect();
        set("PYTHONPATH", parts?.join(":"));
    }

    // argv[0] is the interpreter as given, absolute: Python derives sys.executable and a venv's
    // prefix (pyvenv.cfg beside it) from argv[0]; a bare "python3" with no PATH gives
    // sys.executable = "" and sys.prefix = "/".
    let name = utf8(&entry)?.to_owned();
    let script_view = format!(
        "{}/{}",
        app.as_str().trim_end_matches('/'),
        utf8(Path::new(script_name))?
    );
    let mut argv = vec![name, script_view];
    argv.extend(options.args.iter().cloned());

    let manifest = Manifest {
        loader: Loader {
            entrypoint: None,
            argv,
            insecure_host_args: false,
            env,
        },
        libos: Some(Libos {
            entrypoint: view_path(&host.usr_map(&install.resolved))?,
        }),
        network: None,
        fs: Fs {
            mounts,
            pinned: Vec::new(),
            start_dir: Some(options.start_dir.clone().unwrap_or(app)),
            ..Fs::default()
        },
        sgx: Sgx {
            trusted_files,
            ..Sgx::default()
        },
        provision: options.provision.clone(),
    };
    Ok(PythonManifest {
        manifest,
        skipped,
        unresolved,
        libraries,
    })
}
