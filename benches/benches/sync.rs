//! What this measures: the cost of `green::sync`'s locks, uncontended (the
//! fast path: one atomic operation each way) and contended (every lock a
//! park, every unlock a hand-off to a parked waiter and a wake-up), against
//! tokio's `current_thread` runtime with `tokio::sync::{Mutex, Semaphore}`
//! and OS threads with `std::sync::Mutex` and a `Mutex` + `Condvar`
//! semaphore. Each group runs the same named workload on all three.
//!
//! | group | workload (one iteration) | what dominates |
//! |---|---|---|
//! | `mutex_uncontended` | one task locks and unlocks 100,000 times | the fast path |
//! | `mutex_contended` | 4 tasks × 10,000 lock / increment / **yield while holding** / unlock | a park and a hand-off per lock |
//! | `semaphore_uncontended` | one task acquires and releases one permit 100,000 times | the fast path |
//! | `semaphore_contended` | 8 tasks × 5,000 acquire / yield while holding / release, 2 permits | a park and a hand-off per acquire |
//!
//! **Why the contended workloads really contend.** A task yields while it
//! holds the lock, so every other task runs, finds the lock held, and
//! parks; when the holder unlocks, the oldest waiter is woken and the
//! holder, locking again at once, queues behind the others. On `green`
//! and tokio (whose mutex and semaphore are FIFO too) every lock after the
//! first round is therefore a park, and every unlock a wake-up: the groups
//! measure the wait-and-wake path, not the fast path. On OS threads the
//! yield is `sched_yield`; `std`'s mutex is not FIFO, so a thread often
//! takes the lock back before a sleeping waiter wakes (see the numbers).
//!
//! What is inside the timed region, as in `scheduler.rs`:
//!
//! * Runtime start-up is not. `green` starts one runtime per criterion
//!   sample (`iter_custom`) and times inside it; tokio builds its runtime
//!   once and times inside `block_on`; OS threads are created before the
//!   clock starts and released together by a barrier.
//! * Each sample runs the workload once untimed first (stacks, allocators
//!   warm). Tasks are spawned before the clock starts (neither runtime runs
//!   a spawned task before the spawner blocks); joining them is timed.
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

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use green_benches::{current_thread_runtime, slow_variant, time_on_threads};

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

    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let lock = green::sync::Mutex::new(0u64);
                let round = || {
                    let start = Instant::now();
                    for _ in 0..UNCONTENDED_ROUNDS {
                        *black_box(&lock).lock().unwrap() += 1;
                    }
                    start.elapsed()
                };
                round();
                (0..iters).map(|_| round()).sum()
            })
        })
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
                round().await;
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += round().await;
                }
                total
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
                            green::spawn(move || {
                                for _ in 0..MUTEX_ROUNDS {
                                    let mut count = lock.lock().unwrap();
                                    *count += 1;
                                    green::yield_now();
                                }
                            })
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
                round();
                (0..iters).map(|_| round()).sum()
            })
        })
    });

    let rt = current_thread_runtime();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let lock = Arc::new(tokio::sync::Mutex::new(0usize));
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
                    let start = Instant::now();
                    for task in tasks {
                        task.await.expect("locking task");
                    }
                    let elapsed = start.elapsed();
                    assert_eq!(*lock.lock().await, MUTEX_TASKS * MUTEX_ROUNDS);
                    elapsed
                };
                round().await;
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += round().await;
                }
                total
            })
        })
    });

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

fn semaphore_uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("semaphore_uncontended");
    group.throughput(Throughput::Elements(UNCONTENDED_ROUNDS as u64));

    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let semaphore = green::sync::Semaphore::new(1);
                let round = || {
                    let start = Instant::now();
                    for _ in 0..UNCONTENDED_ROUNDS {
                        drop(black_box(&semaphore).acquire().unwrap());
                    }
                    start.elapsed()
                };
                round();
                (0..iters).map(|_| round()).sum()
            })
        })
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
                round().await;
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += round().await;
                }
                total
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
                            green::spawn(move || {
                                for _ in 0..SEMAPHORE_ROUNDS {
                                    let _permit = semaphore.acquire().unwrap();
                                    green::yield_now();
                                }
                            })
                        })
                        .collect();
                    let start = Instant::now();
                    for task in tasks {
                        task.join().expect("acquiring task");
                    }
                    start.elapsed()
                };
                round();
                (0..iters).map(|_| round()).sum()
            })
        })
    });

    let rt = current_thread_runtime();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let semaphore = Arc::new(tokio::sync::Semaphore::new(PERMITS));
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
                    let start = Instant::now();
                    for task in tasks {
                        task.await.expect("acquiring task");
                    }
                    start.elapsed()
                };
                round().await;
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += round().await;
                }
                total
            })
        })
    });

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
