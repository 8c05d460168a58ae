#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -DEF_FUZZ=ON, build-fuzz/) and runs each one, seeded from
# tests/fuzz/corpus/<target>/ (committed seeds); prints one table
# of executions, time, coverage and outcome per target. A crash, leak or timeout fails the run
# and leaves its input in build-fuzz/fuzz-artifacts/.
#   bench/fuzz.sh [--runs N] [--smoke] [--only TARGET] [--build-dir DIR]
#   default: 1,000,000 executions per target (README "Fuzzing" figures)
#   --smoke: a few seconds per target, for CI
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-fuzz runs=1000000 seconds=0 only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=$2; shift 2 ;;
    --smoke) runs=0 seconds=${EF_FUZZ_SMOKE_S:-4}; shift ;;
    --only) only=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--runs N] [--smoke] [--only TARGET] [--build-dir DIR]" >&2; exit 2 ;;
    esac
done
log() { echo "[fuzz +${SECONDS}s] $*" >&2; }

log "configuring and building $build (clang, -DEF_FUZZ=ON, log: $build/build.log)"
mkdir -p "$build"
CC=clang cmake -S . -B "$build" -DEF_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/build.log"
targets=()
[ -n "$only" ] && targets=(--target "$only") # one target: build only it
if ! cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" "${targets[@]}" >>"$build/build.log" 2>&1; then
    grep -E -B2 -A8 "error:|Error " "$build/build.log" | head -60 >&2
    log "build FAILED"
    exit 1
fi
bins=$(find "$build/tests/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x | sort)
[ -n "$only" ] && [ ! -x "$build/tests/fuzz/$only" ] && { log "no target $only"; exit 2; }
[ -n "$bins" ] || { log "no fuzz targets were built"; exit 1; }

mkdir -p "$build/fuzz-artifacts"
table=$(mktemp /tmp/edgefleet-fuzz.XXXXXX)
trap 'rm -f "$table"' EXIT
failed=0
for bin in $bins; do
    t=$(basename "$bin")
    [ -z "$only" ] || [ "$only" = "$t" ] || continue
    work=$build/fuzz-corpus/$t # new inputs go here, never into the committed seeds
    mkdir -p "$work"
    dirs=("$work")
    [ -d "tests/fuzz/corpus/$t" ] && dirs+=("tests/fuzz/corpus/$t")
    limit=(-runs="$runs")
    [ "$seconds" != 0 ] && limit=(-max_total_time="$seconds")
    log "$t: ${limit[*]}"
    out=$build/fuzz-$t.log
    rc=0
    # Targets that need files (keys, allowlists) make them under $TMPDIR; keep that per run.
    tmp=$(mktemp -d /tmp/edgefleet-fuzz-$t.XXXXXX)
    TMPDIR=$tmp "$bin" "${limit[@]}" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/fuzz-artifacts/$t-" "${dirs[@]}" >"$out" 2>&1 || rc=$?
    rm -rf "$tmp"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$out" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$out" | tail -1 | cut -d' ' -f2)
    corp=$(grep -o 'corp: [0-9]*' "$out" | tail -1 | cut -d' ' -f2)
    verdict=clean
    if [ "$rc" != 0 ]; then
        verdict="FAILED (rc $rc, see $out)"
        failed=1
        grep -E -m3 "ERROR: |SUMMARY: |check failed" "$out" >&2 || tail -5 "$out" >&2
    fi
    printf '%-24s %12s %8s %7s %7s  %s\n' "$t" "${execs:-?}" "${secs:-?}" "${cov:-?}" \
        "${corp:-?}" "$verdict" >>"$table"
done
printf '\n%-24s %12s %8s %7s %7s  %s\n' target executions seconds cov corpus outcome
cat "$table"
echo "box: $(nproc) cores, $(uname -m), $(clang --version | head -1)"
exit "$failed"
