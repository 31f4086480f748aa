//! The LAN9118's interrupt (IRQ 13): the driver's shared state and its handler.

use cortex_m::peripheral::NVIC;
use ferronet_lan9118::{Mmio, State};

use crate::board::Irq;

/// State shared by the driver and its interrupt handler.
pub static STATE: State = State::new();

/// Set the Ethernet interrupt's priority (before `enable`).
pub fn set_priority(nvic: &mut NVIC, priority: u8) {
    // SAFETY: called before the interrupt is unmasked; the handler only uses the driver's
    // interrupt-safe state.
    unsafe { nvic.set_priority(Irq::Ethernet, priority) };
}

/// Unmask the Ethernet interrupt (once the driver is initialised).
pub fn enable() {
    // SAFETY: the handler only calls the driver's interrupt entry point, which takes its own
    // critical sections.
    unsafe { NVIC::unmask(Irq::Ethernet) };
}

/// IRQ 13.
pub fn on_ethernet_interrupt() {
    // SAFETY: the LAN9118 register block of the mps2-an385; the driver's interrupt entry point
    // is written to run concurrently with the driver.
    let regs = unsafe { Mmio::new(crate::LAN9118_BASE) };
    ferronet_lan9118::on_interrupt(&regs, &STATE);
}
