#!/usr/bin/env bash
# Local fleet demo: set up, build, make keys, start a coordinator and two agents on loopback with
# a real GGUF model, stream an answer through `edgefleetctl generate`, show which agent served it
# and the fleet status, then stop everything it started (also on Ctrl-C).
#   scripts/demo.sh [--model PATH] [--prompt TEXT] [--max-tokens N]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

model=${EDGEFLEET_MODEL:-${EDGEFLEET_MODEL_DIR:-$root/../shared/models}/stories260K.gguf}
prompt="Once upon a time"
max_tokens=64
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -r "$model" ] || { echo "demo: model file not found: $model (use --model PATH)" >&2; exit 2; }

scripts/setup.sh
dir=$(scripts/build.sh)
bin=$root/$dir
ctl=$bin/tools/edgefleetctl

work=$(mktemp -d "${TMPDIR:-/tmp}/edgefleet-demo-XXXXXX")
pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "demo: stopped everything; logs were in $work (removed)"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ports: 17701.. unless taken; a second demo on the same box picks the next free block.
base=${EF_DEMO_PORT:-17701}
while ss -ltn 2>/dev/null | grep -qE ":($base|$((base + 1))|$((base + 2))|$((base + 3)))\b"; do base=$((base + 10)); done
http=127.0.0.1:$((base + 3))
agents_ep=tcp://127.0.0.1:$base clients_ep=tcp://127.0.0.1:$((base + 1)) telem_ep=tcp://127.0.0.1:$((base + 2))

echo "demo: keys in $work"
mkdir -p "$work/keys" "$work/allow/agents" "$work/allow/clients" "$work/allow/operators"
for n in coordinator board-a board-b demo; do "$ctl" keygen "$n" --dir "$work/keys" >/dev/null; done
cp "$work/keys/board-a.pub" "$work/keys/board-b.pub" "$work/allow/agents/"
cp "$work/keys/demo.pub" "$work/allow/operators/"

echo "demo: starting the coordinator ($agents_ep agents, $clients_ep clients)"
"$bin/coordinator/edgefleet-coordinator" --agents-endpoint "$agents_ep" --clients-endpoint "$clients_ep" \
  --telemetry-endpoint "$telem_ep" --key "$work/keys/coordinator.key" --allow-dir "$work/allow" \
  --http "$http" >"$work/coordinator.log" 2>&1 &
pids+=($!)
for n in board-a board-b; do
  echo "demo: starting agent $n with $(basename "$model")"
  "$bin/agent/edgefleet-agent" --coordinator "$agents_ep" --server-key "$work/keys/coordinator.pub" \
    --key "$work/keys/$n.key" --name "$n" --model "$model" --slots 2 --threads 1 \
    >"$work/$n.log" 2>&1 &
  pids+=($!)
done

export EDGEFLEET_COORDINATOR=$clients_ep EDGEFLEET_SERVER_KEY=$work/keys/coordinator.pub \
  EDGEFLEET_KEY=$work/keys/demo.key
echo "demo: waiting for both agents to register"
for _ in $(seq 1 100); do
  n=$("$ctl" status 2>/dev/null | grep -cE '^ *board-[ab]\b' || true)
  [ "$n" -ge 2 ] && break
  sleep 0.2
done
[ "${n:-0}" -ge 2 ] || { echo "demo: agents did not register; logs:" >&2; tail -n 5 "$work"/*.log >&2; exit 1; }

name=$(basename "$model" .gguf)
echo "demo: edgefleetctl generate --model $name \"$prompt\""
echo "----------------------------------------------------------------------"
"$ctl" generate --model "$name" --max-tokens "$max_tokens" "$prompt"
echo "----------------------------------------------------------------------"
echo "demo: the same fleet through the OpenAI HTTP API (--http $http):"
echo "demo: curl http://$http/v1/completions -d '{\"model\": \"$name\", \"prompt\": \"$prompt\", \"max_tokens\": 32}'"
curl -s "http://$http/v1/completions" \
  -d "{\"model\": \"$name\", \"prompt\": \"$prompt\", \"max_tokens\": 32}" || echo "demo: curl failed"
echo
echo "----------------------------------------------------------------------"
echo "demo: edgefleetctl status"
"$ctl" status
