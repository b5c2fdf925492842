//! Live runtime metrics: what each worker of each runtime has done and
//! holds, readable from any thread while it runs.
//!
//! [`metrics`](crate::metrics()) returns every runtime of the process,
//! [`runtime_metrics`](crate::runtime_metrics()) the caller's own (inside
//! a coroutine, or on a worker's thread). Each is a snapshot: plain values
//! to compare with the next one.
//!
//! ```
//! use std::time::Duration;
//!
//! let (before, after) = green::run(|| {
//!     let before = green::runtime_metrics().unwrap().total();
//!     let tasks: Vec<_> = (0..10).map(|_| green::spawn(green::yield_now)).collect();
//!     tasks.into_iter().for_each(|task| task.join().unwrap());
//!     green::sleep(Duration::from_millis(1)).unwrap();
//!     (before, green::runtime_metrics().unwrap().total())
//! });
//! assert_eq!(after.spawned - before.spawned, 10);
//! assert_eq!(after.alive(), before.alive());
//! assert!(after.switches - before.switches >= 20);
//! ```
//!
//! # What is counted
//!
//! Per worker ([`WorkerMetrics`]): coroutines spawned and finished (so
//! alive), parked and queued now, switches into coroutines, polls of the
//! reactor and the I/O events they returned, distributed tasks stolen from
//! other workers, stalls the watchdog reported, and a histogram of
//! scheduling delay ([`DelayHistogram`]). Per runtime ([`RuntimeMetrics`]):
//! the workers, their [`total`](RuntimeMetrics::total), and the blocking
//! pool's [`PoolStats`].
//!
//! # What it costs
//!
//! Each worker writes its own counters (relaxed atomics, a load and a
//! store each, never a locked instruction), where the event happens: a
//! spawn, a finish, a poll, a steal. The switch count is the one the stall
//! watchdog keeps already. The gauges are stored once per turn of the
//! loop (every 61 coroutine runs at most), not on every park and wake. The
//! delay histogram times about one wake-up in
//! [`SAMPLE_EVERY`](DelayHistogram::SAMPLE_EVERY), reading the clock twice
//! per sample: a yield pays nothing, a wake-up a decrement and a branch, a
//! return from a park the test of a byte. A channel round trip costs 0.6%
//! more instructions, a yield none; DESIGN.md ("Metrics") has the numbers.
//!
//! Reading takes a process-wide lock for as long as it takes to copy a
//! list of pointers, and never stops a worker.

mod counters;
mod registry;
mod snapshot;

pub(crate) use counters::Recorder;
pub(crate) use registry::{Registration, enter, join, register};
pub use snapshot::{DelayHistogram, Metrics, PoolStats, RuntimeMetrics, WorkerMetrics};

/// A snapshot of every runtime running in the process: callable from a
/// coroutine or from any thread.
///
/// A runtime is listed from the moment [`run`](crate::run) starts it until
/// `run` returns.
///
/// ```
/// use std::sync::mpsc;
///
/// let (started, is_running) = mpsc::channel();
/// let (stop, stopped) = green::channel::bounded::<()>(1);
/// let runtime = std::thread::spawn(move || {
///     green::run(|| {
///         started.send(green::runtime_metrics().unwrap().id).unwrap();
///         stopped.recv().unwrap();
///     })
/// });
/// let id = is_running.recv().unwrap();
/// // From a plain thread: the runtime on the other thread is there.
/// assert!(green::metrics().runtime(id).is_some());
/// stop.send(()).unwrap();
/// runtime.join().unwrap();
/// assert!(green::metrics().runtime(id).is_none());
/// ```
pub fn metrics() -> Metrics {
    Metrics { runtimes: registry::snapshot_all() }
}

/// A snapshot of the runtime the caller runs in (called from one of its
/// coroutines, or on one of its workers' threads); `None` elsewhere.
///
/// ```
/// assert!(green::runtime_metrics().is_none());
/// let workers = green::run(|| green::runtime_metrics().map(|runtime| runtime.workers.len()));
/// assert_eq!(workers, Some(1));
/// ```
pub fn runtime_metrics() -> Option<RuntimeMetrics> {
    registry::snapshot_current()
}
