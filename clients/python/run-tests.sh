#!/usr/bin/env bash
# Builds the ward_client wheel in a fresh virtual environment, installs it, and runs its tests
# end to end against a built `ward` (CI runs this after `cargo build --release`).
#
#   clients/python/run-tests.sh [PYTEST ARGS...]
#
# WARD_BIN          the ward binary (default: <repo>/target/release/ward; a relative path is
#                   taken from the current directory)
# CARGO_TARGET_DIR  where the extension is compiled (default: clients/python/target)
# PYTHON            the interpreter of the venv (default: /usr/bin/python3)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${PYTHON:-/usr/bin/python3}
ward_bin=${WARD_BIN:-$repo/target/release/ward}
[[ $ward_bin == /* ]] || ward_bin=$PWD/$ward_bin
if [[ ! -x $ward_bin ]]; then
    echo "run-tests.sh: no ward binary at $ward_bin: run \`cargo build --release\` at the" \
        "repository root first, or set WARD_BIN" >&2
    exit 1
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}

work=$(mktemp -d "${TMPDIR:-/tmp}/ward-pyclient.XXXXXX")

seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
started=$EPOCHREALTIME
timings=()
current=""
phase_begin() { # phase_begin NAME [DETAIL]: a phase, timed until phase_end
    current=$1
    phase_start=$EPOCHREALTIME
    echo "--- $current${2:+ ($2)}"
}
phase_end() {
    timings+=("$(printf '%-24s %7s s' "$current" "$(seconds_since "$phase_start")")")
    current=""
}
report() {
    local status=$?
    [[ -z $current ]] || { current="$current (failed)"; phase_end; }
    echo "--- timings"
    printf '  %s\n' "${timings[@]}"
    printf '  %-24s %7s s\n' "total" "$(seconds_since "$started")"
    rm -rf "$work"
    exit "$status"
}
trap report EXIT

phase_begin "venv + pip install" "$python, in $work"
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "maturin>=1.5,<2" "pytest>=7"
phase_end

phase_begin "maturin build --release" "CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
(cd "$here" && "$work/venv/bin/maturin" build --release \
    --interpreter "$work/venv/bin/python" --out "$work/dist")
phase_end

phase_begin "pip install wheel"
"$work/venv/bin/pip" install -q --disable-pip-version-check --no-index "$work"/dist/*.whl
phase_end

phase_begin "pytest" "WARD_BIN=$ward_bin"
(cd "$here" && WARD_BIN=$ward_bin "$work/venv/bin/python" -m pytest -ra -p no:cacheprovider tests "$@")
phase_end
