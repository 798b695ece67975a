//! Quote verification cost: with collateral already parsed in memory (the provisioning server's
//! steady state), and a first verification that parses the collateral JSON too.
// criterion_group! defines a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;
use ward_attest::dcap::{Collateral, DcapVerifier};

fn load(name: &str) -> (Vec<u8>, String, u64) {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("expected.json")).unwrap()).unwrap();
    (
        std::fs::read(d.join("quote.bin")).unwrap(),
        std::fs::read_to_string(d.join("collateral.json")).unwrap(),
        expected["verify_at_unix"].as_u64().unwrap(),
    )
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("attest");
    g.sample_size(30);
    for name in ["sgx-v3-automata-swhardening", "tdx-v4-phala-uptodate"] {
        let (quote, json, at) = load(name);
        let collateral = Collateral::from_json(&json).unwrap();
        let verifier = DcapVerifier::intel();
        g.bench_function(format!("verify_in_memory/{name}"), |b| {
            b.iter(|| verifier.verify(&quote, &collateral, at).unwrap())
        });
        g.bench_function(format!("parse_json_and_verify/{name}"), |b| {
            b.iter(|| {
                let c = Collateral::from_json(&json).unwrap();
                DcapVerifier::intel().verify(&quote, &c, at).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
