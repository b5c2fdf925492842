//! The stall watchdog: one thread per process that notices a coroutine
//! holding its worker's thread for too long without parking or yielding,
//! and names it on stderr. Configured per runtime with
//! [`Builder::stall_watchdog`](crate::Builder::stall_watchdog).
//!
//! # What a worker pays
//!
//! Each worker owns a `Stamp`. Around every switch into a coroutine the
//! scheduler writes three words to it with plain (relaxed) stores: the
//! switch count and the running task on the way in, null on the way out.
//! Nothing is read, locked or fenced on that path. The watchdog reads the
//! stamps every quarter of the threshold; a stamp whose task and switch
//! count have not changed between two looks at least a threshold apart
//! is a stall. One report per stall: the count must move before that
//! worker is reported again.
//!
//! # Reading a task that belongs to another thread
//!
//! The running task's record lives on the worker (an `Rc`, freed by that
//! thread when its last handle goes). The watchdog reads only the
//! record's immutable [`Task`] (id, name, spawn site), and only under a
//! hazard pointer: it publishes the task's address in `HAZARD`, then
//! checks that the worker still runs that task at the same switch count,
//! clones the `Task`, and clears the hazard. A worker about to free a task
//! record first waits while `HAZARD` names it (`retire`).
//!
//! The check after publishing needs the two threads' accesses ordered:
//! the watchdog's store to `HAZARD` before its load of the stamp, the
//! worker's store of null to the stamp (at the switch out) before its load
//! of `HAZARD` (when the record is freed). A fence on the worker's side
//! would cost every task's teardown; instead the watchdog issues the
//! process-wide barrier `membarrier(2)` (`MEMBARRIER_CMD_PRIVATE_EXPEDITED`),
//! which makes every running thread of the process execute a full memory
//! barrier before it returns. Either that barrier comes after the
//! worker's load of `HAZARD` (then the worker's earlier store of null is
//! visible to the watchdog, which gives up), or before it (then the
//! worker sees the hazard and waits). Where the kernel refuses the call,
//! the report goes without the task's name and spawn site.
//!
//! The task dump (`dump/`) reads the stamps too, for a worker that does not
//! answer its request: the same hazard, under the same rules. One reader
//! at a time holds the hazard (`READING`), the watchdog or a dump.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering, compiler_fence};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::task::Task;

/// Default stall threshold (see [`Builder::stall_watchdog`](crate::Builder::stall_watchdog)).
pub const DEFAULT_STALL_THRESHOLD: Duration = Duration::from_millis(100);

/// The shortest threshold the watchdog takes: it looks every quarter of
/// the threshold, so 1 ms means a look every 250 µs.
const MIN_THRESHOLD: Duration = Duration::from_millis(1);

/// The task record the watchdog is reading, if any (see the module
/// documentation).
static HAZARD: AtomicPtr<Task> = AtomicPtr::new(ptr::null_mut());

/// Held by whoever publishes in `HAZARD`: there is one hazard, and a
/// watchdog and a dump may both want to read a record.
static READING: Mutex<()> = Mutex::new(());

/// Stalls reported since the process started.
static REPORTED: AtomicU64 = AtomicU64::new(0);

/// Stalls the watchdog has reported since the process started, in every
/// runtime. Per worker of a running runtime:
/// [`WorkerMetrics::stalls`](crate::metrics::WorkerMetrics::stalls).
///
/// ```
/// let before = green::watchdog::stalls_reported();
/// green::run(|| green::yield_now());
/// assert!(green::watchdog::stalls_reported() >= before);
/// ```
pub fn stalls_reported() -> u64 {
    REPORTED.load(Ordering::Relaxed)
}

/// Threads the watchdog adds to the process: 1 once it has started.
pub(crate) fn threads() -> usize {
    usize::from(RUNNING_THREAD.load(Ordering::Relaxed))
}

/// The watchdog's thread has started.
static RUNNING_THREAD: AtomicBool = AtomicBool::new(false);

/// What one worker shows the watchdog.
#[derive(Debug)]
pub(crate) struct Stamp {
    /// Switches into coroutines so far, written by the worker alone.
    switches: AtomicU64,
    /// The task running now (its record's `Task`), or null between
    /// coroutines.
    running: AtomicPtr<Task>,
    /// How long a coroutine may hold the thread.
    threshold: Duration,
    /// How the report names the worker: "worker 2", or the thread's name.
    label: String,
    /// Stalls reported on this worker, written by the watchdog's thread
    /// alone (for `green::metrics`).
    stalls: AtomicU64,
    /// The watchdog's own notes on this stamp.
    watch: Mutex<Watch>,
}

/// What the watchdog last saw of a stamp.
#[derive(Debug)]
struct Watch {
    /// The switch count at the look that started the current stretch.
    switches: u64,
    /// When that look was.
    since: Instant,
    /// This stretch was reported already.
    reported: bool,
}

impl Stamp {
    /// A stamp for a worker labelled `label`, watched with `threshold`.
    pub(crate) fn new(threshold: Duration, label: String) -> Stamp {
        Stamp {
            switches: AtomicU64::new(0),
            running: AtomicPtr::new(ptr::null_mut()),
            threshold: threshold.max(MIN_THRESHOLD),
            label,
            stalls: AtomicU64::new(0),
            watch: Mutex::new(Watch { switches: 0, since: Instant::now(), reported: false }),
        }
    }

    /// Records that the worker switches into `task`, its `switches`-th
    /// switch. Two relaxed stores.
    #[inline]
    pub(crate) fn enter(&self, task: &Task, switches: u64) {
        self.switches.store(switches, Ordering::Relaxed);
        self.running.store(ptr::from_ref(task).cast_mut(), Ordering::Relaxed);
    }

    /// Records that the worker is back in its scheduler.
    #[inline]
    pub(crate) fn leave(&self) {
        self.running.store(ptr::null_mut(), Ordering::Relaxed);
    }

    /// Switches into coroutines so far.
    pub(crate) fn switches(&self) -> u64 {
        self.switches.load(Ordering::Relaxed)
    }

    /// Stalls reported on this worker so far.
    pub(crate) fn stalls(&self) -> u64 {
        self.stalls.load(Ordering::Relaxed)
    }

    /// What the stamp shows now.
    pub(crate) fn look(&self) -> Look {
        Look {
            switches: self.switches.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
        }
    }

    /// How the stamp's worker is named: "worker 2", or the thread's name.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Since when the watchdog has seen this worker in the stretch at
    /// switch count `switches`, if it watches the stamp and has.
    pub(crate) fn seen_since(&self, switches: u64) -> Option<Instant> {
        let watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
        (watch.switches == switches).then_some(watch.since)
    }
}

/// One look at a [`Stamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Look {
    /// The switch count.
    pub(crate) switches: u64,
    /// The running task's `Task`, or null between coroutines.
    running: *mut Task,
}

impl Look {
    /// Whether a coroutine was running.
    pub(crate) fn is_running(&self) -> bool {
        !self.running.is_null()
    }
}

/// A copy of the `Task` of the coroutine `look` saw running on `stamp`'s
/// worker, if that worker still runs it in the same stretch once a hazard
/// protects it (see the module documentation); `None` otherwise, or where
/// the kernel offers no process-wide barrier.
pub(crate) fn read_running(stamp: &Stamp, look: Look) -> Option<Task> {
    if look.running.is_null() {
        return None;
    }
    process_barrier().read(stamp, look.running, look.switches)
}

/// The process's registration for `membarrier`, made once.
fn process_barrier() -> Barrier {
    static BARRIER: OnceLock<Barrier> = OnceLock::new();
    *BARRIER.get_or_init(Barrier::register)
}

/// Called by a worker before it frees the task record holding `task`:
/// waits while the watchdog reads it (a few instructions; almost never).
#[inline]
pub(crate) fn retire(task: &Task) {
    // Keeps the compiler from moving this load above the earlier store of
    // null into the stamp; the hardware order comes from the watchdog's
    // `membarrier` (see the module documentation).
    compiler_fence(Ordering::SeqCst);
    if HAZARD.load(Ordering::Relaxed) == ptr::from_ref(task).cast_mut() {
        wait_out(task);
    }
}

#[cold]
#[inline(never)]
fn wait_out(task: &Task) {
    while HAZARD.load(Ordering::Acquire) == ptr::from_ref(task).cast_mut() {
        thread::yield_now();
    }
}

/// The watched stamps, and the watchdog thread's wake-up.
struct Registry {
    /// Stamps of the workers alive.
    stamps: Mutex<Vec<Arc<Stamp>>>,
    /// Rung when the first stamp arrives.
    arrived: Condvar,
}

/// The registry, made with the watchdog thread.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    static STARTED: AtomicBool = AtomicBool::new(false);
    let registry =
        REGISTRY.get_or_init(|| Registry { stamps: Mutex::new(Vec::new()), arrived: Condvar::new() });
    if !STARTED.swap(true, Ordering::AcqRel) {
        let started = thread::Builder::new().name("green-watchdog".into()).spawn(move || watch(registry));
        if started.is_ok() {
            RUNNING_THREAD.store(true, Ordering::Relaxed);
        }
        if let Err(err) = started {
            eprintln!("green: cannot start the stall watchdog's thread ({err}); stalls go unreported");
        }
    }
    registry
}

/// Starts watching `stamp` until [`Watched`] is dropped.
pub(crate) fn watch_stamp(stamp: Arc<Stamp>) -> Watched {
    let registry = registry();
    registry.stamps.lock().unwrap_or_else(PoisonError::into_inner).push(stamp.clone());
    registry.arrived.notify_all();
    Watched(stamp)
}

/// A stamp being watched; unregistered on drop.
#[derive(Debug)]
pub(crate) struct Watched(Arc<Stamp>);

impl Drop for Watched {
    fn drop(&mut self) {
        let registry = registry();
        registry.stamps.lock().unwrap_or_else(PoisonError::into_inner).retain(|s| !Arc::ptr_eq(s, &self.0));
    }
}

/// The watchdog thread: looks at every stamp a quarter threshold apart
/// while there are any, and sleeps while there are none.
fn watch(registry: &'static Registry) {
    let barrier = process_barrier();
    let mut stamps = registry.stamps.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if stamps.is_empty() {
            stamps = registry.arrived.wait(stamps).unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        let look: Vec<Arc<Stamp>> = stamps.clone();
        drop(stamps);
        let now = Instant::now();
        let mut tick = Duration::MAX;
        for stamp in &look {
            tick = tick.min(stamp.threshold / 4);
            check(stamp, now, barrier);
        }
        drop(look);
        thread::sleep(tick);
        stamps = registry.stamps.lock().unwrap_or_else(PoisonError::into_inner);
    }
}

/// One look at one stamp; reports a stall that has lasted a threshold.
fn check(stamp: &Stamp, now: Instant, barrier: Barrier) {
    let switches = stamp.switches.load(Ordering::Relaxed);
    let running = stamp.running.load(Ordering::Relaxed);
    let mut watch = stamp.watch.lock().unwrap_or_else(PoisonError::into_inner);
    if running.is_null() || switches != watch.switches {
        *watch = Watch { switches, since: now, reported: false };
        return;
    }
    let held = now.saturating_duration_since(watch.since);
    if watch.reported || held < stamp.threshold {
        return;
    }
    watch.reported = true;
    drop(watch);
    let task = barrier.read(stamp, running, switches);
    // Still the same stretch after the read? Then report it.
    if task.is_none() && stamp.switches.load(Ordering::Relaxed) != switches {
        return;
    }
    REPORTED.fetch_add(1, Ordering::Relaxed);
    stamp.stalls.fetch_add(1, Ordering::Relaxed);
    eprintln!("{}", report(task.as_ref(), &stamp.label, held));
}

/// The text of one stall report.
fn report(task: Option<&Task>, worker: &str, held: Duration) -> String {
    let who = match task {
        Some(task) => {
            let site = task.spawned_at().map(|at| format!(", spawned at {at}")).unwrap_or_default();
            format!("coroutine '{}' (id {}{site})", task.display_name(), task.id())
        }
        None => "a coroutine".to_owned(),
    };
    format!(
        "green: stall: {who} has held {worker} for at least {} ms without parking or yielding; the other \
         coroutines of that worker cannot run meanwhile. Move blocking calls and long computations to \
         green::blocking::unblock, or call green::yield_now() every few milliseconds.",
        held.as_millis()
    )
}

/// How the watchdog orders its hazard against the workers (see the module
/// documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Barrier {
    /// `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, registered.
    Expedited,
    /// No process-wide barrier: task records are not read.
    None,
}

/// `membarrier(2)` commands (linux/membarrier.h).
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

impl Barrier {
    /// Registers the process for expedited barriers.
    fn register() -> Barrier {
        // SAFETY: `membarrier` takes three integers and touches no memory of ours.
        let registered =
            unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) };
        if registered == 0 { Barrier::Expedited } else { Barrier::None }
    }

    /// A full memory barrier on every running thread of the process.
    fn everywhere(self) -> bool {
        match self {
            Barrier::Expedited => {
                // SAFETY: `membarrier` takes three integers and touches no memory of ours.
                let done =
                    unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) };
                done == 0
            }
            Barrier::None => false,
        }
    }

    /// A copy of the `Task` at `running`, if the worker still runs it at
    /// the same switch count once the hazard is up.
    fn read(self, stamp: &Stamp, running: *mut Task, switches: u64) -> Option<Task> {
        let _reading = READING.lock().unwrap_or_else(PoisonError::into_inner);
        HAZARD.store(running, Ordering::SeqCst);
        let task = if self.everywhere()
            && stamp.running.load(Ordering::SeqCst) == running
            && stamp.switches.load(Ordering::SeqCst) == switches
        {
            // SAFETY: the worker still ran this task after HAZARD named it, so the record was alive; a worker
            // waits in `retire` while HAZARD names a record (the membarrier orders the two: module docs); and
            // `Task` is never written after the record is made, so this read races with nothing.
            Some(unsafe { (*running).clone() })
        } else {
            None
        };
        HAZARD.store(ptr::null_mut(), Ordering::Release);
        task
    }
}
