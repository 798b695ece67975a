//! `ward sign` as a library call: load a manifest, check it, hash its trusted files, sign it and
//! write the signed manifest atomically; and the policy table that admits the signed workload.

use crate::error::Error;
use crate::hashing::OnFile;
use crate::schema::{FileUri, Manifest, Sha256};
use crate::signing::{SignedManifest, SignerKey};
use std::path::{Path, PathBuf};

/// A check run on the parsed manifest before anything is hashed or written (the runtime's
/// built-in registry uses it to refuse an unknown entrypoint or bad arguments at sign time).
pub type Check<'a> = dyn Fn(&Manifest) -> Result<(), Box<dyn std::error::Error + Send + Sync>> + 'a;

/// What [`sign_to_file`] may do besides signing.
#[derive(Default)]
pub struct SignOptions<'a> {
    /// Refuses the manifest before anything is hashed or written.
    pub check: Option<&'a Check<'a>>,
    /// Called before each trusted file is hashed: (uri, host path, size).
    pub on_file: Option<&'a mut OnFile<'a>>,
}

/// What [`sign_to_file`] hashed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignStats {
    /// Trusted files hashed (the provisioning CA chain included).
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// `x.toml` → `x.signed.toml`, beside it (the default output of [`sign_to_file`]).
pub fn signed_name(manifest: &Path) -> PathBuf {
    let name = manifest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".toml").unwrap_or(&name);
    manifest.with_file_name(format!("{stem}.signed.toml"))
}

/// Loads the manifest at `manifest_path`, runs `options.check` on it, hashes its trusted files
/// (relative to the manifest's directory), signs it with `key` for the runtime whose digest is
/// `runtime_digest`, and writes it to `output`: a temporary file beside the target, synced, then
/// renamed into place (an existing output is left untouched on any failure).
///
/// `output` must be in the manifest's directory, since the manifest's `file:` URIs are relative
/// to it.
pub fn sign_to_file(
    key: &SignerKey,
    manifest_path: &Path,
    output: &Path,
    runtime_digest: Sha256,
    options: SignOptions<'_>,
) -> Result<(SignedManifest, SignStats), Error> {
    let base = parent_dir(manifest_path);
    let absolute = |p: &Path| {
        std::path::absolute(p)
            .ok()
            .map(|p| parent_dir(&p).to_owned())
    };
    if absolute(output) != absolute(manifest_path) {
        return Err(Error::OutputElsewhere {
            output: output.to_owned(),
            manifest_dir: base.to_owned(),
        });
    }
    let manifest = Manifest::load(manifest_path)?;
    if let Some(check) = options.check {
        check(&manifest).map_err(Error::Refused)?;
    }
    check_dev_key_files(&manifest, base)?;
    let mut stats = SignStats::default();
    let mut on_file = options.on_file;
    let hashed = manifest.hash_trusted_files(base, &mut |uri: &FileUri, path: &Path, size| {
        stats.files += 1;
        stats.bytes += size;
        if let Some(f) = on_file.as_deref_mut() {
            f(uri, path, size);
        }
    })?;
    let mut manifest = hashed.manifest;
    if !hashed.trees.is_empty() {
        // The trees go to a sidecar beside the output, written first: the manifest names it and
        // pins each tree by digest, so the sidecar needs no signature of its own.
        let sidecar = trees_name(output);
        let name = sidecar
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let uri = FileUri::from_path(&name).map_err(|m| Error::Io {
            context: format!("naming the trusted-tree sidecar {}: {m}", sidecar.display()),
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
        manifest.sgx.trusted_trees = Some(uri);
        ward_fsio::write_atomic(&sidecar, hashed.trees.encode().as_bytes(), 0o644)
            .map_err(Error::Output)?;
    }
    let signed = key.sign(manifest, runtime_digest)?;
    // Temp file beside the target, synced, renamed, directory synced: a crash leaves either the
    // old file or the new one, never half of one.
    ward_fsio::write_atomic(output, signed.to_toml().as_bytes(), 0o644).map_err(Error::Output)?;
    Ok((signed, stats))
}

/// `x.signed.toml` → `x.signed.trees`, beside it: the sidecar holding a signed manifest's
/// trusted trees.
pub fn trees_name(signed_manifest: &Path) -> PathBuf {
    let name = signed_manifest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".toml").unwrap_or(&name);
    signed_manifest.with_file_name(format!("{stem}.trees"))
}

/// Reads each development key file as the runtime will (bounded, exactly 16 bytes, wiped at
/// once), so a wrong file is refused at signing rather than at the first run. The key is not
/// pinned: it is a development key, which the host can read and replace anyway.
pub fn check_dev_key_files(manifest: &Manifest, base_dir: &Path) -> Result<(), Error> {
    for (name, uri) in &manifest.fs.insecure_key_files {
        let path = crate::hashing::resolve(base_dir, uri);
        ward_fsio::read_secret_exact(&path, 16).map_err(|source| Error::DevKeyFile {
            key_name: name.clone(),
            uri: uri.to_string(),
            source,
        })?;
    }
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The attestation identity that admits exactly one signed workload, in both layers: the
/// enclave's MRENCLAVE/MRSIGNER/product id/minimum SVN as the simulated TEE reports them (there
/// the enclave *is* the manifest), and the same values as the `workload_*` claim ward's runtime
/// puts in its evidence on every attester. On hardware the enclave fields must be replaced by the
/// outer layer's (the Gramine enclave running ward, or the TD); the workload fields stay. Named
/// after the entrypoint, for audit logs and refusals.
/// `ward_attest::Policy::for_workload(identity(&s))` is the policy a data owner gives her
/// provisioning server.
pub fn identity(signed: &SignedManifest) -> ward_attest::Identity {
    let s = &signed.signature;
    let sgx = &signed.manifest.sgx;
    ward_attest::Identity::sgx(s.measurement.0)
        .named(signed.manifest.workload_name())
        .mr_signer(s.mr_signer.0)
        .isv_prod_id(sgx.isv_prod_id)
        .min_isv_svn(sgx.isv_svn)
        .workload(&workload_of(signed))
}

/// Only the `workload_*` layer of [`identity`]: what a policy on hardware pins next to the
/// platform layer it names itself (the Gramine enclave running ward, or the TD).
pub fn workload_identity(signed: &SignedManifest) -> ward_attest::Identity {
    ward_attest::Identity::of_workload(&workload_of(signed)).named(signed.manifest.workload_name())
}

/// The workload claim ward's runtime makes for `signed` (see `VerifiedManifest::workload`).
fn workload_of(signed: &SignedManifest) -> ward_attest::WorkloadIdentity {
    let s = &signed.signature;
    let sgx = &signed.manifest.sgx;
    ward_attest::WorkloadIdentity {
        measurement: s.measurement.0,
        signer: s.mr_signer.0,
        isv_prod_id: sgx.isv_prod_id,
        isv_svn: sgx.isv_svn,
        debug: signed.manifest.is_debug(),
    }
}
