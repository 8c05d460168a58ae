#!/usr/bin/env bash
# Configure and build edgefleet into a build directory; prints that directory's path last.
#   scripts/build.sh                 gcc (or $CC), RelWithDebInfo, build/
#   EF_SANITIZE=1 scripts/build.sh   ASan+UBSan, build-asan/
#   EF_ARCH=arm64 scripts/build.sh   aarch64 cross build (agent, library, edgefleetctl, their
#                                    tests; no coordinator), build-arm64/ (build-arm64-MARCH
#                                    for EF_ARM_ARCH=MARCH); needs
#                                    scripts/setup.sh --arch arm64 (EF_ARM_ARCH as there)
# Assumes scripts/setup.sh has run (test.sh and demo.sh run it first).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
dir=build
flags=()
if [ "${EF_SANITIZE:-0}" = 1 ]; then dir=build-asan; flags+=(-DEF_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug); fi
[ -n "${CC:-}" ] && dir="$dir-$(basename "$CC")"
if [ "${EF_ARCH:-}" = arm64 ]; then
  if [ "${EF_SANITIZE:-0}" = 1 ]; then echo "build: EF_ARCH=arm64 has no EF_SANITIZE build" >&2; exit 2; fi
  # The toolchain file names the compiler (aarch64-linux-gnu-gcc); a CC from the environment
  # is not used.
  # Another -march gets its own directory: llama.cpp's libraries are found once per directory.
  dir=build-arm64
  [ "${EF_ARM_ARCH:-armv8-a}" = armv8-a ] || dir=build-arm64-$EF_ARM_ARCH
  flags+=(-DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake"
          -DLLAMA_CPP_DIR="$(scripts/setup.sh --arch arm64 --print)"
          -DEF_BUILD_COORDINATOR=OFF -DEF_BUILD_BENCH=OFF)
elif [ -n "${EF_ARCH:-}" ]; then
  echo "build: EF_ARCH: only arm64 is supported" >&2; exit 2
fi
echo "build: configuring $dir" >&2
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
echo "build: compiling with $jobs jobs (log: $dir/build.log)" >&2
if ! cmake --build "$dir" -j "$jobs" >"$dir/build.log" 2>&1; then
  grep -E -B2 -A8 "error:|Error " "$dir/build.log" | head -80 >&2
  echo "build: FAILED (full log: $dir/build.log)" >&2
  exit 1
fi
echo "$dir"
