//! Starting coroutines: [`spawn`], its [`Builder`], the body every
//! coroutine runs, and [`current`].

use std::cell::Cell;
use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::rc::Rc;
use std::sync::{Arc, Once};

use super::cell::TaskCell;
use super::coroutine::{self, TaskCoroutine, TaskYielder};
use super::error::{EndCancelled, JoinError};
use super::id::Task;
use super::join::JoinHandle;
use super::slot::{JoinSlot, Packet, Slot};
use super::teardown;
use crate::context::Context;
use crate::park;
use crate::stack::Stack;

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
#[track_caller]
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
    pub(super) name: Option<Arc<str>>,
    /// Usable stack size in bytes; the runtime's default when unset.
    pub(super) stack_size: Option<usize>,
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
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let task = Task::new(self.name, Some(Location::caller()));
        let spawned = Context::with(|cx| {
            let task = Rc::new(TaskCell::with_identity(task, Spawned::new(f)));
            let size = self.stack_size.unwrap_or_else(|| cx.default_stack_size());
            cx.spawn(task.clone(), size)?;
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

/// A local spawn of `f` as the task `task` (an identity made beforehand),
/// on the calling runtime: what a worker does with a task it takes from a
/// queue. Returns the task's handle and where another thread can reach it.
pub(crate) fn spawn_as<F, T>(
    task: Task,
    stack_size: Option<usize>,
    f: F,
) -> Option<io::Result<(JoinHandle<T>, TaskAddress)>>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Context::with(|cx| {
        let cell = Rc::new(TaskCell::with_identity(task, Spawned::new(f)));
        let size = stack_size.unwrap_or_else(|| cx.default_stack_size());
        cx.spawn(cell.clone(), size)?;
        let address = TaskAddress {
            inbox: cx.inbox_ref().clone(),
            key: cell.registry_key.get(),
            id: cell.id().as_u64(),
        };
        Ok((JoinHandle::new(cell), address))
    })
}

/// Where a task lives, for a thread that wants to cancel it: its runtime's
/// inbox, its registry key, its id.
#[derive(Debug, Clone)]
pub(crate) struct TaskAddress {
    /// The inbox of the task's runtime.
    pub(crate) inbox: Arc<crate::inbox::Inbox>,
    /// The task's key in that runtime's registry.
    pub(crate) key: usize,
    /// The task's id.
    pub(crate) id: u64,
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
        let run = Context::with(|cx| park::begin_task(cx, yielder, skip_if_cancelled)).unwrap_or(true);
        if !run {
            if panic::catch_unwind(AssertUnwindSafe(|| drop(f))).is_err() {
                Context::with(|cx| report_discarded_panic(&cx.current_task()));
            }
            return;
        }
        let result = match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => Ok(value),
            // Torn down at shutdown: the stack is unwound, and the
            // coroutine ends without a result (a join reports it
            // cancelled).
            Err(payload) if teardown::is_teardown(&*payload) => return,
            // Ended as cancelled (a stand-in whose distributed task was):
            // no result either.
            Err(payload) if payload.is::<EndCancelled>() => return,
            Err(payload) => {
                let task = Context::with(|cx| cx.current_task()).expect("a task runs in its runtime");
                Err(JoinError::panicked(payload, task.task()))
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
        task.task().display_name(),
        task.id()
    );
}

/// The slot of a spawned task: closure `F`, result `T`.
pub(crate) struct Spawned<F, T> {
    /// The closure, until the task starts.
    body: Cell<Option<F>>,
    /// Where the coroutine leaves the result.
    packet: Packet<T>,
}

impl<F, T> Spawned<F, T> {
    pub(crate) fn new(body: F) -> Spawned<F, T> {
        Spawned { body: Cell::new(Some(body)), packet: Packet::new() }
    }
}

impl<F, T> Slot for Spawned<F, T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    fn start(&self, stack: Stack) -> Result<TaskCoroutine, Stack> {
        let Some(f) = self.body.take() else { return Err(stack) };
        let packet: *const Packet<T> = &self.packet;
        let body = body_unless_cancelled(f, move |result| {
            if Context::with(|cx| cx.with_current(|task| task.detached.get())).flatten() == Some(true) {
                // Nobody will take it: drop it here, inside the coroutine.
                drop(result);
                return;
            }
            // SAFETY: the packet lives in the task's cell, which owns this coroutine and which the
            // scheduler (`run_task`, `tear_down`) holds while the coroutine runs: it outlives this write.
            unsafe { &*packet }.set(result)
        });
        Ok(coroutine::new_coroutine(stack, body))
    }
}

impl<F, T> JoinSlot<T> for Spawned<F, T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    fn take_result(&self) -> Option<Result<T, JoinError>> {
        self.packet.take()
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
    Context::with(|cx| cx.with_current(|task| task.task().clone())).flatten()
}

/// Installs (once per process) a panic hook that says which coroutine
/// panicked before the standard report, which only names the OS thread.
pub(crate) fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            // The running coroutine starts to unwind (see
            // `Context::panicking`).
            Context::with(|cx| cx.with_current(|task| cx.set_panicking(&**task, true)));
            if let Some(task) = try_current() {
                eprintln!("green: coroutine '{}' (id {}) panicked:", task.display_name(), task.id());
            }
            previous(info);
        }));
    });
}
