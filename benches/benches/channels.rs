//! What this measures: the cost of moving messages through a channel, and
//! of the wake-ups that a full or empty channel causes, on `green::channel`,
//! on tokio's `mpsc` and on `std::sync::mpsc` between OS threads. Each
//! group runs the same named workload on five variants, so the figures in
//! one group read as ratios:
//!
//! | variant | runtime |
//! |---|---|
//! | `green` | `green::run`: one worker |
//! | `green_2w` | a `green` runtime of [`WORKERS`] = 2 workers; the tasks are placed with `spawn_on_worker`, alternating between the workers in spawn order (producers first, then the consumer), so both have work and messages cross threads |
//! | `tokio` | tokio's `current_thread` runtime |
//! | `tokio_mt` | tokio's `multi_thread` runtime of [`WORKERS`] workers, which places the tasks itself |
//! | `threads` | one OS thread per task |
//!
//! | group | workload (one iteration) | what dominates |
//! |---|---|---|
//! | `channel_ping_pong` | two tasks bounce a number 1,000 round trips over two capacity-1 channels | a park and a wake-up per hand-off: every receive finds its channel empty; in `green_2w` the two tasks are on two workers, so every wake-up crosses threads |
//! | `channel_throughput_1p` | 1 producer sends 100,000 numbers through a capacity-1,024 channel to 1 consumer | the buffer operations; a wake-up each time the buffer fills or drains (`green_2w`: producer on worker 0, consumer on worker 1) |
//! | `channel_throughput_4p` | the same 100,000 numbers from 4 producers (25,000 each) | the same, with 4 senders contending for room (`green_2w`: producers on workers 0, 1, 0, 1, consumer on 0) |
//!
//! The channels: `green::channel::bounded`, `tokio::sync::mpsc::channel`,
//! `std::sync::mpsc::sync_channel`, each with the stated capacity.
//!
//! What is inside the timed region:
//!
//! * Runtime start-up is not. `green` starts one runtime per criterion
//!   sample (`iter_custom`) and times the iterations inside it with
//!   [`Instant`]; tokio builds its runtime once and times inside
//!   `block_on`.
//! * Before timing, each sample runs the workload once untimed, so stacks
//!   and allocators are warm.
//! * Making the channels is not the workload and happens before the clock
//!   starts. Nor, on one worker, is spawning the tasks: `green` and tokio
//!   do not run a spawned task until the spawner blocks, and the OS threads
//!   wait on a [`Barrier`] until the clock has started. On several workers
//!   an idle worker may start a task at once, so `green_2w` and `tokio_mt`
//!   start the clock before spawning (2 to 5 spawns against 1,000 round
//!   trips or 100,000 messages). The clock stops when the last task has
//!   finished (joined, or for threads at a second barrier they reach
//!   before they exit).
//!
//! The OS-thread variants are much slower, so they run 10 samples in flat
//! sampling mode; their figures are noisier.
//!
//! Run with `cargo bench -p green-benches --bench channels`. Medians are in
//! `target/criterion/<group>/<runtime>/new/estimates.json`.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::Instant;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use green_benches::{
    WORKERS, current_thread_runtime, multi_thread_runtime, slow_variant, spawn_round_robin,
    starts_tasks_at_once, time_jobs_on_threads, time_rounds, time_rounds_async,
};

/// `channel_ping_pong`: round trips per iteration.
const ROUND_TRIPS: u64 = 1_000;
/// `channel_throughput_*`: messages per iteration, over all producers.
const MESSAGES: u64 = 100_000;
/// `channel_throughput_*`: the channel's capacity.
const CAPACITY: usize = 1_024;

fn ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("channel_ping_pong");
    group.throughput(Throughput::Elements(ROUND_TRIPS));

    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let round = || {
                    let (to_pong, from_ping) = green::channel::bounded::<u64>(1);
                    let (to_ping, from_pong) = green::channel::bounded::<u64>(1);
                    let ping = green::spawn(move || {
                        let mut ball = 0;
                        for _ in 0..ROUND_TRIPS {
                            to_pong.send(ball).expect("pong is alive");
                            ball = from_pong.recv().expect("pong answers");
                        }
                        black_box(ball);
                    });
                    let pong = green::spawn(move || {
                        for ball in from_ping.iter() {
                            to_ping.send(ball + 1).expect("ping is alive");
                        }
                    });
                    let start = Instant::now();
                    ping.join().expect("ping");
                    pong.join().expect("pong");
                    start.elapsed()
                };
                time_rounds(iters, round)
            })
        })
    });

    tokio_ping_pong(&mut group, "tokio", &current_thread_runtime());

    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| {
                let round = || {
                    let (to_pong, from_ping) = green::channel::bounded::<u64>(1);
                    let (to_ping, from_pong) = green::channel::bounded::<u64>(1);
                    // One on each worker: every hand-off crosses threads.
                    // The clock starts first, as pong may start at once.
                    let on = |worker| green::task::Builder::new().name(format!("on-{worker}"));
                    let start = Instant::now();
                    let ping = on(0)
                        .spawn_on_worker(0, move || {
                            let mut ball = 0;
                            for _ in 0..ROUND_TRIPS {
                                to_pong.send(ball).expect("pong is alive");
                                ball = from_pong.recv().expect("pong answers");
                            }
                            black_box(ball);
                        })
                        .expect("worker 0");
                    let pong = on(1)
                        .spawn_on_worker(1, move || {
                            for ball in from_ping.iter() {
                                to_ping.send(ball + 1).expect("ping is alive");
                            }
                        })
                        .expect("worker 1");
                    ping.join().expect("ping");
                    pong.join().expect("pong");
                    start.elapsed()
                };
                time_rounds(iters, round)
            })
        })
    });

    tokio_ping_pong(&mut group, "tokio_mt", &multi_thread_runtime());

    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (to_pong, from_ping) = mpsc::sync_channel::<u64>(1);
                    let (to_ping, from_pong) = mpsc::sync_channel::<u64>(1);
                    time_jobs_on_threads(vec![
                        Box::new(move || {
                            let mut ball = 0;
                            for _ in 0..ROUND_TRIPS {
                                to_pong.send(ball).expect("pong is alive");
                                ball = from_pong.recv().expect("pong answers");
                            }
                            black_box(ball);
                        }),
                        Box::new(move || {
                            for ball in from_ping.iter() {
                                to_ping.send(ball + 1).expect("ping is alive");
                            }
                        }),
                    ])
                })
                .sum()
        })
    });
    group.finish();
}

fn throughput_1p(c: &mut Criterion) {
    throughput(c, "channel_throughput_1p", 1);
}

fn throughput_4p(c: &mut Criterion) {
    throughput(c, "channel_throughput_4p", 4);
}

/// `producers` tasks send `MESSAGES / producers` numbers each through one
/// channel of capacity `CAPACITY` to one consumer, which adds them up.
fn throughput(c: &mut Criterion, name: &str, producers: u64) {
    let per_producer = MESSAGES / producers;
    let expected: u64 = producers * (per_producer * (per_producer - 1) / 2);
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(MESSAGES));

    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let round = || {
                    let (tx, rx) = green::channel::bounded::<u64>(CAPACITY);
                    let senders: Vec<_> = (0..producers)
                        .map(|_| {
                            let tx = tx.clone();
                            green::spawn(move || {
                                for i in 0..per_producer {
                                    tx.send(i).expect("the consumer is alive");
                                }
                            })
                        })
                        .collect();
                    drop(tx);
                    let consumer = green::spawn(move || rx.iter().sum::<u64>());
                    let start = Instant::now();
                    for sender in senders {
                        sender.join().expect("producer");
                    }
                    assert_eq!(consumer.join().expect("consumer"), expected);
                    start.elapsed()
                };
                time_rounds(iters, round)
            })
        })
    });

    let shape = Shape { producers, per_producer, expected };
    tokio_throughput(&mut group, "tokio", &current_thread_runtime(), shape);

    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| {
                let round = || {
                    let (tx, rx) = green::channel::bounded::<u64>(CAPACITY);
                    // Tasks on worker 1 may start at once: the clock first.
                    let start = Instant::now();
                    let senders: Vec<_> = (0..producers as usize)
                        .map(|n| {
                            let tx = tx.clone();
                            spawn_round_robin(n, move || {
                                for i in 0..per_producer {
                                    tx.send(i).expect("the consumer is alive");
                                }
                            })
                        })
                        .collect();
                    drop(tx);
                    let consumer = spawn_round_robin(producers as usize, move || rx.iter().sum::<u64>());
                    for sender in senders {
                        sender.join().expect("producer");
                    }
                    assert_eq!(consumer.join().expect("consumer"), expected);
                    start.elapsed()
                };
                time_rounds(iters, round)
            })
        })
    });

    tokio_throughput(&mut group, "tokio_mt", &multi_thread_runtime(), shape);

    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (tx, rx) = mpsc::sync_channel::<u64>(CAPACITY);
                    let mut work: Vec<Box<dyn FnOnce() + Send>> = (0..producers)
                        .map(|_| {
                            let tx = tx.clone();
                            Box::new(move || {
                                for i in 0..per_producer {
                                    tx.send(i).expect("the consumer is alive");
                                }
                            }) as Box<dyn FnOnce() + Send>
                        })
                        .collect();
                    drop(tx);
                    work.push(Box::new(move || assert_eq!(rx.iter().sum::<u64>(), expected)));
                    time_jobs_on_threads(work)
                })
                .sum()
        })
    });
    group.finish();
}

/// The tokio variant of `channel_ping_pong`, on `rt`, as `name`.
fn tokio_ping_pong(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, rt: &tokio::runtime::Runtime) {
    let at_once = starts_tasks_at_once(rt);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let (to_pong, mut from_ping) = tokio::sync::mpsc::channel::<u64>(1);
                    let (to_ping, mut from_pong) = tokio::sync::mpsc::channel::<u64>(1);
                    let mut start = Instant::now();
                    let ping = tokio::spawn(async move {
                        let mut ball = 0;
                        for _ in 0..ROUND_TRIPS {
                            to_pong.send(ball).await.expect("pong is alive");
                            ball = from_pong.recv().await.expect("pong answers");
                        }
                        black_box(ball);
                    });
                    let pong = tokio::spawn(async move {
                        while let Some(ball) = from_ping.recv().await {
                            to_ping.send(ball + 1).await.expect("ping is alive");
                        }
                    });
                    if !at_once {
                        start = Instant::now();
                    }
                    ping.await.expect("ping");
                    pong.await.expect("pong");
                    start.elapsed()
                };
                time_rounds_async(iters, round).await
            })
        })
    });
}

/// The shape of a `channel_throughput_*` workload.
#[derive(Clone, Copy)]
struct Shape {
    /// Sending tasks.
    producers: u64,
    /// Numbers each producer sends (`0..per_producer`).
    per_producer: u64,
    /// The sum the consumer must find.
    expected: u64,
}

/// The tokio variant of `channel_throughput_*`, on `rt`, as `name`.
fn tokio_throughput(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    rt: &tokio::runtime::Runtime,
    shape: Shape,
) {
    let Shape { producers, per_producer, expected } = shape;
    let at_once = starts_tasks_at_once(rt);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(CAPACITY);
                    let mut start = Instant::now();
                    let senders: Vec<_> = (0..producers)
                        .map(|_| {
                            let tx = tx.clone();
                            tokio::spawn(async move {
                                for i in 0..per_producer {
                                    tx.send(i).await.expect("the consumer is alive");
                                }
                            })
                        })
                        .collect();
                    drop(tx);
                    let consumer = tokio::spawn(async move {
                        let mut sum = 0;
                        while let Some(i) = rx.recv().await {
                            sum += i;
                        }
                        sum
                    });
                    if !at_once {
                        start = Instant::now();
                    }
                    for sender in senders {
                        sender.await.expect("producer");
                    }
                    assert_eq!(consumer.await.expect("consumer"), expected);
                    start.elapsed()
                };
                time_rounds_async(iters, round).await
            })
        })
    });
}

criterion_group!(benches, ping_pong, throughput_1p, throughput_4p);
criterion_main!(benches);
