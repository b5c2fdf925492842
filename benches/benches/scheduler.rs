//! What this measures: the cost of the scheduler itself — switching, spawning
//! and handing control between tasks — on `green`, on tokio and on OS
//! threads. Each group runs the same named workload on five variants, so
//! the figures in one group read as ratios:
//!
//! | variant | runtime |
//! |---|---|
//! | `green` | `green::run`: one worker, the calling thread |
//! | `green_2w` | `green::Builder::new().workers(WORKERS)`, [`WORKERS`] = 2, tasks placed on both workers (`spawn_distributed`, or `spawn_on_worker` where a group says so) |
//! | `tokio` | tokio's `current_thread` runtime, I/O and timers on |
//! | `tokio_mt` | tokio's `multi_thread` runtime of [`WORKERS`] workers, which places the tasks itself |
//! | `threads` | one OS thread per task |
//!
//! | group | workload (one iteration) | what dominates |
//! |---|---|---|
//! | `yield_many` | 200 tasks × 1,000 yields each, then all joined | one context switch through the run queue |
//! | `spawn_many` | 10,000 empty tasks spawned, then all joined, in a warm runtime | task creation (stack or future allocation) and teardown |
//! | `spawn_many_cold` | a runtime started, 10,000 empty tasks spawned and joined, the runtime shut down (see [`spawn_many_cold`]) | a first burst: runtime start and end, stacks and queues from nothing |
//! | `chained_spawn` | a chain of 1,000 tasks, each spawning the next, until the last says it is done | spawning from inside a task, one at a time: no batch to amortise |
//! | `ping_pong` | two tasks hand a turn back and forth 10,000 round trips (20,000 hand-offs; see [`ping_pong`]) | one wake-up of another task; on `green`, one switch |
//! | `switch` | 10,000 round trips of control away from one task and back (see [`switch`]) | the context switch itself, and what each runtime adds to it |
//!
//! What is inside the timed region:
//!
//! * Runtime start-up is not, except in `spawn_many_cold`, where it is the
//!   point. `green` starts one runtime per criterion sample (`iter_custom`)
//!   and times the iterations inside it with [`Instant`]; tokio builds its
//!   runtime once and times inside `block_on`.
//! * Before timing, each sample runs the workload once untimed, so the
//!   `green` stack pool and both allocators are warm: no stack is mapped
//!   inside the timed region (again except in `spawn_many_cold`).
//! * In `yield_many` and `ping_pong`, creating the tasks is not the workload,
//!   so on one worker it happens before the clock starts: `green` and tokio
//!   do not run a spawned task until the spawner blocks, and the OS threads
//!   wait on a [`Barrier`] until the clock has started. On several workers
//!   an idle worker may start a task at once, so `green_2w` and `tokio_mt`
//!   start the clock before spawning (200 or 2 spawns against 200,000
//!   yields or 10,000 round trips). Joining is timed; for threads the clock
//!   stops at a second barrier the threads reach when done, before they
//!   exit. In `spawn_many` and `spawn_many_cold`, spawning *is* the
//!   workload and is timed on all five.
//! * In `switch`, a `green` or tokio round spawns its one task before the
//!   clock starts, and a `threads` round its two threads; their start and
//!   end are amortised over the 10,000 round trips. `green_2w` and
//!   `tokio_mt` time inside the task. The `switch` group also has two bare
//!   corosensei variants; their coroutines are made once, before the first
//!   round.
//!
//! The OS-thread variants are two to four orders of magnitude slower, so they
//! run 10 samples in flat sampling mode (every sample the same number of
//! iterations) to keep a full run in minutes; their figures are noisier.
//!
//! Run with `cargo bench -p green-benches --bench scheduler`; shorten with
//! `-- --warm-up-time 1 --measurement-time 3`. Medians are in
//! `target/criterion/<group>/<runtime>/new/estimates.json`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::Instant;

use corosensei::{Coroutine, Yielder};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use green_benches::{
    WORKERS, current_thread_runtime, multi_thread_runtime, slow_variant, spawn_round_robin,
    starts_tasks_at_once, time_on_threads, time_rounds, time_rounds_async,
};

/// `yield_many`: tasks that yield.
const YIELD_TASKS: usize = 200;
/// `yield_many`: yields per task.
const YIELDS_PER_TASK: usize = 1_000;
/// `spawn_many`: empty tasks spawned and joined per iteration.
const SPAWN_TASKS: usize = 10_000;
/// `ping_pong`: round trips (each is two hand-offs) per iteration.
const ROUND_TRIPS: u32 = 10_000;
/// `switch`: round trips of control (away and back, two switches) per
/// iteration.
const SWITCH_ROUNDS: u32 = 10_000;
/// `chained_spawn`: tasks in a chain, each spawning the next.
const CHAIN: u32 = 1_000;

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

    tokio_yield_many(&mut group, "tokio", &current_thread_runtime());

    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| {
                let round = || {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..YIELD_TASKS)
                        .map(|_| {
                            green::spawn_distributed(|| {
                                for _ in 0..YIELDS_PER_TASK {
                                    green::yield_now();
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.join().expect("yielding task");
                    }
                    start.elapsed()
                };
                time_rounds(iters, round)
            })
        })
    });

    tokio_yield_many(&mut group, "tokio_mt", &multi_thread_runtime());

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

    tokio_spawn_many(&mut group, "tokio", &current_thread_runtime());

    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| {
                let round = || {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..SPAWN_TASKS).map(|_| green::spawn_distributed(|| ())).collect();
                    for task in tasks {
                        task.join().expect("empty task");
                    }
                    start.elapsed()
                };
                time_rounds(iters, round)
            })
        })
    });

    tokio_spawn_many(&mut group, "tokio_mt", &multi_thread_runtime());

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

/// `spawn_many_cold`: a program's first burst of tasks. Each iteration
/// starts a runtime, spawns `SPAWN_TASKS` empty tasks into it, joins them
/// and shuts the runtime down, all timed: stacks mapped, queues grown and
/// threads started from nothing, as `spawn_many` avoids. Only what the
/// runtime itself keeps between runtimes of one process (and the
/// allocator's free memory) carries over; nothing is warmed on purpose.
///
/// * `green`: `green::run`, the tasks spawned with `green::spawn`.
/// * `green_2w`: `Builder::workers(WORKERS).run`, the tasks spawned with
///   `spawn_distributed` as in `spawn_many` (the idle worker takes its
///   share); `run` returns once the other worker's thread has exited.
/// * `tokio`, `tokio_mt`: the runtime built, `block_on` spawning and
///   awaiting the tasks, the runtime dropped (which waits for its worker
///   threads).
/// * `threads`: as `spawn_many`'s (`SPAWN_TASKS` threads spawned and
///   joined), which has no runtime to start.
///
/// An iteration takes milliseconds, so the group samples in flat mode.
fn spawn_many_cold(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_many_cold");
    group.throughput(Throughput::Elements(SPAWN_TASKS as u64)).sampling_mode(SamplingMode::Flat);

    group.bench_function("green", |b| {
        b.iter(|| {
            green::run(|| {
                let tasks: Vec<_> = (0..SPAWN_TASKS).map(|_| green::spawn(|| ())).collect();
                for task in tasks {
                    task.join().expect("empty task");
                }
            })
        })
    });

    group.bench_function("green_2w", |b| {
        b.iter(|| {
            green::Builder::new().workers(WORKERS).run(|| {
                let tasks: Vec<_> = (0..SPAWN_TASKS).map(|_| green::spawn_distributed(|| ())).collect();
                for task in tasks {
                    task.join().expect("empty task");
                }
            })
        })
    });

    for (name, start_runtime) in [
        ("tokio", current_thread_runtime as fn() -> tokio::runtime::Runtime),
        ("tokio_mt", multi_thread_runtime),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let rt = start_runtime();
                rt.block_on(async {
                    let tasks: Vec<_> = (0..SPAWN_TASKS).map(|_| tokio::spawn(async {})).collect();
                    for task in tasks {
                        task.await.expect("empty task");
                    }
                });
                drop(rt);
            })
        });
    }

    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter(|| {
            let threads: Vec<_> = (0..SPAWN_TASKS).map(|_| thread::spawn(|| ())).collect();
            for thread in threads {
                thread.join().expect("empty thread");
            }
        })
    });
    group.finish();
}

/// Two tasks take turns: each waits until the shared turn is its own, then
/// gives it to the other.
///
/// * `green`: the wait is `while turn != mine { yield_now() }` on an
///   `Rc<Cell<u32>>`. With only the two tasks runnable, every yield is one
///   switch through the run queue to the other task, so a hand-off costs
///   one switch plus a `Cell` check: the run queue's hand-off, not a
///   wake-up of a parked task (nothing parks).
/// * `green_2w`: the two tasks on the two workers (`spawn_on_worker`), the
///   turn under a `green::sync::Mutex` and waited for on a
///   `green::sync::Condvar`, as `threads` does with `std`'s: every
///   hand-off parks one task and wakes it from the other worker's thread.
/// * `tokio`, `tokio_mt`: two `tokio::sync::Notify`s, one per direction;
///   every hand-off is a real wait and wake. On `tokio_mt` the runtime
///   places the two tasks itself (a task woken from a worker is queued on
///   that worker, so they may share one).
/// * `threads`: two OS threads, the turn under a `std::sync::Mutex` and a
///   `Condvar`.
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

    tokio_ping_pong(&mut group, "tokio", &current_thread_runtime());

    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| {
                let round = || {
                    let turn = Arc::new((green::sync::Mutex::new(0u32), green::sync::Condvar::new()));
                    // The clock starts first: the player on worker 1 may
                    // start at once.
                    let start = Instant::now();
                    let players: Vec<_> = (0..2)
                        .map(|mine| {
                            let turn = turn.clone();
                            spawn_round_robin(mine, move || {
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
                        .collect();
                    for player in players {
                        player.join().expect("player");
                    }
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

/// The tokio variant of `ping_pong`, on `rt`, as `name`.
fn tokio_ping_pong(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, rt: &tokio::runtime::Runtime) {
    let at_once = starts_tasks_at_once(rt);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let to_pong = Arc::new(tokio::sync::Notify::new());
                    let to_ping = Arc::new(tokio::sync::Notify::new());
                    let mut start = Instant::now();
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
                    if !at_once {
                        // Nothing has run yet: the tasks start when we await.
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

/// What one context switch costs, from the bare mechanism up to the OS.
/// One element is a round trip of control: away from a task and back to
/// it, two switches.
///
/// * `corosensei`: `resume` into a coroutine that only `suspend`s: the
///   bare switch pair that `green` is built on, with nothing around it.
/// * `corosensei_nested`: the same, except that the coroutine suspends
///   inside a function that is not inlined. Its next resume continues in
///   that function and leaves it with a `ret` whose `call` the CPU's
///   return-stack predictor has since forgotten: the cost DESIGN.md's
///   "What a switch really costs" explains, and the reason `green` inlines
///   everything from `yield_now` and `park` down to the switch.
/// * `green`: one task calling `green::yield_now()` while its runtime has
///   nothing else to run (the spawner is parked in `join`): the pair above
///   plus the scheduler's loop and run queue.
/// * `tokio`: one task calling `tokio::task::yield_now().await` on the
///   same kind of runtime. tokio defers a yielded task's wake-up until it
///   has polled its I/O driver, so with nothing else to run every yield
///   includes a zero-timeout `epoll_wait`: what a lone tokio task pays.
/// * `green_2w`, `tokio_mt`: the `green` and `tokio` task, alone on a
///   runtime of [`WORKERS`] workers (on `green`, on worker 1 while `main`
///   waits on worker 0): what a yield costs where the scheduler also
///   watches for work from other threads. One task cannot use two workers;
///   the other idles. These two time inside the task, from its first yield
///   to its last, because its start and its join's wake-up cross threads
///   (an idle worker asleep in `epoll_wait` or on a futex): up to tens of
///   microseconds that are the workers' wake-up, not the switch.
/// * `threads`: two OS threads pinned to one CPU hand a turn back and
///   forth with `thread::park`/`unpark` (a futex): every hand-off is a
///   kernel context switch, the floor for blocking threads. Each thread
///   learns the other's handle after the clock starts (a few microseconds
///   against 10,000 round trips).
fn switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");
    group.throughput(Throughput::Elements(u64::from(SWITCH_ROUNDS)));

    group.bench_function("corosensei", |b| {
        let mut coroutine = Coroutine::new(|yielder: &Yielder<(), ()>, ()| {
            loop {
                yielder.suspend(());
            }
        });
        b.iter_custom(|iters| {
            time_rounds(iters, || {
                let start = Instant::now();
                for _ in 0..SWITCH_ROUNDS {
                    coroutine.resume(());
                }
                start.elapsed()
            })
        });
    });

    group.bench_function("corosensei_nested", |b| {
        let mut coroutine = Coroutine::new(|yielder: &Yielder<(), ()>, ()| {
            loop {
                suspend_one_call_deep(yielder);
            }
        });
        b.iter_custom(|iters| {
            time_rounds(iters, || {
                let start = Instant::now();
                for _ in 0..SWITCH_ROUNDS {
                    coroutine.resume(());
                }
                start.elapsed()
            })
        });
    });

    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let round = || {
                    let task = green::spawn(|| {
                        for _ in 0..SWITCH_ROUNDS {
                            green::yield_now();
                        }
                    });
                    // Nothing has run yet: the task starts when `join` parks.
                    let start = Instant::now();
                    task.join().expect("yielding task");
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
                    let task = tokio::spawn(async {
                        for _ in 0..SWITCH_ROUNDS {
                            tokio::task::yield_now().await;
                        }
                    });
                    // Nothing has run yet: the task starts when we await.
                    let start = Instant::now();
                    task.await.expect("yielding task");
                    start.elapsed()
                };
                time_rounds_async(iters, round).await
            })
        })
    });

    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| {
                let round = || {
                    let task = spawn_round_robin(1, || {
                        let start = Instant::now();
                        for _ in 0..SWITCH_ROUNDS {
                            green::yield_now();
                        }
                        start.elapsed()
                    });
                    task.join().expect("yielding task")
                };
                time_rounds(iters, round)
            })
        })
    });

    let rt = multi_thread_runtime();
    group.bench_function("tokio_mt", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let task = tokio::spawn(async {
                        let start = Instant::now();
                        for _ in 0..SWITCH_ROUNDS {
                            tokio::task::yield_now().await;
                        }
                        start.elapsed()
                    });
                    task.await.expect("yielding task")
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
                    let cpu = current_cpu();
                    let turn = Arc::new(AtomicUsize::new(0));
                    let handles: Arc<[OnceLock<Thread>; 2]> = Arc::new([OnceLock::new(), OnceLock::new()]);
                    time_on_threads(2, move |mine| {
                        pin_to_cpu(cpu);
                        handles[mine].set(thread::current()).expect("each thread registers once");
                        let peer = loop {
                            match handles[1 - mine].get() {
                                Some(peer) => break peer.clone(),
                                None => thread::yield_now(),
                            }
                        };
                        for _ in 0..SWITCH_ROUNDS {
                            while turn.load(Ordering::Acquire) != mine {
                                thread::park();
                            }
                            turn.store(1 - mine, Ordering::Release);
                            peer.unpark();
                        }
                    })
                })
                .sum()
        })
    });
    group.finish();
}

/// `switch`, `corosensei_nested`: a suspension one real call below the
/// coroutine's loop.
#[inline(never)]
fn suspend_one_call_deep(yielder: &Yielder<(), ()>) {
    yielder.suspend(());
}

/// The CPU the calling thread runs on now.
fn current_cpu() -> usize {
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).expect("sched_getcpu: the CPU this thread runs on")
}

/// Keeps the calling thread on `cpu` from now on, so that two threads
/// handing a turn to each other really switch on one CPU.
fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes the bit of `cpu` inside `set`; `cpu` came from
    // sched_getcpu, so it is below CPU_SETSIZE, the bits `set` has.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is the
    // calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(rc, 0, "sched_setaffinity to CPU {cpu}: {}", std::io::Error::last_os_error());
}

/// The tokio variant of `yield_many`, on `rt`, as `name`.
fn tokio_yield_many(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, rt: &tokio::runtime::Runtime) {
    let at_once = starts_tasks_at_once(rt);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let mut start = Instant::now();
                    let tasks: Vec<_> = (0..YIELD_TASKS)
                        .map(|_| {
                            tokio::spawn(async {
                                for _ in 0..YIELDS_PER_TASK {
                                    tokio::task::yield_now().await;
                                }
                            })
                        })
                        .collect();
                    if !at_once {
                        // Nothing has run yet: the tasks start when we await.
                        start = Instant::now();
                    }
                    for task in tasks {
                        task.await.expect("yielding task");
                    }
                    start.elapsed()
                };
                time_rounds_async(iters, round).await
            })
        })
    });
}

/// The tokio variant of `spawn_many`, on `rt`, as `name`.
fn tokio_spawn_many(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, rt: &tokio::runtime::Runtime) {
    group.bench_function(name, |b| {
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
}

/// `chained_spawn`: each task spawns the next; the last says it is done.
fn chained_spawn(c: &mut Criterion) {
    let mut group = c.benchmark_group("chained_spawn");
    group.throughput(Throughput::Elements(u64::from(CHAIN)));

    fn green_link(done: green::channel::OneshotSender<()>, left: u32) {
        if left == 0 {
            let _ = done.send(());
        } else {
            drop(green::spawn(move || green_link(done, left - 1)));
        }
    }
    group.bench_function("green", |b| {
        b.iter_custom(|iters| {
            green::run(|| {
                let round = || {
                    let (done, finished) = green::channel::oneshot();
                    let start = Instant::now();
                    green_link(done, CHAIN);
                    finished.recv().expect("the chain ends");
                    start.elapsed()
                };
                time_rounds(iters, round)
            })
        })
    });

    fn distributed_link(done: green::channel::OneshotSender<()>, left: u32) {
        if left == 0 {
            let _ = done.send(());
        } else {
            drop(green::spawn_distributed(move || distributed_link(done, left - 1)));
        }
    }
    group.bench_function("green_2w", |b| {
        b.iter_custom(|iters| {
            green::Builder::new().workers(WORKERS).run(|| {
                let round = || {
                    let (done, finished) = green::channel::oneshot();
                    let start = Instant::now();
                    distributed_link(done, CHAIN);
                    finished.recv().expect("the chain ends");
                    start.elapsed()
                };
                time_rounds(iters, round)
            })
        })
    });

    tokio_chained_spawn(&mut group, "tokio", &current_thread_runtime());
    tokio_chained_spawn(&mut group, "tokio_mt", &multi_thread_runtime());

    fn thread_link(done: std::sync::mpsc::Sender<()>, left: u32) {
        if left == 0 {
            let _ = done.send(());
        } else {
            drop(thread::spawn(move || thread_link(done, left - 1)));
        }
    }
    slow_variant(&mut group);
    group.bench_function("threads", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (done, finished) = std::sync::mpsc::channel();
                    let start = Instant::now();
                    thread_link(done, CHAIN);
                    finished.recv().expect("the chain ends");
                    start.elapsed()
                })
                .sum()
        })
    });
    group.finish();
}

/// The tokio variant of `chained_spawn`, on `rt`, as `name`.
fn tokio_chained_spawn(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, rt: &tokio::runtime::Runtime) {
    fn link(done: tokio::sync::oneshot::Sender<()>, left: u32) {
        if left == 0 {
            let _ = done.send(());
        } else {
            drop(tokio::spawn(async move { link(done, left - 1) }));
        }
    }
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let round = || async {
                    let (done, finished) = tokio::sync::oneshot::channel();
                    let start = Instant::now();
                    link(done, CHAIN);
                    finished.await.expect("the chain ends");
                    start.elapsed()
                };
                time_rounds_async(iters, round).await
            })
        })
    });
}

criterion_group!(benches, yield_many, spawn_many, spawn_many_cold, chained_spawn, ping_pong, switch);
criterion_main!(benches);
