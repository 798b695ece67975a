//! The Gramine manifest that runs `ward run` itself inside an SGX enclave (docs/DEPLOY.md,
//! recipe 1), generated from a signed ward manifest so nothing is listed by hand.
//!
//! Gramine's MRENCLAVE then covers ward's binary, its fixed `loader.argv` (no host arguments),
//! and the signed ward manifest with everything it pins, as Gramine trusted files: a host that
//! edits or replaces any of them changes MRENCLAVE or fails Gramine's hash check. What ward
//! reads as ciphertext (its encrypted mounts) and what it may write (outputs, a receipt) are
//! Gramine allowed files: ward authenticates them itself. Every host path is mounted at the same
//! path inside, so the ward manifest's relative `file:` URIs resolve as they did at signing.
//!
//! The output is a template for `gramine-manifest` (it keeps `{{ gramine.libos }}` and
//! `{{ gramine.runtimedir() }}`); this module does not run Gramine or sign the enclave.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use ward_manifest::{resolve, MountType, SignedManifest, Workload};

/// Why no Gramine manifest can be made for a ward manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GramineError {
    /// The ward manifest runs a program, which ward can only confine with Linux namespaces,
    /// FUSE, Landlock and seccomp that Gramine does not provide.
    #[error(
        "the manifest runs the program {0}: ward confines programs with user namespaces, FUSE, \
         Landlock and seccomp, which Gramine does not provide; inside Gramine only built-in \
         workloads (`ward run --list`) run. Run the program under Gramine itself, or ward in a \
         confidential VM (docs/DEPLOY.md, recipe 2)"
    )]
    Program(String),
    /// The ward manifest carries development keys, which the host can read.
    #[error(
        "the manifest gives development keys (fs.insecure__keys / fs.insecure__key_files), which \
         the host can read: an enclave would protect nothing. Use [provision] secrets"
    )]
    DevKeys,
    /// A path that must be absolute is not.
    #[error("{what} {} is not an absolute path", path.display())]
    NotAbsolute {
        /// What the path is.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// A path cannot be written in a Gramine manifest (it is not UTF-8, or holds a quote,
    /// a backslash or a control character that would need escaping in Gramine's TOML).
    #[error("{} cannot be written in a Gramine manifest (not plain UTF-8)", .0.display())]
    Unwritable(PathBuf),
}

/// What the generated manifest runs and how big the enclave is.
#[derive(Debug, Clone)]
pub struct GramineDeployment {
    /// The signed ward manifest, absolute (the same path inside the enclave).
    pub signed_manifest: PathBuf,
    /// The ward binary, absolute.
    pub ward_binary: PathBuf,
    /// Where ward writes its run receipt (`ward run --receipt`), absolute; allowed for writing.
    pub receipt: Option<PathBuf>,
    /// The host's library directory ward's dependencies (libgcc_s) come from.
    pub arch_libdir: PathBuf,
    /// `sgx.enclave_size` (Gramine's size syntax, e.g. "4G").
    pub enclave_size: String,
    /// `sgx.max_threads`.
    pub max_threads: u32,
}

impl GramineDeployment {
    /// A deployment with Debian/Ubuntu's x86-64 library directory, a 4 GiB enclave and 32
    /// threads.
    pub fn new(signed_manifest: PathBuf, ward_binary: PathBuf) -> GramineDeployment {
        GramineDeployment {
            signed_manifest,
            ward_binary,
            receipt: None,
            arch_libdir: PathBuf::from("/lib/x86_64-linux-gnu"),
            enclave_size: "4G".into(),
            max_threads: 32,
        }
    }
}

/// The host paths the enclave needs, sorted, as Gramine lists them.
#[derive(Debug, Default)]
struct Paths {
    trusted: BTreeSet<String>,
    allowed: BTreeSet<String>,
    mounts: BTreeSet<PathBuf>,
}

/// `path` as a Gramine URI path, a directory with a trailing `/`.
fn uri_path(path: &Path, dir: bool) -> Result<String, GramineError> {
    let s = path
        .to_str()
        .filter(|s| !s.chars().any(|c| c == '"' || c == '\\' || c.is_control()))
        .ok_or_else(|| GramineError::Unwritable(path.to_owned()))?;
    Ok(if dir && !s.ends_with('/') {
        format!("{s}/")
    } else {
        s.to_owned()
    })
}

fn absolute(what: &'static str, path: &Path) -> Result<(), GramineError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(GramineError::NotAbsolute {
            what,
            path: path.to_owned(),
        })
    }
}

impl Paths {
    fn trust(&mut self, path: &Path) -> Result<(), GramineError> {
        let dir = path.is_dir();
        self.trusted.insert(uri_path(path, dir)?);
        self.mounts.insert(path.to_owned());
        Ok(())
    }

    fn allow(&mut self, path: &Path, dir: bool) -> Result<(), GramineError> {
        self.allowed.insert(uri_path(path, dir)?);
        self.mounts.insert(path.to_owned());
        Ok(())
    }

    /// The mounts without those inside another (a mounted directory already shows them).
    fn top_mounts(&self) -> Vec<&PathBuf> {
        let mut out: Vec<&PathBuf> = Vec::new();
        for m in &self.mounts {
            if !out.iter().any(|o| m.starts_with(o)) {
                out.push(m);
            }
        }
        out
    }
}

fn toml_list(out: &mut String, key: &str, items: &[String]) {
    let _ = writeln!(out, "{key} = [");
    for i in items {
        let _ = writeln!(out, "  \"{i}\",");
    }
    let _ = writeln!(out, "]");
}

/// The Gramine manifest template for running `signed` (read from `d.signed_manifest`) with ward
/// inside an SGX enclave. See the module doc.
pub fn gramine_manifest(
    signed: &SignedManifest,
    d: &GramineDeployment,
) -> Result<String, GramineError> {
    let m = &signed.manifest;
    if let Some(Workload::Program(p)) = m.workload() {
        return Err(GramineError::Program(p.to_string()));
    }
    if m.has_dev_keys() {
        return Err(GramineError::DevKeys);
    }
    absolute("the signed manifest", &d.signed_manifest)?;
    absolute("the ward binary", &d.ward_binary)?;
    absolute("the library directory", &d.arch_libdir)?;
    if let Some(r) = &d.receipt {
        absolute("the receipt", r)?;
    }
    let base = d
        .signed_manifest
        .parent()
        .unwrap_or(Path::new("/"))
        .to_owned();

    let mut p = Paths::default();
    // The signed manifest's directory, where its relative URIs point.
    uri_path(&base, true)?;
    p.mounts.insert(base.clone());
    p.trust(&d.signed_manifest)?;
    let trees = ward_manifest::trees_name(&d.signed_manifest);
    if m.sgx.trusted_trees.is_some() || trees.exists() {
        p.trust(&trees)?;
    }
    for t in &m.sgx.trusted_files {
        p.trust(&resolve(&base, t.uri()))?;
    }
    if let Some(prov) = &m.provision {
        let cas = prov
            .ca_chain
            .iter()
            .chain(prov.secrets.iter().filter_map(|s| s.ca_chain.as_ref()));
        for ca in cas {
            p.trust(&resolve(&base, ca.uri()))?;
        }
    }
    for a in &m.sgx.allowed_files {
        let path = resolve(&base, a);
        let dir = a.path().ends_with('/') || path.is_dir();
        p.allow(&path, dir)?;
    }
    for mount in &m.fs.mounts {
        let Some(uri) = &mount.uri else { continue };
        let path = resolve(&base, uri);
        match mount.kind {
            // Ciphertext ward authenticates itself, read and written (outputs, their temporary
            // files) in place.
            MountType::Encrypted => {
                let dir = path.is_dir() || !path.exists();
                p.allow(&path, dir)?;
            }
            // Only ward's trusted and allowed files under it are reachable; mount it so their
            // paths resolve.
            MountType::Chroot => {
                uri_path(&path, true)?;
                p.mounts.insert(path);
            }
            MountType::Tmpfs => {}
        }
    }
    if let Some(r) = &d.receipt {
        p.allow(r, false)?;
        // The receipt is written through a temporary file beside it.
        if let Some(dir) = r.parent() {
            p.allow(dir, true)?;
        }
    }
    let ward = uri_path(&d.ward_binary, false)?;
    let libdir = uri_path(&d.arch_libdir, false)?;
    let signed_path = uri_path(&d.signed_manifest, false)?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Gramine manifest template generated by `ward manifest gramine` for\n\
         # {signed_path} ({} {}).\n\
         # Render and sign it:\n\
         #   gramine-manifest ward.manifest.template ward.manifest\n\
         #   gramine-sgx-sign --manifest ward.manifest --output ward.manifest.sgx\n\
         # then put the MRENCLAVE/MRSIGNER `gramine-sgx-sigstruct-view ward.sig` prints next to\n\
         # the workload_* fields `ward sign` printed in the data owner's policy.\n",
        m.workload_name(),
        signed.signature.measurement
    );
    let _ = writeln!(out, "libos.entrypoint = \"{ward}\"");
    let _ = writeln!(
        out,
        "loader.entrypoint.uri = \"file:{{{{ gramine.libos }}}}\""
    );
    let mut argv = vec![
        "ward".to_owned(),
        "run".to_owned(),
        "--attester".to_owned(),
        "gramine".to_owned(),
    ];
    if let Some(r) = &d.receipt {
        argv.push("--receipt".into());
        argv.push(uri_path(r, false)?);
    }
    argv.push(signed_path.clone());
    let _ = writeln!(
        out,
        "# Fixed: no loader.insecure__use_cmdline_argv, so the host cannot point ward elsewhere."
    );
    let _ = writeln!(
        out,
        "loader.argv = [{}]",
        argv.iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(out, "loader.env.LD_LIBRARY_PATH = \"/lib:{libdir}\"");
    let _ = writeln!(
        out,
        "# Provisioning servers named by host name resolve inside."
    );
    let _ = writeln!(out, "sys.enable_extra_runtime_domain_names_conf = true");
    let _ = writeln!(out);
    let _ = writeln!(out, "fs.mounts = [");
    let _ = writeln!(
        out,
        "  {{ path = \"/lib\", uri = \"file:{{{{ gramine.runtimedir() }}}}\" }},"
    );
    let _ = writeln!(out, "  {{ path = \"{libdir}\", uri = \"file:{libdir}\" }},");
    let _ = writeln!(out, "  {{ path = \"{ward}\", uri = \"file:{ward}\" }},");
    for mount in p.top_mounts() {
        let s = uri_path(mount, false)?;
        if s != ward && !Path::new(&s).starts_with(&d.arch_libdir) {
            let _ = writeln!(out, "  {{ path = \"{s}\", uri = \"file:{s}\" }},");
        }
    }
    let _ = writeln!(out, "]");
    let _ = writeln!(out);
    // A debug ward manifest gets a debug enclave (policies refuse both unless allow_debug).
    let _ = writeln!(out, "sgx.debug = {}", m.sgx.debug);
    let _ = writeln!(out, "sgx.remote_attestation = \"dcap\"");
    let _ = writeln!(out, "sgx.enclave_size = \"{}\"", d.enclave_size);
    let _ = writeln!(out, "sgx.max_threads = {}", d.max_threads);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "# ward, its libraries, and the signed ward manifest with everything it pins."
    );
    let mut trusted = vec![
        "file:{{ gramine.libos }}".to_owned(),
        "file:{{ gramine.runtimedir() }}/".to_owned(),
        format!("file:{libdir}/"),
        format!("file:{ward}"),
    ];
    trusted.extend(p.trusted.iter().map(|t| format!("file:{t}")));
    toml_list(&mut out, "sgx.trusted_files", &trusted);
    let _ = writeln!(
        out,
        "# Ciphertext ward decrypts and authenticates itself, and what it writes (through a \
         temporary file and rename)."
    );
    let allowed: Vec<String> = p.allowed.iter().map(|a| format!("file:{a}")).collect();
    toml_list(&mut out, "sgx.allowed_files", &allowed);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_manifest::{Manifest, Sha256, SignerKey};

    fn signed(text: &str) -> SignedManifest {
        let m = Manifest::from_toml(text).unwrap();
        SignerKey::generate().sign(m, Sha256([7; 32])).unwrap()
    }

    const BUILTIN: &str = r#"
[loader]
entrypoint = "ward:checksum"
argv = ["--output", "/out/d.txt", "/data/in.txt", "/app/labels.txt"]

[[fs.mounts]]
type = "encrypted"
path = "/data"
uri = "file:enc"

[[fs.mounts]]
type = "encrypted"
path = "/out"
uri = "file:/var/results"

[[fs.mounts]]
path = "/app"
uri = "file:app"

[sgx]
trusted_files = [{ uri = "file:app/labels.txt", sha256 = "0000000000000000000000000000000000000000000000000000000000000000" }]
allowed_files = ["file:logs/"]

[provision]
servers = ["localhost:4433"]
ca_chain = { uri = "file:/etc/ward/ca.pem", sha256 = "0000000000000000000000000000000000000000000000000000000000000000" }
secrets = [{ name = "k", key_name = "default" }]
"#;

    fn deployment() -> GramineDeployment {
        GramineDeployment::new(
            PathBuf::from("/srv/ward/app.signed.toml"),
            PathBuf::from("/usr/local/bin/ward"),
        )
    }

    #[test]
    fn pins_ward_its_arguments_and_what_the_ward_manifest_trusts() {
        let mut d = deployment();
        d.receipt = Some(PathBuf::from("/var/results/receipt.json"));
        let text = gramine_manifest(&signed(BUILTIN), &d).unwrap();
        // Gramine's template placeholders sit inside strings: the template is TOML already.
        let t: toml::Table = toml::from_str(&text).unwrap();
        let list = |k: &str| -> Vec<String> {
            t["sgx"][k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        let trusted = list("trusted_files");
        for want in [
            "file:/usr/local/bin/ward",
            "file:/srv/ward/app.signed.toml",
            "file:/srv/ward/app/labels.txt",
            "file:/etc/ward/ca.pem",
            "file:{{ gramine.libos }}",
        ] {
            assert!(trusted.iter().any(|x| x == want), "{want} in {trusted:?}");
        }
        let allowed = list("allowed_files");
        for want in [
            "file:/srv/ward/enc/",
            "file:/var/results/",
            "file:/srv/ward/logs/",
            "file:/var/results/receipt.json",
        ] {
            assert!(allowed.iter().any(|x| x == want), "{want} in {allowed:?}");
        }
        // Ciphertext and outputs are never Gramine-trusted (they change), the signed manifest
        // never merely allowed.
        assert!(!trusted.iter().any(|x| x.contains("/enc")), "{trusted:?}");
        assert!(!allowed.iter().any(|x| x.contains("signed")), "{allowed:?}");
        let argv: Vec<&str> = t["loader"]["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            argv,
            [
                "ward",
                "run",
                "--attester",
                "gramine",
                "--receipt",
                "/var/results/receipt.json",
                "/srv/ward/app.signed.toml"
            ]
        );
        assert!(!text.contains("insecure__use_cmdline_argv ="), "{text}");
        assert_eq!(t["sgx"]["debug"].as_bool(), Some(false));
        assert_eq!(t["sgx"]["remote_attestation"].as_str(), Some("dcap"));
        // Every path at the same path inside: the base directory and the outside ones.
        let mounts: Vec<String> = t["fs"]["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["path"].as_str().unwrap().to_owned())
            .collect();
        for want in ["/srv/ward", "/var/results", "/etc/ward/ca.pem", "/lib"] {
            assert!(mounts.iter().any(|m| m == want), "{want} in {mounts:?}");
        }
        for m in t["fs"]["mounts"].as_array().unwrap() {
            let (path, uri) = (m["path"].as_str().unwrap(), m["uri"].as_str().unwrap());
            if path != "/lib" {
                assert_eq!(uri, format!("file:{path}"));
            }
        }
    }

    #[test]
    fn programs_dev_keys_relative_and_unwritable_paths_are_refused() {
        let program = BUILTIN
            .replace(
                "[loader]\nentrypoint = \"ward:checksum\"",
                "[libos]\nentrypoint = \"/app/run.sh\"\n\n[loader]",
            )
            .replace(
                "trusted_files = [",
                "trusted_files = [{ uri = \"file:app/run.sh\", sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\" }, ",
            );
        let e = gramine_manifest(&signed(&program), &deployment()).unwrap_err();
        assert!(matches!(e, GramineError::Program(_)), "{e}");
        assert!(e.to_string().contains("/app/run.sh"), "{e}");

        let dev = format!("{BUILTIN}\n[fs.insecure__keys]\ndefault = \"{}\"\n", "00".repeat(16))
            .replace("[provision]\nservers = [\"localhost:4433\"]\nca_chain = { uri = \"file:/etc/ward/ca.pem\", sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\" }\nsecrets = [{ name = \"k\", key_name = \"default\" }]\n", "");
        assert!(matches!(
            gramine_manifest(&signed(&dev), &deployment()),
            Err(GramineError::DevKeys)
        ));

        let mut d = deployment();
        d.ward_binary = PathBuf::from("ward");
        assert!(matches!(
            gramine_manifest(&signed(BUILTIN), &d),
            Err(GramineError::NotAbsolute { .. })
        ));
        let mut d = deployment();
        d.signed_manifest = PathBuf::from("/srv/we\"ird/app.signed.toml");
        assert!(matches!(
            gramine_manifest(&signed(BUILTIN), &d),
            Err(GramineError::Unwritable(_))
        ));
    }
}
