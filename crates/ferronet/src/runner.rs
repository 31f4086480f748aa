//! The runner: the one task that talks to the driver and drives smoltcp.

use core::future::poll_fn;
use core::task::{Context, Poll};

use embassy_net_driver::{Driver, LinkState};
use embassy_time::Instant;
use smoltcp::iface::PollIngressSingleResult;

use crate::driver_adapter::DriverAdapter;
use crate::ingress::Framing;
use crate::stack::{Inner, Shared, medium_of, to_smoltcp_hardware_address};
use crate::time::{earliest, instant_from_smoltcp, instant_to_smoltcp};

/// Frames taken from the driver in one poll before the runner yields to other tasks.
const RX_BUDGET: usize = 32;
/// Egress passes (each sends at most one packet per socket) in one poll before yielding.
const TX_BUDGET: usize = 32;
/// With SLAAC on and no socket deadline, smoltcp 0.14's `poll_at` returns `None` and drops the
/// SLAAC deadline (router solicitation retries, prefix and route expiry): it takes the minimum
/// of two `Option`s, and `None` is the smallest. The runner then checks the SLAAC state at this
/// interval instead.
#[cfg(feature = "slaac")]
const SLAAC_TICK: embassy_time::Duration = embassy_time::Duration::from_secs(1);
/// While the driver's transmit queue is full, the longest the runner sleeps without a wake-up
/// from the driver.
const TX_FULL_RECHECK: embassy_time::Duration = embassy_time::Duration::from_secs(1);
/// Once a multicast group was joined, the longest the runner sleeps (see [`Runner::run`]).
#[cfg(feature = "multicast")]
const MULTICAST_TICK: embassy_time::Duration = embassy_time::Duration::from_secs(1);
/// Backing off when smoltcp asks to be polled "now" but the poll did nothing at all (no frame
/// in or out, no socket change): this breaks any busy loop, whatever its cause.
///
/// The wait doubles with each such poll in a row, from 1 ms to [`IdleBackoff::MAX`], and starts
/// again at 1 ms after any poll that did something or was asked for a later time. smoltcp 0.14
/// keeps reporting a router solicitation deadline that has passed once SLAAC has sent its last
/// solicitation without an answer (a SLAAC device on a LAN without an IPv6 router): a fixed 1 ms
/// wait then woke the runner a thousand times a second, forever. The longest wait delays a
/// socket timer hidden behind such a deadline by at most [`IdleBackoff::MAX`].
struct IdleBackoff {
    /// Idle "now" polls in a row (capped).
    streak: u8,
}

impl IdleBackoff {
    const FIRST_MS: u64 = 1;
    const MAX: embassy_time::Duration = embassy_time::Duration::from_millis(64);

    const fn new() -> Self {
        Self { streak: 0 }
    }

    /// Another poll that did nothing: how long to wait.
    fn next(&mut self) -> embassy_time::Duration {
        let wait = embassy_time::Duration::from_millis(Self::FIRST_MS << self.streak);
        if wait < Self::MAX {
            self.streak += 1;
        }
        wait.min(Self::MAX)
    }

    fn reset(&mut self) {
        self.streak = 0;
    }
}

/// What one round of frame processing did.
#[derive(Default)]
struct IoResult {
    /// A frame was received or sent.
    progress: bool,
    /// A budget ran out with work left.
    more: bool,
    /// The driver had no room to transmit.
    tx_exhausted: bool,
    /// smoltcp's `poll_at`, if it was asked after the last egress pass.
    poll_at: Option<Option<smoltcp::time::Instant>>,
    /// Egress was deferred to the next poll (see [`Defer`]).
    deferred: bool,
}

/// Deferring the egress pass after a receive, so that it goes out together with the
/// application's answer.
///
/// When a poll received frames, the sockets usually have little to send at once (a delayed
/// ACK at most), while the application that was just woken is about to answer (a response, a
/// read that opens the window). Such a poll skips the egress pass and smoltcp's `poll_at`
/// and wakes the runner again: if the executor runs the woken application first (round-robin
/// and FIFO executors), the next poll sends the ACK with the answer, and one egress pass and
/// one `poll_at` are saved. On a last-in-first-out run queue (embassy-executor) the runner
/// would run again before the application, so the first poll after a deferral that finds no
/// socket operation yet waits one more turn without doing anything ([`Defer::extend`]): the
/// application, polled in the same batch, answers in between. Nothing waits more than two
/// executor turns, two receiving polls never defer in a row, `poll_at` is never asked before
/// the egress pass (smoltcp 0.14 can panic there, see [`Runner::poll`]), and nothing is
/// deferred while a TCP socket is closing ([`defer_safe`]).
///
/// It adapts, for executors and applications where it does not pay: a deferral counts as
/// useful when, by the poll that ends it, a socket operation woke the runner or more frames
/// came in; `credit` goes up by one for each useful deferral (to [`Defer::MAX_CREDIT`]) and
/// down by one for each wasted one; with no credit left, only every
/// [`Defer::PROBE_EVERY`]th receiving poll tries again.
struct Defer {
    /// 0: no deferral under way; 1: the last poll deferred its egress pass; 2: ... and the
    /// poll after it waited one more turn.
    stage: u8,
    /// Above 0: deferring is on, with this much credit. 0 or below: off, counting receiving
    /// polls up to the next try.
    credit: i8,
}

impl Defer {
    const MAX_CREDIT: i8 = 4;
    const PROBE_EVERY: i8 = 120;

    const fn new() -> Self {
        Self {
            stage: 0,
            credit: Self::MAX_CREDIT,
        }
    }

    /// At the start of a poll after a deferral: if no socket operation came in yet, wait one
    /// more executor turn without doing anything (on a last-in-first-out run queue the
    /// application runs right after this poll). At most once per deferral.
    fn extend(&mut self, socket_activity: bool) -> bool {
        if self.stage == 1 && !socket_activity {
            self.stage = 2;
            true
        } else {
            false
        }
    }

    /// A poll received frames (`rx`) after `socket_activity` since the last one: defer its
    /// egress pass? `safe` is asked last, only when the answer would be yes.
    fn decide(&mut self, rx: bool, socket_activity: bool, safe: impl FnOnce() -> bool) -> bool {
        if self.stage != 0 {
            self.stage = 0;
            if rx || socket_activity {
                self.credit = (self.credit.max(0) + 1).min(Self::MAX_CREDIT);
            } else {
                self.credit -= 1;
                if self.credit <= 0 {
                    self.credit = 1 - Self::PROBE_EVERY;
                }
            }
            return false;
        }
        if !rx {
            return false;
        }
        if self.credit <= 0 {
            // Off: count this receive; the one that brings the count to 1 tries.
            self.credit += 1;
        }
        if self.credit > 0 && safe() {
            self.stage = 1;
            true
        } else {
            false
        }
    }
}

/// Whether deferring the egress pass keeps what the application can observe unchanged: every
/// TCP socket is idle, setting up or established. In the other states a frame just received
/// (a FIN, data after our FIN) wants an ACK that must go out before the application can see
/// the end of the stream and drop the socket (which forgets the connection at once, so the ACK
/// would never be sent and a clean close would end in a reset). Nor is it deferred when a
/// socket with a small receive window owes an ACK ([`SmallWindow`](crate::ack_policy::SmallWindow)).
fn defer_safe(sockets: &smoltcp::iface::SocketSet<'_>) -> bool {
    #[cfg(feature = "tcp")]
    {
        use smoltcp::socket::{Socket, tcp::State};
        sockets.iter().all(|(_, s)| match s {
            Socket::Tcp(t) => {
                matches!(
                    t.state(),
                    State::Closed
                        | State::Listen
                        | State::SynSent
                        | State::SynReceived
                        | State::Established
                ) && !crate::ack_policy::SmallWindow::socket_acks_now(t)
            }
            #[allow(unreachable_patterns)]
            _ => true,
        })
    }
    #[cfg(not(feature = "tcp"))]
    {
        let _ = sockets;
        true
    }
}

/// Network stack runner.
///
/// [`Runner::run`] must run in a task for the stack to work. It is the only code that talks to
/// the driver.
pub struct Runner<'d, D: Driver> {
    pub(crate) driver: D,
    pub(crate) shared: &'d Shared,
    defer: Defer,
    idle: IdleBackoff,
    /// IPv4 fragments pending (see `FragGate`).
    #[cfg(feature = "proto-ipv4-fragmentation")]
    frag: crate::driver_adapter::FragGate,
}

impl<'d, D: Driver> Runner<'d, D> {
    pub(crate) fn new(driver: D, shared: &'d Shared) -> Self {
        Self {
            driver,
            shared,
            defer: Defer::new(),
            idle: IdleBackoff::new(),
            #[cfg(feature = "proto-ipv4-fragmentation")]
            frag: crate::driver_adapter::FragGate::default(),
        }
    }

    /// Run the network stack. Never returns.
    ///
    /// The runner sleeps until something needs it: the driver has a frame or room to send
    /// (its waker), a socket or the configuration changed (sockets wake it), or smoltcp's next
    /// timer is due. Each wake-up does a bounded amount of work (at most 32 received frames and
    /// 32 transmit passes) and then yields, so other tasks on the same executor keep running
    /// under load.
    ///
    /// After receiving frames it usually yields before transmitting (for at most two executor
    /// turns, never while a TCP connection is closing), so that the tasks it woke can answer
    /// first and their answer carries the ACK. This adapts to the executor and costs no time.
    pub async fn run(&mut self) -> ! {
        loop {
            poll_fn(|cx| {
                self.poll(cx);
                Poll::<()>::Pending
            })
            .await;
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) {
        let mut state_changed = false;
        #[cfg(feature = "tcp-listener")]
        let syn_held;
        {
            let mut guard = self.shared.inner.borrow_mut();
            let inner: &mut Inner = &mut guard;
            inner.runner_waker.register(cx.waker());
            inner.counters.poll();
            if self.defer.extend(inner.socket_activity) {
                cx.waker().wake_by_ref();
                return;
            }

            // Follow the driver's hardware address.
            match to_smoltcp_hardware_address(self.driver.hardware_address()) {
                Ok((addr, _)) if addr == inner.hardware_address() => inner.foreign_hw = false,
                Ok((addr, medium)) if medium == medium_of(&inner.hardware_address()) => {
                    set_iface_hw_addr(&mut inner.iface, addr);
                    info!("hardware address changed");
                    state_changed = true;
                }
                _ => {
                    if !inner.foreign_hw {
                        inner.foreign_hw = true;
                        warn!("driver changed to an address of another medium; ignored");
                    }
                }
            }

            // Link state. Acted on before any frame moves, so that a DHCP client restarted
            // by a link-up sends exactly one DISCOVER.
            let link_up = self.driver.link_state(cx) == LinkState::Up;
            if link_up != inner.link_up {
                inner.link_up = link_up;
                info!("link up: {}", link_up);
                state_changed = true;
                #[cfg(feature = "dhcpv4")]
                if inner.dhcp_link_changed() {
                    inner.apply_config();
                }
            }

            let now = Instant::now();
            let ts = instant_to_smoltcp(now);
            let keep_alive_due = release_keep_alives(inner, now);
            let io = self.io(cx, inner, ts);
            #[cfg(feature = "tcp-listener")]
            {
                syn_held = inner.listeners.take_wake();
            }

            #[allow(unused_mut)]
            let mut reconfigure = false;
            #[cfg(feature = "dhcpv4")]
            {
                reconfigure |= inner.dhcp_poll();
            }
            #[cfg(feature = "slaac")]
            {
                reconfigure |= inner.slaac_poll(ts);
            }
            if reconfigure {
                inner.apply_config();
                state_changed = true;
            }

            // mDNS responder: answer the queries that came in, probe and announce on time.
            #[cfg(feature = "mdns-responder")]
            let mdns_due = {
                let step = crate::mdns_responder::poll(inner, now);
                state_changed |= step.state_changed;
                step.next
            };
            #[cfg(not(feature = "mdns-responder"))]
            let mdns_due = None;

            let next = if io.more || reconfigure || io.deferred {
                // Budget used up, egress deferred, or the configuration changed: let other
                // tasks run, then continue.
                cx.waker().wake_by_ref();
                None
            } else {
                // With the driver's transmit queue full, the driver wakes the runner when it
                // has room again; a timer at most `TX_FULL_RECHECK` away keeps socket timeouts
                // firing should the driver stay full. `poll_at` is not asked then: a socket
                // whose ACK could not be sent can be in a state where smoltcp 0.14's `poll_at`
                // panics (a FIN received while the advertised window is zero).
                let poll_at = match io.poll_at {
                    _ if io.tx_exhausted => Some(instant_to_smoltcp(now + TX_FULL_RECHECK)),
                    Some(at) if !reconfigure => at,
                    _ => inner.iface.poll_at(ts, &inner.sockets),
                };
                if io.progress || poll_at.is_none_or(|at| at > ts) {
                    self.idle.reset();
                }
                let next = match poll_at {
                    Some(at) if at <= ts => {
                        if io.progress {
                            cx.waker().wake_by_ref();
                            None
                        } else {
                            Some(now + self.idle.next())
                        }
                    }
                    Some(at) => Some(instant_from_smoltcp(at)),
                    #[cfg(feature = "slaac")]
                    None if inner.slaac => Some(now + SLAAC_TICK),
                    None => None,
                };
                // smoltcp answers IGMP/MLD queries after a delay that `poll_at` does not
                // announce: once a group was joined, poll at least once a second.
                #[cfg(feature = "multicast")]
                let next = if inner.multicast_used {
                    earliest(next, Some(now + MULTICAST_TICK))
                } else {
                    next
                };
                earliest(next, keep_alive_due)
            };
            let next = earliest(next, mdns_due);
            // A retransmission that may have been lost is probed on time (see `recovery`), a
            // window update that may have been lost is sent again (see `zero_window`).
            #[cfg(feature = "tcp")]
            let next = match inner.rst_guard.next_timer() {
                Some(ms) => earliest(
                    next,
                    Some(now + embassy_time::Duration::from_millis(ms.into())),
                ),
                None => next,
            };
            arm_timer(cx, now, next);
        }

        if state_changed {
            self.shared.state_waiters.wake_all();
        }
        // Tasks in `TcpListener::accept`: a SYN was held for them.
        #[cfg(feature = "tcp-listener")]
        if syn_held {
            self.shared.listener_waiters.wake_all();
        }
    }

    /// Move frames: up to [`RX_BUDGET`] received frames, then up to [`TX_BUDGET`] egress
    /// passes.
    fn io(
        &mut self,
        cx: &mut Context<'_>,
        inner: &mut Inner,
        ts: smoltcp::time::Instant,
    ) -> IoResult {
        #[cfg(feature = "dhcpv4-server")]
        let dhcp_server_cidr = inner.dhcp_server_cidr();
        let framing = match medium_of(&inner.hardware_address()) {
            #[cfg(feature = "medium-ethernet")]
            smoltcp::phy::Medium::Ethernet => Framing::Ethernet,
            #[cfg(feature = "medium-ip")]
            smoltcp::phy::Medium::Ip => Framing::Ip,
            #[allow(unreachable_patterns)]
            _ => Framing::Unchecked,
        };
        #[cfg(feature = "proto-ipv4-fragmentation")]
        let ip_offset = crate::driver_adapter::ip_offset(medium_of(&inner.hardware_address()));
        #[cfg(any(feature = "tcp-listener", not(feature = "medium-ethernet")))]
        let medium = medium_of(&inner.hardware_address());
        let Inner {
            iface,
            sockets,
            counters,
            slots,
            watched,
            socket_activity,
            #[cfg(feature = "slaac")]
            slaac,
            #[cfg(feature = "slaac")]
            slaac_iface,
            source_filter,
            #[cfg(feature = "medium-ethernet")]
            neighbor_guard,
            #[cfg(feature = "tcp-listener")]
            listeners,
            #[cfg(feature = "tcp")]
            rst_guard,
            #[cfg(feature = "dhcpv4-server")]
            dhcp_server,
            ..
        } = inner;
        source_filter.set_framing(framing);
        // smoltcp's SLAAC changes the addresses itself.
        #[cfg(feature = "slaac")]
        if *slaac_iface {
            source_filter.set_addrs(iface.ip_addrs());
        }
        let filter = &*source_filter;
        #[cfg(feature = "tcp-listener")]
        listeners.set_now(instant_from_smoltcp(ts));
        #[cfg(feature = "tcp")]
        rst_guard.recovery.set_now(ts.total_micros());
        let mut dev = DriverAdapter {
            cx,
            inner: &mut self.driver,
            counters,
            tx_exhausted: false,
            rx_seen: false,
            filter,
            #[cfg(feature = "medium-ethernet")]
            guard: (framing == Framing::Ethernet).then_some(&*neighbor_guard),
            #[cfg(feature = "tcp-listener")]
            listeners: &*listeners,
            #[cfg(feature = "tcp")]
            rst: rst_guard,
            #[cfg(feature = "proto-ipv4-fragmentation")]
            frag: crate::driver_adapter::FragGate {
                ip_offset,
                ..self.frag
            },
        };
        #[cfg(feature = "medium-ethernet")]
        if neighbor_guard.has_given_up() {
            crate::neighbor_guard::answer_given_up(neighbor_guard, iface, sockets, ts, &mut dev);
        }

        iface.poll_maintenance(ts);

        let mut res = IoResult::default();
        let rx_done = receive(
            &mut dev,
            iface,
            sockets,
            ts,
            #[cfg(not(feature = "medium-ethernet"))]
            medium,
            &mut res,
        );
        // A router advertisement taken in just now is applied to the interface by the
        // maintenance step; do it at once, so the new address and route are visible in this
        // poll instead of at some later wake-up.
        #[cfg(feature = "slaac")]
        if *slaac && res.progress {
            iface.poll_maintenance(ts);
        }

        // The DHCP server answers what came in, before the egress pass sends it.
        #[allow(unused_mut)]
        let mut service_more = false;
        #[cfg(feature = "dhcpv4-server")]
        if dhcp_server.is_on() {
            service_more |=
                crate::dhcp_server::serve(dhcp_server, iface, sockets, dhcp_server_cidr, ts);
        }

        let socket_activity = core::mem::take(socket_activity);
        if self
            .defer
            .decide(res.progress, socket_activity, || defer_safe(sockets))
        {
            res.deferred = true;
            res.more = !rx_done || service_more;
            return res;
        }

        // Timeouts only fire during egress; note which watched sockets are open now, to tell
        // a timeout apart from a reset (which arrives during ingress).
        #[cfg(feature = "tcp")]
        if *watched > 0 {
            crate::tcp::before_egress(sockets, slots);
        }
        #[cfg(not(feature = "tcp"))]
        let _ = (&slots, &watched);

        let egress_done = transmit(&mut dev, iface, sockets, ts, &mut res);
        res.tx_exhausted = dev.tx_exhausted;
        #[cfg(feature = "proto-ipv4-fragmentation")]
        {
            self.frag = dev.frag;
        }
        res.more = !rx_done || !egress_done || service_more;

        #[cfg(feature = "tcp")]
        if *watched > 0 {
            crate::tcp::after_egress(sockets, slots);
        }

        #[cfg(feature = "tcp-listener")]
        if listeners.cookies.translating() {
            follow_cookie_connections(&mut dev, iface, sockets, ts, framing, medium, &mut res);
        }
        res
    }
}

/// Take in up to [`RX_BUDGET`] received frames (after a due loss probe), with what the frame
/// guards ask for between them: replays for `recovery`, SYN cookies to send, a pause for
/// tasks in `accept`. Returns whether the driver had no more frames.
fn receive<D: Driver>(
    dev: &mut DriverAdapter<'_, '_, D>,
    iface: &mut smoltcp::iface::Interface,
    sockets: &mut smoltcp::iface::SocketSet<'_>,
    ts: smoltcp::time::Instant,
    #[cfg(not(feature = "medium-ethernet"))] medium: smoltcp::phy::Medium,
    res: &mut IoResult,
) -> bool {
    // Hand `recovery`'s kept frame to smoltcp (a probe, a partial ACK, a rescue).
    #[cfg(feature = "tcp")]
    let replay = |iface: &mut smoltcp::iface::Interface,
                  sockets: &mut smoltcp::iface::SocketSet<'_>,
                  dev: &mut DriverAdapter<'_, '_, D>| {
        replay_kept(
            iface,
            sockets,
            ts,
            dev,
            #[cfg(not(feature = "medium-ethernet"))]
            medium,
        )
    };
    #[cfg(all(not(feature = "tcp"), not(feature = "medium-ethernet")))]
    let _ = medium;
    // SYN-ACKs with cookies left over from the last poll (the driver was full).
    #[cfg(feature = "tcp-listener")]
    if dev.listeners.cookies.has_staged() {
        dev.send_staged();
    }
    // Our window update after a zero window, with no data from the peer since: send it again.
    #[cfg(feature = "tcp")]
    if dev.rst.zero_window.following() && dev.rst.zero_window.due(dev.rst.recovery.now_ms()) {
        debug!("nothing came after our window update: sending it again");
        dev.resend_window_update();
    }
    // The application read from a connection that had advertised a zero window: draw the
    // window update out of smoltcp now, ahead of other sockets' data (see `zero_window`).
    #[cfg(all(feature = "tcp", feature = "medium-ethernet"))]
    if let Some(key) = dev.rst.zero_window.closed_kept() {
        provoke_window_update(iface, sockets, ts, dev, key);
    }
    // A retransmission unanswered for its probe timeout: make smoltcp send it again.
    #[cfg(feature = "tcp")]
    if dev.rst.recovery.probe_due() {
        debug!("a retransmission got no answer: probing");
        replay(iface, sockets, dev);
    }
    for _ in 0..RX_BUDGET {
        match iface.poll_ingress_single(ts, dev, sockets) {
            PollIngressSingleResult::None => return true,
            PollIngressSingleResult::PacketProcessed
            | PollIngressSingleResult::SocketStateChanged => res.progress = true,
        }
        // A partial ACK smoltcp just took: hand it over again as duplicate ACKs, so that
        // smoltcp fast-retransmits the next hole (see `recovery`).
        #[cfg(feature = "tcp")]
        if dev.rst.recovery.pending() {
            replay(iface, sockets, dev);
        }
        // Send SYN cookies: a SYN a full backlog answered with a SYN-ACK of its own.
        #[cfg(feature = "tcp-listener")]
        if dev.listeners.cookies.has_staged() {
            dev.send_staged();
        }
        // A SYN was held for a listener with tasks waiting in `accept`: let them take it.
        #[cfg(feature = "tcp-listener")]
        if dev.listeners.yield_to_accept() {
            return false;
        }
    }
    false
}

/// Up to [`TX_BUDGET`] egress passes. Each pass offers every socket the chance to send one
/// packet. After the first pass that sent something, smoltcp's `poll_at` (needed afterwards
/// anyway, to arm the timer) tells whether any socket has more to send now; asking it is
/// cheaper than another full pass that finds nothing to send, the common case for
/// request/response traffic. When there is more (bulk transfers), passes continue until one
/// sends nothing, without asking again. Returns whether egress is done for this poll.
fn transmit<D: Driver>(
    dev: &mut DriverAdapter<'_, '_, D>,
    iface: &mut smoltcp::iface::Interface,
    sockets: &mut smoltcp::iface::SocketSet<'_>,
    ts: smoltcp::time::Instant,
    res: &mut IoResult,
) -> bool {
    let mut asked = false;
    for _ in 0..TX_BUDGET {
        #[cfg(feature = "proto-ipv4-fragmentation")]
        {
            dev.frag.token = true;
        }
        match iface.poll_egress(ts, dev, sockets) {
            // A pass that only sent the next fragment: more passes send the others.
            #[cfg(feature = "proto-ipv4-fragmentation")]
            smoltcp::iface::PollResult::None
                if dev.frag.pending && !dev.frag.token && !dev.tx_exhausted =>
            {
                res.progress = true;
                continue;
            }
            smoltcp::iface::PollResult::None => return true,
            smoltcp::iface::PollResult::SocketStateChanged => res.progress = true,
        }
        if dev.tx_exhausted {
            return true;
        }
        if !asked {
            asked = true;
            let at = iface.poll_at(ts, sockets);
            if !matches!(at, Some(at) if at <= ts) {
                res.poll_at = Some(at);
                return true;
            }
        }
    }
    false
}

/// Connections that came in through SYN cookies: complete smoltcp's handshake of those whose
/// SYN-ACK just went out, forget those that are over, and give up half-open sockets of
/// unvalidated SYNs when a validated one waits.
#[cfg(feature = "tcp-listener")]
fn follow_cookie_connections<D: Driver>(
    dev: &mut DriverAdapter<'_, '_, D>,
    iface: &mut smoltcp::iface::Interface,
    sockets: &mut smoltcp::iface::SocketSet<'_>,
    ts: smoltcp::time::Instant,
    framing: Framing,
    medium: smoltcp::phy::Medium,
    res: &mut IoResult,
) {
    let listeners = dev.listeners;
    let mut completed = false;
    for _ in 0..crate::tcp::syncookie::TRANSLATED {
        let done = listeners
            .cookies
            .complete_handshake(framing, |frame, conn| {
                let mut injected = crate::inject::Injected::new(frame, medium);
                let _ = iface.poll_ingress_single(ts, &mut injected, sockets);
                crate::tcp::listener::receive_window(sockets, conn)
            });
        if !done {
            break;
        }
        completed = true;
        // The window update for the client.
        dev.send_staged();
    }
    if completed {
        // The sockets are established now: let their tasks run, then poll again.
        res.progress = true;
        res.more = true;
    }
    listeners.sweep_cookie_connections(sockets);
    let given_up = listeners.yield_half_opens(sockets);
    #[cfg(feature = "medium-ethernet")]
    if framing == Framing::Ethernet {
        for addr in given_up {
            crate::neighbor_guard::give_up(iface, sockets, ts, addr);
        }
    }
    #[cfg(not(feature = "medium-ethernet"))]
    let _ = given_up;
}

/// Hand the frame `recovery` kept to smoltcp as it asks (see `recovery`). On Ethernet through
/// the device of the neighbor guard's made-up frames, whose ingress code smoltcp has built
/// already (flash).
#[cfg(feature = "tcp")]
fn replay_kept<D: embassy_net_driver::Driver>(
    iface: &mut smoltcp::iface::Interface,
    sockets: &mut smoltcp::iface::SocketSet<'_>,
    ts: smoltcp::time::Instant,
    dev: &mut DriverAdapter<'_, '_, D>,
    #[cfg(not(feature = "medium-ethernet"))] medium: smoltcp::phy::Medium,
) {
    let guard = dev.rst;
    // Not while only our FIN is outstanding: smoltcp 0.14 would stop resending it (see
    // `lone_fin`); the frame is dropped then.
    let (key, ack) = guard.recovery.kept_for();
    let allowed = !guard.fins.only_fin_left(key, ack);
    guard.recovery.replay(|frame| {
        if !allowed {
            return;
        }
        #[cfg(feature = "medium-ethernet")]
        crate::driver_adapter::ingress_made_up(iface, sockets, ts, dev, frame, false);
        #[cfg(not(feature = "medium-ethernet"))]
        let _ = iface.poll_ingress_single(
            ts,
            &mut crate::inject::Injected::new(frame, medium),
            sockets,
        );
    });
}

/// If the application of connection `key` has read since its zero window, hand smoltcp the
/// segment that makes it answer with the window update at once (`zero_window`), with a
/// transmit token of the driver for the answer; with none free, again at the next poll (the
/// driver wakes the runner when it has room).
#[cfg(all(feature = "tcp", feature = "medium-ethernet"))]
#[cold]
fn provoke_window_update<D: Driver>(
    iface: &mut smoltcp::iface::Interface,
    sockets: &mut smoltcp::iface::SocketSet<'_>,
    ts: smoltcp::time::Instant,
    dev: &mut DriverAdapter<'_, '_, D>,
    key: u64,
) {
    match crate::zero_window::reopened(sockets, key) {
        Some(true) => {}
        Some(false) => return,
        // The connection is gone: nothing to draw out.
        None => return dev.rst.zero_window.provoked(),
    }
    let mut frame = [0; crate::recovery::FRAME_LEN];
    let Some(len) = dev
        .rst
        .zero_window
        .provocation(dev.filter.framing(), &mut frame)
    else {
        dev.rst.zero_window.provoked();
        return;
    };
    debug!("window reopened after a zero window: drawing the update out");
    if crate::driver_adapter::ingress_made_up(iface, sockets, ts, dev, &frame[..len], true) {
        dev.rst.zero_window.provoked();
    }
}

/// Hand keep-alive intervals held back on idle connections to smoltcp once they are due (see
/// `tcp::keep_alive`); returns when the next one is due.
#[inline]
fn release_keep_alives(inner: &mut Inner, now: Instant) -> Option<Instant> {
    #[cfg(feature = "tcp")]
    if inner.keep_alive_held > 0 {
        let (left, next) =
            crate::tcp::keep_alive::release_due(&mut inner.sockets, inner.slots, now);
        inner.keep_alive_held = left;
        return next;
    }
    let _ = (inner, now);
    None
}

/// Make sure the runner is woken at `at` (or earlier); `now` is the time of this poll.
///
/// This registers every time, even when the deadline did not change: embassy-time keeps
/// one deadline per waker, so a driver that schedules its own wake-up with the runner's
/// waker (for example to deliver a delayed frame) replaces the earlier registration. It
/// goes straight to the time driver, which is what `Timer::at(..).poll()` does after
/// reading the clock once more.
fn arm_timer(cx: &mut Context<'_>, now: Instant, at: Option<Instant>) {
    let Some(at) = at else {
        return;
    };
    if at <= now {
        cx.waker().wake_by_ref();
    } else {
        embassy_time_driver::schedule_wake(at.as_ticks(), cx.waker());
    }
}

/// Give the interface a new hardware address (IP-medium interfaces have none).
fn set_iface_hw_addr(iface: &mut smoltcp::iface::Interface, addr: smoltcp::wire::HardwareAddress) {
    match addr {
        #[cfg(feature = "medium-ip")]
        smoltcp::wire::HardwareAddress::Ip => {}
        #[cfg(any(feature = "medium-ethernet", feature = "medium-ieee802154"))]
        #[allow(unreachable_patterns)]
        _ => iface.set_hardware_addr(addr),
    }
    let _ = iface;
}

#[cfg(test)]
mod tests {
    use super::Defer;

    #[test]
    fn defers_after_a_receive_and_judges_by_the_next_poll() {
        let mut d = Defer::new();
        // No frame, no deferral.
        assert!(!d.decide(false, true, || true));
        // A receive defers; the next poll never does, whatever it sees.
        assert!(d.decide(true, false, || true));
        assert!(!d.decide(true, false, || true));
        assert_eq!(d.credit, Defer::MAX_CREDIT);
        // Not when a socket is in a closing state.
        assert!(!d.decide(true, false, || false));
        assert_eq!(d.stage, 0);
    }

    #[test]
    fn wasted_deferrals_stop_it_until_a_probe_pays() {
        let mut d = Defer::new();
        for _ in 0..Defer::MAX_CREDIT {
            assert!(d.decide(true, false, || true));
            // Neither frames nor socket activity by the next poll: wasted.
            assert!(!d.decide(false, false, || true));
        }
        assert!(d.credit <= 0);
        // Out of credit: only every PROBE_EVERY-th receiving poll tries.
        let tries = (0..i32::from(Defer::PROBE_EVERY) * 3)
            .filter(|_| d.decide(true, false, || true) && !d.decide(false, false, || true))
            .count();
        assert_eq!(tries, 3);
        // A try that pays turns it back on.
        while !d.decide(true, false, || true) {}
        assert!(!d.decide(false, true, || true));
        assert_eq!(d.credit, 2);
        assert!(d.decide(true, false, || true));
    }

    #[test]
    fn waits_one_more_turn_at_most_once() {
        let mut d = Defer::new();
        assert!(!d.extend(false));
        assert!(d.decide(true, false, || true));
        // Nothing from the application yet: one more turn, then no more.
        assert!(d.extend(false));
        assert!(!d.extend(false));
        assert!(!d.decide(false, true, || true));
        assert_eq!(d.stage, 0);
        // Activity already there: no extra turn.
        assert!(d.decide(true, false, || true));
        assert!(!d.extend(true));
    }

    #[test]
    fn idle_backoff_doubles_to_its_cap_and_starts_again() {
        use super::IdleBackoff;
        use embassy_time::Duration;
        let mut b = IdleBackoff::new();
        let mut waits = [0u64; 10];
        for w in &mut waits {
            *w = b.next().as_millis();
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 64, 64, 64]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(1));
    }

    #[test]
    fn fits_in_the_runners_padding() {
        assert_eq!(core::mem::size_of::<Defer>(), 2);
    }
}
