//! A channel for exactly one message: [`oneshot`].
//!
//! A thin layer over a channel of capacity 1 with one sender and one
//! receiver: the types say "one message" (the sender is consumed by
//! `send`, and cannot be cloned), and the send never waits, since the one
//! place in the buffer is its own.

use std::fmt;
use std::time::{Duration, Instant};

use super::error::{RecvError, RecvTimeoutError, TryRecvError, TrySendError};
use super::{Receiver, Sender, bounded};

/// Makes a channel for one message: a reply, a result, a signal.
///
/// ```
/// use green::channel;
///
/// green::run(|| {
///     let (reply, answer) = channel::oneshot();
///     green::spawn(move || reply.send(6 * 7).unwrap());
///     assert_eq!(answer.recv(), Ok(42));
/// });
/// ```
///
/// Like the other channels, it works between coroutines of any runtimes
/// and plain threads.
pub fn oneshot<T>() -> (OneshotSender<T>, OneshotReceiver<T>) {
    let (sender, receiver) = bounded(1);
    (OneshotSender { sender }, OneshotReceiver { receiver })
}

/// Sends the one message of a [`oneshot`] channel.
///
/// Dropping it unused makes the receiver's `recv` fail with
/// [`RecvError::Disconnected`].
pub struct OneshotSender<T> {
    /// A channel of capacity 1 that no one else sends on.
    sender: Sender<T>,
}

/// Receives the one message of a [`oneshot`] channel.
pub struct OneshotReceiver<T> {
    /// A channel of capacity 1 with this as its only receiver.
    receiver: Receiver<T>,
}

impl<T> OneshotReceiver<T> {
    /// See `Chan::used_by`.
    pub(crate) fn used_by(&self, home: u64) {
        self.receiver.used_by(home);
    }

    /// See `Chan::waits_as`.
    pub(crate) fn waits_as(&self, kind: crate::dump::kind::WaitKind) {
        self.receiver.waits_as(kind);
    }
}

impl<T> OneshotSender<T> {
    /// Sends the message. Never waits.
    ///
    /// # Errors
    ///
    /// The message back if the receiver is gone.
    ///
    /// ```
    /// let (tx, rx) = green::channel::oneshot();
    /// drop(rx);
    /// assert_eq!(tx.send("nobody listens"), Err("nobody listens"));
    /// ```
    pub fn send(self, message: T) -> Result<(), T> {
        // The buffer's one place is this sender's, so `Full` cannot happen;
        // it would give the message back like `Disconnected` anyway.
        self.sender.try_send(message).map_err(TrySendError::into_inner)
    }

    /// Whether the receiver is gone, so that `send` would fail.
    pub fn is_disconnected(&self) -> bool {
        self.sender.is_disconnected()
    }
}

impl<T> OneshotReceiver<T> {
    /// Waits for the message.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] if the sender was dropped without
    /// sending; [`RecvError::Cancelled`] if the coroutine was cancelled.
    pub fn recv(self) -> Result<T, RecvError> {
        self.receiver.recv()
    }

    /// [`OneshotReceiver::recv`], keeping the receiver: for a wait that is
    /// made again after a cancellation.
    pub(crate) fn recv_again(&self) -> Result<T, RecvError> {
        self.receiver.recv()
    }

    /// Takes the message if it has arrived.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if it has not arrived yet;
    /// [`TryRecvError::Disconnected`] if the sender was dropped without
    /// sending, or the message was already taken.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.receiver.try_recv()
    }

    /// Waits at most `timeout` for the message; the receiver stays usable
    /// after a timeout.
    ///
    /// # Errors
    ///
    /// As [`recv_deadline`](OneshotReceiver::recv_deadline).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.receiver.recv_timeout(timeout)
    }

    /// Waits until `deadline` at the latest for the message.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], [`RecvTimeoutError::Disconnected`]
    /// (the sender was dropped without sending, or the message was already
    /// taken) or [`RecvTimeoutError::Cancelled`].
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.receiver.recv_deadline(deadline)
    }
}

impl<T> fmt::Debug for OneshotSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneshotSender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for OneshotReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneshotReceiver").field("ready", &!self.receiver.is_empty()).finish()
    }
}
