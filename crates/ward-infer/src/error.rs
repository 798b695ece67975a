//! The one error type of the crate.

/// Everything that can go wrong, each case with what a person needs to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model description (TOML) is not valid TOML, has an unknown key, lacks a required key
    /// or has a value of the wrong type. Says where and which key, but quotes nothing of the
    /// text: a spec may be a protected file, and the TOML parser's own messages show the
    /// offending line (and serde's the offending value).
    #[error("model spec{}: {problem}", spec_place(*.line, *.column, *.key))]
    Spec {
        /// 1-based line of the problem, when it has a place.
        line: Option<usize>,
        /// 1-based column (in characters) of the problem, when it has a place.
        column: Option<usize>,
        /// The key concerned, when it is one of the spec's keys (an unknown key is not named:
        /// it is text of the file).
        key: Option<&'static str>,
        /// What is wrong, in words of ward's and the TOML grammar's, never the file's.
        problem: String,
    },
    /// A model description value is out of range.
    #[error("model spec: `{key}` {reason}")]
    SpecValue {
        /// The offending key, as written in the TOML file.
        key: &'static str,
        /// What is wrong with it (without the value found: the spec may be protected).
        reason: String,
    },

    /// The model bytes are not an ONNX model: empty, not a protobuf, truncated, or a protobuf
    /// without a graph.
    #[error("not an ONNX model: {reason}")]
    NotOnnx {
        /// What is wrong.
        reason: String,
        /// tract's error, when tract found it.
        #[source]
        source: Option<Cause>,
    },
    /// The bytes are ONNX but tract could not turn them into a runnable plan (an operator it does
    /// not support, inconsistent shapes, weights in external files, ...).
    #[error("the ONNX model could not be prepared: {reason}")]
    Model {
        /// What failed.
        reason: String,
        /// tract's error, when tract found it.
        #[source]
        source: Option<Cause>,
    },
    /// The model does not have exactly one input.
    #[error("the model has {found} inputs; an image classifier must have exactly one")]
    InputCount {
        /// Number of inputs the model declares.
        found: usize,
    },
    /// The spec names an input that the model does not have.
    #[error("the spec's input_name is {expected:?} but the model's input is named {found:?}")]
    InputName {
        /// The name in the spec.
        expected: String,
        /// The model's input name.
        found: String,
    },
    /// The model's declared input (type, rank or a fixed dimension) does not match the spec.
    #[error("the model's input is {found} but the spec describes {expected}")]
    InputShape {
        /// What the spec implies, e.g. `f32 [1, 3, 224, 224]`.
        expected: String,
        /// What the model declares, e.g. `f32 [1, 3, 299, 299]` (`?` for a free dimension).
        found: String,
    },
    /// The model's output is not a vector of float32 class scores.
    #[error("the model's output is unusable: {reason}")]
    Output {
        /// What is wrong with it.
        reason: String,
        /// tract's error, when tract found it.
        #[source]
        source: Option<Cause>,
    },
    /// The labels file does not have one label per class.
    #[error("the labels file has {labels} labels but the model outputs {classes} classes")]
    LabelCount {
        /// Number of labels read.
        labels: usize,
        /// Number of class scores the model outputs.
        classes: usize,
    },
    /// The labels file is empty or has a blank line.
    #[error("labels file: {0}")]
    Labels(String),

    /// The bytes are not an image in any format this crate knows.
    #[error("not an image (no PNG, JPEG, GIF or WebP signature)")]
    NotAnImage,
    /// The bytes are an image in a format this crate was built without.
    #[error("image format {0} is not supported (use PNG, JPEG, GIF or WebP)")]
    UnsupportedImageFormat(String),
    /// The image is corrupt or truncated.
    #[error("the image could not be decoded: {0}")]
    ImageDecode(String),
    /// The image is larger than the decoding limits ([`crate::MAX_IMAGE_SIDE`] pixels a side, 512
    /// MiB of decoded pixels).
    #[error("the image is too large to decode: {0}")]
    ImageTooLarge(String),
    /// The image has a side shorter than [`crate::MIN_IMAGE_SIDE`] pixels (or is zero-sized).
    #[error("the image is {width}x{height}; each side must be at least {min} pixels")]
    ImageTooSmall {
        /// Image width in pixels.
        width: u32,
        /// Image height in pixels.
        height: u32,
        /// The minimum side.
        min: u32,
    },
    /// The image's long side is more than [`crate::MAX_ASPECT_RATIO`] times its short side.
    #[error(
        "the image is {width}x{height}; its long side may be at most {max_ratio} times its short \
         side (crop it first)"
    )]
    ImageTooElongated {
        /// Image width in pixels.
        width: u32,
        /// Image height in pixels.
        height: u32,
        /// The maximum ratio.
        max_ratio: u32,
    },

    /// `top_k` was 0 (values above the number of classes are clamped, not refused).
    #[error("top_k must be at least 1")]
    InvalidTopK,
    /// The thread count is out of range, or the thread pool could not be built.
    #[error("threads: {0}")]
    Threads(String),
    /// Running the model failed, or it produced non-finite scores.
    #[error("inference failed: {reason}")]
    Run {
        /// What failed.
        reason: String,
        /// tract's error, when tract found it.
        #[source]
        source: Option<Cause>,
    },
}

fn spec_place(line: Option<usize>, column: Option<usize>, key: Option<&str>) -> String {
    let mut at = String::new();
    if let Some(line) = line {
        at.push_str(&format!(", line {line}"));
    }
    if let Some(column) = column {
        at.push_str(&format!(", column {column}"));
    }
    if let Some(key) = key {
        at.push_str(&format!(", key `{key}`"));
    }
    at
}

/// The error of another library underneath (tract's errors are `anyhow` chains, kept whole).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

impl Error {
    pub(crate) fn not_onnx(reason: impl Into<String>) -> Error {
        Error::NotOnnx {
            reason: reason.into(),
            source: None,
        }
    }
    pub(crate) fn model(reason: impl Into<String>) -> Error {
        Error::Model {
            reason: reason.into(),
            source: None,
        }
    }
    pub(crate) fn output(reason: impl Into<String>) -> Error {
        Error::Output {
            reason: reason.into(),
            source: None,
        }
    }
    pub(crate) fn run(reason: impl Into<String>) -> Error {
        Error::Run {
            reason: reason.into(),
            source: None,
        }
    }
}

type TractError = tract_onnx::prelude::TractError;

/// tract's error while `doing`, as the cause of an [`Error::NotOnnx`].
pub(crate) fn tract_not_onnx(doing: &'static str) -> impl FnOnce(TractError) -> Error {
    move |e| Error::NotOnnx {
        reason: doing.into(),
        source: Some(e.into()),
    }
}

/// tract's error while `doing`, as the cause of an [`Error::Model`].
pub(crate) fn tract_model(doing: &'static str) -> impl FnOnce(TractError) -> Error {
    move |e| Error::Model {
        reason: doing.into(),
        source: Some(e.into()),
    }
}

/// tract's error while `doing`, as the cause of an [`Error::Output`].
pub(crate) fn tract_output(doing: &'static str) -> impl FnOnce(TractError) -> Error {
    move |e| Error::Output {
        reason: doing.into(),
        source: Some(e.into()),
    }
}

/// tract's error while `doing`, as the cause of an [`Error::Run`].
pub(crate) fn tract_run(doing: &'static str) -> impl FnOnce(TractError) -> Error {
    move |e| Error::Run {
        reason: doing.into(),
        source: Some(e.into()),
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
