#![no_std]
#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![allow(async_fn_in_trait)]

#[cfg(not(any(feature = "proto-ipv4", feature = "proto-ipv6")))]
compile_error!("ferronet: enable at least one of the features proto-ipv4, proto-ipv6");

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("ferronet: the features defmt and log are mutually exclusive");

// Must come first: the other modules use its macros.
#[macro_use]
mod fmt;

#[cfg(feature = "tcp")]
mod ack_policy;
pub mod config;
#[cfg(feature = "dhcpv4-server")]
pub mod dhcp_server;
#[cfg(feature = "dns")]
pub mod dns;
mod driver_adapter;
#[cfg(feature = "icmp")]
pub mod icmp;
mod ingress;
#[cfg(any(
    feature = "tcp-listener",
    feature = "dhcpv4-server",
    all(feature = "tcp", not(feature = "medium-ethernet"))
))]
mod inject;
#[cfg(feature = "dns")]
mod ip_literal;
#[cfg(feature = "tcp")]
mod lone_fin;
#[cfg(feature = "mdns-responder")]
pub mod mdns_responder;
mod mtu;
#[cfg(feature = "medium-ethernet")]
mod neighbor_guard;
#[cfg(all(feature = "slaac", feature = "medium-ethernet"))]
mod ra_guard;
#[cfg(feature = "raw")]
pub mod raw;
#[cfg(feature = "tcp")]
mod recovery;
#[cfg(feature = "tcp")]
mod rst_guard;
mod runner;
mod stack;
#[cfg(feature = "tcp")]
mod stale_fin;
mod stats;
#[cfg(feature = "tcp")]
pub mod tcp;
mod time;
#[cfg(feature = "udp")]
pub mod udp;
mod waitq;
#[cfg(feature = "tcp")]
mod zero_window;

pub use config::*;
/// The `embassy-net-driver` crate: implement its [`Driver`] trait to plug a
/// network device into ferronet.
pub use embassy_net_driver as driver;
pub use runner::Runner;
#[cfg(feature = "medium-ethernet")]
pub use smoltcp::wire::EthernetAddress;
#[cfg(any(feature = "udp", feature = "tcp"))]
pub use smoltcp::wire::IpListenEndpoint;
pub use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint};
#[cfg(feature = "medium-ieee802154")]
pub use smoltcp::wire::{Ieee802154Address, Ieee802154Frame};
#[cfg(feature = "proto-ipv4")]
pub use smoltcp::wire::{Ipv4Address, Ipv4Cidr};
#[cfg(feature = "proto-ipv6")]
pub use smoltcp::wire::{Ipv6Address, Ipv6Cidr};
#[cfg(feature = "dhcpv4")]
pub use stack::DHCP_RECONFIRM_TIMEOUT;
pub use stack::{NewStackError, SocketTableFull, Stack, StackResources};
#[cfg(feature = "counters")]
pub use stats::Counters;
#[doc(hidden)]
pub use stats::Usage;

#[cfg(feature = "dns")]
pub use smoltcp::config::DNS_MAX_SERVER_COUNT;
#[cfg(feature = "multicast")]
pub use smoltcp::iface::MulticastError;

/// Error returned by the non-blocking `try_*` socket methods (same as embassy-net's unreleased
/// main branch).
///
/// [`WouldBlock`](TryError::WouldBlock) means the call could not complete without waiting (no
/// data to read, no room to write, data not yet acknowledged); [`Other`](TryError::Other)
/// carries the error the blocking method would have returned.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TryError<T> {
    /// The operation would block; try again later.
    WouldBlock,
    /// A socket-specific error occurred.
    Other(T),
}

impl<T: core::fmt::Display> core::fmt::Display for TryError<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::WouldBlock => f.write_str("operation would block"),
            Self::Other(e) => e.fmt(f),
        }
    }
}

impl<T: core::fmt::Debug + core::fmt::Display> core::error::Error for TryError<T> {}

use embassy_net_driver::Driver;
use embassy_time::Instant;
use smoltcp::iface::Interface;

use crate::driver_adapter::smoltcp_capabilities;

/// Create a network stack from a driver.
///
/// Returns the [`Stack`] handle (to make sockets and read the configuration) and the
/// [`Runner`], whose [`run`](Runner::run) must be spawned as a task. `random_seed` seeds
/// smoltcp (initial sequence numbers) and the choice of ephemeral ports: give each boot a
/// different one, from a hardware RNG where there is one.
///
/// # Panics
///
/// If the driver's medium is not enabled by a cargo feature (see [`try_new`], which returns
/// the error instead).
pub fn new<'d, D: Driver, const SOCK: usize>(
    driver: D,
    config: Config,
    resources: &'d mut StackResources<SOCK>,
    random_seed: u64,
) -> (Stack<'d>, Runner<'d, D>) {
    match try_new(driver, config, resources, random_seed) {
        Ok(r) => r,
        Err(e) => panic!("ferronet::new: {}", e),
    }
}

/// Create a network stack from a driver, like [`new`], returning an error instead of
/// panicking when the driver's medium is not enabled.
pub fn try_new<'d, D: Driver, const SOCK: usize>(
    driver: D,
    config: Config,
    resources: &'d mut StackResources<SOCK>,
    random_seed: u64,
) -> Result<(Stack<'d>, Runner<'d, D>), NewStackError> {
    let (hardware_address, medium) = stack::to_smoltcp_hardware_address(driver.hardware_address())?;
    let caps = smoltcp_capabilities(driver.capabilities(), medium);

    let mut iface_cfg = smoltcp::iface::Config::new(hardware_address);
    iface_cfg.random_seed = random_seed;
    #[cfg(feature = "slaac")]
    {
        // SLAAC needs a link-layer address to form the interface identifier; an IP-medium
        // (TUN, PPP) interface has none.
        #[cfg(feature = "medium-ip")]
        let has_ll = medium != smoltcp::phy::Medium::Ip;
        #[cfg(not(feature = "medium-ip"))]
        let has_ll = true;
        iface_cfg.slaac = has_ll && matches!(config.ipv6, ConfigV6::Slaac);
    }
    #[cfg(feature = "slaac")]
    let slaac_iface = iface_cfg.slaac;

    let now = time::instant_to_smoltcp(Instant::now());
    let iface = {
        // smoltcp only asks the device for its capabilities here.
        let mut probe = CapsOnly(&caps);
        Interface::new(iface_cfg, &mut probe, now)
    };

    let ip_mtu = mtu::ip_mtu(medium, caps.max_transmission_unit);
    let shared = stack::init(resources, iface, medium, ip_mtu, random_seed)?;
    {
        let mut inner = shared.inner.borrow_mut();
        #[cfg(feature = "slaac")]
        {
            inner.slaac_iface = slaac_iface;
        }
        #[cfg(feature = "proto-ipv4")]
        inner
            .set_config_v4(config.ipv4)
            .map_err(NewStackError::SocketTableFull)?;
        #[cfg(feature = "proto-ipv6")]
        inner.set_config_v6(config.ipv6);
        inner.apply_config();
    }
    Ok((Stack { shared }, Runner::new(driver, shared)))
}

/// A device that only reports capabilities; used to build the interface without handing the
/// driver (and a task context) to smoltcp.
struct CapsOnly<'a>(&'a smoltcp::phy::DeviceCapabilities);

impl smoltcp::phy::Device for CapsOnly<'_> {
    type RxToken<'a>
        = NoToken
    where
        Self: 'a;
    type TxToken<'a>
        = NoToken
    where
        Self: 'a;
    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(NoToken, NoToken)> {
        None
    }
    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<NoToken> {
        None
    }
    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        self.0.clone()
    }
}

/// Never constructed.
enum NoToken {}

impl smoltcp::phy::RxToken for NoToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, _: F) -> R {
        match self {}
    }
}

impl smoltcp::phy::TxToken for NoToken {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, _: usize, _: F) -> R {
        match self {}
    }
}
