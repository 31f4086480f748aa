//! The firmware as a client: DNS lookups, HTTP GET, ping. Used by the command line and the
//! control port.

use core::fmt::Write as _;
use core::net::Ipv4Addr;

use embassy_time::{Duration, Instant};
use embedded_io_async::Write;

use crate::info;
use crate::net::dns::DnsQueryType;
use crate::net::icmp::PacketMetadata;
use crate::net::icmp::ping::{PingManager, PingParams};
use crate::net::tcp::TcpSocket;
use crate::net::{IpAddress, Stack};

/// A client operation's failure, for the log and the control port.
pub type Error = &'static str;

/// Resolve `host`: an IPv4 literal as is, anything else through DNS (A record).
pub async fn resolve(stack: Stack<'_>, host: &str) -> Result<IpAddress, Error> {
    if let Ok(a) = host.parse::<Ipv4Addr>() {
        return Ok(IpAddress::Ipv4(a));
    }
    match stack.dns_query(host, DnsQueryType::A).await {
        Ok(addrs) => addrs.first().copied().ok_or("no address"),
        Err(_) => Err("dns query failed"),
    }
}

/// What an HTTP GET brought back.
pub struct Response {
    /// The status code of the response.
    pub status: u16,
    /// Length of the body.
    pub body_len: usize,
    /// The first bytes of the body.
    pub body: heapless::Vec<u8, 256>,
}

/// `HOST:PORT/PATH` (port 80 when `:PORT` is left out).
fn split_url(spec: &str) -> Result<(&str, u16, &str), Error> {
    let (hostport, path) = match spec.find('/') {
        Some(i) => spec.split_at(i),
        None => (spec, "/"),
    };
    let (host, port) = match hostport.split_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| "bad port")?),
        None => (hostport, 80),
    };
    if host.is_empty() {
        return Err("no host");
    }
    Ok((host, port, path))
}

/// HTTP/1.0 GET of `HOST:PORT/PATH`; reads the whole response (to the peer's close).
pub async fn get(stack: Stack<'_>, spec: &str) -> Result<Response, Error> {
    let (host, port, path) = split_url(spec)?;
    let addr = resolve(stack, host).await?;
    let mut rx = [0u8; 4096];
    let mut tx = [0u8; 1024];
    let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
    socket.set_timeout(Some(Duration::from_secs(10)));
    socket
        .connect((addr, port))
        .await
        .map_err(|_| "connect failed")?;
    let mut req: heapless::String<300> = heapless::String::new();
    write!(req, "GET {} HTTP/1.0\r\nHost: {}\r\n\r\n", path, host).map_err(|_| "url too long")?;
    socket
        .write_all(req.as_bytes())
        .await
        .map_err(|_| "write failed")?;
    // Keep the head and the start of the body; count the rest.
    let mut head = [0u8; 1024];
    let mut len = 0;
    let mut total = 0;
    let mut body_start = None;
    let mut chunk = [0u8; 512];
    loop {
        let n = socket.read(&mut chunk).await.map_err(|_| "read failed")?;
        if n == 0 {
            break;
        }
        let keep = n.min(head.len() - len);
        head[len..len + keep].copy_from_slice(&chunk[..keep]);
        len += keep;
        total += n;
        if body_start.is_none() {
            body_start = head[..len]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 4);
        }
    }
    socket.close();
    let body_start = body_start.ok_or("no HTTP header")?;
    let status = head
        .get(9..12)
        .and_then(|s| core::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .filter(|_| head.starts_with(b"HTTP/1."))
        .ok_or("not an HTTP response")?;
    let mut body = heapless::Vec::new();
    let shown = &head[body_start..len];
    let _ = body.extend_from_slice(&shown[..shown.len().min(256)]);
    Ok(Response {
        status,
        body_len: total - body_start,
        body,
    })
}

/// Ping `host` three times; the average round-trip time.
pub async fn ping(stack: Stack<'_>, host: &str) -> Result<Duration, Error> {
    let addr = resolve(stack, host).await?;
    let (mut rx_meta, mut tx_meta) = ([PacketMetadata::EMPTY; 2], [PacketMetadata::EMPTY; 2]);
    let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
    let mut pinger = PingManager::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
    let mut params = PingParams::new(addr);
    params.set_count(3);
    params.set_payload(b"ferronet ping");
    params.set_timeout(Duration::from_secs(2));
    pinger.ping(&params).await.map_err(|_| "no reply")
}

/// `dns=NAME`: log `dns: NAME -> ADDRESS`; true on success.
pub async fn report_dns(stack: Stack<'_>, name: &str) -> bool {
    match resolve(stack, name).await {
        Ok(a) => {
            info!("dns: {} -> {}", name, a);
            true
        }
        Err(e) => {
            info!("dns: {} FAILED: {}", name, e);
            false
        }
    }
}

/// `get=HOST:PORT/PATH`: log the status, the body length and the start of the body; true
/// for a 200 response.
pub async fn report_get(stack: Stack<'_>, spec: &str) -> bool {
    let start = Instant::now();
    match get(stack, spec).await {
        Ok(r) => {
            info!(
                "get: {} -> status={} body_len={} ms={} body={:?}",
                spec,
                r.status,
                r.body_len,
                start.elapsed().as_millis(),
                core::str::from_utf8(&r.body).unwrap_or("(binary)")
            );
            r.status == 200
        }
        Err(e) => {
            info!("get: {} FAILED: {}", spec, e);
            false
        }
    }
}

/// `ping=ADDRESS`: log the average round-trip time; true when every request was answered.
pub async fn report_ping(stack: Stack<'_>, host: &str) -> bool {
    match ping(stack, host).await {
        Ok(rtt) => {
            info!(
                "ping: {} -> 3 replies, avg_rtt_us={}",
                host,
                rtt.as_micros()
            );
            true
        }
        Err(e) => {
            info!("ping: {} FAILED: {}", host, e);
            false
        }
    }
}
