//! `OnceCell`: a value written once, by the first initialiser to run, and
//! read without a lock ever after; others who need it meanwhile park.
//!
//! # States
//!
//! 1. **Empty**: no value, `initialiser` is `None`. The first caller of
//!    `get_or_init` takes the *turn* and becomes the initialiser; `set`
//!    stores its value directly.
//! 2. **Initialising**: `initialiser` names the party (coroutine or thread)
//!    running its closure, outside the lock. Other initialisers queue as
//!    *contenders*, plain `wait`ers as *watchers*; `set` fails.
//! 3. **Full**: `value` is set, `initialiser` is `None`, and never changes
//!    again (until `take` with `&mut`).
//!
//! # Handing over the turn
//!
//! When the turn ends (the closure returned, failed, or panicked: the
//! [`Turn`] is dropped in all three cases), the lock is taken and either
//! * the value is there: every contender and watcher is claimed with
//!   `READY` and woken; they read the value; or
//! * it is not: the oldest contender still waiting is claimed with
//!   `YOUR_TURN` and becomes the initialiser right there, under the lock,
//!   so no newcomer can overtake it (the next waiter tries, in order). With
//!   no contender left the cell is Empty again.
//!
//! A contender that is handed the turn and then unwinds before using it
//! (its coroutine torn down at shutdown) passes it on in the same way, from
//! the drop of its queue entry. A contender or watcher whose wait is
//! interrupted just leaves the queue: nothing was handed to it, as if it
//! had never come.
//!
//! The value lives in a `std::sync::OnceLock`, written only by the holder
//! of the turn (or by `set` under the lock), so it never contends there and
//! the cell needs no `unsafe` of its own.

use std::fmt;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use super::wait::party::{Outcome, deadline_after};
use super::wait::queue::{Entry, WaitQueue};
use super::wait::waiter::{Waiter, WaiterHandle};
use super::wait_error::WaitError;
use crate::dump::kind::WaitKind;
use crate::task::TaskId;

/// The claim token: the value is there, read it.
const READY: usize = 0;
/// The claim token: the previous initialiser failed; the turn is yours.
const YOUR_TURN: usize = 1;

/// A cell written once, which coroutines and threads can wait on.
///
/// Like [`std::sync::OnceLock`], except that callers who find another
/// initialiser running *park* (a coroutine lets its thread run others),
/// and every wait can end with an error instead of hanging:
/// cancellation, or the timeout of [`OnceCell::wait_timeout`].
///
/// ```
/// use std::sync::Arc;
/// use green::sync::OnceCell;
///
/// green::run(|| {
///     let config = Arc::new(OnceCell::new());
///     let readers: Vec<_> = (0..4)
///         .map(|_| {
///             let config = config.clone();
///             green::spawn(move || -> Result<usize, green::sync::WaitError> {
///                 // One of these runs the closure; the others park until
///                 // it is done and read its value.
///                 let text = config.get_or_init(|| {
///                     green::yield_now(); // expensive loading here
///                     String::from("port = 7000")
///                 })?;
///                 Ok(text.len())
///             })
///         })
///         .collect();
///     for reader in readers {
///         assert_eq!(reader.join().unwrap(), Ok(11));
///     }
/// });
/// ```
///
/// `OnceCell<T>` is `Sync` when `T` is `Send` and `Sync`, as `OnceLock` is:
///
/// ```compile_fail
/// fn shared<T: Sync>(_: &T) {}
/// shared(&green::sync::OnceCell::<std::cell::Cell<u8>>::new());
/// ```
///
/// # Panicking and failing initialisers
///
/// If the closure panics (or, for [`OnceCell::get_or_try_init`], returns an
/// error), the cell stays empty, the panic or error goes to that caller
/// only, and the oldest waiting initialiser runs *its* closure next.
///
/// # Differences from `OnceLock`
///
/// * `get_or_init` returns a `Result`: a coroutine cancelled while another
///   initialiser runs gets [`WaitError::Cancelled`], its closure not run
///   and the cell untouched, instead of a made-up value or a panic. That is
///   also how its wait is bounded: inside a
///   [`green::timeout`](crate::timeout) scope.
/// * [`OnceCell::set`] never waits: while an initialiser runs it fails at
///   once (`OnceLock::set` would block until that initialiser finishes).
///   Use [`OnceCell::wait`] to wait for the value.
/// * Re-entrant initialisation (the closure initialising the same cell) is
///   a panic with a message, where `OnceLock` deadlocks.
pub struct OnceCell<T> {
    /// The value, once there. Written only by the holder of the turn, or by
    /// `set` while nobody holds it; read without the lock.
    value: OnceLock<T>,
    /// Who holds the turn, and who waits.
    state: Mutex<Turns>,
}

/// The locked part of a cell; see the module docs.
#[derive(Debug)]
struct Turns {
    /// The party whose closure runs now, if any.
    initialiser: Option<Caller>,
    /// Initialisers waiting for the turn, oldest first; `None` until the
    /// first one comes, so that `new` can be `const`.
    contenders: WaitQueue<Contender>,
    /// Parties waiting only for the value, oldest first; `None` until the
    /// first one comes.
    watchers: WaitQueue<WaiterHandle>,
}

/// Who runs an initialiser: told apart so that re-entrant initialisation
/// is reported instead of waiting for itself forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// A coroutine (ids are unique in the process).
    Task(TaskId),
    /// A plain thread.
    Thread(ThreadId),
}

impl Caller {
    /// The caller.
    fn current() -> Caller {
        match crate::task::try_current() {
            Some(task) => Caller::Task(task.id()),
            None => Caller::Thread(thread::current().id()),
        }
    }
}

/// An initialiser waiting for the turn.
#[derive(Debug)]
struct Contender {
    /// Its waiter.
    waiter: WaiterHandle,
    /// Who it is, to record as the initialiser when it is handed the turn.
    party: Caller,
}

impl Entry for Contender {
    fn waiter(&self) -> Option<&WaiterHandle> {
        Some(&self.waiter)
    }
}

impl<T> OnceCell<T> {
    /// An empty cell.
    pub const fn new() -> OnceCell<T> {
        OnceCell {
            value: OnceLock::new(),
            state: Mutex::new(Turns {
                initialiser: None,
                contenders: WaitQueue::new(WaitKind::OnceCell),
                watchers: WaitQueue::new(WaitKind::OnceCell),
            }),
        }
    }

    /// The value, if the cell has one. Never waits.
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// The value, mutably, if the cell has one.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.value.get_mut()
    }

    /// Stores `value` if the cell is empty and no initialiser is running.
    /// Never waits.
    ///
    /// # Errors
    ///
    /// Gives `value` back if the cell has a value, or an initialiser is
    /// running (which will most likely store one).
    pub fn set(&self, value: T) -> Result<(), T> {
        let woken = {
            let mut state = self.lock();
            if state.initialiser.is_some() {
                return Err(value);
            }
            self.value.set(value)?;
            state.wake_all()
        };
        wake(woken);
        Ok(())
    }

    /// The value, initialised with `init` if the cell is empty.
    ///
    /// If another coroutine or thread is running its initialiser, the
    /// caller parks until it is done and returns its value; `init` is not
    /// called. If that initialiser panics, the oldest waiting caller runs
    /// its own `init` next.
    ///
    /// # Errors
    ///
    /// [`WaitError::Cancelled`] if the calling coroutine is cancelled while
    /// it waits for another initialiser. `init` has not run, and the cell
    /// is as if the caller had never come. A plain thread never fails.
    ///
    /// # Panics
    ///
    /// If `init` panics (the cell stays empty), or tries to initialise this
    /// same cell, which could never finish.
    pub fn get_or_init(&self, init: impl FnOnce() -> T) -> Result<&T, WaitError> {
        self.get_or_try_init(|| Ok::<T, WaitError>(init()))
    }

    /// The value, initialised with `init` if the cell is empty; if `init`
    /// fails, the cell stays empty and its error is returned.
    ///
    /// Waits as [`OnceCell::get_or_init`] does. The error type must be able
    /// to say that the wait was cancelled (`From<WaitError>`), as
    /// [`std::io::Error`] can.
    ///
    /// ```
    /// use green::sync::OnceCell;
    ///
    /// let port: OnceCell<u16> = OnceCell::new();
    /// let parsed = port.get_or_try_init(|| "seventy".parse::<u16>().map_err(std::io::Error::other));
    /// assert!(parsed.is_err());
    /// assert_eq!(port.get_or_try_init(|| "7000".parse::<u16>().map_err(std::io::Error::other)).ok(), Some(&7000));
    /// ```
    ///
    /// # Errors
    ///
    /// The error of `init`, or [`WaitError::Cancelled`] converted into `E`
    /// (see [`OnceCell::get_or_init`]).
    ///
    /// # Panics
    ///
    /// As [`OnceCell::get_or_init`].
    pub fn get_or_try_init<E>(&self, init: impl FnOnce() -> Result<T, E>) -> Result<&T, E>
    where
        E: From<WaitError>,
    {
        if let Some(value) = self.get() {
            return Ok(value);
        }
        match self.take_turn()? {
            Next::Ready(value) => Ok(value),
            Next::Turn(turn) => Ok(turn.fill(init()?)),
        }
    }

    /// Waits until the cell has a value (stored by someone else); returns
    /// at once if it has one. Does not initialise.
    ///
    /// # Errors
    ///
    /// [`WaitError::Cancelled`] if the calling coroutine is cancelled first.
    pub fn wait(&self) -> Result<&T, WaitError> {
        self.wait_until(None)
    }

    /// Waits until the cell has a value, or `timeout` has elapsed.
    ///
    /// # Errors
    ///
    /// [`WaitError::TimedOut`] if it is still empty when the timeout
    /// elapses; [`WaitError::Cancelled`] if the calling coroutine is
    /// cancelled first.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<&T, WaitError> {
        self.wait_until(deadline_after(timeout))
    }

    /// Waits until the cell has a value, or `deadline` has passed.
    ///
    /// # Errors
    ///
    /// As [`OnceCell::wait_timeout`].
    pub fn wait_deadline(&self, deadline: Instant) -> Result<&T, WaitError> {
        self.wait_until(Some(deadline))
    }

    /// Takes the value out, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        self.value.take()
    }

    /// The value, if the cell has one.
    pub fn into_inner(self) -> Option<T> {
        self.value.into_inner()
    }

    /// Takes the turn to initialise, waiting for it if another initialiser
    /// runs, unless the cell has a value.
    fn take_turn(&self) -> Result<Next<'_, T>, WaitError> {
        let me = Caller::current();
        loop {
            let queued = {
                let mut state = self.lock();
                if let Some(value) = self.value.get() {
                    return Ok(Next::Ready(value));
                }
                match state.initialiser {
                    None => {
                        state.initialiser = Some(me);
                        return Ok(Next::Turn(Turn { cell: self }));
                    }
                    Some(running) if running == me => {
                        drop(state);
                        panic!(
                            "green::sync::OnceCell: the initialiser tried to initialise its own cell, which \
                             would never finish"
                        );
                    }
                    Some(_) => {}
                }
                let waiter = Waiter::new();
                let entry = Contender { waiter: waiter.handle(), party: me };
                state.contenders.push(entry);
                Queued { cell: self, waiter, turn_taken: false }
            };
            match queued.wait(None) {
                Outcome::Claimed(YOUR_TURN) => return Ok(Next::Turn(queued.into_turn())),
                Outcome::Claimed(_) => continue,
                Outcome::TimedOut => return Err(WaitError::TimedOut),
                Outcome::Cancelled => return Err(WaitError::Cancelled),
            }
        }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<&T, WaitError> {
        loop {
            if let Some(value) = self.get() {
                return Ok(value);
            }
            let queued = {
                let mut state = self.lock();
                if self.value.get().is_some() {
                    continue;
                }
                let waiter = Waiter::new();
                state.watchers.push(waiter.handle());
                Queued { cell: self, waiter, turn_taken: false }
            };
            let why = match queued.wait(deadline) {
                Outcome::Claimed(_) => continue,
                Outcome::TimedOut => WaitError::TimedOut,
                Outcome::Cancelled => WaitError::Cancelled,
            };
            drop(queued);
            // Interrupted, but the value may have come meanwhile.
            let value = self.get();
            if value.is_some() {
                crate::park::retract_cancellation();
            }
            return value.ok_or(why);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Turns> {
        // No user code runs while the lock is held; a poisoned lock still
        // guards a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Turns {
    /// Claims every contender and watcher still waiting with `READY`; the
    /// caller wakes them once the lock is released.
    fn wake_all(&mut self) -> Vec<WaiterHandle> {
        let mut woken = Vec::new();
        woken.extend(self.contenders.drain().map(|c| c.waiter).filter(|w| w.claim(READY)));
        woken.extend(self.watchers.drain().filter(|w| w.claim(READY)));
        woken
    }

    /// Ends a turn that left no value: hands it to the oldest contender
    /// still waiting, or empties the cell. Returns whom to wake.
    fn hand_over(&mut self) -> Option<WaiterHandle> {
        let next = self.contenders.pop_claimed(|c| c.waiter.claim(YOUR_TURN));
        self.initialiser = next.as_ref().map(|c| c.party);
        next.map(|c| c.waiter)
    }
}

/// Wakes claimed waiters, after the lock is released.
fn wake(woken: impl IntoIterator<Item = WaiterHandle>) {
    for waiter in woken {
        waiter.wake();
    }
}

/// What a caller of `get_or_init` finds when it is its move.
enum Next<'a, T> {
    /// The cell has its value.
    Ready(&'a T),
    /// The caller holds the turn to initialise it.
    Turn(Turn<'a, T>),
}

/// The right to initialise the cell, held by one party at a time. Dropped
/// without a value (the closure failed or panicked), it passes the turn
/// on; see the module docs.
struct Turn<'a, T> {
    /// The cell to initialise.
    cell: &'a OnceCell<T>,
}

impl<'a, T> Turn<'a, T> {
    /// Stores the value and ends the turn.
    fn fill(self, value: T) -> &'a T {
        // Only the holder of the turn writes, so this stores `value`.
        let value = self.cell.value.get_or_init(|| value);
        drop(self);
        value
    }
}

impl<T> Drop for Turn<'_, T> {
    fn drop(&mut self) {
        let mut state = self.cell.lock();
        if self.cell.value.get().is_some() {
            state.initialiser = None;
            let woken = state.wake_all();
            drop(state);
            wake(woken);
        } else {
            let next = state.hand_over();
            drop(state);
            wake(next);
        }
    }
}

/// A contender or watcher in a cell's queues. Dropped without being
/// claimed (an interrupted wait, or a coroutine unwound while it waited),
/// it takes its entry out; dropped after being handed the turn without
/// using it, it passes the turn on.
struct Queued<'a, T> {
    /// The cell it waits on.
    cell: &'a OnceCell<T>,
    /// The waiter whose handle is in a queue.
    waiter: Waiter,
    /// Whether a turn handed to it has become a [`Turn`].
    turn_taken: bool,
}

impl<'a, T> Queued<'a, T> {
    fn wait(&self, deadline: Option<Instant>) -> Outcome {
        self.waiter.wait(deadline)
    }

    /// The turn it was handed.
    fn into_turn(mut self) -> Turn<'a, T> {
        self.turn_taken = true;
        Turn { cell: self.cell }
    }
}

impl<T> Drop for Queued<'_, T> {
    fn drop(&mut self) {
        match self.waiter.claimed() {
            // Claimed entries were taken out of the queue by the claimer.
            Some(READY) => {}
            Some(_) => {
                if !self.turn_taken {
                    drop(Turn { cell: self.cell });
                }
            }
            None => {
                let mut state = self.cell.lock();
                state.contenders.remove(&self.waiter);
                state.watchers.remove(&self.waiter);
            }
        }
    }
}

impl<T> Default for OnceCell<T> {
    fn default() -> OnceCell<T> {
        OnceCell::new()
    }
}

impl<T> From<T> for OnceCell<T> {
    /// A cell that already holds `value`.
    fn from(value: T) -> OnceCell<T> {
        let cell = OnceCell::new();
        // A new cell is empty and nobody initialises it.
        let _ = cell.value.set(value);
        cell
    }
}

impl<T: Clone> Clone for OnceCell<T> {
    /// A new cell holding a clone of the value, if there is one.
    fn clone(&self) -> OnceCell<T> {
        match self.get() {
            Some(value) => OnceCell::from(value.clone()),
            None => OnceCell::new(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(value) => f.debug_tuple("OnceCell").field(value).finish(),
            None => f.write_str("OnceCell(<uninit>)"),
        }
    }
}
