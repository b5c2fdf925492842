//! `WaitGroup`: wait until a group of jobs has finished, like Go's
//! `sync.WaitGroup`, with the count kept by guards instead of by hand.
//!
//! # Design
//!
//! Each job holds a [`WaitGroupGuard`] from [`WaitGroup::add`]; dropping
//! it (or calling [`WaitGroupGuard::done`]) marks the job done. The count
//! is the number of live guards, so it cannot go negative, a job cannot be
//! marked done twice, and a job that returns early, with `?` or by
//! panicking, is still marked done. Waiting is a method of `WaitGroup`
//! taking `&self`, so it can be retried after a timeout and several parties
//! can wait at once.
//!
//! Rejected:
//! * **Go's `Add(n)` / `Done()`**: a forgotten `Done` hangs the waiter, a
//!   second one panics (or, worse, releases it early). The guard makes
//!   both impossible to write.
//! * **crossbeam's clone-to-add** (`WaitGroup::clone` adds one, dropping a
//!   clone marks it done, `wait(self)` consumes the waiter's own count):
//!   safe too, but waiting consumes the group, so a timed-out wait cannot
//!   be retried. For the same reason `WaitGroup` here is deliberately not
//!   `Clone`: a clone that did *not* count, next to crossbeam's that does,
//!   would invite exactly the early wake-up the design exists to prevent.
//!   Share the group in an `Arc`; clone guards ([`WaitGroupGuard`] is
//!   `Clone`, and a clone counts one more job).
//!
//! # Protocol
//!
//! The count and the waiters share one lock. When the last guard goes, the
//! count is 0: every waiter still waiting is claimed and woken after the
//! lock is released. A waiter that gives up (timeout, cancellation, its
//! coroutine unwound) takes its entry out of the queue; if the count is 0
//! by then, it reports success anyway. Counting may start again after 0:
//! the group is reusable.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::wait::party::{Outcome, deadline_after};
use super::wait::queue::WaitQueue;
use super::wait::waiter::{Waiter, WaiterHandle};
use super::wait_error::WaitError;
use crate::dump::kind::WaitKind;

/// The token the last guard claims waiters with.
const EMPTY: usize = 0;

/// Waits for a group of jobs, each holding a [`WaitGroupGuard`], to finish.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use green::sync::WaitGroup;
///
/// green::run(|| {
///     let group = WaitGroup::new();
///     let finished = Arc::new(AtomicUsize::new(0));
///     for _ in 0..10 {
///         let job = group.add();
///         let finished = finished.clone();
///         green::spawn(move || {
///             finished.fetch_add(1, Ordering::Relaxed);
///             job.done();
///         });
///     }
///     group.wait().unwrap();
///     assert_eq!(finished.load(Ordering::Relaxed), 10);
/// });
/// ```
///
/// Works between coroutines of any runtimes and plain threads: guards are
/// `Send` and may be dropped anywhere.
pub struct WaitGroup {
    /// The count and the waiters, shared with every guard.
    shared: Arc<Group>,
}

/// A job of a [`WaitGroup`]: the group counts it until it is dropped.
///
/// Cloning a guard adds one more job to the same group.
#[must_use = "dropping the guard marks the job done at once"]
pub struct WaitGroupGuard {
    /// The group's count and waiters.
    shared: Arc<Group>,
}

/// What a group and its guards share.
#[derive(Debug)]
struct Group {
    /// The count and the waiters.
    state: Mutex<Count>,
}

/// The locked part of a group.
#[derive(Debug)]
struct Count {
    /// Guards alive.
    count: usize,
    /// Who waits for `count` to reach 0, oldest first.
    waiters: WaitQueue<WaiterHandle>,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, Count> {
        // Nothing panics while the lock is held; a poisoned lock still
        // guards a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one more job.
    fn add(self: &Arc<Group>) -> WaitGroupGuard {
        let mut state = self.lock();
        // Unreachable in practice: every guard holds a reference to `self`,
        // and `Arc` aborts past `isize::MAX` references first.
        state.count =
            state.count.checked_add(1).expect("green::sync::WaitGroup: more guards than a usize counts");
        WaitGroupGuard { shared: self.clone() }
    }
}

impl WaitGroup {
    /// An empty group: `wait` returns at once until a job is added.
    pub fn new() -> WaitGroup {
        let count = Count { count: 0, waiters: WaitQueue::new(WaitKind::WaitGroup) };
        WaitGroup { shared: Arc::new(Group { state: Mutex::new(count) }) }
    }

    /// Adds a job; it is counted until the returned guard is dropped.
    pub fn add(&self) -> WaitGroupGuard {
        self.shared.add()
    }

    /// How many jobs are counted now. Only a snapshot: jobs may finish, or
    /// be added, right after it is taken.
    pub fn count(&self) -> usize {
        self.shared.lock().count
    }

    /// Waits until no job is counted; returns at once if none is.
    ///
    /// # Errors
    ///
    /// [`WaitError::Cancelled`] if the calling coroutine is cancelled first.
    pub fn wait(&self) -> Result<(), WaitError> {
        self.wait_until(None)
    }

    /// Waits until no job is counted, or `timeout` has elapsed.
    ///
    /// # Errors
    ///
    /// [`WaitError::TimedOut`] if jobs were still counted when the timeout
    /// elapsed; [`WaitError::Cancelled`] if the calling coroutine was
    /// cancelled first. The group is unchanged either way.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), WaitError> {
        self.wait_until(deadline_after(timeout))
    }

    /// Waits until no job is counted, or `deadline` has passed.
    ///
    /// # Errors
    ///
    /// As [`WaitGroup::wait_timeout`].
    pub fn wait_deadline(&self, deadline: Instant) -> Result<(), WaitError> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<(), WaitError> {
        let queued = {
            let mut state = self.shared.lock();
            if state.count == 0 {
                return Ok(());
            }
            let waiter = Waiter::new();
            state.waiters.push(waiter.handle());
            Queued { shared: &self.shared, waiter }
        };
        match queued.waiter.wait(deadline) {
            Outcome::Claimed(_) => Ok(()),
            Outcome::TimedOut => queued.give_up(WaitError::TimedOut),
            Outcome::Cancelled => queued.give_up(WaitError::Cancelled),
        }
    }
}

impl WaitGroupGuard {
    /// Marks the job done (the same as dropping the guard, said aloud).
    pub fn done(self) {}
}

impl Clone for WaitGroupGuard {
    /// Adds one more job to the same group.
    fn clone(&self) -> WaitGroupGuard {
        self.shared.add()
    }
}

impl Drop for WaitGroupGuard {
    fn drop(&mut self) {
        let woken: Vec<WaiterHandle> = {
            let mut state = self.shared.lock();
            // This guard is counted: the count is at least 1.
            state.count -= 1;
            if state.count > 0 {
                return;
            }
            state.waiters.drain().filter(|w| w.claim(EMPTY)).collect()
        };
        for waiter in woken {
            waiter.wake();
        }
    }
}

/// A waiter in a group's queue. Dropped without being claimed (an
/// interrupted wait, or a coroutine unwound while it waited), it takes its
/// entry out of the queue.
struct Queued<'a> {
    /// The group it waits on.
    shared: &'a Group,
    /// The waiter whose handle is in the queue.
    waiter: Waiter,
}

impl Queued<'_> {
    /// Leaves the queue after an interrupted wait; reports success if the
    /// group is empty by now, `why` otherwise.
    fn give_up(self, why: WaitError) -> Result<(), WaitError> {
        let shared = self.shared;
        drop(self);
        if shared.lock().count == 0 { Ok(()) } else { Err(why) }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        // A claimed waiter was already taken out of the queue.
        if self.waiter.claimed().is_none() {
            self.shared.lock().waiters.remove(&self.waiter);
        }
    }
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup").field("count", &self.count()).finish()
    }
}

impl fmt::Debug for WaitGroupGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroupGuard").field("count", &self.shared.lock().count).finish()
    }
}
