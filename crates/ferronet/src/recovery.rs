//! Losses smoltcp 0.14 would leave to its retransmission timeout, recovered by showing it
//! duplicate ACKs: NewReno's partial-ACK retransmission (RFC 6582 3.2 step 3), a fast
//! retransmission that smoltcp dropped because the driver was full, and a retransmission that
//! was lost on the way (a probe after about two round trips).
//!
//! **A second loss in one window.** smoltcp 0.14 fast-retransmits the first unacknowledged
//! segment at the third duplicate ACK and nothing else: it has neither NewReno's partial-ACK
//! handling nor SACK. When two segments of one window are lost, the retransmission of the
//! first makes the peer acknowledge up to the second hole (a *partial* ACK), but every later
//! segment already reached the peer, so no new duplicate ACKs come and the second hole waits
//! for the retransmission timeout (1 s at least in smoltcp). smoltcp 0.13 (embassy-net)
//! resends everything after the first hole instead; with 1 % loss and 64 KiB windows ferronet
//! fell far behind it.
//!
//! [`Recovery`] follows, for the last few connections that retransmitted, the sequence number
//! of the last segment sent before the retransmission (`recover`). A retransmission is a
//! segment whose sequence number is below the one of the segment sent before it on the same
//! connection: `RstGuard::on_transmit` already keeps that number per connection, so the cost
//! on the common path is one comparison ([`Recovery::on_retransmit`] is called only then).
//! While an entry exists, each received ACK without payload of that connection that advances
//! past the last retransmission but stays below `recover` is a partial ACK: the next segment
//! is lost as well. The frame is kept ([`Recovery::keep`]) and, once smoltcp has taken it,
//! handed to it [`REPLAYS`] more times ([`Recovery::replay`]): smoltcp counts them as
//! duplicate ACKs (same acknowledgment number, same window, no payload) and at the third one
//! fast-retransmits the segment at the partial ACK. An ACK at or past `recover`, a SYN or an
//! RST ends the entry.
//!
//! **A fast retransmission lost to a full driver.** smoltcp 0.14's `dispatch` clears its
//! `pending_fast_retransmit` flag and sets its timer to idle while it builds the segment,
//! before it asks the device for a transmit token; when the driver has no room (the end of
//! every burst: ferronet fills the driver's queue), the retransmission is never sent and no
//! retransmission timer is left. If the window is full, nothing else is sent either and the
//! connection wedges (found by the goodput benchmark, `both`, 16 KiB, 100 Mbit/s, 0.2 ms,
//! N = 8, 1 %). So [`Recovery`] also counts duplicate ACKs: every received TCP segment's
//! acknowledgment number is compared with the previous one's ([`Recovery::watching`]; equal
//! numbers start an entry), and when [`RESCUE_AFTER`] duplicates came with no retransmission
//! sent, the last one is kept and handed to smoltcp again as [`RESCUE_COPIES`] frames: one
//! with the advertised window one lower (a window update for smoltcp, which resets its count
//! of duplicates), then the ACK as it came (a window update again) and three duplicates.
//!
//! **A lost retransmission.** When a retransmission is lost as well and every later segment
//! already reached the peer (the window is full), no duplicate ACKs come any more and smoltcp
//! 0.14 waits for its retransmission timeout, 1 s at least (Linux: 200 ms, and RACK-TLP
//! detects such a loss within about two round trips). [`Recovery`] times each retransmission
//! of a followed connection ([`Recovery::set_now`], the runner's clock): if no ACK past it
//! comes within the *probe timeout*, the last duplicate ACK of that connection (kept for this)
//! is handed to smoltcp again as in a rescue, and smoltcp sends the segment once more
//! ([`Recovery::probe_due`], called by the runner, which also wakes for
//! [`Recovery::next_probe`]). The probe timeout is twice the last round trip measured (from
//! a SYN or SYN-ACK sent to its answer, [`Recovery::on_syn`], or from a retransmission to the
//! ACK past it), plus [`PROBE_SLACK_MS`], within [`PROBE_MIN_MS`] .. [`PROBE_MAX_MS`];
//! [`PROBE_DEFAULT_MS`] before any was measured (a round trip shorter than the clock's
//! millisecond counts as 1 ms, not as none); it doubles with each probe
//! of the same hole, and after [`PROBES`] probes smoltcp's own timer is left to act. Each
//! probe arms the next at once: smoltcp may lose the fast retransmission a probe asks for to
//! a full driver (see above) and then keeps no timer; a retransmission re-arms it anyway. The
//! probe is also armed at the first duplicate ACK of a connection that has not retransmitted
//! (RFC 5827's early retransmit, by time): with small windows (4 or 8 KiB socket buffers, on
//! either side) too few segments are in flight for three duplicates, and smoltcp recovered
//! every such loss with its timeout. And it is armed on the ACK that ends a recovery (past
//! `recover`) while segments sent after `recover` are still outstanding (the furthest segment
//! sent, from `RstGuard`): one of them may be lost with nothing more to send behind it, so no
//! duplicate ACK comes; and again after each partial ACK's replays, in case smoltcp loses the
//! fast retransmission they ask for to a full driver. A probe that was not needed (the ACK was only late, or
//! reordered) costs one segment sent twice. Retransmissions
//! are seen on the wire: a segment that starts before the furthest one sent on its connection
//! (`RstGuard::on_transmit`).
//!
//! **A tail loss** (the last segments of a flight, with no duplicate ACK to come at all) is
//! probed by [`tail`] (RFC 8985's tail-loss probe), with the ACKs this module keeps.
//!
//! Congestion control: ferronet builds smoltcp without a congestion controller (no
//! `socket-tcp-reno`/`socket-tcp-cubic`), so the extra fast retransmissions change no window.
//! With smoltcp's Reno or Cubic, each would be a new loss event (those controllers leave fast
//! recovery on any ACK of new data) and halve the window again.
//!
//! What is not covered: partial ACKs that carry data (traffic both ways: smoltcp counts only
//! ACKs without payload as duplicates), probes for two connections at once (one duplicate ACK
//! is kept, the last one received: the other connection's probe is dropped and its loss left
//! to smoltcp's timer), the tail losses [`tail`] leaves, a loss of the last segment sent
//! before the retransmission (`recover` is that segment's start, not its end), more than
//! [`ENTRIES`] connections recovering at once (the oldest entry is forgotten), frames longer
//! than [`FRAME_LEN`], IPv6 extension headers. After a retransmission timeout (smoltcp then
//! resends everything from the first hole) a partial ACK also triggers one fast
//! retransmission of the segment at it, which the resent stream may already carry: at most
//! one extra segment per hole.

use core::cell::Cell;

use crate::ingress::{Framing, Headers};
use crate::lone_fin::payload_len;
use crate::rst_guard::{ACK, FIN, RST, SYN, rewrite_word, segment};

mod tail;

use tail::TailProbe;

/// Connections followed (the most recent to retransmit or to receive duplicate ACKs).
pub(crate) const ENTRIES: usize = 4;
/// Copies of a partial ACK handed to smoltcp after the ACK itself: its fast retransmission
/// starts at the third duplicate.
pub(crate) const REPLAYS: usize = 3;
/// Duplicate ACKs received with no retransmission sent after which smoltcp's fast
/// retransmission is taken as lost (smoltcp sends it at the third).
pub(crate) const RESCUE_AFTER: u8 = 5;
/// Frames handed to smoltcp to rescue a lost fast retransmission: the ACK with a window one
/// lower, the ACK, three duplicates.
pub(crate) const RESCUE_COPIES: usize = 5;
/// Probe timeout without a round-trip sample of the connection, in ms: Linux's minimum RTO.
pub(crate) const PROBE_DEFAULT_MS: u32 = 200;
/// Bounds of the probe timeout (twice the sampled round trip plus [`PROBE_SLACK_MS`]), in ms.
pub(crate) const PROBE_MIN_MS: u32 = 10;
pub(crate) const PROBE_MAX_MS: u32 = 500;
/// Added to twice the round trip: the peer's scheduling and a frame or two of queueing.
pub(crate) const PROBE_SLACK_MS: u32 = 2;
/// Probes per hole (each doubles the timeout); then smoltcp's retransmission timeout acts.
pub(crate) const PROBES: u8 = 3;
/// The longest TCP segment, padding included, that can be an ACK without payload: a 60-byte
/// header and the padding of a minimum-sized Ethernet frame.
const ACK_LEN: usize = 60 + 6;
/// The longest frame kept for replay: Ethernet, IPv4 with options and TCP with options.
pub(crate) const FRAME_LEN: usize = 14 + 60 + 60;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// As in `RstGuard`: ports and the peer's address folded to 64 bits; 0: free.
    key: u64,
    /// Sequence number of the last segment sent before the first retransmission; only with
    /// `recovering`.
    recover: u32,
    /// Sequence number of the last retransmission (or of the last partial ACK acted on).
    since: u32,
    /// The last acknowledgment number received.
    ack: u32,
    /// Duplicates of `ack` received (since the last rescue).
    dups: u8,
    /// A retransmission was sent since `ack` first came.
    sent: bool,
    /// A retransmission was sent: partial ACKs below `recover` are acted on.
    recovering: bool,
    /// When the last retransmission was sent (ms, the runner's clock).
    retx_ms: u32,
    /// Probes sent since the last retransmission that was answered.
    probes: u8,
    /// A probe is due at `probe_ms` unless an ACK past `since` comes first.
    armed: bool,
    probe_ms: u32,
}

const FREE: Entry = Entry {
    key: 0,
    recover: 0,
    since: 0,
    ack: 0,
    dups: 0,
    sent: false,
    recovering: false,
    retx_ms: 0,
    probes: 0,
    armed: false,
    probe_ms: 0,
};

/// What to do with the kept frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kept {
    /// Nothing kept.
    None,
    /// A partial ACK: hand it over [`REPLAYS`] times.
    Partial,
    /// A duplicate ACK after a lost fast retransmission, or the probe of a retransmission
    /// that got no answer: see [`RESCUE_COPIES`].
    Rescue,
    /// Kept for a later probe only: nothing to hand over now.
    Store,
}

/// See the module docs. Lives in the `RstGuard` shared by a poll's receive and transmit tokens.
pub(crate) struct Recovery {
    entries: [Cell<Entry>; ENTRIES],
    /// Entries in use.
    used: Cell<u8>,
    /// Where a new entry goes when none is free (round robin).
    next: Cell<u8>,
    /// The acknowledgment number of the last TCP segment received (any connection).
    last_ack: Cell<u32>,
    /// The segment being received repeats the last one's acknowledgment number.
    repeated: Cell<bool>,
    /// The last received frame to hand over again, kept by [`Recovery::keep`].
    frame: Cell<[u8; FRAME_LEN]>,
    /// Its length.
    frame_len: Cell<u8>,
    /// Where its TCP header starts.
    tcp_at: Cell<u8>,
    /// What to do with it.
    kept: Cell<Kept>,
    /// What [`Recovery::screen`] decided for the frame being received.
    decided: Cell<Kept>,
    /// The connection and acknowledgment number of the frame being screened, then of the
    /// kept frame (a probe replays it only while its connection's ACK is still that one).
    decided_for: Cell<(u64, u32)>,
    kept_for: Cell<(u64, u32)>,
    /// The runner's clock in ms (wrapping), set at each poll.
    now_ms: Cell<u32>,
    /// The last round trip measured (ms; 0: none yet), on any connection (entries do not
    /// outlive a recovery): from our SYN or SYN-ACK to the answer, or from a retransmission
    /// to the ACK past it.
    rtt_ms: Cell<u16>,
    /// The connection and time (ms) of the last SYN or SYN-ACK sent, until it is answered
    /// (connection 0: none).
    syn: Cell<(u64, u32)>,
    /// The tail-loss probe: the last connection to send new data (see [`tail`]).
    tail: TailProbe,
}

/// `a < b` in sequence space (or on the wrapping ms clock).
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// How long after a retransmission its probe is due: twice the connection's round trip
/// (plus slack) when one was measured, else [`PROBE_DEFAULT_MS`], doubled for each probe
/// already sent for the same hole.
#[inline(never)]
fn probe_timeout(rtt_ms: u16, probes: u8) -> u32 {
    let base = match u32::from(rtt_ms) {
        0 => PROBE_DEFAULT_MS,
        rtt => (2 * rtt + PROBE_SLACK_MS).clamp(PROBE_MIN_MS, PROBE_MAX_MS),
    };
    base << probes.min(PROBES)
}

impl Recovery {
    pub(crate) const fn new() -> Self {
        Self {
            entries: [const { Cell::new(FREE) }; ENTRIES],
            used: Cell::new(0),
            next: Cell::new(0),
            last_ack: Cell::new(0),
            repeated: Cell::new(false),
            frame: Cell::new([0; FRAME_LEN]),
            frame_len: Cell::new(0),
            tcp_at: Cell::new(0),
            kept: Cell::new(Kept::None),
            decided: Cell::new(Kept::None),
            decided_for: Cell::new((0, 0)),
            kept_for: Cell::new((0, 0)),
            now_ms: Cell::new(0),
            rtt_ms: Cell::new(0),
            syn: Cell::new((0, 0)),
            tail: TailProbe::new(),
        }
    }

    /// A SYN or SYN-ACK is being sent on connection `key`: time its answer, so that the
    /// round trip is known from the start of the connection (for the probes and
    /// `zero_window`), not only after a first retransmission.
    #[cold]
    pub(crate) fn on_syn(&self, key: u64) {
        self.syn.set((key, self.now_ms()));
    }

    /// Whether a SYN or SYN-ACK sent waits for its answer: then
    /// [`Recovery::syn_answered`] is to see each received TCP segment.
    #[inline]
    pub(crate) fn timing_syn(&self) -> bool {
        self.syn.get().0 != 0
    }

    /// A received TCP segment (`h`: its headers) with an ACK on the connection of the SYN
    /// timed is its answer: the time since is a round trip.
    #[cold]
    pub(crate) fn syn_answered(&self, h: &Headers<'_>) {
        let (key, sent_ms) = self.syn.get();
        if let Some(seg) = segment(h, true)
            && seg.key == key
            && seg.flags & ACK != 0
        {
            self.sample(self.now_ms().wrapping_sub(sent_ms));
            self.syn.set((0, 0));
        }
    }

    /// Records a round trip of `ms` milliseconds (the clock's ms, truncated). A round trip
    /// shorter than the clock's resolution reads as 0, which [`probe_timeout`] takes for
    /// "none measured" (and would wait [`PROBE_DEFAULT_MS`]): it is kept as 1 ms, so that a
    /// LAN's sub-millisecond round trip gives the shortest probe timeout, not the longest.
    fn sample(&self, ms: u32) {
        let rtt = u16::try_from(ms).unwrap_or(u16::MAX).max(1);
        self.rtt_ms.set(rtt);
        self.tail.update_timeout(rtt);
    }

    /// The runner's clock, in µs, at the start of a poll: kept in ms, the one division of the
    /// poll (the tail probe reads the clock on most segments and polls).
    #[inline]
    pub(crate) fn set_now(&self, us: i64) {
        self.now_ms.set((us / 1000) as u32);
    }

    /// When a probe armed now is due (ms), after `probes` probes for the same hole (also the
    /// timer of `zero_window`).
    pub(crate) fn timer_at(&self, probes: u8) -> u32 {
        self.now_ms().wrapping_add(self.timeout_ms(probes))
    }

    /// The probe timeout after `probes` probes (see [`probe_timeout`]).
    pub(crate) fn timeout_ms(&self, probes: u8) -> u32 {
        probe_timeout(self.rtt_ms.get(), probes)
    }

    /// The clock in ms, wrapping.
    #[inline]
    pub(crate) fn now_ms(&self) -> u32 {
        self.now_ms.get()
    }

    /// A segment with sequence number `seq` is being sent on connection `key` after one that
    /// started at `prev`, a later sequence number: a retransmission. Start following the
    /// connection, or keep following it with the same `recover`.
    #[cold]
    pub(crate) fn on_retransmit(&self, key: u64, seq: u32, prev: u32) {
        if key == 0 {
            return;
        }
        self.tail.on_retransmit(key);
        let e = match self.find(key) {
            Some(e) => e,
            None => self.add(key),
        };
        let entry = e.get();
        let recover = if entry.recovering && before(seq, entry.recover) {
            entry.recover
        } else {
            prev
        };
        e.set(Entry {
            key,
            recover,
            since: seq,
            sent: true,
            recovering: true,
            retx_ms: self.now_ms(),
            armed: entry.probes < PROBES,
            probe_ms: self.timer_at(entry.probes),
            ..entry
        });
    }

    /// Whether a received TCP segment (`tcp`: from its header to the end of the frame) needs
    /// [`Recovery::screen`]: a connection is followed, or the segment is short enough to be an
    /// ACK without payload and its acknowledgment number repeats the previous such segment's.
    /// The test every received TCP segment pays (data segments stop at the length).
    #[inline]
    pub(crate) fn watching(&self, tcp: &[u8]) -> bool {
        let Some(&[p0, p1, p2, p3, _, _, _, _, a, b, c, d]) = tcp.get(..12) else {
            self.repeated.set(false);
            return self.used.get() != 0;
        };
        let ack = u32::from_be_bytes([a, b, c, d]);
        let short = tcp.len() <= ACK_LEN;
        let repeated = short && self.last_ack.replace(ack) == ack;
        self.repeated.set(repeated);
        // A segment of the tail's connection may arm or disarm its probe.
        let ports = u32::from_be_bytes([p0, p1, p2, p3]);
        let probe = &self.tail;
        let tail =
            probe.follows(ports) && probe.acked(ack, short, self.now_ms(), self.rtt_ms.get());
        repeated | tail | (self.used.get() != 0)
    }

    /// New data from `seq` to `end` is being sent on connection `key` (`ports`: the
    /// segment's first four bytes): it becomes the tail, and its probe is armed.
    #[inline]
    pub(crate) fn on_data_sent(&self, key: u64, ports: u32, seq: u32, end: u32) {
        self.tail.on_data_sent(key, ports, seq, end, self.now_ms());
    }

    /// Our RST, or the peer's SYN or RST, on connection `key`: no tail probe for it (a
    /// replayed ACK of a closed connection would make smoltcp send a reset).
    #[inline]
    pub(crate) fn end_tail(&self, key: u64) {
        self.tail.end(key);
    }

    /// Judge a received IP packet (see the module docs): whether it is to be kept with
    /// [`Recovery::keep`] once the other guards are done with it.
    #[cold]
    pub(crate) fn screen(&self, ip: &[u8], snd_seq: impl FnOnce(u64) -> Option<u32>) -> bool {
        self.decided.set(Kept::None);
        let Some(seg) = segment(&Headers::parse(Framing::Ip, ip), true) else {
            return false;
        };
        if seg.flags & (SYN | RST) != 0 {
            // A new or reset connection.
            if let Some(e) = self.find(seg.key) {
                self.free(e);
            }
            self.end_tail(seg.key);
            return false;
        }
        if seg.flags & ACK == 0 {
            return false;
        }
        let found = self.find(seg.key);
        if let Some(e) = found {
            self.answered(e, seg.ack);
        }
        if seg.flags & FIN != 0 || payload_len(ip) != Some(0) {
            return false;
        }
        self.decided_for.set((seg.key, seg.ack));
        let e = match found {
            Some(e) => e,
            // A duplicate (its acknowledgment number repeats the last segment's): count.
            None if self.repeated.get() => {
                let e = self.add(seg.key);
                e.set(Entry {
                    ack: seg.ack,
                    ..e.get()
                });
                e
            }
            None => return self.keep_for_tail(seg.key),
        };
        let entry = e.get();
        if entry.recovering && !before(seg.ack, entry.recover) {
            // Everything sent before the loss acknowledged. With segments sent since still
            // outstanding, a loss among them that brings no duplicate ACK (the window is
            // full, or nothing more is sent) would wait for smoltcp's timeout: the probe is
            // armed on this ACK, as on a first duplicate ACK.
            if snd_seq(seg.key).is_some_and(|furthest| !before(furthest, seg.ack)) {
                e.set(Entry {
                    key: seg.key,
                    ack: seg.ack,
                    armed: true,
                    probe_ms: self.timer_at(0),
                    ..FREE
                });
                self.decided.set(Kept::Store);
                return true;
            }
            self.free(e);
            return self.keep_for_tail(seg.key);
        }
        if seg.ack == entry.ack {
            let dups = entry.dups.saturating_add(1);
            if dups >= RESCUE_AFTER && !entry.sent {
                // No retransmission after this many duplicates: smoltcp lost it.
                e.set(Entry { dups: 0, ..entry });
                self.decided.set(Kept::Rescue);
                return true;
            }
            // A duplicate with no retransmission sent yet: the segment at `ack` is missing.
            // Too few segments in flight make fewer than three duplicates (the peer's window
            // or ours is small): without more, smoltcp would wait for its timeout. So the
            // probe is armed here already (RFC 5827's early retransmit, by time).
            let arm = !entry.sent && !entry.armed && entry.probes < PROBES;
            e.set(Entry {
                dups,
                armed: entry.armed || arm,
                probe_ms: if arm {
                    self.timer_at(entry.probes)
                } else {
                    entry.probe_ms
                },
                ..entry
            });
            // Kept for a probe.
            self.decided.set(Kept::Store);
            return true;
        }
        if entry.recovering && before(entry.since, seg.ack) && before(seg.ack, entry.recover) {
            // The replays make smoltcp fast-retransmit the next hole; should that be lost to
            // a full driver (smoltcp 0.14 then keeps no timer), the probe sends it.
            e.set(Entry {
                since: seg.ack,
                ack: seg.ack,
                dups: 0,
                sent: false,
                armed: entry.probes < PROBES,
                probe_ms: self.timer_at(entry.probes),
                ..entry
            });
            self.decided.set(Kept::Partial);
            return true;
        }
        if entry.recovering {
            e.set(Entry {
                ack: seg.ack,
                dups: 0,
                sent: false,
                ..entry
            });
            self.decided.set(Kept::Store);
            return true;
        } else {
            // New data acknowledged before any retransmission: no loss to follow.
            self.free(e);
        }
        self.keep_for_tail(seg.key)
    }

    /// An ACK without payload on connection `key`, with no entry of its own: kept for the
    /// tail probe if `key` is the tail's and no entry of another connection has a kept frame
    /// to keep.
    fn keep_for_tail(&self, key: u64) -> bool {
        if self.tail.is(key) && self.used.get() == 0 {
            self.decided.set(Kept::Store);
            return true;
        }
        false
    }

    /// Keep the received `frame` (judged by [`Recovery::screen`] just before, as smoltcp
    /// gets it; its TCP header at `tcp_at`) to hand it over again with [`Recovery::replay`].
    #[cold]
    pub(crate) fn keep(&self, frame: &[u8], tcp_at: usize) {
        let mut buf = [0; FRAME_LEN];
        match (buf.get_mut(..frame.len()), u8::try_from(tcp_at)) {
            (Some(b), Ok(at)) if frame.len() >= tcp_at + 20 => {
                b.copy_from_slice(frame);
                self.frame.set(buf);
                self.frame_len.set(frame.len() as u8);
                self.tcp_at.set(at);
                self.kept.set(self.decided.get());
                self.kept_for.set(self.decided_for.get());
            }
            _ => self.kept.set(Kept::None),
        }
    }

    /// The connection and acknowledgment number of the kept frame.
    pub(crate) fn kept_for(&self) -> (u64, u32) {
        self.kept_for.get()
    }

    /// Whether a kept frame waits to be handed over.
    #[inline]
    pub(crate) fn pending(&self) -> bool {
        matches!(self.kept.get(), Kept::Partial | Kept::Rescue)
    }

    /// Hand the kept frame to `deliver` as the module docs say (smoltcp must have taken the
    /// original already), and forget it.
    #[cold]
    pub(crate) fn replay(&self, mut deliver: impl FnMut(&[u8])) {
        let kept = self.kept.get();
        if kept != Kept::None {
            // Still there for a probe.
            self.kept.set(Kept::Store);
        }
        let len = usize::from(self.frame_len.get());
        let mut frame = self.frame.get();
        let Some(f) = frame.get_mut(..len) else {
            return;
        };
        match kept {
            Kept::None | Kept::Store => {}
            Kept::Partial => {
                for _ in 0..REPLAYS {
                    deliver(f);
                }
            }
            Kept::Rescue => {
                let at = usize::from(self.tcp_at.get());
                let Some(tcp) = f.get_mut(at..at + 20) else {
                    return;
                };
                let win = u16::from_be_bytes([tcp[14], tcp[15]]);
                let sum = [tcp[16], tcp[17]];
                if win == 0 {
                    return;
                }
                // The window (the low half of the word at 12) one lower.
                rewrite_word(tcp, 12, 0xffff_0000, u32::from(win - 1));
                deliver(f);
                // As it came, checksum byte for byte.
                if let Some(tcp) = f.get_mut(at..at + 18) {
                    tcp[14..16].copy_from_slice(&win.to_be_bytes());
                    tcp[16..18].copy_from_slice(&sum);
                }
                for _ in 1..RESCUE_COPIES {
                    deliver(f);
                }
            }
        }
    }

    /// An ACK `ack` of the followed connection `e`: if it covers the last retransmission,
    /// that one arrived: no probe for it, and (unless a probe went out, which makes the
    /// sample ambiguous) the time since it was sent is the connection's round trip.
    fn answered(&self, e: &Cell<Entry>, ack: u32) {
        let entry = e.get();
        if !entry.sent || !before(entry.since, ack) {
            return;
        }
        if entry.probes == 0 {
            self.sample(self.now_ms().wrapping_sub(entry.retx_ms));
        }
        e.set(Entry {
            probes: 0,
            armed: false,
            ..entry
        });
    }

    /// Whether a probe is due now (see the module docs): then the kept ACK of its connection
    /// is marked to be handed over as a rescue, and [`Recovery::pending`] holds. A probe
    /// whose connection has no kept ACK (another connection's was kept since) is dropped.
    #[inline]
    pub(crate) fn probe_due(&self) -> bool {
        (self.used.get() != 0 && self.probe_due_now()) | self.tail_due()
    }

    /// Whether the tail probe is due now: then the kept ACK is marked to be handed over as a
    /// rescue (if it is the tail's latest), and the probe disarmed.
    #[inline]
    fn tail_due(&self) -> bool {
        self.tail.due(self.now_ms()) && self.tail_probe()
    }

    /// The tail probe is due: it goes out if the kept ACK is the tail's latest, and its
    /// connection is not in recovery (which has probes of its own).
    #[cold]
    fn tail_probe(&self) -> bool {
        let (key, ack) = self.tail.disarm();
        let own = self.find(key).is_some_and(|e| e.get().recovering);
        if own || self.kept.get() != Kept::Store || self.kept_for.get() != (key, ack) {
            return false;
        }
        self.kept.set(Kept::Rescue);
        true
    }

    #[cold]
    fn probe_due_now(&self) -> bool {
        let now = self.now_ms();
        let (key, ack) = self.kept_for.get();
        let mut due = false;
        for e in &self.entries {
            let entry = e.get();
            if !entry.armed || before(now, entry.probe_ms) {
                continue;
            }
            // Armed again (the timeout doubled): should the probe bring no retransmission
            // (smoltcp loses its fast retransmission to a full driver, and keeps no timer),
            // the next one asks again; a retransmission re-arms it anyway.
            let probes = entry.probes.saturating_add(1);
            e.set(Entry {
                armed: probes < PROBES,
                probes,
                probe_ms: self.timer_at(probes),
                ..entry
            });
            if !due && self.kept.get() != Kept::None && (key, ack) == (entry.key, entry.ack) {
                self.kept.set(Kept::Rescue);
                due = true;
            }
        }
        due
    }

    /// In how many ms the next probe is due, if one is armed.
    #[inline]
    pub(crate) fn next_probe(&self) -> Option<u32> {
        let tail = self.tail.due_at();
        if self.used.get() == 0 && tail.is_none() {
            return None;
        }
        let now = self.now_ms();
        let left = |at: u32| {
            let left = at.wrapping_sub(now);
            if (left as i32) < 0 { 0 } else { left }
        };
        let entries = if self.used.get() == 0 {
            None
        } else {
            self.entries
                .iter()
                .map(Cell::get)
                .filter(|e| e.armed)
                .map(|e| left(e.probe_ms))
                .min()
        };
        crate::time::earliest(entries, tail.map(left))
    }

    fn find(&self, key: u64) -> Option<&Cell<Entry>> {
        self.entries.iter().find(|e| e.get().key == key)
    }

    /// A fresh entry for `key` (the oldest is reused when all are taken).
    fn add(&self, key: u64) -> &Cell<Entry> {
        let entry = Entry { key, ..FREE };
        if let Some(e) = self.entries.iter().find(|e| e.get().key == 0) {
            e.set(entry);
            self.used.set(self.used.get() + 1);
            return e;
        }
        let i = usize::from(self.next.get()) % ENTRIES;
        self.next.set(((i + 1) % ENTRIES) as u8);
        self.entries[i].set(entry);
        &self.entries[i]
    }

    fn free(&self, e: &Cell<Entry>) {
        e.set(FREE);
        self.used.set(self.used.get().saturating_sub(1));
    }
}

#[cfg(all(test, feature = "proto-ipv4"))]
mod tests {
    extern crate std;
    use super::tail::{DELAYED_ACK_MS, TAIL_FLIGHT};
    use super::*;
    use std::vec::Vec;

    const US: [u8; 4] = [192, 0, 2, 2];
    const PEER: [u8; 4] = [192, 0, 2, 3];

    /// The peer's IPv4 segment on the connection 5000 -> 80 (port `port`) with `len` bytes of
    /// payload, window 1000 and a correct checksum.
    fn from(port: u16, ack: u32, flags: u8, len: usize) -> Vec<u8> {
        let mut p = std::vec![0u8; 40 + len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((40 + len) as u16).to_be_bytes());
        p[9] = 6;
        p[12..16].copy_from_slice(&PEER);
        p[16..20].copy_from_slice(&US);
        p[20..22].copy_from_slice(&port.to_be_bytes());
        p[22..24].copy_from_slice(&80u16.to_be_bytes());
        p[24..28].copy_from_slice(&7u32.to_be_bytes());
        p[28..32].copy_from_slice(&ack.to_be_bytes());
        p[32] = 0x50;
        p[33] = flags;
        p[34..36].copy_from_slice(&1000u16.to_be_bytes());
        let sum = tcp_checksum(&p);
        p[36..38].copy_from_slice(&sum.to_be_bytes());
        p
    }

    fn theirs(ack: u32, flags: u8, len: usize) -> Vec<u8> {
        from(5000, ack, flags, len)
    }

    /// The TCP checksum of an IPv4 packet (its checksum field included: 0 when correct).
    fn tcp_checksum(p: &[u8]) -> u16 {
        let tcp = &p[20..];
        let mut sum: u32 = 0;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        add(&p[12..20]);
        add(&[0, 6]);
        add(&(tcp.len() as u16).to_be_bytes());
        add(tcp);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// What the driver adapter does with a received packet: screen, and keep if asked.
    /// Whether it is to be handed over again (not only kept for a probe).
    fn received(r: &Recovery, ip: &[u8]) -> bool {
        let tcp = &ip[20..];
        let keep = r.watching(tcp) && r.screen(ip, |_| None);
        if keep {
            r.keep(ip, 20);
        }
        keep && matches!(r.decided.get(), Kept::Partial | Kept::Rescue)
    }

    /// Set the clock of `r` to `ms`.
    fn at(r: &Recovery, ms: u64) {
        r.set_now(ms as i64 * 1000);
    }

    fn key() -> u64 {
        segment(&Headers::parse(Framing::Ip, &theirs(0, ACK, 0)), true)
            .map(|s| s.key)
            .unwrap_or(0)
    }

    fn replayed(r: &Recovery) -> Vec<Vec<u8>> {
        let mut seen = Vec::new();
        r.replay(|f| seen.push(f.to_vec()));
        seen
    }

    #[test]
    fn the_answer_to_a_syn_gives_the_round_trip() {
        let r = Recovery::new();
        assert_eq!(r.timeout_ms(0), PROBE_DEFAULT_MS);
        let syn_ack = theirs(1, SYN | ACK, 0);
        let key = segment(&Headers::parse(Framing::Ip, &syn_ack), true)
            .unwrap()
            .key;
        r.set_now(1_000_000);
        r.on_syn(key);
        assert!(r.timing_syn());
        r.set_now(1_020_000);
        // Another connection's segment, or one without ACK, is not the answer.
        r.syn_answered(&Headers::parse(Framing::Ip, &from(5001, 1, ACK, 0)));
        r.syn_answered(&Headers::parse(Framing::Ip, &theirs(0, SYN, 0)));
        assert!(r.timing_syn());
        r.syn_answered(&Headers::parse(Framing::Ip, &syn_ack));
        assert!(!r.timing_syn());
        assert_eq!(r.timeout_ms(0), 2 * 20 + PROBE_SLACK_MS);
        assert_eq!(r.timeout_ms(1), 2 * (2 * 20 + PROBE_SLACK_MS));
    }

    #[test]
    fn a_silent_tail_is_probed_with_the_last_ack() {
        let r = Recovery::new();
        // Our ports as a segment we send carries them: 80 -> 5000.
        let ports = (80 << 16) | 5000;
        at(&r, 100);
        r.on_data_sent(key(), ports, 1000, 2460);
        r.on_data_sent(key(), ports, 2460, 3920);
        // Two segments outstanding: the shortest timeout (no round trip measured: 200 ms).
        assert_eq!(r.next_probe(), Some(PROBE_DEFAULT_MS));
        // Their ACK of everything: disarmed, and kept as the ACK to replay.
        at(&r, 101);
        assert!(!received(&r, &theirs(3920, ACK, 0)));
        assert_eq!(r.next_probe(), None);
        assert_eq!(r.kept_for(), (key(), 3920));
        // Round trip sampled from the first segment: 1 ms.
        assert_eq!(r.tail.rtt_ms(), 1);
        // The next flight, one segment: the delayed ACK allowance is added.
        r.on_data_sent(key(), ports, 3920, 5380);
        assert_eq!(r.next_probe(), Some(PROBE_MIN_MS + DELAYED_ACK_MS));
        at(&r, u64::from(101 + PROBE_MIN_MS + DELAYED_ACK_MS - 1));
        assert!(!r.probe_due());
        at(&r, u64::from(101 + PROBE_MIN_MS + DELAYED_ACK_MS));
        assert!(r.probe_due());
        // The rescue: the last ACK with a window one lower, then as it came.
        let frames = replayed(&r);
        assert_eq!(frames.len(), RESCUE_COPIES);
        assert_eq!(frames[1], theirs(3920, ACK, 0));
        // One probe per flight.
        assert!(!r.probe_due());
        assert_eq!(r.next_probe(), None);
        // A flight larger than TAIL_FLIGHT is not probed; our FIN ends the tail.
        r.on_data_sent(key(), ports, 5380, 5380 + TAIL_FLIGHT + 1);
        assert_eq!(r.next_probe(), None);
        r.on_data_sent(key(), ports, 5380, 6840);
        assert!(r.next_probe().is_some());
        r.end_tail(key());
        assert_eq!(r.next_probe(), None);
    }

    #[test]
    fn a_round_trip_below_a_millisecond_gives_the_shortest_probe_timeout() {
        let r = Recovery::new();
        let syn_ack = theirs(1, SYN | ACK, 0);
        // A LAN: the SYN-ACK answered 200 us later, within the same millisecond of the clock.
        r.set_now(5_000_100);
        r.on_syn(key());
        r.set_now(5_000_300);
        r.syn_answered(&Headers::parse(Framing::Ip, &syn_ack));
        assert!(!r.timing_syn());
        // Measured (as 1 ms), not taken for "none measured" (which waits 200 ms).
        assert_eq!(r.timeout_ms(0), PROBE_MIN_MS);
        // The same for a retransmission answered within the millisecond.
        let r = Recovery::new();
        assert!(!received(&r, &theirs(1000, ACK, 0)));
        for _ in 0..3 {
            assert!(!received(&r, &theirs(1000, ACK, 0)));
        }
        at(&r, 100);
        r.on_retransmit(key(), 1000, 9000);
        assert_eq!(r.next_probe(), Some(PROBE_DEFAULT_MS));
        assert!(received(&r, &theirs(3000, ACK, 0)));
        assert_eq!(r.timeout_ms(0), PROBE_MIN_MS);
    }

    #[test]
    fn partial_acks_below_recover_are_replayed_and_a_full_ack_ends_it() {
        let r = Recovery::new();
        assert!(!received(&r, &theirs(1000, ACK, 0)));
        // Segments up to 10000 sent; the one at 1000 retransmitted.
        r.on_retransmit(key(), 1000, 10000);
        // A duplicate ACK of the hole and an ACK with data: not partial ACKs.
        assert!(!received(&r, &theirs(1000, ACK, 0)));
        assert!(!received(&r, &theirs(3000, ACK, 10)));
        assert!(!r.pending());
        // The partial ACK: the next hole is at 3000. It is handed over three more times.
        let ack = theirs(3000, ACK, 0);
        assert!(received(&r, &ack));
        assert!(r.pending());
        assert_eq!(replayed(&r), std::vec![ack.clone(); REPLAYS]);
        assert!(!r.pending());
        assert!(replayed(&r).is_empty());
        // The same ACK again (a real duplicate) is not acted on twice.
        assert!(!received(&r, &ack));
        // smoltcp's fast retransmission of 3000 keeps `recover`.
        r.on_retransmit(key(), 3000, 12000);
        assert!(received(&r, &theirs(6000, ACK, 0)));
        assert_eq!(replayed(&r).len(), REPLAYS);
        // The ACK of everything sent before the loss ends it.
        assert!(!received(&r, &theirs(10000, ACK, 0)));
        assert_eq!(r.used.get(), 0);
        assert!(!received(&r, &theirs(11000, ACK, 0)));
    }

    #[test]
    fn duplicates_without_a_retransmission_are_rescued_with_a_window_update_first() {
        let r = Recovery::new();
        let dup = theirs(1000, ACK, 0);
        // The ACK, then duplicates: the first duplicate starts an entry.
        assert!(!received(&r, &dup));
        for _ in 1..RESCUE_AFTER {
            assert!(!received(&r, &dup));
        }
        // No retransmission went out: the next duplicate is kept.
        assert!(received(&r, &dup));
        let frames = replayed(&r);
        assert_eq!(frames.len(), RESCUE_COPIES);
        // The first has the window one lower and a correct checksum; the others are the ACK.
        let mut lower = dup.clone();
        lower[34..36].copy_from_slice(&999u16.to_be_bytes());
        lower[36..38].copy_from_slice(&[0, 0]);
        let sum = tcp_checksum(&lower);
        lower[36..38].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(frames[0], lower);
        assert_eq!(tcp_checksum(&frames[0]), 0);
        for f in &frames[1..] {
            assert_eq!(f, &dup);
        }
        // A retransmission sent: more duplicates are the peer's answers to it, left alone.
        r.on_retransmit(key(), 1000, 9000);
        for _ in 0..3 * RESCUE_AFTER {
            assert!(!received(&r, &dup));
        }
        // New data acknowledged before any retransmission ends an entry.
        let r = Recovery::new();
        assert!(!received(&r, &dup));
        assert!(!received(&r, &dup));
        assert_eq!(r.used.get(), 1);
        assert!(!received(&r, &theirs(2000, ACK, 0)));
        assert_eq!(r.used.get(), 0);
    }

    #[test]
    fn resets_syns_other_connections_and_sequence_wrap() {
        let r = Recovery::new();
        r.on_retransmit(key(), 1000, 10000);
        assert!(!received(&r, &theirs(3000, RST, 0)));
        assert_eq!(r.used.get(), 0);
        r.on_retransmit(key(), 1000, 10000);
        assert!(!received(&r, &theirs(3000, SYN | ACK, 0)));
        assert_eq!(r.used.get(), 0);
        // Another connection's ACK is not taken for this one's.
        r.on_retransmit(key(), 1000, 10000);
        assert!(!received(&r, &from(5001, 3000, ACK, 0)));
        assert!(received(&r, &theirs(3000, ACK, 0)));
        // Across the wrap of the sequence space.
        let r = Recovery::new();
        r.on_retransmit(key(), u32::MAX - 1000, 5000);
        assert!(received(&r, &theirs(100, ACK, 0)));
        assert!(!received(&r, &theirs(5000, ACK, 0)));
        assert_eq!(r.used.get(), 0);
        // Malformed input, and frames too long to keep.
        assert!(!Recovery::new().watching(&[]));
        r.on_retransmit(key(), 1, 10);
        assert!(!r.screen(&[], |_| None));
        assert!(!r.screen(&theirs(5, ACK, 0)[..30], |_| None));
        r.keep(&[0; FRAME_LEN + 1], 20);
        assert!(!r.pending());
        r.keep(&[0; 30], 20);
        assert!(!r.pending());
    }

    #[test]
    fn an_unanswered_retransmission_is_probed_after_twice_the_round_trip() {
        let r = Recovery::new();
        let dup = theirs(1000, ACK, 0);
        // The ACK and two duplicates (kept for a probe), then smoltcp's fast retransmission.
        at(&r, 100);
        for _ in 0..3 {
            assert!(!received(&r, &dup));
        }
        r.on_retransmit(key(), 1000, 9000);
        // No round trip measured yet: the default timeout.
        assert_eq!(r.next_probe(), Some(PROBE_DEFAULT_MS));
        at(&r, u64::from(100 + PROBE_DEFAULT_MS - 1));
        assert!(!r.probe_due());
        at(&r, u64::from(100 + PROBE_DEFAULT_MS));
        assert!(r.probe_due());
        // Armed again, twice as long, in case the probe brings no retransmission.
        assert_eq!(r.next_probe(), Some(2 * PROBE_DEFAULT_MS));
        // The probe is the rescue: the ACK with a window one lower, then the ACK four times.
        let frames = replayed(&r);
        assert_eq!(frames.len(), RESCUE_COPIES);
        assert_eq!(&frames[1..], &std::vec![dup.clone(); RESCUE_COPIES - 1][..]);
        // smoltcp sends the segment again: the next probe waits twice as long.
        r.on_retransmit(key(), 1000, 9000);
        assert_eq!(r.next_probe(), Some(2 * PROBE_DEFAULT_MS));
        // The ACK past it (a partial ACK: handed over again): the probe made the round trip
        // ambiguous, none is taken; the probe is armed again, for the fast retransmission
        // the replays ask for (smoltcp may lose it to a full driver).
        at(&r, 400);
        assert!(received(&r, &theirs(3000, ACK, 0)));
        let _ = replayed(&r);
        assert_eq!(r.next_probe(), Some(PROBE_DEFAULT_MS));
        assert_eq!(r.rtt_ms.get(), 0);
        // The next hole's retransmission is answered after 6 ms: a round trip of 6 ms.
        r.on_retransmit(key(), 3000, 9000);
        at(&r, 406);
        assert!(received(&r, &theirs(5000, ACK, 0)));
        assert_eq!(r.rtt_ms.get(), 6);
        let _ = replayed(&r);
        // The partial ACK made smoltcp resend 5000: probed after 2 x 6 + slack ms.
        r.on_retransmit(key(), 5000, 9000);
        assert_eq!(r.next_probe(), Some(2 * 6 + PROBE_SLACK_MS));
        at(&r, u64::from(406 + 2 * 6 + PROBE_SLACK_MS));
        assert!(r.probe_due());
        assert_eq!(replayed(&r)[1], theirs(5000, ACK, 0));
        // At most PROBES probes per hole, then smoltcp's own timer.
        for _ in 1..PROBES {
            r.on_retransmit(key(), 5000, 9000);
            at(&r, u64::from(r.now_ms()) + 10_000);
            assert!(r.probe_due());
            let _ = replayed(&r);
        }
        r.on_retransmit(key(), 5000, 9000);
        assert_eq!(r.next_probe(), None);
        // An ACK past `recover` ends the entry.
        assert!(!received(&r, &theirs(9000, ACK, 0)));
        assert_eq!(r.used.get(), 0);
    }

    #[test]
    fn an_ack_past_recover_with_data_outstanding_arms_the_probe() {
        let r = Recovery::new();
        at(&r, 100);
        // A loss, recovered: the retransmission of 1000, sent when 9000 was the furthest.
        r.on_retransmit(key(), 1000, 9000);
        // The ACK of everything up to `recover`, with 12000 sent since (the furthest segment):
        // kept, and the probe armed, as a segment after 9000 may be lost with no duplicate
        // ACK to come.
        let full = theirs(9000, ACK, 0);
        assert!(r.watching(&full[20..]));
        assert!(r.screen(&full, |k| (k == key()).then_some(12000)));
        r.keep(&full, 20);
        assert!(!r.pending());
        // The retransmission was answered within the same millisecond: the shortest timeout.
        assert_eq!(r.next_probe(), Some(PROBE_MIN_MS));
        at(&r, u64::from(100 + PROBE_MIN_MS));
        assert!(r.probe_due());
        assert_eq!(replayed(&r)[1], full);
        // New data acknowledged: nothing more to follow.
        assert!(!received(&r, &theirs(13460, ACK, 0)));
        assert_eq!(r.used.get(), 0);
        // With nothing sent past `recover`, the entry ends at once.
        r.on_retransmit(key(), 20000, 30000);
        let full = theirs(30000, ACK, 0);
        assert!(r.watching(&full[20..]));
        assert!(!r.screen(&full, |_| Some(28540)));
        assert_eq!(r.used.get(), 0);
        assert_eq!(r.next_probe(), None);
    }

    #[test]
    fn a_probe_needs_an_ack_of_its_own_connection_and_the_clock_wraps() {
        let r = Recovery::new();
        at(&r, u64::from(u32::MAX - 5));
        let dup = theirs(1000, ACK, 0);
        for _ in 0..3 {
            assert!(!received(&r, &dup));
        }
        r.on_retransmit(key(), 1000, 9000);
        // Another connection's duplicate ACKs are kept since: the first connection's probe
        // is dropped, the other's (armed by its duplicates) is the one handed over.
        let other = from(5001, 700, ACK, 0);
        for _ in 0..3 {
            assert!(!received(&r, &other));
        }
        at(&r, (1 << 32) + u64::from(PROBE_DEFAULT_MS));
        assert_eq!(r.next_probe(), Some(0));
        assert!(r.probe_due());
        assert_eq!(replayed(&r)[1], other);
        // Both armed again (twice as long), none due now.
        assert_eq!(r.next_probe(), Some(2 * PROBE_DEFAULT_MS));
        assert!(!r.probe_due());
        // A timeout far away on the wrapping clock is not due.
        let r = Recovery::new();
        at(&r, u64::from(u32::MAX - 5));
        for _ in 0..3 {
            assert!(!received(&r, &dup));
        }
        r.on_retransmit(key(), 1000, 9000);
        at(&r, (1 << 32) + 10);
        assert!(!r.probe_due());
        assert_eq!(r.next_probe(), Some(PROBE_DEFAULT_MS - 16));
    }

    #[test]
    fn a_duplicate_ack_arms_the_probe_and_new_data_acknowledged_disarms_it() {
        let r = Recovery::new();
        let dup = theirs(1000, ACK, 0);
        at(&r, 50);
        assert!(!received(&r, &dup));
        assert_eq!(r.next_probe(), None);
        // One duplicate, and nothing more comes (too few segments in flight for three).
        assert!(!received(&r, &dup));
        assert_eq!(r.next_probe(), Some(PROBE_DEFAULT_MS));
        // More duplicates do not push it back.
        at(&r, 60);
        assert!(!received(&r, &dup));
        assert_eq!(r.next_probe(), Some(PROBE_DEFAULT_MS - 10));
        at(&r, u64::from(50 + PROBE_DEFAULT_MS));
        assert!(r.probe_due());
        assert_eq!(replayed(&r).len(), RESCUE_COPIES);
        // Reordering, not a loss: the ACK of new data ends the entry and any probe.
        let r = Recovery::new();
        assert!(!received(&r, &dup));
        assert!(!received(&r, &dup));
        assert!(r.next_probe().is_some());
        assert!(!received(&r, &theirs(3000, ACK, 0)));
        assert_eq!(r.next_probe(), None);
        at(&r, 10_000);
        assert!(!r.probe_due());
    }
}
