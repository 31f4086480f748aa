//! TCP sockets.
//!
//! Same API as embassy-net 0.9's `tcp` module. A [`TcpSocket`] is either connected to a remote
//! host with [`connect`](TcpSocket::connect) or waits for one with
//! [`accept`](TcpSocket::accept); to accept several connections at once, put several sockets
//! in accept. Sockets implement the `embedded-io-async` traits.
//!
//! # Errors are precise
//!
//! Unlike embassy-net, which reports every failure as `ConnectionReset`, ferronet tells:
//!
//! - [`Error::ConnectionReset`]: the peer reset the connection (a TCP RST).
//! - [`Error::TimedOut`]: the timeout set with [`set_timeout`](TcpSocket::set_timeout) expired.
//! - [`Error::InvalidState`]: the operation is not possible in the socket's state: never
//!   connected, send half already closed with [`close`](TcpSocket::close), aborted, or the
//!   buffer for that direction has zero capacity.
//! - End of stream (the peer closed its send half) is `Ok(0)` from `read`, as in `std`.
//!
//! [`ConnectError::TimedOut`] is returned when the connection could not be set up in time: the
//! socket's timeout if one is set, otherwise [`DEFAULT_CONNECT_TIMEOUT`] (embassy-net waits
//! forever).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(stack: ferronet::Stack<'_>) -> Result<(), ferronet::tcp::Error> {
//! use ferronet::tcp::TcpSocket;
//! use ferronet::{IpEndpoint, Ipv4Address};
//!
//! let mut rx = [0u8; 1024];
//! let mut tx = [0u8; 1024];
//! let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
//! socket.set_timeout(Some(embassy_time::Duration::from_secs(10)));
//! socket
//!     .connect(IpEndpoint::new(Ipv4Address::new(192, 0, 2, 1).into(), 7))
//!     .await
//!     .map_err(|_| ferronet::tcp::Error::ConnectionReset)?;
//! socket.write(b"hello").await?;
//! let mut buf = [0u8; 5];
//! let n = socket.read(&mut buf).await?;
//! # let _ = n;
//! socket.close();
//! socket.flush().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Without waiting
//!
//! Every read, write and flush has a non-blocking `try_*` twin (embassy-net main's names):
//! it returns [`TryError::WouldBlock`] where the async call would
//! wait, and the async call's error in [`TryError::Other`].
//!
//! # Not implemented
//!
//! No listen backlog for plain sockets (a socket in `accept` takes one connection; a SYN
//! that finds none is answered with a RST): the `listener` module (cargo feature
//! `tcp-listener`) adds one. No TCP Fast Open, no urgent data, no SACK (smoltcp's limits).
//! Dropping a connected socket frees it at once without sending anything (as embassy-net
//! does): call `close` and `flush`, or `abort` and `flush`, first.

use core::future::{Future, poll_fn};
use core::task::{Context, Poll};

use embassy_time::Duration;
use smoltcp::iface::{SocketHandle, SocketSet};
pub use smoltcp::socket::tcp::State;
use smoltcp::socket::{AnySocket, tcp};

pub mod client;
pub(crate) mod keep_alive;
#[cfg(feature = "tcp-listener")]
pub mod listener;
#[cfg(feature = "tcp-listener")]
pub mod syncookie;
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

use crate::TryError;
use crate::stack::{Inner, SlotMeta, SocketTableFull, Stack, erase_lifetime, slot_of};
use crate::time::duration_to_smoltcp;

/// How long [`TcpSocket::connect`] tries when the socket has no timeout of its own (75 s, the
/// classic BSD connection-establishment timer).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(75);

/// How long [`TcpSocket::accept`] keeps a half-open connection (SYN received, the SYN-ACK
/// not acknowledged) before it drops it and listens again: smoltcp's first retransmission
/// timeout is 1 s, so this allows two retransmissions of the SYN-ACK. smoltcp alone keeps it
/// until the socket's own timeout, or forever.
pub const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Error returned by the read and write functions of TCP sockets.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The peer reset the connection (TCP RST).
    ConnectionReset,
    /// The socket's timeout expired: nothing was heard from the peer for that long.
    ///
    /// Not in embassy-net 0.9 (which reports this as `ConnectionReset`).
    TimedOut,
    /// The operation is not possible in the socket's state: not connected, the send half was
    /// closed with `close`, the connection was aborted with `abort`, or the buffer for that
    /// direction has zero capacity.
    ///
    /// Not in embassy-net 0.9 (which reports this as `ConnectionReset`).
    InvalidState,
    /// No route to the host ([`client::TcpClient`]), or the interface lost the connection's
    /// local address (a DHCP lease lost, for example when the link went down, or the
    /// configuration changed), which ends the connection.
    ///
    /// Not in embassy-net 0.9 (which reports this as `ConnectionReset`).
    NoRoute,
    /// [`client::TcpClient`] only: every connection of its
    /// [`TcpClientState`](client::TcpClientState) is in use.
    ///
    /// Not in embassy-net 0.9 (which reports this as `ConnectionReset`).
    PoolExhausted,
    /// [`client::TcpClient`] only: the stack's socket table is full (see
    /// [`SocketTableFull`]).
    ///
    /// Not in embassy-net 0.9 (which reports this as `ConnectionReset`).
    SocketTableFull,
}

/// Error returned by [`TcpSocket::connect`].
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConnectError {
    /// The socket is not closed (already connected, connecting or listening), or the local
    /// port is 0.
    InvalidState,
    /// The remote host rejected the connection with a RST packet.
    ConnectionReset,
    /// Connect timed out.
    TimedOut,
    /// No route to host: the stack has no address to send from, no route to the destination,
    /// or the remote endpoint is unspecified (address or port zero).
    NoRoute,
}

/// Error returned by [`TcpSocket::accept`].
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AcceptError {
    /// The socket is not closed (already connected, connecting or listening), or the local
    /// port is 0.
    InvalidState,
    /// Invalid listen port (port 0).
    InvalidPort,
    /// The remote host reset the connection while it was being set up.
    ConnectionReset,
}

/// A TCP socket.
pub struct TcpSocket<'a> {
    io: TcpIo<'a>,
}

/// The reader half of a TCP socket.
pub struct TcpReader<'a> {
    io: TcpIo<'a>,
}

/// The writer half of a TCP socket.
pub struct TcpWriter<'a> {
    io: TcpIo<'a>,
}

fn _assert_covariant<'a, 'b: 'a>(x: TcpSocket<'b>) -> TcpSocket<'a> {
    x
}
fn _assert_covariant_reader<'a, 'b: 'a>(x: TcpReader<'b>) -> TcpReader<'a> {
    x
}
fn _assert_covariant_writer<'a, 'b: 'a>(x: TcpWriter<'b>) -> TcpWriter<'a> {
    x
}

impl<'a> TcpReader<'a> {
    /// Wait until the socket becomes readable: there is data to read, or the receive half is
    /// closed (a read would return `Ok(0)` or an error).
    pub fn wait_read_ready(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| self.io.poll_read_ready(cx))
    }

    /// Read data from the socket. Waits until at least one byte is available. `Ok(0)` means
    /// end of stream (or an empty `buf`).
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.io.read(buf).await
    }

    /// Call `f` with the largest contiguous slice of received bytes and dequeue as many bytes
    /// as `f` returns. Waits until data is available; at end of stream `f` gets an empty slice.
    pub async fn read_with<F, R>(&mut self, f: F) -> Result<R, Error>
    where
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        self.io.read_with(f).await
    }

    /// Read without waiting: like [`read`](Self::read), but `Err(TryError::WouldBlock)`
    /// when no data is available yet (or the connection is still being set up).
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize, TryError<Error>> {
        self.io.try_read(buf)
    }

    /// Copy received data into `buf` without dequeueing it and without waiting:
    /// `Err(TryError::WouldBlock)` when none is available. Not in embassy-net.
    pub fn try_peek(&mut self, buf: &mut [u8]) -> Result<usize, TryError<Error>> {
        self.io.try_peek(buf)
    }

    /// Like [`read_with`](Self::read_with) without waiting: `Err(TryError::WouldBlock)` (and
    /// `f` not called) when no data is available.
    pub fn try_read_with<F, R>(&mut self, f: F) -> Result<R, TryError<Error>>
    where
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        self.io.try_read_with(f)
    }

    /// The capacity of the receive buffer.
    pub fn recv_capacity(&self) -> usize {
        self.io.with(|s| s.recv_capacity())
    }

    /// The number of bytes in the receive buffer.
    pub fn recv_queue(&self) -> usize {
        self.io.with(|s| s.recv_queue())
    }
}

impl<'a> TcpWriter<'a> {
    /// Wait until the socket becomes writable: there is room in the transmit buffer, or the
    /// send half is closed (a write would fail).
    pub fn wait_write_ready(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| self.io.poll_write_ready(cx))
    }

    /// Write data to the socket. Waits until at least one byte fits; returns how many were
    /// queued.
    pub fn write<'s>(
        &'s mut self,
        buf: &'s [u8],
    ) -> impl Future<Output = Result<usize, Error>> + 's {
        self.io.write(buf)
    }

    /// Wait until all queued data has been sent and acknowledged (and, after `close`, the FIN;
    /// after `abort`, the RST sent).
    pub fn flush(&mut self) -> impl Future<Output = Result<(), Error>> + '_ {
        self.io.flush()
    }

    /// Call `f` with the largest contiguous free slice of the transmit buffer and queue as
    /// many bytes as `f` returns. Waits until there is room.
    pub async fn write_with<F, R>(&mut self, f: F) -> Result<R, Error>
    where
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        self.io.write_with(f).await
    }

    /// Write without waiting: like [`write`](Self::write), but `Err(TryError::WouldBlock)`
    /// when the transmit buffer is full (or the connection is still being set up).
    pub fn try_write(&mut self, buf: &[u8]) -> Result<usize, TryError<Error>> {
        self.io.try_write(buf)
    }

    /// Check without waiting whether everything written has been sent and acknowledged:
    /// `Err(TryError::WouldBlock)` while it has not (see [`flush`](Self::flush)).
    pub fn try_flush(&mut self) -> Result<(), TryError<Error>> {
        self.io.try_flush()
    }

    /// Like [`write_with`](Self::write_with) without waiting: `Err(TryError::WouldBlock)` (and
    /// `f` not called) when the transmit buffer is full.
    pub fn try_write_with<F, R>(&mut self, f: F) -> Result<R, TryError<Error>>
    where
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        self.io.try_write_with(f)
    }

    /// The capacity of the transmit buffer.
    pub fn send_capacity(&self) -> usize {
        self.io.with(|s| s.send_capacity())
    }

    /// The number of bytes in the transmit buffer (queued or sent but not yet acknowledged).
    pub fn send_queue(&self) -> usize {
        self.io.with(|s| s.send_queue())
    }
}

impl<'a> TcpSocket<'a> {
    /// Create a TCP socket on `stack` with the given receive and transmit buffers.
    ///
    /// # Panics
    ///
    /// If the stack's socket table is full ("make `StackResources<N>` larger"); use
    /// [`try_new`](Self::try_new) to get an error instead.
    pub fn new(stack: Stack<'a>, rx_buffer: &'a mut [u8], tx_buffer: &'a mut [u8]) -> Self {
        match Self::try_new(stack, rx_buffer, tx_buffer) {
            Ok(s) => s,
            Err(e) => panic!("TcpSocket::new: {}", e),
        }
    }

    /// Create a TCP socket, or return [`SocketTableFull`] when every slot of the stack's
    /// [`StackResources`](crate::StackResources) is taken.
    pub fn try_new(
        stack: Stack<'a>,
        rx_buffer: &'a mut [u8],
        tx_buffer: &'a mut [u8],
    ) -> Result<Self, SocketTableFull> {
        // SAFETY: the buffers are borrowed for 'a, and the socket that holds them is removed
        // from the socket set when this `TcpSocket<'a>` is dropped (see `Drop`), so the set
        // never touches them after 'a. The lifetime is erased only because the set cannot
        // name 'a.
        let rx: &'static mut [u8] = unsafe { erase_lifetime(rx_buffer) };
        // SAFETY: as above.
        let tx: &'static mut [u8] = unsafe { erase_lifetime(tx_buffer) };
        let socket = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
        let handle = stack.with_mut(|i| i.add_socket(socket))?;
        Ok(Self {
            io: TcpIo { stack, handle },
        })
    }

    /// The capacity of the receive buffer.
    pub fn recv_capacity(&self) -> usize {
        self.io.with(|s| s.recv_capacity())
    }

    /// The capacity of the transmit buffer.
    pub fn send_capacity(&self) -> usize {
        self.io.with(|s| s.send_capacity())
    }

    /// The number of bytes in the transmit buffer (queued or sent but not yet acknowledged).
    pub fn send_queue(&self) -> usize {
        self.io.with(|s| s.send_queue())
    }

    /// The number of bytes in the receive buffer.
    pub fn recv_queue(&self) -> usize {
        self.io.with(|s| s.recv_queue())
    }

    /// Call `f` with the largest contiguous free slice of the transmit buffer and queue as
    /// many bytes as `f` returns. Waits until there is room.
    pub async fn write_with<F, R>(&mut self, f: F) -> Result<R, Error>
    where
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        self.io.write_with(f).await
    }

    /// Call `f` with the largest contiguous slice of received bytes and dequeue as many bytes
    /// as `f` returns. Waits until data is available; at end of stream `f` gets an empty slice.
    pub async fn read_with<F, R>(&mut self, f: F) -> Result<R, Error>
    where
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        self.io.read_with(f).await
    }

    /// Read without waiting: like [`read`](Self::read), but `Err(TryError::WouldBlock)`
    /// when no data is available yet (or the connection is still being set up). `Ok(0)` is
    /// end of stream; other errors are those of `read`, in `TryError::Other`.
    ///
    /// ```no_run
    /// # fn demo(socket: &mut ferronet::tcp::TcpSocket<'_>) -> Result<(), ferronet::tcp::Error> {
    /// use ferronet::TryError;
    ///
    /// let mut buf = [0u8; 64];
    /// match socket.try_read(&mut buf) {
    ///     Ok(0) => { /* the peer closed its send half */ }
    ///     Ok(n) => { /* use buf[..n] */ let _ = n; }
    ///     Err(TryError::WouldBlock) => { /* nothing yet: do something else */ }
    ///     Err(TryError::Other(e)) => return Err(e),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<usize, TryError<Error>> {
        self.io.try_read(buf)
    }

    /// Copy received data into `buf` without dequeueing it and without waiting:
    /// `Err(TryError::WouldBlock)` when none is available; the next read returns the same
    /// bytes. Not in embassy-net (0.9 or main).
    ///
    /// ```no_run
    /// # fn demo(socket: &mut ferronet::tcp::TcpSocket<'_>) {
    /// let mut line = [0u8; 128];
    /// if let Ok(n) = socket.try_peek(&mut line) {
    ///     if let Some(end) = line[..n].iter().position(|&b| b == b'\n') {
    ///         // A whole line is there: now consume it.
    ///         let _ = socket.try_read(&mut line[..=end]);
    ///     }
    /// }
    /// # }
    /// ```
    pub fn try_peek(&mut self, buf: &mut [u8]) -> Result<usize, TryError<Error>> {
        self.io.try_peek(buf)
    }

    /// Like [`read_with`](Self::read_with) without waiting: `Err(TryError::WouldBlock)` (and
    /// `f` not called) when no data is available.
    pub fn try_read_with<F, R>(&mut self, f: F) -> Result<R, TryError<Error>>
    where
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        self.io.try_read_with(f)
    }

    /// Write without waiting: like [`write`](Self::write), but `Err(TryError::WouldBlock)`
    /// when the transmit buffer is full (or the connection is still being set up). Returns
    /// how many bytes were queued.
    ///
    /// ```no_run
    /// # fn demo(socket: &mut ferronet::tcp::TcpSocket<'_>) -> Result<(), ferronet::tcp::Error> {
    /// use ferronet::TryError;
    ///
    /// let data = b"status: ok\n";
    /// let mut sent = 0;
    /// while sent < data.len() {
    ///     match socket.try_write(&data[sent..]) {
    ///         Ok(n) => sent += n,
    ///         Err(TryError::WouldBlock) => break, // buffer full: come back later
    ///         Err(TryError::Other(e)) => return Err(e),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_write(&mut self, buf: &[u8]) -> Result<usize, TryError<Error>> {
        self.io.try_write(buf)
    }

    /// Check without waiting whether everything written (and after `close` the FIN, after
    /// `abort` the RST) has been sent and acknowledged: `Err(TryError::WouldBlock)` while it
    /// has not; errors as for [`flush`](Self::flush).
    pub fn try_flush(&mut self) -> Result<(), TryError<Error>> {
        self.io.try_flush()
    }

    /// Like [`write_with`](Self::write_with) without waiting: `Err(TryError::WouldBlock)` (and
    /// `f` not called) when the transmit buffer is full.
    pub fn try_write_with<F, R>(&mut self, f: F) -> Result<R, TryError<Error>>
    where
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        self.io.try_write_with(f)
    }

    /// Split the socket into a reader and a writer half, which can be used from two tasks at
    /// once.
    pub fn split(&mut self) -> (TcpReader<'_>, TcpWriter<'_>) {
        (TcpReader { io: self.io }, TcpWriter { io: self.io })
    }

    /// Connect to a remote host and wait until the connection is established.
    ///
    /// The local port is an ephemeral port (49152..=65535) drawn from the stack's seed that no
    /// other socket uses. Fails with [`ConnectError::NoRoute`] at once when the stack has no
    /// address or route for the destination, with [`ConnectError::ConnectionReset`] when the
    /// peer refuses, and with [`ConnectError::TimedOut`] when no answer comes within the
    /// socket's timeout (or [`DEFAULT_CONNECT_TIMEOUT`] if none is set).
    pub async fn connect<T>(&mut self, remote_endpoint: T) -> Result<(), ConnectError>
    where
        T: Into<IpEndpoint>,
    {
        // The set-up and the clean-up are plain functions, so that nothing they use is kept
        // in the future while it waits.
        self.start_connect(remote_endpoint.into())?;
        let res = poll_fn(|cx| {
            self.io.with_mut_quiet(|s, meta| match s.state() {
                tcp::State::SynSent | tcp::State::SynReceived => {
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
                tcp::State::Closed | tcp::State::Listen => Poll::Ready(Err(if meta.address_lost {
                    ConnectError::NoRoute
                } else if meta.timed_out() {
                    ConnectError::TimedOut
                } else {
                    ConnectError::ConnectionReset
                })),
                _ => Poll::Ready(Ok(())),
            })
        })
        .await;

        self.end_connect();
        res
    }

    /// Start connecting to `remote` (see [`connect`](Self::connect)).
    fn start_connect(&mut self, remote: IpEndpoint) -> Result<(), ConnectError> {
        let handle = self.io.handle;
        self.io.stack.with_mut(|i| {
            let s = i.sockets.get_mut::<tcp::Socket>(self.io.handle);
            if s.is_open() {
                return Err(ConnectError::InvalidState);
            }
            if remote.port == 0 || remote.addr.is_unspecified() || !i.has_route(&remote.addr) {
                return Err(ConnectError::NoRoute);
            }
            let Some(local_port) = i.alloc_local_port() else {
                return Err(ConnectError::NoRoute);
            };
            let s = i.sockets.get_mut::<tcp::Socket>(self.io.handle);
            let default_timeout = s.timeout().is_none();
            if default_timeout {
                s.set_timeout(Some(duration_to_smoltcp(DEFAULT_CONNECT_TIMEOUT)));
            }
            match s.connect(i.iface.context(), remote, local_port) {
                Ok(()) => {}
                Err(tcp::ConnectError::InvalidState) => return Err(ConnectError::InvalidState),
                Err(tcp::ConnectError::Unaddressable) => return Err(ConnectError::NoRoute),
            }
            let meta = i.slot(handle);
            meta.begin_connection();
            meta.set_connect_timeout(default_timeout);
            i.set_watch(handle, true);
            i.wake_runner();
            Ok(())
        })
    }

    /// After a connect: take the connect timeout away again if it was ours.
    fn end_connect(&mut self) {
        let handle = self.io.handle;
        self.io.stack.with_mut(|i| {
            if i.slot(handle).connect_timeout() {
                i.slot(handle).set_connect_timeout(false);
                i.sockets
                    .get_mut::<tcp::Socket>(self.io.handle)
                    .set_timeout(None);
                i.set_watch(handle, false);
            }
        });
    }

    /// Listen on `local_endpoint` and wait until a connection is established.
    ///
    /// A connection that stays half-open (SYN received, no ACK for the SYN-ACK, as with a
    /// SYN from a spoofed address) is dropped after [`HALF_OPEN_TIMEOUT`] and the socket
    /// listens again, so a few spoofed SYNs cannot keep a server unreachable.
    ///
    /// One socket accepts one connection. Port 0 is rejected with
    /// [`AcceptError::InvalidPort`].
    pub async fn accept<T>(&mut self, local_endpoint: T) -> Result<(), AcceptError>
    where
        T: Into<IpListenEndpoint>,
    {
        let local = local_endpoint.into();
        // The set-up is a plain function, so that nothing it uses is kept in the future.
        self.start_accept(local)?;
        self.wait_accepted(Some(local)).await
    }

    /// Wait until a connection being accepted is established. A half-open one (see
    /// [`accept`](Self::accept)) is dropped silently after [`HALF_OPEN_TIMEOUT`]; the socket
    /// then listens on `relisten` again, or fails with `ConnectionReset` without one.
    async fn wait_accepted(
        &mut self,
        relisten: Option<IpListenEndpoint>,
    ) -> Result<(), AcceptError> {
        let mut half_open_since: Option<embassy_time::Instant> = None;
        poll_fn(|cx| {
            self.io.with_mut_quiet(|s, _| match s.state() {
                tcp::State::SynReceived => {
                    let now = embassy_time::Instant::now();
                    let give_up = *half_open_since.get_or_insert(now) + HALF_OPEN_TIMEOUT;
                    if now >= give_up {
                        // Silently: the SYN most likely came from a spoofed address.
                        debug!("half-open connection timed out");
                        s.abort();
                        half_open_since = None;
                        match relisten {
                            Some(local) => {
                                let _ = s.listen(local);
                            }
                            None => {
                                forget_connection(s);
                                return Poll::Ready(Err(AcceptError::ConnectionReset));
                            }
                        }
                    } else {
                        embassy_time_driver::schedule_wake(give_up.as_ticks(), cx.waker());
                    }
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
                tcp::State::Listen | tcp::State::SynSent => {
                    half_open_since = None;
                    s.register_send_waker(cx.waker());
                    Poll::Pending
                }
                tcp::State::Closed => Poll::Ready(Err(AcceptError::ConnectionReset)),
                _ => Poll::Ready(Ok(())),
            })
        })
        .await
    }

    /// Start listening on `local` (see [`accept`](Self::accept)).
    fn start_accept(&mut self, local: IpListenEndpoint) -> Result<(), AcceptError> {
        if local.port == 0 {
            return Err(AcceptError::InvalidPort);
        }
        let handle = self.io.handle;
        self.io.stack.with_mut(|i| {
            let s = i.sockets.get_mut::<tcp::Socket>(self.io.handle);
            match s.listen(local) {
                Ok(()) => {}
                Err(tcp::ListenError::InvalidState) => return Err(AcceptError::InvalidState),
                Err(tcp::ListenError::Unaddressable) => return Err(AcceptError::InvalidPort),
            }
            i.slot(handle).begin_connection();
            i.wake_runner();
            Ok(())
        })
    }

    /// Wait until the socket becomes readable: there is data to read, or the receive half is
    /// closed (a read would return `Ok(0)` or an error).
    pub fn wait_read_ready(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| self.io.poll_read_ready(cx))
    }

    /// Read data from the socket. Waits until at least one byte is available. `Ok(0)` means
    /// end of stream: the peer closed its send half (or `buf` is empty).
    pub fn read<'s>(
        &'s mut self,
        buf: &'s mut [u8],
    ) -> impl Future<Output = Result<usize, Error>> + 's {
        self.io.read(buf)
    }

    /// Wait until the socket becomes writable: there is room in the transmit buffer, or the
    /// send half is closed (a write would fail).
    pub fn wait_write_ready(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| self.io.poll_write_ready(cx))
    }

    /// Write data to the socket. Waits until at least one byte fits; returns how many were
    /// queued. While the connection is still being set up, waits for it.
    pub fn write<'s>(
        &'s mut self,
        buf: &'s [u8],
    ) -> impl Future<Output = Result<usize, Error>> + 's {
        self.io.write(buf)
    }

    /// Wait until all queued data has been sent and acknowledged (and, after `close`, the FIN;
    /// after `abort`, the RST sent). Fails if the connection dies with data unacknowledged.
    pub fn flush(&mut self) -> impl Future<Output = Result<(), Error>> + '_ {
        self.io.flush()
    }

    /// Set the timeout: if nothing is heard from the peer for this long, the connection is
    /// aborted and reads, writes, `flush` and `connect` fail with [`Error::TimedOut`] /
    /// [`ConnectError::TimedOut`].
    ///
    /// As in smoltcp and embassy-net, the time counts from the last segment received, also
    /// on an idle connection: a connection on which neither side sends anything for longer
    /// than the timeout is closed. Set [`set_keep_alive`](Self::set_keep_alive) to a shorter
    /// interval to keep an idle connection open while the peer is alive (and so detect a dead
    /// peer).
    ///
    /// With no timeout set, `connect` uses [`DEFAULT_CONNECT_TIMEOUT`] for the handshake only.
    pub fn set_timeout(&mut self, duration: Option<Duration>) {
        let handle = self.io.handle;
        self.io.stack.with_mut(|i| {
            i.sockets
                .get_mut::<tcp::Socket>(self.io.handle)
                .set_timeout(duration.map(duration_to_smoltcp));
            i.slot(handle).set_connect_timeout(false);
            i.set_watch(handle, duration.is_some());
            i.wake_runner();
        })
    }

    /// Set the keep-alive interval: after this long without traffic, a keep-alive segment is
    /// sent. `None` (the default) sends none.
    ///
    /// Set on an idle connection, the first probe leaves one interval after this call (smoltcp
    /// alone would send it at once, and Linux answers such an early probe by delaying its
    /// next ACK by about 40 ms; see the README's known limits).
    pub fn set_keep_alive(&mut self, interval: Option<Duration>) {
        let handle = self.io.handle;
        self.io.stack.with_mut(|i| {
            let now = embassy_time::Instant::now();
            let s = i.sockets.get_mut::<tcp::Socket>(handle);
            let hold = match interval {
                Some(interval) if keep_alive::would_probe_at_once(s) => {
                    keep_alive::KeepAliveHold::new(now, interval)
                }
                _ => {
                    s.set_keep_alive(interval.map(duration_to_smoltcp));
                    keep_alive::KeepAliveHold::NONE
                }
            };
            let meta = i.slot(handle);
            let was_held = meta.keep_alive.is_held();
            meta.keep_alive = hold;
            match (was_held, hold.is_held()) {
                (false, true) => i.keep_alive_held += 1,
                (true, false) => i.keep_alive_held -= 1,
                _ => {}
            }
            i.wake_runner();
        })
    }

    /// Set the hop limit (IPv4 TTL) of sent packets; `None` uses the default (64).
    pub fn set_hop_limit(&mut self, hop_limit: Option<u8>) {
        // smoltcp panics on a hop limit of 0; it is meaningless for sending anyway.
        let hop_limit = hop_limit.filter(|&h| h != 0);
        self.io.with_mut(|s, _| s.set_hop_limit(hop_limit))
    }

    /// Enable or disable Nagle's algorithm (enabled by default). While enabled, at most one
    /// segment smaller than the MSS is in flight.
    pub fn set_nagle_enabled(&mut self, enabled: bool) {
        self.io.with_mut(|s, _| s.set_nagle_enabled(enabled))
    }

    /// The local endpoint, or `None` if the socket is neither connected nor connecting.
    pub fn local_endpoint(&self) -> Option<IpEndpoint> {
        self.io.with(|s| s.local_endpoint())
    }

    /// The remote endpoint, or `None` if the socket is not connected.
    pub fn remote_endpoint(&self) -> Option<IpEndpoint> {
        self.io.with(|s| s.remote_endpoint())
    }

    /// The TCP state of the socket.
    pub fn state(&self) -> State {
        self.io.with(|s| s.state())
    }

    /// Close the send half of the connection: data already written is still sent, followed
    /// by a FIN. The receive half stays open until the peer closes its side. Writes after this
    /// fail with [`Error::InvalidState`].
    pub fn close(&mut self) {
        self.io.with_mut(|s, meta| {
            if s.is_open() {
                meta.set_closed(true);
            }
            s.close()
        })
    }

    /// Abort the connection: a RST is sent and unsent data is dropped. The RST goes out on the
    /// runner's next poll; wait for it with [`flush`](Self::flush) before dropping or reusing
    /// the socket.
    pub fn abort(&mut self) {
        self.io.with_mut(|s, meta| {
            if s.is_open() {
                meta.set_aborted(true);
            }
            s.abort()
        })
    }

    /// Whether the send half is open (state ESTABLISHED or CLOSE-WAIT); says nothing about
    /// room in the buffer.
    pub fn may_send(&self) -> bool {
        self.io.with(|s| s.may_send())
    }

    /// Whether the send half is open and the transmit buffer has room.
    pub fn can_send(&self) -> bool {
        self.io.with(|s| s.can_send())
    }

    /// Whether data can still be received: there is data in the buffer, or the peer has not
    /// closed its send half.
    pub fn may_recv(&self) -> bool {
        self.io.with(|s| s.may_recv())
    }

    /// Whether there is data in the receive buffer.
    pub fn can_recv(&self) -> bool {
        self.io.with(|s| s.can_recv())
    }
}

impl<'a> TcpSocket<'a> {
    /// Take the socket apart without removing it from the socket set (for pools that keep a
    /// socket alive while it closes).
    pub(crate) fn into_parts(self) -> (Stack<'a>, SocketHandle) {
        let io = self.io;
        core::mem::forget(self);
        (io.stack, io.handle)
    }
}

impl<'a> Drop for TcpSocket<'a> {
    fn drop(&mut self) {
        let io = self.io;
        io.stack.with_mut(|i| i.remove_socket(io.handle));
    }
}

// ----------------------------------------------------------------------------------------
// Called by the runner to tell a timeout from a reset.

/// Before egress: remember which watched sockets are open.
pub(crate) fn before_egress(sockets: &SocketSet<'static>, slots: &mut [SlotMeta]) {
    for (h, s) in sockets.iter() {
        if let (Some(meta), Some(s)) = (slots.get_mut(slot_of(h)), tcp::Socket::downcast(s))
            && meta.watch_timeout()
        {
            meta.set_open_before_egress(s.is_active());
        }
    }
}

/// After egress: a watched socket that was open and is now closed timed out (a reset only
/// arrives during ingress, and an abort happens outside the runner).
///
/// smoltcp follows a timeout with an RST. When that RST could not go out (the peer's link
/// address is unknown, which is why a connect to a dead host times out), smoltcp would keep
/// trying to resolve the peer forever; as it resolves one neighbor at a time, that would hold
/// up every other new connection. A timed-out connection has no one to tell, so the RST is
/// dropped, unless unread data is still in the receive buffer (dropping the RST also empties
/// the buffers).
pub(crate) fn after_egress(sockets: &mut SocketSet<'static>, slots: &mut [SlotMeta]) {
    for (h, s) in sockets.iter_mut() {
        let (Some(meta), Some(s)) = (slots.get_mut(slot_of(h)), tcp::Socket::downcast_mut(s))
        else {
            continue;
        };
        if !(meta.watch_timeout() && meta.open_before_egress()) {
            continue;
        }
        meta.set_open_before_egress(false);
        if s.state() == tcp::State::Closed && !meta.address_lost {
            meta.set_timed_out(true);
            meta.set_data_lost(s.send_queue() > 0);
            if s.remote_endpoint().is_some() && s.recv_queue() == 0 {
                forget_connection(s);
            }
        }
    }
}

/// The interface's addresses are about to become `addrs`: mark the connections whose local
/// address goes away, so that they fail with `NoRoute` (smoltcp resets them silently at the
/// next egress pass, which would otherwise read as a reset or a timeout).
pub(crate) fn mark_lost_addresses(
    sockets: &SocketSet<'static>,
    slots: &mut [SlotMeta],
    addrs: &[smoltcp::wire::IpCidr],
) {
    for (h, s) in sockets.iter() {
        if let (Some(meta), Some(s)) = (slots.get_mut(slot_of(h)), tcp::Socket::downcast(s))
            && let Some(local) = s.local_endpoint()
            && s.state() != tcp::State::Closed
            && !addrs.iter().any(|a| a.address() == local.addr)
        {
            meta.address_lost = true;
        }
    }
}

/// Drop what a closed socket still holds of its last connection (endpoints, a pending RST,
/// buffers). smoltcp has no public reset; `listen` resets the socket, and `abort` from the
/// listening state sends nothing.
fn forget_connection(s: &mut tcp::Socket) {
    if s.listen(1).is_ok() {
        s.abort();
    }
}

// ----------------------------------------------------------------------------------------

#[derive(Copy, Clone)]
struct TcpIo<'a> {
    stack: Stack<'a>,
    handle: SocketHandle,
}

impl<'d> TcpIo<'d> {
    fn with<R>(&self, f: impl FnOnce(&tcp::Socket) -> R) -> R {
        self.stack
            .with(|i| f(i.sockets.get::<tcp::Socket>(self.handle)))
    }

    /// Run `f` on the socket and wake the runner afterwards (the socket changed).
    fn with_mut<R>(&self, f: impl FnOnce(&mut tcp::Socket, &mut SlotMeta) -> R) -> R {
        self.stack.with_mut(|i| {
            let r = self.access(i, f);
            i.wake_runner();
            r
        })
    }

    /// Run `f` on the socket without waking the runner (for checks and waker registration).
    fn with_mut_quiet<R>(&self, f: impl FnOnce(&mut tcp::Socket, &mut SlotMeta) -> R) -> R {
        self.stack.with_mut(|i| self.access(i, f))
    }

    #[inline]
    fn access<R>(&self, i: &mut Inner, f: impl FnOnce(&mut tcp::Socket, &mut SlotMeta) -> R) -> R {
        let s = i.sockets.get_mut::<tcp::Socket>(self.handle);
        f(s, &mut i.slots[slot_of(self.handle)])
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.with_mut_quiet(|s, _| {
            // A zero-capacity receive buffer can never become readable: report it ready, so
            // the read that follows returns its error instead of waiting forever.
            if s.can_recv() || s.recv_capacity() == 0 || !s.may_recv() && !connecting(s.state()) {
                Poll::Ready(())
            } else {
                s.register_recv_waker(cx.waker());
                Poll::Pending
            }
        })
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.with_mut_quiet(|s, _| {
            if s.can_send() || !s.may_send() && !connecting(s.state()) {
                Poll::Ready(())
            } else {
                s.register_send_waker(cx.waker());
                Poll::Pending
            }
        })
    }

    /// Run one non-blocking `step` and turn its `WouldBlock` into a wait: the waker is
    /// registered for the receive (`recv`) or send direction in the same borrow, so no wake-up
    /// is lost between the check and the registration.
    fn poll_step<T>(
        &self,
        cx: &mut Context<'_>,
        recv: bool,
        step: impl FnOnce(&mut Inner, SocketHandle) -> Result<T, TryError<Error>>,
    ) -> Poll<Result<T, Error>> {
        self.stack.with_mut(|i| match step(i, self.handle) {
            Ok(r) => Poll::Ready(Ok(r)),
            Err(TryError::Other(e)) => Poll::Ready(Err(e)),
            Err(TryError::WouldBlock) => {
                let s = i.sockets.get_mut::<tcp::Socket>(self.handle);
                if recv {
                    s.register_recv_waker(cx.waker());
                } else {
                    s.register_send_waker(cx.waker());
                }
                Poll::Pending
            }
        })
    }

    fn read<'s>(
        &'s mut self,
        buf: &'s mut [u8],
    ) -> impl Future<Output = Result<usize, Error>> + 's {
        poll_fn(move |cx| self.poll_step(cx, true, |i, h| read_step(i, h, buf, false)))
    }

    fn try_read(&mut self, buf: &mut [u8]) -> Result<usize, TryError<Error>> {
        self.stack
            .with_mut(|i| read_step(i, self.handle, buf, false))
    }

    fn try_peek(&mut self, buf: &mut [u8]) -> Result<usize, TryError<Error>> {
        self.stack
            .with_mut(|i| read_step(i, self.handle, buf, true))
    }

    fn write<'s>(&'s mut self, buf: &'s [u8]) -> impl Future<Output = Result<usize, Error>> + 's {
        poll_fn(move |cx| self.poll_step(cx, false, |i, h| write_step(i, h, buf)))
    }

    fn try_write(&mut self, buf: &[u8]) -> Result<usize, TryError<Error>> {
        self.stack.with_mut(|i| write_step(i, self.handle, buf))
    }

    async fn write_with<F, R>(&mut self, f: F) -> Result<R, Error>
    where
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        let mut f = Some(f);
        poll_fn(move |cx| self.poll_step(cx, false, |i, h| write_with_step(i, h, &mut f))).await
    }

    fn try_write_with<F, R>(&mut self, f: F) -> Result<R, TryError<Error>>
    where
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        self.stack
            .with_mut(|i| write_with_step(i, self.handle, &mut Some(f)))
    }

    async fn read_with<F, R>(&mut self, f: F) -> Result<R, Error>
    where
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        let mut f = Some(f);
        poll_fn(move |cx| self.poll_step(cx, true, |i, h| read_with_step(i, h, &mut f))).await
    }

    fn try_read_with<F, R>(&mut self, f: F) -> Result<R, TryError<Error>>
    where
        F: FnOnce(&mut [u8]) -> (usize, R),
    {
        self.stack
            .with_mut(|i| read_with_step(i, self.handle, &mut Some(f)))
    }

    fn flush(&mut self) -> impl Future<Output = Result<(), Error>> + '_ {
        poll_fn(move |cx| self.poll_step(cx, false, flush_step))
    }

    fn try_flush(&mut self) -> Result<(), TryError<Error>> {
        self.stack.with_mut(|i| flush_step(i, self.handle))
    }
}

/// One non-blocking read (or peek, which leaves the data in the buffer).
fn read_step(
    i: &mut Inner,
    handle: SocketHandle,
    buf: &mut [u8],
    peek: bool,
) -> Result<usize, TryError<Error>> {
    let s = i.sockets.get_mut::<tcp::Socket>(handle);
    if buf.is_empty() {
        return Ok(0);
    }
    if s.recv_capacity() == 0 {
        return Err(TryError::Other(Error::InvalidState));
    }
    let res = if peek {
        s.peek_slice(buf)
    } else {
        s.recv_slice(buf)
    };
    match res {
        Ok(0) => Err(TryError::WouldBlock),
        Ok(n) => {
            if !peek {
                // The receive window opened: the runner may have to advertise it.
                i.wake_runner();
            }
            Ok(n)
        }
        Err(tcp::RecvError::Finished) => Ok(0),
        Err(tcp::RecvError::InvalidState) => {
            if connecting(s.state()) {
                Err(TryError::WouldBlock)
            } else {
                Err(TryError::Other(recv_error(s, &i.slots[slot_of(handle)])))
            }
        }
    }
}

/// One non-blocking write.
fn write_step(i: &mut Inner, handle: SocketHandle, buf: &[u8]) -> Result<usize, TryError<Error>> {
    let s = i.sockets.get_mut::<tcp::Socket>(handle);
    if buf.is_empty() {
        return Ok(0);
    }
    if s.send_capacity() == 0 {
        return Err(TryError::Other(Error::InvalidState));
    }
    match s.send_slice(buf) {
        Ok(0) => Err(TryError::WouldBlock),
        Ok(n) => {
            i.wake_runner();
            Ok(n)
        }
        Err(tcp::SendError::InvalidState) => {
            if connecting(s.state()) {
                Err(TryError::WouldBlock)
            } else {
                Err(TryError::Other(send_error(&i.slots[slot_of(handle)])))
            }
        }
    }
}

/// One non-blocking `write_with`; `f` is taken only when it runs.
fn write_with_step<F, R>(
    i: &mut Inner,
    handle: SocketHandle,
    f: &mut Option<F>,
) -> Result<R, TryError<Error>>
where
    F: FnOnce(&mut [u8]) -> (usize, R),
{
    let s = i.sockets.get_mut::<tcp::Socket>(handle);
    if s.send_capacity() == 0 {
        return Err(TryError::Other(Error::InvalidState));
    }
    if !s.can_send() {
        if s.may_send() || connecting(s.state()) {
            return Err(TryError::WouldBlock);
        }
        return Err(TryError::Other(send_error(&i.slots[slot_of(handle)])));
    }
    let Some(f) = f.take() else {
        return Err(TryError::Other(Error::InvalidState));
    };
    let r = match s.send(f) {
        Ok(r) => Ok(r),
        Err(tcp::SendError::InvalidState) => {
            Err(TryError::Other(send_error(&i.slots[slot_of(handle)])))
        }
    };
    i.wake_runner();
    r
}

/// One non-blocking `read_with`; `f` is taken only when it runs (with an empty slice at end
/// of stream).
fn read_with_step<F, R>(
    i: &mut Inner,
    handle: SocketHandle,
    f: &mut Option<F>,
) -> Result<R, TryError<Error>>
where
    F: FnOnce(&mut [u8]) -> (usize, R),
{
    let s = i.sockets.get_mut::<tcp::Socket>(handle);
    if s.recv_capacity() == 0 {
        return Err(TryError::Other(Error::InvalidState));
    }
    if !s.can_recv() {
        if s.may_recv() || connecting(s.state()) {
            return Err(TryError::WouldBlock);
        }
        let Some(f) = f.take() else {
            return Err(TryError::Other(Error::InvalidState));
        };
        return match s.recv_slice(&mut []) {
            // End of stream: tell `f` with an empty slice.
            Err(tcp::RecvError::Finished) => Ok(f(&mut []).1),
            _ => Err(TryError::Other(recv_error(s, &i.slots[slot_of(handle)]))),
        };
    }
    let Some(f) = f.take() else {
        return Err(TryError::Other(Error::InvalidState));
    };
    let r = match s.recv(f) {
        Ok(r) => Ok(r),
        Err(_) => Err(TryError::Other(recv_error(s, &i.slots[slot_of(handle)]))),
    };
    i.wake_runner();
    r
}

/// One non-blocking flush: `Ok` once everything queued (and a FIN or RST) is out and
/// acknowledged.
fn flush_step(i: &mut Inner, handle: SocketHandle) -> Result<(), TryError<Error>> {
    let s = i.sockets.get_mut::<tcp::Socket>(handle);
    let meta = &i.slots[slot_of(handle)];
    let state = s.state();
    // An abort's RST is waited for; after a timeout there is no one to tell.
    let rst_pending =
        state == tcp::State::Closed && s.remote_endpoint().is_some() && !meta.timed_out();
    if rst_pending {
        return Err(TryError::WouldBlock);
    }
    if state == tcp::State::Closed {
        // Data that was never acknowledged is lost, unless the user threw it away.
        return if (s.send_queue() > 0 || meta.data_lost()) && !meta.aborted() {
            Err(TryError::Other(if meta.address_lost {
                Error::NoRoute
            } else if meta.timed_out() {
                Error::TimedOut
            } else {
                Error::ConnectionReset
            }))
        } else {
            Ok(())
        };
    }
    let data_pending = s.send_queue() > 0;
    let fin_pending = matches!(
        state,
        tcp::State::FinWait1 | tcp::State::Closing | tcp::State::LastAck
    );
    if data_pending || fin_pending {
        Err(TryError::WouldBlock)
    } else {
        Ok(())
    }
}

/// States in which the connection is still being set up.
fn connecting(state: tcp::State) -> bool {
    matches!(
        state,
        tcp::State::Listen | tcp::State::SynSent | tcp::State::SynReceived
    )
}

/// The error for a read that found the receive half closed without a FIN.
fn recv_error(s: &tcp::Socket, meta: &SlotMeta) -> Error {
    if meta.address_lost {
        Error::NoRoute
    } else if meta.timed_out() {
        Error::TimedOut
    } else if !meta.used() || meta.aborted() || s.recv_capacity() == 0 {
        Error::InvalidState
    } else {
        Error::ConnectionReset
    }
}

/// The error for a write that found the send half closed.
fn send_error(meta: &SlotMeta) -> Error {
    if meta.address_lost {
        Error::NoRoute
    } else if meta.timed_out() {
        Error::TimedOut
    } else if !meta.used() || meta.aborted() || meta.closed() {
        Error::InvalidState
    } else {
        Error::ConnectionReset
    }
}

mod embedded_io_impls {
    use super::*;

    impl core::fmt::Display for ConnectError {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str(match self {
                Self::InvalidState => "socket already connected or listening",
                Self::ConnectionReset => "connection refused (reset by peer)",
                Self::TimedOut => "connection timed out",
                Self::NoRoute => "no route to host",
            })
        }
    }
    impl core::error::Error for ConnectError {}

    impl embedded_io_async::Error for ConnectError {
        fn kind(&self) -> embedded_io_async::ErrorKind {
            match self {
                ConnectError::ConnectionReset => embedded_io_async::ErrorKind::ConnectionRefused,
                ConnectError::TimedOut => embedded_io_async::ErrorKind::TimedOut,
                ConnectError::NoRoute => embedded_io_async::ErrorKind::AddrNotAvailable,
                ConnectError::InvalidState => embedded_io_async::ErrorKind::Unsupported,
            }
        }
    }

    impl core::fmt::Display for AcceptError {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str(match self {
                Self::InvalidState => "socket already connected or listening",
                Self::InvalidPort => "invalid listen port (0)",
                Self::ConnectionReset => "connection reset while being accepted",
            })
        }
    }
    impl core::error::Error for AcceptError {}

    impl embedded_io_async::Error for AcceptError {
        fn kind(&self) -> embedded_io_async::ErrorKind {
            match self {
                AcceptError::ConnectionReset => embedded_io_async::ErrorKind::ConnectionReset,
                AcceptError::InvalidPort => embedded_io_async::ErrorKind::InvalidInput,
                AcceptError::InvalidState => embedded_io_async::ErrorKind::Unsupported,
            }
        }
    }

    impl core::fmt::Display for Error {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str(match self {
                Self::ConnectionReset => "connection reset by peer",
                Self::TimedOut => "connection timed out",
                Self::InvalidState => {
                    "socket not connected, closed for this direction, or without buffer"
                }
                Self::NoRoute => "no route to host",
                Self::PoolExhausted => "all connections of the TcpClientState are in use",
                Self::SocketTableFull => "socket table full: make StackResources larger",
            })
        }
    }
    impl core::error::Error for Error {}

    impl embedded_io_async::Error for Error {
        fn kind(&self) -> embedded_io_async::ErrorKind {
            match self {
                Error::ConnectionReset => embedded_io_async::ErrorKind::ConnectionReset,
                Error::TimedOut => embedded_io_async::ErrorKind::TimedOut,
                Error::InvalidState => embedded_io_async::ErrorKind::NotConnected,
                Error::NoRoute => embedded_io_async::ErrorKind::AddrNotAvailable,
                Error::PoolExhausted | Error::SocketTableFull => {
                    embedded_io_async::ErrorKind::OutOfMemory
                }
            }
        }
    }

    impl<'d> embedded_io_async::ErrorType for TcpSocket<'d> {
        type Error = Error;
    }

    impl<'d> embedded_io_async::Read for TcpSocket<'d> {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            self.io.read(buf).await
        }
    }

    impl<'d> embedded_io_async::ReadReady for TcpSocket<'d> {
        fn read_ready(&mut self) -> Result<bool, Self::Error> {
            Ok(self
                .io
                .with(|s| s.can_recv() || !s.may_recv() || s.recv_capacity() == 0))
        }
    }

    impl<'d> embedded_io_async::Write for TcpSocket<'d> {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.io.write(buf).await
        }

        async fn flush(&mut self) -> Result<(), Self::Error> {
            self.io.flush().await
        }
    }

    impl<'d> embedded_io_async::WriteReady for TcpSocket<'d> {
        fn write_ready(&mut self) -> Result<bool, Self::Error> {
            Ok(self.io.with(|s| s.can_send()))
        }
    }

    impl<'d> embedded_io_async::ErrorType for TcpReader<'d> {
        type Error = Error;
    }

    impl<'d> embedded_io_async::Read for TcpReader<'d> {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            self.io.read(buf).await
        }
    }

    impl<'d> embedded_io_async::ReadReady for TcpReader<'d> {
        fn read_ready(&mut self) -> Result<bool, Self::Error> {
            Ok(self
                .io
                .with(|s| s.can_recv() || !s.may_recv() || s.recv_capacity() == 0))
        }
    }

    impl<'d> embedded_io_async::ErrorType for TcpWriter<'d> {
        type Error = Error;
    }

    impl<'d> embedded_io_async::Write for TcpWriter<'d> {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.io.write(buf).await
        }

        async fn flush(&mut self) -> Result<(), Self::Error> {
            self.io.flush().await
        }
    }

    impl<'d> embedded_io_async::WriteReady for TcpWriter<'d> {
        fn write_ready(&mut self) -> Result<bool, Self::Error> {
            Ok(self.io.with(|s| s.can_send()))
        }
    }
}
