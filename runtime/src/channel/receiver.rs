//! The receiving half of a channel, and its iterators.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chan::Chan;
use super::error::{RecvError, RecvTimeoutError, TryRecvError};

/// The receiving half of a channel; clone it for more consumers.
///
/// Each message goes to exactly one receiver. A receive that has to wait
/// parks the calling coroutine, or blocks the calling thread outside a
/// runtime. `Receiver<T>` is `Send` and `Sync` when `T` is `Send`.
///
/// When the last `Receiver` is dropped, the messages still buffered are
/// dropped with it, and every send fails with
/// [`SendError::Disconnected`](super::SendError), giving its message back.
pub struct Receiver<T> {
    /// The channel, shared with every other handle.
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// See `Chan::used_by`.
    pub(crate) fn used_by(&self, home: u64) {
        self.chan.used_by(home);
    }

    /// See `Chan::waits_as`.
    pub(crate) fn waits_as(&self, kind: crate::dump::kind::WaitKind) {
        self.chan.waits_as(kind);
    }

    pub(crate) fn new(chan: Arc<Chan<T>>) -> Receiver<T> {
        Receiver { chan }
    }

    /// The channel, for select.
    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }

    /// Receives a message, waiting until there is one.
    ///
    /// Takes the oldest buffered message, or the message of the oldest
    /// waiting sender; if there is none, waits behind any receiver already
    /// waiting.
    ///
    /// # Errors
    ///
    /// * [`RecvError::Disconnected`]: every sender is gone and no message
    ///   is left (also if the last sender is dropped while the caller
    ///   waits).
    /// * [`RecvError::Cancelled`]: the coroutine was cancelled while it
    ///   waited. Nothing was consumed.
    ///
    /// ```
    /// use green::channel::{self, RecvError};
    ///
    /// green::run(|| {
    ///     let (tx, rx) = channel::unbounded();
    ///     green::spawn(move || tx.send("from a coroutine").unwrap());
    ///     assert_eq!(rx.recv(), Ok("from a coroutine")); // parks until sent
    ///     assert_eq!(rx.recv(), Err(RecvError::Disconnected)); // tx is gone
    /// });
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(None).map_err(|err| match err {
            RecvTimeoutError::Disconnected => RecvError::Disconnected,
            RecvTimeoutError::Cancelled => RecvError::Cancelled,
            RecvTimeoutError::Timeout => unreachable!("a receive without a deadline does not time out"),
        })
    }

    /// Receives a message if one is ready now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if there is none (while a receiver waits,
    /// every message sent goes to it, so this cannot overtake it);
    /// [`TryRecvError::Disconnected`] if every sender is gone and no message
    /// is left.
    ///
    /// ```
    /// use green::channel::{self, TryRecvError};
    ///
    /// let (tx, rx) = channel::bounded(4);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`recv_deadline`](Receiver::recv_deadline).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Instant::now().checked_add(timeout))
    }

    /// Receives a message, waiting until `deadline` at the latest.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if the deadline passed first,
    /// [`RecvTimeoutError::Disconnected`] if every sender is gone and no
    /// message is left, [`RecvTimeoutError::Cancelled`] if the coroutine was
    /// cancelled. In every case nothing was consumed.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use green::channel::{self, RecvTimeoutError};
    ///
    /// green::run(|| {
    ///     let (_tx, rx) = channel::unbounded::<u32>();
    ///     let deadline = Instant::now() + Duration::from_millis(1);
    ///     assert_eq!(rx.recv_deadline(deadline), Err(RecvTimeoutError::Timeout));
    /// });
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Some(deadline))
    }

    /// An iterator that receives until every sender is gone (or the
    /// coroutine is cancelled), waiting for each message.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { receiver: self }
    }

    /// An iterator over the messages ready now; it never waits.
    ///
    /// ```
    /// let (tx, rx) = green::channel::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { receiver: self }
    }

    /// Messages in the buffer now.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether the buffer is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many messages the buffer holds: `Some(0)` for a rendezvous
    /// channel, `None` for an unbounded one.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Whether every sender is gone (messages may still be buffered).
    pub fn is_disconnected(&self) -> bool {
        self.chan.senders_gone()
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        self.chan.add_receiver();
        Receiver { chan: self.chan.clone() }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.drop_receiver();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("len", &self.len()).field("capacity", &self.capacity()).finish()
    }
}

/// Receives until every sender is gone; made by [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    /// Where the messages come from.
    receiver: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

/// The messages ready now; made by [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    /// Where the messages come from.
    receiver: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.try_recv().ok()
    }
}

/// Receives until every sender is gone, owning the receiver; made by
/// `Receiver::into_iter`.
#[derive(Debug)]
pub struct IntoIter<T> {
    /// Where the messages come from.
    receiver: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    /// ```
    /// use green::channel;
    ///
    /// let total: u32 = green::run(|| {
    ///     let (tx, rx) = channel::bounded(2);
    ///     for i in 1..=3 {
    ///         let tx = tx.clone();
    ///         green::spawn(move || tx.send(i).unwrap());
    ///     }
    ///     drop(tx);
    ///     rx.into_iter().sum()
    /// });
    /// assert_eq!(total, 6);
    /// ```
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { receiver: self }
    }
}
