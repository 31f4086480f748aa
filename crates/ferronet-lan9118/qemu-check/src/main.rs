//! On-target check of ferronet-lan9118 on QEMU's mps2-an385 board, through QEMU's user-mode
//! network: the driver asks the virtual router 10.0.2.2 for its MAC address (ARP) with frames
//! of even and odd lengths and checks each reply, first interrupt-driven, then polled. No
//! network stack: the driver's `Driver` calls are made by hand, with a waker that records
//! its wake-ups, so each check says exactly what the driver did.
//!
//! Output and verdict through semihosting: one line per check, then
//! `qemu-check: N passed, M failed`, and QEMU's exit status.

#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::task::{Context, RawWaker, RawWakerVTable, Waker};

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use embassy_net_driver::{Driver, LinkState, RxToken as _, TxToken as _};
use ferronet_lan9118::{Config, Lan9118, Mmio, Registers, State};

/// Frame lengths of the ARP requests: the 42 bytes of the request, then padded.
const LENS: [usize; 6] = [42, 43, 60, 61, 62, 63];
/// The LAN9118's register block on the MPS2 boards.
const BASE: usize = 0x4020_0000;
/// QEMU's user-mode network: the guest's address and the virtual router's.
const GUEST: [u8; 4] = [10, 0, 2, 15];
const ROUTER: [u8; 4] = [10, 0, 2, 2];
/// SysTick period: 10 ms of the board's 25 MHz clock.
const TICK_CYCLES: u32 = 250_000;

/// IRQ 13, the LAN9118 on mps2-an385.
#[derive(Clone, Copy)]
struct Ethernet;

// SAFETY: 13 is an interrupt line of this board's NVIC (32 lines).
unsafe impl InterruptNumber for Ethernet {
    fn number(self) -> u16 {
        13
    }
}

static STATE: State = State::new();
static POLLED_STATE: State = State::new();
static WOKEN: AtomicBool = AtomicBool::new(false);
static ETH_IRQS: AtomicU32 = AtomicU32::new(0);
static STRAY_IRQS: AtomicU32 = AtomicU32::new(0);
static TICKS: AtomicU32 = AtomicU32::new(0);

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == 13 {
        ETH_IRQS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the board's LAN9118; the handler only uses the driver's interrupt entry.
        let regs = unsafe { Mmio::new(BASE) };
        ferronet_lan9118::on_interrupt(&regs, &STATE);
    } else {
        STRAY_IRQS.fetch_add(1, Ordering::SeqCst);
    }
}

#[exception]
fn SysTick() {
    TICKS.fetch_add(1, Ordering::SeqCst);
}

fn waker_clone(p: *const ()) -> RawWaker {
    RawWaker::new(p, &WAKER_VTABLE)
}
fn waker_wake(_: *const ()) {
    WOKEN.store(true, Ordering::SeqCst);
}
fn waker_drop(_: *const ()) {}
static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake, waker_drop);

/// Sleeps until the waker is woken (`true`) or `ticks` SysTick periods pass (`false`).
fn wait_for_wake(ticks: u32) -> bool {
    let start = TICKS.load(Ordering::SeqCst);
    loop {
        cortex_m::interrupt::disable();
        let woken = WOKEN.swap(false, Ordering::SeqCst);
        if !woken {
            // Wakes on any pending interrupt, taken once interrupts are enabled again.
            cortex_m::asm::wfi();
        }
        // SAFETY: not inside a critical section.
        unsafe { cortex_m::interrupt::enable() };
        if woken {
            return true;
        }
        if TICKS.load(Ordering::SeqCst).wrapping_sub(start) > ticks {
            return false;
        }
    }
}

struct Checks {
    passed: u32,
    failed: u32,
}

impl Checks {
    fn check(&mut self, name: &str, ok: bool) {
        if ok {
            self.passed += 1;
            hprintln!("ok   {}", name);
        } else {
            self.failed += 1;
            hprintln!("FAIL {}", name);
        }
    }
}

/// Sends an ARP request for the router, padded to `len` bytes.
fn send_arp_request(dev: &mut Lan9118<'_, Mmio>, cx: &mut Context<'_>, len: usize) -> bool {
    let mac = dev.mac_address();
    let Some(tx) = dev.transmit(cx) else {
        return false;
    };
    tx.consume(len, |f| {
        f.fill(0);
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&mac);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        // Ethernet/IPv4, request.
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f[22..28].copy_from_slice(&mac);
        f[28..32].copy_from_slice(&GUEST);
        f[38..42].copy_from_slice(&ROUTER);
    });
    true
}

/// Whether `f` is the router's ARP reply to us.
fn is_arp_reply(f: &[u8], mac: &[u8; 6]) -> bool {
    f.len() >= 42
        && f[0..6] == mac[..]
        && f[12..14] == [0x08, 0x06]
        && f[20..22] == [0, 2]
        && f[28..32] == ROUTER
        && f[32..38] == mac[..]
        && f[38..42] == GUEST
}

/// ARP exchanges with frames of `lens`; returns how many replies came. `wait` sleeps until
/// the driver's waker is woken (interrupt-driven) or returns at once (polled).
fn arp_rounds(
    dev: &mut Lan9118<'_, Mmio>,
    cx: &mut Context<'_>,
    lens: &[usize],
    wait: fn() -> bool,
) -> usize {
    let mac = dev.mac_address();
    let mut replies = 0;
    for &len in lens {
        // Find the RX FIFO empty, so that the driver arms the RX interrupt before the reply
        // comes (QEMU delivers it while the request is being written).
        while let Some((rx, _tx)) = dev.receive(cx) {
            rx.consume(|_| ());
        }
        if !send_arp_request(dev, cx, len) {
            hprintln!("no TX room for a {}-byte frame", len);
            continue;
        }
        for _ in 0..100 {
            if let Some((rx, _tx)) = dev.receive(cx) {
                if rx.consume(|f| is_arp_reply(f, &mac)) {
                    replies += 1;
                    break;
                }
            } else if !wait() {
                break;
            }
        }
    }
    replies
}

/// Initialisation with interrupts, ARP exchanges woken by the RX interrupt, counters, and no
/// interrupt while idle. The driver is dropped at the end.
fn interrupt_driven(regs: Mmio, cx: &mut Context<'_>, checks: &mut Checks) {
    let mut dev = match Lan9118::new(regs, &STATE, Config::default()) {
        Ok(dev) => dev,
        Err(e) => {
            hprintln!("init: {}", e);
            checks.check("init (interrupt-driven)", false);
            return;
        }
    };
    checks.check("init (interrupt-driven)", true);
    hprintln!(
        "     mac {:02x?}, ID_REV {:#010x}; RAM: driver {} B, State {} B",
        dev.mac_address(),
        dev.id_rev(),
        core::mem::size_of::<Lan9118<'static, Mmio>>(),
        core::mem::size_of::<State>()
    );
    checks.check("link up", dev.link_state(cx) == LinkState::Up);
    // QEMU drives the line high while the chip resets (see the crate docs): drop that.
    NVIC::unpend(Ethernet);
    // SAFETY: the handler only calls the driver's interrupt entry point.
    unsafe { NVIC::unmask(Ethernet) };
    let replies = arp_rounds(&mut dev, cx, &LENS, || wait_for_wake(50));
    hprintln!("     {}/{} ARP replies", replies, LENS.len());
    checks.check("ARP replies, interrupt-driven", replies == LENS.len());
    let c = STATE.counters();
    hprintln!(
        "     {:?}, {} ETHERNET interrupts",
        c,
        ETH_IRQS.load(Ordering::SeqCst)
    );
    checks.check(
        "an RX interrupt per reply",
        c.interrupts as usize >= LENS.len(),
    );
    // Drain what the stack would: the last TX statuses come back on the next call.
    let _ = dev.transmit(cx);
    let c = STATE.counters();
    checks.check(
        "counters",
        c.rx_frames as usize == LENS.len()
            && c.tx_frames as usize == LENS.len()
            && (c.rx_errors, c.tx_errors, c.rx_dropped) == (0, 0, 0),
    );
    let before = ETH_IRQS.load(Ordering::SeqCst);
    wait_for_wake(10);
    let idle = ETH_IRQS.load(Ordering::SeqCst) - before;
    checks.check("no interrupt while idle (100 ms)", idle == 0);

    // Link down and up: run.py pulls QEMU's virtual cable (monitor `set_link`) when asked.
    for (want, request, name) in [
        (
            LinkState::Down,
            "LINK: down",
            "link down seen through the PHY interrupt",
        ),
        (
            LinkState::Up,
            "LINK: up",
            "link up seen through the PHY interrupt",
        ),
    ] {
        let _ = dev.link_state(cx);
        WOKEN.store(false, Ordering::SeqCst);
        hprintln!("{}", request);
        // Up to 5 s for the host to act.
        let woken = wait_for_wake(500);
        checks.check(name, woken && dev.link_state(cx) == want);
    }
    checks.check("link changes counted", STATE.counters().link_changes == 2);
    let replies = arp_rounds(&mut dev, cx, &LENS[..1], || wait_for_wake(50));
    checks.check("traffic after the link came back", replies == 1);
}

#[entry]
fn main() -> ! {
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        finish(&Checks {
            passed: 0,
            failed: 1,
        });
    };
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(TICK_CYCLES - 1);
    cp.SYST.clear_current();
    cp.SYST.enable_interrupt();
    cp.SYST.enable_counter();

    let mut checks = Checks {
        passed: 0,
        failed: 0,
    };
    // SAFETY: the board's LAN9118, used only through the driver and its interrupt entry.
    let regs = unsafe { Mmio::new(BASE) };
    // SAFETY: a waker whose data pointer is never used; its functions only set a flag.
    let waker = unsafe { Waker::from_raw(RawWaker::new(core::ptr::null(), &WAKER_VTABLE)) };
    let mut cx = Context::from_waker(&waker);

    interrupt_driven(regs, &mut cx, &mut checks);
    // Polled: interrupts off. The reset inside `new` asserts QEMU's line again, so keep it
    // masked in the NVIC.
    NVIC::mask(Ethernet);
    let config = Config {
        irq: None,
        ..Config::default()
    };
    match Lan9118::new(regs, &POLLED_STATE, config) {
        Ok(mut dev) => {
            checks.check(
                "init (polled)",
                regs.read(ferronet_lan9118::regs::IRQ_CFG) & 0x100 == 0,
            );
            WOKEN.store(false, Ordering::SeqCst);
            let replies = arp_rounds(&mut dev, &mut cx, &LENS, || {
                // The driver woke its waker itself before returning `None`.
                WOKEN.swap(false, Ordering::SeqCst)
            });
            hprintln!("     {}/{} ARP replies", replies, LENS.len());
            checks.check("ARP replies, polled", replies == LENS.len());
        }
        Err(e) => {
            hprintln!("init: {}", e);
            checks.check("init (polled)", false);
        }
    }
    checks.check("no stray interrupt", STRAY_IRQS.load(Ordering::SeqCst) == 0);
    finish(&checks);
}

fn finish(checks: &Checks) -> ! {
    hprintln!(
        "qemu-check: {} passed, {} failed",
        checks.passed,
        checks.failed
    );
    if checks.failed == 0 {
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        debug::exit(debug::EXIT_FAILURE);
    }
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
