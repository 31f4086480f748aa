//! Counters the stack keeps about its own work.

/// Counters kept by the stack, read with [`Stack::counters`](crate::Stack::counters).
///
/// All counters wrap around on overflow. They are cheap to keep (a few increments per poll) and
/// meant for diagnostics and tests, for example to check that the runner sleeps while nothing
/// happens.
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
