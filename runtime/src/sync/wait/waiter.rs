//! The shared waiter: a party whose wait may be ended from several queues
//! (a select) or by notifiers that claim it without holding its queue's
//! lock. Its state lives in a reference-counted [`Core`] that every queue
//! entry ([`WaiterHandle`]) shares; a claim is a compare-and-swap on it.
//! See `mod.rs` for the claim protocol.
//!
//! # Reusing cores
//!
//! A core costs an allocation and, for each handle made and dropped, an
//! atomic reference-count operation. The runtime's context keeps the core
//! of a coroutine's finished wait ([`Spares`], in `core.rs`) when nothing
//! else holds it any more, with the reference a notifier of the same
//! runtime handed back when it woke the waiter: the next wait takes both,
//! and its first handle is that second reference, so the common path (one
//! wait, woken by a coroutine of the same runtime) allocates nothing and
//! touches no reference count.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
use std::time::Instant;

use super::core::{ABANDONED, Core, Party, SharedTask, TRANSFERRING, WAITING};
use super::party::{Outcome, Waiting, wait_claimed};
use super::touch::{Touch, mark_queue};
use crate::context::Context;
use crate::park;
use crate::task::cell::TaskCell;
use crate::task::state::{ParkRef, WakeReason};

/// The waiting side: made by the party that waits, for one wait.
pub(crate) struct Waiter {
    /// Shared with the handles in the queues; cached (or dropped, for a
    /// thread) when the waiter is dropped.
    core: ManuallyDrop<Arc<Core>>,
    /// A second reference to the core, which becomes the first handle
    /// without touching the reference count (see the module docs).
    spare: Cell<Option<Arc<Core>>>,
    /// The coroutine that waits; `None` for a thread.
    task: Option<Rc<TaskCell>>,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter").field("core", &*self.core).finish_non_exhaustive()
    }
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
    #[inline]
    pub(crate) fn new() -> Waiter {
        match Context::with(|cx| cx.running_task().map(|task| Waiter::for_task(cx, task))).flatten() {
            Some(waiter) => waiter,
            None => {
                let core = Core {
                    state: AtomicUsize::new(WAITING),
                    queues: AtomicPtr::new(ptr::null_mut()),
                    party: Party::this_thread(),
                };
                Waiter { core: ManuallyDrop::new(Arc::new(core)), spare: Cell::new(None), task: None }
            }
        }
    }

    /// A waiter for `task`, the running task of `cx`, on this thread's
    /// cached core when there is one for the same runtime.
    #[inline(always)]
    fn for_task(cx: &Context, task: Rc<TaskCell>) -> Waiter {
        let at = ParkRef { key: task.registry_key.get(), id: task.id().as_u64(), epoch: task.epoch.get() };
        let (core, spare) = match cx.waiter_spares.take() {
            // Cached only when nothing else held it: every queue entry and
            // notifier handle of the last wait is gone, and nobody can get
            // a new one (handles are made from the waiter only, and no
            // `Weak` exists), so resetting its atomics cannot race. The
            // fence orders the reset after the last holder's release.
            Some(cached) => cached,
            None => {
                let party = Party::Task(SharedTask {
                    inbox: cx.inbox_ref().clone(),
                    key: AtomicUsize::new(at.key),
                    id: AtomicU64::new(at.id),
                    epoch: AtomicU32::new(at.epoch),
                });
                let core = Arc::new(Core {
                    state: AtomicUsize::new(WAITING),
                    queues: AtomicPtr::new(ptr::null_mut()),
                    party,
                });
                return Waiter { core: ManuallyDrop::new(core), spare: Cell::new(None), task: Some(task) };
            }
        };
        fence(Ordering::Acquire);
        core.state.store(WAITING, Ordering::Relaxed);
        core.queues.store(ptr::null_mut(), Ordering::Relaxed);
        if let Party::Task(shared) = &core.party {
            shared.key.store(at.key, Ordering::Relaxed);
            shared.id.store(at.id, Ordering::Relaxed);
            shared.epoch.store(at.epoch, Ordering::Relaxed);
        }
        Waiter { core: ManuallyDrop::new(core), spare: Cell::new(spare), task: Some(task) }
    }

    /// A handle to put in a primitive's queue. A coroutine's first handle
    /// is usually the spare reference its last notifier gave back.
    #[inline]
    pub(crate) fn handle(&self) -> WaiterHandle {
        let core = self.spare.take().unwrap_or_else(|| Arc::clone(&self.core));
        WaiterHandle { core }
    }

    /// The token of the claim, if a notifier has claimed this waiter (once
    /// its transfer, if any, is done).
    #[inline]
    pub(crate) fn claimed(&self) -> Option<usize> {
        match self.core.settled(Ordering::SeqCst) {
            WAITING | ABANDONED => None,
            token => Some(token),
        }
    }

    /// Claims this waiter for one of its own operations (a select whose
    /// branch could happen at once, or a coroutine being unwound): shuts
    /// every notifier out. False if a notifier claimed it first.
    pub(crate) fn claim_self(&self, token: usize) -> bool {
        self.core.try_claim(token, token)
    }

    /// Waits until claimed, or until `deadline` passes or the coroutine is
    /// cancelled, whichever comes first (see the module docs).
    ///
    /// After `TimedOut` or `Cancelled` the waiter is abandoned: the caller
    /// removes its entries from the queues (under the primitive's lock)
    /// and reports the failure; no notifier can claim it any more.
    #[inline]
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Outcome {
        let who = match &self.task {
            Some(task) => Waiting::Task(task, self.core.queues.load(Ordering::Relaxed)),
            None => Waiting::Thread,
        };
        match wait_claimed(who, deadline, || self.claimed()) {
            Outcome::Claimed(token) => Outcome::Claimed(token),
            interrupted => self.abandon(interrupted),
        }
    }

    /// Gives up unless a notifier got there first, in which case the
    /// operation is done and its claim wins.
    fn abandon(&self, why: Outcome) -> Outcome {
        if self.core.try_claim(ABANDONED, ABANDONED) {
            return why;
        }
        // Claimed first: the operation completed after all.
        park::retract_cancellation();
        Outcome::Claimed(self.core.settled(Ordering::SeqCst))
    }
}

impl Drop for Waiter {
    /// A waiter dropped while still waiting (its coroutine unwound at
    /// shutdown, or a primitive that returned early) is abandoned, so no
    /// notifier can hand it anything after its owner is gone. A
    /// coroutine's core is cached for the next wait if nothing else holds
    /// it.
    #[inline]
    fn drop(&mut self) {
        let core = &self.core;
        if core.state.load(Ordering::SeqCst) == WAITING {
            core.try_claim(ABANDONED, ABANDONED);
        }
        // A transfer still in progress writes into memory its owner is
        // about to free: wait for it.
        core.settled(Ordering::SeqCst);
        // SAFETY: `core` is not used after this, and `drop` runs once.
        let core = unsafe { ManuallyDrop::take(&mut self.core) };
        if self.task.is_none() {
            return;
        }
        let spare = self.spare.take();
        Context::with(|cx| {
            let spares = &cx.waiter_spares;
            let spare = spare.or_else(|| spares.take_returned(&core));
            if Arc::strong_count(&core) == 1 + usize::from(spare.is_some()) {
                spares.keep(core, spare);
            }
        });
    }
}

impl WaiterHandle {
    /// Claims the waiter with `token` if it is still waiting. On success
    /// the caller has done (or must now do, before releasing the
    /// primitive's lock) the waiter's operation, and must call
    /// [`WaiterHandle::wake`].
    #[inline]
    pub(crate) fn claim(&self, token: usize) -> bool {
        debug_assert!(token < TRANSFERRING, "tokens are small numbers");
        self.core.try_claim(token, token)
    }

    /// Claims the waiter with `token` if it is still waiting, and then runs
    /// `transfer` (which moves a message into or out of the waiter's slot)
    /// before the waiter can see the claim: until `transfer` returns, the
    /// waiter's owner, woken by anything else, waits for it. Lets a
    /// notifier hand a message over without the owner taking the
    /// primitive's lock again to collect it. `transfer` must not panic.
    #[inline]
    pub(crate) fn claim_with(&self, token: usize, transfer: impl FnOnce()) -> bool {
        debug_assert!(token < TRANSFERRING, "tokens are small numbers");
        if !self.core.try_claim(TRANSFERRING, token) {
            return false;
        }
        transfer();
        // Release is enough: the owner's acquiring load of the token sees
        // the transfer, and the claim itself was the compare-and-swap
        // above. (A sequentially consistent store is an `xchg` on x86, as
        // dear as the compare-and-swap.)
        self.core.state.store(token, Ordering::Release);
        true
    }

    /// Whether the waiter can still be claimed.
    #[inline]
    pub(crate) fn is_waiting(&self) -> bool {
        self.core.state.load(Ordering::SeqCst) == WAITING
    }

    /// Wakes the waiter after a successful claim. May be called after the
    /// primitive's lock is released. A coroutine on the caller's thread
    /// gets this handle's reference back, for its next wait.
    #[inline]
    pub(crate) fn wake(self) {
        let WaiterHandle { core } = self;
        let task = match &core.party {
            Party::Task(task) => task,
            Party::Thread(thread) => return thread.unpark(),
        };
        let at = task.park_ref();
        let runtime = task.inbox.runtime();
        let on_its_thread =
            Context::with(|cx| (cx.id() == runtime).then(|| park::wake_ref(cx, at, WakeReason::Ready)));
        match on_its_thread.flatten() {
            // Woken on its own thread: the handle's reference goes back for
            // the waiter's next wait (see the module docs); one already
            // there, of a waiter that has not taken it yet, is dropped.
            Some(true) => {
                Context::with(|cx| cx.waiter_spares.hand_back(core));
            }
            Some(false) => {}
            None => task.inbox.post(at),
        }
    }

    /// Notes that the owner queued this handle in the queue whose touch is
    /// `touch` (see `touch.rs`).
    #[inline]
    pub(crate) fn queued_in(&self, touch: &Touch) {
        let runtime = match &self.core.party {
            Party::Task(task) => Some(task.inbox.home()),
            Party::Thread(_) => None,
        };
        touch.by(runtime);
        let mark = mark_queue(self.core.queues.load(Ordering::Relaxed), touch);
        self.core.queues.store(mark.cast_mut(), Ordering::Relaxed);
    }

    /// Whether this handle belongs to `waiter`.
    pub(crate) fn is_for(&self, waiter: &Waiter) -> bool {
        Arc::ptr_eq(&self.core, &waiter.core)
    }

    /// The id of the coroutine that waits, or `None` for a plain thread:
    /// who a lock handed to this waiter is held by (see `touch.rs`).
    pub(crate) fn party_id(&self) -> Option<u64> {
        match &self.core.party {
            Party::Task(task) => Some(task.id.load(Ordering::Relaxed)),
            Party::Thread(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;
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
            handle.clone().wake();
            // The wake-up found the coroutine running; the wait sees the
            // claim without parking.
            assert_eq!(waiter.wait(Some(Instant::now() + Duration::from_secs(60))), Outcome::Claimed(5));
            assert!(!handle.claim(6), "a waiter is claimed once");
        });
    }

    #[test]
    fn a_coroutine_waits_again_on_the_same_core_without_cloning_its_handle() {
        crate::run(|| {
            let first = Waiter::new();
            let handle = first.handle();
            let core = Arc::as_ptr(&handle.core);
            assert!(handle.claim(1));
            // Woken on its own thread: the handle's reference goes back to
            // the task.
            handle.wake();
            assert_eq!(first.wait(None), Outcome::Claimed(1));
            drop(first);
            let second = Waiter::new();
            let handle = second.handle();
            assert_eq!(Arc::as_ptr(&handle.core), core, "the core is reused");
            assert_eq!(Arc::strong_count(&handle.core), 2, "the waiter's and the recycled handle's");
            assert!(handle.claim(2));
            handle.wake();
            assert_eq!(second.wait(None), Outcome::Claimed(2));
        });
    }

    #[test]
    fn a_core_a_stale_handle_still_holds_is_not_reused() {
        crate::run(|| {
            let first = Waiter::new();
            let stale = first.handle();
            assert_eq!(first.wait(Some(Instant::now())), Outcome::TimedOut);
            drop(first);
            let second = Waiter::new();
            let handle = second.handle();
            assert!(!Arc::ptr_eq(&stale.core, &handle.core), "the abandoned core stays with its handle");
            assert!(!stale.claim(5), "an abandoned waiter refuses claims");
            // Its late wake-up is for an ended epoch: the second wait is not
            // disturbed, and ends with its own claim.
            stale.wake();
            assert!(handle.claim(6));
            handle.wake();
            assert_eq!(second.wait(None), Outcome::Claimed(6));
        });
    }

    #[test]
    fn a_transfer_is_seen_with_its_claim() {
        let waiter = Waiter::new();
        let handle = waiter.handle();
        let mut moved = false;
        assert!(handle.claim_with(8, || moved = true));
        assert!(moved);
        assert_eq!(waiter.claimed(), Some(8));
        assert!(!handle.claim_with(9, || unreachable!("a claimed waiter takes no second transfer")));
    }
}
