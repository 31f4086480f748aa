//! ferronet firmware for QEMU's `mps2-an385` board: a Cortex-M3 with an SMSC LAN9118 Ethernet
//! controller, driven by `ferronet-lan9118`.
//!
//! At boot it takes a DHCP lease and prints it, then serves:
//!
//! - an HTTP status page on TCP port 80 (uptime, lease, link, counters of the stack and of the
//!   driver), [`HTTP_TASKS`] connections at once;
//! - TCP echo on port 7 ([`ECHO_TASKS`] connections at once) and UDP echo on port 7;
//! - a line-based control port on TCP [`control::PORT`] (`stats`, `dns NAME`,
//!   `get HOST:PORT/PATH`, `ping ADDRESS`, `exit CODE`, `reboot`);
//! - ICMP echo replies (smoltcp's `auto-icmp-echo-reply`).
//!
//! As a client it resolves names, fetches over HTTP and pings when the semihosting command line
//! ([`cmdline`]) or the control port asks. Output goes through semihosting; the verdict of a
//! scripted run is QEMU's exit status. The same source builds against embassy-net 0.9.1
//! (`--no-default-features --features use-embassy`); the stack counters then read as zero.
#![no_std]
#![no_main]

#[cfg(all(feature = "use-ferronet", feature = "use-embassy"))]
compile_error!("enable exactly one of the features use-ferronet, use-embassy");
#[cfg(not(any(feature = "use-ferronet", feature = "use-embassy")))]
compile_error!("enable one of the features use-ferronet, use-embassy");

#[cfg(feature = "use-embassy")]
use embassy_net as net;
#[cfg(feature = "use-ferronet")]
use ferronet as net;

mod board;
mod client;
mod cmdline;
mod control;
mod net_irq;
mod servers;
mod stack;
mod status;
mod time;

use cortex_m_rt::entry;
use embassy_executor::{InterruptExecutor, Spawner};
use embassy_time::Instant;
use ferronet_lan9118::{Config as DriverConfig, Lan9118, Mmio};
use net::{Config, DhcpConfig, Runner, Stack, StackResources};
use static_cell::StaticCell;

use board::Irq;
use cmdline::Command;

/// Connections the status page serves at once (one task and socket each).
pub const HTTP_TASKS: usize = 8;
/// TCP echo connections served at once.
pub const ECHO_TASKS: usize = 4;
/// Sockets: DHCP, DNS, HTTP, TCP echo, UDP echo, control, and a client TCP and ICMP socket
/// each for the command line and the control port (they may run at the same time).
const SOCKETS: usize = 2 + HTTP_TASKS + ECHO_TASKS + 1 + 1 + 2 * 2;

/// Base address of the LAN9118 on the mps2 boards.
const LAN9118_BASE: usize = 0x4020_0000;
/// Interrupt priorities: the timers and the Ethernet controller preempt the executor.
const PRIO_DEVICES: u8 = 0x80;
const PRIO_EXECUTOR: u8 = 0xE0;

/// The network device type.
pub type Device = Lan9118<'static, Mmio>;

/// The executor: runs in the `Irq::Executor` interrupt, pended by its wakers.
pub static EXECUTOR: InterruptExecutor = InterruptExecutor::new();

#[entry]
fn main() -> ! {
    stack::paint();
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        board::exit(false)
    };
    time::init(&mut cp.NVIC, PRIO_DEVICES);
    // SAFETY: set before the executor unmasks its interrupt (InterruptExecutor::start's rule).
    unsafe { cp.NVIC.set_priority(Irq::Executor, PRIO_EXECUTOR) };
    net_irq::set_priority(&mut cp.NVIC, PRIO_DEVICES);
    let spawner = EXECUTOR.start(Irq::Executor);
    if spawner.spawn(init()).is_err() {
        board::exit(false);
    }
    // Everything runs in interrupts; sleep until the next one.
    board::idle_loop()
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

/// Start the network and the servers, print the lease, run the command line.
#[embassy_executor::task]
async fn init() {
    // SAFETY: awaited inside a task of the embassy executor (the only executor here).
    let spawner = unsafe { Spawner::for_current_executor() }.await;
    let boot = board::boot_count();
    info!("ferronet-qemu-mps2: boot {}", boot);
    let commands = match cmdline::read() {
        Ok(c) => c.commands,
        Err(word) => {
            info!("command line: cannot understand {:?}", word);
            board::exit(false)
        }
    };

    // SAFETY: the LAN9118's register block is at this address on the mps2-an385 board and
    // nothing else in the firmware accesses it but the driver (and its interrupt handler).
    let regs = unsafe { Mmio::new(LAN9118_BASE) };
    let device = match Lan9118::new(regs, &net_irq::STATE, DriverConfig::default()) {
        Ok(d) => d,
        Err(e) => {
            info!("lan9118: {:?}", e);
            board::exit(false)
        }
    };
    net_irq::enable();

    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    // A seed that differs between boots (the TCP sequence numbers and ports come from it).
    let seed = 0x6665_7272_6f6e_6574 ^ Instant::now().as_ticks() ^ ((boot as u64) << 40);
    let (stack, runner) = net::new(
        device,
        Config::dhcpv4(DhcpConfig::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    let spawned = spawner.spawn(net_task(runner)).is_ok()
        && spawner.spawn(status::link_task(stack)).is_ok()
        && (0..HTTP_TASKS).all(|i| spawner.spawn(servers::http_task(stack, i)).is_ok())
        && (0..ECHO_TASKS).all(|_| spawner.spawn(servers::tcp_echo_task(stack)).is_ok())
        && spawner.spawn(servers::udp_echo_task(stack)).is_ok()
        && spawner.spawn(control::task(stack)).is_ok();
    if !spawned {
        info!("could not spawn the tasks");
        board::exit(false);
    }

    stack.wait_config_up().await;
    run_commands(stack, boot, &commands).await;
}

/// Run the command line's commands in order; exit or reboot when told.
async fn run_commands(stack: Stack<'static>, boot: u32, commands: &[Command]) {
    let mut ok = true;
    let mut exit = false;
    for cmd in commands {
        match *cmd {
            Command::Dns(name) => ok &= client::report_dns(stack, name).await,
            Command::Get(spec) => ok &= client::report_get(stack, spec).await,
            Command::Ping(addr) => ok &= client::report_ping(stack, addr).await,
            Command::Reboot(n) => {
                let Some(lease) = stack.config_v4().map(|c| c.address) else {
                    ok = false;
                    continue;
                };
                info!("reboot: boot {} of {} has lease {}", boot, n, lease);
                if boot < n {
                    board::reboot();
                }
                info!("reboot: all {} boots reached DHCP", n);
            }
            Command::Exit => exit = true,
        }
    }
    if exit {
        board::exit(ok);
    }
    if !commands.is_empty() {
        info!("commands: {}", if ok { "all passed" } else { "FAILED" });
    }
}
