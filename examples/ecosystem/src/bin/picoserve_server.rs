//! picoserve, the `no_std` HTTP server, on ferronet (through the embassy-net compatibility
//! package): 8 server tasks on one port, serving a page, a page with a path parameter and
//! large bodies of a known pattern.
//!
//! ```text
//! picoserve-server --tap tap0 [--ip 192.0.2.2/24] [--port 80]
//! curl http://192.0.2.2/                 an HTML page
//! curl http://192.0.2.2/hello/NAME       "Hello, NAME!"
//! curl http://192.0.2.2/pattern/N        N bytes of the pattern 0, 1, ..., 250, 0, 1, ...
//! ```
//!
//! It serves until it is stopped (SIGTERM or Ctrl-C); it exits 1 if the interface cannot be
//! used.

use embassy_executor::Spawner;
use embassy_futures::join::join_array;
use embassy_net::Stack;
use ferronet_ecosystem::{NetArgs, init, pattern_byte, run};
use picoserve::io::Write;
use picoserve::response::Content;
use picoserve::routing::{get, parse_path_segment};

/// Server tasks, each serving one connection at a time.
const WORKERS: usize = 8;

/// picoserve on ferronet: an HTTP server on a TAP interface.
#[derive(Debug, clap::Parser)]
#[command(version, long_about = None)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// The TCP port to serve on.
    #[arg(long, default_value_t = 80)]
    port: u16,
}

/// The largest body `/pattern/N` serves (16 MiB).
const MAX_PATTERN: usize = 16 << 20;

/// A body of `len` bytes of [`pattern_byte`], written in pieces: no buffer of its size.
struct Pattern {
    len: usize,
}

impl Content for Pattern {
    fn content_type(&self) -> &'static str {
        "application/octet-stream"
    }

    fn content_length(&self) -> usize {
        self.len
    }

    async fn write_content<W: Write>(self, mut writer: W) -> Result<(), W::Error> {
        let mut chunk = [0u8; 1004]; // 4 * 251: every chunk starts the pattern at 0
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = pattern_byte(i);
        }
        let mut left = self.len;
        while left > 0 {
            let n = left.min(chunk.len());
            writer.write_all(&chunk[..n]).await?;
            left -= n;
        }
        Ok(())
    }
}

const INDEX: &str = "<!DOCTYPE html>\n<html><head><title>ferronet</title></head>\n\
<body><h1>picoserve on ferronet</h1><p>Served through the embassy-net compatibility package.</p></body></html>\n";

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = init();
    run(spawner, &args.net, async |stack| serve(stack, &args).await).await
}

/// Serves with [`WORKERS`] tasks until the program is stopped.
async fn serve(stack: Stack<'static>, args: &Args) -> Result<(), String> {
    let app = picoserve::Router::new()
        .route(
            "/",
            get(|| async {
                picoserve::response::Response::ok(INDEX).with_header("Content-Type", "text/html")
            }),
        )
        .route(
            ("/hello", parse_path_segment::<String>()),
            get(|name: String| async move { format!("Hello, {name}!\n") }),
        )
        .route(
            ("/pattern", parse_path_segment::<usize>()),
            get(|len: usize| async move {
                if len > MAX_PATTERN {
                    Err((picoserve::response::StatusCode::BAD_REQUEST, "too large\n"))
                } else {
                    Ok(Pattern { len })
                }
            }),
        );
    let config = picoserve::Config::new(picoserve::Timeouts {
        start_read_request: embassy_time::Duration::from_secs(10),
        persistent_start_read_request: embassy_time::Duration::from_secs(5),
        read_request: embassy_time::Duration::from_secs(10),
        write: embassy_time::Duration::from_secs(10),
    })
    .keep_connection_alive();

    println!("serving on port {} with {WORKERS} workers", args.port);
    let app = &app;
    let config = &config;
    let port = args.port;
    join_array(core::array::from_fn::<_, WORKERS, _>(|id| async move {
        let (mut rx, mut tx, mut http) = ([0u8; 4096], [0u8; 16384], [0u8; 2048]);
        picoserve::Server::new(app, config, &mut http)
            .listen_and_serve(id, stack, port, &mut rx, &mut tx)
            .await
            .into_never::<()>()
    }))
    .await;
    Ok(())
}
