//! `ward`: the command-line tool. A thin shell over the ward libraries — argument parsing,
//! progress bars and human-readable errors; the logic lives in the crates it calls.

mod attest;
mod classify;
mod demo;
mod manifest;
mod meta;
mod pf;
mod provision;
mod runtime;
mod serve;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// The version and the git commit it was built from (see build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("WARD_GIT_COMMIT"),
    ")"
);

/// ward — privacy-preserving machine learning on confidential computing.
///
/// Encrypt models and inputs as Gramine-compatible protected files, run a measured workload that
/// gets its keys only after attestation, and read back a result only you can decrypt.
#[derive(Parser)]
#[command(name = "ward", version = VERSION, max_term_width = 100)]
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
    /// Write the manifest of your own program from its installation (Python).
    #[command(subcommand)]
    Manifest(manifest::ManifestCommand),
    Sign(runtime::SignArgs),
    Run(runtime::RunArgs),
    Classify(classify::ClassifyCommand),
    Demo(demo::DemoArgs),
    Serve(serve::ServeArgs),
    /// The attested inference service's client: verify a `ward serve` service against your
    /// policy in the TLS handshake, then classify an image, print what it proved, or load-test it.
    #[command(subcommand)]
    Client(serve::ClientCommand),
    Completions(meta::CompletionsArgs),
    Man(meta::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Warnings (e.g. an insecure simulated-TEE acceptance) go to stderr; WARD_LOG=info|debug|
    // trace shows more (e.g. how many requests a confined program's view answered).
    let asked = std::env::var("WARD_LOG").ok();
    let parsed = asked.as_deref().map(str::parse::<tracing::Level>);
    // The provisioning server shows one line per decision by default (info).
    let serving_secrets = matches!(
        cli.command,
        Command::Provision(provision::ProvisionCommand::Serve(_))
    );
    let level = match parsed {
        Some(Ok(level)) => level,
        _ if serving_secrets => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_max_level(level)
        .init();
    if let (Some(asked), Some(Err(_))) = (&asked, &parsed) {
        tracing::warn!(
            "WARD_LOG={asked:?} is not a level (error, warn, info, debug or trace); using warn"
        );
    }
    // Ctrl-C or SIGTERM while an output is being written removes its temporary, then exits
    // 130 / 143: nothing half-written is left behind by any command. The provisioning server
    // writes no such outputs and handles Ctrl-C itself, stopping gracefully.
    // `ward run` installs it itself, after forking a program's sandbox (which needs the process
    // single-threaded, and the handler is a thread); `ward demo --pytorch` forks one too, and
    // works in its own directory.
    let serving = match &cli.command {
        Command::Provision(provision::ProvisionCommand::Serve(_))
        | Command::Run(_)
        | Command::Serve(_) => true,
        Command::Demo(demo) => demo.confines_a_program(),
        _ => false,
    };
    if let Err(e) = (!serving)
        .then(ward_fsio::install_signal_cleanup)
        .transpose()
    {
        eprint!(
            "{}",
            render_error(anyhow::Error::new(e).chain().map(|c| c.to_string()))
        );
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Pf(cmd) => pf::run(cmd),
        Command::Attest(cmd) => attest::run(cmd),
        Command::Sim(cmd) => attest::run_sim(cmd),
        Command::Provision(cmd) => provision::run(cmd),
        Command::Manifest(cmd) => manifest::run(cmd),
        Command::Sign(args) => runtime::sign(args),
        Command::Run(args) => runtime::run(args),
        Command::Classify(args) => classify::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::serve(args),
        Command::Client(cmd) => serve::client(cmd),
        Command::Completions(args) => {
            meta::completions(&args, Cli::command()).map(|()| ExitCode::SUCCESS)
        }
        Command::Man(args) => meta::man(&args, Cli::command()).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", render_error(e.chain().map(|c| c.to_string())));
            ExitCode::FAILURE
        }
    }
}

/// Renders an error and its causes (outermost first) for stderr: `error: <top>`, then each cause
/// on its own line as `  caused by: <cause>`, then the hints, last.
///
/// A cause whose text an earlier line already contains is skipped: some library errors still
/// repeat their source in their own text, and the user should read each cause once. A hint is a
/// line starting with `hint:`, or the text after " — " in a message (how the libraries phrase
/// "what to do"); it is moved to the end so the last line says what to do.
/// Renders an error chain: the top message, each cause once on its own line, hints last.
pub(crate) fn render_error<S: AsRef<str>>(chain: impl IntoIterator<Item = S>) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    for message in chain {
        let mut body = Vec::new();
        for line in message.as_ref().lines() {
            match line.trim_start().strip_prefix("hint:") {
                Some(h) => hints.push(h.trim().to_string()),
                None => body.push(line),
            }
        }
        let mut body = body.join("\n");
        if let Some((text, hint)) = body.split_once(" — ") {
            hints.push(hint.trim().to_string());
            body = text.to_string();
        }
        let body = body.trim();
        if body.is_empty() || lines.iter().any(|l| l.contains(body)) {
            continue;
        }
        lines.push(body.to_string());
    }
    hints.dedup();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        out.push_str(if i == 0 { "error: " } else { "  caused by: " });
        out.push_str(line);
        out.push('\n');
    }
    if lines.is_empty() {
        out.push_str("error: (no message)\n");
    }
    for h in hints.iter().filter(|h| !h.is_empty()) {
        out.push_str("hint: ");
        out.push_str(h);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render_error;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    #[test]
    fn each_cause_once_on_its_own_line() {
        let enoent = "No such file or directory (os error 2)";
        let got = render_error([
            "reading wrap key k".to_string(),
            format!("opening k: {enoent}"),
            enoent.to_string(),
        ]);
        assert_eq!(
            got,
            format!("error: reading wrap key k\n  caused by: opening k: {enoent}\n")
        );
        assert_eq!(got.matches(enoent).count(), 1);
    }

    #[test]
    fn a_cause_repeated_by_the_top_is_skipped() {
        let got = render_error(["decrypting x: node 3 failed", "node 3 failed"]);
        assert_eq!(got, "error: decrypting x: node 3 failed\n");
    }

    #[test]
    fn hints_come_last() {
        let got = render_error([
            "collateral is stale — is the PCCS refreshing from Intel?",
            "fetching collateral\nhint: run `ward attest verify --help`",
            "timed out",
        ]);
        assert_eq!(
            got,
            "error: collateral is stale\n  caused by: fetching collateral\n  caused by: timed out\n\
             hint: is the PCCS refreshing from Intel?\nhint: run `ward attest verify --help`\n"
        );
    }

    #[test]
    fn a_lone_error_is_one_line() {
        assert_eq!(render_error(["bad"]), "error: bad\n");
        assert_eq!(render_error(Vec::<String>::new()), "error: (no message)\n");
    }
}
