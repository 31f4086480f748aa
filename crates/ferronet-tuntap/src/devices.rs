//! [`TapDevice`] and [`TunDevice`]: the public faces of [`Core`].

use std::task::Context;

use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState};

use crate::device::{Core, DeviceHandle, Stats, TunTapRxToken, TunTapTxToken};
use crate::error::{Error, Kind};
use crate::sys::TUN_PATH;

macro_rules! common_methods {
    () => {
        /// The interface name (as the kernel reports it).
        pub fn name(&self) -> &str {
            self.core.name()
        }

        /// A cloneable, thread-safe handle for reading the state and changing interface
        /// settings after the device was handed to a stack.
        pub fn handle(&self) -> DeviceHandle {
            self.core.handle()
        }

        /// The IP MTU (read from the interface when opened; see [`set_mtu`](Self::set_mtu)).
        pub fn mtu(&self) -> usize {
            self.core.handle().mtu()
        }

        /// Sets the interface's MTU (`SIOCSIFMTU`) and the MTU the device reports. A stack
        /// reads it when it is created: set it before.
        pub fn set_mtu(&mut self, mtu: usize) -> Result<(), Error> {
            self.core.handle().set_mtu(mtu)
        }

        /// Whether the interface is up and running (see the [crate documentation](crate)).
        pub fn is_link_up(&self) -> bool {
            self.core.handle().is_link_up()
        }

        /// Frame counters.
        pub fn stats(&self) -> Stats {
            self.core.handle().stats()
        }
    };
}

/// A TAP device: Ethernet frames to and from a Linux `tap` interface.
///
/// Implements [`Driver`] with `HardwareAddress::Ethernet(`[`mac_address`](Self::mac_address)`)`
/// and a maximum frame size of the interface MTU + 14. See the [crate documentation](crate)
/// for readiness, backpressure and link state.
#[derive(Debug)]
pub struct TapDevice {
    core: Core,
}

impl TapDevice {
    /// Opens the TAP interface `name`, creating it if it does not exist (which needs
    /// `CAP_NET_ADMIN`; the kernel deletes such an interface when the device is dropped).
    pub fn open(name: &str) -> Result<Self, Error> {
        Ok(Self {
            core: Core::open(TUN_PATH, name, Kind::Tap, true)?,
        })
    }

    /// Opens the existing TAP interface `name`; fails with [`Error::NoSuchInterface`]
    /// instead of creating it.
    pub fn open_existing(name: &str) -> Result<Self, Error> {
        Ok(Self {
            core: Core::open(TUN_PATH, name, Kind::Tap, false)?,
        })
    }

    /// Like [`open`](Self::open) with another clone device than `/dev/net/tun`.
    pub fn open_with_clone_device(path: &std::ffi::CStr, name: &str) -> Result<Self, Error> {
        Ok(Self {
            core: Core::open(path, name, Kind::Tap, true)?,
        })
    }

    common_methods!();

    /// The stack's MAC address: what the driver reports as its hardware address.
    pub fn mac_address(&self) -> [u8; 6] {
        self.core.mac()
    }

    /// Changes the stack's MAC address. A running stack picks it up on its next poll.
    pub fn set_mac_address(&mut self, mac: [u8; 6]) -> Result<(), Error> {
        self.core.set_mac(mac)
    }

    /// The kernel interface's own MAC address (`SIOCGIFHWADDR`).
    pub fn interface_mac_address(&self) -> Result<[u8; 6], Error> {
        self.core.handle().interface_mac_address()
    }

    /// Sets the kernel interface's own MAC address (`SIOCSIFHWADDR`). It must differ from
    /// the stack's [`mac_address`](Self::mac_address).
    pub fn set_interface_mac_address(&mut self, mac: [u8; 6]) -> Result<(), Error> {
        self.core.handle().set_interface_mac_address(mac)
    }

    #[cfg(test)]
    pub(crate) fn from_core(core: Core) -> Self {
        Self { core }
    }

    #[cfg(test)]
    pub(crate) fn core(&self) -> &Core {
        &self.core
    }
}

/// A TUN device: bare IPv4/IPv6 packets to and from a Linux `tun` interface.
///
/// Implements [`Driver`] with `HardwareAddress::Ip` and a maximum packet size of the
/// interface MTU. See the [crate documentation](crate) for readiness, backpressure and link
/// state.
#[derive(Debug)]
pub struct TunDevice {
    core: Core,
}

impl TunDevice {
    /// Opens the TUN interface `name`, creating it if it does not exist (which needs
    /// `CAP_NET_ADMIN`; the kernel deletes such an interface when the device is dropped).
    pub fn open(name: &str) -> Result<Self, Error> {
        Ok(Self {
            core: Core::open(TUN_PATH, name, Kind::Tun, true)?,
        })
    }

    /// Opens the existing TUN interface `name`; fails with [`Error::NoSuchInterface`]
    /// instead of creating it.
    pub fn open_existing(name: &str) -> Result<Self, Error> {
        Ok(Self {
            core: Core::open(TUN_PATH, name, Kind::Tun, false)?,
        })
    }

    /// Like [`open`](Self::open) with another clone device than `/dev/net/tun`.
    pub fn open_with_clone_device(path: &std::ffi::CStr, name: &str) -> Result<Self, Error> {
        Ok(Self {
            core: Core::open(path, name, Kind::Tun, true)?,
        })
    }

    common_methods!();

    #[cfg(test)]
    pub(crate) fn from_core(core: Core) -> Self {
        Self { core }
    }
}

macro_rules! impl_driver {
    ($ty:ty, $hw:expr) => {
        impl Driver for $ty {
            type RxToken<'a>
                = TunTapRxToken<'a>
            where
                Self: 'a;
            type TxToken<'a>
                = TunTapTxToken<'a>
            where
                Self: 'a;

            fn receive(
                &mut self,
                cx: &mut Context,
            ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
                self.core.receive(cx)
            }

            fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
                self.core.transmit(cx)
            }

            fn link_state(&mut self, cx: &mut Context) -> LinkState {
                self.core.link_state(cx)
            }

            fn capabilities(&self) -> Capabilities {
                self.core.capabilities()
            }

            fn hardware_address(&self) -> HardwareAddress {
                #[allow(clippy::redundant_closure_call)]
                ($hw)(self)
            }
        }
    };
}

impl_driver!(TapDevice, |d: &TapDevice| HardwareAddress::Ethernet(
    d.core.mac()
));
impl_driver!(TunDevice, |_: &TunDevice| HardwareAddress::Ip);
