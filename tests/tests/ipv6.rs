//! IPv6: static addressing between two stacks, SLAAC from a scripted router (router
//! solicitation, advertisement, EUI-64 address, default route, link-local address), and dual
//! stack.

use embassy_time::{Duration, Instant, with_timeout};
use ferronet::tcp::TcpSocket;
use ferronet::udp::{PacketMetadata, UdpSocket};
use ferronet::{
    Config, EthernetAddress, IpAddress, IpEndpoint, Ipv6Address, Ipv6Cidr, Stack, StaticConfigV6,
};
use ferronet_integration::peers::{
    ALL_ROUTERS, Peer, Router, RouterConfig, eui64_address, icmpv6_frame, link_local,
    multicast_mac_v6, parse_udp, solicited_node, with_icmpv6,
};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{LinkConfig, MAC_A, MAC_B, pair_ethernet};
use futures::future::join;
use smoltcp::wire::{Icmpv6Repr, NdiscNeighborFlags, NdiscRepr};

/// Generous virtual time limit: anything that needs longer has hung.
const LIMIT: Duration = Duration::from_secs(60);

const STACK_MAC: EthernetAddress = EthernetAddress(MAC_A);
const PEER_MAC: EthernetAddress = EthernetAddress(MAC_B);

fn metas(n: usize) -> &'static mut [PacketMetadata] {
    Box::leak(vec![PacketMetadata::EMPTY; n].into_boxed_slice())
}

fn udp_socket(stack: Stack<'static>) -> UdpSocket<'static> {
    UdpSocket::new(stack, metas(8), buf(4096), metas(8), buf(4096))
}

/// A TCP echo server on `port` of `stack`, for one connection.
async fn tcp_echo_once(stack: Stack<'static>, port: u16) -> IpEndpoint {
    let mut s = TcpSocket::new(stack, buf(4096), buf(4096));
    s.accept(port).await.unwrap();
    let remote = s.remote_endpoint().unwrap();
    let mut tmp = [0u8; 512];
    loop {
        let n = s.read(&mut tmp).await.unwrap();
        if n == 0 {
            break;
        }
        let mut off = 0;
        while off < n {
            off += s.write(&tmp[off..n]).await.unwrap();
        }
    }
    s.close();
    s.flush().await.unwrap();
    remote
}

/// Connect to `to`, send `data`, close, and return what came back and the local endpoint.
async fn tcp_roundtrip(
    stack: Stack<'static>,
    to: IpEndpoint,
    data: &[u8],
) -> (Vec<u8>, IpEndpoint) {
    let mut s = TcpSocket::new(stack, buf(4096), buf(4096));
    s.connect(to).await.unwrap();
    let local = s.local_endpoint().unwrap();
    let mut off = 0;
    while off < data.len() {
        off += s.write(&data[off..]).await.unwrap();
    }
    s.close();
    let mut out = Vec::new();
    let mut tmp = [0u8; 512];
    loop {
        let n = s.read(&mut tmp).await.unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&tmp[..n]);
    }
    (out, local)
}

/// UDP echo of one datagram on `port`.
async fn udp_echo_once(stack: Stack<'static>, port: u16) {
    let mut s = udp_socket(stack);
    s.bind(port).unwrap();
    let mut tmp = [0u8; 1500];
    let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
    s.send_to(&tmp[..n], meta.endpoint).await.unwrap();
    s.flush().await;
}

#[test]
fn static_ipv6_udp_and_tcp_between_two_stacks() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    assert_eq!(a.config_v6().unwrap().address, Ipv6Cidr::new(ip6(2), 64));
    assert_eq!(b.config_v6().unwrap().address, Ipv6Cidr::new(ip6(3), 64));

    // UDP.
    ex.spawn(udp_echo_once(b, 5353));
    let (data, from, local) = ex
        .try_run_until(
            async {
                let mut s = udp_socket(a);
                s.bind(4000).unwrap();
                s.send_to(b"over ipv6", IpEndpoint::new(ip6(3).into(), 5353))
                    .await
                    .unwrap();
                let mut tmp = [0u8; 64];
                let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
                (tmp[..n].to_vec(), meta.endpoint, meta.local_address)
            },
            LIMIT,
        )
        .unwrap();
    assert_eq!(data, b"over ipv6");
    assert_eq!(from, IpEndpoint::new(ip6(3).into(), 5353));
    assert_eq!(local, Some(IpAddress::Ipv6(ip6(2))));

    // TCP, with more than one segment of data.
    let payload: Vec<u8> = (0..5000).map(|i| pattern(6, i)).collect();
    ex.spawn(async move {
        let remote = tcp_echo_once(b, 7).await;
        assert_eq!(remote.addr, IpAddress::Ipv6(ip6(2)));
    });
    let (echoed, local) = ex
        .try_run_until(
            tcp_roundtrip(a, IpEndpoint::new(ip6(3).into(), 7), &payload),
            LIMIT,
        )
        .unwrap();
    assert_eq!(local.addr, IpAddress::Ipv6(ip6(2)));
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload, "echoed data differs");
}

struct Slaac {
    stack: Stack<'static>,
    peer: Peer,
    router: Router,
}

fn slaac_setup(ex: &Executor<'_>) -> Slaac {
    slaac_setup_with(ex, RouterConfig::documentation())
}

fn slaac_setup_with(ex: &Executor<'_>, config: RouterConfig) -> Slaac {
    let (dev_stack, dev_peer, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (stack, mut runner) = stack_on(dev_stack, Config::slaac(), 0x51aa);
    ex.spawn(async move {
        runner.run().await;
    });
    let router = Router::new(PEER_MAC, config);
    let peer = Peer::new(PEER_MAC);
    peer.with_router(&router);
    peer.spawn(ex, dev_peer);
    Slaac {
        stack,
        peer,
        router,
    }
}

/// 2001:db8:1::/64 + EUI-64 of the stack's MAC: 2001:db8:1::ff:fe00:1.
fn slaac_address() -> Ipv6Address {
    let a = eui64_address(Ipv6Address::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0), STACK_MAC);
    assert_eq!(a, Ipv6Address::new(0x2001, 0xdb8, 1, 0, 0, 0xff, 0xfe00, 1));
    a
}

/// Ping `dst` from the peer like `ping` does: an echo request every 200 ms until a reply comes
/// (smoltcp drops an automatic reply when it has to resolve the neighbor first). Returns the
/// (source, data) of the reply.
async fn ping(peer: &Peer, src: Ipv6Address, dst: Ipv6Address, seq: u16) -> (Ipv6Address, Vec<u8>) {
    let since = Instant::now();
    let req = Icmpv6Repr::EchoRequest {
        ident: 0x4242,
        seq_no: seq,
        data: b"are you there",
    };
    for _ in 0..5 {
        peer.send(icmpv6_frame(PEER_MAC, STACK_MAC, src, dst, 64, &req));
        let reply = peer.wait_for(|rx| {
            rx.iter().filter(|r| r.time >= since).find_map(|r| {
                with_icmpv6(&r.frame, |eth, ip, icmp| match icmp {
                    Icmpv6Repr::EchoReply {
                        ident: 0x4242,
                        seq_no,
                        data,
                    } if *seq_no == seq && ip.dst_addr == src && eth.dst_addr == PEER_MAC => {
                        Some((ip.src_addr, data.to_vec()))
                    }
                    _ => None,
                })
                .flatten()
            })
        });
        if let Ok(r) = with_timeout(Duration::from_millis(200), reply).await {
            return r;
        }
    }
    panic!("no echo reply from {dst}");
}

#[test]
fn slaac_configures_address_and_gateway_from_a_router_advertisement() {
    let ex = Executor::new();
    let s = slaac_setup(&ex);
    let stack = s.stack;
    assert_eq!(stack.config_v6(), None);
    let ll = link_local(STACK_MAC);
    assert_eq!(ll, Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1));

    // Nothing but the advertisement arrives: the configuration must come from it alone.
    ex.try_run_until(stack.wait_config_up(), LIMIT).expect(
        "SLAAC configuration must come up right after the router advertisement (the runner \
         must not sleep with an advertisement not yet taken into the configuration)",
    );
    let up_at = Instant::now();

    // The stack solicited from its link-local address, with its MAC, as RFC 4861 wants.
    let rs = s.router.solicitations();
    assert!(!rs.is_empty());
    assert_eq!(rs[0].ip.src_addr, ll);
    assert_eq!(rs[0].ip.dst_addr, ALL_ROUTERS);
    assert_eq!(rs[0].ip.hop_limit, 255);
    assert!(rs[0].has_lladdr);
    assert_eq!(rs[0].time, Instant::from_ticks(0));
    let ra_at = s.router.advertisements()[0];
    assert!(
        up_at - ra_at < Duration::from_millis(10),
        "configured {} ms after the advertisement",
        (up_at - ra_at).as_millis()
    );

    assert_eq!(
        stack.config_v6(),
        Some(StaticConfigV6 {
            address: Ipv6Cidr::new(slaac_address(), 64),
            gateway: Some(s.router.link_local()),
            dns_servers: heapless::Vec::new(),
        })
    );
    assert_eq!(stack.config_v4(), None);
    // One solicitation was enough.
    ex.run_for(Duration::from_secs(20));
    assert_eq!(s.router.solicitations().len(), 1);
    assert!(stack.config_v6().is_some());
}

#[test]
fn slaac_link_local_and_global_addresses_answer() {
    let ex = Executor::new();
    let s = slaac_setup(&ex);
    let stack = s.stack;
    let ll = link_local(STACK_MAC);
    let router_ll = s.router.link_local();

    // Neighbor solicitation for the link-local address (to its solicited-node group).
    let since = Instant::now();
    let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: ll,
        lladdr: Some(PEER_MAC.into()),
    });
    let group = solicited_node(ll);
    s.peer.send(icmpv6_frame(
        PEER_MAC,
        multicast_mac_v6(group),
        router_ll,
        group,
        255,
        &ns,
    ));
    let (flags, target, lladdr, src, dst) = ex
        .try_run_until(
            s.peer.wait_for(|rx| {
                rx.iter().filter(|r| r.time >= since).find_map(|r| {
                    with_icmpv6(&r.frame, |_, ip, icmp| match icmp {
                        Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                            flags,
                            target_addr,
                            lladdr,
                        }) => Some((*flags, *target_addr, *lladdr, ip.src_addr, ip.dst_addr)),
                        _ => None,
                    })
                    .flatten()
                })
            }),
            LIMIT,
        )
        .unwrap();
    assert_eq!(target, ll);
    assert_eq!(src, ll);
    assert_eq!(dst, router_ll);
    assert_eq!(lladdr, Some(STACK_MAC.into()));
    assert!(flags.contains(NdiscNeighborFlags::SOLICITED));

    // Echo to the link-local address.
    let (from, data) = ex
        .try_run_until(ping(&s.peer, router_ll, ll, 1), LIMIT)
        .unwrap();
    assert_eq!((from, data.as_slice()), (ll, &b"are you there"[..]));

    // The advertisement was answered at time 0; the traffic above woke the runner, so the
    // address is configured by now (see the previous test for configuration without it).
    ex.try_run_until(stack.wait_config_up(), LIMIT).unwrap();
    assert_eq!(
        stack.config_v6().map(|c| c.address),
        Some(Ipv6Cidr::new(slaac_address(), 64))
    );

    // Echo to the autoconfigured address.
    let (from, data) = ex
        .try_run_until(ping(&s.peer, router_ll, slaac_address(), 2), LIMIT)
        .unwrap();
    assert_eq!(
        (from, data.as_slice()),
        (slaac_address(), &b"are you there"[..])
    );

    // Off-link traffic goes to the router's MAC, from the autoconfigured address.
    let far = Ipv6Address::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 1);
    let since = Instant::now();
    let dgram = ex
        .try_run_until(
            async {
                let mut u = udp_socket(stack);
                u.bind(6000).unwrap();
                u.send_to(b"via the router", IpEndpoint::new(far.into(), 6001))
                    .await
                    .unwrap();
                s.peer
                    .wait_for(|rx| {
                        rx.iter()
                            .filter(|r| r.time >= since)
                            .find_map(|r| parse_udp(&r.frame))
                    })
                    .await
            },
            LIMIT,
        )
        .unwrap();
    assert_eq!(dgram.dst_mac, PEER_MAC);
    assert_eq!(dgram.src, IpAddress::Ipv6(slaac_address()));
    assert_eq!(dgram.dst, IpAddress::Ipv6(far));
    assert_eq!((dgram.src_port, dgram.dst_port), (6000, 6001));
    assert_eq!(dgram.payload, b"via the router");
}

#[test]
fn slaac_router_solicitation_is_retried() {
    let ex = Executor::new();
    let s = slaac_setup(&ex);
    s.router.set_silent(true);
    // RFC 4861 section 6.3.7: up to MAX_RTR_SOLICITATIONS (3) solicitations,
    // RTR_SOLICITATION_INTERVAL (4 s) apart, then silence.
    ex.run_for(Duration::from_secs(30));
    let times: Vec<u64> = s
        .router
        .solicitations()
        .iter()
        .map(|rs| rs.time.as_millis())
        .collect();
    assert_eq!(times, [0, 4_000, 8_000]);
    assert_eq!(s.stack.config_v6(), None);
}

#[test]
fn slaac_default_route_expires_with_the_router_lifetime() {
    let ex = Executor::new();
    let config = RouterConfig {
        router_lifetime: smoltcp::time::Duration::from_secs(60),
        ..RouterConfig::documentation()
    };
    let s = slaac_setup_with(&ex, config);
    let stack = s.stack;
    let ll = link_local(STACK_MAC);
    // Traffic after the advertisement wakes the runner, so the configuration comes up (see
    // slaac_configures_address_and_gateway_from_a_router_advertisement for without).
    ex.try_run_until(ping(&s.peer, s.router.link_local(), ll, 1), LIMIT)
        .unwrap();
    ex.try_run_until(stack.wait_config_up(), LIMIT).unwrap();
    assert_eq!(
        stack.config_v6().unwrap().gateway,
        Some(s.router.link_local())
    );
    let ra_at = s.router.advertisements()[0];

    // No more advertisements and no traffic: the default route goes when its 60 s are up; the
    // address (valid for a day) stays.
    ex.run_for(ra_at + Duration::from_secs(61) - Instant::now());
    assert_eq!(s.router.advertisements().len(), 1);
    assert_eq!(
        stack.config_v6(),
        Some(StaticConfigV6 {
            address: Ipv6Cidr::new(slaac_address(), 64),
            gateway: None,
            dns_servers: heapless::Vec::new(),
        }),
        "default route still there {} s after the advertisement",
        (Instant::now() - ra_at).as_secs()
    );
}

#[test]
fn dual_stack_udp_and_tcp_over_both_families_at_once() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    assert!(a.config_v4().is_some() && a.config_v6().is_some());

    // One UDP socket bound to a port only receives over both families.
    ex.spawn(async move {
        let mut s = udp_socket(b);
        s.bind(7000).unwrap();
        let mut tmp = [0u8; 256];
        for _ in 0..2 {
            let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
            s.send_to(&tmp[..n], meta.endpoint).await.unwrap();
        }
        // Dropping the socket discards datagrams still waiting for neighbor discovery.
        s.flush().await;
    });
    ex.spawn(async move {
        let remote = tcp_echo_once(b, 80).await;
        assert_eq!(remote.addr, IpAddress::Ipv4(ip4(2)));
    });
    ex.spawn(async move {
        let remote = tcp_echo_once(b, 81).await;
        assert_eq!(remote.addr, IpAddress::Ipv6(ip6(2)));
    });

    let v4_data: Vec<u8> = (0..3000).map(|i| pattern(4, i)).collect();
    let v6_data: Vec<u8> = (0..3000).map(|i| pattern(6, i)).collect();
    let (udp, (tcp4, tcp6)) = ex
        .try_run_until(
            join(
                async {
                    let mut s = udp_socket(a);
                    s.bind(7001).unwrap();
                    s.send_to(b"v4", IpEndpoint::new(ip4(3).into(), 7000))
                        .await
                        .unwrap();
                    s.send_to(b"v6", IpEndpoint::new(ip6(3).into(), 7000))
                        .await
                        .unwrap();
                    let mut got = Vec::new();
                    let mut tmp = [0u8; 64];
                    for _ in 0..2 {
                        let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
                        got.push((tmp[..n].to_vec(), meta.endpoint));
                    }
                    got.sort();
                    got
                },
                join(
                    tcp_roundtrip(a, IpEndpoint::new(ip4(3).into(), 80), &v4_data),
                    tcp_roundtrip(a, IpEndpoint::new(ip6(3).into(), 81), &v6_data),
                ),
            ),
            LIMIT,
        )
        .unwrap();
    assert_eq!(
        udp,
        [
            (b"v4".to_vec(), IpEndpoint::new(ip4(3).into(), 7000)),
            (b"v6".to_vec(), IpEndpoint::new(ip6(3).into(), 7000)),
        ]
    );
    assert!(tcp4.0 == v4_data, "TCP over IPv4 echoed data differs");
    assert_eq!(tcp4.1.addr, IpAddress::Ipv4(ip4(2)));
    assert!(tcp6.0 == v6_data, "TCP over IPv6 echoed data differs");
    assert_eq!(tcp6.1.addr, IpAddress::Ipv6(ip6(2)));
    // Let the echo tasks finish their asserts.
    ex.run_for(Duration::from_secs(5));
    assert_eq!(ex.pending_tasks(), 2, "only the two runners are left");
}
