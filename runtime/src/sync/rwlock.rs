//! [`RwLock`]: many readers or one writer, parking coroutines instead of
//! threads, first come first served.
//!
//! # The lock word
//!
//! `state` packs three things: `WRITER` (a writer holds the lock),
//! `QUEUED` (the queue may have waiters) and, above them, the number of
//! readers holding it (in units of `READER`). The values that occur:
//!
//! 1. `0`: free, nobody waits.
//! 2. `n * READER`: `n` readers hold it, nobody waits.
//! 3. `WRITER`: a writer holds it, nobody waits.
//! 4. either of the last two `| QUEUED`: someone waits, and the oldest
//!    waiter cannot be let in yet (a writer behind readers, or anyone
//!    behind a writer).
//! 5. `QUEUED` alone, briefly, under the queue lock, or between the last
//!    reader leaving and that reader taking the queue lock to hand the
//!    lock on.
//!
//! The fast paths (no queue lock) are: a reader adding itself while
//! neither `WRITER` nor `QUEUED` is set; a writer taking `0 -> WRITER`; a
//! reader leaving (`fetch_sub`); a writer leaving `WRITER -> 0`. Everything
//! else happens under the queue lock: setting and clearing `QUEUED`,
//! claiming waiters, and handing the lock to them.
//!
//! # Policy: strict arrival order
//!
//! Waiters are served in the order they came. While the oldest waiter is a
//! writer, readers that come later queue behind it even though the lock is
//! held only by readers (`QUEUED` stops the reader fast path), so a steady
//! stream of readers cannot starve a writer; and a writer cannot starve
//! readers, since the readers queued behind it go next. When the lock is
//! handed on, every reader at the front of the queue is let in together,
//! up to the first writer.
//!
//! Handing on (`grant`, under the queue lock) looks at the oldest waiter
//! that still waits: a reader may enter if no writer holds the lock, a
//! writer if nobody does. It claims that waiter (the claim makes it a
//! holder: the word is updated before the waiter is woken), and repeats.
//! When nobody is left waiting it clears `QUEUED`.
//!
//! # Reader count
//!
//! At most `MAX_READERS` (2^62 - 2 on 64-bit targets) read guards may be
//! alive at once, which only leaked guards (`mem::forget`) can reach. At
//! that count the reader fast path refuses (so `try_read` returns
//! `WouldBlock`, as `std`'s does), `read` panics before it queues (as
//! `std`'s does, `LockResult` having no room for it), and `grant` lets no
//! queued reader in: one that queued below the count waits until every
//! reader has left. The word therefore never overflows.
//!
//! # Interrupted waits
//!
//! A waiter that gives up (timeout, cancellation, or its coroutine unwound
//! at shutdown) removes its entry and runs `grant`: if it was a writer
//! holding back the readers behind it, they go in now, exactly as if it
//! had never come. If it had been handed the lock before it could give up,
//! the hand-off wins and the wait succeeds (or, when unwinding, it gives
//! the lock back and hands it on).

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use super::poison::{self, LockError, LockResult};
use super::wait::party::{Outcome, deadline_after};
use super::wait::queue::{Entry, Locked, LockedQueue, WaitQueue, Woken};
use super::wait::touch::Holder;
use super::wait::waiter::{Waiter, WaiterHandle};
use crate::dump::kind::WaitKind;

/// A writer holds the lock.
const WRITER: usize = 1;
/// The queue may have waiters.
const QUEUED: usize = 2;
/// One reader holding the lock (the count lives above the two flags).
const READER: usize = 4;
/// The most readers that may hold the lock at once (see "Reader count" in
/// the module docs). One less than the word could count, so the check is a
/// plain comparison.
const MAX_READERS: usize = usize::MAX / READER - 1;

/// The token a waiter is claimed with: "you hold the lock now".
const GRANTED: usize = 0;

/// What a waiter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Shared access.
    Read,
    /// Exclusive access.
    Write,
}

/// A queued reader or writer.
#[derive(Debug)]
struct Request {
    /// Its waiter.
    handle: WaiterHandle,
    /// What it waits for.
    access: Access,
}

impl Entry for Request {
    fn waiter(&self) -> Option<&WaiterHandle> {
        Some(&self.handle)
    }
}

/// A reader-writer lock for coroutines and threads, with `std`'s API.
///
/// Any number of readers, or one writer, hold it at a time. Waiting
/// parks a coroutine (its thread runs others) or blocks a plain thread;
/// holders and waiters may be any mix of coroutines of any runtimes and
/// plain threads.
///
/// ```
/// use green::sync::RwLock;
///
/// let config = RwLock::new(String::from("v1"));
/// {
///     let a = config.read().unwrap();
///     let b = config.read().unwrap(); // readers share the lock
///     assert_eq!((a.as_str(), b.as_str()), ("v1", "v1"));
/// }
/// config.write().unwrap().push_str(".1");
/// assert_eq!(*config.read().unwrap(), "v1.1");
/// ```
///
/// # Fairness
///
/// Strict arrival order: a waiting writer blocks readers that come after
/// it, even while the lock is held only by readers; when it leaves, the
/// readers that queued behind it enter together. Neither side starves.
/// (`std`'s lock, on Linux, lets readers in past a waiting writer only
/// while no writer waits, too; its order among waiters is not FIFO.)
///
/// # Poisoning
///
/// As in `std`: a write guard dropped during a panic poisons the lock; a
/// read guard never does. Later `read` and `write` return
/// [`LockError::Poisoned`] holding the guard. Cancellation never poisons.
///
/// # Timeouts and cancellation
///
/// [`RwLock::read_timeout`] and [`RwLock::write_timeout`] give up after a
/// while, and a coroutine's wait ends when it is cancelled
/// ([`LockError::Cancelled`]). A waiter that gives up leaves the lock as if
/// it had never come; in particular readers it was holding back go in.
///
/// # Cost
///
/// Uncontended, acquiring and releasing are one atomic operation each
/// (a compare-and-swap loop for readers that race each other). Waiting
/// costs one reference-counted waiter record and a short std mutex section;
/// waking a coroutine of another runtime goes through that runtime's inbox
/// (a system call to interrupt its `epoll_wait`).
pub struct RwLock<T: ?Sized> {
    /// Readers, `WRITER` and `QUEUED` (see the module docs).
    state: AtomicUsize,
    /// Whether a writer panicked.
    poison: poison::Flag,
    /// Waiting readers and writers, oldest first.
    waiters: LockedQueue<Request>,
    /// Which writer holds the lock, for the task dump: written when a
    /// writer takes it, cleared when it leaves (see `sync/wait/touch.rs`).
    writer: Holder,
    /// The protected value.
    data: UnsafeCell<T>,
}

// SAFETY: readers on several threads share `&T` (hence `T: Sync`) and a
// writer on any thread gets `&mut T` (hence `T: Send`); the lock word
// keeps the two apart. These are `std::sync::RwLock`'s bounds.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

// As in `std`: a panic while the write lock is held poisons it, which is
// how a broken invariant is reported across `catch_unwind`.
impl<T: ?Sized> UnwindSafe for RwLock<T> {}
impl<T: ?Sized> RefUnwindSafe for RwLock<T> {}

/// Shared access to an [`RwLock`]; released when dropped. `!Send`, like
/// `std`'s.
///
/// ```compile_fail,E0277
/// fn must_be_send<T: Send>(_: T) {}
/// let lock = green::sync::RwLock::new(0);
/// must_be_send(lock.read().unwrap());
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    /// The lock, held for reading.
    lock: &'a RwLock<T>,
    /// Makes the guard `!Send` (and `!Sync`, restored below).
    _not_send: PhantomData<*const ()>,
}

/// Exclusive access to an [`RwLock`]; released when dropped. `!Send`, like
/// `std`'s.
///
/// ```compile_fail,E0277
/// fn must_be_send<T: Send>(_: T) {}
/// let lock = green::sync::RwLock::new(0);
/// must_be_send(lock.write().unwrap());
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    /// The lock, held for writing.
    lock: &'a RwLock<T>,
    /// Whether its thread was panicking when it was made, for poisoning.
    poison: poison::Guard,
    /// Makes the guard `!Send` (and `!Sync`, restored below).
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing a read guard shares `&T` only, fine for `T: Sync`; the
// marker exists only to make the guard `!Send`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: a shared `&RwLockWriteGuard` gives out only `&T`, fine for
// `T: Sync`; the marker exists only to make the guard `!Send`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            state: AtomicUsize::new(0),
            poison: poison::Flag::new(),
            waiters: LockedQueue::new(WaitKind::RwLock),
            writer: Holder::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns its value.
    ///
    /// # Errors
    ///
    /// [`LockError::Poisoned`] with the value inside if the lock is
    /// poisoned.
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.get();
        let value = self.data.into_inner();
        if poisoned { Err(LockError::Poisoned(PoisonError::new(value))) } else { Ok(value) }
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, parking while a writer holds the lock or waits
    /// for it.
    ///
    /// # Errors
    ///
    /// * [`LockError::Poisoned`] if a writer panicked; the read lock is held
    ///   and its guard is inside.
    /// * [`LockError::Cancelled`] if the calling coroutine was cancelled
    ///   while it waited; nothing is held.
    ///
    /// # Panics
    ///
    /// If the lock is already held by the most readers it can count
    /// (2^62 - 2 on 64-bit targets: only read guards leaked with
    /// `mem::forget` get there).
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        self.read_until(None)
    }

    /// Like [`RwLock::read`], but gives up once `timeout` has elapsed. A
    /// timeout too long to have a deadline (such as `Duration::MAX`) waits
    /// without one.
    ///
    /// # Errors
    ///
    /// As [`RwLock::read`], and [`LockError::TimedOut`].
    ///
    /// # Panics
    ///
    /// As [`RwLock::read`].
    pub fn read_timeout(&self, timeout: Duration) -> LockResult<RwLockReadGuard<'_, T>> {
        self.read_until(deadline_after(timeout))
    }

    /// Locks for reading if that needs no wait: no writer holds the lock,
    /// nobody waits, and fewer readers than the most it can count hold it.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`], or [`TryLockError::Poisoned`] holding
    /// the read lock.
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if self.try_acquire(Access::Read) {
            self.poison.wrap_try(self.read_guard())
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Locks for writing, parking while anyone holds the lock.
    ///
    /// # Errors
    ///
    /// * [`LockError::Poisoned`] if a writer panicked; the write lock is
    ///   held and its guard is inside.
    /// * [`LockError::Cancelled`] if the calling coroutine was cancelled
    ///   while it waited; nothing is held.
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        self.write_until(None)
    }

    /// Like [`RwLock::write`], but gives up once `timeout` has elapsed. A
    /// timeout too long to have a deadline (such as `Duration::MAX`) waits
    /// without one.
    ///
    /// # Errors
    ///
    /// As [`RwLock::write`], and [`LockError::TimedOut`].
    pub fn write_timeout(&self, timeout: Duration) -> LockResult<RwLockWriteGuard<'_, T>> {
        self.write_until(deadline_after(timeout))
    }

    /// Locks for writing if nobody holds the lock or waits for it.
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`], or [`TryLockError::Poisoned`] holding
    /// the write lock.
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if self.try_acquire(Access::Write) {
            self.poison.wrap_try(self.write_guard())
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Whether a writer panicked while holding the lock.
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
    /// [`LockError::Poisoned`] with the reference inside if the lock is
    /// poisoned.
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poison.get();
        let value = self.data.get_mut();
        if poisoned { Err(LockError::Poisoned(PoisonError::new(value))) } else { Ok(value) }
    }

    fn read_until(&self, deadline: Option<Instant>) -> LockResult<RwLockReadGuard<'_, T>> {
        self.acquire(Access::Read, deadline)?;
        self.poison.wrap(self.read_guard())
    }

    fn write_until(&self, deadline: Option<Instant>) -> LockResult<RwLockWriteGuard<'_, T>> {
        self.acquire(Access::Write, deadline)?;
        self.poison.wrap(self.write_guard())
    }

    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard { lock: self, _not_send: PhantomData }
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard { lock: self, poison: self.poison.guard(), _not_send: PhantomData }
    }

    /// Takes the lock, waiting if need be; errors carry no guard.
    fn acquire<G>(&self, access: Access, deadline: Option<Instant>) -> Result<(), LockError<G>> {
        if self.try_acquire(access) {
            return Ok(());
        }
        match self.acquire_contended(access, deadline) {
            Outcome::Claimed(_) => Ok(()),
            Outcome::TimedOut => Err(LockError::TimedOut),
            Outcome::Cancelled => Err(LockError::Cancelled),
        }
    }

    /// The fast paths: enter if that overtakes nobody.
    fn try_acquire(&self, access: Access) -> bool {
        match access {
            Access::Write => {
                let taken =
                    self.state.compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed).is_ok();
                if taken {
                    self.writer.taken_here();
                }
                taken
            }
            Access::Read => {
                let mut state = self.state.load(Ordering::Relaxed);
                loop {
                    if state & (WRITER | QUEUED) != 0 || state / READER >= MAX_READERS {
                        return false;
                    }
                    match self.state.compare_exchange_weak(
                        state,
                        state + READER,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return true,
                        Err(actual) => state = actual,
                    }
                }
            }
        }
    }

    fn acquire_contended(&self, access: Access, deadline: Option<Instant>) -> Outcome {
        let mut queue = self.waiters.lock();
        if self.try_acquire(access) {
            return Outcome::Claimed(GRANTED);
        }
        if access == Access::Read && self.state.load(Ordering::Relaxed) / READER >= MAX_READERS {
            drop(queue);
            too_many_readers();
        }
        // From here no reader gets in by the fast path. If the holders left
        // between the failed attempt and this flag, nobody would hand the
        // lock on: `grant` below does, possibly to this very waiter.
        self.state.fetch_or(QUEUED, Ordering::Relaxed);
        let waiter = Waiter::new();
        queue.push(Request { handle: waiter.handle(), access });
        queue.held_in(&self.writer);
        let mut woken = Woken::default();
        self.grant(&mut queue, &mut woken);
        drop(queue);
        woken.wake();
        Queued { lock: self, waiter, access, holds: false }.wait(deadline)
    }

    /// Lets in the oldest waiters the lock can take now (see the module
    /// docs); clears `QUEUED` when nobody is left waiting. Under the queue
    /// lock; the caller wakes `woken` after releasing it.
    fn grant(&self, queue: &mut Locked<'_, Request>, woken: &mut Woken) {
        loop {
            let Some(front) = queue.front_waiting() else {
                self.state.fetch_and(!QUEUED, Ordering::Release);
                return;
            };
            // With `QUEUED` set, the only change others can make to the
            // word meanwhile is a reader leaving; the last one to leave
            // comes here after us.
            let state = self.state.load(Ordering::Acquire);
            let (fits, unit) = match front.access {
                Access::Read => (state & WRITER == 0 && state / READER < MAX_READERS, READER),
                Access::Write => (state & !QUEUED == 0, WRITER),
            };
            if !fits {
                return;
            }
            if !front.handle.claim(GRANTED) {
                continue; // it gave up a moment ago; `front_waiting` drops it
            }
            self.state.fetch_add(unit, Ordering::Relaxed);
            if unit == WRITER {
                self.writer.handed_to(front.handle.party_id());
            }
            let granted = pop_front(queue);
            woken.push(granted.handle);
        }
    }

    /// Releases a read lock.
    fn read_unlock(&self) {
        let before = self.state.fetch_sub(READER, Ordering::Release);
        if before - READER == QUEUED {
            // The last reader left and someone waits (a writer): hand on.
            self.hand_on(|_| {});
        }
    }

    /// Releases the write lock.
    fn write_unlock(&self) {
        // While the lock is still held: a writer taking it next records
        // itself after this.
        self.writer.clear();
        if self.state.compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed).is_err() {
            self.hand_on(|_| {
                self.state.fetch_and(!WRITER, Ordering::Release);
            });
        }
    }

    /// Under the queue lock: runs `release`, then lets in whoever can go.
    fn hand_on(&self, release: impl FnOnce(&mut WaitQueue<Request>)) {
        let mut queue = self.waiters.lock();
        release(&mut queue);
        let mut woken = Woken::default();
        self.grant(&mut queue, &mut woken);
        drop(queue);
        woken.wake();
    }
}

/// `read` found the lock held by `MAX_READERS` readers.
#[cold]
#[track_caller]
fn too_many_readers() -> ! {
    panic!(
        "green::sync::RwLock::read: the lock is held by {MAX_READERS} readers, the most it can count; \
         read guards are being leaked (mem::forget?)"
    )
}

/// Removes the front entry, which the caller has just claimed under the
/// queue lock (so it is still the front: only the lock holder pops).
fn pop_front(queue: &mut WaitQueue<Request>) -> Request {
    queue.pop_claimed(|_| true).expect("the claimed entry is at the front")
}

/// A reader or writer in the queue. Dropped before it holds the lock (its
/// wait timed out or was cancelled, or its coroutine is unwound while it
/// waits), it leaves the lock as if it had never come.
struct Queued<'a, T: ?Sized> {
    /// The lock it waits for.
    lock: &'a RwLock<T>,
    /// The waiter whose handle is in the queue.
    waiter: Waiter,
    /// What it waits for.
    access: Access,
    /// Set once the wait returned holding the lock: nothing to undo.
    holds: bool,
}

impl<T: ?Sized> Queued<'_, T> {
    fn wait(mut self, deadline: Option<Instant>) -> Outcome {
        let outcome = self.waiter.wait(deadline);
        self.holds = matches!(outcome, Outcome::Claimed(_));
        outcome
    }
}

impl<T: ?Sized> Drop for Queued<'_, T> {
    fn drop(&mut self) {
        if self.holds {
            return;
        }
        let (lock, waiter, access) = (self.lock, &self.waiter, self.access);
        lock.hand_on(|queue| {
            // Claims happen only under the queue lock, held here: the
            // waiter is either claimed already or, once its entry is gone,
            // never will be (after a timeout it has abandoned itself too).
            if waiter.claimed().is_some() {
                // Let in while being unwound: give the lock back.
                let unit = if access == Access::Read { READER } else { WRITER };
                if unit == WRITER {
                    lock.writer.clear();
                }
                lock.state.fetch_sub(unit, Ordering::Release);
            } else {
                queue.remove(waiter);
            }
        });
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its owner holds a read lock:
        // no writer holds the lock, so nobody has a `&mut T`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard's owner holds the write lock: nobody else has
        // any access to the data.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard's owner holds the write lock: nobody else has
        // any access, and `&mut self` makes this borrow unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.poison.done(self.poison);
        self.lock.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(err)) => d.field("data", &&**err.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.poison.get());
        d.finish_non_exhaustive()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::panic::{self, AssertUnwindSafe};
    use std::rc::Rc;

    use super::*;

    #[test]
    fn at_the_most_readers_try_read_would_block_and_read_panics_with_nothing_changed() {
        let lock = RwLock::new(());
        // As if that many read guards had been leaked.
        lock.state.store(MAX_READERS * READER, Ordering::SeqCst);
        assert!(matches!(lock.try_read(), Err(TryLockError::WouldBlock)), "as std's try_read");
        let panicked = panic::catch_unwind(AssertUnwindSafe(|| lock.read().map(drop))).unwrap_err();
        let message = panicked.downcast_ref::<String>().map_or("", String::as_str);
        assert!(message.contains("most it can count") && message.contains("mem::forget"), "{message}");
        assert_eq!(lock.state.load(Ordering::SeqCst), MAX_READERS * READER, "nothing changed or queued");
        // One reader leaves: there is room for one more.
        lock.state.store((MAX_READERS - 1) * READER, Ordering::SeqCst);
        let guard = lock.try_read().expect("one below the most");
        assert_eq!(lock.state.load(Ordering::SeqCst), MAX_READERS * READER);
        drop(guard);
        assert_eq!(lock.state.load(Ordering::SeqCst), (MAX_READERS - 1) * READER);
    }

    #[test]
    fn a_hand_off_lets_readers_in_only_up_to_the_most_it_can_count() {
        crate::run(|| {
            let lock = Rc::new(RwLock::new(()));
            // One reader short of the most, as if the guards had been leaked.
            lock.state.store((MAX_READERS - 1) * READER, Ordering::SeqCst);
            let writer = {
                let lock = lock.clone();
                crate::spawn(move || lock.write().map(drop).is_ok())
            };
            crate::yield_now(); // the writer queues behind the readers
            let entered = Rc::new(Cell::new(0));
            let readers: Vec<_> = (0..3)
                .map(|_| {
                    let (lock, entered) = (lock.clone(), entered.clone());
                    crate::spawn(move || {
                        let guard = lock.read().ok()?;
                        entered.set(entered.get() + 1);
                        std::mem::forget(guard);
                        Some(())
                    })
                })
                .collect();
            crate::yield_now(); // the readers queue behind the writer
            assert_eq!(entered.get(), 0);
            // The writer gives up: the readers behind it are handed the lock,
            // but only one fits.
            writer.cancel();
            assert_eq!(writer.join().ok(), Some(false));
            crate::yield_now();
            assert_eq!(entered.get(), 1, "one reader up to the most; the others wait");
            assert_eq!(lock.state.load(Ordering::SeqCst), (MAX_READERS * READER) | QUEUED, "no overflow");
            let mut readers = readers.into_iter();
            assert_eq!(readers.next().map(|first| first.join().ok()), Some(Some(Some(()))));
            for reader in readers {
                reader.cancel();
                assert_eq!(reader.join().ok(), Some(None), "still waiting when cancelled");
            }
            assert_eq!(lock.state.load(Ordering::SeqCst), MAX_READERS * READER, "nobody waits any more");
        });
    }
}
