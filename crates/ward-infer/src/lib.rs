//! ONNX image classification in pure Rust, for ward's built-in workload.
//!
//! `ward-infer` decodes an image (upright, as its EXIF orientation says), preprocesses it the way a model expects (resize the shorter side,
//! centre crop, normalise, NCHW or NHWC, RGB or BGR — a [`ModelSpec`]), runs the model with
//! [tract](https://github.com/sonos/tract) and returns the top-k classes with softmax
//! probabilities. The shipped model is EfficientNet-Lite0 (ImageNet-1k); [`ModelSpec::default`]
//! holds its preprocessing.
//!
//! ```no_run
//! # fn main() -> Result<(), ward_infer::Error> {
//! // Bytes come from wherever the caller may read them (in ward: the manifest-enforcing VFS).
//! let model: Vec<u8> = unimplemented!();
//! let labels: String = unimplemented!();
//! let image: Vec<u8> = unimplemented!();
//! let classifier = ward_infer::Classifier::load(&model, &labels, &ward_infer::ModelSpec::default())?;
//! let top5 = classifier.classify(&image, 5)?;
//! print!("{}", ward_infer::format_text(&top5));
//! # Ok(()) }
//! ```
//!
//! What it is not:
//! - it opens no files, sockets or devices: callers pass the model, labels and image as bytes, so
//!   inside ward's runtime the manifest-enforcing VFS is the only way anything is read (ONNX
//!   models that keep their weights in external data files are refused for the same reason);
//! - it does not train, batch, or run on accelerators; one image at a time, on the CPU;
//! - it is not a general ONNX runner: one float32 image input, one class-score output.
//!
//! Untrusted bytes (model, labels, image) never panic the caller: every failure is a typed
//! [`Error`], decoding is bounded by size limits, and tract is additionally run under
//! `catch_unwind` so a bug in it surfaces as [`Error::Model`] or [`Error::Run`]. (An allocation
//! failure still aborts the process, as everywhere in Rust.)

mod classifier;
mod error;
mod output;
mod preprocess;
mod spec;

pub use classifier::{Classifier, Input};
pub use error::{Cause, Error};
pub use output::{format_json, format_results, format_text, softmax, top_k, Prediction};
pub use preprocess::{MAX_ASPECT_RATIO, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE};
pub use spec::{ChannelOrder, Layout, ModelSpec};
