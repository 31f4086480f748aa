//! edge-dhcp, the DHCPv4 server of edge-net, on ferronet through edge-nal-embassy: leases
//! addresses of the stack's /24 (.50 to .200 by default) to the clients on the link, with the
//! stack's address as their gateway and DNS server.
//!
//! ```text
//! dhcp-server --tap tap0 [--ip 192.0.2.2/24] [--lease-secs 600]
//! ```
//!
//! It serves until it is stopped; it prints `serving` on stdout once it listens on port 67,
//! and exits 1 if the interface or the socket cannot be used.

use std::net::{Ipv4Addr, SocketAddr};

use edge_dhcp::io::DEFAULT_SERVER_PORT;
use edge_dhcp::server::{Server, ServerOptions};
use edge_nal::UdpBind;
use edge_nal_embassy::{Udp, UdpBuffers};
use embassy_executor::Spawner;
use embassy_time::Instant;
use ferronet_ecosystem::{NetArgs, init, run};

/// edge-dhcp on ferronet: a DHCPv4 server.
#[derive(Debug, clap::Parser)]
#[command(version, long_about = None)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// Lease duration, in seconds.
    #[arg(long, default_value_t = 600)]
    lease_secs: u32,
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = init();
    run(spawner, &args.net, async |stack| serve(stack, &args).await).await
}

async fn serve(stack: embassy_net::Stack<'static>, args: &Args) -> Result<(), String> {
    let buffers = UdpBuffers::<1, 1500, 1500, 4>::new();
    let udp = Udp::new(stack, &buffers);
    let mut socket = udp
        .bind(SocketAddr::from((
            Ipv4Addr::UNSPECIFIED,
            DEFAULT_SERVER_PORT,
        )))
        .await
        .map_err(|e| format!("binding port {DEFAULT_SERVER_PORT}: {e:?}"))?;
    let ip = args.net.ip.0;
    let mut gateway = [ip];
    let mut options = ServerOptions::new(ip, Some(&mut gateway));
    let dns = [ip];
    options.dns = &dns;
    options.lease_duration_secs = args.lease_secs;
    let mut server = Server::<_, 16>::new(|| Instant::now().as_secs(), ip);
    let mut buf = [0u8; 1500];
    println!("serving");
    edge_dhcp::io::server::run(&mut server, &options, &mut socket, &mut buf)
        .await
        .map_err(|e| format!("DHCP server: {e:?}"))
}
