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

/// A TCP client scripted segment by segment (192.0.2.9, port 40000) talking to a ferronet
/// stack (192.0.2.2) that serves port 80.
mod scripted {
    use ferronet::{EthernetAddress, Stack};
    use ferronet_integration::peers::{Peer, Received, TcpSegment, parse_ipv4, tcp_v4_frame};
    use ferronet_integration::*;
    use ferronet_sim::executor::Executor;
    use ferronet_sim::link::{LinkConfig, MAC_A, MAC_B, pair_ethernet};
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{TcpControl, TcpPacket, TcpRepr};

    pub const PEER_PORT: u16 = 40000;
    /// The client's initial sequence number.
    pub const ISS: u32 = 1000;

    /// A segment the stack sent to the client.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Seen {
        pub seq: u32,
        pub ack: Option<u32>,
        pub control: TcpControl,
        pub len: usize,
        /// The window field as sent (no scaling with the small buffers of these tests).
        pub window: u16,
    }

    pub struct Client {
        pub peer: Peer,
        /// The stack's initial sequence number, once connected.
        pub their_iss: u32,
    }

    /// The stack and the client's peer, both running on `ex`.
    pub fn setup(ex: &Executor<'static>) -> (Stack<'static>, Peer) {
        let (dev_stack, dev_peer, _link) = pair_ethernet(LinkConfig::default()).expect("link");
        let (stack, mut runner) =
            stack_on(dev_stack, ferronet::Config::ipv4_static(v4_config(2)), 7);
        ex.spawn(async move { runner.run().await });
        let peer = Peer::new(EthernetAddress(MAC_B));
        peer.add_ipv4(ip4(9));
        peer.spawn(ex, dev_peer);
        (stack, peer)
    }

    /// The stack's segments to the client so far.
    pub fn seen(frames: &[Received]) -> Vec<Seen> {
        let caps = ChecksumCapabilities::default();
        frames
            .iter()
            .filter_map(|r| {
                let (_, ip, payload) = parse_ipv4(&r.frame)?;
                let tcp = TcpPacket::new_checked(payload).ok()?;
                let tcp =
                    TcpRepr::parse(&tcp, &ip.src_addr.into(), &ip.dst_addr.into(), &caps).ok()?;
                (tcp.dst_port == PEER_PORT).then(|| Seen {
                    seq: tcp.seq_number.0 as u32,
                    ack: tcp.ack_number.map(|a| a.0 as u32),
                    control: tcp.control,
                    len: tcp.payload.len(),
                    window: tcp.window_len,
                })
            })
            .collect()
    }

    impl Client {
        /// Connect to port 80 (SYN, the stack's SYN-ACK, ACK).
        pub async fn connect(peer: Peer) -> Self {
            peer.send(frame(ISS, None, TcpControl::Syn, &[]));
            let their_iss = peer
                .wait_for(|r| {
                    seen(r)
                        .into_iter()
                        .find(|s| s.control == TcpControl::Syn && s.ack == Some(ISS + 1))
                        .map(|s| s.seq)
                })
                .await;
            let client = Self { peer, their_iss };
            client.send(ISS + 1, client.rcv_nxt(0), TcpControl::None, &[]);
            client
        }

        /// What the client acknowledges after `n` bytes of the stack's data.
        pub fn rcv_nxt(&self, n: u32) -> u32 {
            self.their_iss.wrapping_add(1).wrapping_add(n)
        }

        /// Send a segment with the ACK flag set.
        pub fn send(&self, seq: u32, ack: u32, control: TcpControl, payload: &[u8]) {
            self.peer.send(frame(seq, Some(ack), control, payload));
        }

        /// How many segments from the stack so far `f` accepts.
        pub fn count(&self, f: impl Fn(&Seen) -> bool) -> usize {
            seen(&self.peer.received()).iter().filter(|s| f(s)).count()
        }

        /// Wait for a segment from the stack that `f` accepts.
        pub async fn wait_for(&self, f: impl Fn(&Seen) -> bool) -> Seen {
            self.wait_for_nth(1, f).await
        }

        /// Wait for the `n`th segment from the stack that `f` accepts.
        pub async fn wait_for_nth(&self, n: usize, f: impl Fn(&Seen) -> bool) -> Seen {
            self.peer
                .wait_for(|r| seen(r).into_iter().filter(|s| f(s)).nth(n - 1))
                .await
        }
    }

    fn frame(seq: u32, ack: Option<u32>, control: TcpControl, payload: &[u8]) -> Vec<u8> {
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
    }
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
    use scripted::{Client, ISS};
    use smoltcp::wire::TcpControl;

    let ex = Executor::new();
    let (stack, peer) = scripted::setup(&ex);
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
        let c = Client::connect(peer).await;
        let ack = c.rcv_nxt(0);
        c.send(ISS + 1, ack, TcpControl::None, &data[..100]);
        c.send(ISS + 101, ack, TcpControl::None, &data[100..]);
        let acked = |n: u32| move |s: &scripted::Seen| s.ack == Some(n);
        within(
            "the ACK of the data",
            Duration::from_secs(2),
            c.wait_for(acked(ISS + 201)),
        )
        .await;
        // The second segment again, now with the FIN: old data, new FIN.
        c.send(ISS + 101, ack, TcpControl::Fin, &data[100..]);
        within(
            "the ACK of the FIN",
            Duration::from_secs(5),
            c.wait_for(acked(ISS + 202)),
        )
        .await;
    };
    let (got, ()) = ex
        .try_run_until(join(server_side, peer_side), Duration::from_secs(10))
        .expect("the stream ended and the FIN was acknowledged");
    assert_eq!(got, data);
    assert_eq!(server.state(), State::CloseWait);
}

/// The sending side of the same wedge (`transfer_survives_loss_and_reordering`, seed 397 of
/// 1000). The stack has sent all its data and its FIN; the peer acknowledges the data but not
/// the FIN (it lost it, or dropped it as smoltcp does with a FIN that arrives after a hole),
/// and repeats that ACK. smoltcp 0.14 answers the third duplicate with a fast retransmission
/// that sends nothing (no data left) and stops its retransmission timer: the FIN was never
/// sent again and the connection never closed. ferronet withholds such duplicates after the
/// second (`lone_fin`), so the retransmission timer resends the FIN.
#[test]
fn a_lost_fin_is_sent_again_despite_duplicate_acks() {
    use scripted::{Client, ISS};
    use smoltcp::wire::TcpControl;

    let ex = Executor::new();
    let (stack, peer) = scripted::setup(&ex);
    let mut server = TcpSocket::new(stack, buf(4096), buf(4096));

    let server_side = async {
        server.accept(80).await.expect("accept");
        server.write_all(&[0x5a; 100]).await.expect("write");
        server.close();
        server.flush().await
    };
    let peer_side = async {
        let c = Client::connect(peer).await;
        let is_fin = |s: &scripted::Seen| s.control == TcpControl::Fin;
        let fin = within("the FIN", Duration::from_secs(2), c.wait_for(is_fin)).await;
        let fin_seq = fin.seq.wrapping_add(fin.len as u32);
        assert_eq!(fin_seq, c.rcv_nxt(100));
        // All data acknowledged, the FIN not: once, and then five duplicates.
        for _ in 0..6 {
            c.send(ISS + 1, fin_seq, TcpControl::None, &[]);
        }
        let again = within(
            "the FIN sent again",
            Duration::from_secs(10),
            c.wait_for_nth(2, is_fin),
        )
        .await;
        assert_eq!(again.seq.wrapping_add(again.len as u32), fin_seq);
        assert_eq!(again.len, 0, "only the FIN is left to send: {again:?}");
        c.send(ISS + 1, fin_seq.wrapping_add(1), TcpControl::None, &[]);
    };
    let (flushed, ()) = ex
        .try_run_until(join(server_side, peer_side), Duration::from_secs(20))
        .expect("the FIN was sent again and acknowledged");
    assert_eq!(flushed, Ok(()));
    assert_eq!(server.state(), State::FinWait2);
}

/// Found by the goodput benchmark (`crates/ferronet-bench/GOODPUT.md`, "Loss recovery"). When
/// a fast retransmission is lost too and every later segment already reached the peer (the
/// window is full, so no new duplicate ACKs come), smoltcp 0.14 waits for its retransmission
/// timeout, 1 s at least. ferronet probes it (`recovery`): with no ACK past the
/// retransmission within twice the round trip (200 ms before one was measured), smoltcp is
/// shown the duplicate ACKs that make it send the segment again.
///
/// Here the peer is scripted: it loses the first data segment, answers the rest with three
/// duplicate ACKs, then loses the fast retransmission as well and stays silent. The segment
/// must come a third time well before smoltcp's timeout.
#[test]
fn a_lost_fast_retransmission_is_sent_again_before_the_retransmission_timeout() {
    first_segment_is_resent_early(4, 3, 1);
}

/// Found by the goodput benchmark: with small windows (4 and 8 KiB socket buffers) too few
/// segments are in flight for three duplicate ACKs, so smoltcp 0.14 recovers every loss with
/// its retransmission timeout (1 s at least; goodput about 1 % at 1 % loss). ferronet arms its
/// probe at the first duplicate ACK (`recovery`, RFC 5827's early retransmit by time): with no
/// retransmission sent and no ACK of the missing segment within the probe timeout, smoltcp is
/// shown the duplicates that make it resend the segment.
///
/// Here the stack sends two segments; the peer loses the first and answers the second with a
/// single duplicate ACK. The first must come again well before smoltcp's timeout.
#[test]
fn a_loss_with_one_duplicate_ack_is_retransmitted_before_the_retransmission_timeout() {
    first_segment_is_resent_early(2, 1, 0);
}

/// The stack sends `segments` full segments; the scripted peer loses the first, answers with
/// `dups` duplicate ACKs, loses `lost` retransmissions of it too and stays silent. The next
/// one must come within 600 ms of the last thing that happened (smoltcp's own timeout: 1 s at
/// least), and the data then completes.
fn first_segment_is_resent_early(segments: u32, dups: usize, lost: usize) {
    first_segment_is_resent_early_then(segments, dups, lost, None, 600);
}

/// As [`first_segment_is_resent_early`]; with `then_lost` = `Some(k)` the peer, once the
/// first segment came again, acknowledges everything before segment `k` (from 0), which it
/// lost as well, and stays silent: segment `k` must come again within `bound_ms` of that ACK
/// (600 ms above).
fn first_segment_is_resent_early_then(
    segments: u32,
    dups: usize,
    lost: usize,
    then_lost: Option<u32>,
    bound_ms: u64,
) {
    use embassy_time::Instant;
    use scripted::{Client, ISS};
    use smoltcp::wire::TcpControl;

    let ex = Executor::new();
    let (stack, peer) = scripted::setup(&ex);
    // Full segments only (a shorter last one would wait for the ACKs: Nagle).
    let len = segments * 1460;
    let data: Vec<u8> = (0..len as usize).map(|i| pattern(9, i)).collect();
    let mut server = TcpSocket::new(stack, buf(4096), buf(8192));

    let server_side = async {
        server.accept(80).await.expect("accept");
        server.write_all(&data).await.expect("write");
        server.flush().await
    };
    let peer_side = async {
        let c = Client::connect(peer).await;
        let first = c.rcv_nxt(0);
        let is_first = move |s: &scripted::Seen| s.seq == first && s.len > 0;
        within(
            "all the data",
            Duration::from_secs(2),
            c.wait_for(|s| s.seq.wrapping_add(s.len as u32) == c.rcv_nxt(len)),
        )
        .await;
        // The first segment was lost: duplicates of the handshake's ACK.
        for _ in 0..dups {
            c.send(ISS + 1, first, TcpControl::None, &[]);
        }
        let mut last = Instant::now();
        for n in 0..lost {
            within(
                "a retransmission",
                Duration::from_secs(3),
                c.wait_for_nth(2 + n, is_first),
            )
            .await;
            last = Instant::now();
        }
        within(
            "the segment sent again",
            Duration::from_secs(3),
            c.wait_for_nth(2 + lost, is_first),
        )
        .await;
        if let Some(k) = then_lost {
            let lost_too = c.rcv_nxt(k * 1460);
            c.send(ISS + 1, lost_too, TcpControl::None, &[]);
            last = Instant::now();
            within(
                "the later lost segment sent again",
                Duration::from_secs(3),
                c.wait_for_nth(2, move |s| s.seq == lost_too && s.len > 0),
            )
            .await;
        }
        let waited = Instant::now() - last;
        assert!(
            waited < Duration::from_millis(bound_ms),
            "the lost segment waited {} ms, more than {bound_ms} ms (smoltcp's timeout is 1 s \
             at least)",
            waited.as_millis()
        );
        c.send(ISS + 1, c.rcv_nxt(len), TcpControl::None, &[]);
    };
    let (flushed, ()) = ex
        .try_run_until(join(server_side, peer_side), Duration::from_secs(10))
        .expect("the data was sent again and acknowledged");
    assert_eq!(flushed, Ok(()));
    assert_eq!(server.state(), State::Established);
}

/// Found while tracing the goodput benchmark: a loss among the segments sent after the
/// recovery point. NewReno ends a recovery at the ACK of everything sent before its first
/// retransmission (`recover`); when a segment sent after that is lost too and nothing more
/// can be sent (the peer's window is full, or the data is all sent), no duplicate ACK comes
/// and smoltcp 0.14 waits for its retransmission timeout, 1 s at least. ferronet arms its
/// probe on such an ACK when segments are still outstanding (`recovery`).
///
/// Here the stack sends five segments; the peer loses the first and the fifth, answers with
/// three duplicate ACKs, gets the fast retransmission of the first, acknowledges up to the
/// fifth and stays silent. The fifth must come again within 600 ms.
#[test]
fn a_loss_after_the_recovery_point_is_retransmitted_before_the_retransmission_timeout() {
    first_segment_is_resent_early_then(5, 3, 0, Some(4), 600);
}

/// Found by the goodput benchmark: on a LAN the round trip is shorter than the millisecond
/// that `recovery` measures it in, and such a sample (0 ms) was taken for "none measured", so
/// every early loss waited the 200 ms default probe timeout instead of the shortest, 10 ms
/// (4 KiB buffers, 100 Mbit/s, 0.2 ms, 1 % loss: 12.6 s of silence before retransmissions
/// per 8 MiB and 4.9 % of the link rate; 2.6 s and 18.4 % with the fix).
///
/// Here the scripted peer answers the handshake at once (a round trip of 0 ms of virtual
/// time), loses the first of two segments and answers the second with one duplicate ACK: the
/// first must come again within 50 ms.
#[test]
fn on_a_lan_a_loss_with_one_duplicate_ack_is_retransmitted_within_milliseconds() {
    first_segment_is_resent_early_then(2, 1, 0, None, 50);
}

/// Found by the goodput benchmark (`crates/ferronet-bench/GOODPUT.md`, "Loss recovery"): a
/// tail loss. When the last segments of a flight, or the peer's ACK of them, are lost and
/// nothing more is sent, no duplicate ACK comes at all, and smoltcp 0.14 waits for its
/// retransmission timeout, 1 s at least (4 KiB buffers at 1 % loss spent most of their time
/// so). ferronet probes the tail (`recovery`): with no ACK of the data sent within the probe
/// timeout, smoltcp is shown the last ACK again as duplicates and resends the first segment
/// not acknowledged.
///
#[test]
fn a_lost_ack_of_the_last_segments_is_probed_before_the_retransmission_timeout() {
    tail_is_probed(false);
}

/// As above, with the stack closing after the second flight: its last segment carries the
/// FIN (an HTTP response with `Connection: close`), and a loss there waited for smoltcp's
/// timeout too (the goodput benchmark's `download`, 64 KiB, 10 Mbit/s, seed 7: 44 % of the
/// link instead of 94 %).
#[test]
fn a_lost_ack_of_the_last_segments_and_the_fin_is_probed_before_the_retransmission_timeout() {
    tail_is_probed(true);
}

/// The stack sends two segments, which the peer acknowledges, then two more (with `close`,
/// then closes: the FIN rides on the last); the peer's ACK of those is lost and it stays
/// silent. The first of them must come again within 600 ms, and the data then completes.
fn tail_is_probed(close: bool) {
    use embassy_time::Instant;
    use scripted::{Client, ISS};
    use smoltcp::wire::TcpControl;

    let ex = Executor::new();
    let (stack, peer) = scripted::setup(&ex);
    let data: Vec<u8> = (0..4 * 1460).map(|i| pattern(13, i)).collect();
    let mut server = TcpSocket::new(stack, buf(4096), buf(8192));

    let server_side = async {
        server.accept(80).await.expect("accept");
        // Two flights: the second is written once the first is acknowledged.
        server.write_all(&data[..2 * 1460]).await.expect("write");
        server.flush().await.expect("flush");
        server.write_all(&data[2 * 1460..]).await.expect("write");
        if close {
            server.close();
        }
        server.flush().await
    };
    let peer_side = async {
        let c = Client::connect(peer).await;
        let ends_at = move |n: u32| move |s: &scripted::Seen| s.seq.wrapping_add(s.len as u32) == n;
        within(
            "the first flight",
            Duration::from_secs(2),
            c.wait_for(ends_at(c.rcv_nxt(2 * 1460))),
        )
        .await;
        c.send(ISS + 1, c.rcv_nxt(2 * 1460), TcpControl::None, &[]);
        within(
            "the second flight",
            Duration::from_secs(2),
            c.wait_for(ends_at(c.rcv_nxt(4 * 1460))),
        )
        .await;
        // Our ACK of the second flight is lost: silence.
        let last = Instant::now();
        let third = c.rcv_nxt(2 * 1460);
        let again = within(
            "a segment of the second flight sent again",
            Duration::from_secs(3),
            c.wait_for_nth(2, move |s| s.seq == third && s.len > 0),
        )
        .await;
        let waited = Instant::now() - last;
        assert!(
            waited < Duration::from_millis(600),
            "the tail waited {} ms for its retransmission (smoltcp's timeout is 1 s at least)",
            waited.as_millis()
        );
        assert_eq!(again.len, 1460);
        // The data, and with `close` the FIN.
        let fin = u32::from(close);
        c.send(ISS + 1, c.rcv_nxt(4 * 1460 + fin), TcpControl::None, &[]);
    };
    let (flushed, ()) = ex
        .try_run_until(join(server_side, peer_side), Duration::from_secs(10))
        .expect("the tail was sent again and acknowledged");
    assert_eq!(flushed, Ok(()));
    let state = if close {
        State::FinWait2
    } else {
        State::Established
    };
    assert_eq!(server.state(), state);
}

/// Found by the goodput benchmark (`crates/ferronet-bench/GOODPUT.md`, "Loss recovery"): a
/// window update lost after a zero window. The receive buffer fills before the application
/// reads, the stack advertises a zero window, the application reads, and the window update (an
/// ACK without data, which nothing retransmits) is lost: the sender learns of the open window
/// only from its zero-window probe (Linux: after 200 ms at least, smoltcp: 1 s at least), and
/// a transfer stood still for up to 1.2 s. ferronet sends the update again when nothing comes
/// from the peer within the probe timeout (`zero_window`).
///
/// Here the peer is scripted: it fills the stack's 2 KiB window, sees the zero window, ignores
/// the window update that follows the read and stays silent. The update must come again
/// within 600 ms, then stop once the peer sends data, which must arrive intact.
#[test]
fn a_lost_window_update_after_a_zero_window_is_sent_again() {
    use embassy_time::Instant;
    use scripted::{Client, ISS};
    use smoltcp::wire::TcpControl;

    let ex = Executor::new();
    let (stack, peer) = scripted::setup(&ex);
    let data: Vec<u8> = (0..3072).map(|i| pattern(11, i)).collect();
    let mut server = TcpSocket::new(stack, buf(2048), buf(512));
    let (go, read_now) = futures::channel::oneshot::channel::<()>();

    let server_side = async {
        server.accept(80).await.expect("accept");
        read_now.await.expect("the peer saw the zero window");
        let mut got = vec![0u8; data.len()];
        server.read_exact(&mut got).await.expect("read");
        got
    };
    let peer_side = async {
        let c = Client::connect(peer).await;
        let ack = c.rcv_nxt(0);
        c.send(ISS + 1, ack, TcpControl::None, &data[..1024]);
        c.send(ISS + 1025, ack, TcpControl::None, &data[1024..2048]);
        let full = ISS + 2049;
        let zero = within(
            "the zero window",
            Duration::from_secs(2),
            c.wait_for(|s| s.ack == Some(full) && s.window == 0),
        )
        .await;
        assert_eq!(zero.len, 0);
        go.send(()).expect("the server waits");
        let is_update = move |s: &scripted::Seen| s.ack == Some(full) && s.window > 0;
        let first = within(
            "the window update",
            Duration::from_secs(2),
            c.wait_for(is_update),
        )
        .await;
        let sent_at = Instant::now();
        // Lost: the peer stays silent. The update must come again, the same.
        let again = within(
            "the window update sent again",
            Duration::from_secs(3),
            c.wait_for_nth(2, is_update),
        )
        .await;
        let waited = Instant::now() - sent_at;
        assert!(
            waited < Duration::from_millis(600),
            "the window update came again after {} ms",
            waited.as_millis()
        );
        assert_eq!(again, first);
        // The peer sends the rest: no more copies of the update after it.
        c.send(full, ack, TcpControl::None, &data[2048..]);
        within(
            "the ACK of the rest",
            Duration::from_secs(2),
            c.wait_for(|s| s.ack == Some(ISS + 3073)),
        )
        .await;
        let before = c.count(is_update);
        Timer::after_secs(5).await;
        assert_eq!(
            c.count(is_update),
            before,
            "copies of the update after the data"
        );
    };
    let (got, ()) = ex
        .try_run_until(join(server_side, peer_side), Duration::from_secs(20))
        .expect("the window update was sent again and the data arrived");
    assert_eq!(got, data);
}

/// Found by the goodput benchmark (`crates/ferronet-bench/GOODPUT.md`, "A window update
/// held behind another connection's data"). smoltcp 0.14's `socket_egress` offers its
/// sockets one packet each per transmit pass, in slot order, and ends the pass at the first
/// one the driver has no room for; while a socket in a lower slot keeps the driver's queue
/// full, every freed place goes to its next segment. The window update a socket owes after
/// its application read a full receive buffer then waited until the other socket had
/// nothing more to send (173 ms and 224 ms in the benchmark's `both` cells at 10 Mbit/s;
/// embassy-net has the same loop). ferronet now draws the update out of smoltcp before the
/// transmit passes (`zero_window`: a made-up old byte of the peer, which smoltcp answers with
/// an ACK carrying its window, through a transmit token taken for it).
///
/// Here stack A downloads on one connection (created second, so in the higher slot) and lets
/// its 4 KiB receive buffer fill (zero window); then it starts uploading 2 MiB on the other
/// over a 10 Mbit/s link with a queue of 8 frames, and reads. The download must go on within
/// 50 ms of the read (without the change: about 2.4 s later, after the upload).
#[test]
fn a_window_update_is_not_held_behind_another_connections_data() {
    use embassy_time::Instant;
    use std::cell::Cell;

    const UP: usize = 2 << 20;
    const DOWN: usize = 64 << 10;
    let ex = Executor::new();
    let cfg = LinkConfig {
        rate: 10_000_000,
        queue_depth: 8,
        latency: Duration::from_micros(100),
        ..LinkConfig::ethernet()
    };
    let (a, b, _link) = spawn_pair(&ex, cfg);
    let mut up = TcpSocket::new(a, buf(1024), buf(64 << 10));
    let mut down = TcpSocket::new(a, buf(4096), buf(512));
    let mut up_sink = TcpSocket::new(b, buf(64 << 10), buf(512));
    let mut down_source = TcpSocket::new(b, buf(512), buf(16 << 10));
    let up_data: Vec<u8> = (0..UP).map(|i| pattern(21, i)).collect();
    let down_data: Vec<u8> = (0..DOWN).map(|i| pattern(22, i)).collect();
    let (go, start_upload) = futures::channel::oneshot::channel::<()>();
    let uploading = Cell::new(false);

    let b_side = async {
        let sink = async {
            up_sink.accept(1).await.expect("accept 1");
            let mut got = vec![0u8; UP];
            up_sink.read_exact(&mut got).await.expect("upload");
            got
        };
        let source = async {
            down_source.accept(2).await.expect("accept 2");
            down_source.write_all(&down_data).await.expect("download");
            down_source.flush().await.expect("flush");
        };
        join(sink, source).await.0
    };
    let a_side = async {
        let upload = async {
            start_upload.await.expect("the download's buffer filled");
            up.connect(IpEndpoint::new(ip4(3).into(), 1))
                .await
                .expect("connect 1");
            uploading.set(true);
            up.write_all(&up_data).await.expect("upload");
            up.flush().await.expect("flush");
        };
        let download = async {
            down.connect(IpEndpoint::new(ip4(3).into(), 2))
                .await
                .expect("connect 2");
            // Let the receive buffer fill: the stack advertises a zero window.
            for _ in 0..10_000 {
                if down.recv_queue() == 4096 {
                    break;
                }
                Timer::after_micros(100).await;
            }
            assert_eq!(down.recv_queue(), 4096, "the receive buffer never filled");
            // smoltcp's delayed ACK (10 ms) of the last segment carries the zero window.
            Timer::after_millis(20).await;
            go.send(()).expect("the upload waits");
            for _ in 0..10_000 {
                if uploading.get() {
                    break;
                }
                Timer::after_micros(100).await;
            }
            assert!(uploading.get(), "the upload never started");
            // The upload fills the driver's queue (64 KiB take 52 ms at 10 Mbit/s).
            Timer::after_millis(5).await;
            let mut got = vec![0u8; DOWN];
            down.read_exact(&mut got[..4096]).await.expect("read");
            let read_at = Instant::now();
            down.read_exact(&mut got[4096..4097]).await.expect("read");
            let waited = Instant::now() - read_at;
            down.read_exact(&mut got[4097..]).await.expect("read");
            (got, waited)
        };
        join(upload, download).await.1
    };
    let (up_got, (down_got, waited)) = ex
        .try_run_until(join(b_side, a_side), Duration::from_secs(30))
        .expect("both transfers complete");
    assert!(up_got == up_data, "upload bytes differ");
    assert!(down_got == down_data, "download bytes differ");
    assert!(
        waited < Duration::from_millis(50),
        "the download went on {} ms after the read",
        waited.as_millis()
    );
}
