#!/usr/bin/env bash
# Where does a connection between Linux and ferronet (or embassy-net 0.9) stand still? Issue 13,
# item 0: a stack that sends something Linux answers late (a keep-alive probe, a window update,
# an ACK of a FIN, the last segment of a response) shows as a gap of about 40 ms (Linux's
# delayed ACK) or 200 ms (its minimum retransmission timeout) inside one connection.
#
# In a network namespace of its own (deleted at the end): Linux on a TAP (192.0.2.1/24), the
# bench's `tap` binary (192.0.2.2/24) on the other side, tshark capturing on the TAP. Three
# workloads: HTTP over new connections (curl, COUNT responses of BYTES), Linux -> stack and
# stack -> Linux bulk transfers of 4 MB (netpeer.py, every byte checked). For each, prints the
# connections and packets captured, a histogram of the gaps between consecutive packets of one
# connection above THRESHOLD ms, and the largest gaps with the packets around them. Not a
# test: nothing is asserted (on a loaded machine, gaps of a few ms are scheduling).
#
# Usage: sudo scripts/ack-gaps.sh [--stack ferronet|embassy] [--buffer BYTES] [--bytes BYTES]
#                                 [--count N] [--threshold MS] [--shaped] [--keep DIR]
#   --shaped: 100 Mbit/s tbf both ways on the TAP (as `throughput.sh --shaped`)
#   --keep DIR: keep the captures (pcap) in DIR
set -uo pipefail
cd "$(dirname "$0")/.."

STACK=ferronet BUFFER=4096 BYTES=262144 COUNT=40 THRESHOLD=20 SHAPED=0 KEEP=""
while [ $# -gt 0 ]; do
    case "$1" in
    --stack) STACK=$2; shift ;;
    --buffer) BUFFER=$2; shift ;;
    --bytes) BYTES=$2; shift ;;
    --count) COUNT=$2; shift ;;
    --threshold) THRESHOLD=$2; shift ;;
    --shaped) SHAPED=1 ;;
    --keep) KEEP=$2; shift ;;
    *) echo "usage: see the header of $0" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "ack-gaps: needs root (network namespaces, TAP devices)" >&2; exit 1; }
for t in ip tshark curl python3 timeout cargo; do
    command -v $t >/dev/null || { echo "ack-gaps: needs $t" >&2; exit 1; }
done

NS="fnet-gaps-$$"
T=$(mktemp -d /tmp/fnet-gaps.XXXXXX)
NETPEER="$PWD/scripts/netpeer.py"
cleanup() {
    local pids i
    for ((i = 0; i < 2; i++)); do
        pids=$(ip netns pids "$NS" 2>/dev/null | tr '\n' ' ')
        # shellcheck disable=SC2086
        [ -z "${pids// /}" ] || kill $([ $i = 1 ] && echo -9) $pids 2>/dev/null
        sleep 0.5
    done
    ip netns del "$NS" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_for() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

cargo build --release -q -p ferronet-bench --bin tap || exit 1
TAPB="$PWD/target/release/tap"
ip netns add "$NS" && ip -n "$NS" link set lo up &&
    ip -n "$NS" tuntap add dev tap0 mode tap &&
    ip -n "$NS" addr add 192.0.2.1/24 dev tap0 && ip -n "$NS" link set tap0 up ||
    { echo "ack-gaps: namespace set-up failed" >&2; exit 1; }
if [ $SHAPED = 1 ]; then
    q="rate 100mbit burst 32kb latency 50ms"
    # shellcheck disable=SC2086
    ip netns exec "$NS" tc qdisc add dev tap0 root tbf $q &&
        ip -n "$NS" link add ifb0 type ifb && ip -n "$NS" link set ifb0 up &&
        ip netns exec "$NS" tc qdisc add dev tap0 handle ffff: ingress &&
        ip netns exec "$NS" tc filter add dev tap0 parent ffff: protocol all u32 match u32 0 0 \
            action mirred egress redirect dev ifb0 &&
        ip netns exec "$NS" tc qdisc add dev ifb0 root tbf $q ||
        { echo "ack-gaps: tc set-up failed (tbf, ifb, u32 needed)" >&2; exit 1; }
fi
stack_args=(--stack "$STACK" --tap tap0 --ip 192.0.2.2/24 --buffer "$BUFFER")

# capture NAME: start tshark on the TAP into $T/NAME.pcap; stop it with `stop_capture`.
capture() {
    ip netns exec "$NS" timeout 300 tshark -q -i tap0 -f tcp -w "$T/$1.pcap" >"$T/tshark.log" 2>&1 &
    CAP=$!
    wait_for "$T/tshark.log" 'Capturing' 10 || { echo "ack-gaps: tshark did not start" >&2; exit 1; }
    sleep 0.5 # "Capturing" is printed a little before packets are taken
}
stop_capture() {
    sleep 0.5
    kill "$CAP" 2>/dev/null
    wait "$CAP" 2>/dev/null
}
report() {
    python3 - "$T/$1.pcap" "$THRESHOLD" <<'PY'
import collections, subprocess, sys
pcap, threshold = sys.argv[1], float(sys.argv[2]) / 1000
fields = ["frame.time_relative", "tcp.stream", "ip.src", "tcp.srcport", "tcp.flags.str",
          "tcp.seq", "tcp.ack", "tcp.len", "tcp.window_size"]
cmd = ["tshark", "-r", pcap, "-T", "fields"] + [a for f in fields for a in ("-e", f)]
out = subprocess.run(cmd, capture_output=True, text=True).stdout
streams = collections.defaultdict(list)
for line in out.splitlines():
    f = line.split("\t")
    streams[f[1]].append(f)
gaps = sorted(((float(b[0]) - float(a[0]), s, a, b) for s, p in streams.items()
               for a, b in zip(p, p[1:]) if float(b[0]) - float(a[0]) > threshold), reverse=True)
print(f"  {len(streams)} connections, {sum(map(len, streams.values()))} packets, "
      f"{len(gaps)} gaps over {threshold * 1000:.0f} ms")
if gaps:
    hist = collections.Counter(int(g[0] * 100) * 10 for g in gaps)
    print("  gaps by 10 ms:", ", ".join(f"{k}-{k + 10} ms: {v}" for k, v in sorted(hist.items())))
show = lambda p: f"{p[2]}:{p[3]} [{p[4].strip(chr(0xb7))}] seq {p[5]} ack {p[6]} len {p[7]} win {p[8]}"
for d, s, a, b in gaps[:5]:
    print(f"  connection {s}, {d * 1000:.1f} ms between\n    {show(a)}\n    {show(b)}")
PY
}

echo "ack-gaps: $STACK, socket buffers $BUFFER B$([ $SHAPED = 1 ] && echo ', 100 Mbit/s')"
capture http
ip netns exec "$NS" timeout 120 "$TAPB" "${stack_args[@]}" --mode http --port 8080 \
    --bytes "$BYTES" --count "$COUNT" >"$T/http.log" 2>&1 &
wait_for "$T/http.log" '^listening on 8080' 20 || { echo "ack-gaps: tap did not start" >&2; exit 1; }
urls=()
for ((i = 0; i < COUNT; i++)); do urls+=(-o /dev/null http://192.0.2.2:8080/); done
ok=$(ip netns exec "$NS" curl -s --max-time 20 -w '%{http_code} %{size_download}\n' "${urls[@]}" |
    grep -c "^200 $BYTES\$")
stop_capture
echo "HTTP, $COUNT responses of $BYTES B over new connections: $ok complete"
report http

capture rx
ip netns exec "$NS" timeout 120 "$TAPB" "${stack_args[@]}" --mode sink --port 9 --count 1 >"$T/rx.log" 2>&1 &
wait_for "$T/rx.log" '^listening on 9' 20 || { echo "ack-gaps: tap did not start" >&2; exit 1; }
ip netns exec "$NS" timeout 60 python3 "$NETPEER" tcp-send 192.0.2.2 9 4000000 --pattern >/dev/null
wait_for "$T/rx.log" '^received' 10
stop_capture
echo "Linux -> $STACK, 4 MB: $(grep '^received' "$T/rx.log")"
report rx

capture tx
ip netns exec "$NS" timeout 120 python3 "$NETPEER" tcp-sink 9 --pattern --count 1 >"$T/tx.log" 2>&1 &
wait_for "$T/tx.log" '^listening' 20 || { echo "ack-gaps: sink did not start" >&2; exit 1; }
ip netns exec "$NS" timeout 60 "$TAPB" "${stack_args[@]}" --mode send --peer 192.0.2.1:9 \
    --bytes 4000000 --count 1 >/dev/null 2>"$T/tx.err"
wait_for "$T/tx.log" '^received' 10
stop_capture
echo "$STACK -> Linux, 4 MB: $(grep '^received' "$T/tx.log")"
report tx

if [ -n "$KEEP" ]; then
    mkdir -p "$KEEP" && cp "$T"/*.pcap "$KEEP"/ && echo "captures: $KEEP"
fi
