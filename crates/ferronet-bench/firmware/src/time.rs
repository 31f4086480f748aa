//! A minimal SysTick-based `embassy-time-driver` implementation.
//!
//! SysTick interrupts every millisecond (25 MHz core clock of the MPS2 boards); `now()` is
//! `milliseconds * 1000 + the elapsed part of the current millisecond`, at embassy-time's
//! default 1 MHz tick. Timers use `embassy-time-queue-utils`' queue (the executor-integrated
//! one), checked on every SysTick. Same code in both stacks' builds.

use core::cell::RefCell;
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;
use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// Core clock of the MPS2 FPGA images.
const CORE_HZ: u32 = 25_000_000;
const CYCLES_PER_MS: u32 = CORE_HZ / 1000;
const CYCLES_PER_TICK: u32 = CORE_HZ / embassy_time_driver::TICK_HZ as u32;

struct State {
    millis: u64,
    alarm: u64,
    queue: Queue,
}

/// The time driver.
pub struct SysTickDriver {
    state: Mutex<RefCell<State>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    state: Mutex::new(RefCell::new(State {
        millis: 0,
        alarm: u64::MAX,
        queue: Queue::new(),
    })),
});

/// Start SysTick: one interrupt per millisecond.
pub fn init(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CYCLES_PER_MS - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
    // From here on the driver only reads the current value (`SYST::get_current`).
}

impl SysTickDriver {
    fn now_cs(&self, cs: CriticalSection<'_>) -> u64 {
        let st = self.state.borrow_ref(cs);
        let mut ms = st.millis;
        let cvr = SYST::get_current();
        // A wrap that the exception has not handled yet (we are in a critical section).
        if SCB::is_pendst_pending() {
            ms += 1;
        }
        ms * 1000 + ((CYCLES_PER_MS - 1 - cvr.min(CYCLES_PER_MS - 1)) / CYCLES_PER_TICK) as u64
    }

    fn on_tick(&self) {
        critical_section::with(|cs| {
            let now = {
                let mut st = self.state.borrow_ref_mut(cs);
                st.millis += 1;
                st.millis * 1000
            };
            let mut st = self.state.borrow_ref_mut(cs);
            if now >= st.alarm {
                st.alarm = st.queue.next_expiration(now);
            }
        });
    }
}

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.now_cs(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let now = self.now_cs(cs);
            let mut st = self.state.borrow_ref_mut(cs);
            if st.queue.schedule_wake(at, waker) {
                st.alarm = st.queue.next_expiration(now);
            }
        });
    }
}

#[exception]
fn SysTick() {
    DRIVER.on_tick();
}
