//! Shared by the test files: the shipped assets, one classifier per test binary, image encoders
//! and tiny hand-made ONNX models.
#![allow(dead_code)]

use prost::Message;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;
use tract_onnx::pb;
use ward_infer::{Classifier, ModelSpec};

pub(crate) fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

pub(crate) fn read(relative: &str) -> Vec<u8> {
    let path = models_dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) fn model_bytes() -> &'static [u8] {
    static MODEL: OnceLock<Vec<u8>> = OnceLock::new();
    MODEL.get_or_init(|| read("efficientnet-lite0/model.onnx"))
}

pub(crate) fn labels() -> String {
    String::from_utf8(read("efficientnet-lite0/labels.txt")).unwrap()
}

/// The shipped model, loaded once per test binary.
pub(crate) fn classifier() -> &'static Classifier {
    static CLASSIFIER: OnceLock<Classifier> = OnceLock::new();
    CLASSIFIER.get_or_init(|| {
        Classifier::load(model_bytes(), &labels(), &ModelSpec::default()).expect("shipped model")
    })
}

pub(crate) fn chelsea() -> Vec<u8> {
    read("images/chelsea.png")
}

pub(crate) fn coffee() -> Vec<u8> {
    read("images/coffee.png")
}

pub(crate) fn encode(image: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 128]));
    encode(&img.into(), image::ImageFormat::Png)
}

pub(crate) fn jpeg(image: &image::DynamicImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&image.to_rgb8())
        .unwrap();
    out
}

// ---- tiny ONNX models ----

pub(crate) const FLOAT: i32 = 1;
pub(crate) const INT64: i32 = 7;

/// A tensor value description; `None` dims are symbolic ("N").
pub(crate) fn value(name: &str, elem_type: i32, dims: &[Option<i64>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => Value::DimValue(*v),
                None => Value::DimParam("N".to_string()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn node(
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.to_string(),
        name: format!("{op}_0"),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

pub(crate) fn ints_attr(name: &str, ints: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

pub(crate) fn int_attr(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_string(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

/// An opset-13 model of `nodes` from `inputs` to `outputs`, serialised.
pub(crate) fn model(
    inputs: Vec<pb::ValueInfoProto>,
    nodes: Vec<pb::NodeProto>,
    outputs: Vec<pb::ValueInfoProto>,
) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "tiny".to_string(),
            node: nodes,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// `[N, 3, 224, 224]` → mean over H and W → `[N, 3]`: a three-class "classifier" whose scores are
/// the mean normalised value of each input channel.
pub(crate) fn channel_mean_model_nchw() -> Vec<u8> {
    model(
        vec![value(
            "input",
            FLOAT,
            &[None, Some(3), Some(224), Some(224)],
        )],
        vec![node(
            "ReduceMean",
            &["input"],
            &["scores"],
            vec![ints_attr("axes", &[2, 3]), int_attr("keepdims", 0)],
        )],
        vec![value("scores", FLOAT, &[None, Some(3)])],
    )
}

/// The same for `[N, 224, 224, 3]`.
pub(crate) fn channel_mean_model_nhwc() -> Vec<u8> {
    model(
        vec![value(
            "input",
            FLOAT,
            &[None, Some(224), Some(224), Some(3)],
        )],
        vec![node(
            "ReduceMean",
            &["input"],
            &["scores"],
            vec![ints_attr("axes", &[1, 2]), int_attr("keepdims", 0)],
        )],
        vec![value("scores", FLOAT, &[None, Some(3)])],
    )
}
