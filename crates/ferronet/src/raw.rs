//! Raw IP sockets.
//!
//! Same API as embassy-net 0.9's `raw` module: a [`RawSocket`] receives every IP packet of
//! its IP version and protocol (header included) and sends whole IP packets built by the
//! caller. One difference:
//!
//! - [`RawSocket::send`] and [`RawSocket::poll_send`] return `Result<(), SendError>` (embassy-net:
//!   `()`), so that a packet larger than the transmit buffer is reported as
//!   [`SendError::PacketTooLarge`] at once instead of waiting forever for room that can never
//!   exist, and one larger than the interface can send (its MTU) as well, where smoltcp
//!   would drop it silently. `socket.send(packet).await;` still compiles (with an
//!   `unused_must_use` warning).
//!
//! ```no_run
//! # async fn demo(stack: ferronet::Stack<'_>) {
//! use ferronet::raw::{IpProtocol, IpVersion, PacketMetadata, RawSocket};
//!
//! let mut rx_meta = [PacketMetadata::EMPTY; 4];
//! let mut rx_buf = [0u8; 1024];
//! let mut tx_meta = [PacketMetadata::EMPTY; 4];
//! let mut tx_buf = [0u8; 1024];
//! let socket = RawSocket::new(
//!     stack,
//!     Some(IpVersion::Ipv4),
//!     Some(IpProtocol::from(253)),
//!     &mut rx_meta,
//!     &mut rx_buf,
//!     &mut tx_meta,
//!     &mut tx_buf,
//! );
//! let mut packet = [0u8; 1500];
//! let n = socket.recv(&mut packet).await.unwrap();
//! // `packet[..n]` is a whole IPv4 packet of protocol 253.
//! # let _ = n;
//! # }
//! ```

use core::future::{Future, poll_fn};
use core::task::{Context, Poll};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::raw;
pub use smoltcp::socket::raw::PacketMetadata;
pub use smoltcp::wire::{IpProtocol, IpVersion};

use crate::stack::{SocketTableFull, Stack, erase_lifetime};

/// Error returned by [`RawSocket::recv`] and [`RawSocket::poll_recv`].
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecvError {
    /// The buffer was smaller than the packet; the packet was dropped.
    Truncated,
}

impl core::fmt::Display for RecvError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Truncated => "packet larger than the receive buffer (dropped)",
        })
    }
}
impl core::error::Error for RecvError {}

/// Error returned by [`RawSocket::send`] and [`RawSocket::poll_send`] (not in embassy-net,
/// whose `send` returns `()`).
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SendError {
    /// The packet can never be sent: it is larger than the socket's transmit buffer (or the
    /// buffer has no packet slot), or larger than the interface sends (see
    /// [`RawSocket::send`]).
    PacketTooLarge,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::PacketTooLarge => "packet larger than the transmit buffer or the link allows",
        })
    }
}
impl core::error::Error for SendError {}

/// A raw IP socket.
///
/// It receives a copy of every incoming IP packet that matches its IP version and protocol
/// (either may be `None` for "any"), IP header included, and sends IP packets given whole
/// (header included; smoltcp fills in the IPv4 header checksum). A packet whose protocol
/// differs from the socket's, or that is not a valid IP packet, is dropped when it is sent.
pub struct RawSocket<'a> {
    stack: Stack<'a>,
    handle: SocketHandle,
}

fn _assert_covariant<'a, 'b: 'a>(x: RawSocket<'b>) -> RawSocket<'a> {
    x
}

impl<'a> RawSocket<'a> {
    /// Create a raw socket for the given IP version and protocol (`None`: any), with the given
    /// metadata and packet buffers (one metadata entry per packet that can be queued).
    ///
    /// # Panics
    ///
    /// If the stack's socket table is full ("make `StackResources<N>` larger"); use
    /// [`try_new`](Self::try_new) to get an error instead.
    pub fn new(
        stack: Stack<'a>,
        ip_version: Option<IpVersion>,
        ip_protocol: Option<IpProtocol>,
        rx_meta: &'a mut [PacketMetadata],
        rx_buffer: &'a mut [u8],
        tx_meta: &'a mut [PacketMetadata],
        tx_buffer: &'a mut [u8],
    ) -> Self {
        match Self::try_new(
            stack,
            ip_version,
            ip_protocol,
            rx_meta,
            rx_buffer,
            tx_meta,
            tx_buffer,
        ) {
            Ok(s) => s,
            Err(e) => panic!("RawSocket::new: {}", e),
        }
    }

    /// Create a raw socket, or return [`SocketTableFull`] when every slot of the stack's
    /// [`StackResources`](crate::StackResources) is taken.
    pub fn try_new(
        stack: Stack<'a>,
        ip_version: Option<IpVersion>,
        ip_protocol: Option<IpProtocol>,
        rx_meta: &'a mut [PacketMetadata],
        rx_buffer: &'a mut [u8],
        tx_meta: &'a mut [PacketMetadata],
        tx_buffer: &'a mut [u8],
    ) -> Result<Self, SocketTableFull> {
        // SAFETY: the buffers are borrowed for 'a, and the smoltcp socket that holds them is
        // removed from the socket set when this `RawSocket<'a>` is dropped (or never added if
        // `add_socket` fails, in which case it is dropped right here), so the set never uses
        // them after 'a. The lifetime is erased only because the set cannot name 'a.
        let (rx_meta, rx_buffer, tx_meta, tx_buffer) = unsafe {
            (
                erase_lifetime(rx_meta),
                erase_lifetime(rx_buffer),
                erase_lifetime(tx_meta),
                erase_lifetime(tx_buffer),
            )
        };
        let socket = raw::Socket::new(
            ip_version,
            ip_protocol,
            raw::PacketBuffer::new(rx_meta, rx_buffer),
            raw::PacketBuffer::new(tx_meta, tx_buffer),
        );
        let handle = stack.with_mut(|i| i.add_socket(socket))?;
        Ok(Self { stack, handle })
    }

    /// Wait until a packet can be read.
    pub fn wait_recv_ready(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| self.poll_recv_ready(cx))
    }

    /// Poll whether a packet can be read; registers the waker when none can.
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.stack.with_mut(|i| {
            let s = i.sockets.get_mut::<raw::Socket>(self.handle);
            if s.can_recv() {
                Poll::Ready(())
            } else {
                s.register_recv_waker(cx.waker());
                Poll::Pending
            }
        })
    }

    /// Receive a packet: waits for one, copies it (IP header included) into `buf` and returns
    /// its length.
    ///
    /// A packet larger than `buf` is dropped and [`RecvError::Truncated`] returned.
    pub async fn recv(&self, buf: &mut [u8]) -> Result<usize, RecvError> {
        poll_fn(move |cx| self.poll_recv(buf, cx)).await
    }

    /// Poll for a packet, like [`recv`](Self::recv).
    pub fn poll_recv(
        &self,
        buf: &mut [u8],
        cx: &mut Context<'_>,
    ) -> Poll<Result<usize, RecvError>> {
        self.stack.with_mut(|i| {
            let s = i.sockets.get_mut::<raw::Socket>(self.handle);
            match s.recv_slice(buf) {
                Ok(n) => Poll::Ready(Ok(n)),
                Err(raw::RecvError::Truncated) => Poll::Ready(Err(RecvError::Truncated)),
                Err(raw::RecvError::Exhausted) => {
                    s.register_recv_waker(cx.waker());
                    Poll::Pending
                }
            }
        })
    }

    /// Wait until a packet can be queued for sending.
    pub fn wait_send_ready(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| self.poll_send_ready(cx))
    }

    /// Poll whether a packet can be queued; registers the waker when none can.
    pub fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.stack.with_mut(|i| {
            let s = i.sockets.get_mut::<raw::Socket>(self.handle);
            if s.can_send() {
                Poll::Ready(())
            } else {
                s.register_send_waker(cx.waker());
                Poll::Pending
            }
        })
    }

    /// Send an IP packet (header included), waiting for room in the transmit buffer.
    ///
    /// Fails at once with [`SendError::PacketTooLarge`] when the packet can never fit the
    /// transmit buffer (embassy-net's `send` returns `()` and waits forever then), or when it
    /// is larger than the interface sends: the IP MTU (the driver's MTU, less the Ethernet
    /// header on Ethernet), or for IPv4 with the cargo feature `proto-ipv4-fragmentation` the
    /// fragmentation buffer (`FRAGMENTATION_BUFFER_SIZE`, 4096 bytes unless changed); on IEEE
    /// 802.15.4, an IPv6 packet of more than 154 bytes, which can never fit a 6LoWPAN frame.
    /// The length checked is that of the packet smoltcp sends, which drops IPv4 options.
    pub fn send<'s>(&'s self, buf: &'s [u8]) -> impl Future<Output = Result<(), SendError>> + 's {
        poll_fn(move |cx| self.poll_send(buf, cx))
    }

    /// Poll to send an IP packet, like [`send`](Self::send).
    pub fn poll_send(&self, buf: &[u8], cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.stack.with_mut(|i| {
            let too_long_for_link =
                sent_len(buf).is_some_and(|(version, len)| len > i.link().max_ip_packet(version));
            let s = i.sockets.get_mut::<raw::Socket>(self.handle);
            if buf.len() > s.payload_send_capacity()
                || s.packet_send_capacity() == 0
                || too_long_for_link
            {
                return Poll::Ready(Err(SendError::PacketTooLarge));
            }
            match s.send_slice(buf) {
                Ok(()) => {
                    i.wake_runner();
                    Poll::Ready(Ok(()))
                }
                Err(raw::SendError::BufferFull) => {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
            }
        })
    }

    /// Wait until every queued packet has been handed to the driver.
    pub fn flush(&mut self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            self.stack.with_mut(|i| {
                let s = i.sockets.get_mut::<raw::Socket>(self.handle);
                if s.send_queue() == 0 {
                    Poll::Ready(())
                } else {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
            })
        })
    }
}

/// The IP version of `packet` and the length of the packet smoltcp sends for it (it re-emits
/// an IPv4 header without options); `None` if it is not an IP packet (smoltcp drops it).
fn sent_len(packet: &[u8]) -> Option<(IpVersion, usize)> {
    let version = IpVersion::of_packet(packet).ok()?;
    let len = match version {
        #[cfg(feature = "proto-ipv4")]
        IpVersion::Ipv4 => {
            let header_len = usize::from(packet[0] & 0x0f) * 4;
            packet.len().checked_sub(header_len)? + crate::mtu::IPV4_HEADER_LEN
        }
        #[allow(unreachable_patterns)]
        _ => packet.len(),
    };
    Some((version, len))
}

impl Drop for RawSocket<'_> {
    fn drop(&mut self) {
        let handle = self.handle;
        self.stack.with_mut(|i| i.remove_socket(handle));
    }
}
