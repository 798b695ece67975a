//! Throughput of the whole-file operations and of random reads through `ProtectedFile`, on a
//! 64 MiB file held in memory (so the numbers are the crypto and bookkeeping, not the disk).
//!
//! `cargo bench -p ward-pf` (about a minute and a half). `threads=0` means all cores.
// criterion_group! defines a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use ward_pf::{decrypt, decrypt_to_vec, encrypt, verify, Mode, Options, ProtectedFile, WrapKey};

const SIZE: usize = 64 << 20;
const READ: usize = 4096;

/// xorshift64*: deterministic filler and offsets, no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn plaintext() -> Vec<u8> {
    let mut rng = Rng(0x5EED);
    let mut v = Vec::with_capacity(SIZE);
    while v.len() < SIZE {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    v.truncate(SIZE);
    v
}

fn opts(threads: usize) -> Options<'static> {
    Options {
        threads,
        ..Options::default()
    }
}

fn bench(c: &mut Criterion) {
    let key = WrapKey::from_bytes(*b"0123456789abcdef");
    let plain = plaintext();
    let mut cipher = Vec::new();
    encrypt(&mut &plain[..], &key, "bench.bin", &mut cipher, opts(0)).expect("encrypt");

    let mut g = c.benchmark_group("pf");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(SIZE as u64));

    for threads in [1usize, 0] {
        let mut out = Vec::with_capacity(cipher.len());
        g.bench_with_input(
            BenchmarkId::new("encrypt_64MiB/threads", threads),
            &threads,
            |b, &t| {
                b.iter(|| {
                    encrypt(&mut &plain[..], &key, "bench.bin", &mut out, opts(t)).expect("encrypt")
                })
            },
        );
        let mut out = Vec::with_capacity(SIZE);
        g.bench_with_input(
            BenchmarkId::new("decrypt_64MiB/threads", threads),
            &threads,
            |b, &t| {
                b.iter(|| {
                    out.clear();
                    decrypt(&cipher, &key, Some("bench.bin"), &mut out, opts(t)).expect("decrypt")
                })
            },
        );
        // What the runtime's whole-file read did before `decrypt_to_vec`: a fresh buffer each time.
        g.bench_with_input(
            BenchmarkId::new("decrypt_fresh_vec_64MiB/threads", threads),
            &threads,
            |b, &t| {
                b.iter(|| {
                    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(cipher.len()));
                    decrypt(&cipher, &key, Some("bench.bin"), &mut *out, opts(t)).expect("decrypt");
                    out
                })
            },
        );
        // The runtime's whole-file read: straight into a fresh buffer, authenticated in place.
        g.bench_with_input(
            BenchmarkId::new("decrypt_to_vec_64MiB/threads", threads),
            &threads,
            |b, &t| {
                b.iter(|| {
                    decrypt_to_vec(&cipher[..], &key, Some("bench.bin"), opts(t))
                        .expect("decrypt_to_vec")
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("verify_64MiB/threads", threads),
            &threads,
            |b, &t| b.iter(|| verify(&cipher, &key, None, opts(t)).expect("verify")),
        );
    }

    // Random 4 KiB reads at 4 KiB-aligned plaintext offsets. Data nodes start at 3072 + 4096·d,
    // so each such read spans two data nodes; with 16 K data nodes and a 64-node cache nearly
    // every read loads and authenticates nodes (and often their MHT node) from storage.
    g.throughput(Throughput::Bytes(READ as u64));
    let mut pf = ProtectedFile::open(cipher.clone(), &key, None, Mode::Read).expect("open");
    let mut rng = Rng(42);
    let mut buf = vec![0u8; READ];
    let slots = (SIZE / READ) as u64;
    g.bench_function("read_at_random_4KiB", |b| {
        b.iter(|| {
            let off = (rng.next() % slots) * READ as u64;
            let n = pf.read_at(black_box(off), &mut buf).expect("read_at");
            assert_eq!(n, READ);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
