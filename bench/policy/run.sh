#!/bin/sh
# Runs the policy benchmark side by side: the AAM engine (C) and Cedar
# (@cedar-policy/cedar-wasm via Node) on the same policies and requests.
#
#   bench/policy/run.sh [BUILD_DIR] [SIZES] [SECONDS]
#
# BUILD_DIR should be a Release build without sanitizers, e.g.
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DAAM_BUILD_TESTS=OFF
#   cmake --build build-rel --target policy_bench
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build-rel}
sizes=${2:-10,1000,10000}
secs=${3:-3}
bench="$build/gateway/policy_bench"
[ -x "$bench" ] || { echo "run.sh: $bench not found; build the policy_bench target" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -m), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
"$bench" --sizes "$sizes" --decisions 3000000 --emit-cedar "$work"
if command -v node >/dev/null 2>&1; then
  if [ ! -d "$here/cedar/node_modules/@cedar-policy/cedar-wasm" ]; then
    (cd "$here/cedar" && npm ci --no-audit --no-fund >/dev/null)
  fi
  echo "# node $(node --version), @cedar-policy/cedar-wasm $(node -p "require('$here/cedar/node_modules/@cedar-policy/cedar-wasm/package.json').version")"
  node "$here/cedar/bench.mjs" "$work" "$sizes" "$secs"
else
  echo "# node not found: Cedar side skipped"
fi
