//! A task's slot: the closure waiting to start, then the result waiting to
//! be joined, in the same allocation as the task's [`TaskCell`].
//!
//! A task is spawned *without* a coroutine. The closure waits in the slot,
//! and the coroutine is built on a stack only when the scheduler first runs
//! the task. Spawning therefore touches no stack memory, and a burst of
//! short tasks runs on the same few stacks, each taken warm from the top of
//! the pool just after the previous task gave it back. (The stack itself is
//! reserved at spawn, so running out of stacks is still an error of
//! `spawn`, not a surprise later.)
//!
//! The scheduler sees a slot as `dyn Slot` (start it, or drop a body that
//! never started); a [`JoinHandle<T>`](super::JoinHandle) sees it as
//! `dyn JoinSlot<T>` (take the result). Only [`Spawned<F, T>`] knows both
//! types.

use std::cell::Cell;

use super::Packet;
use super::cell::TaskCoroutine;
use super::join::JoinError;
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

/// The slot of a spawned task: closure `F`, result `T`.
pub(crate) struct Spawned<F, T> {
    /// The closure, until the task starts.
    body: Cell<Option<F>>,
    /// Where the coroutine leaves the result.
    packet: Packet<T>,
}

impl<F, T> Spawned<F, T> {
    pub(crate) fn new(body: F) -> Spawned<F, T> {
        Spawned { body: Cell::new(Some(body)), packet: Packet::new() }
    }
}

impl<F, T> Slot for Spawned<F, T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    fn start(&self, stack: Stack) -> Result<TaskCoroutine, Stack> {
        let Some(f) = self.body.take() else { return Err(stack) };
        let packet: *const Packet<T> = &self.packet;
        let body = super::body_unless_cancelled(f, move |result| {
            if crate::scheduler::Scheduler::with(|s| s.with_current(|task| task.detached.get())).flatten()
                == Some(true)
            {
                // Nobody will take it: drop it here, inside the coroutine.
                drop(result);
                return;
            }
            // SAFETY: the packet lives in the task's cell, which owns this
            // coroutine and is held (by `run_task` or `tear_down`) for as
            // long as the coroutine runs, so it outlives this write.
            unsafe { &*packet }.set(result)
        });
        Ok(super::cell::new_coroutine(stack, body))
    }
}

impl<F, T> JoinSlot<T> for Spawned<F, T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    fn take_result(&self) -> Option<Result<T, JoinError>> {
        self.packet.take()
    }
}

/// The main task's slot: its coroutine is built eagerly by `run` (it may
/// borrow from `run`'s caller) and its result travels through `run`'s frame.
impl Slot for () {
    fn start(&self, stack: Stack) -> Result<TaskCoroutine, Stack> {
        Err(stack)
    }
}
