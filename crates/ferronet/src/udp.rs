//! UDP sockets.
//!
//! Same API as embassy-net 0.9's `udp` module. Differences that make it stricter:
//!
//! - [`SendError::NoRoute`] is returned at once when the stack has no address or route for the
//!   destination (embassy-net queues the datagram, which smoltcp then drops silently).
//! - [`UdpSocket::bind`] with port 0 picks an ephemeral port (49152..=65535) that no other
//!   socket uses.
//! - [`SendError::PacketTooLarge`] is returned at once for a datagram the interface cannot
//!   send (embassy-net queues it, and smoltcp drops it silently); see below.
//!
//! # Datagram size
//!
//! A datagram is sent in one IP packet, which must fit the interface's MTU (the driver's
//! `max_transmission_unit`, less the 14-byte Ethernet header on Ethernet): at most MTU - 28
//! bytes over IPv4 (1472 on Ethernet) and MTU - 48 over IPv6 (1452). With the cargo feature
//! `proto-ipv4-fragmentation`, IPv4 datagrams of up to `FRAGMENTATION_BUFFER_SIZE` - 28
//! bytes (smoltcp's buffer, 4096 bytes unless changed: 4068 bytes) are sent in fragments,
//! and fragmented datagrams are reassembled on receipt (up to `REASSEMBLY_BUFFER_SIZE` - 8
//! bytes, one datagram at a time). IPv6 is never fragmented (smoltcp 0.14 has no IPv6
//! fragmentation); on IEEE 802.15.4 (6LoWPAN) a datagram must fit one 127-byte frame once
//! compressed, and ferronet rejects only those that can never fit (more than 111 bytes): a
//! smaller one whose headers do not compress well is still dropped by smoltcp.
//!
//! A larger datagram fails with [`SendError::PacketTooLarge`] at the call. For
//! [`UdpSocket::send_to_with`] the check is made on `max_size`. Received fragments of a
//! datagram are dropped when the feature is off.
//!
//! ```no_run
//! # async fn demo(stack: ferronet::Stack<'_>) {
//! use ferronet::udp::{PacketMetadata, UdpSocket};
//! use ferronet::{IpEndpoint, Ipv4Address};
//!
//! let mut rx_meta = [PacketMetadata::EMPTY; 4];
//! let mut rx_buf = [0u8; 1024];
//! let mut tx_meta = [PacketMetadata::EMPTY; 4];
//! let mut tx_buf = [0u8; 1024];
//! let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx_buf, &mut tx_meta, &mut tx_buf);
//! socket.bind(0).unwrap();
//! let peer = IpEndpoint::new(Ipv4Address::new(192, 0, 2, 1).into(), 7);
//! socket.send_to(b"ping", peer).await.unwrap();
//! let mut buf = [0u8; 64];
//! let (n, meta) = socket.recv_from(&mut buf).await.unwrap();
//! # let _ = (n, meta);
//! # }
//! ```

use core::future::{Future, poll_fn};
use core::task::{Context, Poll};

use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
pub use smoltcp::socket::udp::{PacketMetadata, UdpMetadata};
use smoltcp::wire::IpListenEndpoint;

use crate::TryError;
use crate::stack::{Inner, SocketTableFull, Stack, erase_lifetime};

// embedded-nal-async UDP (`UdpStack`), which embassy-net lacks.
pub mod nal;

/// Error returned by [`UdpSocket::bind`].
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BindError {
    /// The socket was already open.
    InvalidState,
    /// No route to host (no free ephemeral port, or the endpoint is not usable).
    NoRoute,
}

/// Error returned by [`UdpSocket::send_to`] and friends.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SendError {
    /// No route to host: no address to send from, no route to the destination, or the
    /// destination is unspecified (address or port zero).
    NoRoute,
    /// Socket not bound to an outgoing port.
    SocketNotBound,
    /// The datagram can never be sent: it is larger than the transmit buffer, or larger than
    /// the largest datagram the interface sends to the destination (see the
    /// [module documentation](self#datagram-size)).
    PacketTooLarge,
}

/// Error returned by [`UdpSocket::recv_from`].
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecvError {
    /// The buffer was smaller than the datagram; the datagram was dropped.
    Truncated,
}

impl core::fmt::Display for BindError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::InvalidState => "socket already bound",
            Self::NoRoute => "cannot bind: no free port or unusable endpoint",
        })
    }
}
impl core::error::Error for BindError {}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NoRoute => "no route to host",
            Self::SocketNotBound => "socket not bound",
            Self::PacketTooLarge => "datagram larger than the transmit buffer or the link allows",
        })
    }
}
impl core::error::Error for SendError {}

impl core::fmt::Display for RecvError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Truncated => "datagram larger than the receive buffer (dropped)",
        })
    }
}
impl core::error::Error for RecvError {}

/// A UDP socket.
pub struct UdpSocket<'a> {
    stack: Stack<'a>,
    handle: SocketHandle,
}

fn _assert_covariant<'a, 'b: 'a>(x: UdpSocket<'b>) -> UdpSocket<'a> {
    x
}

impl<'a> UdpSocket<'a> {
    /// Create a UDP socket with the given metadata and payload buffers (one metadata entry per
    /// datagram that can be queued).
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
            Err(e) => panic!("UdpSocket::new: {}", e),
        }
    }

    /// Create a UDP socket, or return [`SocketTableFull`] when every slot of the stack's
    /// [`StackResources`](crate::StackResources) is taken.
    pub fn try_new(
        stack: Stack<'a>,
        rx_meta: &'a mut [PacketMetadata],
        rx_buffer: &'a mut [u8],
        tx_meta: &'a mut [PacketMetadata],
        tx_buffer: &'a mut [u8],
    ) -> Result<Self, SocketTableFull> {
        // SAFETY: the buffers are borrowed for 'a and the socket holding them is removed from
        // the socket set when this `UdpSocket<'a>` is dropped, so they are never used after
        // 'a; the lifetime is erased only because the set cannot name 'a.
        let (rx_meta, rx_buffer, tx_meta, tx_buffer) = unsafe {
            (
                erase_lifetime(rx_meta),
                erase_lifetime(rx_buffer),
                erase_lifetime(tx_meta),
                erase_lifetime(tx_buffer),
            )
        };
        let socket = udp::Socket::new(
            udp::PacketBuffer::new(rx_meta, rx_buffer),
            udp::PacketBuffer::new(tx_meta, tx_buffer),
        );
        let handle = stack.with_mut(|i| i.add_socket(socket))?;
        Ok(Self { stack, handle })
    }

    /// Bind the socket to a local endpoint. Port 0 picks a free ephemeral port.
    pub fn bind<T>(&mut self, endpoint: T) -> Result<(), BindError>
    where
        T: Into<IpListenEndpoint>,
    {
        let mut endpoint = endpoint.into();
        self.stack.with_mut(|i| {
            if i.sockets.get::<udp::Socket>(self.handle).is_open() {
                return Err(BindError::InvalidState);
            }
            if endpoint.port == 0 {
                endpoint.port = i.alloc_local_port().ok_or(BindError::NoRoute)?;
            }
            match i.sockets.get_mut::<udp::Socket>(self.handle).bind(endpoint) {
                Ok(()) => Ok(()),
                Err(udp::BindError::InvalidState) => Err(BindError::InvalidState),
                Err(udp::BindError::Unaddressable) => Err(BindError::NoRoute),
            }
        })
    }

    fn with<R>(&self, f: impl FnOnce(&udp::Socket) -> R) -> R {
        self.stack
            .with(|i| f(i.sockets.get::<udp::Socket>(self.handle)))
    }

    /// Wait until a datagram can be read.
    pub fn wait_recv_ready(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| self.poll_recv_ready(cx))
    }

    /// Poll whether a datagram can be read; registers the waker when none can.
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.stack.with_mut(|i| {
            let s = i.sockets.get_mut::<udp::Socket>(self.handle);
            if s.can_recv() {
                Poll::Ready(())
            } else {
                s.register_recv_waker(cx.waker());
                Poll::Pending
            }
        })
    }

    /// Receive a datagram: waits for one, copies it into `buf` and returns its length and
    /// metadata (source endpoint, destination address).
    ///
    /// A datagram larger than `buf` is dropped and [`RecvError::Truncated`] returned.
    pub fn recv_from<'s>(
        &'s self,
        buf: &'s mut [u8],
    ) -> impl Future<Output = Result<(usize, UdpMetadata), RecvError>> + 's {
        poll_fn(move |cx| self.poll_recv_from(buf, cx))
    }

    /// Poll for a datagram, like [`recv_from`](Self::recv_from).
    pub fn poll_recv_from(
        &self,
        buf: &mut [u8],
        cx: &mut Context<'_>,
    ) -> Poll<Result<(usize, UdpMetadata), RecvError>> {
        self.stack
            .with_mut(|i| match recv_step(i, self.handle, buf) {
                Ok(r) => Poll::Ready(Ok(r)),
                Err(TryError::Other(e)) => Poll::Ready(Err(e)),
                Err(TryError::WouldBlock) => {
                    let s = i.sockets.get_mut::<udp::Socket>(self.handle);
                    s.register_recv_waker(cx.waker());
                    Poll::Pending
                }
            })
    }

    /// Receive a datagram without waiting: like [`recv_from`](Self::recv_from), but
    /// `Err(TryError::WouldBlock)` when none is queued.
    ///
    /// ```no_run
    /// # fn demo(socket: &ferronet::udp::UdpSocket<'_>) {
    /// use ferronet::TryError;
    ///
    /// let mut buf = [0u8; 512];
    /// loop {
    ///     match socket.try_recv_from(&mut buf) {
    ///         Ok((n, meta)) => { /* datagram buf[..n] from meta.endpoint */ let _ = (n, meta); }
    ///         Err(TryError::WouldBlock) => break, // queue drained
    ///         Err(TryError::Other(e)) => { /* too large for buf: dropped */ let _ = e; }
    ///     }
    /// }
    /// # }
    /// ```
    pub fn try_recv_from(
        &self,
        buf: &mut [u8],
    ) -> Result<(usize, UdpMetadata), TryError<RecvError>> {
        self.stack.with_mut(|i| recv_step(i, self.handle, buf))
    }

    /// Receive a datagram without copying: waits for one and calls `f` with its payload and
    /// metadata.
    pub async fn recv_from_with<F, R>(&mut self, f: F) -> R
    where
        F: FnOnce(&[u8], UdpMetadata) -> R,
    {
        let mut f = Some(f);
        poll_fn(move |cx| {
            self.stack.with_mut(|i| {
                let s = i.sockets.get_mut::<udp::Socket>(self.handle);
                match s.recv() {
                    Ok((data, meta)) => match f.take() {
                        Some(f) => Poll::Ready(f(data, meta)),
                        None => Poll::Pending,
                    },
                    Err(_) => {
                        s.register_recv_waker(cx.waker());
                        Poll::Pending
                    }
                }
            })
        })
        .await
    }

    /// Wait until a datagram can be queued for sending.
    pub fn wait_send_ready(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| self.poll_send_ready(cx))
    }

    /// Poll whether a datagram can be queued; registers the waker when none can.
    pub fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.stack.with_mut(|i| {
            let s = i.sockets.get_mut::<udp::Socket>(self.handle);
            if s.can_send() {
                Poll::Ready(())
            } else {
                s.register_send_waker(cx.waker());
                Poll::Pending
            }
        })
    }

    /// Send a datagram to `remote_endpoint`, waiting for room in the transmit buffer.
    ///
    /// Fails with [`SendError::PacketTooLarge`] when the datagram can never fit the transmit
    /// buffer or the interface's MTU (see [Datagram size](self#datagram-size)),
    /// [`SendError::SocketNotBound`] before [`bind`](Self::bind), and
    /// [`SendError::NoRoute`] when there is no route to the destination.
    pub async fn send_to<T>(&self, buf: &[u8], remote_endpoint: T) -> Result<(), SendError>
    where
        T: Into<UdpMetadata>,
    {
        let remote_endpoint: UdpMetadata = remote_endpoint.into();
        poll_fn(move |cx| self.poll_send_to(buf, remote_endpoint, cx)).await
    }

    /// Poll to send a datagram, like [`send_to`](Self::send_to).
    pub fn poll_send_to<T>(
        &self,
        buf: &[u8],
        remote_endpoint: T,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError>>
    where
        T: Into<UdpMetadata>,
    {
        let meta: UdpMetadata = remote_endpoint.into();
        self.stack
            .with_mut(|i| send_poll(i, self.handle, cx, |i, h| send_step(i, h, buf, &meta)))
    }

    /// Send a datagram without waiting: like [`send_to`](Self::send_to), but
    /// `Err(TryError::WouldBlock)` when the transmit buffer has no room for it now. The
    /// checks that fail `send_to` at once fail this too, in `TryError::Other`.
    ///
    /// ```no_run
    /// # fn demo(socket: &ferronet::udp::UdpSocket<'_>) {
    /// use ferronet::{IpEndpoint, Ipv4Address, TryError};
    ///
    /// let peer = IpEndpoint::new(Ipv4Address::new(192, 0, 2, 1).into(), 9000);
    /// match socket.try_send_to(b"sample 42", peer) {
    ///     Ok(()) => {}
    ///     Err(TryError::WouldBlock) => { /* full: drop this sample */ }
    ///     Err(TryError::Other(e)) => { /* no route, too large, not bound */ let _ = e; }
    /// }
    /// # }
    /// ```
    pub fn try_send_to<T>(&self, buf: &[u8], remote_endpoint: T) -> Result<(), TryError<SendError>>
    where
        T: Into<UdpMetadata>,
    {
        let meta: UdpMetadata = remote_endpoint.into();
        self.stack
            .with_mut(|i| send_step(i, self.handle, buf, &meta))
    }

    /// Send a datagram of at most `max_size` bytes written in place by `f`, which returns the
    /// actual size and a value. Waits for room in the transmit buffer.
    ///
    /// Fails like [`send_to`](Self::send_to), `max_size` taking the place of the length.
    pub async fn send_to_with<T, F, R>(
        &mut self,
        max_size: usize,
        remote_endpoint: T,
        f: F,
    ) -> Result<R, SendError>
    where
        T: Into<UdpMetadata> + Copy,
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        let meta: UdpMetadata = remote_endpoint.into();
        let mut f = Some(f);
        poll_fn(move |cx| {
            self.stack.with_mut(|i| {
                send_poll(i, self.handle, cx, |i, h| {
                    send_with_step(i, h, max_size, &meta, &mut f)
                })
            })
        })
        .await
    }

    /// Send a datagram of exactly `size` bytes written in place by `f`, without waiting:
    /// `Err(TryError::WouldBlock)` (and `f` not called) when the transmit buffer has no room
    /// for it now. Errors as for [`send_to_with`](Self::send_to_with). The shape is embassy-net
    /// main's (`f` returns only its value; the datagram has `size` bytes).
    ///
    /// ```no_run
    /// # fn demo(socket: &mut ferronet::udp::UdpSocket<'_>) {
    /// use ferronet::{IpEndpoint, Ipv4Address};
    ///
    /// let peer = IpEndpoint::new(Ipv4Address::new(192, 0, 2, 1).into(), 9000);
    /// let reading: u32 = 1234;
    /// let _ = socket.try_send_to_with(4, peer, |buf| buf.copy_from_slice(&reading.to_be_bytes()));
    /// # }
    /// ```
    pub fn try_send_to_with<T, F, R>(
        &mut self,
        size: usize,
        remote_endpoint: T,
        f: F,
    ) -> Result<R, TryError<SendError>>
    where
        T: Into<UdpMetadata>,
        F: FnOnce(&mut [u8]) -> R,
    {
        let meta: UdpMetadata = remote_endpoint.into();
        let mut f = Some(move |buf: &mut [u8]| (size, f(buf)));
        self.stack
            .with_mut(|i| send_with_step(i, self.handle, size, &meta, &mut f))
    }

    /// Wait until every queued datagram has been handed to the driver.
    pub fn flush(&mut self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            self.stack.with_mut(|i| {
                let s = i.sockets.get_mut::<udp::Socket>(self.handle);
                if s.send_queue() == 0 {
                    Poll::Ready(())
                } else {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
            })
        })
    }

    /// The local endpoint of the socket (port 0 if not bound).
    pub fn endpoint(&self) -> IpListenEndpoint {
        self.with(|s| s.endpoint())
    }

    /// Whether the socket is bound.
    pub fn is_open(&self) -> bool {
        self.with(|s| s.is_open())
    }

    /// Unbind the socket, dropping queued datagrams.
    pub fn close(&mut self) {
        self.stack.with_mut(|i| {
            i.sockets.get_mut::<udp::Socket>(self.handle).close();
            i.wake_runner();
        })
    }

    /// Whether a datagram can be queued for sending (the transmit buffer has room).
    pub fn may_send(&self) -> bool {
        self.with(|s| s.can_send())
    }

    /// Whether a received datagram is waiting.
    pub fn may_recv(&self) -> bool {
        self.with(|s| s.can_recv())
    }

    /// How many datagrams the receive buffer can hold.
    pub fn packet_recv_capacity(&self) -> usize {
        self.with(|s| s.packet_recv_capacity())
    }

    /// How many datagrams the transmit buffer can hold.
    pub fn packet_send_capacity(&self) -> usize {
        self.with(|s| s.packet_send_capacity())
    }

    /// The payload capacity of the receive buffer, in bytes.
    pub fn payload_recv_capacity(&self) -> usize {
        self.with(|s| s.payload_recv_capacity())
    }

    /// The payload capacity of the transmit buffer, in bytes.
    pub fn payload_send_capacity(&self) -> usize {
        self.with(|s| s.payload_send_capacity())
    }

    /// Set the hop limit (IPv4 TTL) of sent packets; `None` uses the default (64).
    pub fn set_hop_limit(&mut self, hop_limit: Option<u8>) {
        let hop_limit = hop_limit.filter(|&h| h != 0);
        self.stack.with_mut(|i| {
            i.sockets
                .get_mut::<udp::Socket>(self.handle)
                .set_hop_limit(hop_limit)
        })
    }
}

/// One non-blocking receive into `buf`.
fn recv_step(
    i: &mut Inner,
    handle: SocketHandle,
    buf: &mut [u8],
) -> Result<(usize, UdpMetadata), TryError<RecvError>> {
    let s = i.sockets.get_mut::<udp::Socket>(handle);
    match s.recv() {
        Ok((data, meta)) => {
            if data.len() > buf.len() {
                Err(TryError::Other(RecvError::Truncated))
            } else {
                buf[..data.len()].copy_from_slice(data);
                Ok((data.len(), meta))
            }
        }
        Err(udp::RecvError::Exhausted) | Err(udp::RecvError::Truncated) => {
            Err(TryError::WouldBlock)
        }
    }
}

/// Run one non-blocking send `step`, turning `WouldBlock` into a wait for room.
fn send_poll<R>(
    i: &mut Inner,
    handle: SocketHandle,
    cx: &mut Context<'_>,
    step: impl FnOnce(&mut Inner, SocketHandle) -> Result<R, TryError<SendError>>,
) -> Poll<Result<R, SendError>> {
    match step(i, handle) {
        Ok(r) => Poll::Ready(Ok(r)),
        Err(TryError::Other(e)) => Poll::Ready(Err(e)),
        Err(TryError::WouldBlock) => {
            let s = i.sockets.get_mut::<udp::Socket>(handle);
            s.register_send_waker(cx.waker());
            Poll::Pending
        }
    }
}

/// The error for smoltcp's `Unaddressable`.
fn unaddressable(s: &udp::Socket) -> SendError {
    if s.endpoint().port == 0 {
        SendError::SocketNotBound
    } else {
        SendError::NoRoute
    }
}

/// One non-blocking send of `buf`.
fn send_step(
    i: &mut Inner,
    handle: SocketHandle,
    buf: &[u8],
    meta: &UdpMetadata,
) -> Result<(), TryError<SendError>> {
    check_send(i, handle, buf.len(), meta).map_err(TryError::Other)?;
    let s = i.sockets.get_mut::<udp::Socket>(handle);
    match s.send_slice(buf, *meta) {
        Ok(()) => {
            i.wake_runner();
            Ok(())
        }
        Err(udp::SendError::BufferFull) => Err(TryError::WouldBlock),
        Err(udp::SendError::Unaddressable) => Err(TryError::Other(unaddressable(s))),
    }
}

/// One non-blocking send of at most `max_size` bytes written by `f` (taken only when it
/// runs).
fn send_with_step<F, R>(
    i: &mut Inner,
    handle: SocketHandle,
    max_size: usize,
    meta: &UdpMetadata,
    f: &mut Option<F>,
) -> Result<R, TryError<SendError>>
where
    F: FnOnce(&mut [u8]) -> (usize, R),
{
    check_send(i, handle, max_size, meta).map_err(TryError::Other)?;
    let s = i.sockets.get_mut::<udp::Socket>(handle);
    let mut ret = None;
    let mut fill = |buf: &mut [u8]| match f.take() {
        Some(f) => {
            let (size, r) = f(buf);
            ret = Some(r);
            size.min(buf.len())
        }
        None => 0,
    };
    let mut res = s.send_with(max_size, *meta, &mut fill);
    if matches!(res, Err(udp::SendError::BufferFull)) && rewind_empty_tx_ring(s, max_size) {
        res = s.send_with(max_size, *meta, &mut fill);
    }
    match res {
        Ok(_) => {
            i.wake_runner();
            ret.ok_or(TryError::Other(SendError::PacketTooLarge))
        }
        Err(udp::SendError::BufferFull) => Err(TryError::WouldBlock),
        Err(udp::SendError::Unaddressable) => Err(TryError::Other(unaddressable(s))),
    }
}

/// Checks done before queueing a datagram, so that it is never queued only to be dropped.
fn check_send(
    i: &Inner,
    handle: SocketHandle,
    len: usize,
    meta: &UdpMetadata,
) -> Result<(), SendError> {
    let s = i.sockets.get::<udp::Socket>(handle);
    if s.endpoint().port == 0 {
        return Err(SendError::SocketNotBound);
    }
    let dst = meta.endpoint;
    if s.payload_send_capacity() < len
        || s.packet_send_capacity() == 0
        || len > i.link().max_udp_payload(&dst.addr)
    {
        return Err(SendError::PacketTooLarge);
    }
    if dst.port == 0 || dst.addr.is_unspecified() || !i.has_route(&dst.addr) {
        return Err(SendError::NoRoute);
    }
    Ok(())
}

impl Drop for UdpSocket<'_> {
    fn drop(&mut self) {
        let handle = self.handle;
        self.stack.with_mut(|i| i.remove_socket(handle));
    }
}

/// Work around smoltcp 0.14's `send_with`, which, unlike `send`, does not rewind an empty
/// transmit ring: after earlier datagrams the free space is split at the ring's end, and a
/// datagram larger than either part would wait forever although the buffer is empty.
///
/// Closing and rebinding the socket rewinds both rings, so it is done only when both are
/// empty (nothing is lost). If received datagrams are still queued, the send waits until the
/// application has read them and the socket is polled again.
///
/// Returns whether the ring was rewound.
fn rewind_empty_tx_ring(s: &mut udp::Socket<'_>, max_size: usize) -> bool {
    if s.send_queue() == 0
        && s.recv_queue() == 0
        && !s.can_recv()
        && max_size <= s.payload_send_capacity()
        && s.is_open()
    {
        let endpoint = s.endpoint();
        s.close();
        // Rebinding the endpoint it had cannot fail.
        s.bind(endpoint).is_ok()
    } else {
        false
    }
}
