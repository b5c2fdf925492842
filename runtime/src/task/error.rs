//! [`JoinError`]: why a join has no value.

use std::any::Any;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use super::id::{Task, TaskId};

/// Why a join has no value: the coroutine panicked or was cancelled, or
/// the wait ended first (the joiner was cancelled, or its time limit ran
/// out).
pub struct JoinError {
    /// Boxed: the error is rare and the result slot of every task has room
    /// for one, so keeping it one word keeps every task record small.
    inner: Box<Inner>,
}

/// What a [`JoinError`] holds.
struct Inner {
    /// What went wrong.
    repr: Repr,
    /// The coroutine that failed.
    task: Task,
}

/// The ways a join can end without a value.
enum Repr {
    /// It panicked; the payload is what `panic!` was given.
    Panic {
        /// What `panic!` was given. Behind a mutex only so that the error
        /// is `Sync` (and converts into `io::Error` and `Box<dyn Error>`);
        /// it is locked only by `try_into_panic`, which owns the error.
        payload: Mutex<Box<dyn Any + Send + 'static>>,
        /// The payload's text, if it is a string.
        message: Option<String>,
    },
    /// It was cancelled (or torn down at runtime shutdown) first.
    Cancelled,
    /// It was a child of a `green::scope` and returned an error, which went
    /// to the scope's result.
    Failed,
    /// The joining coroutine was cancelled while it waited; the joined one
    /// was not, and may still be running.
    Interrupted,
    /// The joining coroutine's time limit (`join_timeout`, `join_deadline`)
    /// ran out first; the joined one may still be running.
    TimedOut,
    /// An earlier `join_timeout` or `join_deadline` took the result.
    AlreadyJoined,
}

impl JoinError {
    fn new(repr: Repr, task: &Task) -> JoinError {
        JoinError { inner: Box::new(Inner { repr, task: task.clone() }) }
    }

    pub(crate) fn panicked(payload: Box<dyn Any + Send + 'static>, task: &Task) -> JoinError {
        let message = payload
            .downcast_ref::<&'static str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        let repr = Repr::Panic { payload: Mutex::new(payload), message };
        JoinError::new(repr, task)
    }

    pub(crate) fn cancelled(task: &Task) -> JoinError {
        JoinError::new(Repr::Cancelled, task)
    }

    pub(crate) fn failed(task: &Task) -> JoinError {
        JoinError::new(Repr::Failed, task)
    }

    pub(crate) fn interrupted(task: &Task) -> JoinError {
        JoinError::new(Repr::Interrupted, task)
    }

    pub(crate) fn timed_out(task: &Task) -> JoinError {
        JoinError::new(Repr::TimedOut, task)
    }

    pub(crate) fn already_joined(task: &Task) -> JoinError {
        JoinError::new(Repr::AlreadyJoined, task)
    }

    /// Whether the coroutine returned an error that went to its scope's
    /// result (children of [`green::scope`](crate::scope()) only).
    pub fn is_failed(&self) -> bool {
        matches!(self.inner.repr, Repr::Failed)
    }

    /// Whether the *joining* coroutine was cancelled while it waited; the
    /// joined one was not, and may still be running.
    pub fn is_interrupted(&self) -> bool {
        matches!(self.inner.repr, Repr::Interrupted)
    }

    /// Whether the time limit of a
    /// [`join_timeout`](crate::JoinHandle::join_timeout) or
    /// [`join_deadline`](crate::JoinHandle::join_deadline) ran out before the
    /// coroutine finished; it may still be running, and the handle can
    /// join it again.
    ///
    /// ```
    /// use std::time::Duration;
    /// green::run(|| {
    ///     let mut handle = green::spawn(|| green::yield_now());
    ///     let err = handle.join_timeout(Duration::ZERO).unwrap_err();
    ///     assert!(err.is_timeout(), "it has not run yet");
    ///     assert!(handle.join_timeout(Duration::from_secs(60)).is_ok());
    /// });
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.repr, Repr::TimedOut)
    }

    /// Whether the result had been taken by an earlier
    /// [`join_timeout`](crate::JoinHandle::join_timeout) or
    /// [`join_deadline`](crate::JoinHandle::join_deadline) of the same handle.
    ///
    /// ```
    /// use std::time::Duration;
    /// green::run(|| {
    ///     let mut handle = green::spawn(|| 1);
    ///     assert_eq!(handle.join_timeout(Duration::from_secs(60)).unwrap(), 1);
    ///     assert!(handle.join_timeout(Duration::from_secs(60)).unwrap_err().is_already_joined());
    /// });
    /// ```
    pub fn is_already_joined(&self) -> bool {
        matches!(self.inner.repr, Repr::AlreadyJoined)
    }

    /// Whether the coroutine panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.inner.repr, Repr::Panic { .. })
    }

    /// Whether the coroutine was cancelled before it finished.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.inner.repr, Repr::Cancelled)
    }

    /// Id of the coroutine that failed.
    pub fn id(&self) -> TaskId {
        self.inner.task.id()
    }

    /// Name of the coroutine that failed, if it had one.
    pub fn name(&self) -> Option<&str> {
        self.inner.task.name()
    }

    /// The panic message, if the coroutine panicked with a string (as
    /// `panic!("...")` does).
    pub fn panic_message(&self) -> Option<&str> {
        match &self.inner.repr {
            Repr::Panic { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// The panic payload, to re-raise it with
    /// [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the coroutine was cancelled rather than panicking.
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic().unwrap_or_else(|err| panic!("{err} has no panic payload"))
    }

    /// The panic payload, or the error itself if the coroutine was
    /// cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.inner.repr {
            Repr::Panic { payload, .. } => Ok(payload.into_inner().unwrap_or_else(PoisonError::into_inner)),
            _ => Err(self),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "coroutine '{}' (id {})", self.inner.task.display_name(), self.inner.task.id())?;
        match &self.inner.repr {
            Repr::Panic { .. } => match self.panic_message() {
                Some(message) => write!(f, " panicked: {message}"),
                None => write!(f, " panicked"),
            },
            Repr::Cancelled => write!(f, " was cancelled before it finished"),
            Repr::Failed => write!(f, " returned an error (reported by its scope)"),
            Repr::Interrupted => write!(f, " was still running when the join was cancelled"),
            Repr::TimedOut => write!(f, " was still running when the join's time limit ran out"),
            Repr::AlreadyJoined => {
                write!(f, " was joined already: an earlier join_timeout or join_deadline took its result")
            }
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for JoinError {}

/// The unwind that ends a coroutine as cancelled: its body catches it and
/// ends without a result, so its join reports it cancelled. A stand-in
/// (`distributed::stand_in`) ends with it when the distributed task it
/// stands for was cancelled. Private to the crate: user code cannot raise
/// it.
#[derive(Debug)]
pub(crate) struct EndCancelled;
