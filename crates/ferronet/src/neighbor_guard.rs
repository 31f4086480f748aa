//! Giving up on a neighbor that never answers, so that no socket waits for it forever.
//!
//! smoltcp keeps a UDP datagram (or raw/ICMP packet, DNS query) whose destination's link
//! address is unknown at the head of the socket's transmit queue, asks for the address once
//! a second, forever, and sends nothing else from that socket meanwhile. One datagram from a
//! host that answers no ARP (a spoofed source, a host gone away) so wedged a UDP echo server
//! for everyone. smoltcp offers no way to drop the head of a socket's queue, nor to mark a
//! neighbor unreachable.
//!
//! So the runner watches the neighbor solicitations that leave (ARP requests, IPv6 neighbor
//! solicitations, [`NeighborGuard::on_transmit`]) and the answers that arrive
//! ([`NeighborGuard::on_receive`]). After [`GIVE_UP_AFTER`] solicitations for one address
//! without any answer (smoltcp sends one a second: about three seconds, as Linux gives up
//! after three probes), it gives that address the interface's own link address, by handing
//! smoltcp a made-up answer ([`answer_frame`]). What was waiting for it then goes out
//! addressed to ourselves, which no switch or host forwards, and the sockets move on. The
//! made-up entry is dated so that it expires [`HOLD`] later (smoltcp keeps entries
//! [`ENTRY_LIFETIME`] from the time they are filled): the next packet for that address asks
//! for it afresh. This is what Linux does with a neighbor that failed to resolve: what was
//! queued for it is dropped, and the next packet tries again, so a host whose answers were
//! merely lost (a lossy link) is reachable again at once.

use core::cell::Cell;

use smoltcp::wire::{EthernetAddress, IpAddress};

/// Unanswered solicitations for one address after which it is given up.
pub(crate) const GIVE_UP_AFTER: u8 = 3;
/// How long smoltcp 0.14 keeps a neighbor cache entry after it was filled
/// (`iface::neighbor::Cache::ENTRY_LIFETIME`, private to smoltcp).
pub(crate) const ENTRY_LIFETIME: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(60);
/// How long a made-up entry lives: long enough for every egress pass of the poll that made
/// it (and the next few) to flush what waited for the address.
pub(crate) const HOLD: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(1);
/// Addresses tracked at once. smoltcp solicits one address a second at most, so a second
/// entry keeps two dead neighbors that alternate from resetting each other's count.
const ENTRIES: usize = 2;
/// `asked` value of an address given up, until the runner has answered for it.
const GIVEN_UP: u8 = u8::MAX;

/// Unanswered neighbor solicitations per address (see the module docs). Shared by the
/// receive and transmit tokens of one poll, hence the cells.
pub(crate) struct NeighborGuard {
    entries: [Cell<Option<(IpAddress, u8)>>; ENTRIES],
}

impl NeighborGuard {
    pub(crate) const fn new() -> Self {
        Self {
            entries: [const { Cell::new(None) }; ENTRIES],
        }
    }

    /// An Ethernet frame is being sent: count it if it solicits a neighbor.
    #[inline]
    pub(crate) fn on_transmit(&self, frame: &[u8]) {
        if let Some(addr) = solicited(frame) {
            self.asked(addr);
        }
    }

    /// An Ethernet frame was received: an ARP packet or neighbor advertisement from an address
    /// clears its count.
    #[inline]
    pub(crate) fn on_receive(&self, frame: &[u8]) {
        if let Some(addr) = advertised(frame) {
            for e in &self.entries {
                if matches!(e.get(), Some((a, _)) if a == addr) {
                    e.set(None);
                }
            }
        }
    }

    fn asked(&self, addr: IpAddress) {
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| matches!(e.get(), Some((a, _)) if a == addr))
        {
            if let Some((a, n)) = e.get()
                && n != GIVEN_UP
            {
                let n = n + 1;
                e.set(Some((a, if n >= GIVE_UP_AFTER { GIVEN_UP } else { n })));
            }
            return;
        }
        // A new address takes a free entry, or the one with the fewest solicitations.
        let slot = self
            .entries
            .iter()
            .min_by_key(|e| e.get().map_or(0, |(_, n)| n))
            .unwrap_or(&self.entries[0]);
        if slot.get().is_none_or(|(_, n)| n != GIVEN_UP) {
            slot.set(Some((addr, 1)));
        }
    }

    /// Whether an address was given up on and not yet answered for.
    #[inline]
    pub(crate) fn has_given_up(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e.get(), Some((_, GIVEN_UP))))
    }

    /// An address given up on, to be answered for now; forgotten by this call.
    pub(crate) fn take_given_up(&self) -> Option<IpAddress> {
        self.entries.iter().find_map(|e| match e.get() {
            Some((a, GIVEN_UP)) => {
                e.set(None);
                Some(a)
            }
            _ => None,
        })
    }
}

/// The address an ARP request or IPv6 neighbor solicitation in `frame` asks for.
fn solicited(frame: &[u8]) -> Option<IpAddress> {
    match frame.get(12..14)? {
        #[cfg(feature = "proto-ipv4")]
        [0x08, 0x06] if frame.get(20..22)? == [0, 1] => {
            let t = frame.get(38..42)?;
            Some(IpAddress::v4(t[0], t[1], t[2], t[3]))
        }
        #[cfg(feature = "proto-ipv6")]
        [0x86, 0xdd] if frame.get(20) == Some(&58) && frame.get(54) == Some(&135) => {
            ipv6_at(frame, 62)
        }
        _ => None,
    }
}

/// The address an ARP packet (request or reply) or IPv6 neighbor advertisement in `frame`
/// comes from.
fn advertised(frame: &[u8]) -> Option<IpAddress> {
    match frame.get(12..14)? {
        #[cfg(feature = "proto-ipv4")]
        [0x08, 0x06] => {
            let s = frame.get(28..32)?;
            Some(IpAddress::v4(s[0], s[1], s[2], s[3]))
        }
        #[cfg(feature = "proto-ipv6")]
        [0x86, 0xdd] if frame.get(20) == Some(&58) && frame.get(54) == Some(&136) => {
            ipv6_at(frame, 62)
        }
        _ => None,
    }
}

#[cfg(feature = "proto-ipv6")]
fn ipv6_at(frame: &[u8], at: usize) -> Option<IpAddress> {
    let b: [u8; 16] = frame.get(at..at + 16)?.try_into().ok()?;
    Some(IpAddress::Ipv6(b.into()))
}

/// The longest frame [`answer_frame`] writes.
pub(crate) const ANSWER_LEN: usize = 14 + 40 + 32;

/// Write into `buf` an answer for `addr` giving it the link address `mac`, as if from that
/// neighbor to `own` (an address of the interface in the same family): an ARP reply, or an
/// IPv6 neighbor advertisement with the override flag. Returns its length.
pub(crate) fn answer_frame(
    buf: &mut [u8; ANSWER_LEN],
    mac: EthernetAddress,
    addr: IpAddress,
    own: IpAddress,
) -> Option<usize> {
    use smoltcp::wire::*;
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.set_src_addr(mac);
    eth.set_dst_addr(mac);
    match (addr, own) {
        #[cfg(feature = "proto-ipv4")]
        (IpAddress::Ipv4(addr), IpAddress::Ipv4(own)) => {
            eth.set_ethertype(EthernetProtocol::Arp);
            let repr = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: mac,
                source_protocol_addr: addr,
                target_hardware_addr: mac,
                target_protocol_addr: own,
            };
            repr.emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
            Some(14 + repr.buffer_len())
        }
        #[cfg(feature = "proto-ipv6")]
        (IpAddress::Ipv6(addr), IpAddress::Ipv6(own)) => {
            eth.set_ethertype(EthernetProtocol::Ipv6);
            let icmp = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                flags: NdiscNeighborFlags::OVERRIDE | NdiscNeighborFlags::SOLICITED,
                target_addr: addr,
                lladdr: Some(RawHardwareAddress::from(mac)),
            });
            let ip = Ipv6Repr {
                src_addr: addr,
                dst_addr: own,
                next_header: IpProtocol::Icmpv6,
                payload_len: icmp.buffer_len(),
                hop_limit: 0xff,
            };
            let mut packet = Ipv6Packet::new_unchecked(eth.payload_mut());
            ip.emit(&mut packet);
            icmp.emit(
                &addr,
                &own,
                &mut Icmpv6Packet::new_unchecked(packet.payload_mut()),
                &smoltcp::phy::ChecksumCapabilities::default(),
            );
            Some(14 + ip.buffer_len() + icmp.buffer_len())
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Hand smoltcp a made-up answer for every address `guard` gave up on (see the module docs),
/// through the runner's device adapter (see `DriverAdapter::made_up`).
#[cold]
pub(crate) fn answer_given_up<D: embassy_net_driver::Driver>(
    guard: &NeighborGuard,
    iface: &mut smoltcp::iface::Interface,
    sockets: &mut smoltcp::iface::SocketSet<'_>,
    ts: smoltcp::time::Instant,
    dev: &mut crate::driver_adapter::DriverAdapter<'_, '_, D>,
) {
    while let Some(addr) = guard.take_given_up() {
        warn!("neighbor {} does not answer: given up", addr);
        let mut buf = [0u8; ANSWER_LEN];
        if let Some(n) = given_up_answer(iface, addr, &mut buf) {
            crate::driver_adapter::ingress_made_up(
                iface,
                sockets,
                dated(ts),
                dev,
                &buf[..n],
                false,
            );
        }
    }
}

/// Give `addr` the interface's own link address for [`HOLD`] (see the module docs), outside
/// the runner's receive path: what waits for it goes nowhere, and sockets that smoltcp keeps
/// silent while it waits for that neighbor may send again.
#[cfg(feature = "tcp-listener")]
pub(crate) fn give_up(
    iface: &mut smoltcp::iface::Interface,
    sockets: &mut smoltcp::iface::SocketSet<'_>,
    ts: smoltcp::time::Instant,
    addr: IpAddress,
) {
    let mut buf = [0u8; ANSWER_LEN];
    if let Some(n) = given_up_answer(iface, addr, &mut buf) {
        let mut dev = crate::inject::Injected::new(&buf[..n], smoltcp::phy::Medium::Ethernet);
        let _ = iface.poll_ingress_single(dated(ts), &mut dev, sockets);
    }
}

/// The made-up answer that maps `addr` to the interface's own link address, in `buf`; its
/// length.
fn given_up_answer(
    iface: &smoltcp::iface::Interface,
    addr: IpAddress,
    buf: &mut [u8; ANSWER_LEN],
) -> Option<usize> {
    #[allow(irrefutable_let_patterns)]
    let smoltcp::wire::HardwareAddress::Ethernet(mac) = iface.hardware_addr() else {
        return None;
    };
    // An address of ours in the same family, on the same subnet where there is one.
    let own = iface
        .ip_addrs()
        .iter()
        .filter(|c| c.address().version() == addr.version())
        .max_by_key(|c| c.contains_addr(&addr))
        .map(|c| c.address())?;
    answer_frame(buf, mac, addr, own)
}

/// The time to date a given-up answer with, so that the entry expires [`HOLD`] after `ts`.
/// smoltcp takes the time of the ingress as the interface's clock only until the next poll,
/// which passes `ts` again; an ARP reply or advertisement touches no socket.
fn dated(ts: smoltcp::time::Instant) -> smoltcp::time::Instant {
    ts - (ENTRY_LIFETIME - HOLD)
}

/// Give `addr` the link address `mac` in smoltcp's neighbor cache, by handing it a made-up
/// answer from that neighbor (the DHCP server uses it to reach a client that cannot answer
/// ARP yet; a TCP listener, for a client whose ACK carried a valid SYN cookie). The entry
/// lives as long as a learned one.
#[cfg(any(feature = "dhcpv4-server", feature = "tcp-listener"))]
pub(crate) fn fill_neighbor(
    iface: &mut smoltcp::iface::Interface,
    sockets: &mut smoltcp::iface::SocketSet<'_>,
    ts: smoltcp::time::Instant,
    addr: IpAddress,
    mac: EthernetAddress,
) {
    #[allow(irrefutable_let_patterns)]
    let smoltcp::wire::HardwareAddress::Ethernet(own_mac) = iface.hardware_addr() else {
        return;
    };
    let Some(own) = iface
        .ip_addrs()
        .iter()
        .find(|c| c.contains_addr(&addr))
        .map(|c| c.address())
    else {
        return;
    };
    let mut buf = [0u8; ANSWER_LEN];
    if let Some(n) = answer_frame(&mut buf, mac, addr, own) {
        // Addressed to us, or smoltcp would not take it.
        smoltcp::wire::EthernetFrame::new_unchecked(&mut buf[..]).set_dst_addr(own_mac);
        let mut dev = crate::inject::Injected::new(&buf[..n], smoltcp::phy::Medium::Ethernet);
        let _ = iface.poll_ingress_single(ts, &mut dev, sockets);
    }
}

#[cfg(all(test, feature = "proto-ipv4", feature = "proto-ipv6"))]
mod tests {
    extern crate std;
    use super::*;
    use smoltcp::wire::{Ipv4Address, Ipv6Address};
    use std::{vec, vec::Vec};

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const DEAD: Ipv4Address = Ipv4Address::new(192, 0, 2, 99);

    fn arp(op: u16, sender: Ipv4Address, target: Ipv4Address) -> Vec<u8> {
        let mut f = vec![0u8; 42];
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        f[20..22].copy_from_slice(&op.to_be_bytes());
        f[28..32].copy_from_slice(&sender.octets());
        f[38..42].copy_from_slice(&target.octets());
        f
    }

    #[test]
    fn gives_up_after_three_unanswered_requests() {
        let g = NeighborGuard::new();
        let me = Ipv4Address::new(192, 0, 2, 2);
        for _ in 0..GIVE_UP_AFTER - 1 {
            g.on_transmit(&arp(1, me, DEAD));
            assert_eq!(g.take_given_up(), None);
        }
        g.on_transmit(&arp(1, me, DEAD));
        assert_eq!(g.take_given_up(), Some(DEAD.into()));
        assert_eq!(g.take_given_up(), None);
    }

    #[test]
    fn an_answer_resets_the_count_and_replies_are_not_requests() {
        let g = NeighborGuard::new();
        let me = Ipv4Address::new(192, 0, 2, 2);
        for _ in 0..10 {
            g.on_transmit(&arp(1, me, DEAD));
            g.on_transmit(&arp(2, me, DEAD));
            g.on_transmit(&arp(1, me, DEAD));
            g.on_receive(&arp(2, DEAD, me));
            assert_eq!(g.take_given_up(), None);
        }
    }

    #[test]
    fn two_dead_neighbors_alternating_are_both_given_up() {
        let g = NeighborGuard::new();
        let me = Ipv4Address::new(192, 0, 2, 2);
        let other = Ipv4Address::new(192, 0, 2, 98);
        for _ in 0..GIVE_UP_AFTER {
            g.on_transmit(&arp(1, me, DEAD));
            g.on_transmit(&arp(1, me, other));
        }
        let mut given_up = [g.take_given_up(), g.take_given_up()];
        given_up.sort();
        let mut expected = [Some(DEAD.into()), Some(other.into())];
        expected.sort();
        assert_eq!(given_up, expected);
    }

    #[test]
    fn answers_parse_as_what_they_claim() {
        let mut buf = [0u8; ANSWER_LEN];
        let own = Ipv4Address::new(192, 0, 2, 2);
        let n = answer_frame(&mut buf, MAC, DEAD.into(), own.into()).unwrap();
        let eth = smoltcp::wire::EthernetFrame::new_checked(&buf[..n]).unwrap();
        let arp = smoltcp::wire::ArpPacket::new_checked(eth.payload()).unwrap();
        let repr = smoltcp::wire::ArpRepr::parse(&arp).unwrap();
        assert_eq!(
            repr,
            smoltcp::wire::ArpRepr::EthernetIpv4 {
                operation: smoltcp::wire::ArpOperation::Reply,
                source_hardware_addr: MAC,
                source_protocol_addr: DEAD,
                target_hardware_addr: MAC,
                target_protocol_addr: own,
            }
        );
        assert_eq!(advertised(&buf[..n]), Some(DEAD.into()));

        let dead6 = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 99);
        let own6 = Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
        let n = answer_frame(&mut buf, MAC, dead6.into(), own6.into()).unwrap();
        assert_eq!(n, ANSWER_LEN);
        assert_eq!(advertised(&buf[..n]), Some(dead6.into()));
        let eth = smoltcp::wire::EthernetFrame::new_checked(&buf[..n]).unwrap();
        let ip = smoltcp::wire::Ipv6Packet::new_checked(eth.payload()).unwrap();
        let icmp = smoltcp::wire::Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(&dead6, &own6));
        // Families must match.
        assert_eq!(answer_frame(&mut buf, MAC, dead6.into(), own.into()), None);
    }
}
