//! Coroutines: spawning, naming, joining, and finding out who is running.
//!
//! A coroutine (also called a task here) is a closure running on a stack of
//! its own, scheduled cooperatively with the other coroutines of its
//! runtime. It runs until it blocks (on I/O, a sleep, a join, ...) or calls
//! [`yield_now`](crate::yield_now), and then the thread runs another.

pub(crate) mod cancel_state;
pub(crate) mod cell;
mod group;
mod join;
mod slot;
pub(crate) mod teardown;

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Once};

pub use cell::TaskId;
pub use group::TaskGroup;
pub(crate) use join::Packet;
pub(crate) use join::wait_for;
pub use join::{JoinError, JoinHandle};
pub(crate) use slot::Spawned;

use crate::scheduler::Scheduler;
use cell::{TaskCell, TaskYielder};

/// Spawns a coroutine on the current runtime and returns a handle to join
/// it.
///
/// The coroutine starts the next time the scheduler looks at its run queue
/// (the caller keeps running until it blocks or yields). It runs on the
/// calling thread and never moves to another, so `f` does not have to be
/// `Send` and may capture `Rc`s and other thread-bound values.
///
/// # Panics
///
/// Outside a runtime (start one with [`run`](crate::run)), or if no stack
/// can be allocated; [`Builder::spawn`] reports both as errors instead.
///
/// # Examples
///
/// ```
/// green::run(|| {
///     let shared = std::rc::Rc::new(5);
///     let copy = shared.clone();
///     let handle = green::spawn(move || *copy * 2);
///     assert_eq!(handle.join().unwrap(), 10);
/// });
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    match Builder::new().spawn(f) {
        Ok(handle) => handle,
        Err(err) => panic!("{err}"),
    }
}

/// Options for one coroutine: its name and stack size.
///
/// ```
/// green::run(|| {
///     let handle = green::task::Builder::new()
///         .name("worker")
///         .stack_size(64 * 1024)
///         .spawn(|| green::current().name().map(str::to_owned))
///         .expect("spawned");
///     assert_eq!(handle.join().unwrap().as_deref(), Some("worker"));
/// });
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    /// Name reported by [`current`], in join errors and overflow reports.
    name: Option<Arc<str>>,
    /// Usable stack size in bytes; the runtime's default when unset.
    stack_size: Option<usize>,
}

impl Builder {
    /// Options with no name and the runtime's default stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the coroutine.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// Sets the usable stack size in bytes, rounded up to whole pages; 0, or
    /// any size below one page, gives the smallest stack, one page. The
    /// guard page below it comes on top.
    ///
    /// At most [`green::Builder::MAX_STACK_SIZE`] (1 GiB): for more,
    /// [`Builder::spawn`] returns an error of kind
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) that names the limit,
    /// and spawns nothing.
    ///
    /// [`green::Builder::MAX_STACK_SIZE`]: crate::Builder::MAX_STACK_SIZE
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the coroutine on the current runtime.
    ///
    /// # Errors
    ///
    /// Outside a runtime; or when no stack can be had (the error says which
    /// limit was hit and how to raise it).
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let spawned = Scheduler::with(|s| {
            let task = Rc::new(TaskCell::new(self.name, Spawned::new(f)));
            let size = self.stack_size.unwrap_or_else(|| s.default_stack_size());
            s.spawn(task.clone(), size)?;
            Ok(JoinHandle::new(task))
        });
        spawned.unwrap_or_else(|| {
            Err(io::Error::other(
                "green::spawn called outside a green runtime: start one with green::run(|| ...) \
                 and spawn from inside it",
            ))
        })
    }
}

/// The body every coroutine runs: records its yielder, runs `f` behind a
/// panic boundary and hands the outcome to `done`. At runtime shutdown a
/// coroutine that never started drops `f` instead of running it (inside
/// the coroutine, where the waits of its destructors fail instead of
/// blocking the thread); `done` is not called then, and a join reports the
/// coroutine cancelled.
pub(crate) fn body<F, T, D>(f: F, done: D) -> impl FnOnce(&TaskYielder, ())
where
    F: FnOnce() -> T,
    D: FnOnce(Result<T, JoinError>),
{
    body_with(f, false, done)
}

/// [`body`] for a spawned coroutine, which never runs `f` once it has been
/// cancelled before it started.
pub(crate) fn body_unless_cancelled<F, T, D>(f: F, done: D) -> impl FnOnce(&TaskYielder, ())
where
    F: FnOnce() -> T,
    D: FnOnce(Result<T, JoinError>),
{
    body_with(f, true, done)
}

fn body_with<F, T, D>(f: F, skip_if_cancelled: bool, done: D) -> impl FnOnce(&TaskYielder, ())
where
    F: FnOnce() -> T,
    D: FnOnce(Result<T, JoinError>),
{
    move |yielder: &TaskYielder, ()| {
        let run = Scheduler::with(|s| s.begin_task(yielder, skip_if_cancelled)).unwrap_or(true);
        if !run {
            if panic::catch_unwind(AssertUnwindSafe(|| drop(f))).is_err() {
                Scheduler::with(|s| report_discarded_panic(&s.current_task()));
            }
            return;
        }
        let result = match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => Ok(value),
            // Torn down at shutdown: the stack is unwound, and the
            // coroutine ends without a result (a join reports it
            // cancelled).
            Err(payload) if teardown::is_teardown(&*payload) => return,
            Err(payload) => {
                let task = Scheduler::with(|s| s.current_task()).expect("a task runs in its runtime");
                Err(JoinError::panicked(payload, &task))
            }
        };
        done(result);
    }
}

/// Says on stderr that dropping the closure of a coroutine that never
/// started panicked, and that the panic was dropped.
pub(crate) fn report_discarded_panic<S: ?Sized>(task: &TaskCell<S>) {
    eprintln!(
        "green: dropping the closure of coroutine '{}' (id {}), which was cancelled before it started, \
         panicked; the panic was discarded",
        task.info.owner.name.as_deref().unwrap_or("<unnamed>"),
        task.info.owner.id
    );
}

/// Counts the entries the bookkeeping of scopes and task groups looks at
/// (children cancelled or released, members joined), for the unit tests
/// that prove the cost per child or member does not grow with their
/// number.
#[cfg(test)]
pub(crate) mod visits {
    use std::cell::Cell;

    thread_local! {
        /// Entries looked at on this thread.
        pub(crate) static VISITS: Cell<usize> = const { Cell::new(0) };
    }
}

/// Records that scope or group bookkeeping looked at `n` entries.
#[inline]
pub(crate) fn visited(n: usize) {
    #[cfg(test)]
    visits::VISITS.with(|v| v.set(v.get().saturating_add(n)));
    #[cfg(not(test))]
    let _ = n;
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
}

impl Task {
    pub(crate) fn from_cell<S: ?Sized>(cell: &TaskCell<S>) -> Task {
        Task { id: cell.id(), name: cell.info.owner.name.clone() }
    }

    /// The coroutine's id, unique in the process.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The coroutine's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// The coroutine that calls it.
///
/// # Panics
///
/// Outside a coroutine; [`try_current`] returns `None` there instead.
pub fn current() -> Task {
    try_current().expect("green::current called outside a coroutine (start one with green::run)")
}

/// The coroutine that calls it, or `None` on a plain thread.
pub fn try_current() -> Option<Task> {
    Scheduler::with(|s| s.has_current().then(|| Task::from_cell(&s.current_task()))).flatten()
}

/// Installs (once per process) a panic hook that says which coroutine
/// panicked before the standard report, which only names the OS thread.
pub(crate) fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            // The running coroutine starts to unwind (see
            // `Scheduler::panicking`).
            Scheduler::with(|s| s.with_current(|task| s.set_panicking(&**task, true)));
            if let Some(task) = try_current() {
                eprintln!(
                    "green: coroutine '{}' (id {}) panicked:",
                    task.name().unwrap_or("<unnamed>"),
                    task.id()
                );
            }
            previous(info);
        }));
    });
}
