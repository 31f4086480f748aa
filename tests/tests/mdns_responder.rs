//! The mDNS responder (feature `mdns-responder`): probing and announcing on the virtual clock,
//! answers to hand-built queries (multicast, QU, legacy unicast, known answers, IPv6),
//! DNS-SD services, conflicts, goodbyes, and a second ferronet stack resolving the name
//! through its mDNS query client (`Stack::dns_query`) while it runs a responder itself.

use embassy_time::{Duration, Instant};
use ferronet::dns::DnsQueryType;
use ferronet::mdns_responder::{Conflict, MdnsResponder, Service, ServiceId, State};
use ferronet::{Config, EthernetAddress, IpAddress, Ipv4Address, Ipv6Address, Stack};
use ferronet_integration::peers::{
    Peer, UdpDatagram, dns_wire_name, multicast_mac_v4, multicast_mac_v6, parse_udp, udp_v4_frame,
    udp_v6_frame,
};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{LinkConfig, MAC_A, MAC_B, pair_ethernet};

/// Generous virtual time limit: anything that needs longer has hung.
const LIMIT: Duration = Duration::from_secs(30);

const STACK_MAC: EthernetAddress = EthernetAddress(MAC_A);
const PEER_MAC: EthernetAddress = EthernetAddress(MAC_B);
const GROUP_V4: Ipv4Address = Ipv4Address::new(224, 0, 0, 251);
const GROUP_V6: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);

const A: u16 = 1;
const PTR: u16 = 12;
const TXT: u16 = 16;
const AAAA: u16 = 28;
const SRV: u16 = 33;
const ANY: u16 = 255;
const QU: u16 = 0x8000;
const FLUSH: u16 = 0x8000;

// ---------------------------------------------------------------------------------------------
// A small DNS message reader and writer of the test's own (names with compression).

#[derive(Debug, Clone, PartialEq)]
struct Rr {
    name: String,
    type_: u16,
    class: u16,
    ttl: u32,
    /// Raw record data.
    data: Vec<u8>,
    /// PTR target or SRV target, decoded.
    target: Option<String>,
}

#[derive(Debug, Clone)]
struct Msg {
    id: u16,
    flags: u16,
    questions: Vec<(String, u16, u16)>,
    answers: Vec<Rr>,
    authority: Vec<Rr>,
    additional: Vec<Rr>,
}

impl Msg {
    fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// The PTR (or SRV) targets of the answers.
    fn targets(&self) -> Vec<&str> {
        self.answers
            .iter()
            .map(|r| r.target.as_deref().unwrap())
            .collect()
    }

    fn all_records(&self) -> impl Iterator<Item = &Rr> {
        self.answers
            .iter()
            .chain(&self.authority)
            .chain(&self.additional)
    }
}

fn read_name(msg: &[u8], mut pos: usize) -> (String, usize) {
    let mut labels = Vec::new();
    let mut end = None;
    for _ in 0..64 {
        let len = msg[pos];
        if len == 0 {
            pos += 1;
            break;
        }
        if len & 0xC0 == 0xC0 {
            let ptr = (usize::from(len & 0x3F) << 8) | usize::from(msg[pos + 1]);
            end.get_or_insert(pos + 2);
            assert!(ptr < pos, "pointer forward");
            pos = ptr;
            continue;
        }
        let l = usize::from(len);
        labels.push(String::from_utf8(msg[pos + 1..pos + 1 + l].to_vec()).unwrap());
        pos += 1 + l;
    }
    (labels.join("."), end.unwrap_or(pos))
}

fn u16_at(m: &[u8], p: usize) -> u16 {
    u16::from_be_bytes([m[p], m[p + 1]])
}

fn parse_msg(m: &[u8]) -> Msg {
    let counts: Vec<usize> = (0..4).map(|i| usize::from(u16_at(m, 4 + 2 * i))).collect();
    let mut pos = 12;
    let mut questions = Vec::new();
    for _ in 0..counts[0] {
        let (name, p) = read_name(m, pos);
        questions.push((name, u16_at(m, p), u16_at(m, p + 2)));
        pos = p + 4;
    }
    let mut sections = [Vec::new(), Vec::new(), Vec::new()];
    for (s, &count) in sections.iter_mut().zip(&counts[1..]) {
        for _ in 0..count {
            let (name, p) = read_name(m, pos);
            let type_ = u16_at(m, p);
            let len = usize::from(u16_at(m, p + 8));
            let start = p + 10;
            let target = match type_ {
                PTR => Some(read_name(m, start).0),
                SRV => Some(read_name(m, start + 6).0),
                _ => None,
            };
            s.push(Rr {
                name,
                type_,
                class: u16_at(m, p + 2),
                ttl: u32::from_be_bytes(m[p + 4..p + 8].try_into().unwrap()),
                data: m[start..start + len].to_vec(),
                target,
            });
            pos = start + len;
        }
    }
    assert_eq!(pos, m.len(), "trailing bytes in {m:02x?}");
    let [answers, authority, additional] = sections;
    Msg {
        id: u16_at(m, 0),
        flags: u16_at(m, 2),
        questions,
        answers,
        authority,
        additional,
    }
}

/// A record to put in a hand-built message: name, type, class, TTL, data.
type RrOut<'a> = (&'a str, u16, u16, u32, Vec<u8>);

fn build_msg(
    id: u16,
    flags: u16,
    questions: &[(&str, u16, u16)],
    answers: &[RrOut<'_>],
    authority: &[RrOut<'_>],
) -> Vec<u8> {
    let mut m = Vec::new();
    for v in [
        id,
        flags,
        questions.len() as u16,
        answers.len() as u16,
        authority.len() as u16,
        0,
    ] {
        m.extend_from_slice(&v.to_be_bytes());
    }
    for (name, t, c) in questions {
        m.extend_from_slice(&dns_wire_name(name));
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&c.to_be_bytes());
    }
    for (name, t, c, ttl, data) in answers.iter().chain(authority) {
        m.extend_from_slice(&dns_wire_name(name));
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&c.to_be_bytes());
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&(data.len() as u16).to_be_bytes());
        m.extend_from_slice(data);
    }
    m
}

fn query(id: u16, questions: &[(&str, u16, u16)], known: &[RrOut<'_>]) -> Vec<u8> {
    build_msg(id, 0, questions, known, &[])
}

// ---------------------------------------------------------------------------------------------

/// An mDNS datagram the stack sent, with when.
#[derive(Debug, Clone)]
struct Sent {
    time: Instant,
    udp: UdpDatagram,
    msg: Msg,
}

fn mdns_sent(peer: &Peer, since: Instant) -> Vec<Sent> {
    peer.received_since(since)
        .into_iter()
        .filter_map(|r| {
            let udp = parse_udp(&r.frame)?;
            (udp.src_port == 5353).then(|| Sent {
                time: r.time,
                msg: parse_msg(&udp.payload),
                udp,
            })
        })
        .collect()
}

struct Setup {
    stack: Stack<'static>,
    peer: Peer,
    mdns: MdnsResponder<'static>,
}

/// A dual-stack stack (192.0.2.2, 2001:db8::2) and a sniffing peer (192.0.2.1, 2001:db8::1).
fn setup(ex: &Executor<'_>) -> Setup {
    let (dev_stack, dev_peer, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (stack, mut runner) = stack_on(dev_stack, dual_config(2), 0x6d64_6e73);
    ex.spawn(async move {
        runner.run().await;
    });
    let peer = Peer::new(PEER_MAC);
    peer.add_ipv4(ip4(1)).add_ipv6(ip6(1));
    peer.spawn(ex, dev_peer);
    ex.run_for(Duration::from_millis(100));
    let mdns = MdnsResponder::new(stack);
    Setup { stack, peer, mdns }
}

/// Start as `dev1` and run until the names are claimed; returns when it started.
fn start_and_claim(ex: &Executor<'_>, s: &Setup) -> Instant {
    let t0 = ex.now();
    s.mdns.start("dev1").unwrap();
    let r = ex.try_run_until(s.mdns.wait_claimed(), LIMIT).unwrap();
    assert_eq!(r, Ok(()));
    // Both announcements.
    ex.run_for(Duration::from_secs(2));
    assert_eq!(s.mdns.state(), State::Running);
    t0
}

fn send_v4(s: &Setup, src_port: u16, dst: Ipv4Address, payload: &[u8]) {
    let dst_mac = if dst.is_multicast() {
        multicast_mac_v4(dst)
    } else {
        STACK_MAC
    };
    s.peer.send(udp_v4_frame(
        PEER_MAC,
        dst_mac,
        (ip4(1), src_port),
        (dst, 5353),
        payload,
    ));
}

/// Send `payload` and return the mDNS datagrams the stack sent within the next 1.2 s (so
/// that the next exchange is past the one-second multicast rate limit, even for answers held
/// back 20-120 ms).
fn exchange_v4(
    ex: &Executor<'_>,
    s: &Setup,
    src_port: u16,
    dst: Ipv4Address,
    payload: &[u8],
) -> Vec<Sent> {
    let t = ex.now();
    send_v4(s, src_port, dst, payload);
    ex.run_for(Duration::from_millis(1200));
    mdns_sent(&s.peer, t)
}

fn a_rr(name: &str, ttl: u32, class: u16, addr: Ipv4Address) -> Rr {
    Rr {
        name: name.into(),
        type_: A,
        class,
        ttl,
        data: addr.octets().to_vec(),
        target: None,
    }
}

#[test]
fn probes_three_times_then_announces_twice() {
    let ex = Executor::new();
    let s = setup(&ex);
    assert_eq!(s.mdns.state(), State::Stopped);
    let t0 = start_and_claim(&ex, &s);
    assert!(s.stack.has_multicast_group(GROUP_V4));
    assert!(s.stack.has_multicast_group(GROUP_V6));

    let v4: Vec<Sent> = mdns_sent(&s.peer, t0)
        .into_iter()
        .filter(|m| m.udp.dst == IpAddress::Ipv4(GROUP_V4))
        .collect();
    assert_eq!(v4.len(), 5, "{v4:#?}");
    for m in &v4 {
        assert_eq!(m.udp.dst_port, 5353);
        assert_eq!(m.udp.hop_limit, 255);
        assert_eq!(m.udp.dst_mac, multicast_mac_v4(GROUP_V4));
    }
    let (probes, announcements) = v4.split_at(3);
    for p in probes {
        assert!(!p.msg.is_response());
        assert_eq!(p.msg.questions, [("dev1.local".to_string(), ANY, 1 | QU)]);
        // The proposed records in the authority section, without cache-flush.
        assert!(p.msg.answers.is_empty());
        assert!(
            p.msg
                .authority
                .contains(&a_rr("dev1.local", 120, 1, ip4(2)))
        );
        assert!(
            p.msg
                .authority
                .iter()
                .any(|r| r.type_ == AAAA && r.data == ip6(2).octets() && r.name == "dev1.local")
        );
    }
    // The first probe within 250 ms of the start, then 250 ms apart.
    assert!(
        probes[0].time - t0 <= Duration::from_millis(251),
        "{:?}",
        probes[0].time - t0
    );
    for w in probes.windows(2) {
        assert_eq!(w[1].time - w[0].time, Duration::from_millis(250));
    }
    // The first announcement 250 ms after the last probe, the second 1 s later.
    assert_eq!(
        announcements[0].time - probes[2].time,
        Duration::from_millis(250)
    );
    assert_eq!(
        announcements[1].time - announcements[0].time,
        Duration::from_secs(1)
    );
    for a in announcements {
        assert!(a.msg.is_response());
        assert_eq!(a.msg.flags, 0x8400);
        assert_eq!(a.msg.id, 0);
        assert!(a.msg.questions.is_empty());
        assert!(
            a.msg
                .answers
                .contains(&a_rr("dev1.local", 120, 1 | FLUSH, ip4(2)))
        );
        assert!(
            a.msg
                .answers
                .iter()
                .any(|r| r.type_ == AAAA && r.class == 1 | FLUSH && r.data == ip6(2).octets())
        );
    }
    // The same over IPv6, to ff02::fb.
    let v6 = mdns_sent(&s.peer, t0)
        .into_iter()
        .filter(|m| m.udp.dst == IpAddress::Ipv6(GROUP_V6))
        .count();
    assert_eq!(v6, 5);
    // Nothing more once running.
    let t = ex.now();
    ex.run_for(Duration::from_secs(10));
    assert!(mdns_sent(&s.peer, t).is_empty());
}

#[test]
fn answers_multicast_unicast_and_legacy_queries() {
    let ex = Executor::new();
    let s = setup(&ex);
    start_and_claim(&ex, &s);

    // A plain query (QM) from port 5353: a multicast answer, ID 0, no question.
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        GROUP_V4,
        &query(7, &[("DEV1.local", A, 1)], &[]),
    );
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0].udp.dst, IpAddress::Ipv4(GROUP_V4));
    assert_eq!(r[0].msg.id, 0);
    assert!(r[0].msg.questions.is_empty());
    assert_eq!(
        r[0].msg.answers,
        [a_rr("dev1.local", 120, 1 | FLUSH, ip4(2))]
    );
    assert!(r[0].msg.additional.is_empty());

    // QU: a unicast answer to the querier's address and port.
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("dev1.local", A, 1 | QU)], &[]),
    );
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(
        (r[0].udp.dst, r[0].udp.dst_port),
        (IpAddress::Ipv4(ip4(1)), 5353)
    );
    assert_eq!(r[0].udp.dst_mac, PEER_MAC);
    assert_eq!(
        r[0].msg.answers,
        [a_rr("dev1.local", 120, 1 | FLUSH, ip4(2))]
    );

    // A query sent to our unicast address: answered by unicast too.
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        ip4(2),
        &query(0, &[("dev1.local", A, 1)], &[]),
    );
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0].udp.dst, IpAddress::Ipv4(ip4(1)));

    // Legacy unicast (source port not 5353): unicast to that port, the ID and question
    // repeated, TTL at most 10, no cache-flush bit.
    let r = exchange_v4(
        &ex,
        &s,
        40000,
        GROUP_V4,
        &query(0x1234, &[("Dev1.Local", A, 1)], &[]),
    );
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(
        (r[0].udp.dst, r[0].udp.dst_port),
        (IpAddress::Ipv4(ip4(1)), 40000)
    );
    assert_eq!(r[0].msg.id, 0x1234);
    assert_eq!(r[0].msg.questions, [("Dev1.Local".to_string(), A, 1)]);
    assert_eq!(r[0].msg.answers, [a_rr("Dev1.Local", 10, 1, ip4(2))]);

    // ANY: both address families.
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("dev1.local", ANY, 1)], &[]),
    );
    assert_eq!(r.len(), 1, "{r:#?}");
    let types: Vec<u16> = r[0].msg.answers.iter().map(|r| r.type_).collect();
    assert!(types.contains(&A) && types.contains(&AAAA), "{types:?}");

    // Known-answer suppression: the querier lists our A with more than half its TTL.
    let known: RrOut<'_> = ("dev1.local", A, 1, 100, ip4(2).octets().to_vec());
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("dev1.local", A, 1)], &[known]),
    );
    assert!(r.is_empty(), "{r:#?}");
    // ... but not with less than half of it, nor with another address.
    let stale: RrOut<'_> = ("dev1.local", A, 1, 59, ip4(2).octets().to_vec());
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("dev1.local", A, 1)], &[stale]),
    );
    assert_eq!(r.len(), 1, "{r:#?}");
    let other: RrOut<'_> = ("dev1.local", A, 1, 120, ip4(9).octets().to_vec());
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("dev1.local", A, 1)], &[other]),
    );
    assert_eq!(r.len(), 1, "{r:#?}");

    // Other names, types we have no record of, and responses: no answer.
    for msg in [
        query(0, &[("other.local", A, 1)], &[]),
        query(0, &[("dev1.local", TXT, 1)], &[]),
        query(0, &[("dev1", A, 1)], &[]),
        build_msg(
            0,
            0x8400,
            &[],
            &[("x.local", A, 1, 120, vec![192, 0, 2, 9])],
            &[],
        ),
    ] {
        let r = exchange_v4(&ex, &s, 5353, GROUP_V4, &msg);
        assert!(r.is_empty(), "{r:#?}");
    }
    // Malformed messages are ignored and the responder keeps answering.
    for bad in [
        &b"\x00\x00"[..],
        &[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f, b'a'],
        &[0xff; 40],
    ] {
        assert!(exchange_v4(&ex, &s, 5353, GROUP_V4, bad).is_empty());
    }

    // AAAA over IPv6, to ff02::fb: a multicast answer there.
    let t = ex.now();
    s.peer.send(udp_v6_frame(
        PEER_MAC,
        multicast_mac_v6(GROUP_V6),
        (ip6(1), 5353),
        (GROUP_V6, 5353),
        &query(0, &[("dev1.local", AAAA, 1)], &[]),
    ));
    ex.run_for(Duration::from_millis(500));
    let r = mdns_sent(&s.peer, t);
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0].udp.dst, IpAddress::Ipv6(GROUP_V6));
    assert_eq!(r[0].udp.hop_limit, 255);
    assert_eq!(r[0].msg.answers.len(), 1);
    assert_eq!(r[0].msg.answers[0].data, ip6(2).octets());
    assert_eq!(r[0].msg.answers[0].class, 1 | FLUSH);
}

#[test]
fn services_are_browsable_and_enumerated() {
    let ex = Executor::new();
    let s = setup(&ex);
    let web = s
        .mdns
        .add_service(&Service {
            instance: "Web page v2",
            service_type: "_http._tcp",
            port: 8080,
            txt: &["path=/", "v=2"],
        })
        .unwrap();
    s.mdns
        .add_service(&Service {
            instance: "Second",
            service_type: "_http._tcp",
            port: 81,
            txt: &[],
        })
        .unwrap();
    s.mdns
        .add_service(&Service {
            instance: "Echo",
            service_type: "_echo._udp",
            port: 7,
            txt: &[],
        })
        .unwrap();
    let t0 = start_and_claim(&ex, &s);
    // Probes ask for every instance name too.
    let first = &mdns_sent(&s.peer, t0)[0].msg;
    let asked: Vec<&str> = first.questions.iter().map(|q| q.0.as_str()).collect();
    assert_eq!(
        asked,
        [
            "dev1.local",
            "Web page v2._http._tcp.local",
            "Second._http._tcp.local",
            "Echo._echo._udp.local"
        ]
    );

    // Browse: PTR for the type, both instances, their SRV and TXT and our address added.
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("_http._tcp.local", PTR, 1)], &[]),
    );
    assert_eq!(r.len(), 1, "{r:#?}");
    let m = &r[0].msg;
    let ptrs: Vec<(&str, u16, u32, &str)> = m
        .answers
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.class,
                r.ttl,
                r.target.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ptrs,
        [
            ("_http._tcp.local", 1, 4500, "Web page v2._http._tcp.local"),
            ("_http._tcp.local", 1, 4500, "Second._http._tcp.local"),
        ]
    );
    let srv = m
        .additional
        .iter()
        .find(|r| r.type_ == SRV && r.name == "Web page v2._http._tcp.local")
        .unwrap();
    assert_eq!((srv.class, srv.ttl), (1 | FLUSH, 120));
    assert_eq!(&srv.data[..6], &[0, 0, 0, 0, 0x1f, 0x90]);
    assert_eq!(srv.target.as_deref(), Some("dev1.local"));
    let txt = m
        .additional
        .iter()
        .find(|r| r.type_ == TXT && r.name == "Web page v2._http._tcp.local")
        .unwrap();
    assert_eq!(txt.data, b"\x06path=/\x03v=2");
    let empty_txt = m
        .additional
        .iter()
        .find(|r| r.type_ == TXT && r.name == "Second._http._tcp.local")
        .unwrap();
    assert_eq!(empty_txt.data, [0]);
    assert!(
        m.additional
            .contains(&a_rr("dev1.local", 120, 1 | FLUSH, ip4(2)))
    );
    assert!(!m.all_records().any(|r| r.name.starts_with("Echo")));

    // Known-answer suppression of one PTR: only the other instance is answered.
    let mut known_target = dns_wire_name("Web page v2._http._tcp.local");
    known_target.truncate(known_target.len());
    let known: RrOut<'_> = ("_http._tcp.local", PTR, 1, 4500, known_target);
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("_http._tcp.local", PTR, 1)], &[known]),
    );
    assert_eq!(r.len(), 1, "{r:#?}");
    let targets = r[0].msg.targets();
    assert_eq!(targets, ["Second._http._tcp.local"]);

    // Resolve: SRV and TXT of one instance, the address as additional record.
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("web PAGE v2._http._tcp.local", ANY, 1)], &[]),
    );
    assert_eq!(r.len(), 1, "{r:#?}");
    let types: Vec<u16> = r[0].msg.answers.iter().map(|r| r.type_).collect();
    assert_eq!(types, [SRV, TXT]);
    assert!(r[0].msg.additional.iter().any(|r| r.type_ == A));

    // The service types (RFC 6763 9), each once.
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("_services._dns-sd._udp.local", PTR, 1)], &[]),
    );
    assert_eq!(r.len(), 1, "{r:#?}");
    let types = r[0].msg.targets();
    assert_eq!(types, ["_http._tcp.local", "_echo._udp.local"]);

    // Removing a service says goodbye for its records (TTL 0) and stops answering for it.
    let t = ex.now();
    assert!(s.mdns.remove_service(web));
    assert!(!s.mdns.remove_service(web));
    ex.run_for(Duration::from_millis(100));
    let bye = mdns_sent(&s.peer, t);
    let v4_bye = bye
        .iter()
        .find(|m| m.udp.dst == IpAddress::Ipv4(GROUP_V4))
        .unwrap();
    let names: Vec<(&str, u16, u32)> = v4_bye
        .msg
        .answers
        .iter()
        .map(|r| (r.name.as_str(), r.type_, r.ttl))
        .collect();
    assert_eq!(
        names,
        [
            ("_http._tcp.local", PTR, 0),
            ("Web page v2._http._tcp.local", SRV, 0),
            ("Web page v2._http._tcp.local", TXT, 0)
        ]
    );
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("Web page v2._http._tcp.local", SRV, 1)], &[]),
    );
    assert!(r.is_empty(), "{r:#?}");
}

#[test]
fn a_conflict_while_probing_is_reported_and_nothing_claimed() {
    let ex = Executor::new();
    let s = setup(&ex);
    let t0 = ex.now();
    s.mdns.start("dev1.local").unwrap();
    // Another host answers the first probe: it has dev1.local at 192.0.2.9.
    let probe = ex
        .try_run_until(
            s.peer.wait_for(|rx| {
                rx.iter()
                    .filter(|r| r.time >= t0)
                    .find_map(|r| parse_udp(&r.frame).filter(|u| u.dst_port == 5353))
            }),
            LIMIT,
        )
        .unwrap();
    assert!(!parse_msg(&probe.payload).is_response());
    assert_eq!(s.mdns.state(), State::Probing);
    let answer = build_msg(
        0,
        0x8400,
        &[],
        &[("dev1.local", A, 1 | FLUSH, 120, ip4(9).octets().to_vec())],
        &[],
    );
    send_v4(&s, 5353, GROUP_V4, &answer);
    let r = ex.try_run_until(s.mdns.wait_claimed(), LIMIT).unwrap();
    assert_eq!(r, Err(Conflict::HostName));
    assert_eq!(s.mdns.state(), State::Conflict(Conflict::HostName));
    // No more probes, no announcement, no answer.
    let before = mdns_sent(&s.peer, t0).len();
    ex.run_for(Duration::from_secs(3));
    send_v4(&s, 5353, GROUP_V4, &query(0, &[("dev1.local", A, 1)], &[]));
    ex.run_for(Duration::from_secs(1));
    let after = mdns_sent(&s.peer, t0);
    assert_eq!(after.len(), before, "{after:#?}");
    assert!(!mdns_sent(&s.peer, t0).iter().any(|m| m.msg.is_response()));

    // The application picks another name.
    s.mdns.start("dev1-2").unwrap();
    assert_eq!(
        ex.try_run_until(s.mdns.wait_claimed(), LIMIT).unwrap(),
        Ok(())
    );
    ex.run_for(Duration::from_secs(2));
    assert_eq!(s.mdns.state(), State::Running);
    let r = exchange_v4(
        &ex,
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("dev1-2.local", A, 1)], &[]),
    );
    assert_eq!(r.len(), 1, "{r:#?}");

    // A response that holds our own data is no conflict.
    s.mdns.start("dev3").unwrap();
    ex.run_for(Duration::from_millis(300));
    let same = build_msg(
        0,
        0x8400,
        &[],
        &[("dev3.local", A, 1 | FLUSH, 120, ip4(2).octets().to_vec())],
        &[],
    );
    send_v4(&s, 5353, GROUP_V4, &same);
    assert_eq!(
        ex.try_run_until(s.mdns.wait_claimed(), LIMIT).unwrap(),
        Ok(())
    );
}

/// Register "Printer._ipp._tcp.local" on port 631.
fn add_printer(s: &Setup) -> ServiceId {
    s.mdns
        .add_service(&Service {
            instance: "Printer",
            service_type: "_ipp._tcp",
            port: 631,
            txt: &[],
        })
        .unwrap()
}

/// SRV record data: priority and weight 0, `port`, `target`.
fn srv_data(port: u16, target: &str) -> Vec<u8> {
    let mut d = vec![0, 0, 0, 0];
    d.extend_from_slice(&port.to_be_bytes());
    d.extend_from_slice(&dns_wire_name(target));
    d
}

#[test]
fn a_service_name_conflict_names_the_service() {
    let ex = Executor::new();
    let s = setup(&ex);
    let id = add_printer(&s);
    s.mdns.start("dev1").unwrap();
    ex.run_for(Duration::from_millis(260));
    assert_eq!(s.mdns.state(), State::Probing);
    let srv = srv_data(631, "otherhost.local");
    let answer = build_msg(
        0,
        0x8400,
        &[],
        &[("Printer._ipp._tcp.local", SRV, 1 | FLUSH, 120, srv)],
        &[],
    );
    send_v4(&s, 5353, GROUP_V4, &answer);
    assert_eq!(
        ex.try_run_until(s.mdns.wait_claimed(), LIMIT).unwrap(),
        Err(Conflict::Service(id))
    );
}

#[test]
fn a_simultaneous_probe_with_higher_data_defers_ours() {
    let ex = Executor::new();
    let s = setup(&ex);
    let t0 = ex.now();
    s.mdns.start("dev1").unwrap();
    ex.run_for(Duration::from_millis(260));
    assert_eq!(s.mdns.state(), State::Probing);
    // Another host probes for dev1.local with 192.0.2.200 (> 192.0.2.2): it wins.
    let probe = build_msg(
        0,
        0,
        &[("dev1.local", ANY, 1 | QU)],
        &[],
        &[("dev1.local", A, 1, 120, ip4(200).octets().to_vec())],
    );
    let t_probe = ex.now();
    send_v4(&s, 5353, GROUP_V4, &probe);
    ex.run_for(Duration::from_millis(10));
    let sent_before = mdns_sent(&s.peer, t0).len();
    // Our probing starts over after 1 s.
    ex.run_for(Duration::from_millis(980));
    assert_eq!(mdns_sent(&s.peer, t0).len(), sent_before);
    assert_eq!(
        ex.try_run_until(s.mdns.wait_claimed(), LIMIT).unwrap(),
        Ok(())
    );
    let probes: Vec<Sent> = mdns_sent(&s.peer, t_probe)
        .into_iter()
        .filter(|m| {
            m.time > t_probe && !m.msg.is_response() && m.udp.dst == IpAddress::Ipv4(GROUP_V4)
        })
        .collect();
    assert_eq!(probes.len(), 3, "{probes:#?}");
    // 1 s after the other probe arrived (the link takes a little time).
    let wait = probes[0].time - t_probe;
    assert!(
        wait >= Duration::from_secs(1) && wait <= Duration::from_millis(1010),
        "{wait:?}"
    );

    // A probe with lower data loses to ours: nothing changes.
    let ex = Executor::new();
    let s = setup(&ex);
    s.mdns.start("dev1").unwrap();
    ex.run_for(Duration::from_millis(260));
    let t = ex.now();
    let low = build_msg(
        0,
        0,
        &[("dev1.local", ANY, 1 | QU)],
        &[],
        &[("dev1.local", A, 1, 120, ip4(1).octets().to_vec())],
    );
    send_v4(&s, 5353, GROUP_V4, &low);
    ex.run_for(Duration::from_millis(600));
    assert_eq!(s.mdns.state(), State::Announcing);
    assert!(ex.now() - t < Duration::from_secs(1));
}

#[test]
fn stop_says_goodbye_and_start_claims_again() {
    let ex = Executor::new();
    let s = setup(&ex);
    start_and_claim(&ex, &s);
    let t = ex.now();
    s.mdns.stop();
    assert_eq!(s.mdns.state(), State::Stopped);
    ex.run_for(Duration::from_millis(100));
    let bye = mdns_sent(&s.peer, t);
    assert_eq!(bye.len(), 2, "{bye:#?}");
    for b in &bye {
        assert!(b.msg.is_response());
        assert!(
            b.msg
                .answers
                .iter()
                .all(|r| r.ttl == 0 && r.name == "dev1.local")
        );
        assert_eq!(b.msg.answers.len(), 2);
    }
    assert!(!s.stack.has_multicast_group(GROUP_V4));
    // Stopped: no answers.
    assert!(
        exchange_v4(
            &ex,
            &s,
            5353,
            ip4(2),
            &query(0, &[("dev1.local", A, 1)], &[])
        )
        .is_empty()
    );
    // Started again: probes and claims again.
    start_and_claim(&ex, &s);
    assert_eq!(
        exchange_v4(
            &ex,
            &s,
            5353,
            GROUP_V4,
            &query(0, &[("dev1.local", A, 1)], &[])
        )
        .len(),
        1
    );
}

#[test]
fn link_down_waits_and_link_up_probes_again() {
    let ex = Executor::new();
    let (dev_stack, dev_peer, link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (stack, mut runner) = stack_on(dev_stack, Config::ipv4_static(v4_config(2)), 0x77);
    ex.spawn(async move {
        runner.run().await;
    });
    let peer = Peer::new(PEER_MAC);
    peer.add_ipv4(ip4(1));
    peer.spawn(&ex, dev_peer);
    let mdns = MdnsResponder::new(stack);
    link.set_up(false);
    ex.run_for(Duration::from_millis(100));
    mdns.start("dev1").unwrap();
    ex.run_for(Duration::from_secs(2));
    assert_eq!(mdns.state(), State::Waiting);
    link.set_up(true);
    let t = ex.now();
    assert_eq!(
        ex.try_run_until(mdns.wait_claimed(), LIMIT).unwrap(),
        Ok(())
    );
    let probes = mdns_sent(&peer, t)
        .iter()
        .filter(|m| !m.msg.is_response())
        .count();
    assert_eq!(probes, 3);
}

#[test]
fn a_second_stack_resolves_the_name_with_dns_query() {
    // Both stacks run a responder and resolve the other's name through smoltcp's mDNS query
    // client (an ephemeral source port, so a legacy unicast answer): port 5353 is shared.
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let ma = MdnsResponder::new(a);
    let mb = MdnsResponder::new(b);
    ma.start("alpha").unwrap();
    mb.start("beta").unwrap();
    assert_eq!(ex.try_run_until(ma.wait_claimed(), LIMIT).unwrap(), Ok(()));
    assert_eq!(ex.try_run_until(mb.wait_claimed(), LIMIT).unwrap(), Ok(()));

    let r = ex
        .try_run_until(b.dns_query("alpha.local", DnsQueryType::A), LIMIT)
        .unwrap();
    assert_eq!(r.unwrap().as_slice(), [IpAddress::Ipv4(ip4(2))]);
    let r = ex
        .try_run_until(b.dns_query("alpha.local", DnsQueryType::Aaaa), LIMIT)
        .unwrap();
    assert_eq!(r.unwrap().as_slice(), [IpAddress::Ipv6(ip6(2))]);
    let r = ex
        .try_run_until(a.dns_query("BETA.local", DnsQueryType::A), LIMIT)
        .unwrap();
    assert_eq!(r.unwrap().as_slice(), [IpAddress::Ipv4(ip4(3))]);
    // A name nobody has fails (after the query's timeout).
    let r = ex
        .try_run_until(a.dns_query("gamma.local", DnsQueryType::A), LIMIT)
        .unwrap();
    assert!(r.is_err(), "{r:?}");
    assert_eq!((ma.state(), mb.state()), (State::Running, State::Running));
}

#[test]
fn invalid_names_and_full_tables_are_errors() {
    use ferronet::mdns_responder::Error;
    let ex = Executor::new();
    let s = setup(&ex);
    for bad in ["", "a.b", "a.b.local", &"x".repeat(64)] {
        assert_eq!(s.mdns.start(bad), Err(Error::InvalidName), "{bad:?}");
    }
    assert_eq!(s.mdns.state(), State::Stopped);
    let svc = |t| Service {
        instance: "x",
        service_type: t,
        port: 1,
        txt: &[],
    };
    assert_eq!(
        s.mdns.add_service(&svc("_http")),
        Err(Error::InvalidServiceType)
    );
    assert_eq!(
        s.mdns.add_service(&Service {
            txt: &[&"t".repeat(200)],
            ..svc("_http._tcp")
        }),
        Err(Error::TxtTooLong)
    );
    for _ in 0..ferronet::mdns_responder::MAX_SERVICES {
        s.mdns.add_service(&svc("_http._tcp")).unwrap();
    }
    assert_eq!(
        s.mdns.add_service(&svc("_http._tcp")),
        Err(Error::TooManyServices)
    );
}

#[test]
fn a_record_is_multicast_at_most_once_a_second() {
    let ex = Executor::new();
    let s = setup(&ex);
    start_and_claim(&ex, &s);
    let q = query(0, &[("dev1.local", A, 1)], &[]);
    let t = ex.now();
    send_v4(&s, 5353, GROUP_V4, &q);
    ex.run_for(Duration::from_millis(100));
    send_v4(&s, 5353, GROUP_V4, &q);
    // A QU query in between is answered by unicast all the same.
    send_v4(
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("dev1.local", A, 1 | QU)], &[]),
    );
    ex.run_for(Duration::from_millis(900));
    send_v4(&s, 5353, GROUP_V4, &q);
    ex.run_for(Duration::from_millis(100));
    let sent = mdns_sent(&s.peer, t);
    let to: Vec<(IpAddress, Duration)> = sent.iter().map(|m| (m.udp.dst, m.time - t)).collect();
    assert_eq!(to.len(), 3, "{to:?}");
    assert_eq!(to[0].0, IpAddress::Ipv4(GROUP_V4));
    assert!(to[0].1 < Duration::from_millis(10), "{to:?}");
    assert_eq!(to[1].0, IpAddress::Ipv4(ip4(1)));
    assert_eq!(to[2].0, IpAddress::Ipv4(GROUP_V4));
    assert!(to[2].1 >= Duration::from_secs(1), "{to:?}");
}

#[test]
fn shared_records_are_held_back_and_gathered() {
    let ex = Executor::new();
    let s = setup(&ex);
    for (instance, service_type) in [("Web", "_http._tcp"), ("Echo", "_echo._udp")] {
        s.mdns
            .add_service(&Service {
                instance,
                service_type,
                port: 7,
                txt: &[],
            })
            .unwrap();
    }
    start_and_claim(&ex, &s);
    // Two browse queries 5 ms apart: one answer with both PTR records, 20-120 ms after the
    // first query.
    let t = ex.now();
    send_v4(
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("_http._tcp.local", PTR, 1)], &[]),
    );
    ex.run_for(Duration::from_millis(5));
    send_v4(
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("_echo._udp.local", PTR, 1)], &[]),
    );
    ex.run_for(Duration::from_millis(500));
    let r = mdns_sent(&s.peer, t);
    assert_eq!(r.len(), 1, "{r:#?}");
    let delay = r[0].time - t;
    assert!(
        delay >= Duration::from_millis(20) && delay <= Duration::from_millis(125),
        "{delay:?}"
    );
    let targets = r[0].msg.targets();
    assert_eq!(targets, ["Web._http._tcp.local", "Echo._echo._udp.local"]);
    // A unique record (SRV) is answered at once (once a second has passed since it went out
    // as an additional record of the answer above).
    ex.run_for(Duration::from_millis(700));
    let t = ex.now();
    send_v4(
        &s,
        5353,
        GROUP_V4,
        &query(0, &[("Web._http._tcp.local", SRV, 1)], &[]),
    );
    ex.run_for(Duration::from_secs(1));
    let r = mdns_sent(&s.peer, t);
    assert_eq!(r.len(), 1, "{r:#?}");
    assert!(r[0].time - t < Duration::from_millis(10));
}

#[test]
fn a_conflict_after_claiming_probes_again_and_reports_it() {
    let ex = Executor::new();
    let s = setup(&ex);
    let id = add_printer(&s);
    start_and_claim(&ex, &s);
    // Another host announces the same instance with another port.
    let srv = srv_data(632, "otherhost.local");
    let theirs: RrOut<'_> = ("Printer._ipp._tcp.local", SRV, 1 | FLUSH, 120, srv);
    let announce = build_msg(0, 0x8400, &[], std::slice::from_ref(&theirs), &[]);
    send_v4(&s, 5353, GROUP_V4, &announce);
    let state = ex
        .try_run_until(s.mdns.wait_change(State::Running), LIMIT)
        .unwrap();
    assert_eq!(state, State::Probing);
    // It defends its name: its answer to our probe holds its records.
    ex.run_for(Duration::from_millis(300));
    send_v4(&s, 5353, GROUP_V4, &announce);
    assert_eq!(
        ex.try_run_until(s.mdns.wait_claimed(), LIMIT).unwrap(),
        Err(Conflict::Service(id))
    );
    // Started again (the other host is gone), a response with our own SRV data (a cache
    // answering for us) is no conflict.
    start_and_claim(&ex, &s);
    let srv = srv_data(631, "dev1.local");
    let ours: RrOut<'_> = ("Printer._ipp._tcp.local", SRV, 1 | FLUSH, 120, srv);
    send_v4(&s, 5353, GROUP_V4, &build_msg(0, 0x8400, &[], &[ours], &[]));
    ex.run_for(Duration::from_secs(1));
    assert_eq!(s.mdns.state(), State::Running);
}
