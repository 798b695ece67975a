//! Round trips through every entry point of ward-pf at the sizes where the layout changes shape:
//! stream encrypt/decrypt, random-access reads of streamed files, streamed decryption of
//! random-access writes, the on-disk header, path binding, rewrap (in memory and in place, with
//! interrupted journals) and progress reporting.

mod common;
use common::{opts, pattern};
use std::io::Cursor;
use std::sync::{Mutex, OnceLock};

use ward_pf::layout::{self, Shape, NODE_SIZE};
use ward_pf::{
    decrypt, decrypt_to_vec, encrypt, header_info, info, journal_path, normalize, rewrap,
    rewrap_in_place, verify, Error, FileInfo, Mode, Options, ProtectedFile, Storage, Version,
    WrapKey,
};

const INLINE: usize = 3072;
const NODE: usize = NODE_SIZE;
/// One full MHT node's worth of data nodes.
const ONE_FULL_MHT: usize = INLINE + NODE * 96;
/// 97 data nodes: the second MHT node exists.
const TWO_MHTS: usize = INLINE + NODE * 97;
/// 8 full MHT groups: the streaming code's batch size today, so one batch ends exactly at the end.
const EIGHT_GROUPS: usize = INLINE + NODE * 96 * 8;
/// 96·33 + 5 data nodes: MHT 33, the first grandchild of the root, exists (~13 MB).
const DEEP: usize = INLINE + NODE * (96 * 33 + 5);

const SIZES: &[usize] = &[
    0,
    1,
    INLINE - 1,
    INLINE,
    INLINE + 1,
    4096,
    ONE_FULL_MHT,
    TWO_MHTS,
    EIGHT_GROUPS,
    EIGHT_GROUPS + 1,
    DEEP,
];

fn key() -> WrapKey {
    WrapKey::from_bytes(*b"roundtrip-key-01")
}

fn other_key() -> WrapKey {
    WrapKey::from_bytes(*b"roundtrip-key-02")
}

/// The plaintext of the largest case is made once and shared.
fn plain(size: usize) -> Vec<u8> {
    static DEEP_PLAIN: OnceLock<Vec<u8>> = OnceLock::new();
    if size == DEEP {
        DEEP_PLAIN.get_or_init(|| pattern(DEEP, 7)).clone()
    } else {
        pattern(size, 7)
    }
}

fn physical_len(size: usize) -> usize {
    Shape::for_size(size as u64).unwrap().physical_len() as usize
}

fn encrypt_vec(data: &[u8], key: &WrapKey, path: &str, threads: usize) -> (Vec<u8>, FileInfo) {
    let mut out = Vec::new();
    let info = encrypt(&mut Cursor::new(data), key, path, &mut out, opts(threads)).unwrap();
    (out, info)
}

fn decrypt_vec(cipher: &[u8], key: &WrapKey, path: Option<&str>, threads: usize) -> Vec<u8> {
    let mut out = Vec::new();
    decrypt(cipher, key, path, &mut out, opts(threads))
        .unwrap_or_else(|e| panic!("decrypt failed: {e}"));
    out
}

/// Asserts equality without dumping megabytes on failure.
#[track_caller]
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length differs");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {i}");
    }
}

#[test]
fn stream_encrypt_then_stream_decrypt_every_size_and_thread_count() {
    for &size in SIZES {
        let data = plain(size);
        let shape = Shape::for_size(size as u64).unwrap();
        for enc_threads in [1, 2] {
            let (cipher, info) = encrypt_vec(&data, &key(), "file.pf", enc_threads);
            let what = format!("size {size}, encrypted with {enc_threads} thread(s)");
            assert_eq!(cipher.len() as u64, shape.physical_len(), "{what}");
            assert_eq!(info.size, size as u64, "{what}");
            assert_eq!(info.nodes, shape.physical_nodes(), "{what}");
            assert_eq!(info.bound_path, "file.pf", "{what}");
            assert_eq!(info.version, Version::V2_0, "{what}");
            for dec_threads in [1, 2] {
                let out = decrypt_vec(&cipher, &key(), Some("file.pf"), dec_threads);
                assert_same(
                    &out,
                    &data,
                    &format!("{what}, decrypted with {dec_threads}"),
                );
                let (in_memory, got) =
                    decrypt_to_vec(&cipher[..], &key(), Some("file.pf"), opts(dec_threads))
                        .unwrap();
                let how = format!("{what}, decrypt_to_vec with {dec_threads}");
                assert_same(&in_memory, &data, &how);
                assert_eq!(got, info, "{how}");
            }
            let v = verify(&cipher, &key(), Some("file.pf"), opts(0)).unwrap();
            assert_eq!(v, info, "{what}: verify reports what encrypt reported");
            assert_eq!(
                ward_pf::info(&cipher, &key(), None).unwrap(),
                info,
                "{what}"
            );
            let h = header_info(&cipher).unwrap();
            assert_eq!(h.version, Version::V2_0);
            assert_eq!(h.nodes, shape.physical_nodes());
        }
    }
}

#[test]
fn all_cores_option_round_trips() {
    let data = plain(TWO_MHTS * 3 + 17);
    let (cipher, _) = encrypt_vec(&data, &key(), "x", 0);
    assert_same(&decrypt_vec(&cipher, &key(), None, 0), &data, "threads=0");
}

#[test]
fn encrypt_overwrites_and_trims_longer_storage() {
    // `out` is documented to be overwritten from offset 0 and set to the exact length.
    for size in [0, 10, TWO_MHTS] {
        let data = plain(size);
        let mut out = vec![0xA5u8; physical_len(TWO_MHTS) + 3 * NODE + 5];
        encrypt(
            &mut Cursor::new(&data),
            &key(),
            "reuse.pf",
            &mut out,
            opts(1),
        )
        .unwrap();
        assert_eq!(out.len(), physical_len(size), "size {size}");
        assert_same(
            &decrypt_vec(&out, &key(), Some("reuse.pf"), 1),
            &data,
            "reused storage",
        );
    }
}

#[test]
fn encrypt_reads_input_delivered_in_small_pieces() {
    /// A reader that returns at most 1000 bytes per call, and sometimes Interrupted.
    struct Dribble<'a> {
        data: &'a [u8],
        calls: usize,
    }
    impl std::io::Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(7) {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(1000).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }
    for size in [INLINE - 1, INLINE, INLINE + 1, TWO_MHTS + 123] {
        let data = plain(size);
        let mut out = Vec::new();
        let mut input = Dribble {
            data: &data,
            calls: 0,
        };
        let info = encrypt(&mut input, &key(), "d", &mut out, opts(2)).unwrap();
        assert_eq!(info.size, size as u64);
        assert_same(&decrypt_vec(&out, &key(), None, 1), &data, "dribbled input");
    }
}

#[test]
fn stream_encrypt_then_random_access_read() {
    for &size in SIZES {
        let data = plain(size);
        let (cipher, _) = encrypt_vec(&data, &key(), "ra.pf", 2);
        let mut pf = ProtectedFile::open(cipher, &key(), Some("ra.pf"), Mode::Read).unwrap();
        assert_eq!(pf.len(), size as u64);
        assert_eq!(pf.is_empty(), size == 0);

        // Everything in one call, with a buffer larger than the file.
        let mut all = vec![0xEEu8; size + 100];
        assert_eq!(pf.read_at(0, &mut all).unwrap(), size, "size {size}");
        assert_same(&all[..size], &data, &format!("size {size}, one read"));
        assert!(
            all[size..].iter().all(|&b| b == 0xEE),
            "read_at wrote past the bytes it reported"
        );

        // Odd-sized pieces, back to front, crossing node boundaries out of order.
        let mut got = vec![0u8; size];
        let step = 4093;
        let mut end = size;
        while end > 0 {
            let start = end.saturating_sub(step);
            let n = pf.read_at(start as u64, &mut got[start..end]).unwrap();
            assert_eq!(n, end - start);
            end = start;
        }
        assert_same(&got, &data, &format!("size {size}, pieces"));

        // Reads at and past the end return 0; reads straddling it are short.
        let mut b = [0u8; 10];
        assert_eq!(pf.read_at(size as u64, &mut b).unwrap(), 0);
        assert_eq!(pf.read_at(size as u64 + 12345, &mut b).unwrap(), 0);
        if size >= 3 {
            assert_eq!(pf.read_at(size as u64 - 3, &mut b).unwrap(), 3);
            assert_eq!(&b[..3], &data[size - 3..]);
        }
        // A read-only handle refuses writes.
        assert!(matches!(pf.write_at(0, b"x"), Err(Error::ReadOnly)));
        assert!(matches!(pf.set_len(0), Err(Error::ReadOnly)));
    }
}

#[test]
fn random_access_write_then_stream_decrypt() {
    for &size in SIZES {
        let data = plain(size);
        // Front to back in odd-sized chunks.
        let mut pf = ProtectedFile::create(Vec::new(), &key(), "w.pf").unwrap();
        for (i, chunk) in data.chunks(7919).enumerate() {
            pf.write_at((i * 7919) as u64, chunk).unwrap();
        }
        assert_eq!(pf.len(), size as u64);
        let cipher = pf.into_inner().unwrap();
        assert_eq!(cipher.len(), physical_len(size), "size {size}");
        for threads in [1, 2] {
            assert_same(
                &decrypt_vec(&cipher, &key(), Some("w.pf"), threads),
                &data,
                &format!("size {size}, written front to back"),
            );
        }
        verify(&cipher, &key(), Some("w.pf"), opts(2)).unwrap();
    }
}

#[test]
fn random_access_write_back_to_front_with_small_cache() {
    // The first write lands past the end (zero-filling the gap), later writes fill it in; a
    // 4-node cache forces flushes from eviction throughout.
    for &size in SIZES {
        let data = plain(size);
        let mut pf = ProtectedFile::create(Vec::new(), &key(), "b.pf").unwrap();
        pf.set_cache_capacity(4);
        let step = 10_007;
        let mut end = size;
        while end > 0 {
            let start = end.saturating_sub(step);
            pf.write_at(start as u64, &data[start..end]).unwrap();
            end = start;
        }
        assert_eq!(pf.len(), size as u64);
        let cipher = pf.into_inner().unwrap();
        assert_eq!(cipher.len(), physical_len(size), "size {size}");
        assert_same(
            &decrypt_vec(&cipher, &key(), Some("b.pf"), 2),
            &data,
            &format!("size {size}, written back to front"),
        );
    }
}

#[test]
fn random_access_on_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("real.pf");
    let data = plain(TWO_MHTS + 1);

    // Stream-encrypt into a File, random-access read it back.
    {
        // encrypt reads back the MHT nodes it wrote provisionally, so the output must be opened
        // for reading too (a write-only `File::create` handle fails with an Io error).
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        encrypt(&mut Cursor::new(&data), &key(), "real.pf", &mut f, opts(2)).unwrap();
    }
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        physical_len(data.len())
    );
    let f = std::fs::File::open(&path).unwrap();
    let mut out = Vec::new();
    decrypt(&f, &key(), Some("real.pf"), &mut out, opts(2)).unwrap();
    assert_same(&out, &data, "File source");
    let mut pf = ProtectedFile::open(f, &key(), Some("real.pf"), Mode::Read).unwrap();
    let mut got = vec![0u8; data.len()];
    assert_eq!(pf.read_at(0, &mut got).unwrap(), data.len());
    assert_same(&got, &data, "File random access");

    // Modify it in place through a read-write handle, then sync and reopen.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut pf = ProtectedFile::open(f, &key(), Some("real.pf"), Mode::ReadWrite).unwrap();
    let patch = pattern(20_000, 99);
    pf.write_at(390_000, &patch).unwrap();
    pf.sync().unwrap();
    drop(pf);
    let mut want = data.clone();
    want.resize(want.len().max(410_000), 0);
    want[390_000..410_000].copy_from_slice(&patch);
    let f = std::fs::File::open(&path).unwrap();
    assert_eq!(
        f.metadata().unwrap().len() as usize,
        physical_len(want.len())
    );
    let mut out = Vec::new();
    decrypt(&f, &key(), Some("real.pf"), &mut out, opts(1)).unwrap();
    assert_same(&out, &want, "File after in-place write");
}

#[test]
fn header_bytes_are_gramine_2_0() {
    let check = |node0: &[u8], what: &str| {
        assert_eq!(&node0[0..8], b"GRAFS_PF", "{what}: file id");
        assert_eq!(node0[8], 2, "{what}: major version");
        assert_eq!(node0[9], 0, "{what}: minor version");
        assert_eq!(node0[58], 0, "{what}: feature flags");
        assert!(
            node0[3943..4096].iter().all(|&b| b == 0),
            "{what}: padding 3943..4096 is not zero"
        );
    };
    for size in [0, 1, INLINE, INLINE + 1, TWO_MHTS] {
        let data = plain(size);
        let (a, _) = encrypt_vec(&data, &key(), "h.pf", 1);
        check(&a[..NODE], &format!("encrypt, size {size}"));

        let mut pf = ProtectedFile::create(Vec::new(), &key(), "h.pf").unwrap();
        pf.write_at(0, &data).unwrap();
        let b = pf.into_inner().unwrap();
        check(&b[..NODE], &format!("ProtectedFile, size {size}"));

        let mut c = a.clone();
        rewrap(&mut c, &key(), &other_key(), None).unwrap();
        check(&c[..NODE], &format!("rewrap, size {size}"));

        // A fresh KDF nonce on every write: the same plaintext never gives the same node 0.
        let (a2, _) = encrypt_vec(&data, &key(), "h.pf", 1);
        assert_ne!(a[10..42], a2[10..42], "nonce reused across encryptions");
        assert_ne!(a[10..42], c[10..42], "nonce reused by rewrap");
        assert_ne!(a[59..3943], a2[59..3943], "metadata ciphertext repeated");
    }
}

#[test]
fn flush_writes_a_fresh_nonce_each_time() {
    let mut pf = ProtectedFile::create(Vec::new(), &key(), "n.pf").unwrap();
    pf.write_at(0, b"one").unwrap();
    let first = pf.into_inner().unwrap();
    let mut pf = ProtectedFile::open(first.clone(), &key(), None, Mode::ReadWrite).unwrap();
    pf.write_at(0, b"two").unwrap();
    let second = pf.into_inner().unwrap();
    assert_ne!(first[10..42], second[10..42]);
    assert_eq!(decrypt_vec(&second, &key(), None, 1), b"two");
}

#[test]
fn bound_path_is_normalised() {
    let data = plain(5000);
    let (cipher, i) = encrypt_vec(&data, &key(), "./a/../b.pf", 1);
    assert_eq!(i.bound_path, "b.pf");
    assert_eq!(
        ward_pf::info(&cipher, &key(), None).unwrap().bound_path,
        "b.pf"
    );
    for ok in ["b.pf", "./b.pf", "a/../b.pf", ".//b.pf", "x/y/../../b.pf"] {
        assert_same(
            &decrypt_vec(&cipher, &key(), Some(ok), 1),
            &data,
            &format!("opened as {ok:?}"),
        );
        ProtectedFile::open(cipher.clone(), &key(), Some(ok), Mode::Read).unwrap();
    }
    for bad in ["c.pf", "a/b.pf", "/b.pf", "../b.pf", "b.pf/x", "B.pf"] {
        let err = info(&cipher, &key(), Some(bad)).unwrap_err();
        match &err {
            Error::PathMismatch { expected } => assert_eq!(expected, &normalize(bad)),
            e => panic!("{bad:?}: expected PathMismatch, got {e:?}"),
        }
        let err = decrypt(&cipher, &key(), Some(bad), &mut Vec::new(), opts(1)).unwrap_err();
        assert!(
            matches!(err, Error::PathMismatch { .. }),
            "{bad:?}: {err:?}"
        );
        let err = ProtectedFile::open(cipher.clone(), &key(), Some(bad), Mode::Read).unwrap_err();
        assert!(
            matches!(err, Error::PathMismatch { .. }),
            "{bad:?}: {err:?}"
        );
    }
    // Without an expected path there is no check.
    assert_same(&decrypt_vec(&cipher, &key(), None, 1), &data, "no path");

    // Absolute paths stay absolute, relative ones relative, leading `..` is kept.
    for (given, bound) in [
        ("/srv//data/./m.pt", "/srv/data/m.pt"),
        ("/../etc/x", "/etc/x"),
        ("../up/./f", "../up/f"),
        ("d/e/../", "d"),
    ] {
        let (c, i) = encrypt_vec(b"abc", &key(), given, 1);
        assert_eq!(i.bound_path, bound, "{given:?}");
        info(&c, &key(), Some(bound)).unwrap();
        info(&c, &key(), Some(given)).unwrap();
    }

    // ProtectedFile::create normalises too.
    let mut pf = ProtectedFile::create(Vec::new(), &key(), "./a/../b.pf").unwrap();
    assert_eq!(pf.bound_path(), "b.pf");
    pf.write_at(0, &data).unwrap();
    let c = pf.into_inner().unwrap();
    assert_eq!(info(&c, &key(), Some("b.pf")).unwrap().bound_path, "b.pf");
    assert!(matches!(
        info(&c, &key(), Some("a/b.pf")),
        Err(Error::PathMismatch { .. })
    ));
}

#[test]
fn path_limits() {
    let longest = "p".repeat(771);
    let (c, i) = encrypt_vec(b"x", &key(), &longest, 1);
    assert_eq!(i.bound_path, longest);
    info(&c, &key(), Some(&longest)).unwrap();
    let too_long = "p".repeat(772);
    let err = encrypt(
        &mut Cursor::new(b"x"),
        &key(),
        &too_long,
        &mut Vec::new(),
        opts(1),
    )
    .unwrap_err();
    assert!(matches!(err, Error::PathTooLong { len: 772 }), "{err:?}");
    assert!(matches!(
        ProtectedFile::create(Vec::new(), &key(), &too_long),
        Err(Error::PathTooLong { .. })
    ));
    let err = encrypt(
        &mut Cursor::new(b"x"),
        &key(),
        "a\0b",
        &mut Vec::new(),
        opts(1),
    )
    .unwrap_err();
    assert!(matches!(err, Error::PathHasNul), "{err:?}");
}

#[test]
fn rewrap_in_memory_switches_keys_and_touches_node_0_only() {
    for size in [0, 100, INLINE + 1, TWO_MHTS + 5] {
        let data = plain(size);
        let (orig, _) = encrypt_vec(&data, &key(), "rw.pf", 2);
        let mut c = orig.clone();
        let i = rewrap(&mut c, &key(), &other_key(), Some("./rw.pf")).unwrap();
        assert_eq!(i.size, size as u64);
        assert_eq!(i.bound_path, "rw.pf");
        assert_eq!(i.version, Version::V2_0);
        assert_eq!(c.len(), orig.len());
        assert_eq!(c[NODE..], orig[NODE..], "rewrap changed nodes past node 0");
        assert_ne!(c[..NODE], orig[..NODE]);

        // The old key no longer opens it, by any entry point.
        let err = decrypt(&c, &key(), None, &mut Vec::new(), opts(1)).unwrap_err();
        assert!(matches!(err, Error::MetadataAuthentication), "{err:?}");
        assert!(matches!(
            verify(&c, &key(), None, opts(1)),
            Err(Error::MetadataAuthentication)
        ));
        assert!(matches!(
            info(&c, &key(), None),
            Err(Error::MetadataAuthentication)
        ));
        assert!(matches!(
            ProtectedFile::open(c.clone(), &key(), None, Mode::Read),
            Err(Error::MetadataAuthentication)
        ));
        // The new key gives the same plaintext, through both readers.
        assert_same(
            &decrypt_vec(&c, &other_key(), Some("rw.pf"), 2),
            &data,
            "after rewrap",
        );
        let mut pf = ProtectedFile::open(c.clone(), &other_key(), None, Mode::Read).unwrap();
        let mut got = vec![0u8; size];
        assert_eq!(pf.read_at(0, &mut got).unwrap(), size);
        assert_same(&got, &data, "after rewrap, random access");

        // Rewrapping back restores access under the first key.
        rewrap(&mut c, &other_key(), &key(), None).unwrap();
        assert_same(&decrypt_vec(&c, &key(), None, 1), &data, "rewrapped back");
    }
}

#[test]
fn rewrap_refuses_wrong_old_key_or_path_and_leaves_the_file_alone() {
    let data = plain(INLINE + 10);
    let (orig, _) = encrypt_vec(&data, &key(), "rw.pf", 1);
    let mut c = orig.clone();
    let third = WrapKey::from_bytes([3; 16]);
    let err = rewrap(&mut c, &third, &other_key(), None).unwrap_err();
    assert!(matches!(err, Error::MetadataAuthentication), "{err:?}");
    assert_eq!(c, orig);
    let err = rewrap(&mut c, &key(), &other_key(), Some("other.pf")).unwrap_err();
    assert!(matches!(err, Error::PathMismatch { .. }), "{err:?}");
    assert_eq!(c, orig);
}

/// Writes `data` encrypted under `key()` to `dir/name` and returns the path.
fn encrypted_file(dir: &std::path::Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    let (c, _) = encrypt_vec(data, &key(), name, 1);
    std::fs::write(&path, c).unwrap();
    path
}

fn decrypt_file(path: &std::path::Path, key: &WrapKey) -> ward_pf::Result<Vec<u8>> {
    let f = std::fs::File::open(path).unwrap();
    let mut out = Vec::new();
    decrypt(&f, key, None, &mut out, opts(1))?;
    Ok(out)
}

#[test]
fn rewrap_in_place_basic() {
    let dir = tempfile::tempdir().unwrap();
    let data = plain(TWO_MHTS + 77);
    let path = encrypted_file(dir.path(), "f.pf", &data);
    let before = std::fs::read(&path).unwrap();
    let i = rewrap_in_place(&path, &key(), &other_key(), Some("f.pf")).unwrap();
    assert_eq!(i.size, data.len() as u64);
    assert_eq!(i.bound_path, "f.pf");
    assert!(!journal_path(&path).exists(), "journal left behind");
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after.len(), before.len());
    assert_eq!(after[NODE..], before[NODE..]);
    assert!(matches!(
        decrypt_file(&path, &key()),
        Err(Error::MetadataAuthentication)
    ));
    assert_same(
        &decrypt_file(&path, &other_key()).unwrap(),
        &data,
        "in place",
    );

    // Wrong old key: refused, nothing changed, no journal.
    let err = rewrap_in_place(&path, &key(), &other_key(), None).unwrap_err();
    assert!(matches!(err, Error::MetadataAuthentication), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), after);
    assert!(!journal_path(&path).exists());
}

#[test]
fn journal_path_is_beside_the_file() {
    let p = std::path::Path::new("/some/dir/model.pf");
    let j = journal_path(p);
    assert_eq!(j.parent(), p.parent());
    assert_ne!(j, p);
}

#[test]
fn rewrap_in_place_rolls_a_complete_journal_forward() {
    let dir = tempfile::tempdir().unwrap();
    let data = plain(INLINE + 3 * NODE + 9);
    let path = encrypted_file(dir.path(), "j.pf", &data);
    let original = std::fs::read(&path).unwrap();

    // What an interrupted run would have left: node 0 under the new key, synced to the journal,
    // while the file itself still has its old node 0.
    let mut rewrapped = original.clone();
    rewrap(&mut rewrapped, &key(), &other_key(), None).unwrap();
    let journal = journal_path(&path);
    std::fs::write(&journal, &rewrapped[..NODE]).unwrap();

    let i = rewrap_in_place(&path, &key(), &other_key(), Some("j.pf")).unwrap();
    assert_eq!(i.size, data.len() as u64);
    assert!(!journal.exists(), "journal not removed after roll-forward");
    // Node 0 still opened under the old key, so the rewrap is simply done afresh.
    let now = std::fs::read(&path).unwrap();
    assert_eq!(now[NODE..], original[NODE..]);
    assert_same(&decrypt_file(&path, &other_key()).unwrap(), &data, "rolled");
    assert!(matches!(
        decrypt_file(&path, &key()),
        Err(Error::MetadataAuthentication)
    ));

    // Interrupted after node 0 was written but before the journal was removed: the run
    // completes (idempotently) and the file stays readable under the new key.
    std::fs::write(&journal, &rewrapped[..NODE]).unwrap();
    rewrap_in_place(&path, &key(), &other_key(), None).unwrap();
    assert!(!journal.exists());
    assert_same(&decrypt_file(&path, &other_key()).unwrap(), &data, "again");

    // Torn write of node 0 (half old, half new): opens under neither key, so the journal,
    // which matches the file's MHT root and size, is written over it.
    let mut torn = original.clone();
    torn[NODE / 2..NODE].copy_from_slice(&rewrapped[NODE / 2..NODE]);
    std::fs::write(&path, &torn).unwrap();
    std::fs::write(&journal, &rewrapped[..NODE]).unwrap();
    rewrap_in_place(&path, &key(), &other_key(), Some("j.pf")).unwrap();
    assert!(!journal.exists());
    let now = std::fs::read(&path).unwrap();
    assert!(
        now[..NODE] == rewrapped[..NODE],
        "journal not applied over a torn node 0"
    );
    assert_same(&decrypt_file(&path, &other_key()).unwrap(), &data, "torn");

    // A torn node 0 with a journal from another file is refused and nothing is written.
    let other = encrypted_file(dir.path(), "o.pf", &plain(INLINE + 3 * NODE + 9));
    let mut other_rewrapped = std::fs::read(&other).unwrap();
    rewrap(&mut other_rewrapped, &key(), &other_key(), None).unwrap();
    std::fs::write(&path, &torn).unwrap();
    std::fs::write(&journal, &other_rewrapped[..NODE]).unwrap();
    let err = rewrap_in_place(&path, &key(), &other_key(), None).unwrap_err();
    assert!(matches!(err, Error::Journal { .. }), "{err}");
    assert!(
        std::fs::read(&path).unwrap() == torn,
        "file changed on refusal"
    );
}

#[test]
fn rewrap_in_place_discards_an_incomplete_journal() {
    let dir = tempfile::tempdir().unwrap();
    let data = plain(INLINE + NODE);
    let path = encrypted_file(dir.path(), "k.pf", &data);
    let journal = journal_path(&path);

    // A journal cut short (100 bytes of a node), and one that is a full node of junk.
    let mut rewrapped = std::fs::read(&path).unwrap();
    rewrap(&mut rewrapped, &key(), &other_key(), None).unwrap();
    for junk in [rewrapped[..100].to_vec(), vec![0x5Au8; NODE]] {
        let path_bytes = std::fs::read(&path).unwrap();
        std::fs::write(&journal, &junk).unwrap();
        rewrap_in_place(&path, &key(), &other_key(), Some("k.pf")).unwrap();
        assert!(!journal.exists(), "incomplete journal not removed");
        assert_same(
            &decrypt_file(&path, &other_key()).unwrap(),
            &data,
            "after discarding",
        );
        assert_eq!(std::fs::read(&path).unwrap()[NODE..], path_bytes[NODE..]);
        // Back to the first key for the next round.
        rewrap_in_place(&path, &other_key(), &key(), None).unwrap();
    }

    // A junk journal next to a file that opens under neither key is reported, not discarded.
    std::fs::write(&journal, &rewrapped[..100]).unwrap();
    let third = WrapKey::from_bytes([3; 16]);
    let err = rewrap_in_place(&path, &third, &other_key(), None).unwrap_err();
    assert!(matches!(err, Error::Journal { .. }), "{err:?}");
    assert!(journal.exists());
    assert_same(&decrypt_file(&path, &key()).unwrap(), &data, "untouched");
}

#[test]
fn progress_is_monotonic_and_ends_at_the_size() {
    for &size in &[0, 1, INLINE, INLINE + 1, TWO_MHTS, DEEP] {
        let data = plain(size);
        for threads in [1, 2] {
            let seen = Mutex::new(Vec::new());
            let cb = |n: u64| seen.lock().unwrap().push(n);
            let o = Options {
                threads,
                progress: Some(&cb),
                ..Options::default()
            };
            let mut cipher = Vec::new();
            encrypt(&mut Cursor::new(&data), &key(), "p", &mut cipher, o).unwrap();
            let enc = std::mem::take(&mut *seen.lock().unwrap());
            decrypt(&cipher, &key(), None, &mut Vec::new(), o).unwrap();
            let dec = std::mem::take(&mut *seen.lock().unwrap());
            verify(&cipher, &key(), None, o).unwrap();
            let ver = std::mem::take(&mut *seen.lock().unwrap());
            for (what, v) in [("encrypt", &enc), ("decrypt", &dec), ("verify", &ver)] {
                assert!(!v.is_empty(), "{what} size {size}: no progress reported");
                assert!(
                    v.windows(2).all(|w| w[0] <= w[1]),
                    "{what} size {size}: progress went backwards: {v:?}"
                );
                assert_eq!(
                    *v.last().unwrap(),
                    size as u64,
                    "{what} size {size}: progress did not end at the size"
                );
                if size == DEEP {
                    assert!(v.len() > 2, "{what}: a 13 MB file reported progress once");
                }
            }
        }
    }
}

#[test]
fn shapes_match_the_spec_placement() {
    // The placement rules of FORMATS.md §1, as the tests above rely on them.
    assert_eq!(layout::data_physical(0), 2);
    assert_eq!(layout::data_physical(96), 99);
    assert_eq!(layout::mht_physical(1), 98);
    assert_eq!(layout::mht_physical(33), 1 + 97 * 33);
    let s = Shape::for_size(DEEP as u64).unwrap();
    assert_eq!(s.data_nodes, 96 * 33 + 5);
    assert_eq!(s.mht_nodes, 34);
    assert_eq!(physical_len(0), NODE);
    assert_eq!(physical_len(INLINE), NODE);
    assert_eq!(physical_len(INLINE + 1), 3 * NODE);
    assert_eq!(physical_len(ONE_FULL_MHT), 98 * NODE);
    assert_eq!(physical_len(TWO_MHTS), 100 * NODE);
}

#[test]
fn storage_of_vec_grows_on_write() {
    // Vec<u8> as Storage: the in-memory backing the tests rely on.
    let mut v: Vec<u8> = Vec::new();
    Storage::write_all_at(&mut v, b"abc", 5).unwrap();
    assert_eq!(v, [0, 0, 0, 0, 0, b'a', b'b', b'c']);
    Storage::set_len(&mut v, 2).unwrap();
    assert_eq!(v.len(), 2);
}

#[test]
fn huge_offsets_are_refused_without_panicking() {
    let mut pf = ProtectedFile::create(Vec::new(), &key(), "huge.pf").unwrap();
    let err = pf.write_at(u64::MAX - 1, b"ab").unwrap_err();
    assert!(matches!(err, Error::TooLarge), "{err:?}");
    let err = pf.set_len(u64::MAX).unwrap_err();
    assert!(matches!(err, Error::TooLarge), "{err:?}");
    assert_eq!(pf.read_at(u64::MAX, &mut [0u8; 4]).unwrap(), 0);
    // The handle is still usable and the file still empty.
    pf.write_at(0, b"ok").unwrap();
    let c = pf.into_inner().unwrap();
    assert_eq!(decrypt_vec(&c, &key(), None, 1), b"ok");
}

#[test]
fn rewrap_in_place_does_not_apply_a_stale_journal_over_newer_content() {
    // A rewrap that crashed after syncing its journal leaves the file intact under the old key,
    // so it stays usable: here it is modified (through ProtectedFile, which knows nothing of the
    // journal) before the rewrap is retried. The journal now describes an older version of the
    // file; rolling it forward would put the old metadata (old size, old inline data, old root
    // MHT key) over the new nodes.
    for (old_len, new_len) in [(1000, 1000), (INLINE + 5 * NODE, INLINE + 5 * NODE)] {
        let dir = tempfile::tempdir().unwrap();
        let old_data = plain(old_len);
        let path = encrypted_file(dir.path(), "s.pf", &old_data);
        let mut rewrapped = std::fs::read(&path).unwrap();
        rewrap(&mut rewrapped, &key(), &other_key(), None).unwrap();
        std::fs::write(journal_path(&path), &rewrapped[..NODE]).unwrap();

        // The file is changed under the old key.
        let new_data = pattern(new_len, 1234);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut pf = ProtectedFile::open(f, &key(), None, Mode::ReadWrite).unwrap();
        pf.write_at(0, &new_data).unwrap();
        pf.sync().unwrap();
        drop(pf);
        assert_same(&decrypt_file(&path, &key()).unwrap(), &new_data, "updated");

        // Retrying the rewrap must keep the new content (or refuse), never lose or revert it.
        match rewrap_in_place(&path, &key(), &other_key(), None) {
            Ok(_) => {
                let got = decrypt_file(&path, &other_key());
                match got {
                    Ok(got) => {
                        assert!(
                            got != old_data || old_data == new_data,
                            "size {old_len}: stale journal silently reverted the file to its old content"
                        );
                        assert_same(&got, &new_data, "after retried rewrap");
                    }
                    Err(e) => panic!(
                        "size {old_len}: stale journal rolled forward, file no longer decrypts: {e:?}"
                    ),
                }
            }
            Err(e) => {
                // Refusing is acceptable if the file is left as it was.
                assert_same(
                    &decrypt_file(&path, &key()).unwrap(),
                    &new_data,
                    &format!("refused with {e:?}"),
                );
            }
        }
    }
}

/// Runs `f` on its own thread and fails the test if it has not finished within a minute (a
/// stuck writer pipeline would otherwise hang the whole suite).
fn within_a_minute<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{what}: hung"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

/// A `Write` that accepts `limit` bytes, then fails.
struct FailingWriter {
    limit: usize,
    written: Vec<u8>,
}

impl std::io::Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written.len() >= self.limit {
            return Err(std::io::Error::other("disk full"));
        }
        let n = buf.len().min(self.limit - self.written.len());
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// In-memory storage whose writes start failing after `writes_left` calls; with `transient`, only
/// that one write fails and later ones succeed again.
struct FailingStorage {
    inner: Vec<u8>,
    writes_left: usize,
    transient: bool,
}

impl ward_pf::Source for FailingStorage {
    fn byte_len(&self) -> std::io::Result<u64> {
        Ok(self.inner.len() as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
}

impl Storage for FailingStorage {
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        if self.writes_left == 0 {
            if self.transient {
                self.writes_left = usize::MAX;
            }
            return Err(std::io::Error::other("disk full"));
        }
        self.writes_left -= 1;
        self.inner.write_all_at(buf, offset)
    }
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        Storage::set_len(&mut self.inner, len)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn output_write_errors_are_reported_not_hung() {
    let data = plain(DEEP);
    let (cipher, _) = encrypt_vec(&data, &key(), "io.pf", 2);
    for limit in [0, 100, INLINE, INLINE + 1, 500_000, 4_000_000, DEEP - 1] {
        for threads in [1, 2] {
            let cipher = cipher.clone();
            let want = data[..limit].to_vec();
            within_a_minute("decrypt into a failing writer", move || {
                let mut w = FailingWriter {
                    limit,
                    written: Vec::new(),
                };
                let err = decrypt(&cipher, &key(), None, &mut w, opts(threads)).unwrap_err();
                assert!(matches!(err, Error::Io { .. }), "limit {limit}: {err:?}");
                assert!(
                    w.written == want,
                    "limit {limit}: output is not the plaintext prefix"
                );
            });
        }
    }
}

#[test]
fn storage_write_errors_are_reported_not_hung() {
    let data = plain(DEEP);
    // A 13 MB file needs dozens of writes (batches, MHT finalisation, metadata).
    for writes in [0, 1, 2, 5, 20] {
        for threads in [1, 2] {
            let data = data.clone();
            within_a_minute("encrypt into failing storage", move || {
                let mut s = FailingStorage {
                    inner: Vec::new(),
                    writes_left: writes,
                    transient: false,
                };
                let err = encrypt(
                    &mut Cursor::new(&data),
                    &key(),
                    "io.pf",
                    &mut s,
                    opts(threads),
                )
                .unwrap_err();
                assert!(matches!(err, Error::Io { .. }), "{writes} writes: {err:?}");
            });
        }
    }
    // ProtectedFile: a storage failure surfaces as an Io error from whichever call hits it
    // (write_at, when a full cache must be flushed, or flush), and a retried flush against the
    // still-failing storage does not claim success.
    for writes in [0, 1, 3] {
        let mut pf = ProtectedFile::create(
            FailingStorage {
                inner: Vec::new(),
                writes_left: writes,
                transient: false,
            },
            &key(),
            "io.pf",
        )
        .unwrap();
        let err = pf
            .write_at(0, &data[..TWO_MHTS])
            .and_then(|_| pf.flush())
            .unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{writes} writes: {err:?}");
        let err = pf.flush().unwrap_err();
        assert!(
            matches!(err, Error::Io { .. } | Error::Poisoned),
            "{writes} writes: {err:?}"
        );
    }
}

#[test]
fn input_read_errors_are_reported() {
    struct Broken(usize);
    impl std::io::Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("input device gone"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }
    for ok_bytes in [0, 10, INLINE, INLINE + 5, TWO_MHTS * 9] {
        for threads in [1, 2] {
            within_a_minute("encrypt from a failing reader", move || {
                let mut out = Vec::new();
                let err = encrypt(
                    &mut Broken(ok_bytes),
                    &key(),
                    "io.pf",
                    &mut out,
                    opts(threads),
                )
                .unwrap_err();
                assert!(matches!(err, Error::Io { .. }), "{ok_bytes}: {err:?}");
            });
        }
    }
}

#[test]
fn a_failed_flush_can_be_retried() {
    // Whichever write of a flush fails, retrying the flush once storage works again gives a file
    // holding everything written.
    let data = plain(TWO_MHTS + 3 * NODE + 11);
    let patch = pattern(9000, 5);
    let mut want = data.clone();
    want[200_000..209_000].copy_from_slice(&patch);
    let (base, _) = encrypt_vec(&data, &key(), "retry.pf", 1);
    for fail_at in 0..12 {
        let storage = FailingStorage {
            inner: base.clone(),
            writes_left: fail_at,
            transient: true,
        };
        let mut pf = ProtectedFile::open(storage, &key(), None, Mode::ReadWrite).unwrap();
        pf.write_at(200_000, &patch).unwrap();
        pf.write_at(0, b"x").unwrap();
        want[0] = b'x';
        let failed = pf.flush().is_err();
        pf.flush().unwrap();
        let s = pf.into_inner().unwrap();
        let mut out = Vec::new();
        decrypt(&s.inner, &key(), None, &mut out, opts(1))
            .unwrap_or_else(|e| panic!("fail_at {fail_at} (failed: {failed}): {e}"));
        assert_same(&out, &want, &format!("fail_at {fail_at}"));
    }
}
