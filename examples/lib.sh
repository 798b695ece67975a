# Shared by examples/{pytorch,training,two-owners}/run.sh (sourced, not run). The caller sets
# `here` (its own directory) and `set -euo pipefail`; `example_setup "$@"` then resolves WARD
# (building it if unset), makes and enters the work directory ($1, or a temporary one), puts
# `ward` on PATH, and stops every server started with `start_server` when the script exits.

example_setup() {
  repo="$(cd "$here/../.." && pwd)"
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
  ln -sf "$WARD" .bin/ward
  export PATH="$work/.bin:$PATH"
  echo "working in $work"
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
}

# A free loopback port.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# torch_venv VENV [PYPI_PACKAGE…]: a venv over Debian's torch and torchvision
# (--system-site-packages), with the given PyPI packages installed without their dependencies.
torch_venv() {
  local venv="$1"; shift
  local imports="torch, torchvision"
  for p in "$@"; do imports+=", $(sed 's/==.*//; s/-/_/g' <<<"$p")"; done
  if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import $imports" 2>/dev/null; then
    return
  fi
  echo "== A venv over Debian's torch${*:+, with $* from PyPI}: $venv"
  /usr/bin/python3 -c "import torch, torchvision" || {
    echo "Debian's python3-torch and python3-torchvision are needed: apt-get install python3-torch python3-torchvision" >&2
    exit 1
  }
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  if (($#)); then
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "$@"
  fi
}

# start_server LOG ARGS…: `ward provision serve ARGS…` in the background, logging to LOG; returns
# once it listens.
start_server() {
  local log="$1"; shift
  ward provision serve "$@" > "$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do grep -q "listening on" "$log" 2>/dev/null && return; sleep 0.1; done
  echo "the provisioning server did not start:" >&2; cat "$log" >&2; exit 1
}

# The tutorial's cat photo as input.jpg, and the ImageNet class list, into DIR.
tutorial_inputs() {
  cp "$repo/models/efficientnet-lite0/labels.txt" "$1/classes.txt"
  "$VENV/bin/python" -c "from PIL import Image; Image.open('$repo/models/images/chelsea.png').convert('RGB').save('$1/input.jpg', quality=95)"
}
