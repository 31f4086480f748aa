//! mDNS responder: answer for `hostname.local` and a few DNS-SD services (feature
//! `mdns-responder`; ferronet only, embassy-net has none).
//!
//! The device claims a host name on the local link and answers multicast DNS (RFC 6762)
//! queries for it: A for its IPv4 address, AAAA for its IPv6 addresses, on 224.0.0.251 and
//! ff02::fb port 5353. Up to [`MAX_SERVICES`] DNS-SD services (RFC 6763) registered by the
//! application are answered too (PTR, SRV and TXT records), so that `avahi-browse` or the
//! macOS/iOS service browsers find them. The [`Runner`](crate::Runner) does all the work: no
//! extra task, no allocation; names and records live in fixed buffers inside the
//! [`StackResources`](crate::StackResources).
//!
//! ```no_run
//! # async fn f(stack: ferronet::Stack<'_>) {
//! use ferronet::mdns_responder::{MdnsResponder, Service};
//!
//! let mdns = MdnsResponder::new(stack);
//! mdns.add_service(&Service {
//!     instance: "Sensor in the hall",
//!     service_type: "_http._tcp",
//!     port: 80,
//!     txt: &["path=/"],
//! })
//! .unwrap();
//! mdns.start("sensor-7").unwrap();
//! match mdns.wait_claimed().await {
//!     Ok(()) => { /* sensor-7.local now resolves to this device */ }
//!     Err(conflict) => { /* another host has the name: pick another, start again */ }
//! }
//! # }
//! ```
//!
//! # What it does (RFC 6762 and 6763)
//!
//! - **Probing and announcing (8.1-8.3).** After [`MdnsResponder::start`], once the link is up
//!   and the interface has an address, it waits a random 0-250 ms, sends three probes 250 ms
//!   apart (questions of type ANY with the unicast-response bit, the proposed records in the
//!   authority section, for the host name and every service instance name), then two
//!   announcements 1 s apart (every record, cache-flush bit on the unique ones). It answers
//!   queries from the first announcement on. A link that comes back up starts probing again
//!   (13); a changed address is announced again (8.4).
//! - **Conflicts (8.1, 8.2, 9).** A response received while probing that holds a record of one
//!   of the names being probed with other data is a conflict: the name is not claimed, the
//!   responder stops and [`State::Conflict`] tells which name it was; the application picks
//!   another and calls `start` again. A probe from another host for the host name at the same
//!   time is settled by comparing the records (simplified: the lowest record of each side,
//!   class, type then data); the loser probes again after 1 s. After the names are claimed,
//!   a response with another address for the host name, or another SRV or TXT record for a
//!   service instance, starts probing again, which then reports the conflict.
//! - **Answers (6).** Questions for the host name (A, AAAA, ANY), a service type (PTR), a
//!   service instance (SRV, TXT, ANY) and `_services._dns-sd._udp.local` (PTR, RFC 6763 9)
//!   are answered with the matching records, and additional records as RFC 6763 12 asks
//!   (SRV, TXT and addresses with a PTR, addresses with an SRV). Answers go by multicast to
//!   the group the query came in on; by unicast to the querier's address and port when every
//!   answered question has the unicast-response bit (QU, 5.4) or the query was sent to our
//!   unicast address (5.5). A query from a port other than 5353 is a legacy unicast query
//!   (6.7): the answer goes by unicast to that port, repeats the question and the query ID,
//!   has no cache-flush bits and TTLs of at most 10 s. This is how smoltcp's mDNS query
//!   client (feature `mdns`, [`Stack::dns_query`](crate::Stack::dns_query)) asks, from an
//!   ephemeral port, so another ferronet stack resolves this one.
//! - **Response delay (6).** A multicast answer that holds shared records (PTR) goes out
//!   after a random 20-120 ms, together with whatever other queries asked for meanwhile;
//!   answers of unique records only (A, AAAA, SRV, TXT) go out at once.
//! - **Rate limit (6).** A record is not multicast to a group again within a second of the
//!   last time (announcements included); unicast answers are not limited.
//! - **TTLs (10).** 120 s for A, AAAA and SRV, 75 minutes for PTR and TXT; responses are
//!   sent with IP TTL / hop limit 255 (11).
//! - **Known-answer suppression (7.1).** An A or AAAA answer is left out when the query's
//!   answer section already lists every one of our addresses of that family, and a PTR
//!   answer when it lists that PTR record, each with at least half our TTL.
//! - **Goodbyes (10.1).** [`MdnsResponder::stop`] and
//!   [`MdnsResponder::remove_service`] send the records with TTL 0.
//!
//! # What it does not do
//!
//! - No truncated known-answer lists across several packets (7.2, and no 400-500 ms delay
//!   for a query with the TC bit); no duplicate-answer suppression (7.4); no NSEC negative
//!   answers (6.1). The one-second rate limit has no exception for probe defence (6: 250 ms).
//! - The probe tiebreak (8.2) compares the lowest record only, and only for the host name.
//!   No automatic renaming ("name-2"): that is the application's choice.
//! - QU questions are always answered by unicast (5.4 asks for a multicast answer when the
//!   record was not multicast within a quarter of its TTL).
//! - Queries are not checked for an on-link source address (11).
//! - Received messages larger than 1536 bytes are dropped (the receive buffer); a response
//!   larger than the 1536-byte transmit buffer (many services with long TXT records) is not
//!   sent.
//! - No service subtypes, no SRV priority or weight other than 0.
//!
//! # Cost
//!
//! RAM: the `StackResources` grow by the UDP buffers (1536 bytes each way, four datagrams
//! each way) and the names and records (host name, [`MAX_SERVICES`] services with
//! [`MAX_TXT_LEN`] bytes of TXT each): 4816 bytes of `.bss` in the reference firmware for
//! thumbv7em (`crates/ferronet-bench/firmware`, feature `mdns-responder`), one more socket slot
//! included. Flash: 12.5 KB of `.text` there (55536 against 43012 bytes, IPv4); the runner
//! task, into which the responder's step is inlined, grows by 6.2 KB of it.
//!
//! # Beside the mDNS query client
//!
//! The responder owns UDP port 5353 (a socket bound to it, taking one slot of the
//! [`StackResources`](crate::StackResources) from the first `start` until the goodbye after
//! `stop` has gone out). smoltcp's DNS socket (features `dns` and `mdns`) sends its `.local`
//! queries from an ephemeral port and takes only answers addressed to that port, which the
//! responder's socket never sees, so both work in one stack. A `UdpSocket` of the application
//! must not bind port 5353 while the responder runs (whichever socket came first would get the
//! datagrams).

mod wire;

use embassy_time::{Duration, Instant};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{DnsPacket, IpAddress, IpCidr, IpEndpoint};

use crate::stack::{Inner, SocketTableFull, Stack};
use crate::waitq::WaitFor;
use wire::Writer;

/// The mDNS port.
pub const PORT: u16 = 5353;
/// How many DNS-SD services can be registered at once.
pub const MAX_SERVICES: usize = 4;
/// The longest TXT record data of a service, in bytes (each entry takes its length plus one).
pub const MAX_TXT_LEN: usize = 128;
/// The longest label (host name, service instance name), in bytes.
pub const MAX_LABEL_LEN: usize = 63;
/// The longest service name in a service type (`_http` is 5), underscore included (RFC 6335:
/// at most 15 characters, plus the underscore).
const MAX_SERVICE_LEN: usize = 16;

const RX_BYTES: usize = 1536;
const TX_BYTES: usize = 1536;
const META: usize = 4;

/// Datagrams handled in one runner poll; more wait for the next poll.
const RX_BUDGET: usize = 8;

const PROBE_INTERVAL: Duration = Duration::from_millis(250);
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(1);
const TIEBREAK_DEFER: Duration = Duration::from_secs(1);
const PROBES: u8 = 3;
const ANNOUNCEMENTS: u8 = 2;

/// TTL of host address records and SRV records (RFC 6762 10).
const TTL_HOST: u32 = 120;
/// TTL of the other records (PTR, TXT).
const TTL_OTHER: u32 = 4500;
/// Highest TTL in answers to legacy unicast queries (RFC 6762 6.7).
const TTL_LEGACY: u32 = 10;

#[cfg(feature = "proto-ipv4")]
const GROUP_V4: smoltcp::wire::Ipv4Address = smoltcp::wire::Ipv4Address::new(224, 0, 0, 251);
#[cfg(feature = "proto-ipv6")]
const GROUP_V6: smoltcp::wire::Ipv6Address =
    smoltcp::wire::Ipv6Address::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);

const LOCAL: &[u8] = b"local";
const SERVICES_ENUM: [&[u8]; 4] = [b"_services", b"_dns-sd", b"_udp", LOCAL];

/// A DNS-SD service to announce (RFC 6763).
#[derive(Debug, Clone, Copy)]
pub struct Service<'a> {
    /// The instance name, shown to users: any UTF-8 text of at most 63 bytes, dots
    /// included (`"Sensor in the hall"`).
    pub instance: &'a str,
    /// The service type: `_name._tcp` or `_name._udp` (`"_http._tcp"`).
    pub service_type: &'a str,
    /// The port the service listens on.
    pub port: u16,
    /// TXT record entries (`"key=value"`), at most [`MAX_TXT_LEN`] bytes in all, each entry
    /// counting one more byte. None gives the empty TXT record (one zero byte).
    pub txt: &'a [&'a str],
}

/// A registered service (see [`MdnsResponder::add_service`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServiceId(u8);

/// What the responder is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// Not started, or stopped.
    Stopped,
    /// Started; waiting for the link to be up and for an IP address before probing.
    Waiting,
    /// Sending probes: the names are not claimed yet and no query is answered.
    Probing,
    /// The names are claimed; sending the announcements and answering queries.
    Announcing,
    /// The names are claimed and queries are answered.
    Running,
    /// Another host uses one of the names: nothing is answered. Call
    /// [`MdnsResponder::start`] with another host name, or remove or rename the service.
    Conflict(Conflict),
}

/// Which name another host already uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Conflict {
    /// The host name.
    HostName,
    /// A service's instance name.
    Service(ServiceId),
}

/// Errors of the responder's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The host name or instance name is empty, longer than 63 bytes, or (host name) holds a
    /// dot other than in a `.local` suffix.
    InvalidName,
    /// The service type is not `_name._tcp` or `_name._udp` with a name of 1 to 15 bytes.
    InvalidServiceType,
    /// The TXT entries take more than [`MAX_TXT_LEN`] bytes, or one is longer than 255.
    TxtTooLong,
    /// [`MAX_SERVICES`] services are registered already.
    TooManyServices,
    /// No socket slot left for the responder's UDP socket.
    SocketTableFull(SocketTableFull),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InvalidName => f.write_str("invalid mDNS name (1 to 63 bytes, no dot)"),
            Self::InvalidServiceType => {
                f.write_str("invalid service type (expected _name._tcp or _name._udp)")
            }
            Self::TxtTooLong => write!(f, "TXT entries longer than {MAX_TXT_LEN} bytes"),
            Self::TooManyServices => write!(f, "already {MAX_SERVICES} services registered"),
            Self::SocketTableFull(e) => write!(f, "{e} (the mDNS responder takes one slot)"),
        }
    }
}

impl core::error::Error for Error {}

/// The responder's UDP buffers, inside the [`StackResources`](crate::StackResources).
pub(crate) struct Storage {
    rx_meta: [udp::PacketMetadata; META],
    rx: [u8; RX_BYTES],
    tx_meta: [udp::PacketMetadata; META],
    tx: [u8; TX_BYTES],
}

impl Storage {
    pub(crate) const fn new() -> Self {
        Self {
            rx_meta: [udp::PacketMetadata::EMPTY; META],
            rx: [0; RX_BYTES],
            tx_meta: [udp::PacketMetadata::EMPTY; META],
            tx: [0; TX_BYTES],
        }
    }
}

type Label = heapless::Vec<u8, MAX_LABEL_LEN>;

#[derive(Clone)]
struct ServiceEntry {
    instance: Label,
    service: heapless::Vec<u8, MAX_SERVICE_LEN>,
    tcp: bool,
    port: u16,
    /// TXT record data in wire form (never empty: one zero byte for no entries).
    txt: heapless::Vec<u8, MAX_TXT_LEN>,
}

impl ServiceEntry {
    fn proto(&self) -> &'static [u8] {
        if self.tcp { b"_tcp" } else { b"_udp" }
    }

    fn same_type(&self, other: &ServiceEntry) -> bool {
        self.tcp == other.tcp && self.service.eq_ignore_ascii_case(&other.service)
    }
}

/// Which records a message carries: a bit per service in the `u8`s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sel {
    a: bool,
    aaaa: bool,
    ptr: u8,
    srv: u8,
    txt: u8,
    /// `_services._dns-sd._udp.local` PTR records, for the types of these services.
    types: u8,
}

impl Sel {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn minus(self, o: Sel) -> Sel {
        Sel {
            a: self.a && !o.a,
            aaaa: self.aaaa && !o.aaaa,
            ptr: self.ptr & !o.ptr,
            srv: self.srv & !o.srv,
            txt: self.txt & !o.txt,
            types: self.types & !o.types,
        }
    }

    /// One bit per record set: A, AAAA, then PTR, SRV, TXT and type PTR per service.
    fn slots(&self) -> u32 {
        let per = |b: u8, k: usize| u32::from(b) << (2 + k * MAX_SERVICES);
        u32::from(self.a)
            | u32::from(self.aaaa) << 1
            | per(self.ptr, 0)
            | per(self.srv, 1)
            | per(self.txt, 2)
            | per(self.types, 3)
    }

    fn from_slots(s: u32) -> Sel {
        let per = |k: usize| (s >> (2 + k * MAX_SERVICES)) as u8 & ((1 << MAX_SERVICES) - 1);
        Sel {
            a: s & 1 != 0,
            aaaa: s & 2 != 0,
            ptr: per(0),
            srv: per(1),
            txt: per(2),
            types: per(3),
        }
    }
}

impl core::ops::BitOr for Sel {
    type Output = Sel;

    fn bitor(self, o: Sel) -> Sel {
        Sel::from_slots(self.slots() | o.slots())
    }
}

/// A multicast answer held back (RFC 6762 6: 20-120 ms when it holds shared records),
/// gathering what further queries ask for in the meantime.
#[derive(Clone, Copy)]
struct Pending {
    due: Instant,
    answers: Sel,
    additional: Sel,
}

/// Record sets in [`Sel::slots`].
const SLOTS: usize = 2 + 4 * MAX_SERVICES;

/// When each record set was last multicast, per address family (RFC 6762 6: at most once a
/// second), as the low 32 bits of [`Instant::as_millis`], 0 for never.
#[derive(Default)]
struct LastMulticast([[u32; SLOTS]; 2]);

impl LastMulticast {
    fn stamp(now: Instant) -> u32 {
        (now.as_millis() as u32).max(1)
    }

    /// The record sets multicast to the group of `family` (0: IPv4, 1: IPv6) less than a
    /// second ago.
    fn recent(&self, family: usize, now: Instant) -> Sel {
        let now = Self::stamp(now);
        let mut bits = 0;
        for (i, &at) in self.0[family % 2].iter().enumerate() {
            if at != 0 && now.wrapping_sub(at) < 1000 {
                bits |= 1 << i;
            }
        }
        Sel::from_slots(bits)
    }

    fn mark(&mut self, family: usize, sel: Sel, now: Instant) {
        let bits = sel.slots();
        for (i, at) in self.0[family % 2].iter_mut().enumerate() {
            if bits & (1 << i) != 0 {
                *at = Self::stamp(now);
            }
        }
    }
}

/// The index of `addr`'s family in [`LastMulticast`], if it is a multicast group.
fn group_family(addr: &IpAddress) -> Option<usize> {
    match addr {
        #[cfg(feature = "proto-ipv4")]
        IpAddress::Ipv4(a) if a.is_multicast() => Some(0),
        #[cfg(feature = "proto-ipv6")]
        IpAddress::Ipv6(a) if a.is_multicast() => Some(1),
        _ => None,
    }
}

/// How records are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Multicast or QU answers, announcements: full TTLs, cache-flush on unique records.
    Normal,
    /// Legacy unicast answers: TTL at most 10 s, no cache-flush.
    Legacy,
    /// Probes' authority section: full TTLs, no cache-flush.
    Probe,
    /// Goodbyes: TTL 0.
    Goodbye,
}

/// The interface's addresses, as answered in A and AAAA records.
#[derive(Default)]
struct Addrs {
    v4: heapless::Vec<[u8; 4], 4>,
    v6: heapless::Vec<[u8; 16], 4>,
}

impl Addrs {
    fn of(cidrs: &[IpCidr]) -> Self {
        let mut a = Addrs::default();
        for c in cidrs {
            match c.address() {
                #[cfg(feature = "proto-ipv4")]
                IpAddress::Ipv4(v4) => {
                    let _ = a.v4.push(v4.octets());
                }
                #[cfg(feature = "proto-ipv6")]
                IpAddress::Ipv6(v6) => {
                    let _ = a.v6.push(v6.octets());
                }
            }
        }
        a
    }

    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// A hash of the addresses, to notice a change.
    fn fingerprint(&self) -> u32 {
        let mut h: u32 = 0x811C_9DC5;
        let v4 = self.v4.iter().flat_map(|a| a.iter());
        let v6 = self.v6.iter().flat_map(|a| a.iter());
        for &b in v4.chain(core::iter::once(&0xFF)).chain(v6) {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        h
    }

    /// The multicast groups to send to: one per address family the interface has.
    fn groups(&self) -> impl Iterator<Item = IpEndpoint> + '_ {
        let mut out: heapless::Vec<IpEndpoint, 2> = heapless::Vec::new();
        #[cfg(feature = "proto-ipv4")]
        if !self.v4.is_empty() {
            let _ = out.push(IpEndpoint::new(GROUP_V4.into(), PORT));
        }
        #[cfg(feature = "proto-ipv6")]
        if !self.v6.is_empty() {
            let _ = out.push(IpEndpoint::new(GROUP_V6.into(), PORT));
        }
        out.into_iter()
    }
}

/// The names the responder writes.
#[derive(Clone, Copy)]
enum Name {
    Host,
    Instance(usize),
    Type(usize),
    ServicesEnum,
    /// The question of a legacy unicast answer (a pointer to it).
    Question,
}

/// What a response holds.
struct Body {
    /// For a legacy unicast query: its ID, its question's name (uncompressed) and type.
    legacy: Option<(u16, heapless::Vec<u8, 256>, u16)>,
    answers: Sel,
    additional: Sel,
}

impl Body {
    /// An unsolicited response (announcement, goodbye) with these records.
    fn unsolicited(answers: Sel) -> Self {
        Self {
            legacy: None,
            answers,
            additional: Sel::default(),
        }
    }
}

/// An answer to send, worked out from a query.
struct Reply {
    dst: IpEndpoint,
    body: Body,
    /// A multicast answer with shared records: hold it back 20-120 ms.
    delay: bool,
}

/// The responder's state, inside the stack's shared state.
pub(crate) struct Responder {
    storage: *mut Storage,
    handle: Option<SocketHandle>,
    host: Label,
    services: [Option<ServiceEntry>; MAX_SERVICES],
    phase: State,
    /// Probes or announcements sent in this phase.
    sent: u8,
    /// When the next probe or announcement is due.
    next: Option<Instant>,
    link_up: bool,
    fingerprint: u32,
    rng: u32,
    last_multicast: LastMulticast,
    /// Multicast answers held back, per address family.
    pending: [Option<Pending>; 2],
    /// The multicast groups were joined.
    joined: bool,
}

/// What a runner poll of the responder did.
pub(crate) struct Step {
    /// When to poll again, at the latest (`now` for at once).
    pub(crate) next: Option<Instant>,
    /// The state changed (wake the tasks waiting for state changes).
    pub(crate) state_changed: bool,
}

impl Responder {
    pub(crate) fn new(storage: *mut Storage, seed: u64) -> Self {
        Self {
            storage,
            handle: None,
            host: Label::new(),
            services: [const { None }; MAX_SERVICES],
            phase: State::Stopped,
            sent: 0,
            next: None,
            link_up: false,
            fingerprint: 0,
            rng: (seed as u32 ^ (seed >> 32) as u32) | 1,
            joined: false,
            last_multicast: LastMulticast::default(),
            pending: [None; 2],
        }
    }

    fn random(&mut self, below: u32) -> u32 {
        // xorshift32
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x % below.max(1)
    }

    fn claimed(&self) -> bool {
        matches!(self.phase, State::Announcing | State::Running)
    }

    /// Probe again from the start, after `delay`.
    fn restart_probing(&mut self, now: Instant, delay: Duration) {
        self.phase = State::Probing;
        self.sent = 0;
        self.next = Some(now + delay);
    }

    fn service(&self, i: usize) -> Option<&ServiceEntry> {
        self.services.get(i).and_then(|s| s.as_ref())
    }

    fn service_bits(&self) -> u8 {
        (0..MAX_SERVICES)
            .filter(|&i| self.service(i).is_some())
            .fold(0, |b, i| b | 1 << i)
    }

    /// Every record the responder holds, for the addresses in `addrs`.
    fn all_records(&self, addrs: &Addrs) -> Sel {
        let s = self.service_bits();
        Sel {
            a: !addrs.v4.is_empty(),
            aaaa: !addrs.v6.is_empty(),
            ptr: s,
            srv: s,
            txt: s,
            types: s,
        }
    }

    /// The labels of a name (not `Question`).
    fn labels(&self, name: Name) -> heapless::Vec<&[u8], 4> {
        let mut v: heapless::Vec<&[u8], 4> = heapless::Vec::new();
        match name {
            Name::Host => {
                let _ = v.push(&self.host);
                let _ = v.push(LOCAL);
            }
            Name::Instance(i) | Name::Type(i) => {
                if let Some(s) = self.service(i) {
                    if matches!(name, Name::Instance(_)) {
                        let _ = v.push(&s.instance);
                    }
                    let _ = v.push(&s.service);
                    let _ = v.push(s.proto());
                    let _ = v.push(LOCAL);
                }
            }
            Name::ServicesEnum => {
                let _ = v.extend_from_slice(&SERVICES_ENUM);
            }
            Name::Question => {}
        }
        v
    }

    fn write_name(&self, w: &mut Writer, name: Name) {
        match name {
            // The question starts right after the 12-byte header.
            Name::Question => w.u16(0xC000 | 12),
            _ => w.name(&self.labels(name)),
        }
    }

    /// Write one resource record; `data` writes its data.
    fn write_rr(
        &self,
        w: &mut Writer,
        name: Name,
        (type_, unique, ttl): (u16, bool, u32),
        mode: Mode,
        data: impl FnOnce(&mut Writer),
    ) {
        self.write_name(w, name);
        w.u16(type_);
        let flush = if unique && mode == Mode::Normal {
            wire::CACHE_FLUSH
        } else {
            0
        };
        w.u16(wire::CLASS_IN | flush);
        w.u32(match mode {
            Mode::Normal | Mode::Probe => ttl,
            Mode::Legacy => ttl.min(TTL_LEGACY),
            Mode::Goodbye => 0,
        });
        let at = w.len;
        w.u16(0);
        data(w);
        let len = w.len - at - 2;
        w.patch_u16(at, len as u16);
    }

    /// Write the records in `sel`; returns how many. `named` gives the name of the answers
    /// (the question's, for legacy unicast answers), or `None` for their own names.
    fn write_records(
        &self,
        w: &mut Writer,
        sel: Sel,
        addrs: &Addrs,
        mode: Mode,
        named: Option<Name>,
    ) -> u16 {
        let mut n = 0;
        let host = named.unwrap_or(Name::Host);
        if sel.a {
            for a in &addrs.v4 {
                self.write_rr(w, host, (wire::TYPE_A, true, TTL_HOST), mode, |w| {
                    w.bytes(a)
                });
                n += 1;
            }
        }
        if sel.aaaa {
            for a in &addrs.v6 {
                self.write_rr(w, host, (wire::TYPE_AAAA, true, TTL_HOST), mode, |w| {
                    w.bytes(a)
                });
                n += 1;
            }
        }
        for i in 0..MAX_SERVICES {
            let Some(s) = self.service(i) else { continue };
            let bit = 1u8 << i;
            if sel.types & bit != 0
                && !(0..i).any(|j| {
                    sel.types & (1 << j) != 0 && self.service(j).is_some_and(|o| o.same_type(s))
                })
            {
                let name = named.unwrap_or(Name::ServicesEnum);
                self.write_rr(w, name, (wire::TYPE_PTR, false, TTL_OTHER), mode, |w| {
                    self.write_name(w, Name::Type(i))
                });
                n += 1;
            }
            if sel.ptr & bit != 0 {
                let name = named.unwrap_or(Name::Type(i));
                self.write_rr(w, name, (wire::TYPE_PTR, false, TTL_OTHER), mode, |w| {
                    self.write_name(w, Name::Instance(i))
                });
                n += 1;
            }
            let instance = named.unwrap_or(Name::Instance(i));
            if sel.srv & bit != 0 {
                self.write_rr(w, instance, (wire::TYPE_SRV, true, TTL_HOST), mode, |w| {
                    w.u16(0); // priority
                    w.u16(0); // weight
                    w.u16(s.port);
                    self.write_name(w, Name::Host);
                });
                n += 1;
            }
            if sel.txt & bit != 0 {
                self.write_rr(w, instance, (wire::TYPE_TXT, true, TTL_OTHER), mode, |w| {
                    w.bytes(&s.txt)
                });
                n += 1;
            }
        }
        n
    }

    /// Write a response: `answers` then `additional`.
    fn write_response(&self, w: &mut Writer, reply: &Body, addrs: &Addrs, mode: Mode) {
        let (id, question) = match &reply.legacy {
            Some((id, name, type_)) => (*id, Some((name, *type_))),
            None => (0, None),
        };
        w.u16(id);
        // QR (response) and AA (authoritative), opcode 0, rcode 0.
        w.u16(0x8400);
        w.u16(u16::from(question.is_some()));
        w.u16(0); // answers, patched below
        w.u16(0);
        w.u16(0); // additional, patched below
        if let Some((name, type_)) = question {
            w.bytes(name);
            w.u16(type_);
            w.u16(wire::CLASS_IN);
        }
        let named = question.map(|_| Name::Question);
        let an = self.write_records(w, reply.answers, addrs, mode, named);
        let ar = self.write_records(w, reply.additional, addrs, mode, None);
        w.patch_u16(6, an);
        w.patch_u16(10, ar);
    }

    /// Write a probe: a question of type ANY (with QU) per name, the proposed records in the
    /// authority section.
    fn write_probe(&self, w: &mut Writer, addrs: &Addrs) {
        w.u16(0);
        w.u16(0);
        w.u16(0); // questions, patched below
        w.u16(0);
        w.u16(0); // authority, patched below
        w.u16(0);
        let mut qd = 1;
        w.name(&self.labels(Name::Host));
        w.u16(wire::TYPE_ANY);
        w.u16(wire::CLASS_IN | wire::UNICAST_RESPONSE);
        for i in 0..MAX_SERVICES {
            if self.service(i).is_some() {
                w.name(&self.labels(Name::Instance(i)));
                w.u16(wire::TYPE_ANY);
                w.u16(wire::CLASS_IN | wire::UNICAST_RESPONSE);
                qd += 1;
            }
        }
        let s = self.service_bits();
        let proposed = Sel {
            a: true,
            aaaa: true,
            srv: s,
            txt: s,
            ..Sel::default()
        };
        let ns = self.write_records(w, proposed, addrs, Mode::Probe, None);
        w.patch_u16(4, qd);
        w.patch_u16(8, ns);
    }

    /// Queue a message to `dst`: sized by a first pass of `write`, written by a second.
    fn send(socket: &mut udp::Socket<'_>, dst: IpEndpoint, write: impl Fn(&mut Writer)) -> bool {
        let mut count = Writer::counter();
        write(&mut count);
        match socket.send(count.len, dst) {
            Ok(buf) => {
                let mut w = Writer::new(buf);
                write(&mut w);
                debug_assert!(!w.overflow && w.len == count.len);
                true
            }
            Err(_) => {
                warn!("mDNS: {} bytes to {} not sent (no room)", count.len, dst);
                false
            }
        }
    }

    /// Whether the name `name` of `p` is one of ours: the host name, a service instance, a
    /// service type (every service of that type) or the services enumeration name.
    fn match_name(&self, p: &DnsPacket<&[u8]>, name: &[u8]) -> Option<Name> {
        if wire::name_eq(p, name, &self.labels(Name::Host)) {
            return Some(Name::Host);
        }
        for i in 0..MAX_SERVICES {
            if self.service(i).is_some() {
                if wire::name_eq(p, name, &self.labels(Name::Instance(i))) {
                    return Some(Name::Instance(i));
                }
                if wire::name_eq(p, name, &self.labels(Name::Type(i))) {
                    return Some(Name::Type(i));
                }
            }
        }
        if wire::name_eq(p, name, &SERVICES_ENUM) {
            return Some(Name::ServicesEnum);
        }
        None
    }

    /// Services whose type is that of service `i`.
    fn same_type_bits(&self, i: usize) -> u8 {
        let Some(s) = self.service(i) else { return 0 };
        (0..MAX_SERVICES)
            .filter(|&j| self.service(j).is_some_and(|o| o.same_type(s)))
            .fold(0, |b, j| b | 1 << j)
    }

    /// Whether the record `r` of `p`, of one of our names, holds our data.
    fn is_ours(
        &self,
        p: &DnsPacket<&[u8]>,
        r: &wire::Record<'_>,
        name: Name,
        addrs: &Addrs,
    ) -> bool {
        match (name, r.type_) {
            (Name::Host, wire::TYPE_A) => addrs.v4.iter().any(|a| a[..] == *r.data),
            (Name::Host, wire::TYPE_AAAA) => addrs.v6.iter().any(|a| a[..] == *r.data),
            (Name::Instance(i), wire::TYPE_TXT) => {
                self.service(i).is_some_and(|s| s.txt[..] == *r.data)
            }
            (Name::Instance(i), wire::TYPE_SRV) => self.service(i).is_some_and(|s| {
                r.data.get(4..6) == Some(&s.port.to_be_bytes()[..])
                    && r.data
                        .get(6..)
                        .is_some_and(|target| wire::name_eq(p, target, &self.labels(Name::Host)))
            }),
            _ => false,
        }
    }

    /// Look at a received message: a conflict, a probe to settle, or a query to answer.
    fn on_message(
        &mut self,
        data: &[u8],
        meta: &udp::UdpMetadata,
        addrs: &Addrs,
        now: Instant,
    ) -> Option<Reply> {
        let p = DnsPacket::new_checked(data).ok()?;
        let flags = p.flags();
        // Opcode 0 (query) only; ignore rcode as RFC 6762 18.11 says.
        if p.opcode() != smoltcp::wire::DnsOpcode::Query {
            return None;
        }
        let mut rest = p.payload();
        let mut questions = heapless::Vec::<(Name, u16, u16, &[u8]), 8>::new();
        for _ in 0..p.question_count() {
            let (q, r) = wire::question(rest)?;
            rest = r;
            if let Some(name) = self.match_name(&p, q.name) {
                let _ = questions.push((name, q.type_, q.class, q.name));
            }
        }
        let answers = rest;
        let mut records = rest;
        let (an, ns, ar) = (
            p.answer_record_count(),
            p.authority_record_count(),
            p.additional_record_count(),
        );

        if flags.contains(smoltcp::wire::DnsFlags::RESPONSE) {
            // RFC 6762 6: responses from another port are not mDNS responses.
            if meta.endpoint.port == PORT {
                self.check_response(
                    &p,
                    records,
                    an.saturating_add(ns).saturating_add(ar),
                    addrs,
                    now,
                );
            }
            return None;
        }

        // A probe from another host for our host name while we probe: the tiebreak (8.2).
        if self.phase == State::Probing && ns > 0 {
            for _ in 0..an {
                records = wire::record(records)?.1;
            }
            self.tiebreak(&p, records, ns, addrs, now);
            return None;
        }
        if !self.claimed() || questions.is_empty() {
            return None;
        }
        self.answer(&p, &questions, (answers, an), meta, addrs, now)
    }

    /// A response: any record of a name we probe or hold with other data is a conflict.
    fn check_response(
        &mut self,
        p: &DnsPacket<&[u8]>,
        mut records: &[u8],
        count: u16,
        addrs: &Addrs,
        now: Instant,
    ) {
        for _ in 0..count {
            let Some((r, rest)) = wire::record(records) else {
                return;
            };
            records = rest;
            let name = match self.match_name(p, r.name) {
                Some(n @ (Name::Host | Name::Instance(_))) => n,
                _ => continue,
            };
            if self.is_ours(p, &r, name, addrs) {
                continue;
            }
            match self.phase {
                State::Probing => {
                    let conflict = match name {
                        Name::Instance(i) => Conflict::Service(ServiceId(i as u8)),
                        _ => Conflict::HostName,
                    };
                    warn!("mDNS: name conflict, not claimed");
                    self.phase = State::Conflict(conflict);
                    self.next = None;
                    return;
                }
                State::Announcing | State::Running
                    if matches!(
                        (name, r.type_),
                        (Name::Host, wire::TYPE_A | wire::TYPE_AAAA)
                            | (Name::Instance(_), wire::TYPE_SRV | wire::TYPE_TXT)
                    ) =>
                {
                    info!("mDNS: another host answers for our name; probing again");
                    self.restart_probing(now, Duration::from_ticks(0));
                    return;
                }
                _ => {}
            }
        }
    }

    /// Simultaneous probes for the host name (RFC 6762 8.2, simplified): compare the lowest
    /// record of each side (class, type, data); the lower side probes again after 1 s.
    fn tiebreak(
        &mut self,
        p: &DnsPacket<&[u8]>,
        mut records: &[u8],
        count: u16,
        addrs: &Addrs,
        now: Instant,
    ) {
        let ours: (u16, u16, &[u8]) = match (addrs.v4.first(), addrs.v6.first()) {
            (Some(a), _) => (wire::CLASS_IN, wire::TYPE_A, &a[..]),
            (None, Some(a)) => (wire::CLASS_IN, wire::TYPE_AAAA, &a[..]),
            (None, None) => return,
        };
        let mut theirs: Option<(u16, u16, &[u8])> = None;
        for _ in 0..count {
            let Some((r, rest)) = wire::record(records) else {
                return;
            };
            records = rest;
            if !wire::name_eq(p, r.name, &self.labels(Name::Host)) {
                continue;
            }
            let rec = (r.class & !wire::CACHE_FLUSH, r.type_, r.data);
            if theirs.is_none_or(|t| rec < t) {
                theirs = Some(rec);
            }
        }
        if let Some(theirs) = theirs
            && theirs > ours
        {
            info!("mDNS: lost a simultaneous probe; probing again in 1 s");
            self.restart_probing(now, TIEBREAK_DEFER);
        }
    }

    /// Work out the answer to a query's `questions` (those for our names).
    fn answer(
        &self,
        p: &DnsPacket<&[u8]>,
        questions: &[(Name, u16, u16, &[u8])],
        (known, known_count): (&[u8], u16),
        meta: &udp::UdpMetadata,
        addrs: &Addrs,
        now: Instant,
    ) -> Option<Reply> {
        let legacy_query = meta.endpoint.port != PORT;
        let mut answers = Sel::default();
        let mut all_qu = true;
        let mut legacy = None;
        for &(name, type_, class, raw) in questions {
            let any = type_ == wire::TYPE_ANY;
            let before = answers;
            match name {
                Name::Host => {
                    answers.a |= (any || type_ == wire::TYPE_A) && !addrs.v4.is_empty();
                    answers.aaaa |= (any || type_ == wire::TYPE_AAAA) && !addrs.v6.is_empty();
                }
                Name::Instance(i) => {
                    if any || type_ == wire::TYPE_SRV {
                        answers.srv |= 1 << i;
                    }
                    if any || type_ == wire::TYPE_TXT {
                        answers.txt |= 1 << i;
                    }
                }
                Name::Type(i) if any || type_ == wire::TYPE_PTR => {
                    answers.ptr |= self.same_type_bits(i);
                }
                Name::ServicesEnum if any || type_ == wire::TYPE_PTR => {
                    answers.types |= self.service_bits();
                }
                _ => {}
            }
            if answers != before {
                all_qu &= class & wire::UNICAST_RESPONSE != 0;
                // A legacy answer repeats one question (smoltcp's client sends one).
                if legacy_query && legacy.is_none() {
                    legacy = Some((p.transaction_id(), wire::copy_name(p, raw)?, type_));
                    break;
                }
            }
        }
        let mut answers = answers.minus(self.known_answers(p, known, known_count, answers, addrs));
        let to_unicast = meta.local_address.is_some_and(|a| !a.is_multicast());
        let dst = if legacy_query || all_qu || to_unicast {
            meta.endpoint
        } else {
            let group = match meta.endpoint.addr {
                #[cfg(feature = "proto-ipv4")]
                IpAddress::Ipv4(_) => IpEndpoint::new(GROUP_V4.into(), PORT),
                #[cfg(feature = "proto-ipv6")]
                IpAddress::Ipv6(_) => IpEndpoint::new(GROUP_V6.into(), PORT),
            };
            // RFC 6762 6: no record multicast again within a second.
            if let Some(f) = group_family(&group.addr) {
                answers = answers.minus(self.last_multicast.recent(f, now));
            }
            group
        };
        if answers.is_empty() {
            return None;
        }
        // RFC 6763 12: what the querier will want next.
        let mut additional = Sel::default();
        if answers.ptr != 0 {
            additional.srv |= answers.ptr;
            additional.txt |= answers.ptr;
        }
        if answers.ptr != 0 || answers.srv != 0 {
            additional.a = !addrs.v4.is_empty();
            additional.aaaa = !addrs.v6.is_empty();
        }
        let mut additional = additional.minus(answers);
        if let Some(f) = group_family(&dst.addr) {
            additional = additional.minus(self.last_multicast.recent(f, now));
        }
        // Shared records (PTR) may come from several responders: delay (RFC 6762 6).
        let delay = group_family(&dst.addr).is_some() && (answers.ptr | answers.types) != 0;
        Some(Reply {
            dst,
            body: Body {
                legacy,
                answers,
                additional,
            },
            delay,
        })
    }

    /// Records of `sel` the query's answer section already holds with at least half our TTL
    /// (RFC 6762 7.1): A or AAAA when every address of the family is listed, PTR records.
    fn known_answers(
        &self,
        p: &DnsPacket<&[u8]>,
        mut records: &[u8],
        count: u16,
        sel: Sel,
        addrs: &Addrs,
    ) -> Sel {
        let mut v4_seen = 0u8;
        let mut v6_seen = 0u8;
        let mut known = Sel::default();
        for _ in 0..count {
            let Some((r, rest)) = wire::record(records) else {
                break;
            };
            records = rest;
            match r.type_ {
                wire::TYPE_A | wire::TYPE_AAAA if r.ttl >= TTL_HOST / 2 => {
                    if !wire::name_eq(p, r.name, &self.labels(Name::Host)) {
                        continue;
                    }
                    if r.type_ == wire::TYPE_A {
                        if let Some(k) = addrs.v4.iter().position(|a| a[..] == *r.data) {
                            v4_seen |= 1 << k;
                        }
                    } else if let Some(k) = addrs.v6.iter().position(|a| a[..] == *r.data) {
                        v6_seen |= 1 << k;
                    }
                }
                wire::TYPE_PTR if r.ttl >= TTL_OTHER / 2 => {
                    for i in 0..MAX_SERVICES {
                        if sel.ptr & (1 << i) != 0
                            && wire::name_eq(p, r.name, &self.labels(Name::Type(i)))
                            && wire::name_eq(p, r.data, &self.labels(Name::Instance(i)))
                        {
                            known.ptr |= 1 << i;
                        }
                    }
                }
                _ => {}
            }
        }
        let all = |n: usize| if n == 0 { 0 } else { (1u8 << n) - 1 };
        known.a = !addrs.v4.is_empty() && v4_seen == all(addrs.v4.len());
        known.aaaa = !addrs.v6.is_empty() && v6_seen == all(addrs.v6.len());
        known
    }
}

/// Validate a label (1 to 63 bytes).
fn label(s: &str) -> Result<Label, Error> {
    if s.is_empty() {
        return Err(Error::InvalidName);
    }
    Label::from_slice(s.as_bytes()).map_err(|_| Error::InvalidName)
}

/// Parse `_name._tcp` / `_name._udp`.
fn service_type(t: &str) -> Result<(heapless::Vec<u8, MAX_SERVICE_LEN>, bool), Error> {
    let t = t.strip_suffix(".local").unwrap_or(t);
    let (name, proto) = t.split_once('.').ok_or(Error::InvalidServiceType)?;
    let tcp = match proto {
        "_tcp" => true,
        "_udp" => false,
        _ => return Err(Error::InvalidServiceType),
    };
    if !name.starts_with('_') || name.len() < 2 || name.contains('.') {
        return Err(Error::InvalidServiceType);
    }
    let name = heapless::Vec::from_slice(name.as_bytes()).map_err(|_| Error::InvalidServiceType)?;
    Ok((name, tcp))
}

/// TXT record data in wire form.
fn txt(entries: &[&str]) -> Result<heapless::Vec<u8, MAX_TXT_LEN>, Error> {
    let mut out = heapless::Vec::new();
    for e in entries {
        let len = u8::try_from(e.len()).map_err(|_| Error::TxtTooLong)?;
        out.push(len).map_err(|_| Error::TxtTooLong)?;
        out.extend_from_slice(e.as_bytes())
            .map_err(|_| Error::TxtTooLong)?;
    }
    if out.is_empty() {
        // RFC 6763 6.1: an empty TXT record is one zero byte.
        let _ = out.push(0);
    }
    Ok(out)
}

/// Join or leave the mDNS groups.
fn set_groups(inner: &mut Inner, join: bool) {
    if inner.mdns.joined == join {
        return;
    }
    inner.mdns.joined = join;
    inner.multicast_used = true;
    let groups = [
        #[cfg(feature = "proto-ipv4")]
        IpAddress::from(GROUP_V4),
        #[cfg(feature = "proto-ipv6")]
        IpAddress::from(GROUP_V6),
    ];
    for group in groups {
        let r = if join {
            inner.iface.join_multicast_group(group)
        } else {
            inner.iface.leave_multicast_group(group)
        };
        if r.is_err() {
            warn!(
                "mDNS: membership of {} not changed (group table full?)",
                group
            );
        }
    }
}

/// Create the responder's socket if it has none.
fn ensure_socket(inner: &mut Inner) -> Result<SocketHandle, Error> {
    if let Some(h) = inner.mdns.handle {
        return Ok(h);
    }
    // SAFETY: `storage` points into the `StackResources` that outlive the stack, it is only
    // reached from here (under the `RefCell` borrow of `Inner`), and no socket holds a
    // reference into it: the handle is `None` only before the first socket was created or
    // after the previous one was removed from the set (and dropped) in `poll`.
    let storage = unsafe { &mut *inner.mdns.storage };
    let mut socket = udp::Socket::new(
        udp::PacketBuffer::new(&mut storage.rx_meta[..], &mut storage.rx[..]),
        udp::PacketBuffer::new(&mut storage.tx_meta[..], &mut storage.tx[..]),
    );
    socket.set_hop_limit(Some(255));
    if socket.bind(PORT).is_err() {
        return Err(Error::InvalidName);
    }
    let h = inner.add_socket(socket).map_err(Error::SocketTableFull)?;
    inner.mdns.handle = Some(h);
    Ok(h)
}

/// Queue goodbyes (TTL 0) for the records in `sel`.
fn goodbye(inner: &mut Inner, sel: Sel) {
    let (Some(h), true) = (inner.mdns.handle, inner.mdns.claimed()) else {
        return;
    };
    let addrs = Addrs::of(inner.iface.ip_addrs());
    let reply = Body::unsolicited(sel);
    let socket = inner.sockets.get_mut::<udp::Socket>(h);
    for dst in addrs.groups() {
        Responder::send(socket, dst, |w| {
            inner.mdns.write_response(w, &reply, &addrs, Mode::Goodbye)
        });
    }
}

/// The runner's step: take in what arrived, send what is due. Called on every runner poll.
pub(crate) fn poll(inner: &mut Inner, now: Instant) -> Step {
    let mut step = Step {
        next: None,
        state_changed: false,
    };
    let Some(h) = inner.mdns.handle else {
        return step;
    };
    if inner.mdns.phase == State::Stopped {
        // Drop what came in; once the goodbyes are out, give the slot back.
        let socket = inner.sockets.get_mut::<udp::Socket>(h);
        while socket.recv().is_ok() {}
        if socket.send_queue() == 0 {
            inner.remove_socket(h);
            inner.mdns.handle = None;
        }
        return step;
    }
    let before = inner.mdns.phase;
    let Inner {
        sockets,
        iface,
        mdns,
        link_up,
        ..
    } = inner;
    let socket = sockets.get_mut::<udp::Socket>(h);
    let addrs = Addrs::of(iface.ip_addrs());

    // Link and addresses: probe when both are there, announce again when addresses change.
    let active = !matches!(mdns.phase, State::Conflict(_));
    if active {
        let ready = *link_up && !addrs.is_empty();
        let fingerprint = addrs.fingerprint();
        if !ready {
            mdns.phase = State::Waiting;
            mdns.next = None;
        } else if mdns.phase == State::Waiting || (*link_up && !mdns.link_up) {
            let delay = Duration::from_millis(u64::from(mdns.random(250)));
            mdns.restart_probing(now, delay);
        } else if mdns.claimed() && fingerprint != mdns.fingerprint {
            mdns.phase = State::Announcing;
            mdns.sent = 0;
            mdns.next = Some(now);
        }
        mdns.fingerprint = fingerprint;
    }
    mdns.link_up = *link_up;

    for _ in 0..RX_BUDGET {
        let reply = match socket.recv() {
            Ok((data, meta)) => mdns.on_message(data, &meta, &addrs, now),
            Err(_) => break,
        };
        if let Some(reply) = reply {
            if let (true, Some(f)) = (reply.delay, group_family(&reply.dst.addr)) {
                let pending = match mdns.pending[f] {
                    Some(p) => p,
                    None => Pending {
                        due: now + Duration::from_millis(20 + u64::from(mdns.random(101))),
                        answers: Sel::default(),
                        additional: Sel::default(),
                    },
                };
                mdns.pending[f] = Some(Pending {
                    answers: pending.answers | reply.body.answers,
                    additional: pending.additional | reply.body.additional,
                    ..pending
                });
                continue;
            }
            let mode = if reply.body.legacy.is_some() {
                Mode::Legacy
            } else {
                Mode::Normal
            };
            let sent = Responder::send(socket, reply.dst, |w| {
                mdns.write_response(w, &reply.body, &addrs, mode)
            });
            if let (true, Some(f)) = (sent, group_family(&reply.dst.addr)) {
                let all = reply.body.answers | reply.body.additional;
                mdns.last_multicast.mark(f, all, now);
            }
        }
    }
    if socket.can_recv() {
        step.next = Some(now);
    }

    if let Some(due) = mdns.next
        && due <= now
    {
        match mdns.phase {
            State::Probing if mdns.sent < PROBES => {
                for dst in addrs.groups() {
                    Responder::send(socket, dst, |w| mdns.write_probe(w, &addrs));
                }
                mdns.sent += 1;
                mdns.next = Some(now + PROBE_INTERVAL);
            }
            State::Probing | State::Announcing => {
                if mdns.phase == State::Probing {
                    mdns.phase = State::Announcing;
                    mdns.sent = 0;
                }
                let reply = Body::unsolicited(mdns.all_records(&addrs));
                for dst in addrs.groups() {
                    Responder::send(socket, dst, |w| {
                        mdns.write_response(w, &reply, &addrs, Mode::Normal)
                    });
                    if let Some(f) = group_family(&dst.addr) {
                        mdns.last_multicast.mark(f, reply.answers, now);
                    }
                }
                mdns.sent += 1;
                if mdns.sent >= ANNOUNCEMENTS {
                    mdns.phase = State::Running;
                    mdns.next = None;
                } else {
                    mdns.next = Some(now + ANNOUNCE_INTERVAL);
                }
            }
            _ => mdns.next = None,
        }
    }

    // Held-back multicast answers that are due (none unless the names are claimed).
    if !mdns.claimed() {
        mdns.pending = [None; 2];
    }
    for dst in addrs.groups() {
        let Some(f) = group_family(&dst.addr) else {
            continue;
        };
        let Some(p) = mdns.pending[f] else { continue };
        if p.due <= now {
            mdns.pending[f] = None;
            let recent = mdns.last_multicast.recent(f, now);
            let answers = p.answers.minus(recent);
            let body = Body {
                legacy: None,
                answers,
                additional: p.additional.minus(answers).minus(recent),
            };
            if !answers.is_empty()
                && Responder::send(socket, dst, |w| {
                    mdns.write_response(w, &body, &addrs, Mode::Normal)
                })
            {
                mdns.last_multicast.mark(f, answers | body.additional, now);
            }
        } else {
            step.next = Some(step.next.map_or(p.due, |n| n.min(p.due)));
        }
    }

    step.state_changed = mdns.phase != before;
    step.next = match (step.next, mdns.next) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    step
}

/// The mDNS responder of a stack: a handle, `Copy`, to start, stop and watch it and register
/// services. See the [module documentation](self).
#[derive(Clone, Copy)]
pub struct MdnsResponder<'d> {
    stack: Stack<'d>,
}

impl<'d> MdnsResponder<'d> {
    /// The responder of `stack` (there is one per stack; every handle reaches the same one).
    pub fn new(stack: Stack<'d>) -> Self {
        Self { stack }
    }

    /// Claim `hostname` (`"sensor-7"`, or `"sensor-7.local"`) and answer for it.
    ///
    /// Joins the mDNS multicast groups, takes a socket slot for UDP port 5353 and starts
    /// probing (as soon as the link is up and the interface has an address). Calling it
    /// again, for example with another name after a [`Conflict`], starts over. Services are
    /// probed and announced with the host name.
    pub fn start(&self, hostname: &str) -> Result<(), Error> {
        let name = match hostname.len().checked_sub(6) {
            Some(n)
                if hostname.is_char_boundary(n) && hostname[n..].eq_ignore_ascii_case(".local") =>
            {
                &hostname[..n]
            }
            _ => hostname,
        };
        if name.contains('.') {
            return Err(Error::InvalidName);
        }
        let host = label(name)?;
        self.stack.with_mut(|i| {
            ensure_socket(i)?;
            set_groups(i, true);
            let m = &mut i.mdns;
            m.host = host;
            m.phase = State::Waiting;
            m.next = None;
            m.sent = 0;
            i.wake_runner();
            Ok(())
        })?;
        self.stack.shared.state_waiters.wake_all();
        Ok(())
    }

    /// Stop answering: sends goodbyes (TTL 0) for every record if the names were claimed,
    /// leaves the multicast groups and gives the socket slot back once the goodbyes are out.
    pub fn stop(&self) {
        self.stack.with_mut(|i| {
            if i.mdns.phase == State::Stopped {
                return;
            }
            let all = i.mdns.all_records(&Addrs::of(i.iface.ip_addrs()));
            goodbye(i, all);
            set_groups(i, false);
            i.mdns.phase = State::Stopped;
            i.mdns.next = None;
            i.wake_runner();
        });
        self.stack.shared.state_waiters.wake_all();
    }

    /// Register a DNS-SD service. Once the responder runs, the service is probed and
    /// announced (a running responder probes all its names again).
    pub fn add_service(&self, service: &Service<'_>) -> Result<ServiceId, Error> {
        let entry = ServiceEntry {
            instance: label(service.instance)?,
            service: service_type(service.service_type)?.0,
            tcp: service_type(service.service_type)?.1,
            port: service.port,
            txt: txt(service.txt)?,
        };
        self.stack.with_mut(|i| {
            let m = &mut i.mdns;
            let slot = m
                .services
                .iter()
                .position(|s| s.is_none())
                .ok_or(Error::TooManyServices)?;
            m.services[slot] = Some(entry);
            if !matches!(m.phase, State::Stopped | State::Waiting) {
                m.restart_probing(Instant::now(), Duration::from_ticks(0));
            }
            i.wake_runner();
            Ok(ServiceId(slot as u8))
        })
    }

    /// Remove a service (a goodbye for its records goes out if it was announced). Returns
    /// whether it was registered.
    pub fn remove_service(&self, id: ServiceId) -> bool {
        self.stack.with_mut(|i| {
            let n = usize::from(id.0);
            if i.mdns.service(n).is_none() {
                return false;
            }
            let bit = 1u8 << n;
            let sel = Sel {
                ptr: bit,
                srv: bit,
                txt: bit,
                ..Sel::default()
            };
            goodbye(i, sel);
            i.mdns.services[n] = None;
            if i.mdns.phase == State::Conflict(Conflict::Service(id)) {
                i.mdns.phase = State::Waiting;
            }
            i.wake_runner();
            true
        })
    }

    /// What the responder is doing now.
    pub fn state(&self) -> State {
        self.stack.with(|i| i.mdns.phase)
    }

    /// Wait until the names are claimed (the responder announces or runs), or a conflict
    /// was found. Waits as long as the responder is stopped or has no link or address: use a
    /// timeout where that matters.
    pub async fn wait_claimed(&self) -> Result<(), Conflict> {
        WaitFor::new(&self.stack.shared.state_waiters, || {
            matches!(
                self.state(),
                State::Announcing | State::Running | State::Conflict(_)
            )
        })
        .await;
        match self.state() {
            State::Conflict(c) => Err(c),
            _ => Ok(()),
        }
    }

    /// Wait until the responder's state is not `state` any more, and return the new one.
    pub async fn wait_change(&self, state: State) -> State {
        WaitFor::new(&self.stack.shared.state_waiters, || self.state() != state).await;
        self.state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_types_and_txt() {
        assert!(service_type("_http._tcp").unwrap().1);
        assert!(!service_type("_ipp._udp.local").unwrap().1);
        for bad in [
            "http._tcp",
            "_http",
            "_http._sctp",
            "_._tcp",
            "_a_very_long_service_name._tcp",
        ] {
            assert_eq!(service_type(bad), Err(Error::InvalidServiceType), "{bad}");
        }
        assert_eq!(&txt(&["a=1", "b"]).unwrap()[..], b"\x03a=1\x01b");
        assert_eq!(&txt(&[]).unwrap()[..], b"\x00");
        let long = [core::str::from_utf8(&[b'x'; 100]).unwrap(); 2];
        assert_eq!(txt(&long), Err(Error::TxtTooLong));
    }

    /// Random and mutated messages, in every phase: no panic, and every answer is written
    /// into exactly the room the counting pass asked for.
    #[test]
    fn arbitrary_messages_never_panic() {
        let mut r = Responder::new(core::ptr::null_mut(), 0x5eed);
        r.host = Label::from_slice(b"dev1").unwrap();
        r.services[0] = Some(ServiceEntry {
            instance: Label::from_slice(b"Web").unwrap(),
            service: heapless::Vec::from_slice(b"_http").unwrap(),
            tcp: true,
            port: 80,
            txt: txt(&["a=1"]).unwrap(),
        });
        let addrs = Addrs::of(&[IpCidr::new(IpAddress::v4(192, 0, 2, 2), 24)]);
        // A query with a known answer and a probe, to mutate.
        let mut seeds: [&[u8]; 2] = [
            b"\x00\x00\x00\x00\x00\x02\x00\x01\x00\x00\x00\x00\x04dev1\x05local\x00\x00\xff\x80\x01\x05_http\x04_tcp\xc0\x11\x00\x0c\x00\x01\xc0\x1b\x00\x0c\x00\x01\x00\x00\x11\x94\x00\x02\xc0\x0c",
            b"\x00\x00\x84\x00\x00\x00\x00\x01\x00\x00\x00\x00\x04dev1\x05local\x00\x00\x01\x80\x01\x00\x00\x00\x78\x00\x04\xc0\x00\x02\x09",
        ];
        let mut rng = 0x1234_5678u32;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            rng
        };
        let mut buf = [0u8; 600];
        let mut answered = 0;
        for i in 0..20_000u32 {
            r.phase = [State::Probing, State::Announcing, State::Running][i as usize % 3];
            let len = if i % 4 == 0 {
                let n = next() as usize % buf.len();
                buf[..n].iter_mut().for_each(|b| *b = next() as u8);
                n
            } else {
                let seed = seeds[i as usize % 2];
                let n = seed.len();
                buf[..n].copy_from_slice(seed);
                for _ in 0..1 + next() % 4 {
                    buf[next() as usize % n] = next() as u8;
                }
                n
            };
            let port = if i % 5 == 0 { 40000 } else { PORT };
            let meta = udp::UdpMetadata {
                endpoint: IpEndpoint::new(IpAddress::v4(192, 0, 2, 1), port),
                local_address: Some(GROUP_V4.into()),
                meta: Default::default(),
            };
            let now = Instant::from_millis(u64::from(i) * 7);
            if let Some(reply) = r.on_message(&buf[..len], &meta, &addrs, now) {
                answered += 1;
                let mode = if reply.body.legacy.is_some() {
                    Mode::Legacy
                } else {
                    Mode::Normal
                };
                let mut count = Writer::counter();
                r.write_response(&mut count, &reply.body, &addrs, mode);
                let mut out = [0u8; 1536];
                let mut w = Writer::new(&mut out[..count.len]);
                r.write_response(&mut w, &reply.body, &addrs, mode);
                assert!(!w.overflow && w.len == count.len);
                let n = w.len;
                assert!(DnsPacket::new_checked(&out[..n]).is_ok());
            }
        }
        // The mutations leave many queries intact enough to be answered.
        assert!(answered > 1000, "{answered}");
        seeds[0] = b"";
        assert!(
            r.on_message(
                seeds[0],
                &udp::UdpMetadata::from(IpEndpoint::new(IpAddress::v4(192, 0, 2, 1), PORT)),
                &addrs,
                Instant::from_millis(0)
            )
            .is_none()
        );
    }

    #[test]
    fn record_slots_round_trip() {
        let sel = Sel {
            a: true,
            aaaa: false,
            ptr: 0b1001,
            srv: 0b0110,
            txt: 0b1000,
            types: 0b0001,
        };
        assert_eq!(Sel::from_slots(sel.slots()), sel);
        assert_eq!(Sel::from_slots(u32::MAX).slots(), (1 << SLOTS) - 1);
        let mut last = LastMulticast::default();
        let t = Instant::from_millis(5000);
        last.mark(0, sel, t);
        assert_eq!(last.recent(0, t + Duration::from_millis(999)), sel);
        assert!(last.recent(0, t + Duration::from_millis(1000)).is_empty());
        assert!(last.recent(1, t).is_empty());
    }

    #[test]
    fn fingerprint_tells_address_sets_apart() {
        let a = Addrs {
            v4: heapless::Vec::from_slice(&[[192, 0, 2, 1]]).unwrap(),
            v6: heapless::Vec::new(),
        };
        let b = Addrs {
            v4: heapless::Vec::from_slice(&[[192, 0, 2, 2]]).unwrap(),
            v6: heapless::Vec::new(),
        };
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(
            a.fingerprint(),
            Addrs::of(&[IpCidr::new(IpAddress::v4(192, 0, 2, 1), 24)]).fingerprint()
        );
    }
}
