//! The inbox: how another thread wakes a coroutine of this runtime.
//!
//! A task's run queue belongs to its scheduler's thread and is never
//! touched from anywhere else. A thread that wants to wake a coroutine of
//! another runtime (a plain thread sending on a channel, a coroutine of a
//! runtime on another thread releasing a lock) posts the wake-up here and
//! notifies the runtime's poller, which interrupts its `epoll_wait`. The
//! scheduler drains the inbox after every poll and every `EVENT_INTERVAL`
//! switches, and performs each wake-up as a local one, with the same
//! epoch check as any other waker: a stale post is a harmless miss.
//!
//! ```text
//!   thread B                                   runtime A (thread A)
//!   WaiterHandle::wake() (or a sole waiter's claim)
//!     same runtime as the caller? no
//!     TaskRef::post((key, id, epoch)):
//!       inbox.posted.push((key, id, epoch))
//!       inbox.pending = true
//!       poller.notify() ----------------------> epoll_wait returns
//!                                               drain_inbox():
//!                                                 tasks[key], id matches
//!                                                 wake_task(task, epoch)
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::reactor::Shared;

/// One wake-up posted from another thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Posted {
    /// The task's key in its scheduler's registry.
    pub(crate) key: usize,
    /// The task's id, to tell it from a later task in the same slot.
    pub(crate) id: u64,
    /// The park this wake-up is for.
    pub(crate) epoch: u32,
}

/// Wake-ups for one runtime from other threads.
#[derive(Debug)]
pub(crate) struct Inbox {
    /// Posted wake-ups, drained by the owning scheduler.
    posted: Mutex<Vec<Posted>>,
    /// Whether `posted` may be non-empty; read without the lock.
    pending: AtomicBool,
    /// The reactor's thread-safe part, to interrupt `epoll_wait`.
    reactor: Arc<Shared>,
}

impl Inbox {
    pub(crate) fn new(reactor: Arc<Shared>) -> Inbox {
        Inbox { posted: Mutex::new(Vec::new()), pending: AtomicBool::new(false), reactor }
    }

    /// The runtime this inbox belongs to.
    pub(crate) fn runtime(&self) -> u64 {
        self.reactor.id()
    }

    /// Posts a wake-up and interrupts the runtime's poll.
    pub(crate) fn post(&self, wake: Posted) {
        self.posted.lock().unwrap_or_else(PoisonError::into_inner).push(wake);
        self.pending.store(true, Ordering::Release);
        // An error means the epoll instance is gone with its runtime, and
        // so is the task: nothing to wake.
        let _ = self.reactor.notify();
    }

    /// Takes the posted wake-ups, if any. Checked every few dozen switches,
    /// so the common empty case is a plain load, not a read-modify-write.
    pub(crate) fn take(&self, into: &mut Vec<Posted>) {
        if self.pending.load(Ordering::Relaxed) && self.pending.swap(false, Ordering::Acquire) {
            into.append(&mut self.posted.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }
}

/// A handle to one coroutine that any thread may hold and wake.
#[derive(Debug, Clone)]
pub(crate) struct TaskRef {
    /// The inbox of the task's runtime.
    inbox: Arc<Inbox>,
    /// The runtime's id, to tell a wake-up on its own thread.
    runtime: u64,
    /// The task's key in the registry of its scheduler.
    key: usize,
    /// The task's id.
    id: u64,
}

impl TaskRef {
    pub(crate) fn new(inbox: Arc<Inbox>, key: usize, id: u64) -> TaskRef {
        let runtime = inbox.runtime();
        TaskRef { inbox, runtime, key, id }
    }

    /// The wake-up for the task's park number `epoch` (see `park.rs`).
    #[inline]
    pub(crate) fn posted(&self, epoch: u32) -> Posted {
        Posted { key: self.key, id: self.id, epoch }
    }

    /// The id of the task's runtime: a caller whose scheduler has this id
    /// runs on the task's thread and wakes it with
    /// `Scheduler::wake_local`; any other posts the wake-up.
    #[inline]
    pub(crate) fn runtime(&self) -> u64 {
        self.runtime
    }

    /// Posts a wake-up for the task to its runtime's inbox, from another
    /// thread.
    pub(crate) fn post(&self, wake: Posted) {
        self.inbox.post(wake);
    }
}
