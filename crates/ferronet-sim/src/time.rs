//! The `embassy-time` driver: a real clock for every thread, and virtual clocks.
//!
//! This module exists with the `time-driver` cargo feature (on by default), which registers
//! this crate as the process's `embassy-time` driver with 1 MHz ticks. A binary or test that
//! links ferronet-sim with this feature must not also enable `embassy-time/std`,
//! `embassy-time/mock-driver` or any other time driver: two drivers fail to link with a
//! duplicate `_embassy_time_now` symbol. (Disable the feature to bring your own driver; the
//! [`executor`](crate::executor) and [`VirtualClock`] are then unavailable.)
//!
//! # Real clock
//!
//! On a thread with no virtual clock installed, `now()` is the number of microseconds since
//! the driver was first used in the process (from `std::time::Instant`), and timer wakes are
//! served by one background thread ("ferronet-sim-timer", started on first use). So
//! `embassy_time::Timer` works on any executor: `embassy-executor`'s std arch,
//! `futures::executor`, tokio, a hand-written `block_on`.
//!
//! # Virtual clock
//!
//! A [`VirtualClock`] installed on a thread (by [`VirtualClock::install`], which the
//! [`Executor`](crate::executor::Executor) does) replaces the real clock *for that thread
//! only*: `now()` returns the virtual time, and timer wakes requested on that thread go to the
//! virtual clock's queue, to be fired when someone calls [`VirtualClock::advance_to`]. Virtual
//! time starts at 0 and only moves when advanced. Threads have independent clocks, so tests
//! running in parallel don't disturb each other.
//!
//! Caveat: the clock is chosen by the thread that asks. A future that was created under one
//! clock and polled under another compares instants of different clocks; keep a simulation on
//! its executor's thread.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::Waker;

use embassy_time::{Duration, Instant};

use crate::util::lock;

/// Ticks per second of the driver (`embassy_time::TICK_HZ` when this driver is in use).
pub const TICK_HZ: u64 = 1_000_000;

const _: () = assert!(embassy_time_driver::TICK_HZ == TICK_HZ);

thread_local! {
    static CURRENT: RefCell<Option<VirtualClock>> = const { RefCell::new(None) };
}

// ---------------------------------------------------------------------------------------------
// Virtual clock

struct VirtualTimer {
    at: u64,
    /// Insertion order, so timers with equal deadlines fire in a fixed order.
    seq: u64,
    waker: Waker,
}

struct VirtualState {
    now: u64,
    next_seq: u64,
    timers: Vec<VirtualTimer>,
}

/// A manually advanced clock. Cloning gives another handle to the same clock.
///
/// ```
/// use ferronet_sim::time::VirtualClock;
/// use embassy_time::{Duration, Instant};
///
/// let clock = VirtualClock::new();
/// let _guard = clock.install();
/// assert_eq!(Instant::now(), Instant::from_ticks(0));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(Instant::now().as_secs(), 5);
/// ```
#[derive(Clone)]
pub struct VirtualClock {
    state: Arc<Mutex<VirtualState>>,
}

impl fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("VirtualClock")
            .field("now_ticks", &state.now)
            .field("pending_timers", &state.timers.len())
            .finish()
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtualClock {
    /// A clock at time 0 with no timers.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(VirtualState {
                now: 0,
                next_seq: 0,
                timers: Vec::new(),
            })),
        }
    }

    /// The clock installed on the current thread, if any.
    pub fn current() -> Option<VirtualClock> {
        CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
    }

    /// Makes this the clock of the current thread until the guard is dropped, which restores
    /// the previous one (guards must be dropped in reverse order of creation).
    pub fn install(&self) -> ClockGuard {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(self.clone()));
        ClockGuard {
            previous,
            _not_send: PhantomData,
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        Instant::from_ticks(self.now_ticks())
    }

    pub(crate) fn now_ticks(&self) -> u64 {
        lock(&self.state).now
    }

    /// The earliest pending timer deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next_deadline_ticks().map(Instant::from_ticks)
    }

    pub(crate) fn next_deadline_ticks(&self) -> Option<u64> {
        lock(&self.state).timers.iter().map(|t| t.at).min()
    }

    /// The number of pending timers (distinct wakers).
    pub fn pending_timers(&self) -> usize {
        lock(&self.state).timers.len()
    }

    /// Moves the clock forward to `t` (never backwards) and wakes every timer due by then, in
    /// deadline order. Returns how many were woken.
    pub fn advance_to(&self, t: Instant) -> usize {
        self.advance_to_ticks(t.as_ticks())
    }

    /// Moves the clock forward by `d`; see [`advance_to`](Self::advance_to).
    pub fn advance(&self, d: Duration) -> usize {
        let target = self.now_ticks().saturating_add(d.as_ticks());
        self.advance_to_ticks(target)
    }

    pub(crate) fn advance_to_ticks(&self, t: u64) -> usize {
        let mut due = {
            let mut state = lock(&self.state);
            state.now = state.now.max(t);
            let now = state.now;
            state
                .timers
                .extract_if(.., |timer| timer.at <= now)
                .collect::<Vec<_>>()
        };
        due.sort_by_key(|timer| (timer.at, timer.seq));
        let woken = due.len();
        for timer in due {
            timer.waker.wake();
        }
        woken
    }

    /// Asks for `waker` to be woken when the clock reaches `at` (at once if it already has).
    /// A waker already waiting is kept once, with the earlier deadline.
    pub fn schedule_wake(&self, at: Instant, waker: &Waker) {
        self.schedule_wake_ticks(at.as_ticks(), waker);
    }

    fn schedule_wake_ticks(&self, at: u64, waker: &Waker) {
        {
            let mut state = lock(&self.state);
            if at > state.now {
                if let Some(timer) = state.timers.iter_mut().find(|t| t.waker.will_wake(waker)) {
                    timer.at = timer.at.min(at);
                } else {
                    let seq = state.next_seq;
                    state.next_seq += 1;
                    state.timers.push(VirtualTimer {
                        at,
                        seq,
                        waker: waker.clone(),
                    });
                }
                return;
            }
        }
        waker.wake_by_ref();
    }
}

/// Restores the thread's previous clock when dropped; see [`VirtualClock::install`].
#[must_use = "the clock is uninstalled when the guard is dropped"]
pub struct ClockGuard {
    previous: Option<VirtualClock>,
    /// The guard belongs to the thread whose clock it changed.
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for ClockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClockGuard").finish_non_exhaustive()
    }
}

impl Drop for ClockGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // During thread teardown the thread-local may be gone; nothing to restore then.
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = previous);
    }
}

// ---------------------------------------------------------------------------------------------
// Real clock

struct RealTimers {
    timers: Vec<(u64, Waker)>,
    thread_started: bool,
}

static REAL: Mutex<RealTimers> = Mutex::new(RealTimers {
    timers: Vec::new(),
    thread_started: false,
});
static REAL_CHANGED: Condvar = Condvar::new();
static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();

/// Microseconds since the real clock's epoch (its first use in the process).
fn real_now() -> u64 {
    let elapsed = EPOCH.get_or_init(std::time::Instant::now).elapsed();
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

fn real_schedule_wake(at: u64, waker: &Waker) {
    if at <= real_now() {
        waker.wake_by_ref();
        return;
    }
    let mut real = lock(&REAL);
    if let Some(entry) = real.timers.iter_mut().find(|(_, w)| w.will_wake(waker)) {
        entry.0 = entry.0.min(at);
    } else {
        real.timers.push((at, waker.clone()));
    }
    if !real.thread_started {
        let spawned = std::thread::Builder::new()
            .name("ferronet-sim-timer".into())
            .spawn(real_timer_thread);
        if spawned.is_err() {
            // No thread to wait for us: wake now. The timer future sees it is early and asks
            // again, so timers still work, only by polling.
            drop(real);
            waker.wake_by_ref();
            return;
        }
        real.thread_started = true;
    }
    drop(real);
    REAL_CHANGED.notify_all();
}

fn real_timer_thread() {
    let mut real = lock(&REAL);
    loop {
        let now = real_now();
        let due: Vec<Waker> = real
            .timers
            .extract_if(.., |(at, _)| *at <= now)
            .map(|(_, waker)| waker)
            .collect();
        if !due.is_empty() {
            drop(real);
            for waker in due {
                waker.wake();
            }
            real = lock(&REAL);
            continue;
        }
        real = match real.timers.iter().map(|(at, _)| *at).min() {
            None => REAL_CHANGED
                .wait(real)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Some(at) => {
                let timeout = std::time::Duration::from_micros(at - now);
                match REAL_CHANGED.wait_timeout(real, timeout) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                }
            }
        };
    }
}

// ---------------------------------------------------------------------------------------------
// The driver

struct SimTimeDriver;

impl embassy_time_driver::Driver for SimTimeDriver {
    fn now(&self) -> u64 {
        match VirtualClock::current() {
            Some(clock) => clock.now_ticks(),
            None => real_now(),
        }
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        match VirtualClock::current() {
            Some(clock) => clock.schedule_wake_ticks(at, waker),
            None => real_schedule_wake(at, waker),
        }
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: SimTimeDriver = SimTimeDriver);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn virtual_clock_fires_in_order_and_dedupes() {
        let clock = VirtualClock::new();
        let c1 = Arc::new(Count(AtomicUsize::new(0)));
        let c2 = Arc::new(Count(AtomicUsize::new(0)));
        let w1 = Waker::from(c1.clone());
        let w2 = Waker::from(c2.clone());
        clock.schedule_wake(Instant::from_secs(10), &w1);
        clock.schedule_wake(Instant::from_secs(5), &w1);
        clock.schedule_wake(Instant::from_secs(7), &w2);
        assert_eq!(clock.pending_timers(), 2);
        assert_eq!(clock.next_deadline(), Some(Instant::from_secs(5)));
        assert_eq!(clock.advance_to(Instant::from_secs(6)), 1);
        assert_eq!(c1.0.load(Ordering::SeqCst), 1);
        assert_eq!(c2.0.load(Ordering::SeqCst), 0);
        // Never backwards.
        clock.advance_to(Instant::from_secs(1));
        assert_eq!(clock.now(), Instant::from_secs(6));
        clock.advance(Duration::from_secs(1));
        assert_eq!(c2.0.load(Ordering::SeqCst), 1);
        assert_eq!(clock.next_deadline(), None);
        // A deadline in the past wakes at once.
        clock.schedule_wake(Instant::from_secs(1), &w2);
        assert_eq!(c2.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn install_switches_the_thread_clock_and_restores_it() {
        assert!(VirtualClock::current().is_none());
        let outer = VirtualClock::new();
        outer.advance(Duration::from_secs(100));
        {
            let _g = outer.install();
            assert_eq!(Instant::now().as_secs(), 100);
            let inner = VirtualClock::new();
            {
                let _g2 = inner.install();
                assert_eq!(Instant::now().as_ticks(), 0);
            }
            assert_eq!(Instant::now().as_secs(), 100);
        }
        assert!(VirtualClock::current().is_none());
    }

    #[test]
    fn real_clock_is_monotonic_and_wakes() {
        let a = Instant::now();
        let b = Instant::now();
        assert!(b >= a);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        embassy_time_driver::schedule_wake(Instant::now().as_ticks() + 20_000, &waker);
        let start = std::time::Instant::now();
        while count.0.load(Ordering::SeqCst) == 0 {
            assert!(start.elapsed() < std::time::Duration::from_secs(10));
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(start.elapsed() >= std::time::Duration::from_millis(15));
    }
}
