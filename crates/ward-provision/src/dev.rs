//! A development setup for a first run (`ward provision init`, `ward demo`): a development CA and
//! a server certificate for localhost, a simulated platform key, a random wrap key, a policy and
//! a server configuration, all in one directory.
//!
//! DEVELOPMENT ONLY: the CA key sits beside the certificates and the policy accepts ward's
//! simulated TEE, which proves nothing about hardware.

use std::io::Write;
use std::path::{Path, PathBuf};

/// What [`init_dir`] created.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DevSetup {
    /// The directory.
    pub dir: PathBuf,
    /// The CA certificate clients trust (`ca.pem`).
    pub ca: PathBuf,
    /// The simulated platform key (`sim-platform.pem`).
    pub sim_key: PathBuf,
    /// Its public half, hex, as the policy lists it.
    pub sim_public: String,
    /// The wrap key, 16 raw bytes (`secrets/wrap_key`, mode 0600).
    pub wrap_key: PathBuf,
    /// The policy for the wrap key (`policy.toml`).
    pub policy: PathBuf,
    /// The server configuration (`server.toml`).
    pub server_config: PathBuf,
}

/// Why [`init_dir`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevError {
    /// The directory already holds files.
    #[error("{} is not empty; give a new or empty directory", .0.display())]
    NotEmpty(PathBuf),
    /// The measurement is not 64 hex characters.
    #[error("the workload measurement must be 64 hex characters, got {0:?}")]
    BadMeasurement(String),
    /// Creating or writing a file failed.
    #[error("{context}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A key file would overwrite an existing one.
    #[error("{} already exists; refusing to overwrite a key", .0.display())]
    KeyExists(PathBuf),
    /// Making the CA or the server certificate failed.
    #[error("making the development certificates")]
    Certificate(#[from] rcgen::Error),
    /// Making or saving the simulated platform key failed.
    #[error("making the simulated platform key")]
    SimKey(#[source] ward_attest::Error),
    /// Making the wrap key failed.
    #[error("making the wrap key")]
    WrapKey(#[source] ward_pf::Error),
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> DevError {
    move |source| DevError::Io { context, source }
}

fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<(), DevError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if secret { 0o600 } else { 0o644 });
    let mut f = options.open(path).map_err(|e| {
        if secret && e.kind() == std::io::ErrorKind::AlreadyExists {
            DevError::KeyExists(path.to_owned())
        } else {
            DevError::Io {
                context: format!("creating {}", path.display()),
                source: e,
            }
        }
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(format!("writing {}", path.display())))
}

/// Fills `dir` (created; must be empty or absent) with a development setup whose policy accepts
/// the workload with measurement `mr_enclave` (64 hex characters) on the simulated platform, or
/// any workload on it when `mr_enclave` is `None`; the server will listen on `listen`.
pub fn init_dir(dir: &Path, mr_enclave: Option<&str>, listen: &str) -> Result<DevSetup, DevError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    if let Some(m) = mr_enclave {
        if m.len() != 64 || !m.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DevError::BadMeasurement(m.to_owned()));
        }
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(io(format!("reading {}", dir.display())))?
            .next()
            .is_some()
    {
        return Err(DevError::NotEmpty(dir.to_owned()));
    }
    std::fs::create_dir_all(dir.join("secrets"))
        .map_err(io(format!("creating {}", dir.display())))?;

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "ward development CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);
    let server_key = KeyPair::generate()?;
    let mut server =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    server
        .distinguished_name
        .push(DnType::CommonName, "ward provisioning server");
    let server_cert = server.signed_by(&server_key, &issuer)?;

    write_new(&dir.join("ca.pem"), ca_cert.pem().as_bytes(), false)?;
    write_new(
        &dir.join("ca-key.pem"),
        ca_key.serialize_pem().as_bytes(),
        true,
    )?;
    write_new(&dir.join("server.pem"), server_cert.pem().as_bytes(), false)?;
    write_new(
        &dir.join("server-key.pem"),
        server_key.serialize_pem().as_bytes(),
        true,
    )?;

    let sim = ward_attest::sim::SimPlatformKey::generate();
    let sim_key = dir.join("sim-platform.pem");
    sim.save(&sim_key).map_err(DevError::SimKey)?;
    let sim_public = sim.public().to_hex();
    let wrap = ward_pf::WrapKey::generate().map_err(DevError::WrapKey)?;
    let wrap_key = dir.join("secrets/wrap_key");
    write_new(&wrap_key, wrap.expose_bytes(), true)?;

    // Moved as is from the CLI; to become serialised data once `Policy` and `ServerConfig` are
    // `Serialize`.
    let identity = match mr_enclave {
        Some(m) => format!(
            "[[identity]]\nname = \"the workload\"\nmr_enclave = \"{}\"\n",
            m.to_ascii_lowercase()
        ),
        None => {
            "# No workload measurement was given to `ward provision init`, so any workload on the\n\
                 # simulated platform below is accepted. Replace this with the [[identity]] that\n\
                 # `ward sign` prints before you provision anything that matters.\n\
                 accept_any_identity = true\n"
                .to_string()
        }
    };
    let policy = format!(
        "# Who may receive the wrap key. See `ward attest verify --help` and\n\
         # crates/ward-attest/src/policy.rs for every rule.\n\
         # DEVELOPMENT ONLY: evidence from ward's simulated TEE proves nothing about hardware.\n\
         allow_simulated = true\n\
         simulated_platform_keys = [\"{sim_public}\"]\n\
         {identity}"
    );
    let policy_path = dir.join("policy.toml");
    write_new(&policy_path, policy.as_bytes(), false)?;
    let config = format!(
        "# ward provisioning server. Relative paths are relative to this file.\n\
         listen = \"{listen}\"\n\
         cert_chain = \"server.pem\"\n\
         key = \"server-key.pem\"\n\
         audit_log = \"audit.jsonl\"\n\n\
         [[secret]]\n\
         name = \"wrap_key\"\n\
         file = \"secrets/wrap_key\"\n\
         kind = \"key\"\n\
         policy = \"policy.toml\"\n"
    );
    let server_config = dir.join("server.toml");
    write_new(&server_config, config.as_bytes(), false)?;
    Ok(DevSetup {
        dir: dir.to_owned(),
        ca: dir.join("ca.pem"),
        sim_key,
        sim_public,
        wrap_key,
        policy: policy_path,
        server_config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_setup_the_server_loads_and_refuses_to_reuse_a_directory() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("prov");
        let m = "AB".repeat(32);
        let setup = init_dir(&dir, Some(&m), "127.0.0.1:0").unwrap();
        let config = crate::ServerConfig::load(&setup.server_config).unwrap();
        assert_eq!(config.secrets.len(), 1);
        assert_eq!(std::fs::read(&setup.wrap_key).unwrap().len(), 16);
        let policy = std::fs::read_to_string(&setup.policy).unwrap();
        assert!(policy.contains(&"ab".repeat(32)), "{policy}");
        assert!(policy.contains(&setup.sim_public), "{policy}");
        ward_attest::Policy::from_toml(&policy, "policy.toml").unwrap();
        assert!(matches!(
            init_dir(&dir, None, "127.0.0.1:0"),
            Err(DevError::NotEmpty(_))
        ));
        let e = init_dir(&d.path().join("other"), Some("abc"), "127.0.0.1:0").unwrap_err();
        assert!(matches!(e, DevError::BadMeasurement(_)), "{e}");
        assert!(!d.path().join("other").exists());
    }
}
