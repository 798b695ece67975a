//! Open + read through the VFS: trusted files (64 MiB in memory, 256 MiB chunked) and protected
//! files (64 MiB streamed node by node by `open`, and decrypted whole by `Vfs::read`).
//!
//! Files live in /dev/shm when it exists, so the figures are about the VFS, not the disk.
// criterion_group! defines a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use ward_runtime::vfs::Vfs;

const MIB: usize = 1 << 20;

/// Pseudo-random bytes (xorshift), fast enough for hundreds of MiB.
fn noise(n: usize, mut s: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.extend_from_slice(&s.to_le_bytes());
    }
    v.truncate(n);
    v
}

fn read_all(vfs: &Vfs, path: &str, buf: &mut [u8]) -> u64 {
    let mut h = vfs.open(path).unwrap();
    let mut total = 0;
    loop {
        let n = h.read(buf).unwrap();
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

fn benches(c: &mut Criterion) {
    let dir = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let small = noise(64 * MIB, 1);
    let large = noise(256 * MIB, 2);
    std::fs::write(dir.path().join("small.bin"), &small).unwrap();
    std::fs::write(dir.path().join("large.bin"), &large).unwrap();
    let key = ward_pf::WrapKey::from_bytes([5; 16]);
    std::fs::create_dir(dir.path().join("enc")).unwrap();
    let mut out = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.path().join("enc/small.bin"))
        .unwrap();
    ward_pf::encrypt(
        &mut &small[..],
        &key,
        "enc/small.bin",
        &mut out,
        ward_pf::Options::default(),
    )
    .unwrap();

    let build = |limit: u64| {
        Vfs::builder()
            .chroot("/app", dir.path())
            .trusted(dir.path().join("small.bin"), Sha256::digest(&small).into())
            .trusted(dir.path().join("large.bin"), Sha256::digest(&large).into())
            .encrypted("/data", dir.path().join("enc"), "enc", "k")
            .key("k", key.clone())
            .memory_limit(limit)
            .build()
            .unwrap()
    };
    let in_memory = build(u64::MAX);
    let streaming = build(0);
    let mut buf = vec![0u8; MIB];

    let mut g = c.benchmark_group("vfs_open_read");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function("trusted_64MiB_in_memory", |b| {
        b.iter(|| read_all(&in_memory, "/app/small.bin", &mut buf))
    });
    g.bench_function("protected_64MiB_read_whole", |b| {
        b.iter(|| in_memory.read("/data/small.bin").unwrap().len())
    });
    g.bench_function("trusted_64MiB_read_whole", |b| {
        b.iter(|| in_memory.read("/app/small.bin").unwrap().len())
    });
    g.bench_function("protected_64MiB_open_streaming", |b| {
        b.iter(|| read_all(&streaming, "/data/small.bin", &mut buf))
    });
    g.throughput(Throughput::Bytes(large.len() as u64));
    g.bench_function("trusted_256MiB_chunked", |b| {
        b.iter(|| read_all(&streaming, "/app/large.bin", &mut buf))
    });
    g.finish();

    let mut g = c.benchmark_group("baseline");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function("sha256_64MiB_in_memory", |b| {
        b.iter(|| Sha256::digest(&small))
    });
    g.finish();
}

criterion_group!(vfs, benches);
criterion_main!(vfs);
