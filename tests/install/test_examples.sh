#!/usr/bin/env bash
# examples/ as a user meets them: the README's client example is examples/stream.c verbatim;
# `cmake --install` into a DESTDIR, then each example built against the installed library with
# `pkg-config --cflags --libs edgefleet` and with find_package(edgefleet) (examples/CMakeLists.txt),
# and every build run against a live fleet made of the installed binaries: a coordinator and one
# agent serving the real model. Checks that tokens arrived with a finish reason, that the chat's
# second turn reused the session's KV cache, and that every batch item was answered.
#   test_examples.sh BUILD_DIR SOURCE_DIR MODEL_DIR
set -euo pipefail
build=$1 src=$2 models=$3
tmp=$(mktemp -d /tmp/edgefleet-examples.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "test_examples: FAIL: $*" >&2
    for l in "$tmp"/*.log; do [ -f "$l" ] && { echo "--- $l" >&2; tail -n 5 "$l" >&2; }; done
    exit 1
}
# shellcheck source=fleet_lib.sh
. "$src/tests/install/fleet_lib.sh"

# The README shows examples/stream.c between the marker line and the next closing fence.
awk '/^<!-- example: examples\/stream.c/ {on = 1; next} on && /^```c$/ {copy = 1; next}
     copy && /^```$/ {exit} copy {print}' "$src/README.md" >"$tmp/readme-block.c"
diff -u "$src/examples/stream.c" "$tmp/readme-block.c" >"$tmp/readme.diff" ||
    { cat "$tmp/readme.diff" >&2; fail "the README's example differs from examples/stream.c"; }

DESTDIR=$tmp/root cmake --install "$build" --prefix /opt/ef >/dev/null
root=$tmp/root/opt/ef lib=$tmp/root/opt/ef/lib
export PKG_CONFIG_PATH=$lib/pkgconfig
mkdir -p "$tmp/pc"
for ex in stream chat batch; do
    cc -std=c11 -Wall -Wextra -Werror "$src/examples/$ex.c" -o "$tmp/pc/$ex" \
        $(pkg-config --cflags --libs edgefleet) -Wl,-rpath,"$lib" ||
        fail "examples/$ex.c does not build with pkg-config"
done
cmake -S "$src/examples" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$root" >"$tmp/cmake.out" 2>&1 &&
    cmake --build "$tmp/cm" >>"$tmp/cmake.out" 2>&1 ||
    { tail -30 "$tmp/cmake.out" >&2; fail "examples/CMakeLists.txt (find_package) does not build"; }

# A fleet of installed binaries: keys from `edgefleetctl keygen`, one agent with the real model.
bin=$root/bin ctl=$root/bin/edgefleetctl
model=$models/stories260K.gguf
[ -r "$model" ] || fail "no model at $model"
mkdir -p "$tmp/keys" "$tmp/allow/agents" "$tmp/allow/clients" "$tmp/allow/operators"
for n in coordinator board-1 app ops; do "$ctl" keygen "$n" --dir "$tmp/keys" >/dev/null; done
cp "$tmp/keys/board-1.pub" "$tmp/allow/agents/"
cp "$tmp/keys/app.pub" "$tmp/allow/clients/"
cp "$tmp/keys/ops.pub" "$tmp/allow/operators/"
base=$(ef_free_base) || fail "no free ports"
"$bin/edgefleet-coordinator" --agents-endpoint "tcp://127.0.0.1:$base" \
    --clients-endpoint "tcp://127.0.0.1:$((base + 1))" --telemetry-endpoint "tcp://127.0.0.1:$((base + 2))" \
    --key "$tmp/keys/coordinator.key" --allow-dir "$tmp/allow" >"$tmp/coordinator.log" 2>&1 &
pids+=($!)
# stories260K has no chat template of its own: chatml for the chat example.
cat >"$tmp/agent.ini" <<INI
[agent]
coordinator = tcp://127.0.0.1:$base
server_key = $tmp/keys/coordinator.pub
key = $tmp/keys/board-1.key
[model stories]
path = $model
ctx = 512
slots = 2
threads = 1
chat_template = chatml
INI
"$bin/edgefleet-agent" --config "$tmp/agent.ini" >"$tmp/agent.log" 2>&1 &
pids+=($!)
export EDGEFLEET_COORDINATOR=tcp://127.0.0.1:$((base + 1)) EDGEFLEET_SERVER_KEY=$tmp/keys/coordinator.pub
EDGEFLEET_KEY=$tmp/keys/ops.key ef_wait_agent "$ctl" board-1 "${pids[@]}" ||
    fail "the agent did not register (or a daemon exited)"
export EDGEFLEET_KEY=$tmp/keys/app.key

for kind in pc cm; do
    d=$tmp/$kind
    timeout 60 "$d/stream" stories "Once upon a time" >"$tmp/out" 2>"$tmp/err" || fail "$kind/stream: $(cat "$tmp/err")"
    [ -s "$tmp/out" ] || fail "$kind/stream printed no text"
    grep -qE '^\[agent board-1, [1-9][0-9]* tokens, finish (length|stop)\]$' "$tmp/err" ||
        fail "$kind/stream summary: $(cat "$tmp/err")"

    timeout 60 "$d/chat" stories >"$tmp/out" 2>"$tmp/err" || fail "$kind/chat: $(cat "$tmp/err")"
    t1=$(grep -E '^\[turn 1: agent board-1, [1-9][0-9]* tokens' "$tmp/err") || fail "$kind/chat turn 1: $(cat "$tmp/err")"
    t2=$(grep -E '^\[turn 2: agent board-1, [1-9][0-9]* tokens' "$tmp/err") || fail "$kind/chat turn 2: $(cat "$tmp/err")"
    [[ $t2 =~ prompt\ ([0-9]+)\ evaluated\ of\ ([0-9]+) ]] || fail "$kind/chat: '$t2'"
    ((BASH_REMATCH[1] < BASH_REMATCH[2])) || fail "$kind/chat turn 2 reused no cache: '$t2' (turn 1 '$t1')"
    echo "test_examples: $kind/chat $t2"

    timeout 60 "$d/batch" stories >"$tmp/out" 2>"$tmp/err" || fail "$kind/batch: $(cat "$tmp/err")"
    grep -q '^\[6 of 6 items answered, 0 failed' "$tmp/err" || fail "$kind/batch: $(cat "$tmp/err")"
    n=$(grep -oE '^item [0-5]: agent board-1, [1-9][0-9]* tokens' "$tmp/out" | cut -d: -f1 | sort -u | wc -l)
    [ "$n" -eq 6 ] || fail "$kind/batch reported $n distinct items: $(cat "$tmp/out")"
done
echo "test_examples: ok (README block = examples/stream.c; 3 examples x pkg-config, find_package; live fleet)"
