//! Who a coroutine is: its [`TaskId`] and its name, together a [`Task`].
//! Plain data, used from the stack overflow report up to the public API.

use std::cell::Cell;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A unique identifier of a coroutine within the process.
///
/// Ids are never reused and are unique in the process. They grow within a
/// thread but do not tell the order of spawns across threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(u64);

impl TaskId {
    /// The next unused id. Each thread takes ids from the process-wide
    /// counter a block at a time, so a spawn costs no atomic operation
    /// (one is about a tenth of a spawn) and ids stay unique.
    pub(crate) fn next() -> TaskId {
        const BLOCK: u64 = 1024;
        static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            /// The next id of this thread's block, and the end of the block.
            static RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }
        RANGE.with(|range| {
            let (mut next, mut end) = range.get();
            if next == end {
                next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                end = next + BLOCK;
            }
            range.set((next + 1, end));
            TaskId(next)
        })
    }

    /// The id that is `n` as a number (`as_u64`): for ids the runtime kept
    /// as numbers (a task record's join wait, a lock's holder).
    pub(crate) fn from_u64(n: u64) -> TaskId {
        TaskId(n)
    }

    /// The id as a number, for logs and metrics.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The identity of a coroutine: its id and name.
///
/// ```
/// green::run(|| {
///     let me = green::current();
///     assert_eq!(me.name(), Some("main"));
///     let child = green::spawn(|| green::current().id());
///     assert_ne!(child.join().unwrap(), me.id());
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The coroutine's id.
    id: TaskId,
    /// Its name, if it has one.
    name: Option<Arc<str>>,
    /// Where it was spawned, if the spawn function knew.
    spawned_at: Option<&'static Location<'static>>,
}

impl Task {
    /// A new coroutine's identity, with a fresh id, spawned at
    /// `spawned_at`.
    pub(crate) fn new(name: Option<Arc<str>>, spawned_at: Option<&'static Location<'static>>) -> Task {
        Task { id: TaskId::next(), name, spawned_at }
    }

    /// An identity with a made-up id, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(id: u64, name: Option<&str>) -> Task {
        Task { id: TaskId(id), name: name.map(Arc::from), spawned_at: None }
    }

    /// The coroutine's id, unique in the process.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The coroutine's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Where the coroutine was spawned: the caller of [`spawn`](crate::spawn)
    /// or of the other spawn functions; `None` for a runtime's main
    /// coroutine and the runtime's own.
    ///
    /// ```
    /// green::run(|| {
    ///     let line = line!() + 1;
    ///     let child = green::spawn(|| green::current());
    ///     let at = child.join().unwrap().spawned_at().expect("a spawned coroutine knows");
    ///     assert_eq!((at.file(), at.line()), (file!(), line));
    /// });
    /// ```
    pub fn spawned_at(&self) -> Option<&'static Location<'static>> {
        self.spawned_at
    }

    /// The name, shared.
    pub(crate) fn name_arc(&self) -> Option<Arc<str>> {
        self.name.clone()
    }

    /// The name, or `<unnamed>`: how messages name the coroutine.
    pub(crate) fn display_name(&self) -> &str {
        self.name().unwrap_or("<unnamed>")
    }
}
