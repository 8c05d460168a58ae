#!/usr/bin/env bash
# Agent vs llama.cpp, same release, same model, same threads, same box, same run: builds
# bench_agent and edgefleet-agent, makes the synthetic Qwen2.5-0.5B-shaped model if it is
# missing, and runs bench_agent on stories260K (real, tiny) and on the synthetic model.
#   bench/run_agent_bench.sh [--build-dir DIR] [--threads N] [--reps N] [--models LIST]
#                            [--summary FILE]     LIST: stories,synthetic (default both)
# A benchmark, never a test: figures move with the machine's load; it prints, it does not fail
# on a ratio.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-bench threads=2 reps=3 models=stories,synthetic summary=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --summary) summary=$2; shift 2 ;;
    *) echo "usage: $0 [--build-dir DIR] [--threads N] [--reps N] [--models stories,synthetic] [--summary FILE]" >&2; exit 2 ;;
    esac
done

cache=${XDG_CACHE_HOME:-$HOME/.cache}/edgefleet/models
model_dir=${EDGEFLEET_MODEL_DIR:-$(cd .. && pwd)/shared/models}
stories=$model_dir/stories260K.gguf
synthetic=$cache/synthetic-qwen2.5-0.5b-shaped-q4_k_m.gguf

echo "[run_agent_bench] building bench_agent, gen_synthetic_qwen, edgefleet-agent in $build (-j2)" >&2
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target bench_agent gen_synthetic_qwen edgefleet-agent >&2

if [[ ,$models, == *,synthetic,* ]] && [ ! -s "$synthetic" ]; then
    echo "[run_agent_bench] generating the synthetic model into $cache (about a minute)" >&2
    "$build/bench/gen_synthetic_qwen" --threads "$threads" >/dev/null
fi

summary_args=()
[ -n "$summary" ] && summary_args=(--summary "$summary")
run() { # label model tg-target
    "$build/bench/bench_agent" --agent "$build/agent/edgefleet-agent" --model "$2" \
        --label "$1" --threads "$threads" --reps "$reps" --pl 1,2,4 --tg-target "$3" \
        --agg-target 0.95 "${summary_args[@]}"
}
echo "[run_agent_bench] $(uptime)  (the box is shared: load moves every figure)" >&2
if [[ ,$models, == *,stories,* ]]; then
    run "stories260K (real, F32)" "$stories" 0.90
fi
if [[ ,$models, == *,synthetic,* ]]; then
    run "synthetic qwen2.5-0.5b-shaped Q4_K_M (synthetic)" "$synthetic" 0.97
fi
