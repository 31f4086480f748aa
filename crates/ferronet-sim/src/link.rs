//! Point-to-point links between two virtual network devices.
//!
//! [`pair`] (or [`pair_ethernet`]) makes two [`SimDevice`]s joined by a virtual cable and a
//! [`LinkHandle`] to control it. Each `SimDevice` implements
//! [`embassy_net_driver::Driver`], so it can be handed to ferronet (or embassy-net) like a real
//! Ethernet MAC or TUN-like IP interface; it also has raw frame methods
//! ([`SimDevice::send_frame`], [`SimDevice::recv_frame`], …) to script a peer without a stack.
//!
//! # What is modelled
//!
//! - Per direction, a bounded FIFO of [`LinkConfig::queue_depth`] frames (the receiver's
//!   RX ring). [`Driver::transmit`] only hands out a token while the peer's queue has room and
//!   otherwise registers the waker, which is woken when the peer takes a frame
//!   (backpressure).
//! - A fixed one-way latency: a frame becomes receivable at send time + [`LinkConfig::latency`]
//!   (in `embassy-time` time, so virtual time under the [`Executor`](crate::executor::Executor)).
//! - Faults, drawn per direction from a PRNG seeded with [`LinkConfig::seed`], so a given seed
//!   and traffic give the same faults every run: loss, duplication, reordering (a frame is held
//!   back until the next frame in that direction has been queued, i.e. they swap places; the
//!   held frame waits until another frame comes), and corruption (one random bit flipped).
//! - Delay jitter: each frame waits a further uniform random time in 0..=[`LinkConfig::jitter`]
//!   (drawn from its own seeded stream), without overtaking the frame before it (the queue
//!   stays FIFO, as on one cable).
//! - A bandwidth limit ([`LinkConfig::rate`], bits per second): a frame of `n` bytes occupies
//!   its direction for `n * 8 / rate` seconds, and a frame sent while the direction is busy
//!   starts after the one before it (serialization delay; it still counts against the queue
//!   depth while it waits).
//! - Frames longer than [`LinkConfig::mtu`] are dropped (`oversize`), as a real MAC would.
//! - Link up/down ([`LinkHandle::set_up`]): while down, sent frames are dropped and queued
//!   ones discarded.
//! - Statistics per direction ([`LinkStats`]), a bounded in-memory capture
//!   ([`LinkHandle::capture`]) and pcap recording ([`LinkHandle::start_pcap`]).
//!
//! # What is not modelled
//!
//! No interframe gap or Ethernet overhead in the bandwidth limit (only the frame's bytes count),
//! no Ethernet FCS, preamble, minimum frame size or padding (frames are exactly the
//! bytes the driver was given), no collisions, no auto-negotiation, no PHY interrupts. Medium
//! is not checked: an Ethernet device can send any bytes. Checksum offload is not offered
//! (the reported [`Capabilities`] ask the stack to compute and check every checksum).

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};
use embassy_time::{Duration, Instant};

use crate::medium::{self, Kind, Medium, Pop, Shared, now_ticks};
use crate::pcap::LinkType;
use crate::util::lock;

/// The MAC address [`pair_ethernet`] gives end "a": 02:00:00:00:00:01 (locally administered).
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The MAC address [`pair_ethernet`] gives end "b": 02:00:00:00:00:02 (locally administered).
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// How a link (or every port of a [`Switch`](crate::switch::Switch)) behaves.
///
/// Build one with [`LinkConfig::ethernet`] (also [`Default`]) or [`LinkConfig::ip`] and
/// change fields with struct update syntax:
///
/// ```
/// use ferronet_sim::link::LinkConfig;
/// use embassy_time::Duration;
///
/// let cfg = LinkConfig { loss: 0.1, latency: Duration::from_millis(5), seed: 7, ..LinkConfig::ethernet() };
/// assert_eq!(cfg.mtu, 1514);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// The largest frame, in bytes, that the devices accept and report as
    /// `Capabilities::max_transmission_unit`. For Ethernet this includes the 14-byte header
    /// (1514 for a 1500-byte IP MTU); for [`Endpoint::Ip`] it is the IP MTU.
    pub mtu: usize,
    /// Frames each direction's receive queue holds.
    pub queue_depth: usize,
    /// Probability (0..=1) that a frame is lost.
    pub loss: f64,
    /// Probability (0..=1) that a frame is delivered twice.
    pub duplicate: f64,
    /// Probability (0..=1) that a frame swaps places with the next one in its direction.
    pub reorder: f64,
    /// Probability (0..=1) that one random bit of a frame is flipped.
    pub corrupt: f64,
    /// One-way delay before a sent frame can be received.
    pub latency: Duration,
    /// The largest extra delay a frame gets on top of `latency`: uniform in 0..=`jitter`,
    /// never overtaking the frame before it. Zero (the default) for none.
    pub jitter: Duration,
    /// Bandwidth of each direction in bits per second (serialization delay); 0 (the default)
    /// for unlimited.
    pub rate: u64,
    /// Seed of the fault PRNG.
    pub seed: u64,
}

impl LinkConfig {
    /// A clean Ethernet link: MTU 1514 (1500 + 14-byte header), 64 frames per direction, no
    /// faults, no latency, no jitter, no bandwidth limit, seed 0.
    pub const fn ethernet() -> Self {
        Self {
            mtu: 1514,
            queue_depth: 64,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            latency: Duration::from_ticks(0),
            jitter: Duration::from_ticks(0),
            rate: 0,
            seed: 0,
        }
    }

    /// Like [`ethernet`](Self::ethernet) but with MTU 1500, for [`Endpoint::Ip`] links.
    pub const fn ip() -> Self {
        Self {
            mtu: 1500,
            ..Self::ethernet()
        }
    }

    /// Like [`ethernet`](Self::ethernet) but with MTU 127 (the largest IEEE 802.15.4 frame),
    /// for [`Endpoint::Ieee802154`] links.
    pub const fn ieee802154() -> Self {
        Self {
            mtu: 127,
            ..Self::ethernet()
        }
    }

    /// The fault probabilities of this configuration.
    pub const fn faults(&self) -> Faults {
        Faults {
            loss: self.loss,
            duplicate: self.duplicate,
            reorder: self.reorder,
            corrupt: self.corrupt,
        }
    }

    /// Checks the configuration: `mtu` and `queue_depth` non-zero, probabilities in 0..=1.
    pub fn validate(&self) -> Result<(), ConfigError> {
        medium::validate(self)
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self::ethernet()
    }
}

/// Fault probabilities, each in 0..=1, for changing them at run time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Probability that a frame is delivered twice.
    pub duplicate: f64,
    /// Probability that a frame swaps places with the next one.
    pub reorder: f64,
    /// Probability that one random bit of a frame is flipped.
    pub corrupt: f64,
}

impl Faults {
    /// No faults at all.
    pub const NONE: Faults = Faults {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        corrupt: 0.0,
    };

    /// Checks that every probability is in 0..=1 (NaN is rejected).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::InvalidProbability { name, value });
            }
        }
        Ok(())
    }
}

/// A configuration that cannot be used.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A probability is outside 0..=1 or NaN.
    InvalidProbability {
        /// The field: `loss`, `duplicate`, `reorder` or `corrupt`.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// `mtu` is zero.
    ZeroMtu,
    /// `queue_depth` is zero.
    ZeroQueueDepth,
    /// The two ends of a link have different media (one Ethernet, one IP).
    MediumMismatch,
    /// A switch port was given a group (multicast/broadcast) MAC address.
    MulticastMac,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidProbability { name, value } => {
                write!(f, "probability `{name}` = {value} is not in 0..=1")
            }
            ConfigError::ZeroMtu => f.write_str("mtu must not be zero"),
            ConfigError::ZeroQueueDepth => f.write_str("queue_depth must not be zero"),
            ConfigError::MediumMismatch => {
                f.write_str("both ends of a link must be Ethernet or both IP")
            }
            ConfigError::MulticastMac => {
                f.write_str("a port's MAC address must not have the group (I/G) bit set")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why [`SimDevice::send_frame`] did not put a frame on the medium.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendFrameError {
    /// The peer's receive queue is full. Nothing was sent and nothing is counted.
    QueueFull,
    /// The link is down; the frame was dropped (counted as `dropped_link_down`).
    LinkDown,
    /// The frame is longer than the MTU; it was dropped (counted as `oversize`).
    Oversize,
}

impl fmt::Display for SendFrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendFrameError::QueueFull => "the peer's receive queue is full",
            SendFrameError::LinkDown => "the link is down",
            SendFrameError::Oversize => "the frame is longer than the MTU",
        })
    }
}

impl std::error::Error for SendFrameError {}

/// What one end of a link is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// An Ethernet interface with this MAC address; frames carry a 14-byte Ethernet header.
    Ethernet([u8; 6]),
    /// A TUN-like IP interface: frames are bare IPv4/IPv6 packets.
    Ip,
    /// An IEEE 802.15.4 radio with this extended (EUI-64) address; frames are 802.15.4 MAC
    /// frames without the FCS (6LoWPAN).
    Ieee802154([u8; 8]),
}

impl Endpoint {
    fn hardware_address(self) -> HardwareAddress {
        match self {
            Endpoint::Ethernet(mac) => HardwareAddress::Ethernet(mac),
            Endpoint::Ip => HardwareAddress::Ip,
            Endpoint::Ieee802154(addr) => HardwareAddress::Ieee802154(addr),
        }
    }
}

/// Counters for the frames going one way (a link direction, or into/out of a switch port).
///
/// `sent` counts every frame offered by the sender, including those then dropped; the other
/// counters say what happened to them. A duplicated frame counts once in `sent` and can count
/// twice in `delivered`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DirectionStats {
    /// Frames offered by the sender (its `TxToken`s consumed and `send_frame` calls, except
    /// those refused with [`SendFrameError::QueueFull`]).
    pub sent: u64,
    /// Bytes of the `sent` frames.
    pub bytes_sent: u64,
    /// Frames taken by the receiver.
    pub delivered: u64,
    /// Bytes of the `delivered` frames.
    pub bytes_delivered: u64,
    /// Frames dropped by the loss fault.
    pub lost: u64,
    /// Frames delivered twice by the duplicate fault.
    pub duplicated: u64,
    /// Frames held back one place by the reorder fault.
    pub reordered: u64,
    /// Frames with one bit flipped by the corrupt fault.
    pub corrupted: u64,
    /// Frames dropped because the receive queue was full.
    pub dropped_queue_full: u64,
    /// Frames dropped because the link was down when sent, or discarded from the queue when
    /// it went down.
    pub dropped_link_down: u64,
    /// Frames dropped for being longer than the MTU.
    pub oversize: u64,
    /// Frames a switch could not forward (shorter than an Ethernet header).
    pub malformed: u64,
}

impl DirectionStats {
    pub(crate) fn merge(mut self, other: &DirectionStats) -> DirectionStats {
        self.sent += other.sent;
        self.bytes_sent += other.bytes_sent;
        self.delivered += other.delivered;
        self.bytes_delivered += other.bytes_delivered;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.corrupted += other.corrupted;
        self.dropped_queue_full += other.dropped_queue_full;
        self.dropped_link_down += other.dropped_link_down;
        self.oversize += other.oversize;
        self.malformed += other.malformed;
        self
    }
}

/// Counters of both directions of a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LinkStats {
    /// Frames sent by end "a" towards end "b".
    pub a_to_b: DirectionStats,
    /// Frames sent by end "b" towards end "a".
    pub b_to_a: DirectionStats,
}

/// Which way a captured frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From end "a" to end "b" of a link.
    AToB,
    /// From end "b" to end "a" of a link.
    BToA,
    /// From a switch to the port with this index (ports are numbered in creation order).
    ToPort(usize),
}

/// A frame recorded by a capture ([`LinkHandle::capture`], [`Switch::capture`]).
///
/// [`Switch::capture`]: crate::switch::Switch::capture
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedFrame {
    /// Which way it went.
    pub direction: Direction,
    /// When the receiver took it (`embassy-time` time).
    pub time: Instant,
    /// The frame as received (after faults).
    pub data: Vec<u8>,
}

/// Makes a link between two devices. Fails if `cfg` is invalid or the endpoints' media differ.
///
/// ```
/// use ferronet_sim::link::{pair, Endpoint, LinkConfig};
///
/// let (mut a, mut b, _link) = pair(LinkConfig::ip(), Endpoint::Ip, Endpoint::Ip)?;
/// a.send_frame(&[0x45, 0, 0, 20])?;
/// assert_eq!(b.try_recv_frame().as_deref(), Some(&[0x45, 0, 0, 20][..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn pair(
    cfg: LinkConfig,
    a: Endpoint,
    b: Endpoint,
) -> Result<(SimDevice, SimDevice, LinkHandle), ConfigError> {
    medium::validate(&cfg)?;
    let link_type = match (a, b) {
        (Endpoint::Ethernet(_), Endpoint::Ethernet(_)) => LinkType::Ethernet,
        (Endpoint::Ip, Endpoint::Ip) => LinkType::RawIp,
        (Endpoint::Ieee802154(_), Endpoint::Ieee802154(_)) => LinkType::Ieee802154NoFcs,
        _ => return Err(ConfigError::MediumMismatch),
    };
    let mtu = cfg.mtu;
    let mut m = Medium::new(Kind::Link, cfg, link_type);
    let port_a = m.add_port(None);
    let port_b = m.add_port(None);
    let shared: Shared = Arc::new(Mutex::new(m));
    let dev_a = SimDevice::new(shared.clone(), port_a, a.hardware_address(), mtu);
    let dev_b = SimDevice::new(shared.clone(), port_b, b.hardware_address(), mtu);
    Ok((dev_a, dev_b, LinkHandle { shared }))
}

/// Makes an Ethernet link whose ends have the MACs [`MAC_A`] and [`MAC_B`].
pub fn pair_ethernet(cfg: LinkConfig) -> Result<(SimDevice, SimDevice, LinkHandle), ConfigError> {
    pair(cfg, Endpoint::Ethernet(MAC_A), Endpoint::Ethernet(MAC_B))
}

/// Controls and observes a link; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct LinkHandle {
    shared: Shared,
}

impl fmt::Debug for LinkHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkHandle")
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

/// Which direction(s) of a link a setting applies to.
fn port_for(direction: Direction) -> Option<usize> {
    match direction {
        // Settings live with the receiving queue.
        Direction::AToB => Some(1),
        Direction::BToA => Some(0),
        Direction::ToPort(_) => None,
    }
}

impl LinkHandle {
    /// Brings the link up or down (both ends at once). Going down discards every queued
    /// frame; either change wakes both devices so the stacks see the new
    /// [`LinkState`].
    pub fn set_up(&self, up: bool) {
        medium::with(&self.shared, |m, wakes| m.set_up(up, wakes));
    }

    /// Whether the link is up.
    pub fn is_up(&self) -> bool {
        lock(&self.shared).is_up()
    }

    /// The counters of both directions.
    pub fn stats(&self) -> LinkStats {
        let m = lock(&self.shared);
        LinkStats {
            a_to_b: m.ports[0].from_port.merge(&m.ports[1].to_port),
            b_to_a: m.ports[1].from_port.merge(&m.ports[0].to_port),
        }
    }

    /// The configuration as it is now, including changes made for both directions at once
    /// (per-direction settings are not reflected).
    pub fn config(&self) -> LinkConfig {
        lock(&self.shared).config().clone()
    }

    /// Sets the faults of both directions; applies to frames sent from now on.
    pub fn set_faults(&self, faults: Faults) -> Result<(), ConfigError> {
        faults.validate()?;
        lock(&self.shared).set_faults(None, faults);
        Ok(())
    }

    /// Sets the faults of one direction ([`Direction::AToB`] or [`Direction::BToA`]; any other
    /// value sets both).
    pub fn set_direction_faults(
        &self,
        direction: Direction,
        faults: Faults,
    ) -> Result<(), ConfigError> {
        faults.validate()?;
        lock(&self.shared).set_faults(port_for(direction), faults);
        Ok(())
    }

    /// Sets the loss probability of both directions, keeping the other faults.
    pub fn set_loss(&self, loss: f64) -> Result<(), ConfigError> {
        self.update_faults(|f| f.loss = loss)
    }

    /// Sets the duplication probability of both directions, keeping the other faults.
    pub fn set_duplicate(&self, duplicate: f64) -> Result<(), ConfigError> {
        self.update_faults(|f| f.duplicate = duplicate)
    }

    /// Sets the reordering probability of both directions, keeping the other faults.
    pub fn set_reorder(&self, reorder: f64) -> Result<(), ConfigError> {
        self.update_faults(|f| f.reorder = reorder)
    }

    /// Sets the corruption probability of both directions, keeping the other faults.
    pub fn set_corrupt(&self, corrupt: f64) -> Result<(), ConfigError> {
        self.update_faults(|f| f.corrupt = corrupt)
    }

    fn update_faults(&self, change: impl Fn(&mut Faults)) -> Result<(), ConfigError> {
        lock(&self.shared).update_faults(change)
    }

    /// Sets the one-way latency of both directions for frames sent from now on. Frames already
    /// queued keep their time, and the queue stays FIFO.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared).set_latency(None, latency);
    }

    /// Sets the latency of one direction ([`Direction::AToB`] or [`Direction::BToA`]).
    pub fn set_direction_latency(&self, direction: Direction, latency: Duration) {
        lock(&self.shared).set_latency(port_for(direction), latency);
    }

    /// Turns the in-memory capture on or off. While on, every frame a device takes from the
    /// link (after faults) is recorded with its direction and time, up to the last 100 000
    /// frames. Turning it off keeps what was recorded.
    pub fn capture(&self, enabled: bool) {
        lock(&self.shared).set_capture(enabled);
    }

    /// A copy of the frames captured so far, oldest first.
    pub fn captured(&self) -> Vec<CapturedFrame> {
        lock(&self.shared).captured()
    }

    /// The frames captured so far, oldest first, emptying the capture buffer.
    pub fn take_captured(&self) -> Vec<CapturedFrame> {
        lock(&self.shared).take_captured()
    }

    /// Records every frame taken by either device, from now on, to a new pcap file at `path`
    /// (link type Ethernet or raw IP according to the endpoints; timestamps from
    /// `embassy_time::Instant::now()`). The file is flushed after every frame. Replaces any
    /// recording in progress.
    pub fn start_pcap(&self, path: impl AsRef<Path>) -> io::Result<()> {
        lock(&self.shared).start_pcap(path.as_ref())
    }

    /// Stops the pcap recording, flushing the file. Returns the first write error that
    /// stopped the recording early, if any.
    pub fn stop_pcap(&self) -> io::Result<()> {
        lock(&self.shared).stop_pcap()
    }
}

/// One virtual network device: an end of a link or a port of a switch.
///
/// Implements [`embassy_net_driver::Driver`]. Token semantics:
///
/// - [`receive`](Driver::receive) returns a pair whenever a frame is due, taking it off the
///   queue at once. The [`TxToken`] of the pair always exists (so a stack that has to answer
///   never deadlocks); if, when it is consumed, the peer's queue is full, that frame is dropped
///   and counted as `dropped_queue_full`. With nothing due it registers the waker (and, if a
///   frame is queued but still in flight, schedules a timer wake for when it is due) and
///   returns `None`.
/// - [`transmit`](Driver::transmit) returns a token only if the peer's queue has room (always
///   for switch ports, and while the link is down, when the frame will be dropped); otherwise
///   it registers the waker, woken when the peer takes a frame, and returns `None`.
/// - A [`TxToken`] consumed with a length over the MTU drops the frame (`oversize`).
pub struct SimDevice {
    shared: Shared,
    port: usize,
    hardware_address: HardwareAddress,
    mtu: usize,
}

impl fmt::Debug for SimDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDevice")
            .field("port", &self.port)
            .field("hardware_address", &self.hardware_address)
            .field("mtu", &self.mtu)
            .finish_non_exhaustive()
    }
}

impl SimDevice {
    pub(crate) fn new(
        shared: Shared,
        port: usize,
        hardware_address: HardwareAddress,
        mtu: usize,
    ) -> Self {
        Self {
            shared,
            port,
            hardware_address,
            mtu,
        }
    }

    /// Changes the address [`hardware_address`](Driver::hardware_address) reports and wakes
    /// the device's wakers, so a stack using it notices. (A switch learns from the source
    /// addresses of frames, not from this.)
    pub fn set_hardware_address(&mut self, address: HardwareAddress) {
        self.hardware_address = address;
        medium::with(&self.shared, |m, wakes| m.wake_port(self.port, wakes));
    }

    /// Whether the link (or switch) is up.
    pub fn is_link_up(&self) -> bool {
        lock(&self.shared).is_up()
    }

    /// The MTU this device reports and enforces.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Takes the next frame if one is due, without waiting.
    pub fn try_recv_frame(&mut self) -> Option<Vec<u8>> {
        let now = now_ticks();
        match medium::with(&self.shared, |m, wakes| m.pop(self.port, now, wakes)) {
            Pop::Frame(frame) => Some(frame),
            Pop::NotDue(_) | Pop::Empty => None,
        }
    }

    /// Polls for the next frame: like [`try_recv_frame`](Self::try_recv_frame), but
    /// registers `cx`'s waker (and a timer wake for an in-flight frame) when there is none.
    pub fn poll_recv_frame(&mut self, cx: &mut Context<'_>) -> Poll<Vec<u8>> {
        match self.poll_pop(cx) {
            Some(frame) => Poll::Ready(frame),
            None => Poll::Pending,
        }
    }

    /// Waits for the next frame and takes it.
    pub async fn recv_frame(&mut self) -> Vec<u8> {
        poll_fn(|cx| self.poll_recv_frame(cx)).await
    }

    /// Sends one frame, applying the link's faults. Fails without sending if the peer's queue
    /// is full ([`SendFrameError::QueueFull`]); a frame sent while the link is down or longer
    /// than the MTU is dropped, counted and reported as an error.
    pub fn send_frame(&mut self, frame: &[u8]) -> Result<(), SendFrameError> {
        let now = now_ticks();
        medium::with(&self.shared, |m, wakes| {
            if !m.has_room(self.port) {
                return Err(SendFrameError::QueueFull);
            }
            m.send(self.port, frame.to_vec(), now, wakes)
        })
    }

    /// Like [`send_frame`](Self::send_frame), but waits for room in the peer's queue instead
    /// of failing with [`SendFrameError::QueueFull`].
    pub async fn send_frame_wait(&mut self, frame: &[u8]) -> Result<(), SendFrameError> {
        poll_fn(|cx| {
            let now = now_ticks();
            medium::with(&self.shared, |m, wakes| {
                if m.has_room(self.port) {
                    Poll::Ready(m.send(self.port, frame.to_vec(), now, wakes))
                } else {
                    m.register_tx(self.port, cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Takes a due frame, or registers the waker (and a timer wake) and returns `None`.
    fn poll_pop(&mut self, cx: &mut Context<'_>) -> Option<Vec<u8>> {
        let now = now_ticks();
        let popped = medium::with(&self.shared, |m, wakes| {
            let popped = m.pop(self.port, now, wakes);
            if !matches!(popped, Pop::Frame(_)) {
                m.register_rx(self.port, cx.waker());
            }
            popped
        });
        match popped {
            Pop::Frame(frame) => Some(frame),
            Pop::NotDue(due) => {
                embassy_time_driver::schedule_wake(due, cx.waker());
                None
            }
            Pop::Empty => None,
        }
    }

    fn send_raw(&self, frame: Vec<u8>) {
        let now = now_ticks();
        // Errors are drops, already counted in the link statistics.
        let _ = medium::with(&self.shared, |m, wakes| {
            m.send(self.port, frame, now, wakes)
        });
    }
}

/// The receive token of a [`SimDevice`]: owns the received frame.
#[derive(Debug)]
pub struct SimRxToken {
    frame: Vec<u8>,
}

impl RxToken for SimRxToken {
    fn consume<R, F>(mut self, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        f(&mut self.frame)
    }
}

/// The transmit token of a [`SimDevice`]: sends the frame when consumed (see [`SimDevice`]
/// for when it is dropped instead).
#[derive(Debug)]
pub struct SimTxToken<'a> {
    device: &'a SimDevice,
}

impl TxToken for SimTxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut frame = vec![0u8; len];
        let result = f(&mut frame);
        self.device.send_raw(frame);
        result
    }
}

impl Driver for SimDevice {
    type RxToken<'a>
        = SimRxToken
    where
        Self: 'a;
    type TxToken<'a>
        = SimTxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.poll_pop(cx)?;
        Some((SimRxToken { frame }, SimTxToken { device: self }))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
        let room = medium::with(&self.shared, |m, _| {
            let room = m.has_room(self.port);
            if !room {
                m.register_tx(self.port, cx.waker());
            }
            room
        });
        room.then_some(SimTxToken { device: self })
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        let mut m = lock(&self.shared);
        m.register_link(self.port, cx.waker());
        if m.is_up() {
            LinkState::Up
        } else {
            LinkState::Down
        }
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = self.mtu;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        self.hardware_address
    }
}
