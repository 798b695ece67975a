//! Untrusted evidence bytes: DCAP quote and simulated-quote parsing must never panic, and a
//! parsed quote must account for every input byte. See `ward_fuzz::parse_quote`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ward_fuzz::parse_quote::run(data);
});
