//! ICMP echo (ping) through ferronet on a TAP or TUN interface, IPv4 or IPv6.
//!
//! ```text
//! ping --tap tap0 --ip 192.0.2.2/24 --count 3 192.0.2.1
//! ping --tun tun0 --ip 2001:db8::2/64 2001:db8::1
//! ```

use std::process::ExitCode;

use embassy_time::{Duration, Instant, Timer};
use ferronet::icmp::ping::{PingError, PingManager, PingParams};
use ferronet::icmp::{PacketMetadata, SendError};
use ferronet_examples::cli::{self, Arg, Failure, Parser};
use ferronet_examples::net::{self, NetArgs, pattern_byte};

const USAGE: &str = "\
ping: send ICMP (or ICMPv6) echo requests to HOST and print the round-trip times.

Usage: ping (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) [options] HOST

HOST is an IPv4 or IPv6 address, or a name looked up by DNS. Like iputils ping, exits with
status 0 if at least one reply came, 1 if none did.

Options:
  --count N        requests to send (default 4)
  --interval MS    time between requests (default 1000)
  --timeout MS     how long to wait for each reply (default 2000)
  --size N         payload bytes (default 32); a request larger than the link carries
                   (MTU - 28 bytes of payload over IPv4, MTU - 48 over IPv6; 4068 over IPv4
                   when built with the feature ipv4-fragmentation) fails at once";

fn main() -> ExitCode {
    cli::main("ping", USAGE, body)
}

fn body(mut p: Parser) -> Result<(), Failure> {
    let mut net = NetArgs::default();
    let (mut count, mut interval, mut timeout, mut size) = (4u16, 1000u64, 2000u64, 32usize);
    let mut host = None;
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Flag(f) if net.accept(&f, &mut p)? => {}
            Arg::Flag(f) => match f.as_str() {
                "count" => count = p.parse(&f)?,
                "interval" => interval = p.parse(&f)?,
                "timeout" => timeout = p.parse(&f)?,
                "size" => size = p.parse(&f)?,
                _ => return Err(cli::unknown(&f)),
            },
            Arg::Positional(a) if host.is_none() => host = Some(a),
            Arg::Positional(a) => return Err(Failure::usage(format!("unexpected {a:?}"))),
        }
    }
    let host = host.ok_or_else(|| Failure::usage("give the HOST to ping"))?;
    if size > 65_000 {
        return Err(Failure::usage("--size must be at most 65000"));
    }
    net::run(&net, async |stack| {
        let target = net::resolve(stack, &host).await?;
        let payload: Vec<u8> = (0..size).map(pattern_byte).collect();
        let (mut rx_meta, mut tx_meta) = ([PacketMetadata::EMPTY; 4], [PacketMetadata::EMPTY; 4]);
        let (mut rx, mut tx) = (vec![0u8; size + 64], vec![0u8; size + 64]);
        let mut pinger = PingManager::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
        let mut params = PingParams::new(target);
        params
            .set_payload(&payload)
            .set_count(1)
            .set_timeout(Duration::from_millis(timeout))
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
                let next = started + Duration::from_millis(interval);
                Timer::at(next).await;
            }
        }
        let loss = 100.0 * f64::from(u32::from(count) - received) / f64::from(count.max(1));
        println!("{count} packets transmitted, {received} received, {loss:.0}% packet loss");
        if received == 0 {
            return Err(Failure::failed(format!("no reply from {target}")));
        }
        Ok(())
    })
}
