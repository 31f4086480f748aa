//! A plain-HTTP GET through ferronet on a TAP or TUN interface.
//!
//! ```text
//! http-get --tap tap0 --ip 192.0.2.2/24 http://192.0.2.1:8000/index.html
//! ```

use std::io::Write;
use std::process::ExitCode;

use embassy_time::Duration;
use ferronet::IpEndpoint;
use ferronet::tcp::TcpSocket;
use ferronet_examples::cli::{self, Arg, Failure, Parser};
use ferronet_examples::net::{self, NetArgs};

const USAGE: &str = "\
http-get: fetch a URL over plain HTTP (HTTP/1.0) and print the body.

Usage: http-get (--tap NAME | --tun NAME) (--ip CIDR | --dhcp) [options] http://HOST[:PORT]/PATH

Prints the status line on stderr and the body on stdout. Exits with status 0 for a 2xx
status, 1 otherwise.

Options:
  --include       print the status line and headers on stdout too, before the body
  --timeout SECS  give up after SECS (default 30)";

fn main() -> ExitCode {
    cli::main("http-get", USAGE, body)
}

/// Splits `http://HOST[:PORT]/PATH` into host, port and path.
fn parse_url(url: &str) -> Result<(&str, u16, &str), Failure> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Failure::usage(format!("{url:?}: only http:// URLs are supported")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let bracketed_v6 = authority.starts_with('[') && authority.ends_with(']');
    if authority.contains(':') && !bracketed_v6 {
        let (host, port) = net::split_host_port(authority)?;
        Ok((host, port, path))
    } else {
        Ok((authority, 80, path))
    }
}

fn body(mut p: Parser) -> Result<(), Failure> {
    let mut net = NetArgs::default();
    let (mut include, mut timeout, mut url) = (false, 30u64, None);
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Flag(f) if net.accept(&f, &mut p)? => {}
            Arg::Flag(f) => match f.as_str() {
                "include" => include = true,
                "timeout" => timeout = p.parse(&f)?,
                _ => return Err(cli::unknown(&f)),
            },
            Arg::Positional(a) if url.is_none() => url = Some(a),
            Arg::Positional(a) => return Err(Failure::usage(format!("unexpected {a:?}"))),
        }
    }
    let url = url.ok_or_else(|| Failure::usage("give the URL"))?;
    let (host, port, path) = parse_url(&url)?;
    net::run(&net, async |stack| {
        net::timed(Duration::from_secs(timeout), async {
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
    })
}

fn io_failure(e: ferronet::tcp::Error) -> Failure {
    Failure::failed(format!("connection failed: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://192.0.2.1/").unwrap(),
            ("192.0.2.1", 80, "/")
        );
        assert_eq!(
            parse_url("http://192.0.2.1:8000/a/b?c").unwrap(),
            ("192.0.2.1", 8000, "/a/b?c")
        );
        assert_eq!(
            parse_url("http://[2001:db8::1]:8080").unwrap(),
            ("[2001:db8::1]", 8080, "/")
        );
        assert_eq!(
            parse_url("http://[2001:db8::1]/x").unwrap(),
            ("[2001:db8::1]", 80, "/x")
        );
        assert!(parse_url("https://example.test/").is_err());
    }
}
