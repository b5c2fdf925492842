//! The stall board of a runtime of several workers: where each worker
//! says that it has stalled, so that a deadlock of the whole runtime is
//! seen and reported once, by worker 0.
//!
//! One worker alone cannot tell a deadlock: its coroutines may wait on a
//! channel a coroutine of another worker is about to send on. So a worker
//! whose coroutines are all parked, with no timer armed, no I/O awaited
//! and no wait that anything outside the runtime has touched (see
//! `sync/wait/touch.rs`: the workers of one runtime share one identity
//! there), *marks* itself stalled here, with its coroutines as a task dump
//! lists them (for the report), and sleeps. Worker 0 judges: only when every worker is marked
//! and no wake-up is posted in any worker's inbox is the runtime stalled
//! as a whole, and then the single-runtime rules apply to it
//! (`Scheduler::stall`).
//!
//! The mark stays true while it is up, because a stalled worker runs
//! nothing: everything that could wake one of its coroutines (another
//! worker's send, a job, a cancellation) arrives as a post in its inbox,
//! and the worker takes its mark down, under the board's lock, *before* it
//! takes the posts. A judge that finds a worker marked therefore finds
//! either its posts still pending or no posts at all.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::dump::entry::Coroutine;
use crate::inbox::Inbox;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Board {
    /// The identity the workers' coroutines record on the primitives they
    /// use (see `sync/wait/touch.rs`): one for the whole runtime.
    home: u64,
    /// One seat per worker.
    seats: Mutex<Vec<Seat>>,
}

/// One worker's place on the board.
#[derive(Debug, Default)]
struct Seat {
    /// Its inbox, once its runtime has started.
    inbox: Option<Arc<Inbox>>,
    /// Its mark, while it is stalled.
    stall: Option<Stall>,
    /// The id of its service coroutine (`workers.rs`), which a report
    /// leaves out: it waits for work, as every idle worker does.
    service: Option<u64>,
}

/// What a stalled worker tells the board.
#[derive(Debug)]
pub(crate) struct Stall {
    /// Its coroutines, its service coroutine included.
    pub(crate) tasks: usize,
    /// Whether one of them waits on a primitive (rather than a join, a
    /// scope or a sleep with no deadline).
    pub(crate) on_primitives: bool,
    /// Its coroutines, its service coroutine left out, as a task dump
    /// lists them: for the report.
    pub(crate) coroutines: Vec<Coroutine>,
    /// When they were listed.
    pub(crate) at: Instant,
}

/// What the judge finds.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Some worker is not stalled, or has wake-ups posted: wait.
    Busy,
    /// Every worker is stalled and nothing is posted to any.
    Stalled {
        /// Coroutines of all workers, their services left out.
        tasks: usize,
        /// Whether any of them waits on a primitive.
        on_primitives: bool,
        /// Every worker's coroutines, each one's time in its state brought
        /// up to now.
        coroutines: Vec<Coroutine>,
    },
}

impl Board {
    /// The board of `workers` workers whose coroutines record `home` on
    /// what they use.
    pub(crate) fn new(workers: usize, home: u64) -> Board {
        Board { home, seats: Mutex::new((0..workers).map(|_| Seat::default()).collect()) }
    }

    /// The identity the workers share on primitives.
    pub(crate) fn home(&self) -> u64 {
        self.home
    }

    /// How many workers the board has.
    pub(crate) fn len(&self) -> usize {
        self.seats().len()
    }

    /// Worker `worker`'s runtime has started with `inbox`.
    pub(crate) fn join(&self, worker: usize, inbox: Arc<Inbox>) {
        self.seats()[worker].inbox = Some(inbox);
    }

    /// Worker `worker`'s service coroutine is the task with id `id`.
    pub(crate) fn set_service(&self, worker: usize, id: u64) {
        self.seats()[worker].service = Some(id);
    }

    /// The id of worker `worker`'s service coroutine, once it runs.
    pub(crate) fn service(&self, worker: usize) -> Option<u64> {
        self.seats()[worker].service
    }

    /// Marks worker `worker` stalled. If every worker is now stalled,
    /// worker 0 is interrupted so that it judges (see [`Board::judge`]).
    pub(crate) fn mark(&self, worker: usize, stall: Stall) {
        let mut seats = self.seats();
        seats[worker].stall = Some(stall);
        if worker != 0
            && seats.iter().all(|seat| seat.stall.is_some())
            && let Some(inbox) = &seats[0].inbox
        {
            inbox.interrupt();
        }
    }

    /// Takes worker `worker`'s mark down: it is about to take its posts.
    pub(crate) fn unmark(&self, worker: usize) {
        self.seats()[worker].stall = None;
    }

    /// Whether the runtime as a whole is stalled: every worker marked, and
    /// no wake-up posted to any.
    pub(crate) fn judge(&self) -> Verdict {
        let seats = self.seats();
        let mut tasks = 0;
        let mut on_primitives = false;
        for seat in seats.iter() {
            let Some(stall) = &seat.stall else { return Verdict::Busy };
            // A post made before its poster marked itself is seen here:
            // the poster's mark went through this lock after it.
            if seat.inbox.as_ref().is_some_and(|inbox| inbox.has_posts_acquire()) {
                return Verdict::Busy;
            }
            tasks += stall.tasks - usize::from(seat.service.is_some());
            on_primitives |= stall.on_primitives;
        }
        let mut coroutines = Vec::new();
        for stall in seats.iter().filter_map(|seat| seat.stall.as_ref()) {
            let since = stall.at.elapsed();
            coroutines.extend(stall.coroutines.iter().cloned().map(|mut c| {
                c.in_state_for = c.in_state_for.map(|time| time + since);
                c
            }));
        }
        Verdict::Stalled { tasks, on_primitives, coroutines }
    }

    fn seats(&self) -> std::sync::MutexGuard<'_, Vec<Seat>> {
        self.seats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
