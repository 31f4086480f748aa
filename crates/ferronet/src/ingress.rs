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
//!
//! [`Headers`]: where the IP header, its addresses and the transport header of a frame are,
//! found once per frame and handed to each check that looks at them (this filter, the RST
//! guard), instead of each finding them again.

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

/// Where the parts of an IP packet that the runner's checks look at are in a frame. Only the
/// lengths are checked: these are the bytes as received, which smoltcp validates later.
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "tcp"), allow(dead_code))] // the RST guard reads every field
pub(crate) struct Headers<'a> {
    /// The IP version (4 or 6); 0 if the frame holds no IP packet the framing lets us check,
    /// or one whose IP header is cut short or claims fewer than 20 bytes (smoltcp drops those
    /// as malformed).
    pub(crate) version: u8,
    /// The IP protocol (IPv6: the first next header, so an extension header is not looked
    /// through).
    pub(crate) protocol: u8,
    /// The source and destination addresses (4 or 16 bytes each).
    pub(crate) src: &'a [u8],
    pub(crate) dst: &'a [u8],
    /// From the transport header to the end of the frame.
    pub(crate) transport: &'a [u8],
    /// The whole IP packet, from its first header byte to the end of the frame (for the
    /// rare checks that need its length fields).
    pub(crate) ip: &'a [u8],
}

impl<'a> Headers<'a> {
    /// Find the headers of the IP packet in `frame`.
    #[inline]
    pub(crate) fn parse(framing: Framing, frame: &'a [u8]) -> Self {
        let ip = framing.ip_packet(frame).unwrap_or(&[]);
        // A packet whose IP header is cut short (or, IPv4, claims fewer than 20 bytes) is
        // smoltcp's to drop as malformed.
        match ip.first().map(|b| b >> 4) {
            #[cfg(feature = "proto-ipv4")]
            Some(4) => {
                let header = usize::from(ip[0] & 0x0f) * 4;
                match (ip.get(..20), ip.get(header..)) {
                    (Some(h), Some(transport)) if header >= 20 => Self {
                        version: 4,
                        protocol: h[9],
                        src: &h[12..16],
                        dst: &h[16..20],
                        transport,
                        ip,
                    },
                    _ => Self::NONE,
                }
            }
            #[cfg(feature = "proto-ipv6")]
            Some(6) => match (ip.get(..40), ip.get(40..)) {
                (Some(h), Some(transport)) => Self {
                    version: 6,
                    protocol: h[6],
                    src: &h[8..24],
                    dst: &h[24..40],
                    transport,
                    ip,
                },
                _ => Self::NONE,
            },
            _ => Self::NONE,
        }
    }

    /// No IP packet.
    const NONE: Self = Self {
        version: 0,
        protocol: 0,
        src: &[],
        dst: &[],
        transport: &[],
        ip: &[],
    };

    /// The TCP segment, if the packet carries one.
    #[cfg(feature = "tcp")]
    #[inline]
    pub(crate) fn tcp(&self) -> Option<&'a [u8]> {
        (self.protocol == 6).then_some(self.transport)
    }
}

/// The interface's addresses, to check sources against.
///
/// A copy, kept in the stack and refreshed where the addresses change (`apply_config`, and at
/// every poll while smoltcp's SLAAC may change them): the device adapter that checks each frame
/// cannot borrow the interface smoltcp is polling. Copying them at every poll instead cost
/// about 60 instructions per poll.
pub(crate) struct SourceFilter {
    framing: Framing,
    /// The interface's addresses (as many as it can hold: smoltcp's default is two).
    own: heapless::Vec<IpCidr, { smoltcp::config::IFACE_MAX_ADDR_COUNT }>,
}

impl SourceFilter {
    /// A filter for an interface with these addresses.
    pub(crate) fn new(framing: Framing, addrs: &[IpCidr]) -> Self {
        let mut filter = Self {
            framing,
            own: heapless::Vec::new(),
        };
        filter.set_addrs(addrs);
        filter
    }

    /// Check against these addresses from now on.
    pub(crate) fn set_addrs(&mut self, addrs: &[IpCidr]) {
        self.own.clear();
        for a in addrs {
            let _ = self.own.push(*a);
        }
    }

    /// The medium's framing is now `framing`.
    pub(crate) fn set_framing(&mut self, framing: Framing) {
        self.framing = framing;
    }

    /// The medium's framing.
    #[cfg_attr(not(feature = "tcp"), allow(dead_code))]
    pub(crate) fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether `addr` is one of the interface's addresses.
    #[cfg(feature = "tcp-listener")]
    pub(crate) fn is_own(&self, addr: &smoltcp::wire::IpAddress) -> bool {
        self.own.iter().any(|c| c.address() == *addr)
    }

    /// Whether the packet comes from an address no host can have.
    pub(crate) fn rejects(&self, h: &Headers<'_>) -> bool {
        match (h.version, h.src) {
            #[cfg(feature = "proto-ipv4")]
            (4, &[a, b, c, d]) => self.rejects_v4(smoltcp::wire::Ipv4Address::new(a, b, c, d), h),
            #[cfg(feature = "proto-ipv6")]
            (6, src) => <[u8; 16]>::try_from(src)
                .is_ok_and(|src| self.rejects_v6(smoltcp::wire::Ipv6Address::from(src))),
            _ => false,
        }
    }

    #[cfg(feature = "proto-ipv4")]
    fn rejects_v4(&self, src: smoltcp::wire::Ipv4Address, h: &Headers<'_>) -> bool {
        if src.is_unspecified() {
            // A UDP datagram to a DHCP server's port 67.
            return !(h.protocol == 17 && h.transport.get(2..4) == Some(&[0, 67][..]));
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
    fn rejects_v6(&self, src: smoltcp::wire::Ipv6Address) -> bool {
        src.is_loopback()
            || self.own.iter().any(|cidr| match cidr {
                IpCidr::Ipv6(c) => c.address() == src,
                #[allow(unreachable_patterns)]
                _ => false,
            })
    }
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

    fn rejects(f: &SourceFilter, frame: &[u8]) -> bool {
        f.rejects(&Headers::parse(f.framing(), frame))
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
            assert!(rejects(&f, &v4(src, 17, 7)), "{src:?}");
        }
        for src in [
            [192, 0, 2, 1],
            [192, 0, 2, 99],
            [198, 51, 100, 7],
            [10, 0, 0, 0],
        ] {
            assert!(!rejects(&f, &v4(src, 17, 7)), "{src:?}");
        }
        // A DHCP client without an address may talk to a server.
        assert!(!rejects(&f, &v4([0, 0, 0, 0], 17, 67)));
        assert!(rejects(&f, &v4([0, 0, 0, 0], 6, 67)));
    }

    #[test]
    fn impossible_ipv6_sources_are_rejected() {
        let f = filter(Framing::Ip);
        assert!(rejects(&f, &v6(Ipv6Address::LOCALHOST)));
        assert!(rejects(
            &f,
            &v6(Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2))
        ));
        assert!(!rejects(
            &f,
            &v6(Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3))
        ));
        assert!(!rejects(
            &f,
            &v6(Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1))
        ));
    }

    #[test]
    fn headers_are_found_and_cut_short_ones_left_to_smoltcp() {
        let p = v4([198, 51, 100, 7], 6, 80);
        let h = Headers::parse(Framing::Ip, &p);
        assert_eq!((h.version, h.protocol), (4, 6));
        assert_eq!(
            (h.src, h.dst),
            (&[198, 51, 100, 7][..], &[192, 0, 2, 2][..])
        );
        assert_eq!(h.transport, &p[20..]);
        let mut opts = v4([198, 51, 100, 7], 17, 67);
        opts[0] = 0x46;
        assert_eq!(Headers::parse(Framing::Ip, &opts).transport, &opts[24..]);
        let q = v6(Ipv6Address::LOCALHOST);
        let h = Headers::parse(Framing::Ip, &q);
        assert_eq!(
            (h.version, h.src),
            (6, &Ipv6Address::LOCALHOST.octets()[..])
        );
        assert!(h.transport.is_empty());
        // An IPv4 header claiming 16 bytes, or cut short: not looked at.
        let mut bad = v4([127, 0, 0, 1], 17, 7);
        bad[0] = 0x44;
        for short in [&bad[..], &p[..19], &q[..39]] {
            assert_eq!(Headers::parse(Framing::Ip, short).version, 0);
            assert!(!rejects(&filter(Framing::Ip), short));
        }
    }

    #[test]
    fn ethernet_framing_and_short_or_other_frames() {
        let f = filter(Framing::Ethernet);
        assert!(rejects(
            &f,
            &ethernet(&v4([127, 0, 0, 1], 17, 7), [0x08, 0x00])
        ));
        assert!(rejects(
            &f,
            &ethernet(&v6(Ipv6Address::LOCALHOST), [0x86, 0xdd])
        ));
        // ARP, truncated and empty frames are smoltcp's to judge.
        assert!(!rejects(
            &f,
            &ethernet(&v4([127, 0, 0, 1], 17, 7), [0x08, 0x06])
        ));
        assert!(!rejects(&f, &ethernet(&[0x45, 0, 0], [0x08, 0x00])));
        assert!(!rejects(&f, &[]));
        assert!(!rejects(&filter(Framing::Ip), &[0x45]));
        assert!(!rejects(
            &filter(Framing::Unchecked),
            &v4([127, 0, 0, 1], 17, 7)
        ));
    }
}
