//! The scheduler's record of one coroutine.
//!
//! A task's life is a [`TaskState`] (see `state.rs` for the diagram and
//! `park.rs` for the rules that move it).
//!
//! # Who touches which field
//!
//! | field | written by | when |
//! |---|---|---|
//! | `state` | the scheduler (→ Running, → Done), the task itself (→ Parked, → Runnable on yield), a waker (Parked → Runnable) | on the owning thread only |
//! | `epoch` | the task itself, when a park ends | Running |
//! | `pending` | a waker that finds the task Running in the same epoch | Running |
//! | `reason` | the waker that wins | Parked → Runnable |
//! | `cancel` | the task (scopes), a handle or group (request), the scheduler (shutdown) | any |
//! | `coroutine` | the scheduler | resume, finish, teardown |
//! | `join_waiter` | a joining task (set), the scheduler (take, at Done) | any |
//! | `unwinding`, `teardown` | the scheduler (tear-down starts), the task's own suspension points and its teardown payload (see `teardown.rs`) | shutdown |
//! | `debug` | the context (register, start, finish; see `debugger.rs`) | on the owning thread only |
//! | `waits_on`, `park_site`, `parked_at` | the task itself, as it begins a wait (`sync/wait/party.rs`) or parks (`park.rs`) | Running |
//! | `panicking` | the panic hook, the teardown, the scheduler after each switch (see `Scheduler::note_switch_out`) | Running, or just after it |
//! | `delay_timed` | the waker whose wake-up is timed (set), the task back from its park (clear; see `metrics/counters.rs`) | Parked → Runnable → Running |
//!
//! Everything is `Cell`/`RefCell` because a task never leaves the thread
//! that spawned it: `TaskCell` is `!Send`, and so is everything holding it.

use std::cell::{Cell, RefCell};
use std::mem::offset_of;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::cancel_state::CancelState;
use super::coroutine::{TaskCoroutine, TaskYielder};
use super::id::{Task, TaskId};
use super::slot::Slot;
use super::state::{TaskState, Teardown, WAIT_BUDGET, WakeReason};
use crate::debugger::{DebugTask, Layout};
use crate::dump::kind::WaitKind;
use crate::stack::StackBounds;
use crate::stack::overflow::Running;
use crate::sync::wait::touch::QueueMark;

/// The scheduler's record of one coroutine, with its slot (the closure
/// before it starts, the result after it finishes; see `slot.rs`). The
/// scheduler sees every task as `TaskCell<dyn Slot>` (the default); a join
/// handle sees its own `TaskCell<dyn JoinSlot<T>>`. Keeping the slot in the
/// same allocation makes a spawn one `malloc`.
// `repr(C)` keeps the fields every switch touches (state, yielder, the
// coroutine's stack pointer) together in the first cache lines.
#[repr(C)]
pub(crate) struct TaskCell<S: ?Sized = dyn Slot> {
    /// Where the task is in its life (see the module documentation).
    pub(crate) state: Cell<TaskState>,
    /// Counts the parks this task has completed. A waker is made for one
    /// epoch and is ignored once the epoch has moved on, which is what
    /// makes a late timer or a second I/O event harmless.
    pub(crate) epoch: Cell<u32>,
    /// A wake-up that arrived while the task was still running in the epoch
    /// the waker was made for (after registering the waker, before parking).
    /// `park` consumes it instead of suspending.
    pub(crate) pending: Cell<Option<WakeReason>>,
    /// Why the last park ended, written by the waker that won.
    pub(crate) reason: Cell<WakeReason>,
    /// Cancel request and open timeout/shield scopes: what makes a park
    /// return [`WakeReason::Cancelled`] (level-triggered).
    pub(crate) cancel: CancelState,
    /// The runtime is tearing the task down at shutdown (see
    /// `task/teardown.rs`); set once, never cleared.
    pub(crate) unwinding: Cell<bool>,
    /// Where the teardown of this task has got to (see `task/teardown.rs`).
    pub(crate) teardown: Cell<Teardown>,
    /// How many more waits may fail at once during the teardown before the
    /// task counts as refusing to die.
    pub(crate) teardown_budget: Cell<u32>,
    /// The task is known to be unwinding from a panic: set when it panics
    /// (the panic hook), when its teardown unwind starts, and when it
    /// switches away while the thread panics and no other task is
    /// suspended mid-unwind; cleared when it switches away while the
    /// thread does not panic. Lets the runtime tell which coroutine of a
    /// thread is unwinding, which `std::thread::panicking` cannot (see
    /// `Context::panicking`).
    pub(crate) panicking: Cell<bool>,
    /// The wake-up that ended the task's park is being timed for the
    /// scheduling-delay histogram: its resume ends the sample (see
    /// `metrics/counters.rs`).
    pub(crate) delay_timed: Cell<bool>,
    /// The task's yielder, recorded when its coroutine first runs. Points
    /// into the task's own stack and is valid while the coroutine lives.
    pub(crate) yielder: Cell<*const TaskYielder>,
    /// The coroutine itself; `None` until the task first runs and after
    /// Done.
    pub(crate) coroutine: RefCell<Option<TaskCoroutine>>,
    /// Who this task is and where its stack lies: for `current()`, errors
    /// and overflow reports.
    pub(crate) info: Running,
    /// The task's place in its scheduler's registry of live tasks.
    pub(crate) registry_key: Cell<usize>,
    /// Children of the `green::scope`s this task is in, which borrow from
    /// its stack: torn down before it at runtime shutdown.
    pub(crate) scoped_children: RefCell<Vec<Rc<TaskCell>>>,
    /// A task waiting in `JoinHandle::join` for this one to finish.
    pub(crate) join_waiter: RefCell<Option<Waker>>,
    /// The task's `JoinHandle` is gone (detached): its result is dropped
    /// where it is made, inside the coroutine, rather than later by the
    /// scheduler, outside any coroutine.
    pub(crate) detached: Cell<bool>,
    /// The queues of the primitive wait the task is in, if any: null, a
    /// queue's touch, or `touch::several()` (see `sync/wait/touch.rs`). For the
    /// deadlock check and report.
    pub(crate) waits_on: Cell<QueueMark>,
    /// What the task's last other park waited for (a join, a sleep, a
    /// socket): for the task dump and the deadlock report. Current while
    /// the task is parked and `waits_on` is null.
    pub(crate) park_site: Cell<ParkSite>,
    /// When the task last parked, by its scheduler's clock (read once per
    /// turn of the loop, not at every park): for the deadlock report.
    pub(crate) parked_at: Cell<Option<Instant>>,
    /// What a debugger reads of the task (`debugger.rs`).
    pub(crate) debug: DebugTask,
    /// The closure until the task starts, then its result.
    pub(crate) slot: S,
}

/// Where a task record's state byte and coroutine cell lie from its
/// `debug` field, for debuggers (`debugger.rs`). The record is `repr(C)`:
/// the fields before the slot lie where they lie whatever the slot.
pub(crate) const DEBUG_LAYOUT: Layout = Layout {
    state: offset_of!(TaskCell<()>, state) as isize - offset_of!(TaskCell<()>, debug) as isize,
    coroutine: offset_of!(TaskCell<()>, coroutine) as isize - offset_of!(TaskCell<()>, debug) as isize,
    coroutine_size: size_of::<RefCell<Option<TaskCoroutine>>>(),
};

impl<S> TaskCell<S> {
    /// A task that has not been given its coroutine yet.
    pub(crate) fn new(name: Option<Arc<str>>, slot: S) -> TaskCell<S> {
        TaskCell::with_identity(Task::new(name, None), slot)
    }

    /// A task whose identity was made beforehand (a task spawned on another
    /// worker, whose handle knew its id before it started).
    pub(crate) fn with_identity(task: Task, slot: S) -> TaskCell<S> {
        TaskCell {
            info: Running { task, stack: Cell::new(StackBounds::EMPTY) },
            registry_key: Cell::new(usize::MAX),
            state: Cell::new(TaskState::Runnable),
            epoch: Cell::new(0),
            pending: Cell::new(None),
            reason: Cell::new(WakeReason::Ready),
            cancel: CancelState::default(),
            unwinding: Cell::new(false),
            teardown: Cell::new(Teardown::None),
            teardown_budget: Cell::new(WAIT_BUDGET),
            panicking: Cell::new(false),
            delay_timed: Cell::new(false),
            yielder: Cell::new(std::ptr::null()),
            coroutine: RefCell::new(None),
            scoped_children: RefCell::new(Vec::new()),
            join_waiter: RefCell::new(None),
            detached: Cell::new(false),
            waits_on: Cell::new(std::ptr::null()),
            park_site: Cell::new(ParkSite::NONE),
            parked_at: Cell::new(None),
            debug: DebugTask::default(),
            slot,
        }
    }
}

impl<S: ?Sized> Drop for TaskCell<S> {
    /// Waits, before the record is freed, while the stall watchdog reads
    /// its `Task` (see `watchdog.rs`).
    fn drop(&mut self) {
        crate::watchdog::retire(&self.info.task);
    }
}

impl<S: ?Sized> TaskCell<S> {
    /// The task's id.
    pub(crate) fn id(&self) -> TaskId {
        self.info.task.id()
    }

    /// Who the task is.
    pub(crate) fn task(&self) -> &Task {
        &self.info.task
    }

    /// Whether the task has finished.
    pub(crate) fn is_done(&self) -> bool {
        self.state.get() == TaskState::Done
    }
}

impl<S: ?Sized> std::fmt::Debug for TaskCell<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskCell")
            .field("id", &self.id())
            .field("name", &self.info.task.name())
            .field("state", &self.state.get())
            .field("epoch", &self.epoch.get())
            .finish_non_exhaustive()
    }
}

/// What a task parked by `park::park` waits for (a socket, a join, a
/// sleep, ...), recorded in its task record at every such park: for the
/// task dump and the deadlock report. Two plain words, so that recording
/// it is two stores. A wait on a primitive records its queue instead
/// (`TaskCell::waits_on`), whose touch names the primitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParkSite {
    /// What the park waits for.
    pub(crate) kind: WaitKind,
    /// Which one: the descriptor of a socket wait, the id of the task a
    /// join waits for; 0 where there is nothing to name.
    pub(crate) object: u64,
}

impl ParkSite {
    /// A wait of kind `kind` on nothing in particular.
    pub(crate) const fn of(kind: WaitKind) -> ParkSite {
        ParkSite { kind, object: 0 }
    }

    /// Nothing recorded yet.
    pub(crate) const NONE: ParkSite = ParkSite::of(WaitKind::Unknown);
}

/// A handle that wakes one task from one park: the task, and its epoch
/// when the handle was made. Plain data; waking it is the rule in
/// `park.rs` (`park::wake`), which ignores a waker whose epoch has passed.
pub(crate) struct Waker {
    /// The task to wake.
    pub(crate) task: Rc<TaskCell>,
    /// The task's epoch when this waker was made.
    pub(crate) epoch: u32,
}

impl Waker {
    /// A waker for `task`'s park number `epoch`.
    pub(crate) fn new(task: Rc<TaskCell>, epoch: u32) -> Waker {
        Waker { task, epoch }
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
        f.debug_struct("Waker").field("task", &self.task.id()).field("epoch", &self.epoch).finish()
    }
}
