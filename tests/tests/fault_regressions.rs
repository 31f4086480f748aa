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
