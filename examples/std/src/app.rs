//! Exit codes, [`Failure`], and the start ([`start`]) and end ([`exit`]) of every program.

use std::fmt::Display;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

/// Success.
pub const EXIT_OK: u8 = 0;
/// The operation failed: connection refused or reset, no reply, data mismatch, name not
/// found, HTTP error status.
pub const EXIT_FAILURE: u8 = 1;
/// Bad command line (clap's own errors exit with this status too).
pub const EXIT_USAGE: u8 = 2;
/// The interface cannot be used: it does not exist and cannot be created, permission
/// denied, `/dev/net/tun` missing, or the link stayed down.
pub const EXIT_DEVICE: u8 = 3;
/// Gave up waiting (`--timeout`, or no DHCP lease / configuration in time).
pub const EXIT_TIMEOUT: u8 = 4;

/// The exit codes, for the end of `--help` (`#[command(after_help = EXIT_HELP)]`).
pub const EXIT_HELP: &str = "\
Exit status: 0 success, 1 the operation failed, 2 bad command line, 3 the interface cannot be
used (missing, no permission, link down), 4 timed out.

Log output: RUST_LOG=debug (or RUST_LOG=ferronet=trace) shows the stack's own messages.";

/// Why a program stops unsuccessfully: an exit code and a message for stderr.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code (one of the `EXIT_*` constants).
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    fn new(code: u8, message: impl Display) -> Self {
        Self {
            code,
            message: message.to_string(),
        }
    }

    /// A failed operation ([`EXIT_FAILURE`]).
    pub fn failed(message: impl Display) -> Self {
        Self::new(EXIT_FAILURE, message)
    }

    /// A bad command line that clap could not see ([`EXIT_USAGE`]); reported like clap's own.
    pub fn usage(message: impl Display) -> Self {
        Self::new(EXIT_USAGE, message)
    }

    /// An unusable interface ([`EXIT_DEVICE`]).
    pub fn device(message: impl Display) -> Self {
        Self::new(EXIT_DEVICE, message)
    }

    /// A timeout ([`EXIT_TIMEOUT`]).
    pub fn timeout(message: impl Display) -> Self {
        Self::new(EXIT_TIMEOUT, message)
    }
}

/// Parses the command line into `A` and starts logging (`env_logger`, level `info` unless
/// `RUST_LOG` says otherwise). A bad command line ends the program with clap's message and
/// status 2, `--help` with status 0.
pub fn start<A: Parser>() -> A {
    let args = A::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    args
}

/// Ends the program: stops the stack if [`net::start`](crate::net::start) started one (which
/// closes the interface and completes the `--pcap` file), then exits with status 0 for `Ok`,
/// or prints the failure on stderr and exits with its code. Usage failures are reported like
/// clap's own errors, with `A`'s usage line.
pub async fn exit<A: CommandFactory>(result: Result<(), Failure>) -> ! {
    crate::net::stop().await;
    match result {
        Ok(()) => std::process::exit(EXIT_OK.into()),
        Err(f) if f.code == EXIT_USAGE => A::command()
            .error(ErrorKind::InvalidValue, f.message)
            .exit(),
        Err(f) => {
            eprintln!("{}: error: {}", A::command().get_name(), f.message);
            std::process::exit(f.code.into())
        }
    }
}
