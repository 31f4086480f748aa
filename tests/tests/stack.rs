//! The stack handle and the runner: configuration and link waiters, run-time
//! reconfiguration, an idle runner that sleeps, fairness under load, the hardware address,
//! the socket table, IP-medium devices and the counters.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use embassy_net_driver::{Capabilities, Driver, LinkState};
use embassy_time::{Duration, Timer, with_timeout};
use ferronet::tcp::TcpSocket;
use ferronet::udp::{PacketMetadata, SendError, UdpSocket};
use ferronet::{
    Config, ConfigV4, EthernetAddress, HardwareAddress, IpAddress, IpEndpoint, Ipv4Address,
    Ipv4Cidr, NewStackError, Runner, SocketTableFull, Stack, StackResources, StaticConfigV4,
};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{Endpoint, LinkConfig, MAC_A, SimDevice, pair, pair_ethernet};

/// Generous virtual time limit: anything that needs longer has hung.
const LIMIT: Duration = Duration::from_secs(60);

fn metas(n: usize) -> &'static mut [PacketMetadata] {
    Box::leak(
        (0..n)
            .map(|_| PacketMetadata::EMPTY)
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

fn udp_socket(stack: Stack<'static>, cap: usize, n: usize) -> UdpSocket<'static> {
    UdpSocket::new(stack, metas(n), buf(cap), metas(n), buf(cap))
}

fn spawn_runner<D: Driver + 'static>(ex: &Executor<'_>, mut runner: Runner<'static, D>) {
    ex.spawn(async move {
        runner.run().await;
    });
}

/// Spawn a task that echoes every datagram received on `port` back to its sender.
fn spawn_udp_echo(ex: &Executor<'_>, stack: Stack<'static>, port: u16) {
    ex.spawn(async move {
        let mut s = udp_socket(stack, 8192, 16);
        s.bind(port).unwrap();
        let mut tmp = vec![0u8; 2048];
        loop {
            let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
            s.send_to(&tmp[..n], meta.endpoint).await.unwrap();
        }
    });
}

/// Send `data` to `peer` from `s` and return the reply and where it came from.
async fn exchange(s: &UdpSocket<'_>, data: &[u8], peer: IpEndpoint) -> (Vec<u8>, IpEndpoint) {
    s.send_to(data, peer).await.unwrap();
    let mut tmp = vec![0u8; 2048];
    let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
    (tmp[..n].to_vec(), meta.endpoint)
}

/// Yield once to the executor.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Counts the polls of a future into `polls`, and panics (failing the test instead of
/// hanging it) if they pass 1000: waiters that wake each other in a loop would never let
/// virtual time move.
async fn counted<F: Future>(polls: Rc<Cell<u32>>, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        polls.set(polls.get() + 1);
        assert!(polls.get() <= 1000, "a waiter was polled over 1000 times");
        fut.as_mut().poll(cx)
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Configuration and link waiters

#[test]
fn many_config_waiters_sleep_until_configured() {
    let ex = Executor::new();
    let (dev_a, _dev_b, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (a, runner) = stack_on(dev_a, Config::default(), 1);
    spawn_runner(&ex, runner);
    assert!(!a.is_config_up());
    assert_eq!(a.config_v4(), None);
    assert_eq!(a.config_v6(), None);

    let up_done = Rc::new(Cell::new(0u32));
    let waiter_polls = Rc::new(Cell::new(0u32));
    for _ in 0..5 {
        let (up_done, waiter_polls) = (up_done.clone(), waiter_polls.clone());
        ex.spawn(async move {
            counted(waiter_polls, a.wait_config_up()).await;
            up_done.set(up_done.get() + 1);
        });
    }
    ex.run_for(Duration::from_secs(10));
    assert_eq!(
        up_done.get(),
        0,
        "wait_config_up completed without a configuration"
    );
    assert!(
        waiter_polls.get() <= 10,
        "5 waiters were polled {} times with nothing to wait for",
        waiter_polls.get()
    );
    // Five waiters, a runner: a handful of polls, not waiters waking each other in a loop.
    let polls = ex.polls();
    assert!(polls < 100, "{polls} task polls in 10 s with nothing to do");
    ex.run_for(Duration::from_secs(10));
    assert!(
        ex.polls() - polls <= 2,
        "{} task polls in a further idle 10 s",
        ex.polls() - polls
    );

    a.set_config_v4(ConfigV4::Static(v4_config(2)));
    assert!(a.is_config_up());
    assert_eq!(a.config_v4(), Some(v4_config(2)));
    ex.run_for(Duration::from_millis(1));
    assert_eq!(
        up_done.get(),
        5,
        "not every wait_config_up waiter completed"
    );

    // Already up: completes at once.
    let late = ex.try_run_until(a.wait_config_up(), Duration::from_millis(1));
    assert_eq!(late, Ok(()));

    let down_done = Rc::new(Cell::new(0u32));
    for _ in 0..3 {
        let (down_done, waiter_polls) = (down_done.clone(), waiter_polls.clone());
        ex.spawn(async move {
            counted(waiter_polls, a.wait_config_down()).await;
            down_done.set(down_done.get() + 1);
        });
    }
    ex.run_for(Duration::from_secs(5));
    assert_eq!(
        down_done.get(),
        0,
        "wait_config_down completed while configured"
    );
    a.set_config_v4(ConfigV4::None);
    assert!(!a.is_config_up());
    assert_eq!(a.config_v4(), None);
    ex.run_for(Duration::from_millis(1));
    assert_eq!(
        down_done.get(),
        3,
        "not every wait_config_down waiter completed"
    );
    assert_eq!(ex.pending_tasks(), 1, "only the runner is left");
}

/// A datagram as B saw it: payload and destination address.
type Received = (Vec<u8>, Option<IpAddress>);

#[test]
fn set_config_v4_at_run_time_moves_the_address() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    // B logs what it receives (payload, destination address) and echoes it.
    let log: Rc<RefCell<Vec<Received>>> = Rc::default();
    let log2 = log.clone();
    ex.spawn(async move {
        let mut s = udp_socket(b, 4096, 8);
        s.bind(7).unwrap();
        let mut tmp = [0u8; 256];
        loop {
            let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
            log2.borrow_mut()
                .push((tmp[..n].to_vec(), meta.local_address));
            s.send_to(&tmp[..n], meta.endpoint).await.unwrap();
        }
    });

    let old = IpEndpoint::new(ip4(3).into(), 7);
    let new_addr = ip4(33);
    let new = IpEndpoint::new(new_addr.into(), 7);
    let new_config = StaticConfigV4 {
        address: Ipv4Cidr::new(new_addr, 24),
        gateway: None,
        dns_servers: heapless::Vec::new(),
    };

    let mut s = udp_socket(a, 4096, 8);
    s.bind(0).unwrap();
    let s = &s;
    let r = ex
        .try_run_until(exchange(s, b"one", old), LIMIT)
        .expect("no reply at the old address");
    assert_eq!(r, (b"one".to_vec(), old));

    // The new address takes effect at once: no run of the executor in between.
    b.set_config_v4(ConfigV4::Static(new_config.clone()));
    assert_eq!(b.config_v4(), Some(new_config));
    let r = ex
        .try_run_until(exchange(s, b"two", new), LIMIT)
        .expect("no reply at the new address");
    assert_eq!(r, (b"two".to_vec(), new));

    // The old address is gone: no reply.
    let r = ex
        .try_run_until(
            with_timeout(Duration::from_secs(5), exchange(s, b"three", old)),
            LIMIT,
        )
        .unwrap();
    assert!(r.is_err(), "reply from the old address: {r:?}");
    assert_eq!(
        *log.borrow(),
        vec![
            (b"one".to_vec(), Some(IpAddress::from(ip4(3)))),
            (b"two".to_vec(), Some(IpAddress::from(new_addr))),
        ]
    );

    // The old gateway went with the old configuration: off-link is unreachable from B.
    let mut t = udp_socket(b, 256, 2);
    t.bind(0).unwrap();
    let off_link = IpEndpoint::new(Ipv4Address::new(198, 51, 100, 1).into(), 7);
    let r = ex
        .try_run_until(t.send_to(b"x", off_link), Duration::from_secs(1))
        .unwrap();
    assert_eq!(r, Err(SendError::NoRoute));
}

#[test]
fn link_state_follows_the_link() {
    let ex = Executor::new();
    let (a, b, link) = spawn_pair(&ex, LinkConfig::default());

    let count = Rc::new(Cell::new(0u32));
    let spawn_waiters = |up: bool, n: u32| {
        for _ in 0..n {
            let count = count.clone();
            let polls = Rc::new(Cell::new(0));
            ex.spawn(async move {
                if up {
                    counted(polls, a.wait_link_up()).await;
                } else {
                    counted(polls, a.wait_link_down()).await;
                }
                count.set(count.get() + 1);
            });
        }
    };

    // The runner reports the link up on its first poll.
    spawn_waiters(true, 3);
    ex.run_for(Duration::from_millis(1));
    assert_eq!(count.get(), 3);
    assert!(a.is_link_up() && b.is_link_up());

    count.set(0);
    spawn_waiters(false, 3);
    ex.run_for(Duration::from_secs(5));
    assert_eq!(
        count.get(),
        0,
        "wait_link_down completed while the link is up"
    );
    link.set_up(false);
    ex.run_for(Duration::from_millis(1));
    assert_eq!(count.get(), 3, "not every wait_link_down waiter completed");
    assert!(!a.is_link_up() && !b.is_link_up());

    count.set(0);
    spawn_waiters(true, 4);
    ex.run_for(Duration::from_secs(5));
    assert_eq!(
        count.get(),
        0,
        "wait_link_up completed while the link is down"
    );
    link.set_up(true);
    ex.run_for(Duration::from_millis(1));
    assert_eq!(count.get(), 4, "not every wait_link_up waiter completed");
    assert!(a.is_link_up() && b.is_link_up());
    // Only the two runners are left.
    assert_eq!(ex.pending_tasks(), 2);
}

// ---------------------------------------------------------------------------------------------
// The runner sleeps when idle and shares the executor under load

/// Let things settle, then check that 10 minutes of virtual time wake nothing.
fn assert_idle(ex: &Executor<'_>, stacks: &[Stack<'static>], what: &str) {
    ex.run_for(Duration::from_secs(5));
    let before: Vec<u32> = stacks.iter().map(|s| s.counters().polls).collect();
    let polls = ex.polls();
    ex.run_for(Duration::from_secs(600));
    let after: Vec<u32> = stacks.iter().map(|s| s.counters().polls).collect();
    assert_eq!(
        before, after,
        "{what}: runner polls grew over 600 idle seconds"
    );
    let extra = ex.polls() - polls;
    assert!(
        extra <= 4,
        "{what}: {extra} task polls over 600 idle seconds"
    );
}

#[test]
fn idle_runner_sleeps() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    assert_idle(&ex, &[a, b], "no sockets");
}

#[test]
fn idle_runner_sleeps_with_an_idle_udp_socket() {
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    spawn_udp_echo(&ex, b, 7);
    let mut s = udp_socket(a, 1024, 4);
    s.bind(0).unwrap();
    // Some traffic first (ARP, NDP), then nothing.
    for peer in [ip4(3).into(), ip6(3).into()] {
        let peer = IpEndpoint::new(peer, 7);
        let r = ex
            .try_run_until(exchange(&s, b"ping", peer), LIMIT)
            .unwrap();
        assert_eq!(r, (b"ping".to_vec(), peer));
    }
    assert_idle(&ex, &[a, b], "idle UDP socket");
}

#[test]
fn idle_runner_sleeps_while_the_link_is_down() {
    let ex = Executor::new();
    let (a, b, link) = spawn_pair(&ex, LinkConfig::default());
    spawn_udp_echo(&ex, b, 7);
    let mut s = udp_socket(a, 1024, 4);
    s.bind(0).unwrap();
    let peer = IpEndpoint::new(ip4(3).into(), 7);
    ex.try_run_until(exchange(&s, b"ping", peer), LIMIT)
        .unwrap();
    link.set_up(false);
    ex.run_for(Duration::from_millis(10));
    assert!(!a.is_link_up());
    assert_idle(&ex, &[a, b], "link down");
    // A datagram queued while the link is down (the ARP entry has expired by now) makes
    // smoltcp retry ARP for it, once per second: no busy loop.
    ex.try_run_until(s.send_to(b"queued", peer), Duration::from_secs(1))
        .unwrap()
        .unwrap();
    ex.run_for(Duration::from_secs(5));
    let (c0, l0, polls) = (a.counters(), link.stats().a_to_b, ex.polls());
    let b_rx = b.counters().rx_frames;
    ex.run_for(Duration::from_secs(600));
    let (c1, l1) = (a.counters(), link.stats().a_to_b);
    let runner_polls = c1.polls - c0.polls;
    assert!(
        runner_polls <= 2 * 600,
        "{runner_polls} runner polls in 600 s with the link down"
    );
    assert!(ex.polls() - polls <= 2 * 600 + 4);
    assert!(c1.tx_frames - c0.tx_frames <= runner_polls);
    assert_eq!(
        l1.sent - l0.sent,
        l1.dropped_link_down - l0.dropped_link_down
    );
    assert_eq!(
        b.counters().rx_frames,
        b_rx,
        "B received frames over a down link"
    );

    // Back up: the stack works again.
    link.set_up(true);
    let r = ex.try_run_until(
        async {
            s.send_to(b"after", peer).await.unwrap();
            let mut tmp = [0u8; 64];
            loop {
                let (n, _) = s.recv_from(&mut tmp).await.unwrap();
                if &tmp[..n] == b"after" {
                    break;
                }
            }
        },
        LIMIT,
    );
    assert!(r.is_ok(), "no echo after the link came back");
}

/// A task that yields to the executor in a loop until `stop`, counting its turns. After
/// `cap` turns it sleeps 1 ms per turn instead, so that it cannot keep virtual time from
/// moving forever if the transfer needs a timer.
fn spawn_yielder(ex: &Executor<'_>, runs: Rc<Cell<u64>>, stop: Rc<Cell<bool>>) {
    const CAP: u64 = 200_000;
    ex.spawn(async move {
        while !stop.get() {
            runs.set(runs.get() + 1);
            if runs.get() < CAP {
                YieldNow(false).await;
            } else {
                Timer::after_millis(1).await;
            }
        }
    });
}

#[test]
fn runner_under_udp_load_does_not_starve_other_tasks() {
    const N: usize = 2000;
    const LEN: usize = 1000;
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let received = Rc::new(Cell::new(0usize));
    let max_burst = Rc::new(Cell::new(0usize));
    let runs = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    {
        let (received, max_burst, runs) = (received.clone(), max_burst.clone(), runs.clone());
        ex.spawn(async move {
            let mut s = udp_socket(b, 256 * 1024, 256);
            s.bind(9).unwrap();
            let mut tmp = vec![0u8; 2048];
            let (mut last_runs, mut burst) = (0, 0);
            loop {
                let (n, meta) = s.recv_from(&mut tmp).await.unwrap();
                if n == 1 {
                    // Warm-up datagram: answer it.
                    s.send_to(&tmp[..1], meta.endpoint).await.unwrap();
                    continue;
                }
                assert_eq!(n, LEN);
                let seq = u32::from_be_bytes(tmp[..4].try_into().unwrap());
                assert_eq!(check_pattern(seq as u8, 4, &tmp[4..n]), Ok(()));
                received.set(received.get() + 1);
                // Datagrams handled since the other task last ran.
                if runs.get() != last_runs {
                    last_runs = runs.get();
                    burst = 0;
                }
                burst += 1;
                max_burst.set(max_burst.get().max(burst));
            }
        });
    }

    let mut s = udp_socket(a, 16 * 1024, 16);
    s.bind(0).unwrap();
    let peer = IpEndpoint::new(ip4(3).into(), 9);
    // Warm up (ARP) before the other task starts.
    ex.try_run_until(exchange(&s, b"w", peer), LIMIT).unwrap();

    spawn_yielder(&ex, runs.clone(), stop.clone());
    let runs_during = ex
        .try_run_until(
            async {
                let start = runs.get();
                let mut d = vec![0u8; LEN];
                for seq in 0..N as u32 {
                    d[..4].copy_from_slice(&seq.to_be_bytes());
                    fill_pattern(seq as u8, 4, &mut d[4..]);
                    s.send_to(&d, peer).await.unwrap();
                }
                s.flush().await;
                runs.get() - start
            },
            LIMIT,
        )
        .expect("UDP flood did not complete");
    ex.run_for(Duration::from_millis(10));
    stop.set(true);
    ex.run_for(Duration::from_millis(10));
    assert!(
        runs_during >= 100,
        "the other task ran only {runs_during} times during the flood"
    );
    // The link is lossless with backpressure and B's socket holds more datagrams than can
    // be in flight, so none is lost.
    assert_eq!(received.get(), N);
    // Each runner poll handles at most 32 frames in and 32 passes out.
    assert!(
        max_burst.get() <= 128,
        "{} datagrams were handled without the other task running",
        max_burst.get()
    );
}

#[test]
fn runner_under_tcp_load_does_not_starve_other_tasks() {
    const TOTAL: usize = 1 << 20;
    let ex = Executor::new();
    let (a, b, _link) = spawn_pair(&ex, LinkConfig::default());
    let runs = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    let got = Rc::new(Cell::new(0usize));
    {
        let got = got.clone();
        ex.spawn(async move {
            let mut s = TcpSocket::new(b, buf(16 * 1024), buf(1024));
            s.accept(5000).await.unwrap();
            let mut tmp = vec![0u8; 4096];
            loop {
                let n = s.read(&mut tmp).await.unwrap();
                if n == 0 {
                    break;
                }
                assert_eq!(check_pattern(9, got.get(), &tmp[..n]), Ok(()));
                got.set(got.get() + n);
            }
            s.close();
            s.flush().await.unwrap();
        });
    }
    let mut s = TcpSocket::new(a, buf(1024), buf(16 * 1024));
    ex.try_run_until(s.connect(IpEndpoint::new(ip4(3).into(), 5000)), LIMIT)
        .unwrap()
        .unwrap();

    spawn_yielder(&ex, runs.clone(), stop.clone());
    let got2 = got.clone();
    let runs_during = ex
        .try_run_until(
            async {
                let start = runs.get();
                let mut off = 0;
                let mut chunk = vec![0u8; 4096];
                while off < TOTAL {
                    let n = chunk.len().min(TOTAL - off);
                    fill_pattern(9, off, &mut chunk[..n]);
                    off += s.write(&chunk[..n]).await.unwrap();
                }
                while got2.get() < TOTAL {
                    YieldNow(false).await;
                }
                runs.get() - start
            },
            LIMIT,
        )
        .expect("TCP transfer did not complete");
    stop.set(true);
    assert_eq!(got.get(), TOTAL);
    assert!(
        runs_during >= 100,
        "the other task ran only {runs_during} times during the transfer"
    );
}

// ---------------------------------------------------------------------------------------------
// Hardware address

/// What the test driver reports as its address, and the runner's waker to tell it.
#[derive(Default)]
struct AddrCell {
    addr: Option<embassy_net_driver::HardwareAddress>,
    waker: Option<Waker>,
}

/// A driver that is a [`SimDevice`] whose hardware address the test can change while the
/// runner owns it.
struct AddrDevice {
    inner: SimDevice,
    cell: Rc<RefCell<AddrCell>>,
}

impl AddrDevice {
    fn new(inner: SimDevice) -> (Self, Rc<RefCell<AddrCell>>) {
        let cell = Rc::new(RefCell::new(AddrCell {
            addr: Some(inner.hardware_address()),
            waker: None,
        }));
        (
            Self {
                inner,
                cell: cell.clone(),
            },
            cell,
        )
    }
}

fn set_addr(cell: &RefCell<AddrCell>, addr: embassy_net_driver::HardwareAddress) {
    let mut c = cell.borrow_mut();
    c.addr = Some(addr);
    if let Some(w) = c.waker.take() {
        w.wake();
    }
}

impl Driver for AddrDevice {
    type RxToken<'a>
        = <SimDevice as Driver>::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = <SimDevice as Driver>::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.inner.receive(cx)
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(cx)
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        self.cell.borrow_mut().waker = Some(cx.waker().clone());
        self.inner.link_state(cx)
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn hardware_address(&self) -> embassy_net_driver::HardwareAddress {
        self.cell
            .borrow()
            .addr
            .unwrap_or(self.inner.hardware_address())
    }
}

#[test]
fn hardware_address_follows_the_driver() {
    const NEW_MAC: [u8; 6] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
    let ex = Executor::new();

    // The address the device has when the stack is made.
    {
        let (mut dev, _peer, _link) = pair_ethernet(LinkConfig::default()).unwrap();
        dev.set_hardware_address(embassy_net_driver::HardwareAddress::Ethernet(NEW_MAC));
        let (stack, _runner) = stack_on(dev, dual_config(2), 1);
        assert_eq!(
            stack.hardware_address(),
            HardwareAddress::Ethernet(EthernetAddress(NEW_MAC))
        );
    }

    let (dev_a, dev_b, link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (dev_a, cell) = AddrDevice::new(dev_a);
    let (a, runner_a) = ferronet::new(
        dev_a,
        dual_config(2),
        leak(StackResources::<SOCKETS>::new()),
        1,
    );
    let (b, runner_b) = stack_on(dev_b, dual_config(3), 2);
    spawn_runner(&ex, runner_a);
    spawn_runner(&ex, runner_b);
    ex.run_for(Duration::from_millis(10));
    assert_eq!(
        a.hardware_address(),
        HardwareAddress::Ethernet(EthernetAddress(MAC_A))
    );

    set_addr(
        &cell,
        embassy_net_driver::HardwareAddress::Ethernet(NEW_MAC),
    );
    ex.run_for(Duration::from_millis(1));
    assert_eq!(
        a.hardware_address(),
        HardwareAddress::Ethernet(EthernetAddress(NEW_MAC)),
        "the runner did not pick up the driver's new address"
    );

    // Frames from A now carry the new source MAC.
    link.capture(true);
    let mut rx = udp_socket(b, 1024, 4);
    rx.bind(9).unwrap();
    let mut s = udp_socket(a, 1024, 4);
    s.bind(0).unwrap();
    let got = ex
        .try_run_until(
            async {
                s.send_to(b"new mac", IpEndpoint::new(ip4(3).into(), 9))
                    .await
                    .unwrap();
                let mut tmp = [0u8; 64];
                let (n, _) = rx.recv_from(&mut tmp).await.unwrap();
                tmp[..n].to_vec()
            },
            LIMIT,
        )
        .unwrap();
    assert_eq!(got, b"new mac");
    let frames: Vec<_> = link
        .captured()
        .into_iter()
        .filter(|f| f.direction == ferronet_sim::link::Direction::AToB)
        .collect();
    assert!(!frames.is_empty());
    for f in &frames {
        assert_eq!(
            f.data[6..12],
            NEW_MAC,
            "a frame from A with an old source MAC"
        );
    }

    // An address of another medium is ignored.
    set_addr(
        &cell,
        embassy_net_driver::HardwareAddress::Ieee802154([1; 8]),
    );
    ex.run_for(Duration::from_millis(1));
    assert_eq!(
        a.hardware_address(),
        HardwareAddress::Ethernet(EthernetAddress(NEW_MAC))
    );
}

// `try_new` with a medium whose feature is off: crates/ferronet/tests/medium.rs (it needs a
// feature set without `medium-ieee802154`, which this crate enables).

// ---------------------------------------------------------------------------------------------
// Socket table

/// With the `dns` feature (on in these tests) the DNS socket takes one slot, as in
/// embassy-net; user sockets get the others.
fn check_socket_table<const N: usize>() {
    let _ex = Executor::new();
    let (dev, _peer, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (stack, _runner) = ferronet::new(dev, dual_config(2), leak(StackResources::<N>::new()), 1);
    let full = SocketTableFull { capacity: N };
    let mut sockets = Vec::new();
    for i in 0..N - 1 {
        let s = UdpSocket::try_new(stack, metas(1), buf(8), metas(1), buf(8))
            .unwrap_or_else(|e| panic!("socket {i} of {}: {e}", N - 1));
        sockets.push(s);
    }
    let Err(e) = UdpSocket::try_new(stack, metas(1), buf(8), metas(1), buf(8)) else {
        panic!("a UDP socket beyond the table was created");
    };
    assert_eq!(e, full);
    let text = e.to_string();
    assert!(text.contains("StackResources"), "{text}");
    let Err(e) = TcpSocket::try_new(stack, buf(8), buf(8)) else {
        panic!("a TCP socket beyond the table was created");
    };
    assert_eq!(e, full);

    // Dropping one makes room for exactly one.
    sockets.pop();
    let t = TcpSocket::try_new(stack, buf(8), buf(8)).expect("a slot was freed");
    assert_eq!(
        UdpSocket::try_new(stack, metas(1), buf(8), metas(1), buf(8)).err(),
        Some(full)
    );
    drop(t);
    let u = UdpSocket::try_new(stack, metas(1), buf(8), metas(1), buf(8)).expect("freed again");
    drop(u);
}

#[test]
fn socket_table_full_2() {
    check_socket_table::<2>();
}

#[test]
fn socket_table_full_3() {
    check_socket_table::<3>();
}

fn full_stack() -> Stack<'static> {
    let (dev, _peer, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (stack, _runner) = ferronet::new(dev, dual_config(2), leak(StackResources::<2>::new()), 1);
    // The DNS socket has one slot, this one the other.
    leak(TcpSocket::new(stack, buf(8), buf(8)));
    stack
}

#[test]
#[should_panic(expected = "StackResources")]
fn tcp_socket_new_panics_when_the_table_is_full() {
    let _ex = Executor::new();
    let stack = full_stack();
    let _ = TcpSocket::new(stack, buf(8), buf(8));
}

#[test]
#[should_panic(expected = "StackResources")]
fn udp_socket_new_panics_when_the_table_is_full() {
    let _ex = Executor::new();
    let stack = full_stack();
    let _ = UdpSocket::new(stack, metas(1), buf(8), metas(1), buf(8));
}

#[test]
fn try_new_without_a_slot_for_the_stacks_own_sockets() {
    let _ex = Executor::new();
    let (dev, _peer, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let r = ferronet::try_new(dev, dual_config(2), leak(StackResources::<0>::new()), 1);
    match r {
        Err(NewStackError::SocketTableFull(e)) => assert_eq!(e.capacity, 0),
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("a stack without room for its DNS socket was made"),
    }
    // DHCP takes a second slot.
    let (dev, _peer, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let config = Config::dhcpv4(Default::default());
    let r = ferronet::try_new(dev, config, leak(StackResources::<1>::new()), 1);
    assert!(
        matches!(r, Err(NewStackError::SocketTableFull(_))),
        "DHCP config with one slot"
    );
}

// ---------------------------------------------------------------------------------------------
// IP medium

#[test]
fn udp_echo_over_an_ip_medium_link() {
    let ex = Executor::new();
    let (dev_a, dev_b, link) = pair(LinkConfig::ip(), Endpoint::Ip, Endpoint::Ip).unwrap();
    let (a, runner_a) = ferronet::try_new(
        dev_a,
        dual_config(2),
        leak(StackResources::<SOCKETS>::new()),
        1,
    )
    .expect("IP-medium device");
    let (b, runner_b) = ferronet::try_new(
        dev_b,
        dual_config(3),
        leak(StackResources::<SOCKETS>::new()),
        2,
    )
    .expect("IP-medium device");
    assert_eq!(a.hardware_address(), HardwareAddress::Ip);
    spawn_runner(&ex, runner_a);
    spawn_runner(&ex, runner_b);
    spawn_udp_echo(&ex, b, 7);
    link.capture(true);

    let mut s = udp_socket(a, 4096, 8);
    s.bind(0).unwrap();
    for (i, peer) in [IpAddress::from(ip4(3)), ip6(3).into()]
        .into_iter()
        .enumerate()
    {
        let peer = IpEndpoint::new(peer, 7);
        for len in [1usize, 100, 1000, 1400] {
            let mut d = vec![0u8; len];
            fill_pattern(i as u8, len, &mut d);
            let r = ex
                .try_run_until(exchange(&s, &d, peer), LIMIT)
                .expect("no echo over the IP-medium link");
            assert_eq!(r, (d, peer));
        }
    }
    // Bare IP packets on the wire, no Ethernet headers, no ARP.
    let frames = link.captured();
    assert!(frames.len() >= 16);
    for f in &frames {
        let version = f.data[0] >> 4;
        assert!(
            version == 4 || version == 6,
            "not an IP packet: {:02x?}",
            &f.data[..8]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Counters

#[test]
fn counters_count_frames() {
    let ex = Executor::new();
    let (a, b, link) = spawn_pair(&ex, LinkConfig::default());
    spawn_udp_echo(&ex, b, 7);
    ex.run_for(Duration::from_millis(10));
    let (a0, b0) = (a.counters(), b.counters());

    let mut s = udp_socket(a, 4096, 8);
    s.bind(0).unwrap();
    let peer = IpEndpoint::new(ip4(3).into(), 7);
    for i in 0..20u8 {
        let r = ex
            .try_run_until(exchange(&s, &[i; 50], peer), LIMIT)
            .unwrap();
        assert_eq!(r.0, [i; 50]);
    }
    ex.run_for(Duration::from_millis(10));
    let (a1, b1) = (a.counters(), b.counters());
    assert!(a1.tx_frames - a0.tx_frames >= 20, "{a0:?} -> {a1:?}");
    assert!(a1.rx_frames - a0.rx_frames >= 20, "{a0:?} -> {a1:?}");
    assert!(b1.tx_frames - b0.tx_frames >= 20, "{b0:?} -> {b1:?}");
    assert!(b1.rx_frames - b0.rx_frames >= 20, "{b0:?} -> {b1:?}");
    assert!(a1.polls > a0.polls && b1.polls > b0.polls);

    // They agree with the link's own count, from the start.
    let st = link.stats();
    assert_eq!(u64::from(a1.tx_frames), st.a_to_b.sent, "{st:?}");
    assert_eq!(u64::from(b1.rx_frames), st.a_to_b.delivered, "{st:?}");
    assert_eq!(u64::from(b1.tx_frames), st.b_to_a.sent, "{st:?}");
    assert_eq!(u64::from(a1.rx_frames), st.b_to_a.delivered, "{st:?}");
}

#[test]
fn udp_echo_over_an_ieee802154_link() {
    // 6LoWPAN over IEEE 802.15.4: the medium comes from the driver's hardware address, and
    // neighbor discovery and UDP work with compressed headers in 127-byte frames.
    let ex = Executor::new();
    let addr_a = [0x02, 0, 0, 0, 0, 0, 0, 0x0a];
    let addr_b = [0x02, 0, 0, 0, 0, 0, 0, 0x0b];
    let (dev_a, dev_b, link) = pair(
        LinkConfig::ieee802154(),
        Endpoint::Ieee802154(addr_a),
        Endpoint::Ieee802154(addr_b),
    )
    .unwrap();
    let v6 = |host: u16| {
        let mut c = Config::default();
        c.ipv6 = ferronet::ConfigV6::Static(v6_config(host));
        c
    };
    let (a, runner_a) = ferronet::try_new(dev_a, v6(2), leak(StackResources::<SOCKETS>::new()), 1)
        .expect("IEEE 802.15.4 device");
    let (b, runner_b) = ferronet::try_new(dev_b, v6(3), leak(StackResources::<SOCKETS>::new()), 2)
        .expect("IEEE 802.15.4 device");
    assert_eq!(
        a.hardware_address(),
        HardwareAddress::Ieee802154(ferronet::Ieee802154Address::Extended(addr_a))
    );
    spawn_runner(&ex, runner_a);
    spawn_runner(&ex, runner_b);
    spawn_udp_echo(&ex, b, 7);
    link.capture(true);

    let mut s = udp_socket(a, 1024, 8);
    s.bind(0).unwrap();
    let peer = IpEndpoint::new(ip6(3).into(), 7);
    for len in [1usize, 20, 50] {
        let mut d = vec![0u8; len];
        fill_pattern(3, len, &mut d);
        let r = ex
            .try_run_until(exchange(&s, &d, peer), LIMIT)
            .expect("no echo over the IEEE 802.15.4 link");
        assert_eq!(r, (d, peer));
    }
    let frames = link.captured();
    assert!(frames.len() >= 6);
    for f in &frames {
        assert!(f.data.len() <= 127, "frame of {} bytes", f.data.len());
        let parsed = smoltcp::wire::Ieee802154Frame::new_checked(&f.data[..])
            .expect("an IEEE 802.15.4 frame");
        assert_eq!(
            parsed.frame_type(),
            smoltcp::wire::Ieee802154FrameType::Data
        );
    }
}
