#!/usr/bin/env bash
# Set up (idempotent), build, and run the default test suite (labels unit + integration).
#   scripts/test.sh                 gcc, RelWithDebInfo, build/
#   EF_SANITIZE=1 scripts/test.sh   ASan+UBSan build in build-asan/
#   CC=clang scripts/test.sh        any compiler
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
dir=build
flags=()
if [ "${EF_SANITIZE:-0}" = 1 ]; then dir=build-asan; flags+=(-DEF_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug); fi
[ -n "${CC:-}" ] && dir="$dir-$(basename "$CC")"
echo "test: configuring $dir"
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
echo "test: building"
if ! cmake --build "$dir" -j "$jobs" >"$dir/build.log" 2>&1; then
  grep -E -B2 -A8 "error|Error" "$dir/build.log" | head -80 >&2
  echo "test: build failed (full log: $dir/build.log)" >&2
  exit 1
fi
echo "test: running ctest (unit + integration)"
ctest --test-dir "$dir" --output-on-failure -L 'unit|integration' -j "$jobs"
