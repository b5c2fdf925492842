//! How cancellation shows up in I/O results.

use std::error::Error;
use std::fmt;
use std::io;

/// A blocking operation was interrupted because its coroutine was
/// cancelled: by its handle, its group or scope, the deadline of an
/// enclosing timeout scope, or runtime shutdown.
///
/// [`sleep`](crate::sleep) returns it as is. I/O operations return it
/// inside an [`io::Error`] of kind [`io::ErrorKind::Other`], never
/// `Interrupted`, so that retry loops such as `read_exact` do not swallow
/// it; test for it with [`is_cancelled`]. It converts into an
/// `io::Error`, so `?` works in functions returning `io::Result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("green: the coroutine was cancelled while it waited")
    }
}

impl Error for Cancelled {}

impl From<Cancelled> for io::Error {
    fn from(cancelled: Cancelled) -> io::Error {
        io::Error::other(cancelled)
    }
}

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
