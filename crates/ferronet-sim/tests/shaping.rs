//! Link shaping: the bandwidth limit (serialization delay) and delay jitter, on virtual time.

mod common;

use common::eth_frame;
use embassy_time::{Duration, Instant, Timer};
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{LinkConfig, MAC_A, MAC_B, pair_ethernet};

/// A 100-byte frame (14-byte header, 86 bytes of payload) carrying `i`.
fn frame_100(i: u32) -> Vec<u8> {
    let mut payload = vec![0u8; 86];
    payload[..4].copy_from_slice(&i.to_be_bytes());
    eth_frame(MAC_B, MAC_A, &payload)
}

fn number_of(frame: &[u8]) -> u32 {
    u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]])
}

#[test]
fn rate_serializes_frames_one_after_another() {
    let ex = Executor::new();
    // 8000 bit/s: a 100-byte frame takes 100 ms on the wire.
    let cfg = LinkConfig {
        rate: 8000,
        latency: Duration::from_millis(1),
        ..LinkConfig::default()
    };
    let (mut a, mut b, _link) = pair_ethernet(cfg).unwrap();
    assert_eq!(frame_100(0).len(), 100);
    for i in 0..3 {
        a.send_frame(&frame_100(i)).unwrap();
    }
    for i in 0..3u32 {
        let f = ex.run_until(b.recv_frame());
        assert_eq!(number_of(&f), i);
        assert_eq!(
            ex.now(),
            Instant::from_millis(u64::from(i + 1) * 100 + 1),
            "frame {i}"
        );
    }
    // After an idle second the wire is free again: one serialization time plus latency.
    ex.run_until(Timer::at(Instant::from_secs(1)));
    a.send_frame(&frame_100(9)).unwrap();
    let f = ex.run_until(b.recv_frame());
    assert_eq!(number_of(&f), 9);
    assert_eq!(ex.now(), Instant::from_millis(1101));
    // The other direction has its own wire.
    b.send_frame(&eth_frame(MAC_A, MAC_B, &[0u8; 86])).unwrap();
    ex.run_until(a.recv_frame());
    assert_eq!(ex.now(), Instant::from_millis(1202));
}

#[test]
fn unlimited_rate_adds_no_delay() {
    let (mut a, mut b, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    a.send_frame(&frame_100(1)).unwrap();
    assert_eq!(b.try_recv_frame().map(|f| number_of(&f)), Some(1));
}

/// Sends 200 frames 1 ms apart over a link with 10 ms latency and `jitter`, and returns each
/// frame's one-way delay in µs, in order of arrival (checking that the order is kept).
fn delays(jitter: Duration, seed: u64) -> Vec<u64> {
    let ex = Executor::new();
    let cfg = LinkConfig {
        latency: Duration::from_millis(10),
        jitter,
        seed,
        ..LinkConfig::default()
    };
    let (mut a, mut b, _link) = pair_ethernet(cfg).unwrap();
    ex.spawn(async move {
        for i in 0..200 {
            a.send_frame(&frame_100(i)).unwrap();
            Timer::after_millis(1).await;
        }
    });
    ex.run_until(async {
        let mut out = Vec::new();
        for i in 0..200u32 {
            let f = b.recv_frame().await;
            assert_eq!(number_of(&f), i, "jitter must not reorder");
            let sent = Instant::from_millis(u64::from(i));
            out.push((Instant::now() - sent).as_micros());
        }
        out
    })
}

#[test]
fn jitter_delays_within_bounds_without_reordering() {
    let d = delays(Duration::from_millis(5), 7);
    assert!(d.iter().all(|&us| (10_000..=15_000).contains(&us)), "{d:?}");
    let distinct: std::collections::BTreeSet<_> = d.iter().collect();
    assert!(distinct.len() > 50, "delays vary: {distinct:?}");
    assert_eq!(
        d,
        delays(Duration::from_millis(5), 7),
        "same seed, same delays"
    );
    assert_ne!(
        d,
        delays(Duration::from_millis(5), 8),
        "another seed, other delays"
    );
    assert!(
        delays(Duration::from_ticks(0), 7)
            .iter()
            .all(|&us| us == 10_000)
    );
}

#[test]
fn jitter_leaves_the_fault_sequence_of_a_seed_unchanged() {
    let lost_with = |jitter: Duration| {
        let ex = Executor::new();
        let cfg = LinkConfig {
            queue_depth: 128,
            loss: 0.3,
            jitter,
            seed: 42,
            ..LinkConfig::default()
        };
        let (mut a, mut b, link) = pair_ethernet(cfg).unwrap();
        let mut got = Vec::new();
        for i in 0..100 {
            a.send_frame(&frame_100(i)).unwrap();
        }
        ex.run_for(Duration::from_secs(1));
        while let Some(f) = b.try_recv_frame() {
            got.push(number_of(&f));
        }
        (link.stats().a_to_b.lost, got)
    };
    let (lost, got) = lost_with(Duration::from_ticks(0));
    assert!(lost > 10, "{lost}");
    assert_eq!(lost_with(Duration::from_millis(3)), (lost, got));
}

#[test]
fn switch_port_rate_limits_egress() {
    use ferronet_sim::switch::Switch;
    let ex = Executor::new();
    let switch = Switch::new(LinkConfig {
        rate: 8000,
        ..LinkConfig::default()
    });
    let mut a = switch.port(MAC_A).unwrap();
    let mut b = switch.port(MAC_B).unwrap();
    // Teach the switch where B is, so A's frames go to B's port only.
    b.send_frame(&eth_frame(MAC_A, MAC_B, &[0u8; 86])).unwrap();
    ex.run_until(a.recv_frame());
    assert_eq!(ex.now(), Instant::from_millis(100));
    a.send_frame(&frame_100(1)).unwrap();
    a.send_frame(&frame_100(2)).unwrap();
    assert_eq!(number_of(&ex.run_until(b.recv_frame())), 1);
    assert_eq!(ex.now(), Instant::from_millis(200));
    assert_eq!(number_of(&ex.run_until(b.recv_frame())), 2);
    assert_eq!(ex.now(), Instant::from_millis(300));
}
