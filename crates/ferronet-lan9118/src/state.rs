//! What the driver shares with the interrupt handler: wakers, counters and pending events.

use core::cell::Cell;

use critical_section::Mutex;
use embassy_sync::waitqueue::AtomicWaker;

use crate::regs::{self, Registers};

/// Interrupt sources the handler masks (in INT_EN) after they fired, until the driver has
/// dealt with them and re-arms them: level-style conditions that would otherwise fire again
/// and again before the task runs.
pub(crate) const ONE_SHOT: u32 = regs::INT_RSFL | regs::INT_TDFA | regs::INT_PHY;
/// Error events: counted by the handler, acknowledged, left enabled.
pub(crate) const EVENTS: u32 =
    regs::INT_RXDF | regs::INT_RXDFH | regs::INT_RXE | regs::INT_TXE | regs::INT_TDFO;

/// Statistics of one chip since [`State::new`]. Each counter wraps at `u32::MAX`.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Frames received without error and handed to the network stack.
    pub rx_frames: u32,
    /// Frames the chip reported sent without error (from the TX status FIFO).
    pub tx_frames: u32,
    /// Frames the chip dropped on receive, as counted by its RX_DROP register (a full RX FIFO,
    /// mostly).
    pub rx_dropped: u32,
    /// Receive overrun events: interrupts telling that the chip dropped frames (RXDF, and
    /// RXDFH when the drop counter passed half-way).
    pub rx_overruns: u32,
    /// Received frames discarded because of an error in their RX status (CRC, runt, too long,
    /// collision, MII error, watchdog), or too long for the driver's buffer; plus receiver
    /// error interrupts (RXE).
    pub rx_errors: u32,
    /// Frames the chip reported failed (error bit in the TX status), transmitter error
    /// interrupts (TXE), TX FIFO overruns (TDFO), and frames the stack asked to send that were
    /// longer than the MTU (not sent).
    pub tx_errors: u32,
    /// Calls of [`on_interrupt`] that found an enabled interrupt pending.
    pub interrupts: u32,
    /// Link state changes seen by the driver.
    pub link_changes: u32,
    /// Times the driver found no room for a largest frame in the TX data FIFO and made the
    /// stack wait (backpressure: `transmit` returned `None`, or `receive` held a frame back).
    pub tx_fifo_full: u32,
}

#[derive(Clone, Copy)]
struct Shared {
    counters: Counters,
    /// The handler saw a PHY interrupt that the driver has not read out yet.
    phy_event: bool,
}

/// Wakers, counters and pending events of one chip, shared by the [`Lan9118`](crate::Lan9118)
/// driver and [`on_interrupt`]. Lives in a `static` (`const fn new`).
pub struct State {
    pub(crate) rx_waker: AtomicWaker,
    pub(crate) tx_waker: AtomicWaker,
    pub(crate) link_waker: AtomicWaker,
    shared: Mutex<Cell<Shared>>,
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("State")
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl State {
    /// An empty state: no waker registered, counters at zero.
    pub const fn new() -> Self {
        Self {
            rx_waker: AtomicWaker::new(),
            tx_waker: AtomicWaker::new(),
            link_waker: AtomicWaker::new(),
            shared: Mutex::new(Cell::new(Shared {
                counters: Counters {
                    rx_frames: 0,
                    tx_frames: 0,
                    rx_dropped: 0,
                    rx_overruns: 0,
                    rx_errors: 0,
                    tx_errors: 0,
                    interrupts: 0,
                    link_changes: 0,
                    tx_fifo_full: 0,
                },
                phy_event: false,
            })),
        }
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        critical_section::with(|cs| self.shared.borrow(cs).get().counters)
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut Counters)) {
        critical_section::with(|cs| {
            let cell = self.shared.borrow(cs);
            let mut shared = cell.get();
            f(&mut shared.counters);
            cell.set(shared);
        })
    }

    /// Takes the "PHY interrupt seen" flag.
    pub(crate) fn take_phy_event(&self) -> bool {
        critical_section::with(|cs| {
            let cell = self.shared.borrow(cs);
            let mut shared = cell.get();
            let seen = shared.phy_event;
            shared.phy_event = false;
            cell.set(shared);
            seen
        })
    }
}

/// Sets (`enable`) or clears bits of INT_EN, atomically with respect to [`on_interrupt`].
pub(crate) fn update_int_en<R: Registers + ?Sized>(regs: &R, bits: u32, enable: bool) {
    critical_section::with(|_| {
        let en = regs.read(regs::INT_EN);
        let new = if enable { en | bits } else { en & !bits };
        if new != en {
            regs.write(regs::INT_EN, new);
        }
    })
}

/// Handles the LAN9118 interrupt: call it from the interrupt handler of the chip's IRQ line
/// (IRQ 13 "ETHERNET" on the MPS2 AN385 board), with registers of the same chip as the
/// driver's and the same [`State`].
///
/// It reads INT_STS, acknowledges every enabled source that is pending, masks the sources
/// that the driver re-arms itself (RX status level, TX space, PHY), counts error events
/// (dropped frames, overruns, receiver and transmitter errors; reading RX_DROP) and wakes the
/// wakers of the directions concerned. It never touches the FIFOs, the MAC CSRs or the PHY,
/// so it cannot disturb a driver call it interrupted. Calling it when nothing is pending does
/// nothing.
pub fn on_interrupt<R: Registers + ?Sized>(regs: &R, state: &State) {
    let pending = critical_section::with(|_| {
        let en = regs.read(regs::INT_EN);
        let pending = regs.read(regs::INT_STS) & en;
        let mask = pending & ONE_SHOT;
        if mask != 0 {
            regs.write(regs::INT_EN, en & !mask);
        }
        if pending != 0 {
            regs.write(regs::INT_STS, pending);
        }
        pending
    });
    if pending == 0 {
        return;
    }
    let dropped = if pending & (regs::INT_RXDF | regs::INT_RXDFH) != 0 {
        regs.read(regs::RX_DROP)
    } else {
        0
    };
    critical_section::with(|cs| {
        let cell = state.shared.borrow(cs);
        let mut shared = cell.get();
        let c = &mut shared.counters;
        c.interrupts = c.interrupts.wrapping_add(1);
        if pending & (regs::INT_RXDF | regs::INT_RXDFH) != 0 {
            c.rx_overruns = c.rx_overruns.wrapping_add(1);
            c.rx_dropped = c.rx_dropped.wrapping_add(dropped);
        }
        if pending & regs::INT_RXE != 0 {
            c.rx_errors = c.rx_errors.wrapping_add(1);
        }
        if pending & (regs::INT_TXE | regs::INT_TDFO) != 0 {
            c.tx_errors = c.tx_errors.wrapping_add(1);
        }
        if pending & regs::INT_PHY != 0 {
            shared.phy_event = true;
        }
        cell.set(shared);
    });
    if pending & (regs::INT_RSFL | regs::INT_RXDF | regs::INT_RXDFH | regs::INT_RXE) != 0 {
        state.rx_waker.wake();
    }
    if pending & regs::INT_TDFA != 0 {
        state.tx_waker.wake();
    }
    if pending & regs::INT_PHY != 0 {
        state.link_waker.wake();
    }
}
