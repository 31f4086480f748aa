//! Learning switch behaviour.

mod common;

use common::eth_frame;
use embassy_net_driver::{Driver, HardwareAddress};
use ferronet_sim::link::{ConfigError, Direction, Faults, LinkConfig, SendFrameError};
use ferronet_sim::switch::Switch;

const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
const C: [u8; 6] = [2, 0, 0, 0, 0, 0xc];
const BROADCAST: [u8; 6] = [0xff; 6];
const MULTICAST: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

#[test]
fn learns_floods_and_forwards() {
    let switch = Switch::new(LinkConfig::default());
    let mut a = switch.port(A).unwrap();
    let mut b = switch.port(B).unwrap();
    let mut c = switch.port(C).unwrap();
    assert_eq!(a.hardware_address(), HardwareAddress::Ethernet(A));
    assert_eq!(switch.port_count(), 3);

    // Unknown unicast destination: flooded to every other port.
    let f = eth_frame(B, A, b"1");
    a.send_frame(&f).unwrap();
    assert_eq!(b.try_recv_frame(), Some(f.clone()));
    assert_eq!(c.try_recv_frame(), Some(f));
    assert_eq!(a.try_recv_frame(), None, "never back to the sender");
    assert_eq!(switch.learned_port(A), Some(0));
    assert_eq!(switch.learned_port(B), None);

    // A is known now: only A gets the reply.
    let f = eth_frame(A, B, b"2");
    b.send_frame(&f).unwrap();
    assert_eq!(a.try_recv_frame(), Some(f));
    assert_eq!(c.try_recv_frame(), None);
    assert_eq!(switch.learned_port(B), Some(1));

    // And B is known: only B.
    let f = eth_frame(B, A, b"3");
    a.send_frame(&f).unwrap();
    assert_eq!(b.try_recv_frame(), Some(f));
    assert_eq!(c.try_recv_frame(), None);

    // Broadcast and multicast go to all other ports.
    for dst in [BROADCAST, MULTICAST] {
        let f = eth_frame(dst, C, b"4");
        c.send_frame(&f).unwrap();
        assert_eq!(a.try_recv_frame(), Some(f.clone()));
        assert_eq!(b.try_recv_frame(), Some(f));
        assert_eq!(c.try_recv_frame(), None);
    }

    // A frame whose destination was learned on the sender's own port is filtered.
    a.send_frame(&eth_frame(A, A, b"self")).unwrap();
    assert_eq!(a.try_recv_frame(), None);
    assert_eq!(b.try_recv_frame(), None);
    assert_eq!(c.try_recv_frame(), None);

    let stats = switch.stats();
    assert_eq!(stats[0].mac, A);
    assert_eq!(stats[0].from_port.sent, 3);
    assert_eq!(stats[2].from_port.sent, 2);
    // Port B received: flood "1", unicast "3", broadcast, multicast.
    assert_eq!(stats[1].to_port.delivered, 4);
    assert_eq!(stats[2].to_port.delivered, 1);
    assert_eq!(stats[0].to_port.delivered, 3);
}

#[test]
fn runts_oversize_and_link_down() {
    let switch = Switch::new(LinkConfig {
        mtu: 200,
        ..LinkConfig::default()
    });
    let mut a = switch.port(A).unwrap();
    let mut b = switch.port(B).unwrap();
    a.send_frame(&[0xff; 10]).unwrap();
    assert_eq!(b.try_recv_frame(), None);
    assert_eq!(
        a.send_frame(&eth_frame(B, A, &[0; 190])),
        Err(SendFrameError::Oversize)
    );
    switch.set_up(false);
    assert!(!switch.is_up());
    assert_eq!(
        a.send_frame(&eth_frame(B, A, b"down")),
        Err(SendFrameError::LinkDown)
    );
    switch.set_up(true);
    a.send_frame(&eth_frame(B, A, b"up")).unwrap();
    assert!(b.try_recv_frame().is_some());
    let s = switch.stats()[0].from_port;
    assert_eq!((s.malformed, s.oversize, s.dropped_link_down), (1, 1, 1));
}

#[test]
fn full_egress_queue_drops_instead_of_pushing_back() {
    let switch = Switch::new(LinkConfig {
        queue_depth: 2,
        ..LinkConfig::default()
    });
    let mut a = switch.port(A).unwrap();
    let mut b = switch.port(B).unwrap();
    for i in 0..5u8 {
        a.send_frame(&eth_frame(B, A, &[i])).unwrap();
    }
    assert_eq!(b.try_recv_frame().map(|f| f[14]), Some(0));
    assert_eq!(b.try_recv_frame().map(|f| f[14]), Some(1));
    assert_eq!(b.try_recv_frame(), None);
    assert_eq!(switch.stats()[1].to_port.dropped_queue_full, 3);
}

#[test]
fn per_port_faults_and_capture() {
    let switch = Switch::new(LinkConfig::default());
    let mut a = switch.port(A).unwrap();
    let mut b = switch.port(B).unwrap();
    let mut c = switch.port(C).unwrap();
    switch
        .set_port_faults(
            2,
            Faults {
                loss: 1.0,
                ..Faults::NONE
            },
        )
        .unwrap();
    switch.capture(true);
    let f = eth_frame(BROADCAST, A, b"hi");
    a.send_frame(&f).unwrap();
    assert!(b.try_recv_frame().is_some());
    assert_eq!(c.try_recv_frame(), None);
    assert_eq!(switch.stats()[2].to_port.lost, 1);
    let cap = switch.captured();
    assert_eq!(cap.len(), 1);
    assert_eq!(cap[0].direction, Direction::ToPort(1));
    assert_eq!(cap[0].data, f);
}

#[test]
fn bad_ports_and_configs_are_errors() {
    let switch = Switch::new(LinkConfig::default());
    assert_eq!(
        switch.port(BROADCAST).err(),
        Some(ConfigError::MulticastMac)
    );
    let bad = Switch::new(LinkConfig {
        duplicate: 2.0,
        ..LinkConfig::default()
    });
    assert!(matches!(
        bad.port(A),
        Err(ConfigError::InvalidProbability { .. })
    ));
    assert!(
        switch
            .set_faults(Faults {
                loss: f64::INFINITY,
                ..Faults::NONE
            })
            .is_err()
    );
}
