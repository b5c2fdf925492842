//! [`Condvar`]: wait for a condition on data guarded by a [`Mutex`],
//! parking coroutines instead of threads.
//!
//! # Protocol
//!
//! ```text
//!   waiter                                   notifier
//!   holds the mutex, sees the condition false
//!   queue itself (condvar's queue lock)
//!   unlock the mutex  ---------------------> lock the mutex, change the data
//!   wait                                     notify_one: claim the oldest
//!     <------------------------------------- waiter, wake it
//!   lock the mutex again (queue behind its
//!   other waiters if it is held)
//! ```
//!
//! No wake-up is lost: the waiter is in the queue *before* it releases the
//! mutex, so a notifier that changes the condition (which it does holding
//! the mutex) finds it there. `notify_one` claims the oldest waiter that
//! still waits; a waiter that timed out or was cancelled has abandoned
//! itself and fails the claim, so it never swallows a notification meant
//! for someone else (`std`'s condvar makes no such promise).
//!
//! # Interrupted waits
//!
//! * Timed out: the waiter removes its entry, locks the mutex again and
//!   returns with [`WaitTimeoutResult::timed_out`].
//! * Cancelled while waiting for a notification: the entry is removed and
//!   the wait fails with [`LockError::Cancelled`] *without* locking the
//!   mutex again (that would be one more wait, which a cancelled coroutine
//!   cannot do): the caller's guard is gone and the mutex is free.
//! * Notified, then cancelled while locking the mutex again: the
//!   notification is passed on to the next waiter (a `notify_one`), since
//!   the caller never got to act on it; the wait fails as above.
//! * A coroutine unwound while it waits (the runtime's shutdown) removes
//!   its entry, and passes the notification on if it had been given one.
//!
//! Rejected: moving notified waiters straight into the mutex's queue
//! ("wait morphing", which spares `notify_all` a herd that wakes only to
//! queue on the mutex again). A waiter is claimed exactly once, and here
//! the claim is the notification; granting it the mutex would be a second
//! claim on the same waiter, which the waiter protocol does not have.

use std::fmt;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use super::mutex::MutexGuard;
use super::poison::{LockError, LockResult};
use super::wait::party::{Outcome, deadline_after};
use super::wait::queue::{LockedQueue, Woken};
use super::wait::waiter::{Waiter, WaiterHandle};
use crate::dump::kind::WaitKind;

/// The token a notification claims a waiter with.
const NOTIFIED: usize = 0;

/// A condition variable for our [`Mutex`](super::Mutex), with `std`'s API.
///
/// Waiting parks a coroutine (or blocks a plain thread) until another
/// party notifies; waiters and notifiers may be any mix of coroutines of
/// any runtimes and plain threads. One condvar may be used with several
/// mutexes (`std` forbids that; nothing here depends on it).
///
/// ```
/// use std::sync::Arc;
/// use green::sync::{Condvar, Mutex};
///
/// green::run(|| {
///     let pair = Arc::new((Mutex::new(false), Condvar::new()));
///     let starter = pair.clone();
///     green::spawn(move || {
///         let (started, changed) = &*starter;
///         *started.lock().unwrap() = true;
///         changed.notify_one();
///     });
///     let (started, changed) = &*pair;
///     let started = changed.wait_while(started.lock().unwrap(), |started| !*started).unwrap();
///     assert!(*started);
/// });
/// ```
///
/// # Order
///
/// Waiters are notified oldest first, and, once notified, lock the mutex
/// again in the mutex's own FIFO order. A wait may also return without a
/// notification (after a timeout, and, as with every condition variable,
/// callers should re-check their condition in a loop; [`Condvar::wait_while`]
/// does).
///
/// # Timeouts and cancellation
///
/// A wait that times out or is cancelled leaves the queue: it never takes
/// a notification from a waiter that stays. See [`Condvar::wait`] for what
/// a cancelled wait does with the mutex.
///
/// # Cost
///
/// Each wait allocates one reference-counted waiter record and takes a
/// short std mutex section; a notification takes that section and wakes
/// (through the waiter's runtime's inbox if it is on another thread). The
/// woken waiter then locks the mutex like any other locker.
pub struct Condvar {
    /// Waiting parties, oldest first.
    waiters: LockedQueue<WaiterHandle>,
}

/// Whether a timed condition-variable wait returned because its time ran
/// out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because the timeout elapsed (for
    /// [`Condvar::wait_timeout_while`]: with the condition still true).
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// A condition variable nobody waits on.
    pub const fn new() -> Condvar {
        Condvar { waiters: LockedQueue::new(WaitKind::Condvar) }
    }

    /// Unlocks the mutex of `guard`, waits for a notification, and locks
    /// the mutex again. The caller is queued before the mutex is released,
    /// so a notification sent after that cannot be missed.
    ///
    /// # Errors
    ///
    /// * [`LockError::Poisoned`] if the mutex is poisoned when it is locked
    ///   again; the guard is inside.
    /// * [`LockError::Cancelled`] if the calling coroutine was cancelled
    ///   while it waited, either for the notification or for the mutex. The
    ///   mutex is then *not* locked: the guard is gone. A notification the
    ///   caller had received is passed on to another waiter.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        match self.wait_until(guard, None) {
            Ok((guard, _)) => Ok(guard),
            Err(err) => Err(map_poisoned(err, |(guard, _)| guard)),
        }
    }

    /// Waits, as [`Condvar::wait`], until `condition` returns `false`; it is
    /// checked first, and again after every wake-up, with the mutex held.
    ///
    /// # Errors
    ///
    /// As [`Condvar::wait`].
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Waits, as [`Condvar::wait`], for at most `timeout`. The mutex is
    /// locked again in any case, also after the timeout (which may take
    /// longer than `timeout` if the mutex is held).
    ///
    /// # Errors
    ///
    /// As [`Condvar::wait`]; a timeout is not an error but
    /// [`WaitTimeoutResult::timed_out`].
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        self.wait_until(guard, deadline_after(timeout))
    }

    /// Waits, as [`Condvar::wait_while`], until `condition` returns `false`
    /// or `timeout` has elapsed. [`WaitTimeoutResult::timed_out`] says
    /// whether the time ran out with the condition still true.
    ///
    /// # Errors
    ///
    /// As [`Condvar::wait`].
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        let deadline = deadline_after(timeout);
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            guard = self.wait_until(guard, deadline)?.0;
        }
    }

    /// Wakes the oldest waiter, if any.
    pub fn notify_one(&self) {
        let next = self.waiters.lock().pop_claimed(|waiter| waiter.claim(NOTIFIED));
        if let Some(next) = next {
            next.wake();
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        let mut woken = Woken::default();
        for waiter in self.waiters.lock().drain() {
            if waiter.claim(NOTIFIED) {
                woken.push(waiter);
            }
        }
        woken.wake();
    }

    fn wait_until<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let waiter = Waiter::new();
        self.waiters.lock().push(waiter.handle());
        let queued = Queued { condvar: self, waiter, notified: false };
        let (mutex, poison) = guard.unlock_for_wait();
        let notified = match queued.wait(deadline) {
            Outcome::Claimed(_) => true,
            Outcome::TimedOut => false,
            Outcome::Cancelled => return Err(LockError::Cancelled),
        };
        let Some(guard) = MutexGuard::relock(mutex, poison) else {
            if notified {
                self.notify_one();
            }
            return Err(LockError::Cancelled);
        };
        let result = (guard, WaitTimeoutResult(!notified));
        if mutex.is_poisoned() { Err(LockError::Poisoned(PoisonError::new(result))) } else { Ok(result) }
    }
}

/// Changes the guard type inside a `Poisoned` error.
fn map_poisoned<G, H>(err: LockError<G>, f: impl FnOnce(G) -> H) -> LockError<H> {
    match err {
        LockError::Poisoned(poisoned) => LockError::Poisoned(PoisonError::new(f(poisoned.into_inner()))),
        LockError::TimedOut => LockError::TimedOut,
        LockError::Cancelled => LockError::Cancelled,
    }
}

/// A waiter in the queue. Dropped without a notification (its wait timed
/// out or was cancelled, or its coroutine is unwound while it waits), it
/// removes its entry; dropped holding one it never returned (unwound), it
/// passes the notification on.
struct Queued<'a> {
    /// The condvar it waits on.
    condvar: &'a Condvar,
    /// The waiter whose handle is in the queue.
    waiter: Waiter,
    /// Set once the wait returned with a notification: nothing to undo.
    notified: bool,
}

impl Queued<'_> {
    fn wait(mut self, deadline: Option<Instant>) -> Outcome {
        let outcome = self.waiter.wait(deadline);
        self.notified = matches!(outcome, Outcome::Claimed(_));
        outcome
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.notified {
            return;
        }
        // Claims happen only under the queue lock: holding it, the waiter
        // is either claimed already or, once its entry is gone, never will
        // be (after a timeout it has abandoned itself too).
        let mut queue = self.condvar.waiters.lock();
        if self.waiter.claimed().is_none() {
            queue.remove(&self.waiter);
            return;
        }
        drop(queue);
        self.condvar.notify_one();
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}
