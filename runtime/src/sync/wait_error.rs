//! Why a wait on [`Event`], [`Barrier`], [`WaitGroup`] or [`OnceCell`]
//! ended without what it waited for.
//!
//! One error type for all of them, so that `?` works the same everywhere,
//! and one conversion into [`io::Error`] for code that already returns
//! `io::Result`. Methods that wait without a deadline (`wait`,
//! `get_or_init`) can only fail with [`WaitError::Cancelled`]; their
//! `_timeout` and `_deadline` siblings may also fail with
//! [`WaitError::TimedOut`]. In both cases the wait had no effect on the
//! primitive: it is exactly as if the waiter had never come.
//!
//! [`Event`]: crate::sync::Event
//! [`Barrier`]: crate::sync::Barrier
//! [`WaitGroup`]: crate::sync::WaitGroup
//! [`OnceCell`]: crate::sync::OnceCell

use std::error::Error;
use std::fmt;
use std::io;

use crate::cancel::Cancelled;

/// Why a wait ended without what it waited for.
///
/// ```
/// use std::time::Duration;
/// use green::sync::{Event, WaitError};
///
/// let event = Event::new();
/// assert_eq!(event.wait_timeout(Duration::from_millis(1)), Err(WaitError::TimedOut));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitError {
    /// The timeout elapsed (the deadline passed) first.
    TimedOut,
    /// The waiting coroutine was cancelled first: by
    /// [`JoinHandle::cancel`](crate::JoinHandle::cancel), the deadline of an
    /// enclosing [`timeout`](crate::timeout) scope, its group or scope, or
    /// runtime shutdown. A plain thread is never cancelled.
    Cancelled,
}

impl WaitError {
    /// Whether the wait timed out.
    pub fn is_timeout(self) -> bool {
        self == WaitError::TimedOut
    }

    /// Whether the waiting coroutine was cancelled.
    pub fn is_cancelled(self) -> bool {
        self == WaitError::Cancelled
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::TimedOut => f.write_str("green: the wait timed out"),
            WaitError::Cancelled => fmt::Display::fmt(&Cancelled, f),
        }
    }
}

impl Error for WaitError {}

impl From<Cancelled> for WaitError {
    /// So that `?` passes on the cancellation of another blocking call
    /// (such as [`crate::sleep`]) in a function returning `WaitError`.
    fn from(_: Cancelled) -> WaitError {
        WaitError::Cancelled
    }
}

impl From<WaitError> for io::Error {
    /// `TimedOut` becomes an error of kind [`io::ErrorKind::TimedOut`];
    /// `Cancelled` becomes the same error a cancelled socket operation
    /// returns, which [`crate::is_cancelled`] recognises.
    ///
    /// ```
    /// let err = std::io::Error::from(green::sync::WaitError::Cancelled);
    /// assert!(green::is_cancelled(&err));
    /// ```
    fn from(err: WaitError) -> io::Error {
        match err {
            WaitError::TimedOut => io::Error::new(io::ErrorKind::TimedOut, err),
            WaitError::Cancelled => crate::cancel::cancelled_error(),
        }
    }
}
