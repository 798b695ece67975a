//! `ward completions`, `ward man`, `ward --version` and the error printer, as a user runs them.

use std::path::Path;
use std::process::Command;

mod common;
use common::ward;

fn stdout_of(dir: &Path, args: &[&str]) -> String {
    let out = ward(dir, args);
    assert!(
        out.status.success(),
        "ward {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(dir.path(), &["completions", shell]);
        assert!(
            script.len() > 1000,
            "{shell}: a {}-byte script",
            script.len()
        );
        for sub in ["pf", "attest", "provision", "encrypt", "completions"] {
            assert!(
                script.contains(sub),
                "{shell} completions do not mention {sub}"
            );
        }
    }
    // Each shell's own syntax, not one script for all.
    assert!(stdout_of(dir.path(), &["completions", "bash"]).contains("complete -F"));
    assert!(stdout_of(dir.path(), &["completions", "zsh"]).starts_with("#compdef ward"));
    assert!(stdout_of(dir.path(), &["completions", "fish"]).contains("complete -c ward"));

    let out = ward(dir.path(), &["completions", "tcsh"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}

/// The first roff request of a clap_mangen page after its preamble (the `Aq` string definition).
fn title_line(page: &str) -> &str {
    page.lines()
        .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"))
        .unwrap_or("")
}

#[test]
fn man_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man/man1");
    let out = ward(dir.path(), &["man", "-o", out_dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for want in [
        "ward.1",
        "ward-pf.1",
        "ward-pf-encrypt.1",
        "ward-pf-decrypt.1",
        "ward-attest-verify.1",
        "ward-provision-serve.1",
        "ward-sign.1",
        "ward-completions.1",
        "ward-man.1",
    ] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    // Only pages: no temporary left behind, no page for clap's `help` subcommand.
    assert!(names
        .iter()
        .all(|n| n.ends_with(".1") && !n.starts_with('.')));
    assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");

    for name in &names {
        let page = std::fs::read_to_string(out_dir.join(name)).unwrap();
        let stem = name.trim_end_matches(".1");
        assert!(
            title_line(&page).starts_with(&format!(".TH {stem} 1 ")),
            "{name} is not titled {stem}: {:?}",
            title_line(&page)
        );
        assert!(page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"));
    }
    let encrypt = std::fs::read_to_string(out_dir.join("ward-pf-encrypt.1")).unwrap();
    assert!(encrypt.contains("wrap\\-key"), "the page lists the options");

    // groff, where installed, reads every page without a warning.
    if Command::new("groff").arg("--version").output().is_ok() {
        for name in &names {
            let out = Command::new("groff")
                .args(["-man", "-Tutf8", "-z", "-wmac"])
                .arg(out_dir.join(name))
                .output()
                .unwrap();
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{name}: {out:?}"
            );
        }
    }
}

#[test]
fn man_without_a_directory_prints_the_top_page() {
    let dir = tempfile::tempdir().unwrap();
    let page = stdout_of(dir.path(), &["man"]);
    assert!(title_line(&page).starts_with(".TH ward 1 "), "{page}");
    assert!(page.contains("provision"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn version_names_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let v = stdout_of(dir.path(), &["--version"]);
    let v = v.trim();
    let rest = v
        .strip_prefix(&format!("ward {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected --version: {v:?}"));
    if rest != "unknown commit" {
        let hash = rest
            .strip_prefix("commit ")
            .map(|h| h.trim_end_matches(", dirty"))
            .unwrap_or_else(|| panic!("unexpected --version: {v:?}"));
        assert_eq!(hash.len(), 12, "{v:?}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{v:?}");
    }
    // Built from a git checkout (this test runs in one), it must know the commit.
    let in_git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(head) = in_git {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
        assert!(
            rest.starts_with(&format!("commit {head}")),
            "{v:?} vs HEAD {head}"
        );
    }
}

#[test]
fn a_missing_file_error_prints_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), b"plain").unwrap();
    let out = ward(
        dir.path(),
        &[
            "pf",
            "encrypt",
            "-w",
            "nonexistent-key",
            "-i",
            "x",
            "-o",
            "y",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("nonexistent-key"), "{err}");
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the cause should appear exactly once: {err}"
    );
    // One cause per line, each line either the error, a cause or a hint.
    for line in err.lines() {
        assert!(
            line.starts_with("error: ")
                || line.starts_with("  caused by: ")
                || line.starts_with("hint: "),
            "unexpected line {line:?} in {err}"
        );
    }
    assert!(!dir.path().join("y").exists());
}
