//! [`Semaphore`]: a count of permits that coroutines and threads acquire
//! and release, first come first served.
//!
//! # The permit word
//!
//! `state` packs the available permits (in units of `PERMIT`) with two
//! flags: `QUEUED` (the queue may have waiters) and `CLOSED`. While
//! `QUEUED` is set the oldest waiter needs more permits than are
//! available, and the fast paths stay out of the way:
//!
//! * acquire (no queue lock): take `n` permits by compare-and-swap if
//!   neither flag is set and at least `n` are available;
//! * release (no queue lock): add `n` permits by compare-and-swap; if
//!   `QUEUED` was set, then take the queue lock and run `grant`;
//! * an acquirer that cannot take its permits takes the queue lock, sets
//!   `QUEUED`, queues, and runs `grant` too (permits may have come back
//!   between its attempt and the flag).
//!
//! `grant` looks at the oldest waiter that still waits; if enough permits
//! are available it takes them out of the word, claims the waiter (so the
//! permits are its own before it wakes) and repeats; otherwise it stops.
//! When nobody is left waiting it clears `QUEUED`.
//!
//! # Policy: strict arrival order
//!
//! A waiter for many permits at the head of the queue holds back everyone
//! behind it, even acquirers that would fit in what is available: without
//! that, a stream of small acquirers could starve a large one forever.
//! (tokio's semaphore does the same.) The price: permits may sit unused
//! while the large waiter waits for the rest. A waiter that could never be
//! met would hold everyone behind it back for ever; none is let in the
//! queue (see "Limits").
//!
//! # Limits: what can ever be met
//!
//! A semaphore has at most [`Semaphore::MAX_PERMITS`] permits in all:
//! available ones and held ones. `total` counts them; only `new`,
//! `add_permits`, `forget_permits` and a forgotten permit change it, never
//! an acquire or a release, so the fast paths do not touch it. Because the
//! total never exceeds the maximum, a release (a permit's drop) can never
//! overflow the word: the one check is in `add_permits`, which panics, with
//! nothing changed, if the total would exceed it (as `std`'s arithmetic
//! panics on overflow, and as tokio's semaphore does).
//!
//! A request for more than `MAX_PERMITS` can therefore never be met: it
//! fails at once with `TooManyPermits` and never queues, so it holds back
//! nobody. Any other request can be met some day (`add_permits` may bring
//! the permits), and waits. A request for no permits needs nothing and
//! takes nothing: it succeeds at once (unless the semaphore is closed),
//! even while others wait, since it overtakes nobody.
//!
//! # Closing
//!
//! `close` sets `CLOSED` and claims every waiter with the `CLOSED` token:
//! they wake with [`AcquireError::Closed`]. Later acquires fail at once.
//! Permits still held may be released; they are counted but no longer
//! handed out.
//!
//! # Interrupted waits
//!
//! A waiter that gives up (timeout, cancellation, or its coroutine unwound
//! at shutdown) removes its entry and runs `grant`: if it was a large
//! waiter holding back smaller ones, they go now, exactly as if it had
//! never come. If it was granted its permits before it could give up, the
//! grant wins and the acquire succeeds (when unwinding, it releases them).

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::wait::party::{Outcome, deadline_after};
use super::wait::queue::{Entry, Locked, LockedQueue, WaitQueue, Woken};
use super::wait::waiter::{Waiter, WaiterHandle};
use crate::dump::kind::WaitKind;

/// The queue may have waiters.
const QUEUED: usize = 1;
/// The semaphore is closed.
const CLOSED: usize = 2;
/// One available permit (the count lives above the two flags).
const PERMIT: usize = 4;

/// Claim token: the waiter's permits are taken out for it.
const GRANTED: usize = 0;
/// Claim token: the semaphore was closed.
const CLOSED_TOKEN: usize = 1;

/// A queued acquirer.
#[derive(Debug)]
struct Request {
    /// Its waiter.
    handle: WaiterHandle,
    /// How many permits it waits for.
    permits: usize,
}

impl Entry for Request {
    fn waiter(&self) -> Option<&WaiterHandle> {
        Some(&self.handle)
    }
}

/// A counting semaphore for coroutines and threads.
///
/// Acquiring takes permits, parking the coroutine (or blocking the thread)
/// until enough are available; the [`SemaphorePermit`] gives them back when
/// dropped. Acquirers may be any mix of coroutines of any runtimes and
/// plain threads.
///
/// ```
/// use std::sync::Arc;
/// use green::sync::Semaphore;
///
/// green::run(|| {
///     // At most two workers at a time.
///     let slots = Arc::new(Semaphore::new(2));
///     let workers: Vec<_> = (0..5)
///         .map(|_| {
///             let slots = slots.clone();
///             green::spawn(move || {
///                 let _slot = slots.acquire().unwrap();
///                 green::sleep(std::time::Duration::from_millis(1)).unwrap();
///             })
///         })
///         .collect();
///     for worker in workers {
///         worker.join().unwrap();
///     }
///     assert_eq!(slots.available_permits(), 2);
/// });
/// ```
///
/// # Fairness
///
/// First come, first served, counting permits: a waiter for many permits
/// at the head of the queue holds back later acquirers, even small ones
/// that would fit (so it is never starved), and `try_acquire` fails while
/// anyone waits. Only a request that can be met some day waits: one for
/// more than [`Semaphore::MAX_PERMITS`] fails at once
/// ([`AcquireError::TooManyPermits`]), and one for no permits succeeds at
/// once.
///
/// # Limits
///
/// A semaphore has at most [`Semaphore::MAX_PERMITS`] permits in all,
/// available and held: [`Semaphore::new`] and [`Semaphore::add_permits`]
/// panic beyond that (before changing anything), so that releasing a
/// permit never can. [`SemaphorePermit::forget`] and
/// [`Semaphore::forget_permits`] make room again.
///
/// # Timeouts, cancellation, closing
///
/// [`Semaphore::acquire_timeout`] gives up after a while; a coroutine's wait
/// ends when it is cancelled; [`Semaphore::close`] ends every wait. Each
/// is its own [`AcquireError`]. A waiter that gives up takes nothing and
/// holds nobody back any more: the semaphore is as if it had never come.
///
/// # Cost
///
/// Without waiters, acquiring and releasing are one compare-and-swap each.
/// A waiter allocates one reference-counted waiter record and takes a
/// short std mutex section, and so does a release while someone waits.
/// Waking a coroutine of another runtime goes through its inbox (a system
/// call to interrupt its `epoll_wait`); a plain thread, `unpark`.
pub struct Semaphore {
    /// Available permits, `QUEUED` and `CLOSED` (see the module docs).
    state: AtomicUsize,
    /// Permits the semaphore has in all, available or held: at most
    /// [`Semaphore::MAX_PERMITS`], which is what keeps a release from
    /// overflowing `state` (see "Limits" in the module docs). Changed by
    /// `add_permits`, `forget_permits` and [`SemaphorePermit::forget`]
    /// only.
    total: AtomicUsize,
    /// Waiting acquirers, oldest first.
    waiters: LockedQueue<Request>,
}

/// Permits acquired from a [`Semaphore`]; released when dropped.
///
/// `Send` and `Sync`: permits may be released on another thread.
#[must_use = "if unused the permits are released at once"]
pub struct SemaphorePermit<'a> {
    /// Where they came from.
    semaphore: &'a Semaphore,
    /// How many.
    permits: usize,
}

/// Why a waiting acquire failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcquireError {
    /// The semaphore is closed.
    Closed,
    /// The timeout elapsed before enough permits were available (only from
    /// the `_timeout` methods).
    TimedOut,
    /// The waiting coroutine was cancelled first (a cancel request, the
    /// deadline of a `green::timeout` scope, or the runtime's shutdown).
    Cancelled,
    /// More permits were asked for than any semaphore can ever hold (more
    /// than [`Semaphore::MAX_PERMITS`]): the request could never be met,
    /// so it fails at once instead of waiting, and holds back nobody.
    ///
    /// ```
    /// use green::sync::{AcquireError, Semaphore};
    ///
    /// let semaphore = Semaphore::new(1);
    /// let impossible = semaphore.acquire_many(Semaphore::MAX_PERMITS + 1);
    /// assert_eq!(impossible.unwrap_err(), AcquireError::TooManyPermits);
    /// assert_eq!(semaphore.acquire().map(|permit| permit.num_permits()), Ok(1));
    /// ```
    TooManyPermits,
}

/// Why `try_acquire` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryAcquireError {
    /// The semaphore is closed.
    Closed,
    /// Not enough permits are available, or others wait before the caller.
    NoPermits,
    /// More permits were asked for than any semaphore can ever hold (more
    /// than [`Semaphore::MAX_PERMITS`]): no retry can succeed.
    ///
    /// ```
    /// use green::sync::{Semaphore, TryAcquireError};
    ///
    /// let semaphore = Semaphore::new(Semaphore::MAX_PERMITS);
    /// let impossible = semaphore.try_acquire_many(usize::MAX);
    /// assert_eq!(impossible.unwrap_err(), TryAcquireError::TooManyPermits);
    /// ```
    TooManyPermits,
}

impl Semaphore {
    /// The most permits a semaphore can have in all, available and held
    /// together (`usize::MAX / 4`: the count shares a word with two flags).
    pub const MAX_PERMITS: usize = usize::MAX / PERMIT;

    /// A semaphore with `permits` available.
    ///
    /// # Panics
    ///
    /// If `permits` exceeds [`Semaphore::MAX_PERMITS`].
    pub const fn new(permits: usize) -> Semaphore {
        assert!(
            permits <= Semaphore::MAX_PERMITS,
            "green::sync::Semaphore::new: more permits than Semaphore::MAX_PERMITS (usize::MAX / 4); \
             ask for at most that many"
        );
        Semaphore {
            state: AtomicUsize::new(permits * PERMIT),
            total: AtomicUsize::new(permits),
            waiters: LockedQueue::new(WaitKind::Semaphore),
        }
    }

    /// Marks the semaphore as used by `home` (see `sync/wait/touch.rs`):
    /// for a semaphore that something outside the waiting runtime
    /// releases, such as the blocking pool's queue.
    pub(crate) fn used_by(&self, home: u64) {
        self.waiters.lock().touched_by(Some(home));
    }

    /// Makes every wait on this semaphore a wait of kind `kind` in the task
    /// dump (the blocking pool's queue room).
    pub(crate) fn waits_as(&self, kind: WaitKind) {
        self.waiters.lock().set_kind(kind);
    }

    /// Acquires one permit, waiting until it is available.
    ///
    /// # Errors
    ///
    /// [`AcquireError::Closed`] if the semaphore is or gets closed;
    /// [`AcquireError::Cancelled`] if the calling coroutine is cancelled
    /// while it waits. (The `_many` methods may also fail with
    /// [`AcquireError::TooManyPermits`].)
    pub fn acquire(&self) -> Result<SemaphorePermit<'_>, AcquireError> {
        self.acquire_until(1, None)
    }

    /// Acquires `n` permits at once, waiting until they are available. The
    /// waiter keeps its place in the queue while permits trickle in, and
    /// holds back everyone behind it.
    ///
    /// `n` may exceed the permits the semaphore has now (it waits for
    /// [`Semaphore::add_permits`] to bring the rest), but not
    /// [`Semaphore::MAX_PERMITS`], which no semaphore can ever have: such a
    /// request fails at once. `n == 0` succeeds at once, even while others
    /// wait (it takes nothing from them).
    ///
    /// ```
    /// use green::sync::{AcquireError, Semaphore};
    ///
    /// let semaphore = Semaphore::new(2);
    /// assert_eq!(semaphore.acquire_many(2).map(|permits| permits.num_permits()), Ok(2));
    /// assert_eq!(semaphore.acquire_many(usize::MAX).unwrap_err(), AcquireError::TooManyPermits);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Semaphore::acquire`], and [`AcquireError::TooManyPermits`] if
    /// `n` exceeds [`Semaphore::MAX_PERMITS`] (unless the semaphore is
    /// closed: then [`AcquireError::Closed`]).
    pub fn acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, AcquireError> {
        self.acquire_until(n, None)
    }

    /// Like [`Semaphore::acquire`], giving up once `timeout` has elapsed.
    /// A timeout too long to have a deadline (such as `Duration::MAX`)
    /// waits without one.
    ///
    /// # Errors
    ///
    /// As [`Semaphore::acquire`], and [`AcquireError::TimedOut`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphorePermit<'_>, AcquireError> {
        self.acquire_until(1, deadline_after(timeout))
    }

    /// Like [`Semaphore::acquire_many`], giving up once `timeout` has
    /// elapsed.
    ///
    /// # Errors
    ///
    /// As [`Semaphore::acquire_many`], and [`AcquireError::TimedOut`].
    pub fn acquire_many_timeout(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<SemaphorePermit<'_>, AcquireError> {
        self.acquire_until(n, deadline_after(timeout))
    }

    /// Takes one permit if that needs no wait.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::NoPermits`] if none is available or others wait;
    /// [`TryAcquireError::Closed`] if the semaphore is closed.
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if that needs no wait. `n == 0` needs none, even
    /// while others wait.
    ///
    /// # Errors
    ///
    /// As [`Semaphore::try_acquire`], and
    /// [`TryAcquireError::TooManyPermits`] if `n` exceeds
    /// [`Semaphore::MAX_PERMITS`] (unless the semaphore is closed).
    pub fn try_acquire_many(&self, n: usize) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        if let Err(err) = self.try_take(n) {
            try_take_failed(n, err)?;
        }
        Ok(SemaphorePermit { semaphore: self, permits: n })
    }

    /// Adds `n` permits, handing them to waiters in order.
    ///
    /// ```
    /// use green::sync::Semaphore;
    ///
    /// let semaphore = Semaphore::new(0);
    /// semaphore.add_permits(3);
    /// assert_eq!(semaphore.available_permits(), 3);
    /// ```
    ///
    /// # Panics
    ///
    /// If the semaphore would then have more than
    /// [`Semaphore::MAX_PERMITS`] in all, counting the permits that are
    /// held as well as those available. Nothing is added then: the check
    /// comes first, and the semaphore stays as it was.
    pub fn add_permits(&self, n: usize) {
        let mut total = self.total.load(Ordering::Relaxed);
        loop {
            let Some(more) = total.checked_add(n).filter(|&more| more <= Semaphore::MAX_PERMITS) else {
                too_many_added(total, n);
            };
            // Acquire-release: a permit forgotten before this (its count
            // taken out of `total`) was taken out of `state` before that,
            // so `state` plus the held permits never exceeds `total`.
            match self.total.compare_exchange_weak(total, more, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => total = actual,
            }
        }
        self.release(n);
    }

    /// Removes up to `n` of the available permits for good, and returns
    /// how many it removed: fewer than `n` (down to none) if fewer are
    /// available. Permits that are held are not touched; waiters keep
    /// waiting for permits to come back or be added.
    ///
    /// ```
    /// use green::sync::Semaphore;
    ///
    /// let semaphore = Semaphore::new(3);
    /// let held = semaphore.acquire().unwrap();
    /// assert_eq!(semaphore.forget_permits(10), 2, "only the two available ones");
    /// drop(held);
    /// assert_eq!(semaphore.available_permits(), 1);
    /// ```
    pub fn forget_permits(&self, n: usize) -> usize {
        // Under the queue lock: `grant` counts on nobody but a release
        // changing the word while it holds that lock.
        let _queue = self.waiters.lock();
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let forgotten = n.min(state / PERMIT);
            if forgotten == 0 {
                return 0;
            }
            match self.state.compare_exchange_weak(
                state,
                state - forgotten * PERMIT,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.total.fetch_sub(forgotten, Ordering::AcqRel);
                    return forgotten;
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// Permits available now (while others may be changing it).
    pub fn available_permits(&self) -> usize {
        self.state.load(Ordering::Acquire) / PERMIT
    }

    /// Closes the semaphore: every waiter wakes with
    /// [`AcquireError::Closed`], and every later acquire fails. Permits
    /// already acquired are unaffected and may still be released.
    pub fn close(&self) {
        let mut woken = Woken::default();
        {
            let mut queue = self.waiters.lock();
            self.state.fetch_or(CLOSED, Ordering::Release);
            for waiting in queue.drain() {
                if waiting.handle.claim(CLOSED_TOKEN) {
                    woken.push(waiting.handle);
                }
            }
            self.state.fetch_and(!QUEUED, Ordering::Release);
        }
        woken.wake();
    }

    /// Whether [`Semaphore::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    fn acquire_until(
        &self,
        n: usize,
        deadline: Option<Instant>,
    ) -> Result<SemaphorePermit<'_>, AcquireError> {
        match self.try_take(n) {
            Ok(()) => {}
            Err(TryAcquireError::NoPermits) => self.acquire_contended(n, deadline)?,
            // The fast path fails with `Closed` or `NoPermits` only.
            Err(_) => return Err(AcquireError::Closed),
        }
        Ok(SemaphorePermit { semaphore: self, permits: n })
    }

    /// The fast path: takes `n` permits if nobody waits and they are there.
    fn try_take(&self, n: usize) -> Result<(), TryAcquireError> {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & CLOSED != 0 {
                return Err(TryAcquireError::Closed);
            }
            if state & QUEUED != 0 || state / PERMIT < n {
                return Err(TryAcquireError::NoPermits);
            }
            match self.state.compare_exchange_weak(
                state,
                state - n * PERMIT,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => state = actual,
            }
        }
    }

    fn acquire_contended(&self, n: usize, deadline: Option<Instant>) -> Result<(), AcquireError> {
        // Off the fast path, the requests that must not queue (see "Limits"
        // in the module docs): one that needs nothing overtakes nobody, and
        // one that could never be met would hold back everyone behind it.
        if n == 0 {
            return Ok(());
        }
        if n > Semaphore::MAX_PERMITS {
            return Err(AcquireError::TooManyPermits);
        }
        let mut queue = self.waiters.lock();
        match self.try_take(n) {
            Ok(()) => return Ok(()),
            Err(TryAcquireError::NoPermits) => {}
            // The fast path fails with `Closed` or `NoPermits` only.
            Err(_) => return Err(AcquireError::Closed),
        }
        // From here nobody takes permits by the fast path. If permits came
        // back between the failed attempt and this flag, nobody would hand
        // them out: `grant` below does, possibly to this very waiter.
        self.state.fetch_or(QUEUED, Ordering::Relaxed);
        let waiter = Waiter::new();
        queue.push(Request { handle: waiter.handle(), permits: n });
        let mut woken = Woken::default();
        self.grant(&mut queue, &mut woken);
        drop(queue);
        woken.wake();
        Queued { semaphore: self, waiter, permits: n, settled: false }.wait(deadline)
    }

    /// Gives `n` permits back and hands them on. Cannot overflow: the
    /// permits available and held never exceed `total`, which never
    /// exceeds `MAX_PERMITS` (see "Limits" in the module docs).
    fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let state = self.state.fetch_add(n * PERMIT, Ordering::Release);
        debug_assert!(state / PERMIT + n <= Semaphore::MAX_PERMITS, "permits beyond the total");
        if state & QUEUED != 0 {
            // Someone waited when the permits came back: hand them on. (If
            // `QUEUED` was clear, a waiter that came since took the permits
            // itself, or will be granted them by the `grant` it runs.)
            self.hand_on(|_| {});
        }
    }

    /// Under the queue lock: runs `release`, then hands permits to the
    /// waiters they satisfy.
    fn hand_on(&self, release: impl FnOnce(&mut WaitQueue<Request>)) {
        let mut queue = self.waiters.lock();
        release(&mut queue);
        let mut woken = Woken::default();
        self.grant(&mut queue, &mut woken);
        drop(queue);
        woken.wake();
    }

    /// Satisfies the oldest waiters that the available permits cover, in
    /// order (see the module docs); clears `QUEUED` when nobody is left
    /// waiting. Under the queue lock; the caller wakes `woken` after.
    fn grant(&self, queue: &mut Locked<'_, Request>, woken: &mut Woken) {
        loop {
            let Some(front) = queue.front_waiting() else {
                self.state.fetch_and(!QUEUED, Ordering::Release);
                return;
            };
            // With `QUEUED` set, the only change made to the word without
            // the queue lock is a release adding permits: the check holds.
            let state = self.state.load(Ordering::Acquire);
            if state & CLOSED != 0 || state / PERMIT < front.permits {
                return;
            }
            let permits = front.permits;
            if !front.handle.claim(GRANTED) {
                continue; // it gave up a moment ago; `front_waiting` drops it
            }
            self.state.fetch_sub(permits * PERMIT, Ordering::Relaxed);
            let granted = queue.pop_claimed(|_| true).expect("the claimed entry is at the front");
            woken.push(granted.handle);
        }
    }
}

/// What a `try_acquire_many(n)` that the fast path refused with `err`
/// comes to: `Ok` for `n == 0`, which needs nothing (even while others
/// wait), `TooManyPermits` for more than anyone can have, `err` otherwise.
/// The same rules as at the start of `acquire_contended`.
#[cold]
fn try_take_failed(n: usize, err: TryAcquireError) -> Result<(), TryAcquireError> {
    match err {
        TryAcquireError::NoPermits if n == 0 => Ok(()),
        TryAcquireError::NoPermits if n > Semaphore::MAX_PERMITS => Err(TryAcquireError::TooManyPermits),
        err => Err(err),
    }
}

/// `add_permits(n)` to a semaphore with `total` permits would pass the
/// maximum.
#[cold]
#[track_caller]
fn too_many_added(total: usize, n: usize) -> ! {
    panic!(
        "green::sync::Semaphore::add_permits: adding {n} permits to the {total} the semaphore has \
         (available and held) would exceed Semaphore::MAX_PERMITS ({}); nothing was added",
        Semaphore::MAX_PERMITS
    )
}

/// An acquirer in the queue. Dropped before it holds its permits (its wait
/// timed out or was cancelled, or its coroutine is unwound while it
/// waits), it leaves the semaphore as if it had never come.
struct Queued<'a> {
    /// The semaphore it waits on.
    semaphore: &'a Semaphore,
    /// The waiter whose handle is in the queue.
    waiter: Waiter,
    /// How many permits it waits for.
    permits: usize,
    /// Set once the wait has returned an outcome: nothing to undo.
    settled: bool,
}

impl Queued<'_> {
    fn wait(mut self, deadline: Option<Instant>) -> Result<(), AcquireError> {
        let outcome = self.waiter.wait(deadline);
        self.settled = matches!(outcome, Outcome::Claimed(_));
        match outcome {
            Outcome::Claimed(GRANTED) => Ok(()),
            Outcome::Claimed(_) => Err(AcquireError::Closed),
            Outcome::TimedOut => Err(AcquireError::TimedOut),
            Outcome::Cancelled => Err(AcquireError::Cancelled),
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (semaphore, waiter, permits) = (self.semaphore, &self.waiter, self.permits);
        semaphore.hand_on(|queue| {
            // Claims happen only under the queue lock, held here: the
            // waiter is either claimed already or, once its entry is gone,
            // never will be (after a timeout it has abandoned itself too).
            match waiter.claimed() {
                // Granted while being unwound: give the permits back.
                Some(GRANTED) => {
                    semaphore.state.fetch_add(permits * PERMIT, Ordering::Release);
                }
                Some(_) => {} // closed: nothing was taken
                None => queue.remove(waiter),
            }
        });
    }
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Drops the permits without releasing them: the semaphore has that
    /// many fewer from now on (and room for that many more from
    /// [`Semaphore::add_permits`]).
    pub fn forget(mut self) {
        self.semaphore.total.fetch_sub(self.permits, Ordering::AcqRel);
        self.permits = 0;
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.semaphore.release(self.permits);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").field("permits", &self.permits).finish_non_exhaustive()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.load(Ordering::Relaxed);
        f.debug_struct("Semaphore")
            .field("permits", &(state / PERMIT))
            .field("closed", &(state & CLOSED != 0))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::Closed => f.write_str("green: the semaphore is closed"),
            AcquireError::TimedOut => f.write_str("green: no permit became available before the timeout"),
            AcquireError::Cancelled => fmt::Display::fmt(&crate::Cancelled, f),
            AcquireError::TooManyPermits => too_many_permits(f),
        }
    }
}

impl Error for AcquireError {}

impl From<AcquireError> for io::Error {
    /// `Cancelled` becomes the error a cancelled socket operation returns
    /// (which [`crate::is_cancelled`] recognises); `TimedOut` an error of
    /// kind [`io::ErrorKind::TimedOut`]; `TooManyPermits` one of kind
    /// [`io::ErrorKind::InvalidInput`]; `Closed` one of kind `Other`.
    fn from(err: AcquireError) -> io::Error {
        match err {
            AcquireError::Closed => io::Error::other(err),
            AcquireError::TooManyPermits => io::Error::new(io::ErrorKind::InvalidInput, err),
            AcquireError::TimedOut => io::Error::new(io::ErrorKind::TimedOut, err),
            AcquireError::Cancelled => crate::cancel::cancelled_error(),
        }
    }
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::Closed => f.write_str("green: the semaphore is closed"),
            TryAcquireError::NoPermits => f.write_str("green: no permits available"),
            TryAcquireError::TooManyPermits => too_many_permits(f),
        }
    }
}

impl Error for TryAcquireError {}

/// The message of both `TooManyPermits` errors.
fn too_many_permits(f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "green: more permits asked for than a semaphore can ever have (Semaphore::MAX_PERMITS, {}); \
         the request could never be met: ask for at most that many",
        Semaphore::MAX_PERMITS
    )
}
