//! A tiny command-line parser (`--flag`, `--flag VALUE`, `--flag=VALUE`, positionals), exit
//! codes and the `main` wrapper shared by the example programs.

use std::fmt::Display;
use std::process::ExitCode;
use std::str::FromStr;

/// Success.
pub const EXIT_OK: u8 = 0;
/// The operation failed: connection refused or reset, no reply, data mismatch, name not
/// found, HTTP error status.
pub const EXIT_FAILURE: u8 = 1;
/// Bad command line.
pub const EXIT_USAGE: u8 = 2;
/// The interface cannot be used: it does not exist and cannot be created, permission
/// denied, `/dev/net/tun` missing, or the link stayed down.
pub const EXIT_DEVICE: u8 = 3;
/// Gave up waiting (`--timeout`, or no DHCP lease / configuration in time).
pub const EXIT_TIMEOUT: u8 = 4;

/// Why a program stops unsuccessfully: an exit code and a message for stderr.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code (one of the `EXIT_*` constants).
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    /// A failed operation ([`EXIT_FAILURE`]).
    pub fn failed(message: impl Display) -> Self {
        Self {
            code: EXIT_FAILURE,
            message: message.to_string(),
        }
    }

    /// A bad command line ([`EXIT_USAGE`]).
    pub fn usage(message: impl Display) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.to_string(),
        }
    }

    /// An unusable interface ([`EXIT_DEVICE`]).
    pub fn device(message: impl Display) -> Self {
        Self {
            code: EXIT_DEVICE,
            message: message.to_string(),
        }
    }

    /// A timeout ([`EXIT_TIMEOUT`]).
    pub fn timeout(message: impl Display) -> Self {
        Self {
            code: EXIT_TIMEOUT,
            message: message.to_string(),
        }
    }
}

/// One command-line item.
#[derive(Debug, PartialEq, Eq)]
pub enum Arg {
    /// `--name` (or `--name=value`: the value is then taken by [`Parser::value`]).
    Flag(String),
    /// Anything not starting with `--`.
    Positional(String),
}

/// Walks the arguments; see the [module documentation](self).
#[derive(Debug)]
pub struct Parser {
    args: std::vec::IntoIter<String>,
    /// The `=value` part of the last flag, until taken.
    inline_value: Option<(String, String)>,
}

impl Parser {
    /// The process's arguments, without the program name.
    pub fn from_env() -> Self {
        Self::new(std::env::args().skip(1).collect())
    }

    /// Parses `args` (without the program name).
    pub fn new(args: Vec<String>) -> Self {
        Self {
            args: args.into_iter(),
            inline_value: None,
        }
    }

    /// The next item, or `None` at the end.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Arg>, Failure> {
        if let Some((flag, _)) = self.inline_value.take() {
            return Err(Failure::usage(format!("--{flag} takes no value")));
        }
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        if arg == "-h" {
            return Ok(Some(Arg::Flag("help".into())));
        }
        match arg.strip_prefix("--") {
            Some(flag) => match flag.split_once('=') {
                Some((name, value)) => {
                    self.inline_value = Some((name.to_owned(), value.to_owned()));
                    Ok(Some(Arg::Flag(name.to_owned())))
                }
                None => Ok(Some(Arg::Flag(flag.to_owned()))),
            },
            None => Ok(Some(Arg::Positional(arg))),
        }
    }

    /// The value of flag `flag`: its `=value`, or the next argument.
    pub fn value(&mut self, flag: &str) -> Result<String, Failure> {
        if let Some((_, value)) = self.inline_value.take() {
            return Ok(value);
        }
        self.args
            .next()
            .ok_or_else(|| Failure::usage(format!("--{flag} needs a value")))
    }

    /// The value of flag `flag`, parsed.
    pub fn parse<T: FromStr>(&mut self, flag: &str) -> Result<T, Failure>
    where
        T::Err: Display,
    {
        let value = self.value(flag)?;
        value
            .parse()
            .map_err(|e| Failure::usage(format!("--{flag} {value:?}: {e}")))
    }
}

/// The error for a flag no one knows.
pub fn unknown(flag: &str) -> Failure {
    Failure::usage(format!("unknown option --{flag}"))
}

/// Runs a program's body: prints `usage` for `--help` (anywhere on the line), otherwise runs
/// `body` and turns a [`Failure`] into a message on stderr and its exit code.
pub fn main(name: &str, usage: &str, body: impl FnOnce(Parser) -> Result<(), Failure>) -> ExitCode {
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h") {
        println!("{}", usage.trim_end());
        println!();
        println!("{}", crate::net::NET_HELP.trim_end());
        println!();
        println!("{}", EXIT_HELP.trim_end());
        return ExitCode::SUCCESS;
    }
    match body(Parser::from_env()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{name}: error: {}", f.message);
            if f.code == EXIT_USAGE {
                eprintln!("{name}: see `{name} --help`");
            }
            ExitCode::from(f.code)
        }
    }
}

/// The exit codes, for `--help`.
pub const EXIT_HELP: &str = "\
Exit status: 0 success, 1 the operation failed, 2 bad command line, 3 the interface cannot be
used (missing, no permission, link down), 4 timed out.";

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(args: &[&str]) -> Parser {
        Parser::new(args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn flags_values_and_positionals() {
        let mut p = parser(&["--tap", "tap0", "--port=7", "host", "--verify", "-h"]);
        assert_eq!(p.next().unwrap(), Some(Arg::Flag("tap".into())));
        assert_eq!(p.value("tap").unwrap(), "tap0");
        assert_eq!(p.next().unwrap(), Some(Arg::Flag("port".into())));
        assert_eq!(p.parse::<u16>("port").unwrap(), 7);
        assert_eq!(p.next().unwrap(), Some(Arg::Positional("host".into())));
        assert_eq!(p.next().unwrap(), Some(Arg::Flag("verify".into())));
        assert_eq!(p.next().unwrap(), Some(Arg::Flag("help".into())));
        assert_eq!(p.next().unwrap(), None);
    }

    #[test]
    fn errors_are_usage_errors() {
        let mut p = parser(&["--port"]);
        p.next().unwrap();
        assert_eq!(p.value("port").unwrap_err().code, EXIT_USAGE);
        let mut p = parser(&["--port", "x"]);
        p.next().unwrap();
        assert_eq!(p.parse::<u16>("port").unwrap_err().code, EXIT_USAGE);
        let mut p = parser(&["--verify=yes"]);
        p.next().unwrap();
        assert_eq!(p.next().unwrap_err().code, EXIT_USAGE);
    }
}
