//! TCP client on a TAP or TUN interface: sends stdin or a test pattern, prints or checks what
//! comes back.
//!
//! ```text
//! tcp-client --tap tap0 --ip 192.0.2.2/24 --bytes 1000000 --verify 192.0.2.1:7
//! echo hello | tcp-client --tun tun0 --ip 192.0.2.2/24 192.0.2.1:7
//! ```

use std::cell::Cell;
use std::future::poll_fn;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::task::Poll;

use embassy_time::Duration;
use ferronet::IpEndpoint;
use ferronet::tcp::{ConnectError, TcpSocket};
use ferronet_examples::cli::{self, Arg, Failure, Parser};
use ferronet_examples::exec::{join, select};
use ferronet_examples::net::{self, NetArgs, pattern_byte};

const USAGE: &str = "\
tcp-client: connect to HOST:PORT, send data, and print (or check) what comes back.

Usage: tcp-client (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) [options] HOST:PORT

Sends standard input (or --bytes N of a test pattern), then closes its sending half and
reads until the server closes the connection. HOST is an IP address ([...] for IPv6) or a
name looked up by DNS. Ends with `sent N bytes, received M bytes in S s (R MB/s)` on stderr
(MB = 10^6 bytes, the rate is of the bytes sent). If the interface's link goes down, stops
with status 3 and says how many bytes were sent and how many of them the peer acknowledged.

Options:
  --bytes N       send N bytes of a fixed pattern (byte i is i mod 251) instead of stdin
  --verify        expect exactly the bytes sent back (an echo server) and check every one;
                  prints a summary instead of the data. A mismatch exits with status 1
  --sink          the server only receives (a discard server): nothing comes back, the
                  summary gives the sending rate
  --buffer BYTES  the socket's receive and send buffer (default 16384)
  --timeout SECS  give up after SECS (default 30)";

fn main() -> ExitCode {
    cli::main("tcp-client", USAGE, body)
}

/// What to send.
enum Source {
    Pattern(usize),
    Data(Vec<u8>),
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::Pattern(n) => *n,
            Source::Data(d) => d.len(),
        }
    }

    /// Bytes `from..from + buf.len()` (clamped) into `buf`; returns how many.
    fn fill(&self, from: usize, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.len() - from);
        match self {
            Source::Pattern(_) => {
                for (k, b) in buf[..n].iter_mut().enumerate() {
                    *b = pattern_byte(from + k);
                }
            }
            Source::Data(d) => buf[..n].copy_from_slice(&d[from..from + n]),
        }
        n
    }

    fn byte(&self, i: usize) -> Option<u8> {
        match self {
            Source::Pattern(n) => (i < *n).then(|| pattern_byte(i)),
            Source::Data(d) => d.get(i).copied(),
        }
    }
}

fn body(mut p: Parser) -> Result<(), Failure> {
    let mut net = NetArgs::default();
    let (mut bytes, mut verify, mut sink, mut timeout, mut target) =
        (None, false, false, 30u64, None);
    let mut buffer = 16384usize;
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Flag(f) if net.accept(&f, &mut p)? => {}
            Arg::Flag(f) => match f.as_str() {
                "bytes" => bytes = Some(p.parse::<usize>(&f)?),
                "verify" => verify = true,
                "sink" => sink = true,
                "buffer" => buffer = p.parse(&f)?,
                "timeout" => timeout = p.parse(&f)?,
                _ => return Err(cli::unknown(&f)),
            },
            Arg::Positional(a) if target.is_none() => target = Some(a),
            Arg::Positional(a) => return Err(Failure::usage(format!("unexpected {a:?}"))),
        }
    }
    let target = target.ok_or_else(|| Failure::usage("give HOST:PORT"))?;
    let mode = match (verify, sink) {
        (true, true) => return Err(Failure::usage("--verify and --sink exclude each other")),
        (true, false) => Mode::Verify,
        (false, true) => Mode::Sink,
        (false, false) => Mode::Print,
    };
    let (host, port) = net::split_host_port(&target)?;
    let source = match bytes {
        Some(n) => Source::Pattern(n),
        None => {
            let mut data = Vec::new();
            std::io::stdin()
                .read_to_end(&mut data)
                .map_err(|e| Failure::failed(format!("reading stdin: {e}")))?;
            Source::Data(data)
        }
    };
    if !(64..=1 << 24).contains(&buffer) {
        return Err(Failure::usage("--buffer must be 64 to 16777216"));
    }
    let limit = Duration::from_secs(timeout);
    let ifname = net
        .device
        .as_ref()
        .map_or(String::new(), |(_, n)| n.clone());

    net::run(&net, async |stack| {
        net::timed(limit, async {
            let addr = net::resolve(stack, host).await?;
            let remote = IpEndpoint::new(addr, port);
            let (mut rx, mut tx) = (vec![0u8; buffer], vec![0u8; buffer]);
            let mut s = TcpSocket::new(stack, &mut rx, &mut tx);
            // Bytes queued in the socket, and received.
            let (written, received) = (Cell::new(0usize), Cell::new(0usize));
            let run = transfer(&mut s, remote, &source, mode, &written, &received);
            let elapsed = match select(run, stack.wait_link_down()).await {
                Ok(result) => result?,
                Err(()) => {
                    let acked = written.get().saturating_sub(s.send_queue());
                    return Err(Failure::device(format!(
                        "the link of {ifname} went down: {} bytes sent, {acked} of them \
                         acknowledged by the peer, {} received",
                        written.get(),
                        received.get()
                    )));
                }
            };
            let received = received.get();
            if mode == Mode::Verify && received != source.len() {
                return Err(Failure::failed(format!(
                    "sent {} bytes but {received} came back",
                    source.len()
                )));
            }
            let secs = elapsed.as_secs_f64();
            eprintln!(
                "sent {} bytes, received {received} bytes{} in {secs:.3} s ({:.2} MB/s)",
                source.len(),
                if mode == Mode::Verify {
                    ", all verified"
                } else {
                    ""
                },
                source.len() as f64 / secs.max(1e-9) / 1e6,
            );
            Ok(())
        })
        .await?
    })
}

/// What to do with the data that comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Write it to stdout.
    Print,
    /// Check that it is what was sent (`--verify`).
    Verify,
    /// Expect none; count and drop anything (`--sink`).
    Sink,
}

/// Connects, sends `source` (counting the bytes queued in `written`) while taking what comes
/// back (counted in `received`), closes and waits for the peer to close. Returns the time from
/// the connection to the end.
async fn transfer(
    s: &mut TcpSocket<'_>,
    remote: IpEndpoint,
    source: &Source,
    mode: Mode,
    written: &Cell<usize>,
    received: &Cell<usize>,
) -> Result<std::time::Duration, Failure> {
    s.connect(remote).await.map_err(|e| match e {
        ConnectError::ConnectionReset => Failure::failed(format!("{remote}: connection refused")),
        ConnectError::TimedOut => Failure::timeout(format!("{remote}: connect timed out")),
        ConnectError::NoRoute => Failure::failed(format!("{remote}: no route")),
        e => Failure::failed(format!("{remote}: connect failed: {e:?}")),
    })?;
    eprintln!("connected to {remote}");
    let started = std::time::Instant::now();

    let mut stdout = std::io::stdout().lock();
    let mut take = |data: &[u8]| -> Result<(), Failure> {
        let at = received.get();
        match mode {
            Mode::Verify => {
                for (k, b) in data.iter().enumerate() {
                    if source.byte(at + k) != Some(*b) {
                        return Err(Failure::failed(format!(
                            "byte {} differs: got {b}, sent {:?}",
                            at + k,
                            source.byte(at + k)
                        )));
                    }
                }
            }
            Mode::Print => stdout
                .write_all(data)
                .map_err(|e| Failure::failed(format!("stdout: {e}")))?,
            Mode::Sink => {}
        }
        received.set(at + data.len());
        Ok(())
    };

    // Send everything while reading what comes back.
    let sent_all = Cell::new(false);
    {
        let (mut reader, mut writer) = s.split();
        let send = async {
            let mut chunk = vec![0u8; 4096];
            let mut sent = 0;
            while sent < source.len() {
                let n = source.fill(sent, &mut chunk);
                let mut off = 0;
                while off < n {
                    let k = writer.write(&chunk[off..n]).await.map_err(io_failure)?;
                    off += k;
                    written.set(written.get() + k);
                }
                sent += n;
            }
            writer.flush().await.map_err(io_failure)?;
            sent_all.set(true);
            Ok::<(), Failure>(())
        };
        let recv = async {
            let mut buf = vec![0u8; 4096];
            loop {
                let done = poll_fn(|_| {
                    if sent_all.get() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                });
                match select(reader.read(&mut buf), done).await {
                    Ok(Ok(0)) => return Ok(()),
                    Ok(Ok(n)) => take(&buf[..n])?,
                    Ok(Err(e)) => return Err(io_failure(e)),
                    Err(()) => return Ok(()),
                }
            }
        };
        let (sent, got) = join(send, recv).await;
        sent?;
        got?;
    }
    // Then close our half and read until the server closes its own.
    s.close();
    let mut buf = vec![0u8; 4096];
    loop {
        match s.read(&mut buf).await.map_err(io_failure)? {
            0 => break,
            n => take(&buf[..n])?,
        }
    }
    let _ = s.flush().await;
    let _ = stdout.flush();
    Ok(started.elapsed())
}

fn io_failure(e: ferronet::tcp::Error) -> Failure {
    Failure::failed(format!("connection failed: {e:?}"))
}
