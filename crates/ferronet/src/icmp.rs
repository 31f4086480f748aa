//! ICMP sockets, and [`ping`].
//!
//! Same API as embassy-net 0.9's `icmp` module. Differences that make it stricter:
//!
//! - [`IcmpSocket::recv_from_with`] waits for a packet (embassy-net polls in a busy loop).
//! - [`SendError::NoRoute`] is returned at once when the stack has no address or route for the
//!   destination (embassy-net queues the packet, which smoltcp then drops silently).
//! - [`IcmpSocket::send_to_with`] never waits forever for room that a packet of `max_size`
//!   bytes would have in the empty transmit buffer.
//! - [`IcmpSocket::set_hop_limit`] takes `Some(0)` as `None` instead of panicking.
//! - [`IcmpSocket::try_new`] returns [`SocketTableFull`] instead of panicking.
//! - [`SendError::PacketTooLarge`] is returned at once for a packet the interface cannot send
//!   (embassy-net queues it, and smoltcp drops it silently).
//!
//! # Packet size
//!
//! An ICMP message (header included) must fit one IP packet within the interface's MTU: at
//! most MTU - 20 bytes over IPv4 (1480 on Ethernet: an echo payload of 1472 bytes) and MTU -
//! 40 over IPv6 (1460). With the cargo feature `proto-ipv4-fragmentation`, IPv4 messages of
//! up to `FRAGMENTATION_BUFFER_SIZE` - 20 bytes (4076 with smoltcp's default of 4096) are sent
//! in fragments, and fragmented replies are reassembled. IPv6 is never fragmented; on IEEE
//! 802.15.4 a message of more than 114 bytes can never fit a 6LoWPAN frame. Larger packets
//! fail with [`SendError::PacketTooLarge`] at the call (for `send_to_with`, `max_size` is
//! checked), and [`ping`](ping::PingManager::ping) returns it as
//! [`PingError::SocketSendError`](ping::PingError::SocketSendError).
//!
//! ```no_run
//! # #[cfg(feature = "proto-ipv4")]
//! # async fn demo(stack: ferronet::Stack<'_>) {
//! use ferronet::Ipv4Address;
//! use ferronet::icmp::{
//!     ChecksumCapabilities, IcmpEndpoint, IcmpSocket, Icmpv4Packet, Icmpv4Repr, PacketMetadata,
//! };
//!
//! let mut rx_meta = [PacketMetadata::EMPTY; 2];
//! let mut rx_buf = [0u8; 256];
//! let mut tx_meta = [PacketMetadata::EMPTY; 2];
//! let mut tx_buf = [0u8; 256];
//! let mut socket = IcmpSocket::new(stack, &mut rx_meta, &mut rx_buf, &mut tx_meta, &mut tx_buf);
//! socket.bind(IcmpEndpoint::Ident(0x1234)).unwrap();
//! let request = Icmpv4Repr::EchoRequest { ident: 0x1234, seq_no: 1, data: b"hi" };
//! let dst = Ipv4Address::new(192, 0, 2, 1);
//! socket
//!     .send_to_with(request.buffer_len(), dst, |buf| {
//!         request.emit(&mut Icmpv4Packet::new_unchecked(buf), &ChecksumCapabilities::default());
//!         (request.buffer_len(), ())
//!     })
//!     .await
//!     .unwrap();
//! let mut reply = [0u8; 64];
//! let (n, from) = socket.recv_from(&mut reply).await.unwrap();
//! # let _ = (n, from);
//! # }
//! ```

use core::future::{Future, poll_fn};
use core::task::{Context, Poll};

use smoltcp::iface::SocketHandle;
pub use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::icmp;
pub use smoltcp::socket::icmp::{Endpoint as IcmpEndpoint, PacketMetadata};
use smoltcp::wire::IpAddress;
#[cfg(feature = "proto-ipv4")]
pub use smoltcp::wire::{Icmpv4Message, Icmpv4Packet, Icmpv4Repr};
#[cfg(feature = "proto-ipv6")]
pub use smoltcp::wire::{Icmpv6Message, Icmpv6Packet, Icmpv6Repr};

use crate::stack::{Inner, SocketTableFull, Stack, erase_lifetime};

/// Error returned by [`IcmpSocket::bind`].
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BindError {
    /// The socket was already bound.
    InvalidState,
    /// The endpoint is unspecified (`IcmpEndpoint::Unspecified`, or a UDP/TCP endpoint with
    /// port 0).
    InvalidEndpoint,
    /// No route to host. Kept for compatibility; binding never fails with it.
    NoRoute,
}

impl core::fmt::Display for BindError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::InvalidState => "socket already bound",
            Self::InvalidEndpoint => "unspecified ICMP endpoint",
            Self::NoRoute => "no route to host",
        })
    }
}
impl core::error::Error for BindError {}

/// Error returned by [`IcmpSocket::send_to`] and friends.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SendError {
    /// No route to host: no address to send from, no route to the destination, or (on a bound
    /// socket) the destination is unspecified.
    NoRoute,
    /// The destination is unspecified and the socket is not bound (as in embassy-net; an
    /// unbound socket can send to a specified destination).
    SocketNotBound,
    /// The packet can never be sent: it is larger than the transmit buffer (or the buffer has
    /// no packet slot), or larger than the interface sends to the destination (see
    /// [Packet size](self#packet-size)).
    PacketTooLarge,
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NoRoute => "no route to host",
            Self::SocketNotBound => "socket not bound",
            Self::PacketTooLarge => "packet larger than the transmit buffer or the link allows",
        })
    }
}
impl core::error::Error for SendError {}

/// Error returned by [`IcmpSocket::recv_from`] and friends.
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

/// An ICMP socket.
///
/// Bound to an [`IcmpEndpoint`], it receives the ICMP messages that smoltcp matches to that
/// endpoint: echo requests and replies with the bound identifier (`Ident`), or error messages
/// about packets sent from a local UDP or TCP port (`Udp`, `Tcp`). Every matching socket gets
/// its own copy. Received packets are whole ICMP messages (header included), and packets to
/// send must be whole ICMP messages too; smoltcp recomputes their checksum when sending.
pub struct IcmpSocket<'a> {
    stack: Stack<'a>,
    handle: SocketHandle,
}

fn _assert_covariant<'a, 'b: 'a>(x: IcmpSocket<'b>) -> IcmpSocket<'a> {
    x
}

impl<'a> IcmpSocket<'a> {
    /// Create an ICMP socket with the given metadata and packet buffers (one metadata entry per
    /// packet that can be queued).
    ///
    /// # Panics
    ///
    /// If the stack's socket table is full ("make `StackResources<N>` larger"); use
    /// [`try_new`](Self::try_new) to get an error instead.
    pub fn new(
        stack: Stack<'a>,
        rx_meta: &'a mut [PacketMetadata],
        rx_buffer: &'a mut [u8],
        tx_meta: &'a mut [PacketMetadata],
        tx_buffer: &'a mut [u8],
    ) -> Self {
        match Self::try_new(stack, rx_meta, rx_buffer, tx_meta, tx_buffer) {
            Ok(s) => s,
            Err(e) => panic!("IcmpSocket::new: {}", e),
        }
    }

    /// Create an ICMP socket, or return [`SocketTableFull`] when every slot of the stack's
    /// [`StackResources`](crate::StackResources) is taken.
    pub fn try_new(
        stack: Stack<'a>,
        rx_meta: &'a mut [PacketMetadata],
        rx_buffer: &'a mut [u8],
        tx_meta: &'a mut [PacketMetadata],
        tx_buffer: &'a mut [u8],
    ) -> Result<Self, SocketTableFull> {
        // SAFETY: the buffers are borrowed for 'a, and the smoltcp socket that holds them is
        // removed from the socket set when this `IcmpSocket<'a>` is dropped (or never added if
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
        let socket = icmp::Socket::new(
            icmp::PacketBuffer::new(rx_meta, rx_buffer),
            icmp::PacketBuffer::new(tx_meta, tx_buffer),
        );
        let handle = stack.with_mut(|i| i.add_socket(socket))?;
        Ok(Self { stack, handle })
    }

    /// Bind the socket to an endpoint: an ICMP identifier (`IcmpEndpoint::Ident`) for echo
    /// messages, or a local UDP or TCP port for the ICMP errors about its packets.
    pub fn bind<T>(&mut self, endpoint: T) -> Result<(), BindError>
    where
        T: Into<IcmpEndpoint>,
    {
        let endpoint = endpoint.into();
        if !endpoint.is_specified() {
            return Err(BindError::InvalidEndpoint);
        }
        self.stack.with_mut(|i| {
            match i
                .sockets
                .get_mut::<icmp::Socket>(self.handle)
                .bind(endpoint)
            {
                Ok(()) => Ok(()),
                Err(icmp::BindError::InvalidState) => Err(BindError::InvalidState),
                Err(icmp::BindError::Unaddressable) => Err(BindError::InvalidEndpoint),
            }
        })
    }

    fn with<R>(&self, f: impl FnOnce(&icmp::Socket) -> R) -> R {
        self.stack
            .with(|i| f(i.sockets.get::<icmp::Socket>(self.handle)))
    }

    /// Wait until a packet can be read.
    pub fn wait_recv_ready(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| self.poll_recv_ready(cx))
    }

    /// Poll whether a packet can be read; registers the waker when none can.
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.stack.with_mut(|i| {
            let s = i.sockets.get_mut::<icmp::Socket>(self.handle);
            if s.can_recv() {
                Poll::Ready(())
            } else {
                s.register_recv_waker(cx.waker());
                Poll::Pending
            }
        })
    }

    /// Receive a packet: waits for one, copies the ICMP message into `buf` and returns its
    /// length and the address it came from.
    ///
    /// A packet larger than `buf` is dropped and [`RecvError::Truncated`] returned.
    pub fn recv_from<'s>(
        &'s self,
        buf: &'s mut [u8],
    ) -> impl Future<Output = Result<(usize, IpAddress), RecvError>> + 's {
        poll_fn(move |cx| self.poll_recv_from(buf, cx))
    }

    /// Poll for a packet, like [`recv_from`](Self::recv_from).
    pub fn poll_recv_from(
        &self,
        buf: &mut [u8],
        cx: &mut Context<'_>,
    ) -> Poll<Result<(usize, IpAddress), RecvError>> {
        self.stack.with_mut(|i| {
            let s = i.sockets.get_mut::<icmp::Socket>(self.handle);
            match s.recv_slice(buf) {
                Ok(r) => Poll::Ready(Ok(r)),
                Err(icmp::RecvError::Truncated) => Poll::Ready(Err(RecvError::Truncated)),
                Err(icmp::RecvError::Exhausted) => {
                    s.register_recv_waker(cx.waker());
                    Poll::Pending
                }
            }
        })
    }

    /// Receive a packet without copying: waits for one and calls `f` with the ICMP message and
    /// the address it came from.
    ///
    /// Never fails with [`RecvError::Truncated`] (there is no buffer to be too small); the
    /// `Result` is kept for compatibility with embassy-net.
    pub async fn recv_from_with<F, R>(&self, f: F) -> Result<R, RecvError>
    where
        F: FnOnce((&[u8], IpAddress)) -> R,
    {
        let mut f = Some(f);
        poll_fn(move |cx| {
            self.stack.with_mut(|i| {
                let s = i.sockets.get_mut::<icmp::Socket>(self.handle);
                match s.recv() {
                    Ok(packet) => match f.take() {
                        Some(f) => Poll::Ready(Ok(f(packet))),
                        None => Poll::Pending,
                    },
                    Err(icmp::RecvError::Truncated) => Poll::Ready(Err(RecvError::Truncated)),
                    Err(icmp::RecvError::Exhausted) => {
                        s.register_recv_waker(cx.waker());
                        Poll::Pending
                    }
                }
            })
        })
        .await
    }

    /// Wait until a packet can be queued for sending.
    pub fn wait_send_ready(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| self.poll_send_ready(cx))
    }

    /// Poll whether a packet can be queued; registers the waker when none can.
    pub fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.stack.with_mut(|i| {
            let s = i.sockets.get_mut::<icmp::Socket>(self.handle);
            if s.can_send() {
                Poll::Ready(())
            } else {
                s.register_send_waker(cx.waker());
                Poll::Pending
            }
        })
    }

    /// Send an ICMP message (header included) to `remote_endpoint`, waiting for room in the
    /// transmit buffer.
    ///
    /// Fails with [`SendError::PacketTooLarge`] when the packet can never fit the transmit
    /// buffer or the interface's MTU (see [Packet size](self#packet-size)), and with
    /// [`SendError::NoRoute`] when there is no route to the destination.
    pub async fn send_to<T>(&self, buf: &[u8], remote_endpoint: T) -> Result<(), SendError>
    where
        T: Into<IpAddress>,
    {
        let remote_endpoint: IpAddress = remote_endpoint.into();
        poll_fn(move |cx| self.poll_send_to(buf, remote_endpoint, cx)).await
    }

    /// Poll to send an ICMP message, like [`send_to`](Self::send_to).
    pub fn poll_send_to<T>(
        &self,
        buf: &[u8],
        remote_endpoint: T,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError>>
    where
        T: Into<IpAddress>,
    {
        let dst: IpAddress = remote_endpoint.into();
        self.stack.with_mut(|i| {
            if let Err(e) = check_send(i, self.handle, buf.len(), &dst) {
                return Poll::Ready(Err(e));
            }
            let s = i.sockets.get_mut::<icmp::Socket>(self.handle);
            match s.send_slice(buf, dst) {
                Ok(()) => {
                    i.wake_runner();
                    Poll::Ready(Ok(()))
                }
                Err(icmp::SendError::BufferFull) => {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
                Err(icmp::SendError::Unaddressable) => Poll::Ready(Err(unaddressable(s))),
            }
        })
    }

    /// Send an ICMP message of at most `max_size` bytes written in place by `f`, which returns
    /// the actual size and a value. Waits for room in the transmit buffer.
    ///
    /// Fails like [`send_to`](Self::send_to), `max_size` taking the place of the length.
    pub async fn send_to_with<T, F, R>(
        &mut self,
        max_size: usize,
        remote_endpoint: T,
        f: F,
    ) -> Result<R, SendError>
    where
        T: Into<IpAddress>,
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        let dst: IpAddress = remote_endpoint.into();
        let mut f = Some(f);
        poll_fn(move |cx| {
            self.stack.with_mut(|i| {
                if let Err(e) = check_send(i, self.handle, max_size, &dst) {
                    return Poll::Ready(Err(e));
                }
                let s = i.sockets.get_mut::<icmp::Socket>(self.handle);
                let mut ret = None;
                let mut placeholder = false;
                let poll = loop {
                    let res = s.send_with(max_size, dst, |buf| match f.take() {
                        Some(f) => {
                            let (size, r) = f(buf);
                            ret = Some(r);
                            size.min(buf.len())
                        }
                        None => 0,
                    });
                    match res {
                        Ok(_) => {
                            break Poll::Ready(ret.take().ok_or(SendError::PacketTooLarge));
                        }
                        Err(icmp::SendError::BufferFull)
                            if !placeholder && s.send_queue() == 0 && s.can_send() =>
                        {
                            // The transmit buffer holds no data yet `max_size` bytes found no
                            // contiguous room: smoltcp's in-place enqueue does not rewind an
                            // empty ring. Queueing an empty packet rewinds it (the empty
                            // packet is dropped unsent as malformed), then try again.
                            placeholder = s.send_slice(&[], dst).is_ok();
                            if !placeholder {
                                s.register_send_waker(cx.waker());
                                break Poll::Pending;
                            }
                        }
                        Err(icmp::SendError::BufferFull) => {
                            s.register_send_waker(cx.waker());
                            break Poll::Pending;
                        }
                        Err(icmp::SendError::Unaddressable) => {
                            break Poll::Ready(Err(unaddressable(s)));
                        }
                    }
                };
                if placeholder || matches!(poll, Poll::Ready(Ok(_))) {
                    i.wake_runner();
                }
                poll
            })
        })
        .await
    }

    /// Wait until every queued packet has been handed to the driver.
    pub fn flush(&mut self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            self.stack.with_mut(|i| {
                let s = i.sockets.get_mut::<icmp::Socket>(self.handle);
                if s.send_queue() == 0 {
                    Poll::Ready(())
                } else {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
            })
        })
    }

    /// Whether the socket is bound.
    pub fn is_open(&self) -> bool {
        self.with(|s| s.is_open())
    }

    /// Whether a packet can be queued for sending (the transmit buffer has room).
    pub fn may_send(&self) -> bool {
        self.with(|s| s.can_send())
    }

    /// Whether a received packet is waiting.
    pub fn may_recv(&self) -> bool {
        self.with(|s| s.can_recv())
    }

    /// How many packets the receive buffer can hold.
    pub fn packet_recv_capacity(&self) -> usize {
        self.with(|s| s.packet_recv_capacity())
    }

    /// How many packets the transmit buffer can hold.
    pub fn packet_send_capacity(&self) -> usize {
        self.with(|s| s.packet_send_capacity())
    }

    /// The capacity of the receive buffer, in bytes.
    pub fn payload_recv_capacity(&self) -> usize {
        self.with(|s| s.payload_recv_capacity())
    }

    /// The capacity of the transmit buffer, in bytes.
    pub fn payload_send_capacity(&self) -> usize {
        self.with(|s| s.payload_send_capacity())
    }

    /// The hop limit (IPv4 TTL) of sent packets; `None` means the default (64).
    pub fn hop_limit(&self) -> Option<u8> {
        self.with(|s| s.hop_limit())
    }

    /// Set the hop limit (IPv4 TTL) of sent packets; `None` (or `Some(0)`, which is not a valid
    /// hop limit) uses the default (64).
    pub fn set_hop_limit(&mut self, hop_limit: Option<u8>) {
        let hop_limit = hop_limit.filter(|&h| h != 0);
        self.stack.with_mut(|i| {
            i.sockets
                .get_mut::<icmp::Socket>(self.handle)
                .set_hop_limit(hop_limit)
        })
    }
}

/// The error for smoltcp's `Unaddressable` (an unspecified destination).
fn unaddressable(s: &icmp::Socket) -> SendError {
    if s.is_open() {
        SendError::NoRoute
    } else {
        SendError::SocketNotBound
    }
}

/// Checks done before queueing a packet, so that it is never queued only to be dropped, and
/// never waits for room it can never have.
fn check_send(
    i: &Inner,
    handle: SocketHandle,
    len: usize,
    dst: &IpAddress,
) -> Result<(), SendError> {
    let s = i.sockets.get::<icmp::Socket>(handle);
    if len > s.payload_send_capacity()
        || s.packet_send_capacity() == 0
        || len > i.link().max_ip_payload(dst)
    {
        return Err(SendError::PacketTooLarge);
    }
    if dst.is_unspecified() {
        return Err(unaddressable(s));
    }
    if !i.has_route(dst) {
        return Err(SendError::NoRoute);
    }
    Ok(())
}

impl Drop for IcmpSocket<'_> {
    fn drop(&mut self) {
        let handle = self.handle;
        self.stack.with_mut(|i| i.remove_socket(handle));
    }
}

pub mod ping {
    //! Ping: send ICMP echo requests and time the replies, with [`PingManager`].
    //!
    //! Same API as embassy-net 0.9's `icmp::ping`. Differences:
    //!
    //! - Replies are awaited on the socket's waker (embassy-net polls in a busy loop).
    //! - Each [`PingManager::ping`] call uses an ICMP identifier that no other ping running on
    //!   the same stack uses, and a reply counts only if its identifier, sequence number,
    //!   payload and source address match; anything else is ignored. So pings running at the
    //!   same time (same or different targets) never take each other's replies.
    //! - For an IPv6 target without `PingParams::set_source`, the source address is the one
    //!   the stack sends from (embassy-net fails with `PingError::InvalidSourceAddress`).
    //! - Errors are reported at once where waiting cannot help: no route
    //!   ([`SendError::NoRoute`]), a packet larger than the transmit buffer or the interface
    //!   sends ([`SendError::PacketTooLarge`]), a reply that cannot fit the receive buffer
    //!   ([`RecvError::Truncated`]), a full socket table ([`PingError::SocketTableFull`], a
    //!   variant embassy-net does not have: it panics).
    //!
    //! ```no_run
    //! # #[cfg(feature = "proto-ipv4")]
    //! # async fn demo(stack: ferronet::Stack<'_>) {
    //! use ferronet::Ipv4Address;
    //! use ferronet::icmp::PacketMetadata;
    //! use ferronet::icmp::ping::{PingManager, PingParams};
    //!
    //! let mut rx_meta = [PacketMetadata::EMPTY];
    //! let mut rx_buffer = [0; 256];
    //! let mut tx_meta = [PacketMetadata::EMPTY];
    //! let mut tx_buffer = [0; 256];
    //! let mut pinger =
    //!     PingManager::new(stack, &mut rx_meta, &mut rx_buffer, &mut tx_meta, &mut tx_buffer);
    //! let mut params = PingParams::new(Ipv4Address::new(192, 0, 2, 1));
    //! params.set_payload(b"hello").set_count(3);
    //! match pinger.ping(&params).await {
    //!     Ok(rtt) => { let _average_round_trip_ms = rtt.as_millis(); }
    //!     Err(e) => { let _ = e; }
    //! }
    //! # }
    //! ```

    use core::future::poll_fn;
    use core::net::IpAddr;
    #[cfg(feature = "proto-ipv6")]
    use core::net::Ipv6Addr;
    use core::task::Poll;

    use embassy_time::{Duration, Instant, Timer, with_timeout};
    use smoltcp::socket::icmp;
    use smoltcp::wire::IpAddress;
    #[cfg(feature = "proto-ipv4")]
    use smoltcp::wire::IpCidr;
    #[cfg(feature = "proto-ipv6")]
    use smoltcp::wire::Ipv6Address;

    use super::{
        BindError, ChecksumCapabilities, IcmpEndpoint, IcmpSocket, PacketMetadata, RecvError,
        SendError, check_send,
    };
    #[cfg(feature = "proto-ipv4")]
    use super::{Icmpv4Message, Icmpv4Packet, Icmpv4Repr};
    #[cfg(feature = "proto-ipv6")]
    use super::{Icmpv6Message, Icmpv6Packet, Icmpv6Repr};
    use crate::stack::{Inner, SocketTableFull, Stack, to_ip_address};

    /// Length of the ICMP echo header (type, code, checksum, identifier, sequence number).
    const ECHO_HEADER_LEN: usize = 8;

    /// Error returned by [`PingManager::ping`].
    #[derive(PartialEq, Eq, Clone, Copy, Debug)]
    #[cfg_attr(feature = "defmt", derive(defmt::Format))]
    pub enum PingError {
        /// No matching echo reply arrived within the timeout
        /// ([`PingParams::set_timeout`]) after a request was sent.
        DestinationHostUnreachable,
        /// No target was given, or it is the unspecified address (or an address of an IP
        /// version whose feature is not enabled).
        InvalidTargetAddress,
        /// The target is IPv6 and there is no source address: none given and the stack has no
        /// IPv6 address.
        #[cfg(feature = "proto-ipv6")]
        InvalidSourceAddress,
        /// The echo request could not be queued within the timeout (the socket's transmit
        /// buffer stayed full).
        SocketSendTimeout,
        /// Binding the socket failed.
        SocketBindError(BindError),
        /// Sending failed: no route to the target, or the request (8 bytes + payload) is larger
        /// than the transmit buffer or than the interface sends
        /// ([`SendError::PacketTooLarge`]; see [Packet size](super#packet-size)).
        SocketSendError(SendError),
        /// Receiving failed: [`RecvError::Truncated`] means that a reply (8 bytes + payload)
        /// cannot fit the receive buffer.
        SocketRecvError(RecvError),
        /// The stack's socket table has no free slot for the ping's socket (ferronet only;
        /// embassy-net panics).
        SocketTableFull(SocketTableFull),
    }

    impl core::fmt::Display for PingError {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self {
                Self::DestinationHostUnreachable => f.write_str("no echo reply before the timeout"),
                Self::InvalidTargetAddress => f.write_str("invalid or missing ping target"),
                #[cfg(feature = "proto-ipv6")]
                Self::InvalidSourceAddress => f.write_str("no IPv6 source address to ping from"),
                Self::SocketSendTimeout => {
                    f.write_str("echo request not queued before the timeout")
                }
                Self::SocketBindError(e) => write!(f, "ping socket: {e}"),
                Self::SocketSendError(e) => write!(f, "ping send: {e}"),
                Self::SocketRecvError(e) => write!(f, "ping receive: {e}"),
                Self::SocketTableFull(e) => write!(f, "ping socket: {e}"),
            }
        }
    }
    impl core::error::Error for PingError {}

    /// Sends ICMP echo requests and times the replies.
    ///
    /// It holds the buffers of the ICMP socket that each [`ping`](Self::ping) call creates
    /// (and drops when it returns), so it takes a socket slot only while a ping runs.
    pub struct PingManager<'d> {
        stack: Stack<'d>,
        rx_meta: &'d mut [PacketMetadata],
        rx_buffer: &'d mut [u8],
        tx_meta: &'d mut [PacketMetadata],
        tx_buffer: &'d mut [u8],
        /// Bumped by every ping call; part of the ICMP identifier.
        generation: u16,
    }

    impl<'d> PingManager<'d> {
        /// Create a ping manager with the buffers of its ICMP socket. The receive buffer must
        /// hold a reply (8 bytes + payload), and so must the transmit buffer.
        ///
        /// This does not create the socket yet, so it takes no socket slot.
        pub fn new(
            stack: Stack<'d>,
            rx_meta: &'d mut [PacketMetadata],
            rx_buffer: &'d mut [u8],
            tx_meta: &'d mut [PacketMetadata],
            tx_buffer: &'d mut [u8],
        ) -> Self {
            Self {
                stack,
                rx_meta,
                rx_buffer,
                tx_meta,
                tx_buffer,
                generation: 0,
            }
        }

        /// Ping the target of `params` [`count`](PingParams::set_count) times and return the
        /// average round-trip time.
        ///
        /// Requests carry sequence numbers 0, 1, ...; each one waits up to the
        /// [`timeout`](PingParams::set_timeout) for its reply, and each round (request, reply,
        /// pause) takes at least the [`rate_limit`](PingParams::set_rate_limit), the last one
        /// included. The first request without a reply ends the ping with
        /// [`PingError::DestinationHostUnreachable`].
        pub async fn ping<'a>(&mut self, params: &PingParams<'a>) -> Result<Duration, PingError> {
            let target = match params.target {
                Some(t) if !t.is_unspecified() => t,
                _ => return Err(PingError::InvalidTargetAddress),
            };
            let echo = Echo {
                target,
                #[cfg(feature = "proto-ipv6")]
                source: match target {
                    IpAddress::Ipv6(dst) => source_v6(self.stack, params, &dst)?,
                    #[allow(unreachable_patterns)]
                    _ => Ipv6Address::UNSPECIFIED,
                },
                payload: params.payload,
            };
            self.generation = self.generation.wrapping_add(1);
            let generation = self.generation;
            let stack = self.stack;
            let mut socket = IcmpSocket::try_new(
                stack,
                &mut *self.rx_meta,
                &mut *self.rx_buffer,
                &mut *self.tx_meta,
                &mut *self.tx_buffer,
            )
            .map_err(PingError::SocketTableFull)?;
            socket.set_hop_limit(params.hop_limit);
            let ident = stack.with(|i| {
                ping_ident(
                    i.slots.len(),
                    crate::stack::slot_of(socket.handle),
                    generation,
                )
            });
            socket
                .bind(IcmpEndpoint::Ident(ident))
                .map_err(PingError::SocketBindError)?;
            let len = echo.len();
            if socket.payload_recv_capacity() < len || socket.packet_recv_capacity() == 0 {
                return Err(PingError::SocketRecvError(RecvError::Truncated));
            }
            let any_source = stack.with(|i| replies_from_any(i, &target));

            let mut total = Duration::from_ticks(0);
            let mut timed: u32 = 0;
            for seq_no in 0..params.count.max(1) {
                let round_start = Instant::now();
                let sent_at =
                    match with_timeout(params.timeout, send_echo(&socket, &echo, ident, seq_no))
                        .await
                    {
                        Ok(sent) => sent.map_err(PingError::SocketSendError)?,
                        Err(_) => return Err(PingError::SocketSendTimeout),
                    };
                let reply = recv_echo(&socket, &echo, any_source, ident, seq_no);
                let received_at = match with_timeout(params.timeout, reply).await {
                    Ok(at) => at,
                    Err(_) => return Err(PingError::DestinationHostUnreachable),
                };
                let rtt = received_at
                    .checked_duration_since(sent_at)
                    .unwrap_or(Duration::from_ticks(0));
                if let Some(t) = total.checked_add(rtt) {
                    total = t;
                    timed += 1;
                }
                let spent = Instant::now()
                    .checked_duration_since(round_start)
                    .unwrap_or(Duration::from_ticks(0));
                if let Some(rest) = params.rate_limit.checked_sub(spent)
                    && rest.as_ticks() > 0
                {
                    Timer::after(rest).await;
                }
            }
            Ok(total.checked_div(timed).unwrap_or(total))
        }
    }

    /// The ICMP identifier of a ping: the socket's slot number in the low bits (unique among
    /// the stack's live sockets, so among concurrent pings), the manager's ping counter in the
    /// high bits (so that a late reply to an earlier ping of the same manager is not taken).
    fn ping_ident(slots: usize, slot: usize, generation: u16) -> u16 {
        let bits = usize::BITS - slots.saturating_sub(1).leading_zeros();
        if bits >= 16 {
            slot as u16
        } else {
            generation.wrapping_shl(bits) | slot as u16
        }
    }

    /// Whether replies may come from another address than the target (broadcast and
    /// multicast pings).
    #[cfg_attr(not(feature = "proto-ipv4"), allow(unused_variables))]
    fn replies_from_any(i: &Inner, target: &IpAddress) -> bool {
        if target.is_multicast() || target.is_broadcast() {
            return true;
        }
        match target {
            #[cfg(feature = "proto-ipv4")]
            IpAddress::Ipv4(t) => i.iface.ip_addrs().iter().any(|c| match c {
                IpCidr::Ipv4(c) => c.broadcast() == Some(*t),
                #[allow(unreachable_patterns)]
                _ => false,
            }),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The source address of an IPv6 ping: the one given, else the stack's.
    #[cfg(feature = "proto-ipv6")]
    fn source_v6(
        stack: Stack<'_>,
        params: &PingParams<'_>,
        dst: &Ipv6Address,
    ) -> Result<Ipv6Address, PingError> {
        if let Some(src) = params.source.filter(|s| !s.is_unspecified()) {
            return Ok(src);
        }
        let src = stack.with(|i| i.iface.get_source_address_ipv6(dst));
        if src.is_unspecified() || (src.is_loopback() && !dst.is_loopback()) {
            Err(PingError::InvalidSourceAddress)
        } else {
            Ok(src)
        }
    }

    /// What a ping sends and expects back.
    struct Echo<'p> {
        target: IpAddress,
        /// The source address for the ICMPv6 checksum (IPv6 targets only).
        #[cfg(feature = "proto-ipv6")]
        source: Ipv6Address,
        payload: &'p [u8],
    }

    impl Echo<'_> {
        /// Length of a request (and of its reply).
        fn len(&self) -> usize {
            ECHO_HEADER_LEN + self.payload.len()
        }

        /// Write the echo request into `buf`, which is [`len`](Self::len) bytes long.
        fn emit_request(&self, buf: &mut [u8], ident: u16, seq_no: u16) {
            let caps = ChecksumCapabilities::default();
            match self.target {
                #[cfg(feature = "proto-ipv4")]
                IpAddress::Ipv4(_) => Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no,
                    data: self.payload,
                }
                .emit(&mut Icmpv4Packet::new_unchecked(buf), &caps),
                #[cfg(feature = "proto-ipv6")]
                IpAddress::Ipv6(dst) => Icmpv6Repr::EchoRequest {
                    ident,
                    seq_no,
                    data: self.payload,
                }
                .emit(
                    &self.source,
                    &dst,
                    &mut Icmpv6Packet::new_unchecked(buf),
                    &caps,
                ),
            }
        }

        /// Whether `packet`, received from `from`, is the reply to request `seq_no`.
        fn is_reply(
            &self,
            packet: &[u8],
            from: IpAddress,
            any_source: bool,
            ident: u16,
            seq_no: u16,
        ) -> bool {
            if from.version() != self.target.version() || (!any_source && from != self.target) {
                return false;
            }
            match from {
                #[cfg(feature = "proto-ipv4")]
                IpAddress::Ipv4(_) => match Icmpv4Packet::new_checked(packet) {
                    Ok(p) => {
                        p.msg_type() == Icmpv4Message::EchoReply
                            && p.msg_code() == 0
                            && p.echo_ident() == ident
                            && p.echo_seq_no() == seq_no
                            && p.data() == self.payload
                    }
                    Err(_) => false,
                },
                #[cfg(feature = "proto-ipv6")]
                IpAddress::Ipv6(_) => match Icmpv6Packet::new_checked(packet) {
                    Ok(p) => {
                        p.msg_type() == Icmpv6Message::EchoReply
                            && p.msg_code() == 0
                            && p.echo_ident() == ident
                            && p.echo_seq_no() == seq_no
                            && p.payload() == self.payload
                    }
                    Err(_) => false,
                },
            }
        }
    }

    /// Queue echo request `seq_no`, waiting for room; returns when it was queued.
    async fn send_echo(
        socket: &IcmpSocket<'_>,
        echo: &Echo<'_>,
        ident: u16,
        seq_no: u16,
    ) -> Result<Instant, SendError> {
        let len = echo.len();
        poll_fn(|cx| {
            socket.stack.with_mut(|i| {
                if let Err(e) = check_send(i, socket.handle, len, &echo.target) {
                    return Poll::Ready(Err(e));
                }
                let s = i.sockets.get_mut::<icmp::Socket>(socket.handle);
                match s.send(len, echo.target) {
                    Ok(buf) => echo.emit_request(buf, ident, seq_no),
                    Err(icmp::SendError::BufferFull) => {
                        s.register_send_waker(cx.waker());
                        return Poll::Pending;
                    }
                    Err(icmp::SendError::Unaddressable) => {
                        return Poll::Ready(Err(SendError::NoRoute));
                    }
                }
                i.wake_runner();
                Poll::Ready(Ok(Instant::now()))
            })
        })
        .await
    }

    /// Wait for the reply to echo request `seq_no`, dropping every other packet the socket
    /// receives meanwhile; returns when it arrived.
    async fn recv_echo(
        socket: &IcmpSocket<'_>,
        echo: &Echo<'_>,
        any_source: bool,
        ident: u16,
        seq_no: u16,
    ) -> Instant {
        poll_fn(|cx| {
            socket.stack.with_mut(|i| {
                let s = i.sockets.get_mut::<icmp::Socket>(socket.handle);
                loop {
                    match s.recv() {
                        Ok((packet, from)) => {
                            if echo.is_reply(packet, from, any_source, ident, seq_no) {
                                return Poll::Ready(Instant::now());
                            }
                        }
                        Err(_) => {
                            s.register_recv_waker(cx.waker());
                            return Poll::Pending;
                        }
                    }
                }
            })
        })
        .await
    }

    /// Parameters of a [`PingManager::ping`].
    ///
    /// Defaults: no target, payload `b"embassy-net"`, default hop limit, count 4, timeout 4 s,
    /// rate limit 1 s.
    #[derive(Clone, Debug)]
    #[cfg_attr(feature = "defmt", derive(defmt::Format))]
    pub struct PingParams<'a> {
        target: Option<IpAddress>,
        #[cfg(feature = "proto-ipv6")]
        source: Option<Ipv6Address>,
        payload: &'a [u8],
        hop_limit: Option<u8>,
        count: u16,
        timeout: Duration,
        rate_limit: Duration,
    }

    impl Default for PingParams<'_> {
        fn default() -> Self {
            Self {
                target: None,
                #[cfg(feature = "proto-ipv6")]
                source: None,
                payload: b"embassy-net",
                hop_limit: None,
                count: 4,
                timeout: Duration::from_secs(4),
                rate_limit: Duration::from_secs(1),
            }
        }
    }

    impl<'a> PingParams<'a> {
        /// Parameters for pinging `target`, the others at their defaults.
        ///
        /// An address of an IP version whose feature is not enabled is taken as no target
        /// ([`PingError::InvalidTargetAddress`]; embassy-net panics).
        pub fn new<T: Into<IpAddr>>(target: T) -> Self {
            Self {
                target: to_ip_address(target.into()),
                ..Self::default()
            }
        }

        /// Set the target address.
        pub fn set_target<T: Into<IpAddr>>(&mut self, target: T) -> &mut Self {
            self.target = to_ip_address(target.into());
            self
        }

        /// The target address.
        pub fn target(&self) -> Option<IpAddr> {
            self.target.map(IpAddr::from)
        }

        /// Set the source address of IPv6 pings (used for the ICMPv6 checksum). Without it, the
        /// address the stack sends from is used.
        #[cfg(feature = "proto-ipv6")]
        pub fn set_source<T: Into<Ipv6Address>>(&mut self, source: T) -> &mut Self {
            self.source = Some(source.into());
            self
        }

        /// The source address of IPv6 pings, if set.
        #[cfg(feature = "proto-ipv6")]
        pub fn source(&self) -> Option<Ipv6Addr> {
            self.source
        }

        /// Set the payload of the echo requests.
        pub fn set_payload(&mut self, payload: &'a [u8]) -> &mut Self {
            self.payload = payload;
            self
        }

        /// The payload of the echo requests.
        pub fn payload(&self) -> &'a [u8] {
            self.payload
        }

        /// Set the hop limit (IPv4 TTL) of the echo requests; `None` or `Some(0)` means the
        /// default (64).
        pub fn set_hop_limit(&mut self, hop_limit: Option<u8>) -> &mut Self {
            self.hop_limit = hop_limit.filter(|&h| h != 0);
            self
        }

        /// The hop limit of the echo requests (`None`: the default).
        pub fn hop_limit(&self) -> Option<u8> {
            self.hop_limit
        }

        /// Set how many echo requests one [`ping`](PingManager::ping) sends; 0 is taken as 1.
        pub fn set_count(&mut self, count: u16) -> &mut Self {
            self.count = count.max(1);
            self
        }

        /// How many echo requests one [`ping`](PingManager::ping) sends.
        pub fn count(&self) -> u16 {
            self.count
        }

        /// Set how long to wait for each reply before giving up with
        /// [`PingError::DestinationHostUnreachable`].
        pub fn set_timeout(&mut self, timeout: Duration) -> &mut Self {
            self.timeout = timeout;
            self
        }

        /// How long to wait for each reply.
        pub fn timeout(&self) -> Duration {
            self.timeout
        }

        /// Set the shortest time per echo request: each round lasts at least this long.
        pub fn set_rate_limit(&mut self, rate_limit: Duration) -> &mut Self {
            self.rate_limit = rate_limit;
            self
        }

        /// The shortest time per echo request.
        pub fn rate_limit(&self) -> Duration {
            self.rate_limit
        }
    }
}
