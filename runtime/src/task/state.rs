//! The words of the wake-up protocol that every layer shares: where a task
//! is in its life, why a park ended, what a task tells the scheduler when
//! it switches out, and the address of one park. Plain data: this module
//! depends on nothing else in the crate.

/// Where a task is in its life: exactly one of these at a time. DESIGN.md
/// ("The life of a coroutine") draws the transitions; the scheduler loop
/// moves a task into Running and Done, and `park.rs` moves it everywhere
/// else.
///
/// Its values are read by debuggers (`debugger.rs`): runnable 0, running
/// 1, parked 2, done 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum TaskState {
    /// In its scheduler's run queue, exactly once. Entered at spawn, by
    /// `yield_now`, and by the one wake-up that ends a park.
    Runnable = 0,
    /// The scheduler has switched to it. Only a running task parks, yields
    /// or finishes.
    Running = 1,
    /// Suspended in a park, in no run queue, until one wake-up for this
    /// park makes it Runnable.
    Parked = 2,
    /// Its closure returned or panicked; its stack is back in the pool.
    Done = 3,
}

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

/// What a task tells the scheduler loop when it switches out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Switch {
    /// It called `yield_now`: put it at the back of the run queue.
    Yield,
    /// It parked: a wake-up will queue it.
    Park,
}

/// One park of one task, named by the task's place in its scheduler's
/// registry: what a wake-up carries when it cannot hold the task itself
/// (posted from another thread through the inbox, or a cancellation by
/// handle). A stale address (the task finished, or moved past that park)
/// is a harmless miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParkRef {
    /// The task's key in its scheduler's registry.
    pub(crate) key: usize,
    /// The task's id, to tell it from a later task in the same slot.
    pub(crate) id: u64,
    /// The park (the task's epoch) this wake-up is for.
    pub(crate) epoch: u32,
}

/// Waits a coroutine being torn down may see fail before it counts as
/// refusing to die.
pub(crate) const WAIT_BUDGET: u32 = 100_000;

/// Where the teardown of a task at runtime shutdown has got to: see
/// `teardown.rs` for what each state means and the diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Teardown {
    /// Not being torn down.
    None,
    /// Resumed for its teardown; the next suspension point starts the
    /// unwind.
    Requested,
    /// Resumed for its teardown while (perhaps) suspended mid-unwind.
    RequestedInUnwind,
    /// The teardown payload is unwinding the stack.
    InFlight,
    /// A coroutine that never started drops its closure.
    DroppingBody,
    /// User code caught the payload and dropped it.
    Swallowed,
}
