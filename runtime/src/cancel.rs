//! How cancellation shows up in I/O results.

use std::error::Error;
use std::fmt;
use std::io;

/// The error inside an [`io::Error`] returned by a blocking operation that
/// was interrupted because its coroutine was cancelled (or its runtime is
/// shutting down). Its kind is [`io::ErrorKind::Other`], never
/// `Interrupted`, so that retry loops such as `read_exact` do not swallow
/// it. Test for it with [`is_cancelled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("green: the coroutine was cancelled while it waited")
    }
}

impl Error for Cancelled {}

/// Whether `err` reports that the waiting coroutine was cancelled.
///
/// ```
/// let err = std::io::Error::other(green::Cancelled);
/// assert!(green::is_cancelled(&err));
/// ```
pub fn is_cancelled(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|inner| inner.is::<Cancelled>())
}

pub(crate) fn cancelled_error() -> io::Error {
    io::Error::other(Cancelled)
}
