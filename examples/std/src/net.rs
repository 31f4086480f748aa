//! The interface and addressing options shared by the examples, and [`run`], which opens the
//! device, starts a ferronet stack on it and runs the program's body once the link and the
//! IP configuration are up.

use std::fs::File;
use std::io::BufWriter;
use std::net::IpAddr;
use std::path::PathBuf;

use embassy_time::{Duration, Timer, with_timeout};
use ferronet::dns::DnsQueryType;
use ferronet::driver::Driver;
use ferronet::{
    Config, ConfigV6, DhcpConfig, IpAddress, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr, Stack,
    StackResources, StaticConfigV4, StaticConfigV6,
};
use ferronet_sim::capture::CaptureDriver;
use ferronet_tuntap::{Kind, TapDevice, TunDevice};

use crate::cli::{Failure, Parser};
use crate::exec::block_on_with;

/// Sockets the stack has room for (the examples use at most 8 TCP sockets, plus DNS and DHCP).
pub const SOCKETS: usize = 16;

/// `--help` text of the shared options.
pub const NET_HELP: &str = "\
Interface and addressing:
  --tap NAME      run on the TAP interface NAME (Ethernet frames)
  --tun NAME      run on the TUN interface NAME (bare IP packets)
  --create        create the interface if it does not exist (needs CAP_NET_ADMIN; it is
                  deleted again when the program exits, and starts down)
  --ip CIDR       static address, IPv4 or IPv6: 192.0.2.2/24, 2001:db8::2/64 (once per family)
  --gw ADDR       default gateway, IPv4 or IPv6 (once per family)
  --dns ADDR      DNS server, IPv4 or IPv6 (up to 3 per family)
  --dhcp          get the IPv4 address, gateway and DNS servers by DHCP (TAP only)
  --slaac         get the IPv6 address and gateway from router advertisements (SLAAC,
                  TAP only); prints `ipv6 link-local: ADDR/64` and, once a router has
                  answered, `ipv6: ADDR/LEN` on stderr
  --mac MAC       the stack's MAC address on a TAP (default: the interface's with the last
                  bit flipped, locally administered)
  --mtu N         set the interface's MTU first
  --pcap FILE     record every frame received and sent to FILE (pcap, for Wireshark)
  --wait SECS     how long to wait for the link and the IP configuration (default 10)
  --seed N        random seed (default: from the clock)";

/// The shared options; fill with [`NetArgs::accept`].
#[derive(Debug)]
pub struct NetArgs {
    /// `--tap NAME` or `--tun NAME`.
    pub device: Option<(Kind, String)>,
    /// `--create`.
    pub create: bool,
    /// `--ip` (IPv4).
    pub ipv4: Option<Ipv4Cidr>,
    /// `--ip` (IPv6).
    pub ipv6: Option<Ipv6Cidr>,
    /// `--gw` (IPv4).
    pub gateway4: Option<Ipv4Address>,
    /// `--gw` (IPv6).
    pub gateway6: Option<Ipv6Address>,
    /// `--dns` (IPv4).
    pub dns4: heapless::Vec<Ipv4Address, 3>,
    /// `--dns` (IPv6).
    pub dns6: heapless::Vec<Ipv6Address, 3>,
    /// `--dhcp`.
    pub dhcp: bool,
    /// `--slaac`.
    pub slaac: bool,
    /// `--mac`.
    pub mac: Option<[u8; 6]>,
    /// `--mtu`.
    pub mtu: Option<usize>,
    /// `--pcap`.
    pub pcap: Option<PathBuf>,
    /// `--wait`.
    pub wait: Duration,
    /// `--seed`.
    pub seed: Option<u64>,
}

impl Default for NetArgs {
    fn default() -> Self {
        Self {
            device: None,
            create: false,
            ipv4: None,
            ipv6: None,
            gateway4: None,
            gateway6: None,
            dns4: heapless::Vec::new(),
            dns6: heapless::Vec::new(),
            dhcp: false,
            slaac: false,
            mac: None,
            mtu: None,
            pcap: None,
            wait: Duration::from_secs(10),
            seed: None,
        }
    }
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

impl NetArgs {
    /// Takes `flag` (and its value) if it is a shared option; returns whether it was.
    pub fn accept(&mut self, flag: &str, p: &mut Parser) -> Result<bool, Failure> {
        match flag {
            "tap" | "tun" => {
                if self.device.is_some() {
                    return Err(Failure::usage("give only one of --tap and --tun"));
                }
                let kind = if flag == "tap" { Kind::Tap } else { Kind::Tun };
                self.device = Some((kind, p.value(flag)?));
            }
            "create" => self.create = true,
            "ip" => {
                let value = p.value(flag)?;
                match parse_cidr(&value).map_err(|e| Failure::usage(format!("--ip: {e}")))? {
                    (IpAddr::V4(a), len) if self.ipv4.is_none() => {
                        self.ipv4 = Some(Ipv4Cidr::new(a, len));
                    }
                    (IpAddr::V6(a), len) if self.ipv6.is_none() => {
                        self.ipv6 = Some(Ipv6Cidr::new(a, len));
                    }
                    _ => return Err(Failure::usage("at most one --ip per IP version")),
                }
            }
            "gw" => match p.parse::<IpAddr>(flag)? {
                IpAddr::V4(a) => self.gateway4 = Some(a),
                IpAddr::V6(a) => self.gateway6 = Some(a),
            },
            "dns" => {
                let full = match p.parse::<IpAddr>(flag)? {
                    IpAddr::V4(a) => self.dns4.push(a).is_err(),
                    IpAddr::V6(a) => self.dns6.push(a).is_err(),
                };
                if full {
                    return Err(Failure::usage("at most 3 --dns servers per IP version"));
                }
            }
            "dhcp" => self.dhcp = true,
            "slaac" => self.slaac = true,
            "mac" => {
                let value = p.value(flag)?;
                let mac = ferronet_tuntap::parse_mac(&value)
                    .ok_or_else(|| Failure::usage(format!("--mac {value:?}: not a MAC address")))?;
                self.mac = Some(mac);
            }
            "mtu" => self.mtu = Some(p.parse(flag)?),
            "pcap" => self.pcap = Some(PathBuf::from(p.value(flag)?)),
            "wait" => self.wait = Duration::from_secs(p.parse(flag)?),
            "seed" => self.seed = Some(p.parse(flag)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The stack configuration the options describe.
    pub fn config(&self) -> Result<Config, Failure> {
        let mut config = if self.dhcp {
            if self.ipv4.is_some() {
                return Err(Failure::usage("--dhcp and an IPv4 --ip exclude each other"));
            }
            if matches!(self.device, Some((Kind::Tun, _))) {
                return Err(Failure::usage("--dhcp needs an Ethernet (--tap) interface"));
            }
            Config::dhcpv4(DhcpConfig::default())
        } else if let Some(address) = self.ipv4 {
            Config::ipv4_static(StaticConfigV4 {
                address,
                gateway: self.gateway4,
                dns_servers: self.dns4.clone(),
            })
        } else {
            Config::default()
        };
        if let Some(address) = self.ipv6 {
            config.ipv6 = ConfigV6::Static(StaticConfigV6 {
                address,
                gateway: self.gateway6,
                dns_servers: self.dns6.clone(),
            });
        }
        if self.slaac {
            if self.ipv6.is_some() {
                return Err(Failure::usage(
                    "--slaac and an IPv6 --ip exclude each other",
                ));
            }
            if matches!(self.device, Some((Kind::Tun, _))) {
                return Err(Failure::usage(
                    "--slaac needs an Ethernet (--tap) interface",
                ));
            }
            config.ipv6 = ConfigV6::Slaac;
        }
        if !self.dhcp && !self.slaac && self.ipv4.is_none() && self.ipv6.is_none() {
            return Err(Failure::usage(
                "no address: give --ip ADDRESS/LEN (IPv4 and/or IPv6), --dhcp or --slaac",
            ));
        }
        Ok(config)
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

/// Opens the interface of `net`, starts a stack on it (recording to `--pcap` if given),
/// waits up to `--wait` for the link and the IP configuration, then runs `app` with the
/// stack. Diagnostics go to stderr.
pub fn run<T>(
    net: &NetArgs,
    app: impl AsyncFnOnce(Stack<'static>) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let (kind, name) = net
        .device
        .clone()
        .ok_or_else(|| Failure::usage("give the interface: --tap NAME or --tun NAME"))?;
    let config = net.config()?;
    let seed = net.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    match kind {
        Kind::Tap => {
            let open = if net.create {
                TapDevice::open
            } else {
                TapDevice::open_existing
            };
            let mut dev = open(&name).map_err(device_error)?;
            if let Some(mtu) = net.mtu {
                dev.set_mtu(mtu).map_err(device_error)?;
            }
            if let Some(mac) = net.mac {
                dev.set_mac_address(mac).map_err(device_error)?;
            }
            eprintln!(
                "{name}: TAP, MTU {}, stack MAC {}",
                dev.mtu(),
                ferronet_tuntap::format_mac(dev.mac_address())
            );
            with_capture(dev, &name, net, config, seed, app)
        }
        Kind::Tun => {
            if net.mac.is_some() {
                return Err(Failure::usage("--mac needs a TAP interface"));
            }
            let open = if net.create {
                TunDevice::open
            } else {
                TunDevice::open_existing
            };
            let mut dev = open(&name).map_err(device_error)?;
            if let Some(mtu) = net.mtu {
                dev.set_mtu(mtu).map_err(device_error)?;
            }
            eprintln!("{name}: TUN, MTU {}", dev.mtu());
            with_capture(dev, &name, net, config, seed, app)
        }
    }
}

fn with_capture<D: Driver, T>(
    dev: D,
    name: &str,
    net: &NetArgs,
    config: Config,
    seed: u64,
    app: impl AsyncFnOnce(Stack<'static>) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let Some(path) = &net.pcap else {
        return drive(dev, name, net.wait, config, seed, app);
    };
    let file = File::create(path)
        .map_err(|e| Failure::failed(format!("cannot create {}: {e}", path.display())))?;
    let dev = CaptureDriver::new(dev, BufWriter::new(file))
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))?;
    eprintln!("recording frames to {}", path.display());
    drive(dev, name, net.wait, config, seed, app)
}

fn drive<D: Driver, T>(
    dev: D,
    name: &str,
    wait: Duration,
    config: Config,
    seed: u64,
    app: impl AsyncFnOnce(Stack<'static>) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let slaac = matches!(config.ipv6, ConfigV6::Slaac);
    let resources = Box::leak(Box::new(StackResources::<SOCKETS>::new()));
    let (stack, mut runner) = ferronet::new(dev, config, resources, seed);
    block_on_with(runner.run(), async move {
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
        app(stack).await
    })
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

/// Splits `HOST:PORT` (IPv6 literals in brackets: `[2001:db8::1]:7`).
pub fn split_host_port(s: &str) -> Result<(&str, u16), Failure> {
    let (host, port) = s
        .rsplit_once(':')
        .filter(|(h, _)| !h.contains(':') || (h.starts_with('[') && h.ends_with(']')))
        .ok_or_else(|| Failure::usage(format!("{s:?} is not HOST:PORT")))?;
    let port = port
        .parse()
        .map_err(|_| Failure::usage(format!("{port:?} is not a port number")))?;
    Ok((host, port))
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
    use super::*;

    #[test]
    fn cidrs_and_host_ports() {
        assert_eq!(
            parse_cidr("192.0.2.2/24").unwrap(),
            ("192.0.2.2".parse().unwrap(), 24)
        );
        assert!(parse_cidr("192.0.2.2/33").is_err());
        assert!(parse_cidr("192.0.2.2").is_err());
        assert_eq!(parse_cidr("2001:db8::2/64").unwrap().1, 64);
        assert_eq!(split_host_port("192.0.2.1:7").unwrap(), ("192.0.2.1", 7));
        assert_eq!(
            split_host_port("[2001:db8::1]:80").unwrap(),
            ("[2001:db8::1]", 80)
        );
        assert!(split_host_port("2001:db8::1").is_err());
        assert!(split_host_port("host").is_err());
    }

    #[test]
    fn net_args_build_a_config() {
        let mut net = NetArgs::default();
        let mut p = Parser::new(
            [
                "--tun",
                "tun0",
                "--ip",
                "192.0.2.2/24",
                "--ip=2001:db8::2/64",
                "--gw",
                "192.0.2.1",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        );
        while let Some(crate::cli::Arg::Flag(f)) = p.next().unwrap() {
            assert!(net.accept(&f, &mut p).unwrap(), "{f}");
        }
        let config = net.config().unwrap();
        assert!(matches!(config.ipv4, ferronet::ConfigV4::Static(_)));
        assert!(matches!(config.ipv6, ConfigV6::Static(_)));
        net.dhcp = true;
        assert!(net.config().is_err(), "DHCP with a static IPv4 address");
        net.ipv4 = None;
        assert!(net.config().is_err(), "DHCP on a TUN");

        let mut net = NetArgs {
            device: Some((Kind::Tap, "tap0".into())),
            slaac: true,
            ..NetArgs::default()
        };
        assert!(matches!(net.config().unwrap().ipv6, ConfigV6::Slaac));
        net.ipv6 = Some(Ipv6Cidr::new(Ipv6Address::LOCALHOST, 128));
        assert!(net.config().is_err(), "SLAAC with a static IPv6 address");
        net.ipv6 = None;
        net.device = Some((Kind::Tun, "tun0".into()));
        assert!(net.config().is_err(), "SLAAC on a TUN");
    }
}
