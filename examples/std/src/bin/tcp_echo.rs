//! TCP echo server on a TAP or TUN interface, serving several connections at once.
//!
//! ```text
//! tcp-echo --tap tap0 --ip 192.0.2.2/24 --port 7 --count 3
//! ```

use std::cell::Cell;
use std::process::ExitCode;

use embassy_time::Duration;
use ferronet::Stack;
use ferronet::tcp::TcpSocket;
use ferronet_examples::cli::{self, Arg, Failure, Parser};
use ferronet_examples::exec::{BoxFuture, join_all, select};
use ferronet_examples::net::{self, NetArgs, pattern_byte};

const USAGE: &str = "\
tcp-echo: send every byte received on a TCP port back to its sender.

Usage: tcp-echo (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) [options]

Prints `listening on PORT` once it accepts connections, and one line per connection:
`closed PEER: N bytes echoed in S s (R MB/s)` (MB = 10^6 bytes).

Options:
  --port PORT     the port to listen on (default 7)
  --discard       only receive: count and drop the bytes (a discard server, for measuring
                  throughput); the lines say `received` instead of `echoed`
  --verify        with --discard: check that each connection sends the test pattern of
                  `tcp-client --bytes` (byte i is i mod 251); the line ends `, pattern
                  verified`, or reports the first wrong byte and the connection is reset
  --buffer BYTES  receive and send buffer of each socket (default 8192)
  --sockets N     connections served at the same time, 1 to 8 (default 8)
  --count N       exit (status 0) once N connections have been served (default: never)
  --timeout SECS  stop after SECS: status 0 without --count, 4 if fewer than --count
                  connections were served";

fn main() -> ExitCode {
    cli::main("tcp-echo", USAGE, body)
}

fn body(mut p: Parser) -> Result<(), Failure> {
    let mut net = NetArgs::default();
    let (mut port, mut sockets, mut count, mut timeout) = (7u16, 8usize, None, None);
    let mut opts = Opts {
        port: 7,
        discard: false,
        verify: false,
        buffer: 8192,
    };
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Flag(f) if net.accept(&f, &mut p)? => {}
            Arg::Flag(f) => match f.as_str() {
                "port" => port = p.parse(&f)?,
                "discard" => opts.discard = true,
                "verify" => opts.verify = true,
                "buffer" => opts.buffer = p.parse(&f)?,
                "sockets" => sockets = p.parse(&f)?,
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
    if opts.verify && !opts.discard {
        return Err(Failure::usage("--verify needs --discard"));
    }
    if !(64..=1 << 24).contains(&opts.buffer) {
        return Err(Failure::usage("--buffer must be 64 to 16777216"));
    }
    opts.port = port;
    net::run(&net, async |stack| {
        let served = Cell::new(0usize);
        let tasks: Vec<BoxFuture<'_, ()>> = (0..sockets)
            .map(|_| Box::pin(serve(stack, &opts, &served)) as BoxFuture<'_, ()>)
            .collect();
        // Polled after the tasks in the same pass, so it sees each new count at once.
        let enough = std::future::poll_fn(|_| match count {
            Some(n) if served.get() >= n => std::task::Poll::Ready(()),
            _ => std::task::Poll::Pending,
        });
        println!("listening on {port}");
        let serving = select(join_all(tasks), enough);
        match timeout {
            None => {
                let _ = serving.await;
            }
            Some(limit) => {
                if embassy_time::with_timeout(limit, serving).await.is_err() && count.is_some() {
                    return Err(Failure::timeout(format!(
                        "{} of {} connections served in {} s",
                        served.get(),
                        count.unwrap_or(0),
                        limit.as_secs()
                    )));
                }
            }
        }
        println!("served {} connections", served.get());
        Ok(())
    })
}

/// How each connection is served.
struct Opts {
    port: u16,
    discard: bool,
    verify: bool,
    buffer: usize,
}

/// Accepts connections one after the other and echoes (or with `discard`, drops) what each
/// sends until the peer closes it.
async fn serve(stack: Stack<'_>, opts: &Opts, served: &Cell<usize>) {
    let (port, discard) = (opts.port, opts.discard);
    let (mut rx, mut tx) = (vec![0u8; opts.buffer], vec![0u8; opts.buffer]);
    let mut buf = vec![0u8; 4096];
    loop {
        let mut s = TcpSocket::new(stack, &mut rx, &mut tx);
        // An idle peer that vanished does not hold the socket forever.
        s.set_timeout(Some(Duration::from_secs(60)));
        if let Err(e) = s.accept(port).await {
            println!("accept failed: {e:?}");
            continue;
        }
        let peer = s.remote_endpoint();
        let peer = peer.map_or_else(|| "?".to_string(), |p| p.to_string());
        println!("connection from {peer}");
        let started = std::time::Instant::now();
        let mut echoed = 0usize;
        let mut wrong = None;
        let result: Result<(), ferronet::tcp::Error> = async {
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                if discard {
                    if opts.verify
                        && let Some(k) = (0..n).find(|&k| buf[k] != pattern_byte(echoed + k))
                    {
                        wrong = Some((echoed + k, buf[k]));
                        s.abort();
                        return Ok(());
                    }
                    echoed += n;
                    continue;
                }
                let mut off = 0;
                while off < n {
                    off += s.write(&buf[off..n]).await?;
                }
                echoed += n;
            }
        }
        .await;
        if wrong.is_none() {
            s.close();
        }
        let _ = s.flush().await;
        let secs = started.elapsed().as_secs_f64();
        let rate = echoed as f64 / secs.max(1e-9) / 1e6;
        let what = if discard { "received" } else { "echoed" };
        let check = if opts.verify {
            ", pattern verified"
        } else {
            ""
        };
        match (result, wrong) {
            (_, Some((at, got))) => println!(
                "connection {peer} reset: byte {at} is {got}, the pattern has {}",
                pattern_byte(at)
            ),
            (Ok(()), None) => println!(
                "closed {peer}: {echoed} bytes {what} in {secs:.3} s ({rate:.2} MB/s){check}"
            ),
            (Err(e), None) => {
                println!("connection {peer} failed after {echoed} bytes {what}: {e:?}")
            }
        }
        served.set(served.get() + 1);
    }
}
