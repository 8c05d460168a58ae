#!/usr/bin/env bash
# Configure and build edgefleet into a build directory; prints that directory's path last.
#   scripts/build.sh                 gcc (or $CC), RelWithDebInfo, build/
#   EF_SANITIZE=1 scripts/build.sh   ASan+UBSan, build-asan/
# Assumes scripts/setup.sh has run (test.sh and demo.sh run it first).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
dir=build
flags=()
if [ "${EF_SANITIZE:-0}" = 1 ]; then dir=build-asan; flags+=(-DEF_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug); fi
[ -n "${CC:-}" ] && dir="$dir-$(basename "$CC")"
echo "build: configuring $dir" >&2
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
echo "build: compiling with $jobs jobs (log: $dir/build.log)" >&2
if ! cmake --build "$dir" -j "$jobs" >"$dir/build.log" 2>&1; then
  grep -E -B2 -A8 "error:|Error " "$dir/build.log" | head -80 >&2
  echo "build: FAILED (full log: $dir/build.log)" >&2
  exit 1
fi
echo "$dir"
