//! Structured concurrency: [`scope`], whose children may borrow from the
//! caller and never outlive it.
//!
//! ```text
//!   green::scope(|s| {              parent coroutine
//!       s.spawn(|| a(&data));  ---->  child a ─┐
//!       s.spawn(|| b(&data));  ---->  child b ─┤ the first to fail (Err or panic)
//!       ...                                    │ cancels the others
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
//! * **The first failure cancels the rest.** A child fails by returning
//!   `Err` or by panicking; the scope records the first failure, cancels
//!   every other child (their blocking calls fail with cancellation
//!   errors, which the scope does not count as failures), and reports it
//!   once all have finished.
//! * **At runtime shutdown** a parent's scoped children are torn down
//!   before the parent itself, so no child ever runs (or unwinds) after the
//!   frame it borrows from.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use crate::park::{self, WakeReason, Waker};
use crate::scheduler::Scheduler;
use crate::task::cell::TaskCell;
use crate::task::{JoinError, Task};

/// Runs `body` with a [`Scope`] to spawn children that may borrow from the
/// caller, and returns once every child has finished.
///
/// Each child returns `Result<T, E>`. If one returns `Err` or panics, the
/// others are cancelled, and `scope` returns that first failure once all
/// have finished. Otherwise it returns `body`'s value.
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
    let parent = Scheduler::with(|s| s.has_current().then(|| s.current_task()))
        .flatten()
        .unwrap_or_else(|| panic!("green::scope called outside a coroutine (start one with green::run)"));
    let scope = Scope { state: Rc::new(State::new()), parent, _scope: PhantomData, _env: PhantomData };
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| body(&scope)));
    if outcome.is_err() {
        scope.state.cancel_children();
    }
    scope.wait_for_children();
    scope.release_children();
    let value = match outcome {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    };
    match scope.state.failure.take() {
        Some(failure) => Err(failure),
        None if scope.state.cancelled.get() => Err(ScopeError::Cancelled),
        None => Ok(value),
    }
}

/// A scope to spawn children in; see [`scope`].
pub struct Scope<'scope, 'env: 'scope, E> {
    /// What the children share with the parent.
    state: Rc<State<E>>,
    /// The parent task, which tears its scoped children down first.
    parent: Rc<TaskCell>,
    /// Children may borrow for `'scope`...
    _scope: PhantomData<&'scope mut &'scope ()>,
    /// ...from data that lives for `'env`.
    _env: PhantomData<&'env mut &'env ()>,
}

/// What a scope's children and its parent share.
struct State<E> {
    /// Children still running.
    live: Cell<usize>,
    /// Every child, to cancel them and to release them at the end.
    children: RefCell<Vec<Rc<TaskCell>>>,
    /// The parent, while it waits for children to finish.
    waiter: RefCell<Option<Waker>>,
    /// The first failure of a child.
    failure: RefCell<Option<ScopeError<E>>>,
    /// The children have been cancelled (after a failure, a panic of the
    /// body, or a cancellation of the parent); later failures are their
    /// consequence and are not recorded.
    cancelled: Cell<bool>,
}

impl<E> State<E> {
    fn new() -> State<E> {
        State {
            live: Cell::new(0),
            children: RefCell::new(Vec::new()),
            waiter: RefCell::new(None),
            failure: RefCell::new(None),
            cancelled: Cell::new(false),
        }
    }

    /// Records a failure if it is the first, and cancels the other children.
    fn fail(&self, failure: ScopeError<E>) {
        if self.cancelled.get() {
            return;
        }
        *self.failure.borrow_mut() = Some(failure);
        self.cancel_children();
    }

    /// Cancels every child that is still running.
    fn cancel_children(&self) {
        self.cancelled.set(true);
        let children = self.children.borrow().clone();
        Scheduler::with(|s| {
            for child in &children {
                s.cancel(child);
            }
        });
    }

    /// A child has finished.
    fn child_done(&self) {
        self.live.set(self.live.get() - 1);
        if self.live.get() == 0 {
            let waiter = self.waiter.borrow_mut().take();
            if let Some(waiter) = waiter {
                waiter.wake(WakeReason::Ready);
            }
        }
    }
}

impl<'scope, 'env, E: 'scope> Scope<'scope, 'env, E> {
    /// Spawns a child that may borrow anything that outlives the scope.
    ///
    /// The child's coroutine is built at once (it borrows, so it cannot
    /// wait in a `'static` slot as a [`spawn`](crate::spawn)ed one does): a
    /// child cancelled before it first runs still runs up to its first
    /// blocking call, where the cancellation is delivered.
    ///
    /// # Panics
    ///
    /// If no stack can be had for the child.
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
    /// # Errors
    ///
    /// When no stack can be had (the error says which limit was hit).
    pub fn try_spawn<T, F>(&'scope self, f: F) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> Result<T, E> + 'scope,
        T: 'scope,
    {
        let slot: Rc<RefCell<Option<Result<T, JoinError>>>> = Rc::new(RefCell::new(None));
        let task = Rc::new(TaskCell::new(None, ()));
        let state = self.state.clone();
        let child_slot = slot.clone();
        let child = move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(f));
            let me = Scheduler::with(|s| s.current_task()).expect("a child runs in its runtime");
            let result = match outcome {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => {
                    state.fail(ScopeError::Failed { error, task: Task::from_cell(&me) });
                    Err(JoinError::failed(&me))
                }
                Err(payload) => {
                    if me.unwinding.get() {
                        // Torn down at shutdown: let corosensei's unwind through.
                        drop(me);
                        panic::resume_unwind(payload);
                    }
                    let message = panic_message(&*payload);
                    state.fail(ScopeError::Panicked { payload, task: Task::from_cell(&me) });
                    Err(JoinError::panicked(Box::new(message), &me))
                }
            };
            *child_slot.borrow_mut() = Some(result);
            state.child_done();
        };
        // The child reports through `slot` itself; its unit return value
        // is dropped.
        let body = crate::task::body(child, drop);
        let size = Scheduler::with(|s| s.default_stack_size()).expect("a scope runs in a coroutine");
        // The scope does not return (nor unwind past its frame) before
        // every child has finished, and at shutdown a parent's scoped
        // children are torn down before the parent.
        // SAFETY: so what the child borrows for `'scope` outlives it.
        let spawned = Scheduler::with(|s| unsafe { s.spawn_unchecked(task.clone(), size, body) })
            .expect("a scope runs in a coroutine");
        spawned?;
        self.state.live.set(self.state.live.get() + 1);
        self.state.children.borrow_mut().push(task.clone());
        self.parent.scoped_children.borrow_mut().push(task.clone());
        Ok(ScopedJoinHandle { task, slot, _scope: PhantomData })
    }

    /// Waits until every child has finished. If the parent is cancelled
    /// meanwhile, cancels the children and keeps waiting, shielded: the
    /// children borrow from the parent and must end first.
    fn wait_for_children(&self) {
        while self.state.live.get() > 0 {
            *self.state.waiter.borrow_mut() = Some(park::waker());
            let reason = if self.state.cancelled.get() {
                crate::shield(|| park::park(None))
            } else {
                park::park(None)
            };
            if reason == WakeReason::Cancelled && !self.state.cancelled.get() {
                self.state.cancel_children();
            }
        }
        self.state.waiter.borrow_mut().take();
    }

    /// Forgets the finished children in the parent's teardown list.
    fn release_children(&self) {
        let children = self.state.children.take();
        self.parent.scoped_children.borrow_mut().retain(|c| !children.iter().any(|d| Rc::ptr_eq(c, d)));
    }
}

impl<E> fmt::Debug for Scope<'_, '_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("live", &self.state.live.get())
            .field("cancelled", &self.state.cancelled.get())
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
        crate::task::wait_for(&self.task, || self.slot.borrow_mut().take())
    }

    /// Whether the child has finished.
    pub fn is_finished(&self) -> bool {
        self.task.is_done()
    }

    /// The child's identity.
    pub fn task(&self) -> Task {
        Task::from_cell(&self.task)
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
