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
#
# With --shaped, instead: ferronet and embassy-net 0.9 side by side (the same source, the same
# TAP driver and executor: crates/ferronet-bench's `tap` binary) through a 100 Mbit/s path
# (tc tbf on the TAP's egress, and on its ingress through an ifb device), socket buffers of 4,
# 8, 16 and 64 KiB: Linux -> stack and stack -> Linux (netpeer.py, every byte checked), and
# HTTP request/response over new connections (curl, COUNT requests of 256 KiB one after the
# other in one curl, every response's size checked and the first one's bytes); and Linux -> Linux over a
# veth pair shaped the same way as the reference. Goodput in MB/s (10^6 B/s); the line allows
# 100e6 / 8 x 1460 / 1514 = 12.05 MB/s of TCP payload (tbf counts the Ethernet header).
#   scripts/throughput.sh --shaped [BYTES [RUNS [COUNT]]]   (default 16000000 bytes, 3, 100)
#
# With --shaped-loss, the same bulk transfers (16 and 64 KiB buffers) through a path with 1 %
# loss and 2.5 ms of delay each way (the userspace relay of scripts/netpeer.py, as the interop
# tests use where the kernel has no netem) and tbf at 100 Mbit/s both ways: Linux -> stack is
# a Linux sender, stack -> Linux a smoltcp sender, on the same path.
#   scripts/throughput.sh --shaped-loss [BYTES [RUNS]]       (default 8000000 bytes, 3)
# LOSS_DELAY_MS sets the delay each way (default 2.5; 0: a LAN's sub-millisecond round trip).
set -uo pipefail
cd "$(dirname "$0")/.."

SHAPED=0
if [ "${1:-}" = "--shaped" ] || [ "${1:-}" = "--shaped-loss" ]; then
    SHAPED=1
    LOSSY=0
    [ "$1" = "--shaped-loss" ] && LOSSY=1
    shift
    BYTES=${1:-$([ $LOSSY = 1 ] && echo 8000000 || echo 16000000)}
    RUNS=${2:-3}
    COUNT=${3:-100}
    LOSS_DELAY_MS=${LOSS_DELAY_MS:-2.5}
else
    BYTES=${1:-268435456}
    RUNS=${2:-3}
fi
[ "$(id -u)" = 0 ] || { echo "throughput: needs root (network namespaces, TAP devices)" >&2; exit 1; }
for t in ip python3 timeout cargo; do
    command -v $t >/dev/null || { echo "throughput: needs $t" >&2; exit 1; }
done

# shellcheck source=scripts/lib/netns.sh
. scripts/lib/netns.sh
PREFIX="fnet-$$"
T=$(mktemp -d /tmp/fnet-throughput.XXXXXX)
# The examples are a workspace of their own (examples/std/Cargo.toml says why).
BIN="$PWD/examples/std/target/release"
NETPEER="$PWD/scripts/netpeer.py"

cleanup() {
    ns_del_all
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# median of the numbers on stdin.
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "-"; else print a[int((NR + 1) / 2)]}'; }
# The MB/s figures in a file, one per line.
rates() { grep -o '([0-9.]* MB/s)' "$1" | tr -d '(' | awk '{printf "%.1f\n", $1}'; }

# veth_pair A B: namespaces A (198.51.100.1/24 on veth0) and B (198.51.100.2/24 on veth1).
veth_pair() {
    ip netns add "$1" && ip netns add "$2" &&
        ip -n "$1" link set lo up && ip -n "$2" link set lo up &&
        ip -n "$1" link add veth0 type veth peer name veth1 netns "$2" &&
        ip -n "$1" addr add 198.51.100.1/24 dev veth0 && ip -n "$2" addr add 198.51.100.2/24 dev veth1 &&
        ip -n "$1" link set veth0 up && ip -n "$2" link set veth1 up
}

# veth_transfers A B: RUNS transfers of BYTES from A to B's sink; the sink's lines in $T/veth.
veth_transfers() {
    ip netns exec "$2" timeout $((limit * RUNS)) python3 "$NETPEER" tcp-sink 9 --count "$RUNS" >"$T/veth" 2>&1 &
    local pid=$! i
    wait_for "$T/veth" '^listening' 20 || { echo "throughput: sink did not start" >&2; exit 1; }
    for ((i = 0; i < RUNS; i++)); do
        ip netns exec "$1" timeout $limit python3 "$NETPEER" tcp-send 198.51.100.2 9 "$BYTES" >/dev/null
    done
    wait_pid $pid 30
}

# shape NS DEV [IFB]: 100 Mbit/s tbf on DEV's egress and (through IFB, created) its ingress.
shape() {
    local q="rate 100mbit burst 32kb latency 50ms"
    # shellcheck disable=SC2086
    ip netns exec "$1" tc qdisc add dev "$2" root tbf $q || return 1
    [ -n "${3:-}" ] || return 0
    ip -n "$1" link add "$3" type ifb && ip -n "$1" link set "$3" up &&
        ip netns exec "$1" tc qdisc add dev "$2" handle ffff: ingress &&
        ip netns exec "$1" tc filter add dev "$2" parent ffff: protocol all u32 match u32 0 0 \
            action mirred egress redirect dev "$3" &&
        # shellcheck disable=SC2086
        ip netns exec "$1" tc qdisc add dev "$3" root tbf $q
}

if [ $SHAPED = 1 ]; then
    echo "throughput: building the tap benchmark" >&2
    cargo build --release -q -p ferronet-bench --bin tap || exit 1
    # The bench is in the root workspace (examples/std is a workspace of its own).
    TAPB="${CARGO_TARGET_DIR:-$PWD/target}/release/tap"
    limit=$((BYTES / 500000 + 60)) # seconds per transfer, at worst 0.5 MB/s
    NS="$PREFIX-shaped"
    if [ $LOSSY = 1 ]; then
        # The stack's TAP (tap0) is the relay's; the Linux addresses are on wire0, shaped.
        ip netns add "$NS" && ip -n "$NS" link set lo up &&
            ip -n "$NS" tuntap add dev tap0 mode tap && ip -n "$NS" link set tap0 arp off &&
            ip netns exec "$NS" sysctl -q net.ipv6.conf.tap0.disable_ipv6=1 &&
            ip -n "$NS" link set tap0 up &&
            ip -n "$NS" tuntap add dev wire0 mode tap &&
            ip -n "$NS" addr add 192.0.2.1/24 dev wire0 && ip -n "$NS" link set wire0 up &&
            shape "$NS" wire0 ifb0 ||
            { echo "throughput: namespace or tc set-up failed (tbf, ifb, u32 needed)" >&2; exit 1; }
        ip netns exec "$NS" timeout 3600 python3 "$NETPEER" relay tap0 wire0 0.01 "$LOSS_DELAY_MS" 1 >"$T/relay" 2>&1 &
        wait_for "$T/relay" '^listening' 10 || { echo "throughput: relay did not start" >&2; exit 1; }
        buffers="16384 65536"
    else
        ip netns add "$NS" && ip -n "$NS" link set lo up &&
            ip -n "$NS" tuntap add dev tap0 mode tap &&
            ip -n "$NS" addr add 192.0.2.1/24 dev tap0 &&
            ip -n "$NS" link set tap0 up && shape "$NS" tap0 ifb0 ||
            { echo "throughput: namespace or tc set-up failed (tbf, ifb, u32 needed)" >&2; exit 1; }
        buffers="4096 8192 16384 65536"
    fi
    python3 -c "import sys; sys.stdout.buffer.write(bytes(i % 251 for i in range(262144)))" >"$T/body"
    srows=()
    fail=0
    for buffer in $buffers; do
        for stack in ferronet embassy; do
            k="$stack-$buffer"
            # Linux -> stack.
            ip netns exec "$NS" timeout $((limit * RUNS)) "$TAPB" --stack $stack --tap tap0 \
                --ip 192.0.2.2/24 --mode sink --port 9 --count "$RUNS" --buffer $buffer >"$T/rx-$k" 2>&1 &
            pid=$!
            wait_for "$T/rx-$k" '^listening on 9' 20 || { echo "throughput: tap did not start" >&2; cat "$T/rx-$k" >&2; exit 1; }
            for ((i = 0; i < RUNS; i++)); do
                ip netns exec "$NS" timeout $limit python3 "$NETPEER" tcp-send 192.0.2.2 9 "$BYTES" --pattern >/dev/null
            done
            wait_pid $pid 30
            [ "$(grep -c '^received '"$BYTES"' bytes' "$T/rx-$k")" = "$RUNS" ] || { echo "FAIL: Linux -> $stack, $buffer B: $(cat "$T/rx-$k")" >&2; fail=1; }
            rx=$(rates "$T/rx-$k" | median)
            # stack -> Linux.
            ip netns exec "$NS" timeout $((limit * RUNS)) python3 "$NETPEER" tcp-sink 9 --pattern --count "$RUNS" \
                >"$T/tx-$k" 2>&1 &
            pid=$!
            wait_for "$T/tx-$k" '^listening' 20 || { echo "throughput: sink did not start" >&2; exit 1; }
            ip netns exec "$NS" timeout $((limit * RUNS)) "$TAPB" --stack $stack --tap tap0 --ip 192.0.2.2/24 \
                --mode send --peer 192.0.2.1:9 --bytes "$BYTES" --count "$RUNS" --buffer $buffer >/dev/null 2>"$T/txerr-$k" ||
                { echo "FAIL: $stack -> Linux, $buffer B: $(cat "$T/txerr-$k")" >&2; fail=1; }
            wait_pid $pid 30
            [ "$(grep -c "^received $BYTES bytes" "$T/tx-$k")" = "$RUNS" ] || { echo "FAIL: $stack -> Linux, $buffer B: $(cat "$T/tx-$k")" >&2; fail=1; }
            tx=$(rates "$T/tx-$k" | median)
            if [ $LOSSY = 1 ]; then
                srows+=("| $((buffer / 1024)) KiB | $stack | $rx | $tx |")
                continue
            fi
            # HTTP over new connections: COUNT requests one after the other.
            ip netns exec "$NS" timeout $((COUNT + 60)) "$TAPB" --stack $stack --tap tap0 --ip 192.0.2.2/24 \
                --mode http --port 8080 --bytes 262144 --count "$COUNT" --buffer $buffer >"$T/http-$k" 2>&1 &
            pid=$!
            wait_for "$T/http-$k" '^listening on 8080' 20 || { echo "throughput: tap http did not start" >&2; exit 1; }
            ip netns exec "$NS" curl -s -o "$T/got" --max-time 10 http://192.0.2.2:8080/ && cmp -s "$T/got" "$T/body" ||
                { echo "FAIL: $stack HTTP body differs" >&2; fail=1; }
            # One curl for all requests (no process start-up between them); each URL is a new
            # connection, as the server answers with `Connection: close`.
            urls=()
            for ((i = 1; i < COUNT; i++)); do urls+=(-o /dev/null http://192.0.2.2:8080/); done
            start=$(date +%s.%N)
            ok=$(ip netns exec "$NS" curl -s --max-time 10 -w '%{http_code} %{size_download}\n' "${urls[@]}" |
                grep -c '^200 262144$')
            end=$(date +%s.%N)
            wait_pid $pid 10
            [ "$ok" = $((COUNT - 1)) ] || { echo "FAIL: $stack HTTP: $ok of $((COUNT - 1)) responses complete" >&2; fail=1; }
            http=$(awk -v n=$((COUNT - 1)) -v a="$start" -v b="$end" 'BEGIN {printf "%.1f req/s, %.2f MB/s", n / (b - a), n * 262144 / (b - a) / 1e6}')
            srows+=("| $((buffer / 1024)) KiB | $stack | $rx | $tx | $http |")
        done
    done
    ns_del "$NS"
    if [ $LOSSY = 1 ]; then
        echo
        echo "TCP through 1 % loss each way, $LOSS_DELAY_MS ms delay each way (userspace relay) and 100 Mbit/s" \
            "(tc tbf both ways), $BYTES bytes per transfer, MB/s (10^6 B/s), median of $RUNS;" \
            "Linux -> stack: a Linux sender; stack -> Linux: the stack's (smoltcp's) sender"
        echo
        echo "| socket buffers | stack | Linux → stack | stack → Linux |"
        echo "|---|---|--:|--:|"
        printf '%s\n' "${srows[@]}"
        exit $fail
    fi

    # Linux -> Linux over veth, shaped the same way (reference).
    A="$PREFIX-sa" B="$PREFIX-sb"
    veth_pair "$A" "$B" && shape "$A" veth0 && shape "$B" veth1 ||
        { echo "throughput: veth set-up failed" >&2; exit 1; }
    veth_transfers "$A" "$B"
    ref=$(rates "$T/veth" | median)

    echo
    echo "TCP through a 100 Mbit/s path (tc tbf both ways), $BYTES bytes per transfer, MB/s" \
        "(10^6 B/s), median of $RUNS; HTTP: $((COUNT - 1)) requests of 256 KiB over new connections" \
        "(curl, one after the other); $(nproc) CPUs, Linux $(uname -r). Line limit: 12.05 MB/s;" \
        "Linux -> Linux on the same shaping (veth): $ref MB/s"
    echo
    echo "| socket buffers | stack | Linux → stack | stack → Linux | HTTP (curl) |"
    echo "|---|---|--:|--:|---|"
    printf '%s\n' "${srows[@]}"
    exit $fail
fi

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
veth_pair "$A" "$B" || { echo "throughput: veth set-up failed" >&2; exit 1; }
veth_transfers "$A" "$B"
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
