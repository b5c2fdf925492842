//! Tearing a coroutine down at runtime shutdown.
//!
//! When `main` returns, every coroutine still alive is unwound so that its
//! destructors run. The runtime resumes each one at the point where it is
//! suspended, and that suspension point starts an unwind with a payload of
//! the runtime's own, [`TeardownUnwind`], which the coroutine's body
//! recognises and swallows once the stack is unwound.
//!
//! A coroutine's teardown goes through these states (`TaskCell::teardown`):
//!
//! 1. **None**: not being torn down.
//! 2. **Requested**: the scheduler has resumed it for its teardown. The
//!    next suspension point (a park or a yield) starts the unwind.
//!    **RequestedInUnwind** is the same for a coroutine that was suspended
//!    in a destructor in the middle of an unwind of its own (or may have
//!    been: see `Scheduler::tear_down`): a second unwind out of that
//!    destructor would abort the process, so its waits fail with
//!    `Cancelled` while the thread panics, and the teardown unwind starts
//!    at the first suspension point after the unwind under way is over.
//! 3. **InFlight**: the teardown payload is unwinding the stack. Every wait
//!    made meanwhile (by a destructor) fails at once with `Cancelled`,
//!    without suspending: nothing would ever wake it.
//! 4. **DroppingBody**: the coroutine never started; its body drops the
//!    closure inside the coroutine, where waits fail with `Cancelled` too.
//! 5. **Swallowed**: user code caught the payload and dropped it (a
//!    `catch_unwind` loop, say). The coroutine refuses to die: at its next
//!    suspension point it switches back to the scheduler for good.
//!
//! A coroutine that refuses to die is **leaked**, never resumed and never
//! freed: one line on stderr names it, and its stack stays mapped for the
//! life of the process, because queues of primitives may still point into
//! it. Leaking is sound; freeing a stack that something may still touch,
//! or waiting for a coroutine that will not finish, is not.
//!
//! A coroutine that keeps failing waits during its teardown, more than
//! `WAIT_BUDGET` (`state.rs`) of them, counts as refusing to die too: that bounds the
//! shutdown of a loop that catches the unwind without dropping the payload,
//! or that ignores the errors of a destructor's waits.
//!
//! ```text
//!   None ──tear_down──> Requested ──suspension point──> InFlight ──body ends──> done
//!                          │                               │
//!                          │ never started                 │ payload dropped by user code
//!                          v                               v
//!                     DroppingBody ──body ends──> done   Swallowed ──next suspension──> leaked
//! ```

use std::cell::Cell;

use super::cell::TaskCell;
use super::state::{Teardown, WakeReason};
use crate::context::Context;

/// The panic payload that unwinds a coroutine torn down at shutdown. Its
/// body's panic boundary recognises it and ends the coroutine quietly.
#[derive(Debug)]
pub(crate) struct TeardownUnwind {
    /// The coroutine it unwinds (a payload can be sent elsewhere: only its
    /// own coroutine's state changes when it is dropped).
    id: u64,
}

impl Drop for TeardownUnwind {
    fn drop(&mut self) {
        Context::with(|cx| {
            cx.with_current(|task| {
                if task.id().as_u64() == self.id && task.teardown.get() == Teardown::InFlight {
                    task.teardown.set(Teardown::Swallowed);
                }
            })
        });
    }
}

/// What a suspension point of a coroutine being torn down does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Return from the wait at once, with this reason.
    Return(WakeReason),
    /// Start the teardown unwind.
    Unwind,
    /// Switch back to the scheduler for good: the coroutine refuses to die.
    Refuse,
}

/// Decides what a suspension point of `task`, which is being torn down,
/// does (see the module documentation); `panicking` is
/// `std::thread::panicking()`.
pub(crate) fn step<S: ?Sized>(task: &TaskCell<S>, panicking: bool) -> Step {
    let state = task.teardown.get();
    let waits_fail = match state {
        Teardown::DroppingBody => true,
        // In a destructor during the teardown unwind, or (RequestedInUnwind)
        // during an unwind of its own: let that unwind finish rather than
        // start a second one, which would abort.
        Teardown::InFlight | Teardown::RequestedInUnwind => panicking,
        Teardown::Requested | Teardown::None | Teardown::Swallowed => false,
    };
    if waits_fail {
        return spend(&task.teardown_budget);
    }
    match state {
        Teardown::Requested | Teardown::RequestedInUnwind => {
            task.teardown.set(Teardown::InFlight);
            Step::Unwind
        }
        _ => Step::Refuse,
    }
}

/// A wait that fails at once, while the budget lasts.
fn spend(budget: &Cell<u32>) -> Step {
    match budget.get().checked_sub(1) {
        Some(left) => {
            budget.set(left);
            Step::Return(WakeReason::Cancelled)
        }
        None => Step::Refuse,
    }
}

/// Starts the teardown unwind of `task`, the running task of `cx`.
#[cold]
pub(crate) fn unwind(cx: &Context, task: &TaskCell) -> ! {
    cx.set_panicking(task, true);
    std::panic::resume_unwind(Box::new(TeardownUnwind { id: task.id().as_u64() }))
}

/// Whether a payload caught by a coroutine's panic boundary is its
/// teardown unwind.
pub(crate) fn is_teardown(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<TeardownUnwind>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> TaskCell<()> {
        TaskCell::new(None, ())
    }

    #[test]
    fn a_requested_teardown_unwinds_at_the_first_suspension_point() {
        let task = task();
        task.teardown.set(Teardown::Requested);
        assert_eq!(step(&task, false), Step::Unwind);
        assert_eq!(task.teardown.get(), Teardown::InFlight);
        // A destructor waits during the unwind: the wait fails.
        assert_eq!(step(&task, true), Step::Return(WakeReason::Cancelled));
        // The unwind was caught and the code went on to wait again.
        assert_eq!(step(&task, false), Step::Refuse);
    }

    #[test]
    fn a_coroutine_suspended_mid_unwind_finishes_that_unwind_first() {
        let task = task();
        task.teardown.set(Teardown::RequestedInUnwind);
        assert_eq!(step(&task, true), Step::Return(WakeReason::Cancelled));
        assert_eq!(task.teardown.get(), Teardown::RequestedInUnwind);
        // Its own unwind was caught; it waits again: now the teardown
        // unwind starts.
        assert_eq!(step(&task, false), Step::Unwind);
    }

    #[test]
    fn a_swallowed_payload_makes_the_coroutine_refuse_to_die() {
        let task = task();
        task.teardown.set(Teardown::Swallowed);
        assert_eq!(step(&task, false), Step::Refuse);
        assert_eq!(step(&task, true), Step::Refuse);
    }

    #[test]
    fn waits_that_keep_failing_run_out_of_budget() {
        let task = task();
        task.teardown.set(Teardown::DroppingBody);
        task.teardown_budget.set(3);
        for _ in 0..3 {
            assert_eq!(step(&task, false), Step::Return(WakeReason::Cancelled));
        }
        assert_eq!(step(&task, false), Step::Refuse);
    }
}
