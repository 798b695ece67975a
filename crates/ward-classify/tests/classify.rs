//! One argument type and one implementation: the manifest's argv and the CLI's flags parse the
//! same way, the registry refuses what the workload would refuse, and the shipped model
//! classifies the shipped photo as a cat.

use std::path::{Path, PathBuf};
use ward_classify::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn cause(e: &dyn std::error::Error) -> String {
    e.source().map(ToString::to_string).unwrap_or_default()
}

#[test]
fn the_shipped_manifests_pass_the_registry_check() {
    let dir = repo().join("examples/ppml");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let m = ward_manifest::Manifest::load(&path).unwrap();
            registry()
                .check(m.workload(), &m.loader.argv)
                .unwrap_or_else(|e| panic!("{}: {e}: {}", path.display(), cause(&e)));
            checked += 1;
        }
    }
    assert!(checked >= 1, "no manifest in {}", dir.display());
}

#[test]
fn unknown_builtins_and_bad_arguments_are_refused_naming_the_problem() {
    let r = registry();
    let m =
        ward_manifest::Manifest::from_toml("[loader]\nentrypoint = \"ward:clasify\"\nargv = []\n")
            .unwrap();
    let e = r.check(m.workload(), &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "entrypoint ward:clasify is not a built-in workload of this runtime; known: \
         ward:checksum, ward:classify"
    );

    let classify_manifest =
        ward_manifest::Manifest::from_toml("[loader]\nentrypoint = \"ward:classify\"\nargv = []\n")
            .unwrap();
    let classify = classify_manifest.workload();
    let base = ["--model", "/m", "--labels", "/l", "--image", "/i"];
    // A misspelt flag: clap's message with its suggestion, then the argument syntax.
    let mut bad = argv(&base);
    bad.extend(argv(&["--output", "/o", "--topp", "3"]));
    let e = r.check(classify, &bad).unwrap_err();
    assert_eq!(e.to_string(), "ward:classify");
    let c = cause(&e);
    assert!(
        c.starts_with("usage: unexpected argument '--topp' found"),
        "{c}"
    );
    assert!(
        c.contains("'--top'") && c.contains("(arguments: --model PATH"),
        "{c}"
    );
    // A bad value.
    let mut bad = argv(&base);
    bad.extend(argv(&["--output", "/o", "--top", "0"]));
    let c = cause(&r.check(classify, &bad).unwrap_err());
    assert!(
        c.contains("--top") && c.contains("must be at least 1"),
        "{c}"
    );
    // No output: fine for `ward classify`, not for the workload.
    assert!(ClassifyArgs::from_argv(base).unwrap().output.is_none());
    let c = cause(&r.check(classify, &argv(&base)).unwrap_err());
    assert!(c.starts_with("usage: --output is required"), "{c}");
    // No image at all.
    let c = cause(
        &r.check(
            classify,
            &argv(&["--model", "/m", "--labels", "/l", "-o", "/o"]),
        )
        .unwrap_err(),
    );
    assert!(c.contains("--image"), "{c}");
    // And a good one.
    let mut good = argv(&base);
    good.extend(argv(&[
        "-o",
        "/o",
        "--top",
        "3",
        "--json",
        "--threads",
        "2",
    ]));
    r.check(classify, &good).unwrap();
    let a = ClassifyArgs::from_argv(&good).unwrap();
    assert_eq!((a.top, a.json, a.threads), (3, true, 2));
    assert_eq!(a.output.as_deref(), Some(Path::new("/o")));
}

#[test]
fn plain_files_classify_the_shipped_cat() {
    let models = repo().join("models");
    let m = models.join("efficientnet-lite0");
    let args = ClassifyArgs::from_argv([
        "--model".into(),
        m.join("model.onnx").into_os_string(),
        "--labels".into(),
        m.join("labels.txt").into_os_string(),
        "--spec".into(),
        m.join("model.toml").into_os_string(),
        "--image-dir".into(),
        models.join("images").into_os_string(),
        "--top".into(),
        "2".into(),
    ])
    .unwrap();
    let results = run(&args, &PlainFiles).unwrap();
    let names: Vec<_> = results
        .iter()
        .map(|(p, _)| p.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["chelsea.png", "coffee.png"]);
    assert!(
        (282..=286).contains(&results[0].1[0].index),
        "{:?}",
        results[0]
    );
    assert_eq!(results[1].1[0].index, 967);
    assert_eq!(results[0].1.len(), 2);

    // A missing image names itself, and the cause is the OS error, once.
    let mut missing = args.clone();
    missing.image_dirs.clear();
    missing.images = vec![models.join("images/nope.png")];
    let e = run(&missing, &PlainFiles).unwrap_err();
    assert!(matches!(e, Error::Read { what: "image", .. }), "{e:?}");
    assert!(e.to_string().ends_with("images/nope.png"), "{e}");
    assert!(cause(&e).contains("No such file"), "{e:?}");
    // Not an image: ward-infer's error is the cause.
    let mut wrong = missing.clone();
    wrong.images = vec![m.join("labels.txt")];
    let e = run(&wrong, &PlainFiles).unwrap_err();
    assert!(matches!(e, Error::Classify { .. }), "{e:?}");
    assert!(cause(&e).contains("not an image"), "{e:?}");
}
