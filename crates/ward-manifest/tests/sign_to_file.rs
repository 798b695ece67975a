//! `sign_to_file`: the signed manifest lands atomically, verifies, and a refused or failing
//! signing leaves an existing output untouched.

use std::fs;
use std::path::Path;
use ward_manifest::*;

const MANIFEST: &str = r#"
[loader]
entrypoint = "ward:checksum"
argv = ["--output", "/out/digests.txt", "/app/a.txt"]

[[fs.mounts]]
path = "/app"
uri = "file:app"

[sgx]
isv_prod_id = 7
isv_svn = 3
trusted_files = ["file:app/"]
"#;

fn project(dir: &Path) -> std::path::PathBuf {
    fs::create_dir_all(dir.join("app/sub")).unwrap();
    fs::write(dir.join("app/a.txt"), b"alpha").unwrap();
    fs::write(dir.join("app/sub/b.txt"), b"beta!").unwrap();
    let m = dir.join("w.toml");
    fs::write(&m, MANIFEST).unwrap();
    m
}

fn no_temp_files(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".ward-tmp"), "left behind: {name}");
    }
}

#[test]
fn writes_a_signed_manifest_that_verifies() {
    let d = tempfile::tempdir().unwrap();
    let m = project(d.path());
    let out = signed_name(&m);
    assert_eq!(out, d.path().join("w.signed.toml"));
    let key = SignerKey::generate();
    let runtime = Sha256([9; 32]);
    let mut seen = Vec::new();
    let mut on_file = |uri: &FileUri, _: &Path, size: u64| seen.push((uri.to_string(), size));
    let (signed, stats) = sign_to_file(
        &key,
        &m,
        &out,
        runtime,
        SignOptions {
            on_file: Some(&mut on_file),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((stats.files, stats.bytes), (2, 10));
    assert_eq!(seen.len(), 2);
    let back = SignedManifest::load(&out).unwrap();
    assert_eq!(back, signed);
    let verified = back.verify(&runtime).unwrap();
    assert_eq!(verified.mr_signer, key.public().mr_signer());
    assert!(back.verify(&Sha256([8; 32])).is_err());
    no_temp_files(d.path());

    let policy = ward_attest::Policy::for_workload(ward_manifest::identity(&signed)).to_toml();
    let table: toml::Table = toml::from_str(&policy).unwrap();
    let id = &table["identity"].as_array().unwrap()[0];
    assert_eq!(id["name"].as_str(), Some("ward:checksum"));
    assert_eq!(
        id["mr_enclave"].as_str(),
        Some(signed.signature.measurement.to_string().as_str())
    );
    assert_eq!(id["isv_prod_id"].as_integer(), Some(7));
    assert_eq!(id["min_isv_svn"].as_integer(), Some(3));
}

#[test]
fn a_refused_or_failed_signing_leaves_the_output_untouched() {
    let d = tempfile::tempdir().unwrap();
    let m = project(d.path());
    let out = signed_name(&m);
    fs::write(&out, "old").unwrap();
    let key = SignerKey::generate();
    let refuse: &Check<'_> =
        &|m: &Manifest| Err(format!("no built-in {}", m.workload_name()).into());
    let e = sign_to_file(
        &key,
        &m,
        &out,
        Sha256([0; 32]),
        SignOptions {
            check: Some(refuse),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::Refused(_)), "{e:?}");
    let cause = std::error::Error::source(&e).unwrap().to_string();
    assert_eq!(cause, "no built-in ward:checksum");
    assert_eq!(fs::read_to_string(&out).unwrap(), "old");

    // A trusted file that vanished: the hashing fails, the old output stays.
    fs::remove_file(d.path().join("app/a.txt")).unwrap();
    fs::write(d.path().join("app/a.txt"), b"").unwrap();
    fs::remove_dir_all(d.path().join("app/sub")).unwrap();
    let mut bad = MANIFEST.replace("file:app/", "file:missing.bin");
    bad.push('\n');
    fs::write(&m, bad).unwrap();
    let e = sign_to_file(&key, &m, &out, Sha256([0; 32]), SignOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert_eq!(fs::read_to_string(&out).unwrap(), "old");
    no_temp_files(d.path());

    // Outside the manifest's directory: refused before anything is read.
    let other = tempfile::tempdir().unwrap();
    let e = sign_to_file(
        &key,
        &m,
        &other.path().join("w.signed.toml"),
        Sha256([0; 32]),
        SignOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::OutputElsewhere { .. }), "{e}");
    assert!(fs::read_dir(other.path()).unwrap().next().is_none());
}
