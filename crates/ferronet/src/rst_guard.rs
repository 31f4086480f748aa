//! Blind resets: an RST must carry exactly the next sequence number the stack expects
//! (RFC 5961 section 3).
//!
//! smoltcp 0.14 accepts an RST anywhere in the receive window, so an attacker who knows a
//! connection's addresses and ports needs only about 2^32 / window guesses to reset it. RFC
//! 5961 asks for an exact match with RCV.NXT. smoltcp does not expose RCV.NXT, but every
//! segment it sends on a synchronized connection acknowledges it: [`RstGuard`] keeps, for the
//! last few connections that sent something, the acknowledgment number of their last segment
//! ([`RstGuard::on_transmit`]), and withholds from smoltcp an RST for such a connection whose
//! sequence number is not that one ([`RstGuard::screen`]).
//!
//! A non-matching RST is answered with a challenge ACK (RFC 5961 3.2): an ACK carrying the
//! connection's current sequence and acknowledgment numbers, to which a peer that really reset
//! the connection answers with the exact RST. smoltcp has no call to send one, but it sends
//! one itself, rate-limited to one a second per connection (RFC 5961 section 7), for a
//! segment whose acknowledgment number is beyond anything it sent: so the RST is handed to
//! smoltcp rewritten into such a segment (RST flag cleared, ACK set, its acknowledgment number
//! 2^30 past the sequence number of the connection's last segment sent, checksum updated).
//!
//! What is not met: an RST for a connection not in the table (more than [`ENTRIES`]
//! connections sending at once, or one that has not sent anything since the handshake) is
//! left to smoltcp's window check, which accepts any RST in the window. The rate limit is
//! smoltcp's, per connection; there is no limit across connections.

use core::cell::Cell;

use crate::ingress::Headers;

/// Connections remembered (the most recent senders).
pub(crate) const ENTRIES: usize = 4;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Local and remote port, and the remote address folded to 32 bits; 0: free.
    key: u64,
    /// The acknowledgment number of the last segment sent: RCV.NXT at that time.
    rcv_nxt: u32,
    /// The sequence number of the furthest segment sent (at or after SND.UNA).
    snd_seq: u32,
}

impl Entry {
    const FREE: Self = Self {
        key: 0,
        rcv_nxt: 0,
        snd_seq: 0,
    };
}

/// What the TCP guards make of a received packet ([`RstGuard::screen`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Screen {
    /// Hand it to smoltcp as it is.
    Pass,
    /// Withhold it from smoltcp (a duplicate ACK `lone_fin` keeps back).
    Drop,
    /// An RST that is not exact: rewrite it with [`challenge`] and this acknowledgment number,
    /// so that smoltcp answers it with a challenge ACK.
    Challenge(u32),
    /// A FIN: `stale_fin::rewrite` may cut old data off it.
    Fin,
    /// A partial ACK or a rescue (`recovery`): hand it to smoltcp, then keep the frame to
    /// hand it over again.
    PartialAck,
}

/// See the module docs. Shared by the receive and transmit tokens of one poll.
pub(crate) struct RstGuard {
    /// Connections whose FIN is outstanding (a second guard that follows the same segments).
    pub(crate) fins: crate::lone_fin::LoneFins,
    /// Connections recovering from a loss (a third guard that follows the same segments).
    pub(crate) recovery: crate::recovery::Recovery,
    /// A window update after a zero window, sent again if the peer stays silent (a fourth).
    pub(crate) zero_window: crate::zero_window::ZeroWindow,
    entries: [Cell<Entry>; ENTRIES],
    /// Where the next new connection goes (round robin).
    next: Cell<u8>,
}

/// What the guard needs of a TCP segment in an IP packet.
pub(crate) struct Segment {
    /// Key as seen from this stack: (our port, their port, their address).
    pub(crate) key: u64,
    pub(crate) seq: u32,
    pub(crate) ack: u32,
    pub(crate) flags: u8,
}

/// TCP flags, as in the header's 14th byte (shared by the TCP guards).
pub(crate) const FIN: u8 = 0x01;
pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const ACK: u8 = 0x10;

impl RstGuard {
    pub(crate) const fn new() -> Self {
        Self {
            fins: crate::lone_fin::LoneFins::new(),
            recovery: crate::recovery::Recovery::new(),
            zero_window: crate::zero_window::ZeroWindow::new(),
            entries: [const { Cell::new(Entry::FREE) }; ENTRIES],
            next: Cell::new(0),
        }
    }

    /// A frame (`h`: its headers) is being sent: remember what a TCP segment acknowledges.
    /// Always inlined: its one caller is on the path of every frame sent.
    #[inline(always)]
    pub(crate) fn on_transmit(&self, h: &Headers<'_>, frame: &[u8]) {
        let Some(seg) = segment(h, false) else {
            return;
        };
        if seg.flags & (RST | FIN | SYN) != 0 {
            self.fins.on_transmit(&seg, h.ip);
            if seg.flags & SYN != 0 {
                self.recovery.on_syn(seg.key);
            }
        }
        if seg.flags & (ACK | SYN) == ACK {
            self.zero_window.on_transmit(&seg, h, frame, &self.recovery);
        }
        let found = self.entry(seg.key);
        // A segment that starts before the furthest one sent: a retransmission (the furthest
        // stays the reference, so that each retransmission of a recovery counts).
        let mut snd_seq = seg.seq;
        if let Some(e) = found
            && ((seg.seq.wrapping_sub(e.get().snd_seq)) as i32) < 0
            && seg.flags & (SYN | RST) == 0
        {
            snd_seq = e.get().snd_seq;
            self.recovery.on_retransmit(seg.key, seg.seq, snd_seq);
        }
        // New data (not a retransmission, our FIN may come with it): the tail probe follows
        // it (see `recovery`).
        let new_data = snd_seq == seg.seq && seg.flags & (ACK | RST | SYN) == ACK;
        if seg.flags & (RST | FIN) != 0 {
            // Our own reset or close: the connection is (about to be) gone.
            if let Some(e) = found {
                e.set(Entry::FREE);
            }
            if seg.flags & RST != 0 {
                self.recovery.end_tail(seg.key);
            } else if new_data {
                self.data_sent(&seg, h);
            }
            return;
        }
        if seg.flags & ACK == 0 {
            return;
        }
        if new_data {
            self.data_sent(&seg, h);
        }
        let entry = Entry {
            key: seg.key,
            rcv_nxt: seg.ack,
            snd_seq,
        };
        match found {
            Some(e) => e.set(entry),
            None => {
                let i = usize::from(self.next.get()) % ENTRIES;
                self.entries[i].set(entry);
                self.next.set(((i + 1) % ENTRIES) as u8);
            }
        }
    }

    /// A segment `seg` (`h`: its headers) we send that is not a retransmission: if it carries
    /// data, the tail probe of `recovery` follows it. The frame is ours: the TCP segment runs
    /// to its end (no padding on frames with data), so the payload length comes from the
    /// headers already parsed; `lone_fin::payload_len`, out of line and reading the IP length,
    /// cost 0.8 % more instructions per TCP round trip on this path (every data segment sent).
    #[inline]
    fn data_sent(&self, seg: &Segment, h: &Headers<'_>) {
        if let Some(&[a, b, c, d]) = h.transport.get(..4)
            && let Some(&offset) = h.transport.get(12)
            && let Some(len @ 1..) = h.transport.len().checked_sub(usize::from(offset >> 4) * 4)
        {
            let end = seg.seq.wrapping_add(len as u32);
            let ports = u32::from_be_bytes([a, b, c, d]);
            self.recovery.on_data_sent(seg.key, ports, seg.seq, end);
        }
    }

    /// In how many ms the next timer of the TCP guards is due (a probe of `recovery`, a
    /// window update `zero_window` sends again), if one is armed.
    #[inline]
    pub(crate) fn next_timer(&self) -> Option<u32> {
        let probe = self.recovery.next_probe();
        if !self.zero_window.following() {
            return probe;
        }
        crate::time::earliest(probe, self.zero_window.next(self.recovery.now_ms()))
    }

    /// The entry of connection `key`, if it is followed.
    #[inline]
    fn entry(&self, key: u64) -> Option<&Cell<Entry>> {
        self.entries.iter().find(|e| e.get().key == key)
    }

    /// The sequence number of the furthest segment sent on connection `key`, if known.
    fn snd_seq(&self, key: u64) -> Option<u32> {
        self.entry(key).map(|e| e.get().snd_seq)
    }

    /// For a received TCP segment of a known connection: the acknowledgment number this stack
    /// last sent on it (RCV.NXT when it was sent), for `stale_fin`.
    pub(crate) fn last_ack_sent(&self, h: &Headers<'_>) -> Option<u32> {
        let seg = segment(h, true)?;
        self.entry(seg.key).map(|e| e.get().rcv_nxt)
    }

    /// Judge a received packet for the TCP guards, with one test of its flags for the
    /// common case: an RST for a known connection whose sequence number is not the one
    /// expected becomes a challenge (see the module docs), a duplicate ACK `lone_fin` keeps
    /// back is dropped, a FIN goes to `stale_fin`.
    #[inline]
    pub(crate) fn screen(&self, h: &Headers<'_>) -> Screen {
        let flags = h.tcp().and_then(|t| t.get(13)).copied().unwrap_or(0);
        if flags & RST != 0
            && flags & SYN == 0
            && let Some(ack) = self.challenge_ack(h)
        {
            return Screen::Challenge(ack);
        }
        // What the peer sends after our window update, and the answer to our SYN.
        if self.zero_window.following() {
            self.zero_window.on_receive(h);
        }
        if self.recovery.timing_syn() {
            self.recovery.syn_answered(h);
        }
        // A duplicate ACK smoltcp 0.14 would answer by never resending our FIN.
        if self.fins.watching() && self.fins.withholds(h.ip) {
            return Screen::Drop;
        }
        // A partial ACK, or a duplicate ACK after a lost fast retransmission: smoltcp is to
        // see it again (see `recovery`).
        if let Some(tcp) = h.tcp()
            && self.recovery.watching(tcp)
            && self.recovery.screen(h.ip, |key| self.snd_seq(key))
        {
            return Screen::PartialAck;
        }
        if flags & (FIN | RST) == FIN {
            return Screen::Fin;
        }
        Screen::Pass
    }

    /// For an RST of a known connection: `None` if its sequence number is the one expected
    /// (the entry is then forgotten), else the acknowledgment number of the challenge.
    #[cold]
    fn challenge_ack(&self, h: &Headers<'_>) -> Option<u32> {
        let seg = segment(h, true)?;
        let e = self.entry(seg.key)?;
        let entry = e.get();
        if entry.rcv_nxt == seg.seq {
            e.set(Entry::FREE);
            return None;
        }
        Some(entry.snd_seq.wrapping_add(1 << 30))
    }
}

/// Turn the RST in the IP packet `ip` into an ACK with acknowledgment number `ack`, updating
/// the TCP checksum (see [`Screen::Challenge`]). A packet too short for a TCP header is left
/// alone (smoltcp drops it as malformed).
#[cold]
pub(crate) fn challenge(ip: &mut [u8], ack: u32) {
    let Some(tcp) = tcp_offset(ip).and_then(|at| ip.get_mut(at..)) else {
        return;
    };
    rewrite_word(tcp, 8, 0, ack);
    // The flags are the second byte of the word at 12.
    rewrite_word(tcp, 12, !(u32::from(RST) << 16), u32::from(ACK) << 16);
}

/// In the TCP segment `tcp` (header first), replace the 32-bit word at byte `at` (0: ports,
/// 4: sequence number, 8: acknowledgment number, 12: offset, flags and window) with
/// `(old & keep) | set`, and update the TCP checksum incrementally ([`adjust_checksum`]). A
/// segment too short for its header is left alone. The one helper for the guards' rewrites of
/// segments (challenge ACKs, made-up segments, SYN-cookie translation); not generic, so it is
/// built once.
pub(crate) fn rewrite_word(tcp: &mut [u8], at: usize, keep: u32, set: u32) {
    if tcp.len() < 20 || at > 12 {
        return;
    }
    let old = u32::from_be_bytes([tcp[at], tcp[at + 1], tcp[at + 2], tcp[at + 3]]);
    let new = (old & keep) | set;
    tcp[at..at + 4].copy_from_slice(&new.to_be_bytes());
    let sum = u16::from_be_bytes([tcp[16], tcp[17]]);
    tcp[16..18].copy_from_slice(&adjust_checksum(sum, old, new).to_be_bytes());
}

/// A checksum over data in which a 32-bit word changed from `old` to `new`, updated
/// incrementally (RFC 1624, equation 3): a checksum that was right stays right, one that was
/// wrong stays wrong.
pub(crate) fn adjust_checksum(sum: u16, old: u32, new: u32) -> u16 {
    let mut acc = u32::from(!sum);
    for shift in [16, 0] {
        acc += u32::from(!((old >> shift) as u16)) + ((new >> shift) & 0xffff);
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Where the TCP header starts in an IPv4 or IPv6 packet (no IPv6 extension headers), if it
/// is all there.
fn tcp_offset(ip: &[u8]) -> Option<usize> {
    let at = match ip.first()? >> 4 {
        4 => usize::from(ip[0] & 0x0f) * 4,
        6 => 40,
        _ => return None,
    };
    (ip.len() >= at + 20).then_some(at)
}

/// The TCP segment in a packet (no IPv6 extension headers), keyed from this stack's side:
/// `received` says which address and port are the peer's. Inlined: on the hot path of every
/// TCP segment sent.
#[inline]
pub(crate) fn segment(h: &Headers<'_>, received: bool) -> Option<Segment> {
    let tcp = h.tcp()?;
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(tcp.get(at..at + 4)?.try_into().ok()?))
    };
    let ports = word(0)?;
    let (src_port, dst_port) = (ports >> 16, ports & 0xffff);
    let (ours, theirs, peer) = if received {
        (dst_port, src_port, h.src)
    } else {
        (src_port, dst_port, h.dst)
    };
    Some(Segment {
        key: connection_key(ours, theirs, peer),
        seq: word(4)?,
        ack: word(8)?,
        flags: *tcp.get(13)?,
    })
}

/// The key of a connection as the TCP guards know it: our port, the peer's port and the
/// peer's address folded to 32 bits (ports as `u32` of 16 bits each).
#[inline]
pub(crate) fn connection_key(ours: u32, theirs: u32, peer: &[u8]) -> u64 {
    (u64::from(ours << 16 | theirs) << 32) | u64::from(fold(peer))
}

/// An address folded to 32 bits (an IPv4 address stays itself).
#[inline]
fn fold(addr: &[u8]) -> u32 {
    if let Ok(v4) = <[u8; 4]>::try_from(addr) {
        return u32::from_be_bytes(v4);
    }
    addr.chunks_exact(4).fold(0, |acc, c| {
        acc ^ u32::from_be_bytes([c[0], c[1], c[2], c[3]])
    })
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// An IPv4 TCP segment from `src` port `sp` to `dst` port `dp`.
    pub(crate) fn v4(
        src: [u8; 4],
        sp: u16,
        dst: [u8; 4],
        dp: u16,
        seq: u32,
        ack: u32,
        flags: u8,
    ) -> Vec<u8> {
        let mut p = std::vec![0u8; 40];
        p[0] = 0x45;
        p[9] = 6;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20..22].copy_from_slice(&sp.to_be_bytes());
        p[22..24].copy_from_slice(&dp.to_be_bytes());
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[28..32].copy_from_slice(&ack.to_be_bytes());
        p[32] = 0x50;
        p[33] = flags;
        p
    }

    /// Whether the guard turns `ip` into a challenge.
    fn rejects(g: &RstGuard, ip: &[u8]) -> bool {
        matches!(
            g.screen(&Headers::parse(crate::ingress::Framing::Ip, ip)),
            Screen::Challenge(_)
        )
    }

    fn sent(g: &RstGuard, ip: &[u8]) {
        g.on_transmit(&Headers::parse(crate::ingress::Framing::Ip, ip), ip);
    }

    const US: [u8; 4] = [192, 0, 2, 2];
    const PEER: [u8; 4] = [192, 0, 2, 3];

    #[test]
    fn only_an_exact_rst_passes_for_a_known_connection() {
        let g = RstGuard::new();
        sent(&g, &v4(US, 80, PEER, 5000, 10, 1000, ACK));
        assert!(rejects(&g, &v4(PEER, 5000, US, 80, 1001, 0, RST)));
        assert!(rejects(&g, &v4(PEER, 5000, US, 80, 999, 0, RST | ACK)));
        assert!(!rejects(&g, &v4(PEER, 5000, US, 80, 1000, 0, RST)));
        // Then the entry is gone: smoltcp judges what follows.
        assert!(!rejects(&g, &v4(PEER, 5000, US, 80, 1001, 0, RST)));
    }

    #[test]
    fn unknown_connections_syns_and_other_segments_pass() {
        let g = RstGuard::new();
        sent(&g, &v4(US, 80, PEER, 5000, 10, 1000, ACK));
        // Another port, another peer, not an RST, a SYN with RST.
        assert!(!rejects(&g, &v4(PEER, 5001, US, 80, 7, 0, RST)));
        assert!(!rejects(&g, &v4([192, 0, 2, 4], 5000, US, 80, 7, 0, RST)));
        assert!(!rejects(&g, &v4(PEER, 5000, US, 80, 7, 0, ACK)));
        assert!(!rejects(&g, &v4(PEER, 5000, US, 80, 7, 0, RST | SYN)));
        // Truncated, not TCP, not IP.
        assert!(!rejects(&g, &v4(PEER, 5000, US, 80, 7, 0, RST)[..30]));
        assert!(!rejects(&g, &[0x45, 0, 0]));
        assert!(!rejects(&g, &[]));
    }

    #[test]
    fn follows_the_latest_ack_and_forgets_closed_connections() {
        let g = RstGuard::new();
        sent(&g, &v4(US, 80, PEER, 5000, 10, 1000, ACK));
        sent(&g, &v4(US, 80, PEER, 5000, 10, 2000, ACK));
        assert!(rejects(&g, &v4(PEER, 5000, US, 80, 1000, 0, RST)));
        sent(&g, &v4(US, 80, PEER, 5000, 10, 2000, FIN | ACK));
        assert!(!rejects(&g, &v4(PEER, 5000, US, 80, 1000, 0, RST)));
        // A SYN (no ACK) creates nothing.
        sent(&g, &v4(US, 49152, PEER, 80, 10, 0, SYN));
        assert!(!rejects(&g, &v4(PEER, 80, US, 49152, 5, 0, RST)));
    }

    #[test]
    fn the_oldest_of_more_connections_is_forgotten() {
        let g = RstGuard::new();
        for port in 0..=ENTRIES as u16 {
            sent(&g, &v4(US, 80, PEER, 5000 + port, 10, 1000, ACK));
        }
        assert!(!rejects(&g, &v4(PEER, 5000, US, 80, 1, 0, RST)));
        assert!(rejects(
            &g,
            &v4(PEER, 5000 + ENTRIES as u16, US, 80, 1, 0, RST)
        ));
    }

    #[test]
    fn a_wrong_rst_becomes_an_ack_beyond_anything_sent_with_a_right_checksum() {
        use smoltcp::wire::{IpAddress, Ipv4Address, Ipv4Packet, TcpPacket};
        let g = RstGuard::new();
        sent(&g, &v4(US, 80, PEER, 5000, 0xffff_fff0, 1000, ACK));
        for (seq, flags) in [(1001u32, RST), (999, RST | ACK), (0, RST | ACK | 0x08)] {
            let mut p = v4(PEER, 5000, US, 80, seq, 77, flags);
            p[2..4].copy_from_slice(&40u16.to_be_bytes());
            let (src, dst): (IpAddress, IpAddress) =
                (Ipv4Address::from(PEER).into(), Ipv4Address::from(US).into());
            TcpPacket::new_unchecked(&mut p[20..]).fill_checksum(&src, &dst);
            Ipv4Packet::new_unchecked(&mut p[..]).fill_checksum();
            let verdict = g.screen(&Headers::parse(crate::ingress::Framing::Ip, &p));
            let Screen::Challenge(ack) = verdict else {
                panic!("not a challenge: {verdict:?}");
            };
            challenge(&mut p, ack);
            let t = TcpPacket::new_checked(&p[20..]).unwrap();
            assert!(t.verify_checksum(&src, &dst));
            assert!(!t.rst() && t.ack() && !t.syn());
            assert_eq!(t.psh(), flags & 0x08 != 0);
            assert_eq!(t.seq_number().0 as u32, seq);
            assert_eq!(
                t.ack_number().0 as u32,
                0xffff_fff0u32.wrapping_add(1 << 30)
            );
        }
    }

    #[test]
    fn a_rewritten_word_keeps_the_checksum_right_and_touches_nothing_else() {
        use smoltcp::wire::{IpAddress, Ipv4Address, TcpPacket};
        let (src, dst): (IpAddress, IpAddress) =
            (Ipv4Address::from(PEER).into(), Ipv4Address::from(US).into());
        let mut p = v4(PEER, 5000, US, 80, 0x8000_0001, 0xffff_0000, ACK | 0x08);
        p[34..36].copy_from_slice(&4096u16.to_be_bytes());
        TcpPacket::new_unchecked(&mut p[20..]).fill_checksum(&src, &dst);
        let tcp = &mut p[20..];
        rewrite_word(tcp, 4, 0, 0x7fff_ffff);
        rewrite_word(tcp, 8, 0, 1);
        // Flags SYN in place of PSH, window one lower.
        rewrite_word(tcp, 12, 0xf010_0000, (u32::from(SYN) << 16) | 4095);
        let t = TcpPacket::new_checked(&p[20..]).unwrap();
        assert!(t.verify_checksum(&src, &dst));
        assert_eq!(
            (t.seq_number().0 as u32, t.ack_number().0 as u32),
            (0x7fff_ffff, 1)
        );
        assert!(t.syn() && t.ack() && !t.psh() && !t.rst() && !t.fin());
        assert_eq!((t.window_len(), t.header_len()), (4095, 20));
        assert_eq!((t.src_port(), t.dst_port()), (5000, 80));
        // Past the header, or a segment cut short: left alone.
        let before = p.clone();
        rewrite_word(&mut p[20..], 16, 0, 0);
        rewrite_word(&mut p[20..39], 4, 0, 0);
        assert_eq!(p, before);
    }
}
