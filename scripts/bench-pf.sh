#!/usr/bin/env bash
# Whole-file protected-file throughput, measured in one run against two baselines on the same
# machine: `openssl speed` (the AES-128-GCM limit of one core, data in cache) and `dd` copying the
# same file (the cost of reading and writing it at all). Prints a markdown table for
# docs/PERFORMANCE.md.
#
#   scripts/bench-pf.sh [SIZE_MIB]        (default 1024; files live in $BENCH_DIR or /dev/shm)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
dir=$(mktemp -d "${BENCH_DIR:-/dev/shm}/ward-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
runs=${RUNS:-3}

cargo build --release -q -p ward
ward=target/release/ward
bytes=$((size_mib * 1048576))

head -c "$bytes" /dev/urandom > "$dir/plain"
"$ward" pf keygen -o "$dir/key" 2>/dev/null
"$ward" pf keygen -o "$dir/key2" 2>/dev/null
head -c 4096 /dev/urandom > "$dir/small"

# Best wall time of $runs runs, in seconds; the output file is removed before each run so that
# every run writes a fresh file.
best() {
    local out=$1; shift
    local best=
    for _ in $(seq "$runs"); do
        rm -f "$out"
        local t0 t1
        t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N)
        best=$(python3 -c "t=$t1-$t0; b='$best'; print(min(t, float(b)) if b else t)")
    done
    echo "$best"
}
rss_kib() { # peak RSS of one run, KiB
    local out=$1; shift
    rm -f "$out"
    /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1
}
gbps() { python3 -c "print(f'{$bytes/$1/1e9:.2f}')"; }

ossl_kbs=$(openssl speed -evp aes-128-gcm -bytes 4096 -seconds 3 2>/dev/null | awk '/^AES-128-GCM/ {print $2}' | tr -d k)
ossl=$(python3 -c "print(f'{$ossl_kbs*1000/1e9:.2f}')")
ratio() { python3 -c "print(f'{$1/$ossl:.2f}')"; }

t_dd=$(best "$dir/copy" dd if="$dir/plain" of="$dir/copy" bs=4M status=none)
"$ward" pf encrypt -w "$dir/key" -i "$dir/plain" -o "$dir/ref.pf" 2>/dev/null

row() { # label seconds
    local g; g=$(gbps "$2")
    printf '| %s | %.3f s | %s GB/s | %s× |\n' "$1" "$2" "$g" "$(ratio "$g")"
}

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); files in ${BENCH_DIR:-/dev/shm}; ${size_mib} MiB; best of $runs runs"
echo
echo "| operation | time | throughput | vs openssl |"
echo "|---|---|---|---|"
echo "| openssl speed -evp aes-128-gcm -bytes 4096 (1 core, in cache) | | $ossl GB/s | 1.00× |"
row "dd bs=4M (copy the file, no crypto)" "$t_dd"
for t in 1 0; do
    label=$([ "$t" = 1 ] && echo "1 thread" || echo "all cores")
    row "ward pf encrypt --no-verify, $label" "$(best "$dir/x.pf" "$ward" pf encrypt -w "$dir/key" -i "$dir/plain" -o "$dir/x.pf" --no-verify --threads "$t")"
    row "ward pf encrypt (write + verify), $label" "$(best "$dir/x.pf" "$ward" pf encrypt -w "$dir/key" -i "$dir/plain" -o "$dir/x.pf" --threads "$t")"
    row "ward pf decrypt, $label" "$(best "$dir/x.out" "$ward" pf decrypt -w "$dir/key" -i "$dir/ref.pf" -o "$dir/x.out" --threads "$t")"
    row "ward pf verify (read + authenticate, no output), $label" "$(best "$dir/none" "$ward" pf verify -w "$dir/key" -i "$dir/ref.pf" --threads "$t")"
done
echo
echo "Peak RSS: decrypt $(rss_kib "$dir/x.out" "$ward" pf decrypt -w "$dir/key" -i "$dir/ref.pf" -o "$dir/x.out") KiB, encrypt $(rss_kib "$dir/x.pf" "$ward" pf encrypt -w "$dir/key" -i "$dir/plain" -o "$dir/x.pf") KiB, verify $(rss_kib "$dir/none" "$ward" pf verify -w "$dir/key" -i "$dir/ref.pf") KiB"

# Rewrap: in place, alternating keys so every run really rotates; median of 21 runs each.
"$ward" pf encrypt -w "$dir/key" -i "$dir/small" -o "$dir/small.pf" 2>/dev/null
rewrap_median() {
    local f=$1 a=$dir/key b=$dir/key2 ts=()
    for _ in $(seq 21); do
        local t0 t1
        t0=$(date +%s.%N); "$ward" pf rewrap -w "$a" --new-key "$b" -i "$f" 2>/dev/null; t1=$(date +%s.%N)
        ts+=("$(python3 -c "print($t1-$t0)")")
        local tmp=$a; a=$b; b=$tmp
    done
    printf '%s\n' "${ts[@]}" | sort -g | sed -n 11p
}
r_big=$(rewrap_median "$dir/ref.pf")
r_small=$(rewrap_median "$dir/small.pf")
python3 -c "print(f'Rewrap in place (median of 21, whole process incl. fsync): {$size_mib} MiB file {$r_big*1e3:.2f} ms, 4 KiB file {$r_small*1e3:.2f} ms, ratio {$r_big/$r_small:.2f}×')"
