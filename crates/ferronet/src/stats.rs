//! Counters the stack keeps about its own work (cargo feature `counters`).

/// Counters kept by the stack, read with `Stack::counters` (cargo feature `counters`).
///
/// All counters wrap around on overflow. They cost 16 bytes of RAM and an increment per poll
/// and per frame, and are meant for diagnostics and tests, for example to check that the
/// runner sleeps while nothing happens. Without the `counters` feature nothing is counted and
/// `Stack::counters` does not exist.
#[cfg(feature = "counters")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Counters {
    /// How many times the runner woke up and polled the interface.
    pub polls: u32,
    /// Frames received from the driver.
    pub rx_frames: u32,
    /// Frames handed to the driver for transmission.
    pub tx_frames: u32,
    /// Times the driver had no room to transmit (the runner then waits for the driver).
    pub tx_queue_full: u32,
}

/// Where the stack counts: the [`Counters`] with the `counters` feature, nothing without.
#[cfg(feature = "counters")]
pub(crate) type CounterStore = Counters;

/// Where the stack counts: the [`Counters`] with the `counters` feature, nothing without.
#[cfg(not(feature = "counters"))]
pub(crate) struct CounterStore;

#[cfg(feature = "counters")]
impl CounterStore {
    pub(crate) const ZERO: Self = Counters {
        polls: 0,
        rx_frames: 0,
        tx_frames: 0,
        tx_queue_full: 0,
    };
    #[inline]
    pub(crate) fn poll(&mut self) {
        self.polls = self.polls.wrapping_add(1);
    }
    #[inline]
    pub(crate) fn rx_frame(&mut self) {
        self.rx_frames = self.rx_frames.wrapping_add(1);
    }
    #[inline]
    pub(crate) fn tx_frame(&mut self) {
        self.tx_frames = self.tx_frames.wrapping_add(1);
    }
    #[inline]
    pub(crate) fn tx_queue_full(&mut self) {
        self.tx_queue_full = self.tx_queue_full.wrapping_add(1);
    }
}

#[cfg(not(feature = "counters"))]
impl CounterStore {
    pub(crate) const ZERO: Self = CounterStore;
    #[inline]
    pub(crate) fn poll(&mut self) {}
    #[inline]
    pub(crate) fn rx_frame(&mut self) {}
    #[inline]
    pub(crate) fn tx_frame(&mut self) {}
    #[inline]
    pub(crate) fn tx_queue_full(&mut self) {}
}
