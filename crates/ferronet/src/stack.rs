//! The stack handle, its resources and the state shared between the handle and the runner.

use core::cell::RefCell;
use core::mem::MaybeUninit;

use embassy_sync::waitqueue::WakerRegistration;
use smoltcp::iface::{Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::Medium;
use smoltcp::socket::AnySocket;
#[cfg(feature = "proto-ipv6")]
use smoltcp::wire::Ipv6Cidr;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

#[cfg(feature = "proto-ipv4")]
use crate::config::{ConfigV4, StaticConfigV4};
#[cfg(feature = "proto-ipv6")]
use crate::config::{ConfigV6, StaticConfigV6};
use crate::stats::CounterStore;
use crate::waitq::{WaitFor, WaitQueue};

/// First port of the ephemeral range (RFC 6335 dynamic ports).
#[cfg_attr(not(any(feature = "tcp", feature = "udp")), allow(dead_code))]
pub(crate) const EPHEMERAL_PORT_MIN: u16 = 49152;
/// Number of ports in the ephemeral range (49152..=65535).
#[cfg_attr(not(any(feature = "tcp", feature = "udp")), allow(dead_code))]
const EPHEMERAL_PORT_COUNT: u32 = 65536 - EPHEMERAL_PORT_MIN as u32;

/// Memory for a network stack: `SOCK` socket slots and the stack's own state.
///
/// Every socket ([`TcpSocket`](crate::tcp::TcpSocket), [`UdpSocket`](crate::udp::UdpSocket))
/// takes one slot while it exists. Creating a socket when every slot is taken fails with
/// [`SocketTableFull`] (`try_new`) or panics with a message that names this type (`new`).
///
/// Usually placed in a `static` (for example with `static_cell`):
///
/// ```
/// static mut RESOURCES: ferronet::StackResources<4> = ferronet::StackResources::new();
/// ```
pub struct StackResources<const SOCK: usize> {
    sockets: MaybeUninit<[SocketStorage<'static>; SOCK]>,
    slots: MaybeUninit<[SlotMeta; SOCK]>,
    shared: MaybeUninit<Shared>,
    #[cfg(feature = "dns")]
    queries: MaybeUninit<[Option<smoltcp::socket::dns::DnsQuery>; crate::dns::MAX_QUERIES]>,
    #[cfg(feature = "dhcpv4-hostname")]
    hostname: MaybeUninit<HostnameStore>,
    #[cfg(feature = "mdns-responder")]
    mdns: MaybeUninit<crate::mdns_responder::Storage>,
    #[cfg(feature = "dhcpv4-server")]
    dhcp_server: MaybeUninit<crate::dhcp_server::Buffers>,
}

/// Where the DHCP hostname option and its bytes live while the DHCP socket refers to them.
#[cfg(feature = "dhcpv4-hostname")]
pub(crate) struct HostnameStore {
    data: [u8; crate::config::MAX_HOSTNAME_LEN],
    option: MaybeUninit<smoltcp::wire::DhcpOption<'static>>,
}

impl<const SOCK: usize> StackResources<SOCK> {
    /// Create a new, empty set of stack resources.
    pub const fn new() -> Self {
        Self {
            sockets: MaybeUninit::uninit(),
            slots: MaybeUninit::uninit(),
            shared: MaybeUninit::uninit(),
            #[cfg(feature = "dns")]
            queries: MaybeUninit::uninit(),
            #[cfg(feature = "dhcpv4-hostname")]
            hostname: MaybeUninit::uninit(),
            #[cfg(feature = "mdns-responder")]
            mdns: MaybeUninit::uninit(),
            #[cfg(feature = "dhcpv4-server")]
            dhcp_server: MaybeUninit::uninit(),
        }
    }
}

impl<const SOCK: usize> Default for StackResources<SOCK> {
    fn default() -> Self {
        Self::new()
    }
}

/// The socket table is full: every slot of the [`StackResources`] is taken.
///
/// Returned by the `try_new` constructors of the socket types. Make `N` in
/// `StackResources<N>` larger (one slot per socket that exists at the same time), or drop a
/// socket first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SocketTableFull {
    /// How many slots the stack has (the `N` of `StackResources<N>`).
    pub capacity: usize,
}

impl core::fmt::Display for SocketTableFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "socket table full: all {} slots of StackResources<{}> are in use; make StackResources larger",
            self.capacity, self.capacity
        )
    }
}

impl core::error::Error for SocketTableFull {}

/// What the stack remembers about one socket slot beside smoltcp's socket: a few flags in one
/// byte. The slot of a socket is the index of its handle (see [`slot_of`]); whether the slot
/// holds a socket is smoltcp's to know.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "tcp"), allow(dead_code))]
pub(crate) struct SlotMeta {
    flags: u8,
    /// The interface lost the connection's local address (set by the configuration change
    /// that removed it; smoltcp then drops the connection without a word).
    #[cfg(feature = "tcp")]
    pub(crate) address_lost: bool,
    /// A keep-alive interval held back from smoltcp until it is due.
    #[cfg(feature = "tcp")]
    pub(crate) keep_alive: crate::tcp::keep_alive::KeepAliveHold,
}

/// A TCP socket with a timeout whose connection is being watched by the runner, so that a
/// close caused by the timeout is reported as a timeout and not as a reset.
const WATCH_TIMEOUT: u8 = 1 << 0;
/// Scratch flag for the runner: the socket was open before the egress pass.
const OPEN_BEFORE_EGRESS: u8 = 1 << 1;
/// Set once a connect or accept started on this socket.
const USED: u8 = 1 << 2;
/// The user closed the send half (`close`).
const CLOSED: u8 = 1 << 3;
/// The user aborted the connection (`abort`).
const ABORTED: u8 = 1 << 4;
/// The connection ended because its timeout expired.
const TIMED_OUT: u8 = 1 << 5;
/// The timeout closed the connection with data still unacknowledged.
const DATA_LOST: u8 = 1 << 6;
/// The connect timeout was put in place by `connect` (no user timeout was set).
const CONNECT_TIMEOUT: u8 = 1 << 7;

/// A getter for each flag, and a setter where one is named (`get / set = FLAG;`).
macro_rules! slot_flag {
    ($($get:ident $(/ $set:ident)? = $bit:ident;)*) => {
        #[cfg_attr(not(feature = "tcp"), allow(dead_code))]
        impl SlotMeta {
            $(
                #[doc = concat!("Whether [`", stringify!($bit), "`] is set.")]
                #[inline]
                pub(crate) fn $get(&self) -> bool {
                    self.flags & $bit != 0
                }

                $(slot_flag!(@set $set = $bit);)?
            )*
        }
    };
    (@set $set:ident = $bit:ident) => {
        #[doc = concat!("Set or clear [`", stringify!($bit), "`].")]
        #[inline]
        pub(crate) fn $set(&mut self, on: bool) {
            if on {
                self.flags |= $bit;
            } else {
                self.flags &= !$bit;
            }
        }
    };
}

slot_flag! {
    watch_timeout / set_watch_timeout = WATCH_TIMEOUT;
    open_before_egress / set_open_before_egress = OPEN_BEFORE_EGRESS;
    used = USED;
    closed / set_closed = CLOSED;
    aborted / set_aborted = ABORTED;
    timed_out / set_timed_out = TIMED_OUT;
    data_lost / set_data_lost = DATA_LOST;
    connect_timeout / set_connect_timeout = CONNECT_TIMEOUT;
}

impl SlotMeta {
    const EMPTY: Self = Self {
        flags: 0,
        #[cfg(feature = "tcp")]
        address_lost: false,
        #[cfg(feature = "tcp")]
        keep_alive: crate::tcp::keep_alive::KeepAliveHold::NONE,
    };

    /// A connect or accept starts: mark the slot used and forget how the last connection
    /// ended (close, abort, timeout, lost data).
    #[cfg(feature = "tcp")]
    pub(crate) fn begin_connection(&mut self) {
        self.flags = (self.flags & !(CLOSED | ABORTED | TIMED_OUT | DATA_LOST)) | USED;
        self.address_lost = false;
    }
}

/// The slot (index in the socket table) of the socket with this handle.
///
/// smoltcp's `SocketHandle` is the index of the socket's storage, but it keeps the number
/// private. Its derived `Hash` writes exactly that number, so a hasher that keeps the last
/// `usize` written recovers it in safe code, at no cost once inlined. This saves a handle per
/// slot and a slot index per socket object. `slot_of_matches_smoltcp` pins the behaviour, and
/// [`Inner::add_socket`] checks every new handle against the slot it expects.
#[inline]
pub(crate) fn slot_of(handle: SocketHandle) -> usize {
    struct Index(usize);
    impl core::hash::Hasher for Index {
        fn finish(&self) -> u64 {
            self.0 as u64
        }
        fn write(&mut self, _bytes: &[u8]) {}
        fn write_usize(&mut self, i: usize) {
            self.0 = i;
        }
    }
    let mut index = Index(usize::MAX);
    core::hash::Hash::hash(&handle, &mut index);
    index.0
}

/// Erase the lifetime of a buffer handed to a socket, so it can go into the stack's
/// `SocketSet<'static>`.
///
/// # Safety
///
/// The caller must remove the smoltcp socket holding the buffer from the socket set before
/// `'a` ends (the socket types do so when they are dropped, and drop the smoltcp socket at
/// once when it could not be added), so the set never touches the buffer after `'a`.
#[cfg(any(feature = "tcp", feature = "udp", feature = "raw", feature = "icmp"))]
pub(crate) unsafe fn erase_lifetime<'a, T>(buffer: &'a mut [T]) -> &'static mut [T] {
    // SAFETY: only the lifetime changes; the caller guarantees the buffer is not used after
    // 'a (see above).
    unsafe { core::mem::transmute::<&'a mut [T], &'static mut [T]>(buffer) }
}

/// State shared by the [`Stack`] handle, the sockets and the [`Runner`](crate::Runner).
pub(crate) struct Shared {
    pub(crate) inner: RefCell<Inner>,
    /// Tasks waiting for link or configuration changes.
    pub(crate) state_waiters: WaitQueue,
    /// Tasks waiting for a free DNS query slot.
    #[cfg(feature = "dns")]
    pub(crate) dns_waiters: WaitQueue,
    /// Tasks waiting in `TcpListener::accept`.
    #[cfg(feature = "tcp-listener")]
    pub(crate) listener_waiters: WaitQueue,
}

pub(crate) struct Inner {
    pub(crate) sockets: SocketSet<'static>,
    pub(crate) iface: Interface,
    pub(crate) slots: &'static mut [SlotMeta],
    /// Number of slots with `watch_timeout` set.
    pub(crate) watched: u16,
    /// Number of slots holding a keep-alive interval (see `tcp::keep_alive`).
    #[cfg(feature = "tcp")]
    pub(crate) keep_alive_held: u16,
    /// The runner's waker: woken when a handle changed something the runner must act on.
    pub(crate) runner_waker: WakerRegistration,
    /// A multicast group was joined at some point: the interface then has report timers that
    /// smoltcp's `poll_at` does not announce.
    #[cfg(feature = "multicast")]
    pub(crate) multicast_used: bool,
    /// The interface has IP medium (smoltcp's `Interface::hardware_addr` panics then).
    #[cfg(feature = "medium-ip")]
    ip_medium: bool,
    pub(crate) link_up: bool,
    /// A socket operation (or a configuration change) woke the runner since its last poll.
    pub(crate) socket_activity: bool,
    /// The driver reports an address of another medium, which is ignored (warned about once).
    pub(crate) foreign_hw: bool,
    /// Neighbors that never answer (see `neighbor_guard`).
    #[cfg(feature = "medium-ethernet")]
    pub(crate) neighbor_guard: crate::neighbor_guard::NeighborGuard,
    /// TCP listeners and their backlogs of held SYNs.
    #[cfg(feature = "tcp-listener")]
    pub(crate) listeners: crate::tcp::listener::Table,
    /// What the connections last acknowledged, to check resets against (see `rst_guard`).
    #[cfg(feature = "tcp")]
    pub(crate) rst_guard: crate::rst_guard::RstGuard,
    #[cfg(feature = "proto-ipv4")]
    pub(crate) static_v4: Option<StaticConfigV4>,
    #[cfg(feature = "proto-ipv6")]
    pub(crate) static_v6: Option<StaticConfigV6>,
    #[cfg_attr(not(any(feature = "tcp", feature = "udp")), allow(dead_code))]
    port_rng: u16,
    /// The IP MTU smoltcp was given (the driver's, less the Ethernet header): it limits the
    /// size of sent packets (see `mtu`).
    #[cfg_attr(
        not(any(feature = "udp", feature = "icmp", feature = "raw")),
        allow(dead_code)
    )]
    pub(crate) ip_mtu: u16,
    pub(crate) counters: CounterStore,
    /// The DHCP client socket, while `dhcp_on` (IPv4 configured by DHCP); see
    /// [`Inner::dhcp_socket`]. Two fields rather than an `Option`, which would take twice the
    /// room of the handle.
    #[cfg(feature = "dhcpv4")]
    dhcp_handle: SocketHandle,
    #[cfg(feature = "dhcpv4")]
    dhcp_on: bool,
    /// After a link-up with a lease held: the lease is kept while the DHCP client asks again,
    /// until this time (embassy-time milliseconds, wrapping; 0: not waiting). See
    /// [`Inner::dhcp_link_changed`].
    #[cfg(feature = "dhcpv4")]
    dhcp_reconfirm_until: u32,
    #[cfg(feature = "dhcpv4-hostname")]
    hostname: *mut HostnameStore,
    /// IPv6 is configured by SLAAC.
    #[cfg(feature = "slaac")]
    pub(crate) slaac: bool,
    /// The mDNS responder (see `mdns_responder`).
    #[cfg(feature = "mdns-responder")]
    pub(crate) mdns: crate::mdns_responder::Responder,
    /// The DHCPv4 server.
    #[cfg(feature = "dhcpv4-server")]
    pub(crate) dhcp_server: crate::dhcp_server::Server,
    /// smoltcp's SLAAC is on: it was asked for at creation, and smoltcp then solicits routers
    /// from the link-local address (and panics without one) whatever the configuration is now.
    #[cfg(feature = "slaac")]
    pub(crate) slaac_iface: bool,
    /// The interface's addresses, for the runner's check of received sources (refreshed
    /// where they change: see [`SourceFilter`](crate::ingress::SourceFilter)).
    pub(crate) source_filter: crate::ingress::SourceFilter,
}

/// How long a DHCP lease held when the link comes back is kept while the DHCP client asks the
/// server again (six DISCOVERs at smoltcp's default retry interval of 10 s; RFC 2131 3.7 lets
/// a client keep using an unexpired lease meanwhile). Checked when the DHCP client wakes the stack,
/// so it may take up to its retry interval longer.
#[cfg(feature = "dhcpv4")]
pub const DHCP_RECONFIRM_TIMEOUT: embassy_time::Duration = embassy_time::Duration::from_secs(60);

/// Network stack handle.
///
/// Use it to create sockets and to read or change the configuration. It is `Copy`, so pass it
/// by value. It is neither `Send` nor `Sync`: the stack, its runner and its sockets live on one
/// executor (one thread), as with embassy-net.
#[derive(Copy, Clone)]
pub struct Stack<'d> {
    pub(crate) shared: &'d Shared,
}

fn _assert_covariant<'a, 'b: 'a>(x: Stack<'b>) -> Stack<'a> {
    x
}

/// Errors from [`try_new`](crate::try_new).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum NewStackError {
    /// The driver's medium (Ethernet, IP or IEEE 802.15.4) is not enabled by a ferronet cargo
    /// feature (`medium-ethernet`, `medium-ip`, `medium-ieee802154`).
    UnsupportedMedium(embassy_net_driver::HardwareAddress),
    /// `StackResources<N>` has no slot left for the stack's own sockets (one for DNS with the
    /// `dns` feature, one for the DHCP client with DHCP configured).
    SocketTableFull(SocketTableFull),
}

impl core::fmt::Display for NewStackError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnsupportedMedium(addr) => write!(
                f,
                "the driver's medium ({addr:?}) is not enabled: enable the matching medium-* feature of ferronet"
            ),
            Self::SocketTableFull(e) => write!(f, "{e} (DNS and DHCP take one slot each)"),
        }
    }
}

impl core::error::Error for NewStackError {}

pub(crate) fn to_smoltcp_hardware_address(
    addr: embassy_net_driver::HardwareAddress,
) -> Result<(HardwareAddress, Medium), NewStackError> {
    match addr {
        #[cfg(feature = "medium-ethernet")]
        embassy_net_driver::HardwareAddress::Ethernet(eth) => Ok((
            HardwareAddress::Ethernet(smoltcp::wire::EthernetAddress(eth)),
            Medium::Ethernet,
        )),
        #[cfg(feature = "medium-ieee802154")]
        embassy_net_driver::HardwareAddress::Ieee802154(ieee) => Ok((
            HardwareAddress::Ieee802154(smoltcp::wire::Ieee802154Address::Extended(ieee)),
            Medium::Ieee802154,
        )),
        #[cfg(feature = "medium-ip")]
        embassy_net_driver::HardwareAddress::Ip => Ok((HardwareAddress::Ip, Medium::Ip)),
        #[allow(unreachable_patterns)]
        other => Err(NewStackError::UnsupportedMedium(other)),
    }
}

/// The smoltcp address of `addr`, or `None` if its IP version is not enabled.
#[cfg(any(feature = "tcp", feature = "udp", feature = "icmp"))]
pub(crate) fn to_ip_address(addr: core::net::IpAddr) -> Option<IpAddress> {
    match addr {
        #[cfg(feature = "proto-ipv4")]
        core::net::IpAddr::V4(a) => Some(IpAddress::Ipv4(a)),
        #[cfg(feature = "proto-ipv6")]
        core::net::IpAddr::V6(a) => Some(IpAddress::Ipv6(a)),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The medium of an interface with this hardware address.
pub(crate) fn medium_of(addr: &HardwareAddress) -> Medium {
    match addr {
        #[cfg(feature = "medium-ethernet")]
        HardwareAddress::Ethernet(_) => Medium::Ethernet,
        #[cfg(feature = "medium-ieee802154")]
        HardwareAddress::Ieee802154(_) => Medium::Ieee802154,
        #[cfg(feature = "medium-ip")]
        HardwareAddress::Ip => Medium::Ip,
    }
}

/// Build the shared state inside `resources`.
pub(crate) fn init<'d, const SOCK: usize>(
    resources: &'d mut StackResources<SOCK>,
    iface: Interface,
    #[cfg_attr(not(feature = "medium-ip"), allow(unused_variables))] medium: Medium,
    ip_mtu: u16,
    seed: u64,
) -> Result<&'d Shared, NewStackError> {
    let storage: &'d mut [SocketStorage<'static>] =
        resources.sockets.write([SocketStorage::EMPTY; SOCK]);
    let slots: &'d mut [SlotMeta] = resources.slots.write([SlotMeta::EMPTY; SOCK]);
    // SAFETY: the socket storage and slot table live in `resources`, which is borrowed for
    // 'd, and they are only reached through the returned `&'d Shared` (via `Stack<'d>` and
    // `Runner<'d, _>`), so nothing uses them after 'd. The lifetime is erased only because the
    // shared state cannot name 'd without making `Stack` invariant. They are never dropped
    // (they sit in `MaybeUninit`), so no destructor sees the erased lifetime either.
    let storage: &'static mut [SocketStorage<'static>] = unsafe { core::mem::transmute(storage) };
    // SAFETY: as above.
    let slots: &'static mut [SlotMeta] = unsafe { core::mem::transmute(slots) };

    #[cfg(feature = "dns")]
    let queries: &'d mut [Option<smoltcp::socket::dns::DnsQuery>] = resources
        .queries
        .write([const { None }; crate::dns::MAX_QUERIES]);
    // SAFETY: as above: the query slots live in `resources` for 'd and are only used by the
    // DNS socket inside the shared state.
    #[cfg(feature = "dns")]
    let queries: &'static mut [Option<smoltcp::socket::dns::DnsQuery>] =
        unsafe { core::mem::transmute(queries) };
    #[cfg(feature = "dhcpv4-server")]
    let dhcp_server_buffers: *mut crate::dhcp_server::Buffers = resources
        .dhcp_server
        .write(crate::dhcp_server::Buffers::new());
    #[cfg(feature = "dhcpv4-hostname")]
    let hostname: *mut HostnameStore = resources.hostname.write(HostnameStore {
        data: [0; crate::config::MAX_HOSTNAME_LEN],
        option: MaybeUninit::uninit(),
    });

    #[cfg(feature = "mdns-responder")]
    let mdns: *mut crate::mdns_responder::Storage =
        resources.mdns.write(crate::mdns_responder::Storage::new());

    #[allow(unused_mut)]
    let mut sockets = SocketSet::new(storage);
    #[cfg(feature = "dns")]
    {
        if SOCK == 0 {
            return Err(NewStackError::SocketTableFull(SocketTableFull {
                capacity: SOCK,
            }));
        }
        let h = sockets.add(smoltcp::socket::dns::Socket::new(&[], queries));
        debug_assert!(h == Inner::dns_socket());
    }

    let inner = Inner {
        sockets,
        iface,
        slots,
        watched: 0,
        #[cfg(feature = "tcp")]
        keep_alive_held: 0,
        #[cfg(feature = "medium-ethernet")]
        neighbor_guard: crate::neighbor_guard::NeighborGuard::new(),
        #[cfg(feature = "tcp-listener")]
        listeners: crate::tcp::listener::Table::new(seed, ip_mtu),
        #[cfg(feature = "tcp")]
        rst_guard: crate::rst_guard::RstGuard::new(),
        runner_waker: WakerRegistration::new(),
        #[cfg(feature = "multicast")]
        multicast_used: false,
        #[cfg(feature = "medium-ip")]
        ip_medium: medium == Medium::Ip,
        link_up: false,
        socket_activity: false,
        foreign_hw: false,
        #[cfg(feature = "proto-ipv4")]
        static_v4: None,
        #[cfg(feature = "proto-ipv6")]
        static_v6: None,
        // Never zero, or xorshift would stay at zero.
        port_rng: {
            let m = mix_seed(seed);
            (m ^ (m >> 16)) as u16 | 1
        },
        ip_mtu,
        counters: CounterStore::ZERO,
        #[cfg(feature = "dhcpv4")]
        dhcp_handle: SocketHandle::default(),
        #[cfg(feature = "dhcpv4")]
        dhcp_on: false,
        #[cfg(feature = "dhcpv4")]
        dhcp_reconfirm_until: 0,
        #[cfg(feature = "dhcpv4-hostname")]
        hostname,
        #[cfg(feature = "slaac")]
        slaac: false,
        #[cfg(feature = "mdns-responder")]
        mdns: crate::mdns_responder::Responder::new(mdns, seed),
        #[cfg(feature = "dhcpv4-server")]
        dhcp_server: crate::dhcp_server::Server::new(dhcp_server_buffers),
        #[cfg(feature = "slaac")]
        slaac_iface: false,
        source_filter: crate::ingress::SourceFilter::new(crate::ingress::Framing::Unchecked, &[]),
    };
    Ok(resources.shared.write(Shared {
        inner: RefCell::new(inner),
        state_waiters: WaitQueue::new(),
        #[cfg(feature = "dns")]
        dns_waiters: WaitQueue::new(),
        #[cfg(feature = "tcp-listener")]
        listener_waiters: WaitQueue::new(),
    }))
}

/// Fold the 64-bit seed into 32 well-mixed bits (MurmurHash3's finaliser), so that seeds
/// that differ in a few bits give unrelated port sequences.
fn mix_seed(seed: u64) -> u32 {
    let mut x = (seed ^ (seed >> 32)) as u32;
    x ^= x >> 16;
    x = x.wrapping_mul(0x85EB_CA6B);
    x ^= x >> 13;
    x = x.wrapping_mul(0xC2B2_AE35);
    x ^ (x >> 16)
}

impl Inner {
    /// Wake the runner so that it polls the interface soon. Not inlined: it is called from
    /// every socket operation, and one copy is smaller than many.
    #[inline(never)]
    pub(crate) fn wake_runner(&mut self) {
        self.socket_activity = true;
        self.runner_waker.wake();
    }

    /// The interface's hardware address.
    pub(crate) fn hardware_address(&self) -> HardwareAddress {
        #[cfg(feature = "medium-ip")]
        if self.ip_medium {
            return HardwareAddress::Ip;
        }
        #[cfg(any(feature = "medium-ethernet", feature = "medium-ieee802154"))]
        return self.iface.hardware_addr();
        #[cfg(not(any(feature = "medium-ethernet", feature = "medium-ieee802154")))]
        HardwareAddress::Ip
    }

    /// The DNS socket: the first socket the stack creates, so it always sits in slot 0.
    #[cfg(feature = "dns")]
    #[inline]
    pub(crate) fn dns_socket() -> SocketHandle {
        SocketHandle::default()
    }

    /// The static IPv4 address the DHCP server serves from: none while IPv4 is unconfigured
    /// or configured by the DHCP client.
    #[cfg(feature = "dhcpv4-server")]
    pub(crate) fn dhcp_server_cidr(&self) -> Option<smoltcp::wire::Ipv4Cidr> {
        #[cfg(feature = "dhcpv4")]
        if self.dhcp_on {
            return None;
        }
        self.static_v4.as_ref().map(|c| c.address)
    }

    /// The DHCP client socket, while IPv4 is configured by DHCP.
    #[cfg(feature = "dhcpv4")]
    #[inline]
    pub(crate) fn dhcp_socket(&self) -> Option<SocketHandle> {
        self.dhcp_on.then_some(self.dhcp_handle)
    }

    /// Put a socket in the table.
    ///
    /// A generic shell around [`Inner::add_any_socket`]: only the move into smoltcp's
    /// `Socket` enum is made per socket type.
    #[inline]
    pub(crate) fn add_socket<T: AnySocket<'static>>(
        &mut self,
        socket: T,
    ) -> Result<SocketHandle, SocketTableFull> {
        self.add_any_socket(socket.upcast())
    }

    /// Put a socket of any type in the table.
    #[inline(never)]
    fn add_any_socket(
        &mut self,
        socket: smoltcp::socket::Socket<'static>,
    ) -> Result<SocketHandle, SocketTableFull> {
        let capacity = self.slots.len();
        // smoltcp's `add` panics when the table is full.
        if self.sockets.iter().count() >= capacity {
            return Err(SocketTableFull { capacity });
        }
        let handle = self.sockets.add(socket);
        debug_assert!(slot_of(handle) < capacity);
        if let Some(meta) = self.slots.get_mut(slot_of(handle)) {
            *meta = SlotMeta::EMPTY;
        }
        Ok(handle)
    }

    /// The flags of the socket with this handle.
    #[cfg(feature = "tcp")]
    #[inline]
    pub(crate) fn slot(&mut self, handle: SocketHandle) -> &mut SlotMeta {
        &mut self.slots[slot_of(handle)]
    }

    /// Whether the socket with this handle is in the table.
    pub(crate) fn has_socket(&self, handle: SocketHandle) -> bool {
        self.sockets.iter().any(|(h, _)| h == handle)
    }

    /// Remove a socket from the table (nothing happens if it is not there: smoltcp's `remove`
    /// would panic).
    pub(crate) fn remove_socket(&mut self, handle: SocketHandle) {
        if !self.has_socket(handle) {
            return;
        }
        if let Some(meta) = self.slots.get_mut(slot_of(handle)) {
            if meta.watch_timeout() {
                self.watched -= 1;
            }
            #[cfg(feature = "tcp")]
            if meta.keep_alive.is_held() {
                self.keep_alive_held -= 1;
            }
            *meta = SlotMeta::EMPTY;
        }
        self.sockets.remove(handle);
    }

    /// Start or stop watching a TCP socket's timeout (see [`WATCH_TIMEOUT`]).
    #[cfg(feature = "tcp")]
    pub(crate) fn set_watch(&mut self, handle: SocketHandle, watch: bool) {
        if let Some(meta) = self.slots.get_mut(slot_of(handle))
            && meta.watch_timeout() != watch
        {
            meta.set_watch_timeout(watch);
            if watch {
                self.watched += 1;
            } else {
                self.watched -= 1;
            }
        }
    }

    /// Is `port` the local port of any TCP or UDP socket?
    #[cfg_attr(not(any(feature = "tcp", feature = "udp")), allow(dead_code))]
    #[allow(unused_variables)]
    fn port_in_use(&self, port: u16) -> bool {
        #[allow(unused_imports)]
        use smoltcp::socket::Socket;
        self.sockets.iter().any(|(_, s)| match s {
            #[cfg(feature = "tcp")]
            Socket::Tcp(t) => {
                t.listen_endpoint().port == port
                    || t.local_endpoint().is_some_and(|e| e.port == port)
            }
            #[cfg(feature = "udp")]
            Socket::Udp(u) => u.endpoint().port == port,
            #[allow(unreachable_patterns)]
            _ => false,
        })
    }

    #[cfg_attr(not(any(feature = "tcp", feature = "udp")), allow(dead_code))]
    /// Draw an ephemeral port (49152..=65535) from the seeded generator that no TCP or UDP
    /// socket uses. `None` only if every port of the range is taken.
    pub(crate) fn alloc_local_port(&mut self) -> Option<u16> {
        // xorshift16 (shifts 7, 9, 8: every non-zero state, period 65535)
        let mut x = self.port_rng;
        x ^= x << 7;
        x ^= x >> 9;
        x ^= x << 8;
        self.port_rng = x;
        let start = u32::from(x) % EPHEMERAL_PORT_COUNT;
        (0..EPHEMERAL_PORT_COUNT)
            .map(|i| EPHEMERAL_PORT_MIN + ((start + i) % EPHEMERAL_PORT_COUNT) as u16)
            .find(|&p| !self.port_in_use(p))
    }

    /// Is there a local address and a route for sending to `addr`?
    #[cfg_attr(not(any(feature = "tcp", feature = "udp")), allow(dead_code))]
    #[allow(irrefutable_let_patterns)]
    pub(crate) fn has_route(&self, addr: &IpAddress) -> bool {
        let addrs = self.iface.ip_addrs();
        match addr {
            #[cfg(feature = "proto-ipv4")]
            IpAddress::Ipv4(a) => {
                let mut have_v4 = false;
                for cidr in addrs {
                    if let IpCidr::Ipv4(c) = cidr {
                        have_v4 = true;
                        if c.contains_addr(a) {
                            return true;
                        }
                        if c.broadcast() == Some(*a) {
                            return true;
                        }
                    }
                }
                have_v4
                    && (a.is_broadcast()
                        || a.is_multicast()
                        || self.iface.routes().get_default_ipv4_route().is_some())
            }
            #[cfg(feature = "proto-ipv6")]
            IpAddress::Ipv6(a) => {
                let mut have_v6 = false;
                for cidr in addrs {
                    if let IpCidr::Ipv6(c) = cidr {
                        have_v6 = true;
                        if c.contains_addr(a) {
                            return true;
                        }
                    }
                }
                have_v6
                    && (a.is_multicast()
                        || Ipv6Cidr::LINK_LOCAL_PREFIX.contains_addr(a)
                        || self.iface.routes().get_default_ipv6_route().is_some())
            }
        }
    }

    /// Take a new IPv4 configuration (applied to the interface by [`Inner::apply_config`]).
    #[cfg(feature = "proto-ipv4")]
    pub(crate) fn set_config_v4(&mut self, config: ConfigV4) -> Result<(), SocketTableFull> {
        #[cfg(feature = "dhcpv4")]
        let mut dhcp = None;
        self.static_v4 = match config {
            ConfigV4::None => None,
            ConfigV4::Static(c) => Some(c),
            #[cfg(feature = "dhcpv4")]
            ConfigV4::Dhcp(c) => {
                dhcp = Some(c);
                None
            }
        };
        #[cfg(feature = "dhcpv4")]
        match dhcp {
            Some(c) => self.start_dhcp(c)?,
            None => {
                if let Some(h) = self.dhcp_socket() {
                    self.dhcp_on = false;
                    self.dhcp_reconfirm_until = 0;
                    self.remove_socket(h);
                }
            }
        }
        Ok(())
    }

    /// Create (or reconfigure) the DHCP client socket and restart discovery.
    #[cfg(feature = "dhcpv4")]
    fn start_dhcp(&mut self, c: crate::config::DhcpConfig) -> Result<(), SocketTableFull> {
        use smoltcp::socket::dhcpv4;
        let handle = match self.dhcp_socket() {
            Some(h) => h,
            None => {
                let h = self.add_socket(dhcpv4::Socket::new())?;
                self.dhcp_handle = h;
                self.dhcp_on = true;
                self.dhcp_reconfirm_until = 0;
                h
            }
        };
        let socket = self.sockets.get_mut::<dhcpv4::Socket>(handle);
        socket.set_ignore_naks(c.ignore_naks);
        socket.set_max_lease_duration(c.max_lease_duration.map(crate::time::duration_to_smoltcp));
        socket.set_ports(c.server_port, c.client_port);
        socket.set_retry_config(c.retry_config);
        socket.set_outgoing_options(&[]);
        #[cfg(feature = "dhcpv4-hostname")]
        if let Some(name) = c.hostname.as_ref().filter(|n| !n.is_empty()) {
            // SAFETY: `hostname` points into the `StackResources` that outlive this stack
            // ('d), it is only reached from here (under the `RefCell` borrow of `Inner`), and
            // the socket holds no reference into it: its options were just cleared above.
            let store = unsafe { &mut *self.hostname };
            let len = name.len().min(store.data.len());
            store.data[..len].copy_from_slice(&name.as_bytes()[..len]);
            // SAFETY: as above; the data lives as long as the store.
            let data: &'static [u8] =
                unsafe { core::slice::from_raw_parts(store.data.as_ptr(), len) };
            let option: &'static smoltcp::wire::DhcpOption<'static> = store
                .option
                .write(smoltcp::wire::DhcpOption { kind: 12, data });
            socket.set_outgoing_options(core::slice::from_ref(option));
        }
        socket.reset();
        Ok(())
    }

    #[cfg(feature = "proto-ipv6")]
    pub(crate) fn set_config_v6(&mut self, config: ConfigV6) {
        #[cfg(feature = "slaac")]
        {
            self.slaac = matches!(config, ConfigV6::Slaac);
        }
        self.static_v6 = match config {
            ConfigV6::None => None,
            ConfigV6::Static(c) => Some(c),
            #[cfg(feature = "slaac")]
            ConfigV6::Slaac => None,
        };
    }

    /// Push the current configuration into the interface: addresses, default routes.
    pub(crate) fn apply_config(&mut self) {
        let mut addrs: heapless::Vec<IpCidr, { smoltcp::config::IFACE_MAX_ADDR_COUNT }> =
            heapless::Vec::new();
        // With SLAAC the link-local address goes first: smoltcp sends router solicitations
        // from it (and panics if it is missing), so it must never be the one that does not fit.
        // It stays after a switch away from SLAAC: smoltcp's SLAAC cannot be turned off.
        #[cfg(feature = "slaac")]
        if (self.slaac || self.slaac_iface)
            && let Some(ll) = self.link_local_address()
        {
            let _ = addrs.push(ll);
        }
        #[cfg(feature = "proto-ipv4")]
        {
            if let Some(c) = &self.static_v4 {
                debug!("IPv4: up, address {}", c.address);
                if addrs.push(IpCidr::Ipv4(c.address)).is_err() {
                    warn!("address table full, IPv4 address not set (see IFACE_MAX_ADDR_COUNT)");
                }
                // A gateway that is not a unicast address (a DHCP server or a configuration
                // may name 0.0.0.0 or 255.255.255.255) would make smoltcp 0.14 panic when it
                // looks the gateway up in its neighbor cache: ignore it.
                match c.gateway {
                    Some(gw)
                        if !(gw.is_unspecified() || gw.is_broadcast() || gw.is_multicast()) =>
                    {
                        if self.iface.routes_mut().add_default_ipv4_route(gw).is_err() {
                            warn!("route table full, IPv4 default route not set");
                        }
                    }
                    Some(_) => {
                        warn!("IPv4 gateway is not a unicast address: no default route");
                        self.iface.routes_mut().remove_default_ipv4_route();
                    }
                    None => {
                        self.iface.routes_mut().remove_default_ipv4_route();
                    }
                }
            } else {
                debug!("IPv4: down");
                self.iface.routes_mut().remove_default_ipv4_route();
            }
        }
        #[cfg(feature = "proto-ipv6")]
        {
            if let Some(c) = &self.static_v6 {
                debug!("IPv6: up, address {}", c.address);
                if !addrs.contains(&IpCidr::Ipv6(c.address))
                    && addrs.push(IpCidr::Ipv6(c.address)).is_err()
                {
                    warn!("address table full, IPv6 address not set (see IFACE_MAX_ADDR_COUNT)");
                }
                // As for IPv4: a multicast or unspecified gateway is ignored.
                let gateway = c.gateway;
                self.remove_default_ipv6_routes();
                match gateway {
                    Some(gw) if gw.is_unspecified() || gw.is_multicast() => {
                        warn!("IPv6 gateway is not a unicast address: no default route");
                    }
                    Some(gw) if self.iface.routes_mut().add_default_ipv6_route(gw).is_err() => {
                        warn!("route table full, IPv6 default route not set");
                    }
                    _ => {}
                }
            } else {
                debug!("IPv6: down");
                self.remove_default_ipv6_routes();
            }
        }
        // Only touch the addresses when they change: smoltcp flushes its neighbor cache on
        // every update.
        if self.iface.ip_addrs() != addrs.as_slice() {
            #[cfg(feature = "tcp")]
            crate::tcp::mark_lost_addresses(&self.sockets, self.slots, &addrs);
            self.iface.update_ip_addrs(|a| *a = addrs);
            self.source_filter.set_addrs(self.iface.ip_addrs());
        }

        // DNS servers always follow the configuration, also when it has none.
        #[cfg(feature = "dns")]
        {
            let mut servers: heapless::Vec<IpAddress, { smoltcp::config::DNS_MAX_SERVER_COUNT }> =
                heapless::Vec::new();
            #[cfg(feature = "proto-ipv4")]
            if let Some(c) = &self.static_v4 {
                for s in &c.dns_servers {
                    let _ = servers.push(IpAddress::Ipv4(*s));
                }
            }
            #[cfg(feature = "proto-ipv6")]
            if let Some(c) = &self.static_v6 {
                for s in &c.dns_servers {
                    let _ = servers.push(IpAddress::Ipv6(*s));
                }
            }
            self.sockets
                .get_mut::<smoltcp::socket::dns::Socket>(Self::dns_socket())
                .update_servers(&servers);
        }
        self.wake_runner();
    }

    /// Removes every IPv6 default route, not only the first. smoltcp's SLAAC adds its own
    /// (via each router) beside the one a configuration sets, and smoltcp 0.14's
    /// `add_default_ipv6_route` and `remove_default_ipv6_route` touch only the first one. With
    /// two in the table, setting the first gateway moved it behind the other; `slaac_poll`
    /// then read the other one at the next poll of the same instant and reconfigured again,
    /// for ever (a busy loop found by fuzzing). Each turn removes one route of a bounded
    /// table, so the loop ends.
    #[cfg(feature = "proto-ipv6")]
    fn remove_default_ipv6_routes(&mut self) {
        while self
            .iface
            .routes_mut()
            .remove_default_ipv6_route()
            .is_some()
        {}
    }

    /// The IPv6 link-local address derived from the hardware address (fe80::/64 + EUI-64).
    #[cfg(feature = "slaac")]
    fn link_local_address(&self) -> Option<IpCidr> {
        let ll_prefix = Ipv6Cidr::new(Ipv6Cidr::LINK_LOCAL_PREFIX.address(), 64);
        Ipv6Cidr::from_link_prefix(&ll_prefix, self.hardware_address()).map(IpCidr::Ipv6)
    }

    /// The link went up or down. A lease survives a link-down (a pulled cable, a Wi-Fi
    /// reconnect), so that open connections survive a short outage, as with lwIP. On link-up
    /// the DHCP client starts afresh (one DISCOVER) to learn whether the lease still holds:
    /// the lease is kept meanwhile, replaced by what the server answers (usually the same
    /// address: nothing changes) or dropped after [`DHCP_RECONFIRM_TIMEOUT`] without an
    /// answer. A lease that expires while the link is down is dropped when it expires.
    /// Returns whether the configuration changed.
    #[cfg(feature = "dhcpv4")]
    pub(crate) fn dhcp_link_changed(&mut self) -> bool {
        let Some(h) = self.dhcp_socket() else {
            return false;
        };
        if !self.link_up {
            return false;
        }
        if self.static_v4.is_some() {
            let until = embassy_time::Instant::now() + DHCP_RECONFIRM_TIMEOUT;
            self.dhcp_reconfirm_until = (until.as_millis() as u32).max(1);
            info!("DHCP: link up, confirming the lease");
        }
        self.sockets
            .get_mut::<smoltcp::socket::dhcpv4::Socket>(h)
            .reset();
        false
    }

    /// Take the DHCP client's news. Returns whether the configuration changed.
    #[cfg(feature = "dhcpv4")]
    pub(crate) fn dhcp_poll(&mut self) -> bool {
        use smoltcp::socket::dhcpv4::Event;
        let Some(h) = self.dhcp_socket() else {
            return false;
        };
        match self
            .sockets
            .get_mut::<smoltcp::socket::dhcpv4::Socket>(h)
            .poll()
        {
            None => {
                let waited = self.dhcp_reconfirm_until != 0
                    && (embassy_time::Instant::now().as_millis() as u32)
                        .wrapping_sub(self.dhcp_reconfirm_until) as i32
                        >= 0;
                if waited {
                    info!("DHCP: no answer after the link came back, lease dropped");
                    self.dhcp_reconfirm_until = 0;
                    self.static_v4 = None;
                }
                waited
            }
            // The restart after a link-up withdraws the lease being confirmed: keep it.
            Some(Event::Deconfigured) if self.dhcp_reconfirm_until != 0 => false,
            Some(Event::Configured(c)) => {
                self.dhcp_reconfirm_until = 0;
                info!("DHCP: configured {}", c.address);
                let mut dns_servers = heapless::Vec::new();
                for s in c.dns_servers.iter().take(3) {
                    let _ = dns_servers.push(*s);
                }
                self.static_v4 = Some(StaticConfigV4 {
                    address: c.address,
                    gateway: c.router,
                    dns_servers,
                });
                true
            }
            Some(Event::Deconfigured) => {
                info!("DHCP: deconfigured");
                self.static_v4 = None;
                true
            }
        }
    }

    /// Follow SLAAC: when smoltcp updated the autoconfigured address or default route during
    /// this poll, take them into the IPv6 configuration. Returns whether it changed.
    #[cfg(feature = "slaac")]
    pub(crate) fn slaac_poll(&mut self, ts: smoltcp::time::Instant) -> bool {
        if !self.slaac || self.iface.slaac_updated_at() != ts {
            return false;
        }
        let address = self.iface.ip_addrs().iter().find_map(|a| match a {
            IpCidr::Ipv6(c) if !Ipv6Cidr::LINK_LOCAL_PREFIX.contains_addr(&c.address()) => Some(*c),
            _ => None,
        });
        let gateway =
            self.iface
                .routes()
                .get_default_ipv6_route()
                .and_then(|r| match r.via_router {
                    IpAddress::Ipv6(g) => Some(g),
                    #[allow(unreachable_patterns)]
                    _ => None,
                });
        let new = address.map(|address| StaticConfigV6 {
            address,
            gateway,
            dns_servers: heapless::Vec::new(),
        });
        if new == self.static_v6 {
            return false;
        }
        self.static_v6 = new;
        true
    }

    pub(crate) fn is_config_up(&self) -> bool {
        #[allow(unused_mut)]
        let mut up = false;
        #[cfg(feature = "proto-ipv4")]
        {
            up |= self.static_v4.is_some();
        }
        #[cfg(feature = "proto-ipv6")]
        {
            up |= self.static_v6.is_some();
        }
        up
    }
}

impl<'d> Stack<'d> {
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&Inner) -> R) -> R {
        f(&self.shared.inner.borrow())
    }

    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.shared.inner.borrow_mut())
    }

    /// The hardware address of the network interface.
    ///
    /// This follows the driver: if the driver reports a new address (for example after a
    /// Wi-Fi chip loaded its firmware), the runner picks it up on its next poll.
    pub fn hardware_address(&self) -> HardwareAddress {
        self.with(|i| i.hardware_address())
    }

    /// Whether the driver reports the link as up.
    pub fn is_link_up(&self) -> bool {
        self.with(|i| i.link_up)
    }

    /// Whether the stack has an IP configuration: a static one, or one obtained by DHCP or
    /// SLAAC.
    pub fn is_config_up(&self) -> bool {
        self.with(|i| i.is_config_up())
    }

    /// Wait until the link is up.
    ///
    /// Any number of tasks may wait at the same time; each is woken once per change.
    pub async fn wait_link_up(&self) {
        WaitFor::new(&self.shared.state_waiters, || self.is_link_up()).await
    }

    /// Wait until the link is down.
    pub async fn wait_link_down(&self) {
        WaitFor::new(&self.shared.state_waiters, || !self.is_link_up()).await
    }

    /// Wait until the stack has an IP configuration (see [`is_config_up`](Self::is_config_up)).
    ///
    /// The [`Runner`](crate::Runner) must be running. This may wait forever (for example if no
    /// DHCP server answers): use a timeout where that matters, for example with
    /// `embassy_time::with_timeout`.
    pub async fn wait_config_up(&self) {
        WaitFor::new(&self.shared.state_waiters, || self.is_config_up()).await
    }

    /// Wait until the stack has lost its IP configuration.
    pub async fn wait_config_down(&self) {
        WaitFor::new(&self.shared.state_waiters, || !self.is_config_up()).await
    }

    /// The current IPv4 configuration, or `None` while IPv4 is not configured (for DHCP: until
    /// a lease is obtained).
    #[cfg(feature = "proto-ipv4")]
    pub fn config_v4(&self) -> Option<StaticConfigV4> {
        self.with(|i| i.static_v4.clone())
    }

    /// The current IPv6 configuration, or `None` while IPv6 is not configured.
    #[cfg(feature = "proto-ipv6")]
    pub fn config_v6(&self) -> Option<StaticConfigV6> {
        self.with(|i| i.static_v6.clone())
    }

    /// Replace the IPv4 configuration. It takes effect at once: addresses and routes are
    /// updated and the runner is woken. TCP connections bound to an address that is no
    /// longer configured are reset.
    #[cfg(feature = "proto-ipv4")]
    pub fn set_config_v4(&self, config: ConfigV4) {
        self.with_mut(|i| {
            if let Err(e) = i.set_config_v4(config) {
                error!("set_config_v4: DHCP needs a socket slot: {}", e);
            }
            i.apply_config();
        });
        self.shared.state_waiters.wake_all();
    }

    /// Replace the IPv6 configuration. It takes effect at once, like
    /// [`set_config_v4`](Self::set_config_v4).
    ///
    /// A stack created with [`ConfigV6::Slaac`] keeps its link-local address under any later
    /// configuration: smoltcp's router solicitation cannot be turned off.
    #[cfg(feature = "proto-ipv6")]
    pub fn set_config_v6(&self, config: ConfigV6) {
        self.with_mut(|i| {
            i.set_config_v6(config);
            i.apply_config();
        });
        self.shared.state_waiters.wake_all();
    }

    /// Join a multicast group. The membership report (IGMP or MLD) goes out on the runner's
    /// next poll, which this wakes.
    #[cfg(feature = "multicast")]
    pub fn join_multicast_group(
        &self,
        addr: impl Into<IpAddress>,
    ) -> Result<(), smoltcp::iface::MulticastError> {
        self.with_mut(|i| {
            let r = i.iface.join_multicast_group(addr);
            i.multicast_used = true;
            i.wake_runner();
            r
        })
    }

    /// Leave a multicast group; the leave report goes out on the runner's next poll.
    #[cfg(feature = "multicast")]
    pub fn leave_multicast_group(
        &self,
        addr: impl Into<IpAddress>,
    ) -> Result<(), smoltcp::iface::MulticastError> {
        self.with_mut(|i| {
            let r = i.iface.leave_multicast_group(addr);
            i.wake_runner();
            r
        })
    }

    /// Whether the stack is a member of the multicast group.
    #[cfg(feature = "multicast")]
    pub fn has_multicast_group(&self, addr: impl Into<IpAddress>) -> bool {
        self.with(|i| i.iface.has_multicast_group(addr))
    }

    /// Start the DHCPv4 server (cargo feature `dhcpv4-server`; see
    /// [`dhcp_server`](crate::dhcp_server)), or give the running one a new configuration.
    ///
    /// The stack must have a static IPv4 address: it is the server's address, and its subnet
    /// is the one served. The server runs inside the [`Runner`](crate::Runner) and takes one
    /// slot of the [`StackResources`] (a UDP socket on port 67). A new configuration keeps
    /// the leases whose address is still in the pool.
    ///
    /// If the static address is later changed to one whose subnet does not hold the pool, the
    /// server answers nothing until it is started again with a pool that fits.
    #[cfg(feature = "dhcpv4-server")]
    pub fn start_dhcp_server(
        &self,
        config: crate::dhcp_server::DhcpServerConfig,
    ) -> Result<(), crate::dhcp_server::DhcpServerError> {
        self.with_mut(|i| {
            let cidr = i
                .dhcp_server_cidr()
                .ok_or(crate::dhcp_server::DhcpServerError::NoStaticAddress)?;
            crate::dhcp_server::start(i, config, cidr)
        })
    }

    /// Stop the DHCPv4 server and free its socket slot. The lease table is kept for the next
    /// [`start_dhcp_server`](Self::start_dhcp_server).
    #[cfg(feature = "dhcpv4-server")]
    pub fn stop_dhcp_server(&self) {
        self.with_mut(crate::dhcp_server::stop)
    }

    /// Whether the DHCPv4 server runs.
    #[cfg(feature = "dhcpv4-server")]
    pub fn is_dhcp_server_running(&self) -> bool {
        self.with(|i| i.dhcp_server.is_on())
    }

    /// A copy of the DHCPv4 server's lease table, with each entry's state as of now (offers
    /// and leases past their end show as [`LeaseState::Free`](crate::dhcp_server::LeaseState),
    /// declines past theirs are left out).
    #[cfg(feature = "dhcpv4-server")]
    pub fn dhcp_leases(
        &self,
    ) -> heapless::Vec<crate::dhcp_server::DhcpLease, { crate::dhcp_server::MAX_LEASES }> {
        self.with(|i| i.dhcp_server.leases(embassy_time::Instant::now()))
    }

    /// Remove the lease table entry for `address` (whatever its state) and return it: the
    /// address is free for anyone at once. A client that still uses it will be NAKed when it
    /// renews only if another client got the address meanwhile.
    #[cfg(feature = "dhcpv4-server")]
    pub fn remove_dhcp_lease(
        &self,
        address: smoltcp::wire::Ipv4Address,
    ) -> Option<crate::dhcp_server::DhcpLease> {
        self.with_mut(|i| i.dhcp_server.remove_lease(address))
    }

    /// The stack's counters (polls, frames in and out, ...); cargo feature `counters`.
    #[cfg(feature = "counters")]
    pub fn counters(&self) -> crate::Counters {
        self.with(|i| i.counters)
    }
}

#[cfg(all(test, feature = "udp"))]
mod tests {
    use super::*;
    use smoltcp::socket::udp;

    fn udp_socket() -> udp::Socket<'static> {
        udp::Socket::new(
            udp::PacketBuffer::new(&mut [][..], &mut [][..]),
            udp::PacketBuffer::new(&mut [][..], &mut [][..]),
        )
    }

    /// `slot_of` recovers the storage index smoltcp put each socket at, including a reused
    /// one (smoltcp takes the first free storage slot).
    #[test]
    fn slot_of_matches_smoltcp() {
        let mut storage = [
            SocketStorage::EMPTY,
            SocketStorage::EMPTY,
            SocketStorage::EMPTY,
        ];
        let mut set = SocketSet::new(&mut storage[..]);
        let handles: [SocketHandle; 3] = core::array::from_fn(|_| set.add(udp_socket()));
        for (i, h) in handles.iter().enumerate() {
            assert_eq!(slot_of(*h), i);
        }
        set.remove(handles[1]);
        let again = set.add(udp_socket());
        assert_eq!(again, handles[1]);
        assert_eq!(slot_of(again), 1);
        let from_iter: heapless::Vec<usize, 3> = set.iter().map(|(h, _)| slot_of(h)).collect();
        assert_eq!(from_iter.as_slice(), &[0, 1, 2]);
    }
}
