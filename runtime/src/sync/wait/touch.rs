//! Who has used a primitive: its own runtime only, or also another thread
//! or runtime. The deadlock report needs it. And what the primitive is,
//! and for a lock who holds it: the task dump needs that.
//!
//! A runtime whose coroutines are all parked, with no timer armed and no
//! I/O awaited, is deadlocked unless something outside it can still wake
//! one of them. A coroutine parked on a channel or a lock can be woken by
//! any thread that holds a handle to that primitive; the runtime cannot
//! see who holds handles, but it can see who has *used* the primitive.
//! Every [`WaitQueue`](super::waiter::WaitQueue) keeps a [`Touch`]: the id
//! of the first runtime that queued a waiter in it or claimed one from it,
//! turned into [`SHARED`] as soon as anybody else does (a plain thread, or
//! a coroutine of another runtime). A wait on a primitive that is still
//! its own runtime's alone counts as local: see `Scheduler::stall` for
//! what the runtime does with that, and for what it cannot see (a handle
//! moved to a thread that has not used it yet).
//!
//! The workers of a runtime of several record one identity, the
//! runtime's (`Context::home`): a channel between two of them is the
//! runtime's own, and a deadlock across workers is still seen
//! (`board.rs`).
//!
//! # What the dump reads here
//!
//! A parked coroutine's task record points at the touch of the queue it
//! waits in (`TaskCell::waits_on`), so the touch also says what the wait
//! is, for nothing at park time:
//!
//! * its `WaitKind`, given when the primitive is made (a channel's two
//!   queues are `ChannelSend` and `ChannelRecv`), and changed at most
//!   once, before the primitive is shared, by the runtime's own users of
//!   channels and semaphores (the blocking pool, the workers' bells);
//! * for a [`Mutex`](crate::sync::Mutex) or an
//!   [`RwLock`](crate::sync::RwLock), where the lock's [`Holder`] is: a
//!   word in the lock itself, written on every acquire (two instructions:
//!   see [`Holder`]), whose address each waiter stores here as it queues.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU64, AtomicUsize, Ordering};

/// Nobody has queued or claimed a waiter yet.
const UNTOUCHED: u64 = 0;
/// Used from more than one runtime or thread.
const SHARED: u64 = u64::MAX;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Touch {
    /// `UNTOUCHED`, the id of the one runtime that has used the primitive,
    /// or `SHARED`. Only ever moves forward: UNTOUCHED → id → SHARED.
    home: AtomicU64,
    /// What waiting here is, for the task dump: a `WaitKind as u8` (kept
    /// as a number so that this leaf module depends on nothing).
    kind: AtomicU8,
    /// The holder word of the lock this queue belongs to, stored by every
    /// waiter as it queues (null for primitives that have no holder): the
    /// task dump reads it while a waiter is parked, which borrows the lock,
    /// so the address is current (see [`Touch::holder`]).
    holder: AtomicPtr<Holder>,
}

impl Touch {
    /// A primitive nobody has used, waiting on which is a wait of kind
    /// `kind` (a `WaitKind as u8`).
    pub(crate) const fn new(kind: u8) -> Touch {
        Touch {
            home: AtomicU64::new(UNTOUCHED),
            kind: AtomicU8::new(kind),
            holder: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Records a use by the runtime `runtime` (its id, never 0), or by a
    /// plain thread (`None`).
    #[inline]
    pub(crate) fn by(&self, runtime: Option<u64>) {
        let me = runtime.unwrap_or(SHARED);
        let home = self.home.load(Ordering::Relaxed);
        if home != me {
            self.by_another(home, me);
        }
    }

    #[cold]
    fn by_another(&self, home: u64, me: u64) {
        if home == UNTOUCHED
            && self.home.compare_exchange(UNTOUCHED, me, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            return;
        }
        if self.home.load(Ordering::Relaxed) != me {
            self.home.store(SHARED, Ordering::Relaxed);
        }
    }

    /// Whether anybody but one runtime has used the primitive.
    pub(crate) fn is_shared(&self) -> bool {
        self.home.load(Ordering::Relaxed) == SHARED
    }

    /// What waiting here is (a `WaitKind as u8`).
    pub(crate) fn kind(&self) -> u8 {
        self.kind.load(Ordering::Relaxed)
    }

    /// Makes waiting here a wait of kind `kind` (a `WaitKind as u8`): for a
    /// primitive the runtime makes for itself (the blocking pool's result
    /// channel, a worker's bell), before anyone waits on it.
    pub(crate) fn set_kind(&self, kind: u8) {
        self.kind.store(kind, Ordering::Relaxed);
    }

    /// Records where the holder word of this queue's lock is; called by
    /// every waiter of a lock as it queues, under the queue's lock.
    #[inline]
    pub(crate) fn held_in(&self, holder: &Holder) {
        self.holder.store(std::ptr::from_ref(holder).cast_mut(), Ordering::Relaxed);
    }

    /// Who holds the lock this queue belongs to, as its holder word says;
    /// [`HeldBy::Nobody`] for a primitive that has no holder.
    ///
    /// # Safety
    ///
    /// A coroutine must be parked in this queue now, on the calling thread,
    /// and no coroutine of that thread may run during the call: the parked
    /// wait then borrows the lock, which therefore neither moved nor died
    /// since that waiter stored the holder's address here, nor since any
    /// later waiter did (they borrowed the same lock at the same place).
    pub(crate) unsafe fn holder(&self) -> HeldBy {
        let holder = self.holder.load(Ordering::Relaxed);
        if holder.is_null() {
            return HeldBy::Nobody;
        }
        // SAFETY: by this function's contract the lock the pointer was taken from is alive and in place.
        unsafe { &*holder }.get()
    }
}

/// Who holds a lock, as far as the lock knows: for the task dump (see the
/// module documentation). One word in the lock, written with a relaxed
/// store by whoever takes it:
///
/// * by the taker itself (the fast path): the address of a local variable
///   of the taking function, which lies on the stack of the coroutine that
///   takes it (or of the thread). Two instructions, where asking the
///   runtime which coroutine runs would be a dozen; the dump matches the
///   address against the stacks of the coroutines it lists;
/// * by a hand-off, for the waiter it hands the lock to: that coroutine's
///   id, tagged with the low bit (a stack address is even), or
///   [`HeldBy::Thread`]'s mark for a plain thread.
///
/// A lock released without waiters keeps its last holder's mark: a waiter
/// exists only while the lock is held, so a dump that reads it for a
/// parked waiter reads the current holder, give or take a hand-off in
/// progress. An `RwLock` clears it when its writer leaves, and readers
/// leave none.
#[derive(Debug)]
pub(crate) struct Holder(AtomicUsize);

/// The mark of a plain thread handed the lock (odd, and no id is this big).
const THREAD_MARK: usize = usize::MAX;

impl Holder {
    /// Nobody has held the lock.
    pub(crate) const fn new() -> Holder {
        Holder(AtomicUsize::new(0))
    }

    /// The caller has just taken the lock (the fast path): records where
    /// its stack is.
    #[inline(always)]
    pub(crate) fn taken_here(&self) {
        let here = 0u64;
        self.0.store(std::ptr::addr_of!(here).addr(), Ordering::Relaxed);
    }

    /// The lock was handed to the coroutine with id `task`, or to a plain
    /// thread (`None`).
    #[inline]
    pub(crate) fn handed_to(&self, task: Option<u64>) {
        let mark = task.map_or(THREAD_MARK, |id| (id as usize) << 1 | 1);
        self.0.store(mark, Ordering::Relaxed);
    }

    /// Nobody holds the lock now (an `RwLock`'s writer left).
    #[inline]
    pub(crate) fn clear(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// What the word says.
    pub(crate) fn get(&self) -> HeldBy {
        match self.0.load(Ordering::Relaxed) {
            0 => HeldBy::Nobody,
            THREAD_MARK => HeldBy::Thread,
            mark if mark & 1 == 1 => HeldBy::Task(mark as u64 >> 1),
            address => HeldBy::Stack(address),
        }
    }
}

/// What a [`Holder`] word says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeldBy {
    /// Nobody known (never held, or held by readers).
    Nobody,
    /// Whoever's stack holds this address: a coroutine, whose stack bounds
    /// the dump knows, or a thread.
    Stack(usize),
    /// The coroutine with this id (the lock was handed to it).
    Task(u64),
    /// A plain thread (the lock was handed to it).
    Thread,
}

/// What a wait's queues were: the one queue's touch, or [`several`] for a
/// wait in more than one queue (a select), or null for none. Recorded by
/// the waiter when it is queued, handed to its task for the wait.
pub(crate) type QueueMark = *const Touch;

/// The mark of a wait in more than one queue: a pointer that is never a
/// touch's address, and never dereferenced.
pub(crate) fn several() -> QueueMark {
    NonNull::<Touch>::dangling().as_ptr()
}

/// Adds the queue whose touch is `touch` to the mark `mark`.
#[inline]
pub(crate) fn mark_queue(mark: QueueMark, touch: &Touch) -> QueueMark {
    if mark.is_null() || std::ptr::eq(mark, touch) { touch } else { several() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_runtime_alone_keeps_it_local() {
        let touch = Touch::new(0);
        touch.by(Some(3));
        touch.by(Some(3));
        assert!(!touch.is_shared());
    }

    #[test]
    fn another_runtime_or_a_thread_shares_it_for_good() {
        let touch = Touch::new(0);
        touch.by(Some(3));
        touch.by(Some(4));
        assert!(touch.is_shared());
        touch.by(Some(3));
        assert!(touch.is_shared(), "never goes back");
        let touch = Touch::new(0);
        touch.by(None);
        assert!(touch.is_shared(), "a plain thread shares it at once");
    }

    #[test]
    fn a_holder_word_tells_stacks_tasks_and_threads_apart() {
        let holder = Holder::new();
        assert_eq!(holder.get(), HeldBy::Nobody);
        holder.taken_here();
        assert!(matches!(holder.get(), HeldBy::Stack(address) if address % 8 == 0 && address != 0));
        holder.handed_to(Some(42));
        assert_eq!(holder.get(), HeldBy::Task(42));
        holder.handed_to(None);
        assert_eq!(holder.get(), HeldBy::Thread);
        holder.clear();
        assert_eq!(holder.get(), HeldBy::Nobody);
    }

    #[test]
    fn runtimes_racing_for_an_untouched_primitive_share_it() {
        let touch = std::sync::Arc::new(Touch::new(0));
        let threads: Vec<_> = (1..=4u64)
            .map(|id| {
                let touch = touch.clone();
                std::thread::spawn(move || touch.by(Some(id)))
            })
            .collect();
        for thread in threads {
            thread.join().expect("no panic");
        }
        assert!(touch.is_shared());
    }
}
