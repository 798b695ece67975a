//! Files made by Gramine's own protected-files code (tests/data/gramine/SOURCE.txt) must open,
//! and files ward writes must be read back by an independent path of this crate.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use ward_pf::{
    decrypt, decrypt_to_vec, info, verify, Error, Mode, Options, ProtectedFile, Version, WrapKey,
};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gramine")
}

fn key() -> WrapKey {
    WrapKey::load(&data().join("wrap_key.bin")).unwrap()
}

const CASES: &[(&str, &str, &str)] = &[
    ("encrypted/empty.pf", "empty.pf", "empty.bin"),
    ("encrypted/one_byte.pf", "one_byte.pf", "one_byte.bin"),
    ("encrypted/size_3000.pf", "size_3000.pf", "size_3000.bin"),
    ("encrypted/size_4096.pf", "size_4096.pf", "size_4096.bin"),
    (
        "encrypted/size_100000.pf",
        "size_100000.pf",
        "size_100000.bin",
    ),
    ("encrypted/data/model.pt", "data/model.pt", "size_3000.bin"),
    (
        "encrypted_v1/one_byte_v1.pf",
        "one_byte_v1.pf",
        "one_byte.bin",
    ),
];

#[test]
fn every_gramine_vector_decrypts_with_path_check() {
    for (cipher, bound, plain) in CASES {
        let f = File::open(data().join(cipher)).unwrap();
        let mut out = Vec::new();
        let info = decrypt(&f, &key(), Some(bound), &mut out, Options::default())
            .unwrap_or_else(|e| panic!("{cipher}: {e}"));
        assert_eq!(
            out,
            fs::read(data().join("plaintext").join(plain)).unwrap(),
            "{cipher}"
        );
        assert_eq!(info.bound_path, *bound);
        let want = if cipher.contains("_v1") {
            Version::V1_0
        } else {
            Version::V2_0
        };
        assert_eq!(info.version, want, "{cipher}");
        // The runtime's whole-file read (what `ward run` uses for a model) agrees.
        let (whole, info2) = decrypt_to_vec(&f, &key(), Some(bound), Options::default())
            .unwrap_or_else(|e| panic!("{cipher}, decrypt_to_vec: {e}"));
        assert_eq!(*whole, out, "{cipher}, decrypt_to_vec");
        assert_eq!(info2, info, "{cipher}, decrypt_to_vec");
    }
}

#[test]
fn random_access_reads_gramine_vectors() {
    for (cipher, bound, plain) in CASES {
        let f = File::open(data().join(cipher)).unwrap();
        let mut pf = ProtectedFile::open(f, &key(), Some(bound), Mode::Read).unwrap();
        let want = fs::read(data().join("plaintext").join(plain)).unwrap();
        assert_eq!(pf.len(), want.len() as u64);
        // Read in odd-sized pieces, backwards, to cross node boundaries out of order.
        let mut got = vec![0u8; want.len()];
        let step = 1000;
        let mut off = want.len();
        while off > 0 {
            let start = off.saturating_sub(step);
            assert_eq!(
                pf.read_at(start as u64, &mut got[start..off]).unwrap(),
                off - start
            );
            off = start;
        }
        assert_eq!(got, want, "{cipher}");
    }
}

#[test]
fn gramine_observations_hold() {
    let f = File::open(data().join("encrypted/size_3000.pf")).unwrap();
    // A renamed file fails the path check but opens without it.
    let err = info(&f, &key(), Some("renamed.pf")).unwrap_err();
    assert!(matches!(err, Error::PathMismatch { .. }), "{err}");
    assert!(info(&f, &key(), None).is_ok());
    // "./data/../data/model.pt" normalises to the bound "data/model.pt".
    let m = File::open(data().join("encrypted/data/model.pt")).unwrap();
    assert!(info(&m, &key(), Some("./data/../data/model.pt")).is_ok());
    // An absolute path never matches a relative bound path.
    assert!(info(&m, &key(), Some("/data/model.pt")).is_err());
    // A zero key fails the metadata tag.
    let err = verify(&f, &WrapKey::from_bytes([0; 16]), None, Options::default()).unwrap_err();
    assert!(matches!(err, Error::MetadataAuthentication), "{err}");
}
