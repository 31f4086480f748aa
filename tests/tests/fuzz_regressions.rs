//! The fuzzing harness (`ferronet_integration::fuzz`, run by the cargo-fuzz targets in `fuzz/`)
//! sets up what it claims, and every input a fuzzer found that crashed or hung ferronet is
//! replayed here.

use ferronet_integration::fuzz::{Events, run_frames, run_structured};

/// A time step of 255³ µs (about 16.6 s of virtual time) in a frames input.
const STEP_16S: [u8; 2] = [4, 255];

fn check_setup(events: &Events) {
    // Connections 0 (echo), 1 (A wrote and closed) and 2 (B closed) are up; 3 (the listener)
    // has no peer.
    let mut connected = events.connected.clone();
    connected.sort();
    assert_eq!(connected, [0, 1, 2], "{events:?}");
    assert_eq!(events.closed, [1], "{events:?}");
    assert_eq!(events.eof, [2], "{events:?}");
    // B's "closing" server wrote 7 bytes before its FIN.
    assert_eq!(events.tcp_read, 7, "{events:?}");
    // B answers pings (automatic echo replies) ...
    assert!(events.pings.len() >= 10, "{events:?}");
    assert!(events.pings.iter().all(|ok| *ok), "{events:?}");
    // ... but runs no DNS server: queries fail and are asked again.
    assert!(!events.dns.is_empty(), "{events:?}");
    assert!(events.dns.iter().all(|ok| !ok), "{events:?}");
}

#[test]
fn harness_sets_up_every_socket_ethernet_static() {
    check_setup(&run_frames(true, &[&[0u8][..], &STEP_16S].concat()));
}

#[test]
fn harness_sets_up_every_socket_ethernet_dhcp() {
    check_setup(&run_frames(true, &[&[1u8][..], &STEP_16S].concat()));
}

#[test]
fn harness_sets_up_every_socket_ip_medium() {
    check_setup(&run_frames(false, &[&[0u8][..], &STEP_16S].concat()));
}

#[test]
fn harness_structured_scenarios_set_up() {
    // Structured inputs: first byte 0 (Ethernet, static), 1 (Ethernet, DHCP), 4 (IP); then a
    // time step (operation 7).
    for first in [0u8, 1, 4] {
        check_setup(&run_structured(&[first, 7, 255]));
    }
}

#[test]
fn udp_echo_answers_an_injected_datagram() {
    // Structured: Ethernet static, operation 5 (UDP) to A's echo port with 4 payload bytes.
    let events = run_structured(&[0, 5, 0, 4, 0, 0x39, 0x30, 1, 2, 3, 4]);
    assert_eq!(events.udp_echoed, 1, "{events:?}");
}

/// Found by `frames_ethernet` (a slow input: one long time step). With SLAAC on, once the
/// three router solicitations went unanswered (about 12 s), smoltcp 0.14's `poll_at` keeps
/// returning the past deadline of the last solicitation (`Slaac::poll_at` still reports
/// `retry_rs_at` in the `Discovering` phase with no solicitation left), so whenever a socket
/// has a timer (here a DNS query, TCP connections, pings) the runner's deadline is always
/// "now": it falls back to its 1 ms idle back-off and wakes 1000 times a second, for ever.
/// Without SLAAC (DHCP or IP-medium scenarios) the same sockets cost a few polls a second.
#[test]
#[ignore = "fails: smoltcp 0.14 SLAAC keeps a stale router-solicitation deadline; see the fuzz report"]
fn slaac_without_a_router_does_not_wake_the_runner_every_millisecond() {
    // Ethernet, static IPv4 + SLAAC; two time steps of 255³ µs (33 s in all).
    let slaac = run_frames(true, &[0, 4, 255, 4, 255]);
    // The same sockets with DHCP + static IPv6 instead (no SLAAC).
    let dhcp = run_frames(true, &[1, 4, 255, 4, 255]);
    let polls = |e: &Events| e.counters.expect("counters are recorded").polls;
    assert!(polls(&dhcp) < 1_000, "{:?}", dhcp.counters);
    assert!(
        polls(&slaac) < 1_000,
        "{} runner polls in 33 s of virtual time (DHCP scenario: {})",
        polls(&slaac),
        polls(&dhcp)
    );
}
