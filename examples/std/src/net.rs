//! The interface and addressing options shared by the programs ([`NetArgs`]), and [`start`],
//! which opens the device, starts a ferronet stack on it in a runner task and waits until the
//! link and the IP configuration are up; plus small helpers the programs share.

use std::fs::File;
use std::io::BufWriter;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Context;

use embassy_executor::Spawner;
use embassy_futures::select::select;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Timer, with_timeout};
use ferronet::dns::DnsQueryType;
use ferronet::driver::{Capabilities, Driver, HardwareAddress, LinkState};
use ferronet::{
    Config, ConfigV6, DhcpConfig, IpAddress, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr, Runner,
    Stack, StackResources, StaticConfigV4, StaticConfigV6,
};
use ferronet_sim::capture::CaptureDriver;
use ferronet_tuntap::{TapDevice, TunDevice, TunTapRxToken, TunTapTxToken};
use static_cell::StaticCell;

use crate::app::Failure;

/// Sockets the stack has room for (the programs use at most 8 TCP sockets, plus DNS and DHCP).
pub const SOCKETS: usize = 16;

/// The interface and addressing options, for `#[command(flatten)]`.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Interface and addressing")]
pub struct NetArgs {
    /// Run on the TAP interface NAME (Ethernet frames)
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "tun",
        required_unless_present = "tun"
    )]
    pub tap: Option<String>,
    /// Run on the TUN interface NAME (bare IP packets)
    #[arg(long, value_name = "NAME")]
    pub tun: Option<String>,
    /// Create the interface if it does not exist (needs CAP_NET_ADMIN; it is deleted again
    /// when the program exits, and starts down)
    #[arg(long)]
    pub create: bool,
    /// Static address, IPv4 or IPv6: 192.0.2.2/24, 2001:db8::2/64 (once per family)
    #[arg(long = "ip", value_name = "CIDR", value_parser = parse_cidr)]
    pub ip: Vec<(IpAddr, u8)>,
    /// Default gateway, IPv4 or IPv6 (once per family)
    #[arg(long = "gw", value_name = "ADDR")]
    pub gw: Vec<IpAddr>,
    /// DNS server, IPv4 or IPv6 (up to 3 per family)
    #[arg(long = "dns", value_name = "ADDR")]
    pub dns: Vec<IpAddr>,
    /// Get the IPv4 address, gateway and DNS servers by DHCP (TAP only)
    #[arg(long, conflicts_with = "tun")]
    pub dhcp: bool,
    /// Get the IPv6 address and gateway from router advertisements (SLAAC, TAP only); prints
    /// `ipv6 link-local: ADDR/64` and, once a router has answered, `ipv6: ADDR/LEN` on stderr
    #[arg(long, conflicts_with = "tun")]
    pub slaac: bool,
    /// The stack's MAC address on a TAP (default: the interface's with the last bit flipped,
    /// locally administered)
    #[arg(long, value_name = "MAC", value_parser = parse_mac, conflicts_with = "tun")]
    pub mac: Option<[u8; 6]>,
    /// Set the interface's MTU first
    #[arg(long, value_name = "N")]
    pub mtu: Option<usize>,
    /// Record every frame received and sent to FILE (pcap, for Wireshark)
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// How long to wait for the link and the IP configuration
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub wait: u64,
    /// Random seed (default: from the clock)
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

/// Parses `ADDR/LEN`.
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not ADDRESS/PREFIX-LENGTH"))?;
    let addr: IpAddr = addr.parse().map_err(|e| format!("{addr:?}: {e}"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match len.parse::<u8>() {
        Ok(len) if len <= max => Ok((addr, len)),
        _ => Err(format!("{len:?} is not a prefix length (0..={max})")),
    }
}

/// Parses a MAC address (`02:00:00:00:00:02`).
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    ferronet_tuntap::parse_mac(s).ok_or_else(|| format!("{s:?} is not a MAC address"))
}

/// Parses `HOST:PORT` (IPv6 literals in brackets: `[2001:db8::1]:7`).
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .filter(|(h, _)| !h.contains(':') || (h.starts_with('[') && h.ends_with(']')))
        .ok_or_else(|| format!("{s:?} is not HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    Ok((host.to_owned(), port))
}

impl NetArgs {
    /// The stack configuration the options describe.
    pub fn config(&self) -> Result<Config, Failure> {
        let (mut ipv4, mut ipv6) = (None, None);
        for &(addr, len) in &self.ip {
            match addr {
                IpAddr::V4(a) if ipv4.is_none() => ipv4 = Some(Ipv4Cidr::new(a, len)),
                IpAddr::V6(a) if ipv6.is_none() => ipv6 = Some(Ipv6Cidr::new(a, len)),
                _ => return Err(Failure::usage("at most one --ip per IP version")),
            }
        }
        let (mut gateway4, mut gateway6) = (None, None);
        for &gw in &self.gw {
            match gw {
                IpAddr::V4(a) if gateway4.is_none() => gateway4 = Some(a),
                IpAddr::V6(a) if gateway6.is_none() => gateway6 = Some(a),
                _ => return Err(Failure::usage("at most one --gw per IP version")),
            }
        }
        let mut dns4 = heapless::Vec::<Ipv4Address, 3>::new();
        let mut dns6 = heapless::Vec::<Ipv6Address, 3>::new();
        for &server in &self.dns {
            let full = match server {
                IpAddr::V4(a) => dns4.push(a).is_err(),
                IpAddr::V6(a) => dns6.push(a).is_err(),
            };
            if full {
                return Err(Failure::usage("at most 3 --dns servers per IP version"));
            }
        }
        // clap checks these too, but a program may set `dhcp` or `slaac` itself (dhcp-client).
        if self.tun.is_some() && (self.dhcp || self.slaac) {
            return Err(Failure::usage(
                "--dhcp and --slaac need an Ethernet (--tap) interface",
            ));
        }
        let mut config = if self.dhcp {
            if ipv4.is_some() {
                return Err(Failure::usage("--dhcp and an IPv4 --ip exclude each other"));
            }
            Config::dhcpv4(DhcpConfig::default())
        } else if let Some(address) = ipv4 {
            Config::ipv4_static(StaticConfigV4 {
                address,
                gateway: gateway4,
                dns_servers: dns4,
            })
        } else {
            Config::default()
        };
        if let Some(address) = ipv6 {
            config.ipv6 = ConfigV6::Static(StaticConfigV6 {
                address,
                gateway: gateway6,
                dns_servers: dns6,
            });
        }
        if self.slaac {
            if ipv6.is_some() {
                return Err(Failure::usage(
                    "--slaac and an IPv6 --ip exclude each other",
                ));
            }
            config.ipv6 = ConfigV6::Slaac;
        }
        if !self.dhcp && !self.slaac && ipv4.is_none() && ipv6.is_none() {
            return Err(Failure::usage(
                "no address: give --ip ADDRESS/LEN (IPv4 and/or IPv6), --dhcp or --slaac",
            ));
        }
        Ok(config)
    }
}

/// A TAP or a TUN device, chosen on the command line: one driver type for the runner task
/// (a task cannot be generic). Both hand out the same token types.
#[derive(Debug)]
pub enum HostDevice {
    /// `--tap NAME`.
    Tap(TapDevice),
    /// `--tun NAME`.
    Tun(TunDevice),
}

impl Driver for HostDevice {
    type RxToken<'a>
        = TunTapRxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TunTapTxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        match self {
            Self::Tap(d) => d.receive(cx),
            Self::Tun(d) => d.receive(cx),
        }
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
        match self {
            Self::Tap(d) => d.transmit(cx),
            Self::Tun(d) => d.transmit(cx),
        }
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        match self {
            Self::Tap(d) => d.link_state(cx),
            Self::Tun(d) => d.link_state(cx),
        }
    }

    fn capabilities(&self) -> Capabilities {
        match self {
            Self::Tap(d) => d.capabilities(),
            Self::Tun(d) => d.capabilities(),
        }
    }

    fn hardware_address(&self) -> HardwareAddress {
        match self {
            Self::Tap(d) => d.hardware_address(),
            Self::Tun(d) => d.hardware_address(),
        }
    }
}

/// A device recording to `--pcap`.
pub type CapturedDevice = CaptureDriver<HostDevice, BufWriter<File>>;

/// Asks the runner task to stop.
static STOP: Signal<CriticalSectionRawMutex, ()> = Signal::new();
/// The runner task has stopped and dropped the device.
static STOPPED: Signal<CriticalSectionRawMutex, ()> = Signal::new();
/// A runner task was spawned and not yet stopped.
static RUNNING: AtomicBool = AtomicBool::new(false);

#[embassy_executor::task]
async fn net_task(runner: Runner<'static, HostDevice>) {
    run_until_stopped(runner).await;
}

#[embassy_executor::task]
async fn net_task_captured(runner: Runner<'static, CapturedDevice>) {
    run_until_stopped(runner).await;
}

async fn run_until_stopped<D: Driver>(mut runner: Runner<'static, D>) {
    select(runner.run(), STOP.wait()).await;
    // Dropping the runner drops the device: the pcap file gets its last frames and an
    // interface made with --create goes away.
    drop(runner);
    STOPPED.signal(());
}

/// Stops the runner task [`start`] spawned (no-op if there is none) and waits until it has
/// dropped the device. [`app::exit`](crate::app::exit) calls it.
pub async fn stop() {
    if RUNNING.swap(false, Ordering::AcqRel) {
        STOP.signal(());
        STOPPED.wait().await;
    }
}

fn device_error(e: ferronet_tuntap::Error) -> Failure {
    match e {
        ferronet_tuntap::Error::InvalidName { .. } | ferronet_tuntap::Error::InvalidMac(_) => {
            Failure::usage(e)
        }
        _ => Failure::device(e),
    }
}

/// Opens the interface `net` names (with `--mtu` and `--mac` applied).
pub fn open(net: &NetArgs) -> Result<HostDevice, Failure> {
    if let Some(name) = &net.tap {
        let open = if net.create {
            TapDevice::open
        } else {
            TapDevice::open_existing
        };
        let mut dev = open(name).map_err(device_error)?;
        if let Some(mtu) = net.mtu {
            dev.set_mtu(mtu).map_err(device_error)?;
        }
        if let Some(mac) = net.mac {
            dev.set_mac_address(mac).map_err(device_error)?;
        }
        log::info!(
            "{name}: TAP, MTU {}, stack MAC {}",
            dev.mtu(),
            ferronet_tuntap::format_mac(dev.mac_address())
        );
        Ok(HostDevice::Tap(dev))
    } else if let Some(name) = &net.tun {
        let open = if net.create {
            TunDevice::open
        } else {
            TunDevice::open_existing
        };
        let mut dev = open(name).map_err(device_error)?;
        if let Some(mtu) = net.mtu {
            dev.set_mtu(mtu).map_err(device_error)?;
        }
        log::info!("{name}: TUN, MTU {}", dev.mtu());
        Ok(HostDevice::Tun(dev))
    } else {
        Err(Failure::usage(
            "give the interface: --tap NAME or --tun NAME",
        ))
    }
}

/// Opens the interface of `net`, starts a stack on it (recording to `--pcap` if given) with
/// its runner in a task of `spawner`, and waits up to `--wait` for the link and the IP
/// configuration (with `--slaac`, for a router's prefix too). Call once per program; end the
/// program with [`app::exit`](crate::app::exit), which stops the runner.
pub async fn start(spawner: Spawner, net: &NetArgs) -> Result<Stack<'static>, Failure> {
    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();

    let config = net.config()?;
    let dev = open(net)?;
    let name = dev_name(&dev).to_owned();
    let seed = net.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let resources = RESOURCES
        .try_init(StackResources::new())
        .ok_or_else(|| Failure::failed("net::start called twice"))?;
    let slaac = matches!(config.ipv6, ConfigV6::Slaac);
    let spawned = match &net.pcap {
        None => {
            let (stack, runner) = ferronet::new(dev, config, resources, seed);
            spawner.spawn(net_task(runner)).map(|()| stack)
        }
        Some(path) => {
            let file = File::create(path)
                .map_err(|e| Failure::failed(format!("cannot create {}: {e}", path.display())))?;
            let dev = CaptureDriver::new(dev, BufWriter::new(file))
                .map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))?;
            log::info!("recording frames to {}", path.display());
            let (stack, runner) = ferronet::new(dev, config, resources, seed);
            spawner.spawn(net_task_captured(runner)).map(|()| stack)
        }
    };
    let stack = spawned.map_err(|e| Failure::failed(format!("cannot start the stack: {e}")))?;
    RUNNING.store(true, Ordering::Release);

    let wait = Duration::from_secs(net.wait);
    if with_timeout(wait, stack.wait_link_up()).await.is_err() {
        return Err(Failure::device(format!(
            "the link of {name} is down after {} s: bring the interface up \
             (`ip link set {name} up`)",
            wait.as_secs()
        )));
    }
    if slaac {
        let ll = Ipv6Cidr::new(Ipv6Cidr::LINK_LOCAL_PREFIX.address(), 64);
        if let Some(ll) = Ipv6Cidr::from_link_prefix(&ll, stack.hardware_address()) {
            eprintln!("ipv6 link-local: {ll}");
        }
    }
    if with_timeout(wait, stack.wait_config_up()).await.is_err() {
        return Err(Failure::timeout(format!(
            "no IP configuration after {} s (no DHCP server or IPv6 router answered?)",
            wait.as_secs()
        )));
    }
    if slaac {
        // The IPv4 configuration may have come first: wait for the router as well.
        let v6 = with_timeout(wait, async {
            loop {
                if let Some(c) = stack.config_v6() {
                    return c;
                }
                Timer::after_millis(50).await;
            }
        });
        let c = v6.await.map_err(|_| {
            Failure::timeout(format!(
                "no IPv6 router advertisement after {} s",
                wait.as_secs()
            ))
        })?;
        eprintln!("ipv6: {}", c.address);
    }
    Ok(stack)
}

fn dev_name(dev: &HostDevice) -> &str {
    match dev {
        HostDevice::Tap(d) => d.name(),
        HostDevice::Tun(d) => d.name(),
    }
}

/// Runs `fut` for at most `limit`; running out is a [`Failure::timeout`].
pub async fn timed<T>(limit: Duration, fut: impl Future<Output = T>) -> Result<T, Failure> {
    with_timeout(limit, fut)
        .await
        .map_err(|_| Failure::timeout(format!("timed out after {} s", limit.as_secs())))
}

/// `HOST` as an IP literal, or looked up by DNS (A first, then AAAA).
pub async fn resolve(stack: Stack<'_>, host: &str) -> Result<IpAddress, Failure> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(addr) = host.parse::<IpAddr>() {
        return Ok(addr.into());
    }
    for qtype in [DnsQueryType::A, DnsQueryType::Aaaa] {
        if let Ok(addrs) = stack.dns_query(host, qtype).await
            && let Some(addr) = addrs.first()
        {
            return Ok(*addr);
        }
    }
    Err(Failure::failed(format!("cannot resolve {host:?}")))
}

/// Why a datagram or echo request was refused with `PacketTooLarge`: its size against what
/// the link carries unfragmented.
pub fn too_large(what: &str, size: usize) -> Failure {
    let fragmentation = if cfg!(feature = "ipv4-fragmentation") {
        "IPv4 fragmentation is on: at most 4068 bytes over IPv4"
    } else {
        "build with `--features ipv4-fragmentation` for up to 4068 bytes over IPv4"
    };
    Failure::failed(format!(
        "{what}: {size} bytes do not fit the link's MTU (payload of at most MTU - 28 bytes \
         over IPv4, MTU - 48 over IPv6: 1472 and 1452 on Ethernet); {fragmentation}"
    ))
}

/// Byte `i` of the deterministic test pattern (`--bytes N`): `i % 251`, a period that no
/// power-of-two buffer size lines up with.
pub fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Args {
        #[command(flatten)]
        net: NetArgs,
    }

    fn parse(args: &[&str]) -> Result<NetArgs, clap::Error> {
        Args::try_parse_from(std::iter::once("test").chain(args.iter().copied())).map(|a| a.net)
    }

    #[test]
    fn cidrs_and_host_ports() {
        assert_eq!(
            parse_cidr("192.0.2.2/24").unwrap(),
            ("192.0.2.2".parse().unwrap(), 24)
        );
        assert!(parse_cidr("192.0.2.2/33").is_err());
        assert!(parse_cidr("192.0.2.2").is_err());
        assert_eq!(parse_cidr("2001:db8::2/64").unwrap().1, 64);
        assert_eq!(
            parse_host_port("192.0.2.1:7").unwrap(),
            ("192.0.2.1".into(), 7)
        );
        assert_eq!(
            parse_host_port("[2001:db8::1]:80").unwrap(),
            ("[2001:db8::1]".into(), 80)
        );
        assert!(parse_host_port("2001:db8::1").is_err());
        assert!(parse_host_port("host").is_err());
        assert!(parse_host_port("host:http").is_err());
    }

    #[test]
    fn net_args_build_a_config() {
        let net = parse(&[
            "--tun",
            "tun0",
            "--ip",
            "192.0.2.2/24",
            "--ip=2001:db8::2/64",
            "--gw",
            "192.0.2.1",
        ])
        .unwrap();
        let config = net.config().unwrap();
        assert!(matches!(config.ipv4, ferronet::ConfigV4::Static(_)));
        assert!(matches!(config.ipv6, ConfigV6::Static(_)));

        let both = parse(&["--tap", "tap0", "--dhcp", "--ip", "192.0.2.2/24"]).unwrap();
        assert_eq!(both.config().unwrap_err().code, crate::app::EXIT_USAGE);
        let two_v4 = parse(&[
            "--tap",
            "tap0",
            "--ip",
            "192.0.2.2/24",
            "--ip",
            "192.0.2.3/24",
        ]);
        assert!(two_v4.unwrap().config().is_err());
        let none = parse(&["--tap", "tap0"]).unwrap();
        assert!(none.config().is_err(), "no address");

        let slaac = parse(&["--tap", "tap0", "--slaac"]).unwrap();
        assert!(matches!(slaac.config().unwrap().ipv6, ConfigV6::Slaac));
        let slaac_static = parse(&["--tap", "tap0", "--slaac", "--ip", "2001:db8::2/64"]);
        assert!(slaac_static.unwrap().config().is_err());
    }

    #[test]
    fn clap_rejects_bad_combinations() {
        use clap::error::ErrorKind;
        let kind = |args: &[&str]| parse(args).unwrap_err().kind();
        assert_eq!(
            kind(&["--ip", "192.0.2.2/24"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["--tap", "a", "--tun", "b"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["--tun", "tun0", "--dhcp"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["--tun", "tun0", "--slaac"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["--tun", "tun0", "--mac", "02:00:00:00:00:02"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["--tap", "t", "--mac", "nonsense"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["--tap", "t", "--ip", "192.0.2.2/33"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind(&["--tap", "t", "--bogus"]), ErrorKind::UnknownArgument);
        let exit = parse(&["--tap", "t", "--bogus"]).unwrap_err().exit_code();
        assert_eq!(exit, i32::from(crate::app::EXIT_USAGE));
    }
}
