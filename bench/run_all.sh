#!/usr/bin/env bash
# Every edgefleet benchmark in one go: builds what is needed (build-bench/, -j2), generates the
# synthetic Qwen2.5-0.5B-shaped model if it is missing, runs the agent benches (stories260K and
# the synthetic model, against llama-bench / llama-batched-bench), the coordinator bench and the
# scheduler's makespan bench, and prints one summary table (agent and coordinator figures; the
# makespan bench prints its own). Benchmarks, never tests: every figure is a ratio against a baseline
# measured in the same run, and the box's load moves them; nothing here fails on a ratio.
#   bench/run_all.sh [--build-dir DIR] [--threads N] [--reps N] [--quick]
#   --quick: 1 round and fewer coordinator samples, to check the wiring
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-bench threads=2 reps=3 samples=2000 seconds=3
while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --quick) reps=1 samples=300 seconds=1; shift ;;
    *) echo "usage: $0 [--build-dir DIR] [--threads N] [--reps N] [--quick]" >&2; exit 2 ;;
    esac
done

summary=$(mktemp /tmp/edgefleet-bench-summary.XXXXXX)
trap 'rm -f "$summary"' EXIT
log() { echo "[run_all +${SECONDS}s] $*" >&2; }

log "building in $build (-j2): bench_agent bench_coordinator bench_makespan gen_synthetic_qwen edgefleet-agent edgefleet-coordinator"
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target bench_agent bench_coordinator bench_makespan \
    gen_synthetic_qwen edgefleet-agent edgefleet-coordinator >/dev/null

log "agent benches (each prints its own table as it finishes)"
bench/run_agent_bench.sh --build-dir "$build" --threads "$threads" --reps "$reps" \
    --summary "$summary"

log "coordinator bench"
"$build/bench/bench_coordinator" --coordinator "$build/coordinator/edgefleet-coordinator" \
    --samples "$samples" --reps "$reps" --seconds "$seconds" --summary "$summary"

log "scheduler makespan (simulated fleet, fake clock)"
"$build/bench/bench_makespan"

llama_desc=$(cat "${XDG_CACHE_HOME:-$HOME/.cache}/edgefleet/llama.cpp-3.22.1/prefix/.edgefleet-built" 2>/dev/null || echo "llama.cpp")
echo
echo "== edgefleet benchmark summary ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, -t $threads, median of $reps; baseline: $llama_desc) =="
echo "   load at the end: $(cut -d' ' -f1-3 /proc/loadavg)   (a shared box moves these figures)"
{
    printf 'model\tmetric\tedgefleet\tbaseline\tratio\ttarget\n'
    cat "$summary"
} | column -t -s $'\t'
