//! Blocking and CPU-bound work off the loop: the blocking pool.
//!
//! A coroutine that calls a blocking function (`std::fs`, `getaddrinfo`,
//! a C library, a long computation) holds its worker's thread, and every
//! other coroutine of that worker waits. [`unblock`] runs such a closure
//! on a pool of OS threads instead, while the calling coroutine parks;
//! [`spawn`] does the same and returns a [`BlockingHandle`] to join later.
//!
//! ```
//! let (total, ticks) = green::run(|| {
//!     let ticker = green::spawn(|| {
//!         let mut ticks = 0;
//!         while ticks < 5 {
//!             green::sleep(std::time::Duration::from_millis(1));
//!             ticks += 1;
//!         }
//!         ticks
//!     });
//!     // Runs on a pool thread; the ticker keeps ticking meanwhile.
//!     let total = green::blocking::unblock(|| (1..=1_000_000u64).sum::<u64>()).unwrap();
//!     (total, ticker.join().unwrap())
//! });
//! assert_eq!(total, 500_000_500_000);
//! assert_eq!(ticks, 5);
//! ```
//!
//! # Which pool
//!
//! Each runtime has its own pool, shared by all its workers, sized by
//! [`Builder::blocking_threads`](crate::Builder::blocking_threads),
//! [`Builder::blocking_idle_timeout`](crate::Builder::blocking_idle_timeout) and
//! [`Builder::blocking_queue_limit`](crate::Builder::blocking_queue_limit). A plain thread (outside any runtime)
//! uses a process-wide pool with the default settings. Pool threads start
//! when work arrives and no thread is idle, up to the limit, and exit
//! after the idle timeout without work.
//!
//! # Backpressure
//!
//! At most `blocking_queue_limit` closures wait for a thread. When the
//! queue is full, submitting waits (the coroutine parks; a plain thread
//! blocks) until a thread takes the oldest one: memory stays bounded
//! however fast work arrives.
//!
//! # Panics and cancellation
//!
//! A panic in the closure is caught on the pool thread and returned as a
//! [`BlockingError`] ([`BlockingError::is_panic`]); the pool thread lives
//! on. Waiting for the pool (for room in the queue, or for the result) is
//! a cancellation point. When the waiting coroutine is cancelled:
//!
//! * work still **queued** is taken out and never starts: its closure is
//!   dropped on the waiting coroutine;
//! * work already **running** cannot be stopped (a thread cannot be
//!   interrupted safely): it runs to its end on the pool thread, and its
//!   result, or its panic, is dropped there;
//!
//! and the wait returns [`BlockingError::is_cancelled`]. Dropping a
//! [`BlockingHandle`] without joining it does neither: the work runs, and
//! its result is dropped.
//!
//! # Shutdown
//!
//! When a runtime ends, its pool closes: work still queued is dropped
//! without running, and the runtime does not wait for work that is
//! running (a closure may block forever, and shutdown always finishes):
//! those pool threads finish their closure, drop its result and exit.

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::channel::{OneshotReceiver, OneshotSender, RecvError, oneshot};
use crate::context::{self, Context};
use crate::dump::kind::WaitKind;
#[doc(inline)]
pub use crate::metrics::PoolStats;
use crate::sync::{AcquireError, Semaphore};

/// Default most threads of a blocking pool: as tokio's `spawn_blocking`
/// pool. Threads are started only when work waits and none is idle.
pub const DEFAULT_THREADS: usize = 512;

/// Default time an idle pool thread waits for work before it exits.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default most closures waiting for a pool thread at once.
pub const DEFAULT_QUEUE_LIMIT: usize = 65_536;

/// Runs `f` on a thread of the blocking pool and returns its value; the
/// calling coroutine parks meanwhile, and the others of its worker run.
/// From a plain thread, blocks that thread (on the process-wide pool).
///
/// ```
/// green::run(|| {
///     let digest = green::blocking::unblock(|| {
///         // Stands for a blocking call or a long computation.
///         (0..10_000u64).fold(0, |h, i| h ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
///     });
///     assert!(digest.is_ok());
/// });
/// ```
///
/// # Errors
///
/// [`BlockingError::is_panic`] if `f` panicked;
/// [`BlockingError::is_cancelled`] if the coroutine was cancelled while it
/// waited (see the [module documentation](self) for what happens to `f`);
/// [`BlockingError::is_closed`] if the runtime is shutting down; an error
/// from [`BlockingError::into_io`] with the OS's reason if no pool thread
/// could be started.
pub fn unblock<F, T>(f: F) -> Result<T, BlockingError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn(f)?.join()
}

/// Queues `f` on the blocking pool and returns a handle to its result.
///
/// Waits (parks) while the pool's queue is full. The work runs whether or
/// not the handle is joined.
///
/// ```
/// green::run(|| {
///     let handles: Vec<_> = (0..4u64)
///         .map(|i| green::blocking::spawn(move || i * i).unwrap())
///         .collect();
///     let squares: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
///     assert_eq!(squares, [0, 1, 4, 9]);
/// });
/// ```
///
/// # Errors
///
/// As [`unblock`], for the wait for room in the queue and the start of a
/// pool thread.
pub fn spawn<F, T>(f: F) -> Result<BlockingHandle<T>, BlockingError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let pool = Pool::current();
    let (job, result) = pool.submit(f)?;
    Ok(BlockingHandle { pool, job, result })
}

/// What the pool of the calling runtime (or, on a plain thread, the
/// process-wide pool) is doing now.
///
/// ```
/// green::run(|| {
///     green::blocking::unblock(|| ()).unwrap();
///     let stats = green::blocking::stats();
///     assert_eq!(stats.completed, 1);
///     assert!(stats.threads >= stats.busy);
/// });
/// ```
pub fn stats() -> PoolStats {
    Pool::current().stats()
}

/// How work on the blocking pool failed; see [`unblock`].
pub struct BlockingError {
    /// What happened.
    repr: Repr,
}

/// See [`BlockingError`].
enum Repr {
    /// The closure panicked with this payload.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The waiting coroutine was cancelled.
    Cancelled,
    /// The pool is closed: its runtime is shutting down.
    Closed,
    /// No pool thread could be started.
    Spawn(io::Error),
}

impl BlockingError {
    /// The closure panicked; [`BlockingError::into_panic`] has the payload.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panicked(_))
    }

    /// The waiting coroutine was cancelled before the result came.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The pool had closed (its runtime was shutting down) and dropped the
    /// closure without running it, or refused it.
    pub fn is_closed(&self) -> bool {
        matches!(self.repr, Repr::Closed)
    }

    /// The panic message, if the closure panicked with a string.
    pub fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panicked(payload) => payload
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str)),
            _ => None,
        }
    }

    /// The panic payload, to resume the panic with
    /// [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the error is not a panic; see [`BlockingError::is_panic`].
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.repr {
            Repr::Panicked(payload) => payload,
            _ => panic!("BlockingError::into_panic on an error that is not a panic: {self}"),
        }
    }

    /// The error as an [`io::Error`]: a cancellation becomes
    /// [`Cancelled`](crate::Cancelled) (see [`is_cancelled`](crate::is_cancelled)),
    /// a failed thread start keeps the OS's error, the rest are of kind
    /// `Other` with this error's message.
    pub fn into_io(self) -> io::Error {
        match self.repr {
            Repr::Cancelled => crate::cancel::cancelled_error(),
            Repr::Spawn(err) => err,
            _ => io::Error::other(self.to_string()),
        }
    }
}

impl From<BlockingError> for io::Error {
    fn from(err: BlockingError) -> io::Error {
        err.into_io()
    }
}

impl fmt::Display for BlockingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panicked(_) => match self.panic_message() {
                Some(message) => write!(f, "green: work on the blocking pool panicked: {message}"),
                None => f.write_str("green: work on the blocking pool panicked"),
            },
            Repr::Cancelled => {
                f.write_str("green: the coroutine was cancelled while it waited for the blocking pool")
            }
            Repr::Closed => f.write_str("green: the blocking pool is closed: its runtime is shutting down"),
            Repr::Spawn(err) => write!(f, "green: cannot start a thread of the blocking pool: {err}"),
        }
    }
}

impl fmt::Debug for BlockingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.repr {
            Repr::Panicked(_) => "Panicked",
            Repr::Cancelled => "Cancelled",
            Repr::Closed => "Closed",
            Repr::Spawn(_) => "Spawn",
        };
        f.debug_struct("BlockingError").field("kind", &kind).field("message", &self.to_string()).finish()
    }
}

impl std::error::Error for BlockingError {}

/// What a closure sends back: its value or its panic.
type Outcome<T> = Result<T, Box<dyn Any + Send + 'static>>;

/// The result of work queued with [`spawn`].
///
/// Dropping the handle detaches the work: it still runs, and its result is
/// dropped on the pool thread.
pub struct BlockingHandle<T> {
    /// The pool it was queued on.
    pool: Pool,
    /// The work, to take back if it has not started.
    job: Arc<Job>,
    /// Where its outcome arrives.
    result: OneshotReceiver<Outcome<T>>,
}

impl<T> BlockingHandle<T> {
    /// Waits for the work to finish and returns its value.
    ///
    /// # Errors
    ///
    /// As [`unblock`]. On cancellation, work still queued never starts and
    /// work running has its result dropped.
    pub fn join(self) -> Result<T, BlockingError> {
        self.pool.wait(&self.job, &self.result, Cancel::Abandon)
    }

    /// Takes the work out of the queue if no pool thread has started it:
    /// returns `true` if it will never run (its closure is dropped here), `false` if it
    /// has started or finished. A later [`join`](BlockingHandle::join)
    /// then reports [`BlockingError::is_cancelled`].
    pub fn cancel(&self) -> bool {
        self.pool.take_back(&self.job, true)
    }
}

impl<T> fmt::Debug for BlockingHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingHandle").field("started", &self.job.is_taken()).finish_non_exhaustive()
    }
}

/// [`unblock`] for I/O, from the runtime's own file and name functions:
/// errors as `io::Error`s. A cancelled wait abandons `f` if it has
/// started (for pure reads, which have no effect).
pub(crate) fn unblock_io<F, T>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    run_io(f, Cancel::Abandon)
}

/// As [`unblock_io`], but a cancelled wait returns at once only if `f` has
/// not started, and otherwise waits (shielded) for it to finish and
/// returns its outcome: for operations that must have either completed or
/// had no effect when they report, such as a file write.
pub(crate) fn unblock_whole_io<F, T>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    run_io(f, Cancel::Finish)
}

/// Runs `f` on the pool, or in place on a plain thread (which blocks
/// anyway: no hand-off).
fn run_io<F, T>(f: F, cancel: Cancel) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    if Context::with(|_| ()).is_none() {
        return f();
    }
    let pool = Pool::current();
    let (job, result) = pool.submit(f).map_err(BlockingError::into_io)?;
    pool.wait(&job, &result, cancel).map_err(BlockingError::into_io)?
}

/// What a cancelled wait does with work that has started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    /// Return at once; the result is dropped on the pool thread.
    Abandon,
    /// Wait for it, shielded from the cancellation, and return it.
    Finish,
}

/// A pool's settings, from the runtime's [`Builder`](crate::Builder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolConfig {
    /// Most threads at once.
    pub(crate) threads: usize,
    /// How long an idle thread waits for work before it exits.
    pub(crate) idle_timeout: Duration,
    /// Most closures waiting for a thread at once.
    pub(crate) queue_limit: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            threads: DEFAULT_THREADS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            queue_limit: DEFAULT_QUEUE_LIMIT,
        }
    }
}

impl PoolConfig {
    /// Why this configuration cannot make a pool, if it cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.threads == 0 {
            return Err(
                "green::Builder::blocking_threads(0): the blocking pool needs at least one thread".to_owned()
            );
        }
        if self.queue_limit == 0 || self.queue_limit > Semaphore::MAX_PERMITS {
            return Err(format!(
                "green::Builder::blocking_queue_limit({}): the queue holds between 1 and {} closures",
                self.queue_limit,
                Semaphore::MAX_PERMITS
            ));
        }
        Ok(())
    }
}

/// A runtime's pool, made when first used (most runtimes never use one)
/// and closed when the runtime ends. Shared by the runtime's workers
/// through their `Config`.
#[derive(Debug)]
pub(crate) struct LazyPool {
    /// The settings to make it with.
    config: PoolConfig,
    /// The pool, once made.
    pool: OnceLock<Pool>,
}

impl LazyPool {
    /// A pool to be made with `config` when first used.
    pub(crate) fn new(config: PoolConfig) -> LazyPool {
        LazyPool { config, pool: OnceLock::new() }
    }

    /// The pool, made now if it was not yet.
    fn get(&self) -> &Pool {
        self.pool.get_or_init(|| Pool::new(self.config, "green-blocking"))
    }

    /// The pool's counters; all zeros if it was never made.
    pub(crate) fn stats(&self) -> PoolStats {
        self.pool.get().map(Pool::stats).unwrap_or_default()
    }

    /// Closes the pool if it was made (see [`Pool::close`]).
    pub(crate) fn close(&self) {
        if let Some(pool) = self.pool.get() {
            pool.close();
        }
    }
}

thread_local! {
    /// The pool of the runtime this thread runs, while it runs one.
    static RUNTIME_POOL: RefCell<Option<Arc<LazyPool>>> = const { RefCell::new(None) };
}

/// Makes `pool` the calling thread's pool until the guard is dropped: for
/// each worker thread of a runtime, for as long as it runs. (A thread-local
/// rather than a field of the runtime's context, which lies below the
/// channels and semaphore the pool is made of; see DESIGN.md, "Modules
/// and their layers".)
pub(crate) fn enter(pool: Arc<LazyPool>) -> Entered {
    Entered(RUNTIME_POOL.replace(Some(pool)))
}

/// Puts back the thread's previous pool when dropped; see [`enter`].
pub(crate) struct Entered(Option<Arc<LazyPool>>);

impl Drop for Entered {
    fn drop(&mut self) {
        RUNTIME_POOL.set(self.0.take());
    }
}

/// Closes a runtime's pool when dropped: at the end of `Builder::run`,
/// returning or unwinding.
pub(crate) struct CloseOnDrop(pub(crate) Arc<LazyPool>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A pool of threads for blocking work. Cloning shares it.
#[derive(Clone, Debug)]
struct Pool {
    /// The shared state.
    inner: Arc<Inner>,
}

/// A pool's shared state.
struct Inner {
    /// Its settings.
    config: PoolConfig,
    /// The name its threads get, before their number.
    thread_name: &'static str,
    /// Queue and thread counts (see [`State`]).
    state: Mutex<State>,
    /// Rung for an idle thread that has been handed work, and at close.
    ready: Condvar,
    /// One permit per free place in the queue: submitting takes one, a
    /// thread that takes a closure out of the queue (or a waiter that
    /// takes its own back) returns it.
    room: Semaphore,
    /// The identity the pool's waits are marked with, so that a coroutine
    /// waiting for a pool thread never looks deadlocked to its runtime:
    /// the thread that will wake it is outside the runtime.
    home: u64,
    /// Threads running a closure now.
    busy: AtomicUsize,
    /// `State::queue`'s length, for spinning threads to watch without the
    /// lock; written under it.
    queued: AtomicUsize,
    /// Counters for [`PoolStats`].
    started: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
    cancelled_queued: AtomicU64,
    cancelled_running: AtomicU64,
    /// Numbers the threads' names.
    next_thread: AtomicU64,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("config", &self.config).finish_non_exhaustive()
    }
}

/// What the pool's mutex guards.
#[derive(Default)]
struct State {
    /// Work not yet started, oldest first. An entry whose closure was
    /// taken back by its waiter stays until a thread pops it (it costs a
    /// pointer; its closure is already dropped); `taken_back` counts them.
    queue: VecDeque<Arc<Job>>,
    /// Entries of `queue` taken back by their waiters.
    taken_back: usize,
    /// Threads alive.
    threads: usize,
    /// Threads waiting for work and not yet handed any.
    idle: usize,
    /// Hand-offs to idle threads not yet picked up (tokio's scheme: a
    /// thread whose wait ends takes one if there is one, so a hand-off is
    /// never lost to a thread that timed out at the same moment).
    handed: usize,
    /// Threads watching the queue for a short while before they wait on
    /// the condvar (at most [`SPINNERS`]): work queued while one watches
    /// needs no wake-up.
    spinning: usize,
    /// Closed: no work is taken any more, and threads exit when idle.
    closed: bool,
}

/// At most this many pool threads watch the queue at once before they
/// sleep, and none while the pool has more threads than cores: one hot
/// thread takes a burst of short calls without a wake-up each, and the
/// others sleep rather than take the cores from the work.
const SPINNERS: usize = 1;

/// How long a pool thread watches the queue before it sleeps: about a
/// thread wake-up on the CI VM.
const THREAD_SPIN: Duration = Duration::from_micros(50);

/// One closure on its way through the pool.
struct Job {
    /// The closure, until a thread starts it or its waiter takes it back:
    /// whoever takes it decides whether it runs.
    work: Mutex<Option<Work>>,
    /// Its waiter or handle took it back: a later wait reports it
    /// cancelled rather than dropped by a closing pool.
    cancelled: AtomicBool,
}

/// A queued closure, ready to run on a pool thread: it counts itself in
/// the pool's counters and sends its outcome.
type Work = Box<dyn FnOnce(&Inner) + Send>;

impl Job {
    /// Takes the closure, if nobody has.
    fn take(&self) -> Option<Work> {
        self.work.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Whether a thread has started it (or its waiter took it back).
    fn is_taken(&self) -> bool {
        self.work.lock().unwrap_or_else(PoisonError::into_inner).is_none()
    }
}

impl Pool {
    /// The pool of the calling runtime, or the process-wide one.
    fn current() -> Pool {
        let runtime = RUNTIME_POOL.with_borrow(|pool| pool.as_ref().map(|pool| pool.get().clone()));
        runtime.unwrap_or_else(|| {
            static PROCESS: OnceLock<Pool> = OnceLock::new();
            PROCESS.get_or_init(|| Pool::new(PoolConfig::default(), "green-blocking")).clone()
        })
    }

    /// A pool with no thread yet.
    fn new(config: PoolConfig, thread_name: &'static str) -> Pool {
        let pool = Pool {
            inner: Arc::new(Inner {
                config,
                thread_name,
                state: Mutex::new(State::default()),
                ready: Condvar::new(),
                room: Semaphore::new(config.queue_limit),
                home: context::fresh_id(),
                busy: AtomicUsize::new(0),
                queued: AtomicUsize::new(0),
                started: AtomicU64::new(0),
                completed: AtomicU64::new(0),
                panicked: AtomicU64::new(0),
                cancelled_queued: AtomicU64::new(0),
                cancelled_running: AtomicU64::new(0),
                next_thread: AtomicU64::new(1),
            }),
        };
        pool.inner.room.used_by(pool.inner.home);
        pool.inner.room.waits_as(WaitKind::BlockingPool);
        pool
    }

    /// The pool's state, locked. Nothing panics while it is held, so a
    /// poisoned lock (impossible) is taken as is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `f`, waiting for room; starts a thread for it if none is
    /// idle and the limit allows.
    fn submit<F, T>(&self, f: F) -> Result<(Arc<Job>, OneshotReceiver<Outcome<T>>), BlockingError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let inner = &self.inner;
        match inner.room.acquire() {
            Ok(permit) => permit.forget(),
            Err(AcquireError::Cancelled) => return Err(BlockingError { repr: Repr::Cancelled }),
            Err(_) => return Err(BlockingError { repr: Repr::Closed }),
        }
        let (sender, result) = oneshot();
        result.used_by(inner.home);
        result.waits_as(WaitKind::BlockingPool);
        let job = Arc::new(Job {
            work: Mutex::new(Some(Box::new(move |inner: &Inner| run_work(f, sender, inner)))),
            cancelled: AtomicBool::new(false),
        });
        let mut state = self.lock();
        if state.closed {
            drop(state);
            drop(job.take());
            return Err(BlockingError { repr: Repr::Closed });
        }
        state.queue.push_back(job.clone());
        inner.queued.store(state.queue.len(), Ordering::Relaxed);
        // Threads that have finished a closure and not yet come back for
        // the queue: each looks at it before it idles. (`busy` grows only
        // under this lock, so it is not too low here.)
        let returning =
            (state.threads - state.idle - state.spinning).saturating_sub(inner.busy.load(Ordering::Relaxed));
        let (hand, start) = if state.queue.len() <= state.spinning + returning {
            // A thread watching the queue, or one on its way back, takes it.
            (false, false)
        } else if state.idle > 0 {
            state.idle -= 1;
            state.handed += 1;
            (true, false)
        } else if state.threads < inner.config.threads {
            state.threads += 1;
            (false, true)
        } else {
            (false, false)
        };
        drop(state);
        if hand {
            // After the unlock, so that the thread woken does not wake
            // into a held lock. The hand-off is counted already: whichever
            // idle thread wakes takes it.
            inner.ready.notify_one();
        }
        if start && let Err(err) = self.start_thread() {
            let mut state = self.lock();
            state.threads -= 1;
            // With another thread alive the work will still run; with
            // none, nothing would ever take it.
            if state.threads == 0 {
                drop(state);
                if self.take_back(&job, false) {
                    return Err(BlockingError { repr: Repr::Spawn(err) });
                }
            }
        }
        Ok((job, result))
    }

    /// Starts one more pool thread (counted by the caller).
    fn start_thread(&self) -> io::Result<()> {
        let n = self.inner.next_thread.fetch_add(1, Ordering::Relaxed);
        let pool = self.clone();
        thread::Builder::new().name(format!("{}-{n}", self.inner.thread_name)).spawn(move || pool.serve())?;
        Ok(())
    }

    /// A pool thread's life: runs queued closures until the queue is
    /// empty, then waits for more, and exits after the idle timeout or at
    /// close.
    fn serve(&self) {
        let inner = &self.inner;
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                inner.queued.store(state.queue.len(), Ordering::Relaxed);
                let work = job.take();
                if work.is_none() {
                    state.taken_back -= 1;
                }
                if work.is_some() {
                    // Counted under the lock that took it off the queue, so
                    // that `stats` never sees it in neither place.
                    inner.busy.fetch_add(1, Ordering::Relaxed);
                    inner.started.fetch_add(1, Ordering::Relaxed);
                }
                drop(state);
                if let Some(work) = work {
                    inner.room.add_permits(1);
                    // `run_work` catches the closure's panic; this catches
                    // one from dropping its result, which has nobody to go to.
                    let _ = panic::catch_unwind(AssertUnwindSafe(|| work(inner)));
                    inner.busy.fetch_sub(1, Ordering::Relaxed);
                }
                drop(job);
                state = self.lock();
                continue;
            }
            if state.closed {
                state.threads -= 1;
                return;
            }
            if state.spinning < SPINNERS && state.threads <= cores() {
                state.spinning += 1;
                drop(state);
                watch_for(&inner.queued, THREAD_SPIN);
                state = self.lock();
                state.spinning -= 1;
                if !state.queue.is_empty() || state.closed {
                    continue;
                }
            }
            state.idle += 1;
            loop {
                let (guard, waited) = inner
                    .ready
                    .wait_timeout(state, inner.config.idle_timeout)
                    .unwrap_or_else(PoisonError::into_inner);
                state = guard;
                if state.handed > 0 {
                    state.handed -= 1;
                    break;
                }
                if state.closed || waited.timed_out() {
                    state.idle -= 1;
                    state.threads -= 1;
                    return;
                }
            }
        }
    }

    /// Waits for the outcome of `job`; see [`Cancel`] for a cancelled wait.
    fn wait<T>(
        &self,
        job: &Job,
        result: &OneshotReceiver<Outcome<T>>,
        cancel: Cancel,
    ) -> Result<T, BlockingError> {
        let _waiting = PoolWait::start();
        let outcome = match result.recv_again() {
            Err(RecvError::Cancelled) => {
                if self.take_back(job, true) {
                    return Err(BlockingError { repr: Repr::Cancelled });
                }
                if cancel == Cancel::Abandon || Context::with(|_| ()).is_none() {
                    self.inner.cancelled_running.fetch_add(1, Ordering::Relaxed);
                    return Err(BlockingError { repr: Repr::Cancelled });
                }
                // Started: it finishes, and its outcome is what happened.
                match crate::shield(|| result.recv_again()) {
                    Err(RecvError::Cancelled) => {
                        // Only the runtime's teardown gets through a shield.
                        self.inner.cancelled_running.fetch_add(1, Ordering::Relaxed);
                        return Err(BlockingError { repr: Repr::Cancelled });
                    }
                    other => other,
                }
            }
            other => other,
        };
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(payload)) => Err(BlockingError { repr: Repr::Panicked(payload) }),
            // The closure was dropped without running: taken back, or the
            // pool closed.
            Err(_) if job.cancelled.load(Ordering::Relaxed) => Err(BlockingError { repr: Repr::Cancelled }),
            Err(_) => Err(BlockingError { repr: Repr::Closed }),
        }
    }

    /// Takes `job`'s closure back if no thread has started it, and drops
    /// it here; returns whether it did. `cancelled`: count it as work
    /// cancelled while queued.
    fn take_back(&self, job: &Job, cancelled: bool) -> bool {
        // Taken under the pool's lock, as a thread takes what it pops, so
        // that `taken_back` counts exactly the entries left in the queue.
        let mut state = self.lock();
        let Some(work) = job.take() else { return false };
        state.taken_back += 1;
        // Entries taken back cost a pointer each until a thread pops them;
        // while the threads are all busy, sweep them out now and then, so
        // that the queue stays within its limit in memory too (amortized:
        // a sweep removes at least half of what it walks).
        if state.taken_back > 64 && state.taken_back * 2 > state.queue.len() {
            state.queue.retain(|job| !job.is_taken());
            state.taken_back = 0;
            self.inner.queued.store(state.queue.len(), Ordering::Relaxed);
        }
        drop(state);
        self.inner.room.add_permits(1);
        if cancelled {
            job.cancelled.store(true, Ordering::Relaxed);
            self.inner.cancelled_queued.fetch_add(1, Ordering::Relaxed);
        }
        // Dropped outside the lock: a destructor may take time, or wait.
        drop(work);
        true
    }

    /// Closes the pool: work still queued is dropped without running (its
    /// waiters hear that the pool closed), idle threads exit, busy ones
    /// exit once their closure returns. Never waits for them.
    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let queued: Vec<Arc<Job>> = state.queue.drain(..).collect();
        state.taken_back = 0;
        self.inner.queued.store(0, Ordering::Relaxed);
        drop(state);
        self.inner.ready.notify_all();
        self.inner.room.close();
        for job in queued {
            drop(job.take());
        }
    }

    /// A snapshot of the counters.
    fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        let state = self.lock();
        let (threads, queued) = (state.threads, state.queue.len() - state.taken_back);
        let busy = inner.busy.load(Ordering::Relaxed);
        drop(state);
        PoolStats {
            threads,
            busy,
            queued,
            started: inner.started.load(Ordering::Relaxed),
            completed: inner.completed.load(Ordering::Relaxed),
            panicked: inner.panicked.load(Ordering::Relaxed),
            cancelled_queued: inner.cancelled_queued.load(Ordering::Relaxed),
            cancelled_running: inner.cancelled_running.load(Ordering::Relaxed),
        }
    }
}

/// Counts a coroutine's wait for the pool in its runtime's context while it
/// lasts (for the loop's spin before sleeping; see `scheduler.rs`).
struct PoolWait;

impl PoolWait {
    /// Counts the calling coroutine's wait, if it is in a runtime.
    fn start() -> PoolWait {
        Context::with(|cx| cx.pool_waits.set(cx.pool_waits.get() + 1));
        PoolWait
    }
}

impl Drop for PoolWait {
    fn drop(&mut self) {
        Context::with(|cx| cx.pool_waits.set(cx.pool_waits.get().saturating_sub(1)));
    }
}

/// The machine's cores, read once. A pool with more threads than this has
/// threads waiting for a core, and a thread that spun would take one from
/// them: then its threads sleep at once.
pub(crate) fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| thread::available_parallelism().map_or(1, usize::from))
}

/// Watches `queued` until it is not zero or `time` has passed.
fn watch_for(queued: &AtomicUsize, time: Duration) {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if queued.load(Ordering::Relaxed) > 0 {
                return;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= time {
            return;
        }
    }
}

/// What a pool thread runs for one closure: `f` behind a panic boundary,
/// its outcome sent to the waiter (and dropped here if the waiter is gone).
fn run_work<F, T>(f: F, sender: OneshotSender<Outcome<T>>, inner: &Inner)
where
    F: FnOnce() -> T,
{
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    // Counted before the waiter can see the outcome.
    if outcome.is_err() {
        inner.panicked.fetch_add(1, Ordering::Relaxed);
    }
    inner.completed.fetch_add(1, Ordering::Relaxed);
    let _ = sender.send(outcome);
}
