#!/usr/bin/env bash
# Key provisioning for a fleet, run on the coordinator host by an operator.
#   deploy/provision-keys.sh coordinator            coordinator key pair in /etc/edgefleet/keys
#   deploy/provision-keys.sh agent NAME             key pair for board NAME + admit it
#   deploy/provision-keys.sh client NAME            key pair for a program + admit it
#   deploy/provision-keys.sh operator NAME          key pair for an operator + admit it
#   deploy/provision-keys.sh revoke KIND NAME       remove NAME from the allowlist (next connection)
# Secret keys are written 0600 and never overwritten. Copy an agent's NAME.key and the
# coordinator's coordinator.pub to the board (e.g. with scp) and delete the copy here.
set -euo pipefail
ETC=${EDGEFLEET_ETC:-/etc/edgefleet}
CTL=${EDGEFLEETCTL:-edgefleetctl}
kind=${1:-}; name=${2:-}
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
case "$kind" in
  coordinator) mkdir -p "$ETC/keys" && "$CTL" keygen coordinator --dir "$ETC/keys" ;;
  agent|client|operator)
    [ -n "$name" ] || usage
    mkdir -p "$ETC/keys" "$ETC/allow/${kind}s"
    "$CTL" keygen "$name" --dir "$ETC/keys"
    cp "$ETC/keys/$name.pub" "$ETC/allow/${kind}s/$name.pub"
    echo "admitted $kind $name: $ETC/allow/${kind}s/$name.pub" ;;
  revoke)
    [ -n "$name" ] && [ -n "${3:-}" ] || usage
    rm -v "$ETC/allow/${name}s/${3}.pub" ;;
  *) usage ;;
esac
