//! `CaptureDriver` around a real ferronet exchange: two stacks on a simulated Ethernet link,
//! stack A's device wrapped in a capture to a temporary pcap file. The file is parsed back
//! and compared with what the link itself saw; if `tshark` is installed it must read the file
//! without complaint (missing `tshark` is a loud skip, and a failure under `CI=true`).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use embassy_time::Duration;
use ferronet::tcp::TcpSocket;
use ferronet::udp::{PacketMetadata, UdpSocket};
use ferronet::{Config, IpEndpoint, Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4};
use ferronet_sim::capture::{CaptureDriver, Clock};
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{Direction, Endpoint, LinkConfig, MAC_A, pair, pair_ethernet};

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

/// A temporary file path, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(format!(
            "ferronet-capture-{}-{name}.pcap",
            std::process::id()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // FERRONET_KEEP_PCAP=1 keeps the files, to look at them.
        if std::env::var_os("FERRONET_KEEP_PCAP").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_file(&self.0);
    }
}

struct Record {
    micros: u64,
    data: Vec<u8>,
}

/// Parses a classic little-endian microsecond pcap file: (link type, records).
fn parse_pcap(bytes: &[u8]) -> (u32, Vec<Record>) {
    let u32_at = |off: usize| u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap());
    assert!(bytes.len() >= 24, "no pcap header");
    assert_eq!(u32_at(0), 0xa1b2_c3d4, "magic");
    assert_eq!(&bytes[4..8], &[2, 0, 4, 0], "version 2.4");
    let link_type = u32_at(20);
    let mut records = Vec::new();
    let mut off = 24;
    while off < bytes.len() {
        assert!(off + 16 <= bytes.len(), "truncated record header at {off}");
        let (secs, usecs, incl, orig) = (
            u32_at(off),
            u32_at(off + 4),
            u32_at(off + 8) as usize,
            u32_at(off + 12) as usize,
        );
        assert!(usecs < 1_000_000);
        assert_eq!(incl, orig, "nothing truncated");
        off += 16;
        assert!(off + incl <= bytes.len(), "truncated record data at {off}");
        records.push(Record {
            micros: u64::from(secs) * 1_000_000 + u64::from(usecs),
            data: bytes[off..off + incl].to_vec(),
        });
        off += incl;
    }
    (link_type, records)
}

/// Checks with tshark, if installed, that the file reads cleanly and holds `frames` frames;
/// returns tshark's one-line summaries.
fn tshark_check(path: &Path, frames: usize) -> Option<String> {
    let out = match Command::new("tshark").arg("-r").arg(path).output() {
        Ok(out) => out,
        Err(_) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("tshark is not installed (CI=true: not skipping the pcap check)");
            }
            eprintln!("SKIP: tshark is not installed; the pcap file was only checked by parsing");
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    let stderr_problems: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("Running as user \"root\""))
        .collect();
    assert!(stderr_problems.is_empty(), "tshark complained: {stderr}");
    assert!(
        !stdout.contains("Malformed") && !stdout.contains("Bogus"),
        "malformed packets:\n{stdout}"
    );
    assert_eq!(
        stdout.lines().count(),
        frames,
        "tshark's frame count:\n{stdout}"
    );
    // Expert errors (malformed packets, and with validation on, bad checksums).
    let expert = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-q", "-z", "expert,error"])
        .args(["-o", "ip.check_checksum:TRUE"])
        .args(["-o", "tcp.check_checksum:TRUE"])
        .args(["-o", "udp.check_checksum:TRUE"])
        .output()
        .expect("run tshark");
    let report = String::from_utf8_lossy(&expert.stdout);
    assert!(
        expert.status.success() && !report.contains("Errors ("),
        "tshark expert errors:\n{report}"
    );
    Some(stdout)
}

#[test]
fn a_ferronet_exchange_over_ethernet_is_captured_to_a_readable_pcap() {
    let file = TempFile::new("eth");
    let ex = Executor::new();
    let (dev_a, dev_b, link) = pair_ethernet(LinkConfig {
        latency: Duration::from_millis(1),
        ..LinkConfig::default()
    })
    .unwrap();
    link.capture(true);
    let out = BufWriter::new(File::create(&file.0).unwrap());
    let captured = CaptureDriver::new(dev_a, out).unwrap();
    let handle = captured.handle();
    let wall_start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;

    let (a, mut runner_a) = ferronet::new(captured, config(2), leak(StackResources::<4>::new()), 1);
    let (b, mut runner_b) = ferronet::new(dev_b, config(3), leak(StackResources::<4>::new()), 2);
    ex.spawn(async move { runner_a.run().await });
    ex.spawn(async move { runner_b.run().await });
    ex.spawn(async move {
        let (mut rx, mut tx) = ([0u8; 4096], [0u8; 4096]);
        let mut s = TcpSocket::new(b, &mut rx, &mut tx);
        s.accept(7).await.unwrap();
        let mut buf = [0u8; 512];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            let mut off = 0;
            while off < n {
                off += s.write(&buf[off..n]).await.unwrap();
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
        u.bind(9).unwrap();
        let mut d = [0u8; 64];
        loop {
            let (n, meta) = u.recv_from(&mut d).await.unwrap();
            u.send_to(&d[..n], meta).await.unwrap();
        }
    });
    ex.run_until(async move {
        let (mut rm, mut rb, mut tm, mut tb) = (
            [PacketMetadata::EMPTY; 4],
            [0u8; 512],
            [PacketMetadata::EMPTY; 4],
            [0u8; 512],
        );
        let mut u = UdpSocket::new(a, &mut rm, &mut rb, &mut tm, &mut tb);
        u.bind(0).unwrap();
        let peer = IpEndpoint::new(Ipv4Address::new(192, 0, 2, 3).into(), 9);
        for i in 0..3u8 {
            u.send_to(&[i; 20], peer).await.unwrap();
            let mut d = [0u8; 64];
            let (n, _) = u.recv_from(&mut d).await.unwrap();
            assert_eq!(&d[..n], &[i; 20]);
        }

        let (mut rx, mut tx) = ([0u8; 4096], [0u8; 4096]);
        let mut s = TcpSocket::new(a, &mut rx, &mut tx);
        s.connect(IpEndpoint::new(Ipv4Address::new(192, 0, 2, 3).into(), 7))
            .await
            .unwrap();
        let data: Vec<u8> = (0..20_000).map(|i| (i % 251) as u8).collect();
        let mut echoed = Vec::new();
        let mut sent = 0;
        let mut buf = [0u8; 1024];
        while echoed.len() < data.len() {
            if sent < data.len() {
                sent += s.write(&data[sent..]).await.unwrap();
            }
            if s.can_recv() || sent == data.len() {
                let n = s.read(&mut buf).await.unwrap();
                echoed.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(echoed, data);
        s.close();
        let _ = s.flush().await;
    });
    ex.run_for(Duration::from_secs(1));
    let wall_end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;

    let stats = handle.stats();
    assert!(!stats.failed);
    assert!(stats.rx_frames >= 20 && stats.tx_frames >= 20, "{stats:?}");

    // Parse the file back: every frame, in order, with wall-clock timestamps.
    let (link_type, records) = parse_pcap(&std::fs::read(&file.0).unwrap());
    assert_eq!(link_type, 1, "LINKTYPE_ETHERNET");
    assert_eq!(records.len() as u64, stats.rx_frames + stats.tx_frames);
    let bytes: u64 = records.iter().map(|r| r.data.len() as u64).sum();
    assert_eq!(bytes, stats.bytes);
    assert!(records.windows(2).all(|w| w[0].micros <= w[1].micros));
    assert!(
        records
            .iter()
            .all(|r| (wall_start..=wall_end).contains(&r.micros)),
        "timestamps from the wall clock"
    );

    // Compare with what the link saw: A's received frames are exactly the frames it took
    // from the link; its sent frames are what B took (B may not have taken the last ones).
    let seen = link.captured();
    let from_a = |r: &&Record| r.data[6..12] == MAC_A;
    let rx: Vec<&[u8]> = records
        .iter()
        .filter(|r| !from_a(r))
        .map(|r| &r.data[..])
        .collect();
    let tx: Vec<&[u8]> = records.iter().filter(from_a).map(|r| &r.data[..]).collect();
    let link_rx: Vec<&[u8]> = seen
        .iter()
        .filter(|f| f.direction == Direction::BToA)
        .map(|f| &f.data[..])
        .collect();
    let link_tx: Vec<&[u8]> = seen
        .iter()
        .filter(|f| f.direction == Direction::AToB)
        .map(|f| &f.data[..])
        .collect();
    assert_eq!(rx.len() as u64, stats.rx_frames);
    assert_eq!(tx.len() as u64, stats.tx_frames);
    assert!(rx == link_rx, "received frames differ from the link's");
    assert!(
        tx.len() >= link_tx.len() && tx[..link_tx.len()] == link_tx[..],
        "sent frames differ from the link's"
    );

    if let Some(summary) = tshark_check(&file.0, records.len()) {
        assert!(summary.contains("ARP"), "{summary}");
        assert!(summary.contains("UDP"), "{summary}");
        assert!(summary.contains("TCP"), "{summary}");
    }
}

#[test]
fn an_ip_medium_capture_is_raw_ip() {
    let file = TempFile::new("ip");
    let ex = Executor::new();
    let (dev_a, dev_b, _link) = pair(LinkConfig::ip(), Endpoint::Ip, Endpoint::Ip).unwrap();
    let captured = CaptureDriver::new(dev_a, File::create(&file.0).unwrap())
        .unwrap()
        .with_clock(Clock::Embassy);
    let handle = captured.handle();
    let (a, mut runner_a) = ferronet::new(captured, config(2), leak(StackResources::<4>::new()), 1);
    let (b, mut runner_b) = ferronet::new(dev_b, config(3), leak(StackResources::<4>::new()), 2);
    ex.spawn(async move { runner_a.run().await });
    ex.spawn(async move { runner_b.run().await });
    ex.spawn(async move {
        let (mut rm, mut rb, mut tm, mut tb) = (
            [PacketMetadata::EMPTY; 4],
            [0u8; 512],
            [PacketMetadata::EMPTY; 4],
            [0u8; 512],
        );
        let mut u = UdpSocket::new(b, &mut rm, &mut rb, &mut tm, &mut tb);
        u.bind(9).unwrap();
        let mut d = [0u8; 64];
        loop {
            let (n, meta) = u.recv_from(&mut d).await.unwrap();
            u.send_to(&d[..n], meta).await.unwrap();
        }
    });
    ex.run_until(async move {
        let (mut rm, mut rb, mut tm, mut tb) = (
            [PacketMetadata::EMPTY; 4],
            [0u8; 512],
            [PacketMetadata::EMPTY; 4],
            [0u8; 512],
        );
        let mut u = UdpSocket::new(a, &mut rm, &mut rb, &mut tm, &mut tb);
        u.bind(0).unwrap();
        let peer = IpEndpoint::new(Ipv4Address::new(192, 0, 2, 3).into(), 9);
        for i in 0..4u8 {
            u.send_to(&[i; 10], peer).await.unwrap();
            let mut d = [0u8; 64];
            u.recv_from(&mut d).await.unwrap();
        }
    });
    let (link_type, records) = parse_pcap(&std::fs::read(&file.0).unwrap());
    assert_eq!(link_type, 101, "LINKTYPE_RAW");
    assert_eq!(records.len(), 8);
    assert_eq!(handle.stats().rx_frames + handle.stats().tx_frames, 8);
    // Bare IPv4 packets (version 4, 20-byte header + 8 UDP + 10 payload), virtual timestamps.
    assert!(
        records
            .iter()
            .all(|r| r.data[0] == 0x45 && r.data.len() == 38)
    );
    assert!(records.iter().all(|r| r.micros < 10_000_000));
    if let Some(summary) = tshark_check(&file.0, 8) {
        assert_eq!(summary.matches("UDP").count(), 8, "{summary}");
    }
}
