//! Untrusted evidence bytes: DCAP quote and simulated-quote parsing must never panic, and a
//! parsed quote must account for every input byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_attest::quote::Quote;
use ward_attest::sim::SimQuote;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = Quote::parse(data) {
        assert_eq!(q.len() + q.trailing_bytes(), data.len());
        let _ = q.report_data();
        let _ = q.pck_chain_pem();
        let _ = q.tee();
    }
    if let Ok(s) = SimQuote::parse(data) {
        // Whatever parses must re-encode to the same bytes (one encoding per quote).
        assert_eq!(s.to_bytes(), data);
        let _ = s.verify();
    }
});
