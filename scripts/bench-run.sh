#!/usr/bin/env bash
# The cost of the protected path, whole processes, measured in one run:
#  - `ward run` (verify the signed manifest, hash its own binary, attest on the simulated TEE,
#    fetch the key over RA-TLS from a local provisioning server, decrypt model, labels and image
#    through the VFS, classify, write an encrypted result.txt) against `ward classify` on the
#    same plain files (load, classify, print);
#  - throughput on a directory of 100 protected images, one `ward run`, against `ward classify`
#    on the same 100 plain images.
# Prints a markdown table (medians of RUNS runs, after one warm-up).
#
#   scripts/bench-run.sh          RUNS=20 by default;  WARD_BIN=path/to/ward to skip the build
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
RUNS=${RUNS:-20}
if [[ -z "${WARD_BIN:-}" ]]; then
  cargo build --release -q --manifest-path "$repo/Cargo.toml" -p ward
  WARD_BIN="$repo/target/release/ward"
fi
W="$(realpath "$WARD_BIN")"
work="$(mktemp -d)"
server_pid=""
cleanup() { [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
q() { "$W" "$@" >/dev/null 2>&1; }

m="$repo/models"
mkdir -p plaintext/images app
cp "$m/efficientnet-lite0/model.onnx" "$m/efficientnet-lite0/labels.txt" plaintext/
cp "$m/images/chelsea.png" plaintext/input.png
cp "$m/efficientnet-lite0/model.toml" app/
for i in $(seq -w 0 99); do
  if (( 10#$i % 2 )); then cp "$m/images/coffee.png" "plaintext/images/img-$i.png"
  else cp "$m/images/chelsea.png" "plaintext/images/img-$i.png"; fi
done
q provision init --dir provision
key=provision/secrets/wrap_key
for f in model.onnx labels.txt input.png; do q pf encrypt -w $key -i plaintext/$f -o encrypted/$f; done
q pf encrypt -w $key -i plaintext/images -o encrypted/images
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

manifest() { # $1 = image arguments, $2 = output
  cat <<TOML
[loader]
entrypoint = "ward:classify"
argv = ["--model", "/protected/model.onnx", "--labels", "/protected/labels.txt", $1,
        "--spec", "/app/model.toml", "--output", "$2"]
[[fs.mounts]]
type = "encrypted"
path = "/protected"
uri = "file:encrypted"
[[fs.mounts]]
path = "/app"
uri = "file:app"
[sgx]
trusted_files = ["file:app/"]
[provision]
servers = ["127.0.0.1:$port"]
ca_chain = "file:provision/ca.pem"
secrets = [{ name = "wrap_key", key_name = "default" }]
TOML
}
manifest '"--image", "/protected/input.png"' /protected/result.txt > one.toml
manifest '"--image-dir", "/protected/images"' /protected/many.txt > many.toml
q sign keygen -o signer.pem
"$W" sign --key signer.pem one.toml > one.out 2>/dev/null
"$W" sign --key signer.pem many.toml > many.out 2>/dev/null
{ grep -E '^(allow_simulated|simulated_platform_keys)' provision/policy.toml
  sed -n '/^\[\[identity\]\]/,$p' one.out; sed -n '/^\[\[identity\]\]/,$p' many.out; } > policy.toml
"$W" provision serve --secret wrap_key=$key --policy policy.toml --cert provision/server.pem \
  --key provision/server-key.pem --audit-log provision/audit.jsonl --listen 127.0.0.1:$port 2>server.log &
server_pid=$!
for _ in $(seq 50); do grep -q "listening on" server.log 2>/dev/null && break; sleep 0.1; done

# median wall time in ms of "$@" over RUNS runs (after one warm-up run that must succeed)
median_ms() {
  local n=$1; shift
  "$@" >/dev/null 2>warm.err || { cat warm.err >&2; exit 1; }
  local t=()
  for _ in $(seq "$n"); do
    local s=$(date +%s%N); "$@" >/dev/null 2>&1; local e=$(date +%s%N)
    t+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'
}
sim=(--sim-key provision/sim-platform.pem)
plain=(classify --model plaintext/model.onnx --labels plaintext/labels.txt --spec app/model.toml)
c1=$(median_ms "$RUNS" "$W" "${plain[@]}" --image plaintext/input.png)
r1=$(median_ms "$RUNS" "$W" run one.signed.toml "${sim[@]}")
imgs=(); for f in plaintext/images/*.png; do imgs+=(--image "$f"); done
n100=$(( RUNS / 4 > 3 ? RUNS / 4 : 3 ))
c100=$(median_ms "$n100" "$W" "${plain[@]}" "${imgs[@]}")
r100=$(median_ms "$n100" "$W" run many.signed.toml "${sim[@]}")
"$W" run one.signed.toml "${sim[@]}" -v 2>&1 | grep timings >&2 || true
"$W" pf decrypt -w $key -i encrypted/many.txt -o many.txt >/dev/null 2>&1
grep -c "tiger cat\|espresso" many.txt >/dev/null

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", a / b}'; }
ips() { awk -v t="$1" 'BEGIN {printf "%.1f", 100000 / t}'; }
echo "| whole process ($(nproc) cores, medians) | ward classify (plain files) | ward run (protected, sim TEE) | ratio |"
echo "|---|---:|---:|---:|"
echo "| one image: ms | $c1 | $r1 | $(ratio "$r1" "$c1") |"
echo "| 100 images: ms | $c100 | $r100 | $(ratio "$r100" "$c100") |"
echo "| 100 images: images/s | $(ips "$c100") | $(ips "$r100") | |"
