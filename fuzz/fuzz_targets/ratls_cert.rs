//! Untrusted DER as a client's RA-TLS certificate, read before anything is authenticated: no
//! panic, consistent parses, and verification exactly when every check passes. See
//! `ward_fuzz::ratls_cert`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ward_fuzz::ratls_cert::run(data);
});
