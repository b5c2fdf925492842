//! Channels: multi-producer, multi-consumer queues between coroutines (of
//! one runtime or several) and plain threads, in any combination.
//!
//! ```
//! use green::channel;
//!
//! green::run(|| {
//!     let (tx, rx) = channel::bounded(16);
//!     // A plain thread produces; the coroutine consumes, parking (not
//!     // blocking the thread) while the channel is empty.
//!     let producer = std::thread::spawn(move || {
//!         for i in 0..100 {
//!             tx.send(i).unwrap();
//!         }
//!     });
//!     let sum: u32 = rx.iter().sum();
//!     assert_eq!(sum, 4950);
//!     producer.join().unwrap();
//! });
//! ```
//!
//! | made by | buffer | a send waits while |
//! |---|---|---|
//! | [`bounded(n)`](bounded) | up to `n` messages | the buffer is full |
//! | [`unbounded()`](unbounded) | any number | never |
//! | [`rendezvous()`](rendezvous) = `bounded(0)` | none | no receiver has come to take the message |
//! | [`oneshot()`](oneshot()) | one message, one sender, one receiver | never |
//!
//! A call that has to wait parks the calling coroutine, so its thread runs
//! other coroutines meanwhile; on a plain thread (outside a runtime) it
//! blocks the thread. Either side may be either kind, on any thread:
//! [`Sender`] and [`Receiver`] are `Send` and `Sync` when the message is
//! `Send`, and cheap to clone. [`Select`] waits on several operations and
//! performs exactly one.
//!
//! **Guarantees.** Every message sent is received exactly once, and the
//! messages of one producer are received in the order it sent them.
//! **Disconnection** is as in `std::sync::mpsc` and crossbeam: once every
//! `Sender` is gone, receivers get what is still buffered and then
//! `Disconnected`; once every `Receiver` is gone, sends fail with
//! `Disconnected` and give their message back, and the messages left in the
//! buffer are dropped at that moment. Parties waiting when the last handle
//! of the other side goes are woken with that error. A wait that ends
//! without its operation (timeout, cancellation) had no effect at all.
//!
//! # How it works
//!
//! Vocabulary: a *party* is a coroutine or thread calling `send`, `recv`
//! or a select. A party that must wait *parks*: it puts an *entry* in one
//! of the channel's two FIFO queues and waits on its waiter: a plain
//! `send` or `recv` on a `SoleWaiter` in its own frame (`sync/wait/sole.rs`),
//! a select on a `Waiter` (`sync/wait/waiter.rs`, shared by every primitive of
//! the crate). A
//! *notifier* is whoever completes a parked party's operation for it.
//!
//! ```text
//!  Chan<T>: one spin lock, held only for short sections that never block
//!  +------------------------------------------------------------------------+
//!  | buffer             [m1 m2 m3]                       up to the capacity |
//!  | senders_waiting    [S4 -> its slot, S5 -> its slot]  FIFO, only when full |
//!  | receivers_waiting  []                            FIFO, only when empty |
//!  | senders: 3   receivers: 1                                              |
//!  +------------------------------------------------------------------------+
//!     each queue entry holds its party's waiter, a pointer to the party's own
//!     message slot (on its stack, or in its select branch) and a branch
//! ```
//!
//! **Hand-off, not wake-and-retry.** Under the lock, the notifier *claims*
//! the oldest parked party's waiter (once: a party that has given up is
//! skipped; a plain `send` or `recv` is claimed with a store, see
//! `sync/wait/sole.rs`, a select's waiter with a compare-and-swap, see
//! `sync/wait/waiter.rs`), does that
//! party's operation on its behalf, as Go's runtime does with its
//! `sudog`s, and wakes it once the lock is released:
//!
//! | the caller | finds | does |
//! |---|---|---|
//! | send | a parked receiver | moves the message into the oldest one's slot; claims and wakes it |
//! | send | room in the buffer | pushes the message |
//! | send | neither | parks, its message in a slot |
//! | recv | a buffered message | takes the oldest; if a sender is parked, moves the oldest one's message to the back of the buffer, and claims and wakes it |
//! | recv | an empty buffer and a parked sender (rendezvous) | takes the oldest sender's message from its slot; claims and wakes it |
//! | recv | neither | parks, with an empty slot |
//! | drop of the last `Sender` | parked receivers | claims each with a `Disconnected` token and wakes it |
//! | drop of the last `Receiver` | parked senders, buffered messages | claims each sender with `Disconnected` (it takes its message back from its slot); drops the buffer, after unlocking |
//!
//! A woken party has nothing to retry: its claim's token says what
//! happened (done, or disconnected), and for a receiver the message is
//! already in its own slot, so it does not take the lock again. `chan.rs`
//! has the rules for who may touch a slot when.
//!
//! ```text
//!   receiver R (coroutine, runtime A)          sender S (plain thread)
//!   slot = None (in R's frame)
//!   lock; buffer empty, no sender parked
//!   receivers_waiting += (R, &slot)
//!   unlock; wait ======= parked =======
//!                                              lock; receivers_waiting: R
//!                                              claim R (token Done)   <- once
//!                                                and move msg into R's slot
//!                                              unlock; wake R (A's inbox)
//!   woken: claimed with Done
//!   msg = slot.take()
//! ```
//!
//! **Fairness.** What is guaranteed, exactly:
//!
//! 1. Parked senders complete in the order they parked, and parked
//!    receivers get messages in the order they parked.
//! 2. A parked party is never overtaken by one that comes later. A place
//!    freed in a full buffer goes to the oldest parked sender in the same
//!    critical section, so a newcomer's `try_send` still finds the channel
//!    full; a message sent while a receiver is parked goes into that
//!    receiver's slot, so a newcomer's `try_recv` finds the channel empty.
//!
//! Not guaranteed: the order among parties that are *running* (not parked)
//! and race for the lock; that is the std mutex's business.
//!
//! **Timeouts and cancellation** use the other half of the claim (a
//! timeout too long to have a deadline, such as `Duration::MAX`, waits
//! without one, as `std::sync::mpsc`'s `recv_timeout` does): a waiter
//! whose deadline passes (or whose coroutine is cancelled) *abandons*
//! itself, with the same compare-and-swap. If it wins, no notifier can
//! claim it any more, so nothing happened: it removes its entry, takes its
//! message back if it is a sender, and reports the failure. If a notifier
//! won, the operation is done and is reported as done, even though the
//! deadline has passed. A message is therefore never lost or duplicated by
//! a timeout, and every channel operation is cancel-safe without any code
//! about cancellation in this module. [`Select`] gets the same property
//! from one waiter shared by entries in several queues (see its docs).
//!
//! **Why the message slots live with the parties.** A parked party's
//! message slot is a local of its `send` or `recv` (a field of its select
//! branch), and its queue entry points there. Parking allocates nothing,
//! and a woken receiver finds its message without taking the lock again.
//! The pointer is sound because only the notifier that wins the claim
//! dereferences it, while its owner waits for that claim to finish before
//! it leaves the frame (`chan.rs`). Earlier versions kept the slots in a
//! `Slab` inside the locked state, which cost every hand-off one more lock
//! (an atomic read-modify-write) and a slab insert and removal.
//!
//! # Rejected alternatives
//!
//! * **Wake-and-retry** (a `Condvar` loop, and the waiting lists of
//!   crossbeam's array and list flavours, which `std::sync::mpsc` now
//!   shares): a notifier only says "try again". The woken party may then
//!   find its message taken, or its place filled, by a newcomer (barging:
//!   no bound on how often), and a waiter that times out just as it is
//!   notified must pass the notification on or it is lost. Hand-off has
//!   neither problem, at the price of the notifier doing a little more
//!   work under the lock.
//! * **A lock-free buffer** (crossbeam's array and list flavours). Faster
//!   when many cores hammer one channel, but far more code and `unsafe`;
//!   here a runtime is one thread, so contention is between runtimes and
//!   threads, and the lock is held only for a few queue operations. The
//!   lock-free fast paths would still need the same queues for parking.
//!   Not measured against this implementation.
//! * **Unfair select** (always try branches in the order written): an
//!   always-ready first branch would starve the rest. See [`Select`].

mod chan;
mod error;
mod oneshot;
mod receiver;
mod select;
mod sender;

use std::sync::Arc;

use chan::Chan;

pub use error::{RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
pub use oneshot::{OneshotReceiver, OneshotSender, oneshot};
pub use receiver::{IntoIter, Iter, Receiver, TryIter};
pub use select::Select;
pub use sender::Sender;

/// Makes a channel that buffers up to `capacity` messages; a send waits
/// while the buffer is full. `bounded(0)` is a [`rendezvous`] channel.
///
/// The buffer grows as messages come, up to `capacity`: nothing is
/// allocated up front, so any capacity (`usize::MAX` included, which is
/// then as good as unbounded) costs nothing until it is used.
///
/// ```
/// let (tx, rx) = green::channel::bounded(2);
/// tx.send('a').unwrap();
/// tx.send('b').unwrap();
/// assert!(tx.is_full());
/// assert_eq!(rx.recv(), Ok('a'));
/// ```
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    channel(Some(capacity))
}

/// Makes a channel whose buffer grows as needed; a send never waits.
///
/// ```
/// let (tx, rx) = green::channel::unbounded();
/// for i in 0..1000 {
///     tx.send(i).unwrap();
/// }
/// assert_eq!(rx.len(), 1000);
/// assert_eq!(tx.capacity(), None);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    channel(None)
}

/// Makes a channel without a buffer: each send waits until a receiver takes
/// its message, hand to hand.
///
/// ```
/// use green::channel;
///
/// green::run(|| {
///     let (tx, rx) = channel::rendezvous();
///     let sender = green::spawn(move || {
///         tx.send("handed over").unwrap(); // returns once received
///     });
///     assert_eq!(rx.recv(), Ok("handed over"));
///     sender.join().unwrap();
/// });
/// ```
pub fn rendezvous<T>() -> (Sender<T>, Receiver<T>) {
    bounded(0)
}

fn channel<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(capacity));
    (Sender::new(chan.clone()), Receiver::new(chan))
}

/// Compile-time proof that both halves are `Send` and `Sync` whenever the
/// message is `Send` (the `compile_fail` example on [`Sender`] shows the
/// converse for an `Rc`).
const _: () = {
    const fn send_and_sync<X: Send + Sync>() {}
    const fn halves<T: Send>() {
        send_and_sync::<Sender<T>>();
        send_and_sync::<Receiver<T>>();
        send_and_sync::<OneshotSender<T>>();
        send_and_sync::<OneshotReceiver<T>>();
    }
    // The bounds are checked where `halves` is defined, for every `T`;
    // calling it once keeps it from being dead code.
    halves::<()>();
};
