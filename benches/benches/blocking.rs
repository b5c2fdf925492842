//! What this measures: handing blocking work to a pool of OS threads and
//! getting the result back, the price of keeping a blocking call off the
//! loop: `green::blocking::unblock` from a coroutine, tokio's
//! `spawn_blocking` from a task, and, for OS threads, a thread started
//! for the call (what a thread-per-call program pays).
//!
//! | group | workload (one iteration) | what dominates |
//! |---|---|---|
//! | `unblock_round_trip` | 1,000 no-op closures, one after another, each awaited before the next | one hand-off to a pool thread and one wake-up back: the latency of a small offloaded call |
//! | `unblock_fan_out` | 1,000 no-op closures from 100 coroutines/tasks at once (10 each, in turn) | the pool's queue under contention, and batching of wake-ups |
//! | `fs_read` | 1,000 reads of a whole 4 KiB file (page cache), one after another: `green::fs::read`, `tokio::fs::read`, `std::fs::read` on a plain thread | the hand-off, against the 2-3 µs of the read itself |
//!
//! Each group runs its workload on five variants, so the figures in one
//! group read as ratios:
//!
//! | variant | runtime |
//! |---|---|
//! | `green` | `green::run`: one worker; the calls from `main` (`unblock_fan_out`: from `green::spawn`ed coroutines) |
//! | `green_2w` | a `green` runtime of [`WORKERS`] = 2 workers sharing one blocking pool; `unblock_fan_out`'s callers spawned with `spawn_distributed`, so both workers submit; the one-after-another calls of the other two groups from `main`, on worker 0 (one caller cannot use a second worker) |
//! | `tokio` | tokio's `current_thread` runtime: the calls from `block_on` (`unblock_fan_out`: from spawned tasks) |
//! | `tokio_mt` | the same on tokio's `multi_thread` runtime of [`WORKERS`] workers |
//! | `threads` | a thread spawned and joined per call (`fs_read`: `std::fs::read` on the benchmark's thread) |
//!
//! Inside the timed region: the calls, and in `unblock_fan_out` spawning
//! and joining the callers; not the runtime's start. Pools are warm: each
//! sample first runs the workload untimed, so the pool threads exist.
//!
//! Run with `cargo bench -p green-benches --bench blocking`.

use std::thread;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use green_benches::{
    WORKERS, current_thread_runtime, multi_thread_runtime, slow_variant, time_rounds, time_rounds_async,
};

/// Closures per iteration.
const CALLS: usize = 1_000;
/// `unblock_fan_out`: coroutines or tasks submitting at once.
const CALLERS: usize = 100;

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("unblock_round_trip");
    group.throughput(Throughput::Elements(CALLS as u64));
    let green_round = || {
        let start = Instant::now();
        for i in 0..CALLS {
            let value = green::blocking::unblock(move || std::hint::black_box(i));
            assert_eq!(value.ok(), Some(i));
        }
        start.elapsed()
    };
    group.bench_function("green", |b| b.iter_custom(|iters| green::run(|| time_rounds(iters, green_round))));
    for (name, runtime) in [("tokio", current_thread_runtime()), ("tokio_mt", multi_thread_runtime())] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(time_rounds_async(iters, async || {
                    let start = Instant::now();
                    for i in 0..CALLS {
                        let value = tokio::task::spawn_blocking(move || std::hint::black_box(i)).await;
                        assert_eq!(value.ok(), Some(i));
                    }
                    start.elapsed()
                }))
            })
        });
    }
    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| green::Builder::new().workers(WORKERS).run(|| time_rounds(iters, green_round)))
    });
    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            time_rounds(iters, || {
                let start = Instant::now();
                for i in 0..CALLS {
                    let value = thread::spawn(move || std::hint::black_box(i)).join();
                    assert_eq!(value.ok(), Some(i));
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("unblock_fan_out");
    group.throughput(Throughput::Elements(CALLS as u64));
    let per_caller = CALLS / CALLERS;
    let call = move || {
        for i in 0..per_caller {
            assert!(green::blocking::unblock(move || std::hint::black_box(i)).is_ok());
        }
    };
    let green_round = move |distributed: bool| {
        let start = Instant::now();
        if distributed {
            let callers: Vec<_> = (0..CALLERS).map(|_| green::spawn_distributed(call)).collect();
            assert!(callers.into_iter().all(|caller| caller.join().is_ok()));
        } else {
            let callers: Vec<_> = (0..CALLERS).map(|_| green::spawn(call)).collect();
            assert!(callers.into_iter().all(|caller| caller.join().is_ok()));
        }
        start.elapsed()
    };
    group.bench_function("green", |b| {
        b.iter_custom(|iters| green::run(|| time_rounds(iters, || green_round(false))))
    });
    for (name, runtime) in [("tokio", current_thread_runtime()), ("tokio_mt", multi_thread_runtime())] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(time_rounds_async(iters, async || {
                    let start = Instant::now();
                    let callers: Vec<_> = (0..CALLERS)
                        .map(|_| {
                            tokio::spawn(async move {
                                for i in 0..per_caller {
                                    let value =
                                        tokio::task::spawn_blocking(move || std::hint::black_box(i)).await;
                                    assert!(value.is_ok());
                                }
                            })
                        })
                        .collect();
                    for caller in callers {
                        assert!(caller.await.is_ok());
                    }
                    start.elapsed()
                }))
            })
        });
    }
    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| time_rounds(iters, || green_round(true)))
        })
    });
    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            time_rounds(iters, || {
                let start = Instant::now();
                let callers: Vec<_> = (0..CALLERS)
                    .map(|_| {
                        thread::spawn(move || {
                            for i in 0..per_caller {
                                assert!(thread::spawn(move || std::hint::black_box(i)).join().is_ok());
                            }
                        })
                    })
                    .collect();
                for caller in callers {
                    assert!(caller.join().is_ok());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn fs_read(c: &mut Criterion) {
    let path = std::env::temp_dir().join(format!("green-bench-fs-read-{}", std::process::id()));
    std::fs::write(&path, vec![b'x'; 4096]).expect("a 4 KiB file in the temp directory");
    let mut group = c.benchmark_group("fs_read");
    group.throughput(Throughput::Elements(CALLS as u64));
    let green_round = |path: &std::path::Path| {
        let start = Instant::now();
        for _ in 0..CALLS {
            assert_eq!(green::fs::read(path).map(|data| data.len()).ok(), Some(4096));
        }
        start.elapsed()
    };
    group.bench_function("green", |b| {
        b.iter_custom(|iters| green::run(|| time_rounds(iters, || green_round(&path))))
    });
    for (name, runtime) in [("tokio", current_thread_runtime()), ("tokio_mt", multi_thread_runtime())] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(time_rounds_async(iters, async || {
                    let start = Instant::now();
                    for _ in 0..CALLS {
                        assert_eq!(tokio::fs::read(&path).await.map(|data| data.len()).ok(), Some(4096));
                    }
                    start.elapsed()
                }))
            })
        });
    }
    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| time_rounds(iters, || green_round(&path)))
        })
    });
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            time_rounds(iters, || {
                let start = Instant::now();
                for _ in 0..CALLS {
                    assert_eq!(std::fs::read(&path).map(|data| data.len()).ok(), Some(4096));
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, round_trip, fan_out, fs_read);
criterion_main!(benches);
