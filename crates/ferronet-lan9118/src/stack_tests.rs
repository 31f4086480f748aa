//! Two ferronet stacks, each on a [`Lan9118`] driving a simulated chip, the chips cabled to
//! each other: TCP both ways, every byte checked, on the virtual clock of `ferronet-sim`.
//! The cable task plays the interrupt controller too: it calls [`on_interrupt`] whenever a
//! chip's IRQ line is up, so the stacks run only on the driver's interrupt-driven wake-ups.

extern crate std;

use std::boxed::Box;
use std::future::{Future, poll_fn};
use std::task::Poll;
use std::vec;

use embassy_time::{Duration, Timer};
use ferronet::tcp::{TcpReader, TcpSocket, TcpWriter};
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

/// Two stacks on two drivers on two cabled chips; `LEN` bytes each way over TCP.
fn exchange(slow: bool) -> [Host; 2] {
    let ex = Executor::new();
    let mut hosts = vec![];
    let mut stacks = vec![];
    for host in 1..=2u8 {
        let chip: &'static FakeChip = leak(FakeChip::new());
        chip.with(|s| s.tx_hold = slow);
        let state: &'static State = leak(State::new());
        let config = Config {
            mac: Some([0x02, 0, 0, 0, 0, host]),
            ..Config::default()
        };
        let dev = Lan9118::new(chip, state, config).unwrap();
        let net = NetConfig::ipv4_static(StaticConfigV4 {
            address: Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, host), 24),
            gateway: None,
            dns_servers: Default::default(),
        });
        let (stack, mut runner) =
            ferronet::new(dev, net, leak(StackResources::<4>::new()), u64::from(host));
        ex.spawn(async move { runner.run().await });
        hosts.push(Host { chip, state });
        stacks.push(stack);
    }
    let hosts = [hosts[0], hosts[1]];
    ex.spawn(cable(hosts[0], hosts[1], slow));

    let buf = || &mut leak([0u8; 8192])[..];
    let mut client = TcpSocket::new(stacks[0], buf(), buf());
    let mut server = TcpSocket::new(stacks[1], buf(), buf());
    let (acc, con) = run(
        &ex,
        join(
            server.accept(7),
            client.connect(IpEndpoint::new(Ipv4Address::new(192, 0, 2, 2).into(), 7)),
        ),
    );
    assert_eq!((acc, con), (Ok(()), Ok(())));
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let ((), (), c_got, s_got) = run(&ex, async {
        let ((x, y), (c, s)) = join(
            join(
                send_stream(&mut cw, 0xa1, LEN),
                send_stream(&mut sw, 0xb2, LEN),
            ),
            join(
                recv_stream(&mut cr, 0xb2, LEN),
                recv_stream(&mut sr, 0xa1, LEN),
            ),
        )
        .await;
        (x, y, c, s)
    });
    assert_eq!((c_got, s_got), (LEN, LEN));

    // Every frame was counted on both sides, with no error.
    for (me, peer) in [(hosts[0], hosts[1]), (hosts[1], hosts[0])] {
        let (c, p) = (me.state.counters(), peer.state.counters());
        assert!(c.interrupts > 0, "{c:?}");
        assert_eq!((c.rx_errors, c.tx_errors, c.rx_dropped), (0, 0, 0), "{c:?}");
        assert!(c.rx_frames as usize > LEN / 1460, "{c:?}");
        assert_eq!(me.chip.inner.borrow().rx_underruns, 0);
        if !slow {
            assert_eq!(c.rx_frames, p.tx_frames, "{c:?} {p:?}");
        }
    }
    hosts
}

#[test]
fn tcp_both_ways_between_two_drivers() {
    exchange(false);
}

#[test]
fn tcp_both_ways_through_full_tx_fifos() {
    let hosts = exchange(true);
    // The TX FIFOs did fill up, and the TX space interrupt brought the stacks back.
    for h in hosts {
        let c = h.state.counters();
        assert!(c.tx_fifo_full > 0, "TX backpressure never happened: {c:?}");
    }
}

/// Writes `len` bytes of stream `seed`, then flushes.
async fn send_stream(w: &mut TcpWriter<'_>, seed: u8, len: usize) {
    let mut chunk = [0u8; 1000];
    let mut sent = 0;
    while sent < len {
        let n = chunk.len().min(len - sent);
        for (k, b) in chunk[..n].iter_mut().enumerate() {
            *b = pattern(seed, sent + k);
        }
        let mut off = 0;
        while off < n {
            off += w.write(&chunk[off..n]).await.expect("write");
        }
        sent += n;
    }
    w.flush().await.expect("flush");
}

/// Reads `len` bytes, checking each against stream `seed`; returns how many came.
async fn recv_stream(r: &mut TcpReader<'_>, seed: u8, len: usize) -> usize {
    let mut tmp = [0u8; 3000];
    let mut got = 0;
    while got < len {
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
