//! DNS lookup through ferronet on a TAP or TUN interface.
//!
//! ```text
//! dns-lookup --tap tap0 --ip 192.0.2.2/24 --dns 192.0.2.1 example.test
//! ```

use std::process::ExitCode;

use embassy_time::Duration;
use ferronet::dns::DnsQueryType;
use ferronet_examples::cli::{self, Arg, Failure, Parser};
use ferronet_examples::net::{self, NetArgs};

const USAGE: &str = "\
dns-lookup: look a name up and print its addresses, one per line.

Usage: dns-lookup (--tap NAME | --tun NAME) (--ip CIDR --dns ADDR | --dhcp) [options] NAME

Exits with status 1 if the name has no address of the requested type.

Options:
  --type TYPE     a, aaaa or both (default both)
  --timeout SECS  give up after SECS (default 15)";

fn main() -> ExitCode {
    cli::main("dns-lookup", USAGE, body)
}

fn body(mut p: Parser) -> Result<(), Failure> {
    let mut net = NetArgs::default();
    let (mut types, mut timeout, mut name) = ("both".to_string(), 15u64, None);
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Flag(f) if net.accept(&f, &mut p)? => {}
            Arg::Flag(f) => match f.as_str() {
                "type" => types = p.value(&f)?.to_ascii_lowercase(),
                "timeout" => timeout = p.parse(&f)?,
                _ => return Err(cli::unknown(&f)),
            },
            Arg::Positional(a) if name.is_none() => name = Some(a),
            Arg::Positional(a) => return Err(Failure::usage(format!("unexpected {a:?}"))),
        }
    }
    let name = name.ok_or_else(|| Failure::usage("give the NAME to look up"))?;
    let qtypes: &[DnsQueryType] = match types.as_str() {
        "a" => &[DnsQueryType::A],
        "aaaa" => &[DnsQueryType::Aaaa],
        "both" => &[DnsQueryType::A, DnsQueryType::Aaaa],
        t => return Err(Failure::usage(format!("--type {t:?}: use a, aaaa or both"))),
    };
    net::run(&net, async |stack| {
        net::timed(Duration::from_secs(timeout), async {
            let mut found = 0;
            let mut last_error = None;
            for &qtype in qtypes {
                match stack.dns_query(&name, qtype).await {
                    Ok(addrs) => {
                        for addr in &addrs {
                            println!("{addr}");
                        }
                        found += addrs.len();
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            match (found, last_error) {
                (0, Some(e)) => Err(Failure::failed(format!("{name}: {e}"))),
                (0, None) => Err(Failure::failed(format!("{name}: no address"))),
                _ => Ok(()),
            }
        })
        .await?
    })
}
