//! ward's fuzz targets, shared by the cargo-fuzz binaries (`fuzz_targets/`, nightly) and the
//! stable-toolchain `replay` runner (`src/bin/replay.rs`), so both check exactly the same things.
//!
//! One module per target, each with a `run(&[u8])` that panics when the code under test panics
//! or one of the module's invariants fails:
//! - [`open_untrusted`]: untrusted bytes as a protected file (`ward-pf`);
//! - [`parse_quote`]: untrusted bytes as SGX/TDX DCAP or simulated evidence (`ward-attest`);
//! - [`ratls_cert`]: untrusted DER as an RA-TLS certificate (`ward-ratls`);
//! - [`provision_protocol`]: untrusted bytes as provisioning requests and answers
//!   (`ward-provision`).
//!
//! It is not a test suite of those crates: their own tests check behaviour on known inputs.

pub mod open_untrusted;
pub mod parse_quote;
pub mod provision_protocol;
pub mod ratls_cert;

/// A fuzz target as the replay runner sees it.
pub struct Target {
    /// The name (also the cargo-fuzz binary and the `seeds/` directory).
    pub name: &'static str,
    /// Runs one input; returns labels of what happened, for statistics.
    pub run: fn(&[u8]) -> Vec<String>,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "open_untrusted",
        run: |data| {
            let o = open_untrusted::run(data);
            let mut labels = vec![format!("as a file: {}", o.raw)];
            labels.extend(o.built.map(|b| format!("built file: {b}")));
            labels
        },
    },
    Target {
        name: "parse_quote",
        run: parse_quote::run,
    },
    Target {
        name: "ratls_cert",
        run: ratls_cert::run,
    },
    Target {
        name: "provision_protocol",
        run: provision_protocol::run,
    },
];
