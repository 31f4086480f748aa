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
    /// IPv4 fragments still to be sent, and the transmit token of the current egress pass.
    #[cfg(feature = "proto-ipv4-fragmentation")]
    pub frag: FragGate,
}

/// Keeps smoltcp 0.14 from overwriting the fragments of a datagram it is still sending.
///
/// smoltcp has one fragmentation buffer and sends one IPv4 fragment per egress pass
/// (`poll_egress`), before the sockets; but it lets the sockets dispatch in the same pass, and a
/// second datagram larger than the MTU then overwrites the buffer: the rest of the first one is
/// never sent, and the peer's reassembly buffer stays taken by it until it times out. So while
/// fragments are pending (seen on the wire: an IPv4 fragment with "more fragments" set, until
/// the one without it), the adapter hands out one transmit token per egress pass, which the
/// next fragment takes; the sockets find the device busy and keep their packets queued.
#[cfg(feature = "proto-ipv4-fragmentation")]
#[derive(Clone, Copy, Default)]
pub(crate) struct FragGate {
    /// Where the IP header starts in a frame: 14 on Ethernet, 0 on the IP medium, `None` on
    /// media without IPv4.
    pub ip_offset: Option<u8>,
    /// A fragmented datagram is being sent.
    pub pending: bool,
    /// The token of the current egress pass is still free.
    pub token: bool,
}

/// Where the IP header starts in a frame of `medium` (`None`: no IPv4 on it).
#[cfg(feature = "proto-ipv4-fragmentation")]
pub(crate) fn ip_offset(medium: Medium) -> Option<u8> {
    match medium {
        #[cfg(feature = "medium-ethernet")]
        Medium::Ethernet => Some(14),
        #[cfg(feature = "medium-ip")]
        Medium::Ip => Some(0),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

#[cfg(feature = "proto-ipv4-fragmentation")]
impl FragGate {
    /// Whether a transmit token may be handed out now (takes the pass's token if pending).
    fn take(&mut self) -> bool {
        !self.pending || core::mem::take(&mut self.token)
    }

    /// Follow the fragments in a frame just written.
    fn sent(&mut self, frame: &[u8]) {
        let Some(off) = self.ip_offset.map(usize::from) else {
            return;
        };
        let ethernet_ipv4 = off == 0 || frame.get(12..14) == Some(&[0x08, 0x00][..]);
        let Some(ip) = frame.get(off..off + 8) else {
            return;
        };
        if !ethernet_ipv4 || ip[0] >> 4 != 4 {
            return;
        }
        let flags_offset = u16::from_be_bytes([ip[6], ip[7]]);
        if flags_offset & 0x2000 != 0 {
            // More fragments: no other token in this pass.
            self.pending = true;
            self.token = false;
        } else if flags_offset & 0x1fff != 0 {
            // The last fragment.
            self.pending = false;
        }
    }
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
        let (rx, tx) = self.inner.receive(self.cx)?;
        self.rx_seen = true;
        self.counters.rx_frame();
        Some((
            RxTokenAdapter(rx),
            TxTokenAdapter {
                token: tx,
                counters: &mut *self.counters,
                #[cfg(feature = "proto-ipv4-fragmentation")]
                frag: &mut self.frag,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        #[cfg(feature = "proto-ipv4-fragmentation")]
        if !self.frag.take() {
            return None;
        }
        match self.inner.transmit(self.cx) {
            Some(token) => Some(TxTokenAdapter {
                token,
                counters: &mut *self.counters,
                #[cfg(feature = "proto-ipv4-fragmentation")]
                frag: &mut self.frag,
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

pub(crate) struct RxTokenAdapter<T: RxToken>(T);

impl<T: RxToken> phy::RxToken for RxTokenAdapter<T> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        self.0.consume(|buf| {
            trace_frame("rx", buf);
            f(buf)
        })
    }
}

pub(crate) struct TxTokenAdapter<'a, T: TxToken> {
    token: T,
    counters: &'a mut CounterStore,
    #[cfg(feature = "proto-ipv4-fragmentation")]
    frag: &'a mut FragGate,
}

impl<T: TxToken> phy::TxToken for TxTokenAdapter<'_, T> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        self.counters.tx_frame();
        #[cfg(feature = "proto-ipv4-fragmentation")]
        let frag = self.frag;
        self.token.consume(len, |buf| {
            let r = f(buf);
            trace_frame("tx", buf);
            #[cfg(feature = "proto-ipv4-fragmentation")]
            frag.sent(buf);
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
