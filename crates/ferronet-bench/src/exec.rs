//! The benchmark's executor and `embassy-time` driver: a fixed set of tasks polled in a loop
//! on one thread, on the real clock.
//!
//! Both stacks run on exactly this executor, so its cost (a flag check per task per sweep, an
//! atomic store per wake) is the same for both.
//!
//! - Every task has a ready flag (an `AtomicBool` behind an `Arc`, the task's `Waker`). A sweep
//!   polls, in slice order, every task whose flag is set (clearing it first).
//! - With [`Order::Lifo`] (`--exec lifo`) the ready tasks are polled in batches instead, most
//!   recently woken first, as embassy-executor's run queue does: a wake pushes the task on a
//!   list, a batch takes the whole list and polls it from the top, and tasks woken meanwhile
//!   wait for the next batch. Whether a task woken by another runs before or after the task that
//!   woke it then depends on the order of the wakes, which matters to a network stack's runner.
//! - The time driver keeps one deadline per waker (the earliest asked for, as `embassy-time`'s
//!   own queues do) in a short list. Due timers are fired when a sweep polled nothing, and
//!   every [`TIMER_CHECK_SWEEPS`] sweeps while busy.
//! - When nothing is ready and no timer is due, the thread sleeps until the next deadline.
//!   Such sleeps are counted ([`ExecStats::sleeps`]): in a clean run of these workloads they
//!   only come from a protocol timer (delayed ACK, retransmission), which the report flags.
//! - [`run_virtual`] runs the same loop on a **virtual clock** instead (the goodput benchmark,
//!   [`crate::goodput`]): time starts at zero, stands still while any task is ready (the CPU
//!   is infinitely fast) and jumps to the next deadline when none is, so a run's result
//!   depends only on the protocol, never on this machine. The clock and the timer list are
//!   per thread, so runs on different threads (parallel tests) do not see each other's timers.
//! - With nothing ready and no timer pending, nothing can happen any more: that is a bug of
//!   the benchmark and panics.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Wake, Waker};

/// While busy, due timers are checked every this many sweeps.
pub const TIMER_CHECK_SWEEPS: u64 = 64;

// ---------------------------------------------------------------------------------------------
// Time driver

static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();

thread_local! {
    /// This thread's timers: (deadline in ticks, waker), one entry per waker.
    static TIMERS: RefCell<Vec<(u64, Waker)>> = const { RefCell::new(Vec::new()) };
    /// This thread's virtual time in ticks while [`run_virtual`] runs, else `None`.
    static VIRTUAL_NOW: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Microseconds since the first use of the clock in this process, or the virtual time while
/// [`run_virtual`] runs on this thread.
pub fn now_us() -> u64 {
    if let Some(now) = VIRTUAL_NOW.with(Cell::get) {
        return now;
    }
    let elapsed = EPOCH.get_or_init(std::time::Instant::now).elapsed();
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

struct BenchTimeDriver;

impl embassy_time_driver::Driver for BenchTimeDriver {
    fn now(&self) -> u64 {
        now_us()
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        TIMERS.with_borrow_mut(|t| match t.iter_mut().find(|(_, w)| w.will_wake(waker)) {
            Some(entry) => entry.0 = entry.0.min(at),
            None => t.push((at, waker.clone())),
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: BenchTimeDriver = BenchTimeDriver);

const _: () = assert!(embassy_time_driver::TICK_HZ == 1_000_000);

/// Wakes every timer due at `now`; returns how many.
fn fire_due(now: u64) -> usize {
    let due: Vec<Waker> = TIMERS.with_borrow_mut(|t| {
        if !t.iter().any(|(at, _)| *at <= now) {
            return Vec::new();
        }
        t.extract_if(.., |(at, _)| *at <= now)
            .map(|(_, w)| w)
            .collect()
    });
    let n = due.len();
    for w in due {
        w.wake();
    }
    n
}

fn next_deadline() -> Option<u64> {
    TIMERS.with_borrow(|t| t.iter().map(|(at, _)| *at).min())
}

fn clear_timers() {
    TIMERS.with_borrow_mut(Vec::clear);
}

// ---------------------------------------------------------------------------------------------
// Executor

/// The order in which [`run`] polls ready tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Sweeps in slice order (the default).
    #[default]
    Sweep,
    /// Batches, most recently woken first (embassy-executor's run queue).
    Lifo,
}

thread_local! {
    static ORDER: std::cell::Cell<Order> = const { std::cell::Cell::new(Order::Sweep) };
}

/// Choose the order of every later [`run`] on this thread.
pub fn set_order(order: Order) {
    ORDER.with(|o| o.set(order));
}

/// The order [`run`] uses on this thread.
pub fn order() -> Order {
    ORDER.with(|o| o.get())
}

/// A task's ready flag, behind its `Waker`. With [`Order::Lifo`] a wake also records the
/// task on the shared list of woken tasks.
struct Flag {
    ready: AtomicBool,
    index: usize,
    woken: Option<Arc<Mutex<Vec<usize>>>>,
    /// With [`run_external`]: told of every wake, so the executor's wait ends.
    bell: Option<Arc<Bell>>,
}

/// Wakes an executor waiting in [`run_external`] (wakes may come from other threads).
#[derive(Default)]
struct Bell {
    rung: Mutex<bool>,
    cond: std::sync::Condvar,
}

impl Bell {
    fn ring(&self) {
        *self.rung.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cond.notify_one();
    }

    /// Waits until rung (or until `timeout`, if any) and clears it.
    fn wait(&self, timeout: Option<std::time::Duration>) {
        let mut rung = self.rung.lock().unwrap_or_else(PoisonError::into_inner);
        while !*rung {
            match timeout {
                Some(t) => {
                    let (guard, result) = self
                        .cond
                        .wait_timeout(rung, t)
                        .unwrap_or_else(PoisonError::into_inner);
                    rung = guard;
                    if result.timed_out() {
                        break;
                    }
                }
                None => rung = self.cond.wait(rung).unwrap_or_else(PoisonError::into_inner),
            }
        }
        *rung = false;
    }
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(bell) = &self.bell {
            self.ready.store(true, Ordering::Release);
            bell.ring();
            return;
        }
        match &self.woken {
            None => self.ready.store(true, Ordering::Release),
            Some(list) => {
                if !self.ready.swap(true, Ordering::AcqRel) {
                    list.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(self.index);
                }
            }
        }
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
    /// Times the thread slept waiting for a timer (nothing else could make progress); on the
    /// virtual clock, times the clock jumped to the next deadline.
    pub sleeps: u64,
    /// On the virtual clock: the run ended because no task was ready and no timer pending
    /// while a required task was unfinished.
    pub stalled: bool,
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
    VIRTUAL_NOW.with(|v| v.set(None));
    match run_inner(tasks, None) {
        Ok(stats) => stats,
        Err(_) => unreachable!("the real clock has no limit"),
    }
}

/// Polls at one virtual instant after which [`run_virtual`] declares a livelock.
pub const VIRTUAL_LIVELOCK_POLLS: u64 = 5_000_000;

/// Like [`run`], on this thread's virtual clock: it starts at zero, stands still while any
/// task is ready and jumps to the earliest timer when none is (no sleep). `Err` (with what
/// was done) when the virtual time would pass `limit_us` with a required task unfinished, or
/// when nothing can happen any more (no task ready, no timer pending: [`ExecStats::stalled`]).
/// Inside, `embassy_time::Instant::now()` (and [`now_us`]) read the virtual time; afterwards
/// the virtual clock stays where the run ended (so counters can be read at that instant)
/// until the next [`run`] or [`run_virtual`] on this thread.
///
/// # Panics
///
/// If a task panics; on a livelock (more than [`VIRTUAL_LIVELOCK_POLLS`] polls without the
/// virtual time moving).
pub fn run_virtual(tasks: &mut [Task<'_>], limit_us: u64) -> Result<ExecStats, ExecStats> {
    VIRTUAL_NOW.with(|v| v.set(Some(0)));
    run_inner(tasks, Some(limit_us))
}

/// Like [`run`] (sweep order, real clock), for tasks woken by other threads (a TAP device's
/// reader): when nothing is ready it waits for a wake or the next timer instead of sleeping,
/// and with no timer pending it waits for a wake. Runs until every required task is done.
pub fn run_external(tasks: &mut [Task<'_>]) -> ExecStats {
    VIRTUAL_NOW.with(|v| v.set(None));
    match run_inner_with(tasks, None, Some(Arc::new(Bell::default()))) {
        Ok(stats) | Err(stats) => stats,
    }
}

fn run_inner(tasks: &mut [Task<'_>], virtual_limit: Option<u64>) -> Result<ExecStats, ExecStats> {
    run_inner_with(tasks, virtual_limit, None)
}

fn run_inner_with(
    tasks: &mut [Task<'_>],
    virtual_limit: Option<u64>,
    bell: Option<Arc<Bell>>,
) -> Result<ExecStats, ExecStats> {
    clear_timers();
    let mut polls_at_instant = 0u64;
    // Sweep: no list, every task looked at in slice order. Lifo: the woken tasks, in the order
    // of their wakes (all of them at first, the first task on top).
    let woken = (order() == Order::Lifo && bell.is_none())
        .then(|| Arc::new(Mutex::new((0..tasks.len()).rev().collect::<Vec<usize>>())));
    let flags: Vec<Arc<Flag>> = (0..tasks.len())
        .map(|index| {
            Arc::new(Flag {
                ready: AtomicBool::new(true),
                index,
                woken: woken.clone(),
                bell: bell.clone(),
            })
        })
        .collect();
    let wakers: Vec<Waker> = flags.iter().map(|f| Waker::from(f.clone())).collect();
    let mut done = vec![false; tasks.len()];
    let mut remaining = tasks.iter().filter(|t| t.required).count();
    let mut stats = ExecStats::default();
    if remaining == 0 {
        return Ok(stats);
    }
    let mut batch: Vec<usize> = Vec::with_capacity(tasks.len());
    loop {
        batch.clear();
        match &woken {
            None => batch.extend(0..tasks.len()),
            // The most recently woken first; tasks woken meanwhile wait for the next batch.
            Some(list) => batch.extend(
                list.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .drain(..)
                    .rev(),
            ),
        }
        let mut polled = false;
        for &i in &batch {
            if done[i] || !flags[i].ready.swap(false, Ordering::AcqRel) {
                continue;
            }
            polled = true;
            stats.polls += 1;
            let mut cx = Context::from_waker(&wakers[i]);
            if tasks[i].future.as_mut().poll(&mut cx).is_ready() {
                done[i] = true;
                if tasks[i].required {
                    remaining -= 1;
                    if remaining == 0 {
                        clear_timers();
                        return Ok(stats);
                    }
                }
            }
        }
        stats.sweeps += 1;
        if let Some(limit) = virtual_limit {
            // Virtual time: due timers are checked after every sweep (time stands still, so
            // this is cheap and keeps timer wakes at their exact instant).
            let now = now_us();
            let fired = fire_due(now);
            stats.timer_wakes += fired as u64;
            if polled || fired > 0 {
                polls_at_instant += 1;
                assert!(
                    polls_at_instant <= VIRTUAL_LIVELOCK_POLLS,
                    "ferronet-bench executor: livelock: {VIRTUAL_LIVELOCK_POLLS} sweeps at \
                     virtual time {now} us without the clock moving"
                );
                continue;
            }
            match next_deadline() {
                Some(at) if at > limit => return Err(stats),
                Some(at) => {
                    stats.sleeps += 1;
                    polls_at_instant = 0;
                    VIRTUAL_NOW.with(|v| v.set(Some(at.max(now))));
                    continue;
                }
                None => {
                    // Nothing can ever happen again: on the virtual clock that is a result
                    // (a stack waits for nothing while its transfer is unfinished).
                    stats.stalled = true;
                    return Err(stats);
                }
            }
        }
        if polled && !stats.sweeps.is_multiple_of(TIMER_CHECK_SWEEPS) {
            continue;
        }
        let now = now_us();
        let fired = fire_due(now);
        stats.timer_wakes += fired as u64;
        if polled || fired > 0 {
            continue;
        }
        if let Some(bell) = &bell {
            stats.sleeps += 1;
            bell.wait(
                next_deadline().map(|at| std::time::Duration::from_micros(at.saturating_sub(now))),
            );
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
