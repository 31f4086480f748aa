//! ferronet under the name `embassy_net`.
//!
//! This package is named `embassy-net` and has version 0.9.99, above every embassy-net 0.9
//! release on crates.io. It contains no code of its own: it re-exports the whole public API of
//! [ferronet](https://docs.rs/ferronet) — `Stack`, `Runner`, `new`, `StackResources`, the
//! `config` items, the `tcp`, `udp`, `raw`, `icmp` and `dns` modules, the address types and
//! `driver` (embassy-net-driver 0.2) — so that code and crates written for embassy-net 0.9
//! compile and run on ferronet unchanged.
//!
//! A project adopts ferronet everywhere in its dependency graph, including inside crates such as
//! picoserve, reqwless, rust-mqtt, edge-nal-embassy and sntpc-net-embassy, with one entry in its
//! `Cargo.toml`:
//!
//! ```toml
//! [patch.crates-io]
//! embassy-net = { git = "https://example.invalid/ferronet" }   # or path = ".../crates/embassy-net-compat"
//! ```
//!
//! Every cargo feature of embassy-net 0.9.1 exists here and turns on ferronet's feature of the
//! same name; `igmp`, `counters` and `proto-ipv4-fragmentation` are ferronet's extras. Removing
//! the patch line (and running `cargo update -p embassy-net`) goes back to embassy-net.
//!
//! What differs from embassy-net 0.9 is what differs in ferronet: see ferronet's README,
//! section "Compatibility with embassy-net 0.9".
#![no_std]

pub use ferronet::*;
