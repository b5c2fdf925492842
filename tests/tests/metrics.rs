//! `green::metrics` and `green::runtime_metrics`: each counter moves with
//! what it counts, every runtime is listed while it runs (also to plain
//! threads) and gone after, and reading never disturbs the runtimes, also
//! while they start and end around a reader in a loop.
//!
//! Several tests run at once in this process, each with its own runtimes:
//! a test looks only at its own runtime, by id, never at the whole list.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use green::metrics::{RuntimeMetrics, WorkerMetrics};
use green::net::UnixStream;
use green_tests::{describe, run_in_child, stderr_of};

/// The calling coroutine's runtime, summed over its workers.
fn here() -> WorkerMetrics {
    green::runtime_metrics().expect("called inside a runtime").total()
}

#[test]
fn spawned_tasks_are_counted_and_alive_returns_to_the_baseline_after_join() {
    green::run(|| {
        let before = here();
        let tasks: Vec<_> = (0..100).map(|_| green::spawn(green::yield_now)).collect();
        let during = here();
        assert!(during.spawned - before.spawned >= 100, "{before:?} {during:?}");
        assert_eq!(during.alive(), before.alive() + 100);
        for task in tasks {
            task.join().unwrap();
        }
        let after = here();
        assert!(after.spawned - before.spawned >= 100);
        assert_eq!(after.alive(), before.alive(), "{before:?} {after:?}");
        assert_eq!(after.finished - before.finished, 100);
    });
}

#[test]
fn every_yield_is_a_switch() {
    green::run(|| {
        let before = here();
        green::spawn(|| {
            for _ in 0..1_000 {
                green::yield_now();
            }
        })
        .join()
        .unwrap();
        let after = here();
        assert!(after.switches - before.switches >= 1_000, "{before:?} {after:?}");
    });
}

#[test]
fn a_socket_wait_polls_the_reactor_and_counts_its_event() -> io::Result<()> {
    green::run(|| {
        let (mut near, mut far) = UnixStream::pair()?;
        let before = here();
        let reader = green::spawn(move || -> io::Result<u8> {
            let mut byte = [0];
            far.read_exact(&mut byte)?; // nothing yet: waits for readiness
            Ok(byte[0])
        });
        green::yield_now(); // the reader parks on its socket
        near.write_all(&[7])?;
        assert_eq!(reader.join().unwrap()?, 7);
        let after = here();
        assert!(after.polls > before.polls, "{before:?} {after:?}");
        assert!(after.events > before.events, "{before:?} {after:?}");
        assert!(after.events_per_poll() > 0.0);
        Ok(())
    })
}

#[test]
fn gauges_show_the_parked_and_the_queued_as_of_the_last_turn() {
    green::run(|| {
        // Ten coroutines parked on a channel: once the loop has slept (here,
        // in the main coroutine's sleep), the gauge has them.
        let (wake, parked) = green::channel::bounded::<()>(10);
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let parked = parked.clone();
                green::spawn(move || parked.recv().unwrap())
            })
            .collect();
        green::sleep(Duration::from_millis(1)).unwrap();
        let now = here();
        assert!(now.parked >= 10, "{now:?}");
        for _ in 0..10 {
            wake.send(()).unwrap();
        }
        waiters.into_iter().for_each(|waiter| waiter.join().unwrap());

        // A hundred coroutines yielding in turn: every gauge stored while
        // they run (every 61 switches at most) has them all queued.
        let yielders: Vec<_> = (0..100)
            .map(|_| {
                green::spawn(|| {
                    for _ in 0..1_000 {
                        green::yield_now();
                    }
                })
            })
            .collect();
        let observer = green::spawn(|| {
            for _ in 0..300 {
                green::yield_now();
            }
            here()
        });
        let seen = observer.join().unwrap();
        assert!(seen.queued >= 90, "{seen:?}");
        yielders.into_iter().for_each(|yielder| yielder.join().unwrap());
    });
}

#[test]
fn two_workers_have_an_entry_each_and_an_idle_one_steals() {
    let runtime = green::Builder::new().workers(2).stall_watchdog(None).run(|| {
        // Queued on worker 0 while main holds worker 0's thread: only
        // worker 1 can take them, from worker 0's queue.
        let handles: Vec<_> = (0..64).map(|i| green::spawn_distributed(move || i)).collect();
        let start = Instant::now();
        while green::runtime_metrics().unwrap().workers[1].steals == 0
            && start.elapsed() < Duration::from_secs(20)
        {
            std::hint::spin_loop();
        }
        let sum: u64 = handles.into_iter().map(|handle| handle.join().unwrap()).sum();
        assert_eq!(sum, 64 * 63 / 2);
        green::runtime_metrics().unwrap()
    });
    assert_eq!(runtime.workers.len(), 2);
    let (zero, one) = (&runtime.workers[0], &runtime.workers[1]);
    assert!(one.steals >= 1, "worker 1 stole nothing: {runtime:?}");
    assert!(zero.spawned >= 2 && one.spawned >= 2, "main and the services, and the tasks: {runtime:?}");
    assert!(one.switches > 0, "{runtime:?}");
    let total = runtime.total();
    assert_eq!(total.spawned, zero.spawned + one.spawned);
    assert_eq!(total.steals, zero.steals + one.steals);
    assert!(total.spawned >= 64 + 3, "64 tasks, main and two services: {total:?}");
}

#[test]
fn with_every_wake_up_timed_the_histogram_counts_each_one() {
    // Ping-pong over two channels: every wake-up's coroutine runs before
    // the next wake-up, so none is skipped for one in flight.
    const ROUND_TRIPS: u64 = 500;
    let (timed, delay) = green::Builder::new().delay_sampling(1).run(|| {
        let (to_pong, from_ping) = green::channel::bounded::<u64>(1);
        let (to_ping, from_pong) = green::channel::bounded::<u64>(1);
        let ping = green::spawn(move || {
            // The first round trip starts pong: counted from the second.
            to_pong.send(0).unwrap();
            from_pong.recv().unwrap();
            let before = here().delay.count();
            for i in 1..ROUND_TRIPS {
                to_pong.send(i).unwrap(); // wakes pong
                assert_eq!(from_pong.recv().unwrap(), i + 1); // parks; pong wakes it
            }
            (here().delay.count() - before, here().delay)
        });
        let pong = green::spawn(move || {
            for ball in from_ping.iter() {
                if to_ping.send(ball + 1).is_err() {
                    break;
                }
            }
        });
        let counted = ping.join().unwrap();
        pong.join().unwrap();
        counted
    });
    assert_eq!(timed, 2 * (ROUND_TRIPS - 1), "two wake-ups per round trip");
    assert_eq!(delay.counts().iter().sum::<u64>(), delay.count());
    assert!(delay.quantile(0.5) <= delay.quantile(0.99));
}

#[test]
fn by_default_about_one_wake_up_in_sample_every_is_timed() {
    // 40,000 wake-ups; each countdown is from half to one and a half
    // times SAMPLE_EVERY.
    const ROUND_TRIPS: u64 = 20_000;
    let every = u64::from(green::metrics::DelayHistogram::SAMPLE_EVERY);
    let timed = green::run(|| {
        let before = here().delay.count();
        let (to_pong, from_ping) = green::channel::bounded::<u64>(1);
        let (to_ping, from_pong) = green::channel::bounded::<u64>(1);
        let pong = green::spawn(move || {
            for ball in from_ping.iter() {
                let _ = to_ping.send(ball);
            }
        });
        for i in 0..ROUND_TRIPS {
            to_pong.send(i).unwrap();
            from_pong.recv().unwrap();
        }
        drop(to_pong);
        pong.join().unwrap();
        here().delay.count() - before
    });
    let wakes = 2 * ROUND_TRIPS;
    let (fewest, most) = (wakes / (every * 3 / 2), wakes / (every / 2) + 1);
    assert!((fewest..=most).contains(&timed), "{timed} timed, not within {fewest}..={most}");
}

#[test]
fn a_stall_is_counted_on_its_worker() -> io::Result<()> {
    let test = "a_stall_is_counted_on_its_worker";
    // In a child: the report goes to stderr.
    let output = run_in_child(test, || {
        let threshold = Duration::from_millis(20);
        let stalls = green::Builder::new().workers(2).stall_watchdog(Some(threshold)).run(|| {
            // Pinned to worker 1, which it holds until the watchdog has
            // reported it.
            let spinner = green::task::Builder::new().spawn_on_worker(1, || {
                let start = Instant::now();
                while green::runtime_metrics().unwrap().workers[1].stalls == 0
                    && start.elapsed() < Duration::from_secs(20)
                {
                    std::hint::spin_loop();
                }
            });
            spinner.unwrap().join().unwrap();
            green::runtime_metrics().unwrap().workers.iter().map(|w| w.stalls).collect::<Vec<_>>()
        });
        assert!(stalls[1] >= 1, "{stalls:?}");
    })?;
    assert!(output.status.success(), "{}", describe(&output));
    assert!(stderr_of(&output).contains("has held worker 1 "), "{}", describe(&output));
    Ok(())
}

/// Runs a runtime on a thread of its own until told to stop; returns its
/// id, the way to stop it and its thread.
fn runtime_on_a_thread() -> (u64, green::channel::Sender<()>, thread::JoinHandle<()>) {
    let (started, id) = mpsc::channel();
    let (stop, stopped) = green::channel::bounded::<()>(1);
    let thread = thread::spawn(move || {
        green::run(|| {
            started.send(green::runtime_metrics().unwrap().id).unwrap();
            let _ = stopped.recv();
        })
    });
    let id = id.recv().expect("the runtime started");
    (id, stop, thread)
}

#[test]
fn a_plain_thread_sees_a_runtime_running_elsewhere_until_it_ends() {
    assert!(green::runtime_metrics().is_none(), "no runtime on this thread");
    let (id, stop, thread) = runtime_on_a_thread();
    let metrics = green::metrics();
    let runtime: &RuntimeMetrics = metrics.runtime(id).expect("listed while it runs");
    assert_eq!(runtime.workers.len(), 1);
    assert!(runtime.total().spawned >= 1 && runtime.total().alive() >= 1, "{runtime:?}");
    assert_eq!(runtime.blocking, green::blocking::PoolStats::default(), "its pool was never used");
    stop.send(()).unwrap();
    thread.join().unwrap();
    assert!(green::metrics().runtime(id).is_none(), "gone once run has returned");
}

#[test]
fn the_blocking_pool_is_read_without_starting_it() {
    green::run(|| {
        assert_eq!(green::runtime_metrics().unwrap().blocking.threads, 0);
        green::blocking::unblock(|| ()).unwrap();
        let blocking = green::runtime_metrics().unwrap().blocking;
        assert_eq!(blocking.completed, 1);
        assert_eq!(blocking, green::blocking::stats());
    });
}

/// Adversarial: 100,000 coroutines alive at once, each reading the
/// metrics. A reading that looked at every coroutine would make this
/// quadratic; it is linear.
#[test]
fn a_hundred_thousand_coroutines_each_reading_the_metrics() {
    const TASKS: u64 = 100_000;
    green::Builder::new().stack_size(16 * 1024).run(|| {
        let before = here();
        let (go, gate) = green::channel::bounded::<()>(1);
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let gate = gate.clone();
                green::spawn(move || {
                    let seen = here();
                    // Parks until everyone is alive, then reads again.
                    let _ = gate.recv();
                    (seen.alive(), here().spawned)
                })
            })
            .collect();
        drop(gate);
        green::yield_now(); // every task runs up to its gate
        let peak = here();
        assert_eq!(peak.alive(), before.alive() + TASKS, "{peak:?}");
        drop(go); // disconnects: every gate opens
        for task in tasks {
            let (alive, spawned) = task.join().unwrap();
            assert!(alive > before.alive() && spawned >= before.spawned + TASKS);
        }
        assert_eq!(here().alive(), before.alive());
    });
}

/// Adversarial: readers loop over `green::metrics()` from plain threads
/// while runtimes of one and of several workers start, spawn and end on
/// other threads. Every snapshot is consistent, and every runtime is gone
/// from the registry once its `run` has returned.
#[test]
fn readers_in_a_loop_while_runtimes_start_and_end() {
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let done = done.clone();
            thread::spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::Relaxed) {
                    for runtime in green::metrics().runtimes {
                        assert!(!runtime.workers.is_empty());
                        for worker in &runtime.workers {
                            assert!(worker.finished <= worker.spawned, "{worker:?}");
                        }
                        let total = runtime.total();
                        assert_eq!(total.delay.count(), total.delay.counts().iter().sum::<u64>());
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let starters: Vec<_> = (0..2)
        .map(|starter| {
            thread::spawn(move || {
                let mut ids = Vec::new();
                for round in 0..20 {
                    let workers = 1 + (starter + round) % 3;
                    let id = green::Builder::new().workers(workers).run(|| {
                        let tasks: Vec<_> =
                            (0..200u64).map(|i| green::spawn_distributed(move || i * 2)).collect();
                        let sum: u64 = tasks.into_iter().map(|task| task.join().unwrap()).sum();
                        assert_eq!(sum, 199 * 200);
                        let runtime = green::runtime_metrics().unwrap();
                        assert_eq!(runtime.workers.len(), workers);
                        runtime.id
                    });
                    ids.push(id);
                }
                ids
            })
        })
        .collect();
    let ids: Vec<u64> = starters.into_iter().flat_map(|starter| starter.join().unwrap()).collect();
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    let metrics = green::metrics();
    for id in ids {
        assert!(metrics.runtime(id).is_none(), "runtime {id} ended but is still listed");
    }
}
