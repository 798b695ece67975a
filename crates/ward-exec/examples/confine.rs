//! A developer's tool: run a program confined, to try ward-exec by hand (as root).
//!
//! ```text
//! cargo run -p ward-exec --example confine -- [OPTIONS] -- PROGRAM [ARGS...]
//!   --bind SRC[:DST]       read-only bind mount (DST defaults to SRC)
//!   --rw-bind SRC[:DST]    writable bind mount
//!   --tmpfs DST[:MIB]      tmpfs (16 MiB unless told)
//!   --host-view SRC[:DST]  a FUSE view of a host directory (HostDirView)
//!   --read-ahead KB        the read-ahead of the views that follow (0: the kernel's default)
//!   --symlink DST:TARGET   a symlink in the root
//!   --usr                  /usr read-only plus the merged-/usr links (bin, lib, lib64, sbin)
//!   --env KEY=VALUE        an environment variable (the environment starts empty)
//!   --cwd DIR              the working directory
//!   --net                  the host's network
//! ```
//! Prints how it went on stderr and exits with the program's status.

use std::path::{Path, PathBuf};

use ward_exec::{HostDirView, Network, Sandbox, ViewOptions};

fn split(spec: &str) -> (PathBuf, Option<&str>) {
    match spec.split_once(':') {
        Some((a, b)) => (PathBuf::from(a), Some(b)),
        None => (PathBuf::from(spec), None),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut steps: Vec<Box<dyn FnOnce(Sandbox) -> Sandbox>> = Vec::new();
    let mut program = Vec::new();
    let mut view_options = ViewOptions::default();
    let usage = || -> ! {
        eprintln!("usage: confine [OPTIONS] -- PROGRAM [ARGS...] (see the source's header)");
        std::process::exit(2)
    };
    while let Some(arg) = args.next() {
        if arg == "--" {
            program.extend(args.by_ref());
            break;
        }
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--bind" | "--rw-bind" => {
                let spec = value();
                let (src, dst) = split(&spec);
                let dst = dst.map_or_else(|| src.clone(), PathBuf::from);
                let read_only = arg == "--bind";
                steps.push(Box::new(move |s| s.bind(src, dst, read_only)));
            }
            "--tmpfs" => {
                let spec = value();
                let (dst, mib) = split(&spec);
                let mib: u64 = mib.map_or(16, |m| m.parse().unwrap_or_else(|_| usage()));
                steps.push(Box::new(move |s| s.tmpfs(dst, mib << 20)));
            }
            "--host-view" => {
                let spec = value();
                let (src, dst) = split(&spec);
                let dst = dst.map_or_else(|| src.clone(), PathBuf::from);
                let view = HostDirView::new(&src).unwrap_or_else(|e| {
                    eprintln!("confine: {}: {e}", src.display());
                    std::process::exit(2)
                });
                let options = view_options.clone();
                steps.push(Box::new(move |s| s.view(dst, view, options)));
            }
            "--read-ahead" => {
                let kb: u32 = value().parse().unwrap_or_else(|_| usage());
                view_options.read_ahead_kb = (kb > 0).then_some(kb);
            }
            "--symlink" => {
                let spec = value();
                let (dst, target) = split(&spec);
                let target = PathBuf::from(target.unwrap_or_else(|| usage()));
                steps.push(Box::new(move |s| s.symlink(dst, target)));
            }
            "--usr" => steps.push(Box::new(|mut s| {
                s = s.bind("/usr", "/usr", true);
                for link in ["bin", "lib", "lib64", "sbin"] {
                    let host = Path::new("/").join(link);
                    if let Ok(target) = std::fs::read_link(&host) {
                        s = s.symlink(host, target);
                    }
                }
                s
            })),
            "--env" => {
                let spec = value();
                let (key, val) = spec.split_once('=').unwrap_or_else(|| usage());
                let (key, val) = (key.to_string(), val.to_string());
                steps.push(Box::new(move |s| s.env(key, val)));
            }
            "--cwd" => {
                let dir = value();
                steps.push(Box::new(move |s| s.cwd(dir)));
            }
            "--net" => steps.push(Box::new(|s| s.network(Network::Host))),
            _ => usage(),
        }
    }
    let Some(entrypoint) = program.first() else {
        usage()
    };
    let mut sandbox = Sandbox::new(entrypoint).args(&program[1..]);
    for step in steps {
        sandbox = step(sandbox);
    }
    let started = std::time::Instant::now();
    let running = match sandbox.spawn() {
        Ok(running) => running,
        Err(e) => {
            eprintln!("confine: {e}");
            std::process::exit(125)
        }
    };
    eprintln!(
        "confine: started in {:?} (Landlock {:?})",
        started.elapsed(),
        running.landlock()
    );
    match running.wait() {
        Ok(status) => {
            eprintln!("confine: {status} after {:?}", started.elapsed());
            std::process::exit(status.code().unwrap_or(125))
        }
        Err(e) => {
            eprintln!("confine: {e}");
            std::process::exit(125)
        }
    }
}
