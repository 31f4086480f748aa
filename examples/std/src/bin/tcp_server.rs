//! TCP echo server with a listen backlog (`ferronet::tcp::listener::TcpListener`) on a TAP or
//! TUN interface: clients that connect while every socket is busy wait in the backlog
//! instead of being reset.
//!
//! ```text
//! tcp-server --tap tap0 --ip 192.0.2.2/24 --port 7 --sockets 4
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use embassy_executor::Spawner;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, with_timeout};
use ferronet::Stack;
use ferronet::tcp::TcpSocket;
use ferronet::tcp::listener::{BACKLOG, TcpListener};
use ferronet_examples::app::{self, EXIT_HELP, Failure};
use ferronet_examples::net::{self, NetArgs};
use static_cell::StaticCell;

/// The most connections served at the same time (`--sockets`): the size of the task pool.
const MAX_SOCKETS: usize = 8;

/// tcp-server: a TCP echo server with a listen backlog.
///
/// A TcpListener holds the SYNs of clients that connect while all sockets are busy (up to the
/// backlog); each socket takes the next one when it is free. Prints `listening on PORT (N
/// sockets, backlog B)` once it accepts connections, one line per connection (`closed PEER: N
/// bytes echoed`), and `served N connections, F failed` at the end.
#[derive(Parser, Debug)]
#[command(
    name = "tcp-server",
    override_usage = "tcp-server (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) [OPTIONS]",
    after_help = EXIT_HELP
)]
struct Args {
    /// The port to listen on
    #[arg(long, value_name = "PORT", default_value_t = 7,
          value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Connections served at the same time, 1 to 8
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u8).range(1..=MAX_SOCKETS as i64))]
    sockets: u8,
    /// Receive and send buffer of each socket
    #[arg(long, value_name = "BYTES", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(64..=1 << 24))]
    buffer: u32,
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

/// Connections served so far, and those that failed, by all tasks.
static SERVED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);
/// Raised after each connection, for `main` to compare [`SERVED`] with `--count`.
static ONE_MORE: Signal<CriticalSectionRawMutex, ()> = Signal::new();

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = app::start();
    app::exit::<Args>(run(spawner, args).await).await
}

async fn run(spawner: Spawner, args: Args) -> Result<(), Failure> {
    static LISTENER: StaticCell<TcpListener<'static>> = StaticCell::new();
    let stack = net::start(spawner, &args.net).await?;
    let mut listener =
        TcpListener::new(stack).map_err(|e| Failure::failed(format!("listener: {e}")))?;
    listener
        .listen(args.port)
        .map_err(|e| Failure::failed(format!("listen on {}: {e}", args.port)))?;
    let listener: &'static TcpListener<'static> = LISTENER.init(listener);
    for _ in 0..args.sockets {
        spawner
            .spawn(serve(stack, listener, args.buffer as usize))
            .map_err(|e| Failure::failed(format!("cannot start a server task: {e}")))?;
    }
    embassy_futures::yield_now().await;
    println!(
        "listening on {} ({} sockets, backlog {BACKLOG})",
        args.port, args.sockets
    );
    let enough = async {
        while args
            .count
            .is_none_or(|n| SERVED.load(Ordering::Acquire) < n)
        {
            ONE_MORE.wait().await;
        }
    };
    let finished = match args.timeout {
        None => {
            enough.await;
            true
        }
        Some(secs) => with_timeout(Duration::from_secs(secs), enough)
            .await
            .is_ok(),
    };
    let served = SERVED.load(Ordering::Acquire);
    println!(
        "served {served} connections, {} failed",
        FAILED.load(Ordering::Acquire)
    );
    match args.count {
        Some(n) if !finished && served < n => Err(Failure::timeout(format!(
            "{served} of {n} connections served in {} s",
            args.timeout.unwrap_or(0)
        ))),
        _ => Ok(()),
    }
}

/// Takes connection requests from `listener` one after the other and echoes each connection
/// until the peer closes it.
#[embassy_executor::task(pool_size = MAX_SOCKETS)]
async fn serve(stack: Stack<'static>, listener: &'static TcpListener<'static>, buffer: usize) {
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
            FAILED.fetch_add(1, Ordering::AcqRel);
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
                FAILED.fetch_add(1, Ordering::AcqRel);
            }
        }
        SERVED.fetch_add(1, Ordering::AcqRel);
        ONE_MORE.signal(());
    }
}
