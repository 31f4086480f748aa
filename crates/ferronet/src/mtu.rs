//! The largest packet a socket can send, so that a send that cannot fit the interface's MTU
//! fails at the call instead of vanishing.
//!
//! smoltcp 0.14 drops, without telling anyone, every packet larger than the interface's MTU
//! that it cannot fragment: every IPv6 packet (it has no IPv6 fragmentation), and every IPv4
//! packet unless the `proto-ipv4-fragmentation` feature is on, in which case it fragments IPv4
//! packets of up to `smoltcp::config::FRAGMENTATION_BUFFER_SIZE` bytes. On an IEEE 802.15.4
//! interface it drops every 6LoWPAN packet that does not fit one 127-byte frame once
//! compressed.
//!
//! The limits here are computed from the MTU the driver reported when the stack was created
//! (smoltcp reads it only then) and the header sizes smoltcp emits: a 20-byte IPv4 header (it
//! never sends options), a 40-byte IPv6 header (no extension headers on socket traffic), an
//! 8-byte UDP header. On 6LoWPAN the compressed size depends on the addresses, so the limit
//! there is a bound: a packet over it can never fit a frame, one under it may still not.

#[cfg(any(feature = "udp", feature = "icmp"))]
use smoltcp::wire::IpAddress;
#[cfg(any(feature = "udp", feature = "icmp", feature = "raw"))]
use smoltcp::wire::IpVersion;

/// Length of the IPv4 header smoltcp emits (it never sends options).
#[cfg(all(
    feature = "proto-ipv4",
    any(feature = "udp", feature = "icmp", feature = "raw")
))]
pub(crate) const IPV4_HEADER_LEN: usize = 20;
/// Length of the IPv6 header.
#[cfg(all(
    feature = "proto-ipv6",
    any(feature = "udp", feature = "icmp", feature = "raw")
))]
pub(crate) const IPV6_HEADER_LEN: usize = 40;
/// Length of the UDP header.
#[cfg(feature = "udp")]
pub(crate) const UDP_HEADER_LEN: usize = 8;
/// The largest IPv4 packet, and the largest IPv6 payload (16-bit length fields).
#[cfg(any(feature = "udp", feature = "icmp", feature = "raw"))]
const IP_MAX_LEN: usize = 65535;

/// The largest 6LoWPAN packet smoltcp 0.14 puts in an IEEE 802.15.4 frame, MAC header included
/// (it ignores the driver's MTU and uses this fixed value: 127 bytes less the 2-byte FCS).
#[cfg(all(
    feature = "medium-ieee802154",
    feature = "proto-ipv6",
    any(feature = "udp", feature = "icmp", feature = "raw")
))]
const SIXLOWPAN_FRAME_LEN: usize = 125;
/// The smallest IEEE 802.15.4 MAC header: frame control, PAN identifier and two short
/// addresses (no sequence number, PAN identifier compression).
#[cfg(all(
    feature = "medium-ieee802154",
    feature = "proto-ipv6",
    any(feature = "udp", feature = "icmp", feature = "raw")
))]
const IEEE802154_MIN_HEADER_LEN: usize = 8;
/// The smallest 6LoWPAN IPHC header (every field of the IPv6 header elided), plus the next
/// header byte carried inline (ICMPv6, raw).
#[cfg(all(
    feature = "medium-ieee802154",
    feature = "proto-ipv6",
    any(feature = "udp", feature = "icmp", feature = "raw")
))]
const IPHC_MIN_LEN: usize = 3;
/// A UDP header compressed by 6LoWPAN NHC (dispatch, ports in 4 bits each, checksum) takes 4
/// bytes instead of 8, and the inline next-header byte goes.
#[cfg(all(feature = "medium-ieee802154", feature = "proto-ipv6", feature = "udp"))]
const SIXLOWPAN_UDP_SAVING: usize = 8 - 4 + 1;

/// What limits the size of the packets an interface sends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg(any(feature = "udp", feature = "icmp", feature = "raw"))]
pub(crate) struct Link {
    /// The IP MTU: the driver's MTU less the Ethernet header where there is one.
    pub(crate) ip_mtu: u16,
    /// IEEE 802.15.4 medium: IPv6 packets go out compressed by 6LoWPAN, unfragmented.
    pub(crate) sixlowpan: bool,
}

/// The IP MTU of an interface of `medium` whose driver reports `max_transmission_unit`: less
/// the Ethernet header on Ethernet (never below zero), at most 65535.
pub(crate) fn ip_mtu(medium: smoltcp::phy::Medium, max_transmission_unit: usize) -> u16 {
    let ip_mtu = match medium {
        #[cfg(feature = "medium-ethernet")]
        smoltcp::phy::Medium::Ethernet => max_transmission_unit
            .saturating_sub(smoltcp::wire::EthernetFrame::<&[u8]>::header_len()),
        #[allow(unreachable_patterns)]
        _ => max_transmission_unit,
    };
    ip_mtu.min(usize::from(u16::MAX)) as u16
}

#[cfg(any(feature = "udp", feature = "icmp", feature = "raw"))]
impl crate::stack::Inner {
    /// What limits the size of the packets this interface sends.
    pub(crate) fn link(&self) -> Link {
        Link {
            ip_mtu: self.ip_mtu,
            #[cfg(feature = "medium-ieee802154")]
            sixlowpan: matches!(
                self.hardware_address(),
                smoltcp::wire::HardwareAddress::Ieee802154(_)
            ),
            #[cfg(not(feature = "medium-ieee802154"))]
            sixlowpan: false,
        }
    }
}

#[cfg(any(feature = "udp", feature = "icmp", feature = "raw"))]
impl Link {
    /// The largest IP packet of `version` (header included, as smoltcp emits it) that leaves
    /// the interface.
    pub(crate) fn max_ip_packet(&self, version: IpVersion) -> usize {
        let ip_mtu = usize::from(self.ip_mtu);
        match version {
            #[cfg(feature = "proto-ipv4")]
            IpVersion::Ipv4 => max_ipv4_packet(ip_mtu, fragmentation_limit()),
            #[cfg(all(feature = "medium-ieee802154", feature = "proto-ipv6"))]
            IpVersion::Ipv6 if self.sixlowpan => {
                IPV6_HEADER_LEN + SIXLOWPAN_FRAME_LEN - IEEE802154_MIN_HEADER_LEN - IPHC_MIN_LEN
            }
            #[cfg(feature = "proto-ipv6")]
            IpVersion::Ipv6 => ip_mtu.min(IPV6_HEADER_LEN + IP_MAX_LEN),
        }
    }

    /// The largest payload of an IP packet to `dst` (an ICMP message, header included).
    #[cfg(any(feature = "udp", feature = "icmp"))]
    pub(crate) fn max_ip_payload(&self, dst: &IpAddress) -> usize {
        self.max_ip_packet(dst.version())
            .saturating_sub(ip_header_len(dst))
    }

    /// The largest UDP payload to `dst`.
    #[cfg(feature = "udp")]
    pub(crate) fn max_udp_payload(&self, dst: &IpAddress) -> usize {
        #[allow(unused_mut)]
        let mut max = self.max_ip_payload(dst);
        #[cfg(all(feature = "medium-ieee802154", feature = "proto-ipv6"))]
        if self.sixlowpan && matches!(dst, IpAddress::Ipv6(_)) {
            max += SIXLOWPAN_UDP_SAVING;
        }
        max.saturating_sub(UDP_HEADER_LEN)
    }
}

/// The length of the IP header smoltcp puts in front of a packet to `dst`.
#[cfg(any(feature = "udp", feature = "icmp"))]
pub(crate) fn ip_header_len(dst: &IpAddress) -> usize {
    match dst {
        #[cfg(feature = "proto-ipv4")]
        IpAddress::Ipv4(_) => IPV4_HEADER_LEN,
        #[cfg(feature = "proto-ipv6")]
        IpAddress::Ipv6(_) => IPV6_HEADER_LEN,
    }
}

/// The largest IPv4 packet: the MTU, or with fragmentation the fragmentation buffer (if a
/// fragment can carry any data at all).
#[cfg(all(
    feature = "proto-ipv4",
    any(feature = "udp", feature = "icmp", feature = "raw")
))]
fn max_ipv4_packet(ip_mtu: usize, fragmentation_limit: Option<usize>) -> usize {
    let max = match fragmentation_limit {
        // A fragment carries a multiple of 8 bytes of data.
        Some(buffer) if ip_mtu >= IPV4_HEADER_LEN + 8 => ip_mtu.max(buffer),
        _ => ip_mtu,
    };
    max.min(IP_MAX_LEN)
}

/// The largest IPv4 packet smoltcp fragments (its fragmentation buffer), if it fragments.
#[cfg(all(
    feature = "proto-ipv4",
    any(feature = "udp", feature = "icmp", feature = "raw")
))]
const fn fragmentation_limit() -> Option<usize> {
    #[cfg(feature = "proto-ipv4-fragmentation")]
    return Some(smoltcp::config::FRAGMENTATION_BUFFER_SIZE);
    #[cfg(not(feature = "proto-ipv4-fragmentation"))]
    None
}

// The limits are only computed for the datagram sockets.
#[cfg(all(test, any(feature = "udp", feature = "icmp", feature = "raw")))]
mod tests {
    use super::*;
    use smoltcp::phy::Medium;

    #[cfg(all(feature = "proto-ipv4", feature = "medium-ip", feature = "udp"))]
    const V4: IpAddress = IpAddress::Ipv4(smoltcp::wire::Ipv4Address::new(192, 0, 2, 1));
    #[cfg(feature = "proto-ipv6")]
    const V6: IpAddress = IpAddress::Ipv6(smoltcp::wire::Ipv6Address::new(
        0x2001, 0xdb8, 0, 0, 0, 0, 0, 1,
    ));

    #[cfg(feature = "proto-ipv4")]
    #[test]
    fn ipv4_packets_are_limited_by_the_mtu_or_the_fragmentation_buffer() {
        assert_eq!(max_ipv4_packet(1500, None), 1500);
        assert_eq!(max_ipv4_packet(1500, Some(4096)), 4096);
        // A larger MTU than the buffer: the MTU (no fragmentation needed).
        assert_eq!(max_ipv4_packet(9000, Some(4096)), 9000);
        // Never more than the 16-bit total length.
        assert_eq!(max_ipv4_packet(1500, Some(65536)), 65535);
        assert_eq!(max_ipv4_packet(100_000, None), 65535);
        // An MTU too small for any fragment data: no fragmentation.
        assert_eq!(max_ipv4_packet(27, Some(4096)), 27);
    }

    #[cfg(all(feature = "medium-ethernet", feature = "proto-ipv6"))]
    #[test]
    fn ipv6_on_ethernet_is_limited_by_the_mtu() {
        assert_eq!(ip_mtu(Medium::Ethernet, 1514), 1500);
        let link = Link {
            ip_mtu: 1500,
            sixlowpan: false,
        };
        assert_eq!(link.max_ip_packet(IpVersion::Ipv6), 1500);
        #[cfg(feature = "icmp")]
        assert_eq!(link.max_ip_payload(&V6), 1460);
        #[cfg(feature = "udp")]
        assert_eq!(link.max_udp_payload(&V6), 1452);
        // A driver MTU smaller than the Ethernet header leaves nothing (and does not panic).
        let tiny = Link {
            ip_mtu: ip_mtu(Medium::Ethernet, 10),
            sixlowpan: false,
        };
        assert_eq!(tiny.max_ip_packet(IpVersion::Ipv6), 0);
        #[cfg(feature = "udp")]
        assert_eq!(tiny.max_udp_payload(&V6), 0);
    }

    #[cfg(all(feature = "medium-ip", feature = "proto-ipv4", feature = "udp"))]
    #[test]
    fn ipv4_udp_on_an_ip_medium() {
        let link = Link {
            ip_mtu: ip_mtu(Medium::Ip, 1500),
            sixlowpan: false,
        };
        let max = link.max_udp_payload(&V4);
        if cfg!(feature = "proto-ipv4-fragmentation") {
            let buffer = fragmentation_limit().unwrap_or(0).min(IP_MAX_LEN);
            assert_eq!(max, buffer.max(1500) - 28);
        } else {
            assert_eq!(max, 1472);
        }
    }

    #[cfg(all(feature = "medium-ieee802154", feature = "proto-ipv6", feature = "udp"))]
    #[test]
    fn sixlowpan_limits_are_bounds_from_the_frame_size() {
        let link = Link {
            ip_mtu: ip_mtu(Medium::Ieee802154, 127),
            sixlowpan: true,
        };
        // 125 - 8 (MAC) - 2 (IPHC) - 4 (compressed UDP header).
        assert_eq!(link.max_udp_payload(&V6), 111);
        #[cfg(feature = "icmp")]
        // 125 - 8 (MAC) - 3 (IPHC, next header inline).
        assert_eq!(link.max_ip_payload(&V6), 114);
    }
}
