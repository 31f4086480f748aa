//! The queues, link state and hardware address, driven by hand through the runner's API and
//! the device's `Driver` implementation, and on the virtual-time executor.

mod common;

use std::future::poll_fn;
use std::task::{Context, Poll, Waker};

use common::{CountingWaker, check_pattern, fill_pattern, run};
use ferronet_driver_channel::driver::{
    Driver, HardwareAddress, LinkState, RxToken as _, TxToken as _,
};
use ferronet_driver_channel::{Device, Runner, State, Stats, new};
use ferronet_sim::executor::Executor;

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const ETH: HardwareAddress = HardwareAddress::Ethernet(MAC);

/// A small MTU, so that every length is quick to try.
const M: usize = 64;

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// Takes one frame from the device, if it has one.
fn recv<const MTU: usize>(dev: &mut Device<'_, MTU>) -> Option<Vec<u8>> {
    let (rx, _reply) = dev.receive(&mut noop_cx())?;
    Some(rx.consume(|frame| frame.to_vec()))
}

/// Queues `frame` for the driver, if the device has room.
fn send<const MTU: usize>(dev: &mut Device<'_, MTU>, frame: &[u8]) -> bool {
    match dev.transmit(&mut noop_cx()) {
        Some(tx) => {
            tx.consume(frame.len(), |buf| {
                assert_eq!(buf.len(), frame.len());
                buf.copy_from_slice(frame);
            });
            true
        }
        None => false,
    }
}

/// Queues `frame` for the stack, if the RX queue has room.
fn push<const MTU: usize>(runner: &mut Runner<'_, MTU>, frame: &[u8]) -> bool {
    match runner.try_rx_buf() {
        Some(buf) => {
            assert_eq!(buf.len(), MTU, "rx_buf is a whole slot");
            buf[..frame.len()].copy_from_slice(frame);
            runner.rx_done(frame.len());
            true
        }
        None => false,
    }
}

/// Takes one frame from the TX queue, if there is one.
fn pop<const MTU: usize>(runner: &mut Runner<'_, MTU>) -> Option<Vec<u8>> {
    let frame = runner.try_tx_buf()?.to_vec();
    runner.tx_done();
    Some(frame)
}

/// Frame number `i` of a test: its length runs through 1..=M, its bytes are stream `i`.
fn frame(i: usize) -> Vec<u8> {
    let mut f = vec![0u8; i % M + 1];
    fill_pattern(i as u8, 0, &mut f);
    f
}

/// The drop counters: rx_empty, rx_oversized, rx_no_slot, tx_empty, tx_oversized,
/// tx_reply_dropped.
fn drops(s: Stats) -> [u32; 6] {
    [
        s.rx_empty,
        s.rx_oversized,
        s.rx_no_slot,
        s.tx_empty,
        s.tx_oversized,
        s.tx_reply_dropped,
    ]
}

fn stats<const MTU: usize>(runner: &Runner<'_, MTU>) -> Stats {
    runner.state_runner().stats()
}

#[test]
fn capabilities_and_initial_state() {
    // A state can live in a `static` cell (such cells need `Send`), and be built in one.
    fn assert_send<T: Send>() {}
    assert_send::<State<1514, 4, 4>>();
    const _: State<1514, 4, 4> = State::new();

    let mut state = State::<1514, 4, 2>::new();
    let (runner, mut dev) = new(&mut state, ETH);
    let caps = dev.capabilities();
    assert_eq!(caps.max_transmission_unit, 1514);
    assert_eq!(caps.max_burst_size, None);
    assert_eq!(dev.hardware_address(), ETH);
    assert!(dev.link_state(&mut noop_cx()) == LinkState::Down);
    assert!(dev.receive(&mut noop_cx()).is_none());
    assert!(dev.transmit(&mut noop_cx()).is_some());
    let s = runner.state_runner();
    assert_eq!((s.rx_queue_len(), s.tx_queue_len()), (0, 0));
    assert_eq!(s.stats(), Stats::default());

    for addr in [
        HardwareAddress::Ip,
        HardwareAddress::Ieee802154([1, 2, 3, 4, 5, 6, 7, 8]),
    ] {
        let mut state = State::<127, 1, 1>::default();
        let (_runner, dev) = new(&mut state, addr);
        assert_eq!(dev.hardware_address(), addr);
        assert_eq!(dev.capabilities().max_transmission_unit, 127);
    }
}

#[test]
fn rx_frames_keep_order_and_contents_across_wraparound() {
    let mut state = State::<M, 3, 3>::new();
    let (mut runner, mut dev) = new(&mut state, ETH);
    let (mut pushed, mut taken) = (0, 0);
    for round in 0..200 {
        // 1, 2 or 3 frames in, then all out: the ring's head visits every slot.
        for _ in 0..round % 3 + 1 {
            assert!(push(&mut runner, &frame(pushed)), "room for frame {pushed}");
            pushed += 1;
        }
        assert_eq!(runner.state_runner().rx_queue_len(), pushed - taken);
        while let Some(f) = recv(&mut dev) {
            assert_eq!(f, frame(taken), "frame {taken}");
            taken += 1;
        }
        assert_eq!(taken, pushed);
    }
    assert_eq!(stats(&runner).rx_frames, pushed as u32);
    assert_eq!(drops(stats(&runner)), [0; 6]);
}

#[test]
fn tx_frames_keep_order_and_exact_length_across_wraparound() {
    let mut state = State::<M, 2, 3>::new();
    let (mut runner, mut dev) = new(&mut state, ETH);
    let (mut sent, mut taken) = (0, 0);
    for round in 0..200 {
        for _ in 0..round % 3 + 1 {
            assert!(send(&mut dev, &frame(sent)), "room for frame {sent}");
            sent += 1;
        }
        assert_eq!(runner.state_runner().tx_queue_len(), sent - taken);
        while let Some(f) = pop(&mut runner) {
            assert_eq!(f, frame(taken), "frame {taken}");
            taken += 1;
        }
        assert_eq!(taken, sent);
    }
    assert_eq!(stats(&runner).tx_frames, sent as u32);
}

#[test]
fn full_rx_queue_makes_the_driver_wait_until_the_stack_takes_a_frame() {
    let mut state = State::<M, 2, 2>::new();
    let (mut runner, mut dev) = new(&mut state, ETH);
    assert!(push(&mut runner, b"one"));
    assert!(push(&mut runner, b"two"));
    assert!(runner.try_rx_buf().is_none());

    let (count, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(runner.poll_rx_buf(&mut cx).is_pending());
    assert_eq!(count.count(), 0);

    // rx_done without a free slot drops the frame, counts it, and does not panic.
    runner.rx_done(3);
    assert_eq!(stats(&runner).rx_no_slot, 1);
    assert_eq!(runner.state_runner().rx_queue_len(), 2);

    assert_eq!(recv(&mut dev).as_deref(), Some(&b"one"[..]));
    assert_eq!(count.count(), 1, "taking a frame wakes the waiting driver");
    match runner.poll_rx_buf(&mut cx) {
        Poll::Ready(buf) => buf[..5].copy_from_slice(b"three"),
        Poll::Pending => panic!("a slot is free"),
    }
    runner.rx_done(5);
    assert_eq!(recv(&mut dev).as_deref(), Some(&b"two"[..]));
    assert_eq!(recv(&mut dev).as_deref(), Some(&b"three"[..]));
    assert_eq!(recv(&mut dev), None);
    assert_eq!(stats(&runner).rx_frames, 3);
}

#[test]
fn full_tx_queue_makes_the_stack_wait_until_the_driver_sends() {
    let mut state = State::<M, 2, 2>::new();
    let (mut runner, mut dev) = new(&mut state, ETH);
    assert!(send(&mut dev, b"one"));
    assert!(send(&mut dev, b"two"));

    let (count, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(dev.transmit(&mut cx).is_none());
    assert_eq!(count.count(), 0);

    assert_eq!(pop(&mut runner).as_deref(), Some(&b"one"[..]));
    assert_eq!(count.count(), 1, "freeing a slot wakes the waiting stack");
    assert!(send(&mut dev, b"three"));
    assert_eq!(pop(&mut runner).as_deref(), Some(&b"two"[..]));
    assert_eq!(pop(&mut runner).as_deref(), Some(&b"three"[..]));
    assert_eq!(pop(&mut runner), None);
}

#[test]
fn frames_wake_the_other_end() {
    let mut state = State::<M, 2, 2>::new();
    let (mut runner, mut dev) = new(&mut state, ETH);

    // The stack waits for a frame; the driver's rx_done wakes it.
    let (stack, stack_waker) = CountingWaker::new();
    assert!(
        dev.receive(&mut Context::from_waker(&stack_waker))
            .is_none()
    );
    let buf = runner.try_rx_buf().expect("room");
    buf[0] = 7;
    assert_eq!(stack.count(), 0, "reserving a slot is not a frame");
    runner.rx_done(1);
    assert_eq!(stack.count(), 1);

    // The driver waits for a frame to send; the device's transmission wakes it.
    let (driver, driver_waker) = CountingWaker::new();
    assert!(
        runner
            .poll_tx_buf(&mut Context::from_waker(&driver_waker))
            .is_pending()
    );
    assert!(send(&mut dev, &[1, 2, 3]));
    assert_eq!(driver.count(), 1);
    match runner.poll_tx_buf(&mut Context::from_waker(&driver_waker)) {
        Poll::Ready(frame) => assert_eq!(frame, [1, 2, 3]),
        Poll::Pending => panic!("a frame is queued"),
    }
}

#[test]
fn reserved_rx_slot_and_taken_tx_frame_are_returned_again_until_done() {
    let mut state = State::<M, 2, 2>::new();
    let (mut runner, mut dev) = new(&mut state, ETH);

    runner.try_rx_buf().expect("room")[..3].copy_from_slice(b"abc");
    assert_eq!(&runner.try_rx_buf().expect("same slot")[..3], b"abc");
    match runner.poll_rx_buf(&mut noop_cx()) {
        Poll::Ready(buf) => buf[3] = b'd',
        Poll::Pending => panic!("reserved slot"),
    }
    assert_eq!(recv(&mut dev), None, "nothing is queued before rx_done");
    runner.rx_done(4);
    assert_eq!(recv(&mut dev).as_deref(), Some(&b"abcd"[..]));

    assert!(send(&mut dev, b"xyz"));
    assert!(send(&mut dev, b"next"));
    assert_eq!(runner.try_tx_buf().expect("frame"), b"xyz");
    assert_eq!(runner.try_tx_buf().expect("same frame"), b"xyz");
    runner.tx_done();
    assert_eq!(runner.try_tx_buf().expect("frame"), b"next");
    runner.tx_done();
    // tx_done with nothing queued does nothing.
    runner.tx_done();
    runner.tx_done();
    assert_eq!(runner.try_tx_buf(), None);
    assert!(send(&mut dev, b"after"));
    assert_eq!(pop(&mut runner).as_deref(), Some(&b"after"[..]));
    // tx_done without tx_buf first discards the oldest frame.
    assert!(send(&mut dev, b"skipped"));
    assert!(send(&mut dev, b"kept"));
    runner.tx_done();
    assert_eq!(pop(&mut runner).as_deref(), Some(&b"kept"[..]));
}

#[test]
fn rx_done_with_a_bad_length_drops_the_frame_and_counts_it() {
    let mut state = State::<M, 2, 2>::new();
    let (mut runner, mut dev) = new(&mut state, ETH);
    for _ in 0..5 {
        runner.try_rx_buf().expect("room").fill(0xee);
        runner.rx_done(0);
        runner.try_rx_buf().expect("room").fill(0xee);
        runner.rx_done(M + 1);
        runner.try_rx_buf().expect("room");
        runner.rx_done(usize::MAX);
        // Without rx_buf first, too.
        runner.rx_done(0);
        runner.rx_done(M * 10);
    }
    assert_eq!(recv(&mut dev), None);
    let s = stats(&runner);
    assert_eq!(drops(s), [10, 15, 0, 0, 0, 0]);
    assert_eq!((s.rx_frames, s.tx_frames), (0, 0));
    // The slots are still all free, and a frame of exactly MTU bytes goes through.
    let full = frame(M - 1);
    assert_eq!(full.len(), M);
    assert!(push(&mut runner, &full));
    assert!(push(&mut runner, b"x"));
    assert!(!push(&mut runner, b"y"));
    assert_eq!(recv(&mut dev), Some(full));
    assert_eq!(recv(&mut dev).as_deref(), Some(&b"x"[..]));
}

#[test]
fn transmissions_with_a_bad_length_are_dropped_and_counted() {
    let mut state = State::<M, 2, 2>::new();
    let (mut runner, mut dev) = new(&mut state, ETH);
    let tx = dev.transmit(&mut noop_cx()).expect("room");
    let r = tx.consume(0, |buf| buf.len());
    assert_eq!(r, 0, "an empty frame gets an empty buffer");
    let tx = dev.transmit(&mut noop_cx()).expect("room");
    let r = tx.consume(M + 1, |buf| {
        buf.fill(0xaa);
        buf.len()
    });
    assert_eq!(
        r, M,
        "an oversized frame gets a scratch buffer of MTU bytes"
    );
    let tx = dev.transmit(&mut noop_cx()).expect("room");
    tx.consume(usize::MAX, |_| ());
    assert_eq!(pop(&mut runner), None, "nothing was queued");
    let s = stats(&runner);
    assert_eq!(drops(s), [0, 0, 0, 1, 2, 0]);
    assert_eq!((s.rx_frames, s.tx_frames), (0, 0));
    // A frame of exactly MTU bytes goes through.
    let full = frame(M - 1);
    assert!(send(&mut dev, &full));
    assert_eq!(pop(&mut runner), Some(full));
}

#[test]
fn receive_needs_no_tx_room_and_a_reply_to_a_full_tx_queue_is_dropped() {
    let mut state = State::<M, 2, 2>::new();
    let (mut runner, mut dev) = new(&mut state, ETH);
    assert!(send(&mut dev, b"tx0"));
    assert!(send(&mut dev, b"tx1"));
    assert!(push(&mut runner, b"rx0"));
    assert!(push(&mut runner, b"rx1"));
    // Both queues are full: embassy-net-driver-channel would refuse to receive here.
    assert!(dev.transmit(&mut noop_cx()).is_none());
    assert!(runner.try_rx_buf().is_none());

    let (rx, reply) = dev.receive(&mut noop_cx()).expect("a frame is queued");
    let got = rx.consume(|frame| {
        // The reply is made while the frame is still borrowed, as smoltcp does.
        let len = reply.consume(frame.len(), |buf| {
            buf.copy_from_slice(frame);
            buf.len()
        });
        assert_eq!(
            len, 3,
            "the dropped reply's closure sees the requested length"
        );
        frame.to_vec()
    });
    assert_eq!(got, b"rx0");
    assert_eq!(stats(&runner).tx_reply_dropped, 1);
    // The driver has room again; the TX queue holds only what it held.
    assert!(push(&mut runner, b"rx2"));
    assert_eq!(pop(&mut runner).as_deref(), Some(&b"tx0"[..]));

    // With a free TX slot, the reply is queued.
    let (rx, reply) = dev.receive(&mut noop_cx()).expect("a frame is queued");
    rx.consume(|frame| reply.consume(frame.len(), |buf| buf.copy_from_slice(frame)));
    assert_eq!(pop(&mut runner).as_deref(), Some(&b"tx1"[..]));
    assert_eq!(pop(&mut runner).as_deref(), Some(&b"rx1"[..]));
    assert_eq!(recv(&mut dev).as_deref(), Some(&b"rx2"[..]));
    let s = stats(&runner);
    assert_eq!((s.rx_frames, s.tx_frames, s.tx_reply_dropped), (3, 3, 1));
}

#[test]
fn tokens_dropped_unused_change_nothing() {
    let mut state = State::<M, 2, 2>::new();
    let (mut runner, mut dev) = new(&mut state, ETH);
    assert!(push(&mut runner, b"kept"));
    for _ in 0..3 {
        assert!(dev.receive(&mut noop_cx()).is_some());
        assert!(dev.transmit(&mut noop_cx()).is_some());
    }
    assert_eq!(pop(&mut runner), None);
    assert_eq!(recv(&mut dev).as_deref(), Some(&b"kept"[..]));
}

#[test]
fn borrow_split_hands_the_buffers_over_and_back() {
    let mut state = State::<M, 2, 2>::new();
    let (mut runner, mut dev) = new(&mut state, ETH);

    // Reserved by the runner, finished by the borrowed part.
    runner.try_rx_buf().expect("room")[..2].copy_from_slice(b"ab");
    assert!(send(&mut dev, b"t1"));
    assert_eq!(runner.try_tx_buf().expect("frame"), b"t1");
    {
        let (state_runner, mut rx, mut tx) = runner.borrow_split();
        state_runner.set_link_state(LinkState::Up);
        let buf = rx.try_rx_buf().expect("the same slot");
        assert_eq!(&buf[..2], b"ab");
        buf[2] = b'c';
        rx.rx_done(3);
        assert_eq!(tx.try_tx_buf().expect("the same frame"), b"t1");
        tx.tx_done();
        // Reserved by the borrowed part and dropped with it.
        rx.try_rx_buf().expect("room")[..2].copy_from_slice(b"xy");
        assert!(send(&mut dev, b"t2"));
        assert_eq!(tx.try_tx_buf().expect("frame"), b"t2");
    }
    assert!(dev.link_state(&mut noop_cx()) == LinkState::Up);
    assert_eq!(recv(&mut dev).as_deref(), Some(&b"abc"[..]));
    // The runner goes on where the parts stopped.
    assert_eq!(&runner.try_rx_buf().expect("the same slot")[..2], b"xy");
    runner.rx_done(2);
    assert_eq!(recv(&mut dev).as_deref(), Some(&b"xy"[..]));
    assert_eq!(pop(&mut runner).as_deref(), Some(&b"t2"[..]));

    // And split for good.
    let (state_runner, mut rx, mut tx) = runner.split();
    let copy = state_runner;
    copy.set_link_state(LinkState::Down);
    assert!(dev.link_state(&mut noop_cx()) == LinkState::Down);
    rx.try_rx_buf().expect("room")[0] = 9;
    rx.rx_done(1);
    assert_eq!(recv(&mut dev), Some(vec![9]));
    assert!(send(&mut dev, &[8]));
    assert_eq!(tx.try_tx_buf().expect("frame"), [8]);
    tx.tx_done();
    assert_eq!(state_runner.stats().rx_frames, 3);
    assert_eq!(state_runner.stats().tx_frames, 3);
}

#[test]
fn link_state_and_address_changes_reach_the_device_and_wake_it() {
    let mut state = State::<M, 2, 2>::new();
    let (mut runner, mut dev) = new(&mut state, ETH);
    let (count, waker) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(dev.link_state(&mut cx) == LinkState::Down);

    runner.set_link_state(LinkState::Up);
    assert_eq!(count.count(), 1);
    assert!(dev.link_state(&mut cx) == LinkState::Up);
    // No change, no wake.
    runner.set_link_state(LinkState::Up);
    assert_eq!(count.count(), 1);

    let other = HardwareAddress::Ethernet([0x02, 0, 0, 0, 0, 0x99]);
    runner.set_hardware_address(other);
    assert_eq!(count.count(), 2);
    assert_eq!(dev.hardware_address(), other);
    assert!(dev.link_state(&mut cx) == LinkState::Up);
    runner.set_hardware_address(other);
    assert_eq!(count.count(), 2);

    let state_runner = runner.state_runner();
    state_runner.set_link_state(LinkState::Down);
    assert_eq!(count.count(), 3);
    assert!(dev.link_state(&mut cx) == LinkState::Down);
    state_runner.set_hardware_address(ETH);
    assert_eq!(count.count(), 4);
    assert_eq!(dev.hardware_address(), ETH);
}

#[test]
fn new_starts_a_used_state_afresh() {
    let mut state = State::<M, 2, 2>::new();
    {
        let (mut runner, mut dev) = new(&mut state, ETH);
        runner.set_link_state(LinkState::Up);
        assert!(push(&mut runner, b"old"));
        assert!(push(&mut runner, b"old"));
        assert!(send(&mut dev, b"old"));
        runner.rx_done(0);
        // Left mid-frame on both sides.
        assert!(runner.try_tx_buf().is_some());
    }
    let other = HardwareAddress::Ethernet([0x02, 0, 0, 0, 0, 0x42]);
    let (mut runner, mut dev) = new(&mut state, other);
    assert_eq!(dev.hardware_address(), other);
    assert!(dev.link_state(&mut noop_cx()) == LinkState::Down);
    assert_eq!(recv(&mut dev), None);
    assert_eq!(pop(&mut runner), None);
    assert_eq!(stats(&runner), Stats::default());
    assert!(push(&mut runner, b"new1"));
    assert!(push(&mut runner, b"new2"));
    assert_eq!(recv(&mut dev).as_deref(), Some(&b"new1"[..]));
}

#[test]
fn async_driver_and_stack_move_a_thousand_frames_each_way() {
    const FRAMES: usize = 1000;
    let mut state = State::<M, 2, 2>::new();
    let (runner, mut dev) = new(&mut state, ETH);
    let ex = Executor::new();
    // A loopback driver: every frame the stack sends comes back to it, bit-inverted.
    ex.spawn(async move {
        let (_, mut rx, mut tx) = runner.split();
        loop {
            let frame = tx.tx_buf().await;
            let len = frame.len();
            let buf = rx.rx_buf().await;
            for (b, f) in buf.iter_mut().zip(frame.iter()) {
                *b = !*f;
            }
            rx.rx_done(len);
            tx.tx_done();
        }
    });
    let (mut sent, mut got) = (0, 0);
    run(
        &ex,
        poll_fn(|cx| {
            // Like a stack: take every frame there is, then send while there is room.
            while let Some((rx, _reply)) = dev.receive(cx) {
                rx.consume(|f| {
                    let expected = frame(got);
                    assert_eq!(f.len(), expected.len(), "frame {got}");
                    let inverted: Vec<u8> = f.iter().map(|b| !b).collect();
                    assert_eq!(
                        check_pattern(got as u8, 0, &inverted),
                        Ok(()),
                        "frame {got}"
                    );
                });
                got += 1;
            }
            while sent < FRAMES {
                let Some(tx) = dev.transmit(cx) else { break };
                let f = frame(sent);
                tx.consume(f.len(), |buf| buf.copy_from_slice(&f));
                sent += 1;
            }
            if got == FRAMES {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }),
    );
    assert_eq!(sent, FRAMES);
}
