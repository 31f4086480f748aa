//! UDP echo server on a TAP or TUN interface.
//!
//! ```text
//! udp-echo --tun tun0 --ip 192.0.2.2/24 --ip 2001:db8::2/64 --port 7 --count 10
//! ```

use std::net::IpAddr;

use clap::Parser;
use embassy_executor::Spawner;
use embassy_time::{Duration, with_timeout};
use ferronet::udp::{PacketMetadata, UdpSocket};
use ferronet_examples::app::{self, EXIT_HELP, Failure};
use ferronet_examples::net::{self, NetArgs};

/// udp-echo: answer every UDP datagram received on a port with the same bytes.
///
/// Prints `listening on PORT` once it receives, and a summary at the end.
#[derive(Parser, Debug)]
#[command(
    name = "udp-echo",
    override_usage = "udp-echo (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) [OPTIONS]",
    after_help = EXIT_HELP
)]
struct Args {
    /// The port to listen on
    #[arg(long, value_name = "PORT", default_value_t = 7,
          value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Join the multicast group GROUP (IPv4 or IPv6; may be repeated): the stack sends an IGMP
    /// or MLD membership report and echoes datagrams sent to it
    #[arg(long = "join", value_name = "GROUP", value_parser = parse_group)]
    groups: Vec<IpAddr>,
    /// Exit (status 0) after echoing N datagrams (default: never)
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Stop after SECS: status 0 without --count, 4 if fewer than --count datagrams were
    /// echoed
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    #[command(flatten)]
    net: NetArgs,
}

fn parse_group(s: &str) -> Result<IpAddr, String> {
    match s.parse::<IpAddr>() {
        Ok(g) if g.is_multicast() => Ok(g),
        Ok(g) => Err(format!("{g} is not a multicast group")),
        Err(e) => Err(e.to_string()),
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = app::start();
    app::exit::<Args>(run(spawner, args).await).await
}

async fn run(spawner: Spawner, args: Args) -> Result<(), Failure> {
    let (port, count) = (args.port, args.count);
    let stack = net::start(spawner, &args.net).await?;
    let (mut rx_meta, mut tx_meta) = ([PacketMetadata::EMPTY; 16], [PacketMetadata::EMPTY; 16]);
    let (mut rx, mut tx) = (vec![0u8; 65536], vec![0u8; 65536]);
    let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
    socket
        .bind(port)
        .map_err(|e| Failure::failed(format!("bind port {port}: {e:?}")))?;
    for &group in &args.groups {
        stack
            .join_multicast_group(group)
            .map_err(|e| Failure::failed(format!("join {group}: {e:?}")))?;
        println!("joined {group}");
    }
    println!("listening on {port}");
    let mut echoed = 0u64;
    let mut buf = vec![0u8; 65536];
    let echo = async {
        while count.is_none_or(|n| echoed < n) {
            let (n, meta) = socket
                .recv_from(&mut buf)
                .await
                .map_err(|e| Failure::failed(format!("receive: {e:?}")))?;
            socket
                .send_to(&buf[..n], meta.endpoint)
                .await
                .map_err(|e| Failure::failed(format!("send to {}: {e:?}", meta.endpoint)))?;
            echoed += 1;
        }
        Ok::<(), Failure>(())
    };
    let result = match args.timeout {
        None => echo.await,
        Some(secs) => match with_timeout(Duration::from_secs(secs), echo).await {
            Ok(r) => r,
            Err(_) => match count {
                None => Ok(()),
                Some(n) => Err(Failure::timeout(format!(
                    "only {echoed} of {n} datagrams in {secs} s"
                ))),
            },
        },
    };
    socket.flush().await;
    println!("echoed {echoed} datagrams");
    result
}
