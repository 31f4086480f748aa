//! Shared harness for ferronet's integration tests: stacks over ferronet-sim links, with
//! documentation-prefix addresses (192.0.2.0/24, 2001:db8::/32).

use ferronet::{
    Config, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr, Runner, Stack, StackResources,
};
use ferronet::{StaticConfigV4, StaticConfigV6};
use ferronet_sim::link::{LinkConfig, LinkHandle, SimDevice, pair_ethernet};

/// Socket slots per test stack.
pub const SOCKETS: usize = 16;

/// Leak a value for the rest of the test process (tests are short-lived processes).
pub fn leak<T>(value: T) -> &'static mut T {
    Box::leak(Box::new(value))
}

/// Leak a zeroed byte buffer.
pub fn buf(len: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; len].into_boxed_slice())
}

/// 192.0.2.`host`.
pub fn ip4(host: u8) -> Ipv4Address {
    Ipv4Address::new(192, 0, 2, host)
}

/// 2001:db8::`host`.
pub fn ip6(host: u16) -> Ipv6Address {
    Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, host)
}

/// Static IPv4 config 192.0.2.`host`/24 with gateway 192.0.2.1.
pub fn v4_config(host: u8) -> StaticConfigV4 {
    StaticConfigV4 {
        address: Ipv4Cidr::new(ip4(host), 24),
        gateway: Some(ip4(1)),
        dns_servers: heapless::Vec::new(),
    }
}

/// Static IPv6 config 2001:db8::`host`/64.
pub fn v6_config(host: u16) -> StaticConfigV6 {
    StaticConfigV6 {
        address: Ipv6Cidr::new(ip6(host), 64),
        gateway: None,
        dns_servers: heapless::Vec::new(),
    }
}

/// Dual-stack static config for host number `host`.
pub fn dual_config(host: u8) -> Config {
    let mut c = Config::ipv4_static(v4_config(host));
    c.ipv6 = ferronet::ConfigV6::Static(v6_config(host as u16));
    c
}

/// A stack on `device` with [`SOCKETS`] slots.
pub fn stack_on(
    device: SimDevice,
    config: Config,
    seed: u64,
) -> (Stack<'static>, Runner<'static, SimDevice>) {
    let resources = leak(StackResources::<SOCKETS>::new());
    ferronet::new(device, config, resources, seed)
}

/// Two stacks joined by a link: A is 192.0.2.2 / 2001:db8::2, B is 192.0.2.3 / 2001:db8::3.
pub struct Pair {
    /// Stack A.
    pub a: Stack<'static>,
    /// Stack B.
    pub b: Stack<'static>,
    /// Runner of A; spawn it.
    pub runner_a: Runner<'static, SimDevice>,
    /// Runner of B; spawn it.
    pub runner_b: Runner<'static, SimDevice>,
    /// The link between them.
    pub link: LinkHandle,
}

/// Two dual-stack stacks over a link with the given configuration.
pub fn pair(cfg: LinkConfig) -> Pair {
    let (dev_a, dev_b, link) = pair_ethernet(cfg).expect("valid link config");
    let (a, runner_a) = stack_on(dev_a, dual_config(2), 0x1234_5678);
    let (b, runner_b) = stack_on(dev_b, dual_config(3), 0x8765_4321);
    Pair {
        a,
        b,
        runner_a,
        runner_b,
        link,
    }
}

/// Spawn both runners of a [`Pair`] on a ferronet-sim executor and return the stacks and link.
pub fn spawn_pair<'a>(
    ex: &ferronet_sim::executor::Executor<'a>,
    cfg: LinkConfig,
) -> (Stack<'static>, Stack<'static>, LinkHandle) {
    let Pair {
        a,
        b,
        mut runner_a,
        mut runner_b,
        link,
    } = pair(cfg);
    ex.spawn(async move {
        runner_a.run().await;
    });
    ex.spawn(async move {
        runner_b.run().await;
    });
    (a, b, link)
}

/// Deterministic test data: byte `i` of a stream with the given seed.
pub fn pattern(seed: u8, i: usize) -> u8 {
    (i as u32).wrapping_mul(2654435761).rotate_left(7) as u8 ^ seed
}

/// Fill `buf` with [`pattern`] bytes starting at stream offset `offset`.
pub fn fill_pattern(seed: u8, offset: usize, buf: &mut [u8]) {
    for (k, b) in buf.iter_mut().enumerate() {
        *b = pattern(seed, offset + k);
    }
}

/// Check `buf` against [`pattern`] at stream offset `offset`; returns the first bad offset.
pub fn check_pattern(seed: u8, offset: usize, buf: &[u8]) -> Result<(), usize> {
    match buf
        .iter()
        .enumerate()
        .find(|(k, b)| **b != pattern(seed, offset + k))
    {
        Some((k, _)) => Err(offset + k),
        None => Ok(()),
    }
}

pub mod faults;
pub mod fuzz;
pub mod peers;
pub mod sim;
