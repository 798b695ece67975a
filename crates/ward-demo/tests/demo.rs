//! The main job, in-process: the shipped cat photo comes back as a cat, and the result on disk
//! is a protected file that only the wrap key opens.

use ward_demo::*;

struct Collect(Vec<String>);

impl Narrator for Collect {
    fn say(&mut self, text: &str) {
        self.0.push(text.to_owned());
    }
}

#[test]
fn the_demo_classifies_the_shipped_cat_and_the_result_is_protected() {
    let d = tempfile::tempdir().unwrap();
    let keep = d.path().join("kept");
    let mut options = DemoOptions::new();
    options.json = true;
    options.keep = Some(keep.clone());
    let mut narration = Collect(Vec::new());
    let outcome = run(&options, &mut narration).unwrap();

    let top: serde_json::Value = serde_json::from_str(&outcome.result).unwrap();
    let top = top.as_array().unwrap();
    assert_eq!(top.len(), 5);
    let first = top[0]["index"].as_u64().unwrap();
    // models/SOURCE.txt: 282 tiger cat, 285 Egyptian cat (281–287 are the cats).
    assert!((281..=287).contains(&first), "top-1 {first}: {top:?}");
    assert!(
        outcome.audit.iter().any(|l| l.contains("\"granted\"")),
        "{:?}",
        outcome.audit
    );
    let text = narration.0.join("\n");
    assert!(text.contains("ward run classify.signed.toml"), "{text}");

    // The result on disk is a protected file: it opens with the wrap key, bound to its path, and
    // holds none of the plaintext.
    let cipher_path = keep.join("encrypted/result.txt");
    let cipher = std::fs::read(&cipher_path).unwrap();
    let label = top[0]["label"].as_str().unwrap();
    assert!(!String::from_utf8_lossy(&cipher).contains(label));
    let key = ward_pf::WrapKey::load(&keep.join("provision/secrets/wrap_key")).unwrap();
    let info = ward_pf::info(&std::fs::File::open(&cipher_path).unwrap(), &key, None).unwrap();
    assert_eq!(info.bound_path, "encrypted/result.txt");
    let mut plain = Vec::new();
    ward_pf::decrypt(
        &std::fs::File::open(&cipher_path).unwrap(),
        &key,
        Some("encrypted/result.txt"),
        &mut plain,
        Default::default(),
    )
    .unwrap();
    assert_eq!(plain, outcome.result.as_bytes());
}

#[test]
fn a_missing_model_says_where_it_looked() {
    let d = tempfile::tempdir().unwrap();
    let mut options = DemoOptions::new();
    options.model_dir = Some(d.path().join("nowhere"));
    let e = run(&options, &mut Quiet).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, DemoError::ModelNotFound { .. }), "{e:?}");
    assert!(
        text.contains("nowhere") && text.contains("--model-dir"),
        "{text}"
    );
    let all = model_dir_candidates(None);
    assert!(all.last().unwrap().ends_with("models/efficientnet-lite0"));
}
