//! Write a network driver as a task that moves frames through two bounded queues, instead of
//! implementing [`embassy_net_driver::Driver`] by hand.
//!
//! [`new`] splits a [`State`] (all the memory: `N_RX` receive and `N_TX` transmit frame
//! buffers of `MTU` bytes each) into two ends:
//!
//! - a [`Device`], which implements [`Driver`](embassy_net_driver::Driver) and goes to the
//!   network stack (`ferronet::new`, or `embassy_net::new`);
//! - a [`Runner`], the driver's end, used by the *driver task* you write: it copies each frame
//!   the hardware received into the RX queue ([`Runner::rx_buf`], then [`Runner::rx_done`])
//!   and hands each frame the stack queued to the hardware ([`Runner::tx_buf`], then
//!   [`Runner::tx_done`]); it also reports the link state and the hardware address
//!   ([`Runner::set_link_state`], [`Runner::set_hardware_address`]).
//!
//! The runner can be [`split`](Runner::split) into a [`StateRunner`] (link state and address,
//! `Copy`), an [`RxRunner`] and a [`TxRunner`], to serve each direction from its own task or
//! interrupt-driven future. Frames are never copied by the channel: the driver writes and
//! reads the queue slots directly, and so does the stack.
//!
//! The API follows `embassy-net-driver-channel` 0.4, so drivers written for it port by
//! changing the crate name. The differences are in the behaviour: see [Deadlocks](#deadlocks)
//! and [Frame sizes](#frame-sizes).
//!
//! The crate is `no_std`, never allocates and has no `unsafe` code. It is meant for one
//! executor on one core: the ends are `!Send` and share their state through `RefCell`s
//! (behind `embassy-sync`'s `NoopRawMutex`), so no critical section is ever taken.
//!
//! # Writing a driver
//!
//! The driver task for a pretend chip. The part that runs it (with a chip that has one frame
//! to deliver, and the stack's end played by hand) is hidden; in firmware the [`Device`] goes
//! to `ferronet::new` and both the stack's runner and the driver task are spawned.
//!
//! ```
//! use core::future::poll_fn;
//! use core::task::{Context, Poll};
//!
//! use ferronet_driver_channel as ch;
//! use ch::driver::{HardwareAddress, LinkState};
//! # use ch::driver::{Driver, RxToken as _, TxToken as _};
//! # use std::{cell::RefCell, collections::VecDeque, rc::Rc};
//!
//! /// Largest Ethernet frame without its FCS: 1500 bytes of IP and the 14-byte header.
//! const MTU: usize = 1514;
//!
//! /// What the driver task needs from the hardware. A real driver talks to registers, DMA
//! /// descriptors or an SPI bus here.
//! trait Chip {
//!     /// Ready when a received frame waits in the chip; otherwise wakes `cx` when one comes.
//!     fn poll_rx_pending(&mut self, cx: &mut Context<'_>) -> Poll<()>;
//!     /// Copies the oldest received frame into `buf` and returns its length.
//!     async fn read_frame(&mut self, buf: &mut [u8]) -> usize;
//!     /// Sends one frame.
//!     async fn write_frame(&mut self, frame: &[u8]);
//! }
//!
//! /// The driver task. Spawn it next to the stack's runner; it never returns.
//! async fn driver_task(mut chip: impl Chip, runner: ch::Runner<'_, MTU>) -> ! {
//!     let (state, mut rx, mut tx) = runner.split();
//!     // A real driver does this when the PHY reports the link (and `Down` when it drops).
//!     state.set_link_state(LinkState::Up);
//!     loop {
//!         // Sleep until the chip has a frame for the stack or the stack one for the chip.
//!         let chip_has_frame = poll_fn(|cx| {
//!             if chip.poll_rx_pending(cx).is_ready() {
//!                 Poll::Ready(true)
//!             } else if tx.poll_tx_buf(cx).is_ready() {
//!                 Poll::Ready(false)
//!             } else {
//!                 Poll::Pending
//!             }
//!         })
//!         .await;
//!         if chip_has_frame {
//!             // Waiting here for room in the RX queue is safe even while the TX queue is
//!             // full: the stack empties the RX queue whatever the state of TX.
//!             let buf = rx.rx_buf().await;
//!             let len = chip.read_frame(buf).await;
//!             rx.rx_done(len);
//!         } else if let Some(frame) = tx.try_tx_buf() {
//!             chip.write_frame(frame).await;
//!             tx.tx_done();
//!         }
//!     }
//! }
//!
//! // In firmware the state is a `static` (for example in a `StaticCell`).
//! let mut state = ch::State::<MTU, 4, 4>::new();
//! let mac = [0x02, 0, 0, 0, 0, 0x01];
//! let (runner, mut device) = ch::new(&mut state, HardwareAddress::Ethernet(mac));
//! // `device` goes to `ferronet::new(device, config, resources, seed)`, and the firmware
//! // spawns the stack's runner and `driver_task(chip, runner)`.
//! #
//! # /// A pretend chip: frames to deliver, and a record of the frames sent.
//! # struct PretendChip {
//! #     inbox: VecDeque<Vec<u8>>,
//! #     sent: Rc<RefCell<Vec<Vec<u8>>>>,
//! # }
//! # impl Chip for PretendChip {
//! #     fn poll_rx_pending(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
//! #         // No frame ever arrives later, so there is nothing to wake.
//! #         if self.inbox.is_empty() { Poll::Pending } else { Poll::Ready(()) }
//! #     }
//! #     async fn read_frame(&mut self, buf: &mut [u8]) -> usize {
//! #         let frame = self.inbox.pop_front().unwrap_or_default();
//! #         buf[..frame.len()].copy_from_slice(&frame);
//! #         frame.len()
//! #     }
//! #     async fn write_frame(&mut self, frame: &[u8]) {
//! #         self.sent.borrow_mut().push(frame.to_vec());
//! #     }
//! # }
//! # let sent = Rc::new(RefCell::new(Vec::new()));
//! # let chip = PretendChip { inbox: VecDeque::from([vec![0xab; 60]]), sent: sent.clone() };
//! # let ex = ferronet_sim::executor::Executor::new();
//! # ex.spawn(async move { driver_task(chip, runner).await; });
//! # // The stack's end, by hand: take the received frame, then send one.
//! # let got = ex.run_until(poll_fn(|cx| match device.receive(cx) {
//! #     Some((rx, _reply)) => Poll::Ready(rx.consume(|frame| frame.to_vec())),
//! #     None => Poll::Pending,
//! # }));
//! # assert_eq!(got, [0xab; 60]);
//! # let mut cx = Context::from_waker(core::task::Waker::noop());
//! # assert!(device.link_state(&mut cx) == LinkState::Up);
//! # ex.run_until(poll_fn(|cx| match device.transmit(cx) {
//! #     Some(tx) => Poll::Ready(tx.consume(42, |buf| buf.fill(0xcd))),
//! #     None => Poll::Pending,
//! # }));
//! # ex.run_for(embassy_time::Duration::from_ticks(0));
//! # assert_eq!(*sent.borrow(), [vec![0xcd; 42]]);
//! ```
//!
//! # Deadlocks
//!
//! In `embassy-net-driver-channel`, the device hands the stack a received frame only
//! together with a reserved transmit slot (for a possible reply), so while the TX queue is
//! full the stack stops taking frames from the RX queue. A driver task that waits for room
//! in the RX queue before it serves the TX queue (the obvious way to write one) then waits
//! for the stack, which waits for the driver: both stop for good once both queues fill under
//! load, and driver authors must order their waits with care to avoid it.
//!
//! Here, **the receive path never depends on the transmit path**:
//!
//! - [`Device::receive`](embassy_net_driver::Driver::receive) needs only a frame in the RX
//!   queue. The transmit token it returns alongside reserves nothing: when the stack uses it
//!   for a reply, the reply takes a free TX slot if there is one, and is discarded (counted
//!   in [`Stats::tx_reply_dropped`]) if the TX queue is full, as a network card with a full
//!   transmit ring would. The protocols above recover as from any lost frame (TCP
//!   retransmits, ARP and ICMP are retried).
//! - The [`Device`] never blocks or waits for anything: `receive`, `transmit` and
//!   `link_state` answer at once, and register the stack's waker when they have nothing to
//!   give.
//!
//! So there are only two waits, and neither can wait on the other: the driver may wait for
//! RX room, which the stack frees without needing anything from the driver; the stack may
//! wait for TX room (to send, never to receive), which the driver frees. Whatever order the
//! driver task waits in, even the single loop above, it always gets on: a full RX queue is
//! drained as soon as the stack runs, and then the driver gets to the TX queue. (A driver
//! that never serves the TX queue stops the stack from sending, but never from receiving.)
//!
//! The tests show it: with both queues full from the start and a driver that serves TX only
//! after it got RX room; and with TCP in both directions between two stacks over a one-frame
//! RX queue and a four-frame TX queue, where the pretend driver blocks on a full RX queue,
//! with the same device's TX queue full, while it holds a frame from the other device.
//!
//! # Frame sizes
//!
//! Each slot holds at most `MTU` bytes; the stack is told so through
//! [`Capabilities::max_transmission_unit`](embassy_net_driver::Capabilities). Frames that
//! cannot be valid are dropped, never truncated, and nothing panics:
//!
//! - [`rx_done(len)`](RxRunner::rx_done) with `len == 0` or `len > MTU` (the slot cannot
//!   hold such a frame, so its bytes are not in the buffer) drops the frame and counts it in
//!   [`Stats::rx_empty`] or [`Stats::rx_oversized`]; the slot stays free for the next frame.
//!   `rx_done` when the RX queue has no free slot (without a successful `rx_buf` before it)
//!   drops the frame too ([`Stats::rx_no_slot`]).
//! - A transmit token consumed with `len == 0` or `len > MTU` sends nothing and counts it in
//!   [`Stats::tx_empty`] or [`Stats::tx_oversized`]. Its closure still runs (its result is
//!   the token's), on an empty buffer or on a scratch buffer of `MTU` bytes respectively.
//!   Stacks never do this: smoltcp keeps its frames within the capabilities.
//! - [`tx_done`](TxRunner::tx_done) with no frame queued does nothing.
//!
//! # Memory
//!
//! A [`State`] holds `N_RX + N_TX` queue slots of `MTU` bytes (each with a length and a
//! `RefCell` flag), one more buffer of `MTU` bytes (the scratch buffer for discarded
//! transmissions) and a few words of shared state. `N_RX`, `N_TX` and `MTU` must all be at
//! least 1, or [`State::new`] does not compile:
//!
//! ```compile_fail
//! let state = ferronet_driver_channel::State::<1514, 0, 4>::new();
//! ```

#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use core::cell::{RefCell, RefMut};
use core::future::poll_fn;
use core::task::{Context, Poll};

/// The `embassy-net-driver` crate, whose [`Driver`](embassy_net_driver::Driver) trait the
/// [`Device`] implements.
pub use embassy_net_driver as driver;
use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::waitqueue::WakerRegistration;

/// One queue slot: a frame buffer and the length of the frame in it.
struct PacketBuf<const MTU: usize> {
    len: usize,
    buf: [u8; MTU],
}

impl<const MTU: usize> PacketBuf<MTU> {
    const fn new() -> Self {
        Self {
            len: 0,
            buf: [0; MTU],
        }
    }
}

/// A slot as shared by the two ends. Which end may borrow it is decided by the ring indices
/// in [`Ring`]: the producer only the slot after the last queued frame (when the queue is
/// not full), the consumer only the oldest queued frame (when it is not empty). The two are
/// never the same slot, so no borrow ever fails.
type Slot<const MTU: usize> = RefCell<PacketBuf<MTU>>;

/// The state shared by the ends, behind one lock.
type SharedCell = Mutex<NoopRawMutex, RefCell<Shared>>;

/// Bookkeeping of one queue: which slots hold frames, and who waits.
struct Ring {
    /// Index of the oldest queued frame. Always `< cap`.
    head: usize,
    /// Number of queued frames. Always `<= cap`.
    len: usize,
    /// Number of slots; at least 1.
    cap: usize,
    /// The producer, waiting for a free slot.
    space: WakerRegistration,
    /// The consumer, waiting for a frame.
    frames: WakerRegistration,
}

impl Ring {
    const fn new(cap: usize) -> Self {
        Self {
            head: 0,
            len: 0,
            cap,
            space: WakerRegistration::new(),
            frames: WakerRegistration::new(),
        }
    }

    fn is_full(&self) -> bool {
        self.len >= self.cap
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot the producer fills next; meaningful while the ring is not full.
    fn write_index(&self) -> usize {
        (self.head + self.len) % self.cap
    }

    /// The producer filled the slot at [`write_index`](Self::write_index).
    fn push(&mut self) {
        if !self.is_full() {
            self.len += 1;
            self.frames.wake();
        }
    }

    /// The consumer is done with the slot at `head`.
    fn pop(&mut self) {
        if !self.is_empty() {
            self.head = (self.head + 1) % self.cap;
            self.len -= 1;
            self.space.wake();
        }
    }
}

struct Shared {
    link_state: LinkState,
    hardware_address: HardwareAddress,
    /// The stack, waiting for a change of link state or hardware address.
    link_waker: WakerRegistration,
    /// Frames from the driver to the stack.
    rx: Ring,
    /// Frames from the stack to the driver.
    tx: Ring,
    stats: Stats,
}

impl Shared {
    const fn new(n_rx: usize, n_tx: usize, hardware_address: HardwareAddress) -> Self {
        Self {
            link_state: LinkState::Down,
            hardware_address,
            link_waker: WakerRegistration::new(),
            rx: Ring::new(n_rx),
            tx: Ring::new(n_tx),
            stats: Stats::new(),
        }
    }
}

/// Runs `f` on the shared state.
fn with<R>(shared: &SharedCell, f: impl FnOnce(&mut Shared) -> R) -> R {
    shared.lock(|cell| f(&mut cell.borrow_mut()))
}

/// Adds one to a counter, wrapping.
fn bump(counter: &mut u32) {
    *counter = counter.wrapping_add(1);
}

/// Counters of frames through a channel, and of frames dropped (see
/// [Frame sizes](crate#frame-sizes)). All wrap around at `u32::MAX`. Read them with
/// [`StateRunner::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Frames the driver queued for the stack ([`RxRunner::rx_done`] with a valid length).
    pub rx_frames: u32,
    /// Frames the stack queued for the driver.
    pub tx_frames: u32,
    /// [`RxRunner::rx_done`] calls with a length of 0; nothing was queued.
    pub rx_empty: u32,
    /// [`RxRunner::rx_done`] calls with a length over `MTU`; nothing was queued.
    pub rx_oversized: u32,
    /// [`RxRunner::rx_done`] calls while the RX queue had no free slot; nothing was queued.
    pub rx_no_slot: u32,
    /// Transmit tokens consumed with a length of 0; nothing was queued.
    pub tx_empty: u32,
    /// Transmit tokens consumed with a length over `MTU`; nothing was queued.
    pub tx_oversized: u32,
    /// Replies (frames sent with the transmit token that comes with a received frame)
    /// discarded because the TX queue was full. See [Deadlocks](crate#deadlocks).
    pub tx_reply_dropped: u32,
}

impl Stats {
    const fn new() -> Self {
        Self {
            rx_frames: 0,
            tx_frames: 0,
            rx_empty: 0,
            rx_oversized: 0,
            rx_no_slot: 0,
            tx_empty: 0,
            tx_oversized: 0,
            tx_reply_dropped: 0,
        }
    }
}

/// The memory of one channel: `N_RX` receive and `N_TX` transmit buffers of `MTU` bytes,
/// and the state the two ends share.
///
/// `MTU` is the largest frame, headers included: 1514 for Ethernet with an IP MTU of 1500
/// (the FCS is not part of the frame). Give [`new`] a `&'d mut` to it, typically from a
/// `static`. A state may serve one channel after another: [`new`] starts it afresh (empty
/// queues, link down, zeroed [`Stats`]).
pub struct State<const MTU: usize, const N_RX: usize, const N_TX: usize> {
    rx: [Slot<MTU>; N_RX],
    tx: [Slot<MTU>; N_TX],
    /// Where discarded transmissions are written: used by the [`Device`] only.
    scratch: PacketBuf<MTU>,
    shared: SharedCell,
}

impl<const MTU: usize, const N_RX: usize, const N_TX: usize> State<MTU, N_RX, N_TX> {
    /// A new state, usable in a `static` initialiser.
    ///
    /// Fails to compile unless `MTU`, `N_RX` and `N_TX` are all at least 1.
    pub const fn new() -> Self {
        const {
            assert!(MTU > 0, "ferronet-driver-channel: MTU must be at least 1");
            assert!(N_RX > 0, "ferronet-driver-channel: N_RX must be at least 1");
            assert!(N_TX > 0, "ferronet-driver-channel: N_TX must be at least 1");
        }
        Self {
            rx: [const { RefCell::new(PacketBuf::new()) }; N_RX],
            tx: [const { RefCell::new(PacketBuf::new()) }; N_TX],
            scratch: PacketBuf::new(),
            shared: Mutex::new(RefCell::new(Shared::new(N_RX, N_TX, HardwareAddress::Ip))),
        }
    }
}

impl<const MTU: usize, const N_RX: usize, const N_TX: usize> Default for State<MTU, N_RX, N_TX> {
    fn default() -> Self {
        Self::new()
    }
}

/// Creates a channel in `state`: the [`Runner`] for the driver task, the [`Device`] for the
/// network stack.
///
/// Both queues start empty, the link [`Down`](LinkState::Down) (until the driver calls
/// [`set_link_state`](Runner::set_link_state)), and the hardware address is
/// `hardware_address`, which also tells the stack the medium (Ethernet, IEEE 802.15.4 or
/// IP).
pub fn new<'d, const MTU: usize, const N_RX: usize, const N_TX: usize>(
    state: &'d mut State<MTU, N_RX, N_TX>,
    hardware_address: HardwareAddress,
) -> (Runner<'d, MTU>, Device<'d, MTU>) {
    let State {
        rx,
        tx,
        scratch,
        shared,
    } = state;
    // Start afresh: the state may have served an earlier channel, whose ends are gone (they
    // borrowed it).
    for slot in rx.iter_mut().chain(tx.iter_mut()) {
        slot.get_mut().len = 0;
    }
    *shared.get_mut().get_mut() = Shared::new(N_RX, N_TX, hardware_address);

    let rx: &'d [Slot<MTU>] = rx;
    let tx: &'d [Slot<MTU>] = tx;
    let shared: &'d SharedCell = shared;
    (
        Runner {
            state: StateRunner { shared },
            rx: RxRunner {
                slots: rx,
                shared,
                held: None,
            },
            tx: TxRunner {
                slots: tx,
                shared,
                held: None,
            },
        },
        Device {
            rx,
            tx,
            scratch,
            shared,
        },
    )
}

/// The driver's end of a channel: RX and TX queues, link state and hardware address.
///
/// Use it directly from one driver task, or [`split`](Self::split) it.
pub struct Runner<'d, const MTU: usize> {
    state: StateRunner<'d>,
    rx: RxRunner<'d, MTU>,
    tx: TxRunner<'d, MTU>,
}

/// Sets the link state and hardware address that the [`Device`] reports. `Copy`: hand it to
/// as many tasks as need it.
#[derive(Clone, Copy)]
pub struct StateRunner<'d> {
    shared: &'d SharedCell,
}

/// The driver's end of the RX queue: frames from the hardware to the stack.
pub struct RxRunner<'d, const MTU: usize> {
    slots: &'d [Slot<MTU>],
    shared: &'d SharedCell,
    /// The free slot being filled, once the driver asked for it.
    held: Option<RefMut<'d, PacketBuf<MTU>>>,
}

/// The driver's end of the TX queue: frames from the stack to the hardware.
pub struct TxRunner<'d, const MTU: usize> {
    slots: &'d [Slot<MTU>],
    shared: &'d SharedCell,
    /// The oldest queued frame, once the driver asked for it.
    held: Option<RefMut<'d, PacketBuf<MTU>>>,
}

impl<'d, const MTU: usize> Runner<'d, MTU> {
    /// Splits the runner into its state, RX and TX parts, for use from separate tasks.
    pub fn split(self) -> (StateRunner<'d>, RxRunner<'d, MTU>, TxRunner<'d, MTU>) {
        (self.state, self.rx, self.tx)
    }

    /// Splits the runner into its parts for a while, borrowing it. A frame buffer obtained
    /// from the runner but not yet done moves to the borrowed part; after the parts are
    /// dropped, the runner goes on where they stopped (a frame half written with the RX part
    /// is still there for the runner's [`rx_buf`](Self::rx_buf) and [`rx_done`](Self::rx_done)).
    pub fn borrow_split(&mut self) -> (StateRunner<'_>, RxRunner<'_, MTU>, TxRunner<'_, MTU>) {
        (
            self.state,
            RxRunner {
                slots: self.rx.slots,
                shared: self.rx.shared,
                held: self.rx.held.take(),
            },
            TxRunner {
                slots: self.tx.slots,
                shared: self.tx.shared,
                held: self.tx.held.take(),
            },
        )
    }

    /// A [`StateRunner`] for this channel.
    pub fn state_runner(&self) -> StateRunner<'d> {
        self.state
    }

    /// Sets the link state the [`Device`] reports, waking the stack if it changed.
    pub fn set_link_state(&mut self, state: LinkState) {
        self.state.set_link_state(state);
    }

    /// Sets the hardware address the [`Device`] reports, waking the stack if it changed.
    pub fn set_hardware_address(&mut self, address: HardwareAddress) {
        self.state.set_hardware_address(address);
    }

    /// See [`RxRunner::rx_buf`].
    pub async fn rx_buf(&mut self) -> &mut [u8] {
        self.rx.rx_buf().await
    }

    /// See [`RxRunner::try_rx_buf`].
    pub fn try_rx_buf(&mut self) -> Option<&mut [u8]> {
        self.rx.try_rx_buf()
    }

    /// See [`RxRunner::poll_rx_buf`].
    pub fn poll_rx_buf(&mut self, cx: &mut Context<'_>) -> Poll<&mut [u8]> {
        self.rx.poll_rx_buf(cx)
    }

    /// See [`RxRunner::rx_done`].
    pub fn rx_done(&mut self, len: usize) {
        self.rx.rx_done(len);
    }

    /// See [`TxRunner::tx_buf`].
    pub async fn tx_buf(&mut self) -> &mut [u8] {
        self.tx.tx_buf().await
    }

    /// See [`TxRunner::try_tx_buf`].
    pub fn try_tx_buf(&mut self) -> Option<&mut [u8]> {
        self.tx.try_tx_buf()
    }

    /// See [`TxRunner::poll_tx_buf`].
    pub fn poll_tx_buf(&mut self, cx: &mut Context<'_>) -> Poll<&mut [u8]> {
        self.tx.poll_tx_buf(cx)
    }

    /// See [`TxRunner::tx_done`].
    pub fn tx_done(&mut self) {
        self.tx.tx_done();
    }
}

impl<'d> StateRunner<'d> {
    /// Sets the link state the [`Device`] reports, waking the stack if it changed.
    pub fn set_link_state(&self, state: LinkState) {
        with(self.shared, |s| {
            if s.link_state != state {
                s.link_state = state;
                s.link_waker.wake();
            }
        });
    }

    /// Sets the hardware address the [`Device`] reports, waking the stack if it changed.
    ///
    /// The address should keep the medium given to [`new`]; ferronet ignores a change of
    /// medium.
    pub fn set_hardware_address(&self, address: HardwareAddress) {
        with(self.shared, |s| {
            if s.hardware_address != address {
                s.hardware_address = address;
                s.link_waker.wake();
            }
        });
    }

    /// The frame counters of the channel.
    pub fn stats(&self) -> Stats {
        with(self.shared, |s| s.stats)
    }

    /// Frames in the RX queue, waiting for the stack (from 0 to `N_RX`).
    pub fn rx_queue_len(&self) -> usize {
        with(self.shared, |s| s.rx.len)
    }

    /// Frames in the TX queue, waiting for the driver (from 0 to `N_TX`).
    pub fn tx_queue_len(&self) -> usize {
        with(self.shared, |s| s.tx.len)
    }
}

impl<'d, const MTU: usize> RxRunner<'d, MTU> {
    /// Waits for a free slot in the RX queue and returns its buffer, `MTU` bytes long, to copy
    /// a received frame into; then call [`rx_done`](Self::rx_done) with the frame's length.
    ///
    /// Until then, the same slot is returned again (with what was written to it). Dropping
    /// the future before it completes reserves nothing. Waiting here never blocks the TX path
    /// nor the stack; see [Deadlocks](crate#deadlocks).
    pub async fn rx_buf(&mut self) -> &mut [u8] {
        poll_fn(|cx| self.poll_space(cx)).await;
        self.slot()
    }

    /// Returns the buffer of a free slot in the RX queue, as [`rx_buf`](Self::rx_buf) does,
    /// or `None` if the queue is full.
    pub fn try_rx_buf(&mut self) -> Option<&mut [u8]> {
        let free = self.held.is_some() || with(self.shared, |s| !s.rx.is_full());
        if free { Some(self.slot()) } else { None }
    }

    /// Returns the buffer of a free slot in the RX queue, as [`rx_buf`](Self::rx_buf) does,
    /// or `Pending` if the queue is full, waking `cx` when a slot frees up.
    pub fn poll_rx_buf(&mut self, cx: &mut Context<'_>) -> Poll<&mut [u8]> {
        match self.poll_space(cx) {
            Poll::Ready(()) => Poll::Ready(self.slot()),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Queues the frame of `len` bytes written to the buffer from [`rx_buf`](Self::rx_buf)
    /// (or its `try_`/`poll_` forms) for the stack, and wakes the stack.
    ///
    /// A frame of 0 or more than `MTU` bytes is dropped and counted, and so is a call when
    /// the queue has no free slot; see [Frame sizes](crate#frame-sizes). It never panics.
    pub fn rx_done(&mut self, len: usize) {
        let held = self.held.take();
        with(self.shared, |s| {
            if len == 0 {
                bump(&mut s.stats.rx_empty);
                return;
            }
            if len > MTU {
                bump(&mut s.stats.rx_oversized);
                return;
            }
            if s.rx.is_full() {
                bump(&mut s.stats.rx_no_slot);
                return;
            }
            match held {
                Some(mut slot) => slot.len = len,
                None => self.slots[s.rx.write_index()].borrow_mut().len = len,
            }
            // The slot's borrow ended above: the stack may take the frame now.
            bump(&mut s.stats.rx_frames);
            s.rx.push();
        });
    }

    fn poll_space(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.held.is_some() {
            return Poll::Ready(());
        }
        with(self.shared, |s| {
            if s.rx.is_full() {
                s.rx.space.register(cx.waker());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
    }

    /// The free slot being filled. Only called when the queue is not full.
    fn slot(&mut self) -> &mut [u8] {
        let (slots, shared) = (self.slots, self.shared);
        let held = self
            .held
            .get_or_insert_with(|| slots[with(shared, |s| s.rx.write_index())].borrow_mut());
        &mut held.buf
    }
}

impl<'d, const MTU: usize> TxRunner<'d, MTU> {
    /// Waits for a frame in the TX queue and returns it (exactly the frame's length); send
    /// it, then call [`tx_done`](Self::tx_done) to free its slot.
    ///
    /// Until then, the same frame is returned again. Dropping the future before it completes
    /// takes nothing.
    pub async fn tx_buf(&mut self) -> &mut [u8] {
        poll_fn(|cx| self.poll_frame(cx)).await;
        self.frame()
    }

    /// Returns the oldest frame in the TX queue, as [`tx_buf`](Self::tx_buf) does, or `None`
    /// if the queue is empty.
    pub fn try_tx_buf(&mut self) -> Option<&mut [u8]> {
        let queued = self.held.is_some() || with(self.shared, |s| !s.tx.is_empty());
        if queued { Some(self.frame()) } else { None }
    }

    /// Returns the oldest frame in the TX queue, as [`tx_buf`](Self::tx_buf) does, or
    /// `Pending` if the queue is empty, waking `cx` when a frame comes.
    pub fn poll_tx_buf(&mut self, cx: &mut Context<'_>) -> Poll<&mut [u8]> {
        match self.poll_frame(cx) {
            Poll::Ready(()) => Poll::Ready(self.frame()),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Removes the oldest frame from the TX queue (normally the one [`tx_buf`](Self::tx_buf)
    /// returned, now sent) and wakes the stack if it waits for room. Does nothing if the
    /// queue is empty.
    pub fn tx_done(&mut self) {
        // End the borrow of the slot before it goes back to the stack.
        drop(self.held.take());
        with(self.shared, |s| s.tx.pop());
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.held.is_some() {
            return Poll::Ready(());
        }
        with(self.shared, |s| {
            if s.tx.is_empty() {
                s.tx.frames.register(cx.waker());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
    }

    /// The oldest queued frame. Only called when the queue is not empty.
    fn frame(&mut self) -> &mut [u8] {
        let (slots, shared) = (self.slots, self.shared);
        let held = self
            .held
            .get_or_insert_with(|| slots[with(shared, |s| s.tx.head)].borrow_mut());
        let len = held.len.min(MTU);
        &mut held.buf[..len]
    }
}

/// The network stack's end of a channel: an [`embassy_net_driver::Driver`].
///
/// Its methods never wait: they answer from the queues at once and register the stack's
/// waker when they have nothing to give. Receiving never depends on the TX queue; see
/// [Deadlocks](crate#deadlocks).
pub struct Device<'d, const MTU: usize> {
    rx: &'d [Slot<MTU>],
    tx: &'d [Slot<MTU>],
    scratch: &'d mut PacketBuf<MTU>,
    shared: &'d SharedCell,
}

impl<'d, const MTU: usize> embassy_net_driver::Driver for Device<'d, MTU> {
    type RxToken<'a>
        = RxToken<'a, MTU>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, MTU>
    where
        Self: 'a;

    /// A frame from the RX queue, if there is one, with a token for a reply. The reply token
    /// reserves nothing: a reply made while the TX queue is full is discarded.
    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let ready = with(self.shared, |s| {
            if s.rx.is_empty() {
                s.rx.frames.register(cx.waker());
                false
            } else {
                true
            }
        });
        if !ready {
            return None;
        }
        Some((
            RxToken {
                slots: self.rx,
                shared: self.shared,
            },
            TxToken {
                slots: self.tx,
                scratch: &mut *self.scratch,
                shared: self.shared,
            },
        ))
    }

    /// A token for one frame, if the TX queue has a free slot (which the token then surely
    /// gets: only the device fills the TX queue).
    fn transmit(&mut self, cx: &mut Context<'_>) -> Option<Self::TxToken<'_>> {
        let ready = with(self.shared, |s| {
            if s.tx.is_full() {
                s.tx.space.register(cx.waker());
                false
            } else {
                true
            }
        });
        if !ready {
            return None;
        }
        Some(TxToken {
            slots: self.tx,
            scratch: &mut *self.scratch,
            shared: self.shared,
        })
    }

    fn link_state(&mut self, cx: &mut Context<'_>) -> LinkState {
        with(self.shared, |s| {
            s.link_waker.register(cx.waker());
            s.link_state
        })
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        with(self.shared, |s| s.hardware_address)
    }
}

/// A token for the oldest frame of the RX queue; see [`Device`].
pub struct RxToken<'a, const MTU: usize> {
    slots: &'a [Slot<MTU>],
    shared: &'a SharedCell,
}

impl<const MTU: usize> embassy_net_driver::RxToken for RxToken<'_, MTU> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // Only the device takes frames from the RX queue, and it handed out this token
        // because the queue was not empty: the frame at `head` is still there.
        let head = with(self.shared, |s| s.rx.head);
        let r = {
            let mut slot = self.slots[head].borrow_mut();
            let len = slot.len.min(MTU);
            // The shared state is not borrowed while `f` runs: it may use the reply token.
            f(&mut slot.buf[..len])
        };
        with(self.shared, |s| s.rx.pop());
        r
    }
}

/// A token for one frame to send; see [`Device`].
pub struct TxToken<'a, const MTU: usize> {
    slots: &'a [Slot<MTU>],
    scratch: &'a mut PacketBuf<MTU>,
    shared: &'a SharedCell,
}

impl<const MTU: usize> embassy_net_driver::TxToken for TxToken<'_, MTU> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        if len == 0 {
            with(self.shared, |s| bump(&mut s.stats.tx_empty));
            return f(&mut []);
        }
        if len > MTU {
            with(self.shared, |s| bump(&mut s.stats.tx_oversized));
            return f(&mut self.scratch.buf);
        }
        let index = with(self.shared, |s| {
            if s.tx.is_full() {
                // Only a reply token can get here: see `Driver::receive`.
                bump(&mut s.stats.tx_reply_dropped);
                None
            } else {
                Some(s.tx.write_index())
            }
        });
        let Some(index) = index else {
            return f(&mut self.scratch.buf[..len]);
        };
        let r = {
            let mut slot = self.slots[index].borrow_mut();
            slot.len = len;
            f(&mut slot.buf[..len])
        };
        with(self.shared, |s| {
            bump(&mut s.stats.tx_frames);
            s.tx.push();
        });
        r
    }
}
