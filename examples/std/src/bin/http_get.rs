//! A plain-HTTP GET through ferronet on a TAP or TUN interface.
//!
//! ```text
//! http-get --tap tap0 --ip 192.0.2.2/24 http://192.0.2.1:8000/index.html
//! ```

use std::io::Write;

use clap::Parser;
use embassy_executor::Spawner;
use embassy_time::Duration;
use ferronet::IpEndpoint;
use ferronet::tcp::TcpSocket;
use ferronet_examples::app::{self, EXIT_HELP, Failure};
use ferronet_examples::net::{self, NetArgs};

/// http-get: fetch a URL over plain HTTP (HTTP/1.0) and print the body.
///
/// Prints the status line on stderr and the body on stdout. Exits with status 0 for a 2xx
/// status, 1 otherwise.
#[derive(Parser, Debug)]
#[command(
    name = "http-get",
    override_usage = "http-get (--tap NAME | --tun NAME) (--ip CIDR | --dhcp) [OPTIONS] <URL>",
    after_help = EXIT_HELP
)]
struct Args {
    /// What to fetch: http://HOST[:PORT]/PATH (HOST an IP address, [...] for IPv6, or a name)
    #[arg(value_name = "URL", value_parser = parse_url)]
    url: Url,
    /// Print the status line and headers on stdout too, before the body
    #[arg(long)]
    include: bool,
    /// Give up after SECS
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    #[command(flatten)]
    net: NetArgs,
}

/// The parts of an `http://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Url {
    host: String,
    port: u16,
    path: String,
}

/// Splits `http://HOST[:PORT]/PATH` into host, port and path.
fn parse_url(url: &str) -> Result<Url, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let bracketed_v6 = authority.starts_with('[') && authority.ends_with(']');
    let (host, port) = if authority.contains(':') && !bracketed_v6 {
        net::parse_host_port(authority)?
    } else {
        (authority.to_owned(), 80)
    };
    Ok(Url {
        host,
        port,
        path: path.to_owned(),
    })
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = app::start();
    app::exit::<Args>(run(spawner, args).await).await
}

async fn run(spawner: Spawner, args: Args) -> Result<(), Failure> {
    let (host, port, path, include) = (&args.url.host, args.url.port, &args.url.path, args.include);
    let stack = net::start(spawner, &args.net).await?;
    net::timed(Duration::from_secs(args.timeout), async {
        let remote = IpEndpoint::new(net::resolve(stack, host).await?, port);
        let (mut rx, mut tx) = (vec![0u8; 16384], vec![0u8; 4096]);
        let mut s = TcpSocket::new(stack, &mut rx, &mut tx);
        s.connect(remote)
            .await
            .map_err(|e| Failure::failed(format!("connect {remote}: {e:?}")))?;
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: ferronet-http-get\r\n\
             Connection: close\r\n\r\n"
        );
        let mut off = 0;
        while off < request.len() {
            off += s
                .write(&request.as_bytes()[off..])
                .await
                .map_err(io_failure)?;
        }
        s.flush().await.map_err(io_failure)?;

        // Read the head (up to the blank line), then stream the body.
        let mut head = Vec::new();
        let mut buf = vec![0u8; 4096];
        let mut stdout = std::io::stdout().lock();
        let mut out = |data: &[u8]| {
            stdout
                .write_all(data)
                .map_err(|e| Failure::failed(format!("stdout: {e}")))
        };
        let mut status = None;
        loop {
            let n = s.read(&mut buf).await.map_err(io_failure)?;
            if n == 0 {
                break;
            }
            if status.is_some() {
                out(&buf[..n])?;
                continue;
            }
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&head[..end]).into_owned();
                let line = text.lines().next().unwrap_or("").to_string();
                eprintln!("{line}");
                if include {
                    out(&head[..end + 4])?;
                }
                out(&head[end + 4..])?;
                status = Some(line);
            } else if head.len() > 65536 {
                return Err(Failure::failed("response head longer than 64 KiB"));
            }
        }
        s.close();
        let _ = s.flush().await;
        let status = status.ok_or_else(|| Failure::failed("no HTTP response head"))?;
        let code = status.split_whitespace().nth(1).unwrap_or("");
        if code.starts_with('2') && code.len() == 3 {
            Ok(())
        } else {
            Err(Failure::failed(format!("HTTP status: {status}")))
        }
    })
    .await?
}

fn io_failure(e: ferronet::tcp::Error) -> Failure {
    Failure::failed(format!("connection failed: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::{Url, parse_url};

    fn url(host: &str, port: u16, path: &str) -> Url {
        Url {
            host: host.into(),
            port,
            path: path.into(),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://192.0.2.1/").unwrap(),
            url("192.0.2.1", 80, "/")
        );
        assert_eq!(
            parse_url("http://192.0.2.1:8000/a/b?c").unwrap(),
            url("192.0.2.1", 8000, "/a/b?c")
        );
        assert_eq!(
            parse_url("http://[2001:db8::1]:8080").unwrap(),
            url("[2001:db8::1]", 8080, "/")
        );
        assert_eq!(
            parse_url("http://[2001:db8::1]/x").unwrap(),
            url("[2001:db8::1]", 80, "/x")
        );
        assert!(parse_url("https://example.test/").is_err());
        assert!(parse_url("http://example.test:port/").is_err());
    }
}
