//! Stable-toolchain runner for the fuzz targets: no nightly, no libFuzzer, no coverage feedback,
//! but the same checks (`ward_fuzz::TARGETS`).
//!
//! ```text
//! cargo run --release --manifest-path fuzz/Cargo.toml --bin replay -- \
//!     [--target NAME] [--iters N] [--seconds S] [--seed SEED] [PATH ...]
//! ```
//!
//! NAME is one of `ward_fuzz::TARGETS` (default `open_untrusted`). Every file under each PATH
//! (directories recursively) is run as one input, then N random inputs (default 20000, or 0 when
//! the only argument is one file; `--seconds` stops earlier): half fresh inputs (for
//! `open_untrusted` structured like it expects, for the others random bytes or two files spliced),
//! half mutations of the files given. A panicking input is saved under
//! `fuzz/artifacts/NAME/` as `crash-replay-<hash>` (replay it with `replay --target NAME FILE`,
//! or `cargo fuzz run NAME FILE`); the exit status is 1 if any input panicked.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// splitmix64: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// A fresh input shaped like what `run` parses: selector, flags, then edits and read ranges.
fn structured(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(10) {
        0 => rng.below(4),
        1..=7 => 2 + rng.below(64),
        _ => 2 + rng.below(1200),
    };
    let mut v: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
    if let Some(sel) = v.first_mut() {
        // The ~13 MB template (0xff) is slow: keep it to about 1 input in 400.
        if *sel == 0xff && rng.below(400) != 0 {
            *sel = rng.byte() % 0xff;
        }
    }
    if v.len() > 1 && rng.below(4) != 0 {
        // Mostly single-threaded: a thread pool per input is slow.
        v[1] &= !0x04;
    }
    v
}

/// A havoc-style mutation of a corpus input.
fn mutated(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(8) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.byte();
            }
            2 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.byte());
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            4 => {
                let n = rng.below(v.len() + 1);
                v.truncate(n);
            }
            _ => {
                let n = rng.below(64);
                v.extend((0..n).map(|_| rng.byte()));
            }
        }
    }
    v
}

/// A fresh input for targets with no structured generator: random bytes, or the head of one
/// corpus file joined to the tail of another.
fn fresh(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    if corpus.len() >= 2 && rng.below(2) == 0 {
        let a = &corpus[rng.below(corpus.len())];
        let b = &corpus[rng.below(corpus.len())];
        let mut v = a[..rng.below(a.len() + 1)].to_vec();
        v.extend_from_slice(&b[rng.below(b.len() + 1)..]);
        return v;
    }
    let len = match rng.below(4) {
        0 => rng.below(8),
        1 | 2 => rng.below(128),
        _ => rng.below(2048),
    };
    (0..len).map(|_| rng.byte()).collect()
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                eprintln!("replay: {}: {e}", path.display());
                return;
            }
        };
        entries.sort();
        for e in entries {
            collect(&e, out);
        }
    } else {
        out.push(path.to_path_buf());
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() {
    let mut iters: Option<usize> = None;
    let mut seconds: Option<u64> = None;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut target = "open_untrusted".to_string();
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--iters" => iters = Some(value("--iters") as usize),
            "--seconds" => seconds = Some(value("--seconds")),
            "--seed" => seed = value("--seed"),
            "--target" => target = args.next().unwrap_or_default(),
            "-h" | "--help" => {
                eprintln!(
                    "usage: replay [--target NAME] [--iters N] [--seconds S] [--seed SEED] [PATH ...]"
                );
                return;
            }
            _ => paths.push(PathBuf::from(a)),
        }
    }

    let Some(t) = ward_fuzz::TARGETS.iter().find(|t| t.name == target) else {
        let names: Vec<_> = ward_fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!(
            "replay: no target {target:?}; the targets are {}",
            names.join(", ")
        );
        std::process::exit(2);
    };
    let mut files = Vec::new();
    for p in &paths {
        collect(p, &mut files);
    }
    // A single file on its own is a reproduction: run just it, with the default panic report.
    let single = paths.len() == 1 && files.len() == 1 && paths[0].is_file();
    let iters = iters.unwrap_or(if single { 0 } else { 20_000 });
    let corpus: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();

    if !single {
        // One line per panic; replay a saved input alone for the full report and backtrace.
        std::panic::set_hook(Box::new(|info| eprintln!("replay: {info}")));
    }

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("artifacts")
        .join(t.name);
    let mut crashes = 0usize;
    let mut stats: BTreeMap<String, usize> = BTreeMap::new();
    let mut runs = 0usize;
    let mut exec = |input: &[u8], label: &str| {
        runs += 1;
        match catch_unwind(AssertUnwindSafe(|| (t.run)(input))) {
            Ok(labels) => {
                for l in labels {
                    *stats.entry(l).or_default() += 1;
                }
            }
            Err(_) => {
                crashes += 1;
                let _ = std::fs::create_dir_all(&artifacts);
                let f = artifacts.join(format!("crash-replay-{:016x}", fnv(input)));
                let _ = std::fs::write(&f, input);
                eprintln!("replay: PANIC on {label}; input saved to {}", f.display());
            }
        }
    };

    let start = Instant::now();
    for (f, data) in files.iter().zip(&corpus) {
        exec(data, &f.display().to_string());
    }
    let from_files = files.len();
    eprintln!("replay: seed {seed}");
    let mut rng = Rng(seed);
    let deadline = seconds.map(|s| start + Duration::from_secs(s));
    let mut random = 0;
    while random < iters && deadline.is_none_or(|d| Instant::now() < d) {
        let input = if !corpus.is_empty() && rng.below(2) == 0 {
            let base = &corpus[rng.below(corpus.len())];
            mutated(&mut rng, base)
        } else if t.name == "open_untrusted" {
            structured(&mut rng)
        } else {
            fresh(&mut rng, &corpus)
        };
        exec(&input, &format!("random input {random}"));
        random += 1;
    }

    println!(
        "replay {}: {runs} inputs ({from_files} from files, {random} random, seed {seed}) in {:.1}s, {crashes} panicked",
        t.name,
        start.elapsed().as_secs_f64()
    );
    for (label, n) in &stats {
        println!("  {n:>7}  {label}");
    }
    if crashes > 0 {
        std::process::exit(1);
    }
}
