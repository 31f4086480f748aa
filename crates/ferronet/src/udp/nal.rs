//! `embedded-nal-async` UDP: [`UdpStack`](embedded_nal_async::UdpStack) on ferronet.
//!
//! Not in embassy-net 0.9. It works like `tcp::client`: a [`UdpClientState`] holds the buffers of up to `N` sockets
//! and a [`UdpClient`] opens sockets with them. The client implements `UdpStack`:
//!
//! - [`connect_from`](embedded_nal_async::UdpStack::connect_from) (and `connect`) gives a
//!   [`ConnectedSocket`], which sends to one remote endpoint and only receives datagrams that
//!   come from it (the others are dropped).
//! - [`bind_single`](embedded_nal_async::UdpStack::bind_single) and
//!   [`bind_multiple`](embedded_nal_async::UdpStack::bind_multiple) give an
//!   [`UnconnectedSocket`], which sends to and receives from anyone.
//!
//! Addresses:
//!
//! - Local port 0 picks a free ephemeral port (49152..=65535). A port that another UDP socket
//!   of the stack already uses (on an overlapping address) is [`Error::AddrInUse`].
//! - An unspecified local address picks one of the stack's addresses: for `connect_from` the
//!   source address the stack would use toward the remote, for `bind_single` the stack's
//!   first address of that family (a global one before a link-local one). `bind_multiple`
//!   keeps it unspecified: the socket receives on every address, of both families, and each
//!   datagram reports the address it was sent to. A local address that is not one of the
//!   stack's is [`Error::AddrNotAvailable`] (multicast groups cannot be bound; bind the
//!   unspecified address and join the group with `Stack::join_multicast_group`).
//! - The local address returned by `connect_from` and `bind_single` is the one actually bound.
//! - A remote address, or a specified local address, of a family whose `proto-*` feature is
//!   disabled is [`Error::NoRoute`].
//!
//! Datagrams larger than the buffer given to `receive_into` are truncated, and their full
//! length is returned, as the trait asks. Dropping a socket returns its slot at once.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(stack: ferronet::Stack<'_>) -> Result<(), ferronet::udp::nal::Error> {
//! use embedded_nal_async::{ConnectedUdp, UdpStack, UnconnectedUdp};
//! use ferronet::udp::nal::{UdpClient, UdpClientState};
//!
//! let state: UdpClientState<2> = UdpClientState::new();
//! let client = UdpClient::new(stack, &state);
//!
//! let (local, mut socket) = client.connect("192.0.2.1:7".parse().unwrap()).await?;
//! socket.send(b"ping").await?;
//! let mut buf = [0u8; 64];
//! let n = socket.receive_into(&mut buf).await?;
//! # let _ = (local, n);
//!
//! let mut server = client.bind_multiple("0.0.0.0:5683".parse().unwrap()).await?;
//! let (n, local, remote) = server.receive_into(&mut buf).await?;
//! server.send(local, remote, &buf[..n.min(buf.len())]).await?;
//! # Ok(())
//! # }
//! ```

use core::cell::{Cell, UnsafeCell};
use core::net::{IpAddr, SocketAddr};

use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use super::{BindError, PacketMetadata, SendError, UdpMetadata, UdpSocket};
use crate::stack::{Inner, Stack, to_ip_address};

/// Errors of [`UdpClient`] and its sockets.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Every socket of the [`UdpClientState`] is in use.
    PoolExhausted,
    /// The stack's socket table is full (see [`SocketTableFull`](crate::SocketTableFull)).
    SocketTableFull,
    /// No route to the remote host: the stack has no address of its family or no route to it,
    /// the remote address or port is unspecified, or the family's `proto-*` feature is
    /// disabled.
    NoRoute,
    /// The local address is not an address of the stack.
    AddrNotAvailable,
    /// The local port is already used by another UDP socket (or no ephemeral port is free).
    AddrInUse,
    /// The local and remote addresses are of different families, or the local address given
    /// to [`UnconnectedSocket`]'s `send` does not match the socket's address or port.
    InvalidAddress,
    /// The datagram is larger than the socket's transmit buffer, or than the interface can
    /// send to the remote host (see [the UDP module](super#datagram-size)).
    PacketTooLarge,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::PoolExhausted => "all sockets of the UdpClientState are in use",
            Self::SocketTableFull => "socket table full: make StackResources larger",
            Self::NoRoute => "no route to host",
            Self::AddrNotAvailable => "local address is not an address of the stack",
            Self::AddrInUse => "local port already in use",
            Self::InvalidAddress => {
                "local address does not match the socket or the remote address family"
            }
            Self::PacketTooLarge => "datagram larger than the transmit buffer or the link allows",
        })
    }
}

impl core::error::Error for Error {}

impl embedded_io_async::Error for Error {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        use embedded_io_async::ErrorKind;
        match self {
            Self::PoolExhausted | Self::SocketTableFull => ErrorKind::OutOfMemory,
            Self::NoRoute | Self::AddrNotAvailable => ErrorKind::AddrNotAvailable,
            Self::AddrInUse => ErrorKind::AddrInUse,
            Self::InvalidAddress | Self::PacketTooLarge => ErrorKind::InvalidInput,
        }
    }
}

/// Buffers for the sockets of a [`UdpClient`]: `N` sockets, each with a `TX_SZ`-byte transmit
/// and an `RX_SZ`-byte receive buffer, and room for `META` queued datagrams per direction.
///
/// Used through a shared reference; it is `Send` but not `Sync` (it belongs to the executor
/// that runs the stack). Put it in a `static` with `static_cell`, or on the stack of a
/// long-running task.
pub struct UdpClientState<
    const N: usize,
    const TX_SZ: usize = 1536,
    const RX_SZ: usize = 1536,
    const META: usize = 4,
> {
    slots: [Slot<TX_SZ, RX_SZ, META>; N],
}

impl<const N: usize, const TX_SZ: usize, const RX_SZ: usize, const META: usize>
    UdpClientState<N, TX_SZ, RX_SZ, META>
{
    /// Create a state with `N` free slots.
    pub const fn new() -> Self {
        Self {
            slots: [const { Slot::new() }; N],
        }
    }
}

impl<const N: usize, const TX_SZ: usize, const RX_SZ: usize, const META: usize> Default
    for UdpClientState<N, TX_SZ, RX_SZ, META>
{
    fn default() -> Self {
        Self::new()
    }
}

/// One socket's buffers.
///
/// # Safety argument
///
/// The buffers are handed out as `&mut` only by [`Slot::buffers`], right after `used` went
/// from `false` to `true`; they then belong to exactly one [`UdpSocket`]. `used` goes back to
/// `false` only when the [`SlotGuard`] is dropped, which happens after that socket was dropped
/// (removed from the stack): the guard is declared after the socket in the socket types, so
/// it is dropped after it, and in [`UdpClient::open`] it is created before the socket, so a
/// failure drops the socket (if any) first. `Cell` and `UnsafeCell` make the type `!Sync`, so
/// this all happens on one thread.
struct Slot<const TX_SZ: usize, const RX_SZ: usize, const META: usize> {
    used: Cell<bool>,
    bufs: UnsafeCell<Buffers<TX_SZ, RX_SZ, META>>,
}

struct Buffers<const TX_SZ: usize, const RX_SZ: usize, const META: usize> {
    rx_meta: [PacketMetadata; META],
    rx: [u8; RX_SZ],
    tx_meta: [PacketMetadata; META],
    tx: [u8; TX_SZ],
}

/// The four buffers of a UDP socket: receive metadata and payload, transmit metadata and
/// payload.
type BufferRefs<'a> = (
    &'a mut [PacketMetadata],
    &'a mut [u8],
    &'a mut [PacketMetadata],
    &'a mut [u8],
);

impl<const TX_SZ: usize, const RX_SZ: usize, const META: usize> Slot<TX_SZ, RX_SZ, META> {
    const fn new() -> Self {
        Self {
            used: Cell::new(false),
            bufs: UnsafeCell::new(Buffers {
                rx_meta: [const { PacketMetadata::EMPTY }; META],
                rx: [0; RX_SZ],
                tx_meta: [const { PacketMetadata::EMPTY }; META],
                tx: [0; TX_SZ],
            }),
        }
    }

    /// The buffers.
    ///
    /// # Safety
    ///
    /// `used` must have just gone from `false` to `true` and this be the one call for it: the
    /// returned references must be the only ones until `used` is `false` again.
    unsafe fn buffers(&self) -> BufferRefs<'_> {
        // SAFETY: by the caller's promise no other reference to the buffers exists.
        let b = unsafe { &mut *self.bufs.get() };
        (&mut b.rx_meta, &mut b.rx, &mut b.tx_meta, &mut b.tx)
    }
}

/// Frees a slot when dropped.
struct SlotGuard<'d> {
    used: &'d Cell<bool>,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.used.set(false);
    }
}

/// UDP sockets for `embedded-nal-async`: implements
/// [`UdpStack`](embedded_nal_async::UdpStack) with the buffers of a [`UdpClientState`].
///
/// See the [module documentation](self). It is `Copy`: pass it around by value.
#[derive(Clone, Copy)]
pub struct UdpClient<
    'd,
    const N: usize,
    const TX_SZ: usize = 1536,
    const RX_SZ: usize = 1536,
    const META: usize = 4,
> {
    stack: Stack<'d>,
    state: &'d UdpClientState<N, TX_SZ, RX_SZ, META>,
}

impl<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize, const META: usize>
    UdpClient<'d, N, TX_SZ, RX_SZ, META>
{
    /// Create a client that opens sockets on `stack` with the buffers of `state`.
    pub fn new(stack: Stack<'d>, state: &'d UdpClientState<N, TX_SZ, RX_SZ, META>) -> Self {
        Self { stack, state }
    }

    /// Take a slot, make a socket with its buffers and bind it to `addr` (`None`: every
    /// address) and `port` (0: an ephemeral one).
    fn open(
        &self,
        addr: Option<IpAddress>,
        port: u16,
    ) -> Result<(UdpSocket<'d>, SlotGuard<'d>), Error> {
        let state: &'d UdpClientState<N, TX_SZ, RX_SZ, META> = self.state;
        let slot = state
            .slots
            .iter()
            .find(|s| !s.used.get())
            .ok_or(Error::PoolExhausted)?;
        slot.used.set(true);
        // Declared before the socket, so that on an early return the socket is dropped
        // (removed from the stack) before the slot is freed.
        let guard = SlotGuard { used: &slot.used };
        // SAFETY: `used` just went from `false` to `true` and this is the one call for it; a
        // free slot's buffers are referenced by nobody (see `Slot`).
        let (rx_meta, rx, tx_meta, tx) = unsafe { slot.buffers() };
        let mut socket = UdpSocket::try_new(self.stack, rx_meta, rx, tx_meta, tx)
            .map_err(|_| Error::SocketTableFull)?;
        if port != 0 && self.stack.with(|i| port_in_use(i, addr, port)) {
            return Err(Error::AddrInUse);
        }
        socket
            .bind(IpListenEndpoint { addr, port })
            .map_err(|e| match e {
                // No free ephemeral port (a fresh socket is never already bound).
                BindError::NoRoute | BindError::InvalidState => Error::AddrInUse,
            })?;
        Ok((socket, guard))
    }
}

impl<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize, const META: usize>
    embedded_nal_async::UdpStack for UdpClient<'d, N, TX_SZ, RX_SZ, META>
{
    type Error = Error;
    type Connected = ConnectedSocket<'d>;
    type UniquelyBound = UnconnectedSocket<'d>;
    type MultiplyBound = UnconnectedSocket<'d>;

    /// Open a socket that talks to `remote` only.
    ///
    /// An unspecified local address becomes the source address the stack uses toward
    /// `remote`; local port 0 becomes an ephemeral port. Returns the local address actually
    /// bound.
    async fn connect_from(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<(SocketAddr, ConnectedSocket<'d>), Error> {
        let remote_ep = to_endpoint(remote).ok_or(Error::NoRoute)?;
        let local_ip = local_address(local.ip())?;
        if local_ip.is_some_and(|a| a.version() != remote_ep.addr.version()) {
            return Err(Error::InvalidAddress);
        }
        let src = self.stack.with(|i| {
            if !routable(i, &remote_ep) {
                return Err(Error::NoRoute);
            }
            match local_ip {
                Some(a) if is_own_address(i, &a) => Ok(a),
                Some(_) => Err(Error::AddrNotAvailable),
                None => i
                    .iface
                    .get_source_address(&remote_ep.addr)
                    .filter(|a| !a.is_unspecified())
                    .ok_or(Error::NoRoute),
            }
        })?;
        let (socket, guard) = self.open(Some(src), local.port())?;
        let port = socket.endpoint().port;
        Ok((
            to_socket_addr(src, port),
            ConnectedSocket {
                socket,
                _slot: guard,
                remote: remote_ep,
            },
        ))
    }

    /// Open a socket bound to one local address: `local`, or, if unspecified, the stack's
    /// first address of that family. Local port 0 becomes an ephemeral port. Returns the local
    /// address actually bound.
    async fn bind_single(
        &self,
        local: SocketAddr,
    ) -> Result<(SocketAddr, UnconnectedSocket<'d>), Error> {
        let requested = to_ip_address(local.ip()).ok_or(Error::NoRoute)?;
        let addr = self.stack.with(|i| {
            if requested.is_unspecified() {
                pick_address(i, &requested).ok_or(Error::NoRoute)
            } else if is_own_address(i, &requested) {
                Ok(requested)
            } else {
                Err(Error::AddrNotAvailable)
            }
        })?;
        let (socket, guard) = self.open(Some(addr), local.port())?;
        let port = socket.endpoint().port;
        Ok((
            to_socket_addr(addr, port),
            UnconnectedSocket {
                socket,
                _slot: guard,
                addr: Some(addr),
                port,
            },
        ))
    }

    /// Open a socket on `local`'s port (0: an ephemeral one, see
    /// [`UnconnectedSocket::local_endpoint`]) and, if `local`'s address is unspecified, on
    /// every address of the stack, of both families.
    async fn bind_multiple(&self, local: SocketAddr) -> Result<UnconnectedSocket<'d>, Error> {
        let addr = local_address(local.ip())?;
        if let Some(a) = addr
            && !self.stack.with(|i| is_own_address(i, &a))
        {
            return Err(Error::AddrNotAvailable);
        }
        let (socket, guard) = self.open(addr, local.port())?;
        let port = socket.endpoint().port;
        Ok(UnconnectedSocket {
            socket,
            _slot: guard,
            addr,
            port,
        })
    }
}

/// A UDP socket with a fixed remote endpoint, from
/// [`UdpStack::connect_from`](embedded_nal_async::UdpStack::connect_from). Datagrams from other
/// endpoints are dropped. Dropping it closes the socket and frees its slot.
pub struct ConnectedSocket<'d> {
    socket: UdpSocket<'d>,
    /// Must come after `socket`: frees the slot once the socket is gone (fields are dropped in
    /// declaration order).
    _slot: SlotGuard<'d>,
    remote: IpEndpoint,
}

impl ConnectedSocket<'_> {
    /// The local endpoint the socket is bound to.
    pub fn local_endpoint(&self) -> IpListenEndpoint {
        self.socket.endpoint()
    }

    /// The remote endpoint the socket talks to.
    pub fn remote_endpoint(&self) -> IpEndpoint {
        self.remote
    }
}

impl embedded_nal_async::ConnectedUdp for ConnectedSocket<'_> {
    type Error = Error;

    /// Send a datagram to the remote endpoint; waits for room in the transmit buffer.
    async fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        self.socket
            .send_to(data, self.remote)
            .await
            .map_err(send_error)
    }

    /// Wait for a datagram from the remote endpoint and copy it into `buffer`. Returns its
    /// full length, which is larger than `buffer` if it was truncated.
    async fn receive_into(&mut self, buffer: &mut [u8]) -> Result<usize, Error> {
        let remote = self.remote;
        loop {
            let got = self
                .socket
                .recv_from_with(|data, meta| {
                    (meta.endpoint == remote).then(|| copy_truncated(data, buffer))
                })
                .await;
            if let Some(n) = got {
                return Ok(n);
            }
        }
    }
}

/// A UDP socket without a fixed remote endpoint, from
/// [`UdpStack::bind_single`](embedded_nal_async::UdpStack::bind_single) or
/// [`UdpStack::bind_multiple`](embedded_nal_async::UdpStack::bind_multiple). Dropping it closes
/// the socket and frees its slot.
pub struct UnconnectedSocket<'d> {
    socket: UdpSocket<'d>,
    /// Must come after `socket`: frees the slot once the socket is gone (fields are dropped in
    /// declaration order).
    _slot: SlotGuard<'d>,
    /// The bound address; `None` for every address.
    addr: Option<IpAddress>,
    port: u16,
}

impl UnconnectedSocket<'_> {
    /// The local endpoint the socket is bound to (address `None`: every address).
    pub fn local_endpoint(&self) -> IpListenEndpoint {
        IpListenEndpoint {
            addr: self.addr,
            port: self.port,
        }
    }
}

impl embedded_nal_async::UnconnectedUdp for UnconnectedSocket<'_> {
    type Error = Error;

    /// Send a datagram from `local` to `remote`; waits for room in the transmit buffer.
    ///
    /// `local` may leave its address and port unspecified. Otherwise its port must be the
    /// socket's and its address the socket's (when bound to one) or one of the stack's (when
    /// bound to every address), of the same family as `remote`; if not, the result is
    /// [`Error::InvalidAddress`] or [`Error::AddrNotAvailable`].
    async fn send(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) -> Result<(), Error> {
        let remote_ep = to_endpoint(remote).ok_or(Error::NoRoute)?;
        if local.port() != 0 && local.port() != self.port {
            return Err(Error::InvalidAddress);
        }
        let requested = local_address(local.ip())?;
        let source = match (self.addr, requested) {
            (Some(bound), Some(l)) if bound != l => return Err(Error::InvalidAddress),
            (Some(bound), _) => Some(bound),
            (None, Some(l)) => {
                if !self.socket.stack.with(|i| is_own_address(i, &l)) {
                    return Err(Error::AddrNotAvailable);
                }
                Some(l)
            }
            (None, None) => None,
        };
        if source.is_some_and(|s| s.version() != remote_ep.addr.version()) {
            return Err(Error::InvalidAddress);
        }
        let mut meta = UdpMetadata::from(remote_ep);
        meta.local_address = source;
        self.socket.send_to(data, meta).await.map_err(send_error)
    }

    /// Wait for a datagram and copy it into `buffer`. Returns its full length (larger than
    /// `buffer` if it was truncated), the local address it was received on and the sender.
    ///
    /// The local address is the socket's own when bound to one address (also for a broadcast
    /// or multicast datagram), else the datagram's destination address.
    async fn receive_into(
        &mut self,
        buffer: &mut [u8],
    ) -> Result<(usize, SocketAddr, SocketAddr), Error> {
        let (n, meta) = self
            .socket
            .recv_from_with(|data, meta| (copy_truncated(data, buffer), meta))
            .await;
        let remote = meta.endpoint;
        let local = self
            .addr
            .or(meta.local_address)
            .unwrap_or_else(|| unspecified_like(&remote.addr));
        Ok((
            n,
            to_socket_addr(local, self.port),
            to_socket_addr(remote.addr, remote.port),
        ))
    }
}

/// Copy as much of `data` as fits into `buf`; returns the full length of `data`.
fn copy_truncated(data: &[u8], buf: &mut [u8]) -> usize {
    let n = data.len().min(buf.len());
    buf[..n].copy_from_slice(&data[..n]);
    data.len()
}

fn send_error(e: SendError) -> Error {
    match e {
        SendError::PacketTooLarge => Error::PacketTooLarge,
        // The sockets of this module are always bound.
        SendError::NoRoute | SendError::SocketNotBound => Error::NoRoute,
    }
}

/// Can the stack send to `ep`?
fn routable(i: &Inner, ep: &IpEndpoint) -> bool {
    ep.port != 0 && !ep.addr.is_unspecified() && i.has_route(&ep.addr)
}

/// Is `addr` one of the stack's addresses?
fn is_own_address(i: &Inner, addr: &IpAddress) -> bool {
    i.iface.ip_addrs().iter().any(|c| c.address() == *addr)
}

/// The stack's first address of `like`'s family, a global one before a link-local one.
fn pick_address(i: &Inner, like: &IpAddress) -> Option<IpAddress> {
    let mut link_local = None;
    for cidr in i.iface.ip_addrs() {
        let a = cidr.address();
        if a.version() != like.version() {
            continue;
        }
        if is_link_local(&a) {
            link_local.get_or_insert(a);
        } else {
            return Some(a);
        }
    }
    link_local
}

fn is_link_local(addr: &IpAddress) -> bool {
    match addr {
        #[cfg(feature = "proto-ipv4")]
        IpAddress::Ipv4(a) => a.is_link_local(),
        #[cfg(feature = "proto-ipv6")]
        IpAddress::Ipv6(a) => a.is_unicast_link_local(),
    }
}

/// Does another UDP socket use `port` on an address that overlaps `addr`?
fn port_in_use(i: &Inner, addr: Option<IpAddress>, port: u16) -> bool {
    i.sockets.iter().any(|(_, s)| match s {
        smoltcp::socket::Socket::Udp(u) => {
            let e = u.endpoint();
            e.port == port && (e.addr.is_none() || addr.is_none() || e.addr == addr)
        }
        #[allow(unreachable_patterns)]
        _ => false,
    })
}

/// A local address as given to the trait: `Ok(None)` if unspecified, `NoRoute` if its family
/// is disabled.
fn local_address(addr: IpAddr) -> Result<Option<IpAddress>, Error> {
    if addr.is_unspecified() {
        return Ok(None);
    }
    to_ip_address(addr).map(Some).ok_or(Error::NoRoute)
}

fn to_endpoint(addr: SocketAddr) -> Option<IpEndpoint> {
    Some(IpEndpoint::new(to_ip_address(addr.ip())?, addr.port()))
}

fn to_socket_addr(addr: IpAddress, port: u16) -> SocketAddr {
    let ip = match addr {
        #[cfg(feature = "proto-ipv4")]
        IpAddress::Ipv4(a) => IpAddr::V4(a),
        #[cfg(feature = "proto-ipv6")]
        IpAddress::Ipv6(a) => IpAddr::V6(a),
    };
    SocketAddr::new(ip, port)
}

/// The unspecified address of `addr`'s family.
fn unspecified_like(addr: &IpAddress) -> IpAddress {
    match addr {
        #[cfg(feature = "proto-ipv4")]
        IpAddress::Ipv4(_) => IpAddress::Ipv4(core::net::Ipv4Addr::UNSPECIFIED),
        #[cfg(feature = "proto-ipv6")]
        IpAddress::Ipv6(_) => IpAddress::Ipv6(core::net::Ipv6Addr::UNSPECIFIED),
    }
}
