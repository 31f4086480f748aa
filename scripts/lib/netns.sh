# shellcheck shell=bash
# Helpers shared by scripts/interop.sh, scripts/ecosystem.sh and scripts/throughput.sh:
# network namespaces, bounded waits and PASS/FAIL lines. Sourced, never run.
#
# The caller sets PREFIX (every namespace it creates is named "$PREFIX-..."), and, before
# using the helpers that need them, NS (the current namespace), T (its temporary directory)
# and RESULTS (the file PASS/FAIL lines go to). Every wait is bounded: polls every 0.1 s.

loud() { printf '\n!!!!!!!! %s !!!!!!!!\n\n' "$*"; }

# skip_all WHAT REASON: says SKIP loudly and exits 0, or 1 when CI=true.
skip_all() {
    loud "SKIP $1: $2"
    if [ "${CI:-}" = true ]; then
        echo "$1: CI=true, so this is a failure" >&2
        exit 1
    fi
    exit 0
}

# ns_kill_all NS: stops every process in namespace NS (by process id: only ours live there),
# SIGTERM first, SIGKILL after 5 s.
ns_kill_all() {
    local pids i
    pids=$(ip netns pids "$1" 2>/dev/null | tr '\n' ' ')
    [ -n "${pids// /}" ] || return 0
    # shellcheck disable=SC2086
    kill $pids 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        [ -z "$(ip netns pids "$1" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    pids=$(ip netns pids "$1" 2>/dev/null | tr '\n' ' ')
    # shellcheck disable=SC2086
    [ -z "${pids// /}" ] || kill -9 $pids 2>/dev/null
}

# ns_del NS: stops what runs in NS and deletes it.
ns_del() {
    ns_kill_all "$1"
    ip netns del "$1" 2>/dev/null
}

# ns_del_all: deletes every namespace named "$PREFIX-..." (for the EXIT trap).
ns_del_all() {
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-"); do
        ns_del "$ns"
    done
}

# nsrun SECS CMD...: runs CMD in $NS for at most SECS.
nsrun() {
    local secs=$1
    shift
    ip netns exec "$NS" timeout -k 5 "$secs" "$@"
}

# nsbg NAME SECS CMD...: starts CMD in $NS in the background (at most SECS), output in
# $T/NAME.out and $T/NAME.err; its process id in BGPID.
nsbg() {
    local name=$1 secs=$2
    shift 2
    ip netns exec "$NS" timeout -k 5 "$secs" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
    BGPID=$!
}

# wait_for FILE REGEX SECS [PID]: polls until a line of FILE matches REGEX (true), or SECS
# pass or process PID ends without it (false).
wait_for() {
    local file=$1 re=$2 secs=$3 pid=${4:-} i
    for ((i = 0; i < secs * 10; i++)); do
        grep -qE -- "$re" "$file" 2>/dev/null && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            grep -qE -- "$re" "$file" 2>/dev/null
            return
        fi
        sleep 0.1
    done
    return 1
}

# wait_until SECS CMD...: polls CMD until it succeeds (true) or SECS pass (false).
wait_until() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# wait_pid PID SECS: waits for background process PID; returns its exit status, or stops it
# and returns 124 after SECS.
wait_pid() {
    local pid=$1 secs=$2 i
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 124
    fi
    wait "$pid"
}

tcp_listening() { [ -n "$(ip netns exec "$NS" ss -Hltn "sport = :$1")" ]; }
udp_listening() { [ -n "$(ip netns exec "$NS" ss -Hlun "sport = :$1")" ]; }

pass() { echo "PASS $1" | tee -a "$RESULTS"; }
fail() {
    local name=$1
    shift
    echo "FAIL $name: $*" | tee -a "$RESULTS"
}
# The last line of a log, for a failure reason.
last() { tail -n 1 "$1" 2>/dev/null | tr -d '\r'; }
