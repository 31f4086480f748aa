//! Options of the `tap` binary: one stack (ferronet or embassy-net 0.9, the same source) on a
//! Linux TAP device, with Linux as the peer, for `scripts/throughput.sh`.

use std::net::Ipv4Addr;

/// What the stack does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Accept connections and read each to its end, checking the pattern.
    Sink,
    /// Connect to the peer and send `bytes` pattern bytes, `count` times.
    Send,
    /// An HTTP/1.1 server: each request answered with `bytes` pattern bytes, then closed.
    Http,
}

/// The command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// Which stack.
    pub stack: crate::StackKind,
    /// TAP interface name.
    pub tap: String,
    /// The stack's address and prefix length.
    pub ip: (Ipv4Addr, u8),
    /// What to do.
    pub mode: Mode,
    /// Port to listen on.
    pub port: u16,
    /// The peer to connect to (`send`).
    pub peer: std::net::SocketAddrV4,
    /// Bytes per connection (`send`, `http`).
    pub bytes: usize,
    /// Socket buffer size (receive and transmit).
    pub buffer: usize,
    /// Connections before exiting.
    pub count: usize,
    /// Random seed.
    pub seed: u64,
    /// Nagle's algorithm on the sockets (`--nagle on|off`; the stacks' default is on).
    pub nagle: bool,
}

/// Usage of the `tap` binary.
pub const USAGE: &str = "\
usage: tap --stack ferronet|embassy --tap NAME --ip A.B.C.D/LEN --mode sink|send|http
           [--port N (5001)] [--peer A.B.C.D:PORT] [--bytes N] [--buffer N (16K)] [--count N (1)]
           [--nagle on|off (on)]
sink: accept --count connections, read each to its end checking byte i = i % 251, print
`received N bytes in S s (R MB/s)`; send: connect to --peer --count times and send --bytes;
http: answer --count HTTP requests with --bytes of body each (Connection: close).";

impl Options {
    /// Parses the command line (without the program name); `Ok(None)`: help.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
        let mut stack = None;
        let mut tap = None;
        let mut ip = None;
        let mut mode = None;
        let mut port = 5001u16;
        let mut peer = None;
        let mut bytes = 1usize << 20;
        let mut buffer = 16usize << 10;
        let mut count = 1usize;
        let mut nagle = true;
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "-h" || flag == "--help" {
                return Ok(None);
            }
            let v = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let size = |v: &str| {
                crate::parse_size(v)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| format!("{flag}: bad size `{v}`"))
            };
            match flag.as_str() {
                "--stack" => {
                    stack = Some(match v.as_str() {
                        "ferronet" => crate::StackKind::Ferronet,
                        "embassy" => crate::StackKind::Embassy,
                        _ => return Err(format!("--stack: `{v}`")),
                    })
                }
                "--tap" => tap = Some(v),
                "--ip" => {
                    let (a, l) = v.split_once('/').ok_or("--ip: A.B.C.D/LEN")?;
                    let a: Ipv4Addr = a.parse().map_err(|_| "--ip: bad address")?;
                    let l: u8 = l.parse().map_err(|_| "--ip: bad length")?;
                    ip = Some((a, l));
                }
                "--mode" => {
                    mode = Some(match v.as_str() {
                        "sink" => Mode::Sink,
                        "send" => Mode::Send,
                        "http" => Mode::Http,
                        _ => return Err(format!("--mode: `{v}`")),
                    })
                }
                "--port" => port = v.parse().map_err(|_| "--port: bad number")?,
                "--peer" => {
                    peer = Some(v.parse().map_err(|_| "--peer: A.B.C.D:PORT")?);
                }
                "--bytes" => bytes = size(&v)?,
                "--buffer" => buffer = size(&v)?,
                "--count" => count = v.parse().map_err(|_| "--count: bad number")?,
                "--nagle" => {
                    nagle = match v.as_str() {
                        "on" => true,
                        "off" => false,
                        _ => return Err(format!("--nagle: `{v}`: on or off")),
                    }
                }
                _ => return Err(format!("unknown argument `{flag}`")),
            }
        }
        let mode = mode.ok_or("--mode is required")?;
        if mode == Mode::Send && peer.is_none() {
            return Err("--mode send needs --peer".into());
        }
        Ok(Some(Options {
            stack: stack.ok_or("--stack is required")?,
            tap: tap.ok_or("--tap is required")?,
            ip: ip.ok_or("--ip is required")?,
            mode,
            port,
            peer: peer.unwrap_or(std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            bytes,
            buffer,
            count,
            seed: 0x5eed,
            nagle,
        }))
    }
}
