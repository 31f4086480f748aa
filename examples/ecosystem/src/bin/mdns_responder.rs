//! edge-mdns, the mDNS responder of edge-net, on ferronet through edge-nal-embassy (which
//! implements edge-net's socket traits with `embassy_net` sockets, here ferronet's): answers
//! `NAME.local` with the stack's IPv4 address (and IPv6 address, with `--ip6`), joining the
//! mDNS multicast group 224.0.0.251.
//!
//! ```text
//! mdns-responder --tap tap0 [--ip 192.0.2.2/24] [--name ferronet]
//! avahi-resolve -4 -n ferronet.local        dig -p 5353 @224.0.0.251 ferronet.local
//! ```
//!
//! It answers until it is stopped; it prints `responding as NAME.local` on stdout once it
//! listens, and exits 1 if the interface or the socket cannot be used.

use std::net::Ipv6Addr;

use edge_mdns::HostAnswersMdnsHandler;
use edge_mdns::buf::VecBufAccess;
use edge_mdns::domain::base::Ttl;
use edge_mdns::host::Host;
use edge_mdns::io::{IPV4_DEFAULT_SOCKET, Mdns};
use edge_nal::UdpSplit;
use edge_nal_embassy::{Udp, UdpBuffers};
use embassy_executor::Spawner;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use ferronet_ecosystem::{NetArgs, init, run};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// edge-mdns on ferronet: an mDNS responder for NAME.local.
#[derive(Debug, clap::Parser)]
#[command(version, long_about = None)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// The host name to answer for (without `.local`).
    #[arg(long, default_value = "ferronet")]
    name: String,
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = init();
    run(spawner, &args.net, async |stack| {
        respond(stack, &args).await
    })
    .await
}

async fn respond(stack: embassy_net::Stack<'static>, args: &Args) -> Result<(), String> {
    let buffers = UdpBuffers::<1, 1500, 1500, 4>::new();
    let udp = Udp::new(stack, &buffers);
    let ipv4 = args.net.ip.0;
    let mut socket = edge_mdns::io::bind(&udp, IPV4_DEFAULT_SOCKET, Some(ipv4), None)
        .await
        .map_err(|e| format!("binding the mDNS socket: {e:?}"))?;
    let (recv, send) = socket.split();
    let (recv_buf, send_buf) = (
        VecBufAccess::<NoopRawMutex, 1500>::new(),
        VecBufAccess::<NoopRawMutex, 1500>::new(),
    );
    let signal = Signal::<NoopRawMutex, ()>::new();
    let mdns = Mdns::<_, _, _, _, _, NoopRawMutex>::new(
        Some(ipv4),
        None,
        recv,
        send,
        &recv_buf,
        &send_buf,
        StdRng::seed_from_u64(u64::from(ipv4.to_bits())),
        &signal,
    );
    let host = Host {
        hostname: &args.name,
        ipv4,
        ipv6: args.net.ip6.map_or(Ipv6Addr::UNSPECIFIED, |(ip, _)| ip),
        ttl: Ttl::from_secs(60),
    };
    println!("responding as {}.local", args.name);
    mdns.run(HostAnswersMdnsHandler::new(&host))
        .await
        .map_err(|e| format!("mDNS: {e:?}"))
}
