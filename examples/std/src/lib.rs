//! Shared code of ferronet's host example programs (`src/bin/`): the interface and addressing
//! options and the stack start-up ([`net`]), exit codes and the end of a program ([`app`]).
//!
//! The programs run ferronet on a Linux TAP or TUN interface through `ferronet-tuntap`, the
//! way embassy's own std examples run embassy-net: on `embassy-executor` (`arch-std`, one
//! thread) with `embassy-time`'s `std` driver, `clap` for the command line and `env_logger`
//! for log output. ferronet is built with its `log` feature: `RUST_LOG=debug` (or
//! `RUST_LOG=ferronet=trace`) shows the stack's own messages; the default shows `info` and up.
//! `--pcap FILE` records every frame (`ferronet_sim::capture::CaptureDriver`).
//!
//! # How to write an example
//!
//! 1. Add `src/bin/my_prog.rs` and a `[[bin]]` entry (`name = "my-prog"`) to `Cargo.toml`.
//! 2. Declare the arguments with clap's derive, flattening the shared [`net::NetArgs`] (`--tap`,
//!    `--tun`, `--ip`, `--dhcp`, `--pcap`, ...), spelling the usage line out with
//!    `override_usage` (clap cannot show "one of --tap and --tun") and ending the help with
//!    [`app::EXIT_HELP`]. The doc comment is the help text: its first line says what the
//!    program does, the next paragraph what it prints and how it exits.
//!    Check values with clap where you can (`value_parser!(u16).range(1..)`,
//!    `conflicts_with`, `requires`); what clap cannot check becomes a [`app::Failure::usage`].
//! 3. In `main`, parse with [`app::start`], bring the stack up with [`net::start`] (it spawns
//!    the runner task and waits for the link and the IP configuration), do the work, and end
//!    with [`app::exit`]: it stops the runner (closing the interface and the pcap file) and
//!    exits with the code of the [`app::Failure`], if any.
//! 4. Print results (what a script or a test reads) with `println!` and document them in
//!    `--help`; diagnostics go through `log` (`log::info!`, ...).
//! 5. Long-running pieces that run side by side (servers) are `#[embassy_executor::task]`s
//!    spawned from `main`; futures that only run together inside one piece of work are
//!    combined with `embassy_futures` (`join`, `select`).
//!
//! ```no_run
//! use clap::Parser;
//! use embassy_executor::Spawner;
//! use ferronet_examples::app::{self, EXIT_HELP, Failure};
//! use ferronet_examples::net::{self, NetArgs};
//!
//! /// my-prog: print the stack's IPv4 configuration.
//! #[derive(Parser, Debug)]
//! #[command(
//!     name = "my-prog",
//!     override_usage = "my-prog (--tap NAME | --tun NAME) (--ip CIDR | --dhcp) [OPTIONS]",
//!     after_help = EXIT_HELP
//! )]
//! struct Args {
//!     #[command(flatten)]
//!     net: NetArgs,
//! }
//!
//! #[embassy_executor::main]
//! async fn main(spawner: Spawner) {
//!     let args: Args = app::start();
//!     app::exit::<Args>(run(spawner, args).await).await
//! }
//!
//! async fn run(spawner: Spawner, args: Args) -> Result<(), Failure> {
//!     let stack = net::start(spawner, &args.net).await?;
//!     let config = stack.config_v4().ok_or_else(|| Failure::failed("no IPv4 address"))?;
//!     println!("address: {}", config.address);
//!     Ok(())
//! }
//! ```

pub mod app;
pub mod net;
