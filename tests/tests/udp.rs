//! UDP sockets between two stacks over a simulated link: echo over IPv4 and IPv6, truncation,
//! the precise send errors, the zero-copy and poll APIs, and ephemeral ports.

use std::collections::HashSet;
use std::future::poll_fn;
use std::task::{Context, Poll, Waker};

use embassy_time::{Duration, with_timeout};
use ferronet::tcp::TcpSocket;
use ferronet::udp::{BindError, PacketMetadata, RecvError, SendError, UdpSocket};
use ferronet::{
    ConfigV4, IpAddress, IpEndpoint, Ipv4Address, Ipv4Cidr, Ipv6Address, Stack, StackResources,
    StaticConfigV4,
};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{Direction, LinkConfig, pair_ethernet};

/// Generous virtual time limit: anything that needs longer has hung.
const LIMIT: Duration = Duration::from_secs(60);

fn metas(n: usize) -> &'static mut [PacketMetadata] {
    Box::leak(
        (0..n)
            .map(|_| PacketMetadata::EMPTY)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

/// A UDP socket with `n` metadata entries and `cap` payload bytes in each direction.
fn udp_socket(stack: Stack<'static>, cap: usize, n: usize) -> UdpSocket<'static> {
    UdpSocket::new(stack, metas(n), buf(cap), metas(n), buf(cap))
}

/// Spawn a task that echoes every datagram received on `port` back to its sender.
fn spawn_udp_echo(ex: &Executor<'_>, stack: Stack<'static>, port: u16) {
    ex.spawn(async move {
        let mut s = udp_socket(stack, 8192, 16);
        s.bind(port).unwrap();
        let mut tmp = vec![0u8; 2048];
        loop {
            let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
            s.send_to(&tmp[..n], meta.endpoint).await.unwrap();
        }
    });
}

fn pattern_vec(seed: u8, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill_pattern(seed, 0, &mut v);
    v
}

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// Poll a future exactly once with a no-op waker.
fn poll_once<F: Future>(fut: F) -> Poll<F::Output> {
    let mut fut = std::pin::pin!(fut);
    fut.as_mut().poll(&mut noop_cx())
}

fn is_ephemeral(port: u16) -> bool {
    (49152..=65535).contains(&port)
}

fn udp_echo(remote: IpAddress, local: IpAddress) {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    spawn_udp_echo(&ex, b, 7);
    ex.try_run_until(
        async move {
            let mut s = udp_socket(a, 4096, 8);
            s.bind(0).unwrap();
            let port = s.endpoint().port;
            assert!(is_ephemeral(port), "ephemeral port {port} out of range");
            let peer = IpEndpoint::new(remote, 7);
            let mut rx = vec![0u8; 2048];
            for i in 0..100usize {
                let len = match i {
                    0 => 1,
                    99 => 1400,
                    _ => 1 + (i * 389) % 1400,
                };
                let data = pattern_vec(i as u8, len);
                s.send_to(&data, peer).await.unwrap();
                let (n, meta) = s.recv_from(&mut rx).await.unwrap();
                assert_eq!(n, len, "datagram {i}: echo length");
                assert_eq!(&rx[..n], &data[..], "datagram {i}: echo bytes");
                assert_eq!(meta.endpoint, peer, "datagram {i}: echo source");
                assert_eq!(meta.local_address, Some(local), "datagram {i}: echo dest");
            }
            // The local endpoint stays what bind chose.
            assert_eq!(s.endpoint().port, port);
        },
        LIMIT,
    )
    .expect("UDP echo did not complete");
}

#[test]
fn udp_echo_ipv4() {
    udp_echo(ip4(3).into(), ip4(2).into());
}

#[test]
fn udp_echo_ipv6() {
    udp_echo(ip6(3).into(), ip6(2).into());
}

#[test]
fn truncated_datagram_is_dropped_and_the_next_one_arrives() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    ex.try_run_until(
        async move {
            let mut rx = udp_socket(b, 4096, 8);
            rx.bind(9).unwrap();
            let mut tx = udp_socket(a, 4096, 8);
            tx.bind(0).unwrap();
            let peer = IpEndpoint::new(ip4(3).into(), 9);
            let big = pattern_vec(1, 100);
            let small = pattern_vec(2, 5);
            let big2 = pattern_vec(3, 100);
            tx.send_to(&big, peer).await.unwrap();
            tx.send_to(&small, peer).await.unwrap();
            tx.send_to(&big2, peer).await.unwrap();
            tx.flush().await;

            let mut short = [0u8; 10];
            assert_eq!(
                rx.recv_from(&mut short).await,
                Err(RecvError::Truncated),
                "100-byte datagram into a 10-byte buffer"
            );
            let (n, meta) = rx.recv_from(&mut short).await.unwrap();
            assert_eq!(&short[..n], &small[..], "the next datagram is intact");
            assert_eq!(
                meta.endpoint,
                IpEndpoint::new(ip4(2).into(), tx.endpoint().port)
            );
            let mut long = [0u8; 200];
            let (n, _) = rx.recv_from(&mut long).await.unwrap();
            assert_eq!(&long[..n], &big2[..], "and the one after it too");
            assert!(!rx.may_recv(), "nothing else was queued");
        },
        LIMIT,
    )
    .expect("truncation test did not complete");
}

#[test]
fn packet_too_large_is_immediate() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    ex.try_run_until(
        async move {
            let mut rx = udp_socket(b, 4096, 8);
            rx.bind(9).unwrap();
            let mut s = udp_socket(a, 512, 4);
            s.bind(0).unwrap();
            assert_eq!(s.payload_send_capacity(), 512);
            let peer = IpEndpoint::new(ip4(3).into(), 9);
            let data = pattern_vec(4, 513);

            // A single poll answers: the error is not a wait for room.
            assert_eq!(
                poll_once(s.send_to(&data, peer)),
                Poll::Ready(Err(SendError::PacketTooLarge))
            );
            assert_eq!(
                s.poll_send_to(&data, peer, &mut noop_cx()),
                Poll::Ready(Err(SendError::PacketTooLarge))
            );
            assert_eq!(s.send_to(&data, peer).await, Err(SendError::PacketTooLarge));
            assert_eq!(
                poll_once(s.send_to_with(513, peer, |_| -> (usize, ()) {
                    panic!("the closure must not be called for a too-large datagram")
                })),
                Poll::Ready(Err(SendError::PacketTooLarge))
            );

            // Exactly the capacity fits and arrives.
            s.send_to(&data[..512], peer).await.unwrap();
            let mut got = vec![0u8; 1024];
            let (n, _) = rx.recv_from(&mut got).await.unwrap();
            assert_eq!(&got[..n], &data[..512]);
        },
        LIMIT,
    )
    .expect("PacketTooLarge test did not complete");
}

#[test]
fn packet_too_large_without_tx_metadata() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, LinkConfig::default());
    // Payload room but no metadata entry: no datagram can ever be queued.
    let mut s = UdpSocket::new(a, metas(1), buf(64), metas(0), buf(512));
    s.bind(0).unwrap();
    assert_eq!(s.packet_send_capacity(), 0);
    let peer = IpEndpoint::new(ip4(3).into(), 9);
    assert_eq!(
        poll_once(s.send_to(b"x", peer)),
        Poll::Ready(Err(SendError::PacketTooLarge))
    );
}

fn try_send(ex: &Executor<'_>, s: &UdpSocket<'_>, peer: IpEndpoint) -> Result<(), SendError> {
    ex.try_run_until(s.send_to(b"hello", peer), Duration::from_secs(1))
        .expect("send_to must not wait")
}

#[test]
fn no_route() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let mut rx = udp_socket(b, 1024, 4);
    rx.bind(9).unwrap();
    let mut s = udp_socket(a, 1024, 4);
    s.bind(0).unwrap();
    let b_v4 = IpEndpoint::new(ip4(3).into(), 9);

    // No IPv4 configuration at all.
    a.set_config_v4(ConfigV4::None);
    assert_eq!(a.config_v4(), None);
    assert_eq!(try_send(&ex, &s, b_v4), Err(SendError::NoRoute));
    // IPv6 still works.
    assert_eq!(try_send(&ex, &s, IpEndpoint::new(ip6(3).into(), 9)), Ok(()));

    // An on-link address but no gateway.
    a.set_config_v4(ConfigV4::Static(StaticConfigV4 {
        address: Ipv4Cidr::new(ip4(2), 24),
        gateway: None,
        dns_servers: heapless::Vec::new(),
    }));
    let off_link = IpEndpoint::new(Ipv4Address::new(198, 51, 100, 1).into(), 9);
    assert_eq!(try_send(&ex, &s, off_link), Err(SendError::NoRoute));
    let off_link6 = IpEndpoint::new(Ipv6Address::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 1).into(), 9);
    assert_eq!(
        try_send(&ex, &s, off_link6),
        Err(SendError::NoRoute),
        "IPv6 config has no gateway"
    );
    assert_eq!(
        ex.try_run_until(
            s.send_to_with(8, off_link, |b| {
                b.fill(1);
                (8, ())
            }),
            Duration::from_secs(1)
        )
        .unwrap(),
        Err(SendError::NoRoute)
    );

    // Unspecified destination address or port.
    for dst in [
        IpEndpoint::new(Ipv4Address::UNSPECIFIED.into(), 9),
        IpEndpoint::new(Ipv6Address::UNSPECIFIED.into(), 9),
        IpEndpoint::new(ip4(3).into(), 0),
        IpEndpoint::new(ip6(3).into(), 0),
    ] {
        assert_eq!(try_send(&ex, &s, dst), Err(SendError::NoRoute), "to {dst}");
    }

    // The on-link peer is reachable; only the datagrams sent with Ok arrive (the IPv6 one
    // and this one).
    assert_eq!(try_send(&ex, &s, b_v4), Ok(()));
    let got = ex
        .try_run_until(
            async {
                let mut out = Vec::new();
                let mut tmp = [0u8; 64];
                for _ in 0..2 {
                    let (n, meta) = rx.recv_from(&mut tmp).await.unwrap();
                    out.push((tmp[..n].to_vec(), meta.endpoint.addr));
                }
                out
            },
            LIMIT,
        )
        .unwrap();
    assert_eq!(
        got,
        vec![
            (b"hello".to_vec(), IpAddress::from(ip6(2))),
            (b"hello".to_vec(), IpAddress::from(ip4(2))),
        ]
    );
    ex.run_for(Duration::from_secs(5));
    assert!(!rx.may_recv(), "no datagram refused with NoRoute was sent");
}

#[test]
fn unbound_and_double_bind() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, LinkConfig::default());
    let mut s = udp_socket(a, 256, 2);
    let peer = IpEndpoint::new(ip4(3).into(), 9);
    assert!(!s.is_open());
    assert_eq!(
        poll_once(s.send_to(b"x", peer)),
        Poll::Ready(Err(SendError::SocketNotBound))
    );
    assert_eq!(
        poll_once(s.send_to_with(1, peer, |_| -> (usize, ()) {
            panic!("the closure must not be called on an unbound socket")
        })),
        Poll::Ready(Err(SendError::SocketNotBound))
    );

    s.bind(4000).unwrap();
    assert!(s.is_open());
    assert_eq!(s.endpoint().port, 4000);
    assert_eq!(s.bind(4001), Err(BindError::InvalidState));
    assert_eq!(s.bind(0), Err(BindError::InvalidState));
    assert_eq!(s.endpoint().port, 4000, "a failed bind changes nothing");

    let mut t = udp_socket(a, 256, 2);
    t.bind(0).unwrap();
    let port = t.endpoint().port;
    assert!(is_ephemeral(port));
    assert_eq!(t.bind(0), Err(BindError::InvalidState));
    assert_eq!(t.endpoint().port, port);

    // After close the socket can be bound again.
    s.close();
    assert!(!s.is_open());
    assert_eq!(
        poll_once(s.send_to(b"x", peer)),
        Poll::Ready(Err(SendError::SocketNotBound))
    );
    s.bind(4001).unwrap();
    assert_eq!(s.endpoint().port, 4001);
}

/// IPv4 UDP frames A sent to port `dst_port`, as (TTL, payload).
fn captured_udp4(link: &ferronet_sim::link::LinkHandle, dst_port: u16) -> Vec<(u8, Vec<u8>)> {
    link.captured()
        .into_iter()
        .filter(|f| f.direction == Direction::AToB)
        .filter_map(|f| {
            let d = &f.data;
            if d.len() < 14 + 20 + 8 || d[12..14] != [0x08, 0x00] || d[14 + 9] != 17 {
                return None;
            }
            let ihl = usize::from(d[14] & 0x0f) * 4;
            let udp = &d[14 + ihl..];
            if u16::from_be_bytes([udp[2], udp[3]]) != dst_port {
                return None;
            }
            Some((d[14 + 8], udp[8..].to_vec()))
        })
        .collect()
}

#[test]
fn zero_copy_poll_api_capacities_and_hop_limit() {
    let ex = Executor::new();
    let (a, b, link) = spawn_pair(&ex, LinkConfig::default());
    link.capture(true);
    let link2 = link.clone();
    ex.try_run_until(
        async move {
            let link = link2;
            let mut rx = UdpSocket::new(b, metas(5), buf(3000), metas(3), buf(700));
            assert_eq!(rx.packet_recv_capacity(), 5);
            assert_eq!(rx.packet_send_capacity(), 3);
            assert_eq!(rx.payload_recv_capacity(), 3000);
            assert_eq!(rx.payload_send_capacity(), 700);
            rx.bind(9).unwrap();
            let mut s = udp_socket(a, 2048, 4);
            s.bind(0).unwrap();
            let me = IpEndpoint::new(ip4(2).into(), s.endpoint().port);
            let peer = IpEndpoint::new(ip4(3).into(), 9);

            // send_to_with: the closure writes in place and may send less than max_size.
            s.wait_send_ready().await;
            assert!(s.may_send());
            let r = s
                .send_to_with(300, peer, |b| {
                    assert_eq!(b.len(), 300);
                    fill_pattern(5, 0, &mut b[..200]);
                    (200, 42u32)
                })
                .await;
            assert_eq!(r, Ok(42));
            s.flush().await;
            assert!(
                link.stats().a_to_b.sent >= 1,
                "flush returned before the datagram was handed to the driver"
            );

            rx.wait_recv_ready().await;
            assert!(rx.may_recv());
            let (data, meta) = rx.recv_from_with(|d, m| (d.to_vec(), m)).await;
            assert_eq!(data, pattern_vec(5, 200));
            assert_eq!(meta.endpoint, me);
            assert_eq!(meta.local_address, Some(ip4(3).into()));
            assert!(!rx.may_recv());

            // poll_send_to / poll_recv_from through poll_fn.
            let data = pattern_vec(6, 999);
            poll_fn(|cx| s.poll_send_to(&data, peer, cx)).await.unwrap();
            let mut got = vec![0u8; 1500];
            let (n, meta) = poll_fn(|cx| rx.poll_recv_from(&mut got, cx)).await.unwrap();
            assert_eq!(&got[..n], &data[..]);
            assert_eq!(meta.endpoint, me);
            // With nothing queued, poll_recv_from is pending.
            assert!(rx.poll_recv_from(&mut got, &mut noop_cx()).is_pending());

            // Hop limits: Some(1) is used as the TTL, Some(0) must not panic. The hop limit
            // is the socket's at the time a datagram leaves, hence the flushes.
            s.set_hop_limit(Some(1));
            s.send_to(b"ttl-one", peer).await.unwrap();
            s.flush().await;
            s.set_hop_limit(Some(0));
            s.send_to(b"ttl-zero", peer).await.unwrap();
            s.flush().await;
            s.set_hop_limit(None);
            s.send_to(b"ttl-default", peer).await.unwrap();
            s.flush().await;
            let mut tmp = [0u8; 64];
            for want in [&b"ttl-one"[..], b"ttl-zero", b"ttl-default"] {
                let (n, _) = rx.recv_from(&mut tmp).await.unwrap();
                assert_eq!(&tmp[..n], want);
            }

            // Replies through the receiver's socket (its own send path).
            rx.send_to_with(3, me, |b| {
                b.copy_from_slice(b"abc");
                (3, ())
            })
            .await
            .unwrap();
            let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
            assert_eq!(&tmp[..n], b"abc");
            assert_eq!(meta.endpoint, peer);

            s.close();
            assert!(!s.is_open());
            assert_eq!(s.endpoint().port, 0);
        },
        LIMIT,
    )
    .expect("zero-copy test did not complete");

    let frames = captured_udp4(&link, 9);
    let ttl_of = |payload: &[u8]| {
        frames
            .iter()
            .find(|(_, p)| p == payload)
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("no captured frame with {payload:?}"))
    };
    assert_eq!(ttl_of(b"ttl-one"), 1);
    assert_ne!(ttl_of(b"ttl-zero"), 0, "a TTL of 0 must never be sent");
    assert_eq!(ttl_of(b"ttl-default"), 64);
}

/// `send_to_with` into an empty transmit buffer whose ring position is not at the start
/// (after earlier datagrams): a `max_size` that fits the capacity must be sent, not wait
/// forever.
#[test]
fn send_to_with_after_earlier_datagrams() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    ex.try_run_until(
        async move {
            let mut rx = udp_socket(b, 4096, 8);
            rx.bind(9).unwrap();
            let mut s = udp_socket(a, 1000, 4);
            s.bind(0).unwrap();
            let peer = IpEndpoint::new(ip4(3).into(), 9);
            let mut tmp = vec![0u8; 2048];

            s.send_to(&pattern_vec(7, 600), peer).await.unwrap();
            s.flush().await;
            let (n, _) = rx.recv_from(&mut tmp).await.unwrap();
            assert_eq!(n, 600);

            // The buffer is empty again; 700 <= 1000 = payload_send_capacity.
            let r = with_timeout(
                Duration::from_secs(10),
                s.send_to_with(700, peer, |b| {
                    fill_pattern(8, 0, b);
                    (700, ())
                }),
            )
            .await;
            assert_eq!(
                r,
                Ok(Ok(())),
                "send_to_with(700) on an empty 1000-byte buffer hung"
            );
            let (n, _) = rx.recv_from(&mut tmp).await.unwrap();
            assert_eq!(&tmp[..n], &pattern_vec(8, 700)[..]);
        },
        LIMIT,
    )
    .expect("test did not complete");
}

#[test]
fn ephemeral_ports_are_unique_and_in_range() {
    let ex = Executor::new();
    let (dev_a, dev_b, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (a, mut runner_a) = ferronet::new(
        dev_a,
        dual_config(2),
        leak(StackResources::<64>::new()),
        0xfeed_beef,
    );
    let (b, mut runner_b) = stack_on(dev_b, dual_config(3), 99);
    ex.spawn(async move {
        runner_a.run().await;
    });
    ex.spawn(async move {
        runner_b.run().await;
    });

    // Three listeners on B for A's TCP connections.
    for _ in 0..3 {
        ex.spawn(async move {
            let mut s = TcpSocket::new(b, buf(256), buf(256));
            s.accept(80).await.unwrap();
            // Keep the connection until the test ends.
            std::future::pending::<()>().await;
        });
    }

    let ports = ex
        .try_run_until(
            async move {
                let mut ports = Vec::new();
                let mut udps = Vec::new();
                // 64 slots: one is the DNS socket, 60 UDP + 3 TCP take the rest.
                for _ in 0..60 {
                    let mut s = udp_socket(a, 64, 1);
                    s.bind(0).unwrap();
                    ports.push(s.endpoint().port);
                    udps.push(s);
                }
                let mut tcps = Vec::new();
                for _ in 0..3 {
                    let mut s = TcpSocket::new(a, buf(256), buf(256));
                    s.connect(IpEndpoint::new(ip4(3).into(), 80)).await.unwrap();
                    ports.push(s.local_endpoint().unwrap().port);
                    tcps.push(s);
                }
                // The table is now full.
                assert!(UdpSocket::try_new(a, metas(1), buf(8), metas(1), buf(8)).is_err());
                ports
            },
            LIMIT,
        )
        .expect("connects did not complete");
    assert_eq!(ports.len(), 63);
    for &p in &ports {
        assert!(is_ephemeral(p), "port {p} is outside 49152..=65535");
    }
    let distinct: HashSet<u16> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), ports.len(), "duplicate ports in {ports:?}");
}

/// The first few ephemeral ports a fresh stack with `seed` hands out.
fn first_ports(seed: u64) -> Vec<u16> {
    let (dev, _peer, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (stack, _runner) = stack_on(dev, dual_config(2), seed);
    (0..4)
        .map(|_| {
            // Leaked sockets stay bound, so each bind draws a new port.
            let s = leak(udp_socket(stack, 16, 1));
            s.bind(0).unwrap();
            s.endpoint().port
        })
        .collect()
}

#[test]
fn ephemeral_ports_follow_the_seed() {
    let _ex = Executor::new();
    let one = first_ports(1);
    let two = first_ports(2);
    assert_eq!(one, first_ports(1), "same seed, same ports");
    assert_eq!(two, first_ports(2), "same seed, same ports");
    assert_ne!(one[0], two[0], "different seeds chose the same first port");
    assert_ne!(
        first_ports(0x1234_5678)[0],
        first_ports(0x8765_4321)[0],
        "the harness's two seeds chose the same first port"
    );
}

/// A port that the allocator would draw is skipped when a socket already uses it: a twin
/// stack with the same seed tells which ports will be drawn.
#[test]
fn ephemeral_port_skips_ports_in_use() {
    const SEED: u64 = 0x5eed_0001;
    let ex = Executor::new();
    let predicted = first_ports(SEED);
    let (dev_a, dev_b, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (a, mut runner_a) = stack_on(dev_a, dual_config(2), SEED);
    let (b, mut runner_b) = stack_on(dev_b, dual_config(3), 7);
    ex.spawn(async move {
        runner_a.run().await;
    });
    ex.spawn(async move {
        runner_b.run().await;
    });
    ex.spawn(async move {
        let mut s = TcpSocket::new(b, buf(256), buf(256));
        s.accept(80).await.unwrap();
        std::future::pending::<()>().await;
    });
    ex.try_run_until(
        async move {
            // Draw 0 is taken by an explicitly bound UDP socket: TCP connect avoids it.
            let mut u0 = udp_socket(a, 64, 1);
            u0.bind(predicted[0]).unwrap();
            let mut t = TcpSocket::new(a, buf(256), buf(256));
            t.connect(IpEndpoint::new(ip4(3).into(), 80)).await.unwrap();
            let tcp_port = t.local_endpoint().unwrap().port;
            assert!(is_ephemeral(tcp_port));
            assert_ne!(
                tcp_port, predicted[0],
                "TCP connect took a port bound by UDP"
            );

            // Draw 1 is taken by a listening TCP socket: UDP bind(0) avoids it.
            let mut l = TcpSocket::new(a, buf(256), buf(256));
            assert!(poll_once(l.accept(predicted[1])).is_pending());
            assert_eq!(l.state(), ferronet::tcp::State::Listen);
            let mut u1 = udp_socket(a, 64, 1);
            u1.bind(0).unwrap();
            let port = u1.endpoint().port;
            assert!(is_ephemeral(port));
            assert_ne!(
                port, predicted[1],
                "UDP bind(0) took a port a TCP socket listens on"
            );
            assert_ne!(port, tcp_port);
            assert_ne!(port, predicted[0]);
        },
        LIMIT,
    )
    .expect("test did not complete");
}

fn check_error<E: core::error::Error + std::fmt::Debug>(e: E) {
    let text = e.to_string();
    assert!(!text.is_empty(), "{e:?} has an empty Display");
    assert_ne!(text, format!("{e:?}"), "{e:?}: Display is just Debug");
}

#[test]
fn error_types_display_and_error() {
    for e in [BindError::InvalidState, BindError::NoRoute] {
        check_error(e);
    }
    for e in [
        SendError::NoRoute,
        SendError::SocketNotBound,
        SendError::PacketTooLarge,
    ] {
        check_error(e);
    }
    check_error(RecvError::Truncated);
    // Usable as boxed errors.
    let boxed: Box<dyn core::error::Error> = Box::new(SendError::NoRoute);
    assert!(!boxed.to_string().is_empty());
    // Variants display differently.
    let texts: HashSet<String> = [
        SendError::NoRoute,
        SendError::SocketNotBound,
        SendError::PacketTooLarge,
    ]
    .iter()
    .map(|e| e.to_string())
    .collect();
    assert_eq!(texts.len(), 3);
}
