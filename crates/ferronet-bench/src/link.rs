//! The benchmark's in-memory Ethernet link: two [`BenchDevice`]s joined by two fixed-size
//! frame queues.
//!
//! Each direction is a ring of [`QUEUE_DEPTH`] preallocated `[u8; MTU]` slots (allocated once
//! when the link is made; nothing is allocated per frame). A stack writes an outgoing frame
//! straight into the peer's ring slot and reads an incoming one straight out of its own ring
//! slot, so the link adds no copy of its own. Wakers follow `embassy-sync`'s
//! `WakerRegistration` rule: one per role, taken when woken.
//!
//! Driver semantics (the same as `ferronet-sim`'s links, without faults or latency):
//!
//! - [`Driver::receive`] hands out a token pair while a frame is queued for this end. The
//!   transmit half of the pair always exists; if the peer's ring is full when it is consumed,
//!   the frame is dropped and counted in [`LinkStats::dropped`] (the workloads assert that
//!   this never happens, so no measurement includes a retransmission).
//! - [`Driver::transmit`] hands out a token only while the peer's ring has room, otherwise it
//!   registers the waker, which is woken when the peer takes a frame.
//! - The link is always up; checksums are computed and checked by the stacks (no offload).

use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Context, Waker};

use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};

/// Largest frame, including the 14-byte Ethernet header (1500-byte IP MTU).
pub const MTU: usize = 1514;
/// Frames each direction's ring holds.
pub const QUEUE_DEPTH: usize = 64;
/// MAC address of end "a".
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// MAC address of end "b".
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Counters of both directions of a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames delivered (taken by the receiver), both directions.
    pub frames: u64,
    /// Bytes of the delivered frames.
    pub bytes: u64,
    /// Frames dropped because the receiver's ring was full (a transmit token from
    /// `receive` consumed while the ring was full).
    pub dropped: u64,
}

/// One waker slot with `WakerRegistration` semantics.
#[derive(Default)]
struct WakerSlot(Option<Waker>);

impl WakerSlot {
    fn register(&mut self, waker: &Waker) {
        match &self.0 {
            Some(w) if w.will_wake(waker) => {}
            _ => self.0 = Some(waker.clone()),
        }
    }

    fn wake(&mut self) {
        if let Some(w) = self.0.take() {
            w.wake();
        }
    }
}

/// The frames going one way.
struct Ring {
    slots: Box<[[u8; MTU]]>,
    lens: [usize; QUEUE_DEPTH],
    head: usize,
    len: usize,
    /// The receiving end's runner, waiting for a frame.
    rx_waker: WakerSlot,
    /// The sending end's runner, waiting for room.
    tx_waker: WakerSlot,
    delivered: u64,
    delivered_bytes: u64,
    dropped: u64,
}

impl Ring {
    fn new() -> Self {
        Self {
            slots: vec![[0u8; MTU]; QUEUE_DEPTH].into_boxed_slice(),
            lens: [0; QUEUE_DEPTH],
            head: 0,
            len: 0,
            rx_waker: WakerSlot::default(),
            tx_waker: WakerSlot::default(),
            delivered: 0,
            delivered_bytes: 0,
            dropped: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.len == QUEUE_DEPTH
    }
}

/// `rings[i]` holds the frames headed to end `i`.
struct Link {
    rings: [RefCell<Ring>; 2],
}

/// Makes a link and returns its two ends ("a" with [`MAC_A`], "b" with [`MAC_B`]) and a
/// handle to read its counters.
pub fn pair() -> (BenchDevice, BenchDevice, LinkHandle) {
    let link = Rc::new(Link {
        rings: [RefCell::new(Ring::new()), RefCell::new(Ring::new())],
    });
    let a = BenchDevice {
        link: link.clone(),
        end: 0,
        mac: MAC_A,
    };
    let b = BenchDevice {
        link: link.clone(),
        end: 1,
        mac: MAC_B,
    };
    (a, b, LinkHandle { link })
}

/// Reads a link's counters.
pub struct LinkHandle {
    link: Rc<Link>,
}

impl LinkHandle {
    /// The counters of both directions added up.
    pub fn stats(&self) -> LinkStats {
        let mut s = LinkStats::default();
        for ring in &self.link.rings {
            let r = ring.borrow();
            s.frames += r.delivered;
            s.bytes += r.delivered_bytes;
            s.dropped += r.dropped;
        }
        s
    }
}

/// One end of a link; an `embassy_net_driver::Driver` for either stack.
pub struct BenchDevice {
    link: Rc<Link>,
    end: usize,
    mac: [u8; 6],
}

impl BenchDevice {
    fn rx_ring(&self) -> &RefCell<Ring> {
        &self.link.rings[self.end]
    }

    fn tx_ring(&self) -> &RefCell<Ring> {
        &self.link.rings[1 - self.end]
    }
}

/// Receive token: the frame at the head of this end's ring, taken off when consumed.
pub struct BenchRxToken<'a> {
    ring: &'a RefCell<Ring>,
}

impl RxToken for BenchRxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut guard = self.ring.borrow_mut();
        let ring = &mut *guard;
        let head = ring.head;
        let len = ring.lens[head];
        let result = f(&mut ring.slots[head][..len]);
        ring.head = (head + 1) % QUEUE_DEPTH;
        ring.len -= 1;
        ring.delivered += 1;
        ring.delivered_bytes += len as u64;
        ring.tx_waker.wake();
        result
    }
}

/// Transmit token: writes the frame into the next free slot of the peer's ring.
pub struct BenchTxToken<'a> {
    ring: &'a RefCell<Ring>,
}

impl TxToken for BenchTxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        assert!(
            len <= MTU,
            "bench link: frame of {len} bytes exceeds the MTU ({MTU})"
        );
        let mut guard = self.ring.borrow_mut();
        let ring = &mut *guard;
        if ring.is_full() {
            ring.dropped += 1;
            drop(guard);
            let mut scratch = [0u8; MTU];
            return f(&mut scratch[..len]);
        }
        let tail = (ring.head + ring.len) % QUEUE_DEPTH;
        let result = f(&mut ring.slots[tail][..len]);
        ring.lens[tail] = len;
        ring.len += 1;
        ring.rx_waker.wake();
        result
    }
}

impl Driver for BenchDevice {
    type RxToken<'a>
        = BenchRxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = BenchTxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        {
            let mut ring = self.rx_ring().borrow_mut();
            if ring.len == 0 {
                ring.rx_waker.register(cx.waker());
                return None;
            }
        }
        Some((
            BenchRxToken {
                ring: self.rx_ring(),
            },
            BenchTxToken {
                ring: self.tx_ring(),
            },
        ))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
        {
            let mut ring = self.tx_ring().borrow_mut();
            if ring.is_full() {
                ring.tx_waker.register(cx.waker());
                return None;
            }
        }
        Some(BenchTxToken {
            ring: self.tx_ring(),
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
