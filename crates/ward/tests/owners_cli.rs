//! One provisioning server per owner, end to end on loopback: a model owner and a data owner,
//! each with her own CA, server, wrap key and policy; `ward run` fetches each key from its
//! owner's server, and one owner's refusal (or a swapped CA) stops the run before it starts.

use std::path::Path;

mod common;
use common::{failed as fails, free_port, serve, succeeded as ok, ward, Server};

/// The model under /model (the model owner's key), the input under /data and the result under
/// /out (the data owner's key).
fn manifest(model_port: u16, data_port: u16, output: &str) -> String {
    format!(
        r#"[loader]
entrypoint = "ward:checksum"
argv = ["--output", "/out/{output}", "/model/weights.bin", "/data/input.txt"]

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

[[fs.mounts]]
type = "encrypted"
path = "/out"
uri = "file:out"
key_name = "data"

[sgx]
isv_prod_id = 7
isv_svn = 2

[provision]
[[provision.secrets]]
name = "model_key"
key_name = "model"
servers = ["127.0.0.1:{model_port}"]
ca_chain = "file:model-srv/ca.pem"

[[provision.secrets]]
name = "data_key"
key_name = "data"
servers = ["127.0.0.1:{data_port}"]
ca_chain = "file:data-srv/ca.pem"
"#
    )
}

/// Signs `name.toml`; returns its measurement.
fn sign(p: &Path, name: &str, text: &str) -> String {
    std::fs::write(p.join(format!("{name}.toml")), text).unwrap();
    let out = ok(ward(
        p,
        &["sign", "--key", "signer.pem", &format!("{name}.toml")],
    ));
    out.lines()
        .find_map(|l| l.strip_prefix("measurement (MRENCLAVE): "))
        .unwrap_or_else(|| panic!("no measurement in {out}"))
        .to_string()
}

/// Starts owner `dir`'s server on `port`, serving `secret` to the measurements `allowed`.
fn owner_server(
    p: &Path,
    dir: &str,
    port: u16,
    secret: &str,
    sim_key: &str,
    allowed: &[&str],
) -> Server {
    let list = allowed
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        p.join(format!("{dir}/owner-policy.toml")),
        format!(
            "allow_simulated = true\n{sim_key}\n[[identity]]\nname = \"checksum\"\n\
             mr_enclave = [{list}]\nisv_prod_id = 7\nmin_isv_svn = 2\n"
        ),
    )
    .unwrap();
    let (server, _) = serve(
        p,
        &[
            "--secret",
            &format!("{secret}={dir}/secrets/wrap_key"),
            "--policy",
            &format!("{dir}/owner-policy.toml"),
            "--cert",
            &format!("{dir}/server.pem"),
            "--key",
            &format!("{dir}/server-key.pem"),
            "--audit-log",
            &format!("{dir}/owner-audit.jsonl"),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    );
    server
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[test]
fn two_owners_two_servers() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let (model_port, data_port) = (free_port(), free_port());
    assert_ne!(model_port, data_port);
    // Each owner makes her own CA, server certificate and wrap key.
    ok(ward(p, &["provision", "init", "--dir", "model-srv"]));
    ok(ward(p, &["provision", "init", "--dir", "data-srv"]));
    ok(ward(p, &["sign", "keygen", "-o", "signer.pem"]));
    assert_ne!(
        std::fs::read(p.join("model-srv/ca.pem")).unwrap(),
        std::fs::read(p.join("data-srv/ca.pem")).unwrap()
    );
    for dir in ["plain", "model", "data", "out"] {
        std::fs::create_dir_all(p.join(dir)).unwrap();
    }
    let weights = b"the model owner's weights".to_vec();
    let input = b"the data owner's input".to_vec();
    std::fs::write(p.join("plain/weights.bin"), &weights).unwrap();
    std::fs::write(p.join("plain/input.txt"), &input).unwrap();
    let encrypt = |key: &str, input: &str, output: &str| {
        ok(ward(
            p,
            &["pf", "encrypt", "-w", key, "-i", input, "-o", output],
        ));
    };
    encrypt(
        "model-srv/secrets/wrap_key",
        "plain/weights.bin",
        "model/weights.bin",
    );
    encrypt(
        "data-srv/secrets/wrap_key",
        "plain/input.txt",
        "data/input.txt",
    );

    let m_good = sign(p, "good", &manifest(model_port, data_port, "digests.txt"));
    // Another workload: the model owner would serve it, the data owner's policy does not name it.
    let m_other = sign(p, "other", &manifest(model_port, data_port, "other.txt"));
    assert_ne!(m_good, m_other);
    // The signed manifest pins both owners' CAs.
    let signed = std::fs::read_to_string(p.join("good.signed.toml")).unwrap();
    for ca in ["model-srv/ca.pem", "data-srv/ca.pem"] {
        let pin = sha256_hex(&std::fs::read(p.join(ca)).unwrap());
        assert!(signed.contains(&pin), "{ca} not pinned in {signed}");
    }

    // The workload's evidence comes from the model owner's simulated platform; both trust it.
    let sim_key = std::fs::read_to_string(p.join("model-srv/policy.toml"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("simulated_platform_keys"))
        .unwrap()
        .to_string();
    let _model = owner_server(
        p,
        "model-srv",
        model_port,
        "model_key",
        &sim_key,
        &[&m_good, &m_other],
    );
    let _data = owner_server(p, "data-srv", data_port, "data_key", &sim_key, &[&m_good]);
    let run = |name: &str| {
        ward(
            p,
            &[
                "run",
                &format!("{name}.signed.toml"),
                "--sim-key",
                "model-srv/sim-platform.pem",
            ],
        )
    };

    // Each key from its owner's server: the workload reads both mounts.
    ok(run("good"));
    ok(ward(
        p,
        &[
            "pf",
            "decrypt",
            "-w",
            "data-srv/secrets/wrap_key",
            "-i",
            "out/digests.txt",
            "-o",
            "plain/digests.txt",
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(p.join("plain/digests.txt")).unwrap(),
        format!(
            "{}  /model/weights.bin\n{}  /data/input.txt\n",
            sha256_hex(&weights),
            sha256_hex(&input)
        )
    );
    let audit =
        |dir: &str| std::fs::read_to_string(p.join(format!("{dir}/owner-audit.jsonl"))).unwrap();
    // Each server released only its own owner's key.
    assert!(audit("model-srv").contains("model_key") && !audit("model-srv").contains("data_key"));
    assert!(audit("data-srv").contains("data_key") && !audit("data-srv").contains("model_key"));
    std::fs::remove_file(p.join("out/digests.txt")).unwrap();
    let no_output = |what: &str| {
        let left: Vec<_> = std::fs::read_dir(p.join("out")).unwrap().collect();
        assert!(left.is_empty(), "{what}: output left behind: {left:?}");
    };

    // The data owner refuses: the run fails before the workload starts, naming her server and
    // the audit record holding her policy's reason, and writes nothing.
    let e = fails(run("other"));
    let data_server = format!("server 127.0.0.1:{data_port} refused secret \"data_key\"");
    assert!(e.contains(&data_server), "{e}");
    // The reason stays in her audit log; the error names the record.
    assert!(
        e.contains("not granted") && !e.contains("mr_enclave"),
        "{e}"
    );
    let record = e
        .split("audit record ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(audit("data-srv")
        .lines()
        .any(|l| l.contains(record) && l.contains("mr_enclave")));
    assert!(e.contains("file:data-srv/ca.pem"), "{e}");
    assert!(!e.contains(&format!("127.0.0.1:{model_port}")), "{e}");
    no_output("data owner refused");
    let key_hex =
        |dir: &str| hex::encode(std::fs::read(p.join(format!("{dir}/secrets/wrap_key"))).unwrap());
    assert!(!e.contains(&key_hex("model-srv")) && !e.contains(&key_hex("data-srv")));

    // The data owner's CA swapped for another after signing: refused before any server is asked.
    let before = audit("model-srv");
    std::fs::copy(p.join("data-srv/ca.pem"), p.join("data-ca.orig")).unwrap();
    std::fs::copy(p.join("model-srv/ca.pem"), p.join("data-srv/ca.pem")).unwrap();
    let e = fails(run("good"));
    assert!(
        e.contains("file:data-srv/ca.pem") && e.contains("pins"),
        "{e}"
    );
    assert_eq!(audit("model-srv"), before, "no server was contacted");
    no_output("swapped CA");
    std::fs::copy(p.join("data-ca.orig"), p.join("data-srv/ca.pem")).unwrap();
    ok(run("good"));
}

#[test]
fn manifest_python_names_a_second_owners_server_for_one_mount() {
    if !Path::new("/usr/bin/python3").exists() {
        eprintln!("skipped: no /usr/bin/python3");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir_all(p.join("app")).unwrap();
    std::fs::write(p.join("app/infer.py"), "print('hi')\n").unwrap();
    ok(ward(
        p,
        &[
            "manifest",
            "python",
            "app/infer.py",
            "--encrypted",
            "/model=file:model,key=model,server=127.0.0.1:4001,ca=model-ca.pem",
            "--encrypted",
            "/data=file:data",
            "--server",
            "127.0.0.1:4002",
            "--ca",
            "data-ca.pem",
            "-o",
            "infer.toml",
        ],
    ));
    let text = std::fs::read_to_string(p.join("infer.toml")).unwrap();
    for want in [
        "servers = [\"127.0.0.1:4002\"]",
        "ca_chain = \"file:data-ca.pem\"",
        "servers = [\"127.0.0.1:4001\"]",
        "ca_chain = \"file:model-ca.pem\"",
    ] {
        assert!(text.contains(want), "{want} missing from {text}");
    }
    // A mount whose key has no server: refused, naming the options that fix it.
    let e = fails(ward(
        p,
        &[
            "manifest",
            "python",
            "app/infer.py",
            "--encrypted",
            "/data=file:data",
        ],
    ));
    assert!(e.contains("--server") && e.contains("server="), "{e}");
}
