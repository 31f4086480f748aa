//! UDP client on a TAP or TUN interface: sends numbered datagrams to an echo server and checks
//! that each one comes back.
//!
//! ```text
//! udp-client --tap tap0 --ip 192.0.2.2/24 --count 100 --size 1000 --verify 192.0.2.1:7
//! ```

use std::process::ExitCode;

use embassy_time::{Duration, with_timeout};
use ferronet::IpEndpoint;
use ferronet::udp::{PacketMetadata, SendError, UdpSocket};
use ferronet_examples::cli::{self, Arg, Failure, Parser};
use ferronet_examples::net::{self, NetArgs, pattern_byte};

const USAGE: &str = "\
udp-client: send datagrams to a UDP echo server at HOST:PORT and check that each comes back.

Usage: udp-client (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) [options] HOST:PORT

Datagram k (from 0) starts with k as a 4-byte big-endian number; its byte i (from 4 on) is
(k + i) mod 251. Each is sent once its predecessor's echo came back; a datagram whose echo
does not come within --timeout is sent again, up to --retries times. Prints `N datagrams of
S bytes echoed [and verified] (R resent)` at the end; exits with status 1 if a datagram got
no echo (or, with --verify, a wrong one).

Options:
  --count N       datagrams to send (default 10)
  --size N        bytes per datagram, 4 to 65000 (default 64); a datagram larger than the
                  link carries (MTU - 28 bytes over IPv4, MTU - 48 over IPv6; 4068 over IPv4
                  when built with the feature ipv4-fragmentation) fails at once
  --verify        check every byte of each echo, not only its number
  --timeout MS    how long to wait for each echo (default 1000)
  --retries N     how often to resend a datagram that got no echo (default 3)";

fn main() -> ExitCode {
    cli::main("udp-client", USAGE, body)
}

/// Datagram `seq` of `size` bytes.
fn datagram(seq: u32, size: usize) -> Vec<u8> {
    let mut d: Vec<u8> = (0..size).map(|i| pattern_byte(seq as usize + i)).collect();
    d[..4].copy_from_slice(&seq.to_be_bytes());
    d
}

fn body(mut p: Parser) -> Result<(), Failure> {
    let mut net = NetArgs::default();
    let (mut count, mut size, mut verify, mut timeout, mut retries) =
        (10u32, 64usize, false, 1000u64, 3u32);
    let mut target = None;
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Flag(f) if net.accept(&f, &mut p)? => {}
            Arg::Flag(f) => match f.as_str() {
                "count" => count = p.parse(&f)?,
                "size" => size = p.parse(&f)?,
                "verify" => verify = true,
                "timeout" => timeout = p.parse(&f)?,
                "retries" => retries = p.parse(&f)?,
                _ => return Err(cli::unknown(&f)),
            },
            Arg::Positional(a) if target.is_none() => target = Some(a),
            Arg::Positional(a) => return Err(Failure::usage(format!("unexpected {a:?}"))),
        }
    }
    let target = target.ok_or_else(|| Failure::usage("give HOST:PORT"))?;
    let (host, port) = net::split_host_port(&target)?;
    if !(4..=65_000).contains(&size) {
        return Err(Failure::usage("--size must be 4 to 65000"));
    }
    let wait = Duration::from_millis(timeout);
    net::run(&net, async |stack| {
        let remote = IpEndpoint::new(net::resolve(stack, host).await?, port);
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
                if tries > retries {
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
    })
}
