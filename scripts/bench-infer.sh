#!/usr/bin/env bash
# Inference speed of ward-infer (tract, pure Rust) against onnxruntime, on the shipped
# EfficientNet-Lite0 and cat photo, at 1 and 2 threads, in one run; prints a markdown table.
#
#   scripts/bench-infer.sh            # RUNS=50 timed runs per figure, after a warm-up
#   RUNS=200 IMAGE=path/to.jpg scripts/bench-infer.sh
#   WARD_BIN=path/to/ward scripts/bench-infer.sh    # use this ward binary, do not build one
#
# What is measured:
# - tract: ward-infer's examples/classify_bench (always) — model load + optimise, preprocess
#   (decode, resize, crop, normalise), inference alone (`Classifier::run`) and a whole
#   classification; and `ward classify --bench` (per image and inference alone) when the ward
#   binary has that subcommand.
# - onnxruntime (pip, in a venv under target/bench-venv): session creation, and `session.run` on
#   the very tensor ward-infer preprocessed (dumped by classify_bench), intra_op_num_threads 1
#   and 2. Its logits are compared with tract's on that same input.
# Needs: cargo, python3 with venv and pip (PyPI reachable the first time).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-50}
MODEL_DIR=${MODEL_DIR:-models/efficientnet-lite0}
IMAGE=${IMAGE:-models/images/chelsea.png}
OUT=target/bench-infer
VENV=target/bench-venv
mkdir -p "$OUT"

log() { echo "bench-infer: $*" >&2; }

log "building (release)"
cargo build --release -q -p ward-infer --example classify_bench
BENCH=target/release/examples/classify_bench
# WARD_BIN: a ward binary to use as is (else target/release/ward, built here).
WARD=${WARD_BIN:-target/release/ward}
have_cli=0
if { [ -n "${WARD_BIN:-}" ] || cargo build --release -q -p ward 2>"$OUT/ward-build.log"; } &&
    "$WARD" classify --help >/dev/null 2>&1; then
    have_cli=1
else
    log "$WARD has no 'classify' subcommand (or did not build, see $OUT/ward-build.log): using classify_bench only"
fi

if ! "$VENV/bin/python" -c 'import onnxruntime, numpy' 2>/dev/null; then
    log "installing onnxruntime and numpy into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check onnxruntime numpy pillow
fi

log "tract: classify_bench, threads 1 and 2, $RUNS runs"
"$BENCH" --model "$MODEL_DIR/model.onnx" --labels "$MODEL_DIR/labels.txt" --image "$IMAGE" \
    --threads 1,2 --runs "$RUNS" --load-runs 5 \
    --dump-input "$OUT/input.f32" --dump-logits "$OUT/tract-logits.f32" >"$OUT/tract.txt"

if [ "$have_cli" = 1 ]; then
    for t in 1 2; do
        log "tract: ward classify --bench $RUNS --threads $t"
        "$WARD" classify --model "$MODEL_DIR/model.onnx" --labels "$MODEL_DIR/labels.txt" \
            --image "$IMAGE" --threads "$t" --bench "$RUNS" >/dev/null 2>"$OUT/ward-$t.txt"
    done
fi

log "onnxruntime: threads 1 and 2, $RUNS runs"
"$VENV/bin/python" - "$MODEL_DIR/model.onnx" "$OUT/input.f32" "$OUT/tract-logits.f32" "$RUNS" \
    >"$OUT/ort.txt" <<'EOF'
import statistics, sys, time
import numpy as np
import onnxruntime as ort

model, input_path, tract_logits_path, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
x = np.fromfile(input_path, dtype="<f4").reshape(1, 3, 224, 224)
tract = np.fromfile(tract_logits_path, dtype="<f4")

def stats(name, threads, samples):
    s = sorted(samples)
    pick = lambda q: s[round((len(s) - 1) * q)]
    print(f"{name} threads={threads} median={pick(0.5):.3f} p90={pick(0.9):.3f} min={s[0]:.3f} n={len(s)}")

print(f"version {ort.__version__}")
for threads in (1, 2):
    loads = []
    for _ in range(5):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        t = time.perf_counter()
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        loads.append((time.perf_counter() - t) * 1e3)
    name = sess.get_inputs()[0].name
    for _ in range(5):
        logits = sess.run(None, {name: x})[0].reshape(-1)
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {name: x})
        samples.append((time.perf_counter() - t) * 1e3)
    stats("load", threads, loads)
    stats("run", threads, samples)
top = lambda l: list(np.argsort(-l)[:5])
print(f"max_abs_logit_diff {np.abs(logits - tract).max():.3g}")
print(f"same_top5 {'yes' if top(logits) == top(tract) else 'no'}")
EOF

# field FILE NAME THREADS KEY: the KEY=value of line "NAME threads=THREADS ..." in FILE.
field() {
    awk -v name="$2" -v th="threads=$3" -v key="$4" \
        '$1 == name && $2 == th { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) print kv[2] } }' "$1"
}
# ward FILE KIND KEY: from `ward classify --bench` stderr, KIND "per image" or "inference alone".
ward_field() {
    sed -n "s/.*$2 median \([0-9.]*\) ms, p90 \([0-9.]*\) ms, min \([0-9.]*\) ms.*/\1 \2 \3/p" "$1" |
        head -1 | awk -v k="$3" '{ print (k == "median" ? $1 : k == "p90" ? $2 : $3) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "—" }'; }
speedup() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "—" }'; }

ORT_VERSION=$(awk '$1 == "version" { print $2 }' "$OUT/ort.txt")
TRACT_VERSION=$(cargo tree -p ward-infer -e normal --depth 1 2>/dev/null |
    sed -n 's/.*tract-onnx v\([0-9.]*\).*/\1/p' | head -1)
CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)

echo
echo "### ward-infer (tract ${TRACT_VERSION:-?}) vs onnxruntime ${ORT_VERSION:-?}"
echo
echo "EfficientNet-Lite0, $(basename "$IMAGE"), $RUNS runs after warm-up, $(nproc) cores ($CPU), milliseconds."
echo "Ratio: time ÷ onnxruntime's median at the same thread count (lower is better)."
echo
echo "| what | threads | median | p90 | min | ÷ onnxruntime |"
echo "|---|---:|---:|---:|---:|---:|"
for t in 1 2; do
    om=$(field "$OUT/ort.txt" run "$t" median)
    echo "| onnxruntime \`session.run\` | $t | $om | $(field "$OUT/ort.txt" run "$t" p90) | $(field "$OUT/ort.txt" run "$t" min) | 1.00× |"
    tm=$(field "$OUT/tract.txt" run "$t" median)
    echo "| tract inference (\`Classifier::run\`) | $t | $tm | $(field "$OUT/tract.txt" run "$t" p90) | $(field "$OUT/tract.txt" run "$t" min) | $(ratio "$tm" "$om") |"
    cm=$(field "$OUT/tract.txt" classify "$t" median)
    echo "| ward-infer whole classification (decode + preprocess + run + top-5) | $t | $cm | $(field "$OUT/tract.txt" classify "$t" p90) | $(field "$OUT/tract.txt" classify "$t" min) | $(ratio "$cm" "$om") |"
    if [ "$have_cli" = 1 ]; then
        wm=$(ward_field "$OUT/ward-$t.txt" "per image" median)
        echo "| \`ward classify --bench\` per image | $t | $wm | $(ward_field "$OUT/ward-$t.txt" "per image" p90) | $(ward_field "$OUT/ward-$t.txt" "per image" min) | $(ratio "$wm" "$om") |"
    fi
done
pm=$(field "$OUT/tract.txt" preprocess 1 median)
echo "| preprocess alone (decode PNG, resize, crop, normalise) | 1 | $pm | $(field "$OUT/tract.txt" preprocess 1 p90) | $(field "$OUT/tract.txt" preprocess 1 min) | |"
lm=$(field "$OUT/tract.txt" load 1 median)
olm=$(field "$OUT/ort.txt" load 1 median)
echo "| tract model load + optimise (5 loads) | — | $lm | $(field "$OUT/tract.txt" load 1 p90) | $(field "$OUT/tract.txt" load 1 min) | $(ratio "$lm" "$olm") |"
echo "| onnxruntime session creation (5 loads) | 1 | $olm | $(field "$OUT/ort.txt" load 1 p90) | $(field "$OUT/ort.txt" load 1 min) | 1.00× |"
echo
echo "Thread scaling (inference median, 1 → 2 threads): tract $(speedup "$(field "$OUT/tract.txt" run 1 median)" "$(field "$OUT/tract.txt" run 2 median)"), onnxruntime $(speedup "$(field "$OUT/ort.txt" run 1 median)" "$(field "$OUT/ort.txt" run 2 median)")."
echo "Same input tensor: max |tract − onnxruntime| logit $(awk '$1 == "max_abs_logit_diff" { print $2 }' "$OUT/ort.txt"), same top-5: $(awk '$1 == "same_top5" { print $2 }' "$OUT/ort.txt")."
echo
echo "tract top-5 on $(basename "$IMAGE"):"
echo '```'
head -5 "$OUT/tract.txt"
echo '```'
echo "Raw figures: $OUT/"
