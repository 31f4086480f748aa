//! End to end: two ferronet stacks talk TCP through two channel devices, whose driver ends
//! are joined by pretend-NIC tasks that move each frame from one device's TX queue to the
//! other's RX queue.

mod common;

use common::*;
use ferronet_driver_channel::driver::{HardwareAddress, LinkState};
use ferronet_driver_channel::{State, new};
use ferronet_sim::executor::Executor;

#[test]
fn tcp_256_kib_each_way_through_two_channels() {
    const LEN: usize = 256 * 1024;
    let ex = Executor::new();
    let (mut runner_a, dev_a) = new(
        leak(State::<MTU, 4, 4>::new()),
        HardwareAddress::Ethernet(mac(1)),
    );
    let (mut runner_b, dev_b) = new(
        leak(State::<MTU, 4, 4>::new()),
        HardwareAddress::Ethernet(mac(2)),
    );
    runner_a.set_link_state(LinkState::Up);
    runner_b.set_link_state(LinkState::Up);
    let (state_a, state_b) = (runner_a.state_runner(), runner_b.state_runner());
    let (_, rx_a, tx_a) = runner_a.split();
    let (_, rx_b, tx_b) = runner_b.split();
    ex.spawn(wire(tx_a, rx_b));
    ex.spawn(wire(tx_b, rx_a));

    let (a, stack_runner_a) = stack_on(dev_a, 1, 0x1111);
    let (b, stack_runner_b) = stack_on(dev_b, 2, 0x2222);
    spawn_stack(&ex, stack_runner_a);
    spawn_stack(&ex, stack_runner_b);
    run(&ex, async {
        a.wait_link_up().await;
        b.wait_link_up().await;
    });

    exchange(&ex, a, b, LEN);
    // Let the last frames (acknowledgements) through before counting.
    ex.run_for(embassy_time::Duration::from_secs(1));

    // Every frame one device sent, the other received; none was malformed or dropped.
    let (sa, sb) = (state_a.stats(), state_b.stats());
    assert_eq!(sa.tx_frames, sb.rx_frames);
    assert_eq!(sb.tx_frames, sa.rx_frames);
    assert!(
        sa.tx_frames as usize > LEN / MTU && sb.tx_frames as usize > LEN / MTU,
        "{sa:?} {sb:?}"
    );
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
