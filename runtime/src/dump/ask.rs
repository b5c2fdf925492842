//! Making a dump: reading this worker's coroutines, asking every other
//! worker for its own, and waiting for the answers (the module
//! documentation of `dump` says how and why).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::backtrace::{self, Backtrace, Raw};
use super::collect::{self, Stacks};
use super::entry::{Coroutine, Silent};
use super::snapshot::Dump;
use crate::channel::{self, RecvTimeoutError};
use crate::context::{self, Context};
use crate::runtimes::{self, Listed};
use crate::watchdog;

/// How long [`dump()`](crate::dump()) waits for a worker to answer before it
/// reports it as [`Silent`]. A worker answers between two switches: at
/// once when it is idle, within 61 coroutine runs when it is busy.
pub const ANSWER_WAIT: Duration = Duration::from_millis(250);

/// Every coroutine of the caller's runtime (all its workers), or, called
/// on a plain thread, of every runtime of the process: what each one is
/// doing and what it waits for. See [`Dump`] for what it says and
/// the [module documentation](mod@crate::dump) for how it is made.
///
/// Waits up to [`ANSWER_WAIT`] for each worker other than the caller's
/// (a coroutine parks meanwhile; a plain thread blocks); a worker that does
/// not answer in time is listed in [`Dump::silent_workers`]. A dump made
/// on a runtime's thread outside its coroutines (in a destructor the
/// scheduler runs) cannot wait, and lists only that worker; so does a
/// coroutine that is cancelled while it waits.
///
/// ```
/// let dump = green::run(|| {
///     let sleeper = green::task::Builder::new()
///         .name("sleeper")
///         .spawn(|| green::sleep(std::time::Duration::from_secs(60)))
///         .unwrap();
///     green::yield_now();
///     let dump = green::dump();
///     sleeper.cancel();
///     dump
/// });
/// let sleeper = dump.coroutines().iter().find(|c| c.name.as_deref() == Some("sleeper")).unwrap();
/// assert_eq!(sleeper.state, green::dump::State::Parked);
/// assert_eq!(sleeper.waits_on.as_ref().unwrap().kind, green::dump::WaitKind::Sleep);
/// assert!(sleeper.deadline.is_some());
/// ```
pub fn dump() -> Dump {
    Options::new().dump()
}

/// [`dump()`](crate::dump()), waiting up to `wait` (rather than
/// [`ANSWER_WAIT`]) for each worker to answer.
pub fn dump_within(wait: Duration) -> Dump {
    Options::new().answer_wait(wait).dump()
}

/// How a dump is made: whether it reads every coroutine's backtrace, and
/// how long it waits for each worker.
///
/// ```
/// use green::dump::Options;
///
/// green::run(|| {
///     // Without backtraces: a million coroutines in well under a second.
///     let quick = Options::new().backtraces(false).dump();
///     assert!(quick.coroutines()[0].backtrace.frames().is_none());
///     let full = Options::new().dump();
///     assert!(full.coroutines()[0].backtrace.frames().is_some());
/// });
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    /// Read the coroutines' stacks.
    backtraces: bool,
    /// How long to wait for each other worker.
    answer_wait: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options::new()
    }
}

impl Options {
    /// With backtraces, waiting [`ANSWER_WAIT`] for each worker: what
    /// [`dump()`](crate::dump()) does.
    pub fn new() -> Options {
        Options { backtraces: true, answer_wait: ANSWER_WAIT }
    }

    /// Whether to read each coroutine's backtrace (the default). Each
    /// suspended coroutine is resumed for a moment on its own worker to
    /// walk its stack, which costs some microseconds a coroutine, and
    /// naming the frames reads the program's debug information once; see
    /// [`Backtrace`](super::Backtrace).
    pub fn backtraces(mut self, on: bool) -> Options {
        self.backtraces = on;
        self
    }

    /// How long to wait for each worker other than the caller's to answer
    /// before it is listed as [`Silent`].
    pub fn answer_wait(mut self, wait: Duration) -> Options {
        self.answer_wait = wait;
        self
    }

    /// Makes the dump. See [`dump()`](crate::dump()).
    #[inline(never)]
    pub fn dump(&self) -> Dump {
        let here = Context::with(|cx| (cx.home(), cx.id()));
        let listed = runtimes::all();
        let others: Vec<Arc<Listed>> = match here {
            Some((runtime, me)) => {
                listed.into_iter().filter(|l| l.runtime == runtime && l.id != me).collect()
            }
            None => listed,
        };
        let stacks = if self.backtraces { Stacks::Capture } else { Stacks::Skip };
        let mut coroutines = Context::with(|cx| {
            // On a runtime's thread outside its coroutines (a destructor
            // the scheduler runs), the runtime's state may be borrowed:
            // no coroutine is resumed there.
            let stacks = match stacks {
                Stacks::Capture if !cx.has_current() => Stacks::Unavailable,
                stacks => stacks,
            };
            let mut own = collect::collect(cx, stacks);
            if stacks == Stacks::Capture {
                let me = cx.with_current(|task| task.id());
                if let Some(me) = own.iter_mut().find(|c| Some(c.id) == me) {
                    // The caller's own stack, read where it stands: the
                    // frames above this function's.
                    let anchor = Options::dump as fn(&Options) -> Dump as usize;
                    backtrace::record(anchor, me.stack.0, me.stack.1);
                    me.raw_backtrace =
                        backtrace::take_captured().unwrap_or(Raw::Missing(Backtrace::Unavailable));
                }
            }
            own
        })
        .unwrap_or_default();
        let silent = ask(&others, self.answer_wait, stacks, &mut coroutines);
        Dump::new(coroutines, silent)
    }
}

/// Posts a dump request to each of `workers` (reading stacks as `stacks`
/// says), adds their answers to `coroutines`, and returns those that did
/// not answer within `wait`.
fn ask(
    workers: &[Arc<Listed>],
    wait: Duration,
    stacks: Stacks,
    coroutines: &mut Vec<Coroutine>,
) -> Vec<Silent> {
    if workers.is_empty() {
        return Vec::new();
    }
    let asked_at = Instant::now();
    let (answers, answered) = channel::unbounded::<(usize, Vec<Coroutine>)>();
    let mut requests = Vec::with_capacity(workers.len());
    for (at, worker) in workers.iter().enumerate() {
        let look = worker.stamp.look();
        let started = Arc::new(AtomicBool::new(false));
        let (answers, flag) = (answers.clone(), started.clone());
        let request = Box::new(move || {
            flag.store(true, Ordering::Release);
            // Run by the worker's loop between two switches: its
            // coroutines may be resumed into their capture step.
            let part = Context::with(|cx| collect::collect(cx, stacks)).unwrap_or_default();
            // The dump may have given up and gone: then nobody wants it.
            let _ = answers.try_send((at, part));
        });
        let posted = worker.inbox.post_job(request).is_ok();
        requests.push(Request { posted, started, look, done: false });
    }
    drop(answers);
    let deadline = asked_at + wait;
    let mut left = requests.iter().filter(|r| r.posted).count();
    let mut gave_up = None;
    while left > 0 {
        // A worker that has started its answer finishes it: it runs no
        // coroutine meanwhile.
        let busy = requests.iter().any(|r| !r.done && r.started.load(Ordering::Acquire));
        let until = if busy { Instant::now() + wait } else { deadline };
        match answered.recv_deadline(until) {
            Ok((at, part)) => {
                requests[at].done = true;
                left -= 1;
                coroutines.extend(part);
            }
            Err(RecvTimeoutError::Timeout) if busy => {}
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Cancelled) => {
                gave_up = Some(if context::outside_coroutines_of_running_runtime() {
                    "the dump was made on a runtime's thread outside its coroutines, where it cannot wait"
                } else {
                    "the coroutine making the dump was cancelled while it waited"
                });
                break;
            }
        }
    }
    let waited = asked_at.elapsed();
    workers
        .iter()
        .zip(&requests)
        .filter(|(_, request)| !request.done)
        .map(|(worker, request)| silent(worker, request, waited, gave_up))
        .collect()
}

/// A dump request posted to one worker.
struct Request {
    /// The worker's inbox took it (it refuses once the worker has ended).
    posted: bool,
    /// The worker has begun to answer.
    started: Arc<AtomicBool>,
    /// The worker's stamp when the request was posted.
    look: watchdog::Look,
    /// The answer has come.
    done: bool,
}

/// What to say of `worker`, which did not answer `request` within
/// `waited`; `gave_up` if the dump stopped waiting for a reason of its own.
fn silent(worker: &Listed, request: &Request, waited: Duration, gave_up: Option<&str>) -> Silent {
    let now = worker.stamp.look();
    let same_stretch = now.is_running() && now == request.look;
    let running = if same_stretch { watchdog::read_running(&worker.stamp, now) } else { None };
    let seen = worker.stamp.seen_since(now.switches).filter(|_| same_stretch);
    let running_for = seen.map_or(waited, |since| since.elapsed().max(waited));
    let reason = match (gave_up, request.posted) {
        (Some(why), _) => why.to_owned(),
        (None, false) => "its runtime is shutting down".to_owned(),
        (None, true) if same_stretch => format!(
            "a coroutine has held its thread for at least {} ms without parking or yielding",
            running_for.as_millis()
        ),
        (None, true) if now.is_running() => format!(
            "its coroutines kept it busy for {} ms without a turn of its loop (it answers between switches)",
            waited.as_millis()
        ),
        (None, true) => format!(
            "it did not take the request in {} ms; its thread may be blocked outside its coroutines",
            waited.as_millis()
        ),
    };
    Silent {
        runtime: worker.runtime,
        worker: worker.worker,
        label: worker.stamp.label().to_owned(),
        running,
        running_for: if same_stretch { running_for } else { Duration::ZERO },
        reason,
    }
}
