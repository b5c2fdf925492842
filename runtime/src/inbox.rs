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
//! DESIGN.md ("Waking from another thread") draws the round trip.
//!
//! The inbox depends on nothing of the runtime but the epoll instance
//! (`epoll.rs`) it interrupts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::epoll::Epoll;
use crate::task::state::ParkRef;

/// A task that has not started: a `Send` closure that, run on a runtime's
/// thread, spawns it there (see `task/distributed.rs`).
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// What another thread asks of this runtime.
pub(crate) enum Post {
    /// Wake the task from the park `ParkRef` names (see `park::wake_ref`).
    Wake(ParkRef),
    /// Cancel the task with this registry key and id (see `park::cancel`),
    /// as `JoinHandle::cancel` does on the task's own thread.
    Cancel {
        /// The task's key in the runtime's registry.
        key: usize,
        /// Its id, to tell it from a later task in the same slot.
        id: u64,
    },
    /// Start a task here (a spawn from outside the runtime).
    Run(Job),
}

impl std::fmt::Debug for Post {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Post::Wake(at) => f.debug_tuple("Wake").field(at).finish(),
            Post::Cancel { key, id } => f.debug_struct("Cancel").field("key", key).field("id", id).finish(),
            Post::Run(_) => f.write_str("Run"),
        }
    }
}

/// Wake-ups for one runtime from other threads.
#[derive(Debug)]
pub(crate) struct Inbox {
    /// Posted wake-ups, drained by the owning scheduler.
    posted: Mutex<Vec<Post>>,
    /// Whether `posted` may be non-empty; read without the lock.
    pending: AtomicBool,
    /// The runtime has ended: nothing drains `posted` any more.
    closed: AtomicBool,
    /// The runtime's epoll instance, to interrupt `epoll_wait`.
    poller: Arc<Epoll>,
    /// The runtime's id.
    runtime: u64,
    /// The identity its coroutines record on the primitives they use: the
    /// runtime's id, or the one the workers of a runtime of several share
    /// (`board.rs`).
    home: u64,
}

impl Inbox {
    /// The inbox of the runtime `runtime`, whose epoll instance is `poller`
    /// and whose coroutines record `home` on what they use.
    pub(crate) fn new(poller: Arc<Epoll>, runtime: u64, home: u64) -> Inbox {
        Inbox {
            posted: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            poller,
            runtime,
            home,
        }
    }

    /// The runtime this inbox belongs to.
    pub(crate) fn runtime(&self) -> u64 {
        self.runtime
    }

    /// The identity the runtime's coroutines record on the primitives they
    /// use (see `sync/wait/touch.rs`).
    pub(crate) fn home(&self) -> u64 {
        self.home
    }

    /// Ends the runtime's `epoll_wait` without posting anything: its loop
    /// goes round once more.
    pub(crate) fn interrupt(&self) {
        self.poller.notify();
    }

    /// Posts a wake-up and interrupts the runtime's poll.
    pub(crate) fn post(&self, wake: ParkRef) {
        self.send(Post::Wake(wake));
    }

    /// Posts a cancellation of the task `key`, `id` and interrupts the
    /// runtime's poll.
    pub(crate) fn post_cancel(&self, key: usize, id: u64) {
        self.send(Post::Cancel { key, id });
    }

    /// Posts a task to start on this runtime; gives it back if the runtime
    /// has ended. (A post racing the end is dropped with the inbox, never
    /// started.)
    pub(crate) fn post_job(&self, job: Job) -> Result<(), Job> {
        if self.closed.load(Ordering::Acquire) {
            return Err(job);
        }
        self.send(Post::Run(job));
        Ok(())
    }

    /// Marks the runtime ended: later jobs are refused.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn send(&self, post: Post) {
        self.posted.lock().unwrap_or_else(PoisonError::into_inner).push(post);
        self.pending.store(true, Ordering::Release);
        self.poller.notify();
    }

    /// Whether wake-ups may have been posted since the last
    /// [`Inbox::take`]: one relaxed load.
    #[inline]
    pub(crate) fn has_posts(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// [`Inbox::has_posts`] with acquire ordering, for a check that other
    /// memory must agree with (`board.rs`).
    pub(crate) fn has_posts_acquire(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Takes the posted wake-ups, if any. Checked every few dozen switches,
    /// so the common empty case is a plain load, not a read-modify-write.
    pub(crate) fn take(&self, into: &mut Vec<Post>) {
        if self.pending.load(Ordering::Relaxed) && self.pending.swap(false, Ordering::Acquire) {
            into.append(&mut self.posted.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }
}
