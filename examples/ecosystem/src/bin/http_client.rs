//! reqwless, the `no_std` HTTP client, on ferronet (through the embassy-net compatibility
//! package): the connection comes from ferronet's embedded-nal-async `TcpConnect`
//! (`tcp::client::TcpClient`) and the name lookup from its embedded-nal-async `Dns`
//! (`dns::DnsSocket`); `https://` URLs go through embedded-tls (TLS 1.3,
//! TLS_AES_128_GCM_SHA256).
//!
//! ```text
//! http-client --tap tap0 --dns 192.0.2.1 http://files.fnet.test:8000/file --out FILE
//! http-client --tap tap0 --dns 192.0.2.1 https://files.fnet.test:4433/file --ca ca.der --out FILE
//! ```
//!
//! Prints the status and the body's length on stderr and writes the body to `--out` (or
//! stdout). Exit status 0 for a 2xx answer whose body was read whole, 1 otherwise.

use std::io::Write as _;
use std::path::PathBuf;

use embassy_executor::Spawner;
use embassy_net::dns::DnsSocket;
use embassy_net::tcp::client::{TcpClient, TcpClientState};
use embassy_time::{Duration, Timer, with_timeout};
use embedded_io_async::Read;
use ferronet_ecosystem::{NetArgs, init, run};
use reqwless::client::{HttpClient, TlsConfig, TlsVerify};
use reqwless::request::Method;

/// reqwless on ferronet: fetch a URL over HTTP or HTTPS (TLS 1.3).
#[derive(Debug, clap::Parser)]
#[command(version, long_about = None)]
struct Args {
    #[command(flatten)]
    net: NetArgs,
    /// The URL to fetch (http:// or https://).
    url: String,
    /// Write the body to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// For https://: the CA certificate (DER) that must have signed the server's certificate
    /// (an ECDSA P-256 one). Without it the server's certificate is not checked.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Time limit for the whole request, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = init();
    run(spawner, &args.net, async |stack| {
        let state = TcpClientState::<1, 4096, 4096>::new();
        let tcp = TcpClient::new(stack, &state);
        let dns = DnsSocket::new(stack);
        let result = with_timeout(Duration::from_secs(args.timeout), fetch(&tcp, &dns, &args))
            .await
            .unwrap_or_else(|_| Err(format!("not done after {} s", args.timeout)));
        // reqwless drops the connection without closing it, and the process exits right
        // after: give the runner a moment to send the FIN of that close (the `TcpClient`
        // forgets sockets still closing when it is dropped), or a server that waits for the
        // client to close (openssl s_server does) keeps the connection, and the next client
        // waits behind it.
        Timer::after(Duration::from_millis(200)).await;
        result
    })
    .await
}

async fn fetch(
    tcp: &TcpClient<'_, 1, 4096, 4096>,
    dns: &DnsSocket<'_>,
    args: &Args,
) -> Result<(), String> {
    let ca = match &args.ca {
        Some(path) => Some(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?),
        None => None,
    };
    let (mut tls_rx, mut tls_tx) = (vec![0u8; 16640], vec![0u8; 16640]);
    let verify = match &ca {
        Some(ca) => TlsVerify::Certificate {
            ca,
            cert: None,
            key: None,
        },
        None => TlsVerify::None,
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut client = if args.url.starts_with("https://") {
        HttpClient::new_with_tls(
            tcp,
            dns,
            TlsConfig::new(seed, &mut tls_rx, &mut tls_tx, verify),
        )
    } else {
        HttpClient::new(tcp, dns)
    };
    let mut request = client
        .request(Method::GET, &args.url)
        .await
        .map_err(|e| format!("{}: {e:?}", args.url))?;
    let mut header_buf = vec![0u8; 4096];
    let response = request
        .send(&mut header_buf)
        .await
        .map_err(|e| format!("{}: request: {e:?}", args.url))?;
    let status = response.status;
    let mut reader = response.body().reader();
    let mut out: Box<dyn std::io::Write> = match &args.out {
        Some(path) => {
            Box::new(std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut chunk = vec![0u8; 8192];
    let mut total = 0usize;
    loop {
        let n = reader
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the body after {total} bytes: {e:?}"))?;
        if n == 0 {
            break;
        }
        out.write_all(&chunk[..n])
            .map_err(|e| format!("writing the body: {e}"))?;
        total += n;
    }
    out.flush().map_err(|e| format!("writing the body: {e}"))?;
    eprintln!("{}: status {}, {total} bytes", args.url, status.0);
    if status.is_successful() {
        Ok(())
    } else {
        Err(format!("status {}", status.0))
    }
}
