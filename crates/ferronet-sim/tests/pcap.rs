//! pcap recording of links.

mod common;

use std::path::PathBuf;

use common::eth_frame;
use embassy_time::Duration;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{Endpoint, LinkConfig, MAC_A, MAC_B, pair, pair_ethernet};

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ferronet-sim-{}-{name}.pcap", std::process::id()))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[test]
fn link_pcap_has_header_and_timestamped_records() {
    let ex = Executor::new();
    let path = temp_path("eth");
    let (mut a, mut b, link) = pair_ethernet(LinkConfig::default()).unwrap();
    link.start_pcap(&path).unwrap();

    let f1 = eth_frame(MAC_B, MAC_A, b"first");
    let f2 = eth_frame(MAC_A, MAC_B, b"second frame");
    ex.clock().advance(Duration::from_micros(1_500_007));
    a.send_frame(&f1).unwrap();
    b.try_recv_frame().unwrap();
    ex.clock().advance(Duration::from_secs(2));
    b.send_frame(&f2).unwrap();
    a.try_recv_frame().unwrap();
    // Frames that are lost are not recorded.
    link.set_loss(1.0).unwrap();
    a.send_frame(&f1).unwrap();
    link.stop_pcap().unwrap();
    // After stopping, nothing more is written.
    link.set_loss(0.0).unwrap();
    a.send_frame(&f1).unwrap();
    b.try_recv_frame().unwrap();

    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(u32_at(&bytes, 0), 0xa1b2_c3d4);
    assert_eq!(&bytes[4..8], &[2, 0, 4, 0], "version 2.4");
    assert_eq!(u32_at(&bytes, 8), 0);
    assert_eq!(u32_at(&bytes, 12), 0);
    assert_eq!(u32_at(&bytes, 16), 65_535, "snaplen");
    assert_eq!(u32_at(&bytes, 20), 1, "LINKTYPE_ETHERNET");

    let r1 = 24;
    assert_eq!(u32_at(&bytes, r1), 1, "seconds");
    assert_eq!(u32_at(&bytes, r1 + 4), 500_007, "microseconds");
    assert_eq!(u32_at(&bytes, r1 + 8), f1.len() as u32);
    assert_eq!(u32_at(&bytes, r1 + 12), f1.len() as u32);
    assert_eq!(&bytes[r1 + 16..r1 + 16 + f1.len()], &f1[..]);

    let r2 = r1 + 16 + f1.len();
    assert_eq!(u32_at(&bytes, r2), 3);
    assert_eq!(u32_at(&bytes, r2 + 4), 500_007);
    assert_eq!(u32_at(&bytes, r2 + 8), f2.len() as u32);
    assert_eq!(&bytes[r2 + 16..], &f2[..]);
}

#[test]
fn ip_links_record_raw_ip() {
    let path = temp_path("ip");
    let (mut a, mut b, link) = pair(LinkConfig::ip(), Endpoint::Ip, Endpoint::Ip).unwrap();
    link.start_pcap(&path).unwrap();
    a.send_frame(&[0x45; 20]).unwrap();
    b.try_recv_frame().unwrap();
    link.stop_pcap().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(u32_at(&bytes, 20), 101, "LINKTYPE_RAW");
    assert_eq!(bytes.len(), 24 + 16 + 20);
}

#[test]
fn start_pcap_reports_io_errors() {
    let (_a, _b, link) = pair_ethernet(LinkConfig::default()).unwrap();
    let bad = std::env::temp_dir()
        .join("ferronet-sim-no-such-dir")
        .join("x.pcap");
    assert!(link.start_pcap(bad).is_err());
    assert!(link.stop_pcap().is_ok());
}
