//! Every modification of a protected file is caught, named, and leaks no plaintext: bit flips in
//! each kind of node (at every MHT level), truncation, appended, swapped and transplanted nodes,
//! wrong keys and bad headers — through `decrypt`, `verify`, `info` and `ProtectedFile`.

mod common;
use common::{opts, pattern};
use std::io::Cursor;
use std::sync::OnceLock;

use ward_pf::layout::{data_physical, mht_physical, NodeId, Shape, NODE_SIZE};
use ward_pf::{
    decrypt, decrypt_to_vec, encrypt, header_info, info, rewrap, verify, Error, Mode,
    ProtectedFile, WrapKey,
};

const INLINE: usize = 3072;
const NODE: usize = NODE_SIZE;
/// 96·33 + 5 data nodes, 34 MHT nodes: root (0), its children (1..=32) and a grandchild (33,
/// child of MHT 1). ~13 MB.
const DEEP_DATA_NODES: u64 = 96 * 33 + 5;
const DEEP: usize = INLINE + NODE * DEEP_DATA_NODES as usize;
/// Three MHT nodes, one level below the root; the last data node is partly used.
const MEDIUM: usize = INLINE + NODE * 200 + 1234;

fn key() -> WrapKey {
    WrapKey::from_bytes(*b"tamper-test-key!")
}

fn encrypt_vec(data: &[u8], path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encrypt(&mut Cursor::new(data), &key(), path, &mut out, opts(2)).unwrap();
    out
}

struct Sample {
    plain: Vec<u8>,
    cipher: Vec<u8>,
}

fn sample(size: usize) -> &'static Sample {
    static DEEP_S: OnceLock<Sample> = OnceLock::new();
    static MEDIUM_S: OnceLock<Sample> = OnceLock::new();
    static SMALL_S: OnceLock<Sample> = OnceLock::new();
    let cell = match size {
        DEEP => &DEEP_S,
        MEDIUM => &MEDIUM_S,
        SMALL => &SMALL_S,
        _ => unreachable!(),
    };
    cell.get_or_init(|| {
        let plain = pattern(size, size as u64);
        let cipher = encrypt_vec(&plain, "t.pf");
        Sample { plain, cipher }
    })
}

/// ~5000 bytes: metadata node, root MHT node, one data node.
const SMALL: usize = 5000;

fn flipped(cipher: &[u8], offset: usize, mask: u8) -> Vec<u8> {
    let mut c = cipher.to_vec();
    c[offset] ^= mask;
    c
}

/// Plaintext offset where data node `d` starts.
fn data_start(d: u64) -> usize {
    INLINE + NODE * d as usize
}

/// Decrypts with `threads`; returns the error and whatever was written before it. The
/// in-memory `decrypt_to_vec` must refuse the file with the same error.
#[track_caller]
fn decrypt_err(cipher: &[u8], threads: usize) -> (Error, Vec<u8>) {
    let mut out = Vec::new();
    let err = match decrypt(cipher, &key(), None, &mut out, opts(threads)) {
        Ok(_) => panic!("tampered file decrypted without error"),
        Err(e) => e,
    };
    match decrypt_to_vec(cipher, &key(), None, opts(threads)) {
        Ok(_) => panic!("tampered file decrypted into memory without error (after: {err})"),
        Err(e) => assert_eq!(e.to_string(), err.to_string(), "decrypt_to_vec vs decrypt"),
    }
    (err, out)
}

#[track_caller]
fn assert_prefix(out: &[u8], plain: &[u8], limit: usize, what: &str) {
    assert!(
        out.len() <= limit,
        "{what}: {} bytes written, beyond the {limit} bytes before the bad node",
        out.len()
    );
    assert!(
        out == &plain[..out.len()],
        "{what}: output is not a prefix of the plaintext"
    );
}

/// Asserts that `cipher` fails with `NodeAuthentication { node }` from decrypt (both thread
/// counts) and verify, writes at most the plaintext before `first_bad` (a plaintext offset), and
/// that a random-access read of `region` fails the same way without touching the caller's buffer.
#[track_caller]
fn assert_node_failure(
    cipher: &[u8],
    plain: &[u8],
    node: NodeId,
    first_bad: usize,
    region: std::ops::Range<usize>,
) {
    let what = format!("{node:?}");
    for threads in [1, 2] {
        let (err, out) = decrypt_err(cipher, threads);
        match err {
            Error::NodeAuthentication { node: n } => assert_eq!(n, node, "{what}: wrong node"),
            e => panic!("{what}: expected NodeAuthentication, got {e:?}"),
        }
        assert_prefix(&out, plain, first_bad, &what);
        let err = verify(cipher, &key(), None, opts(threads)).unwrap_err();
        assert!(
            matches!(err, Error::NodeAuthentication { node: n } if n == node),
            "{what}: verify gave {err:?}"
        );
    }
    // The metadata is fine, so the handle opens; reading the bad region fails.
    let mut pf = ProtectedFile::open(cipher.to_vec(), &key(), None, Mode::Read).unwrap();
    let mut buf = vec![0xAAu8; region.len()];
    for attempt in 0..2 {
        let err = pf.read_at(region.start as u64, &mut buf).unwrap_err();
        assert!(
            matches!(err, Error::NodeAuthentication { node: n } if n == node)
                || (attempt > 0 && matches!(err, Error::Poisoned)),
            "{what}: read_at (attempt {attempt}) gave {err:?}"
        );
        assert!(
            buf.iter().all(|&b| b == 0xAA),
            "{what}: read_at put bytes in the buffer of a failed read"
        );
    }
}

#[test]
fn metadata_tampering_fails_authentication() {
    let s = sample(MEDIUM);
    // Nonce (10..42), tag (42..58), first and last byte of the encrypted part (59..3943), and
    // inside it the path, size, root key/tag and inline data.
    for off in [
        10,
        41,
        42,
        57,
        59,
        59 + 700,
        59 + 772,
        59 + 780,
        59 + 800,
        2000,
        3942,
    ] {
        let c = flipped(&s.cipher, off, 0x01);
        let what = format!("flip at {off}");
        let (err, out) = decrypt_err(&c, 1);
        assert!(
            matches!(err, Error::MetadataAuthentication),
            "{what}: {err:?}"
        );
        assert!(out.is_empty(), "{what}: plaintext written");
        assert!(
            matches!(
                verify(&c, &key(), None, opts(2)),
                Err(Error::MetadataAuthentication)
            ),
            "{what}"
        );
        assert!(
            matches!(info(&c, &key(), None), Err(Error::MetadataAuthentication)),
            "{what}"
        );
        assert!(
            matches!(
                ProtectedFile::open(c.clone(), &key(), None, Mode::Read),
                Err(Error::MetadataAuthentication)
            ),
            "{what}"
        );
        let mut r = c.clone();
        assert!(matches!(
            rewrap(&mut r, &key(), &WrapKey::from_bytes([1; 16]), None),
            Err(Error::MetadataAuthentication)
        ));
        assert_eq!(r, c, "{what}: rewrap modified a file it could not open");
    }
}

#[test]
fn root_mht_tampering_names_mht_0() {
    for size in [MEDIUM, DEEP] {
        let s = sample(size);
        for within in [0, 1535, 3071, 3072, 4095] {
            let c = flipped(&s.cipher, mht_physical(0) as usize * NODE + within, 0x80);
            assert_node_failure(
                &c,
                &s.plain,
                NodeId::Mht { index: 0 },
                INLINE,
                INLINE..INLINE + 10,
            );
            // The inline part is authenticated by the metadata alone and still reads.
            let mut pf = ProtectedFile::open(c, &key(), None, Mode::Read).unwrap();
            let mut b = vec![0u8; INLINE];
            assert_eq!(pf.read_at(0, &mut b).unwrap(), INLINE);
            assert_eq!(b, s.plain[..INLINE]);
        }
    }
}

#[test]
fn child_mht_tampering_names_the_child() {
    let s = sample(MEDIUM);
    for m in [1u64, 2] {
        let c = flipped(&s.cipher, mht_physical(m) as usize * NODE + 100, 0x04);
        let d = m * 96;
        assert_node_failure(
            &c,
            &s.plain,
            NodeId::Mht { index: m },
            data_start(d),
            data_start(d + 5)..data_start(d + 6),
        );
    }
}

#[test]
fn deep_mht_tampering_names_the_right_level() {
    let s = sample(DEEP);
    // A child of the root that has a child of its own (MHT 1 → MHT 33), a child without
    // (MHT 32), and the grandchild 33 at the third level.
    for m in [1u64, 32, 33] {
        for within in [7, 3072 + 5] {
            // 3072.. holds the child slots: tampering there must fail the node as a whole.
            let c = flipped(&s.cipher, mht_physical(m) as usize * NODE + within, 0x10);
            let d = m * 96;
            assert_node_failure(
                &c,
                &s.plain,
                NodeId::Mht { index: m },
                data_start(d),
                data_start(d)..data_start(d) + 1,
            );
        }
    }
    // MHT 33 is reached through MHT 1: damage to MHT 1 is reported even for data under MHT 33.
    let c = flipped(&s.cipher, mht_physical(1) as usize * NODE + 3500, 0x01);
    let mut pf = ProtectedFile::open(c, &key(), None, Mode::Read).unwrap();
    let err = pf
        .read_at(data_start(33 * 96) as u64, &mut [0u8; 16])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NodeAuthentication {
                node: NodeId::Mht { index: 1 }
            }
        ),
        "{err:?}"
    );
}

#[test]
fn data_node_tampering_names_the_data_node() {
    for (size, nodes) in [(MEDIUM, 201u64), (DEEP, DEEP_DATA_NODES)] {
        let s = sample(size);
        for d in [0, nodes / 2, nodes - 1] {
            for within in [0, 2048, 4095] {
                let c = flipped(&s.cipher, data_physical(d) as usize * NODE + within, 0x01);
                let end = (data_start(d) + NODE).min(size);
                assert_node_failure(
                    &c,
                    &s.plain,
                    NodeId::Data { index: d },
                    data_start(d),
                    data_start(d)..end,
                );
                if size == MEDIUM {
                    // After the failure the handle either still serves authenticated data from
                    // other nodes or refuses everything (Poisoned); it never serves wrong data.
                    let mut pf = ProtectedFile::open(c, &key(), None, Mode::Read).unwrap();
                    let _ = pf.read_at(data_start(d) as u64, &mut [0u8; 1]);
                    let other = if d == 0 { 1 } else { 0 };
                    let mut b = vec![0u8; NODE];
                    match pf.read_at(data_start(other) as u64, &mut b) {
                        Ok(n) => {
                            assert_eq!(n, NODE);
                            assert_eq!(b, s.plain[data_start(other)..data_start(other) + NODE]);
                        }
                        Err(Error::Poisoned) => {}
                        Err(e) => panic!("reading an intact node after a failure: {e:?}"),
                    }
                }
            }
        }
    }
}

#[test]
fn failed_read_at_of_a_multi_node_range_reports_the_bad_node() {
    let s = sample(MEDIUM);
    let c = flipped(&s.cipher, data_physical(10) as usize * NODE + 9, 0x01);
    let mut pf = ProtectedFile::open(c, &key(), None, Mode::Read).unwrap();
    let mut buf = vec![0xAAu8; 20 * NODE];
    let err = pf.read_at(data_start(5) as u64, &mut buf).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NodeAuthentication {
                node: NodeId::Data { index: 10 }
            }
        ),
        "{err:?}"
    );
    // Nothing of node 10 or later reaches the caller's buffer (what precedes it is authenticated
    // plaintext of nodes 5..10, which the caller discards with the error anyway).
    let bad_from = data_start(10) - data_start(5);
    assert!(buf[bad_from..].iter().all(|&b| b == 0xAA));
    assert!(
        buf[..bad_from].iter().all(|&b| b == 0xAA)
            || buf[..bad_from] == s.plain[data_start(5)..data_start(10)]
    );
}

#[test]
fn tampered_padding_of_last_data_node_is_caught() {
    // The bytes after the end of the plaintext in the last data node are encrypted zeros; they
    // are authenticated like the rest of the node.
    let s = sample(MEDIUM);
    let last = 200u64;
    let c = flipped(&s.cipher, data_physical(last) as usize * NODE + 4000, 0x01);
    assert_node_failure(
        &c,
        &s.plain,
        NodeId::Data { index: last },
        data_start(last),
        data_start(last)..MEDIUM,
    );
}

#[test]
fn writing_through_a_damaged_node_does_not_launder_it() {
    let s = sample(MEDIUM);
    let d = 50u64;
    let c = flipped(&s.cipher, data_physical(d) as usize * NODE + 123, 0x01);
    let mut pf = ProtectedFile::open(c, &key(), None, Mode::ReadWrite).unwrap();
    // A partial write needs the old content, so it must fail. A write covering the whole node may
    // replace it or be refused; either way the result is checked below.
    let err = pf
        .write_at(data_start(d) as u64 + 10, b"patch")
        .unwrap_err();
    assert!(matches!(err, Error::NodeAuthentication { .. }), "{err:?}");
    let _ = pf.write_at(data_start(d) as u64, &vec![7u8; NODE]);
    // A legitimate change elsewhere, then flush: the damaged node must stay detectably damaged
    // (a re-keyed garbage node would turn the tampering into "valid" data).
    pf.write_at(0, b"hello").unwrap();
    // Refusing to flush at all is also acceptable: nothing damaged gets re-keyed then.
    if let Ok(storage) = pf.into_inner() {
        let mut out = Vec::new();
        match decrypt(&storage, &key(), None, &mut out, opts(1)) {
            Err(Error::NodeAuthentication {
                node: NodeId::Data { index },
            }) => assert_eq!(index, d),
            Err(e) => panic!("unexpected error {e:?}"),
            Ok(_) => {
                // Only acceptable if the content is what was legitimately written.
                let mut want = s.plain.clone();
                want[..5].copy_from_slice(b"hello");
                want[data_start(d)..data_start(d) + NODE].fill(7);
                assert!(out == want, "damaged node laundered into the file");
            }
        }
    }
}

#[test]
fn truncation_and_appending_are_detected() {
    let s = sample(MEDIUM);
    let shape = Shape::for_size(MEDIUM as u64).unwrap();
    let n = shape.physical_nodes();

    let cut = &s.cipher[..s.cipher.len() - NODE];
    let check_truncated = |e: Error, what: &str| match e {
        Error::Truncated { expected, found } => {
            assert_eq!(expected, n, "{what}");
            assert_eq!(found, n - 1, "{what}");
        }
        e => panic!("{what}: expected Truncated, got {e:?}"),
    };
    let (e, out) = decrypt_err(cut, 2);
    assert!(out.is_empty(), "plaintext written from a truncated file");
    check_truncated(e, "decrypt");
    check_truncated(verify(cut, &key(), None, opts(1)).unwrap_err(), "verify");
    check_truncated(info(cut, &key(), None).unwrap_err(), "info");
    check_truncated(
        ProtectedFile::open(cut.to_vec(), &key(), None, Mode::Read).unwrap_err(),
        "open",
    );
    // Cut down to node 0 only.
    let e = info(&s.cipher[..NODE], &key(), None).unwrap_err();
    assert!(matches!(e, Error::Truncated { found: 1, .. }), "{e:?}");

    // Partial nodes: a truncated protected file (it starts like one), said so.
    for cut in [1, 100, NODE - 1, NODE + 1] {
        let c = &s.cipher[..s.cipher.len() - cut];
        let e = decrypt_err(c, 1).0;
        assert!(
            matches!(e, Error::PartialNode { len } if len == c.len() as u64),
            "cut {cut}: {e:?}"
        );
        assert!(e.is_integrity());
        assert!(
            e.to_string().starts_with(&format!(
                "truncated protected file ({} bytes, not a multiple of 4096",
                c.len()
            )),
            "{e}"
        );
        assert!(matches!(header_info(c), Err(Error::PartialNode { .. })));
        assert!(matches!(
            ProtectedFile::open(c.to_vec(), &key(), None, Mode::Read),
            Err(Error::PartialNode { .. })
        ));
    }

    // One extra node, of zeros or a copy of a real node.
    for extra in [vec![0u8; NODE], s.cipher[2 * NODE..3 * NODE].to_vec()] {
        let mut c = s.cipher.clone();
        c.extend_from_slice(&extra);
        let e = decrypt_err(&c, 1).0;
        assert!(
            matches!(e, Error::TrailingNodes { extra: 1, expected, .. } if expected == n),
            "{e:?}"
        );
        assert!(matches!(
            ProtectedFile::open(c.clone(), &key(), None, Mode::Read),
            Err(Error::TrailingNodes { .. })
        ));
        assert!(matches!(
            info(&c, &key(), None),
            Err(Error::TrailingNodes { .. })
        ));
    }
    // Appended bytes that are not a whole node.
    let mut c = s.cipher.clone();
    c.push(0);
    assert!(matches!(decrypt_err(&c, 1).0, Error::PartialNode { .. }));

    // A small (inline-only) file with a node appended.
    let mut c = encrypt_vec(b"tiny", "t.pf");
    c.extend_from_slice(&[0u8; NODE]);
    assert!(matches!(
        decrypt_err(&c, 1).0,
        Error::TrailingNodes { extra: 1, .. }
    ));
}

#[test]
fn swapped_data_nodes_are_detected() {
    let s = sample(MEDIUM);
    let (a, b) = (3u64, 7u64);
    let mut c = s.cipher.clone();
    let (pa, pb) = (
        data_physical(a) as usize * NODE,
        data_physical(b) as usize * NODE,
    );
    let node_a = c[pa..pa + NODE].to_vec();
    c.copy_within(pb..pb + NODE, pa);
    c[pb..pb + NODE].copy_from_slice(&node_a);
    // Decrypt reports the first bad node in file order.
    assert_node_failure(
        &c,
        &s.plain,
        NodeId::Data { index: a },
        data_start(a),
        data_start(a)..data_start(a) + NODE,
    );
    let mut pf = ProtectedFile::open(c, &key(), None, Mode::Read).unwrap();
    let err = pf
        .read_at(data_start(b) as u64, &mut [0u8; 100])
        .unwrap_err();
    assert!(
        matches!(err, Error::NodeAuthentication { node: NodeId::Data { index } } if index == b),
        "{err:?}"
    );

    // Swapping an MHT node with a data node: either swapped node may be the one reported.
    let mut c = s.cipher.clone();
    let (pm, pd) = (
        mht_physical(1) as usize * NODE,
        data_physical(0) as usize * NODE,
    );
    let mht = c[pm..pm + NODE].to_vec();
    c.copy_within(pd..pd + NODE, pm);
    c[pd..pd + NODE].copy_from_slice(&mht);
    let (err, out) = decrypt_err(&c, 2);
    assert!(
        matches!(
            err,
            Error::NodeAuthentication {
                node: NodeId::Data { index: 0 } | NodeId::Mht { index: 1 }
            }
        ),
        "{err:?}"
    );
    assert_prefix(&out, &s.plain, INLINE, "MHT/data swap");
}

#[test]
fn nodes_from_another_file_under_the_same_key_are_rejected() {
    let s = sample(MEDIUM);
    // Same key, same size, same bound path: only the per-node keys differ.
    let other_plain = pattern(MEDIUM, 4242);
    let other = encrypt_vec(&other_plain, "t.pf");

    // A data node of the other file at the same index.
    for d in [0u64, 100, 200] {
        let mut c = s.cipher.clone();
        let p = data_physical(d) as usize * NODE;
        c[p..p + NODE].copy_from_slice(&other[p..p + NODE]);
        let end = (data_start(d) + NODE).min(MEDIUM);
        assert_node_failure(
            &c,
            &s.plain,
            NodeId::Data { index: d },
            data_start(d),
            data_start(d)..end,
        );
    }

    // Node 0 of the other file: it authenticates (same key), but its root MHT key does not
    // match this file's MHT nodes.
    let mut c = s.cipher.clone();
    c[..NODE].copy_from_slice(&other[..NODE]);
    let (err, out) = decrypt_err(&c, 1);
    assert!(
        matches!(
            err,
            Error::NodeAuthentication {
                node: NodeId::Mht { index: 0 }
            }
        ),
        "{err:?}"
    );
    // What did come out is the other file's inline data (authenticated by its own metadata),
    // never this file's nodes under the wrong keys.
    assert!(out.len() <= INLINE && out == other_plain[..out.len()]);

    // Node 0 of a file bound to another path: with the path check it is a path error.
    let renamed = encrypt_vec(&s.plain, "renamed.pf");
    let mut c = s.cipher.clone();
    c[..NODE].copy_from_slice(&renamed[..NODE]);
    let err = decrypt(&c, &key(), Some("t.pf"), &mut Vec::new(), opts(1)).unwrap_err();
    assert!(matches!(err, Error::PathMismatch { .. }), "{err:?}");
    let err = decrypt(&c, &key(), None, &mut Vec::new(), opts(1)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NodeAuthentication {
                node: NodeId::Mht { index: 0 }
            }
        ),
        "{err:?}"
    );

    // Node 0 of a file of another size: the node count no longer fits.
    for len in [MEDIUM - NODE, MEDIUM + NODE, 10] {
        let donor = encrypt_vec(&pattern(len, 1), "t.pf");
        let mut c = s.cipher.clone();
        c[..NODE].copy_from_slice(&donor[..NODE]);
        let err = decrypt_err(&c, 1).0;
        assert!(
            matches!(err, Error::Truncated { .. } | Error::TrailingNodes { .. }),
            "donor size {len}: {err:?}"
        );
    }
}

#[test]
fn wrong_key_is_metadata_authentication() {
    let s = sample(MEDIUM);
    let mut k = *key().expose_bytes();
    for i in [0, 15] {
        k[i] ^= 1;
        let wrong = WrapKey::from_bytes(k);
        k[i] ^= 1;
        let mut out = Vec::new();
        let err = decrypt(&s.cipher, &wrong, None, &mut out, opts(1)).unwrap_err();
        assert!(matches!(err, Error::MetadataAuthentication), "{err:?}");
        assert!(out.is_empty());
        assert!(matches!(
            verify(&s.cipher, &wrong, None, opts(1)),
            Err(Error::MetadataAuthentication)
        ));
        assert!(matches!(
            info(&s.cipher, &wrong, None),
            Err(Error::MetadataAuthentication)
        ));
        assert!(matches!(
            ProtectedFile::open(s.cipher.clone(), &wrong, None, Mode::ReadWrite),
            Err(Error::MetadataAuthentication)
        ));
        assert!(matches!(
            ProtectedFile::open(s.cipher.clone(), &wrong, Some("t.pf"), Mode::Read),
            Err(Error::MetadataAuthentication)
        ));
    }
    // The key is only needed for the encrypted part: the header reads without it.
    let h = header_info(&s.cipher).unwrap();
    assert_eq!(
        h.nodes,
        Shape::for_size(MEDIUM as u64).unwrap().physical_nodes()
    );
}

#[test]
fn key_files_must_be_exactly_16_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for (len, ok) in [
        (0, false),
        (15, false),
        (16, true),
        (17, false),
        (32, false),
    ] {
        let p = dir.path().join(format!("k{len}"));
        std::fs::write(&p, vec![0x42u8; len]).unwrap();
        let r = WrapKey::load(&p);
        if ok {
            assert_eq!(r.unwrap(), WrapKey::from_bytes([0x42; 16]));
        } else {
            let e = r.unwrap_err();
            match &e {
                Error::KeyFile {
                    source:
                        ward_fsio::Error::WrongLength {
                            found,
                            expected: 16,
                            ..
                        },
                } => assert_eq!(*found, Some(len as u64)),
                other => panic!("{len} bytes: {other:?}"),
            }
            let source = std::error::Error::source(&e).unwrap().to_string();
            assert!(
                source.ends_with(&format!(": {len} bytes, expected exactly 16")),
                "{source}"
            );
        }
    }
    // A missing key file is an I/O error, not a key.
    let e = WrapKey::load(&dir.path().join("missing")).unwrap_err();
    assert!(
        matches!(
            e,
            Error::KeyFile {
                source: ward_fsio::Error::Io { .. }
            }
        ),
        "{e:?}"
    );
    // Generated keys differ.
    assert_ne!(WrapKey::generate().unwrap(), WrapKey::generate().unwrap());
}

#[test]
fn header_fields_are_checked() {
    let s = sample(SMALL);
    let all_errs = |c: &[u8], check: &dyn Fn(&Error) -> bool, what: &str| {
        let e = decrypt_err(c, 1).0;
        assert!(check(&e), "{what}: decrypt gave {e:?}");
        let e = header_info(c).unwrap_err();
        assert!(check(&e), "{what}: header_info gave {e:?}");
        let e = info(c, &key(), None).unwrap_err();
        assert!(check(&e), "{what}: info gave {e:?}");
        let e = ProtectedFile::open(c.to_vec(), &key(), None, Mode::Read).unwrap_err();
        assert!(check(&e), "{what}: open gave {e:?}");
    };

    for i in 0..8 {
        let c = flipped(&s.cipher, i, 0x20);
        let mut want = *b"GRAFS_PF";
        want[i] ^= 0x20;
        all_errs(
            &c,
            &|e| matches!(e, Error::NotProtectedFile { found } if *found == want),
            "file id",
        );
    }
    let mut c = s.cipher.clone();
    c[8] = 3;
    all_errs(
        &c,
        &|e| matches!(e, Error::UnsupportedVersion { major: 3, minor: 0 }),
        "version 3",
    );
    let mut c = s.cipher.clone();
    c[9] = 1;
    all_errs(
        &c,
        &|e| matches!(e, Error::UnsupportedVersion { major: 2, minor: 1 }),
        "version 2.1",
    );
    for major in [0u8, 0xFF] {
        let mut c = s.cipher.clone();
        c[8] = major;
        all_errs(
            &c,
            &|e| matches!(e, Error::UnsupportedVersion { .. }),
            "version byte",
        );
    }
    // Relabelling a 2.0 file as 1.0 shifts the encrypted part by a byte: authentication fails.
    let mut c = s.cipher.clone();
    c[8] = 1;
    let e = decrypt_err(&c, 1).0;
    assert!(matches!(e, Error::MetadataAuthentication), "{e:?}");

    let mut c = s.cipher.clone();
    c[58] = 1;
    all_errs(
        &c,
        &|e| matches!(e, Error::RecoveryNeeded { flags: 1 }),
        "write-pending flag",
    );
    let mut c = s.cipher.clone();
    c[58] = 2;
    all_errs(
        &c,
        &|e| matches!(e, Error::UnsupportedFlags { flags: 2 }),
        "unknown flag",
    );
}

#[test]
fn short_files_are_bad_length() {
    for len in [0usize, 1, 4095, 4097] {
        let c = vec![0u8; len];
        let e = decrypt_err(&c, 1).0;
        assert!(
            matches!(e, Error::BadLength { len: l } if l == len as u64),
            "{len}: {e:?}"
        );
        assert!(matches!(header_info(&c), Err(Error::BadLength { .. })));
        assert!(matches!(
            info(&c, &key(), None),
            Err(Error::BadLength { .. })
        ));
        assert!(matches!(
            ProtectedFile::open(c.clone(), &key(), None, Mode::Read),
            Err(Error::BadLength { .. })
        ));
    }
    // The first 4095 bytes of a real file: truncated, not foreign.
    let s = sample(SMALL);
    let e = decrypt_err(&s.cipher[..4095], 1).0;
    assert!(matches!(e, Error::PartialNode { len: 4095 }), "{e:?}");
    // Seven bytes cannot even hold the file id.
    let e = decrypt_err(&s.cipher[..7], 1).0;
    assert!(matches!(e, Error::BadLength { len: 7 }), "{e:?}");
    // A node of zeros is not a protected file either.
    let e = decrypt_err(&[0u8; NODE], 1).0;
    assert!(matches!(e, Error::NotProtectedFile { .. }), "{e:?}");
}

#[test]
fn every_single_byte_flip_of_a_small_file_is_an_error_and_never_a_panic() {
    // 5000 bytes: node 0 (metadata + 3072 inline bytes), node 1 (root MHT), node 2 (data 0).
    let s = sample(SMALL);
    assert_eq!(s.cipher.len(), 3 * NODE);
    for pos in 0..s.cipher.len() {
        // One flip per byte, alternating the low and the high bit.
        for mask in [if pos % 2 == 0 { 0x01u8 } else { 0x80 }] {
            let c = flipped(&s.cipher, pos, mask);
            let what = format!("byte {pos} ^ {mask:#04x}");
            let mut out = Vec::new();
            let r = decrypt(&c, &key(), None, &mut out, opts(1));
            let mut pf_out = vec![0u8; SMALL];
            let pf_r = ProtectedFile::open(c, &key(), None, Mode::Read)
                .and_then(|mut pf| pf.read_at(0, &mut pf_out));
            if (3943..4096).contains(&pos) {
                // Node 0's trailing zero padding is neither encrypted nor covered by the metadata
                // tag (the format authenticates only bytes 59..3943 of node 0, and the header
                // fields are checked by value), so changing it has no effect at all.
                r.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(out == s.plain, "{what}: wrong plaintext");
                assert_eq!(pf_r.unwrap(), SMALL, "{what}");
                assert!(pf_out == s.plain, "{what}: wrong plaintext (read_at)");
                continue;
            }
            let e = r.expect_err(&what);
            assert!(
                e.is_integrity()
                    || matches!(
                        e,
                        Error::UnsupportedVersion { .. }
                            | Error::RecoveryNeeded { .. }
                            | Error::UnsupportedFlags { .. }
                    ),
                "{what}: {e:?}"
            );
            if pos < NODE {
                assert!(out.is_empty(), "{what}: plaintext written");
            } else {
                assert_prefix(&out, &s.plain, INLINE, &what);
            }
            pf_r.expect_err(&what);
        }
    }
}

/// The bound path and the exact plaintext size are decrypted metadata: no error text may show
/// them, whatever went wrong (the messages are printed on the untrusted host).
#[test]
fn no_error_text_shows_the_bound_path_or_the_size() {
    // A size and a path that cannot appear in a message by chance.
    const SIZE: usize = INLINE + NODE * 150 + 777;
    let bound = "secret-dir/q3-payroll.pf";
    let plain = pattern(SIZE, 3);
    let cipher = encrypt_vec(&plain, bound);
    let size = SIZE.to_string();
    let mut appended = cipher.clone();
    appended.extend_from_slice(&[0u8; NODE]);
    let cut = &cipher[..cipher.len() - NODE];
    let small_limit = ward_pf::Options {
        memory_limit: 4096,
        ..opts(1)
    };
    let errors: Vec<(&str, Error)> = vec![
        (
            "path mismatch",
            info(&cipher, &key(), Some("other.pf")).unwrap_err(),
        ),
        ("truncated", info(cut, &key(), None).unwrap_err()),
        ("trailing", info(&appended, &key(), None).unwrap_err()),
        (
            "over limit",
            decrypt_to_vec(&cipher[..], &key(), None, small_limit).unwrap_err(),
        ),
        (
            "open, path mismatch",
            ProtectedFile::open(cipher.clone(), &key(), Some("x.pf"), Mode::Read).unwrap_err(),
        ),
        (
            "decrypt, truncated",
            decrypt(cut, &key(), Some(bound), &mut Vec::new(), opts(1)).unwrap_err(),
        ),
    ];
    for (what, e) in &errors {
        let mut texts = vec![e.to_string(), format!("{e:?}")];
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            texts.push(c.to_string());
            cause = c.source();
        }
        for t in texts {
            for secret in [bound, "q3-payroll", size.as_str()] {
                assert!(!t.contains(secret), "{what}: {secret:?} shown in {t:?}");
            }
        }
    }
    assert!(matches!(errors[0].1, Error::PathMismatch { .. }));
    assert!(matches!(errors[1].1, Error::Truncated { .. }));
    assert!(matches!(errors[2].1, Error::TrailingNodes { .. }));
    assert!(matches!(errors[3].1, Error::OverLimit { limit: 4096 }));
    assert!(
        errors[0].1.to_string().contains("\"other.pf\""),
        "{}",
        errors[0].1
    );
}
