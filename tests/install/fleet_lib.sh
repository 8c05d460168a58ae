# Shell helpers for the tests that run the installed binaries as a user would (sourced).
#   ef_free_base          prints a port P with P, P+1, P+2 free on loopback
#   ef_wait_agent CTL N [PID...]   polls `CTL status` (EDGEFLEET_* set) until agent N is listed
#                         (0), or 1 after 30 s or as soon as one of the PIDs has exited
ef_free_base() {
    local base
    for _ in $(seq 1 50); do
        # below Linux's ephemeral range (32768-60999): a port there may be any connection's
        base=$((20000 + RANDOM % 12000))
        ss -ltn 2>/dev/null | grep -qE ":($base|$((base + 1))|$((base + 2)))\b" || { echo "$base"; return 0; }
    done
    return 1
}

ef_wait_agent() {
    local ctl=$1 name=$2 p
    shift 2
    local until=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$until" ]; do
        "$ctl" status --timeout-ms 1000 2>/dev/null | grep -qE "^ *$name\b" && return 0
        for p in "$@"; do kill -0 "$p" 2>/dev/null || return 1; done
        sleep 0.1
    done
    return 1
}
