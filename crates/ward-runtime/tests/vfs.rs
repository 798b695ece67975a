//! The manifest-enforcing VFS against real files in temporary directories.

use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{symlink, FileExt};
use std::path::{Path, PathBuf};
use ward_pf::WrapKey;
use ward_runtime::vfs::{FileKind, MountType, Vfs, VfsBuilder, VfsError};

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn key() -> WrapKey {
    WrapKey::from_bytes([7u8; 16])
}

fn other_key() -> WrapKey {
    WrapKey::from_bytes([8u8; 16])
}

/// Deterministic test bytes.
fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32 % 32) as u8
                ^ seed
        })
        .collect()
}

/// Encrypts `data` to `host`, bound to `bound`.
fn protect(data: &[u8], k: &WrapKey, bound: &str, host: &Path) {
    if let Some(dir) = host.parent() {
        fs::create_dir_all(dir).unwrap();
    }
    let mut out = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(host)
        .unwrap();
    ward_pf::encrypt(
        &mut &data[..],
        k,
        bound,
        &mut out,
        ward_pf::Options::default(),
    )
    .unwrap();
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for d in ["app", "enc", "out"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        Fixture { dir }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.p(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
        p
    }
    /// /app (chroot, app/), /data (encrypted, enc/ bound as "enc", key "default"),
    /// /out (chroot, out/ allowed), /tmp (tmpfs).
    fn builder(&self) -> VfsBuilder {
        Vfs::builder()
            .chroot("/app", self.p("app"))
            .encrypted("/data", self.p("enc"), "enc", "default")
            .chroot("/out", self.p("out"))
            .allowed(self.p("out"))
            .tmpfs("/tmp")
            .key("default", key())
    }
}

fn err<T: std::fmt::Debug>(r: Result<T, VfsError>) -> VfsError {
    r.expect_err("expected the VFS to refuse")
}

/// The directory holds no writer temporary files.
fn no_temp_files(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.ends_with(".ward-tmp"), "temporary file left: {name}");
    }
}

// ---- trusted files ----

#[test]
fn trusted_file_reads() {
    let f = Fixture::new();
    let data = b"print('hello')\n".to_vec();
    let host = f.write("app/x.py", &data);
    let vfs = f.builder().trusted(&host, sha(&data)).build().unwrap();

    assert_eq!(&vfs.read("/app/x.py").unwrap()[..], &data[..]);
    assert_eq!(
        &*vfs.read_to_string("/app/./x.py").unwrap(),
        "print('hello')\n"
    );
    let mut h = vfs.open("/app/x.py").unwrap();
    assert_eq!(h.kind(), FileKind::Trusted);
    assert_eq!(h.len(), data.len() as u64);
    assert!(h.is_in_memory());
    let mut back = Vec::new();
    h.read_to_end(&mut back).unwrap();
    assert_eq!(back, data);
    h.seek(SeekFrom::Start(5)).unwrap();
    let mut five = [0u8; 5];
    h.read_exact(&mut five).unwrap();
    assert_eq!(&five, b"('hel");

    let md = vfs.metadata("/app/x.py").unwrap();
    assert_eq!(
        (md.len, md.kind),
        (data.len() as u64, Some(FileKind::Trusted))
    );
    let s = vfs.stats();
    assert_eq!(s.files_opened, 3);
    assert_eq!(s.trusted_bytes_verified, 3 * data.len() as u64);
    assert_eq!(s.refused, 0);
}

#[test]
fn trusted_file_modified_before_open_is_refused() {
    let f = Fixture::new();
    let data = b"weights v1".to_vec();
    let host = f.write("app/model.bin", &data);
    let vfs = f.builder().trusted(&host, sha(&data)).build().unwrap();
    fs::write(&host, b"weights v2").unwrap();

    for e in [
        err(vfs.open("/app/model.bin")),
        err(vfs.read("/app/model.bin")),
    ] {
        assert!(matches!(e, VfsError::TrustedMismatch { .. }), "{e}");
        assert!(e.is_integrity());
        let msg = e.to_string();
        assert!(msg.contains("/app/model.bin"), "{msg}");
        assert!(msg.contains(&host.display().to_string()), "{msg}");
        assert!(msg.contains(&hex::encode(sha(&data))), "{msg}");
        assert!(msg.contains(&hex::encode(sha(b"weights v2"))), "{msg}");
        assert!(
            msg.contains("re-sign the manifest or restore the file"),
            "{msg}"
        );
    }
    // Also with the chunked path.
    let vfs = f
        .builder()
        .trusted(&host, sha(&data))
        .memory_limit(0)
        .chunk_size(4)
        .build()
        .unwrap();
    assert!(matches!(
        err(vfs.open("/app/model.bin")),
        VfsError::TrustedMismatch { .. }
    ));
    assert_eq!(vfs.stats().refused, 1);
}

#[test]
fn large_trusted_file_reads_chunk_by_chunk() {
    let f = Fixture::new();
    let data = bytes(70_001, 3); // 17 chunks of 4 KiB and a partial one
    let host = f.write("app/big.bin", &data);
    let vfs = f
        .builder()
        .trusted(&host, sha(&data))
        .memory_limit(1024)
        .chunk_size(4096)
        .build()
        .unwrap();
    let mut h = vfs.open("/app/big.bin").unwrap();
    assert!(!h.is_in_memory());
    assert_eq!(h.len(), data.len() as u64);
    let mut back = Vec::new();
    h.read_to_end(&mut back).unwrap();
    assert_eq!(back, data);
    // Random access across chunk boundaries.
    let mut buf = vec![0u8; 10_000];
    assert_eq!(h.read_at(4000, &mut buf).unwrap(), 10_000);
    assert_eq!(buf, data[4000..14_000]);
    assert_eq!(h.read_at(69_000, &mut buf).unwrap(), 1001);
    assert_eq!(h.read_at(80_000, &mut buf).unwrap(), 0);
    h.seek(SeekFrom::End(-1)).unwrap();
    let mut last = [0u8; 1];
    h.read_exact(&mut last).unwrap();
    assert_eq!(last[0], data[70_000]);
    // Whole-file read ignores the memory limit.
    assert_eq!(&vfs.read("/app/big.bin").unwrap()[..], &data[..]);
}

#[test]
fn large_trusted_file_modified_after_open_is_refused_at_the_bad_chunk() {
    let f = Fixture::new();
    let data = bytes(64 * 1024, 5);
    let host = f.write("app/big.bin", &data);
    let vfs = f
        .builder()
        .trusted(&host, sha(&data))
        .memory_limit(1024)
        .chunk_size(4096)
        .build()
        .unwrap();
    let mut h = vfs.open("/app/big.bin").unwrap();
    // The host flips one byte in chunk 5 (same length) after the open-time check.
    let evil = fs::OpenOptions::new().write(true).open(&host).unwrap();
    evil.write_all_at(&[data[5 * 4096 + 17] ^ 1], 5 * 4096 + 17)
        .unwrap();

    let mut back = Vec::new();
    let e = h.read_to_end(&mut back).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    // Everything before the bad chunk, nothing of it.
    assert_eq!(back.len(), 5 * 4096);
    assert_eq!(back, data[..5 * 4096]);
    let e = err(h.read_at(5 * 4096 + 100, &mut [0u8; 10]));
    match &e {
        VfsError::TrustedChanged { chunk, offset, .. } => {
            assert_eq!((*chunk, *offset), (5, 5 * 4096))
        }
        other => panic!("unexpected {other}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("has changed: chunk 5 at offset 20480"),
        "{msg}"
    );
    assert!(msg.contains("/app/big.bin"), "{msg}");
    // Chunks before it still verify.
    let mut first = vec![0u8; 4096];
    assert_eq!(h.read_at(0, &mut first).unwrap(), 4096);
    assert_eq!(first, data[..4096]);

    // Truncated or extended after open: refused too.
    fs::write(&host, &data).unwrap();
    let mut h = vfs.open("/app/big.bin").unwrap();
    evil.set_len(10_000).unwrap();
    let e = err(h.read_at(0, &mut [0u8; 1]));
    assert!(
        matches!(
            e,
            VfsError::TrustedResized {
                was: 65536,
                now: 10_000,
                ..
            }
        ),
        "{e}"
    );
    fs::write(&host, &data).unwrap();
    let mut h = vfs.open("/app/big.bin").unwrap();
    evil.write_all_at(b"more", data.len() as u64).unwrap();
    let e = err(h.read_at(0, &mut [0u8; 1]));
    assert!(
        matches!(e, VfsError::TrustedResized { now: 65540, .. }),
        "{e}"
    );
}

#[test]
fn empty_trusted_file() {
    let f = Fixture::new();
    let host = f.write("app/empty", b"");
    for limit in [0, 1 << 20] {
        let vfs = f
            .builder()
            .trusted(&host, sha(b""))
            .memory_limit(limit)
            .build()
            .unwrap();
        let mut h = vfs.open("/app/empty").unwrap();
        assert!(h.is_empty());
        assert_eq!(h.read(&mut [0u8; 8]).unwrap(), 0);
        assert!(vfs.read("/app/empty").unwrap().is_empty());
    }
}

// ---- policy ----

#[test]
fn path_outside_mounts_is_refused_with_the_rule() {
    let f = Fixture::new();
    let vfs = f.builder().build().unwrap();
    let e = err(vfs.open("/etc/passwd"));
    assert!(matches!(e, VfsError::NoMount { .. }) && e.is_denied());
    let msg = e.to_string();
    assert!(msg.contains("/etc/passwd is not under any mount"), "{msg}");
    assert!(
        msg.contains("/app, /data (encrypted), /out, /tmp (tmpfs)"),
        "{msg}"
    );
    assert!(
        msg.contains("add an [[fs.mounts]] entry covering /etc/passwd"),
        "{msg}"
    );
    assert!(matches!(
        err(vfs.create("/etc/x")),
        VfsError::NoMount { .. }
    ));
    assert!(matches!(
        err(vfs.read_dir("/etc")),
        VfsError::NoMount { .. }
    ));
    assert!(!vfs.exists("/etc/passwd"));
    // "/database" is not under "/data".
    assert!(matches!(
        err(vfs.open("/database/x")),
        VfsError::NoMount { .. }
    ));
}

#[test]
fn chroot_file_neither_trusted_nor_allowed_is_refused() {
    let f = Fixture::new();
    let host = f.write("app/secret_sauce.py", b"x = 1");
    let vfs = f.builder().build().unwrap();
    let e = err(vfs.open("/app/secret_sauce.py"));
    assert!(matches!(e, VfsError::NotListed { .. }), "{e}");
    let msg = e.to_string();
    let h = host.display().to_string();
    assert!(
        msg.contains(&format!(
            "/app/secret_sauce.py (host {h}) is neither a trusted nor an allowed file"
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "add \"file:{h}\" to sgx.trusted_files (hash-checked) or sgx.allowed_files (unchecked)"
        )),
        "{msg}"
    );
    assert!(matches!(
        err(vfs.read("/app/secret_sauce.py")),
        VfsError::NotListed { .. }
    ));
    assert!(matches!(
        err(vfs.metadata("/app/secret_sauce.py")),
        VfsError::NotListed { .. }
    ));
    // With the manifest's directory known, host paths read as the manifest spells them.
    let vfs = f.builder().manifest_dir(f.dir.path()).build().unwrap();
    let msg = err(vfs.open("/app/secret_sauce.py")).to_string();
    assert!(
        msg.contains("/app/secret_sauce.py (host app/secret_sauce.py) is neither")
            && msg.contains("add \"file:app/secret_sauce.py\" to sgx.trusted_files"),
        "{msg}"
    );
    // Missing files that are not listed are refused the same way (nothing to learn).
    assert!(matches!(
        err(vfs.open("/app/nope")),
        VfsError::NotListed { .. }
    ));
}

#[test]
fn allowed_files_pass_through_and_can_be_written() {
    let f = Fixture::new();
    f.write("out/log.txt", b"old log");
    let vfs = f.builder().build().unwrap();
    let mut h = vfs.open("/out/log.txt").unwrap();
    assert_eq!(h.kind(), FileKind::Allowed);
    let mut s = String::new();
    h.read_to_string(&mut s).unwrap();
    assert_eq!(s, "old log");

    // Overwrite atomically: nothing changes until commit.
    let mut w = vfs.create("/out/log.txt").unwrap();
    w.write_all(b"new log").unwrap();
    w.flush().unwrap();
    assert_eq!(fs::read(f.p("out/log.txt")).unwrap(), b"old log");
    w.commit().unwrap();
    assert_eq!(fs::read(f.p("out/log.txt")).unwrap(), b"new log");
    assert_eq!(&*vfs.read_to_string("/out/log.txt").unwrap(), "new log");

    // A new file, and an abandoned one.
    let mut w = vfs.create("/out/new.txt").unwrap();
    w.write_all(b"fresh").unwrap();
    w.commit().unwrap();
    assert_eq!(fs::read(f.p("out/new.txt")).unwrap(), b"fresh");
    let mut w = vfs.create("/out/log.txt").unwrap();
    w.write_all(b"half-written").unwrap();
    drop(w);
    assert_eq!(fs::read(f.p("out/log.txt")).unwrap(), b"new log");
    no_temp_files(&f.p("out"));
    assert_eq!(vfs.read_dir("/out").unwrap(), ["log.txt", "new.txt"]);
    assert_eq!(vfs.stats().files_committed, 2);
}

#[test]
fn create_on_trusted_or_unlisted_files_is_refused() {
    let f = Fixture::new();
    let data = b"import os".to_vec();
    let host = f.write("app/x.py", &data);
    let vfs = f.builder().trusted(&host, sha(&data)).build().unwrap();
    let e = err(vfs.create("/app/x.py"));
    assert!(matches!(e, VfsError::TrustedReadOnly { .. }), "{e}");
    assert!(
        e.to_string().contains("is a trusted file and read-only"),
        "{e}"
    );
    let e = err(vfs.create("/app/y.py"));
    assert!(matches!(e, VfsError::NotWritable { .. }), "{e}");
    assert!(e.to_string().contains("sgx.allowed_files"), "{e}");
    assert_eq!(fs::read(&host).unwrap(), data);
    assert!(!f.p("app/y.py").exists());
    no_temp_files(&f.p("app"));
    assert_eq!(vfs.stats().refused, 2);
}

#[test]
fn dotdot_cannot_escape() {
    let f = Fixture::new();
    f.write("secret.txt", b"top secret");
    f.write("out/a.txt", b"a");
    let vfs = f.builder().build().unwrap();
    // Lexically resolved: /out/../secret.txt is /secret.txt, which no mount covers.
    for p in [
        "/out/../secret.txt",
        "/out/../../../secret.txt",
        "../secret.txt",
        "/out/x/../../secret.txt",
    ] {
        assert!(matches!(err(vfs.open(p)), VfsError::NoMount { .. }), "{p}");
    }
    // And never above the root: /.. is /.
    assert_eq!(&vfs.read("/../../out/./a.txt").unwrap()[..], b"a");
    let loc = vfs.locate("/out/../out/../../out/b/../a.txt").unwrap();
    assert_eq!(loc.host.unwrap(), f.p("out/a.txt"));
    // Even with a root mount, the host directory is the ceiling.
    let vfs = Vfs::builder()
        .chroot("/", f.p("out"))
        .allowed(f.p("out"))
        .allowed(f.p("secret.txt"))
        .build()
        .unwrap();
    assert!(err(vfs.open("/../secret.txt"))
        .to_string()
        .contains("does not exist"));
    assert_eq!(&vfs.read("/../a.txt").unwrap()[..], b"a");
    assert!(matches!(
        err(vfs.open("/a\0b")),
        VfsError::InvalidPath { .. }
    ));
    assert!(matches!(err(vfs.open("")), VfsError::InvalidPath { .. }));
}

#[test]
fn symlinks_cannot_escape() {
    let f = Fixture::new();
    let secret = f.write("secret.txt", b"top secret");
    f.write("elsewhere/x.txt", b"x");
    symlink(&secret, f.p("out/evil")).unwrap();
    symlink(f.p("elsewhere"), f.p("out/dir")).unwrap();
    f.write("out/real.txt", b"real");
    symlink(f.p("out/real.txt"), f.p("out/alias")).unwrap();
    let pf = f.p("elsewhere/m.bin");
    protect(b"model", &key(), "enc/m.bin", &pf);
    symlink(&pf, f.p("enc/m.bin")).unwrap();
    let vfs = f
        .builder()
        .trusted(f.p("out/evil"), sha(b"top secret"))
        .build()
        .unwrap();

    for p in ["/out/dir/x.txt", "/data/m.bin"] {
        let e = err(vfs.open(p));
        assert!(
            matches!(e, VfsError::Escape { .. }) && e.is_denied(),
            "{p}: {e}"
        );
        assert!(
            e.to_string().contains("outside its mount's host directory"),
            "{e}"
        );
    }
    // A trusted file may be a link out of its mount (a venv's bin/python): what it serves is
    // checked against the signed hash, so where it leads cannot matter.
    assert_eq!(&vfs.read("/out/evil").unwrap()[..], b"top secret");
    fs::write(&secret, b"top SECRET").unwrap();
    assert!(err(vfs.read("/out/evil")).is_integrity());
    assert!(matches!(
        err(vfs.create("/out/dir/new.txt")),
        VfsError::Escape { .. }
    ));
    assert!(matches!(
        err(vfs.read_dir("/out/dir")),
        VfsError::Escape { .. }
    ));
    assert!(!f.p("elsewhere/new.txt").exists());
    // A symlink that stays inside the mount is fine.
    assert_eq!(&vfs.read("/out/alias").unwrap()[..], b"real");
    // Replacing a symlink replaces the link, not what it points to.
    symlink(&secret, f.p("out/evil2")).unwrap();
    let mut w = vfs.create("/out/evil2").unwrap();
    w.write_all(b"mine").unwrap();
    w.commit().unwrap();
    assert_eq!(fs::read(&secret).unwrap(), b"top SECRET");
    assert_eq!(fs::read(f.p("out/evil2")).unwrap(), b"mine");
    assert!(matches!(
        err(vfs.create("/out/evil")),
        VfsError::TrustedReadOnly { .. }
    ));
}

// ---- protected files ----

#[test]
fn protected_file_reads_with_the_right_key() {
    let f = Fixture::new();
    let data = bytes(300_000, 9);
    protect(
        &data,
        &key(),
        "enc/models/m.onnx",
        &f.p("enc/models/m.onnx"),
    );
    for limit in [u64::MAX, 0] {
        let vfs = f.builder().memory_limit(limit).build().unwrap();
        assert_eq!(&vfs.read("/data/models/m.onnx").unwrap()[..], &data[..]);
        let mut h = vfs.open("/data/models/m.onnx").unwrap();
        assert_eq!(h.kind(), FileKind::Protected);
        assert!(!h.is_in_memory());
        assert_eq!(h.len(), data.len() as u64);
        let mut back = Vec::new();
        h.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let mut mid = vec![0u8; 5000];
        h.read_at(100_000, &mut mid).unwrap();
        assert_eq!(mid, data[100_000..105_000]);
        let md = vfs.metadata("/data/models/m.onnx").unwrap();
        assert_eq!(
            (md.len, md.kind),
            (data.len() as u64, Some(FileKind::Protected))
        );
        assert!(vfs.stats().protected_bytes_decrypted >= 2 * data.len() as u64);
        assert_eq!(vfs.read_dir("/data").unwrap(), ["models"]);
        assert_eq!(vfs.read_dir("/data/models").unwrap(), ["m.onnx"]);
    }
}

#[test]
fn protected_file_with_the_wrong_key_is_refused() {
    let f = Fixture::new();
    protect(
        b"secret input",
        &other_key(),
        "enc/in.bin",
        &f.p("enc/in.bin"),
    );
    for limit in [u64::MAX, 0] {
        let vfs = f.builder().memory_limit(limit).build().unwrap();
        let e = err(vfs.open("/data/in.bin"));
        match &e {
            VfsError::Protected {
                source, key_name, ..
            } => {
                assert!(matches!(**source, ward_pf::Error::MetadataAuthentication));
                assert_eq!(key_name, "default");
            }
            other => panic!("unexpected {other}"),
        }
        assert!(e.is_integrity());
        let msg = e.to_string();
        assert!(msg.contains("protected file /data/in.bin"), "{msg}");
        assert!(msg.contains("key \"default\""), "{msg}");
        assert!(!msg.contains("secret input"));
    }
}

#[test]
fn protected_file_under_another_name_is_refused() {
    let f = Fixture::new();
    protect(
        b"alice's scan",
        &key(),
        "enc/alice.bin",
        &f.p("enc/alice.bin"),
    );
    fs::copy(f.p("enc/alice.bin"), f.p("enc/bob.bin")).unwrap();
    let vfs = f.builder().build().unwrap();
    assert_eq!(&vfs.read("/data/alice.bin").unwrap()[..], b"alice's scan");
    for limit in [u64::MAX, 0] {
        let vfs = f.builder().memory_limit(limit).build().unwrap();
        let e = err(vfs.read("/data/bob.bin"));
        let e2 = err(vfs.open("/data/bob.bin"));
        for e in [e, e2] {
            match &e {
                VfsError::Protected { source, .. } => {
                    assert!(
                        matches!(**source, ward_pf::Error::PathMismatch { .. }),
                        "{e}"
                    )
                }
                other => panic!("unexpected {other}"),
            }
            // The path it is bound to is decrypted metadata: named only by the path it was
            // opened as.
            let chain = ward_attest::ErrorChain(&e).to_string();
            assert!(chain.contains("not bound to \"enc/bob.bin\""), "{chain}");
            assert!(!chain.contains("alice"), "{chain}");
        }
    }
}

#[test]
fn damaged_files_are_refused_without_panicking() {
    let f = Fixture::new();
    let data = bytes(50_000, 1);
    protect(&data, &key(), "enc/good.bin", &f.p("enc/good.bin"));
    let good = fs::read(f.p("enc/good.bin")).unwrap();
    f.write("enc/garbage.bin", &bytes(8192, 2));
    f.write("enc/empty.bin", b"");
    f.write("enc/short.bin", &good[..good.len() - 4096]);
    f.write("enc/odd.bin", &good[..5000]);
    let mut flipped = good.clone();
    flipped[3 * 4096 + 10] ^= 0x40;
    f.write("enc/flipped.bin", &flipped);
    let mut longer = good.clone();
    longer.extend_from_slice(&[0u8; 4096]);
    f.write("enc/longer.bin", &longer);
    for limit in [u64::MAX, 0] {
        let vfs = f.builder().memory_limit(limit).build().unwrap();
        for name in ["garbage", "empty", "short", "odd", "longer"] {
            let p = format!("/data/{name}.bin");
            let e = err(vfs.open(&p));
            assert!(e.is_integrity(), "{p}: {e}");
            assert!(matches!(err(vfs.read(&p)), VfsError::Protected { .. }));
        }
        // A flipped data node: refused by read (whole file), at the node when streamed by open.
        let r = vfs.open("/data/flipped.bin").and_then(|mut h| {
            let mut buf = vec![0u8; data.len()];
            h.read_at(0, &mut buf)
        });
        assert!(err(r).is_integrity());
        assert!(matches!(
            err(vfs.read("/data/flipped.bin")),
            VfsError::Protected { .. }
        ));
    }
}

#[test]
fn pinned_protected_file_rolled_back_is_refused() {
    let f = Fixture::new();
    let host = f.p("enc/model.bin");
    let v1 = bytes(20_000, 11);
    let v2 = bytes(20_000, 12);
    protect(&v1, &key(), "enc/model.bin", &host);
    let old = fs::read(&host).unwrap();
    protect(&v2, &key(), "enc/model.bin", &host);
    for limit in [u64::MAX, 0] {
        let vfs = f
            .builder()
            .pin("/data/model.bin", sha(&v2))
            .memory_limit(limit)
            .build()
            .unwrap();
        fs::write(&host, &old).unwrap(); // the host rolls back to v1 (same key, same path)
        for e in [
            err(vfs.open("/data/model.bin")),
            err(vfs.read("/data//model.bin")),
        ] {
            assert!(
                matches!(e, VfsError::PinMismatch { .. }) && e.is_integrity(),
                "{e}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains("protected file /data/model.bin (host ")
                    && msg.contains(
                        "does not match its pinned SHA-256 (rolled back or substituted?)"
                    ),
                "{msg}"
            );
            assert!(msg.contains(&hex::encode(sha(&v2))), "{msg}");
            assert!(
                !msg.contains(&hex::encode(sha(&v1))),
                "the found hash must not leak: {msg}"
            );
        }
        protect(&v2, &key(), "enc/model.bin", &host); // current version
        assert_eq!(&vfs.read("/data/model.bin").unwrap()[..], &v2[..]);
        let mut h = vfs.open("/data/model.bin").unwrap();
        assert_eq!(h.is_in_memory(), limit == u64::MAX);
        let mut back = Vec::new();
        h.read_to_end(&mut back).unwrap();
        assert_eq!(back, v2);
        // Pinned files are inputs: read-only.
        assert!(matches!(
            err(vfs.create("/data/model.bin")),
            VfsError::PinnedReadOnly { .. }
        ));
    }
}

#[test]
fn create_under_encrypted_mount_commits_a_bound_protected_file() {
    let f = Fixture::new();
    let vfs = f.builder().build().unwrap();
    vfs.create_dir_all("/data/results").unwrap();
    let result = bytes(100_000, 4);
    let mut w = vfs.create("/data/results/result.txt").unwrap();
    for part in result.chunks(777) {
        w.write_all(part).unwrap();
    }
    assert!(!f.p("enc/results/result.txt").exists());
    w.commit().unwrap();
    no_temp_files(&f.p("enc/results"));

    let host = f.p("enc/results/result.txt");
    let file = fs::File::open(&host).unwrap();
    let mut plain = Vec::new();
    let info = ward_pf::decrypt(
        &file,
        &key(),
        Some("enc/results/result.txt"),
        &mut plain,
        ward_pf::Options::default(),
    )
    .unwrap();
    assert_eq!(info.bound_path, "enc/results/result.txt");
    assert_eq!(plain, result);
    assert_eq!(
        &vfs.read("/data/results/result.txt").unwrap()[..],
        &result[..]
    );
    assert!(ward_pf::decrypt(
        &file,
        &other_key(),
        None,
        &mut Vec::new(),
        Default::default()
    )
    .is_err());
    let s = vfs.stats();
    assert_eq!(
        (s.files_committed, s.protected_bytes_encrypted),
        (1, result.len() as u64)
    );
    let loc = vfs.locate("/data/results/result.txt").unwrap();
    assert_eq!(loc.bound_path.as_deref(), Some("enc/results/result.txt"));
    assert_eq!(
        loc.mount_type,
        MountType::Encrypted {
            key_name: "default".into()
        }
    );
}

#[test]
fn uncommitted_writer_leaves_nothing() {
    let f = Fixture::new();
    protect(
        b"previous result",
        &key(),
        "enc/result.txt",
        &f.p("enc/result.txt"),
    );
    let before = fs::read(f.p("enc/result.txt")).unwrap();
    let vfs = f.builder().build().unwrap();
    {
        let mut w = vfs.create("/data/result.txt").unwrap();
        w.write_all(&bytes(50_000, 6)).unwrap();
        // The workload fails here.
    }
    {
        let mut w = vfs.create("/data/other.txt").unwrap();
        w.write_all(b"partial").unwrap();
    }
    assert_eq!(fs::read(f.p("enc/result.txt")).unwrap(), before);
    assert!(!f.p("enc/other.txt").exists());
    no_temp_files(&f.p("enc"));
    assert_eq!(
        &vfs.read("/data/result.txt").unwrap()[..],
        b"previous result"
    );
    assert_eq!(vfs.stats().files_committed, 0);
    // A missing directory is refused with what to do.
    let e = err(vfs.create("/data/nodir/x"));
    assert!(e.to_string().contains("create it first"), "{e}");
}

// ---- tmpfs ----

#[test]
fn tmpfs_round_trip() {
    let f = Fixture::new();
    let vfs = f.builder().build().unwrap();
    assert!(matches!(
        err(vfs.open("/tmp/a.txt")),
        VfsError::NotFound { .. }
    ));
    let mut w = vfs.create("/tmp/a.txt").unwrap();
    w.write_all(b"scratch").unwrap();
    assert!(!vfs.exists("/tmp/a.txt"));
    w.commit().unwrap();
    assert_eq!(&vfs.read("/tmp/a.txt").unwrap()[..], b"scratch");
    let mut h = vfs.open("/tmp/a.txt").unwrap();
    assert_eq!(h.kind(), FileKind::Tmpfs);

    // An open handle keeps the version it opened.
    let mut w = vfs.create("/tmp/a.txt").unwrap();
    w.write_all(b"second").unwrap();
    w.commit().unwrap();
    let mut s = String::new();
    h.read_to_string(&mut s).unwrap();
    assert_eq!(s, "scratch");
    assert_eq!(&*vfs.read_to_string("/tmp/a.txt").unwrap(), "second");

    assert!(matches!(
        err(vfs.create("/tmp/d/x")),
        VfsError::NotFound { .. }
    ));
    vfs.create_dir_all("/tmp/d/e").unwrap();
    let mut w = vfs.create("/tmp/d/x").unwrap();
    w.write_all(b"x").unwrap();
    w.commit().unwrap();
    drop(vfs.create("/tmp/d/dropped").unwrap());
    assert_eq!(vfs.read_dir("/tmp").unwrap(), ["a.txt", "d"]);
    assert_eq!(vfs.read_dir("/tmp/d").unwrap(), ["e", "x"]);
    assert!(vfs.metadata("/tmp/d").unwrap().is_dir());
    assert_eq!(vfs.metadata("/tmp/d/x").unwrap().len, 1);
    assert!(matches!(
        err(vfs.open("/tmp/d")),
        VfsError::IsADirectory { .. }
    ));
    assert!(matches!(
        err(vfs.create("/tmp/a.txt/y")),
        VfsError::NotADirectory { .. }
    ));
    assert!(matches!(
        err(vfs.read_to_string("/tmp/bin")),
        VfsError::NotFound { .. }
    ));
    let mut w = vfs.create("/tmp/bin").unwrap();
    w.write_all(&[0xff, 0xfe]).unwrap();
    w.commit().unwrap();
    assert!(matches!(
        err(vfs.read_to_string("/tmp/bin")),
        VfsError::NotUtf8 { valid_up_to: 0, .. }
    ));
    // Nothing reached the host.
    assert!(fs::read_dir(f.p("out")).unwrap().next().is_none());
}

// ---- configuration ----

#[test]
fn encrypted_mount_without_its_key_is_refused_at_build() {
    let f = Fixture::new();
    let e = err(Vfs::builder()
        .encrypted("/models", f.p("enc"), "enc", "model_key")
        .key("default", key())
        .build());
    assert!(matches!(e, VfsError::MissingKey { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("/models") && msg.contains("\"model_key\""),
        "{msg}"
    );
}

#[test]
fn bad_configurations_are_refused_at_build() {
    let f = Fixture::new();
    let e = err(f.builder().chroot("/app/", f.p("out")).build());
    assert!(
        matches!(e, VfsError::DuplicateMount { ref path } if path == "/app"),
        "{e}"
    );
    let e = err(f.builder().chroot("app", f.p("out")).build());
    assert!(e.to_string().contains("not absolute"), "{e}");
    let e = err(f.builder().pin("/app/x", [0; 32]).build());
    assert!(
        e.to_string()
            .contains("only protected files under an encrypted mount can be pinned"),
        "{e}"
    );
    let e = err(f.builder().key("default", other_key()).build());
    assert!(e.to_string().contains("given twice"), "{e}");
    let e = err(f
        .builder()
        .trusted(f.p("app/x"), [1; 32])
        .trusted(f.p("app/x"), [2; 32])
        .build());
    assert!(e.to_string().contains("different hashes"), "{e}");
    // Debug output names keys, never their bytes.
    let vfs = f.builder().build().unwrap();
    let dbg = format!("{vfs:?}");
    assert!(dbg.contains("default") && !dbg.contains("[7, 7"), "{dbg}");
}

#[test]
fn read_dir_lists_what_the_workload_may_open() {
    let f = Fixture::new();
    let t = f.write("app/lib/trusted.py", b"t");
    f.write("app/lib/unlisted.py", b"u");
    f.write("app/hidden/unlisted.py", b"u");
    f.write("app/main.py", b"m");
    let vfs = Vfs::builder()
        .chroot("/", f.p("app"))
        .chroot("/srv/www", f.p("out"))
        .encrypted("/data", f.p("enc"), "enc", "default")
        .key("default", key())
        .trusted(&t, sha(b"t"))
        .allowed(f.p("app/main.py"))
        .build()
        .unwrap();
    assert_eq!(
        vfs.read_dir("/").unwrap(),
        ["data", "lib", "main.py", "srv"]
    );
    assert_eq!(vfs.read_dir("/lib").unwrap(), ["trusted.py"]);
    assert!(vfs.read_dir("/hidden").unwrap().is_empty());
    assert_eq!(vfs.read_dir("/srv").unwrap(), ["www"]);
    assert!(matches!(
        err(vfs.read_dir("/main.py")),
        VfsError::NotADirectory { .. }
    ));
    // Without a root mount, "/" and "/srv" are virtual directories of mount points.
    let vfs = f.builder().chroot("/srv/www", f.p("out")).build().unwrap();
    assert_eq!(
        vfs.read_dir("/").unwrap(),
        ["app", "data", "out", "srv", "tmp"]
    );
    assert_eq!(vfs.read_dir("/srv").unwrap(), ["www"]);
    assert!(vfs.metadata("/srv").unwrap().is_dir());
    assert!(matches!(
        err(vfs.open("/srv")),
        VfsError::IsADirectory { .. }
    ));
}

#[test]
fn vfs_is_shared_across_threads() {
    let f = Fixture::new();
    let data = bytes(100_000, 8);
    let host = f.write("app/shared.bin", &data);
    protect(&data, &key(), "enc/shared.bin", &f.p("enc/shared.bin"));
    let vfs = f
        .builder()
        .trusted(&host, sha(&data))
        .memory_limit(0)
        .chunk_size(8192)
        .build()
        .unwrap();
    std::thread::scope(|s| {
        for i in 0..4 {
            let vfs = &vfs;
            let data = &data;
            s.spawn(move || {
                let p = if i % 2 == 0 {
                    "/app/shared.bin"
                } else {
                    "/data/shared.bin"
                };
                let mut back = Vec::new();
                vfs.open(p).unwrap().read_to_end(&mut back).unwrap();
                assert_eq!(&back, data);
                let mut w = vfs.create(&format!("/tmp/t{i}")).unwrap();
                w.write_all(&back).unwrap();
                w.commit().unwrap();
            });
        }
    });
    assert_eq!(vfs.read_dir("/tmp").unwrap().len(), 4);
    assert_eq!(vfs.stats().files_opened, 4);
}

// ---- path normalisation, by property ----

mod props {
    use super::*;
    use proptest::prelude::*;
    use ward_runtime::vfs::normalize_path;

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just(String::new()),
            Just("data".to_string()),
            Just("app".to_string()),
            Just("...".to_string()),
            "[a-z.]{1,4}",
        ]
    }

    fn workload_path() -> impl Strategy<Value = String> {
        (any::<bool>(), prop::collection::vec(segment(), 0..12)).prop_map(|(abs, segs)| {
            let p = segs.join("/");
            if abs {
                format!("/{p}")
            } else {
                p
            }
        })
    }

    proptest! {
        #[test]
        fn normalised_paths_are_canonical(p in workload_path()) {
            prop_assume!(!p.is_empty());
            let n = normalize_path(&p).unwrap();
            prop_assert!(n.starts_with('/'));
            prop_assert!(n == "/" || !n.ends_with('/'));
            for c in n.split('/').skip(1).filter(|_| n != "/") {
                prop_assert!(!c.is_empty() && c != "." && c != "..", "{n}");
            }
            prop_assert_eq!(normalize_path(&n).unwrap(), n.clone());
            // Gramine's normalisation agrees on absolute paths.
            prop_assert_eq!(ward_pf::normalize(&format!("/{p}")), n);
        }

        #[test]
        fn resolved_host_paths_stay_in_their_mount(p in workload_path()) {
            prop_assume!(!p.is_empty());
            let vfs = Vfs::builder()
                .chroot("/", "/srv/root")
                .chroot("/app", "/srv/app")
                .encrypted("/app/data", "/srv/enc", "enc", "k")
                .key("k", WrapKey::from_bytes([1; 16]))
                .tmpfs("/tmp")
                .build()
                .unwrap();
            let loc = vfs.locate(&p).unwrap();
            let host = loc.host.clone();
            match loc.mount.as_str() {
                "/" => prop_assert!(host.unwrap().starts_with("/srv/root")),
                "/app" => prop_assert!(host.unwrap().starts_with("/srv/app")),
                "/app/data" => {
                    prop_assert!(host.unwrap().starts_with("/srv/enc"));
                    let bound = loc.bound_path.unwrap();
                    prop_assert!(bound == "enc" || bound.starts_with("enc/"), "{bound}");
                    prop_assert!(!bound.split('/').any(|c| c == ".."), "{bound}");
                }
                "/tmp" => prop_assert!(host.is_none()),
                m => prop_assert!(false, "unexpected mount {m}"),
            }
            if let Some(h) = loc.host {
                prop_assert!(!h.components().any(|c| c == std::path::Component::ParentDir));
            }
        }
    }
}

#[test]
fn special_files_are_refused_without_blocking() {
    let f = Fixture::new();
    let fifo = f.p("out/pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !made {
        eprintln!("mkfifo unavailable; skipped");
        return;
    }
    let vfs = f.builder().trusted(&fifo, sha(b"")).build().unwrap();
    for r in [
        vfs.open("/out/pipe").map(|_| ()),
        vfs.read("/out/pipe").map(|_| ()),
    ] {
        let e = err(r);
        assert!(matches!(e, VfsError::NotRegularFile { .. }), "{e}");
    }
    assert!(matches!(
        err(vfs.open("/out")),
        VfsError::IsADirectory { .. }
    ));
}

#[test]
fn missing_mount_directory_and_single_file_mounts() {
    let f = Fixture::new();
    let vfs = Vfs::builder()
        .chroot("/gone", f.p("nowhere"))
        .allowed(f.p("nowhere"))
        .encrypted("/result.txt", f.p("out/result.pf"), "out/result.pf", "k")
        .key("k", key())
        .build()
        .unwrap();
    let e = err(vfs.open("/gone/x"));
    assert!(matches!(e, VfsError::MountMissing { .. }), "{e}");
    assert!(
        e.to_string().contains("of mount /gone does not exist"),
        "{e}"
    );
    // A mount of a single (not yet existing) output file.
    assert!(matches!(
        err(vfs.open("/result.txt")),
        VfsError::MountMissing { .. }
    ));
    let mut w = vfs.create("/result.txt").unwrap();
    w.write_all(b"top-5: cat").unwrap();
    w.commit().unwrap();
    assert_eq!(&vfs.read("/result.txt").unwrap()[..], b"top-5: cat");
    let info = ward_pf::info(&fs::File::open(f.p("out/result.pf")).unwrap(), &key(), None).unwrap();
    assert_eq!(info.bound_path, "out/result.pf");
    assert_eq!(vfs.read_dir("/").unwrap(), ["gone", "result.txt"]);
}

// ---- whole-file reads are bounded ----

#[test]
fn whole_reads_above_the_limit_are_refused_before_reading() {
    let f = Fixture::new();
    let limit = 64 * 1024;
    let big = bytes(limit as usize + 1000, 9);
    let small = bytes(1000, 3);
    let trusted = f.write("app/big.bin", &big);
    f.write("out/big.bin", &big);
    protect(&big, &key(), "enc/big.bin", &f.p("enc/big.bin"));
    protect(&big, &key(), "enc/pinned.bin", &f.p("enc/pinned.bin"));
    protect(&small, &key(), "enc/small.bin", &f.p("enc/small.bin"));
    let vfs = f
        .builder()
        .trusted(&trusted, sha(&big))
        .pin("/data/pinned.bin", sha(&big))
        .whole_read_limit(limit)
        .build()
        .unwrap();
    for path in [
        "/app/big.bin",
        "/out/big.bin",
        "/data/big.bin",
        "/data/pinned.bin",
    ] {
        let e = err(vfs.read(path));
        assert!(
            matches!(&e, VfsError::TooLargeToRead { limit: l, .. } if *l == limit),
            "{path}: {e:?}"
        );
        assert_eq!(e.io_kind(), std::io::ErrorKind::FileTooLarge, "{path}");
        let msg = ward_attest::ErrorChain(&e).to_string();
        assert!(
            msg.contains(path) && msg.contains("65536-byte limit"),
            "{msg}"
        );
        // A protected file's size is decrypted metadata; neither it nor its bound path shows.
        assert!(!msg.contains(&big.len().to_string()), "{msg}");
        assert!(!msg.contains("\"enc/"), "{msg}");
        // Opening still works: read in parts, each part verified or authenticated.
        let mut h = vfs.open(path).unwrap();
        assert!(!h.is_in_memory(), "{path}");
        let mut back = Vec::new();
        h.read_to_end(&mut back).unwrap();
        assert!(back == big, "{path}: read back differs");
    }
    // Below the limit, whole reads are as before.
    assert_eq!(&vfs.read("/data/small.bin").unwrap()[..], &small[..]);
}

#[test]
fn committed_protected_outputs_are_named_by_the_metadata_node_ward_wrote() {
    let f = Fixture::new();
    let vfs = f.builder().build().unwrap();
    assert!(vfs.committed_outputs().is_empty());
    vfs.write("/data/a.txt", &bytes(10_000, 1)).unwrap();
    vfs.write("/out/plain.txt", b"not protected").unwrap();
    vfs.write("/data/a.txt", &bytes(20_000, 2)).unwrap();
    let outputs = vfs.committed_outputs();
    // Only protected files, in commit order; the last one is what is on disk.
    assert_eq!(
        outputs.iter().map(|o| o.path.as_str()).collect::<Vec<_>>(),
        ["/data/a.txt", "/data/a.txt"]
    );
    let on_disk = fs::read(f.p("enc/a.txt")).unwrap();
    assert_eq!(outputs[1].metadata_sha256, sha(&on_disk[..4096]));
    // Each version has its own metadata node (fresh keys), so an older version is told apart.
    assert_ne!(outputs[0].metadata_sha256, outputs[1].metadata_sha256);
    // A writer dropped uncommitted names nothing.
    let mut w = vfs.create("/data/b.txt").unwrap();
    w.write_all(b"dropped").unwrap();
    drop(w);
    assert_eq!(vfs.committed_outputs().len(), 2);
}
