//! A development setup for a first run (`ward provision init`, `ward demo`): a development CA and
//! a server certificate for localhost, a simulated platform key, a random wrap key, a policy and
//! a server configuration, all in one directory.
//!
//! DEVELOPMENT ONLY: the CA key sits beside the certificates and the policy accepts ward's
//! simulated TEE, which proves nothing about hardware.

use crate::ServerConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use ward_attest::Policy;

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
    /// No workload was named, so the policy refuses every client until its placeholder
    /// identity is replaced.
    pub refuses_until_edited: bool,
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
    /// Writing a file failed.
    #[error("writing the development setup")]
    File(#[source] ward_fsio::Error),
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
    if secret {
        ward_fsio::create_secret_file(path, bytes).map_err(|e| match e {
            ward_fsio::Error::AlreadyExists { .. } => DevError::KeyExists(path.to_owned()),
            e => DevError::File(e),
        })
    } else {
        ward_fsio::write_atomic(path, bytes, 0o644).map_err(DevError::File)
    }
}

/// Fills `dir` (created; must be empty or absent) with a development setup whose policy accepts
/// the workload with measurement `mr_enclave` (64 hex characters) on the simulated platform; the
/// server will listen on `listen`.
///
/// Without `mr_enclave` the policy never accepts anything until edited: its one identity is a
/// placeholder naming a random measurement that no workload has (a policy that accepted any
/// workload on the platform would release the key to whatever the host chose to run).
pub fn init_dir(
    dir: &Path,
    mr_enclave: Option<&str>,
    listen: SocketAddr,
) -> Result<DevSetup, DevError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mr_enclave = match mr_enclave {
        None => None,
        Some(m) => {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(m, &mut bytes)
                .map_err(|_| DevError::BadMeasurement(m.to_owned()))?;
            Some(bytes)
        }
    };
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

    let platform = sim.public();
    let policy = match mr_enclave {
        Some(m) => Policy::dev_sim(&platform, Some(m)).to_toml(),
        None => {
            let mut placeholder = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut placeholder)
                .map_err(|_| DevError::Io {
                    context: "drawing a random placeholder measurement".into(),
                    source: std::io::Error::other("the system random source failed"),
                })?;
            let identity = ward_attest::Identity::sgx(placeholder)
                .named("PLACEHOLDER: replace with the [[identity]] that `ward sign` prints");
            let policy = Policy::for_workload(identity)
                .trust_simulated_platform(&platform)
                .to_toml();
            format!(
                "# REFUSES EVERY CLIENT until edited: `ward provision init` was given no workload\n\
                 # identity, and its placeholder below names a random measurement no workload has.\n\
                 # Replace the [[identity]] with the one `ward sign` prints for your workload (or\n\
                 # run init again with --mr-enclave), then start or reload the server.\n{policy}"
            )
        }
    };
    let policy_path = dir.join("policy.toml");
    write_new(&policy_path, policy.as_bytes(), false)?;
    // Relative paths: the directory can be moved as a whole.
    let config = ServerConfig::one_key(
        listen,
        "server.pem",
        "server-key.pem",
        "audit.jsonl",
        "wrap_key",
        "secrets/wrap_key",
        "policy.toml",
        dir,
    );
    let config = format!(
        "# ward provisioning server. Relative paths are relative to this file.\n{}",
        config.to_toml()
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
        refuses_until_edited: mr_enclave.is_none(),
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
        let setup = init_dir(&dir, Some(&m), ([127, 0, 0, 1], 0).into()).unwrap();
        let config = crate::ServerConfig::load(&setup.server_config).unwrap();
        assert_eq!(config.secrets.len(), 1);
        assert_eq!(std::fs::read(&setup.wrap_key).unwrap().len(), 16);
        let policy = std::fs::read_to_string(&setup.policy).unwrap();
        assert!(policy.contains(&"ab".repeat(32)), "{policy}");
        assert!(policy.contains(&setup.sim_public), "{policy}");
        ward_attest::Policy::from_toml(&policy, "policy.toml").unwrap();
        assert!(!setup.refuses_until_edited);
        assert!(matches!(
            init_dir(&dir, None, ([127, 0, 0, 1], 0).into()),
            Err(DevError::NotEmpty(_))
        ));
        let e = init_dir(
            &d.path().join("other"),
            Some("abc"),
            ([127, 0, 0, 1], 0).into(),
        )
        .unwrap_err();
        assert!(matches!(e, DevError::BadMeasurement(_)), "{e}");
        assert!(!d.path().join("other").exists());
    }

    /// Without a measurement the policy refuses every workload, including one claiming all-zero
    /// identities (what a simulated client claims by default), and says so at its top.
    #[test]
    fn without_a_measurement_the_policy_refuses_until_edited() {
        use ward_attest::attester::{Attester, SimAttester};
        use ward_attest::sim::{SimIdentity, SimPlatformKey};
        use ward_attest::EvidenceVerifier;
        let d = tempfile::tempdir().unwrap();
        let setup = init_dir(&d.path().join("prov"), None, ([127, 0, 0, 1], 0).into()).unwrap();
        assert!(setup.refuses_until_edited);
        let text = std::fs::read_to_string(&setup.policy).unwrap();
        assert!(
            text.starts_with("# REFUSES EVERY CLIENT until edited"),
            "{text}"
        );
        assert!(!text.contains("accept_any_identity"), "{text}");
        let policy = Policy::from_toml(&text, "policy.toml").unwrap();
        for mr in [[0u8; 32], [0xab; 32]] {
            let attester = SimAttester::new(
                SimPlatformKey::load(&setup.sim_key).unwrap(),
                SimIdentity {
                    mr_enclave: mr,
                    mr_signer: [0; 32],
                    isv_prod_id: 0,
                    isv_svn: 0,
                    debug: false,
                },
            );
            let quote = attester.attest(&[0; 64]).unwrap().quote;
            let claims = ward_attest::SimVerifier.verify(&quote).unwrap();
            let refusal = policy.evaluate(&claims).unwrap_err();
            assert_eq!(refusal.rule, "mr_enclave", "{refusal}");
            assert!(refusal.to_string().contains("PLACEHOLDER"), "{refusal}");
        }
    }
}
