//! The sole waiter: a party that waits in exactly one queue, every claim
//! on which, and its own giving up, happen under that queue's lock. A
//! plain `send` or `recv` on a channel waits this way; a select (several
//! queues) and the locks use the shared [`Waiter`](super::waiter::Waiter).
//!
//! One lock orders everything that can end the wait, so the wait needs
//! none of the shared waiter's machinery:
//!
//! * it lives in the waiting frame: no allocation, no reference count;
//! * a claim is a load and a store, not a compare-and-swap;
//! * a notifier takes what it needs to wake the owner *during* the claim,
//!   so nothing of the waiter is touched after the claim is visible.
//!
//! # The protocol
//!
//! ```text
//!   owner (any thread)                       notifier (any thread)
//!   lock; queue SoleHandle(&waiter); unlock
//!   wait(): loop {                           lock
//!     state != WAITING? -> Claimed(token)      pop the entry, claim_with(token):
//!     park                                       state == WAITING? else skip it
//!   }                                            transfer (the message)
//!                                                wake-up = what wakes the owner
//!                                                  (on its thread: it is woken here)
//!                                                state = token     (the last write)
//!   interrupted (timeout, cancel):           unlock
//!     lock; give_up(): state still WAITING?  wake-up.wake()
//!       yes: remove the entry, report it
//!       no: the claim won, report success
//!     unlock
//! ```
//!
//! # Why the queue may point into the owner's frame
//!
//! 1. The entry is in the queue only while the owner is inside the wait:
//!    it is queued under the lock before the wait, and taken out under the
//!    lock by whoever ends it (the notifier that claims it pops it; an
//!    owner that gives up, or is unwound mid-wait, removes it).
//! 2. A notifier dereferences the entry only under the lock, while the
//!    entry is queued, so the waiter is alive. Its last write is the
//!    token; the [`Wakeup`] it returns holds its own clones (of the
//!    runtime's inbox, the thread), so the owner may leave the moment it
//!    sees the token, without the lock.
//! 3. The task record (`Rc`, not thread-safe) is touched only by a notifier
//!    on the owner's own thread (the claim compares runtimes first), which
//!    makes the owner runnable during the claim: the owner cannot run
//!    before that notifier switches away anyway.

use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Instant;

use super::party::{Outcome, Party, Waiting, wait_claimed};
use super::touch::Touch;
use super::waiter::WaiterHandle;
use crate::context::Context;
use crate::inbox::Inbox;
use crate::park;
use crate::task::cell::Waker;
use crate::task::state::{ParkRef, WakeReason};

/// Not claimed yet.
const WAITING: usize = usize::MAX;

/// A waiter for one queue, in its owner's frame. See the module docs.
#[derive(Debug)]
pub(crate) struct SoleWaiter {
    /// `WAITING`, or the token of the claim. Written under the queue's
    /// lock; read by the owner without it.
    state: AtomicUsize,
    /// The touch of the queue the waiter is in (see `touch.rs`): written
    /// by the owner as it queues its entry, read by it when the wait
    /// begins.
    queue: AtomicPtr<Touch>,
    /// Who waits.
    party: Party<LocalTask>,
}

/// A coroutine as a sole waiter knows it.
#[derive(Debug)]
pub(crate) struct LocalTask {
    /// The task, in the epoch of its wait: woken by a notifier on its own
    /// thread.
    waker: Waker,
    /// Its runtime, which a notifier compares with its own.
    runtime: u64,
    /// What it records on the primitive it waits on (`touch.rs`).
    home: u64,
    /// The runtime's inbox, cloned by a notifier on another thread. It
    /// points into the runtime's context, which outlives its parked tasks.
    inbox: NonNull<Arc<Inbox>>,
    /// What such a notifier posts: the task and its epoch.
    at: ParkRef,
}

/// What a queue entry holds for a sole waiter: a pointer into the
/// owner's frame, dereferenced only under the queue's lock while the
/// entry is queued (module docs).
#[derive(Debug)]
pub(crate) struct SoleHandle {
    /// The waiter.
    waiter: NonNull<SoleWaiter>,
}

// SAFETY: dereferenced only under the queue's lock while its owner waits,
// reading `Sync` fields (state, inbox, thread), or the task record on the
// owner's own thread only (module docs).
unsafe impl Send for SoleHandle {}

impl SoleWaiter {
    /// A waiter for the caller: the running coroutine, or the current
    /// thread outside a runtime.
    #[inline]
    pub(crate) fn new() -> SoleWaiter {
        let party = Context::with(|cx| {
            cx.running_task().map(|task| {
                let epoch = task.epoch.get();
                let at = ParkRef { key: task.registry_key.get(), id: task.id().as_u64(), epoch };
                Party::Task(LocalTask {
                    waker: Waker::new(task, epoch),
                    runtime: cx.id(),
                    home: cx.home(),
                    inbox: cx.inbox(),
                    at,
                })
            })
        })
        .flatten()
        .unwrap_or_else(Party::this_thread);
        SoleWaiter { state: AtomicUsize::new(WAITING), queue: AtomicPtr::new(std::ptr::null_mut()), party }
    }

    /// What the queue entry holds.
    #[inline]
    pub(crate) fn handle(&self) -> SoleHandle {
        SoleHandle { waiter: NonNull::from(self) }
    }

    /// Waits until claimed, or until `deadline` passes or the coroutine is
    /// cancelled. After `TimedOut` or `Cancelled` nothing is settled yet:
    /// the caller calls [`SoleWaiter::give_up`] under the queue's lock.
    #[inline]
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Outcome {
        let who = match &self.party {
            Party::Task(task) => {
                debug_assert_eq!(
                    task.at.epoch,
                    task.waker.task.epoch.get(),
                    "a waiter waits in the epoch it was made in"
                );
                Waiting::Task(&task.waker.task, self.queue.load(Ordering::Relaxed))
            }
            Party::Thread(_) => Waiting::Thread,
        };
        wait_claimed(who, deadline, || self.claimed())
    }

    /// The token of the claim, if a notifier has claimed this waiter.
    #[inline]
    fn claimed(&self) -> Option<usize> {
        match self.state.load(Ordering::Acquire) {
            WAITING => None,
            token => Some(token),
        }
    }

    /// After [`SoleWaiter::wait`] returned `TimedOut` or `Cancelled`, with
    /// the queue's lock held: gives up, unless a notifier claimed the waiter
    /// meanwhile (then the operation is done, and its claim is returned).
    /// The caller removes the entry, if it gave up, before unlocking.
    pub(crate) fn give_up(&self, why: Outcome) -> Outcome {
        match self.claimed() {
            // No store is needed: the entry leaves the queue under this
            // lock, and nothing else can reach the waiter.
            None => why,
            Some(token) => {
                park::retract_cancellation();
                Outcome::Claimed(token)
            }
        }
    }
}

impl SoleHandle {
    /// Notes, as the owner queues this handle, that it is in the queue
    /// whose touch is `touch` (see `touch.rs`).
    #[inline]
    pub(crate) fn queued_in(&self, touch: &Touch) {
        // SAFETY: the owner queues its entry from inside its wait's frame,
        // under the queue's lock: the waiter is alive (module docs).
        let waiter = unsafe { self.waiter.as_ref() };
        let runtime = match &waiter.party {
            Party::Task(task) => Some(task.home),
            Party::Thread(_) => None,
        };
        touch.by(runtime);
        waiter.queue.store(std::ptr::from_ref(touch).cast_mut(), Ordering::Relaxed);
    }

    /// Whether this handle belongs to `waiter`.
    pub(crate) fn is_for(&self, waiter: &SoleWaiter) -> bool {
        std::ptr::eq(self.waiter.as_ptr(), waiter)
    }

    /// Claims the waiter with `token` (under the queue's lock, the entry
    /// still queued), running `transfer` first; returns how to wake it,
    /// once the lock is released. `None` if it was claimed already, which
    /// the protocol rules out for a queued entry (whoever claims it takes
    /// it out) and is checked anyway, so that no waiter is claimed twice.
    /// `transfer` must not panic.
    #[inline]
    pub(crate) fn claim_with(&self, token: usize, transfer: impl FnOnce()) -> Option<Wakeup> {
        debug_assert_ne!(token, WAITING);
        // SAFETY: the entry is queued and the caller holds the queue's lock,
        // so the owner is inside its wait and the waiter alive (module docs).
        let waiter = unsafe { self.waiter.as_ref() };
        if waiter.state.load(Ordering::Relaxed) != WAITING {
            return None;
        }
        transfer();
        let wakeup = match &waiter.party {
            Party::Task(task) => {
                // On the owner's thread the owner cannot run before this
                // notifier switches away, so it is made runnable right here.
                let local = Context::with(|cx| {
                    cx.id() == task.runtime && {
                        park::wake(cx, &task.waker, WakeReason::Ready);
                        true
                    }
                });
                if local == Some(true) {
                    Wakeup::Woken
                } else {
                    // SAFETY: the inbox lives in the owner's runtime context,
                    // which outlives the owner's wait (module docs).
                    let inbox = unsafe { task.inbox.as_ref() };
                    Wakeup::Remote(inbox.clone(), task.at)
                }
            }
            Party::Thread(thread) => Wakeup::Thread(thread.clone()),
        };
        // The last write: from here on the owner may leave.
        waiter.state.store(token, Ordering::Release);
        Some(wakeup)
    }
}

/// How to wake a party whose claim succeeded, once the primitive's lock is
/// released.
#[derive(Debug)]
pub(crate) enum Wakeup {
    /// A shared waiter (see [`WaiterHandle::wake`]).
    Shared(WaiterHandle),
    /// A coroutine of the caller's own runtime: made runnable during the
    /// claim already.
    Woken,
    /// A coroutine of another runtime: the wake-up goes through its inbox.
    Remote(Arc<Inbox>, ParkRef),
    /// A thread outside any runtime.
    Thread(Thread),
}

impl Wakeup {
    /// Wakes the party. The common case, a coroutine of the caller's own
    /// runtime, costs a test.
    #[inline(always)]
    pub(crate) fn wake(self) {
        if !matches!(self, Wakeup::Woken) {
            self.wake_other();
        }
    }

    /// The other cases of [`Wakeup::wake`], out of line.
    #[inline(never)]
    fn wake_other(self) {
        match self {
            Wakeup::Woken => {}
            Wakeup::Shared(handle) => handle.wake(),
            Wakeup::Remote(inbox, at) => inbox.post(at),
            Wakeup::Thread(thread) => thread.unpark(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::sync::{Mutex, mpsc};
    use std::thread;

    use super::*;

    /// A queue of one entry, behind a lock, as a primitive keeps it.
    type Queue = Arc<Mutex<Option<SoleHandle>>>;

    /// Queues `waiter` in a new queue.
    fn queued(waiter: &SoleWaiter) -> Queue {
        Arc::new(Mutex::new(Some(waiter.handle())))
    }

    /// What a notifier does: takes the entry and claims it under the lock.
    fn claim(queue: &Queue, token: usize, transfer: impl FnOnce()) -> Option<Wakeup> {
        let mut entry = queue.lock().unwrap();
        entry.take().and_then(|handle| handle.claim_with(token, transfer))
    }

    #[test]
    fn a_thread_wakes_a_parked_coroutine_through_its_inbox() {
        let (token, moved) = crate::run(|| {
            let waiter = SoleWaiter::new();
            let queue = queued(&waiter);
            let moved = Arc::new(AtomicU64::new(0));
            let notifier = {
                let moved = moved.clone();
                thread::spawn(move || {
                    let wakeup = claim(&queue, 7, || moved.store(42, Ordering::Relaxed)).expect("it waits");
                    assert!(matches!(wakeup, Wakeup::Remote(..)), "another thread posts: {wakeup:?}");
                    wakeup.wake();
                })
            };
            let outcome = waiter.wait(None);
            // The transfer is visible with the token, without the lock.
            let seen = moved.load(Ordering::Relaxed);
            notifier.join().unwrap();
            (outcome, seen)
        });
        assert_eq!(token, Outcome::Claimed(7));
        assert_eq!(moved, 42);
    }

    #[test]
    fn a_coroutine_of_the_same_runtime_wakes_it_directly() {
        let outcome = crate::run(|| {
            let waiter = SoleWaiter::new();
            let queue = queued(&waiter);
            let notifier = crate::spawn(move || {
                let wakeup = claim(&queue, 5, || {}).expect("it waits");
                assert!(matches!(wakeup, Wakeup::Woken), "its own runtime wakes it: {wakeup:?}");
                wakeup.wake();
            });
            let outcome = waiter.wait(None);
            notifier.join().unwrap();
            outcome
        });
        assert_eq!(outcome, Outcome::Claimed(5));
    }

    #[test]
    fn a_coroutine_wakes_a_parked_thread() {
        let (tx, rx) = mpsc::channel();
        let parked = thread::spawn(move || {
            let waiter = SoleWaiter::new();
            tx.send(queued(&waiter)).unwrap();
            waiter.wait(None)
        });
        let queue = rx.recv().unwrap();
        crate::run(move || {
            let wakeup = claim(&queue, 3, || {}).expect("it waits");
            assert!(matches!(wakeup, Wakeup::Thread(..)), "a thread is unparked: {wakeup:?}");
            wakeup.wake();
        });
        assert_eq!(parked.join().unwrap(), Outcome::Claimed(3));
    }

    #[test]
    fn an_interrupted_wait_gives_up_unless_a_claim_came_first() {
        crate::run(|| {
            // Timed out, then claimed before it gave up under the lock: the
            // claim wins, and the operation counts as done.
            let waiter = SoleWaiter::new();
            let queue = queued(&waiter);
            assert_eq!(waiter.wait(Some(Instant::now())), Outcome::TimedOut);
            claim(&queue, 3, || {}).expect("claimable until it gives up").wake();
            let entry = queue.lock().unwrap();
            assert_eq!(waiter.give_up(Outcome::TimedOut), Outcome::Claimed(3));
            assert!(entry.is_none(), "the notifier took the entry");
            drop(entry);
            // Gave up first: its entry leaves the queue under the same
            // lock, so no claim can reach it.
            let waiter = SoleWaiter::new();
            let queue = queued(&waiter);
            assert_eq!(waiter.wait(Some(Instant::now())), Outcome::TimedOut);
            let mut entry = queue.lock().unwrap();
            assert_eq!(waiter.give_up(Outcome::TimedOut), Outcome::TimedOut);
            assert!(entry.take().is_some_and(|handle| handle.is_for(&waiter)));
        });
    }

    #[test]
    fn a_claim_made_before_the_wait_is_not_lost() {
        let outcome = crate::run(|| {
            let waiter = SoleWaiter::new();
            let queue = queued(&waiter);
            // Claimed and woken while the coroutine still runs: the wake-up
            // waits for its park, which returns at once.
            claim(&queue, 9, || {}).expect("it waits").wake();
            waiter.wait(None)
        });
        assert_eq!(outcome, Outcome::Claimed(9));
    }
}
