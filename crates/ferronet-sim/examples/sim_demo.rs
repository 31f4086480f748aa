//! Two ferronet stacks on a simulated Ethernet link with 2% packet loss: a TCP echo of
//! 256 KiB and a UDP ping-pong, on ferronet-sim's virtual clock. Prints what happens.
//!
//! Run with `cargo run -p ferronet-sim --example sim-demo` (or `scripts/sim-demo.sh`).
//!
//! Unlike the programs in `examples/std`, which run on embassy-executor (`arch-std`) with
//! embassy-time's `std` driver, this demo runs on ferronet-sim's own [`Executor`] and time
//! driver: the virtual clock only advances when every task waits, which only that executor
//! knows, so seconds of retransmission timeouts take milliseconds and every run is the same.

use embassy_futures::join::join;
use embassy_time::{Duration, Instant};
use ferronet::tcp::TcpSocket;
use ferronet::udp::{PacketMetadata, UdpSocket};
use ferronet::{Config, IpEndpoint, Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4};
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{LinkConfig, pair_ethernet};

const TOTAL: usize = 256 * 1024;

fn config(host: u8) -> Config {
    Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, host), 24),
        gateway: None,
        dns_servers: heapless::Vec::new(),
    })
}

fn leak<T>(t: T) -> &'static mut T {
    Box::leak(Box::new(t))
}

fn ms(t: Instant) -> f64 {
    t.as_micros() as f64 / 1000.0
}

fn main() {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!(
            "sim-demo: two ferronet stacks over a simulated lossy link (TCP echo + UDP ping-pong)"
        );
        return;
    }
    let ex = Executor::new();
    let link_cfg = LinkConfig {
        loss: 0.02,
        latency: Duration::from_millis(2),
        seed: 7,
        ..LinkConfig::default()
    };
    let (dev_a, dev_b, link) = pair_ethernet(link_cfg).expect("valid link config");
    let (a, mut runner_a) = ferronet::new(dev_a, config(2), leak(StackResources::<4>::new()), 1);
    let (b, mut runner_b) = ferronet::new(dev_b, config(3), leak(StackResources::<4>::new()), 2);
    ex.spawn(async move {
        runner_a.run().await;
    });
    ex.spawn(async move {
        runner_b.run().await;
    });
    println!("A = 192.0.2.2, B = 192.0.2.3, link: 2% loss each way, 2 ms latency");

    // B: a TCP echo server and a UDP echo server.
    ex.spawn(async move {
        let (mut rx, mut tx) = ([0u8; 8192], [0u8; 8192]);
        let mut s = TcpSocket::new(b, &mut rx, &mut tx);
        s.accept(7).await.expect("accept");
        println!(
            "[{:9.3} ms] B: accepted TCP from {:?}",
            ms(Instant::now()),
            s.remote_endpoint()
        );
        let mut chunk = [0u8; 1024];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => {
                    let mut off = 0;
                    while off < n {
                        off += s.write(&chunk[off..n]).await.expect("write");
                    }
                }
                Err(e) => {
                    println!("B: read error: {e}");
                    return;
                }
            }
        }
        s.close();
        let _ = s.flush().await;
    });
    ex.spawn(async move {
        let (mut rm, mut rb, mut tm, mut tb) = (
            [PacketMetadata::EMPTY; 4],
            [0u8; 512],
            [PacketMetadata::EMPTY; 4],
            [0u8; 512],
        );
        let mut u = UdpSocket::new(b, &mut rm, &mut rb, &mut tm, &mut tb);
        u.bind(9).expect("bind");
        let mut d = [0u8; 64];
        loop {
            let (n, meta) = u.recv_from(&mut d).await.expect("recv");
            u.send_to(&d[..n], meta).await.expect("send");
        }
    });

    // A: the client.
    let started = std::time::Instant::now();
    let result = ex.run_until(async move {
        let (mut rx, mut tx) = ([0u8; 8192], [0u8; 8192]);
        let mut s = TcpSocket::new(a, &mut rx, &mut tx);
        s.connect(IpEndpoint::new(Ipv4Address::new(192, 0, 2, 3).into(), 7))
            .await
            .expect("connect");
        println!(
            "[{:9.3} ms] A: connected from {:?}",
            ms(Instant::now()),
            s.local_endpoint()
        );
        let (mut reader, mut writer) = s.split();
        let send = async {
            let mut chunk = [0u8; 1000];
            let mut sent = 0;
            while sent < TOTAL {
                let n = chunk.len().min(TOTAL - sent);
                for (k, b) in chunk[..n].iter_mut().enumerate() {
                    *b = ((sent + k) % 251) as u8;
                }
                let mut off = 0;
                while off < n {
                    off += writer.write(&chunk[off..n]).await.expect("write");
                }
                sent += n;
            }
            writer.flush().await.expect("flush");
        };
        let recv = async {
            let mut got = 0;
            let mut chunk = [0u8; 1024];
            while got < TOTAL {
                let n = reader.read(&mut chunk).await.expect("read");
                assert!(n > 0, "early end of stream");
                for (k, b) in chunk[..n].iter().enumerate() {
                    assert_eq!(*b, ((got + k) % 251) as u8, "corrupt byte at {}", got + k);
                }
                got += n;
            }
            got
        };
        let (_, echoed) = join(send, recv).await;
        println!(
            "[{:9.3} ms] A: {} bytes echoed back, every byte checked",
            ms(Instant::now()),
            echoed
        );
        s.close();
        let _ = s.flush().await;

        let (mut rm, mut rb, mut tm, mut tb) = ([PacketMetadata::EMPTY; 4], [0u8; 512], [PacketMetadata::EMPTY; 4], [0u8; 512]);
        let mut u = UdpSocket::new(a, &mut rm, &mut rb, &mut tm, &mut tb);
        u.bind(0).expect("bind");
        let peer = IpEndpoint::new(Ipv4Address::new(192, 0, 2, 3).into(), 9);
        let mut answered = 0;
        for i in 0..10u8 {
            u.send_to(&[i; 16], peer).await.expect("send");
            let mut d = [0u8; 64];
            let reply = embassy_time::with_timeout(Duration::from_millis(100), u.recv_from(&mut d)).await;
            if let Ok(Ok((n, _))) = reply {
                assert_eq!(&d[..n], &[i; 16]);
                answered += 1;
            }
        }
        println!(
            "[{:9.3} ms] A: UDP ping-pong: {answered}/10 answered (UDP does not retransmit lost datagrams)",
            ms(Instant::now())
        );
        (a.counters(), b.counters())
    });
    let stats = link.stats();
    println!(
        "link A->B: {} frames sent, {} lost; B->A: {} sent, {} lost",
        stats.a_to_b.sent, stats.a_to_b.lost, stats.b_to_a.sent, stats.b_to_a.lost
    );
    println!("stack A: {:?}\nstack B: {:?}", result.0, result.1);
    println!(
        "{:.1} ms of virtual time in {:.1} ms of real time",
        ms(Instant::now()),
        started.elapsed().as_secs_f64() * 1000.0
    );
}
