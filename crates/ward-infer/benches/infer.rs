//! ward-infer on the shipped EfficientNet-Lite0 and cat photo: model load + optimise,
//! preprocess (decode, resize, crop, normalise), run at 1 and 2 threads, classify end to end.
//!
//! `cargo bench -p ward-infer --bench infer` (add `-- run` to pick benchmarks by name).
// criterion_group! defines a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;
use ward_infer::{Classifier, ModelSpec};

fn read(relative: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn bench(c: &mut Criterion) {
    let model = read("efficientnet-lite0/model.onnx");
    let labels = String::from_utf8(read("efficientnet-lite0/labels.txt")).unwrap();
    let image = read("images/chelsea.png");
    let spec = ModelSpec::default();

    let mut g = c.benchmark_group("efficientnet-lite0");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    g.bench_function("load+optimise", |b| {
        b.iter(|| Classifier::load(black_box(&model), &labels, &spec).unwrap())
    });
    g.finish();

    let mut classifier = Classifier::load(&model, &labels, &spec).unwrap();
    let input = classifier.preprocess(&image).unwrap();
    let mut g = c.benchmark_group("efficientnet-lite0");
    g.sample_size(30).measurement_time(Duration::from_secs(4));
    g.bench_function("preprocess chelsea.png", |b| {
        b.iter(|| classifier.preprocess(black_box(&image)).unwrap())
    });
    for threads in [1, 2] {
        classifier.set_threads(threads).unwrap();
        g.bench_function(format!("run threads={threads}"), |b| {
            b.iter(|| classifier.run(black_box(&input)).unwrap())
        });
        g.bench_function(format!("classify chelsea.png threads={threads}"), |b| {
            b.iter(|| classifier.classify(black_box(&image), 5).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
