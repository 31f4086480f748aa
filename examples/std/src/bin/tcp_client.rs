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

Usage: tcp-client (--tap NAME | --tun NAME) (--ip CIDR | --dhcp) [options] HOST:PORT

Sends standard input (or --bytes N of a test pattern), then closes its sending half and
reads until the server closes the connection. HOST is an IP address ([...] for IPv6) or a
name looked up by DNS.

Options:
  --bytes N       send N bytes of a fixed pattern (byte i is i mod 251) instead of stdin
  --verify        expect exactly the bytes sent back (an echo server) and check every one;
                  prints a summary instead of the data. A mismatch exits with status 1
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
    let (mut bytes, mut verify, mut timeout, mut target) = (None, false, 30u64, None);
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Flag(f) if net.accept(&f, &mut p)? => {}
            Arg::Flag(f) => match f.as_str() {
                "bytes" => bytes = Some(p.parse::<usize>(&f)?),
                "verify" => verify = true,
                "timeout" => timeout = p.parse(&f)?,
                _ => return Err(cli::unknown(&f)),
            },
            Arg::Positional(a) if target.is_none() => target = Some(a),
            Arg::Positional(a) => return Err(Failure::usage(format!("unexpected {a:?}"))),
        }
    }
    let target = target.ok_or_else(|| Failure::usage("give HOST:PORT"))?;
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
    let limit = Duration::from_secs(timeout);

    net::run(&net, async |stack| {
        net::timed(limit, async {
            let addr = net::resolve(stack, host).await?;
            let remote = IpEndpoint::new(addr, port);
            let (mut rx, mut tx) = (vec![0u8; 16384], vec![0u8; 16384]);
            let mut s = TcpSocket::new(stack, &mut rx, &mut tx);
            s.connect(remote).await.map_err(|e| match e {
                ConnectError::ConnectionReset => {
                    Failure::failed(format!("{remote}: connection refused"))
                }
                ConnectError::TimedOut => Failure::timeout(format!("{remote}: connect timed out")),
                ConnectError::NoRoute => Failure::failed(format!("{remote}: no route")),
                e => Failure::failed(format!("{remote}: connect failed: {e:?}")),
            })?;
            eprintln!("connected to {remote}");

            let mut received = 0usize;
            let mut stdout = std::io::stdout().lock();
            let mut take = |data: &[u8]| -> Result<(), Failure> {
                if verify {
                    for (k, b) in data.iter().enumerate() {
                        if source.byte(received + k) != Some(*b) {
                            return Err(Failure::failed(format!(
                                "byte {} differs: got {b}, sent {:?}",
                                received + k,
                                source.byte(received + k)
                            )));
                        }
                    }
                } else {
                    stdout
                        .write_all(data)
                        .map_err(|e| Failure::failed(format!("stdout: {e}")))?;
                }
                received += data.len();
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
                            off += writer.write(&chunk[off..n]).await.map_err(io_failure)?;
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
            if verify && received != source.len() {
                return Err(Failure::failed(format!(
                    "sent {} bytes but {received} came back",
                    source.len()
                )));
            }
            eprintln!(
                "sent {} bytes, received {received} bytes{}",
                source.len(),
                if verify { ", all verified" } else { "" }
            );
            Ok(())
        })
        .await?
    })
}

fn io_failure(e: ferronet::tcp::Error) -> Failure {
    Failure::failed(format!("connection failed: {e:?}"))
}
