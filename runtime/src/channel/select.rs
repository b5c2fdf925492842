//! Waiting on several channel operations at once, and taking exactly one:
//! [`Select`].
//!
//! # How
//!
//! 1. **Try each branch once without waiting**, starting at a random
//!    branch and going round. The first that can happen, happens (for a
//!    receive: a message was buffered or a sender was parked; for a send:
//!    there was room or a parked receiver; for either: the other side is
//!    gone, which completes the branch with its `Disconnected` error).
//!    The random start is what keeps an always-ready branch listed first
//!    from starving the others: each ready branch is taken with equal
//!    probability, as in Go. (A rotating start was rejected: two selects
//!    alternating in one loop on one thread would each always start at the
//!    same branch.)
//! 2. If none could, and there is a [`default`](Select::default) branch,
//!    run it; if the deadline has passed, run the timeout closure.
//! 3. Otherwise **park one waiter in every branch's queue**: one
//!    [`Waiter`], with an entry per branch, in the same rotated order, the
//!    branch index being the claim's token. Under each channel's lock the
//!    branch is checked again first (a partner may have come since step
//!    1); if it can happen now, the select claims its own waiter for that
//!    branch, which shuts out every notifier at the entries already
//!    parked, and does it.
//! 4. **Wait.** The first notifier to claim the waiter, in whichever
//!    queue, performs that branch's hand-off: it puts its message into the
//!    branch's slot, or takes the branch's message. Every other notifier's
//!    claim fails, and it moves on to the next party in its queue.
//! 5. **Withdraw** every other entry (and take back the messages of the
//!    send branches, which nobody took), then run the winner's closure.
//!
//! ```text
//!              one Waiter (state: WAITING -> claimed(token) once)
//!              /                 |                   \
//!   rx1.receivers_waiting   rx2.receivers_waiting   tx3.senders_waiting
//!   [.., entry token 0]     [entry token 1, ..]     [.., entry token 2 + message]
//!        ^
//!        a sender on rx1's channel claims token 0 first: branch 0 wins,
//!        it gets the message; entries 1 and 2 are withdrawn, and branch
//!        2's message comes back to the select, unsent
//! ```
//!
//! # Why it is cancel-safe, by construction
//!
//! A branch that does not win has done nothing: no message was taken
//! from its channel and none was sent on it. That follows from the claim
//! (`sync/wait/waiter.rs`), not from care in each operation: an operation is
//! only ever performed by whoever claims the waiter for it, and the claim
//! succeeds once. The same holds against the timeout, and against
//! cancellation: the waiter abandons itself with the same compare-and-swap,
//! so either a branch was claimed first (and the select reports it, even
//! though the deadline passed meanwhile) or nothing happened at all.
//!
//! Contrast tokio's `select!`: it polls a future per branch and drops the
//! futures of the branches that lose. What a dropped future had already
//! done depends on each future, so tokio's documentation has to say, method
//! by method, which are cancel-safe: `mpsc::Receiver::recv` is;
//! `AsyncReadExt::read_exact` is not (bytes already read are lost); a
//! losing `mpsc::Sender::send` sent nothing but drops its message with the
//! future; a losing `reserve` loses its place in the queue. The user has to
//! stay within that list. Here there is no list: every branch is an
//! operation on a queue that either happened, whole, or did not, and a
//! losing send's message can be had back.
//!
//! # What a losing send branch does with its message
//!
//! It is not sent. [`Select::send`] drops it when [`Select::wait`]
//! returns; [`Select::send_from`] puts it back where it came from, for the
//! next attempt.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use super::chan::{Chan, Completion, Mailbox, Registration, Unwinding, settle_unwound};
use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use super::{Receiver, Sender};
use crate::sync::wait::party::Outcome;
use crate::sync::wait::waiter::Waiter;

/// Waits on several send and receive operations, on channels of any
/// message types, and performs exactly one of them.
///
/// Each branch has a closure; [`wait`](Select::wait) runs the winner's,
/// with the operation's result, and returns what it returns. The closures
/// of the other branches never run, and their operations did not happen.
///
/// ```
/// use std::time::Duration;
/// use green::channel::{self, Select};
///
/// green::run(|| {
///     let (numbers_tx, numbers) = channel::unbounded::<u32>();
///     let (words_tx, words) = channel::unbounded::<&str>();
///     let (log, log_rx) = channel::bounded::<String>(1);
///     words_tx.send("ready").unwrap();
///
///     let what = Select::new()
///         .recv(&numbers, |n| format!("number {}", n.unwrap()))
///         .recv(&words, |w| format!("word {}", w.unwrap()))
///         .send(&log, String::from("select ran"), |sent| {
///             sent.unwrap();
///             String::from("logged")
///         })
///         .timeout(Duration::from_secs(1), || String::from("nothing happened"))
///         .wait();
///     // Two branches were ready; exactly one happened.
///     let logged = log_rx.try_recv().is_ok();
///     let word_taken = words.is_empty();
///     assert!(logged != word_taken);
///     assert_eq!(what, if logged { "logged" } else { "word ready" });
///     drop(numbers_tx);
/// });
/// ```
///
/// A `default` branch makes it non-blocking:
///
/// ```
/// use green::channel::{self, Select};
///
/// let (_tx, rx) = channel::unbounded::<u8>();
/// let got = Select::new().recv(&rx, |m| m.ok()).default(|| None).wait();
/// assert_eq!(got, None);
/// ```
///
/// # Cancellation
///
/// If the waiting coroutine is cancelled, no operation happens and the
/// closure of the **first branch added** runs with its `Cancelled` error
/// ([`RecvError::Cancelled`], or [`SendError::Cancelled`] carrying the
/// message back); a select without branches runs its timeout closure.
pub struct Select<'a, R> {
    /// The operations, in the order they were added (the order that
    /// decides who gets a cancellation).
    branches: Vec<Box<dyn Branch<R> + 'a>>,
    /// What happens when no operation can be done at once.
    otherwise: Otherwise<'a, R>,
}

/// What a [`Select`] does when no branch can happen at once.
enum Otherwise<'a, R> {
    /// Waits as long as it takes.
    Wait,
    /// Waits until the deadline (`None`: too far off to represent, never),
    /// then runs the closure.
    Deadline(Option<Instant>, Box<dyn FnOnce() -> R + 'a>),
    /// Does not wait: runs the closure.
    Default(Box<dyn FnOnce() -> R + 'a>),
}

/// How a select ended.
#[derive(Debug, Clone, Copy)]
enum Ended {
    /// This branch happened.
    Branch(usize),
    /// The deadline passed, or nothing was ready and there is a default.
    Otherwise,
    /// The coroutine was cancelled while it waited.
    Cancelled,
}

/// What [`Branch::register`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// Parked an entry.
    Parked,
    /// Claimed the waiter itself and did the operation.
    Completed,
    /// The waiter was already claimed for another branch.
    Lost,
    /// The waiter claimed itself, but the partner left: start over.
    Retry,
}

/// One operation of a select, with its closure. Object-safe, so that
/// branches on channels of different message types sit in one list.
trait Branch<R> {
    /// Does the operation if it can happen without waiting; whether it did
    /// (its result is kept for [`Branch::run`]).
    fn try_now(&mut self) -> bool;
    /// Does the operation now if it can (claiming `waiter` for `branch`
    /// first), or parks an entry for `waiter` with token `branch`.
    fn register(&mut self, waiter: &Waiter, branch: usize) -> Attempt;
    /// A notifier claimed the waiter for this branch: collects the result.
    fn claimed(&mut self, completion: Completion);
    /// Takes back this branch's entry if it is parked (after the wait ended
    /// for another reason).
    fn withdraw(&mut self, waiter: &Waiter);
    /// Runs the closure with the result; for the winner.
    fn run(self: Box<Self>) -> R;
    /// Runs the closure with the `Cancelled` error.
    fn run_cancelled(self: Box<Self>) -> R;
}

#[allow(
    clippy::new_without_default,
    reason = "`Select::default` is the non-blocking branch, not an empty select"
)]
impl<'a, R> Select<'a, R> {
    /// A select with no branches yet.
    pub fn new() -> Select<'a, R> {
        Select { branches: Vec::new(), otherwise: Otherwise::Wait }
    }

    /// Adds a branch that receives from `receiver`; `then` gets the
    /// message, or [`RecvError::Disconnected`] once every sender is gone
    /// and the channel is empty (a disconnected channel is always ready,
    /// as in Go and crossbeam).
    pub fn recv<A>(
        mut self,
        receiver: &'a Receiver<A>,
        then: impl FnOnce(Result<A, RecvError>) -> R + 'a,
    ) -> Self {
        self.branches.push(Box::new(RecvBranch {
            chan: receiver.chan(),
            slot: Mailbox::new(None),
            parked: false,
            result: None,
            then,
        }));
        self
    }

    /// Adds a branch that sends `message` on `sender`; `then` gets `Ok`, or
    /// [`SendError::Disconnected`] with the message if every receiver is
    /// gone. If another branch wins, the message is not sent, and is
    /// dropped when [`wait`](Select::wait) returns.
    pub fn send<B>(
        mut self,
        sender: &'a Sender<B>,
        message: B,
        then: impl FnOnce(Result<(), SendError<B>>) -> R + 'a,
    ) -> Self {
        self.branches.push(Box::new(SendBranch {
            chan: sender.chan(),
            message: Some(message),
            give_back: None,
            slot: Mailbox::new(None),
            parked: false,
            result: None,
            then: Some(then),
        }));
        self
    }

    /// Like [`send`](Select::send), but the message is taken from
    /// `*message` only if this branch wins; otherwise it is put back there
    /// (also if the select is dropped without [`wait`](Select::wait)).
    ///
    /// ```
    /// use green::channel::{self, Select};
    ///
    /// let (tx, _rx) = channel::rendezvous();
    /// let mut message = Some(String::from("not lost"));
    /// let sent = Select::new().send_from(&tx, &mut message, |r| r.is_ok()).default(|| false).wait();
    /// assert!(!sent);
    /// assert_eq!(message.as_deref(), Some("not lost"));
    /// ```
    ///
    /// # Panics
    ///
    /// If `*message` is `None`: there is nothing to send.
    pub fn send_from<B>(
        mut self,
        sender: &'a Sender<B>,
        message: &'a mut Option<B>,
        then: impl FnOnce(Result<(), SendError<B>>) -> R + 'a,
    ) -> Self {
        let taken =
            message.take().expect("Select::send_from: the message slot is empty; there is nothing to send");
        self.branches.push(Box::new(SendBranch {
            chan: sender.chan(),
            message: Some(taken),
            give_back: Some(message),
            slot: Mailbox::new(None),
            parked: false,
            result: None,
            then: Some(then),
        }));
        self
    }

    /// Gives up `timeout` after this call if no branch has happened by
    /// then, and runs `then` instead.
    ///
    /// # Panics
    ///
    /// If the select already has a timeout, a deadline or a default.
    pub fn timeout(self, timeout: Duration, then: impl FnOnce() -> R + 'a) -> Self {
        self.otherwise(Otherwise::Deadline(Instant::now().checked_add(timeout), Box::new(then)))
    }

    /// Gives up at `deadline` if no branch has happened by then, and runs
    /// `then` instead. A branch that is ready is still taken if the
    /// deadline has already passed.
    ///
    /// # Panics
    ///
    /// If the select already has a timeout, a deadline or a default.
    pub fn deadline(self, deadline: Instant, then: impl FnOnce() -> R + 'a) -> Self {
        self.otherwise(Otherwise::Deadline(Some(deadline), Box::new(then)))
    }

    /// Makes the select non-blocking: if no branch can happen at once, it
    /// runs `then` instead.
    ///
    /// # Panics
    ///
    /// If the select already has a timeout, a deadline or a default.
    pub fn default(self, then: impl FnOnce() -> R + 'a) -> Self {
        self.otherwise(Otherwise::Default(Box::new(then)))
    }

    fn otherwise(mut self, otherwise: Otherwise<'a, R>) -> Self {
        assert!(
            matches!(self.otherwise, Otherwise::Wait),
            "green::channel::Select: a select takes one timeout, deadline or default; remove the extra one"
        );
        self.otherwise = otherwise;
        self
    }

    /// Performs exactly one branch (or the timeout or default) and returns
    /// what its closure returns. Parks the calling coroutine, or blocks the
    /// calling thread outside a runtime, while nothing can happen.
    ///
    /// # Panics
    ///
    /// If the select has no branch and no timeout or default: it would wait
    /// forever.
    pub fn wait(mut self) -> R {
        let count = self.branches.len();
        assert!(
            count > 0 || !matches!(self.otherwise, Otherwise::Wait),
            "green::channel::Select::wait: no branch and no timeout or default, so it would wait forever"
        );
        let start = if count > 1 { random_below(count) } else { 0 };
        let order = move || (0..count).map(move |k| (start + k) % count);
        loop {
            if let Some(winner) = order().find(|&i| self.branches[i].try_now()) {
                return self.finish(Ended::Branch(winner));
            }
            let deadline = match &self.otherwise {
                Otherwise::Default(_) => return self.finish(Ended::Otherwise),
                Otherwise::Deadline(Some(at), _) if *at <= Instant::now() => {
                    return self.finish(Ended::Otherwise);
                }
                Otherwise::Deadline(at, _) => *at,
                Otherwise::Wait => None,
            };
            let waiter = Waiter::new();
            let mut registered = Attempt::Parked;
            let mut completed = None;
            for i in order() {
                registered = self.branches[i].register(&waiter, i);
                if registered != Attempt::Parked {
                    completed = Some(i);
                    break;
                }
            }
            let ended = match (registered, completed) {
                (Attempt::Completed, Some(i)) => Some(Ended::Branch(i)),
                (Attempt::Retry, _) => None,
                _ => {
                    let branches = &mut self.branches;
                    // Shutdown unwinds a parked coroutine from inside the
                    // wait: settle the branches as an abandoned wait would.
                    let unwinding = Unwinding::new(|| {
                        if let Some(token) = settle_unwound(&waiter) {
                            let (i, completion) = Completion::of(token);
                            branches[i].claimed(completion);
                        }
                        branches.iter_mut().for_each(|branch| branch.withdraw(&waiter));
                    });
                    let outcome = waiter.wait(deadline);
                    unwinding.disarm();
                    match outcome {
                        Outcome::Claimed(token) => {
                            let (i, completion) = Completion::of(token);
                            self.branches[i].claimed(completion);
                            Some(Ended::Branch(i))
                        }
                        Outcome::TimedOut => Some(Ended::Otherwise),
                        Outcome::Cancelled => Some(Ended::Cancelled),
                    }
                }
            };
            for branch in &mut self.branches {
                branch.withdraw(&waiter);
            }
            if let Some(ended) = ended {
                return self.finish(ended);
            }
        }
    }

    /// Disposes of the losers, then runs the winner's closure.
    fn finish(self, ended: Ended) -> R {
        let Select { branches, otherwise } = self;
        let chosen = match ended {
            Ended::Branch(i) => Some(i),
            Ended::Cancelled => Some(0),
            Ended::Otherwise => None,
        };
        // The losers are dropped first: a send branch's unsent message goes
        // back to `send_from`'s caller, or is dropped.
        let winner =
            branches.into_iter().enumerate().find_map(|(i, branch)| (Some(i) == chosen).then_some(branch));
        match (winner, ended) {
            (Some(branch), Ended::Cancelled) => branch.run_cancelled(),
            (Some(branch), _) => branch.run(),
            (None, _) => match otherwise {
                Otherwise::Deadline(_, then) | Otherwise::Default(then) => then(),
                Otherwise::Wait => unreachable!("a select without branches has a timeout or a default"),
            },
        }
    }
}

impl<R> fmt::Debug for Select<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let otherwise = match &self.otherwise {
            Otherwise::Wait => "wait",
            Otherwise::Deadline(..) => "deadline",
            Otherwise::Default(_) => "default",
        };
        f.debug_struct("Select")
            .field("branches", &self.branches.len())
            .field("otherwise", &otherwise)
            .finish()
    }
}

/// A receive branch.
struct RecvBranch<'a, A, F> {
    /// The channel received from.
    chan: &'a Chan<A>,
    /// Where a sender puts the message while the entry is parked. Boxed
    /// with the branch, so it stays put while the entry points to it.
    slot: Mailbox<A>,
    /// Whether an entry is parked.
    parked: bool,
    /// The outcome, once this branch happened.
    result: Option<Result<A, RecvError>>,
    /// Runs with the outcome if this branch wins.
    then: F,
}

impl<A, R, F: FnOnce(Result<A, RecvError>) -> R> Branch<R> for RecvBranch<'_, A, F> {
    fn try_now(&mut self) -> bool {
        self.result = match self.chan.try_recv() {
            Ok(message) => Some(Ok(message)),
            Err(TryRecvError::Disconnected) => Some(Err(RecvError::Disconnected)),
            Err(TryRecvError::Empty) => None,
        };
        self.result.is_some()
    }

    fn register(&mut self, waiter: &Waiter, branch: usize) -> Attempt {
        match self.chan.register_recv(&self.slot, waiter, branch) {
            Registration::Completed(message) => {
                self.result = Some(message.ok_or(RecvError::Disconnected));
                Attempt::Completed
            }
            Registration::Parked => {
                self.parked = true;
                Attempt::Parked
            }
            Registration::Lost(()) => Attempt::Lost,
            Registration::Retry(()) => Attempt::Retry,
        }
    }

    fn claimed(&mut self, completion: Completion) {
        debug_assert!(self.parked, "a branch is claimed through its parked entry");
        self.parked = false;
        // Done: the sender left the message in the slot; Disconnected: no
        // message.
        let message = self.slot.get_mut().take();
        debug_assert_eq!(message.is_some(), completion == Completion::Done);
        self.result = Some(message.ok_or(RecvError::Disconnected));
    }

    fn withdraw(&mut self, waiter: &Waiter) {
        if self.parked {
            self.parked = false;
            self.chan.withdraw_recv(waiter);
        }
    }

    fn run(self: Box<Self>) -> R {
        let result = self.result.expect("the winning branch has its outcome");
        (self.then)(result)
    }

    fn run_cancelled(self: Box<Self>) -> R {
        (self.then)(Err(RecvError::Cancelled))
    }
}

/// A send branch. Dropping it gives an unsent message back, or drops it.
struct SendBranch<'a, B, F> {
    /// The channel sent on.
    chan: &'a Chan<B>,
    /// The message, while the select holds it (not parked, not sent).
    message: Option<B>,
    /// Where an unsent message goes back ([`Select::send_from`]); `None`:
    /// it is dropped.
    give_back: Option<&'a mut Option<B>>,
    /// The message while the entry is parked. Boxed with the branch, so
    /// it stays put while the entry points to it.
    slot: Mailbox<B>,
    /// Whether an entry is parked.
    parked: bool,
    /// The outcome, once this branch happened.
    result: Option<Result<(), SendError<B>>>,
    /// Runs with the outcome if this branch wins; taken when it runs.
    then: Option<F>,
}

impl<B, F> SendBranch<'_, B, F> {
    /// The message, which the select holds whenever it is not parked.
    fn take_message(&mut self) -> B {
        self.message.take().expect("a send branch holds its message while it is not parked or sent")
    }
}

impl<B, R, F: FnOnce(Result<(), SendError<B>>) -> R> Branch<R> for SendBranch<'_, B, F> {
    fn try_now(&mut self) -> bool {
        let message = self.take_message();
        self.result = match self.chan.try_send(message) {
            Ok(()) => Some(Ok(())),
            Err(TrySendError::Disconnected(message)) => Some(Err(SendError::Disconnected(message))),
            Err(TrySendError::Full(message)) => {
                self.message = Some(message);
                None
            }
        };
        self.result.is_some()
    }

    fn register(&mut self, waiter: &Waiter, branch: usize) -> Attempt {
        let message = self.take_message();
        match self.chan.register_send(message, &mut self.slot, waiter, branch) {
            Registration::Completed(sent) => {
                self.result = Some(sent.map_err(SendError::Disconnected));
                Attempt::Completed
            }
            Registration::Parked => {
                self.parked = true;
                Attempt::Parked
            }
            Registration::Lost(message) => {
                self.message = Some(message);
                Attempt::Lost
            }
            Registration::Retry(message) => {
                self.message = Some(message);
                Attempt::Retry
            }
        }
    }

    fn claimed(&mut self, completion: Completion) {
        debug_assert!(self.parked, "a branch is claimed through its parked entry");
        self.parked = false;
        // Done: a receiver took the message; Disconnected: it is still here.
        let unsent = self.slot.get_mut().take();
        debug_assert_eq!(unsent.is_none(), completion == Completion::Done);
        self.result = Some(unsent.map_or(Ok(()), |message| Err(SendError::Disconnected(message))));
    }

    fn withdraw(&mut self, waiter: &Waiter) {
        if self.parked {
            self.parked = false;
            self.chan.withdraw_send(waiter);
            self.message = self.slot.get_mut().take();
        }
    }

    fn run(mut self: Box<Self>) -> R {
        let result = self.result.take().expect("the winning branch has its outcome");
        let then = self.then.take().expect("a branch runs once");
        then(result)
    }

    fn run_cancelled(mut self: Box<Self>) -> R {
        let message = self.take_message();
        let then = self.then.take().expect("a branch runs once");
        then(Err(SendError::Cancelled(message)))
    }
}

impl<B, F> Drop for SendBranch<'_, B, F> {
    /// Gives an unsent message back to [`Select::send_from`]'s caller, also
    /// when the select is dropped without [`Select::wait`].
    fn drop(&mut self) {
        if let (Some(back), Some(message)) = (self.give_back.take(), self.message.take()) {
            *back = Some(message);
        }
    }
}

/// A random number below `n` (> 0), from a per-thread xorshift generator
/// seeded by std's random hasher keys. Only for picking where a select
/// starts; not for anything that needs real randomness.
fn random_below(n: usize) -> usize {
    thread_local! {
        /// The generator's state; never zero.
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(0u8) | 1);
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        (x % n as u64) as usize
    })
}
