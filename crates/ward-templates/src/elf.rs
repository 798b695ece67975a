//! The shared libraries an ELF program needs, found as the dynamic loader would find them.
//!
//! Why parse ELF (with `goblin`) rather than run `ldd`: `ldd` runs the dynamic loader on the file
//! (for a hostile or merely odd `.so`, that executes code from it), needs one process per file
//! (a stdlib and site-packages have hundreds of extension modules), and its output is a format
//! for people. Reading `PT_INTERP`, `DT_NEEDED`, `DT_RPATH` and `DT_RUNPATH` and searching as
//! `ld.so` does is a few hundred microseconds per file and runs nothing.
//!
//! The search, per needed name: a name with a `/` is a path; otherwise the object's `DT_RPATH`
//! (only if it has no `DT_RUNPATH`), its `DT_RUNPATH` (`$ORIGIN` expanded), the libraries listed
//! in `/etc/ld.so.cache`, then the default directories. A candidate must be an ELF file of the
//! same class and machine as the program. Not modelled: `LD_LIBRARY_PATH` (the workload's
//! environment is the manifest's), `DT_RPATH` inherited by an object's dependencies, hwcaps
//! subdirectories, `$LIB`/`$PLATFORM`, and `dlopen` of a computed name.

use crate::error::{io_err, TemplateError};
use goblin::elf::Elf;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

/// The directories `ld.so` searches last (x86-64 Debian/Ubuntu multiarch and the FHS defaults).
const DEFAULT_DIRS: [&str; 6] = [
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// What [`dependencies`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dependencies {
    /// Every library and program interpreter needed, as the loader names it (e.g.
    /// `/lib64/ld-linux-x86-64.so.2`, `/lib/x86_64-linux-gnu/libc.so.6`), sorted.
    pub libraries: BTreeSet<PathBuf>,
    /// Needed names that no search found: (the object that needs it, the name).
    pub unresolved: Vec<(PathBuf, String)>,
    /// Directories that only `/etc/ld.so.cache` led to (not a default directory, not an
    /// object's run path): a loader without the cache needs them in `LD_LIBRARY_PATH`.
    pub cache_dirs: BTreeSet<PathBuf>,
}

/// Where the loader looks for a library name: `/etc/ld.so.cache` and the default directories.
#[derive(Debug, Clone, Default)]
pub struct LibrarySearch {
    cache: BTreeMap<String, Vec<PathBuf>>,
}

impl LibrarySearch {
    /// Reads this host's `/etc/ld.so.cache` (an absent or unreadable cache is treated as empty:
    /// the default directories are still searched).
    pub fn system() -> LibrarySearch {
        fs::read("/etc/ld.so.cache")
            .map(|b| LibrarySearch::from_cache(&b))
            .unwrap_or_default()
    }

    /// Parses an `ld.so.cache` in glibc's new format (`glibc-ld.so.cache1.1`, alone or after the
    /// old format's entries); anything malformed ends the parse with what was read so far.
    pub fn from_cache(bytes: &[u8]) -> LibrarySearch {
        const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
        let mut cache: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        let Some(base) = bytes.windows(MAGIC.len()).position(|w| w == MAGIC) else {
            return LibrarySearch { cache };
        };
        let data = &bytes[base..];
        let u32_at = |o: usize| {
            data.get(o..o + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        // String offsets are relative to the new header.
        let str_at = |o: usize| {
            let s = data.get(o..)?;
            let end = s.iter().position(|&b| b == 0)?;
            std::str::from_utf8(&s[..end]).ok()
        };
        let Some(nlibs) = u32_at(20) else {
            return LibrarySearch { cache };
        };
        // Header: magic+version (20), nlibs, len_strings, flags+pad, extension offset, 3 unused.
        const HEADER: usize = 48;
        const ENTRY: usize = 24;
        for i in 0..nlibs {
            let e = HEADER + i * ENTRY;
            let (Some(key), Some(value)) = (u32_at(e + 4), u32_at(e + 8)) else {
                break;
            };
            if let (Some(k), Some(v)) = (str_at(key), str_at(value)) {
                cache
                    .entry(k.to_owned())
                    .or_default()
                    .push(PathBuf::from(v));
            }
        }
        LibrarySearch { cache }
    }

    /// Whether the cache lists any library (false when there is no usable `/etc/ld.so.cache`).
    pub fn has_cache(&self) -> bool {
        !self.cache.is_empty()
    }
}

/// The ELF class and machine a library must share with the program that needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    is_64: bool,
    machine: u16,
}

fn kind_of(path: &Path) -> Option<Kind> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let mut f = fs::File::open(path).ok()?;
    let n = f.read(&mut head).ok()?;
    let h = Elf::parse_header(&head[..n]).ok()?;
    Some(Kind {
        is_64: h.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64,
        machine: h.e_machine,
    })
}

/// The shared libraries (and program interpreters) that `roots` need, transitively. A root that
/// is not an ELF file (or unreadable as one) is skipped: the caller passes every `*.so` under a
/// tree, and some are scripts or stubs. `program` fixes the class and machine libraries must
/// have; it is parsed and must be ELF.
pub fn dependencies(
    program: &Path,
    roots: &[PathBuf],
    search: &LibrarySearch,
) -> Result<Dependencies, TemplateError> {
    let bytes = fs::read(program).map_err(io_err("reading", program))?;
    let elf = Elf::parse(&bytes).map_err(|source| TemplateError::Elf {
        path: program.to_owned(),
        source,
    })?;
    let kind = Kind {
        is_64: elf.is_64,
        machine: elf.header.e_machine,
    };
    drop(elf);
    let mut out = Dependencies::default();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut queue: VecDeque<PathBuf> = VecDeque::new();
    for r in std::iter::once(program).chain(roots.iter().map(PathBuf::as_path)) {
        if seen.insert(r.to_owned()) {
            queue.push_back(r.to_owned());
        }
    }
    while let Some(file) = queue.pop_front() {
        let Ok(bytes) = fs::read(&file) else {
            continue;
        };
        let Ok(elf) = Elf::parse(&bytes) else {
            continue;
        };
        if elf.is_64 != kind.is_64 || elf.header.e_machine != kind.machine {
            continue;
        }
        let mut found = Vec::new();
        if let Some(interp) = elf.interpreter {
            found.push(PathBuf::from(interp));
        }
        let origin = file.parent().unwrap_or(Path::new("/"));
        let expand = |p: &str| -> Vec<PathBuf> {
            p.split(':')
                .filter(|d| !d.is_empty())
                .map(|d| {
                    let d = d
                        .replace("${ORIGIN}", &origin.to_string_lossy())
                        .replace("$ORIGIN", &origin.to_string_lossy());
                    crate::host::normalize(&origin.join(d))
                })
                .collect()
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        if elf.runpaths.is_empty() {
            elf.rpaths.iter().for_each(|p| dirs.extend(expand(p)));
        }
        elf.runpaths.iter().for_each(|p| dirs.extend(expand(p)));
        for name in &elf.libraries {
            // (candidate, whether only the cache names it)
            let candidates: Vec<(PathBuf, bool)> = if name.contains('/') {
                vec![(crate::host::normalize(&origin.join(name)), false)]
            } else {
                dirs.iter()
                    .map(|d| (d.join(name), false))
                    .chain(
                        search
                            .cache
                            .get(*name)
                            .into_iter()
                            .flatten()
                            .map(|p| (p.clone(), true)),
                    )
                    .chain(
                        DEFAULT_DIRS
                            .iter()
                            .map(|d| (Path::new(d).join(name), false)),
                    )
                    .collect()
            };
            match candidates
                .into_iter()
                .find(|(c, _)| kind_of(c) == Some(kind))
            {
                Some((lib, from_cache)) => {
                    let dir = lib.parent().unwrap_or(Path::new("/"));
                    if from_cache && !DEFAULT_DIRS.iter().any(|d| Path::new(d) == dir) {
                        out.cache_dirs.insert(dir.to_owned());
                    }
                    found.push(lib);
                }
                None => out.unresolved.push((file.clone(), (*name).to_owned())),
            }
        }
        for lib in found {
            // A library is followed once, under the first name that reached it.
            let canon = fs::canonicalize(&lib).unwrap_or_else(|_| lib.clone());
            out.libraries.insert(lib);
            if seen.insert(canon.clone()) {
                queue.push_back(canon);
            }
        }
    }
    Ok(out)
}
