//! Parking: the one way a coroutine waits.
//!
//! Every blocking operation (I/O readiness, sleep, join, and the channels
//! and locks built on top) waits the same way:
//!
//! ```text
//!   let waker = park::waker();          // 1. a handle for this wait
//!   wait_list.push(waker);              // 2. hand it to whoever will wake us
//!   match park::park(deadline) {        // 3. suspend until woken
//!       WakeReason::Ready     => retry the operation,
//!       WakeReason::TimedOut  => remove our waker, report the timeout,
//!       WakeReason::Cancelled => remove our waker, report cancellation,
//!   }
//! ```
//!
//! # The wake-up protocol
//!
//! A parked task must be put on the run queue exactly once per park: never
//! zero times (a lost wake-up hangs it) and never twice (it would run while
//! parked somewhere else). The rules that guarantee it:
//!
//! 1. A [`Waker`] is made for one *epoch* of its task: the number of parks
//!    the task has completed when the waker was made. `park` advances the
//!    epoch when it returns, so every waker made for an earlier wait turns
//!    into a no-op.
//! 2. [`Waker::wake`] acts only if the task is still in the waker's epoch:
//!    * task **Parked**: it becomes Runnable, records the reason and is
//!      pushed on the run queue. This is the only transition out of Parked,
//!      so exactly one waker wins.
//!    * task **Running** (it made the waker and has not parked yet): the
//!      reason is stored in `pending`, and the coming `park` returns it at
//!      once instead of suspending. No wake-up is lost in that window.
//!    * task **Runnable** or **Done**: someone already won; nothing happens.
//! 3. Only the thread that owns the task may wake it: `Waker` is `!Send`.
//!    Waking from another thread goes through that scheduler's inbox.
//! 4. `park` may return `Ready` without the awaited condition being true
//!    (a waker registered for an earlier attempt fired late in the same
//!    epoch). Every caller re-checks its condition in a loop.
//! 5. A wait on a shared primitive (`sync/waiter.rs`) parks in a loop
//!    without moving the epoch (`Scheduler::park_task`) and ends the epoch
//!    once when it is over ([`end_epoch`]): its handles carry the epoch
//!    they were made in, which stays right for the whole wait, so a
//!    notifier on another thread never has to learn a newer one.
//!
//! A deadline is a timer holding one more waker for the same epoch; it wins
//! only if nothing else woke the task first, and `park` disarms it if
//! something did.

use std::panic::Location;
use std::rc::Rc;
use std::time::Instant;

use crate::scheduler::Scheduler;
use crate::task::cell::TaskCell;

/// Why a parked coroutine was resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WakeReason {
    /// The event it waited for happened (or may have: re-check).
    Ready,
    /// Its deadline passed first.
    TimedOut,
    /// It was cancelled, or the runtime is shutting down.
    Cancelled,
}

/// A handle that wakes one task from one park. See the module docs.
pub(crate) struct Waker {
    /// The task to wake.
    task: Rc<TaskCell>,
    /// The task's epoch when this waker was made.
    epoch: u32,
}

impl Waker {
    /// Wakes the task if it is still in this waker's epoch; returns whether
    /// this call was the one that woke it.
    pub(crate) fn wake(self, reason: WakeReason) -> bool {
        self.wake_by_ref(reason)
    }

    /// Like [`Waker::wake`], keeping the waker.
    pub(crate) fn wake_by_ref(&self, reason: WakeReason) -> bool {
        Scheduler::with(|s| s.wake_task(&self.task, self.epoch, reason))
            .expect("a task is woken on its own thread, inside its runtime")
    }

    /// Whether two wakers belong to the same task.
    pub(crate) fn same_task(&self, other: &Waker) -> bool {
        Rc::ptr_eq(&self.task, &other.task)
    }

    /// Whether this waker belongs to `task`.
    pub(crate) fn is_for<S: ?Sized>(&self, task: &TaskCell<S>) -> bool {
        std::ptr::addr_eq(Rc::as_ptr(&self.task), task)
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waker").field("task", &self.task.info.owner.id).field("epoch", &self.epoch).finish()
    }
}

/// A waker for the running task's coming park.
///
/// # Panics
///
/// Outside a coroutine. Callers check [`crate::scheduler::in_coroutine`]
/// first and fall back to blocking the thread.
pub(crate) fn waker() -> Waker {
    Scheduler::with(|s| {
        let task = s.current_task();
        let epoch = task.epoch.get();
        Waker { task, epoch }
    })
    .expect("park::waker called outside a coroutine")
}

/// Suspends the running task until a waker for this epoch fires, or
/// `deadline` passes. See the module docs.
///
/// # Panics
///
/// Outside a coroutine.
#[inline(always)]
#[track_caller]
pub(crate) fn park(deadline: Option<Instant>) -> WakeReason {
    // The caller's place in the runtime's code names what the task waits
    // on, for the deadlock report (see `sync/touch.rs`).
    let at = Location::caller();
    Scheduler::with(|s| s.park(deadline, at)).expect("park called outside a coroutine")
}

/// Ends the epoch of a wait made of `Scheduler::park_task` calls, which
/// park without moving the epoch: wakers made for it are ignored from now
/// on, and a wake-up of it still pending is dropped (the wait is over;
/// cancellation is level-triggered, so none is lost).
#[inline]
pub(crate) fn end_epoch(task: &TaskCell) {
    task.epoch.set(task.epoch.get().wrapping_add(1));
    task.pending.set(None);
}

/// Takes back the cancellation the running task's last park delivered,
/// because the operation it interrupted completed anyway (see
/// `CancelState::retract`). Every wait that can report success after its
/// park returned `Cancelled` calls this, so that a timeout scope does not
/// discard a result that exists.
pub(crate) fn retract_cancellation() {
    Scheduler::with(|s| {
        if s.has_current() {
            s.current_task().cancel.retract();
        }
    });
}

/// Makes a waker for `task` in its current epoch (for the scheduler's
/// own timers). Wake-ups posted from other threads carry their epoch and go
/// through `Scheduler::wake_local` instead.
pub(crate) fn waker_for(task: Rc<TaskCell>) -> Waker {
    let epoch = task.epoch.get();
    Waker { task, epoch }
}
