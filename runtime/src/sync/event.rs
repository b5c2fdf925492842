//! `Event`: a flag that waiters wait to see set, like `threading.Event` in
//! Python or `gevent.event.Event`.
//!
//! # States
//!
//! 1. **Clear**: waiters queue up; `set` moves to Set.
//! 2. **Set**: `wait` returns at once; `clear` moves back to Clear.
//!
//! # Protocol
//!
//! The flag is written only under the lock of `waiters`, so a waiter that
//! finds it clear under the lock and queues itself is always in the queue
//! when `set` drains it. `set` claims every waiter still waiting (an
//! abandoned one has timed out or been cancelled and fails the claim) and
//! wakes them after releasing the lock. The flag is an atomic besides, so
//! that `is_set` and the fast path of `wait` need no lock.
//!
//! A wait that is interrupted (timeout, cancellation, or its coroutine
//! unwound at shutdown) removes its entry; it never changed anything else.
//! If the event is set by the time the interrupted waiter has left the
//! queue, the wait reports success anyway: it asked for the event, and the
//! event is there.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::wait::party::{Outcome, deadline_after};
use super::wait::queue::WaitQueue;
use super::wait::waiter::{Waiter, WaiterHandle};
use super::wait_error::WaitError;
use crate::dump::kind::WaitKind;

/// The token `set` claims waiters with.
const SET: usize = 0;

/// A flag that coroutines and threads wait on until someone sets it.
///
/// `set` wakes every waiter at once; the flag then stays set, and later
/// waits return at once, until `clear`. Works between coroutines of any
/// runtimes and plain threads; `Send` and `Sync`, usually shared in an
/// [`Arc`](std::sync::Arc) or a `static`.
///
/// ```
/// use std::sync::Arc;
/// use green::sync::Event;
///
/// green::run(|| {
///     let ready = Arc::new(Event::new());
///     let waiters: Vec<_> = (0..3)
///         .map(|_| {
///             let ready = ready.clone();
///             green::spawn(move || ready.wait())
///         })
///         .collect();
///     ready.set();
///     for waiter in waiters {
///         assert_eq!(waiter.join().unwrap(), Ok(()));
///     }
/// });
/// ```
///
/// # Errors, and why `wait` returns a `Result`
///
/// A coroutine can be cancelled while it waits (by its `JoinHandle`, a
/// [`green::timeout`](crate::timeout) scope, runtime shutdown). `wait` then
/// returns [`WaitError::Cancelled`] instead of
/// pretending the event was set; the `_timeout` and `_deadline` variants
/// may also return [`WaitError::TimedOut`]. The `Result` is `#[must_use]`,
/// so a forgotten timeout check is a warning, and `?` turns it into an
/// [`io::Error`](std::io::Error) where that is what the caller returns.
pub struct Event {
    /// Whether the event is set. Written only while `waiters` is locked;
    /// read without the lock by `is_set` and the fast path of `wait`.
    flag: AtomicBool,
    /// Who waits for the flag, oldest first. `None` until the first waiter
    /// comes, so that `new` can be `const`.
    waiters: Mutex<WaitQueue<WaiterHandle>>,
}

impl Event {
    /// A clear event.
    pub const fn new() -> Event {
        Event { flag: AtomicBool::new(false), waiters: Mutex::new(WaitQueue::new(WaitKind::Event)) }
    }

    /// Sets the event and wakes every waiter. Setting an event that is
    /// already set does nothing.
    pub fn set(&self) {
        if self.is_set() {
            return;
        }
        let woken: Vec<WaiterHandle> = {
            let mut waiters = self.lock();
            if self.flag.load(Ordering::Relaxed) {
                return;
            }
            self.flag.store(true, Ordering::Release);
            waiters.drain().filter(|waiter| waiter.claim(SET)).collect()
        };
        for waiter in woken {
            waiter.wake();
        }
    }

    /// Clears the event: waits from now on wait for the next `set`.
    /// Waiters already woken by an earlier `set` are not affected.
    pub fn clear(&self) {
        let _waiters = self.lock();
        self.flag.store(false, Ordering::Release);
    }

    /// Whether the event is set.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Waits until the event is set; returns at once if it is.
    ///
    /// # Errors
    ///
    /// [`WaitError::Cancelled`] if the calling coroutine is cancelled first.
    pub fn wait(&self) -> Result<(), WaitError> {
        self.wait_until(None)
    }

    /// Waits until the event is set or `timeout` has elapsed.
    ///
    /// # Errors
    ///
    /// [`WaitError::TimedOut`] if the event was still clear when the
    /// timeout elapsed; [`WaitError::Cancelled`] if the calling coroutine
    /// was cancelled first.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), WaitError> {
        self.wait_until(deadline_after(timeout))
    }

    /// Waits until the event is set or `deadline` has passed.
    ///
    /// # Errors
    ///
    /// As [`Event::wait_timeout`].
    pub fn wait_deadline(&self, deadline: Instant) -> Result<(), WaitError> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<(), WaitError> {
        if self.is_set() {
            return Ok(());
        }
        let waiter = Waiter::new();
        {
            let mut waiters = self.lock();
            if self.flag.load(Ordering::Relaxed) {
                return Ok(());
            }
            waiters.push(waiter.handle());
        }
        let queued = Queued { event: self, waiter };
        match queued.waiter.wait(deadline) {
            Outcome::Claimed(_) => Ok(()),
            Outcome::TimedOut => queued.give_up(WaitError::TimedOut),
            Outcome::Cancelled => queued.give_up(WaitError::Cancelled),
        }
    }

    fn lock(&self) -> MutexGuard<'_, WaitQueue<WaiterHandle>> {
        // Nothing panics while the lock is held; a poisoned lock still
        // guards a consistent queue.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A waiter in an event's queue. Dropped without being claimed (an
/// interrupted wait, or a coroutine unwound while it waited), it takes its
/// entry out of the queue.
struct Queued<'a> {
    /// The event it waits on.
    event: &'a Event,
    /// The waiter whose handle is in the queue.
    waiter: Waiter,
}

impl Queued<'_> {
    /// Leaves the queue after an interrupted wait; reports success if the
    /// event is set by now, `why` otherwise.
    fn give_up(self, why: WaitError) -> Result<(), WaitError> {
        let event = self.event;
        drop(self);
        if event.is_set() {
            // Set meanwhile: the wait succeeded after all.
            crate::park::retract_cancellation();
            Ok(())
        } else {
            Err(why)
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        // A claimed waiter was already taken out of the queue by `set`.
        if self.waiter.claimed().is_none() {
            self.event.lock().remove(&self.waiter);
        }
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("is_set", &self.is_set()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_wait_leaves_no_entry_behind() {
        let event = Event::new();
        for _ in 0..3 {
            assert_eq!(event.wait_timeout(Duration::ZERO), Err(WaitError::TimedOut));
        }
        assert_eq!(event.lock().len(), 0);
    }

    #[test]
    fn set_empties_the_queue() {
        let event = std::sync::Arc::new(Event::new());
        let waiter = {
            let event = event.clone();
            std::thread::spawn(move || event.wait())
        };
        // Wait (without sleeping) until the thread has queued itself.
        while event.lock().is_empty() {
            std::thread::yield_now();
        }
        event.set();
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(event.lock().len(), 0);
    }
}
