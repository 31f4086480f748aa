//! The workloads, written once against the embassy-net 0.9 API and compiled once per stack:
//! `super::net` is `ferronet` in [`crate::on_ferronet`] and `embassy_net` in
//! [`crate::on_embassy`]. That this file compiles for both is itself a check of ferronet's
//! source compatibility.
//!
//! Every workload builds two fresh stacks (A = 192.0.2.1, B = 192.0.2.2, static /24, no
//! gateway) over a fresh [`link::pair`], runs its tasks and both runners on
//! [`exec::run`], checks every byte it receives, and returns the elapsed real time of its
//! timed part. Socket tasks that must keep their socket open after their part is done (so that
//! what they queued still goes out) park forever instead of returning; they are dropped with
//! the run.

use core::cell::Cell;
use core::future::Future;
use core::pin::pin;
use std::time::Instant;

use super::net;
use net::tcp::TcpSocket;
use net::udp::{PacketMetadata, UdpSocket};
use net::{Config, IpEndpoint, Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4};

use crate::exec::{self, ExecStats, Notify, Task};
use crate::link::{self, BenchDevice, LinkHandle};
use crate::params::*;
use crate::shaped;
use crate::{Measurement, pattern};
use embassy_net_driver::Driver;

fn config(host: u8) -> Config {
    Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, host), 24),
        gateway: None,
        dns_servers: Default::default(),
    })
}

fn endpoint(host: u8, port: u16) -> IpEndpoint {
    IpEndpoint::new(Ipv4Address::new(192, 0, 2, host).into(), port)
}

/// Two stacks joined by a link (by default the bench link).
struct Pair<'d, D: Driver = BenchDevice, L = LinkHandle> {
    a: net::Stack<'d>,
    b: net::Stack<'d>,
    runner_a: net::Runner<'d, D>,
    runner_b: net::Runner<'d, D>,
    link: L,
}

/// Makes the stack resources, both stacks and the bench link, and hands them to `f`.
fn with_pair<R>(f: impl for<'d> FnOnce(Pair<'d>) -> R) -> R {
    let (dev_a, dev_b, link) = link::pair();
    with_devices(dev_a, dev_b, link, f)
}

/// Makes the stack resources and both stacks over the devices, and hands them to `f`.
fn with_devices<D: Driver, L, R>(
    dev_a: D,
    dev_b: D,
    link: L,
    f: impl for<'d> FnOnce(Pair<'d, D, L>) -> R,
) -> R {
    let mut res_a = Box::new(StackResources::<SOCKETS>::new());
    let mut res_b = Box::new(StackResources::<SOCKETS>::new());
    let (a, runner_a) = net::new(dev_a, config(HOST_A), &mut *res_a, SEED_A);
    let (b, runner_b) = net::new(dev_b, config(HOST_B), &mut *res_b, SEED_B);
    f(Pair {
        a,
        b,
        runner_a,
        runner_b,
        link,
    })
}

/// Waits forever (keeps the caller's sockets open until the run is dropped).
async fn park() {
    core::future::pending::<()>().await
}

fn finish(
    what: &str,
    link: &LinkHandle,
    exec: ExecStats,
    units: u64,
    started: &Cell<Option<Instant>>,
    finished: &Cell<Option<Instant>>,
) -> Measurement {
    let stats = link.stats();
    assert_eq!(
        stats.dropped, 0,
        "{what}: the link dropped frames (ring full); the run would include retransmissions"
    );
    let started = started.get().expect("workload records its start");
    let finished = finished.get().expect("workload records its end");
    Measurement {
        elapsed: finished - started,
        units,
        link: stats,
        exec,
    }
}

/// Reads exactly `buf.len()` bytes.
async fn read_exact(s: &mut TcpSocket<'_>, buf: &mut [u8], what: &str) {
    let mut got = 0;
    while got < buf.len() {
        let n = s.read(&mut buf[got..]).await.expect(what);
        assert!(n > 0, "{what}: unexpected end of stream");
        got += n;
    }
}

/// Writes all of `data`.
async fn write_all(s: &mut TcpSocket<'_>, data: &[u8], what: &str) {
    let mut sent = 0;
    while sent < data.len() {
        sent += s.write(&data[sent..]).await.expect(what);
    }
}

/// `tcp_bulk`: one connection from A to B carrying `total` bytes, socket buffers of
/// `buf_size` bytes (receive and transmit, both ends). Timed from before `connect` to B
/// reading the end of stream after the last byte.
pub fn tcp_bulk(total: usize, buf_size: usize) -> Measurement {
    with_pair(|p| {
        let Pair {
            a,
            b,
            mut runner_a,
            mut runner_b,
            link,
        } = p;
        let mut bufs: [Vec<u8>; 4] = core::array::from_fn(|_| vec![0u8; buf_size]);
        let [a_rx, a_tx, b_rx, b_tx] = &mut bufs;
        let started = Cell::new(None);
        let finished = Cell::new(None);
        let server = async {
            let mut s = TcpSocket::new(b, b_rx, b_tx);
            s.accept(PORT).await.expect("tcp_bulk: accept");
            let mut buf = vec![0u8; APP_CHUNK];
            let mut got = 0usize;
            while got < total {
                let n = s.read(&mut buf).await.expect("tcp_bulk: read");
                assert!(
                    n > 0,
                    "tcp_bulk: end of stream after {got} of {total} bytes"
                );
                pattern::verify("tcp_bulk", got, &buf[..n]);
                got += n;
            }
            let n = s.read(&mut buf).await.expect("tcp_bulk: read at the end");
            assert_eq!(n, 0, "tcp_bulk: more than {total} bytes arrived");
            finished.set(Some(Instant::now()));
        };
        let client = async {
            let mut s = TcpSocket::new(a, a_rx, a_tx);
            started.set(Some(Instant::now()));
            s.connect(endpoint(HOST_B, PORT))
                .await
                .expect("tcp_bulk: connect");
            send_pattern(&mut s, total, "tcp_bulk: write").await;
            park().await;
        };
        let exec = exec::run(&mut [
            Task::required(pin!(server)),
            Task::background(pin!(client)),
            Task::background(pin!(async {
                runner_a.run().await;
            })),
            Task::background(pin!(async {
                runner_b.run().await;
            })),
        ]);
        finish("tcp_bulk", &link, exec, total as u64, &started, &finished)
    })
}

/// `tcp_rr`: one connection; `n` times A sends [`RR_MESSAGE`] bytes and B echoes them. Timed
/// from the connection being established to A checking the last response.
pub fn tcp_rr(n: usize) -> Measurement {
    with_pair(|p| {
        let Pair {
            a,
            b,
            mut runner_a,
            mut runner_b,
            link,
        } = p;
        let mut bufs: [Vec<u8>; 4] = core::array::from_fn(|_| vec![0u8; RR_SOCKET_BUFFER]);
        let [a_rx, a_tx, b_rx, b_tx] = &mut bufs;
        let started = Cell::new(None);
        let finished = Cell::new(None);
        let server = async {
            let mut s = TcpSocket::new(b, b_rx, b_tx);
            s.accept(PORT).await.expect("tcp_rr: accept");
            let mut msg = [0u8; RR_MESSAGE];
            for i in 0..n {
                read_exact(&mut s, &mut msg, "tcp_rr: server read").await;
                pattern::verify("tcp_rr request", i * RR_MESSAGE, &msg);
                write_all(&mut s, &msg, "tcp_rr: server write").await;
            }
            park().await;
        };
        let client = async {
            let mut s = TcpSocket::new(a, a_rx, a_tx);
            s.connect(endpoint(HOST_B, PORT))
                .await
                .expect("tcp_rr: connect");
            started.set(Some(Instant::now()));
            let mut msg = [0u8; RR_MESSAGE];
            for i in 0..n {
                let req = pattern::slice(i * RR_MESSAGE, RR_MESSAGE);
                write_all(&mut s, req, "tcp_rr: client write").await;
                read_exact(&mut s, &mut msg, "tcp_rr: client read").await;
                pattern::verify("tcp_rr response", i * RR_MESSAGE, &msg);
            }
            finished.set(Some(Instant::now()));
        };
        let exec = exec::run(&mut [
            Task::background(pin!(server)),
            Task::required(pin!(client)),
            Task::background(pin!(async {
                runner_a.run().await;
            })),
            Task::background(pin!(async {
                runner_b.run().await;
            })),
        ]);
        finish("tcp_rr", &link, exec, n as u64, &started, &finished)
    })
}

/// `udp_rr`: `n` times A sends a [`RR_MESSAGE`]-byte datagram to B and B sends it back.
/// Timed from A's first send (the first one includes ARP) to A checking the last answer.
pub fn udp_rr(n: usize) -> Measurement {
    with_pair(|p| {
        let Pair {
            a,
            b,
            mut runner_a,
            mut runner_b,
            link,
        } = p;
        let mut bufs: [Vec<u8>; 4] = core::array::from_fn(|_| vec![0u8; RR_SOCKET_BUFFER]);
        let [a_rx, a_tx, b_rx, b_tx] = &mut bufs;
        let mut metas: [[PacketMetadata; UDP_PACKETS]; 4] =
            [[PacketMetadata::EMPTY; UDP_PACKETS]; 4];
        let [a_rxm, a_txm, b_rxm, b_txm] = &mut metas;
        let started = Cell::new(None);
        let finished = Cell::new(None);
        let server = async {
            let mut s = UdpSocket::new(b, b_rxm, b_rx, b_txm, b_tx);
            s.bind(UDP_SERVER_PORT).expect("udp_rr: server bind");
            let mut msg = [0u8; RR_MESSAGE + 1];
            for i in 0..n {
                let (len, meta) = s.recv_from(&mut msg).await.expect("udp_rr: server recv");
                assert_eq!(len, RR_MESSAGE, "udp_rr: request length");
                pattern::verify("udp_rr request", i * RR_MESSAGE, &msg[..len]);
                s.send_to(&msg[..len], meta)
                    .await
                    .expect("udp_rr: server send");
            }
            park().await;
        };
        let client = async {
            let mut s = UdpSocket::new(a, a_rxm, a_rx, a_txm, a_tx);
            s.bind(UDP_CLIENT_PORT).expect("udp_rr: client bind");
            let server = endpoint(HOST_B, UDP_SERVER_PORT);
            started.set(Some(Instant::now()));
            let mut msg = [0u8; RR_MESSAGE + 1];
            for i in 0..n {
                let req = pattern::slice(i * RR_MESSAGE, RR_MESSAGE);
                s.send_to(req, server).await.expect("udp_rr: client send");
                let (len, meta) = s.recv_from(&mut msg).await.expect("udp_rr: client recv");
                assert_eq!(len, RR_MESSAGE, "udp_rr: response length");
                assert_eq!(meta.endpoint, server, "udp_rr: response source");
                pattern::verify("udp_rr response", i * RR_MESSAGE, &msg[..len]);
            }
            finished.set(Some(Instant::now()));
        };
        let exec = exec::run(&mut [
            Task::background(pin!(server)),
            Task::required(pin!(client)),
            Task::background(pin!(async {
                runner_a.run().await;
            })),
            Task::background(pin!(async {
                runner_b.run().await;
            })),
        ]);
        finish("udp_rr", &link, exec, n as u64, &started, &finished)
    })
}

/// `tcp_churn`: `n` connections from A to B, one after the other; on each, A sends one byte,
/// B answers one byte, A closes, B sees the end of stream and closes, A sees it and drops its
/// socket (in TIME-WAIT: smoltcp frees it at once), B waits for its FIN to be acknowledged
/// (`flush`) and drops its socket. B has [`CHURN_LISTENERS`] server tasks, so a socket is
/// listening while another finishes; A waits for one before each `connect` (so no SYN ever
/// meets a port without a listener). Local ports are each stack's own ephemeral choice.
/// Timed from before the first `connect` to A dropping the last socket.
pub fn tcp_churn(n: usize) -> Measurement {
    with_pair(|p| {
        let Pair {
            a,
            b,
            mut runner_a,
            mut runner_b,
            link,
        } = p;
        let listening = Notify::default();
        let claimed = Cell::new(0usize);
        let started = Cell::new(None);
        let finished = Cell::new(None);
        let (claimed, listening) = (&claimed, &listening);
        let server = move || async move {
            let mut rx = vec![0u8; RR_SOCKET_BUFFER];
            let mut tx = vec![0u8; RR_SOCKET_BUFFER];
            while claimed.get() < n {
                claimed.set(claimed.get() + 1);
                let mut s = TcpSocket::new(b, &mut rx, &mut tx);
                listening.set(listening.get() + 1);
                let accepted = s.accept(PORT).await;
                listening.set(listening.get() - 1);
                accepted.expect("tcp_churn: accept");
                let mut byte = [0u8; 1];
                read_exact(&mut s, &mut byte, "tcp_churn: server read").await;
                write_all(&mut s, &[byte[0] ^ 0xff], "tcp_churn: server write").await;
                let eof = s.read(&mut byte).await.expect("tcp_churn: server read EOF");
                assert_eq!(eof, 0, "tcp_churn: more than one byte from the client");
                s.close();
                s.flush().await.expect("tcp_churn: server flush");
            }
        };
        let client = async {
            let mut rx = vec![0u8; RR_SOCKET_BUFFER];
            let mut tx = vec![0u8; RR_SOCKET_BUFFER];
            started.set(Some(Instant::now()));
            for i in 0..n {
                listening.wait_until(|l| l > 0).await;
                let mut s = TcpSocket::new(a, &mut rx, &mut tx);
                s.connect(endpoint(HOST_B, PORT))
                    .await
                    .expect("tcp_churn: connect");
                let sent = (i % 251) as u8;
                write_all(&mut s, &[sent], "tcp_churn: client write").await;
                let mut byte = [0u8; 1];
                read_exact(&mut s, &mut byte, "tcp_churn: client read").await;
                assert_eq!(byte[0], sent ^ 0xff, "tcp_churn: answer to connection {i}");
                s.close();
                let eof = s.read(&mut byte).await.expect("tcp_churn: client read EOF");
                assert_eq!(eof, 0, "tcp_churn: more than one byte from the server");
            }
            finished.set(Some(Instant::now()));
        };
        let mut servers: Vec<_> = (0..CHURN_LISTENERS).map(|_| Box::pin(server())).collect();
        let mut client = pin!(client);
        let mut run_a = pin!(async {
            runner_a.run().await;
        });
        let mut run_b = pin!(async {
            runner_b.run().await;
        });
        // App tasks first: in the first sweep the servers listen before any frame moves.
        let mut tasks: Vec<Task<'_>> = servers
            .iter_mut()
            .map(|s| Task::required(s.as_mut()))
            .collect();
        tasks.push(Task::required(client.as_mut()));
        tasks.push(Task::background(run_a.as_mut()));
        tasks.push(Task::background(run_b.as_mut()));
        let exec = exec::run(&mut tasks);
        drop(tasks);
        finish("tcp_churn", &link, exec, n as u64, &started, &finished)
    })
}

/// `size_of` (and the size of some futures) of this stack's types, as (label, bytes).
pub fn sizes() -> Vec<(String, usize)> {
    use core::mem::{size_of, size_of_val};
    let sr = [
        size_of::<StackResources<1>>(),
        size_of::<StackResources<2>>(),
        size_of::<StackResources<3>>(),
        size_of::<StackResources<4>>(),
        size_of::<StackResources<5>>(),
    ];
    let mut v: Vec<(String, usize)> = Vec::new();
    for (i, s) in sr.iter().take(4).enumerate() {
        v.push((format!("StackResources<{}>", i + 1), *s));
    }
    v.push(("StackResources: per extra socket".into(), sr[4] - sr[3]));
    v.push(("Stack".into(), size_of::<net::Stack<'static>>()));
    v.push((
        "Runner<BenchDevice>".into(),
        size_of::<net::Runner<'static, BenchDevice>>(),
    ));
    v.push(("tcp::TcpSocket".into(), size_of::<TcpSocket<'static>>()));
    v.push(("udp::UdpSocket".into(), size_of::<UdpSocket<'static>>()));
    #[cfg(feature = "dns")]
    v.push((
        "dns::DnsSocket".into(),
        size_of::<net::dns::DnsSocket<'static>>(),
    ));
    with_pair(|p| {
        let Pair {
            a, mut runner_a, ..
        } = p;
        fn fut<F: Future>(f: &F) -> usize {
            size_of_val(f)
        }
        v.push(("future: Runner::run()".into(), fut(&runner_a.run())));
        let (mut rx, mut tx) = ([0u8; 16], [0u8; 16]);
        let mut s = TcpSocket::new(a, &mut rx, &mut tx);
        v.push((
            "future: TcpSocket::connect".into(),
            fut(&s.connect(endpoint(HOST_B, PORT))),
        ));
        v.push(("future: TcpSocket::accept".into(), fut(&s.accept(PORT))));
        let mut buf = [0u8; 4];
        v.push(("future: TcpSocket::read".into(), fut(&s.read(&mut buf))));
        v.push(("future: TcpSocket::write".into(), fut(&s.write(&buf))));
        v.push(("future: TcpSocket::flush".into(), fut(&s.flush())));
        drop(s);
        let (mut rxm, mut txm) = ([PacketMetadata::EMPTY; 1], [PacketMetadata::EMPTY; 1]);
        let u = UdpSocket::new(a, &mut rxm, &mut rx, &mut txm, &mut tx);
        v.push((
            "future: UdpSocket::recv_from".into(),
            fut(&u.recv_from(&mut buf)),
        ));
        v.push((
            "future: UdpSocket::send_to".into(),
            fut(&u.send_to(&buf, endpoint(HOST_B, PORT))),
        ));
        drop(u);
        #[cfg(feature = "dns")]
        {
            let d = net::dns::DnsSocket::new(a);
            v.push((
                "future: DnsSocket::query".into(),
                fut(&d.query("example.com", net::dns::DnsQueryType::A)),
            ));
        }
    });
    v
}

/// One TCP transfer of the goodput benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// Stack A (the client, which connects) sends; else B (the server) sends.
    pub a_sends: bool,
    /// B's listening port.
    pub port: u16,
}

/// The goodput workload: over a [`shaped`] link on the virtual clock, each of `flows` carries
/// `total` bytes (socket buffers of `buf_size` bytes, receive and transmit, both ends; the
/// application writes and reads [`APP_CHUNK`] bytes at a time), all at once. A connects to B
/// for every flow. Each flow is timed on the virtual clock from its sender's connection being
/// established to its receiver having read and checked the last byte. `Err` if the transfers
/// did not end within `limit_s` virtual seconds ([`crate::goodput::Run::finished`] false).
pub fn goodput(
    shape: shaped::Shape,
    flows: &[Flow],
    buf_size: usize,
    total: usize,
    limit_s: u64,
) -> crate::goodput::Run {
    /// A virtual instant, set once.
    type Stamp = Cell<Option<embassy_time::Instant>>;
    /// A task of the run and whether the run waits for it.
    type BoxedTask<'a> = (bool, core::pin::Pin<Box<dyn Future<Output = ()> + 'a>>);
    use embassy_time::Instant as VInstant;
    let (dev_a, dev_b, link) = shaped::pair(shape);
    with_devices(dev_a, dev_b, link, |p| {
        let Pair {
            a,
            b,
            mut runner_a,
            mut runner_b,
            link,
        } = p;
        let mut bufs: Vec<[Vec<u8>; 4]> = flows
            .iter()
            .map(|_| core::array::from_fn(|_| vec![0u8; buf_size]))
            .collect();
        let times: Vec<(Stamp, Stamp)> = flows
            .iter()
            .map(|_| (Cell::new(None), Cell::new(None)))
            .collect();
        let mut tasks: Vec<BoxedTask<'_>> = Vec::new();
        for ((flow, [a_rx, a_tx, b_rx, b_tx]), (started, finished)) in
            flows.iter().zip(bufs.iter_mut()).zip(times.iter())
        {
            let port = flow.port;
            let a_sends = flow.a_sends;
            let client = async move {
                let mut s = TcpSocket::new(a, a_rx, a_tx);
                s.connect(endpoint(HOST_B, port))
                    .await
                    .expect("goodput: connect");
                if a_sends {
                    started.set(Some(VInstant::now()));
                    send_pattern(&mut s, total, "goodput: write").await;
                    park().await;
                } else {
                    recv_pattern(&mut s, total).await;
                    finished.set(Some(VInstant::now()));
                    recv_end(&mut s, total).await;
                }
            };
            let server = async move {
                let mut s = TcpSocket::new(b, b_rx, b_tx);
                s.accept(port).await.expect("goodput: accept");
                if a_sends {
                    recv_pattern(&mut s, total).await;
                    finished.set(Some(VInstant::now()));
                    recv_end(&mut s, total).await;
                } else {
                    started.set(Some(VInstant::now()));
                    send_pattern(&mut s, total, "goodput: write").await;
                    park().await;
                }
            };
            // The receiving side's task is the one the run waits for.
            tasks.push((!a_sends, Box::pin(client)));
            tasks.push((a_sends, Box::pin(server)));
        }
        tasks.push((
            false,
            Box::pin(async {
                runner_a.run().await;
            }),
        ));
        tasks.push((
            false,
            Box::pin(async {
                runner_b.run().await;
            }),
        ));
        let mut list: Vec<Task<'_>> = tasks
            .iter_mut()
            .map(|(required, f)| {
                if *required {
                    Task::required(f.as_mut())
                } else {
                    Task::background(f.as_mut())
                }
            })
            .collect();
        let outcome = exec::run_virtual(&mut list, limit_s * 1_000_000);
        let link_stats = link.stats();
        if (outcome.is_err() && std::env::var_os("GOODPUT_DEBUG").is_some())
            || std::env::var_os("GOODPUT_TRACE").is_some()
        {
            eprintln!(
                "goodput: run ended at {} us ({:?}):\n{}",
                exec::now_us(),
                outcome,
                link.describe()
            );
        }
        let (finished, exec) = match outcome {
            Ok(e) => (true, e),
            Err(e) => (false, e),
        };
        let run = crate::goodput::Run {
            flows: times
                .iter()
                .map(|(s, f)| match (s.get(), f.get()) {
                    (Some(s), Some(f)) => Some((f - s).as_micros()),
                    _ => None,
                })
                .collect(),
            bytes: total as u64,
            link: link_stats,
            exec,
            end_us: exec::now_us(),
            finished,
        };
        drop(list);
        run
    })
}

/// Writes `total` pattern bytes in [`APP_CHUNK`] pieces, then closes the sending half.
async fn send_pattern(s: &mut TcpSocket<'_>, total: usize, what: &str) {
    let mut sent = 0usize;
    while sent < total {
        let len = (total - sent).min(APP_CHUNK);
        sent += s.write(pattern::slice(sent, len)).await.expect(what);
    }
    s.close();
}

/// Reads and checks `total` pattern bytes.
async fn recv_pattern(s: &mut TcpSocket<'_>, total: usize) {
    let mut buf = vec![0u8; APP_CHUNK];
    let mut got = 0usize;
    while got < total {
        let n = s
            .read(&mut buf[..APP_CHUNK.min(total - got)])
            .await
            .expect("goodput: read");
        assert!(n > 0, "goodput: end of stream after {got} of {total} bytes");
        pattern::verify("goodput", got, &buf[..n]);
        got += n;
    }
}

/// Reads the end of the stream after `total` bytes.
async fn recv_end(s: &mut TcpSocket<'_>, total: usize) {
    let mut buf = [0u8; 1];
    let n = s.read(&mut buf).await.expect("goodput: read at the end");
    assert_eq!(n, 0, "goodput: more than {total} bytes arrived");
}

/// The workloads of the `tap` binary: one stack on a Linux TAP device, Linux as the peer
/// (`scripts/throughput.sh`). Byte `i` of every stream is `i % 251` (`scripts/netpeer.py
/// --pattern`), checked on receipt.
#[cfg(target_os = "linux")]
pub mod tap {
    use super::*;
    use crate::tap::{Mode, Options};
    use ferronet_tuntap::TapDevice;

    /// Byte `i` of a stream.
    fn fill(offset: usize, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = ((offset + i) % 251) as u8;
        }
    }

    fn check(offset: usize, buf: &[u8]) -> Result<(), String> {
        match buf
            .iter()
            .enumerate()
            .find(|(i, b)| **b != ((offset + i) % 251) as u8)
        {
            Some((i, b)) => Err(format!(
                "byte {} is {b}, not {}",
                offset + i,
                (offset + i) % 251
            )),
            None => Ok(()),
        }
    }

    /// Runs `opts` on `dev`; prints one line per connection on stdout. `Err`: what went wrong.
    pub fn run(dev: TapDevice, opts: &Options) -> Result<(), String> {
        let cfg = Config::ipv4_static(StaticConfigV4 {
            address: Ipv4Cidr::new(opts.ip.0, opts.ip.1),
            gateway: None,
            dns_servers: Default::default(),
        });
        let mut res = Box::new(StackResources::<SOCKETS>::new());
        let (stack, mut runner) = net::new(dev, cfg, &mut *res, opts.seed);
        let error: core::cell::RefCell<Option<String>> = core::cell::RefCell::new(None);
        // Connections served; set to `u64::MAX` on an error, which ends the run.
        let served = Notify::default();
        let fail = |e: String| {
            error.borrow_mut().get_or_insert(e);
            served.set(u64::MAX);
        };
        let listeners = match opts.mode {
            Mode::Http => SOCKETS - 1,
            _ => 1,
        };
        let count = opts.count as u64;
        let peer = IpEndpoint::new((*opts.peer.ip()).into(), opts.peer.port());
        let mut tasks: Vec<core::pin::Pin<Box<dyn Future<Output = ()> + '_>>> = Vec::new();
        for l in 0..listeners {
            let (served, fail) = (&served, &fail);
            tasks.push(Box::pin(async move {
                stack.wait_config_up().await;
                if l == 0 && opts.mode != Mode::Send {
                    println!("listening on {}", opts.port);
                }
                let mut rx = vec![0u8; opts.buffer];
                let mut tx = vec![0u8; opts.buffer];
                let mut buf = vec![0u8; 16 * 1024];
                while served.get() < count {
                    let mut s = TcpSocket::new(stack, &mut rx, &mut tx);
                    s.set_timeout(Some(embassy_time::Duration::from_secs(30)));
                    s.set_nagle_enabled(opts.nagle);
                    let opened = match opts.mode {
                        Mode::Send => s.connect(peer).await.map_err(|e| format!("connect: {e:?}")),
                        _ => s
                            .accept(opts.port)
                            .await
                            .map_err(|e| format!("accept: {e:?}")),
                    };
                    if let Err(e) = opened {
                        return fail(e);
                    }
                    let started = embassy_time::Instant::now();
                    let moved = match opts.mode {
                        Mode::Sink => sink(&mut s, &mut buf).await,
                        Mode::Send => send(&mut s, &mut buf, opts.bytes).await,
                        Mode::Http => http(&mut s, &mut buf, opts.bytes).await,
                    };
                    s.close();
                    let _ = s.flush().await;
                    let n = match moved {
                        Ok(n) => n,
                        Err(e) => return fail(e),
                    };
                    let secs = (embassy_time::Instant::now() - started).as_micros() as f64 / 1e6;
                    if opts.mode != Mode::Http {
                        println!(
                            "{} {n} bytes in {secs:.3} s ({:.1} MB/s)",
                            if opts.mode == Mode::Sink {
                                "received"
                            } else {
                                "sent"
                            },
                            n as f64 / secs.max(1e-9) / 1e6
                        );
                    }
                    served.set(served.get().saturating_add(1));
                }
            }));
        }
        let mut done = pin!(served.wait_until(|v| v >= count));
        let mut run = pin!(async {
            runner.run().await;
        });
        let mut list: Vec<Task<'_>> = tasks
            .iter_mut()
            .map(|f| Task::background(f.as_mut()))
            .collect();
        list.push(Task::required(done.as_mut()));
        list.push(Task::background(run.as_mut()));
        exec::run_external(&mut list);
        drop(list);
        drop(tasks);
        let result = error.borrow_mut().take();
        match result {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn sink(s: &mut TcpSocket<'_>, buf: &mut [u8]) -> Result<usize, String> {
        let mut got = 0usize;
        loop {
            let n = s.read(buf).await.map_err(|e| format!("read: {e:?}"))?;
            if n == 0 {
                return Ok(got);
            }
            check(got, &buf[..n])?;
            got += n;
        }
    }

    async fn send(s: &mut TcpSocket<'_>, buf: &mut [u8], total: usize) -> Result<usize, String> {
        let mut sent = 0usize;
        while sent < total {
            let len = (total - sent).min(buf.len());
            fill(sent, &mut buf[..len]);
            let mut off = 0;
            while off < len {
                off += s
                    .write(&buf[off..len])
                    .await
                    .map_err(|e| format!("write: {e:?}"))?;
            }
            sent += len;
        }
        Ok(sent)
    }

    /// One HTTP/1.x request (read up to the blank line), answered with `body` pattern bytes.
    async fn http(s: &mut TcpSocket<'_>, buf: &mut [u8], body: usize) -> Result<usize, String> {
        let mut got = 0usize;
        while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
            if got == buf.len() {
                return Err("request head too long".into());
            }
            let n = s
                .read(&mut buf[got..])
                .await
                .map_err(|e| format!("read: {e:?}"))?;
            if n == 0 {
                return Err("end of stream inside the request".into());
            }
            got += n;
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {body}\r\nConnection: close\r\n\r\n"
        );
        let mut off = 0;
        while off < head.len() {
            off += s
                .write(&head.as_bytes()[off..])
                .await
                .map_err(|e| format!("write: {e:?}"))?;
        }
        send(s, buf, body).await
    }
}
