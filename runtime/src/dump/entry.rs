//! What a dump says about one coroutine ([`Coroutine`], with its
//! [`State`], its [`Wait`] and the wait's [`Holder`]) and about a worker
//! that did not answer ([`Silent`]). Plain data: the layers below the dump
//! (the stall board, the scheduler's deadlock report) hold these too.

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use super::backtrace::{Backtrace, Raw};
use super::kind::WaitKind;
use crate::task::id::{Task, TaskId};

/// Where a coroutine is in its life when the dump reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum State {
    /// In its worker's run queue: it will run when its turn comes (it
    /// yielded, was woken, or has not started yet).
    Runnable,
    /// Running now: the coroutine that made the dump, or one that holds a
    /// worker that did not answer (see [`Silent`]).
    Running,
    /// Parked: suspended until what it waits for ([`Coroutine::waits_on`])
    /// happens, a deadline passes, or it is cancelled.
    Parked,
}

impl State {
    /// `"runnable"`, `"running"` or `"parked"`, as the text and JSON say.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Runnable => "runnable",
            State::Running => "running",
            State::Parked => "parked",
        }
    }
}

/// Who holds what a coroutine waits for: the lock's holder, or the
/// coroutine a join waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Holder {
    /// The coroutine with this id (it may live on another worker, or be
    /// gone from the dump, if it finished holding a guard it leaked).
    Coroutine(TaskId),
    /// A plain thread, or a coroutine of a runtime this dump did not
    /// list (a dump made inside a runtime lists only that runtime).
    Thread,
}

/// What a parked coroutine waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Wait {
    /// What kind of thing.
    pub kind: WaitKind,
    /// Which one, as a number: the file descriptor of a socket wait, the
    /// address of the wait queue of a primitive (a channel's sending and
    /// receiving queues are two), the id of the coroutine a join waits for;
    /// 0 where there is nothing to name (a sleep, a select).
    pub object: u64,
    /// Who holds it: the holder of a `Mutex`, or the writer holding an
    /// `RwLock` (recorded when it is taken); the coroutine a join waits
    /// for. `None` where nobody holds anything (a channel, a sleep), or the
    /// holder is not known (an `RwLock` held by readers).
    pub holder: Option<Holder>,
    /// For a socket wait: the address of the peer (`"127.0.0.1:4000"`,
    /// `"unix:/run/app.sock"`), or `"local ..."` and the socket's own
    /// address when it has no peer (a listener); read with `getpeername`
    /// when the dump is made.
    pub peer: Option<String>,
    /// The holder as the lock recorded it, before the dump matched it
    /// against the coroutines' stacks (see `sync/wait/touch.rs`).
    pub(crate) raw_holder: RawHolder,
}

/// A holder as a lock records it: a stack address the dump resolves once
/// it has every worker's coroutines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawHolder {
    /// Resolved already (or nothing to resolve).
    Known,
    /// An address on the holder's stack.
    Stack(usize),
}

/// One coroutine, as the dump read it from its task record.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Coroutine {
    /// Its id.
    pub id: TaskId,
    /// Its name, if it was given one.
    pub name: Option<Arc<str>>,
    /// Where it was spawned (`None` for a runtime's main coroutine and the
    /// runtime's own).
    pub spawned_at: Option<&'static Location<'static>>,
    /// The runtime it belongs to (the id its workers share).
    pub runtime: u64,
    /// Its worker in that runtime (0 for a runtime of one).
    pub worker: usize,
    /// Where it is in its life.
    pub state: State,
    /// How long it has been in that state, where the runtime knows: for a
    /// parked coroutine, since its park began, by its worker's clock (read
    /// once per turn of the loop, so up to a turn early); for the running
    /// coroutine of a worker that did not answer, from the watchdog's
    /// stamps. `None` for a runnable coroutine (a wake-up records no time:
    /// it would cost every wake-up a few instructions).
    pub in_state_for: Option<Duration>,
    /// What it waits for, if it is parked.
    pub waits_on: Option<Wait>,
    /// A cancellation was requested (by a handle, a group, a failing
    /// scope sibling): its waits fail until it returns.
    pub cancel_requested: bool,
    /// Time left until its nearest deadline: the timer armed for its
    /// current park (an operation's timeout, a sleep) or the nearest
    /// deadline of the `timeout`/`deadline` scopes it is in; zero if it has
    /// passed. `None` if it has none.
    pub deadline: Option<Duration>,
    /// The coroutine whose `green::scope` this one is a child of, if any.
    pub parent: Option<TaskId>,
    /// The children of the `green::scope`s this coroutine is in that have
    /// not finished.
    pub children: Vec<TaskId>,
    /// The usable part of its stack, `(limit, base)`: a lock's holder is
    /// recorded as an address on it.
    pub(crate) stack: (usize, usize),
    /// Its backtrace: the frames of its stack, innermost first, or why
    /// there are none (see [`Backtrace`]).
    pub backtrace: Backtrace,
    /// The backtrace as captured, before its frames are named (by
    /// `Dump::new`, on the thread that made the dump).
    pub(crate) raw_backtrace: Raw,
}

impl Coroutine {
    /// The name, or `<unnamed>`.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or("<unnamed>")
    }

    /// The coroutine this one waits on, if it is parked on something a
    /// coroutine holds (a lock, a join): its edge in the wait-for graph.
    pub fn blocked_by(&self) -> Option<TaskId> {
        if self.state != State::Parked {
            return None;
        }
        match self.waits_on.as_ref()?.holder? {
            Holder::Coroutine(id) => Some(id),
            Holder::Thread => None,
        }
    }
}

/// A worker that did not answer the dump in time: a coroutine holds its
/// thread (it computes, or blocks in a system call), or the worker is
/// shutting down. Its coroutines are missing from the dump; what the
/// stall watchdog's stamps say about it is here.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Silent {
    /// The runtime it belongs to.
    pub runtime: u64,
    /// Its index in the runtime.
    pub worker: usize,
    /// How the watchdog names it: `"worker 1"`, or `"the thread 'main'"`.
    pub label: String,
    /// The coroutine running on it when the dump looked, if one was and
    /// the dump could read its record (see `watchdog.rs`): its id, name and
    /// spawn site.
    pub running: Option<Task>,
    /// How long that coroutine has held the thread, at least: since the
    /// watchdog first saw it there, or since the dump asked.
    pub running_for: Duration,
    /// Why it did not answer, in words.
    pub reason: String,
}
