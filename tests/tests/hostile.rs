//! Hostile input that used to wedge or mislead a socket: a datagram from a host that answers
//! no neighbor solicitation, and datagrams from source addresses no host can have.

use std::cell::RefCell;
use std::rc::Rc;

use embassy_time::{Duration, Instant};
use ferronet::udp::{PacketMetadata, UdpSocket};
use ferronet::{EthernetAddress, IpAddress, IpEndpoint, Ipv4Address, Ipv6Address, Stack};
use ferronet_integration::peers::{Peer, parse_udp, udp_v4_frame, udp_v6_frame};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{LinkConfig, MAC_A, MAC_B, pair_ethernet};

const STACK_MAC: EthernetAddress = EthernetAddress(MAC_A);
const PEER_MAC: EthernetAddress = EthernetAddress(MAC_B);
/// Generous virtual time limit.
const LIMIT: Duration = Duration::from_secs(60);
/// How long the stack may keep asking for a silent neighbor before it gives up: three
/// solicitations a second apart, and some slack.
const GIVE_UP: Duration = Duration::from_secs(5);

fn metas(n: usize) -> &'static mut [PacketMetadata] {
    leak(vec![PacketMetadata::EMPTY; n]).as_mut_slice()
}

/// A dual-stack ferronet (192.0.2.2, 2001:db8::2) on one end, a scripted peer (192.0.2.1,
/// 2001:db8::1) on the other, and a UDP echo on port 7 of the stack that records the source
/// of every datagram it receives.
fn setup(ex: &Executor<'_>) -> (Stack<'static>, Peer, Rc<RefCell<Vec<IpAddress>>>) {
    let (dev_stack, dev_peer, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (stack, mut runner) = stack_on(dev_stack, dual_config(2), 0x5eed);
    ex.spawn(async move {
        runner.run().await;
    });
    let peer = Peer::new(PEER_MAC);
    peer.add_ipv4(ip4(1)).add_ipv6(ip6(1));
    peer.spawn(ex, dev_peer);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    ex.spawn(async move {
        let mut s = UdpSocket::new(stack, metas(16), buf(4096), metas(16), buf(4096));
        s.bind(7).unwrap();
        let mut tmp = [0u8; 1500];
        loop {
            let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
            log.borrow_mut().push(meta.endpoint.addr);
            s.send_to(&tmp[..n], meta.endpoint).await.unwrap();
        }
    });
    ex.run_for(Duration::from_millis(100));
    (stack, peer, seen)
}

fn from_v4(src: Ipv4Address, payload: &[u8]) -> Vec<u8> {
    udp_v4_frame(PEER_MAC, STACK_MAC, (src, 5000), (ip4(2), 7), payload)
}

fn from_v6(src: Ipv6Address, payload: &[u8]) -> Vec<u8> {
    udp_v6_frame(PEER_MAC, STACK_MAC, (src, 5000), (ip6(2), 7), payload)
}

/// Wait until the peer got the echo of `payload` addressed to `to`; returns when.
fn echo_to(ex: &Executor<'_>, peer: &Peer, to: IpAddress, payload: &'static [u8]) -> Instant {
    let peer = peer.clone();
    ex.try_run_until(
        async move {
            peer.wait_for(|rx| {
                rx.iter().find_map(|r| {
                    let d = parse_udp(&r.frame)?;
                    (d.dst == to
                        && d.dst_port == 5000
                        && d.payload == payload
                        && d.dst_mac == PEER_MAC)
                        .then_some(r.time)
                })
            })
            .await
        },
        LIMIT,
    )
    .expect("no echo")
}

/// One datagram from an on-link address that answers no ARP (or neighbor solicitation) used
/// to wedge the echo: its answer stayed at the head of the socket's queue forever and every
/// later answer behind it. Now the stack gives the silent neighbor up after a few seconds.
fn silent_neighbor_does_not_wedge(silent: IpAddress, legit: IpAddress) {
    let ex = Executor::new();
    let (_stack, peer, seen) = setup(&ex);
    let frame = |src: IpAddress, payload: &[u8]| match (src, legit) {
        (IpAddress::Ipv4(s), _) => from_v4(s, payload),
        (IpAddress::Ipv6(s), _) => from_v6(s, payload),
    };
    let start = Instant::now();
    peer.send(frame(silent, b"from nobody"));
    ex.run_for(Duration::from_millis(10));
    peer.send(frame(legit, b"hello"));
    let answered = echo_to(&ex, &peer, legit, b"hello");
    assert!(
        answered - start <= GIVE_UP,
        "answered after {:?}",
        answered - start
    );
    assert_eq!(*seen.borrow(), vec![silent, legit]);

    // The answer to the silent address went to the stack's own link address (nowhere).
    let to_silent: Vec<_> = peer
        .received()
        .iter()
        .filter_map(|r| parse_udp(&r.frame))
        .filter(|d| d.dst == silent)
        .collect();
    assert_eq!(to_silent.len(), 1, "{to_silent:?}");
    assert_eq!(to_silent[0].dst_mac, STACK_MAC);

    // Later datagrams are answered at once, also on another socket sharing nothing.
    let t = Instant::now();
    peer.send(frame(legit, b"again"));
    let again = echo_to(&ex, &peer, legit, b"again");
    assert!(again - t < Duration::from_millis(100), "{:?}", again - t);
}

#[test]
fn silent_ipv4_neighbor_does_not_wedge_a_udp_socket() {
    silent_neighbor_does_not_wedge(ip4(99).into(), ip4(1).into());
}

#[test]
fn silent_ipv6_neighbor_does_not_wedge_a_udp_socket() {
    silent_neighbor_does_not_wedge(ip6(0x99).into(), ip6(1).into());
}

/// Giving up drops only what waited: the next datagram for that address asks for it afresh
/// (as Linux does after a failed resolution), so a host whose answers were merely lost, or
/// that comes back, is reachable again at once.
#[test]
fn a_neighbor_given_up_is_asked_for_again_by_the_next_datagram() {
    let ex = Executor::new();
    let (_stack, peer, _seen) = setup(&ex);
    let late = ip4(77);
    peer.send(from_v4(late, b"first"));
    ex.run_for(GIVE_UP);
    // Now it answers ARP.
    peer.add_ipv4(late);
    peer.send(from_v4(late, b"second"));
    echo_to(&ex, &peer, late.into(), b"second");
    // The first answer went nowhere; the second to the host's own link address.
    let answers: Vec<_> = peer
        .received()
        .iter()
        .filter_map(|r| parse_udp(&r.frame))
        .filter(|d| d.dst == IpAddress::from(late))
        .map(|d| (d.payload, d.dst_mac))
        .collect();
    assert_eq!(
        answers,
        vec![
            (b"first".to_vec(), STACK_MAC),
            (b"second".to_vec(), PEER_MAC)
        ]
    );
}

/// Datagrams whose source no host can have are dropped before any socket sees them
/// (RFC 1122 3.2.1.3, RFC 4291 2.5.3); the echo used to get them and fail to answer.
#[test]
fn impossible_source_addresses_never_reach_a_socket() {
    let ex = Executor::new();
    let (_stack, peer, seen) = setup(&ex);
    for src in [
        Ipv4Address::UNSPECIFIED,
        Ipv4Address::new(127, 0, 0, 1),
        Ipv4Address::new(127, 1, 2, 3),
        ip4(2),
        ip4(0),
        ip4(255),
        Ipv4Address::new(224, 0, 0, 1),
        Ipv4Address::BROADCAST,
    ] {
        peer.send(from_v4(src, b"bogus"));
    }
    for src in [Ipv6Address::LOCALHOST, ip6(2), Ipv6Address::UNSPECIFIED] {
        peer.send(from_v6(src, b"bogus"));
    }
    ex.run_for(Duration::from_millis(100));
    assert!(seen.borrow().is_empty(), "{:?}", seen.borrow());
    assert!(
        !peer
            .received()
            .iter()
            .any(|r| parse_udp(&r.frame).is_some_and(|d| d.payload == b"bogus")),
        "an impossible source was answered"
    );
    // Real hosts still get through, on both families.
    peer.send(from_v4(ip4(1), b"v4"));
    echo_to(&ex, &peer, ip4(1).into(), b"v4");
    peer.send(from_v6(ip6(1), b"v6"));
    echo_to(&ex, &peer, ip6(1).into(), b"v6");
    assert_eq!(*seen.borrow(), vec![IpAddress::from(ip4(1)), ip6(1).into()]);
}

/// The check follows the stack's addresses when they change at run time: the new address is
/// refused as a source, the old one (now any host's) is answered. The stack keeps its copy of
/// the addresses and refreshes it with the configuration.
#[test]
fn the_source_check_follows_a_changed_address() {
    let ex = Executor::new();
    let (stack, peer, seen) = setup(&ex);
    stack.set_config_v4(ferronet::ConfigV4::Static(v4_config(3)));
    ex.run_for(Duration::from_millis(100));
    let to_new = |src: Ipv4Address, payload: &[u8]| {
        udp_v4_frame(PEER_MAC, STACK_MAC, (src, 5000), (ip4(3), 7), payload)
    };
    peer.send(to_new(ip4(3), b"bogus"));
    ex.run_for(Duration::from_millis(100));
    assert!(seen.borrow().is_empty(), "{:?}", seen.borrow());
    // The old address is now a host like any other.
    peer.add_ipv4(ip4(2));
    peer.send(to_new(ip4(2), b"old"));
    echo_to(&ex, &peer, ip4(2).into(), b"old");
    assert_eq!(*seen.borrow(), vec![IpAddress::from(ip4(2))]);
}

/// A SYN from an address that never answers (spoofed) leaves the listening socket half-open.
/// It used to stay so until the application's timeout, or forever: a few spoofed SYNs kept a
/// server unreachable. Now it listens again after `HALF_OPEN_TIMEOUT`.
#[test]
fn spoofed_syns_do_not_keep_a_server_unreachable() {
    use ferronet::tcp::{HALF_OPEN_TIMEOUT, TcpSocket};
    use ferronet_integration::peers::ipv4_frame;
    use ferronet_sim::switch::Switch;
    use smoltcp::wire::{IpProtocol, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber};

    let ex = Executor::new();
    let switch = Switch::new(LinkConfig::default());
    let server_mac = [2, 0, 0, 0, 0, 0x10];
    let (server, mut runner_s) = stack_on(
        switch.port(server_mac).unwrap(),
        ferronet::Config::ipv4_static(v4_config(2)),
        1,
    );
    let (client, mut runner_c) = stack_on(
        switch.port([2, 0, 0, 0, 0, 0x11]).unwrap(),
        ferronet::Config::ipv4_static(v4_config(3)),
        2,
    );
    ex.spawn(async move { runner_s.run().await });
    ex.spawn(async move { runner_c.run().await });
    let attacker = Peer::new(EthernetAddress([2, 0, 0, 0, 0, 0x12]));
    attacker.spawn(&ex, switch.port([2, 0, 0, 0, 0, 0x12]).unwrap());

    let accepted = Rc::new(RefCell::new(None));
    let done = accepted.clone();
    ex.spawn(async move {
        let mut s = TcpSocket::new(server, buf(1024), buf(1024));
        s.set_timeout(Some(Duration::from_secs(60)));
        s.accept(80).await.unwrap();
        *done.borrow_mut() = Some((Instant::now(), s.remote_endpoint()));
        let mut b = [0u8; 4];
        embedded_io_async::Read::read_exact(&mut s, &mut b)
            .await
            .unwrap();
        embedded_io_async::Write::write_all(&mut s, &b)
            .await
            .unwrap();
        s.flush().await.unwrap();
    });
    ex.run_for(Duration::from_millis(10));

    let syn = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        control: TcpControl::Syn,
        seq_number: TcpSeqNumber(1000),
        ack_number: None,
        window_len: 1024,
        window_scale: None,
        max_seg_size: Some(1460),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let spoofed = ip4(99);
    let ip = Ipv4Repr {
        src_addr: spoofed,
        dst_addr: ip4(2),
        next_header: IpProtocol::Tcp,
        payload_len: syn.buffer_len(),
        hop_limit: 64,
    };
    let caps = smoltcp::phy::ChecksumCapabilities::default();
    attacker.send(ipv4_frame(
        EthernetAddress([2, 0, 0, 0, 0, 0x12]),
        EthernetAddress(server_mac),
        ip,
        |b| {
            syn.emit(
                &mut TcpPacket::new_unchecked(b),
                &spoofed.into(),
                &ip4(2).into(),
                &caps,
            )
        },
    ));
    let t0 = Instant::now();
    ex.run_for(Duration::from_millis(100));
    assert!(accepted.borrow().is_none());

    // A real client connects, retrying every half second while it is refused (the socket is
    // half-open with the spoofed SYN), and is served once the half-open connection is dropped.
    let mut c = TcpSocket::new(client, buf(1024), buf(1024));
    c.set_timeout(Some(Duration::from_secs(30)));
    let echoed = ex
        .try_run_until(
            async move {
                let mut attempts = 0;
                while let Err(e) = c.connect((ip4(2), 80)).await {
                    assert_eq!(e, ferronet::tcp::ConnectError::ConnectionReset);
                    attempts += 1;
                    assert!(attempts < 20, "still refused after {attempts} attempts");
                    embassy_time::Timer::after(Duration::from_millis(500)).await;
                }
                embedded_io_async::Write::write_all(&mut c, b"ping")
                    .await
                    .unwrap();
                let mut b = [0u8; 4];
                embedded_io_async::Read::read_exact(&mut c, &mut b)
                    .await
                    .unwrap();
                b
            },
            LIMIT,
        )
        .expect("the real client was never served");
    assert_eq!(&echoed, b"ping");
    let (at, remote) = accepted.borrow().unwrap();
    assert_eq!(remote.map(|e| e.addr), Some(ip4(3).into()));
    assert!(
        at - t0 <= HALF_OPEN_TIMEOUT + Duration::from_secs(4),
        "{:?}",
        at - t0
    );
}

/// A blind reset: an RST from a spoofed peer with a sequence number inside the window but not
/// the one expected used to reset the connection (smoltcp accepts any in-window RST). Only an
/// exact match resets it now (RFC 5961 section 3); one that is not exact gets a challenge ACK
/// (3.2), at most one a second (section 7).
#[test]
fn only_an_exactly_matching_rst_resets_a_connection() {
    use ferronet::tcp::{Error, TcpSocket};
    use ferronet_integration::peers::ipv4_frame;
    use ferronet_sim::switch::Switch;
    use smoltcp::wire::{
        EthernetFrame, IpProtocol, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr,
        TcpSeqNumber,
    };

    let ex = Executor::new();
    let switch = Switch::new(LinkConfig::default());
    let (mac_a, mac_b, mac_x) = (
        [2, 0, 0, 0, 0, 0x21],
        [2, 0, 0, 0, 0, 0x22],
        [2, 0, 0, 0, 0, 0x23],
    );
    let (a, mut runner_a) = stack_on(
        switch.port(mac_a).unwrap(),
        ferronet::Config::ipv4_static(v4_config(2)),
        1,
    );
    let (b, mut runner_b) = stack_on(
        switch.port(mac_b).unwrap(),
        ferronet::Config::ipv4_static(v4_config(3)),
        2,
    );
    ex.spawn(async move { runner_a.run().await });
    ex.spawn(async move { runner_b.run().await });
    let attacker = Peer::new(EthernetAddress(mac_x));
    attacker.spawn(&ex, switch.port(mac_x).unwrap());
    switch.capture(true);

    let mut client = TcpSocket::new(a, buf(4096), buf(4096));
    let mut server = TcpSocket::new(b, buf(4096), buf(4096));
    let exchange = |client: &mut TcpSocket<'_>, server: &mut TcpSocket<'_>, word: &[u8]| {
        ex.try_run_until(
            async {
                use embedded_io_async::{Read, Write};
                let mut got = [0u8; 16];
                client.write_all(word).await.unwrap();
                server.read_exact(&mut got[..word.len()]).await.unwrap();
                server.write_all(&got[..word.len()]).await.unwrap();
                client.read_exact(&mut got[..word.len()]).await.unwrap();
                assert_eq!(&got[..word.len()], word);
            },
            LIMIT,
        )
        .expect("exchange");
    };
    let (acc, con) = ex
        .try_run_until(
            futures::future::join(server.accept(80), client.connect((ip4(3), 80))),
            LIMIT,
        )
        .unwrap();
    acc.unwrap();
    con.unwrap();
    exchange(&mut client, &mut server, b"hello");
    ex.run_for(Duration::from_millis(500));
    let client_port = client.local_endpoint().unwrap().port;

    // The segments (no RST) a stack sent from a port: when, where they end (the next
    // sequence number), what they acknowledge, how much data.
    let segments_from = |from: u8, port: u16| -> Vec<(embassy_time::Instant, u32, u32, usize)> {
        switch
            .captured()
            .iter()
            .filter_map(|f| {
                let eth = EthernetFrame::new_checked(&f.data[..]).ok()?;
                let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
                let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
                (ip.src_addr() == ip4(from) && tcp.src_port() == port && !tcp.rst()).then(|| {
                    (
                        f.time,
                        (tcp.seq_number()
                            + tcp.payload().len()
                            + usize::from(tcp.syn())
                            + usize::from(tcp.fin()))
                        .0 as u32,
                        tcp.ack_number().0 as u32,
                        tcp.payload().len(),
                    )
                })
            })
            .collect()
    };
    // What the client expects next: the end of the last segment the server sent it.
    let rcv_nxt = TcpSeqNumber(
        segments_from(3, 80)
            .last()
            .expect("segments from the server")
            .1 as i32,
    );

    let rst = |seq: TcpSeqNumber| {
        let repr = TcpRepr {
            src_port: 80,
            dst_port: client_port,
            control: TcpControl::Rst,
            seq_number: seq,
            ack_number: None,
            window_len: 0,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: ip4(3),
            dst_addr: ip4(2),
            next_header: IpProtocol::Tcp,
            payload_len: repr.buffer_len(),
            hop_limit: 64,
        };
        let caps = smoltcp::phy::ChecksumCapabilities::default();
        ipv4_frame(EthernetAddress(mac_x), EthernetAddress(mac_a), ip, |b| {
            repr.emit(
                &mut TcpPacket::new_unchecked(b),
                &ip4(3).into(),
                &ip4(2).into(),
                &caps,
            )
        })
    };
    let snd_nxt = segments_from(2, client_port).last().unwrap().1;

    // In the window, not exact: not a reset, but a challenge ACK (the connection's current
    // numbers), one for the three RSTs that came within a second.
    let t_rst = embassy_time::Instant::now();
    for off in [1usize, 100, 1000] {
        attacker.send(rst(rcv_nxt + off));
    }
    ex.run_for(Duration::from_millis(100));
    assert_eq!(client.state(), ferronet::tcp::State::Established);
    let challenges = |since: embassy_time::Instant| -> Vec<(u32, u32)> {
        segments_from(2, client_port)
            .into_iter()
            .filter(|&(at, _, _, len)| at >= since && len == 0)
            .map(|(_, seq, ack, _)| (seq, ack))
            .collect()
    };
    assert_eq!(challenges(t_rst), [(snd_nxt, rcv_nxt.0 as u32)]);
    // A second later, the next wrong RST gets the next one.
    ex.run_for(Duration::from_secs(1));
    let t_rst = embassy_time::Instant::now();
    attacker.send(rst(rcv_nxt + 7));
    ex.run_for(Duration::from_millis(100));
    assert_eq!(challenges(t_rst), [(snd_nxt, rcv_nxt.0 as u32)]);
    assert_eq!(client.state(), ferronet::tcp::State::Established);
    exchange(&mut client, &mut server, b"still here");

    // The exact one resets it. (What the client expects moved on by the exchange.)
    ex.run_for(Duration::from_millis(500));
    let rcv_nxt = rcv_nxt + b"still here".len();
    attacker.send(rst(rcv_nxt));
    ex.run_for(Duration::from_millis(100));
    assert_eq!(client.state(), ferronet::tcp::State::Closed);
    let mut tmp = [0u8; 4];
    let r = ex.try_run_until(client.read(&mut tmp), LIMIT).unwrap();
    assert_eq!(r, Err(Error::ConnectionReset));
}

/// A gateway that is not a unicast address (0.0.0.0, 255.255.255.255, a multicast address, as
/// a DHCP server or an application may name) gets no default route: smoltcp 0.14 panicked
/// when a socket waiting for its next hop had it look such a gateway up (found by fuzzing).
#[test]
fn non_unicast_gateways_are_ignored() {
    use ferronet::udp::SendError;
    use ferronet::{ConfigV4, Ipv4Cidr, StaticConfigV4};
    let ex = Executor::new();
    let (stack, _peer, _seen) = setup(&ex);
    let config = |gateway: Ipv4Address| {
        ConfigV4::Static(StaticConfigV4 {
            address: Ipv4Cidr::new(ip4(2), 24),
            gateway: Some(gateway),
            dns_servers: Default::default(),
        })
    };
    let far = IpEndpoint::new(Ipv4Address::new(198, 51, 100, 9).into(), 9);
    let mut s = UdpSocket::new(stack, metas(4), buf(1024), metas(4), buf(1024));
    s.bind(0).unwrap();
    // A gateway that never answers: the datagram waits for it.
    stack.set_config_v4(config(ip4(77)));
    ex.try_run_until(s.send_to(b"far away", far), LIMIT)
        .unwrap()
        .unwrap();
    ex.run_for(Duration::from_millis(500));
    for bad in [
        Ipv4Address::BROADCAST,
        Ipv4Address::UNSPECIFIED,
        Ipv4Address::new(224, 0, 0, 1),
    ] {
        stack.set_config_v4(config(bad));
        ex.run_for(Duration::from_secs(3));
        assert_eq!(
            ex.try_run_until(s.send_to(b"far away", far), LIMIT)
                .unwrap(),
            Err(SendError::NoRoute),
            "gateway {bad}"
        );
    }
    // A real gateway again: routed.
    stack.set_config_v4(config(ip4(1)));
    ex.try_run_until(s.send_to(b"far away", far), LIMIT)
        .unwrap()
        .unwrap();
    ex.run_for(Duration::from_secs(1));
}
