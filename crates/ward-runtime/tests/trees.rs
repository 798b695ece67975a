//! Trusted trees through the VFS, against real files: what is served is what was signed —
//! listing, modes, mtimes, symlinks and every chunk of content — and a host that changes a file
//! before or after open gets a refusal, never unverified bytes.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use ward_manifest::tree::{TrustTree, DEFAULT_CHUNK_SIZE};
use ward_manifest::FileUri;
use ward_runtime::vfs::{FileKind, Vfs, VfsError};

/// Larger than the size verified whole at open (1 MiB), so it is checked chunk by chunk.
const LARGE: usize = 3 << 20;

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ seed)
        .collect()
}

struct Signed {
    dir: tempfile::TempDir,
    vfs: Vfs,
}

impl Signed {
    fn host(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join("app").join(rel)
    }
}

/// A directory signed as a tree and mounted at /app, then an extra file added on the host.
fn signed() -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    fs::create_dir_all(app.join("pkg")).unwrap();
    fs::write(app.join("small.py"), b"print('hi')\n").unwrap();
    fs::write(app.join("pkg/big.so"), bytes(LARGE, 1)).unwrap();
    fs::set_permissions(app.join("pkg/big.so"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("pkg/big.so", app.join("link.so")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", app.join("away")).unwrap();
    let tree = TrustTree::build(
        &FileUri::from_path("app/").unwrap(),
        &app,
        DEFAULT_CHUNK_SIZE,
        &mut |_, _| {},
    )
    .unwrap();
    fs::write(app.join("added-later.py"), b"evil").unwrap();
    let vfs = Vfs::builder()
        .chroot("/app", &app)
        .trusted_tree(&app, Arc::new(tree))
        .build()
        .unwrap();
    Signed { dir, vfs }
}

fn read_all(vfs: &Vfs, path: &str) -> Result<Vec<u8>, VfsError> {
    let mut f = vfs.open(path)?;
    let mut out = vec![0u8; f.len() as usize];
    let n = f.read_at(0, &mut out)?;
    out.truncate(n);
    Ok(out)
}

#[test]
fn files_listing_modes_and_links_are_the_signed_ones() {
    let s = signed();
    assert_eq!(read_all(&s.vfs, "/app/small.py").unwrap(), b"print('hi')\n");
    assert_eq!(
        read_all(&s.vfs, "/app/pkg/big.so").unwrap(),
        bytes(LARGE, 1)
    );
    // Only what was signed is listed; the file added on the host is not there.
    assert_eq!(
        s.vfs.read_dir("/app").unwrap(),
        vec!["away", "link.so", "pkg", "small.py"]
    );
    let e = s.vfs.open("/app/added-later.py").unwrap_err();
    assert!(matches!(e, VfsError::NotFound { .. }), "{e}");
    assert!(
        e.to_string().contains("not in trusted directory file:app/"),
        "{e}"
    );
    assert!(s.vfs.metadata("/app/added-later.py").is_err());
    // Mode and mtime come from the tree: changing them on the host changes nothing.
    let md = s.vfs.metadata("/app/pkg/big.so").unwrap();
    assert_eq!(
        (md.kind, md.mode, md.len),
        (Some(FileKind::Trusted), Some(0o755), LARGE as u64)
    );
    let signed_mtime = md.mtime.unwrap();
    fs::set_permissions(s.host("pkg/big.so"), fs::Permissions::from_mode(0o600)).unwrap();
    let later = SystemTime::now() + Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(s.host("small.py"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let md = s.vfs.metadata("/app/pkg/big.so").unwrap();
    assert_eq!((md.mode, md.mtime), (Some(0o755), Some(signed_mtime)));
    assert_ne!(s.vfs.metadata("/app/small.py").unwrap().mtime, Some(later));
    // A symlink is a symlink with its signed target; opening it follows it in the view.
    let md = s.vfs.metadata("/app/link.so").unwrap();
    assert!(md.symlink && !md.is_file());
    assert_eq!(s.vfs.read_link("/app/link.so").unwrap(), "pkg/big.so");
    assert_eq!(read_all(&s.vfs, "/app/link.so").unwrap(), bytes(LARGE, 1));
    assert_eq!(s.vfs.read_link("/app/away").unwrap(), "/elsewhere");
    assert!(s.vfs.read_link("/app/small.py").is_err());
    // Trusted files are read-only.
    let e = s.vfs.create("/app/small.py").unwrap_err();
    assert!(matches!(e, VfsError::TrustedReadOnly { .. }), "{e}");
}

#[test]
fn a_small_file_changed_before_open_is_refused_at_open() {
    let s = signed();
    // Same length, one byte different.
    fs::write(s.host("small.py"), b"print('HI')\n").unwrap();
    let e = s.vfs.open("/app/small.py").unwrap_err();
    assert!(
        matches!(e, VfsError::TrustedChanged { chunk: 0, .. }),
        "{e}"
    );
    assert!(e.is_integrity());
    // Another length is refused too.
    fs::write(s.host("small.py"), b"print('hi')\n\n").unwrap();
    let e = s.vfs.open("/app/small.py").unwrap_err();
    assert!(matches!(e, VfsError::TrustedResized { .. }), "{e}");
}

#[test]
fn a_large_file_changed_before_open_is_refused_at_open() {
    let s = signed();
    let f = fs::File::options()
        .write(true)
        .open(s.host("pkg/big.so"))
        .unwrap();
    f.write_all_at(b"X", 2 << 20).unwrap();
    drop(f);
    // Its mtime moved, so open checks every chunk: chunk 32 of 64 KiB each holds the change.
    let e = s.vfs.open("/app/pkg/big.so").unwrap_err();
    assert!(
        matches!(e, VfsError::TrustedChanged { chunk: 32, .. }),
        "{e}"
    );
}

#[test]
fn a_change_that_hides_its_mtime_fails_at_the_changed_chunk_only() {
    let s = signed();
    let host = s.host("pkg/big.so");
    let mtime = fs::metadata(&host).unwrap().modified().unwrap();
    let f = fs::File::options().write(true).open(&host).unwrap();
    f.write_all_at(b"X", (2 << 20) + 5).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    // The host restored the mtime: open is lazy, but the bad chunk is never served.
    let mut file = s.vfs.open("/app/pkg/big.so").unwrap();
    let mut buf = vec![0u8; 4096];
    assert_eq!(file.read_at(0, &mut buf).unwrap(), 4096);
    assert_eq!(buf, bytes(LARGE, 1)[..4096]);
    let e = file.read_at(2 << 20, &mut buf).unwrap_err();
    assert!(
        matches!(e, VfsError::TrustedChanged { chunk: 32, .. }),
        "{e}"
    );
    // Chunks after it still read.
    let at = (2 << 20) + (64 << 10);
    assert_eq!(file.read_at(at as u64, &mut buf).unwrap(), 4096);
    assert_eq!(buf, bytes(LARGE, 1)[at..at + 4096]);
}

#[test]
fn a_file_changed_after_open_fails_at_that_chunk() {
    let s = signed();
    let mut file = s.vfs.open("/app/pkg/big.so").unwrap();
    let mut first = vec![0u8; 100];
    file.read_exact(&mut first).unwrap();
    let f = fs::File::options()
        .write(true)
        .open(s.host("pkg/big.so"))
        .unwrap();
    f.write_all_at(&[0xff; 16], 1 << 20).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let e = file.read_at(1 << 20, &mut buf).unwrap_err();
    assert!(
        matches!(e, VfsError::TrustedChanged { chunk: 16, .. }),
        "{e}"
    );
    // Truncated under it: refused as resized, not served short.
    f.set_len(100).unwrap();
    let e = file.read_at(2 << 20, &mut buf).unwrap_err();
    assert!(matches!(e, VfsError::TrustedResized { .. }), "{e}");
}

#[test]
fn a_file_swapped_for_a_symlink_or_fifo_on_the_host_is_checked_or_refused() {
    let s = signed();
    // A host symlink to a file with the same bytes: served (content is what counts).
    let copy = s.dir.path().join("copy.py");
    fs::write(&copy, b"print('hi')\n").unwrap();
    fs::remove_file(s.host("small.py")).unwrap();
    std::os::unix::fs::symlink(&copy, s.host("small.py")).unwrap();
    assert_eq!(read_all(&s.vfs, "/app/small.py").unwrap(), b"print('hi')\n");
    // A FIFO: refused without blocking.
    fs::remove_file(s.host("small.py")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(s.host("small.py"))
        .status();
    if status.is_ok_and(|s| s.success()) {
        let e = s.vfs.open("/app/small.py").unwrap_err();
        assert!(matches!(e, VfsError::NotRegularFile { .. }), "{e}");
    }
    // Gone: not found.
    fs::remove_file(s.host("small.py")).unwrap();
    assert!(s.vfs.open("/app/small.py").is_err());
    assert!(Path::new(&s.host("pkg")).exists());
}

#[test]
fn a_trusted_files_signed_mode_and_mtime_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bin/tool");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, b"#!x").unwrap();
    let sha: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(b"#!x").into()
    };
    let signed = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let vfs = Vfs::builder()
        .chroot("/opt", dir.path())
        .trusted(&file, sha)
        .trusted_metadata(&file, 0o755, signed)
        .build()
        .unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let md = vfs.metadata("/opt/bin/tool").unwrap();
    assert_eq!((md.mode, md.mtime), (Some(0o755), Some(signed)));
}
