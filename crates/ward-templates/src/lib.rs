//! Manifest templates: the manifest of a user's own program, written from the program's
//! installation instead of by hand (as Gramine's templates use `python.stdlib` and
//! `python.distlib`).
//!
//! What this crate is:
//! - [`python::inspect`]: runs a Python interpreter once and reads where its prefix, stdlib,
//!   `lib-dynload` and site-packages are (a venv is recognised by `sys.prefix !=
//!   sys.base_prefix`);
//! - [`python::manifest`]: the typed [`ward_manifest::Manifest`] that runs a script with that
//!   interpreter: the mounts every needed path lies under, and as trusted files the
//!   interpreter (with the symlinks leading to it), the stdlib, optionally site-packages, the
//!   script's directory and every shared library needed ([`elf::dependencies`]: `DT_NEEDED`
//!   resolved as `ld.so` would, the loader itself included);
//! - [`elf`]: that library search, usable for any ELF program;
//! - [`gramine::gramine_manifest`]: the Gramine manifest template that runs `ward run` itself,
//!   on a signed ward manifest, inside an SGX enclave (built-in workloads), pinning ward, its
//!   fixed arguments and everything the ward manifest trusts.
//!
//! What it is not: it hashes and signs nothing (`ward sign` does, from the manifest written
//! here), runs nothing but the interpreter's self-description, and cannot know what a program
//! loads by a computed name (`ctypes.CDLL(name)`, `dlopen`) or which other programs it runs;
//! those are added by hand. It writes ward manifests through the typed schema, never as text
//! (the Gramine manifest is Gramine's format, written as text with every path checked to need no
//! escaping).

mod error;
mod host;
mod tree;

pub mod elf;
pub mod gramine;
pub mod python;

pub use error::TemplateError;
pub use tree::{SkipReason, Skipped};
