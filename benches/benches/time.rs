//! What this measures: the timers, on `green`, on tokio and on OS threads.
//! Each group runs the same named workload on five variants, so the figures
//! in one group read as ratios:
//!
//! | variant | runtime |
//! |---|---|
//! | `green` | `green::run`: one worker |
//! | `green_2w` | a `green` runtime of [`WORKERS`] = 2 workers, the work on both (see each group) |
//! | `tokio` | tokio's `current_thread` runtime, timers on |
//! | `tokio_mt` | tokio's `multi_thread` runtime of [`WORKERS`] workers, which places the tasks itself |
//! | `threads` | OS threads and `std`'s blocking calls |
//!
//! | group | workload (one iteration) | one element | what dominates |
//! |---|---|---|---|
//! | `sleep_many` | 100,000 tasks spawned, each sleeping 1 ms, then all joined (`threads`: 10,000, see [`sleep_many`]) | one sleeping task | spawning, arming and firing a timer, waking and ending a task: the 1 ms itself is spread over the 100,000 |
//! | `timeout` | 10,000 receives of a message already in a channel, each under a timeout of 1 s that never fires (see [`timeout`]) | one call | setting up and taking down a timeout around an operation that does not block |
//!
//! What is inside the timed region:
//!
//! * Runtime start-up is not. `green` starts one runtime per criterion
//!   sample (`iter_custom`) and times the iterations inside it with
//!   [`Instant`]; tokio builds its runtime once and times inside
//!   `block_on`. Each sample runs the workload once untimed first, so
//!   stacks, allocators and timer storage are warm.
//! * In `sleep_many`, spawning is the workload and is timed on all five;
//!   the clock stops when the last task has been joined.
//! * In `timeout`, filling the channels is not the workload and happens
//!   before the clock starts; on two workers the clock starts before the
//!   callers are spawned, since an idle worker may start one at once.
//!
//! An iteration of `sleep_many` takes a tenth of a second or more, and a
//! `green` sample also starts a runtime and runs an untimed round, so that
//! group takes 20 samples in flat mode (every sample the same number of
//! iterations), its OS-thread variant 10, to keep it near a minute.
//!
//! Run with `cargo bench -p green-benches --bench time`; shorten with
//! `-- --warm-up-time 1 --measurement-time 3`. Medians are in
//! `target/criterion/<group>/<runtime>/new/estimates.json`.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use green_benches::{
    WORKERS, current_thread_runtime, multi_thread_runtime, slow_variant, spawn_round_robin, time_rounds,
    time_rounds_async,
};

/// `sleep_many`: sleeping tasks per iteration.
const SLEEPERS: usize = 100_000;
/// `sleep_many`, `threads`: sleeping OS threads per iteration (see
/// [`sleep_many`] for why fewer).
const THREAD_SLEEPERS: usize = 10_000;
/// `sleep_many`: how long each task sleeps.
const NAP: Duration = Duration::from_millis(1);
/// `timeout`: calls per iteration, over all callers.
const CALLS: usize = 10_000;
/// `timeout`: the limit, far longer than the operation it bounds.
const LIMIT: Duration = Duration::from_secs(1);

/// `sleep_many`: many tasks, each sleeping once.
///
/// * `green`: `green::spawn` of tasks calling `green::sleep`.
/// * `green_2w`: the same spawned with `spawn_distributed`, as in
///   `spawn_many` (the idle worker takes its share; each worker's timers
///   are its own).
/// * `tokio`, `tokio_mt`: `tokio::spawn` of tasks awaiting
///   `tokio::time::sleep`.
/// * `threads`: `thread::spawn` of threads calling `thread::sleep`, then
///   joined, creation timed as in `spawn_many`. Only 10,000 threads: a
///   `std` thread costs about four memory mappings (its stack and guard
///   page, and the signal stack and guard page `std` sets up to report a
///   stack overflow), and `vm.max_map_count`'s default of 65,530 stops
///   near 16,000 threads alive at once; with 100,000 the process aborts
///   ("failed to set up alternative stack guard page: Cannot allocate
///   memory"). The figure is still per sleeping thread: its throughput is
///   10,000 elements.
fn sleep_many(c: &mut Criterion) {
    let mut group = c.benchmark_group("sleep_many");
    group.throughput(Throughput::Elements(SLEEPERS as u64)).sampling_mode(SamplingMode::Flat).sample_size(20);

    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                time_rounds(iters, || {
                    let start = Instant::now();
                    let tasks: Vec<_> =
                        (0..SLEEPERS).map(|_| green::spawn(|| green::sleep(NAP).expect("a nap"))).collect();
                    for task in tasks {
                        task.join().expect("sleeping task");
                    }
                    start.elapsed()
                })
            })
        })
    });

    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| {
                time_rounds(iters, || {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..SLEEPERS)
                        .map(|_| green::spawn_distributed(|| green::sleep(NAP).expect("a nap")))
                        .collect();
                    for task in tasks {
                        task.join().expect("sleeping task");
                    }
                    start.elapsed()
                })
            })
        })
    });

    tokio_sleep_many(&mut group, "tokio", &current_thread_runtime());
    tokio_sleep_many(&mut group, "tokio_mt", &multi_thread_runtime());

    slow_variant(&mut group);
    group.throughput(Throughput::Elements(THREAD_SLEEPERS as u64));
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            time_rounds(iters, || {
                let start = Instant::now();
                let threads: Vec<_> =
                    (0..THREAD_SLEEPERS).map(|_| thread::spawn(|| thread::sleep(NAP))).collect();
                for thread in threads {
                    thread.join().expect("sleeping thread");
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

/// The tokio variant of `sleep_many`, on `rt`, as `name`.
fn tokio_sleep_many(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, rt: &tokio::runtime::Runtime) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(time_rounds_async(iters, async || {
                let start = Instant::now();
                let tasks: Vec<_> =
                    (0..SLEEPERS).map(|_| tokio::spawn(async { tokio::time::sleep(NAP).await })).collect();
                for task in tasks {
                    task.await.expect("sleeping task");
                }
                start.elapsed()
            }))
        })
    });
}

/// `timeout`: a timeout around an operation that completes at once, the
/// receive of a message already waiting in an unbounded channel, so that
/// the timeout is set up and taken down but never fires. One element is
/// one call: the timeout and the receive inside it.
///
/// * `green`: `green::timeout(LIMIT, || rx.recv())` on a
///   `green::channel::unbounded` in the runtime's `main`.
/// * `green_2w`: one caller per worker (`spawn_on_worker`), each making
///   half the calls on a channel of its own.
/// * `tokio`: `tokio::time::timeout(LIMIT, rx.recv())` on a
///   `tokio::sync::mpsc::unbounded_channel`, in `block_on`.
/// * `tokio_mt`: one spawned caller per worker, as `green_2w`.
/// * `threads`: `recv_timeout(LIMIT)` on a `std::sync::mpsc::channel`, on
///   the benchmark's own thread: the OS-thread way of bounding a wait.
fn timeout(c: &mut Criterion) {
    let mut group = c.benchmark_group("timeout");
    group.throughput(Throughput::Elements(CALLS as u64));

    /// `calls` receives, each under a `green::timeout`, from a channel
    /// holding at least as many messages.
    fn green_calls(rx: &green::channel::Receiver<usize>, calls: usize) {
        for _ in 0..calls {
            let received = green::timeout(LIMIT, || rx.recv());
            assert!(matches!(received, Ok(Ok(_))), "the message is there and the limit far away");
        }
    }
    /// A channel holding `messages` messages.
    fn green_filled(messages: usize) -> green::channel::Receiver<usize> {
        let (tx, rx) = green::channel::unbounded();
        for i in 0..messages {
            tx.send(i).expect("the receiver is alive");
        }
        rx
    }

    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                time_rounds(iters, || {
                    let rx = green_filled(CALLS);
                    let start = Instant::now();
                    green_calls(&rx, CALLS);
                    start.elapsed()
                })
            })
        })
    });

    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| {
                time_rounds(iters, || {
                    let channels: Vec<_> = (0..WORKERS).map(|_| green_filled(CALLS / WORKERS)).collect();
                    let start = Instant::now();
                    let callers: Vec<_> = channels
                        .into_iter()
                        .enumerate()
                        .map(|(i, rx)| spawn_round_robin(i, move || green_calls(&rx, CALLS / WORKERS)))
                        .collect();
                    for caller in callers {
                        caller.join().expect("calling task");
                    }
                    start.elapsed()
                })
            })
        })
    });

    /// `calls` receives, each under a `tokio::time::timeout`, from a
    /// channel holding at least as many messages.
    async fn tokio_calls(rx: &mut tokio::sync::mpsc::UnboundedReceiver<usize>, calls: usize) {
        for _ in 0..calls {
            let received = tokio::time::timeout(LIMIT, rx.recv()).await;
            assert!(matches!(received, Ok(Some(_))), "the message is there and the limit far away");
        }
    }
    /// A channel holding `messages` messages.
    fn tokio_filled(messages: usize) -> tokio::sync::mpsc::UnboundedReceiver<usize> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..messages {
            tx.send(i).expect("the receiver is alive");
        }
        rx
    }

    let rt = current_thread_runtime();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(time_rounds_async(iters, async || {
                let mut rx = tokio_filled(CALLS);
                let start = Instant::now();
                tokio_calls(&mut rx, CALLS).await;
                start.elapsed()
            }))
        })
    });

    let rt = multi_thread_runtime();
    group.bench_function("tokio_mt", |b| {
        b.iter_custom(|iters| {
            rt.block_on(time_rounds_async(iters, async || {
                let channels: Vec<_> = (0..WORKERS).map(|_| tokio_filled(CALLS / WORKERS)).collect();
                let start = Instant::now();
                let callers: Vec<_> = channels
                    .into_iter()
                    .map(|mut rx| tokio::spawn(async move { tokio_calls(&mut rx, CALLS / WORKERS).await }))
                    .collect();
                for caller in callers {
                    caller.await.expect("calling task");
                }
                start.elapsed()
            }))
        })
    });

    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            time_rounds(iters, || {
                let (tx, rx) = mpsc::channel();
                for i in 0..CALLS {
                    tx.send(i).expect("the receiver is alive");
                }
                let start = Instant::now();
                for _ in 0..CALLS {
                    let received = rx.recv_timeout(LIMIT);
                    assert!(received.is_ok(), "the message is there and the limit far away");
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, sleep_many, timeout);
criterion_main!(benches);
