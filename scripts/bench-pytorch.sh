#!/usr/bin/env bash
# PyTorch natively vs confined under `ward run` (issue 12's figures): the tutorial script whole
# (process start to exit), `import torch, torchvision`, loading the pickled model, one inference,
# and a training epoch. Sets up with examples/pytorch/run.sh and examples/training/run.sh, then
# runs each case N times, native and confined interleaved, and prints medians as a table.
# Usage: scripts/bench-pytorch.sh WORKDIR   (WARD=…; N=5; PORT=N uses PORT and PORT+1)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
WARD="$(realpath "${WARD:-$repo/target/release/ward}")"
N="${N:-5}"
PORT="${PORT:-4445}"
work="$(realpath -m "$1")"
mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
now() { python3 -c 'import time; print(time.time())'; }
# ward run …, its stdout kept; on failure its stderr is shown (e.g. a manifest signed for another
# ward build: delete WORKDIR to set up again).
ward_run() { "$WARD" run "$@" --sim-key provision/sim-platform.pem 2> "$work/run.err" || {
  cat "$work/run.err" >&2; exit 1; }; }
median() { python3 -c 'import statistics, sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.3f}")' "$@"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[2]) / float(sys.argv[1]):.2f}×')" "$1" "$2"; }
serve() { # DIR PORT
  (cd "$1" && exec "$WARD" provision serve --secret wrap_key=provision/secrets/wrap_key --policy policy.toml \
    --cert provision/server.pem --key provision/server-key.pem --audit-log provision/audit.jsonl \
    --listen "127.0.0.1:$2" > bench-server.log 2>&1) &
  pids+=($!)
  for _ in $(seq 50); do grep -q "listening on" "$1/bench-server.log" 2>/dev/null && break; sleep 0.1; done
}

echo "setting up (examples/pytorch/run.sh, examples/training/run.sh) …" >&2
[[ -f "$work/pt/pytorch.signed.toml" ]] || WARD="$WARD" PORT="$PORT" "$repo/examples/pytorch/run.sh" "$work/pt" > "$work/pt.log" 2>&1
[[ -f "$work/tr/train.signed.toml" ]] || WARD="$WARD" PORT=$((PORT + 1)) VENV="$work/pt/venv" \
  "$repo/examples/training/run.sh" "$work/tr" > "$work/tr.log" 2>&1

cd "$work/pt"
if [[ ! -f bench.signed.toml ]]; then
  mkdir -p bench && cp "$repo/examples/pytorch/bench_infer.py" bench/
  "$WARD" manifest python --python venv/bin/python --site-packages \
    --encrypted /data=file:encrypted --server "127.0.0.1:$PORT" --ca provision/ca.pem \
    --start-dir /data -o bench.toml bench/bench_infer.py > /dev/null 2>&1
  "$WARD" sign --key signer.pem bench.toml > /dev/null 2>&1
  "$WARD" provision policy add policy.toml --name bench --tee sim --from-signed bench.signed.toml 2>/dev/null
fi
serve "$work/pt" "$PORT"
declare -A t
for i in $(seq "$N"); do
  s=$(now); (cd plaintext && ../venv/bin/python ../app/pytorchexample.py > /dev/null); e=$(now)
  t[whole_n]+=" $(python3 -c "print($e - $s)")"
  s=$(now); ward_run pytorch.signed.toml > /dev/null; e=$(now)
  t[whole_w]+=" $(python3 -c "print($e - $s)")"
  line=$(cd plaintext && ../venv/bin/python ../bench/bench_infer.py)
  for k in import load infer; do t[${k}_n]+=" $(sed -n "s/.*$k=\([0-9.]*\).*/\1/p" <<<"$line")"; done
  line=$(ward_run bench.signed.toml | grep '^bench ')
  for k in import load infer; do t[${k}_w]+=" $(sed -n "s/.*$k=\([0-9.]*\).*/\1/p" <<<"$line")"; done
done

cd "$work/tr"
serve "$work/tr" $((PORT + 1))
epochs() { grep -o '([0-9.]* s)' | tr -d '(s)' | tail -n 4; }  # epochs 2–5 (1 warms up)
for i in $(seq "$N"); do
  s=$(now)
  out=$(venv_py="$work/pt/venv/bin/python"; "$venv_py" app/train.py plaintext/train.csv /tmp/bench-w.pt /tmp/bench-m.json)
  e=$(now); t[train_n]+=" $(python3 -c "print($e - $s)")"; t[epoch_n]+=" $(epochs <<<"$out" | tr '\n' ' ')"
  s=$(now)
  out=$(ward_run train.signed.toml)
  e=$(now); t[train_w]+=" $(python3 -c "print($e - $s)")"; t[epoch_w]+=" $(epochs <<<"$out" | tr '\n' ' ')"
done
rm -f /tmp/bench-w.pt /tmp/bench-m.json

echo "| what (medians of $N; seconds) | native | ward run | ratio |"
echo "|---|---:|---:|---:|"
row() { local a b; a=$(median ${t[$2]}); b=$(median ${t[$3]}); echo "| $1 | $a | $b | $(ratio "$a" "$b") |"; }
row "tutorial script, whole process (ward: boot, attestation, key fetch, commit included)" whole_n whole_w
row "\`import torch, torchvision\`" import_n import_w
row "\`torch.load\` of the pickled model (protected under ward)" load_n load_w
row "one inference (median of 10 in a process)" infer_n infer_w
row "training script, whole process" train_n train_w
row "one training epoch (epochs 2–5, DataLoader with 2 workers)" epoch_n epoch_w
