//! DHCPv4 server on a TAP interface: hands out addresses from a pool and prints each lease.
//!
//! ```text
//! dhcp-server --tap tap0 --ip 192.0.2.1/24 --pool 192.0.2.100-192.0.2.199 --offer-dns 192.0.2.1
//! ```

use clap::Parser;
use embassy_executor::Spawner;
use embassy_time::{Duration, Instant, Timer};
use ferronet::Ipv4Address;
use ferronet::dhcp_server::{DhcpLease, DhcpServerConfig, LeaseState};
use ferronet_examples::app::{self, EXIT_HELP, Failure};
use ferronet_examples::net::{self, NetArgs};

/// dhcp-server: serve DHCPv4 leases on the subnet of the stack's static IPv4 address.
///
/// The server runs inside ferronet's runner (cargo feature dhcpv4-server). Prints `lease ADDRESS
/// MAC` for each address it acknowledges, `free ADDRESS MAC` when one is released or ends, and
/// the lease table at exit. Exits with status 4 if --count clients were not served within
/// --timeout.
#[derive(Parser, Debug)]
#[command(
    name = "dhcp-server",
    override_usage = "dhcp-server --tap NAME --ip A.B.C.D/LEN --pool FIRST-LAST [OPTIONS]",
    after_help = EXIT_HELP
)]
struct Args {
    /// The pool, inside the subnet of --ip
    #[arg(long, value_name = "FIRST-LAST", value_parser = parse_pool)]
    pool: (Ipv4Address, Ipv4Address),
    /// Lease duration
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    lease: u64,
    /// Router option sent to clients (default: none; --gw is the stack's own)
    #[arg(long, value_name = "A.B.C.D")]
    router: Option<Ipv4Address>,
    /// DNS server option sent to clients (up to 3; default: none)
    #[arg(long = "offer-dns", value_name = "A.B.C.D")]
    offer_dns: Vec<Ipv4Address>,
    /// Exit (status 0) once N different clients hold a lease (default: never)
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// Give up after SECS (status 4 with --count, else 0)
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    #[command(flatten)]
    net: NetArgs,
}

fn parse_pool(s: &str) -> Result<(Ipv4Address, Ipv4Address), String> {
    let bad = || format!("{s:?} is not FIRST-LAST (IPv4 addresses)");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = app::start();
    app::exit::<Args>(run(spawner, args).await).await
}

async fn run(spawner: Spawner, args: Args) -> Result<(), Failure> {
    let ((first, last), count, timeout) = (args.pool, args.count, args.timeout);
    let mut config = DhcpServerConfig::new(first, last);
    config.lease_duration = Duration::from_secs(args.lease);
    config.gateway = args.router;
    config.dns_servers = heapless::Vec::from_slice(&args.offer_dns)
        .map_err(|_| Failure::usage("at most 3 --offer-dns"))?;
    let stack = net::start(spawner, &args.net).await?;
    stack
        .start_dhcp_server(config)
        .map_err(|e| Failure::failed(format!("cannot start the DHCP server: {e}")))?;
    println!("serving {first} - {last}");
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs(t));
    let mut shown: Vec<DhcpLease> = Vec::new();
    let mut served = std::collections::BTreeSet::new();
    loop {
        let now: Vec<DhcpLease> = stack.dhcp_leases().into_iter().collect();
        for l in &now {
            let before = shown.iter().find(|o| o.address == l.address);
            let mac = ferronet_tuntap::format_mac(l.hardware_address.0);
            let was = before.map(|o| (o.state, o.hardware_address));
            match l.state {
                LeaseState::Bound if was != Some((LeaseState::Bound, l.hardware_address)) => {
                    println!("lease {} {mac}", l.address);
                    served.insert(l.hardware_address.0);
                }
                LeaseState::Free if was.is_some_and(|(s, _)| s == LeaseState::Bound) => {
                    println!("free {} {mac}", l.address);
                }
                LeaseState::Declined if was.is_none_or(|(s, _)| s != LeaseState::Declined) => {
                    println!("declined {} {mac}", l.address);
                }
                _ => {}
            }
        }
        shown = now;
        if count.is_some_and(|n| served.len() >= n) {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            if let Some(n) = count {
                return Err(Failure::timeout(format!(
                    "{} of {n} clients served",
                    served.len()
                )));
            }
            break;
        }
        // The lease table has no change notification: look at it five times a second.
        Timer::after_millis(200).await;
    }
    for l in stack.dhcp_leases() {
        println!(
            "table {} {} {:?}",
            l.address,
            ferronet_tuntap::format_mac(l.hardware_address.0),
            l.state
        );
    }
    Ok(())
}
