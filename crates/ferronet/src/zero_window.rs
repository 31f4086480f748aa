//! A window update lost after a zero window: sent again when the peer stays silent.
//!
//! When the receive buffer of a connection fills before the application reads (a sender
//! that fills the whole window, a hole filled at once after a loss), smoltcp advertises a
//! zero window, and the sender stops. Once the application reads, smoltcp sends a window
//! update: an ACK without data, which nothing retransmits. If it is lost, the sender learns
//! of the open window only from its own zero-window probe: Linux sends the first one after
//! its retransmission timeout (200 ms at least), smoltcp 0.14 after its own (1 s at least),
//! and both back off. In the goodput benchmark (1 % loss) such losses stalled transfers for
//! 166-1212 ms; `both`, 16 KiB, 100 Mbit/s, 0.2 ms, N = 32 lost two (1.2 s): 46.9 / 45.4 % of
//! the link rate, 80.3 / 78.1 % with the re-send (embassy-net 77.7 / 30.7).
//!
//! [`ZeroWindow`] follows the last connection that advertised a zero window
//! ([`ZeroWindow::on_transmit`], called by `RstGuard::on_transmit`, which has parsed the
//! segment already). The next ACK without data that connection sends, with an open window,
//! is the window update: its frame is kept and a re-send is armed. Until the peer sends data,
//! a SYN, a FIN or an RST on the connection ([`ZeroWindow::on_receive`]), the runner sends
//! the kept frame again after the probe timeout of `recovery` (twice the measured round trip
//! plus 2 ms, within 10-500 ms; 200 ms before one was measured), at most [`RESENDS`] times,
//! each timeout doubled ([`ZeroWindow::due`], [`ZeroWindow::take`]). A later ACK without data
//! on the connection replaces the kept frame (a larger window); a segment with data, a FIN or
//! an RST we send ends it (smoltcp retransmits those itself).
//!
//! The copy is the ACK as smoltcp sent it, sent again as it was: the same acknowledgment
//! number, window and sequence number, valid as long as nothing came from the peer. A peer
//! that received the first one sees a duplicate ACK with nothing outstanding, which changes
//! nothing; a peer that has nothing more to send gets [`RESENDS`] extra ACKs.
//!
//! **An update held behind another connection's data.** smoltcp sends the update from its
//! transmit passes, which offer the sockets one packet each in slot order and end at the
//! first one the driver has no room for: while a socket in a lower slot keeps the driver's
//! queue full (an upload beside this download), every freed place went to its next segment,
//! and the update waited until that socket ran out of data (2.4 s in the scripted
//! reproduction, up to 224 ms in the goodput benchmark). So the zero-window ACK itself is
//! kept too, and once the application has read half the receive buffer ([`reopened`],
//! checked by the runner at the start of each poll while such an ACK is kept), the runner
//! takes a transmit token and hands smoltcp, with it, a made-up segment from the peer
//! ([`ZeroWindow::provocation`]): one byte before the window we advertised, acknowledging
//! what we had sent. smoltcp answers such old data at once with an ACK of its current
//! window, through that token, ahead of every transmit pass; it is the update, and is
//! followed as above. With no token free, the next poll tries again; once handed over (or
//! if the segment cannot be built, as when our ACK carries TCP options), not again for this
//! zero window.
//!
//! What is not covered: two connections reopening their windows at once (the later one is
//! followed), frames longer than `recovery::FRAME_LEN`, a window that opens with data going
//! the other way (the data segment carries the update, and smoltcp retransmits it), the
//! provocation on the IP medium without the `medium-ethernet` feature (smoltcp's own update
//! then waits its turn), and a zero-window ACK sent while another connection's update is
//! followed (not kept).

use core::cell::Cell;

#[cfg(feature = "medium-ethernet")]
use crate::ingress::Framing;
use crate::ingress::Headers;
use crate::lone_fin::payload_len;
use crate::recovery::{FRAME_LEN, Recovery};
#[cfg(feature = "medium-ethernet")]
use crate::rst_guard::{ACK, adjust_checksum, connection_key, rewrite_word};
use crate::rst_guard::{FIN, RST, SYN, Segment, segment};

/// Re-sends of one window update (each after a doubled timeout).
pub(crate) const RESENDS: u8 = 3;

/// See the module docs. Lives in the `RstGuard` shared by a poll's receive and transmit tokens.
pub(crate) struct ZeroWindow {
    /// The last connection that advertised a zero window (0: none).
    closed: Cell<u64>,
    /// The connection whose window update is kept (0: none).
    key: Cell<u64>,
    /// When the kept frame is due to be sent again (ms on the runner's wrapping clock).
    due_ms: Cell<u32>,
    /// Times it was sent again.
    resent: Cell<u8>,
    /// The kept frame and its length.
    frame: Cell<[u8; FRAME_LEN]>,
    len: Cell<u8>,
    /// The kept frame is the zero-window ACK of `closed` (no update is followed), from which
    /// [`ZeroWindow::provocation`] makes the segment that draws the update out of smoltcp.
    #[cfg(feature = "medium-ethernet")]
    closed_kept: Cell<bool>,
}

impl ZeroWindow {
    pub(crate) const fn new() -> Self {
        Self {
            closed: Cell::new(0),
            key: Cell::new(0),
            due_ms: Cell::new(0),
            resent: Cell::new(0),
            frame: Cell::new([0; FRAME_LEN]),
            len: Cell::new(0),
            #[cfg(feature = "medium-ethernet")]
            closed_kept: Cell::new(false),
        }
    }

    /// A TCP segment `seg` with an ACK (not a SYN) is being sent in `frame` (`h`: its headers);
    /// `timer`: the clock and timeouts of `recovery`. Always inlined: on the path of every
    /// segment sent, where it costs a load and two comparisons.
    #[inline(always)]
    pub(crate) fn on_transmit(
        &self,
        seg: &Segment,
        h: &Headers<'_>,
        frame: &[u8],
        timer: &Recovery,
    ) {
        let zero = matches!(h.transport.get(14..16), Some([0, 0]));
        if zero {
            self.closed.set(seg.key);
            #[cfg(feature = "medium-ethernet")]
            self.keep_closed(seg, h, frame);
        } else if self.closed.get() == seg.key || self.key.get() == seg.key {
            self.follow(seg, h, frame, timer);
        }
    }

    #[cfg(feature = "medium-ethernet")]
    /// Our zero-window ACK `frame` (`h`: its headers): kept for
    /// [`ZeroWindow::provocation`] unless a window update is followed (its frame stays).
    #[cold]
    fn keep_closed(&self, seg: &Segment, h: &Headers<'_>, frame: &[u8]) {
        // Room for the one byte the provocation adds.
        let keep = bare(seg, h) && frame.len() < FRAME_LEN && self.key.get() == 0;
        if keep {
            self.store(frame);
        }
        self.closed_kept.set(keep);
    }

    /// Keep `frame` (at most [`FRAME_LEN`] bytes: the callers check).
    fn store(&self, frame: &[u8]) {
        let mut buf = [0; FRAME_LEN];
        buf[..frame.len()].copy_from_slice(frame);
        self.frame.set(buf);
        self.len.set(frame.len() as u8);
    }

    #[cfg(feature = "medium-ethernet")]
    /// The connection whose zero-window ACK is kept while no update has been sent: the
    /// runner checks whether its application has read since, and then draws the update out
    /// (see [`ZeroWindow::provocation`]).
    #[inline]
    pub(crate) fn closed_kept(&self) -> Option<u64> {
        let key = self.closed.get();
        (self.closed_kept.get() && key != 0).then_some(key)
    }

    #[cfg(feature = "medium-ethernet")]
    /// The provocation was handed to smoltcp (whatever came of it): not again for this zero
    /// window.
    pub(crate) fn provoked(&self) {
        self.closed_kept.set(false);
    }

    #[cfg(feature = "medium-ethernet")]
    /// Write into `out` the segment that makes smoltcp send the window update of `closed` at
    /// once (see the module docs): from the peer, one byte before the window we advertised
    /// (old data, which smoltcp answers with an ACK carrying its current window, whatever
    /// else waits in the driver's queue), acknowledging what we had sent. Made from our kept
    /// zero-window ACK, with its addresses and ports swapped. Returns its length.
    #[cold]
    pub(crate) fn provocation(&self, framing: Framing, out: &mut [u8; FRAME_LEN]) -> Option<usize> {
        let len = usize::from(self.len.get());
        let kept = self.frame.get();
        let frame = kept.get(..len)?;
        let h = Headers::parse(framing, frame);
        let ip_at = len.checked_sub(h.ip.len())?;
        let tcp_at = len.checked_sub(h.transport.len())?;
        let new_len = len + 1;
        out.get_mut(..len)?.copy_from_slice(frame);
        *out.get_mut(len)? = 0;
        let f = out.get_mut(..new_len)?;
        if ip_at == 14 {
            // Ethernet: the frame goes the other way.
            let (dst, src) = f.split_at_mut(6);
            dst.swap_with_slice(src.get_mut(..6)?);
        }
        let ip = f.get_mut(ip_at..tcp_at)?;
        let tcp_len = match h.version {
            4 => {
                let (a, b) = ip.get_mut(12..20)?.split_at_mut(4);
                a.swap_with_slice(b);
                let total = u16::from_be_bytes([ip[2], ip[3]]);
                let grown = total.checked_add(1)?;
                ip[2..4].copy_from_slice(&grown.to_be_bytes());
                let sum = u16::from_be_bytes([ip[10], ip[11]]);
                let sum = adjust_checksum(sum, u32::from(total), u32::from(grown));
                ip[10..12].copy_from_slice(&sum.to_be_bytes());
                usize::from(grown).checked_sub(ip.len())?
            }
            6 => {
                let (a, b) = ip.get_mut(8..40)?.split_at_mut(16);
                a.swap_with_slice(b);
                let payload = u16::from_be_bytes([ip[4], ip[5]]);
                let grown = payload.checked_add(1)?;
                ip[4..6].copy_from_slice(&grown.to_be_bytes());
                usize::from(grown)
            }
            _ => return None,
        };
        let tcp = f.get_mut(tcp_at..)?;
        // No options: what they would say (timestamps, SACK blocks) is ours, not the peer's;
        // smoltcp's own update goes out then.
        if tcp.len() != tcp_len || tcp.len() != 21 || tcp[12] >> 4 != 5 {
            return None;
        }
        let word =
            |t: &[u8], at: usize| u32::from_be_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
        let (ports, seq, ack) = (word(tcp, 0), word(tcp, 4), word(tcp, 8));
        // Swapped addresses and ports leave the sum as it was; the byte added is 0.
        tcp[0..4].copy_from_slice(&ports.rotate_left(16).to_be_bytes());
        rewrite_word(tcp, 4, 0, ack.wrapping_sub(1));
        rewrite_word(tcp, 8, 0, seq);
        // Flags: ACK alone (the data offset and the window stay).
        rewrite_word(tcp, 12, 0xf000_ffff, u32::from(ACK) << 16);
        // The pseudo-header's TCP length.
        let sum = u16::from_be_bytes([tcp[16], tcp[17]]);
        let sum = adjust_checksum(sum, (tcp_len - 1) as u32, tcp_len as u32);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());
        Some(new_len)
    }

    /// A segment of the connection that advertised a zero window, or of the one followed.
    #[cold]
    fn follow(&self, seg: &Segment, h: &Headers<'_>, frame: &[u8], timer: &Recovery) {
        let bare = bare(seg, h);
        let fits = frame.len() <= FRAME_LEN;
        if self.closed.get() == seg.key {
            // The window update.
            self.closed.set(0);
            #[cfg(feature = "medium-ethernet")]
            self.closed_kept.set(false);
            if !(bare && fits) {
                return;
            }
            self.key.set(seg.key);
            self.resent.set(0);
            self.due_ms.set(timer.timer_at(0));
        } else if !(bare && fits) {
            // Data, a FIN or an RST: smoltcp retransmits those itself.
            self.key.set(0);
            return;
        }
        // The window update, or a later one (a larger window) that replaces it.
        self.store(frame);
    }

    /// Whether a window update is followed: then [`ZeroWindow::on_receive`] is to see each
    /// received TCP segment.
    #[inline]
    pub(crate) fn following(&self) -> bool {
        self.key.get() != 0
    }

    /// A TCP segment was received (`h`: its headers): data, a SYN, a FIN or an RST from the
    /// peer of the followed connection shows that the update arrived, or that it no longer
    /// matters.
    #[cold]
    pub(crate) fn on_receive(&self, h: &Headers<'_>) {
        let Some(seg) = segment(h, true) else {
            return;
        };
        if seg.key == self.key.get()
            && (seg.flags & (FIN | RST | SYN) != 0 || payload_len(h.ip) != Some(0))
        {
            self.key.set(0);
        }
    }

    /// Whether the kept window update is due to be sent again at `now_ms`.
    #[inline]
    pub(crate) fn due(&self, now_ms: u32) -> bool {
        self.key.get() != 0 && (now_ms.wrapping_sub(self.due_ms.get()) as i32) >= 0
    }

    /// In how many ms the kept window update is due, if one is followed.
    #[inline]
    pub(crate) fn next(&self, now_ms: u32) -> Option<u32> {
        if self.key.get() == 0 {
            return None;
        }
        let left = self.due_ms.get().wrapping_sub(now_ms);
        Some(if (left as i32) < 0 { 0 } else { left })
    }

    /// Hand the kept frame to `send` (it is due: [`ZeroWindow::due`]); `timeout_ms` gives the
    /// timeout after `n` re-sends. After the last re-send the connection is no longer followed.
    #[cold]
    pub(crate) fn take(
        &self,
        now_ms: u32,
        timeout_ms: impl FnOnce(u8) -> u32,
        send: impl FnOnce(&[u8]),
    ) {
        let resent = self.resent.get().saturating_add(1);
        self.resent.set(resent);
        if resent >= RESENDS {
            self.key.set(0);
        } else {
            self.due_ms.set(now_ms.wrapping_add(timeout_ms(resent)));
        }
        let frame = self.frame.get();
        if let Some(f) = frame.get(..usize::from(self.len.get())) {
            send(f);
        }
    }
}

/// Whether `seg` (`h`: its headers) is an ACK without data, SYN, FIN or RST.
fn bare(seg: &Segment, h: &Headers<'_>) -> bool {
    seg.flags & (FIN | RST | SYN) == 0 && payload_len(h.ip) == Some(0)
}

#[cfg(feature = "medium-ethernet")]
/// Whether the application of connection `key` has read enough since its zero window for
/// an update worth sending: half its receive buffer free (RFC 1122's receiver-side silly
/// window avoidance asks for the smaller of that and a segment; the application usually
/// reads the whole buffer at once). `None`: no socket has that connection any more.
pub(crate) fn reopened(sockets: &smoltcp::iface::SocketSet<'_>, key: u64) -> Option<bool> {
    sockets.iter().find_map(|(_, socket)| match socket {
        smoltcp::socket::Socket::Tcp(t) => {
            let (Some(local), Some(remote)) = (t.local_endpoint(), t.remote_endpoint()) else {
                return None;
            };
            let (ours, theirs) = (u32::from(local.port), u32::from(remote.port));
            let found = match remote.addr {
                #[cfg(feature = "proto-ipv4")]
                smoltcp::wire::IpAddress::Ipv4(a) => connection_key(ours, theirs, &a.octets()),
                #[cfg(feature = "proto-ipv6")]
                smoltcp::wire::IpAddress::Ipv6(a) => connection_key(ours, theirs, &a.octets()),
            };
            let capacity = t.recv_capacity();
            (found == key).then(|| capacity - t.recv_queue() >= capacity / 2)
        }
        #[allow(unreachable_patterns)]
        _ => None,
    })
}

#[cfg(all(test, feature = "proto-ipv4"))]
mod tests {
    extern crate std;
    use super::*;
    use crate::ingress::Framing;
    use crate::rst_guard::ACK;
    use std::vec::Vec;

    const US: [u8; 4] = [192, 0, 2, 2];
    const PEER: [u8; 4] = [192, 0, 2, 3];
    /// The first re-send's delay with no round trip measured.
    const FIRST: u32 = crate::recovery::PROBE_DEFAULT_MS;

    /// An IPv4 TCP segment on the connection 80 <-> 5000 with `len` bytes of payload.
    fn v4(ours: bool, seq: u32, ack: u32, flags: u8, win: u16, len: usize) -> Vec<u8> {
        let (src, sp, dst, dp) = if ours {
            (US, 80u16, PEER, 5000u16)
        } else {
            (PEER, 5000, US, 80)
        };
        let mut p = crate::rst_guard::tests::v4(src, sp, dst, dp, seq, ack, flags);
        p.resize(40 + len, 0);
        p[2..4].copy_from_slice(&((40 + len) as u16).to_be_bytes());
        p[34..36].copy_from_slice(&win.to_be_bytes());
        p
    }

    /// Sent at `now` ms, with a probe timeout of 10 ms (no round trip measured: 200 ms).
    fn sent(z: &ZeroWindow, p: &[u8], now: u32) {
        let h = Headers::parse(Framing::Ip, p);
        let seg = segment(&h, false).unwrap();
        let timer = Recovery::new();
        timer.set_now(i64::from(now) * 1000);
        z.on_transmit(&seg, &h, p, &timer);
    }

    fn received(z: &ZeroWindow, p: &[u8]) {
        if z.following() {
            z.on_receive(&Headers::parse(Framing::Ip, p));
        }
    }

    /// Re-sends taken at `now`, with a timeout of 10 << n ms.
    fn take(z: &ZeroWindow, now: u32) -> Option<Vec<u8>> {
        if !z.due(now) {
            return None;
        }
        let mut out = None;
        z.take(now, |n| 10 << n, |f| out = Some(f.to_vec()));
        out
    }

    #[test]
    fn a_window_update_after_a_zero_window_is_sent_again_until_the_peer_sends() {
        let z = ZeroWindow::new();
        sent(&z, &v4(true, 10, 1000, ACK, 0, 0), 0);
        assert!(!z.following());
        let update = v4(true, 10, 1000, ACK, 4096, 0);
        sent(&z, &update, 0);
        assert!(z.following());
        // No round trip measured: 200 ms.
        assert_eq!(z.next(0), Some(FIRST));
        assert_eq!(take(&z, FIRST - 1), None);
        assert_eq!(take(&z, FIRST).as_deref(), Some(&update[..]));
        // Then after 20 ms (the doubled timeout of `take`), not before.
        assert_eq!(z.next(FIRST), Some(20));
        assert_eq!(take(&z, FIRST + 19), None);
        // A bare ACK from the peer is no sign of the update.
        received(&z, &v4(false, 1000, 10, ACK, 500, 0));
        assert_eq!(take(&z, FIRST + 20).as_deref(), Some(&update[..]));
        // Data from the peer: the update arrived.
        received(&z, &v4(false, 1000, 10, ACK, 500, 100));
        assert!(!z.following());
        assert_eq!(z.next(1000), None);
        assert_eq!(take(&z, 1000), None);
    }

    #[test]
    #[cfg(feature = "medium-ethernet")]
    fn the_provocation_is_one_old_byte_from_the_peer_with_valid_checksums() {
        use smoltcp::wire::{Ipv4Address, Ipv4Packet, TcpPacket, TcpSeqNumber};
        let (us, peer) = (Ipv4Address::from(US), Ipv4Address::from(PEER));
        let frame = our_zero_window_ack(None);
        let z = ZeroWindow::new();
        assert_eq!(z.closed_kept(), None);
        sent(&z, &frame, 0);
        let key = z.closed_kept().expect("the zero-window ACK is kept");
        let mut out = [0; FRAME_LEN];
        let len = z.provocation(Framing::Ip, &mut out).expect("built");
        assert_eq!(len, frame.len() + 1);
        let ip = Ipv4Packet::new_checked(&out[..len]).expect("IPv4");
        assert!(ip.verify_checksum());
        assert_eq!((ip.src_addr(), ip.dst_addr()), (peer, us));
        assert_eq!(usize::from(ip.total_len()), len);
        let seg = TcpPacket::new_checked(ip.payload()).expect("TCP");
        assert!(seg.verify_checksum(&peer.into(), &us.into()));
        assert_eq!((seg.src_port(), seg.dst_port()), (5000, 80));
        // One byte before the window we advertised, acknowledging what we had sent.
        assert_eq!(seg.seq_number(), TcpSeqNumber(999));
        assert_eq!(seg.ack_number(), TcpSeqNumber(10));
        assert!(seg.ack() && !seg.psh() && !seg.syn() && !seg.fin() && !seg.rst());
        assert_eq!(seg.payload(), &[0]);
        // Once handed over, not again for this zero window; the update ends it too.
        z.provoked();
        assert_eq!(z.closed_kept(), None);
        sent(&z, &frame, 0);
        assert_eq!(z.closed_kept(), Some(key));
        sent(&z, &v4(true, 10, 1000, ACK, 4096, 0), 0);
        assert_eq!(z.closed_kept(), None);
        // Our zero-window ACK with an option (a SACK block): not made into a provocation.
        let z = ZeroWindow::new();
        sent(&z, &our_zero_window_ack(Some((1200, 1300))), 0);
        assert!(z.closed_kept().is_some());
        assert_eq!(z.provocation(Framing::Ip, &mut out), None);
    }

    /// Our zero-window ACK on 80 -> 5000 (seq 10, ack 1000), as smoltcp builds it, with a PSH
    /// (to see the provocation clear it) and the SACK block `sack`, if any.
    #[cfg(feature = "medium-ethernet")]
    fn our_zero_window_ack(sack: Option<(u32, u32)>) -> Vec<u8> {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{
            IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr,
            TcpSeqNumber,
        };
        let (us, peer) = (Ipv4Address::from(US), Ipv4Address::from(PEER));
        let tcp = TcpRepr {
            src_port: 80,
            dst_port: 5000,
            control: TcpControl::Psh,
            seq_number: TcpSeqNumber(10),
            ack_number: Some(TcpSeqNumber(1000)),
            window_len: 0,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [sack, None, None],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: us,
            dst_addr: peer,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.header_len(),
            hop_limit: 64,
        };
        let caps = ChecksumCapabilities::default();
        let mut frame = std::vec![0u8; ip.buffer_len() + tcp.header_len()];
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut frame[..]), &caps);
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut frame[20..]),
            &us.into(),
            &peer.into(),
            &caps,
        );
        frame
    }

    #[test]
    #[cfg(feature = "medium-ethernet")]
    fn a_connection_no_socket_has_is_not_looked_for_again() {
        use smoltcp::iface::{SocketSet, SocketStorage};
        use smoltcp::socket::tcp;
        // Borrowed storage: smoltcp may be built without `alloc` (Miri runs these tests so).
        let mut storage = [SocketStorage::EMPTY; 1];
        let mut set = SocketSet::new(&mut storage[..]);
        assert_eq!(reopened(&set, 1), None);
        // A socket without a connection does not match either.
        let (mut rx, mut tx) = ([0u8; 64], [0u8; 64]);
        set.add(tcp::Socket::new(
            tcp::SocketBuffer::new(&mut rx[..]),
            tcp::SocketBuffer::new(&mut tx[..]),
        ));
        assert_eq!(reopened(&set, 1), None);
    }

    #[test]
    fn at_most_three_resends_then_the_peer_is_left_alone() {
        let z = ZeroWindow::new();
        sent(&z, &v4(true, 10, 1000, ACK, 0, 0), 0);
        sent(&z, &v4(true, 10, 1000, ACK, 4096, 0), 10);
        let times: Vec<u32> = (0..1000).filter(|&t| take(&z, t).is_some()).collect();
        assert_eq!(times, [10 + FIRST, 30 + FIRST, 70 + FIRST]);
        assert!(!z.following());
    }

    #[test]
    fn a_later_update_replaces_the_kept_one_and_data_or_fin_we_send_ends_it() {
        let z = ZeroWindow::new();
        sent(&z, &v4(true, 10, 1000, ACK, 0, 0), 0);
        sent(&z, &v4(true, 10, 1000, ACK, 1024, 0), 10);
        let larger = v4(true, 10, 1000, ACK, 8192, 0);
        sent(&z, &larger, 99);
        assert_eq!(take(&z, 10 + FIRST).as_deref(), Some(&larger[..]));
        sent(&z, &v4(true, 10, 1000, ACK, 8192, 1), 99);
        assert!(!z.following());

        sent(&z, &v4(true, 11, 1000, ACK, 0, 0), 0);
        sent(&z, &v4(true, 11, 1000, ACK, 8192, 0), 10);
        assert!(z.following());
        sent(&z, &v4(true, 11, 1000, ACK | FIN, 8192, 0), 10);
        assert!(!z.following());
    }

    #[test]
    fn other_connections_fins_and_resets_from_the_peer() {
        let z = ZeroWindow::new();
        sent(&z, &v4(true, 10, 1000, ACK, 0, 0), 0);
        // Another connection's update is not the one.
        let mut other = v4(true, 10, 1000, ACK, 4096, 0);
        other[21] = 81;
        sent(&z, &other, 10);
        assert!(!z.following());
        sent(&z, &v4(true, 10, 1000, ACK, 4096, 0), 10);
        assert!(z.following());
        let mut theirs = v4(false, 1000, 10, ACK, 500, 100);
        theirs[23] = 81;
        received(&z, &theirs);
        assert!(z.following());
        received(&z, &v4(false, 1000, 10, ACK | FIN, 500, 0));
        assert!(!z.following());

        sent(&z, &v4(true, 10, 1000, ACK, 0, 0), 0);
        sent(&z, &v4(true, 10, 1000, ACK, 4096, 0), 10);
        received(&z, &v4(false, 1000, 10, RST, 0, 0));
        assert!(!z.following());
        // An update with data (traffic both ways) is not kept: smoltcp retransmits it.
        sent(&z, &v4(true, 10, 1000, ACK, 0, 0), 0);
        sent(&z, &v4(true, 10, 1000, ACK, 4096, 10), 10);
        assert!(!z.following());
        // Truncated frames are ignored.
        received(&z, &[0x45, 0, 0]);
    }
}
