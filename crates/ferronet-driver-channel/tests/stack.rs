//! A ferronet stack on a channel device follows the link state and hardware address that the
//! driver sets through the runner.

mod common;

use std::cell::Cell;

use common::{leak, mac, run, spawn_stack, stack_on};
use embassy_time::{Duration, Instant, Timer};
use ferronet::{EthernetAddress, HardwareAddress as StackAddress};
use ferronet_driver_channel::driver::{HardwareAddress, LinkState};
use ferronet_driver_channel::{State, new};
use ferronet_sim::executor::Executor;

/// Runs every task that is ready now, without moving virtual time.
fn settle(ex: &Executor<'_>) {
    ex.run_for(Duration::from_ticks(0));
}

#[test]
fn stack_follows_the_hardware_address() {
    let ex = Executor::new();
    let state = leak(State::<1514, 2, 2>::new());
    let (runner, device) = new(state, HardwareAddress::Ethernet(mac(1)));
    let (stack, stack_runner) = stack_on(device, 1, 1);
    spawn_stack(&ex, stack_runner);
    settle(&ex);
    assert_eq!(
        stack.hardware_address(),
        StackAddress::Ethernet(EthernetAddress(mac(1)))
    );

    // The change wakes the stack's runner, which takes the new address on that poll.
    let state_runner = runner.state_runner();
    state_runner.set_hardware_address(HardwareAddress::Ethernet(mac(2)));
    settle(&ex);
    assert_eq!(
        stack.hardware_address(),
        StackAddress::Ethernet(EthernetAddress(mac(2)))
    );

    // Set later, from a task of the driver's, while the stack is idle.
    ex.spawn(async move {
        Timer::after_secs(10).await;
        state_runner.set_hardware_address(HardwareAddress::Ethernet(mac(3)));
    });
    ex.run_for(Duration::from_secs(10));
    assert_eq!(
        stack.hardware_address(),
        StackAddress::Ethernet(EthernetAddress(mac(3)))
    );
}

#[test]
fn stack_follows_the_link_state() {
    let came_up = Cell::new(false);
    let ex = Executor::new();
    let state = leak(State::<1514, 2, 2>::new());
    let (mut runner, device) = new(state, HardwareAddress::Ethernet(mac(1)));
    let (stack, stack_runner) = stack_on(device, 1, 1);
    spawn_stack(&ex, stack_runner);
    settle(&ex);
    // A new channel's link is down until the driver says otherwise.
    assert!(!stack.is_link_up());
    let flag = &came_up;
    ex.spawn(async move {
        stack.wait_link_up().await;
        flag.set(true);
    });
    ex.run_for(Duration::from_secs(5));
    assert!(
        !came_up.get(),
        "wait_link_up completed while the link is down"
    );

    runner.set_link_state(LinkState::Up);
    run(&ex, stack.wait_link_up());
    assert!(stack.is_link_up());
    settle(&ex);
    assert!(came_up.get(), "the waiting task saw the link come up");

    runner.set_link_state(LinkState::Down);
    run(&ex, stack.wait_link_down());
    assert!(!stack.is_link_up());

    // Up again from a driver task while the application waits.
    let state_runner = runner.state_runner();
    let start = Instant::now();
    ex.spawn(async move {
        Timer::after_secs(30).await;
        state_runner.set_link_state(LinkState::Up);
    });
    run(&ex, stack.wait_link_up());
    assert_eq!(Instant::now(), start + Duration::from_secs(30));
    assert!(stack.is_link_up());
}
