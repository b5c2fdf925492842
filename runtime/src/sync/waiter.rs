//! The waiter: one party (a coroutine or an OS thread) waiting on one or
//! more primitives, and the queue every primitive keeps them in.
//!
//! Every blocking primitive (channels, select, locks, semaphores, events,
//! barriers, ...) waits through this file; none of them parks anything
//! itself. A primitive keeps its state behind a `std::sync::Mutex`, held
//! only for short, non-blocking critical sections, and a [`WaitQueue`] of
//! entries, each holding a [`WaiterHandle`].
//!
//! # The claim: who decides how a wait ends
//!
//! A waiter's `state` starts `WAITING` and changes exactly once:
//!
//! 1. **Claimed** with a token, by a notifier, under the primitive's lock
//!    ([`WaiterHandle::claim`]): the notifier has done the waiter's
//!    operation on its behalf (handed it a message, taken its message,
//!    granted it the lock or the permits) and then wakes it. The token
//!    says which operation (the branch of a select).
//! 2. **Abandoned** by the waiter itself, when its deadline passes or it is
//!    cancelled ([`Waiter::wait`]). A notifier that then tries to claim it
//!    fails and moves on to the next waiter: nothing was handed over.
//!
//! Both are a compare-and-swap from `WAITING`, so exactly one wins. That is
//! what makes every wait cancel-safe by construction: an interrupted wait
//! either lost the race to a notifier (the operation completed, and the
//! waiter reports success) or won it (the operation never happened, and
//! the primitive is exactly as if the waiter had never come). It is also
//! what makes `select` take exactly one branch: all its entries, in
//! different queues, share one waiter, and only one claim can succeed.
//!
//! # Waking
//!
//! * A coroutine is woken through a [`TaskRef`]: directly when the
//!   notifier runs on the coroutine's own thread, through its runtime's
//!   inbox otherwise (see `inbox.rs`). The waiter records the epoch of the
//!   park it is about to enter before checking the state one last time, so
//!   a claim that lands in between is never missed.
//! * A thread is woken with `Thread::unpark`; `park` may wake spuriously,
//!   so the waiter loops until the state changes.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering, fence};
use std::thread::{self, Thread};
use std::time::Instant;

use crate::inbox::TaskRef;
use crate::park::{self, WakeReason};
use crate::scheduler::Scheduler;
use crate::task::cell::TaskCell;

/// The waiter has not been claimed or abandoned yet.
const WAITING: usize = usize::MAX;
/// The waiter gave up (timeout or cancellation) before any claim.
const ABANDONED: usize = usize::MAX - 1;

/// Who to wake.
#[derive(Debug)]
enum Target {
    /// A coroutine, with the epoch of the park it is in (or about to enter).
    Task(TaskRef, AtomicU32),
    /// An OS thread outside any runtime.
    Thread(Thread),
}

/// The shared part of a waiter. A coroutine keeps its last one and reuses
/// it when no queue holds it any more.
#[derive(Debug)]
pub(crate) struct Core {
    /// `WAITING`, `ABANDONED`, or the token of the claim.
    state: AtomicUsize,
    /// Who to wake once claimed.
    target: Target,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A notifier claimed the waiter with this token: the operation is done.
    Claimed(usize),
    /// The deadline passed first; nothing was done.
    TimedOut,
    /// The coroutine was cancelled first; nothing was done.
    Cancelled,
}

/// The waiting side: made by the party that waits, for one wait.
#[derive(Debug)]
pub(crate) struct Waiter {
    /// Shared with the handles in the queues; `None` only while dropping.
    core: Option<Arc<Core>>,
    /// The coroutine that waits, which gets the core back for its next
    /// wait; `None` for a thread.
    task: Option<Rc<TaskCell>>,
}

/// The notifying side: what a queue entry holds. `Send` and `Sync`.
#[derive(Debug, Clone)]
pub(crate) struct WaiterHandle {
    /// Shared with the waiter.
    core: Arc<Core>,
}

impl Waiter {
    /// A waiter for the caller: the running coroutine, or the current
    /// thread outside a runtime.
    pub(crate) fn new() -> Waiter {
        let waiter = Scheduler::with(|s| {
            let task = s.has_current().then(|| s.current_task())?;
            let epoch = task.epoch.get();
            let cached = task.waiter_cache.borrow_mut().take();
            let core = match cached {
                // Nobody else holds it: every queue entry and notifier
                // handle of the last wait is gone, and nobody can get a new
                // one (handles are made from the waiter only, and no `Weak`
                // exists), so resetting its atomics cannot race. The fence
                // orders the reset after the last holder's release.
                Some(core) if Arc::strong_count(&core) == 1 => {
                    fence(Ordering::Acquire);
                    core.state.store(WAITING, Ordering::Relaxed);
                    if let Target::Task(_, last) = &core.target {
                        last.store(epoch, Ordering::Relaxed);
                    }
                    core
                }
                _ => {
                    let target = Target::Task(s.task_ref(&task), AtomicU32::new(epoch));
                    Arc::new(Core { state: AtomicUsize::new(WAITING), target })
                }
            };
            Some(Waiter { core: Some(core), task: Some(task) })
        })
        .flatten();
        waiter.unwrap_or_else(|| {
            let core = Core { state: AtomicUsize::new(WAITING), target: Target::Thread(thread::current()) };
            Waiter { core: Some(Arc::new(core)), task: None }
        })
    }

    fn core(&self) -> &Arc<Core> {
        self.core.as_ref().expect("a waiter has its core until dropped")
    }

    /// A handle to put in a primitive's queue.
    pub(crate) fn handle(&self) -> WaiterHandle {
        WaiterHandle { core: self.core().clone() }
    }

    /// The token of the claim, if a notifier has claimed this waiter.
    pub(crate) fn claimed(&self) -> Option<usize> {
        match self.core().state.load(Ordering::SeqCst) {
            WAITING | ABANDONED => None,
            token => Some(token),
        }
    }

    /// Waits until claimed, or until `deadline` passes or the coroutine is
    /// cancelled, whichever comes first (see the module docs).
    ///
    /// After `TimedOut` or `Cancelled` the waiter is abandoned: the caller
    /// removes its entries from the queues (under the primitive's lock)
    /// and reports the failure; no notifier can claim it any more.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Outcome {
        match (&self.core().target, &self.task) {
            (Target::Task(_, epoch), Some(task)) => self.wait_task(task, epoch, deadline),
            _ => self.wait_thread(deadline),
        }
    }

    fn wait_task(&self, task: &TaskCell, epoch: &AtomicU32, deadline: Option<Instant>) -> Outcome {
        if let Some(token) = self.claimed() {
            return Outcome::Claimed(token);
        }
        // Ends the count also when the coroutine is unwound mid-wait (torn
        // down at shutdown).
        let _counted = RemoteWait::begin();
        loop {
            // Publish the park we are about to enter, then look at the
            // state: a claim made before the store is seen here, a claim
            // made after it wakes the right park (both are SeqCst). The
            // epoch changes only when a park returned early, so the store
            // is usually skipped: the value every notifier reads is then
            // the one published with the handle, under the queue's lock.
            let current = task.epoch.get();
            if epoch.load(Ordering::Relaxed) != current {
                epoch.store(current, Ordering::SeqCst);
            }
            if let Some(token) = self.claimed() {
                return Outcome::Claimed(token);
            }
            match park::park(deadline) {
                WakeReason::Ready => continue,
                WakeReason::TimedOut => return self.abandon(Outcome::TimedOut),
                WakeReason::Cancelled => return self.abandon(Outcome::Cancelled),
            }
        }
    }

    fn wait_thread(&self, deadline: Option<Instant>) -> Outcome {
        loop {
            if let Some(token) = self.claimed() {
                return Outcome::Claimed(token);
            }
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return self.abandon(Outcome::TimedOut);
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }

    /// Gives up unless a notifier got there first, in which case the
    /// operation is done and its claim wins.
    fn abandon(&self, why: Outcome) -> Outcome {
        match self.core().state.compare_exchange(WAITING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => why,
            Err(token) => {
                // Claimed first: the operation completed after all.
                park::retract_cancellation();
                Outcome::Claimed(token)
            }
        }
    }
}

impl Drop for Waiter {
    /// A waiter dropped while still waiting (its coroutine unwound at
    /// shutdown, or a primitive that returned early) is abandoned, so no
    /// notifier can hand it anything after its owner is gone. A coroutine
    /// keeps the core for its next wait.
    fn drop(&mut self) {
        let Some(core) = self.core.take() else { return };
        if core.state.load(Ordering::SeqCst) == WAITING {
            let _ = core.state.compare_exchange(WAITING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst);
        }
        if let Some(task) = &self.task {
            *task.waiter_cache.borrow_mut() = Some(core);
        }
    }
}

/// Counts a coroutine's wait with its scheduler, which must not report a
/// deadlock meanwhile; uncounts it on drop, also when unwinding.
struct RemoteWait;

impl RemoteWait {
    fn begin() -> RemoteWait {
        Scheduler::with(Scheduler::remote_wait_begins);
        RemoteWait
    }
}

impl Drop for RemoteWait {
    fn drop(&mut self) {
        Scheduler::with(Scheduler::remote_wait_ends);
    }
}

impl WaiterHandle {
    /// Claims the waiter with `token` if it is still waiting. On success
    /// the caller has done (or must now do, before releasing the
    /// primitive's lock) the waiter's operation, and must call
    /// [`WaiterHandle::wake`].
    pub(crate) fn claim(&self, token: usize) -> bool {
        debug_assert!(token < ABANDONED, "tokens are small numbers");
        self.core.state.compare_exchange(WAITING, token, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Whether the waiter can still be claimed.
    pub(crate) fn is_waiting(&self) -> bool {
        self.core.state.load(Ordering::SeqCst) == WAITING
    }

    /// Wakes the waiter after a successful claim. May be called after the
    /// primitive's lock is released.
    pub(crate) fn wake(&self) {
        match &self.core.target {
            Target::Task(task, epoch) => task.wake(epoch.load(Ordering::SeqCst)),
            Target::Thread(thread) => thread.unpark(),
        }
    }

    /// Whether this handle belongs to `waiter`.
    pub(crate) fn is_for(&self, waiter: &Waiter) -> bool {
        Arc::ptr_eq(&self.core, waiter.core())
    }
}

/// Anything that sits in a [`WaitQueue`]: an entry holding a waiter.
pub(crate) trait Entry {
    /// The waiter this entry belongs to.
    fn waiter(&self) -> &WaiterHandle;
}

impl Entry for WaiterHandle {
    fn waiter(&self) -> &WaiterHandle {
        self
    }
}

/// A FIFO of waiting entries, kept inside a primitive's locked state.
#[derive(Debug)]
pub(crate) struct WaitQueue<E> {
    /// Oldest first.
    entries: VecDeque<E>,
}

impl<E> Default for WaitQueue<E> {
    fn default() -> Self {
        WaitQueue::new()
    }
}

impl<E> WaitQueue<E> {
    /// An empty queue (usable in `const` constructors).
    pub(crate) const fn new() -> WaitQueue<E> {
        WaitQueue { entries: VecDeque::new() }
    }
}

impl<E: Entry> WaitQueue<E> {
    /// Adds an entry at the back.
    pub(crate) fn push(&mut self, entry: E) {
        self.entries.push_back(entry);
    }

    /// Removes and returns the oldest entry whose waiter `claim` accepts:
    /// `claim` is called on each entry in order (entries whose waiter is no
    /// longer waiting are dropped on the way) and claims the waiter itself,
    /// typically with [`WaiterHandle::claim`] and a token. The caller wakes
    /// the returned entry's waiter.
    pub(crate) fn pop_claimed(&mut self, mut claim: impl FnMut(&E) -> bool) -> Option<E> {
        while let Some(entry) = self.entries.pop_front() {
            if claim(&entry) {
                return Some(entry);
            }
        }
        None
    }

    /// The oldest entry that is still waiting, without removing it (entries
    /// that are not are dropped on the way).
    pub(crate) fn front_waiting(&mut self) -> Option<&E> {
        while let Some(entry) = self.entries.front() {
            if entry.waiter().is_waiting() {
                break;
            }
            self.entries.pop_front();
        }
        self.entries.front()
    }

    /// Removes every entry of `waiter` (after it gave up).
    pub(crate) fn remove(&mut self, waiter: &Waiter) {
        self.entries.retain(|entry| !entry.waiter().is_for(waiter));
    }

    /// Whether no entry is queued (waiting or not).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries queued, including ones no longer waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Removes and returns every entry, oldest first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = E> + '_ {
        self.entries.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_thread_claims_and_wakes_a_parked_coroutine() {
        let token = crate::run(|| {
            let waiter = Waiter::new();
            let handle = waiter.handle();
            // The claim comes from another thread, through the inbox, while
            // the coroutine is parked (or about to park: either works).
            let notifier = thread::spawn(move || {
                assert!(handle.claim(7));
                handle.wake();
            });
            let outcome = waiter.wait(None);
            notifier.join().unwrap();
            outcome
        });
        assert_eq!(token, Outcome::Claimed(7));
    }

    #[test]
    fn a_coroutine_claims_and_wakes_a_parked_thread() {
        let (tx, rx) = mpsc::channel();
        let parked = thread::spawn(move || {
            let waiter = Waiter::new();
            tx.send(waiter.handle()).unwrap();
            waiter.wait(None)
        });
        let handle = rx.recv().unwrap();
        crate::run(move || {
            assert!(handle.claim(3));
            handle.wake();
        });
        assert_eq!(parked.join().unwrap(), Outcome::Claimed(3));
    }

    #[test]
    fn a_timed_out_waiter_cannot_be_claimed_afterwards() {
        crate::run(|| {
            let waiter = Waiter::new();
            let handle = waiter.handle();
            let deadline = Instant::now() + Duration::from_millis(1);
            assert_eq!(waiter.wait(Some(deadline)), Outcome::TimedOut);
            assert!(!handle.claim(1), "an abandoned waiter refuses claims");
            assert_eq!(waiter.claimed(), None);
        });
        let waiter = Waiter::new();
        let handle = waiter.handle();
        assert_eq!(waiter.wait(Some(Instant::now())), Outcome::TimedOut);
        assert!(!handle.claim(1));
    }

    #[test]
    fn a_claim_made_before_the_wait_is_not_lost() {
        crate::run(|| {
            let waiter = Waiter::new();
            let handle = waiter.handle();
            assert!(handle.claim(5));
            handle.wake();
            // The wake-up found the coroutine running; the wait sees the
            // claim without parking.
            assert_eq!(waiter.wait(Some(Instant::now() + Duration::from_secs(60))), Outcome::Claimed(5));
            assert!(!handle.claim(6), "a waiter is claimed once");
        });
    }

    #[test]
    fn the_queue_skips_waiters_that_are_gone() {
        let first = Waiter::new();
        let second = Waiter::new();
        let mut queue = WaitQueue::default();
        queue.push(first.handle());
        queue.push(second.handle());
        assert_eq!(first.wait(Some(Instant::now())), Outcome::TimedOut);
        let claimed = queue.pop_claimed(|entry| entry.claim(0)).expect("the second is waiting");
        assert!(claimed.is_for(&second));
        assert!(queue.is_empty());
        queue.push(second.handle());
        queue.remove(&second);
        assert_eq!(queue.len(), 0);
    }
}
