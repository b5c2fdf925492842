//! Synchronisation primitives that park coroutines instead of blocking
//! threads, and work between coroutines and plain threads alike.
//!
//! Every wait here goes through one mechanism (`wait/`): a waiter in a
//! FIFO queue, claimed by exactly one notifier or abandoned by its own
//! timeout or cancellation. That single rule is why every primitive is
//! fair (first come, first served), why an interrupted wait leaves the
//! primitive as if the waiter had never come, and why they all work across
//! threads: a coroutine of another runtime is woken through its runtime's
//! inbox, a plain thread with `unpark`.
//!
//! # Locks
//!
//! [`Mutex`], [`RwLock`], [`Condvar`] and [`Semaphore`] have `std`'s (and,
//! for the semaphore, tokio's) names and behaviour, with three differences
//! that come from waiting in coroutines:
//!
//! * **Hand-off, FIFO.** A release hands the lock (the permits) to the
//!   oldest waiter before waking it, so a newcomer never overtakes a
//!   parked waiter, and no waiter starves.
//! * **Every wait can end early.** Each has a `_timeout` variant (a
//!   timeout too long to have a deadline, such as `Duration::MAX`, waits
//!   without one, as `std`'s `Condvar::wait_timeout` does), and a
//!   coroutine's wait fails when the coroutine is cancelled
//!   (`JoinHandle::cancel`, a `green::timeout` scope, the runtime's
//!   shutdown). That is why the locks' blocking methods return
//!   [`LockResult`], `Result<G, LockError<G>>`, where `std` returns a
//!   result that can only say "poisoned" (the semaphore's return
//!   [`AcquireError`]). A wait that ends early takes nothing, poisons
//!   nothing, and holds nobody back: the primitive is exactly as if the
//!   waiter had never come.
//! * **Across threads and runtimes.** Each type is `Send` and `Sync` (for
//!   `Mutex<T>`, with `std`'s bounds on `T`). Uncontended, a lock or unlock
//!   is one atomic operation, whoever calls it. A wait costs one
//!   reference-counted waiter record and a short std mutex section, and
//!   waking a coroutine of a runtime on another thread posts to that
//!   runtime's inbox and interrupts its `epoll_wait` (a system call).
//!
//! A coroutine may hold a guard across a park (a sleep, a read): it never
//! changes threads. Guards are `!Send`, like `std`'s.
//!
//! # Numbers
//!
//! No count wraps. A wait that could never succeed fails up front instead
//! of queueing: [`Semaphore::acquire_many`] of more than
//! [`Semaphore::MAX_PERMITS`] returns [`AcquireError::TooManyPermits`] at
//! once. Limits that only leaked guards can reach panic, with a message
//! that names them, before anything changes, as `std`'s do:
//! [`Semaphore::add_permits`] past `MAX_PERMITS` (counting held permits,
//! so that releasing one never can), [`RwLock::read`] past 2^62 - 2
//! readers (where `try_read` returns `WouldBlock`). `Barrier::new(0)`
//! behaves as `Barrier::new(1)`, as `std`'s does.
//!
//! Caveats:
//!
//! * At the runtime's shutdown every wait is cancelled, also in the
//!   destructors that the teardown runs. A destructor that finds a lock
//!   held then gets [`LockError::Cancelled`]; `lock().unwrap()` there
//!   panics while unwinding, which aborts the process. Handle the error in
//!   destructors (`if let Ok(guard) = lock.lock()`).
//! * Poisoning is decided per coroutine: a guard dropped normally while
//!   another coroutine of the thread is parked in the middle of a panic's
//!   unwind does not poison its lock, although `std::thread::panicking`
//!   says true for the whole thread then. The runtime tells the unwinding
//!   coroutines apart with its panic hook; DESIGN.md lists the few cases
//!   it cannot tell.

pub(crate) mod spin;
pub(crate) mod wait;

mod condvar;
mod mutex;
mod poison;
mod rwlock;
mod semaphore;

pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{Mutex, MutexGuard};
pub use poison::{LockError, LockResult};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{AcquireError, Semaphore, SemaphorePermit, TryAcquireError};
pub use std::sync::{PoisonError, TryLockError, TryLockResult};

mod barrier;
mod event;
mod once_cell;
mod wait_error;
mod wait_group;

pub use barrier::{Barrier, BarrierWaitResult};
pub use event::Event;
pub use once_cell::OnceCell;
pub use wait_error::WaitError;
pub use wait_group::{WaitGroup, WaitGroupGuard};
