//! The data of a shared waiter, [`Core`], and the per-runtime cache of
//! cores kept for reuse, [`Spares`]. Plain data and atomics: this module
//! depends on nothing above the inbox, so that a runtime's context can
//! hold its spares (see `waiter.rs` for the waiter built on it).

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, Thread};

use super::touch::Touch;
use crate::inbox::Inbox;
use crate::task::state::ParkRef;

/// Who waits: a coroutine, known as `T` (each waiter keeps what its
/// notifiers need to wake it), or an OS thread outside any runtime.
#[derive(Debug)]
pub(crate) enum Party<T> {
    /// A coroutine, parked in one epoch for the whole wait.
    Task(T),
    /// An OS thread outside any runtime, woken with `Thread::unpark`.
    Thread(Thread),
}

impl<T> Party<T> {
    /// The party for a plain thread: the calling one.
    pub(crate) fn this_thread() -> Party<T> {
        Party::Thread(thread::current())
    }
}

/// The waiter has not been claimed or abandoned yet.
pub(super) const WAITING: usize = usize::MAX;
/// The waiter gave up (timeout or cancellation) before any claim.
pub(super) const ABANDONED: usize = usize::MAX - 1;
/// A notifier has claimed the waiter and is moving a message into or out
/// of the waiter's slot ([`WaiterHandle::claim_with`]); the claim's token
/// replaces it when the move is done.
pub(super) const TRANSFERRING: usize = usize::MAX - 2;
/// How long the owner of a waiter spins on a transfer in progress before
/// it yields its thread to a notifier that may have been preempted.
const TRANSFER_SPINS: u32 = 64;

/// A core and, if a notifier handed it back, its second reference.
pub(super) type CachedCore = (Arc<Core>, Option<Arc<Core>>);

/// Cores kept per runtime: enough for the waits of a few coroutines that
/// contend for the same locks, each finishing as another begins.
const CACHED_CORES: usize = 16;

/// The cores of one runtime's coroutine waits kept for reuse (see
/// `waiter.rs`, "Reusing cores"). Lives in the runtime's context: every
/// core here belongs to that runtime.
#[derive(Default)]
pub(crate) struct Spares {
    /// Cores of finished coroutine waits that nothing else held, each with
    /// its second reference if a notifier handed it back. At most
    /// [`CACHED_CORES`].
    cache: RefCell<Vec<CachedCore>>,
    /// A handle's reference, handed back by a notifier of this runtime
    /// that woke one of its coroutines, until that coroutine's waiter is
    /// dropped and takes it.
    returned: Cell<Option<Arc<Core>>>,
}

impl std::fmt::Debug for Spares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spares").field("cached", &self.cache.borrow().len()).finish_non_exhaustive()
    }
}

impl Spares {
    /// A cached core for a new wait, if there is one.
    #[inline]
    pub(super) fn take(&self) -> Option<CachedCore> {
        self.cache.borrow_mut().pop()
    }

    /// Keeps a core that nothing but `core` and `spare` holds, if there is
    /// room.
    #[inline]
    pub(super) fn keep(&self, core: Arc<Core>, spare: Option<Arc<Core>>) {
        let mut cache = self.cache.borrow_mut();
        if cache.len() < CACHED_CORES {
            cache.push((core, spare));
        }
    }

    /// Takes the reference a notifier handed back for `core`, if it did.
    #[inline]
    pub(super) fn take_returned(&self, core: &Arc<Core>) -> Option<Arc<Core>> {
        let returned = self.returned.take()?;
        if Arc::ptr_eq(&returned, core) {
            return Some(returned);
        }
        // Another waiter's reference: leave it for that waiter.
        self.returned.set(Some(returned));
        None
    }

    /// Hands back the reference of a handle whose coroutine was just
    /// woken; one already there, of a waiter that has not taken it yet, is
    /// dropped.
    #[inline]
    pub(super) fn hand_back(&self, core: Arc<Core>) {
        drop(self.returned.replace(Some(core)));
    }
}

/// A coroutine as a shared waiter knows it: what any thread needs to wake
/// it. The address fields are atomics so that a cached core can be given
/// to another coroutine of the same runtime.
#[derive(Debug)]
pub(crate) struct SharedTask {
    /// The inbox of the task's runtime.
    pub(super) inbox: Arc<Inbox>,
    /// The task's key in its runtime's registry.
    pub(super) key: AtomicUsize,
    /// The task's id.
    pub(super) id: AtomicU64,
    /// The epoch of the park the task is in (or about to enter).
    pub(super) epoch: AtomicU32,
}

impl SharedTask {
    /// The address of the park the task waits in.
    pub(super) fn park_ref(&self) -> ParkRef {
        ParkRef {
            key: self.key.load(Ordering::Relaxed),
            id: self.id.load(Ordering::Relaxed),
            epoch: self.epoch.load(Ordering::Relaxed),
        }
    }
}

/// The shared part of a waiter.
#[derive(Debug)]
pub(crate) struct Core {
    /// `WAITING`, `ABANDONED`, `TRANSFERRING`, or the token of the claim.
    pub(super) state: AtomicUsize,
    /// The queues of this wait (see `touch.rs`): written by the owner as
    /// it queues its entries, read by it when the wait begins.
    pub(super) queues: AtomicPtr<Touch>,
    /// Who to wake once claimed.
    pub(super) party: Party<SharedTask>,
}

impl Core {
    /// Moves the state from `WAITING` to `to`, to be `token` once the
    /// caller's transfer is done; false if it was claimed or abandoned.
    #[inline]
    pub(super) fn try_claim(&self, to: usize, token: usize) -> bool {
        debug_assert!(to == token || to == TRANSFERRING);
        self.state.compare_exchange(WAITING, to, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// The state, once no transfer is in progress. A transfer is a few
    /// moves under a primitive's lock, so this spins, then yields the
    /// thread (the notifier may have been preempted). On the waiter's own
    /// thread there is never one in progress.
    #[inline]
    pub(super) fn settled(&self, order: Ordering) -> usize {
        let mut spins = 0;
        loop {
            let state = self.state.load(order);
            if state != TRANSFERRING {
                return state;
            }
            if spins < TRANSFER_SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
    }
}
