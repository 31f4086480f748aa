//! A pool of TCP connections implementing `embedded-nal-async`'s
//! [`TcpConnect`](embedded_nal_async::TcpConnect).
//!
//! Same API as embassy-net 0.9's `tcp::client`: a [`TcpClientState`] holds the buffers of up to
//! `N` connections, a [`TcpClient`] opens [`TcpConnection`]s with them. Differences:
//!
//! - **Dropping a [`TcpConnection`] closes it gracefully.** The data already written is sent,
//!   followed by a FIN, so the peer reads everything and then end of stream. The connection
//!   keeps its slot (and its buffers) in the background until the close has finished: the peer
//!   closed its side too (TIME-WAIT or CLOSED), or the linger time ran out. embassy-net frees
//!   the slot at once and never sends the FIN.
//! - **The linger is bounded.** A closing connection whose peer does not finish the close is
//!   aborted (RST) once the client's timeout ([`TcpClient::set_timeout`]), or
//!   [`DEFAULT_LINGER`] if none is set, has passed since the drop. With a timeout set, a peer
//!   that falls silent is also aborted by the socket's own timeout.
//! - **Slots come back lazily.** Finished closes are collected, and expired ones aborted, by
//!   [`connect`], by [`TcpClient::reclaim`] and by [`TcpClient::wait_closed`] (which waits for
//!   them). A finished close holds its pool slot and its
//!   [`StackResources`](crate::StackResources) slot until then. When `connect` needs the slot
//!   of a close it has just aborted, it takes it without waiting for the RST to go out.
//! - **The background close ends with the [`TcpClient`].** Dropping the client removes every
//!   connection it is still closing from the stack, finished or not (those not yet finished
//!   end as in embassy-net: without FIN). This keeps the buffers safe: the client borrows the
//!   state, so the state cannot be moved or freed while a socket still writes into it. To let
//!   the closes finish, keep the client, or await [`TcpClient::wait_closed`] before dropping
//!   it.
//! - **Errors are precise** ([`Error`]): [`Error::PoolExhausted`] when every slot is in use,
//!   [`Error::SocketTableFull`] when the stack has no socket slot, [`Error::ConnectionReset`]
//!   when the peer refuses, [`Error::TimedOut`], and [`Error::NoRoute`] (also for an address
//!   of a family whose `proto-*` feature is disabled, where embassy-net panics). embassy-net
//!   reports all of these as `ConnectionReset`.
//! - [`TcpConnection`] also implements `ReadReady` and `WriteReady`.
//!
//! [`connect`]: embedded_nal_async::TcpConnect::connect
//!
//! # Example
//!
//! ```no_run
//! # async fn demo(stack: ferronet::Stack<'_>) -> Result<(), ferronet::tcp::Error> {
//! use embedded_io_async::{Read, Write};
//! use embedded_nal_async::TcpConnect;
//! use ferronet::tcp::client::{TcpClient, TcpClientState};
//!
//! let state: TcpClientState<2, 1024, 1024> = TcpClientState::new();
//! let mut client = TcpClient::new(stack, &state);
//! client.set_timeout(Some(embassy_time::Duration::from_secs(10)));
//! let mut conn = client.connect("192.0.2.1:7".parse().unwrap()).await?;
//! conn.write_all(b"hello").await?;
//! let mut buf = [0u8; 5];
//! conn.read_exact(&mut buf).await.map_err(|_| ferronet::tcp::Error::ConnectionReset)?;
//! drop(conn); // closes gracefully in the background
//! client.wait_closed().await; // let the close finish before the client goes away
//! # Ok(())
//! # }
//! ```

use core::cell::{Cell, UnsafeCell};
use core::future::{Future, poll_fn};
use core::mem::ManuallyDrop;
use core::net::SocketAddr;
use core::pin::Pin;
use core::task::Poll;

use embassy_time::{Duration, Instant, Timer};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::IpEndpoint;

use super::{ConnectError, Error, TcpSocket};
use crate::stack::{Inner, Stack, to_ip_address};

/// How long a dropped [`TcpConnection`] may take to finish its close when the client has no
/// timeout ([`TcpClient::set_timeout`]): 10 s. After that the connection is aborted and its slot
/// returns to the pool (the next time the client looks: see the [module documentation](self)).
pub const DEFAULT_LINGER: Duration = Duration::from_secs(10);

/// How long an aborted background close waits for its RST to go out before the socket is
/// removed anyway.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// TCP client: opens connections with the buffers of a [`TcpClientState`], through
/// `embedded-nal-async`'s [`TcpConnect`](embedded_nal_async::TcpConnect).
///
/// Up to `N` connections are open (or closing in the background) at once, each with a
/// `TX_SZ`-byte transmit and an `RX_SZ`-byte receive buffer. See the
/// [module documentation](self) for what happens when a connection is dropped.
pub struct TcpClient<'d, const N: usize, const TX_SZ: usize = 1024, const RX_SZ: usize = 1024> {
    stack: Stack<'d>,
    state: &'d TcpClientState<N, TX_SZ, RX_SZ>,
    socket_timeout: Option<Duration>,
}

impl<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize> TcpClient<'d, N, TX_SZ, RX_SZ> {
    /// Create a client that opens connections on `stack` with the buffers of `state`.
    pub fn new(stack: Stack<'d>, state: &'d TcpClientState<N, TX_SZ, RX_SZ>) -> Self {
        Self {
            stack,
            state,
            socket_timeout: None,
        }
    }

    /// Set the timeout of the connections opened from now on (see
    /// [`TcpSocket::set_timeout`]): a connection that hears nothing from its peer for this
    /// long is aborted, and `connect` gives up after this long.
    ///
    /// It is also the linger of a dropped connection: the time its close may take before it
    /// is aborted. `None` (the default) means no timeout, a connect timeout of
    /// [`DEFAULT_CONNECT_TIMEOUT`](super::DEFAULT_CONNECT_TIMEOUT) and a linger of
    /// [`DEFAULT_LINGER`].
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.socket_timeout = timeout;
    }

    /// Return to the pool the slots of dropped connections whose close has finished, and
    /// abort the closes whose linger has run out. Returns how many slots were freed.
    ///
    /// [`connect`](embedded_nal_async::TcpConnect::connect) does this by itself; call it to
    /// give the stack's socket slots back early.
    pub fn reclaim(&self) -> usize {
        let mut freed = 0;
        self.for_each_closing(false, |_, outcome| {
            if outcome.is_none() {
                freed += 1;
            }
        });
        freed
    }

    /// Wait until every connection of this client that was dropped has finished closing (or
    /// was aborted when its linger ran out), and return their slots to the pool.
    ///
    /// Await this before dropping the client to be sure every close completes (dropping the
    /// client cuts the closes that are still running). Meant for one task at a time: a second
    /// task waiting at once may only notice at the next linger deadline.
    pub async fn wait_closed(&self) {
        poll_fn(|cx| {
            let mut closing = false;
            let mut next: Option<Instant> = None;
            self.for_each_closing(false, |i, outcome| {
                if let Some(c) = outcome {
                    closing = true;
                    next = Some(next.map_or(c.deadline, |n| n.min(c.deadline)));
                    // Nobody else uses the socket any more: its wakers are free for us.
                    i.sockets
                        .get_mut::<tcp::Socket>(c.handle)
                        .register_recv_waker(cx.waker());
                }
            });
            if !closing {
                return Poll::Ready(());
            }
            if let Some(at) = next {
                let mut timer = Timer::at(at);
                if Pin::new(&mut timer).poll(cx).is_ready() {
                    cx.waker().wake_by_ref();
                }
            }
            Poll::Pending
        })
        .await
    }

    /// The linger of the connections opened now.
    fn linger(&self) -> Duration {
        self.socket_timeout.unwrap_or(DEFAULT_LINGER)
    }

    /// Advance every background close of this client's stack (see [`advance`]) and call `f`
    /// with the stack and the close's new state (`None`: finished, slot freed).
    fn for_each_closing(&self, force: bool, mut f: impl FnMut(&mut Inner, Option<Closing>)) {
        let id = stack_id(&self.stack);
        let now = Instant::now();
        self.stack.with_mut(|i| {
            for slot in &self.state.slots {
                let SlotState::Closing(c) = slot.state.get() else {
                    continue;
                };
                if c.stack != id {
                    continue;
                }
                let outcome = advance(i, c, now, force);
                slot.state.set(match outcome {
                    Some(c) => SlotState::Closing(c),
                    None => SlotState::Free,
                });
                f(i, outcome);
            }
        });
    }

    /// Take a free slot. Collects the finished closes first (which also gives their sockets'
    /// slots back to the stack); if no slot is free after that, also removes the aborted
    /// closes whose RST has not gone out yet.
    fn alloc(&self) -> Result<usize, Error> {
        for force in [false, true] {
            self.for_each_closing(force, |_, _| {});
            if let Some(index) = self.state.alloc() {
                return Ok(index);
            }
        }
        Err(Error::PoolExhausted)
    }
}

impl<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize> Drop
    for TcpClient<'d, N, TX_SZ, RX_SZ>
{
    fn drop(&mut self) {
        // The buffers of the sockets closing in the background live in `state`, which this
        // client borrows: once it is gone, the state may move or be freed. So these sockets
        // must leave the stack now, whether their close finished or not.
        let id = stack_id(&self.stack);
        self.stack.with_mut(|i| {
            for slot in &self.state.slots {
                if let SlotState::Closing(c) = slot.state.get()
                    && c.stack == id
                {
                    remove(i, c);
                    slot.state.set(SlotState::Free);
                }
            }
        });
    }
}

impl<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize> embedded_nal_async::TcpConnect
    for TcpClient<'d, N, TX_SZ, RX_SZ>
{
    type Error = Error;
    type Connection<'m>
        = TcpConnection<'m, N, TX_SZ, RX_SZ>
    where
        Self: 'm;

    /// Connect to `remote`.
    ///
    /// Fails with [`Error::NoRoute`] for an address the stack cannot reach (also one of a
    /// family whose `proto-*` feature is disabled), [`Error::PoolExhausted`] when every slot
    /// of the state is in use, [`Error::SocketTableFull`] when the stack has no free socket
    /// slot, [`Error::ConnectionReset`] when the peer refuses and [`Error::TimedOut`] when it
    /// does not answer in time.
    async fn connect<'a>(&'a self, remote: SocketAddr) -> Result<Self::Connection<'a>, Error> {
        let addr = to_ip_address(remote.ip()).ok_or(Error::NoRoute)?;
        let index = self.alloc()?;
        // SAFETY: `alloc` just took the slot (`Free` to `Open`), and this is the one call for
        // it. A `Free` slot's buffers are referenced by nobody (see `PoolSlot`).
        let (rx, tx) = unsafe { self.state.slots[index].buffers() };
        let socket = match TcpSocket::try_new(self.stack, rx, tx) {
            Ok(s) => s,
            Err(_) => {
                // The buffers went into a socket that `try_new` dropped again: unused now.
                self.state.slots[index].state.set(SlotState::Free);
                return Err(Error::SocketTableFull);
            }
        };
        // From here on the connection's `Drop` returns the slot, also when this future is
        // dropped while connecting.
        let mut conn = TcpConnection {
            socket: ManuallyDrop::new(socket),
            state: self.state,
            index,
            linger: self.linger(),
        };
        conn.socket.set_timeout(self.socket_timeout);
        conn.socket
            .connect(IpEndpoint::new(addr, remote.port()))
            .await
            .map_err(|e| match e {
                ConnectError::ConnectionReset => Error::ConnectionReset,
                ConnectError::TimedOut => Error::TimedOut,
                ConnectError::NoRoute => Error::NoRoute,
                ConnectError::InvalidState => Error::InvalidState,
            })?;
        Ok(conn)
    }
}

/// A TCP connection opened by a [`TcpClient`].
///
/// Read and write it with the `embedded-io-async` traits. Dropping it closes the connection
/// gracefully in the background (see the [module documentation](self)).
pub struct TcpConnection<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize> {
    /// Taken out only in `Drop`.
    socket: ManuallyDrop<TcpSocket<'d>>,
    state: &'d TcpClientState<N, TX_SZ, RX_SZ>,
    index: usize,
    linger: Duration,
}

impl<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize>
    TcpConnection<'d, N, TX_SZ, RX_SZ>
{
    /// The local endpoint of the connection.
    ///
    /// Not in embassy-net 0.9.
    pub fn local_endpoint(&self) -> Option<IpEndpoint> {
        self.socket.local_endpoint()
    }

    /// The remote endpoint of the connection.
    ///
    /// Not in embassy-net 0.9.
    pub fn remote_endpoint(&self) -> Option<IpEndpoint> {
        self.socket.remote_endpoint()
    }
}

impl<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize> Drop
    for TcpConnection<'d, N, TX_SZ, RX_SZ>
{
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and nothing reads `self.socket` after this line.
        let mut socket = unsafe { ManuallyDrop::take(&mut self.socket) };
        let slot = &self.state.slots[self.index];
        let finished = socket.io.with(|s| match s.state() {
            tcp::State::TimeWait => true,
            // Never connected, reset, or aborted with the RST already sent.
            tcp::State::Closed => s.remote_endpoint().is_none(),
            _ => false,
        });
        if finished {
            // Removes the socket from the stack: nothing refers to the buffers any more.
            drop(socket);
            slot.state.set(SlotState::Free);
            return;
        }
        socket.close();
        let deadline = Instant::now()
            .checked_add(self.linger)
            .unwrap_or(Instant::MAX);
        let id = stack_id(&socket.io.stack);
        // The socket stays in the stack with the buffers; the slot remembers where it is.
        let (_, handle) = socket.into_parts();
        slot.state.set(SlotState::Closing(Closing {
            stack: id,
            handle,
            deadline,
        }));
    }
}

/// Buffers for the connections of a [`TcpClient`]: `N` pairs of a `TX_SZ`-byte transmit and an
/// `RX_SZ`-byte receive buffer.
///
/// Used through a shared reference; it is `Send` but not `Sync` (it belongs to the executor
/// that runs the stack), like embassy-net's. Put it in a `static` with `static_cell`, or on the
/// stack of a long-running task.
pub struct TcpClientState<const N: usize, const TX_SZ: usize, const RX_SZ: usize> {
    slots: [PoolSlot<TX_SZ, RX_SZ>; N],
}

impl<const N: usize, const TX_SZ: usize, const RX_SZ: usize> TcpClientState<N, TX_SZ, RX_SZ> {
    /// Create a state with `N` free slots.
    pub const fn new() -> Self {
        Self {
            slots: [const { PoolSlot::new() }; N],
        }
    }

    /// Take a free slot.
    fn alloc(&self) -> Option<usize> {
        let index = self
            .slots
            .iter()
            .position(|s| matches!(s.state.get(), SlotState::Free))?;
        self.slots[index].state.set(SlotState::Open);
        Some(index)
    }
}

impl<const N: usize, const TX_SZ: usize, const RX_SZ: usize> Default
    for TcpClientState<N, TX_SZ, RX_SZ>
{
    fn default() -> Self {
        Self::new()
    }
}

/// One connection's buffers and what uses them.
///
/// # Safety argument
///
/// The buffers are handed out as `&mut` only by [`PoolSlot::buffers`], right after the slot
/// went from [`SlotState::Free`] to [`SlotState::Open`]; they then belong to exactly one TCP
/// socket. The slot goes back to `Free` only once that socket can no longer touch them: it
/// was removed from its stack's socket set (or never made it there). While the socket exists
/// the slot is `Open` (a [`TcpConnection`] owns the socket) or `Closing` (the socket closes in
/// the background, and the [`TcpClient`] that borrows the state removes it at the latest when
/// it is dropped). `Cell` and `UnsafeCell` make the type `!Sync`, so all of this happens on
/// one thread, and no state change runs user code in between.
struct PoolSlot<const TX_SZ: usize, const RX_SZ: usize> {
    state: Cell<SlotState>,
    tx: UnsafeCell<[u8; TX_SZ]>,
    rx: UnsafeCell<[u8; RX_SZ]>,
}

impl<const TX_SZ: usize, const RX_SZ: usize> PoolSlot<TX_SZ, RX_SZ> {
    const fn new() -> Self {
        Self {
            state: Cell::new(SlotState::Free),
            tx: UnsafeCell::new([0; TX_SZ]),
            rx: UnsafeCell::new([0; RX_SZ]),
        }
    }

    /// The receive and transmit buffers.
    ///
    /// # Safety
    ///
    /// The slot must have just gone from `Free` to `Open` ([`TcpClientState::alloc`]), and
    /// be called once for that: the returned references must be the only ones until the slot
    /// is `Free` again.
    #[allow(clippy::mut_from_ref)]
    unsafe fn buffers(&self) -> (&mut [u8], &mut [u8]) {
        debug_assert!(matches!(self.state.get(), SlotState::Open));
        // SAFETY: by the caller's promise no other reference to the buffers exists; the two
        // cells are disjoint.
        unsafe { (&mut *self.rx.get(), &mut *self.tx.get()) }
    }
}

/// What a pool slot is used for.
#[derive(Clone, Copy)]
enum SlotState {
    /// Nothing refers to the buffers.
    Free,
    /// A [`TcpConnection`] (or a `connect` in progress) owns the socket with the buffers.
    Open,
    /// A dropped connection closes in the background.
    Closing(Closing),
}

/// Where a connection closing in the background is.
#[derive(Clone, Copy)]
struct Closing {
    /// Identity of the stack whose socket set holds the socket (see [`stack_id`]).
    stack: usize,
    handle: SocketHandle,
    /// When the close is aborted (or, once aborted, when the socket is removed without
    /// waiting any longer for its RST to go out).
    deadline: Instant,
}

/// The identity of a stack: the address of its shared state. Only compared, never turned back
/// into a pointer. Two live stacks never share it, and no background close outlives the
/// client (hence the stack) that made it.
fn stack_id(stack: &Stack<'_>) -> usize {
    core::ptr::from_ref(stack.shared).addr()
}

/// Move a background close on: remove its socket when the close finished (TIME-WAIT, or
/// CLOSED with nothing left to send), abort it when its deadline passed, and with `force` also
/// remove a socket that is CLOSED with its RST still unsent. Returns the close's new state, or
/// `None` when the socket is gone and the slot may be freed.
fn advance(i: &mut Inner, mut c: Closing, now: Instant, force: bool) -> Option<Closing> {
    if !present(i, &c) {
        return None;
    }
    let s = i.sockets.get_mut::<tcp::Socket>(c.handle);
    let expired = now >= c.deadline;
    let done = match s.state() {
        tcp::State::TimeWait => true,
        tcp::State::Closed => s.remote_endpoint().is_none() || force || expired,
        _ if expired => {
            // The peer did not finish the close in time.
            s.abort();
            i.wake_runner();
            c.deadline = now.checked_add(ABORT_GRACE).unwrap_or(Instant::MAX);
            force
        }
        _ => false,
    };
    if done {
        remove(i, c);
        None
    } else {
        Some(c)
    }
}

/// Remove a background close's socket from the stack.
fn remove(i: &mut Inner, c: Closing) {
    if present(i, &c) {
        i.remove_socket(c.handle);
    }
}

/// Is the socket of `c` still in the stack? (It always is: only this module removes it. The
/// check keeps a broken invariant from becoming a panic.)
fn present(i: &Inner, c: &Closing) -> bool {
    i.has_socket(c.handle)
}

impl<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize> embedded_io_async::ErrorType
    for TcpConnection<'d, N, TX_SZ, RX_SZ>
{
    type Error = Error;
}

impl<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize> embedded_io_async::Read
    for TcpConnection<'d, N, TX_SZ, RX_SZ>
{
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.socket.read(buf).await
    }
}

impl<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize> embedded_io_async::ReadReady
    for TcpConnection<'d, N, TX_SZ, RX_SZ>
{
    fn read_ready(&mut self) -> Result<bool, Error> {
        embedded_io_async::ReadReady::read_ready(&mut *self.socket)
    }
}

impl<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize> embedded_io_async::Write
    for TcpConnection<'d, N, TX_SZ, RX_SZ>
{
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        self.socket.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.socket.flush().await
    }
}

impl<'d, const N: usize, const TX_SZ: usize, const RX_SZ: usize> embedded_io_async::WriteReady
    for TcpConnection<'d, N, TX_SZ, RX_SZ>
{
    fn write_ready(&mut self) -> Result<bool, Error> {
        embedded_io_async::WriteReady::write_ready(&mut *self.socket)
    }
}
