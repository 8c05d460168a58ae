#!/usr/bin/env bash
# The arm64 cross build and its tests under qemu-user: set-up (idempotent; --arch arm64), the
# cross build in build-arm64/, then the tests that run in one process under qemu-aarch64 (ctest
# runs them through CMAKE_CROSSCOMPILING_EMULATOR, see cmake/aarch64-linux-gnu.cmake): every unit
# test, and the real-model engine tests plus CURVE transport. Tests that start other binaries
# (the agent, a fleet) are left out: without binfmt_misc an emulated process cannot exec another.
# Last, the arm64 .debs (agent, tools, lib, dev; no coordinator) with cpack.
#   scripts/test-arm64.sh                                  generic armv8-a build
#   EF_ARM_ARCH=armv8.2-a+dotprod+fp16 scripts/test-arm64.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --arch arm64 --arm-arch "${EF_ARM_ARCH:-armv8-a}"
dir=$(EF_ARCH=arm64 scripts/build.sh)
jobs=$(nproc 2>/dev/null || echo 2)
file "$dir/agent/edgefleet-agent" | grep -q "ARM aarch64" \
  || { echo "test-arm64: $dir/agent/edgefleet-agent is not an aarch64 binary" >&2; exit 1; }
echo "test-arm64: running ctest in $dir under qemu-aarch64 (unit + real-model engine tests)"
ctest --test-dir "$dir" --output-on-failure -j "$jobs" \
  -R '^(test_llama_basics|test_engine|test_backend_step|test_determinism|test_transport)$'
ctest --test-dir "$dir" --output-on-failure -j "$jobs" -L unit
# The default build promises to run on every 64-bit board: the real model once more on an
# emulated Cortex-A72 (Raspberry Pi 4: ARMv8.0, no dotprod), where an ARMv8.2 build dies
# with SIGILL. (qemu's default CPU, "max", has every extension.)
if [ "${EF_ARM_ARCH:-armv8-a}" = armv8-a ]; then
  echo "test-arm64: test_llama_basics on an emulated Cortex-A72"
  EDGEFLEET_MODEL_DIR=${EDGEFLEET_MODEL_DIR:-$PWD/../shared/models} \
    qemu-aarch64 -cpu cortex-a72 "$dir/tests/test_llama_basics" >"$dir/a72.log" 2>&1 \
    || { cat "$dir/a72.log" >&2; echo "test-arm64: the armv8-a build fails on a Cortex-A72" >&2; exit 1; }
fi

# The arm64 .debs (cpack with the cross build; dpkg-shlibdeps reads the arm64 multiarch libs):
# each must say arm64 and carry aarch64 ELF files. Not installed here (the host is amd64).
debs=$dir/debs
rm -rf "$debs"
echo "test-arm64: cpack -G DEB into $debs"
cpack -G DEB --config "$dir/CPackConfig.cmake" -B "$debs" >"$dir/cpack.log" 2>&1 \
  || { tail -20 "$dir/cpack.log" >&2; echo "test-arm64: cpack FAILED (log: $dir/cpack.log)" >&2; exit 1; }
n=0
for deb in "$debs"/*.deb; do
  [ "$(dpkg-deb -f "$deb" Architecture)" = arm64 ] || { echo "test-arm64: $deb is not arm64" >&2; exit 1; }
  n=$((n + 1))
done
[ "$n" -eq 4 ] || { echo "test-arm64: expected 4 .debs (agent, tools, lib, dev), got $n" >&2; exit 1; }
x=$(mktemp -d) && dpkg-deb -x "$debs"/edgefleet-agent_*_arm64.deb "$x"
file "$x/usr/bin/edgefleet-agent" | grep -q "ARM aarch64" \
  || { echo "test-arm64: the arm64 .deb's edgefleet-agent is not aarch64" >&2; exit 1; }
rm -rf "$x"
echo "test-arm64: $n arm64 .debs: $(cd "$debs" && echo *.deb)"
