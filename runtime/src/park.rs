//! Parking and waking: the one way a coroutine waits, and the rules that
//! make every wait end exactly once.
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
//! This file is the only place that moves a task out of Running into
//! Parked or Runnable (`park*`, `yield_now`) and out of Parked (`wake`,
//! `wake_ref`: one rule, two ways to name the task). The scheduler loop
//! (`scheduler.rs`) moves tasks into Running and Done.
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
//! 2. [`wake`] acts only if the task is still in the waker's epoch:
//!    * task **Parked**: it becomes Runnable, records the reason and is
//!      pushed on the run queue. This is the only transition out of Parked,
//!      so exactly one waker wins.
//!    * task **Running** (it made the waker and has not parked yet): the
//!      reason is stored in `pending`, and the coming `park` returns it at
//!      once instead of suspending. No wake-up is lost in that window.
//!    * task **Runnable** or **Done**: someone already won; nothing happens.
//! 3. Only the thread that owns the task may wake it: `Waker` is `!Send`.
//!    Waking from another thread goes through that runtime's inbox, which
//!    carries a [`ParkRef`] (registry key, task id, epoch) and is drained
//!    by the scheduler into [`wake_ref`]: the same rule.
//! 4. `park` may return `Ready` without the awaited condition being true
//!    (a waker registered for an earlier attempt fired late in the same
//!    epoch). Every caller re-checks its condition in a loop.
//! 5. A wait on a primitive (`sync/wait/`) parks in a loop without moving
//!    the epoch ([`park_in_epoch`]) and ends the epoch once when it is over
//!    ([`end_epoch`]): its handles carry the epoch they were made in,
//!    which stays right for the whole wait, so a notifier on another
//!    thread never has to learn a newer one.
//!
//! A deadline is a timer holding one more waker for the same epoch; it wins
//! only if nothing else woke the task first, and `park` disarms it if
//! something did.

use std::rc::Rc;
use std::thread;
use std::time::Instant;

use crate::context::Context;
use crate::task::cell::{ParkSite, TaskCell, Waker};
use crate::task::coroutine::TaskYielder;
use crate::task::state::{ParkRef, Switch, TaskState, Teardown, WakeReason};
use crate::task::teardown::{self, Step};

/// A waker for the running task's coming park.
///
/// # Panics
///
/// Outside a coroutine. Callers check `context::in_coroutine` first and
/// fall back to blocking the thread.
pub(crate) fn waker() -> Waker {
    Context::with(|cx| {
        let task = cx.current_task();
        let epoch = task.epoch.get();
        Waker::new(task, epoch)
    })
    .expect("park::waker called outside a coroutine")
}

/// Wakes the task of `waker` if it is still in the waker's epoch; returns
/// whether this call was the one that woke it (rule 2).
#[inline]
pub(crate) fn wake(cx: &Context, waker: &Waker, reason: WakeReason) -> bool {
    rule(cx, &waker.task, waker.epoch, reason)
}

/// Wakes the task at `at`, a task of this runtime named by its registry
/// key, id and epoch; a task that has finished, or moved past that park,
/// is left alone. How wake-ups from the inbox, and cancellations by
/// handle, are performed.
#[inline]
pub(crate) fn wake_ref(cx: &Context, at: ParkRef, reason: WakeReason) -> bool {
    let tasks = cx.tasks.borrow();
    match tasks.get(at.key).filter(|task| task.id().as_u64() == at.id) {
        Some(task) => rule(cx, task, at.epoch, reason),
        None => false,
    }
}

/// The wake rule (rule 2 of the module documentation).
#[inline(always)]
fn rule(cx: &Context, task: &Rc<TaskCell>, epoch: u32, reason: WakeReason) -> bool {
    let cell: &TaskCell = task;
    if cell.epoch.get() != epoch {
        return false;
    }
    match cell.state.get() {
        TaskState::Parked => {
            cell.reason.set(reason);
            cell.state.set(TaskState::Runnable);
            cx.run_queue.push(task.clone());
            if cx.metrics.woke() {
                cell.delay_timed.set(true);
            }
            true
        }
        TaskState::Running if cell.pending.get().is_none() => {
            cell.pending.set(Some(reason));
            true
        }
        _ => false,
    }
}

/// Suspends the running task until a waker for this epoch fires, or
/// `deadline` passes, and ends the epoch; `site` says what it waits for
/// (for the task dump and the deadlock report). See the module docs.
///
/// # Panics
///
/// Outside a coroutine.
#[inline(always)]
pub(crate) fn park(deadline: Option<Instant>, site: ParkSite) -> WakeReason {
    Context::with(|cx| {
        let task = cx.current_task();
        task.park_site.set(site);
        let reason = park_in_epoch(cx, &task, deadline);
        task.epoch.set(task.epoch.get().wrapping_add(1));
        reason
    })
    .expect("park called outside a coroutine")
}

/// Parks `task`, the running task, without moving its epoch (rule 5; see
/// [`end_epoch`]). Takes the record, not its `Rc`, so that a caller that
/// parks in a loop finds the record once.
#[inline(always)]
pub(crate) fn park_in_epoch(cx: &Context, task: &TaskCell, deadline: Option<Instant>) -> WakeReason {
    debug_assert_eq!(
        cx.with_current(|running| std::ptr::addr_eq(Rc::as_ptr(running), task)),
        Some(true),
        "only the running task parks"
    );
    if let Some(reason) = task.pending.take() {
        return reason;
    }
    if cx.shutting_down.get() {
        return teardown_point(cx, task);
    }
    // The common case, no deadline, no scope and no request, reads no
    // clock and arms no timer; the rest is out of line, so that the
    // common case needs few registers round the switch.
    if deadline.is_some() || !task.cancel.is_idle() {
        return park_timed(cx, task, deadline);
    }
    task.parked_at.set(Some(cx.clock.get()));
    task.state.set(TaskState::Parked);
    suspend(task, Switch::Park);
    if task.delay_timed.get() {
        end_delay_sample(cx, task);
    }
    if task.unwinding.get() {
        return teardown_point(cx, task);
    }
    task.reason.get()
}

/// [`park_in_epoch`] with a deadline, a scope or a cancellation request:
/// looks at the clock, and arms a timer for the nearest deadline.
#[inline(never)]
fn park_timed(cx: &Context, task: &TaskCell, deadline: Option<Instant>) -> WakeReason {
    let now = Instant::now();
    if !task.cancel.is_idle() && task.cancel.deliver(now) {
        return deliver_cancellation(cx, task);
    }
    if deadline.is_some_and(|d| d <= now) {
        return WakeReason::TimedOut;
    }
    let mut wake_at = deadline;
    if let Some(scope) = task.cancel.next_deadline() {
        wake_at = Some(wake_at.map_or(scope, |d| d.min(scope)));
    }
    let timer =
        wake_at.map(|d| cx.timers.borrow_mut().insert(d, Waker::new(cx.current_task(), task.epoch.get())));
    task.parked_at.set(Some(now));
    task.state.set(TaskState::Parked);
    suspend(task, Switch::Park);
    if task.delay_timed.get() {
        end_delay_sample(cx, task);
    }
    if task.unwinding.get() {
        return teardown_point(cx, task);
    }
    let reason = task.reason.get();
    if let Some(timer) = timer
        && reason != WakeReason::TimedOut
    {
        cx.timers.borrow_mut().cancel(timer);
    }
    if reason == WakeReason::TimedOut && deadline != wake_at {
        // The timer was a scope's deadline, unless the operation's own
        // deadline has passed too (then the operation times out, and the
        // scope's cancellation comes at the next park).
        let now = Instant::now();
        if deadline.is_none_or(|d| d > now) && task.cancel.deliver(now) {
            return WakeReason::Cancelled;
        }
    }
    reason
}

/// `task` is back from a park whose wake-up was timed: ends the sample
/// (see `metrics/counters.rs`).
#[cold]
#[inline(never)]
fn end_delay_sample(cx: &Context, task: &TaskCell) {
    task.delay_timed.set(false);
    cx.metrics.resumed();
}

/// Ends the epoch of a wait made of [`park_in_epoch`] calls, which park
/// without moving the epoch: wakers made for it are ignored from now on,
/// and a wake-up of it still pending is dropped (the wait is over;
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
    Context::with(|cx| cx.with_current(|task| task.cancel.retract()));
}

/// Requests cancellation of `task`, a task of this runtime (see
/// `JoinHandle::cancel`): wakes it with `Cancelled` if it is parked where
/// the request can reach it; otherwise its next park sees it.
pub(crate) fn cancel<S: ?Sized>(cx: &Context, task: &TaskCell<S>) {
    if task.is_done() || !task.cancel.request() || task.state.get() != TaskState::Parked {
        return;
    }
    let at = ParkRef { key: task.registry_key.get(), id: task.id().as_u64(), epoch: task.epoch.get() };
    wake_ref(cx, at, WakeReason::Cancelled);
}

/// [`cancel`] for the task of this runtime with registry key `key` and
/// id `id`, if it is still alive: a cancellation posted from another
/// thread.
pub(crate) fn cancel_ref(cx: &Context, key: usize, id: u64) {
    let task = cx.tasks.borrow().get(key).filter(|task| task.id().as_u64() == id).cloned();
    if let Some(task) = task {
        cancel(cx, &*task);
    }
}

/// Puts the running task at the back of the run queue and switches
/// away; returns whether the caller is a task of this runtime.
///
/// Everything from the public `yield_now` down to the switch is inlined
/// into the caller. The switch returns into the other context with a
/// `ret` that the CPU's return-stack predictor expects to match the
/// `call` that entered the coroutine; every function frame between the
/// user's code and the switch adds a `ret` on resumption that was pushed
/// before the scheduler ran, and each of those mispredicts (DESIGN.md,
/// "What a switch really costs", has the numbers).
#[inline(always)]
pub(crate) fn yield_now(cx: &Context) -> bool {
    let Some(task) = cx.with_current(|task| -> *const TaskCell { &**task }) else { return false };
    // SAFETY: `task` points to the running task's record, which the `Rc` the scheduler keeps in its frame holds
    // alive until the task has switched back; this frame is inside the task, so it ends first.
    let task = unsafe { &*task };
    if cx.shutting_down.get() {
        teardown_point(cx, task);
        return true;
    }
    // A task torn down while it waits in the run queue after a yield
    // goes on to its next suspension point, where the check above
    // starts its teardown: a check here would cost every yield.
    suspend(task, Switch::Yield);
    true
}

/// Switches from the running task back to the loop. The task must have
/// arranged its wake-up first. Inlined for the reason given at
/// [`yield_now`].
#[inline(always)]
fn suspend(task: &TaskCell, why: Switch) {
    let yielder = task.yielder.get();
    debug_assert!(!yielder.is_null(), "a running task has recorded its yielder");
    // SAFETY: the yielder lives on this task's own stack (recorded by
    // `begin_task` when the coroutine started) and the task is running,
    // so its stack is live; only this task suspends through it.
    unsafe { &*yielder }.suspend(why);
    if crate::dump::backtrace::capture_requested() {
        capture_for_dump();
    }
}

/// The capture step of a task dump (see `dump/backtrace.rs`): the dump
/// resumed this suspended task only to read its stack, leaving a request
/// on the thread. Records the backtrace and suspends again, as many times
/// as dumps ask, then returns to the suspension point as if the task had
/// never been resumed.
#[cold]
#[inline(never)]
fn capture_for_dump() {
    while let Some(request) = crate::dump::backtrace::take_request() {
        // The frames above this function's.
        let anchor = capture_for_dump as fn() as usize;
        crate::dump::backtrace::record(anchor, request.limit, request.base);
        let yielder = request.yielder.cast::<TaskYielder>();
        // The dump made the request with the yielder of the task it resumed,
        // which is the task running this code: nothing else was resumed since.
        // SAFETY: that yielder lives on this task's own stack, live since this
        // code runs on it, and only this task suspends through it.
        unsafe { &*yielder }.suspend(Switch::Park);
    }
}

/// Records the running task's yielder, once, when it starts; returns
/// whether its body runs: not at shutdown, nor after a cancellation if
/// `skip_if_cancelled` (then the body drops its closure instead).
pub(crate) fn begin_task(cx: &Context, yielder: &TaskYielder, skip_if_cancelled: bool) -> bool {
    let task = cx.current_task();
    task.yielder.set(yielder);
    if task.unwinding.get() {
        task.teardown.set(Teardown::DroppingBody);
        return false;
    }
    !(skip_if_cancelled && task.cancel.is_requested())
}

/// A suspension point of `task` while the runtime tears it down: fail
/// the wait, start the teardown unwind, or, for a coroutine that
/// refuses to die, switch back to the scheduler for good (see
/// `task/teardown.rs`).
#[cold]
#[inline(never)]
fn teardown_point(cx: &Context, task: &TaskCell) -> WakeReason {
    match teardown::step(task, thread::panicking()) {
        Step::Return(reason) => reason,
        Step::Unwind => teardown::unwind(cx, task),
        Step::Refuse => loop {
            task.state.set(TaskState::Parked);
            suspend(task, Switch::Park);
        },
    }
}

/// Suspends the running coroutine, which is being torn down, for good:
/// the runtime leaks it, stack included, rather than unwind frames that
/// something on another thread still borrows (a scope whose distributed
/// children still run, `scope.rs`).
#[cold]
pub(crate) fn refuse_to_die() -> ! {
    let task = Context::with(Context::current_task).expect("a coroutine runs in its runtime");
    task.teardown.set(Teardown::Swallowed);
    loop {
        task.state.set(TaskState::Parked);
        suspend(&task, Switch::Park);
    }
}

/// The wait of a cancelled task ends at once, but only after the
/// others had a turn: a loop that ignores the error would otherwise
/// never give up the thread.
#[cold]
#[inline(never)]
fn deliver_cancellation(cx: &Context, task: &TaskCell) -> WakeReason {
    task.state.set(TaskState::Runnable);
    suspend(task, Switch::Yield);
    if task.unwinding.get() {
        return teardown_point(cx, task);
    }
    WakeReason::Cancelled
}
