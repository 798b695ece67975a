//! `ward run` of the system `python3`, unmodified, writing the way real programs do under an
//! encrypted `/results` mount: out of order (a header patched after the body), a `zipfile`, its
//! own output read back before exit, an existing protected file opened `r+` and patched, another
//! appended to; and a run that does all that and exits 1 leaves every old file byte-identical.
//! Needs root, `/dev/fuse` and `/usr/bin/python3` (skips, saying why, otherwise).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{confined_skip_reason, free_port, python_trusted, serve, text, ward};

const SCRIPT: &str = r#"
import errno, hashlib, os, struct, subprocess, sys, zipfile

R = "/results"
body = bytes(range(256)) * 40  # 10 KiB: past a protected file's inline data, into its nodes

# (a) Out of order: a placeholder header, the body, then seek(0) to patch the header.
with open(f"{R}/header.bin", "wb") as f:
    f.write(b"\0" * 8)
    f.write(body)
    f.seek(0)
    f.write(struct.pack("<Q", len(body)))

# (b) A zipfile: a streamed member's local header is patched after its data.
with zipfile.ZipFile(f"{R}/out.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("a.txt", "alpha " * 1000)
    with z.open("b.bin", "w") as member:
        member.write(body)

# (c) Its own output read back before exit, here and by a child; stat shows the size.
with zipfile.ZipFile(f"{R}/out.zip") as z:
    assert z.testzip() is None
    print("zip:", ",".join(sorted(z.namelist())), hashlib.sha256(z.read("b.bin")).hexdigest())
with open(f"{R}/header.bin", "rb") as f:
    data = f.read()
print("header:", struct.unpack("<Q", data[:8])[0], hashlib.sha256(data).hexdigest())
print("stat:", os.stat(f"{R}/header.bin").st_size)
child = subprocess.run(
    [sys.executable, "-c", "import sys; print(open(sys.argv[1], 'rb').read(8).hex())",
     f"{R}/header.bin"], capture_output=True, text=True)
print("child:", child.returncode, child.stdout.strip())
with open(f"{R}/scratch.bin", "w+b") as f:
    f.write(b"hello world")
    f.seek(6)
    print("w+:", f.read().decode())
    f.truncate(5)
    f.seek(0)
    print("truncated:", f.read().decode())

# (d) An existing protected file opened r+, 3 bytes patched: the rest is kept.
with open(f"{R}/existing.txt", "r+b") as f:
    f.seek(4)
    f.write(b"XYZ")

# (e) An existing protected file appended to, through two descriptors.
with open(f"{R}/log.txt", "a") as f:
    f.write("third line\n")
fd = os.open(f"{R}/log.txt", os.O_WRONLY | os.O_APPEND)
os.pwrite(fd, b"fourth line\n", 0)  # O_APPEND: pwrite's offset is ignored, as on Linux
os.close(fd)
with open(f"{R}/log.txt") as f:
    print("log:", f.read().count("line"))

# Opened for writing, never written: not rewritten.
with open(f"{R}/untouched.txt", "r+b") as f:
    print("untouched:", f.read().decode().strip())

# (f) A huge offset is a clear error, and the file stays usable.
fd = os.open(f"{R}/huge.bin", os.O_RDWR | os.O_CREAT, 0o600)
try:
    os.pwrite(fd, b"x", 1 << 62)
    print("LEAK huge write")
except OSError as e:
    print("huge:", errno.errorcode.get(e.errno))
os.pwrite(fd, b"ok", 0)
print("after huge:", os.pread(fd, 10, 0).decode())
os.close(fd)

sys.exit(int(os.environ.get("WARD_TEST_EXIT", "0")))
"#;

/// Every file in `dir` and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Host python3 (outside any sandbox) on a decrypted file: its SHA-256, and for a zip the
/// result of `testzip` and the SHA-256 of member `b.bin`.
fn host_python(code: &str, file: &Path) -> String {
    let out = Command::new("python3")
        .args(["-c", code])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn python_writes_out_of_order_reads_back_patches_and_appends_protected_files() {
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
    for dir in ["plain", "results", "app"] {
        std::fs::create_dir_all(p.join(dir)).unwrap();
    }
    std::fs::write(p.join("app/main.py"), SCRIPT).unwrap();
    std::fs::write(p.join("plain/existing.txt"), b"0123456789abcdef\n").unwrap();
    std::fs::write(p.join("plain/log.txt"), b"first line\nsecond line\n").unwrap();
    let key = "srv/secrets/wrap_key";
    let encrypt = |name: &str| {
        let (input, output) = (format!("plain/{name}"), format!("results/{name}"));
        ok(ward(
            p,
            &["pf", "encrypt", "-w", key, "-i", &input, "-o", &output],
        ));
    };
    encrypt("existing.txt");
    encrypt("log.txt");
    std::fs::write(p.join("plain/untouched.txt"), b"as it was\n").unwrap();
    encrypt("untouched.txt");
    let decrypt = |name: &str| -> Vec<u8> {
        let (input, output) = (format!("results/{name}"), format!("plain/out-{name}"));
        ok(ward(
            p,
            &[
                "pf", "decrypt", "-w", key, "-i", &input, "-o", &output, "-V",
            ],
        ));
        std::fs::read(p.join(output)).unwrap()
    };

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
path = "/results"
uri = "file:results"

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
    std::fs::write(p.join("py.toml"), manifest).unwrap();
    let (stdout, _) = ok(ward(p, &["sign", "--key", "signer.pem", "py.toml"]));
    let measurement = stdout
        .lines()
        .find_map(|l| l.strip_prefix("measurement (MRENCLAVE): "))
        .unwrap()
        .to_string();
    let policy = std::fs::read_to_string(p.join("srv/policy.toml")).unwrap();
    let sim_key = policy
        .lines()
        .find(|l| l.starts_with("simulated_platform_keys"))
        .unwrap();
    std::fs::write(
        p.join("policy.toml"),
        format!(
            "allow_simulated = true\n{sim_key}\n[[identity]]\nname = \"python\"\n\
             mr_enclave = [\"{measurement}\"]\n"
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
            "--listen",
            &listen,
        ],
    );
    let run = |exit: &str| {
        Command::new(env!("CARGO_BIN_EXE_ward"))
            .args(["run", "py.signed.toml", "--sim-key", "srv/sim-platform.pem"])
            .env("WARD_TEST_EXIT", exit)
            .current_dir(p)
            .output()
            .unwrap()
    };

    // A program that does everything and then fails: nothing it wrote is committed, the old
    // files are byte-identical, no temporary is left.
    let before = snapshot(&p.join("results"));
    let out = run("1");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("log: 4"),
        "it did write:\n{stdout}\n{stderr}"
    );
    assert_eq!(snapshot(&p.join("results")), before);

    // The good run.
    let (stdout, stderr) = ok(run("0"));
    let line = |prefix: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix:?} missing:\n{stdout}\n{stderr}"))
            .to_string()
    };
    assert_eq!(line("stat: "), "10248");
    assert_eq!(
        line("child: "),
        format!("0 {}", hex::encode(10240u64.to_le_bytes()))
    );
    assert_eq!(line("w+: "), "world");
    assert_eq!(line("truncated: "), "hello");
    assert_eq!(line("log: "), "4");
    assert_eq!(line("huge: "), "EFBIG");
    assert_eq!(line("after huge: "), "ok");
    assert_eq!(line("untouched: "), "as it was");
    assert!(!stdout.contains("LEAK"), "{stdout}");
    assert!(stderr.contains("6 output file(s) committed"), "{stderr}");

    // What it read back before exiting is what was committed, as the owner decrypts it.
    let sha =
        "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())";
    let header = decrypt("header.bin");
    assert_eq!(&header[..8], &10240u64.to_le_bytes());
    assert_eq!(header.len(), 10248);
    let header_sha = host_python(sha, &p.join("plain/out-header.bin"));
    assert_eq!(line("header: "), format!("10240 {header_sha}"));
    decrypt("out.zip");
    let zip = host_python(
        "import hashlib, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\n\
         assert z.testzip() is None\n\
         print(','.join(sorted(z.namelist())), hashlib.sha256(z.read('b.bin')).hexdigest())",
        &p.join("plain/out-out.zip"),
    );
    assert_eq!(line("zip: "), zip);
    assert_eq!(decrypt("existing.txt"), b"0123XYZ789abcdef\n");
    assert_eq!(
        decrypt("log.txt"),
        b"first line\nsecond line\nthird line\nfourth line\n"
    );
    assert_eq!(decrypt("scratch.bin"), b"hello");
    assert_eq!(decrypt("huge.bin"), b"ok");
    let names: Vec<String> = snapshot(&p.join("results")).into_keys().collect();
    assert_eq!(
        names,
        [
            "existing.txt",
            "header.bin",
            "huge.bin",
            "log.txt",
            "out.zip",
            "scratch.bin",
            "untouched.txt"
        ]
    );
    // Byte-identical, not re-encrypted under fresh node keys.
    assert_eq!(
        std::fs::read(p.join("results/untouched.txt")).unwrap(),
        before["untouched.txt"]
    );

    // Failing again after a good run: the committed files stay as they are.
    let committed = snapshot(&p.join("results"));
    let out = run("1");
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert_eq!(snapshot(&p.join("results")), committed);
}
