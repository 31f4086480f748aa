//! The workloads on embassy-net 0.9 (source: `src/workloads.rs`, shared with
//! [`crate::on_ferronet`]).

use embassy_net as net;

#[path = "workloads.rs"]
mod workloads;
pub use workloads::*;
