//! The Python template against the real interpreters of this machine (skipped, with the reason
//! printed, where one is absent).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use ward_manifest::tree::TreeEntry;
use ward_manifest::{FileUri, Manifest, MountType, Sha256, SignOptions, SignerKey, TrustedFile};
use ward_templates::python::{self, EncryptedMount, PythonOptions};
use ward_templates::TemplateError;

const PY: &str = "/usr/bin/python3";

fn system_python() -> Option<python::PythonInstall> {
    if !Path::new(PY).exists() {
        eprintln!("skipped: {PY} is absent");
        return None;
    }
    Some(python::inspect(Path::new(PY)).expect("inspecting the system python"))
}

/// A project directory with a script (and a manifest written beside it, relative URIs).
fn project(dir: &Path) -> PathBuf {
    let app = dir.join("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("helper.py"), "X = 1\n").unwrap();
    let script = app.join("script.py");
    fs::write(
        &script,
        "import json, helper\nprint(json.dumps(helper.X))\n",
    )
    .unwrap();
    script
}

fn uris(m: &Manifest) -> Vec<String> {
    m.sgx
        .trusted_files
        .iter()
        .map(|t| t.uri().path().to_owned())
        .collect()
}

/// Whether host `path` is a trusted file of `m` (listed, or under a trusted directory).
fn trusts(m: &Manifest, base: &Path, path: &Path) -> bool {
    m.sgx.trusted_files.iter().any(|t| {
        let p = ward_manifest::resolve(base, t.uri());
        p == path || (t.uri().is_dir_syntax() && path.starts_with(&p))
    })
}

fn generate(
    opts: &PythonOptions,
    install: &python::PythonInstall,
) -> (python::PythonManifest, String) {
    let got = python::manifest(install, opts).expect("writing the manifest");
    let text = got.to_toml();
    (got, text)
}

#[test]
fn inspect_finds_python3_and_its_stdlib() {
    let Some(py) = system_python() else { return };
    assert_eq!(py.version.0, 3, "{py:?}");
    assert!(py.stdlib.join("os.py").is_file(), "{py:?}");
    assert_eq!(py.interpreter, Path::new(PY));
    assert_eq!(py.resolved, fs::canonicalize(PY).unwrap());
    assert!(!py.is_venv());
    let dynload = py.lib_dynload.clone().expect("a lib-dynload dir");
    assert!(dynload.is_dir());
}

#[test]
fn stdlib_manifest_parses_and_trusts_what_runs() {
    let Some(py) = system_python() else { return };
    let d = tempfile::tempdir().unwrap();
    let script = project(d.path());
    let mut opts = PythonOptions::new(&script);
    opts.manifest_dir = Some(d.path().to_owned());
    let (got, text) = generate(&opts, &py);
    let m = Manifest::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(m, got.manifest);
    let real = fs::canonicalize(PY).unwrap();
    assert_eq!(
        m.libos.as_ref().unwrap().entrypoint.as_str(),
        real.to_str().unwrap()
    );
    assert_eq!(m.loader.argv, [PY, "/app/script.py"]);
    assert_eq!(m.fs.start_dir.as_ref().unwrap().as_str(), "/app");
    assert!(m.loader.env.contains_key("PYTHONDONTWRITEBYTECODE"));
    assert!(!m.loader.env.contains_key("PYTHONHASHSEED"));
    // The script's directory, relative to the manifest's.
    assert!(uris(&m).contains(&"app/".to_owned()), "{text}");
    let app =
        m.fs.mounts
            .iter()
            .find(|mt| mt.path.as_str() == "/app")
            .unwrap();
    assert_eq!(app.uri.as_ref().unwrap().path(), "app");
    assert!(m
        .fs
        .mounts
        .iter()
        .any(|mt| mt.kind == MountType::Tmpfs && mt.path.as_str() == "/tmp"));

    // Every trusted URI exists, and lies under a chroot mount.
    for t in &m.sgx.trusted_files {
        let p = ward_manifest::resolve(d.path(), t.uri());
        assert!(p.exists(), "{} does not exist", t.uri());
        if t.uri().is_dir_syntax() {
            assert!(p.is_dir(), "{}", t.uri());
        }
        if p.is_absolute() && t.uri().path().starts_with('/') {
            assert!(
                m.fs.mounts.iter().any(|mt| mt.kind == MountType::Chroot
                    && Path::new(mt.uri.as_ref().unwrap().path()) != Path::new("app")
                    && p.starts_with(mt.uri.as_ref().unwrap().path())),
                "{} is under no mount",
                t.uri()
            );
        }
    }

    // The interpreter, its resolved file, libc and the loader are trusted.
    for p in [Path::new(PY), real.as_path()] {
        assert!(
            trusts(&m, d.path(), p),
            "{} not trusted:\n{text}",
            p.display()
        );
    }
    assert!(py.stdlib.join("os.py").exists() && trusts(&m, d.path(), &py.stdlib.join("os.py")));
    // The locale LANG names, when the host has it; not the build-only config-3.x directory.
    if Path::new("/usr/lib/locale/C.utf8").is_dir() {
        assert!(
            trusts(&m, d.path(), Path::new("/usr/lib/locale/C.utf8/LC_CTYPE")),
            "{text}"
        );
    }
    assert!(!uris(&m).iter().any(|u| u.contains("/config-3")), "{text}");
    let libc = got
        .libraries
        .iter()
        .find(|l| l.file_name().is_some_and(|n| n == "libc.so.6"))
        .expect("libc.so.6 among the libraries");
    let loader = got
        .libraries
        .iter()
        .find(|l| l.to_string_lossy().contains("ld-linux"))
        .expect("the dynamic loader among the libraries");
    for lib in [libc, loader] {
        let canon = fs::canonicalize(lib).unwrap();
        assert!(
            trusts(&m, d.path(), &canon),
            "{} not trusted",
            canon.display()
        );
    }
    // The loader as the kernel names it, in the view (merged /usr: /lib64 → /usr/lib64).
    if fs::read_link("/lib64").is_ok_and(|t| t == Path::new("usr/lib64")) {
        assert!(
            trusts(&m, d.path(), Path::new("/usr/lib64/ld-linux-x86-64.so.2")),
            "{text}"
        );
    }
    // Extension modules' libraries: _ssl needs libssl.
    assert!(
        got.libraries
            .iter()
            .any(|l| l.to_string_lossy().contains("libssl")),
        "{:?}",
        got.libraries
    );
    // Without site-packages, Debian's dist-packages is not trusted.
    assert!(!trusts(
        &m,
        d.path(),
        Path::new("/usr/lib/python3/dist-packages/")
    ));
    eprintln!(
        "stdlib manifest: {} trusted entries, {} libraries, {} skipped, {} unresolved, {} bytes of TOML",
        m.sgx.trusted_files.len(),
        got.libraries.len(),
        got.skipped.len(),
        got.unresolved.len(),
        text.len()
    );
    for s in &got.skipped {
        eprintln!("  skipped {} ({:?})", s.path.display(), s.reason);
    }
    for (f, n) in &got.unresolved {
        eprintln!("  unresolved {n} needed by {}", f.display());
    }

    // Signing it hashes the stdlib.
    let path = d.path().join("python.toml");
    fs::write(&path, &text).unwrap();
    let out = ward_manifest::signed_name(&path);
    let key = SignerKey::generate();
    let t0 = Instant::now();
    let (signed, stats) =
        ward_manifest::sign_to_file(&key, &path, &out, Sha256([7; 32]), SignOptions::default())
            .unwrap_or_else(|e| panic!("signing: {e}"));
    let took = t0.elapsed();
    eprintln!(
        "sign_to_file (stdlib manifest): {} files, {} bytes ({:.1} MiB) hashed in {:.2?}",
        stats.files,
        stats.bytes,
        stats.bytes as f64 / (1 << 20) as f64,
        took
    );
    assert!(stats.files > 100);
    assert!(signed
        .manifest
        .sgx
        .trusted_files
        .iter()
        .all(|t| matches!(t, TrustedFile::Hashed(_) | TrustedFile::Tree(_))));
    // Directories are signed as trees, in the sidecar beside the output.
    assert!(signed.manifest.sgx.trusted_trees.is_some());
    signed.verify(&Sha256([7; 32])).unwrap();
}

#[test]
fn site_packages_are_covered_when_asked() {
    let Some(py) = system_python() else { return };
    let d = tempfile::tempdir().unwrap();
    let script = project(d.path());
    let mut opts = PythonOptions::new(&script);
    opts.include_site_packages = true;
    let (got, text) = generate(&opts, &py);
    Manifest::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let dist = Path::new("/usr/lib/python3/dist-packages");
    if !py.site_packages.iter().any(|p| p == dist) {
        eprintln!("skipped: {dist:?} is not among {:?}", py.site_packages);
        return;
    }
    // The directory itself, or (if it holds an escaping link) what is in it.
    let m = &got.manifest;
    let any = fs::read_dir(dist)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.is_file() && !p.is_symlink());
    assert!(
        uris(m)
            .iter()
            .any(|u| Path::new(u.trim_end_matches('/')).starts_with(dist)),
        "{text}"
    );
    if let Some(f) = any {
        assert!(trusts(m, d.path(), &f), "{} not trusted", f.display());
    }
    // Absolute URIs when no manifest directory is given.
    assert!(uris(m).iter().all(|u| u.starts_with('/')));
}

#[test]
fn a_venv_is_recognised_and_its_site_packages_included() {
    if !Path::new(PY).exists() {
        eprintln!("skipped: {PY} is absent");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let venv = d.path().join("venv");
    let st = Command::new(PY)
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    if !st.success() {
        eprintln!("skipped: `{PY} -m venv` failed ({st}); is python3-venv installed?");
        return;
    }
    let pkg = venv.join("lib").join(format!(
        "python{}",
        String::from_utf8(
            Command::new(PY)
                .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
                .output()
                .unwrap()
                .stdout
        )
        .unwrap()
        .trim()
    ));
    let site = pkg.join("site-packages");
    fs::write(site.join("mylib.py"), "Y = 2\n").unwrap();
    let py = python::inspect(&venv.join("bin/python3")).unwrap();
    assert!(py.is_venv(), "{py:?}");
    assert_eq!(py.prefix, venv);
    assert_eq!(py.base_prefix, Path::new("/usr"));
    assert!(py.site_packages.contains(&site), "{py:?}");

    let script = project(d.path());
    let mut opts = PythonOptions::new(&script);
    opts.include_site_packages = true;
    opts.manifest_dir = Some(d.path().to_owned());
    let (got, text) = generate(&opts, &py);
    let m = Manifest::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // The venv's python is argv[0] (so pyvenv.cfg is found), the base ELF file the entrypoint;
    // the venv is mounted at its own path.
    let entry = venv.join("bin/python3");
    assert_eq!(m.loader.argv[0], entry.to_str().unwrap());
    assert_eq!(
        Path::new(m.libos.as_ref().unwrap().entrypoint.as_str()),
        fs::canonicalize(PY).unwrap()
    );
    assert!(
        m.fs.mounts
            .iter()
            .any(|mt| mt.path.as_str() == venv.to_str().unwrap()),
        "{text}"
    );
    for p in [
        entry.as_path(),
        &venv.join("pyvenv.cfg"),
        &site.join("mylib.py"),
    ] {
        assert!(
            trusts(&got.manifest, d.path(), p),
            "{} not trusted:\n{text}",
            p.display()
        );
    }
    // The base interpreter's file and stdlib.
    assert!(trusts(&m, d.path(), &fs::canonicalize(PY).unwrap()));
    assert!(trusts(&m, d.path(), &py.stdlib.join("os.py")));
    // And it runs, importing from the venv, in a root holding only the trusted files.
    fs::write(&script, "import sys, mylib\nprint(sys.prefix, mylib.Y)\n").unwrap();
    if let Some((stdout, stderr)) = run_in_trusted_root(&m, d.path()) {
        assert_eq!(stdout.trim(), format!("{} 2", venv.display()), "{stderr}");
    }
}

#[test]
fn encrypted_mounts_parse_and_land_in_the_manifest() {
    let Some(py) = system_python() else { return };
    let e: EncryptedMount = "/data=file:enc,key=wrap".parse().unwrap();
    assert_eq!(e.path.as_str(), "/data");
    assert_eq!(e.key_name.as_deref(), Some("wrap"));
    let bad = "data".parse::<EncryptedMount>().unwrap_err();
    assert!(bad.to_string().contains("PATH=file:"), "{bad}");
    let d = tempfile::tempdir().unwrap();
    let script = project(d.path());
    let mut opts = PythonOptions::new(&script);
    opts.encrypted.push("/data=file:enc".parse().unwrap());
    opts.encrypted
        .push("/models=file:models,key=model_key".parse().unwrap());
    let provision = python::provision_for(
        &opts.encrypted,
        vec!["localhost:4433".into()],
        Some(Path::new("ca.pem")),
        "wrap_key",
    )
    .unwrap();
    // One secret per key: the default key is the server's `wrap_key`, another under its name.
    let secrets: Vec<_> = provision
        .secrets
        .iter()
        .map(|b| (b.name.as_str(), b.key_name.as_deref()))
        .collect();
    assert_eq!(
        secrets,
        [
            ("wrap_key", Some("default")),
            ("model_key", Some("model_key"))
        ]
    );
    assert_eq!(
        provision.ca_chain,
        Some(TrustedFile::Uri(FileUri::from_path("ca.pem").unwrap()))
    );
    // No server to fetch from: refused, saying why.
    let none = python::provision_for(
        &opts.encrypted,
        vec![],
        Some(Path::new("ca.pem")),
        "wrap_key",
    );
    assert!(matches!(none, Err(TemplateError::Option(_))), "{none:?}");
    opts.provision = Some(provision);
    let (_, text) = generate(&opts, &py);
    let m = Manifest::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(m
        .fs
        .mounts
        .iter()
        .any(|mt| mt.kind == MountType::Encrypted && mt.path.as_str() == "/data"));
}

#[test]
fn a_missing_interpreter_is_a_typed_error_naming_it() {
    let err = python::inspect(Path::new("/nonexistent/python3")).unwrap_err();
    assert!(
        matches!(&err, TemplateError::InterpreterMissing { path } if path == Path::new("/nonexistent/python3")),
        "{err:?}"
    );
    assert!(err.to_string().contains("/nonexistent/python3"), "{err}");
    // Something that runs but is not Python.
    let err = python::inspect(Path::new("/bin/true")).unwrap_err();
    assert!(
        matches!(&err, TemplateError::NotJson { command, .. } if command.contains("/bin/true")),
        "{err:?}"
    );
    // Python 2 (a pyenv one, if this machine has it).
    let py2 = Path::new("/root/.pyenv/versions/2.7.18/bin/python2.7");
    if py2.exists() {
        let err = python::inspect(py2).unwrap_err();
        assert!(
            matches!(&err, TemplateError::NotPython3 { version, .. } if version.starts_with("[2")),
            "{err:?}"
        );
        assert!(err.to_string().contains("python2.7"), "{err}");
    } else {
        eprintln!("skipped the Python 2 case: no {}", py2.display());
    }
    // A missing script.
    if let Some(py) = system_python() {
        let err = python::manifest(&py, &PythonOptions::new("/nonexistent/s.py")).unwrap_err();
        assert!(matches!(err, TemplateError::Script { .. }), "{err:?}");
    }
}

#[test]
fn another_prefix_gets_its_own_mount() {
    // A pyenv (or any non-/usr) installation, if this machine has one.
    let Some(pyenv) = fs::read_dir("/root/.pyenv/versions")
        .ok()
        .and_then(|mut r| {
            r.find_map(|e| {
                let p = e.ok()?.path();
                let v3 = p.file_name()?.to_str()?.starts_with("3.");
                Some(p.join("bin/python3")).filter(|p| v3 && p.exists())
            })
        })
    else {
        eprintln!("skipped: no /root/.pyenv/versions/*/bin/python3");
        return;
    };
    let py = python::inspect(&pyenv).unwrap();
    let d = tempfile::tempdir().unwrap();
    let script = project(d.path());
    let (got, text) = generate(&PythonOptions::new(&script), &py);
    let m = Manifest::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let prefix = fs::canonicalize(&py.prefix).unwrap();
    assert!(
        m.fs.mounts
            .iter()
            .any(|mt| Path::new(mt.path.as_str()) == py.prefix
                || Path::new(mt.path.as_str()) == prefix),
        "{text}"
    );
    assert!(trusts(&m, d.path(), &py.resolved), "{text}");
    assert!(trusts(&m, d.path(), &py.stdlib.join("os.py")), "{text}");
    fs::write(
        &script,
        "import sys, json, ssl, sqlite3, ctypes, helper\nprint(sys.prefix)\n",
    )
    .unwrap();
    if let Some((stdout, stderr)) = run_in_trusted_root(&m, d.path()) {
        assert_eq!(Path::new(stdout.trim()), py.prefix, "{stderr}");
    }
    eprintln!(
        "pyenv manifest: {} trusted entries, {} unresolved",
        m.sgx.trusted_files.len(),
        got.unresolved.len()
    );
}

/// Copies every trusted file (as the signer expands them) to where the view shows it, adds the
/// merged-/usr links the runtime adds, and runs the script there with `chroot`: what the manifest
/// forgot, the program cannot find. (The copies follow symlinks, as the runtime's view does.)
#[test]
fn the_script_runs_in_a_root_holding_only_the_trusted_files() {
    let Some(py) = system_python() else { return };
    let d = tempfile::tempdir().unwrap();
    let app = d.path().join("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("helper.py"), "X = 'helper'\n").unwrap();
    let script = app.join("script.py");
    fs::write(
        &script,
        "import json, ssl, sqlite3, decimal, ctypes, hashlib, lzma, bz2, zlib, uuid, \
         locale, sys, helper\n\
         print(json.dumps([helper.X, sys.executable, sys.prefix, locale.getpreferredencoding(), \
         ssl.OPENSSL_VERSION.split()[0], hashlib.sha256(b'').hexdigest()[:8]]))\n",
    )
    .unwrap();
    let mut opts = PythonOptions::new(&script);
    opts.manifest_dir = Some(d.path().to_owned());
    let (got, _) = generate(&opts, &py);
    let (stdout, stderr) = match run_in_trusted_root(&got.manifest, d.path()) {
        Some(r) => r,
        None => return,
    };
    eprintln!("ran in the trusted-files root: {stdout}{stderr}");
    assert!(stdout.contains("\"helper\""), "{stdout}");
    assert!(stdout.contains("UTF-8"), "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// Runs `m`'s argv in a root holding only its trusted files (see the test above); `None` (with
/// the reason printed) when this machine cannot (not root, no chroot).
fn run_in_trusted_root(m: &Manifest, base: &Path) -> Option<(String, String)> {
    let chroot = Path::new("/usr/sbin/chroot");
    let root_user = fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !chroot.exists() || !root_user {
        eprintln!("skipped: needs root and {}", chroot.display());
        return None;
    }
    let hashed = m.hash_trusted_files(base, &mut |_, _, _| {}).unwrap();

    let view = base.join("root");
    // The longest chroot mount whose host directory holds a host path gives its place in the view.
    let place = |host: &Path| {
        let (mount, rel) =
            m.fs.mounts
                .iter()
                .filter(|mt| mt.kind == MountType::Chroot)
                .filter_map(|mt| {
                    let h = ward_manifest::resolve(base, mt.uri.as_ref().unwrap());
                    host.strip_prefix(&h).ok().map(|r| (mt, r.to_owned()))
                })
                .max_by_key(|(mt, _)| mt.path.as_str().len())
                .unwrap_or_else(|| panic!("{} is under no mount", host.display()));
        view.join(mount.path.as_str().trim_start_matches('/'))
            .join(rel)
    };
    for t in &hashed.manifest.sgx.trusted_files {
        if let TrustedFile::Hashed(h) = t {
            let host = ward_manifest::resolve(base, &h.uri);
            let dest = place(&host);
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            fs::copy(&host, &dest).unwrap();
        }
    }
    // Trusted trees: exactly what was signed (files, directories, symlinks).
    for tree in hashed.trees.iter() {
        let root = ward_manifest::resolve(base, tree.uri());
        for (rel, entry) in tree.entries() {
            let host = root.join(rel);
            let dest = place(&host);
            match entry {
                TreeEntry::Dir { .. } => fs::create_dir_all(&dest).unwrap(),
                TreeEntry::File(_) => {
                    fs::copy(&host, &dest).unwrap();
                }
                TreeEntry::Symlink { target, .. } => {
                    let _ = fs::remove_file(&dest);
                    std::os::unix::fs::symlink(target, &dest).unwrap();
                }
            }
        }
    }
    for n in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        if fs::read_link(Path::new("/").join(n)).is_ok_and(|t| t == Path::new("usr").join(n)) {
            std::os::unix::fs::symlink(format!("usr/{n}"), view.join(n)).unwrap();
        }
    }
    fs::create_dir_all(view.join("tmp")).unwrap();
    let mut cmd = Command::new(chroot);
    cmd.env_clear().arg(&view).args(&m.loader.argv);
    for (k, v) in &m.loader.env {
        cmd.env(k.as_str(), v.fixed().unwrap());
    }
    // chroot runs the argv[0] it is given; the manifest's entrypoint is the same file.
    let out = cmd.current_dir(&view).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    Some((stdout, stderr))
}

#[test]
fn an_encrypted_mount_may_name_its_key_owners_server_and_ca() {
    let model: EncryptedMount =
        "/model=file:model,key=model,server=m1.example:1,server=m2.example:2,ca=model-ca.pem"
            .parse()
            .unwrap();
    assert_eq!(model.key_name.as_deref(), Some("model"));
    assert_eq!(model.uri.as_str(), "file:model");
    assert_eq!(model.servers, ["m1.example:1", "m2.example:2"]);
    assert_eq!(model.ca.as_deref(), Some(Path::new("model-ca.pem")));
    let built = EncryptedMount::new(
        "/model".to_string().try_into().unwrap(),
        FileUri::from_path("model").unwrap(),
        Some("model".into()),
    )
    .with_owner(
        vec!["m1.example:1".into(), "m2.example:2".into()],
        "model-ca.pem".into(),
    );
    assert_eq!(built, model);
    // Half an owner, and an option given twice, are refused.
    for bad in [
        "/model=file:model,server=m1.example:1",
        "/model=file:model,ca=model-ca.pem",
        "/model=file:model,key=a,key=b",
        "/model=file:model,server=",
    ] {
        let e = bad.parse::<EncryptedMount>().unwrap_err();
        assert!(matches!(e, TemplateError::Option(_)), "{bad}: {e:?}");
    }
    // A comma in the directory name stays part of it.
    let odd: EncryptedMount = "/d=file:a,b,key=k".parse().unwrap();
    assert_eq!(odd.uri.as_str(), "file:a,b");

    // The model owner's key from her server; the data owner's from the manifest's own.
    let data: EncryptedMount = "/data=file:data".parse().unwrap();
    let mounts = [model.clone(), data.clone()];
    let pr = python::provision_for(
        &mounts,
        vec!["d.example:3".into()],
        Some(Path::new("data-ca.pem")),
        "wrap_key",
    )
    .unwrap();
    assert_eq!(pr.servers, ["d.example:3"]);
    let owners = pr.owners();
    assert_eq!(owners.len(), 2);
    let model_secret = &pr.secrets[owners[1].secrets[0]];
    assert_eq!(model_secret.name, "model");
    assert_eq!(
        model_secret.servers.as_deref(),
        Some(&["m1.example:1".to_string(), "m2.example:2".to_string()][..])
    );
    assert_eq!(
        model_secret.ca_chain,
        Some(TrustedFile::Uri(
            FileUri::from_path("model-ca.pem").unwrap()
        ))
    );
    // Every mount naming its owner: no table-level servers needed (nor written).
    let only_own =
        python::provision_for(std::slice::from_ref(&model), vec![], None, "wrap_key").unwrap();
    assert!(only_own.servers.is_empty() && only_own.ca_chain.is_none());
    // A mount without an owner and no --server: refused, saying why.
    let e = python::provision_for(&mounts, vec![], None, "wrap_key").unwrap_err();
    assert!(e.to_string().contains("--server"), "{e}");
    // One key, two owners: refused.
    let other = "/more=file:more,key=model,server=x.example:9,ca=x.pem"
        .parse::<EncryptedMount>()
        .unwrap();
    let e = python::provision_for(&[model, other], vec![], None, "wrap_key").unwrap_err();
    assert!(e.to_string().contains("two different owners"), "{e}");

    // And the manifest written with it parses, both owners intact.
    let Some(py) = system_python() else { return };
    let d = tempfile::tempdir().unwrap();
    let script = project(d.path());
    let mut opts = PythonOptions::new(&script);
    opts.encrypted = mounts.to_vec();
    opts.provision = Some(pr);
    let (_, text) = generate(&opts, &py);
    let m = Manifest::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(m.provision.as_ref().unwrap().owners().len(), 2);
}
