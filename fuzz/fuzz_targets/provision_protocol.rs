//! Untrusted bytes as provisioning requests (server side) and answers (client side): no panic,
//! whatever parses re-encodes to its bytes, no secret in an error. See
//! `ward_fuzz::provision_protocol`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ward_fuzz::provision_protocol::run(data);
});
