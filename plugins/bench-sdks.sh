#!/usr/bin/env bash
# What each SDK language costs, per example (one per world): builds every example in every
# language with `flotilla plugin build` and runs `flotilla plugin bench` on the component
# with a 1,000-cluster input (100 Deployments for the policy check), then prints one
# markdown table (the one in plugins/README.md, "What each language costs").
#
#   plugins/bench-sdks.sh                      # every example, every language
#   FLOTILLA=target/release/flotilla ITERATIONS=200 WARMUP=20 plugins/bench-sdks.sh
#   LANGS="rust c" EXAMPLES="canary-waves" plugins/bench-sdks.sh
#
# Environment:
#   FLOTILLA    the CLI (default: flotilla on PATH); build it with --release, a debug host
#               compiles and calls much slower
#   ITERATIONS  calls measured per component (default 200); WARMUP calls before (default 20)
#   LANGS       languages (default "rust python js c"); EXAMPLES: examples (default: all five)
#   KEEP        a directory to keep the inputs, build logs and bench JSON in (default: a
#               temporary directory, removed at the end)
#
# Build time is one `flotilla plugin build`, wall clock. Python, JS and C builds always run
# their whole toolchain; Rust builds from an empty target directory (dependencies included,
# as for a new project), and the "rebuild" in parentheses is the plugin crate alone, with
# its dependencies compiled. Nothing in the projects is deleted: Rust builds go to a
# temporary CARGO_TARGET_DIR; the other languages overwrite their component as usual.
#
# The bench runs with a fresh plugin cache (FLOTILLA_PLUGIN_CACHE; `plugin bench` also makes
# a compilation cache of its own), so "first compile" compiles. Per-call latency includes
# the instantiation the host does for every call. Needs python3 and the toolchains of the
# languages measured (`flotilla plugin build` names whatever is missing).
set -euo pipefail

FLOTILLA=${FLOTILLA:-flotilla}
ITERATIONS=${ITERATIONS:-200}
WARMUP=${WARMUP:-20}
LANGS=${LANGS:-rust python js c}
EXAMPLES=${EXAMPLES:-region-capacity-filter least-loaded-scorer allowed-registries canary-waves claims-transform}

plugins=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ $FLOTILLA == */* ]]; then
  FLOTILLA=$(cd "$(dirname "$FLOTILLA")" && pwd)/$(basename "$FLOTILLA")
fi
command -v "$FLOTILLA" >/dev/null || { echo "bench-sdks.sh: $FLOTILLA not found (set FLOTILLA)" >&2; exit 1; }

if [[ -n ${KEEP:-} ]]; then
  work=$(mkdir -p "$KEEP" && cd "$KEEP" && pwd)
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/bench-sdks.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/logs" "$work/json"
python3 "$plugins/bench-inputs.py" "$work/inputs"

now() { date +%s%N; }
seconds() { awk -v ns="$1" 'BEGIN { printf "%.1f s", ns / 1e9 }'; }

world_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["world"])' "$1"; }

rows=()
failed=()
for example in $EXAMPLES; do
  input=$work/inputs/$example.json
  [[ -f $input ]] || { echo "bench-sdks.sh: no input for example $example" >&2; exit 1; }
  for lang in $LANGS; do
    dir=$plugins/examples/$example/$lang
    [[ -f $dir/flotilla-plugin.json ]] || { echo "== $example/$lang: no project, skipped" >&2; continue; }
    log=$work/logs/$example-$lang
    echo "== $example/$lang: build" >&2
    unset CARGO_TARGET_DIR
    if [[ $lang == rust ]]; then
      export CARGO_TARGET_DIR=$work/cargo/$example
    fi
    started=$(now)
    if ! wasm=$(cd "$dir" && "$FLOTILLA" plugin build 2>"$log.build.log"); then
      echo "   build failed (log: $log.build.log):" >&2
      tail -n 20 "$log.build.log" >&2
      failed+=("$example/$lang: build")
      continue
    fi
    build=$(seconds $(($(now) - started)))
    if [[ $lang == rust ]]; then
      crate=$(python3 -c 'import tomllib,sys; print(tomllib.load(open(sys.argv[1],"rb"))["package"]["name"])' "$dir/Cargo.toml")
      cargo clean -q --release --target wasm32-wasip2 -p "$crate" --manifest-path "$dir/Cargo.toml"
      started=$(now)
      (cd "$dir" && "$FLOTILLA" plugin build >/dev/null 2>>"$log.build.log")
      build="$build ($(seconds $(($(now) - started))))"
      unset CARGO_TARGET_DIR
    fi
    echo "   $wasm, $build" >&2
    echo "== $example/$lang: bench" >&2
    cache=$work/cache/$example-$lang
    mkdir -p "$cache"
    if ! FLOTILLA_PLUGIN_CACHE=$cache "$FLOTILLA" plugin bench --input "$input" --iterations "$ITERATIONS" \
        --warmup "$WARMUP" -o json "$wasm" >"$work/json/$example-$lang.json" 2>"$log.bench.log"; then
      echo "   bench failed (log: $log.bench.log):" >&2
      tail -n 20 "$log.bench.log" >&2
      failed+=("$example/$lang: bench")
      continue
    fi
    rows+=("$(python3 - "$work/json/$example-$lang.json" "$lang" "$example" "$(world_of "$input")" "$build" <<'EOF'
import json, sys
path, lang, example, world, build = sys.argv[1:]
b = json.load(open(path))
def t(us):
    if us >= 1e6: return f"{us / 1e6:.2f} s"
    if us >= 1e3: return f"{us / 1e3:.1f} ms"
    return f"{us:.0f} µs"
size = b["sizeBytes"]
size = f"{size / 1048576:.1f} MiB" if size >= 1048576 else f"{size / 1024:.0f} KiB"
c = b["calls"]
print(f"| {lang} | {example} ({world}) | {size} | {build} | {t(b['firstLoadMicros'])} | "
      f"{t(b['cachedLoadMicros'])} | {t(b['instantiationMicros'])} | {t(c['p50Micros'])} | {t(c['p99Micros'])} |")
EOF
)")
  done
done

echo
echo "| Language | Example (world) | Component | Build | First compile | Cached load | Instantiation | Call p50 | Call p99 |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|"
# By language, then example.
for lang in $LANGS; do
  for row in "${rows[@]}"; do
    [[ $row == "| $lang |"* ]] && echo "$row"
  done
done
if ((${#failed[@]})); then
  echo
  echo "Failed: ${failed[*]}"
  exit 1
fi
