//! TCP echo server with a listen backlog (`ferronet::tcp::listener::TcpListener`) on a TAP or
//! TUN interface: clients that connect while every socket is busy wait in the backlog
//! instead of being reset.
//!
//! ```text
//! tcp-server --tap tap0 --ip 192.0.2.2/24 --port 7 --sockets 4
//! ```

use std::cell::Cell;
use std::process::ExitCode;

use embassy_time::Duration;
use ferronet::Stack;
use ferronet::tcp::TcpSocket;
use ferronet::tcp::listener::{BACKLOG, TcpListener};
use ferronet_examples::cli::{self, Arg, Failure, Parser};
use ferronet_examples::exec::{BoxFuture, join_all, select};
use ferronet_examples::net::{self, NetArgs};

const USAGE: &str = "\
tcp-server: a TCP echo server with a listen backlog.

Usage: tcp-server (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) [options]

A TcpListener holds the SYNs of clients that connect while all sockets are busy (up to the
backlog, 4 held SYNs); each socket takes the next one when it is free. Prints
`listening on PORT (N sockets, backlog B)` once it accepts connections, one line per
connection (`closed PEER: N bytes echoed`), and `served N connections, F failed` at the end.

Options:
  --port PORT     the port to listen on (default 7)
  --sockets N     connections served at the same time, 1 to 8 (default 4)
  --buffer BYTES  receive and send buffer of each socket (default 4096)
  --count N       exit (status 0) once N connections have been served (default: never)
  --timeout SECS  stop after SECS: status 0 without --count, 4 if fewer than --count
                  connections were served";

fn main() -> ExitCode {
    cli::main("tcp-server", USAGE, body)
}

fn body(mut p: Parser) -> Result<(), Failure> {
    let mut net = NetArgs::default();
    let (mut port, mut sockets, mut buffer) = (7u16, 4usize, 4096usize);
    let (mut count, mut timeout) = (None, None);
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Flag(f) if net.accept(&f, &mut p)? => {}
            Arg::Flag(f) => match f.as_str() {
                "port" => port = p.parse(&f)?,
                "sockets" => sockets = p.parse(&f)?,
                "buffer" => buffer = p.parse(&f)?,
                "count" => count = Some(p.parse::<usize>(&f)?),
                "timeout" => timeout = Some(Duration::from_secs(p.parse(&f)?)),
                _ => return Err(cli::unknown(&f)),
            },
            Arg::Positional(a) => return Err(Failure::usage(format!("unexpected {a:?}"))),
        }
    }
    if !(1..=8).contains(&sockets) {
        return Err(Failure::usage("--sockets must be 1 to 8"));
    }
    if port == 0 {
        return Err(Failure::usage("--port must not be 0"));
    }
    if !(64..=1 << 24).contains(&buffer) {
        return Err(Failure::usage("--buffer must be 64 to 16777216"));
    }
    net::run(&net, async |stack| {
        let mut listener =
            TcpListener::new(stack).map_err(|e| Failure::failed(format!("listener: {e}")))?;
        listener
            .listen(port)
            .map_err(|e| Failure::failed(format!("listen on {port}: {e}")))?;
        let (served, failed) = (Cell::new(0usize), Cell::new(0usize));
        let tasks: Vec<BoxFuture<'_, ()>> = (0..sockets)
            .map(|_| {
                Box::pin(serve(stack, &listener, buffer, &served, &failed)) as BoxFuture<'_, ()>
            })
            .collect();
        let enough = std::future::poll_fn(|_| match count {
            Some(n) if served.get() >= n => std::task::Poll::Ready(()),
            _ => std::task::Poll::Pending,
        });
        println!("listening on {port} ({sockets} sockets, backlog {BACKLOG})");
        let serving = select(join_all(tasks), enough);
        let finished = match timeout {
            None => {
                let _ = serving.await;
                true
            }
            Some(limit) => embassy_time::with_timeout(limit, serving).await.is_ok(),
        };
        println!(
            "served {} connections, {} failed",
            served.get(),
            failed.get()
        );
        match count {
            Some(n) if !finished && served.get() < n => Err(Failure::timeout(format!(
                "{} of {n} connections served in {} s",
                served.get(),
                timeout.map_or(0, |t| t.as_secs())
            ))),
            _ => Ok(()),
        }
    })
}

/// Takes connection requests from `listener` one after the other and echoes each connection
/// until the peer closes it.
async fn serve(
    stack: Stack<'_>,
    listener: &TcpListener<'_>,
    buffer: usize,
    served: &Cell<usize>,
    failed: &Cell<usize>,
) {
    let (mut rx, mut tx) = (vec![0u8; buffer], vec![0u8; buffer]);
    let mut buf = vec![0u8; 4096];
    loop {
        let token = match listener.accept().await {
            Ok(t) => t,
            Err(e) => {
                println!("accept failed: {e:?}");
                return;
            }
        };
        let peer = token.remote_endpoint();
        let mut s = TcpSocket::new(stack, &mut rx, &mut tx);
        // An idle peer that vanished does not hold the socket forever.
        s.set_timeout(Some(Duration::from_secs(60)));
        if let Err(e) = s.accept_token(token).await {
            println!("connection from {peer} failed: {e:?}");
            failed.set(failed.get() + 1);
            continue;
        }
        let mut echoed = 0usize;
        let result: Result<(), ferronet::tcp::Error> = async {
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                let mut off = 0;
                while off < n {
                    off += s.write(&buf[off..n]).await?;
                }
                echoed += n;
            }
        }
        .await;
        s.close();
        let flushed = s.flush().await;
        match result.and(flushed) {
            Ok(()) => println!("closed {peer}: {echoed} bytes echoed"),
            Err(e) => {
                println!("connection {peer} failed after {echoed} bytes echoed: {e:?}");
                failed.set(failed.get() + 1);
            }
        }
        served.set(served.get() + 1);
    }
}
