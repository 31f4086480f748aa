//! DHCPv4 server (cargo feature `dhcpv4-server`), driven by the [`Runner`](crate::Runner): no
//! task of its own.
//!
//! Start it with [`Stack::start_dhcp_server`](crate::Stack::start_dhcp_server) on a stack with
//! a static IPv4 address: the server's address and the subnet it serves are that address and
//! its prefix, the pool ([`DhcpServerConfig::pool_start`] ..= [`DhcpServerConfig::pool_end`])
//! must lie inside that subnet. The server takes one socket slot of the
//! [`StackResources`](crate::StackResources) (a UDP socket on port 67): give `StackResources`
//! one more slot. Its buffers and its lease table ([`MAX_LEASES`] entries) live in the
//! `StackResources` as well: nothing is allocated.
//!
//! ```
//! # #[cfg(all(feature = "dhcpv4-server", feature = "proto-ipv4"))]
//! # fn f(stack: ferronet::Stack<'_>) -> Result<(), ferronet::dhcp_server::DhcpServerError> {
//! use ferronet::Ipv4Address;
//! use ferronet::dhcp_server::DhcpServerConfig;
//! // The stack has the static address 192.0.2.1/24.
//! let mut config = DhcpServerConfig::new(Ipv4Address::new(192, 0, 2, 100), Ipv4Address::new(192, 0, 2, 199));
//! config.gateway = Some(Ipv4Address::new(192, 0, 2, 1));
//! config.lease_duration = embassy_time::Duration::from_secs(3600);
//! stack.start_dhcp_server(config)?;
//! for lease in stack.dhcp_leases() {
//!     // lease.hardware_address, lease.address, lease.state, lease.expires_at
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # What is implemented (RFC 2131)
//!
//! - DHCPDISCOVER is answered with a DHCPOFFER (4.3.1): the client's current or previous
//!   address if it has one, else the address it asks for (option 50) if that is free and in
//!   the pool, else the first address of the pool that no one holds (while the table has
//!   room), else the address of the lease that ended longest ago, whose record it replaces,
//!   else the address of the oldest pending offer (an offer commits the server to nothing;
//!   this keeps a flood of DISCOVERs from locking clients out). The offered address is held
//!   for the client for [`OFFER_HOLD`] unless it is taken so. With no address left (every
//!   address of the pool, or every entry of the table, leased or declined) the server stays
//!   silent, as the RFC says (a DISCOVER is never NAKed).
//! - DHCPREQUEST (4.3.2) in each of the client's states: SELECTING (server identifier set: ACK
//!   when it names us and matches our offer, NAK when it names us and does not; when it names
//!   another server our offer is withdrawn and nothing is sent), INIT-REBOOT (ACK when we
//!   hold that address for the client, NAK when the address is on another network or not the
//!   client's, silent when we have no record of the client, as the RFC requires), RENEWING
//!   and REBINDING (`ciaddr` set: ACK extends the lease; NAK when the address belongs to
//!   another client; a free address of the pool is granted, so clients keep their address
//!   when the server restarted and lost its table; silent for addresses outside the pool,
//!   which belong to some other server).
//! - DHCPDECLINE (4.3.3) from the client the address was offered or leased to: the address
//!   is marked unusable for one lease duration ([`LeaseState::Declined`]); the client gets
//!   another one on its next DISCOVER.
//! - DHCPRELEASE (4.3.4): the address is free at once; the record is kept, so the client gets
//!   the same address again while no one else took it.
//! - DHCPINFORM (4.3.5): a DHCPACK with the configuration and no lease time, sent to `ciaddr`.
//! - Replies (4.1): NAKs are broadcast; to a client with an address (`ciaddr`) replies are
//!   sent to it; otherwise a reply is broadcast when the client set the broadcast flag, and
//!   otherwise sent to the offered address and the client's hardware address (the server
//!   fills its ARP cache with that pair, since the client cannot answer ARP yet).
//! - Options sent: message type, server identifier, lease time, renewal (T1 = 1/2 lease) and
//!   rebinding (T2 = 7/8 lease) times, subnet mask, router ([`DhcpServerConfig::gateway`]),
//!   DNS servers, and the application's [`DhcpServerConfig::extra_options`]. Replies are at
//!   least 300 bytes (BOOTP's minimum) and at most 576 bytes of IP datagram.
//! - Leases expire: a client that vanishes holds its address until its lease ends; after that
//!   the address goes to another client when no never-used address is left, and the record
//!   to another client when the table is full.
//!
//! # What is not implemented
//!
//! - Clients are identified by their hardware address (`chaddr`); the client identifier
//!   option (61) is not used to tell clients apart.
//! - Relay agents: messages with `giaddr` set are ignored.
//! - Option overload, `sname`/`file`, BOOTP clients (no message type option), the parameter
//!   request list (every configured option is always sent) and the client's maximum message
//!   size (replies never exceed 576 bytes, which every client must accept).
//! - Checking an address with a ping before offering it (RFC 2131 says SHOULD): the decline
//!   path covers a conflict the client finds with ARP.
//! - Persistent storage of the lease table: it lives in RAM and starts empty at boot.
//! - Static reservations (a fixed address per client).

use embassy_time::{Duration, Instant};
use heapless::Vec;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::udp;
use smoltcp::wire::{
    DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress,
    IpAddress, IpEndpoint, Ipv4Address, Ipv4Cidr,
};

pub use smoltcp::wire::DhcpOption;

/// Entries of the lease table (offered, bound, declined and remembered free addresses).
pub const MAX_LEASES: usize = 16;
/// Most options [`DhcpServerConfig::extra_options`] may hold.
pub const MAX_EXTRA_OPTIONS: usize = 8;
/// How long an offered address is held for the client it was offered to.
pub const OFFER_HOLD: Duration = Duration::from_secs(60);

/// Bytes of DHCP message that fit a 576-byte IP datagram (less 20 bytes of IP header and 8 of
/// UDP): every client must accept that much (RFC 2131 section 2).
const MAX_REPLY: usize = 576 - 28;
/// BOOTP's minimum message length (RFC 1542 section 3.2.1): replies are padded to it.
const MIN_REPLY: usize = 300;
/// Datagrams taken from the socket per runner poll.
const BUDGET: usize = 8;
/// Receive buffer: datagrams and bytes (a client's message is usually 300 to 576 bytes).
const RX_PACKETS: usize = 4;
const RX_BYTES: usize = 1536;
/// Transmit buffer: replies are at most [`MAX_REPLY`] bytes.
const TX_PACKETS: usize = 3;
const TX_BYTES: usize = 1024;

/// Option codes the server writes itself; [`DhcpServerConfig::extra_options`] may not hold
/// them: pad, subnet mask, router, DNS servers, requested address, lease time, overload,
/// message type, server identifier, parameter list, message, maximum size, T1, T2, client
/// identifier, end.
const RESERVED_OPTIONS: [u8; 16] = [0, 1, 3, 6, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 61, 255];

/// Configuration of the DHCPv4 server.
///
/// The server's address, the subnet and its mask come from the stack's static IPv4
/// configuration, not from here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct DhcpServerConfig {
    /// First address of the pool.
    pub pool_start: Ipv4Address,
    /// Last address of the pool (inclusive). The server's own address is skipped if it lies
    /// in the pool.
    pub pool_end: Ipv4Address,
    /// Lease duration granted to every client (1 s to 2^32-2 s; default one hour).
    pub lease_duration: Duration,
    /// Router option (3) sent to clients, if any.
    pub gateway: Option<Ipv4Address>,
    /// DNS servers option (6) sent to clients, if not empty.
    pub dns_servers: Vec<Ipv4Address, 3>,
    /// More options sent in every OFFER and ACK (for example a domain name, option 15, or NTP
    /// servers, option 42), at most [`MAX_EXTRA_OPTIONS`], each at most 255 bytes, none of the
    /// codes the server writes itself (1, 3, 6, 50 to 59, 61, and 0 and 255).
    pub extra_options: &'static [DhcpOption<'static>],
}

impl DhcpServerConfig {
    /// A configuration serving `pool_start ..= pool_end` with one-hour leases, no gateway, no
    /// DNS servers and no extra options.
    pub const fn new(pool_start: Ipv4Address, pool_end: Ipv4Address) -> Self {
        Self {
            pool_start,
            pool_end,
            lease_duration: Duration::from_secs(3600),
            gateway: None,
            dns_servers: Vec::new(),
            extra_options: &[],
        }
    }
}

impl Default for DhcpServerConfig {
    /// An empty pool (0.0.0.0 ..= 0.0.0.0), which [`Stack::start_dhcp_server`] refuses:
    /// set the pool.
    ///
    /// [`Stack::start_dhcp_server`]: crate::Stack::start_dhcp_server
    fn default() -> Self {
        Self::new(Ipv4Address::UNSPECIFIED, Ipv4Address::UNSPECIFIED)
    }
}

/// Why [`Stack::start_dhcp_server`](crate::Stack::start_dhcp_server) refused a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DhcpServerError {
    /// The stack has no static IPv4 address (none, or one from the DHCP client): the server
    /// needs one to know its own address and the subnet it serves.
    NoStaticAddress,
    /// `pool_start` or `pool_end` (the address given) is not a host address of the
    /// interface's subnet (`subnet`): outside it, or its network or broadcast address.
    PoolOutsideSubnet {
        /// The offending pool bound.
        address: Ipv4Address,
        /// The interface's subnet.
        subnet: Ipv4Cidr,
    },
    /// `pool_start` is after `pool_end`.
    PoolReversed,
    /// The pool holds no address but the server's own.
    PoolEmpty,
    /// The lease duration is below one second or does not fit DHCP's 32-bit field.
    BadLeaseDuration,
    /// An extra option has a code the server writes itself, or more than 255 bytes of data.
    BadExtraOption {
        /// Its code.
        kind: u8,
    },
    /// More than [`MAX_EXTRA_OPTIONS`] extra options, or more than a 576-byte reply can carry.
    ExtraOptionsTooLong,
    /// A UDP socket of the application is bound to port 67.
    PortInUse,
    /// No socket slot left for the server's UDP socket: make `StackResources` larger.
    SocketTableFull(crate::SocketTableFull),
}

impl core::fmt::Display for DhcpServerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoStaticAddress => write!(f, "the DHCP server needs a static IPv4 address"),
            Self::PoolOutsideSubnet { address, subnet } => write!(
                f,
                "DHCP pool bound {address} is not a host address of the subnet {subnet}"
            ),
            Self::PoolReversed => write!(f, "DHCP pool start is after its end"),
            Self::PoolEmpty => write!(f, "DHCP pool holds no address but the server's own"),
            Self::BadLeaseDuration => write!(f, "DHCP lease duration out of range"),
            Self::BadExtraOption { kind } => write!(f, "DHCP extra option {kind} not allowed"),
            Self::ExtraOptionsTooLong => write!(f, "DHCP extra options do not fit a reply"),
            Self::PortInUse => write!(f, "UDP port 67 is in use"),
            Self::SocketTableFull(e) => write!(f, "DHCP server: {e}"),
        }
    }
}

impl core::error::Error for DhcpServerError {}

/// State of a lease table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LeaseState {
    /// Offered to the client, held for it until `expires_at`.
    Offered,
    /// Acknowledged: the client holds the address until `expires_at`.
    Bound,
    /// The client declined the address (someone else uses it): it is not offered until
    /// `expires_at`.
    Declined,
    /// Expired or released: the address is free, and remembered as the client's previous one.
    Free,
}

/// An entry of the DHCP server's lease table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DhcpLease {
    /// The client's hardware address (`chaddr`).
    pub hardware_address: EthernetAddress,
    /// The address.
    pub address: Ipv4Address,
    /// The state at the time of the call that returned it.
    pub state: LeaseState,
    /// When an offer, lease or decline ends (for [`LeaseState::Free`]: when it ended).
    pub expires_at: Instant,
}

impl DhcpLease {
    /// The state at `now`: offers and leases past their end are free, declines past theirs
    /// are forgotten (`None`).
    fn state_at(&self, now: Instant) -> Option<LeaseState> {
        match self.state {
            LeaseState::Free => Some(LeaseState::Free),
            _ if self.expires_at > now => Some(self.state),
            LeaseState::Declined => None,
            _ => Some(LeaseState::Free),
        }
    }
}

/// The server's UDP buffers, inside the `StackResources`.
pub(crate) struct Buffers {
    rx_meta: [udp::PacketMetadata; RX_PACKETS],
    rx: [u8; RX_BYTES],
    tx_meta: [udp::PacketMetadata; TX_PACKETS],
    tx: [u8; TX_BYTES],
}

impl Buffers {
    pub(crate) const fn new() -> Self {
        Self {
            rx_meta: [udp::PacketMetadata::EMPTY; RX_PACKETS],
            rx: [0; RX_BYTES],
            tx_meta: [udp::PacketMetadata::EMPTY; TX_PACKETS],
            tx: [0; TX_BYTES],
        }
    }
}

/// The server's state, in the stack's shared state.
pub(crate) struct Server {
    /// The UDP socket, while running.
    handle: Option<SocketHandle>,
    buffers: *mut Buffers,
    config: DhcpServerConfig,
    table: Table,
}

impl Server {
    pub(crate) fn new(buffers: *mut Buffers) -> Self {
        Self {
            handle: None,
            buffers,
            config: DhcpServerConfig::default(),
            table: Table::new(),
        }
    }

    /// Whether the server runs.
    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        self.handle.is_some()
    }

    /// The lease table at `now`.
    pub(crate) fn leases(&self, now: Instant) -> Vec<DhcpLease, MAX_LEASES> {
        self.table
            .entries
            .iter()
            .flatten()
            .filter_map(|l| l.state_at(now).map(|state| DhcpLease { state, ..*l }))
            .collect()
    }

    /// Forget the entry for `address`.
    pub(crate) fn remove_lease(&mut self, address: Ipv4Address) -> Option<DhcpLease> {
        self.table
            .entries
            .iter_mut()
            .find(|e| matches!(e, Some(l) if l.address == address))
            .and_then(Option::take)
    }
}

/// Check `config` against the interface's address `cidr`.
pub(crate) fn validate(config: &DhcpServerConfig, cidr: Ipv4Cidr) -> Result<(), DhcpServerError> {
    let subnet = cidr.network();
    for address in [config.pool_start, config.pool_end] {
        if !is_host_of(cidr, address) {
            return Err(DhcpServerError::PoolOutsideSubnet { address, subnet });
        }
    }
    if config.pool_start > config.pool_end {
        return Err(DhcpServerError::PoolReversed);
    }
    if config.pool_start == config.pool_end && config.pool_start == cidr.address() {
        return Err(DhcpServerError::PoolEmpty);
    }
    let secs = config.lease_duration.as_secs();
    if secs == 0 || secs >= u64::from(u32::MAX) {
        return Err(DhcpServerError::BadLeaseDuration);
    }
    if config.extra_options.len() > MAX_EXTRA_OPTIONS {
        return Err(DhcpServerError::ExtraOptionsTooLong);
    }
    let mut len = 0;
    for o in config.extra_options {
        if RESERVED_OPTIONS.contains(&o.kind) || o.data.len() > 255 {
            return Err(DhcpServerError::BadExtraOption { kind: o.kind });
        }
        len += 2 + o.data.len();
    }
    if reply_len(config, len) > MAX_REPLY {
        return Err(DhcpServerError::ExtraOptionsTooLong);
    }
    Ok(())
}

/// The longest reply with `extra` bytes of extra options: the fixed header, magic cookie and
/// every option the server writes.
fn reply_len(config: &DhcpServerConfig, extra: usize) -> usize {
    // header 236 + cookie 4, type 3, server id 6, lease 6, T1 6, T2 6, mask 6, router 6,
    // DNS 2 + 4n, end 1
    240 + 3 + 6 * 6 + 2 + 4 * config.dns_servers.len() + 1 + extra
}

/// Whether `a` is a host address of the subnet of `cidr` (not its network or broadcast
/// address, unless the prefix is /31 or /32).
fn is_host_of(cidr: Ipv4Cidr, a: Ipv4Address) -> bool {
    cidr.contains_addr(&a)
        && (cidr.prefix_len() >= 31
            || (a != cidr.network().address() && Some(a) != cidr.broadcast()))
}

/// The lease table.
struct Table {
    entries: [Option<DhcpLease>; MAX_LEASES],
}

/// Where a reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    /// 255.255.255.255 and the broadcast MAC.
    Broadcast,
    /// An address that answers ARP.
    Unicast(Ipv4Address),
    /// An address whose owner cannot answer ARP yet: the server fills its neighbor cache with
    /// the client's hardware address first.
    UnicastTo(Ipv4Address, EthernetAddress),
}

/// What to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reply {
    message_type: DhcpMessageType,
    your_ip: Ipv4Address,
    /// Lease, T1 and T2 options (not in NAK and INFORM answers).
    lease: bool,
    /// Configuration options (not in NAKs).
    options: bool,
    dest: Dest,
}

impl Table {
    const fn new() -> Self {
        Self {
            entries: [None; MAX_LEASES],
        }
    }

    /// The index of the client's entry (not a decline).
    fn of_client(&self, mac: EthernetAddress) -> Option<usize> {
        self.entries.iter().position(
            |e| matches!(e, Some(l) if l.hardware_address == mac && l.state != LeaseState::Declined),
        )
    }

    /// The index of the entry for `address`.
    fn of_address(&self, address: Ipv4Address) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| matches!(e, Some(l) if l.address == address))
    }

    /// Whether `address` is held at `now` by an entry other than `except`.
    fn held(&self, address: Ipv4Address, now: Instant, except: Option<usize>) -> bool {
        self.entries.iter().enumerate().any(|(i, e)| {
            Some(i) != except
                && matches!(e, Some(l) if l.address == address
                    && matches!(l.state_at(now), Some(s) if s != LeaseState::Free))
        })
    }

    /// The entry other than `except` that a new client may take: the one whose address is
    /// free and that ended longest ago (or a forgotten decline), else the oldest offer (an
    /// offer commits the server to nothing, RFC 2131 4.3.1; taking it keeps a flood of
    /// DISCOVERs from locking everyone out). Leases and declines are never taken.
    fn oldest_reusable(&self, now: Instant, except: Option<usize>) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != except)
            .filter_map(|(i, e)| {
                let l = e.as_ref()?;
                match l.state_at(now) {
                    Some(LeaseState::Free) | None => Some((i, (0, l.expires_at))),
                    Some(LeaseState::Offered) => Some((i, (1, l.expires_at))),
                    _ => None,
                }
            })
            .min_by_key(|(_, key)| *key)
            .map(|(i, _)| i)
    }

    /// Choose an address and a table entry for a client without a usable one of its own
    /// (see the module docs for the order). `None`: pool or table full.
    fn allocate(
        &self,
        now: Instant,
        mac: EthernetAddress,
        requested: Option<Ipv4Address>,
        pool: &Pool,
    ) -> Option<(usize, Ipv4Address)> {
        let own = self.of_client(mac);
        // The slot for a new entry: the client's own, a vacant one, or a reusable one.
        let slot = |address_slot: Option<usize>| {
            own.or(address_slot)
                .or_else(|| self.entries.iter().position(Option::is_none))
                .or_else(|| self.oldest_reusable(now, None))
        };
        if let Some(r) = requested.filter(|r| pool.contains(*r) && !self.held(*r, now, own)) {
            let s = slot(self.of_address(r))?;
            return Some((s, r));
        }
        // The first address of the pool in no entry: at most MAX_LEASES addresses are in the
        // table and one is the server's, so this looks at no more than MAX_LEASES + 2.
        let fresh = (0..=MAX_LEASES as u32 + 1)
            .filter_map(|i| pool.start.to_bits().checked_add(i))
            .map(Ipv4Address::from_bits)
            .filter(|a| pool.contains(*a))
            .find(|a| self.of_address(*a).is_none());
        // Only while the table has room: with the table full, a new client takes the record
        // (and address) free longest, so that one record is lost, not two.
        if let Some(a) = fresh
            && let Some(s) = own.or_else(|| self.entries.iter().position(Option::is_none))
        {
            return Some((s, a));
        }
        // Every address of the pool is in the table, or the table is full: take the one free
        // longest (or the oldest offer).
        let i = self.oldest_reusable(now, own)?;
        let address = self.entries[i].as_ref()?.address;
        Some((own.unwrap_or(i), address))
    }

    /// Put an entry at `slot`, and forget any other entry for the same address.
    fn set(&mut self, slot: usize, lease: DhcpLease) {
        for (i, e) in self.entries.iter_mut().enumerate() {
            if i != slot && matches!(e, Some(l) if l.address == lease.address) {
                *e = None;
            }
        }
        self.entries[slot] = Some(lease);
    }

    /// Handle one client message (RFC 2131 section 4.3); the reply to send, if any.
    fn handle(
        &mut self,
        now: Instant,
        pool: &Pool,
        lease: Duration,
        req: &DhcpRepr<'_>,
    ) -> Option<Reply> {
        let mac = req.client_hardware_address;
        let ciaddr = req.client_ip;
        let ours = |sid: Option<Ipv4Address>| sid == Some(pool.server);
        let nak = Reply {
            message_type: DhcpMessageType::Nak,
            your_ip: Ipv4Address::UNSPECIFIED,
            lease: false,
            options: false,
            dest: Dest::Broadcast,
        };
        // Where an OFFER or ACK for a client without an address goes (RFC 2131 4.1).
        let to_new = |your_ip: Ipv4Address| {
            if req.broadcast || !mac.is_unicast() {
                Dest::Broadcast
            } else {
                Dest::UnicastTo(your_ip, mac)
            }
        };
        let dest = |your_ip| {
            if ciaddr.is_unspecified() {
                to_new(your_ip)
            } else {
                Dest::Unicast(ciaddr)
            }
        };
        let bind = |table: &mut Table, slot: usize, address: Ipv4Address| {
            table.set(
                slot,
                DhcpLease {
                    hardware_address: mac,
                    address,
                    state: LeaseState::Bound,
                    expires_at: now + lease,
                },
            );
            Some(Reply {
                message_type: DhcpMessageType::Ack,
                your_ip: address,
                lease: true,
                options: true,
                dest: dest(address),
            })
        };
        match req.message_type {
            DhcpMessageType::Discover => {
                // A client that holds a lease keeps it (it may have lost its state).
                if let Some(i) = self.of_client(mac)
                    && let Some(l) = self.entries[i]
                    && l.state_at(now) == Some(LeaseState::Bound)
                    && pool.contains(l.address)
                {
                    return Some(Reply {
                        message_type: DhcpMessageType::Offer,
                        your_ip: l.address,
                        lease: true,
                        options: true,
                        dest: to_new(l.address),
                    });
                }
                let (slot, address) = match self.of_client(mac) {
                    // Its previous address, if it is still free and in the pool.
                    Some(i)
                        if self.entries[i].is_some_and(|l| {
                            pool.contains(l.address) && !self.held(l.address, now, Some(i))
                        }) =>
                    {
                        (i, self.entries[i].as_ref()?.address)
                    }
                    _ => self.allocate(now, mac, req.requested_ip, pool)?,
                };
                self.set(
                    slot,
                    DhcpLease {
                        hardware_address: mac,
                        address,
                        state: LeaseState::Offered,
                        expires_at: now + OFFER_HOLD,
                    },
                );
                Some(Reply {
                    message_type: DhcpMessageType::Offer,
                    your_ip: address,
                    lease: true,
                    options: true,
                    dest: to_new(address),
                })
            }
            DhcpMessageType::Request => {
                let own = self.of_client(mac);
                let own_lease = own.and_then(|i| self.entries[i]);
                if let Some(sid) = req.server_identifier {
                    // SELECTING.
                    if !ours(Some(sid)) {
                        // The client took another server's offer: withdraw ours.
                        if let (Some(i), Some(l)) = (own, own_lease)
                            && l.state == LeaseState::Offered
                        {
                            self.entries[i] = Some(DhcpLease {
                                state: LeaseState::Free,
                                expires_at: now,
                                ..l
                            });
                        }
                        return None;
                    }
                    // Option 50 is a MUST here; a client that sends `ciaddr` instead is
                    // taken at its word.
                    let requested = req
                        .requested_ip
                        .or(Some(ciaddr).filter(|a| !a.is_unspecified()));
                    return match (own, own_lease, requested) {
                        (Some(i), Some(l), Some(r))
                            if l.address == r
                                && pool.contains(r)
                                && !self.held(r, now, Some(i)) =>
                        {
                            bind(self, i, r)
                        }
                        _ => Some(nak),
                    };
                }
                if ciaddr.is_unspecified() {
                    // INIT-REBOOT.
                    let r = req.requested_ip?;
                    if !is_host_of(pool.cidr, r) {
                        return Some(nak);
                    }
                    return match (own, own_lease) {
                        (Some(i), Some(l)) if l.address == r => {
                            if pool.contains(r) && !self.held(r, now, Some(i)) {
                                bind(self, i, r)
                            } else {
                                Some(nak)
                            }
                        }
                        (Some(_), Some(_)) => Some(nak),
                        // No record of this client: silent (RFC 2131 4.3.2).
                        _ => None,
                    };
                }
                // RENEWING or REBINDING.
                match (own, own_lease) {
                    (Some(i), Some(l)) if l.address == ciaddr => {
                        if pool.contains(ciaddr) && !self.held(ciaddr, now, Some(i)) {
                            bind(self, i, ciaddr)
                        } else {
                            Some(nak)
                        }
                    }
                    _ if !pool.contains(ciaddr) => None,
                    _ if self.held(ciaddr, now, own) => Some(nak),
                    _ => {
                        let i = self.allocate(now, mac, Some(ciaddr), pool)?;
                        if i.1 != ciaddr {
                            return Some(nak);
                        }
                        bind(self, i.0, ciaddr)
                    }
                }
            }
            DhcpMessageType::Decline => {
                let r = req.requested_ip?;
                if !ours(req.server_identifier) {
                    return None;
                }
                // Only the client the address was given to can decline it.
                if let Some(i) = self.of_client(mac)
                    && self.entries[i].is_some_and(|l| l.address == r)
                {
                    self.entries[i] = Some(DhcpLease {
                        hardware_address: mac,
                        address: r,
                        state: LeaseState::Declined,
                        expires_at: now + lease,
                    });
                }
                None
            }
            DhcpMessageType::Release => {
                if !ours(req.server_identifier) {
                    return None;
                }
                if let Some(i) = self.of_client(mac)
                    && let Some(l) = self.entries[i]
                    && l.address == ciaddr
                {
                    self.entries[i] = Some(DhcpLease {
                        state: LeaseState::Free,
                        expires_at: now,
                        ..l
                    });
                }
                None
            }
            DhcpMessageType::Inform => {
                if !is_host_of(pool.cidr, ciaddr) {
                    return None;
                }
                Some(Reply {
                    message_type: DhcpMessageType::Ack,
                    your_ip: Ipv4Address::UNSPECIFIED,
                    lease: false,
                    options: true,
                    dest: Dest::Unicast(ciaddr),
                })
            }
            _ => None,
        }
    }
}

/// The pool and the server's address, as checked by [`validate`].
struct Pool {
    start: Ipv4Address,
    end: Ipv4Address,
    server: Ipv4Address,
    cidr: Ipv4Cidr,
}

impl Pool {
    fn new(config: &DhcpServerConfig, cidr: Ipv4Cidr) -> Self {
        Self {
            start: config.pool_start,
            end: config.pool_end,
            server: cidr.address(),
            cidr,
        }
    }

    fn contains(&self, a: Ipv4Address) -> bool {
        a >= self.start && a <= self.end && a != self.server && is_host_of(self.cidr, a)
    }
}

/// Write the reply to `req` into `buf`; returns its length.
fn emit(
    config: &DhcpServerConfig,
    pool: &Pool,
    req: &DhcpRepr<'_>,
    reply: &Reply,
    buf: &mut [u8; MAX_REPLY],
) -> Option<usize> {
    let secs = u32::try_from(config.lease_duration.as_secs()).unwrap_or(u32::MAX - 1);
    let t1 = (secs / 2).to_be_bytes();
    let t2 = (secs / 8 * 7 + secs % 8 * 7 / 8).to_be_bytes();
    let mut options: Vec<DhcpOption<'_>, { MAX_EXTRA_OPTIONS + 2 }> = Vec::new();
    if reply.lease {
        let _ = options.push(DhcpOption {
            kind: 58,
            data: &t1,
        });
        let _ = options.push(DhcpOption {
            kind: 59,
            data: &t2,
        });
    }
    if reply.options {
        for o in config.extra_options {
            let _ = options.push(*o);
        }
    }
    let repr = DhcpRepr {
        message_type: reply.message_type,
        transaction_id: req.transaction_id,
        secs: 0,
        client_hardware_address: req.client_hardware_address,
        client_ip: if reply.message_type == DhcpMessageType::Nak {
            Ipv4Address::UNSPECIFIED
        } else {
            req.client_ip
        },
        your_ip: reply.your_ip,
        server_ip: Ipv4Address::UNSPECIFIED,
        router: config.gateway.filter(|_| reply.options),
        subnet_mask: reply.options.then(|| pool.cidr.netmask()),
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: req.broadcast,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(pool.server),
        parameter_request_list: None,
        dns_servers: (reply.options && !config.dns_servers.is_empty())
            .then(|| config.dns_servers.iter().copied().collect()),
        max_size: None,
        lease_duration: reply.lease.then_some(secs),
        renew_duration: None,
        rebind_duration: None,
        additional_options: &options,
    };
    let len = repr.buffer_len();
    if len > MAX_REPLY {
        return None;
    }
    buf.fill(0);
    repr.emit(&mut DhcpPacket::new_unchecked(&mut buf[..]))
        .ok()?;
    Some(len.max(MIN_REPLY))
}

/// Start (or reconfigure) the server on an interface with address `cidr`.
pub(crate) fn start(
    inner: &mut crate::stack::Inner,
    config: DhcpServerConfig,
    cidr: Ipv4Cidr,
) -> Result<(), DhcpServerError> {
    validate(&config, cidr)?;
    if inner.dhcp_server.handle.is_none() {
        let port_taken = inner.sockets.iter().any(|(_, s)| {
            matches!(s, smoltcp::socket::Socket::Udp(u) if u.endpoint().port == DHCP_SERVER_PORT)
        });
        if port_taken {
            return Err(DhcpServerError::PortInUse);
        }
        // SAFETY: `buffers` points into the `StackResources` that outlive the stack, it is
        // only reached from here (under the `RefCell` borrow of `Inner`), and no socket
        // borrows it now: the server's socket is created only while `handle` is `None`, and
        // `stop` removes (drops) it before setting `handle` to `None`.
        let b = unsafe { &mut *inner.dhcp_server.buffers };
        let mut socket = udp::Socket::new(
            udp::PacketBuffer::new(&mut b.rx_meta[..], &mut b.rx[..]),
            udp::PacketBuffer::new(&mut b.tx_meta[..], &mut b.tx[..]),
        );
        if socket.bind(DHCP_SERVER_PORT).is_err() {
            return Err(DhcpServerError::PortInUse);
        }
        let h = inner
            .add_socket(socket)
            .map_err(DhcpServerError::SocketTableFull)?;
        inner.dhcp_server.handle = Some(h);
    }
    let pool = Pool::new(&config, cidr);
    // Entries whose address left the pool go.
    for e in inner.dhcp_server.table.entries.iter_mut() {
        if matches!(e, Some(l) if !pool.contains(l.address)) {
            *e = None;
        }
    }
    info!(
        "DHCP server: pool {} - {}",
        config.pool_start, config.pool_end
    );
    inner.dhcp_server.config = config;
    inner.wake_runner();
    Ok(())
}

/// Stop the server: its socket goes, the lease table stays.
pub(crate) fn stop(inner: &mut crate::stack::Inner) {
    if let Some(h) = inner.dhcp_server.handle.take() {
        inner.remove_socket(h);
    }
}

/// The runner's step: answer what came in on port 67. `cidr` is the interface's static IPv4
/// address. Returns whether messages were left for the next poll (the transmit buffer was
/// full).
pub(crate) fn serve(
    server: &mut Server,
    iface: &mut smoltcp::iface::Interface,
    sockets: &mut SocketSet<'static>,
    cidr: Option<Ipv4Cidr>,
    ts: smoltcp::time::Instant,
) -> bool {
    let Some(handle) = server.handle else {
        return false;
    };
    let now = crate::time::instant_from_smoltcp(ts);
    for _ in 0..BUDGET {
        let socket = sockets.get_mut::<udp::Socket>(handle);
        if !socket.can_recv() {
            return false;
        }
        if !socket.can_send() {
            // Left for a later poll: this one's egress pass makes room.
            return false;
        }
        let mut buf = [0u8; MAX_REPLY];
        let answer = {
            let Ok((data, _meta)) = socket.recv() else {
                return false;
            };
            match cidr {
                // The static address changed to one whose subnet does not hold the pool:
                // serve nothing until it is restarted.
                Some(cidr) if validate(&server.config, cidr).is_ok() => {
                    answer(server, cidr, now, data, &mut buf)
                }
                _ => None,
            }
        };
        let Some((len, dest)) = answer else {
            continue;
        };
        let to = match dest {
            Dest::Broadcast => Ipv4Address::BROADCAST,
            Dest::Unicast(a) => a,
            Dest::UnicastTo(a, mac) => {
                crate::neighbor_guard::fill_neighbor(iface, sockets, ts, a.into(), mac);
                a
            }
        };
        let meta = udp::UdpMetadata {
            endpoint: IpEndpoint::new(IpAddress::Ipv4(to), DHCP_CLIENT_PORT),
            local_address: cidr.map(|c| IpAddress::Ipv4(c.address())),
            meta: Default::default(),
        };
        let socket = sockets.get_mut::<udp::Socket>(handle);
        if socket.send_slice(&buf[..len], meta).is_err() {
            debug!("DHCP server: no room for a reply");
        }
    }
    true
}

/// Parse a client's message, update the table, and write the reply.
fn answer(
    server: &mut Server,
    cidr: Ipv4Cidr,
    now: Instant,
    data: &[u8],
    buf: &mut [u8; MAX_REPLY],
) -> Option<(usize, Dest)> {
    let packet = DhcpPacket::new_checked(data).ok()?;
    let req = DhcpRepr::parse(&packet).ok()?;
    if !req.relay_agent_ip.is_unspecified() {
        return None;
    }
    let pool = Pool::new(&server.config, cidr);
    let reply = server
        .table
        .handle(now, &pool, server.config.lease_duration, &req)?;
    debug!(
        "DHCP server: {:?} from {} -> {:?} {}",
        req.message_type, req.client_hardware_address, reply.message_type, reply.your_ip
    );
    let len = emit(&server.config, &pool, &req, &reply, buf)?;
    Some((len, reply.dest))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn pool() -> Pool {
        let cidr = Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, 1), 24);
        Pool::new(
            &DhcpServerConfig::new(
                Ipv4Address::new(192, 0, 2, 1),
                Ipv4Address::new(192, 0, 2, 12),
            ),
            cidr,
        )
    }

    fn request(t: DhcpMessageType, n: u8) -> DhcpRepr<'static> {
        DhcpRepr {
            message_type: t,
            transaction_id: u32::from(n),
            secs: 0,
            client_hardware_address: EthernetAddress([2, 0, 0, 0, 0, n]),
            client_ip: Ipv4Address::UNSPECIFIED,
            your_ip: Ipv4Address::UNSPECIFIED,
            server_ip: Ipv4Address::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Address::UNSPECIFIED,
            broadcast: false,
            requested_ip: None,
            client_identifier: None,
            server_identifier: None,
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        }
    }

    fn offer() -> Reply {
        Reply {
            message_type: DhcpMessageType::Offer,
            your_ip: Ipv4Address::new(192, 0, 2, 2),
            lease: true,
            options: true,
            dest: Dest::Broadcast,
        }
    }

    /// Random message sequences from 40 clients against an 11-address pool (the server's own
    /// address is in it) and a 16-entry table: each address is in at most one entry, every
    /// entry's address is in the pool, a client has at most one entry besides declines, and
    /// a client's ACK always names the address it holds in the table (so no two clients are
    /// acknowledged the same address at once).
    #[test]
    fn random_traffic_keeps_the_table_consistent() {
        let pool = pool();
        let lease = Duration::from_secs(100);
        let mut table = Table::new();
        let mut now = Instant::from_secs(1);
        let mut x: u32 = 0x1234_5678;
        let mut rand = move |n: u32| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x % n
        };
        let types = [
            DhcpMessageType::Discover,
            DhcpMessageType::Request,
            DhcpMessageType::Release,
            DhcpMessageType::Decline,
            DhcpMessageType::Inform,
        ];
        let mut acks = 0;
        for _ in 0..20_000 {
            now += Duration::from_millis(u64::from(rand(3000)));
            let n = rand(40) as u8;
            let mut req = request(types[rand(5) as usize], n);
            let a = Ipv4Address::new(192, 0, 2, rand(16) as u8);
            match rand(4) {
                0 => req.requested_ip = Some(a),
                1 => req.client_ip = a,
                2 => {
                    req.requested_ip = Some(a);
                    req.server_identifier = Some(if rand(2) == 0 {
                        pool.server
                    } else {
                        Ipv4Address::new(192, 0, 2, 254)
                    });
                }
                _ => {}
            }
            let reply = table.handle(now, &pool, lease, &req);
            let entries: std::vec::Vec<DhcpLease> =
                table.entries.iter().flatten().copied().collect();
            for (i, e) in entries.iter().enumerate() {
                assert!(pool.contains(e.address), "{e:?} outside the pool");
                assert!(
                    e.state == LeaseState::Declined
                        || entries[i + 1..].iter().all(|o| {
                            o.hardware_address != e.hardware_address
                                || o.state == LeaseState::Declined
                        }),
                    "two entries for {:?}",
                    e.hardware_address
                );
                assert!(
                    entries[i + 1..].iter().all(|o| o.address != e.address),
                    "{:?} twice",
                    e.address
                );
            }
            if let Some(r) = reply
                && r.message_type == DhcpMessageType::Ack
                && r.lease
            {
                acks += 1;
                let l = entries
                    .iter()
                    .find(|l| {
                        l.hardware_address == req.client_hardware_address
                            && l.state != LeaseState::Declined
                    })
                    .expect("an ACKed client has an entry");
                assert_eq!(l.address, r.your_ip);
                assert_eq!(l.state, LeaseState::Bound);
                assert_eq!(l.expires_at, now + lease);
            }
            if let Some(r) = reply
                && r.message_type == DhcpMessageType::Offer
            {
                assert!(pool.contains(r.your_ip));
            }
        }
        assert!(
            acks > 100,
            "only {acks} ACKs: the sequence is not exercising much"
        );
    }

    #[test]
    fn t1_and_t2_and_the_minimum_length() {
        let pool = pool();
        let mut config = DhcpServerConfig::new(pool.start, pool.end);
        config.lease_duration = Duration::from_secs(1001);
        let req = request(DhcpMessageType::Discover, 1);
        let reply = offer();
        let mut buf = [0u8; MAX_REPLY];
        let len = emit(&config, &pool, &req, &reply, &mut buf).unwrap();
        assert_eq!(len, MIN_REPLY);
        let packet = DhcpPacket::new_checked(&buf[..len]).unwrap();
        let find = |k: u8| {
            packet
                .options()
                .find(|o| o.kind == k)
                .map(|o| o.data.to_vec())
        };
        assert_eq!(find(51), Some(1001u32.to_be_bytes().to_vec()));
        assert_eq!(find(58), Some(500u32.to_be_bytes().to_vec()));
        assert_eq!(find(59), Some(875u32.to_be_bytes().to_vec()));
        assert_eq!(find(54), Some(std::vec![192, 0, 2, 1]));
    }

    #[test]
    fn the_longest_reply_fits_576_bytes() {
        static BIG: [DhcpOption<'static>; 2] = [
            DhcpOption {
                kind: 224,
                data: &[7; 240],
            },
            DhcpOption {
                kind: 225,
                data: &[7; 5],
            },
        ];
        let pool = pool();
        let mut config = DhcpServerConfig::new(pool.start, pool.end);
        config.gateway = Some(pool.server);
        config.dns_servers = Vec::from_slice(&[pool.server; 3]).unwrap();
        config.extra_options = &BIG;
        let mut extra = reply_len(&config, 0);
        assert_eq!(validate(&config, pool.cidr), Ok(()));
        let req = request(DhcpMessageType::Discover, 1);
        let reply = offer();
        let mut buf = [0u8; MAX_REPLY];
        let len = emit(&config, &pool, &req, &reply, &mut buf).unwrap();
        extra += 2 + 240 + 2 + 5;
        assert_eq!(len, extra);
        assert!(len <= MAX_REPLY);
    }
}
