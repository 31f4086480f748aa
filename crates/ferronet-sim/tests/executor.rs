//! The virtual-time executor.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use embassy_time::{Duration, Instant, Timer};
use ferronet_sim::executor::{Executor, SimTimeout};
use ferronet_sim::time::VirtualClock;

#[test]
fn a_virtual_hour_takes_no_real_time() {
    let ex = Executor::new();
    let started = std::time::Instant::now();
    let before = Instant::now();
    ex.run_until(async {
        Timer::after_secs(3600).await;
    });
    assert_eq!(before, Instant::from_ticks(0));
    assert_eq!(Instant::now(), Instant::from_secs(3600));
    assert_eq!(ex.now(), Instant::from_secs(3600));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn executors_on_two_threads_have_independent_clocks() {
    let run = |secs: u64| {
        std::thread::spawn(move || {
            let ex = Executor::new();
            let mut seen = Vec::new();
            ex.run_until(async {
                for _ in 0..3 {
                    Timer::after_secs(secs).await;
                    seen.push(Instant::now().as_secs());
                    std::thread::yield_now();
                }
            });
            seen
        })
    };
    let t1 = run(7);
    let t2 = run(1000);
    assert_eq!(t1.join().unwrap(), [7, 14, 21]);
    assert_eq!(t2.join().unwrap(), [1000, 2000, 3000]);
    // This thread has no virtual clock.
    assert!(VirtualClock::current().is_none());
}

#[test]
fn the_clock_is_uninstalled_on_drop() {
    {
        let ex = Executor::new();
        ex.run_until(Timer::after_secs(10));
        assert_eq!(Instant::now().as_secs(), 10);
        assert!(VirtualClock::current().is_some());
    }
    assert!(VirtualClock::current().is_none());
}

#[test]
#[should_panic(expected = "ferronet-sim: deadlock: no task is ready and no timer is pending")]
fn deadlock_is_detected() {
    let ex = Executor::new();
    ex.run_until(std::future::pending::<()>());
}

#[test]
fn tasks_run_in_wake_order_with_timers_in_deadline_order() {
    let ex = Executor::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    for (name, delay) in [("c", 30), ("a", 10), ("b", 20), ("a2", 10)] {
        let log = log.clone();
        ex.spawn(async move {
            log.borrow_mut().push(format!("{name} start"));
            Timer::after_millis(delay).await;
            log.borrow_mut()
                .push(format!("{name} at {}", Instant::now().as_millis()));
        });
    }
    ex.run_until(Timer::after_millis(100));
    assert_eq!(
        *log.borrow(),
        [
            "c start", "a start", "b start", "a2 start", "a at 10", "a2 at 10", "b at 20",
            "c at 30"
        ]
    );
    assert_eq!(ex.pending_tasks(), 0);
}

#[test]
fn spawned_tasks_outlive_run_until_and_may_borrow() {
    // Borrowed data must be declared before (so dropped after) the executor.
    let counter = RefCell::new(0u32);
    let ex = Executor::new();
    ex.spawn(async {
        loop {
            Timer::after_secs(1).await;
            *counter.borrow_mut() += 1;
        }
    });
    ex.run_until(Timer::after_millis(3500));
    assert_eq!(*counter.borrow(), 3);
    assert_eq!(ex.pending_tasks(), 1);
    ex.run_for(Duration::from_secs(2));
    assert_eq!(*counter.borrow(), 5);
    assert_eq!(ex.now(), Instant::from_millis(5500));
    // run_for includes events at exactly the end instant.
    ex.run_for(Duration::from_millis(500));
    assert_eq!(*counter.borrow(), 6);
    assert_eq!(ex.now(), Instant::from_secs(6));
}

#[test]
fn try_run_until_times_out_in_virtual_time() {
    let ex = Executor::new();
    let r = ex.try_run_until(Timer::after_secs(10), Duration::from_secs(5));
    assert_eq!(
        r,
        Err(SimTimeout {
            at: Instant::from_secs(5)
        })
    );
    assert_eq!(ex.now(), Instant::from_secs(5));
    let r = ex.try_run_until(
        async {
            Timer::after_secs(2).await;
            42
        },
        Duration::from_secs(5),
    );
    assert_eq!(r, Ok(42));
    assert_eq!(ex.now(), Instant::from_secs(7));
    // Completing exactly at the limit counts.
    assert_eq!(
        ex.try_run_until(Timer::after_secs(1), Duration::from_secs(1)),
        Ok(())
    );
}

#[test]
fn polls_are_counted_and_idle_tasks_are_not_polled() {
    let ex = Executor::new();
    ex.spawn(async {
        Timer::after_secs(1000).await;
    });
    ex.run_until(async {});
    let after_first = ex.polls();
    assert_eq!(after_first, 2, "the task once, the main future once");
    ex.run_until(Timer::after_secs(10));
    // The main timer future: polled at 0 and at 10 s. The sleeping task: not at all.
    assert_eq!(ex.polls() - after_first, 2);
}

#[test]
fn main_future_may_spawn() {
    let ex = Executor::new();
    let done = Rc::new(RefCell::new(false));
    let flag = done.clone();
    ex.run_until(async {
        ex.spawn(async move {
            Timer::after_secs(1).await;
            *flag.borrow_mut() = true;
        });
        Timer::after_secs(2).await;
    });
    assert!(*done.borrow());
}

#[test]
fn wakes_from_other_threads_are_served() {
    let ex = Executor::new();
    let slot: Arc<Mutex<(bool, Option<Waker>)>> = Arc::new(Mutex::new((false, None)));
    let remote = slot.clone();
    let handle = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut s = remote.lock().unwrap();
        s.0 = true;
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    ex.run_until(poll_fn(|cx| {
        let mut s = slot.lock().unwrap();
        if s.0 {
            Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }));
    handle.join().unwrap();
    // No virtual time passed.
    assert_eq!(ex.now(), Instant::from_ticks(0));
}
