//! A shaped Ethernet link for the goodput benchmark: a link rate, a fixed delay, loss, and a
//! device queue of N frames each way, on the virtual clock of [`crate::exec::run_virtual`].
//!
//! # Model
//!
//! Each end is a MAC with a **TX ring** and an **RX ring** of [`Shape::queue`] frames each,
//! as a DMA descriptor ring:
//!
//! - [`Driver::transmit`] hands out a token only while this end's TX ring has room; otherwise
//!   it registers the waker and a timer for the instant the frame being serialised leaves the
//!   ring (backpressure: a stack that respects it never overflows the ring).
//! - [`Driver::receive`] hands out a token pair only while a frame is in this end's RX ring
//!   **and** its TX ring has room, as embassy-stm32's Ethernet driver and
//!   embassy-net-driver-channel (cyw43, W5500, esp-hosted, USB NCM) do; the transmit half can
//!   therefore always be used. Should a stack still send into a full TX ring, the frame is
//!   dropped and counted ([`DirStats::tx_dropped`]).
//! - The TX ring is served in order at [`Shape::rate`]: a frame of `n` bytes occupies the wire
//!   for `(max(n, 60) + 24) * 8 / rate` seconds (the 24 bytes are the preamble, start-of-frame
//!   delimiter, FCS and inter-frame gap; 60 the minimum frame without FCS), so 1460-byte TCP
//!   segments in 1514-byte frames can carry at most 1460 / 1538 = 94.9 % of the link rate.
//!   A frame leaves the TX ring when its last bit is on the wire.
//! - Then it travels for [`Shape::delay_us`] (one way; RTT = 2 x delay plus serialisation) and is
//!   lost with probability [`Shape::loss`] (each direction its own seeded PRNG, so the same
//!   traffic meets the same losses on every run).
//! - On arrival it goes into the peer's RX ring, or is **dropped** if the ring is full
//!   ([`DirStats::rx_dropped`]): the receiving stack did not take frames fast enough. As the
//!   virtual CPU is infinitely fast, that only happens when a stack does not call `receive`
//!   while frames wait (for instance because its TX ring is full, see above).
//!
//! Time is kept in nanoseconds inside the link; a frame becomes visible at the first
//! microsecond tick at or after its arrival (the clock's resolution), without delaying the
//! frames behind it.
//!
//! # What the link measures
//!
//! It reads the IPv4/TCP headers of every frame sent (the stacks under test are not asked):
//! payload bytes, **retransmissions** (a segment carrying payload that starts below the
//! highest sequence number already sent on its connection), and the **time the network
//! stood empty** (nothing in any ring or on the wire) while the run went on. As the CPU costs
//! no time, an empty network means both stacks wait for a timer; that wait is charged to the
//! first frame that ends it: a retransmission ([`Stats::wait_rto_us`], a retransmission
//! timeout), a segment without payload ([`Stats::wait_ack_us`], a delayed ACK or window
//! update), anything else ([`Stats::wait_other_us`]).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Context, Waker};

use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};

use crate::exec::now_us;

/// Largest frame, including the 14-byte Ethernet header (1500-byte IP MTU).
pub const MTU: usize = 1514;
/// Bytes each frame costs on the wire beyond its own: preamble and SFD (8), FCS (4),
/// inter-frame gap (12).
pub const WIRE_OVERHEAD: u64 = 24;
/// Shortest frame without FCS; shorter frames are padded on the wire.
pub const MIN_FRAME: u64 = 60;
/// TCP payload of a full-sized segment (IPv4, no TCP options).
pub const MSS: u64 = 1460;
/// MAC address of end "a".
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// MAC address of end "b".
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// The link's parameters (the same both ways).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    /// Link rate in bits per second (non-zero).
    pub rate: u64,
    /// One-way propagation delay in microseconds.
    pub delay_us: u64,
    /// Frames each TX ring and each RX ring holds (non-zero).
    pub queue: usize,
    /// Probability (0..=1) that a frame is lost on the wire.
    pub loss: f64,
    /// Seed of the loss PRNGs.
    pub seed: u64,
}

impl Shape {
    /// Wire time of a frame of `len` bytes, in nanoseconds.
    pub fn serialisation_ns(&self, len: usize) -> u64 {
        (len as u64).max(MIN_FRAME).saturating_add(WIRE_OVERHEAD) * 8_000_000_000 / self.rate
    }

    /// The highest TCP goodput the link allows, as a fraction of its rate: full-sized
    /// segments back to back.
    pub fn ceiling(&self) -> f64 {
        MSS as f64 / (MTU as u64 + WIRE_OVERHEAD) as f64
    }

    /// Round-trip time of a full-sized segment and its ACK, in seconds (propagation both ways
    /// plus both serialisations).
    pub fn rtt_s(&self) -> f64 {
        (2 * self.delay_us * 1000 + self.serialisation_ns(MTU) + self.serialisation_ns(54)) as f64
            / 1e9
    }
}

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Frames put into the TX ring.
    pub frames: u64,
    /// TCP payload bytes sent (retransmissions included).
    pub payload: u64,
    /// TCP segments with payload that repeat sequence space already sent.
    pub retransmissions: u64,
    /// Frames lost on the wire (the configured loss).
    pub lost: u64,
    /// Frames dropped because the sender's TX ring was full.
    pub tx_dropped: u64,
    /// Frames dropped because the receiver's RX ring was full.
    pub rx_dropped: u64,
    /// Frames taken by the receiving stack.
    pub delivered: u64,
}

impl DirStats {
    /// Frames dropped at a device queue (TX or RX ring), not counting wire loss.
    pub fn queue_dropped(&self) -> u64 {
        self.tx_dropped + self.rx_dropped
    }

    fn add(&mut self, o: &DirStats) {
        self.frames += o.frames;
        self.payload += o.payload;
        self.retransmissions += o.retransmissions;
        self.lost += o.lost;
        self.tx_dropped += o.tx_dropped;
        self.rx_dropped += o.rx_dropped;
        self.delivered += o.delivered;
    }
}

/// Counters of a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// From a to b.
    pub a_to_b: DirStats,
    /// From b to a.
    pub b_to_a: DirStats,
    /// Time the network stood empty, ended by a retransmission (microseconds).
    pub wait_rto_us: u64,
    /// Time the network stood empty, ended by a segment without payload.
    pub wait_ack_us: u64,
    /// Time the network stood empty, ended by anything else.
    pub wait_other_us: u64,
}

impl Stats {
    /// Both directions added up.
    pub fn total(&self) -> DirStats {
        let mut t = self.a_to_b;
        t.add(&self.b_to_a);
        t
    }
}

/// A frame in a ring or on the wire.
struct Frame {
    data: Vec<u8>,
    /// When it has left the TX ring (last bit sent), then when it arrives, in ns.
    at_ns: u64,
    lost: bool,
}

/// Highest sequence number sent per TCP connection (by source and destination port).
#[derive(Default)]
struct SeqTracker {
    flows: Vec<((u16, u16), u32)>,
}

/// What the link reads in a frame.
enum Kind {
    /// TCP with payload; `true` if it repeats sequence space.
    Data { len: u64, retransmission: bool },
    /// TCP without payload.
    Bare,
    /// Not TCP over IPv4.
    Other,
}

impl SeqTracker {
    fn classify(&mut self, f: &[u8]) -> Kind {
        let be16 = |i: usize| u16::from_be_bytes([f[i], f[i + 1]]);
        if f.len() < 34 || be16(12) != 0x0800 || f[23] != 6 {
            return Kind::Other;
        }
        let ihl = usize::from(f[14] & 0x0f) * 4;
        let ip_len = usize::from(be16(16));
        let t = 14 + ihl;
        if f.len() < t + 20 || ip_len < ihl + 20 {
            return Kind::Other;
        }
        let doff = usize::from(f[t + 12] >> 4) * 4;
        let payload = ip_len.saturating_sub(ihl + doff) as u32;
        let flags = f[t + 13];
        let seq = u32::from_be_bytes([f[t + 4], f[t + 5], f[t + 6], f[t + 7]]);
        // SYN and FIN take one sequence number each.
        let end = seq
            .wrapping_add(payload)
            .wrapping_add(u32::from(flags & 0x02 != 0))
            .wrapping_add(u32::from(flags & 0x01 != 0));
        let key = (be16(t), be16(t + 2));
        let slot = match self.flows.iter_mut().find(|(k, _)| *k == key) {
            Some((_, max)) => max,
            None => {
                self.flows.push((key, seq));
                &mut self.flows.last_mut().expect("just pushed").1
            }
        };
        let retransmission = payload > 0 && (seq.wrapping_sub(*slot) as i32) < 0;
        if (end.wrapping_sub(*slot) as i32) > 0 {
            *slot = end;
        }
        if payload > 0 {
            Kind::Data {
                len: u64::from(payload),
                retransmission,
            }
        } else {
            Kind::Bare
        }
    }
}

/// One direction: the sender's TX ring, the wire, the receiver's RX ring.
struct Dir {
    tx: VecDeque<Frame>,
    wire: VecDeque<Frame>,
    rx: VecDeque<Frame>,
    /// When the wire is free again (ns).
    busy_until_ns: u64,
    rng: u64,
    seqs: SeqTracker,
    stats: DirStats,
    /// The receiving end's runner, waiting for a frame.
    rx_waker: Option<Waker>,
    /// The sending end's runner, waiting for TX room.
    tx_waker: Option<Waker>,
}

impl Dir {
    fn new(seed: u64) -> Self {
        Self {
            tx: VecDeque::new(),
            wire: VecDeque::new(),
            rx: VecDeque::new(),
            busy_until_ns: 0,
            // splitmix64 of the seed; never zero for xorshift.
            rng: splitmix(seed) | 1,
            seqs: SeqTracker::default(),
            stats: DirStats::default(),
            rx_waker: None,
            tx_waker: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.tx.is_empty() && self.wire.is_empty() && self.rx.is_empty()
    }

    fn random(&mut self) -> f64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Link {
    shape: Shape,
    /// `dirs[i]` carries the frames headed to end `i`.
    dirs: [Dir; 2],
    /// Since when (ns) the whole network has been empty, if it is.
    empty_since_ns: Option<u64>,
    wait_rto_ns: u64,
    wait_ack_ns: u64,
    wait_other_ns: u64,
    /// Spare frame buffers.
    pool: Vec<Vec<u8>>,
    /// The last [`TRACE_LEN`] frames sent, summarised (for [`LinkHandle::describe`]).
    trace: VecDeque<String>,
    /// Print every frame's summary on stderr (environment variable `GOODPUT_TRACE_ALL`).
    print_trace: bool,
}

/// Frames [`LinkHandle::describe`] lists.
pub const TRACE_LEN: usize = 80;

/// One line about a frame: time, direction, TCP ports, flags, seq, ack, window, payload.
fn summarise(now_us: u64, to: usize, f: &[u8], lost: bool, dropped: bool) -> String {
    let dir = if to == 1 { "a>b" } else { "b>a" };
    let be16 = |i: usize| u16::from_be_bytes([f[i], f[i + 1]]);
    let be32 = |i: usize| u32::from_be_bytes([f[i], f[i + 1], f[i + 2], f[i + 3]]);
    let fate = if dropped {
        " TX-DROPPED"
    } else if lost {
        " LOST"
    } else {
        ""
    };
    if f.len() < 54 || be16(12) != 0x0800 || f[23] != 6 {
        return format!("{now_us:>10} us {dir} non-TCP {} bytes{fate}", f.len());
    }
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let t = 14 + ihl;
    let doff = usize::from(f[t + 12] >> 4) * 4;
    let payload = usize::from(be16(16)).saturating_sub(ihl + doff);
    let fl = f[t + 13];
    let flags: String = [
        (0x02, 'S'),
        (0x10, '.'),
        (0x08, 'P'),
        (0x01, 'F'),
        (0x04, 'R'),
    ]
    .iter()
    .filter(|(b, _)| fl & b != 0)
    .map(|(_, c)| *c)
    .collect();
    format!(
        "{now_us:>10} us {dir} {}>{} [{flags}] seq {} ack {} win {} len {payload}{fate}",
        be16(t),
        be16(t + 2),
        be32(t + 4),
        be32(t + 8),
        be16(t + 14)
    )
}

fn ticks_at_or_after(ns: u64) -> u64 {
    ns.div_ceil(1000)
}

impl Link {
    /// Moves every frame whose time has come: out of the TX rings onto the wire, off the wire
    /// into the RX rings (or dropped).
    fn advance(&mut self, now_ns: u64) {
        // When the last frame that vanished (lost or dropped) arrived.
        let mut vanished_ns = None;
        for d in 0..2 {
            let delay_ns = self.shape.delay_us * 1000;
            let dir = &mut self.dirs[d];
            while dir.tx.front().is_some_and(|f| f.at_ns <= now_ns) {
                let Some(mut f) = dir.tx.pop_front() else {
                    break;
                };
                f.at_ns += delay_ns;
                dir.wire.push_back(f);
            }
            while dir.wire.front().is_some_and(|f| f.at_ns <= now_ns) {
                let Some(f) = dir.wire.pop_front() else {
                    break;
                };
                if f.lost || dir.rx.len() >= self.shape.queue {
                    if f.lost {
                        dir.stats.lost += 1;
                    } else {
                        dir.stats.rx_dropped += 1;
                    }
                    vanished_ns = vanished_ns.max(Some(f.at_ns));
                    self.pool.push(f.data);
                } else {
                    dir.rx.push_back(f);
                }
            }
        }
        // Frames that vanish are seen lazily: if the network is empty now, it has been since
        // the last of them arrived.
        self.note_if_empty(vanished_ns.unwrap_or(now_ns));
    }

    /// Records the start of an empty period.
    fn note_if_empty(&mut self, now_ns: u64) {
        if self.empty_since_ns.is_none() && self.dirs.iter().all(Dir::is_empty) {
            self.empty_since_ns = Some(now_ns);
        }
    }

    /// The next instant (ns) something changes in direction `d`'s rings, if any.
    fn next_rx_event(&self, d: usize) -> Option<u64> {
        let dir = &self.dirs[d];
        let delay_ns = self.shape.delay_us * 1000;
        dir.wire
            .front()
            .map(|f| f.at_ns)
            .or_else(|| dir.tx.front().map(|f| f.at_ns + delay_ns))
    }

    /// Puts a frame built by `fill` into the TX ring of the end whose frames go to `to`.
    fn enqueue<R>(&mut self, to: usize, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R {
        let now_ns = now_us() * 1000;
        self.advance(now_ns);
        let mut data = self.pool.pop().unwrap_or_default();
        data.clear();
        data.resize(len, 0);
        let result = fill(&mut data);
        let queue = self.shape.queue;
        let ser = self.shape.serialisation_ns(len);
        let loss = self.shape.loss;
        let dir = &mut self.dirs[to];
        dir.stats.frames += 1;
        let kind = dir.seqs.classify(&data);
        if let Kind::Data {
            len,
            retransmission,
        } = kind
        {
            dir.stats.payload += len;
            dir.stats.retransmissions += u64::from(retransmission);
        }
        if let Some(since) = self.empty_since_ns.take() {
            let waited = now_ns.saturating_sub(since);
            match kind {
                Kind::Data {
                    retransmission: true,
                    ..
                } => self.wait_rto_ns += waited,
                Kind::Bare => self.wait_ack_ns += waited,
                _ => self.wait_other_ns += waited,
            }
        }
        let dir = &mut self.dirs[to];
        let tx_full = dir.tx.len() >= queue;
        let lost = !tx_full && loss > 0.0 && dir.random() < loss;
        if self.trace.len() == TRACE_LEN {
            self.trace.pop_front();
        }
        let line = summarise(now_ns / 1000, to, &data, lost, tx_full);
        if self.print_trace {
            eprintln!("{line}");
        }
        self.trace.push_back(line);
        let dir = &mut self.dirs[to];
        if tx_full {
            dir.stats.tx_dropped += 1;
            self.pool.push(data);
            self.note_if_empty(now_ns);
            return result;
        }
        let start = dir.busy_until_ns.max(now_ns);
        dir.busy_until_ns = start + ser;
        dir.tx.push_back(Frame {
            data,
            at_ns: start + ser,
            lost,
        });
        // The receiver is woken when the frame arrives (a timer at that instant).
        if let Some(w) = &dir.rx_waker {
            let arrive = start + ser + self.shape.delay_us * 1000;
            embassy_time_driver::schedule_wake(ticks_at_or_after(arrive), w);
        }
        result
    }
}

/// Makes a shaped link and returns its two ends ("a" with [`MAC_A`], "b" with [`MAC_B`]) and
/// a handle to read its counters.
///
/// # Panics
///
/// If `shape.rate` or `shape.queue` is zero or `shape.loss` is not in 0..=1.
pub fn pair(shape: Shape) -> (ShapedDevice, ShapedDevice, LinkHandle) {
    assert!(shape.rate > 0, "shaped link: rate must be non-zero");
    assert!(shape.queue > 0, "shaped link: queue must be non-zero");
    assert!(
        (0.0..=1.0).contains(&shape.loss),
        "shaped link: loss must be in 0..=1"
    );
    let link = Rc::new(RefCell::new(Link {
        shape,
        dirs: [
            Dir::new(shape.seed),
            Dir::new(shape.seed ^ 0x5555_aaaa_5555_aaaa),
        ],
        empty_since_ns: Some(now_us() * 1000),
        wait_rto_ns: 0,
        wait_ack_ns: 0,
        wait_other_ns: 0,
        pool: Vec::new(),
        trace: VecDeque::new(),
        print_trace: std::env::var_os("GOODPUT_TRACE_ALL").is_some(),
    }));
    let a = ShapedDevice {
        link: link.clone(),
        end: 0,
        mac: MAC_A,
    };
    let b = ShapedDevice {
        link: link.clone(),
        end: 1,
        mac: MAC_B,
    };
    (a, b, LinkHandle { link })
}

/// Reads a shaped link's counters.
pub struct LinkHandle {
    link: Rc<RefCell<Link>>,
}

impl LinkHandle {
    /// The counters, brought up to the current (virtual) time.
    pub fn stats(&self) -> Stats {
        let mut l = self.link.borrow_mut();
        l.advance(now_us() * 1000);
        Stats {
            a_to_b: l.dirs[1].stats,
            b_to_a: l.dirs[0].stats,
            wait_rto_us: l.wait_rto_ns / 1000,
            wait_ack_us: l.wait_ack_ns / 1000,
            wait_other_us: l.wait_other_ns / 1000,
        }
    }
}

impl LinkHandle {
    /// What is in the rings and on the wire, and the last frames sent (for a run that did not
    /// finish).
    pub fn describe(&self) -> String {
        let l = self.link.borrow();
        let mut out = String::new();
        for (d, name) in [(1, "a>b"), (0, "b>a")] {
            let dir = &l.dirs[d];
            out.push_str(&format!(
                "{name}: tx ring {}, wire {}, rx ring {}; {:?}\n",
                dir.tx.len(),
                dir.wire.len(),
                dir.rx.len(),
                dir.stats
            ));
        }
        out.push_str("last frames sent:\n");
        for line in &l.trace {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// One end of a shaped link; an `embassy_net_driver::Driver` for either stack.
pub struct ShapedDevice {
    link: Rc<RefCell<Link>>,
    end: usize,
    mac: [u8; 6],
}

/// Receive token: the frame at the head of this end's RX ring.
pub struct ShapedRxToken<'a> {
    link: &'a RefCell<Link>,
    end: usize,
}

impl RxToken for ShapedRxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let frame = {
            let mut link = self.link.borrow_mut();
            link.dirs[self.end].stats.delivered += 1;
            link.dirs[self.end].rx.pop_front()
        };
        let Some(mut frame) = frame else {
            // `receive` only hands out a token for a queued frame, and nothing else takes it.
            unreachable!("shaped link: receive token without a frame");
        };
        // Not borrowed while the stack handles the frame: it may send through the TX token.
        let result = f(&mut frame.data);
        let mut link = self.link.borrow_mut();
        link.pool.push(frame.data);
        link.note_if_empty(now_us() * 1000);
        result
    }
}

/// Transmit token: puts the frame into this end's TX ring.
pub struct ShapedTxToken<'a> {
    link: &'a RefCell<Link>,
    /// The end the frame goes to.
    to: usize,
}

impl TxToken for ShapedTxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        assert!(
            len <= MTU,
            "shaped link: frame of {len} bytes exceeds the MTU ({MTU})"
        );
        self.link.borrow_mut().enqueue(self.to, len, f)
    }
}

impl ShapedDevice {
    /// Registers `waker` to be woken when this end's TX ring has room again.
    fn wait_tx_room(link: &mut Link, from: usize, waker: &Waker) {
        let dir = &mut link.dirs[1 - from];
        dir.tx_waker = Some(waker.clone());
        if let Some(head) = dir.tx.front() {
            embassy_time_driver::schedule_wake(ticks_at_or_after(head.at_ns), waker);
        }
    }
}

impl Driver for ShapedDevice {
    type RxToken<'a>
        = ShapedRxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = ShapedTxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let mut guard = self.link.borrow_mut();
        let link = &mut *guard;
        link.advance(now_us() * 1000);
        let queue = link.shape.queue;
        let end = self.end;
        if link.dirs[end].rx.is_empty() {
            link.dirs[end].rx_waker = Some(cx.waker().clone());
            if let Some(at) = link.next_rx_event(end) {
                embassy_time_driver::schedule_wake(ticks_at_or_after(at), cx.waker());
            }
            return None;
        }
        if link.dirs[1 - end].tx.len() >= queue {
            // A frame waits, but there is no room to answer it: wait for TX room.
            Self::wait_tx_room(link, end, cx.waker());
            return None;
        }
        drop(guard);
        Some((
            ShapedRxToken {
                link: &self.link,
                end,
            },
            ShapedTxToken {
                link: &self.link,
                to: 1 - end,
            },
        ))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
        let mut guard = self.link.borrow_mut();
        let link = &mut *guard;
        link.advance(now_us() * 1000);
        if link.dirs[1 - self.end].tx.len() >= link.shape.queue {
            Self::wait_tx_room(link, self.end, cx.waker());
            return None;
        }
        drop(guard);
        Some(ShapedTxToken {
            link: &self.link,
            to: 1 - self.end,
        })
    }

    fn link_state(&mut self, _cx: &mut Context) -> LinkState {
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{Task, run_virtual};
    use std::cell::RefCell as StdRefCell;
    use std::future::poll_fn;
    use std::pin::pin;
    use std::task::Poll;

    const SHAPE: Shape = Shape {
        rate: 100_000_000,
        delay_us: 100,
        queue: 2,
        loss: 0.0,
        seed: 1,
    };

    /// Sends `n` frames of `len` bytes (byte 0 = index) as fast as the TX ring takes them.
    async fn send(dev: &mut ShapedDevice, n: u8, len: usize, sent_at: &StdRefCell<Vec<u64>>) {
        for i in 0..n {
            let tok = poll_fn(|cx| match dev.transmit(cx) {
                Some(_) => Poll::Ready(()),
                None => Poll::Pending,
            });
            tok.await;
            let Some(tok) = dev.transmit(&mut Context::from_waker(std::task::Waker::noop())) else {
                panic!("room vanished");
            };
            tok.consume(len, |b| b[0] = i);
            sent_at.borrow_mut().push(now_us());
        }
    }

    /// Receives `n` frames, recording (first byte, arrival time).
    async fn recv(dev: &mut ShapedDevice, n: usize, got: &StdRefCell<Vec<(u8, u64)>>) {
        for _ in 0..n {
            poll_fn(|cx| match dev.receive(cx) {
                Some((rx, _tx)) => {
                    rx.consume(|b| got.borrow_mut().push((b[0], now_us())));
                    Poll::Ready(())
                }
                None => Poll::Pending,
            })
            .await;
        }
    }

    #[test]
    fn frames_are_serialised_delayed_and_paced_by_the_tx_ring() {
        let (mut a, mut b, link) = pair(SHAPE);
        let sent = StdRefCell::new(Vec::new());
        let got = StdRefCell::new(Vec::new());
        let result = run_virtual(
            &mut [
                Task::required(pin!(async { send(&mut a, 4, MTU, &sent).await })),
                Task::required(pin!(async { recv(&mut b, 4, &got).await })),
            ],
            1_000_000,
        );
        assert!(result.is_ok());
        // 1538 bytes on the wire at 100 Mbit/s: 123.04 us each, back to back.
        let ser = SHAPE.serialisation_ns(MTU);
        assert_eq!(ser, 123_040);
        let arrivals: Vec<(u8, u64)> = (0..4u64)
            .map(|k| (k as u8, ((k + 1) * ser + 100_000).div_ceil(1000)))
            .collect();
        assert_eq!(*got.borrow(), arrivals);
        // A ring of 2: the third frame waits until the first has left the ring.
        assert_eq!(
            *sent.borrow(),
            [0, 0, ser.div_ceil(1000), (2 * ser).div_ceil(1000)]
        );
        let s = link.stats();
        assert_eq!((s.a_to_b.frames, s.a_to_b.delivered), (4, 4));
        assert_eq!(s.a_to_b.queue_dropped(), 0);
    }

    #[test]
    fn a_full_rx_ring_drops_what_arrives() {
        let (mut a, mut b, link) = pair(SHAPE);
        let sent = StdRefCell::new(Vec::new());
        let got = StdRefCell::new(Vec::new());
        // The receiver only looks after every frame has arrived.
        let result = run_virtual(
            &mut [
                Task::required(pin!(async { send(&mut a, 5, 100, &sent).await })),
                Task::required(pin!(async {
                    embassy_time::Timer::after_millis(10).await;
                    recv(&mut b, 2, &got).await;
                })),
            ],
            1_000_000,
        );
        assert!(result.is_ok());
        let firsts: Vec<u8> = got.borrow().iter().map(|(i, _)| *i).collect();
        assert_eq!(firsts, [0, 1]);
        let s = link.stats();
        assert_eq!((s.a_to_b.rx_dropped, s.a_to_b.delivered), (3, 2));
        assert_eq!(s.a_to_b.tx_dropped, 0);
    }

    #[test]
    fn receive_waits_for_tx_room() {
        let (mut a, mut b, _link) = pair(SHAPE);
        let cx = &mut Context::from_waker(std::task::Waker::noop());
        let result = run_virtual(
            &mut [Task::required(pin!(async {
                // b sends one frame to a; a fills its own TX ring.
                let Some(t) = b.transmit(cx) else {
                    panic!("b has room")
                };
                t.consume(60, |_| ());
                for _ in 0..2 {
                    let Some(t) = a.transmit(cx) else {
                        panic!("a has room")
                    };
                    t.consume(MTU, |_| ());
                }
                assert!(a.transmit(cx).is_none());
                embassy_time::Timer::after_micros(110).await;
                // b's frame has arrived (100 us + 6.72 us), a's first is still on the wire.
                assert!(a.receive(cx).is_none(), "no token pair without TX room");
                embassy_time::Timer::after_micros(20).await;
                assert!(a.receive(cx).is_some(), "a frame left a's TX ring");
            }))],
            1_000_000,
        );
        assert!(result.is_ok());
    }

    #[test]
    fn loss_is_seeded() {
        let lossy = Shape {
            loss: 0.5,
            queue: 64,
            ..SHAPE
        };
        let run = || {
            let (mut a, mut b, link) = pair(lossy);
            let sent = StdRefCell::new(Vec::new());
            let got = StdRefCell::new(Vec::new());
            let r = run_virtual(
                &mut [
                    Task::required(pin!(async { send(&mut a, 40, 100, &sent).await })),
                    Task::background(pin!(async { recv(&mut b, 40, &got).await })),
                    Task::required(pin!(embassy_time::Timer::after_millis(5))),
                ],
                1_000_000,
            );
            assert!(r.is_ok());
            (got.into_inner(), link.stats())
        };
        let (got1, s1) = run();
        let (got2, s2) = run();
        assert_eq!(got1, got2);
        assert_eq!(s1, s2);
        assert_eq!(s1.a_to_b.lost + s1.a_to_b.delivered, 40);
        assert!(s1.a_to_b.lost > 5 && s1.a_to_b.lost < 35, "{s1:?}");
    }

    /// An IPv4/TCP frame from port 1 to 2 with `seq` and `payload` bytes of payload.
    fn tcp_frame(seq: u32, payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 54 + payload];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        f[23] = 6;
        f[34..36].copy_from_slice(&1u16.to_be_bytes());
        f[36..38].copy_from_slice(&2u16.to_be_bytes());
        f[38..42].copy_from_slice(&seq.to_be_bytes());
        f[46] = 5 << 4;
        f[47] = 0x10;
        f
    }

    #[test]
    fn retransmissions_are_segments_below_the_highest_sequence_sent() {
        let mut t = SeqTracker::default();
        let kinds: Vec<(u64, bool)> = [
            (u32::MAX - 99, 100),
            (0, 100),
            (u32::MAX - 99, 100),
            (50, 100),
            (100, 0),
            (200, 10),
        ]
        .iter()
        .map(|&(seq, len)| match t.classify(&tcp_frame(seq, len)) {
            Kind::Data {
                len,
                retransmission,
            } => (len, retransmission),
            Kind::Bare => (0, false),
            Kind::Other => panic!("TCP"),
        })
        .collect();
        assert_eq!(
            kinds,
            [
                (100, false),
                (100, false),
                (100, true),
                (100, true),
                (0, false),
                (10, false)
            ]
        );
        assert!(matches!(t.classify(&[0u8; 60]), Kind::Other));
    }
}
