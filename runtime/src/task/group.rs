//! [`TaskGroup`]: an owned set of coroutines to join as they finish and to
//! cancel together (tokio's `JoinSet`, curio's `TaskGroup`).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

use super::{JoinError, JoinHandle, TaskId};
use crate::park::{self, WakeReason, Waker};

/// A set of coroutines that return `T`, joined in the order they finish.
///
/// Unlike [`scope`](crate::scope), a group is a value: it can be stored and
/// passed around, and its coroutines are `'static` (they cannot borrow from
/// the caller). Dropping the group cancels the coroutines still in it.
///
/// ```
/// use std::time::Duration;
/// green::run(|| {
///     let mut group = green::TaskGroup::new();
///     for ms in [30u64, 10, 20] {
///         group.spawn(move || {
///             green::sleep(Duration::from_millis(ms));
///             ms
///         });
///     }
///     let mut order = Vec::new();
///     while let Some((_, result)) = group.join_next() {
///         order.push(result.unwrap());
///     }
///     assert_eq!(order, [10, 20, 30], "joined in the order they finished");
/// });
/// ```
pub struct TaskGroup<T> {
    /// The coroutines not yet joined.
    handles: Vec<JoinHandle<T>>,
    /// Shared with the coroutines, which wake the joiner when they finish.
    notify: Rc<Notify>,
}

/// What the members tell the group's joiner.
#[derive(Default)]
struct Notify {
    /// The joiner parked in [`TaskGroup::join_next`], if any; woken when
    /// any member finishes.
    waiter: RefCell<Option<Waker>>,
    /// Members whose closures have ended, in the order they ended.
    finished: RefCell<VecDeque<TaskId>>,
}

impl Notify {
    fn finished(&self, id: Option<TaskId>) {
        if let Some(id) = id {
            self.finished.borrow_mut().push_back(id);
        }
        let waiter = self.waiter.borrow_mut().take();
        if let Some(waiter) = waiter {
            waiter.wake(WakeReason::Ready);
        }
    }
}

/// Tells the group's joiner that a member's closure has ended, by return
/// or by panic (or that the closure of a member cancelled before it
/// started was dropped, outside any coroutine).
struct WakeOnExit(Rc<Notify>);

impl Drop for WakeOnExit {
    fn drop(&mut self) {
        self.0.finished(crate::try_current().map(|task| task.id()));
    }
}

impl<T: 'static> TaskGroup<T> {
    /// An empty group.
    pub fn new() -> TaskGroup<T> {
        TaskGroup { handles: Vec::new(), notify: Rc::new(Notify::default()) }
    }

    /// Spawns a coroutine into the group.
    ///
    /// # Panics
    ///
    /// As [`spawn`](crate::spawn): outside a runtime, or with no stack.
    pub fn spawn<F>(&mut self, f: F) -> TaskId
    where
        F: FnOnce() -> T + 'static,
    {
        self.spawn_with(super::Builder::new(), f)
    }

    /// Spawns a coroutine with options (name, stack size) into the group.
    ///
    /// # Panics
    ///
    /// As [`spawn`](crate::spawn): outside a runtime, or with no stack.
    pub fn spawn_with<F>(&mut self, builder: super::Builder, f: F) -> TaskId
    where
        F: FnOnce() -> T + 'static,
    {
        let exit = WakeOnExit(self.notify.clone());
        let handle = builder.spawn(move || {
            let _exit = exit;
            f()
        });
        let handle = handle.unwrap_or_else(|err| panic!("{err}"));
        let id = handle.id();
        self.handles.push(handle);
        id
    }

    /// Waits for the next coroutine of the group to finish and returns its
    /// id and result; `None` once the group is empty.
    ///
    /// If the caller is cancelled while it waits, returns the id of a
    /// member still running with a [`JoinError`] that
    /// [`is_interrupted`](JoinError::is_interrupted); that member stays in
    /// the group.
    pub fn join_next(&mut self) -> Option<(TaskId, Result<T, JoinError>)> {
        loop {
            if self.handles.is_empty() {
                return None;
            }
            if let Some(index) = self.next_finished() {
                let handle = self.handles.swap_remove(index);
                let id = handle.id();
                return Some((id, handle.join()));
            }
            *self.notify.waiter.borrow_mut() = Some(park::waker());
            if park::park(None) == WakeReason::Cancelled {
                self.notify.waiter.borrow_mut().take();
                if !self.notify.finished.borrow().is_empty()
                    || self.handles.iter().any(JoinHandle::is_finished)
                {
                    // A member finished as the wait was cancelled: report it.
                    park::retract_cancellation();
                    continue;
                }
                let handle = &self.handles[0];
                return Some((handle.id(), Err(handle.interrupted())));
            }
        }
    }

    /// Where in `handles` the member that finished first is: the oldest
    /// recorded end still in the group (its task may be a step away from
    /// done, and `join` waits for that step), else any member found done
    /// without one (cancelled before it started).
    fn next_finished(&mut self) -> Option<usize> {
        loop {
            let Some(id) = self.notify.finished.borrow_mut().pop_front() else { break };
            if let Some(index) = self.handles.iter().position(|handle| handle.id() == id) {
                return Some(index);
            }
        }
        self.handles.iter().position(JoinHandle::is_finished)
    }

    /// Waits for every coroutine of the group and returns their results in
    /// the order they finished.
    pub fn join_all(&mut self) -> Vec<(TaskId, Result<T, JoinError>)> {
        let mut results = Vec::with_capacity(self.handles.len());
        while let Some(next) = self.join_next() {
            if next.1.as_ref().is_err_and(JoinError::is_interrupted) {
                break;
            }
            results.push(next);
        }
        results
    }

    /// Cancels every coroutine in the group (see
    /// [`JoinHandle::cancel`]); join them to see how they ended.
    pub fn cancel_all(&self) {
        for handle in &self.handles {
            handle.cancel();
        }
    }

    /// Coroutines in the group that have not been joined.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether every coroutine of the group has been joined.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

impl<T: 'static> Default for TaskGroup<T> {
    fn default() -> Self {
        TaskGroup::new()
    }
}

impl<T> Drop for TaskGroup<T> {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.cancel();
        }
    }
}

impl<T> fmt::Debug for TaskGroup<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup").field("len", &self.handles.len()).finish_non_exhaustive()
    }
}
