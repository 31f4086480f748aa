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

use core::future::poll_fn;
use core::task::Poll;

use heapless::Vec;
pub use smoltcp::socket::dns::{DnsQuery, Socket};
use smoltcp::socket::dns::{GetQueryResultError, StartQueryError};
pub use smoltcp::wire::{DnsQueryType, IpAddress};

use crate::Stack;
use crate::waitq::WaitFor;

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

impl<'d> Stack<'d> {
    /// Look up `name` and return its addresses of type `qtype` (`A` or `AAAA`; a CNAME chain is
    /// followed).
    ///
    /// See the [module documentation](crate::dns) for the behaviour.
    pub async fn dns_query(
        &self,
        name: &str,
        qtype: DnsQueryType,
    ) -> Result<Vec<IpAddress, { smoltcp::config::DNS_MAX_RESULT_COUNT }>, Error> {
        // IP literals need no query.
        match qtype {
            #[cfg(feature = "proto-ipv4")]
            DnsQueryType::A => {
                if let Ok(ip) = name.parse::<core::net::Ipv4Addr>() {
                    let mut v = Vec::new();
                    let _ = v.push(IpAddress::Ipv4(ip));
                    return Ok(v);
                }
            }
            #[cfg(feature = "proto-ipv6")]
            DnsQueryType::Aaaa => {
                if let Ok(ip) = name.parse::<core::net::Ipv6Addr>() {
                    let mut v = Vec::new();
                    let _ = v.push(IpAddress::Ipv6(ip));
                    return Ok(v);
                }
            }
            _ => {}
        }

        // Start the query, waiting for a free slot if all are taken.
        let mut started = None;
        WaitFor::new(&self.shared.dns_waiters, || {
            if started.is_some() {
                return true;
            }
            self.with_mut(|i| {
                let dns = i.dns_socket;
                let socket = i.sockets.get_mut::<Socket>(dns);
                match socket.start_query(i.iface.context(), name, qtype) {
                    Ok(q) => {
                        i.wake_runner();
                        started = Some(Ok(q));
                        true
                    }
                    Err(StartQueryError::NoFreeSlot) => false,
                    Err(e) => {
                        started = Some(Err(Error::from(e)));
                        true
                    }
                }
            })
        })
        .await;
        let query = match started {
            Some(Ok(q)) => q,
            Some(Err(e)) => return Err(e),
            None => return Err(Error::Failed),
        };

        // Cancel the query if this future is dropped before it completes.
        let guard = CancelOnDrop {
            stack: *self,
            query: Some(query),
        };
        let res = poll_fn(|cx| {
            self.with_mut(|i| {
                let socket = i.sockets.get_mut::<Socket>(i.dns_socket);
                match socket.get_query_result(query) {
                    Ok(addrs) => Poll::Ready(Ok(addrs)),
                    Err(GetQueryResultError::Pending) => {
                        socket.register_query_waker(query, cx.waker());
                        Poll::Pending
                    }
                    Err(e) => Poll::Ready(Err(Error::from(e))),
                }
            })
        })
        .await;
        // The query finished: smoltcp freed its slot.
        guard.finish();
        res
    }
}

/// Cancels a running query when dropped, and lets a task waiting for a slot in.
struct CancelOnDrop<'d> {
    stack: Stack<'d>,
    query: Option<smoltcp::socket::dns::QueryHandle>,
}

impl CancelOnDrop<'_> {
    fn finish(mut self) {
        self.query = None;
        // `drop` wakes the slot waiters.
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(q) = self.query.take() {
            self.stack.with_mut(|i| {
                let socket = i.sockets.get_mut::<Socket>(i.dns_socket);
                socket.cancel_query(q);
                i.wake_runner();
            });
        }
        self.stack.shared.dns_waiters.wake_all();
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
