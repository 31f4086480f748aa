//! The benchmark's executor and `embassy-time` driver: a fixed set of tasks polled in a loop
//! on one thread, on the real clock.
//!
//! Both stacks run on exactly this executor, so its cost (a flag check per task per sweep, an
//! atomic store per wake) is the same for both.
//!
//! - Every task has a ready flag (an `AtomicBool` behind an `Arc`, the task's `Waker`). A sweep
//!   polls, in slice order, every task whose flag is set (clearing it first).
//! - The time driver keeps one deadline per waker (the earliest asked for, as `embassy-time`'s
//!   own queues do) in a short list. Due timers are fired when a sweep polled nothing, and
//!   every [`TIMER_CHECK_SWEEPS`] sweeps while busy.
//! - When nothing is ready and no timer is due, the thread sleeps until the next deadline.
//!   Such sleeps are counted ([`ExecStats::sleeps`]): in a clean run of these workloads they
//!   only come from a protocol timer (delayed ACK, retransmission), which the report flags.
//! - With nothing ready and no timer pending, nothing can happen any more: that is a bug of
//!   the benchmark and panics.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Wake, Waker};

/// While busy, due timers are checked every this many sweeps.
pub const TIMER_CHECK_SWEEPS: u64 = 64;

// ---------------------------------------------------------------------------------------------
// Time driver

static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
static TIMERS: Mutex<Vec<(u64, Waker)>> = Mutex::new(Vec::new());

fn timers() -> MutexGuard<'static, Vec<(u64, Waker)>> {
    TIMERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Microseconds since the first use of the clock in this process.
pub fn now_us() -> u64 {
    let elapsed = EPOCH.get_or_init(std::time::Instant::now).elapsed();
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

struct BenchTimeDriver;

impl embassy_time_driver::Driver for BenchTimeDriver {
    fn now(&self) -> u64 {
        now_us()
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        let mut t = timers();
        match t.iter_mut().find(|(_, w)| w.will_wake(waker)) {
            Some(entry) => entry.0 = entry.0.min(at),
            None => t.push((at, waker.clone())),
        }
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: BenchTimeDriver = BenchTimeDriver);

const _: () = assert!(embassy_time_driver::TICK_HZ == 1_000_000);

/// Wakes every timer due at `now`; returns how many.
fn fire_due(now: u64) -> usize {
    let due: Vec<Waker> = {
        let mut t = timers();
        if !t.iter().any(|(at, _)| *at <= now) {
            return 0;
        }
        t.extract_if(.., |(at, _)| *at <= now)
            .map(|(_, w)| w)
            .collect()
    };
    let n = due.len();
    for w in due {
        w.wake();
    }
    n
}

fn next_deadline() -> Option<u64> {
    timers().iter().map(|(at, _)| *at).min()
}

// ---------------------------------------------------------------------------------------------
// Executor

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// A future for [`run`]: its completion is either awaited (`required`) or not (a runner).
pub struct Task<'a> {
    future: Pin<&'a mut (dyn Future<Output = ()> + 'a)>,
    required: bool,
}

impl<'a> Task<'a> {
    /// A task that [`run`] waits for.
    pub fn required(future: Pin<&'a mut (dyn Future<Output = ()> + 'a)>) -> Self {
        Self {
            future,
            required: true,
        }
    }

    /// A task that runs while the required ones do (a stack's runner, which never ends).
    pub fn background(future: Pin<&'a mut (dyn Future<Output = ()> + 'a)>) -> Self {
        Self {
            future,
            required: false,
        }
    }
}

/// What the executor did during one [`run`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Task polls.
    pub polls: u64,
    /// Sweeps over the task list.
    pub sweeps: u64,
    /// Timer wake-ups fired.
    pub timer_wakes: u64,
    /// Times the thread slept waiting for a timer (nothing else could make progress).
    pub sleeps: u64,
}

/// Runs the tasks until every required one has completed; returns what it did.
///
/// Timers left from an earlier run are discarded first. Tasks still pending (runners) are
/// simply not polled any more; the caller drops them.
///
/// # Panics
///
/// If a task panics, or on deadlock (no task ready, no timer pending).
pub fn run(tasks: &mut [Task<'_>]) -> ExecStats {
    timers().clear();
    let flags: Vec<Arc<Flag>> = tasks
        .iter()
        .map(|_| Arc::new(Flag(AtomicBool::new(true))))
        .collect();
    let wakers: Vec<Waker> = flags.iter().map(|f| Waker::from(f.clone())).collect();
    let mut done = vec![false; tasks.len()];
    let mut remaining = tasks.iter().filter(|t| t.required).count();
    let mut stats = ExecStats::default();
    if remaining == 0 {
        return stats;
    }
    loop {
        let mut polled = false;
        for (i, task) in tasks.iter_mut().enumerate() {
            if done[i] || !flags[i].0.load(Ordering::Acquire) {
                continue;
            }
            flags[i].0.store(false, Ordering::Relaxed);
            polled = true;
            stats.polls += 1;
            let mut cx = Context::from_waker(&wakers[i]);
            if task.future.as_mut().poll(&mut cx).is_ready() {
                done[i] = true;
                if task.required {
                    remaining -= 1;
                    if remaining == 0 {
                        timers().clear();
                        return stats;
                    }
                }
            }
        }
        stats.sweeps += 1;
        if polled && !stats.sweeps.is_multiple_of(TIMER_CHECK_SWEEPS) {
            continue;
        }
        let now = now_us();
        let fired = fire_due(now);
        stats.timer_wakes += fired as u64;
        if polled || fired > 0 {
            continue;
        }
        match next_deadline() {
            Some(at) => {
                stats.sleeps += 1;
                std::thread::sleep(std::time::Duration::from_micros(at.saturating_sub(now)));
            }
            None => panic!(
                "ferronet-bench executor: deadlock: no task is ready and no timer is pending \
                 ({remaining} required task(s) unfinished)"
            ),
        }
    }
}

/// A value shared between tasks of one run, with one waiting task woken on change.
#[derive(Default)]
pub struct Notify {
    value: std::cell::Cell<u64>,
    waker: std::cell::RefCell<Option<Waker>>,
}

impl Notify {
    /// The current value.
    pub fn get(&self) -> u64 {
        self.value.get()
    }

    /// Changes the value and wakes the waiting task.
    pub fn set(&self, value: u64) {
        self.value.set(value);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Waits until `cond(value)` holds.
    pub async fn wait_until(&self, cond: impl Fn(u64) -> bool) {
        std::future::poll_fn(|cx| {
            if cond(self.value.get()) {
                std::task::Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        })
        .await
    }
}
