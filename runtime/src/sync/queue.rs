//! The waiting room of a lock: its [`WaitQueue`] behind a short-held
//! `std::sync::Mutex`, and the wake-ups collected under that mutex to be
//! performed after it is released.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::waiter::{WaitQueue, WaiterHandle};

/// A primitive's queue of waiting entries, behind its own std mutex.
#[derive(Debug)]
pub(super) struct Queue<E> {
    /// The entries, oldest first.
    inner: Mutex<WaitQueue<E>>,
}

/// The locked queue.
pub(super) type Locked<'a, E> = MutexGuard<'a, WaitQueue<E>>;

impl<E> Queue<E> {
    /// An empty queue.
    pub(super) const fn new() -> Queue<E> {
        Queue { inner: Mutex::new(WaitQueue::new()) }
    }

    /// Locks the queue. The lock is held for short, non-blocking sections
    /// only and nothing in them panics, so a poisoned std mutex (which
    /// cannot happen) would still guard a consistent queue.
    pub(super) fn lock(&self) -> Locked<'_, E> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Waiters claimed under a primitive's lock, to be woken once it is
/// released. Holds the first one inline: most releases wake one waiter,
/// and that should not allocate.
#[derive(Debug, Default)]
pub(super) struct Woken {
    /// The first waiter claimed.
    first: Option<WaiterHandle>,
    /// Any others, in the order they were claimed.
    rest: Vec<WaiterHandle>,
}

impl Woken {
    /// Adds a claimed waiter.
    pub(super) fn push(&mut self, waiter: WaiterHandle) {
        if self.first.is_none() {
            self.first = Some(waiter);
        } else {
            self.rest.push(waiter);
        }
    }

    /// Wakes them all, oldest claim first. Call after releasing the lock.
    pub(super) fn wake(self) {
        if let Some(first) = self.first {
            first.wake();
        }
        for waiter in self.rest {
            waiter.wake();
        }
    }
}

/// The deadline `timeout` from now; `None` (wait forever) if it is too far
/// away to represent.
pub(super) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
