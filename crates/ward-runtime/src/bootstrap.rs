//! Bootstrap: from a signed manifest on disk to a confined workload context.
//!
//! 1. read the signed manifest and verify its signature and measurement for *this* runtime;
//! 2. make a fresh TLS key and evidence binding it, with the chosen attester;
//! 3. fetch each owner's secrets from that owner's provisioning servers (mutual RA-TLS),
//!    checking them against that owner's CA chain pinned in the manifest;
//! 4. install secrets as named wrap keys (for encrypted mounts) or environment variables;
//! 5. build the VFS that enforces the manifest.
//!
//! Secrets live in zeroizing buffers and are wiped when the [`Context`] is dropped.

use crate::vfs::{Vfs, VfsError};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use ward_attest::attester::{Attester, AttesterKind, SimAttester};
use ward_attest::sim::{SimIdentity, SimPlatformKey};
use ward_manifest::tree::{TrustTree, TrustTrees, MAX_SIDECAR_BYTES};
use ward_manifest::{
    resolve, FileUri, Manifest, MountType, Sha256, SignedManifest, TrustedFile, VerifiedManifest,
};
use ward_pf::WrapKey;
use zeroize::Zeroizing;

/// Why a workload could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The signed manifest is missing, malformed, unsigned, tampered or for another runtime.
    #[error("manifest: {0}")]
    Manifest(ward_manifest::Error),
    /// The runtime could not read its own binary to measure itself.
    #[error("measuring the ward runtime ({}): {source}", path.display())]
    SelfMeasure {
        /// The executable.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The provisioning CA chain on disk is not the one the manifest pins.
    #[error(
        "provisioning CA chain {uri} ({}) has SHA-256 {found}, but the signed manifest pins \
         {expected}: the host may be trying to impersonate the provisioning server; restore the \
         file or re-sign the manifest",
        path.display()
    )]
    CaChainChanged {
        /// URI in the manifest.
        uri: String,
        /// Where it resolved.
        path: PathBuf,
        /// Pinned hash.
        expected: String,
        /// Hash on disk.
        found: String,
    },
    /// Reading a file the bootstrap needs failed.
    #[error("{context}")]
    Io {
        /// What, naming the file.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Producing evidence failed (no TEE, bad sim key…).
    #[error("attestation: producing the workload's evidence failed")]
    Attest(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// One owner's provisioning servers refused or could not be reached; the error names the
    /// server and its reason.
    #[error("secret provisioning from {servers} (CA {ca_chain}): {error}")]
    Provision {
        /// That owner's servers, as the manifest lists them.
        servers: String,
        /// That owner's CA chain, as the manifest names it.
        ca_chain: String,
        /// What the client said (which server refused and why, or each server's failure);
        /// boxed to keep every `Result<_, BootError>` small.
        error: Box<ward_provision::Error>,
    },
    /// A provisioned secret cannot be installed where the manifest says.
    #[error("secret {name:?}: {problem}")]
    Secret {
        /// The secret's name.
        name: String,
        /// What is wrong (never the value).
        problem: String,
    },
    /// The host passed arguments that the manifest does not allow.
    #[error(
        "the manifest does not allow arguments from the host ({0} given); put them in \
         loader.argv and re-sign, or set loader.insecure_host_args = true"
    )]
    HostArgs(usize),
    /// A passthrough environment variable is not valid UTF-8 on the host.
    #[error("host environment variable {0} is not valid UTF-8")]
    HostEnv(String),
    /// The sidecar of trusted trees is missing, unreadable or not the one the manifest signed.
    #[error("trusted trees")]
    Trees(#[source] ward_manifest::tree::TreeError),
    /// The VFS could not be built from the manifest.
    #[error("file system: {0}")]
    Vfs(VfsError),
    /// A development key file (`fs.insecure__key_files`) could not be read or is not 16 bytes.
    #[error("development key {key_name:?} ({uri})")]
    DevKey {
        /// The key name.
        key_name: String,
        /// The key file's URI, as written.
        uri: String,
        /// Why (never the key's bytes).
        #[source]
        source: ward_pf::Error,
    },
}

// Written out (not `#[from]`) so the inner error is shown once, in the message, rather than
// again as the `source()` that error reporters append.
impl From<ward_manifest::Error> for BootError {
    fn from(e: ward_manifest::Error) -> Self {
        BootError::Manifest(e)
    }
}
impl From<VfsError> for BootError {
    fn from(e: VfsError) -> Self {
        BootError::Vfs(e)
    }
}

/// The attester of `kind` for this workload; the simulated one claims the manifest's identity,
/// signed with `sim_key`.
fn build_attester(
    kind: AttesterKind,
    sim_key: Option<SimPlatformKey>,
    m: &VerifiedManifest,
) -> Result<Box<dyn Attester>, BootError> {
    let sim = sim_key.map(|key| {
        SimAttester::new(
            key,
            SimIdentity {
                mr_enclave: m.measurement.0,
                mr_signer: m.mr_signer.0,
                isv_prod_id: m.manifest.sgx.isv_prod_id,
                isv_svn: m.manifest.sgx.isv_svn,
                debug: m.manifest.is_debug(),
            },
        )
    });
    kind.attester(sim)
        .map_err(|e| BootError::Attest(Box::new(e)))
}

/// How long each bootstrap step took (for narration and benchmarks).
#[derive(Debug, Clone, Default)]
pub struct BootTimings {
    /// Hashing the runtime binary.
    pub self_measure: Duration,
    /// Reading and verifying the signed manifest.
    pub manifest: Duration,
    /// Key generation and evidence.
    pub attest: Duration,
    /// Fetching secrets.
    pub provision: Duration,
    /// Building the VFS.
    pub vfs: Duration,
}

/// What a workload gets: its arguments, environment and file system, nothing else.
pub struct Context {
    /// The verified manifest.
    pub manifest: VerifiedManifest,
    /// Arguments (the manifest's, plus the host's when allowed).
    pub argv: Vec<String>,
    /// Environment (fixed values, passthroughs, provisioned secrets). Zeroized on drop.
    pub env: BTreeMap<String, Zeroizing<String>>,
    /// The only way to files.
    pub vfs: Vfs,
    /// Bootstrap timings.
    pub timings: BootTimings,
    /// Which attester the workload was booted with.
    pub attester_kind: AttesterKind,
    /// That attester, claiming this workload's identity (the one whose evidence the
    /// provisioning servers saw); `None` when it could not be made (the simulated TEE without
    /// its platform key) and boot did not need it.
    pub attester: Option<std::sync::Arc<dyn Attester>>,
    /// The RA-TLS identity whose evidence the provisioning servers accepted (`None` when no
    /// server was contacted): the key that signs the run's receipt.
    pub identity: Option<std::sync::Arc<ward_ratls::RaTlsIdentity>>,
    /// The run ids the provisioning servers issued for this run, one per owner contacted.
    pub runs: Vec<ward_receipt::Run>,
}

impl Context {
    /// An environment variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(|v| v.as_str())
    }
}

/// Options for [`boot`].
pub struct BootOptions {
    /// The runtime's own hash (see [`runtime_digest`]); tests pass a fixed one.
    pub runtime_digest: Sha256,
    /// Evidence source.
    pub attester: AttesterKind,
    /// The simulated platform's key, for [`AttesterKind::Sim`] (ignored otherwise).
    pub sim_key: Option<SimPlatformKey>,
    /// Arguments from the host command line.
    pub host_args: Vec<String>,
}

/// The digest of the running executable: the runtime part of the measurement (see
/// [`file_digest`]).
///
/// Computed once per process (the code running cannot change underneath it, even if the file on
/// disk is replaced later).
pub fn runtime_digest() -> Result<Sha256, BootError> {
    static CACHE: std::sync::OnceLock<Sha256> = std::sync::OnceLock::new();
    if let Some(h) = CACHE.get() {
        return Ok(*h);
    }
    // /proc/self/exe opens the very file this process runs, even if the path it was started
    // from has since been replaced; `current_exe` is only a path name and could be raced.
    let proc_exe = Path::new("/proc/self/exe");
    let h = match std::fs::File::open(proc_exe) {
        Ok(file) => digest_open_file(&file, proc_exe)?,
        Err(_) => {
            let exe = std::env::current_exe().map_err(|source| BootError::SelfMeasure {
                path: proc_exe.to_owned(),
                source,
            })?;
            file_digest(&exe)?
        }
    };
    Ok(*CACHE.get_or_init(|| h))
}

/// Chunk size of [`file_digest`].
pub const DIGEST_CHUNK: u64 = 4 << 20;

/// The digest of a ward binary (what `ward sign --runtime` measures): SHA-256 over
/// `"ward runtime digest v1\0"`, the file length (u64 LE) and the SHA-256 of each 4 MiB chunk.
///
/// A tree of SHA-256 rather than one plain SHA-256 so the chunks hash on all cores: every run
/// measures its own binary before it may attest, and a plain hash of the ~38 MB binary costs
/// ~19 ms on one core.
pub fn file_digest(path: &Path) -> Result<Sha256, BootError> {
    let file = std::fs::File::open(path).map_err(|source| BootError::SelfMeasure {
        path: path.to_owned(),
        source,
    })?;
    digest_open_file(&file, path)
}

fn digest_open_file(file: &std::fs::File, path: &Path) -> Result<Sha256, BootError> {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    // Each worker streams its chunks through one small reused buffer that stays in cache: a
    // fresh 4 MiB buffer per chunk cost more in page faults and memory traffic than the hashing
    // saved (~12-20 ms against ~10 ms for a 38 MB binary on 2 cores). Scoped threads, not a
    // pool: they are gone when this returns, so a caller that measures before forking a
    // sandbox (which needs a single-threaded process) may.
    const STEP: usize = 256 << 10;
    let err = |source| BootError::SelfMeasure {
        path: path.to_owned(),
        source,
    };
    let len = file.metadata().map_err(err)?.len();
    let chunks = len.div_ceil(DIGEST_CHUNK);
    let next = AtomicU64::new(0);
    let hash_chunks = || -> std::io::Result<Vec<(u64, [u8; 32])>> {
        let mut buf = vec![0u8; STEP];
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= chunks {
                return Ok(out);
            }
            let start = i * DIGEST_CHUNK;
            let end = (start + DIGEST_CHUNK).min(len);
            let mut h = sha2::Sha256::new();
            let mut at = start;
            while at < end {
                let n = (end - at).min(STEP as u64) as usize;
                file.read_exact_at(&mut buf[..n], at)?;
                h.update(&buf[..n]);
                at += n as u64;
            }
            out.push((i, h.finalize().into()));
        }
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(chunks.max(1) as usize);
    let mut hashes: Vec<(u64, [u8; 32])> = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..workers).map(|_| s.spawn(hash_chunks)).collect();
        let mut all = hash_chunks()?;
        for h in helpers {
            all.extend(
                h.join()
                    .map_err(|_| std::io::Error::other("a hashing thread panicked"))??,
            );
        }
        Ok::<_, std::io::Error>(all)
    })
    .map_err(err)?;
    hashes.sort_unstable_by_key(|(i, _)| *i);
    let mut h = sha2::Sha256::new();
    h.update(b"ward runtime digest v1\0");
    h.update(len.to_le_bytes());
    for (_, c) in &hashes {
        h.update(c);
    }
    Ok(Sha256(h.finalize().into()))
}

/// Verifies the signed manifest at `path`, attests, fetches secrets and builds the VFS.
pub fn boot(path: &Path, mut options: BootOptions) -> Result<Context, BootError> {
    let mut timings = BootTimings::default();
    let t = Instant::now();
    let signed = SignedManifest::load(path)?;
    let verified = signed.verify(&options.runtime_digest)?;
    timings.manifest = t.elapsed();
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let m = &verified.manifest;

    let argv = {
        let mut argv = m.loader.argv.clone();
        if !options.host_args.is_empty() {
            if !m.loader.insecure_host_args {
                return Err(BootError::HostArgs(options.host_args.len()));
            }
            argv.extend(options.host_args.iter().cloned());
        }
        argv
    };

    let mut env = BTreeMap::new();
    for (name, value) in &m.loader.env {
        let v = match value.fixed() {
            Some(v) => v.to_owned(),
            None => match std::env::var(name.as_str()) {
                Ok(v) => v,
                Err(std::env::VarError::NotPresent) => continue,
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(BootError::HostEnv(name.to_string()))
                }
            },
        };
        env.insert(name.to_string(), Zeroizing::new(v));
    }

    // Before any key is fetched: a broken sidecar fails the boot without contacting a server.
    let t = Instant::now();
    let trees = load_trees(&base_dir, m)?;
    timings.vfs = t.elapsed();

    let mut keys = dev_keys(&base_dir, m)?;
    let mut identity = None;
    let mut runs = Vec::new();
    // Made once: the evidence for the provisioning servers and any the workload asks for later
    // (a program's /dev/attestation) name the workload the same way.
    let attester = match build_attester(options.attester, options.sim_key.take(), &verified) {
        Ok(a) => Some(std::sync::Arc::<dyn Attester>::from(a)),
        Err(_) if m.provision.is_none() => None,
        Err(e) => return Err(e),
    };
    if let (Some(pr), Some(attester)) = (&m.provision, &attester) {
        // Each owner (her servers and CA) releases her own secrets; every CA is read and
        // checked against its pin before a key is made or any server contacted.
        let owners = pr.owners();
        if let Some(orphan) = pr
            .secrets
            .iter()
            .enumerate()
            .find(|(i, _)| !owners.iter().any(|o| o.secrets.contains(i)))
        {
            // Refused by validation already; kept so no secret is ever skipped silently.
            return Err(BootError::Secret {
                name: orphan.1.name.clone(),
                problem: "no provisioning server is named for it".into(),
            });
        }
        let ca_pems = owners
            .iter()
            .map(|o| read_pinned(&base_dir, o.ca_chain))
            .collect::<Result<Vec<_>, _>>()?;
        let t = Instant::now();
        // One identity for every owner: each sees evidence naming the same workload.
        let tls_identity = ward_ratls::RaTlsIdentity::generate_for_workload(
            attester.as_ref(),
            &verified.workload(),
        )
        .map_err(|e| BootError::Attest(Box::new(e)))?;
        timings.attest = t.elapsed();
        let t = Instant::now();
        for (owner, ca_pem) in owners.iter().zip(&ca_pems) {
            let names: Vec<&str> = owner
                .secrets
                .iter()
                .map(|&i| pr.secrets[i].name.as_str())
                .collect();
            let mut secrets =
                ward_provision::client::fetch(owner.servers, ca_pem, &tls_identity, &names)
                    .map_err(|error| BootError::Provision {
                        servers: owner.servers.join(", "),
                        ca_chain: owner.ca_chain.uri().to_string(),
                        error: Box::new(error),
                    })?;
            if let (Some(server), Some(run_id)) = (secrets.server(), secrets.run_id()) {
                runs.push(ward_receipt::Run {
                    server: server.to_owned(),
                    run_id: run_id.to_owned(),
                });
            }
            for binding in owner.secrets.iter().map(|&i| &pr.secrets[i]) {
                install(binding, &mut secrets, &mut keys, &mut env)?;
            }
        }
        timings.provision = t.elapsed();
        identity = Some(std::sync::Arc::new(tls_identity));
    }

    let t = Instant::now();
    let vfs = build_vfs(&base_dir, m, keys, trees)?;
    timings.vfs += t.elapsed();
    Ok(Context {
        manifest: verified,
        argv,
        env,
        vfs,
        timings,
        attester_kind: options.attester,
        attester,
        identity,
        runs,
    })
}

/// What [`boot`] prints on stderr whenever a manifest gives development keys.
pub const DEV_KEYS_NOTICE: &str = "NOTICE: INSECURE DEVELOPMENT KEYS — this manifest gives its \
    wrap keys itself (fs.insecure__keys / fs.insecure__key_files): no attestation happened and no \
    provisioning server released them, the keys come from the manifest or a file the host can \
    read, and the workload's inputs and outputs are NOT protected from the host. Use \
    [provision] for anything that matters.";

/// The manifest's development keys, after the loud notice. Printed with `eprintln!`, not
/// through `tracing`, so no log level or quiet flag can hide it.
fn dev_keys(base_dir: &Path, m: &Manifest) -> Result<Vec<(String, WrapKey)>, BootError> {
    if !m.has_dev_keys() {
        return Ok(Vec::new());
    }
    eprintln!("{DEV_KEYS_NOTICE}");
    let mut keys: Vec<(String, WrapKey)> =
        m.fs.insecure_keys
            .iter()
            .map(|(name, key)| (name.clone(), WrapKey::from_bytes(*key.expose_bytes())))
            .collect();
    for (name, uri) in &m.fs.insecure_key_files {
        // Bounded, exactly 16 bytes, read into memory that is wiped (ward-pf's key file).
        let key = WrapKey::load(&resolve(base_dir, uri)).map_err(|source| BootError::DevKey {
            key_name: name.clone(),
            uri: uri.to_string(),
            source,
        })?;
        keys.push((name.clone(), key));
    }
    Ok(keys)
}

/// Installs the fetched secret of `binding` as its wrap key or environment variable.
fn install(
    binding: &ward_manifest::SecretBinding,
    secrets: &mut ward_provision::Secrets,
    keys: &mut Vec<(String, WrapKey)>,
    env: &mut BTreeMap<String, Zeroizing<String>>,
) -> Result<(), BootError> {
    let value = secrets
        .take(&binding.name)
        .ok_or_else(|| BootError::Secret {
            name: binding.name.clone(),
            problem: "the server did not return it".into(),
        })?;
    if let Some(key_name) = &binding.key_name {
        let key = WrapKey::from_slice(&value).map_err(|_| BootError::Secret {
            name: binding.name.clone(),
            problem: format!(
                "it is {} bytes, but key {key_name:?} is a 16-byte wrap key (serve it with \
                 kind = \"key\")",
                value.len()
            ),
        })?;
        keys.push((key_name.clone(), key));
    } else if let Some(var) = &binding.env {
        // Gramine's string secrets carry a trailing NUL.
        let bytes = value.strip_suffix(&[0]).unwrap_or(&value);
        let text = std::str::from_utf8(bytes).map_err(|_| BootError::Secret {
            name: binding.name.clone(),
            problem: format!("variable {var} needs UTF-8 text"),
        })?;
        env.insert(var.to_string(), Zeroizing::new(text.to_owned()));
    }
    Ok(())
}

/// The largest provisioning CA chain read.
const MAX_CA_CHAIN: u64 = 1 << 20;

fn read_pinned(base_dir: &Path, file: &TrustedFile) -> Result<Vec<u8>, BootError> {
    let uri = file.uri();
    let path = resolve(base_dir, uri);
    // Bounded: the file is on the untrusted host's disk, and a CA chain is a few KiB.
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| {
            use std::io::Read;
            f.take(MAX_CA_CHAIN + 1).read_to_end(&mut bytes)
        })
        .map_err(|source| BootError::Io {
            context: format!("reading provisioning CA chain {uri} ({})", path.display()),
            source,
        })?;
    if bytes.len() as u64 > MAX_CA_CHAIN {
        return Err(BootError::Io {
            context: format!(
                "provisioning CA chain {uri} ({}) is larger than {} KiB: not a CA chain",
                path.display(),
                MAX_CA_CHAIN >> 10
            ),
            source: std::io::ErrorKind::InvalidData.into(),
        });
    }
    if let TrustedFile::Hashed(h) = file {
        let found: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        if found != h.sha256.0 {
            return Err(BootError::CaChainChanged {
                uri: uri.to_string(),
                path,
                expected: h.sha256.to_string(),
                found: hex::encode(found),
            });
        }
    }
    Ok(bytes)
}

/// The bound-path prefix of an encrypted mount: its URI path as written, without a trailing `/`
/// (what `ward pf encrypt -o` and Gramine bind, relative to the manifest's directory).
fn bound_prefix(uri: &FileUri) -> &str {
    let p = uri.path().trim_end_matches('/');
    if p.is_empty() {
        "/"
    } else {
        p
    }
}

/// The trusted trees the manifest pins, read from its sidecar and checked against their
/// digests: (host directory, tree).
fn load_trees(base_dir: &Path, m: &Manifest) -> Result<Vec<(PathBuf, TrustTree)>, BootError> {
    let wanted: Vec<(FileUri, Sha256)> = m
        .sgx
        .trusted_files
        .iter()
        .filter_map(|t| match t {
            TrustedFile::Tree(r) => Some((r.uri.clone(), r.tree)),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let Some(uri) = &m.sgx.trusted_trees else {
        // Refused by signature verification already; kept as a clear error regardless.
        return Err(BootError::Io {
            context: "the manifest pins trusted trees but names no sidecar (sgx.trusted_trees)"
                .into(),
            source: std::io::ErrorKind::NotFound.into(),
        });
    };
    let path = resolve(base_dir, uri);
    let shown = format!("{uri} ({})", path.display());
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| {
            use std::io::Read;
            f.take(MAX_SIDECAR_BYTES + 1).read_to_end(&mut bytes)
        })
        .map_err(|source| BootError::Io {
            context: format!(
                "reading the trusted trees {shown}, which `ward sign` wrote beside the signed \
                 manifest"
            ),
            source,
        })?;
    if bytes.len() as u64 > MAX_SIDECAR_BYTES {
        return Err(BootError::Io {
            context: format!(
                "the trusted trees {shown} are larger than {} MiB",
                MAX_SIDECAR_BYTES >> 20
            ),
            source: std::io::ErrorKind::InvalidData.into(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| BootError::Io {
        context: format!("the trusted trees {shown} are not text"),
        source: std::io::ErrorKind::InvalidData.into(),
    })?;
    let trees = TrustTrees::parse_signed(&text, &shown, &wanted).map_err(BootError::Trees)?;
    Ok(trees
        .into_iter()
        .map(|t| {
            let dir = resolve(base_dir, t.uri());
            (dir, t)
        })
        .collect())
}

fn build_vfs(
    base_dir: &Path,
    m: &Manifest,
    keys: Vec<(String, WrapKey)>,
    trees: Vec<(PathBuf, TrustTree)>,
) -> Result<Vfs, BootError> {
    let mut b = Vfs::builder().manifest_dir(base_dir);
    if let Some(limit) = m.fs.whole_read_limit {
        b = b.whole_read_limit(limit.0);
    }
    for (dir, tree) in trees {
        b = b.trusted_tree(dir, std::sync::Arc::new(tree));
    }
    for mount in &m.fs.mounts {
        let path = mount.path.as_str();
        b = match (mount.kind, &mount.uri) {
            (MountType::Chroot, Some(uri)) => b.chroot(path, resolve(base_dir, uri)),
            (MountType::Encrypted, Some(uri)) => b.encrypted(
                path,
                resolve(base_dir, uri),
                bound_prefix(uri),
                mount.key_name(),
            ),
            (MountType::Tmpfs, _) => b.tmpfs(path),
            // Validation guarantees chroot and encrypted mounts have a uri.
            (_, None) => b,
        };
    }
    for t in &m.sgx.trusted_files {
        if let TrustedFile::Hashed(h) = t {
            let host = resolve(base_dir, &h.uri);
            if let (Some(mode), Some(mtime)) = (h.mode, h.mtime) {
                b = b.trusted_metadata(&host, mode.0, mtime.system_time());
            }
            b = b.trusted(host, h.sha256.0);
        }
    }
    for a in &m.sgx.allowed_files {
        b = b.allowed(resolve(base_dir, a));
    }
    for p in &m.fs.pinned {
        b = b.pin(p.path.as_str(), p.sha256.0);
    }
    for (name, key) in keys {
        b = b.key(&name, key);
    }
    Ok(b.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    /// The digest is exactly the documented tree, whatever the read step: lengths around the
    /// chunk and step boundaries, and the empty file.
    #[test]
    fn file_digest_is_the_documented_tree() {
        let chunk = DIGEST_CHUNK as usize;
        for len in [
            0,
            1,
            256 << 10,
            chunk - 1,
            chunk,
            chunk + 1,
            2 * chunk + 12345,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4093) as u8).collect();
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), &data).unwrap();

            let mut want = sha2::Sha256::new();
            want.update(b"ward runtime digest v1\0");
            want.update((len as u64).to_le_bytes());
            for c in data.chunks(chunk) {
                want.update(sha2::Sha256::digest(c));
            }
            let got = file_digest(file.path()).unwrap();
            assert_eq!(got.0, <[u8; 32]>::from(want.finalize()), "length {len}");
        }
    }

    #[test]
    fn runtime_digest_measures_the_running_binary() {
        let exe = std::env::current_exe().unwrap();
        assert_eq!(runtime_digest().unwrap().0, file_digest(&exe).unwrap().0);
    }
}
