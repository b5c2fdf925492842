//! Joining a coroutine: [`JoinHandle`], [`JoinError`] and the packet the
//! result travels in.

use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::cell::ParkSite;
use super::cell::TaskCell;
use super::error::JoinError;
use super::id::{Task, TaskId};
use super::slot::JoinSlot;
use super::state::WakeReason;
use crate::context::{self, Context};
use crate::dump::kind::WaitKind;
use crate::park;

/// An owned permission to wait for a coroutine and take its result.
///
/// Dropping the handle detaches the coroutine: it keeps running and its
/// result is dropped when it finishes. A `JoinHandle` cannot leave the
/// thread of the runtime that made it:
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// green::run(|| send(green::spawn(|| 1)));
/// ```
///
/// Three ways to wait:
///
/// | method | gives up when | the handle afterwards |
/// |---|---|---|
/// | [`join`](JoinHandle::join) | never (only if the caller is cancelled) | consumed |
/// | [`join_timeout`](JoinHandle::join_timeout), [`join_deadline`](JoinHandle::join_deadline) | the time is up, or the caller is cancelled | kept: cancel it, join again, or drop it |
/// | [`wait`](JoinHandle::wait) | the caller is cancelled (also by an enclosing [`timeout`](crate::timeout())) | kept; the result stays in it |
pub struct JoinHandle<T> {
    /// The task, to wait on its completion, with the slot its result
    /// arrives in.
    task: Rc<TaskCell<dyn JoinSlot<T>>>,
    /// Whether a `join_timeout` or `join_deadline` has taken the result:
    /// a later join reports [`JoinError::is_already_joined`] instead of a
    /// cancellation.
    spent: bool,
}

impl<T> Drop for JoinHandle<T> {
    /// Detaches the coroutine: a result it makes later is dropped inside
    /// it, where a destructor's waits work, not by the scheduler. (A
    /// result already made is dropped with the handle's reference, here.)
    fn drop(&mut self) {
        self.task.detached.set(true);
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: Rc<TaskCell<dyn JoinSlot<T>>>) -> JoinHandle<T> {
        JoinHandle { task, spent: false }
    }

    /// Waits for the coroutine to finish and returns its result.
    ///
    /// Parks the calling coroutine (not the thread) until then. A panic in
    /// the joined coroutine comes back as a [`JoinError`] carrying the panic
    /// payload and the coroutine's name; it never reaches the joiner or the
    /// scheduler on its own.
    ///
    /// # Errors
    ///
    /// * The coroutine panicked: [`JoinError::is_panic`].
    /// * The coroutine was cancelled before it finished (for example because
    ///   the runtime shut down): [`JoinError::is_cancelled`].
    /// * The calling coroutine was cancelled while it waited (by its own
    ///   handle, its group or an enclosing [`timeout`](crate::timeout())):
    ///   [`JoinError::is_interrupted`]. `join` consumed the handle, so the
    ///   joined coroutine is now detached; to wait under a time limit and
    ///   keep the handle, use [`join_timeout`](JoinHandle::join_timeout) or
    ///   [`wait`](JoinHandle::wait) instead.
    /// * A `join_timeout` or `join_deadline` took the result already:
    ///   [`JoinError::is_already_joined`].
    ///
    /// # Panics
    ///
    /// If a coroutine tries to join itself, which could never finish.
    ///
    /// # Examples
    ///
    /// ```
    /// let sum = green::run(|| {
    ///     let handles: Vec<_> = (1..=3).map(|i| green::spawn(move || i * 10)).collect();
    ///     handles.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
    /// });
    /// assert_eq!(sum, 60);
    /// ```
    pub fn join(mut self) -> Result<T, JoinError> {
        self.join_until(None)
    }

    /// Waits at most `timeout` for the coroutine to finish and returns its
    /// result, keeping the handle if the time runs out first.
    ///
    /// After a timed-out (or interrupted) wait the coroutine keeps running
    /// and the handle keeps the permission to take its result: cancel it,
    /// join it again, or drop the handle to detach it. A result that is
    /// ready is returned even with a zero `timeout`. A `timeout` too long
    /// for its deadline to be represented (such as [`Duration::MAX`]) means
    /// no time limit.
    ///
    /// Once this has returned the coroutine's result (its value, or an
    /// error that is neither a timeout nor an interruption), the handle is
    /// spent: a later join reports [`JoinError::is_already_joined`].
    ///
    /// # Errors
    ///
    /// As [`join`](JoinHandle::join), and [`JoinError::is_timeout`] if the
    /// time ran out first.
    ///
    /// # Panics
    ///
    /// If a coroutine tries to join itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// green::run(|| {
    ///     let mut slow = green::spawn(|| {
    ///         green::sleep(Duration::from_secs(3600))?;
    ///         Ok::<_, green::Cancelled>("woke up")
    ///     });
    ///     let err = slow.join_timeout(Duration::from_millis(1)).unwrap_err();
    ///     assert!(err.is_timeout(), "still asleep");
    ///     slow.cancel();
    ///     // The cancelled sleep returned `Err(Cancelled)`, and so did the coroutine.
    ///     assert!(slow.join().unwrap().is_err());
    /// });
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<T, JoinError> {
        self.join_until(Instant::now().checked_add(timeout))
    }

    /// Like [`join_timeout`](JoinHandle::join_timeout), with a point in
    /// time rather than a duration: waits until `deadline` at most.
    ///
    /// # Errors
    ///
    /// As `join_timeout`.
    ///
    /// # Panics
    ///
    /// If a coroutine tries to join itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// green::run(|| {
    ///     let mut quick = green::spawn(|| 7);
    ///     let deadline = Instant::now() + Duration::from_secs(60);
    ///     assert_eq!(quick.join_deadline(deadline).unwrap(), 7);
    ///     // The result was taken; the handle is spent.
    ///     assert!(quick.join().unwrap_err().is_already_joined());
    /// });
    /// ```
    pub fn join_deadline(&mut self, deadline: Instant) -> Result<T, JoinError> {
        self.join_until(Some(deadline))
    }

    /// Waits for the coroutine to finish without taking its result: the
    /// handle stays whole whatever happens, so the wait can be put under
    /// [`green::timeout`](crate::timeout()) (or be interrupted by a
    /// cancellation of the caller) and the handle cancelled, waited on or
    /// joined afterwards. Once it returns `Ok`, [`join`](JoinHandle::join)
    /// returns at once.
    ///
    /// Takes `&mut self` because a coroutine has room for one joiner at a
    /// time.
    ///
    /// # Errors
    ///
    /// [`JoinError::is_interrupted`] if the calling coroutine was cancelled
    /// first (a cancel request, or the deadline of an enclosing timeout).
    ///
    /// # Panics
    ///
    /// If a coroutine tries to wait for itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// green::run(|| {
    ///     let mut worker = green::spawn(|| green::sleep(Duration::from_secs(3600)));
    ///     // Unlike `green::timeout(d, || worker.join())`, this keeps the handle.
    ///     let waited = green::timeout(Duration::from_millis(1), || worker.wait());
    ///     assert!(waited.is_err(), "the deadline passed first");
    ///     worker.cancel();
    ///     assert!(worker.wait().is_ok());
    ///     assert_eq!(worker.join().unwrap(), Err(green::Cancelled));
    /// });
    /// ```
    pub fn wait(&mut self) -> Result<(), JoinError> {
        loop {
            if self.task.is_done() {
                return Ok(());
            }
            match park_joiner(&self.task, None) {
                Woke::Ready | Woke::TimedOut => {}
                Woke::Gone => return Ok(()),
                Woke::Cancelled if self.task.is_done() => {
                    // It finished as the wait was cancelled: the wait
                    // succeeded, so it cancelled nothing.
                    park::retract_cancellation();
                    return Ok(());
                }
                Woke::Cancelled => return Err(JoinError::interrupted(self.task.task())),
            }
        }
    }

    /// Waits until the result is there or `deadline` passes, and takes it.
    fn join_until(&mut self, deadline: Option<Instant>) -> Result<T, JoinError> {
        if self.spent {
            return Err(JoinError::already_joined(self.task.task()));
        }
        let JoinHandle { task, spent } = self;
        wait_until(task, deadline, || {
            let result = task.slot.take_result();
            *spent = result.is_some();
            result
        })
    }

    /// Asks the coroutine to stop.
    ///
    /// The request is delivered at the coroutine's current blocking
    /// operation if it is parked in one, otherwise at its next: that
    /// operation fails with a cancellation error (for I/O an `io::Error`
    /// that [`is_cancelled`](crate::is_cancelled) recognises; for channels
    /// and locks their error's `Cancelled` variant), so that `?` unwinds
    /// the coroutine's own code and its destructors run. The request is
    /// level-triggered: every later blocking operation fails the same way
    /// until the coroutine returns. Code inside [`shield`](crate::shield)
    /// is not interrupted. A coroutine that has not started yet never runs.
    ///
    /// `join` afterwards returns whatever the coroutine returned, or a
    /// [`JoinError`] that [`is_cancelled`](JoinError::is_cancelled) if it
    /// never started.
    ///
    /// ```
    /// use std::io::Read;
    /// green::run(|| {
    ///     let (reader, _writer) = green::net::UnixStream::pair().unwrap();
    ///     let reading = green::spawn(move || (&reader).read(&mut [0; 16]));
    ///     green::yield_now(); // let it start and park in the read
    ///     reading.cancel();
    ///     let err = reading.join().unwrap().unwrap_err();
    ///     assert!(green::is_cancelled(&err), "the read reported the cancellation");
    /// });
    /// ```
    pub fn cancel(&self) {
        Context::with(|cx| park::cancel(cx, &self.task));
    }

    /// The error a join reports when the joiner is cancelled first.
    pub(crate) fn interrupted(&self) -> JoinError {
        JoinError::interrupted(self.task.task())
    }

    /// Whether the coroutine has finished (its result is ready).
    pub fn is_finished(&self) -> bool {
        self.task.is_done()
    }

    /// The coroutine's identity.
    pub fn task(&self) -> Task {
        self.task.task().clone()
    }

    /// The coroutine's id.
    pub fn id(&self) -> TaskId {
        self.task.id()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.task.id())
            .field("name", &self.task.task().name())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Waits until `task` has finished and `take` yields its result: the join
/// of a [`JoinHandle`] and of a scoped one, whose results live in
/// different places.
pub(crate) fn wait_for<S: ?Sized, T>(
    task: &TaskCell<S>,
    take: impl FnMut() -> Option<Result<T, JoinError>>,
) -> Result<T, JoinError> {
    wait_until(task, None, take)
}

/// [`wait_for`], giving up when `deadline` passes.
fn wait_until<S: ?Sized, T>(
    task: &TaskCell<S>,
    deadline: Option<Instant>,
    mut take: impl FnMut() -> Option<Result<T, JoinError>>,
) -> Result<T, JoinError> {
    loop {
        if let Some(result) = take() {
            return result;
        }
        match park_joiner(task, deadline) {
            Woke::Ready => {}
            // Finished without a result: torn down, or cancelled before it
            // started.
            Woke::Gone => return Err(JoinError::cancelled(task.task())),
            Woke::TimedOut => return take().unwrap_or_else(|| Err(JoinError::timed_out(task.task()))),
            Woke::Cancelled => {
                if let Some(result) = take() {
                    // It finished as the join was cancelled: the result
                    // exists, so report it.
                    park::retract_cancellation();
                    return result;
                }
                return Err(JoinError::interrupted(task.task()));
            }
        }
    }
}

/// How one park of a joiner ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Woke {
    /// Woken, maybe because the task finished: look again.
    Ready,
    /// The joiner's own deadline passed.
    TimedOut,
    /// The joiner was cancelled.
    Cancelled,
    /// Nothing to wait for: the task has finished (or the caller is not a
    /// coroutine, and so the runtime that ran the task is gone).
    Gone,
}

/// Parks the running coroutine once, as the joiner of `task`, until `task`
/// finishes (or something else wakes it), `deadline` passes, or the
/// joiner is cancelled.
///
/// A task has one `join_waiter` slot; every caller holds the task's only
/// handle by value or by `&mut`, so no two joiners ever compete for it.
fn park_joiner<S: ?Sized>(task: &TaskCell<S>, deadline: Option<Instant>) -> Woke {
    if task.is_done() || !context::in_coroutine() {
        return Woke::Gone;
    }
    let waker = park::waker();
    assert!(
        !waker.is_for(task),
        "coroutine {} (id {}) tried to join itself, which would never finish",
        task.task().display_name(),
        task.id()
    );
    *task.join_waiter.borrow_mut() = Some(waker);
    let woke = match park::park(deadline, ParkSite { kind: WaitKind::Join, object: task.id().as_u64() }) {
        WakeReason::Ready => return Woke::Ready,
        WakeReason::TimedOut => Woke::TimedOut,
        WakeReason::Cancelled => Woke::Cancelled,
    };
    task.join_waiter.borrow_mut().take();
    woke
}
