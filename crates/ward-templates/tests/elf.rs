//! The ELF library search against this machine's own files.

use std::fs;
use std::path::{Path, PathBuf};
use ward_templates::elf::{dependencies, LibrarySearch};

#[test]
fn the_system_cache_lists_libc() {
    let s = LibrarySearch::system();
    if !Path::new("/etc/ld.so.cache").exists() {
        eprintln!("skipped: no /etc/ld.so.cache");
        return;
    }
    assert!(s.has_cache());
}

#[test]
fn a_truncated_or_foreign_cache_is_empty_not_a_panic() {
    assert!(!LibrarySearch::from_cache(b"").has_cache());
    assert!(!LibrarySearch::from_cache(b"glibc-ld.so.cache1.1\xff\xff").has_cache());
    let mut b = b"glibc-ld.so.cache1.1".to_vec();
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    b.resize(200, 0xff);
    assert!(!LibrarySearch::from_cache(&b).has_cache());
}

#[test]
fn a_program_needs_libc_and_the_loader_and_non_elf_roots_are_skipped() {
    let Ok(py) = fs::canonicalize("/usr/bin/python3") else {
        eprintln!("skipped: no /usr/bin/python3");
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let fake = d.path().join("fake.so");
    fs::write(&fake, b"not an ELF file").unwrap();
    let deps = dependencies(&py, &[fake], &LibrarySearch::system()).unwrap();
    let names: Vec<String> = deps
        .libraries
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert!(names.iter().any(|n| n == "libc.so.6"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("ld-linux")), "{names:?}");
    assert!(deps.unresolved.is_empty(), "{:?}", deps.unresolved);
    assert!(deps.libraries.iter().all(|p: &PathBuf| p.exists()));
}

#[test]
fn a_program_that_is_not_elf_is_an_error_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("script");
    fs::write(&f, b"#!/bin/sh\n").unwrap();
    let err = dependencies(&f, &[], &LibrarySearch::default()).unwrap_err();
    assert!(err.to_string().contains("script"), "{err}");
}
