//! What this measures: the cost of the scheduler itself — switching, spawning
//! and handing control between tasks — on `green`, on tokio's
//! `current_thread` runtime and on OS threads. Each group runs the same named
//! workload on all three, so the figures in one group read as ratios.
//!
//! | group | workload (one iteration) | what dominates |
//! |---|---|---|
//! | `yield_many` | 200 tasks × 1,000 yields each, then all joined | one context switch through the run queue |
//! | `spawn_many` | 10,000 empty tasks spawned, then all joined | task creation (stack or future allocation) and teardown |
//! | `ping_pong` | two tasks hand a turn back and forth 10,000 round trips (20,000 hand-offs) | one wake-up of another task |
//!
//! What is inside the timed region:
//!
//! * Runtime start-up is not. `green` starts one runtime per criterion
//!   sample (`iter_custom`) and times the iterations inside it with
//!   [`Instant`]; tokio builds its runtime once and times inside `block_on`.
//! * Before timing, each sample runs the workload once untimed, so the
//!   `green` stack pool and both allocators are warm: no stack is mapped
//!   inside the timed region.
//! * In `yield_many` and `ping_pong`, creating the tasks is not the workload,
//!   so it happens before the clock starts: `green` and tokio do not run a
//!   spawned task until the spawner blocks, and the OS threads wait on a
//!   [`Barrier`] until the clock has started. Joining is timed; for threads
//!   the clock stops at a second barrier the threads reach when done, before
//!   they exit. In `spawn_many`, spawning *is* the workload and is timed on
//!   all three.
//!
//! The OS-thread variants are two to four orders of magnitude slower, so they
//! run 10 samples in flat sampling mode (every sample the same number of
//! iterations) to keep a full run in minutes; their figures are noisier.
//!
//! Run with `cargo bench -p green-benches`; shorten with
//! `-- --warm-up-time 1 --measurement-time 3`. Medians are in
//! `target/criterion/<group>/<runtime>/new/estimates.json`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use green_benches::{current_thread_runtime, slow_variant, time_on_threads, time_rounds, time_rounds_async};

/// `yield_many`: tasks that yield.
const YIELD_TASKS: usize = 200;
/// `yield_many`: yields per task.
const YIELDS_PER_TASK: usize = 1_000;
/// `spawn_many`: empty tasks spawned and joined per iteration.
const SPAWN_TASKS: usize = 10_000;
/// `ping_pong`: round trips (each is two hand-offs) per iteration.
const ROUND_TRIPS: u32 = 10_000;

fn yield_many(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield_many");
    group.throughput(Throughput::Elements((YIELD_TASKS * YIELDS_PER_TASK) as u64));

    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let round = || {
                    let tasks: Vec<_> = (0..YIELD_TASKS)
                        .map(|_| {
                            green::spawn(|| {
                                for _ in 0..YIELDS_PER_TASK {
                                    green::yield_now();
                                }
                            })
                        })
                        .collect();
                    // Nothing has run yet: the tasks start when `join` parks.
                    let start = Instant::now();
                    for task in tasks {
                        task.join().expect("yielding task");
                    }
                    start.elapsed()
                };
                time_rounds(iters, round)
            })
        })
    });

    let rt = current_thread_runtime();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let tasks: Vec<_> = (0..YIELD_TASKS)
                        .map(|_| {
                            tokio::spawn(async {
                                for _ in 0..YIELDS_PER_TASK {
                                    tokio::task::yield_now().await;
                                }
                            })
                        })
                        .collect();
                    // Nothing has run yet: the tasks start when we await.
                    let start = Instant::now();
                    for task in tasks {
                        task.await.expect("yielding task");
                    }
                    start.elapsed()
                };
                time_rounds_async(iters, round).await
            })
        })
    });

    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    time_on_threads(YIELD_TASKS, |_| {
                        for _ in 0..YIELDS_PER_TASK {
                            thread::yield_now();
                        }
                    })
                })
                .sum()
        })
    });
    group.finish();
}

fn spawn_many(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_many");
    group.throughput(Throughput::Elements(SPAWN_TASKS as u64));

    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let round = || {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..SPAWN_TASKS).map(|_| green::spawn(|| ())).collect();
                    for task in tasks {
                        task.join().expect("empty task");
                    }
                    start.elapsed()
                };
                round(); // map the stacks once; the timed rounds reuse them
                (0..iters).map(|_| round()).sum()
            })
        })
    });

    let rt = current_thread_runtime();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..SPAWN_TASKS).map(|_| tokio::spawn(async {})).collect();
                    for task in tasks {
                        task.await.expect("empty task");
                    }
                    start.elapsed()
                };
                time_rounds_async(iters, round).await
            })
        })
    });

    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let start = Instant::now();
                    let threads: Vec<_> = (0..SPAWN_TASKS).map(|_| thread::spawn(|| ())).collect();
                    for thread in threads {
                        thread.join().expect("empty thread");
                    }
                    start.elapsed()
                })
                .sum()
        })
    });
    group.finish();
}

/// Two tasks take turns: each waits until the shared turn is its own, then
/// gives it to the other. On `green`, which has no channels yet, the wait is
/// `while turn != mine { yield_now() }` on an `Rc<Cell<u32>>`: with only
/// the two tasks runnable, every yield is one switch through the run queue
/// to the other task, so a hand-off costs one switch plus a `Cell` check.
/// This is the run queue's hand-off cost, not a wake-up of a parked task
/// (nothing parks); tokio and threads, by contrast, really block and wake.
fn ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("ping_pong");
    group.throughput(Throughput::Elements(u64::from(ROUND_TRIPS)));

    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let round = || {
                    let turn = Rc::new(Cell::new(0u32));
                    let player = |mine: u32| {
                        let turn = turn.clone();
                        green::spawn(move || {
                            for _ in 0..ROUND_TRIPS {
                                while turn.get() != mine {
                                    green::yield_now();
                                }
                                turn.set(1 - mine);
                            }
                        })
                    };
                    let (ping, pong) = (player(0), player(1));
                    let start = Instant::now();
                    ping.join().expect("ping");
                    pong.join().expect("pong");
                    start.elapsed()
                };
                time_rounds(iters, round)
            })
        })
    });

    let rt = current_thread_runtime();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let to_pong = Arc::new(tokio::sync::Notify::new());
                    let to_ping = Arc::new(tokio::sync::Notify::new());
                    let ping = tokio::spawn({
                        let (to_pong, to_ping) = (to_pong.clone(), to_ping.clone());
                        async move {
                            for _ in 0..ROUND_TRIPS {
                                to_pong.notify_one();
                                to_ping.notified().await;
                            }
                        }
                    });
                    let pong = tokio::spawn(async move {
                        for _ in 0..ROUND_TRIPS {
                            to_pong.notified().await;
                            to_ping.notify_one();
                        }
                    });
                    let start = Instant::now();
                    ping.await.expect("ping");
                    pong.await.expect("pong");
                    start.elapsed()
                };
                time_rounds_async(iters, round).await
            })
        })
    });

    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let turn = Arc::new((Mutex::new(0u32), Condvar::new()));
                    time_on_threads(2, move |mine| {
                        let mine = mine as u32;
                        let (lock, changed) = &*turn;
                        for _ in 0..ROUND_TRIPS {
                            let mut current = lock.lock().expect("turn lock");
                            while *current != mine {
                                current = changed.wait(current).expect("turn lock");
                            }
                            *current = 1 - mine;
                            changed.notify_one();
                        }
                    })
                })
                .sum()
        })
    });
    group.finish();
}

criterion_group!(benches, yield_many, spawn_many, ping_pong);
criterion_main!(benches);
