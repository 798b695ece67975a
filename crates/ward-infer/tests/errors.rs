//! Every bad input gives its own typed error, and none panics.

mod common;

use common::*;
use prost::Message;
use ward_infer::{Classifier, Error, Layout, ModelSpec, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE};

fn load(model: &[u8]) -> Result<Classifier, Error> {
    Classifier::load(model, &labels(), &ModelSpec::default())
}

fn load_err(model: &[u8], labels: &str, spec: &ModelSpec) -> Error {
    Classifier::load(model, labels, spec).expect_err("load should fail")
}

fn classify_err(image: &[u8]) -> Error {
    classifier()
        .classify(image, 5)
        .expect_err("classify should fail")
}

// ---- images ----

#[test]
fn garbage_and_empty_images_are_not_images() {
    assert!(matches!(classify_err(b""), Error::NotAnImage));
    assert!(matches!(
        classify_err(b"this is not an image at all"),
        Error::NotAnImage
    ));
    assert!(matches!(classify_err(model_bytes()), Error::NotAnImage));
}

#[test]
fn known_but_unsupported_formats_are_named() {
    // A BMP header (the crate is built without BMP).
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0; 60]);
    match classify_err(&bmp) {
        Error::UnsupportedImageFormat(f) => assert_eq!(f, "BMP"),
        other => panic!("{other:?}"),
    }
    // TIFF, little-endian
    let tiff = b"II*\0\x08\0\0\0\0\0\0\0";
    assert!(matches!(
        classify_err(tiff),
        Error::UnsupportedImageFormat(_)
    ));
}

#[test]
fn truncated_and_corrupt_images_fail_to_decode() {
    let png = chelsea();
    for cut in [8, 40, png.len() / 2, png.len() - 20] {
        match classify_err(&png[..cut]) {
            Error::ImageDecode(_) => {}
            other => panic!("PNG cut at {cut}: {other:?}"),
        }
    }
    let jpeg = jpeg(&image::load_from_memory(&png).unwrap(), 90);
    assert!(matches!(
        classify_err(&jpeg[..jpeg.len() / 3]),
        Error::ImageDecode(_)
    ));
    // Flip bytes in the middle of the pixel data (IDAT): the CRC and zlib checks catch it.
    let mut corrupt = png.clone();
    let middle = png.len() / 2;
    for b in &mut corrupt[middle..middle + 100] {
        *b ^= 0x5a;
    }
    assert!(matches!(classify_err(&corrupt), Error::ImageDecode(_)));
}

#[test]
fn small_and_zero_sized_images_are_too_small() {
    match classify_err(&png(8, 8)) {
        Error::ImageTooSmall {
            width: 8,
            height: 8,
            min,
        } => assert_eq!(min, MIN_IMAGE_SIDE),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        classify_err(&png(300, 15)),
        Error::ImageTooSmall { .. }
    ));
    assert!(
        classifier().classify(&png(16, 16), 1).is_ok(),
        "the minimum itself is accepted"
    );
    // A GIF whose screen and only frame are 0 x 0.
    let gif = [
        b"GIF89a".as_slice(),
        &[0, 0, 0, 0, 0x80, 0, 0], // screen 0x0, 2-colour global palette:
        &[0, 0, 0, 255, 255, 255], // black, white
        &[0x2c, 0, 0, 0, 0, 0, 0, 0, 0, 0], // image descriptor: 0x0 at (0, 0)
        &[2, 1, 0x2c, 0],          // LZW: clear, end
        &[0x3b],                   // trailer
    ]
    .concat();
    assert!(matches!(
        classify_err(&gif),
        Error::ImageTooSmall {
            width: 0,
            height: 0,
            ..
        }
    ));
}

#[test]
fn strips_are_too_elongated() {
    match classify_err(&png(16, 161)) {
        Error::ImageTooElongated {
            width: 16,
            height: 161,
            max_ratio: 10,
        } => {}
        other => panic!("{other:?}"),
    }
    assert!(
        classifier().classify(&png(16, 160), 1).is_ok(),
        "1:10 is accepted"
    );
}

#[test]
fn huge_images_are_refused_before_decoding() {
    let wide = png(MAX_IMAGE_SIDE + 1, 1);
    assert!(
        matches!(classify_err(&wide), Error::ImageTooLarge(_)),
        "{:?}",
        classify_err(&wide)
    );
}

#[test]
fn top_k_zero_is_refused() {
    assert!(matches!(
        classifier().classify(&chelsea(), 0),
        Err(Error::InvalidTopK)
    ));
    let input = classifier().preprocess(&chelsea()).unwrap();
    assert!(matches!(
        classifier().predict(&input, 0),
        Err(Error::InvalidTopK)
    ));
}

// ---- models ----

#[test]
fn empty_garbage_and_truncated_models_are_not_onnx() {
    assert!(matches!(load(b""), Err(Error::NotOnnx { .. })));
    assert!(matches!(
        load(b"not an onnx model\n"),
        Err(Error::NotOnnx { .. })
    ));
    assert!(matches!(load(&chelsea()), Err(Error::NotOnnx { .. })));
    let shipped = model_bytes();
    for cut in [1, 100, shipped.len() / 2, shipped.len() - 1] {
        match load(&shipped[..cut]) {
            Err(Error::NotOnnx { .. }) => {}
            other => panic!("model cut at {cut}: {other:?}"),
        }
    }
    // Well-formed protobufs that are not models: a graph without nodes; no graph at all.
    let empty_graph = model(vec![], vec![], vec![]);
    match load(&empty_graph) {
        Err(Error::NotOnnx { reason, .. }) => assert!(reason.contains("no nodes"), "{reason}"),
        other => panic!("{other:?}"),
    }
    match load(&empty_graph[..2]) {
        Err(Error::NotOnnx { reason, .. }) => assert!(reason.contains("no graph"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unsupported_operators_are_model_errors() {
    let m = model(
        vec![value(
            "input",
            FLOAT,
            &[Some(1), Some(3), Some(224), Some(224)],
        )],
        vec![node("NoSuchOperator", &["input"], &["scores"], vec![])],
        vec![value("scores", FLOAT, &[Some(1), Some(3)])],
    );
    match load_err(
        &m,
        "a\nb\nc\n",
        &ModelSpec {
            input_name: None,
            ..ModelSpec::default()
        },
    ) {
        e @ Error::Model { .. } => {
            let msg = chain(&e);
            assert!(msg.contains("NoSuchOperator"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn weights_in_external_files_are_refused() {
    // The library reads nothing but the bytes it is given: a model whose weights live in another
    // file is refused, whatever that file is called.
    let mut m = tract_onnx::pb::ModelProto::decode(&*channel_mean_model_nchw()).unwrap();
    let graph = m.graph.as_mut().unwrap();
    graph.initializer.push(tract_onnx::pb::TensorProto {
        name: "bias".to_string(),
        dims: vec![1, 3],
        data_type: FLOAT,
        data_location: Some(tract_onnx::pb::tensor_proto::DataLocation::External as i32),
        external_data: vec![tract_onnx::pb::StringStringEntryProto {
            key: "location".to_string(),
            value: "Cargo.toml".to_string(),
        }],
        ..Default::default()
    });
    graph.node[0].output = vec!["mean".to_string()];
    graph
        .node
        .push(node("Add", &["mean", "bias"], &["scores"], vec![]));
    let spec = ModelSpec {
        mean: [0.0; 3],
        std: [1.0; 3],
        ..ModelSpec::default()
    };
    match load_err(&m.encode_to_vec(), "a\nb\nc\n", &spec) {
        e @ Error::Model { .. } => {
            let msg = chain(&e);
            assert!(msg.contains("external data"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn input_shape_must_match_the_spec() {
    let spec_299 = ModelSpec {
        width: 299,
        height: 299,
        resize_shorter: 342,
        ..ModelSpec::default()
    };
    match load_err(model_bytes(), &labels(), &spec_299) {
        Error::InputShape { expected, found } => {
            assert_eq!(expected, "f32 [1, 3, 299, 299] (nchw)");
            assert_eq!(found, "f32 [1, 3, 224, 224]");
        }
        other => panic!("{other:?}"),
    }
    let nhwc = ModelSpec {
        layout: Layout::Nhwc,
        ..ModelSpec::default()
    };
    assert!(matches!(
        load_err(model_bytes(), &labels(), &nhwc),
        Error::InputShape { .. }
    ));
    // An integer input
    let m = model(
        vec![value(
            "input",
            INT64,
            &[Some(1), Some(3), Some(224), Some(224)],
        )],
        vec![node("Identity", &["input"], &["scores"], vec![])],
        vec![value(
            "scores",
            INT64,
            &[Some(1), Some(3), Some(224), Some(224)],
        )],
    );
    match load_err(&m, "a\n", &ModelSpec::default()) {
        Error::InputShape { found, .. } => assert_eq!(found, "i64 [1, 3, 224, 224]"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn input_name_and_count_must_match() {
    let spec = ModelSpec {
        input_name: Some("image".to_string()),
        ..ModelSpec::default()
    };
    match load_err(model_bytes(), &labels(), &spec) {
        Error::InputName { expected, found } => {
            assert_eq!((expected, found), ("image".into(), "input".into()))
        }
        other => panic!("{other:?}"),
    }
    let two_inputs = model(
        vec![
            value("input", FLOAT, &[Some(1), Some(3), Some(224), Some(224)]),
            value("other", FLOAT, &[Some(1), Some(3), Some(224), Some(224)]),
        ],
        vec![node("Add", &["input", "other"], &["scores"], vec![])],
        vec![value(
            "scores",
            FLOAT,
            &[Some(1), Some(3), Some(224), Some(224)],
        )],
    );
    assert!(matches!(
        load_err(&two_inputs, "a\n", &ModelSpec::default()),
        Error::InputCount { found: 2 }
    ));
}

#[test]
fn outputs_must_be_class_scores() {
    let identity = model(
        vec![value(
            "input",
            FLOAT,
            &[Some(1), Some(3), Some(224), Some(224)],
        )],
        vec![node("Identity", &["input"], &["scores"], vec![])],
        vec![value(
            "scores",
            FLOAT,
            &[Some(1), Some(3), Some(224), Some(224)],
        )],
    );
    assert!(matches!(
        load_err(&identity, "a\n", &ModelSpec::default()),
        Error::Output { .. }
    ));
}

#[test]
fn label_count_must_match_the_output_size() {
    let short: String = labels()
        .lines()
        .take(999)
        .map(|l| format!("{l}\n"))
        .collect();
    let err = load_err(model_bytes(), &short, &ModelSpec::default());
    assert!(
        matches!(
            err,
            Error::LabelCount {
                labels: 999,
                classes: 1000
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("999") && msg.contains("1000"), "{msg}");
    // The tiny three-class model with two labels
    let spec = ModelSpec {
        mean: [0.0; 3],
        std: [1.0; 3],
        ..ModelSpec::default()
    };
    assert!(matches!(
        load_err(&channel_mean_model_nchw(), "a\nb\n", &spec),
        Error::LabelCount {
            labels: 2,
            classes: 3
        }
    ));
}

#[test]
fn blank_labels_are_refused() {
    assert!(matches!(
        load_err(model_bytes(), "", &ModelSpec::default()),
        Error::Labels(_)
    ));
    let mut gap = labels();
    gap.insert(0, '\n');
    match load_err(model_bytes(), &gap, &ModelSpec::default()) {
        Error::Labels(m) => assert!(m.contains("line 1"), "{m}"),
        other => panic!("{other:?}"),
    }
}

// ---- specs ----

const GOOD: &str =
    "width = 224\nheight = 224\nresize_shorter = 256\nmean = [0.498, 0.498, 0.498]\n\
                    std = [0.502, 0.502, 0.502]\n";

fn spec_err(text: &str) -> Error {
    ModelSpec::from_toml(text).expect_err("spec should be refused")
}

/// Where a spec error is, and the key it names.
fn spec_at(e: &Error) -> (Option<usize>, Option<usize>, Option<&'static str>, &str) {
    match e {
        Error::Spec {
            line,
            column,
            key,
            problem,
        } => (*line, *column, *key, problem),
        other => panic!("{other:?}"),
    }
}

#[test]
fn spec_unknown_missing_and_mistyped_keys_are_placed() {
    // An unknown key: its line, but not its name (text of the file).
    let e = spec_err(&format!("{GOOD}colour = \"rgb\"\n"));
    let (line, column, key, problem) = spec_at(&e);
    assert_eq!((line, column, key), (Some(6), Some(1), None), "{e}");
    assert!(
        problem.contains("unknown key") && problem.contains("channel_order"),
        "{e}"
    );
    assert!(!e.to_string().contains("colour"), "{e}");

    let e = spec_err(&GOOD.replace("height = 224\n", ""));
    assert_eq!(spec_at(&e).2, Some("height"), "{e}");
    assert!(
        e.to_string()
            .contains("key `height`: a required key is missing"),
        "{e}"
    );

    let e = spec_err(&GOOD.replace("width = 224", "width = \"224\""));
    assert_eq!(spec_at(&e).0, Some(1), "{e}");
    assert_eq!(spec_at(&e).2, Some("width"), "{e}");
    assert!(spec_at(&e).3.starts_with("wrong type; expected"), "{e}");

    let e = spec_err(&format!("{GOOD}layout = \"chw\"\n"));
    assert_eq!(spec_at(&e).2, Some("layout"), "{e}");
    assert!(
        e.to_string().contains("nchw") && !e.to_string().contains("\"chw\""),
        "{e}"
    );

    let e = spec_err(&GOOD.replace("mean = [0.498, 0.498, 0.498]", "mean = [0.5, 0.5]"));
    assert_eq!(spec_at(&e).2, Some("mean"), "{e}");

    let e = spec_err("width = ");
    assert_eq!(spec_at(&e).0, Some(1), "{e}");
    assert_eq!(spec_at(&e).2, Some("width"), "{e}");
}

/// A spec may be a protected file: its errors are printed on the host, so they place the
/// problem without quoting the file, which TOML's own messages do (the line, the value, an
/// unknown key).
#[test]
fn spec_errors_quote_nothing_of_the_file() {
    let secret = "sk-live-9f8e7d6c5b4a";
    let cases = [
        // A value of the wrong type.
        (
            GOOD.replace("width = 224", &format!("width = \"{secret}\"")),
            1,
        ),
        // A syntax error on the line.
        (format!("{GOOD}height = 224 {secret}\n"), 6),
        // An unknown key, and one with a secret-looking value.
        (format!("{GOOD}{secret} = 1\n"), 6),
        (format!("{GOOD}notes = \"{secret}\"\n"), 6),
        // An unknown enum value.
        (format!("{GOOD}layout = \"{secret}\"\n"), 6),
        // A broken string.
        (format!("{GOOD}name = \"{secret}\n"), 6),
        // A key given twice.
        (format!("{GOOD}{secret} = 1\n{secret} = 2\n"), 7),
        // A value out of range after parsing.
        (GOOD.replace("width = 224", "width = 987654"), 0),
    ];
    for (text, want_line) in cases {
        let e = spec_err(&text);
        let shown = format!("{e} {e:?}");
        for leak in [secret, "sk-live", "987654", "notes"] {
            assert!(
                !shown.contains(leak),
                "{leak:?} quoted in {shown:?} for {text:?}"
            );
        }
        if want_line > 0 {
            assert_eq!(spec_at(&e).0, Some(want_line), "{e} for {text:?}");
            assert!(
                e.to_string()
                    .contains(&format!("line {want_line}, column ")),
                "{e}"
            );
        }
    }
}

#[test]
fn spec_values_out_of_range_are_named() {
    let key = |text: &str| match spec_err(text) {
        Error::SpecValue { key, .. } => key,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        key(&GOOD.replace("std = [0.502, 0.502, 0.502]", "std = [0.5, 0.0, 0.5]")),
        "std"
    );
    assert_eq!(
        key(&GOOD.replace("std = [0.502, 0.502, 0.502]", "std = [0.5, -1.0, 0.5]")),
        "std"
    );
    assert_eq!(
        key(&GOOD.replace("mean = [0.498, 0.498, 0.498]", "mean = [nan, 0.5, 0.5]")),
        "mean"
    );
    assert_eq!(key(&GOOD.replace("width = 224", "width = 0")), "width");
    assert_eq!(
        key(&GOOD.replace("height = 224", "height = 100000")),
        "height"
    );
    assert_eq!(
        key(&GOOD.replace("resize_shorter = 256", "resize_shorter = 200")),
        "resize_shorter"
    );
    assert_eq!(key(&format!("{GOOD}input_name = \"\"\n")), "input_name");
    // Load checks a spec built in code too.
    let bad = ModelSpec {
        resize_shorter: 100,
        ..ModelSpec::default()
    };
    assert!(matches!(
        load_err(model_bytes(), &labels(), &bad),
        Error::SpecValue {
            key: "resize_shorter",
            ..
        }
    ));
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
