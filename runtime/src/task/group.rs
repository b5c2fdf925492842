//! [`TaskGroup`]: an owned set of coroutines to join as they finish and to
//! cancel together (tokio's `JoinSet`, curio's `TaskGroup`).
//!
//! # Finding the member that finished, in O(1)
//!
//! Each member gets a *key* when it is spawned: a serial number of its
//! group, never reused. Its closure carries the key and pushes it onto
//! `Notify::finished` when it ends, however it ends: it returns, panics,
//! is unwound at shutdown, or is dropped without running (cancelled before
//! it started). The group keeps its members in a dense vector, and a map
//! from key to position in it:
//!
//! ```text
//!   finished: [k7, k2]          members: [ (k2, h2) (k5, h5) (k7, h7) ]
//!      pop k7 ──> positions[k7] = 2 ──> swap_remove(2), fix the position
//!                                       of the member moved into its place
//! ```
//!
//! so spawning, joining the next finished member and reporting an
//! interrupted join are O(1) whatever the size of the group. A key whose
//! member is not in the group (its spawn failed, and the closure was
//! dropped unspawned) is skipped.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::rc::Rc;

use super::cell::ParkSite;
use super::cell::Waker;
use super::error::JoinError;
use super::id::TaskId;
use super::join::JoinHandle;
use super::spawn::Builder;
use super::state::WakeReason;
use super::visits::visited;
use crate::context::Context;
use crate::dump::kind::WaitKind;
use crate::park;

/// A set of coroutines that return `T`, joined in the order they finish.
///
/// Unlike [`scope`](crate::scope()), a group is a value: it can be stored and
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
    /// The coroutines not yet joined, in no particular order.
    members: Vec<Member<T>>,
    /// Where each member is in `members`, by its key.
    positions: HashMap<u64, usize>,
    /// The key of the next member.
    next_key: u64,
    /// Shared with the coroutines, which wake the joiner when they finish.
    notify: Rc<Notify>,
}

/// One coroutine of a group.
struct Member<T> {
    /// Its key in the group (see the module documentation).
    key: u64,
    /// Its handle.
    handle: JoinHandle<T>,
}

/// What the members tell the group's joiner.
#[derive(Default)]
struct Notify {
    /// The joiner parked in [`TaskGroup::join_next`], if any; woken when
    /// any member finishes.
    waiter: RefCell<Option<Waker>>,
    /// Keys of the members whose closures have ended, in the order they
    /// ended.
    finished: RefCell<VecDeque<u64>>,
}

impl Notify {
    fn finished(&self, key: u64) {
        self.finished.borrow_mut().push_back(key);
        let waiter = self.waiter.borrow_mut().take();
        if let Some(waiter) = waiter {
            Context::with(|cx| park::wake(cx, &waiter, WakeReason::Ready));
        }
    }
}

/// Tells the group's joiner that a member's closure has ended, by return
/// or by panic, or was dropped without running.
struct WakeOnExit {
    /// The group's side of the conversation.
    notify: Rc<Notify>,
    /// The member's key.
    key: u64,
}

impl Drop for WakeOnExit {
    fn drop(&mut self) {
        self.notify.finished(self.key);
    }
}

impl<T: 'static> TaskGroup<T> {
    /// An empty group.
    pub fn new() -> TaskGroup<T> {
        TaskGroup {
            members: Vec::new(),
            positions: HashMap::new(),
            next_key: 0,
            notify: Rc::new(Notify::default()),
        }
    }

    /// Spawns a coroutine into the group.
    ///
    /// # Panics
    ///
    /// As [`spawn`](crate::spawn): outside a runtime, or with no stack.
    #[track_caller]
    pub fn spawn<F>(&mut self, f: F) -> TaskId
    where
        F: FnOnce() -> T + 'static,
    {
        self.spawn_with(Builder::new(), f)
    }

    /// Spawns a coroutine with options (name, stack size) into the group.
    ///
    /// # Panics
    ///
    /// As [`spawn`](crate::spawn): outside a runtime, or with no stack.
    #[track_caller]
    pub fn spawn_with<F>(&mut self, builder: Builder, f: F) -> TaskId
    where
        F: FnOnce() -> T + 'static,
    {
        let key = self.next_key;
        // A key is reused only after 2^64 spawns into one group, which no
        // program lives to make.
        self.next_key = key.wrapping_add(1);
        let exit = WakeOnExit { notify: self.notify.clone(), key };
        let handle = builder.spawn(move || {
            let _exit = exit;
            f()
        });
        let handle = handle.unwrap_or_else(|err| panic!("{err}"));
        let id = handle.id();
        self.positions.insert(key, self.members.len());
        self.members.push(Member { key, handle });
        id
    }

    /// Spawns `f` on any worker of the runtime (see
    /// [`spawn_distributed`](crate::spawn_distributed)) as a member of the
    /// group: joined, cancelled and dropped with the others. On the calling
    /// worker a local stand-in is the member: it waits for the task, passes
    /// a cancellation on to it, and ends as it ended (its value, its panic,
    /// or cancelled). The id returned is the stand-in's.
    ///
    /// ```
    /// let mut total = 0;
    /// green::Builder::new().workers(2).run(|| {
    ///     let mut group = green::TaskGroup::new();
    ///     for n in 1..=10u64 {
    ///         group.spawn_distributed(move || n * n);
    ///     }
    ///     while let Some((_, square)) = group.join_next() {
    ///         total += square.expect("no member failed");
    ///     }
    /// });
    /// assert_eq!(total, 385);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`spawn`](crate::spawn): outside a runtime, or with no stack for
    /// the stand-in.
    #[track_caller]
    pub fn spawn_distributed<F>(&mut self, f: F) -> TaskId
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send,
    {
        self.spawn(move || {
            // Placed when the stand-in starts: a member cancelled before
            // then never places its task.
            match Builder::new().spawn_distributed(f) {
                Ok(child) => super::distributed::stand_in(&child),
                Err(err) => panic!("{err}"),
            }
        })
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
            if self.members.is_empty() {
                return None;
            }
            if let Some((key, position)) = self.next_finished() {
                let handle = &mut self.members[position].handle;
                let id = handle.id();
                // Its closure has ended; the task may be a step away from
                // done. Wait for that step without giving up the handle.
                if let Err(interrupted) = handle.wait() {
                    self.notify.finished.borrow_mut().push_front(key);
                    return Some((id, Err(interrupted)));
                }
                let member = self.remove(position);
                return Some((id, member.handle.join()));
            }
            *self.notify.waiter.borrow_mut() = Some(park::waker());
            if park::park(None, ParkSite::of(WaitKind::TaskGroup)) == WakeReason::Cancelled {
                self.notify.waiter.borrow_mut().take();
                if !self.notify.finished.borrow().is_empty() {
                    // A member finished as the wait was cancelled: report it.
                    park::retract_cancellation();
                    continue;
                }
                let handle = &self.members[0].handle;
                return Some((handle.id(), Err(handle.interrupted())));
            }
        }
    }

    /// The key and position of the member whose closure ended first among
    /// those still in the group.
    fn next_finished(&mut self) -> Option<(u64, usize)> {
        loop {
            let key = self.notify.finished.borrow_mut().pop_front()?;
            visited(1);
            if let Some(&position) = self.positions.get(&key) {
                return Some((key, position));
            }
        }
    }

    /// Takes the member at `position` out of the group.
    fn remove(&mut self, position: usize) -> Member<T> {
        let member = self.members.swap_remove(position);
        self.positions.remove(&member.key);
        if let Some(moved) = self.members.get(position) {
            self.positions.insert(moved.key, position);
        }
        member
    }

    /// Waits for every coroutine of the group and returns their results in
    /// the order they finished.
    pub fn join_all(&mut self) -> Vec<(TaskId, Result<T, JoinError>)> {
        let mut results = Vec::with_capacity(self.members.len());
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
        for member in &self.members {
            member.handle.cancel();
        }
    }

    /// Coroutines in the group that have not been joined.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether every coroutine of the group has been joined.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl<T: 'static> Default for TaskGroup<T> {
    fn default() -> Self {
        TaskGroup::new()
    }
}

impl<T> Drop for TaskGroup<T> {
    fn drop(&mut self) {
        for member in &self.members {
            member.handle.cancel();
        }
    }
}

impl<T> fmt::Debug for TaskGroup<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup").field("len", &self.members.len()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Members looked at while joining a group of `n` members, each of
    /// which yields once and finishes.
    fn visits_to_join(n: usize) -> usize {
        crate::run(move || {
            let mut group = TaskGroup::new();
            for i in 0..n {
                group.spawn(move || {
                    crate::yield_now();
                    i
                });
            }
            let before = crate::task::visits::counter::VISITS.get();
            let mut sum = 0;
            while let Some((_, result)) = group.join_next() {
                sum += result.expect("no member failed");
            }
            assert_eq!(sum, n * (n - 1) / 2, "every member was joined once");
            crate::task::visits::counter::VISITS.get() - before
        })
    }

    #[test]
    fn a_join_looks_at_a_bounded_number_of_members_however_large_the_group() {
        let small = visits_to_join(1_000);
        let large = visits_to_join(4_000);
        assert!(small <= 2 * 1_000, "{small} members looked at to join 1,000");
        assert!(large <= 4 * small, "{small} looked at for 1,000 members but {large} for 4,000");
    }
}
