//! The on-disk cache: served while current, refetched after `nextUpdate` or when corrupt.

mod common;

use common::{err, Reply, Server, Vector};
use ward_attest::dcap::{Collateral, DcapVerifier};
use ward_attest::quote::Quote;
use ward_pccs::{next_update, Cache, CachingSource, CollateralKey, Error, Pccs};

fn unix(rfc3339: &str) -> u64 {
    // The vectors' windows, spelled out (checked against ward_attest's formatter).
    let secs = match rfc3339 {
        "2025-09-14T04:36:46Z" => 1_757_824_606,
        "2025-07-19T10:00:35Z" => 1_752_919_235,
        other => panic!("unexpected window end {other}"),
    };
    assert_eq!(ward_attest::dcap::rfc3339(secs), rfc3339);
    secs
}

fn source(server: &Server, dir: &std::path::Path) -> CachingSource {
    CachingSource::new(Pccs::new(&server.url()).unwrap(), Cache::new(dir))
}

#[test]
fn next_update_is_the_earliest_piece() {
    for v in [Vector::sgx(), Vector::tdx()] {
        let server = Server::start(v.routes(false));
        let collateral = Pccs::new(&server.url())
            .unwrap()
            .fetch(&Quote::parse(&v.quote()).unwrap())
            .unwrap();
        // The same instant dcap-qvl found as the end of the validity window: for the TDX
        // vector that is the PCK CRL's nextUpdate, earlier than the TCB info's and QE
        // identity's.
        assert_eq!(next_update(&collateral).unwrap(), unix(&v.valid_until()));
    }
}

#[test]
fn cached_until_next_update_then_refetched() {
    for v in [Vector::sgx(), Vector::tdx()] {
        let server = Server::start(v.routes(false));
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("collateral");
        let src = source(&server, &cache_dir);
        let quote = Quote::parse(&v.quote()).unwrap();
        let key = CollateralKey::from_quote(&quote).unwrap();
        let now = v.verify_at();
        let expiry = unix(&v.valid_until());

        let first = src.collateral_for(&quote, now).unwrap();
        assert_eq!(server.requests(), v.paths());
        let path = src.cache.path_for(&key);
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            format!("{}-{}-platform.json", v.tee, v.fmspc.to_lowercase())
        );
        let stored = std::fs::read_to_string(&path).unwrap();
        assert_eq!(stored, first.to_json());
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(&cache_dir).unwrap().count(), 1);

        // Within expiry: from the cache, no request.
        let again = src.collateral_for(&quote, now + 3600).unwrap();
        let again_last = src.collateral_for(&quote, expiry - 1).unwrap();
        assert_eq!(server.requests().len(), 4);
        assert_eq!(again.to_json(), first.to_json());
        assert_eq!(again_last.to_json(), first.to_json());
        DcapVerifier::intel()
            .verify(&v.quote(), &again, now)
            .expect("cached collateral verifies");

        // A fresh CachingSource over the same directory uses the file too.
        let src2 = source(&server, &cache_dir);
        src2.collateral_for(&quote, now).unwrap();
        assert_eq!(server.requests().len(), 4);

        // At expiry: refetched and replaced.
        src.collateral_for(&quote, expiry).unwrap();
        let mut want = v.paths();
        want.extend(v.paths());
        assert_eq!(server.requests(), want);
        assert_eq!(std::fs::read_dir(&cache_dir).unwrap().count(), 1);
    }
}

#[test]
fn corrupt_cache_file_is_refetched_and_replaced() {
    let v = Vector::sgx();
    let server = Server::start(v.routes(false));
    let dir = tempfile::tempdir().unwrap();
    let src = source(&server, dir.path());
    let quote = Quote::parse(&v.quote()).unwrap();
    let key = CollateralKey::from_quote(&quote).unwrap();
    let path = src.cache.path_for(&key);
    let good = src.collateral_for(&quote, v.verify_at()).unwrap().to_json();
    let mut fetches = 1;

    let tdx_collateral = {
        let t = Vector::tdx();
        let s = Server::start(t.routes(false));
        Pccs::new(&s.url())
            .unwrap()
            .fetch(&Quote::parse(&t.quote()).unwrap())
            .unwrap()
            .to_json()
    };
    let corruptions: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"{not json".to_vec()),
        ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("not UTF-8", vec![0xff, 0xfe, 0x00]),
        ("another platform", tdx_collateral.into_bytes()),
        (
            "TCB info without nextUpdate",
            good.replace("nextUpdate", "nextUpdat").into_bytes(),
        ),
    ];
    for (what, bytes) in corruptions {
        std::fs::write(&path, &bytes).unwrap();
        let e = err(src.cache.load(&key));
        assert!(matches!(e, Error::CacheCorrupt { .. }), "{what}: {e:?}");
        let c = src.collateral_for(&quote, v.verify_at()).unwrap();
        fetches += 1;
        assert_eq!(server.requests().len(), 4 * fetches, "{what}: refetched");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            good,
            "{what}: replaced"
        );
        DcapVerifier::intel()
            .verify(&v.quote(), &c, v.verify_at())
            .unwrap();
    }
}

#[test]
fn fetch_errors_are_not_hidden_by_the_cache() {
    let v = Vector::sgx();
    let server = Server::start(v.routes(false));
    let dir = tempfile::tempdir().unwrap();
    let src = source(&server, dir.path());
    let quote = Quote::parse(&v.quote()).unwrap();
    let expiry = unix(&v.valid_until());
    src.collateral_for(&quote, v.verify_at()).unwrap();

    // Expired entry and a failing server: the error, never the stale collateral.
    server.set(&v.path_tcb(), Reply::status(503, "maintenance"));
    let e = err(src.collateral_for(&quote, expiry));
    assert!(matches!(e, Error::Status { status: 503, .. }), "{e:?}");
    // The stale entry is still there and still served within its window.
    src.collateral_for(&quote, expiry - 1).unwrap();

    // No entry at all and a failing server.
    let empty = tempfile::tempdir().unwrap();
    let e = err(source(&server, empty.path()).collateral_for(&quote, v.verify_at()));
    assert!(e.to_string().contains(&v.path_tcb()), "{e}");
}

#[test]
fn unwritable_cache_still_returns_collateral() {
    let v = Vector::sgx();
    let server = Server::start(v.routes(false));
    let dir = tempfile::tempdir().unwrap();
    // The cache "directory" is a file: storing fails, fetching does not.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let src = source(&server, &file);
    let quote = Quote::parse(&v.quote()).unwrap();
    let c: Collateral = src.collateral_for(&quote, v.verify_at()).unwrap();
    DcapVerifier::intel()
        .verify(&v.quote(), &c, v.verify_at())
        .unwrap();
    let key = CollateralKey::from_quote(&quote).unwrap();
    let e = src.cache.store(&key, &c).unwrap_err();
    assert!(matches!(e, Error::CacheStore { .. }), "{e:?}");
}
