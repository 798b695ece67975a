//! Times opening and reading a whole file through the VFS, as a trusted file (hash-checked) or as
//! a protected file (decrypted and authenticated).
//!
//! ```sh
//! cargo run --release -p ward-runtime --example vfs_verify -- FILE [--chunked] [--protected] [--whole] [--runs N]
//! ```
//!
//! - default: FILE is a trusted file and the memory limit is raised above its size, so `open`
//!   hashes it once into memory and serves it from there;
//! - `--chunked`: the memory limit is 0, so `open` hashes it and every 1 MiB chunk is hashed again
//!   as it is read back from disk;
//! - `--protected`: FILE is first encrypted (not timed) beside itself under a fresh key and read
//!   through an encrypted mount, node by node through `ward_pf::ProtectedFile`;
//! - `--whole`: time `Vfs::read` (the whole file into memory; for a protected file, decrypted
//!   across all cores) instead of `open` + reading the handle.
//!
//! The SHA-256 (or the encryption) is done first and not timed; the timed part is `Vfs::open`
//! plus reading every byte through the handle into a 1 MiB buffer (or `Vfs::read`). Prints one
//! line per run and a final `best_seconds=… mb_per_s=…` line.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use ward_runtime::vfs::Vfs;

struct Args {
    file: PathBuf,
    chunked: bool,
    protected: bool,
    whole: bool,
    runs: usize,
}

fn parse() -> Result<Args, String> {
    let mut file = None;
    let mut chunked = false;
    let mut protected = false;
    let mut whole = false;
    let mut runs = 1;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--chunked" => chunked = true,
            "--protected" => protected = true,
            "--whole" => whole = true,
            "--runs" => {
                runs = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--runs needs a positive number")?
            }
            "-h" | "--help" => return Err(String::new()),
            f if file.is_none() && !f.starts_with("--") => file = Some(PathBuf::from(f)),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Args {
        file: file.ok_or("FILE is missing")?,
        chunked,
        protected,
        whole,
        runs,
    })
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let file = std::fs::canonicalize(&args.file)?;
    let size = std::fs::metadata(&file)?.len();
    let limit = if args.chunked { 0 } else { u64::MAX };
    // Kept alive until the end: the encrypted copy for --protected.
    let mut _encrypted = None;
    let builder = Vfs::builder().memory_limit(limit);
    let builder = if args.protected {
        let key = ward_pf::WrapKey::generate()?;
        let dir = file.parent().ok_or("FILE has no directory")?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".vfs_verify.")
            .tempfile_in(dir)?;
        let mut input = std::fs::File::open(&file)?;
        ward_pf::encrypt(
            &mut input,
            &key,
            "bench/input",
            tmp.as_file_mut(),
            ward_pf::Options::default(),
        )?;
        let host = tmp.path().to_path_buf();
        _encrypted = Some(tmp);
        builder
            .encrypted("/bench/input", host, "bench/input", "bench")
            .key("bench", key)
    } else {
        let mut hasher = Sha256::new();
        std::io::copy(&mut std::fs::File::open(&file)?, &mut hasher)?;
        builder
            .chroot("/bench/input", &file)
            .trusted(&file, hasher.finalize().into())
    };
    let vfs = builder.build()?;
    let mode = match (args.protected, args.whole, args.chunked) {
        (false, true, _) => "trusted, Vfs::read",
        (false, false, false) => "trusted, in memory",
        (false, false, true) => "trusted, chunked",
        (true, true, _) => "protected, Vfs::read",
        (true, false, _) => "protected, streaming",
    };

    let mut buf = vec![0u8; 1 << 20];
    let mut best = f64::INFINITY;
    for run in 1..=args.runs {
        let t0 = Instant::now();
        let mut total = 0u64;
        if args.whole {
            total = vfs.read("/bench/input")?.len() as u64;
        } else {
            let mut h = vfs.open("/bench/input")?;
            loop {
                let n = h.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        if total != size {
            return Err(format!("read {total} bytes, expected {size}").into());
        }
        println!(
            "run {run}: {mode}: {:.1} MiB in {secs:.3} s = {:.0} MB/s",
            size as f64 / 1048576.0,
            size as f64 / secs / 1e6
        );
        best = best.min(secs);
    }
    let s = vfs.stats();
    println!(
        "best_seconds={best:.4} mb_per_s={:.1} mode=\"{mode}\" bytes={size} trusted_bytes_verified={} protected_bytes_decrypted={}",
        size as f64 / best / 1e6,
        s.trusted_bytes_verified,
        s.protected_bytes_decrypted
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("usage: vfs_verify FILE [--chunked] [--protected] [--whole] [--runs N]");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
