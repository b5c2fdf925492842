//! Who waits, and the one loop each kind of party waits in.
//!
//! A *party* is whoever waits on a primitive: a coroutine, or an OS thread
//! outside any runtime. Both waiters (`waiter.rs`, `sole.rs`) keep one, and
//! both wait the same way: [`wait_claimed`] loops until the waiter is
//! claimed, its deadline passes or (a coroutine) it is cancelled. A
//! coroutine parks in one epoch for the whole wait (rule 5 of `park.rs`);
//! a thread parks with `std::thread::park`, which may wake spuriously.
//! What happens after an interrupted wait (the waiter gives up, unless a
//! claim won the race) differs between the two waiters and stays with
//! them.

use std::ptr;
use std::thread;
use std::time::{Duration, Instant};

pub(crate) use super::core::Party;
use super::touch::{QueueMark, several};
use crate::context::{self, Context};
use crate::park;
use crate::task::cell::TaskCell;
use crate::task::state::WakeReason;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A notifier claimed the waiter with this token: the operation is done.
    Claimed(usize),
    /// The deadline passed first; nothing was done.
    TimedOut,
    /// The coroutine was cancelled first; nothing was done.
    Cancelled,
}

/// The waiting party, as [`wait_claimed`] needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Waiting<'a> {
    /// The running coroutine, with the queues its entries are in (see
    /// `touch.rs`).
    Task(&'a TaskCell, QueueMark),
    /// The calling thread, outside any coroutine.
    Thread,
}

/// Waits until `claimed` returns a token, `deadline` passes (`TimedOut`)
/// or the coroutine is cancelled (`Cancelled`): the one loop of every wait
/// on a primitive. Leaves the waiter as it is: after `TimedOut` or
/// `Cancelled` the caller gives up (or finds a claim that won the race).
#[inline(always)]
pub(crate) fn wait_claimed(
    who: Waiting<'_>,
    deadline: Option<Instant>,
    claimed: impl Fn() -> Option<usize>,
) -> Outcome {
    match who {
        Waiting::Task(task, queues) => park_task(task, queues, deadline, claimed),
        Waiting::Thread => park_thread(deadline, claimed),
    }
}

/// [`wait_claimed`] for the running coroutine `task`.
#[inline(always)]
fn park_task(
    task: &TaskCell,
    queues: QueueMark,
    deadline: Option<Instant>,
    claimed: impl Fn() -> Option<usize>,
) -> Outcome {
    Context::with(|cx| {
        // One epoch for the whole wait, however often the park returns
        // early: every handle carries the epoch the waiter was made in, so
        // a claim's wake-up always finds the right park, and no notifier
        // has to read the epoch after the claim. Leaving the wait, in any
        // way (also unwound mid-wait at shutdown), ends the epoch, so its
        // late wake-ups are ignored.
        let _wait = WaitEpoch::begin(task, queues);
        loop {
            if let Some(token) = claimed() {
                return Outcome::Claimed(token);
            }
            match park::park_in_epoch(cx, task, deadline) {
                WakeReason::Ready => continue,
                WakeReason::TimedOut => return Outcome::TimedOut,
                WakeReason::Cancelled => return Outcome::Cancelled,
            }
        }
    })
    .expect("a coroutine waits inside its runtime")
}

/// The wait of a thread outside any coroutine: parks the thread until
/// `claimed` returns a token or `deadline` passes (then `TimedOut`).
///
/// On the thread of a running runtime but outside its coroutines (the
/// scheduler itself, dropping a detached task's result or a leftover value
/// at shutdown), parking the thread would freeze every coroutine of the
/// runtime, which may be the very ones that could end the wait: the wait
/// fails at once with `Cancelled` instead, as waits do in a coroutine
/// being torn down.
#[inline(never)]
pub(crate) fn park_thread(deadline: Option<Instant>, claimed: impl Fn() -> Option<usize>) -> Outcome {
    if context::outside_coroutines_of_running_runtime() {
        return claimed().map_or(Outcome::Cancelled, Outcome::Claimed);
    }
    loop {
        if let Some(token) = claimed() {
            return Outcome::Claimed(token);
        }
        match deadline {
            None => thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return Outcome::TimedOut;
                }
                thread::park_timeout(deadline - now);
            }
        }
    }
}

/// A coroutine's wait on primitives: parked in one epoch, with the queues
/// it entered recorded in its task for the deadlock check (see
/// `touch.rs`). Dropped when the wait ends, also when unwinding.
struct WaitEpoch<'a> {
    /// The waiting task.
    task: &'a TaskCell,
}

impl<'a> WaitEpoch<'a> {
    /// Begins the wait of `task` in the queues `queues` (see `touch.rs`;
    /// none recorded counts as several: anybody may end the wait).
    #[inline]
    fn begin(task: &'a TaskCell, queues: QueueMark) -> WaitEpoch<'a> {
        task.waits_on.set(if queues.is_null() { several() } else { queues });
        WaitEpoch { task }
    }
}

impl Drop for WaitEpoch<'_> {
    #[inline]
    fn drop(&mut self) {
        park::end_epoch(self.task);
        self.task.waits_on.set(ptr::null());
    }
}

/// The deadline `timeout` from now; `None` (wait forever) if it is too far
/// away to represent.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
