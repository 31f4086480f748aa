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
    assert!(events.pings.len() >= 3, "{events:?}");
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
/// The same happens on a network whose router advertised before the first solicitation and
/// then answers none (smoltcp moves to `Maintaining` only on an advertisement received in the
/// `Discovering` phase).
#[test]
fn slaac_without_a_router_does_not_wake_the_runner_every_millisecond() {
    // Ethernet, static IPv4 + SLAAC, no router (first byte bits 2 and 3); a time step of
    // 255³ µs (16.6 s; at most 15 s without a router).
    let slaac = run_frames(true, &[0x0c, 4, 255]);
    // The same sockets with DHCP + static IPv6 instead (no SLAAC).
    let dhcp = run_frames(true, &[1, 4, 255]);
    let polls = |e: &Events| e.counters.expect("counters are recorded").polls;
    assert!(polls(&dhcp) < 1_000, "{:?}", dhcp.counters);
    assert!(
        polls(&slaac) < 1_000,
        "{} runner polls in 15 s of virtual time (DHCP scenario: {})",
        polls(&slaac),
        polls(&dhcp)
    );
}

/// Writes the seed corpus (`ferronet_integration::fuzz::seed_corpus`) under the directory
/// named by `FERRONET_FUZZ_CORPUS` (`scripts/fuzz.sh --seed` sets it to `fuzz/corpus`).
#[test]
#[ignore = "writes files; run by scripts/fuzz.sh --seed"]
fn write_seed_corpus() {
    let dir = std::env::var("FERRONET_FUZZ_CORPUS")
        .expect("FERRONET_FUZZ_CORPUS names the corpus directory");
    let seeds = ferronet_integration::fuzz::seed_corpus();
    for (target, input) in &seeds {
        let sub = std::path::Path::new(&dir).join(target);
        std::fs::create_dir_all(&sub).unwrap();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in input {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        std::fs::write(sub.join(format!("seed-{hash:016x}")), input).unwrap();
    }
    assert!(seeds.len() > 30, "{} seeds", seeds.len());
}

/// Found by `frames_ethernet` (crash-f1be8123..., minimized): on a stack created with SLAAC,
/// `set_config_v6` to another configuration removed the link-local address while smoltcp's
/// SLAAC (which cannot be turned off) kept soliciting routers from it: smoltcp 0.14 panicked
/// in `ndisc_rs_egress` (`link_local_ipv6_address().unwrap()`) at the next solicitation.
#[test]
fn leaving_slaac_keeps_the_link_local_address_for_router_solicitations() {
    // Ethernet, static IPv4 + SLAAC, no router (first byte bits 2 and 3: solicitations go on);
    // application call 9 (set_config_v6) with argument 0 (ConfigV6::None); a step of 8 s (the
    // next solicitations).
    let events = run_frames(true, &[0x0c, 6, 9, 0, 0, 4, 200]);
    assert_eq!(events.config_v6, None);
    // Argument 1: a static address 2001:db8::40/1 (prefix 1 % 129).
    let events = run_frames(true, &[0x0c, 6, 9, 1, 0, 4, 200]);
    assert_eq!(
        events.config_v6.map(|c| c.address.to_string()).as_deref(),
        Some("2001:db8::/1")
    );
}

/// Found by `structured` (crash-0704a99d...): a router advertisement whose prefix
/// information option has a prefix length over 128 (and the autonomous flag) made smoltcp
/// 0.14's SLAAC panic (`Ipv6Cidr::new`: `assertion failed: prefix_len <= 128`). Anyone on the
/// link could stop the stack with one frame. ferronet now neutralizes such an option
/// (`ra_guard.rs`) before smoltcp sees the frame.
#[test]
fn router_advertisement_with_prefix_length_over_128_is_ignored() {
    // The input the fuzzer found.
    run_structured(&[
        0, 3, 43, 197, 140, 141, 177, 125, 68, 135, 56, 23, 179, 24, 79, 125, 60, 111, 110, 89,
        149, 229, 80, 159, 85, 70, 157, 253, 89, 52, 170, 95, 96, 205, 187, 79, 235, 22, 7, 60, 2,
        0, 0, 16, 147, 147, 6, 255, 255, 255, 255, 255, 255, 255, 147, 147, 147, 147, 147, 3, 4,
        201, 21, 0, 0, 0, 17,
    ]);
    // Written out: Ethernet, static IPv4 + SLAAC, no router during the set-up, checksums
    // verified or not (first byte 0x18 or 0x1a); a router advertisement (operation 3) with its own prefix length (flags 1) of 200,
    // router lifetime 1800 s, prefix flags on-link + autonomous, valid 86400 s, preferred
    // 14400 s; then 1 s.
    for first in [0x18u8, 0x1a] {
        let events = run_structured(&[
            first, 3, 1, 200, 0, 64, 0, 8, 7, 0, 0, 0, 0, 0xc0, 0x80, 0x51, 1, 0, 0, 0x40, 0x38, 0,
            0, 0, 7, 100,
        ]);
        // The prefix was not taken; the stack keeps running (the ping goes on).
        assert_eq!(events.config_v6, None);
        assert!(events.pings.iter().all(|ok| *ok) && !events.pings.is_empty());
    }
}

/// Found by `frames_ethernet` (crash-c9e9a1f5...) and `structured` (crash-c0ff6020...): a
/// router advertisement with a multicast prefix (ff00::/8, length 64) made smoltcp 0.14's
/// SLAAC form a multicast "address" and panic in `update_ip_addrs` ("is not unicast").
/// ferronet now neutralizes such an option too (`ra_guard.rs`).
#[test]
fn router_advertisement_with_a_multicast_prefix_is_ignored() {
    // Ethernet, static IPv4 + SLAAC, no router during the set-up (first byte 0x18); a router
    // advertisement (operation 3) with its own 16-byte prefix (flags 2) ff02::/64, router
    // lifetime 1800 s, on-link + autonomous, valid 86400 s, preferred 14400 s; then 1 s.
    let mut input = vec![0x18, 3, 2, 0, 0xff, 0x02];
    input.extend([0; 14]);
    input.extend([
        64, 0, 8, 7, 0, 0, 0, 0, 0xc0, 0x80, 0x51, 1, 0, 0, 0x40, 0x38, 0, 0, 0,
    ]);
    input.extend([7, 100]);
    let events = run_structured(&input);
    assert_eq!(events.config_v6, None);
    assert!(events.pings.iter().all(|ok| *ok) && !events.pings.is_empty());
}

/// Every crash input the fuzzers found (tests/fuzz-inputs/<target>-crash-*) runs without a
/// panic. (The harness's input format may change under them; the tests above spell each
/// reproduction out.)
#[test]
fn every_committed_crash_input_runs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz-inputs");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/fuzz-inputs exists") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let input = std::fs::read(&path).expect("a readable input");
        if name.starts_with("frames_ethernet-") {
            run_frames(true, &input);
        } else if name.starts_with("frames_ip-") {
            run_frames(false, &input);
        } else if name.starts_with("structured-") {
            run_structured(&input);
        } else {
            panic!("{name}: not named after a fuzz target");
        }
        count += 1;
    }
    assert!(count >= 4, "{count} inputs in {}", dir.display());
}

/// Found by `structured` in the last long run (crash-ca22c9cd..., not minimized): smoltcp 0.14
/// panicked in `NeighborCache::lookup` (`assertion failed: protocol_addr.is_unicast()`), called
/// from `egress_permitted` / `has_neighbor` during `poll_egress`: the configuration named a
/// gateway that is not a unicast address, the default route pointed at it, and a socket
/// waiting for the next hop of an off-link destination had smoltcp look the gateway up. The
/// stack now ignores such a gateway (see `non_unicast_gateways_are_ignored` in hostile.rs).
#[test]
fn non_unicast_gateway_from_dhcp_never_reaches_the_neighbor_cache() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz-inputs/structured-crash-ca22c9cd");
    run_structured(&std::fs::read(path).expect("the input is committed"));
}

#[test]
fn with_a_router_slaac_configures_and_the_runner_stays_quiet() {
    // Ethernet, static IPv4 + SLAAC, a router during the set-up (the default); 33 s.
    let events = run_frames(true, &[0, 4, 255, 4, 255]);
    let v6 = events.config_v6.map(|c| c.address.to_string());
    assert!(
        v6.as_deref().is_some_and(|a| a.starts_with("2001:db8:1:")),
        "{v6:?}"
    );
    let polls = events.counters.expect("counters are recorded").polls;
    assert!(polls < 1_000, "{polls} runner polls in 33 s");
}

#[test]
fn structured_dhcp_replies_configure_the_stack() {
    // Ethernet + DHCP; a step; an offer (operation 2, kind 0) of 192.0.2.50 with fields 0x2e:
    // mask /24, router 192.0.2.1, server id 192.0.2.1, lease 3600 s; a step; the ack (kind 2);
    // a step.
    let offer = [0, 0x2e, 24, 192, 0, 2, 1, 0x10, 0x0e, 0, 0];
    let ack = [2, 0x2e, 24, 192, 0, 2, 1, 0x10, 0x0e, 0, 0];
    let input = [&[1, 7, 60, 2][..], &offer, &[7, 60, 2], &ack, &[7, 100]].concat();
    let events = run_structured(&input);
    let v4 = events.config_v4.expect("DHCP configured the stack");
    assert_eq!(v4.address.to_string(), "192.0.2.50/24");
    assert_eq!(
        v4.gateway.map(|g| g.to_string()).as_deref(),
        Some("192.0.2.1")
    );
}

#[test]
fn structured_dns_answer_resolves_the_query_in_flight() {
    // Ethernet, static IPv4; a step; a DNS answer (operation 1) with one A record 192.0.2.77.
    let events = run_structured(&[0, 7, 60, 1, 0, 0, 1, 0, 192, 0, 2, 77, 0, 0, 1, 0]);
    assert!(events.dns.contains(&true), "{:?}", events.dns);
}

#[test]
fn structured_router_advertisement_gives_a_slaac_address() {
    // Ethernet, static IPv4 + SLAAC, no router during the set-up (first byte bits 3, 4); a router
    // advertisement (operation 3) of 2001:db8:1::/64:
    // hop limit 64, router lifetime 1800 s, prefix on-link and autonomous, valid 86400 s,
    // preferred 14400 s.
    let events = run_structured(&[
        0x18, 7, 60, 3, 0, 0, 64, 0, 8, 7, 0, 0, 0, 0, 0xc0, 0x80, 0x51, 1, 0, 0, 0x40, 0x38, 0, 0,
        0, 7, 100,
    ]);
    let v6 = events.config_v6.map(|c| c.address.to_string());
    assert!(
        v6.as_deref().is_some_and(|a| a.starts_with("2001:db8:1:")),
        "{v6:?}"
    );
}

/// Measurement aid, not a check: for every input in the directory `FERRONET_FUZZ_PROFILE`
/// (of the target `FERRONET_FUZZ_TARGET`), prints A's runner polls and frames.
#[test]
#[ignore = "a measurement aid; needs FERRONET_FUZZ_PROFILE"]
fn profile_corpus() {
    let (Ok(dir), Ok(target)) = (
        std::env::var("FERRONET_FUZZ_PROFILE"),
        std::env::var("FERRONET_FUZZ_TARGET"),
    ) else {
        eprintln!("SKIP: set FERRONET_FUZZ_PROFILE and FERRONET_FUZZ_TARGET");
        return;
    };
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("a readable directory") {
        let path = entry.expect("a directory entry").path();
        let data = std::fs::read(&path).expect("a readable file");
        let events = match target.as_str() {
            "frames_ethernet" => run_frames(true, &data),
            "frames_ip" => run_frames(false, &data),
            _ => run_structured(&data),
        };
        let c = events.counters.expect("counters are recorded");
        rows.push((c.polls, c.rx_frames, c.tx_frames, data.len(), path));
    }
    rows.sort();
    let total: u64 = rows.iter().map(|r| u64::from(r.0)).sum();
    for r in &rows {
        println!(
            "{:>8} polls {:>6} rx {:>6} tx {:>5} B {}",
            r.0,
            r.1,
            r.2,
            r.3,
            r.4.display()
        );
    }
    println!("{} inputs, {total} polls", rows.len());
}

/// Runs `f` on its own thread and fails if it has not returned within `limit` of real time
/// (a livelock at one virtual instant never returns; the thread is left spinning, but the test
/// fails instead of hanging).
fn within<T: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(e) => panic!("did not return within {limit:?} ({e}): a livelock"),
    }
}

/// Found by `structured` (timeout-04a759f0...) and `frames_ethernet` (timeout-40d2d93c...):
/// the runner spun for ever at one virtual instant. smoltcp's SLAAC adds its own IPv6 default
/// route (via the router) beside the one a static configuration set, and smoltcp 0.14's
/// `add_default_ipv6_route` replaces only the first default route it finds. Once the table
/// held two, each SLAAC reconfiguration set the first gateway, which moved it behind the other;
/// the next poll (same instant: SLAAC's update time is still "now") read the other gateway,
/// reconfigured again, and so on: a busy loop that starved every other task.
#[test]
fn two_ipv6_default_routes_do_not_make_the_runner_spin() {
    // The fuzzers' inputs, as found (each spun for ever before the fix).
    for (name, target) in [
        ("structured-timeout-04a759f0", "structured"),
        ("frames_ethernet-timeout-40d2d93c", "frames_ethernet"),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz-inputs")
            .join(name);
        let input = std::fs::read(&path).expect("the committed input");
        within(std::time::Duration::from_secs(30), move || {
            if target == "structured" {
                run_structured(&input);
            } else {
                run_frames(true, &input);
            }
        });
    }
}
