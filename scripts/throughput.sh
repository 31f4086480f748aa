#!/usr/bin/env bash
# TCP throughput of ferronet on a Linux TAP device (not a test: it asserts nothing about speed).
#
# In a network namespace of its own (deleted at the end), with the kernel on one side of a TAP
# (192.0.2.1/24) and ferronet's example programs on the other (192.0.2.2/24):
#   Linux -> ferronet   scripts/netpeer.py tcp-send  to  tcp-echo --discard
#   ferronet -> Linux   tcp-client --sink            to  scripts/netpeer.py tcp-sink
# each with ferronet's default socket buffers and with 64 KiB ones; and as the reference,
# Linux -> Linux over a veth pair between two namespaces (198.51.100.0/24), with the same
# Python sender and sink and with iperf3 (if installed). Rates are measured by the receiver,
# from the accepted connection to its end, in MB/s (10^6 bytes per second); each is the median
# of RUNS transfers of BYTES. Prints a markdown table.
#
# Usage: scripts/throughput.sh [BYTES [RUNS]]     (default 268435456 bytes = 256 MiB, 3 runs)
set -uo pipefail
cd "$(dirname "$0")/.."

BYTES=${1:-268435456}
RUNS=${2:-3}
[ "$(id -u)" = 0 ] || { echo "throughput: needs root (network namespaces, TAP devices)" >&2; exit 1; }
for t in ip python3 timeout cargo; do
    command -v $t >/dev/null || { echo "throughput: needs $t" >&2; exit 1; }
done

PREFIX="fnet-$$"
T=$(mktemp -d /tmp/fnet-throughput.XXXXXX)
# The examples are a workspace of their own (examples/std/Cargo.toml says why).
BIN="$PWD/examples/std/target/release"
NETPEER="$PWD/scripts/netpeer.py"

ns_del() {
    local pids i
    pids=$(ip netns pids "$1" 2>/dev/null | tr '\n' ' ')
    # shellcheck disable=SC2086
    [ -z "${pids// /}" ] || kill $pids 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        [ -z "$(ip netns pids "$1" 2>/dev/null)" ] && break
        sleep 0.1
    done
    pids=$(ip netns pids "$1" 2>/dev/null | tr '\n' ' ')
    # shellcheck disable=SC2086
    [ -z "${pids// /}" ] || kill -9 $pids 2>/dev/null
    ip netns del "$1" 2>/dev/null
}
cleanup() {
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-"); do ns_del "$ns"; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE REGEX SECS: polls until a line of FILE matches (true) or SECS pass (false).
wait_for() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# wait_pid PID SECS: waits for PID, stopping it after SECS.
wait_pid() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
# median of the numbers on stdin.
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "-"; else print a[int((NR + 1) / 2)]}'; }
# The MB/s figures in a file, one per line.
rates() { grep -o '([0-9.]* MB/s)' "$1" | tr -d '(' | awk '{printf "%.1f\n", $1}'; }

echo "throughput: building the examples" >&2
cargo build --release -q --manifest-path examples/std/Cargo.toml || exit 1

NS="$PREFIX-tap"
ip netns add "$NS" && ip -n "$NS" link set lo up &&
    ip -n "$NS" tuntap add dev tap0 mode tap &&
    ip -n "$NS" addr add 192.0.2.1/24 dev tap0 &&
    ip -n "$NS" link set tap0 up || { echo "throughput: namespace set-up failed" >&2; exit 1; }
limit=$((BYTES / 1000000 + 60)) # seconds per transfer, at worst 1 MB/s

rows=()
# row DIRECTION LINK PROGRAMS FILE: a table row from the rates in FILE.
row() {
    local r
    r=$(rates "$4" | tr '\n' ' ')
    rows+=("| $1 | $2 | $3 | ${r% } | **$(rates "$4" | median)** |")
}

for buffer in default 65536; do
    opt=()
    [ $buffer = default ] || opt=(--buffer $buffer)

    # Linux -> ferronet.
    ip netns exec "$NS" timeout $((limit * RUNS)) "$BIN/tcp-echo" --tap tap0 --ip 192.0.2.2/24 \
        --port 9 --discard --sockets 1 --count "$RUNS" "${opt[@]}" >"$T/rx-$buffer" 2>&1 &
    pid=$!
    wait_for "$T/rx-$buffer" '^listening on 9' 20 || { echo "throughput: tcp-echo did not start" >&2; exit 1; }
    for ((i = 0; i < RUNS; i++)); do
        ip netns exec "$NS" timeout $limit python3 "$NETPEER" tcp-send 192.0.2.2 9 "$BYTES" >/dev/null
    done
    wait_pid $pid 30
    row "Linux → ferronet" "TAP" "netpeer.py tcp-send → tcp-echo --discard${opt[*]:+ ${opt[*]}}" "$T/rx-$buffer"

    # ferronet -> Linux.
    ip netns exec "$NS" timeout $((limit * RUNS)) python3 "$NETPEER" tcp-sink 9 --count "$RUNS" \
        >"$T/tx-$buffer" 2>&1 &
    pid=$!
    wait_for "$T/tx-$buffer" '^listening' 20 || { echo "throughput: sink did not start" >&2; exit 1; }
    for ((i = 0; i < RUNS; i++)); do
        ip netns exec "$NS" timeout $limit "$BIN/tcp-client" --tap tap0 --ip 192.0.2.2/24 \
            --bytes "$BYTES" --sink --timeout $limit "${opt[@]}" 192.0.2.1:9 2>/dev/null
    done
    wait_pid $pid 30
    row "ferronet → Linux" "TAP" "tcp-client --sink${opt[*]:+ ${opt[*]}} → netpeer.py tcp-sink" "$T/tx-$buffer"
done
ns_del "$NS"

# Linux -> Linux over veth.
A="$PREFIX-va" B="$PREFIX-vb"
ip netns add "$A" && ip netns add "$B" &&
    ip -n "$A" link set lo up && ip -n "$B" link set lo up &&
    ip -n "$A" link add veth0 type veth peer name veth1 netns "$B" &&
    ip -n "$A" addr add 198.51.100.1/24 dev veth0 && ip -n "$B" addr add 198.51.100.2/24 dev veth1 &&
    ip -n "$A" link set veth0 up && ip -n "$B" link set veth1 up ||
    { echo "throughput: veth set-up failed" >&2; exit 1; }
ip netns exec "$B" timeout $((limit * RUNS)) python3 "$NETPEER" tcp-sink 9 --count "$RUNS" >"$T/veth" 2>&1 &
pid=$!
wait_for "$T/veth" '^listening' 20 || { echo "throughput: sink did not start" >&2; exit 1; }
for ((i = 0; i < RUNS; i++)); do
    ip netns exec "$A" timeout $limit python3 "$NETPEER" tcp-send 198.51.100.2 9 "$BYTES" >/dev/null
done
wait_pid $pid 30
row "Linux → Linux (reference)" "veth" "netpeer.py tcp-send → tcp-sink" "$T/veth"

if command -v iperf3 >/dev/null; then
    : >"$T/iperf"
    for ((i = 0; i < RUNS; i++)); do
        ip netns exec "$B" timeout $((limit * RUNS)) iperf3 -s -1 >/dev/null 2>&1 &
        pid=$!
        for ((j = 0; j < 100; j++)); do
            [ -n "$(ip netns exec "$B" ss -Hltn 'sport = :5201')" ] && break
            sleep 0.1
        done
        ip netns exec "$A" timeout $limit iperf3 -c 198.51.100.2 -n "$BYTES" -J 2>/dev/null |
            python3 -c 'import json, sys
r = json.load(sys.stdin)["end"]["sum_received"]
print("(%.1f MB/s)" % (r["bytes"] / r["seconds"] / 1e6))' >>"$T/iperf"
        wait_pid $pid 10
    done
    row "Linux → Linux (reference)" "veth" "iperf3 -n" "$T/iperf"
fi

echo
echo "TCP throughput, $((BYTES / 1048576)) MiB per transfer, MB/s (10^6 B/s), median of $RUNS;" \
    "$(nproc) CPUs, Linux $(uname -r), MTU 1500; ferronet's default socket buffers: 8 KiB" \
    "(tcp-echo), 16 KiB (tcp-client)"
echo
echo "| direction | link | sender → receiver | runs (MB/s) | median (MB/s) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
