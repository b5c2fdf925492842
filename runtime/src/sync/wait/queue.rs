//! The queue every primitive keeps its waiters in, oldest first
//! ([`WaitQueue`]), the same behind a short-held std mutex for the locks
//! ([`LockedQueue`]), and the waiters claimed under a primitive's lock, to
//! be woken once it is released ([`Woken`]).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::touch::{Holder, Touch};
use super::waiter::{Waiter, WaiterHandle};
use crate::context::Context;
use crate::dump::kind::WaitKind;

/// Anything that sits in a [`WaitQueue`]: an entry holding a waiter.
pub(crate) trait Entry {
    /// The shared waiter this entry belongs to; `None` for the entry of a
    /// sole waiter (`sole.rs`), which is waiting for as long as it is
    /// queued.
    fn waiter(&self) -> Option<&WaiterHandle>;

    /// Tells the entry's waiter, as it is queued, which queue it is in
    /// (see `touch.rs`).
    #[inline]
    fn queued_in(&self, touch: &Touch) {
        if let Some(handle) = self.waiter() {
            handle.queued_in(touch);
        }
    }
}

impl Entry for WaiterHandle {
    fn waiter(&self) -> Option<&WaiterHandle> {
        Some(self)
    }
}

/// A FIFO of waiting entries, kept inside a primitive's locked state.
///
/// The oldest entry is kept apart, in `first`, when it arrived while the
/// queue was empty: a primitive with one waiter at a time (a channel
/// between two parties, a lock with one contender) then never moves an
/// entry through the `VecDeque`, whose push and pop each cost a few dozen
/// instructions. `first`, when set, is older than anything in `rest`.
#[derive(Debug)]
pub(crate) struct WaitQueue<E> {
    /// The oldest entry, if it arrived while the queue was empty.
    first: Option<E>,
    /// Every other entry, oldest first.
    rest: VecDeque<E>,
    /// Which runtimes and threads have queued or claimed waiters here:
    /// whether a wait here can be ended from outside its runtime; and what
    /// waiting here is, for the task dump (see `touch.rs`).
    touch: Touch,
}

impl<E> WaitQueue<E> {
    /// An empty queue whose waits are of kind `kind` (usable in `const`
    /// constructors).
    pub(crate) const fn new(kind: WaitKind) -> WaitQueue<E> {
        WaitQueue { first: None, rest: VecDeque::new(), touch: Touch::new(kind as u8) }
    }

    /// Makes the waits here waits of kind `kind` (see `Touch::set_kind`).
    pub(crate) fn set_kind(&self, kind: WaitKind) {
        self.touch.set_kind(kind as u8);
    }

    /// Records, for the task dump, where the holder word of the lock this
    /// queue belongs to lies: every waiter of a lock calls it as it queues
    /// (see `touch.rs`).
    #[inline]
    pub(crate) fn held_in(&self, holder: &Holder) {
        self.touch.held_in(holder);
    }

    /// Removes and returns the oldest entry.
    #[inline]
    fn pop_front(&mut self) -> Option<E> {
        match self.first.take() {
            Some(entry) => Some(entry),
            None => self.rest.pop_front(),
        }
    }

    /// The oldest entry.
    #[inline]
    fn front(&self) -> Option<&E> {
        self.first.as_ref().or_else(|| self.rest.front())
    }
}

impl<E: Entry> WaitQueue<E> {
    /// Adds an entry at the back, for the caller, which is about to wait.
    #[inline(always)]
    pub(crate) fn push(&mut self, entry: E) {
        entry.queued_in(&self.touch);
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(entry);
        } else {
            self.rest.push_back(entry);
        }
    }

    /// Removes and returns the oldest entry whose waiter `claim` accepts:
    /// `claim` is called on each entry in order (entries whose waiter is no
    /// longer waiting are dropped on the way) and claims the waiter itself,
    /// typically with [`WaiterHandle::claim`] and a token. The caller wakes
    /// the returned entry's waiter.
    pub(crate) fn pop_claimed(&mut self, mut claim: impl FnMut(&E) -> bool) -> Option<E> {
        self.pop_claimed_with(|entry| claim(&entry).then_some(entry))
    }

    /// Pops entries, oldest first, until `claim` (which consumes each one,
    /// and claims its waiter) returns something, and returns that. Like
    /// [`WaitQueue::pop_claimed`] for a claim that returns how to wake
    /// the waiter.
    #[inline]
    pub(crate) fn pop_claimed_with<W>(&mut self, mut claim: impl FnMut(E) -> Option<W>) -> Option<W> {
        if self.first.is_none() && self.rest.is_empty() {
            return None;
        }
        self.touch.by(Context::with(Context::home));
        while let Some(entry) = self.pop_front() {
            if let Some(claimed) = claim(entry) {
                return Some(claimed);
            }
        }
        None
    }

    /// Records a use of the primitive by `runtime` (`None`: a plain
    /// thread) that enters no queue (see `touch.rs`).
    #[inline]
    pub(crate) fn touched_by(&self, runtime: Option<u64>) {
        self.touch.by(runtime);
    }

    /// The oldest entry that is still waiting, without removing it (entries
    /// that are not are dropped on the way).
    pub(crate) fn front_waiting(&mut self) -> Option<&E> {
        if self.first.is_some() || !self.rest.is_empty() {
            self.touch.by(Context::with(Context::home));
        }
        while let Some(entry) = self.front() {
            if entry.waiter().is_none_or(WaiterHandle::is_waiting) {
                break;
            }
            self.pop_front();
        }
        self.front()
    }

    /// Whether any entry is still waiting (leaves the queue as it is).
    pub(crate) fn any_waiting(&self) -> bool {
        self.first.iter().chain(&self.rest).any(|entry| entry.waiter().is_none_or(WaiterHandle::is_waiting))
    }

    /// Removes every entry of `waiter` (after it gave up).
    pub(crate) fn remove(&mut self, waiter: &Waiter) {
        self.remove_where(|entry| entry.waiter().is_some_and(|handle| handle.is_for(waiter)));
    }

    /// Removes every entry `which` picks.
    pub(crate) fn remove_where(&mut self, which: impl Fn(&E) -> bool) {
        if self.first.as_ref().is_some_and(&which) {
            self.first = None;
        }
        self.rest.retain(|entry| !which(entry));
    }

    /// Whether no entry is queued (waiting or not).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    /// Entries queued, including ones no longer waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Removes and returns every entry, oldest first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = E> + '_ {
        self.first.take().into_iter().chain(self.rest.drain(..))
    }
}

/// A primitive's queue of waiting entries, behind its own std mutex: the
/// waiting room of a lock.
#[derive(Debug)]
pub(crate) struct LockedQueue<E> {
    /// The entries, oldest first.
    inner: Mutex<WaitQueue<E>>,
}

/// The locked queue.
pub(crate) type Locked<'a, E> = MutexGuard<'a, WaitQueue<E>>;

impl<E> LockedQueue<E> {
    /// An empty queue whose waits are of kind `kind`.
    pub(crate) const fn new(kind: WaitKind) -> LockedQueue<E> {
        LockedQueue { inner: Mutex::new(WaitQueue::new(kind)) }
    }

    /// Locks the queue. The lock is held for short, non-blocking sections
    /// only and nothing in them panics, so a poisoned std mutex (which
    /// cannot happen) would still guard a consistent queue.
    pub(crate) fn lock(&self) -> Locked<'_, E> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Waiters claimed under a primitive's lock, to be woken once it is
/// released. Holds the first one inline: most releases wake one waiter,
/// and that should not allocate.
#[derive(Debug, Default)]
pub(crate) struct Woken {
    /// The first waiter claimed.
    first: Option<WaiterHandle>,
    /// Any others, in the order they were claimed.
    rest: Vec<WaiterHandle>,
}

impl Woken {
    /// Adds a claimed waiter.
    pub(crate) fn push(&mut self, waiter: WaiterHandle) {
        if self.first.is_none() {
            self.first = Some(waiter);
        } else {
            self.rest.push(waiter);
        }
    }

    /// Wakes them all, oldest claim first. Call after releasing the lock.
    pub(crate) fn wake(self) {
        if let Some(first) = self.first {
            first.wake();
        }
        for waiter in self.rest {
            waiter.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::sync::wait::party::Outcome;
    use crate::sync::wait::waiter::Waiter;

    /// An entry that is always waiting, known by its number.
    #[derive(Debug, PartialEq)]
    struct Numbered(u32);

    impl Entry for Numbered {
        fn waiter(&self) -> Option<&WaiterHandle> {
            None
        }
    }

    #[test]
    fn the_queue_keeps_arrival_order_whether_an_entry_waits_apart_or_not() {
        let mut queue = WaitQueue::new(WaitKind::Unknown);
        // The first entry of an empty queue waits apart; the next ones
        // queue behind it.
        (0..3).for_each(|n| queue.push(Numbered(n)));
        assert_eq!(queue.pop_claimed(|_| true), Some(Numbered(0)));
        // With the one apart gone and others still queued, a newcomer goes
        // behind them, not apart.
        queue.push(Numbered(3));
        assert_eq!(queue.front_waiting(), Some(&Numbered(1)));
        // Removing the front (apart or not) keeps the order of the rest.
        queue.remove_where(|entry| entry.0 == 1);
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.drain().collect::<Vec<_>>(), [Numbered(2), Numbered(3)]);
        assert!(queue.is_empty());
        queue.push(Numbered(4));
        queue.push(Numbered(5));
        queue.remove_where(|entry| entry.0 == 4);
        queue.push(Numbered(6));
        let claimed = queue.pop_claimed_with(|entry| (entry.0 > 5).then_some(entry.0));
        assert_eq!(claimed, Some(6), "entries the claim refuses are dropped on the way");
        assert!(queue.is_empty());
    }

    #[test]
    fn the_queue_skips_waiters_that_are_gone() {
        let first = Waiter::new();
        let second = Waiter::new();
        let mut queue = WaitQueue::new(WaitKind::Unknown);
        queue.push(first.handle());
        queue.push(second.handle());
        assert_eq!(first.wait(Some(Instant::now())), Outcome::TimedOut);
        let claimed = queue.pop_claimed(|entry| entry.claim(0)).expect("the second is waiting");
        assert!(claimed.is_for(&second));
        assert!(queue.is_empty());
        queue.push(second.handle());
        queue.remove(&second);
        assert_eq!(queue.len(), 0);
    }
}
