//! Two ferronet stacks, each on a [`Lan9118`] driving a simulated chip, the chips cabled to
//! each other: TCP both ways, every byte checked, on the virtual clock of `ferronet-sim`.
//! The cable task plays the interrupt controller too: it calls [`on_interrupt`] whenever a
//! chip's IRQ line is up, so the stacks run only on the driver's interrupt-driven wake-ups.

extern crate std;

use std::boxed::Box;
use std::future::{Future, poll_fn};
use std::task::Poll;

use embassy_time::{Duration, Timer};
use embedded_io_async::{Read, Write};
use ferronet::tcp::TcpSocket;
use ferronet::{
    Config as NetConfig, IpEndpoint, Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4,
};
use ferronet_sim::executor::Executor;
use futures::future::join;

use crate::fake::FakeChip;
use crate::{Config, Lan9118, State, on_interrupt};

fn leak<T>(value: T) -> &'static mut T {
    Box::leak(Box::new(value))
}

fn pattern(seed: u8, i: usize) -> u8 {
    (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ seed
}

#[track_caller]
fn run<F: Future>(ex: &Executor<'_>, f: F) -> F::Output {
    match ex.try_run_until(f, Duration::from_secs(3600)) {
        Ok(out) => out,
        Err(e) => panic!("hang: {e}"),
    }
}

#[derive(Clone, Copy)]
struct Host {
    chip: &'static FakeChip,
    state: &'static State,
}

/// Bytes each way in an exchange.
const LEN: usize = 200 * 1024;

/// The cable and the interrupt controller: moves every frame a chip sent into the other
/// chip's RX FIFO, and runs the interrupt handler of a chip whose IRQ line is up. With
/// `slow`, a chip's TX FIFO empties only every 100 µs, so it fills up and the drivers have to
/// hold the stacks back.
async fn cable(a: Host, b: Host, slow: bool) {
    loop {
        if slow {
            Timer::after_micros(100).await;
            a.chip.release_tx();
            b.chip.release_tx();
        } else {
            // Until a chip sends something.
            poll_fn(|cx| {
                let mut sent = false;
                for h in [a, b] {
                    let mut s = h.chip.inner.borrow_mut();
                    s.wire_waker = Some(cx.waker().clone());
                    sent |= !s.sent.is_empty();
                }
                if sent { Poll::Ready(()) } else { Poll::Pending }
            })
            .await;
        }
        for (from, to) in [(a, b), (b, a)] {
            let sent = core::mem::take(&mut from.chip.inner.borrow_mut().sent);
            for frame in sent {
                to.chip.receive(&frame.data, 0);
            }
        }
        for h in [a, b] {
            if h.chip.irq_line() {
                on_interrupt(h.chip, h.state);
            }
        }
    }
}

/// The network stack on the second host.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peer {
    Ferronet,
    EmbassyNet,
}

/// A simulated chip and its driver, for host 192.0.2.`n`.
fn host(n: u8, slow: bool) -> (Host, Lan9118<'static, &'static FakeChip>) {
    let chip: &'static FakeChip = leak(FakeChip::new());
    chip.with(|s| s.tx_hold = slow);
    let state: &'static State = leak(State::new());
    let config = Config {
        mac: Some([0x02, 0, 0, 0, 0, n]),
        ..Config::default()
    };
    let dev = Lan9118::new(chip, state, config).unwrap();
    (Host { chip, state }, dev)
}

fn buf() -> &'static mut [u8] {
    &mut leak([0u8; 8192])[..]
}

/// Two hosts, each a stack on a driver on a simulated chip, the chips cabled together: host 1
/// (ferronet) connects to host 2 (`peer`) and `LEN` bytes go each way over TCP at once, every
/// byte checked.
fn exchange(slow: bool, peer: Peer) -> [Host; 2] {
    let ex = Executor::new();
    let (a, dev_a) = host(1, slow);
    let (b, dev_b) = host(2, slow);
    ex.spawn(cable(a, b, slow));
    let net = NetConfig::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, 1), 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let (stack_a, mut runner_a) = ferronet::new(dev_a, net, leak(StackResources::<4>::new()), 1);
    ex.spawn(async move { runner_a.run().await });
    let mut client = TcpSocket::new(stack_a, buf(), buf());
    let connect = client.connect(IpEndpoint::new(Ipv4Address::new(192, 0, 2, 2).into(), 7));

    let (c_got, s_got) = match peer {
        Peer::Ferronet => {
            let net = NetConfig::ipv4_static(StaticConfigV4 {
                address: Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, 2), 24),
                gateway: None,
                dns_servers: Default::default(),
            });
            let (stack_b, mut runner_b) =
                ferronet::new(dev_b, net, leak(StackResources::<4>::new()), 2);
            ex.spawn(async move { runner_b.run().await });
            let mut server = TcpSocket::new(stack_b, buf(), buf());
            let (acc, con) = run(&ex, join(server.accept(7), connect));
            assert_eq!((acc, con), (Ok(()), Ok(())));
            let (cr, cw) = client.split();
            let (sr, sw) = server.split();
            run(&ex, both_ways((cr, cw), (sr, sw)))
        }
        Peer::EmbassyNet => {
            let net = embassy_net::Config::ipv4_static(embassy_net::StaticConfigV4 {
                address: embassy_net::Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, 2), 24),
                gateway: None,
                dns_servers: Default::default(),
            });
            let (stack_b, mut runner_b) =
                embassy_net::new(dev_b, net, leak(embassy_net::StackResources::<4>::new()), 2);
            ex.spawn(async move { runner_b.run().await });
            let mut server = embassy_net::tcp::TcpSocket::new(stack_b, buf(), buf());
            let (acc, con) = run(&ex, join(server.accept(7), connect));
            assert!(acc.is_ok() && con.is_ok());
            let (cr, cw) = client.split();
            let (sr, sw) = server.split();
            run(&ex, both_ways((cr, cw), (sr, sw)))
        }
    };
    assert_eq!((c_got, s_got), (LEN, LEN));

    // Every frame was counted on both sides, with no error.
    let hosts = [a, b];
    for (me, other) in [(hosts[0], hosts[1]), (hosts[1], hosts[0])] {
        let (c, p) = (me.state.counters(), other.state.counters());
        assert!(c.interrupts > 0, "{c:?}");
        assert_eq!((c.rx_errors, c.tx_errors, c.rx_dropped), (0, 0, 0), "{c:?}");
        assert!(c.rx_frames as usize > LEN / 1460, "{c:?}");
        assert_eq!(me.chip.inner.borrow().rx_underruns, 0);
        if !slow {
            // What the other one sent, whether or not it has read the TX status back yet.
            let unread = other.chip.inner.borrow().tx_status.len() as u32;
            assert_eq!(c.rx_frames, p.tx_frames + unread, "{c:?} {p:?}");
        }
    }
    hosts
}

#[test]
fn tcp_both_ways_between_two_drivers() {
    exchange(false, Peer::Ferronet);
}

#[test]
fn embassy_net_runs_on_the_driver_too() {
    exchange(false, Peer::EmbassyNet);
}

#[test]
fn tcp_both_ways_through_full_tx_fifos() {
    let hosts = exchange(true, Peer::Ferronet);
    // The TX FIFOs did fill up, and the TX space interrupt brought the stacks back.
    for h in hosts {
        let c = h.state.counters();
        assert!(c.tx_fifo_full > 0, "TX backpressure never happened: {c:?}");
    }
}

/// Sends `LEN` bytes each way at once over two connected sockets' halves (client's, then
/// server's); returns how many bytes the client and the server received.
async fn both_ways(
    (mut cr, mut cw): (impl Read, impl Write),
    (mut sr, mut sw): (impl Read, impl Write),
) -> (usize, usize) {
    let (_, got) = join(
        join(send_stream(&mut cw, 0xa1), send_stream(&mut sw, 0xb2)),
        join(recv_stream(&mut cr, 0xb2), recv_stream(&mut sr, 0xa1)),
    )
    .await;
    got
}

/// Writes `LEN` bytes of stream `seed`, then flushes.
async fn send_stream(w: &mut impl Write, seed: u8) {
    let mut chunk = [0u8; 1000];
    let mut sent = 0;
    while sent < LEN {
        let n = chunk.len().min(LEN - sent);
        for (k, b) in chunk[..n].iter_mut().enumerate() {
            *b = pattern(seed, sent + k);
        }
        w.write_all(&chunk[..n]).await.expect("write");
        sent += n;
    }
    w.flush().await.expect("flush");
}

/// Reads `LEN` bytes, checking each against stream `seed`; returns how many came.
async fn recv_stream(r: &mut impl Read, seed: u8) -> usize {
    let mut tmp = [0u8; 3000];
    let mut got = 0;
    while got < LEN {
        let n = r.read(&mut tmp).await.expect("read");
        assert!(n > 0, "end of stream after {got} bytes");
        for (k, b) in tmp[..n].iter().enumerate() {
            assert_eq!(
                *b,
                pattern(seed, got + k),
                "stream {seed:#x} byte {}",
                got + k
            );
        }
        got += n;
    }
    got
}
