//! A TCP listener with a listen backlog (cargo feature `tcp-listener`).
//!
//! With plain [`TcpSocket::accept`], a SYN that arrives while no socket is in accept is
//! answered with a RST: a server with four sockets resets the fifth client that connects
//! while all four are busy. A [`TcpListener`] holds such SYNs instead, in a backlog of
//! [`BACKLOG`] entries per listener, without any buffer for them, and hands them out one at
//! a time from [`accept`](TcpListener::accept) as an [`AcceptToken`]. A socket takes the token
//! with [`TcpSocket::accept_token`]: the held SYN is handed to smoltcp there and then, so the
//! SYN-ACK leaves on the runner's next poll and the client sees an ordinary handshake, with
//! no extra round trip.
//!
//! ```no_run
//! # async fn demo(stack: ferronet::Stack<'_>) -> Result<(), ferronet::tcp::AcceptError> {
//! use ferronet::tcp::TcpSocket;
//! use ferronet::tcp::listener::TcpListener;
//!
//! let mut listener = TcpListener::new(stack).expect("listener table full");
//! listener.listen(80).expect("port 80 free");
//! let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
//! loop {
//!     let token = listener.accept().await?;
//!     // token.remote_endpoint() tells who is calling, before any buffer is committed.
//!     let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
//!     if socket.accept_token(token).await.is_err() {
//!         continue; // the client went away (RST), or the handshake never completed
//!     }
//!     // ... serve, then close and flush ...
//! #   break;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Several tasks may wait in `accept` on one listener (share `&TcpListener`); each held SYN
//! goes to one of them.
//!
//! # Semantics
//!
//! - A SYN to the listened endpoint is held when the backlog has room. When it is full, the
//!   SYN is answered with a SYN cookie (see [`syncookie`]): a SYN-ACK
//!   built by ferronet that keeps nothing. The client's ACK proves it exists; the connection
//!   then enters the backlog, ahead of the held SYNs (it takes the place of the oldest one
//!   when there is no room), and `accept` hands such connections out first. A cookie ACK that
//!   finds the backlog full of validated connections (or the table of cookie connections
//!   full) is dropped: the client probes again (its window is zero until a socket takes it).
//!   A SYN is dropped silently (no RST) only when its cookie SYN-ACK cannot be sent (the
//!   staging area of 2 frames is full, a broadcast link address): the client retransmits it.
//! - A retransmitted SYN (same address and port pair) replaces its own entry; it never makes
//!   a second token. A SYN for a connection already handed to a socket goes to that socket.
//! - A RST from the client for a held SYN (its sequence number the SYN's, or the SYN's plus
//!   one) removes the entry.
//! - A held SYN that no socket takes expires [`SYN_HOLD`] after the last copy of it came in.
//! - SYNs to a port without a listener are smoltcp's as before: a socket in `accept` takes
//!   it, otherwise it gets a RST. Every segment other than a SYN or a RST for a held SYN is
//!   also smoltcp's, untouched.
//! - A SYN is checked (IP and TCP checksums, addressed to one of the interface's addresses)
//!   before it is held; a bad one is left to smoltcp, which drops it.
//! - A socket that took a token and whose SYN-ACK is not acknowledged within
//!   [`HALF_OPEN_TIMEOUT`](super::HALF_OPEN_TIMEOUT) (a spoofed SYN) gives up silently:
//!   `accept_token` fails with [`AcceptError::ConnectionReset`]. It gives up after
//!   [`HALF_OPEN_YIELD`] already when a connection validated by a cookie waits for a socket
//!   and no task waits in `accept` for it.
//!
//! # Limits
//!
//! - At most [`MAX_LISTENERS`] listeners per stack ([`ListenerTableFull`] otherwise).
//! - [`BACKLOG`] is 4, or 8 or 16 with the cargo features `tcp-listener-backlog-8` /
//!   `tcp-listener-backlog-16`. Each entry keeps the SYN's frame (up to
//!   [`HELD_FRAME_LEN`] bytes: a larger SYN, with IPv4 options or data, is dropped).
//! - A flood of spoofed SYNs fills the backlog and nothing else; legitimate clients get in
//!   through SYN cookies: in the simulator, 16 of 16 clients connecting during floods of 100,
//!   1,000 and 10,000 spoofed SYNs a second against 4 sockets and a backlog of 4 were served
//!   while the flood lasted, the last 14 s after they started (their zero window probes back
//!   off; `tests/tests/listener.rs`). What cookies cannot do: connections through a cookie
//!   have no window scaling, SACK or timestamps and one of four MSS values; a client whose
//!   ACK finds no room waits for its next probe; a cookie is good for 192 to 256 s.
//! - Do not also put plain sockets in [`TcpSocket::accept`] on a listened port: the listener
//!   takes every SYN for it.
//! - Ethernet and IP media only: on IEEE 802.15.4 (6LoWPAN, compressed headers) SYNs are not
//!   held and go to smoltcp as without a listener.
//! - Not in embassy-net (0.9 or main); the names follow the brief of issue 11.

use core::cell::{Cell, RefCell};

use embassy_time::{Duration, Instant};
use smoltcp::socket::{AnySocket, tcp};
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint, IpProtocol, TcpPacket};

use super::syncookie::{self, Conn, Cookies, Phase, SynCookieStats};
use super::{AcceptError, TcpSocket, forget_connection};
use crate::ingress::{Framing, SourceFilter};
use crate::stack::{Stack, medium_of};
use crate::waitq::WaitFor;

/// Held SYNs per listener: 4, or 8 / 16 with the cargo features `tcp-listener-backlog-8` /
/// `tcp-listener-backlog-16`.
pub const BACKLOG: usize = if cfg!(feature = "tcp-listener-backlog-16") {
    16
} else if cfg!(feature = "tcp-listener-backlog-8") {
    8
} else {
    4
};

/// Listeners a stack can have at once.
pub const MAX_LISTENERS: usize = 2;

/// How long a held SYN is kept, counted from the last copy of it received.
pub const SYN_HOLD: Duration = Duration::from_secs(10);

/// The largest SYN frame held: an Ethernet header, an IPv6 header and a TCP header with 40
/// bytes of options.
pub const HELD_FRAME_LEN: usize = 14 + 40 + 60;

/// Connections handed to sockets that are remembered, so that a retransmitted SYN of theirs
/// goes to the socket instead of becoming a new backlog entry.
const RECENT: usize = 8;

/// How long a connection handed to a socket is remembered (see [`RECENT`]).
const RECENT_FOR: Duration = Duration::from_secs(10);

/// How long a socket that took a SYN without a cookie stays half-open at least when a
/// connection validated by a SYN cookie waits for a socket; after that it gives up (as after
/// [`HALF_OPEN_TIMEOUT`](super::HALF_OPEN_TIMEOUT)) and its task can take the validated
/// connection. A client that exists answers a SYN-ACK within a round trip; a spoofed SYN
/// never does.
pub const HALF_OPEN_YIELD: Duration = Duration::from_secs(1);

/// Error returned by [`TcpListener::new`]: the stack already has [`MAX_LISTENERS`]
/// listeners.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ListenerTableFull;

impl core::fmt::Display for ListenerTableFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "listener table full ({MAX_LISTENERS} listeners per stack)"
        )
    }
}
impl core::error::Error for ListenerTableFull {}

/// Error returned by [`TcpListener::listen`].
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ListenError {
    /// The listener is already listening; [`close`](TcpListener::close) it first.
    InvalidState,
    /// Port 0.
    InvalidPort,
    /// Another listener of the stack listens on an overlapping endpoint.
    AddressInUse,
}

impl core::fmt::Display for ListenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::InvalidState => "listener already listening",
            Self::InvalidPort => "invalid listen port (0)",
            Self::AddressInUse => "another listener listens on this endpoint",
        })
    }
}
impl core::error::Error for ListenError {}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum HeldState {
    Free,
    /// Waiting for `accept`.
    Held,
    /// Handed out in a token that no socket has taken yet.
    Given,
}

/// The address of an empty entry.
#[cfg(feature = "proto-ipv4")]
pub(crate) const NO_ADDR: IpAddress = IpAddress::Ipv4(smoltcp::wire::Ipv4Address::UNSPECIFIED);
#[cfg(not(feature = "proto-ipv4"))]
pub(crate) const NO_ADDR: IpAddress = IpAddress::Ipv6(smoltcp::wire::Ipv6Address::UNSPECIFIED);

/// A SYN held in the backlog.
#[derive(Clone, Copy)]
struct HeldSyn {
    state: HeldState,
    /// Tells a token's entry from a later SYN in the same place.
    id: u32,
    /// When the last copy came in.
    since: Instant,
    remote: IpEndpoint,
    local: IpEndpoint,
    isn: u32,
    /// Came in through a SYN cookie (the frame is a SYN made up from the client's ACK).
    validated: bool,
    len: u8,
    frame: [u8; HELD_FRAME_LEN],
}

impl HeldSyn {
    const EMPTY: Self = Self {
        state: HeldState::Free,
        id: 0,
        since: Instant::from_ticks(0),
        remote: IpEndpoint::new(NO_ADDR, 0),
        local: IpEndpoint::new(NO_ADDR, 0),
        isn: 0,
        validated: false,
        len: 0,
        frame: [0; HELD_FRAME_LEN],
    };

    fn is_of(&self, seg: &Segment) -> bool {
        self.state != HeldState::Free && self.remote == seg.remote && self.local == seg.local
    }

    fn store(&mut self, seg: &Segment, frame: &[u8], now: Instant) {
        self.remote = seg.remote;
        self.local = seg.local;
        self.isn = seg.seq;
        self.validated = false;
        self.since = now;
        self.len = frame.len() as u8;
        self.frame[..frame.len()].copy_from_slice(frame);
    }
}

/// A connection recently handed to a socket.
#[derive(Clone, Copy)]
struct Recent {
    remote: IpEndpoint,
    local: IpEndpoint,
    until: Instant,
}

struct Listener {
    in_use: bool,
    endpoint: Option<IpListenEndpoint>,
    /// Tasks inside `accept`.
    accepting: u16,
    held: [HeldSyn; BACKLOG],
}

impl Listener {
    const EMPTY: Self = Self {
        in_use: false,
        endpoint: None,
        accepting: 0,
        held: [HeldSyn::EMPTY; BACKLOG],
    };

    fn matches(&self, local: &IpEndpoint) -> bool {
        matches!(self.endpoint, Some(e) if e.port == local.port
            && e.addr.is_none_or(|a| a == local.addr))
    }

    /// Forget held SYNs no copy of which came for [`SYN_HOLD`].
    fn expire(&mut self, now: Instant) {
        for h in &mut self.held {
            if h.state == HeldState::Held && now >= h.since + SYN_HOLD {
                h.state = HeldState::Free;
            }
        }
    }

    fn held_count(&self) -> usize {
        self.held
            .iter()
            .filter(|h| h.state != HeldState::Free)
            .count()
    }
}

impl State {
    /// Whether a backlog holds the validated connection `c`.
    fn holds(&self, c: &Conn) -> bool {
        self.listeners.iter().any(|l| {
            l.held.iter().any(|h| {
                h.state != HeldState::Free
                    && h.validated
                    && h.remote == c.remote
                    && h.local == c.local
            })
        })
    }
}

struct State {
    listeners: [Listener; MAX_LISTENERS],
    recent: [Option<Recent>; RECENT],
    next_recent: u8,
    next_id: u32,
}

/// The stack's listeners and their backlogs (a field of the stack's shared state). The
/// runner's receive path reaches it through a shared reference (see [`Table::withholds`]),
/// the sockets through `&mut`.
pub(crate) struct Table {
    state: RefCell<State>,
    /// Listeners listening: when 0, received frames are not looked at.
    listening: Cell<u8>,
    /// A SYN was held since the runner last asked: wake the tasks in `accept`.
    wake: Cell<bool>,
    /// A SYN was held that a task in `accept` can take at once.
    yield_now: Cell<bool>,
    /// The time of the runner's current poll (see [`Table::set_now`]).
    now: Cell<Instant>,
    /// SYN cookies and the connections that came in through them.
    pub(crate) cookies: Cookies,
    /// The IP MTU, for the MSS offered in a cookie SYN-ACK.
    ip_mtu: u16,
    /// A connection validated by a cookie may be waiting for a socket.
    validated_waiting: Cell<bool>,
}

/// What [`Table::withholds`] needs of a TCP segment.
struct Segment {
    remote: IpEndpoint,
    local: IpEndpoint,
    seq: u32,
    ack_number: u32,
    window: u16,
    syn: bool,
    ack: bool,
    rst: bool,
    /// The frame up to the end of the IP packet (no link-layer padding or trailer).
    len: usize,
}

/// A held SYN taken out of the backlog by a socket.
struct Claimed {
    local: IpEndpoint,
    /// The client, and whether a SYN cookie validated it (its link address is then known).
    #[cfg_attr(not(feature = "medium-ethernet"), allow(dead_code))]
    remote: IpEndpoint,
    #[cfg_attr(not(feature = "medium-ethernet"), allow(dead_code))]
    validated: bool,
    len: usize,
    frame: [u8; HELD_FRAME_LEN],
}

impl Table {
    /// The table of a stack with this seed (which keys the SYN cookies) and IP MTU.
    pub(crate) fn new(seed: u64, ip_mtu: u16) -> Self {
        Self {
            state: RefCell::new(State {
                listeners: [const { Listener::EMPTY }; MAX_LISTENERS],
                recent: [None; RECENT],
                next_recent: 0,
                next_id: 1,
            }),
            listening: Cell::new(0),
            wake: Cell::new(false),
            yield_now: Cell::new(false),
            now: Cell::new(Instant::from_ticks(0)),
            cookies: Cookies::new(seed),
            ip_mtu,
            validated_waiting: Cell::new(false),
        }
    }

    /// The runner tells the time of its poll, before it takes frames.
    pub(crate) fn set_now(&self, now: Instant) {
        self.now.set(now);
    }

    /// Whether a SYN was held since the last call (the runner then wakes `accept`).
    pub(crate) fn take_wake(&self) -> bool {
        self.wake.take()
    }

    /// Whether the runner should stop taking frames for now, so that a task waiting in
    /// `accept` takes the SYN just held before more arrive: without this, a burst of SYNs
    /// taken in one poll would find the backlog full although sockets wait for them.
    pub(crate) fn yield_to_accept(&self) -> bool {
        self.yield_now.take()
    }

    /// Called by the runner for every received frame that passed the source filter: whether
    /// to keep it from smoltcp (it was held, answered with a SYN cookie or dropped because
    /// the backlog is full, was a RST for a held SYN, or an ACK that carried a valid cookie
    /// or belongs to such a connection not yet taken by a socket).
    pub(crate) fn withholds(&self, frame: &[u8], filter: &SourceFilter) -> bool {
        if self.listening.get() == 0 {
            return false;
        }
        let Some(seg) = parse_tcp(frame, filter.framing()) else {
            return false;
        };
        let now = self.now.get();
        // An ACK matters only while cookies are out or their connections are in the table.
        let cookie_ack = seg.ack
            && !seg.syn
            && !seg.rst
            && (self.cookies.translating() || self.cookies.may_validate(now));
        if !(seg.syn || seg.rst || cookie_ack) || !filter.is_own(&seg.local.addr) {
            return false;
        }
        let Ok(mut st) = self.state.try_borrow_mut() else {
            return false;
        };
        let st = &mut *st;
        let Some(li) = st.listeners.iter().position(|l| l.matches(&seg.local)) else {
            return false;
        };
        if seg.rst {
            let l = &mut st.listeners[li];
            if let Some(h) = l.held.iter_mut().find(|h| h.is_of(&seg))
                && (seg.seq == h.isn || seg.seq == h.isn.wrapping_add(1))
            {
                debug!("RST for a held SYN: removed");
                h.state = HeldState::Free;
                return true;
            }
            return false;
        }
        if cookie_ack {
            return self.cookie_ack(st, li, &seg, frame, filter.framing(), now);
        }
        if seg.ack {
            return false;
        }
        let l = &mut st.listeners[li];
        // A SYN. One for a connection handed to a socket is that socket's.
        if st
            .recent
            .iter()
            .flatten()
            .any(|r| r.remote == seg.remote && r.local == seg.local && now < r.until)
        {
            return false;
        }
        l.expire(now);
        if let Some(h) = l.held.iter_mut().find(|h| h.is_of(&seg)) {
            // A retransmission (or a new attempt from the same port): the latest copy wins.
            if seg.len <= HELD_FRAME_LEN {
                h.store(&seg, &frame[..seg.len], now);
            }
            return true;
        }
        if seg.len > HELD_FRAME_LEN {
            return true;
        }
        if let Some(h) = l.held.iter_mut().find(|h| h.state == HeldState::Free) {
            h.store(&seg, &frame[..seg.len], now);
            h.state = HeldState::Held;
            h.id = st.next_id;
            st.next_id = st.next_id.wrapping_add(1);
            self.wake.set(true);
            let waiting = l.held.iter().filter(|h| h.state == HeldState::Held).count();
            if waiting <= usize::from(l.accepting) {
                self.yield_now.set(true);
            }
        } else {
            let answered = self.send_cookie(&seg, frame, filter.framing(), now);
            debug!(
                "listen backlog full: SYN answered with a cookie: {}",
                answered
            );
        }
        true
    }

    /// Answer a SYN with a cookie SYN-ACK (staged for the runner to send); `false` if it
    /// cannot be (staging area full, a link address that is not unicast).
    fn send_cookie(&self, seg: &Segment, frame: &[u8], framing: Framing, now: Instant) -> bool {
        let Some((tcp, _, _)) = syncookie::locate(frame, framing, true) else {
            return false;
        };
        let mss = frame
            .get(tcp..seg.len)
            .and_then(|t| TcpPacket::new_checked(t).ok())
            .and_then(|t| t.options_summary().ok())
            .and_then(|o| o.max_segment_size);
        let mut link = [0u8; 14];
        if framing == Framing::Ethernet {
            // To the sender's link address, from the one the SYN was sent to: both unicast.
            let Some(h) = frame.get(..14) else {
                return false;
            };
            if h[0] & 1 != 0 || h[6] & 1 != 0 {
                return false;
            }
            link[..6].copy_from_slice(&h[6..12]);
            link[6..12].copy_from_slice(&h[..6]);
            link[12..].copy_from_slice(&h[12..14]);
        }
        let header = match seg.local.addr {
            #[cfg(feature = "proto-ipv4")]
            IpAddress::Ipv4(_) => 40,
            #[cfg(feature = "proto-ipv6")]
            IpAddress::Ipv6(_) => 60,
        };
        let counter = syncookie::counter(now.as_secs());
        let cookie = self
            .cookies
            .key
            .make(&seg.local, &seg.remote, seg.seq, mss, counter);
        let reply = syncookie::Segment {
            src: seg.local,
            dst: seg.remote,
            control: smoltcp::wire::TcpControl::Syn,
            seq: cookie,
            ack: Some(seg.seq.wrapping_add(1)),
            window: syncookie::COOKIE_WINDOW,
            mss: Some(self.ip_mtu.saturating_sub(header)),
        };
        let staged = self
            .cookies
            .stage(|buf| syncookie::build(buf, framing, &link, &reply));
        if staged {
            self.cookies.sent_at(now.as_secs());
        }
        staged
    }

    /// An ACK (no SYN, no RST) to a listened endpoint while cookies are in use: withheld when
    /// it belongs to a connection that came in through a cookie and that no socket has made
    /// established yet, or when it carries a valid cookie (the connection then waits in the
    /// backlog, ahead of held SYNs). Anything else is smoltcp's (a RST answers a stray ACK).
    fn cookie_ack(
        &self,
        st: &mut State,
        li: usize,
        seg: &Segment,
        frame: &[u8],
        framing: Framing,
        now: Instant,
    ) -> bool {
        match self.cookies.phase_of(&seg.local, &seg.remote) {
            Some(Phase::Active) => return false,
            // Dropped until smoltcp's handshake is done; the client sends it again.
            Some(_) => return true,
            None => {}
        }
        // The ISN is the sequence number less one (the ACK of the handshake, data, a zero
        // window probe of one byte), or the sequence number itself (a zero window probe
        // below the window, as Linux sends them).
        let counter = syncookie::counter(now.as_secs());
        let cookie = seg.ack_number.wrapping_sub(1);
        let Some((isn, mss)) = [seg.seq.wrapping_sub(1), seg.seq]
            .into_iter()
            .find_map(|isn| {
                let mss = self
                    .cookies
                    .key
                    .check(&seg.local, &seg.remote, isn, cookie, counter)?;
                Some((isn, mss))
            })
        else {
            return false;
        };
        let l = &mut st.listeners[li];
        l.expire(now);
        // A free entry, or else the oldest held SYN that came without a cookie.
        let slot = match l.held.iter().position(|h| h.state == HeldState::Free) {
            Some(i) => i,
            None => match l
                .held
                .iter()
                .enumerate()
                .filter(|(_, h)| h.state == HeldState::Held && !h.validated)
                .min_by_key(|(_, h)| h.since)
            {
                Some((i, _)) => i,
                None => {
                    debug!("backlog full of validated connections: cookie ACK dropped");
                    return true;
                }
            },
        };
        let mut link = [0u8; 14];
        if framing == Framing::Ethernet
            && let Some(h) = frame.get(..14)
        {
            link.copy_from_slice(h);
        }
        let conn = Conn {
            phase: Phase::Reserved,
            local: seg.local,
            remote: seg.remote,
            cookie: seg.ack_number.wrapping_sub(1),
            client_isn: isn,
            window: seg.window,
            delta: 0,
            link,
        };
        let syn = syncookie::Segment {
            src: seg.remote,
            dst: seg.local,
            control: smoltcp::wire::TcpControl::Syn,
            seq: isn,
            ack: None,
            window: seg.window,
            mss: Some(mss),
        };
        // Built aside: the entry it replaces stays as it is unless the table has room.
        let mut frame = [0u8; HELD_FRAME_LEN];
        let Some(len) = syncookie::build(&mut frame, framing, &link, &syn) else {
            return false;
        };
        if !self.cookies.reserve(conn) {
            debug!("table of cookie connections full: cookie ACK dropped");
            return true;
        }
        let h = &mut l.held[slot];
        h.frame = frame;
        debug!("cookie ACK validated");
        self.cookies
            .validated
            .set(self.cookies.validated.get().wrapping_add(1));
        h.remote = seg.remote;
        h.local = seg.local;
        h.isn = isn;
        h.since = now;
        h.len = len as u8;
        h.validated = true;
        h.state = HeldState::Held;
        h.id = st.next_id;
        st.next_id = st.next_id.wrapping_add(1);
        self.wake.set(true);
        self.validated_waiting.set(true);
        let waiting = l.held.iter().filter(|h| h.state == HeldState::Held).count();
        if waiting <= usize::from(l.accepting) {
            self.yield_now.set(true);
        }
        true
    }

    /// Runner, after egress: while connections validated by a cookie wait in a backlog and no
    /// task waits in `accept` for them, sockets half-open for [`HALF_OPEN_YIELD`] on a SYN
    /// that came without a cookie (most likely spoofed) give up, so their tasks take the
    /// validated connections instead of waiting out [`HALF_OPEN_TIMEOUT`](super::HALF_OPEN_TIMEOUT).
    ///
    /// Returns the remote addresses of the connections given up: smoltcp keeps a socket
    /// silent for up to a second after its last connection's neighbor did not answer (the
    /// spoofed address), also for its next connection, unless that neighbor is known; the
    /// runner gives them up (`neighbor_guard::give_up`).
    pub(crate) fn yield_half_opens(
        &self,
        sockets: &mut smoltcp::iface::SocketSet<'_>,
    ) -> heapless::Vec<IpAddress, 4> {
        let mut given_up = heapless::Vec::new();
        if !self.validated_waiting.get() {
            return given_up;
        }
        let Ok(st) = self.state.try_borrow() else {
            return given_up;
        };
        let now = self.now.get();
        let mut waiting = [0usize; MAX_LISTENERS];
        for (w, l) in waiting.iter_mut().zip(&st.listeners) {
            *w = l
                .held
                .iter()
                .filter(|h| h.state == HeldState::Held && h.validated)
                .count();
        }
        if waiting.iter().all(|&w| w == 0) {
            self.validated_waiting.set(false);
            return given_up;
        }
        for (w, l) in waiting.iter_mut().zip(&st.listeners) {
            *w = w.saturating_sub(usize::from(l.accepting));
        }
        for (_, s) in sockets.iter_mut() {
            let Some(s) = tcp::Socket::downcast_mut(s) else {
                continue;
            };
            if s.state() != tcp::State::SynReceived {
                continue;
            }
            let (Some(local), Some(remote)) = (s.local_endpoint(), s.remote_endpoint()) else {
                continue;
            };
            let Some(li) = st.listeners.iter().position(|l| l.matches(&local)) else {
                continue;
            };
            if waiting[li] == 0 || self.cookies.phase_of(&local, &remote).is_some() {
                continue;
            }
            let young = st.recent.iter().flatten().any(|r| {
                r.remote == remote
                    && r.local == local
                    && now + RECENT_FOR < r.until + HALF_OPEN_YIELD
            });
            if young || given_up.push(remote.addr).is_err() {
                continue;
            }
            debug!("half-open connection given up for one validated by a SYN cookie");
            s.abort();
            forget_connection(s);
            waiting[li] -= 1;
        }
        given_up
    }

    /// Runner, after egress, when connections came in through cookies: forget those that are
    /// over (their socket closed, reused or gone; a validated connection no longer in a
    /// backlog).
    pub(crate) fn sweep_cookie_connections(&self, sockets: &smoltcp::iface::SocketSet<'_>) {
        let now = self.now.get();
        let mut st = self.state.try_borrow_mut().ok();
        if let Some(st) = st.as_deref_mut() {
            for l in &mut st.listeners {
                l.expire(now);
            }
        }
        self.cookies.retain(|c| match c.phase {
            Phase::Reserved => st.as_deref().is_none_or(|st| st.holds(c)),
            _ => sockets.iter().any(|(_, s)| {
                tcp::Socket::downcast(s).is_some_and(|s| {
                    !matches!(s.state(), tcp::State::Closed | tcp::State::Listen)
                        && s.local_endpoint() == Some(c.local)
                        && s.remote_endpoint() == Some(c.remote)
                })
            }),
        });
    }

    /// A table with one listener listening on `ep` (tests elsewhere in the crate).
    #[cfg(test)]
    pub(crate) fn listening_for_test(seed: u64, ip_mtu: u16, ep: IpListenEndpoint) -> Self {
        let mut t = Self::new(seed, ip_mtu);
        if let Some(i) = t.open() {
            let _ = t.listen(i, ep);
        }
        t
    }

    fn open(&mut self) -> Option<u8> {
        let st = self.state.get_mut();
        let (i, l) = st
            .listeners
            .iter_mut()
            .enumerate()
            .find(|(_, l)| !l.in_use)?;
        l.in_use = true;
        Some(i as u8)
    }

    fn listener(&mut self, index: u8) -> Option<&mut Listener> {
        self.state.get_mut().listeners.get_mut(usize::from(index))
    }

    fn listen(&mut self, index: u8, ep: IpListenEndpoint) -> Result<(), ListenError> {
        if ep.port == 0 {
            return Err(ListenError::InvalidPort);
        }
        let st = self.state.get_mut();
        let overlaps = |e: &IpListenEndpoint| {
            e.port == ep.port && (e.addr.is_none() || ep.addr.is_none() || e.addr == ep.addr)
        };
        for (i, l) in st.listeners.iter().enumerate() {
            match l.endpoint {
                Some(_) if i == usize::from(index) => return Err(ListenError::InvalidState),
                Some(e) if overlaps(&e) => return Err(ListenError::AddressInUse),
                _ => {}
            }
        }
        if let Some(l) = st.listeners.get_mut(usize::from(index)) {
            l.endpoint = Some(ep);
            self.listening.set(self.listening.get() + 1);
        }
        Ok(())
    }

    fn close(&mut self, index: u8) {
        let Some(l) = self.listener(index) else {
            return;
        };
        let was = l.endpoint.take().is_some();
        l.held = [HeldSyn::EMPTY; BACKLOG];
        // Validated connections no longer held: forgotten (their clients retry).
        let st = self.state.get_mut();
        self.cookies
            .retain(|c| c.phase != Phase::Reserved || st.holds(c));
        if was {
            self.listening.set(self.listening.get().saturating_sub(1));
        }
    }

    fn release(&mut self, index: u8) {
        self.close(index);
        if let Some(l) = self.listener(index) {
            l.in_use = false;
        }
    }

    /// The oldest connection validated by a SYN cookie, else the oldest held SYN, now handed
    /// out; `Ok(None)` when there is none.
    fn take(&mut self, index: u8) -> Result<Option<TokenData>, AcceptError> {
        let now = Instant::now();
        let Some(l) = self.listener(index) else {
            return Err(AcceptError::InvalidState);
        };
        if l.endpoint.is_none() {
            return Err(AcceptError::InvalidState);
        }
        l.expire(now);
        let Some((slot, h)) = l
            .held
            .iter_mut()
            .enumerate()
            .filter(|(_, h)| h.state == HeldState::Held)
            .min_by_key(|(_, h)| (!h.validated, h.since))
        else {
            return Ok(None);
        };
        h.state = HeldState::Given;
        Ok(Some(TokenData {
            listener: index,
            slot: slot as u8,
            id: h.id,
            remote: h.remote,
            local: h.local,
        }))
    }

    fn entry(&mut self, t: &TokenData) -> Option<&mut HeldSyn> {
        self.listener(t.listener)?
            .held
            .get_mut(usize::from(t.slot))
            .filter(|h| h.state == HeldState::Given && h.id == t.id)
    }

    /// A token was dropped unused: its SYN waits for the next `accept`.
    fn give_back(&mut self, t: &TokenData) -> bool {
        match self.entry(t) {
            Some(h) => {
                h.state = HeldState::Held;
                true
            }
            None => false,
        }
    }

    /// A socket takes the SYN of token `t`; `None` if it is gone (RST, listener closed).
    fn claim(&mut self, t: &TokenData) -> Option<Claimed> {
        let h = self.entry(t)?;
        h.state = HeldState::Free;
        let c = Claimed {
            local: h.local,
            remote: h.remote,
            validated: h.validated,
            len: usize::from(h.len),
            frame: h.frame,
        };
        let (remote, validated) = (h.remote, h.validated);
        if validated {
            self.cookies.claim(&c.local, &remote);
        }
        let st = self.state.get_mut();
        let at = usize::from(st.next_recent) % RECENT;
        st.recent[at] = Some(Recent {
            remote,
            local: c.local,
            until: Instant::now() + RECENT_FOR,
        });
        st.next_recent = ((at + 1) % RECENT) as u8;
        Some(c)
    }
}

/// The receive window (unscaled, at most 65535) of the established socket of a connection
/// that came in through a cookie; `None` if no socket has it established.
pub(crate) fn receive_window(sockets: &smoltcp::iface::SocketSet<'_>, conn: &Conn) -> Option<u16> {
    sockets.iter().find_map(|(_, s)| {
        let s = tcp::Socket::downcast(s)?;
        (s.state() == tcp::State::Established
            && s.local_endpoint() == Some(conn.local)
            && s.remote_endpoint() == Some(conn.remote))
        .then(|| (s.recv_capacity() - s.recv_queue()).min(usize::from(u16::MAX)) as u16)
    })
}

/// Parse the TCP segment in `frame`, if it is one (not fragmented, checksums right).
fn parse_tcp(frame: &[u8], framing: Framing) -> Option<Segment> {
    let ip = framing.ip_packet(frame)?;
    let ip_off = frame.len() - ip.len();
    let (src, dst, payload, ip_len): (IpAddress, IpAddress, &[u8], usize) = match ip.first()? >> 4 {
        #[cfg(feature = "proto-ipv4")]
        4 => {
            let p = smoltcp::wire::Ipv4Packet::new_checked(ip).ok()?;
            if p.next_header() != IpProtocol::Tcp
                || p.more_frags()
                || p.frag_offset() != 0
                || !p.verify_checksum()
            {
                return None;
            }
            let len = usize::from(p.total_len());
            (p.src_addr().into(), p.dst_addr().into(), p.payload(), len)
        }
        #[cfg(feature = "proto-ipv6")]
        6 => {
            let p = smoltcp::wire::Ipv6Packet::new_checked(ip).ok()?;
            if p.next_header() != IpProtocol::Tcp {
                return None;
            }
            let len = 40 + usize::from(p.payload_len());
            (p.src_addr().into(), p.dst_addr().into(), p.payload(), len)
        }
        _ => return None,
    };
    let t = TcpPacket::new_checked(payload).ok()?;
    if !t.verify_checksum(&src, &dst) {
        return None;
    }
    Some(Segment {
        remote: IpEndpoint::new(src, t.src_port()),
        local: IpEndpoint::new(dst, t.dst_port()),
        seq: t.seq_number().0 as u32,
        ack_number: t.ack_number().0 as u32,
        window: t.window_len(),
        syn: t.syn(),
        ack: t.ack(),
        rst: t.rst(),
        len: ip_off + ip_len,
    })
}

/// What a token names.
#[derive(Clone, Copy)]
struct TokenData {
    listener: u8,
    slot: u8,
    id: u32,
    remote: IpEndpoint,
    local: IpEndpoint,
}

/// A TCP listener with a backlog (see the [module documentation](self)).
pub struct TcpListener<'d> {
    stack: Stack<'d>,
    index: u8,
}

/// A held connection request, from [`TcpListener::accept`]: give it to
/// [`TcpSocket::accept_token`] to answer it. Dropped unused, its SYN goes back to the backlog
/// for the next `accept`.
pub struct AcceptToken<'d> {
    stack: Stack<'d>,
    data: TokenData,
}

impl AcceptToken<'_> {
    /// The client's address and port.
    pub fn remote_endpoint(&self) -> IpEndpoint {
        self.data.remote
    }

    /// The local address and port the client connects to.
    pub fn local_endpoint(&self) -> IpEndpoint {
        self.data.local
    }

    /// Take the token apart without giving its SYN back.
    fn into_data(self) -> TokenData {
        let data = self.data;
        core::mem::forget(self);
        data
    }
}

fn same_stack(a: &Stack<'_>, b: &Stack<'_>) -> bool {
    core::ptr::eq(a.shared, b.shared)
}

impl Drop for AcceptToken<'_> {
    fn drop(&mut self) {
        let back = self.stack.with_mut(|i| i.listeners.give_back(&self.data));
        if back {
            self.stack.shared.listener_waiters.wake_all();
        }
    }
}

impl core::fmt::Debug for AcceptToken<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AcceptToken")
            .field("remote", &self.data.remote)
            .field("local", &self.data.local)
            .finish()
    }
}

impl<'d> TcpListener<'d> {
    /// A listener on `stack`, not listening yet; [`ListenerTableFull`] when the stack has
    /// [`MAX_LISTENERS`] already.
    pub fn new(stack: Stack<'d>) -> Result<Self, ListenerTableFull> {
        let index = stack
            .with_mut(|i| i.listeners.open())
            .ok_or(ListenerTableFull)?;
        Ok(Self { stack, index })
    }

    /// Listen on `local_endpoint` (a port, or an address and port): from now on SYNs to it
    /// are held in the backlog.
    pub fn listen<T: Into<IpListenEndpoint>>(
        &mut self,
        local_endpoint: T,
    ) -> Result<(), ListenError> {
        let ep = local_endpoint.into();
        self.stack.with_mut(|i| i.listeners.listen(self.index, ep))
    }

    /// Wait for a held SYN and hand it out as a token (the oldest first).
    ///
    /// Fails with [`AcceptError::InvalidState`] when the listener is not listening (or is
    /// closed while waiting).
    pub async fn accept(&self) -> Result<AcceptToken<'d>, AcceptError> {
        let _accepting = Accepting::new(self);
        let mut out = Err(AcceptError::InvalidState);
        WaitFor::new(&self.stack.shared.listener_waiters, || {
            match self.stack.with_mut(|i| i.listeners.take(self.index)) {
                Ok(None) => false,
                Ok(Some(d)) => {
                    out = Ok(d);
                    true
                }
                Err(e) => {
                    out = Err(e);
                    true
                }
            }
        })
        .await;
        out.map(|data| AcceptToken {
            stack: self.stack,
            data,
        })
    }

    /// Stop listening: held SYNs are dropped silently (their clients retry, and get a RST
    /// unless the port is listened on again), tokens not yet taken become invalid, and tasks
    /// waiting in `accept` get [`AcceptError::InvalidState`]. Connections already handed to
    /// sockets are not touched.
    pub fn close(&mut self) {
        self.stack.with_mut(|i| i.listeners.close(self.index));
        self.stack.shared.listener_waiters.wake_all();
    }

    /// Whether the listener is listening.
    pub fn is_open(&self) -> bool {
        self.local_addr().is_some()
    }

    /// The endpoint listened on, or `None` when not listening.
    pub fn local_addr(&self) -> Option<IpListenEndpoint> {
        self.stack
            .with_mut(|i| i.listeners.listener(self.index).and_then(|l| l.endpoint))
    }

    /// What the stack's SYN cookies did (all its listeners together): see the
    /// [`syncookie`] module.
    pub fn syn_cookies(&self) -> SynCookieStats {
        self.stack.with(|i| i.listeners.cookies.stats())
    }

    /// How many SYNs the backlog holds now (handed-out tokens included), at most [`BACKLOG`].
    pub fn backlog_len(&self) -> usize {
        let now = Instant::now();
        self.stack.with_mut(|i| {
            i.listeners.listener(self.index).map_or(0, |l| {
                l.expire(now);
                l.held_count()
            })
        })
    }
}

/// Counts a task inside `TcpListener::accept` (see [`Table::yield_to_accept`]).
struct Accepting<'a, 'd>(&'a TcpListener<'d>);

impl<'a, 'd> Accepting<'a, 'd> {
    fn new(l: &'a TcpListener<'d>) -> Self {
        l.stack.with_mut(|i| {
            if let Some(l) = i.listeners.listener(l.index) {
                l.accepting = l.accepting.saturating_add(1);
            }
        });
        Self(l)
    }
}

impl Drop for Accepting<'_, '_> {
    fn drop(&mut self) {
        let index = self.0.index;
        self.0.stack.with_mut(|i| {
            if let Some(l) = i.listeners.listener(index) {
                l.accepting = l.accepting.saturating_sub(1);
            }
        });
    }
}

impl Drop for TcpListener<'_> {
    fn drop(&mut self) {
        self.stack.with_mut(|i| i.listeners.release(self.index));
        self.stack.shared.listener_waiters.wake_all();
    }
}

impl<'a> TcpSocket<'a> {
    /// Answer the connection request of `token` (from [`TcpListener::accept`]) on this socket
    /// and wait until the connection is established. ferronet's name: embassy-net main
    /// overloads `accept`, which in embassy-net 0.9 (and here) takes a local endpoint.
    ///
    /// The held SYN is handed to smoltcp at once; the SYN-ACK leaves on the runner's next
    /// poll. Fails with [`AcceptError::InvalidState`] if the socket is open (connected,
    /// connecting, listening or in TIME-WAIT) or the token is from another stack (the token
    /// then goes back to its listener), and with [`AcceptError::ConnectionReset`] if the
    /// request is gone (reset by the client, listener closed) or the handshake does not
    /// complete within [`HALF_OPEN_TIMEOUT`](super::HALF_OPEN_TIMEOUT).
    pub async fn accept_token(&mut self, token: AcceptToken<'_>) -> Result<(), AcceptError> {
        if !same_stack(&token.stack, &self.io.stack) || self.io.with(|s| s.is_open()) {
            return Err(AcceptError::InvalidState);
        }
        let data = token.into_data();
        self.start_accept_token(&data)?;
        self.wait_accepted(None).await
    }

    /// Put the socket in SYN-RECEIVED with the token's SYN.
    fn start_accept_token(&mut self, data: &TokenData) -> Result<(), AcceptError> {
        let handle = self.io.handle;
        self.io.stack.with_mut(|i| {
            let claimed = i
                .listeners
                .claim(data)
                .ok_or(AcceptError::ConnectionReset)?;
            let medium = medium_of(&i.hardware_address());
            let s = i.sockets.get_mut::<tcp::Socket>(handle);
            let local = IpListenEndpoint {
                addr: Some(claimed.local.addr),
                port: claimed.local.port,
            };
            if s.listen(local).is_err() {
                return Err(AcceptError::InvalidState);
            }
            let ts = crate::time::instant_to_smoltcp(Instant::now());
            // The client proved with its cookie that it is at the link address it sent the
            // ACK from: smoltcp need not ask for it (on a network flooded with spoofed SYNs,
            // smoltcp's one neighbor lookup a second is taken by the spoofed addresses).
            #[cfg(feature = "medium-ethernet")]
            if claimed.validated && medium == smoltcp::phy::Medium::Ethernet {
                let mac = smoltcp::wire::EthernetAddress::from_bytes(&claimed.frame[6..12]);
                crate::neighbor_guard::fill_neighbor(
                    &mut i.iface,
                    &mut i.sockets,
                    ts,
                    claimed.remote.addr,
                    mac,
                );
            }
            let mut dev = crate::inject::Injected::new(&claimed.frame[..claimed.len], medium);
            let _ = i.iface.poll_ingress_single(ts, &mut dev, &mut i.sockets);
            let s = i.sockets.get_mut::<tcp::Socket>(handle);
            if s.state() != tcp::State::SynReceived {
                // smoltcp did not take it (another socket listening on the port did).
                s.abort();
                forget_connection(s);
                return Err(AcceptError::ConnectionReset);
            }
            i.slot(handle).begin_connection();
            i.wake_runner();
            Ok(())
        })
    }
}

#[cfg(all(
    test,
    feature = "proto-ipv4",
    feature = "proto-ipv6",
    feature = "medium-ethernet"
))]
mod tests {
    extern crate std;
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::*;
    use std::vec::Vec;

    const OWN4: Ipv4Address = Ipv4Address::new(192, 0, 2, 2);
    const OWN6: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const PEER6: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

    fn filter() -> SourceFilter {
        SourceFilter::new(
            Framing::Ethernet,
            &[
                IpCidr::Ipv4(Ipv4Cidr::new(OWN4, 24)),
                IpCidr::Ipv6(Ipv6Cidr::new(OWN6, 64)),
            ],
        )
    }

    fn tcp(control: TcpControl, seq: i32) -> TcpRepr<'static> {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            control,
            seq_number: TcpSeqNumber(seq),
            ack_number: None,
            window_len: 1000,
            window_scale: Some(7),
            max_seg_size: Some(1440),
            sack_permitted: true,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        }
    }

    /// An Ethernet frame with an IPv6 TCP segment from PEER6 to `dst`.
    fn v6(t: &TcpRepr<'_>, dst: Ipv6Address) -> Vec<u8> {
        let ip = Ipv6Repr {
            src_addr: PEER6,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: t.buffer_len(),
            hop_limit: 64,
        };
        let mut f = std::vec![0u8; 14 + ip.buffer_len() + t.buffer_len()];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        let mut p = Ipv6Packet::new_unchecked(&mut f[14..]);
        ip.emit(&mut p);
        t.emit(
            &mut TcpPacket::new_unchecked(p.payload_mut()),
            &PEER6.into(),
            &dst.into(),
            &ChecksumCapabilities::default(),
        );
        f
    }

    fn listening(port: u16) -> Table {
        let mut t = Table::new(1, 1500);
        t.set_now(Instant::from_secs(100));
        let i = t.open().unwrap();
        t.listen(i, IpListenEndpoint::from(port)).unwrap();
        t
    }

    fn held(t: &mut Table) -> usize {
        t.listener(0).unwrap().held_count()
    }

    #[test]
    fn an_ipv6_syn_is_held_and_its_rst_removes_it() {
        let mut t = listening(80);
        let f = filter();
        assert!(t.withholds(&v6(&tcp(TcpControl::Syn, 5), OWN6), &f));
        assert_eq!(held(&mut t), 1);
        assert!(t.take_wake());
        // The held frame is the SYN, without padding.
        let h = t.listener(0).unwrap().held[0];
        assert_eq!(
            usize::from(h.len),
            14 + 40 + tcp(TcpControl::Syn, 5).buffer_len()
        );
        assert_eq!(h.remote, IpEndpoint::new(PEER6.into(), 40000));
        assert!(t.withholds(&v6(&tcp(TcpControl::Rst, 6), OWN6), &f));
        assert_eq!(held(&mut t), 0);
    }

    #[test]
    fn what_is_not_held() {
        let mut t = listening(80);
        let f = filter();
        // Not to one of our addresses.
        let other = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9);
        assert!(!t.withholds(&v6(&tcp(TcpControl::Syn, 5), other), &f));
        // A bad checksum.
        let mut bad = v6(&tcp(TcpControl::Syn, 5), OWN6);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(!t.withholds(&bad, &f));
        // Another port, an ACK, a SYN-ACK, a truncated frame, a RST for nothing held.
        let mut other_port = tcp(TcpControl::Syn, 5);
        other_port.dst_port = 81;
        assert!(!t.withholds(&v6(&other_port, OWN6), &f));
        let mut ack = tcp(TcpControl::None, 5);
        ack.ack_number = Some(TcpSeqNumber(1));
        assert!(!t.withholds(&v6(&ack, OWN6), &f));
        let mut synack = tcp(TcpControl::Syn, 5);
        synack.ack_number = Some(TcpSeqNumber(1));
        assert!(!t.withholds(&v6(&synack, OWN6), &f));
        assert!(!t.withholds(&v6(&tcp(TcpControl::Syn, 5), OWN6)[..60], &f));
        assert!(!t.withholds(&v6(&tcp(TcpControl::Rst, 5), OWN6), &f));
        assert_eq!(held(&mut t), 0);
        // Nothing at all when no listener listens.
        t.close(0);
        assert!(!t.withholds(&v6(&tcp(TcpControl::Syn, 5), OWN6), &f));
    }

    #[test]
    fn a_full_backlog_drops_and_a_retransmission_replaces() {
        let mut t = listening(80);
        let f = filter();
        for port in 0..BACKLOG as u16 + 3 {
            let mut s = tcp(TcpControl::Syn, 5);
            s.src_port = 1000 + port;
            assert!(t.withholds(&v6(&s, OWN6), &f));
        }
        assert_eq!(held(&mut t), BACKLOG);
        // The first one again, with a new sequence number: replaced, not added.
        let mut again = tcp(TcpControl::Syn, 77);
        again.src_port = 1000;
        assert!(t.withholds(&v6(&again, OWN6), &f));
        assert_eq!(held(&mut t), BACKLOG);
        let first = t
            .listener(0)
            .unwrap()
            .held
            .iter()
            .find(|h| h.remote.port == 1000)
            .unwrap()
            .isn;
        assert_eq!(first, 77);
    }
}
