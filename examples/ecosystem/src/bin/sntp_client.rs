//! sntpc, the SNTP client, on ferronet through sntpc-net-embassy (which wraps an
//! `embassy_net::udp::UdpSocket`, here ferronet's): asks an NTP server for the time and
//! prints the server's time, its stratum, the round trip and this host clock's offset from it.
//!
//! ```text
//! sntp-client --tap tap0 --server 192.0.2.1 [--max-offset-ms 10]
//! ```
//!
//! Prints `stratum S`, `offset_us N` and `roundtrip_us N` on stdout. Exit status 0 when an
//! answer came and the offset is within `--max-offset-ms`, 1 otherwise.

use std::net::{Ipv4Addr, SocketAddr};

use embassy_executor::Spawner;
use embassy_net::Stack;
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_time::{Duration, with_timeout};
use ferronet_ecosystem::{NetArgs, init, run};
use sntpc::{NtpContext, StdTimestampGen};
use sntpc_net_embassy::UdpSocketWrapper;

/// sntpc on ferronet: the time from an NTP server.
#[derive(Debug, clap::Parser)]
#[command(version, long_about = None)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// The NTP server's address.
    #[arg(long)]
    server: Ipv4Addr,
    /// The NTP server's port.
    #[arg(long, default_value_t = 123)]
    port: u16,
    /// The largest offset from the server accepted, in milliseconds.
    #[arg(long, default_value_t = 10)]
    max_offset_ms: u64,
    /// How long to wait for the answer, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = init();
    run(spawner, &args.net, async |stack| query(stack, &args).await).await
}

/// How many times the server is asked; the answer with the shortest round trip is used, as NTP
/// clients do: the first exchange also waits for the server's link address (ARP), which makes
/// its round trip, and so its offset estimate, long and lopsided.
const SAMPLES: usize = 3;

/// Asks the server [`SAMPLES`] times and checks the offset of the best answer.
async fn query(stack: Stack<'static>, args: &Args) -> Result<(), String> {
    let (mut rx_meta, mut tx_meta) = ([PacketMetadata::EMPTY; 4], [PacketMetadata::EMPTY; 4]);
    let (mut rx, mut tx) = ([0u8; 512], [0u8; 512]);
    let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
    socket.bind(0).map_err(|e| format!("bind: {e:?}"))?;
    let socket = UdpSocketWrapper::new(socket);
    let server = SocketAddr::from((args.server, args.port));
    let mut best: Option<sntpc::NtpResult> = None;
    for _ in 0..SAMPLES {
        let context = NtpContext::new(StdTimestampGen::default());
        let time = with_timeout(
            Duration::from_secs(args.timeout),
            sntpc::get_time(server, &socket, context),
        )
        .await
        .map_err(|_| format!("no answer from {server} in {} s", args.timeout))?
        .map_err(|e| format!("sntpc: {e:?}"))?;
        if best.is_none_or(|b| time.roundtrip < b.roundtrip) {
            best = Some(time);
        }
    }
    let time = best.ok_or("no answer")?;
    println!("seconds {}", time.sec());
    println!("stratum {}", time.stratum);
    println!("offset_us {}", time.offset);
    println!("roundtrip_us {}", time.roundtrip);
    if time.offset.unsigned_abs() <= args.max_offset_ms * 1000 {
        Ok(())
    } else {
        Err(format!(
            "offset {} us is over {} ms",
            time.offset, args.max_offset_ms
        ))
    }
}
