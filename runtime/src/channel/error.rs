//! Why a channel operation did not happen.
//!
//! One enum per kind of call, so that every way an operation can end has a
//! variant and `match` is exhaustive:
//!
//! | call | error | variants |
//! |---|---|---|
//! | `send` | [`SendError<T>`] | `Disconnected(T)`, `Cancelled(T)` |
//! | `try_send` | [`TrySendError<T>`] | `Full(T)`, `Disconnected(T)` |
//! | `send_timeout`, `send_deadline` | [`SendTimeoutError<T>`] | `Timeout(T)`, `Disconnected(T)`, `Cancelled(T)` |
//! | `recv` | [`RecvError`] | `Disconnected`, `Cancelled` |
//! | `try_recv` | [`TryRecvError`] | `Empty`, `Disconnected` |
//! | `recv_timeout`, `recv_deadline` | [`RecvTimeoutError`] | `Timeout`, `Disconnected`, `Cancelled` |
//!
//! A failed send always gives its message back. Every failure means the
//! operation had no effect: a send that failed enqueued nothing, a receive
//! that failed consumed nothing.
//!
//! `Cancelled` is what a wait reports when its coroutine is cancelled (by
//! [`JoinHandle::cancel`](crate::JoinHandle::cancel), a
//! [`timeout`](crate::timeout()) scope, its group or scope, or runtime
//! shutdown). A plain thread is never cancelled. The non-blocking calls
//! never wait, so they have no `Cancelled` variant.
//!
//! `Debug` does not require `T: Debug` and does not show the message (as in
//! `std::sync::mpsc`), so `unwrap()` works on any result.

use std::error::Error;
use std::fmt;

/// [`Sender::send`](super::Sender::send) failed; the message is returned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendError<T> {
    /// Every [`Receiver`](super::Receiver) was dropped: nobody could ever
    /// receive the message.
    Disconnected(T),
    /// The sending coroutine was cancelled while it waited for room.
    Cancelled(T),
}

/// [`Sender::try_send`](super::Sender::try_send) failed; the message is
/// returned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full (a rendezvous channel: no receiver is waiting).
    Full(T),
    /// Every [`Receiver`](super::Receiver) was dropped.
    Disconnected(T),
}

/// [`Sender::send_timeout`](super::Sender::send_timeout) or
/// [`send_deadline`](super::Sender::send_deadline) failed; the message is
/// returned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// The deadline passed before there was room.
    Timeout(T),
    /// Every [`Receiver`](super::Receiver) was dropped.
    Disconnected(T),
    /// The sending coroutine was cancelled while it waited for room.
    Cancelled(T),
}

/// [`Receiver::recv`](super::Receiver::recv) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecvError {
    /// Every [`Sender`](super::Sender) was dropped and no message is left.
    Disconnected,
    /// The receiving coroutine was cancelled while it waited.
    Cancelled,
}

/// [`Receiver::try_recv`](super::Receiver::try_recv) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryRecvError {
    /// No message is ready now (but a sender is still alive).
    Empty,
    /// Every [`Sender`](super::Sender) was dropped and no message is left.
    Disconnected,
}

/// [`Receiver::recv_timeout`](super::Receiver::recv_timeout) or
/// [`recv_deadline`](super::Receiver::recv_deadline) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecvTimeoutError {
    /// The deadline passed before a message arrived.
    Timeout,
    /// Every [`Sender`](super::Sender) was dropped and no message is left.
    Disconnected,
    /// The receiving coroutine was cancelled while it waited.
    Cancelled,
}

impl<T> SendError<T> {
    /// The message that was not sent.
    ///
    /// ```
    /// let (tx, rx) = green::channel::unbounded();
    /// drop(rx);
    /// assert_eq!(tx.send("lost").unwrap_err().into_inner(), "lost");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendError::Disconnected(value) | SendError::Cancelled(value) => value,
        }
    }

    /// Whether every receiver was gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendError::Disconnected(_))
    }

    /// Whether the sending coroutine was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, SendError::Cancelled(_))
    }
}

impl<T> TrySendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(value) | TrySendError::Disconnected(value) => value,
        }
    }

    /// Whether the channel was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// Whether every receiver was gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TrySendError::Disconnected(_))
    }
}

impl<T> SendTimeoutError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(value)
            | SendTimeoutError::Disconnected(value)
            | SendTimeoutError::Cancelled(value) => value,
        }
    }

    /// Whether the deadline passed first.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// Whether every receiver was gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendTimeoutError::Disconnected(_))
    }

    /// Whether the sending coroutine was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, SendTimeoutError::Cancelled(_))
    }
}

impl RecvError {
    /// Whether every sender was gone and the channel empty.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvError::Disconnected)
    }

    /// Whether the receiving coroutine was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, RecvError::Cancelled)
    }
}

impl TryRecvError {
    /// Whether no message was ready.
    pub fn is_empty(&self) -> bool {
        matches!(self, TryRecvError::Empty)
    }

    /// Whether every sender was gone and the channel empty.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, TryRecvError::Disconnected)
    }
}

impl RecvTimeoutError {
    /// Whether the deadline passed first.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// Whether every sender was gone and the channel empty.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvTimeoutError::Disconnected)
    }

    /// Whether the receiving coroutine was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, RecvTimeoutError::Cancelled)
    }
}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(err: SendError<T>) -> SendTimeoutError<T> {
        match err {
            SendError::Disconnected(value) => SendTimeoutError::Disconnected(value),
            SendError::Cancelled(value) => SendTimeoutError::Cancelled(value),
        }
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(err: RecvError) -> RecvTimeoutError {
        match err {
            RecvError::Disconnected => RecvTimeoutError::Disconnected,
            RecvError::Cancelled => RecvTimeoutError::Cancelled,
        }
    }
}

// `Debug` by hand for the errors that carry the message: `T` need not be
// `Debug`, and the message is not shown (std's `SendError` does the same).

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Disconnected(_) => "Disconnected(..)",
            SendError::Cancelled(_) => "Cancelled(..)",
        })
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "Full(..)",
            TrySendError::Disconnected(_) => "Disconnected(..)",
        })
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendTimeoutError::Timeout(_) => "Timeout(..)",
            SendTimeoutError::Disconnected(_) => "Disconnected(..)",
            SendTimeoutError::Cancelled(_) => "Cancelled(..)",
        })
    }
}

/// What each failure means, worded for a log line.
const DISCONNECTED_SEND: &str = "sending on a channel whose receivers have all been dropped";
/// See [`DISCONNECTED_SEND`].
const DISCONNECTED_RECV: &str =
    "receiving on a channel whose senders have all been dropped, and which is empty";
/// See [`DISCONNECTED_SEND`].
const CANCELLED_SEND: &str = "the coroutine was cancelled while it waited to send on a channel";
/// See [`DISCONNECTED_SEND`].
const CANCELLED_RECV: &str = "the coroutine was cancelled while it waited to receive on a channel";

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Disconnected(_) => DISCONNECTED_SEND,
            SendError::Cancelled(_) => CANCELLED_SEND,
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "sending on a full channel",
            TrySendError::Disconnected(_) => DISCONNECTED_SEND,
        })
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendTimeoutError::Timeout(_) => "timed out waiting for room to send on a channel",
            SendTimeoutError::Disconnected(_) => DISCONNECTED_SEND,
            SendTimeoutError::Cancelled(_) => CANCELLED_SEND,
        })
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvError::Disconnected => DISCONNECTED_RECV,
            RecvError::Cancelled => CANCELLED_RECV,
        })
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "receiving on an empty channel",
            TryRecvError::Disconnected => DISCONNECTED_RECV,
        })
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "timed out waiting to receive on a channel",
            RecvTimeoutError::Disconnected => DISCONNECTED_RECV,
            RecvTimeoutError::Cancelled => CANCELLED_RECV,
        })
    }
}

impl<T> Error for SendError<T> {}
impl<T> Error for TrySendError<T> {}
impl<T> Error for SendTimeoutError<T> {}
impl Error for RecvError {}
impl Error for TryRecvError {}
impl Error for RecvTimeoutError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Not `Debug`, to prove the errors do not need it.
    struct Opaque;

    #[test]
    fn debug_does_not_need_the_message_to_be_debug() {
        assert_eq!(format!("{:?}", SendError::Disconnected(Opaque)), "Disconnected(..)");
        assert_eq!(format!("{:?}", TrySendError::Full(Opaque)), "Full(..)");
        assert_eq!(format!("{:?}", SendTimeoutError::Timeout(Opaque)), "Timeout(..)");
    }

    #[test]
    fn conversions_keep_the_message_and_the_reason() {
        let err: SendTimeoutError<u8> = SendError::Cancelled(7).into();
        assert!(err.is_cancelled());
        assert_eq!(err.into_inner(), 7);
        let err: RecvTimeoutError = RecvError::Disconnected.into();
        assert!(err.is_disconnected() && !err.is_timeout());
    }
}
