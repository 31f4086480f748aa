//! ICMP sockets, ping and raw IP sockets between two (or three) stacks over simulated links.

use embassy_time::{Duration, Instant};
use ferronet::icmp::ping::{PingError, PingManager, PingParams};
use ferronet::icmp::{
    self, ChecksumCapabilities, IcmpEndpoint, IcmpSocket, Icmpv4Message, Icmpv4Packet, Icmpv4Repr,
};
use ferronet::raw::{self, IpProtocol, IpVersion, RawSocket};
use ferronet::{IpAddress, Stack};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{CapturedFrame, LinkConfig};
use ferronet_sim::switch::Switch;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, Icmpv6Message, Icmpv6Packet, Ipv4Packet, Ipv4Repr, Ipv6Packet,
    Ipv6Repr,
};

/// A ping manager on `stack` with room for replies of up to `payload` bytes of payload.
fn pinger(stack: Stack<'static>, payload: usize) -> PingManager<'static> {
    PingManager::new(
        stack,
        &mut leak([icmp::PacketMetadata::EMPTY; 4])[..],
        buf(8 + payload),
        &mut leak([icmp::PacketMetadata::EMPTY; 4])[..],
        buf(8 + payload),
    )
}

/// An ICMP socket on `stack` with 4 packets / 512 bytes each way.
fn icmp_socket(stack: Stack<'static>) -> IcmpSocket<'static> {
    IcmpSocket::new(
        stack,
        &mut leak([icmp::PacketMetadata::EMPTY; 4])[..],
        buf(512),
        &mut leak([icmp::PacketMetadata::EMPTY; 4])[..],
        buf(512),
    )
}

/// A raw socket on `stack` with the given buffer sizes.
fn raw_socket(
    stack: Stack<'static>,
    version: IpVersion,
    protocol: u8,
    rx: usize,
    tx: usize,
) -> RawSocket<'static> {
    RawSocket::new(
        stack,
        Some(version),
        Some(IpProtocol::from(protocol)),
        &mut leak([raw::PacketMetadata::EMPTY; 4])[..],
        buf(rx),
        &mut leak([raw::PacketMetadata::EMPTY; 4])[..],
        buf(tx),
    )
}

fn params<'a>(target: impl Into<core::net::IpAddr>, payload: &'a [u8]) -> PingParams<'a> {
    let mut p = PingParams::new(target);
    p.set_payload(payload)
        .set_count(1)
        .set_timeout(Duration::from_secs(1))
        .set_rate_limit(Duration::from_millis(0));
    p
}

fn link_5ms() -> LinkConfig {
    LinkConfig {
        latency: Duration::from_millis(5),
        ..LinkConfig::default()
    }
}

/// ICMP echo messages (IPv4 and IPv6) in captured Ethernet frames: (type is request, ident,
/// seq, payload).
fn echoes(frames: &[CapturedFrame]) -> Vec<(bool, u16, u16, Vec<u8>)> {
    let mut out = Vec::new();
    for f in frames {
        let Ok(eth) = EthernetFrame::new_checked(&f.data[..]) else {
            continue;
        };
        match eth.ethertype() {
            EthernetProtocol::Ipv4 => {
                let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                    continue;
                };
                if ip.next_header() != IpProtocol::Icmp {
                    continue;
                }
                let Ok(p) = Icmpv4Packet::new_checked(ip.payload()) else {
                    continue;
                };
                let req = match p.msg_type() {
                    Icmpv4Message::EchoRequest => true,
                    Icmpv4Message::EchoReply => false,
                    _ => continue,
                };
                out.push((req, p.echo_ident(), p.echo_seq_no(), p.data().to_vec()));
            }
            EthernetProtocol::Ipv6 => {
                let Ok(ip) = Ipv6Packet::new_checked(eth.payload()) else {
                    continue;
                };
                if ip.next_header() != IpProtocol::Icmpv6 {
                    continue;
                }
                let Ok(p) = Icmpv6Packet::new_checked(ip.payload()) else {
                    continue;
                };
                let req = match p.msg_type() {
                    Icmpv6Message::EchoRequest => true,
                    Icmpv6Message::EchoReply => false,
                    _ => continue,
                };
                out.push((req, p.echo_ident(), p.echo_seq_no(), p.payload().to_vec()));
            }
            _ => {}
        }
    }
    out
}

#[test]
fn ping_ipv4_round_trip() {
    let ex = Executor::new();
    let (a, _b, link) = spawn_pair(&ex, link_5ms());
    link.capture(true);
    let (first, second) = ex
        .try_run_until(
            async move {
                let mut p = pinger(a, 64);
                let params = params(ip4(3), b"ferronet ping");
                let first = p.ping(&params).await;
                let second = p.ping(&params).await;
                (first, second)
            },
            Duration::from_secs(10),
        )
        .unwrap();
    // The first ping also waits for ARP (one more round trip).
    let first = first.unwrap();
    assert!(first >= Duration::from_millis(10), "{first:?}");
    assert!(first <= Duration::from_millis(25), "{first:?}");
    assert_eq!(second.unwrap(), Duration::from_millis(10));
    let echoes = echoes(&link.captured());
    assert_eq!(echoes.len(), 4, "{echoes:?}");
    assert!(echoes.iter().all(|e| e.3 == b"ferronet ping"));
    // Each call uses its own identifier.
    assert_ne!(echoes[0].1, echoes[2].1);
}

#[test]
fn ping_ipv6_round_trip() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, link_5ms());
    let (first, second, explicit_source) = ex
        .try_run_until(
            async move {
                let mut p = pinger(a, 64);
                // No source given: the stack's address is used.
                let mut params = params(ip6(3), b"v6");
                let first = p.ping(&params).await;
                let second = p.ping(&params).await;
                params.set_source(ip6(2));
                let explicit_source = p.ping(&params).await;
                (first, second, explicit_source)
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(first.unwrap() >= Duration::from_millis(10));
    assert_eq!(second.unwrap(), Duration::from_millis(10));
    assert_eq!(explicit_source.unwrap(), Duration::from_millis(10));
}

#[test]
fn ping_count_and_rate_limit() {
    let ex = Executor::new();
    let (a, _b, link) = spawn_pair(&ex, link_5ms());
    link.capture(true);
    let (rtt, elapsed) = ex
        .try_run_until(
            async move {
                let mut p = pinger(a, 64);
                let mut warm = params(ip4(3), b"warm-up");
                warm.set_count(1);
                p.ping(&warm).await.unwrap();
                let mut params = params(ip4(3), b"counted");
                params
                    .set_count(3)
                    .set_rate_limit(Duration::from_millis(200));
                let start = Instant::now();
                let rtt = p.ping(&params).await;
                (rtt, start.elapsed())
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(rtt.unwrap(), Duration::from_millis(10));
    // Three rounds of at least 200 ms each (the last one included, as in embassy-net).
    assert_eq!(elapsed, Duration::from_millis(600));
    let counted: Vec<_> = echoes(&link.captured())
        .into_iter()
        .filter(|e| e.3 == b"counted")
        .collect();
    let seqs: Vec<_> = counted.iter().map(|e| (e.0, e.2)).collect();
    assert_eq!(
        seqs,
        [
            (true, 0),
            (false, 0),
            (true, 1),
            (false, 1),
            (true, 2),
            (false, 2)
        ]
    );
    assert!(counted.iter().all(|e| e.1 == counted[0].1));
}

#[test]
fn ping_total_loss_times_out_without_busy_loop() {
    let ex = Executor::new();
    let (a, _b, link) = spawn_pair(&ex, link_5ms());
    let mut p = pinger(a, 64);
    ex.try_run_until(p.ping(&params(ip4(3), b"warm-up")), Duration::from_secs(5))
        .unwrap()
        .unwrap();
    link.set_loss(1.0).unwrap();
    let mut params = params(ip4(3), b"lost");
    params.set_timeout(Duration::from_secs(3)).set_count(4);
    let start = ex.now();
    let polls = ex.polls();
    let res = ex
        .try_run_until(p.ping(&params), Duration::from_secs(30))
        .unwrap();
    assert_eq!(res, Err(PingError::DestinationHostUnreachable));
    assert_eq!(ex.now() - start, Duration::from_secs(3));
    let polls = ex.polls() - polls;
    assert!(polls < 20, "{polls} polls during a 3 s wait");
    // Nothing left behind: the socket slot is free again.
    link.set_loss(0.0).unwrap();
    ex.try_run_until(p.ping(&params), Duration::from_secs(5))
        .unwrap()
        .unwrap();
}

/// Ping (count 2) 16 times over a link with 30% loss each way; returns the outcomes and the
/// virtual time at the end.
fn lossy_run(seed: u64) -> (Vec<Result<Duration, PingError>>, Instant) {
    let ex = Executor::new();
    let cfg = LinkConfig {
        loss: 0.3,
        seed,
        ..link_5ms()
    };
    let (a, _b, _link) = spawn_pair(&ex, cfg);
    let outcomes = ex
        .try_run_until(
            async move {
                let mut p = pinger(a, 64);
                let mut params = params(ip4(3), b"lossy");
                params
                    .set_count(2)
                    .set_timeout(Duration::from_millis(500))
                    .set_rate_limit(Duration::from_millis(100));
                let mut outcomes = Vec::new();
                for _ in 0..16 {
                    outcomes.push(p.ping(&params).await);
                }
                outcomes
            },
            Duration::from_secs(60),
        )
        .unwrap();
    (outcomes, ex.now())
}

#[test]
fn ping_lossy_link_is_deterministic() {
    for seed in [1, 2, 3] {
        let (first, end) = lossy_run(seed);
        let (again, end_again) = lossy_run(seed);
        assert_eq!(first, again, "seed {seed}");
        assert_eq!(end, end_again, "seed {seed}");
        // Every outcome is a success (with the real round-trip time) or a timeout.
        for r in &first {
            match r {
                Ok(rtt) => assert!(*rtt >= Duration::from_millis(10), "{rtt:?}"),
                Err(e) => assert_eq!(*e, PingError::DestinationHostUnreachable),
            }
        }
        assert!(first.iter().any(|r| r.is_ok()), "seed {seed}: {first:?}");
        assert!(first.iter().any(|r| r.is_err()), "seed {seed}: {first:?}");
    }
}

#[test]
fn concurrent_pings_same_target_keep_their_replies() {
    let ex = Executor::new();
    let (a, _b, link) = spawn_pair(&ex, link_5ms());
    link.capture(true);
    let (r1, r2) = ex
        .try_run_until(
            async move {
                let mut p1 = pinger(a, 64);
                let mut p2 = pinger(a, 64);
                // Same payload: only the identifier tells the replies apart.
                let mut params = params(ip4(3), b"same");
                params
                    .set_count(3)
                    .set_rate_limit(Duration::from_millis(50));
                futures::future::join(p1.ping(&params), p2.ping(&params)).await
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(r1.unwrap() >= Duration::from_millis(10));
    assert!(r2.unwrap() >= Duration::from_millis(10));
    let echoes = echoes(&link.captured());
    let mut idents: Vec<u16> = echoes.iter().filter(|e| e.0).map(|e| e.1).collect();
    idents.sort();
    idents.dedup();
    assert_eq!(idents.len(), 2, "{echoes:?}");
    assert_eq!(echoes.iter().filter(|e| !e.0).count(), 6);
}

#[test]
fn concurrent_ping_to_dead_host_does_not_take_live_replies() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, link_5ms());
    let (live, dead) = ex
        .try_run_until(
            async move {
                let mut p1 = pinger(a, 64);
                let mut p2 = pinger(a, 64);
                let live = params(ip4(3), b"same");
                let dead = params(ip4(99), b"same");
                futures::future::join(p1.ping(&live), p2.ping(&dead)).await
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(live.is_ok(), "{live:?}");
    assert_eq!(dead, Err(PingError::DestinationHostUnreachable));
}

#[test]
fn concurrent_pings_different_targets() {
    let ex = Executor::new();
    let switch = Switch::new(link_5ms());
    let dev = |n: u8| switch.port([2, 0, 0, 0, 0, n]).unwrap();
    let (a, mut ra) = stack_on(dev(2), dual_config(2), 11);
    let (_b, mut rb) = stack_on(dev(3), dual_config(3), 12);
    let (_c, mut rc) = stack_on(dev(4), dual_config(4), 13);
    ex.spawn(async move { ra.run().await });
    ex.spawn(async move { rb.run().await });
    ex.spawn(async move { rc.run().await });
    let (to_b, to_c, to_c6) = ex
        .try_run_until(
            async move {
                let mut p1 = pinger(a, 64);
                let mut p2 = pinger(a, 64);
                let mut p3 = pinger(a, 64);
                let mut pb = params(ip4(3), b"to b");
                let mut pc = params(ip4(4), b"to c");
                let mut pc6 = params(ip6(4), b"to c over v6");
                // smoltcp sends at most one ARP request or neighbor solicitation per second
                // (for all neighbors together), so first contacts with several new neighbors
                // at once take up to two seconds here.
                for p in [&mut pb, &mut pc, &mut pc6] {
                    p.set_count(3)
                        .set_rate_limit(Duration::from_millis(30))
                        .set_timeout(Duration::from_secs(4));
                }
                futures::future::join3(p1.ping(&pb), p2.ping(&pc), p3.ping(&pc6)).await
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(to_b.is_ok(), "{to_b:?}");
    assert!(to_c.is_ok(), "{to_c:?}");
    assert!(to_c6.is_ok(), "{to_c6:?}");
}

#[test]
fn ping_errors() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, link_5ms());
    ex.try_run_until(
        async move {
            let mut p = pinger(a, 16);
            // No target.
            assert_eq!(
                p.ping(&PingParams::default()).await,
                Err(PingError::InvalidTargetAddress)
            );
            assert_eq!(
                p.ping(&params(core::net::Ipv4Addr::UNSPECIFIED, b"x"))
                    .await,
                Err(PingError::InvalidTargetAddress)
            );
            // No IPv6 route outside 2001:db8::/64 (no IPv6 gateway).
            let off_link = core::net::Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 1);
            assert_eq!(
                p.ping(&params(off_link, b"x")).await,
                Err(PingError::SocketSendError(icmp::SendError::NoRoute))
            );
            // Replies of 8 + 17 bytes cannot fit the 24-byte receive buffer.
            assert_eq!(
                p.ping(&params(ip4(3), &[7; 17])).await,
                Err(PingError::SocketRecvError(icmp::RecvError::Truncated))
            );
            // Requests larger than the transmit buffer.
            let mut big_rx = PingManager::new(
                a,
                &mut leak([icmp::PacketMetadata::EMPTY; 1])[..],
                buf(256),
                &mut leak([icmp::PacketMetadata::EMPTY; 1])[..],
                buf(16),
            );
            assert_eq!(
                big_rx.ping(&params(ip4(3), &[7; 100])).await,
                Err(PingError::SocketSendError(icmp::SendError::PacketTooLarge))
            );
            // A full socket table is an error, not a panic.
            let mut hogs = Vec::new();
            while let Ok(s) = RawSocket::try_new(
                a,
                None,
                None,
                &mut leak([raw::PacketMetadata::EMPTY; 1])[..],
                buf(8),
                &mut leak([raw::PacketMetadata::EMPTY; 1])[..],
                buf(8),
            ) {
                hogs.push(s);
            }
            assert!(matches!(
                p.ping(&params(ip4(3), b"x")).await,
                Err(PingError::SocketTableFull(_))
            ));
            drop(hogs);
            assert!(p.ping(&params(ip4(3), b"x")).await.is_ok());
        },
        Duration::from_secs(10),
    )
    .unwrap();
}

#[test]
fn ping_params_accessors() {
    let mut p = PingParams::new(ip4(3));
    assert_eq!(p.target(), Some(ip4(3).into()));
    assert_eq!(p.count(), 4);
    assert_eq!(p.timeout(), Duration::from_secs(4));
    assert_eq!(p.rate_limit(), Duration::from_secs(1));
    assert_eq!(p.payload(), b"embassy-net");
    assert_eq!(p.source(), None);
    p.set_count(0).set_hop_limit(Some(0));
    assert_eq!(p.count(), 1);
    assert_eq!(p.hop_limit(), None);
    p.set_hop_limit(Some(9))
        .set_target(ip6(3))
        .set_source(ip6(2));
    assert_eq!(p.hop_limit(), Some(9));
    assert_eq!(p.target(), Some(ip6(3).into()));
    assert_eq!(p.source(), Some(ip6(2)));
    assert_eq!(PingParams::default().target(), None);
}

#[test]
fn ping_hop_limit_is_applied() {
    let ex = Executor::new();
    let (a, _b, link) = spawn_pair(&ex, link_5ms());
    link.capture(true);
    ex.try_run_until(
        async move {
            let mut p = pinger(a, 64);
            let mut params = params(ip4(3), b"ttl");
            params.set_hop_limit(Some(7));
            p.ping(&params).await.unwrap();
        },
        Duration::from_secs(10),
    )
    .unwrap();
    let ttls: Vec<u8> = link
        .captured()
        .iter()
        .filter_map(|f| {
            let eth = EthernetFrame::new_checked(&f.data[..]).ok()?;
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            (eth.ethertype() == EthernetProtocol::Ipv4
                && ip.next_header() == IpProtocol::Icmp
                && ip.src_addr() == ip4(2))
            .then(|| ip.hop_limit())
        })
        .collect();
    assert_eq!(ttls, [7]);
}

#[test]
fn icmp_socket_echo_round_trip() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, link_5ms());
    ex.try_run_until(
        async move {
            let mut s = icmp_socket(a);
            assert!(!s.is_open());
            assert_eq!(
                s.bind(IcmpEndpoint::Unspecified),
                Err(icmp::BindError::InvalidEndpoint)
            );
            s.bind(IcmpEndpoint::Ident(0x4242)).unwrap();
            assert!(s.is_open());
            assert_eq!(
                s.bind(IcmpEndpoint::Ident(1)),
                Err(icmp::BindError::InvalidState)
            );
            assert_eq!(s.packet_recv_capacity(), 4);
            assert_eq!(s.payload_send_capacity(), 512);
            assert!(s.may_send());
            assert!(!s.may_recv());
            s.set_hop_limit(Some(0)); // no panic: taken as the default
            assert_eq!(s.hop_limit(), None);
            s.set_hop_limit(Some(33));
            assert_eq!(s.hop_limit(), Some(33));

            for seq_no in 0..3u16 {
                let payload = [seq_no as u8; 20];
                let request = Icmpv4Repr::EchoRequest {
                    ident: 0x4242,
                    seq_no,
                    data: &payload,
                };
                let mut packet = vec![0u8; request.buffer_len()];
                request.emit(
                    &mut Icmpv4Packet::new_unchecked(&mut packet[..]),
                    &ChecksumCapabilities::default(),
                );
                if seq_no % 2 == 0 {
                    s.send_to(&packet, ip4(3)).await.unwrap();
                } else {
                    let len = packet.len();
                    let r = s
                        .send_to_with(len, ip4(3), |buf| {
                            buf[..len].copy_from_slice(&packet);
                            (len, 42)
                        })
                        .await
                        .unwrap();
                    assert_eq!(r, 42);
                }
                let mut reply = [0u8; 64];
                let (n, from) = s.recv_from(&mut reply).await.unwrap();
                assert_eq!(from, IpAddress::Ipv4(ip4(3)));
                let reply = Icmpv4Packet::new_checked(&reply[..n]).unwrap();
                let repr = Icmpv4Repr::parse(&reply, &ChecksumCapabilities::default()).unwrap();
                assert_eq!(
                    repr,
                    Icmpv4Repr::EchoReply {
                        ident: 0x4242,
                        seq_no,
                        data: &payload
                    }
                );
            }

            // recv_from_with waits (on the waker) and hands out the message in place.
            let request = Icmpv4Repr::EchoRequest {
                ident: 0x4242,
                seq_no: 9,
                data: b"with",
            };
            let mut packet = vec![0u8; request.buffer_len()];
            request.emit(
                &mut Icmpv4Packet::new_unchecked(&mut packet[..]),
                &ChecksumCapabilities::default(),
            );
            s.send_to(&packet, ip4(3)).await.unwrap();
            let (seq, from) = s
                .recv_from_with(|(data, from)| {
                    (Icmpv4Packet::new_checked(data).unwrap().echo_seq_no(), from)
                })
                .await
                .unwrap();
            assert_eq!((seq, from), (9, IpAddress::Ipv4(ip4(3))));
            s.flush().await;
        },
        Duration::from_secs(10),
    )
    .unwrap();
}

#[test]
fn icmp_socket_ignores_other_identifiers() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, link_5ms());
    ex.try_run_until(
        async move {
            let mut s = icmp_socket(a);
            s.bind(IcmpEndpoint::Ident(0x0bad)).unwrap();
            let mut p = pinger(a, 64);
            let mut params = params(ip4(3), b"not yours");
            params.set_count(2);
            p.ping(&params).await.unwrap();
            assert!(!s.may_recv());
        },
        Duration::from_secs(10),
    )
    .unwrap();
}

#[test]
fn icmp_socket_errors() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, link_5ms());
    ex.try_run_until(
        async move {
            let mut s = IcmpSocket::new(
                a,
                &mut leak([icmp::PacketMetadata::EMPTY; 2])[..],
                buf(64),
                &mut leak([icmp::PacketMetadata::EMPTY; 2])[..],
                buf(64),
            );
            assert_eq!(
                s.send_to(&[0; 65], ip4(3)).await,
                Err(icmp::SendError::PacketTooLarge)
            );
            assert_eq!(
                s.send_to_with(65, ip4(3), |_| (0, ())).await,
                Err(icmp::SendError::PacketTooLarge)
            );
            let off_link = core::net::Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 1);
            assert_eq!(
                s.send_to(&[0; 8], off_link).await,
                Err(icmp::SendError::NoRoute)
            );
            assert_eq!(
                s.send_to(&[0; 8], core::net::Ipv4Addr::UNSPECIFIED).await,
                Err(icmp::SendError::SocketNotBound)
            );
            s.bind(IcmpEndpoint::Ident(7)).unwrap();
            assert_eq!(
                s.send_to(&[0; 8], core::net::Ipv4Addr::UNSPECIFIED).await,
                Err(icmp::SendError::NoRoute)
            );

            // A reply that does not fit the caller's buffer.
            let request = Icmpv4Repr::EchoRequest {
                ident: 7,
                seq_no: 1,
                data: &[1; 30],
            };
            let mut packet = vec![0u8; request.buffer_len()];
            request.emit(
                &mut Icmpv4Packet::new_unchecked(&mut packet[..]),
                &ChecksumCapabilities::default(),
            );
            s.send_to(&packet, ip4(3)).await.unwrap();
            s.wait_recv_ready().await;
            let mut small = [0u8; 10];
            assert_eq!(
                s.recv_from(&mut small).await,
                Err(icmp::RecvError::Truncated)
            );
            // The truncated packet was dropped.
            assert!(!s.may_recv());
        },
        Duration::from_secs(10),
    )
    .unwrap();
}

/// After a small packet went out, the transmit ring is empty but its start moved: a
/// `send_to_with` whose `max_size` needs the whole ring must still go out.
#[test]
fn icmp_send_to_with_full_size_after_ring_moved() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, link_5ms());
    ex.try_run_until(
        async move {
            let mut s = IcmpSocket::new(
                a,
                &mut leak([icmp::PacketMetadata::EMPTY; 2])[..],
                buf(128),
                &mut leak([icmp::PacketMetadata::EMPTY; 1])[..],
                buf(64),
            );
            s.bind(IcmpEndpoint::Ident(5)).unwrap();
            for (seq_no, len) in [(1u16, 30usize), (2, 64), (3, 20), (4, 64)] {
                let data = vec![seq_no as u8; len - 8];
                let request = Icmpv4Repr::EchoRequest {
                    ident: 5,
                    seq_no,
                    data: &data,
                };
                s.send_to_with(len, ip4(3), |buf| {
                    request.emit(
                        &mut Icmpv4Packet::new_unchecked(&mut buf[..len]),
                        &ChecksumCapabilities::default(),
                    );
                    (len, ())
                })
                .await
                .unwrap();
                s.flush().await;
                let (seq, n) = s
                    .recv_from_with(|(d, _)| {
                        (Icmpv4Packet::new_checked(d).unwrap().echo_seq_no(), d.len())
                    })
                    .await
                    .unwrap();
                assert_eq!((seq, n), (seq_no, len));
            }
        },
        Duration::from_secs(10),
    )
    .unwrap();
}

/// An IPv4 packet of protocol 253 from A to B.
fn ipv4_packet(payload: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: ip4(2),
        dst_addr: ip4(3),
        next_header: IpProtocol::from(253),
        payload_len: payload.len(),
        hop_limit: 64,
    };
    let mut packet = vec![0u8; repr.buffer_len() + payload.len()];
    repr.emit(
        &mut Ipv4Packet::new_unchecked(&mut packet[..]),
        &smoltcp::phy::ChecksumCapabilities::default(),
    );
    packet[repr.buffer_len()..].copy_from_slice(payload);
    packet
}

#[test]
fn raw_custom_protocol_ipv4() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, link_5ms());
    ex.try_run_until(
        async move {
            let rx = raw_socket(b, IpVersion::Ipv4, 253, 2048, 2048);
            // Another protocol on B: never sees protocol 253.
            let other = raw_socket(b, IpVersion::Ipv4, 254, 2048, 2048);
            let mut tx = raw_socket(a, IpVersion::Ipv4, 253, 2048, 2048);
            for i in 0..3u8 {
                let packet = ipv4_packet(&[i; 100]);
                tx.send(&packet).await.unwrap();
                let mut got = [0u8; 1500];
                let n = rx.recv(&mut got).await.unwrap();
                assert_eq!(&got[..n], &packet[..], "packet {i}");
            }
            tx.flush().await;
            tx.wait_send_ready().await;
            std::future::poll_fn(|cx| {
                assert!(other.poll_recv_ready(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
        },
        Duration::from_secs(10),
    )
    .unwrap();
}

#[test]
fn raw_custom_protocol_ipv6() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, link_5ms());
    ex.try_run_until(
        async move {
            let rx = raw_socket(b, IpVersion::Ipv6, 253, 2048, 2048);
            let tx = raw_socket(a, IpVersion::Ipv6, 253, 2048, 2048);
            let payload = [0x5a; 77];
            let repr = Ipv6Repr {
                src_addr: ip6(2),
                dst_addr: ip6(3),
                next_header: IpProtocol::from(253),
                payload_len: payload.len(),
                hop_limit: 64,
            };
            let mut packet = vec![0u8; repr.buffer_len() + payload.len()];
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut packet[..]));
            packet[repr.buffer_len()..].copy_from_slice(&payload);
            tx.send(&packet).await.unwrap();
            let mut got = [0u8; 1500];
            rx.wait_recv_ready().await;
            let n = rx.recv(&mut got).await.unwrap();
            assert_eq!(&got[..n], &packet[..]);
        },
        Duration::from_secs(10),
    )
    .unwrap();
}

#[test]
fn raw_send_larger_than_buffer_is_an_error() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, link_5ms());
    let start = ex.now();
    ex.try_run_until(
        async move {
            let tx = raw_socket(a, IpVersion::Ipv4, 253, 256, 256);
            let packet = ipv4_packet(&[1; 300]);
            assert_eq!(tx.send(&packet).await, Err(raw::SendError::PacketTooLarge));
            // A packet that fits still goes out.
            tx.send(&ipv4_packet(&[1; 200])).await.unwrap();
        },
        Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(ex.now(), start);
}

#[test]
fn raw_recv_truncated() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, link_5ms());
    ex.try_run_until(
        async move {
            let rx = raw_socket(b, IpVersion::Ipv4, 253, 2048, 2048);
            let tx = raw_socket(a, IpVersion::Ipv4, 253, 2048, 2048);
            tx.send(&ipv4_packet(&[9; 100])).await.unwrap();
            tx.send(&ipv4_packet(&[8; 10])).await.unwrap();
            let mut small = [0u8; 64];
            assert_eq!(rx.recv(&mut small).await, Err(raw::RecvError::Truncated));
            // The truncated packet was dropped; the next one fits.
            let n = rx.recv(&mut small).await.unwrap();
            assert_eq!(&small[..n], &ipv4_packet(&[8; 10])[..]);
        },
        Duration::from_secs(10),
    )
    .unwrap();
}
