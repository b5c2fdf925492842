//! What the benchmark files share: the settings of the slow OS-thread
//! variants, tokio runtimes comparable to `green`'s, the placement of tasks
//! on the workers of a `green` runtime of several, and the timing loops
//! that keep warm-up and start-up out of the measured time.
//!
//! The benchmarks themselves are in `benches/` (`scheduler.rs`,
//! `channels.rs`, `sync.rs`, `net.rs`, `blocking.rs`, `time.rs`); each
//! opens by saying what it measures. Every group compares the same five
//! variants: `green` (`green::run`, one worker), `green_2w` (a `green`
//! runtime of [`WORKERS`] workers), `tokio` ([`current_thread_runtime`]),
//! `tokio_mt` ([`multi_thread_runtime`]) and `threads` (OS threads).

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, SamplingMode};

/// Settings for the OS-thread variant, benchmarked last in each group: 10
/// samples of equal iteration counts. The OS-thread figures are two to four
/// orders of magnitude slower than the others, and this keeps a full run in
/// minutes; they are noisier for it.
pub fn slow_variant(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
}

/// A tokio runtime comparable to `green`'s: one thread, timers and I/O on.
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio current_thread runtime")
}

/// Worker threads of the multi-worker variants (`green_2w`, `tokio_mt`).
pub const WORKERS: usize = 2;

/// A tokio `multi_thread` runtime of [`WORKERS`] workers, I/O and timers
/// on: the comparison for green's runtimes of several workers.
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("tokio multi_thread runtime")
}

/// Whether a task spawned on `rt` may run before its spawner awaits
/// anything: true on a `multi_thread` runtime, whose idle workers take a
/// new task at once, false on `current_thread`, which runs it only when the
/// spawner yields. Where creating the tasks is not the workload, a variant
/// on a runtime of the first kind starts its clock before spawning, so
/// that no work escapes the timed region.
pub fn starts_tasks_at_once(rt: &tokio::runtime::Runtime) -> bool {
    rt.handle().runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread
}

/// Spawns `f` on worker `i % WORKERS` of the current `green` runtime: tasks
/// numbered `0, 1, 2, …` alternate between the workers, so that each worker
/// surely has work (`spawn_distributed` leaves the placement to the
/// runtime). A task on another worker than the caller's may start at once.
///
/// # Panics
///
/// Outside a `green` runtime of [`WORKERS`] workers.
pub fn spawn_round_robin<F, T>(i: usize, f: F) -> green::DistributedHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    green::task::Builder::new()
        .spawn_on_worker(i % WORKERS, f)
        .expect("spawn_round_robin: inside a green runtime of WORKERS workers")
}

/// Runs `round` once untimed (warming the stack pool or the allocator),
/// then `iters` times, and returns the sum of the durations the rounds
/// report: each round times only its own workload.
pub fn time_rounds(iters: u64, mut round: impl FnMut() -> Duration) -> Duration {
    round();
    (0..iters).map(|_| round()).sum()
}

/// [`time_rounds`] for a round that is a future, on the tokio runtime the
/// caller is in.
pub async fn time_rounds_async(iters: u64, mut round: impl AsyncFnMut() -> Duration) -> Duration {
    round().await;
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        total += round().await;
    }
    total
}

/// Runs `work(i)` on `count` OS threads (`i` in `0..count`) and returns the
/// time from the moment all are released together until the last finishes,
/// excluding thread creation and exit.
pub fn time_on_threads(count: usize, work: impl Fn(usize) + Send + Sync + 'static) -> Duration {
    let work = Arc::new(work);
    let jobs = (0..count)
        .map(|i| {
            let work = work.clone();
            Box::new(move || work(black_box(i))) as Box<dyn FnOnce() + Send>
        })
        .collect();
    time_jobs_on_threads(jobs)
}

/// Runs each job on an OS thread of its own and returns the time from the
/// moment all are released together until the last finishes, excluding
/// thread creation and exit.
pub fn time_jobs_on_threads(jobs: Vec<Box<dyn FnOnce() + Send>>) -> Duration {
    let start_line = Arc::new(Barrier::new(jobs.len() + 1));
    let finish_line = Arc::new(Barrier::new(jobs.len() + 1));
    let threads: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let (start_line, finish_line) = (start_line.clone(), finish_line.clone());
            thread::spawn(move || {
                start_line.wait();
                job();
                finish_line.wait();
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    finish_line.wait();
    let elapsed = start.elapsed();
    for thread in threads {
        thread.join().expect("benchmark thread");
    }
    elapsed
}
