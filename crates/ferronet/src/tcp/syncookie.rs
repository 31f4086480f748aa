//! SYN cookies for [`TcpListener`](super::listener::TcpListener) (cargo feature
//! `tcp-listener`).
//!
//! When a listener's backlog is full, a SYN is not dropped: ferronet answers it itself with a
//! SYN-ACK whose initial sequence number is a *cookie*, and keeps nothing. A client that
//! really exists acknowledges it; that ACK carries the cookie back (its acknowledgment number
//! less one), which proves the client got the SYN-ACK. The validated connection then enters
//! the backlog ahead of the SYNs held there, and a socket takes it like any other.
//!
//! # The cookie
//!
//! ```text
//!  31 30 29 28 27                                              0
//! +-----+-----+------------------------------------------------+
//! |  t  |  m  |  SipHash-1-3(key; addresses, ports, client ISN, |
//! |     |     |            counter, m), low 28 bits            |
//! +-----+-----+------------------------------------------------+
//! ```
//!
//! - `t`: the two low bits of the time counter (the seconds of the stack's clock / 64);
//! - `m`: an index into [`MSS_TABLE`], the largest entry not above the client's MSS option;
//! - the hash is keyed with 128 bits derived from the seed given to `ferronet::new`.
//!
//! An ACK validates when its acknowledgment number less one is the cookie of its addresses,
//! ports and sequence number less one (or the sequence number itself: a zero window probe
//! below the window), for the counter among the current one and the three before whose low
//! bits are `t` (a cookie is good for 192 to 256 s: a client whose ACK found no room waits
//! for a socket with its zero window probes, which back off to a minute apart). A blind
//! forgery succeeds once in 2^27 tries.
//!
//! # What the connection looks like to smoltcp
//!
//! smoltcp 0.14 picks its own initial sequence numbers and cannot be given an established
//! connection. So when a socket takes a validated connection, it gets a SYN made up from the
//! ACK (the client's ISN, the MSS of the cookie, the ACK's window, no other option) and
//! answers it with a SYN-ACK of its own ISN S. That SYN-ACK is rewritten on its way out to
//! carry the cookie (a harmless duplicate for the client), and a made-up ACK of it completes
//! smoltcp's handshake at once, and ferronet sends the client an ACK that opens the window
//! (the cookie SYN-ACK offered a zero window, so that the client held its data back while it
//! waited for a socket). From then on, every segment of the connection is translated:
//! received acknowledgment numbers less `cookie - S`, sent sequence numbers plus it, with the
//! TCP checksum updated (RFC 1624). The table of such connections is empty unless cookies
//! were used, and then costs one comparison per frame.
//!
//! # What is not done
//!
//! - The SYN-ACK of a cookie offers no window scaling, no SACK and no timestamps, so a
//!   connection that came in through a cookie has none of them (as with Linux without
//!   timestamps), and its MSS is one of four values ([`MSS_TABLE`]).
//! - Segments that come before a socket takes the connection are dropped; the client sends
//!   them again (with the zero window, only zero window probes come).
//! - A cookie ACK that finds no room (a backlog full of validated connections, or
//!   [`TRANSLATED`] such connections in the stack already) is dropped. The client thinks it
//!   is connected and gets in with its next zero window probe, which backs off (1, 2, 4 s...
//!   up to a minute). A client that has nothing to send (a protocol where the server speaks
//!   first) sends no probe and waits until its own timeout, as with Linux's SYN cookies when
//!   the accept queue is full.
//! - The window update after the handshake is staged like the cookie SYN-ACKs; when it is
//!   dropped (staging full, driver full), the client's next probe opens the window.
//! - The hash is SipHash-1-3 with 27 to 28 bits kept, keyed from the seed given to
//!   `ferronet::new`: a predictable seed gives predictable cookies.

use core::cell::{Cell, RefCell};
use core::hash::Hasher;

use siphasher::sip::SipHasher13;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpAddress, IpEndpoint, IpProtocol, TcpControl, TcpPacket, TcpRepr};

use super::listener::BACKLOG;
use crate::ingress::Framing;
use crate::rst_guard::rewrite_word;

/// The MSS values a cookie can carry (index `m`).
pub const MSS_TABLE: [u16; 4] = [536, 1220, 1440, 1460];

/// Seconds per step of the cookie's time counter.
pub const COUNTER_SECS: u64 = 64;

/// The window offered in a cookie SYN-ACK: zero, so that the client sends no data with its
/// ACK (data that would be dropped until a socket takes the connection, and then wait for the
/// client's retransmission timeout, up to a minute and more). The client waits instead (zero
/// window probes) until the socket that takes the connection opens the window, which it does
/// at once.
pub const COOKIE_WINDOW: u16 = 0;

/// Connections that came in through a cookie, per stack, from validation until their socket
/// is done with them.
pub const TRANSLATED: usize = 2 * BACKLOG;

/// Bits of the hash in a cookie.
const HASH_BITS: u32 = 28;
const HASH_MASK: u32 = (1 << HASH_BITS) - 1;

/// The largest frame ferronet builds: Ethernet, IPv6 and a TCP header with an MSS option.
pub(crate) const FRAME_LEN: usize = 14 + 40 + 24;

/// Cookie SYN-ACKs waiting for the driver.
const STAGED: usize = 2;

/// What the stack's SYN cookies did, from [`TcpListener::syn_cookies`]
/// (for all listeners of the stack).
///
/// [`TcpListener::syn_cookies`]: super::listener::TcpListener::syn_cookies
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SynCookieStats {
    /// SYN-ACKs with a cookie sent (a SYN found its backlog full), wrapping.
    pub sent: u32,
    /// ACKs that carried a valid cookie and entered a backlog, wrapping.
    pub validated: u32,
    /// Connections that came in through a cookie and are not over yet (at most
    /// [`TRANSLATED`]).
    pub connections: usize,
    /// The most such connections there ever were at once.
    pub peak_connections: usize,
}

/// The key of the cookies' hash.
#[derive(Clone, Copy)]
pub(crate) struct Key {
    k0: u64,
    k1: u64,
}

impl Key {
    /// A key derived from the stack's seed (the seed itself never shows in a cookie).
    pub(crate) fn from_seed(seed: u64) -> Self {
        let derive = |k: u64| {
            let mut h = SipHasher13::new_with_keys(k, !k);
            h.write_u64(seed);
            h.finish()
        };
        Self {
            k0: derive(0x243f_6a88_85a3_08d3),
            k1: derive(0x1319_8a2e_0370_7344),
        }
    }

    fn hash(&self, local: &IpEndpoint, remote: &IpEndpoint, isn: u32, counter: u32, m: u32) -> u32 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        for addr in [&local.addr, &remote.addr] {
            match addr {
                #[cfg(feature = "proto-ipv4")]
                IpAddress::Ipv4(a) => h.write(&a.octets()),
                #[cfg(feature = "proto-ipv6")]
                IpAddress::Ipv6(a) => h.write(&a.octets()),
            }
        }
        h.write_u16(local.port);
        h.write_u16(remote.port);
        h.write_u32(isn);
        h.write_u32(counter);
        h.write_u32(m);
        h.finish() as u32 & HASH_MASK
    }

    /// The cookie for a SYN from `remote` to `local` with sequence number `isn` and MSS option
    /// `mss` (`None`: 536), at time counter `counter`.
    pub(crate) fn make(
        &self,
        local: &IpEndpoint,
        remote: &IpEndpoint,
        isn: u32,
        mss: Option<u16>,
        counter: u32,
    ) -> u32 {
        let mss = mss.unwrap_or(536);
        let m = MSS_TABLE.iter().rposition(|&v| v <= mss).unwrap_or(0) as u32;
        (counter & 3) << 30 | m << 28 | self.hash(local, remote, isn, counter, m)
    }

    /// The MSS carried by `cookie` if it is the one made for this connection and `isn` at
    /// time counter `counter` or one of the three before (the one whose low bits the cookie
    /// carries).
    pub(crate) fn check(
        &self,
        local: &IpEndpoint,
        remote: &IpEndpoint,
        isn: u32,
        cookie: u32,
        counter: u32,
    ) -> Option<u16> {
        let t = cookie >> 30;
        let m = (cookie >> 28) & 3;
        let age = counter.wrapping_sub(t) & 3;
        let made = counter.checked_sub(age)?;
        (self.hash(local, remote, isn, made, m) == cookie & HASH_MASK)
            .then(|| MSS_TABLE[m as usize])
    }
}

/// The time counter of the cookies at `secs` seconds of the stack's clock.
pub(crate) fn counter(secs: u64) -> u32 {
    (secs / COUNTER_SECS) as u32
}

/// Where a connection through a cookie is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    Free,
    /// Validated; waiting in a backlog for a socket.
    Reserved,
    /// A socket took it (SYN-RECEIVED); smoltcp's SYN-ACK not seen yet.
    Claimed,
    /// smoltcp's SYN-ACK went out (`delta` known): the made-up ACK is due.
    AckDue,
    /// Established in smoltcp: every segment is translated.
    Active,
}

/// A connection that came in through a cookie.
#[derive(Clone, Copy)]
pub(crate) struct Conn {
    pub(crate) phase: Phase,
    pub(crate) local: IpEndpoint,
    pub(crate) remote: IpEndpoint,
    /// Our ISN as the client knows it.
    pub(crate) cookie: u32,
    pub(crate) client_isn: u32,
    /// The client's window, from its ACK.
    pub(crate) window: u16,
    /// `cookie - S` (S: smoltcp's ISN), from [`Phase::AckDue`] on.
    pub(crate) delta: u32,
    /// The link-layer header of the client's ACK (Ethernet), for the made-up ACK.
    pub(crate) link: [u8; 14],
}

impl Conn {
    const FREE: Self = Self {
        phase: Phase::Free,
        local: IpEndpoint::new(super::listener::NO_ADDR, 0),
        remote: IpEndpoint::new(super::listener::NO_ADDR, 0),
        cookie: 0,
        client_isn: 0,
        window: 0,
        delta: 0,
        link: [0; 14],
    };
}

/// A staged frame.
#[derive(Clone, Copy)]
struct Frame {
    len: u8,
    data: [u8; FRAME_LEN],
}

/// The connections that came in through cookies, and the cookie SYN-ACKs waiting for the
/// driver. Reached through shared references from the driver adapter's tokens.
pub(crate) struct Cookies {
    pub(crate) key: Key,
    conns: [Cell<Conn>; TRANSLATED],
    /// Entries not free: when 0, frames are not looked at.
    used: Cell<u8>,
    /// The most entries ever used at once.
    peak: Cell<u8>,
    staged: RefCell<heapless::Deque<Frame, STAGED>>,
    /// Frames in `staged` (checked for every received frame: one load).
    staged_len: Cell<u8>,
    /// Until when an ACK may carry a cookie (four counter steps after the last one sent).
    valid_until: Cell<embassy_time::Instant>,
    /// Cookie SYN-ACKs sent, and cookie ACKs that validated.
    pub(crate) sent: Cell<u32>,
    pub(crate) validated: Cell<u32>,
}

impl Cookies {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            key: Key::from_seed(seed),
            conns: [const { Cell::new(Conn::FREE) }; TRANSLATED],
            used: Cell::new(0),
            peak: Cell::new(0),
            staged: RefCell::new(heapless::Deque::new()),
            staged_len: Cell::new(0),
            valid_until: Cell::new(embassy_time::Instant::from_ticks(0)),
            sent: Cell::new(0),
            validated: Cell::new(0),
        }
    }

    /// Whether any connection is in the table (the only per-frame cost when none is).
    #[inline(always)]
    pub(crate) fn translating(&self) -> bool {
        self.used.get() != 0
    }

    /// What the cookies did.
    pub(crate) fn stats(&self) -> SynCookieStats {
        SynCookieStats {
            sent: self.sent.get(),
            validated: self.validated.get(),
            connections: usize::from(self.used.get()),
            peak_connections: usize::from(self.peak.get()),
        }
    }

    /// Whether an ACK received at `now` may carry a cookie of ours (a comparison: it is asked
    /// for every ACK to a listened port).
    #[inline(always)]
    pub(crate) fn may_validate(&self, now: embassy_time::Instant) -> bool {
        now < self.valid_until.get()
    }

    /// The phase of the connection between `local` and `remote`, if it is in the table.
    pub(crate) fn phase_of(&self, local: &IpEndpoint, remote: &IpEndpoint) -> Option<Phase> {
        self.find(local, remote).map(|c| c.get().phase)
    }

    fn find(&self, local: &IpEndpoint, remote: &IpEndpoint) -> Option<&Cell<Conn>> {
        if !self.translating() {
            return None;
        }
        self.conns.iter().find(|c| {
            let c = c.get();
            c.phase != Phase::Free && c.remote == *remote && c.local == *local
        })
    }

    /// Add a validated connection; `false` when the table is full.
    pub(crate) fn reserve(&self, conn: Conn) -> bool {
        match self.conns.iter().find(|c| c.get().phase == Phase::Free) {
            Some(c) => {
                c.set(Conn {
                    phase: Phase::Reserved,
                    ..conn
                });
                self.used.set(self.used.get() + 1);
                self.peak.set(self.peak.get().max(self.used.get()));
                true
            }
            None => false,
        }
    }

    /// A socket took the validated connection between `local` and `remote`.
    pub(crate) fn claim(&self, local: &IpEndpoint, remote: &IpEndpoint) {
        if let Some(c) = self.find(local, remote) {
            c.set(Conn {
                phase: Phase::Claimed,
                ..c.get()
            });
        }
    }

    /// Remove the connections for which `keep` says no.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&Conn) -> bool) {
        for c in &self.conns {
            let conn = c.get();
            if conn.phase != Phase::Free && !keep(&conn) {
                c.set(Conn::FREE);
                self.used.set(self.used.get().saturating_sub(1));
            }
        }
    }

    /// Translate a received frame of an established connection of the table: its
    /// acknowledgment number less `delta`.
    pub(crate) fn translate_ingress(&self, frame: &mut [u8], framing: Framing) {
        let Some((tcp, local, remote)) = locate(frame, framing, true) else {
            return;
        };
        let Some(c) = self.find(&local, &remote) else {
            return;
        };
        let c = c.get();
        if c.phase == Phase::Active && frame[tcp + 13] & ACK != 0 {
            let ack = read_u32(frame, tcp + 8);
            rewrite_u32(frame, tcp, 8, ack.wrapping_sub(c.delta));
        }
    }

    /// Translate a frame being sent: smoltcp's SYN-ACK of a claimed connection gives `delta`
    /// and carries the cookie instead of smoltcp's ISN; later segments' sequence numbers get
    /// `delta` added.
    pub(crate) fn translate_egress(&self, frame: &mut [u8], framing: Framing) {
        let Some((tcp, local, remote)) = locate(frame, framing, false) else {
            return;
        };
        let Some(cell) = self.find(&local, &remote) else {
            return;
        };
        let mut c = cell.get();
        let seq = read_u32(frame, tcp + 4);
        match c.phase {
            Phase::Claimed if frame[tcp + 13] & (SYN | ACK) == SYN | ACK => {
                c.delta = c.cookie.wrapping_sub(seq);
                c.phase = Phase::AckDue;
                cell.set(c);
            }
            Phase::AckDue | Phase::Active => {}
            _ => return,
        }
        rewrite_u32(frame, tcp, 4, seq.wrapping_add(c.delta));
    }

    /// For the first connection whose made-up ACK is due: the ACK (framed for `framing`) is
    /// handed to `inject`, which returns the receive window of the socket then established
    /// (`None`: it did not take it); the connection becomes active, and an ACK opening that
    /// window is staged for the client (its window was zero since the cookie). Returns
    /// whether there was one (the caller sends the staged frame before the next).
    pub(crate) fn complete_handshake(
        &self,
        framing: Framing,
        inject: impl FnOnce(&[u8], &Conn) -> Option<u16>,
    ) -> bool {
        if let Some(cell) = self.conns.iter().find(|c| c.get().phase == Phase::AckDue) {
            let mut c = cell.get();
            let mut buf = [0u8; FRAME_LEN];
            let ours = c.cookie.wrapping_sub(c.delta);
            let seg = Segment {
                src: c.remote,
                dst: c.local,
                control: TcpControl::None,
                seq: c.client_isn.wrapping_add(1),
                ack: Some(ours.wrapping_add(1)),
                window: c.window,
                mss: None,
            };
            let window =
                build(&mut buf, framing, &c.link, &seg).and_then(|n| inject(&buf[..n], &c));
            if let Some(window) = window {
                // The window update, as a segment of the connection in the client's sequence
                // space: to the link address the client's ACK came from.
                let mut link = [0u8; 14];
                link[..6].copy_from_slice(&c.link[6..12]);
                link[6..12].copy_from_slice(&c.link[..6]);
                link[12..].copy_from_slice(&c.link[12..]);
                let update = Segment {
                    src: c.local,
                    dst: c.remote,
                    control: TcpControl::None,
                    seq: c.cookie.wrapping_add(1),
                    ack: Some(c.client_isn.wrapping_add(1)),
                    window,
                    mss: None,
                };
                if !self.stage(|buf| build(buf, framing, &link, &update)) {
                    debug!("window update for a cookie connection dropped (staging full)");
                }
            }
            c.phase = Phase::Active;
            cell.set(c);
            return true;
        }
        false
    }

    /// Stage a frame for the driver; `false` (dropped) when the staging area is full.
    pub(crate) fn stage(
        &self,
        build_frame: impl FnOnce(&mut [u8; FRAME_LEN]) -> Option<usize>,
    ) -> bool {
        let Ok(mut q) = self.staged.try_borrow_mut() else {
            return false;
        };
        if q.is_full() {
            return false;
        }
        let mut f = Frame {
            len: 0,
            data: [0; FRAME_LEN],
        };
        match build_frame(&mut f.data) {
            Some(n) => {
                f.len = n as u8;
                let _ = q.push_back(f);
                self.staged_len.set(q.len() as u8);
                true
            }
            None => false,
        }
    }

    /// Note that a cookie was sent at `secs` seconds of the stack's clock.
    pub(crate) fn sent_at(&self, secs: u64) {
        let until = (u64::from(counter(secs)) + 4) * COUNTER_SECS;
        self.valid_until
            .set(embassy_time::Instant::from_secs(until));
        self.sent.set(self.sent.get().wrapping_add(1));
    }

    /// Whether frames are staged.
    #[inline(always)]
    pub(crate) fn has_staged(&self) -> bool {
        self.staged_len.get() != 0
    }

    /// Hand the oldest staged frame to `send`.
    pub(crate) fn send_staged(&self, send: impl FnOnce(&[u8])) {
        let Ok(mut q) = self.staged.try_borrow_mut() else {
            return;
        };
        let f = q.pop_front();
        self.staged_len.set(q.len() as u8);
        drop(q);
        if let Some(f) = f {
            send(&f.data[..usize::from(f.len)]);
        }
    }
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Replace the 32-bit field at `tcp + at` with `new`, the TCP checksum updated (see
/// [`rewrite_word`]).
fn rewrite_u32(b: &mut [u8], tcp: usize, at: usize, new: u32) {
    if let Some(segment) = b.get_mut(tcp..) {
        rewrite_word(segment, at, 0, new);
    }
}

/// Where the TCP header of the segment in `frame` starts, and the segment's local and
/// remote endpoints (`received`: the source is the remote one). Unfragmented IPv4 and IPv6
/// without extension headers; the TCP header must be all there.
pub(crate) fn locate(
    frame: &[u8],
    framing: Framing,
    received: bool,
) -> Option<(usize, IpEndpoint, IpEndpoint)> {
    let ip = framing.ip_packet(frame)?;
    let off = frame.len() - ip.len();
    let (tcp, src, dst): (usize, IpAddress, IpAddress) = match ip.first()? >> 4 {
        #[cfg(feature = "proto-ipv4")]
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            if *ip.get(9)? != 6 || ihl < 20 || frag & 0x1fff != 0 {
                return None;
            }
            let a = |at: usize| -> Option<IpAddress> {
                let b: [u8; 4] = ip.get(at..at + 4)?.try_into().ok()?;
                Some(IpAddress::Ipv4(b.into()))
            };
            (ihl, a(12)?, a(16)?)
        }
        #[cfg(feature = "proto-ipv6")]
        6 => {
            if *ip.get(6)? != 6 {
                return None;
            }
            let a = |at: usize| -> Option<IpAddress> {
                let b: [u8; 16] = ip.get(at..at + 16)?.try_into().ok()?;
                Some(IpAddress::Ipv6(b.into()))
            };
            (40, a(8)?, a(24)?)
        }
        _ => return None,
    };
    let t = ip.get(tcp..tcp + 20)?;
    let sport = u16::from_be_bytes([t[0], t[1]]);
    let dport = u16::from_be_bytes([t[2], t[3]]);
    let (src, dst) = (IpEndpoint::new(src, sport), IpEndpoint::new(dst, dport));
    Some(if received {
        (off + tcp, dst, src)
    } else {
        (off + tcp, src, dst)
    })
}

/// A TCP segment ferronet builds.
pub(crate) struct Segment {
    pub(crate) src: IpEndpoint,
    pub(crate) dst: IpEndpoint,
    pub(crate) control: TcpControl,
    pub(crate) seq: u32,
    pub(crate) ack: Option<u32>,
    pub(crate) window: u16,
    pub(crate) mss: Option<u16>,
}

/// Write `seg` into `buf` as a frame for `framing` (on Ethernet, after the link header
/// `link`, taken as it is), with its checksums; returns its length. `None` when the
/// addresses are of different families or the buffer is too small.
pub(crate) fn build(
    buf: &mut [u8],
    framing: Framing,
    link: &[u8; 14],
    seg: &Segment,
) -> Option<usize> {
    let off = match framing {
        Framing::Ethernet => {
            buf.get_mut(..14)?.copy_from_slice(link);
            14
        }
        Framing::Ip => 0,
        Framing::Unchecked => return None,
    };
    let repr = TcpRepr {
        src_port: seg.src.port,
        dst_port: seg.dst.port,
        control: seg.control,
        seq_number: smoltcp::wire::TcpSeqNumber(seg.seq as i32),
        ack_number: seg.ack.map(|a| smoltcp::wire::TcpSeqNumber(a as i32)),
        window_len: seg.window,
        window_scale: None,
        max_seg_size: seg.mss,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    if seg.src.addr.version() != seg.dst.addr.version() {
        return None;
    }
    let caps = ChecksumCapabilities::default();
    let ip = smoltcp::wire::IpRepr::new(
        seg.src.addr,
        seg.dst.addr,
        IpProtocol::Tcp,
        repr.buffer_len(),
        64,
    );
    let ip_len = ip.buffer_len();
    let packet = buf.get_mut(off..off + ip_len)?;
    ip.emit(&mut *packet, &caps);
    repr.emit(
        &mut TcpPacket::new_unchecked(&mut packet[ip.header_len()..]),
        &seg.src.addr,
        &seg.dst.addr,
        &caps,
    );
    Some(off + ip_len)
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
    use crate::rst_guard::adjust_checksum;
    use smoltcp::wire::{EthernetFrame, Ipv4Address, Ipv4Packet, Ipv6Address, Ipv6Packet};

    fn ep4(last: u8, port: u16) -> IpEndpoint {
        IpEndpoint::new(Ipv4Address::new(192, 0, 2, last).into(), port)
    }

    fn ep6(last: u16, port: u16) -> IpEndpoint {
        IpEndpoint::new(
            Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last).into(),
            port,
        )
    }

    const LINK: [u8; 14] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    const LINK6: [u8; 14] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd];

    #[test]
    fn a_cookie_validates_for_its_connection_only() {
        let key = Key::from_seed(42);
        let (us, them) = (ep4(3, 80), ep4(1, 40000));
        let c = key.make(&us, &them, 1000, Some(1460), 7);
        assert_eq!(key.check(&us, &them, 1000, c, 7), Some(1460));
        // Another ISN, port, address, direction, key: no.
        assert_eq!(key.check(&us, &them, 1001, c, 7), None);
        assert_eq!(key.check(&us, &ep4(1, 40001), 1000, c, 7), None);
        assert_eq!(key.check(&us, &ep4(9, 40000), 1000, c, 7), None);
        assert_eq!(key.check(&them, &us, 1000, c, 7), None);
        assert_eq!(Key::from_seed(43).check(&us, &them, 1000, c, 7), None);
        // A flipped bit anywhere: no (the MSS bits are in the hash too).
        for bit in 0..32 {
            assert_eq!(
                key.check(&us, &them, 1000, c ^ (1 << bit), 7),
                None,
                "{bit}"
            );
        }
        // IPv6 too.
        let (us6, them6) = (ep6(2, 80), ep6(1, 40000));
        let c6 = key.make(&us6, &them6, u32::MAX, None, 0);
        assert_eq!(key.check(&us6, &them6, u32::MAX, c6, 0), Some(536));
        assert_eq!(key.check(&us6, &ep6(3, 40000), u32::MAX, c6, 0), None);
    }

    #[test]
    fn a_cookie_is_good_for_four_counter_steps() {
        let key = Key::from_seed(1);
        let (us, them) = (ep4(3, 80), ep4(1, 40000));
        for made in [0u32, 1, 5, 1000] {
            let c = key.make(&us, &them, 5, Some(1460), made);
            assert_eq!(c >> 30, made & 3);
            for now in made..made + 4 {
                assert_eq!(key.check(&us, &them, 5, c, now), Some(1460), "{made} {now}");
            }
            // Expired.
            assert_eq!(key.check(&us, &them, 5, c, made + 4), None);
            assert_eq!(key.check(&us, &them, 5, c, made + 5), None);
            // From the future (or a counter that went back).
            if made > 0 {
                assert_eq!(key.check(&us, &them, 5, c, made - 1), None);
            }
        }
        assert_eq!(counter(63), 0);
        assert_eq!(counter(64), 1);
    }

    #[test]
    fn the_mss_index_is_the_largest_entry_not_above_the_clients_mss() {
        let key = Key::from_seed(9);
        let (us, them) = (ep4(3, 80), ep4(1, 40000));
        for (mss, want, index) in [
            (None, 536, 0),
            (Some(100), 536, 0),
            (Some(536), 536, 0),
            (Some(1219), 536, 0),
            (Some(1220), 1220, 1),
            (Some(1439), 1220, 1),
            (Some(1440), 1440, 2),
            (Some(1460), 1460, 3),
            (Some(9000), 1460, 3),
        ] {
            let c = key.make(&us, &them, 77, mss, 3);
            assert_eq!((c >> 28) & 3, index, "{mss:?}");
            assert_eq!(key.check(&us, &them, 77, c, 3), Some(want), "{mss:?}");
        }
    }

    /// The Internet checksum of `data` (RFC 1071).
    fn full_checksum(data: &[u8]) -> u16 {
        let mut sum: u32 = data
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn the_incremental_checksum_matches_a_full_one() {
        let mut data = [0u8; 20];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        for (old, new) in [
            (0u32, u32::MAX),
            (0xdead_beef, 1),
            (0x8000_0000, 0x7fff_ffff),
            (12345, 12345),
            (u32::MAX, 0),
            (0xffff_0000, 0x0000_ffff),
        ] {
            data[8..12].copy_from_slice(&old.to_be_bytes());
            let before = full_checksum(&data);
            data[8..12].copy_from_slice(&new.to_be_bytes());
            let after = full_checksum(&data);
            // Equal as checksums: 0x0000 and 0xffff are both zero in one's complement.
            let got = adjust_checksum(before, old, new);
            assert!(
                got == after || (got | after == 0xffff && (got == 0 || after == 0)),
                "{old:#x} {new:#x}: {got:#x} {after:#x}"
            );
        }
    }

    /// A frame of a connection between `a` and `b` (`a` sends), built by `build`.
    fn segment(a: IpEndpoint, b: IpEndpoint, seq: u32, ack: u32, payload_hint: u16) -> Segment {
        Segment {
            src: a,
            dst: b,
            control: TcpControl::None,
            seq,
            ack: Some(ack),
            window: payload_hint,
            mss: None,
        }
    }

    fn checksum_ok(frame: &[u8]) -> bool {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        match frame[12..14] {
            [0x08, 0x00] => {
                let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
                let t = TcpPacket::new_checked(ip.payload()).unwrap();
                ip.verify_checksum()
                    && t.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into())
            }
            _ => {
                let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
                let t = TcpPacket::new_checked(ip.payload()).unwrap();
                t.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into())
            }
        }
    }

    fn seq_ack(frame: &[u8], tcp: usize) -> (u32, u32) {
        let t = TcpPacket::new_checked(&frame[tcp..]).unwrap();
        (t.seq_number().0 as u32, t.ack_number().0 as u32)
    }

    #[test]
    fn a_translated_connection_across_the_wrap_around() {
        for (us, them, link) in [
            (ep4(3, 80), ep4(1, 40000), LINK),
            (ep6(2, 80), ep6(1, 40000), LINK6),
        ] {
            let cookies = Cookies::new(5);
            // The cookie near the top of the sequence space, smoltcp's ISN near the bottom.
            let (cookie, smol, client) = (u32::MAX - 10, 20u32, u32::MAX - 3);
            assert!(!cookies.translating());
            assert!(cookies.reserve(Conn {
                phase: Phase::Reserved,
                local: us,
                remote: them,
                cookie,
                client_isn: client,
                window: 512,
                delta: 0,
                link,
            }));
            assert!(cookies.translating());
            assert_eq!(cookies.phase_of(&us, &them), Some(Phase::Reserved));
            cookies.claim(&us, &them);
            assert_eq!(cookies.phase_of(&us, &them), Some(Phase::Claimed));

            // smoltcp's SYN-ACK: carries the cookie on its way out, and gives delta.
            let mut buf = [0u8; FRAME_LEN];
            let mut synack = segment(us, them, smol, client.wrapping_add(1), 1000);
            synack.control = TcpControl::Syn;
            let n = build(&mut buf, Framing::Ethernet, &link, &synack).unwrap();
            let (tcp, _, _) = locate(&buf[..n], Framing::Ethernet, false).unwrap();
            cookies.translate_egress(&mut buf[..n], Framing::Ethernet);
            assert_eq!(seq_ack(&buf[..n], tcp), (cookie, client.wrapping_add(1)));
            assert!(checksum_ok(&buf[..n]));
            assert_eq!(cookies.phase_of(&us, &them), Some(Phase::AckDue));

            // The made-up ACK for smoltcp, then the window update for the client.
            let mut injected = None;
            assert!(cookies.complete_handshake(Framing::Ethernet, |f, c| {
                injected = Some((f.to_vec(), c.remote));
                Some(4096)
            }));
            assert!(!cookies.complete_handshake(Framing::Ethernet, |_, _| None));
            let (ack, from) = injected.unwrap();
            assert_eq!(from, them);
            assert!(checksum_ok(&ack));
            assert_eq!(
                seq_ack(&ack, tcp),
                (client.wrapping_add(1), smol.wrapping_add(1))
            );
            assert_eq!(&ack[..14], &link[..]);
            let mut update = std::vec::Vec::new();
            cookies.send_staged(|f| update.extend_from_slice(f));
            assert!(checksum_ok(&update));
            assert_eq!(
                seq_ack(&update, tcp),
                (cookie.wrapping_add(1), client.wrapping_add(1))
            );
            assert_eq!(
                TcpPacket::new_checked(&update[tcp..]).unwrap().window_len(),
                4096
            );
            assert_eq!(&update[..6], &link[6..12]);

            // Data both ways, past the wrap-around of both numbers.
            for sent in [1u32, 11, 12, 5000, 70000] {
                let mut out = [0u8; FRAME_LEN];
                let seg = segment(
                    us,
                    them,
                    smol.wrapping_add(sent),
                    client.wrapping_add(sent),
                    9,
                );
                let n = build(&mut out, Framing::Ethernet, &link, &seg).unwrap();
                cookies.translate_egress(&mut out[..n], Framing::Ethernet);
                assert_eq!(
                    seq_ack(&out[..n], tcp),
                    (cookie.wrapping_add(sent), client.wrapping_add(sent))
                );
                assert!(checksum_ok(&out[..n]));

                let mut inb = [0u8; FRAME_LEN];
                let seg = segment(
                    them,
                    us,
                    client.wrapping_add(sent),
                    cookie.wrapping_add(sent),
                    9,
                );
                let n = build(&mut inb, Framing::Ethernet, &link, &seg).unwrap();
                cookies.translate_ingress(&mut inb[..n], Framing::Ethernet);
                assert_eq!(
                    seq_ack(&inb[..n], tcp),
                    (client.wrapping_add(sent), smol.wrapping_add(sent))
                );
                assert!(checksum_ok(&inb[..n]));
            }
            // A bad checksum stays bad.
            let mut inb = [0u8; FRAME_LEN];
            let seg = segment(them, us, client.wrapping_add(1), cookie.wrapping_add(1), 9);
            let n = build(&mut inb, Framing::Ethernet, &link, &seg).unwrap();
            inb[tcp + 16] ^= 1;
            cookies.translate_ingress(&mut inb[..n], Framing::Ethernet);
            assert_eq!(seq_ack(&inb[..n], tcp).1, smol.wrapping_add(1));
            assert!(!checksum_ok(&inb[..n]));
            // Other connections are not touched.
            let mut other = [0u8; FRAME_LEN];
            let seg = segment(us, IpEndpoint::new(them.addr, 40001), 5, 6, 9);
            let n = build(&mut other, Framing::Ethernet, &link, &seg).unwrap();
            cookies.translate_egress(&mut other[..n], Framing::Ethernet);
            assert_eq!(seq_ack(&other[..n], tcp), (5, 6));

            cookies.retain(|_| false);
            assert!(!cookies.translating());
            assert_eq!(cookies.phase_of(&us, &them), None);
            assert_eq!(cookies.stats().peak_connections, 1);
        }
    }

    #[test]
    fn a_full_table_refuses_and_staging_drops() {
        let cookies = Cookies::new(5);
        let conn = |port| Conn {
            phase: Phase::Reserved,
            local: ep4(3, 80),
            remote: ep4(1, port),
            cookie: 1,
            client_isn: 2,
            window: 0,
            delta: 0,
            link: LINK,
        };
        for port in 0..TRANSLATED as u16 {
            assert!(cookies.reserve(conn(port)));
        }
        assert!(!cookies.reserve(conn(999)));
        assert_eq!(cookies.stats().connections, TRANSLATED);
        let seg = segment(ep4(3, 80), ep4(1, 1), 1, 2, 0);
        for _ in 0..STAGED {
            assert!(cookies.stage(|b| build(b, Framing::Ethernet, &LINK, &seg)));
        }
        assert!(!cookies.stage(|b| build(b, Framing::Ethernet, &LINK, &seg)));
        assert!(cookies.has_staged());
        for _ in 0..STAGED {
            cookies.send_staged(|f| assert!(checksum_ok(f)));
        }
        assert!(!cookies.has_staged());
        // Mixed families and unchecked framing build nothing.
        let mut buf = [0u8; FRAME_LEN];
        let mixed = segment(ep4(3, 80), ep6(1, 1), 1, 2, 0);
        assert_eq!(build(&mut buf, Framing::Ethernet, &LINK, &mixed), None);
        assert_eq!(build(&mut buf, Framing::Unchecked, &LINK, &seg), None);
        // The IP medium has no link header.
        assert_eq!(build(&mut buf, Framing::Ip, &LINK, &seg), Some(40));
    }
}

#[cfg(all(
    test,
    feature = "proto-ipv4",
    feature = "proto-ipv6",
    feature = "medium-ethernet"
))]
mod robustness {
    extern crate std;
    use super::*;
    use crate::ingress::SourceFilter;
    use crate::tcp::listener::Table;
    use embassy_time::Instant;
    use smoltcp::wire::{IpCidr, IpListenEndpoint, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};

    /// xorshift64*: deterministic bytes.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// Arbitrary frames, most of them with plausible Ethernet, IP and TCP headers (to our
    /// addresses, port 80, from a few peers), go through every path that parses frames for
    /// the SYN cookies, with cookies out and connections in every phase: nothing panics.
    #[test]
    fn arbitrary_frames_never_panic() {
        let own4 = Ipv4Address::new(192, 0, 2, 2);
        let own6 = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
        for framing in [Framing::Ethernet, Framing::Ip] {
            let filter = SourceFilter::new(
                framing,
                &[
                    IpCidr::Ipv4(Ipv4Cidr::new(own4, 24)),
                    IpCidr::Ipv6(Ipv6Cidr::new(own6, 64)),
                ],
            );
            let table = Table::listening_for_test(7, 1500, IpListenEndpoint::from(80));
            table.set_now(Instant::from_secs(1000));
            let mut rng = Rng(0x1234_5678_9abc_def1);
            let mut withheld = 0;
            // Fewer under Miri, which runs this a thousand times slower.
            let rounds = if cfg!(miri) { 2_000 } else { 200_000u32 };
            for round in 0..rounds {
                let len = (rng.next() % 130) as usize;
                let mut f = std::vec![0u8; len];
                for b in f.iter_mut() {
                    *b = rng.next() as u8;
                }
                let off = if framing == Framing::Ethernet { 14 } else { 0 };
                let v6 = rng.next().is_multiple_of(2);
                if !rng.next().is_multiple_of(8) && len > off + 1 {
                    if framing == Framing::Ethernet && len >= 14 {
                        f[12..14].copy_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
                        f[0] &= 0xfe;
                        f[6] &= 0xfe;
                    }
                    let ip = &mut f[off..];
                    if v6 {
                        ip[0] = 0x60;
                        if ip.len() >= 40 {
                            ip[6] = 6;
                            ip[8..24].copy_from_slice(
                                &Ipv6Address::new(
                                    0x2001,
                                    0xdb8,
                                    0,
                                    0,
                                    0,
                                    0,
                                    0,
                                    1 + (round % 3) as u16,
                                )
                                .octets(),
                            );
                            ip[24..40].copy_from_slice(&own6.octets());
                        }
                    } else {
                        ip[0] = 0x45;
                        if ip.len() >= 20 {
                            ip[6] = 0;
                            ip[7] = 0;
                            ip[9] = 6;
                            ip[12..16].copy_from_slice(&[192, 0, 2, 1 + (round % 3) as u8]);
                            ip[16..20].copy_from_slice(&own4.octets());
                        }
                    }
                    let tcp = if v6 { 40 } else { 20 };
                    if ip.len() >= tcp + 20 {
                        ip[tcp + 2..tcp + 4].copy_from_slice(&80u16.to_be_bytes());
                        // Mostly a plain header (offset 5, 6 or 7 words), right lengths and
                        // checksums, so that the frame gets past the checks.
                        if !rng.next().is_multiple_of(4) {
                            ip[tcp + 12] = ((5 + rng.next() % 3) as u8) << 4;
                        }
                        let total = ip.len();
                        if v6 {
                            ip[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
                        } else {
                            ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                            smoltcp::wire::Ipv4Packet::new_unchecked(&mut ip[..]).fill_checksum();
                        }
                        let (src, dst): (IpAddress, IpAddress) = if v6 {
                            let p = smoltcp::wire::Ipv6Packet::new_unchecked(&ip[..]);
                            (p.src_addr().into(), p.dst_addr().into())
                        } else {
                            let p = smoltcp::wire::Ipv4Packet::new_unchecked(&ip[..]);
                            (p.src_addr().into(), p.dst_addr().into())
                        };
                        TcpPacket::new_unchecked(&mut ip[tcp..]).fill_checksum(&src, &dst);
                    }
                }
                // Every path: the listener's receive check (holds, cookies, cookie ACKs),
                // both translations, the parser, and the made-up ACKs.
                withheld += usize::from(table.withholds(&f, &filter));
                table.cookies.translate_ingress(&mut f, framing);
                table.cookies.translate_egress(&mut f, framing);
                let _ = locate(&f, framing, round.is_multiple_of(2));
                if let Some((_, local, remote)) = locate(&f, framing, true)
                    && round.is_multiple_of(5)
                {
                    let _ = table.cookies.reserve(Conn {
                        phase: Phase::Reserved,
                        local,
                        remote,
                        cookie: rng.next() as u32,
                        client_isn: rng.next() as u32,
                        window: rng.next() as u16,
                        delta: rng.next() as u32,
                        link: [0; 14],
                    });
                    table.cookies.claim(&local, &remote);
                }
                let _ = table.cookies.complete_handshake(framing, |_, _| Some(100));
                table.cookies.send_staged(|_| {});
                if round.is_multiple_of(1000) {
                    table.cookies.retain(|_| false);
                }
            }
            // The plausible frames did reach the listener's paths.
            assert!(withheld as u32 > rounds / 200, "{withheld}");
            assert!(
                table.cookies.stats().sent > rounds / 2000,
                "{:?}",
                table.cookies.stats()
            );
        }
    }
}
