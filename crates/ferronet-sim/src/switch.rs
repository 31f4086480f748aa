//! A learning Ethernet switch joining any number of virtual devices.
//!
//! [`Switch::port`] adds a port and returns its [`SimDevice`]. On every frame the switch
//! learns the source MAC's port; a frame whose destination has the group (I/G) bit set
//! (broadcast, multicast) goes to every other port, a unicast frame goes to the port its
//! destination was learned on, or to every other port while it is unknown. A frame for the
//! port it came from is filtered. The table never ages.
//!
//! Each port's receive queue has the [`LinkConfig`]'s depth, latency, jitter, rate and faults
//! (applied when the switch puts a frame into that queue, from a PRNG per port); the rate is
//! the egress bandwidth towards that port. A switch never pushes back:
//! [`transmit`](embassy_net_driver::Driver::transmit) on a port always gives a token, and a
//! frame for a full queue is dropped (`dropped_queue_full` in that port's
//! [`SwitchPortStats::to_port`]), like a congested switch egress. Frames shorter than an
//! Ethernet header are dropped as `malformed`.
//!
//! Not modelled: VLANs, STP, table aging or size limits, per-port link state (the whole
//! switch goes up or down), ingress bandwidth.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use embassy_net_driver::HardwareAddress;
use embassy_time::Duration;

use crate::link::{CapturedFrame, ConfigError, DirectionStats, Faults, LinkConfig, SimDevice};
use crate::medium::{self, Kind, Medium, Shared};
use crate::pcap::LinkType;
use crate::util::lock;

/// Counters of one switch port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SwitchPortStats {
    /// The MAC address the port was created with.
    pub mac: [u8; 6],
    /// Frames the port's device sent into the switch: `sent`, `bytes_sent`, `oversize`,
    /// `dropped_link_down`, `malformed`.
    pub from_port: DirectionStats,
    /// Frames the switch forwarded to the port: `sent` stays 0; the fault, queue-full,
    /// link-down and `delivered` counters are filled.
    pub to_port: DirectionStats,
}

/// A learning Ethernet switch; cloning gives another handle to the same switch.
///
/// ```
/// use ferronet_sim::link::LinkConfig;
/// use ferronet_sim::switch::Switch;
///
/// let switch = Switch::new(LinkConfig::ethernet());
/// let mut a = switch.port([2, 0, 0, 0, 0, 1])?;
/// let mut b = switch.port([2, 0, 0, 0, 0, 2])?;
/// let mut c = switch.port([2, 0, 0, 0, 0, 3])?;
/// let mut broadcast = vec![0xff; 6];
/// broadcast.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
/// a.send_frame(&broadcast)?;
/// assert_eq!(b.try_recv_frame(), Some(broadcast.clone()));
/// assert_eq!(c.try_recv_frame(), Some(broadcast));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Switch {
    shared: Shared,
}

impl fmt::Debug for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = lock(&self.shared);
        f.debug_struct("Switch")
            .field("ports", &m.ports.len())
            .field("up", &m.is_up())
            .finish_non_exhaustive()
    }
}

impl Switch {
    /// Makes a switch with no ports. The configuration is checked by [`port`](Self::port).
    pub fn new(cfg: LinkConfig) -> Switch {
        Switch {
            shared: Arc::new(Mutex::new(Medium::new(
                Kind::Switch {
                    table: Default::default(),
                },
                cfg,
                LinkType::Ethernet,
            ))),
        }
    }

    /// Adds a port whose device reports the hardware address `mac`. Fails if the switch's
    /// configuration is invalid or `mac` is a group address.
    pub fn port(&self, mac: [u8; 6]) -> Result<SimDevice, ConfigError> {
        if mac[0] & 1 != 0 {
            return Err(ConfigError::MulticastMac);
        }
        let mut m = lock(&self.shared);
        medium::validate(m.config())?;
        let mtu = m.config().mtu;
        let port = m.add_port(Some(mac));
        drop(m);
        Ok(SimDevice::new(
            self.shared.clone(),
            port,
            HardwareAddress::Ethernet(mac),
            mtu,
        ))
    }

    /// The number of ports.
    pub fn port_count(&self) -> usize {
        lock(&self.shared).ports.len()
    }

    /// The port index the switch has learned for `mac`, if any.
    pub fn learned_port(&self, mac: [u8; 6]) -> Option<usize> {
        lock(&self.shared).learned(mac)
    }

    /// Brings every port up or down. Going down discards all queued frames.
    pub fn set_up(&self, up: bool) {
        medium::with(&self.shared, |m, wakes| m.set_up(up, wakes));
    }

    /// Whether the switch is up.
    pub fn is_up(&self) -> bool {
        lock(&self.shared).is_up()
    }

    /// The counters of every port, in port order.
    pub fn stats(&self) -> Vec<SwitchPortStats> {
        let m = lock(&self.shared);
        m.ports
            .iter()
            .map(|p| SwitchPortStats {
                mac: p.mac.unwrap_or_default(),
                from_port: p.from_port,
                to_port: p.to_port,
            })
            .collect()
    }

    /// Sets the faults of every port's queue (also for ports added later).
    pub fn set_faults(&self, faults: Faults) -> Result<(), ConfigError> {
        faults.validate()?;
        lock(&self.shared).set_faults(None, faults);
        Ok(())
    }

    /// Sets the faults of the queue towards one port.
    pub fn set_port_faults(&self, port: usize, faults: Faults) -> Result<(), ConfigError> {
        faults.validate()?;
        let mut m = lock(&self.shared);
        if port < m.ports.len() {
            m.set_faults(Some(port), faults);
        }
        Ok(())
    }

    /// Sets the latency of every port's queue for frames forwarded from now on.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared).set_latency(None, latency);
    }

    /// Turns the in-memory capture on or off: every frame a port's device takes is recorded
    /// with [`Direction::ToPort`](crate::link::Direction::ToPort), up to the last 100 000.
    pub fn capture(&self, enabled: bool) {
        lock(&self.shared).set_capture(enabled);
    }

    /// A copy of the frames captured so far, oldest first.
    pub fn captured(&self) -> Vec<CapturedFrame> {
        lock(&self.shared).captured()
    }

    /// The frames captured so far, oldest first, emptying the capture buffer.
    pub fn take_captured(&self) -> Vec<CapturedFrame> {
        lock(&self.shared).take_captured()
    }

    /// Records every frame taken by any port's device to a new pcap file (Ethernet link
    /// type), so a flooded frame appears once per receiving port. See
    /// [`LinkHandle::start_pcap`](crate::link::LinkHandle::start_pcap).
    pub fn start_pcap(&self, path: impl AsRef<Path>) -> io::Result<()> {
        lock(&self.shared).start_pcap(path.as_ref())
    }

    /// Stops the pcap recording, flushing the file; returns the first write error, if any.
    pub fn stop_pcap(&self) -> io::Result<()> {
        lock(&self.shared).stop_pcap()
    }
}
