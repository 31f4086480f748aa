//! `tcp::listener::TcpListener` (feature `tcp-listener`): the listen backlog over simulated
//! links, on the virtual clock. 64 clients on a server with 4 sockets and a backlog of 4 (all
//! served, none reset, every byte checked); a SYN flood fills the backlog and nothing else;
//! retransmitted SYNs replace their entry; a RST removes it; held SYNs expire; a port
//! without a listener still answers RST; the listener's API and errors. And a measurement:
//! how many legitimate clients connect during a flood of 10,000 spoofed SYNs a second.

use std::cell::Cell;
use std::rc::Rc;

use embassy_time::{Duration, Instant, Timer};
use ferronet::tcp::listener::{
    BACKLOG, ListenError, ListenerTableFull, MAX_LISTENERS, SYN_HOLD, TcpListener,
};
use ferronet::tcp::{AcceptError, State, TcpSocket};
use ferronet::{EthernetAddress, IpEndpoint, Ipv4Address, Stack, StackResources};
use ferronet_integration::peers::{Peer, TcpSegment, arp_frame, parse_arp, tcp_v4_frame};
use ferronet_integration::sim::{ep4, run};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{LinkConfig, MAC_A, MAC_B, SimDevice, pair_ethernet};
use futures::FutureExt;
use futures::future::{join, join_all};
use smoltcp::wire::{
    ArpOperation, ArpRepr, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpControl,
    TcpPacket,
};

const PORT: u16 = 80;
/// How long a test client keeps retransmitting its SYN (Linux: 127 s with 6 retries).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);
const STACK_MAC: EthernetAddress = EthernetAddress(MAC_A);
const PEER_MAC: EthernetAddress = EthernetAddress(MAC_B);

/// A stack with room for `N` sockets on `device`, at 192.0.2.`host`.
fn stack<const N: usize>(
    ex: &Executor<'_>,
    device: SimDevice,
    host: u8,
    seed: u64,
) -> Stack<'static> {
    stack_with::<N>(
        ex,
        device,
        ferronet::Config::ipv4_static(v4_config(host)),
        seed,
    )
}

/// A stack with room for `N` sockets on `device`, configured with `config`.
fn stack_with<const N: usize>(
    ex: &Executor<'_>,
    device: SimDevice,
    config: ferronet::Config,
    seed: u64,
) -> Stack<'static> {
    let resources = leak(StackResources::<N>::new());
    let (stack, mut runner) = ferronet::new(device, config, resources, seed);
    ex.spawn(async move { runner.run().await });
    stack
}

/// A server task: takes tokens from `listener` on its own socket and echoes each connection
/// to its end; counts connections served and failed accepts.
fn spawn_echo_server(
    ex: &Executor<'static>,
    stack: Stack<'static>,
    listener: &'static TcpListener<'static>,
    served: Rc<Cell<usize>>,
    failed: Rc<Cell<usize>>,
) {
    ex.spawn(async move {
        let mut socket = TcpSocket::new(stack, buf(1024), buf(1024));
        loop {
            let token = match listener.accept().await {
                Ok(t) => t,
                Err(e) => panic!("accept: {e:?}"),
            };
            if socket.accept_token(token).await.is_err() {
                failed.set(failed.get() + 1);
                continue;
            }
            let mut tmp = [0u8; 512];
            loop {
                match socket.read(&mut tmp).await {
                    Ok(0) => break,
                    Ok(n) => {
                        let mut off = 0;
                        while off < n {
                            off += socket.write(&tmp[off..n]).await.expect("echo write");
                        }
                    }
                    Err(e) => panic!("echo read: {e:?}"),
                }
            }
            socket.close();
            socket.flush().await.expect("echo flush");
            assert_eq!(socket.state(), State::Closed);
            served.set(served.get() + 1);
        }
    });
}

/// A client: connects, sends `len` bytes of pattern `seed`, reads the echo, closes, and
/// checks the echo and the end of stream.
///
/// It closes only once the whole echo is in: the server then answers the FIN with its own
/// FIN alone, which the client's runner acknowledges before the client sees the end of the
/// stream and drops its socket (a FIN that came with data is acknowledged after the delayed
/// ACK timer, too late for a socket dropped at once; see the report of the listener work).
async fn echo_client(stack: Stack<'static>, seed: u8, len: usize) -> Result<(), String> {
    echo_client_to(stack, ep4(3, PORT), seed, len).await
}

/// [`echo_client`] to `server`.
async fn echo_client_to(
    stack: Stack<'static>,
    server: IpEndpoint,
    seed: u8,
    len: usize,
) -> Result<(), String> {
    let mut s = TcpSocket::new(stack, buf(1024), buf(1024));
    // Dropped SYNs are retransmitted until then (smoltcp doubles its timeout up to 60 s).
    s.set_timeout(Some(CLIENT_TIMEOUT));
    s.connect(server)
        .await
        .map_err(|e| format!("client {seed}: connect: {e:?}"))?;
    let mut data = vec![0u8; len];
    fill_pattern(seed, 0, &mut data);
    let mut got = Vec::new();
    let mut off = 0;
    let mut tmp = [0u8; 512];
    while off < len {
        off += s.write(&data[off..]).await.map_err(|e| format!("{e:?}"))?;
        // Read what is there without waiting, so neither side's buffer fills up.
        while let Ok(n @ 1..) = s.try_read(&mut tmp) {
            got.extend_from_slice(&tmp[..n]);
        }
    }
    while got.len() < len {
        let n = s.read(&mut tmp).await.map_err(|e| format!("{e:?}"))?;
        if n == 0 {
            return Err(format!(
                "client {seed}: end of stream after {} bytes",
                got.len()
            ));
        }
        got.extend_from_slice(&tmp[..n]);
    }
    s.close();
    let n = s.read(&mut tmp).await.map_err(|e| format!("{e:?}"))?;
    if n != 0 || got.len() != len {
        return Err(format!(
            "client {seed}: {} bytes echoed of {len}, then {n}",
            got.len()
        ));
    }
    check_pattern(seed, 0, &got).map_err(|at| format!("client {seed}: bad byte at {at}"))?;
    Ok(())
}

/// TCP frames on the link that carry RST.
fn resets(frames: &[ferronet_sim::link::CapturedFrame]) -> usize {
    frames
        .iter()
        .filter(|f| tcp_of(&f.data).is_some_and(|t| t.rst))
        .count()
}

#[test]
fn sixty_four_clients_on_four_sockets_and_a_backlog_of_four_are_all_served() {
    const CLIENTS: usize = 64;
    const SOCKETS: usize = 4;
    assert_eq!(BACKLOG, 4);
    let ex: &'static Executor<'static> = leak(Executor::new());
    let (dev_c, dev_s, link) = pair_ethernet(LinkConfig::default()).unwrap();
    link.capture(true);
    let client = stack::<{ CLIENTS + 8 }>(ex, dev_c, 2, 7);
    let server = stack::<8>(ex, dev_s, 3, 8);
    let listener = leak(TcpListener::new(server).unwrap());
    listener.listen(PORT).unwrap();
    let listener: &'static TcpListener<'static> = listener;
    let served = Rc::new(Cell::new(0));
    let failed = Rc::new(Cell::new(0));
    for _ in 0..SOCKETS {
        spawn_echo_server(ex, server, listener, served.clone(), failed.clone());
    }
    ex.run_for(Duration::from_millis(10));

    // All at once: the SYNs of all 64 leave in the same poll of the client's runner. Each
    // wave of SYNs serves 8 (4 sockets, 4 held); the others are dropped and retransmitted.
    let t0 = Instant::now();
    let results = run(
        ex,
        join_all((0..CLIENTS).map(|i| echo_client(client, i as u8, 3000))),
    );
    println!(
        "{CLIENTS} clients served in {} s of virtual time",
        (Instant::now() - t0).as_millis() as f64 / 1000.0
    );
    for r in &results {
        assert_eq!(r, &Ok(()));
    }
    ex.run_for(Duration::from_secs(1));
    assert_eq!(served.get(), CLIENTS);
    assert_eq!(failed.get(), 0);
    assert_eq!(resets(&link.captured()), 0, "a RST was sent");
    assert_eq!(listener.backlog_len(), 0);
}

// ----------------------------------------------------------------------------------------
// A scripted peer sending SYNs and RSTs.

/// The TCP fields the tests look at.
#[derive(Debug, Clone, Copy)]
struct Tcp {
    src: Ipv4Address,
    dst: Ipv4Address,
    src_port: u16,
    dst_port: u16,
    syn: bool,
    ack: bool,
    rst: bool,
    seq: u32,
    ack_number: u32,
    window: u16,
}

fn tcp_of(frame: &[u8]) -> Option<Tcp> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp {
        return None;
    }
    let t = TcpPacket::new_checked(ip.payload()).ok()?;
    Some(Tcp {
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        src_port: t.src_port(),
        dst_port: t.dst_port(),
        syn: t.syn(),
        ack: t.ack(),
        rst: t.rst(),
        seq: t.seq_number().0 as u32,
        ack_number: t.ack_number().0 as u32,
        window: t.window_len(),
    })
}

/// A TCP segment from `src`:`src_port` to the stack (192.0.2.3) at `dst_port`.
fn segment(
    src: Ipv4Address,
    src_port: u16,
    dst_port: u16,
    control: TcpControl,
    seq: u32,
    ack: Option<u32>,
) -> Vec<u8> {
    let segment = TcpSegment {
        control,
        seq,
        ack,
        payload: &[],
    };
    tcp_v4_frame(
        PEER_MAC,
        STACK_MAC,
        (src, src_port),
        (ip4(3), dst_port),
        segment,
    )
}

fn syn(src: Ipv4Address, src_port: u16, seq: u32) -> Vec<u8> {
    segment(src, src_port, PORT, TcpControl::Syn, seq, None)
}

/// The server stack (192.0.2.3) and a scripted peer (192.0.2.1, answering ARP for it).
fn with_peer(ex: &Executor<'static>) -> (Stack<'static>, Peer) {
    let (dev_s, dev_p, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let server = stack::<8>(ex, dev_s, 3, 9);
    let peer = Peer::new(PEER_MAC);
    peer.add_ipv4(ip4(1));
    peer.spawn(ex, dev_p);
    ex.run_for(Duration::from_millis(10));
    (server, peer)
}

fn tcp_received(peer: &Peer) -> Vec<Tcp> {
    peer.received()
        .iter()
        .filter_map(|r| tcp_of(&r.frame))
        .collect()
}

#[test]
fn syn_flood_fills_the_backlog_and_nothing_else() {
    let ex: &'static Executor<'static> = leak(Executor::new());
    let (server, peer) = with_peer(ex);
    let mut listener = TcpListener::new(server).unwrap();
    listener.listen(PORT).unwrap();
    let sockets_before = server.usage().sockets;

    // 200 SYNs from 200 spoofed addresses (they answer no ARP), nobody accepting.
    for i in 0..200u32 {
        let src = Ipv4Address::new(203, 0, 113, (i % 250) as u8 + 1);
        peer.send(syn(src, 10_000 + i as u16, 1000 * i));
    }
    ex.run_for(Duration::from_secs(1));
    assert_eq!(listener.backlog_len(), BACKLOG);
    // The SYNs beyond the backlog were answered with SYN cookies, nothing else was sent (no
    // RST, not even an ARP request: the SYN-ACK goes to the link address the SYN came from):
    // each SYN-ACK answers its SYN, with a zero window and an MSS option.
    let answers = peer.received();
    assert_eq!(answers.len(), 200 - BACKLOG, "{:?}", tcp_received(&peer));
    for (n, a) in answers.iter().enumerate() {
        let i = (n + BACKLOG) as u32;
        let t = tcp_of(&a.frame).unwrap();
        assert_eq!(&a.frame[..6], &PEER_MAC.0[..]);
        assert!(t.syn && t.ack && !t.rst, "{t:?}");
        assert_eq!((t.src, t.src_port), (ip4(3), PORT));
        assert_eq!(
            (t.dst, t.dst_port, t.ack_number),
            (
                Ipv4Address::new(203, 0, 113, (i % 250) as u8 + 1),
                10_000 + i as u16,
                1000 * i + 1
            )
        );
        assert_eq!(t.window, 0);
        let eth = EthernetFrame::new_checked(&a.frame[..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert!(tcp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()));
        assert_eq!(tcp.options_summary().unwrap().max_segment_size, Some(1460));
    }
    assert_eq!(listener.syn_cookies().sent, (200 - BACKLOG) as u32);
    assert_eq!(server.usage().sockets, sockets_before);

    // The first four are held, oldest first.
    let token = run(ex, listener.accept()).unwrap();
    assert_eq!(
        token.remote_endpoint(),
        IpEndpoint::new(Ipv4Address::new(203, 0, 113, 1).into(), 10_000)
    );
    assert_eq!(token.local_endpoint(), ep4(3, PORT));
    drop(token);

    // A port without a listener still answers RST (to the retransmission: smoltcp drops the
    // RST to the first SYN while it asks for the client's link address).
    for _ in 0..2 {
        peer.send(segment(ip4(1), 5555, 81, TcpControl::Syn, 77, None));
        ex.run_for(Duration::from_millis(100));
    }
    let rst: Vec<Tcp> = tcp_received(&peer).into_iter().filter(|t| t.rst).collect();
    assert!(!rst.is_empty());
    for r in &rst {
        assert_eq!((r.src_port, r.dst_port, r.ack_number), (81, 5555, 78));
    }

    // Held SYNs expire when no copy of them comes for SYN_HOLD.
    ex.run_for(SYN_HOLD);
    assert_eq!(listener.backlog_len(), 0);
    assert!(
        listener.accept().now_or_never().is_none(),
        "an expired SYN was handed out"
    );

    // Closing drops what is held, and `accept` then fails.
    peer.send(syn(ip4(1), 6000, 5));
    ex.run_for(Duration::from_millis(100));
    assert_eq!(listener.backlog_len(), 1);
    listener.close();
    assert!(!listener.is_open());
    assert_eq!(listener.backlog_len(), 0);
    assert_eq!(
        run(ex, listener.accept()).map(|_| ()),
        Err(AcceptError::InvalidState)
    );
    // Not listened on any more: the port answers RST again (the link address is known now).
    peer.send(syn(ip4(1), 6001, 9));
    ex.run_for(Duration::from_millis(100));
    assert!(
        tcp_received(&peer)
            .iter()
            .any(|t| t.rst && t.dst_port == 6001)
    );
}

#[test]
fn a_retransmitted_syn_replaces_its_entry_and_the_latest_copy_is_answered() {
    let ex: &'static Executor<'static> = leak(Executor::new());
    let (server, peer) = with_peer(ex);
    let mut listener = TcpListener::new(server).unwrap();
    listener.listen(PORT).unwrap();

    peer.send(syn(ip4(1), 40_000, 1000));
    peer.send(syn(ip4(1), 40_000, 1000));
    peer.send(syn(ip4(1), 40_000, 5000));
    ex.run_for(Duration::from_millis(100));
    assert_eq!(listener.backlog_len(), 1);
    let token = run(ex, listener.accept()).unwrap();
    assert!(listener.accept().now_or_never().is_none(), "a second token");

    let mut socket = TcpSocket::new(server, buf(1024), buf(1024));
    let t0 = Instant::now();
    let (accepted, synack) = run(
        ex,
        join(socket.accept_token(token), async {
            // The SYN-ACK answers the latest copy, at once.
            let (at, synack) = peer
                .wait_for(|rx| {
                    rx.iter().find_map(|r| {
                        tcp_of(&r.frame)
                            .filter(|t| t.syn && t.ack)
                            .map(|t| (r.time, t))
                    })
                })
                .await;
            assert!(at - t0 < Duration::from_millis(50), "{:?}", at - t0);
            // The SYN again (as if its SYN-ACK was lost): it goes to the socket, not into
            // the backlog.
            peer.send(syn(ip4(1), 40_000, 5000));
            Timer::after(Duration::from_millis(50)).await;
            assert_eq!(listener.backlog_len(), 0);
            // The handshake completes.
            peer.send(segment(
                ip4(1),
                40_000,
                PORT,
                TcpControl::None,
                5001,
                Some(synack.seq.wrapping_add(1)),
            ));
            synack
        }),
    );
    assert_eq!(accepted, Ok(()));
    assert_eq!(synack.ack_number, 5001);
    assert_eq!((synack.src, synack.dst), (ip4(3), ip4(1)));
    assert_eq!(socket.state(), State::Established);
    assert_eq!(
        socket.remote_endpoint(),
        Some(IpEndpoint::new(ip4(1).into(), 40_000))
    );
    assert!(tcp_received(&peer).iter().all(|t| !t.rst));
}

#[test]
fn a_rst_removes_a_held_syn() {
    let ex: &'static Executor<'static> = leak(Executor::new());
    let (server, peer) = with_peer(ex);
    let mut listener = TcpListener::new(server).unwrap();
    listener.listen(PORT).unwrap();

    peer.send(syn(ip4(1), 41_000, 100));
    ex.run_for(Duration::from_millis(50));
    assert_eq!(listener.backlog_len(), 1);
    // A RST with an unrelated sequence number is not the client's: ignored.
    peer.send(segment(ip4(1), 41_000, PORT, TcpControl::Rst, 99_999, None));
    ex.run_for(Duration::from_millis(50));
    assert_eq!(listener.backlog_len(), 1);
    peer.send(segment(ip4(1), 41_000, PORT, TcpControl::Rst, 101, None));
    ex.run_for(Duration::from_millis(50));
    assert_eq!(listener.backlog_len(), 0);
    assert!(listener.accept().now_or_never().is_none());

    // A RST while the token is out: the socket that takes the token learns it.
    peer.send(syn(ip4(1), 41_001, 200));
    ex.run_for(Duration::from_millis(50));
    let token = run(ex, listener.accept()).unwrap();
    peer.send(segment(ip4(1), 41_001, PORT, TcpControl::Rst, 201, None));
    ex.run_for(Duration::from_millis(50));
    let mut socket = TcpSocket::new(server, buf(256), buf(256));
    assert_eq!(
        run(ex, socket.accept_token(token)),
        Err(AcceptError::ConnectionReset)
    );
    assert_eq!(socket.state(), State::Closed);
    // Nothing was ever sent to the peer.
    assert!(tcp_received(&peer).is_empty());
}

#[test]
fn listener_api_and_errors() {
    let ex: &'static Executor<'static> = leak(Executor::new());
    let (server, peer) = with_peer(ex);

    let mut a = TcpListener::new(server).unwrap();
    let mut more = Vec::new();
    for _ in 1..MAX_LISTENERS {
        more.push(TcpListener::new(server).unwrap());
    }
    assert_eq!(TcpListener::new(server).err(), Some(ListenerTableFull));
    drop(more);
    let mut b = TcpListener::new(server).unwrap();

    assert!(!a.is_open());
    assert_eq!(a.local_addr(), None);
    assert_eq!(
        run(ex, a.accept()).map(|_| ()),
        Err(AcceptError::InvalidState)
    );
    assert_eq!(a.listen(0), Err(ListenError::InvalidPort));
    a.listen(PORT).unwrap();
    assert!(a.is_open());
    assert_eq!(a.local_addr().map(|e| e.port), Some(PORT));
    assert_eq!(a.listen(PORT + 1), Err(ListenError::InvalidState));
    assert_eq!(b.listen(PORT), Err(ListenError::AddressInUse));
    assert_eq!(b.listen((ip4(3), PORT)), Err(ListenError::AddressInUse));
    b.listen((ip4(3), PORT + 1)).unwrap();

    // A token dropped unused puts its SYN back for the next accept.
    peer.send(syn(ip4(1), 42_000, 1));
    ex.run_for(Duration::from_millis(50));
    let token = run(ex, a.accept()).unwrap();
    assert_eq!(
        token.remote_endpoint(),
        IpEndpoint::new(ip4(1).into(), 42_000)
    );
    drop(token);
    let token = run(ex, a.accept()).unwrap();
    // A socket that is open (here: listening for `accept`) cannot take it; the token goes
    // back.
    let mut busy = TcpSocket::new(server, buf(256), buf(256));
    assert!(busy.accept(9).now_or_never().is_none());
    assert_eq!(busy.state(), State::Listen);
    assert_eq!(
        run(ex, busy.accept_token(token)),
        Err(AcceptError::InvalidState)
    );
    let token = run(ex, a.accept()).unwrap();
    // Two tasks waiting on one listener: each SYN goes to one of them.
    let got = Rc::new(Cell::new(0));
    let a: &'static TcpListener<'static> = leak(a);
    for _ in 0..2 {
        let got = got.clone();
        ex.spawn(async move {
            let t = a.accept().await.unwrap();
            got.set(got.get() + 1);
            // Keep the SYN out of the backlog.
            core::mem::forget(t);
        });
    }
    ex.run_for(Duration::from_millis(10));
    assert_eq!(got.get(), 0, "a task got a token without a SYN");
    drop(token);
    ex.run_for(Duration::from_millis(10));
    assert_eq!(got.get(), 1);
    peer.send(syn(ip4(1), 42_001, 1));
    ex.run_for(Duration::from_millis(50));
    assert_eq!(got.get(), 2);
    assert_eq!(a.backlog_len(), 2);
}

/// During a flood of spoofed SYNs (random sources in 198.51.100.0/24, through a router that
/// answers ARP; the sources never answer) at
/// 10,000, 1,000 and 100 a second against 4 sockets and a backlog of 4, 16 legitimate clients
/// started one second into the flood all connect through SYN cookies and get their echo, every
/// byte checked, while the flood lasts (30 s), with no RST sent to them; the flood takes no
/// socket and nothing beyond the backlog and the table of cookie connections, which is empty
/// at the end. Run with `--nocapture` to see the numbers.
#[test]
fn legitimate_clients_during_a_spoofed_syn_flood() {
    // (SYNs per tick, tick)
    for (per_tick, tick) in [(10, 1), (1, 1), (1, 10)] {
        flood(per_tick, Duration::from_millis(tick));
    }
}

fn flood(per_tick: u32, tick: Duration) {
    use ferronet::tcp::syncookie::TRANSLATED;
    use ferronet_integration::faults::TestRng;
    use ferronet_sim::switch::Switch;
    const FLOOD: Duration = Duration::from_secs(30);
    const CLIENTS: usize = 16;

    let ex: &'static Executor<'static> = leak(Executor::new());
    let switch = Switch::new(LinkConfig::default());
    let server = stack::<8>(ex, switch.port(MAC_A).unwrap(), 3, 21);
    let client = stack::<{ CLIENTS + 4 }>(ex, switch.port([2, 0, 0, 0, 0, 0x11]).unwrap(), 2, 22);
    let mut attacker = switch.port(MAC_B).unwrap();
    let listener = leak(TcpListener::new(server).unwrap());
    listener.listen(PORT).unwrap();
    let listener: &'static TcpListener<'static> = listener;
    let served = Rc::new(Cell::new(0));
    let failed = Rc::new(Cell::new(0));
    for _ in 0..4 {
        spawn_echo_server(ex, server, listener, served.clone(), failed.clone());
    }
    ex.run_for(Duration::from_millis(10));
    let sockets = server.usage().sockets;

    let stop = Rc::new(Cell::new(false));
    let sent = Rc::new(Cell::new(0u64));
    {
        let (stop, sent) = (stop.clone(), sent.clone());
        ex.spawn(async move {
            let mut rng = TestRng::new(0xf100d);
            while !stop.get() {
                for _ in 0..per_tick {
                    let src = Ipv4Address::new(198, 51, 100, rng.range(1, 255) as u8);
                    let port = rng.range(1024, 65535) as u16;
                    let frame = syn(src, port, rng.next_u64() as u32);
                    if attacker.send_frame(&frame).is_ok() {
                        sent.set(sent.get() + 1);
                    }
                }
                // The attacker is the router the spoofed SYNs come through: it answers ARP for
                // the gateway, and throws away what the stack sends it (SYN-ACKs with
                // cookies).
                while let Some(f) = attacker.try_recv_frame() {
                    if let Some(arp) = parse_arp(&f)
                        && let ArpRepr::EthernetIpv4 {
                            operation: ArpOperation::Request,
                            source_hardware_addr,
                            source_protocol_addr,
                            target_protocol_addr,
                            ..
                        } = arp
                        && target_protocol_addr == ip4(1)
                    {
                        let reply = ArpRepr::EthernetIpv4 {
                            operation: ArpOperation::Reply,
                            source_hardware_addr: PEER_MAC,
                            source_protocol_addr: ip4(1),
                            target_hardware_addr: source_hardware_addr,
                            target_protocol_addr: source_protocol_addr,
                        };
                        let _ =
                            attacker.send_frame(&arp_frame(PEER_MAC, source_hardware_addr, reply));
                    }
                }
                Timer::after(tick).await;
            }
        });
    }
    // Every RST on the switch that goes to the legitimate clients.
    switch.capture(true);
    let resets_to_clients = Rc::new(Cell::new(0usize));
    {
        let resets_to_clients = resets_to_clients.clone();
        ex.spawn(async move {
            loop {
                let n = switch
                    .take_captured()
                    .iter()
                    .filter(|f| tcp_of(&f.data).is_some_and(|t| t.rst && t.dst == ip4(2)))
                    .count();
                resets_to_clients.set(resets_to_clients.get() + n);
                assert!(listener.backlog_len() <= BACKLOG);
                Timer::after(Duration::from_millis(10)).await;
            }
        });
    }
    ex.run_for(Duration::from_secs(1));
    let t0 = Instant::now();
    let done: Rc<Cell<usize>> = Rc::new(Cell::new(0));
    let done_in_flood: Rc<Cell<usize>> = Rc::new(Cell::new(0));
    let last_done = Rc::new(Cell::new(t0));
    for i in 0..CLIENTS {
        let (done, done_in_flood, stop, last_done) = (
            done.clone(),
            done_in_flood.clone(),
            stop.clone(),
            last_done.clone(),
        );
        ex.spawn(async move {
            let r = echo_client(client, 100 + i as u8, 200).await;
            assert_eq!(r, Ok(()));
            done.set(done.get() + 1);
            if !stop.get() {
                done_in_flood.set(done_in_flood.get() + 1);
                last_done.set(Instant::now());
            }
        });
    }
    ex.run_for(FLOOD - Duration::from_secs(1));
    stop.set(true);
    let flood_syns = sent.get();
    let in_flood = done_in_flood.get();
    let cookies = listener.syn_cookies();
    // What the flood left behind: half-open connections give up, held SYNs expire.
    ex.run_for(Duration::from_secs(20));
    println!(
        "SYN flood: {flood_syns} spoofed SYNs in {} s ({:.0}/s); {in_flood} of {CLIENTS} \
         legitimate clients served during the flood, the last {:.1} s after they started; \
         {} SYN-ACKs with cookies sent, {} cookie ACKs validated; at most {} cookie \
         connections at once; {} half-open accepts given up",
        FLOOD.as_secs(),
        flood_syns as f64 / FLOOD.as_secs() as f64,
        (last_done.get() - t0).as_millis() as f64 / 1000.0,
        cookies.sent,
        cookies.validated,
        cookies.peak_connections,
        failed.get()
    );
    assert_eq!(in_flood, CLIENTS, "clients served during the flood");
    assert_eq!(done.get(), CLIENTS);
    assert_eq!(served.get(), CLIENTS);
    assert!(cookies.validated >= CLIENTS as u32, "{cookies:?}");
    assert_eq!(
        resets_to_clients.get(),
        0,
        "a RST went to a legitimate client"
    );
    // The flood took no socket and no memory beyond the backlog and the cookie table, which
    // is empty again.
    assert_eq!(server.usage().sockets, sockets);
    assert!(cookies.peak_connections <= TRANSLATED);
    assert_eq!(listener.syn_cookies().connections, 0);
}

/// A server with a listener whose backlog is full of spoofed SYNs, and a legitimate client
/// (a smoltcp stack) behind the same switch.
struct CookieSetup {
    ex: &'static Executor<'static>,
    switch: ferronet_sim::switch::Switch,
    server: Stack<'static>,
    client: Stack<'static>,
    listener: &'static TcpListener<'static>,
    attacker: SimDevice,
}

fn cookie_setup() -> CookieSetup {
    use ferronet_sim::switch::Switch;
    let ex: &'static Executor<'static> = leak(Executor::new());
    let switch = Switch::new(LinkConfig::default());
    let server = stack::<8>(ex, switch.port(MAC_A).unwrap(), 3, 31);
    let client = stack::<4>(ex, switch.port([2, 0, 0, 0, 0, 0x11]).unwrap(), 2, 32);
    let attacker = switch.port(MAC_B).unwrap();
    let listener = leak(TcpListener::new(server).unwrap());
    listener.listen(PORT).unwrap();
    let listener: &'static TcpListener<'static> = listener;
    let mut s = CookieSetup {
        ex,
        switch,
        server,
        client,
        listener,
        attacker,
    };
    for i in 0..BACKLOG as u8 {
        let frame = syn(Ipv4Address::new(198, 51, 100, 10 + i), 20_000, 7);
        s.attacker.send_frame(&frame).unwrap();
    }
    ex.run_for(Duration::from_millis(50));
    assert_eq!(listener.backlog_len(), BACKLOG);
    s
}

#[test]
fn a_connection_through_a_syn_cookie_carries_data_both_ways_and_closes_cleanly() {
    const LEN: usize = 48 * 1024;
    let s = cookie_setup();
    let ex = s.ex;
    s.switch.capture(true);
    // The backlog is full and no socket accepts: the client still connects, through a cookie.
    let mut c = TcpSocket::new(s.client, buf(2048), buf(2048));
    c.set_timeout(Some(Duration::from_secs(30)));
    run(ex, c.connect(ep4(3, PORT))).unwrap();
    assert_eq!(c.state(), State::Established);
    ex.run_for(Duration::from_millis(50));
    let stats = s.listener.syn_cookies();
    assert_eq!((stats.sent, stats.validated, stats.connections), (1, 1, 1));
    // The validated connection took the place of the oldest spoofed SYN.
    assert_eq!(s.listener.backlog_len(), BACKLOG);
    let synack = s
        .switch
        .captured()
        .iter()
        .filter_map(|f| tcp_of(&f.data))
        .find(|t| t.syn && t.ack)
        .unwrap();
    assert_eq!((synack.src, synack.dst), (ip4(3), ip4(2)));
    drop(s.attacker);

    // A socket takes it first, ahead of the spoofed SYNs, and echoes.
    let served = Rc::new(Cell::new(0));
    let failed = Rc::new(Cell::new(0));
    spawn_echo_server(ex, s.server, s.listener, served.clone(), failed.clone());
    let mut data = vec![0u8; LEN];
    fill_pattern(9, 0, &mut data);
    let got = run(ex, async {
        let mut got = Vec::new();
        let mut off = 0;
        let mut tmp = [0u8; 700];
        while got.len() < LEN {
            if off < LEN {
                off += c.write(&data[off..]).await.unwrap();
            }
            while let Ok(n @ 1..) = c.try_read(&mut tmp) {
                got.extend_from_slice(&tmp[..n]);
            }
            if off == LEN && got.len() < LEN {
                let n = c.read(&mut tmp).await.unwrap();
                assert_ne!(n, 0, "end of stream after {} bytes", got.len());
                got.extend_from_slice(&tmp[..n]);
            }
        }
        c.close();
        let mut tmp = [0u8; 16];
        assert_eq!(c.read(&mut tmp).await, Ok(0));
        c.flush().await.unwrap();
        got
    });
    assert_eq!(got.len(), LEN);
    assert_eq!(check_pattern(9, 0, &got), Ok(()));
    ex.run_for(Duration::from_secs(1));
    assert_eq!((served.get(), failed.get()), (1, 0));
    assert!(matches!(c.state(), State::TimeWait | State::Closed));
    assert_eq!(s.listener.syn_cookies().connections, 0);

    // Every segment from the server after the handshake was translated into the cookie's
    // sequence space, and none was a RST.
    let frames: Vec<Tcp> = s
        .switch
        .captured()
        .iter()
        .filter_map(|f| tcp_of(&f.data))
        .filter(|t| t.src == ip4(3) && t.dst == ip4(2))
        .collect();
    assert!(frames.len() > 20, "{} segments", frames.len());
    assert!(frames.iter().all(|t| !t.rst));
    for t in &frames {
        let sent = t.seq.wrapping_sub(synack.seq);
        assert!(
            sent <= LEN as u32 + 2,
            "seq {} not in the cookie's space",
            t.seq
        );
    }
}

#[test]
fn a_forged_cookie_ack_gets_a_rst_and_no_entry() {
    let ex: &'static Executor<'static> = leak(Executor::new());
    let (server, peer) = with_peer(ex);
    let mut listener = TcpListener::new(server).unwrap();
    listener.listen(PORT).unwrap();
    // A full backlog, and one more SYN: answered with a cookie, so cookies are in use.
    for i in 0..=BACKLOG as u16 {
        peer.send(syn(ip4(1), 30_000 + i, 100));
    }
    ex.run_for(Duration::from_millis(100));
    let synack = tcp_received(&peer)
        .into_iter()
        .find(|t| t.syn && t.ack)
        .unwrap();
    assert_eq!(synack.dst_port, 30_000 + BACKLOG as u16);
    assert_eq!(listener.syn_cookies().sent, 1);
    // The SYN-ACK went to the SYN's link address without asking ARP; smoltcp's RSTs need the
    // peer's: a stray ACK to another port makes it ask (and drop that first RST).
    peer.send(segment(ip4(1), 5555, 81, TcpControl::None, 1, Some(1)));
    ex.run_for(Duration::from_millis(100));
    let before = tcp_received(&peer).iter().filter(|t| t.rst).count();

    // ACKs with a wrong cookie (the right one plus one, random ones), and the right cookie
    // from the wrong port or with the wrong sequence number: a RST each (smoltcp's answer to
    // a segment for no connection, as without cookies), no entry, nothing held.
    let mut rng = ferronet_integration::faults::TestRng::new(77);
    let mut forged = vec![
        (30_000 + BACKLOG as u16, 101, synack.seq.wrapping_add(2)),
        (30_100, 101, synack.seq.wrapping_add(1)),
        (30_000 + BACKLOG as u16, 500, synack.seq.wrapping_add(1)),
    ];
    for i in 0..20 {
        forged.push((31_000 + i, 101, rng.next_u64() as u32));
    }
    for &(port, seq, ack) in &forged {
        peer.send(segment(
            ip4(1),
            port,
            PORT,
            TcpControl::None,
            seq,
            Some(ack),
        ));
        ex.run_for(Duration::from_millis(20));
    }
    ex.run_for(Duration::from_millis(100));
    let stats = listener.syn_cookies();
    assert_eq!((stats.validated, stats.connections), (0, 0));
    assert_eq!(listener.backlog_len(), BACKLOG);
    let rsts: Vec<Tcp> = tcp_received(&peer)
        .into_iter()
        .filter(|t| t.rst)
        .skip(before)
        .collect();
    assert_eq!(rsts.len(), forged.len(), "{rsts:?}");
    for (r, &(port, _, ack)) in rsts.iter().zip(&forged) {
        assert_eq!((r.dst_port, r.seq), (port, ack));
    }

    // The right cookie validates (the client's ACK, with data): no RST, an entry ahead of
    // the held SYNs, which took the oldest one's place.
    let right = synack.seq.wrapping_add(1);
    peer.send(segment(
        ip4(1),
        30_000 + BACKLOG as u16,
        PORT,
        TcpControl::None,
        101,
        Some(right),
    ));
    ex.run_for(Duration::from_millis(50));
    let stats = listener.syn_cookies();
    assert_eq!((stats.validated, stats.connections), (1, 1));
    assert_eq!(listener.backlog_len(), BACKLOG);
    assert_eq!(
        tcp_received(&peer).iter().filter(|t| t.rst).count(),
        before + forged.len()
    );
    let token = run(ex, listener.accept()).unwrap();
    assert_eq!(
        token.remote_endpoint(),
        IpEndpoint::new(ip4(1).into(), 30_000 + BACKLOG as u16)
    );
    // Dropped unused, its entry goes back; closing the listener forgets it.
    drop(token);
    listener.close();
    ex.run_for(Duration::from_millis(50));
    assert_eq!(listener.syn_cookies().connections, 0);
}

/// Connections through SYN cookies over IPv6 on Ethernet, and over IPv4 and IPv6 on an IP
/// link (TUN-like, no link header): one server socket, a backlog of 4 filled by the other
/// clients' SYNs, so the sixth client of six gets a cookie; all six get their 8 KiB echoed
/// intact, and the table of cookie connections ends empty.
#[test]
fn cookie_connections_over_ipv6_and_over_an_ip_link() {
    use ferronet_integration::{dual_config, ip6};
    use ferronet_sim::link::{Endpoint, pair};
    const CLIENTS: usize = 6;
    let cases: [(bool, bool); 3] = [(false, true), (true, false), (true, true)];
    for (ip_link, v6) in cases {
        let ex: &'static Executor<'static> = leak(Executor::new());
        let (dev_c, dev_s, _link) = if ip_link {
            pair(LinkConfig::ip(), Endpoint::Ip, Endpoint::Ip).unwrap()
        } else {
            pair_ethernet(LinkConfig::default()).unwrap()
        };
        let client = stack_with::<{ CLIENTS + 4 }>(ex, dev_c, dual_config(2), 41);
        let server = stack_with::<8>(ex, dev_s, dual_config(3), 42);
        let listener = leak(TcpListener::new(server).unwrap());
        listener.listen(PORT).unwrap();
        let listener: &'static TcpListener<'static> = listener;
        let served = Rc::new(Cell::new(0));
        let failed = Rc::new(Cell::new(0));
        spawn_echo_server(ex, server, listener, served.clone(), failed.clone());
        ex.run_for(Duration::from_secs(1));
        let to = if v6 {
            IpEndpoint::new(ip6(3).into(), PORT)
        } else {
            ep4(3, PORT)
        };
        let results = run(
            ex,
            join_all((0..CLIENTS).map(|i| echo_client_to(client, to, i as u8, 8192))),
        );
        let case = format!("IP link {ip_link}, IPv6 {v6}");
        for r in &results {
            assert_eq!(r, &Ok(()), "{case}");
        }
        ex.run_for(Duration::from_secs(1));
        assert_eq!((served.get(), failed.get()), (CLIENTS, 0), "{case}");
        let cookies = listener.syn_cookies();
        assert!(cookies.validated >= 1, "{case}: {cookies:?}");
        assert_eq!(cookies.connections, 0, "{case}");
    }
}

/// A cookie ACK that finds the table of cookie connections full is dropped and leaves the
/// backlog as it was: the held SYN it would have replaced is answered as itself when a
/// socket takes it (it once got the dropped connection's made-up SYN).
#[test]
fn a_cookie_ack_that_finds_the_table_full_changes_nothing() {
    use ferronet::tcp::syncookie::TRANSLATED;
    let ex: &'static Executor<'static> = leak(Executor::new());
    let (dev_s, dev_p, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let server = stack::<{ TRANSLATED + 4 }>(ex, dev_s, 3, 9);
    let peer = Peer::new(PEER_MAC);
    peer.add_ipv4(ip4(1));
    peer.spawn(ex, dev_p);
    let listener = leak(TcpListener::new(server).unwrap());
    listener.listen(PORT).unwrap();
    let listener: &'static TcpListener<'static> = listener;
    ex.run_for(Duration::from_millis(10));

    // SYN-ACKs with cookies for these ports, and the ACKs that complete them.
    let cookies_for = |ports: std::ops::Range<u16>| {
        let since = Instant::now();
        for p in ports.clone() {
            peer.send(syn(ip4(1), p, 1000));
        }
        ex.run_for(Duration::from_millis(50));
        let got: Vec<Tcp> = peer
            .received_since(since)
            .iter()
            .filter_map(|r| tcp_of(&r.frame))
            .filter(|t| t.syn && t.ack && ports.contains(&t.dst_port))
            .collect();
        assert_eq!(got.len(), ports.len(), "{got:?}");
        got
    };
    let complete = |synacks: &[Tcp]| {
        for t in synacks {
            peer.send(segment(
                ip4(1),
                t.dst_port,
                PORT,
                TcpControl::None,
                1001,
                Some(t.seq.wrapping_add(1)),
            ));
        }
        ex.run_for(Duration::from_millis(50));
    };
    // The backlog full of held SYNs, then as many cookie connections as the table holds:
    // the first ACKs take the held SYNs' places, sockets take them (and keep them), and the
    // other ACKs, dropped while the backlog was full of validated connections, come again.
    for p in 100..100 + BACKLOG as u16 {
        peer.send(syn(ip4(1), p, 7));
    }
    ex.run_for(Duration::from_millis(50));
    assert_eq!(listener.backlog_len(), BACKLOG);
    let synacks = cookies_for(200..200 + TRANSLATED as u16);
    complete(&synacks);
    let taken = Rc::new(Cell::new(0));
    for _ in 0..TRANSLATED {
        let taken = taken.clone();
        ex.spawn(async move {
            let mut s = TcpSocket::new(server, buf(512), buf(512));
            let t = listener.accept().await.unwrap();
            s.accept_token(t).await.unwrap();
            taken.set(taken.get() + 1);
            core::future::pending::<()>().await;
        });
    }
    ex.run_for(Duration::from_millis(50));
    assert_eq!(taken.get(), BACKLOG);
    complete(&synacks[BACKLOG..]);
    assert_eq!(taken.get(), TRANSLATED);
    assert_eq!(listener.backlog_len(), 0);
    let stats = listener.syn_cookies();
    assert_eq!(stats.connections, TRANSLATED, "{stats:?}");

    // The backlog full of held SYNs again, one more cookie, and its ACK: dropped.
    let since = Instant::now();
    for p in 300..300 + BACKLOG as u16 {
        peer.send(syn(ip4(1), p, 3000 + u32::from(p)));
    }
    ex.run_for(Duration::from_millis(50));
    assert_eq!(listener.backlog_len(), BACKLOG);
    let last = cookies_for(400..401);
    complete(&last);
    assert_eq!(listener.syn_cookies().validated, stats.validated);
    assert_eq!(listener.backlog_len(), BACKLOG);

    // The oldest held SYN is answered as itself.
    let mut s = TcpSocket::new(server, buf(512), buf(512));
    let t = run(ex, listener.accept()).unwrap();
    assert_eq!(t.remote_endpoint(), IpEndpoint::new(ip4(1).into(), 300));
    assert!(s.accept_token(t).now_or_never().is_none());
    ex.run_for(Duration::from_millis(50));
    let answers: Vec<Tcp> = peer
        .received_since(since)
        .iter()
        .filter_map(|r| tcp_of(&r.frame))
        .filter(|t| t.syn && t.ack && t.dst_port != 400)
        .collect();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!((answers[0].dst_port, answers[0].ack_number), (300, 3301));
}
