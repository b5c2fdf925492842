//! Who has used a primitive: its own runtime only, or also another thread
//! or runtime. The deadlock report needs it.
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

use std::panic::Location;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

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
    /// Where in the runtime's code the first waiter was queued: names the
    /// primitive in the deadlock report. Null until then.
    at: AtomicPtr<Location<'static>>,
}

impl Touch {
    /// A primitive nobody has used.
    pub(crate) const fn new() -> Touch {
        Touch { home: AtomicU64::new(UNTOUCHED), at: AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// Records where the primitive queues its waiters, once.
    #[inline]
    pub(crate) fn queued_at(&self, at: &'static Location<'static>) {
        if self.at.load(Ordering::Relaxed).is_null() {
            self.at.store(std::ptr::from_ref(at).cast_mut(), Ordering::Relaxed);
        }
    }

    /// Where the primitive queues its waiters, if it has queued one.
    pub(crate) fn at(&self) -> Option<&'static Location<'static>> {
        let at = self.at.load(Ordering::Relaxed);
        // SAFETY: `at` is null or was made from a `&'static Location` by
        // `queued_at`, so it is valid for reads for the rest of the program.
        unsafe { at.as_ref() }
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

/// What a wait is, in words, from the place in the runtime's code that
/// made it (its file names the primitive or the kind of wait).
pub(crate) fn describe(at: Option<&'static Location<'static>>) -> &'static str {
    let Some(at) = at else { return "something unknown" };
    let file = at.file().rsplit('/').next().unwrap_or_default();
    match file.strip_suffix(".rs").unwrap_or(file) {
        "chan" | "select" | "oneshot" => "a channel",
        "mutex" => "a Mutex",
        "rwlock" => "an RwLock",
        "condvar" => "a Condvar",
        "semaphore" => "a Semaphore",
        "event" => "an Event",
        "barrier" => "a Barrier",
        "wait_group" => "a WaitGroup",
        "once_cell" => "a OnceCell",
        "join" => "a join of another coroutine",
        "scope" => "the children of a green::scope",
        "group" => "a TaskGroup",
        "time" => "a sleep with no deadline",
        "io" | "reactor" | "accept" => "I/O",
        _ => "a wait of its runtime",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_runtime_alone_keeps_it_local() {
        let touch = Touch::new();
        touch.by(Some(3));
        touch.by(Some(3));
        assert!(!touch.is_shared());
    }

    #[test]
    fn another_runtime_or_a_thread_shares_it_for_good() {
        let touch = Touch::new();
        touch.by(Some(3));
        touch.by(Some(4));
        assert!(touch.is_shared());
        touch.by(Some(3));
        assert!(touch.is_shared(), "never goes back");
        let touch = Touch::new();
        touch.by(None);
        assert!(touch.is_shared(), "a plain thread shares it at once");
    }

    #[test]
    fn runtimes_racing_for_an_untouched_primitive_share_it() {
        let touch = std::sync::Arc::new(Touch::new());
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
