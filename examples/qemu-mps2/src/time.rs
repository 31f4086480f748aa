//! `embassy-time` driver on the board's two CMSDK APB timers (25 MHz).
//!
//! - TIMER0 (`0x4000_0000`, IRQ 8) counts down from `u32::MAX` forever; its wrap interrupt
//!   (every 2^32 cycles, about 172 s) extends it to a 64-bit cycle counter.
//! - TIMER1 (`0x4000_1000`, IRQ 9) is the one alarm: loaded with the number of cycles until the
//!   next expiration of the timer queue (`embassy-time-queue-utils`), it interrupts once; the
//!   handler stops it, wakes what expired and loads the next alarm.
//!
//! Between alarms nothing runs: no periodic tick. `now()` is in embassy-time's default 1 MHz
//! ticks (cycles / 25).

use core::cell::RefCell;
use core::ptr::{read_volatile, write_volatile};
use core::task::Waker;

use cortex_m::peripheral::NVIC;
use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

use crate::board::Irq;

/// Clock of the timers (the board's system clock).
const CLOCK_HZ: u64 = 25_000_000;
const CYCLES_PER_TICK: u64 = CLOCK_HZ / embassy_time_driver::TICK_HZ;
const _: () = assert!(CLOCK_HZ.is_multiple_of(embassy_time_driver::TICK_HZ));

const TIMER0: usize = 0x4000_0000;
const TIMER1: usize = 0x4000_1000;
// CMSDK APB timer registers.
const CTRL: usize = 0x00;
const VALUE: usize = 0x04;
const RELOAD: usize = 0x08;
const INTSTATUS: usize = 0x0C;
const CTRL_EN: u32 = 1 << 0;
const CTRL_IRQEN: u32 = 1 << 3;

fn rd(timer: usize, reg: usize) -> u32 {
    // SAFETY: a register of a CMSDK APB timer of the mps2 board, fixed and aligned address;
    // reading it has no side effect.
    unsafe { read_volatile((timer + reg) as *const u32) }
}

fn wr(timer: usize, reg: usize, value: u32) {
    // SAFETY: a register of a CMSDK APB timer of the mps2 board, fixed and aligned address;
    // only this module touches the timers.
    unsafe { write_volatile((timer + reg) as *mut u32, value) }
}

struct State {
    /// TIMER0 wraps counted so far: the high 32 bits of the cycle counter.
    wraps: u32,
    queue: Queue,
}

/// The time driver: see the module documentation.
pub struct CmsdkTimerDriver {
    state: Mutex<RefCell<State>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: CmsdkTimerDriver = CmsdkTimerDriver {
    state: Mutex::new(RefCell::new(State { wraps: 0, queue: Queue::new() })),
});

/// Start the counter and enable both timer interrupts at `priority`.
pub fn init(nvic: &mut NVIC, priority: u8) {
    wr(TIMER0, CTRL, 0);
    wr(TIMER1, CTRL, 0);
    wr(TIMER0, INTSTATUS, 1);
    wr(TIMER1, INTSTATUS, 1);
    // Writing RELOAD also loads the counter.
    wr(TIMER0, RELOAD, u32::MAX);
    wr(TIMER0, CTRL, CTRL_EN | CTRL_IRQEN);
    // SAFETY: the priority is set before the interrupts are unmasked; the handlers only take
    // the driver's critical section.
    unsafe {
        nvic.set_priority(Irq::Timer0, priority);
        nvic.set_priority(Irq::Timer1, priority);
        NVIC::unmask(Irq::Timer0);
        NVIC::unmask(Irq::Timer1);
    }
}

/// Cycles of the 25 MHz clock since `init`.
pub fn cycles() -> u64 {
    critical_section::with(|cs| DRIVER.cycles(cs))
}

/// Nanoseconds per cycle of the timers' clock.
pub const NS_PER_CYCLE: u64 = 1_000_000_000 / CLOCK_HZ;

impl CmsdkTimerDriver {
    /// Cycles since `init`, 64 bits.
    fn cycles(&self, cs: CriticalSection<'_>) -> u64 {
        let wraps = self.state.borrow_ref(cs).wraps;
        let mut value = rd(TIMER0, VALUE);
        let mut high = wraps;
        // A wrap whose interrupt has not run yet (we are in a critical section): count it, and
        // read the counter again so that the value is from after the wrap.
        if rd(TIMER0, INTSTATUS) & 1 != 0 {
            value = rd(TIMER0, VALUE);
            high = high.wrapping_add(1);
        }
        ((high as u64) << 32) | (u32::MAX - value) as u64
    }

    fn now_cs(&self, cs: CriticalSection<'_>) -> u64 {
        self.cycles(cs) / CYCLES_PER_TICK
    }

    /// Arm TIMER1 for `at` (ticks), or pend its interrupt when `at` has passed already.
    fn arm(&self, cs: CriticalSection<'_>, at: u64) {
        wr(TIMER1, CTRL, 0);
        wr(TIMER1, INTSTATUS, 1);
        if at == u64::MAX {
            return;
        }
        let now = self.cycles(cs);
        let due = at.saturating_mul(CYCLES_PER_TICK);
        if due <= now {
            NVIC::pend(Irq::Timer1);
            return;
        }
        // Further than 2^32 cycles away: interrupt at the limit and re-arm from the handler.
        let delta = (due - now).min(u32::MAX as u64) as u32;
        wr(TIMER1, RELOAD, delta);
        wr(TIMER1, CTRL, CTRL_EN | CTRL_IRQEN);
    }

    fn on_timer0(&self) {
        critical_section::with(|cs| {
            if rd(TIMER0, INTSTATUS) & 1 != 0 {
                wr(TIMER0, INTSTATUS, 1);
                let mut st = self.state.borrow_ref_mut(cs);
                st.wraps = st.wraps.wrapping_add(1);
            }
        });
    }

    fn on_timer1(&self) {
        critical_section::with(|cs| {
            wr(TIMER1, CTRL, 0);
            wr(TIMER1, INTSTATUS, 1);
            let now = self.now_cs(cs);
            let next = self.state.borrow_ref_mut(cs).queue.next_expiration(now);
            self.arm(cs, next);
        });
    }
}

impl Driver for CmsdkTimerDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.now_cs(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let now = self.now_cs(cs);
            let next = {
                let mut st = self.state.borrow_ref_mut(cs);
                if !st.queue.schedule_wake(at, waker) {
                    return;
                }
                st.queue.next_expiration(now)
            };
            self.arm(cs, next);
        });
    }
}

/// TIMER0 interrupt: count a wrap of the cycle counter.
pub fn on_timer0_interrupt() {
    DRIVER.on_timer0();
}

/// TIMER1 interrupt: the alarm.
pub fn on_timer1_interrupt() {
    DRIVER.on_timer1();
}
