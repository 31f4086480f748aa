//! The control port: one line per command, one line per answer (`ok ...` or `err ...`).
//!
//! | command | answer |
//! |---|---|
//! | `stats` | `ok polls=P rx=R tx=T txfull=F link=up\|down http=N busy_ns=B driver=...` |
//! | `dns NAME` | `ok ADDRESS` |
//! | `get HOST:PORT/PATH` | `ok status=S body_len=N` |
//! | `ping ADDRESS` | `ok avg_rtt_us=N` |
//! | `spin N` | `ok busy_ns=B`: the busy time of a loop of 2N instructions (calibration) |
//! | `exit CODE` | `ok`, then QEMU exits with status 0 (CODE 0) or 1 |
//! | `reboot` | `ok`, then the board resets |

use core::fmt::Write as _;
use core::sync::atomic::Ordering;

use embassy_time::Duration;
use embedded_io_async::Write;

use crate::net::Stack;
use crate::net::tcp::TcpSocket;
use crate::{board, client, info, net_irq, status};

/// TCP port of the control connection.
pub const PORT: u16 = 23;

/// Serve control connections, one at a time.
#[embassy_executor::task]
pub async fn task(stack: Stack<'static>) {
    let mut rx = [0u8; 512];
    let mut tx = [0u8; 512];
    loop {
        let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
        socket.set_timeout(Some(Duration::from_secs(120)));
        if socket.accept(PORT).await.is_err() {
            continue;
        }
        let _ = serve(stack, &mut socket).await;
        socket.close();
        let _ = socket.flush().await;
    }
}

async fn serve(stack: Stack<'_>, socket: &mut TcpSocket<'_>) -> Result<(), ()> {
    let mut line = [0u8; 256];
    let mut len = 0;
    loop {
        // One line at a time; a line that does not fit is an error.
        let Some(end) = line[..len].iter().position(|&b| b == b'\n') else {
            if len == line.len() {
                return reply(socket, "err line too long").await;
            }
            match socket.read(&mut line[len..]).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => len += n,
            }
            continue;
        };
        let mut answer: heapless::String<256> = heapless::String::new();
        let text = core::str::from_utf8(&line[..end]).unwrap_or("").trim();
        let after = run(stack, text, &mut answer).await;
        reply(socket, &answer).await?;
        match after {
            After::Continue => {}
            After::Exit(ok) => {
                let _ = socket.flush().await;
                board::exit(ok)
            }
            After::Reboot => {
                let _ = socket.flush().await;
                board::reboot()
            }
        }
        line.copy_within(end + 1..len, 0);
        len -= end + 1;
    }
}

enum After {
    Continue,
    Exit(bool),
    Reboot,
}

async fn run(stack: Stack<'_>, text: &str, out: &mut heapless::String<256>) -> After {
    let (cmd, arg) = text.split_once(' ').unwrap_or((text, ""));
    let arg = arg.trim();
    let _ = match cmd {
        "stats" => {
            let [polls, rx, tx, full] = status::stack_counters(stack);
            write!(
                out,
                "ok polls={} rx={} tx={} txfull={} link={} http={} busy_ns={} driver={:?}",
                polls,
                rx,
                tx,
                full,
                if stack.is_link_up() { "up" } else { "down" },
                status::HTTP_REQUESTS.load(Ordering::Relaxed),
                board::busy_ns(),
                net_irq::STATE.counters()
            )
        }
        "dns" => match client::resolve(stack, arg).await {
            Ok(a) => write!(out, "ok {}", a),
            Err(e) => write!(out, "err {}", e),
        },
        "get" => match client::get(stack, arg).await {
            Ok(r) => write!(out, "ok status={} body_len={}", r.status, r.body_len),
            Err(e) => write!(out, "err {}", e),
        },
        "ping" => match client::ping(stack, arg).await {
            Ok(rtt) => write!(out, "ok avg_rtt_us={}", rtt.as_micros()),
            Err(e) => write!(out, "err {}", e),
        },
        "spin" => match arg.parse::<u32>() {
            Ok(n) => {
                let t0 = board::busy_ns();
                board::spin(n);
                write!(out, "ok busy_ns={}", board::busy_ns() - t0)
            }
            Err(_) => write!(out, "err spin needs a count"),
        },
        "exit" => {
            info!("control: exit {}", arg);
            let _ = out.push_str("ok");
            return After::Exit(arg == "0");
        }
        "reboot" => {
            let _ = out.push_str("ok");
            return After::Reboot;
        }
        _ => write!(out, "err unknown command"),
    };
    After::Continue
}

async fn reply(socket: &mut TcpSocket<'_>, answer: &str) -> Result<(), ()> {
    socket.write_all(answer.as_bytes()).await.map_err(drop)?;
    socket.write_all(b"\n").await.map_err(drop)
}
