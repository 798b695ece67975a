#!/usr/bin/env bash
# Confined execution (`ward run` of your own program: namespaces + a FUSE view of the manifest)
# against the same program run natively, same inputs, in one run:
#  1. start-up: a Python script that does nothing, and ward's own boot time;
#  2. `import numpy`: site-packages trusted (a tree, lazily verified) vs allowed (unverified);
#  3. ONNX Runtime classification (examples/python), 1 image and 100 images, protected files
#     (the confined results must decrypt to the native ones, byte for byte);
#  4. reading a 1 GiB protected file through an encrypted mount vs `ward pf decrypt`, and a
#     1 GiB trusted file (a tree) vs dd;
#  5. ward's own peak RSS while a confined program reads 1 GiB (protected, then trusted);
#  6. `ward sign` of a tree of 85,000 files vs sha256sum of the same files.
# Prints a Markdown table and the exact commands, for docs/PERFORMANCE.md; progress goes to
# stderr. Each row is the median of RUNS runs (BIG_RUNS for the 1 GiB and 85,000-file rows),
# baseline and ward interleaved, after one warm-up run of each.
#
#   scripts/bench-exec.sh [WORKDIR]   WARD=path/to/ward (built with cargo if unset); RUNS=5;
#                                     BIG_RUNS=3; VENV=dir with onnxruntime, numpy and pillow
#                                     (made with pip if missing)
# Needs root and /dev/fuse. Uses ~2.2 GB of disk at most; the large files are removed at the end.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
RUNS="${RUNS:-5}"
BIG_RUNS="${BIG_RUNS:-3}"
if [[ -z "${WARD:-}" ]]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p ward
  WARD="$repo/target/release/ward"
fi
WARD="$(realpath "$WARD")"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
work="$(realpath "$work")"
cd "$work"
mkdir -p .bin
# A copy: manifests are signed for (measured with) this very binary, which a rebuild during the
# run would otherwise replace.
rm -f .bin/ward && cp "$WARD" .bin/ward
export PATH="$work/.bin:$PATH"

server_pid=""
scratch=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work/big" "$work/bigenc" "$work/apps/readtrusted" "$work/tree" ${scratch:+"$scratch"}
}
trap cleanup EXIT

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
# "$@" with its output shown only if it fails.
quiet() { "$@" >quiet.log 2>&1 || { cat quiet.log >&2; die "$*"; }; }

# The median of the numbers on stdin, one a line.
median() {
  sort -g | awk '{a[NR] = $1} END {if (NR == 0) exit 1
    printf "%.3f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

# Seconds taken by "$@" (its stdout to /dev/null, its stderr to last.err); fails if it fails.
seconds() {
  local start=$EPOCHREALTIME
  "$@" >/dev/null 2>last.err || { cat last.err >&2; die "$*"; }
  awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.4f\n", b - a}'
}

# bench N ARRAY... : runs the commands held in the named arrays N times each, interleaved (so
# that all see the same machine), after one warm-up run of each; prints their median seconds,
# space-separated. Every "booted in Nms" ward printed goes to boot.ms, one a line.
bench() {
  local n=$1 name c i; shift
  : > boot.ms
  for name; do c="$name[@]"; seconds "${!c}" >/dev/null; : > "times.$name"; done
  for i in $(seq "$n"); do
    for name; do
      c="$name[@]"
      seconds "${!c}" >> "times.$name"
      { grep -o 'booted in [0-9]*ms' last.err || true; } | { grep -o '[0-9]*' || true; } >> boot.ms
    done
  done
  for name; do median < "times.$name"; done | paste -sd ' '
}

# Peak RSS (VmHWM, MiB) of the ward process running "$@": ward's own (its FUSE server lives
# there), not its sandbox supervisor's nor the program's.
ward_peak_mib() {
  "$@" >/dev/null 2>last.err &
  local pid=$! hwm=0 kb
  while kill -0 "$pid" 2>/dev/null; do
    kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n "$kb" ]] && hwm=$kb
    sleep 0.02
  done
  wait "$pid" || { cat last.err >&2; die "$*"; }
  awk -v k="$hwm" 'BEGIN {printf "%.1f\n", k / 1024}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", a / b}'; }
gbps() { awk -v bytes="$1" -v s="$2" 'BEGIN {printf "%.2f", bytes / s / 1e9}'; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# A Python manifest for the venv's interpreter (ward manifest python's report to manifest.log).
manifest() { quiet ward manifest python --python "$PY" "$@"; cp quiet.log manifest.log; }
# Sign NAME.toml; the policy snippet goes to NAME.sign.out.
sign() { quiet ward sign --key signer.pem "$1.toml"; cp quiet.log "$1.sign.out"; }

rows=()
row() { rows+=("| $1 | $2 | $3 | $4 |"); }
commands=()
cmd() { commands+=("$*"); }

log "working in $work"
VENV="${VENV:-$work/venv}"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import onnxruntime, numpy, PIL" 2>/dev/null; then
  log "a venv with ONNX Runtime, numpy and Pillow: $VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check onnxruntime numpy pillow
fi
PY="$VENV/bin/python"
sim=(--sim-key provision/sim-platform.pem)

log "inputs: model, labels, images (1 and 100), plain and protected"
rm -rf provision signer.pem plaintext enc results apps big bigenc tree
quiet ward provision init --dir provision   # also makes the simulated platform key
quiet ward sign keygen -o signer.pem
key=provision/secrets/wrap_key
m="$repo/models"
mkdir -p plaintext/images results apps/start apps/numpy apps/classify apps/read
cp "$m/efficientnet-lite0/model.onnx" "$m/efficientnet-lite0/labels.txt" plaintext/
cp "$m/images/chelsea.png" plaintext/input.png
for i in $(seq -w 0 99); do
  if (( 10#$i % 2 )); then cp "$m/images/coffee.png" "plaintext/images/img-$i.png"
  else cp "$m/images/chelsea.png" "plaintext/images/img-$i.png"; fi
done
for f in model.onnx labels.txt input.png; do
  quiet ward pf encrypt -w $key -i "plaintext/$f" -o "enc/$f"
done
quiet ward pf encrypt -w $key -i plaintext/images -o enc/images

echo "pass" > apps/start/nothing.py
echo "import numpy" > apps/numpy/import_numpy.py
cp "$repo/examples/python/classify.py" "$repo/examples/python/classify_many.py" apps/classify/
cat > apps/read/read.py <<'PY'
import sys
n = 0
with open(sys.argv[1], "rb", buffering=0) as f:
    while block := f.read(1 << 20):
        n += len(block)
print(n)
PY

log "manifests, signed"
port=$(free_port)
prov=(--server "127.0.0.1:$port" --ca provision/ca.pem)
manifest -o start.toml apps/start/nothing.py
manifest --site-packages -o numpy-trusted.toml apps/numpy/import_numpy.py
# The same manifest with the venv's lib/ (site-packages) allowed, unchecked, instead of trusted.
# (The generator writes the venv's URIs relative to the working directory when it is beneath it.)
venv_uri=$(realpath --relative-base="$work" "$VENV")
venv_lib=$(grep "^    \"file:$venv_uri/lib/" numpy-trusted.toml | tr -d ' \n' | sed 's/,$//') \
  || die "no entry for $venv_uri/lib in numpy-trusted.toml"
sed -e "\|^    \"file:$venv_uri/lib/|d" -e "s|^allowed_files = \[\]|allowed_files = [$venv_lib]|" \
  numpy-trusted.toml > numpy-allowed.toml
grep -q "^allowed_files = \[\"file:$venv_uri/lib/" numpy-allowed.toml || die "could not allow $venv_lib"
enc=(--encrypted /data=file:enc --encrypted /results=file:results "${prov[@]}")
manifest --site-packages "${enc[@]}" -o classify1.toml apps/classify/classify.py \
  /data/model.onnx /data/labels.txt /data/input.png /results/result.txt
manifest --site-packages "${enc[@]}" -o classify100.toml apps/classify/classify_many.py \
  /data/model.onnx /data/labels.txt /data/images /results/many.txt
manifest --encrypted /big=file:bigenc "${prov[@]}" -o read-protected.toml apps/read/read.py /big/big.bin
for t in start numpy-trusted numpy-allowed classify1 classify100 read-protected; do sign "$t"; done

log "provisioning server on 127.0.0.1:$port"
{ grep -E '^(allow_simulated|simulated_platform_keys)' provision/policy.toml
  for t in classify1 classify100 read-protected; do sed -n '/^\[\[identity\]\]/,$p' "$t.sign.out"; done
} > policy.toml
ward provision serve --secret wrap_key=$key --policy policy.toml --cert provision/server.pem \
  --key provision/server-key.pem --audit-log provision/audit.jsonl --listen "127.0.0.1:$port" \
  > server.log 2>&1 &
server_pid=$!
for _ in $(seq 50); do grep -q "listening on" server.log 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" server.log || { cat server.log >&2; die "the provisioning server did not start"; }

log "1. start-up ($RUNS runs each)"
native=("$PY" apps/start/nothing.py)
confined=(ward run start.signed.toml "${sim[@]}")
read -r n c < <(bench "$RUNS" native confined)
boot=$(median < boot.ms | awk '{printf "%.3f", $1 / 1000}')
json=$(for _ in $(seq "$RUNS"); do
  "${confined[@]}" --json 2>/dev/null | tail -1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["seconds"])'
done | median)
row "start-up: a script that does nothing (s)" "$n" "$c" "$(ratio "$c" "$n")"
row "… ward's boot, its \"booted in\" (s)" "—" "$boot" ""
row "… \`ward run --json\` \"seconds\" (s)" "—" "$json" ""
cmd "$PY apps/start/nothing.py   # apps/start/nothing.py: pass"
cmd "ward manifest python --python $PY -o start.toml apps/start/nothing.py; ward sign --key signer.pem start.toml"
cmd "ward run start.signed.toml ${sim[*]} [--json]"

log "2. import numpy ($RUNS runs each)"
native=("$PY" apps/numpy/import_numpy.py)
trusted=(ward run numpy-trusted.signed.toml "${sim[@]}")
allowed=(ward run numpy-allowed.signed.toml "${sim[@]}")
read -r n t a < <(bench "$RUNS" native trusted allowed)
row "\`import numpy\`, site-packages trusted (s)" "$n" "$t" "$(ratio "$t" "$n")"
row "\`import numpy\`, site-packages allowed: unverified (s)" "$n" "$a" "$(ratio "$a" "$n")"
cmd "$PY apps/numpy/import_numpy.py   # import numpy"
cmd "ward manifest python --python $PY --site-packages -o numpy-trusted.toml apps/numpy/import_numpy.py"
cmd "# numpy-allowed.toml: numpy-trusted.toml with $venv_lib moved from sgx.trusted_files to sgx.allowed_files"
cmd "ward run numpy-trusted.signed.toml ${sim[*]}; ward run numpy-allowed.signed.toml ${sim[*]}"

log "3. ONNX Runtime classification, 1 and 100 images ($RUNS runs each)"
native=("$PY" apps/classify/classify.py plaintext/model.onnx plaintext/labels.txt plaintext/input.png
  plaintext/result.txt)
confined=(ward run classify1.signed.toml "${sim[@]}")
read -r n c < <(bench "$RUNS" native confined)
row "classify 1 image, protected (s)" "$n" "$c" "$(ratio "$c" "$n")"
native=("$PY" apps/classify/classify_many.py plaintext/model.onnx plaintext/labels.txt plaintext/images
  plaintext/many.txt)
confined=(ward run classify100.signed.toml "${sim[@]}")
read -r n c < <(bench "$RUNS" native confined)
row "classify 100 images, protected (s)" "$n" "$c" "$(ratio "$c" "$n")"
for r in result many; do
  quiet ward pf decrypt -w $key -i "results/$r.txt" -o "plaintext/confined-$r.txt" -V
  cmp -s "plaintext/$r.txt" "plaintext/confined-$r.txt" \
    || die "the confined results/$r.txt does not decrypt to the native plaintext/$r.txt"
  ! grep -qa "tiger cat" "results/$r.txt" || die "results/$r.txt is not encrypted"
done
[[ $(wc -l < plaintext/many.txt) == 100 ]] || die "plaintext/many.txt has not 100 lines"
cmd "$PY apps/classify/classify.py plaintext/{model.onnx,labels.txt,input.png,result.txt}"
cmd "$PY apps/classify/classify_many.py plaintext/model.onnx plaintext/labels.txt plaintext/images plaintext/many.txt"
cmd "ward pf encrypt -w $key -i plaintext/images -o enc/images   # model.onnx, labels.txt, input.png: one by one"
cmd "ward manifest python --python $PY --site-packages --encrypted /data=file:enc --encrypted /results=file:results --server 127.0.0.1:PORT --ca provision/ca.pem -o classify100.toml apps/classify/classify_many.py /data/model.onnx /data/labels.txt /data/images /results/many.txt   # classify1.toml: likewise"
cmd "ward run classify1.signed.toml ${sim[*]}; ward run classify100.signed.toml ${sim[*]}   # then ward pf decrypt -V results/*.txt, cmp with the native ones"

log "4. 1 GiB of random bytes: plain, protected, and as a trusted tree ($BIG_RUNS runs each)"
size=$((1 << 30))
mkdir -p big apps/readtrusted
head -c $size /dev/urandom > big/big.bin
quiet ward pf encrypt -w $key -i big/big.bin -o bigenc/big.bin
cp apps/read/read.py apps/readtrusted/read.py
ln big/big.bin apps/readtrusted/big.bin
manifest -o read-trusted.toml apps/readtrusted/read.py /app/big.bin
sign read-trusted
sync   # no writeback of the new files while timing
dd=(dd if=big/big.bin of=/dev/null bs=1M)
# Decrypted into tmpfs (no disk writes), never `-o /dev/null`: ward writes a new file and renames
# it into place, which older versions did over /dev/null itself (as root).
scratch=$(mktemp -d "$([[ -d /dev/shm ]] && echo /dev/shm || echo "$work")/ward-bench.XXXXXX")
decrypted="$scratch/big.bin"
decrypt=(ward pf decrypt -w $key -i bigenc/big.bin -o "$decrypted")
protected=(ward run read-protected.signed.toml "${sim[@]}")
trusted=(ward run read-trusted.signed.toml "${sim[@]}")
read -r d p c t < <(bench "$BIG_RUNS" dd decrypt protected trusted)
row "1 GiB plain file, \`dd bs=1M\` to /dev/null (s)" "$d" "—" ""
row "1 GiB protected file: \`ward pf decrypt\` into tmpfs vs a confined read (s)" "$p" "$c" "$(ratio "$c" "$p")"
row "… GB/s (target: confined ≥ 0.5× pf decrypt)" "$(gbps $size "$p")" "$(gbps $size "$c")" "$(ratio "$p" "$c")"
row "1 GiB trusted file (in a tree): dd vs a confined read (s)" "$d" "$t" "$(ratio "$t" "$d")"
row "… GB/s" "$(gbps $size "$d")" "$(gbps $size "$t")" "$(ratio "$d" "$t")"
cmd "head -c 1GiB /dev/urandom > big/big.bin; dd if=big/big.bin of=/dev/null bs=1M"
cmd "ward pf encrypt -w $key -i big/big.bin -o bigenc/big.bin; ward pf decrypt -w $key -i bigenc/big.bin -o /dev/shm/ward-bench.XXXXXX/big.bin"
cmd "ward manifest python --python $PY --encrypted /big=file:bigenc --server 127.0.0.1:PORT --ca provision/ca.pem -o read-protected.toml apps/read/read.py /big/big.bin   # read.py: reads argv[1] in 1 MiB blocks"
cmd "ward manifest python --python $PY -o read-trusted.toml apps/readtrusted/read.py /app/big.bin   # apps/readtrusted/big.bin: the same 1 GiB, in the (trusted) script directory"
cmd "ward run read-protected.signed.toml ${sim[*]}; ward run read-trusted.signed.toml ${sim[*]}"

log "5. ward's peak memory while a confined program reads 1 GiB"
row "ward's peak RSS, a confined read of 1 GiB protected (MiB; target ≤ 64)" "—" "$(ward_peak_mib "${protected[@]}")" ""
row "ward's peak RSS, a confined read of 1 GiB trusted (MiB; target ≤ 64)" "—" "$(ward_peak_mib "${trusted[@]}")" ""
cmd "# VmHWM in /proc/PID/status of the \`ward run\` process (not its sandbox's), polled every 20 ms"
rm -rf big bigenc apps/readtrusted ${scratch:+"$scratch"}

log "6. signing 85,000 files ($BIG_RUNS runs each)"
python3 - <<'PY'
import os, random
rng = random.Random(85000)
for d in range(850):
    os.makedirs(f"tree/d{d:03}")
    for f in range(100):
        with open(f"tree/d{d:03}/f{f:02}", "wb") as out:
            out.write(rng.randbytes(rng.randint(2048, 20480)))
PY
sync
files=$(find tree -type f | wc -l)
mb=$(du -sm --apparent-size tree | cut -f1)
cat > tree.toml <<'TOML'
[loader]
entrypoint = "ward:checksum"
argv = ["--output", "/tree/sums.txt", "/tree/d000/f00"]

[[fs.mounts]]
path = "/tree"
uri = "file:tree"

[sgx]
trusted_files = ["file:tree/"]
TOML
sha256sum_tree() { find tree -type f -print0 | xargs -0 sha256sum > /dev/null; }
sums=(sha256sum_tree)
signing=(ward sign --key signer.pem tree.toml)
read -r s g < <(bench "$BIG_RUNS" sums signing)
row "a tree of $files files ($mb MB): sha256sum vs \`ward sign\` (s)" "$s" "$g" "$(ratio "$g" "$s")"
row "… sizes: signed manifest / its sidecar \`tree.signed.trees\`" "—" \
  "$(stat -c %s tree.signed.toml tree.signed.trees | paste -sd ' ' | awk '{printf "%.1f KiB / %.1f MiB", $1 / 1024, $2 / 1048576}')" ""
cmd "find tree -type f -print0 | xargs -0 sha256sum > /dev/null   # 850 directories × 100 files of 2–20 KiB"
cmd "ward sign --key signer.pem tree.toml   # trusted_files = [\"file:tree/\"], loader.entrypoint = \"ward:checksum\""
rm -rf tree

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "Medians of $RUNS runs (1 GiB and 85,000-file rows: $BIG_RUNS), baseline and ward interleaved, after one warm-up; $(nproc) cores ($cpu), Linux $(uname -r), $(ward --version), simulated TEE, Python $("$PY" -c 'import platform; print(platform.python_version())') in a venv."
echo
echo "| what | baseline | ward | ratio |"
echo "|---|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "Commands (in the work directory):"
echo
echo '```sh'
printf '%s\n' "${commands[@]}"
echo '```'
