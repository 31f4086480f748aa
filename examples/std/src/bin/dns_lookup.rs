//! DNS lookup through ferronet on a TAP or TUN interface.
//!
//! ```text
//! dns-lookup --tap tap0 --ip 192.0.2.2/24 --dns 192.0.2.1 example.test
//! ```

use clap::{Parser, ValueEnum};
use embassy_executor::Spawner;
use embassy_time::Duration;
use ferronet::dns::DnsQueryType;
use ferronet_examples::app::{self, EXIT_HELP, Failure};
use ferronet_examples::net::{self, NetArgs};

/// dns-lookup: look a name up and print its addresses, one per line.
///
/// Give a DNS server with --ip CIDR --dns ADDR, or get one with --dhcp. Exits with status 1 if
/// the name has no address of the requested type.
#[derive(Parser, Debug)]
#[command(
    name = "dns-lookup",
    override_usage = "dns-lookup (--tap NAME | --tun NAME) (--ip CIDR --dns ADDR | --dhcp) [OPTIONS] <NAME>",
    after_help = EXIT_HELP
)]
struct Args {
    /// The name to look up
    #[arg(value_name = "NAME")]
    name: String,
    /// The record types to ask for
    #[arg(long = "type", value_name = "TYPE", value_enum, ignore_case = true,
          default_value_t = Types::Both)]
    types: Types,
    /// Give up after SECS
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    timeout: u64,
    #[command(flatten)]
    net: NetArgs,
}

/// `--type`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Types {
    /// IPv4 addresses
    A,
    /// IPv6 addresses
    Aaaa,
    /// A, then AAAA
    Both,
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = app::start();
    app::exit::<Args>(run(spawner, args).await).await
}

async fn run(spawner: Spawner, args: Args) -> Result<(), Failure> {
    let qtypes: &[DnsQueryType] = match args.types {
        Types::A => &[DnsQueryType::A],
        Types::Aaaa => &[DnsQueryType::Aaaa],
        Types::Both => &[DnsQueryType::A, DnsQueryType::Aaaa],
    };
    let name = &args.name;
    let stack = net::start(spawner, &args.net).await?;
    net::timed(Duration::from_secs(args.timeout), async {
        let mut found = 0;
        let mut last_error = None;
        for &qtype in qtypes {
            match stack.dns_query(name, qtype).await {
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
}
