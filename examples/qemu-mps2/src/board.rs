//! The mps2-an385 board: interrupt numbers and dispatch, semihosting output and exit, panics.
//!
//! There is no peripheral access crate for this board, so cortex-m-rt's `DefaultHandler`
//! (which receives the interrupt number) dispatches the three interrupts the firmware uses.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::interrupt::InterruptNumber;
use cortex_m_rt::{ExceptionFrame, exception};
use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};

/// The board's interrupt lines that the firmware uses (hw/arm/mps2.c in QEMU; 32 lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Irq {
    /// CMSDK APB TIMER0.
    Timer0 = 8,
    /// CMSDK APB TIMER1.
    Timer1 = 9,
    /// LAN9118 Ethernet controller.
    Ethernet = 13,
    /// Not wired to any device: the interrupt the executor runs in (pended by its waker).
    Executor = 31,
}

// SAFETY: each variant is a distinct interrupt line below the NVIC's 32 lines on this board.
unsafe impl InterruptNumber for Irq {
    fn number(self) -> u16 {
        self as u16
    }
}

/// Exceptions taken by `DefaultHandler` for an interrupt nobody handles (a bug): counted.
static STRAY: AtomicU32 = AtomicU32::new(0);

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    match irqn {
        8 => crate::time::on_timer0_interrupt(),
        9 => crate::time::on_timer1_interrupt(),
        13 => crate::net_irq::on_ethernet_interrupt(),
        31 => {
            // SAFETY: this is the executor's interrupt handler, and the interrupt is only
            // unmasked by `InterruptExecutor::start`.
            unsafe { crate::EXECUTOR.on_interrupt() }
        }
        _ => {
            STRAY.fetch_add(1, Ordering::Relaxed);
            if irqn >= 0 {
                cortex_m::peripheral::NVIC::mask(RawIrq(irqn as u16));
            }
        }
    }
}

#[derive(Clone, Copy)]
struct RawIrq(u16);
// SAFETY: only built from an interrupt number the NVIC just reported as active.
unsafe impl InterruptNumber for RawIrq {
    fn number(self) -> u16 {
        self.0
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    crate::info!("HARDFAULT pc={:#010x} lr={:#010x}", frame.pc(), frame.lr());
    debug::exit(EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::info!("PANIC {}", info);
    debug::exit(EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Print one line on the host's standard output (semihosting).
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { cortex_m_semihosting::hprintln!($($arg)*) };
}

/// End the run: report the peak stack use, then make QEMU exit with status 0 (`ok`) or 1.
pub fn exit(ok: bool) -> ! {
    crate::info!(
        "stack peak: {} bytes (of {} painted)",
        crate::stack::peak(),
        crate::stack::PAINTED
    );
    let stray = STRAY.load(Ordering::Relaxed);
    if stray != 0 {
        crate::info!("stray interrupts: {}", stray);
    }
    crate::info!("exit: {}", if ok { "PASS" } else { "FAIL" });
    debug::exit(if ok { EXIT_SUCCESS } else { EXIT_FAILURE });
    // Without semihosting the exit call returns: stop here.
    loop {
        cortex_m::asm::wfi();
    }
}

/// Cycles spent asleep in `WFI` since boot (see [`idle_loop`]).
static IDLE_CYCLES: critical_section::Mutex<core::cell::Cell<u64>> =
    critical_section::Mutex::new(core::cell::Cell::new(0));

/// Thread mode: sleep in `WFI` until an interrupt is pending, count the time asleep, then let
/// the interrupt run. Interrupts are masked around `WFI` (it still wakes on a pending one), so
/// the time measured is the time asleep only, not the handlers'.
pub fn idle_loop() -> ! {
    loop {
        cortex_m::interrupt::disable();
        let t0 = crate::time::cycles();
        cortex_m::asm::wfi();
        let slept = crate::time::cycles().saturating_sub(t0);
        critical_section::with(|cs| {
            let idle = IDLE_CYCLES.borrow(cs);
            idle.set(idle.get() + slept);
        });
        // SAFETY: not inside a critical section (this loop is the only code in thread mode
        // and holds none here); the pending interrupt runs now.
        unsafe { cortex_m::interrupt::enable() };
    }
}

/// Nanoseconds the CPU was busy (not asleep in `WFI`) since boot, at the timers' resolution
/// (40 ns). Under QEMU's `-icount shift=0` one nanosecond is one guest instruction.
pub fn busy_ns() -> u64 {
    let idle = critical_section::with(|cs| IDLE_CYCLES.borrow(cs).get());
    crate::time::cycles().saturating_sub(idle) * crate::time::NS_PER_CYCLE
}

/// A busy loop of `n` iterations of two instructions (`subs`, `bne`): calibrates
/// [`busy_ns`] against a known instruction count.
pub fn spin(n: u32) {
    if n == 0 {
        return;
    }
    // SAFETY: a register-only countdown loop; no memory access, no stack use.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {0}, {0}, #1",
            "bne 2b",
            inout(reg) n => _,
            options(nomem, nostack),
        );
    }
}

/// Reset the whole board (SYSRESETREQ): QEMU resets the CPU and every device.
pub fn reboot() -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}

/// Boot counter kept across `reboot` in RAM that the runtime does not initialise.
#[unsafe(link_section = ".uninit.BOOTS")]
static mut BOOTS: core::mem::MaybeUninit<[u32; 2]> = core::mem::MaybeUninit::uninit();
const BOOTS_MAGIC: u32 = 0xB007_C0DE;

/// Which boot this is since QEMU started: 1 after power-on (QEMU's RAM starts zeroed), one more
/// after each `reboot`. Call once per boot.
pub fn boot_count() -> u32 {
    let p = core::ptr::addr_of_mut!(BOOTS) as *mut [u32; 2];
    // SAFETY: BOOTS is only touched here, once per boot, before any other task runs; any bit
    // pattern is a valid [u32; 2].
    unsafe {
        let [magic, count] = core::ptr::read_volatile(p);
        let count = if magic == BOOTS_MAGIC {
            count.wrapping_add(1)
        } else {
            1
        };
        core::ptr::write_volatile(p, [BOOTS_MAGIC, count]);
        count
    }
}
