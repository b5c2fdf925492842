//! [`Mutex`]: mutual exclusion that parks coroutines instead of threads.
//!
//! # The lock word
//!
//! `state` holds one of three values:
//!
//! 1. `UNLOCKED`: nobody holds the lock, and nobody waits for it.
//! 2. `LOCKED`: somebody holds it; the queue has no waiter that still
//!    waits.
//! 3. `LOCKED | QUEUED`: somebody holds it, and the queue may have waiters.
//!
//! `QUEUED` without `LOCKED` never exists, because the lock is never
//! released while someone waits: it is **handed off**. An unlock that finds
//! `QUEUED` claims the oldest waiter ([`WaiterHandle::claim`]), which makes
//! it the owner, and wakes it; the word stays `LOCKED` all along, so a
//! newcomer's compare-and-swap fails and it queues behind. That is what
//! makes the lock FIFO-fair: nobody overtakes a parked waiter, and no
//! waiter starves.
//!
//! | transition | who | how |
//! |---|---|---|
//! | `UNLOCKED -> LOCKED` | `lock`, `try_lock` | CAS, no queue lock (the fast path) |
//! | `LOCKED -> UNLOCKED` | unlock, nobody queued | CAS, no queue lock (the fast path) |
//! | `LOCKED -> LOCKED \| QUEUED` | a locker about to queue | CAS under the queue lock |
//! | `LOCKED \| QUEUED -> LOCKED (\| QUEUED)` | unlock handing off to the oldest waiter | under the queue lock |
//! | `LOCKED \| QUEUED -> UNLOCKED` | unlock finding no waiter that still waits | under the queue lock |
//! | `LOCKED \| QUEUED -> LOCKED` | the last waiter giving up | under the queue lock |
//!
//! Every change of `QUEUED`, and every claim, happens under the queue lock;
//! the two fast paths only ever move between `UNLOCKED` and `LOCKED`, and
//! fail as soon as `QUEUED` is set.
//!
//! ```text
//!   holder                     queue lock           waiter W (parked)
//!   unlock: CAS LOCKED->0 fails (QUEUED)
//!   lock queue ----------------> pop oldest W, claim(W): W owns the lock
//!                                word stays LOCKED(|QUEUED if more wait)
//!   unlock queue, wake W ------------------------->  wait() returns Claimed
//!                                                    MutexGuard for W
//! ```
//!
//! # Interrupted waits
//!
//! A waiter whose wait times out or is cancelled has abandoned itself in
//! the waiter's state (so no unlock can claim it any more), then removes
//! its entry and clears `QUEUED` if it was the last: the lock is exactly as
//! if it had never come. If an unlock claimed it first, the claim wins and
//! the wait reports success. A waiter whose coroutine is unwound while it
//! waits (the runtime's shutdown) does the same from a destructor, and
//! passes the lock on if it had been handed it.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use super::poison::{self, LockError, LockResult};
use super::wait::party::{Outcome, deadline_after};
use super::wait::queue::LockedQueue;
use super::wait::touch::Holder;
use super::wait::waiter::{Waiter, WaiterHandle};
use crate::dump::kind::WaitKind;

/// Nobody holds the lock.
const UNLOCKED: u8 = 0;
/// Somebody holds the lock.
const LOCKED: u8 = 1;
/// The queue may have waiters (only ever together with `LOCKED`).
const QUEUED: u8 = 2;

/// The token an unlock claims a waiter with: "you own the lock now".
const GRANTED: usize = 0;

/// A mutual-exclusion lock for coroutines and threads, with `std`'s API.
///
/// A coroutine that finds the lock held parks (its thread runs other
/// coroutines meanwhile); a plain thread blocks. Holders and waiters may be
/// any mix of coroutines of any runtimes and plain threads, and a guard may
/// be held across a park (a `sleep`, a socket read): the coroutine never
/// changes threads.
///
/// ```
/// use std::sync::Arc;
/// use green::sync::Mutex;
///
/// let total = green::run(|| {
///     let counter = Arc::new(Mutex::new(0));
///     let workers: Vec<_> = (0..10)
///         .map(|_| {
///             let counter = counter.clone();
///             green::spawn(move || {
///                 let mut count = counter.lock().unwrap();
///                 let seen = *count;
///                 green::yield_now(); // others run, and find the lock held
///                 *count = seen + 1;
///             })
///         })
///         .collect();
///     for worker in workers {
///         worker.join().unwrap();
///     }
///     let count = *counter.lock().unwrap();
///     count
/// });
/// assert_eq!(total, 10);
/// ```
///
/// # Fairness
///
/// First come, first served: an unlock hands the lock directly to the
/// oldest waiter, so a newcomer (even one spinning on `try_lock`) never
/// overtakes a parked waiter. The price is the convoy effect: while the
/// woken waiter is on its way to run, nobody else may take the lock.
///
/// # Poisoning
///
/// As in `std`: a guard dropped while its thread (or coroutine) panics
/// poisons the lock, and later locks return [`LockError::Poisoned`] with
/// the guard inside. A cancelled coroutine never poisons it (see
/// [`LockError`]).
///
/// # Timeouts and cancellation
///
/// [`Mutex::lock_timeout`] gives up after a while; a coroutine's wait also
/// ends when the coroutine is cancelled ([`LockError::Cancelled`]). Either
/// way the waiter leaves the queue and the lock is exactly as if it had
/// never come: not taken, not poisoned, the next waiter unaffected.
///
/// # Cost
///
/// Uncontended, `lock` and unlock are one compare-and-swap each. A waiter
/// allocates one reference-counted waiter record and takes a short std
/// mutex section to queue; an unlock that hands off takes that section
/// too. Waking a coroutine of another runtime posts to that runtime's
/// inbox and writes to its eventfd (a system call); waking a plain thread
/// is an `unpark`.
pub struct Mutex<T: ?Sized> {
    /// `UNLOCKED`, `LOCKED` or `LOCKED | QUEUED` (see the module docs).
    state: AtomicU8,
    /// Whether a holder panicked.
    poison: poison::Flag,
    /// Parked lockers, oldest first.
    waiters: LockedQueue<WaiterHandle>,
    /// Who holds the lock, for the task dump: written by every acquire,
    /// read only while someone waits (see `sync/wait/touch.rs`).
    holder: Holder,
    /// The protected value.
    data: UnsafeCell<T>,
}

// The only `!Sync` part is `data`; the lock word grants access to it to one
// guard at a time, on whatever thread that guard lives. (`Send` for
// `Mutex<T>` follows from its fields when `T: Send`.)
// SAFETY: sharing the mutex only moves access to `T` between threads, so
// `T: Send` suffices, exactly `std::sync::Mutex`'s bound.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

// As in `std`: a panic while the lock is held poisons it, which is how a
// broken invariant is reported across `catch_unwind`.
impl<T: ?Sized> UnwindSafe for Mutex<T> {}
impl<T: ?Sized> RefUnwindSafe for Mutex<T> {}

/// Holds a [`Mutex`] locked; unlocks it when dropped.
///
/// Like `std`'s guard it is `!Send`: it cannot move to another thread. It
/// may be held across a park in a coroutine, which never changes threads.
///
/// ```compile_fail,E0277
/// fn must_be_send<T: Send>(_: T) {}
/// let lock = green::sync::Mutex::new(0);
/// must_be_send(lock.lock().unwrap());
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    /// The locked mutex.
    mutex: &'a Mutex<T>,
    /// Whether its thread was panicking when it was made, for poisoning.
    poison: poison::Guard,
    /// Makes the guard `!Send` (and `!Sync`, restored below for `T: Sync`).
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared `&MutexGuard` only gives out `&T`, which may be shared
// between threads when `T: Sync` (std's bound); the guard's raw-pointer
// marker exists only to make it `!Send`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicU8::new(UNLOCKED),
            poison: poison::Flag::new(),
            waiters: LockedQueue::new(WaitKind::Mutex),
            holder: Holder::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex and returns its value.
    ///
    /// # Errors
    ///
    /// [`LockError::Poisoned`] with the value inside if the mutex is
    /// poisoned.
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.get();
        let value = self.data.into_inner();
        if poisoned { Err(LockError::Poisoned(std::sync::PoisonError::new(value))) } else { Ok(value) }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking the coroutine (or blocking the thread)
    /// while someone else holds it.
    ///
    /// # Errors
    ///
    /// * [`LockError::Poisoned`] if a holder panicked; the lock is held and
    ///   its guard is inside.
    /// * [`LockError::Cancelled`] if the calling coroutine was cancelled
    ///   while it waited; the lock was not taken. (An uncontended lock
    ///   succeeds even in a cancelled coroutine: only waits are cancelled.)
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.lock_until(None)
    }

    /// Like [`Mutex::lock`], but gives up once `timeout` has elapsed.
    ///
    /// # Errors
    ///
    /// As [`Mutex::lock`], and [`LockError::TimedOut`] if the lock was
    /// still held by someone else when the timeout elapsed.
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<MutexGuard<'_, T>> {
        self.lock_until(deadline_after(timeout))
    }

    /// Takes the lock if nobody holds it; never waits. Fails while waiters
    /// are queued, even at the moment the lock changes hands to one of them.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if the lock is held;
    /// [`TryLockError::Poisoned`] (holding the lock) if a holder panicked.
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        if self.try_acquire() { self.poison.wrap_try(self.guard()) } else { Err(TryLockError::WouldBlock) }
    }

    /// Whether a holder panicked while holding the lock.
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poison mark, for a caller that has repaired the data.
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// The value, through a unique borrow: no locking is needed.
    ///
    /// # Errors
    ///
    /// [`LockError::Poisoned`] with the reference inside if the mutex is
    /// poisoned.
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poison.get();
        let value = self.data.get_mut();
        if poisoned { Err(LockError::Poisoned(std::sync::PoisonError::new(value))) } else { Ok(value) }
    }

    fn lock_until(&self, deadline: Option<Instant>) -> LockResult<MutexGuard<'_, T>> {
        if !self.try_acquire() {
            match self.acquire_contended(deadline) {
                Outcome::Claimed(_) => {}
                Outcome::TimedOut => return Err(LockError::TimedOut),
                Outcome::Cancelled => return Err(LockError::Cancelled),
            }
        }
        self.poison.wrap(self.guard())
    }

    /// A guard for a lock the caller has just taken.
    fn guard(&self) -> MutexGuard<'_, T> {
        MutexGuard { mutex: self, poison: self.poison.guard(), _not_send: PhantomData }
    }

    /// The fast path: `UNLOCKED -> LOCKED`.
    #[inline]
    fn try_acquire(&self) -> bool {
        let taken =
            self.state.compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok();
        if taken {
            self.holder.taken_here();
        }
        taken
    }

    /// Takes the lock, waiting in the queue until it is handed over, the
    /// deadline passes or the coroutine is cancelled. `Claimed` means the
    /// caller owns the lock.
    fn acquire_contended(&self, deadline: Option<Instant>) -> Outcome {
        let mut queue = self.waiters.lock();
        // Under the queue lock: take the lock if it was released meanwhile,
        // or announce that we queue, so that its holder will hand it over.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let (next, queues) = match state {
                UNLOCKED => (LOCKED, false),
                LOCKED => (LOCKED | QUEUED, true),
                _ => break,
            };
            match self.state.compare_exchange_weak(state, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) if queues => break,
                Ok(_) => {
                    self.holder.taken_here();
                    return Outcome::Claimed(GRANTED);
                }
                Err(actual) => state = actual,
            }
        }
        let waiter = Waiter::new();
        queue.push(waiter.handle());
        queue.held_in(&self.holder);
        drop(queue);
        Queued { mutex: self, waiter, owns: false }.wait(deadline)
    }

    /// Releases the lock held by the caller.
    fn unlock(&self) {
        if self.state.compare_exchange(LOCKED, UNLOCKED, Ordering::Release, Ordering::Relaxed).is_err() {
            self.hand_off();
        }
    }

    /// Releases the lock held by the caller while `QUEUED` is (or was a
    /// moment ago) set: hands it to the oldest waiter that still waits, or
    /// unlocks it if there is none.
    fn hand_off(&self) {
        let mut queue = self.waiters.lock();
        match queue.pop_claimed(|next| next.claim(GRANTED)) {
            Some(next) => {
                self.holder.handed_to(next.party_id());
                if queue.front_waiting().is_none() {
                    self.state.store(LOCKED, Ordering::Relaxed);
                }
                drop(queue);
                next.wake();
            }
            None => self.state.store(UNLOCKED, Ordering::Release),
        }
    }
}

/// A locker in the queue. Dropped before it owns the lock (its wait timed
/// out or was cancelled, or its coroutine is unwound while it waits), it
/// leaves the lock as if it had never come.
struct Queued<'a, T: ?Sized> {
    /// The mutex it waits for.
    mutex: &'a Mutex<T>,
    /// The waiter whose handle is in the queue.
    waiter: Waiter,
    /// Set once the wait returned with the lock: nothing to undo.
    owns: bool,
}

impl<T: ?Sized> Queued<'_, T> {
    fn wait(mut self, deadline: Option<Instant>) -> Outcome {
        let outcome = self.waiter.wait(deadline);
        self.owns = matches!(outcome, Outcome::Claimed(_));
        outcome
    }
}

impl<T: ?Sized> Drop for Queued<'_, T> {
    fn drop(&mut self) {
        if self.owns {
            return;
        }
        // Claims happen only under the queue lock: holding it, the waiter
        // is either claimed already or cannot be any more once its entry
        // is gone (after a timeout it has abandoned itself besides).
        let mut queue = self.mutex.waiters.lock();
        if self.waiter.claimed().is_some() {
            // Handed the lock while being unwound: pass it on.
            drop(queue);
            self.mutex.hand_off();
            return;
        }
        queue.remove(&self.waiter);
        if queue.front_waiting().is_none() {
            // `QUEUED` implies `LOCKED`, so this leaves the lock held.
            self.mutex.state.fetch_and(!QUEUED, Ordering::Relaxed);
        }
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Unlocks the mutex without dropping the guard's bookkeeping, for a
    /// [`Condvar`](super::Condvar) wait, which locks it again with
    /// [`MutexGuard::relock`].
    pub(super) fn unlock_for_wait(self) -> (&'a Mutex<T>, poison::Guard) {
        let guard = ManuallyDrop::new(self);
        let (mutex, poison) = (guard.mutex, guard.poison);
        mutex.unlock();
        (mutex, poison)
    }

    /// Locks `mutex` again after a condition-variable wait, keeping what
    /// the original guard knew about panics; `None` if the coroutine was
    /// cancelled while it waited for the mutex (which is then not held).
    pub(super) fn relock(mutex: &'a Mutex<T>, poison: poison::Guard) -> Option<Self> {
        if !mutex.try_acquire() && !matches!(mutex.acquire_contended(None), Outcome::Claimed(_)) {
            return None;
        }
        Some(MutexGuard { mutex, poison, _not_send: PhantomData })
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its owner holds the lock, so
        // no `&mut T` exists elsewhere.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard's owner holds the lock: this is the only access
        // to the data, and `&mut self` makes it unique among the guard's
        // own borrows.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.poison.done(self.poison);
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(err)) => d.field("data", &&**err.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.poison.get());
        d.finish_non_exhaustive()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}
