//! Minimal reproductions of failures the fault matrix and the soak test found.

use std::pin::pin;

use embassy_time::{Duration, Timer};
use embedded_io_async::{Read, Write};
use ferronet::IpEndpoint;
use ferronet::tcp::{State, TcpSocket};
use ferronet_integration::faults::within;
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{Direction, Faults, LinkConfig};
use futures::future::{Either, join, select};

/// Found by the soak test (seed 0x50a1, 10 000 connections: one exchange reset). A server
/// with several sockets listening on one port (embassy-net's way to accept connections
/// concurrently) gets a client's retransmitted SYN — sent because the SYN-ACK was lost, or
/// duplicated or delayed on the way — while one listener already holds that connection in
/// SYN-RECEIVED. smoltcp 0.14 hands each segment to the first socket, in slot order, that
/// `accepts` it, and a listening socket accepts any SYN for its port; so when the other
/// listener sits in a lower slot, it takes the SYN, answers with a SYN-ACK of another initial
/// sequence number, and the two half-connections end in a reset of the client's connection.
/// The socket that holds the exact 4-tuple should get the segment first (RFC 9293 3.10.7).
#[test]
#[ignore = "smoltcp 0.14 gives a retransmitted SYN to another listening socket in a lower slot (upstream bug)"]
fn retransmitted_syn_goes_to_its_connection_not_to_another_listener() {
    let ex = Executor::new();
    let cfg = LinkConfig {
        latency: Duration::from_millis(1),
        ..LinkConfig::ethernet()
    };
    let (a, b, link) = spawn_pair(&ex, cfg);
    let port = 7;
    let server_ep = IpEndpoint::new(ip4(3).into(), port);
    let (mut rx0, mut tx0) = ([0u8; 1024], [0u8; 1024]);
    let (mut rx1, mut tx1) = ([0u8; 1024], [0u8; 1024]);
    let (mut rx2, mut tx2) = ([0u8; 1024], [0u8; 1024]);
    // Slot order on B: the DNS socket, then `lower`, then `holder`.
    let mut lower = TcpSocket::new(b, &mut rx0, &mut tx0);
    let mut holder = TcpSocket::new(b, &mut rx1, &mut tx1);
    let mut client = TcpSocket::new(a, &mut rx2, &mut tx2);
    client.set_timeout(Some(Duration::from_secs(20)));

    let run = async {
        // Fill both neighbor caches first (a connection to a closed port, reset at once).
        let (mut wrx, mut wtx) = ([0u8; 64], [0u8; 64]);
        let mut warm = TcpSocket::new(a, &mut wrx, &mut wtx);
        let _ = warm.connect(IpEndpoint::new(ip4(3).into(), 9)).await;
        drop(warm);

        // B's first SYN-ACK is lost: the client will send its SYN again.
        link.set_direction_faults(
            Direction::BToA,
            Faults {
                loss: 1.0,
                ..Faults::NONE
            },
        )
        .expect("valid faults");
        let server = async {
            holder.accept(port).await.expect("accept");
            let mut req = [0u8; 4];
            holder.read_exact(&mut req).await.expect("request");
            assert_eq!(&req, b"ping");
            holder.write_all(b"pong").await.expect("answer");
            holder.flush().await.expect("flush");
        };
        let client_side = async {
            client.connect(server_ep).await.expect("connect");
            client.write_all(b"ping").await.expect("request");
            let mut answer = [0u8; 4];
            client
                .read_exact(&mut answer)
                .await
                .expect("the answer, not a reset");
            assert_eq!(&answer, b"pong");
        };
        let other_listener = async {
            // Once the first SYN is in, the link heals and a second socket listens, in the
            // lower slot.
            Timer::after_millis(100).await;
            link.set_direction_faults(Direction::BToA, Faults::NONE)
                .expect("valid faults");
            lower.accept(port).await
        };
        match select(pin!(join(server, client_side)), pin!(other_listener)).await {
            Either::Left(_) => {}
            Either::Right((r, _)) => {
                panic!("the retransmitted SYN went to the other listener (accept: {r:?})")
            }
        }
    };
    ex.try_run_until(
        within("the exchange", Duration::from_secs(30), run),
        Duration::from_secs(60),
    )
    .expect("no hang");
    assert_eq!(
        lower.state(),
        State::Listen,
        "the other listener still waits"
    );
}

/// Found by the goodput benchmark (`crates/ferronet-bench/GOODPUT.md`, "The wedge"). After a
/// retransmission timeout a sender resends from a hole up to its FIN; the receiver already
/// holds the data after the hole, so the last segment carries old data and the FIN, which is
/// new. smoltcp 0.14 measures the segment without its FIN, finds that it "ends at RCV.NXT",
/// answers it with a bare ACK and drops the FIN; a smoltcp sender then never resends the FIN
/// (three duplicate ACKs with only the FIN outstanding stop its timer), and the reader waits
/// for the end of the stream forever. ferronet passes such a FIN to smoltcp without the old
/// data (`stale_fin`).
///
/// Here the peer is scripted: it sends two segments, waits for their ACK, then sends the
/// second one again with a FIN and nothing more (no retransmission). The stack must take the
/// FIN: the reader sees the end of the stream and the FIN is acknowledged.
#[test]
fn a_fin_carried_with_old_data_ends_the_stream() {
    use ferronet::EthernetAddress;
    use ferronet_integration::peers::{Peer, Received, TcpSegment, parse_ipv4, tcp_v4_frame};
    use ferronet_sim::link::{MAC_A, MAC_B, pair_ethernet};
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{TcpControl, TcpPacket, TcpRepr};

    const PEER_PORT: u16 = 40000;
    const ISS: u32 = 1000;
    let ex = Executor::new();
    let (dev_stack, dev_peer, _link) = pair_ethernet(LinkConfig::default()).expect("link");
    let (stack, mut runner) = stack_on(dev_stack, ferronet::Config::ipv4_static(v4_config(2)), 7);
    ex.spawn(async move { runner.run().await });
    let peer = Peer::new(EthernetAddress(MAC_B));
    peer.add_ipv4(ip4(9));
    peer.spawn(&ex, dev_peer);

    let caps = ChecksumCapabilities::default();
    let segment = |seq: u32, ack: Option<u32>, control: TcpControl, payload: &[u8]| {
        let segment = TcpSegment {
            control,
            seq,
            ack,
            payload,
        };
        let (peer_ep, stack_ep) = ((ip4(9), PEER_PORT), (ip4(2), 80));
        tcp_v4_frame(
            EthernetAddress(MAC_B),
            EthernetAddress(MAC_A),
            peer_ep,
            stack_ep,
            segment,
        )
    };
    // The stack's segments to the peer: (sequence number, acknowledgment, SYN).
    let from_stack = |frames: &[Received]| -> Vec<(u32, Option<u32>, bool)> {
        frames
            .iter()
            .filter_map(|r| {
                let (_, ip, payload) = parse_ipv4(&r.frame)?;
                let tcp = TcpPacket::new_checked(payload).ok()?;
                let tcp =
                    TcpRepr::parse(&tcp, &ip.src_addr.into(), &ip.dst_addr.into(), &caps).ok()?;
                (tcp.dst_port == PEER_PORT).then(|| {
                    (
                        tcp.seq_number.0 as u32,
                        tcp.ack_number.map(|a| a.0 as u32),
                        tcp.control == TcpControl::Syn,
                    )
                })
            })
            .collect()
    };
    let data: Vec<u8> = (0..200).map(|i| pattern(5, i)).collect();
    let mut server = TcpSocket::new(stack, buf(4096), buf(4096));

    let server_side = async {
        server.accept(80).await.expect("accept");
        let mut got = Vec::new();
        let mut tmp = [0u8; 512];
        loop {
            match server.read(&mut tmp).await.expect("read") {
                0 => break got,
                n => got.extend_from_slice(&tmp[..n]),
            }
        }
    };
    let peer_side = async {
        peer.send(segment(ISS, None, TcpControl::Syn, &[]));
        let their_iss = peer
            .wait_for(|r| {
                from_stack(r)
                    .into_iter()
                    .find(|&(_, ack, syn)| syn && ack == Some(ISS + 1))
                    .map(|(seq, _, _)| seq)
            })
            .await;
        let ack = Some(their_iss.wrapping_add(1));
        peer.send(segment(ISS + 1, ack, TcpControl::None, &[]));
        peer.send(segment(ISS + 1, ack, TcpControl::None, &data[..100]));
        peer.send(segment(ISS + 101, ack, TcpControl::None, &data[100..]));
        let acked = |n: u32| {
            move |r: &[Received]| from_stack(r).iter().any(|s| s.1 == Some(n)).then_some(())
        };
        within(
            "the ACK of the data",
            Duration::from_secs(2),
            peer.wait_for(acked(ISS + 201)),
        )
        .await;
        // The second segment again, now with the FIN: old data, new FIN.
        peer.send(segment(ISS + 101, ack, TcpControl::Fin, &data[100..]));
        within(
            "the ACK of the FIN",
            Duration::from_secs(5),
            peer.wait_for(acked(ISS + 202)),
        )
        .await;
    };
    let (got, ()) = ex
        .try_run_until(join(server_side, peer_side), Duration::from_secs(10))
        .expect("the stream ended and the FIN was acknowledged");
    assert_eq!(got, data);
    assert_eq!(server.state(), State::CloseWait);
}
