//! The DHCPv4 server (feature `dhcpv4-server`) against scripted clients built with smoltcp's
//! wire types, and against smoltcp's DHCP client on a second ferronet stack: the four-message
//! exchange with every option checked, distinct addresses, renewal, release, decline, inform,
//! a full pool, NAKs and silences as RFC 2131 says, replies to clients without an address,
//! lease expiry, and the configuration errors.

use embassy_time::{Duration, Instant};
use ferronet::dhcp_server::{
    DhcpLease, DhcpOption, DhcpServerConfig, DhcpServerError, LeaseState, MAX_LEASES,
};
use ferronet::udp::{PacketMetadata, UdpSocket};
use ferronet::{
    Config, ConfigV4, DhcpConfig, EthernetAddress, Ipv4Address, Ipv4Cidr, Stack, StackResources,
};
use ferronet_integration::peers::{DhcpMessage, Peer, parse_arp, parse_dhcp, udp_v4_frame};
use ferronet_integration::*;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{LinkConfig, MAC_A, MAC_B, pair_ethernet};
use smoltcp::wire::{
    ArpOperation, ArpRepr, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpMessageType, DhcpPacket,
    DhcpRepr,
};

/// Generous virtual time limit: anything that needs longer has hung.
const LIMIT: Duration = Duration::from_secs(30);
/// How long a test waits to be sure the server stays silent (virtual time).
const SILENCE: Duration = Duration::from_secs(2);

const SERVER_MAC: EthernetAddress = EthernetAddress(MAC_A);
const SERVER: Ipv4Address = Ipv4Address::new(192, 0, 2, 1);
const LEASE: Duration = Duration::from_secs(3600);
static DOMAIN: [DhcpOption<'static>; 1] = [DhcpOption {
    kind: 15,
    data: b"fnet.test",
}];

/// Client number `n`'s hardware address.
fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0x10, n])
}

/// Pool 192.0.2.100 ..= 192.0.2.(100 + size - 1), gateway .1, DNS .53, domain option.
fn config(size: u8, lease: Duration) -> DhcpServerConfig {
    let mut c = DhcpServerConfig::new(ip4(100), ip4(100 + size - 1));
    c.lease_duration = lease;
    c.gateway = Some(SERVER);
    c.dns_servers = heapless::Vec::from_slice(&[ip4(53)]).unwrap();
    c.extra_options = &DOMAIN;
    c
}

/// A server stack (192.0.2.1/24) on end "a" of a link and a scripted peer on end "b".
fn setup(ex: &Executor<'_>, c: DhcpServerConfig) -> (Stack<'static>, Peer) {
    let (dev_server, dev_peer, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let mut sc = v4_config(1);
    sc.gateway = None;
    let (stack, mut runner) = stack_on(dev_server, Config::ipv4_static(sc), 0xd4c5);
    ex.spawn(async move {
        runner.run().await;
    });
    stack.start_dhcp_server(c).unwrap();
    let peer = Peer::new(EthernetAddress(MAC_B));
    peer.spawn(ex, dev_peer);
    (stack, peer)
}

/// What a scripted client sends.
#[derive(Clone, Copy)]
struct Msg {
    t: DhcpMessageType,
    xid: u32,
    chaddr: EthernetAddress,
    ciaddr: Ipv4Address,
    broadcast: bool,
    requested: Option<Ipv4Address>,
    server_id: Option<Ipv4Address>,
    /// Broadcast even with `ciaddr` set (REBINDING).
    rebind: bool,
}

impl Msg {
    fn new(t: DhcpMessageType, n: u8, xid: u32) -> Self {
        Self {
            t,
            xid,
            chaddr: mac(n),
            ciaddr: Ipv4Address::UNSPECIFIED,
            broadcast: true,
            requested: None,
            server_id: None,
            rebind: false,
        }
    }
}

/// The DHCP message of `m`.
fn client_repr(m: Msg) -> DhcpRepr<'static> {
    DhcpRepr {
        message_type: m.t,
        transaction_id: m.xid,
        secs: 0,
        client_hardware_address: m.chaddr,
        client_ip: m.ciaddr,
        your_ip: Ipv4Address::UNSPECIFIED,
        server_ip: Ipv4Address::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: m.broadcast,
        requested_ip: m.requested,
        client_identifier: None,
        server_identifier: m.server_id,
        parameter_request_list: Some(&[1, 3, 6, 15]),
        dns_servers: None,
        max_size: None,
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    }
}

/// Send `m` from its client: from 0.0.0.0 (or `ciaddr`) to the broadcast address, or to the
/// server when `ciaddr` is set (RENEWING, RELEASE, INFORM).
fn send(peer: &Peer, m: Msg) {
    let repr = client_repr(m);
    let mut payload = vec![0u8; repr.buffer_len().max(300)];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut payload[..]))
        .unwrap();
    let (dst_mac, dst) = if m.ciaddr.is_unspecified() || m.rebind {
        (EthernetAddress::BROADCAST, Ipv4Address::BROADCAST)
    } else {
        (SERVER_MAC, SERVER)
    };
    peer.send(udp_v4_frame(
        m.chaddr,
        dst_mac,
        (m.ciaddr, DHCP_CLIENT_PORT),
        (dst, DHCP_SERVER_PORT),
        &payload,
    ));
}

/// The server's replies with transaction id `xid`, oldest first.
fn replies(peer: &Peer, xid: u32) -> Vec<DhcpMessage> {
    peer.received()
        .iter()
        .filter_map(|r| parse_dhcp(r.time, &r.frame))
        .filter(|m| m.xid == xid)
        .collect()
}

/// Send `m` and wait for the server's reply to it.
fn exchange(ex: &Executor<'_>, peer: &Peer, m: Msg) -> DhcpMessage {
    let before = replies(peer, m.xid).len();
    send(peer, m);
    ex.try_run_until(
        peer.wait_for(|rx| {
            rx.iter()
                .filter_map(|r| parse_dhcp(r.time, &r.frame))
                .filter(|r| r.xid == m.xid)
                .nth(before)
        }),
        LIMIT,
    )
    .unwrap_or_else(|_| panic!("no reply to {:?} xid {:#x}", m.t, m.xid))
}

/// Send `m` and check that the server answers nothing within [`SILENCE`].
fn silent(ex: &Executor<'_>, peer: &Peer, m: Msg) {
    let before = replies(peer, m.xid).len();
    send(peer, m);
    ex.run_for(SILENCE);
    let after = replies(peer, m.xid);
    assert_eq!(
        after.len(),
        before,
        "expected no reply to {:?}, got {:?}",
        m.t,
        after.last().map(|r| r.message_type)
    );
}

/// The option `kind` of a message.
fn option(m: &DhcpMessage, kind: u8) -> Option<Vec<u8>> {
    m.options
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, d)| d.clone())
}

/// The address of an OFFER or ACK (yiaddr), parsed again from the options of the message.
fn yiaddr(peer: &Peer, m: &DhcpMessage) -> Ipv4Address {
    let frame = peer
        .received()
        .into_iter()
        .find(|r| r.time == m.time && parse_dhcp(r.time, &r.frame).as_ref() == Some(m))
        .unwrap();
    let udp = ferronet_integration::peers::parse_udp(&frame.frame).unwrap();
    let pkt = DhcpPacket::new_checked(&udp.payload[..]).unwrap();
    pkt.your_ip()
}

/// Full DISCOVER-OFFER-REQUEST-ACK for client `n`; returns its address.
fn acquire(ex: &Executor<'_>, peer: &Peer, n: u8) -> Ipv4Address {
    let xid = 0x1000 + u32::from(n);
    let offer = exchange(ex, peer, Msg::new(DhcpMessageType::Discover, n, xid));
    assert_eq!(offer.message_type, DhcpMessageType::Offer);
    let addr = yiaddr(peer, &offer);
    let mut req = Msg::new(DhcpMessageType::Request, n, xid);
    req.requested = Some(addr);
    req.server_id = Some(SERVER);
    let ack = exchange(ex, peer, req);
    assert_eq!(ack.message_type, DhcpMessageType::Ack, "client {n}");
    assert_eq!(yiaddr(peer, &ack), addr);
    addr
}

fn lease_of(stack: Stack<'_>, n: u8) -> Option<DhcpLease> {
    stack
        .dhcp_leases()
        .into_iter()
        .find(|l| l.hardware_address == mac(n))
}

#[test]
fn offer_and_ack_carry_the_configuration() {
    let ex = Executor::new();
    let (stack, peer) = setup(&ex, config(8, LEASE));
    let offer = exchange(&ex, &peer, Msg::new(DhcpMessageType::Discover, 1, 0xabc));
    assert_eq!(offer.message_type, DhcpMessageType::Offer);
    // Broadcast flag set: broadcast, from the server's address and MAC.
    assert_eq!(offer.dst_mac, EthernetAddress::BROADCAST);
    assert_eq!(offer.dst_ip, Ipv4Address::BROADCAST);
    assert_eq!(offer.src_mac, SERVER_MAC);
    assert_eq!(offer.src_ip, SERVER);
    assert_eq!(offer.chaddr, mac(1));
    assert_eq!(yiaddr(&peer, &offer), ip4(100));
    assert_eq!(offer.server_identifier, Some(SERVER));
    assert_eq!(option(&offer, 51), Some(3600u32.to_be_bytes().to_vec()));
    assert_eq!(option(&offer, 58), Some(1800u32.to_be_bytes().to_vec()));
    assert_eq!(option(&offer, 59), Some(3150u32.to_be_bytes().to_vec()));
    assert_eq!(option(&offer, 1), Some(vec![255, 255, 255, 0]));
    assert_eq!(option(&offer, 3), Some(SERVER.octets().to_vec()));
    assert_eq!(option(&offer, 6), Some(ip4(53).octets().to_vec()));
    assert_eq!(option(&offer, 15), Some(b"fnet.test".to_vec()));
    let frame = peer.received().last().unwrap().frame.clone();
    let udp = ferronet_integration::peers::parse_udp(&frame).unwrap();
    assert_eq!((udp.src_port, udp.dst_port), (67, 68));
    assert!(udp.payload.len() >= 300, "padded to BOOTP's minimum");
    assert_eq!(
        lease_of(stack, 1).map(|l| (l.address, l.state)),
        Some((ip4(100), LeaseState::Offered))
    );

    let mut req = Msg::new(DhcpMessageType::Request, 1, 0xabc);
    req.requested = Some(ip4(100));
    req.server_id = Some(SERVER);
    let ack = exchange(&ex, &peer, req);
    assert_eq!(ack.message_type, DhcpMessageType::Ack);
    assert_eq!(yiaddr(&peer, &ack), ip4(100));
    assert_eq!(option(&ack, 51), Some(3600u32.to_be_bytes().to_vec()));
    assert_eq!(option(&ack, 15), Some(b"fnet.test".to_vec()));
    let l = lease_of(stack, 1).unwrap();
    assert_eq!((l.address, l.state), (ip4(100), LeaseState::Bound));
    assert_eq!(l.expires_at, ack.time + LEASE);
}

#[test]
fn eight_clients_distinct_addresses_renew_release_and_a_full_pool() {
    let ex = Executor::new();
    let (stack, peer) = setup(&ex, config(8, LEASE));
    let addrs: Vec<_> = (0..8).map(|n| acquire(&ex, &peer, n)).collect();
    let mut sorted = addrs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, (100..108).map(ip4).collect::<Vec<_>>());
    assert_eq!(stack.dhcp_leases().len(), 8);
    assert!(
        stack
            .dhcp_leases()
            .iter()
            .all(|l| l.state == LeaseState::Bound)
    );

    // The pool is full: a ninth client's DISCOVER is not answered (never NAKed).
    silent(&ex, &peer, Msg::new(DhcpMessageType::Discover, 9, 0x9000));

    // Renewal: a REQUEST with ciaddr, unicast; the ACK goes to ciaddr and extends the lease.
    peer.add_ipv4(addrs[0]);
    let before = lease_of(stack, 0).unwrap().expires_at;
    ex.run_for(Duration::from_secs(1800));
    let mut renew = Msg::new(DhcpMessageType::Request, 0, 0x2000);
    renew.ciaddr = addrs[0];
    renew.broadcast = false;
    let ack = exchange(&ex, &peer, renew);
    assert_eq!(ack.message_type, DhcpMessageType::Ack);
    assert_eq!(yiaddr(&peer, &ack), addrs[0]);
    assert_eq!(ack.client_ip, addrs[0]);
    assert_eq!(ack.dst_ip, addrs[0]);
    // (The peer answers ARP for every client with its own MAC.)
    assert_eq!(ack.dst_mac, EthernetAddress(MAC_B));
    let after = lease_of(stack, 0).unwrap();
    assert_eq!(after.state, LeaseState::Bound);
    assert_eq!(after.expires_at, ack.time + LEASE);
    assert!(after.expires_at > before);

    // Rebinding (T2 passed, REQUEST broadcast with ciaddr): ACK to ciaddr, lease extended.
    ex.run_for(Duration::from_secs(1000));
    let mut rebind = Msg::new(DhcpMessageType::Request, 0, 0x2001);
    rebind.ciaddr = addrs[0];
    rebind.broadcast = false;
    rebind.rebind = true;
    let ack = exchange(&ex, &peer, rebind);
    assert_eq!(ack.message_type, DhcpMessageType::Ack);
    assert_eq!((ack.dst_ip, yiaddr(&peer, &ack)), (addrs[0], addrs[0]));
    assert_eq!(lease_of(stack, 0).unwrap().expires_at, ack.time + LEASE);

    // Release frees the address at once: the ninth client gets exactly that one.
    let mut release = Msg::new(DhcpMessageType::Release, 3, 0x3000);
    release.ciaddr = addrs[3];
    release.server_id = Some(SERVER);
    silent(&ex, &peer, release);
    assert_eq!(lease_of(stack, 3).unwrap().state, LeaseState::Free);
    assert_eq!(acquire(&ex, &peer, 9), addrs[3]);
    // The client that released it asks for it back (INIT-REBOOT): its record went to the
    // ninth client with the address, so the server has no record of it and stays silent.
    let mut reboot = Msg::new(DhcpMessageType::Request, 3, 0x3001);
    reboot.requested = Some(addrs[3]);
    silent(&ex, &peer, reboot);
    // Another client asking for the ninth's address in INIT-REBOOT with a record of its own
    // (client 1 holds another address): NAK, broadcast, without a lease.
    let mut wrong = Msg::new(DhcpMessageType::Request, 1, 0x3002);
    wrong.requested = Some(addrs[3]);
    let nak = exchange(&ex, &peer, wrong);
    assert_eq!(nak.message_type, DhcpMessageType::Nak);
    assert_eq!(nak.dst_ip, Ipv4Address::BROADCAST);
    assert_eq!(nak.dst_mac, EthernetAddress::BROADCAST);
    assert_eq!(nak.server_identifier, Some(SERVER));
    assert_eq!(option(&nak, 51), None);
    assert_eq!(yiaddr(&peer, &nak), Ipv4Address::UNSPECIFIED);
    assert_eq!(lease_of(stack, 1).map(|l| l.address), Some(addrs[1]));
}

#[test]
fn request_states_nak_or_stay_silent_as_rfc_2131_says() {
    let ex = Executor::new();
    let (stack, peer) = setup(&ex, config(8, LEASE));
    let offer = exchange(&ex, &peer, Msg::new(DhcpMessageType::Discover, 1, 0x10));
    let offered = yiaddr(&peer, &offer);

    // SELECTING, our server id, another address than offered: NAK.
    let mut req = Msg::new(DhcpMessageType::Request, 1, 0x10);
    req.requested = Some(ip4(107));
    req.server_id = Some(SERVER);
    assert_eq!(exchange(&ex, &peer, req).message_type, DhcpMessageType::Nak);
    // SELECTING another server: silent, and our offer is withdrawn.
    let mut other = Msg::new(DhcpMessageType::Request, 1, 0x11);
    other.requested = Some(offered);
    other.server_id = Some(ip4(254));
    silent(&ex, &peer, other);
    assert_eq!(lease_of(stack, 1).unwrap().state, LeaseState::Free);

    // INIT-REBOOT of a client we have no record of: silent.
    let mut reboot = Msg::new(DhcpMessageType::Request, 2, 0x12);
    reboot.requested = Some(ip4(150));
    silent(&ex, &peer, reboot);
    // INIT-REBOOT with an address of another network: NAK.
    let mut moved = Msg::new(DhcpMessageType::Request, 2, 0x13);
    moved.requested = Some(Ipv4Address::new(198, 51, 100, 7));
    assert_eq!(
        exchange(&ex, &peer, moved).message_type,
        DhcpMessageType::Nak
    );
    // INIT-REBOOT of a known client with its own address: ACK.
    let addr = acquire(&ex, &peer, 3);
    let mut again = Msg::new(DhcpMessageType::Request, 3, 0x14);
    again.requested = Some(addr);
    let ack = exchange(&ex, &peer, again);
    assert_eq!(ack.message_type, DhcpMessageType::Ack);
    assert_eq!(yiaddr(&peer, &ack), addr);
    // ... and with another address: NAK.
    let mut wrong = Msg::new(DhcpMessageType::Request, 3, 0x15);
    wrong.requested = Some(ip4(106));
    assert_eq!(
        exchange(&ex, &peer, wrong).message_type,
        DhcpMessageType::Nak
    );

    // REBINDING (broadcast, ciaddr set) for an address outside our pool: silent.
    let mut rebind = Msg::new(DhcpMessageType::Request, 4, 0x16);
    rebind.ciaddr = ip4(20);
    silent(&ex, &peer, rebind);
    // RENEWING for an address another client holds: NAK.
    let mut stolen = Msg::new(DhcpMessageType::Request, 4, 0x17);
    stolen.ciaddr = addr;
    peer.add_ipv4(addr);
    assert_eq!(
        exchange(&ex, &peer, stolen).message_type,
        DhcpMessageType::Nak
    );
    // RENEWING with a free address of the pool (a server that lost its table): ACK.
    let mut lost = Msg::new(DhcpMessageType::Request, 5, 0x18);
    lost.ciaddr = ip4(105);
    peer.add_ipv4(ip4(105));
    let ack = exchange(&ex, &peer, lost);
    assert_eq!(ack.message_type, DhcpMessageType::Ack);
    assert_eq!(lease_of(stack, 5).map(|l| l.address), Some(ip4(105)));
}

#[test]
fn without_the_broadcast_flag_the_offer_goes_to_the_clients_mac_without_arp() {
    let ex = Executor::new();
    let (_stack, peer) = setup(&ex, config(8, LEASE));
    let mut discover = Msg::new(DhcpMessageType::Discover, 1, 0x20);
    discover.broadcast = false;
    let offer = exchange(&ex, &peer, discover);
    let addr = yiaddr(&peer, &offer);
    assert_eq!(offer.dst_mac, mac(1));
    assert_eq!(offer.dst_ip, addr);
    let mut req = Msg::new(DhcpMessageType::Request, 1, 0x20);
    req.broadcast = false;
    req.requested = Some(addr);
    req.server_id = Some(SERVER);
    let ack = exchange(&ex, &peer, req);
    assert_eq!((ack.dst_mac, ack.dst_ip), (mac(1), addr));
    // The client could not have answered ARP: the server asked nothing.
    let arp_requests = peer
        .received()
        .iter()
        .filter_map(|r| parse_arp(&r.frame))
        .filter(|a| {
            matches!(a, ArpRepr::EthernetIpv4 { operation: ArpOperation::Request, target_protocol_addr, .. } if *target_protocol_addr == addr)
        })
        .count();
    assert_eq!(arp_requests, 0);
}

#[test]
fn decline_blocks_the_address_and_inform_gets_no_lease() {
    let ex = Executor::new();
    let (stack, peer) = setup(&ex, config(8, LEASE));
    let addr = acquire(&ex, &peer, 1);
    let mut decline = Msg::new(DhcpMessageType::Decline, 1, 0x30);
    decline.requested = Some(addr);
    decline.server_id = Some(SERVER);
    silent(&ex, &peer, decline);
    let leases = stack.dhcp_leases();
    let declined = leases.iter().find(|l| l.address == addr).unwrap();
    assert_eq!(declined.state, LeaseState::Declined);
    // The client asks again and gets another address; so does everyone else.
    let next = acquire(&ex, &peer, 1);
    assert_ne!(next, addr);
    for n in 2..8 {
        assert_ne!(acquire(&ex, &peer, n), addr);
    }
    // The pool is now full (one address declined).
    silent(&ex, &peer, Msg::new(DhcpMessageType::Discover, 8, 0x31));

    // INFORM: an ACK to ciaddr with the configuration and no lease time.
    let mut inform = Msg::new(DhcpMessageType::Inform, 20, 0x32);
    inform.ciaddr = ip4(20);
    peer.add_ipv4(ip4(20));
    let ack = exchange(&ex, &peer, inform);
    assert_eq!(ack.message_type, DhcpMessageType::Ack);
    assert_eq!(ack.dst_ip, ip4(20));
    assert_eq!(option(&ack, 51), None);
    assert_eq!(option(&ack, 58), None);
    assert_eq!(option(&ack, 3), Some(SERVER.octets().to_vec()));
    assert_eq!(yiaddr(&peer, &ack), Ipv4Address::UNSPECIFIED);
    assert!(lease_of(stack, 20).is_none());
}

#[test]
fn leases_of_vanished_clients_expire_and_the_table_is_reused() {
    let ex = Executor::new();
    let lease = Duration::from_secs(60);
    // A pool larger than the table.
    let (stack, peer) = setup(&ex, config(100, lease));
    let n = MAX_LEASES as u8;
    let addrs: Vec<_> = (0..n).map(|c| acquire(&ex, &peer, c)).collect();
    assert_eq!(addrs, (100..100 + n).map(ip4).collect::<Vec<_>>());
    // The table is full of live leases: a new client is not answered.
    silent(&ex, &peer, Msg::new(DhcpMessageType::Discover, 200, 0x40));
    // The clients vanish; once their leases ended, new clients get addresses: with the table
    // full, each takes the record (and the address) that ended longest ago.
    ex.run_for(lease);
    assert!(
        stack
            .dhcp_leases()
            .iter()
            .all(|l| l.state == LeaseState::Free)
    );
    for c in 0..4 {
        assert_eq!(acquire(&ex, &peer, 100 + c), addrs[usize::from(c)]);
    }
    assert_eq!(stack.dhcp_leases().len(), MAX_LEASES);
    assert_eq!(
        stack
            .dhcp_leases()
            .iter()
            .filter(|l| l.state == LeaseState::Bound)
            .count(),
        4
    );
    // An old client whose record is still there gets its old address back.
    assert_eq!(acquire(&ex, &peer, 10), addrs[10]);

    // The application removes a lease: the address is free for anyone.
    let removed = stack.remove_dhcp_lease(addrs[10]).unwrap();
    assert_eq!(removed.hardware_address, mac(10));
    assert!(lease_of(stack, 10).is_none());
}

#[test]
fn a_small_pool_is_reused_after_the_leases_end() {
    let ex = Executor::new();
    let lease = Duration::from_secs(60);
    let (_stack, peer) = setup(&ex, config(2, lease));
    let a = acquire(&ex, &peer, 1);
    let b = acquire(&ex, &peer, 2);
    silent(&ex, &peer, Msg::new(DhcpMessageType::Discover, 3, 0x50));
    ex.run_for(lease);
    // Both ended: the oldest goes first.
    assert_eq!(acquire(&ex, &peer, 3), a);
    assert_eq!(acquire(&ex, &peer, 4), b);
    silent(&ex, &peer, Msg::new(DhcpMessageType::Discover, 5, 0x51));
}

#[test]
fn smoltcp_dhcp_client_on_a_second_stack_gets_and_renews_a_lease() {
    let ex = Executor::new();
    let (dev_a, dev_b, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (server, mut runner_a) = stack_on(dev_a, Config::ipv4_static(v4_config(1)), 1);
    let (client, mut runner_b) = stack_on(dev_b, Config::dhcpv4(DhcpConfig::default()), 2);
    ex.spawn(async move { runner_a.run().await });
    ex.spawn(async move { runner_b.run().await });
    let lease = Duration::from_secs(120);
    server.start_dhcp_server(config(8, lease)).unwrap();
    ex.try_run_until(client.wait_config_up(), LIMIT).unwrap();
    let got = client.config_v4().unwrap();
    assert_eq!(got.address, Ipv4Cidr::new(ip4(100), 24));
    assert_eq!(got.gateway, Some(SERVER));
    assert_eq!(got.dns_servers.as_slice(), &[ip4(53)]);
    let l = server.dhcp_leases()[0];
    assert_eq!(
        (l.hardware_address, l.address, l.state),
        (EthernetAddress(MAC_B), ip4(100), LeaseState::Bound)
    );
    // smoltcp renews at T1 (60 s): after 100 s the lease runs to at least 160 s.
    let t0 = Instant::now();
    ex.run_for(Duration::from_secs(100));
    assert_eq!(client.config_v4().unwrap().address.address(), ip4(100));
    let l = server.dhcp_leases()[0];
    assert_eq!(l.state, LeaseState::Bound);
    assert!(l.expires_at >= t0 + Duration::from_secs(160), "{l:?}");
    // UDP between them works on the leased address.
    let (mut rm, mut rb, mut tm, mut tb) = (
        [PacketMetadata::EMPTY; 2],
        [0u8; 256],
        [PacketMetadata::EMPTY; 2],
        [0u8; 256],
    );
    let mut s = UdpSocket::new(server, &mut rm, &mut rb, &mut tm, &mut tb);
    s.bind(7000).unwrap();
    let (mut rm2, mut rb2, mut tm2, mut tb2) = (
        [PacketMetadata::EMPTY; 2],
        [0u8; 256],
        [PacketMetadata::EMPTY; 2],
        [0u8; 256],
    );
    let mut c = UdpSocket::new(client, &mut rm2, &mut rb2, &mut tm2, &mut tb2);
    c.bind(7001).unwrap();
    ex.try_run_until(c.send_to(b"leased", (SERVER, 7000)), LIMIT)
        .unwrap()
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, meta) = ex
        .try_run_until(s.recv_from(&mut buf), LIMIT)
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"leased");
    assert_eq!(meta.endpoint.addr, ip4(100).into());
}

#[test]
fn bad_configurations_are_typed_errors() {
    let ex = Executor::new();
    let (dev_a, _dev_b, _link) = pair_ethernet(LinkConfig::default()).unwrap();
    let (stack, mut runner) = stack_on(dev_a, Config::ipv4_static(v4_config(1)), 3);
    ex.spawn(async move { runner.run().await });
    let subnet = Ipv4Cidr::new(ip4(0), 24);
    let outside = DhcpServerConfig::new(ip4(100), Ipv4Address::new(192, 0, 3, 10));
    assert_eq!(
        stack.start_dhcp_server(outside),
        Err(DhcpServerError::PoolOutsideSubnet {
            address: Ipv4Address::new(192, 0, 3, 10),
            subnet
        })
    );
    let broadcast = DhcpServerConfig::new(ip4(100), ip4(255));
    assert_eq!(
        stack.start_dhcp_server(broadcast),
        Err(DhcpServerError::PoolOutsideSubnet {
            address: ip4(255),
            subnet
        })
    );
    assert_eq!(
        stack.start_dhcp_server(DhcpServerConfig::new(ip4(20), ip4(10))),
        Err(DhcpServerError::PoolReversed)
    );
    assert_eq!(
        stack.start_dhcp_server(DhcpServerConfig::new(ip4(1), ip4(1))),
        Err(DhcpServerError::PoolEmpty)
    );
    let mut zero = DhcpServerConfig::new(ip4(10), ip4(20));
    zero.lease_duration = Duration::from_millis(500);
    assert_eq!(
        stack.start_dhcp_server(zero),
        Err(DhcpServerError::BadLeaseDuration)
    );
    static ROUTER: [DhcpOption<'static>; 1] = [DhcpOption {
        kind: 3,
        data: &[192, 0, 2, 9],
    }];
    let mut reserved = DhcpServerConfig::new(ip4(10), ip4(20));
    reserved.extra_options = &ROUTER;
    assert_eq!(
        stack.start_dhcp_server(reserved),
        Err(DhcpServerError::BadExtraOption { kind: 3 })
    );
    static LONG: [DhcpOption<'static>; 2] = [
        DhcpOption {
            kind: 224,
            data: &[0; 200],
        },
        DhcpOption {
            kind: 225,
            data: &[0; 200],
        },
    ];
    let mut long = DhcpServerConfig::new(ip4(10), ip4(20));
    long.extra_options = &LONG;
    assert_eq!(
        stack.start_dhcp_server(long),
        Err(DhcpServerError::ExtraOptionsTooLong)
    );
    assert_eq!(
        stack.start_dhcp_server(DhcpServerConfig::default()),
        Err(DhcpServerError::PoolOutsideSubnet {
            address: Ipv4Address::UNSPECIFIED,
            subnet
        })
    );
    assert!(!stack.is_dhcp_server_running());

    // Port 67 taken by the application.
    {
        let (mut rm, mut rb, mut tm, mut tb) = (
            [PacketMetadata::EMPTY; 1],
            [0u8; 64],
            [PacketMetadata::EMPTY; 1],
            [0u8; 64],
        );
        let mut s = UdpSocket::new(stack, &mut rm, &mut rb, &mut tm, &mut tb);
        s.bind(67).unwrap();
        assert_eq!(
            stack.start_dhcp_server(DhcpServerConfig::new(ip4(10), ip4(20))),
            Err(DhcpServerError::PortInUse)
        );
    }
    // Now it starts, and stops, freeing its slot.
    stack
        .start_dhcp_server(DhcpServerConfig::new(ip4(10), ip4(20)))
        .unwrap();
    assert!(stack.is_dhcp_server_running());
    stack.stop_dhcp_server();
    assert!(!stack.is_dhcp_server_running());

    // No static address: none at all, or one from the DHCP client.
    stack.set_config_v4(ConfigV4::None);
    assert_eq!(
        stack.start_dhcp_server(DhcpServerConfig::new(ip4(10), ip4(20))),
        Err(DhcpServerError::NoStaticAddress)
    );
    stack.set_config_v4(ConfigV4::Dhcp(DhcpConfig::default()));
    assert_eq!(
        stack.start_dhcp_server(DhcpServerConfig::new(ip4(10), ip4(20))),
        Err(DhcpServerError::NoStaticAddress)
    );

    // No socket slot left.
    let (dev, _peer_dev, _link2) = pair_ethernet(LinkConfig::default()).unwrap();
    let (small, _runner) = ferronet::new(
        dev,
        Config::ipv4_static(v4_config(1)),
        leak(StackResources::<1>::new()),
        4,
    );
    assert!(matches!(
        small.start_dhcp_server(DhcpServerConfig::new(ip4(10), ip4(20))),
        Err(DhcpServerError::SocketTableFull(_))
    ));
}

#[test]
fn a_flood_of_discovers_does_not_lock_clients_out() {
    let ex = Executor::new();
    let (stack, peer) = setup(&ex, config(8, LEASE));
    let bound = acquire(&ex, &peer, 1);
    // 200 DISCOVERs from made-up clients fill the pool with offers...
    for n in 0..200u32 {
        let mut m = Msg::new(DhcpMessageType::Discover, 0, 0x7000 + n);
        m.chaddr = EthernetAddress([0x02, 0xee, 0, 0, (n >> 8) as u8, n as u8]);
        send(&peer, m);
        ex.run_for(Duration::from_millis(5));
    }
    ex.run_for(SILENCE);
    let leases = stack.dhcp_leases();
    assert_eq!(leases.len(), 8);
    let offers = leases
        .iter()
        .filter(|l| l.state == LeaseState::Offered)
        .count();
    assert_eq!(offers, 7);
    // ... the lease is untouched, and a real client still gets an address at once.
    assert_eq!(
        lease_of(stack, 1).map(|l| (l.address, l.state)),
        Some((bound, LeaseState::Bound))
    );
    let addr = acquire(&ex, &peer, 2);
    assert_ne!(addr, bound);
    assert_eq!(lease_of(stack, 2).unwrap().state, LeaseState::Bound);
}

#[test]
fn malformed_and_foreign_messages_are_ignored() {
    let ex = Executor::new();
    let (stack, peer) = setup(&ex, config(8, LEASE));
    let junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![1; 10],
        vec![0xff; 300],
        // A valid DISCOVER cut short before the options.
        {
            let mut d = vec![0u8; 300];
            client_repr(Msg::new(DhcpMessageType::Discover, 1, 1))
                .emit(&mut DhcpPacket::new_unchecked(&mut d[..]))
                .unwrap();
            d.truncate(236);
            d
        },
    ];
    for p in &junk {
        peer.send(udp_v4_frame(
            mac(1),
            EthernetAddress::BROADCAST,
            (Ipv4Address::UNSPECIFIED, DHCP_CLIENT_PORT),
            (Ipv4Address::BROADCAST, DHCP_SERVER_PORT),
            p,
        ));
    }
    // A server's OFFER (BOOTREPLY) sent to port 67, and a relayed DISCOVER (giaddr set).
    let mut offer = client_repr(Msg::new(DhcpMessageType::Offer, 1, 2));
    offer.your_ip = ip4(50);
    offer.server_identifier = Some(ip4(254));
    offer.lease_duration = Some(60);
    let mut relayed = offer.clone();
    relayed.message_type = DhcpMessageType::Discover;
    relayed.transaction_id = 3;
    relayed.relay_agent_ip = ip4(254);
    for r in [offer, relayed] {
        let mut d = vec![0u8; r.buffer_len()];
        r.emit(&mut DhcpPacket::new_unchecked(&mut d[..])).unwrap();
        peer.send(udp_v4_frame(
            mac(1),
            EthernetAddress::BROADCAST,
            (Ipv4Address::UNSPECIFIED, DHCP_CLIENT_PORT),
            (Ipv4Address::BROADCAST, DHCP_SERVER_PORT),
            &d,
        ));
    }
    ex.run_for(SILENCE);
    let answers = peer
        .received()
        .iter()
        .filter_map(|r| parse_dhcp(r.time, &r.frame))
        .count();
    assert_eq!(answers, 0);
    assert!(stack.dhcp_leases().is_empty());
    // Still serving.
    assert_eq!(acquire(&ex, &peer, 1), ip4(100));
}
