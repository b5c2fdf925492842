//! Reading one runtime's task records into a dump's [`Coroutine`]s.
//!
//! # Why this is sound
//!
//! Task records are `Cell`s and `RefCell`s of one thread. [`collect`]
//! reads them only on that thread, at a moment when none of its
//! coroutines runs but, at most, the caller: either the scheduler runs it
//! between two switches (a dump request posted to the runtime's inbox, a
//! deadlock report), or the coroutine making the dump runs it for its own
//! runtime. So every other coroutine is suspended where it parked or
//! yielded, and nothing changes under the reader.
//!
//! Two things are read through pointers the records keep:
//!
//! * the touch of the queue a parked coroutine waits in
//!   (`TaskCell::waits_on`), set when its wait began and cleared when it
//!   ends: the waiting frame borrows the primitive until then, and the
//!   coroutine is suspended inside that frame, so the touch is alive
//!   (the deadlock check reads it by the same argument);
//! * through that touch, the holder word of a lock (see
//!   `sync/wait/touch.rs`, `Touch::holder`), alive by the same borrow.
//!
//! A socket wait names its descriptor, and the dump asks the kernel for
//! the peer with that number (`net/sys.rs`, `describe_peer`): a system call
//! on a number, which reads no memory of ours.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use corosensei::CoroutineResult;

use super::backtrace::{self, Backtrace, Raw, Request};
use super::entry::{Coroutine, Holder, RawHolder, State, Wait};
use super::kind::WaitKind;
use crate::context::Context;
use crate::net::sys::describe_peer;
use crate::sync::wait::touch::{self, HeldBy};
use crate::task::cell::TaskCell;
use crate::task::id::TaskId;
use crate::task::state::TaskState;

/// Whether [`collect`] reads the stacks of suspended coroutines too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stacks {
    /// No backtraces: none was asked for.
    Skip,
    /// No backtraces: they were asked for, where no coroutine may be
    /// resumed (a destructor the scheduler runs).
    Unavailable,
    /// Resume each suspended coroutine into its capture step (see
    /// `backtrace.rs`). Only where no borrow of the runtime's state is
    /// held: the scheduler's loop between two switches, or the coroutine
    /// making the dump.
    Capture,
}

/// The coroutines of the runtime whose context is `cx`, in no particular
/// order, with their backtraces if `stacks` says so. Runs on that
/// runtime's thread while none of its coroutines but the caller runs (see
/// the module documentation). A record that is borrowed at that moment (a
/// dump made from inside the runtime's own bookkeeping) leaves the dump
/// without that part rather than panic.
pub(crate) fn collect(cx: &Context, stacks: Stacks) -> Vec<Coroutine> {
    let now = Instant::now();
    let worker = cx.config.board.as_ref().map_or(0, |(_, worker)| *worker);
    let deadlines = timer_deadlines(cx);
    let Ok(tasks) = cx.tasks.try_borrow() else { return Vec::new() };
    let running = cx.with_current(|task| Rc::as_ptr(task).cast::<()>());
    let mut coroutines = Vec::with_capacity(tasks.len());
    let mut suspended = Vec::new();
    for (_, task) in tasks.iter() {
        let address = Rc::as_ptr(task).cast::<()>();
        let timer = if deadlines.is_empty() { None } else { deadlines.get(&address).copied() };
        let here = Here { now, runtime: cx.home(), worker, timer };
        if let Some(mut coroutine) = describe(task, Some(address) == running, &here) {
            coroutine.raw_backtrace = match (stacks, coroutine.state) {
                (Stacks::Skip, _) => Raw::Missing(Backtrace::NotRequested),
                (Stacks::Unavailable, _) => Raw::Missing(Backtrace::Unavailable),
                (Stacks::Capture, State::Running) => Raw::Missing(Backtrace::Running),
                (Stacks::Capture, _) => {
                    suspended.push((coroutines.len(), task.clone()));
                    Raw::Missing(Backtrace::Unavailable)
                }
            };
            coroutines.push(coroutine);
        }
    }
    // No borrow of the runtime's state is held while coroutines run.
    drop(tasks);
    if !suspended.is_empty() {
        backtrace::warm_up(cx.with_current(|task| task.info.stack.get().limit));
    }
    for (at, task) in suspended {
        coroutines[at].raw_backtrace = capture(&task);
    }
    coroutines
}

/// The stack of the suspended `task`, read by resuming it into its capture
/// step (see `backtrace.rs`), which suspends it again at once.
fn capture(task: &TaskCell) -> Raw {
    if task.yielder.get().is_null() {
        return Raw::Missing(Backtrace::NotStarted);
    }
    // Only the scheduler borrows the cell, around a resume: a borrowed
    // cell is a coroutine running, which the caller has left out.
    let Ok(mut coroutine) = task.coroutine.try_borrow_mut() else {
        return Raw::Missing(Backtrace::Unavailable);
    };
    let Some(coroutine) = coroutine.as_mut().filter(|c| c.started() && !c.done()) else {
        return Raw::Missing(Backtrace::NotStarted);
    };
    let stack = task.info.stack.get();
    backtrace::request(Request { yielder: task.yielder.get().cast(), limit: stack.limit, base: stack.base });
    let result = coroutine.resume(());
    // Every suspension goes through `park::suspend`, whose capture step
    // takes the request and suspends again: the coroutine cannot have
    // finished, nor left the request.
    debug_assert!(matches!(result, CoroutineResult::Yield(_)), "a capture step suspends again");
    let left = backtrace::end_request();
    debug_assert!(!left, "the resumed coroutine took the request");
    backtrace::take_captured().unwrap_or(Raw::Missing(Backtrace::Unavailable))
}

/// What [`describe`] needs besides the task record.
struct Here {
    /// When the dump reads the record.
    now: Instant,
    /// The runtime's identity (shared by its workers).
    runtime: u64,
    /// The worker's index.
    worker: usize,
    /// The timer armed for the task's current park, if any.
    timer: Option<Instant>,
}

/// The earliest deadline of a timer armed for each task's current park,
/// by the address of its record. Timers of parks that have ended (their
/// waker's epoch is past) are left out.
fn timer_deadlines(cx: &Context) -> HashMap<*const (), Instant> {
    let mut deadlines = HashMap::new();
    let Ok(timers) = cx.timers.try_borrow() else { return deadlines };
    for (deadline, waker) in timers.iter() {
        if waker.task.epoch.get() != waker.epoch {
            continue;
        }
        let earliest = deadlines.entry(Rc::as_ptr(&waker.task).cast::<()>()).or_insert(deadline);
        *earliest = (*earliest).min(deadline);
    }
    deadlines
}

/// One task record as a dump's entry; `None` for a task that has finished
/// (it is on its way out of the registry).
fn describe(task: &TaskCell, running: bool, here: &Here) -> Option<Coroutine> {
    let state = match task.state.get() {
        TaskState::Done => return None,
        _ if running => State::Running,
        TaskState::Running => State::Running,
        TaskState::Runnable => State::Runnable,
        TaskState::Parked => State::Parked,
    };
    let (in_state_for, waits_on) = if state == State::Parked {
        let since = task.parked_at.get().map(|at| here.now.saturating_duration_since(at));
        (since, Some(waits_on(task)))
    } else {
        (None, None)
    };
    let scope_deadline = task.cancel.peek_next_deadline();
    let deadline = match (here.timer, scope_deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let children = match task.scoped_children.try_borrow() {
        Ok(children) => children.iter().filter(|child| !child.is_done()).map(|child| child.id()).collect(),
        Err(_) => Vec::new(),
    };
    let stack = task.info.stack.get();
    let identity = task.task();
    Some(Coroutine {
        id: identity.id(),
        name: identity.name_arc(),
        spawned_at: identity.spawned_at(),
        runtime: here.runtime,
        worker: here.worker,
        state,
        in_state_for,
        waits_on,
        cancel_requested: task.cancel.is_requested(),
        deadline: deadline.map(|d| d.saturating_duration_since(here.now)),
        parent: None,
        children,
        stack: (stack.limit, stack.base),
        raw_backtrace: Raw::Missing(Backtrace::NotRequested),
        backtrace: Backtrace::NotRequested,
    })
}

/// What the parked task `task` waits for (see the module documentation).
fn waits_on(task: &TaskCell) -> Wait {
    let queue = task.waits_on.get();
    if queue == touch::several() {
        return wait(WaitKind::Select, 0, None, RawHolder::Known);
    }
    if !queue.is_null() {
        // SAFETY: `queue` (not null, not `several()`) is the touch of the queue this parked task waits in, alive
        // while its wait's frame borrows the primitive; the task is suspended in that frame and runs no more
        // until `collect` returns (module documentation).
        let touch = unsafe { &*queue };
        // SAFETY: a coroutine (`task`) is parked in this queue, on this thread, and none of this thread's
        // coroutines runs during the call (module documentation): `Touch::holder`'s contract.
        let held = unsafe { touch.holder() };
        let (holder, raw) = match held {
            HeldBy::Nobody => (None, RawHolder::Known),
            HeldBy::Stack(address) => (None, RawHolder::Stack(address)),
            HeldBy::Task(id) => (Some(Holder::Coroutine(TaskId::from_u64(id))), RawHolder::Known),
            HeldBy::Thread => (Some(Holder::Thread), RawHolder::Known),
        };
        return wait(WaitKind::from_u8(touch.kind()), std::ptr::from_ref(touch).addr() as u64, holder, raw);
    }
    let site = task.park_site.get();
    match site.kind {
        WaitKind::Join => {
            let joined = TaskId::from_u64(site.object);
            wait(site.kind, site.object, Some(Holder::Coroutine(joined)), RawHolder::Known)
        }
        WaitKind::Read | WaitKind::Write => {
            let mut socket = wait(site.kind, site.object, None, RawHolder::Known);
            socket.peer = i32::try_from(site.object).ok().and_then(describe_peer);
            socket
        }
        kind => wait(kind, site.object, None, RawHolder::Known),
    }
}

/// A wait with no peer.
fn wait(kind: WaitKind, object: u64, holder: Option<Holder>, raw_holder: RawHolder) -> Wait {
    Wait { kind, object, holder, peer: None, raw_holder }
}

/// Fills in, across every part of a dump, what a worker alone cannot: the
/// holders recorded as stack addresses (matched against every coroutine's
/// stack), and each scope child's parent.
pub(crate) fn resolve(coroutines: &mut [Coroutine]) {
    let on_stacks = coroutines
        .iter()
        .any(|c| c.waits_on.as_ref().is_some_and(|w| matches!(w.raw_holder, RawHolder::Stack(_))));
    let in_scopes = coroutines.iter().any(|c| !c.children.is_empty());
    if !on_stacks && !in_scopes {
        return;
    }
    // The addresses locks recorded, each matched to the coroutine whose
    // stack holds it: one pass over the coroutines, a binary search each.
    let mut addresses: Vec<usize> = coroutines
        .iter()
        .filter_map(|c| match c.waits_on.as_ref()?.raw_holder {
            RawHolder::Stack(address) => Some(address),
            RawHolder::Known => None,
        })
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    let mut owners: Vec<Option<TaskId>> = vec![None; addresses.len()];
    if on_stacks {
        for c in coroutines.iter() {
            let (limit, base) = c.stack;
            let mut at = addresses.partition_point(|&address| address < limit);
            while at < addresses.len() && addresses[at] < base {
                owners[at] = Some(c.id);
                at += 1;
            }
        }
    }
    let owner_of = |address: usize| addresses.binary_search(&address).ok().and_then(|at| owners[at]);
    let mut parents: HashMap<TaskId, TaskId> = HashMap::new();
    for coroutine in coroutines.iter() {
        for child in &coroutine.children {
            parents.insert(*child, coroutine.id);
        }
    }
    for coroutine in coroutines.iter_mut() {
        if in_scopes {
            coroutine.parent = parents.get(&coroutine.id).copied();
        }
        let Some(wait) = coroutine.waits_on.as_mut() else { continue };
        if let RawHolder::Stack(address) = wait.raw_holder {
            wait.holder = Some(owner_of(address).map_or(Holder::Thread, Holder::Coroutine));
            wait.raw_holder = RawHolder::Known;
        }
    }
}
