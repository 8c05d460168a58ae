# shellcheck shell=bash disable=SC2034  # sourced: step, say and fail belong to scripts/setup.sh
# Sourced by scripts/setup.sh --arch arm64 (after the host set-up; uses its variables and helpers):
# Debian's aarch64 cross toolchain, qemu-user to run the tests, the arm64 multiarch -dev packages
# the agent, libedgefleet and their tests link, and llama.cpp cross-built static for aarch64.
# protoc-c stays the host's. libh2o-dev:arm64 is left out: it cannot be installed beside the
# amd64 libh2o-dev (not Multi-Arch: same), so the coordinator is not cross-built.

step="dpkg --add-architecture arm64"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  say "adding the arm64 architecture to dpkg (multiarch)"
  $SUDO dpkg --add-architecture arm64 || fail "dpkg --add-architecture arm64"
  $SUDO apt-get update -qq || fail "apt-get update"
fi

ARM_PKGS=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user
          libc6-dev:arm64 libstdc++-12-dev:arm64
          libzmq3-dev:arm64 libprotobuf-c-dev:arm64 libsodium-dev:arm64 libuv1-dev:arm64
          libcjson-dev:arm64 libinih-dev:arm64 libcmocka-dev:arm64
          libedit-dev:arm64)  # edgefleetctl chat
step="apt packages (arm64)"
missing=()
for p in "${ARM_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq || fail "apt-get update"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || fail "apt-get install ${missing[*]}"
else
  say "Debian packages (arm64): all present"
fi

STAMP_ARM64=$PREFIX_ARM64/.edgefleet-built
if [ -f "$STAMP_ARM64" ]; then
  say "llama.cpp (arm64): using $(cat "$STAMP_ARM64") at $PREFIX_ARM64 (already built)"
  return 0
fi
fetch_llama_source

# Only the libraries (no tools): GGML_NATIVE off, the CPU baseline from -march=$ARM_ARCH through
# llama.cpp's own GGML_CPU_ARM_ARCH option.
jobs=$(nproc 2>/dev/null || echo 2)
TOOLCHAIN=$(cd "$(dirname "${BASH_SOURCE[0]}")/../cmake" && pwd)/aarch64-linux-gnu.cmake
B=$LLAMA_ROOT/build-${PREFIX_ARM64##*/prefix-}
step="cmake configure of llama.cpp (arm64, -march=$ARM_ARCH)"
say "cross-building $DESC for aarch64 (-march=$ARM_ARCH) with $jobs jobs"
cmake -S "$LLAMA_ROOT/src" -B "$B" -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DGGML_NATIVE=OFF -DGGML_CPU_ARM_ARCH="$ARM_ARCH" \
  -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENMP=OFF -DGGML_CCACHE=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=OFF \
  -DLLAMA_BUILD_COMMON=OFF >"$B.configure.log" 2>&1 \
  || { tail -30 "$B.configure.log" >&2; fail "cmake configure (log: $B.configure.log)"; }

step="cmake build of llama.cpp (arm64)"
cmake --build "$B" -j "$jobs" --target llama ggml 2>&1 \
  | awk '/^\[ *[0-9]+%\]/ { if ($2 != last) { last=$2; printf "setup: llama.cpp arm64 build %s\n", $2; fflush() } } /error/ { print }'
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "cmake build"

step="install of llama.cpp (arm64) into the cache"
S=$LLAMA_ROOT/src
rm -rf "$PREFIX_ARM64" && mkdir -p "$PREFIX_ARM64/include" "$PREFIX_ARM64/lib" || fail "mkdir $PREFIX_ARM64"
cp "$S/include/llama.h" "$S/include/llama-cpp.h" "$S"/ggml/include/*.h "$PREFIX_ARM64/include/" \
  || fail "copy headers"
cp "$B/src/libllama.a" "$B/ggml/src/libggml.a" "$B/ggml/src/libggml-base.a" "$B/ggml/src/libggml-cpu.a" \
  "$PREFIX_ARM64/lib/" || fail "copy libraries"
echo "$DESC, aarch64 -march=$ARM_ARCH" >"$STAMP_ARM64"
say "llama.cpp (arm64): built $DESC into $PREFIX_ARM64"
