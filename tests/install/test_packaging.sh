#!/usr/bin/env bash
# The Debian packages as an operator meets them, on this machine (root; CI's fresh Debian 12):
# `cpack -G DEB`, Depends checked with dpkg-deb -I, all five installed with apt (no download),
# the edgefleet user and /etc/edgefleet owned and moded as the daemons need and others cannot
# read, `systemd-analyze verify` on the installed units, a board provisioned with
# `edgefleetctl provision` and its bundle installed, then each unit's ExecStart (read from the
# installed unit) run as the edgefleet user until the agent registers and answers
# `edgefleetctl generate` with the real model. Then remove (keys and config stay), purge (they go,
# with the user). systemd is not PID 1 here, so nothing is started through systemctl. Whatever
# happens, the packages are purged on exit: the machine is left as found.
#   test_packaging.sh BUILD_DIR SOURCE_DIR MODEL_DIR      (exit 77: skipped, not root)
set -euo pipefail
build=$1 src=$2 models=$3
pkgs=(edgefleet-agent edgefleet-coordinator edgefleet-tools libedgefleet-dev libedgefleet0)
units=/usr/lib/systemd/system
etc=/etc/edgefleet
start=$(date +%s)
say() { echo "test_packaging: [$(($(date +%s) - start))s] $*"; }
[ "$(id -u)" -eq 0 ] || { echo "test_packaging: skipped: needs root (dpkg -i)"; exit 77; }
# shellcheck source=fleet_lib.sh
. "$src/tests/install/fleet_lib.sh"

tmp=$(mktemp -d /tmp/edgefleet-packaging.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -f /var/lib/edgefleet/models/stories260K.gguf
    if [ -n "${installed:-}" ]; then
        dpkg --purge "${pkgs[@]}" >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
    echo "test_packaging: FAIL: $*" >&2
    for l in "$tmp"/*.log; do [ -f "$l" ] && { echo "--- $l" >&2; tail -n 8 "$l" >&2; }; done
    exit 1
}
dpkg_state() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null || true; }

# Refuse a machine that has edgefleet on it: this test would purge it.
for p in "${pkgs[@]}"; do
    case "$(dpkg_state "$p")" in "" | ?n*) ;; *) fail "$p is on this machine; purge it first" ;; esac
done
[ ! -e $etc ] || fail "$etc exists (not made by this test); move it away first"
! getent passwd edgefleet >/dev/null || fail "an edgefleet user exists; remove it first"
! ss -ltn 2>/dev/null | grep -qE ':770[123]\b' || fail "ports 7701-7703 (the units' ports) are taken"

say "cpack -G DEB"
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/debs" >"$tmp/cpack.log" 2>&1 || fail "cpack"
deb() { ls "$tmp/debs/$1"_*.deb; }
depends_has() { # PACKAGE DEPENDENCY...
    local dep p=$1
    shift
    dep=$(dpkg-deb -f "$(deb "$p")" Depends)
    for d in "$@"; do [[ ", $dep," == *", $d"[\ ,]* ]] || fail "$p: Depends lacks $d: $dep"; done
}
depends_has edgefleet-agent libzmq5 libsodium23 libuv1 libprotobuf-c1 libinih1 adduser
depends_has edgefleet-coordinator libzmq5 libsodium23 libuv1 libprotobuf-c1 adduser edgefleet-tools
depends_has edgefleet-tools libzmq5 libsodium23 libuv1 libprotobuf-c1
depends_has libedgefleet0 libzmq5 libsodium23 libuv1 libprotobuf-c1
depends_has libedgefleet-dev libedgefleet0 libzmq3-dev libsodium-dev

say "apt-get install the five packages"
installed=1
debs=()
for p in "${pkgs[@]}"; do debs+=("$(deb "$p")"); done
# Dependencies come from scripts/setup.sh's packages: nothing else may be installed (downloaded).
others=$(apt-get install -s "${debs[@]}" 2>&1 | awk '/^Inst / {print $2}' | grep -vxE "$(IFS='|'; echo "${pkgs[*]}")" || true)
[ -z "$others" ] || fail "installing would download $(echo $others) (add it to scripts/setup.sh)"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=120 \
    "${debs[@]}" >"$tmp/apt.log" 2>&1 || fail "apt-get install"
getent passwd edgefleet >/dev/null || fail "no edgefleet user after install"
check_mode() { # PATH MODE OWNER:GROUP
    local got
    got=$(stat -c '%a %U:%G' "$1") || fail "$1 missing"
    [ "$got" = "$2 $3" ] || fail "$1 is $got, expected $2 $3"
}
check_mode $etc 750 root:edgefleet
check_mode $etc/keys 750 root:edgefleet
check_mode $etc/allow/agents 750 root:edgefleet
check_mode $etc/keys/coordinator.key 600 edgefleet:edgefleet
! setpriv --reuid=nobody --regid=nogroup --clear-groups cat $etc/keys/coordinator.key >/dev/null 2>&1 ||
    fail "another user reads the coordinator's secret key"
ld=$(echo 'int main(void){return 0;}' | cc -x c - -o "$tmp/ldtest" $(pkg-config --cflags --libs edgefleet) 2>&1) ||
    fail "pkg-config --libs edgefleet on the installed libedgefleet-dev: $ld"

say "systemd-analyze verify"
for u in edgefleet-agent edgefleet-coordinator; do
    systemd-analyze verify "$units/$u.service" >"$tmp/verify-$u.log" 2>&1 ||
        { cat "$tmp/verify-$u.log" >&2; fail "systemd-analyze verify $u.service"; }
done

say "provision board-1 and install its bundle"
install -m 0644 "$models/stories260K.gguf" /var/lib/edgefleet/models/
edgefleetctl provision board-1 --out "$tmp/bundles" --coordinator tcp://127.0.0.1:7701 \
    --model /var/lib/edgefleet/models/stories260K.gguf >"$tmp/provision.log" 2>&1 || fail "provision"
b=$tmp/bundles/board-1
for f in board-1.key coordinator.pub agent.ini; do [ -f "$b/$f" ] || fail "bundle lacks $f"; done
[ -f $etc/allow/agents/board-1.pub ] || fail "provision did not admit board-1"
cmp -s "$b/coordinator.pub" $etc/keys/coordinator.pub || fail "bundle's coordinator.pub differs"
# As agent.ini's comment tells the operator.
install -o edgefleet -g edgefleet -m 0600 "$b/board-1.key" $etc/keys/
install -m 0644 "$b/coordinator.pub" $etc/keys/
install -g edgefleet -m 0640 "$b/agent.ini" $etc/
edgefleetctl keygen tester --dir "$tmp" >/dev/null
cp "$tmp/tester.pub" $etc/allow/clients/ && cp "$tmp/tester.pub" $etc/allow/operators/

# Each unit's ExecStart, continuation lines joined, run as User= of the unit.
exec_start() {
    awk '/^ExecStart=/ {on = 1; sub(/^ExecStart=/, "")} on {more = sub(/\\$/, ""); printf "%s ", $0;
         if (!more) exit}' "$units/$1.service"
}
run_unit() {
    local u=$1 user
    user=$(sed -n 's/^User=//p' "$units/$u.service")
    [ "$user" = edgefleet ] || fail "$u.service runs as '$user'"
    local -a cmd
    set -f
    read -r -a cmd <<<"$(exec_start "$u")"
    set +f
    say "run as $user: ${cmd[*]}"
    (cd / && exec setpriv --reuid=edgefleet --regid=edgefleet --init-groups -- "${cmd[@]}") \
        >"$tmp/$u.log" 2>&1 &
    pids+=($!)
}
run_unit edgefleet-coordinator
run_unit edgefleet-agent
export EDGEFLEET_COORDINATOR=tcp://127.0.0.1:7702 EDGEFLEET_SERVER_KEY=$etc/keys/coordinator.pub \
    EDGEFLEET_KEY=$tmp/tester.key
ef_wait_agent edgefleetctl board-1 "${pids[@]}" || fail "board-1 did not register"
say "board-1 registered; edgefleetctl generate"
edgefleetctl generate --model stories260K --max-tokens 16 --timeout-ms 30000 "Once upon a time" \
    >"$tmp/gen.out" 2>"$tmp/gen.log" || fail "generate exited $?"
[ -s "$tmp/gen.out" ] || fail "generate printed no text"
grep -q board-1 "$tmp/gen.log" || fail "generate does not name board-1: $(cat "$tmp/gen.log")"
for i in 1 0; do
    kill -TERM "${pids[$i]}"
    wait "${pids[$i]}" || fail "daemon $i exited $? on SIGTERM"
done
pids=()

say "apt-get remove: keys and config stay"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -o DPkg::Lock::Timeout=120 "${pkgs[@]}" \
    >>"$tmp/apt.log" 2>&1 || fail "apt-get remove"
for f in keys/coordinator.key keys/board-1.key agent.ini allow/agents/board-1.pub; do
    [ -f "$etc/$f" ] || fail "remove took $etc/$f"
done
[ ! -e /usr/bin/edgefleet-agent ] || fail "remove left /usr/bin/edgefleet-agent"
getent passwd edgefleet >/dev/null || fail "remove took the edgefleet user"

say "dpkg --purge: keys, config and user go"
rm -f /var/lib/edgefleet/models/stories260K.gguf
dpkg --purge "${pkgs[@]}" >>"$tmp/apt.log" 2>&1 || fail "dpkg --purge"
installed=
[ ! -e $etc ] || fail "purge left $etc"
[ ! -e /var/lib/edgefleet ] || fail "purge left /var/lib/edgefleet"
! getent passwd edgefleet >/dev/null || fail "purge left the edgefleet user"
! getent group edgefleet >/dev/null || fail "purge left the edgefleet group"
for p in "${pkgs[@]}"; do
    case "$(dpkg_state "$p")" in "" | ?n*) ;; *) fail "$p still known to dpkg after purge" ;; esac
done
say "ok"
