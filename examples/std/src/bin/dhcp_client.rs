//! DHCPv4 client on a TAP interface: gets a lease and prints it.
//!
//! ```text
//! dhcp-client --tap tap0
//! ```

use clap::Parser;
use embassy_executor::Spawner;
use embassy_time::Timer;
use ferronet_examples::app::{self, EXIT_HELP, Failure};
use ferronet_examples::net::{self, NetArgs};

/// dhcp-client: get an IPv4 configuration by DHCP and print it.
///
/// Always uses DHCP (--dhcp is implied; a TAP interface is needed). Prints `address:
/// A.B.C.D/LEN`, then `gateway: ...` and `dns: ...` lines when the lease has them. Exits with
/// status 4 if no lease comes within the timeout.
#[derive(Parser, Debug)]
#[command(
    name = "dhcp-client",
    override_usage = "dhcp-client --tap NAME [OPTIONS]",
    after_help = EXIT_HELP
)]
struct Args {
    /// How long to wait for a lease (replaces --wait)
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    /// Keep the stack running SECS after the lease (to answer ping, renew)
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    hold: u64,
    #[command(flatten)]
    net: NetArgs,
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = app::start();
    app::exit::<Args>(run(spawner, args).await).await
}

async fn run(spawner: Spawner, mut args: Args) -> Result<(), Failure> {
    args.net.dhcp = true;
    // `start` waits this long for the configuration, i.e. the lease.
    args.net.wait = args.timeout;
    let stack = net::start(spawner, &args.net).await?;
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
    if args.hold > 0 {
        Timer::after_secs(args.hold).await;
    }
    Ok(())
}
