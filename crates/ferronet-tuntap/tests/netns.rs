//! Tests on real TAP and TUN interfaces. They need root (`CAP_NET_ADMIN`, `CAP_SYS_ADMIN`
//! for network namespaces), `/dev/net/tun` and the `ip` tool.
//!
//! Each test re-runs itself (this test binary, filtered to that one test) inside a network
//! namespace it creates and deletes, via `ip netns exec`: every interface, address and frame
//! stays inside that namespace. Without root they print `SKIP: ...` and pass, except under
//! `CI=true`, where they fail. Only the documentation prefixes 192.0.2.0/24 and 2001:db8::/32
//! are used.

use std::future::{Future, poll_fn};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::pin::pin;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use embassy_net_driver::{Driver, HardwareAddress, LinkState, TxToken};
use ferronet::tcp::TcpSocket;
use ferronet::udp::{PacketMetadata, UdpSocket as FerroUdp};
use ferronet::{
    Config, ConfigV6, Ipv4Address, Ipv4Cidr, Ipv6Address, Ipv6Cidr, StackResources, StaticConfigV4,
    StaticConfigV6,
};
use ferronet_tuntap::{Error, TapDevice, TunDevice};
// Links ferronet-sim's embassy-time driver (a real clock with a timer thread).
use ferronet_sim as _;

/// Set in the child process that runs a test body inside the namespace.
const INNER: &str = "FERRONET_TUNTAP_IN_NETNS";
/// How long a test body may take inside its namespace.
const CHILD_LIMIT: Duration = Duration::from_secs(90);

/// Deletes the namespace when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn skip_or_fail(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why} (CI=true: not skipping)");
    }
    eprintln!("SKIP: {why}");
}

/// In the test process: runs test `name` in a fresh namespace and returns false. In the
/// child inside the namespace: returns true, so the caller runs the body.
fn run_in_netns(name: &str) -> bool {
    if std::env::var_os(INNER).is_some() {
        return true;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        skip_or_fail(&format!(
            "{name} needs root (TAP/TUN devices in a network namespace)"
        ));
        return false;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        skip_or_fail(&format!("{name} needs /dev/net/tun"));
        return false;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        skip_or_fail(&format!("{name} needs the `ip` tool (iproute2)"));
        return false;
    }
    let ns = Netns(format!("ferronet-tt-{}-{}", std::process::id(), name));
    let status = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .expect("run ip netns add");
    assert!(status.success(), "ip netns add {} failed", ns.0);
    let exe = std::env::current_exe().expect("test binary path");
    // The child's output is kept (and shown only on failure), so that its own test summary
    // lines do not mix with this process's.
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the test in the namespace");
    let collect = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = collect(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + CHILD_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = format!(
        "--- stdout:\n{}\n--- stderr:\n{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    match status {
        None => panic!(
            "{name} did not finish within {CHILD_LIMIT:?} in namespace {}\n{output}",
            ns.0
        ),
        Some(s) if !s.success() => panic!("{name} failed in namespace {}\n{output}", ns.0),
        Some(_) => {}
    }
    false
}

/// Runs `ip ARGS` (inside the namespace) and checks that it succeeded; returns its stdout.
fn ip(args: &str) -> String {
    let out = Command::new("ip")
        .args(args.split_whitespace())
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `main` and `background` (which never ends) on this thread until `main` completes.
fn block_on_with<T>(background: impl Future, main: impl Future<Output = T>) -> T {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut background = pin!(background);
    let mut main = pin!(main);
    loop {
        if let Poll::Ready(v) = main.as_mut().poll(&mut cx) {
            return v;
        }
        let _ = background.as_mut().poll(&mut cx);
        if let Poll::Ready(v) = main.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

fn leak<T>(t: T) -> &'static mut T {
    Box::leak(Box::new(t))
}

fn v4_config(host: u8) -> Config {
    Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 0, 2, host), 24),
        gateway: None,
        dns_servers: heapless::Vec::new(),
    })
}

/// A ferronet stack on `driver` serving TCP echo and UDP echo on port 7 until `tcp_conns`
/// TCP connections were served (or 30 s passed).
///
/// The UDP echo answers every datagram, however many come: the client resends a datagram
/// whose echo is late, so the server cannot know how many to expect. The tests make their TCP
/// connections after their UDP checks, so the last connection tells the server to stop.
fn serve_echo<D: Driver>(driver: D, config: Config, tcp_conns: usize) {
    let (stack, mut runner) = ferronet::new(driver, config, leak(StackResources::<4>::new()), 7);
    let app = async move {
        let tcp = async {
            let (mut rx, mut tx) = ([0u8; 4096], [0u8; 4096]);
            for _ in 0..tcp_conns {
                let mut s = TcpSocket::new(stack, &mut rx, &mut tx);
                s.accept(7).await.expect("accept");
                let mut buf = [0u8; 1024];
                loop {
                    let n = s.read(&mut buf).await.expect("read");
                    if n == 0 {
                        break;
                    }
                    let mut off = 0;
                    while off < n {
                        off += s.write(&buf[off..n]).await.expect("write");
                    }
                }
                s.close();
                let _ = s.flush().await;
            }
        };
        let udp = async {
            let (mut rm, mut rb, mut tm, mut tb) = (
                [PacketMetadata::EMPTY; 4],
                [0u8; 2048],
                [PacketMetadata::EMPTY; 4],
                [0u8; 2048],
            );
            let mut u = FerroUdp::new(stack, &mut rm, &mut rb, &mut tm, &mut tb);
            u.bind(7).expect("bind");
            let mut buf = [0u8; 1500];
            loop {
                let (n, meta) = u.recv_from(&mut buf).await.expect("recv");
                u.send_to(&buf[..n], meta).await.expect("send");
            }
        };
        // Until the TCP echo has served its connections; the UDP echo never ends.
        let tcp_then_stop = async {
            let mut tcp = pin!(tcp);
            let mut udp = pin!(udp);
            poll_fn(|cx| {
                let _: Poll<()> = udp.as_mut().poll(cx);
                tcp.as_mut().poll(cx)
            })
            .await;
        };
        embassy_time::with_timeout(embassy_time::Duration::from_secs(30), tcp_then_stop)
            .await
            .expect("the TCP echo did not serve its connections within 30 s");
        // Let the last FIN/ACK go out.
        embassy_time::Timer::after_millis(200).await;
    };
    block_on_with(runner.run(), app);
}

fn tcp_echo_check(addr: SocketAddr, len: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                eprintln!("connect {addr}: {e}, retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("connect {addr}: {e}"),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut writer = stream.try_clone().unwrap();
    let to_send = data.clone();
    let sender = std::thread::spawn(move || {
        writer.write_all(&to_send).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).unwrap();
    sender.join().unwrap();
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echoed bytes differ");
}

/// Sends `count` distinct datagrams to the echo server at `remote`, one at a time, and checks
/// that each comes back intact. A datagram whose echo is late is sent again (the first may
/// wait for neighbour resolution), up to 10 times, 500 ms each; late echoes of earlier
/// datagrams are recognised by their content and skipped. Anything else fails the test.
fn udp_echo_check(local: &str, remote: SocketAddr, count: usize) {
    const ATTEMPTS: usize = 10;
    const WAIT: Duration = Duration::from_millis(500);
    let sock = UdpSocket::bind(local).unwrap();
    let mut answered = std::collections::BTreeSet::new();
    let mut buf = [0u8; 2048];
    for i in 0..count {
        let msg = format!("datagram {i}");
        'attempts: for _attempt in 0..ATTEMPTS {
            sock.send_to(msg.as_bytes(), remote).unwrap();
            let deadline = Instant::now() + WAIT;
            // Bounded: each pass reads one datagram or ends at the deadline.
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .unwrap();
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    break;
                };
                assert_eq!(from, remote);
                let got = std::str::from_utf8(&buf[..n]).expect("an echo of a datagram sent");
                let j: usize = got
                    .strip_prefix("datagram ")
                    .and_then(|j| j.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected echo {got:?}"));
                assert!(j <= i, "echo {got:?} of a datagram not sent yet");
                answered.insert(j);
                if j == i {
                    break 'attempts;
                }
            }
        }
        assert!(
            answered.contains(&i),
            "no echo of {msg:?} from {remote} after {ATTEMPTS} tries"
        );
    }
    assert_eq!(answered.len(), count);
}

#[test]
fn tap_link_state_mtu_and_mac_follow_the_interface() {
    if !run_in_netns("tap_link_state_mtu_and_mac_follow_the_interface") {
        return;
    }
    let mut tap = TapDevice::open("tap0").expect("open tap0");
    assert_eq!(tap.name(), "tap0");
    assert_eq!(tap.mtu(), 1500);
    assert_eq!(tap.capabilities().max_transmission_unit, 1514);
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(
        tap.link_state(&mut cx) == LinkState::Down,
        "a new TAP is down"
    );

    ip("link set tap0 up");
    wait_until("the link is up", Duration::from_secs(3), || {
        tap.link_state(&mut cx) == LinkState::Up
    });
    ip("link set tap0 down");
    wait_until("the link is down", Duration::from_secs(3), || {
        !tap.is_link_up()
    });

    tap.set_mtu(1400).expect("set MTU");
    assert_eq!(tap.mtu(), 1400);
    assert_eq!(tap.handle().interface_mtu().unwrap(), 1400);
    assert!(ip("link show tap0").contains("mtu 1400"));
    assert_eq!(tap.capabilities().max_transmission_unit, 1414);

    let ifmac = tap.interface_mac_address().unwrap();
    assert_eq!(tap.mac_address(), ferronet_tuntap::stack_mac_for(ifmac));
    assert_eq!(
        tap.hardware_address(),
        HardwareAddress::Ethernet(tap.mac_address())
    );
    let new = [0x02, 0x00, 0x5e, 0x00, 0x53, 0x42];
    tap.set_interface_mac_address(new).expect("set MAC");
    assert_eq!(tap.interface_mac_address().unwrap(), new);
    assert!(ip("link show tap0").contains("02:00:5e:00:53:42"));
    assert!(matches!(
        tap.set_interface_mac_address([0x01, 0, 0x5e, 0, 0, 1]),
        Err(Error::InvalidMac(_))
    ));
}

#[test]
fn open_errors_are_typed() {
    if !run_in_netns("open_errors_are_typed") {
        return;
    }
    let _tap = TapDevice::open("tap0").expect("open tap0");
    let e = TapDevice::open("tap0").unwrap_err();
    assert!(matches!(e, Error::Busy { .. }), "{e:?}");
    let e = TunDevice::open("tap0").unwrap_err();
    assert!(matches!(e, Error::WrongKind { .. }), "{e:?}");
    assert!(e.to_string().contains("TUN"), "{e}");
    let e = TapDevice::open("lo").unwrap_err();
    assert!(matches!(e, Error::WrongKind { .. }), "{e:?}");

    // open_existing attaches to an existing (persistent) device and never creates one.
    let e = TapDevice::open_existing("tap2").unwrap_err();
    assert!(matches!(e, Error::NoSuchInterface { .. }), "{e:?}");
    ip("tuntap add dev tap2 mode tap");
    let tap2 = TapDevice::open_existing("tap2").expect("open the persistent tap2");
    assert_eq!(tap2.name(), "tap2");
    drop(tap2);
    assert!(
        ip("link show").contains("tap2"),
        "a persistent device outlives the descriptor"
    );

    // Without CAP_NET_ADMIN (dropped on one thread only) creating an interface is refused.
    let e = std::thread::spawn(|| {
        drop_cap_net_admin();
        TapDevice::open("tap1").unwrap_err()
    })
    .join()
    .unwrap();
    assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
}

/// Removes CAP_NET_ADMIN from the calling thread's effective capabilities (capabilities are
/// per thread in Linux; the raw system call does not propagate to other threads).
fn drop_cap_net_admin() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget(2) with a version-3 header and room for its two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_NET_ADMIN);
    // SAFETY: capset(2) with the same header and the two data structs read above.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn deleting_the_interface_takes_the_link_down_for_good() {
    if !run_in_netns("deleting_the_interface_takes_the_link_down_for_good") {
        return;
    }
    let mut tap = TapDevice::open("tap0").expect("open tap0");
    tap.handle().set_interface_up(true).expect("set up");
    wait_until("the link is up", Duration::from_secs(3), || {
        tap.is_link_up()
    });
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    // Take what the kernel sent on link-up (IPv6 router solicitations, MLD reports), so the
    // device waits for readability.
    for _ in 0..100 {
        if tap.receive(&mut cx).is_none() {
            break;
        }
    }
    ip("link del tap0");
    wait_until("the link is down", Duration::from_secs(3), || {
        tap.link_state(&mut cx) == LinkState::Down
    });
    // Frames sent now are dropped, not kept forever.
    let token = tap.transmit(&mut cx).expect("a token");
    token.consume(60, |b| b.fill(0xff));
    assert!(tap.transmit(&mut cx).is_some());
    assert_eq!(tap.stats().tx_dropped, 1);
}

#[test]
fn ferronet_on_a_tap_device_talks_to_the_kernel() {
    if !run_in_netns("ferronet_on_a_tap_device_talks_to_the_kernel") {
        return;
    }
    let tap = TapDevice::open("tap0").expect("open tap0");
    let handle = tap.handle();
    ip("addr add 192.0.2.1/24 dev tap0");
    ip("link set tap0 up");
    let server = std::thread::spawn(move || serve_echo(tap, v4_config(2), 2));
    let remote: SocketAddr = (Ipv4Addr::new(192, 0, 2, 2), 7).into();
    udp_echo_check("192.0.2.1:0", remote, 5);
    tcp_echo_check(remote, 200_000);
    tcp_echo_check(remote, 10);
    server.join().expect("server");
    let s = handle.stats();
    assert!(s.rx_frames > 100 && s.tx_frames > 100, "{s:?}");
    assert_eq!(s.tx_dropped, 0, "{s:?}");
    // The kernel learnt the stack's MAC address by ARP.
    let neigh = ip("neigh show 192.0.2.2 dev tap0");
    let stack_mac = ferronet_tuntap::stack_mac_for(handle.interface_mac_address().unwrap());
    assert!(
        neigh.contains(&ferronet_tuntap::format_mac(stack_mac)),
        "{neigh}"
    );
}

#[test]
fn ferronet_on_a_tun_device_talks_to_the_kernel_over_ipv4_and_ipv6() {
    if !run_in_netns("ferronet_on_a_tun_device_talks_to_the_kernel_over_ipv4_and_ipv6") {
        return;
    }
    let tun = TunDevice::open("tun0").expect("open tun0");
    assert_eq!(tun.hardware_address(), HardwareAddress::Ip);
    assert_eq!(tun.capabilities().max_transmission_unit, 1500);
    ip("addr add 192.0.2.1/24 dev tun0");
    ip("-6 addr add 2001:db8::1/64 dev tun0 nodad");
    ip("link set tun0 up");
    let mut config = v4_config(2);
    config.ipv6 = ConfigV6::Static(StaticConfigV6 {
        address: Ipv6Cidr::new(Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2), 64),
        gateway: None,
        dns_servers: heapless::Vec::new(),
    });
    let server = std::thread::spawn(move || serve_echo(tun, config, 2));
    let v4: SocketAddr = (Ipv4Addr::new(192, 0, 2, 2), 7).into();
    let v6: SocketAddr = "[2001:db8::2]:7".parse().unwrap();
    udp_echo_check("192.0.2.1:0", v4, 3);
    udp_echo_check("[2001:db8::1]:0", v6, 3);
    tcp_echo_check(v4, 100_000);
    tcp_echo_check(v6, 100_000);
    server.join().expect("server");
}

/// Whether `cmd ARGS` can be run at all.
fn tool_works(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Linux DHCP clients for the DHCP server test, each in a network namespace of its own with a
/// veth pair whose other end is a port of the bridge `br0`. Dropping it kills the clients
/// (by process id) and deletes the namespaces.
///
/// The clients' scripts never remove a leased address, on purpose. Removing an interface's
/// last IPv4 address makes Linux flush the interface's neighbour table (`fib_disable_ip` ->
/// `arp_ifdown`), which also drops the packets waiting there for an ARP reply. A client sends
/// its DHCPRELEASE (unicast, from the leased address) and then runs its script: a script that
/// removed the address would race ferronet's ARP reply, and the RELEASE would be lost whenever
/// that reply came later than the script's `ip addr flush` (a loaded host). A renewal that
/// re-added the address would also empty the neighbour table, so every RELEASE would need a
/// fresh ARP exchange. So `bound`/`renew` replace the address only if it changed, and the
/// release events only log: the RELEASE leaves at once (the server's MAC is still cached
/// from the renewal), or, if it must wait for ARP, stays queued until the reply comes.
struct DhcpClients {
    dir: std::path::PathBuf,
    /// (namespace, interface inside it, running client).
    clients: Vec<(Netns, String, Option<std::process::Child>)>,
}

impl Drop for DhcpClients {
    fn drop(&mut self) {
        for (_, _, child) in &mut self.clients {
            if let Some(c) = child {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Client `i`'s MAC address.
fn client_mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x20, i as u8]
}

impl DhcpClients {
    fn new(count: usize) -> Self {
        let dir = std::env::temp_dir().join(format!("ferronet-dhcps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut clients = Vec::new();
        for i in 0..count {
            let ns = Netns(format!("fdhcps-{}-c{i}", std::process::id()));
            ip(&format!("netns add {}", ns.0));
            ip(&format!("link add dv{i} type veth peer name dc{i}"));
            ip(&format!("link set dc{i} netns {}", ns.0));
            ip(&format!("link set dv{i} master br0"));
            ip(&format!("link set dv{i} up"));
            let mac = ferronet_tuntap::format_mac(client_mac(i));
            ip(&format!("-n {} link set dc{i} address {mac}", ns.0));
            ip(&format!("-n {} link set dc{i} up", ns.0));
            ip(&format!("-n {} link set lo up", ns.0));
            clients.push((ns, format!("dc{i}"), None));
        }
        Self { dir, clients }
    }

    fn log(&self, i: usize) -> std::path::PathBuf {
        self.dir.join(format!("c{i}.log"))
    }

    /// The events client `i`'s script recorded, as (event, address).
    fn events(&self, i: usize) -> Vec<(String, String)> {
        std::fs::read_to_string(self.log(i))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut w = l.split_whitespace();
                let e = w.next().unwrap_or_default().to_string();
                (e, w.next().unwrap_or_default().to_string())
            })
            .collect()
    }

    /// The address client `i` was last bound to (bound, renew, ...), if any.
    fn address(&self, i: usize) -> Option<Ipv4Addr> {
        self.events(i)
            .iter()
            .rev()
            .find(|(e, _)| {
                ["bound", "renew", "BOUND", "RENEW", "REBIND", "REBOOT"].contains(&e.as_str())
            })
            .and_then(|(_, a)| a.parse().ok())
    }

    /// Starts busybox udhcpc for client `i` (`extra`: more options, e.g. `-B`).
    fn udhcpc(&mut self, i: usize, extra: &[&str]) {
        let script = self.dir.join(format!("c{i}.sh"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ncase \"$1\" in\n\
                 bound|renew) ip -4 addr show dev \"$interface\" | grep -qF \" $ip/\" || ip addr flush dev \"$interface\"; ip addr replace \"$ip/$mask\" dev \"$interface\"; echo \"$1 $ip\" >>{log};;\n\
                 deconfig) echo deconfig >>{log};;\n\
                 *) echo \"$1\" >>{log};;\nesac\n",
                log = self.log(i).display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let (ns, ifname, child) = &mut self.clients[i];
        let c = Command::new("ip")
            .args([
                "netns", "exec", &ns.0, "busybox", "udhcpc", "-f", "-i", ifname,
            ])
            .args(["-s", script.to_str().unwrap(), "-T", "1", "-A", "1"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run udhcpc");
        *child = Some(c);
    }

    fn dhclient_args(&self, i: usize) -> Vec<String> {
        let d = &self.dir;
        vec![
            "-cf".into(),
            "/dev/null".into(),
            "-sf".into(),
            d.join(format!("c{i}.sh")).display().to_string(),
            "-lf".into(),
            d.join(format!("c{i}.leases")).display().to_string(),
            "-pf".into(),
            d.join(format!("c{i}.pid")).display().to_string(),
            self.clients[i].1.clone(),
        ]
    }

    /// Starts ISC dhclient for client `i`, in the foreground.
    fn dhclient(&mut self, i: usize) {
        let script = self.dir.join(format!("c{i}.sh"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ncase \"$reason\" in\n\
                 BOUND|RENEW|REBIND|REBOOT) ip -4 addr show dev \"$interface\" | grep -qF \" $new_ip_address/\" || ip addr flush dev \"$interface\"; ip addr replace \"$new_ip_address/24\" dev \"$interface\"; echo \"$reason $new_ip_address\" >>{log};;\n\
                 PREINIT) ;;\n\
                 *) echo \"$reason\" >>{log};;\nesac\n",
                log = self.log(i).display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let args = self.dhclient_args(i);
        let ns = self.clients[i].0.0.clone();
        let c = Command::new("ip")
            .args(["netns", "exec", &ns, "dhclient", "-d"])
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run dhclient");
        self.clients[i].2 = Some(c);
    }

    /// Releases client `i`'s lease the client's own way, and stops it.
    fn release(&mut self, i: usize, dhclient: bool) {
        if dhclient {
            let args = self.dhclient_args(i);
            let ns = self.clients[i].0.0.clone();
            let status = Command::new("timeout")
                .args(["10", "ip", "netns", "exec", &ns, "dhclient", "-r"])
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run dhclient -r");
            assert!(status.success(), "dhclient -r: {status}");
        } else if let Some(c) = &self.clients[i].2 {
            // SIGUSR2: udhcpc releases the lease and waits.
            // SAFETY: kill has no memory-safety preconditions; the pid is our own child's,
            // not yet waited for, so it cannot have been reused.
            let r = unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGUSR2) };
            assert_eq!(r, 0);
        }
    }

    /// Kills client `i` without letting it say anything (a client that vanishes).
    fn vanish(&mut self, i: usize) {
        if let Some(mut c) = self.clients[i].2.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for client `i`'s process to end by itself; its exit status.
    fn wait_exit(&mut self, i: usize, limit: Duration) -> std::process::ExitStatus {
        let c = self.clients[i].2.as_mut().expect("client running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = c.try_wait().expect("wait for the client") {
                self.clients[i].2 = None;
                return s;
            }
            assert!(Instant::now() < deadline, "client {i} did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The DHCPv4 server against Linux DHCP clients (busybox udhcpc and ISC dhclient), each in a
/// namespace of its own on one bridge with ferronet's TAP device: 8 clients get distinct
/// addresses of an 8-address pool, a ninth gets no answer (never a NAK), every client renews
/// and keeps its address, a released address is free at once in the server's table, and
/// after clients vanish without a word their leases end and new clients get addresses.
#[test]
fn dhcp_server_serves_linux_clients_on_a_bridge() {
    let name = "dhcp_server_serves_linux_clients_on_a_bridge";
    if std::env::var_os(INNER).is_none() {
        for (tool, args) in [
            ("busybox", &["udhcpc", "--help"][..]),
            ("dhclient", &["--version"][..]),
        ] {
            if !tool_works(tool, args) {
                skip_or_fail(&format!(
                    "{name} needs {tool} (scripts/setup.sh installs it)"
                ));
                return;
            }
        }
    }
    if !run_in_netns(name) {
        return;
    }
    use ferronet::dhcp_server::{DhcpLease, DhcpServerConfig, LeaseState};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    const LEASE_SECS: u64 = 20;
    ip("link add br0 type bridge");
    ip("link set br0 up");
    let tap = TapDevice::open("tap0").expect("open tap0");
    ip("link set tap0 master br0");
    ip("link set tap0 up");

    // The server: ferronet on tap0, 192.0.2.1/24, pool 192.0.2.100-107. Its thread publishes
    // the lease table every 50 ms until told to stop.
    let table: Arc<Mutex<Vec<DhcpLease>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (table, stop) = (table.clone(), stop.clone());
        std::thread::spawn(move || {
            let (stack, mut runner) =
                ferronet::new(tap, v4_config(1), leak(StackResources::<4>::new()), 11);
            let mut c = DhcpServerConfig::new(
                Ipv4Address::new(192, 0, 2, 100),
                Ipv4Address::new(192, 0, 2, 107),
            );
            c.lease_duration = embassy_time::Duration::from_secs(LEASE_SECS);
            c.gateway = Some(Ipv4Address::new(192, 0, 2, 1));
            c.dns_servers = heapless::Vec::from_slice(&[Ipv4Address::new(192, 0, 2, 1)]).unwrap();
            stack.start_dhcp_server(c).expect("start the DHCP server");
            let app = async {
                while !stop.load(Ordering::Relaxed) {
                    *table.lock().unwrap() = stack.dhcp_leases().to_vec();
                    embassy_time::Timer::after_millis(50).await;
                }
            };
            block_on_with(runner.run(), app);
        })
    };
    let leases = || table.lock().unwrap().clone();
    let lease_of = |i: usize| {
        leases()
            .into_iter()
            .find(|l| l.hardware_address.0 == client_mac(i))
    };

    let mut clients = DhcpClients::new(12);
    // 0, 1: udhcpc asking for broadcast replies; 2, 3: udhcpc; 4-7: dhclient (unicast replies).
    clients.udhcpc(0, &["-B"]);
    clients.udhcpc(1, &["-B"]);
    clients.udhcpc(2, &[]);
    clients.udhcpc(3, &[]);
    for i in 4..8 {
        clients.dhclient(i);
    }
    wait_until("8 clients are bound", Duration::from_secs(20), || {
        (0..8).all(|i| clients.address(i).is_some())
    });
    let addrs: Vec<Ipv4Addr> = (0..8).map(|i| clients.address(i).unwrap()).collect();
    let mut sorted = addrs.clone();
    sorted.sort();
    sorted.dedup();
    let pool: Vec<Ipv4Addr> = (100..108).map(|h| Ipv4Addr::new(192, 0, 2, h)).collect();
    assert_eq!(sorted, pool, "distinct addresses of the pool");
    wait_until(
        "the server's table shows 8 leases",
        Duration::from_secs(2),
        || {
            (0..8).all(|i| {
                lease_of(i).is_some_and(|l| l.state == LeaseState::Bound && l.address == addrs[i])
            })
        },
    );

    // A ninth client: the pool is full, so no OFFER, and no NAK either.
    clients.udhcpc(8, &["-n", "-t", "3"]);
    let status = clients.wait_exit(8, Duration::from_secs(15));
    assert!(!status.success(), "udhcpc got a lease from a full pool");
    assert!(clients.address(8).is_none());
    assert!(
        !clients.events(8).iter().any(|(e, _)| e == "nak"),
        "{:?}",
        clients.events(8)
    );

    // Every client renews at T1 (10 s) and keeps its address.
    wait_until("every client renewed", Duration::from_secs(20), || {
        (0..8).all(|i| {
            clients
                .events(i)
                .iter()
                .any(|(e, _)| e == "renew" || e == "RENEW")
        })
    });
    for (i, a) in addrs.iter().enumerate() {
        assert_eq!(clients.address(i), Some(*a), "client {i} after renewal");
        assert!(
            !clients
                .events(i)
                .iter()
                .any(|(e, _)| e == "nak" || e == "EXPIRE"),
            "client {i}: {:?}",
            clients.events(i)
        );
    }

    // Release: udhcpc 0 (SIGUSR2) and dhclient 4 (-r); their entries are free at once.
    clients.release(0, false);
    clients.release(4, true);
    wait_until("released leases are free", Duration::from_secs(5), || {
        [0, 4]
            .iter()
            .all(|&i| lease_of(i).is_some_and(|l| l.state == LeaseState::Free))
    });

    // Everyone vanishes without a word; once the leases end, new clients get addresses.
    for i in 0..8 {
        clients.vanish(i);
    }
    wait_until(
        "every lease ended",
        Duration::from_secs(LEASE_SECS + 5),
        || {
            let l = leases();
            l.len() == 8 && l.iter().all(|l| l.state == LeaseState::Free)
        },
    );
    for i in 8..12 {
        clients.udhcpc(i, &[]);
    }
    wait_until("4 new clients are bound", Duration::from_secs(20), || {
        (8..12).all(|i| clients.address(i).is_some())
    });
    let mut new: Vec<Ipv4Addr> = (8..12).map(|i| clients.address(i).unwrap()).collect();
    new.sort();
    new.dedup();
    assert_eq!(new.len(), 4);
    assert!(new.iter().all(|a| pool.contains(a)), "{new:?}");
    drop(clients);

    stop.store(true, Ordering::Relaxed);
    server.join().expect("server thread");
}

/// A driver wrapper that keeps a copy of every frame the stack sends.
struct Recorder<D> {
    inner: D,
    sent: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

struct RecordingTx<T> {
    inner: T,
    sent: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl<T: TxToken> TxToken for RecordingTx<T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let sent = self.sent;
        self.inner.consume(len, |buf| {
            let r = f(buf);
            sent.lock().expect("recorder lock").push(buf.to_vec());
            r
        })
    }
}

impl<D: Driver> Driver for Recorder<D> {
    type RxToken<'a>
        = D::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = RecordingTx<D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let sent = self.sent.clone();
        self.inner
            .receive(cx)
            .map(|(rx, tx)| (rx, RecordingTx { inner: tx, sent }))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<Self::TxToken<'_>> {
        let sent = self.sent.clone();
        self.inner
            .transmit(cx)
            .map(|tx| RecordingTx { inner: tx, sent })
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        self.inner.link_state(cx)
    }

    fn capabilities(&self) -> embassy_net_driver::Capabilities {
        self.inner.capabilities()
    }

    fn hardware_address(&self) -> HardwareAddress {
        self.inner.hardware_address()
    }
}

/// (sequence number, payload length, flags) of every TCP segment from `port` in `frames`
/// (Ethernet, IPv4).
fn tcp_segments_from(frames: &[Vec<u8>], port: u16) -> Vec<(u32, usize, u8)> {
    frames
        .iter()
        .filter(|f| f.len() >= 54 && f[12..14] == [0x08, 0x00] && f[23] == 6)
        .filter_map(|f| {
            let ihl = usize::from(f[14] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
            let tcp = f.get(14 + ihl..14 + total)?;
            (u16::from_be_bytes([tcp[0], tcp[1]]) == port).then(|| {
                let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
                let data_off = usize::from(tcp[12] >> 4) * 4;
                (seq, tcp.len() - data_off, tcp[13])
            })
        })
        .collect()
}

/// A server that switches keep-alive on right after `accept` (picoserve does) sends Linux no
/// keep-alive probe before the interval has passed. smoltcp alone probes at once, and Linux
/// then delays its ACK of the response by about 40 ms (issue 13).
#[test]
fn keep_alive_after_accept_sends_linux_no_early_probe() {
    if !run_in_netns("keep_alive_after_accept_sends_linux_no_early_probe") {
        return;
    }
    let tap = TapDevice::open("tap0").expect("open tap0");
    ip("addr add 192.0.2.1/24 dev tap0");
    ip("link set tap0 up");
    let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let driver = Recorder {
        inner: tap,
        sent: sent.clone(),
    };
    const RESPONSE_LEN: usize = 64 * 1024;
    let server = std::thread::spawn(move || {
        let (stack, mut runner) =
            ferronet::new(driver, v4_config(2), leak(StackResources::<2>::new()), 9);
        let app = async move {
            let (mut rx, mut tx) = ([0u8; 4096], [0u8; 8192]);
            let mut s = TcpSocket::new(stack, &mut rx, &mut tx);
            s.accept(80).await.expect("accept");
            s.set_keep_alive(Some(embassy_time::Duration::from_secs(30)));
            let mut req = [0u8; 4];
            embedded_io_async::Read::read_exact(&mut s, &mut req)
                .await
                .expect("request");
            assert_eq!(&req, b"GET\n");
            let body = [b'x'; RESPONSE_LEN];
            embedded_io_async::Write::write_all(&mut s, &body)
                .await
                .expect("response");
            s.flush().await.expect("flush");
            s.close();
            let _ = s.flush().await;
        };
        block_on_with(
            runner.run(),
            embassy_time::with_timeout(embassy_time::Duration::from_secs(30), app),
        )
        .expect("the server did not finish within 30 s");
    });
    let remote: SocketAddr = (Ipv4Addr::new(192, 0, 2, 2), 80).into();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect_timeout(&remote, Duration::from_secs(2)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                eprintln!("connect {remote}: {e}, retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("connect {remote}: {e}"),
        }
    };
    // A client that takes a moment before its request: smoltcp alone would probe meanwhile.
    std::thread::sleep(Duration::from_millis(200));
    stream.write_all(b"GET\n").expect("send the request");
    let mut body = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    stream.read_to_end(&mut body).expect("read the response");
    assert_eq!(body.len(), RESPONSE_LEN);
    assert!(body.iter().all(|&b| b == b'x'));
    server.join().expect("server");

    // No segment from the server re-sent the byte before its send sequence (a keep-alive
    // probe); every data segment is new data.
    let segments = tcp_segments_from(&sent.lock().expect("recorder lock"), 80);
    assert!(segments.len() > 10, "{segments:?}");
    let mut next: Option<u32> = None;
    for &(seq, len, flags) in &segments {
        if let Some(n) = next {
            assert!(
                !(seq == n.wrapping_sub(1) && len <= 1),
                "keep-alive probe (seq {seq}, {len} bytes, flags {flags:#x}) in {segments:?}"
            );
        }
        let syn_fin = u32::from(flags & 0x03 != 0);
        let end = seq.wrapping_add(len as u32 + syn_fin);
        next = Some(next.map_or(end, |n| {
            if end.wrapping_sub(n) as i32 > 0 {
                end
            } else {
                n
            }
        }));
    }
}

/// Runs `script` with bash in a mount namespace of its own (so that it can put a private
/// tmpfs on /run for a D-Bus system bus and avahi-daemon of its own), for at most `limit`.
/// Returns its status and output.
fn run_private_bash(script: &str, args: &[&str], limit: Duration) -> (bool, String) {
    let mut child = Command::new("timeout")
        .args([
            "-k",
            "2",
            &limit.as_secs().to_string(),
            "unshare",
            "-m",
            "bash",
            "-c",
            script,
            "bash",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run unshare");
    let mut out = String::new();
    let mut err = String::new();
    let _ = child.stdout.take().expect("piped").read_to_string(&mut out);
    let _ = child.stderr.take().expect("piped").read_to_string(&mut err);
    let ok = child.wait().expect("wait").success();
    (ok, format!("{out}\n--- stderr:\n{err}"))
}

/// The Linux side of the mDNS test: a D-Bus system bus and avahi-daemon (host name
/// `linuxpeer`) on $2, then `avahi-resolve` and `avahi-browse` against ferronet. $1 is a
/// scratch directory.
const AVAHI_SCRIPT: &str = r#"
set -euo pipefail
T=$1 IF=$2 NAME=$3
mount -t tmpfs tmpfs /run
mkdir -p /run/dbus /run/avahi-daemon
cat >"$T/dbus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/> <allow own="*"/> <allow send_destination="*"/> <allow receive_sender="*"/>
  </policy>
</busconfig>
CONF
cat >"$T/avahi.conf" <<CONF
[server]
host-name=linuxpeer
use-ipv4=yes
use-ipv6=yes
allow-interfaces=$IF
enable-dbus=yes
[publish]
publish-hinfo=no
publish-workstation=no
CONF
dbus=$(dbus-daemon --config-file="$T/dbus.conf" --fork --nopidfile --print-pid)
avahi-daemon --no-drop-root --no-chroot --no-rlimits --no-proc-title -f "$T/avahi.conf" \
    >"$T/avahi.log" 2>&1 &
avahi=$!
trap 'kill $avahi $dbus 2>/dev/null || true' EXIT
# Until the daemon has claimed its own name (bounded: 100 x 0.1 s).
for _ in $(seq 100); do
    grep -q "Server startup complete" "$T/avahi.log" && break
    sleep 0.1
done
grep -q "Server startup complete" "$T/avahi.log" || { cat "$T/avahi.log" >&2; exit 1; }
echo "RESOLVE4 $(avahi-resolve -4 -n "$NAME.local")"
echo "RESOLVE6 $(avahi-resolve -6 -n "$NAME.local")"
avahi-browse -rtpk _http._tcp | sed 's/^/BROWSE /'
# Keep avahi up until the test is done with ferronet's own queries (bounded: 900 x 0.1 s).
for _ in $(seq 900); do
    [ -e "$T/done" ] && break
    sleep 0.1
done
"#;

#[test]
fn avahi_resolves_and_browses_the_mdns_responder() {
    use ferronet::mdns_responder::{MdnsResponder, Service};
    const NAME: &str = "ferronet-mdns";
    for tool in [
        "avahi-daemon",
        "avahi-resolve",
        "avahi-browse",
        "dbus-daemon",
        "unshare",
    ] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            skip_or_fail(&format!(
                "the mDNS test needs {tool} (avahi-daemon, avahi-utils, dbus, util-linux)"
            ));
            return;
        }
    }
    if !run_in_netns("avahi_resolves_and_browses_the_mdns_responder") {
        return;
    }
    let tap = TapDevice::open("tap0").expect("open tap0");
    ip("addr add 192.0.2.1/24 dev tap0");
    ip("-6 addr add 2001:db8::1/64 dev tap0 nodad");
    ip("link set tap0 up");
    let mut config = v4_config(2);
    config.ipv6 = ConfigV6::Static(StaticConfigV6 {
        address: Ipv6Cidr::new(Ipv6Address::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2), 64),
        gateway: None,
        dns_servers: heapless::Vec::new(),
    });

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let resolved = Arc::new(std::sync::Mutex::new(None));
    let (stop2, resolved2) = (stop.clone(), resolved.clone());
    let server = std::thread::spawn(move || {
        let (stack, mut runner) =
            ferronet::new(tap, config, leak(StackResources::<4>::new()), 0x6d64);
        let app = async move {
            let mdns = MdnsResponder::new(stack);
            mdns.add_service(&Service {
                instance: "Ferronet web",
                service_type: "_http._tcp",
                port: 8080,
                txt: &["path=/status"],
            })
            .expect("add service");
            mdns.start(NAME).expect("start");
            assert_eq!(mdns.wait_claimed().await, Ok(()));
            // The mDNS query client beside the responder: resolve avahi's own name, retrying
            // until avahi is up (bounded).
            let deadline = embassy_time::Instant::now() + embassy_time::Duration::from_secs(40);
            while embassy_time::Instant::now() < deadline
                && !stop2.load(std::sync::atomic::Ordering::SeqCst)
            {
                if let Ok(a) = stack
                    .dns_query("linuxpeer.local", ferronet::dns::DnsQueryType::A)
                    .await
                {
                    *resolved2.lock().expect("lock") = Some(a.to_vec());
                    break;
                }
            }
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                embassy_time::Timer::after_millis(50).await;
            }
        };
        block_on_with(runner.run(), app);
    });

    let dir = std::env::temp_dir().join(format!("ferronet-avahi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let linux = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            run_private_bash(
                AVAHI_SCRIPT,
                &[dir.to_str().expect("utf-8 path"), "tap0", NAME],
                Duration::from_secs(75),
            )
        })
    };
    // Meanwhile ferronet's own mDNS query client resolves avahi's host name (smoltcp asks
    // ff02::fb first, then 224.0.0.251 after its 10 s timeout).
    let deadline = Instant::now() + Duration::from_secs(60);
    while resolved.lock().expect("lock").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(dir.join("done"), b"").expect("write done");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    server.join().expect("stack thread");
    let (ok, out) = linux.join().expect("avahi thread");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "avahi script failed:\n{out}");
    eprintln!("{out}");
    assert!(
        out.contains(&format!("RESOLVE4 {NAME}.local\t192.0.2.2\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("RESOLVE6 {NAME}.local\t2001:db8::2\n")),
        "{out}"
    );
    // Parsable avahi-browse: resolved lines start with "=", then interface, protocol,
    // instance, type, domain, host, address (of either family), port, TXT.
    let resolved_lines: Vec<Vec<&str>> = out
        .lines()
        .filter_map(|l| l.strip_prefix("BROWSE =;"))
        .map(|l| l.split(';').collect::<Vec<&str>>())
        // Only ours: avahi may publish services of its own (/etc/avahi/services).
        .filter(|f| f.get(2) == Some(&"Ferronet\\032web"))
        .collect();
    assert!(!resolved_lines.is_empty(), "{out}");
    for f in &resolved_lines {
        assert_eq!((f[0], f.len()), ("tap0", 9), "{out}");
        assert_eq!(
            f[2..6],
            [
                "Ferronet\\032web",
                "_http._tcp",
                "local",
                &format!("{NAME}.local")
            ],
            "{out}"
        );
        assert!(["192.0.2.2", "2001:db8::2"].contains(&f[6]), "{out}");
        assert_eq!(f[7..], ["8080", "\"path=/status\""], "{out}");
    }

    // ferronet's mDNS query client resolved avahi's name beside its responder.
    let got = resolved.lock().expect("lock").clone();
    assert_eq!(
        got,
        Some(vec![ferronet::IpAddress::Ipv4(Ipv4Address::new(
            192, 0, 2, 1
        ))])
    );
}
