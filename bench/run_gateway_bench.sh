#!/usr/bin/env bash
# The OpenAI HTTP gateway's benchmark, in one go:
#  1. bench_gateway on instant fake agents: added time to first token and requests/s of the
#     gateway (HTTP/1.1 keep-alive, whole and streamed) against libedgefleet on the same
#     coordinator, with 1-token answers and with --tokens-long-token answers;
#  2. for each model: 4 concurrent streams through the gateway in front of a real
#     edgefleet-agent (4 slots) against llama-server -np 4 on the same model file, same threads,
#     same context per slot, same batch sizes, one KV stream per slot on both, rounds
#     alternating (bench_gateway --llm). llama-server is not built by scripts/setup.sh: it is
#     built here on demand, once, from the cached llama.cpp source (never in CI).
#   bench/run_gateway_bench.sh [--build-dir DIR] [--threads N] [--reps N] [--rounds N]
#       [--models stories,synthetic] [--max-tokens N] [--ctx N] [--tokens-long N]
#       [--skip-fake] [--skip-llm] [--summary FILE]
# A benchmark, never a test: it prints ratios and fails only when something does not start.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build=build-bench threads=2 reps=3 rounds=6 models=stories,synthetic max_tokens=128 ctx=512
tokens_long=32 skip_fake=0 skip_llm=0 summary=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    --ctx) ctx=$2; shift 2 ;;
    --tokens-long) tokens_long=$2; shift 2 ;;
    --skip-fake) skip_fake=1; shift ;;
    --skip-llm) skip_llm=1; shift ;;
    --summary) summary=$2; shift 2 ;;
    *) sed -n '2,15p' "$0" >&2; exit 2 ;;
    esac
done
log() { echo "[run_gateway_bench +${SECONDS}s] $*" >&2; }

cache=${XDG_CACHE_HOME:-$HOME/.cache}/edgefleet
llama_root=${EDGEFLEET_CACHE:-$cache}/llama.cpp-3.22.1
model_dir=${EDGEFLEET_MODEL_DIR:-$(cd .. && pwd)/shared/models}
declare -A model_path=([stories]=$model_dir/stories260K.gguf
    [synthetic]=$cache/models/synthetic-qwen2.5-0.5b-shaped-q4_k_m.gguf)
declare -A model_label=([stories]="stories260K (real, F32)"
    [synthetic]="synthetic qwen2.5-0.5b-shaped Q4_K_M (synthetic)")
summary_args=()
[ -n "$summary" ] && summary_args=(--summary "$summary")

log "building bench_gateway, edgefleet-coordinator, edgefleet-agent, edgefleetctl, gen_synthetic_qwen in $build (-j2)"
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target bench_gateway edgefleet-coordinator edgefleet-agent \
    edgefleetctl gen_synthetic_qwen >&2
bin=$root/$build

log "$(uptime)  (the box is shared: load moves every figure)"
if [ "$skip_fake" = 0 ]; then
    for t in 1 "$tokens_long"; do
        log "gateway vs libedgefleet, instant fake agents, $t-token answers"
        "$bin/bench/bench_gateway" --coordinator "$bin/coordinator/edgefleet-coordinator" \
            --tokens "$t" --reps "$reps" "${summary_args[@]}"
    done
fi
[ "$skip_llm" = 1 ] && exit 0

# ---- llama-server, built once from the cached source tree (setup.sh's configure + SERVER=ON) ----
server=$llama_root/build-server/bin/llama-server
if [ ! -x "$server" ]; then
    if [ -n "${CI:-}" ]; then
        log "llama-server is not built and this is CI: skipping the 4-stream comparison"
        exit 0
    fi
    [ -d "$llama_root/src" ] || { log "no llama.cpp source at $llama_root/src: run scripts/setup.sh"; exit 1; }
    log "building llama-server into $llama_root/build-server (once; ~10 minutes on 2 cores)"
    cmake -S "$llama_root/src" -B "$llama_root/build-server" -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
        -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENMP=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=ON \
        -DLLAMA_TOOLS_INSTALL=OFF -DLLAMA_BUILD_COMMON=ON >"$llama_root/configure-server.log" 2>&1 \
        || { tail -20 "$llama_root/configure-server.log" >&2; exit 1; }
    cmake --build "$llama_root/build-server" -j2 --target llama-server \
        >"$llama_root/build-server.log" 2>&1 || { tail -20 "$llama_root/build-server.log" >&2; exit 1; }
fi

if [[ ,$models, == *,synthetic,* ]] && [ ! -s "${model_path[synthetic]}" ]; then
    log "generating the synthetic model into $cache/models (about a minute)"
    "$bin/bench/gen_synthetic_qwen" --threads "$threads" >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/edgefleet-gwbench-llm-XXXXXX")
pids=()
stop_all() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
trap 'rc=$?; stop_all; if [ $rc = 0 ]; then rm -rf "$work"; else echo "logs kept in $work" >&2; fi' EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_health() { # URL seconds PID: 0 once /health says 200; 1 at the time limit or when PID died
    for _ in $(seq 1 $(($2 * 5))); do
        kill -0 "$3" 2>/dev/null || return 1
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/health" || true)" = 200 ] && return 0
        sleep 0.2
    done
    return 1
}

ctl=$bin/tools/edgefleetctl
mkdir -p "$work/keys" "$work/allow/agents" "$work/allow/clients" "$work/allow/operators"
for n in coordinator board; do "$ctl" keygen "$n" --dir "$work/keys" >/dev/null; done
cp "$work/keys/board.pub" "$work/allow/agents/"

for m in ${models//,/ }; do
    path=${model_path[$m]:-}
    [ -s "$path" ] || { log "model $m not found at $path: skipped"; continue; }
    # Ports are picked free and bound a moment later: another engineer's process may take one
    # in between, so a coordinator that dies at start is started again on new ones.
    up=0
    for attempt in 1 2 3; do
        gw_port=$(free_port) srv_port=$(free_port) a=$(free_port) c=$(free_port) t=$(free_port)
        log "$m: coordinator --http 127.0.0.1:$gw_port + edgefleet-agent (4 slots x ctx $ctx, -t $threads)"
        "$bin/coordinator/edgefleet-coordinator" --key "$work/keys/coordinator.key" \
            --allow-dir "$work/allow" --agents-endpoint "tcp://127.0.0.1:$a" \
            --clients-endpoint "tcp://127.0.0.1:$c" --telemetry-endpoint "tcp://127.0.0.1:$t" \
            --http "127.0.0.1:$gw_port" >"$work/coordinator-$m.log" 2>&1 &
        coord_pid=$!
        pids+=($!)
        "$bin/agent/edgefleet-agent" --coordinator "tcp://127.0.0.1:$a" \
            --server-key "$work/keys/coordinator.pub" --key "$work/keys/board.key" --model "$path" \
            --slots 4 --ctx "$ctx" --threads "$threads" >"$work/agent-$m.log" 2>&1 &
        pids+=($!)
        log "$m: llama-server -np 4 -c $((4 * ctx)) -t $threads -b 256 -ub 256 --no-kv-unified on 127.0.0.1:$srv_port"
        "$server" -m "$path" --host 127.0.0.1 --port "$srv_port" -np 4 -c $((4 * ctx)) \
            --no-kv-unified -t "$threads" -tb "$threads" -b 256 -ub 256 --no-webui \
            >"$work/llama-server-$m.log" 2>&1 &
        srv_pid=$!
        pids+=($!)
        if wait_health "http://127.0.0.1:$gw_port" 60 "$coord_pid" &&
            wait_health "http://127.0.0.1:$srv_port" 120 "$srv_pid"; then
            up=1
            break
        fi
        log "$m: a server did not come up (attempt $attempt); last log lines:"
        tail -n 3 "$work"/*-"$m".log >&2
        stop_all
    done
    [ "$up" = 1 ] || exit 1
    name=$(curl -s "http://127.0.0.1:$gw_port/v1/models" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
    log "$m: both up (the gateway serves \"$name\"); $rounds rounds each"
    "$bin/bench/bench_gateway" --llm --gateway "127.0.0.1:$gw_port" \
        --server "127.0.0.1:$srv_port" --model "$name" --streams 4 --max-tokens "$max_tokens" \
        --rounds "$rounds" --label "${model_label[$m]}, -t $threads, ctx $ctx/slot" \
        "${summary_args[@]}" || { log "$m: bench_gateway --llm failed"; exit 1; }
    stop_all
done
