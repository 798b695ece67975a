//! Prints the manifest of a Python script: `python_manifest SCRIPT [INTERPRETER] [--site]`.

use std::path::Path;
use ward_templates::python::{self, PythonOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let site = args.iter().any(|a| a == "--site");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let Some(script) = pos.first() else {
        eprintln!("usage: python_manifest SCRIPT [INTERPRETER] [--site]");
        std::process::exit(2);
    };
    let interp = pos
        .get(1)
        .map_or(python::DEFAULT_INTERPRETER, |s| s.as_str());
    let install = python::inspect(Path::new(interp))?;
    let mut opts = PythonOptions::new(script.as_str());
    opts.include_site_packages = site;
    let got = python::manifest(&install, &opts)?;
    for s in &got.skipped {
        eprintln!("# skipped {} ({:?})", s.path.display(), s.reason);
    }
    for (f, n) in &got.unresolved {
        eprintln!("# unresolved {n}, needed by {}", f.display());
    }
    print!("{}", got.to_toml());
    Ok(())
}
