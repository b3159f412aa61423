#!/usr/bin/env bash
# Builds every plugin in this workspace (built-in and hostile test plugins) for wasm32-wasip2
# as WebAssembly components, and prints the directory that holds the .wasm files.
#
# The wasm build has a target directory of its own, so it never invalidates the native build
# cache: $FLOTILLA_WASM_TARGET_DIR, else $CARGO_TARGET_DIR/wasm, else
# ~/.cache/flotilla/target/wasm (scripts/test.sh's default target directory, plus /wasm).
# Cargo is incremental: when nothing changed this takes well under a second.
set -euo pipefail
cd "$(dirname "$0")"

target_dir="${FLOTILLA_WASM_TARGET_DIR:-${CARGO_TARGET_DIR:-$HOME/.cache/flotilla/target}/wasm}"

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "==> installing the wasm32-wasip2 target" >&2
  rustup target add wasm32-wasip2 >&2 || {
    echo "the wasm32-wasip2 Rust target is missing and could not be installed: rustup target add wasm32-wasip2" >&2
    exit 1
  }
fi

# Variables a surrounding cargo invocation (a test run) may set would leak native flags into
# the wasm build or point it at the wrong manifest.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET CARGO_MANIFEST_DIR CARGO_PRIMARY_PACKAGE

cargo build --release --locked --target wasm32-wasip2 --target-dir "$target_dir" --workspace --quiet >&2
echo "$target_dir/wasm32-wasip2/release"
