//! Reference firmware: DHCPv4, DNS, TCP and UDP on one Ethernet interface.
//!
//! The same source builds against ferronet (`--features use-ferronet`) and embassy-net 0.9
//! (`--features use-embassy`): the stack is imported as `net` and only its public API is used,
//! which also shows that ferronet is a source-compatible drop-in. `--features dual` adds
//! proto-ipv6 and a static IPv6 address next to DHCPv4.
//!
//! It must build and link; it was written to be measured (see measure.sh), not run.
#![no_std]
#![no_main]

#[cfg(feature = "use-embassy")]
use embassy_net as net;
#[cfg(feature = "use-ferronet")]
use ferronet as net;

use core::ptr::write_volatile;

use embassy_executor::Spawner;
use embassy_time::{Duration, Timer};
use ferronet_bench_firmware::{eth, time};
use net::dns::DnsQueryType;
use net::tcp::TcpSocket;
use net::udp::{PacketMetadata, UdpSocket};
use net::{Config, DhcpConfig, IpAddress, Runner, StackResources};
use panic_halt as _;
use static_cell::StaticCell;

/// Results go to the MPS2 FPGA LED register, so that the compiler keeps every value.
fn report(code: u32) {
    // SAFETY: an MMIO register at a fixed, aligned address.
    unsafe { write_volatile(0x4002_8000 as *mut u32, code) }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, eth::MmioEth>) -> ! {
    runner.run().await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = cortex_m::Peripherals::take().unwrap();
    time::init(p.SYST);

    #[allow(unused_mut)]
    let mut config = Config::dhcpv4(DhcpConfig::default());
    #[cfg(feature = "dual")]
    {
        config.ipv6 = net::ConfigV6::Static(net::StaticConfigV6 {
            address: net::Ipv6Cidr::new(
                net::Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10),
                64,
            ),
            gateway: Some(net::Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            dns_servers: Default::default(),
        });
    }

    // The mDNS responder takes one more socket slot.
    const SOCKETS: usize = if cfg!(feature = "mdns-responder") { 4 } else { 3 };
    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let seed = ((eth::free_run() as u64) << 32) | eth::free_run() as u64;
    let (stack, runner) = net::new(
        eth::MmioEth::new(),
        config,
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(net_task(runner)).unwrap();

    #[cfg(feature = "mdns-responder")]
    {
        use net::mdns_responder::{MdnsResponder, Service};
        let mdns = MdnsResponder::new(stack);
        let service = Service {
            instance: "Firmware",
            service_type: "_http._tcp",
            port: 80,
            txt: &["path=/"],
        };
        if mdns.add_service(&service).is_err() || mdns.start("firmware").is_err() {
            report(0xE3);
        }
    }

    let mut rx_buffer = [0u8; 1024];
    let mut tx_buffer = [0u8; 1024];
    let mut udp_rx_meta = [PacketMetadata::EMPTY; 4];
    let mut udp_tx_meta = [PacketMetadata::EMPTY; 4];
    let mut udp_rx_buffer = [0u8; 512];
    let mut udp_tx_buffer = [0u8; 512];
    let mut buf = [0u8; 256];

    loop {
        stack.wait_config_up().await;
        if let Some(cfg) = stack.config_v4() {
            report(u32::from_be_bytes(cfg.address.address().octets()));
        }

        // DNS: example.com, A record.
        let remote = match stack.dns_query("example.com", DnsQueryType::A).await {
            Ok(addrs) if !addrs.is_empty() => addrs[0],
            _ => IpAddress::v4(192, 0, 2, 1),
        };

        // TCP: connect, write, read.
        {
            let mut socket = TcpSocket::new(stack, &mut rx_buffer, &mut tx_buffer);
            socket.set_timeout(Some(Duration::from_secs(10)));
            match socket.connect((remote, 80)).await {
                Ok(()) => {
                    let _ = socket
                        .write(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n")
                        .await;
                    let _ = socket.flush().await;
                    match socket.read(&mut buf).await {
                        Ok(n) => report(n as u32 | (buf[0] as u32) << 16),
                        Err(_) => report(0xE1),
                    }
                    socket.close();
                }
                Err(_) => report(0xE0),
            }
        }

        // UDP: bind, send_to.
        {
            let mut socket = UdpSocket::new(
                stack,
                &mut udp_rx_meta,
                &mut udp_rx_buffer,
                &mut udp_tx_meta,
                &mut udp_tx_buffer,
            );
            if socket.bind(0).is_ok() {
                match socket
                    .send_to(b"hello from the firmware", (remote, 7))
                    .await
                {
                    Ok(()) => report(0x55),
                    Err(_) => report(0xE2),
                }
            }
        }

        Timer::after(Duration::from_secs(5)).await;
    }
}
