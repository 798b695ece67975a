#!/usr/bin/env bash
# Training on private data: a PyTorch script trains a classifier on the data owner's protected
# dataset (a DataLoader with worker processes), writing the trained weights and a metrics report
# as protected files; the data owner decrypts only the metrics; then a second manifest runs
# protected inference with the protected weights on protected rows. The training data never
# appears in plaintext among the host's files (checked).
# Usage: examples/training/run.sh [WORKDIR]   (WARD=path/to/ward; PORT=N; VENV=dir with torch)
# Needs Debian's python3-torch and python3-torchvision (CPU-only; .ci/run installs them), root and
# /dev/fuse.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib.sh
source "$here/../lib.sh"
example_setup "$@"
PORT="${PORT:-4438}"

VENV="${VENV:-$work/venv}"
torch_venv "$VENV"

echo "== The data owner's private dataset (generated), encrypted under her key"
mkdir -p app plaintext encrypted results
cp "$here/train.py" "$here/predict.py" app/
"$VENV/bin/python" "$here/make_dataset.py" plaintext/train.csv plaintext/test.csv
ward provision init --dir provision
for f in train.csv test.csv; do
  ward pf encrypt -w provision/secrets/wrap_key -i "plaintext/$f" -o "encrypted/$f"
done

echo "== Two manifests: training, then inference with the trained weights; both signed"
common=(--python "$VENV/bin/python" --site-packages --encrypted /data=file:encrypted
        --encrypted /results=file:results --server "127.0.0.1:$PORT" --ca provision/ca.pem)
ward manifest python "${common[@]}" -o train.toml \
  app/train.py /data/train.csv /results/weights.pt /results/metrics.json
ward manifest python "${common[@]}" -o predict.toml \
  app/predict.py /results/weights.pt /data/test.csv /results/predictions.txt
ward sign keygen -o signer.pem
ward sign --key signer.pem train.toml | tee train.sign
ward sign --key signer.pem predict.toml | tee predict.sign

echo "== The data owner's policy names both workloads (and nothing else)"
{ grep -E '^(allow_simulated|simulated_platform_keys)' provision/policy.toml
  sed -n '/^\[\[identity\]\]/,$p' train.sign
  echo
  sed -n '/^\[\[identity\]\]/,$p' predict.sign | sed 's/^name = "\(.*\)"$/name = "\1 (predict)"/'
} > policy.toml
ward provision policy check policy.toml
start_server server.log --secret wrap_key=provision/secrets/wrap_key --policy policy.toml \
  --cert provision/server.pem --key provision/server-key.pem \
  --audit-log provision/audit.jsonl --listen "127.0.0.1:$PORT"

echo "== Training, confined: the dataset decrypted on read, weights and metrics encrypted on write"
ward run train.signed.toml --sim-key provision/sim-platform.pem --receipt train-receipt.json

echo "== The data owner decrypts only the metrics"
ward pf decrypt -w provision/secrets/wrap_key -i results/metrics.json -o plaintext/metrics.json -V \
  --receipt train-receipt.json --policy policy.toml --audit-log provision/audit.jsonl
cat plaintext/metrics.json
accuracy=$(python3 -c "import json; print(json.load(open('plaintext/metrics.json'))['final_val_accuracy'])")
python3 - plaintext/metrics.json <<'PY' || { echo "FAIL: the training loss did not fall" >&2; exit 1; }
import json, sys
losses = [e["loss"] for e in json.load(open(sys.argv[1]))["epochs"]]
sys.exit(0 if losses[-1] < losses[0] else 1)
PY
python3 -c "import sys; sys.exit(0 if $accuracy >= 0.8 else 1)" || {
  echo "FAIL: validation accuracy $accuracy < 0.8" >&2; exit 1; }

echo "== Protected inference with the protected weights, by the second manifest"
ward run predict.signed.toml --sim-key provision/sim-platform.pem --receipt predict-receipt.json
ward pf decrypt -w provision/secrets/wrap_key -i results/predictions.txt -o plaintext/predictions.txt \
  -V --receipt predict-receipt.json --policy policy.toml --audit-log provision/audit.jsonl
tail -1 plaintext/predictions.txt
grep -qE '^accuracy 0\.(8|9)' plaintext/predictions.txt || {
  echo "FAIL: the protected inference is not accurate" >&2; exit 1; }

echo "== Checks: no plaintext of the dataset, weights, metrics or predictions among the host's files"
# Distinctive strings: the CSV header, three full training rows, the metrics' keys, a prediction.
needles=("tenure_months" "$(sed -n 2p plaintext/train.csv)" "$(sed -n 1000p plaintext/train.csv)"
         "$(sed -n 3000p plaintext/train.csv)" "final_val_accuracy" "renews")
for n in "${needles[@]}"; do
  if grep -rqaF --exclude-dir=plaintext --exclude-dir=venv --exclude-dir=app --exclude-dir=.bin \
      -- "$n" . ; then
    echo "FAIL: plaintext found on the host: $n" >&2
    grep -rlaF --exclude-dir=plaintext --exclude-dir=venv --exclude-dir=app -- "$n" . >&2
    exit 1
  fi
done
# The weights on disk are a protected file, not torch's zip (which starts "PK"); this check (not
# part of the scenario) decrypts them with the owner's key to show the plaintext is that zip.
[[ "$(head -c 2 results/weights.pt)" != "PK" ]] || { echo "FAIL: the weights are plaintext" >&2; exit 1; }
ward pf decrypt -w provision/secrets/wrap_key -i results/weights.pt -o plaintext/weights.pt -V
[[ "$(head -c 2 plaintext/weights.pt)" == "PK" ]]
[[ $(grep -c '"granted"' provision/audit.jsonl) -ge 2 ]]
echo "PASS: trained on protected data (validation accuracy $accuracy); weights never left encrypted"
