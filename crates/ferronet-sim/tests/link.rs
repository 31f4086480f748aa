//! Point-to-point link behaviour.

mod common;

use std::task::Context;

use common::{CountingWaker, eth_frame};
use embassy_net_driver::{Driver, HardwareAddress, LinkState, RxToken, TxToken};
use embassy_time::{Duration, Instant};
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{
    ConfigError, Direction, DirectionStats, Endpoint, Faults, LinkConfig, MAC_A, MAC_B,
    SendFrameError, SimDevice, pair, pair_ethernet,
};

fn numbered(i: u32) -> Vec<u8> {
    eth_frame(MAC_B, MAC_A, &i.to_be_bytes())
}

fn number_of(frame: &[u8]) -> u32 {
    u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]])
}

#[test]
fn handles_are_send_and_sync() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<SimDevice>();
    send::<ferronet_sim::link::LinkHandle>();
    sync::<ferronet_sim::link::LinkHandle>();
    send::<ferronet_sim::switch::Switch>();
    sync::<ferronet_sim::switch::Switch>();
}

#[test]
fn frames_pass_intact_in_both_directions() {
    let (mut a, mut b, link) = pair_ethernet(LinkConfig::default()).unwrap();
    assert_eq!(a.hardware_address(), HardwareAddress::Ethernet(MAC_A));
    assert_eq!(b.hardware_address(), HardwareAddress::Ethernet(MAC_B));
    assert_eq!(a.capabilities().max_transmission_unit, 1514);

    let payload: Vec<u8> = (0..=255).collect();
    let f1 = eth_frame(MAC_B, MAC_A, &payload);
    let f2 = eth_frame(MAC_A, MAC_B, b"reply");
    a.send_frame(&f1).unwrap();
    b.send_frame(&f2).unwrap();
    assert_eq!(b.try_recv_frame(), Some(f1.clone()));
    assert_eq!(a.try_recv_frame(), Some(f2.clone()));
    assert_eq!(a.try_recv_frame(), None);
    assert_eq!(b.try_recv_frame(), None);

    // Through the Driver API: a TxToken fills the buffer, the RxToken hands it over.
    let (_count, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    let tx = a.transmit(&mut cx).expect("room");
    tx.consume(f1.len(), |buf| buf.copy_from_slice(&f1));
    let (rx, _tx) = b.receive(&mut cx).expect("frame");
    let got = rx.consume(|buf| buf.to_vec());
    assert_eq!(got, f1);
    assert!(b.receive(&mut cx).is_none());

    let stats = link.stats();
    assert_eq!(stats.a_to_b.sent, 2);
    assert_eq!(stats.a_to_b.delivered, 2);
    assert_eq!(stats.a_to_b.bytes_sent, 2 * f1.len() as u64);
    assert_eq!(stats.a_to_b.bytes_delivered, 2 * f1.len() as u64);
    assert_eq!(stats.b_to_a.sent, 1);
    assert_eq!(stats.b_to_a.delivered, 1);
}

#[test]
fn ip_links_have_no_l2_address() {
    let (mut a, mut b, _link) = pair(LinkConfig::ip(), Endpoint::Ip, Endpoint::Ip).unwrap();
    assert_eq!(a.hardware_address(), HardwareAddress::Ip);
    assert_eq!(b.capabilities().max_transmission_unit, 1500);
    let packet = [
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    a.send_frame(&packet).unwrap();
    assert_eq!(b.try_recv_frame().as_deref(), Some(&packet[..]));
}

#[test]
fn invalid_configs_are_errors() {
    let bad = |cfg: LinkConfig| pair_ethernet(cfg).err();
    assert_eq!(
        bad(LinkConfig {
            loss: 1.5,
            ..LinkConfig::default()
        }),
        Some(ConfigError::InvalidProbability {
            name: "loss",
            value: 1.5
        })
    );
    assert!(matches!(
        bad(LinkConfig {
            reorder: f64::NAN,
            ..LinkConfig::default()
        }),
        Some(ConfigError::InvalidProbability {
            name: "reorder",
            ..
        })
    ));
    assert!(matches!(
        bad(LinkConfig {
            corrupt: -0.1,
            ..LinkConfig::default()
        }),
        Some(ConfigError::InvalidProbability {
            name: "corrupt",
            ..
        })
    ));
    assert_eq!(
        bad(LinkConfig {
            mtu: 0,
            ..LinkConfig::default()
        }),
        Some(ConfigError::ZeroMtu)
    );
    assert_eq!(
        bad(LinkConfig {
            queue_depth: 0,
            ..LinkConfig::default()
        }),
        Some(ConfigError::ZeroQueueDepth)
    );
    assert_eq!(
        pair(
            LinkConfig::default(),
            Endpoint::Ethernet(MAC_A),
            Endpoint::Ip
        )
        .err(),
        Some(ConfigError::MediumMismatch)
    );
    // Boundaries are fine.
    assert!(
        pair_ethernet(LinkConfig {
            loss: 1.0,
            duplicate: 0.0,
            ..LinkConfig::default()
        })
        .is_ok()
    );
    let (_a, _b, link) = pair_ethernet(LinkConfig::default()).unwrap();
    assert!(link.set_loss(2.0).is_err());
    assert!(
        link.set_faults(Faults {
            duplicate: -1.0,
            ..Faults::NONE
        })
        .is_err()
    );
    assert_eq!(link.config().loss, 0.0);
}

#[test]
fn full_queue_gives_backpressure_and_wakes_after_the_peer_pops() {
    let cfg = LinkConfig {
        queue_depth: 4,
        ..LinkConfig::default()
    };
    let (mut a, mut b, link) = pair_ethernet(cfg).unwrap();
    let (count, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    for i in 0..4 {
        let tx = a.transmit(&mut cx).expect("room for 4 frames");
        let frame = numbered(i);
        tx.consume(frame.len(), |buf| buf.copy_from_slice(&frame));
    }
    assert!(a.transmit(&mut cx).is_none(), "queue full: no token");
    assert_eq!(a.send_frame(&numbered(99)), Err(SendFrameError::QueueFull));
    assert_eq!(count.count(), 0);

    let first = b.try_recv_frame().unwrap();
    assert_eq!(number_of(&first), 0);
    assert_eq!(count.count(), 1, "popping a frame wakes the blocked sender");
    assert!(a.transmit(&mut cx).is_some());

    let stats = link.stats().a_to_b;
    assert_eq!(stats.sent, 4);
    assert_eq!(stats.dropped_queue_full, 0);
    // The rest arrive in order.
    let rest: Vec<u32> = std::iter::from_fn(|| b.try_recv_frame())
        .map(|f| number_of(&f))
        .collect();
    assert_eq!(rest, [1, 2, 3]);
}

#[test]
fn receive_hands_out_a_pair_even_without_tx_room() {
    let cfg = LinkConfig {
        queue_depth: 1,
        ..LinkConfig::default()
    };
    let (mut a, mut b, link) = pair_ethernet(cfg).unwrap();
    a.send_frame(&numbered(1)).unwrap();
    b.send_frame(&numbered(2)).unwrap();
    // a's queue (b -> a) is full, but a still gets its frame and a TxToken.
    let (_count, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    b.try_recv_frame().unwrap();
    // Now b -> a holds one frame; refill a -> b so a has no TX room.
    a.send_frame(&numbered(3)).unwrap();
    assert!(a.transmit(&mut cx).is_none());
    let (rx, tx) = a.receive(&mut cx).expect("a frame is waiting");
    assert_eq!(rx.consume(|f| number_of(f)), 2);
    tx.consume(60, |buf| buf.fill(0));
    let stats = link.stats().a_to_b;
    assert_eq!(stats.sent, 3);
    assert_eq!(stats.dropped_queue_full, 1, "the reply found no room");
}

fn run_faulty(seed: u64) -> (DirectionStats, Vec<Vec<u8>>) {
    let cfg = LinkConfig {
        loss: 0.1,
        duplicate: 0.05,
        reorder: 0.05,
        corrupt: 0.02,
        seed,
        ..LinkConfig::default()
    };
    let (mut a, mut b, link) = pair_ethernet(cfg).unwrap();
    let mut received = Vec::new();
    for i in 0..10_000 {
        a.send_frame(&numbered(i)).unwrap();
        while let Some(frame) = b.try_recv_frame() {
            received.push(frame);
        }
    }
    (link.stats().a_to_b, received)
}

#[test]
fn faults_are_deterministic_per_seed_and_match_probabilities() {
    let (s1, r1) = run_faulty(1234);
    let (s2, r2) = run_faulty(1234);
    assert_eq!(s1, s2);
    assert_eq!(r1, r2);
    let (s3, _) = run_faulty(99);
    assert_ne!(s1, s3, "another seed gives other faults");

    assert_eq!(s1.sent, 10_000);
    assert!((800..1200).contains(&s1.lost), "lost {}", s1.lost);
    // Duplication, reordering and corruption apply to the ~9000 frames not lost.
    assert!(
        (300..600).contains(&s1.duplicated),
        "duplicated {}",
        s1.duplicated
    );
    assert!(
        (300..600).contains(&s1.reordered),
        "reordered {}",
        s1.reordered
    );
    assert!(
        (100..260).contains(&s1.corrupted),
        "corrupted {}",
        s1.corrupted
    );
    assert_eq!(s1.dropped_queue_full, 0);
    // At most one frame is still held back by the reorder fault at the end.
    let expected = s1.sent - s1.lost + s1.duplicated;
    assert!(
        s1.delivered == expected || s1.delivered + 1 == expected,
        "delivered {} expected {expected}",
        s1.delivered
    );
    assert_eq!(s1.delivered, r1.len() as u64);
    // Count the corrupted frames by comparing with what was sent.
    let damaged = r1
        .iter()
        .filter(|f| {
            let n = number_of(f);
            n >= 10_000 || **f != numbered(n)
        })
        .count();
    assert!(damaged > 0 && damaged as u64 <= 2 * s1.corrupted);
}

#[test]
fn reorder_swaps_neighbours_and_duplicate_and_corrupt_work() {
    let cfg = LinkConfig {
        reorder: 1.0,
        ..LinkConfig::default()
    };
    let (mut a, mut b, link) = pair_ethernet(cfg).unwrap();
    for i in 1..=4 {
        a.send_frame(&numbered(i)).unwrap();
    }
    let order: Vec<u32> = std::iter::from_fn(|| b.try_recv_frame())
        .map(|f| number_of(&f))
        .collect();
    assert_eq!(order, [2, 1, 4, 3]);
    assert_eq!(link.stats().a_to_b.reordered, 2);

    let cfg = LinkConfig {
        duplicate: 1.0,
        ..LinkConfig::default()
    };
    let (mut a, mut b, link) = pair_ethernet(cfg).unwrap();
    a.send_frame(&numbered(7)).unwrap();
    assert_eq!(b.try_recv_frame(), Some(numbered(7)));
    assert_eq!(b.try_recv_frame(), Some(numbered(7)));
    assert_eq!(b.try_recv_frame(), None);
    assert_eq!(link.stats().a_to_b.duplicated, 1);
    assert_eq!(link.stats().a_to_b.delivered, 2);

    let cfg = LinkConfig {
        corrupt: 1.0,
        seed: 5,
        ..LinkConfig::default()
    };
    let (mut a, mut b, _link) = pair_ethernet(cfg).unwrap();
    let sent = numbered(8);
    a.send_frame(&sent).unwrap();
    let got = b.try_recv_frame().unwrap();
    let flipped: u32 = sent
        .iter()
        .zip(&got)
        .map(|(x, y)| (x ^ y).count_ones())
        .sum();
    assert_eq!(flipped, 1);

    // Faults can change at run time, per direction.
    let (mut a, mut b, link) = pair_ethernet(LinkConfig::default()).unwrap();
    link.set_direction_faults(
        Direction::AToB,
        Faults {
            loss: 1.0,
            ..Faults::NONE
        },
    )
    .unwrap();
    a.send_frame(&numbered(1)).unwrap();
    b.send_frame(&numbered(2)).unwrap();
    assert_eq!(b.try_recv_frame(), None);
    assert!(a.try_recv_frame().is_some());
    link.set_loss(0.0).unwrap();
    a.send_frame(&numbered(3)).unwrap();
    assert!(b.try_recv_frame().is_some());
    assert_eq!(link.stats().a_to_b.lost, 1);

    // Changing one knob for both directions keeps the other per-direction knobs.
    link.set_direction_faults(
        Direction::BToA,
        Faults {
            duplicate: 1.0,
            ..Faults::NONE
        },
    )
    .unwrap();
    link.set_corrupt(0.0).unwrap();
    b.send_frame(&numbered(4)).unwrap();
    assert_eq!(a.try_recv_frame(), Some(numbered(4)));
    assert_eq!(a.try_recv_frame(), Some(numbered(4)));
    a.send_frame(&numbered(5)).unwrap();
    assert_eq!(b.try_recv_frame(), Some(numbered(5)));
    assert_eq!(b.try_recv_frame(), None);
}

#[test]
fn link_down_drops_and_reports() {
    let (mut a, mut b, link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (count, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(link.is_up());
    assert!(a.link_state(&mut cx) == LinkState::Up);

    a.send_frame(&numbered(1)).unwrap();
    a.send_frame(&numbered(2)).unwrap();
    link.set_up(false);
    assert!(!link.is_up());
    assert!(!b.is_link_up());
    assert!(count.count() >= 1, "the link waker is woken");
    assert!(a.link_state(&mut cx) == LinkState::Down);
    assert_eq!(b.try_recv_frame(), None, "queued frames are discarded");
    assert_eq!(a.send_frame(&numbered(3)), Err(SendFrameError::LinkDown));
    // The driver still hands out a token while down; the frame is dropped.
    let tx = a.transmit(&mut cx).expect("token while down");
    tx.consume(60, |buf| buf.fill(1));
    let stats = link.stats().a_to_b;
    assert_eq!(stats.sent, 4);
    assert_eq!(stats.dropped_link_down, 4);
    assert_eq!(stats.delivered, 0);

    let before = count.count();
    link.set_up(true);
    assert!(count.count() > before);
    assert!(a.link_state(&mut cx) == LinkState::Up);
    a.send_frame(&numbered(5)).unwrap();
    assert_eq!(b.try_recv_frame(), Some(numbered(5)));
}

#[test]
fn oversize_frames_are_dropped() {
    let cfg = LinkConfig {
        mtu: 100,
        ..LinkConfig::default()
    };
    let (mut a, mut b, link) = pair_ethernet(cfg).unwrap();
    assert_eq!(a.send_frame(&[0u8; 101]), Err(SendFrameError::Oversize));
    a.send_frame(&[0u8; 100]).unwrap();
    let (_count, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    a.transmit(&mut cx).unwrap().consume(200, |buf| buf.fill(0));
    assert_eq!(b.try_recv_frame().map(|f| f.len()), Some(100));
    assert_eq!(b.try_recv_frame(), None);
    let stats = link.stats().a_to_b;
    assert_eq!(stats.oversize, 2);
    assert_eq!(stats.delivered, 1);
}

#[test]
fn hardware_address_changes_are_reported_and_wake() {
    let (mut a, _b, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (count, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    let _ = a.link_state(&mut cx);
    let new = HardwareAddress::Ethernet([0x02, 0xaa, 0, 0, 0, 0x42]);
    a.set_hardware_address(new);
    assert_eq!(a.hardware_address(), new);
    assert_eq!(count.count(), 1);
}

#[test]
fn latency_delays_delivery_in_virtual_time() {
    let ex = Executor::new();
    let cfg = LinkConfig {
        latency: Duration::from_millis(5),
        ..LinkConfig::default()
    };
    let (mut a, mut b, link) = pair_ethernet(cfg).unwrap();
    a.send_frame(&numbered(1)).unwrap();
    assert_eq!(b.try_recv_frame(), None, "still in flight");
    let frame = ex.run_until(b.recv_frame());
    assert_eq!(number_of(&frame), 1);
    assert_eq!(ex.now(), Instant::from_millis(5));

    // Through the Driver API: receive() arranges a timer wake for the in-flight frame.
    link.set_direction_latency(Direction::AToB, Duration::from_millis(2));
    a.send_frame(&numbered(2)).unwrap();
    let got = ex.run_until(std::future::poll_fn(|cx| match b.receive(cx) {
        Some((rx, _tx)) => std::task::Poll::Ready(rx.consume(|f| number_of(f))),
        None => std::task::Poll::Pending,
    }));
    assert_eq!(got, 2);
    assert_eq!(ex.now(), Instant::from_millis(7));
}

#[test]
fn send_frame_wait_waits_for_room() {
    let ex = Executor::new();
    let cfg = LinkConfig {
        queue_depth: 1,
        ..LinkConfig::default()
    };
    let (mut a, mut b, link) = pair_ethernet(cfg).unwrap();
    ex.spawn(async move {
        for i in 0..5 {
            a.send_frame_wait(&numbered(i)).await.unwrap();
        }
    });
    let got = ex.run_until(async {
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(number_of(&b.recv_frame().await));
        }
        got
    });
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert_eq!(link.stats().a_to_b.dropped_queue_full, 0);
    assert_eq!(ex.pending_tasks(), 0);
}

#[test]
fn capture_records_delivered_frames_with_direction_and_time() {
    let ex = Executor::new();
    let (mut a, mut b, link) = pair_ethernet(LinkConfig::default()).unwrap();
    a.send_frame(&numbered(0)).unwrap();
    b.try_recv_frame().unwrap();
    link.capture(true);
    a.send_frame(&numbered(1)).unwrap();
    ex.clock().advance(Duration::from_millis(3));
    b.try_recv_frame().unwrap();
    b.send_frame(&numbered(2)).unwrap();
    a.try_recv_frame().unwrap();
    let captured = link.take_captured();
    assert_eq!(captured.len(), 2);
    assert_eq!(captured[0].direction, Direction::AToB);
    assert_eq!(captured[0].data, numbered(1));
    assert_eq!(captured[0].time, Instant::from_millis(3));
    assert_eq!(captured[1].direction, Direction::BToA);
    assert!(link.captured().is_empty());
}
