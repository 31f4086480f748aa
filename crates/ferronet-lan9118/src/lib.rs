#![doc = include_str!("../README.md")]
#![no_std]

mod config;
mod error;
mod lan9118;
pub mod regs;
mod state;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod stack_tests;
#[cfg(test)]
mod tests;

pub use config::{Config, IrqPin};
/// The `embassy-net-driver` crate this driver implements.
pub use embassy_net_driver as driver;
pub use error::InitError;
pub use lan9118::{Lan9118, MTU, RxToken, TxToken};
pub use regs::{Mmio, Registers};
pub use state::{Counters, State, on_interrupt};
