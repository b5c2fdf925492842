//! The scheduler's record of one coroutine.
//!
//! # States
//!
//! A task is in exactly one of these states (`TaskCell::state`):
//!
//! 1. **Runnable**: it sits in its scheduler's run queue, exactly once.
//!    Entered at spawn, by [`crate::yield_now`], and by the one wake-up that
//!    ends a park.
//! 2. **Running**: the scheduler has switched to it; it is the scheduler's
//!    current task. Only a running task may park, yield or finish.
//! 3. **Parked**: it is suspended inside [`crate::park::park`], in no run
//!    queue. Any number of [`crate::park::Waker`]s for this park may exist
//!    (an I/O wait list, a timer, a join handle); the first to call `wake`
//!    moves it to Runnable and every later one is a no-op.
//! 4. **Done**: its closure returned or panicked; its result is in the join
//!    packet and its stack is back in the pool.
//!
//! ```text
//!   spawn ──> Runnable ──resume──> Running ──return/panic──> Done
//!                ^  ^                │  │
//!                │  └──yield_now─────┘  │ park
//!                │                      v
//!                └───────first wake── Parked
//! ```
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
//! | `panicking` | the panic hook, the teardown, the scheduler after each switch (see `Scheduler::note_switch_out`) | Running, or just after it |
//!
//! Everything is `Cell`/`RefCell` because a task never leaves the thread
//! that spawned it: `TaskCell` is `!Send`, and so is everything holding it.

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use corosensei::{Coroutine, Yielder};

use super::cancel_state::CancelState;
use super::slot::Slot;
use super::teardown::Teardown;
use crate::park::{WakeReason, Waker};
use crate::scheduler::Switch;
use crate::stack::overflow::{Owner, Running};
use crate::stack::{Stack, StackBounds};
use crate::sync::touch::QueueMark;
use crate::sync::waiter::Core;

/// The coroutine type every task runs as: resumed with nothing (the wake
/// reason is left in the cell), suspends saying whether it yielded or
/// parked, returns nothing (the result goes to the join packet).
pub(crate) type TaskCoroutine = Coroutine<(), Switch, (), Stack>;

/// The yielder a task suspends itself with.
pub(crate) type TaskYielder = Yielder<(), Switch>;

/// The largest coroutine body moved onto its stack as it is; a larger one
/// (a closure capturing a big array by value) is boxed first, because
/// corosensei refuses to move more than 1 KiB onto a new stack.
const MAX_INLINE_BODY: usize = 512;

/// A coroutine running `body` on `stack`.
pub(crate) fn new_coroutine<B>(stack: Stack, body: B) -> TaskCoroutine
where
    B: FnOnce(&TaskYielder, ()) + 'static,
{
    if size_of::<B>() <= MAX_INLINE_BODY {
        TaskCoroutine::with_stack(stack, body)
    } else {
        let body = Box::new(body);
        TaskCoroutine::with_stack(stack, move |yielder: &TaskYielder, ()| (*body)(yielder, ()))
    }
}

/// [`new_coroutine`] for a body that borrows.
///
/// # Safety
///
/// As `corosensei::Coroutine::with_stack_unchecked`: everything `body`
/// borrows must outlive the coroutine (it finishes, or is unwound or
/// leaked, before the borrow ends).
pub(crate) unsafe fn new_coroutine_unchecked<B>(stack: Stack, body: B) -> TaskCoroutine
where
    B: FnOnce(&TaskYielder, ()),
{
    if size_of::<B>() <= MAX_INLINE_BODY {
        // SAFETY: forwarded to this function's caller (see `# Safety`).
        unsafe { TaskCoroutine::with_stack_unchecked(stack, body) }
    } else {
        let body = Box::new(body);
        let boxed = move |yielder: &TaskYielder, ()| (*body)(yielder, ());
        // SAFETY: the boxed body borrows what `body` borrowed, which the
        // caller keeps alive for the coroutine's life (see `# Safety`).
        unsafe { TaskCoroutine::with_stack_unchecked(stack, boxed) }
    }
}

/// See the module documentation for the meaning of each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// In the run queue.
    Runnable,
    /// Being executed by the scheduler.
    Running,
    /// Suspended in `park`, waiting for a wake-up.
    Parked,
    /// Finished.
    Done,
}

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
    pub(crate) state: Cell<State>,
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
    /// `Scheduler::panicking`).
    pub(crate) panicking: Cell<bool>,
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
    /// The waiter core of this task's last wait on a shared primitive,
    /// kept for the next one when nothing else holds it any more (saves an
    /// allocation and a few atomic operations per wait).
    pub(crate) waiter_core: Cell<Option<Arc<Core>>>,
    /// A second reference to that core, for the queue entry of the next
    /// wait: a notifier on this thread hands the entry's reference back
    /// here when it wakes the task, so a wait neither clones nor drops an
    /// `Arc` (two atomic operations) on the common path.
    pub(crate) waiter_spare: Cell<Option<Arc<Core>>>,
    /// A task waiting in `JoinHandle::join` for this one to finish.
    pub(crate) join_waiter: RefCell<Option<Waker>>,
    /// The task's `JoinHandle` is gone (detached): its result is dropped
    /// where it is made, inside the coroutine, rather than later by the
    /// scheduler, outside any coroutine.
    pub(crate) detached: Cell<bool>,
    /// The queues of the primitive wait the task is in, if any: null, a
    /// queue's touch, or `touch::several()` (see `sync/touch.rs`). For the
    /// deadlock check and report.
    pub(crate) waits_on: Cell<QueueMark>,
    /// Where in the runtime the task's last other park was made (a join,
    /// a sleep, I/O): names it in the deadlock report.
    pub(crate) parked_by: Cell<Option<&'static Location<'static>>>,
    /// When the task last parked, by its scheduler's clock (read once per
    /// turn of the loop, not at every park): for the deadlock report.
    pub(crate) parked_at: Cell<Option<Instant>>,
    /// The closure until the task starts, then its result.
    pub(crate) slot: S,
}

impl<S> TaskCell<S> {
    /// A task that has not been given its coroutine yet.
    pub(crate) fn new(name: Option<Arc<str>>, slot: S) -> TaskCell<S> {
        TaskCell {
            info: Running {
                owner: Owner { id: TaskId::next().0, name },
                stack: Cell::new(StackBounds::EMPTY),
            },
            registry_key: Cell::new(usize::MAX),
            state: Cell::new(State::Runnable),
            epoch: Cell::new(0),
            pending: Cell::new(None),
            reason: Cell::new(WakeReason::Ready),
            cancel: CancelState::default(),
            unwinding: Cell::new(false),
            teardown: Cell::new(Teardown::None),
            teardown_budget: Cell::new(super::teardown::WAIT_BUDGET),
            panicking: Cell::new(false),
            yielder: Cell::new(std::ptr::null()),
            coroutine: RefCell::new(None),
            scoped_children: RefCell::new(Vec::new()),
            waiter_core: Cell::new(None),
            waiter_spare: Cell::new(None),
            join_waiter: RefCell::new(None),
            detached: Cell::new(false),
            waits_on: Cell::new(std::ptr::null()),
            parked_by: Cell::new(None),
            parked_at: Cell::new(None),
            slot,
        }
    }
}

impl<S: ?Sized> TaskCell<S> {
    /// The task's id.
    pub(crate) fn id(&self) -> TaskId {
        TaskId(self.info.owner.id)
    }

    /// Whether the task has finished.
    pub(crate) fn is_done(&self) -> bool {
        self.state.get() == State::Done
    }
}

impl<S: ?Sized> std::fmt::Debug for TaskCell<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskCell")
            .field("id", &self.info.owner.id)
            .field("name", &self.info.owner.name)
            .field("state", &self.state.get())
            .field("epoch", &self.epoch.get())
            .finish_non_exhaustive()
    }
}

/// An `Rc` to a task together with the address of its record.
///
/// Reaching a field through `Rc<TaskCell>` first finds the record inside
/// the `Rc`'s allocation, at an offset that depends on the slot's alignment
/// and is read from the slot's vtable each time (about six instructions).
/// A wait reaches the same task several times per hand-off; this finds
/// the record once.
#[derive(Debug)]
pub(crate) struct FoundTask {
    /// Keeps the task alive.
    rc: Rc<TaskCell>,
    /// The record inside `rc`'s allocation.
    record: std::ptr::NonNull<TaskCell>,
}

impl FoundTask {
    /// Finds the record of `rc`.
    #[inline]
    pub(crate) fn new(rc: Rc<TaskCell>) -> FoundTask {
        let record = std::ptr::NonNull::from(&*rc);
        FoundTask { rc, record }
    }

    /// The `Rc`.
    #[inline]
    pub(crate) fn rc(&self) -> &Rc<TaskCell> {
        &self.rc
    }

    /// The record.
    #[inline]
    pub(crate) fn record(&self) -> &TaskCell {
        // SAFETY: `record` points into the allocation that `self.rc` keeps
        // alive for at least as long as `self`, and it was made from a
        // shared reference to it, which is all this hands out.
        unsafe { self.record.as_ref() }
    }
}
