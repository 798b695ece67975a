//! One provisioning server per owner: each secret may name its own servers and CA chain.

use std::fs;
use ward_manifest::*;

/// A model owner's key for /model and a data owner's key for /data, each from her own server.
const TWO_OWNERS: &str = r#"
[loader]
entrypoint = "ward:checksum"
argv = ["--output", "/data/digests.txt", "/model/weights.bin", "/data/input.bin"]

[[fs.mounts]]
type = "encrypted"
path = "/model"
uri = "file:model"
key_name = "model"

[[fs.mounts]]
type = "encrypted"
path = "/data"
uri = "file:data"
key_name = "data"

[provision]
[[provision.secrets]]
name = "model_key"
key_name = "model"
servers = ["model-owner.example:4433", "model-owner-2.example:4433"]
ca_chain = "file:model-ca.pem"

[[provision.secrets]]
name = "data_key"
key_name = "data"
servers = ["data-owner.example:4433"]
ca_chain = "file:data-ca.pem"
"#;

fn err(text: &str) -> String {
    Manifest::from_toml(text).unwrap_err().to_string()
}

#[test]
fn each_secret_names_its_owner() {
    let m = Manifest::from_toml(TWO_OWNERS).unwrap();
    let pr = m.provision.as_ref().unwrap();
    assert!(pr.servers.is_empty() && pr.ca_chain.is_none());
    let owners = pr.owners();
    assert_eq!(owners.len(), 2);
    assert_eq!(
        owners[0].servers,
        ["model-owner.example:4433", "model-owner-2.example:4433"]
    );
    assert_eq!(owners[0].ca_chain.uri().as_str(), "file:model-ca.pem");
    assert_eq!(owners[0].secrets, [0]);
    assert_eq!(owners[1].servers, ["data-owner.example:4433"]);
    assert_eq!(owners[1].ca_chain.uri().as_str(), "file:data-ca.pem");
    assert_eq!(owners[1].secrets, [1]);
}

#[test]
fn the_table_serves_secrets_that_name_no_owner() {
    // Gramine's single [provision]: one owner, every secret.
    let one = r#"
[loader]
entrypoint = "ward:checksum"
argv = ["--output", "/data/d.txt", "/data/in.bin"]
[[fs.mounts]]
type = "encrypted"
path = "/data"
uri = "file:data"
[provision]
servers = ["a.example:1", "b.example:2"]
ca_chain = "file:ca.pem"
secrets = [{ name = "wrap_key", key_name = "default" }, { name = "token", env = "TOKEN" }]
"#;
    let m = Manifest::from_toml(one).unwrap();
    let owners = m.provision.as_ref().unwrap().owners();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].secrets, [0, 1]);
    // Its measurement input has none of the new keys: a one-owner manifest measures as before.
    let json = String::from_utf8(canonical(&m)).unwrap();
    assert_eq!(json.matches("\"servers\"").count(), 1, "{json}");
    assert_eq!(json.matches("\"ca_chain\"").count(), 1, "{json}");
    assert!(!json.contains("null"), "{json}");

    // A second owner next to the table's: two groups; a secret naming the table's own servers
    // and CA joins the table's group.
    let mixed = one
        .replace(
            "{ name = \"token\", env = \"TOKEN\" }",
            "{ name = \"token\", env = \"TOKEN\", servers = [\"c.example:3\"], ca_chain = \"file:c.pem\" }, \
             { name = \"t2\", env = \"T2\", servers = [\"a.example:1\", \"b.example:2\"], ca_chain = \"file:ca.pem\" }",
        );
    let m = Manifest::from_toml(&mixed).unwrap();
    let owners = m.provision.as_ref().unwrap().owners();
    assert_eq!(owners.len(), 2);
    assert_eq!(owners[0].secrets, [0, 2]);
    assert_eq!(owners[1].servers, ["c.example:3"]);
    assert_eq!(owners[1].secrets, [1]);
}

#[test]
fn half_an_owner_is_refused_with_line_and_key() {
    // Servers without a CA.
    let text = TWO_OWNERS.replace("ca_chain = \"file:data-ca.pem\"\n", "");
    let e = err(&text);
    assert!(
        e.contains("line 28, provision.secrets[1].servers")
            && e.contains("\"data_key\"")
            && e.contains("ca_chain"),
        "{e}"
    );
    // A CA without servers.
    let text = TWO_OWNERS.replace("servers = [\"data-owner.example:4433\"]\n", "");
    let e = err(&text);
    assert!(
        e.contains("line 28, provision.secrets[1].ca_chain")
            && e.contains("\"data_key\"")
            && e.contains("servers"),
        "{e}"
    );
    // A secret naming neither, with no table-level servers to fall back on.
    let text = TWO_OWNERS
        .replace("servers = [\"data-owner.example:4433\"]\n", "")
        .replace("ca_chain = \"file:data-ca.pem\"\n", "");
    let e = err(&text);
    assert!(
        e.contains("provision")
            && e.contains("\"data_key\" names no servers of its own")
            && e.contains("needs servers = [\"HOST:PORT\", …] and ca_chain"),
        "{e}"
    );
    // A bad or empty server list of a secret's own.
    let e = err(&TWO_OWNERS.replace("\"data-owner.example:4433\"", "\"data-owner.example\""));
    assert!(
        e.contains("line 28, provision.secrets[1].servers[0]") && e.contains("HOST:PORT"),
        "{e}"
    );
    let e = err(&TWO_OWNERS.replace("[\"data-owner.example:4433\"]", "[]"));
    assert!(
        e.contains("provision.secrets[1].servers") && e.contains("at least one server"),
        "{e}"
    );
    // Table servers without the table's CA.
    let e = err(&TWO_OWNERS.replace(
        "[provision]\n",
        "[provision]\nservers = [\"x.example:1\"]\n",
    ));
    assert!(
        e.contains("line 19, provision.servers") && e.contains("add ca_chain = \"file:ca.pem\""),
        "{e}"
    );
    // Unknown keys in a secret stay refused.
    let e = err(&TWO_OWNERS.replace(
        "key_name = \"data\"\nservers",
        "key_name = \"data\"\nserver = [\"y:1\"]\nservers",
    ));
    assert!(e.contains("line 28") && e.contains("server"), "{e}");
}

fn project(dir: &std::path::Path) {
    fs::write(dir.join("model-ca.pem"), b"model owner's CA\n").unwrap();
    fs::write(dir.join("data-ca.pem"), b"data owner's CA\n").unwrap();
}

#[test]
fn sign_pins_every_owners_ca_and_the_measurement_covers_them() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let m = Manifest::from_toml(TWO_OWNERS).unwrap();
    let mut seen = Vec::new();
    let hashed = m
        .hash_trusted_files(dir.path(), &mut |uri, _, _| seen.push(uri.to_string()))
        .unwrap()
        .manifest;
    seen.sort();
    assert_eq!(seen, ["file:data-ca.pem", "file:model-ca.pem"]);
    let pr = hashed.provision.as_ref().unwrap();
    let pins: Vec<String> = pr
        .ca_chains()
        .map(|c| match c {
            TrustedFile::Hashed(h) => h.sha256.to_string(),
            other => panic!("not pinned: {other:?}"),
        })
        .collect();
    use sha2::Digest;
    assert_eq!(
        pins,
        [
            hex::encode(sha2::Sha256::digest(b"model owner's CA\n")),
            hex::encode(sha2::Sha256::digest(b"data owner's CA\n")),
        ]
    );
    let runtime = Sha256([9; 32]);
    let signed = SignerKey::generate().sign(hashed.clone(), runtime).unwrap();
    let text = signed.to_toml();
    let back = SignedManifest::from_toml(&text).unwrap();
    assert_eq!(back, signed);
    back.verify(&runtime).unwrap();

    // The second owner's server, or her CA's pin, changed after signing: refused.
    for (from, to) in [
        ("data-owner.example:4433", "evil.example:4433"),
        (pins[1].as_str(), pins[0].as_str()),
    ] {
        assert!(text.contains(from), "{from} in {text}");
        let e = SignedManifest::from_toml(&text.replace(from, to))
            .unwrap()
            .verify(&runtime)
            .unwrap_err();
        assert!(
            e.to_string().contains("bad signature") || e.to_string().contains("edited"),
            "{e}"
        );
    }
    // And the measurement differs with another owner's server.
    let mut other = hashed.clone();
    other.provision.as_mut().unwrap().secrets[1].servers = Some(vec!["evil.example:1".into()]);
    assert_ne!(
        measurement(&other, &runtime),
        measurement(&hashed, &runtime)
    );

    // An unhashed second CA is not a signed manifest.
    let mut half = hashed;
    half.provision.as_mut().unwrap().secrets[1].ca_chain =
        Some(TrustedFile::Uri(FileUri::from_path("data-ca.pem").unwrap()));
    let e = SignerKey::generate().sign(half, runtime).unwrap_err();
    assert!(
        e.to_string().contains("file:data-ca.pem has no sha256"),
        "{e}"
    );
}

#[test]
fn a_stale_pin_of_a_second_ca_is_reported_when_signing() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let text = TWO_OWNERS.replace(
        "ca_chain = \"file:data-ca.pem\"",
        "ca_chain = { uri = \"file:data-ca.pem\", sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\" }",
    );
    let e = Manifest::from_toml(&text)
        .unwrap()
        .hash_trusted_files(dir.path(), &mut |_, _, _| {})
        .unwrap_err();
    assert!(matches!(e, Error::StaleHash { .. }), "{e}");
}

#[test]
fn the_documented_two_owner_example_parses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = fs::read_to_string(root.join("docs/MANIFEST.md")).unwrap();
    let block = doc
        .split("```toml\n")
        .find(|b| b.contains("model_key"))
        .and_then(|b| b.split("```").next())
        .expect("a two-owner example in docs/MANIFEST.md");
    let m = Manifest::from_toml(block).unwrap_or_else(|e| panic!("docs/MANIFEST.md: {e}"));
    let owners = m.provision.as_ref().unwrap().owners();
    assert_eq!(owners.len(), 2);
    assert_ne!(owners[0].ca_chain, owners[1].ca_chain);
}

#[test]
fn two_owners_may_each_serve_a_secret_of_the_same_name() {
    // `ward provision init` names every owner's key `wrap_key`: each is fetched from its own
    // owner, so the names need not differ.
    let text = TWO_OWNERS
        .replace("name = \"model_key\"", "name = \"wrap_key\"")
        .replace("name = \"data_key\"", "name = \"wrap_key\"");
    let m = Manifest::from_toml(&text).unwrap();
    let owners = m.provision.as_ref().unwrap().owners();
    assert_eq!(owners.len(), 2);
    assert_eq!(
        (owners[0].secrets.as_slice(), owners[1].secrets.as_slice()),
        (&[0][..], &[1][..])
    );
}
