#!/usr/bin/env bash
# Set up (idempotent), build, and run the default test suite (labels unit + integration).
#   scripts/test.sh                 gcc, build/
#   EF_SANITIZE=1 scripts/test.sh   ASan+UBSan build in build-asan/
#   CC=clang scripts/test.sh        any compiler
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
dir=$(scripts/build.sh)
jobs=$(nproc 2>/dev/null || echo 2)
echo "test: running ctest in $dir (unit + integration)"
ctest --test-dir "$dir" --output-on-failure -L 'unit|integration' -j "$jobs"
