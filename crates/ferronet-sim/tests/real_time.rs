//! The real clock on threads without a virtual clock, with a foreign executor.

mod common;

use std::time::Duration as StdDuration;

use common::block_on;
use embassy_time::{Duration, Instant, Timer, with_timeout};
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{LinkConfig, pair_ethernet};

#[test]
fn timers_work_on_a_foreign_executor() {
    let started = std::time::Instant::now();
    let t0 = Instant::now();
    block_on(Timer::after_millis(50));
    let elapsed = Instant::now() - t0;
    assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
    assert!(started.elapsed() >= StdDuration::from_millis(50));
    assert!(started.elapsed() < StdDuration::from_secs(10));
}

#[test]
fn many_timers_across_threads() {
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            std::thread::spawn(move || {
                block_on(async {
                    for _ in 0..3 {
                        Timer::after_millis(5 + i).await;
                    }
                    // A timeout that fires before the future completes.
                    with_timeout(Duration::from_millis(10), std::future::pending::<()>()).await
                })
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().is_err());
    }
}

#[test]
fn link_latency_works_in_real_time() {
    let cfg = LinkConfig {
        latency: Duration::from_millis(30),
        ..LinkConfig::default()
    };
    let (mut a, mut b, _link) = pair_ethernet(cfg).unwrap();
    let started = std::time::Instant::now();
    a.send_frame(&[0u8; 60]).unwrap();
    let frame = block_on(b.recv_frame());
    assert_eq!(frame.len(), 60);
    assert!(started.elapsed() >= StdDuration::from_millis(30));
}

#[test]
fn real_clock_keeps_running_beside_a_virtual_one() {
    // A virtual executor on this thread does not affect another thread's real clock.
    let ex = Executor::new();
    ex.run_until(Timer::after_secs(1_000_000));
    let other = std::thread::spawn(|| Instant::now().as_secs())
        .join()
        .unwrap();
    assert!(other < 1000);
    assert_eq!(Instant::now().as_secs(), 1_000_000);
}
