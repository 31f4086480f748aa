//! A FIN that arrives together with data already received is passed to smoltcp alone.
//!
//! smoltcp 0.14 drops such a FIN. When a sender retransmits after a timeout, its last segment
//! can carry data the receiver already holds (it came in after a hole, which the same
//! retransmission has just filled) together with the FIN, which is new. smoltcp judges the
//! segment by `seq + payload length`, leaving the FIN out, so the segment "ends at RCV.NXT",
//! counts as entirely old, and is answered with a bare ACK before its FIN is looked at
//! (`TcpSocket::process`, the out-of-window branch). If the sender then has only the FIN
//! outstanding and gets three duplicate ACKs, smoltcp 0.14's sender does not resend it either
//! (a second bug, on the sending side): the connection never closes. Found by the goodput
//! benchmark; `crates/ferronet-bench/GOODPUT.md` traces it.
//!
//! [`rewrite`] looks at every received frame before smoltcp does. A TCP segment with FIN and
//! payload (no SYN, no RST) whose payload ends exactly at the acknowledgment number this
//! stack last sent on that connection (as [`RstGuard`] follows it) is cut down to a bare FIN
//! at that sequence number, with the IP length and both checksums fixed. smoltcp then takes
//! the FIN as in-window and acknowledges it. Nothing is lost: the payload was old data.
//!
//! What is not covered: a connection that is not in [`RstGuard`]'s table (more than
//! [`ENTRIES`](crate::rst_guard::ENTRIES) connections sending at once, or one on which this
//! stack has already sent its own FIN), a segment whose payload ends at an RCV.NXT this stack
//! has not acknowledged yet, IPv4 fragments and IPv6 packets with extension headers. Those
//! are left to smoltcp as before; the sender's retransmission timer (when it still runs)
//! then resends the FIN alone, which smoltcp accepts.

use smoltcp::wire::{IpAddress, TcpPacket};

use crate::ingress::{Framing, Headers};
use crate::rst_guard::RstGuard;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;

/// The TCP flags of the segment a packet carries.
#[inline(always)]
fn tcp_flags(h: &Headers<'_>) -> Option<u8> {
    h.tcp()?.get(13).copied()
}

/// If the IP packet `ip` carries old data with a new FIN for a connection `rst` follows,
/// rewrite it in place into a bare FIN and return its new length (the packet is to be cut
/// there). Called only for segments with FIN (`RstGuard::screen` says `Screen::Fin`).
#[cold]
#[cfg_attr(
    not(all(feature = "proto-ipv4", feature = "proto-ipv6")),
    allow(unused)
)]
pub(crate) fn rewrite(ip: &mut [u8], rst: &RstGuard) -> Option<usize> {
    let h = Headers::parse(Framing::Ip, ip);
    if tcp_flags(&h)? & (FIN | SYN | RST) != FIN || crate::lone_fin::payload_len(ip)? == 0 {
        return None;
    }
    let rcv_nxt = rst.last_ack_sent(&h)?;
    match ip.first()? >> 4 {
        #[cfg(feature = "proto-ipv4")]
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            let fragment = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x3fff;
            if fragment != 0 || total > ip.len() || ihl < 20 {
                return None;
            }
            let header = bare(ip.get_mut(ihl..total)?, rcv_nxt)?;
            let len = ihl + header;
            ip[2..4].copy_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
            let mut packet = smoltcp::wire::Ipv4Packet::new_unchecked(&mut ip[..len]);
            packet.fill_checksum();
            let (src, dst) = (packet.src_addr(), packet.dst_addr());
            fill_tcp_checksum(&mut ip[ihl..len], src.into(), dst.into());
            Some(len)
        }
        #[cfg(feature = "proto-ipv6")]
        6 => {
            let payload = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
            let header = bare(ip.get_mut(40..40 + payload)?, rcv_nxt)?;
            ip[4..6].copy_from_slice(&u16::try_from(header).ok()?.to_be_bytes());
            let src = smoltcp::wire::Ipv6Address::from(<[u8; 16]>::try_from(&ip[8..24]).ok()?);
            let dst = smoltcp::wire::Ipv6Address::from(<[u8; 16]>::try_from(&ip[24..40]).ok()?);
            fill_tcp_checksum(&mut ip[40..40 + header], src.into(), dst.into());
            Some(40 + header)
        }
        _ => None,
    }
}

/// If the TCP segment `tcp` (header and payload) has a payload ending at `rcv_nxt`, make its
/// sequence number `rcv_nxt` and return its header length (the payload is to be cut off).
#[cfg_attr(
    not(any(feature = "proto-ipv4", feature = "proto-ipv6")),
    allow(dead_code)
)]
fn bare(tcp: &mut [u8], rcv_nxt: u32) -> Option<usize> {
    let header = usize::from(*tcp.get(12)? >> 4) * 4;
    let payload = tcp.len().checked_sub(header)?;
    let seq = u32::from_be_bytes(tcp.get(4..8)?.try_into().ok()?);
    if header < 20 || payload == 0 || seq.wrapping_add(payload as u32) != rcv_nxt {
        return None;
    }
    tcp[4..8].copy_from_slice(&rcv_nxt.to_be_bytes());
    Some(header)
}

/// Recompute the TCP checksum of `tcp` (header and payload).
#[cfg_attr(
    not(any(feature = "proto-ipv4", feature = "proto-ipv6")),
    allow(dead_code)
)]
fn fill_tcp_checksum(tcp: &mut [u8], src: IpAddress, dst: IpAddress) {
    TcpPacket::new_unchecked(tcp).fill_checksum(&src, &dst);
}

#[cfg(all(test, feature = "proto-ipv4", feature = "proto-ipv6"))]
mod tests {
    extern crate std;
    use super::*;
    use crate::rst_guard::Screen;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        IpProtocol, IpRepr, Ipv4Address, Ipv4Packet, Ipv4Repr, Ipv6Address, Ipv6Packet, TcpControl,
        TcpRepr, TcpSeqNumber,
    };
    use std::vec::Vec;

    const US: Ipv4Address = Ipv4Address::new(192, 0, 2, 2);
    const PEER: Ipv4Address = Ipv4Address::new(192, 0, 2, 3);
    const US6: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const PEER6: Ipv6Address = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3);

    fn tcp(
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        control: TcpControl,
        payload: &[u8],
    ) -> TcpRepr<'_> {
        TcpRepr {
            src_port,
            dst_port,
            control,
            seq_number: TcpSeqNumber(seq as i32),
            ack_number: Some(TcpSeqNumber(ack as i32)),
            window_len: 4096,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload,
        }
    }

    /// An IPv4 or IPv6 packet carrying `t`.
    fn packet(src: IpAddress, dst: IpAddress, t: &TcpRepr<'_>) -> Vec<u8> {
        let caps = ChecksumCapabilities::default();
        let ip = IpRepr::new(src, dst, IpProtocol::Tcp, t.buffer_len(), 64);
        let mut buf = std::vec![0u8; ip.buffer_len()];
        ip.emit(&mut buf[..], &caps);
        let tcp = &mut buf[ip.header_len()..];
        t.emit(&mut TcpPacket::new_unchecked(tcp), &src, &dst, &caps);
        buf
    }

    fn v4(src: Ipv4Address, dst: Ipv4Address, t: &TcpRepr<'_>) -> Vec<u8> {
        packet(src.into(), dst.into(), t)
    }

    fn v6(src: Ipv6Address, dst: Ipv6Address, t: &TcpRepr<'_>) -> Vec<u8> {
        packet(src.into(), dst.into(), t)
    }

    /// The TCP segment in `tcp`, its checksum checked.
    fn parse(tcp: &[u8], src: IpAddress, dst: IpAddress) -> TcpRepr<'_> {
        let t = TcpPacket::new_checked(tcp).expect("a TCP header");
        TcpRepr::parse(&t, &src, &dst, &ChecksumCapabilities::default())
            .expect("valid TCP checksum")
    }

    /// A guard that knows we last acknowledged `ack` to the peer (port 80 -> 5000).
    fn guard(ack: u32) -> RstGuard {
        let g = RstGuard::new();
        let seg = tcp(80, 5000, 7, ack, TcpControl::None, &[]);
        for ip in [v4(US, PEER, &seg), v6(US6, PEER6, &seg)] {
            g.on_transmit(&Headers::parse(Framing::Ip, &ip), &ip);
        }
        g
    }

    #[test]
    fn old_data_with_a_new_fin_becomes_a_bare_fin() {
        let g = guard(1100);
        let mut ip = v4(
            PEER,
            US,
            &tcp(5000, 80, 1000, 8, TcpControl::Fin, &[0xaa; 100]),
        );
        assert_eq!(g.screen(&Headers::parse(Framing::Ip, &ip)), Screen::Fin);
        let len = rewrite(&mut ip, &g).expect("rewritten");
        assert_eq!(len, 40);
        let p = Ipv4Packet::new_checked(&ip[..len]).unwrap();
        assert!(p.verify_checksum());
        let repr = Ipv4Repr::parse(&p, &ChecksumCapabilities::default()).unwrap();
        assert_eq!(repr.payload_len, 20);
        let t = parse(p.payload(), PEER.into(), US.into());
        assert_eq!(t, tcp(5000, 80, 1100, 8, TcpControl::Fin, &[]));
    }

    #[test]
    fn ipv6_and_sequence_wrap_around() {
        let g = guard(0xffff_fff0);
        // The payload wraps around the sequence space.
        let seg = tcp(5000, 80, 0xffff_ffe0, 8, TcpControl::Fin, &[1; 16]);
        let mut ip = v6(PEER6, US6, &seg);
        assert_eq!(g.screen(&Headers::parse(Framing::Ip, &ip)), Screen::Fin);
        let len = rewrite(&mut ip, &g).expect("rewritten");
        assert_eq!(len, 40 + 20);
        let p = Ipv6Packet::new_checked(&ip[..len]).unwrap();
        assert_eq!(p.payload_len(), 20);
        let t = parse(p.payload(), PEER6.into(), US6.into());
        assert_eq!(t, tcp(5000, 80, 0xffff_fff0, 8, TcpControl::Fin, &[]));
    }

    #[test]
    fn everything_else_is_left_alone() {
        let g = guard(1100);
        let cases = [
            // New data with a FIN, old data ending elsewhere, no FIN, a bare FIN.
            v4(PEER, US, &tcp(5000, 80, 1100, 8, TcpControl::Fin, &[0; 10])),
            v4(PEER, US, &tcp(5000, 80, 1000, 8, TcpControl::Fin, &[0; 50])),
            v4(
                PEER,
                US,
                &tcp(5000, 80, 1000, 8, TcpControl::None, &[0; 100]),
            ),
            v4(PEER, US, &tcp(5000, 80, 1100, 8, TcpControl::Fin, &[])),
            // Another connection, RST.
            v4(
                PEER,
                US,
                &tcp(5001, 80, 1000, 8, TcpControl::Fin, &[0; 100]),
            ),
            v4(
                PEER,
                US,
                &tcp(5000, 80, 1000, 8, TcpControl::Rst, &[0; 100]),
            ),
        ];
        for (i, case) in cases.iter().enumerate() {
            let mut ip = case.clone();
            assert_eq!(rewrite(&mut ip, &g), None, "case {i}");
            assert_eq!(&ip, case, "case {i}");
        }
        // A fragment, a truncated packet, nothing.
        let mut frag = v4(
            PEER,
            US,
            &tcp(5000, 80, 1000, 8, TcpControl::Fin, &[0; 100]),
        );
        frag[6] = 0x20;
        assert_eq!(rewrite(&mut frag.clone(), &g), None);
        frag[6] = 0;
        let short = frag.len() - 1;
        assert_eq!(rewrite(&mut frag[..short], &g), None);
        assert_eq!(rewrite(&mut [], &g), None);
        assert_eq!(g.screen(&Headers::parse(Framing::Ip, &[])), Screen::Pass);
        // Only FIN segments go to `rewrite`; a wrong RST becomes a challenge.
        let ack = v4(
            PEER,
            US,
            &tcp(5000, 80, 1000, 8, TcpControl::None, &[0; 100]),
        );
        assert_eq!(g.screen(&Headers::parse(Framing::Ip, &ack)), Screen::Pass);
        assert!(matches!(
            g.screen(&Headers::parse(Framing::Ip, &cases[5])),
            Screen::Challenge(_)
        ));
    }
}
