//! Random-access writers (`VfsWriter::write_at`, `read_at`, `set_len`) and new versions that
//! start as a copy of the current file (`Vfs::edit`), for all three kinds of file, against real
//! files in temporary directories.

use proptest::prelude::*;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use ward_pf::WrapKey;
use ward_runtime::vfs::{Vfs, VfsBuilder, VfsError, VfsWriter};

fn key() -> WrapKey {
    WrapKey::from_bytes([7u8; 16])
}

/// Deterministic test bytes.
fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32) as u8
                ^ seed
        })
        .collect()
}

/// Encrypts `data` to `host`, bound to `bound`.
fn protect(data: &[u8], bound: &str, host: &Path) {
    let mut out = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(host)
        .unwrap();
    ward_pf::encrypt(&mut &data[..], &key(), bound, &mut out, Default::default()).unwrap();
}

/// The plaintext of the protected file at `host`, checked to be bound to `bound`.
fn decrypt(host: &Path, bound: &str) -> Vec<u8> {
    let file = fs::File::open(host).unwrap();
    let mut plain = Vec::new();
    ward_pf::decrypt(&file, &key(), Some(bound), &mut plain, Default::default()).unwrap();
    plain
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        for d in ["enc", "out"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        Fixture { dir }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    /// /data (encrypted, enc/ bound as "enc"), /out (chroot, out/ allowed), /tmp (tmpfs).
    fn builder(&self) -> VfsBuilder {
        Vfs::builder()
            .encrypted("/data", self.p("enc"), "enc", "default")
            .chroot("/out", self.p("out"))
            .allowed(self.p("out"))
            .tmpfs("/tmp")
            .key("default", key())
    }
    fn vfs(&self) -> Vfs {
        self.builder().build().unwrap()
    }
}

/// One path of each kind.
const PATHS: [&str; 3] = ["/data/f.bin", "/out/f.bin", "/tmp/f.bin"];

/// All of `w` read back with `read_at`, in odd-sized steps.
fn read_back(w: &mut VfsWriter) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        let n = w.read_at(out.len() as u64, &mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// The directory holds no writer temporary files.
fn no_temp_files(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.ends_with(".ward-tmp"), "temporary file left: {name}");
    }
}

#[test]
fn writes_at_offsets_holes_truncation_and_read_back_for_every_kind() {
    let f = Fixture::new();
    let vfs = f.vfs();
    for path in PATHS {
        let mut w = vfs.create(path).unwrap();
        assert!(w.is_empty());
        // A header patched after the body, across the protected file's inline/node boundary.
        w.write_at(10, &bytes(5000, 1)).unwrap();
        w.write_at(0, b"HEADER----").unwrap();
        let mut want = b"HEADER----".to_vec();
        want.extend(bytes(5000, 1));
        assert_eq!(read_back(&mut w), want, "{path}");
        // A hole reads as zeros.
        w.write_at(20_000, b"tail").unwrap();
        want.resize(20_000, 0);
        want.extend_from_slice(b"tail");
        assert_eq!(w.len(), 20_004, "{path}");
        assert_eq!(read_back(&mut w), want, "{path}");
        // Truncate into the middle, then extend again: the cut bytes come back as zeros.
        w.set_len(3000).unwrap();
        want.truncate(3000);
        assert_eq!(read_back(&mut w), want, "{path}");
        w.set_len(9000).unwrap();
        want.resize(9000, 0);
        assert_eq!(read_back(&mut w), want, "{path}");
        let mut past = [1u8; 8];
        assert_eq!(w.read_at(9000, &mut past).unwrap(), 0);
        assert_eq!(w.read_at(u64::MAX, &mut past).unwrap(), 0);
        w.commit().unwrap();
        assert_eq!(&vfs.read(path).unwrap()[..], &want[..], "{path}");
    }
    assert_eq!(
        decrypt(&f.p("enc/f.bin"), "enc/f.bin").len(),
        9000,
        "the protected output is bound to its path"
    );
    no_temp_files(&f.p("enc"));
    no_temp_files(&f.p("out"));
}

#[test]
fn protected_output_decrypts_to_what_was_written_out_of_order() {
    let f = Fixture::new();
    let vfs = f.vfs();
    let body = bytes(300_000, 2);
    let mut w = vfs.create("/data/model.bin").unwrap();
    // Back to front, in uneven pieces (as a zip's central directory and local headers are).
    let mut end = body.len();
    while end > 0 {
        let start = end.saturating_sub(12_345);
        w.write_at(start as u64, &body[start..end]).unwrap();
        end = start;
    }
    w.commit().unwrap();
    assert_eq!(decrypt(&f.p("enc/model.bin"), "enc/model.bin"), body);
    assert_eq!(vfs.stats().protected_bytes_encrypted, body.len() as u64);
}

#[test]
fn huge_offsets_are_refused_without_changing_anything() {
    let f = Fixture::new();
    let vfs = f.vfs();
    for path in PATHS {
        let mut w = vfs.create(path).unwrap();
        w.write_all(b"kept").unwrap();
        for (offset, len) in [(u64::MAX, 1), (u64::MAX - 2, 8), (1 << 63, 1)] {
            let e = w.write_at(offset, &vec![0u8; len]).unwrap_err();
            assert!(matches!(e, VfsError::TooLarge { .. }), "{path}: {e}");
            assert_eq!(e.io_kind(), std::io::ErrorKind::FileTooLarge);
        }
        let e = w.set_len(u64::MAX).unwrap_err();
        assert!(matches!(e, VfsError::TooLarge { .. }), "{path}: {e}");
        // Refused before anything changed: the writer is still good.
        assert!(!w.has_failed());
        assert_eq!(read_back(&mut w), b"kept");
        w.commit().unwrap();
        assert_eq!(&vfs.read(path).unwrap()[..], b"kept");
    }
    // Past the protected-file limit, but well within a host file's.
    let mut w = vfs.create("/data/big.bin").unwrap();
    let e = w.set_len(1 << 51).unwrap_err();
    assert!(e.to_string().contains("largest protected file"), "{e}");
}

#[test]
fn edit_starts_from_the_current_contents_and_commits_only_when_asked() {
    let f = Fixture::new();
    let old = bytes(50_000, 3);
    protect(&old, "enc/f.bin", &f.p("enc/f.bin"));
    fs::write(f.p("out/f.bin"), &old).unwrap();
    let vfs = f.vfs();
    vfs.write("/tmp/f.bin", &old).unwrap();
    let before_enc = fs::read(f.p("enc/f.bin")).unwrap();

    // A failed run: patched, appended, dropped. The old files stay byte-identical.
    for path in PATHS {
        let mut w = vfs.edit(path).unwrap();
        assert_eq!(read_back(&mut w), old, "{path}");
        w.write_at(0, b"XYZ").unwrap();
        let end = w.len();
        w.write_at(end, b"appended").unwrap();
        drop(w);
        assert_eq!(&vfs.read(path).unwrap()[..], &old[..], "{path}");
    }
    assert_eq!(fs::read(f.p("enc/f.bin")).unwrap(), before_enc);
    assert_eq!(fs::read(f.p("out/f.bin")).unwrap(), old);
    no_temp_files(&f.p("enc"));
    no_temp_files(&f.p("out"));

    // A good run: 3 bytes patched, the rest kept; and an append.
    let mut patched = old.clone();
    patched[..3].copy_from_slice(b"XYZ");
    patched.extend_from_slice(b"appended");
    for path in PATHS {
        let mut w = vfs.edit(path).unwrap();
        w.write_at(0, b"XYZ").unwrap();
        let end = w.len();
        w.write_at(end, b"appended").unwrap();
        w.commit().unwrap();
        assert_eq!(&vfs.read(path).unwrap()[..], &patched[..], "{path}");
    }
    assert_eq!(decrypt(&f.p("enc/f.bin"), "enc/f.bin"), patched);
    assert_eq!(fs::read(f.p("out/f.bin")).unwrap(), patched);

    // A file that does not exist starts empty.
    let w = vfs.edit("/data/new.bin").unwrap();
    assert!(w.is_empty());
}

#[test]
fn edit_checks_the_current_file_before_copying_it() {
    let f = Fixture::new();
    // Bound to another path: a substituted file is refused, not copied into a new version.
    protect(b"someone else's", "enc/other.bin", &f.p("enc/f.bin"));
    let vfs = f.vfs();
    let e = vfs.edit("/data/f.bin").unwrap_err();
    assert!(e.is_integrity(), "{e}");
    no_temp_files(&f.p("enc"));
    // Pinned files stay read-only.
    let vfs = f.builder().pin("/data/f.bin", [0; 32]).build().unwrap();
    assert!(matches!(
        vfs.edit("/data/f.bin").unwrap_err(),
        VfsError::PinnedReadOnly { .. }
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Write(u64, Vec<u8>),
    SetLen(u64),
    Read(u64, usize),
}

fn op() -> impl Strategy<Value = Op> {
    // Offsets around the protected file's inline area (3072) and its first nodes (4096 each).
    prop_oneof![
        (
            0u64..20_000,
            proptest::collection::vec(any::<u8>(), 0..6000)
        )
            .prop_map(|(o, d)| Op::Write(o, d)),
        (0u64..20_000).prop_map(Op::SetLen),
        (0u64..22_000, 0usize..9000).prop_map(|(o, n)| Op::Read(o, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any sequence of writes, truncations and reads behaves as a `Vec<u8>` does, for every
    /// kind, and what is committed is what the model holds.
    #[test]
    fn writers_behave_like_a_byte_vector(ops in proptest::collection::vec(op(), 1..12)) {
        let f = Fixture::new();
        let vfs = f.vfs();
        for path in PATHS {
            let mut model: Vec<u8> = Vec::new();
            let mut w = vfs.create(path).unwrap();
            for op in &ops {
                match op {
                    Op::Write(o, d) => {
                        w.write_at(*o, d).unwrap();
                        if !d.is_empty() {
                            let end = *o as usize + d.len();
                            if model.len() < end {
                                model.resize(end, 0);
                            }
                            model[*o as usize..end].copy_from_slice(d);
                        }
                    }
                    Op::SetLen(n) => {
                        w.set_len(*n).unwrap();
                        model.resize(*n as usize, 0);
                    }
                    Op::Read(o, n) => {
                        let mut buf = vec![0xAA; *n];
                        let got = w.read_at(*o, &mut buf).unwrap();
                        let start = (*o as usize).min(model.len());
                        let end = (start + n).min(model.len());
                        prop_assert_eq!(&buf[..got], &model[start..end], "{}", path);
                    }
                }
                prop_assert_eq!(w.len(), model.len() as u64);
            }
            w.commit().unwrap();
            prop_assert_eq!(&vfs.read(path).unwrap()[..], &model[..], "{}", path);
        }
    }
}

#[test]
fn an_edited_copy_knows_whether_it_changed() {
    let f = Fixture::new();
    fs::write(f.p("out/f.bin"), b"same").unwrap();
    let vfs = f.vfs();
    let mut w = vfs.edit("/out/f.bin").unwrap();
    assert!(w.is_unchanged_copy());
    assert_eq!(read_back(&mut w), b"same");
    w.write_at(2, b"").unwrap();
    assert!(
        w.is_unchanged_copy(),
        "reads and empty writes change nothing"
    );
    w.write_at(0, b"S").unwrap();
    assert!(!w.is_unchanged_copy());
    let mut w = vfs.edit("/out/f.bin").unwrap();
    w.set_len(0).unwrap();
    assert!(!w.is_unchanged_copy());
    // A new, empty version is a change: it truncates the file when committed.
    assert!(!vfs.create("/out/f.bin").unwrap().is_unchanged_copy());
}
