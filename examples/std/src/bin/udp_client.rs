//! UDP client on a TAP or TUN interface: sends numbered datagrams to an echo server and checks
//! that each one comes back.
//!
//! ```text
//! udp-client --tap tap0 --ip 192.0.2.2/24 --count 100 --size 1000 --verify 192.0.2.1:7
//! ```

use clap::Parser;
use embassy_executor::Spawner;
use embassy_time::{Duration, with_timeout};
use ferronet::IpEndpoint;
use ferronet::udp::{PacketMetadata, SendError, UdpSocket};
use ferronet_examples::app::{self, EXIT_HELP, Failure};
use ferronet_examples::net::{self, NetArgs, pattern_byte};

/// udp-client: send datagrams to a UDP echo server at HOST:PORT and check that each comes back.
///
/// Datagram k (from 0) starts with k as a 4-byte big-endian number; its byte i (from 4 on) is
/// (k + i) mod 251. Each is sent once its predecessor's echo came back; a datagram whose echo
/// does not come within --timeout is sent again, up to --retries times. Prints `N datagrams of
/// S bytes echoed [and verified] (R resent)` at the end; exits with status 1 if a datagram got
/// no echo (or, with --verify, a wrong one).
#[derive(Parser, Debug)]
#[command(
    name = "udp-client",
    override_usage = "udp-client (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) [OPTIONS] <HOST:PORT>",
    after_help = EXIT_HELP
)]
struct Args {
    /// The echo server: an IP address ([...] for IPv6) or a name, and a port
    #[arg(value_name = "HOST:PORT", value_parser = net::parse_host_port)]
    target: (String, u16),
    /// Datagrams to send
    #[arg(long, value_name = "N", default_value_t = 10)]
    count: u32,
    /// Bytes per datagram, 4 to 65000; a datagram larger than the link carries (MTU - 28
    /// bytes over IPv4, MTU - 48 over IPv6; 4068 over IPv4 when built with the feature
    /// ipv4-fragmentation) fails at once
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(4..=65_000))]
    size: u16,
    /// Check every byte of each echo, not only its number
    #[arg(long)]
    verify: bool,
    /// How long to wait for each echo
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    timeout: u64,
    /// How often to resend a datagram that got no echo
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: u32,
    #[command(flatten)]
    net: NetArgs,
}

/// Datagram `seq` of `size` bytes.
fn datagram(seq: u32, size: usize) -> Vec<u8> {
    let mut d: Vec<u8> = (0..size).map(|i| pattern_byte(seq as usize + i)).collect();
    d[..4].copy_from_slice(&seq.to_be_bytes());
    d
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = app::start();
    app::exit::<Args>(run(spawner, args).await).await
}

async fn run(spawner: Spawner, args: Args) -> Result<(), Failure> {
    let (count, size, verify) = (args.count, usize::from(args.size), args.verify);
    let wait = Duration::from_millis(args.timeout);
    let stack = net::start(spawner, &args.net).await?;
    let remote = IpEndpoint::new(net::resolve(stack, &args.target.0).await?, args.target.1);
    let (mut rx_meta, mut tx_meta) = ([PacketMetadata::EMPTY; 8], [PacketMetadata::EMPTY; 8]);
    let (mut rx, mut tx) = (vec![0u8; 2 * size + 64], vec![0u8; 2 * size + 64]);
    let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
    socket
        .bind(0)
        .map_err(|e| Failure::failed(format!("bind: {e:?}")))?;
    let mut buf = vec![0u8; size + 64];
    let mut resent = 0u32;
    for seq in 0..count {
        let sent = datagram(seq, size);
        let mut tries = 0;
        let echo = loop {
            if tries > args.retries {
                return Err(Failure::failed(format!(
                    "no echo of datagram {seq} from {remote} after {tries} tries"
                )));
            }
            tries += 1;
            socket.send_to(&sent, remote).await.map_err(|e| match e {
                SendError::PacketTooLarge => net::too_large(&format!("send to {remote}"), size),
                e => Failure::failed(format!("send to {remote}: {e}")),
            })?;
            // Wait for this datagram's echo; late echoes of earlier ones are skipped.
            let got = with_timeout(wait, async {
                loop {
                    match socket.recv_from(&mut buf).await {
                        Ok((n, meta))
                            if meta.endpoint == remote
                                && n >= 4
                                && buf[..4] == seq.to_be_bytes() =>
                        {
                            return Ok(n);
                        }
                        Ok(_) => {}
                        Err(e) => return Err(Failure::failed(format!("receive: {e:?}"))),
                    }
                }
            })
            .await;
            match got {
                Ok(n) => break n?,
                Err(_) => resent += 1,
            }
        };
        if verify && buf[..echo] != sent[..] {
            let at = (0..echo.min(size))
                .find(|&i| buf[i] != sent[i])
                .unwrap_or(0);
            return Err(Failure::failed(format!(
                "datagram {seq}: echo of {echo} bytes differs from the {size} sent (byte {at})"
            )));
        }
    }
    println!(
        "{count} datagrams of {size} bytes echoed{} ({resent} resent)",
        if verify { " and verified" } else { "" }
    );
    Ok(())
}
