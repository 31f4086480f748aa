//! Both queues full, both sides going on: the RX path never waits on the TX path, so neither
//! a driver written the naive way nor the stack can stop the other (see the crate's
//! "Deadlocks" documentation). Every test has a virtual time limit, so a deadlock fails it
//! instead of hanging. With a device changed to hand out a received frame only when the TX
//! queue has room (as embassy-net-driver-channel's does), both tests hit that limit.

mod common;

use std::cell::Cell;
use std::future::poll_fn;
use std::task::Poll;

use common::*;
use ferronet_driver_channel::driver::{
    Driver, HardwareAddress, LinkState, RxToken as _, TxToken as _,
};
use ferronet_driver_channel::{State, new};
use ferronet_sim::executor::Executor;
use futures::future::join;

/// First byte of a frame the stack sent on its own.
const DATA: u8 = 0xd0;
/// First byte of a reply the stack made to a received frame.
const REPLY: u8 = 0xe0;

/// Frame `seq` of a direction: a marker, then the sequence number.
fn frame(marker: u8, seq: u32) -> [u8; 5] {
    let [a, b, c, d] = seq.to_le_bytes();
    [marker, a, b, c, d]
}

fn seq_of(frame: &[u8]) -> u32 {
    u32::from_le_bytes([frame[1], frame[2], frame[3], frame[4]])
}

#[test]
fn full_queues_with_a_driver_that_waits_for_rx_room_before_serving_tx() {
    const FRAMES: u32 = 2000;
    const N: usize = 2;
    let state = leak(State::<64, N, N>::new());
    let (mut runner, mut dev) = new(state, HardwareAddress::Ethernet(mac(1)));
    let state_runner = runner.state_runner();

    // Fill both queues before anyone runs.
    let mut next_rx = 0;
    while let Some(buf) = runner.try_rx_buf() {
        buf[..5].copy_from_slice(&frame(DATA, next_rx));
        runner.rx_done(5);
        next_rx += 1;
    }
    let mut next_tx = 0;
    while let Some(tx) = dev.transmit(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        tx.consume(5, |buf| buf.copy_from_slice(&frame(DATA, next_tx)));
        next_tx += 1;
    }
    assert_eq!(
        (state_runner.rx_queue_len(), state_runner.tx_queue_len()),
        (N, N)
    );

    let driver_got = Cell::new(0u32);
    let replies = Cell::new(0u32);
    // The driver, naively: it always waits for room in the RX queue first, and serves the TX
    // queue only in between. With embassy-net-driver-channel's design this stops for good
    // here at once: the stack would not take RX frames while the TX queue is full.
    let driver = async {
        let mut seq = next_rx;
        loop {
            if seq < FRAMES {
                let buf = runner.rx_buf().await;
                buf[..5].copy_from_slice(&frame(DATA, seq));
                runner.rx_done(5);
                seq += 1;
            } else if driver_got.get() < FRAMES {
                // Nothing more to receive: wait for frames to send.
                runner.tx_buf().await;
            } else {
                break;
            }
            while let Some(f) = runner.try_tx_buf() {
                match f[0] {
                    DATA => {
                        assert_eq!(seq_of(f), driver_got.get(), "stack frames in order");
                        driver_got.set(driver_got.get() + 1);
                    }
                    REPLY => replies.set(replies.get() + 1),
                    other => panic!("unknown frame {other:#x}"),
                }
                runner.tx_done();
            }
        }
    };

    // The stack, like a real one: it takes every received frame (replying to each), then
    // sends its own while the TX queue has room; it waits only through its wakers.
    let (mut stack_got, mut sent) = (0u32, next_tx);
    let stack = poll_fn(|cx| {
        while let Some((rx, reply)) = dev.receive(cx) {
            rx.consume(|f| {
                assert_eq!(f[0], DATA);
                assert_eq!(seq_of(f), stack_got, "driver frames in order");
                reply.consume(5, |buf| buf.copy_from_slice(&frame(REPLY, seq_of(f))));
            });
            stack_got += 1;
        }
        while sent < FRAMES {
            let Some(tx) = dev.transmit(cx) else { break };
            tx.consume(5, |buf| buf.copy_from_slice(&frame(DATA, sent)));
            sent += 1;
        }
        if stack_got == FRAMES && sent == FRAMES {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    let ex = Executor::new();
    run(&ex, join(driver, stack));
    // Replies still queued.
    while let Some(f) = runner.try_tx_buf() {
        assert_eq!(f[0], REPLY);
        replies.set(replies.get() + 1);
        runner.tx_done();
    }
    let stats = state_runner.stats();
    assert_eq!(stats.rx_frames, FRAMES);
    // Each reply was either delivered or dropped for want of TX room, and some were dropped:
    // the TX queue was full while frames kept coming in.
    assert_eq!(replies.get() + stats.tx_reply_dropped, FRAMES);
    assert!(stats.tx_reply_dropped > 0, "{stats:?}");
    assert_eq!(stats.tx_frames, FRAMES + replies.get());
}

#[test]
fn tcp_both_ways_with_full_queues_and_a_naive_driver() {
    const LEN: usize = 256 * 1024;
    // A one-frame RX queue fills at once; a longer TX queue lets the stack fill it while
    // the driver is busy with the other direction.
    const N_RX: usize = 1;
    const N_TX: usize = 4;
    let log = DriverLog::default();
    let ex = Executor::new();
    let (mut runner_a, dev_a) = new(
        leak(State::<MTU, N_RX, N_TX>::new()),
        HardwareAddress::Ethernet(mac(1)),
    );
    let (mut runner_b, dev_b) = new(
        leak(State::<MTU, N_RX, N_TX>::new()),
        HardwareAddress::Ethernet(mac(2)),
    );
    runner_a.set_link_state(LinkState::Up);
    runner_b.set_link_state(LinkState::Up);
    let (state_a, state_b) = (runner_a.state_runner(), runner_b.state_runner());
    ex.spawn(naive_driver(runner_a, runner_b, (N_RX, N_TX), &log));

    let (a, stack_runner_a) = stack_on(dev_a, 1, 0x3333);
    let (b, stack_runner_b) = stack_on(dev_b, 2, 0x4444);
    spawn_stack(&ex, stack_runner_a);
    spawn_stack(&ex, stack_runner_b);

    exchange(&ex, a, b, LEN);

    assert!(
        log.both_full.get() > 0,
        "the test never reached the state it is about (a NIC with both queues full, and the \
         driver waiting for RX room on it): {:?} {:?}",
        state_a.stats(),
        state_b.stats()
    );
    assert!(log.a_to_b.get() > LEN / MTU && log.b_to_a.get() > LEN / MTU);
    let (sa, sb) = (state_a.stats(), state_b.stats());
    for s in [sa, sb] {
        assert_eq!(
            (
                s.rx_empty,
                s.rx_oversized,
                s.rx_no_slot,
                s.tx_empty,
                s.tx_oversized
            ),
            (0, 0, 0, 0, 0),
            "{s:?}"
        );
    }
}
