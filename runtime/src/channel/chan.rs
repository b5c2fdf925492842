//! The shared core of a channel: its locked state, and every operation that
//! moves a message, whether the caller waits or not. `Sender`, `Receiver`
//! and `Select` are thin layers over it. The protocol is in the module docs
//! of [`channel`](super); this file is where it is enforced.
//!
//! # Who touches which field
//!
//! Everything is in [`State`], behind one [`SpinLock`] that is held
//! only for short, non-blocking sections: no user code runs under it, no
//! message is dropped under it (a message's destructor could touch this
//! very channel), and nothing waits under it.
//!
//! | field | written by, under the lock |
//! |---|---|
//! | `buffer` | senders (push), receivers (pop; refill from the oldest parked sender), the last receiver's drop (takes it all, drops it after unlocking) |
//! | `senders_waiting` | a sender parking (push), receivers (claim the oldest), its owner giving up (remove), the last receiver's drop (claims all) |
//! | `receivers_waiting` | a receiver parking (push), senders (claim the oldest), its owner giving up (remove), the last sender's drop (claims all) |
//! | `slots` | see below |
//! | `senders`, `receivers` | handle clones and drops |
//!
//! An entry whose waiter is no longer waiting (it gave up, or a select
//! took another branch) may linger in its queue until a notifier skips it
//! or its owner withdraws it; "parked" below means still waiting.
//!
//! # Message slots and who frees them
//!
//! A parked party's message lives in `slots`, a slab, named by the
//! `slot` of its queue entry. A sender parks with its message in the slot;
//! a receiver parks with the slot empty. The slot is freed exactly once:
//!
//! | parked party | ended by | slot freed by |
//! |---|---|---|
//! | sender | a receiver's claim, `Done` | that receiver, taking the message |
//! | sender | the last receiver's drop, `Disconnected` | the sender, taking its message back |
//! | receiver | a sender's claim, `Done` | the receiver, taking the message the sender put there |
//! | receiver | the last sender's drop, `Disconnected` | that drop (the slot is empty) |
//! | either | its own timeout or cancellation, or another branch of its select | its owner, when it withdraws (a sender takes its message back) |
//!
//! A notifier whose claim fails leaves the entry's slot alone: it belongs
//! to a waiter that is gone or taken elsewhere, which will free it.
//!
//! Keeping the slots in the locked state, rather than in a per-wait
//! allocation shared with the waiter, costs a parked receiver one more
//! lock when it wakes, and saves an allocation on every park.
//!
//! # A coroutine unwound in the middle of a wait
//!
//! At shutdown the runtime tears down parked coroutines by unwinding their
//! stacks from inside `park`, so `Waiter::wait` never returns to the code
//! after it. An [`Unwinding`] guard, armed around every wait, settles the
//! parked operation as an abandoned wait would: the waiter claims itself
//! with [`UNWOUND`], which shuts every notifier out, and withdraws its
//! entries (a parked message is dropped); if a notifier had claimed it
//! first, the operation is finished as usual and its result dropped.
//! Without this, the entry of a dead receiver would stay queued, and the
//! next sender would hand its message to it: lost.

use crate::sync::spin::{SpinGuard, SpinLock};
use std::collections::VecDeque;
use std::mem;
use std::time::Instant;

use slab::Slab;

use super::error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use crate::sync::waiter::{Entry, Outcome, WaitQueue, Waiter, WaiterHandle};

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

/// A parked party, in a queue of [`State`].
#[derive(Debug)]
struct Parked {
    /// Whom to claim and wake.
    waiter: WaiterHandle,
    /// Its message slot in [`State::slots`].
    slot: usize,
    /// Which of the waiter's operations this is: the branch of a select,
    /// 0 for a plain send or receive. Goes into the claim's token.
    branch: usize,
}

impl Entry for Parked {
    fn waiter(&self) -> &WaiterHandle {
        &self.waiter
    }
}

/// Claims a parked party for `completion`, with its branch's token.
fn claim(completion: Completion) -> impl FnMut(&Parked) -> bool {
    move |parked| parked.waiter.claim(completion.token(parked.branch))
}

/// The token a waiter claims itself with when its coroutine is unwound
/// from inside the wait (see the module docs). No select has that many
/// branches, and nobody decodes it.
const UNWOUND: usize = usize::MAX >> 1;

/// The token of the claim that ended the wait of a coroutine being unwound
/// from inside it, if a notifier claimed it first; `None` if the waiter
/// shut every notifier out (then nothing happened).
pub(crate) fn settle_unwound(waiter: &Waiter) -> Option<usize> {
    if waiter.handle().claim(UNWOUND) { None } else { waiter.claimed() }
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
struct State<T> {
    /// Messages sent and not yet received, oldest first. Never longer than
    /// the capacity.
    buffer: VecDeque<T>,
    /// Parked senders, oldest first. Their messages wait in `slots`. Only
    /// while the buffer is full (always, for a rendezvous channel).
    senders_waiting: WaitQueue<Parked>,
    /// Parked receivers, oldest first. Only while the buffer is empty.
    receivers_waiting: WaitQueue<Parked>,
    /// The message slots of parked parties (see the module docs).
    slots: Slab<Option<T>>,
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
    state: SpinLock<State<T>>,
}

/// What [`Chan::register_send`] and [`Chan::register_recv`] did with one
/// branch of a select.
#[derive(Debug)]
pub(crate) enum Registration<R, V> {
    /// The operation was possible at once: the select's waiter claimed
    /// itself for this branch, and the operation is done with result `R`.
    Completed(R),
    /// Parked: an entry with this message slot is in the queue.
    Parked(usize),
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
            state: SpinLock::new(State {
                buffer: VecDeque::new(),
                senders_waiting: WaitQueue::default(),
                receivers_waiting: WaitQueue::default(),
                slots: Slab::new(),
                senders: 1,
                receivers: 1,
            }),
        }
    }

    /// Locks the state (no user code runs and nothing waits under it).
    fn lock(&self) -> SpinGuard<'_, State<T>> {
        self.state.lock()
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
        let state = &mut *guard;
        let mut woken = Vec::new();
        for receiver in state.receivers_waiting.drain() {
            if claim(Completion::Disconnected)(&receiver) {
                let message = state.slots.remove(receiver.slot);
                debug_assert!(message.is_none(), "a parked receiver's slot is empty until a claim");
                woken.push(receiver.waiter);
            }
        }
        drop(guard);
        woken.iter().for_each(WaiterHandle::wake);
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
        let woken: Vec<WaiterHandle> = guard
            .senders_waiting
            .drain()
            .filter(|sender| claim(Completion::Disconnected)(sender))
            .map(|sender| sender.waiter)
            .collect();
        drop(guard);
        woken.iter().for_each(WaiterHandle::wake);
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
        let (message, sender) = state.try_recv()?;
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
        let waiter = Waiter::new();
        let slot = state.park_sender(message, &waiter, 0);
        drop(state);
        let unwinding = Unwinding::new(|| match settle_unwound(&waiter) {
            None => drop(self.withdraw_send(&waiter, slot)),
            Some(token) => drop(self.sent(slot, Completion::of(token).1)),
        });
        let outcome = waiter.wait(deadline);
        unwinding.disarm();
        match outcome {
            Outcome::Claimed(token) => {
                let (branch, completion) = Completion::of(token);
                debug_assert_eq!(branch, 0, "a plain send has one branch");
                self.sent(slot, completion).map_err(SendTimeoutError::Disconnected)
            }
            Outcome::TimedOut => Err(SendTimeoutError::Timeout(self.withdraw_send(&waiter, slot))),
            Outcome::Cancelled => Err(SendTimeoutError::Cancelled(self.withdraw_send(&waiter, slot))),
        }
    }

    /// Receives, waiting for a message until `deadline`.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut state = self.lock();
        match state.try_recv() {
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
        let waiter = Waiter::new();
        let slot = state.park_receiver(&waiter, 0);
        drop(state);
        let unwinding = Unwinding::new(|| match settle_unwound(&waiter) {
            None => self.withdraw_recv(&waiter, slot),
            Some(token) => drop(self.received(slot, Completion::of(token).1)),
        });
        let outcome = waiter.wait(deadline);
        unwinding.disarm();
        match outcome {
            Outcome::Claimed(token) => {
                let (branch, completion) = Completion::of(token);
                debug_assert_eq!(branch, 0, "a plain receive has one branch");
                self.received(slot, completion).ok_or(RecvTimeoutError::Disconnected)
            }
            Outcome::TimedOut => {
                self.withdraw_recv(&waiter, slot);
                Err(RecvTimeoutError::Timeout)
            }
            Outcome::Cancelled => {
                self.withdraw_recv(&waiter, slot);
                Err(RecvTimeoutError::Cancelled)
            }
        }
    }

    /// A select's send branch: does it at once if it can, after claiming
    /// `waiter` for `branch`; parks it otherwise.
    ///
    /// Completed with `Err(message)` if every receiver is gone.
    pub(crate) fn register_send(
        &self,
        message: T,
        waiter: &Waiter,
        branch: usize,
    ) -> Registration<Result<(), T>, T> {
        let mut state = self.lock();
        if !state.send_ready(waiter, self.capacity) {
            return Registration::Parked(state.park_sender(message, waiter, branch));
        }
        if !waiter.handle().claim(Completion::Done.token(branch)) {
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

    /// A select's receive branch: like [`Chan::register_send`].
    ///
    /// Completed with `None` if every sender is gone and the buffer empty.
    pub(crate) fn register_recv(&self, waiter: &Waiter, branch: usize) -> Registration<Option<T>, ()> {
        let mut state = self.lock();
        if !state.recv_ready(waiter) {
            return Registration::Parked(state.park_receiver(waiter, branch));
        }
        if !waiter.handle().claim(Completion::Done.token(branch)) {
            return Registration::Lost(());
        }
        match state.try_recv() {
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

    /// After a parked send was claimed: `Ok` if a receiver took the
    /// message, the message back if every receiver is gone.
    pub(crate) fn sent(&self, slot: usize, completion: Completion) -> Result<(), T> {
        match completion {
            // The receiver took the message and freed the slot.
            Completion::Done => Ok(()),
            Completion::Disconnected => Err(self.lock().take_slot(slot)),
        }
    }

    /// After a parked receive was claimed: the message a sender put in its
    /// slot, or `None` if every sender is gone (the drop freed the slot).
    pub(crate) fn received(&self, slot: usize, completion: Completion) -> Option<T> {
        match completion {
            Completion::Done => Some(self.lock().take_slot(slot)),
            Completion::Disconnected => None,
        }
    }

    /// Takes back a parked send whose waiter was not claimed for it
    /// (timeout, cancellation, another branch won): removes the waiter's
    /// entries and returns the message. Nothing was sent.
    pub(crate) fn withdraw_send(&self, waiter: &Waiter, slot: usize) -> T {
        let mut state = self.lock();
        state.senders_waiting.remove(waiter);
        state.take_slot(slot)
    }

    /// Takes back a parked receive whose waiter was not claimed for it.
    /// Nothing was received.
    pub(crate) fn withdraw_recv(&self, waiter: &Waiter, slot: usize) {
        let mut state = self.lock();
        state.receivers_waiting.remove(waiter);
        let message = state.slots.try_remove(slot);
        debug_assert!(
            matches!(message, Some(None)),
            "an unclaimed receiver's slot is still there, and empty"
        );
    }
}

impl<T> State<T> {
    /// Sends without waiting: to the oldest parked receiver (returned, to
    /// be woken after the lock is released), or into the buffer.
    fn try_send(
        &mut self,
        message: T,
        capacity: Option<usize>,
    ) -> Result<Option<WaiterHandle>, TrySendError<T>> {
        if self.receivers == 0 {
            return Err(TrySendError::Disconnected(message));
        }
        if let Some(receiver) = self.receivers_waiting.pop_claimed(claim(Completion::Done)) {
            let slot = self.slots.get_mut(receiver.slot).expect("a parked receiver has a slot");
            *slot = Some(message);
            return Ok(Some(receiver.waiter));
        }
        if capacity.is_none_or(|capacity| self.buffer.len() < capacity) {
            self.buffer.push_back(message);
            return Ok(None);
        }
        Err(TrySendError::Full(message))
    }

    /// Receives without waiting: the oldest buffered message (then the
    /// place it freed goes to the oldest parked sender, returned to be
    /// woken), or, with nothing buffered, the message of the oldest parked
    /// sender.
    fn try_recv(&mut self) -> Result<(T, Option<WaiterHandle>), TryRecvError> {
        if let Some(message) = self.buffer.pop_front() {
            let sender = self.senders_waiting.pop_claimed(claim(Completion::Done));
            let sender = sender.map(|sender| {
                let refill = self.take_slot(sender.slot);
                self.buffer.push_back(refill);
                sender.waiter
            });
            return Ok((message, sender));
        }
        if let Some(sender) = self.senders_waiting.pop_claimed(claim(Completion::Done)) {
            return Ok((self.take_slot(sender.slot), Some(sender.waiter)));
        }
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

    /// Parks a send: its message goes into a new slot, its entry at the
    /// back of the senders' queue. Returns the slot.
    fn park_sender(&mut self, message: T, waiter: &Waiter, branch: usize) -> usize {
        let slot = self.slots.insert(Some(message));
        self.senders_waiting.push(Parked { waiter: waiter.handle(), slot, branch });
        slot
    }

    /// Parks a receive with an empty slot. Returns the slot.
    fn park_receiver(&mut self, waiter: &Waiter, branch: usize) -> usize {
        let slot = self.slots.insert(None);
        self.receivers_waiting.push(Parked { waiter: waiter.handle(), slot, branch });
        slot
    }

    /// Frees a slot that holds a message and returns the message.
    fn take_slot(&mut self, slot: usize) -> T {
        self.slots
            .try_remove(slot)
            .flatten()
            .expect("the slot of a parked sender, or of a receiver a sender completed, holds a message")
    }
}

/// Whether `queue` holds a waiting entry of someone other than `waiter`.
///
/// The first waiting entry decides, unless it is `waiter`'s own: a select
/// with a send and a receive on one channel has an entry in both of its
/// queues, and must not count itself as its own partner. Then the entries
/// behind it are looked at, by taking the queue apart and putting it back
/// in order: rare, and O(n).
fn has_other_waiting(queue: &mut WaitQueue<Parked>, waiter: &Waiter) -> bool {
    match queue.front_waiting() {
        None => false,
        Some(front) if !front.waiter.is_for(waiter) => true,
        Some(_) => {
            let entries: Vec<Parked> = queue.drain().collect();
            let found = entries.iter().any(|entry| entry.waiter.is_waiting() && !entry.waiter.is_for(waiter));
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
        let slot = match chan.register_recv(&waiter, 0) {
            Registration::Parked(slot) => slot,
            other => panic!("nothing to receive yet, got {other:?}"),
        };
        // The only parked receiver is the select itself: the send branch
        // parks instead of handing its message to its own receive.
        let sent = match chan.register_send(5, &waiter, 1) {
            Registration::Parked(slot) => slot,
            other => panic!("no other receiver is waiting, got {other:?}"),
        };
        assert!(waiter.claimed().is_none());
        assert_eq!(chan.withdraw_send(&waiter, sent), 5);
        chan.withdraw_recv(&waiter, slot);
        assert!(chan.lock().slots.is_empty());
    }

    #[test]
    fn a_select_finds_a_partner_behind_its_own_entry() {
        let chan = Chan::<u8>::new(Some(0));
        let select = Waiter::new();
        let other = Waiter::new();
        let own = match chan.register_recv(&select, 0) {
            Registration::Parked(slot) => slot,
            other => panic!("got {other:?}"),
        };
        let theirs = chan.lock().park_receiver(&other, 0);
        match chan.register_send(9, &select, 1) {
            Registration::Completed(Ok(())) => {}
            other => panic!("the other receiver is waiting, got {other:?}"),
        }
        assert_eq!(select.claimed(), Some(Completion::Done.token(1)));
        assert_eq!(other.claimed(), Some(Completion::Done.token(0)));
        assert_eq!(chan.received(theirs, Completion::Done), Some(9));
        chan.withdraw_recv(&select, own);
        assert!(chan.lock().slots.is_empty());
    }
}
