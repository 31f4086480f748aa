//! UDP echo server on a TAP or TUN interface.
//!
//! ```text
//! udp-echo --tun tun0 --ip 192.0.2.2/24 --ip 2001:db8::2/64 --port 7 --count 10
//! ```

use std::net::IpAddr;
use std::process::ExitCode;

use embassy_time::Duration;
use ferronet::udp::{PacketMetadata, UdpSocket};
use ferronet_examples::cli::{self, Arg, Failure, Parser};
use ferronet_examples::net::{self, NetArgs};

const USAGE: &str = "\
udp-echo: answer every UDP datagram received on a port with the same bytes.

Usage: udp-echo (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) [options]

Prints `listening on PORT` once it receives, and a summary at the end.

Options:
  --port PORT     the port to listen on (default 7)
  --join GROUP    join the multicast group GROUP (IPv4 or IPv6; may be repeated): the stack
                  sends an IGMP or MLD membership report and echoes datagrams sent to it
  --count N       exit (status 0) after echoing N datagrams (default: never)
  --timeout SECS  stop after SECS: status 0 without --count, 4 if fewer than --count
                  datagrams were echoed";

fn main() -> ExitCode {
    cli::main("udp-echo", USAGE, body)
}

fn body(mut p: Parser) -> Result<(), Failure> {
    let mut net = NetArgs::default();
    let (mut port, mut count, mut timeout) = (7u16, None, None);
    let mut groups: Vec<IpAddr> = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Flag(f) if net.accept(&f, &mut p)? => {}
            Arg::Flag(f) => match f.as_str() {
                "port" => port = p.parse(&f)?,
                "join" => match p.parse::<IpAddr>(&f)? {
                    g if g.is_multicast() => groups.push(g),
                    g => return Err(Failure::usage(format!("--join {g}: not a multicast group"))),
                },
                "count" => count = Some(p.parse::<u64>(&f)?),
                "timeout" => timeout = Some(Duration::from_secs(p.parse(&f)?)),
                _ => return Err(cli::unknown(&f)),
            },
            Arg::Positional(a) => return Err(Failure::usage(format!("unexpected {a:?}"))),
        }
    }
    if port == 0 {
        return Err(Failure::usage("--port must not be 0"));
    }
    net::run(&net, async |stack| {
        let (mut rx_meta, mut tx_meta) = ([PacketMetadata::EMPTY; 16], [PacketMetadata::EMPTY; 16]);
        let (mut rx, mut tx) = (vec![0u8; 65536], vec![0u8; 65536]);
        let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
        socket
            .bind(port)
            .map_err(|e| Failure::failed(format!("bind port {port}: {e:?}")))?;
        for &group in &groups {
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
        let result = match timeout {
            None => echo.await,
            Some(limit) => match embassy_time::with_timeout(limit, echo).await {
                Ok(r) => r,
                Err(_) if count.is_none() => Ok(()),
                Err(_) => Err(Failure::timeout(format!(
                    "only {echoed} of {} datagrams in {} s",
                    count.unwrap_or(0),
                    limit.as_secs()
                ))),
            },
        };
        socket.flush().await;
        println!("echoed {echoed} datagrams");
        result
    })
}
