//! What the ecosystem examples share: the command-line options of the interface and its
//! addresses ([`NetArgs`]), and [`start`], which opens the TAP device, starts the network
//! stack on it (embassy-net's API, which is ferronet here) and waits for the link and the
//! configuration.

use std::net::{Ipv4Addr, Ipv6Addr};

use embassy_executor::Spawner;
use embassy_net::{
    Config, ConfigV4, ConfigV6, Ipv4Cidr, Ipv6Cidr, Runner, Stack, StackResources, StaticConfigV4,
    StaticConfigV6,
};
use embassy_time::{Duration, with_timeout};
use ferronet_tuntap::TapDevice;
use static_cell::StaticCell;

/// Sockets the stack has room for (the HTTP server uses 8 TCP sockets; DNS, DHCP and mDNS
/// one each).
pub const SOCKETS: usize = 16;

/// The interface and addressing options every example has.
#[derive(Debug, clap::Args)]
pub struct NetArgs {
    /// The existing TAP interface to run on (Ethernet frames).
    #[arg(long, value_name = "NAME")]
    pub tap: String,
    /// The stack's IPv4 address and prefix length.
    #[arg(long, value_name = "ADDR/LEN", default_value = "192.0.2.2/24", value_parser = parse_v4_cidr)]
    pub ip: (Ipv4Addr, u8),
    /// The IPv4 default gateway.
    #[arg(long, value_name = "ADDR")]
    pub gw: Option<Ipv4Addr>,
    /// An IPv6 address and prefix length (none by default).
    #[arg(long, value_name = "ADDR/LEN", value_parser = parse_v6_cidr)]
    pub ip6: Option<(Ipv6Addr, u8)>,
    /// A DNS server (up to 3).
    #[arg(long, value_name = "ADDR")]
    pub dns: Vec<Ipv4Addr>,
    /// How long to wait for the link and the configuration, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub wait: u64,
}

fn parse_cidr<A: std::str::FromStr>(s: &str, max: u8) -> Result<(A, u8), String> {
    let (addr, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s}: expected ADDR/LEN"))?;
    let addr = addr
        .parse()
        .map_err(|_| format!("{addr}: not an address"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("{len}: not a prefix length"))?;
    if len > max {
        return Err(format!("prefix length {len} is over {max}"));
    }
    Ok((addr, len))
}

fn parse_v4_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    parse_cidr(s, 32)
}

fn parse_v6_cidr(s: &str) -> Result<(Ipv6Addr, u8), String> {
    parse_cidr(s, 128)
}

impl NetArgs {
    /// The stack configuration these options describe.
    pub fn config(&self) -> Result<Config, String> {
        if self.dns.len() > 3 {
            return Err("at most 3 --dns servers".into());
        }
        let (ip, len) = self.ip;
        let ipv4 = ConfigV4::Static(StaticConfigV4 {
            address: Ipv4Cidr::new(ip, len),
            gateway: self.gw,
            dns_servers: self.dns.iter().copied().collect(),
        });
        let ipv6 = match self.ip6 {
            Some((ip, len)) => ConfigV6::Static(StaticConfigV6 {
                address: Ipv6Cidr::new(ip, len),
                gateway: None,
                dns_servers: Default::default(),
            }),
            None => ConfigV6::None,
        };
        let mut config = Config::default();
        config.ipv4 = ipv4;
        config.ipv6 = ipv6;
        Ok(config)
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, TapDevice>) -> ! {
    runner.run().await
}

/// Opens the TAP interface, starts the stack on it (its runner in a task of its own) and
/// waits until the link and the configuration are up. Call once.
pub async fn start(spawner: Spawner, net: &NetArgs) -> Result<Stack<'static>, String> {
    let config = net.config()?;
    let dev = TapDevice::open_existing(&net.tap).map_err(|e| format!("{}: {e}", net.tap))?;
    log::info!(
        "{}: TAP, MTU {}, stack MAC {}",
        net.tap,
        dev.mtu(),
        ferronet_tuntap::format_mac(dev.mac_address())
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let resources = RESOURCES
        .try_init(StackResources::new())
        .ok_or("start called twice")?;
    let (stack, runner) = embassy_net::new(dev, config, resources, seed);
    spawner
        .spawn(net_task(runner))
        .map_err(|e| format!("spawning the network task: {e:?}"))?;
    with_timeout(Duration::from_secs(net.wait), stack.wait_config_up())
        .await
        .map_err(|_| format!("{}: no link or configuration after {} s", net.tap, net.wait))?;
    Ok(stack)
}

/// Sets up logging (`env_logger`: `RUST_LOG`, `info` by default; ferronet's own messages
/// come through its `log` feature) and parses the command line (`--help`, `--version` and
/// usage errors end the program, as clap does).
pub fn init<A: clap::Parser>() -> A {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    A::parse()
}

/// Starts the stack on the interface [`start`], runs `app` on it, and ends the program: exit
/// status 0 when `app` returned `Ok`, 1 after printing the error on stderr otherwise. (The
/// executor of `#[embassy_executor::main]` never returns, so the examples end through this.)
pub async fn run(
    spawner: Spawner,
    net: &NetArgs,
    app: impl AsyncFnOnce(Stack<'static>) -> Result<(), String>,
) -> ! {
    let result = match start(spawner, net).await {
        Ok(stack) => app(stack).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1)
        }
    }
}

/// Byte `i` of the test pattern the examples serve and check: 0, 1, ..., 250, 0, 1, ...
/// (251 is prime, so the pattern does not line up with any power-of-two buffer size).
pub fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}
