//! TCP echo server on a TAP or TUN interface, serving several connections at once.
//!
//! ```text
//! tcp-echo --tap tap0 --ip 192.0.2.2/24 --port 7 --count 3
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use embassy_executor::Spawner;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, with_timeout};
use ferronet::Stack;
use ferronet::tcp::TcpSocket;
use ferronet_examples::app::{self, EXIT_HELP, Failure};
use ferronet_examples::net::{self, NetArgs, pattern_byte};
use static_cell::StaticCell;

/// The most connections served at the same time (`--sockets`): the size of the task pool.
const MAX_SOCKETS: usize = 8;

/// tcp-echo: send every byte received on a TCP port back to its sender.
///
/// Prints `listening on PORT` once it accepts connections, and one line per connection:
/// `closed PEER: N bytes echoed in S s (R MB/s)` (MB = 10^6 bytes).
#[derive(Parser, Debug)]
#[command(
    name = "tcp-echo",
    override_usage = "tcp-echo (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) [OPTIONS]",
    after_help = EXIT_HELP
)]
struct Args {
    /// The port to listen on
    #[arg(long, value_name = "PORT", default_value_t = 7,
          value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Only receive: count and drop the bytes (a discard server, for measuring throughput);
    /// the lines say `received` instead of `echoed`
    #[arg(long)]
    discard: bool,
    /// With --discard: check that each connection sends the test pattern of `tcp-client
    /// --bytes` (byte i is i mod 251); the line ends `, pattern verified`, or reports the
    /// first wrong byte and the connection is reset
    #[arg(long, requires = "discard")]
    verify: bool,
    /// Receive and send buffer of each socket
    #[arg(long, value_name = "BYTES", default_value_t = 8192,
          value_parser = clap::value_parser!(u32).range(64..=1 << 24))]
    buffer: u32,
    /// Connections served at the same time, 1 to 8
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u8).range(1..=MAX_SOCKETS as i64))]
    sockets: u8,
    /// Exit (status 0) once N connections have been served (default: never)
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// Stop after SECS: status 0 without --count, 4 if fewer than --count connections were
    /// served
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    #[command(flatten)]
    net: NetArgs,
}

/// How each connection is served.
#[derive(Debug)]
struct Opts {
    port: u16,
    discard: bool,
    verify: bool,
    buffer: usize,
}

/// Connections served so far, by all tasks.
static SERVED: AtomicUsize = AtomicUsize::new(0);
/// Raised after each connection, for `main` to compare [`SERVED`] with `--count`.
static ONE_MORE: Signal<CriticalSectionRawMutex, ()> = Signal::new();

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = app::start();
    app::exit::<Args>(run(spawner, args).await).await
}

async fn run(spawner: Spawner, args: Args) -> Result<(), Failure> {
    static OPTS: StaticCell<Opts> = StaticCell::new();
    let stack = net::start(spawner, &args.net).await?;
    let opts: &'static Opts = OPTS.init(Opts {
        port: args.port,
        discard: args.discard,
        verify: args.verify,
        buffer: args.buffer as usize,
    });
    for _ in 0..args.sockets {
        spawner
            .spawn(serve(stack, opts))
            .map_err(|e| Failure::failed(format!("cannot start a server task: {e}")))?;
    }
    // Let the tasks run up to their `accept` before saying that the port is open.
    embassy_futures::yield_now().await;
    println!("listening on {}", args.port);
    let enough = async {
        while args
            .count
            .is_none_or(|n| SERVED.load(Ordering::Acquire) < n)
        {
            ONE_MORE.wait().await;
        }
    };
    match args.timeout {
        None => enough.await,
        Some(secs) => {
            if with_timeout(Duration::from_secs(secs), enough)
                .await
                .is_err()
                && let Some(count) = args.count
            {
                return Err(Failure::timeout(format!(
                    "{} of {count} connections served in {secs} s",
                    SERVED.load(Ordering::Acquire),
                )));
            }
        }
    }
    println!("served {} connections", SERVED.load(Ordering::Acquire));
    Ok(())
}

/// Accepts connections one after the other and echoes (or with `discard`, drops) what each
/// sends until the peer closes it.
#[embassy_executor::task(pool_size = MAX_SOCKETS)]
async fn serve(stack: Stack<'static>, opts: &'static Opts) {
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
        SERVED.fetch_add(1, Ordering::AcqRel);
        ONE_MORE.signal(());
    }
}
