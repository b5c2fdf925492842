//! Structured concurrency: [`scope`], whose children may borrow from the
//! caller and never outlive it.
//!
//! ```text
//!   green::scope(|s| {              parent coroutine
//!       s.spawn(|| a(&data));  ---->  child a ─┐
//!       s.spawn(|| b(&data));  ---->  child b ─┤ the first to fail (Err or panic)
//!       ...                                    │ cancels the others and the body
//!   })   <──── waits for every child ──────────┘
//!        returns Ok(body's value) or Err(the first failure)
//! ```
//!
//! The rules, and why they are safe:
//!
//! * **The scope does not return until every child has finished**, also
//!   when its body panics or the parent is cancelled: it then cancels the
//!   children and waits for them inside a shield. That is what lets
//!   children borrow from the parent's stack, as `std::thread::scope`
//!   allows for threads.
//! * **The first failure cancels the rest, body included** (trio's nursery
//!   rule). A child fails by returning `Err` or by panicking; the scope
//!   records the first failure and cancels every other child and the
//!   scope's body: the body runs inside a cancel frame of its own (see
//!   `task/cancel_state.rs`), which the failing child cancels, so the
//!   body's blocking calls fail with cancellation errors until it returns.
//!   Only the body: the parent's code after `scope` returns, and the
//!   parent's own cancel request, are untouched. Failures that follow are
//!   consequences of the cancellation and are not recorded.
//! * **At runtime shutdown** a parent's scoped children are torn down
//!   before the parent itself (they are on its teardown list,
//!   `TaskCell::scoped_children`), so no child ever runs (or unwinds) after
//!   the frame it borrows from. A child counts as finished however its
//!   closure ends, also when it is unwound or dropped unstarted (a drop
//!   guard, `ChildDone`, does the counting). When the parent's own
//!   teardown unwinds through the body, the scope neither waits nor parks:
//!   it passes the unwind on at once, with its payload. A child spawned by
//!   a coroutine that is being torn down is cancelled before it starts,
//!   and never runs.
//!
//! # Costs
//!
//! Every operation is O(1) per child. A child goes on two lists: the
//! scope's own (to cancel the children) and the parent's teardown list. A
//! scope's entries on the teardown list all come after the length the
//! list had when the scope opened (`Family::first_entry`), in the order
//! they were spawned, possibly mixed with entries of enclosing scopes of
//! the same parent spawned meanwhile (from an inner body, or by a child).
//! Releasing them when the scope ends is one pass over that tail, which
//! keeps the foreign entries and drops the scope's own:
//!
//! ```text
//!   teardown list: [ x1 x2 | a1 a2 o1 a3 ]      scope's children: [a1 a2 a3]
//!                           ^ first_entry        o1: an enclosing scope's
//!   after release: [ x1 x2 o1 ]
//! ```
//!
//! A foreign entry is passed over once per scope that was open when it was
//! spawned and nested inside its own scope: a bounded number of times.

use std::any::Any;
use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe, Location};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::channel::{Receiver, RecvError, Sender, bounded};
use crate::context::Context;
use crate::dump::kind::WaitKind;
use crate::park;
use crate::task::cancel_state::FrameId;
use crate::task::cell::ParkSite;
use crate::task::cell::{TaskCell, Waker};
use crate::task::distributed::DistributedHandle;
use crate::task::error::JoinError;
use crate::task::id::Task;
use crate::task::spawn;
use crate::task::state::{TaskState, WakeReason};
use crate::task::visits::visited;
use crate::timeout::FrameGuard;

/// Runs `body` with a [`Scope`] to spawn children that may borrow from the
/// caller, and returns once every child has finished.
///
/// Each child returns `Result<T, E>`. If one returns `Err` or panics, the
/// others are cancelled, and so is `body`: its blocking calls fail with
/// cancellation errors (as with a [`timeout`](crate::timeout()) whose
/// deadline passed) until it returns. `scope` then returns that first
/// failure once all have finished. Otherwise it returns `body`'s value.
///
/// ```
/// use std::io;
/// let words = vec!["green", "threads", "scale"];
/// let total = green::run(|| {
///     let lengths = std::cell::RefCell::new(Vec::new());
///     green::scope(|s| {
///         for word in &words {
///             let lengths = &lengths;
///             s.spawn(move || {
///                 green::yield_now();
///                 lengths.borrow_mut().push(word.len());
///                 Ok::<(), io::Error>(())
///             });
///         }
///     })
///     .expect("no child failed");
///     lengths.into_inner().iter().sum::<usize>()
/// });
/// assert_eq!(total, 17);
/// ```
///
/// A failing child ends the body's waits:
///
/// ```
/// use std::time::Duration;
/// green::run(|| {
///     let outcome = green::scope(|s| {
///         s.spawn(|| Err::<(), _>("no route to host"));
///         // Would sleep an hour; the child's failure cancels it.
///         green::sleep(Duration::from_secs(3600))
///     });
///     assert_eq!(outcome.unwrap_err().into_error(), Some("no route to host"));
///     // Only the body was cancelled: the parent sleeps normally again.
///     assert!(green::sleep(Duration::from_millis(1)).is_ok());
/// });
/// ```
///
/// # Errors
///
/// [`ScopeError::Failed`] with the first child's error,
/// [`ScopeError::Panicked`] if the first failure was a panic, or
/// [`ScopeError::Cancelled`] if the parent was cancelled while it waited
/// for its children (they were cancelled in turn).
///
/// # Panics
///
/// Outside a coroutine; and if `body` itself panics, after every child has
/// finished.
pub fn scope<'env, E, R, F>(body: F) -> Result<R, ScopeError<E>>
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env, E>) -> R,
{
    let parent = Context::with(Context::running_task)
        .flatten()
        .unwrap_or_else(|| panic!("green::scope called outside a coroutine (start one with green::run)"));
    let scope = Scope { shared: Rc::new(Family::new(parent)), _scope: PhantomData, _env: PhantomData };
    let _remote = RemoteWatch(&scope.shared);
    let outcome = {
        // The body's cancel frame: cancelled by the first failing child.
        let frame = FrameGuard::open(None, false, "green::scope");
        scope.shared.body_frame.set(frame.id());
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| body(&scope)));
        scope.shared.body_frame.set(None);
        frame.close();
        outcome
    };
    let outcome = match outcome {
        // The runtime is tearing the parent down: its children went first,
        // and waiting here would never end. The unwind goes on, with the
        // payload it came with.
        Err(payload) if scope.shared.parent.unwinding.get() => panic::resume_unwind(payload),
        outcome => outcome,
    };
    if outcome.is_err() {
        scope.shared.cancel_children();
    }
    scope.wait_for_children();
    scope.release_children();
    let value = match outcome {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    };
    match scope.shared.failure.take() {
        Some(failure) => Err(failure),
        None if scope.shared.cancelled.get() => Err(ScopeError::Cancelled),
        None => Ok(value),
    }
}

/// A scope to spawn children in; see [`scope`].
pub struct Scope<'scope, 'env: 'scope, E> {
    /// What the children share with the parent.
    shared: Rc<Family<E>>,
    /// Children may borrow for `'scope`...
    _scope: PhantomData<&'scope mut &'scope ()>,
    /// ...from data that lives for `'env`.
    _env: PhantomData<&'env mut &'env ()>,
}

/// What a scope's children and its parent share.
struct Family<E> {
    /// The parent task: its body frame is what a failing child cancels, and
    /// its teardown list (`scoped_children`) holds the children.
    parent: Rc<TaskCell>,
    /// Length of the parent's teardown list when the scope opened: every
    /// entry of this scope is at or after it (see the module
    /// documentation).
    first_entry: usize,
    /// Children whose closures have not ended yet.
    live: Cell<usize>,
    /// Every child, in the order spawned: to cancel them, and to find them
    /// on the parent's teardown list at the end.
    children: RefCell<Vec<Rc<TaskCell>>>,
    /// The parent, while it waits for children to finish.
    waiter: RefCell<Option<Waker>>,
    /// The first failure of a child.
    failure: RefCell<Option<ScopeError<E>>>,
    /// The children have been cancelled (after a failure, a panic of the
    /// body, or a cancellation of the parent); later failures are their
    /// consequence and are not recorded, and children spawned from now on
    /// are cancelled at once.
    cancelled: Cell<bool>,
    /// The cancel frame around the body, on the parent's cancel stack,
    /// while the body runs.
    body_frame: Cell<Option<FrameId>>,
    /// Distributed children whose closures have not been dropped yet, on
    /// whatever worker they are (see [`Scope::spawn_distributed`]).
    /// Made at the first such child: a scope without one allocates
    /// nothing for it.
    remote_live: OnceCell<Arc<AtomicUsize>>,
}

impl<E> Family<E> {
    fn new(parent: Rc<TaskCell>) -> Family<E> {
        let first_entry = parent.scoped_children.borrow().len();
        Family {
            parent,
            first_entry,
            live: Cell::new(0),
            children: RefCell::new(Vec::new()),
            waiter: RefCell::new(None),
            failure: RefCell::new(None),
            cancelled: Cell::new(false),
            body_frame: Cell::new(None),
            remote_live: OnceCell::new(),
        }
    }

    /// Records a failure if it is the first, and cancels the other children
    /// and the body.
    fn fail(&self, failure: ScopeError<E>) {
        if self.cancelled.get() {
            return;
        }
        *self.failure.borrow_mut() = Some(failure);
        self.cancel_children();
        self.cancel_body();
    }

    /// Cancels every child that is still running (once: children spawned
    /// afterwards are cancelled as they are spawned).
    fn cancel_children(&self) {
        if self.cancelled.replace(true) {
            return;
        }
        let children = self.children.borrow();
        visited(children.len());
        // `cancel` only marks and queues the children; none runs meanwhile,
        // so nothing can spawn into the list while it is borrowed.
        Context::with(|cx| {
            for child in children.iter() {
                park::cancel(cx, child);
            }
        });
    }

    /// Cancels the body's frame, and wakes the parent if it is parked where
    /// the cancellation reaches it (no shield opened inside the body in
    /// the way); otherwise its next wait inside the body sees it.
    fn cancel_body(&self) {
        let Some(frame) = self.body_frame.get() else { return };
        if self.parent.cancel.cancel_frame(frame) && self.parent.state.get() == TaskState::Parked {
            let waker = Waker::new(self.parent.clone(), self.parent.epoch.get());
            Context::with(|cx| park::wake(cx, &waker, WakeReason::Cancelled));
        }
    }

    /// A child's closure has ended.
    fn child_done(&self) {
        let live = self.live.get().saturating_sub(1);
        self.live.set(live);
        if live == 0 {
            let waiter = self.waiter.borrow_mut().take();
            if let Some(waiter) = waiter {
                Context::with(|cx| park::wake(cx, &waiter, WakeReason::Ready));
            }
        }
    }
}

/// Counts a child finished when it is dropped: at the end of the child's
/// closure, when the closure is unwound (at runtime shutdown), or when it
/// is dropped without having run. Made at spawn and moved into the
/// closure, so that no way of ending a child skips it.
struct ChildDone<E>(Rc<Family<E>>);

impl<E> Drop for ChildDone<E> {
    fn drop(&mut self) {
        self.0.child_done();
    }
}

/// Keeps a scope's frame from being unwound while a distributed child may
/// still borrow from it: when the runtime tears the parent down and such
/// a child has not ended on its worker (its own worker may be shutting
/// down too, or waiting for this one), the parent refuses to die and is
/// leaked, its stack never freed, rather than wait across threads at
/// shutdown or free what the child borrows.
struct RemoteWatch<'a, E>(&'a Rc<Family<E>>);

impl<E> Drop for RemoteWatch<'_, E> {
    fn drop(&mut self) {
        let family = self.0;
        if family.parent.unwinding.get()
            && family.remote_live.get().is_some_and(|live| live.load(Ordering::Acquire) > 0)
        {
            eprintln!(
                "green: coroutine '{}' (id {}) was torn down at shutdown inside a green::scope whose \
                 distributed children still run on other workers; it is left suspended and its stack is \
                 leaked, so that what they borrow stays valid",
                family.parent.task().display_name(),
                family.parent.id()
            );
            park::refuse_to_die();
        }
    }
}

/// A distributed child's closure and what reports its end, in the order
/// they are dropped (fields drop in declaration order): the closure, and
/// everything it borrows through, is gone before the parent hears of it.
///
/// This is what lets [`Scope::try_spawn_distributed`] type the job
/// `'static` although it borrows for `'scope`: the report's drop is what
/// ends the stand-in's wait (a stand-in whose scope is cancelled passes
/// the cancellation on and still waits, shielded); the scope does not
/// return, nor unwind past its frame, before every stand-in has ended
/// (`wait_for_children`), except when the runtime tears the parent down,
/// and then [`RemoteWatch`] leaks the parent, stack and all, while any
/// report has not been dropped.
struct RemoteChild<F, R> {
    /// The closure, until it runs.
    f: Option<F>,
    /// Sends the outcome, if there is one, and counts the child ended.
    report: Report<R>,
}

impl<F: FnOnce() -> R, R> RemoteChild<F, R> {
    /// Runs the closure on the worker that took it; its outcome, or its
    /// panic, goes to the child's stand-in on the parent's worker.
    fn run(mut self) {
        let Some(f) = self.f.take() else { return };
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            // Torn down at its worker's shutdown: the stand-in hears that
            // the channel closed.
            Err(payload) if crate::task::teardown::is_teardown(&*payload) => panic::resume_unwind(payload),
            outcome => self.report.outcome = Some(outcome),
        }
    }
}

/// The end of a distributed child, reported when dropped.
struct Report<R> {
    /// To the stand-in.
    sender: Option<Sender<std::thread::Result<R>>>,
    /// What the closure came to, once it has run.
    outcome: Option<std::thread::Result<R>>,
    /// The family's count of distributed children not yet ended.
    live: Arc<AtomicUsize>,
}

impl<R> Drop for Report<R> {
    fn drop(&mut self) {
        if let (Some(sender), Some(outcome)) = (self.sender.take(), self.outcome.take()) {
            // A stand-in gone already (torn down): the outcome is dropped
            // here, before the count below.
            let _ = sender.try_send(outcome);
        }
        drop(self.sender.take());
        // The last thing the child does with anything of the parent's.
        self.live.fetch_sub(1, Ordering::Release);
    }
}

/// What a distributed child's stand-in does on the parent's worker: starts
/// the child's job on some worker, waits for its outcome, and passes on
/// a cancellation of its own (the scope's) to the child.
fn stand_in<T, E>(
    job: Box<dyn FnOnce() + Send>,
    outcome: Receiver<std::thread::Result<Result<T, E>>>,
) -> Result<T, E> {
    /// Cancels the child if the stand-in unwinds (it is torn down).
    struct CancelOnUnwind(Option<DistributedHandle<()>>);
    impl Drop for CancelOnUnwind {
        fn drop(&mut self) {
            if let Some(child) = &self.0 {
                child.cancel();
            }
        }
    }
    let mut child = CancelOnUnwind(crate::task::distributed::spawn_boxed(job).ok());
    let received = match outcome.recv() {
        Err(RecvError::Cancelled) => {
            // The scope cancels its children: so does this one, and it
            // waits for the child's closure to end, which may borrow.
            if let Some(child) = &child.0 {
                child.cancel();
            }
            crate::shield(|| outcome.recv())
        }
        received => received,
    };
    // The child has ended: nothing to cancel. (Its handle, dropped,
    // detaches what is left of its task.)
    drop(child.0.take());
    match received {
        Ok(Ok(result)) => result,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic::resume_unwind(Box::new(
            "green: a distributed child of the scope never ran to its end: it was cancelled before it \
             started, or its worker shut down",
        )),
    }
}

/// Whether `task`, or the running coroutine, is being torn down at runtime
/// shutdown.
fn torn_down(task: &TaskCell) -> bool {
    task.unwinding.get() || Context::with(Context::running_task).flatten().is_some_and(|t| t.unwinding.get())
}

impl<'scope, 'env, E: 'scope> Scope<'scope, 'env, E> {
    /// Spawns a child that may borrow anything that outlives the scope.
    ///
    /// The child's coroutine is built at once (it borrows, so it cannot
    /// wait in a `'static` slot as a [`spawn`](crate::spawn)ed one does): a
    /// child cancelled before it first runs still runs up to its first
    /// blocking call, where the cancellation is delivered. A child spawned
    /// into a scope that has been cancelled already (a sibling failed) is
    /// cancelled at once. A child spawned by a coroutine that the runtime
    /// is tearing down at shutdown never runs; its handle reports it
    /// cancelled.
    ///
    /// # Panics
    ///
    /// If no stack can be had for the child.
    #[track_caller]
    pub fn spawn<T, F>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> Result<T, E> + 'scope,
        T: 'scope,
    {
        match self.try_spawn(f) {
            Ok(handle) => handle,
            Err(err) => panic!("{err}"),
        }
    }

    /// Like [`Scope::spawn`], reporting a failure to get a stack as an
    /// error.
    ///
    /// ```
    /// use std::io;
    /// green::run(|| {
    ///     let doubled = green::scope(|s| {
    ///         let child = s.try_spawn(|| Ok::<_, io::Error>(21 * 2))?;
    ///         io::Result::Ok(child.join().expect("the child succeeded"))
    ///     });
    ///     assert_eq!(doubled.expect("no child failed").expect("a stack was had"), 42);
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// When no stack can be had (the error says which limit was hit).
    #[track_caller]
    pub fn try_spawn<T, F>(&'scope self, f: F) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> Result<T, E> + 'scope,
        T: 'scope,
    {
        let shared = &self.shared;
        let slot: Rc<RefCell<Option<Result<T, JoinError>>>> = Rc::new(RefCell::new(None));
        let task = Rc::new(TaskCell::with_identity(Task::new(None, Some(Location::caller())), ()));
        if torn_down(&shared.parent) {
            // The parent's children have been torn down already, or are
            // being: a child started now could outlive the frame it
            // borrows from. It never runs.
            drop(f);
            task.state.set(TaskState::Done);
            *slot.borrow_mut() = Some(Err(JoinError::cancelled(task.task())));
            return Ok(ScopedJoinHandle { task, slot, _scope: PhantomData });
        }
        let live = shared.live.get().checked_add(1).ok_or_else(|| {
            io::Error::other("green::scope: the number of live children would overflow usize")
        })?;
        // Counted before the spawn: if the spawn fails, dropping the child
        // closure (which owns `done`) counts it finished again.
        shared.live.set(live);
        let done = ChildDone(shared.clone());
        let child_slot = slot.clone();
        let child = move || {
            let done = done;
            let outcome = panic::catch_unwind(AssertUnwindSafe(f));
            let me = Context::with(Context::current_task).expect("a child runs in its runtime");
            let result = match outcome {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => {
                    done.0.fail(ScopeError::Failed { error, task: me.task().clone() });
                    Err(JoinError::failed(me.task()))
                }
                Err(payload) => {
                    if me.unwinding.get() {
                        // Torn down at shutdown: let the unwind through;
                        // `done` counts the child finished on the way.
                        drop(me);
                        panic::resume_unwind(payload);
                    }
                    let message = panic_message(&*payload);
                    done.0.fail(ScopeError::Panicked { payload, task: me.task().clone() });
                    Err(JoinError::panicked(Box::new(message), me.task()))
                }
            };
            *child_slot.borrow_mut() = Some(result);
            drop(done);
        };
        // The child reports through `slot` itself; its unit return value
        // is dropped.
        let body = spawn::body(child, drop);
        let size = Context::with(Context::default_stack_size).expect("a scope runs in a coroutine");
        // SAFETY: the child borrows for `'scope`; the scope does not return (nor unwind past its frame)
        // before every child has finished, and at shutdown a parent's scoped children are torn down (or
        // leaked, never to run again) before the parent, so what the child borrows outlives it.
        let spawned = Context::with(|cx| unsafe { cx.spawn_unchecked(task.clone(), size, body) })
            .expect("a scope runs in a coroutine");
        spawned?;
        if shared.cancelled.get() {
            Context::with(|cx| park::cancel(cx, &task));
        }
        shared.children.borrow_mut().push(task.clone());
        shared.parent.scoped_children.borrow_mut().push(task.clone());
        Ok(ScopedJoinHandle { task, slot, _scope: PhantomData })
    }

    /// Spawns a child on any worker of the runtime (see
    /// [`spawn_distributed`](crate::spawn_distributed)): `f` may borrow
    /// anything that outlives the scope, as [`Scope::spawn`]'s children do,
    /// and crosses to another thread before it starts, so it must be
    /// `Send` (what it borrows must be `Sync`), and so must its result.
    ///
    /// The child counts as the scope's as any other: the scope waits for it,
    /// its failure cancels the others and the body, and a cancellation of
    /// the scope reaches it on its worker. On the parent's worker a local
    /// stand-in waits for it (the handle returned is the stand-in's). In a
    /// runtime of one worker the child runs on that one.
    ///
    /// If the runtime is shut down while the child still runs on another
    /// worker, the parent is not unwound: it is left suspended and its stack
    /// leaked (one line on stderr says so), because the child may still
    /// use what it borrows.
    ///
    /// ```
    /// use std::io;
    /// let total = green::Builder::new().workers(2).run(|| {
    ///     let numbers: Vec<u64> = (1..=1000).collect();
    ///     let halves = numbers.chunks(500);
    ///     green::scope(|s| {
    ///         let sums: Vec<_> = halves
    ///             .map(|half| s.spawn_distributed(move || Ok::<u64, io::Error>(half.iter().sum())))
    ///             .collect();
    ///         sums.into_iter().map(|sum| sum.join().expect("summed")).sum::<u64>()
    ///     })
    ///     .expect("no child failed")
    /// });
    /// assert_eq!(total, 500_500);
    /// ```
    ///
    /// # Panics
    ///
    /// If no stack can be had for the stand-in.
    #[track_caller]
    pub fn spawn_distributed<T, F>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> Result<T, E> + Send + 'scope,
        T: Send + 'scope,
        E: Send,
    {
        match self.try_spawn_distributed(f) {
            Ok(handle) => handle,
            Err(err) => panic!("{err}"),
        }
    }

    /// Like [`Scope::spawn_distributed`], reporting a failure to get a
    /// stack for the stand-in as an error.
    ///
    /// # Errors
    ///
    /// When no stack can be had for the stand-in. (A stack for the child
    /// itself is found on its worker; if it cannot be had there, the error
    /// is printed there and the child counts as panicked.)
    #[track_caller]
    pub fn try_spawn_distributed<T, F>(&'scope self, f: F) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> Result<T, E> + Send + 'scope,
        T: Send + 'scope,
        E: Send,
    {
        let live = self.shared.remote_live.get_or_init(|| Arc::new(AtomicUsize::new(0))).clone();
        live.fetch_add(1, Ordering::Relaxed);
        // Capacity 1, one message: the send never waits.
        let (sender, outcome) = bounded(1);
        let child = RemoteChild { f: Some(f), report: Report { sender: Some(sender), outcome: None, live } };
        let job: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || child.run());
        // SAFETY: only the lifetime changes (to 'static). What the job borrows outlives it: its closure
        // drops before its `Report`, whose drop ends the stand-in; the scope waits for every stand-in, and at
        // teardown `RemoteWatch` leaks the parent while a report lives. `Send`: `F`, `T` and `E` are.
        let job: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(job) };
        self.try_spawn(move || stand_in(job, outcome))
    }

    /// Waits until every child has finished. If the parent is cancelled
    /// meanwhile, cancels the children and keeps waiting, shielded: the
    /// children borrow from the parent and must end first.
    fn wait_for_children(&self) {
        let shared = &self.shared;
        while shared.live.get() > 0 {
            *shared.waiter.borrow_mut() = Some(park::waker());
            let site = ParkSite::of(WaitKind::Scope);
            let reason = if shared.cancelled.get() {
                crate::shield(|| park::park(None, site))
            } else {
                park::park(None, site)
            };
            if reason == WakeReason::Cancelled && !shared.cancelled.get() {
                shared.cancel_children();
            }
        }
        shared.waiter.borrow_mut().take();
    }

    /// Takes the finished children off the parent's teardown list: one
    /// pass over the entries made since the scope opened (see the module
    /// documentation), keeping those of enclosing scopes.
    fn release_children(&self) {
        let children = self.shared.children.take();
        let mut list = self.shared.parent.scoped_children.borrow_mut();
        let first = self.shared.first_entry;
        if first > list.len() {
            // Taken by the runtime's teardown.
            return;
        }
        visited(list.len() - first);
        let mut mine = children.iter().peekable();
        let mut kept = first;
        for index in first..list.len() {
            if mine.next_if(|child| Rc::ptr_eq(child, &list[index])).is_none() {
                list.swap(kept, index);
                kept += 1;
            }
        }
        list.truncate(kept);
    }
}

impl<E> fmt::Debug for Scope<'_, '_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("live", &self.shared.live.get())
            .field("cancelled", &self.shared.cancelled.get())
            .finish_non_exhaustive()
    }
}

/// A handle to join one child of a [`scope`].
pub struct ScopedJoinHandle<'scope, T> {
    /// The child.
    task: Rc<TaskCell>,
    /// Where its result arrives.
    slot: Rc<RefCell<Option<Result<T, JoinError>>>>,
    /// It may not outlive the scope.
    _scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the child and returns its value.
    ///
    /// # Errors
    ///
    /// If the child returned `Err` (the error itself goes to the scope's
    /// result) or panicked, or if the caller was cancelled while it waited
    /// ([`JoinError::is_interrupted`]).
    pub fn join(self) -> Result<T, JoinError> {
        crate::task::join::wait_for(&self.task, || self.slot.borrow_mut().take())
    }

    /// Whether the child has finished.
    pub fn is_finished(&self) -> bool {
        self.task.is_done()
    }

    /// The child's identity.
    pub fn task(&self) -> Task {
        self.task.task().clone()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle").field("task", &self.task()).finish()
    }
}

/// The first failure in a [`scope`].
pub enum ScopeError<E> {
    /// A child returned this error.
    Failed {
        /// The error.
        error: E,
        /// The child that returned it.
        task: Task,
    },
    /// A child panicked.
    Panicked {
        /// The panic payload, for [`std::panic::resume_unwind`].
        payload: Box<dyn Any + Send + 'static>,
        /// The child that panicked.
        task: Task,
    },
    /// The parent was cancelled (a cancel request or a timeout scope) while
    /// it waited for its children, and cancelled them.
    Cancelled,
}

impl<E> ScopeError<E> {
    /// The child's error, if the first failure was an `Err`.
    pub fn into_error(self) -> Option<E> {
        match self {
            ScopeError::Failed { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether the scope ended because its parent was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ScopeError::Cancelled)
    }
}

impl<E: fmt::Display> fmt::Display for ScopeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeError::Failed { error, task } => {
                write!(
                    f,
                    "coroutine '{}' (id {}) failed: {error}",
                    task.name().unwrap_or("<unnamed>"),
                    task.id()
                )
            }
            ScopeError::Panicked { payload, task } => write!(
                f,
                "coroutine '{}' (id {}) panicked: {}",
                task.name().unwrap_or("<unnamed>"),
                task.id(),
                panic_message(&**payload)
            ),
            ScopeError::Cancelled => {
                f.write_str("green: the scope was cancelled while it waited for its children")
            }
        }
    }
}

impl<E: fmt::Display> fmt::Debug for ScopeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<E: fmt::Display> std::error::Error for ScopeError<E> {}

/// The text of a panic payload, when it has one.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&'static str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| String::from("<non-string panic payload>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries the bookkeeping of one scope with `n` children looks at;
    /// with `nested`, each child is spawned from the body of an inner scope
    /// of its own, next to a child of that inner scope, so that every
    /// release finds entries of the enclosing scope in its way.
    fn visits_for(n: usize, nested: bool) -> usize {
        crate::run(move || {
            let ran = Cell::new(0);
            let before = crate::task::visits::counter::VISITS.get();
            let outcome = scope(|outer| {
                for _ in 0..n {
                    let ran = &ran;
                    let child = move || {
                        crate::yield_now();
                        ran.set(ran.get() + 1);
                        Ok::<(), ()>(())
                    };
                    if nested {
                        let inner = scope(|inner| {
                            outer.spawn(child);
                            inner.spawn(move || Ok::<(), ()>(()));
                        });
                        assert!(inner.is_ok(), "the inner scope's child succeeded");
                    } else {
                        outer.spawn(child);
                    }
                }
            });
            assert!(outcome.is_ok(), "no child failed");
            assert_eq!(ran.get(), n, "every child ran");
            let parent = Context::with(Context::current_task).expect("in a coroutine");
            assert!(parent.scoped_children.borrow().is_empty(), "every child was released");
            crate::task::visits::counter::VISITS.get() - before
        })
    }

    #[test]
    fn releasing_children_looks_at_each_entry_a_bounded_number_of_times() {
        for nested in [false, true] {
            let small = visits_for(1_000, nested);
            let large = visits_for(4_000, nested);
            assert!(small <= 3 * 1_000, "nested {nested}: {small} entries looked at for 1,000 children");
            assert!(
                large <= 4 * small,
                "nested {nested}: {small} looked at for 1,000 children but {large} for 4,000"
            );
        }
    }

    #[test]
    fn a_failure_cancels_each_child_once() {
        let looked_at = crate::run(|| {
            let before = crate::task::visits::counter::VISITS.get();
            let outcome = scope(|s| {
                for _ in 0..1_000 {
                    s.spawn(|| {
                        crate::sleep(std::time::Duration::from_secs(3600)).map_err(|_| "cancelled")?;
                        Ok::<(), &str>(())
                    });
                }
                // Every child fails, one after the other, once it is
                // cancelled: only the first failure cancels anything.
                s.spawn(|| Err::<(), _>("first"));
            });
            assert_eq!(outcome.err().and_then(ScopeError::into_error), Some("first"));
            crate::task::visits::counter::VISITS.get() - before
        });
        // One pass to cancel, one to release.
        assert!(looked_at <= 2 * 1_001 + 1, "{looked_at} entries looked at");
    }
}
