//! A task's slot: the closure waiting to start, then the result waiting to
//! be joined, in the same allocation as the task's record (`cell.rs`).
//!
//! A task is spawned *without* a coroutine. The closure waits in the slot,
//! and the coroutine is built on a stack only when the scheduler first runs
//! the task. Spawning therefore touches no stack memory, and a burst of
//! short tasks runs on the same few stacks, each taken warm from the top of
//! the pool just after the previous task gave it back. (The stack itself is
//! reserved at spawn, so running out of stacks is still an error of
//! `spawn`, not a surprise later.)
//!
//! The scheduler sees a slot as `dyn Slot` (start it); a `JoinHandle<T>`
//! sees it as `dyn JoinSlot<T>` (take the result). Only the slot of a
//! spawned task (`spawn.rs`) knows both types.

use std::cell::RefCell;

use super::coroutine::TaskCoroutine;
use super::error::JoinError;
use crate::stack::Stack;

/// What the scheduler does with a slot, without knowing its types.
pub(crate) trait Slot {
    /// Builds the task's coroutine on `stack` from the closure waiting in
    /// the slot; hands the stack back if there is none (the main task's
    /// coroutine is built eagerly).
    fn start(&self, stack: Stack) -> Result<TaskCoroutine, Stack>;
}

/// What a join handle does with the slot.
pub(crate) trait JoinSlot<T>: Slot {
    /// The task's result, once.
    fn take_result(&self) -> Option<Result<T, JoinError>>;
}

/// The main task's slot: its coroutine is built eagerly by `run` (it may
/// borrow from `run`'s caller) and its result travels through `run`'s frame.
impl Slot for () {
    fn start(&self, stack: Stack) -> Result<TaskCoroutine, Stack> {
        Err(stack)
    }
}

/// Where a finished task leaves its result for its `JoinHandle`.
pub(crate) struct Packet<T> {
    /// The result, until the handle takes it.
    result: RefCell<Option<Result<T, JoinError>>>,
}

impl<T> Packet<T> {
    pub(crate) fn new() -> Packet<T> {
        Packet { result: RefCell::new(None) }
    }

    pub(crate) fn set(&self, result: Result<T, JoinError>) {
        *self.result.borrow_mut() = Some(result);
    }

    pub(crate) fn take(&self) -> Option<Result<T, JoinError>> {
        self.result.borrow_mut().take()
    }
}
