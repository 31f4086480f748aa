//! A minimal executor: [`block_on_with`] runs a future (and a background future such as a
//! stack runner) on the current thread, parking it while nothing is ready; [`join_all`] runs
//! many futures concurrently inside one. Wakers may be woken from any thread (the TAP/TUN
//! helper thread and the embassy-time timer thread do).

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `main` to completion on this thread, polling `background` (which may never end,
/// like `Runner::run`) alongside it. Returns `main`'s output.
pub fn block_on_with<T>(background: impl Future, main: impl Future<Output = T>) -> T {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut background = pin!(background);
    let mut main = pin!(main);
    let mut background_done = false;
    loop {
        if let Poll::Ready(v) = main.as_mut().poll(&mut cx) {
            return v;
        }
        if !background_done && background.as_mut().poll(&mut cx).is_ready() {
            background_done = true;
        }
        // The background may have made `main` ready (a frame arrived for its socket).
        if let Poll::Ready(v) = main.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// A boxed future, for [`join_all`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Runs all `futures` concurrently and returns their outputs in order.
pub async fn join_all<T>(mut futures: Vec<BoxFuture<'_, T>>) -> Vec<T> {
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Runs `a` and `b` concurrently until the first one finishes; returns its output
/// (`Ok` for `a`, `Err` for `b`).
pub async fn select<A: Future, B: Future>(a: A, b: B) -> Result<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Err(v));
        }
        Poll::Pending
    })
    .await
}

/// Runs two futures concurrently until both are done.
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    match (ra, rb) {
        (Some(a), Some(b)) => (a, b),
        _ => unreachable!("both futures completed"),
    }
}
