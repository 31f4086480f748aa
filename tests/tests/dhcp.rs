//! The DHCPv4 client against a scripted server: the four-message exchange, the hostname
//! option, renewal, NAK, lease expiry, link flaps, the retry configuration and malformed
//! server messages.

use std::cell::Cell;
use std::rc::Rc;

use embassy_time::{Duration, Instant};
use ferronet::dns::DnsQueryType;
use ferronet::{Config, DhcpConfig, EthernetAddress, IpAddress, Ipv4Cidr, Stack, StaticConfigV4};
use ferronet_integration::peers::{
    DhcpMessage, DhcpPolicy, DhcpServer, DhcpServerConfig, DnsAnswer, DnsServer, Peer, parse_dhcp,
};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{Direction, LinkConfig, LinkHandle, MAC_A, MAC_B, pair_ethernet};
use smoltcp::wire::DhcpMessageType;

/// Generous virtual time limit: anything that needs longer has hung.
const LIMIT: Duration = Duration::from_secs(300);

const STACK_MAC: EthernetAddress = EthernetAddress(MAC_A);
const PEER_MAC: EthernetAddress = EthernetAddress(MAC_B);

/// Offers 192.0.2.50/24, router 192.0.2.1, DNS 192.0.2.53 and 192.0.2.54, from 192.0.2.1.
fn server_config(lease_secs: u32) -> DhcpServerConfig {
    DhcpServerConfig {
        server_ip: ip4(1),
        offer: ip4(50),
        prefix_len: 24,
        router: Some(ip4(1)),
        dns_servers: vec![ip4(53), ip4(54)],
        lease_secs,
    }
}

fn expected_config() -> StaticConfigV4 {
    StaticConfigV4 {
        address: Ipv4Cidr::new(ip4(50), 24),
        gateway: Some(ip4(1)),
        dns_servers: heapless::Vec::from_slice(&[ip4(53), ip4(54)]).unwrap(),
    }
}

struct Setup {
    stack: Stack<'static>,
    link: LinkHandle,
    peer: Peer,
    server: DhcpServer,
}

/// A DHCP stack on end "a" of a link and a peer running `server` on end "b".
fn setup(ex: &Executor<'_>, dhcp: DhcpConfig, server: DhcpServerConfig) -> Setup {
    let (dev_stack, dev_peer, link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (stack, mut runner) = stack_on(dev_stack, Config::dhcpv4(dhcp), 0xd4c9);
    ex.spawn(async move {
        runner.run().await;
    });
    let server = DhcpServer::new(server);
    let peer = Peer::new(PEER_MAC);
    peer.with_dhcp(&server);
    peer.spawn(ex, dev_peer);
    Setup {
        stack,
        link,
        peer,
        server,
    }
}

/// The DHCP messages the peer received from the stack, oldest first.
fn dhcp_messages(peer: &Peer) -> Vec<DhcpMessage> {
    peer.received()
        .iter()
        .filter_map(|r| parse_dhcp(r.time, &r.frame))
        .collect()
}

/// Wait for the `n`-th (from 0) DHCP message of type `t` from the stack.
async fn wait_dhcp(peer: &Peer, t: DhcpMessageType, n: usize) -> DhcpMessage {
    peer.wait_for(|rx| {
        rx.iter()
            .filter_map(|r| parse_dhcp(r.time, &r.frame))
            .filter(|m| m.message_type == t)
            .nth(n)
    })
    .await
}

/// Spawn a task that records when the stack loses its configuration.
fn watch_config_down(ex: &Executor<'_>, stack: Stack<'static>) -> Rc<Cell<Option<Instant>>> {
    let down = Rc::new(Cell::new(None));
    let d = down.clone();
    ex.spawn(async move {
        stack.wait_config_down().await;
        d.set(Some(Instant::now()));
    });
    down
}

fn assert_near(what: &str, actual: Instant, expected: Instant, tolerance: Duration) {
    assert!(
        actual >= expected && actual <= expected + tolerance,
        "{what}: at {} µs, expected {} µs (+ at most {} µs)",
        actual.as_micros(),
        expected.as_micros(),
        tolerance.as_micros()
    );
}

#[test]
fn discover_offer_request_ack_configures_the_stack() {
    let ex = Executor::new();
    let s = setup(&ex, DhcpConfig::default(), server_config(3600));
    let dns = DnsServer::new(ip4(53));
    dns.add("printer.example", DnsAnswer::A(ip4(77)));
    s.peer.with_dns(&dns);
    assert_eq!(s.stack.config_v4(), None);
    assert!(!s.stack.is_config_up());

    let stack = s.stack;
    ex.try_run_until(stack.wait_config_up(), LIMIT).unwrap();
    // On a link without latency the whole exchange takes no virtual time at all.
    assert!(
        Instant::now() < Instant::from_millis(10),
        "took {:?}",
        Instant::now()
    );
    assert_eq!(stack.config_v4(), Some(expected_config()));

    let msgs = dhcp_messages(&s.peer);
    let types: Vec<_> = msgs.iter().map(|m| m.message_type).collect();
    assert_eq!(types, [DhcpMessageType::Discover, DhcpMessageType::Request]);
    let (discover, request) = (&msgs[0], &msgs[1]);
    assert_eq!(discover.chaddr, STACK_MAC);
    assert_eq!(discover.src_mac, STACK_MAC);
    assert_eq!(discover.dst_mac, EthernetAddress::BROADCAST);
    assert!(discover.src_ip.is_unspecified());
    assert!(discover.dst_ip.is_broadcast());
    assert_eq!(discover.requested_ip, None);
    assert_eq!(discover.hostname, None);
    // REQUEST (selecting): broadcast, asks for the offered address from this server.
    assert_eq!(request.xid, discover.xid);
    assert_eq!(request.chaddr, STACK_MAC);
    assert!(request.src_ip.is_unspecified());
    assert!(request.dst_ip.is_broadcast());
    assert!(request.client_ip.is_unspecified());
    assert_eq!(request.requested_ip, Some(ip4(50)));
    assert_eq!(request.server_identifier, Some(ip4(1)));
    assert_eq!(request.hostname, None);
    let sent: Vec<_> = s.server.sent().iter().map(|m| m.message_type).collect();
    assert_eq!(sent, [DhcpMessageType::Offer, DhcpMessageType::Ack]);

    // The DNS servers of the lease are used.
    let addrs = ex
        .try_run_until(stack.dns_query("printer.example", DnsQueryType::A), LIMIT)
        .unwrap()
        .unwrap();
    assert_eq!(addrs.as_slice(), [IpAddress::Ipv4(ip4(77))]);
    assert_eq!(dns.queries().len(), 1);
    assert_eq!(dns.queries()[0].src, ip4(50));
}

#[test]
fn hostname_option_is_sent_in_discover_and_request() {
    let ex = Executor::new();
    let mut c = DhcpConfig::default();
    c.hostname = Some("sensor-1".try_into().unwrap());
    let s = setup(&ex, c, server_config(3600));
    ex.try_run_until(s.stack.wait_config_up(), LIMIT).unwrap();
    assert_eq!(s.stack.config_v4(), Some(expected_config()));

    let msgs = dhcp_messages(&s.peer);
    assert_eq!(msgs.len(), 2);
    for m in &msgs {
        assert_eq!(
            m.hostname.as_deref(),
            Some("sensor-1"),
            "{:?}",
            m.message_type
        );
        let opt12: Vec<_> = m.options.iter().filter(|(k, _)| *k == 12).collect();
        assert_eq!(opt12.len(), 1, "exactly one host name option");
        assert_eq!(opt12[0].1, b"sensor-1");
    }
}

#[test]
fn renews_at_t1_and_keeps_the_address() {
    let ex = Executor::new();
    let s = setup(&ex, DhcpConfig::default(), server_config(60));
    let stack = s.stack;
    ex.try_run_until(stack.wait_config_up(), LIMIT).unwrap();
    let down = watch_config_down(&ex, stack);
    let ack = s.server.sent_of(DhcpMessageType::Ack)[0].time;

    // T1 = lease / 2: a REQUEST unicast to the server, with ciaddr set.
    let renew = ex
        .try_run_until(wait_dhcp(&s.peer, DhcpMessageType::Request, 1), LIMIT)
        .unwrap();
    assert_near(
        "renewing REQUEST",
        renew.time,
        ack + Duration::from_secs(30),
        Duration::from_millis(50),
    );
    assert_eq!(renew.client_ip, ip4(50));
    assert_eq!(renew.src_ip, ip4(50));
    assert_eq!(renew.dst_ip, ip4(1));
    assert_eq!(renew.dst_mac, PEER_MAC);
    assert_eq!(renew.requested_ip, None);
    assert_eq!(renew.server_identifier, None);

    // The server ACKs; the lease now runs until renew + 60 s, so the original expiry (ack +
    // 60 s) passes without loss, and the next renewal comes 30 s after the second ACK.
    ex.run_for(Duration::from_secs(45));
    assert!(Instant::now() > ack + Duration::from_secs(70));
    assert_eq!(stack.config_v4(), Some(expected_config()));
    assert_eq!(
        down.get(),
        None,
        "the configuration must not drop during a renewal"
    );
    let acks = s.server.sent_of(DhcpMessageType::Ack);
    assert_eq!(acks.len(), 3, "initial ACK and two renewals");
    let requests = s.server.seen_of(DhcpMessageType::Request);
    assert_eq!(requests.len(), 3);
    assert_near(
        "second renewal",
        requests[2].time,
        acks[1].time + Duration::from_secs(30),
        Duration::from_millis(50),
    );
    assert_eq!(
        s.server.discovers(),
        1,
        "no new discovery while the lease is renewed"
    );
}

#[test]
fn nak_on_renew_deconfigures_and_restarts_discovery() {
    let ex = Executor::new();
    let s = setup(&ex, DhcpConfig::default(), server_config(60));
    let stack = s.stack;
    ex.try_run_until(stack.wait_config_up(), LIMIT).unwrap();
    s.server.set_policy(DhcpPolicy::NakRenewals);

    ex.try_run_until(stack.wait_config_down(), LIMIT).unwrap();
    let down_at = Instant::now();
    assert_eq!(stack.config_v4(), None);
    assert!(!stack.is_config_up());
    let nak = s.server.sent_of(DhcpMessageType::Nak);
    assert_eq!(nak.len(), 1);
    assert_near(
        "deconfiguration",
        down_at,
        nak[0].time,
        Duration::from_millis(10),
    );
    let renew = &s.server.seen_of(DhcpMessageType::Request)[1];
    assert_eq!(renew.client_ip, ip4(50), "the NAKed REQUEST was a renewal");

    // Discovery restarts at once, and a new lease is obtained.
    let discover = ex
        .try_run_until(wait_dhcp(&s.peer, DhcpMessageType::Discover, 1), LIMIT)
        .unwrap();
    assert_near(
        "new DISCOVER",
        discover.time,
        nak[0].time,
        Duration::from_millis(10),
    );
    ex.try_run_until(stack.wait_config_up(), LIMIT).unwrap();
    assert_eq!(stack.config_v4(), Some(expected_config()));
    assert_eq!(s.server.discovers(), 2);
    assert_eq!(s.server.requests(), 3);
}

#[test]
fn lease_expires_when_the_server_stops_answering() {
    let ex = Executor::new();
    let s = setup(&ex, DhcpConfig::default(), server_config(60));
    let stack = s.stack;
    ex.try_run_until(stack.wait_config_up(), LIMIT).unwrap();
    let ack = s.server.sent_of(DhcpMessageType::Ack)[0].time;
    s.server.set_policy(DhcpPolicy::Silent);

    ex.try_run_until(stack.wait_config_down(), LIMIT).unwrap();
    assert_near(
        "deconfiguration at lease end",
        Instant::now(),
        ack + Duration::from_secs(60),
        Duration::from_millis(50),
    );
    assert_eq!(stack.config_v4(), None);

    // Before giving up the client tried: unicast renewal from T1 (30 s), broadcast rebinding
    // from T2 (52.5 s).
    let requests = s.server.seen_of(DhcpMessageType::Request);
    let renewing: Vec<_> = requests[1..]
        .iter()
        .filter(|m| m.dst_ip == ip4(1))
        .collect();
    let rebinding: Vec<_> = requests[1..]
        .iter()
        .filter(|m| m.dst_ip.is_broadcast())
        .collect();
    assert!(
        !renewing.is_empty() && !rebinding.is_empty(),
        "{requests:?}"
    );
    assert_near(
        "first renewal",
        renewing[0].time,
        ack + Duration::from_secs(30),
        Duration::from_millis(50),
    );
    assert_near(
        "first rebinding",
        rebinding[0].time,
        ack + Duration::from_millis(52_500),
        Duration::from_millis(50),
    );
    for m in &requests[1..] {
        assert_eq!(m.client_ip, ip4(50));
        assert!(m.time < ack + Duration::from_secs(60));
    }
}

#[test]
fn link_flap_keeps_the_lease_and_rediscovers_once() {
    let ex = Executor::new();
    let s = setup(&ex, DhcpConfig::default(), server_config(3600));
    let stack = s.stack;
    ex.try_run_until(stack.wait_config_up(), LIMIT).unwrap();
    assert_eq!(s.server.discovers(), 1);

    s.link.set_up(false);
    ex.try_run_until(stack.wait_link_down(), Duration::from_millis(10))
        .expect("link-down seen at once");
    // The lease outlives the link (so do the connections that use it).
    assert_eq!(stack.config_v4(), Some(expected_config()));
    let received_before = s.peer.received_count();
    ex.run_for(Duration::from_secs(5));
    assert_eq!(
        s.peer.received_count(),
        received_before,
        "nothing crosses a down link"
    );

    let up_at = Instant::now();
    s.link.set_up(true);
    ex.run_for(Duration::from_secs(1));
    assert_eq!(stack.config_v4(), Some(expected_config()));

    let window: Vec<_> = dhcp_messages(&s.peer)
        .into_iter()
        .filter(|m| m.time >= up_at && m.time <= up_at + Duration::from_secs(1))
        .collect();
    let discovers: Vec<_> = window
        .iter()
        .filter(|m| m.message_type == DhcpMessageType::Discover)
        .collect();
    assert_eq!(
        discovers.len(),
        1,
        "exactly one DISCOVER after link-up: {window:?}"
    );
    assert_near(
        "DISCOVER after link-up",
        discovers[0].time,
        up_at,
        Duration::from_millis(10),
    );
    let requests = window
        .iter()
        .filter(|m| m.message_type == DhcpMessageType::Request)
        .count();
    assert_eq!(requests, 1);
    assert_eq!(s.server.discovers(), 2);
}

/// A lease held when the link comes back is dropped if no server confirms it in time.
#[test]
fn lease_unconfirmed_after_a_link_flap_is_dropped() {
    let ex = Executor::new();
    let s = setup(&ex, DhcpConfig::default(), server_config(3600));
    let stack = s.stack;
    ex.try_run_until(stack.wait_config_up(), LIMIT).unwrap();
    s.link.set_up(false);
    ex.run_for(Duration::from_secs(1));
    s.server.set_policy(DhcpPolicy::Silent);
    let up_at = Instant::now();
    s.link.set_up(true);
    ex.try_run_until(stack.wait_config_down(), LIMIT)
        .expect("the unconfirmed lease is dropped");
    let after = Instant::now() - up_at;
    assert!(
        after >= ferronet::DHCP_RECONFIRM_TIMEOUT
            && after <= ferronet::DHCP_RECONFIRM_TIMEOUT + Duration::from_secs(11),
        "dropped after {after:?}"
    );
    assert_eq!(stack.config_v4(), None);
}

#[test]
fn retry_config_is_honoured() {
    // Reachable under both paths, and buildable from its default.
    let mut retry: ferronet::RetryConfig = ferronet::config::RetryConfig::default();
    retry.discover_timeout = smoltcp::time::Duration::from_secs(2);
    retry.initial_request_timeout = smoltcp::time::Duration::from_secs(1);
    retry.request_retries = 3;
    let mut c = DhcpConfig::default();
    c.retry_config = retry;
    assert_eq!(c.retry_config.discover_timeout.secs(), 2);

    let ex = Executor::new();
    let s = setup(&ex, c, server_config(3600));
    s.server.set_policy(DhcpPolicy::Silent);
    ex.run_for(Duration::from_millis(5_500));
    let times: Vec<u64> = s
        .server
        .seen_of(DhcpMessageType::Discover)
        .iter()
        .map(|m| m.time.as_millis())
        .collect();
    assert_eq!(times, [0, 2_000, 4_000], "DISCOVER every discover_timeout");

    // Offers but never ACKs: REQUEST after 0, 1 s, 2 s (the timeout doubles every two tries),
    // then after request_retries the client starts over with a DISCOVER.
    s.server.set_policy(DhcpPolicy::OfferOnly);
    let first = ex
        .try_run_until(wait_dhcp(&s.peer, DhcpMessageType::Request, 0), LIMIT)
        .unwrap()
        .time;
    let again = ex
        .try_run_until(wait_dhcp(&s.peer, DhcpMessageType::Discover, 4), LIMIT)
        .unwrap();
    let requests: Vec<u64> = s
        .server
        .seen_of(DhcpMessageType::Request)
        .iter()
        .map(|m| (m.time - first).as_millis())
        .collect();
    assert_eq!(requests, [0, 1_000, 2_000]);
    assert_near(
        "restart",
        again.time,
        first + Duration::from_secs(4),
        Duration::from_millis(10),
    );
    assert_eq!(s.stack.config_v4(), None);
}

#[test]
fn malformed_server_messages_are_ignored() {
    let ex = Executor::new();
    let s = setup(&ex, DhcpConfig::default(), server_config(60));
    s.link.capture(true);
    s.server.set_garbage(true);
    ex.try_run_until(s.stack.wait_config_up(), LIMIT).unwrap();

    // The real OFFER and ACK were taken, none of the bogus ones (which offer 192.0.2.66).
    assert_eq!(s.stack.config_v4(), Some(expected_config()));
    assert_eq!(s.server.discovers(), 1);
    assert_eq!(s.server.requests(), 1);
    assert_eq!(
        s.server.seen_of(DhcpMessageType::Request)[0].requested_ip,
        Some(ip4(50))
    );
    // Every bogus message reached the stack: 12 before the OFFER, 13 before the ACK.
    let from_server = s
        .link
        .captured()
        .iter()
        .filter(|f| f.direction == Direction::BToA)
        .count();
    assert_eq!(from_server, 12 + 1 + 13 + 1);

    // The client keeps working: a renewal after T1 is ACKed with the same lease.
    s.server.set_garbage(false);
    let renew = ex
        .try_run_until(wait_dhcp(&s.peer, DhcpMessageType::Request, 1), LIMIT)
        .unwrap();
    assert_eq!(renew.client_ip, ip4(50));
    ex.run_for(Duration::from_secs(1));
    assert_eq!(s.stack.config_v4(), Some(expected_config()));
}
