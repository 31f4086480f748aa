//! Adapter from an `embassy-net-driver` [`Driver`] to a smoltcp [`phy::Device`].
//!
//! The adapter is built afresh for every poll of the runner: it borrows the driver and the
//! runner task's [`Context`], so that a driver that has nothing to give registers the runner's
//! waker, and records what happened (frames in and out, transmit queue exhausted) in
//! [`Counters`](crate::Counters).
//!
//! It also hands smoltcp frames the stack made up itself ([`DriverAdapter::made_up`]), through
//! a device whose transmit token has the driver adapter's type: smoltcp's transmit code is
//! generic over the token type and would otherwise be built twice (about 0.7 KB on Cortex-M).

use core::task::Context;

use embassy_net_driver::{Capabilities, Checksum, Driver, RxToken, TxToken};
use smoltcp::phy::{self, Medium};
use smoltcp::time::Instant;

use crate::ingress::SourceFilter;
#[cfg(feature = "medium-ethernet")]
use crate::neighbor_guard::NeighborGuard;
#[cfg(feature = "tcp")]
use crate::rst_guard::Screen;
use crate::stats::CounterStore;

/// The transmit token adapter for a driver token (`Option`: `None` sends nothing) handed out
/// by the adapter `$dev`; `$gated`: the token came through the fragment gate. A macro, not a
/// method: the driver's token still borrows `$dev.inner`.
macro_rules! tx_token_adapter {
    ($dev:expr, $token:expr, $gated:expr) => {
        TxTokenAdapter {
            token: $token,
            counters: &mut *$dev.counters,
            hooks: Sent {
                #[cfg(feature = "medium-ethernet")]
                guard: $dev.guard,
                #[cfg(feature = "tcp")]
                rst: ($dev.filter.framing(), $dev.rst),
                #[cfg(feature = "tcp-listener")]
                cookies: &$dev.listeners.cookies,
                #[cfg(feature = "proto-ipv4-fragmentation")]
                frag: (&mut $dev.frag, $gated),
                _borrows: core::marker::PhantomData,
            },
        }
    };
}

pub(crate) struct DriverAdapter<'d, 'c, T: Driver> {
    pub cx: &'d mut Context<'c>,
    pub inner: &'d mut T,
    pub counters: &'d mut CounterStore,
    /// Set when the driver refused to hand out a transmit token during this poll.
    pub tx_exhausted: bool,
    /// Set when the driver handed out at least one received frame during this poll.
    pub rx_seen: bool,
    /// Checks the source of every received packet.
    pub filter: &'d SourceFilter,
    /// Watches neighbor solicitations and answers (Ethernet medium only).
    #[cfg(feature = "medium-ethernet")]
    pub guard: Option<&'d NeighborGuard>,
    /// Holds SYNs for TCP listeners.
    #[cfg(feature = "tcp-listener")]
    pub listeners: &'d crate::tcp::listener::Table,
    /// Checks TCP resets against what was acknowledged.
    #[cfg(feature = "tcp")]
    pub rst: &'d crate::rst_guard::RstGuard,
    /// IPv4 fragments still to be sent, and the transmit token of the current egress pass.
    #[cfg(feature = "proto-ipv4-fragmentation")]
    pub frag: FragGate,
}

impl<'d, 'c, T: Driver> DriverAdapter<'d, 'c, T> {
    /// A device that hands smoltcp `frame`, made up by the stack (`neighbor_guard`'s answers),
    /// once, without the checks and counters of received frames. Its transmit token has this
    /// adapter's type, so that smoltcp's transmit code is built once; what smoltcp writes into
    /// it goes nowhere (see [`sink`]).
    #[cfg(feature = "medium-ethernet")]
    pub(crate) fn made_up<'x>(&'x mut self, frame: &'x [u8]) -> MadeUp<'x, 'd, 'c, T> {
        MadeUp {
            frame: Some(frame),
            dev: self,
            answered: false,
        }
    }
}

/// Hand smoltcp `frame` through [`DriverAdapter::made_up`]; with `answered`, with a transmit
/// token of the driver for smoltcp's answer, and only if the driver has one free. Whether the
/// frame was handed over. Never inlined: the neighbor guard, the recovery guard and
/// `zero_window` share one copy of smoltcp's ingress code for it (flash).
#[cfg(feature = "medium-ethernet")]
#[inline(never)]
pub(crate) fn ingress_made_up<T: Driver>(
    iface: &mut smoltcp::iface::Interface,
    sockets: &mut smoltcp::iface::SocketSet<'_>,
    ts: Instant,
    dev: &mut DriverAdapter<'_, '_, T>,
    frame: &[u8],
    answered: bool,
) -> bool {
    let mut made_up = dev.made_up(frame);
    made_up.answered = answered;
    let result = iface.poll_ingress_single(ts, &mut made_up, sockets);
    !matches!(result, smoltcp::iface::PollIngressSingleResult::None)
}

/// See [`DriverAdapter::made_up`].
#[cfg(feature = "medium-ethernet")]
pub(crate) struct MadeUp<'x, 'd, 'c, T: Driver> {
    frame: Option<&'x [u8]>,
    dev: &'x mut DriverAdapter<'d, 'c, T>,
    /// smoltcp's answer is sent: the frame is handed over only with a transmit token of the
    /// driver (none free: not handed over).
    answered: bool,
}

#[cfg(feature = "medium-ethernet")]
impl<T: Driver> phy::Device for MadeUp<'_, '_, '_, T> {
    type RxToken<'a>
        = MadeUpRx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxTokenAdapter<'a, T::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.frame.take()?;
        let dev = &mut *self.dev;
        let token = if self.answered {
            Some(dev.inner.transmit(dev.cx)?)
        } else {
            None
        };
        Some((MadeUpRx(frame), tx_token_adapter!(dev, token, false)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        None
    }

    fn capabilities(&self) -> phy::DeviceCapabilities {
        device_capabilities(self.dev.inner)
    }
}

/// The receive token of a made-up frame.
#[cfg(feature = "medium-ethernet")]
pub(crate) struct MadeUpRx<'a>(&'a [u8]);

#[cfg(feature = "medium-ethernet")]
impl phy::RxToken for MadeUpRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
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

    /// Follow the fragments in a frame just written on a token from `transmit` (`gated`) or
    /// from `receive` (smoltcp's answers while receiving).
    fn sent(&mut self, frame: &[u8], gated: bool) {
        match self.fragment(frame) {
            // More fragments follow: no other token in this pass.
            Some(true) => {
                self.pending = true;
                self.token = false;
            }
            // The last fragment.
            Some(false) => self.pending = false,
            // While fragments are pending, smoltcp's next fragment takes each pass's token
            // first: a whole packet on it means there are none left.
            None if gated => self.pending = false,
            None => {}
        }
    }

    /// `Some(more fragments follow)` if `frame` carries an IPv4 fragment, else `None`.
    fn fragment(&self, frame: &[u8]) -> Option<bool> {
        let off = usize::from(self.ip_offset?);
        if off != 0 && frame.get(12..14) != Some(&[0x08, 0x00][..]) {
            return None;
        }
        let ip = frame.get(off..off + 8)?;
        if ip[0] >> 4 != 4 {
            return None;
        }
        let flags_offset = u16::from_be_bytes([ip[6], ip[7]]);
        if flags_offset & 0x2000 != 0 {
            Some(true)
        } else if flags_offset & 0x1fff != 0 {
            Some(false)
        } else {
            None
        }
    }
}

impl<T: Driver> DriverAdapter<'_, '_, T> {
    /// Send the SYN-ACKs with cookies that the listeners staged while receiving, as long as
    /// the driver has room (what is left waits for the next call; the staging area drops
    /// what does not fit, and the clients retransmit their SYNs).
    #[cfg(feature = "tcp-listener")]
    pub(crate) fn send_staged(&mut self) {
        let cookies = &self.listeners.cookies;
        while cookies.has_staged() {
            let Some(token) = self.inner.transmit(self.cx) else {
                self.tx_exhausted = true;
                self.counters.tx_queue_full();
                return;
            };
            self.counters.tx_frame();
            cookies.send_staged(|frame| write_frame(token, frame));
        }
    }

    /// Send again the window update `zero_window` kept (it is due). Without room in the
    /// driver the re-send is counted as made (no busy loop while the driver is full).
    #[cfg(feature = "tcp")]
    #[cold]
    pub(crate) fn resend_window_update(&mut self) {
        let token = self.inner.transmit(self.cx);
        match token {
            Some(_) => self.counters.tx_frame(),
            None => {
                self.tx_exhausted = true;
                self.counters.tx_queue_full();
            }
        }
        let recovery = &self.rst.recovery;
        self.rst.zero_window.take(
            recovery.now_ms(),
            |n| recovery.timeout_ms(n),
            |frame| {
                if let Some(token) = token {
                    write_frame(token, frame);
                }
            },
        );
    }
}

/// Write `frame`, made by the stack, into the driver's transmit `token`.
#[cfg(feature = "tcp")]
fn write_frame<T: TxToken>(token: T, frame: &[u8]) {
    token.consume(frame.len(), |buf| {
        let n = buf.len().min(frame.len());
        buf[..n].copy_from_slice(&frame[..n]);
        trace_frame("tx", buf);
    })
}

impl<'d, 'c, T: Driver> phy::Device for DriverAdapter<'d, 'c, T> {
    type RxToken<'a>
        = RxTokenAdapter<'a, T::RxToken<'a>>
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
            RxTokenAdapter {
                token: rx,
                filter: self.filter,
                #[cfg(feature = "medium-ethernet")]
                guard: self.guard,
                #[cfg(feature = "tcp-listener")]
                listeners: self.listeners,
                #[cfg(feature = "tcp")]
                rst: self.rst,
            },
            tx_token_adapter!(self, Some(tx), false),
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        #[cfg(feature = "proto-ipv4-fragmentation")]
        if !self.frag.take() {
            return None;
        }
        match self.inner.transmit(self.cx) {
            Some(token) => Some(tx_token_adapter!(self, Some(token), true)),
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

pub(crate) struct RxTokenAdapter<'a, T: RxToken> {
    token: T,
    filter: &'a SourceFilter,
    #[cfg(feature = "medium-ethernet")]
    guard: Option<&'a NeighborGuard>,
    #[cfg(feature = "tcp-listener")]
    listeners: &'a crate::tcp::listener::Table,
    #[cfg(feature = "tcp")]
    rst: &'a crate::rst_guard::RstGuard,
}

impl<T: RxToken> phy::RxToken for RxTokenAdapter<'_, T> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        self.token.consume(|buf| {
            #[cfg(all(feature = "slaac", feature = "medium-ethernet"))]
            if self.filter.framing() == crate::ingress::Framing::Ethernet
                && crate::ra_guard::neutralize(buf)
            {
                warn!("router advertisement with a prefix length over 128: option ignored");
            }
            trace_frame("rx", buf);
            let headers = crate::ingress::Headers::parse(self.filter.framing(), buf);
            if self.filter.rejects(&headers) {
                debug!("dropped a packet from an impossible source address");
                // smoltcp discards an empty frame as malformed.
                return f(&[]);
            }
            // The TCP guards: an RST whose sequence number is not the one expected becomes a
            // segment that makes smoltcp send a challenge ACK (RFC 5961 3.2), a duplicate ACK
            // that would keep smoltcp from resending our FIN is withheld, old data is cut off
            // a FIN that smoltcp 0.14 would otherwise drop.
            #[cfg(feature = "tcp")]
            let mut replay = false;
            #[cfg(feature = "tcp")]
            let tcp_at = buf.len() - headers.transport.len();
            #[cfg(feature = "tcp")]
            let buf = {
                let ip_at = buf.len() - headers.ip.len();
                match self.rst.screen(&headers) {
                    Screen::Pass => buf,
                    Screen::PartialAck => {
                        replay = true;
                        buf
                    }
                    Screen::Drop => {
                        debug!("withheld a duplicate ACK while only our FIN is outstanding");
                        return f(&[]);
                    }
                    Screen::Challenge(ack) => {
                        debug!("an RST whose sequence number is not the one expected: challenge");
                        crate::rst_guard::challenge(&mut buf[ip_at..], ack);
                        buf
                    }
                    Screen::Fin => match crate::stale_fin::rewrite(&mut buf[ip_at..], self.rst) {
                        Some(len) => {
                            debug!("a FIN that came with old data is passed on alone");
                            &mut buf[..ip_at + len]
                        }
                        None => buf,
                    },
                }
            };
            #[cfg(feature = "medium-ethernet")]
            if let Some(g) = self.guard {
                g.on_receive(buf);
            }
            // A connection that came in through a SYN cookie: acknowledgment numbers
            // translated to smoltcp's sequence space.
            #[cfg(feature = "tcp-listener")]
            if self.listeners.cookies.translating() {
                self.listeners
                    .cookies
                    .translate_ingress(buf, self.filter.framing());
            }
            // A SYN held for a listener's backlog (or dropped, the backlog being full).
            #[cfg(feature = "tcp-listener")]
            if self.listeners.withholds(buf, self.filter) {
                return f(&[]);
            }
            // Handed to smoltcp again by the runner once smoltcp has it (see `recovery`).
            #[cfg(feature = "tcp")]
            if replay {
                self.rst.recovery.keep(buf, tcp_at);
            }
            f(buf)
        })
    }
}

pub(crate) struct TxTokenAdapter<'a, T: TxToken> {
    /// `None`: the token handed out with a made-up frame, which sends nothing.
    token: Option<T>,
    counters: &'a mut CounterStore,
    /// What the frame goes through once written.
    hooks: Sent<'a>,
}

impl<T: TxToken> phy::TxToken for TxTokenAdapter<'_, T> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let Some(token) = self.token else {
            return sink(len, f);
        };
        self.counters.tx_frame();
        let hooks = self.hooks;
        token.consume(len, |buf| {
            let r = f(buf);
            hooks.after(buf);
            r
        })
    }
}

/// What every frame sent goes through once smoltcp has written it. Out of line: smoltcp
/// instantiates `TxToken::consume` once for each of its transmit paths (each with its own
/// closure), and the guards' bookkeeping is then built once, not once per path (flash).
pub(crate) struct Sent<'a> {
    /// Watches neighbor solicitations (Ethernet medium only).
    #[cfg(feature = "medium-ethernet")]
    guard: Option<&'a NeighborGuard>,
    /// The TCP guards, and how to find the IP packet in a frame.
    #[cfg(feature = "tcp")]
    rst: (crate::ingress::Framing, &'a crate::rst_guard::RstGuard),
    /// Connections that came in through SYN cookies (sequence numbers translated).
    #[cfg(feature = "tcp-listener")]
    cookies: &'a crate::tcp::syncookie::Cookies,
    /// The fragment gate, and whether the token came from `transmit` (through the gate).
    #[cfg(feature = "proto-ipv4-fragmentation")]
    frag: (&'a mut FragGate, bool),
    /// For the builds in which no field above exists.
    _borrows: core::marker::PhantomData<&'a ()>,
}

impl Sent<'_> {
    #[inline(never)]
    fn after(self, buf: &mut [u8]) {
        #[cfg(feature = "tcp")]
        let (framing, rst) = self.rst;
        #[cfg(feature = "tcp-listener")]
        if self.cookies.translating() {
            self.cookies.translate_egress(buf, framing);
        }
        trace_frame("tx", buf);
        #[cfg(feature = "medium-ethernet")]
        if let Some(g) = self.guard {
            g.on_transmit(buf);
        }
        #[cfg(feature = "tcp")]
        rst.on_transmit(&crate::ingress::Headers::parse(framing, buf), buf);
        #[cfg(feature = "proto-ipv4-fragmentation")]
        {
            let (frag, gated) = self.frag;
            frag.sent(buf, gated);
        }
    }
}

/// Bytes smoltcp may write into the transmit token handed out with a made-up frame: enough
/// for a TCP RST or an ICMP error about a small packet.
pub(crate) const SINK_LEN: usize = 128;

/// Let smoltcp write a frame of `len` bytes (at most [`SINK_LEN`]) that goes nowhere: the
/// transmit token of a made-up frame.
pub(crate) fn sink<R, F: FnOnce(&mut [u8]) -> R>(len: usize, f: F) -> R {
    let mut buf = [0u8; SINK_LEN];
    f(&mut buf[..len.min(SINK_LEN)])
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

#[cfg(all(
    test,
    feature = "proto-ipv4-fragmentation",
    feature = "medium-ethernet"
))]
mod tests {
    use super::FragGate;

    /// An Ethernet frame with an IPv4 header whose flags/fragment offset field is `flags`.
    fn ipv4_frame(flags: u16) -> [u8; 34] {
        let mut f = [0u8; 34];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[20..22].copy_from_slice(&flags.to_be_bytes());
        f
    }

    #[test]
    fn one_token_per_pass_while_fragments_are_pending() {
        let mut g = FragGate {
            ip_offset: Some(14),
            ..FragGate::default()
        };
        g.token = true;
        assert!(g.take());
        // First fragment (More Fragments): nothing else in this pass.
        g.sent(&ipv4_frame(0x2000), true);
        assert!(g.pending && !g.take());
        // Next pass: one token, taken by the next fragment.
        g.token = true;
        assert!(g.take());
        g.sent(&ipv4_frame(0x2000 | 185), true);
        assert!(!g.take());
        // Answers sent while receiving (ARP, whole IPv4, IPv6) change nothing.
        g.sent(&[0u8; 42], false);
        g.sent(&ipv4_frame(0x4000), false);
        assert!(g.pending);
        // The last fragment: tokens flow again.
        g.token = true;
        assert!(g.take());
        g.sent(&ipv4_frame(370), true);
        assert!(!g.pending && g.take() && g.take());
    }

    #[test]
    fn a_whole_packet_on_the_passs_token_ends_the_pending_state() {
        let mut g = FragGate {
            ip_offset: Some(14),
            pending: true,
            token: true,
        };
        assert!(g.take());
        g.sent(&ipv4_frame(0x4000), true);
        assert!(!g.pending && g.take());
    }

    #[test]
    fn frames_of_other_protocols_and_short_frames_are_not_fragments() {
        let g = FragGate {
            ip_offset: Some(14),
            ..FragGate::default()
        };
        let mut ipv6 = ipv4_frame(0x2000);
        ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(g.fragment(&ipv6), None);
        assert_eq!(g.fragment(&ipv4_frame(0x2000)[..20]), None);
        assert_eq!(g.fragment(&ipv4_frame(0x2000)), Some(true));
        assert_eq!(g.fragment(&ipv4_frame(8)), Some(false));
        let ip_medium = FragGate {
            ip_offset: Some(0),
            ..FragGate::default()
        };
        assert_eq!(ip_medium.fragment(&ipv4_frame(0x2000)[14..]), Some(true));
        assert_eq!(FragGate::default().fragment(&ipv4_frame(0x2000)), None);
    }
}
