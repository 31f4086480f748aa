//! Handing smoltcp one frame that did not come from the driver: a [`phy::Device`] that
//! delivers that frame once and sends nothing.
//!
//! Used for the SYNs a `tcp::TcpListener` held back until a socket takes them and for the
//! neighbor entries the DHCP server fills. The runner's own made-up neighbor answers go
//! through `DriverAdapter::made_up` instead, whose transmit token shares smoltcp's code with
//! the driver's; `driver_adapter::sink` serves both.

use smoltcp::phy::{self, Medium};

/// A device that delivers one frame and sends nothing.
pub(crate) struct Injected<'f> {
    frame: Option<&'f [u8]>,
    medium: Medium,
}

impl<'f> Injected<'f> {
    /// A device delivering `frame` (framed for `medium`) once.
    pub(crate) fn new(frame: &'f [u8], medium: Medium) -> Self {
        Self {
            frame: Some(frame),
            medium,
        }
    }
}

impl phy::Device for Injected<'_> {
    type RxToken<'a>
        = InjectedRx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = Sink
    where
        Self: 'a;

    fn receive(
        &mut self,
        _timestamp: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.frame.take().map(|f| (InjectedRx(f), Sink))
    }

    fn transmit(&mut self, _timestamp: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        None
    }

    /// smoltcp 0.14 uses the capabilities given when the interface was created, not these.
    fn capabilities(&self) -> phy::DeviceCapabilities {
        let mut caps = phy::DeviceCapabilities::default();
        caps.medium = self.medium;
        caps.max_transmission_unit = crate::driver_adapter::SINK_LEN;
        caps
    }
}

pub(crate) struct InjectedRx<'f>(&'f [u8]);

impl phy::RxToken for InjectedRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

/// The transmit token handed out with an injected frame. smoltcp answers neither an ARP reply,
/// a neighbor advertisement nor a SYN taken by a listening socket, so it is not normally used;
/// should it be, what is written goes nowhere.
pub(crate) struct Sink;

impl phy::TxToken for Sink {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        crate::driver_adapter::sink(len, f)
    }
}
