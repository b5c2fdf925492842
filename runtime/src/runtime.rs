//! Starting a runtime: [`run`] and [`Builder`].

use std::panic;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::blocking::{self, CloseOnDrop, LazyPool, PoolConfig};
use crate::board::Board;
use crate::context::{self, Config};
use crate::metrics::{self, Registration};
use crate::scheduler::Scheduler;
use crate::stack::Protection;
use crate::workers::Group;

/// Default usable stack size of a coroutine: 256 KiB of address space, of
/// which only the pages a coroutine touches cost memory.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Runs `main` as the main coroutine of a new runtime on the calling thread
/// and returns its value.
///
/// The thread becomes the runtime's scheduler until `main` returns. `main`
/// may borrow from the caller, since it cannot outlive this call.
///
/// When `main` returns, every coroutine still alive is cancelled: its stack
/// is unwound, so its destructors run and nothing it owns leaks, and its
/// `JoinHandle` reports [`JoinError::is_cancelled`](crate::JoinError::is_cancelled).
/// Join the coroutines whose work must complete.
///
/// # Panics
///
/// * If `main` panics, `run` panics with the same payload after tearing
///   down the other coroutines.
/// * If called inside a running runtime (one thread runs one runtime at a
///   time; use [`spawn`](crate::spawn) there).
/// * If the runtime cannot start (no epoll instance, no stack for `main`);
///   the message says why. [`Builder::run`] also panics, before starting
///   anything, on a stack size above [`Builder::MAX_STACK_SIZE`].
///
/// # Examples
///
/// ```
/// let greeting = String::from("hello");
/// let n = green::run(|| {
///     let child = green::spawn(|| 2 + 2);
///     greeting.len() + child.join().unwrap()
/// });
/// assert_eq!(n, 9);
/// ```
pub fn run<F, T>(main: F) -> T
where
    F: FnOnce() -> T,
{
    Builder::new().run(main)
}

/// Options for a runtime.
///
/// ```
/// let value = green::Builder::new()
///     .stack_size(64 * 1024)
///     .name("entry")
///     .run(|| green::current().name().map(str::to_owned));
/// assert_eq!(value.as_deref(), Some("entry"));
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    /// Default stack size of coroutines spawned in the runtime.
    stack_size: usize,
    /// Name of the main coroutine.
    name: Option<Arc<str>>,
    /// How guard pages below stacks are protected.
    protection: Protection,
    /// Worker threads, the calling one included.
    workers: usize,
    /// The blocking pool's settings.
    blocking: PoolConfig,
    /// The stall watchdog's threshold; `None`: off.
    stall_threshold: Option<Duration>,
    /// Print a task dump to stderr on `SIGQUIT`.
    dump_on_sigquit: bool,
    /// One wake-up in this many is timed for `green::metrics`; 0: none.
    delay_sample_every: u32,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// The largest stack size, in bytes, that [`Builder::stack_size`] and
    /// [`task::Builder::stack_size`] accept: 1 GiB.
    ///
    /// Stacks are carved 16 at a time from one mapping, so the largest
    /// mapping is 16 GiB of address space: reserved, not committed (memory is
    /// spent only on the pages a coroutine touches), and a small part of a
    /// 64-bit address space. A thread's main stack is 8 MiB by default; a
    /// coroutine asking for more than a hundred times that is almost always
    /// a mistake in units, and sizes near `usize::MAX` could not be mapped
    /// at all.
    ///
    /// [`task::Builder::stack_size`]: crate::task::Builder::stack_size
    pub const MAX_STACK_SIZE: usize = crate::stack::MAX_STACK_SIZE;

    /// Default options: [`DEFAULT_STACK_SIZE`], main coroutine named
    /// `"main"`, [`Protection::Auto`].
    pub fn new() -> Builder {
        Builder {
            stack_size: DEFAULT_STACK_SIZE,
            name: Some(Arc::from("main")),
            protection: Protection::Auto,
            workers: 1,
            blocking: PoolConfig::default(),
            stall_threshold: Some(crate::watchdog::DEFAULT_STALL_THRESHOLD),
            dump_on_sigquit: false,
            delay_sample_every: crate::metrics::DelayHistogram::SAMPLE_EVERY,
        }
    }

    /// Sets the default usable stack size in bytes of every coroutine of
    /// the runtime, the main one included. [`task::Builder::stack_size`]
    /// overrides it for one coroutine.
    ///
    /// The size is rounded up to whole pages; 0, or any size below one page,
    /// gives the smallest stack, one page. The guard page below the stack
    /// comes on top.
    ///
    /// # Panics
    ///
    /// Not here, but [`Builder::run`] panics before starting anything if
    /// `bytes` exceeds [`Builder::MAX_STACK_SIZE`], with a message naming
    /// the limit.
    ///
    /// [`task::Builder::stack_size`]: crate::task::Builder::stack_size
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Names the main coroutine (default `"main"`).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// Chooses how the page below each stack catches overflows; see
    /// [`Protection`]. The default, [`Protection::Auto`], is right unless
    /// you are testing a particular mechanism.
    ///
    /// An overflow always faults: [`Protection::GuardRegion`] and
    /// [`Protection::GuardPage`] are never replaced by anything else (a
    /// spawn fails with an error saying why the mechanism is unavailable),
    /// and `Auto` picks one of the two or fails the spawn.
    ///
    /// # Panics
    ///
    /// If `protection` is [`Protection::Canary`], which cannot stop an
    /// overflowing coroutine from writing into another coroutine's stack:
    /// only the unsafe [`Builder::stack_protection_unchecked`] takes it.
    #[track_caller]
    pub fn stack_protection(mut self, protection: Protection) -> Builder {
        if protection == Protection::Canary {
            panic!(
                "green::Builder::stack_protection(Protection::Canary): canary pages cannot stop a \
                 coroutine that overflows its stack from overwriting another coroutine's stack, so \
                 they are available only through the unsafe \
                 green::Builder::stack_protection_unchecked; use Protection::Auto for a guard that \
                 faults"
            );
        }
        self.protection = protection;
        self
    }

    /// Like [`Builder::stack_protection`], but also accepts
    /// [`Protection::Canary`]: no guard below the stacks, only a zeroed page
    /// that the runtime checks when a coroutine switches out or finishes.
    /// Canary pages cost no mappings and need no kernel support.
    ///
    /// # Safety
    ///
    /// With [`Protection::Canary`], no coroutine of the runtime may use more
    /// stack than it was given ([`Builder::stack_size`],
    /// [`task::Builder::stack_size`]). The page below each stack is ordinary
    /// memory: a coroutine that overflows writes through it into the stack
    /// below, which may be a parked coroutine's, before any check runs, and
    /// frames that only probe the stack (writing zeros) leave the canary
    /// intact, so the overflow may go unnoticed. Both are undefined
    /// behaviour. The checks catch most overflows that end inside the page,
    /// after the fact, and abort the process with a report.
    ///
    /// With any other protection there is nothing to uphold: this is then
    /// [`Builder::stack_protection`].
    ///
    /// [`task::Builder::stack_size`]: crate::task::Builder::stack_size
    pub unsafe fn stack_protection_unchecked(mut self, protection: Protection) -> Builder {
        self.protection = protection;
        self
    }

    /// The most workers [`Builder::workers`] accepts.
    pub const MAX_WORKERS: usize = crate::workers::MAX_WORKERS;

    /// Sets how many worker threads the runtime has, the calling thread
    /// (which runs `main`) included; the default is 1, which is what
    /// [`run`] gives.
    ///
    /// Each worker is a runtime of its own, on its own OS thread, with its
    /// own scheduler, reactor, timers and stacks. A coroutine spawned with
    /// [`spawn`](crate::spawn) runs on the worker that spawned it, always;
    /// one spawned with [`spawn_distributed`](crate::spawn_distributed)
    /// (a `Send` closure) goes to the spawning worker's queue, where an
    /// idle worker may take it over before it starts. A coroutine that has
    /// started never changes thread. Besides the workers, a runtime of
    /// several has one more thread, `green-monitor`, which sends an idle
    /// worker for jobs queued behind a busy one and sleeps while every
    /// queue is empty.
    ///
    /// Choose 1 (or [`run`]) unless the program has parallel work: one
    /// worker needs no `Send` anywhere and makes every wake-up local. Choose
    /// the number of cores to spread independent connections or jobs over
    /// them.
    ///
    /// # Panics
    ///
    /// Not here, but [`Builder::run`] panics before starting anything if
    /// `n` is 0 or more than [`Builder::MAX_WORKERS`].
    ///
    /// ```
    /// use std::collections::HashSet;
    /// let threads = green::Builder::new().workers(2).run(|| {
    ///     let handles: Vec<_> = (0..64)
    ///         .map(|_| green::spawn_distributed(|| {
    ///             std::thread::sleep(std::time::Duration::from_millis(1)); // blocks its worker
    ///             std::thread::current().id()
    ///         }))
    ///         .collect();
    ///     handles.into_iter().map(|h| h.join().unwrap()).collect::<HashSet<_>>()
    /// });
    /// assert!(!threads.is_empty());
    /// ```
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = n;
        self
    }

    /// Sets the most threads the runtime's blocking pool runs at once
    /// (default [`blocking::DEFAULT_THREADS`], 512); see
    /// [`green::blocking`](crate::blocking). Threads start only when work
    /// waits and none is idle. For CPU-bound work, the number of cores is
    /// the useful most; blocking calls that mostly wait (files, DNS) can use
    /// many more.
    ///
    /// # Panics
    ///
    /// Not here, but [`Builder::run`] panics before starting anything if
    /// `n` is 0.
    ///
    /// [`blocking::DEFAULT_THREADS`]: crate::blocking::DEFAULT_THREADS
    pub fn blocking_threads(mut self, n: usize) -> Builder {
        self.blocking.threads = n;
        self
    }

    /// Sets how long an idle thread of the blocking pool waits for work
    /// before it exits (default [`blocking::DEFAULT_IDLE_TIMEOUT`], 10 s).
    ///
    /// [`blocking::DEFAULT_IDLE_TIMEOUT`]: crate::blocking::DEFAULT_IDLE_TIMEOUT
    pub fn blocking_idle_timeout(mut self, timeout: Duration) -> Builder {
        self.blocking.idle_timeout = timeout;
        self
    }

    /// Sets the most closures that wait in the blocking pool's queue for a
    /// thread (default [`blocking::DEFAULT_QUEUE_LIMIT`], 65,536). When the
    /// queue is full, [`blocking::unblock`](crate::blocking::unblock) and
    /// [`blocking::spawn`](crate::blocking::spawn) wait for room, so memory
    /// stays bounded however fast work arrives.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sum = green::Builder::new()
    ///     .blocking_threads(2)
    ///     .blocking_queue_limit(4)
    ///     .blocking_idle_timeout(Duration::from_millis(100))
    ///     .run(|| {
    ///         let handles: Vec<_> = (0..16u64)
    ///             .map(|i| green::blocking::spawn(move || i).unwrap()) // waits while 4 are queued
    ///             .collect();
    ///         handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    ///     });
    /// assert_eq!(sum, 120);
    /// ```
    ///
    /// # Panics
    ///
    /// Not here, but [`Builder::run`] panics before starting anything if
    /// `n` is 0 or above [`Semaphore::MAX_PERMITS`](crate::sync::Semaphore::MAX_PERMITS).
    ///
    /// [`blocking::DEFAULT_QUEUE_LIMIT`]: crate::blocking::DEFAULT_QUEUE_LIMIT
    pub fn blocking_queue_limit(mut self, n: usize) -> Builder {
        self.blocking.queue_limit = n;
        self
    }

    /// Sets when the stall watchdog reports a coroutine that holds its
    /// worker's thread without parking or yielding: after `threshold`
    /// (default 100 ms), or never (`None`).
    ///
    /// While a coroutine computes, or calls a blocking function, no other
    /// coroutine of its worker runs: their timers fire late and their
    /// sockets wait. The watchdog, one thread for the whole process, looks
    /// at every worker four times per threshold and prints one report per
    /// incident to stderr, naming the coroutine, its id, where it was
    /// spawned and how long it has held the thread, with what to do about
    /// it ([`blocking::unblock`](crate::blocking::unblock), or
    /// [`yield_now`](crate::yield_now) now and then):
    ///
    /// ```text
    /// green: stall: coroutine 'resize' (id 12, spawned at src/main.rs:40:9) has held the thread 'main'
    /// for at least 100 ms without parking or yielding; ...
    /// ```
    ///
    /// Watching costs a worker three plain stores per switch; thresholds
    /// down to 1 ms are cheap (the watchdog then looks every 250 µs). The
    /// report is a warning: nothing is interrupted.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// green::Builder::new().stall_watchdog(Some(Duration::from_millis(10))).run(|| {
    ///     green::spawn(|| green::sleep(Duration::from_millis(1))).join().unwrap();
    /// });
    /// ```
    pub fn stall_watchdog(mut self, threshold: Option<Duration>) -> Builder {
        self.stall_threshold = threshold;
        self
    }

    /// Prints a task dump ([`green::dump`](crate::dump())) to stderr when the
    /// process receives `SIGQUIT` (`kill -QUIT <pid>`, or Ctrl-\\ in a
    /// terminal), instead of ending it with a core dump; the default is
    /// off. The environment variable `GREEN_DUMP_ON_SIGQUIT=1` turns it on
    /// for every runtime without a change to the program.
    ///
    /// Turned on, it stays on for the rest of the process (one handler and
    /// one thread, `green-dump`, for all runtimes), and each `SIGQUIT`
    /// prints one dump of every runtime running then. The signal handler
    /// only writes a byte to a pipe; the dump is made and printed by that
    /// thread, so it comes also when every worker is stuck in a coroutine
    /// that does not yield, and then says so. Off, nothing is installed and
    /// `SIGQUIT` keeps its default action.
    ///
    /// ```no_run
    /// green::Builder::new().dump_on_sigquit(true).run(|| {
    ///     // kill -QUIT <pid> prints every coroutine and what it waits for
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Not here, but [`Builder::run`] panics before starting anything if
    /// the handler cannot be installed (no pipe, no thread).
    pub fn dump_on_sigquit(mut self, on: bool) -> Builder {
        self.dump_on_sigquit = on;
        self
    }

    /// Sets how many wake-ups each worker lets pass, on average, between two
    /// it times for the scheduling-delay histogram of
    /// [`green::metrics`](crate::metrics()) (see
    /// [`DelayHistogram`](crate::metrics::DelayHistogram)): one in `n`
    /// (default [`DelayHistogram::SAMPLE_EVERY`](crate::metrics::DelayHistogram::SAMPLE_EVERY),
    /// 1,024); 1 times every wake-up while no other is being timed; 0 none.
    ///
    /// Timing one costs two reads of the clock, some 50 ns; the default
    /// keeps that below a hundredth of a nanosecond per wake-up, and still
    /// gives hundreds of samples a second to a busy worker. Lower it for
    /// more samples from a worker that is mostly idle.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let timed = green::Builder::new().delay_sampling(1).run(|| {
    ///     for _ in 0..10 {
    ///         green::sleep(Duration::from_millis(1)).unwrap(); // a wake-up each
    ///     }
    ///     green::runtime_metrics().unwrap().total().delay.count()
    /// });
    /// assert_eq!(timed, 10);
    /// ```
    pub fn delay_sampling(mut self, n: u32) -> Builder {
        self.delay_sample_every = n;
        self
    }

    /// Runs `main` on a runtime with these options; see [`run`].
    ///
    /// # Panics
    ///
    /// As [`run`]; also, before starting anything, if the stack size is
    /// above [`Builder::MAX_STACK_SIZE`], the number of workers is 0 or
    /// above [`Builder::MAX_WORKERS`], or the blocking pool's settings are
    /// out of range. With several workers, `run` returns
    /// once every worker has torn its coroutines down and its thread has
    /// exited; a worker thread that panicked makes `run` panic with its
    /// payload (after all have exited).
    pub fn run<F, T>(self, main: F) -> T
    where
        F: FnOnce() -> T,
    {
        if let Err(err) = crate::stack::class_of(self.stack_size) {
            panic!("{err}");
        }
        if self.workers == 0 || self.workers > Builder::MAX_WORKERS {
            panic!(
                "green::Builder::workers({}): a runtime has between 1 and {} workers (the calling \
                 thread is worker 0); use 1, or the number of cores",
                self.workers,
                Builder::MAX_WORKERS
            );
        }
        if let Err(err) = self.blocking.check() {
            panic!("{err}");
        }
        if (self.dump_on_sigquit || crate::dump::signal::asked_by_env())
            && let Err(err) = crate::dump::signal::install()
        {
            panic!("{err}");
        }
        let spin_before_sleep = if self.workers > 1 { SPIN_BEFORE_SLEEP } else { Duration::ZERO };
        let pool = Arc::new(LazyPool::new(self.blocking));
        // Listed for `green::metrics` until `run` returns.
        let probe = pool.clone();
        let registration = metrics::register(self.workers, move || probe.stats());
        // Closes the pool once every worker has torn its coroutines down.
        let _close = CloseOnDrop(pool.clone());
        let config = Config {
            stack_size: self.stack_size,
            protection: self.protection,
            spin_before_sleep,
            board: None,
            stall_threshold: self.stall_threshold,
            delay_sample_every: self.delay_sample_every,
        };
        if self.workers == 1 {
            let _pool = blocking::enter(pool);
            let _metrics = metrics::enter(registration.record());
            return Scheduler::run(config, self.name, main);
        }
        run_workers(self.workers, config, pool, &registration, self.name, main)
    }
}

/// How long a worker of a runtime of several watches its inbox before it
/// sleeps in `epoll_wait` (see `Config::spin_before_sleep`): about the
/// time a thread takes to wake from `epoll_wait` on the 2-core CI VM
/// (DESIGN.md, "Every core: workers").
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(50);

/// Runs `main` on worker 0 (this thread) of a runtime of `n` workers, the
/// others on threads of their own; returns once every worker has stopped
/// and its thread has exited (see `workers.rs`).
fn run_workers<F, T>(
    n: usize,
    config: Config,
    pool: Arc<LazyPool>,
    registration: &Registration,
    name: Option<Arc<str>>,
    main: F,
) -> T
where
    F: FnOnce() -> T,
{
    let board = Arc::new(Board::new(n, context::fresh_id()));
    let group = Arc::new(Group::new(n, board.clone()));
    // Stops the group and joins its threads also when `main` panics.
    let mut crew = Crew { group: group.clone(), threads: Vec::with_capacity(n) };
    for k in 1..n {
        let group = group.clone();
        let config = Config { board: Some((board.clone(), k)), ..config.clone() };
        let name = Arc::from(format!("worker-{k}"));
        let pool = pool.clone();
        let record = registration.record();
        let thread = thread::Builder::new().name(format!("green-worker-{k}")).spawn(move || {
            let _pool = blocking::enter(pool);
            let _metrics = metrics::enter(record);
            let _seat = Group::sit(&group, k);
            Scheduler::run(config, Some(name), || group.serve(k));
        });
        match thread {
            Ok(thread) => crew.threads.push(thread),
            Err(err) => panic!("green: cannot start the thread of worker {k}: {err}"),
        }
    }
    let monitor = group.clone();
    match thread::Builder::new().name("green-monitor".into()).spawn(move || monitor.monitor()) {
        Ok(thread) => crew.threads.push(thread),
        Err(err) => panic!("green: cannot start the workers' monitor thread: {err}"),
    }
    let _pool = blocking::enter(pool);
    let _metrics = metrics::enter(registration.record());
    let _seat = Group::sit(&group, 0);
    let config = Config { board: Some((board, 0)), ..config };
    let result = Scheduler::run(config, name, || {
        let service = group.clone();
        let serving = match crate::task::Builder::new().name("worker-0").spawn(move || service.serve(0)) {
            Ok(serving) => serving,
            Err(err) => panic!("green: cannot start worker 0's service coroutine: {err}"),
        };
        let result = main();
        // Nothing queued starts any more; every worker's service ends, and
        // each worker tears its coroutines down as its `run` ends. Worker
        // 0's service is waited for, so that the jobs still in its queue
        // are dropped inside it, as the other workers' services drop
        // theirs: a closure's destructor then runs in a coroutine.
        group.stop();
        // A cancelled join, at worst, leaves the service to the teardown.
        let _ = serving.join();
        result
    });
    crew.finish();
    result
}

/// The threads of a runtime's workers 1 and up.
struct Crew {
    /// Their group.
    group: Arc<Group>,
    /// Their threads, to join.
    threads: Vec<thread::JoinHandle<()>>,
}

impl Crew {
    /// Stops the group and waits for every worker thread to exit; panics
    /// with the payload of the first one that panicked.
    fn finish(mut self) {
        if let Some(payload) = self.join_all() {
            panic::resume_unwind(payload);
        }
    }

    /// Stops the group, joins every thread, and returns the first panic.
    fn join_all(&mut self) -> Option<Box<dyn std::any::Any + Send>> {
        self.group.stop();
        let mut first = None;
        for thread in self.threads.drain(..) {
            if let Err(payload) = thread.join() {
                first.get_or_insert(payload);
            }
        }
        first
    }
}

impl Drop for Crew {
    /// On an unwind out of `main`: the workers still stop, and `run` waits
    /// for their threads before the panic goes on.
    fn drop(&mut self) {
        drop(self.join_all());
    }
}
