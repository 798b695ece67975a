//! File-level operations: trees, atomic outputs and the refusals that protect inputs.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use ward_pf::files::{self, EncryptSettings, FilesError, Observer, Phase, Quiet};
use ward_pf::WrapKey;

fn key(byte: u8) -> WrapKey {
    WrapKey::from_bytes([byte; 16])
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Every file name under `dir`, recursively, relative to it.
fn names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walk(dir) {
        out.push(e.strip_prefix(dir).unwrap().display().to_string());
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_tree_round_trips_skipping_stale_temporaries() {
    let d = tempfile::tempdir().unwrap();
    let plain = d.path().join("plain");
    fs::create_dir_all(plain.join("sub")).unwrap();
    fs::write(plain.join("a.bin"), sample(10_000)).unwrap();
    fs::write(plain.join("sub/b.txt"), b"hello").unwrap();
    fs::write(
        plain.join("sub/.b.txt.AbC123.ward-tmp"),
        b"left by a killed run",
    )
    .unwrap();

    let enc = d.path().join("enc");
    let plan = files::plan(&plain, Some(&enc)).unwrap();
    assert!(plan.is_tree);
    assert_eq!(plan.stale_temporaries, 1);
    assert_eq!(plan.jobs.len(), 2);
    for job in &plan.jobs {
        let out = job.output.as_deref().unwrap();
        let info = files::encrypt_file(
            &key(1),
            &job.input,
            out,
            &EncryptSettings::default(),
            &Quiet,
        )
        .unwrap();
        assert_eq!(info.bound_path, ward_pf::normalize(out.to_str().unwrap()));
    }
    assert_eq!(names(&enc), ["a.bin", "sub/b.txt"]);

    let back = d.path().join("back");
    for job in &files::plan(&enc, Some(&back)).unwrap().jobs {
        let expected = job.input.to_str().unwrap();
        files::decrypt_file(
            &key(1),
            &job.input,
            job.output.as_deref().unwrap(),
            Some(expected),
            1,
            &Quiet,
        )
        .unwrap();
    }
    assert_eq!(fs::read(back.join("a.bin")).unwrap(), sample(10_000));
    assert_eq!(fs::read(back.join("sub/b.txt")).unwrap(), b"hello");
}

#[test]
fn an_output_over_its_own_input_is_refused_and_the_input_kept() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x");
    fs::write(&p, sample(5000)).unwrap();
    let link = d.path().join("hard-link");
    fs::hard_link(&p, &link).unwrap();
    for out in [&p, &link] {
        let err =
            files::encrypt_file(&key(1), &p, out, &EncryptSettings::default(), &Quiet).unwrap_err();
        assert!(matches!(err, FilesError::OwnInput { .. }), "{err}");
        assert!(matches!(
            files::plan(&p, Some(out)).unwrap_err(),
            FilesError::OwnInput { .. }
        ));
    }
    assert_eq!(fs::read(&p).unwrap(), sample(5000));
    assert_eq!(names(d.path()), ["hard-link", "x"]);
}

#[test]
fn a_directory_output_inside_its_input_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let plain = d.path().join("plain");
    fs::create_dir(&plain).unwrap();
    fs::write(plain.join("a"), b"a").unwrap();
    let err = files::plan(&plain, Some(&plain.join("enc"))).unwrap_err();
    assert!(matches!(err, FilesError::OutputInsideInput { .. }), "{err}");
    // Spelled with `..` it is still inside.
    let sneaky = d.path().join("plain/x/../enc");
    assert!(matches!(
        files::plan(&plain, Some(&sneaky)).unwrap_err(),
        FilesError::OutputInsideInput { .. }
    ));
    // A file as the output of a directory.
    fs::write(d.path().join("file"), b"").unwrap();
    assert!(matches!(
        files::plan(&plain, Some(&d.path().join("file"))).unwrap_err(),
        FilesError::DirectoryToFile { .. }
    ));
}

#[test]
fn a_temporary_is_never_an_input() {
    let d = tempfile::tempdir().unwrap();
    let tmp = d.path().join(".a.pf.XyZ987.ward-tmp");
    fs::write(&tmp, sample(100)).unwrap();
    let out = d.path().join("out");
    assert!(matches!(
        files::plan(&tmp, Some(&out)).unwrap_err(),
        FilesError::TemporaryInput { .. }
    ));
    assert!(matches!(
        files::verify_file(&key(1), &tmp, None, 1, &Quiet).unwrap_err(),
        FilesError::TemporaryInput { .. }
    ));
}

#[test]
fn a_failed_decrypt_leaves_the_existing_output_and_nothing_else() {
    let d = tempfile::tempdir().unwrap();
    let plain = d.path().join("plain");
    fs::write(&plain, sample(200_000)).unwrap();
    let enc = d.path().join("enc.pf");
    files::encrypt_file(&key(1), &plain, &enc, &EncryptSettings::default(), &Quiet).unwrap();

    let out = d.path().join("out");
    fs::write(&out, b"previous result").unwrap();
    let err = files::decrypt_file(&key(2), &enc, &out, None, 1, &Quiet).unwrap_err();
    assert!(
        err.format_error().is_some_and(ward_pf::Error::is_integrity),
        "{err}"
    );
    assert_eq!(fs::read(&out).unwrap(), b"previous result");

    // A node modified in the middle: still nothing but the old output.
    let mut bytes = fs::read(&enc).unwrap();
    bytes[3 * 4096 + 100] ^= 1;
    fs::write(&enc, &bytes).unwrap();
    let err = files::decrypt_file(&key(1), &enc, &out, None, 1, &Quiet).unwrap_err();
    assert!(
        err.format_error().is_some_and(ward_pf::Error::is_integrity),
        "{err}"
    );
    assert_eq!(fs::read(&out).unwrap(), b"previous result");
    assert_eq!(names(d.path()), ["enc.pf", "out", "plain"]);
}

#[derive(Default)]
struct Record(Mutex<Vec<(Phase, u64)>>);

impl Observer for Record {
    fn start(&self, phase: Phase, _path: &Path, total: u64) {
        self.0.lock().unwrap().push((phase, total));
    }
}

#[test]
fn encrypting_checks_the_output_before_committing_it() {
    let d = tempfile::tempdir().unwrap();
    let plain = d.path().join("plain");
    fs::write(&plain, sample(70_000)).unwrap();
    let record = Record::default();
    let enc = d.path().join("enc.pf");
    files::encrypt_file(&key(1), &plain, &enc, &EncryptSettings::default(), &record).unwrap();
    assert_eq!(
        *record.0.lock().unwrap(),
        [(Phase::Encrypting, 70_000), (Phase::Verifying, 70_000)]
    );
    let info = files::verify_file(&key(1), &enc, Some(enc.to_str().unwrap()), 0, &Quiet).unwrap();
    assert_eq!(info.size, 70_000);
}

#[test]
fn rewrap_to_another_file_keeps_the_original() {
    let d = tempfile::tempdir().unwrap();
    let plain = d.path().join("plain");
    fs::write(&plain, sample(9000)).unwrap();
    let enc = d.path().join("enc.pf");
    let settings = EncryptSettings {
        bound_path: Some("model.pf"),
        ..EncryptSettings::default()
    };
    files::encrypt_file(&key(1), &plain, &enc, &settings, &Quiet).unwrap();
    assert!(matches!(
        files::rewrap_file(&key(1), &key(1), &enc, None, &Quiet).unwrap_err(),
        FilesError::SameKey
    ));
    let out = d.path().join("rewrapped.pf");
    files::rewrap_file(&key(1), &key(2), &enc, Some(&out), &Quiet).unwrap();
    files::verify_file(&key(1), &enc, Some("model.pf"), 1, &Quiet).unwrap();
    files::verify_file(&key(2), &out, Some("model.pf"), 1, &Quiet).unwrap();
    // A wrong old key writes nothing.
    let none = d.path().join("none.pf");
    files::rewrap_file(&key(3), &key(2), &enc, Some(&none), &Quiet).unwrap_err();
    assert!(!none.exists());
    assert_eq!(names(d.path()), ["enc.pf", "plain", "rewrapped.pf"]);
}
