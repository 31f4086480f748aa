//! Shared code of the host example programs: a tiny argument parser and exit codes
//! ([`cli`]), the interface and addressing options and the stack set-up ([`net`]), and a
//! minimal executor ([`exec`]).
//!
//! The programs (`src/bin/`) run ferronet on a Linux TAP or TUN interface through
//! `ferronet-tuntap`, optionally recording every frame with
//! `ferronet_sim::capture::CaptureDriver`. Time comes from ferronet-sim's `embassy-time`
//! driver (a real clock with a timer thread), which works on any executor.

pub mod cli;
pub mod exec;
pub mod net;
