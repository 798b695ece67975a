#!/usr/bin/env bash
# The attested inference service on loopback against `ward classify` in one process, same
# images, same machine, one run:
#  1. baseline: `ward classify --image-dir` of N images (all cores, the model loaded once),
#     before and after the service rows (the machine is shared: the two say how much it drifted);
#     images/s without the model load (a one-image run's time is subtracted); ratios use the mean;
#  2. `ward client bench` against `ward serve` (the model a protected file, its key from a real
#     provisioning server on loopback) at 1, 8 and 64 concurrent clients, with keep-alive and
#     with a new attested connection per request: images/s, p50/p99 latency, connect+verify p50;
#  3. the server's peak RSS (VmHWM) after the 64-client runs, against its limits.
# Client and server share the machine's cores, as they would not in production: the figures are
# a floor for the service's throughput, and the ratio to `ward classify` says what HTTP, TLS and
# attestation cost on top of inference.
#
#   scripts/bench-serve.sh [WORKDIR]   WARD=path/to/ward (built with cargo if unset);
#                                      REQUESTS=640 (per row); IMAGES=256 (baseline images)
# Prints a Markdown table and the commands, for docs/PERFORMANCE.md; progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
REQUESTS="${REQUESTS:-640}"
IMAGES="${IMAGES:-256}"
if [[ -z "${WARD:-}" ]]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p ward
  WARD="$repo/target/release/ward"
fi
WARD="$(realpath "$WARD")"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
work="$(realpath "$work")"
cd "$work"
# A copy: the manifest is measured with this very binary.
mkdir -p .bin && rm -f .bin/ward && cp "$WARD" .bin/ward
ward=("$work/.bin/ward")
models="$repo/models/efficientnet-lite0"
photos=("$repo/models/images/chelsea.png" "$repo/models/images/coffee.png")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "setting up in $work" >&2
rm -rf srv encrypted app images ./*.toml ./*.signed.* signer.pem audit.jsonl
"${ward[@]}" provision init --dir srv >/dev/null
"${ward[@]}" sign keygen -o signer.pem >/dev/null
mkdir -p encrypted app images
cp "$models/model.toml" app/
for f in model.onnx labels.txt; do
  "${ward[@]}" pf encrypt -w srv/secrets/wrap_key -i "$models/$f" -o "encrypted/$f" >/dev/null
done
for i in $(seq 1 "$IMAGES"); do
  cp "${photos[$((i % ${#photos[@]}))]}" "images/$(printf %03d "$i").png"
done
port=$(free_port)
cat > serve.toml <<EOF
[loader]
entrypoint = "ward:serve"
argv = ["--model", "/model/model.onnx", "--labels", "/model/labels.txt", "--spec", "/app/model.toml"]

[[fs.mounts]]
type = "encrypted"
path = "/model"
uri = "file:encrypted"
key_name = "default"

[[fs.mounts]]
path = "/app"
uri = "file:app"

[sgx]
isv_prod_id = 3
isv_svn = 1
trusted_files = ["file:app/"]

[provision]
servers = ["127.0.0.1:$port"]
ca_chain = "file:srv/ca.pem"
secrets = [{ name = "model_key", key_name = "default" }]
EOF
measurement=$("${ward[@]}" sign --key signer.pem --json serve.toml 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["measurement"])')
sim_key_line=$(grep '^simulated_platform_keys' srv/policy.toml)
printf 'allow_simulated = true\n%s\n\n[[identity]]\nname = "service"\nmr_enclave = "%s"\nisv_prod_id = 3\n' \
  "$sim_key_line" "$measurement" > policy.toml
"${ward[@]}" provision serve --secret model_key=srv/secrets/wrap_key --policy policy.toml \
  --cert srv/server.pem --key srv/server-key.pem --audit-log audit.jsonl \
  --listen "127.0.0.1:$port" 2>provision.log &
pids+=($!)
sleep 0.5
coproc SERVE { exec "${ward[@]}" serve serve.signed.toml --listen 127.0.0.1:0 --sim-key srv/sim-platform.pem 2>serve.log; }
serve_pid=$SERVE_PID
pids+=("$serve_pid")
read -r -t 60 line <&"${SERVE[0]}" || { cat serve.log >&2; exit 1; }
server=${line#listening on }
echo "service at $server (pid $serve_pid)" >&2

# 1. Baseline: one process, all cores; images/s without the model load.
baseline() {
  local t0 t1 t2
  t0=$(date +%s.%N)
  "${ward[@]}" classify --model "$models/model.onnx" --labels "$models/labels.txt" \
    --spec "$models/model.toml" --image "${photos[0]}" >/dev/null
  t1=$(date +%s.%N)
  "${ward[@]}" classify --model "$models/model.onnx" --labels "$models/labels.txt" \
    --spec "$models/model.toml" --image-dir images >/dev/null
  t2=$(date +%s.%N)
  python3 -c "one=$t1-$t0; many=$t2-$t1; print(f'{($IMAGES-1)/max(many-one,1e-9):.1f}')"
}
echo "baseline: ward classify of $IMAGES images" >&2
base_before=$(baseline)
base_net=$base_before

bench() {
  "${ward[@]}" client bench --server "$server" --policy policy.toml \
    --image "${photos[0]}" --image "${photos[1]}" --clients "$1" --requests "$REQUESTS" --json $2
}
rss() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$serve_pid/status"; }
: > rows.jsonl
hwm_idle=$(rss)
for mode in "" "--new-connections"; do
  for clients in 1 8 64; do
    echo "bench: $clients client(s) ${mode:-keep-alive}" >&2
    bench "$clients" "$mode" >> rows.jsonl
    [[ $clients == 1 && -z $mode ]] && hwm_one=$(rss)
  done
done
hwm=$(rss)
kill "$serve_pid" 2>/dev/null || true
echo "baseline again" >&2
base_after=$(baseline)
base_rss=$( { /usr/bin/time -f '%M' "${ward[@]}" classify --model "$models/model.onnx" \
  --labels "$models/labels.txt" --spec "$models/model.toml" --image-dir images >/dev/null; } 2>&1 | tail -1)
python3 - "$base_before" "$base_after" <<'PY'
import json, sys
before, after = float(sys.argv[1]), float(sys.argv[2])
base = (before + after) / 2
print("| clients | connections | images/s | × `ward classify` | p50 ms | p99 ms | connect+verify p50 ms | errors |")
print("|---|---|---|---|---|---|---|---|")
for line in open("rows.jsonl"):
    s = json.loads(line)
    mode = "keep-alive" if s["keep_alive"] else "new per request"
    print(f"| {s['clients']} | {mode} | {s['images_per_s']:.1f} | {s['images_per_s'] / base:.2f} | "
          f"{s['p50_ms']:.1f} | {s['p99_ms']:.1f} | {s['connect_p50_ms']:.1f} | {s['errors']} |")
print()
print(f"`ward classify` baseline (the × column's): {base:.1f} images/s, the mean of {before:.1f} "
      f"before the rows and {after:.1f} after; all cores, model load excluded.")
PY
echo "Server peak RSS (VmHWM): $hwm_idle MiB after start-up, $hwm_one MiB after the 1-client row, $hwm MiB after all rows (limits: 256 connections, 16 MiB bodies, one worker per core); \`ward classify\` of the same $IMAGES images: $((base_rss / 1024)) MiB."
echo
echo "Commands: \`ward classify --image-dir images\` (baseline); \`ward client bench --server ADDR --policy policy.toml --image chelsea.png --image coffee.png --clients N --requests $REQUESTS [--new-connections]\` against \`ward serve serve.signed.toml\` (scripts/bench-serve.sh)."
