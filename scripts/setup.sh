#!/usr/bin/env bash
# edgefleet set-up: Debian packages + the pinned llama.cpp release, built static and CPU-only.
# Idempotent: a second run finds everything in place and does nothing. Used by the README, by
# CI (.ci/run) and by anyone on a fresh Debian 12 box. Every failure names its step.
#
#   scripts/setup.sh            packages + llama.cpp
#   scripts/setup.sh --print    print the llama.cpp prefix (for -DLLAMA_CPP_DIR=) and exit
#   scripts/setup.sh --arch arm64 [--arm-arch MARCH]
#                               also the aarch64 cross toolchain, qemu-user, the arm64 multiarch
#                               -dev packages and llama.cpp cross-built for aarch64 (own prefix).
#                               MARCH (-march) defaults to armv8-a, which every 64-bit ARM board
#                               runs; armv8.2-a+dotprod+fp16 is faster on A55/A76/A78 boards.
#                               --print with --arch arm64 prints the arm64 prefix.
set -euo pipefail

NODE_LLAMA_CPP_VERSION=3.22.1
NODE_LLAMA_CPP_SHA256=a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f
CACHE=${EDGEFLEET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgefleet}
LLAMA_ROOT=$CACHE/llama.cpp-$NODE_LLAMA_CPP_VERSION
PREFIX=$LLAMA_ROOT/prefix
STAMP=$PREFIX/.edgefleet-built

step=""
fail() { echo "setup: FAILED at step '$step': $*" >&2; exit 1; }
trap 'rc=$?; [ $rc -eq 0 ] || echo "setup: FAILED at step \"$step\" (exit $rc); see the output above" >&2' EXIT
say() { echo "setup: $*"; }

ARCH=host ARM_ARCH=${EF_ARM_ARCH:-armv8-a} PRINT=0
while [ $# -gt 0 ]; do
  case "$1" in
    --print) PRINT=1 ;;
    --arch) ARCH=${2:?--arch needs a value}; shift ;;
    --arm-arch) ARM_ARCH=${2:?--arm-arch needs a value}; shift ;;
    *) echo "setup: unknown argument '$1' (see the head of $0)" >&2; exit 2 ;;
  esac
  shift
done
case "$ARCH" in host|arm64) ;; *) echo "setup: --arch: only arm64 is supported" >&2; exit 2 ;; esac
# The default -march gets prefix-arm64; any other gets its own prefix, so both can coexist.
PREFIX_ARM64=$LLAMA_ROOT/prefix-arm64
[ "$ARM_ARCH" = armv8-a ] || PREFIX_ARM64=$LLAMA_ROOT/prefix-arm64-$ARM_ARCH
if [ $PRINT = 1 ]; then
  if [ "$ARCH" = arm64 ]; then echo "$PREFIX_ARM64"; else echo "$PREFIX"; fi
  exit 0
fi

# Debian packages. Names only; apt resolves versions from the Debian 12 archive.
PKGS=(build-essential cmake pkg-config git ca-certificates clang clang-format
      libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libsodium-dev libuv1-dev
      libcjson-dev libinih-dev libcmocka-dev
      libedit-dev tmux  # edgefleetctl chat (line editing, history); tests drive top and chat in tmux
      libh2o-dev libssl-dev curl openssl prometheus  # the HTTP gateway (h2o on libuv, TLS); curl
                     # drives its tests, promtool checks /metrics
      iproute2   # ip netns + veth: the failover tests partition an agent in a namespace
      file adduser systemd)  # cpack -G DEB (shlibdeps finds ELF files with file); test_packaging
                             # installs the .debs (adduser) and runs systemd-analyze verify
step="apt packages"
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come from NodeSource or nvm rather than Debian: only ask apt for it when none is on PATH.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq || fail "apt-get update"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || fail "apt-get install ${missing[*]}"
else
  say "Debian packages: all present"
fi

# libzmq must have CURVE; Debian's is built with libsodium, but a hand-built one might not be.
step="libzmq CURVE check"
pkg-config --exists libzmq || fail "pkg-config cannot find libzmq"

# OpenAI's own client library (npm, pinned), for the HTTP gateway's tests: they drive the
# gateway with it as applications do. Installed here, never at test time.
OPENAI_JS_VERSION=6.30.1
OPENAI_JS_DIR=$CACHE/openai-js-$OPENAI_JS_VERSION
step="npm install openai@$OPENAI_JS_VERSION"
if [ ! -f "$OPENAI_JS_DIR/node_modules/openai/package.json" ]; then
  say "installing openai@$OPENAI_JS_VERSION (npm) into $OPENAI_JS_DIR for the gateway tests"
  mkdir -p "$OPENAI_JS_DIR"
  npm install --silent --no-audit --no-fund --prefix "$OPENAI_JS_DIR" "openai@$OPENAI_JS_VERSION" \
    >/dev/null || fail "npm install openai@$OPENAI_JS_VERSION"
else
  say "openai@$OPENAI_JS_VERSION (npm): present"
fi

# The pinned llama.cpp source tree in the cache (shared by the host and the arm64 builds).
fetch_llama_source() {
  mkdir -p "$LLAMA_ROOT"
  TGZ=$LLAMA_ROOT/node-llama-cpp-$NODE_LLAMA_CPP_VERSION.tgz
  step="npm pack node-llama-cpp@$NODE_LLAMA_CPP_VERSION"
  if [ ! -f "$TGZ" ]; then
    say "fetching node-llama-cpp@$NODE_LLAMA_CPP_VERSION from the npm registry (llama.cpp release bundle)"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-llama-cpp@$NODE_LLAMA_CPP_VERSION" >/dev/null) || fail "npm pack"
    mv "$tmp/node-llama-cpp-$NODE_LLAMA_CPP_VERSION.tgz" "$TGZ.part" && mv "$TGZ.part" "$TGZ"
    rm -rf "$tmp"
  fi

  step="sha256 check"
  got=$(sha256sum "$TGZ" | cut -d' ' -f1)
  if [ "$got" != "$NODE_LLAMA_CPP_SHA256" ]; then
    rm -f "$TGZ"
    fail "tarball sha256 is $got, expected $NODE_LLAMA_CPP_SHA256 (deleted; rerun to fetch again)"
  fi
  say "tarball sha256 ok"

  step="git clone of the llama.cpp bundle"
  if [ ! -d "$LLAMA_ROOT/src/.git" ]; then
    rm -rf "$LLAMA_ROOT/src" "$LLAMA_ROOT/bundle"
    mkdir -p "$LLAMA_ROOT/bundle"
    tar -xzf "$TGZ" -C "$LLAMA_ROOT/bundle" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json \
      || fail "tarball has no package/llama/gitRelease.bundle"
    git clone -q "$LLAMA_ROOT/bundle/package/llama/gitRelease.bundle" "$LLAMA_ROOT/src" 2>/dev/null \
      || fail "git clone of the bundle"
  fi
  tag=$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$LLAMA_ROOT/bundle/package/llama/llama.cpp.info.json" 2>/dev/null || true)
  rev=$(git -C "$LLAMA_ROOT/src" rev-parse --short=12 HEAD)
  DESC="llama.cpp ${tag:-?} (bundle commit $rev, from node-llama-cpp@$NODE_LLAMA_CPP_VERSION)"
}

build_host_llama() {
  # Static, CPU only. Only the libraries plus the three tools the benchmarks compare against
  # (llama-bench, llama-batched-bench, llama-quantize): no curl, no server, no examples.
  step="cmake configure of llama.cpp"
  jobs=$(nproc 2>/dev/null || echo 2)
  say "building $DESC with $jobs jobs (about 3 minutes on 2 cores)"
  cmake -S "$LLAMA_ROOT/src" -B "$LLAMA_ROOT/build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENMP=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_TOOLS_INSTALL=OFF \
    -DLLAMA_BUILD_COMMON=ON >"$LLAMA_ROOT/configure.log" 2>&1 \
    || { tail -30 "$LLAMA_ROOT/configure.log" >&2; fail "cmake configure (log: $LLAMA_ROOT/configure.log)"; }

  step="cmake build of llama.cpp"
  cmake --build "$LLAMA_ROOT/build" -j "$jobs" --target llama ggml llama-bench llama-batched-bench llama-quantize \
    2>&1 | awk '/^\[ *[0-9]+%\]/ { if ($2 != last) { last=$2; printf "setup: llama.cpp build %s\n", $2; fflush() } } /error/ { print }'
  [ "${PIPESTATUS[0]}" -eq 0 ] || fail "cmake build"

  step="install of llama.cpp into the cache"
  # Copy by hand rather than `cmake --install`: the install rules also cover tools we did not build.
  B=$LLAMA_ROOT/build S=$LLAMA_ROOT/src
  rm -rf "$PREFIX" && mkdir -p "$PREFIX/include" "$PREFIX/lib" || fail "mkdir $PREFIX"
  cp "$S/include/llama.h" "$S/include/llama-cpp.h" "$S"/ggml/include/*.h "$PREFIX/include/" || fail "copy headers"
  cp "$B/src/libllama.a" "$B/ggml/src/libggml.a" "$B/ggml/src/libggml-base.a" "$B/ggml/src/libggml-cpu.a" \
    "$PREFIX/lib/" || fail "copy libraries"
  mkdir -p "$PREFIX/bin"
  for t in llama-bench llama-batched-bench llama-quantize; do cp "$LLAMA_ROOT/build/bin/$t" "$PREFIX/bin/"; done
  # Vocab-only GGUFs (real tokenizers) and chat templates, used by the synthetic benchmark model.
  mkdir -p "$PREFIX/share/llama.cpp"
  cp -r "$LLAMA_ROOT/src/models/ggml-vocab-qwen2.gguf" "$LLAMA_ROOT/src/models/templates" "$PREFIX/share/llama.cpp/" 2>/dev/null || true
  echo "$DESC" >"$STAMP"
  say "llama.cpp: built $DESC into $PREFIX"
}

if [ -f "$STAMP" ]; then
  say "llama.cpp: using $(cat "$STAMP") at $PREFIX (already built)"
else
  fetch_llama_source
  build_host_llama
fi

[ "$ARCH" = arm64 ] || exit 0
# shellcheck source=scripts/setup-arm64.sh
. "$(dirname "$0")/setup-arm64.sh"
