#!/usr/bin/env bash
# Ecosystem tests: third-party crates that depend on embassy-net 0.9, running on ferronet
# through the compatibility package (examples/ecosystem, patched with one [patch.crates-io]
# line), against Linux programs in network namespaces:
#
#   picoserve  picoserve HTTP server; curl fetches pages and 1 MiB bodies, 8 clients at once
#   mqtt       rust-mqtt client; 1,000 messages each way through mosquitto, none lost
#   reqwless   reqwless HTTP client (ferronet's embedded-nal-async TcpConnect + Dns); fetches
#              from python3 -m http.server, the name resolved by dnsmasq
#   sntp       sntpc over sntpc-net-embassy; the time from chronyd, offset within 10 ms
#   mdns       edge-mdns responder over edge-nal-embassy; dig -p 5353 @192.0.2.2 finds
#              NAME.local, and queries to the group 224.0.0.251 are answered (mdns-query.py)
#   dhcp       edge-dhcp server over edge-nal-embassy; ISC dhclient gets a lease
#
# Each scenario has a namespace of its own (feco-PID-NAME) with a TAP device tap0 in it: the
# kernel side 192.0.2.1/24, ferronet 192.0.2.2/24. Only documentation prefixes are used,
# nothing is configured in the root namespace, and the namespaces are deleted at the end, also
# on failure or Ctrl-C. Every step is bounded in time.
#
# Usage: scripts/ecosystem.sh [SCENARIO...]   (default: all)
# Prints `PASS name` / `FAIL name: reason` per check and `N passed, N failed` at the end;
# exits 1 if any failed. Without root or a needed program (after trying apt-get):
# `SKIP ecosystem: ...` and exit 0, or exit 1 when CI=true. FNET_KEEP=1 keeps the logs.
# FNET_ECOSYSTEM_BIN=DIR runs the programs in DIR instead of building them (for example the
# same source built without the [patch], on embassy-net 0.9.1, to compare).
set -uo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/netns.sh
. scripts/lib/netns.sh

ALL=(picoserve mqtt reqwless sntp mdns dhcp)
if [ $# -gt 0 ]; then
    for s in "$@"; do
        [[ " ${ALL[*]} " == *" $s "* ]] || { echo "ecosystem: unknown scenario $s (${ALL[*]})" >&2; exit 2; }
    done
    RUN=("$@")
else
    RUN=("${ALL[@]}")
fi

# --- prerequisites -------------------------------------------------------------------------

[ "$(id -u)" = 0 ] || skip_all ecosystem "needs root (network namespaces, TAP devices)"
[ -c /dev/net/tun ] || skip_all ecosystem "needs /dev/net/tun (kernel module tun)"

# program -> Debian package
declare -A pkg=(
    [ip]=iproute2 [ss]=iproute2 [curl]=curl [python3]=python3 [cmp]=diffutils
    [mosquitto]=mosquitto [mosquitto_pub]=mosquitto-clients [mosquitto_sub]=mosquitto-clients
    [chronyd]=chrony [dnsmasq]=dnsmasq-base [dig]=dnsutils [dhclient]=isc-dhcp-client
    [openssl]=openssl
)
missing() {
    local p
    for p in "${!pkg[@]}"; do command -v "$p" >/dev/null 2>&1 || echo "${pkg[$p]}"; done | sort -u | tr '\n' ' '
}
if [ -n "$(missing)" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ecosystem: installing $(missing)"
    # shellcheck disable=SC2046
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends $(missing) >/dev/null 2>&1 ||
        { timeout 300 apt-get update -q >/dev/null 2>&1 &&
            DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends $(missing) >/dev/null 2>&1; }
fi
[ -z "$(missing)" ] || skip_all ecosystem "needs the packages $(missing)(apt-get could not install them)"

PREFIX="feco-$$"
T=$(mktemp -d /tmp/fnet-ecosystem.XXXXXX)
RESULTS="$T/results"
: >"$RESULTS"
BIN=${FNET_ECOSYSTEM_BIN:-$PWD/examples/ecosystem/target/release}

cleanup() {
    ns_del_all
    if [ "${FNET_KEEP:-}" = 1 ] || grep -q '^FAIL' "$RESULTS" 2>/dev/null; then
        echo "ecosystem: logs kept in $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'echo "ecosystem: interrupted"; exit 130' INT TERM

if [ -n "${FNET_ECOSYSTEM_BIN:-}" ]; then
    echo "ecosystem: the programs in $BIN (FNET_ECOSYSTEM_BIN), not building"
else
    echo "ecosystem: building examples/ecosystem (its own workspace; embassy-net patched to ferronet)"
fi
if [ -z "${FNET_ECOSYSTEM_BIN:-}" ] && ! timeout 3600 cargo build --release -q --manifest-path examples/ecosystem/Cargo.toml 2>"$T/build.err"; then
    cat "$T/build.err" >&2
    echo "FAIL build"
    exit 1
fi

# ns_new NAME: namespace $NS with loopback up and tap0 (192.0.2.1/24, 2001:db8::1/64) up.
ns_new() {
    NS="$PREFIX-$1"
    ip netns add "$NS" &&
        ip -n "$NS" link set lo up &&
        ip -n "$NS" tuntap add dev tap0 mode tap &&
        ip -n "$NS" addr add 192.0.2.1/24 dev tap0 &&
        ip -n "$NS" addr add 2001:db8::1/64 dev tap0 nodad &&
        ip -n "$NS" link set tap0 up
}

# grep_file FILE REGEX: whether FILE has a line matching REGEX.
grep_file() { grep -qE -- "$2" "$1" 2>/dev/null; }

# pattern FILE BYTES: the examples' test pattern (byte i = i mod 251).
pattern() { python3 -c 'import sys; n=int(sys.argv[1]); sys.stdout.buffer.write(bytes(i % 251 for i in range(n)))' "$2" >"$1"; }

MIB=1048576
export RUST_LOG=${RUST_LOG:-warn}

# --- scenarios -----------------------------------------------------------------------------

s_picoserve() {
    ns_new picoserve || { fail picoserve "namespace set-up failed"; return; }
    nsbg picoserve 300 "$BIN/picoserve-server" --tap tap0 --ip6 2001:db8::2/64
    local pid=$BGPID
    if ! wait_until 20 nsrun 3 curl -s -o /dev/null http://192.0.2.2/; then
        fail picoserve "no answer on http://192.0.2.2/: $(last "$T/picoserve.err")"
        ns_del "$NS"
        return
    fi
    if nsrun 10 curl -sf http://192.0.2.2/ -o "$T/index.html" -D "$T/index.hdr" &&
        grep -q '<h1>picoserve on ferronet</h1>' "$T/index.html" &&
        grep -qi '^content-type: text/html' "$T/index.hdr" &&
        [ "$(nsrun 10 curl -sf http://192.0.2.2/hello/ferronet)" = "Hello, ferronet!" ] &&
        [ "$(nsrun 10 curl -s -o /dev/null -w '%{http_code}' http://192.0.2.2/nowhere)" = 404 ]; then
        pass "picoserve-pages (/, /hello/NAME, 404)"
    else
        fail picoserve-pages "$(head -c 200 "$T/index.html" 2>/dev/null)"
    fi
    if [ "$(nsrun 10 curl -sf -g 'http://[2001:db8::2]/hello/ipv6')" = "Hello, ipv6!" ]; then
        pass "picoserve-ipv6 (http://[2001:db8::2]/hello/ipv6)"
    else
        fail picoserve-ipv6 "no answer over IPv6"
    fi

    # 8 clients at once, each fetching a 1 MiB body twice on one connection (keep-alive).
    pattern "$T/want.bin" $MIB
    local i pids=() bad=0
    for i in 1 2 3 4 5 6 7 8; do
        ip netns exec "$NS" timeout -k 5 120 curl -sf -o "$T/big$i.a" http://192.0.2.2/pattern/$MIB \
            -o "$T/big$i.b" http://192.0.2.2/pattern/$MIB 2>"$T/curl$i.err" &
        pids+=($!)
    done
    for i in 1 2 3 4 5 6 7 8; do
        wait "${pids[$((i - 1))]}" || { bad=1; echo "client $i: curl exited $?: $(last "$T/curl$i.err")" >>"$T/picoserve-big.txt"; }
        cmp -s "$T/want.bin" "$T/big$i.a" && cmp -s "$T/want.bin" "$T/big$i.b" ||
            { bad=1; echo "client $i: body differs ($(stat -c %s "$T/big$i.a" "$T/big$i.b" 2>/dev/null | tr '\n' ' ')bytes)" >>"$T/picoserve-big.txt"; }
    done
    if [ $bad = 0 ]; then
        pass "picoserve-8x2x1MiB (16 bodies of 1 MiB to 8 concurrent clients, every byte checked)"
    else
        fail picoserve-8x2x1MiB "$(head -n 2 "$T/picoserve-big.txt" | tr '\n' ' ')"
    fi
    kill -0 "$pid" 2>/dev/null || fail picoserve "the server died: $(last "$T/picoserve.err")"
    ns_del "$NS"
}

s_mqtt() {
    ns_new mqtt || { fail mqtt "namespace set-up failed"; return; }
    local n=1000
    cat >"$T/mosquitto.conf" <<CONF
listener 1883 192.0.2.1
allow_anonymous true
persistence false
max_queued_messages 2000
CONF
    nsbg mosquitto 300 mosquitto -v -c "$T/mosquitto.conf"
    if ! wait_until 15 tcp_listening 1883; then
        fail mqtt "mosquitto did not start: $(last "$T/mosquitto.err")"
        ns_del "$NS"
        return
    fi
    # Linux's subscriber first, so that none of ferronet's messages can come before it.
    nsbg mosquitto-sub 200 mosquitto_sub -h 192.0.2.1 -t ferronet/out -q 1 -C $n -W 180
    local sub=$BGPID
    if ! wait_until 15 grep_file "$T/mosquitto.err" 'Received SUBSCRIBE'; then
        fail mqtt "mosquitto_sub did not subscribe: $(last "$T/mosquitto-sub.err")"
        ns_del "$NS"
        return
    fi
    nsbg mqtt-client 200 "$BIN/mqtt-client" --tap tap0 --broker 192.0.2.1 --count $n --timeout 180
    local client=$BGPID
    if ! wait_until 30 grep_file "$T/mqtt-client.out" '^subscribed$'; then
        fail mqtt "ferronet's client did not subscribe: $(last "$T/mqtt-client.err")"
        ns_del "$NS"
        return
    fi
    seq 0 $((n - 1)) | sed 's/^/in-/' >"$T/mqtt-in.txt"
    seq 0 $((n - 1)) | sed 's/^/out-/' >"$T/mqtt-out-want.txt"
    nsrun 120 mosquitto_pub -h 192.0.2.1 -t ferronet/in -q 1 -l <"$T/mqtt-in.txt" 2>"$T/mosquitto-pub.err" ||
        fail mqtt-linux-to-ferronet "mosquitto_pub failed: $(last "$T/mosquitto-pub.err")"
    wait_pid "$client" 190
    local rc=$?
    if [ $rc = 0 ] && grep -qx "received $n" "$T/mqtt-client.out"; then
        pass "mqtt-linux-to-ferronet ($n QoS 1 messages from mosquitto_pub, all received in order)"
    else
        fail mqtt-linux-to-ferronet "mqtt-client exited $rc: $(last "$T/mqtt-client.err")"
    fi
    wait_pid "$sub" 30
    if cmp -s "$T/mqtt-out-want.txt" "$T/mosquitto-sub.out"; then
        pass "mqtt-ferronet-to-linux ($n QoS 1 messages to mosquitto_sub, none lost)"
    else
        fail mqtt-ferronet-to-linux "mosquitto_sub got $(wc -l <"$T/mosquitto-sub.out") of $n lines or other ones: $(last "$T/mosquitto-sub.err")"
    fi
    ns_del "$NS"
}

s_reqwless() {
    ns_new reqwless || { fail reqwless "namespace set-up failed"; return; }
    mkdir -p "$T/www"
    head -c $MIB /dev/urandom >"$T/www/file"
    # The name: dnsmasq answers files.fnet.test with the kernel side's address.
    nsbg dnsmasq 200 dnsmasq --no-daemon --conf-file=/dev/null --interface=tap0 --bind-interfaces \
        --port=53 --host-record=files.fnet.test,192.0.2.1 --local=/fnet.test/ --no-resolv \
        --no-hosts --user=root --log-facility=-
    (cd "$T/www" && nsbg http 200 python3 -m http.server 8000 --bind 192.0.2.1)
    if ! wait_until 15 udp_listening 53 || ! wait_until 15 tcp_listening 8000; then
        fail reqwless "dnsmasq or http.server did not start: $(last "$T/dnsmasq.err") $(last "$T/http.err")"
        ns_del "$NS"
        return
    fi
    if nsrun 90 "$BIN/http-client" --tap tap0 --dns 192.0.2.1 --out "$T/got-http" \
        http://files.fnet.test:8000/file >"$T/reqwless-http.out" 2>"$T/reqwless-http.err" &&
        cmp -s "$T/www/file" "$T/got-http"; then
        pass "reqwless-http (1 MiB from python3 -m http.server, name by DNS, every byte checked)"
    else
        fail reqwless-http "$(last "$T/reqwless-http.err"); $(cmp "$T/www/file" "$T/got-http" 2>&1)"
    fi
    # A 404 is an error exit.
    if ! nsrun 90 "$BIN/http-client" --tap tap0 --dns 192.0.2.1 --out "$T/got-404" \
        http://files.fnet.test:8000/nosuch >"$T/reqwless-404.out" 2>"$T/reqwless-404.err" &&
        grep -q 'status 404' "$T/reqwless-404.err"; then
        pass "reqwless-http-404"
    else
        fail reqwless-http-404 "$(last "$T/reqwless-404.err")"
    fi

    # TLS 1.3 from openssl s_server, the certificate (ECDSA P-256) checked against its CA.
    local tls=$T/tls
    mkdir -p "$tls"
    if ! timeout 30 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=fnet-test-ca -keyout "$tls/ca.key" -out "$tls/ca.pem" >"$tls/log" 2>&1 ||
        ! timeout 30 openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj /CN=files.fnet.test -keyout "$tls/server.key" -out "$tls/server.csr" >>"$tls/log" 2>&1 ||
        ! printf 'subjectAltName=DNS:files.fnet.test\n' >"$tls/ext" ||
        ! timeout 30 openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
            -CAcreateserial -days 2 -extfile "$tls/ext" -out "$tls/server.pem" >>"$tls/log" 2>&1 ||
        ! openssl x509 -in "$tls/ca.pem" -outform DER -out "$tls/ca.der" 2>>"$tls/log"; then
        fail reqwless-https "openssl could not make the certificates: $(last "$tls/log")"
        ns_del "$NS"
        return
    fi
    # -HTTP serves a file holding the whole answer, here with a Content-Length: embedded-tls
    # 0.18 reports the server's close_notify as an error (TlsError::ConnectionClosed), so a
    # body that ends with the connection (what -WWW sends) ends in an error after its last
    # byte (see examples/ecosystem/README.md).
    printf 'HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n' $MIB |
        cat - "$T/www/file" >"$T/www/file.http"
    (cd "$T/www" && nsbg s_server 200 openssl s_server -accept 4433 -tls1_3 -HTTP \
        -cert "$tls/server.pem" -key "$tls/server.key")
    if ! wait_until 15 tcp_listening 4433; then
        fail reqwless-https "openssl s_server did not start: $(last "$T/s_server.err")"
        ns_del "$NS"
        return
    fi
    if nsrun 120 "$BIN/http-client" --tap tap0 --dns 192.0.2.1 --ca "$tls/ca.der" --out "$T/got-https" \
        https://files.fnet.test:4433/file.http >"$T/reqwless-https.out" 2>"$T/reqwless-https.err" &&
        cmp -s "$T/www/file" "$T/got-https"; then
        pass "reqwless-https (1 MiB over TLS 1.3 from openssl s_server, certificate checked)"
    else
        fail reqwless-https "$(last "$T/reqwless-https.err"); $(cmp "$T/www/file" "$T/got-https" 2>&1)"
    fi
    # The same server against another CA: the handshake must fail.
    if timeout 30 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=other-ca -keyout "$tls/other.key" -outform DER -out "$tls/other.der" >>"$tls/log" 2>&1 &&
        ! nsrun 60 "$BIN/http-client" --tap tap0 --dns 192.0.2.1 --ca "$tls/other.der" --out /dev/null --timeout 30 \
            https://files.fnet.test:4433/file.http >"$T/reqwless-badca.out" 2>"$T/reqwless-badca.err" &&
        grep -q 'Tls(InvalidCertificate)' "$T/reqwless-badca.err"; then
        pass "reqwless-https-wrong-ca (refused: $(last "$T/reqwless-badca.err"))"
    else
        fail reqwless-https-wrong-ca "want Tls(InvalidCertificate), got: $(last "$T/reqwless-badca.err")"
    fi
    ns_del "$NS"
}

s_sntp() {
    ns_new sntp || { fail sntp "namespace set-up failed"; return; }
    # chronyd serves its local clock (the host's: a namespace shares it) as stratum 9 and never
    # sets the clock (-x).
    cat >"$T/chrony.conf" <<CONF
local stratum 9
allow 192.0.2.0/24
bindaddress 192.0.2.1
port 123
cmdport 0
pidfile $T/chronyd.pid
driftfile $T/chrony.drift
CONF
    nsbg chronyd 120 chronyd -d -x -u root -f "$T/chrony.conf"
    if ! wait_until 15 udp_listening 123; then
        fail sntp "chronyd did not start: $(last "$T/chronyd.err")"
        ns_del "$NS"
        return
    fi
    # chronyd answers as soon as it listens; an answer before its local reference is selected
    # has stratum 0 (unsynchronised): ask until the stratum is 9, at most 20 times.
    local i rc=1
    for ((i = 0; i < 20; i++)); do
        nsrun 30 "$BIN/sntp-client" --tap tap0 --server 192.0.2.1 --max-offset-ms 10 \
            >"$T/sntp.out" 2>"$T/sntp.err"
        rc=$?
        grep -qx 'stratum 9' "$T/sntp.out" && break
        sleep 1
    done
    if [ $rc = 0 ] && grep -qx 'stratum 9' "$T/sntp.out"; then
        pass "sntp (chronyd's time, stratum 9, $(grep offset_us "$T/sntp.out"), within 10 ms)"
    else
        fail sntp "exit $rc: $(tr '\n' ' ' <"$T/sntp.out") $(last "$T/sntp.err")"
    fi
    ns_del "$NS"
}

s_mdns() {
    ns_new mdns || { fail mdns "namespace set-up failed"; return; }
    # The route for multicast queries from the namespace (inside it only).
    ip -n "$NS" route add 224.0.0.0/4 dev tap0
    nsbg mdns 120 "$BIN/mdns-responder" --tap tap0 --name fnet-device
    local pid=$BGPID
    if ! wait_until 20 grep_file "$T/mdns.out" '^responding as fnet-device.local$'; then
        fail mdns "the responder did not start: $(last "$T/mdns.err")"
        ns_del "$NS"
        return
    fi
    local got
    # Queries to the group 224.0.0.251 (scripts/mdns-query.py: dig @224.0.0.251 cannot take
    # the unicast answer, see there): a one-shot query answered to its own port, and a full
    # mDNS query from port 5353 answered to the group.
    got=$(nsrun 20 python3 scripts/mdns-query.py legacy fnet-device.local 2>&1)
    if [ "$got" = 192.0.2.2 ]; then
        pass "mdns-legacy-query (to 224.0.0.251 from a random port: fnet-device.local is 192.0.2.2)"
    else
        fail mdns-legacy-query "got '$got'"
    fi
    got=$(nsrun 20 python3 scripts/mdns-query.py multicast fnet-device.local 2>&1)
    if [ "$got" = 192.0.2.2 ]; then
        pass "mdns-multicast-query (from port 5353, the answer to the group 224.0.0.251)"
    else
        fail mdns-multicast-query "got '$got'"
    fi
    got=$(nsrun 20 dig +short +tries=3 +time=2 -p 5353 @192.0.2.2 fnet-device.local A 2>&1)
    if [ "$got" = 192.0.2.2 ]; then
        pass "mdns-dig (dig -p 5353 @192.0.2.2 fnet-device.local: 192.0.2.2)"
    else
        fail mdns-unicast-query "dig answered '$got'"
    fi
    got=$(nsrun 20 dig +short +tries=2 +time=2 -p 5353 @192.0.2.2 nosuch.local A 2>&1)
    if [ -z "$got" ] || [[ "$got" == *"timed out"* ]]; then
        pass "mdns-other-name (no answer for nosuch.local)"
    else
        fail mdns-other-name "dig answered '$got'"
    fi
    kill -0 "$pid" 2>/dev/null || fail mdns "the responder died: $(last "$T/mdns.err")"
    ns_del "$NS"
}

s_dhcp() {
    ns_new dhcp || { fail dhcp "namespace set-up failed"; return; }
    # The Linux side is the client here: no address of its own on the link.
    ip -n "$NS" addr flush dev tap0
    nsbg dhcp-server 120 "$BIN/dhcp-server" --tap tap0 --ip 192.0.2.2/24 --lease-secs 600
    if ! wait_until 20 grep_file "$T/dhcp-server.out" '^serving$'; then
        fail dhcp "the server did not start: $(last "$T/dhcp-server.err")"
        ns_del "$NS"
        return
    fi
    # dhclient with a script that changes nothing (-sf /bin/true): only the lease is checked.
    nsbg dhclient 60 dhclient -1 -d -v -sf /bin/true -lf "$T/dhclient.leases" -pf "$T/dhclient.pid" tap0
    local cpid=$BGPID
    if wait_until 40 grep_file "$T/dhclient.err" '^bound to '; then
        local addr
        addr=$(sed -n 's/^ *fixed-address \(.*\);/\1/p' "$T/dhclient.leases" | tail -n 1)
        if [[ "$addr" =~ ^192\.0\.2\.([0-9]+)$ ]] && ((BASH_REMATCH[1] >= 50 && BASH_REMATCH[1] <= 200)) &&
            grep -q 'option dhcp-server-identifier 192.0.2.2;' "$T/dhclient.leases" &&
            grep -q 'option routers 192.0.2.2;' "$T/dhclient.leases" &&
            grep -q 'option domain-name-servers 192.0.2.2;' "$T/dhclient.leases" &&
            grep -q 'option dhcp-lease-time 600;' "$T/dhclient.leases"; then
            pass "dhcp-lease (dhclient got $addr from ferronet's edge-dhcp server, router and DNS 192.0.2.2, 600 s)"
        else
            fail dhcp-lease "lease file: $(tr '\n' ' ' <"$T/dhclient.leases")"
        fi
    else
        fail dhcp-lease "dhclient got no lease: $(grep -E 'DHCP|bound' "$T/dhclient.err" | tail -n 3 | tr '\n' ' ')"
    fi
    wait_pid "$cpid" 1
    ns_del "$NS"
}

started=$(date +%s)
for s in "${RUN[@]}"; do
    if declare -F "s_$s" >/dev/null; then
        "s_$s"
    else
        fail "$s" "not implemented yet"
    fi
done

passed=$(grep -c '^PASS' "$RESULTS")
failed=$(grep -c '^FAIL' "$RESULTS")
echo "ecosystem: $(($(date +%s) - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
