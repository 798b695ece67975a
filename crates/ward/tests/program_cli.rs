//! `ward run` of the user's own, unmodified program: the system `python3` confined to a signed
//! manifest's view, with a real provisioning server on loopback, a protected input, a protected
//! output, and the refusals a data owner relies on. Needs root, `/dev/fuse` and
//! `/usr/bin/python3` (skips, saying why, otherwise).

use std::process::{Command, Output};

mod common;
use common::{confined_skip_reason, free_port, python_trusted, serve, text, ward};

const SCRIPT: &str = r#"
import mmap, os, socket, subprocess, sys

# (a) a protected input, decrypted transparently; a protected output, encrypted transparently.
with open("/data/input.txt") as f:
    data = f.read()
with open("/out/result.txt", "w") as f:
    f.write(data.upper())

# (b) mmap of a protected file.
with open("/data/input.txt", "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    print("mmap:", m[:7].decode())

# (c) a subprocess (another trusted program) reads a protected file.
child = subprocess.run([sys.executable, "-c", "print(open('/data/input.txt').read()[:7])"],
                       capture_output=True, text=True)
print("child:", child.returncode, child.stdout.strip())

# (d) refusals: outside the manifest, a write to a trusted file, an inet socket.
for path in ["/etc/passwd", "/root", "/app/not-listed.txt"]:
    try:
        open(path)
        print("LEAK", path)
    except OSError as e:
        print("absent:", path, e.errno)
try:
    open("/app/main.py", "w")
    print("LEAK trusted writable")
except OSError as e:
    print("trusted read-only:", e.errno)
with open("/out/result.txt", "a") as f:
    f.write("appended\n")
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    print("LEAK inet")
except OSError as e:
    print("inet:", e.errno)
print("uid:", os.getuid())
sys.exit(int(os.environ.get("WARD_TEST_EXIT", "0")))
"#;

#[test]
fn python_reads_protected_files_and_writes_a_protected_result_confined() {
    if let Some(reason) = confined_skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let port = free_port();
    let ok = |out: Output| {
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
        (stdout, stderr)
    };
    ok(ward(p, &["provision", "init", "--dir", "srv"]));
    ok(ward(p, &["sign", "keygen", "-o", "signer.pem"]));
    for dir in ["plain", "enc", "out", "app"] {
        std::fs::create_dir_all(p.join(dir)).unwrap();
    }
    std::fs::write(p.join("app/main.py"), SCRIPT).unwrap();
    std::fs::write(p.join("app/not-listed.txt"), b"not for the program").unwrap();
    std::fs::write(p.join("plain/input.txt"), b"private data of the owner\n").unwrap();
    let key = "srv/secrets/wrap_key";
    ok(ward(
        p,
        &[
            "pf",
            "encrypt",
            "-w",
            key,
            "-i",
            "plain/input.txt",
            "-o",
            "enc/input.txt",
        ],
    ));
    let (python, trusted) = python_trusted();
    let trusted: Vec<String> = trusted
        .into_iter()
        .chain(["file:app/main.py".to_string()])
        .map(|u| format!("  \"{u}\","))
        .collect();
    let manifest = format!(
        r#"[libos]
entrypoint = "{python}"

[loader]
argv = ["{python}", "-I", "/app/main.py"]

[loader.env]
LANG = "C.UTF-8"
PYTHONDONTWRITEBYTECODE = "1"
WARD_TEST_EXIT = {{ passthrough = true }}

[fs]
start_dir = "/app"

[[fs.mounts]]
path = "/usr"
uri = "file:/usr"

[[fs.mounts]]
path = "/app"
uri = "file:app"

[[fs.mounts]]
type = "encrypted"
path = "/data"
uri = "file:enc"

[[fs.mounts]]
type = "encrypted"
path = "/out"
uri = "file:out"

[[fs.mounts]]
type = "tmpfs"
path = "/tmp"

[sgx]
trusted_files = [
{trusted}
]

[provision]
servers = ["127.0.0.1:{port}"]
ca_chain = "file:srv/ca.pem"
secrets = [{{ name = "wrap_key", key_name = "default" }}]
"#,
        python = python.display(),
        trusted = trusted.join("\n"),
    );
    // The same program with the host's network, opted into.
    std::fs::write(
        p.join("net.toml"),
        format!("{manifest}\n[network]\nhost = true\n"),
    )
    .unwrap();
    std::fs::write(p.join("py.toml"), manifest).unwrap();
    let sign = |name: &str| {
        let (stdout, _) = ok(ward(p, &["sign", "--key", "signer.pem", name]));
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("measurement (MRENCLAVE): "))
            .unwrap()
            .to_string()
    };
    let measurement = sign("py.toml");
    let net_measurement = sign("net.toml");
    let policy = std::fs::read_to_string(p.join("srv/policy.toml")).unwrap();
    let sim_key = policy
        .lines()
        .find(|l| l.starts_with("simulated_platform_keys"))
        .unwrap();
    std::fs::write(
        p.join("policy.toml"),
        format!(
            "allow_simulated = true\n{sim_key}\n[[identity]]\nname = \"python\"\n\
             mr_enclave = [\"{measurement}\", \"{net_measurement}\"]\n"
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let secret = format!("wrap_key={key}");
    let (_server, _) = serve(
        p,
        &[
            "--secret",
            &secret,
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
    let run_manifest = |manifest: &str, exit: &str| {
        Command::new(env!("CARGO_BIN_EXE_ward"))
            .args(["run", manifest, "--sim-key", "srv/sim-platform.pem"])
            .env("WARD_TEST_EXIT", exit)
            .current_dir(p)
            .output()
            .unwrap()
    };
    let run = |exit: &str| run_manifest("py.signed.toml", exit);

    // The good run.
    let (stdout, stderr) = ok(run("0"));
    for want in [
        "mmap: private",
        "child: 0 private",
        "absent: /etc/passwd 2",
        "absent: /root 2",
        "absent: /app/not-listed.txt 2",
        "trusted read-only: 13",
        "uid: 65534",
    ] {
        assert!(
            stdout.contains(want),
            "{want:?} missing:\n{stdout}\n{stderr}"
        );
    }
    assert!(!stdout.contains("LEAK"), "{stdout}");
    assert!(stdout.contains("inet: 13"), "{stdout}");
    // Each refusal is named once, with the rule that would allow it.
    assert!(
        stderr.contains("refused /app/not-listed.txt") && stderr.contains("sgx.trusted_files"),
        "{stderr}"
    );
    assert!(stderr.contains("1 output file(s) committed"), "{stderr}");
    // The result is a protected file bound to its path, that the owner decrypts.
    ok(ward(
        p,
        &[
            "pf",
            "decrypt",
            "-w",
            key,
            "-i",
            "out/result.txt",
            "-o",
            "plain/result.txt",
            "-V",
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(p.join("plain/result.txt")).unwrap(),
        "PRIVATE DATA OF THE OWNER\nappended\n"
    );
    let committed = std::fs::read(p.join("out/result.txt")).unwrap();

    // A program that fails: its exit status is ward's, nothing it wrote is committed, the old
    // output is intact, and no temporary is left.
    let out = run("3");
    assert_eq!(out.status.code(), Some(3), "{:?}", text(&out));
    assert_eq!(std::fs::read(p.join("out/result.txt")).unwrap(), committed);
    let left: Vec<_> = std::fs::read_dir(p.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["result.txt"], "{left:?}");

    // A trusted file changed after signing: refused, the program cannot start it.
    std::fs::write(p.join("app/main.py"), format!("{SCRIPT}\n# changed\n")).unwrap();
    let out = run("0");
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("/app/main.py"), "{stderr}");
    assert_eq!(std::fs::read(p.join("out/result.txt")).unwrap(), committed);

    // With [network] host = true the program may open inet sockets, and ward says loudly that it
    // does not protect that traffic.
    std::fs::write(p.join("app/main.py"), SCRIPT).unwrap();
    let (stdout, stderr) = ok(run_manifest("net.signed.toml", "0"));
    assert!(stdout.contains("LEAK inet"), "{stdout}");
    assert!(
        stderr.contains("INSECURE") && stderr.contains("host's network"),
        "{stderr}"
    );
}

const TREE_SCRIPT: &str = r#"
import os, sys
st = os.stat("/app/lib/data.bin")
print("mode:", oct(st.st_mode & 0o7777), "mtime:", st.st_mtime_ns)
print("link:", os.readlink("/app/lib/current"))
print("listing:", sorted(os.listdir("/app/lib")))
with open("/app/lib/current", "rb") as f:
    head = f.read(4096)
    print("head:", len(head), head[:4] == bytes(4))
    try:
        f.seek(2 << 20)
        f.read(4096)
        print("LEAK changed chunk served")
    except OSError as e:
        print("changed chunk:", e.errno)
"#;

/// A trusted directory is signed as a tree: the program sees its signed modes, mtimes, listing
/// and symlinks, and a chunk changed on the host behind an unchanged mtime is refused with EIO
/// when read, while the rest of the file reads.
#[test]
fn python_sees_a_trusted_tree_as_signed_and_never_a_changed_chunk() {
    if let Some(reason) = confined_skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let ok = |out: Output| {
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
        (stdout, stderr)
    };
    ok(ward(p, &["sign", "keygen", "-o", "signer.pem"]));
    ok(ward(p, &["sim", "init", "-o", "sim.pem"]));
    std::fs::create_dir_all(p.join("app/lib")).unwrap();
    std::fs::write(p.join("app/main.py"), TREE_SCRIPT).unwrap();
    let data = p.join("app/lib/data.bin");
    std::fs::write(&data, vec![0u8; 3 << 20]).unwrap();
    std::os::unix::fs::symlink("data.bin", p.join("app/lib/current")).unwrap();
    let (python, trusted) = python_trusted();
    let trusted: Vec<String> = trusted
        .into_iter()
        .chain(["file:app/".to_string()])
        .map(|u| format!("  \"{u}\","))
        .collect();
    let manifest = format!(
        r#"[libos]
entrypoint = "{python}"

[loader]
argv = ["{python}", "-I", "/app/main.py"]

[loader.env]
PYTHONDONTWRITEBYTECODE = "1"

[[fs.mounts]]
path = "/usr"
uri = "file:/usr"

[[fs.mounts]]
path = "/app"
uri = "file:app"

[sgx]
trusted_files = [
{trusted}
]
"#,
        python = python.display(),
        trusted = trusted.join("\n"),
    );
    std::fs::write(p.join("tree.toml"), manifest).unwrap();
    ok(ward(p, &["sign", "--key", "signer.pem", "tree.toml"]));
    assert!(p.join("tree.signed.trees").exists());
    let signed_mtime = std::fs::metadata(&data).unwrap().modified().unwrap();
    let signed_ns = signed_mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // After signing the host changes a chunk, puts the mtime back, adds a file and changes
    // the mode: none of it reaches the program.
    {
        use std::os::unix::fs::{FileExt, PermissionsExt};
        let f = std::fs::File::options().write(true).open(&data).unwrap();
        f.write_all_at(b"evil", (2 << 20) + 10).unwrap();
        f.set_modified(signed_mtime).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(p.join("app/lib/added.py"), b"import os").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["run", "tree.signed.toml", "--sim-key", "sim.pem", "--json"])
        .current_dir(p)
        .output()
        .unwrap();
    let (stdout, stderr) = ok(out);
    for want in [
        // The signed mode, without its write bits: trusted files are read-only.
        format!("mode: 0o444 mtime: {signed_ns}"),
        "link: data.bin".to_string(),
        "listing: ['current', 'data.bin']".to_string(),
        "head: 4096 True".to_string(),
        "changed chunk: 5".to_string(),
    ] {
        assert!(
            stdout.contains(&want),
            "{want:?} missing:\n{stdout}\n{stderr}"
        );
    }
    assert!(!stdout.contains("LEAK"), "{stdout}");
    // The report on stdout (`--json`) has the boot steps' timings and the bytes verified.
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(report["timings_ms"]["self_measure"].is_number(), "{report}");
    assert!(
        report["files"]["trusted_bytes_verified"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert!(
        stderr.contains("refused /app/lib/data.bin") && stderr.contains("chunk 32"),
        "{stderr}"
    );
}
