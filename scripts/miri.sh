#!/usr/bin/env bash
# Runs the tests that exercise ferronet's `unsafe` code under Miri (`cargo +nightly miri test`),
# which fails on undefined behaviour: use after free, aliasing violations (Stacked Borrows),
# invalid values, data races, leaks.
#
#   scripts/miri.sh             the selection below (about 3 minutes of CPU time from a cold
#                               target/miri; Miri runs one test at a time)
#   MIRI_TOOLCHAIN=nightly-...  another nightly
#
# What is covered, and through which tests:
# - waitq.rs (intrusive waiter list with raw pointers): its unit tests; many tasks waiting
#   for the configuration (stack.rs); DNS queries waiting for a free slot and cancelled
#   while linked (dns.rs, and the fuzz harness's cancelled queries).
# - lifetime erasure of socket buffers (stack.rs `erase_lifetime`, tcp.rs, udp.rs, raw.rs,
#   icmp.rs) and the socket storage transmutes of `init`: every test that opens a socket,
#   dropping sockets before the buffers go away.
# - tcp/client.rs (TcpClient pool: UnsafeCell buffers, ManuallyDrop socket) and udp/nal.rs
#   (UdpClient pool): the nal.rs tests of connect, drop, cancellation and exhaustion.
# - the DHCP hostname option stored in StackResources: the DHCP hostname test, and the fuzz
#   harness's DHCP scenario (hostname "ferronet-fuzz").
# - the fuzz harness tests open a TCP connection in each state, a listener, UDP, raw and
#   ICMP sockets, a ping and DNS queries (some cancelled while they wait), and drop them all
#   before freeing the stack: every buffer-lifetime erasure, with the leak check on.
# - ferronet-driver-channel (no `unsafe`: `#![forbid(unsafe_code)]`) runs a few of its
#   queue tests anyway, as do the fuzz harness's forwarding wakers.
#
# Leaks: the integration tests leak their StackResources and buffers on purpose
# (`ferronet_integration::leak`, `buf`: a stack is made for a `static`), and with them the
# executor's wakers the stack still holds; those tests run with -Zmiri-ignore-leaks. The
# unit tests and the fuzz-harness tests (which free everything) run with the leak check on.
#
# Without nightly or Miri it says SKIP, and fails when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

toolchain=${MIRI_TOOLCHAIN:-nightly}
skip() {
    if [ "${CI:-}" = true ]; then
        echo "miri: FAIL: $* (CI=true: Miri is required)" >&2
        exit 1
    fi
    echo "miri: SKIP: $* (run scripts/setup.sh)" >&2
    exit 0
}
cargo "+$toolchain" --version >/dev/null 2>&1 || skip "no $toolchain toolchain"
cargo "+$toolchain" miri --version >/dev/null 2>&1 || skip "the miri component is not installed"

# Every ferronet feature but the loggers.
features="tcp,udp,raw,icmp,auto-icmp-echo-reply,dns,mdns,dhcpv4,dhcpv4-hostname,proto-ipv4,proto-ipv6,slaac,medium-ethernet,medium-ip,medium-ieee802154,multicast,igmp,counters"
base_flags="-Zmiri-strict-provenance"

step() { printf '\n=== miri: %s\n' "$*"; }

step "ferronet unit tests (leak check on)"
MIRIFLAGS="$base_flags" cargo "+$toolchain" miri test -q -p ferronet --lib --features "$features"

step "fuzz harness tests (leak check on)"
MIRIFLAGS="$base_flags" cargo "+$toolchain" miri test -q -p ferronet-integration \
    --test fuzz_regressions -- udp_echo_answers_an_injected_datagram \
    structured_dns_answer_resolves_the_query_in_flight structured_dhcp_replies_configure_the_stack

leaky="$base_flags -Zmiri-ignore-leaks"
run_leaky() {
    local test=$1
    shift
    step "integration tests $test: $*"
    MIRIFLAGS="$leaky" cargo "+$toolchain" miri test -q -p ferronet-integration --test "$test" -- "$@"
}
run_leaky nal tcp_client_echo_v4_and_v6 \
    tcp_client_drop_closes_gracefully_and_slot_is_reused_after_close \
    tcp_client_cancelled_connect_returns_slot tcp_client_pool_exhausted \
    udp_bind_single_round_trip udp_connect_from_echo_v4_and_v6
run_leaky dns more_concurrent_queries_than_slots_all_succeed cancelled_queries_free_their_slots
run_leaky stack many_config_waiters_sleep_until_configured
run_leaky icmp_raw icmp_socket_echo_round_trip raw_custom_protocol_ipv4 ping_ipv4_round_trip
run_leaky dhcp hostname_option_is_sent_in_discover_and_request

step "ferronet-driver-channel queue tests"
MIRIFLAGS="$leaky" cargo "+$toolchain" miri test -q -p ferronet-driver-channel --test queues -- \
    rx_frames_keep_order_and_contents_across_wraparound frames_wake_the_other_end \
    borrow_split_hands_the_buffers_over_and_back

echo "miri: no undefined behaviour found"
