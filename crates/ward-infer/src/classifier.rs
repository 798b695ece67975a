//! [`Classifier`]: a loaded, checked and optimised model with its labels.

use crate::error::{panic_message, tract_model, tract_not_onnx, tract_output, tract_run};
use crate::output::{softmax, Prediction};
use crate::preprocess;
use crate::spec::ModelSpec;
use crate::Error;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use tract_onnx::prelude::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;
use tract_onnx::tract_hir::internal::DimLike;

/// Most threads [`Classifier::set_threads`] accepts.
const MAX_THREADS: usize = 256;

/// A model ready to classify images: parsed, checked against its [`ModelSpec`] and labels,
/// typed with a fixed input shape and optimised by tract.
///
/// Loading EfficientNet-Lite0 takes 50–100 ms; classifying is `&self`, so one classifier can
/// serve many images and threads (it is `Send + Sync`).
pub struct Classifier {
    plan: Arc<TypedRunnableModel>,
    labels: Vec<String>,
    spec: ModelSpec,
    executor: Executor,
    threads: usize,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("spec", &self.spec)
            .field("classes", &self.labels.len())
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

/// A preprocessed image: the model's input tensor (float32, [`ModelSpec::input_shape`]).
///
/// Made by [`Classifier::preprocess`] and consumed by [`Classifier::run`] /
/// [`Classifier::predict`]; public so that benchmarks can time decoding apart from inference and
/// so the tensor can be handed to another engine for comparison.
#[derive(Clone, Debug)]
pub struct Input {
    value: TValue,
}

impl Input {
    /// Build an input from raw data in `shape` order (for tests and cross-engine checks; the
    /// shape must be the classifier's [`ModelSpec::input_shape`] to run).
    pub fn from_data(shape: [usize; 4], data: &[f32]) -> Result<Self, Error> {
        let tensor =
            Tensor::from_shape(&shape, data).map_err(tract_run("building the input tensor"))?;
        Ok(Input {
            value: tensor.into_tvalue(),
        })
    }

    /// The tensor's shape.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// The tensor's values, in [`Input::shape`] order.
    pub fn as_slice(&self) -> &[f32] {
        self.value
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>())
            .unwrap_or(&[])
    }
}

impl Classifier {
    /// Parse `model_onnx`, check it against `spec` and `labels_txt` (one label per line, in class
    /// order), fix its input shape and optimise it. Runs single-threaded until
    /// [`Classifier::set_threads`] says otherwise.
    ///
    /// Errors: [`Error::SpecValue`] for a bad spec; [`Error::Labels`] for an empty labels file or a
    /// blank line; [`Error::NotOnnx`] for bytes that are not an ONNX model (empty, garbage,
    /// truncated); [`Error::InputCount`], [`Error::InputName`], [`Error::InputShape`] when the
    /// model's input does not match the spec; [`Error::Output`] when its output is not float32
    /// class scores; [`Error::LabelCount`] when the labels and the output size differ;
    /// [`Error::Model`] for anything else tract refuses.
    pub fn load(model_onnx: &[u8], labels_txt: &str, spec: &ModelSpec) -> Result<Self, Error> {
        spec.validate()?;
        let labels = parse_labels(labels_txt)?;
        if model_onnx.is_empty() {
            return Err(Error::not_onnx("the model is empty (0 bytes)".to_string()));
        }
        let plan = match catch_unwind(AssertUnwindSafe(|| build_plan(model_onnx, spec))) {
            Ok(plan) => plan?,
            Err(panic) => {
                return Err(Error::model(format!(
                    "tract panicked: {}",
                    panic_message(&*panic)
                )))
            }
        };
        let classes = output_classes(&plan)?;
        if classes != labels.len() {
            return Err(Error::LabelCount {
                labels: labels.len(),
                classes,
            });
        }
        Ok(Classifier {
            plan,
            labels,
            spec: spec.clone(),
            executor: Executor::SingleThread,
            threads: 1,
        })
    }

    /// Run inference on `threads` threads: 1 (the default after [`Classifier::load`]) runs on the
    /// calling thread; n > 1 uses a private pool of n threads for the matrix products and large
    /// element-wise operations; 0 means one thread per available core. At most 256.
    pub fn set_threads(&mut self, threads: usize) -> Result<(), Error> {
        let n = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        if n > MAX_THREADS {
            return Err(Error::Threads(format!(
                "{n} threads asked for; at most {MAX_THREADS}"
            )));
        }
        self.executor = if n == 1 {
            Executor::SingleThread
        } else {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("ward-infer-{i}"))
                .build()
                .map_err(|e| Error::Threads(format!("could not start {n} threads: {e}")))?;
            Executor::MultiThread(Arc::new(pool))
        };
        self.threads = n;
        Ok(())
    }

    /// The number of threads inference runs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The spec this classifier was loaded with.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The class labels, in class order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Decode an image (PNG, JPEG, GIF, WebP) and turn it into the model's input.
    ///
    /// Errors: [`Error::NotAnImage`], [`Error::UnsupportedImageFormat`], [`Error::ImageDecode`],
    /// [`Error::ImageTooLarge`], [`Error::ImageTooSmall`], [`Error::ImageTooElongated`].
    ///
    /// The decoded pixels and the tensor data this makes are wiped before it returns (the
    /// image decoder's and tract's own buffers are out of its reach).
    pub fn preprocess(&self, image_bytes: &[u8]) -> Result<Input, Error> {
        let image = preprocess::decode(image_bytes)?;
        let data = preprocess::to_tensor_data(&image, &self.spec);
        drop(zeroize::Zeroizing::new(image.into_raw()));
        let data = zeroize::Zeroizing::new(data?);
        Input::from_data(self.spec.input_shape(), &data)
    }

    /// Run the model on a preprocessed input; returns the raw class scores (logits for the
    /// shipped model), one per label.
    pub fn run(&self, input: &Input) -> Result<Vec<f32>, Error> {
        self.run_on(self.executor.clone(), input)
    }

    fn run_on(&self, executor: Executor, input: &Input) -> Result<Vec<f32>, Error> {
        let expected = self.spec.input_shape();
        if input.shape() != expected {
            return Err(Error::run(format!(
                "the input has shape {:?}, the model takes {:?}",
                input.shape(),
                expected
            )));
        }
        let outputs = catch_unwind(AssertUnwindSafe(|| {
            multithread_tract_scope(executor, || self.plan.run(tvec![input.value.clone()]))
        }))
        .map_err(|panic| Error::run(format!("tract panicked: {}", panic_message(&*panic))))?
        .map_err(tract_run("running the model"))?;
        let scores = outputs
            .first()
            .ok_or_else(|| Error::run("the model produced no output".to_string()))?
            .try_as_plain_ram()
            .and_then(|v| v.as_slice::<f32>())
            .map_err(tract_run("reading the output as float32 scores"))?;
        if scores.len() != self.labels.len() {
            return Err(Error::run(format!(
                "the model produced {} scores for {} labels",
                scores.len(),
                self.labels.len()
            )));
        }
        Ok(scores.to_vec())
    }

    /// Run the model on a preprocessed input and return the `top_k` most probable classes
    /// (softmax over the scores). `top_k = 0` is [`Error::InvalidTopK`]; a `top_k` above the number
    /// of classes is clamped to it.
    pub fn predict(&self, input: &Input, top_k: usize) -> Result<Vec<Prediction>, Error> {
        if top_k == 0 {
            return Err(Error::InvalidTopK);
        }
        let probabilities = softmax(&self.run(input)?)?;
        crate::output::top_k(&probabilities, &self.labels, top_k)
    }

    /// Decode, preprocess and classify one image: [`Classifier::preprocess`] then
    /// [`Classifier::predict`]. `top_k = 0` is refused before the image is decoded.
    pub fn classify(&self, image_bytes: &[u8], top_k: usize) -> Result<Vec<Prediction>, Error> {
        if top_k == 0 {
            return Err(Error::InvalidTopK);
        }
        let input = self.preprocess(image_bytes)?;
        self.predict(&input, top_k)
    }

    /// As [`Classifier::classify`], on the calling thread alone whatever
    /// [`Classifier::set_threads`] said: for callers that already run several images side by
    /// side (a server's workers), where splitting each image across the pool would cost
    /// throughput.
    pub fn classify_on_calling_thread(
        &self,
        image_bytes: &[u8],
        top_k: usize,
    ) -> Result<Vec<Prediction>, Error> {
        if top_k == 0 {
            return Err(Error::InvalidTopK);
        }
        let input = self.preprocess(image_bytes)?;
        let probabilities = softmax(&self.run_on(Executor::SingleThread, &input)?)?;
        crate::output::top_k(&probabilities, &self.labels, top_k)
    }

    /// Classify many images, reading each with `read`: with a pool of threads
    /// ([`Classifier::set_threads`]) the images run side by side, one per thread, each on a single
    /// thread, which gives more images per second than splitting every image's inference across
    /// the pool. Results come back in `items`' order, one per item.
    pub fn classify_many<T, B, E, F>(
        &self,
        items: &[T],
        read: F,
        top_k: usize,
    ) -> Vec<Result<Vec<Prediction>, E>>
    where
        T: Sync,
        B: AsRef<[u8]>,
        E: Send + From<Error>,
        F: Fn(&T) -> Result<B, E> + Sync,
    {
        use rayon::prelude::*;
        let one = |item: &T, executor: Executor| -> Result<Vec<Prediction>, E> {
            if top_k == 0 {
                return Err(Error::InvalidTopK.into());
            }
            let bytes = read(item)?;
            let input = self.preprocess(bytes.as_ref())?;
            drop(bytes);
            let probabilities = softmax(&self.run_on(executor, &input)?)?;
            Ok(crate::output::top_k(&probabilities, &self.labels, top_k)?)
        };
        match &self.executor {
            Executor::MultiThread(pool) if items.len() > 1 => pool.install(|| {
                items
                    .par_iter()
                    .map(|item| one(item, Executor::SingleThread))
                    .collect()
            }),
            executor => items
                .iter()
                .map(|item| one(item, executor.clone()))
                .collect(),
        }
    }
}

/// One label per line; a final newline, `\r\n` endings, a UTF-8 BOM and surrounding spaces are
/// allowed, blank lines are not (they would silently shift or invent classes).
fn parse_labels(text: &str) -> Result<Vec<String>, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.trim().is_empty() {
        return Err(Error::Labels("it has no labels".to_string()));
    }
    body.split('\n')
        .enumerate()
        .map(|(i, line)| {
            let label = line.trim();
            if label.is_empty() {
                Err(Error::Labels(format!("line {} is blank", i + 1)))
            } else {
                Ok(label.to_string())
            }
        })
        .collect()
}

/// Protobuf → inference model → checks → typed, optimised, runnable plan.
fn build_plan(bytes: &[u8], spec: &ModelSpec) -> Result<Arc<TypedRunnableModel>, Error> {
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_read(&mut &*bytes)
        .map_err(tract_not_onnx("tract could not decode the protobuf"))?;
    match &proto.graph {
        None => return Err(Error::not_onnx("the protobuf has no graph".to_string())),
        Some(g) if g.node.is_empty() => {
            return Err(Error::not_onnx(
                "the protobuf's graph has no nodes".to_string(),
            ))
        }
        Some(_) => {}
    }
    let model = onnx
        .model_for_proto_model(&proto)
        .map_err(tract_model("translating the ONNX graph"))?;
    drop(proto);

    let inputs = model
        .input_outlets()
        .map_err(tract_model("finding the model's input"))?;
    if inputs.len() != 1 {
        return Err(Error::InputCount {
            found: inputs.len(),
        });
    }
    let input_name = model.node(inputs[0].node).name.clone();
    if let Some(expected) = &spec.input_name {
        if *expected != input_name {
            return Err(Error::InputName {
                expected: expected.clone(),
                found: input_name,
            });
        }
    }
    check_declared_input(
        model
            .input_fact(0)
            .map_err(tract_model("reading the model's declared input"))?,
        spec,
    )?;

    let shape = spec.input_shape();
    model
        .with_input_fact(0, InferenceFact::dt_shape(DatumType::F32, &shape[..]))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(tract_model("typing, optimising and planning the model"))
}

/// Compare what the model declares about its input (type, rank, fixed dimensions) with the
/// spec; free (symbolic or unknown) dimensions are accepted and fixed to the spec's.
fn check_declared_input(fact: &InferenceFact, spec: &ModelSpec) -> Result<(), Error> {
    let expected = spec.input_shape();
    let dt = fact.datum_type.concretize();
    let dims: Option<Vec<Option<usize>>> = if fact.shape.is_open() {
        None
    } else {
        Some(
            fact.shape
                .dims()
                .map(|d| d.concretize().and_then(|d| d.to_usize().ok()))
                .collect(),
        )
    };
    let dt_ok = dt.is_none_or(|dt| dt == DatumType::F32);
    let dims_ok = dims.as_ref().is_none_or(|dims| {
        dims.len() == expected.len()
            && dims
                .iter()
                .zip(expected)
                .all(|(d, e)| d.is_none_or(|d| d == e))
    });
    if dt_ok && dims_ok {
        return Ok(());
    }
    let dt_text = dt.map_or("?".to_string(), |dt| format!("{dt:?}").to_lowercase());
    let dims_text = dims.map_or("[..]".to_string(), |dims| {
        let d: Vec<String> = dims
            .iter()
            .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
            .collect();
        format!("[{}]", d.join(", "))
    });
    Err(Error::InputShape {
        expected: format!("f32 {expected:?} ({:?})", spec.layout).to_lowercase(),
        found: format!("{dt_text} {dims_text}"),
    })
}

/// The number of classes the plan outputs: its first output must be float32 with a concrete
/// shape whose dimensions are all 1 but the last (`[1000]`, `[1, 1000]`).
fn output_classes(plan: &TypedRunnableModel) -> Result<usize, Error> {
    let model = plan.model();
    let fact = model
        .output_fact(0)
        .map_err(tract_output("reading the model's declared output"))?;
    if fact.datum_type != DatumType::F32 {
        return Err(Error::output(format!(
            "it is {:?}, not f32",
            fact.datum_type
        )));
    }
    let shape = fact
        .shape
        .as_concrete()
        .ok_or_else(|| Error::output(format!("its shape {:?} is not fixed", fact.shape)))?;
    match shape.split_last() {
        Some((&classes, rest)) if classes > 0 && rest.iter().all(|&d| d == 1) => Ok(classes),
        _ => Err(Error::output(format!(
            "its shape is {shape:?}; expected [classes] or [1, classes]"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse() {
        assert_eq!(parse_labels("a\nb\n").unwrap(), ["a", "b"]);
        assert_eq!(
            parse_labels("\u{feff}a, x\r\nb\r\n").unwrap(),
            ["a, x", "b"]
        );
        assert_eq!(parse_labels("a\nb").unwrap(), ["a", "b"]);
        assert!(matches!(parse_labels(""), Err(Error::Labels(_))));
        assert!(matches!(parse_labels("\n"), Err(Error::Labels(_))));
        match parse_labels("a\n\nb\n") {
            Err(Error::Labels(m)) => assert!(m.contains("line 2"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_labels("a\nb\n\n"), Err(Error::Labels(_))));
    }

    #[test]
    fn classifier_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Classifier>();
        check::<Input>();
    }
}
