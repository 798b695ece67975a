//! `ward`: the command-line tool. A thin shell over the ward libraries — argument parsing,
//! progress bars and human-readable errors; the logic lives in the crates it calls.

mod attest;
mod classify;
mod demo;
mod fsutil;
mod pf;
mod provision;
mod runtime;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// ward — privacy-preserving machine learning on confidential computing.
///
/// Encrypt models and inputs as Gramine-compatible protected files, run a measured workload that
/// gets its keys only after attestation, and read back a result only you can decrypt.
#[derive(Parser)]
#[command(name = "ward", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Protected files: create keys, encrypt, decrypt, verify, inspect and rewrap
    /// (compatible with gramine-sgx-pf-crypt).
    #[command(subcommand)]
    Pf(pf::PfCommand),
    /// Attestation: verify and explain SGX/TDX/simulated evidence, judge it by a policy, produce
    /// evidence on this machine.
    #[command(subcommand)]
    Attest(attest::AttestCommand),
    /// Secret provisioning: the data owner's server that releases keys only to attested
    /// workloads, its client, first-run setup and a load test.
    #[command(subcommand)]
    Provision(provision::ProvisionCommand),
    /// The simulated TEE, for development on machines without SGX/TDX.
    #[command(subcommand)]
    Sim(attest::SimCommand),
    Sign(runtime::SignArgs),
    Run(runtime::RunArgs),
    Classify(classify::ClassifyArgs),
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Warnings (e.g. an insecure simulated-TEE acceptance) go to stderr; RUST_LOG is not needed.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_max_level(tracing::Level::WARN)
        .init();
    let result = match cli.command {
        Command::Pf(cmd) => pf::run(cmd),
        Command::Attest(cmd) => attest::run(cmd),
        Command::Sim(cmd) => attest::run_sim(cmd),
        Command::Provision(cmd) => provision::run(cmd),
        Command::Sign(args) => runtime::sign(args),
        Command::Run(args) => runtime::run(args),
        Command::Classify(args) => classify::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
