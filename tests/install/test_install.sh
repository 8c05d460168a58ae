#!/usr/bin/env bash
# `cmake --install` into a DESTDIR, then build programs against what was installed, as a user
# would: with `pkg-config --cflags --libs edgefleet` (shared), with `pkg-config --static` against
# libedgefleet.a, and with find_package(edgefleet). Checks that neither library exposes a name
# outside ef_, and that a program defining its own clock_mono_ms (an internal name) links.
#   test_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d /tmp/edgefleet-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_install: FAIL: $*" >&2; exit 1; }

DESTDIR=$tmp/root cmake --install "$build" --prefix /opt/ef >/dev/null
root=$tmp/root/opt/ef
lib=$root/lib
for f in bin/edgefleet-agent bin/edgefleet-coordinator bin/edgefleetctl include/edgefleet.h \
    lib/libedgefleet.a lib/libedgefleet.so lib/pkgconfig/edgefleet.pc \
    lib/cmake/edgefleet/edgefleetConfig.cmake lib/cmake/edgefleet/edgefleetConfigVersion.cmake; do
    [ -e "$root/$f" ] || fail "$f not installed"
done
# The units name the install prefix's binaries (the packages' /usr/bin is rewritten).
grep -qx 'ExecStart=/opt/ef/bin/edgefleet-agent --config /etc/edgefleet/agent.ini' \
    "$root/lib/systemd/system/edgefleet-agent.service" || fail "edgefleet-agent.service ExecStart"
grep -q '^ExecStart=/opt/ef/bin/edgefleet-coordinator ' \
    "$root/lib/systemd/system/edgefleet-coordinator.service" || fail "edgefleet-coordinator.service ExecStart"
soname=$(objdump -p "$lib/libedgefleet.so" | awk '/SONAME/ {print $2}')
[[ $soname =~ ^libedgefleet\.so\.[0-9]+$ ]] || fail "soname is '$soname'"

leaks=$(nm -g --defined-only "$lib/libedgefleet.a" | awk 'NF == 3 && $3 !~ /^ef_/ {print $3}')
[ -z "$leaks" ] || fail "libedgefleet.a exports internal names: $(echo $leaks | head -c 300)"
leaks=$(nm -D --defined-only "$lib/libedgefleet.so" | awk 'NF == 3 && $3 !~ /^ef_/ {print $3}')
[ -z "$leaks" ] || fail "libedgefleet.so exports internal names: $(echo $leaks | head -c 300)"

# A consumer with a name the library uses inside: it must link and print the library version.
cat >"$tmp/user.c" <<'C'
#include <edgefleet.h>
#include <stdio.h>
#include <string.h>
unsigned long long clock_mono_ms(void);
unsigned long long clock_mono_ms(void) { return 42; }
int main(void)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", EF_VERSION_MAJOR, EF_VERSION_MINOR, EF_VERSION_PATCH);
    if (strcmp(ef_version(), want) != 0 || clock_mono_ms() != 42) return 1;
    ef_gen_params g = ef_gen_default_params();
    printf("%s %u %s\n", ef_version(), g.max_tokens, ef_err_name(EF_EBUSY));
    return 0;
}
C
export PKG_CONFIG_PATH=$lib/pkgconfig
cc -std=c11 -Wall -Werror "$tmp/user.c" -o "$tmp/user-shared" $(pkg-config --cflags --libs edgefleet) \
    -Wl,-rpath,"$lib" || fail "build against the shared library with pkg-config"
cc -std=c11 -Wall -Werror "$tmp/user.c" -o "$tmp/user-static" -static-libgcc \
    $(pkg-config --cflags edgefleet) "$lib/libedgefleet.a" $(pkg-config --static --libs-only-l edgefleet | sed 's/-ledgefleet//') \
    || fail "build against libedgefleet.a with pkg-config --static"
out=$("$tmp/user-shared") || fail "shared consumer ran with $?"
[[ $out == *" 128 EF_EBUSY" ]] || fail "shared consumer printed '$out'"
out=$("$tmp/user-static") || fail "static consumer ran with $?"
[[ $out == *" 128 EF_EBUSY" ]] || fail "static consumer printed '$out'"
objdump -p "$tmp/user-static" | grep -q 'NEEDED.*libedgefleet' && fail "static consumer needs the .so"

# find_package(edgefleet), both imported targets.
mkdir -p "$tmp/pkg"
cp "$tmp/user.c" "$tmp/pkg/"
cat >"$tmp/pkg/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(user C)
find_package(edgefleet 0 REQUIRED)
add_executable(user-shared user.c)
target_link_libraries(user-shared PRIVATE edgefleet::edgefleet)
add_executable(user-static user.c)
target_link_libraries(user-static PRIVATE edgefleet::edgefleet_static)
CM
cmake -S "$tmp/pkg" -B "$tmp/pkg/build" -DCMAKE_PREFIX_PATH="$root" >"$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log" >&2; fail "find_package(edgefleet) configure"; }
cmake --build "$tmp/pkg/build" >>"$tmp/cmake.log" 2>&1 ||
    { tail -30 "$tmp/cmake.log" >&2; fail "find_package(edgefleet) build"; }
for b in user-shared user-static; do
    out=$("$tmp/pkg/build/$b") || fail "$b (find_package) ran with $?"
    [[ $out == *" 128 EF_EBUSY" ]] || fail "$b (find_package) printed '$out'"
done
echo "test_install: ok (soname $soname; only ef_ names exported; pkg-config and find_package)"
