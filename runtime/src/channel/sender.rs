//! The sending half of a channel.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chan::Chan;
use super::error::{SendError, SendTimeoutError, TrySendError};

/// The sending half of a channel; clone it for more producers.
///
/// Made by [`bounded`](super::bounded), [`unbounded`](super::unbounded) or
/// [`rendezvous`](super::rendezvous). A send that has to wait parks the
/// calling coroutine (the thread runs others meanwhile), or blocks the
/// calling thread outside a runtime. `Sender<T>` is `Send` and `Sync` when
/// `T` is `Send`, so it can go to any thread or runtime:
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// let (tx, _rx) = green::channel::unbounded::<std::rc::Rc<u8>>();
/// send(tx);
/// ```
///
/// When the last `Sender` is dropped, receivers get the messages still
/// buffered and then [`RecvError::Disconnected`](super::RecvError).
pub struct Sender<T> {
    /// The channel, shared with every other handle.
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    pub(crate) fn new(chan: Arc<Chan<T>>) -> Sender<T> {
        Sender { chan }
    }

    /// The channel, for select.
    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }

    /// Sends `message`, waiting while the channel is full.
    ///
    /// If a receiver is waiting, the message is handed to the oldest one
    /// directly; otherwise it goes into the buffer if there is room;
    /// otherwise the caller waits, behind any sender already waiting, until
    /// a receiver takes its message (see the fairness rules in the module
    /// docs). On a rendezvous channel every send waits for a receiver.
    ///
    /// # Errors
    ///
    /// The message comes back in the error, unsent:
    ///
    /// * [`SendError::Disconnected`]: every receiver is gone (also if the
    ///   last one is dropped while the caller waits).
    /// * [`SendError::Cancelled`]: the coroutine was cancelled while it
    ///   waited.
    ///
    /// ```
    /// use green::channel;
    ///
    /// green::run(|| {
    ///     let (tx, rx) = channel::bounded(1);
    ///     let producer = green::spawn(move || {
    ///         for i in 0..3 {
    ///             tx.send(i).unwrap(); // parks while the buffer is full
    ///         }
    ///     });
    ///     assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    ///     producer.join().unwrap();
    /// });
    /// ```
    pub fn send(&self, message: T) -> Result<(), SendError<T>> {
        self.chan.send(message, None).map_err(|err| match err {
            SendTimeoutError::Disconnected(message) => SendError::Disconnected(message),
            SendTimeoutError::Cancelled(message) => SendError::Cancelled(message),
            SendTimeoutError::Timeout(_) => unreachable!("a send without a deadline does not time out"),
        })
    }

    /// Sends `message` if that can be done without waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the buffer is full (on a rendezvous
    /// channel: no receiver is waiting), or if senders are already waiting
    /// (a place freed in the buffer goes to them first);
    /// [`TrySendError::Disconnected`] if every receiver is gone. The message
    /// comes back in the error.
    ///
    /// ```
    /// use green::channel::{self, TrySendError};
    ///
    /// let (tx, rx) = channel::bounded(1);
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
    /// ```
    pub fn try_send(&self, message: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(message)
    }

    /// Sends `message`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// As [`send_deadline`](Sender::send_deadline).
    pub fn send_timeout(&self, message: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(message, Instant::now().checked_add(timeout))
    }

    /// Sends `message`, waiting for room until `deadline` at the latest.
    ///
    /// # Errors
    ///
    /// The message comes back in the error, unsent:
    /// [`SendTimeoutError::Timeout`] if the deadline passed first,
    /// [`SendTimeoutError::Disconnected`] if every receiver is gone,
    /// [`SendTimeoutError::Cancelled`] if the coroutine was cancelled.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use green::channel;
    ///
    /// let (tx, _rx) = channel::rendezvous();
    /// // Nobody receives: the send gives up, and the message comes back.
    /// let err = tx.send_deadline("hello", Instant::now() + Duration::from_millis(1)).unwrap_err();
    /// assert!(err.is_timeout());
    /// assert_eq!(err.into_inner(), "hello");
    /// ```
    pub fn send_deadline(&self, message: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(message, Some(deadline))
    }

    /// Messages in the buffer now.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether the buffer is empty now (always, on a rendezvous channel).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the buffer is full now (always, on a rendezvous channel;
    /// never, on an unbounded one).
    pub fn is_full(&self) -> bool {
        self.chan.capacity().is_some_and(|capacity| self.len() >= capacity)
    }

    /// How many messages the buffer holds: `Some(0)` for a rendezvous
    /// channel, `None` for an unbounded one.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Whether every receiver is gone, so that every send fails.
    pub fn is_disconnected(&self) -> bool {
        self.chan.receivers_gone()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.add_sender();
        Sender { chan: self.chan.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("len", &self.len()).field("capacity", &self.capacity()).finish()
    }
}
