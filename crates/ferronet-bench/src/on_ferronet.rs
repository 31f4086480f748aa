//! The workloads on ferronet (source: `src/workloads.rs`, shared with [`crate::on_embassy`]).

use ferronet as net;

#[path = "workloads.rs"]
mod workloads;
pub use workloads::*;
