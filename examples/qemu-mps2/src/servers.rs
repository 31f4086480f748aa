//! The servers: HTTP status page on port 80, TCP and UDP echo on port 7.

use core::fmt::Write as _;
use core::sync::atomic::Ordering;

use embassy_time::{Duration, with_timeout};
use embedded_io_async::Write;

use crate::net::Stack;
use crate::net::tcp::TcpSocket;
use crate::net::udp::{PacketMetadata, UdpSocket};
use crate::status;

/// Port of the HTTP status page.
pub const HTTP_PORT: u16 = 80;
/// Port of the TCP and UDP echo services.
pub const ECHO_PORT: u16 = 7;
/// A connection with no traffic for this long is aborted.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing connection may take to say goodbye.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Close our side, send what is queued, and wait (bounded) for the peer's FIN.
async fn close_gracefully(socket: &mut TcpSocket<'_>) {
    socket.close();
    let mut sink = [0u8; 64];
    let _ = with_timeout(CLOSE_TIMEOUT, async {
        let _ = socket.flush().await;
        while let Ok(n) = socket.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// One of the `HTTP_TASKS` tasks serving the status page, one connection at a time.
#[embassy_executor::task(pool_size = crate::HTTP_TASKS)]
pub async fn http_task(stack: Stack<'static>, _id: usize) {
    let mut rx = [0u8; 1024];
    let mut tx = [0u8; 2048];
    loop {
        let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
        socket.set_timeout(Some(IDLE_TIMEOUT));
        if socket.accept(HTTP_PORT).await.is_err() {
            continue;
        }
        let _ = serve_http(stack, &mut socket).await;
        close_gracefully(&mut socket).await;
    }
}

/// Read one request and answer it.
async fn serve_http(stack: Stack<'_>, socket: &mut TcpSocket<'_>) -> Result<(), ()> {
    let mut req = [0u8; 512];
    let mut len = 0;
    // Read up to the end of the header (or a full buffer).
    while !req[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        if len == req.len() {
            return respond(socket, "431 Request Header Fields Too Large", "too large\n").await;
        }
        match socket.read(&mut req[len..]).await {
            Ok(0) | Err(_) => return Err(()),
            Ok(n) => len += n,
        }
    }
    let line = req[..len].split(|&b| b == b'\r').next().unwrap_or(&[]);
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (words.next(), words.next());
    let path = path.and_then(|p| core::str::from_utf8(p).ok());
    let (Some(b"GET"), Some(path)) = (method, path) else {
        return respond(socket, "400 Bad Request", "only GET is served\n").await;
    };
    status::HTTP_REQUESTS.fetch_add(1, Ordering::Relaxed);
    let mut body: heapless::String<1024> = heapless::String::new();
    if status::render(stack, path, &mut body).is_err() {
        return respond(socket, "500 Internal Server Error", "page too large\n").await;
    }
    respond(socket, "200 OK", &body).await
}

async fn respond(socket: &mut TcpSocket<'_>, status: &str, body: &str) -> Result<(), ()> {
    let mut head: heapless::String<160> = heapless::String::new();
    write!(
        head,
        "HTTP/1.0 {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        status,
        body.len()
    )
    .map_err(drop)?;
    socket.write_all(head.as_bytes()).await.map_err(drop)?;
    socket.write_all(body.as_bytes()).await.map_err(drop)
}

/// One of the `ECHO_TASKS` TCP echo tasks.
#[embassy_executor::task(pool_size = crate::ECHO_TASKS)]
pub async fn tcp_echo_task(stack: Stack<'static>) {
    let mut rx = [0u8; 8192];
    let mut tx = [0u8; 8192];
    let mut buf = [0u8; 2048];
    loop {
        let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
        socket.set_timeout(Some(IDLE_TIMEOUT));
        if socket.accept(ECHO_PORT).await.is_err() {
            continue;
        }
        loop {
            match socket.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if let Err(e) = socket.write_all(&buf[..n]).await {
                        crate::info!("tcp echo: write: {:?}", e);
                        break;
                    }
                }
                Err(e) => {
                    crate::info!("tcp echo: read: {:?}", e);
                    break;
                }
            }
        }
        close_gracefully(&mut socket).await;
    }
}

/// UDP echo: every datagram to port 7 goes back to its sender.
#[embassy_executor::task]
pub async fn udp_echo_task(stack: Stack<'static>) {
    let mut rx_meta = [PacketMetadata::EMPTY; 8];
    let mut tx_meta = [PacketMetadata::EMPTY; 8];
    let mut rx = [0u8; 4096];
    let mut tx = [0u8; 4096];
    let mut buf = [0u8; 1500];
    let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
    if socket.bind(ECHO_PORT).is_err() {
        crate::info!("udp echo: cannot bind port {}", ECHO_PORT);
        return;
    }
    loop {
        if let Ok((n, meta)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], meta.endpoint).await;
        }
    }
}
