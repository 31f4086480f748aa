//! Support code shared by the measurement binaries: the network driver and the time driver.
//!
//! Nothing here depends on which network stack is built; it is identical (and so costs the
//! same flash/RAM) in the ferronet and the embassy-net builds.
#![no_std]

#[cfg(all(feature = "use-ferronet", feature = "use-embassy"))]
compile_error!("enable exactly one of the features use-ferronet, use-embassy (not both)");
#[cfg(not(any(feature = "use-ferronet", feature = "use-embassy")))]
compile_error!("enable exactly one of the features use-ferronet, use-embassy");

pub mod eth;
pub mod time;
