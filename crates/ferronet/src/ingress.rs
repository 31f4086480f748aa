//! What the runner checks in every received frame before smoltcp sees it.
//!
//! [`SourceFilter`]: packets from a source address no host can have are discarded (RFC 1122
//! 3.2.1.3, RFC 4291 2.5.3). smoltcp already drops IPv4 sources that are broadcast
//! (including the subnet's) or multicast, and IPv6 sources that are multicast or unspecified;
//! it accepts the rest, so a UDP socket received datagrams "from" 0.0.0.0, 127.0.0.1 or the
//! stack's own address, whose answers then failed (`NoRoute`) or could never leave. This
//! drops, in addition:
//!
//! - IPv4: unspecified 0.0.0.0 (except to UDP port 67, where a DHCP server hears clients that
//!   have no address yet), loopback 127.0.0.0/8, one of the interface's own addresses, and the
//!   network address (host part all zeros) of one of its subnets;
//! - IPv6: loopback ::1 and one of the interface's own addresses.
//!
//! 6LoWPAN frames (IEEE 802.15.4 medium) are compressed and not checked.

use smoltcp::wire::IpCidr;

/// Where the IP header starts in a frame of the interface's medium, if it is checked.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(dead_code)] // which variants are built depends on the media enabled
pub(crate) enum Framing {
    /// Ethernet: the IP header follows a 14-byte header, after the EtherType.
    Ethernet,
    /// IP medium: the frame is the IP packet.
    Ip,
    /// Not checked (IEEE 802.15.4).
    Unchecked,
}

impl Framing {
    /// The IPv4 or IPv6 packet in `frame`, if it carries one and the framing is checked.
    #[inline]
    pub(crate) fn ip_packet(self, frame: &[u8]) -> Option<&[u8]> {
        match self {
            Framing::Ethernet => match frame.get(12..14) {
                Some([0x08, 0x00]) | Some([0x86, 0xdd]) => frame.get(14..),
                _ => None,
            },
            Framing::Ip => Some(frame),
            Framing::Unchecked => None,
        }
    }
}

impl Framing {
    /// The IPv4 or IPv6 packet in `frame`, mutable (see [`Framing::ip_packet`]).
    #[cfg(feature = "tcp")]
    #[inline]
    pub(crate) fn ip_packet_mut(self, frame: &mut [u8]) -> Option<&mut [u8]> {
        let len = self.ip_packet(frame)?.len();
        let at = frame.len() - len;
        frame.get_mut(at..)
    }
}

/// The interface's addresses at the start of a poll, to check sources against.
pub(crate) struct SourceFilter {
    framing: Framing,
    /// The first four of the interface's addresses (smoltcp's default holds two).
    own: heapless::Vec<IpCidr, 4>,
}

impl SourceFilter {
    /// A filter for an interface with these addresses.
    pub(crate) fn new(framing: Framing, addrs: &[IpCidr]) -> Self {
        let mut own = heapless::Vec::new();
        for a in addrs.iter().take(4) {
            let _ = own.push(*a);
        }
        Self { framing, own }
    }

    /// The medium's framing.
    #[cfg_attr(not(feature = "tcp"), allow(dead_code))]
    pub(crate) fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether `addr` is one of the interface's (first four) addresses.
    #[cfg(feature = "tcp-listener")]
    pub(crate) fn is_own(&self, addr: &smoltcp::wire::IpAddress) -> bool {
        self.own.iter().any(|c| c.address() == *addr)
    }

    /// Whether the packet in `frame` comes from an address no host can have.
    pub(crate) fn rejects(&self, frame: &[u8]) -> bool {
        let Some(ip) = self.framing.ip_packet(frame) else {
            return false;
        };
        match ip.first().map(|b| b >> 4) {
            #[cfg(feature = "proto-ipv4")]
            Some(4) => self.rejects_v4(ip),
            #[cfg(feature = "proto-ipv6")]
            Some(6) => self.rejects_v6(ip),
            _ => false,
        }
    }

    #[cfg(feature = "proto-ipv4")]
    fn rejects_v4(&self, ip: &[u8]) -> bool {
        let Some(src) = ip.get(12..16) else {
            return false;
        };
        let src = smoltcp::wire::Ipv4Address::new(src[0], src[1], src[2], src[3]);
        if src.is_unspecified() {
            return !is_udp_to_dhcp_server(ip);
        }
        if src.is_loopback() {
            return true;
        }
        self.own.iter().any(|cidr| match cidr {
            IpCidr::Ipv4(c) => {
                c.address() == src || (c.prefix_len() < 31 && c.network().address() == src)
            }
            #[allow(unreachable_patterns)]
            _ => false,
        })
    }

    #[cfg(feature = "proto-ipv6")]
    fn rejects_v6(&self, ip: &[u8]) -> bool {
        let Some(src) = ip.get(8..24).and_then(|s| <[u8; 16]>::try_from(s).ok()) else {
            return false;
        };
        let src = smoltcp::wire::Ipv6Address::from(src);
        src.is_loopback()
            || self.own.iter().any(|cidr| match cidr {
                IpCidr::Ipv6(c) => c.address() == src,
                #[allow(unreachable_patterns)]
                _ => false,
            })
    }
}

/// An IPv4 UDP datagram to port 67 (a DHCP server's), whose source may be unspecified.
#[cfg(feature = "proto-ipv4")]
fn is_udp_to_dhcp_server(ip: &[u8]) -> bool {
    let header_len = usize::from(ip[0] & 0x0f) * 4;
    ip.get(9) == Some(&17) && ip.get(header_len + 2..header_len + 4) == Some(&[0, 67][..])
}

#[cfg(all(test, feature = "proto-ipv4", feature = "proto-ipv6"))]
mod tests {
    extern crate std;
    use super::*;
    use smoltcp::wire::{Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr};
    use std::{vec, vec::Vec};

    fn filter(framing: Framing) -> SourceFilter {
        SourceFilter::new(
            framing,
            &[
                IpCidr::Ipv4(Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, 2), 24)),
                IpCidr::Ipv6(Ipv6Cidr::new(
                    Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
                    64,
                )),
            ],
        )
    }

    fn v4(src: [u8; 4], proto: u8, dst_port: u16) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[9] = proto;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&[192, 0, 2, 2]);
        p[22..24].copy_from_slice(&dst_port.to_be_bytes());
        p
    }

    fn v6(src: Ipv6Address) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[8..24].copy_from_slice(&src.octets());
        p
    }

    fn ethernet(ip: &[u8], ethertype: [u8; 2]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype);
        f.extend_from_slice(ip);
        f
    }

    #[test]
    fn impossible_ipv4_sources_are_rejected() {
        let f = filter(Framing::Ip);
        for src in [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [127, 9, 9, 9],
            [192, 0, 2, 2],
            [192, 0, 2, 0],
        ] {
            assert!(f.rejects(&v4(src, 17, 7)), "{src:?}");
        }
        for src in [
            [192, 0, 2, 1],
            [192, 0, 2, 99],
            [198, 51, 100, 7],
            [10, 0, 0, 0],
        ] {
            assert!(!f.rejects(&v4(src, 17, 7)), "{src:?}");
        }
        // A DHCP client without an address may talk to a server.
        assert!(!f.rejects(&v4([0, 0, 0, 0], 17, 67)));
        assert!(f.rejects(&v4([0, 0, 0, 0], 6, 67)));
    }

    #[test]
    fn impossible_ipv6_sources_are_rejected() {
        let f = filter(Framing::Ip);
        assert!(f.rejects(&v6(Ipv6Address::LOCALHOST)));
        assert!(f.rejects(&v6(Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2))));
        assert!(!f.rejects(&v6(Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3))));
        assert!(!f.rejects(&v6(Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1))));
    }

    #[test]
    fn ethernet_framing_and_short_or_other_frames() {
        let f = filter(Framing::Ethernet);
        assert!(f.rejects(&ethernet(&v4([127, 0, 0, 1], 17, 7), [0x08, 0x00])));
        assert!(f.rejects(&ethernet(&v6(Ipv6Address::LOCALHOST), [0x86, 0xdd])));
        // ARP, truncated and empty frames are smoltcp's to judge.
        assert!(!f.rejects(&ethernet(&v4([127, 0, 0, 1], 17, 7), [0x08, 0x06])));
        assert!(!f.rejects(&ethernet(&[0x45, 0, 0], [0x08, 0x00])));
        assert!(!f.rejects(&[]));
        assert!(!filter(Framing::Ip).rejects(&[0x45]));
        assert!(!filter(Framing::Unchecked).rejects(&v4([127, 0, 0, 1], 17, 7)));
    }
}
