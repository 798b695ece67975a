//! `ward provision policy add|list|remove`: the operator edits a running server's policy without
//! sed. A workload the first-run policy refuses gets its key after `policy add --from-signed` and
//! a SIGHUP; comments survive the edits; an edit that would not load leaves the file as it was.

mod common;
use common::{failed, free_port, serve, succeeded, ward};

const PLACEHOLDER: &str = "PLACEHOLDER: replace with the [[identity]] that `ward sign` prints";

fn manifest(port: u16) -> String {
    format!(
        r#"[loader]
entrypoint = "ward:checksum"
argv = ["--output", "/out/digests.txt", "/data/input.txt"]

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

[provision]
[[provision.secrets]]
name = "wrap_key"
key_name = "data"
servers = ["127.0.0.1:{port}"]
ca_chain = "file:srv/ca.pem"
"#
    )
}

#[test]
fn policy_add_lets_the_signed_workload_in_after_a_reload_and_keeps_the_file_loadable() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let port = free_port();
    succeeded(ward(p, &["provision", "init", "--dir", "srv"]));
    succeeded(ward(p, &["sign", "keygen", "-o", "signer.pem"]));
    for dir in ["plain", "data", "out"] {
        std::fs::create_dir_all(p.join(dir)).unwrap();
    }
    std::fs::write(p.join("plain/input.txt"), b"input").unwrap();
    succeeded(ward(
        p,
        &[
            "pf",
            "encrypt",
            "-w",
            "srv/secrets/wrap_key",
            "-i",
            "plain/input.txt",
            "-o",
            "data/input.txt",
        ],
    ));
    std::fs::write(p.join("job.toml"), manifest(port)).unwrap();
    let out = succeeded(ward(p, &["sign", "--key", "signer.pem", "job.toml"]));
    let measurement = out
        .lines()
        .find_map(|l| l.strip_prefix("measurement (MRENCLAVE): "))
        .unwrap()
        .to_string();
    let server = serve(
        p,
        &[
            "--config",
            "srv/server.toml",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    )
    .0;
    let run = || {
        ward(
            p,
            &[
                "run",
                "job.signed.toml",
                "--sim-key",
                "srv/sim-platform.pem",
            ],
        )
    };
    // The first-run policy refuses every workload.
    failed(run());

    let policy = "srv/policy.toml";
    succeeded(ward(
        p,
        &[
            "provision",
            "policy",
            "add",
            policy,
            "--name",
            "checksum job",
            "--tee",
            "sim",
            "--from-signed",
            "job.signed.toml",
        ],
    ));
    succeeded(ward(
        p,
        &[
            "provision",
            "policy",
            "remove",
            policy,
            "--name",
            PLACEHOLDER,
        ],
    ));
    let text = std::fs::read_to_string(p.join(policy)).unwrap();
    assert!(
        text.contains("# DEVELOPMENT ONLY"),
        "comments kept:\n{text}"
    );
    assert!(!text.contains("PLACEHOLDER"), "{text}");
    assert!(
        text.contains(&format!("workload_measurement = \"{measurement}\"")),
        "{text}"
    );
    let checked = succeeded(ward(p, &["provision", "policy", "check", policy]));
    // The simulated TEE is the only warning: the identity pins both layers.
    assert!(checked.contains("1 warning"), "{checked}");

    server.hangup();
    server.console_until("reloaded on SIGHUP");
    succeeded(run());
    assert!(std::fs::metadata(p.join("out/digests.txt")).unwrap().len() > 0);
    let console = server.console_until("granted");
    assert!(
        console
            .iter()
            .any(|l| l.contains("granted \"wrap_key\"") && l.contains(&measurement)),
        "{console:#?}"
    );

    // `list` shows what the server loads.
    let listed = succeeded(ward(p, &["provision", "policy", "list", policy]));
    assert!(listed.contains("1 identity"), "{listed}");
    assert!(listed.contains("\"checksum job\""), "{listed}");
    assert!(
        listed.contains(&format!("mr_enclave = \"{measurement}\"")),
        "{listed}"
    );

    // Edits that would not load, or are ambiguous, change nothing.
    let before = std::fs::read(p.join(policy)).unwrap();
    let m = "ab".repeat(32);
    for args in [
        // The last identity: the policy would accept no one.
        vec!["remove", policy, "--name", "checksum job"],
        // A name already used.
        vec!["add", policy, "--name", "checksum job", "--mr-enclave", &m],
        // Only the ward layer, on hardware: any enclave could claim it.
        vec![
            "add",
            policy,
            "--name",
            "hw",
            "--from-signed",
            "job.signed.toml",
        ],
        // Not hex of the right length.
        vec!["add", policy, "--name", "bad", "--mr-enclave", "abc"],
        vec!["add", policy, "--name", "bad", "--accept", "rtmr9=00"],
    ] {
        let mut full = vec!["provision", "policy"];
        full.extend(args.iter().copied());
        let err = failed(ward(p, &full));
        assert!(err.starts_with("error: "), "{err}");
        assert_eq!(std::fs::read(p.join(policy)).unwrap(), before, "{args:?}");
    }

    // --dry-run prints and writes nothing.
    let dry = succeeded(ward(
        p,
        &[
            "provision",
            "policy",
            "add",
            policy,
            "--name",
            "next",
            "--mr-enclave",
            &m,
            "--dry-run",
        ],
    ));
    assert!(dry.contains("name = \"next\""), "{dry}");
    assert_eq!(std::fs::read(p.join(policy)).unwrap(), before);
}
