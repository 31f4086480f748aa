//! A deterministic single-threaded executor running on virtual time.
//!
//! [`Executor::new`] installs a fresh [`VirtualClock`] (at time 0) on the current thread. The
//! executor polls ready tasks in the order they were woken; when no task is ready it jumps the
//! clock to the earliest pending `embassy-time` deadline and wakes what was waiting for it. So
//! an hour of timeouts and retransmissions runs in milliseconds, and the same program gives the
//! same schedule every run.
//!
//! ```
//! use embassy_time::{Duration, Instant, Timer};
//! use ferronet_sim::executor::Executor;
//!
//! let ex = Executor::new();
//! let started = std::time::Instant::now();
//! ex.run_until(async {
//!     Timer::after_secs(3600).await;
//! });
//! assert_eq!(Instant::now(), Instant::from_secs(3600));
//! assert!(started.elapsed() < std::time::Duration::from_secs(5));
//! ```
//!
//! If no task is ready and no timer is pending, nothing can ever happen again: unless a wake
//! arrives from another thread within one second of real time, [`Executor::run_until`]
//! panics with a "deadlock" message.
//!
//! Futures need not be `Send` nor `'static`; they may borrow anything that outlives the
//! executor. Wakers are `Send + Sync` and may be woken from other threads.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use embassy_time::{Duration, Instant};

use crate::time::{ClockGuard, VirtualClock};
use crate::util::lock;

/// How long an idle executor with no pending timer waits for a wake from another thread
/// before it declares a deadlock.
pub const FOREIGN_WAKE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// [`Executor::try_run_until`] reached its virtual time limit first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimTimeout {
    /// The virtual time at which it stopped (the start time plus the limit).
    pub at: Instant,
}

impl fmt::Display for SimTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the future did not complete by virtual time {} µs",
            self.at.as_micros()
        )
    }
}

impl std::error::Error for SimTimeout {}

struct ReadyQueue {
    queue: Mutex<VecDeque<u64>>,
    /// Set (under the `queue` lock) while the executor thread waits on `changed` for a wake
    /// from another thread. Waking a condition variable is a system call even when nobody
    /// waits, and nearly every wake comes from the executor's own thread while it runs.
    sleeping: AtomicBool,
    changed: Condvar,
}

struct TaskWaker {
    id: u64,
    /// Set while the task is in the ready queue, so a task is queued at most once.
    queued: AtomicBool,
    ready: Arc<ReadyQueue>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            let mut queue = lock(&self.ready.queue);
            queue.push_back(self.id);
            // Read under the lock: the executor sets the flag under it before it waits.
            let sleeping = self.ready.sleeping.load(Ordering::Acquire);
            drop(queue);
            if sleeping {
                self.ready.changed.notify_all();
            }
        }
    }
}

struct Task<'a> {
    future: Pin<Box<dyn Future<Output = ()> + 'a>>,
    handle: Arc<TaskWaker>,
    waker: Waker,
}

enum Limit {
    /// Run until the main future completes; panic on deadlock.
    None,
    /// Run until the main future completes or virtual time would pass this tick.
    Timeout(u64),
    /// Run until virtual time reaches this tick.
    RunFor(u64),
}

/// A deterministic single-threaded executor with a virtual clock; see the
/// [module documentation](self).
pub struct Executor<'a> {
    // Field order matters: tasks are dropped while the clock is still installed.
    tasks: RefCell<BTreeMap<u64, Task<'a>>>,
    next_id: Cell<u64>,
    ready: Arc<ReadyQueue>,
    polls: Cell<u64>,
    clock: VirtualClock,
    _guard: ClockGuard,
}

impl fmt::Debug for Executor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("now", &self.now())
            .field("tasks", &self.pending_tasks())
            .field("polls", &self.polls())
            .finish_non_exhaustive()
    }
}

impl Default for Executor<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Executor<'a> {
    /// Makes an executor and installs its fresh virtual clock (time 0) on the current thread
    /// until the executor is dropped.
    pub fn new() -> Self {
        let clock = VirtualClock::new();
        let guard = clock.install();
        Self {
            tasks: RefCell::new(BTreeMap::new()),
            next_id: Cell::new(0),
            ready: Arc::new(ReadyQueue {
                queue: Mutex::new(VecDeque::new()),
                sleeping: AtomicBool::new(false),
                changed: Condvar::new(),
            }),
            polls: Cell::new(0),
            clock,
            _guard: guard,
        }
    }

    /// The executor's virtual clock.
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// How many times a task (or a main future) has been polled so far.
    pub fn polls(&self) -> u64 {
        self.polls.get()
    }

    /// How many spawned tasks have not completed.
    pub fn pending_tasks(&self) -> usize {
        self.tasks.borrow().len()
    }

    /// Adds a task; it first runs during the next `run_*` call (or the current one, when
    /// called from the main future). Tasks still pending when a `run_*` call returns stay for
    /// the next one.
    pub fn spawn(&self, future: impl Future<Output = ()> + 'a) {
        let id = self.alloc_id();
        let handle = Arc::new(TaskWaker {
            id,
            queued: AtomicBool::new(false),
            ready: self.ready.clone(),
        });
        let waker = Waker::from(handle.clone());
        self.tasks.borrow_mut().insert(
            id,
            Task {
                future: Box::pin(future),
                handle,
                waker: waker.clone(),
            },
        );
        waker.wake();
    }

    /// Runs `future` and the spawned tasks until `future` completes, advancing virtual time
    /// whenever nothing is ready.
    ///
    /// # Panics
    ///
    /// On deadlock: no task ready, no timer pending, and no wake from another thread within
    /// [`FOREIGN_WAKE_GRACE`]. Also if a task panics.
    pub fn run_until<F: Future>(&self, future: F) -> F::Output {
        let future = pin!(future);
        match self.drive(Some(future), Limit::None) {
            Some(output) => output,
            None => unreachable!("run_until only stops when its future completes"),
        }
    }

    /// Like [`run_until`](Self::run_until), but gives up with [`SimTimeout`] (dropping
    /// `future`) instead of letting virtual time pass `limit` from now. A deadlock also ends in
    /// `SimTimeout`, with the clock moved to the limit.
    pub fn try_run_until<F: Future>(
        &self,
        future: F,
        limit: Duration,
    ) -> Result<F::Output, SimTimeout> {
        let until = self.clock.now_ticks().saturating_add(limit.as_ticks());
        let future = pin!(future);
        self.drive(Some(future), Limit::Timeout(until))
            .ok_or(SimTimeout {
                at: Instant::from_ticks(until),
            })
    }

    /// Runs the spawned tasks until virtual time reaches now + `d`: everything that becomes
    /// ready up to and including that instant runs, then the clock is left at exactly that
    /// instant.
    pub fn run_for(&self, d: Duration) {
        let until = self.clock.now_ticks().saturating_add(d.as_ticks());
        let none: Option<Pin<&mut std::future::Pending<()>>> = None;
        let _ = self.drive(none, Limit::RunFor(until));
    }

    fn alloc_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    fn pop_ready(&self) -> Option<u64> {
        lock(&self.ready.queue).pop_front()
    }

    /// Waits up to [`FOREIGN_WAKE_GRACE`] of real time for a wake from another thread.
    fn wait_for_foreign_wake(&self) -> bool {
        let queue = lock(&self.ready.queue);
        self.ready.sleeping.store(true, Ordering::Release);
        let (queue, _) = self
            .ready
            .changed
            .wait_timeout_while(queue, FOREIGN_WAKE_GRACE, |q| q.is_empty())
            .unwrap_or_else(PoisonError::into_inner);
        self.ready.sleeping.store(false, Ordering::Release);
        !queue.is_empty()
    }

    fn poll_task(&self, id: u64) {
        // Take the task out while it runs, so the main future may spawn meanwhile.
        let Some(mut task) = self.tasks.borrow_mut().remove(&id) else {
            // A stale wake of a finished task.
            return;
        };
        task.handle.queued.store(false, Ordering::Release);
        self.polls.set(self.polls.get() + 1);
        let mut cx = Context::from_waker(&task.waker);
        if task.future.as_mut().poll(&mut cx).is_pending() {
            self.tasks.borrow_mut().insert(id, task);
        }
    }

    fn drive<F: Future>(&self, mut main: Option<Pin<&mut F>>, limit: Limit) -> Option<F::Output> {
        let main_handle = Arc::new(TaskWaker {
            id: self.alloc_id(),
            queued: AtomicBool::new(false),
            ready: self.ready.clone(),
        });
        let main_waker = Waker::from(main_handle.clone());
        if main.is_some() {
            main_waker.wake_by_ref();
        }
        loop {
            if let Some(id) = self.pop_ready() {
                if id == main_handle.id {
                    if let Some(future) = main.as_mut() {
                        main_handle.queued.store(false, Ordering::Release);
                        self.polls.set(self.polls.get() + 1);
                        let mut cx = Context::from_waker(&main_waker);
                        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                            return Some(output);
                        }
                    }
                } else {
                    self.poll_task(id);
                }
                continue;
            }

            // Nothing is ready: move time on to the next timer, if it is within the limit.
            let bound = match limit {
                Limit::None => u64::MAX,
                Limit::Timeout(t) | Limit::RunFor(t) => t,
            };
            let next = self.clock.next_deadline_ticks();
            if let Some(deadline) = next
                && deadline <= bound
            {
                self.clock.advance_to_ticks(deadline);
                continue;
            }

            match limit {
                Limit::RunFor(until) => {
                    self.clock.advance_to_ticks(until);
                    return None;
                }
                Limit::Timeout(until) => {
                    if next.is_none() && self.wait_for_foreign_wake() {
                        continue;
                    }
                    self.clock.advance_to_ticks(until);
                    return None;
                }
                Limit::None => {
                    if self.wait_for_foreign_wake() {
                        continue;
                    }
                    let now = self.clock.now_ticks();
                    panic!(
                        "ferronet-sim: deadlock: no task is ready and no timer is pending at \
                         virtual time {}.{:06} s ({} spawned task(s) pending, none will ever \
                         be woken)",
                        now / 1_000_000,
                        now % 1_000_000,
                        self.pending_tasks(),
                    );
                }
            }
        }
    }
}
