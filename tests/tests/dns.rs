//! DNS queries against a scripted DNS server: A, AAAA and CNAME answers, NXDOMAIN, timeouts,
//! IP literals, concurrency beyond the query slots, cancellation, the `embedded-nal-async`
//! client, name validation, and the server list following the configuration.

use core::net::IpAddr;

use embassy_time::{Duration, Instant, with_timeout};
use embedded_nal_async::{AddrType, Dns};
use ferronet::dns::{DnsQueryType, DnsSocket, Error};
use ferronet::{
    Config, ConfigV4, ConfigV6, EthernetAddress, IpAddress, Ipv4Cidr, Stack, StaticConfigV4,
};
use ferronet_integration::peers::{DnsAnswer, DnsServer, Peer, parse_dns_query};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{LinkConfig, MAC_B, pair_ethernet};
use futures::FutureExt;
use futures::future::join_all;

/// Generous virtual time limit: anything that needs longer has hung.
const LIMIT: Duration = Duration::from_secs(120);

/// The stack: 192.0.2.2/24, gateway 192.0.2.1, DNS server `dns`.
fn config_with_dns(dns: &[ferronet::Ipv4Address]) -> StaticConfigV4 {
    StaticConfigV4 {
        address: Ipv4Cidr::new(ip4(2), 24),
        gateway: Some(ip4(1)),
        dns_servers: heapless::Vec::from_slice(dns).unwrap(),
    }
}

struct Setup {
    stack: Stack<'static>,
    peer: Peer,
    /// 192.0.2.53, the configured server.
    dns: DnsServer,
    /// 192.0.2.54, a second server (not configured at first).
    other: DnsServer,
}

fn setup(ex: &Executor<'_>) -> Setup {
    let (dev_stack, dev_peer, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (stack, mut runner) = stack_on(
        dev_stack,
        Config::ipv4_static(config_with_dns(&[ip4(53)])),
        0xd115,
    );
    ex.spawn(async move {
        runner.run().await;
    });
    let dns = DnsServer::new(ip4(53));
    dns.add("host.example", DnsAnswer::A(ip4(80)))
        .add("host.example", DnsAnswer::Aaaa(ip6(0x80)))
        .add("www.example", DnsAnswer::Cname("web.example".into()))
        .add("web.example", DnsAnswer::Cname("host.example".into()))
        .add("v6only.example", DnsAnswer::Aaaa(ip6(0x66)))
        .add("moved.example", DnsAnswer::A(ip4(80)));
    for i in 0..8u8 {
        dns.add(&format!("h{i}.example"), DnsAnswer::A(ip4(100 + i)));
    }
    let other = DnsServer::new(ip4(54));
    other.add("moved.example", DnsAnswer::A(ip4(81)));
    let peer = Peer::new(EthernetAddress(MAC_B));
    peer.add_ipv4(ip4(1)).with_dns(&dns).with_dns(&other);
    peer.spawn(ex, dev_peer);
    Setup {
        stack,
        peer,
        dns,
        other,
    }
}

fn v4(host: u8) -> IpAddress {
    IpAddress::Ipv4(ip4(host))
}

fn v6(host: u16) -> IpAddress {
    IpAddress::Ipv6(ip6(host))
}

#[test]
fn a_and_aaaa_answers() {
    let ex = Executor::new();
    let s = setup(&ex);
    let stack = s.stack;
    let (a, aaaa) = ex
        .try_run_until(
            async {
                let a = stack.dns_query("host.example", DnsQueryType::A).await;
                let aaaa = stack.dns_query("host.example", DnsQueryType::Aaaa).await;
                (a, aaaa)
            },
            LIMIT,
        )
        .unwrap();
    assert_eq!(a.unwrap().as_slice(), [v4(80)]);
    assert_eq!(aaaa.unwrap().as_slice(), [v6(0x80)]);

    let q = s.dns.queries();
    assert_eq!(q.len(), 2);
    assert_eq!(
        (q[0].name.as_str(), q[0].qtype),
        ("host.example", DnsQueryType::A)
    );
    assert_eq!(
        (q[1].name.as_str(), q[1].qtype),
        ("host.example", DnsQueryType::Aaaa)
    );
    for q in &q {
        assert_eq!((q.src, q.dst, q.dst_port), (ip4(2), ip4(53), 53));
        assert!(
            q.src_port >= 1024,
            "ephemeral source port, got {}",
            q.src_port
        );
        assert!(q.flags.contains(smoltcp::wire::DnsFlags::RECURSION_DESIRED));
    }
    assert_ne!(q[0].txid, q[1].txid);
    // A trailing dot names the same host.
    let dotted = ex
        .try_run_until(stack.dns_query("host.example.", DnsQueryType::A), LIMIT)
        .unwrap();
    assert_eq!(dotted.unwrap().as_slice(), [v4(80)]);
    assert_eq!(s.dns.queries()[2].name, "host.example");
    assert!(s.other.queries().is_empty());
}

#[test]
fn cname_chain_is_followed() {
    let ex = Executor::new();
    let s = setup(&ex);
    let r = ex
        .try_run_until(s.stack.dns_query("www.example", DnsQueryType::A), LIMIT)
        .unwrap();
    assert_eq!(r.unwrap().as_slice(), [v4(80)]);
    let r = ex
        .try_run_until(s.stack.dns_query("www.example", DnsQueryType::Aaaa), LIMIT)
        .unwrap();
    assert_eq!(r.unwrap().as_slice(), [v6(0x80)]);
    // One query each: the server's answer carried the whole chain.
    assert_eq!(s.dns.queries().len(), 2);
}

#[test]
fn nxdomain_fails_at_once() {
    let ex = Executor::new();
    let s = setup(&ex);
    let r = ex
        .try_run_until(s.stack.dns_query("nowhere.example", DnsQueryType::A), LIMIT)
        .unwrap();
    assert_eq!(r, Err(Error::Failed));
    assert!(
        Instant::now() < Instant::from_millis(10),
        "no retry after NXDOMAIN"
    );
    assert_eq!(s.dns.queries().len(), 1);
    // A name that exists without records of the type asked fails too (empty answer).
    let r = ex
        .try_run_until(s.stack.dns_query("v6only.example", DnsQueryType::A), LIMIT)
        .unwrap();
    assert_eq!(r, Err(Error::Failed));
}

#[test]
fn silent_server_fails_after_the_timeout() {
    let ex = Executor::new();
    let s = setup(&ex);
    s.dns.set_silent(true);
    let r = ex
        .try_run_until(s.stack.dns_query("host.example", DnsQueryType::A), LIMIT)
        .unwrap();
    assert_eq!(r, Err(Error::Failed));
    let done = Instant::now();
    // smoltcp gives a server 10 s, retransmitting after 1, 2 and 4 s, and notices the timeout
    // at the next retransmission time (8 s later): the query fails at 15 s.
    let q = s.dns.queries();
    let times: Vec<u64> = q.iter().map(|q| q.time.as_millis()).collect();
    assert_eq!(times, [0, 1_000, 3_000, 7_000]);
    assert!(
        q.iter()
            .all(|x| x.txid == q[0].txid && x.src_port == q[0].src_port)
    );
    assert_eq!(done.as_millis(), 15_000);
}

#[test]
fn ip_literals_answer_at_once_without_a_packet() {
    let ex = Executor::new();
    let s = setup(&ex);
    let r = s
        .stack
        .dns_query("192.0.2.99", DnsQueryType::A)
        .now_or_never()
        .expect("ready on first poll");
    assert_eq!(r.unwrap().as_slice(), [v4(99)]);
    let r = s
        .stack
        .dns_query("2001:db8::99", DnsQueryType::Aaaa)
        .now_or_never()
        .expect("ready on first poll");
    assert_eq!(r.unwrap().as_slice(), [v6(0x99)]);
    let nal = DnsSocket::new(s.stack);
    let r = nal
        .get_host_by_name("192.0.2.98", AddrType::Either)
        .now_or_never()
        .expect("ready on first poll");
    assert_eq!(r, Ok(IpAddr::from(ip4(98))));
    ex.run_for(Duration::from_secs(1));
    assert_eq!(s.peer.received_count(), 0, "nothing on the wire");
}

#[test]
fn more_concurrent_queries_than_slots_all_succeed() {
    assert_eq!(ferronet::dns::MAX_QUERIES, 4);
    let ex = Executor::new();
    let s = setup(&ex);
    s.dns.set_delay(Duration::from_millis(100));
    let stack = s.stack;
    let names: Vec<String> = (0..8).map(|i| format!("h{i}.example")).collect();
    let results = ex
        .try_run_until(
            join_all(names.iter().map(|n| stack.dns_query(n, DnsQueryType::A))),
            LIMIT,
        )
        .unwrap();
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap().as_slice(), [v4(100 + i as u8)], "query {i}");
    }
    // Four at a time: the second four start when the first answers free their slots.
    assert_eq!(s.dns.queries().len(), 8);
    assert_eq!(s.dns.max_outstanding(), 4);
    let done = Instant::now().as_millis();
    assert!((200..210).contains(&done), "done at {done} ms");
}

#[test]
fn cancelled_queries_free_their_slots() {
    let ex = Executor::new();
    let s = setup(&ex);
    s.dns.set_silent(true);
    let stack = s.stack;
    // Six queries: four take the slots, two wait for one; all are dropped after 1 ms.
    let names: Vec<String> = (0..6).map(|i| format!("slow{i}.example")).collect();
    let results = ex
        .try_run_until(
            join_all(names.iter().map(|n| {
                with_timeout(
                    Duration::from_millis(1),
                    stack.dns_query(n, DnsQueryType::A),
                )
            })),
            LIMIT,
        )
        .unwrap();
    assert!(results.iter().all(|r| r.is_err()), "all timed out");
    assert_eq!(s.dns.queries().len(), 4, "only four were started");

    // Cancelled queries are not retransmitted.
    ex.run_for(Duration::from_secs(5));
    assert_eq!(s.dns.queries().len(), 4);

    // All four slots are free: four new queries run at once.
    s.dns.set_silent(false);
    s.dns.set_delay(Duration::from_millis(100));
    let start = Instant::now();
    let results = ex
        .try_run_until(
            join_all((0..4).map(|i| async move {
                let name = format!("h{i}.example");
                stack.dns_query(&name, DnsQueryType::A).await
            })),
            LIMIT,
        )
        .unwrap();
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap().as_slice(), [v4(100 + i as u8)]);
    }
    let took = (Instant::now() - start).as_millis();
    assert!((100..110).contains(&took), "took {took} ms");
    let fresh: Vec<_> = s
        .dns
        .queries()
        .into_iter()
        .filter(|q| q.time >= start)
        .collect();
    assert_eq!(fresh.len(), 4);
    assert!(fresh.iter().all(|q| q.time == start));
}

#[test]
fn embedded_nal_async_client() {
    let ex = Executor::new();
    let s = setup(&ex);
    let nal = DnsSocket::new(s.stack);
    let r = ex
        .try_run_until(
            async {
                let v4only = nal.get_host_by_name("host.example", AddrType::IPv4).await;
                let v6only = nal.get_host_by_name("host.example", AddrType::IPv6).await;
                let either = nal.get_host_by_name("host.example", AddrType::Either).await;
                let fallback = nal
                    .get_host_by_name("v6only.example", AddrType::Either)
                    .await;
                let missing = nal
                    .get_host_by_name("nowhere.example", AddrType::Either)
                    .await;
                let mut name = [0u8; 64];
                let reverse = nal
                    .get_host_by_address(IpAddr::from(ip4(80)), &mut name)
                    .await;
                (v4only, v6only, either, fallback, missing, reverse)
            },
            LIMIT,
        )
        .unwrap();
    assert_eq!(r.0, Ok(IpAddr::from(ip4(80))));
    assert_eq!(r.1, Ok(IpAddr::from(ip6(0x80))));
    // Without IPv6 configured, Either asks for A first ...
    assert_eq!(r.2, Ok(IpAddr::from(ip4(80))));
    // ... and falls back to AAAA.
    assert_eq!(r.3, Ok(IpAddr::from(ip6(0x66))));
    assert_eq!(r.4, Err(Error::Failed));
    assert_eq!(r.5, Err(Error::Failed));
    let order: Vec<_> = s
        .dns
        .queries()
        .iter()
        .map(|q| (q.name.clone(), q.qtype))
        .collect();
    assert_eq!(
        order,
        [
            ("host.example".to_string(), DnsQueryType::A),
            ("host.example".to_string(), DnsQueryType::Aaaa),
            ("host.example".to_string(), DnsQueryType::A),
            ("v6only.example".to_string(), DnsQueryType::A),
            ("v6only.example".to_string(), DnsQueryType::Aaaa),
            ("nowhere.example".to_string(), DnsQueryType::A),
            ("nowhere.example".to_string(), DnsQueryType::Aaaa),
        ]
    );

    // With IPv6 configured, Either asks for AAAA first.
    s.stack.set_config_v6(ConfigV6::Static(v6_config(2)));
    let r = ex
        .try_run_until(
            nal.get_host_by_name("host.example", AddrType::Either),
            LIMIT,
        )
        .unwrap();
    assert_eq!(r, Ok(IpAddr::from(ip6(0x80))));
    assert_eq!(s.dns.queries().last().unwrap().qtype, DnsQueryType::Aaaa);
}

#[test]
fn invalid_names_are_rejected_without_a_packet() {
    let ex = Executor::new();
    let s = setup(&ex);
    let stack = s.stack;
    let label63 = "a".repeat(63);
    let label64 = "b".repeat(64);
    // 253 characters: 255 bytes in wire format, the most DNS allows.
    let longest = format!("{label63}.{label63}.{label63}.{}", "c".repeat(61));
    assert_eq!(longest.len(), 253);
    let too_long = format!("{longest}d");
    let way_too_long = vec!["x".repeat(60); 5].join(".");
    let cases: [(&str, Error); 6] = [
        ("", Error::InvalidName),
        (".", Error::InvalidName),
        ("a..b", Error::InvalidName),
        (&label64, Error::InvalidName),
        (&too_long, Error::NameTooLong),
        (&way_too_long, Error::NameTooLong),
    ];
    for (name, expected) in cases {
        for qtype in [DnsQueryType::A, DnsQueryType::Aaaa] {
            let r = ex
                .try_run_until(stack.dns_query(name, qtype), LIMIT)
                .unwrap();
            assert_eq!(r, Err(expected), "{name:?} ({} bytes)", name.len());
        }
    }
    ex.run_for(Duration::from_secs(1));
    assert_eq!(s.peer.received_count(), 0, "nothing on the wire");

    // The longest valid name is asked (and is unknown).
    let r = ex
        .try_run_until(stack.dns_query(&longest, DnsQueryType::A), LIMIT)
        .unwrap();
    assert_eq!(r, Err(Error::Failed));
    let q = s.dns.queries();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].name, longest);
}

#[test]
fn server_list_follows_the_configuration() {
    let ex = Executor::new();
    let s = setup(&ex);
    let stack = s.stack;
    let r = ex
        .try_run_until(stack.dns_query("moved.example", DnsQueryType::A), LIMIT)
        .unwrap();
    assert_eq!(r.unwrap().as_slice(), [v4(80)]);
    assert_eq!((s.dns.queries().len(), s.other.queries().len()), (1, 0));

    // Another server: queries go there, never to the old one.
    stack.set_config_v4(ConfigV4::Static(config_with_dns(&[ip4(54)])));
    for _ in 0..2 {
        let r = ex
            .try_run_until(stack.dns_query("moved.example", DnsQueryType::A), LIMIT)
            .unwrap();
        assert_eq!(r.unwrap().as_slice(), [v4(81)]);
    }
    assert_eq!((s.dns.queries().len(), s.other.queries().len()), (1, 2));
    assert!(s.other.queries().iter().all(|q| q.dst == ip4(54)));

    // No server: the query fails at once, and nothing is sent anywhere.
    stack.set_config_v4(ConfigV4::Static(config_with_dns(&[])));
    let before = s.peer.received_count();
    let start = Instant::now();
    let r = ex
        .try_run_until(stack.dns_query("moved.example", DnsQueryType::A), LIMIT)
        .unwrap();
    assert_eq!(r, Err(Error::Failed));
    assert!(Instant::now() - start < Duration::from_millis(10));
    ex.run_for(Duration::from_secs(20));
    let after: Vec<_> = s.peer.received()[before..]
        .iter()
        .filter_map(|r| parse_dns_query(r.time, &r.frame))
        .collect();
    assert!(after.is_empty(), "{after:?}");
    assert_eq!((s.dns.queries().len(), s.other.queries().len()), (1, 2));

    // Back to the first server.
    stack.set_config_v4(ConfigV4::Static(config_with_dns(&[ip4(53)])));
    let r = ex
        .try_run_until(stack.dns_query("moved.example", DnsQueryType::A), LIMIT)
        .unwrap();
    assert_eq!(r.unwrap().as_slice(), [v4(80)]);
    assert_eq!((s.dns.queries().len(), s.other.queries().len()), (2, 2));
}

#[test]
fn local_names_are_resolved_by_multicast_dns() {
    // With the `mdns` feature, `.local` names are asked of 224.0.0.251:5353 (RFC 6762), never
    // of the configured unicast server.
    let ex = Executor::new();
    let s = setup(&ex);
    let responder = DnsServer::mdns(ip4(77));
    responder.add("printer.local", DnsAnswer::A(ip4(77)));
    s.peer.with_dns(&responder);
    let r = ex
        .try_run_until(s.stack.dns_query("printer.local", DnsQueryType::A), LIMIT)
        .unwrap();
    assert_eq!(r.unwrap().as_slice(), [v4(77)]);
    let q = responder.queries();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(
        (q[0].dst, q[0].dst_port),
        (ferronet::Ipv4Address::new(224, 0, 0, 251), 5353)
    );
    assert_eq!(q[0].name, "printer.local");
    assert!(s.dns.queries().is_empty());

    // A name nobody answers for fails after the timeout, without a unicast query.
    let r = ex
        .try_run_until(s.stack.dns_query("nobody.local", DnsQueryType::A), LIMIT)
        .unwrap();
    assert!(r.is_err(), "{r:?}");
    assert!(s.dns.queries().is_empty());
}
