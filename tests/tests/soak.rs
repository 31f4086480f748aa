//! Soak test (issue 10, item 6): hours of virtual time of TCP and UDP churn between two
//! stacks on a switch (with a little loss, duplication and reordering), then a check that
//! nothing leaked.
//!
//! Stack A runs [`TCP_WORKERS`] client tasks and [`UDP_CLIENTS`] UDP clients; stack B runs
//! [`LISTENERS`] accept-and-echo tasks and a UDP echo server. Each TCP client picks, per
//! connection: a checked echo exchange closed gracefully (most), a connection aborted after a
//! few bytes, a connected socket dropped without close (the server then times out), a
//! connect to a silent host (ARP answered, TCP ignored) or to an address nobody owns (both end
//! in `TimedOut`), or a socket created and dropped unused. Each UDP client opens a socket,
//! exchanges a few checked datagrams with the echo server and drops it.
//!
//! At the end both stacks' [`usage`](ferronet::Stack::usage) (socket table, bound ports,
//! watched timeouts, waiting tasks) must equal what it was before the churn, every free slot
//! must be usable (and one more refused), a fresh connection must work, and the idle runners
//! must sleep.
//!
//! Size: `FERRONET_SOAK=full` runs 100 000 TCP connections and 1 000 000 UDP datagrams over
//! about 6 hours of virtual time (about 35 s of wall time in the test profile); the default
//! (CI) runs a quarter of that (about 10 s). `FERRONET_SOAK_SEED=n` changes the seed of the
//! switch's faults (0x50a1 by default).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;

use embassy_time::{Duration, Instant, Timer, with_timeout};
use ferronet::tcp::{ConnectError, Error as TcpError, TcpSocket};
use ferronet::{Config, EthernetAddress, IpEndpoint, Ipv4Address, Stack, StackResources, Usage};
use ferronet_integration::faults::*;
use ferronet_integration::peers::Peer;
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{LinkConfig, MAC_A, MAC_B};
use ferronet_sim::switch::Switch;
use futures::future::{Either, join, join_all, select};

/// TCP client tasks on stack A.
const TCP_WORKERS: usize = 6;
/// Accept-and-echo tasks on stack B. ferronet has no listen backlog: a SYN that finds no
/// listening socket is refused (reset). A dropped connection holds its server for
/// [`TCP_TIMEOUT`], so there are enough listeners for the clients and those.
const LISTENERS: usize = 24;

/// Socket slots of each stack: the listeners, the UDP sockets and the DNS socket fit.
const SLOTS: usize = 32;
/// UDP client tasks on stack A.
const UDP_CLIENTS: usize = 2;

/// The echo port on B (TCP and UDP).
const PORT: u16 = 7;
/// A host that answers ARP but ignores TCP.
const SILENT: Ipv4Address = Ipv4Address::new(192, 0, 2, 98);
/// An address nobody owns (ARP goes unanswered).
const NOBODY: Ipv4Address = Ipv4Address::new(192, 0, 2, 99);
const SILENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x98];

/// Timeout of the sockets that talk to the silent host or to nobody.
const SILENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of every other socket (the server of a dropped connection times out after it).
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound of one TCP operation (connect, exchange, close): two socket timeouts.
const TCP_OP_BOUND: Duration = Duration::from_secs(30);
/// Largest pause of a TCP client between connections (uniform from 0), which spreads the run
/// over hours of virtual time.
const TCP_PAUSE_MAX_MS: u64 = 2000;

/// How long a UDP client waits for each answer before counting it lost.
const UDP_WAIT: Duration = Duration::from_millis(200);
/// Bound of one UDP datagram's round trip (send, answer or loss).
const UDP_OP_BOUND: Duration = Duration::from_secs(2);
/// Datagrams per UDP socket: 1..=this.
const UDP_PER_SOCKET_MAX: u64 = 64;

/// Of the normal TCP exchanges and UDP datagrams, the share (per mille) that may end in a
/// typed error or go unanswered: the switch loses, duplicates and reorders 0.2% of frames
/// each, so a handful of unlucky exchanges are expected; more means something is wrong.
const MAX_FAILURES_PER_MILLE: u64 = 5;

/// Virtual time limit of the whole run.
const RUN_LIMIT: Duration = Duration::from_secs(48 * 3600);

/// The soak's size: TCP connections and UDP datagrams.
fn size() -> (u64, u64) {
    match std::env::var("FERRONET_SOAK").as_deref() {
        Ok("full") => (100_000, 1_000_000),
        Ok(other) if !other.is_empty() => panic!("FERRONET_SOAK={other:?}: only \"full\" is known"),
        _ => (25_000, 250_000),
    }
}

/// The seed of the switch's faults: `FERRONET_SOAK_SEED`, or 0x50a1.
fn soak_seed() -> u64 {
    std::env::var("FERRONET_SOAK_SEED")
        .ok()
        .map(|s| s.parse().expect("FERRONET_SOAK_SEED is a number"))
        .unwrap_or(0x50a1)
}

/// What the churn did, for the report and the checks.
#[derive(Default, Debug)]
struct Counts {
    tcp_exchanges_ok: u64,
    tcp_exchange_errors: BTreeMap<String, u64>,
    tcp_aborted: u64,
    tcp_dropped: u64,
    tcp_silent_timeouts: u64,
    tcp_nobody_timeouts: u64,
    tcp_unused: u64,
    /// Typed errors seen by B's servers (resets of aborted connections, timeouts of dropped
    /// ones, ...).
    server_errors: BTreeMap<String, u64>,
    server_ok: u64,
    udp_sockets: u64,
    udp_answered: u64,
    udp_unanswered: u64,
}

/// A budget shared by the tasks of one kind: each takes one unit per operation.
struct Budget(Cell<u64>);

impl Budget {
    fn take(&self) -> bool {
        let left = self.0.get();
        if left == 0 {
            return false;
        }
        self.0.set(left - 1);
        true
    }
}

/// Runs `f` until it completes or `stop` is set (checked each virtual second): `None` if
/// stopped.
async fn until_stopped<F: Future>(stop: &Cell<bool>, f: F) -> Option<F::Output> {
    let stopped = async {
        while !stop.get() {
            Timer::after_secs(1).await;
        }
    };
    match select(pin!(f), pin!(stopped)).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

fn count(map: &mut BTreeMap<String, u64>, e: String) {
    *map.entry(e).or_default() += 1;
}

/// One of B's accept-and-echo tasks, until `stop`.
async fn listener(b: Stack<'static>, stop: Rc<Cell<bool>>, counts: Rc<RefCell<Counts>>) {
    let (mut rx, mut tx) = ([0u8; 4096], [0u8; 4096]);
    while !stop.get() {
        let mut s = TcpSocket::new(b, &mut rx, &mut tx);
        s.set_timeout(Some(TCP_TIMEOUT));
        let Some(accepted) = until_stopped(&stop, s.accept(PORT)).await else {
            break;
        };
        let result = match accepted {
            Ok(()) => within("server echo", TCP_OP_BOUND, echo(&mut s)).await,
            Err(e) => {
                count(
                    &mut counts.borrow_mut().server_errors,
                    format!("accept: {e:?}"),
                );
                continue;
            }
        };
        match result {
            Ok(()) => counts.borrow_mut().server_ok += 1,
            Err(e) => count(
                &mut counts.borrow_mut().server_errors,
                format!("echo: {e:?}"),
            ),
        }
    }
}

/// Echoes everything until the end of stream, then closes.
async fn echo(s: &mut TcpSocket<'_>) -> Result<(), TcpError> {
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        embedded_io_async::Write::write_all(s, &buf[..n]).await?;
    }
    s.close();
    s.flush().await
}

/// A checked echo exchange of `len` bytes, closed gracefully.
async fn exchange(s: &mut TcpSocket<'_>, seed: u8, len: usize) -> Result<(), TcpError> {
    let mut buf = [0u8; 3000];
    fill_pattern(seed, 0, &mut buf[..len]);
    embedded_io_async::Write::write_all(s, &buf[..len]).await?;
    let mut got = 0;
    while got < len {
        let n = s.read(&mut buf[got..len]).await?;
        if n == 0 {
            panic!("end of stream after {got} of {len} echoed bytes");
        }
        got += n;
    }
    if let Err(at) = check_pattern(seed, 0, &buf[..len]) {
        panic!("echoed byte {at} is wrong");
    }
    close_gracefully(s).await
}

fn ep(addr: Ipv4Address) -> IpEndpoint {
    IpEndpoint::new(addr.into(), PORT)
}

/// One of A's TCP client tasks: takes connections from `budget` until it is spent.
async fn tcp_worker(a: Stack<'static>, id: u64, budget: Rc<Budget>, counts: Rc<RefCell<Counts>>) {
    let mut rng = TestRng::new(soak_seed() ^ (0x50a4 + id));
    let (mut rx, mut tx) = ([0u8; 4096], [0u8; 4096]);
    while budget.take() {
        Timer::after_millis(rng.range(0, TCP_PAUSE_MAX_MS)).await;
        // The state waiters churn too: each connection waits for the configuration.
        within("wait_config_up", TCP_OP_BOUND, a.wait_config_up()).await;
        let mut s = TcpSocket::new(a, &mut rx, &mut tx);
        s.set_timeout(Some(TCP_TIMEOUT));
        let action = rng.range(0, 99);
        let len = rng.range(1, 3000) as usize;
        let seed = rng.next_u64() as u8;
        match action {
            // A checked exchange, closed gracefully.
            0..=74 => {
                let r = within("TCP exchange", TCP_OP_BOUND, async {
                    s.connect(ep(ip4(3)))
                        .await
                        .map_err(|e| format!("connect: {e:?}"))?;
                    exchange(&mut s, seed, len)
                        .await
                        .map_err(|e| format!("exchange: {e:?}"))
                })
                .await;
                let mut c = counts.borrow_mut();
                match r {
                    Ok(()) => c.tcp_exchanges_ok += 1,
                    Err(e) => *c.tcp_exchange_errors.entry(e).or_default() += 1,
                }
            }
            // Aborted after a few bytes (the server sees a reset).
            75..=84 => {
                within("TCP abort", TCP_OP_BOUND, async {
                    if s.connect(ep(ip4(3))).await.is_ok() {
                        let _ = s.write(&[seed; 100]).await;
                    }
                    s.abort();
                    let _ = s.flush().await;
                })
                .await;
                counts.borrow_mut().tcp_aborted += 1;
            }
            // Connected, then dropped without close: the server times out.
            85..=89 => {
                let _ = within("TCP connect", TCP_OP_BOUND, s.connect(ep(ip4(3)))).await;
                counts.borrow_mut().tcp_dropped += 1;
            }
            // A silent host, and an address nobody owns: the connect times out.
            90..=96 => {
                let (to, silent) = if action <= 93 {
                    (SILENT, true)
                } else {
                    (NOBODY, false)
                };
                s.set_timeout(Some(SILENT_TIMEOUT));
                let r = within(
                    "TCP connect to a silent host",
                    TCP_OP_BOUND,
                    s.connect(ep(to)),
                )
                .await;
                assert_eq!(r, Err(ConnectError::TimedOut), "connect to {to}");
                let mut c = counts.borrow_mut();
                if silent {
                    c.tcp_silent_timeouts += 1;
                } else {
                    c.tcp_nobody_timeouts += 1;
                }
            }
            // Created and dropped unused.
            _ => counts.borrow_mut().tcp_unused += 1,
        }
    }
}

/// The answer of the UDP echo server: every byte plus one.
fn udp_answer(req: &[u8]) -> Vec<u8> {
    req.iter().map(|b| b.wrapping_add(1)).collect()
}

async fn udp_echo(b: Stack<'static>, stop: Rc<Cell<bool>>) {
    let mut bufs = UdpBuffers::<8192>::new();
    let s = bufs.socket(b, PORT).expect("a free slot");
    let mut buf = [0u8; 1500];
    while let Some(r) = until_stopped(&stop, s.recv_from(&mut buf)).await {
        if let Ok((n, meta)) = r {
            let _ = s.send_to(&udp_answer(&buf[..n]), meta.endpoint).await;
        }
    }
}

/// One of A's UDP clients: sockets of a few datagrams each, until `budget` is spent.
async fn udp_client(a: Stack<'static>, id: u64, budget: Rc<Budget>, counts: Rc<RefCell<Counts>>) {
    let mut rng = TestRng::new(soak_seed() ^ (0x0d9 + id));
    let mut bufs = UdpBuffers::<4096>::new();
    let mut seq: u32 = 0;
    let mut buf = [0u8; 1500];
    loop {
        Timer::after_millis(rng.range(0, 100)).await;
        let s = bufs.socket(a, 0).expect("a free slot");
        counts.borrow_mut().udp_sockets += 1;
        for _ in 0..rng.range(1, UDP_PER_SOCKET_MAX) {
            if !budget.take() {
                return;
            }
            seq = seq.wrapping_add(1);
            let len = rng.range(4, 1400) as usize;
            let mut req = vec![0u8; len];
            fill_pattern(id as u8, seq as usize, &mut req);
            req[..4].copy_from_slice(&seq.to_be_bytes());
            let answered = within("UDP round trip", UDP_OP_BOUND, async {
                s.send_to(&req, ep(ip4(3))).await.expect("a route to B");
                let deadline = Instant::now() + UDP_WAIT;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match with_timeout(left, s.recv_from(&mut buf)).await {
                        Err(_) => return false,
                        Ok(Err(e)) => panic!("UDP receive: {e:?}"),
                        Ok(Ok((n, _))) => {
                            if buf[..n] == udp_answer(&req)[..] {
                                return true;
                            }
                            // A duplicate or late answer of an earlier datagram: its
                            // sequence number (answered plus one per byte) is another.
                            let mut earlier = [0u8; 4];
                            earlier.copy_from_slice(&buf[..4]);
                            assert_ne!(earlier, udp_answer(&seq.to_be_bytes())[..], "answer {seq}");
                        }
                    }
                }
            })
            .await;
            let mut c = counts.borrow_mut();
            if answered {
                c.udp_answered += 1;
            } else {
                c.udp_unanswered += 1;
            }
        }
    }
}

#[test]
fn soak_churn_leaves_no_leaks() {
    let (tcp_total, udp_total) = size();
    let started = std::time::Instant::now();
    let ex = Executor::new();
    let switch = Switch::new(LinkConfig {
        latency: Duration::from_millis(1),
        loss: 0.002,
        duplicate: 0.002,
        reorder: 0.002,
        seed: soak_seed(),
        ..LinkConfig::ethernet()
    });
    let port = |mac| switch.port(mac).expect("a unicast MAC");
    let stack = |mac, host, seed| {
        let resources = leak(StackResources::<SLOTS>::new());
        ferronet::new(
            port(mac),
            Config::ipv4_static(v4_config(host)),
            resources,
            seed,
        )
    };
    let (a, mut runner_a) = stack(MAC_A, 2, 0xa);
    let (b, mut runner_b) = stack(MAC_B, 3, 0xb);
    ex.spawn(async move { runner_a.run().await });
    ex.spawn(async move { runner_b.run().await });
    let silent = Peer::new(EthernetAddress(SILENT_MAC));
    silent.add_ipv4(SILENT);
    silent.spawn(&ex, port(SILENT_MAC));

    let stop = Rc::new(Cell::new(false));
    let counts = Rc::new(RefCell::new(Counts::default()));
    let main = async {
        within(
            "configuration",
            Duration::from_secs(10),
            join(a.wait_config_up(), b.wait_config_up()),
        )
        .await;
        let before: [Usage; 2] = [a.usage(), b.usage()];
        for _ in 0..LISTENERS {
            ex.spawn(listener(b, stop.clone(), counts.clone()));
        }
        ex.spawn(udp_echo(b, stop.clone()));
        let tcp_budget = Rc::new(Budget(Cell::new(tcp_total)));
        let udp_budget = Rc::new(Budget(Cell::new(udp_total)));
        let tcp = join_all(
            (0..TCP_WORKERS as u64).map(|id| tcp_worker(a, id, tcp_budget.clone(), counts.clone())),
        );
        let udp = join_all(
            (0..UDP_CLIENTS as u64).map(|id| udp_client(a, id, udp_budget.clone(), counts.clone())),
        );
        join(tcp, udp).await;
        let churn_end = Instant::now();
        // Let the servers finish (a dropped connection times out on B), then stop them.
        Timer::after(TCP_TIMEOUT * 3).await;
        stop.set(true);
        Timer::after_secs(2).await;
        let after = [a.usage(), b.usage()];
        (before, after, churn_end)
    };
    let (before, after, churn_end) = match ex.try_run_until(main, RUN_LIMIT) {
        Ok(r) => r,
        Err(e) => panic!("the soak hung: {e}"),
    };
    let c = counts.borrow();
    println!(
        "soak: {tcp_total} TCP connections, {udp_total} UDP datagrams in {:.1} h of virtual \
         time, {:.1} s wall\n{c:#?}",
        churn_end.as_secs() as f64 / 3600.0,
        started.elapsed().as_secs_f64()
    );
    // Only the runners and the silent peer are left.
    assert_eq!(ex.pending_tasks(), 3, "every client and server task ended");
    assert_eq!(
        after, before,
        "socket table, ports and waiters as before the churn (A, B)"
    );
    assert_eq!(before[0].bound_ports, 0);
    assert_eq!(before[0].state_waiters + before[0].dns_waiters, 0);

    let tcp_ops = c.tcp_exchanges_ok
        + c.tcp_exchange_errors.values().sum::<u64>()
        + c.tcp_aborted
        + c.tcp_dropped
        + c.tcp_silent_timeouts
        + c.tcp_nobody_timeouts
        + c.tcp_unused;
    assert_eq!(tcp_ops, tcp_total);
    assert_eq!(c.udp_answered + c.udp_unanswered, udp_total);
    let tcp_failed = c.tcp_exchange_errors.values().sum::<u64>();
    assert!(
        tcp_failed * 1000 <= c.tcp_exchanges_ok * MAX_FAILURES_PER_MILLE,
        "{tcp_failed} failed TCP exchanges of {}",
        c.tcp_exchanges_ok
    );
    assert!(
        c.udp_unanswered * 1000 <= udp_total * MAX_FAILURES_PER_MILLE,
        "{} unanswered datagrams",
        c.udp_unanswered
    );
    for kind in [
        c.tcp_aborted,
        c.tcp_dropped,
        c.tcp_silent_timeouts,
        c.tcp_nobody_timeouts,
        c.tcp_unused,
    ] {
        assert!(kind > 0, "every kind of churn happened: {c:?}");
    }
    drop(c);

    // Every free slot can be used, and one more is refused; then a fresh connection works and
    // the idle runners sleep.
    let after_check = async {
        for (name, stack, used) in [("A", a, before[0].sockets), ("B", b, before[1].sockets)] {
            let mut bufs: Vec<([u8; 64], [u8; 64])> = vec![([0; 64], [0; 64]); SLOTS - used];
            let mut sockets: Vec<TcpSocket<'_>> = bufs
                .iter_mut()
                .map(|(rx, tx)| {
                    TcpSocket::try_new(stack, rx, tx).unwrap_or_else(|e| panic!("{name}: {e}"))
                })
                .collect();
            let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
            assert!(
                TcpSocket::try_new(stack, &mut rx, &mut tx).is_err(),
                "{name}: table full"
            );
            sockets.clear();
        }
        let server = async {
            let (mut rx, mut tx) = ([0u8; 4096], [0u8; 4096]);
            let mut s = TcpSocket::new(b, &mut rx, &mut tx);
            s.accept(PORT).await.expect("accept after the soak");
            echo(&mut s).await.expect("echo after the soak");
        };
        let client = async {
            let (mut rx, mut tx) = ([0u8; 4096], [0u8; 4096]);
            let mut s = TcpSocket::new(a, &mut rx, &mut tx);
            s.connect(ep(ip4(3))).await.expect("connect after the soak");
            exchange(&mut s, 7, 2500)
                .await
                .expect("exchange after the soak");
        };
        within(
            "a connection after the soak",
            TCP_OP_BOUND,
            join(server, client),
        )
        .await;
        Timer::after(TCP_TIMEOUT).await;
        check_idle_polls("after the soak", &[a, b], |up| switch.set_up(up)).await;
        [a.usage(), b.usage()]
    };
    let end = ex
        .try_run_until(after_check, RUN_LIMIT)
        .expect("the checks after the soak hung");
    assert_eq!(end, before, "as before, after the last checks");
}

/// `Stack::usage` sees sockets, their ports and waiting tasks come and go, so the soak's
/// comparison can fail.
#[test]
fn usage_counts_sockets_ports_and_waiters() {
    let ex = Executor::new();
    let (a, _b, link) = spawn_pair(&ex, LinkConfig::default());
    let base = a.usage();
    assert_eq!(base.sockets, 1, "the DNS socket");
    assert_eq!(
        (base.bound_ports, base.state_waiters, base.dns_waiters),
        (0, 0, 0)
    );
    let mut bufs = UdpBuffers::<256>::new();
    let udp = bufs.socket(a, 0).expect("a free slot");
    let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
    let tcp = TcpSocket::new(a, &mut rx, &mut tx);
    assert_eq!((a.usage().sockets, a.usage().bound_ports), (3, 1));
    // A task waiting for the link to come up, while it is down.
    link.set_up(false);
    ex.run_for(Duration::from_millis(10));
    ex.spawn(async move { a.wait_link_up().await });
    ex.run_for(Duration::from_millis(10));
    assert_eq!(a.usage().state_waiters, 1);
    link.set_up(true);
    ex.run_for(Duration::from_millis(10));
    assert_eq!(a.usage().state_waiters, 0);
    drop((udp, tcp));
    assert_eq!(a.usage(), base);
}
