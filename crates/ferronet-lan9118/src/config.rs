//! Driver configuration.

/// How the chip's IRQ output pin is driven (IRQ_CFG IRQ_POL and IRQ_TYPE).
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqPin {
    /// Active high (`true`) or active low.
    pub active_high: bool,
    /// Push-pull (`true`) or open drain.
    pub push_pull: bool,
}

impl IrqPin {
    /// Active high, push-pull: what an interrupt controller input expects when the pin is
    /// wired straight to it, as on the MPS2 boards (QEMU's model raises its IRQ line only in
    /// this configuration; in any other it holds the line asserted while nothing is pending).
    pub const ACTIVE_HIGH_PUSH_PULL: Self = Self {
        active_high: true,
        push_pull: true,
    };
}

/// How [`Lan9118::new`](crate::Lan9118::new) sets the chip up.
///
/// A plain struct: build it with `Config { mac: Some(..), ..Config::default() }`.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The MAC address to program. `None`: keep the one the chip loaded from its EEPROM after
    /// reset (MAC ADDRL/ADDRH); initialisation fails with
    /// [`InitError::NoMacAddress`](crate::InitError::NoMacAddress) if that is not a valid
    /// unicast address (no EEPROM, or a blank one).
    pub mac: Option<[u8; 6]>,
    /// `Some`: interrupt-driven. Initialisation enables the IRQ output with this pin
    /// configuration and the interrupt sources in INT_EN; the application unmasks the
    /// interrupt line in its interrupt controller and calls
    /// [`on_interrupt`](crate::on_interrupt) from the handler.
    ///
    /// `None`: polled. The IRQ output stays off; each call of the driver checks the chip
    /// itself, and when it has nothing to do it wakes the stack's waker at once so that the
    /// stack polls again. Simple, but the CPU never sleeps while the stack runs.
    pub irq: Option<IrqPin>,
    /// Upper bound on the register reads spent waiting for the chip in one wait (soft reset,
    /// READY, EEPROM load, MAC CSR and MII busy bits) before giving up with a timeout error.
    /// The default, 100 000, is several milliseconds on a real bus.
    pub poll_limit: u32,
    /// Receive every frame on the wire, whatever its destination (MAC_CR PRMS).
    pub promiscuous: bool,
    /// Receive every multicast frame (MAC_CR MCPAS). The chip's hash filter is not used, so
    /// without this only the broadcast and this station's own unicast frames come in, and
    /// IPv6 neighbour discovery or mDNS do not work.
    pub all_multicast: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mac: None,
            irq: Some(IrqPin::ACTIVE_HIGH_PUSH_PULL),
            poll_limit: 100_000,
            promiscuous: false,
            all_multicast: true,
        }
    }
}
