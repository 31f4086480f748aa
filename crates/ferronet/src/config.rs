//! Stack configuration: how the stack gets its IPv4 and IPv6 addresses.
//!
//! The types and constructors are the same as embassy-net 0.9's, so existing configuration code
//! compiles unchanged. A configuration is applied when the stack is created with
//! [`new`](crate::new) and can be replaced at run time with
//! `Stack::set_config_v4` (with `proto-ipv4`) and `Stack::set_config_v6` (with `proto-ipv6`).

use heapless::Vec;
#[cfg(feature = "proto-ipv4")]
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};
#[cfg(feature = "proto-ipv6")]
use smoltcp::wire::{Ipv6Address, Ipv6Cidr};

/// Longest hostname, in bytes, that [`DhcpConfig::hostname`] can carry.
#[cfg(feature = "dhcpv4-hostname")]
pub const MAX_HOSTNAME_LEN: usize = 32;

/// Static IPv4 address configuration.
///
/// ```
/// use ferronet::{Ipv4Address, Ipv4Cidr, StaticConfigV4};
/// let config = StaticConfigV4 {
///     address: Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, 10), 24),
///     gateway: Some(Ipv4Address::new(192, 0, 2, 1)),
///     dns_servers: heapless::Vec::new(),
/// };
/// assert_eq!(config.address.prefix_len(), 24);
/// ```
#[cfg(feature = "proto-ipv4")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StaticConfigV4 {
    /// IP address and subnet mask.
    pub address: Ipv4Cidr,
    /// Default gateway.
    pub gateway: Option<Ipv4Address>,
    /// DNS servers.
    pub dns_servers: Vec<Ipv4Address, 3>,
}

/// Static IPv6 address configuration.
#[cfg(feature = "proto-ipv6")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StaticConfigV6 {
    /// IP address and subnet mask.
    pub address: Ipv6Cidr,
    /// Default gateway.
    pub gateway: Option<Ipv6Address>,
    /// DNS servers.
    pub dns_servers: Vec<Ipv6Address, 3>,
}

/// DHCPv4 client configuration.
#[cfg(feature = "dhcpv4")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct DhcpConfig {
    /// Maximum lease duration.
    ///
    /// If not set, the lease duration given by the server is used; if set, the lease is capped
    /// at this value.
    pub max_lease_duration: Option<embassy_time::Duration>,
    /// Retry configuration (discovery and request back-off).
    pub retry_config: RetryConfig,
    /// Ignore NAKs from DHCP servers.
    ///
    /// Not compliant with the DHCP RFCs (a NAK must stop the use of the address), but useful on
    /// networks with a rogue or broken server.
    pub ignore_naks: bool,
    /// Server port, almost always 67.
    pub server_port: u16,
    /// Client port, almost always 68.
    pub client_port: u16,
    /// Hostname sent to the server as option 12 (at most [`MAX_HOSTNAME_LEN`] bytes).
    #[cfg(feature = "dhcpv4-hostname")]
    pub hostname: Option<heapless::String<MAX_HOSTNAME_LEN>>,
}

/// DHCPv4 retry configuration, re-exported so that no direct smoltcp dependency is needed.
#[cfg(feature = "dhcpv4")]
pub use smoltcp::socket::dhcpv4::RetryConfig;

#[cfg(feature = "dhcpv4")]
impl Default for DhcpConfig {
    fn default() -> Self {
        Self {
            max_lease_duration: None,
            retry_config: RetryConfig::default(),
            ignore_naks: false,
            server_port: smoltcp::wire::DHCP_SERVER_PORT,
            client_port: smoltcp::wire::DHCP_CLIENT_PORT,
            #[cfg(feature = "dhcpv4-hostname")]
            hostname: None,
        }
    }
}

/// Network stack configuration.
///
/// ```
/// use ferronet::{Config, Ipv4Address, Ipv4Cidr, StaticConfigV4};
/// let config = Config::ipv4_static(StaticConfigV4 {
///     address: Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, 10), 24),
///     gateway: None,
///     dns_servers: Default::default(),
/// });
/// assert!(matches!(config.ipv4, ferronet::ConfigV4::Static(_)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Config {
    /// IPv4 configuration.
    #[cfg(feature = "proto-ipv4")]
    pub ipv4: ConfigV4,
    /// IPv6 configuration.
    #[cfg(feature = "proto-ipv6")]
    pub ipv6: ConfigV6,
}

impl Config {
    /// IPv4 configuration with static addressing.
    #[cfg(feature = "proto-ipv4")]
    pub const fn ipv4_static(config: StaticConfigV4) -> Self {
        Self {
            ipv4: ConfigV4::Static(config),
            #[cfg(feature = "proto-ipv6")]
            ipv6: ConfigV6::None,
        }
    }

    /// IPv6 configuration with static addressing.
    #[cfg(feature = "proto-ipv6")]
    pub const fn ipv6_static(config: StaticConfigV6) -> Self {
        Self {
            #[cfg(feature = "proto-ipv4")]
            ipv4: ConfigV4::None,
            ipv6: ConfigV6::Static(config),
        }
    }

    /// IPv4 configuration with dynamic addressing (DHCPv4).
    #[cfg(feature = "dhcpv4")]
    pub const fn dhcpv4(config: DhcpConfig) -> Self {
        Self {
            ipv4: ConfigV4::Dhcp(config),
            #[cfg(feature = "proto-ipv6")]
            ipv6: ConfigV6::None,
        }
    }

    /// IPv6 configuration with stateless address autoconfiguration (SLAAC).
    #[cfg(feature = "slaac")]
    pub const fn slaac() -> Self {
        Self {
            #[cfg(feature = "proto-ipv4")]
            ipv4: ConfigV4::None,
            ipv6: ConfigV6::Slaac,
        }
    }
}

/// IPv4 configuration of the stack.
#[cfg(feature = "proto-ipv4")]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigV4 {
    /// Do not configure IPv4.
    #[default]
    None,
    /// Use a static IPv4 address configuration.
    Static(StaticConfigV4),
    /// Use DHCP to obtain an IPv4 address configuration.
    #[cfg(feature = "dhcpv4")]
    Dhcp(DhcpConfig),
}

/// IPv6 configuration of the stack.
#[cfg(feature = "proto-ipv6")]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigV6 {
    /// Do not configure IPv6.
    #[default]
    None,
    /// Use a static IPv6 address configuration.
    Static(StaticConfigV6),
    /// Use SLAAC for IPv6 address configuration: a link-local address at once, then an
    /// address from the prefix routers advertise, and a default route through the router.
    ///
    /// The interface holds smoltcp's `IFACE_MAX_ADDR_COUNT` addresses (2 by default): the
    /// link-local and the advertised one. For dual stack (an IPv4 address as well) enable
    /// smoltcp's `iface-max-addr-count-3` feature in your firmware's `Cargo.toml`; without
    /// it the advertised address does not fit (a warning is logged) and IPv6 stays down.
    /// SLAAC only works if the stack was created with it, and only on Ethernet and
    /// IEEE 802.15.4 interfaces.
    #[cfg(feature = "slaac")]
    Slaac,
}
