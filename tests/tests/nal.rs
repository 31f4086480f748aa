//! `embedded-nal-async` on ferronet: `tcp::client::TcpClient` (`TcpConnect`) and
//! `udp::nal::UdpClient` (`UdpStack`), between stacks A (192.0.2.2, 2001:db8::2) and B
//! (192.0.2.3, 2001:db8::3).

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;

use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::{Read, Write};
use embedded_nal_async::{ConnectedUdp, TcpConnect, UdpStack, UnconnectedUdp};
use ferronet::tcp::client::{DEFAULT_LINGER, TcpClient, TcpClientState};
use ferronet::tcp::{Error, State, TcpSocket};
use ferronet::udp::nal::{self, UdpClient, UdpClientState};
use ferronet::udp::{PacketMetadata, UdpSocket};
use ferronet::{IpEndpoint, Stack};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::LinkConfig;

const LIMIT: Duration = Duration::from_secs(120);

fn v4(host: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip4(host)), port)
}

fn v6(host: u16, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(ip6(host)), port)
}

/// 0.0.0.0:`port`.
fn any4(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}

/// [::]:`port`.
fn any6(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)
}

/// A TCP echo server on `stack`: one connection after the other, each echoed until end of
/// stream, then closed.
fn spawn_tcp_echo(ex: &Executor<'_>, stack: Stack<'static>, port: u16) {
    ex.spawn(async move {
        loop {
            let mut s = TcpSocket::new(stack, buf(4096), buf(4096));
            if s.accept(port).await.is_err() {
                continue;
            }
            let mut tmp = [0u8; 512];
            while let Ok(n @ 1..) = s.read(&mut tmp).await {
                if s.write_all(&tmp[..n]).await.is_err() {
                    break;
                }
            }
            s.close();
            let _ = s.flush().await;
        }
    });
}

/// What a sink server saw on one connection: the bytes, and how the stream ended.
#[derive(Debug, Default)]
struct Sunk {
    data: Vec<u8>,
    end: Option<Result<(), Error>>,
}

/// A TCP server that accepts one connection on `port` and reads it to the end. It then
/// closes its side too if `close` is set, else keeps the connection open forever.
fn spawn_tcp_sink(
    ex: &Executor<'_>,
    stack: Stack<'static>,
    port: u16,
    close: bool,
) -> Rc<RefCell<Sunk>> {
    let out = Rc::new(RefCell::new(Sunk::default()));
    let sunk = out.clone();
    ex.spawn(async move {
        let mut s = TcpSocket::new(stack, buf(4096), buf(4096));
        s.accept(port).await.unwrap();
        let mut tmp = [0u8; 512];
        let end = loop {
            match s.read(&mut tmp).await {
                Ok(0) => break Ok(()),
                Ok(n) => sunk.borrow_mut().data.extend_from_slice(&tmp[..n]),
                Err(e) => break Err(e),
            }
        };
        sunk.borrow_mut().end = Some(end);
        if close {
            s.close();
            let _ = s.flush().await;
        } else {
            core::future::pending::<()>().await;
        }
    });
    out
}

/// Wait (in virtual time) until `f` holds, checking every 10 ms.
async fn wait_until(mut f: impl FnMut() -> bool) {
    while !f() {
        Timer::after_millis(10).await;
    }
}

fn pattern_vec(seed: u8, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    fill_pattern(seed, 0, &mut v);
    v
}

// ---------------------------------------------------------------------------------------
// TCP

#[test]
fn states_are_send() {
    fn send<T: Send>() {}
    send::<TcpClientState<1, 64, 64>>();
    send::<UdpClientState<1>>();
}

#[test]
fn tcp_client_echo_v4_and_v6() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    spawn_tcp_echo(&ex, b, 7);
    ex.try_run_until(
        async move {
            let state = TcpClientState::<2, 1024, 1024>::new();
            let client = TcpClient::new(a, &state);
            for remote in [v4(3, 7), v6(3, 7)] {
                let mut conn = client.connect(remote).await.unwrap();
                let local = conn.local_endpoint().unwrap();
                let expected_local: IpEndpoint = match remote {
                    SocketAddr::V4(_) => IpEndpoint::new(ip4(2).into(), local.port),
                    SocketAddr::V6(_) => IpEndpoint::new(ip6(2).into(), local.port),
                };
                assert_eq!(local, expected_local);
                let data = pattern_vec(1, 3000);
                // Echo in pieces smaller than the buffers, so that writing never waits for a
                // reader that waits for the writer.
                let mut echoed = vec![0u8; data.len()];
                for (chunk, out) in data.chunks(500).zip(echoed.chunks_mut(500)) {
                    conn.write_all(chunk).await.unwrap();
                    conn.read_exact(out).await.unwrap();
                }
                assert_eq!(echoed, data);
            }
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn tcp_client_drop_closes_gracefully_and_slot_is_reused_after_close() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let sunk = spawn_tcp_sink(&ex, b, 7, true);
    spawn_tcp_echo(&ex, b, 8);
    ex.try_run_until(
        async move {
            let state = TcpClientState::<1, 1024, 1024>::new();
            let client = TcpClient::new(a, &state);
            let mut conn = client.connect(v4(3, 7)).await.unwrap();
            // More than the transmit buffer: part of it is still unsent at the drop.
            let data = pattern_vec(2, 5000);
            conn.write_all(&data).await.unwrap();
            drop(conn);

            // The buffers are still in use by the closing connection.
            assert_eq!(
                client.connect(v4(3, 8)).await.err(),
                Some(Error::PoolExhausted)
            );

            wait_until(|| sunk.borrow().end.is_some()).await;
            {
                let sunk = sunk.borrow();
                assert_eq!(sunk.end, Some(Ok(())), "the server read end of stream");
                assert_eq!(sunk.data.len(), data.len());
                assert!(sunk.data == data, "the server read all data before the FIN");
            }

            // The server closes its side too: once that arrived, the slot comes back.
            Timer::after_millis(100).await;
            let mut conn = client.connect(v4(3, 8)).await.unwrap();
            conn.write_all(b"again").await.unwrap();
            let mut back = [0u8; 5];
            conn.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"again");
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn tcp_client_wait_closed_and_reclaim() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let sunk = spawn_tcp_sink(&ex, b, 7, true);
    ex.try_run_until(
        async move {
            let state = TcpClientState::<1, 1024, 1024>::new();
            let client = TcpClient::new(a, &state);
            let mut conn = client.connect(v4(3, 7)).await.unwrap();
            conn.write_all(b"bye").await.unwrap();
            drop(conn);
            assert_eq!(client.reclaim(), 0, "the close has not finished yet");
            let started = Instant::now();
            client.wait_closed().await;
            assert!(Instant::now() - started < Duration::from_secs(1));
            let sunk = sunk.borrow();
            assert_eq!(sunk.data, b"bye");
            assert_eq!(sunk.end, Some(Ok(())));
            // Already collected by `wait_closed`.
            assert_eq!(client.reclaim(), 0);
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn tcp_client_pool_exhausted() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    spawn_tcp_echo(&ex, b, 7);
    ex.try_run_until(
        async move {
            let state = TcpClientState::<1, 1024, 1024>::new();
            let client = TcpClient::new(a, &state);
            let mut conn = client.connect(v4(3, 7)).await.unwrap();
            assert_eq!(
                client.connect(v4(3, 7)).await.err(),
                Some(Error::PoolExhausted)
            );
            // The open connection is unaffected.
            conn.write_all(b"ok").await.unwrap();
            let mut back = [0u8; 2];
            conn.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"ok");
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn tcp_client_connect_refused() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, LinkConfig::default());
    ex.try_run_until(
        async move {
            let state = TcpClientState::<1, 1024, 1024>::new();
            let client = TcpClient::new(a, &state);
            for remote in [v4(3, 9), v6(3, 9)] {
                assert_eq!(
                    client.connect(remote).await.err(),
                    Some(Error::ConnectionReset)
                );
            }
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn tcp_client_connect_timeout_then_slot_free() {
    let ex = Executor::new();
    let (a, b, link) = spawn_pair(&ex, LinkConfig::default());
    spawn_tcp_echo(&ex, b, 7);
    ex.try_run_until(
        async move {
            let state = TcpClientState::<1, 1024, 1024>::new();
            let mut client = TcpClient::new(a, &state);
            client.set_timeout(Some(Duration::from_secs(2)));
            link.set_loss(1.0).unwrap();
            let started = Instant::now();
            assert_eq!(client.connect(v4(3, 7)).await.err(), Some(Error::TimedOut));
            let took = Instant::now() - started;
            assert!(
                took >= Duration::from_secs(2) && took < Duration::from_secs(3),
                "{took:?}"
            );
            link.set_loss(0.0).unwrap();
            let mut conn = client.connect(v4(3, 7)).await.unwrap();
            conn.write_all(b"x").await.unwrap();
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn tcp_client_cancelled_connect_returns_slot() {
    let ex = Executor::new();
    let (a, b, link) = spawn_pair(&ex, LinkConfig::default());
    spawn_tcp_echo(&ex, b, 7);
    ex.try_run_until(
        async move {
            let state = TcpClientState::<1, 1024, 1024>::new();
            let client = TcpClient::new(a, &state);
            link.set_loss(1.0).unwrap();
            let r =
                embassy_time::with_timeout(Duration::from_secs(1), client.connect(v4(3, 7))).await;
            assert!(r.is_err(), "the connect was cancelled");
            link.set_loss(0.0).unwrap();
            let mut conn = client.connect(v4(3, 7)).await.unwrap();
            conn.write_all(b"y").await.unwrap();
            let mut back = [0u8; 1];
            conn.read_exact(&mut back).await.unwrap();
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn tcp_client_no_route() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, LinkConfig::default());
    ex.try_run_until(
        async move {
            let state = TcpClientState::<1, 1024, 1024>::new();
            let client = TcpClient::new(a, &state);
            // No IPv6 gateway: only 2001:db8::/64 is reachable.
            let far = SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 1)),
                7,
            );
            assert_eq!(client.connect(far).await.err(), Some(Error::NoRoute));
            assert_eq!(
                client
                    .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7))
                    .await
                    .err(),
                Some(Error::NoRoute)
            );
            // The failures gave their slot back.
            assert_eq!(client.reclaim(), 0);
            assert_eq!(
                client.connect(v4(3, 9)).await.err(),
                Some(Error::ConnectionReset)
            );
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn tcp_client_linger_bounds_a_peer_that_never_closes() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let sunk = spawn_tcp_sink(&ex, b, 7, false);
    spawn_tcp_echo(&ex, b, 8);
    ex.try_run_until(
        async move {
            let state = TcpClientState::<1, 1024, 1024>::new();
            let client = TcpClient::new(a, &state);
            let mut conn = client.connect(v4(3, 7)).await.unwrap();
            conn.write_all(b"half").await.unwrap();
            let dropped_at = Instant::now();
            drop(conn);
            wait_until(|| sunk.borrow().end.is_some()).await;
            assert_eq!(sunk.borrow().end, Some(Ok(())));

            // The peer never closes its side: the slot stays taken for the linger...
            Timer::at(dropped_at + DEFAULT_LINGER - Duration::from_secs(1)).await;
            assert_eq!(client.reclaim(), 0);
            assert_eq!(
                client.connect(v4(3, 8)).await.err(),
                Some(Error::PoolExhausted)
            );
            // ...and no longer.
            Timer::at(dropped_at + DEFAULT_LINGER).await;
            let mut conn = client.connect(v4(3, 8)).await.unwrap();
            conn.write_all(b"next").await.unwrap();
            let mut back = [0u8; 4];
            conn.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"next");
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn tcp_client_linger_follows_timeout_and_resets_the_peer() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let peer_state = Rc::new(RefCell::new(None));
    let seen = peer_state.clone();
    // A peer that reads to the end, never closes, and reports its state afterwards.
    ex.spawn(async move {
        let mut s = TcpSocket::new(b, buf(4096), buf(4096));
        s.accept(7).await.unwrap();
        let mut tmp = [0u8; 64];
        while let Ok(1..) = s.read(&mut tmp).await {}
        loop {
            *seen.borrow_mut() = Some(s.state());
            Timer::after_millis(10).await;
        }
    });
    ex.try_run_until(
        async move {
            let state = TcpClientState::<1, 1024, 1024>::new();
            let mut client = TcpClient::new(a, &state);
            client.set_timeout(Some(Duration::from_secs(3)));
            let mut conn = client.connect(v4(3, 7)).await.unwrap();
            conn.write_all(b"x").await.unwrap();
            drop(conn);
            wait_until(|| *peer_state.borrow() == Some(State::CloseWait)).await;
            // The linger is the client's timeout: the close is aborted after it, with an RST
            // to the peer, and the slot comes back.
            let started = Instant::now();
            client.wait_closed().await;
            let took = Instant::now() - started;
            assert!(took <= Duration::from_secs(4), "{took:?}");
            wait_until(|| *peer_state.borrow() == Some(State::Closed)).await;
            assert_eq!(
                client.connect(v4(3, 9)).await.err(),
                Some(Error::ConnectionReset)
            );
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn tcp_client_drop_ends_background_closes() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let _sunk = spawn_tcp_sink(&ex, b, 7, false);
    spawn_tcp_echo(&ex, b, 8);
    ex.try_run_until(
        async move {
            let state = TcpClientState::<1, 1024, 1024>::new();
            {
                let client = TcpClient::new(a, &state);
                let conn = client.connect(v4(3, 7)).await.unwrap();
                drop(conn);
                assert_eq!(
                    client.connect(v4(3, 8)).await.err(),
                    Some(Error::PoolExhausted)
                );
            }
            // The client took its closing connection out of the stack: the state is free.
            let client = TcpClient::new(a, &state);
            let mut conn = client.connect(v4(3, 8)).await.unwrap();
            conn.write_all(b"fresh").await.unwrap();
            let mut back = [0u8; 5];
            conn.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"fresh");
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn tcp_connection_ready_traits() {
    use embedded_io_async::{ReadReady, WriteReady};
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    spawn_tcp_echo(&ex, b, 7);
    ex.try_run_until(
        async move {
            let state = TcpClientState::<1, 1024, 1024>::new();
            let client = TcpClient::new(a, &state);
            let mut conn = client.connect(v4(3, 7)).await.unwrap();
            assert!(conn.write_ready().unwrap());
            assert!(!conn.read_ready().unwrap());
            conn.write_all(b"r").await.unwrap();
            wait_until(|| conn.read_ready().unwrap()).await;
            let mut back = [0u8; 1];
            conn.read_exact(&mut back).await.unwrap();
        },
        LIMIT,
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// UDP

fn meta(n: usize) -> &'static mut [PacketMetadata] {
    leak(vec![PacketMetadata::EMPTY; n]).as_mut_slice()
}

fn udp_socket(stack: Stack<'static>, port: u16) -> UdpSocket<'static> {
    let mut s = UdpSocket::new(stack, meta(8), buf(4096), meta(8), buf(4096));
    s.bind(port).unwrap();
    s
}

/// A UDP echo server on `port` of `stack`. Before each echo it sends "stray" to the sender
/// from port `port + 1`, which a connected socket must ignore.
fn spawn_udp_echo(ex: &Executor<'_>, stack: Stack<'static>, port: u16) {
    ex.spawn(async move {
        let s = udp_socket(stack, port);
        let stray = udp_socket(stack, port + 1);
        let mut tmp = [0u8; 1500];
        loop {
            let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
            stray.send_to(b"stray", meta.endpoint).await.unwrap();
            s.send_to(&tmp[..n], meta.endpoint).await.unwrap();
        }
    });
}

#[test]
fn udp_connect_from_echo_v4_and_v6() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    spawn_udp_echo(&ex, b, 7);
    ex.try_run_until(
        async move {
            let state = UdpClientState::<2>::new();
            let client = UdpClient::new(a, &state);

            let (local, mut socket) = client.connect_from(any4(0), v4(3, 7)).await.unwrap();
            assert_eq!(local.ip(), IpAddr::V4(ip4(2)));
            assert!(local.port() >= 49152, "{local}");
            assert_eq!(socket.local_endpoint().port, local.port());
            socket.send(b"ping").await.unwrap();
            let mut buf4 = [0u8; 64];
            let n = socket.receive_into(&mut buf4).await.unwrap();
            assert_eq!(&buf4[..n], b"ping", "the stray datagram was filtered out");

            // Truncation: the full length is reported.
            socket.send(b"truncated").await.unwrap();
            let mut small = [0u8; 4];
            assert_eq!(socket.receive_into(&mut small).await.unwrap(), 9);
            assert_eq!(&small, b"trun");

            // `connect` (unspecified local) over IPv6, while the IPv4 socket is still open.
            let (local6, mut socket6) = client.connect(v6(3, 7)).await.unwrap();
            assert_eq!(local6.ip(), IpAddr::V6(ip6(2)));
            assert_ne!(local6.port(), local.port());
            socket6.send(b"ping6").await.unwrap();
            let mut buf6 = [0u8; 64];
            let n = socket6.receive_into(&mut buf6).await.unwrap();
            assert_eq!(&buf6[..n], b"ping6");

            // An explicit local address and port.
            drop(socket);
            let (local, mut socket) = client.connect_from(v4(2, 4000), v4(3, 7)).await.unwrap();
            assert_eq!(local, v4(2, 4000));
            socket.send(b"fixed").await.unwrap();
            let n = socket.receive_into(&mut buf4).await.unwrap();
            assert_eq!(&buf4[..n], b"fixed");
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn udp_bind_single_round_trip() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let got = Rc::new(RefCell::new(Vec::<(Vec<u8>, IpEndpoint)>::new()));
    let got_b = got.clone();
    ex.spawn(async move {
        let s = udp_socket(b, 6000);
        // Give A time to bind.
        Timer::after_millis(50).await;
        s.send_to(b"to-v4", IpEndpoint::new(ip4(2).into(), 5000))
            .await
            .unwrap();
        let mut tmp = [0u8; 64];
        loop {
            let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
            got_b.borrow_mut().push((tmp[..n].to_vec(), meta.endpoint));
        }
    });
    ex.try_run_until(
        async move {
            let state = UdpClientState::<3>::new();
            let client = UdpClient::new(a, &state);
            let (local, mut socket) = client.bind_single(any4(5000)).await.unwrap();
            assert_eq!(local, v4(2, 5000));

            // The port is taken now.
            assert_eq!(
                client.bind_single(v4(2, 5000)).await.err(),
                Some(nal::Error::AddrInUse)
            );
            // Not an address of A.
            assert_eq!(
                client.bind_single(v4(99, 0)).await.err(),
                Some(nal::Error::AddrNotAvailable)
            );

            let mut tmp = [0u8; 64];
            let (n, l, r) = socket.receive_into(&mut tmp).await.unwrap();
            assert_eq!(&tmp[..n], b"to-v4");
            assert_eq!(l, local);
            assert_eq!(r, v4(3, 6000));
            socket.send(l, r, b"reply").await.unwrap();
            // Unspecified local address and port are fine too.
            socket.send(any4(0), r, b"reply2").await.unwrap();
            // A local address that does not match the socket's binding.
            assert_eq!(
                socket.send(v4(2, 5001), r, b"x").await.err(),
                Some(nal::Error::InvalidAddress)
            );
            assert_eq!(
                socket.send(v6(2, 5000), v6(3, 6000), b"x").await.err(),
                Some(nal::Error::InvalidAddress)
            );
            assert_eq!(
                socket.send(local, v6(3, 6000), b"x").await.err(),
                Some(nal::Error::InvalidAddress)
            );
            wait_until(|| got.borrow().len() == 2).await;
            let from = IpEndpoint::new(ip4(2).into(), 5000);
            assert_eq!(
                *got.borrow(),
                vec![(b"reply".to_vec(), from), (b"reply2".to_vec(), from)]
            );

            // IPv6 with an ephemeral port.
            let (local6, _socket6) = client.bind_single(any6(0)).await.unwrap();
            assert_eq!(local6.ip(), IpAddr::V6(ip6(2)));
            assert!(local6.port() >= 49152);
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn udp_bind_single_v6_round_trip() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    spawn_udp_echo(&ex, b, 7);
    ex.try_run_until(
        async move {
            let state = UdpClientState::<1>::new();
            let client = UdpClient::new(a, &state);
            let (local, mut socket) = client.bind_single(v6(2, 0)).await.unwrap();
            assert_eq!(local.ip(), IpAddr::V6(ip6(2)));
            socket.send(local, v6(3, 7), b"six").await.unwrap();
            let mut tmp = [0u8; 64];
            // The stray datagram from port 8 and the echo from port 7, in either order.
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (n, l, r) = socket.receive_into(&mut tmp).await.unwrap();
                seen.push((tmp[..n].to_vec(), l, r));
            }
            seen.sort_by_key(|(_, _, r)| r.port());
            assert_eq!(
                seen,
                vec![
                    (b"six".to_vec(), local, v6(3, 7)),
                    (b"stray".to_vec(), local, v6(3, 8)),
                ]
            );
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn udp_bind_multiple_both_families() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let got = Rc::new(RefCell::new(Vec::<(Vec<u8>, IpEndpoint)>::new()));
    let got_b = got.clone();
    ex.spawn(async move {
        let s = udp_socket(b, 6000);
        // Give A time to bind.
        Timer::after_millis(50).await;
        s.send_to(b"via-v4", IpEndpoint::new(ip4(2).into(), 5001))
            .await
            .unwrap();
        s.send_to(b"via-v6", IpEndpoint::new(ip6(2).into(), 5001))
            .await
            .unwrap();
        let mut tmp = [0u8; 64];
        loop {
            let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
            got_b.borrow_mut().push((tmp[..n].to_vec(), meta.endpoint));
        }
    });
    ex.try_run_until(
        async move {
            let state = UdpClientState::<1>::new();
            let client = UdpClient::new(a, &state);
            let mut socket = client.bind_multiple(any4(5001)).await.unwrap();
            assert_eq!(socket.local_endpoint().addr, None);
            assert_eq!(socket.local_endpoint().port, 5001);
            let mut tmp = [0u8; 64];
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (n, l, r) = socket.receive_into(&mut tmp).await.unwrap();
                seen.push((tmp[..n].to_vec(), l, r));
                let mut reply = b"re:".to_vec();
                reply.extend_from_slice(&tmp[..n]);
                socket.send(l, r, &reply).await.unwrap();
            }
            assert_eq!(
                seen,
                vec![
                    (b"via-v4".to_vec(), v4(2, 5001), v4(3, 6000)),
                    (b"via-v6".to_vec(), v6(2, 5001), v6(3, 6000)),
                ]
            );
            // An unspecified local address: the stack picks the source.
            socket.send(any6(0), v4(3, 6000), b"any").await.unwrap();
            // A local address that is not A's.
            assert_eq!(
                socket.send(v4(99, 5001), v4(3, 6000), b"x").await.err(),
                Some(nal::Error::AddrNotAvailable)
            );
            wait_until(|| got.borrow().len() == 3).await;
            assert_eq!(
                *got.borrow(),
                vec![
                    (b"re:via-v4".to_vec(), IpEndpoint::new(ip4(2).into(), 5001)),
                    (b"re:via-v6".to_vec(), IpEndpoint::new(ip6(2).into(), 5001)),
                    (b"any".to_vec(), IpEndpoint::new(ip4(2).into(), 5001)),
                ]
            );
        },
        LIMIT,
    )
    .unwrap();
}

#[test]
fn udp_pool_and_errors() {
    let ex = Executor::new();
    let (a, _b, _link) = spawn_pair(&ex, LinkConfig::default());
    ex.try_run_until(
        async move {
            let state = UdpClientState::<1, 256, 256, 2>::new();
            let client = UdpClient::new(a, &state);
            let (_, mut socket) = client.connect(v4(3, 7)).await.unwrap();
            assert_eq!(
                client.connect(v4(3, 7)).await.err(),
                Some(nal::Error::PoolExhausted)
            );
            assert_eq!(
                socket.send(&[0u8; 300]).await.err(),
                Some(nal::Error::PacketTooLarge)
            );
            drop(socket);
            // Dropping returned the slot.
            let socket = client.bind_multiple(any4(0)).await;
            assert!(socket.is_ok());
            drop(socket);

            let far6 = SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 1)),
                7,
            );
            assert_eq!(client.connect(far6).await.err(), Some(nal::Error::NoRoute));
            assert_eq!(
                client.connect(v4(3, 0)).await.err(),
                Some(nal::Error::NoRoute)
            );
            assert_eq!(
                client.connect_from(v6(2, 0), v4(3, 7)).await.err(),
                Some(nal::Error::InvalidAddress)
            );
            assert_eq!(
                client.connect_from(v4(99, 0), v4(3, 7)).await.err(),
                Some(nal::Error::AddrNotAvailable)
            );
            // None of the failures kept the slot.
            assert!(client.connect(v4(3, 7)).await.is_ok());
        },
        LIMIT,
    )
    .unwrap();
}
