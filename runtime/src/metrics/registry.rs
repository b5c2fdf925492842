//! The process-wide registry of running runtimes: what
//! [`metrics`](crate::metrics()) reads.
//!
//! ```text
//!   Builder::run                      each worker's thread               any thread
//!   register(workers, pool) ──> RUNTIMES: [record, ...]  <── snapshot_all (green::metrics)
//!   enter(record) on each worker         │
//!   thread (CURRENT)                     │                     a worker's own thread:
//!                                 join(k, counters, stamp)     snapshot_current
//!   ... run returns: the                 │                     (green::runtime_metrics)
//!   Registration is dropped,             v
//!   the record leaves RUNTIMES    record.workers[k] = counters + stamp
//! ```
//!
//! Readers take the registry's lock only to copy the list of `Arc`s, and
//! each record's lock only to copy its workers' `Arc`s; the counters
//! themselves are read lock-free. A worker takes a lock once, when it
//! joins; nothing on its hot paths does.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::counters::Counters;
use super::snapshot::{PoolStats, RuntimeMetrics};
use crate::watchdog::Stamp;

/// Every runtime running now, in the order they started.
static RUNTIMES: Mutex<Vec<Arc<RuntimeRecord>>> = Mutex::new(Vec::new());

thread_local! {
    /// The runtime whose worker runs on this thread, while it runs.
    static CURRENT: RefCell<Option<Arc<RuntimeRecord>>> = const { RefCell::new(None) };
}

/// Reads a runtime's blocking pool.
type PoolProbe = Box<dyn Fn() -> PoolStats + Send + Sync>;

/// One runtime in the registry.
pub(crate) struct RuntimeRecord {
    /// Its identity, [`RuntimeMetrics::id`].
    id: u64,
    /// Its workers, by index; `None` until the worker's scheduler starts.
    workers: Mutex<Vec<Option<WorkerRecord>>>,
    /// How to read its blocking pool without starting it.
    pool: PoolProbe,
}

impl std::fmt::Debug for RuntimeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeRecord").field("id", &self.id).finish_non_exhaustive()
    }
}

/// One worker in a [`RuntimeRecord`].
#[derive(Clone)]
struct WorkerRecord {
    /// What its scheduler counts.
    counters: Arc<Counters>,
    /// What the watchdog sees of it: its switch count and stalls.
    stamp: Arc<Stamp>,
}

impl RuntimeRecord {
    /// The workers' slots, locked; nothing panics while they are held.
    fn workers(&self) -> MutexGuard<'_, Vec<Option<WorkerRecord>>> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A snapshot of this runtime.
    fn snapshot(&self) -> RuntimeMetrics {
        let workers = self.workers().clone();
        let workers = workers
            .iter()
            .map(|worker| match worker {
                Some(worker) => {
                    let mut metrics = worker.counters.read();
                    metrics.switches = worker.stamp.switches();
                    metrics.stalls = worker.stamp.stalls();
                    metrics
                }
                None => Default::default(),
            })
            .collect();
        RuntimeMetrics { id: self.id, workers, blocking: (self.pool)() }
    }
}

/// The registry's list, locked; nothing panics while it is held.
fn runtimes() -> MutexGuard<'static, Vec<Arc<RuntimeRecord>>> {
    RUNTIMES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Adds a runtime of `workers` workers, whose blocking pool `pool` reads,
/// to the registry until the returned registration is dropped.
pub(crate) fn register(workers: usize, pool: impl Fn() -> PoolStats + Send + Sync + 'static) -> Registration {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let record = Arc::new(RuntimeRecord {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        workers: Mutex::new(vec![None; workers]),
        pool: Box::new(pool),
    });
    runtimes().push(record.clone());
    Registration(record)
}

/// A runtime in the registry; removed from it when dropped (when `run`
/// returns or unwinds).
#[derive(Debug)]
pub(crate) struct Registration(Arc<RuntimeRecord>);

impl Registration {
    /// The runtime's record, for its worker threads to [`enter`].
    pub(crate) fn record(&self) -> Arc<RuntimeRecord> {
        self.0.clone()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        runtimes().retain(|record| !Arc::ptr_eq(record, &self.0));
    }
}

/// Makes `record` the runtime of the calling thread until the guard is
/// dropped: for each worker thread, for as long as it runs.
pub(crate) fn enter(record: Arc<RuntimeRecord>) -> Entered {
    Entered(CURRENT.replace(Some(record)))
}

/// Puts back the thread's previous runtime when dropped; see [`enter`].
#[derive(Debug)]
pub(crate) struct Entered(Option<Arc<RuntimeRecord>>);

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.set(self.0.take());
    }
}

/// Registers the counters and stamp of worker `worker` of the calling
/// thread's runtime, if it has one.
pub(crate) fn join(worker: usize, counters: Arc<Counters>, stamp: Arc<Stamp>) {
    CURRENT.with_borrow(|record| {
        if let Some(record) = record
            && let Some(slot) = record.workers().get_mut(worker)
        {
            *slot = Some(WorkerRecord { counters, stamp });
        }
    });
}

/// A snapshot of every runtime in the registry.
pub(crate) fn snapshot_all() -> Vec<RuntimeMetrics> {
    let records = runtimes().clone();
    records.iter().map(|record| record.snapshot()).collect()
}

/// A snapshot of the calling thread's runtime, if it runs one.
pub(crate) fn snapshot_current() -> Option<RuntimeMetrics> {
    let record = CURRENT.with_borrow(Option::clone)?;
    Some(record.snapshot())
}
