//! Real programs in real sandboxes (no mocks): `/bin/sh`, `/usr/bin/python3`, coreutils.
//!
//! A sandbox must be prepared while the process is single-threaded, so this suite has its own
//! `main` (`harness = false`) and runs its tests one after another on the main thread. Each is
//! bounded in time: a sandbox still running after its timeout is killed and the test fails.
//! Without root or `/dev/fuse` the suite says why and skips.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use ward_exec::{
    Attr, DirEntry, Errno, ExecError, Handle, MemView, Network, Running, Sandbox, Signal, View,
    ViewOptions,
};

const TIMEOUT: Duration = Duration::from_secs(20);

type Outcome = Result<(), String>;
type Test = (&'static str, fn() -> Outcome);

/// A sandbox with the host's /usr read-only (and the merged-/usr links), a tmpfs /tmp, and
/// the program's stdout and stderr captured.
struct Case {
    sandbox: Sandbox,
    stdout: File,
    stderr: File,
}

fn pipe() -> (File, OwnedFd) {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    (File::from(r), w)
}

fn case(program: &str, args: &[&str]) -> Case {
    case_with_usr(program, args, |sandbox| sandbox.bind("/usr", "/usr", true))
}

/// Like [`case`], with /usr mounted by `usr`.
fn case_with_usr(program: &str, args: &[&str], usr: impl FnOnce(Sandbox) -> Sandbox) -> Case {
    let (stdout, out_w) = pipe();
    let (stderr, err_w) = pipe();
    let sandbox = Sandbox::new(program)
        .args(args.iter().copied())
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .tmpfs("/tmp", 16 << 20);
    let mut sandbox = usr(sandbox).start_timeout(TIMEOUT);
    // Merged /usr: links to usr/…; otherwise the directories themselves, read-only.
    for link in ["bin", "lib", "lib64", "sbin"] {
        let host = Path::new("/").join(link);
        if let Ok(target) = std::fs::read_link(&host) {
            sandbox = sandbox.symlink(host, target);
        } else if host.is_dir() {
            sandbox = sandbox.bind(&host, &host, true);
        }
    }
    Case {
        sandbox: sandbox.stdout(out_w).stderr(err_w),
        stdout,
        stderr,
    }
}

fn sh(script: &str) -> Case {
    case("/bin/sh", &["-c", script])
}

fn python(code: &str) -> Case {
    case("/usr/bin/python3", &["-I", "-B", "-c", code])
}

/// Waits for `running` at most `timeout`; kills it then.
fn wait(mut running: Running, timeout: Duration) -> Result<ExitStatus, String> {
    match running.wait_timeout(timeout).map_err(|e| e.to_string())? {
        Some(status) => Ok(status),
        None => {
            running.kill().map_err(|e| e.to_string())?;
            Err(format!(
                "the sandbox was still running after {timeout:?}: killed"
            ))
        }
    }
}

fn read_all(mut file: File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    text
}

/// Runs a case to its end: exit code, stdout, stderr.
fn run(case: Case) -> Result<(i32, String, String), String> {
    let running = case.sandbox.spawn().map_err(|e| format!("spawn: {e}"))?;
    let status = wait(running, TIMEOUT)?;
    let stdout = read_all(case.stdout);
    let stderr = read_all(case.stderr);
    let code = status
        .code()
        .ok_or_else(|| format!("no exit code: {status:?}; stderr: {stderr}"))?;
    Ok((code, stdout, stderr))
}

/// Runs a case that must exit 0 and returns its stdout.
fn run_ok(case: Case) -> Result<String, String> {
    let (code, stdout, stderr) = run(case)?;
    if code != 0 {
        return Err(format!("exit {code}; stdout: {stdout}; stderr: {stderr}"));
    }
    Ok(stdout)
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Outcome {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn environment_added_at_start_reaches_the_program() -> Outcome {
    let case = sh("printf '%s|%s\\n' \"$LANG\" \"$API_TOKEN\"");
    let prepared = case
        .sandbox
        .prepare()
        .map_err(|e| format!("prepare: {e}"))?;
    let running = prepared
        .start_with_env([("API_TOKEN", "s3cret value")])
        .map_err(|e| format!("start: {e}"))?;
    let status = wait(running, TIMEOUT)?;
    expect_eq("status", status.code(), Some(0))?;
    expect_eq(
        "output",
        read_all(case.stdout).as_str(),
        "C.UTF-8|s3cret value\n",
    )?;
    // A name with '=' is refused before anything starts.
    let bad = sh("true")
        .sandbox
        .prepare()
        .map_err(|e| format!("prepare: {e}"))?;
    match bad.start_with_env([("A=B", "x")]) {
        Err(ExecError::Invalid(_)) => Ok(()),
        other => Err(format!("expected Invalid, got {other:?}")),
    }
}

fn exit_status_is_the_programs() -> Outcome {
    expect_eq("exit 0", run(sh("exit 0"))?.0, 0)?;
    expect_eq("exit 3", run(sh("exit 3"))?.0, 3)?;
    // Killed by a signal: 128 + N, as from a shell.
    expect_eq("kill -KILL $$", run(sh("kill -KILL $$"))?.0, 128 + 9)
}

fn host_files_are_not_visible() -> Outcome {
    let out = run_ok(sh(
        "for p in /etc/passwd /root /home /sys /run /var /dev/tdx_guest /dev/sda \
         /dev/sgx_enclave /dev/sgx_provision /dev/sgx /dev/attestation /sys/kernel/config/tsm; do test -e $p && echo \"visible: $p\"; done; \
         ls -A / | tr '\\n' ' '; echo; ls -A /dev | tr '\\n' ' '",
    ))?;
    let mut lines = out.lines();
    let root = lines.next().unwrap_or_default();
    let dev = lines.next().unwrap_or_default();
    if out.contains("visible:") {
        return Err(out);
    }
    expect_eq("ls /", root.trim(), "bin dev lib lib64 proc sbin tmp usr")?;
    expect_eq(
        "ls /dev",
        dev.trim(),
        "fd full null random shm stderr stdin stdout urandom zero",
    )
}

fn dev_view_is_served_and_dev_stays_fixed() -> Outcome {
    let view = MemView::new().file("/type", "memory", 0o644).writable();
    let mut case = sh(
        "cat /dev/pseudo/type; echo; echo note > /dev/pseudo/note && echo wrote; \
         mkdir /dev/x 2>/dev/null && echo dev-writable; \
         cp /bin/true /dev/pseudo/t 2>/dev/null; /dev/pseudo/t 2>/dev/null && echo exec; \
         grep ' /dev/pseudo ' /proc/self/mounts | grep -o 'nosuid,nodev,noexec' ; \
         ls -A /dev | tr '\\n' ' '",
    );
    case.sandbox = case.sandbox.dev_view(
        "pseudo",
        view.clone(),
        ViewOptions {
            read_only: false,
            keep_cache: false,
            ..ViewOptions::default()
        },
    );
    let out = run_ok(case)?;
    expect_eq(
        "output",
        out.as_str(),
        "memory\nwrote\nnosuid,nodev,noexec\n\
         fd full null pseudo random shm stderr stdin stdout urandom zero ",
    )?;
    expect_eq(
        "the file written in the view",
        view.contents("/note"),
        Some(b"note\n".to_vec()),
    )?;
    // Only new names, one component each: the sandbox's own entries stay its own.
    for name in ["null", "shm", "fd", "a/b", "..", ""] {
        match Sandbox::new("/bin/sh")
            .dev_view(name, MemView::new(), ViewOptions::default())
            .prepare()
        {
            Err(ExecError::Invalid(_)) => {}
            Err(e) => return Err(format!("/dev/{name}: wrong error {e}")),
            Ok(_) => return Err(format!("/dev/{name}: accepted")),
        }
    }
    Ok(())
}

fn root_is_read_only_and_tmp_writable() -> Outcome {
    let out = run_ok(sh("touch /x 2>/dev/null && echo root-writable; \
         touch /usr/x 2>/dev/null && echo usr-writable; \
         echo data > /tmp/f && cat /tmp/f; echo shm > /dev/shm/f && cat /dev/shm/f; \
         head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok"))?;
    expect_eq("output", out.as_str(), "data\nshm\n4\nnull-ok\n")
}

fn runs_unprivileged() -> Outcome {
    // No signal ignored or blocked, but the two glibc reserves (32 and 33), which `cargo test`
    // itself ignores and glibc refuses to reset.
    let out = run_ok(sh(
        "id -u; id -g; id -G; grep -E '^(SigBlk|CapPrm|CapEff|CapAmb|NoNewPrivs|Seccomp):' \
         /proc/self/status | tr -s '\\t ' ' '; ulimit -c; hostname; \
         ignored=$(sed -n 's/^SigIgn:\\t//p' /proc/self/status); \
         test $((0x$ignored & ~0x180000000)) = 0 || echo \"ignored: $ignored\"",
    ))?;
    expect_eq(
        "output",
        out.as_str(),
        "65534\n65534\n65534\nSigBlk: 0000000000000000\nCapPrm: 0000000000000000\nCapEff: 0000000000000000\n\
         CapAmb: 0000000000000000\nNoNewPrivs: 1\nSeccomp: 2\n0\nward\n",
    )
}

fn landlock_and_non_dumpable_supervisor() -> Outcome {
    // Writing one's own /proc/self/comm is allowed by the file's mode: only Landlock (which
    // grants no write right outside the writable mounts) refuses it.
    let out = run_ok(sh(
        "echo renamed > /proc/self/comm 2>/dev/null && echo comm-writable; \
         mkfifo /tmp/fifo && echo fifo-in-tmp; kill -0 1 2>/dev/null && echo init-signalable; \
         echo done",
    ))?;
    expect_eq("output", out.as_str(), "fifo-in-tmp\ndone\n")?;
    // Linux 6.18 has Landlock ABI 7, above the 6 asked for.
    let running = sh("true").sandbox.spawn().map_err(|e| e.to_string())?;
    expect_eq(
        "Landlock",
        running.landlock(),
        Some(ward_exec::LandlockStatus::FullyEnforced),
    )?;
    expect_eq("status", wait(running, TIMEOUT)?.code(), Some(0))?;
    expect_eq(
        "the supervisor is dumpable",
        nix::sys::prctl::get_dumpable().map_err(|e| e.to_string())?,
        false,
    )
}

/// A view that counts the lookups of each path, to see what the kernel caches.
struct Counting {
    inner: MemView,
    lookups: Arc<Mutex<HashMap<String, usize>>>,
}

impl View for Counting {
    fn lookup(&self, path: &str) -> Result<Attr, Errno> {
        *self
            .lookups
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default() += 1;
        self.inner.lookup(path)
    }
    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Errno> {
        self.inner.read_dir(path)
    }
    fn open(&self, path: &str, flags: i32) -> Result<Box<dyn Handle>, Errno> {
        self.inner.open(path, flags)
    }
}

/// A view whose handles count their flushes.
struct Flushes {
    inner: MemView,
    flushes: Arc<Mutex<usize>>,
}

struct FlushCounting {
    inner: Box<dyn Handle>,
    flushes: Arc<Mutex<usize>>,
}

impl Handle for FlushCounting {
    fn read_at(&self, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        self.inner.read_at(offset, size)
    }
    fn flush(&self) -> Result<(), Errno> {
        *self.flushes.lock().unwrap() += 1;
        Ok(())
    }
}

impl View for Flushes {
    fn lookup(&self, path: &str) -> Result<Attr, Errno> {
        self.inner.lookup(path)
    }
    fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Errno> {
        self.inner.read_dir(path)
    }
    fn open(&self, path: &str, flags: i32) -> Result<Box<dyn Handle>, Errno> {
        Ok(Box::new(FlushCounting {
            inner: self.inner.open(path, flags)?,
            flushes: self.flushes.clone(),
        }))
    }
}

fn listings_carry_attributes_and_flushes_can_be_skipped() -> Outcome {
    // Attributes arrive with the listing (readdirplus): what stat shows after a listing must
    // still be each entry's own.
    let mut case = sh("cd /data && stat -c '%n %s %a %F' * | sort");
    case.sandbox = case.sandbox.view(
        "/data",
        MemView::new()
            .file("/a", "xyz", 0o640)
            .file("/b", "", 0o755)
            .dir("/d")
            .symlink("/l", "a"),
        ViewOptions::default(),
    );
    expect_eq(
        "stat after a listing",
        run_ok(case)?.as_str(),
        "a 3 640 regular file\nb 0 755 regular empty file\nd 4096 755 directory\nl 1 777 symbolic link\n",
    )?;
    // Flushes reach the view unless it opts out; closing still succeeds either way.
    for (flush_on_close, want_some) in [(true, true), (false, false)] {
        let flushes = Arc::new(Mutex::new(0));
        let mut case =
            sh("for i in 1 2 3; do cat /data/a > /dev/null || echo failed; done; echo done");
        case.sandbox = case.sandbox.view(
            "/data",
            Flushes {
                inner: MemView::new().file("/a", "xyz", 0o644),
                flushes: flushes.clone(),
            },
            ViewOptions {
                flush_on_close,
                ..ViewOptions::default()
            },
        );
        expect_eq("output", run_ok(case)?.as_str(), "done\n")?;
        let n = *flushes.lock().unwrap();
        expect_eq("flushes seen", n > 0, want_some)?;
    }
    Ok(())
}

fn views_get_their_read_ahead() -> Outcome {
    let mut case = sh("head -c 1 /data/f; echo; echo ready; exec sleep 30");
    case.sandbox = case.sandbox.view(
        "/data",
        MemView::new().file("/f", "x", 0o644),
        ViewOptions {
            read_ahead_kb: Some(768),
            ..ViewOptions::default()
        },
    );
    let running = case.sandbox.spawn().map_err(|e| e.to_string())?;
    let mut stdout = BufReader::new(case.stdout);
    let mut lines = String::new();
    for _ in 0..2 {
        stdout.read_line(&mut lines).map_err(|e| e.to_string())?;
    }
    // FUSE mounts are anonymous devices, 0:N; the view's is the one set to 768 KiB (by the
    // server thread right after the kernel's INIT, which may be just after the program's read).
    let set = || -> std::io::Result<bool> {
        Ok(std::fs::read_dir("/sys/class/bdi")?
            .filter_map(Result::ok)
            .filter(|d| d.file_name().to_string_lossy().starts_with("0:"))
            .any(|d| {
                std::fs::read_to_string(d.path().join("read_ahead_kb"))
                    .is_ok_and(|v| v.trim() == "768")
            }))
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    let found = loop {
        let found = set().map_err(|e| e.to_string())?;
        if found || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    running.kill().map_err(|e| e.to_string())?;
    wait(running, TIMEOUT)?;
    expect_eq("output", lines.as_str(), "x\nready\n")?;
    expect_eq("a FUSE device with 768 KiB of read-ahead", found, true)
}

fn negative_lookups_are_cached() -> Outcome {
    let lookups = Arc::new(Mutex::new(HashMap::new()));
    let view = Counting {
        inner: MemView::new().file("/present", "x", 0o644),
        lookups: lookups.clone(),
    };
    let mut case = sh(
        "for i in 1 2 3 4 5 6 7 8; do test -e /data/missing && echo found; \
         test -e /data/present || echo lost; done; echo done",
    );
    case.sandbox = case.sandbox.view("/data", view, ViewOptions::default());
    expect_eq("output", run_ok(case)?.as_str(), "done\n")?;
    let lookups = lookups.lock().unwrap();
    expect_eq(
        "lookups of /missing",
        lookups.get("/missing").copied(),
        Some(1),
    )?;
    expect_eq(
        "lookups of /present",
        lookups.get("/present").copied(),
        Some(1),
    )
}

fn host_network_allows_inet_sockets() -> Outcome {
    let mut case = python(
        "import socket\n\
         socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()\n\
         print('inet ok')\n",
    );
    case.sandbox = case.sandbox.network(Network::Host);
    expect_eq("output", run_ok(case)?.as_str(), "inet ok\n")
}

fn host_abstract_sockets_are_out_of_reach() -> Outcome {
    // A listener of the supervisor's, on the host's abstract socket namespace.
    use std::os::linux::net::SocketAddrExt;
    let name = format!("ward-exec-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .map_err(|e| e.to_string())?;
    let _listener =
        std::os::unix::net::UnixListener::bind_addr(&addr).map_err(|e| e.to_string())?;
    let code = format!(
        "import socket, errno\n\
         s = socket.socket(socket.AF_UNIX)\n\
         try:\n\
         \x20   s.connect('\\0{name}')\n\
         \x20   print('connected')\n\
         except OSError as e:\n\
         \x20   print(errno.errorcode[e.errno])\n"
    );
    // Without network: another network namespace, so another abstract namespace.
    expect_eq(
        "no network",
        run_ok(python(&code))?.as_str(),
        "ECONNREFUSED\n",
    )?;
    // With the host's network: Landlock's scope refuses it.
    let mut case = python(&code);
    case.sandbox = case.sandbox.network(Network::Host);
    expect_eq("host network", run_ok(case)?.as_str(), "EPERM\n")
}

fn python_reads_the_view_and_writes_tmpfs() -> Outcome {
    let view = MemView::new()
        .file("/input.txt", "hello from the view\n", 0o644)
        .file("/sub/dir/deep.txt", "deep", 0o600)
        .symlink("/link", "input.txt");
    let out_view = MemView::new().writable();
    let mut case = python(
        "import os\n\
         s = open('/data/input.txt').read()\n\
         open('/tmp/copy.txt', 'w').write(s.upper())\n\
         print(open('/tmp/copy.txt').read(), end='')\n\
         st = os.stat('/data/input.txt')\n\
         print(st.st_size, oct(st.st_mode & 0o777), st.st_mtime > 1e9)\n\
         print(sorted(os.listdir('/data')), os.readlink('/data/link'), open('/data/link').read(), end='')\n\
         print(open('/data/sub/dir/deep.txt').read())\n\
         for p in ['/data/missing', '/data/missing']:\n\
         \x20   try:\n\
         \x20       open(p)\n\
         \x20   except FileNotFoundError:\n\
         \x20       print('missing')\n\
         try:\n\
         \x20   open('/data/new', 'w')\n\
         except OSError as e:\n\
         \x20   print('read-only', e.errno == 30)\n\
         with open('/out/result.txt', 'w') as f:\n\
         \x20   f.write('result ' + s)\n\
         with open('/out/part.tmp', 'w') as f:\n\
         \x20   f.write('atomic'); f.flush(); os.fsync(f.fileno())\n\
         os.replace('/out/part.tmp', '/out/final.txt')\n\
         os.mkdir('/out/d'); os.rmdir('/out/d')\n\
         open('/out/gone', 'w').close(); os.unlink('/out/gone')\n\
         print(sorted(os.listdir('/out')))\n",
    );
    case.sandbox = case
        .sandbox
        .view("/data", view, ViewOptions::default())
        .view(
            "/out",
            out_view.clone(),
            ViewOptions {
                read_only: false,
                keep_cache: false,
                ..ViewOptions::default()
            },
        );
    let out = run_ok(case)?;
    expect_eq(
        "output",
        out.as_str(),
        "HELLO FROM THE VIEW\n20 0o644 True\n['input.txt', 'link', 'sub'] input.txt hello from the view\n\
         deep\nmissing\nmissing\nread-only True\n['final.txt', 'result.txt']\n",
    )?;
    expect_eq(
        "the file the program created in the view",
        out_view.contents("/result.txt"),
        Some(b"result hello from the view\n".to_vec()),
    )?;
    expect_eq(
        "the file renamed into place",
        out_view.contents("/final.txt"),
        Some(b"atomic".to_vec()),
    )
}

fn python_runs_from_a_fuse_view() -> Outcome {
    // The interpreter, its shared libraries and its standard library all come through FUSE:
    // execve, mmap of .so files, symlinks (python3 -> python3.11), directory listings.
    let case = case_with_usr(
        "/usr/bin/python3",
        &[
            "-I",
            "-B",
            "-c",
            "import json, mmap, os, sys\n\
             print(sys.executable, os.path.realpath(sys.executable))\n\
             f = open('/usr/lib/os-release', 'rb')\n\
             m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n\
             print(m[:5] == open('/usr/lib/os-release', 'rb').read(5), len(os.listdir('/usr/lib')) > 10)\n\
             print(json.dumps({'ok': True}))\n",
        ],
        |sandbox| {
            sandbox.view(
                "/usr",
                ward_exec::HostDirView::new(Path::new("/usr")).expect("open /usr"),
                ViewOptions::default(),
            )
        },
    );
    let started = Instant::now();
    let out = run_ok(case)?;
    let lines: Vec<&str> = out.lines().collect();
    expect_eq(
        "executable",
        lines.first().copied(),
        Some("/usr/bin/python3 /usr/bin/python3.11"),
    )?;
    expect_eq("mmap and listing", lines.get(1).copied(), Some("True True"))?;
    expect_eq("json", lines.get(2).copied(), Some("{\"ok\": true}"))?;
    println!(
        "    python3 from a FUSE view of /usr: {:?}",
        started.elapsed()
    );
    Ok(())
}

fn python_multiprocessing_works() -> Outcome {
    // What data loaders need: fork and spawn workers, POSIX semaphores in /dev/shm, pipes and
    // AF_UNIX descriptor passing, threads. (`abs`: spawn cannot pickle functions of a `-c`
    // script.)
    let out = run_ok(python(
        "import multiprocessing as mp, threading, socket, os\n\
         if __name__ == '__main__':\n\
         \x20   for method in ('fork', 'spawn', 'forkserver'):\n\
         \x20       with mp.get_context(method).Pool(2) as pool:\n\
         \x20           print(method, sum(pool.map(abs, range(-9, 1))))\n\
         \x20   t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n\
         \x20   a, b = socket.socketpair()\n\
         \x20   r, w = os.pipe()\n\
         \x20   socket.send_fds(a, [b'fd'], [w])\n\
         \x20   msg, fds, _, _ = socket.recv_fds(b, 2, 1)\n\
         \x20   os.write(fds[0], b'passed'); print(os.read(r, 6).decode())\n",
    ))?;
    expect_eq(
        "output",
        out.as_str(),
        "fork 45\nspawn 45\nforkserver 45\nthread\npassed\n",
    )
}

fn inet_sockets_fail_unix_sockets_work() -> Outcome {
    let out = run_ok(python(
        "import socket, errno\n\
         for fam in (socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK):\n\
         \x20   try:\n\
         \x20       socket.socket(fam, socket.SOCK_STREAM if fam != socket.AF_NETLINK else socket.SOCK_RAW)\n\
         \x20       print('opened', fam)\n\
         \x20   except OSError as e:\n\
         \x20       print(errno.errorcode[e.errno])\n\
         a, b = socket.socketpair()\n\
         a.send(b'ping'); print(b.recv(4).decode())\n\
         s = socket.socket(socket.AF_UNIX); s.bind('/tmp/sock'); s.listen(); print('unix ok')\n",
    ))?;
    expect_eq(
        "output",
        out.as_str(),
        "EACCES\nEACCES\nEACCES\nping\nunix ok\n",
    )
}

/// x32 is compiled out of this machine's kernel, so `x32-getpid` fails there with or without
/// the filter; the filter's own unit test (`x32_numbers_get_enosys_and_the_rest_passes`) is
/// what shows it works.
fn dangerous_syscalls_fail() -> Outcome {
    let out = run_ok(python(
        "import ctypes, errno, os\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         def show(name, rc):\n\
         \x20   print(name, rc, errno.errorcode.get(ctypes.get_errno(), 0) if rc == -1 else '')\n\
         show('ptrace', libc.ptrace(0, 0, 0, 0))\n\
         show('mount', libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))\n\
         show('umount', libc.umount2(b'/tmp', 2))\n\
         show('unshare-user', libc.unshare(0x10000000))\n\
         show('clone3', libc.syscall(435, 0, 0))\n\
         show('io_uring_setup', libc.syscall(425, 1, 0))\n\
         show('x32-getpid', libc.syscall(0x40000000 | 39))\n\
         show('bpf', libc.syscall(321, 0, 0, 0))\n\
         show('process_vm_readv', libc.syscall(310, 1, 0, 0, 0, 0, 0))\n\
         show('getpid', 0 if libc.syscall(39) == os.getpid() else -2)\n",
    ))?;
    expect_eq(
        "output",
        out.as_str(),
        "ptrace -1 EPERM\nmount -1 EPERM\numount -1 EPERM\nunshare-user -1 EPERM\n\
         clone3 -1 ENOSYS\nio_uring_setup -1 ENOSYS\nx32-getpid -1 ENOSYS\nbpf -1 EPERM\n\
         process_vm_readv -1 EPERM\ngetpid 0 \n",
    )
}

fn init_is_pid_1_and_forwards_signals() -> Outcome {
    let out = run_ok(sh(
        "echo $$; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '; echo; \
         test -e /proc/1 && echo init-visible; grep -c . /proc/self/cmdline >/dev/null && echo self-visible",
    ))?;
    let mut lines = out.lines();
    expect_eq("the program's pid", lines.next(), Some("2"))?;
    // Only the program's own processes (the shell, 2, and its `ls` and `grep`) in the new PID
    // namespace; init (1) is there but hidden from another uid.
    let pids: Vec<u32> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    if pids.first() != Some(&2) || pids.iter().any(|p| *p > 10) {
        return Err(format!("pids in the sandbox: {pids:?}"));
    }
    expect_eq("the rest", lines.collect::<Vec<_>>(), vec!["self-visible"])?;

    // SIGTERM reaches the program, whose trap decides the exit status.
    let case = sh("trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done");
    let running = case.sandbox.spawn().map_err(|e| e.to_string())?;
    let mut stdout = BufReader::new(case.stdout);
    let mut line = String::new();
    stdout.read_line(&mut line).map_err(|e| e.to_string())?;
    expect_eq("first line", line.as_str(), "ready\n")?;
    running.signal(Signal::SIGTERM).map_err(|e| e.to_string())?;
    let status = wait(running, TIMEOUT)?;
    expect_eq("status after SIGTERM", status.code(), Some(7))?;

    // A program without a handler dies of it: 128 + 15.
    let case = sh("echo ready; exec sleep 30");
    let running = case.sandbox.spawn().map_err(|e| e.to_string())?;
    let mut stdout = BufReader::new(case.stdout);
    let mut line = String::new();
    stdout.read_line(&mut line).map_err(|e| e.to_string())?;
    // `exec` follows the echo: give the shell a moment to become `sleep`.
    std::thread::sleep(Duration::from_millis(100));
    running.signal(Signal::SIGTERM).map_err(|e| e.to_string())?;
    let status = wait(running, TIMEOUT)?;
    expect_eq("status after SIGTERM", status.code(), Some(128 + 15))
}

fn timeout_kills_the_sandbox() -> Outcome {
    let case = sh("sleep 30");
    let mut running = case.sandbox.spawn().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let status = running
        .wait_timeout(Duration::from_millis(200))
        .map_err(|e| e.to_string())?;
    expect_eq("status before the timeout", status, None)?;
    running.kill().map_err(|e| e.to_string())?;
    let status = running.wait().map_err(|e| e.to_string())?;
    expect_eq("killed by", status.signal(), Some(9))?;
    // The program (`sleep`, which holds the stdout pipe) is gone too: end of file, soon.
    let mut fds = [PollFd::new(case.stdout.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, PollTimeout::from(5000u16)).map_err(|e| e.to_string())?;
    expect_eq("stdout ready", ready, 1)?;
    expect_eq("stdout at end", read_all(case.stdout).as_str(), "")?;
    if started.elapsed() > Duration::from_secs(5) {
        return Err(format!("killing took {:?}", started.elapsed()));
    }
    Ok(())
}

/// A view whose every lookup takes a second.
struct Slow;

impl View for Slow {
    fn lookup(&self, path: &str) -> Result<Attr, Errno> {
        std::thread::sleep(Duration::from_secs(1));
        if path == "/" {
            Ok(Attr::dir(0o755, std::time::SystemTime::now()))
        } else {
            Err(Errno::ENOENT)
        }
    }
    fn read_dir(&self, _path: &str) -> Result<Vec<DirEntry>, Errno> {
        Ok(Vec::new())
    }
    fn open(&self, _path: &str, _flags: i32) -> Result<Box<dyn Handle>, Errno> {
        Err(Errno::ENOENT)
    }
}

fn start_timeout_kills_a_stuck_start() -> Outcome {
    let started = Instant::now();
    let result = Sandbox::new("/slow/program")
        .view("/slow", Slow, ViewOptions::default())
        .start_timeout(Duration::from_millis(200))
        .spawn();
    match result {
        Err(ExecError::StartTimeout(after)) => {
            expect_eq("after", after, Duration::from_millis(200))
        }
        Err(e) => Err(format!("wrong error: {e}")),
        Ok(_) => Err("started".to_string()),
    }?;
    // The sandbox is killed at once; the view's call in progress (1 s) is waited for.
    let elapsed = started.elapsed();
    if elapsed > Duration::from_secs(3) {
        return Err(format!("took {elapsed:?}"));
    }
    Ok(())
}

fn missing_entrypoint_is_an_error() -> Outcome {
    match case("/usr/bin/no-such-program", &[]).sandbox.spawn() {
        Err(ExecError::Entrypoint { path, source }) => {
            expect_eq(
                "path",
                path.as_path(),
                Path::new("/usr/bin/no-such-program"),
            )?;
            expect_eq("errno", source, Errno::ENOENT)
        }
        Err(e) => Err(format!("wrong error: {e}")),
        Ok(_) => Err("spawned a missing program".to_string()),
    }?;
    // Present on the host, absent from the view.
    match Sandbox::new("/bin/sh").spawn() {
        Err(ExecError::Entrypoint { source, .. }) => expect_eq("errno", source, Errno::ENOENT),
        Err(e) => Err(format!("wrong error: {e}")),
        Ok(_) => Err("spawned a program outside the view".to_string()),
    }
}

fn failed_mount_names_the_step() -> Outcome {
    let case = sh("true").bind_missing();
    match case.sandbox.spawn() {
        Err(e @ ExecError::Step { .. }) => {
            let cause = std::error::Error::source(&e).map(|c| c.to_string());
            let text = format!("{e}: {}", cause.unwrap_or_default());
            if text.contains("/no/such/dir") && text.contains("ENOENT") {
                Ok(())
            } else {
                Err(format!("unclear error: {text}"))
            }
        }
        Err(e) => Err(format!("wrong error: {e}")),
        Ok(_) => Err("spawned with a missing bind source".to_string()),
    }
}

fn mount_points_never_pass_through_symlinks() -> Outcome {
    let mut case = sh("true");
    case.sandbox = case
        .sandbox
        .symlink("/escape", "/etc")
        .tmpfs("/escape/ward-exec-test", 1 << 20);
    let result = case.sandbox.spawn();
    if Path::new("/etc/ward-exec-test").exists() {
        let _ = std::fs::remove_dir("/etc/ward-exec-test");
        return Err("created a directory in the host's /etc".to_string());
    }
    match result {
        Err(ExecError::Step { step, source }) => {
            expect_eq("errno", source, Errno::ELOOP)?;
            if step.contains("/escape is a symlink") {
                Ok(())
            } else {
                Err(format!("unclear step: {step}"))
            }
        }
        Err(e) => Err(format!("wrong error: {e}")),
        Ok(_) => Err("mounted through a symlink".to_string()),
    }
}

trait BindMissing {
    fn bind_missing(self) -> Self;
}

impl BindMissing for Case {
    fn bind_missing(mut self) -> Self {
        self.sandbox = self.sandbox.bind("/no/such/dir", "/mnt", true);
        self
    }
}

fn invalid_descriptions_are_refused() -> Outcome {
    let view = MemView::new();
    let bad = [
        Sandbox::new("bin/sh"),
        Sandbox::new("/bin/sh").cwd("/../etc"),
        Sandbox::new("/bin/sh").tmpfs("/dev/x", 1 << 20),
        Sandbox::new("/bin/sh").user(0, 0),
        Sandbox::new("/bin/sh")
            .view("/data", view, ViewOptions::default())
            .tmpfs("/data/tmp", 1 << 20),
    ];
    for sandbox in bad {
        let shown = format!("{sandbox:?}");
        match sandbox.prepare() {
            Err(ExecError::Invalid(_)) => {}
            Err(e) => return Err(format!("{shown}: wrong error {e}")),
            Ok(_) => return Err(format!("{shown}: accepted")),
        }
    }
    Ok(())
}

fn refuses_to_fork_while_threaded() -> Outcome {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    let result = sh("true").sandbox.prepare();
    drop(tx);
    thread.join().map_err(|_| "thread panicked".to_string())?;
    match result {
        Err(ExecError::Threaded { threads, .. }) if threads >= 2 => Ok(()),
        Err(e) => Err(format!("wrong error: {e}")),
        Ok(_) => Err("prepared while threaded".to_string()),
    }
}

fn prepared_then_dropped_ends_the_zygote() -> Outcome {
    let prepared = sh("true").sandbox.prepare().map_err(|e| e.to_string())?;
    let pid = prepared.pid().ok_or("no pid")?;
    drop(prepared);
    if Path::new(&format!("/proc/{pid}")).exists() {
        return Err(format!("zygote {pid} still exists"));
    }
    Ok(())
}

fn mount_serves_a_view_on_the_host() -> Outcome {
    let dir = std::env::temp_dir().join(format!("ward-exec-mount-test-{}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
    let view = MemView::new()
        .file("/a/b.txt", "through the host mount", 0o640)
        .symlink("/l", "a/b.txt");
    let session = ward_exec::mount(view, &dir, ViewOptions::default());
    let checks = || -> Outcome {
        expect_eq(
            "read",
            std::fs::read_to_string(dir.join("a/b.txt")).map_err(|e| e.to_string())?,
            "through the host mount".to_string(),
        )?;
        let meta = std::fs::metadata(dir.join("l")).map_err(|e| e.to_string())?;
        expect_eq(
            "mode through the link",
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
            0o640,
        )?;
        expect_eq(
            "missing",
            std::fs::metadata(dir.join("nope"))
                .map_err(|e| e.kind())
                .err(),
            Some(std::io::ErrorKind::NotFound),
        )?;
        expect_eq(
            "write on a read-only view",
            std::fs::write(dir.join("new"), "x")
                .map_err(|e| e.raw_os_error())
                .err(),
            Some(Some(libc_erofs())),
        )
    };
    let result = match session {
        Ok(session) => {
            let result = checks();
            session.join().map_err(|e| format!("unmount: {e}"))?;
            result
        }
        Err(e) => Err(format!("mount: {e}")),
    };
    std::fs::remove_dir(&dir).map_err(|e| format!("removing the mount point: {e}"))?;
    result
}

fn libc_erofs() -> i32 {
    Errno::EROFS as i32
}

/// Runs this test binary again in `mode` (see [`scenario`]) and returns what it printed.
fn rerun(mode: &str) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .env("WARD_EXEC_TEST_SCENARIO", mode)
        .output()
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The scenarios that need a changed process (another uid, no /dev/fuse): run in a child.
fn scenario(mode: &str) {
    let result = match mode {
        "not-root" => {
            let nobody = nix::unistd::Uid::from_raw(65534);
            nix::unistd::setresuid(nobody, nobody, nobody).expect("setresuid");
            Sandbox::new("/bin/sh").prepare().map(drop)
        }
        "no-fuse" => {
            use nix::mount::{mount, MsFlags};
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare");
            let none = None::<&str>;
            mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).expect("private");
            mount(Some("tmpfs"), "/dev", Some("tmpfs"), MsFlags::empty(), none).expect("tmpfs");
            Sandbox::new("/bin/sh")
                .view("/data", MemView::new(), ViewOptions::default())
                .prepare()
                .map(drop)
        }
        _ => panic!("unknown scenario {mode}"),
    };
    match result {
        Ok(()) => println!("prepared"),
        // The one line a CLI prints: the error and its cause.
        Err(e) => match std::error::Error::source(&e) {
            Some(cause) => println!("{e}: {cause}"),
            None => println!("{e}"),
        },
    }
}

fn clear_one_liners_without_root_or_fuse() -> Outcome {
    expect_eq(
        "not root",
        rerun("not-root")?.as_str(),
        "ward-exec must run as root to build a sandbox (running as uid 65534)\n",
    )?;
    expect_eq(
        "no /dev/fuse",
        rerun("no-fuse")?.as_str(),
        "/dev/fuse cannot be opened, so the view cannot be mounted: ENOENT: No such file or \
         directory\n",
    )
}

fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".to_string());
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Some(format!("/dev/fuse cannot be opened: {e}"));
    }
    for program in ["/bin/sh", "/usr/bin/python3"] {
        if !Path::new(program).exists() {
            return Some(format!("{program} is missing"));
        }
    }
    None
}

fn main() {
    if let Ok(mode) = std::env::var("WARD_EXEC_TEST_SCENARIO") {
        return scenario(&mode);
    }
    if let Some(reason) = skip_reason() {
        println!("ward-exec sandbox tests skipped: {reason}");
        println!("test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tests: &[Test] = &[
        ("exit_status_is_the_programs", exit_status_is_the_programs),
        (
            "environment_added_at_start_reaches_the_program",
            environment_added_at_start_reaches_the_program,
        ),
        ("host_files_are_not_visible", host_files_are_not_visible),
        (
            "root_is_read_only_and_tmp_writable",
            root_is_read_only_and_tmp_writable,
        ),
        (
            "dev_view_is_served_and_dev_stays_fixed",
            dev_view_is_served_and_dev_stays_fixed,
        ),
        ("runs_unprivileged", runs_unprivileged),
        (
            "landlock_and_non_dumpable_supervisor",
            landlock_and_non_dumpable_supervisor,
        ),
        (
            "python_reads_the_view_and_writes_tmpfs",
            python_reads_the_view_and_writes_tmpfs,
        ),
        ("negative_lookups_are_cached", negative_lookups_are_cached),
        (
            "listings_carry_attributes_and_flushes_can_be_skipped",
            listings_carry_attributes_and_flushes_can_be_skipped,
        ),
        ("python_runs_from_a_fuse_view", python_runs_from_a_fuse_view),
        (
            "mount_serves_a_view_on_the_host",
            mount_serves_a_view_on_the_host,
        ),
        (
            "host_network_allows_inet_sockets",
            host_network_allows_inet_sockets,
        ),
        (
            "inet_sockets_fail_unix_sockets_work",
            inet_sockets_fail_unix_sockets_work,
        ),
        ("dangerous_syscalls_fail", dangerous_syscalls_fail),
        (
            "init_is_pid_1_and_forwards_signals",
            init_is_pid_1_and_forwards_signals,
        ),
        ("timeout_kills_the_sandbox", timeout_kills_the_sandbox),
        (
            "missing_entrypoint_is_an_error",
            missing_entrypoint_is_an_error,
        ),
        ("failed_mount_names_the_step", failed_mount_names_the_step),
        (
            "mount_points_never_pass_through_symlinks",
            mount_points_never_pass_through_symlinks,
        ),
        (
            "invalid_descriptions_are_refused",
            invalid_descriptions_are_refused,
        ),
        (
            "refuses_to_fork_while_threaded",
            refuses_to_fork_while_threaded,
        ),
        (
            "prepared_then_dropped_ends_the_zygote",
            prepared_then_dropped_ends_the_zygote,
        ),
        (
            "clear_one_liners_without_root_or_fuse",
            clear_one_liners_without_root_or_fuse,
        ),
        (
            "start_timeout_kills_a_stuck_start",
            start_timeout_kills_a_stuck_start,
        ),
        (
            "host_abstract_sockets_are_out_of_reach",
            host_abstract_sockets_are_out_of_reach,
        ),
        ("views_get_their_read_ahead", views_get_their_read_ahead),
        ("python_multiprocessing_works", python_multiprocessing_works),
    ];
    let started = Instant::now();
    let (mut passed, mut failed, mut filtered) = (0, 0, 0);
    println!("\nrunning {} tests", tests.len());
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            filtered += 1;
            continue;
        }
        let t = Instant::now();
        match test() {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.0?})", t.elapsed());
            }
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED ({:.0?})\n    {e}", t.elapsed());
            }
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; 0 ignored; 0 measured; \
         {filtered} filtered out; finished in {:.2}s\n",
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(101);
    }
}
