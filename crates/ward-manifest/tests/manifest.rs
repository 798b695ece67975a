//! Manifest parsing, validation with line numbers, hashing, measurement and signing.

use std::fs;
use std::path::Path;
use ward_manifest::*;

const GOOD: &str = r#"
[loader]
entrypoint = "ward:checksum"
argv = ["--output", "/out/digests.txt", "/data/input.bin"]

[loader.env]
LANG = "C"
TZ = { passthrough = true }

[[fs.mounts]]
type = "encrypted"
path = "/data"
uri = "file:encrypted"

[[fs.mounts]]
path = "/app"
uri = "file:app/"

[[fs.mounts]]
type = "tmpfs"
path = "/tmp"

[[fs.pinned]]
path = "/data/input.bin"
sha256 = "0000000000000000000000000000000000000000000000000000000000000001"

[sgx]
isv_prod_id = 7
isv_svn = 3
trusted_files = ["file:app/", { uri = "file:labels.txt" }]
allowed_files = ["file:logs/"]

[provision]
servers = ["localhost:4433", "10.0.0.2:4433"]
ca_chain = "file:ca.pem"
secrets = [{ name = "default", key_name = "default" }, { name = "token", env = "API_TOKEN" }]
"#;

fn project(dir: &Path) {
    fs::create_dir_all(dir.join("app/sub")).unwrap();
    fs::write(dir.join("app/a.txt"), b"alpha").unwrap();
    fs::write(dir.join("app/sub/b.txt"), b"beta").unwrap();
    fs::write(dir.join("labels.txt"), b"cat\ndog\n").unwrap();
    fs::write(dir.join("ca.pem"), b"-----BEGIN CERTIFICATE-----\n").unwrap();
}

fn err(text: &str) -> String {
    Manifest::from_toml(text).unwrap_err().to_string()
}

#[test]
fn parses_the_documented_example() {
    let m = Manifest::from_toml(GOOD).unwrap();
    assert_eq!(m.loader.entrypoint.as_ref().unwrap().builtin(), "checksum");
    assert_eq!(m.fs.mounts[0].kind, MountType::Encrypted);
    assert_eq!(m.fs.mounts[0].key_name(), "default");
    assert_eq!(m.fs.mounts[1].kind, MountType::Chroot);
    assert!(m.loader.env["TZ"].is_passthrough());
    assert_eq!(m.loader.env["LANG"].fixed(), Some("C"));
    assert_eq!(m.sgx.isv_prod_id, 7);
    assert_eq!(m.provision.as_ref().unwrap().servers.len(), 2);
}

#[test]
fn unknown_key_is_refused_with_its_line() {
    let text = GOOD.replace("isv_svn = 3", "isv_svn = 3\nisv_snv = 4");
    let e = err(&text);
    assert!(e.contains("line 30") && e.contains("isv_snv"), "{e}");
}

#[test]
fn bad_values_name_their_line() {
    let e = err(&GOOD.replace("\"ward:checksum\"", "\"/bin/sh\""));
    assert!(e.contains("line 3") && e.contains("built-in"), "{e}");
    let e = err(&GOOD.replace("path = \"/tmp\"", "path = \"tmp\""));
    assert!(e.contains("line 21") && e.contains("absolute"), "{e}");
    let e = err(&GOOD.replace("uri = \"file:app/\"", "uri = \"app/\""));
    assert!(e.contains("line 17") && e.contains("file:PATH"), "{e}");
    let e = err(&GOOD.replace("sha256 = \"0000", "sha256 = \"zz00"));
    assert!(e.contains("line 25") && e.contains("SHA-256"), "{e}");
    let e = err(&GOOD.replace("type = \"tmpfs\"", "type = \"nfs\""));
    assert!(e.contains("line 20") && e.contains("nfs"), "{e}");
}

#[test]
fn cross_key_rules_name_line_and_key() {
    // A key nobody provisions.
    let e = err(&GOOD.replace(
        "uri = \"file:encrypted\"",
        "uri = \"file:encrypted\"\nkey_name = \"model\"",
    ));
    assert!(
        e.contains("line 14, fs.mounts[0].key_name") && e.contains("\"model\""),
        "{e}"
    );
    // Twice the same mount path.
    let e = err(&GOOD.replace("path = \"/tmp\"", "path = \"/app\""));
    assert!(
        e.contains("fs.mounts[2].path") && e.contains("line 21"),
        "{e}"
    );
    // A pin outside an encrypted mount.
    let e = err(&GOOD.replace("path = \"/data/input.bin\"", "path = \"/app/a.txt\""));
    assert!(
        e.contains("fs.pinned[0].path") && e.contains("chroot"),
        "{e}"
    );
    // A secret that goes nowhere, and a bad server.
    let e = err(&GOOD
        .replace(
            "{ name = \"token\", env = \"API_TOKEN\" }",
            "{ name = \"token\" }",
        )
        .replace("\"10.0.0.2:4433\"", "\"10.0.0.2\""));
    assert!(
        e.contains("provision.secrets[1].name") && e.contains("goes nowhere"),
        "{e}"
    );
    assert!(
        e.contains("provision.servers[1]") && e.contains("HOST:PORT"),
        "{e}"
    );
    // A tmpfs with a uri.
    let e = err(&GOOD.replace("path = \"/tmp\"", "path = \"/tmp\"\nuri = \"file:x\""));
    assert!(
        e.contains("fs.mounts[2].uri") && e.contains("line 22"),
        "{e}"
    );
    // Encrypted mounts without provisioning.
    let cut = GOOD.find("[provision]").unwrap();
    let e = err(&GOOD[..cut]);
    assert!(e.contains("no [provision] section"), "{e}");
}

#[test]
fn dotdot_and_env_names_are_refused() {
    let e = err(&GOOD.replace("path = \"/tmp\"", "path = \"/tmp/../etc\""));
    assert!(e.contains(".."), "{e}");
    let e = err(&GOOD.replace("LANG = \"C\"", "\"1LANG\" = \"C\""));
    assert!(e.contains("environment variable name"), "{e}");
}

fn signed(dir: &Path) -> (SignedManifest, SignerKey) {
    project(dir);
    let m = Manifest::from_toml(GOOD).unwrap();
    let mut seen = Vec::new();
    let mut hashed = m
        .hash_trusted_files(dir, &mut |uri, _, size| seen.push((uri.to_string(), size)))
        .unwrap()
        .manifest;
    hashed.sgx.trusted_trees = Some(FileUri::from_path("good.signed.trees").unwrap());
    // A directory's files are hashed on all cores, so they are reported in any order.
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("file:app/a.txt".to_string(), 5),
            ("file:app/sub/b.txt".to_string(), 4),
            ("file:ca.pem".to_string(), 28),
            ("file:labels.txt".to_string(), 8),
        ]
    );
    let key = SignerKey::generate();
    (key.sign(hashed, Sha256([9; 32])).unwrap(), key)
}

#[test]
fn files_hash_like_sha256sum_and_directories_become_trees() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let hashed = Manifest::from_toml(GOOD)
        .unwrap()
        .hash_trusted_files(dir.path(), &mut |_, _, _| {})
        .unwrap();
    let entries: Vec<_> = hashed
        .manifest
        .sgx
        .trusted_files
        .iter()
        .map(|t| match t {
            TrustedFile::Hashed(h) => ("file", h.uri.to_string(), h.sha256.to_string()),
            TrustedFile::Tree(t) => ("tree", t.uri.to_string(), t.tree.to_string()),
            TrustedFile::Uri(u) => panic!("unhashed {u}"),
        })
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].0, "file");
    assert_eq!(entries[0].1, "file:labels.txt");
    assert_eq!(
        entries[0].2,
        hex_sha256(&fs::read(dir.path().join("labels.txt")).unwrap())
    );
    // A file's mode and mtime are signed with it (the workload sees those, not the host's).
    let md = fs::metadata(dir.path().join("labels.txt")).unwrap();
    match &hashed.manifest.sgx.trusted_files[0] {
        TrustedFile::Hashed(h) => {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            assert_eq!(h.mode, Some(FileMode(md.permissions().mode() & 0o7777)));
            let mtime = h.mtime.unwrap();
            assert_eq!(
                (mtime.secs, i64::from(mtime.nanos)),
                (md.mtime(), md.mtime_nsec())
            );
        }
        other => panic!("{other:?}"),
    }
    let text = toml::to_string(&hashed.manifest).unwrap();
    assert!(
        text.contains("mode = \"0644\"") || text.contains("mode = \""),
        "{text}"
    );
    assert_eq!(Manifest::from_toml(&text).unwrap(), hashed.manifest);
    // The directory is one entry, pinned by the digest of its tree, which lists both files
    // with the SHA-256 of their (single) chunk: sha256("alpha"), computed independently.
    assert_eq!((entries[1].0, entries[1].1.as_str()), ("tree", "file:app/"));
    let trees: Vec<_> = hashed.trees.iter().collect();
    assert_eq!(trees.len(), 1);
    assert_eq!(trees[0].digest().to_string(), entries[1].2);
    match trees[0].get("a.txt") {
        Some(ward_manifest::tree::TreeEntry::File(f)) => {
            assert_eq!(f.size, 5);
            assert_eq!(
                hex::encode(f.chunks[0]),
                "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(trees[0].get("sub/b.txt").is_some());
    // Signing again over the signed entries checks them: a changed file in the tree is stale.
    let again = hashed
        .manifest
        .hash_trusted_files(dir.path(), &mut |_, _, _| {})
        .unwrap();
    assert_eq!(
        again.manifest.sgx.trusted_files,
        hashed.manifest.sgx.trusted_files
    );
    fs::write(dir.path().join("app/sub/b.txt"), b"BETA").unwrap();
    let e = hashed
        .manifest
        .hash_trusted_files(dir.path(), &mut |_, _, _| {})
        .unwrap_err();
    assert!(matches!(e, Error::StaleTree { .. }), "{e}");
}

fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn signed_manifest_round_trips_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (s, key) = signed(dir.path());
    let text = s.to_toml();
    let back = SignedManifest::from_toml(&text).unwrap();
    assert_eq!(back, s);
    let v = back.verify(&Sha256([9; 32])).unwrap();
    assert_eq!(v.mr_signer, key.public().mr_signer());
    assert_eq!(v.measurement, measurement(&s.manifest, &Sha256([9; 32])));
    // Layout does not matter: comments and blank lines added, same measurement.
    let relaid = text.replace("\n[", "\n# a comment\n\n[");
    SignedManifest::from_toml(&relaid)
        .unwrap()
        .verify(&Sha256([9; 32]))
        .unwrap();
}

#[test]
fn tampering_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = signed(dir.path());
    let text = s.to_toml();
    let runtime = Sha256([9; 32]);
    // Content edited after signing.
    let edited = text.replace("isv_svn = 3", "isv_svn = 4");
    assert_ne!(edited, text);
    let e = SignedManifest::from_toml(&edited)
        .unwrap()
        .verify(&runtime)
        .unwrap_err();
    assert!(e.to_string().contains("bad signature"), "{e}");
    let edited = text.replace("\"/out/digests.txt\"", "\"/out/other.txt\"");
    let e = SignedManifest::from_toml(&edited)
        .unwrap()
        .verify(&runtime)
        .unwrap_err();
    assert!(
        e.to_string().contains("edited after signing") || e.to_string().contains("bad signature"),
        "{e}"
    );
    // Another runtime.
    let e = s.verify(&Sha256([8; 32])).unwrap_err();
    assert!(matches!(e, Error::RuntimeMismatch { .. }), "{e}");
    // Re-signed by somebody else with the same measurement: verifies, but under another MRSIGNER.
    let other = SignerKey::generate()
        .sign(s.manifest.clone(), runtime)
        .unwrap();
    assert_ne!(other.signature.mr_signer, s.signature.mr_signer);
    // Swapping in another key without re-signing fails.
    let mut forged = s.clone();
    forged.signature.signer_public_key = other.signature.signer_public_key.clone();
    forged.signature.mr_signer = other.signature.mr_signer;
    assert!(forged.verify(&runtime).is_err());
    // Unsigned.
    let e = SignedManifest::from_toml(GOOD).unwrap_err();
    assert!(e.to_string().contains("ward sign"), "{e}");
}

#[test]
fn stale_hash_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let text = GOOD.replace(
        "{ uri = \"file:labels.txt\" }",
        "{ uri = \"file:labels.txt\", sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\" }",
    );
    let m = Manifest::from_toml(&text).unwrap();
    let e = m
        .hash_trusted_files(dir.path(), &mut |_, _, _| {})
        .unwrap_err();
    assert!(matches!(e, Error::StaleHash { .. }), "{e}");
    // A missing trusted file names the URI and the path.
    fs::remove_file(dir.path().join("labels.txt")).unwrap();
    let m = Manifest::from_toml(GOOD).unwrap();
    let e = m
        .hash_trusted_files(dir.path(), &mut |_, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("file:labels.txt") && e.contains("labels.txt"),
        "{e}"
    );
}

#[test]
fn signer_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signer.pem");
    let key = SignerKey::generate();
    key.save(&path).unwrap();
    assert_eq!(SignerKey::load(&path).unwrap().public(), key.public());
    assert!(
        SignerKey::generate().save(&path).is_err(),
        "must not overwrite"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    fs::write(dir.path().join("junk.pem"), b"junk").unwrap();
    assert!(SignerKey::load(&dir.path().join("junk.pem")).is_err());
}

/// The manifests the documentation shows are valid, so the docs cannot drift from the schema.
#[test]
fn documented_manifests_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = fs::read_to_string(root.join("docs/MANIFEST.md")).unwrap();
    let block = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    let m = Manifest::from_toml(block).unwrap_or_else(|e| panic!("docs/MANIFEST.md: {e}"));
    assert_eq!(m.fs.mounts.len(), 3);
    let example = fs::read_to_string(root.join("examples/ppml/classify.toml")).unwrap();
    let m = Manifest::from_toml(&example).unwrap_or_else(|e| panic!("classify.toml: {e}"));
    assert_eq!(m.loader.entrypoint.as_ref().unwrap().builtin(), "classify");
    let lib = fs::read_to_string(root.join("crates/ward-manifest/src/lib.rs")).unwrap();
    let block: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//! "))
        .skip_while(|l| *l != "```toml")
        .skip(1)
        .take_while(|l| *l != "```")
        .collect::<Vec<_>>()
        .join("\n");
    Manifest::from_toml(&block).unwrap_or_else(|e| panic!("lib.rs example: {e}"));
}

const PROGRAM: &str = r#"
[libos]
entrypoint = "/usr/bin/python3"

[loader]
argv = ["python3", "/app/main.py"]

[fs]
start_dir = "/app"

[[fs.mounts]]
path = "/usr"
uri = "file:/usr"

[[fs.mounts]]
path = "/app"
uri = "file:app"
"#;

#[test]
fn a_program_manifest_names_its_program_and_working_directory() {
    let m = Manifest::from_toml(PROGRAM).unwrap();
    assert_eq!(
        m.workload(),
        Some(Workload::Program(
            &WorkloadPath::try_from("/usr/bin/python3".to_string()).unwrap()
        ))
    );
    assert_eq!(m.workload_name(), "/usr/bin/python3");
    assert!(m.loader.entrypoint.is_none());
    assert_eq!(m.fs.start_dir.as_ref().unwrap().as_str(), "/app");
    // A built-in manifest keeps serialising exactly as before: no libos, no start_dir.
    let builtin = Manifest::from_toml(GOOD).unwrap();
    let json = serde_json::to_string(&builtin).unwrap();
    assert!(
        !json.contains("libos") && !json.contains("start_dir"),
        "{json}"
    );
}

#[test]
fn a_program_manifest_is_refused_when_it_names_two_workloads_or_none() {
    let both = PROGRAM.replace("[loader]\n", "[loader]\nentrypoint = \"ward:checksum\"\n");
    assert!(err(&both).contains("not both"), "{}", err(&both));
    let none = "[loader]\nargv = []\n";
    assert!(err(none).contains("no workload"), "{}", err(none));
    // The program must be served by a chroot mount (as a trusted file).
    let outside = PROGRAM.replace(
        "entrypoint = \"/usr/bin/python3\"",
        "entrypoint = \"/opt/python3\"",
    );
    let e = err(&outside);
    assert!(
        e.contains("libos.entrypoint") && e.contains("chroot mount"),
        "{e}"
    );
    // A working directory under no mount, and one for a built-in.
    let nowhere = PROGRAM.replace("start_dir = \"/app\"", "start_dir = \"/srv\"");
    assert!(err(&nowhere).contains("fs.start_dir"), "{}", err(&nowhere));
    let builtin_dir =
        "[loader]\nentrypoint = \"ward:checksum\"\nargv = []\n[fs]\nstart_dir = \"/\"\n";
    assert!(
        err(builtin_dir).contains("built-ins"),
        "{}",
        err(builtin_dir)
    );
    // A path where a built-in is expected says how to name a program.
    let path_builtin = "[loader]\nentrypoint = \"/usr/bin/python3\"\n";
    assert!(
        err(path_builtin).contains("[libos]"),
        "{}",
        err(path_builtin)
    );
}

#[test]
fn a_program_may_opt_in_to_the_host_network_and_a_builtin_may_not() {
    let m = Manifest::from_toml(&format!("{PROGRAM}\n[network]\nhost = true\n")).unwrap();
    assert!(m.host_network());
    assert!(!Manifest::from_toml(PROGRAM).unwrap().host_network());
    let builtin = "[loader]\nentrypoint = \"ward:checksum\"\nargv = []\n[network]\nhost = true\n";
    assert!(err(builtin).contains("[network]"), "{}", err(builtin));
    let typo = format!("{PROGRAM}\n[network]\nhosts = true\n");
    assert!(err(&typo).contains("hosts"), "{}", err(&typo));
}

#[test]
fn a_manifest_with_dev_keys_is_a_debug_workload_measured_apart() {
    let production = Manifest::from_toml(PROGRAM).unwrap();
    let dev = Manifest::from_toml(&format!(
        "{PROGRAM}\n[fs.insecure__keys]\ndefault = \"00112233445566778899aabbccddeeff\"\n"
    ))
    .unwrap();
    assert!(!production.is_debug() && dev.is_debug());
    // Its key never shows in Debug output.
    assert!(!format!("{dev:?}").contains("00112233"));
    let runtime = Sha256([7; 32]);
    assert_ne!(
        measurement(&production, &runtime),
        measurement(&dev, &runtime)
    );
    let limit = Manifest::from_toml(&format!("{PROGRAM}\n[fs]\nwhole_read_limit = \"2048K\"\n"));
    // `[fs]` is already a table in PROGRAM; the key goes there.
    assert!(limit.is_err());
    let limit = Manifest::from_toml(&PROGRAM.replace(
        "start_dir = \"/app\"",
        "start_dir = \"/app\"\nwhole_read_limit = \"2048K\"",
    ))
    .unwrap();
    assert_eq!(limit.fs.whole_read_limit.unwrap().to_string(), "2M");
    for bad in ["0", "65G", "12Q", "-1K"] {
        assert!(
            Manifest::from_toml(&PROGRAM.replace(
                "start_dir = \"/app\"",
                &format!("start_dir = \"/app\"\nwhole_read_limit = \"{bad}\""),
            ))
            .is_err(),
            "{bad} accepted"
        );
    }
}
