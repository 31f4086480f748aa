//! The fuzzing harness: a ferronet stack with sockets of every kind open, fed frames and time
//! steps decoded from fuzz input.
//!
//! Shared by the cargo-fuzz targets in `fuzz/` and by the regression tests
//! (`tests/tests/fuzz_regressions.rs`), so that every input a fuzzer found is replayed by the
//! normal test suite through the same code.
//!
//! Each run builds everything afresh from the input alone (no state is carried from one input
//! to the next), so a crash always reproduces from its input:
//!
//! - stack A, the one under test, on a [`TapDevice`] (a ferronet-sim link end that also lets
//!   the harness inject frames and see what A sends), with a virtual clock
//!   ([`Executor`]);
//! - stack B, a helper on the other end of the link: the TCP peer of A's connections and A's
//!   DNS server (which never answers: the query stays in flight);
//! - on A: a TCP connection established (echo on B), one in FIN-WAIT-2 (A closed, B never
//!   does), one in CLOSE-WAIT (B closed, A never does), a TCP listener on port 80, a UDP echo
//!   socket on port 7000, a raw IPv4 socket (protocol 253), an ICMP socket, pings to B
//!   three seconds apart, a DNS query in flight, a multicast group joined, and per
//!   [`Scenario`] the DHCPv4 client or SLAAC.
//!
//! The input is a sequence of operations ([`run_frames`]: raw frames; [`run_structured`]:
//! well-formed messages built from fields, with checksums, sequence numbers, transaction and
//! query ids taken from what A sent), interleaved with time steps (so timers fire), link flaps
//! and application calls.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use embassy_net_driver::{Capabilities, Checksum, Driver, HardwareAddress, LinkState};
use embassy_net_driver::{RxToken, TxToken};
use embassy_time::{Duration, Timer};
use ferronet::dns::DnsQueryType;
use ferronet::icmp::ping::{PingManager, PingParams};
use ferronet::icmp::{IcmpEndpoint, IcmpSocket, PacketMetadata};
use ferronet::raw::RawSocket;
use ferronet::tcp::TcpSocket;
use ferronet::udp::UdpSocket;
use ferronet::{
    Config, ConfigV4, ConfigV6, DhcpConfig, IpAddress, IpEndpoint, Ipv4Address, Ipv6Address, Stack,
    StackResources, StaticConfigV4, StaticConfigV6,
};
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{
    Endpoint, LinkConfig, LinkHandle, MAC_A, MAC_B, SimDevice, SimRxToken, SimTxToken, pair,
};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress,
    EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet, Icmpv6Packet, Icmpv6Repr,
    IpProtocol, IpRepr, Ipv4Cidr, Ipv4Packet, Ipv6Cidr, Ipv6Packet, NdiscNeighborFlags,
    NdiscPrefixInfoFlags, NdiscPrefixInformation, NdiscRepr, NdiscRouterFlags, TcpControl,
    TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

use crate::{dual_config, ip4, ip6};

/// Which stack configuration the input talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Ethernet; static IPv4 192.0.2.2/24 (DNS server 192.0.2.3), IPv6 by SLAAC; TCP over
    /// IPv4.
    EthernetStatic,
    /// Ethernet; the DHCPv4 client (hostname "ferronet-fuzz"), static IPv6 2001:db8::2/64
    /// (DNS server 2001:db8::3); TCP over IPv6.
    EthernetDhcp,
    /// IP medium (no link layer); static IPv4 192.0.2.2/24 and IPv6 2001:db8::2/64; TCP over
    /// IPv4.
    Ip,
}

impl Scenario {
    fn is_ethernet(self) -> bool {
        self != Scenario::Ip
    }

    /// B's address, the peer of A's TCP connections and A's DNS server.
    fn peer_addr(self) -> IpAddress {
        match self {
            Scenario::EthernetDhcp => IpAddress::Ipv6(ip6(3)),
            _ => IpAddress::Ipv4(ip4(3)),
        }
    }

    /// A's address on the side of [`peer_addr`](Self::peer_addr).
    fn own_addr(self) -> IpAddress {
        match self {
            Scenario::EthernetDhcp => IpAddress::Ipv6(ip6(2)),
            _ => IpAddress::Ipv4(ip4(2)),
        }
    }
}

/// The largest frame an input can inject (an Ethernet frame of 1500 bytes of IP).
pub const MAX_FRAME: usize = 1514;
/// The largest virtual time step one operation takes (about 66 s).
pub const MAX_STEP: Duration = Duration::from_micros(255 * 255 * 255 * 4);
/// The most virtual time one input can spend in time steps, to keep executions fast.
pub const MAX_VIRTUAL_TIME: Duration = Duration::from_secs(90);
/// Frames of A kept for the structured operations to read ids and sequence numbers from.
const SENT_KEEP: usize = 64;
/// TCP ports on B: an echo server, a server that never closes, one that closes at once.
const PORT_ECHO: u16 = 7;
const PORT_HOLD: u16 = 9;
const PORT_CLOSE: u16 = 13;
/// A's TCP listener, UDP echo port, ICMP identifier and raw IP protocol.
const PORT_LISTEN: u16 = 80;
const PORT_UDP: u16 = 7000;
const ICMP_IDENT: u16 = 0x4242;
const RAW_PROTOCOL: u8 = 253;

// ---------------------------------------------------------------------------------------------
// The device: a link end that also injects frames and records what it sends
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Tap {
    capture: bool,
    injected: Vec<Vec<u8>>,
    inject: VecDeque<Vec<u8>>,
    sent: VecDeque<Vec<u8>>,
    waker: Option<Waker>,
}

/// A ferronet-sim link end through which the harness also injects frames (delivered before
/// the link's own) and sees the last frames the stack sent.
pub struct TapDevice {
    inner: SimDevice,
    tap: Rc<RefCell<Tap>>,
    verify_checksums: bool,
}

/// Receive token of a [`TapDevice`].
pub enum TapRx {
    /// A frame from the harness.
    Injected(Vec<u8>),
    /// A frame from the link.
    Link(SimRxToken),
}

impl RxToken for TapRx {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        match self {
            TapRx::Injected(mut frame) => f(&mut frame),
            TapRx::Link(token) => token.consume(f),
        }
    }
}

/// Transmit token of a [`TapDevice`]: sends on the link and records the frame.
pub struct TapTx<'a> {
    inner: SimTxToken<'a>,
    tap: Rc<RefCell<Tap>>,
}

impl TxToken for TapTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let tap = self.tap;
        self.inner.consume(len, |buf| {
            let r = f(buf);
            let mut t = tap.borrow_mut();
            if t.sent.len() == SENT_KEEP {
                t.sent.pop_front();
            }
            t.sent.push_back(buf.to_vec());
            r
        })
    }
}

impl Driver for TapDevice {
    type RxToken<'a>
        = TapRx
    where
        Self: 'a;
    type TxToken<'a>
        = TapTx<'a>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let injected = {
            let mut t = self.tap.borrow_mut();
            if !t.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                t.waker = Some(cx.waker().clone());
            }
            t.inject.pop_front()
        };
        if let Some(frame) = injected {
            // Deliver it only with a transmit token (the link's queue has room).
            return match self.inner.transmit(cx) {
                Some(tx) => Some((
                    TapRx::Injected(frame),
                    TapTx {
                        inner: tx,
                        tap: self.tap.clone(),
                    },
                )),
                None => {
                    self.tap.borrow_mut().inject.push_front(frame);
                    None
                }
            };
        }
        let (rx, tx) = self.inner.receive(cx)?;
        Some((
            TapRx::Link(rx),
            TapTx {
                inner: tx,
                tap: self.tap.clone(),
            },
        ))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
        let tap = self.tap.clone();
        self.inner.transmit(cx).map(|inner| TapTx { inner, tap })
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        self.inner.link_state(cx)
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = self.inner.capabilities();
        if !self.verify_checksums {
            // Checksums computed on transmit, not verified on receive (a MAC with checksum
            // offload that already dropped bad ones): lets fuzzed frames reach the protocols.
            caps.checksum.ipv4 = Checksum::Tx;
            caps.checksum.udp = Checksum::Tx;
            caps.checksum.tcp = Checksum::Tx;
            caps.checksum.icmpv4 = Checksum::Tx;
            caps.checksum.icmpv6 = Checksum::Tx;
        }
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        self.inner.hardware_address()
    }
}

// ---------------------------------------------------------------------------------------------
// Wakers that own nothing
// ---------------------------------------------------------------------------------------------
//
// A stack's `StackResources` is never dropped (it is made for a `static`), so every waker the
// stack keeps (the runner's, the sockets') would leak with it, and with the executor's task
// wakers behind them, once per run. The harness polls every task with a waker that is only an
// index into a per-thread table of the executor's real wakers: leaking it leaks nothing, the
// table is emptied after each run, and a stale index wakes nothing.

thread_local! {
    static WAKERS: RefCell<Vec<Option<Waker>>> = const { RefCell::new(Vec::new()) };
}

static FORWARD: RawWakerVTable =
    RawWakerVTable::new(forward_clone, forward_wake, forward_wake, forward_drop);

fn forward_clone(data: *const ()) -> RawWaker {
    RawWaker::new(data, &FORWARD)
}

fn forward_wake(data: *const ()) {
    let waker = WAKERS.with(|w| w.borrow().get(data.addr()).cloned().flatten());
    if let Some(waker) = waker {
        waker.wake();
    }
}

fn forward_drop(_: *const ()) {}

/// Spawns `fut` on `ex`, polled with a forwarding waker.
fn spawn<'a>(ex: &Executor<'a>, fut: impl Future<Output = ()> + 'a) {
    ex.spawn(forwarded(fut));
}

/// `fut`, polled with a waker that forwards to the executor's (see above).
fn forwarded<F: Future<Output = ()>>(fut: F) -> impl Future<Output = ()> {
    let index = WAKERS.with(|w| {
        let mut w = w.borrow_mut();
        w.push(None);
        w.len() - 1
    });
    // SAFETY: the vtable keeps the `RawWaker` contract: the data is a plain index (no pointer
    // is ever dereferenced), clone copies it, drop does nothing, and wake looks the index up
    // in this thread's table (an index that is stale or from another thread finds no waker,
    // or the waker of another task: a spurious wake, which futures allow).
    let waker =
        unsafe { Waker::from_raw(RawWaker::new(std::ptr::without_provenance(index), &FORWARD)) };
    async move {
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            WAKERS.with(|w| {
                if let Some(slot) = w.borrow_mut().get_mut(index)
                    && !slot.as_ref().is_some_and(|s| s.will_wake(cx.waker()))
                {
                    *slot = Some(cx.waker().clone());
                }
            });
            fut.as_mut().poll(&mut Context::from_waker(&waker))
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the input
// ---------------------------------------------------------------------------------------------

/// A cursor over the fuzz input; reads past the end give zeros / empty slices.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        for b in a.iter_mut() {
            *b = self.byte();
        }
        a
    }
}

// ---------------------------------------------------------------------------------------------
// Application side
// ---------------------------------------------------------------------------------------------

/// What an input can ask A's application tasks to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Write(u16),
    Flush,
    Close,
    Abort,
}

/// A command queue for one task, with the task's waker.
#[derive(Default)]
struct Mailbox {
    cmds: VecDeque<Cmd>,
    waker: Option<Waker>,
}

type SharedMailbox = Rc<RefCell<Mailbox>>;

fn post(mailbox: &SharedMailbox, cmd: Cmd) {
    let mut m = mailbox.borrow_mut();
    // Bounded: a task stuck in a write does not let the queue grow without end.
    if m.cmds.len() < 64 {
        m.cmds.push_back(cmd);
    }
    if let Some(w) = m.waker.take() {
        w.wake();
    }
}

/// What the application tasks saw, for the set-up check.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Events {
    /// TCP connections of A that connected (connection index, see [`Harness`]).
    pub connected: Vec<usize>,
    /// Connections on which A read the end of the stream.
    pub eof: Vec<usize>,
    /// Connections A closed.
    pub closed: Vec<usize>,
    /// Bytes A's TCP connections read.
    pub tcp_read: usize,
    /// Datagrams A's UDP socket echoed.
    pub udp_echoed: usize,
    /// Ping results (true: a reply came).
    pub pings: Vec<bool>,
    /// DNS query results (true: addresses came back).
    pub dns: Vec<bool>,
    /// Packets A's raw and ICMP sockets received.
    pub raw_icmp_received: usize,
    /// A's counters at the end of the run (polls of its runner, frames in and out).
    pub counters: Option<ferronet::Counters>,
    /// A's IPv4 configuration at the end of the run.
    pub config_v4: Option<StaticConfigV4>,
    /// A's IPv6 configuration at the end of the run.
    pub config_v6: Option<StaticConfigV6>,
    /// With capture on ([`capture`]): every frame on the link (both ways) and every frame
    /// the harness injected, in order.
    pub frames: Vec<Vec<u8>>,
}

type SharedEvents = Rc<RefCell<Events>>;

/// Waits for the next command, or (unless `eof`) for the socket to have something to read.
async fn next_cmd(socket: &TcpSocket<'_>, mailbox: &SharedMailbox, eof: bool) -> Option<Cmd> {
    let mut readable = pin!(socket.wait_read_ready());
    poll_fn(|cx| {
        {
            let mut m = mailbox.borrow_mut();
            if let Some(c) = m.cmds.pop_front() {
                return Poll::Ready(Some(c));
            }
            m.waker = Some(cx.waker().clone());
        }
        if !eof && readable.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// How a connection task starts.
#[derive(Clone, Copy)]
enum Open {
    Connect(IpEndpoint),
    Accept(u16),
}

/// One TCP connection of A: opens, then reads what comes and runs the commands.
async fn connection(
    index: usize,
    mut socket: TcpSocket<'_>,
    open: Open,
    mailbox: SharedMailbox,
    events: SharedEvents,
) {
    let opened = match open {
        Open::Connect(ep) => socket.connect(ep).await.is_ok(),
        Open::Accept(port) => socket.accept(port).await.is_ok(),
    };
    if !opened {
        return;
    }
    events.borrow_mut().connected.push(index);
    let data = [0x5au8; 1024];
    let mut buf = [0u8; 512];
    let mut eof = false;
    loop {
        match next_cmd(&socket, &mailbox, eof).await {
            None => match socket.read(&mut buf).await {
                Ok(0) => {
                    eof = true;
                    events.borrow_mut().eof.push(index);
                }
                Ok(n) => events.borrow_mut().tcp_read += n,
                Err(_) => eof = true,
            },
            Some(Cmd::Write(n)) => {
                let n = usize::from(n) % data.len() + 1;
                let _ = socket.write(&data[..n]).await;
            }
            Some(Cmd::Flush) => {
                let _ = socket.flush().await;
            }
            Some(Cmd::Close) => {
                socket.close();
                events.borrow_mut().closed.push(index);
            }
            Some(Cmd::Abort) => socket.abort(),
        }
    }
}

/// B's side of the three connections: echo, hold (read, never close), close at once.
async fn peer_connection(mut socket: TcpSocket<'_>, port: u16) {
    if socket.accept(port).await.is_err() {
        return;
    }
    let mut buf = [0u8; 512];
    match port {
        PORT_ECHO => {
            while let Ok(n) = socket.read(&mut buf).await {
                if n == 0 || socket.write(&buf[..n]).await.is_err() {
                    break;
                }
            }
            socket.close();
            let _ = socket.flush().await;
        }
        PORT_CLOSE => {
            let _ = socket.write(b"closing").await;
            socket.close();
            let _ = socket.flush().await;
        }
        _ => while let Ok(1..) = socket.read(&mut buf).await {},
    }
    // Keep the socket (and its state) until the run ends.
    core::future::pending::<()>().await;
}

/// Runs two futures to completion, polling both whenever woken.
async fn join(a: impl Future<Output = ()>, b: impl Future<Output = ()>) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut a_done, mut b_done) = (false, false);
    poll_fn(|cx| {
        if !a_done {
            a_done = a.as_mut().poll(cx).is_ready();
        }
        if !b_done {
            b_done = b.as_mut().poll(cx).is_ready();
        }
        if a_done && b_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------------

/// Buffers of everything the harness creates; lives on the heap for one run.
struct Buffers {
    tcp: [[u8; 2048]; 10],
    udp: [[u8; 2048]; 2],
    raw: [[u8; 1024]; 2],
    icmp: [[u8; 1024]; 2],
    ping: [[u8; 256]; 2],
    udp_meta: [[ferronet::udp::PacketMetadata; 4]; 2],
    raw_meta: [[ferronet::raw::PacketMetadata; 4]; 2],
    meta: [[PacketMetadata; 4]; 4],
}

impl Buffers {
    fn new() -> Box<Self> {
        Box::new(Self {
            tcp: [[0; 2048]; 10],
            udp: [[0; 2048]; 2],
            raw: [[0; 1024]; 2],
            icmp: [[0; 1024]; 2],
            ping: [[0; 256]; 2],
            udp_meta: [[ferronet::udp::PacketMetadata::EMPTY; 4]; 2],
            raw_meta: [[ferronet::raw::PacketMetadata::EMPTY; 4]; 2],
            meta: [[PacketMetadata::EMPTY; 4]; 4],
        })
    }
}

/// What the operations act on during one run.
struct Harness<'a, 'ex> {
    scenario: Scenario,
    ex: &'ex Executor<'a>,
    stack: Stack<'a>,
    link: LinkHandle,
    tap: Rc<RefCell<Tap>>,
    /// Connections 0: established (echo), 1: A closed (FIN-WAIT-2), 2: B closed
    /// (CLOSE-WAIT), 3: accepted on A's listener.
    mailboxes: [SharedMailbox; 4],
    udp: Rc<UdpSocket<'a>>,
    raw: Rc<RawSocket<'a>>,
    icmp: Rc<IcmpSocket<'a>>,
    link_up: bool,
    multicast: bool,
    /// Virtual time spent in time steps so far.
    stepped: Duration,
    /// The most virtual time the time steps may take.
    budget: Duration,
}

/// The stack configurations of A and B.
fn configs(scenario: Scenario) -> (Config, Config) {
    let b = dual_config(3);
    let a = match scenario {
        Scenario::EthernetStatic => {
            let mut v4 = crate::v4_config(2);
            let _ = v4.dns_servers.push(ip4(3));
            let mut c = Config::ipv4_static(v4);
            c.ipv6 = ConfigV6::Slaac;
            c
        }
        Scenario::EthernetDhcp => {
            let mut dhcp = DhcpConfig::default();
            dhcp.hostname = Some(heapless::String::try_from("ferronet-fuzz").unwrap_or_default());
            let mut v6 = crate::v6_config(2);
            let _ = v6.dns_servers.push(ip6(3));
            let mut c = Config::dhcpv4(dhcp);
            c.ipv6 = ConfigV6::Static(v6);
            c
        }
        Scenario::Ip => {
            let mut c = dual_config(2);
            if let ConfigV4::Static(v4) = &mut c.ipv4 {
                let _ = v4.dns_servers.push(ip4(3));
            }
            c
        }
    };
    (a, b)
}

/// Builds the scenario, runs `ops` on it, and tears everything down. Returns what the
/// application tasks saw.
/// How a run is set up, besides its [`Scenario`].
#[derive(Clone, Copy, Default)]
struct Options {
    /// A verifies the checksums of what it receives.
    verify_checksums: bool,
    /// A router advertisement (2001:db8:1::/64) arrives during the set-up, so SLAAC has a
    /// router (Ethernet scenarios; the router answers no later solicitation). On by default:
    /// without a router, smoltcp 0.14 makes the runner wake every millisecond after 12 s (see
    /// the ignored test in `fuzz_regressions.rs`), which slows fuzzing down a hundredfold.
    router: bool,
    /// Record every frame ([`Events::frames`]).
    capture: bool,
}

impl Options {
    /// From the first byte of an input: checksums verified if bit `verify` is set, no router
    /// if both bits of `no_router` are (one input in four).
    fn from_byte(b: u8, verify: u8, no_router: u8) -> Self {
        Self {
            verify_checksums: b & verify != 0,
            router: b & no_router != no_router,
            capture: false,
        }
    }
}

/// The most virtual time an input without a router spends in time steps: from 12 s on,
/// smoltcp's stale solicitation deadline makes every virtual second cost 1000 polls.
const MAX_VIRTUAL_TIME_WITHOUT_ROUTER: Duration = Duration::from_secs(15);

fn with_harness(
    scenario: Scenario,
    options: Options,
    ops: impl FnOnce(&mut Harness<'_, '_>),
) -> Events {
    let Options {
        verify_checksums,
        router,
        capture,
    } = options;
    let (dev_a, dev_b, link) = match scenario {
        Scenario::Ip => pair(LinkConfig::ip(), Endpoint::Ip, Endpoint::Ip),
        _ => pair(
            LinkConfig::ethernet(),
            Endpoint::Ethernet(MAC_A),
            Endpoint::Ethernet(MAC_B),
        ),
    }
    .expect("valid link configuration");
    link.capture(capture);
    let tap = Rc::new(RefCell::new(Tap {
        capture,
        ..Tap::default()
    }));
    let dev_a = TapDevice {
        inner: dev_a,
        tap: tap.clone(),
        verify_checksums,
    };
    let (config_a, config_b) = configs(scenario);
    let mut res_a = Box::new(StackResources::<16>::new());
    let mut res_b = Box::new(StackResources::<8>::new());
    let mut bufs_a = Buffers::new();
    let mut bufs_b = Buffers::new();
    let (stack, mut runner_a) = ferronet::new(dev_a, config_a, &mut *res_a, 0x00f0_22ed);
    let (stack_b, mut runner_b) = ferronet::new(dev_b, config_b, &mut *res_b, 0x0b0b_0b0b);
    let events = SharedEvents::default();

    let Buffers {
        tcp,
        udp,
        raw,
        icmp,
        ping,
        udp_meta,
        raw_meta,
        meta,
    } = &mut *bufs_a;
    let [t0, t1, t2, t3, t4, t5, t6, t7, ..] = tcp;
    let [u0, u1] = udp;
    let [r0, r1] = raw;
    let [i0, i1] = icmp;
    let [p0, p1] = ping;
    let [m0, m1] = udp_meta;
    let [m2, m3] = raw_meta;
    let [m4, m5, m6, m7] = meta;
    let mut b_tcp = bufs_b.tcp.iter_mut();

    WAKERS.with(|w| w.borrow_mut().clear());
    let ex = Executor::new();
    spawn(&ex, async move { runner_a.run().await });
    spawn(&ex, async move { runner_b.run().await });

    // B: the three servers.
    for port in [PORT_ECHO, PORT_HOLD, PORT_CLOSE] {
        let (Some(rx), Some(tx)) = (b_tcp.next(), b_tcp.next()) else {
            unreachable!("ten buffers for three sockets")
        };
        spawn(&ex, peer_connection(TcpSocket::new(stack_b, rx, tx), port));
    }

    // A: three connections to B, a listener, and the datagram sockets.
    let peer = scenario.peer_addr();
    let mailboxes: [SharedMailbox; 4] = Default::default();
    let opens = [
        Open::Connect(IpEndpoint::new(peer, PORT_ECHO)),
        Open::Connect(IpEndpoint::new(peer, PORT_HOLD)),
        Open::Connect(IpEndpoint::new(peer, PORT_CLOSE)),
        Open::Accept(PORT_LISTEN),
    ];
    let bufs = [(t0, t1), (t2, t3), (t4, t5), (t6, t7)];
    for (i, ((rx, tx), open)) in bufs.into_iter().zip(opens).enumerate() {
        let socket = TcpSocket::new(stack, rx, tx);
        spawn(
            &ex,
            connection(i, socket, open, mailboxes[i].clone(), events.clone()),
        );
    }
    // Connection 1 writes and closes: FIN-WAIT-2 (B never closes).
    post(&mailboxes[1], Cmd::Write(9));
    post(&mailboxes[1], Cmd::Close);

    let mut udp_socket = UdpSocket::new(stack, m0, u0, m1, u1);
    udp_socket
        .bind(PORT_UDP)
        .expect("the UDP port is free in a fresh stack");
    let udp = Rc::new(udp_socket);
    {
        let udp = udp.clone();
        let events = events.clone();
        spawn(&ex, async move {
            let mut buf = [0u8; 2048];
            loop {
                if let Ok((n, meta)) = udp.recv_from(&mut buf).await
                    && udp.send_to(&buf[..n], meta.endpoint).await.is_ok()
                {
                    events.borrow_mut().udp_echoed += 1;
                }
            }
        });
    }
    let raw = Rc::new(RawSocket::new(
        stack,
        Some(smoltcp::wire::IpVersion::Ipv4),
        Some(IpProtocol::Unknown(RAW_PROTOCOL)),
        m2,
        r0,
        m3,
        r1,
    ));
    let mut icmp_socket = IcmpSocket::new(stack, m4, i0, m5, i1);
    icmp_socket
        .bind(IcmpEndpoint::Ident(ICMP_IDENT))
        .expect("the ICMP identifier is free in a fresh stack");
    let icmp = Rc::new(icmp_socket);
    {
        let (raw, icmp) = (raw.clone(), icmp.clone());
        let (events, events2) = (events.clone(), events.clone());
        spawn(
            &ex,
            join(
                async move {
                    let mut buf = [0u8; 1024];
                    loop {
                        let _ = raw.recv(&mut buf).await;
                        events.borrow_mut().raw_icmp_received += 1;
                    }
                },
                async move {
                    loop {
                        let _ = icmp.recv_from_with(|_| ()).await;
                        events2.borrow_mut().raw_icmp_received += 1;
                    }
                },
            ),
        );
    }
    // Pings to B three seconds apart (B answers at once: the link has no latency; a ping
    // stays in flight only while the link is down or B cannot answer). Not more often: each
    // ping costs runner polls, which make most of the cost of an execution.
    {
        let events = events.clone();
        let mut pinger = PingManager::new(stack, m6, p0, m7, p1);
        spawn(&ex, async move {
            let target = match peer {
                IpAddress::Ipv4(a) => core::net::IpAddr::V4(a),
                IpAddress::Ipv6(a) => core::net::IpAddr::V6(a),
            };
            let mut params = PingParams::new(target);
            params.set_count(1);
            params.set_timeout(Duration::from_millis(800));
            loop {
                let ok = pinger.ping(&params).await.is_ok();
                events.borrow_mut().pings.push(ok);
                Timer::after_secs(3).await;
            }
        });
    }
    // A DNS query in flight (B has no DNS server: smoltcp retries, then fails, then again).
    {
        let events = events.clone();
        let qtype = match peer {
            IpAddress::Ipv4(_) => DnsQueryType::A,
            IpAddress::Ipv6(_) => DnsQueryType::Aaaa,
        };
        spawn(&ex, async move {
            loop {
                let ok = stack.dns_query("fuzz.example", qtype).await.is_ok();
                events.borrow_mut().dns.push(ok);
                Timer::after_millis(100).await;
            }
        });
    }
    let mut multicast = false;
    if scenario.is_ethernet() {
        multicast = stack
            .join_multicast_group(IpAddress::Ipv4(Ipv4Address::new(224, 0, 0, 251)))
            .is_ok();
    }

    // Let the connections and first queries happen.
    ex.run_for(Duration::from_millis(100));
    if router && scenario.is_ethernet() {
        // After A's first router solicitation: smoltcp 0.14 ignores the phase change of an
        // advertisement that comes before it.
        let ra = crate::peers::Router::new(
            EthernetAddress(MAC_B),
            crate::peers::RouterConfig::documentation(),
        );
        let mut t = tap.borrow_mut();
        t.inject.push_back(ra.advertisement());
        if let Some(w) = t.waker.take() {
            w.wake();
        }
    }
    ex.run_for(Duration::from_millis(100));

    let mut h = Harness {
        scenario,
        ex: &ex,
        stack,
        link,
        tap,
        mailboxes,
        udp,
        raw,
        icmp,
        link_up: true,
        multicast,
        stepped: Duration::from_ticks(0),
        budget: if router || scenario != Scenario::EthernetStatic {
            MAX_VIRTUAL_TIME
        } else {
            MAX_VIRTUAL_TIME_WITHOUT_ROUTER
        },
    };
    ops(&mut h);
    {
        let mut e = events.borrow_mut();
        e.counters = Some(stack.counters());
        e.config_v4 = stack.config_v4();
        e.config_v6 = stack.config_v6();
    }
    if capture {
        let mut e = events.borrow_mut();
        e.frames = h.link.take_captured().into_iter().map(|f| f.data).collect();
        e.frames.append(&mut h.tap.borrow_mut().injected);
    }
    drop(h);
    drop(ex);
    WAKERS.with(|w| w.borrow_mut().clear());
    events.take()
}

impl Harness<'_, '_> {
    /// Let everything that is ready at this instant run.
    fn settle(&self) {
        self.ex.run_for(Duration::from_ticks(0));
    }

    fn inject(&self, frame: Vec<u8>) {
        {
            let mut t = self.tap.borrow_mut();
            if t.capture {
                t.injected.push(frame.clone());
            }
            t.inject.push_back(frame);
            if let Some(w) = t.waker.take() {
                w.wake();
            }
        }
        self.settle();
    }

    /// A time step of t³ µs (4 t³ µs if `long`), within [`MAX_VIRTUAL_TIME`] per input.
    fn step(&mut self, input: &mut Input<'_>, long: bool) {
        let t = u64::from(input.byte());
        let micros = t * t * t * if long { 4 } else { 1 };
        let d = Duration::from_micros(micros).min(self.budget - self.stepped);
        self.stepped += d;
        self.ex.run_for(d);
    }

    fn flap(&mut self) {
        self.link_up = !self.link_up;
        self.link.set_up(self.link_up);
        self.settle();
    }

    /// An application call chosen by the input.
    fn app(&mut self, input: &mut Input<'_>) {
        let op = input.byte();
        let arg = input.u16();
        let conn = usize::from(op >> 4) % self.mailboxes.len();
        match op % 12 {
            0 => post(&self.mailboxes[conn], Cmd::Write(arg)),
            1 => post(&self.mailboxes[conn], Cmd::Flush),
            2 => post(&self.mailboxes[conn], Cmd::Close),
            3 => post(&self.mailboxes[conn], Cmd::Abort),
            4 => {
                let udp = self.udp.clone();
                let to = IpEndpoint::new(self.scenario.peer_addr(), arg);
                let len = usize::from(arg % 1600);
                spawn(self.ex, async move {
                    let _ = udp.send_to(&vec![0xa5; len], to).await;
                });
            }
            5 => {
                let raw = self.raw.clone();
                let len = usize::from(arg % 1100);
                let packet = raw_ipv4_packet(len);
                spawn(self.ex, async move {
                    let _ = raw.send(&packet).await;
                });
            }
            6 => {
                let icmp = self.icmp.clone();
                let to = self.scenario.peer_addr();
                let len = usize::from(arg % 1100);
                spawn(self.ex, async move {
                    let _ = icmp.send_to(&vec![8; len], to).await;
                });
            }
            7 => {
                let group = if arg & 1 == 0 {
                    IpAddress::Ipv4(Ipv4Address::new(224, 0, 0, 251))
                } else {
                    IpAddress::Ipv6(Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb))
                };
                if self.multicast {
                    let _ = self.stack.leave_multicast_group(group);
                } else {
                    let _ = self.stack.join_multicast_group(group);
                }
                self.multicast = !self.multicast;
            }
            8 => {
                // A new static IPv4 configuration (or none).
                let host = (arg >> 8) as u8;
                let config = if host == 0 {
                    ConfigV4::None
                } else {
                    let mut gateway = None;
                    if arg & 1 == 1 {
                        gateway = Some(ip4(1));
                    }
                    ConfigV4::Static(StaticConfigV4 {
                        address: Ipv4Cidr::new(ip4(host), (arg % 33) as u8),
                        gateway,
                        dns_servers: heapless::Vec::from_slice(&[ip4(3)]).unwrap_or_default(),
                    })
                };
                self.stack.set_config_v4(config);
            }
            9 => {
                let config = match arg % 3 {
                    0 => ConfigV6::None,
                    1 => ConfigV6::Static(StaticConfigV6 {
                        address: Ipv6Cidr::new(ip6(arg >> 2), (arg % 129) as u8),
                        gateway: Some(ip6(1)),
                        dns_servers: heapless::Vec::new(),
                    }),
                    _ => ConfigV6::Slaac,
                };
                self.stack.set_config_v6(config);
            }
            10 => {
                // Another DNS query, cancelled after `arg` microseconds.
                let stack = self.stack;
                let qtype = if arg & 1 == 0 {
                    DnsQueryType::A
                } else {
                    DnsQueryType::Aaaa
                };
                let name = ["fuzz.example", "a.local", "x", "192.0.2.9", "a..b"]
                    [usize::from(arg >> 1) % 5];
                let wait = Duration::from_micros(u64::from(arg) * 64);
                spawn(self.ex, async move {
                    let q = stack.dns_query(name, qtype);
                    let t = Timer::after(wait);
                    join_first(q, t).await;
                });
            }
            _ => {
                let _ = self.stack.hardware_address();
                let _ = self.stack.config_v4();
                let _ = self.stack.config_v6();
            }
        }
        self.settle();
    }

    /// The last frames A sent, newest first.
    fn sent(&self) -> Vec<Vec<u8>> {
        self.tap.borrow().sent.iter().rev().cloned().collect()
    }
}

/// Runs both futures until the first completes.
async fn join_first<A: Future, B: Future>(a: A, b: B) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// An IPv4 packet for the raw socket (protocol 253, A to B), `len` bytes of payload.
fn raw_ipv4_packet(len: usize) -> Vec<u8> {
    let (src, dst) = (IpAddress::Ipv4(ip4(2)), IpAddress::Ipv4(ip4(3)));
    let repr = IpRepr::new(src, dst, IpProtocol::Unknown(RAW_PROTOCOL), len, 64);
    let mut buf = vec![0u8; repr.header_len() + len];
    repr.emit(&mut buf[..], &checksums());
    buf
}

// ---------------------------------------------------------------------------------------------
// Raw frames
// ---------------------------------------------------------------------------------------------

/// The first byte of a frames input: the scenario (bit 0, for Ethernet targets), whether A
/// verifies checksums of what it receives (bit 1), and whether no router advertises a prefix
/// during the set-up (bits 2 and 3 both set).
fn header(input: &mut Input<'_>, ethernet: bool) -> (Scenario, Options) {
    let b = input.byte();
    let scenario = match (ethernet, b & 1) {
        (false, _) => Scenario::Ip,
        (true, 0) => Scenario::EthernetStatic,
        (true, _) => Scenario::EthernetDhcp,
    };
    (scenario, Options::from_byte(b, 0x02, 0x0c))
}

/// Runs one input of raw frames: `ethernet` chooses the medium. Operations (the low 3 bits of
/// an operation byte):
///
/// - 0-3: inject a frame (a 16-bit length, then that many bytes);
/// - 4: a time step (a byte `t`: t³ µs, or 4 t³ µs when the high bit of the operation is
///   set; at most [`MAX_VIRTUAL_TIME`] in all);
/// - 5: link down / up;
/// - 6: an application call (a byte and a 16-bit argument);
/// - 7: inject the previous frame again.
///
/// Panics where ferronet panics; returns what the application saw.
pub fn run_frames(ethernet: bool, data: &[u8]) -> Events {
    frames_input(ethernet, data, false)
}

fn frames_input(ethernet: bool, data: &[u8], capture: bool) -> Events {
    let mut input = Input { data };
    let (scenario, options) = header(&mut input, ethernet);
    let options = Options { capture, ..options };
    with_harness(scenario, options, |h| {
        let mut last: Vec<u8> = Vec::new();
        while !input.is_empty() {
            let op = input.byte();
            match op & 7 {
                0..=3 => {
                    let len = usize::from(input.u16()) % (MAX_FRAME + 1);
                    last = input.bytes(len).to_vec();
                    h.inject(last.clone());
                }
                4 => h.step(&mut input, op & 0x80 != 0),
                5 => h.flap(),
                6 => h.app(&mut input),
                _ => h.inject(last.clone()),
            }
        }
        h.settle();
    })
}

// ---------------------------------------------------------------------------------------------
// Structured messages
// ---------------------------------------------------------------------------------------------

fn checksums() -> ChecksumCapabilities {
    ChecksumCapabilities::default()
}

/// What A sent, parsed down to the IP layer.
struct SentIp<'f> {
    src: IpAddress,
    dst: IpAddress,
    protocol: IpProtocol,
    /// The whole IP packet.
    packet: &'f [u8],
    /// The IP payload.
    payload: &'f [u8],
}

fn parse_sent<'f>(scenario: Scenario, frame: &'f [u8]) -> Option<SentIp<'f>> {
    let ip = if scenario.is_ethernet() {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let len = frame.len() - eth.payload().len();
        match eth.ethertype() {
            EthernetProtocol::Ipv4 | EthernetProtocol::Ipv6 => &frame[len..],
            _ => return None,
        }
    } else {
        frame
    };
    match ip.first()? >> 4 {
        4 => {
            let p = Ipv4Packet::new_checked(ip).ok()?;
            let hl = usize::from(p.header_len());
            let total = usize::from(p.total_len()).min(ip.len());
            Some(SentIp {
                src: IpAddress::Ipv4(p.src_addr()),
                dst: IpAddress::Ipv4(p.dst_addr()),
                protocol: p.next_header(),
                packet: &ip[..total],
                payload: ip.get(hl..total)?,
            })
        }
        6 => {
            let p = Ipv6Packet::new_checked(ip).ok()?;
            let total = (40 + usize::from(p.payload_len())).min(ip.len());
            Some(SentIp {
                src: IpAddress::Ipv6(p.src_addr()),
                dst: IpAddress::Ipv6(p.dst_addr()),
                protocol: p.next_header(),
                packet: &ip[..total],
                payload: ip.get(40..total)?,
            })
        }
        _ => None,
    }
}

impl Harness<'_, '_> {
    /// Wraps an IP packet for the medium (from B's MAC to A's, or `dst_mac`).
    fn frame(&self, ip: Vec<u8>, dst_mac: Option<EthernetAddress>) -> Vec<u8> {
        if !self.scenario.is_ethernet() {
            return ip;
        }
        let ethertype = if ip.first().is_some_and(|b| b >> 4 == 6) {
            EthernetProtocol::Ipv6
        } else {
            EthernetProtocol::Ipv4
        };
        let repr = EthernetRepr {
            src_addr: EthernetAddress(MAC_B),
            dst_addr: dst_mac.unwrap_or(EthernetAddress(MAC_A)),
            ethertype,
        };
        let mut buf = vec![0u8; repr.buffer_len() + ip.len()];
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        repr.emit(&mut frame);
        frame.payload_mut().copy_from_slice(&ip);
        buf
    }

    /// An IP packet from `src` to `dst` with `payload` (its checksum, if any, already set).
    fn ip_packet(
        &self,
        src: IpAddress,
        dst: IpAddress,
        protocol: IpProtocol,
        hop_limit: u8,
        payload_len: usize,
        emit: impl FnOnce(&mut [u8]),
    ) -> Vec<u8> {
        if src.version() != dst.version() {
            return Vec::new();
        }
        let repr = IpRepr::new(src, dst, protocol, payload_len, hop_limit);
        let mut buf = vec![0u8; repr.header_len() + payload_len];
        repr.emit(&mut buf[..], &checksums());
        emit(&mut buf[repr.header_len()..]);
        buf
    }

    fn udp_packet(&self, src: IpEndpoint, dst: IpEndpoint, payload: &[u8]) -> Vec<u8> {
        let repr = UdpRepr {
            src_port: src.port,
            dst_port: dst.port,
        };
        self.ip_packet(
            src.addr,
            dst.addr,
            IpProtocol::Udp,
            64,
            repr.header_len() + payload.len(),
            |b| {
                repr.emit(
                    &mut UdpPacket::new_unchecked(b),
                    &src.addr,
                    &dst.addr,
                    payload.len(),
                    |p| p.copy_from_slice(payload),
                    &checksums(),
                )
            },
        )
    }

    /// A TCP segment to one of A's connections (from its peer), or to A's listener, with
    /// sequence and acknowledgment numbers relative to the last segment A sent there.
    fn tcp(&mut self, input: &mut Input<'_>) {
        let sel = input.byte();
        let flags = input.byte();
        let seq_delta = input.u16() as i16;
        let ack_delta = input.u16() as i16;
        let window = input.u16();
        let len = usize::from(input.byte()) * 8;
        let opts = input.byte();
        let peer = self.scenario.peer_addr();
        let own = self.scenario.own_addr();
        let (remote_port, local_port) = match sel % 5 {
            0 => (PORT_ECHO, None),
            1 => (PORT_HOLD, None),
            2 => (PORT_CLOSE, None),
            3 => (40000 + u16::from(sel >> 4), Some(PORT_LISTEN)),
            _ => (input.u16(), Some(input.u16())),
        };
        // The last segment A sent to that port of B: A's port, next sequence number, and
        // what it acknowledged.
        let mut local = local_port.unwrap_or(49152);
        let (mut a_next, mut a_ack) = (TcpSeqNumber(0), TcpSeqNumber(0));
        for frame in self.sent() {
            let Some(ip) = parse_sent(self.scenario, &frame) else {
                continue;
            };
            if ip.protocol != IpProtocol::Tcp || ip.dst != peer {
                continue;
            }
            let Ok(seg) = TcpPacket::new_checked(ip.payload) else {
                continue;
            };
            if seg.dst_port() != remote_port || local_port.is_some_and(|p| p != seg.src_port()) {
                continue;
            }
            local = seg.src_port();
            a_next = seg.seq_number() + seg.segment_len();
            a_ack = seg.ack_number();
            break;
        }
        let control = match flags & 7 {
            0 | 1 => TcpControl::None,
            2 => TcpControl::Psh,
            3 => TcpControl::Syn,
            4 => TcpControl::Fin,
            5 => TcpControl::Rst,
            _ => TcpControl::None,
        };
        let payload = vec![0x3c; len];
        let mut sack_ranges = [None; 3];
        if opts & 8 != 0 {
            sack_ranges[0] = Some((a_ack.0 as u32, (a_ack + 100).0 as u32));
        }
        let repr = TcpRepr {
            src_port: remote_port,
            dst_port: local,
            control,
            seq_number: TcpSeqNumber(a_ack.0.wrapping_add(i32::from(seq_delta))),
            ack_number: (flags & 8 != 0)
                .then(|| TcpSeqNumber(a_next.0.wrapping_add(i32::from(ack_delta)))),
            window_len: window,
            window_scale: (opts & 1 != 0).then_some(opts >> 4),
            max_seg_size: (opts & 2 != 0).then_some(u16::from(opts) * 8),
            sack_permitted: opts & 4 != 0,
            sack_ranges,
            timestamp: (opts & 16 != 0).then(|| smoltcp::wire::TcpTimestampRepr {
                tsval: u32::from(window),
                tsecr: 0,
            }),
            payload: &payload,
        };
        let packet = self.ip_packet(peer, own, IpProtocol::Tcp, 64, repr.buffer_len(), |b| {
            repr.emit(&mut TcpPacket::new_unchecked(b), &peer, &own, &checksums())
        });
        self.inject(self.frame(packet, None));
    }

    /// A DNS response to the last query A sent.
    fn dns(&mut self, input: &mut Input<'_>) {
        let mut query = None;
        for frame in self.sent() {
            let Some(ip) = parse_sent(self.scenario, &frame) else {
                continue;
            };
            if ip.protocol != IpProtocol::Udp {
                continue;
            }
            let Ok(udp) = UdpPacket::new_checked(ip.payload) else {
                continue;
            };
            if udp.dst_port() == 53 || udp.dst_port() == 5353 {
                query = Some((
                    IpEndpoint::new(ip.dst, udp.dst_port()),
                    IpEndpoint::new(ip.src, udp.src_port()),
                    udp.payload().to_vec(),
                ));
                break;
            }
        }
        let Some((server, client, query)) = query else {
            return;
        };
        if query.len() < 12 {
            return;
        }
        let flags = input.u16();
        let mut msg = Vec::with_capacity(512);
        let id = if flags & 0x40 != 0 {
            [query[0] ^ input.byte(), query[1]]
        } else {
            [query[0], query[1]]
        };
        msg.extend(id);
        // QR=1, opcode from the query, RD, RA, rcode and TC from the input.
        msg.extend([
            0x81 | (flags as u8 & 0x02),
            0x80 | ((flags >> 8) as u8 & 0x0f),
        ]);
        let answers = usize::from(input.byte() % 8);
        msg.extend([0, 1, 0, answers as u8, 0, 0, 0, 0]);
        msg.extend(&query[12..]);
        for k in 0..answers {
            let kind = input.byte();
            // The owner name: the question, the previous CNAME's target, or a fuzzed pointer.
            match kind >> 6 {
                0 | 1 => msg.extend([0xc0, 0x0c]),
                2 => msg.extend([0xc0 | (input.byte() & 0x3f), input.byte()]),
                _ => msg.extend([1, b'a' + k as u8, 0]),
            }
            let (rtype, rdata): (u16, Vec<u8>) = match kind % 5 {
                0 => (1, input.array::<4>().to_vec()),
                1 => (28, input.array::<16>().to_vec()),
                2 => (5, vec![1, b'c', 0xc0, 0x0c]),
                3 => (5, vec![3, b'w', b'w', b'w', 0]),
                _ => {
                    let rtype = input.u16();
                    let len = usize::from(input.byte() % 32);
                    (rtype, input.bytes(len).to_vec())
                }
            };
            msg.extend(rtype.to_be_bytes());
            msg.extend([0, 1]);
            msg.extend(input.u32().to_be_bytes());
            let rdlen = if kind & 0x20 != 0 {
                input.u16()
            } else {
                rdata.len() as u16
            };
            msg.extend(rdlen.to_be_bytes());
            msg.extend(rdata);
        }
        let packet = self.udp_packet(server, client, &msg);
        self.inject(self.frame(packet, None));
    }

    /// A DHCP reply to the last DHCP message A sent, with fields from the input.
    fn dhcp(&mut self, input: &mut Input<'_>) {
        let mut last = None;
        for frame in self.sent() {
            let Some(ip) = parse_sent(self.scenario, &frame) else {
                continue;
            };
            let Ok(udp) = UdpPacket::new_checked(ip.payload) else {
                continue;
            };
            if udp.dst_port() != 67 {
                continue;
            }
            let Ok(p) = DhcpPacket::new_checked(udp.payload()) else {
                continue;
            };
            last = Some((p.transaction_id(), p.client_hardware_address()));
            break;
        }
        let Some((mut xid, chaddr)) = last else {
            return;
        };
        let kind = input.byte();
        if kind & 0x80 != 0 {
            xid ^= u32::from(input.byte());
        }
        let message_type = match kind % 5 {
            0 | 1 => DhcpMessageType::Offer,
            2 | 3 => DhcpMessageType::Ack,
            _ => DhcpMessageType::Nak,
        };
        let fields = input.byte();
        let addr = |input: &mut Input<'_>| Ipv4Address::from(input.array::<4>());
        let your_ip = if fields & 1 != 0 {
            addr(input)
        } else {
            ip4(50)
        };
        let prefix = input.byte() % 34;
        let subnet_mask = (fields & 2 != 0).then(|| {
            if prefix > 32 {
                addr(input)
            } else {
                crate::peers::netmask(prefix)
            }
        });
        let router = (fields & 4 != 0).then(|| addr(input));
        let server_identifier = (fields & 8 != 0).then(|| {
            if fields & 0x80 != 0 {
                addr(input)
            } else {
                ip4(1)
            }
        });
        let dns_servers = (fields & 16 != 0).then(|| {
            let n = input.byte() % 4;
            (0..n).map(|_| addr(input)).collect::<heapless::Vec<_, 3>>()
        });
        let lease_duration = (fields & 32 != 0).then(|| input.u32());
        let renew_duration = (fields & 64 != 0).then(|| input.u32());
        let rebind_duration = (fields & 64 != 0).then(|| input.u32());
        let repr = DhcpRepr {
            message_type,
            transaction_id: xid,
            secs: 0,
            client_hardware_address: chaddr,
            client_ip: Ipv4Address::UNSPECIFIED,
            your_ip,
            server_ip: Ipv4Address::UNSPECIFIED,
            router,
            subnet_mask,
            relay_agent_ip: Ipv4Address::UNSPECIFIED,
            broadcast: false,
            requested_ip: None,
            client_identifier: None,
            server_identifier,
            parameter_request_list: None,
            dns_servers,
            max_size: None,
            lease_duration,
            renew_duration,
            rebind_duration,
            additional_options: &[],
        };
        let mut payload = vec![0u8; repr.buffer_len()];
        if repr
            .emit(&mut DhcpPacket::new_unchecked(&mut payload[..]))
            .is_err()
        {
            return;
        }
        let server = IpAddress::Ipv4(server_identifier.unwrap_or(ip4(1)));
        let packet = self.udp_packet(
            IpEndpoint::new(server, 67),
            IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::BROADCAST), 68),
            &payload,
        );
        self.inject(self.frame(packet, Some(EthernetAddress::BROADCAST)));
    }

    fn icmpv6_packet(&self, src: Ipv6Address, dst: Ipv6Address, repr: &Icmpv6Repr<'_>) -> Vec<u8> {
        let (s, d) = (IpAddress::Ipv6(src), IpAddress::Ipv6(dst));
        self.ip_packet(s, d, IpProtocol::Icmpv6, 255, repr.buffer_len(), |b| {
            repr.emit(
                &src,
                &dst,
                &mut Icmpv6Packet::new_unchecked(b),
                &checksums(),
            )
        })
    }

    /// A router advertisement with fields from the input.
    fn router_advert(&mut self, input: &mut Input<'_>) {
        let flags = input.byte();
        let router_ll = crate::peers::link_local(EthernetAddress(MAC_B));
        let prefix_len = if flags & 1 != 0 { input.byte() } else { 64 };
        let mut prefix = [0u8; 16];
        prefix[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, input.byte()]);
        if flags & 2 != 0 {
            prefix = input.array::<16>();
        }
        let secs = |input: &mut Input<'_>| {
            smoltcp::time::Duration::from_secs(u64::from(input.u32() >> (input.byte() % 32)))
        };
        let ra = Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
            hop_limit: input.byte(),
            flags: NdiscRouterFlags::from_bits_truncate(input.byte()),
            router_lifetime: smoltcp::time::Duration::from_secs(u64::from(input.u16())),
            reachable_time: smoltcp::time::Duration::from_millis(u64::from(input.u16())),
            retrans_time: smoltcp::time::Duration::from_millis(u64::from(input.u16())),
            lladdr: (flags & 4 != 0).then(|| EthernetAddress(input.array::<6>()).into()),
            mtu: (flags & 8 != 0).then(|| input.u32()),
            prefix_info: (flags & 16 == 0).then(|| NdiscPrefixInformation {
                prefix_len,
                flags: NdiscPrefixInfoFlags::from_bits_truncate(input.byte()),
                valid_lifetime: secs(input),
                preferred_lifetime: secs(input),
                prefix: Ipv6Address::from(prefix),
            }),
        });
        let dst = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let packet = self.icmpv6_packet(router_ll, dst, &ra);
        let mac = EthernetAddress([0x33, 0x33, 0, 0, 0, 1]);
        self.inject(self.frame(packet, Some(mac)));
    }

    /// ICMP to A: an echo reply to its last echo request (possibly altered), or an error
    /// quoting the last packet it sent.
    fn icmp(&mut self, input: &mut Input<'_>) {
        let kind = input.byte();
        let sent = self.sent();
        let Some(last) = sent
            .iter()
            .filter_map(|f| parse_sent(self.scenario, f))
            .find(|ip| {
                kind & 1 != 0
                    || matches!(ip.protocol, IpProtocol::Icmp | IpProtocol::Icmpv6)
                        && ip.payload.first().is_some_and(|t| *t == 8 || *t == 128)
            })
        else {
            return;
        };
        let (from, to) = (last.dst, last.src);
        let packet = match (from, to) {
            (IpAddress::Ipv4(_), IpAddress::Ipv4(_)) => {
                let mut body = last.payload.to_vec();
                let repr_len;
                if kind & 1 == 0 {
                    // Echo reply: type 0, same ident/seq/payload unless the input alters them.
                    if body.len() < 8 {
                        return;
                    }
                    body[0] = 0;
                    if kind & 2 != 0 {
                        let at = usize::from(input.byte()) % body.len();
                        body[at] ^= input.byte() | 1;
                    }
                    if kind & 4 != 0 {
                        body.truncate(usize::from(input.byte()).max(8));
                    }
                    repr_len = body.len();
                } else {
                    // An error quoting the packet.
                    let (t, code) = match kind >> 5 {
                        0 => (3u8, input.byte() % 16),
                        1 => (11, 0),
                        2 => (12, 0),
                        3 => (4, 0),
                        _ => (input.byte(), input.byte()),
                    };
                    let quote_len = (usize::from(input.byte()) % 600).min(last.packet.len());
                    body = vec![t, code, 0, 0];
                    body.extend(input.u32().to_be_bytes());
                    body.extend(&last.packet[..quote_len]);
                    repr_len = body.len();
                }
                let mut buf = body;
                let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
                p.fill_checksum();
                self.ip_packet(from, to, IpProtocol::Icmp, 64, repr_len, |b| {
                    b.copy_from_slice(&buf)
                })
            }
            (IpAddress::Ipv6(src), IpAddress::Ipv6(dst)) => {
                let mut body = last.payload.to_vec();
                if kind & 1 == 0 {
                    if body.len() < 8 {
                        return;
                    }
                    body[0] = 129;
                    if kind & 2 != 0 {
                        let at = usize::from(input.byte()) % body.len();
                        body[at] ^= input.byte() | 1;
                    }
                } else {
                    let (t, code) = match kind >> 5 {
                        0 => (1u8, input.byte() % 8),
                        1 => (2, 0),
                        2 => (3, input.byte() % 2),
                        3 => (4, input.byte() % 3),
                        _ => (input.byte(), input.byte()),
                    };
                    let quote_len = (usize::from(input.byte()) % 1200).min(last.packet.len());
                    body = vec![t, code, 0, 0];
                    body.extend(input.u32().to_be_bytes());
                    body.extend(&last.packet[..quote_len]);
                }
                let (s, d) = (IpAddress::Ipv6(src), IpAddress::Ipv6(dst));
                self.ip_packet(s, d, IpProtocol::Icmpv6, 64, body.len(), |b| {
                    b.copy_from_slice(&body);
                    let mut p = Icmpv6Packet::new_unchecked(b);
                    p.fill_checksum(&src, &dst);
                })
            }
            _ => return,
        };
        self.inject(self.frame(packet, None));
    }

    /// A UDP datagram to A's echo port, or to another port.
    fn udp(&mut self, input: &mut Input<'_>) {
        let sel = input.byte();
        let len = usize::from(input.u16() % 1500);
        let dst_port = if sel & 1 == 0 { PORT_UDP } else { input.u16() };
        let src = IpEndpoint::new(self.scenario.peer_addr(), input.u16());
        let dst = IpEndpoint::new(self.scenario.own_addr(), dst_port);
        let payload = input.bytes(len).to_vec();
        let packet = self.udp_packet(src, dst, &payload);
        self.inject(self.frame(packet, None));
    }

    /// ARP, or an IPv6 neighbor solicitation / advertisement, about A or B.
    fn neighbor(&mut self, input: &mut Input<'_>) {
        let kind = input.byte();
        if !self.scenario.is_ethernet() {
            return;
        }
        let mac = if kind & 2 != 0 {
            EthernetAddress(input.array::<6>())
        } else {
            EthernetAddress(MAC_B)
        };
        if kind & 1 == 0 {
            let repr = ArpRepr::EthernetIpv4 {
                operation: if kind & 4 != 0 {
                    ArpOperation::Reply
                } else {
                    ArpOperation::Request
                },
                source_hardware_addr: mac,
                source_protocol_addr: if kind & 8 != 0 {
                    Ipv4Address::from(input.array::<4>())
                } else {
                    ip4(3)
                },
                target_hardware_addr: EthernetAddress(MAC_A),
                target_protocol_addr: ip4(2),
            };
            let eth = EthernetRepr {
                src_addr: mac,
                dst_addr: EthernetAddress::BROADCAST,
                ethertype: EthernetProtocol::Arp,
            };
            let mut buf = vec![0u8; eth.buffer_len() + repr.buffer_len()];
            let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
            eth.emit(&mut frame);
            repr.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
            self.inject(buf);
        } else {
            let target = if kind & 8 != 0 {
                Ipv6Address::from(input.array::<16>())
            } else {
                ip6(2)
            };
            let repr = if kind & 4 != 0 {
                Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                    flags: NdiscNeighborFlags::from_bits_truncate(input.byte()),
                    target_addr: target,
                    lladdr: Some(mac.into()),
                })
            } else {
                Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                    target_addr: target,
                    lladdr: Some(mac.into()),
                })
            };
            let packet = self.icmpv6_packet(ip6(3), ip6(2), &repr);
            self.inject(self.frame(packet, None));
        }
    }
}

/// Runs one input of structured operations. The first byte chooses the scenario (bit 0:
/// Ethernet with static IPv4 and SLAAC, or with DHCP; bit 2: IP medium), checksum
/// verification (bit 1) and no router during the set-up (bits 3 and 4 both set). Operations (an operation byte modulo 11): a TCP segment to one of
/// A's connections, a DNS response to A's query, a DHCP reply, a router advertisement, ICMP
/// (echo replies, errors quoting A's packets), UDP, ARP / neighbor discovery, a time step, a
/// link flap, an application call, a raw frame.
///
/// Panics where ferronet panics; returns what the application saw.
pub fn run_structured(data: &[u8]) -> Events {
    structured_input(data, false)
}

fn structured_input(data: &[u8], capture: bool) -> Events {
    let mut input = Input { data };
    let first = input.byte();
    let scenario = match (first & 4 != 0, first & 1) {
        (true, _) => Scenario::Ip,
        (false, 0) => Scenario::EthernetStatic,
        (false, _) => Scenario::EthernetDhcp,
    };
    let options = Options {
        capture,
        ..Options::from_byte(first, 0x02, 0x18)
    };
    with_harness(scenario, options, |h| {
        while !input.is_empty() {
            let op = input.byte();

            match op % 11 {
                0 => h.tcp(&mut input),
                1 => h.dns(&mut input),
                2 => h.dhcp(&mut input),
                3 => h.router_advert(&mut input),
                4 => h.icmp(&mut input),
                5 => h.udp(&mut input),
                6 => h.neighbor(&mut input),
                7 => h.step(&mut input, op & 0x80 != 0),
                8 => h.flap(),
                9 => h.app(&mut input),
                _ => {
                    let len = usize::from(input.u16()) % (MAX_FRAME + 1);
                    let frame = input.bytes(len).to_vec();
                    h.inject(frame);
                }
            }
        }
        h.settle();
    })
}

// ---------------------------------------------------------------------------------------------
// Seed corpus
// ---------------------------------------------------------------------------------------------

/// A deterministic pseudo-random byte stream (xorshift), for seed inputs.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// Structured operations that each exercise one kind of message, for the seeds.
fn structured_seed_ops(scenario_byte: u8, variant: u64) -> Vec<u8> {
    let mut r = Bytes(0x9e37_79b9_7f4a_7c15 ^ (variant + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut ops = vec![scenario_byte];
    // A short step first, so that A has sent its first messages.
    ops.extend([7, 60]);
    match variant % 10 {
        // DHCP: an offer of 192.0.2.50 (mask /24, router and server 192.0.2.1, lease 3600 s),
        // then the ack.
        0 => ops.extend([
            2, 0, 0x2e, 24, 192, 0, 2, 1, 0x10, 0x0e, 0, 0, 7, 60, 2, 2, 0x2e, 24, 192, 0, 2, 1,
            0x10, 0x0e, 0, 0, 7, 100,
        ]),
        // A DNS answer with an A, an AAAA and a CNAME record.
        1 => ops.extend([
            1, 0, 0, 3, 0, 192, 0, 2, 77, 0, 0, 1, 0, 1, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0x4d, 0, 0, 1, 0, 2, 0, 0, 1, 0, 7, 100,
        ]),
        // A router advertisement of 2001:db8:1::/64 (lifetimes 1800 s, 86400 s, 14400 s).
        2 => ops.extend([
            3, 0, 0, 64, 0, 8, 7, 0, 0, 0, 0, 0xc0, 0x80, 0x51, 1, 0, 0, 0x40, 0x38, 0, 0, 0, 7,
            100,
        ]),
        // TCP: data on the established connection, FIN on the closing one, a SYN with every
        // option to the listener, a RST on the last one.
        3 => ops.extend([
            0, 0, 10, 0, 0, 0, 0, 0, 0x10, 4, 0, 7, 20, 0, 1, 12, 0, 0, 0, 0, 0, 0x10, 0, 0, 7, 20,
            0, 3, 3, 0, 0, 0, 0, 0, 0x10, 0, 0x17, 7, 20, 0, 2, 13, 0, 0, 0, 0, 0, 0x10, 0, 0, 7,
            100,
        ]),
        // ICMP: an echo reply to the ping, an error quoting A's last packet.
        4 => ops.extend([7, 100, 4, 0, 7, 100, 4, 1, 3, 40, 0, 0, 0, 0]),
        // UDP to the echo port, ARP and neighbor discovery.
        5 => ops.extend([5, 0, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 6, 4, 6, 5]),
        // Link flaps and application calls.
        6 => ops.extend([8, 7, 50, 8, 9, 0, 10, 0, 9, 2, 0, 0, 9, 10, 3, 0]),
        // A long step: timeouts, lease expiry, retransmissions.
        7 => ops.extend([7 | 0x80, 200, 7, 255]),
        // Random operations.
        _ => ops.extend(r.take(64)),
    }
    ops
}

/// Frames inputs: `frames` (captured or crafted) injected a few at a time, with time steps.
fn frames_seeds(header: u8, frames: &[Vec<u8>], per_input: usize) -> Vec<Vec<u8>> {
    frames
        .chunks(per_input)
        .map(|chunk| {
            let mut input = vec![header];
            for f in chunk {
                let len = f.len().min(MAX_FRAME) as u16;
                input.push(0);
                input.extend(len.to_le_bytes());
                input.extend(&f[..usize::from(len)]);
                input.extend([4, 40]);
            }
            input
        })
        .collect()
}

/// The seed corpus: `(target, input)` pairs for `frames_ethernet`, `frames_ip` and
/// `structured`, made from real exchanges of the scenarios (captured on the link, both ways)
/// and from the messages the structured operations craft (DHCP, DNS, RA, TCP, ICMP, ...).
pub fn seed_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    // (first byte of structured inputs, first byte of frames inputs, frames target)
    for (structured_first, frames_first, target) in [
        (0u8, 0u8, "frames_ethernet"),
        (1, 1, "frames_ethernet"),
        // No router during the set-up.
        (0x18, 0x0c, "frames_ethernet"),
        (4, 0, "frames_ip"),
    ] {
        let ethernet = target == "frames_ethernet";
        let mut frames = Vec::new();
        for variant in 0..10 {
            let ops = structured_seed_ops(structured_first, variant);
            out.push(("structured", ops.clone()));
            let events = structured_input(&ops, true);
            frames.extend(events.frames);
        }
        // A run of the frames target itself: set-up, pings, DNS, time.
        let events = frames_input(ethernet, &[frames_first, 4, 200, 4, 255], true);
        frames.extend(events.frames);
        frames.sort();
        frames.dedup();
        out.extend(
            frames_seeds(frames_first, &frames, 6)
                .into_iter()
                .map(|i| (target, i)),
        );
    }
    out
}
