//! TCP client on a TAP or TUN interface: sends stdin or a test pattern, prints or checks what
//! comes back.
//!
//! ```text
//! tcp-client --tap tap0 --ip 192.0.2.2/24 --bytes 1000000 --verify 192.0.2.1:7
//! echo hello | tcp-client --tun tun0 --ip 192.0.2.2/24 192.0.2.1:7
//! ```

use std::cell::Cell;
use std::io::{Read, Write};

use clap::Parser;
use embassy_executor::Spawner;
use embassy_futures::join::join;
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::Duration;
use ferronet::IpEndpoint;
use ferronet::tcp::{ConnectError, TcpSocket};
use ferronet_examples::app::{self, EXIT_HELP, Failure};
use ferronet_examples::net::{self, NetArgs, pattern_byte};

/// tcp-client: connect to HOST:PORT, send data, and print (or check) what comes back.
///
/// Sends standard input (or --bytes N of a test pattern), then closes its sending half and
/// reads until the server closes the connection. HOST is an IP address ([...] for IPv6) or a
/// name looked up by DNS. Ends with `sent N bytes, received M bytes in S s (R MB/s)` on stderr
/// (MB = 10^6 bytes, the rate is of the bytes sent). If the interface's link goes down, stops
/// with status 3 and says how many bytes were sent and how many of them the peer acknowledged.
#[derive(Parser, Debug)]
#[command(
    name = "tcp-client",
    override_usage = "tcp-client (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) [OPTIONS] <HOST:PORT>",
    after_help = EXIT_HELP
)]
struct Args {
    /// The server: an IP address ([...] for IPv6) or a name, and a port
    #[arg(value_name = "HOST:PORT", value_parser = net::parse_host_port)]
    target: (String, u16),
    /// Send N bytes of a fixed pattern (byte i is i mod 251) instead of stdin
    #[arg(long, value_name = "N")]
    bytes: Option<usize>,
    /// Expect exactly the bytes sent back (an echo server) and check every one; prints a
    /// summary instead of the data. A mismatch exits with status 1
    #[arg(long, conflicts_with = "sink")]
    verify: bool,
    /// The server only receives (a discard server): nothing comes back, the summary gives
    /// the sending rate
    #[arg(long)]
    sink: bool,
    /// The socket's receive and send buffer
    #[arg(long, value_name = "BYTES", default_value_t = 16384,
          value_parser = clap::value_parser!(u32).range(64..=1 << 24))]
    buffer: u32,
    /// Give up after SECS
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    #[command(flatten)]
    net: NetArgs,
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

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = app::start();
    app::exit::<Args>(run(spawner, args).await).await
}

async fn run(spawner: Spawner, args: Args) -> Result<(), Failure> {
    let mode = match (args.verify, args.sink) {
        (true, _) => Mode::Verify,
        (false, true) => Mode::Sink,
        (false, false) => Mode::Print,
    };
    let (host, port) = (&args.target.0, args.target.1);
    let source = match args.bytes {
        Some(n) => Source::Pattern(n),
        None => {
            let mut data = Vec::new();
            std::io::stdin()
                .read_to_end(&mut data)
                .map_err(|e| Failure::failed(format!("reading stdin: {e}")))?;
            Source::Data(data)
        }
    };
    let buffer = args.buffer as usize;
    let ifname = args.net.tap.as_ref().or(args.net.tun.as_ref()).cloned();
    let ifname = ifname.unwrap_or_default();

    let stack = net::start(spawner, &args.net).await?;
    net::timed(Duration::from_secs(args.timeout), async {
        let addr = net::resolve(stack, host).await?;
        let remote = IpEndpoint::new(addr, port);
        let (mut rx, mut tx) = (vec![0u8; buffer], vec![0u8; buffer]);
        let mut s = TcpSocket::new(stack, &mut rx, &mut tx);
        // Bytes queued in the socket, and received.
        let (written, received) = (Cell::new(0usize), Cell::new(0usize));
        let transfer = transfer(&mut s, remote, &source, mode, &written, &received);
        let elapsed = match select(transfer, stack.wait_link_down()).await {
            Either::First(result) => result?,
            Either::Second(()) => {
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
    log::info!("connected to {remote}");
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
    {
        let sent_all = Signal::<NoopRawMutex, ()>::new();
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
            sent_all.signal(());
            Ok::<(), Failure>(())
        };
        let recv = async {
            let mut buf = vec![0u8; 4096];
            loop {
                match select(reader.read(&mut buf), sent_all.wait()).await {
                    Either::First(Ok(0)) | Either::Second(()) => return Ok(()),
                    Either::First(Ok(n)) => take(&buf[..n])?,
                    Either::First(Err(e)) => return Err(io_failure(e)),
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
