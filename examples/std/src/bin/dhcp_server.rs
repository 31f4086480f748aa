//! DHCPv4 server on a TAP interface: hands out addresses from a pool and prints each lease.
//!
//! ```text
//! dhcp-server --tap tap0 --ip 192.0.2.1/24 --pool 192.0.2.100-192.0.2.199 --offer-dns 192.0.2.1
//! ```

use embassy_time::{Duration, Instant, Timer};
use ferronet::Ipv4Address;
use ferronet::dhcp_server::{DhcpLease, DhcpServerConfig, LeaseState};
use ferronet_examples::cli::{self, Arg, Failure, Parser};
use ferronet_examples::net::{self, NetArgs};
use std::process::ExitCode;

const USAGE: &str = "\
dhcp-server: serve DHCPv4 leases on the subnet of the stack's static IPv4 address.

Usage: dhcp-server --tap NAME --ip A.B.C.D/LEN --pool FIRST-LAST [options]

The server runs inside ferronet's runner (cargo feature dhcpv4-server). Prints `lease ADDRESS
MAC` for each address it acknowledges, `free ADDRESS MAC` when one is released or ends, and
the lease table at exit. Exits with status 4 if --count clients were not served within
--timeout.

Options:
  --pool FIRST-LAST  the pool, inside the subnet of --ip (required)
  --lease SECS       lease duration (default 3600)
  --router A.B.C.D   router option sent to clients (default: none; --gateway is the stack's)
  --offer-dns A.B.C.D  DNS server option sent to clients (up to 3; default: none)
  --count N          exit (status 0) once N different clients hold a lease (default: never)
  --timeout SECS     give up after SECS (status 4 with --count, else 0)";

fn main() -> ExitCode {
    cli::main("dhcp-server", USAGE, body)
}

fn parse_pool(s: &str) -> Result<(Ipv4Address, Ipv4Address), Failure> {
    let bad = || Failure::usage(format!("--pool: {s:?} is not FIRST-LAST (IPv4 addresses)"));
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

fn body(mut p: Parser) -> Result<(), Failure> {
    let mut net = NetArgs::default();
    let mut pool = None;
    let mut lease = 3600u64;
    let mut router = None;
    let mut dns = heapless::Vec::<Ipv4Address, 3>::new();
    let (mut count, mut timeout) = (None::<usize>, None::<u64>);
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Flag(f) if net.accept(&f, &mut p)? => {}
            Arg::Flag(f) => match f.as_str() {
                "pool" => pool = Some(parse_pool(&p.value(&f)?)?),
                "lease" => lease = p.parse(&f)?,
                "router" => router = Some(p.parse(&f)?),
                "offer-dns" => dns
                    .push(p.parse(&f)?)
                    .map_err(|_| Failure::usage("at most 3 --offer-dns"))?,
                "count" => count = Some(p.parse(&f)?),
                "timeout" => timeout = Some(p.parse(&f)?),
                _ => return Err(cli::unknown(&f)),
            },
            Arg::Positional(a) => return Err(Failure::usage(format!("unexpected {a:?}"))),
        }
    }
    let (first, last) = pool.ok_or_else(|| Failure::usage("give the pool: --pool FIRST-LAST"))?;
    let mut config = DhcpServerConfig::new(first, last);
    config.lease_duration = Duration::from_secs(lease);
    config.gateway = router;
    config.dns_servers = dns;
    net::run(&net, async |stack| {
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
    })
}
