//! Adapter from an `embassy-net-driver` [`Driver`] to a smoltcp [`phy::Device`].
//!
//! The adapter is built afresh for every poll of the runner: it borrows the driver and the
//! runner task's [`Context`], so that a driver that has nothing to give registers the runner's
//! waker, and records what happened (frames in and out, transmit queue exhausted) in
//! [`Counters`](crate::Counters).

use core::task::Context;

use embassy_net_driver::{Capabilities, Checksum, Driver, RxToken, TxToken};
use smoltcp::phy::{self, Medium};
use smoltcp::time::Instant;

use crate::stats::CounterStore;

pub(crate) struct DriverAdapter<'d, 'c, T: Driver> {
    pub cx: &'d mut Context<'c>,
    pub inner: &'d mut T,
    pub counters: &'d mut CounterStore,
    /// Set when the driver refused to hand out a transmit token during this poll.
    pub tx_exhausted: bool,
    /// Set when the driver handed out at least one received frame during this poll.
    pub rx_seen: bool,
}

impl<'d, 'c, T: Driver> phy::Device for DriverAdapter<'d, 'c, T> {
    type RxToken<'a>
        = RxTokenAdapter<T::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = TxTokenAdapter<'a, T::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        #[cfg(all(feature = "slaac", feature = "medium-ethernet"))]
        let ethernet = matches!(
            self.inner.hardware_address(),
            embassy_net_driver::HardwareAddress::Ethernet(_)
        );
        let (rx, tx) = self.inner.receive(self.cx)?;
        self.rx_seen = true;
        self.counters.rx_frame();
        Some((
            RxTokenAdapter {
                token: rx,
                #[cfg(all(feature = "slaac", feature = "medium-ethernet"))]
                ethernet,
            },
            TxTokenAdapter {
                token: tx,
                counters: &mut *self.counters,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        match self.inner.transmit(self.cx) {
            Some(token) => Some(TxTokenAdapter {
                token,
                counters: &mut *self.counters,
            }),
            None => {
                self.tx_exhausted = true;
                self.counters.tx_queue_full();
                None
            }
        }
    }

    /// smoltcp 0.14 asks only when the interface is created (see `try_new`), so nothing is
    /// kept: this converts the driver's answer each time.
    fn capabilities(&self) -> phy::DeviceCapabilities {
        device_capabilities(self.inner)
    }
}

/// The driver's capabilities in smoltcp's terms, with the medium of its hardware address.
pub(crate) fn device_capabilities<T: Driver>(driver: &T) -> phy::DeviceCapabilities {
    let medium = match crate::stack::to_smoltcp_hardware_address(driver.hardware_address()) {
        Ok((_, medium)) => medium,
        // `try_new` refuses such a driver; a driver that changes medium later is ignored.
        Err(_) => Medium::default(),
    };
    smoltcp_capabilities(driver.capabilities(), medium)
}

/// Translate the driver's capabilities into smoltcp's, for the given medium.
pub(crate) fn smoltcp_capabilities(caps: Capabilities, medium: Medium) -> phy::DeviceCapabilities {
    fn convert(c: Checksum) -> phy::Checksum {
        match c {
            Checksum::Both => phy::Checksum::Both,
            Checksum::Tx => phy::Checksum::Tx,
            Checksum::Rx => phy::Checksum::Rx,
            Checksum::None => phy::Checksum::None,
        }
    }
    let mut smolcaps = phy::DeviceCapabilities::default();
    smolcaps.max_transmission_unit = caps.max_transmission_unit;
    smolcaps.max_burst_size = caps.max_burst_size;
    smolcaps.medium = medium;
    smolcaps.checksum.ipv4 = convert(caps.checksum.ipv4);
    smolcaps.checksum.tcp = convert(caps.checksum.tcp);
    smolcaps.checksum.udp = convert(caps.checksum.udp);
    #[cfg(feature = "proto-ipv4")]
    {
        smolcaps.checksum.icmpv4 = convert(caps.checksum.icmpv4);
    }
    #[cfg(feature = "proto-ipv6")]
    {
        smolcaps.checksum.icmpv6 = convert(caps.checksum.icmpv6);
    }
    smolcaps
}

pub(crate) struct RxTokenAdapter<T: RxToken> {
    token: T,
    /// An Ethernet frame: pass it through [`crate::ra_guard`] first.
    #[cfg(all(feature = "slaac", feature = "medium-ethernet"))]
    ethernet: bool,
}

impl<T: RxToken> phy::RxToken for RxTokenAdapter<T> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        #[cfg(all(feature = "slaac", feature = "medium-ethernet"))]
        let ethernet = self.ethernet;
        self.token.consume(|buf| {
            #[cfg(all(feature = "slaac", feature = "medium-ethernet"))]
            if ethernet && crate::ra_guard::neutralize(buf) {
                warn!("router advertisement with a prefix length over 128: option ignored");
            }
            trace_frame("rx", buf);
            f(buf)
        })
    }
}

pub(crate) struct TxTokenAdapter<'a, T: TxToken> {
    token: T,
    counters: &'a mut CounterStore,
}

impl<T: TxToken> phy::TxToken for TxTokenAdapter<'_, T> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        self.counters.tx_frame();
        self.token.consume(len, |buf| {
            let r = f(buf);
            trace_frame("tx", buf);
            r
        })
    }
}

/// With `packet-trace`, log a frame in hex (`log` and `defmt` alike).
#[inline(always)]
fn trace_frame(_dir: &str, _frame: &[u8]) {
    #[cfg(all(feature = "packet-trace", feature = "log"))]
    log::trace!("ferronet {} {} bytes: {:02x?}", _dir, _frame.len(), _frame);
    #[cfg(all(feature = "packet-trace", feature = "defmt"))]
    defmt::trace!(
        "ferronet {} {} bytes: {=[u8]:02x}",
        _dir,
        _frame.len(),
        _frame
    );
}
