//! DNS queries: [`Stack::dns_query`] and [`DnsSocket`], which implements
//! `embedded_nal_async::Dns`.
//!
//! - IP literals (`"192.0.2.1"`, `"2001:db8::1"`) are answered at once, without a query.
//! - Queries go to the DNS servers of the current configuration (static, or from the DHCP
//!   lease); when the configuration changes, so does the server list (no stale servers).
//! - Up to [`MAX_QUERIES`] queries run at once; further callers wait for a free slot instead of
//!   failing.
//! - Queries are cancel-safe: dropping the future cancels the query and frees its slot.
//! - With the `mdns` feature, names ending in `.local` are resolved with multicast DNS.
//! - `get_host_by_address` (reverse lookup) is not implemented and returns
//!   [`Error::Failed`]; it never panics (embassy-net's does).
//!
//! ```no_run
//! # async fn demo(stack: ferronet::Stack<'_>) -> Result<(), ferronet::dns::Error> {
//! use ferronet::dns::DnsQueryType;
//! let addrs = stack.dns_query("example.com", DnsQueryType::A).await?;
//! # let _ = addrs;
//! # Ok(())
//! # }
//! ```

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use heapless::Vec;
pub use smoltcp::socket::dns::{DnsQuery, Socket};
use smoltcp::socket::dns::{GetQueryResultError, QueryHandle, StartQueryError};
pub use smoltcp::wire::{DnsQueryType, IpAddress};

use crate::Stack;
use crate::stack::Inner;
use crate::waitq::WaitNode;

/// How many DNS queries can run at the same time.
pub const MAX_QUERIES: usize = 4;

/// Errors from DNS queries.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The name is not a valid DNS name (empty, or an empty or over-long label).
    InvalidName,
    /// The name is longer than the stack can carry.
    NameTooLong,
    /// The lookup failed: the name does not exist, no server answered, no DNS server is
    /// configured, or the query type is not supported.
    Failed,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::InvalidName => "invalid DNS name",
            Self::NameTooLong => "DNS name too long",
            Self::Failed => "DNS lookup failed",
        })
    }
}

impl core::error::Error for Error {}

impl From<GetQueryResultError> for Error {
    fn from(_: GetQueryResultError) -> Self {
        Self::Failed
    }
}

impl From<StartQueryError> for Error {
    fn from(e: StartQueryError) -> Self {
        match e {
            StartQueryError::NoFreeSlot => Self::Failed,
            StartQueryError::InvalidName => Self::InvalidName,
            StartQueryError::NameTooLong => Self::NameTooLong,
        }
    }
}

/// The addresses a query returns.
type Addrs = Vec<IpAddress, { smoltcp::config::DNS_MAX_RESULT_COUNT }>;

impl<'d> Stack<'d> {
    /// Look up `name` and return its addresses of type `qtype` (`A` or `AAAA`; a CNAME chain is
    /// followed).
    ///
    /// See the [module documentation](crate::dns) for the behaviour. Like an `async fn`, this
    /// does nothing until awaited; the future is a small hand-written state machine (about 40
    /// bytes on 32-bit targets), as the future of every waiting task holds one.
    pub fn dns_query<'s>(
        &'s self,
        name: &'s str,
        qtype: DnsQueryType,
    ) -> impl Future<Output = Result<Addrs, Error>> + 's {
        QueryFuture {
            stack: *self,
            name,
            qtype,
            state: QueryState::Start,
            node: WaitNode::new(),
        }
    }
}

/// An IP literal needs no query: its address, if `name` is one of the type asked for.
fn literal(name: &str, qtype: DnsQueryType) -> Option<Addrs> {
    let ip = match qtype {
        #[cfg(feature = "proto-ipv4")]
        DnsQueryType::A => IpAddress::Ipv4(crate::ip_literal::ipv4(name)?),
        #[cfg(feature = "proto-ipv6")]
        DnsQueryType::Aaaa => IpAddress::Ipv6(crate::ip_literal::ipv6(name)?),
        _ => return None,
    };
    let mut v = Vec::new();
    let _ = v.push(ip);
    Some(v)
}

enum QueryState {
    /// Not polled yet.
    Start,
    /// Not an IP literal: waiting for a free query slot of the DNS socket.
    Waiting,
    /// The query runs in the DNS socket.
    Running(QueryHandle),
    /// The result was returned.
    Done,
}

/// The future of [`Stack::dns_query`].
///
/// Cancel-safe: dropped while the query runs, it cancels the query; whenever it gives up or
/// finishes a query, it lets a task waiting for a query slot try again.
struct QueryFuture<'s, 'd> {
    stack: Stack<'d>,
    name: &'s str,
    qtype: DnsQueryType,
    state: QueryState,
    /// Links this future into the stack's DNS waiters while all query slots are taken.
    node: WaitNode,
}

impl Future for QueryFuture<'_, '_> {
    type Output = Result<Addrs, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `node` is never moved out of the pinned future; the other fields are not
        // structurally pinned and are used through plain references.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `this.node` is part of the pinned future, so it stays put until dropped
        // (`Drop` unlinks it).
        let node = unsafe { Pin::new_unchecked(&this.node) };
        let waiters = &this.stack.shared.dns_waiters;
        loop {
            match this.state {
                QueryState::Start => match literal(this.name, this.qtype) {
                    Some(v) => {
                        this.state = QueryState::Done;
                        return Poll::Ready(Ok(v));
                    }
                    None => this.state = QueryState::Waiting,
                },
                QueryState::Waiting => {
                    let started = this.stack.with_mut(|i| {
                        let socket = i.sockets.get_mut::<Socket>(Inner::dns_socket());
                        let r = socket.start_query(i.iface.context(), this.name, this.qtype);
                        if r.is_ok() {
                            i.wake_runner();
                        }
                        r
                    });
                    match started {
                        Ok(q) => {
                            waiters.unlink(node);
                            this.state = QueryState::Running(q);
                        }
                        Err(StartQueryError::NoFreeSlot) => {
                            waiters.register(node, cx.waker());
                            return Poll::Pending;
                        }
                        Err(e) => {
                            waiters.unlink(node);
                            this.state = QueryState::Done;
                            return Poll::Ready(Err(Error::from(e)));
                        }
                    }
                }
                QueryState::Running(q) => {
                    let res = this.stack.with_mut(|i| {
                        let socket = i.sockets.get_mut::<Socket>(Inner::dns_socket());
                        match socket.get_query_result(q) {
                            Ok(addrs) => Poll::Ready(Ok(addrs)),
                            Err(GetQueryResultError::Pending) => {
                                socket.register_query_waker(q, cx.waker());
                                Poll::Pending
                            }
                            Err(e) => Poll::Ready(Err(Error::from(e))),
                        }
                    });
                    if res.is_ready() {
                        // The query finished and smoltcp freed its slot.
                        this.state = QueryState::Done;
                        waiters.wake_all();
                    }
                    return res;
                }
                QueryState::Done => return Poll::Ready(Err(Error::Failed)),
            }
        }
    }
}

impl Drop for QueryFuture<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs on the pinned place before it is invalidated (Pin's drop
        // guarantee), so the node is still where the list points to.
        let node = unsafe { Pin::new_unchecked(&self.node) };
        let waiters = &self.stack.shared.dns_waiters;
        waiters.unlink(node);
        if let QueryState::Running(q) = self.state {
            self.stack.with_mut(|i| {
                let socket = i.sockets.get_mut::<Socket>(Inner::dns_socket());
                socket.cancel_query(q);
                i.wake_runner();
            });
            waiters.wake_all();
        }
    }
}

/// DNS client implementing `embedded_nal_async::Dns`.
///
/// Prefer [`Stack::dns_query`] unless you need the `embedded-nal-async` trait.
pub struct DnsSocket<'a> {
    stack: Stack<'a>,
}

impl<'a> DnsSocket<'a> {
    /// Create a DNS client on `stack`.
    pub fn new(stack: Stack<'a>) -> Self {
        Self { stack }
    }

    /// Look up `name`, like [`Stack::dns_query`].
    pub async fn query(
        &self,
        name: &str,
        qtype: DnsQueryType,
    ) -> Result<Vec<IpAddress, { smoltcp::config::DNS_MAX_RESULT_COUNT }>, Error> {
        self.stack.dns_query(name, qtype).await
    }
}

impl<'a> embedded_nal_async::Dns for DnsSocket<'a> {
    type Error = Error;

    async fn get_host_by_name(
        &self,
        host: &str,
        addr_type: embedded_nal_async::AddrType,
    ) -> Result<core::net::IpAddr, Self::Error> {
        use embedded_nal_async::AddrType;

        #[cfg(feature = "proto-ipv4")]
        const V4: Option<DnsQueryType> = Some(DnsQueryType::A);
        #[cfg(not(feature = "proto-ipv4"))]
        const V4: Option<DnsQueryType> = None;
        #[cfg(feature = "proto-ipv6")]
        const V6: Option<DnsQueryType> = Some(DnsQueryType::Aaaa);
        #[cfg(not(feature = "proto-ipv6"))]
        const V6: Option<DnsQueryType> = None;

        let order = match addr_type {
            AddrType::IPv4 => [V4, None],
            AddrType::IPv6 => [V6, None],
            AddrType::Either => {
                #[cfg(feature = "proto-ipv6")]
                let v6_first = self.stack.config_v6().is_some();
                #[cfg(not(feature = "proto-ipv6"))]
                let v6_first = false;
                if v6_first { [V6, V4] } else { [V4, V6] }
            }
        };
        let mut last = Err(Error::Failed);
        for qtype in order.into_iter().flatten() {
            match self.query(host, qtype).await {
                Ok(addrs) => {
                    if let Some(first) = addrs.first() {
                        return Ok((*first).into());
                    }
                }
                Err(e) => last = Err(e),
            }
        }
        last
    }

    async fn get_host_by_address(
        &self,
        _addr: core::net::IpAddr,
        _result: &mut [u8],
    ) -> Result<usize, Self::Error> {
        // Reverse (PTR) lookups are not implemented.
        Err(Error::Failed)
    }
}

fn _assert_covariant<'a, 'b: 'a>(x: DnsSocket<'b>) -> DnsSocket<'a> {
    x
}
