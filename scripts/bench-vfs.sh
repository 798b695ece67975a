#!/usr/bin/env bash
# Trusted-file verification through the VFS, measured in one run against `sha256sum` on the same
# file (the cost of hashing it at all): open + read the whole file through the VFS in memory
# (hashed once at open) and chunked (hashed at open, each chunk hashed again as it is read back),
# and `Vfs::read`; then the same file as a protected file (streamed by `open`, decrypted whole into memory by
# `Vfs::read`). Prints a markdown table.
#
#   scripts/bench-vfs.sh [SIZE_MIB]     (default 1024; files live in $BENCH_DIR, /dev/shm, or target/)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
runs=${RUNS:-3}

# /dev/shm if it has room for the file (plus the encrypted copy), else target/.
need_kib=$(( (size_mib * 2 + 64) * 1024 ))
base=${BENCH_DIR:-}
if [ -z "$base" ]; then
    if [ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR==2 {print $4}')" -gt "$need_kib" ]; then
        base=/dev/shm
    else
        mkdir -p target
        base=target
    fi
fi
dir=$(mktemp -d "$base/ward-bench-vfs.XXXXXX")
trap 'rm -rf "$dir"' EXIT

cargo build --release -q -p ward-runtime --example vfs_verify
ex=target/release/examples/vfs_verify
bytes=$((size_mib * 1048576))
head -c "$bytes" /dev/urandom > "$dir/input"

# Best wall time of $runs runs of a command, in seconds.
best() {
    local best=
    for _ in $(seq "$runs"); do
        local t0 t1
        t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
        best=$(python3 -c "t=$t1-$t0; b='$best'; print(min(t, float(b)) if b else t)")
    done
    echo "$best"
}
# Best of $runs runs inside the example (setup, hashing or encrypting, is not timed).
best_vfs() {
    "$ex" "$dir/input" --runs "$runs" "$@" | sed -n 's/^best_seconds=\([0-9.]*\).*/\1/p'
}

t_sha=$(best sha256sum "$dir/input")
mbs() { python3 -c "print(f'{$bytes/$1/1e6:.0f}')"; }
ratio() { python3 -c "print(f'{$t_sha/$1:.2f}')"; }
row() { # label seconds
    printf '| %s | %.3f s | %s MB/s | %s× |\n' "$1" "$2" "$(mbs "$2")" "$(ratio "$2")"
}

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); file in $base; ${size_mib} MiB; best of $runs runs"
echo
echo "| open + read the whole file | time | throughput | vs sha256sum |"
echo "|---|---|---|---|"
row "sha256sum (coreutils)" "$t_sha"
row "VFS trusted file, open + read, in memory (hashed once at open)" "$(best_vfs)"
row "VFS trusted file, open + read, chunked (hashed at open, each 1 MiB chunk re-hashed as read)" "$(best_vfs --chunked)"
row "VFS trusted file, Vfs::read (whole file into memory)" "$(best_vfs --whole)"
row "VFS protected file, open + read (ProtectedFile, node by node, 1 thread)" "$(best_vfs --protected)"
row "VFS protected file, Vfs::read (ward_pf::decrypt_to_vec, all cores)" "$(best_vfs --protected --whole)"
