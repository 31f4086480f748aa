//! A FIN that smoltcp 0.14 would never send again: duplicate ACKs are withheld while it is
//! the only thing unacknowledged.
//!
//! smoltcp 0.14's sender counts duplicate ACKs and, at the third, sets its timer for a fast
//! retransmission. That retransmission sends only when the transmit buffer holds data
//! (`pending_fast_retransmit && !tx_buffer.is_empty()`), and the timer is set to idle either
//! way. With only the FIN outstanding (all data acknowledged, the FIN lost, or dropped by the
//! receiver: smoltcp ignores a FIN that arrives while it still has a hole before it) nothing
//! is sent and no timer is left: the connection never closes. Found by the goodput benchmark
//! and by `transfer_survives_loss_and_reordering` with many seeds (seed 397).
//!
//! [`LoneFins`] follows, for the last few connections that sent a FIN, the FIN's sequence
//! number ([`LoneFins::on_transmit`], called by `RstGuard::on_transmit`, which has parsed the
//! segment already). Of the ACKs without payload that then acknowledge
//! everything but the FIN, the first [`PASSED`] reach smoltcp (the first acknowledges data, the
//! second is a first duplicate) and the rest are withheld ([`LoneFins::withholds`]): smoltcp
//! never sees a third duplicate, so its retransmission timer stays armed and resends the FIN.
//! Such ACKs carry nothing else a closing sender needs. An ACK of the FIN, an RST or a SYN
//! ends the entry; a SYN or RST we send does too.
//!
//! What is not covered: more than [`ENTRIES`] connections closing at once (the oldest entry is
//! forgotten), IPv6 packets with extension headers. An entry whose peer vanished stays until
//! newer FINs push it out; until then every received frame costs a look-up in the table.

use core::cell::Cell;

use crate::ingress::{Framing, Headers};
use crate::rst_guard::{ACK, FIN, RST, SYN, Segment, segment};

/// Connections followed (the most recent FINs).
pub(crate) const ENTRIES: usize = 4;
/// ACKs of everything but the FIN passed to smoltcp after the FIN was sent.
pub(crate) const PASSED: u8 = 2;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// As in `RstGuard`: ports and the peer's address folded to 64 bits; 0: free.
    key: u64,
    /// The sequence number of our FIN.
    fin: u32,
    /// ACKs at `fin` passed so far.
    acks: u8,
}

const FREE: Entry = Entry {
    key: 0,
    fin: 0,
    acks: 0,
};

/// See the module docs. Lives in the `RstGuard` shared by a poll's receive and transmit tokens.
pub(crate) struct LoneFins {
    entries: [Cell<Entry>; ENTRIES],
    /// Entries in use: none is the common case, checked first on every received frame.
    used: Cell<u8>,
    /// Where a new entry goes when none is free (round robin).
    next: Cell<u8>,
}

impl LoneFins {
    pub(crate) const fn new() -> Self {
        Self {
            entries: [const { Cell::new(FREE) }; ENTRIES],
            used: Cell::new(0),
            next: Cell::new(0),
        }
    }

    /// A TCP segment with FIN, SYN or RST is being sent (`seg`, parsed by `RstGuard` from the
    /// IP packet `ip`): follow our FIN, or forget the connection on our SYN or RST.
    #[cold]
    pub(crate) fn on_transmit(&self, seg: &Segment, ip: &[u8]) {
        let Some(len) = payload_len(ip) else {
            return;
        };
        let found = self.find(seg.key);
        if seg.flags & (SYN | RST) != 0 {
            if let Some(e) = found {
                self.free(e);
            }
            return;
        }
        if seg.flags & FIN == 0 {
            return;
        }
        let fin = seg.seq.wrapping_add(len as u32);
        match found {
            // The same FIN again (a retransmission): keep the count.
            Some(e) if e.get().fin == fin => {}
            Some(e) => e.set(Entry {
                key: seg.key,
                fin,
                acks: 0,
            }),
            None => {
                let entry = Entry {
                    key: seg.key,
                    fin,
                    acks: 0,
                };
                match self.entries.iter().find(|e| e.get().key == 0) {
                    Some(e) => {
                        e.set(entry);
                        self.used.set(self.used.get() + 1);
                    }
                    None => {
                        let i = usize::from(self.next.get()) % ENTRIES;
                        self.entries[i].set(entry);
                        self.next.set(((i + 1) % ENTRIES) as u8);
                    }
                }
            }
        }
    }

    /// Whether a FIN is outstanding on some connection: only then does a received packet need
    /// [`LoneFins::withholds`]. The one test every received frame pays.
    #[inline]
    pub(crate) fn watching(&self) -> bool {
        self.used.get() != 0
    }

    /// Whether a received IP packet is an ACK that must not reach smoltcp (see the module
    /// docs).
    #[inline]
    pub(crate) fn withholds(&self, ip: &[u8]) -> bool {
        self.watching() && self.received(ip)
    }

    #[cold]
    fn received(&self, ip: &[u8]) -> bool {
        let Some(seg) = segment(&Headers::parse(Framing::Ip, ip), true) else {
            return false;
        };
        let Some(e) = self.find(seg.key) else {
            return false;
        };
        let entry = e.get();
        if seg.flags & (SYN | RST) != 0 || seg.ack == entry.fin.wrapping_add(1) {
            // A new or reset connection, or our FIN acknowledged: nothing to watch any more.
            self.free(e);
            return false;
        }
        if seg.flags & (ACK | FIN) != ACK || seg.ack != entry.fin || payload_len(ip) != Some(0) {
            return false;
        }
        if entry.acks < PASSED {
            e.set(Entry {
                acks: entry.acks + 1,
                ..entry
            });
            return false;
        }
        true
    }

    /// Whether `ack` acknowledges everything but the FIN of connection `key` (a duplicate
    /// ACK there must not be shown to smoltcp again: `recovery` asks before a replay).
    pub(crate) fn only_fin_left(&self, key: u64, ack: u32) -> bool {
        self.watching() && self.find(key).is_some_and(|e| e.get().fin == ack)
    }

    fn find(&self, key: u64) -> Option<&Cell<Entry>> {
        self.entries.iter().find(|e| e.get().key == key)
    }

    fn free(&self, e: &Cell<Entry>) {
        e.set(FREE);
        self.used.set(self.used.get().saturating_sub(1));
    }
}

/// The TCP payload length of an IPv4 or IPv6 packet (no IPv6 extension headers).
pub(crate) fn payload_len(ip: &[u8]) -> Option<usize> {
    let (ip_payload, tcp) = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            (total.checked_sub(ihl)?, ip.get(ihl..)?)
        }
        6 => (
            usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?])),
            ip.get(40..)?,
        ),
        _ => return None,
    };
    ip_payload.checked_sub(usize::from(*tcp.get(12)? >> 4) * 4)
}

#[cfg(all(test, feature = "proto-ipv4"))]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// An IPv4 TCP segment with `len` bytes of payload.
    fn v4(
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        ack: u32,
        flags: u8,
        len: usize,
    ) -> Vec<u8> {
        let mut p = std::vec![0u8; 40 + len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((40 + len) as u16).to_be_bytes());
        p[9] = 6;
        p[12..16].copy_from_slice(&src.0);
        p[16..20].copy_from_slice(&dst.0);
        p[20..22].copy_from_slice(&src.1.to_be_bytes());
        p[22..24].copy_from_slice(&dst.1.to_be_bytes());
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[28..32].copy_from_slice(&ack.to_be_bytes());
        p[32] = 0x50;
        p[33] = flags;
        p
    }

    /// What `RstGuard::on_transmit` does for the lone-FIN table.
    fn sent(g: &LoneFins, ip: &[u8]) {
        if let Some(seg) = segment(&Headers::parse(Framing::Ip, ip), false)
            && seg.flags & (FIN | SYN | RST) != 0
        {
            g.on_transmit(&seg, ip);
        }
    }

    const US: [u8; 4] = [192, 0, 2, 2];
    const PEER: [u8; 4] = [192, 0, 2, 3];

    /// Our segment on the connection 80 -> 5000.
    fn ours(seq: u32, flags: u8, len: usize) -> Vec<u8> {
        v4((US, 80), (PEER, 5000), seq, 7, flags, len)
    }

    /// The peer's segment on that connection.
    fn theirs(ack: u32, flags: u8, len: usize) -> Vec<u8> {
        v4((PEER, 5000), (US, 80), 7, ack, flags, len)
    }

    #[test]
    fn duplicate_acks_of_all_but_the_fin_are_withheld_after_two() {
        let g = LoneFins::new();
        assert!(!g.withholds(&theirs(1100, ACK, 0)));
        // Our last data with the FIN: the FIN is at 1100.
        sent(&g, &ours(1000, FIN | ACK, 100));
        assert!(!g.withholds(&theirs(1100, ACK, 0)));
        assert!(!g.withholds(&theirs(1100, ACK, 0)));
        assert!(g.withholds(&theirs(1100, ACK, 0)));
        assert!(g.withholds(&theirs(1100, ACK, 0)));
        // The FIN sent again by the retransmission timer keeps the count.
        sent(&g, &ours(1100, FIN | ACK, 0));
        assert!(g.withholds(&theirs(1100, ACK, 0)));
        // Data, a FIN from the peer, older ACKs: passed.
        assert!(!g.withholds(&theirs(1100, ACK, 10)));
        assert!(!g.withholds(&theirs(1100, ACK | FIN, 0)));
        assert!(!g.withholds(&theirs(1000, ACK, 0)));
        // The ACK of the FIN ends it.
        assert!(!g.withholds(&theirs(1101, ACK, 0)));
        assert_eq!(g.used.get(), 0);
        assert!(!g.withholds(&theirs(1100, ACK, 0)));
    }

    #[test]
    fn other_connections_resets_and_new_connections_are_left_alone() {
        let g = LoneFins::new();
        sent(&g, &ours(1000, FIN | ACK, 0));
        for _ in 0..5 {
            assert!(!g.withholds(&v4((PEER, 5001), (US, 80), 7, 1000, ACK, 0)));
        }
        // An RST from the peer forgets the connection.
        assert!(!g.withholds(&theirs(0, RST, 0)));
        assert_eq!(g.used.get(), 0);
        // So do our SYN and RST.
        sent(&g, &ours(1000, FIN | ACK, 0));
        sent(&g, &ours(5, SYN, 0));
        assert_eq!(g.used.get(), 0);
        sent(&g, &ours(1000, FIN | ACK, 0));
        sent(&g, &ours(1001, RST, 0));
        assert_eq!(g.used.get(), 0);
        // Segments without FIN, SYN or RST change nothing.
        sent(&g, &ours(1000, ACK, 10));
        assert_eq!(g.used.get(), 0);
        // Malformed input.
        assert!(!g.withholds(&[]));
        sent(&g, &[0x45]);
        sent(&g, &ours(1000, FIN | ACK, 10)[..30]);
        assert_eq!(g.used.get(), 0);
    }

    #[test]
    fn the_oldest_of_more_closing_connections_is_forgotten() {
        let g = LoneFins::new();
        for port in 0..=ENTRIES as u16 {
            sent(
                &g,
                &v4((US, 80), (PEER, 5000 + port), 1000, 7, FIN | ACK, 0),
            );
        }
        assert_eq!(usize::from(g.used.get()), ENTRIES);
        let dup = |port: u16| v4((PEER, 5000 + port), (US, 80), 7, 1000, ACK, 0);
        for _ in 0..PASSED {
            assert!(!g.withholds(&dup(0)));
            assert!(!g.withholds(&dup(ENTRIES as u16)));
        }
        assert!(!g.withholds(&dup(0)));
        assert!(g.withholds(&dup(ENTRIES as u16)));
    }
}
