#!/usr/bin/env bash
# Interoperability check: ward's protected files against an independent implementation of the
# format (scripts/pf_reference.py, written from the format description only).
#
#   scripts/interop-check.sh                   build ward, check both directions
#   scripts/interop-check.sh --reference-only  check pf_reference.py alone (no ward needed)
#
# For each plaintext size (default: 0 1 3072 3073 100000 13000000; override with SIZES="..."):
#   ward pf encrypt  -> pf_reference.py decrypt --path BOUND --strict -> cmp
#   pf_reference.py encrypt -> ward pf decrypt -V -> cmp
# plus a few negative checks (renamed file, flipped byte, wrong key must all be refused), and, as a
# sanity check of the reference itself, Gramine's own test vectors through pf_reference.py.
# Prints one summary line; exits non-zero on the first failure (with the failing step's output).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ref="$root/scripts/pf_reference.py"
vectors="$root/crates/ward-pf/tests/data/gramine"
py="${PYTHON:-python3}"
read -r -a sizes <<<"${SIZES:-0 1 3072 3073 100000 13000000}"

reference_only=0
case "${1:-}" in
--reference-only) reference_only=1 ;;
"") ;;
*)
    echo "usage: $0 [--reference-only]" >&2
    exit 2
    ;;
esac

tmp="$(mktemp -d "${TMPDIR:-/tmp}/interop-check.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
step="setup"
trap 'echo "interop-check: FAILED at: $step" >&2' ERR

checks=0
# run DESCRIPTION CMD...: runs CMD quietly; on failure shows its output and stops.
run() {
    step="$1"
    shift
    if ! "$@" >"$tmp/log" 2>&1; then
        echo "interop-check: FAILED at: $step" >&2
        echo "  command: $*" >&2
        sed 's/^/  | /' "$tmp/log" >&2
        trap - ERR
        exit 1
    fi
    checks=$((checks + 1))
}
# refuse DESCRIPTION REASON CMD...: CMD must fail, with REASON (an extended regex, matched
# case-insensitively) in its output, so that a usage error cannot pass for a refusal.
refuse() {
    step="$1"
    local reason="$2"
    shift 2
    if "$@" >"$tmp/log" 2>&1; then
        echo "interop-check: FAILED at: $step (accepted, should have been refused)" >&2
        echo "  command: $*" >&2
        trap - ERR
        exit 1
    fi
    if ! grep -Eqi -- "$reason" "$tmp/log"; then
        echo "interop-check: FAILED at: $step (refused, but not for /$reason/)" >&2
        echo "  command: $*" >&2
        sed 's/^/  | /' "$tmp/log" >&2
        trap - ERR
        exit 1
    fi
    checks=$((checks + 1))
}

step="python cryptography package"
if ! "$py" -c 'import cryptography' 2>/dev/null; then
    "$py" -m pip install --quiet --disable-pip-version-check cryptography >&2
fi

ward=""
if [ "$reference_only" = 0 ]; then
    step="cargo build --release -p ward"
    (cd "$root" && cargo build --release -p ward --quiet)
    ward="${CARGO_TARGET_DIR:-$root/target}/release/ward"
    [ -x "$ward" ] || {
        echo "interop-check: FAILED: $ward not built" >&2
        exit 1
    }
fi

# Relative paths throughout, so bound paths are short and relative like Gramine's.
cd "$tmp"
mkdir -p sub
head -c 16 /dev/urandom >key
head -c 16 /dev/urandom >otherkey

# The reference against Gramine's own output (every node, the path check, both versions).
while read -r cipher bound plain; do
    run "reference decrypts Gramine vector $cipher" \
        "$py" "$ref" decrypt -q --strict "$vectors/wrap_key.bin" "$vectors/$cipher" gramine.out --path "$bound"
    run "Gramine vector $cipher plaintext" cmp gramine.out "$vectors/plaintext/$plain"
done <<'EOF'
encrypted/empty.pf empty.pf empty.bin
encrypted/one_byte.pf one_byte.pf one_byte.bin
encrypted/size_3000.pf size_3000.pf size_3000.bin
encrypted/size_4096.pf size_4096.pf size_4096.bin
encrypted/size_100000.pf size_100000.pf size_100000.bin
encrypted/data/model.pt ./data/../data/model.pt size_3000.bin
encrypted_v1/one_byte_v1.pf one_byte_v1.pf one_byte.bin
EOF
refuse "reference refuses a Gramine vector under another path" "path check failed" \
    "$py" "$ref" decrypt -q "$vectors/wrap_key.bin" "$vectors/encrypted/size_3000.pf" x.out --path renamed.pf

for n in "${sizes[@]}"; do
    head -c "$n" /dev/urandom >"plain_$n"

    # reference -> reference (always; checks the reference's encryptor against its decryptor).
    run "reference encrypt, size $n" "$py" "$ref" encrypt -q key "plain_$n" "./sub/../rr_$n.pf"
    run "reference decrypt of its own output, size $n" \
        "$py" "$ref" decrypt -q --strict key "rr_$n.pf" "rr_$n.out" --path "rr_$n.pf"
    run "reference round trip, size $n" cmp "plain_$n" "rr_$n.out"

    [ -n "$ward" ] || continue

    # ward -> reference: the bound path defaults to the normalised OUT path.
    run "ward pf encrypt, size $n" "$ward" pf encrypt -w key -i "plain_$n" -o "./sub/../ward_$n.pf"
    run "reference decrypts ward's output (path check, strict), size $n" \
        "$py" "$ref" decrypt -q --strict key "ward_$n.pf" "ward_$n.out" --path "ward_$n.pf"
    run "ward -> reference plaintext, size $n" cmp "plain_$n" "ward_$n.out"

    # reference -> ward: -V checks the bound path against the normalised IN path.
    run "reference encrypt for ward, size $n" "$py" "$ref" encrypt -q key "plain_$n" "ref_$n.pf"
    run "ward pf decrypt -V of the reference's output, size $n" \
        "$ward" pf decrypt -w key -i "./sub/../ref_$n.pf" -o "ref_$n.out" -V
    run "reference -> ward plaintext, size $n" cmp "plain_$n" "ref_$n.out"
    run "ward pf decrypt --path of the reference's output, size $n" \
        "$ward" pf decrypt -w key -i "ref_$n.pf" -o "ref_$n.out2" --path "ref_$n.pf"
    run "reference -> ward plaintext (--path), size $n" cmp "plain_$n" "ref_$n.out2"
done

# Negative checks: each implementation must refuse what the other would refuse.
n=100000
if [ -n "$ward" ] && [ -f "plain_$n" ]; then
    cp "ref_$n.pf" renamed.pf
    refuse "ward pf decrypt -V of a renamed file" "path" "$ward" pf decrypt -w key -i renamed.pf -o x.out -V
    refuse "ward pf decrypt with the wrong key" "metadata.*authentication" "$ward" pf decrypt -w otherkey -i "ref_$n.pf" -o x.out
    cp "ward_$n.pf" flipped.pf
    printf '\x01' | dd of=flipped.pf bs=1 seek=$((3 * 4096 + 100)) conv=notrunc status=none
    refuse "reference decrypt of ward output with a flipped data byte" "data node 1 .*tag mismatch" \
        "$py" "$ref" decrypt -q key flipped.pf x.out
    cp "ref_$n.pf" flipped.pf
    printf '\x01' | dd of=flipped.pf bs=1 seek=$((4096 + 7)) conv=notrunc status=none
    refuse "ward pf decrypt of reference output with a flipped MHT byte" "MHT node 0.*authentication" \
        "$ward" pf decrypt -w key -i flipped.pf -o x.out
    head -c -4096 "ref_$n.pf" >truncated.pf
    refuse "ward pf decrypt of a truncated file" "truncated" "$ward" pf decrypt -w key -i truncated.pf -o x.out
    refuse "reference decrypt of ward output under another path" "path check failed" \
        "$py" "$ref" decrypt -q key "ward_$n.pf" x.out --path renamed.pf
fi

trap - ERR
if [ -n "$ward" ]; then
    echo "interop-check: OK: ward <-> pf_reference.py, sizes ${sizes[*]}, both directions, $checks checks passed"
else
    echo "interop-check: OK (reference only, ward not built): sizes ${sizes[*]}, $checks checks passed"
fi
