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

/// What a stack holds at one moment: sockets, bound ports, waiting tasks. For leak checks in
/// tests (a soak test compares it before and after hours of churn); not a stable API, hence
/// hidden from the documentation.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Occupied slots of the socket table, the stack's own DNS and DHCP sockets included.
    pub sockets: usize,
    /// TCP and UDP sockets that hold a local port (bound, listening or connected); the port
    /// allocator hands out only ports that none of them holds.
    pub bound_ports: usize,
    /// TCP sockets whose timeout the runner watches.
    pub watched: u16,
    /// Tasks waiting for a link or configuration change.
    pub state_waiters: usize,
    /// Tasks waiting for a free DNS query slot (0 without the `dns` feature).
    pub dns_waiters: usize,
}

impl crate::Stack<'_> {
    /// What the stack holds now (sockets, bound ports, waiters); for leak checks in tests.
    #[doc(hidden)]
    pub fn usage(&self) -> Usage {
        #[allow(unused_imports)]
        use smoltcp::socket::Socket;
        self.with(|i| Usage {
            sockets: i.sockets.iter().count(),
            bound_ports: i
                .sockets
                .iter()
                .filter(|(_, s)| match s {
                    #[cfg(feature = "tcp")]
                    Socket::Tcp(t) => t.listen_endpoint().port != 0 || t.local_endpoint().is_some(),
                    #[cfg(feature = "udp")]
                    Socket::Udp(u) => u.endpoint().port != 0,
                    #[allow(unreachable_patterns)]
                    _ => false,
                })
                .count(),
            watched: i.watched,
            state_waiters: self.shared.state_waiters.len(),
            #[cfg(feature = "dns")]
            dns_waiters: self.shared.dns_waiters.len(),
            #[cfg(not(feature = "dns"))]
            dns_waiters: 0,
        })
    }
}
