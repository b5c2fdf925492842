//! The shared core of a channel: its locked state, and every operation that
//! moves a message, whether the caller waits or not. `Sender`, `Receiver`
//! and `Select` are thin layers over it. The protocol is in the module docs
//! of [`channel`](super); this file is where it is enforced.
//!
//! # Who touches which field
//!
//! Everything is in [`ChanState`], behind one [`SpinLock`] that is held
//! only for short, non-blocking sections: no user code runs under it, no
//! message is dropped under it (a message's destructor could touch this
//! very channel), and nothing waits under it.
//!
//! | field | written by, under the lock |
//! |---|---|
//! | `buffer` | senders (push), receivers (pop; refill from the oldest parked sender), the last receiver's drop (takes it all, drops it after unlocking) |
//! | `senders_waiting` | a sender parking (push), receivers (claim the oldest), its owner giving up (remove), the last receiver's drop (claims all) |
//! | `receivers_waiting` | a receiver parking (push), senders (claim the oldest), its owner giving up (remove), the last sender's drop (claims all) |
//! | `senders`, `receivers` | handle clones and drops |
//!
//! An entry whose waiter is no longer waiting (a select that took another
//! branch) may linger in its queue until a notifier skips it or its owner
//! withdraws it; "parked" below means still waiting. The entry of a plain
//! `send` or `recv` never lingers: it is taken out under the lock by
//! whoever ends the wait.
//!
//! # Message slots: who may touch them
//!
//! A parked party's message lives with the party itself, in a [`Mailbox`]:
//! on its stack for a plain `send` or `recv`, in its branch for a select.
//! Its queue entry points there. A sender parks with its message in the
//! slot; a receiver parks with the slot empty.
//!
//! | who | when | does |
//! |---|---|---|
//! | the notifier that wins the claim | inside the claim (`claim_with` of the party's waiter), under the lock | moves a message into a receiver's slot, or out of a sender's |
//! | the owner | before its entry is queued, and once its wait has ended | anything: nobody else can reach the slot |
//!
//! Nobody else ever dereferences the entry's pointer: a notifier whose
//! claim fails leaves the slot alone, and an entry lingering in a queue
//! after its owner gave up is never claimed. The owner does not leave the
//! slot's frame while a transfer is in progress: a claim with a transfer
//! becomes visible to the owner only when the transfer is done (a sole
//! waiter's token is stored after it; a shared waiter's owner waits for
//! it, in `Waiter`'s drop too). So the receiver of a message
//! finds it in its own slot when it wakes, without locking the channel
//! again, and no slot is allocated or freed under the lock.
//!
//! # A coroutine unwound in the middle of a wait
//!
//! At shutdown the runtime tears down parked coroutines by unwinding their
//! stacks from inside `park`, so `Waiter::wait` never returns to the code
//! after it. An [`Unwinding`] guard, armed around every wait, settles the
//! parked operation as an abandoned wait would: a plain `send` or `recv`
//! gives up under the lock ([`SoleWaiter::give_up`]), a select's waiter claims
//! itself with [`UNWOUND`]; either shuts every notifier out, and the
//! entries are withdrawn (a parked message is dropped with its slot). If a
//! notifier had claimed the waiter first, the operation is finished as
//! usual and its result dropped. Without this, the entry of a dead
//! receiver would stay queued, and the next sender would hand its message
//! to it: lost (and written into a frame that is gone).

use crate::context::Context;
use crate::dump::kind::WaitKind;
use crate::sync::spin::{SpinGuard, SpinLock};
use crate::sync::wait::party::Outcome;
use crate::sync::wait::queue::{Entry, WaitQueue};
use crate::sync::wait::sole::{SoleHandle, SoleWaiter, Wakeup};
use crate::sync::wait::touch::Touch;
use crate::sync::wait::waiter::{Waiter, WaiterHandle};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::mem;
use std::time::Instant;

use super::error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};

/// How a notifier ended a parked operation. With the branch it makes the
/// claim's token: `branch * 2 + completion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completion {
    /// The hand-off happened: the message was moved into the receiver's
    /// slot, or out of the sender's.
    Done = 0,
    /// The other side is gone: nothing was handed over.
    Disconnected = 1,
}

impl Completion {
    /// The claim token for branch `branch` (0 outside a select).
    pub(crate) fn token(self, branch: usize) -> usize {
        branch << 1 | self as usize
    }

    /// Splits a claim token into its branch and completion.
    pub(crate) fn of(token: usize) -> (usize, Completion) {
        let completion = if token & 1 == 0 { Completion::Done } else { Completion::Disconnected };
        (token >> 1, completion)
    }
}

/// Where a parked party's message waits (see the module docs): owned by
/// the party, pointed to by its queue entry.
#[derive(Debug)]
pub(crate) struct Mailbox<T> {
    /// The message, or `None`.
    message: UnsafeCell<Option<T>>,
}

impl<T> Mailbox<T> {
    /// A slot holding `message`.
    pub(crate) fn new(message: Option<T>) -> Mailbox<T> {
        Mailbox { message: UnsafeCell::new(message) }
    }

    /// The owner's access, between waits.
    pub(crate) fn get_mut(&mut self) -> &mut Option<T> {
        self.message.get_mut()
    }

    /// The message, once the wait has ended.
    pub(crate) fn into_inner(self) -> Option<T> {
        self.message.into_inner()
    }

    /// What a queue entry holds.
    fn as_ptr(&self) -> *mut Option<T> {
        self.message.get()
    }
}

/// The handle of a parked party's waiter: which kind of waiter it is.
#[derive(Debug)]
enum Handle {
    /// A select, waiting in several queues.
    Shared(WaiterHandle),
    /// A plain `send` or `recv`, waiting in this queue only.
    Sole(SoleHandle),
}

/// A parked party, in a queue of [`ChanState`].
#[derive(Debug)]
struct Parked<T> {
    /// Whom to claim and wake.
    handle: Handle,
    /// The party's message slot; dereferenced only by the notifier that
    /// wins the claim, during its transfer (see the module docs).
    slot: *mut Option<T>,
    /// Which of the waiter's operations this is: the branch of a select,
    /// 0 for a plain send or receive. Goes into the claim's token.
    branch: usize,
}

// SAFETY: the pointer is used only as the module docs say, by one party at
// a time, handing the `T` from one thread to another, which `T: Send`
// allows; everything else in an entry is `Send`.
unsafe impl<T: Send> Send for Parked<T> {}

impl<T> Entry for Parked<T> {
    fn waiter(&self) -> Option<&WaiterHandle> {
        match &self.handle {
            Handle::Shared(handle) => Some(handle),
            Handle::Sole(_) => None,
        }
    }

    #[inline]
    fn queued_in(&self, touch: &Touch) {
        match &self.handle {
            Handle::Shared(handle) => handle.queued_in(touch),
            Handle::Sole(handle) => handle.queued_in(touch),
        }
    }
}

impl<T> Parked<T> {
    /// Claims the party with `completion`, running `transfer` before the
    /// party can see the claim; returns how to wake it.
    #[inline]
    fn claim_with(self, completion: Completion, transfer: impl FnOnce()) -> Option<Wakeup> {
        let token = completion.token(self.branch);
        match self.handle {
            Handle::Shared(handle) => {
                if handle.claim_with(token, transfer) {
                    Some(Wakeup::Shared(handle))
                } else {
                    None
                }
            }
            Handle::Sole(handle) => handle.claim_with(token, transfer),
        }
    }

    /// Claims a parked receiver with `Done` and moves `message` into its
    /// slot; `message` is left in place if the claim fails.
    #[inline]
    fn claim_giving(self, message: &mut Option<T>) -> Option<Wakeup> {
        let slot = self.slot;
        self.claim_with(Completion::Done, || {
            // SAFETY: the claim is won and the transfer is in progress: the
            // slot is alive and nobody else touches it (module docs).
            unsafe { *slot = message.take() };
        })
    }

    /// Claims a parked sender with `Done` and moves its message out of its
    /// slot into `message`.
    #[inline]
    fn claim_taking(self, message: &mut Option<T>) -> Option<Wakeup> {
        let slot = self.slot;
        self.claim_with(Completion::Done, || {
            // SAFETY: the claim is won and the transfer is in progress: the
            // parked sender's slot is alive (it waits for the token) and
            // nobody else touches it (module docs).
            *message = unsafe { (*slot).take() };
        })
    }

    /// Claims a parked party with `Disconnected`: nothing is moved.
    fn claim_disconnected(self) -> Option<Wakeup> {
        self.claim_with(Completion::Disconnected, || {})
    }

    /// Whether this is the entry of `waiter`.
    fn is_of(&self, waiter: &SoleWaiter) -> bool {
        matches!(&self.handle, Handle::Sole(handle) if handle.is_for(waiter))
    }
}

/// The token a waiter claims itself with when its coroutine is unwound
/// from inside the wait (see the module docs). No select has that many
/// branches, and nobody decodes it.
const UNWOUND: usize = usize::MAX >> 1;

/// The token of the claim that ended the wait of a coroutine being unwound
/// from inside it, if a notifier claimed it first; `None` if the waiter
/// shut every notifier out (then nothing happened).
pub(crate) fn settle_unwound(waiter: &Waiter) -> Option<usize> {
    if waiter.claim_self(UNWOUND) { None } else { waiter.claimed() }
}

/// Runs `settle` if dropped while armed, that is, if the coroutine is
/// unwound from inside a wait. Disarmed when the wait returns.
pub(crate) struct Unwinding<F: FnOnce()> {
    /// What settles the parked operation; `None` once disarmed.
    settle: Option<F>,
}

impl<F: FnOnce()> Unwinding<F> {
    /// Armed.
    pub(crate) fn new(settle: F) -> Unwinding<F> {
        Unwinding { settle: Some(settle) }
    }

    /// The wait returned normally: nothing to do on drop.
    pub(crate) fn disarm(mut self) {
        self.settle = None;
    }
}

impl<F: FnOnce()> Drop for Unwinding<F> {
    fn drop(&mut self) {
        if let Some(settle) = self.settle.take() {
            settle();
        }
    }
}

/// The part of a channel that changes. See the module docs for who may
/// touch which field.
#[derive(Debug)]
struct ChanState<T> {
    /// Messages sent and not yet received, oldest first. Never longer than
    /// the capacity.
    buffer: VecDeque<T>,
    /// Parked senders, oldest first, their messages in their slots. Only
    /// while the buffer is full (always, for a rendezvous channel).
    senders_waiting: WaitQueue<Parked<T>>,
    /// Parked receivers, oldest first. Only while the buffer is empty.
    receivers_waiting: WaitQueue<Parked<T>>,
    /// Live sending handles.
    senders: usize,
    /// Live receiving handles.
    receivers: usize,
}

/// A channel: what every `Sender` and `Receiver` of it share.
#[derive(Debug)]
pub(crate) struct Chan<T> {
    /// How many messages the buffer holds: `Some(0)` for a rendezvous
    /// channel, `None` for an unbounded one.
    capacity: Option<usize>,
    /// Everything else, behind a lock held only briefly.
    state: SpinLock<ChanState<T>>,
}

/// What [`Chan::register_send`] and [`Chan::register_recv`] did with one
/// branch of a select.
#[derive(Debug)]
pub(crate) enum Registration<R, V> {
    /// The operation was possible at once: the select's waiter claimed
    /// itself for this branch, and the operation is done with result `R`.
    Completed(R),
    /// Parked: an entry pointing to the branch's slot is in the queue.
    Parked,
    /// A notifier had already claimed the waiter for another branch:
    /// nothing was done here; `V` is the message, if any, back.
    Lost(V),
    /// The waiter claimed itself for this branch, but the waiting party it
    /// was to pair with gave up meanwhile: nothing was done, and the select
    /// starts over with a new waiter; `V` is the message back.
    Retry(V),
}

impl<T> Chan<T> {
    /// A channel with one sender and one receiver.
    pub(crate) fn new(capacity: Option<usize>) -> Chan<T> {
        Chan {
            capacity,
            state: SpinLock::new(ChanState {
                buffer: VecDeque::new(),
                senders_waiting: WaitQueue::new(WaitKind::ChannelSend),
                receivers_waiting: WaitQueue::new(WaitKind::ChannelRecv),
                senders: 1,
                receivers: 1,
            }),
        }
    }

    /// Locks the state (no user code runs and nothing waits under it).
    #[inline]
    fn lock(&self) -> SpinGuard<'_, ChanState<T>> {
        self.state.lock()
    }

    /// Records, before anyone uses the channel, that the runtime (or the
    /// workers of one runtime) whose primitives carry `home` will use it
    /// (see `sync/wait/touch.rs`): a wait on it by anyone else then counts
    /// as one that something outside can end. For a channel whose other
    /// end the runtime hands to a task it starts, such as the result of a
    /// distributed spawn, whose handle may be joined anywhere.
    pub(crate) fn used_by(&self, home: u64) {
        let state = self.lock();
        state.senders_waiting.touched_by(Some(home));
        state.receivers_waiting.touched_by(Some(home));
    }

    /// Makes every wait on this channel a wait of kind `kind` in the task
    /// dump: for a channel the runtime makes for itself (the blocking
    /// pool's results, a worker's bell), before anyone waits on it.
    pub(crate) fn waits_as(&self, kind: WaitKind) {
        let state = self.lock();
        state.senders_waiting.set_kind(kind);
        state.receivers_waiting.set_kind(kind);
    }

    /// The buffer's capacity; `None` if unbounded.
    pub(crate) fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// Messages in the buffer.
    pub(crate) fn len(&self) -> usize {
        self.lock().buffer.len()
    }

    /// Whether every receiver is gone.
    pub(crate) fn receivers_gone(&self) -> bool {
        self.lock().receivers == 0
    }

    /// Whether every sender is gone.
    pub(crate) fn senders_gone(&self) -> bool {
        self.lock().senders == 0
    }

    /// Counts one more sending handle.
    pub(crate) fn add_sender(&self) {
        self.lock().senders += 1;
    }

    /// Counts one more receiving handle.
    pub(crate) fn add_receiver(&self) {
        self.lock().receivers += 1;
    }

    /// A sending handle is dropped. The last one disconnects: every parked
    /// receiver is claimed with `Disconnected` and woken (the buffer is
    /// empty while receivers are parked, so nothing is left for them).
    pub(crate) fn drop_sender(&self) {
        let mut guard = self.lock();
        guard.senders -= 1;
        if guard.senders > 0 {
            return;
        }
        let woken = disconnect(&mut guard.receivers_waiting);
        drop(guard);
        woken.into_iter().for_each(Wakeup::wake);
    }

    /// A receiving handle is dropped. The last one disconnects: every
    /// parked sender is claimed with `Disconnected` and woken (it takes its
    /// message back from its slot), and the buffered messages are dropped,
    /// after the lock is released.
    pub(crate) fn drop_receiver(&self) {
        let mut guard = self.lock();
        guard.receivers -= 1;
        if guard.receivers > 0 {
            return;
        }
        let buffer = mem::take(&mut guard.buffer);
        let woken = disconnect(&mut guard.senders_waiting);
        drop(guard);
        woken.into_iter().for_each(Wakeup::wake);
        drop(buffer);
    }

    /// Sends without waiting.
    pub(crate) fn try_send(&self, message: T) -> Result<(), TrySendError<T>> {
        let mut state = self.lock();
        let receiver = state.try_send(message, self.capacity)?;
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
        Ok(())
    }

    /// Receives without waiting.
    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = self.lock();
        let (message, sender) = state.try_recv(self.capacity)?;
        drop(state);
        if let Some(sender) = sender {
            sender.wake();
        }
        Ok(message)
    }

    /// Sends, waiting for room (or a receiver) until `deadline`.
    pub(crate) fn send(&self, message: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        let mut state = self.lock();
        let message = match state.try_send(message, self.capacity) {
            Ok(receiver) => {
                drop(state);
                if let Some(receiver) = receiver {
                    receiver.wake();
                }
                return Ok(());
            }
            Err(TrySendError::Disconnected(message)) => return Err(SendTimeoutError::Disconnected(message)),
            Err(TrySendError::Full(message)) => message,
        };
        let slot = Mailbox::new(Some(message));
        let outcome = self.wait_sole(state, |state| &mut state.senders_waiting, &slot, deadline);
        let unsent = slot.into_inner();
        match (outcome, unsent) {
            (Outcome::Claimed(token), None) if Completion::of(token) == (0, Completion::Done) => Ok(()),
            (Outcome::Claimed(token), Some(message))
                if Completion::of(token) == (0, Completion::Disconnected) =>
            {
                Err(SendTimeoutError::Disconnected(message))
            }
            (Outcome::TimedOut, Some(message)) => Err(SendTimeoutError::Timeout(message)),
            (Outcome::Cancelled, Some(message)) => Err(SendTimeoutError::Cancelled(message)),
            _ => unreachable!("a receiver takes the message exactly when it claims a sender with Done"),
        }
    }

    /// Receives, waiting for a message until `deadline`.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut state = self.lock();
        match state.try_recv(self.capacity) {
            Ok((message, sender)) => {
                drop(state);
                if let Some(sender) = sender {
                    sender.wake();
                }
                return Ok(message);
            }
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => {}
        }
        let slot = Mailbox::new(None);
        let outcome = self.wait_sole(state, |state| &mut state.receivers_waiting, &slot, deadline);
        match outcome {
            // Done: the sender put the message here; Disconnected: empty.
            Outcome::Claimed(_) => slot.into_inner().ok_or(RecvTimeoutError::Disconnected),
            Outcome::TimedOut => Err(RecvTimeoutError::Timeout),
            Outcome::Cancelled => Err(RecvTimeoutError::Cancelled),
        }
    }

    /// The wait of a plain send or receive: parks it in the `queue` of the
    /// locked `state`, with a sole waiter and its message `slot`, and
    /// releases the lock. An interrupted wait gives up under the lock and
    /// withdraws its entry, unless it was claimed meanwhile (then the
    /// operation is done). A coroutine unwound at shutdown from inside the
    /// wait does the same (see the module docs); its operation's result is
    /// then dropped with the caller's frame.
    ///
    /// The slot and the waiter stay put until the entry pointing to them is
    /// out of the queue: whoever ends the wait takes it out, under the lock,
    /// before this returns.
    #[inline]
    fn wait_sole(
        &self,
        mut state: SpinGuard<'_, ChanState<T>>,
        queue: impl Fn(&mut ChanState<T>) -> &mut WaitQueue<Parked<T>>,
        slot: &Mailbox<T>,
        deadline: Option<Instant>,
    ) -> Outcome {
        let waiter = SoleWaiter::new();
        queue(&mut state).push(Parked {
            handle: Handle::Sole(waiter.handle()),
            slot: slot.as_ptr(),
            branch: 0,
        });
        drop(state);
        let give_up = |why: Outcome| {
            let mut state = self.lock();
            let outcome = waiter.give_up(why);
            if !matches!(outcome, Outcome::Claimed(_)) {
                queue(&mut state).remove_where(|entry| entry.is_of(&waiter));
            }
            outcome
        };
        let unwinding = Unwinding::new(|| {
            give_up(Outcome::Cancelled);
        });
        let outcome = waiter.wait(deadline);
        unwinding.disarm();
        match outcome {
            Outcome::Claimed(token) => Outcome::Claimed(token),
            interrupted => give_up(interrupted),
        }
    }

    /// A select's send branch: does it at once if it can, after claiming
    /// `waiter` for `branch`; parks it otherwise, its message in `slot`.
    ///
    /// Completed with `Err(message)` if every receiver is gone.
    pub(crate) fn register_send(
        &self,
        message: T,
        slot: &mut Mailbox<T>,
        waiter: &Waiter,
        branch: usize,
    ) -> Registration<Result<(), T>, T> {
        let mut state = self.lock();
        if !state.send_ready(waiter, self.capacity) {
            *slot.get_mut() = Some(message);
            state.park_sender(slot, waiter, branch);
            return Registration::Parked;
        }
        if !waiter.claim_self(Completion::Done.token(branch)) {
            return Registration::Lost(message);
        }
        // Claimed: no notifier can take this waiter any more, so the
        // attempt below cannot pair with one of its own entries (they are
        // skipped as no longer waiting).
        match state.try_send(message, self.capacity) {
            Ok(receiver) => {
                drop(state);
                if let Some(receiver) = receiver {
                    receiver.wake();
                }
                Registration::Completed(Ok(()))
            }
            Err(TrySendError::Disconnected(message)) => Registration::Completed(Err(message)),
            Err(TrySendError::Full(message)) => Registration::Retry(message),
        }
    }

    /// A select's receive branch: like [`Chan::register_send`], parking
    /// with `slot` (empty) for the message.
    ///
    /// Completed with `None` if every sender is gone and the buffer empty.
    pub(crate) fn register_recv(
        &self,
        slot: &Mailbox<T>,
        waiter: &Waiter,
        branch: usize,
    ) -> Registration<Option<T>, ()> {
        let mut state = self.lock();
        if !state.recv_ready(waiter) {
            state.park_receiver(slot, waiter, branch);
            return Registration::Parked;
        }
        if !waiter.claim_self(Completion::Done.token(branch)) {
            return Registration::Lost(());
        }
        match state.try_recv(self.capacity) {
            Ok((message, sender)) => {
                drop(state);
                if let Some(sender) = sender {
                    sender.wake();
                }
                Registration::Completed(Some(message))
            }
            Err(TryRecvError::Disconnected) => Registration::Completed(None),
            Err(TryRecvError::Empty) => Registration::Retry(()),
        }
    }

    /// Takes back a parked send whose waiter was not claimed for it
    /// (timeout, cancellation, another branch won): removes the waiter's
    /// entries. Nothing was sent; the message is still in its slot.
    pub(crate) fn withdraw_send(&self, waiter: &Waiter) {
        self.lock().senders_waiting.remove(waiter);
    }

    /// Takes back a parked receive whose waiter was not claimed for it.
    /// Nothing was received.
    pub(crate) fn withdraw_recv(&self, waiter: &Waiter) {
        self.lock().receivers_waiting.remove(waiter);
    }
}

impl<T> ChanState<T> {
    /// Sends without waiting: to the oldest parked receiver (returned, to
    /// be woken after the lock is released), or into the buffer.
    fn try_send(&mut self, message: T, capacity: Option<usize>) -> Result<Option<Wakeup>, TrySendError<T>> {
        if self.receivers == 0 {
            return Err(TrySendError::Disconnected(message));
        }
        let mut message = Some(message);
        if let Some(receiver) = self.receivers_waiting.pop_claimed_with(|r| r.claim_giving(&mut message)) {
            return Ok(Some(receiver));
        }
        let message = message.expect("the message stays here until a claim succeeds");
        // A sender that finds room enters no queue and claims no waiter,
        // yet it may send again later: it counts as a use of the channel by
        // whoever may wait to receive (see `sync/wait/touch.rs`). (A claim above
        // counted already.)
        self.receivers_waiting.touched_by(Context::with(Context::home));
        if capacity.is_none_or(|capacity| self.buffer.len() < capacity) {
            self.buffer.push_back(message);
            return Ok(None);
        }
        Err(TrySendError::Full(message))
    }

    /// Receives without waiting: the oldest buffered message (then the
    /// place it freed goes to the oldest parked sender, returned to be
    /// woken), or, on a rendezvous channel, the message of the oldest
    /// parked sender.
    fn try_recv(&mut self, capacity: Option<usize>) -> Result<(T, Option<Wakeup>), TryRecvError> {
        let mut taken = None;
        if let Some(message) = self.buffer.pop_front() {
            // A use of the channel by whoever may wait to send, as in
            // `try_send`.
            self.senders_waiting.touched_by(Context::with(Context::home));
            let sender = self.senders_waiting.pop_claimed_with(|s| s.claim_taking(&mut taken));
            if let Some(refill) = taken {
                self.buffer.push_back(refill);
            }
            return Ok((message, sender));
        }
        // With a buffer, senders wait only while it is full (every receive
        // refills it from the oldest one), so none waits now: only a
        // rendezvous channel hands over from a parked sender here.
        if capacity == Some(0)
            && let Some(sender) = self.senders_waiting.pop_claimed_with(|s| s.claim_taking(&mut taken))
        {
            let message = taken.expect("a parked sender's slot holds its message");
            return Ok((message, Some(sender)));
        }
        debug_assert!(
            capacity == Some(0) || !self.senders_waiting.any_waiting(),
            "a sender waits only while the buffer is full"
        );
        if self.senders == 0 { Err(TryRecvError::Disconnected) } else { Err(TryRecvError::Empty) }
    }

    /// Whether a send by `waiter` could complete now, not counting its own
    /// parked receive (a select may have both on one channel).
    fn send_ready(&mut self, waiter: &Waiter, capacity: Option<usize>) -> bool {
        self.receivers == 0
            || capacity.is_none_or(|capacity| self.buffer.len() < capacity)
            || has_other_waiting(&mut self.receivers_waiting, waiter)
    }

    /// Whether a receive by `waiter` could complete now, not counting its
    /// own parked send.
    fn recv_ready(&mut self, waiter: &Waiter) -> bool {
        !self.buffer.is_empty() || self.senders == 0 || has_other_waiting(&mut self.senders_waiting, waiter)
    }

    /// Parks a send, its message in `slot`, at the back of the senders'
    /// queue.
    fn park_sender(&mut self, slot: &Mailbox<T>, waiter: &Waiter, branch: usize) {
        self.senders_waiting.push(Parked {
            handle: Handle::Shared(waiter.handle()),
            slot: slot.as_ptr(),
            branch,
        });
    }

    /// Parks a receive, with `slot` (empty) for the message.
    fn park_receiver(&mut self, slot: &Mailbox<T>, waiter: &Waiter, branch: usize) {
        self.receivers_waiting.push(Parked {
            handle: Handle::Shared(waiter.handle()),
            slot: slot.as_ptr(),
            branch,
        });
    }
}

/// Empties `queue`, claiming every party still waiting with
/// `Disconnected`: the other side is gone. Returns them, to be woken once
/// the lock is released.
fn disconnect<T>(queue: &mut WaitQueue<Parked<T>>) -> Vec<Wakeup> {
    queue.drain().filter_map(Parked::claim_disconnected).collect()
}

/// Whether `queue` holds a waiting entry of someone other than `waiter`.
///
/// The first waiting entry decides, unless it is `waiter`'s own: a select
/// with a send and a receive on one channel has an entry in both of its
/// queues, and must not count itself as its own partner. Then the entries
/// behind it are looked at, by taking the queue apart and putting it back
/// in order: rare, and O(n).
fn has_other_waiting<T>(queue: &mut WaitQueue<Parked<T>>, waiter: &Waiter) -> bool {
    match queue.front_waiting() {
        None => false,
        Some(front) if !front.waiter().is_some_and(|handle| handle.is_for(waiter)) => true,
        Some(_) => {
            let entries: Vec<Parked<T>> = queue.drain().collect();
            let found = entries.iter().any(|entry| match entry.waiter() {
                Some(handle) => handle.is_waiting() && !handle.is_for(waiter),
                None => true,
            });
            entries.into_iter().for_each(|entry| queue.push(entry));
            found
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_the_branch_and_the_completion() {
        for branch in [0, 1, 7, 1000] {
            for completion in [Completion::Done, Completion::Disconnected] {
                assert_eq!(Completion::of(completion.token(branch)), (branch, completion));
            }
        }
    }

    #[test]
    fn a_select_does_not_pair_with_its_own_entry() {
        let chan = Chan::<u8>::new(Some(0));
        let waiter = Waiter::new();
        let receive = Mailbox::new(None);
        let mut send = Mailbox::new(None);
        assert!(matches!(chan.register_recv(&receive, &waiter, 0), Registration::Parked));
        // The only parked receiver is the select itself: the send branch
        // parks instead of handing its message to its own receive.
        assert!(matches!(chan.register_send(5, &mut send, &waiter, 1), Registration::Parked));
        assert!(waiter.claimed().is_none());
        chan.withdraw_send(&waiter);
        chan.withdraw_recv(&waiter);
        assert_eq!(send.into_inner(), Some(5));
        assert_eq!(receive.into_inner(), None);
        let state = chan.lock();
        assert!(state.senders_waiting.is_empty() && state.receivers_waiting.is_empty());
    }

    #[test]
    fn a_select_finds_a_partner_behind_its_own_entry() {
        let chan = Chan::<u8>::new(Some(0));
        let select = Waiter::new();
        let other = Waiter::new();
        let own = Mailbox::new(None);
        let theirs = Mailbox::new(None);
        let mut send = Mailbox::new(None);
        assert!(matches!(chan.register_recv(&own, &select, 0), Registration::Parked));
        chan.lock().park_receiver(&theirs, &other, 0);
        match chan.register_send(9, &mut send, &select, 1) {
            Registration::Completed(Ok(())) => {}
            other => panic!("the other receiver is waiting, got {other:?}"),
        }
        assert_eq!(select.claimed(), Some(Completion::Done.token(1)));
        assert_eq!(other.claimed(), Some(Completion::Done.token(0)));
        chan.withdraw_recv(&select);
        drop((select, other));
        assert_eq!(theirs.into_inner(), Some(9));
        assert_eq!(own.into_inner(), None);
        assert_eq!(send.into_inner(), None);
        assert!(chan.lock().receivers_waiting.is_empty());
    }
}
