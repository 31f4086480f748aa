//! Packets larger than the interface's MTU: a send that fits goes out and arrives intact, one
//! byte more fails with `PacketTooLarge` at the call (smoltcp would drop it silently), for UDP,
//! ICMP (ping) and raw sockets, over IPv4 and IPv6, on Ethernet, IP and IEEE 802.15.4 links.
//!
//! The IPv4 limits depend on ferronet's `proto-ipv4-fragmentation` feature, which this crate's
//! feature `ipv4-fragmentation` turns on (with smoltcp's 4096-byte buffers, or others set by
//! `SMOLTCP_FRAGMENTATION_BUFFER_SIZE` / `SMOLTCP_REASSEMBLY_BUFFER_SIZE` at build time): run
//! `cargo test -p ferronet-integration --test mtu` and again with `--features ipv4-fragmentation`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use embassy_time::Duration;
use ferronet::icmp::ping::{PingError, PingManager, PingParams};
use ferronet::icmp::{self};
use ferronet::raw::{self, IpProtocol, IpVersion, RawSocket};
use ferronet::udp::{PacketMetadata, SendError, UdpSocket};
use ferronet::{Config, IpAddress, IpEndpoint, Stack};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{Endpoint, LinkConfig, LinkHandle, pair};
use smoltcp::wire::{Ipv6Packet, Ipv6Repr};

/// Generous virtual time limit: anything that needs longer has hung.
const LIMIT: Duration = Duration::from_secs(60);

/// Room for the largest datagram any test sends, in every socket buffer.
const ROOM: usize = 70_000;

/// The largest UDP payload over IPv4 on a 1500-byte IP MTU: 1500 - 20 - 8, or with
/// fragmentation smoltcp's fragmentation buffer (4096 bytes unless changed; an IPv4 packet is at
/// most 65535 bytes) less the same headers.
const UDP_V4_MAX: usize = if cfg!(feature = "ipv4-fragmentation") {
    min(smoltcp::config::FRAGMENTATION_BUFFER_SIZE, 65535) - 28
} else {
    1472
};

const fn min(a: usize, b: usize) -> usize {
    if a < b { a } else { b }
}
/// The largest UDP payload over IPv6 on a 1500-byte IP MTU (never fragmented).
const UDP_V6_MAX: usize = 1500 - 40 - 8;
/// The largest ping payload over IPv4: the UDP limit less the ICMP header instead of UDP's
/// (same size).
const PING_V4_MAX: usize = UDP_V4_MAX;
/// The largest ping payload over IPv6.
const PING_V6_MAX: usize = UDP_V6_MAX;

fn poll_once<F: Future>(fut: F) -> Poll<F::Output> {
    let mut fut = pin!(fut);
    fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

/// A UDP socket with room for `ROOM` bytes (4 datagrams) each way, bound to `port`.
fn bound_udp(stack: Stack<'static>, port: u16) -> UdpSocket<'static> {
    let mut s = UdpSocket::new(
        stack,
        &mut leak([PacketMetadata::EMPTY; 4])[..],
        buf(ROOM),
        &mut leak([PacketMetadata::EMPTY; 4])[..],
        buf(ROOM),
    );
    s.bind(port).unwrap();
    s
}

/// Two stacks (A: .2, B: .3, dual stack) over a link of `medium`, runners spawned, the link
/// capturing.
fn stacks(
    ex: &Executor<'_>,
    cfg: LinkConfig,
    a: Endpoint,
    b: Endpoint,
    config: fn(u8) -> Config,
) -> (Stack<'static>, Stack<'static>, LinkHandle) {
    let (dev_a, dev_b, link) = pair(cfg, a, b).unwrap();
    let (sa, mut ra) = stack_on(dev_a, config(2), 0x5eed_0001);
    let (sb, mut rb) = stack_on(dev_b, config(3), 0x5eed_0002);
    ex.spawn(async move { ra.run().await });
    ex.spawn(async move { rb.run().await });
    link.capture(true);
    (sa, sb, link)
}

fn ethernet(ex: &Executor<'_>) -> (Stack<'static>, Stack<'static>, LinkHandle) {
    let (a, b, link) = spawn_pair(ex, LinkConfig::default());
    link.capture(true);
    (a, b, link)
}

/// B echoes every datagram on port 7, whatever its size.
fn spawn_big_echo(ex: &Executor<'_>, stack: Stack<'static>) {
    ex.spawn(async move {
        let s = bound_udp(stack, 7);
        let mut tmp = vec![0u8; ROOM];
        loop {
            let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
            s.send_to(&tmp[..n], meta.endpoint).await.unwrap();
        }
    });
}

/// Send `len` bytes of a pattern from `s` to `peer` and wait for the echo; panics unless it
/// comes back from `peer` byte for byte.
fn echo_round(ex: &Executor<'_>, s: &UdpSocket<'static>, peer: IpEndpoint, len: usize) {
    let mut data = vec![0u8; len];
    fill_pattern(len as u8, 0, &mut data);
    let mut back = vec![0u8; ROOM];
    let (n, from) = ex
        .try_run_until(
            async {
                s.send_to(&data, peer).await.unwrap();
                let (n, meta) = s.recv_from(&mut back).await.unwrap();
                (n, meta.endpoint)
            },
            LIMIT,
        )
        .unwrap_or_else(|_| panic!("no echo of a {len}-byte datagram to {peer}"));
    assert_eq!(from, peer);
    assert_eq!(n, len, "echo of {len} bytes came back with {n}");
    assert_eq!(check_pattern(len as u8, 0, &back[..n]), Ok(()));
}

/// A send of `len` bytes to `peer` fails with `PacketTooLarge` at the first poll, and
/// nothing leaves the stack.
fn refused(
    ex: &Executor<'_>,
    s: &UdpSocket<'static>,
    link: &LinkHandle,
    peer: IpEndpoint,
    len: usize,
) {
    let before = link.captured().len();
    let data = vec![0x5a; len];
    assert_eq!(
        poll_once(s.send_to(&data, peer)),
        Poll::Ready(Err(SendError::PacketTooLarge)),
        "{len} bytes to {peer}"
    );
    ex.run_for(Duration::from_millis(100));
    assert_eq!(link.captured().len(), before, "a refused datagram went out");
}

/// From A to B's echo over `link`: the largest datagram, over IPv4 and IPv6, comes back
/// intact, one byte more is refused, a small one still works after it; every frame fits the
/// link's MTU of `frame_max` bytes, and the largest fill it exactly.
fn udp_limits(
    ex: &Executor<'_>,
    a: Stack<'static>,
    b: Stack<'static>,
    link: &LinkHandle,
    frame_max: usize,
) {
    spawn_big_echo(ex, b);
    let s = bound_udp(a, 0);
    for (peer, max) in [
        (IpEndpoint::new(ip4(3).into(), 7), UDP_V4_MAX),
        (IpEndpoint::new(ip6(3).into(), 7), UDP_V6_MAX),
    ] {
        echo_round(ex, &s, peer, max);
        refused(ex, &s, link, peer, max + 1);
        echo_round(ex, &s, peer, 100);
    }
    let frames = link.captured();
    assert!(frames.iter().all(|f| f.data.len() <= frame_max));
    assert!(frames.iter().any(|f| f.data.len() == frame_max));
}

#[test]
fn udp_at_the_limit_arrives_and_one_byte_more_is_refused_ipv4_and_ipv6() {
    let ex = Executor::new();
    let (a, b, link) = ethernet(&ex);
    udp_limits(&ex, a, b, &link, 1514);
}

#[test]
fn udp_limit_on_an_ip_medium_link() {
    let ex = Executor::new();
    let (a, b, link) = stacks(
        &ex,
        LinkConfig::ip(),
        Endpoint::Ip,
        Endpoint::Ip,
        dual_config,
    );
    udp_limits(&ex, a, b, &link, 1500);
}

#[test]
fn udp_on_ieee802154_refuses_what_can_never_fit_a_frame() {
    let ex = Executor::new();
    let v6_only = |host: u8| {
        let mut c = Config::default();
        c.ipv6 = ferronet::ConfigV6::Static(v6_config(u16::from(host)));
        c
    };
    let (a, b, link) = stacks(
        &ex,
        LinkConfig::ieee802154(),
        Endpoint::Ieee802154([0x02, 0, 0, 0, 0, 0, 0, 0x0a]),
        Endpoint::Ieee802154([0x02, 0, 0, 0, 0, 0, 0, 0x0b]),
        v6_only,
    );
    spawn_big_echo(&ex, b);
    let s = bound_udp(a, 0);
    let peer = IpEndpoint::new(ip6(3).into(), 7);
    echo_round(&ex, &s, peer, 40);
    // 125 bytes per frame less at least 8 (MAC header), 2 (IPHC) and 4 (compressed UDP header).
    refused(&ex, &s, &link, peer, 112);
}

#[test]
fn nal_udp_reports_packet_too_large() {
    use embedded_nal_async::{ConnectedUdp, UdpStack};
    use ferronet::udp::nal::{Error, UdpClient, UdpClientState};

    let ex = Executor::new();
    let (a, b, _link) = ethernet(&ex);
    spawn_big_echo(&ex, b);
    let state: &'static UdpClientState<1, ROOM, ROOM, 4> = leak(UdpClientState::new());
    let client = UdpClient::new(a, state);
    ex.try_run_until(
        async {
            let remote = core::net::SocketAddr::new(ip6(3).into(), 7);
            let (_, mut conn) = client.connect(remote).await.unwrap();
            assert_eq!(
                conn.send(&vec![1u8; UDP_V6_MAX + 1]).await,
                Err(Error::PacketTooLarge)
            );
            conn.send(&vec![2u8; UDP_V6_MAX]).await.unwrap();
            let mut back = vec![0u8; ROOM];
            let n = conn.receive_into(&mut back).await.unwrap();
            assert_eq!(&back[..n], &vec![2u8; UDP_V6_MAX][..]);
        },
        LIMIT,
    )
    .expect("nal exchange hung");
}

fn pinger(stack: Stack<'static>) -> PingManager<'static> {
    PingManager::new(
        stack,
        &mut leak([icmp::PacketMetadata::EMPTY; 2])[..],
        buf(ROOM),
        &mut leak([icmp::PacketMetadata::EMPTY; 2])[..],
        buf(ROOM),
    )
}

fn ping(
    ex: &Executor<'_>,
    p: &mut PingManager<'static>,
    target: IpAddress,
    payload: &[u8],
) -> Result<Duration, PingError> {
    let mut params = PingParams::new(target);
    params
        .set_payload(payload)
        .set_count(1)
        .set_timeout(Duration::from_secs(2))
        .set_rate_limit(Duration::from_millis(0));
    ex.try_run_until(p.ping(&params), LIMIT).expect("ping hung")
}

#[test]
fn ping_at_the_limit_is_answered_and_one_byte_more_is_refused() {
    let ex = Executor::new();
    let (a, _b, _link) = ethernet(&ex);
    let mut p = pinger(a);
    for (target, max) in [
        (IpAddress::from(ip4(3)), PING_V4_MAX),
        (IpAddress::from(ip6(3)), PING_V6_MAX),
    ] {
        let payload: Vec<u8> = (0..max + 1).map(|i| i as u8).collect();
        // B's automatic echo reply carries the whole payload back (checked by `ping`).
        ping(&ex, &mut p, target, &payload[..max]).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_eq!(
            ping(&ex, &mut p, target, &payload),
            Err(PingError::SocketSendError(icmp::SendError::PacketTooLarge)),
            "{target}"
        );
    }
}

#[test]
fn raw_ipv6_packet_at_the_mtu_arrives_and_one_byte_more_is_refused() {
    let ex = Executor::new();
    let (a, b, _link) = ethernet(&ex);
    let raw_socket = |stack| {
        RawSocket::new(
            stack,
            Some(IpVersion::Ipv6),
            Some(IpProtocol::from(253)),
            &mut leak([raw::PacketMetadata::EMPTY; 4])[..],
            buf(4096),
            &mut leak([raw::PacketMetadata::EMPTY; 4])[..],
            buf(4096),
        )
    };
    let (sa, sb) = (raw_socket(a), raw_socket(b));
    let packet = |len: usize| {
        let mut p = vec![0u8; len];
        Ipv6Repr {
            src_addr: ip6(2),
            dst_addr: ip6(3),
            next_header: IpProtocol::from(253),
            payload_len: len - 40,
            hop_limit: 64,
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut p[..]));
        fill_pattern(7, 0, &mut p[40..]);
        p
    };
    let at_mtu = packet(1500);
    assert_eq!(
        poll_once(sa.send(&packet(1501))),
        Poll::Ready(Err(raw::SendError::PacketTooLarge))
    );
    let got = ex
        .try_run_until(
            async {
                sa.send(&at_mtu).await.unwrap();
                let mut rx = vec![0u8; 4096];
                let n = sb.recv(&mut rx).await.unwrap();
                rx.truncate(n);
                rx
            },
            LIMIT,
        )
        .expect("raw packet at the MTU lost");
    assert_eq!(got, at_mtu);
}

/// With fragmentation: large datagrams both ways, back to back, and a large ping.
#[cfg(feature = "ipv4-fragmentation")]
mod fragmentation {
    use super::*;

    #[test]
    fn datagrams_larger_than_the_mtu_arrive_intact_both_ways() {
        let ex = Executor::new();
        let (a, b, link) = ethernet(&ex);
        spawn_big_echo(&ex, b);
        let s = bound_udp(a, 0);
        let peer = IpEndpoint::new(ip4(3).into(), 7);
        // A to B and, by the echo, B to A: 4000 bytes, 65000 if the buffers allow, and the
        // largest they allow.
        let sizes = [1473, 2000, 4000, 65_000, UDP_V4_MAX];
        let sizes: Vec<usize> = sizes.into_iter().filter(|&n| n <= UDP_V4_MAX).collect();
        for &len in &sizes {
            echo_round(&ex, &s, peer, len);
        }
        // They went as fragments no larger than a frame.
        let frames = link.captured();
        assert!(frames.iter().all(|f| f.data.len() <= 1514));
        let fragments = frames
            .iter()
            .filter(|f| {
                f.data.len() > 34 && f.data[12..14] == [0x08, 0x00] && {
                    let flags = u16::from_be_bytes([f.data[20], f.data[21]]);
                    flags & 0x2000 != 0 || flags & 0x1fff != 0
                }
            })
            .count();
        // 1480 bytes of IP payload per fragment (UDP header included), both ways.
        let expected: usize = sizes.iter().map(|n| (n + 8).div_ceil(1480)).sum();
        assert_eq!(fragments, 2 * expected);
    }

    #[test]
    fn large_datagrams_queued_back_to_back_all_arrive() {
        let ex = Executor::new();
        let (a, b, _link) = ethernet(&ex);
        back_to_back(&ex, a, b);
    }

    #[test]
    fn large_datagrams_queued_back_to_back_all_arrive_on_an_ip_medium_link() {
        let ex = Executor::new();
        let (a, b, _link) = stacks(
            &ex,
            LinkConfig::ip(),
            Endpoint::Ip,
            Endpoint::Ip,
            dual_config,
        );
        back_to_back(&ex, a, b);
    }

    /// Two sockets of A queue two datagrams each before the runner sends any: smoltcp has one
    /// fragmentation buffer, and must not start the next datagram before the last fragment of
    /// the previous one is out. All four reach B intact.
    fn back_to_back(ex: &Executor<'_>, a: Stack<'static>, b: Stack<'static>) {
        let rx = bound_udp(b, 9);
        let senders = [bound_udp(a, 0), bound_udp(a, 0)];
        let peer = IpEndpoint::new(ip4(3).into(), 9);
        let mut got = ex
            .try_run_until(
                async {
                    for seed in 0..4u8 {
                        let mut d = vec![0u8; 4000 + usize::from(seed)];
                        fill_pattern(seed, 0, &mut d);
                        let s = &senders[usize::from(seed % 2)];
                        assert_eq!(poll_once(s.send_to(&d, peer)), Poll::Ready(Ok(())));
                    }
                    let mut got = Vec::new();
                    let mut tmp = vec![0u8; ROOM];
                    for _ in 0..4 {
                        let (n, _) = rx.recv_from(&mut tmp).await.unwrap();
                        got.push(tmp[..n].to_vec());
                    }
                    got
                },
                LIMIT,
            )
            .expect("datagrams queued back to back were lost");
        got.sort_by_key(|d| d.len());
        for (seed, d) in got.iter().enumerate() {
            assert_eq!(d.len(), 4000 + seed);
            assert_eq!(check_pattern(seed as u8, 0, d), Ok(()), "datagram {seed}");
        }
    }

    #[test]
    fn ping_of_2000_bytes_is_answered() {
        let ex = Executor::new();
        let (a, _b, _link) = ethernet(&ex);
        let mut p = pinger(a);
        let payload: Vec<u8> = (0..2000).map(|i| (i * 7) as u8).collect();
        ping(&ex, &mut p, ip4(3).into(), &payload).expect("2000-byte ping");
    }
}
