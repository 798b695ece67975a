//! `ward serve` + `ward client` end to end on loopback: the model owner's provisioning server
//! releases the model's key to the measured service; a client whose policy names the service
//! gets the same top-5 as `ward classify`, one whose policy does not is refused in the handshake
//! before anything is sent; bad requests get a 4xx with the reason.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod common;
use common::{failed, free_port, serve as provision_serve, succeeded, ward};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn manifest(port: u16, svn: u16) -> String {
    format!(
        r#"[loader]
entrypoint = "ward:serve"
argv = ["--model", "/model/model.onnx", "--labels", "/model/labels.txt", "--spec", "/app/model.toml"]

[[fs.mounts]]
type = "encrypted"
path = "/model"
uri = "file:encrypted"
key_name = "default"

[[fs.mounts]]
path = "/app"
uri = "file:app"

[sgx]
isv_prod_id = 3
isv_svn = {svn}
trusted_files = ["file:app/"]

[provision]
servers = ["127.0.0.1:{port}"]
ca_chain = "file:srv/ca.pem"
secrets = [{{ name = "model_key", key_name = "default" }}]
"#
    )
}

/// `ward serve` as a child, killed when dropped; its address from its stdout, and its stderr.
struct Service(Child, String, Option<std::thread::JoinHandle<String>>);

impl Service {
    /// SIGTERM, as a service manager stops it; its exit status and stderr.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let exit = loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "ward serve did not stop on SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        (exit, self.2.take().unwrap().join().unwrap())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_service(p: &Path, manifest: &str) -> Service {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args([
            "serve",
            manifest,
            "--listen",
            "127.0.0.1:0",
            "--sim-key",
            "srv/sim-platform.pem",
            "--max-body",
            "2000000",
        ])
        .current_dir(p)
        // Every request logged: the log must still hold nothing of any image or result.
        .env("WARD_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ward serve");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let Some(addr) = line.trim().strip_prefix("listening on ") else {
        let _ = child.wait();
        panic!("ward serve did not start: {}", errors.join().unwrap());
    };
    Service(child, addr.to_owned(), Some(errors))
}

/// The client's policy: the simulated platform of this test, and the given measurements.
fn client_policy(p: &Path, name: &str, measurements: &[&str]) {
    let srv = std::fs::read_to_string(p.join("srv/policy.toml")).unwrap();
    let sim_key = srv
        .lines()
        .find(|l| l.starts_with("simulated_platform_keys"))
        .unwrap();
    let list = measurements
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        p.join(name),
        format!(
            "allow_simulated = true\n{sim_key}\n\n[[identity]]\nname = \"classifier\"\n\
             mr_enclave = [{list}]\nisv_prod_id = 3\nmin_isv_svn = 2\n"
        ),
    )
    .unwrap();
}

fn curl(args: &[&str]) -> Option<(u16, String)> {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_owned()))
}

fn labels(json: &serde_json::Value) -> Vec<String> {
    json.as_array()
        .unwrap_or_else(|| panic!("an array of predictions: {json}"))
        .iter()
        .map(|p| p["label"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn attested_classification_and_refusal_before_sending() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let models = repo().join("models/efficientnet-lite0");
    let image = repo().join("models/images/chelsea.png");
    let image = image.to_str().unwrap();
    succeeded(ward(p, &["provision", "init", "--dir", "srv"]));
    succeeded(ward(p, &["sign", "keygen", "-o", "signer.pem"]));
    for dir in ["encrypted", "app"] {
        std::fs::create_dir_all(p.join(dir)).unwrap();
    }
    std::fs::copy(models.join("model.toml"), p.join("app/model.toml")).unwrap();
    for f in ["model.onnx", "labels.txt"] {
        let input = models.join(f);
        succeeded(ward(
            p,
            &[
                "pf",
                "encrypt",
                "-w",
                "srv/secrets/wrap_key",
                "-i",
                input.to_str().unwrap(),
                "-o",
                &format!("encrypted/{f}"),
            ],
        ));
    }
    let port = free_port();
    let sign = |name: &str, svn: u16| {
        std::fs::write(p.join(format!("{name}.toml")), manifest(port, svn)).unwrap();
        let out = succeeded(ward(
            p,
            &[
                "sign",
                "--key",
                "signer.pem",
                "--json",
                &format!("{name}.toml"),
            ],
        ));
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        j["measurement"].as_str().unwrap().to_owned()
    };
    let m_serve = sign("serve", 2);
    let m_other = sign("other", 3);
    assert_ne!(m_serve, m_other);

    // The model owner releases the key to the service's measurement only.
    client_policy(p, "owner-policy.toml", &[&m_serve]);
    let listen = format!("127.0.0.1:{port}");
    let (_owner, _) = provision_serve(
        p,
        &[
            "--secret",
            "model_key=srv/secrets/wrap_key",
            "--policy",
            "owner-policy.toml",
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
    let service = start_service(p, "serve.signed.toml");
    let server = service.1.clone();
    let server = server.as_str();

    // A client that names the service: the same top-5 as `ward classify` on the plain model.
    client_policy(p, "good.toml", &[&m_serve]);
    let out = succeeded(ward(
        p,
        &[
            "client",
            "classify",
            "--server",
            server,
            "--policy",
            "good.toml",
            "--image",
            image,
            "--json",
        ],
    ));
    let served: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        served["evidence"]["workload"]["measurement"],
        m_serve.as_str()
    );
    let local = succeeded(ward(
        p,
        &[
            "classify",
            "--model",
            models.join("model.onnx").to_str().unwrap(),
            "--labels",
            models.join("labels.txt").to_str().unwrap(),
            "--spec",
            models.join("model.toml").to_str().unwrap(),
            "--image",
            image,
            "--json",
        ],
    ));
    let local: serde_json::Value = serde_json::from_str(&local).unwrap();
    assert_eq!(labels(&served["predictions"]), labels(&local));
    assert!(labels(&local)[0].contains("cat"), "{local}");

    // `ward client attest` says what the server is.
    let out = succeeded(ward(
        p,
        &[
            "client",
            "attest",
            "--server",
            server,
            "--policy",
            "good.toml",
        ],
    ));
    assert!(out.contains(&m_serve) && out.contains("ACCEPTED"), "{out}");

    // A client whose policy names another measurement refuses in the handshake, with the
    // rule, and the server classified nothing more.
    client_policy(p, "other.toml", &[&m_other]);
    let err = failed(ward(
        p,
        &[
            "client",
            "classify",
            "--server",
            server,
            "--policy",
            "other.toml",
            "--image",
            image,
        ],
    ));
    assert!(
        err.contains("refused the server") && err.contains("before sending anything"),
        "{err}"
    );
    assert!(
        err.contains("mr_enclave") || err.contains("measurement"),
        "{err}"
    );
    let health = succeeded(ward(
        p,
        &[
            "client",
            "attest",
            "--server",
            server,
            "--policy",
            "good.toml",
            "--json",
        ],
    ));
    assert!(health.contains("\"valid\": true"), "{health}");

    // A load test: 64 concurrent clients, each verifying the server, no errors; then eight
    // more connecting afresh for every request.
    for (clients, requests, new) in [("64", 128, false), ("8", 16, true)] {
        let requests_arg = requests.to_string();
        let mut args = vec![
            "client",
            "bench",
            "--server",
            server,
            "--policy",
            "good.toml",
            "--image",
            image,
            "--clients",
            clients,
            "--requests",
            &requests_arg,
            "--json",
        ];
        if new {
            args.push("--new-connections");
        }
        let out = succeeded(ward(p, &args));
        let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(summary["ok"], requests, "{summary}");
        assert_eq!(summary["errors"], 0, "{summary}");
    }

    // The HTTP surface, with a client that verifies nothing (curl -k): what a careless client
    // would see, and the 4xx reasons.
    let base = format!("https://{server}");
    let Some((code, body)) = curl(&[&format!("{base}/v1/health")]) else {
        eprintln!("SKIPPED the HTTP-surface checks: curl is not installed");
        return;
    };
    assert_eq!(code, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    // One from `classify`, 144 from the load tests; the refused client sent nothing.
    assert_eq!(health["stats"]["classified"], 145, "{health}");
    assert_eq!(health["classes"], 1000);

    let (code, body) = curl(&[
        "--http2",
        "-F",
        &format!("image=@{image}"),
        &format!("{base}/v1/classify?top_k=2"),
    ])
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(labels(&j["predictions"]), labels(&local)[..2]);

    let junk = p.join("junk.bin");
    std::fs::write(&junk, b"this is not an image at all").unwrap();
    let (code, body) = curl(&[
        "--data-binary",
        &format!("@{}", junk.display()),
        &format!("{base}/v1/classify"),
    ])
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not an image"), "{body}");

    let big = p.join("big.bin");
    std::fs::write(&big, vec![0u8; 2_100_000]).unwrap();
    // HTTP/1.1: an HTTP/2 client sees the stream reset once the server stops reading.
    let (code, body) = curl(&[
        "--http1.1",
        "--data-binary",
        &format!("@{}", big.display()),
        &format!("{base}/v1/classify"),
    ])
    .unwrap();
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("2000000 bytes"), "{body}");

    let (code, body) =
        curl(&[&format!("{base}/v1/classify?top_k=0"), "--data-binary", "x"]).unwrap();
    assert_eq!(code, 400, "{body}");
    let (code, body) = curl(&[&format!("{base}/v1/nothing")]).unwrap();
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("/v1/classify"), "{body}");
    let (code, body) = curl(&[&format!("{base}/v1/openapi.json")]).unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("\"openapi\":\"3.1.0\""), "{body}");
    let (code, body) = curl(&[&format!("{base}/v1/attestation")]).unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains("BEGIN CERTIFICATE") && body.contains(&m_serve),
        "{body}"
    );

    // SIGTERM stops it gracefully; nothing of any request is in its log.
    let (exit, stderr) = service.terminate();
    assert!(exit.success(), "{stderr}");
    assert!(stderr.contains("stopped;"), "{stderr}");
    assert!(
        stderr.contains("POST /v1/classify"),
        "requests are logged: {stderr}"
    );
    for secret in ["tabby", "tiger", "Egyptian", "probability"] {
        assert!(
            !stderr.contains(secret),
            "a result reached the log: {stderr}"
        );
    }
}

#[test]
fn serve_refuses_what_it_cannot_serve() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let err = failed(ward(p, &["serve", "missing.signed.toml"]));
    assert!(err.contains("is not a file"), "{err}");
    // `ward run` of a service manifest says to use `ward serve`.
    succeeded(ward(p, &["sim", "init", "-o", "sim.pem"]));
    succeeded(ward(p, &["sign", "keygen", "-o", "signer.pem"]));
    std::fs::create_dir_all(p.join("m")).unwrap();
    std::fs::write(
        p.join("serve.toml"),
        "[loader]\nentrypoint = \"ward:serve\"\nargv = [\"--model\", \"/m/model.onnx\", \"--labels\", \"/m/labels.txt\"]\n\n\
         [[fs.mounts]]\npath = \"/m\"\nuri = \"file:m\"\n\n[sgx]\ntrusted_files = [\"file:m/\"]\n",
    )
    .unwrap();
    succeeded(ward(p, &["sign", "--key", "signer.pem", "serve.toml"]));
    let err = failed(ward(
        p,
        &["run", "serve.signed.toml", "--sim-key", "sim.pem"],
    ));
    assert!(err.contains("ward serve SIGNED_MANIFEST"), "{err}");
    // A manifest with a typo in its arguments is refused at sign time.
    std::fs::write(
        p.join("typo.toml"),
        "[loader]\nentrypoint = \"ward:serve\"\nargv = [\"--modle\", \"/m/model.onnx\"]\n",
    )
    .unwrap();
    let err = failed(ward(p, &["sign", "--key", "signer.pem", "typo.toml"]));
    assert!(
        err.contains("--modle") || err.contains("unexpected argument"),
        "{err}"
    );
    // Not a ward:serve manifest.
    std::fs::write(
        p.join("sum.toml"),
        "[loader]\nentrypoint = \"ward:checksum\"\nargv = [\"--output\", \"/m/x\", \"/m/y\"]\n\n\
         [[fs.mounts]]\npath = \"/m\"\nuri = \"file:m\"\n",
    )
    .unwrap();
    succeeded(ward(p, &["sign", "--key", "signer.pem", "sum.toml"]));
    let err = failed(ward(
        p,
        &[
            "serve",
            "sum.signed.toml",
            "--sim-key",
            "sim.pem",
            "--listen",
            "127.0.0.1:0",
        ],
    ));
    assert!(err.contains("not ward:serve"), "{err}");
}
