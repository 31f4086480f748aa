#!/usr/bin/env bash
# Interop tests: ferronet's example programs (examples/std) against real Linux programs: the
# kernel's TCP/IP stack, iputils ping, dnsmasq (DHCPv4, DNS), radvd (SLAAC), socat, tshark.
#
# Every test runs in a network namespace of its own (fnet-PID-TEST) with a TAP (or TUN)
# device created inside it: the kernel side has 192.0.2.1/24 and 2001:db8::1/64, ferronet
# 192.0.2.2/24 and 2001:db8::2/64. Only documentation prefixes are used; nothing is added to
# the root namespace and no packet leaves the test namespaces, which are deleted at the end,
# also on failure or Ctrl-C. Every ferronet run records a pcap; at the end tshark checks each
# capture for bad checksums, malformed packets and expert errors.
#
# Usage: scripts/interop.sh [TEST...]     TEST: dhcp ping tcp listener synflood udp slaac mcast
#                                         netem tun bad
#                                         (default: all)
# Prints `PASS name` or `FAIL name: reason` per check and exits 1 if any failed. Without root
# or a needed tool (after trying scripts/setup.sh): `SKIP interop: ...`, exit 0 (1 if CI=true).
# A missing kernel feature (TUN mode, ifb, netem) skips only the case that needs it, loudly.
#
# Environment: FNET_IMPAIR=auto|netem|relay how the lossy link of the netem test is made (auto:
#                                           tc netem if the kernel has it, else a userspace
#                                           relay, scripts/netpeer.py, with the same loss/delay)
#              FNET_NETEM_TX_BYTES, FNET_NETEM_TX_BUFFER   size (default 16 MiB) and ferronet's
#                                           socket buffer (default 64 KiB) of the ferronet-to-Linux
#                                           transfer of the netem test
#              FNET_KEEP=1                  keep the temporary directory (kept anyway on failure)
#
# The netem test (5 % loss and 20 ms delay each way) moves 16 MiB each way, each checked byte
# by byte by the receiver, with 64 KiB socket buffers on ferronet's side: with its default
# 16 KiB ones ferronet's sending side takes about 5 minutes (smoltcp's minimum retransmission
# timeout is 1 s), with 64 KiB about 2.5; it runs in the background alongside the other tests.
set -uo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)

# shellcheck source=scripts/lib/netns.sh
. scripts/lib/netns.sh

# --- prerequisites -------------------------------------------------------------------------

[ "$(id -u)" = 0 ] || skip_all interop "needs root (network namespaces, TAP/TUN devices)"

tools=(ip tc ss dnsmasq radvd tshark socat ping python3 timeout cmp cargo)
missing_tools() {
    local t
    for t in "${tools[@]}"; do command -v "$t" >/dev/null 2>&1 || printf '%s ' "$t"; done
}
if [ -n "$(missing_tools)" ]; then
    echo "interop: missing $(missing_tools)- running scripts/setup.sh"
    ./scripts/setup.sh || true
fi
[ -z "$(missing_tools)" ] || skip_all interop "needs $(missing_tools)(scripts/setup.sh could not install them)"
[ -c /dev/net/tun ] || skip_all interop "needs /dev/net/tun (kernel module tun)"

ALL_TESTS=(dhcp ping tcp listener synflood udp slaac mcast netem tun bad)
if [ $# -gt 0 ]; then
    for t in "$@"; do
        [[ " ${ALL_TESTS[*]} " == *" $t "* ]] || { echo "interop: unknown test $t (${ALL_TESTS[*]})" >&2; exit 2; }
    done
    TESTS=("$@")
else
    TESTS=("${ALL_TESTS[@]}")
fi
want() { [[ " ${TESTS[*]} " == *" $1 "* ]]; }

PREFIX="fnet-$$"
T=$(mktemp -d /tmp/fnet-interop.XXXXXX)
RESULTS="$T/results"
: >"$RESULTS"
# The examples are a workspace of their own (examples/std/Cargo.toml says why).
BIN="$PWD/examples/std/target/release"
NETPEER="$PWD/scripts/netpeer.py"

netem_pid=
cleanup() {
    # The background netem test first (our own subshell), then whatever runs in our namespaces.
    [ -z "$netem_pid" ] || kill "$netem_pid" 2>/dev/null
    ns_del_all
    if [ "${FNET_KEEP:-}" = 1 ] || grep -q '^FAIL' "$RESULTS" 2>/dev/null; then
        echo "interop: logs and captures kept in $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'echo "interop: interrupted"; exit 130' INT TERM

# --- kernel features -----------------------------------------------------------------------

probe="$PREFIX-probe"
ip netns add "$probe" 2>/dev/null || skip_all interop "cannot create a network namespace"
ip -n "$probe" link set lo up
ip -n "$probe" tuntap add dev ptap0 mode tap 2>/dev/null ||
    skip_all interop "the kernel cannot create TAP devices (module tun missing?)"
HAVE_TUN=0 HAVE_IFB=0 HAVE_NETEM=0
ip -n "$probe" tuntap add dev ptun0 mode tun 2>/dev/null && HAVE_TUN=1
ip -n "$probe" link add pifb0 type ifb 2>/dev/null && HAVE_IFB=1
tc -n "$probe" qdisc add dev lo root netem delay 1ms 2>/dev/null && HAVE_NETEM=1
ns_del "$probe"
echo "interop: kernel: TUN mode $HAVE_TUN, ifb $HAVE_IFB, netem $HAVE_NETEM; logs in $T"

echo "interop: building the examples"
timeout 3600 cargo build --release -q --manifest-path examples/std/Cargo.toml || { echo "FAIL build"; exit 1; }

# --- helpers -------------------------------------------------------------------------------

# ns_new NAME: a fresh namespace in $NS, loopback up, no duplicate address detection.
ns_new() {
    NS="$PREFIX-$1"
    ip netns add "$NS" || return 1
    ip -n "$NS" link set lo up &&
        nssysctl net.ipv6.conf.all.accept_dad 0 && nssysctl net.ipv6.conf.default.accept_dad 0
}

# nssysctl KEY VALUE: sets a sysctl of $NS (through /proc: no need for procps).
nssysctl() { ip netns exec "$NS" sh -c "echo $2 >/proc/sys/${1//.//}"; }

# tap_new [DEV [MODE]]: a TAP (or TUN) device in $NS with the kernel-side addresses, up.
tap_new() {
    local dev=${1:-tap0} mode=${2:-tap}
    ip -n "$NS" tuntap add dev "$dev" mode "$mode" &&
        ip -n "$NS" addr add 192.0.2.1/24 dev "$dev" &&
        ip -n "$NS" addr add 2001:db8::1/64 dev "$dev" nodad &&
        ip -n "$NS" link set "$dev" up
}

# fer NAME SECS PROGRAM ARGS...: runs a ferronet example in $NS (at most SECS), recording to
# $T/NAME.pcap, output in $T/NAME.out and $T/NAME.err; returns its exit status.
fer() {
    local name=$1 secs=$2 prog=$3
    shift 3
    ip netns exec "$NS" timeout -k 5 "$secs" "$BIN/$prog" "$@" --pcap "$T/$name.pcap" \
        >"$T/$name.out" 2>"$T/$name.err" </dev/null
}

# ferbg NAME SECS PROGRAM ARGS...: the same in the background; process id in BGPID.
ferbg() {
    local name=$1 secs=$2 prog=$3
    shift 3
    nsbg "$name" "$secs" "$BIN/$prog" "$@" --pcap "$T/$name.pcap"
}

# stop PID: ends a background server (SIGTERM) and reaps it.
stop() {
    kill "$1" 2>/dev/null
    wait_pid "$1" 10 >/dev/null 2>&1
    return 0
}

# socat_echo: a Linux TCP echo server on port 7 (IPv4 and IPv6) in $NS; process id in ECHOPID.
socat_echo() {
    nsbg socat-echo-"$1" 400 socat -t 60 -T 90 TCP6-LISTEN:7,reuseaddr,fork,ipv6only=0 EXEC:cat
    ECHOPID=$BGPID
    wait_until 10 tcp_listening 7
}

# linux_ping NAME ADDR: Linux pings ferronet: one untimed request (neighbour discovery), then
# 3 that must all be answered.
linux_ping() {
    local log="$T/${1//[^A-Za-z0-9._-]/_}.txt"
    nsrun 5 ping -c 1 -W 2 "$2" >/dev/null 2>&1
    if nsrun 20 ping -c 3 -i 0.2 -W 2 "$2" >"$log" 2>&1 && grep -q ' 3 received' "$log"; then
        pass "$1"
    else
        fail "$1" "$(grep -E 'transmitted|nreachable|rror' "$log" | head -1)"
    fi
}

# random_file NAME BYTES
random_file() { head -c "$2" /dev/urandom >"$T/$1"; }

MIB=1048576
BIG=$((16 * MIB))

# --- tests ---------------------------------------------------------------------------------

t_dhcp() {
    ns_new dhcp && tap_new || { fail dhcp "namespace set-up failed"; return; }
    nsbg dnsmasq 240 dnsmasq --no-daemon --conf-file=/dev/null --interface=tap0 \
        --bind-interfaces --dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,10m \
        --dhcp-leasefile="$T/dnsmasq.leases" --host-record=peer.fnet.test,192.0.2.53,2001:db8::53 \
        --local=/fnet.test/ --no-resolv --no-hosts --pid-file="$T/dnsmasq.pid" --user=root \
        --log-facility=- --log-dhcp --log-queries
    local pid=$BGPID
    if ! wait_until 15 udp_listening 67 || ! wait_until 15 udp_listening 53; then
        fail dhcp "dnsmasq did not start: $(last "$T/dnsmasq.err")"
        ns_del "$NS"
        return
    fi

    if fer dhcp-client 40 dhcp-client --tap tap0 --timeout 30; then
        local addr dns
        addr=$(sed -n 's/^address: //p' "$T/dhcp-client.out")
        dns=$(sed -n 's/^dns: //p' "$T/dhcp-client.out")
        local host=${addr#192.0.2.}
        host=${host%/24}
        if [[ "$addr" =~ ^192\.0\.2\.[0-9]+/24$ ]] && ((host >= 100 && host <= 150)) &&
            [ "$dns" = 192.0.2.1 ] && grep -q " ${addr%/24} " "$T/dnsmasq.leases"; then
            pass "dhcp-lease ($addr, dns $dns, in dnsmasq's lease file)"
        else
            fail dhcp-lease "got address '$addr' dns '$dns' (want 192.0.2.100-150/24, dns 192.0.2.1, leased)"
        fi
    else
        fail dhcp-lease "dhcp-client exited $?: $(last "$T/dhcp-client.err")"
    fi

    # A and AAAA through the DNS server the DHCP lease names, over IPv4.
    if fer dns-dhcp 40 dns-lookup --tap tap0 --dhcp --timeout 20 peer.fnet.test &&
        [ "$(sort "$T/dns-dhcp.out" | tr '\n' ' ')" = "192.0.2.53 2001:db8::53 " ]; then
        pass "dns-a-aaaa-via-dhcp (192.0.2.53 2001:db8::53)"
    else
        fail dns-a-aaaa-via-dhcp "got '$(tr '\n' ' ' <"$T/dns-dhcp.out")' $(last "$T/dns-dhcp.err")"
    fi
    # The same server over IPv6, one type at a time.
    if fer dns-v6-a 30 dns-lookup --tap tap0 --ip 2001:db8::2/64 --dns 2001:db8::1 --type a \
        --timeout 20 peer.fnet.test && [ "$(cat "$T/dns-v6-a.out")" = 192.0.2.53 ] &&
        fer dns-v6-aaaa 30 dns-lookup --tap tap0 --ip 2001:db8::2/64 --dns 2001:db8::1 \
            --type aaaa --timeout 20 peer.fnet.test && [ "$(cat "$T/dns-v6-aaaa.out")" = 2001:db8::53 ]; then
        pass "dns-over-ipv6"
    else
        fail dns-over-ipv6 "got '$(cat "$T/dns-v6-a.out" "$T/dns-v6-aaaa.out" 2>/dev/null | tr '\n' ' ')'"
    fi
    # A name dnsmasq knows is not there.
    fer dns-nx 30 dns-lookup --tap tap0 --ip 192.0.2.2/24 --dns 192.0.2.1 --timeout 20 nosuch.fnet.test
    local rc=$?
    if [ $rc = 1 ] && [ ! -s "$T/dns-nx.out" ] &&
        [ -n "$(timeout 60 tshark -r "$T/dns-nx.pcap" -Y 'dns.flags.response == 1 && dns.flags.rcode == 3' 2>/dev/null)" ]; then
        pass "dns-nxdomain (dnsmasq answered NXDOMAIN; exit 1: $(last "$T/dns-nx.err"))"
    else
        fail dns-nxdomain "exit $rc, printed '$(cat "$T/dns-nx.out")'"
    fi
    stop "$pid"
    ns_del "$NS"
}

t_ping() {
    ns_new ping && tap_new || { fail ping "namespace set-up failed"; return; }
    ferbg ping-holder 90 udp-echo --tap tap0 --ip 192.0.2.2/24 --ip 2001:db8::2/64 --timeout 80
    local pid=$BGPID
    if wait_for "$T/ping-holder.out" '^listening on' 20 "$pid"; then
        linux_ping ping-linux-to-ferronet-v4 192.0.2.2
        linux_ping ping-linux-to-ferronet-v6 2001:db8::2
        nsrun 5 ping -c 1 -W 2 -s 1400 192.0.2.2 >/dev/null 2>&1
        if nsrun 10 ping -c 2 -i 0.2 -W 2 -s 1400 192.0.2.2 2>&1 | grep -q ' 2 received'; then
            pass ping-linux-to-ferronet-1400-bytes
        else
            fail ping-linux-to-ferronet-1400-bytes "no reply to 1400-byte requests"
        fi
    else
        fail ping-linux-to-ferronet "udp-echo did not come up: $(last "$T/ping-holder.err")"
    fi
    stop "$pid"

    local v addr ip
    for v in 4 6; do
        if [ $v = 4 ]; then addr=192.0.2.1 ip=192.0.2.2/24; else addr=2001:db8::1 ip=2001:db8::2/64; fi
        if fer ping-v$v 40 ping --tap tap0 --ip $ip --count 3 --interval 200 $addr &&
            grep -q '3 packets transmitted, 3 received' "$T/ping-v$v.out"; then
            pass "ping-ferronet-to-linux-v$v"
        else
            fail "ping-ferronet-to-linux-v$v" "$(last "$T/ping-v$v.out") $(last "$T/ping-v$v.err")"
        fi
    done
    ns_del "$NS"
}

t_tcp() {
    ns_new tcp && tap_new || { fail tcp "namespace set-up failed"; return; }
    # ferronet's client against a Linux echo server: 16 MiB each way, every byte checked.
    if ! socat_echo tcp; then
        fail tcp-ferronet-client "socat did not listen: $(last "$T/socat-echo-tcp.err")"
    else
        local v ip target
        for v in 4 6; do
            if [ $v = 4 ]; then ip=192.0.2.2/24 target=192.0.2.1:7; else ip=2001:db8::2/64 target=[2001:db8::1]:7; fi
            if fer tcp-client-v$v 150 tcp-client --tap tap0 --ip $ip --bytes $BIG --verify \
                --timeout 120 $target && grep -q 'all verified' "$T/tcp-client-v$v.err"; then
                pass "tcp-ferronet-client-16MiB-echo-v$v"
            else
                fail "tcp-ferronet-client-16MiB-echo-v$v" "$(last "$T/tcp-client-v$v.err")"
            fi
        done
    fi
    stop "$ECHOPID"

    # Linux clients against ferronet's echo server: one 16 MiB, then 8 at once, then IPv6.
    ferbg tcp-echo 300 tcp-echo --tap tap0 --ip 192.0.2.2/24 --ip 2001:db8::2/64 --count 10 \
        --timeout 280
    local pid=$BGPID
    if ! wait_for "$T/tcp-echo.out" '^listening on 7' 20 "$pid"; then
        fail tcp-linux-clients "tcp-echo did not come up: $(last "$T/tcp-echo.err")"
        stop "$pid"
        ns_del "$NS"
        return
    fi
    random_file tcp-in16 $BIG
    if nsrun 150 socat -t 60 -T 60 - TCP:192.0.2.2:7 <"$T/tcp-in16" >"$T/tcp-out16" 2>"$T/tcp-c16.err" &&
        cmp -s "$T/tcp-in16" "$T/tcp-out16"; then
        pass "tcp-linux-client-16MiB-echo"
    else
        fail tcp-linux-client-16MiB-echo "$(cmp "$T/tcp-in16" "$T/tcp-out16" 2>&1 | head -1) $(last "$T/tcp-c16.err")"
    fi
    rm -f "$T/tcp-in16" "$T/tcp-out16"

    local i pids=() bad=""
    for i in 1 2 3 4 5 6 7 8; do
        random_file "tcp-in$i" $MIB
        ip netns exec "$NS" timeout -k 5 120 socat -t 60 -T 60 - TCP:192.0.2.2:7 \
            <"$T/tcp-in$i" >"$T/tcp-out$i" 2>"$T/tcp-c$i.err" &
        pids+=($!)
    done
    for i in 1 2 3 4 5 6 7 8; do
        wait_pid "${pids[$((i - 1))]}" 130 || bad+=" client $i exited $?: $(last "$T/tcp-c$i.err");"
        cmp -s "$T/tcp-in$i" "$T/tcp-out$i" || bad+=" client $i: $(cmp "$T/tcp-in$i" "$T/tcp-out$i" 2>&1 | head -1);"
    done
    if [ -z "$bad" ]; then pass "tcp-linux-8-concurrent-clients-1MiB-each"; else fail tcp-linux-8-concurrent-clients "$bad"; fi

    random_file tcp-in6 $MIB
    if nsrun 60 socat -t 30 -T 30 - 'TCP6:[2001:db8::2]:7' <"$T/tcp-in6" >"$T/tcp-out6" 2>"$T/tcp-c6.err" &&
        cmp -s "$T/tcp-in6" "$T/tcp-out6"; then
        pass "tcp-linux-client-1MiB-echo-v6"
    else
        fail tcp-linux-client-1MiB-echo-v6 "$(cmp "$T/tcp-in6" "$T/tcp-out6" 2>&1 | head -1) $(last "$T/tcp-c6.err")"
    fi
    wait_pid "$pid" 30
    local rc=$?
    if [ $rc = 0 ] && grep -q '^served 10 connections' "$T/tcp-echo.out" &&
        ! grep -q 'failed' "$T/tcp-echo.out"; then
        pass "tcp-echo-served-all (10 connections, exit 0)"
    else
        fail tcp-echo-served-all "exit $rc: $(last "$T/tcp-echo.out") $(last "$T/tcp-echo.err")"
    fi
    ns_del "$NS"
}

# tcp_server_up NAME SECS COUNT: starts tcp-server (4 sockets) as NAME for COUNT connections
# and waits until it listens (its process id in BGPID); false, the test failed and the
# namespace deleted, if it does not come up.
tcp_server_up() {
    local name=$1 secs=$2 count=$3
    ferbg "$name" "$secs" tcp-server --tap tap0 --ip 192.0.2.2/24 --sockets 4 --count "$count" \
        --timeout $((secs - 10))
    if ! wait_for "$T/$name.out" '^listening on 7' 20 "$BGPID"; then
        fail "$name" "tcp-server did not come up: $(last "$T/$name.err")"
        stop "$BGPID"
        ns_del "$NS"
        return 1
    fi
}

# echo_clients PREFIX N BYTES SECS: N socat clients at once, each sending BYTES random bytes
# to 192.0.2.2:7 and comparing the echo; problems are appended to $bad, the time taken is in
# $took.
echo_clients() {
    local prefix=$1 n=$2 bytes=$3 secs=$4 i pids=() t0
    for ((i = 1; i <= n; i++)); do random_file "$prefix-in$i" "$bytes"; done
    t0=$(date +%s)
    for ((i = 1; i <= n; i++)); do
        ip netns exec "$NS" timeout -k 5 "$secs" socat -t 60 -T 60 - TCP:192.0.2.2:7 \
            <"$T/$prefix-in$i" >"$T/$prefix-out$i" 2>"$T/$prefix-c$i.err" &
        pids+=($!)
    done
    for ((i = 1; i <= n; i++)); do
        wait_pid "${pids[$((i - 1))]}" $((secs + 10)) ||
            bad+=" client $i exited $?: $(last "$T/$prefix-c$i.err");"
        cmp -s "$T/$prefix-in$i" "$T/$prefix-out$i" ||
            bad+=" client $i: $(cmp "$T/$prefix-in$i" "$T/$prefix-out$i" 2>&1 | head -1);"
    done
    took=$(($(date +%s) - t0))
    rm -f "$T/$prefix"-in* "$T/$prefix"-out*
}

# TcpListener (feature tcp-listener): 64 Linux clients connect at once to ferronet's
# tcp-server with 4 sockets and a backlog of 4. Each sends 64 KiB and must get them back
# intact; no segment of the run may carry a RST (the capture is checked). Clients whose SYN
# finds the backlog full retransmit it (Linux: after 1, 3, 7, 15, 31, 63 s).
t_listener() {
    ns_new listener && tap_new || { fail listener "namespace set-up failed"; return; }
    local n=64 bad="" took
    tcp_server_up listener-server 200 $n || return
    local pid=$BGPID
    echo_clients lst $n 65536 180
    if [ -z "$bad" ]; then
        pass "listener-$n-linux-clients-4-sockets-backlog-4 (64 KiB each, all in ${took} s)"
    else
        fail listener-$n-linux-clients "$bad"
    fi
    wait_pid "$pid" 30
    local rc=$?
    if [ $rc = 0 ] && grep -q "^served $n connections, 0 failed" "$T/listener-server.out"; then
        pass "listener-server-served-all ($n connections, exit 0)"
    else
        fail listener-server-served-all "exit $rc: $(last "$T/listener-server.out") $(last "$T/listener-server.err")"
    fi
    local resets
    resets=$(timeout 120 tshark -r "$T/listener-server.pcap" -Y 'tcp.flags.reset == 1' 2>/dev/null | wc -l)
    if [ "$resets" = 0 ]; then
        pass "listener-no-reset ($(timeout 120 tshark -r "$T/listener-server.pcap" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' 2>/dev/null | wc -l) SYNs seen)"
    else
        fail listener-no-reset "$resets segments with RST in the capture"
    fi
    ns_del "$NS"
}

# SYN cookies (feature tcp-listener): while a raw socket in the namespace floods ferronet's
# tcp-server (4 sockets, backlog 4) with spoofed SYNs from 198.51.100.0/24 (10,000 a second
# asked for 30 s; python reaches what it can, the rate is reported), 16 Linux clients started
# one second into the flood must each get 16 KiB echoed intact before the flood ends, with no
# RST to them; the server must have answered SYNs with cookies (SYN-ACKs with a zero window).
t_synflood() {
    ns_new synflood && tap_new || { fail synflood "namespace set-up failed"; return; }
    local n=16 rate=10000 secs=30 bad="" took
    tcp_server_up synflood-server 90 $n || return
    local pid=$BGPID
    nsbg synflood-flood $((secs + 15)) python3 "$NETPEER" syn-flood 192.0.2.2 7 $rate $secs
    local flood=$BGPID
    if ! wait_for "$T/synflood-flood.out" '^flooding' 15 "$flood"; then
        fail synflood "the flood did not start: $(last "$T/synflood-flood.err")"
        stop "$pid"
        ns_del "$NS"
        return
    fi
    echo_clients syn $n 16384 60
    kill -0 "$flood" 2>/dev/null || bad+=" the clients ended after the flood (${took} s);"
    wait_pid "$flood" $((secs + 20))
    local sent
    sent=$(tr '\n' ' ' <"$T/synflood-flood.out")
    if [ -z "$bad" ]; then
        pass "synflood-$n-linux-clients-during-a-flood (16 KiB each, all in ${took} s; flood: $sent)"
    else
        fail synflood-$n-linux-clients "$bad flood: $sent"
    fi
    wait_pid "$pid" 30
    local rc=$?
    if [ $rc = 0 ] && grep -q "^served $n connections" "$T/synflood-server.out"; then
        pass "synflood-server-served-all ($(last "$T/synflood-server.out"), exit 0)"
    else
        fail synflood-server-served-all "exit $rc: $(last "$T/synflood-server.out") $(last "$T/synflood-server.err")"
    fi
    local resets cookies
    resets=$(timeout 180 tshark -r "$T/synflood-server.pcap" -Y 'tcp.flags.reset == 1 && ip.dst == 192.0.2.1' 2>/dev/null | wc -l)
    cookies=$(timeout 180 tshark -r "$T/synflood-server.pcap" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.window_size_value == 0' 2>/dev/null | wc -l)
    if [ "$resets" = 0 ] && [ "$cookies" -gt 0 ]; then
        pass "synflood-cookies-no-reset ($cookies SYN-ACKs with cookies, no RST to the clients)"
    else
        fail synflood-cookies-no-reset "$resets segments with RST to the clients, $cookies cookie SYN-ACKs"
    fi
    ns_del "$NS"
}

t_udp() {
    ns_new udp && tap_new || { fail udp "namespace set-up failed"; return; }
    ferbg udp-echo 90 udp-echo --tap tap0 --ip 192.0.2.2/24 --ip 2001:db8::2/64 --timeout 80
    local pid=$BGPID v addr
    if wait_for "$T/udp-echo.out" '^listening on 7' 20 "$pid"; then
        for v in 4 6; do
            if [ $v = 4 ]; then addr=192.0.2.2; else addr=2001:db8::2; fi
            if nsrun 60 python3 "$NETPEER" udp-check $addr 7 200 1200 >"$T/udp-check-v$v.out" 2>&1; then
                pass "udp-linux-client-to-ferronet-echo-v$v ($(last "$T/udp-check-v$v.out"))"
            else
                fail "udp-linux-client-to-ferronet-echo-v$v" "$(last "$T/udp-check-v$v.out")"
            fi
        done
    else
        fail udp-linux-client "udp-echo did not come up: $(last "$T/udp-echo.err")"
    fi
    stop "$pid"

    nsbg udp-pyecho 120 python3 "$NETPEER" udp-echo 7
    pid=$BGPID
    if wait_for "$T/udp-pyecho.out" '^listening' 10 "$pid"; then
        local ip target
        for v in 4 6; do
            if [ $v = 4 ]; then ip=192.0.2.2/24 target=192.0.2.1:7; else ip=2001:db8::2/64 target=[2001:db8::1]:7; fi
            if fer udp-client-v$v 60 udp-client --tap tap0 --ip $ip --count 200 --size 1200 --verify $target &&
                grep -q '200 datagrams of 1200 bytes echoed and verified' "$T/udp-client-v$v.out"; then
                pass "udp-ferronet-client-to-linux-echo-v$v ($(last "$T/udp-client-v$v.out"))"
            else
                fail "udp-ferronet-client-to-linux-echo-v$v" "$(last "$T/udp-client-v$v.out") $(last "$T/udp-client-v$v.err")"
            fi
        done
    else
        fail udp-ferronet-client "the Linux UDP echo server did not start: $(last "$T/udp-pyecho.err")"
    fi
    stop "$pid"
    ns_del "$NS"
}

t_slaac() {
    ns_new slaac && tap_new &&
        ip -n "$NS" addr add 2001:db8:1::1/64 dev tap0 nodad &&
        nssysctl net.ipv6.conf.all.forwarding 1 ||
        { fail slaac "namespace set-up failed"; return; }
    cat >"$T/radvd.conf" <<'EOF'
interface tap0 {
    AdvSendAdvert on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 4;
    prefix 2001:db8:1::/64 {
        AdvOnLink on;
        AdvAutonomous on;
    };
};
EOF
    nsbg radvd 120 radvd --nodaemon --logmethod stderr --config "$T/radvd.conf" --pidfile "$T/radvd.pid"
    local rpid=$BGPID
    if ! wait_for "$T/radvd.err" 'started' 10 "$rpid"; then
        fail slaac "radvd did not start: $(last "$T/radvd.err")"
        ns_del "$NS"
        return
    fi
    ferbg slaac 120 udp-echo --tap tap0 --slaac --mac 02:00:00:00:00:02 --wait 40 --timeout 100
    local pid=$BGPID
    if wait_for "$T/slaac.err" '^ipv6: ' 45 "$pid"; then
        local addr ll
        addr=$(sed -n 's/^ipv6: //p' "$T/slaac.err")
        if timeout 10 python3 -c 'import ipaddress, sys
a = ipaddress.ip_interface(sys.argv[1])
sys.exit(a.network != ipaddress.ip_network("2001:db8:1::/64"))' "$addr"; then
            linux_ping "ipv6-slaac-address-$addr" "${addr%/*}"
        else
            fail ipv6-slaac "ferronet took $addr, not an address in 2001:db8:1::/64"
        fi
        ll=$(sed -n 's/^ipv6 link-local: //p' "$T/slaac.err")
        if [ "$ll" = fe80::ff:fe00:2/64 ]; then
            linux_ping "ipv6-link-local-${ll%/*}%tap0" "${ll%/*}%tap0"
        else
            fail ipv6-link-local "ferronet reports link-local '$ll', want fe80::ff:fe00:2/64 (EUI-64 of 02:00:00:00:00:02)"
        fi
    else
        fail ipv6-slaac "no address from the router advertisements: $(last "$T/slaac.err")"
    fi
    stop "$pid"
    stop "$rpid"
    ns_del "$NS"
}

t_mcast() {
    ns_new mcast && tap_new || { fail mcast "namespace set-up failed"; return; }
    nsbg tshark-mcast 120 tshark -i tap0 -w "$T/mcast-live.pcap"
    local tpid=$BGPID
    if ! wait_for "$T/tshark-mcast.err" 'Capturing on' 20 "$tpid"; then
        fail multicast "tshark did not start capturing: $(last "$T/tshark-mcast.err")"
        ns_del "$NS"
        return
    fi
    ferbg mcast 90 udp-echo --tap tap0 --ip 192.0.2.2/24 --ip 2001:db8::2/64 --mac 02:00:00:00:00:02 \
        --join 239.1.2.3 --join ff15::1:2 --timeout 80
    local pid=$BGPID
    if wait_for "$T/mcast.out" '^listening on 7' 20 "$pid"; then
        # Datagrams to the groups reach ferronet's socket (and are answered).
        local g
        for g in 239.1.2.3 ff15::1:2; do
            if nsrun 30 python3 "$NETPEER" udp-check $g 7 5 100 --dev tap0 >"$T/mcast-$g.out" 2>&1; then
                pass "multicast-datagram-to-$g-echoed"
            else
                fail "multicast-datagram-to-$g" "$(last "$T/mcast-$g.out")"
            fi
        done
    else
        fail multicast "udp-echo did not come up: $(last "$T/mcast.err")"
    fi
    stop "$pid"
    kill -INT "$tpid" 2>/dev/null
    wait_pid "$tpid" 20
    local filter
    filter='eth.src == 02:00:00:00:00:02 && igmp.maddr == 239.1.2.3'
    if [ -n "$(timeout 60 tshark -r "$T/mcast-live.pcap" -Y "$filter" 2>/dev/null)" ]; then
        pass "multicast-igmp-report-239.1.2.3 (seen by tshark on the Linux side)"
    else
        fail multicast-igmp-report "no IGMP membership report for 239.1.2.3 from ferronet in $T/mcast-live.pcap"
    fi
    filter='eth.src == 02:00:00:00:00:02 && icmpv6.type == 143 && icmpv6.mldr.mar.multicast_address == ff15::1:2'
    if [ -n "$(timeout 60 tshark -r "$T/mcast-live.pcap" -Y "$filter" 2>/dev/null)" ]; then
        pass "multicast-mldv2-report-ff15::1:2 (seen by tshark on the Linux side)"
    else
        fail multicast-mldv2-report "no MLDv2 report for ff15::1:2 from ferronet in $T/mcast-live.pcap"
    fi
    ns_del "$NS"
}

# The lossy link: 5 % loss and 20 ms delay each way. With tc netem on tap0's egress (kernel to
# ferronet) and, through an ifb device, on its ingress; without netem, a userspace relay
# (scripts/netpeer.py relay) between ferronet's TAP and a second TAP that carries the Linux
# addresses. Sets DEV_KERNEL (the interface with the Linux addresses).
NETEM_LOSS=5 NETEM_LOSS_FRACTION=0.05 NETEM_DELAY=20
impair_link() {
    local how=${FNET_IMPAIR:-auto}
    if [ "$how" = auto ]; then
        if [ $HAVE_NETEM = 1 ]; then how=netem; else how=relay; fi
    fi
    if [ "$how" = netem ]; then
        tap_new || return 1
        DEV_KERNEL=tap0
        tc -n "$NS" qdisc add dev tap0 root netem loss ${NETEM_LOSS}% delay ${NETEM_DELAY}ms limit 10000 || return 1
        if [ $HAVE_IFB = 1 ]; then
            ip -n "$NS" link add ifb0 type ifb &&
                ip -n "$NS" link set ifb0 up &&
                tc -n "$NS" qdisc add dev tap0 handle ffff: ingress &&
                tc -n "$NS" filter add dev tap0 parent ffff: protocol all u32 match u32 0 0 \
                    action mirred egress redirect dev ifb0 &&
                tc -n "$NS" qdisc add dev ifb0 root netem loss ${NETEM_LOSS}% delay ${NETEM_DELAY}ms limit 10000 ||
                return 1
            echo "  netem: tc netem loss ${NETEM_LOSS}% delay ${NETEM_DELAY}ms on tap0 egress and (via ifb0) ingress"
        else
            loud "netem: no ifb device in this kernel: loss and delay only from Linux to ferronet (tap0 egress)"
        fi
    else
        [ "$how" = relay ] || { echo "FNET_IMPAIR=$how: use auto, netem or relay"; return 1; }
        loud "netem: the kernel has no tc netem: a userspace relay (scripts/netpeer.py) makes the ${NETEM_LOSS}% loss and ${NETEM_DELAY} ms delay, both ways"
        ip -n "$NS" tuntap add dev tap0 mode tap &&
            ip -n "$NS" link set tap0 arp off &&
            nssysctl net.ipv6.conf.tap0.disable_ipv6 1 &&
            ip -n "$NS" link set tap0 up || return 1
        tap_new wire0 || return 1
        DEV_KERNEL=wire0
        nsbg relay 600 python3 "$NETPEER" relay tap0 wire0 $NETEM_LOSS_FRACTION $NETEM_DELAY 1
        wait_for "$T/relay.out" '^listening' 10 "$BGPID" || return 1
    fi
}

t_netem() {
    ns_new netem && impair_link || { fail netem "set-up of the lossy link failed: $(last "$T/relay.err")"; return; }
    # Linux to ferronet: ferronet checks every byte.
    ferbg netem-rx 400 tcp-echo --tap tap0 --ip 192.0.2.2/24 --port 9 --discard --verify --buffer 65536 \
        --count 1 --timeout 380
    local pid=$BGPID
    if wait_for "$T/netem-rx.out" '^listening on 9' 30 "$pid"; then
        nsrun 400 python3 "$NETPEER" tcp-send 192.0.2.2 9 $BIG --pattern >"$T/netem-send.out" 2>&1
        wait_pid "$pid" 60
        local rc=$?
        if [ $rc = 0 ] && grep -q "$BIG bytes received .* pattern verified" "$T/netem-rx.out"; then
            pass "tcp-16MiB-linux-to-ferronet-under-loss ($(grep -o '[0-9.]* s ([0-9.]* MB/s)' "$T/netem-rx.out"))"
        else
            fail tcp-16MiB-linux-to-ferronet-under-loss "exit $rc: $(grep -E 'closed|failed|reset' "$T/netem-rx.out" | tail -1) $(last "$T/netem-send.out")"
        fi
    else
        fail tcp-16MiB-linux-to-ferronet-under-loss "tcp-echo did not come up: $(last "$T/netem-rx.err")"
        stop "$pid"
    fi
    # ferronet to Linux: Linux checks every byte.
    nsbg netem-sink 400 python3 "$NETPEER" tcp-sink 9 --pattern --idle 120
    pid=$BGPID
    if wait_for "$T/netem-sink.out" '^listening' 10 "$pid"; then
        fer netem-tx 400 tcp-client --tap tap0 --ip 192.0.2.2/24 --bytes $NETEM_TX_BYTES --sink \
            --buffer $NETEM_TX_BUFFER --timeout 380 192.0.2.1:9
        local rc=$?
        wait_pid "$pid" 30
        if [ $rc = 0 ] && grep -q "^received $NETEM_TX_BYTES bytes" "$T/netem-sink.out" &&
            grep -q '^pattern ok' "$T/netem-sink.out"; then
            pass "tcp-$((NETEM_TX_BYTES / MIB))MiB-ferronet-to-linux-under-loss ($(grep -o '[0-9.]* s ([0-9.]* MB/s)' "$T/netem-tx.err"))"
        else
            fail "tcp-$((NETEM_TX_BYTES / MIB))MiB-ferronet-to-linux-under-loss" "exit $rc: $(last "$T/netem-tx.err"); sink: $(grep -v '^at ' "$T/netem-sink.out" | tr '\n' ' ')"
        fi
    else
        fail tcp-ferronet-to-linux-under-loss "the Linux sink did not start: $(last "$T/netem-sink.err")"
    fi
    ns_del "$NS"
}

t_tun() {
    if [ $HAVE_TUN != 1 ]; then
        loud "SKIP tun: the kernel cannot create TUN devices"
        return
    fi
    ns_new tun && tap_new tun0 tun || { fail tun "namespace set-up failed"; return; }
    if socat_echo tun; then
        if fer tun-tcp 150 tcp-client --tun tun0 --ip 192.0.2.2/24 --bytes $BIG --verify --timeout 120 \
            192.0.2.1:7 && grep -q 'all verified' "$T/tun-tcp.err"; then
            pass "tun-tcp-ferronet-client-16MiB-echo"
        else
            fail tun-tcp-ferronet-client-16MiB-echo "$(last "$T/tun-tcp.err")"
        fi
    else
        fail tun-tcp "socat did not listen"
    fi
    stop "$ECHOPID"
    if fer tun-ping6 30 ping --tun tun0 --ip 2001:db8::2/64 --count 3 --interval 200 2001:db8::1 &&
        grep -q '3 packets transmitted, 3 received' "$T/tun-ping6.out"; then
        pass "tun-ping-ferronet-to-linux-v6"
    else
        fail tun-ping-ferronet-to-linux-v6 "$(last "$T/tun-ping6.out") $(last "$T/tun-ping6.err")"
    fi
    ns_del "$NS"
}

t_bad() {
    ns_new bad || { fail bad "namespace set-up failed"; return; }
    # No such interface: exit 3 and a message that says so.
    fer missing 20 tcp-echo --tap fnet-none0 --ip 192.0.2.2/24
    local rc=$?
    if [ $rc = 3 ] && grep -q 'interface fnet-none0 does not exist' "$T/missing.err"; then
        pass "missing-interface-exit-3 ($(last "$T/missing.err"))"
    else
        fail missing-interface-exit-3 "exit $rc: $(last "$T/missing.err")"
    fi
    nsrun 10 "$BIN/tcp-client" --tap tap0 --bogus 192.0.2.1:7 >/dev/null 2>"$T/usage.err"
    rc=$?
    if [ $rc = 2 ] && grep -q "unexpected argument '--bogus'" "$T/usage.err"; then
        pass "bad-option-exit-2"
    else
        fail bad-option-exit-2 "exit $rc: $(head -1 "$T/usage.err")"
    fi

    # The link goes down in the middle of a transfer.
    tap_new || { fail link-down "set-up failed"; return; }
    nsbg linkdown-sink 120 python3 "$NETPEER" tcp-sink 9 --pattern --idle 5
    local spid=$BGPID
    if ! wait_for "$T/linkdown-sink.out" '^listening' 10 "$spid"; then
        fail link-down "the Linux sink did not start: $(last "$T/linkdown-sink.err")"
        ns_del "$NS"
        return
    fi
    ferbg linkdown 90 tcp-client --tap tap0 --ip 192.0.2.2/24 --bytes $((64 * 1024 * MIB)) --sink \
        --timeout 80 192.0.2.1:9
    local pid=$BGPID
    if ! wait_for "$T/linkdown-sink.out" '^at ' 30 "$spid"; then
        fail link-down "the transfer did not start: $(last "$T/linkdown.err")"
        ns_del "$NS"
        return
    fi
    ip -n "$NS" link set tap0 down
    wait_pid "$pid" 20
    rc=$?
    wait_pid "$spid" 30
    local msg sent acked got
    msg=$(grep 'went down' "$T/linkdown.err")
    sent=$(sed -n 's/.*went down: \([0-9]*\) bytes sent, \([0-9]*\) of them acknowledged.*/\1/p' "$T/linkdown.err")
    acked=$(sed -n 's/.*went down: \([0-9]*\) bytes sent, \([0-9]*\) of them acknowledged.*/\2/p' "$T/linkdown.err")
    got=$(sed -n 's/^received \([0-9]*\) bytes.*/\1/p' "$T/linkdown-sink.out")
    if [ $rc = 3 ] && [ -n "$sent" ] && [ -n "$acked" ] && [ -n "$got" ] &&
        ! grep -qi 'panic' "$T/linkdown.err" && grep -q '^pattern ok' "$T/linkdown-sink.out" &&
        ((acked <= got && got <= sent)); then
        pass "link-down-mid-transfer (exit 3, '$msg'; Linux got $got intact bytes >= $acked acknowledged)"
    else
        fail link-down-mid-transfer "exit $rc, '$(last "$T/linkdown.err")', Linux got '$got' bytes ($(grep -v '^at ' "$T/linkdown-sink.out" | tr '\n' ' '))"
    fi
    ns_del "$NS"
}

# Every capture must decode cleanly: no bad checksum, no malformed packet, no expert error.
check_captures() {
    local f out
    for f in "$T"/*.pcap; do
        [ -e "$f" ] || continue
        if out=$(timeout 300 tshark -r "$f" -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
            -o ip.check_checksum:TRUE -Y "_ws.malformed || _ws.expert.severity == error" 2>"$T/tshark-check.err") &&
            [ -z "$out" ]; then
            pass "capture-clean $(basename "$f") ($(du -k "$f" | cut -f1) KiB)"
        else
            fail "capture-clean $(basename "$f")" "$(printf '%s\n' "$out" | head -3 | tr '\n' ' ') $(grep -v 'Running as user' "$T/tshark-check.err" | head -2 | tr '\n' ' ')"
        fi
    done
}

# --- run -----------------------------------------------------------------------------------

# The lossy transfers take minutes (ferronet's TCP, i.e. smoltcp's, needs a retransmission
# timeout of at least 1 s for most losses), so they run alongside the other tests.
NETEM_TX_BYTES=${FNET_NETEM_TX_BYTES:-$BIG}
NETEM_TX_BUFFER=${FNET_NETEM_TX_BUFFER:-65536}
if want netem; then
    echo "interop: netem (runs in the background; its results come at the end)"
    t_netem >"$T/netem.log" 2>&1 &
    netem_pid=$!
fi
for t in "${TESTS[@]}"; do
    [ "$t" = netem ] && continue
    echo "--- $t"
    "t_$t"
done
if [ -n "$netem_pid" ]; then
    echo "--- netem (waiting for it)"
    wait_pid "$netem_pid" 900
    rc=$?
    cat "$T/netem.log"
    [ $rc != 124 ] || fail netem "did not finish within 900 s"
fi
echo "--- captures"
check_captures

npass=$(grep -c '^PASS' "$RESULTS")
nfail=$(grep -c '^FAIL' "$RESULTS")
echo
echo "interop: $npass passed, $nfail failed in $(($(date +%s) - started)) s"
[ "$nfail" = 0 ]
