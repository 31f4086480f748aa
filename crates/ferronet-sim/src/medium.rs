//! The frame-delivery core shared by [`link`](crate::link) and [`switch`](crate::switch).
//!
//! A medium is a set of ports (one per [`SimDevice`](crate::link::SimDevice)) behind one
//! mutex. Every port owns its bounded receive queue; sending a frame runs the forwarding
//! logic (the other end of a link, or a learning switch) and enqueues a copy into each
//! destination queue, applying that queue's faults. Wakers are collected while the lock is
//! held and woken after it is released.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::Waker;

use embassy_time::{Duration, Instant};

use crate::link::{
    CapturedFrame, ConfigError, Direction, DirectionStats, Faults, LinkConfig, SendFrameError,
};
use crate::pcap::{LinkType, PcapWriter};
use crate::util::{SplitMix64, lock};

/// The largest number of frames kept by a capture buffer; older frames are discarded.
pub(crate) const CAPTURE_LIMIT: usize = 100_000;

pub(crate) type Shared = Arc<Mutex<Medium>>;

/// Mixed into the seed for the jitter stream of each port.
const JITTER_STREAM: u64 = 0x6a17_7e12_5eed_0001;

/// Runs `f` on the locked medium, then wakes the wakers it collected (outside the lock).
pub(crate) fn with<R>(shared: &Shared, f: impl FnOnce(&mut Medium, &mut Vec<Waker>) -> R) -> R {
    let mut wakes = Vec::new();
    let result = {
        let mut medium = lock(shared);
        f(&mut medium, &mut wakes)
    };
    for waker in wakes {
        waker.wake();
    }
    result
}

/// The current `embassy-time` time in ticks.
pub(crate) fn now_ticks() -> u64 {
    Instant::now().as_ticks()
}

pub(crate) enum Kind {
    /// A point-to-point link between ports 0 (end "a") and 1 (end "b").
    Link,
    /// A learning Ethernet switch: MAC address to port index.
    Switch { table: HashMap<[u8; 6], usize> },
}

struct Queued {
    /// Tick at which the frame becomes receivable.
    due: u64,
    data: Vec<u8>,
}

pub(crate) struct Port {
    /// The MAC the port was created with (switch ports), for reporting.
    pub(crate) mac: Option<[u8; 6]>,
    queue: VecDeque<Queued>,
    /// A frame held back by the reorder fault until the next frame arrives.
    held: Option<Vec<u8>>,
    faults: Faults,
    latency: Duration,
    /// Largest extra delay per frame (see [`LinkConfig::jitter`]).
    jitter: Duration,
    /// Bits per second, 0 for unlimited (see [`LinkConfig::rate`]).
    rate: u64,
    /// Tick at which the last frame queued here has been fully serialized (bandwidth limit).
    busy_until: u64,
    /// Tick at which the last frame queued here becomes due, so jitter never reorders.
    last_due: u64,
    rng: SplitMix64,
    /// A separate stream for the jitter draws, so that the fault sequence of a seed is the
    /// same with or without jitter.
    jitter_rng: SplitMix64,
    rx_waker: Option<Waker>,
    tx_waker: Option<Waker>,
    link_waker: Option<Waker>,
    /// Counters of frames this port sent (sender-side drops).
    pub(crate) from_port: DirectionStats,
    /// Counters of frames headed to this port (queue-side faults and drops, deliveries).
    pub(crate) to_port: DirectionStats,
}

impl Port {
    /// When a frame of `len` bytes sent at `now` becomes receivable: after the frames before
    /// it have been serialized and its own serialization (bandwidth limit), the latency and a
    /// jitter draw, and never before the frame queued before it.
    fn due_of(&mut self, now: u64, len: usize) -> u64 {
        let mut start = now;
        if self.rate > 0 {
            start = start.max(self.busy_until);
            // Ticks to serialize `len` bytes, rounded up; 128-bit so no rate overflows.
            let bits = len as u128 * 8 * u128::from(embassy_time::TICK_HZ);
            let ticks = bits.div_ceil(u128::from(self.rate));
            start = start.saturating_add(u64::try_from(ticks).unwrap_or(u64::MAX));
            self.busy_until = start;
        }
        let mut due = start.saturating_add(self.latency.as_ticks());
        let jitter = self.jitter.as_ticks();
        if jitter > 0 {
            due = due.saturating_add(self.jitter_rng.next_u64() % (jitter + 1));
        }
        due = due.max(self.last_due);
        self.last_due = due;
        due
    }
}

/// Result of trying to take a frame from a port's queue.
pub(crate) enum Pop {
    Frame(Vec<u8>),
    /// The first queued frame becomes receivable at this tick.
    NotDue(u64),
    Empty,
}

pub(crate) struct Medium {
    kind: Kind,
    config: LinkConfig,
    up: bool,
    pub(crate) ports: Vec<Port>,
    link_type: LinkType,
    capture_enabled: bool,
    captured: VecDeque<CapturedFrame>,
    pcap: Option<PcapWriter<BufWriter<File>>>,
    pcap_error: Option<io::Error>,
}

fn register(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(existing) if existing.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

impl Medium {
    pub(crate) fn new(kind: Kind, config: LinkConfig, link_type: LinkType) -> Self {
        Self {
            kind,
            config,
            up: true,
            ports: Vec::new(),
            link_type,
            capture_enabled: false,
            captured: VecDeque::new(),
            pcap: None,
            pcap_error: None,
        }
    }

    pub(crate) fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Adds a port and returns its index.
    pub(crate) fn add_port(&mut self, mac: Option<[u8; 6]>) -> usize {
        let index = self.ports.len();
        self.ports.push(Port {
            mac,
            queue: VecDeque::new(),
            held: None,
            faults: self.config.faults(),
            latency: self.config.latency,
            jitter: self.config.jitter,
            rate: self.config.rate,
            busy_until: 0,
            last_due: 0,
            rng: SplitMix64::for_stream(self.config.seed, index),
            jitter_rng: SplitMix64::for_stream(self.config.seed ^ JITTER_STREAM, index),
            rx_waker: None,
            tx_waker: None,
            link_waker: None,
            from_port: DirectionStats::default(),
            to_port: DirectionStats::default(),
        });
        index
    }

    /// The port a switch has learned `mac` on.
    pub(crate) fn learned(&self, mac: [u8; 6]) -> Option<usize> {
        match &self.kind {
            Kind::Link => None,
            Kind::Switch { table } => table.get(&mac).copied(),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up
    }

    /// Frames queued for (or held back from) `port`, counting against its queue depth.
    fn occupancy(&self, port: usize) -> usize {
        let p = &self.ports[port];
        p.queue.len() + usize::from(p.held.is_some())
    }

    /// Whether a frame sent by `from` now would be accepted rather than dropped for lack of
    /// queue room. Always true for switch ports (a switch drops on congested egress instead of
    /// pushing back) and while the link is down (the frame will be dropped as link-down).
    pub(crate) fn has_room(&self, from: usize) -> bool {
        if !self.up {
            return true;
        }
        match self.kind {
            Kind::Link => self.occupancy(1 - from) < self.config.queue_depth,
            Kind::Switch { .. } => true,
        }
    }

    pub(crate) fn register_rx(&mut self, port: usize, waker: &Waker) {
        register(&mut self.ports[port].rx_waker, waker);
    }

    pub(crate) fn register_tx(&mut self, port: usize, waker: &Waker) {
        register(&mut self.ports[port].tx_waker, waker);
    }

    pub(crate) fn register_link(&mut self, port: usize, waker: &Waker) {
        register(&mut self.ports[port].link_waker, waker);
    }

    /// Collects every waker registered by `port`'s device.
    pub(crate) fn wake_port(&mut self, port: usize, wakes: &mut Vec<Waker>) {
        let p = &mut self.ports[port];
        wakes.extend(p.rx_waker.take());
        wakes.extend(p.tx_waker.take());
        wakes.extend(p.link_waker.take());
    }

    /// Sends `data` from `from` into the medium. Errors are drops counted in the sender's
    /// statistics; losses and queue overflows further on are silent to the sender, as on a
    /// wire.
    pub(crate) fn send(
        &mut self,
        from: usize,
        data: Vec<u8>,
        now: u64,
        wakes: &mut Vec<Waker>,
    ) -> Result<(), SendFrameError> {
        let stats = &mut self.ports[from].from_port;
        stats.sent += 1;
        stats.bytes_sent += data.len() as u64;
        if !self.up {
            stats.dropped_link_down += 1;
            return Err(SendFrameError::LinkDown);
        }
        if data.len() > self.config.mtu {
            stats.oversize += 1;
            return Err(SendFrameError::Oversize);
        }
        let targets: Vec<usize> = match &mut self.kind {
            Kind::Link => vec![1 - from],
            Kind::Switch { table } => {
                if data.len() < 14 {
                    self.ports[from].from_port.malformed += 1;
                    return Ok(());
                }
                let mut dst = [0u8; 6];
                dst.copy_from_slice(&data[0..6]);
                let mut src = [0u8; 6];
                src.copy_from_slice(&data[6..12]);
                if src[0] & 1 == 0 {
                    table.insert(src, from);
                }
                // Group (broadcast/multicast) destinations have the I/G bit set.
                let known = if dst[0] & 1 == 0 {
                    table.get(&dst).copied()
                } else {
                    None
                };
                match known {
                    // The destination is on the port the frame came from: filtered.
                    Some(to) if to == from => Vec::new(),
                    Some(to) => vec![to],
                    None => (0..self.ports.len()).filter(|&p| p != from).collect(),
                }
            }
        };
        if let Some((&last, rest)) = targets.split_last() {
            for &to in rest {
                self.enqueue(to, data.clone(), now, wakes);
            }
            self.enqueue(last, data, now, wakes);
        }
        Ok(())
    }

    /// Puts one frame into `to`'s queue, applying that queue's faults.
    fn enqueue(&mut self, to: usize, mut data: Vec<u8>, now: u64, wakes: &mut Vec<Waker>) {
        let depth = self.config.queue_depth;
        let p = &mut self.ports[to];
        // Always draw the same numbers per frame so a seed gives one fixed fault sequence.
        let r_loss = p.rng.next_f64();
        let r_corrupt = p.rng.next_f64();
        let r_duplicate = p.rng.next_f64();
        let r_reorder = p.rng.next_f64();
        let r_bit = p.rng.next_u64();
        let faults = p.faults;
        if r_loss < faults.loss {
            p.to_port.lost += 1;
            return;
        }
        if r_corrupt < faults.corrupt && !data.is_empty() {
            let bit = (r_bit % (data.len() as u64 * 8)) as usize;
            data[bit / 8] ^= 1 << (bit % 8);
            p.to_port.corrupted += 1;
        }
        let duplicate = r_duplicate < faults.duplicate;
        if duplicate {
            p.to_port.duplicated += 1;
        }
        let due = p.due_of(now, data.len());
        let push = |p: &mut Port, data: Vec<u8>| {
            if p.queue.len() + usize::from(p.held.is_some()) >= depth {
                p.to_port.dropped_queue_full += 1;
            } else {
                p.queue.push_back(Queued { due, data });
            }
        };
        if r_reorder < faults.reorder && p.held.is_none() {
            // Hold this frame back until the next one has been queued.
            if duplicate {
                push(p, data.clone());
            }
            if p.queue.len() >= depth {
                p.to_port.dropped_queue_full += 1;
            } else {
                p.to_port.reordered += 1;
                p.held = Some(data);
            }
        } else {
            if duplicate {
                push(p, data.clone());
            }
            push(p, data);
            if let Some(held) = p.held.take() {
                push(p, held);
            }
        }
        wakes.extend(p.rx_waker.take());
    }

    /// Takes the first frame of `port`'s queue if it is due at `now`.
    pub(crate) fn pop(&mut self, port: usize, now: u64, wakes: &mut Vec<Waker>) -> Pop {
        let p = &mut self.ports[port];
        let Some(front) = p.queue.front() else {
            return Pop::Empty;
        };
        if front.due > now {
            return Pop::NotDue(front.due);
        }
        let Some(Queued { data, .. }) = p.queue.pop_front() else {
            return Pop::Empty;
        };
        p.to_port.delivered += 1;
        p.to_port.bytes_delivered += data.len() as u64;
        let direction = match self.kind {
            Kind::Link => {
                // Room was freed in this queue: the other end may transmit again.
                wakes.extend(self.ports[1 - port].tx_waker.take());
                if port == 1 {
                    Direction::AToB
                } else {
                    Direction::BToA
                }
            }
            Kind::Switch { .. } => Direction::ToPort(port),
        };
        self.record(direction, now, &data);
        Pop::Frame(data)
    }

    fn record(&mut self, direction: Direction, now: u64, data: &[u8]) {
        let time = Instant::from_ticks(now);
        if self.capture_enabled {
            if self.captured.len() >= CAPTURE_LIMIT {
                self.captured.pop_front();
            }
            self.captured.push_back(CapturedFrame {
                direction,
                time,
                data: data.to_vec(),
            });
        }
        if let Some(writer) = &mut self.pcap {
            let result = writer.write_frame(time, data).and_then(|()| writer.flush());
            if let Err(e) = result {
                self.pcap = None;
                self.pcap_error = Some(e);
            }
        }
    }

    pub(crate) fn set_up(&mut self, up: bool, wakes: &mut Vec<Waker>) {
        if self.up == up {
            return;
        }
        self.up = up;
        for p in &mut self.ports {
            if !up {
                let discarded = p.queue.len() + usize::from(p.held.is_some());
                p.to_port.dropped_link_down += discarded as u64;
                p.queue.clear();
                p.held = None;
                p.busy_until = 0;
                p.last_due = 0;
            }
            wakes.extend(p.link_waker.take());
            wakes.extend(p.tx_waker.take());
            wakes.extend(p.rx_waker.take());
        }
    }

    pub(crate) fn set_faults(&mut self, port: Option<usize>, faults: Faults) {
        for (i, p) in self.ports.iter_mut().enumerate() {
            if port.is_none_or(|only| only == i) {
                p.faults = faults;
            }
        }
        if port.is_none() {
            self.config.loss = faults.loss;
            self.config.duplicate = faults.duplicate;
            self.config.reorder = faults.reorder;
            self.config.corrupt = faults.corrupt;
        }
    }

    /// Changes one knob of every port's faults (and of the configuration), keeping the rest,
    /// which may differ per port.
    pub(crate) fn update_faults(
        &mut self,
        change: impl Fn(&mut Faults),
    ) -> Result<(), ConfigError> {
        let mut config = self.config.faults();
        change(&mut config);
        config.validate()?;
        let mut per_port = Vec::with_capacity(self.ports.len());
        for p in &self.ports {
            let mut faults = p.faults;
            change(&mut faults);
            faults.validate()?;
            per_port.push(faults);
        }
        for (p, faults) in self.ports.iter_mut().zip(per_port) {
            p.faults = faults;
        }
        self.config.loss = config.loss;
        self.config.duplicate = config.duplicate;
        self.config.reorder = config.reorder;
        self.config.corrupt = config.corrupt;
        Ok(())
    }

    pub(crate) fn set_latency(&mut self, port: Option<usize>, latency: Duration) {
        for (i, p) in self.ports.iter_mut().enumerate() {
            if port.is_none_or(|only| only == i) {
                p.latency = latency;
            }
        }
        if port.is_none() {
            self.config.latency = latency;
        }
    }

    pub(crate) fn set_capture(&mut self, enabled: bool) {
        self.capture_enabled = enabled;
    }

    pub(crate) fn captured(&self) -> Vec<CapturedFrame> {
        self.captured.iter().cloned().collect()
    }

    pub(crate) fn take_captured(&mut self) -> Vec<CapturedFrame> {
        self.captured.drain(..).collect()
    }

    /// Starts recording to a new file, replacing any recording in progress (whose pending
    /// write error, if any, is discarded).
    pub(crate) fn start_pcap(&mut self, path: &Path) -> io::Result<()> {
        let mut writer = PcapWriter::new(BufWriter::new(File::create(path)?), self.link_type)?;
        writer.flush()?;
        if let Some(mut old) = self.pcap.replace(writer) {
            // Best effort: the old file is being abandoned in favour of the new one.
            let _ = old.flush();
        }
        self.pcap_error = None;
        Ok(())
    }

    pub(crate) fn stop_pcap(&mut self) -> io::Result<()> {
        let flushed = match self.pcap.take() {
            Some(mut writer) => writer.flush(),
            None => Ok(()),
        };
        match self.pcap_error.take() {
            Some(e) => Err(e),
            None => flushed,
        }
    }
}

/// Validates a configuration, for constructors.
pub(crate) fn validate(config: &LinkConfig) -> Result<(), ConfigError> {
    if config.mtu == 0 {
        return Err(ConfigError::ZeroMtu);
    }
    if config.queue_depth == 0 {
        return Err(ConfigError::ZeroQueueDepth);
    }
    config.faults().validate()
}
