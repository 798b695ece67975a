#!/usr/bin/env bash
# The PPML tutorial with ward, end to end, with the exact commands of README.md in this folder.
# Usage: examples/ppml/run.sh [WORKDIR]     (WARD=path/to/ward to use another binary;
#                                           PORT=N to use another port than 4433)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [[ -z "${WARD:-}" ]]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p ward
  WARD="$repo/target/release/ward"
fi
WARD="$(realpath "$WARD")"
PORT="${PORT:-4433}"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
cd "$work"
# `ward` on PATH rather than a shell function: a function run with `&` is a subshell, and `$!`
# would name that subshell instead of the server it starts (killing it left the server running).
mkdir -p .bin
ln -sf "$WARD" .bin/ward
export PATH="$work/.bin:$PATH"
echo "working in $work"
server_pid=""
cleanup() { [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true; }
trap cleanup EXIT

echo "== Before the enclave: classify the plain files"
mkdir -p plaintext app
cp "$repo/models/efficientnet-lite0/model.onnx" plaintext/model.onnx
cp "$repo/models/efficientnet-lite0/labels.txt" plaintext/labels.txt
cp "$repo/models/images/chelsea.png" plaintext/input.png
cp "$repo/models/efficientnet-lite0/model.toml" app/model.toml
ward classify --model plaintext/model.onnx --labels plaintext/labels.txt --image plaintext/input.png

echo "== Prepare Secret Provisioning (data owner): CA, server certificate, wrap key"
ward provision init --dir provision

echo "== Encrypt Input Files (data owner)"
ward pf encrypt -w provision/secrets/wrap_key -i plaintext/model.onnx -o encrypted/model.onnx
ward pf encrypt -w provision/secrets/wrap_key -i plaintext/labels.txt -o encrypted/labels.txt
ward pf encrypt -w provision/secrets/wrap_key -i plaintext/input.png -o encrypted/input.png

echo "== Change Manifest File (workload author): sign it, get its measurement"
sed "s/localhost:4433/localhost:$PORT/" "$here/classify.toml" > classify.toml
ward sign keygen -o signer.pem
ward sign --key signer.pem classify.toml | tee sign.out

echo "== Run Privacy-Preserving Inference"
# The data owner's policy: the simulated platform (development only) and the signed measurement.
{ grep -E '^(allow_simulated|simulated_platform_keys)' provision/policy.toml
  sed -n '/^\[\[identity\]\]/,$p' sign.out; } > policy.toml
ward provision serve --secret wrap_key=provision/secrets/wrap_key --policy policy.toml \
  --cert provision/server.pem --key provision/server-key.pem \
  --audit-log provision/audit.jsonl --listen "127.0.0.1:$PORT" > server.log 2>&1 &
server_pid=$!
for _ in $(seq 50); do grep -q "listening on" server.log 2>/dev/null && break; sleep 0.1; done
ward run classify.signed.toml --sim-key provision/sim-platform.pem --receipt receipt.json

echo "== Decrypt the Output File (data owner)"
# -V: the file must be bound to the path it is read from; --receipt: it must be the result this
# run committed (signed by the attested workload), and --audit-log: that run must be the latest
# one the data owner's server granted the key to. A substituted or older result is refused.
ward pf decrypt -w provision/secrets/wrap_key -i encrypted/result.txt -o plaintext/result.txt -V \
  --receipt receipt.json --policy policy.toml --audit-log provision/audit.jsonl
cat plaintext/result.txt

# The check: the shipped photo is a cat (ImageNet classes 281-285 are cats), and the host's copy
# of the result is ciphertext.
first=$(head -n 1 plaintext/result.txt)
case "$first" in
  *"tiger cat"*|*"tabby"*|*"Egyptian cat"*|*"Persian cat"*|*"Siamese cat"*) ;;
  *) echo "FAIL: expected a cat class first, got: $first" >&2; exit 1 ;;
esac
if grep -qa "tiger cat" encrypted/result.txt; then echo "FAIL: result.txt is not encrypted" >&2; exit 1; fi
grep -q '"granted"' provision/audit.jsonl
echo "PASS: the protected workload classified the photo as: $first"
