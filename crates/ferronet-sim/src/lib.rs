//! Virtual network hardware, virtual time and a deterministic executor, for testing
//! [ferronet](https://example.invalid/ferronet) (or any `embassy-net-driver` stack) on a PC.
//!
//! - [`link`]: point-to-point links between two [`SimDevice`](link::SimDevice)s, each an
//!   `embassy_net_driver::Driver`, with bounded queues, latency, seeded loss / duplication /
//!   reordering / corruption / delay jitter, a bandwidth limit, link up/down, statistics,
//!   capture and pcap recording.
//! - [`switch`]: a learning Ethernet switch joining any number of devices.
//! - [`pcap`]: a classic pcap file writer.
//! - [`capture`]: [`CaptureDriver`](capture::CaptureDriver), a wrapper that records every
//!   frame of any `embassy_net_driver::Driver` (simulated, TAP/TUN, real) to a pcap file.
//! - [`time`] (feature `time-driver`, default): the process's `embassy-time` driver, a real
//!   clock on every thread and a [`VirtualClock`](time::VirtualClock) on threads that install
//!   one. Don't enable another `embassy-time` driver (such as `embassy-time/std`) in the same
//!   binary.
//! - [`executor`] (feature `time-driver`): a single-threaded executor that runs tasks in a
//!   fixed order and jumps virtual time to the next timer whenever nothing is ready.
//!
//! # With a stack
//!
//! A [`SimDevice`](link::SimDevice) is what ferronet's (or embassy-net's) `new` takes as its
//! driver; spawn each stack's runner on the [`Executor`](executor::Executor) and drive the
//! test from `run_until`. Stacks built on `embassy-sync`'s `CriticalSectionRawMutex` need a
//! `critical-section` implementation on the host: add
//! `critical-section = { version = "1.2", features = ["std"] }` to the dev-dependencies.
//! Runs are deterministic (same seed, same schedule, same faults) as long as no other thread
//! wakes the executor's tasks.
//!
//! # Raw frames over a link
//!
//! ```
//! use ferronet_sim::link::{pair_ethernet, LinkConfig, MAC_A, MAC_B};
//!
//! let (mut a, mut b, link) = pair_ethernet(LinkConfig::default())?;
//! // An Ethernet frame from a to b: destination, source, EtherType, payload.
//! let mut frame = Vec::new();
//! frame.extend(MAC_B);
//! frame.extend(MAC_A);
//! frame.extend([0x88, 0xb5]);
//! frame.extend(b"hello");
//! a.send_frame(&frame)?;
//! assert_eq!(b.try_recv_frame(), Some(frame));
//! assert_eq!(b.try_recv_frame(), None);
//! assert_eq!(link.stats().a_to_b.delivered, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # A virtual hour
//!
//! ```
//! use embassy_time::{Duration, Instant, Timer};
//! use ferronet_sim::executor::Executor;
//! use ferronet_sim::link::{pair_ethernet, LinkConfig};
//!
//! let ex = Executor::new();
//! let cfg = LinkConfig { latency: Duration::from_millis(10), ..LinkConfig::default() };
//! let (mut a, mut b, _link) = pair_ethernet(cfg)?;
//! ex.spawn(async move {
//!     // A peer that answers every frame after an hour.
//!     loop {
//!         let frame = b.recv_frame().await;
//!         Timer::after_secs(3600).await;
//!         b.send_frame_wait(&frame).await.unwrap();
//!     }
//! });
//! let started = std::time::Instant::now();
//! let echoed = ex.run_until(async {
//!     a.send_frame(&[0u8; 60]).unwrap();
//!     a.recv_frame().await
//! });
//! assert_eq!(echoed, [0u8; 60]);
//! // 10 ms there, an hour of thinking, 10 ms back; in far less real time.
//! assert_eq!(Instant::now(), Instant::from_secs(3600) + Duration::from_millis(20));
//! assert!(started.elapsed() < std::time::Duration::from_secs(5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod capture;
pub mod link;
mod medium;
pub mod pcap;
pub mod switch;
mod util;

#[cfg(feature = "time-driver")]
pub mod executor;
#[cfg(feature = "time-driver")]
pub mod time;
