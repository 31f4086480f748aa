//! Scripted peers: a raw [`SimDevice`] driven by a task that answers ARP and neighbor
//! solicitations and runs small scripted servers (DHCPv4, DNS over UDP, an IPv6 router sending
//! router advertisements), recording everything the stack under test sent.
//!
//! Every packet is built and parsed with smoltcp's wire representations (`EthernetRepr`,
//! `ArpRepr`, `Ipv4Repr`, `UdpRepr`, `DhcpRepr`, `Icmpv6Repr`, `NdiscRepr`, `DnsPacket`, ...).
//! The one exception is the DNS answer section: smoltcp 0.14's `dns` wire module can parse
//! resource records and emit the header and question, but has no emitter for records nor a
//! setter for the RCODE, so [`DnsServer`] writes those fields itself and checks every record
//! it writes by parsing it back with `DnsRecord::parse`.
//!
//! A peer lives on the same [`Executor`] as the stack: [`Peer::spawn`] starts its task, and the
//! test reads what it saw through the cloneable handles ([`Peer`], [`DhcpServer`],
//! [`DnsServer`], [`Router`]). Time is always `embassy-time` (virtual) time.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use embassy_time::{Duration, Instant, Timer};
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{SendFrameError, SimDevice};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, DhcpMessageType, DhcpOpCode, DhcpOption, DhcpPacket,
    DhcpRepr, DnsFlags, DnsOpcode, DnsPacket, DnsQueryType, DnsQuestion, DnsRcode, DnsRecord,
    DnsRecordData, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv6Packet,
    Icmpv6Repr, IgmpPacket, IgmpRepr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
    Ipv6Address, Ipv6Cidr, Ipv6ExtHeader, Ipv6HopByHopHeader, Ipv6HopByHopRepr, Ipv6OptionRepr,
    Ipv6OptionRouterAlert, Ipv6Packet, Ipv6Repr, MldAddressRecord, MldAddressRecordRepr,
    MldRecordType, MldRepr, NdiscNeighborFlags, NdiscPrefixInfoFlags, NdiscPrefixInformation,
    NdiscRepr, NdiscRouterFlags, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
};

/// The IPv6 all-nodes group ff02::1.
pub const ALL_NODES: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// The IPv6 all-routers group ff02::2.
pub const ALL_ROUTERS: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// The group MLDv2 reports go to, ff02::16.
pub const ALL_MLDV2_ROUTERS: Ipv6Address = Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);

fn caps() -> ChecksumCapabilities {
    ChecksumCapabilities::default()
}

// ---------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------

/// The modified EUI-64 interface identifier of a MAC address (RFC 4291 appendix A): the
/// universal/local bit flipped and ff:fe inserted in the middle. Computed here by hand, so
/// that tests do not check smoltcp against itself.
pub fn eui64_interface_id(mac: EthernetAddress) -> [u8; 8] {
    let m = mac.0;
    [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]
}

/// The address made of the first 64 bits of `prefix` and the EUI-64 interface identifier of
/// `mac`.
pub fn eui64_address(prefix: Ipv6Address, mac: EthernetAddress) -> Ipv6Address {
    let mut o = prefix.octets();
    o[8..].copy_from_slice(&eui64_interface_id(mac));
    Ipv6Address::from(o)
}

/// The link-local address fe80::/64 + EUI-64 of `mac`.
pub fn link_local(mac: EthernetAddress) -> Ipv6Address {
    eui64_address(Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), mac)
}

/// The solicited-node multicast group of an IPv6 address (ff02::1:ffXX:XXXX).
pub fn solicited_node(addr: Ipv6Address) -> Ipv6Address {
    let o = addr.octets();
    let mut g = Ipv6Address::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0).octets();
    g[13..].copy_from_slice(&o[13..]);
    Ipv6Address::from(g)
}

/// The Ethernet group address an IPv4 multicast group maps to (01:00:5e + low 23 bits).
pub fn multicast_mac_v4(group: Ipv4Address) -> EthernetAddress {
    let o = group.octets();
    EthernetAddress([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
}

/// The Ethernet group address an IPv6 multicast group maps to (33:33 + low 32 bits).
pub fn multicast_mac_v6(group: Ipv6Address) -> EthernetAddress {
    let o = group.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// A subnet mask of `prefix_len` bits, as an address.
pub fn netmask(prefix_len: u8) -> Ipv4Address {
    let bits = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len))
    };
    Ipv4Address::from(bits)
}

// ---------------------------------------------------------------------------------------------
// Building frames
// ---------------------------------------------------------------------------------------------

/// An Ethernet frame of `payload_len` payload bytes, filled by `emit`.
pub fn ethernet_frame(
    src: EthernetAddress,
    dst: EthernetAddress,
    ethertype: EthernetProtocol,
    payload_len: usize,
    emit: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    };
    let mut buf = vec![0u8; repr.buffer_len() + payload_len];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut frame);
    emit(frame.payload_mut());
    buf
}

/// An ARP packet in an Ethernet frame.
pub fn arp_frame(src: EthernetAddress, dst: EthernetAddress, arp: ArpRepr) -> Vec<u8> {
    ethernet_frame(src, dst, EthernetProtocol::Arp, arp.buffer_len(), |b| {
        arp.emit(&mut ArpPacket::new_unchecked(b))
    })
}

/// An IPv4 packet in an Ethernet frame; `ip.payload_len` bytes of payload are filled by `emit`.
pub fn ipv4_frame(
    src: EthernetAddress,
    dst: EthernetAddress,
    ip: Ipv4Repr,
    emit: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    ethernet_frame(
        src,
        dst,
        EthernetProtocol::Ipv4,
        ip.buffer_len() + ip.payload_len,
        |b| {
            let mut pkt = Ipv4Packet::new_unchecked(b);
            ip.emit(&mut pkt, &caps());
            emit(pkt.payload_mut());
        },
    )
}

/// An IPv6 packet in an Ethernet frame; `ip.payload_len` bytes of payload are filled by `emit`.
pub fn ipv6_frame(
    src: EthernetAddress,
    dst: EthernetAddress,
    ip: Ipv6Repr,
    emit: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    ethernet_frame(
        src,
        dst,
        EthernetProtocol::Ipv6,
        ip.buffer_len() + ip.payload_len,
        |b| {
            let mut pkt = Ipv6Packet::new_unchecked(b);
            ip.emit(&mut pkt);
            emit(pkt.payload_mut());
        },
    )
}

/// A UDP datagram over IPv4 (TTL 64) in an Ethernet frame.
pub fn udp_v4_frame(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: (Ipv4Address, u16),
    dst: (Ipv4Address, u16),
    payload: &[u8],
) -> Vec<u8> {
    let udp = UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
    };
    let ip = Ipv4Repr {
        src_addr: src.0,
        dst_addr: dst.0,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + payload.len(),
        hop_limit: 64,
    };
    ipv4_frame(src_mac, dst_mac, ip, |b| {
        udp.emit(
            &mut UdpPacket::new_unchecked(b),
            &src.0.into(),
            &dst.0.into(),
            payload.len(),
            |p| p.copy_from_slice(payload),
            &caps(),
        )
    })
}

/// What a scripted TCP peer puts in a segment; the rest is fixed: window 8192, an MSS
/// option of 1460 on a SYN, no other option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// SYN, FIN, RST, PSH or none.
    pub control: TcpControl,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number, if the ACK flag is set.
    pub ack: Option<u32>,
    /// Payload.
    pub payload: &'a [u8],
}

/// A TCP segment over IPv4 (TTL 64) in an Ethernet frame.
pub fn tcp_v4_frame(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: (Ipv4Address, u16),
    dst: (Ipv4Address, u16),
    segment: TcpSegment<'_>,
) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        control: segment.control,
        seq_number: TcpSeqNumber(segment.seq as i32),
        ack_number: segment.ack.map(|a| TcpSeqNumber(a as i32)),
        window_len: 8192,
        window_scale: None,
        max_seg_size: (segment.control == TcpControl::Syn).then_some(1460),
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: segment.payload,
    };
    let ip = Ipv4Repr {
        src_addr: src.0,
        dst_addr: dst.0,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    ipv4_frame(src_mac, dst_mac, ip, |b| {
        tcp.emit(
            &mut TcpPacket::new_unchecked(b),
            &src.0.into(),
            &dst.0.into(),
            &caps(),
        )
    })
}

/// A UDP datagram over IPv6 (hop limit 64) in an Ethernet frame.
pub fn udp_v6_frame(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: (Ipv6Address, u16),
    dst: (Ipv6Address, u16),
    payload: &[u8],
) -> Vec<u8> {
    let udp = UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
    };
    let ip = Ipv6Repr {
        src_addr: src.0,
        dst_addr: dst.0,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + payload.len(),
        hop_limit: 64,
    };
    ipv6_frame(src_mac, dst_mac, ip, |b| {
        udp.emit(
            &mut UdpPacket::new_unchecked(b),
            &src.0.into(),
            &dst.0.into(),
            payload.len(),
            |p| p.copy_from_slice(payload),
            &caps(),
        )
    })
}

/// An ICMPv6 message in an IPv6 packet in an Ethernet frame.
pub fn icmpv6_frame(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv6Address,
    dst: Ipv6Address,
    hop_limit: u8,
    icmp: &Icmpv6Repr<'_>,
) -> Vec<u8> {
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit,
    };
    ipv6_frame(src_mac, dst_mac, ip, |b| {
        icmp.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(b), &caps())
    })
}

/// A DHCP message in a UDP datagram (server port 67 to client port 68) in an Ethernet frame.
pub fn dhcp_frame(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src_ip: Ipv4Address,
    dst_ip: Ipv4Address,
    repr: &DhcpRepr<'_>,
) -> Vec<u8> {
    udp_v4_frame(
        src_mac,
        dst_mac,
        (src_ip, smoltcp::wire::DHCP_SERVER_PORT),
        (dst_ip, smoltcp::wire::DHCP_CLIENT_PORT),
        &dhcp_payload(repr),
    )
}

/// The bytes of a DHCP message.
pub fn dhcp_payload(repr: &DhcpRepr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut buf[..]))
        .expect("DHCP message fits its buffer_len");
    buf
}

// ---------------------------------------------------------------------------------------------
// Parsing frames
// ---------------------------------------------------------------------------------------------

/// A UDP datagram taken from a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpDatagram {
    /// Ethernet source.
    pub src_mac: EthernetAddress,
    /// Ethernet destination.
    pub dst_mac: EthernetAddress,
    /// IP source.
    pub src: IpAddress,
    /// IP destination.
    pub dst: IpAddress,
    /// TTL or hop limit.
    pub hop_limit: u8,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// The Ethernet header and payload of a frame, if it parses.
pub fn parse_ethernet(frame: &[u8]) -> Option<(EthernetRepr, &[u8])> {
    let f = EthernetFrame::new_checked(frame).ok()?;
    let repr = EthernetRepr::parse(&f).ok()?;
    Some((repr, &frame[repr.buffer_len()..]))
}

/// The IPv4 header and payload of a frame (checksum checked), if it is one.
pub fn parse_ipv4(frame: &[u8]) -> Option<(EthernetRepr, Ipv4Repr, &[u8])> {
    let (eth, payload) = parse_ethernet(frame)?;
    if eth.ethertype != EthernetProtocol::Ipv4 {
        return None;
    }
    let pkt = Ipv4Packet::new_checked(payload).ok()?;
    let ip = Ipv4Repr::parse(&pkt, &caps()).ok()?;
    let start = usize::from(pkt.header_len());
    Some((eth, ip, &payload[start..start + ip.payload_len]))
}

/// The IPv6 header and payload of a frame, if it is one. Hop-by-hop options, if any, are
/// skipped: the returned protocol is the one after them, and the flag says whether a
/// hop-by-hop header carried an MLD router alert.
pub fn parse_ipv6(frame: &[u8]) -> Option<(EthernetRepr, Ipv6Repr, IpProtocol, bool, &[u8])> {
    let (eth, payload) = parse_ethernet(frame)?;
    if eth.ethertype != EthernetProtocol::Ipv6 {
        return None;
    }
    let pkt = Ipv6Packet::new_checked(payload).ok()?;
    let ip = Ipv6Repr::parse(&pkt).ok()?;
    let mut rest = &payload[ip.buffer_len()..ip.buffer_len() + ip.payload_len];
    let mut proto = ip.next_header;
    let mut router_alert = false;
    if proto == IpProtocol::HopByHop {
        let ext = Ipv6ExtHeader::new_checked(rest).ok()?;
        let hbh = Ipv6HopByHopHeader::new_checked(ext.payload()).ok()?;
        let hbh = Ipv6HopByHopRepr::parse(&hbh).ok()?;
        router_alert = hbh.options.iter().any(|o| {
            matches!(
                o,
                Ipv6OptionRepr::RouterAlert(Ipv6OptionRouterAlert::MulticastListenerDiscovery)
            )
        });
        proto = ext.next_header();
        rest = &rest[(usize::from(ext.header_len()) + 1) * 8..];
    }
    Some((eth, ip, proto, router_alert, rest))
}

/// The UDP datagram in a frame (IPv4 or IPv6, checksums checked), if it is one.
pub fn parse_udp(frame: &[u8]) -> Option<UdpDatagram> {
    let (eth, src, dst, hop_limit, proto, payload) = if let Some((eth, ip, p)) = parse_ipv4(frame) {
        (
            eth,
            IpAddress::Ipv4(ip.src_addr),
            IpAddress::Ipv4(ip.dst_addr),
            ip.hop_limit,
            ip.next_header,
            p,
        )
    } else {
        let (eth, ip, proto, _, p) = parse_ipv6(frame)?;
        (
            eth,
            IpAddress::Ipv6(ip.src_addr),
            IpAddress::Ipv6(ip.dst_addr),
            ip.hop_limit,
            proto,
            p,
        )
    };
    if proto != IpProtocol::Udp {
        return None;
    }
    let pkt = UdpPacket::new_checked(payload).ok()?;
    let udp = UdpRepr::parse(&pkt, &src, &dst, &caps()).ok()?;
    Some(UdpDatagram {
        src_mac: eth.src_addr,
        dst_mac: eth.dst_addr,
        src,
        dst,
        hop_limit,
        src_port: udp.src_port,
        dst_port: udp.dst_port,
        payload: pkt.payload().to_vec(),
    })
}

/// The ARP packet in a frame, if it is one.
pub fn parse_arp(frame: &[u8]) -> Option<ArpRepr> {
    let (eth, payload) = parse_ethernet(frame)?;
    if eth.ethertype != EthernetProtocol::Arp {
        return None;
    }
    ArpRepr::parse(&ArpPacket::new_checked(payload).ok()?).ok()
}

/// The IGMP message in a frame, with its IPv4 header, if it is one.
pub fn parse_igmp(frame: &[u8]) -> Option<(EthernetRepr, Ipv4Repr, IgmpRepr)> {
    let (eth, ip, payload) = parse_ipv4(frame)?;
    if ip.next_header != IpProtocol::Igmp {
        return None;
    }
    let igmp = IgmpRepr::parse(&IgmpPacket::new_checked(payload).ok()?).ok()?;
    Some((eth, ip, igmp))
}

/// Calls `f` with the ICMPv6 message in a frame (checksum checked), if it is one.
pub fn with_icmpv6<R>(
    frame: &[u8],
    f: impl FnOnce(&EthernetRepr, &Ipv6Repr, &Icmpv6Repr<'_>) -> R,
) -> Option<R> {
    let (eth, ip, proto, _, payload) = parse_ipv6(frame)?;
    if proto != IpProtocol::Icmpv6 {
        return None;
    }
    let pkt = Icmpv6Packet::new_checked(payload).ok()?;
    let repr = Icmpv6Repr::parse(&ip.src_addr, &ip.dst_addr, &pkt, &caps()).ok()?;
    Some(f(&eth, &ip, &repr))
}

/// One multicast address record of an MLDv2 report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MldRecord {
    /// Record type.
    pub record_type: MldRecordType,
    /// The group.
    pub group: Ipv6Address,
    /// Number of sources listed.
    pub num_srcs: u16,
}

/// An MLDv2 report taken from a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MldReport {
    /// Ethernet destination.
    pub dst_mac: EthernetAddress,
    /// IPv6 header.
    pub ip: Ipv6Repr,
    /// Whether a hop-by-hop header carried the MLD router alert option.
    pub router_alert: bool,
    /// The address records.
    pub records: Vec<MldRecord>,
}

/// The MLDv2 report in a frame, if it is one.
pub fn parse_mld_report(frame: &[u8]) -> Option<MldReport> {
    let (eth, ip, proto, router_alert, payload) = parse_ipv6(frame)?;
    if proto != IpProtocol::Icmpv6 {
        return None;
    }
    let pkt = Icmpv6Packet::new_checked(payload).ok()?;
    let repr = Icmpv6Repr::parse(&ip.src_addr, &ip.dst_addr, &pkt, &caps()).ok()?;
    let Icmpv6Repr::Mld(MldRepr::Report {
        nr_mcast_addr_rcrds,
        data,
    }) = repr
    else {
        return None;
    };
    let mut records = Vec::new();
    let mut rest = data;
    for _ in 0..nr_mcast_addr_rcrds {
        let rec = MldAddressRecord::new_checked(rest).ok()?;
        let r = MldAddressRecordRepr::parse(&rec).ok()?;
        records.push(MldRecord {
            record_type: r.record_type,
            group: r.mcast_addr,
            num_srcs: r.num_srcs,
        });
        rest = &rest[r.buffer_len()..];
    }
    Some(MldReport {
        dst_mac: eth.dst_addr,
        ip,
        router_alert,
        records,
    })
}

/// A DHCP message taken from a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpMessage {
    /// When the peer received it.
    pub time: Instant,
    /// Ethernet source.
    pub src_mac: EthernetAddress,
    /// Ethernet destination.
    pub dst_mac: EthernetAddress,
    /// IPv4 source.
    pub src_ip: Ipv4Address,
    /// IPv4 destination.
    pub dst_ip: Ipv4Address,
    /// Message type (option 53).
    pub message_type: DhcpMessageType,
    /// Transaction id.
    pub xid: u32,
    /// Client hardware address (chaddr).
    pub chaddr: EthernetAddress,
    /// Client IP address (ciaddr).
    pub client_ip: Ipv4Address,
    /// Requested IP address (option 50).
    pub requested_ip: Option<Ipv4Address>,
    /// Server identifier (option 54).
    pub server_identifier: Option<Ipv4Address>,
    /// Host name (option 12), if any.
    pub hostname: Option<String>,
    /// Every option, in order: (kind, data).
    pub options: Vec<(u8, Vec<u8>)>,
}

/// The DHCP message in a frame (any UDP ports 67/68 direction), if it is one.
pub fn parse_dhcp(time: Instant, frame: &[u8]) -> Option<DhcpMessage> {
    let udp = parse_udp(frame)?;
    let (IpAddress::Ipv4(src_ip), IpAddress::Ipv4(dst_ip)) = (udp.src, udp.dst) else {
        return None;
    };
    let ports = [
        smoltcp::wire::DHCP_SERVER_PORT,
        smoltcp::wire::DHCP_CLIENT_PORT,
    ];
    if !ports.contains(&udp.src_port) || !ports.contains(&udp.dst_port) {
        return None;
    }
    let pkt = DhcpPacket::new_checked(&udp.payload[..]).ok()?;
    let repr = DhcpRepr::parse(&pkt).ok()?;
    let options: Vec<(u8, Vec<u8>)> = pkt.options().map(|o| (o.kind, o.data.to_vec())).collect();
    let hostname = options
        .iter()
        .find(|(k, _)| *k == 12)
        .map(|(_, d)| String::from_utf8_lossy(d).into_owned());
    Some(DhcpMessage {
        time,
        src_mac: udp.src_mac,
        dst_mac: udp.dst_mac,
        src_ip,
        dst_ip,
        message_type: repr.message_type,
        xid: repr.transaction_id,
        chaddr: repr.client_hardware_address,
        client_ip: repr.client_ip,
        requested_ip: repr.requested_ip,
        server_identifier: repr.server_identifier,
        hostname,
        options,
    })
}

/// A DNS name in wire format (length-prefixed labels, then a zero byte).
pub fn dns_wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(u8::try_from(label.len()).expect("label of at most 63 bytes"));
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A DNS query taken from a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsQuerySeen {
    /// When the peer received it.
    pub time: Instant,
    /// IPv4 source.
    pub src: Ipv4Address,
    /// UDP source port.
    pub src_port: u16,
    /// IPv4 destination (the server asked).
    pub dst: Ipv4Address,
    /// UDP destination port.
    pub dst_port: u16,
    /// Transaction id.
    pub txid: u16,
    /// Header flags.
    pub flags: DnsFlags,
    /// The name asked for, dotted, without a trailing dot.
    pub name: String,
    /// The type asked for.
    pub qtype: DnsQueryType,
}

/// The DNS query (a UDP datagram over IPv4 to port 53 with the QR bit clear) in a frame, if it
/// is one.
pub fn parse_dns_query(time: Instant, frame: &[u8]) -> Option<DnsQuerySeen> {
    let udp = parse_udp(frame)?;
    let (IpAddress::Ipv4(src), IpAddress::Ipv4(dst)) = (udp.src, udp.dst) else {
        return None;
    };
    if udp.dst_port != 53 && udp.dst_port != 5353 {
        return None;
    }
    let pkt = DnsPacket::new_checked(&udp.payload[..]).ok()?;
    if pkt.flags().contains(DnsFlags::RESPONSE) || pkt.question_count() != 1 {
        return None;
    }
    let (_, q) = DnsQuestion::parse(pkt.payload()).ok()?;
    let labels: Vec<String> = pkt
        .parse_name(q.name)
        .map(|l| l.map(|l| String::from_utf8_lossy(l).into_owned()))
        .collect::<Result<_, _>>()
        .ok()?;
    Some(DnsQuerySeen {
        time,
        src,
        src_port: udp.src_port,
        dst,
        dst_port: udp.dst_port,
        txid: pkt.transaction_id(),
        flags: pkt.flags(),
        name: labels.join("."),
        qtype: q.type_,
    })
}

// ---------------------------------------------------------------------------------------------
// The peer
// ---------------------------------------------------------------------------------------------

/// A frame the peer received from the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// When the peer took it from the link.
    pub time: Instant,
    /// The frame.
    pub frame: Vec<u8>,
}

struct PeerInner {
    mac: EthernetAddress,
    ipv4: Vec<Ipv4Address>,
    ipv6: Vec<Ipv6Address>,
    dhcp: Option<DhcpServer>,
    dns: Vec<DnsServer>,
    router: Option<Router>,
    received: Vec<Received>,
    /// Frames to send, each with the time it is due; sent in order of time, then of queueing.
    outbox: Vec<(Instant, Vec<u8>)>,
    /// The peer task's waker (to send queued frames).
    task: Option<Waker>,
    /// Tasks waiting in [`Peer::wait_for`].
    watchers: Vec<Waker>,
}

/// A scripted peer on one end of a link. Cheap to clone; all clones share the same state.
#[derive(Clone)]
pub struct Peer {
    inner: Rc<RefCell<PeerInner>>,
}

impl Peer {
    /// A peer with this MAC address and no address or service yet.
    pub fn new(mac: EthernetAddress) -> Self {
        Self {
            inner: Rc::new(RefCell::new(PeerInner {
                mac,
                ipv4: Vec::new(),
                ipv6: Vec::new(),
                dhcp: None,
                dns: Vec::new(),
                router: None,
                received: Vec::new(),
                outbox: Vec::new(),
                task: None,
                watchers: Vec::new(),
            })),
        }
    }

    /// The peer's MAC address.
    pub fn mac(&self) -> EthernetAddress {
        self.inner.borrow().mac
    }

    /// Answer ARP requests for `addr`.
    pub fn add_ipv4(&self, addr: Ipv4Address) -> &Self {
        let mut p = self.inner.borrow_mut();
        if !p.ipv4.contains(&addr) {
            p.ipv4.push(addr);
        }
        drop(p);
        self
    }

    /// Answer neighbor solicitations for `addr`.
    pub fn add_ipv6(&self, addr: Ipv6Address) -> &Self {
        let mut p = self.inner.borrow_mut();
        if !p.ipv6.contains(&addr) {
            p.ipv6.push(addr);
        }
        drop(p);
        self
    }

    /// Run a DHCP server (and answer ARP for its address).
    pub fn with_dhcp(&self, server: &DhcpServer) -> &Self {
        self.add_ipv4(server.config().server_ip);
        self.inner.borrow_mut().dhcp = Some(server.clone());
        self
    }

    /// Run a DNS server (and answer ARP for its address).
    pub fn with_dns(&self, server: &DnsServer) -> &Self {
        self.add_ipv4(server.unicast_address());
        self.inner.borrow_mut().dns.push(server.clone());
        self
    }

    /// Run an IPv6 router (and answer neighbor solicitations for its link-local address).
    pub fn with_router(&self, router: &Router) -> &Self {
        self.add_ipv6(router.link_local());
        self.inner.borrow_mut().router = Some(router.clone());
        self
    }

    /// Start the peer's task on `ex`, driving `device`.
    pub fn spawn<'a>(&self, ex: &Executor<'a>, mut device: SimDevice) {
        let inner = self.inner.clone();
        ex.spawn(async move {
            loop {
                let frame = poll_fn(|cx| {
                    let now = Instant::now();
                    {
                        let mut p = inner.borrow_mut();
                        p.task = Some(cx.waker().clone());
                        // Send what is due, earliest first.
                        p.outbox.sort_by_key(|(t, _)| *t);
                        while p.outbox.first().is_some_and(|(t, _)| *t <= now) {
                            let (_, f) = p.outbox.remove(0);
                            // Other errors: a frame sent into a down link is lost, as on a
                            // real cable.
                            if device.send_frame(&f) == Err(SendFrameError::QueueFull) {
                                p.outbox.insert(0, (now, f));
                                cx.waker().wake_by_ref();
                                break;
                            }
                        }
                        if let Some((next, _)) = p.outbox.iter().find(|(t, _)| *t > now) {
                            let mut timer = Timer::at(*next);
                            if Pin::new(&mut timer).poll(cx).is_ready() {
                                cx.waker().wake_by_ref();
                            }
                        }
                    }
                    device.poll_recv_frame(cx)
                })
                .await;
                handle_frame(&inner, frame);
            }
        });
    }

    /// Send a frame to the stack now.
    pub fn send(&self, frame: Vec<u8>) {
        self.send_at(Instant::now(), frame);
    }

    /// Send a frame to the stack at `at` (virtual time).
    pub fn send_at(&self, at: Instant, frame: Vec<u8>) {
        let mut p = self.inner.borrow_mut();
        p.outbox.push((at, frame));
        if let Some(w) = &p.task {
            w.wake_by_ref();
        }
    }

    /// Every frame received from the stack so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.inner.borrow().received.clone()
    }

    /// The frames received from the stack at or after `t`.
    pub fn received_since(&self, t: Instant) -> Vec<Received> {
        self.inner
            .borrow()
            .received
            .iter()
            .filter(|r| r.time >= t)
            .cloned()
            .collect()
    }

    /// How many frames were received from the stack so far.
    pub fn received_count(&self) -> usize {
        self.inner.borrow().received.len()
    }

    /// Wait until `f`, given every frame received so far, returns `Some`. Event driven: `f` is
    /// checked again each time a frame arrives.
    pub async fn wait_for<R>(&self, mut f: impl FnMut(&[Received]) -> Option<R>) -> R {
        poll_fn(|cx| {
            let mut p = self.inner.borrow_mut();
            match f(&p.received) {
                Some(r) => Poll::Ready(r),
                None => {
                    p.watchers.push(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

fn handle_frame(inner: &Rc<RefCell<PeerInner>>, frame: Vec<u8>) {
    let now = Instant::now();
    let (mac, ipv4, ipv6, dhcp, dns, router, watchers) = {
        let mut p = inner.borrow_mut();
        p.received.push(Received {
            time: now,
            frame: frame.clone(),
        });
        (
            p.mac,
            p.ipv4.clone(),
            p.ipv6.clone(),
            p.dhcp.clone(),
            p.dns.clone(),
            p.router.clone(),
            std::mem::take(&mut p.watchers),
        )
    };
    for w in watchers {
        w.wake();
    }
    let Some((eth, _)) = parse_ethernet(&frame) else {
        return;
    };
    if eth.dst_addr != mac && !eth.dst_addr.is_multicast() {
        return;
    }

    let mut out: Vec<(Duration, Vec<u8>)> = Vec::new();
    if let Some(ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr,
        source_protocol_addr,
        target_protocol_addr,
        ..
    }) = parse_arp(&frame)
        && ipv4.contains(&target_protocol_addr)
    {
        let reply = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: mac,
            source_protocol_addr: target_protocol_addr,
            target_hardware_addr: source_hardware_addr,
            target_protocol_addr: source_protocol_addr,
        };
        out.push((
            Duration::from_ticks(0),
            arp_frame(mac, source_hardware_addr, reply),
        ));
    }
    if let Some(server) = &dhcp
        && let Some(msg) = parse_dhcp(now, &frame)
    {
        out.extend(server.handle(mac, &msg));
    }
    if let Some(q) = parse_dns_query(now, &frame)
        && let Some(server) = dns.iter().find(|s| s.address() == q.dst)
    {
        out.extend(server.handle(mac, eth.src_addr, &frame, &q));
    }
    if let Some(replies) = with_icmpv6(&frame, |eth, ip, icmp| {
        handle_icmpv6(mac, &ipv6, router.as_ref(), eth, ip, icmp)
    }) {
        out.extend(replies);
    }

    let mut p = inner.borrow_mut();
    for (delay, f) in out {
        p.outbox.push((now + delay, f));
    }
}

fn handle_icmpv6(
    mac: EthernetAddress,
    ipv6: &[Ipv6Address],
    router: Option<&Router>,
    eth: &EthernetRepr,
    ip: &Ipv6Repr,
    icmp: &Icmpv6Repr<'_>,
) -> Vec<(Duration, Vec<u8>)> {
    let mut out = Vec::new();
    match icmp {
        Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. })
            if ipv6.contains(target_addr) =>
        {
            let mut flags = NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE;
            if router.is_some() {
                flags |= NdiscNeighborFlags::ROUTER;
            }
            let na = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                flags,
                target_addr: *target_addr,
                lladdr: Some(mac.into()),
            });
            let (dst, dst_mac) = if ip.src_addr.is_unspecified() {
                (ALL_NODES, multicast_mac_v6(ALL_NODES))
            } else {
                (ip.src_addr, eth.src_addr)
            };
            out.push((
                Duration::from_ticks(0),
                icmpv6_frame(mac, dst_mac, *target_addr, dst, 255, &na),
            ));
        }
        Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit { lladdr }) => {
            if let Some(r) = router {
                out.extend(r.handle_rs(ip, lladdr.is_some()));
            }
        }
        _ => {}
    }
    out
}

// ---------------------------------------------------------------------------------------------
// DHCP server
// ---------------------------------------------------------------------------------------------

/// What a [`DhcpServer`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpServerConfig {
    /// The server's address (source of its replies, server identifier).
    pub server_ip: Ipv4Address,
    /// The address offered.
    pub offer: Ipv4Address,
    /// Prefix length of the subnet mask option.
    pub prefix_len: u8,
    /// Router option.
    pub router: Option<Ipv4Address>,
    /// DNS server option (at most 3).
    pub dns_servers: Vec<Ipv4Address>,
    /// Lease time option, seconds.
    pub lease_secs: u32,
}

/// How a [`DhcpServer`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpPolicy {
    /// OFFER for DISCOVER; ACK for a REQUEST of the offered address, NAK otherwise.
    Normal,
    /// Like `Normal`, but NAK every renewing or rebinding REQUEST (ciaddr set).
    NakRenewals,
    /// OFFER for DISCOVER, but no answer to REQUESTs.
    OfferOnly,
    /// Answer nothing (the messages are still recorded).
    Silent,
}

/// A message a [`DhcpServer`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpSent {
    /// When.
    pub time: Instant,
    /// Its type.
    pub message_type: DhcpMessageType,
    /// Its transaction id.
    pub xid: u32,
}

struct DhcpState {
    config: DhcpServerConfig,
    policy: DhcpPolicy,
    garbage: bool,
    seen: Vec<DhcpMessage>,
    sent: Vec<DhcpSent>,
}

/// A scripted DHCPv4 server; cheap to clone, clones share state.
#[derive(Clone)]
pub struct DhcpServer {
    state: Rc<RefCell<DhcpState>>,
}

impl DhcpServer {
    /// A server with this configuration and [`DhcpPolicy::Normal`].
    pub fn new(config: DhcpServerConfig) -> Self {
        Self {
            state: Rc::new(RefCell::new(DhcpState {
                config,
                policy: DhcpPolicy::Normal,
                garbage: false,
                seen: Vec::new(),
                sent: Vec::new(),
            })),
        }
    }

    /// The configuration.
    pub fn config(&self) -> DhcpServerConfig {
        self.state.borrow().config.clone()
    }

    /// Change the configuration (applies to the next replies).
    pub fn set_config(&self, config: DhcpServerConfig) {
        self.state.borrow_mut().config = config;
    }

    /// Change how the server answers.
    pub fn set_policy(&self, policy: DhcpPolicy) {
        self.state.borrow_mut().policy = policy;
    }

    /// Before each real reply, send a burst of malformed DHCP messages (see
    /// [`malformed_dhcp_frames`]).
    pub fn set_garbage(&self, on: bool) {
        self.state.borrow_mut().garbage = on;
    }

    /// Every client message received, oldest first.
    pub fn seen(&self) -> Vec<DhcpMessage> {
        self.state.borrow().seen.clone()
    }

    /// The client messages of one type, oldest first.
    pub fn seen_of(&self, t: DhcpMessageType) -> Vec<DhcpMessage> {
        self.seen()
            .into_iter()
            .filter(|m| m.message_type == t)
            .collect()
    }

    /// How many DISCOVERs were received.
    pub fn discovers(&self) -> usize {
        self.seen_of(DhcpMessageType::Discover).len()
    }

    /// How many REQUESTs were received.
    pub fn requests(&self) -> usize {
        self.seen_of(DhcpMessageType::Request).len()
    }

    /// Every message sent (not counting malformed ones), oldest first.
    pub fn sent(&self) -> Vec<DhcpSent> {
        self.state.borrow().sent.clone()
    }

    /// The messages of one type sent, oldest first.
    pub fn sent_of(&self, t: DhcpMessageType) -> Vec<DhcpSent> {
        self.sent()
            .into_iter()
            .filter(|m| m.message_type == t)
            .collect()
    }

    /// The reply (OFFER, ACK or NAK) to `msg` as a [`DhcpRepr`], given to `f`.
    fn reply_repr<R>(
        config: &DhcpServerConfig,
        msg: &DhcpMessage,
        message_type: DhcpMessageType,
        f: impl FnOnce(&DhcpRepr<'_>) -> R,
    ) -> R {
        let full = message_type != DhcpMessageType::Nak;
        let dns: heapless::Vec<Ipv4Address, 3> = config.dns_servers.iter().copied().collect();
        let repr = DhcpRepr {
            message_type,
            transaction_id: msg.xid,
            secs: 0,
            client_hardware_address: msg.chaddr,
            client_ip: if message_type == DhcpMessageType::Ack {
                msg.client_ip
            } else {
                Ipv4Address::UNSPECIFIED
            },
            your_ip: if full {
                config.offer
            } else {
                Ipv4Address::UNSPECIFIED
            },
            server_ip: Ipv4Address::UNSPECIFIED,
            router: config.router.filter(|_| full),
            subnet_mask: full.then(|| netmask(config.prefix_len)),
            relay_agent_ip: Ipv4Address::UNSPECIFIED,
            broadcast: false,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(config.server_ip),
            parameter_request_list: None,
            dns_servers: (full && !dns.is_empty()).then_some(dns),
            max_size: None,
            lease_duration: full.then_some(config.lease_secs),
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        f(&repr)
    }

    fn handle(&self, mac: EthernetAddress, msg: &DhcpMessage) -> Vec<(Duration, Vec<u8>)> {
        let mut s = self.state.borrow_mut();
        s.seen.push(msg.clone());
        let config = s.config.clone();
        let reply_type = match (s.policy, msg.message_type) {
            (DhcpPolicy::Silent, _) | (DhcpPolicy::OfferOnly, DhcpMessageType::Request) => {
                return Vec::new();
            }
            (_, DhcpMessageType::Discover) => DhcpMessageType::Offer,
            (policy, DhcpMessageType::Request) => {
                let renewing = !msg.client_ip.is_unspecified();
                let wanted = msg.requested_ip.unwrap_or(msg.client_ip);
                if policy == DhcpPolicy::NakRenewals && renewing {
                    DhcpMessageType::Nak
                } else if wanted == config.offer
                    && msg
                        .server_identifier
                        .is_none_or(|id| id == config.server_ip)
                {
                    DhcpMessageType::Ack
                } else {
                    DhcpMessageType::Nak
                }
            }
            _ => return Vec::new(),
        };
        // Unicast to a client that has its address; otherwise (and for NAKs) broadcast.
        let (dst_mac, dst_ip) =
            if reply_type != DhcpMessageType::Nak && !msg.client_ip.is_unspecified() {
                (msg.src_mac, msg.client_ip)
            } else {
                (EthernetAddress::BROADCAST, Ipv4Address::BROADCAST)
            };
        let mut out = Vec::new();
        if s.garbage {
            for f in malformed_dhcp_frames(&config, msg, reply_type, mac, dst_mac, dst_ip) {
                out.push((Duration::from_ticks(0), f));
            }
        }
        let frame = Self::reply_repr(&config, msg, reply_type, |r| {
            dhcp_frame(mac, dst_mac, config.server_ip, dst_ip, r)
        });
        out.push((Duration::from_ticks(0), frame));
        s.sent.push(DhcpSent {
            time: Instant::now(),
            message_type: reply_type,
            xid: msg.xid,
        });
        out
    }
}

/// Malformed or foreign variants of the reply of type `reply_type` to `msg`, which a client
/// must ignore. Each offers a different address (192.0.2.66) from the real reply, so that
/// taking any of them would show.
///
/// 1. The whole frame cut short in the middle of the DHCP message (IP length larger than the
///    frame).
/// 2. A DHCP message shorter than its fixed header (240 bytes), with consistent UDP/IP
///    lengths.
/// 3. Op code BOOTREQUEST instead of BOOTREPLY.
/// 4. A wrong magic cookie.
/// 5. Options replaced by deterministic garbage bytes.
/// 6. An options field that ends in the middle of the server identifier option.
/// 7. A server identifier option of the wrong length (3 bytes), so none is usable.
/// 8. Another client's hardware address.
/// 9. Another transaction id.
/// 10. A hardware address length of 16.
/// 11. Your-IP 255.255.255.255 (not unicast), and for an ACK, an invalid subnet mask.
/// 12. An empty UDP payload.
pub fn malformed_dhcp_frames(
    config: &DhcpServerConfig,
    msg: &DhcpMessage,
    reply_type: DhcpMessageType,
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    dst_ip: Ipv4Address,
) -> Vec<Vec<u8>> {
    let bogus = DhcpServerConfig {
        offer: Ipv4Address::new(192, 0, 2, 66),
        ..config.clone()
    };
    let base = DhcpServer::reply_repr(&bogus, msg, reply_type, dhcp_payload);
    let udp = |payload: &[u8]| dhcp_frame_raw(src_mac, dst_mac, config.server_ip, dst_ip, payload);
    let edit = |f: &dyn Fn(&mut DhcpPacket<&mut [u8]>)| {
        let mut p = base.clone();
        f(&mut DhcpPacket::new_unchecked(&mut p[..]));
        p
    };
    let options_start = DHCP_OPTIONS_OFFSET;
    let mut out = Vec::new();

    // 1. Frame cut short.
    let full = udp(&base);
    out.push(full[..full.len() - 200].to_vec());
    // 2. DHCP message shorter than the fixed header.
    out.push(udp(&base[..100]));
    // 3. Wrong op code.
    out.push(udp(&edit(&|p| p.set_opcode(DhcpOpCode::Request))));
    // 4. Wrong magic cookie.
    out.push(udp(&edit(&|p| p.set_magic_number(0xdead_beef))));
    // 5. Garbage options.
    let mut garbage = base.clone();
    crate::fill_pattern(0x5a, 0, &mut garbage[options_start..]);
    out.push(udp(&garbage));
    // 6. Options ending inside the server identifier option.
    let mut cut = base[..options_start].to_vec();
    cut.resize(options_start + 64, 0);
    {
        let mut p = DhcpPacket::new_unchecked(&mut cut[..]);
        let mut w = p.options_mut();
        w.emit(DhcpOption {
            kind: 53,
            data: &[u8::from(reply_type)],
        })
        .expect("room");
        w.emit(DhcpOption {
            kind: 54,
            data: &config.server_ip.octets(),
        })
        .expect("room");
    }
    cut.truncate(options_start + 3 + 4);
    out.push(udp(&cut));
    // 7. Server identifier of the wrong length.
    let mut wrong_len = base[..options_start].to_vec();
    wrong_len.resize(options_start + 64, 0);
    {
        let mut p = DhcpPacket::new_unchecked(&mut wrong_len[..]);
        let mut w = p.options_mut();
        for opt in [
            DhcpOption {
                kind: 53,
                data: &[u8::from(reply_type)],
            },
            DhcpOption {
                kind: 54,
                data: &config.server_ip.octets()[..3],
            },
            DhcpOption {
                kind: 1,
                data: &netmask(config.prefix_len).octets(),
            },
            DhcpOption {
                kind: 51,
                data: &config.lease_secs.to_be_bytes(),
            },
        ] {
            w.emit(opt).expect("room");
        }
        w.end().expect("room");
    }
    out.push(udp(&wrong_len));
    // 8. Another client.
    out.push(udp(&edit(&|p| {
        p.set_client_hardware_address(EthernetAddress([0x02, 0, 0, 0, 0, 0x99]))
    })));
    // 9. Another transaction.
    out.push(udp(&edit(&|p| p.set_transaction_id(msg.xid ^ 0x8000_0001))));
    // 10. Hardware address length 16.
    out.push(udp(&edit(&|p| p.set_hardware_len(16))));
    // 11. Not-unicast your-IP; for an ACK also an invalid mask.
    let broken = DhcpServerConfig {
        offer: Ipv4Address::BROADCAST,
        ..config.clone()
    };
    out.push(udp(&DhcpServer::reply_repr(
        &broken,
        msg,
        reply_type,
        dhcp_payload,
    )));
    if reply_type == DhcpMessageType::Ack {
        let bad_mask = DhcpServer::reply_repr(&bogus, msg, reply_type, |r| {
            let mut r = r.clone();
            r.subnet_mask = Some(Ipv4Address::new(255, 0, 255, 0));
            dhcp_payload(&r)
        });
        out.push(udp(&bad_mask));
    }
    // 12. Empty payload.
    out.push(udp(&[]));
    out
}

/// Where the options of a DHCP message start: after the 236-byte BOOTP header and the 4-byte
/// magic cookie (RFC 2131 section 2).
const DHCP_OPTIONS_OFFSET: usize = 240;

fn dhcp_frame_raw(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src_ip: Ipv4Address,
    dst_ip: Ipv4Address,
    payload: &[u8],
) -> Vec<u8> {
    udp_v4_frame(
        src_mac,
        dst_mac,
        (src_ip, smoltcp::wire::DHCP_SERVER_PORT),
        (dst_ip, smoltcp::wire::DHCP_CLIENT_PORT),
        payload,
    )
}

// ---------------------------------------------------------------------------------------------
// DNS server
// ---------------------------------------------------------------------------------------------

/// A resource record a [`DnsServer`] knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsAnswer {
    /// An A record.
    A(Ipv4Address),
    /// An AAAA record.
    Aaaa(Ipv6Address),
    /// A CNAME record (the target name).
    Cname(String),
}

struct DnsState {
    address: Ipv4Address,
    /// For an mDNS responder: the unicast address its answers come from.
    mdns_from: Option<Ipv4Address>,
    zone: BTreeMap<String, Vec<DnsAnswer>>,
    silent: bool,
    delay: Duration,
    queries: Vec<DnsQuerySeen>,
    /// (time the answer was sent, transaction id).
    answered: Vec<(Instant, u16)>,
}

/// A scripted DNS server over UDP (IPv4, port 53); cheap to clone, clones share state.
///
/// Answers like a recursive resolver: for a name with a CNAME it returns the whole chain and
/// then the records of the final name; for a name it does not know, NXDOMAIN; for a known name
/// without records of the type asked, an empty NOERROR answer.
#[derive(Clone)]
pub struct DnsServer {
    state: Rc<RefCell<DnsState>>,
}

impl DnsServer {
    /// A server at `address` with an empty zone.
    pub fn new(address: Ipv4Address) -> Self {
        Self {
            state: Rc::new(RefCell::new(DnsState {
                address,
                mdns_from: None,
                zone: BTreeMap::new(),
                silent: false,
                delay: Duration::from_ticks(0),
                queries: Vec::new(),
                answered: Vec::new(),
            })),
        }
    }

    /// An mDNS responder (RFC 6762) at `from`: it takes queries sent to 224.0.0.251:5353 and,
    /// as the queries come from a port other than 5353 (one-shot queries), answers them by
    /// unicast from port 5353.
    pub fn mdns(from: Ipv4Address) -> Self {
        let s = Self::new(Ipv4Address::new(224, 0, 0, 251));
        s.state.borrow_mut().mdns_from = Some(from);
        s
    }

    /// The server's unicast address (for an mDNS responder, the one its answers come from).
    pub fn unicast_address(&self) -> Ipv4Address {
        let s = self.state.borrow();
        s.mdns_from.unwrap_or(s.address)
    }

    /// The server's address.
    pub fn address(&self) -> Ipv4Address {
        self.state.borrow().address
    }

    /// Add a record for `name`.
    pub fn add(&self, name: &str, answer: DnsAnswer) -> &Self {
        self.state
            .borrow_mut()
            .zone
            .entry(name.to_string())
            .or_default()
            .push(answer);
        self
    }

    /// Stop (or start again) answering; queries are still recorded.
    pub fn set_silent(&self, silent: bool) {
        self.state.borrow_mut().silent = silent;
    }

    /// Answer each query after this delay.
    pub fn set_delay(&self, delay: Duration) {
        self.state.borrow_mut().delay = delay;
    }

    /// Every query received, oldest first.
    pub fn queries(&self) -> Vec<DnsQuerySeen> {
        self.state.borrow().queries.clone()
    }

    /// Every answer sent: (time, transaction id), oldest first.
    pub fn answered(&self) -> Vec<(Instant, u16)> {
        self.state.borrow().answered.clone()
    }

    /// The largest number of queries that were received and not yet answered at the same
    /// time (from the times recorded).
    pub fn max_outstanding(&self) -> usize {
        let s = self.state.borrow();
        s.queries
            .iter()
            .map(|q| {
                let received = s.queries.iter().filter(|o| o.time <= q.time).count();
                let answered = s.answered.iter().filter(|(t, _)| *t <= q.time).count();
                received - answered
            })
            .max()
            .unwrap_or(0)
    }

    fn handle(
        &self,
        mac: EthernetAddress,
        client_mac: EthernetAddress,
        frame: &[u8],
        q: &DnsQuerySeen,
    ) -> Vec<(Duration, Vec<u8>)> {
        let mut s = self.state.borrow_mut();
        s.queries.push(q.clone());
        if s.silent {
            return Vec::new();
        }
        let Some(udp) = parse_udp(frame) else {
            return Vec::new();
        };
        let payload = build_dns_response(&s.zone, &udp.payload, q);
        let delay = s.delay;
        s.answered.push((Instant::now() + delay, q.txid));
        let from = match s.mdns_from {
            Some(addr) => (addr, 5353),
            None => (s.address, 53),
        };
        vec![(
            delay,
            udp_v4_frame(mac, client_mac, from, (q.src, q.src_port), &payload),
        )]
    }
}

/// Write one resource record (uncompressed owner name, class IN) and check it by parsing it
/// back with smoltcp.
fn push_record(out: &mut Vec<u8>, owner: &str, answer: &DnsAnswer, ttl: u32) {
    let start = out.len();
    out.extend(dns_wire_name(owner));
    let (qtype, rdata) = match answer {
        DnsAnswer::A(a) => (DnsQueryType::A, a.octets().to_vec()),
        DnsAnswer::Aaaa(a) => (DnsQueryType::Aaaa, a.octets().to_vec()),
        DnsAnswer::Cname(n) => (DnsQueryType::Cname, dns_wire_name(n)),
    };
    out.extend(u16::from(qtype).to_be_bytes());
    out.extend(1u16.to_be_bytes()); // class IN
    out.extend(ttl.to_be_bytes());
    out.extend(
        u16::try_from(rdata.len())
            .expect("short rdata")
            .to_be_bytes(),
    );
    out.extend(&rdata);
    let (rest, rec) = DnsRecord::parse(&out[start..]).expect("record parses back");
    assert!(rest.is_empty());
    assert_eq!(rec.ttl, ttl);
    match (answer, &rec.data) {
        (DnsAnswer::A(a), DnsRecordData::A(b)) => assert_eq!(a, b),
        (DnsAnswer::Aaaa(a), DnsRecordData::Aaaa(b)) => assert_eq!(a, b),
        (DnsAnswer::Cname(_), DnsRecordData::Cname(_)) => {}
        other => panic!("record did not parse back: {other:?}"),
    }
}

fn build_dns_response(
    zone: &BTreeMap<String, Vec<DnsAnswer>>,
    query: &[u8],
    q: &DnsQuerySeen,
) -> Vec<u8> {
    let qpkt = DnsPacket::new_checked(query).expect("query parsed before");
    let (_, question) = DnsQuestion::parse(qpkt.payload()).expect("query parsed before");

    // Resolve: follow CNAMEs, then take the records of the type asked.
    let mut answers: Vec<(String, DnsAnswer)> = Vec::new();
    let mut name = q.name.to_ascii_lowercase();
    let mut rcode = DnsRcode::NoError;
    if !zone.contains_key(&name) {
        rcode = DnsRcode::NXDomain;
    }
    for _ in 0..8 {
        let Some(records) = zone.get(&name) else {
            break;
        };
        if let Some(DnsAnswer::Cname(target)) =
            records.iter().find(|r| matches!(r, DnsAnswer::Cname(_)))
        {
            answers.push((name.clone(), DnsAnswer::Cname(target.clone())));
            name = target.to_ascii_lowercase();
            continue;
        }
        for r in records {
            let matches = matches!(
                (r, q.qtype),
                (DnsAnswer::A(_), DnsQueryType::A) | (DnsAnswer::Aaaa(_), DnsQueryType::Aaaa)
            );
            if matches {
                answers.push((name.clone(), r.clone()));
            }
        }
        break;
    }

    // Header and question with smoltcp's setters and `DnsQuestion::emit`.
    let header_len = 12;
    let mut out = vec![0u8; header_len + question.buffer_len()];
    {
        let mut p = DnsPacket::new_unchecked(&mut out[..]);
        p.set_transaction_id(q.txid);
        p.set_flags(
            DnsFlags::RESPONSE
                | DnsFlags::RECURSION_AVAILABLE
                | (q.flags & DnsFlags::RECURSION_DESIRED),
        );
        p.set_opcode(DnsOpcode::Query);
        p.set_question_count(1);
        p.set_answer_record_count(u16::try_from(answers.len()).expect("few answers"));
        p.set_authority_record_count(0);
        p.set_additional_record_count(0);
        question.emit(p.payload_mut());
    }
    // RCODE: the low 4 bits of the second flags byte (smoltcp has no setter for it).
    out[3] = (out[3] & 0xf0) | u8::from(rcode);
    assert_eq!(
        DnsPacket::new_checked(&out[..]).expect("header").rcode(),
        rcode
    );
    for (owner, answer) in &answers {
        push_record(&mut out, owner, answer, 300);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// IPv6 router
// ---------------------------------------------------------------------------------------------

/// What a [`Router`] advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterConfig {
    /// The prefix (a /64 for SLAAC).
    pub prefix: Ipv6Cidr,
    /// Prefix flags (on-link, autonomous).
    pub prefix_flags: NdiscPrefixInfoFlags,
    /// Router lifetime (0: not a default router).
    pub router_lifetime: smoltcp::time::Duration,
    /// Prefix valid lifetime.
    pub valid_lifetime: smoltcp::time::Duration,
    /// Prefix preferred lifetime.
    pub preferred_lifetime: smoltcp::time::Duration,
}

impl RouterConfig {
    /// 2001:db8:1::/64, on-link and autonomous, router lifetime 30 min, valid 1 day,
    /// preferred 4 h.
    pub fn documentation() -> Self {
        Self {
            prefix: Ipv6Cidr::new(Ipv6Address::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0), 64),
            prefix_flags: NdiscPrefixInfoFlags::ON_LINK | NdiscPrefixInfoFlags::ADDRCONF,
            router_lifetime: smoltcp::time::Duration::from_secs(1800),
            valid_lifetime: smoltcp::time::Duration::from_secs(86_400),
            preferred_lifetime: smoltcp::time::Duration::from_secs(14_400),
        }
    }
}

/// A router solicitation a [`Router`] received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterSolicitation {
    /// When.
    pub time: Instant,
    /// Its IPv6 header.
    pub ip: Ipv6Repr,
    /// Whether it carried a source link-layer address option.
    pub has_lladdr: bool,
}

struct RouterState {
    mac: EthernetAddress,
    config: RouterConfig,
    silent: bool,
    solicitations: Vec<RouterSolicitation>,
    advertisements: Vec<Instant>,
}

/// A scripted IPv6 router: answers router solicitations with a router advertisement (to
/// ff02::1, from its EUI-64 link-local address); cheap to clone, clones share state.
#[derive(Clone)]
pub struct Router {
    state: Rc<RefCell<RouterState>>,
}

impl Router {
    /// A router whose link-local address derives from `mac` (the MAC of the peer it runs on).
    pub fn new(mac: EthernetAddress, config: RouterConfig) -> Self {
        Self {
            state: Rc::new(RefCell::new(RouterState {
                mac,
                config,
                silent: false,
                solicitations: Vec::new(),
                advertisements: Vec::new(),
            })),
        }
    }

    /// The router's link-local address.
    pub fn link_local(&self) -> Ipv6Address {
        link_local(self.state.borrow().mac)
    }

    /// Stop (or start again) answering solicitations.
    pub fn set_silent(&self, silent: bool) {
        self.state.borrow_mut().silent = silent;
    }

    /// The solicitations received, oldest first.
    pub fn solicitations(&self) -> Vec<RouterSolicitation> {
        self.state.borrow().solicitations.clone()
    }

    /// When advertisements were sent.
    pub fn advertisements(&self) -> Vec<Instant> {
        self.state.borrow().advertisements.clone()
    }

    /// The router advertisement frame.
    pub fn advertisement(&self) -> Vec<u8> {
        let s = self.state.borrow();
        let c = s.config;
        let ra = Icmpv6Repr::Ndisc(NdiscRepr::RouterAdvert {
            hop_limit: 64,
            flags: NdiscRouterFlags::empty(),
            router_lifetime: c.router_lifetime,
            reachable_time: smoltcp::time::Duration::from_millis(0),
            retrans_time: smoltcp::time::Duration::from_millis(0),
            lladdr: Some(s.mac.into()),
            mtu: None,
            prefix_info: Some(NdiscPrefixInformation {
                prefix_len: c.prefix.prefix_len(),
                flags: c.prefix_flags,
                valid_lifetime: c.valid_lifetime,
                preferred_lifetime: c.preferred_lifetime,
                prefix: c.prefix.address(),
            }),
        });
        icmpv6_frame(
            s.mac,
            multicast_mac_v6(ALL_NODES),
            link_local(s.mac),
            ALL_NODES,
            255,
            &ra,
        )
    }

    fn handle_rs(&self, ip: &Ipv6Repr, has_lladdr: bool) -> Vec<(Duration, Vec<u8>)> {
        self.state
            .borrow_mut()
            .solicitations
            .push(RouterSolicitation {
                time: Instant::now(),
                ip: *ip,
                has_lladdr,
            });
        if self.state.borrow().silent {
            return Vec::new();
        }
        let frame = self.advertisement();
        self.state.borrow_mut().advertisements.push(Instant::now());
        vec![(Duration::from_ticks(0), frame)]
    }
}
