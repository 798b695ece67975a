//! `ward provision` end to end on loopback: init, serve, fetch, refusals, bench.

mod common;
use common::{serve, ward};

#[test]
fn init_serve_fetch_and_refuse() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let mre = "5a".repeat(32);
    let out = ward(
        p,
        &[
            "provision",
            "init",
            "--dir",
            "srv",
            "--mr-enclave",
            &mre,
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !ward(p, &["provision", "init", "--dir", "srv"])
            .status
            .success(),
        "refuses a non-empty dir"
    );
    let (_server, addr) = serve(p, &["--config", "srv/server.toml"]);

    let fetch = |mr: &str, outdir: &str| {
        ward(
            p,
            &[
                "provision",
                "fetch",
                "--servers",
                &addr,
                "--ca",
                "srv/ca.pem",
                "--name",
                "wrap_key",
                "-o",
                outdir,
                "--sim-key",
                "srv/sim-platform.pem",
                "--mr-enclave",
                mr,
            ],
        )
    };
    let ok = fetch(&mre, "got");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        std::fs::read(p.join("got/wrap_key")).unwrap(),
        std::fs::read(p.join("srv/secrets/wrap_key")).unwrap()
    );

    let wrong = "00".repeat(32);
    let refused = fetch(&wrong, "nothing");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    // The client is told which audit record says why, not why (nor what the policy expects).
    assert!(
        err.contains("not granted") && err.contains("audit record"),
        "{err}"
    );
    assert!(!err.contains("mr_enclave") && !err.contains(&mre), "{err}");
    assert!(!p.join("nothing/wrap_key").exists());

    // The audit log records both decisions and never the secret.
    let audit = std::fs::read_to_string(p.join("srv/audit.jsonl")).unwrap();
    let record = err
        .split("audit record ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let line = audit.lines().find(|l| l.contains(record)).unwrap();
    assert!(line.contains("mr_enclave") && line.contains(&mre), "{line}");
    assert!(
        audit.contains("\"granted\"") && audit.contains("\"refused\""),
        "{audit}"
    );
    let secret = std::fs::read(p.join("srv/secrets/wrap_key")).unwrap();
    assert!(!audit.contains(&hex::encode(&secret)));
}

#[test]
fn bench_reports_a_summary_line() {
    let d = tempfile::tempdir().unwrap();
    let out = ward(
        d.path(),
        &["provision", "bench", "--clients", "4", "--requests", "3"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.starts_with("12 provisions, 0 errors, "), "{line}");
    assert!(line.contains("p50") && line.contains("p99"));
}

#[test]
fn one_key_mode_without_a_config_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    // Without --mr-enclave the policy refuses every client until edited, and init says so.
    let out = ward(p, &["provision", "init", "--dir", "srv"]);
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("REFUSES EVERY CLIENT"), "{said}");
    let placeholder = std::fs::read_to_string(p.join("srv/policy.toml")).unwrap();
    // The edited policy names the workload fetched below (simulated, all-zero identity).
    let placeholder_line = placeholder
        .lines()
        .find(|l| l.starts_with("mr_enclave"))
        .unwrap()
        .to_string();
    std::fs::write(
        p.join("edited.toml"),
        placeholder.replace(
            &placeholder_line,
            &format!("mr_enclave = \"{}\"", "00".repeat(32)),
        ),
    )
    .unwrap();
    let serve_with = |policy: &str| {
        serve(
            p,
            &[
                "--secret",
                "default=srv/secrets/wrap_key",
                "--policy",
                policy,
                "--cert",
                "srv/server.pem",
                "--key",
                "srv/server-key.pem",
                "--listen",
                "127.0.0.1:0",
                "--audit-log",
                "audit.jsonl",
            ],
        )
    };
    let fetch = |addr: &str| {
        ward(
            p,
            &[
                "provision",
                "fetch",
                "--servers",
                addr,
                "--ca",
                "srv/ca.pem",
                "--name",
                "default",
                "-o",
                "got",
                "--sim-key",
                "srv/sim-platform.pem",
            ],
        )
    };
    let (refusing, addr) = serve_with("srv/policy.toml");
    let out = fetch(&addr);
    assert!(!out.status.success(), "the placeholder policy granted");
    assert!(!p.join("got/default").exists());
    // The console shows the decision: which secret, refused, the workload and the rule.
    let console = refusing.console_until("refused");
    let line = console.iter().find(|l| l.contains("refused")).unwrap();
    assert!(
        line.contains("\"default\"")
            && line.contains("sim workload")
            && line.contains("mr_enclave"),
        "{console:?}"
    );
    drop(refusing);

    let (server, addr) = serve_with("edited.toml");
    let out = fetch(&addr);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = server.console_until("granted");
    assert!(
        console
            .iter()
            .any(|l| l.contains("granted \"default\" to sim workload")),
        "{console:?}"
    );
    assert_eq!(
        std::fs::read(p.join("got/default")).unwrap(),
        std::fs::read(p.join("srv/secrets/wrap_key")).unwrap()
    );
    let audit = std::fs::read_to_string(p.join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("granted") && audit.contains("PLACEHOLDER"),
        "{audit}"
    );
    // --secret without its companions is refused by the argument parser.
    assert!(!ward(p, &["provision", "serve", "--secret", "a=b"])
        .status
        .success());
}

#[test]
fn signer_svn_and_debug_violations_are_refused_with_the_rule() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    assert!(ward(p, &["provision", "init", "--dir", "srv"])
        .status
        .success());
    let key_line = std::fs::read_to_string(p.join("srv/policy.toml"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("simulated_platform_keys"))
        .unwrap()
        .to_string();
    let (mre, mrs) = ("11".repeat(32), "22".repeat(32));
    std::fs::write(
        p.join("strict.toml"),
        format!("allow_simulated = true\n{key_line}\n[[identity]]\nmr_enclave = \"{mre}\"\nmr_signer = \"{mrs}\"\nmin_isv_svn = 2\n"),
    )
    .unwrap();
    let (_server, addr) = serve(
        p,
        &[
            "--secret",
            "k=srv/secrets/wrap_key",
            "--policy",
            "strict.toml",
            "--cert",
            "srv/server.pem",
            "--key",
            "srv/server-key.pem",
            "--listen",
            "127.0.0.1:0",
            "--audit-log",
            "audit.jsonl",
        ],
    );
    let fetch = |extra: &[&str]| {
        let mut args = vec![
            "provision",
            "fetch",
            "--servers",
            &addr,
            "--ca",
            "srv/ca.pem",
            "--name",
            "k",
            "-o",
            "got",
            "--sim-key",
            "srv/sim-platform.pem",
            "--mr-enclave",
            &mre,
        ];
        args.extend_from_slice(extra);
        ward(p, &args)
    };
    assert!(fetch(&["--mr-signer", &mrs, "--isv-svn", "2"])
        .status
        .success());
    for (extra, rule) in [
        (
            vec!["--mr-signer", &"33".repeat(32), "--isv-svn", "2"],
            "mr_signer",
        ),
        (vec!["--mr-signer", &mrs, "--isv-svn", "1"], "min_isv_svn"),
        (
            vec!["--mr-signer", &mrs, "--isv-svn", "2", "--debug"],
            "allow_debug",
        ),
    ] {
        let out = fetch(&extra);
        assert!(!out.status.success(), "{rule}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains(rule), "{rule} told to the client: {err}");
        let record = err
            .split("audit record ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        let audit = std::fs::read_to_string(p.join("audit.jsonl")).unwrap();
        let line = audit.lines().find(|l| l.contains(record)).unwrap();
        assert!(line.contains(rule), "{rule}: {line}");
    }
    let audit = std::fs::read_to_string(p.join("audit.jsonl")).unwrap();
    for rule in ["mr_signer", "min_isv_svn", "allow_debug"] {
        assert!(audit.contains(rule), "audit lacks {rule}: {audit}");
    }
}

/// SIGHUP re-reads the configuration and its policies: a broken policy keeps the old one (and
/// the console says why), a valid one takes effect without a restart.
#[test]
fn sighup_reloads_policies_and_keeps_the_old_ones_when_broken() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let (mine, other) = ("5a".repeat(32), "6b".repeat(32));
    let out = ward(
        p,
        &["provision", "init", "--dir", "srv", "--mr-enclave", &mine],
    );
    assert!(out.status.success());
    let (server, addr) = serve(p, &["--config", "srv/server.toml"]);
    let fetch = |mr: &str| {
        let _ = std::fs::remove_dir_all(p.join("got"));
        ward(
            p,
            &[
                "provision",
                "fetch",
                "--servers",
                &addr,
                "--ca",
                "srv/ca.pem",
                "--name",
                "wrap_key",
                "-o",
                "got",
                "--sim-key",
                "srv/sim-platform.pem",
                "--mr-enclave",
                mr,
            ],
        )
        .status
        .success()
    };
    assert!(fetch(&mine));
    let good = std::fs::read_to_string(p.join("srv/policy.toml")).unwrap();

    std::fs::write(p.join("srv/policy.toml"), "allow_debug = \"yes\"\n").unwrap();
    server.hangup();
    let console = server.console_until("reload on SIGHUP failed");
    let line = console
        .iter()
        .find(|l| l.contains("reload on SIGHUP failed"));
    assert!(
        line.is_some_and(|l| l.contains("policy.toml") && l.contains("previous")),
        "{console:?}"
    );
    assert!(fetch(&mine), "the old policy still serves");

    std::fs::write(p.join("srv/policy.toml"), good.replace(&mine, &other)).unwrap();
    server.hangup();
    let console = server.console_until("reloaded on SIGHUP");
    assert!(
        console
            .iter()
            .any(|l| l.contains("reloaded on SIGHUP: serving 1 secret(s) (wrap_key)")),
        "{console:?}"
    );
    assert!(!fetch(&mine), "the new policy refuses the old workload");
    assert!(fetch(&other), "and accepts the new one");
}
