//! A wait queue for any number of tasks, without allocation.
//!
//! embassy-net keeps one waker per condition, so two tasks waiting for the same condition evict
//! each other's waker and wake each other in a loop. Here every waiting future owns a node that
//! is linked into an intrusive list while it waits; [`WaitQueue::wake_all`] wakes every node
//! once. The node lives inside the (pinned) future, so the number of waiters is unbounded and
//! no memory is reserved up front.
//!
//! Everything here is single-threaded: the queue is only reachable through a
//! [`Stack`](crate::Stack), which is neither `Send` nor `Sync`, so plain `Cell`s suffice.

use core::cell::Cell;
use core::future::Future;
use core::marker::PhantomPinned;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};

/// The head of an intrusive list of waiting futures.
pub(crate) struct WaitQueue {
    head: Cell<Option<NonNull<WaitNode>>>,
}

/// One waiter's entry in a [`WaitQueue`]. Must not move while linked (it lives in a pinned
/// future) and unlinks itself before it is dropped. It is linked when it has a predecessor or
/// is the head of the queue (a node is only ever used with one queue).
pub(crate) struct WaitNode {
    waker: Cell<Option<Waker>>,
    prev: Cell<Option<NonNull<WaitNode>>>,
    next: Cell<Option<NonNull<WaitNode>>>,
    _pin: PhantomPinned,
}

impl WaitNode {
    pub(crate) const fn new() -> Self {
        Self {
            waker: Cell::new(None),
            prev: Cell::new(None),
            next: Cell::new(None),
            _pin: PhantomPinned,
        }
    }
}

impl WaitQueue {
    pub(crate) const fn new() -> Self {
        Self {
            head: Cell::new(None),
        }
    }

    /// Whether `node` is in this queue.
    fn is_linked(&self, node: &WaitNode) -> bool {
        node.prev.get().is_some() || self.head.get() == Some(NonNull::from(node))
    }

    /// Store `waker` in `node` and link the node, if it is not linked yet.
    ///
    /// The node must be pinned and must call [`WaitQueue::unlink`] before it is dropped or moved.
    pub(crate) fn register(&self, node: Pin<&WaitNode>, waker: &Waker) {
        let node = node.get_ref();
        let old = node.waker.take();
        match old {
            Some(w) if w.will_wake(waker) => node.waker.set(Some(w)),
            _ => node.waker.set(Some(waker.clone())),
        }
        if !self.is_linked(node) {
            let ptr = NonNull::from(node);
            node.prev.set(None);
            node.next.set(self.head.get());
            if let Some(head) = self.head.get() {
                // SAFETY: every pointer in the list refers to a linked node, and a linked node
                // is alive and pinned (it unlinks itself in its owner's `Drop`).
                unsafe { head.as_ref() }.prev.set(Some(ptr));
            }
            self.head.set(Some(ptr));
        }
    }

    /// Remove `node` from the list if it is linked.
    pub(crate) fn unlink(&self, node: Pin<&WaitNode>) {
        let node = node.get_ref();
        if !self.is_linked(node) {
            return;
        }
        let prev = node.prev.take();
        let next = node.next.take();
        match prev {
            // SAFETY: linked neighbours are alive and pinned, see `register`.
            Some(p) => unsafe { p.as_ref() }.next.set(next),
            None => self.head.set(next),
        }
        if let Some(n) = next {
            // SAFETY: as above.
            unsafe { n.as_ref() }.prev.set(prev);
        }
        node.waker.set(None);
    }

    /// How many waiters are linked now (for leak checks: see `Stack::usage`).
    pub(crate) fn len(&self) -> usize {
        let mut n = 0;
        let mut cur = self.head.get();
        while let Some(ptr) = cur {
            // SAFETY: every pointer in the list refers to a linked node, and a linked node is
            // alive and pinned (it unlinks itself in its owner's `Drop`).
            cur = unsafe { ptr.as_ref() }.next.get();
            n += 1;
        }
        n
    }

    /// Wake every waiting task once and empty the list. A task that still has to wait links its
    /// node again when it is polled.
    pub(crate) fn wake_all(&self) {
        // Detach the whole list first, so that whatever a waker does cannot touch the part we
        // are walking.
        let mut cur = self.head.take();
        while let Some(ptr) = cur {
            // SAFETY: the node was linked when the list was detached and is alive and pinned;
            // it is only unlinked by its owner, which runs on this thread and not during this
            // loop (wakers only schedule tasks).
            let node = unsafe { ptr.as_ref() };
            cur = node.next.take();
            node.prev.set(None);
            if let Some(w) = node.waker.take() {
                w.wake();
            }
        }
    }
}

/// A future that completes once `predicate` returns true, re-checked whenever the queue is
/// woken.
pub(crate) struct WaitFor<'a, P: FnMut() -> bool> {
    queue: &'a WaitQueue,
    predicate: P,
    node: WaitNode,
}

impl<'a, P: FnMut() -> bool> WaitFor<'a, P> {
    pub(crate) fn new(queue: &'a WaitQueue, predicate: P) -> Self {
        Self {
            queue,
            predicate,
            node: WaitNode::new(),
        }
    }
}

impl<P: FnMut() -> bool> Future for WaitFor<'_, P> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `node` is never moved out of the pinned future; `predicate` and `queue` are
        // not structurally pinned and are only used through plain references.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `this.node` is part of the pinned future, so it stays put until dropped.
        let node = unsafe { Pin::new_unchecked(&this.node) };
        if (this.predicate)() {
            this.queue.unlink(node);
            Poll::Ready(())
        } else {
            this.queue.register(node, cx.waker());
            Poll::Pending
        }
    }
}

impl<P: FnMut() -> bool> Drop for WaitFor<'_, P> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs on the pinned place before it is invalidated (Pin's drop
        // guarantee), so the node is still where the list points to.
        let node = unsafe { Pin::new_unchecked(&self.node) };
        self.queue.unlink(node);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::pin::pin;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct CountWaker(AtomicUsize);
    impl Wake for CountWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn many_waiters_each_woken_once_without_ping_pong() {
        let q = WaitQueue::new();
        let flag = Cell::new(false);
        let counters: std::vec::Vec<_> = (0..5)
            .map(|_| Arc::new(CountWaker(AtomicUsize::new(0))))
            .collect();
        let mut futs: std::vec::Vec<_> = (0..5)
            .map(|_| std::boxed::Box::pin(WaitFor::new(&q, || flag.get())))
            .collect();
        // Poll each twice: re-registering must not wake anyone.
        for _ in 0..2 {
            for (f, c) in futs.iter_mut().zip(&counters) {
                let w = Waker::from(c.clone());
                assert!(f.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
            }
        }
        for c in &counters {
            assert_eq!(c.0.load(Ordering::SeqCst), 0);
        }
        q.wake_all();
        for c in &counters {
            assert_eq!(c.0.load(Ordering::SeqCst), 1);
        }
        flag.set(true);
        for (f, c) in futs.iter_mut().zip(&counters) {
            let w = Waker::from(c.clone());
            assert!(f.as_mut().poll(&mut Context::from_waker(&w)).is_ready());
        }
        assert!(q.head.get().is_none());
    }

    #[test]
    fn dropped_waiter_unlinks_itself() {
        let q = WaitQueue::new();
        let c = Arc::new(CountWaker(AtomicUsize::new(0)));
        let w = Waker::from(c.clone());
        {
            let mut a = pin!(WaitFor::new(&q, || false));
            let mut b = pin!(WaitFor::new(&q, || false));
            assert!(a.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
            assert!(b.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
            assert_eq!(q.len(), 2);
        }
        assert!(q.head.get().is_none());
        assert_eq!(q.len(), 0);
        q.wake_all();
        assert_eq!(c.0.load(Ordering::SeqCst), 0);
    }
}
