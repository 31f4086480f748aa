//! DHCPv4 client on a TAP interface: gets a lease and prints it.
//!
//! ```text
//! dhcp-client --tap tap0
//! ```

use std::process::ExitCode;

use embassy_time::{Duration, Timer};
use ferronet_examples::cli::{self, Arg, Failure, Parser};
use ferronet_examples::net::{self, NetArgs};

const USAGE: &str = "\
dhcp-client: get an IPv4 configuration by DHCP and print it.

Usage: dhcp-client --tap NAME [options]

Prints `address: A.B.C.D/LEN`, then `gateway: ...` and `dns: ...` lines when the lease has
them. Exits with status 4 if no lease comes within the timeout.

Options:
  --timeout SECS  how long to wait for a lease (default 30)
  --hold SECS     keep the stack running SECS after the lease (to answer ping, renew)";

fn main() -> ExitCode {
    cli::main("dhcp-client", USAGE, body)
}

fn body(mut p: Parser) -> Result<(), Failure> {
    let mut net = NetArgs::default();
    let (mut timeout, mut hold) = (30u64, 0u64);
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Flag(f) if net.accept(&f, &mut p)? => {}
            Arg::Flag(f) => match f.as_str() {
                "timeout" => timeout = p.parse(&f)?,
                "hold" => hold = p.parse(&f)?,
                _ => return Err(cli::unknown(&f)),
            },
            Arg::Positional(a) => return Err(Failure::usage(format!("unexpected {a:?}"))),
        }
    }
    net.dhcp = true;
    // `run` waits this long for the configuration, i.e. the lease.
    net.wait = Duration::from_secs(timeout);
    net::run(&net, async |stack| {
        let lease = stack
            .config_v4()
            .ok_or_else(|| Failure::failed("the configuration is up but has no IPv4 lease"))?;
        println!("address: {}", lease.address);
        if let Some(gw) = lease.gateway {
            println!("gateway: {gw}");
        }
        for dns in &lease.dns_servers {
            println!("dns: {dns}");
        }
        if hold > 0 {
            Timer::after_secs(hold).await;
        }
        Ok(())
    })
}
