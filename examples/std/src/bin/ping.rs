//! ICMP echo (ping) through ferronet on a TAP or TUN interface, IPv4 or IPv6.
//!
//! ```text
//! ping --tap tap0 --ip 192.0.2.2/24 --count 3 192.0.2.1
//! ping --tun tun0 --ip 2001:db8::2/64 2001:db8::1
//! ```

use clap::Parser;
use embassy_executor::Spawner;
use embassy_time::{Duration, Instant, Timer};
use ferronet::icmp::ping::{PingError, PingManager, PingParams};
use ferronet::icmp::{PacketMetadata, SendError};
use ferronet_examples::app::{self, EXIT_HELP, Failure};
use ferronet_examples::net::{self, NetArgs, pattern_byte};

/// ping: send ICMP (or ICMPv6) echo requests to HOST and print the round-trip times.
///
/// HOST is an IPv4 or IPv6 address, or a name looked up by DNS. Like iputils ping, exits with
/// status 0 if at least one reply came, 1 if none did.
#[derive(Parser, Debug)]
#[command(
    name = "ping",
    override_usage = "ping (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) [OPTIONS] <HOST>",
    after_help = EXIT_HELP
)]
struct Args {
    /// The host to ping
    #[arg(value_name = "HOST")]
    host: String,
    /// Requests to send
    #[arg(long, value_name = "N", default_value_t = 4)]
    count: u16,
    /// Time between requests
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    interval: u64,
    /// How long to wait for each reply
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout: u64,
    /// Payload bytes; a request larger than the link carries (MTU - 28 bytes of payload over
    /// IPv4, MTU - 48 over IPv6; 4068 over IPv4 when built with the feature
    /// ipv4-fragmentation) fails at once
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(..=65_000))]
    size: u16,
    #[command(flatten)]
    net: NetArgs,
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = app::start();
    app::exit::<Args>(run(spawner, args).await).await
}

async fn run(spawner: Spawner, args: Args) -> Result<(), Failure> {
    let stack = net::start(spawner, &args.net).await?;
    let (host, count, size) = (&args.host, args.count, usize::from(args.size));
    let target = net::resolve(stack, host).await?;
    let payload: Vec<u8> = (0..size).map(pattern_byte).collect();
    let (mut rx_meta, mut tx_meta) = ([PacketMetadata::EMPTY; 4], [PacketMetadata::EMPTY; 4]);
    let (mut rx, mut tx) = (vec![0u8; size + 64], vec![0u8; size + 64]);
    let mut pinger = PingManager::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
    let mut params = PingParams::new(target);
    params
        .set_payload(&payload)
        .set_count(1)
        .set_timeout(Duration::from_millis(args.timeout))
        .set_rate_limit(Duration::from_ticks(0));
    println!("PING {host} ({target}): {size} data bytes");
    let mut received = 0u32;
    for seq in 0..count {
        let started = Instant::now();
        match pinger.ping(&params).await {
            Ok(rtt) => {
                received += 1;
                let ms = rtt.as_micros() as f64 / 1000.0;
                println!(
                    "{} bytes from {target}: icmp_seq={seq} time={ms:.3} ms",
                    size + 8
                );
            }
            Err(PingError::DestinationHostUnreachable) => {
                println!("no reply from {target} for icmp_seq={seq}");
            }
            Err(PingError::SocketSendError(SendError::PacketTooLarge)) => {
                return Err(net::too_large(&format!("ping {target}"), size));
            }
            Err(e) => return Err(Failure::failed(format!("ping {target}: {e}"))),
        }
        if seq + 1 < count {
            Timer::at(started + Duration::from_millis(args.interval)).await;
        }
    }
    let loss = 100.0 * f64::from(u32::from(count) - received) / f64::from(count.max(1));
    println!("{count} packets transmitted, {received} received, {loss:.0}% packet loss");
    if received == 0 {
        return Err(Failure::failed(format!("no reply from {target}")));
    }
    Ok(())
}
