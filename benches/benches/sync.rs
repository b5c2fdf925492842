//! What this measures: the cost of `green::sync`'s locks, uncontended (the
//! fast path: one atomic operation each way) and contended (every lock a
//! park, every unlock a hand-off to a parked waiter and a wake-up), against
//! tokio with `tokio::sync::{Mutex, Semaphore}` and OS threads with
//! `std::sync::Mutex` and a `Mutex` + `Condvar` semaphore. Each group runs
//! the same named workload on five variants:
//!
//! | variant | runtime |
//! |---|---|
//! | `green` | `green::run`: one worker |
//! | `green_2w` | a `green` runtime of [`WORKERS`] = 2 workers; in the contended groups the tasks alternate between the workers in spawn order (`spawn_on_worker`), so waiters are woken across threads; the uncontended loop runs in `main`, on worker 0 |
//! | `tokio` | tokio's `current_thread` runtime |
//! | `tokio_mt` | tokio's `multi_thread` runtime of [`WORKERS`] workers, which places the tasks itself; the uncontended loop runs in one spawned task (a `block_on` future is not on a worker) |
//! | `threads` | one OS thread per task |
//!
//! | group | workload (one iteration) | what dominates |
//! |---|---|---|
//! | `mutex_uncontended` | one task locks and unlocks 100,000 times | the fast path; one task cannot use a second worker |
//! | `mutex_contended` | 4 tasks × 10,000 lock / increment / **yield while holding** / unlock | a park and a hand-off per lock |
//! | `semaphore_uncontended` | one task acquires and releases one permit 100,000 times | the fast path; one task cannot use a second worker |
//! | `semaphore_contended` | 8 tasks × 5,000 acquire / yield while holding / release, 2 permits | a park and a hand-off per acquire |
//!
//! **Why the contended workloads really contend.** A task yields while it
//! holds the lock, so every other task runs, finds the lock held, and
//! parks; when the holder unlocks, the oldest waiter is woken and the
//! holder, locking again at once, queues behind the others. On `green`
//! and tokio (whose mutex and semaphore are FIFO too) every lock after the
//! first round is therefore a park, and every unlock a wake-up: the groups
//! measure the wait-and-wake path, not the fast path. On two workers the
//! tasks of the other worker run meanwhile, so they contend too. On OS
//! threads the yield is `sched_yield`; `std`'s mutex is not FIFO, so a
//! thread often takes the lock back before a sleeping waiter wakes (see
//! the numbers).
//!
//! What is inside the timed region, as in `scheduler.rs`:
//!
//! * Runtime start-up is not. `green` starts one runtime per criterion
//!   sample (`iter_custom`) and times inside it; tokio builds its runtime
//!   once and times inside `block_on` (`tokio_mt`'s uncontended rounds
//!   inside their task); OS threads are created before the clock starts
//!   and released together by a barrier.
//! * Each sample runs the workload once untimed first (stacks, allocators
//!   warm). On one worker, tasks are spawned before the clock starts
//!   (neither runtime runs a spawned task before the spawner blocks); on
//!   two, an idle worker may start a task at once, so `green_2w` and
//!   `tokio_mt` start the clock before spawning (4 or 8 spawns against
//!   40,000 locks). Joining the tasks is timed.
//!
//! The OS-thread variants run 10 samples in flat sampling mode.
//!
//! Run with `cargo bench -p green-benches --bench sync`; shorten with
//! `-- --warm-up-time 1 --measurement-time 3`. Medians are in
//! `target/criterion/<group>/<runtime>/new/estimates.json`.

use std::hint::black_box;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use green_benches::{
    WORKERS, current_thread_runtime, multi_thread_runtime, slow_variant, spawn_round_robin,
    starts_tasks_at_once, time_on_threads, time_rounds, time_rounds_async,
};

/// Uncontended groups: lock/unlock (acquire/release) pairs per iteration.
const UNCONTENDED_ROUNDS: usize = 100_000;
/// `mutex_contended`: tasks.
const MUTEX_TASKS: usize = 4;
/// `mutex_contended`: lock/unlock pairs per task.
const MUTEX_ROUNDS: usize = 10_000;
/// `semaphore_contended`: tasks.
const SEMAPHORE_TASKS: usize = 8;
/// `semaphore_contended`: acquire/release pairs per task.
const SEMAPHORE_ROUNDS: usize = 5_000;
/// `semaphore_contended`: permits.
const PERMITS: usize = 2;

fn mutex_uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("mutex_uncontended");
    group.throughput(Throughput::Elements(UNCONTENDED_ROUNDS as u64));

    /// A sample of `green` or `green_2w`, in the runtime's `main`.
    fn green_sample(iters: u64) -> Duration {
        let lock = green::sync::Mutex::new(0u64);
        time_rounds(iters, || {
            let start = Instant::now();
            for _ in 0..UNCONTENDED_ROUNDS {
                *black_box(&lock).lock().unwrap() += 1;
            }
            start.elapsed()
        })
    }
    group.bench_function("green", |b| b.iter_custom(|iters| green::run(|| green_sample(iters))));
    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| green::Builder::new().workers(WORKERS).run(|| green_sample(iters)))
    });

    let rt = current_thread_runtime();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let lock = tokio::sync::Mutex::new(0u64);
                let round = || async {
                    let start = Instant::now();
                    for _ in 0..UNCONTENDED_ROUNDS {
                        *black_box(&lock).lock().await += 1;
                    }
                    start.elapsed()
                };
                time_rounds_async(iters, round).await
            })
        })
    });

    let rt = multi_thread_runtime();
    group.bench_function("tokio_mt", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let lock = Arc::new(tokio::sync::Mutex::new(0u64));
                let round = || async {
                    let lock = lock.clone();
                    let task = tokio::spawn(async move {
                        let start = Instant::now();
                        for _ in 0..UNCONTENDED_ROUNDS {
                            *black_box(&*lock).lock().await += 1;
                        }
                        start.elapsed()
                    });
                    task.await.expect("locking task")
                };
                time_rounds_async(iters, round).await
            })
        })
    });

    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            let lock = Arc::new(Mutex::new(0u64));
            (0..iters)
                .map(|_| {
                    let lock = lock.clone();
                    time_on_threads(1, move |_| {
                        for _ in 0..UNCONTENDED_ROUNDS {
                            *black_box(&*lock).lock().unwrap() += 1;
                        }
                    })
                })
                .sum()
        })
    });
    group.finish();
}

fn mutex_contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("mutex_contended");
    group.throughput(Throughput::Elements((MUTEX_TASKS * MUTEX_ROUNDS) as u64));

    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let round = || {
                    let lock = Arc::new(green::sync::Mutex::new(0usize));
                    let tasks: Vec<_> = (0..MUTEX_TASKS)
                        .map(|_| {
                            let lock = lock.clone();
                            green::spawn(move || green_lock_rounds(&lock))
                        })
                        .collect();
                    let start = Instant::now();
                    for task in tasks {
                        task.join().expect("locking task");
                    }
                    let elapsed = start.elapsed();
                    assert_eq!(*lock.lock().unwrap(), MUTEX_TASKS * MUTEX_ROUNDS);
                    elapsed
                };
                time_rounds(iters, round)
            })
        })
    });

    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| {
                let round = || {
                    let lock = Arc::new(green::sync::Mutex::new(0usize));
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..MUTEX_TASKS)
                        .map(|i| {
                            let lock = lock.clone();
                            spawn_round_robin(i, move || green_lock_rounds(&lock))
                        })
                        .collect();
                    for task in tasks {
                        task.join().expect("locking task");
                    }
                    let elapsed = start.elapsed();
                    assert_eq!(*lock.lock().unwrap(), MUTEX_TASKS * MUTEX_ROUNDS);
                    elapsed
                };
                time_rounds(iters, round)
            })
        })
    });

    tokio_mutex_contended(&mut group, "tokio", &current_thread_runtime());
    tokio_mutex_contended(&mut group, "tokio_mt", &multi_thread_runtime());

    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let lock = Arc::new(Mutex::new(0usize));
                    time_on_threads(MUTEX_TASKS, move |_| {
                        for _ in 0..MUTEX_ROUNDS {
                            let mut count = lock.lock().unwrap();
                            *count += 1;
                            thread::yield_now();
                        }
                    })
                })
                .sum()
        })
    });
    group.finish();
}

/// One task of `mutex_contended` on `green`: lock, increment, yield while
/// holding, unlock.
fn green_lock_rounds(lock: &green::sync::Mutex<usize>) {
    for _ in 0..MUTEX_ROUNDS {
        let mut count = lock.lock().unwrap();
        *count += 1;
        green::yield_now();
    }
}

/// The tokio variant of `mutex_contended`, on `rt`, as `name`.
fn tokio_mutex_contended(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, rt: &tokio::runtime::Runtime) {
    let at_once = starts_tasks_at_once(rt);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let lock = Arc::new(tokio::sync::Mutex::new(0usize));
                    let mut start = Instant::now();
                    let tasks: Vec<_> = (0..MUTEX_TASKS)
                        .map(|_| {
                            let lock = lock.clone();
                            tokio::spawn(async move {
                                for _ in 0..MUTEX_ROUNDS {
                                    let mut count = lock.lock().await;
                                    *count += 1;
                                    tokio::task::yield_now().await;
                                }
                            })
                        })
                        .collect();
                    if !at_once {
                        start = Instant::now();
                    }
                    for task in tasks {
                        task.await.expect("locking task");
                    }
                    let elapsed = start.elapsed();
                    assert_eq!(*lock.lock().await, MUTEX_TASKS * MUTEX_ROUNDS);
                    elapsed
                };
                time_rounds_async(iters, round).await
            })
        })
    });
}

fn semaphore_uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("semaphore_uncontended");
    group.throughput(Throughput::Elements(UNCONTENDED_ROUNDS as u64));

    /// A sample of `green` or `green_2w`, in the runtime's `main`.
    fn green_sample(iters: u64) -> Duration {
        let semaphore = green::sync::Semaphore::new(1);
        time_rounds(iters, || {
            let start = Instant::now();
            for _ in 0..UNCONTENDED_ROUNDS {
                drop(black_box(&semaphore).acquire().unwrap());
            }
            start.elapsed()
        })
    }
    group.bench_function("green", |b| b.iter_custom(|iters| green::run(|| green_sample(iters))));
    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| green::Builder::new().workers(WORKERS).run(|| green_sample(iters)))
    });

    let rt = current_thread_runtime();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let semaphore = tokio::sync::Semaphore::new(1);
                let round = || async {
                    let start = Instant::now();
                    for _ in 0..UNCONTENDED_ROUNDS {
                        drop(black_box(&semaphore).acquire().await.unwrap());
                    }
                    start.elapsed()
                };
                time_rounds_async(iters, round).await
            })
        })
    });

    let rt = multi_thread_runtime();
    group.bench_function("tokio_mt", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let semaphore = Arc::new(tokio::sync::Semaphore::new(1));
                let round = || async {
                    let semaphore = semaphore.clone();
                    let task = tokio::spawn(async move {
                        let start = Instant::now();
                        for _ in 0..UNCONTENDED_ROUNDS {
                            drop(black_box(&*semaphore).acquire().await.unwrap());
                        }
                        start.elapsed()
                    });
                    task.await.expect("acquiring task")
                };
                time_rounds_async(iters, round).await
            })
        })
    });

    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            let semaphore = Arc::new(StdSemaphore::new(1));
            (0..iters)
                .map(|_| {
                    let semaphore = semaphore.clone();
                    time_on_threads(1, move |_| {
                        for _ in 0..UNCONTENDED_ROUNDS {
                            black_box(&*semaphore).acquire();
                            semaphore.release();
                        }
                    })
                })
                .sum()
        })
    });
    group.finish();
}

fn semaphore_contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("semaphore_contended");
    group.throughput(Throughput::Elements((SEMAPHORE_TASKS * SEMAPHORE_ROUNDS) as u64));

    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let round = || {
                    let semaphore = Arc::new(green::sync::Semaphore::new(PERMITS));
                    let tasks: Vec<_> = (0..SEMAPHORE_TASKS)
                        .map(|_| {
                            let semaphore = semaphore.clone();
                            green::spawn(move || green_acquire_rounds(&semaphore))
                        })
                        .collect();
                    let start = Instant::now();
                    for task in tasks {
                        task.join().expect("acquiring task");
                    }
                    start.elapsed()
                };
                time_rounds(iters, round)
            })
        })
    });

    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| {
                let round = || {
                    let semaphore = Arc::new(green::sync::Semaphore::new(PERMITS));
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..SEMAPHORE_TASKS)
                        .map(|i| {
                            let semaphore = semaphore.clone();
                            spawn_round_robin(i, move || green_acquire_rounds(&semaphore))
                        })
                        .collect();
                    for task in tasks {
                        task.join().expect("acquiring task");
                    }
                    start.elapsed()
                };
                time_rounds(iters, round)
            })
        })
    });

    tokio_semaphore_contended(&mut group, "tokio", &current_thread_runtime());
    tokio_semaphore_contended(&mut group, "tokio_mt", &multi_thread_runtime());

    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let semaphore = Arc::new(StdSemaphore::new(PERMITS));
                    time_on_threads(SEMAPHORE_TASKS, move |_| {
                        for _ in 0..SEMAPHORE_ROUNDS {
                            semaphore.acquire();
                            thread::yield_now();
                            semaphore.release();
                        }
                    })
                })
                .sum()
        })
    });
    group.finish();
}

/// One task of `semaphore_contended` on `green`: acquire, yield while
/// holding, release.
fn green_acquire_rounds(semaphore: &green::sync::Semaphore) {
    for _ in 0..SEMAPHORE_ROUNDS {
        let _permit = semaphore.acquire().unwrap();
        green::yield_now();
    }
}

/// The tokio variant of `semaphore_contended`, on `rt`, as `name`.
fn tokio_semaphore_contended(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    rt: &tokio::runtime::Runtime,
) {
    let at_once = starts_tasks_at_once(rt);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let semaphore = Arc::new(tokio::sync::Semaphore::new(PERMITS));
                    let mut start = Instant::now();
                    let tasks: Vec<_> = (0..SEMAPHORE_TASKS)
                        .map(|_| {
                            let semaphore = semaphore.clone();
                            tokio::spawn(async move {
                                for _ in 0..SEMAPHORE_ROUNDS {
                                    let _permit = semaphore.acquire().await.unwrap();
                                    tokio::task::yield_now().await;
                                }
                            })
                        })
                        .collect();
                    if !at_once {
                        start = Instant::now();
                    }
                    for task in tasks {
                        task.await.expect("acquiring task");
                    }
                    start.elapsed()
                };
                time_rounds_async(iters, round).await
            })
        })
    });
}

/// The classic semaphore for OS threads: a count under a `std` mutex and a
/// condition variable to wait for it to become positive.
struct StdSemaphore {
    /// Available permits.
    permits: Mutex<usize>,
    /// Signalled when a permit is released.
    released: Condvar,
}

impl StdSemaphore {
    fn new(permits: usize) -> StdSemaphore {
        StdSemaphore { permits: Mutex::new(permits), released: Condvar::new() }
    }

    fn acquire(&self) {
        let permits = self.permits.lock().expect("semaphore lock");
        let mut permits = self.released.wait_while(permits, |permits| *permits == 0).expect("semaphore lock");
        *permits -= 1;
    }

    fn release(&self) {
        *self.permits.lock().expect("semaphore lock") += 1;
        self.released.notify_one();
    }
}

criterion_group!(benches, mutex_uncontended, mutex_contended, semaphore_uncontended, semaphore_contended);
criterion_main!(benches);
