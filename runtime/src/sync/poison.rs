//! How the locks ([`Mutex`], [`RwLock`], and [`Condvar`] waits) report
//! that they could not do what was asked: poisoning, a timeout, a
//! cancellation.
//!
//! # Poisoning, as in `std`
//!
//! A lock whose exclusive guard is dropped while its thread panics is
//! marked *poisoned*: the panic may have left the data half-updated. Every
//! later lock still succeeds, but hands the guard back inside
//! [`LockError::Poisoned`], so the caller decides whether the data can be
//! trusted ([`PoisonError::into_inner`], `clear_poison`).
//!
//! A guard dropped while its coroutine is being *cancelled* does not
//! poison. Cancellation reaches a coroutine as an error from a blocking
//! call, which `?` propagates like any other error: no panic, nothing to
//! poison. The exception is the runtime's shutdown, which unwinds the
//! stacks of the coroutines still alive (so that their destructors run);
//! `std::thread::panicking` is true during that unwind, and the guard asks
//! the runtime whether its coroutine is being torn down before it poisons.
//!
//! # Per coroutine, not per thread
//!
//! `std::thread::panicking` answers for the OS thread, and a coroutine
//! suspended in a destructor in the middle of its unwind (waiting for a
//! lock, say) leaves it true for every other coroutine of the thread. The
//! guard therefore asks the runtime (`context::panicking`), which knows
//! which of its coroutines is unwinding: a clean guard drop in one
//! coroutine does not poison because another is suspended mid-unwind.
//!
//! # Why not `std::sync::LockResult`
//!
//! `std`'s `LockResult<G>` is `Result<G, PoisonError<G>>`: it has no room
//! for a wait that ends without the lock. Here a wait may time out (the
//! `_timeout` methods) or be cancelled (`JoinHandle::cancel`, a
//! `green::timeout` scope, the runtime's shutdown), so [`LockResult`] is
//! `Result<G, LockError<G>>` with those two cases besides `Poisoned`. The
//! shape is `std`'s [`TryLockError`](std::sync::TryLockError), which
//! `try_lock` keeps using unchanged. `lock().unwrap()` reads as with `std`,
//! and `?` turns a [`LockError`] into an [`io::Error`].
//!
//! [`Mutex`]: super::Mutex
//! [`RwLock`]: super::RwLock
//! [`Condvar`]: super::Condvar

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::context::{self, Context};

/// The result of a blocking lock operation: the guard, or why there is no
/// usable one.
pub type LockResult<G> = Result<G, LockError<G>>;

/// Why a blocking lock operation did not simply return its guard.
///
/// Methods that wait without a timeout (`lock`, `read`, `write`,
/// `Condvar::wait`) never return [`LockError::TimedOut`]. Neither variant
/// but `Poisoned` leaves anything held: a wait that timed out or was
/// cancelled left the lock exactly as if it had never come.
///
/// ```
/// use std::time::Duration;
/// use green::sync::{LockError, Mutex};
///
/// let lock = Mutex::new(0);
/// let held = lock.lock().unwrap();
/// // A plain thread waits here; a coroutine would park.
/// assert!(matches!(lock.lock_timeout(Duration::from_millis(1)), Err(LockError::TimedOut)));
/// drop(held);
/// ```
pub enum LockError<G> {
    /// The lock was acquired, but a holder panicked while holding it; the
    /// guard is inside.
    Poisoned(PoisonError<G>),
    /// The timeout elapsed before the lock could be acquired.
    TimedOut,
    /// The waiting coroutine was cancelled first (a cancel request, the
    /// deadline of a `green::timeout` scope, or the runtime's shutdown).
    Cancelled,
}

impl<G> LockError<G> {
    /// Whether the lock was acquired but is poisoned.
    pub fn is_poisoned(&self) -> bool {
        matches!(self, LockError::Poisoned(_))
    }

    /// Whether the wait timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, LockError::TimedOut)
    }

    /// Whether the waiting coroutine was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, LockError::Cancelled)
    }

    /// The guard of a poisoned lock; `None` if the lock was not acquired.
    pub fn into_poisoned(self) -> Option<G> {
        match self {
            LockError::Poisoned(poisoned) => Some(poisoned.into_inner()),
            LockError::TimedOut | LockError::Cancelled => None,
        }
    }
}

impl<G> From<PoisonError<G>> for LockError<G> {
    fn from(err: PoisonError<G>) -> LockError<G> {
        LockError::Poisoned(err)
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Poisoned(..) => f.write_str("Poisoned(..)"),
            LockError::TimedOut => f.write_str("TimedOut"),
            LockError::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Poisoned(err) => fmt::Display::fmt(err, f),
            LockError::TimedOut => f.write_str("green: the lock was not acquired before the timeout"),
            LockError::Cancelled => fmt::Display::fmt(&crate::Cancelled, f),
        }
    }
}

impl<G> Error for LockError<G> {}

impl<G> From<LockError<G>> for io::Error {
    /// `Cancelled` becomes the error a cancelled socket operation returns
    /// (which [`crate::is_cancelled`] recognises); `TimedOut` an error of
    /// kind [`io::ErrorKind::TimedOut`]; `Poisoned` an error of kind
    /// `Other` (the guard is dropped, releasing the lock).
    ///
    /// ```
    /// let err = std::io::Error::from(green::sync::LockError::<()>::Cancelled);
    /// assert!(green::is_cancelled(&err));
    /// ```
    fn from(err: LockError<G>) -> io::Error {
        match err {
            LockError::Poisoned(_) => io::Error::other("green: the lock is poisoned: a holder panicked"),
            LockError::TimedOut => {
                io::Error::new(io::ErrorKind::TimedOut, "green: the lock was not acquired before the timeout")
            }
            LockError::Cancelled => crate::cancel::cancelled_error(),
        }
    }
}

/// A lock's poison mark.
#[derive(Debug)]
pub(super) struct Flag {
    /// Set when an exclusive guard is dropped during a panic.
    poisoned: AtomicBool,
}

/// What an exclusive guard remembers to decide, when it is dropped,
/// whether a panic began while it was held.
#[derive(Debug, Clone, Copy)]
pub(super) struct Guard {
    /// Whether the thread was already panicking when the guard was made
    /// (a guard taken in a destructor during a panic does not poison).
    panicking: bool,
}

impl Flag {
    /// A lock that is not poisoned.
    pub(super) const fn new() -> Flag {
        Flag { poisoned: AtomicBool::new(false) }
    }

    /// Whether the lock is poisoned.
    pub(super) fn get(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    /// Clears the mark.
    pub(super) fn clear(&self) {
        self.poisoned.store(false, Ordering::Relaxed);
    }

    /// Called when an exclusive guard is made.
    pub(super) fn guard(&self) -> Guard {
        Guard { panicking: context::panicking() }
    }

    /// Called when an exclusive guard is dropped: poisons the lock if a
    /// panic began while the guard was held, unless that "panic" is the
    /// runtime unwinding a cancelled coroutine at shutdown.
    pub(super) fn done(&self, guard: Guard) {
        if !guard.panicking && context::panicking() && !torn_down() {
            self.poisoned.store(true, Ordering::Relaxed);
        }
    }

    /// `Ok(guard)`, or the guard inside [`LockError::Poisoned`] if the lock
    /// is poisoned.
    pub(super) fn wrap<G>(&self, guard: G) -> LockResult<G> {
        if self.get() { Err(LockError::Poisoned(PoisonError::new(guard))) } else { Ok(guard) }
    }

    /// As [`Flag::wrap`], for `try_lock`.
    pub(super) fn wrap_try<G>(&self, guard: G) -> std::sync::TryLockResult<G> {
        if self.get() { Err(std::sync::TryLockError::Poisoned(PoisonError::new(guard))) } else { Ok(guard) }
    }
}

/// Whether the caller is a coroutine being unwound by its runtime's
/// shutdown (see the module docs).
fn torn_down() -> bool {
    Context::with(|cx| cx.with_current(|task| task.unwinding.get())).flatten().unwrap_or(false)
}
