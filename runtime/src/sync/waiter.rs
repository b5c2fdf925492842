//! The waiter: one party (a coroutine or an OS thread) waiting on one or
//! more primitives, and the queue every primitive keeps them in.
//!
//! Every blocking primitive (channels, select, locks, semaphores, events,
//! barriers, ...) waits through this file; none of them parks anything
//! itself. A primitive keeps its state behind a lock (a `std::sync::Mutex`
//! for the locks, a `SpinLock` for a channel), held only for short,
//! non-blocking critical sections, and a [`WaitQueue`] of entries, each
//! holding a [`WaiterHandle`] (or, for a plain channel send or receive, a
//! sole waiter's handle).
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
//! Both are a compare-and-swap from `WAITING`, so exactly one wins. That
//! is what makes every wait cancel-safe by construction: an interrupted wait
//! either lost the race to a notifier (the operation completed, and the
//! waiter reports success) or won it (the operation never happened, and
//! the primitive is exactly as if the waiter had never come). It is also
//! what makes `select` take exactly one branch: all its entries, in
//! different queues, share one waiter, and only one claim can succeed.
//!
//! A claim that moves a message ([`WaiterHandle::claim_with`]) passes
//! through `TRANSFERRING`: the owner, woken by anything else, sees the
//! token only once the message has moved, and waits meanwhile.
//!
//! A party that waits in one queue only, and whose every claim is made
//! under that queue's lock (a plain `send` or `recv` on a channel), needs
//! none of this: it waits with the lighter `SoleWaiter` (`sole.rs`).
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

use std::cell::Cell;
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering, fence};
use std::thread::{self, Thread};
use std::time::Instant;

use super::touch::{QueueMark, Touch, mark_queue, several};
use crate::inbox::TaskRef;
use crate::park::{self, WakeReason};
use crate::scheduler::Scheduler;
use crate::task::cell::TaskCell;

/// The waiter has not been claimed or abandoned yet.
const WAITING: usize = usize::MAX;
/// The waiter gave up (timeout or cancellation) before any claim.
const ABANDONED: usize = usize::MAX - 1;
/// A notifier has claimed the waiter and is moving a message into or out
/// of the waiter's slot ([`WaiterHandle::claim_with`]); the claim's token
/// replaces it when the move is done.
const TRANSFERRING: usize = usize::MAX - 2;
/// How long the owner of a waiter spins on a transfer in progress before
/// it yields its thread to a notifier that may have been preempted.
const TRANSFER_SPINS: u32 = 64;

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
    /// `WAITING`, `ABANDONED`, `TRANSFERRING`, or the token of the claim.
    state: AtomicUsize,
    /// The queues of this wait (see `touch.rs`): written by the owner as
    /// it queues its entries, read by it when the wait begins.
    queues: AtomicPtr<Touch>,
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
pub(crate) struct Waiter {
    /// Shared with the handles in the queues; given back to the task (or
    /// dropped, for a thread) when the waiter is dropped.
    core: ManuallyDrop<Arc<Core>>,
    /// A second reference to the core, which becomes the first handle
    /// without touching the reference count (see `TaskCell::waiter_spare`).
    spare: Cell<Option<Arc<Core>>>,
    /// The coroutine that waits, which gets the core back for its next
    /// wait; `None` for a thread.
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
        match Scheduler::with(|s| s.running_task().map(|task| Waiter::for_task(s, task))).flatten() {
            Some(waiter) => waiter,
            None => {
                let core = Core {
                    state: AtomicUsize::new(WAITING),
                    queues: AtomicPtr::new(ptr::null_mut()),
                    target: Target::Thread(thread::current()),
                };
                Waiter { core: ManuallyDrop::new(Arc::new(core)), spare: Cell::new(None), task: None }
            }
        }
    }

    /// A waiter for `task`, on the core of its last wait when nothing else
    /// holds that any more.
    #[inline(always)]
    fn for_task(scheduler: &Scheduler, task: Rc<TaskCell>) -> Waiter {
        let epoch = task.epoch.get();
        let (core, spare) = match (task.waiter_core.take(), task.waiter_spare.take()) {
            // Nobody else holds it: every queue entry and notifier handle of
            // the last wait is gone, and nobody can get a new one (handles
            // are made from the waiter only, and no `Weak` exists), so
            // resetting its atomics cannot race. The fence orders the reset
            // after the last holder's release.
            (Some(core), Some(spare)) if Arc::ptr_eq(&core, &spare) && Arc::strong_count(&core) == 2 => {
                (core, Some(spare))
            }
            (Some(core), None) if Arc::strong_count(&core) == 1 => (core, None),
            _ => {
                let target = Target::Task(scheduler.task_ref(&task), AtomicU32::new(epoch));
                let core = Arc::new(Core {
                    state: AtomicUsize::new(WAITING),
                    queues: AtomicPtr::new(ptr::null_mut()),
                    target,
                });
                return Waiter { core: ManuallyDrop::new(core), spare: Cell::new(None), task: Some(task) };
            }
        };
        fence(Ordering::Acquire);
        core.state.store(WAITING, Ordering::Relaxed);
        core.queues.store(ptr::null_mut(), Ordering::Relaxed);
        if let Target::Task(_, last) = &core.target {
            last.store(epoch, Ordering::Relaxed);
        }
        Waiter { core: ManuallyDrop::new(core), spare: Cell::new(spare), task: Some(task) }
    }

    #[inline]
    fn core(&self) -> &Arc<Core> {
        &self.core
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
        match self.core().settled(Ordering::SeqCst) {
            WAITING | ABANDONED => None,
            token => Some(token),
        }
    }

    /// Claims this waiter for one of its own operations (a select whose
    /// branch could happen at once, or a coroutine being unwound): shuts
    /// every notifier out. False if a notifier claimed it first.
    pub(crate) fn claim_self(&self, token: usize) -> bool {
        self.core().try_claim(token, token)
    }

    /// Waits until claimed, or until `deadline` passes or the coroutine is
    /// cancelled, whichever comes first (see the module docs).
    ///
    /// After `TimedOut` or `Cancelled` the waiter is abandoned: the caller
    /// removes its entries from the queues (under the primitive's lock)
    /// and reports the failure; no notifier can claim it any more.
    #[inline]
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Outcome {
        match &self.task {
            Some(task) => self.wait_task(task, deadline),
            None => self.wait_thread(deadline),
        }
    }

    #[inline]
    fn wait_task(&self, task: &Rc<TaskCell>, deadline: Option<Instant>) -> Outcome {
        if let Target::Task(_, epoch) = &self.core.target {
            debug_assert_eq!(
                epoch.load(Ordering::Relaxed),
                task.epoch.get(),
                "a waiter waits in the epoch it was made in"
            );
        }
        Scheduler::with(|s| {
            // One epoch for the whole wait, however often `park` returns
            // early: every handle carries the epoch the waiter was made
            // in, so a claim's wake-up always finds the right park, and no
            // notifier has to read the epoch after the claim. Leaving the
            // wait, in any way, ends the epoch, so its late wake-ups are
            // ignored. Also counts the wait with the scheduler; both are
            // undone when the coroutine is unwound mid-wait too (torn down
            // at shutdown).
            let _wait = WaitEpoch::begin(task, self.core.queues.load(Ordering::Relaxed));
            loop {
                if let Some(token) = self.claimed() {
                    return Outcome::Claimed(token);
                }
                match s.park_task(task, deadline) {
                    WakeReason::Ready => continue,
                    WakeReason::TimedOut => return self.abandon(Outcome::TimedOut),
                    WakeReason::Cancelled => return self.abandon(Outcome::Cancelled),
                }
            }
        })
        .expect("a coroutine waits inside its runtime")
    }

    fn wait_thread(&self, deadline: Option<Instant>) -> Outcome {
        match park_thread(deadline, || self.claimed()) {
            Outcome::Claimed(token) => Outcome::Claimed(token),
            interrupted => self.abandon(interrupted),
        }
    }

    /// Gives up unless a notifier got there first, in which case the
    /// operation is done and its claim wins.
    fn abandon(&self, why: Outcome) -> Outcome {
        if self.core().try_claim(ABANDONED, ABANDONED) {
            return why;
        }
        // Claimed first: the operation completed after all.
        park::retract_cancellation();
        Outcome::Claimed(self.core().settled(Ordering::SeqCst))
    }
}

impl Drop for Waiter {
    /// A waiter dropped while still waiting (its coroutine unwound at
    /// shutdown, or a primitive that returned early) is abandoned, so no
    /// notifier can hand it anything after its owner is gone. A coroutine
    /// keeps the core for its next wait.
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
        if let Some(task) = &self.task {
            task.waiter_core.set(Some(core));
            if let Some(spare) = self.spare.take() {
                task.waiter_spare.set(Some(spare));
            }
        }
    }
}

impl Core {
    /// Moves the state from `WAITING` to `to`, to be `token` once the
    /// caller's transfer is done; false if it was claimed or abandoned.
    #[inline]
    fn try_claim(&self, to: usize, token: usize) -> bool {
        debug_assert!(to == token || to == TRANSFERRING);
        self.state.compare_exchange(WAITING, to, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// The state, once no transfer is in progress. A transfer is a few
    /// moves under a primitive's lock, so this spins, then yields the
    /// thread (the notifier may have been preempted). On the waiter's own
    /// thread there is never one in progress.
    #[inline]
    fn settled(&self, order: Ordering) -> usize {
        let mut spins = 0;
        loop {
            let state = self.state.load(order);
            if state != TRANSFERRING {
                return state;
            }
            if spins < TRANSFER_SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
    }
}

/// The wait of a thread outside any coroutine: parks the thread until
/// `claimed` returns a token or `deadline` passes (then `TimedOut`).
///
/// On the thread of a running runtime but outside its coroutines (the
/// scheduler itself, dropping a detached task's result or a leftover value
/// at shutdown), parking the thread would freeze every coroutine of the
/// runtime, which may be the very ones that could end the wait: the wait
/// fails at once with `Cancelled` instead, as waits do in a coroutine
/// being torn down.
pub(crate) fn park_thread(deadline: Option<Instant>, claimed: impl Fn() -> Option<usize>) -> Outcome {
    if crate::scheduler::outside_coroutines_of_running_runtime() {
        return claimed().map_or(Outcome::Cancelled, Outcome::Claimed);
    }
    loop {
        if let Some(token) = claimed() {
            return Outcome::Claimed(token);
        }
        match deadline {
            None => thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return Outcome::TimedOut;
                }
                thread::park_timeout(deadline - now);
            }
        }
    }
}

/// A coroutine's wait on primitives: parked in one epoch (see
/// `Waiter::wait`), with the queues it just entered recorded in its task
/// for the deadlock check (see `touch.rs`). Dropped when the wait ends,
/// also when unwinding.
pub(crate) struct WaitEpoch<'a> {
    /// The waiting task.
    task: &'a TaskCell,
}

impl<'a> WaitEpoch<'a> {
    /// Begins the wait of `task` in the queues `queues` (see `touch.rs`;
    /// none recorded counts as several: anybody may end the wait).
    #[inline]
    pub(crate) fn begin(task: &'a TaskCell, queues: QueueMark) -> WaitEpoch<'a> {
        task.waits_on.set(if queues.is_null() { several() } else { queues });
        WaitEpoch { task }
    }
}

impl Drop for WaitEpoch<'_> {
    #[inline]
    fn drop(&mut self) {
        park::end_epoch(self.task);
        self.task.waits_on.set(ptr::null());
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
        let (wake, runtime) = match &core.target {
            Target::Task(task, epoch) => (task.posted(epoch.load(Ordering::Relaxed)), task.runtime()),
            Target::Thread(thread) => return thread.unpark(),
        };
        // On the task's own thread, the handle's reference goes back to the
        // task for its next wait.
        let mut core = Some(core);
        let local = Scheduler::with(|s| {
            let local = s.id() == runtime;
            if local {
                s.wake_local_then(wake, WakeReason::Ready, |task| {
                    if let Some(spare) = task.waiter_spare.replace(core.take()) {
                        task.waiter_spare.set(Some(spare));
                    }
                });
            }
            local
        });
        if local != Some(true)
            && let Some(core) = core
            && let Target::Task(task, _) = &core.target
        {
            task.post(wake);
        }
    }

    /// Notes that the owner queued this handle in the queue whose touch is
    /// `touch` (see `touch.rs`).
    #[inline]
    pub(crate) fn queued_in(&self, touch: &Touch) {
        let runtime = match &self.core.target {
            Target::Task(task, _) => Some(task.runtime()),
            Target::Thread(_) => None,
        };
        touch.by(runtime);
        let mark = mark_queue(self.core.queues.load(Ordering::Relaxed), touch);
        self.core.queues.store(mark.cast_mut(), Ordering::Relaxed);
    }

    /// Whether this handle belongs to `waiter`.
    pub(crate) fn is_for(&self, waiter: &Waiter) -> bool {
        Arc::ptr_eq(&self.core, waiter.core())
    }
}

/// Anything that sits in a [`WaitQueue`]: an entry holding a waiter.
pub(crate) trait Entry {
    /// The shared waiter this entry belongs to; `None` for the entry of a
    /// sole waiter (`sole.rs`), which is waiting for as long as it is
    /// queued.
    fn waiter(&self) -> Option<&WaiterHandle>;

    /// Tells the entry's waiter, as it is queued, which queue it is in
    /// (see `touch.rs`).
    #[inline]
    fn queued_in(&self, touch: &Touch) {
        if let Some(handle) = self.waiter() {
            handle.queued_in(touch);
        }
    }
}

impl Entry for WaiterHandle {
    fn waiter(&self) -> Option<&WaiterHandle> {
        Some(self)
    }
}

/// A FIFO of waiting entries, kept inside a primitive's locked state.
///
/// The oldest entry is kept apart, in `first`, when it arrived while the
/// queue was empty: a primitive with one waiter at a time (a channel
/// between two parties, a lock with one contender) then never moves an
/// entry through the `VecDeque`, whose push and pop each cost a few dozen
/// instructions. `first`, when set, is older than anything in `rest`.
#[derive(Debug)]
pub(crate) struct WaitQueue<E> {
    /// The oldest entry, if it arrived while the queue was empty.
    first: Option<E>,
    /// Every other entry, oldest first.
    rest: VecDeque<E>,
    /// Which runtimes and threads have queued or claimed waiters here:
    /// whether a wait here can be ended from outside its runtime (see
    /// `touch.rs`).
    touch: Touch,
}

impl<E> Default for WaitQueue<E> {
    fn default() -> Self {
        WaitQueue::new()
    }
}

impl<E> WaitQueue<E> {
    /// An empty queue (usable in `const` constructors).
    pub(crate) const fn new() -> WaitQueue<E> {
        WaitQueue { first: None, rest: VecDeque::new(), touch: Touch::new() }
    }

    /// Removes and returns the oldest entry.
    #[inline]
    fn pop_front(&mut self) -> Option<E> {
        match self.first.take() {
            Some(entry) => Some(entry),
            None => self.rest.pop_front(),
        }
    }

    /// The oldest entry.
    #[inline]
    fn front(&self) -> Option<&E> {
        self.first.as_ref().or_else(|| self.rest.front())
    }
}

impl<E: Entry> WaitQueue<E> {
    /// Adds an entry at the back, for the caller, which is about to wait.
    #[inline(always)]
    #[track_caller]
    pub(crate) fn push(&mut self, entry: E) {
        self.touch.queued_at(Location::caller());
        entry.queued_in(&self.touch);
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(entry);
        } else {
            self.rest.push_back(entry);
        }
    }

    /// Removes and returns the oldest entry whose waiter `claim` accepts:
    /// `claim` is called on each entry in order (entries whose waiter is no
    /// longer waiting are dropped on the way) and claims the waiter itself,
    /// typically with [`WaiterHandle::claim`] and a token. The caller wakes
    /// the returned entry's waiter.
    pub(crate) fn pop_claimed(&mut self, mut claim: impl FnMut(&E) -> bool) -> Option<E> {
        self.pop_claimed_with(|entry| claim(&entry).then_some(entry))
    }

    /// Pops entries, oldest first, until `claim` (which consumes each one,
    /// and claims its waiter) returns something, and returns that. Like
    /// [`WaitQueue::pop_claimed`] for a claim that returns how to wake
    /// the waiter.
    #[inline]
    pub(crate) fn pop_claimed_with<W>(&mut self, mut claim: impl FnMut(E) -> Option<W>) -> Option<W> {
        if self.first.is_none() && self.rest.is_empty() {
            return None;
        }
        self.touch.by(Scheduler::with(|s| s.id()));
        while let Some(entry) = self.pop_front() {
            if let Some(claimed) = claim(entry) {
                return Some(claimed);
            }
        }
        None
    }

    /// Records a use of the primitive by `runtime` (`None`: a plain
    /// thread) that enters no queue (see `touch.rs`).
    #[inline]
    pub(crate) fn touched_by(&self, runtime: Option<u64>) {
        self.touch.by(runtime);
    }

    /// The oldest entry that is still waiting, without removing it (entries
    /// that are not are dropped on the way).
    pub(crate) fn front_waiting(&mut self) -> Option<&E> {
        if self.first.is_some() || !self.rest.is_empty() {
            self.touch.by(Scheduler::with(|s| s.id()));
        }
        while let Some(entry) = self.front() {
            if entry.waiter().is_none_or(WaiterHandle::is_waiting) {
                break;
            }
            self.pop_front();
        }
        self.front()
    }

    /// Whether any entry is still waiting (leaves the queue as it is).
    pub(crate) fn any_waiting(&self) -> bool {
        self.first.iter().chain(&self.rest).any(|entry| entry.waiter().is_none_or(WaiterHandle::is_waiting))
    }

    /// Removes every entry of `waiter` (after it gave up).
    pub(crate) fn remove(&mut self, waiter: &Waiter) {
        self.remove_where(|entry| entry.waiter().is_some_and(|handle| handle.is_for(waiter)));
    }

    /// Removes every entry `which` picks.
    pub(crate) fn remove_where(&mut self, which: impl Fn(&E) -> bool) {
        if self.first.as_ref().is_some_and(&which) {
            self.first = None;
        }
        self.rest.retain(|entry| !which(entry));
    }

    /// Whether no entry is queued (waiting or not).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    /// Entries queued, including ones no longer waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Removes and returns every entry, oldest first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = E> + '_ {
        self.first.take().into_iter().chain(self.rest.drain(..))
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

    /// An entry that is always waiting, known by its number.
    #[derive(Debug, PartialEq)]
    struct Numbered(u32);

    impl Entry for Numbered {
        fn waiter(&self) -> Option<&WaiterHandle> {
            None
        }
    }

    #[test]
    fn the_queue_keeps_arrival_order_whether_an_entry_waits_apart_or_not() {
        let mut queue = WaitQueue::new();
        // The first entry of an empty queue waits apart; the next ones
        // queue behind it.
        (0..3).for_each(|n| queue.push(Numbered(n)));
        assert_eq!(queue.pop_claimed(|_| true), Some(Numbered(0)));
        // With the one apart gone and others still queued, a newcomer goes
        // behind them, not apart.
        queue.push(Numbered(3));
        assert_eq!(queue.front_waiting(), Some(&Numbered(1)));
        // Removing the front (apart or not) keeps the order of the rest.
        queue.remove_where(|entry| entry.0 == 1);
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.drain().collect::<Vec<_>>(), [Numbered(2), Numbered(3)]);
        assert!(queue.is_empty());
        queue.push(Numbered(4));
        queue.push(Numbered(5));
        queue.remove_where(|entry| entry.0 == 4);
        queue.push(Numbered(6));
        let claimed = queue.pop_claimed_with(|entry| (entry.0 > 5).then_some(entry.0));
        assert_eq!(claimed, Some(6), "entries the claim refuses are dropped on the way");
        assert!(queue.is_empty());
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
