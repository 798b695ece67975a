//! `ward completions` and `ward man`: shell completions and man pages generated from the CLI's
//! own clap definition, so they never drift from it.

use anyhow::{Context, Result};
use clap::{Args, Command};
use clap_complete::Shell;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Print a shell completion script to stdout.
///
/// For example: `ward completions bash > ~/.local/share/bash-completion/completions/ward`,
/// `ward completions zsh > ~/.zfunc/_ward`, `ward completions fish >
/// ~/.config/fish/completions/ward.fish`.
#[derive(Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Generate man pages: one per command and subcommand (ward.1, ward-pf.1, ward-pf-encrypt.1, …).
///
/// Without -o, prints the top page (ward.1) to stdout: `ward man | man -l -`.
#[derive(Args)]
pub(crate) struct ManArgs {
    /// Write every page into this directory (created if missing), each atomically.
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` of `cmd`.
pub(crate) fn completions(args: &CompletionsArgs, mut cmd: Command) -> Result<()> {
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("writing the completion script to stdout")
}

/// Every page of `cmd`: (file name, roff text), the top page first.
fn pages(cmd: Command) -> Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = cmd;
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, cmd.get_name().to_string(), &mut out)?;
    Ok(out)
}

fn collect(cmd: &Command, name: String, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    // The page is titled and named by its full command path (`ward-pf-encrypt`), as git's and
    // cargo's are.
    let page = cmd.clone().name(name.clone()).display_name(name.clone());
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .with_context(|| format!("rendering the man page of {name}"))?;
    out.push((format!("{name}.1"), roff));
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        collect(sub, format!("{name}-{}", sub.get_name()), out)?;
    }
    Ok(())
}

/// Writes the man pages of `cmd` into `args.out_dir`, or prints the top one.
pub(crate) fn man(args: &ManArgs, cmd: Command) -> Result<()> {
    let pages = pages(cmd)?;
    let Some(dir) = &args.out_dir else {
        let (_, top) = &pages[0];
        return std::io::stdout()
            .write_all(top)
            .context("writing the man page to stdout");
    };
    for (name, roff) in &pages {
        write_page(&dir.join(name), roff)?;
    }
    eprintln!("wrote {} man pages to {}", pages.len(), dir.display());
    Ok(())
}

fn write_page(target: &Path, roff: &[u8]) -> Result<()> {
    Ok(ward_fsio::write_atomic(target, roff, 0o644)?)
}
