#!/usr/bin/env bash
# An unmodified Python program (ONNX Runtime + numpy + Pillow, in a venv) classifies a protected
# photo with a protected model under `ward run`, and writes a protected result; the same script
# run natively on the plain files must give the same result, byte for byte.
# Usage: examples/python/run.sh [WORKDIR]   (WARD=path/to/ward; PORT=N; VENV=dir with onnxruntime,
#                                            numpy and pillow, made with pip if missing)
# Needs root and /dev/fuse (ward run confines the program with namespaces and a FUSE view).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [[ -z "${WARD:-}" ]]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p ward
  WARD="$repo/target/release/ward"
fi
WARD="$(realpath "$WARD")"
PORT="${PORT:-4434}"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
work="$(realpath "$work")"
cd "$work"
mkdir -p .bin
ln -sf "$WARD" .bin/ward
export PATH="$work/.bin:$PATH"
echo "working in $work"
server_pid=""
cleanup() { [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT

VENV="${VENV:-$work/venv}"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import onnxruntime, numpy, PIL" 2>/dev/null; then
  echo "== A venv with ONNX Runtime, numpy and Pillow: $VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check onnxruntime numpy pillow
fi

echo "== The program, run natively on the plain files"
mkdir -p app plaintext
cp "$here/classify.py" app/classify.py
cp "$repo/models/efficientnet-lite0/model.onnx" plaintext/model.onnx
cp "$repo/models/efficientnet-lite0/labels.txt" plaintext/labels.txt
cp "$repo/models/images/chelsea.png" plaintext/input.png
start=$EPOCHREALTIME
"$VENV/bin/python" app/classify.py plaintext/model.onnx plaintext/labels.txt plaintext/input.png \
  plaintext/native-result.txt
native=$(python3 -c "print($EPOCHREALTIME - $start)")
cat plaintext/native-result.txt

echo "== Data owner: provisioning server set-up, then encrypt the model, labels and photo"
ward provision init --dir provision
for f in model.onnx labels.txt input.png; do
  ward pf encrypt -w provision/secrets/wrap_key -i "plaintext/$f" -o "encrypted/$f"
done
mkdir -p results

echo "== Workload author: the manifest of the script (interpreter, libraries, stdlib, venv), signed"
ward manifest python --python "$VENV/bin/python" --site-packages \
  --encrypted /data=file:encrypted --encrypted /results=file:results \
  --server "127.0.0.1:$PORT" --ca provision/ca.pem -o classify.toml \
  app/classify.py /data/model.onnx /data/labels.txt /data/input.png /results/result.txt
ward sign keygen -o signer.pem
ward sign --key signer.pem classify.toml | tee sign.out

echo "== Data owner: a policy naming that measurement; the server releases the key only to it"
{ grep -E '^(allow_simulated|simulated_platform_keys)' provision/policy.toml
  sed -n '/^\[\[identity\]\]/,$p' sign.out; } > policy.toml
ward provision serve --secret wrap_key=provision/secrets/wrap_key --policy policy.toml \
  --cert provision/server.pem --key provision/server-key.pem \
  --audit-log provision/audit.jsonl --listen "127.0.0.1:$PORT" > server.log 2>&1 &
server_pid=$!
for _ in $(seq 50); do grep -q "listening on" server.log 2>/dev/null && break; sleep 0.1; done

echo "== Host: run the same script, unmodified, confined by the manifest"
start=$EPOCHREALTIME
ward run classify.signed.toml --sim-key provision/sim-platform.pem --receipt receipt.json
confined=$(python3 -c "print($EPOCHREALTIME - $start)")

echo "== Data owner: decrypt the result"
# -V: the file must be bound to the path it is read from; --receipt: it must be the result this
# run committed (signed by the attested workload), and --audit-log: that run must be the latest
# one the data owner's server granted the key to. A substituted or older result is refused.
ward pf decrypt -w provision/secrets/wrap_key -i results/result.txt -o plaintext/result.txt -V \
  --receipt receipt.json --policy policy.toml --audit-log provision/audit.jsonl
cat plaintext/result.txt

if ! cmp -s plaintext/result.txt plaintext/native-result.txt; then
  echo "FAIL: the confined result differs from the native one" >&2; exit 1
fi
if grep -qa "tiger cat" results/result.txt; then echo "FAIL: the result is not encrypted" >&2; exit 1; fi
grep -q '"granted"' provision/audit.jsonl
printf 'PASS: same result natively and confined (%.2f s native, %.2f s under ward run, boot and attestation included)\n' \
  "$native" "$confined"
