//! `ward sign` + `ward run` end to end on loopback: the sim TEE, a real provisioning server, a
//! protected input and output, and every violation refused with no output written.

use std::path::Path;
use std::process::{Command, Stdio};

mod common;
use common::{failed as fails, free_port, serve, succeeded as ok, ward};

fn manifest(port: u16, argv: &str, extra: &str) -> String {
    format!(
        r#"[loader]
entrypoint = "ward:checksum"
argv = [{argv}]

[[fs.mounts]]
type = "encrypted"
path = "/data"
uri = "file:encrypted"

[[fs.mounts]]
type = "encrypted"
path = "/out"
uri = "file:out"

[[fs.mounts]]
path = "/app"
uri = "file:app"

{extra}
[sgx]
isv_prod_id = 7
isv_svn = 2
trusted_files = ["file:app/"]

[provision]
servers = ["127.0.0.1:{port}"]
ca_chain = "file:srv/ca.pem"
secrets = [{{ name = "wrap_key", key_name = "default" }}]
"#
    )
}

/// Signs `name.toml`, returns its measurement.
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

fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write;
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    let mut s = String::new();
    write!(s, "{}", String::from_utf8_lossy(&out.stdout[..64])).unwrap();
    s
}

#[test]
fn sign_run_and_every_violation() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let port = free_port();
    ok(ward(p, &["provision", "init", "--dir", "srv"]));
    ok(ward(p, &["sign", "keygen", "-o", "signer.pem"]));
    for dir in ["plain", "encrypted", "out", "app"] {
        std::fs::create_dir_all(p.join(dir)).unwrap();
    }
    std::fs::write(p.join("app/labels.txt"), b"tabby\ntiger cat\n").unwrap();
    let v1 = b"version one of the secret input".to_vec();
    let v2 = b"version two of the secret input, longer".to_vec();
    let key = "srv/secrets/wrap_key";
    let encrypt = |input: &str, output: &str| {
        ok(ward(
            p,
            &["pf", "encrypt", "-w", key, "-i", input, "-o", output],
        ));
    };
    std::fs::write(p.join("plain/input.txt"), &v1).unwrap();
    encrypt("plain/input.txt", "encrypted/input.txt");
    std::fs::copy(p.join("encrypted/input.txt"), p.join("encrypted/input.v1")).unwrap();
    std::fs::write(p.join("plain/input.txt"), &v2).unwrap();
    encrypt("plain/input.txt", "encrypted/input.txt");
    encrypt("plain/input.txt", "encrypted/other.txt");

    let good_argv = r#""--output", "/out/digests.txt", "/data/input.txt", "/app/labels.txt""#;
    let pin = format!(
        "[[fs.pinned]]\npath = \"/data/input.txt\"\nsha256 = \"{}\"\n",
        sha256_hex(&v2)
    );
    let m_good = sign(p, "good", &manifest(port, good_argv, &pin));
    // A protected file copied over another name: bound to encrypted/input.txt.
    std::fs::copy(
        p.join("encrypted/input.txt"),
        p.join("encrypted/swapped.txt"),
    )
    .unwrap();
    let m_swap = sign(
        p,
        "swap",
        &manifest(
            port,
            r#""--output", "/out/swap.txt", "/data/swapped.txt""#,
            "",
        ),
    );
    let m_outside = sign(
        p,
        "outside",
        &manifest(port, r#""--output", "/out/outside.txt", "/etc/passwd""#, ""),
    );
    let m_untrusted = sign(
        p,
        "untrusted",
        &manifest(
            port,
            r#""--output", "/out/untrusted.txt", "/app/added-later.txt""#,
            "",
        ),
    );
    // Not in the policy: same workload, another SVN.
    let m_other = sign(
        p,
        "other",
        &manifest(port, good_argv, &pin).replace("isv_svn = 2", "isv_svn = 1"),
    );
    assert_ne!(m_good, m_other);

    let sim_key = std::fs::read_to_string(p.join("srv/policy.toml")).unwrap();
    let sim_key = sim_key
        .lines()
        .find(|l| l.starts_with("simulated_platform_keys"))
        .unwrap()
        .to_string();
    std::fs::write(
        p.join("policy.toml"),
        format!(
            "allow_simulated = true\n{sim_key}\n[[identity]]\nname = \"checksum\"\n\
             mr_enclave = [\"{m_good}\", \"{m_swap}\", \"{m_outside}\", \"{m_untrusted}\"]\n\
             isv_prod_id = 7\nmin_isv_svn = 2\n"
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let (_server, _) = serve(
        p,
        &[
            "--secret",
            &format!("wrap_key={key}"),
            "--policy",
            "policy.toml",
            "--cert",
            "srv/server.pem",
            "--key",
            "srv/server-key.pem",
            "--audit-log",
            "audit.jsonl",
            "--listen",
            &listen,
        ],
    );
    let run = |name: &str| {
        ward(
            p,
            &[
                "run",
                &format!("{name}.signed.toml"),
                "--sim-key",
                "srv/sim-platform.pem",
            ],
        )
    };

    // The good run: a protected output that `ward pf decrypt` opens.
    let out = run("good");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    ok(out);
    assert!(err.contains("NOTICE: simulated TEE"), "{err}");
    ok(ward(
        p,
        &[
            "pf",
            "decrypt",
            "-w",
            key,
            "-i",
            "out/digests.txt",
            "-o",
            "plain/digests.txt",
        ],
    ));
    let digests = std::fs::read_to_string(p.join("plain/digests.txt")).unwrap();
    assert_eq!(
        digests,
        format!(
            "{}  /data/input.txt\n{}  /app/labels.txt\n",
            sha256_hex(&v2),
            sha256_hex(b"tabby\ntiger cat\n")
        )
    );
    std::fs::remove_file(p.join("out/digests.txt")).unwrap();
    let no_output = |what: &str| {
        let left: Vec<_> = std::fs::read_dir(p.join("out")).unwrap().collect();
        assert!(left.is_empty(), "{what}: output left behind: {left:?}");
    };

    // Measurement not in the policy: refused by the server, which tells the workload only the
    // audit record that holds the rule.
    let e = fails(run("other"));
    assert!(
        e.contains("not granted") && e.contains("audit record"),
        "{e}"
    );
    assert!(!e.contains("min_isv_svn") && !e.contains(&m_good), "{e}");
    assert_eq!(
        e.matches("\"wrap_key\"").count(),
        1,
        "the secret is named once: {e}"
    );
    no_output("not in policy");

    // Tampered signed manifest, and an unsigned one.
    let text = std::fs::read_to_string(p.join("good.signed.toml")).unwrap();
    std::fs::write(
        p.join("tampered.signed.toml"),
        text.replace("/out/digests.txt", "/out/evil.txt"),
    )
    .unwrap();
    let e = fails(run("tampered"));
    assert!(
        e.contains("signature") || e.contains("edited after signing"),
        "{e}"
    );
    let e = fails(ward(
        p,
        &["run", "good.toml", "--sim-key", "srv/sim-platform.pem"],
    ));
    assert!(
        e.contains("not a signed manifest") && e.contains("ward sign"),
        "{e}"
    );
    no_output("tampered manifest");

    // A protected file bound to another path.
    let e = fails(run("swap"));
    assert!(e.contains("/data/swapped.txt"), "{e}");
    // The path it is bound to is decrypted metadata, not for the host's error text.
    assert!(!e.contains("encrypted/input.txt"), "{e}");
    no_output("swapped file");

    // Access outside the manifest, and a chroot file that is neither trusted nor allowed.
    let e = fails(run("outside"));
    assert!(e.contains("/etc/passwd") && e.contains("mount"), "{e}");
    // A file added to a trusted directory after signing is not trusted.
    std::fs::write(p.join("app/added-later.txt"), b"sneaky").unwrap();
    let e = fails(run("untrusted"));
    assert!(
        e.contains("/app/added-later.txt") && e.contains("trusted"),
        "{e}"
    );
    no_output("outside");

    // A pinned protected file rolled back to the older version (same key, same path).
    std::fs::copy(p.join("encrypted/input.txt"), p.join("encrypted/input.v2")).unwrap();
    std::fs::copy(p.join("encrypted/input.v1"), p.join("encrypted/input.txt")).unwrap();
    let e = fails(run("good"));
    assert!(e.contains("/data/input.txt") && e.contains("pinned"), "{e}");
    no_output("rollback");
    std::fs::copy(p.join("encrypted/input.v2"), p.join("encrypted/input.txt")).unwrap();

    // A trusted file modified after signing.
    std::fs::write(p.join("app/labels.txt"), b"tabby\nlion\n").unwrap();
    let e = fails(run("good"));
    assert!(e.contains("/app/labels.txt"), "{e}");
    no_output("tampered trusted file");

    // The server's audit log saw the refusal and the grants, never the key.
    let audit = std::fs::read_to_string(p.join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("refused") && audit.contains("granted"),
        "{audit}"
    );
    let key_hex = hex_of(&std::fs::read(p.join(key)).unwrap());
    assert!(!audit.contains(&key_hex));
    // The evidence named the ward manifest itself (its workload claim), not only the enclave.
    assert!(
        audit.contains(&format!("\"workload_measurement\":\"{m_good}\"")),
        "{audit}"
    );
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn sign_refuses_unknown_builtins_and_bad_arguments_before_writing() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    ok(ward(p, &["sign", "keygen", "-o", "signer.pem"]));
    std::fs::create_dir_all(p.join("app")).unwrap();
    std::fs::create_dir_all(p.join("srv")).unwrap();
    std::fs::write(p.join("srv/ca.pem"), "not checked at sign time\n").unwrap();
    let good = manifest(4433, r#""--output", "/out/d.txt", "/data/in.bin""#, "");
    let cases = [
        (
            "typo",
            good.replace("ward:checksum", "ward:chcksum"),
            "entrypoint ward:chcksum is not a built-in workload of this runtime; known: \
             ward:checksum, ward:classify",
        ),
        (
            "noinput",
            manifest(4433, r#""--output", "/out/d.txt""#, ""),
            "caused by: ward:checksum\n  caused by: usage: name at least one input",
        ),
        (
            "badflag",
            good.replace("ward:checksum", "ward:classify").replace(
                r#""--output", "/out/d.txt", "/data/in.bin""#,
                r#""--model", "/app/m", "--labels", "/app/l", "--image", "/data/i", "--output", "/out/r", "--topp", "3""#,
            ),
            "caused by: ward:classify\n  caused by: usage: unexpected argument '--topp' found",
        ),
    ];
    for (name, text, expected) in cases {
        std::fs::write(p.join(format!("{name}.toml")), text).unwrap();
        let e = fails(ward(
            p,
            &["sign", "--key", "signer.pem", &format!("{name}.toml")],
        ));
        assert!(e.contains(expected), "{name}: {e}");
        assert!(!p.join(format!("{name}.signed.toml")).exists(), "{name}");
    }
}
