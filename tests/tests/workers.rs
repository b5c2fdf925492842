//! A runtime of several workers: distributed tasks spread over threads,
//! never move once started, can be joined and cancelled from any worker,
//! lose nothing and run nothing twice when a cancellation races a steal,
//! and everything stops when `main` returns.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use green_tests::panic_text_of;

#[test]
fn zero_or_too_many_workers_is_a_clear_error_before_anything_starts() {
    for n in [0, green::Builder::MAX_WORKERS + 1, usize::MAX] {
        let started = AtomicBool::new(false);
        let message = panic_text_of("an invalid worker count panics", || {
            green::Builder::new().workers(n).run(|| started.store(true, Ordering::SeqCst))
        });
        assert!(message.contains("between 1 and"), "{message}");
        assert!(message.contains(&n.to_string()), "the message names the value: {message}");
        assert!(!started.load(Ordering::SeqCst), "nothing ran");
    }
}

#[test]
fn distributed_tasks_run_on_more_than_one_thread() {
    let threads = green::Builder::new().workers(2).run(|| {
        let seen = Arc::new(std::sync::Mutex::new(HashSet::new()));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let seen = seen.clone();
                green::spawn_distributed(move || {
                    seen.lock().expect("not poisoned").insert(thread::current().id());
                    // Blocks its worker's thread until a task has run on the
                    // other thread: only a steal by the other worker ends it
                    // (the cap keeps a failure from hanging the test).
                    let give_up = Instant::now() + Duration::from_secs(20);
                    while seen.lock().expect("not poisoned").len() < 2 && Instant::now() < give_up {
                        thread::sleep(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("the task finished");
        }
        seen.lock().expect("not poisoned").clone()
    });
    assert_eq!(threads.len(), 2, "both workers ran tasks");
}

#[test]
fn a_started_coroutine_never_changes_thread_across_a_thousand_parks() {
    let moved = green::Builder::new().workers(2).run(|| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                green::spawn_distributed(move || {
                    let home = thread::current().id();
                    let mut moved = 0;
                    for round in 0..1_000u32 {
                        // Parks (a timer), yields, and sometimes blocks the
                        // thread, so that the other worker keeps stealing.
                        if round % 3 == 0 {
                            green::sleep(Duration::from_micros(10)).expect("not cancelled");
                        } else {
                            green::yield_now();
                        }
                        if round % 200 == i {
                            thread::sleep(Duration::from_micros(200));
                        }
                        if thread::current().id() != home {
                            moved += 1;
                        }
                    }
                    moved
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("the task finished")).sum::<u32>()
    });
    assert_eq!(moved, 0, "a started coroutine was resumed on another thread");
}

#[test]
fn a_handle_is_joined_from_another_worker() {
    let value = green::Builder::new().workers(2).run(|| {
        let first = green::spawn_distributed(|| {
            green::sleep(Duration::from_millis(5)).expect("not cancelled");
            21
        });
        // The handle moves into another distributed task, maybe on the
        // other worker, which joins it there.
        let second = green::spawn_distributed(move || first.join().expect("the first finished") * 2);
        second.join().expect("the second finished")
    });
    assert_eq!(value, 42);
}

#[test]
fn a_cancelled_distributed_task_stops_at_its_blocking_call() {
    green::Builder::new().workers(2).run(|| {
        let sleeper = green::spawn_distributed(|| green::sleep(Duration::from_secs(3600)));
        // Let it start (on either worker) and park.
        green::sleep(Duration::from_millis(10)).expect("not cancelled");
        sleeper.cancel();
        let outcome = sleeper.join().expect("the task finished");
        assert_eq!(outcome, Err(green::Cancelled), "the sleep reported the cancellation");
    });
}

#[test]
fn cancels_racing_starts_and_steals_lose_nothing_and_run_nothing_twice() {
    const TASKS: usize = 2_000;
    let ran = Arc::new(AtomicUsize::new(0));
    let (finished, cancelled) = green::Builder::new().workers(2).run(|| {
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                let ran = ran.clone();
                let once = AtomicBool::new(false);
                let handle = green::spawn_distributed(move || {
                    assert!(!once.swap(true, Ordering::SeqCst), "a task ran twice");
                    ran.fetch_add(1, Ordering::SeqCst);
                });
                // Races the task's start, on this worker or a stealing one.
                handle.cancel();
                handle
            })
            .collect();
        let mut finished = 0;
        let mut cancelled = 0;
        for handle in handles {
            match handle.join() {
                Ok(()) => finished += 1,
                Err(err) if err.is_cancelled() => cancelled += 1,
                Err(err) => panic!("unexpected: {err}"),
            }
        }
        (finished, cancelled)
    });
    assert_eq!(finished + cancelled, TASKS, "every task is accounted for");
    assert_eq!(ran.load(Ordering::SeqCst), finished, "a task ran exactly when its join says it finished");
}

#[test]
fn queued_tasks_of_a_stuck_worker_are_taken_by_the_other() {
    let done = green::Builder::new().workers(2).run(|| {
        let done = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let done = done.clone();
                green::spawn_distributed(move || {
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        // Worker 0 (this thread) never parks from here until all are done:
        // only worker 1 can run them.
        let give_up = Instant::now() + Duration::from_secs(30);
        while done.load(Ordering::SeqCst) < 10 && Instant::now() < give_up {
            std::hint::spin_loop();
        }
        let done = done.load(Ordering::SeqCst);
        drop(handles);
        done
    });
    assert_eq!(done, 10, "the other worker ran the stuck worker's queued tasks");
}

#[test]
fn main_returning_stops_every_worker_and_tears_its_coroutines_down() {
    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    green::Builder::new().workers(3).run(|| {
        for i in 0..30 {
            let flag = Flag(dropped.clone());
            let started = started.clone();
            // Detached: busy and parked tasks on every worker.
            drop(green::spawn_distributed(move || {
                let _flag = flag;
                started.fetch_add(1, Ordering::SeqCst);
                loop {
                    if i % 2 == 0 {
                        green::yield_now();
                    } else if green::sleep(Duration::from_millis(1)).is_err() {
                        return;
                    }
                }
            }));
        }
        green::sleep(Duration::from_millis(20)).expect("not cancelled");
    });
    // `run` returned: every task either never started or was torn down.
    assert_eq!(dropped.load(Ordering::SeqCst), 30, "every closure was dropped, started or not");
    assert!(started.load(Ordering::SeqCst) > 0);
}

#[test]
fn a_panic_in_main_still_stops_the_workers() {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        green::Builder::new().workers(2).run(|| {
            drop(green::spawn_distributed(|| green::sleep(Duration::from_secs(3600))));
            panic!("main gives up");
        })
    }));
    let payload = result.expect_err("main's panic comes out of run");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"main gives up"));
}

#[test]
fn a_panicking_distributed_task_is_an_error_at_its_join() {
    let err = green::Builder::new().workers(2).run(|| {
        green::task::Builder::new()
            .name("doomed")
            .spawn_distributed(|| panic!("boom"))
            .expect("inside a runtime")
            .join()
            .expect_err("it panicked")
    });
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("boom"));
    assert_eq!(err.name(), Some("doomed"));
}

#[test]
fn distributed_spawns_work_in_a_runtime_of_one_worker() {
    let sum = green::run(|| {
        let handles: Vec<_> = (0..100u64).map(|i| green::spawn_distributed(move || i)).collect();
        handles.into_iter().map(|h| h.join().expect("finished")).sum::<u64>()
    });
    assert_eq!(sum, 4950);
}

#[test]
fn spawning_distributed_outside_a_runtime_is_an_error() {
    let err = green::task::Builder::new().spawn_distributed(|| ()).expect_err("no runtime");
    assert!(err.to_string().contains("outside a green runtime"), "{err}");
}

#[test]
fn an_idle_runtime_of_several_workers_uses_almost_no_cpu() {
    const NAP: Duration = Duration::from_millis(300);
    let used = green::Builder::new().workers(3).run(|| {
        green::sleep(Duration::from_millis(20)).expect("not cancelled");
        let before = worker_cpu_time();
        green::sleep(NAP).expect("not cancelled");
        worker_cpu_time() - before
    });
    assert!(used < Duration::from_millis(50), "the idle workers used {used:?} of CPU in {NAP:?}");
}

/// CPU time of this process's worker threads (named `green-worker-N`) and
/// of the runtime's monitor thread (`green-monitor`), from
/// `/proc/self/task`.
fn worker_cpu_time() -> Duration {
    let ticks_per_second = 100; // USER_HZ on Linux
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").expect("the process's threads") {
        let dir = entry.expect("a thread").path();
        let Ok(name) = std::fs::read_to_string(dir.join("comm")) else { continue };
        if !name.starts_with("green-worker-") && !name.starts_with("green-monitor") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else { continue };
        // utime and stime are fields 14 and 15; the name (field 2) may hold
        // spaces, so count from its closing parenthesis.
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("").split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        ticks += field(14) + field(15);
    }
    Duration::from_millis(ticks * 1000 / ticks_per_second)
}

#[test]
fn a_lock_held_across_a_sleep_on_another_worker_is_waited_for_not_reported_as_a_deadlock() {
    // The holder took the lock on its fast path (which records nothing)
    // and sleeps on worker 1 for longer than the stall grace, while main on
    // worker 0 waits for the lock with nothing else to do.
    let value = green::Builder::new().workers(2).run(|| {
        let lock = Arc::new(green::sync::Mutex::new(0));
        let (locked, is_locked) = green::channel::oneshot();
        let holder_lock = lock.clone();
        let holder = green::spawn_distributed(move || {
            let mut guard = holder_lock.lock().expect("free");
            let _ = locked.send(());
            green::sleep(Duration::from_millis(1_500)).expect("not cancelled");
            *guard = 7;
        });
        is_locked.recv().expect("the holder took the lock");
        let value = *lock.lock().expect("handed over once the holder is done");
        holder.join().expect("the holder finished");
        value
    });
    assert_eq!(value, 7);
}

#[test]
fn listeners_bound_with_reuse_port_share_one_port_and_the_connections() {
    const CLIENTS: usize = 64;
    let (per_listener, plain_bind) = green::run(|| {
        let first = green::net::TcpListener::bind_reuse_port("127.0.0.1:0").expect("bind");
        let addr = first.local_addr().expect("an address");
        let second =
            green::net::TcpListener::bind_reuse_port(addr).expect("a second listener on the same port");
        let plain_bind = green::net::TcpListener::bind(addr).map(|_| ()).map_err(|err| err.kind());
        let accepted = Arc::new(AtomicUsize::new(0));
        let acceptors: Vec<_> = [first, second]
            .into_iter()
            .map(|listener| {
                let accepted = accepted.clone();
                green::spawn(move || {
                    let mut mine = 0;
                    while let Ok((stream, _)) = listener.accept() {
                        drop(stream);
                        mine += 1;
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    mine
                })
            })
            .collect();
        let clients = thread::spawn(move || {
            for _ in 0..CLIENTS {
                drop(std::net::TcpStream::connect(addr).expect("connect"));
            }
        });
        while accepted.load(Ordering::SeqCst) < CLIENTS {
            green::sleep(Duration::from_millis(1)).expect("not cancelled");
        }
        clients.join().expect("the clients");
        for acceptor in &acceptors {
            acceptor.cancel();
        }
        let per_listener: Vec<usize> = acceptors.into_iter().map(|a| a.join().expect("finished")).collect();
        (per_listener, plain_bind)
    });
    assert_eq!(per_listener.iter().sum::<usize>(), CLIENTS);
    assert!(per_listener.iter().all(|&n| n > 0), "the kernel spread the connections: {per_listener:?}");
    assert_eq!(plain_bind, Err(std::io::ErrorKind::AddrInUse), "a listener without SO_REUSEPORT is refused");
}

#[test]
fn a_task_pinned_to_a_worker_runs_there_even_while_that_worker_is_busy() {
    let (main_thread, ran_on, others) = green::Builder::new().workers(3).run(|| {
        let main_thread = thread::current().id();
        let pinned = green::task::Builder::new()
            .spawn_on_worker(0, || thread::current().id())
            .expect("the runtime has a worker 0");
        // Worker 0 stays busy for a while: the other two are idle and
        // would steal an unpinned task.
        let busy_until = Instant::now() + Duration::from_millis(30);
        while Instant::now() < busy_until {
            std::hint::spin_loop();
        }
        let ran_on = pinned.join().expect("finished");
        let others: HashSet<ThreadId> = (1..3)
            .map(|w| {
                green::task::Builder::new()
                    .spawn_on_worker(w, || thread::current().id())
                    .expect("a worker")
                    .join()
                    .expect("finished")
            })
            .collect();
        (main_thread, ran_on, others)
    });
    assert_eq!(ran_on, main_thread, "the pinned task ran on worker 0, not on a stealer");
    assert_eq!(others.len(), 2);
    assert!(!others.contains(&main_thread));
}

#[test]
fn pinning_to_a_worker_that_does_not_exist_is_an_error() {
    green::Builder::new().workers(2).run(|| {
        assert_eq!(green::task::workers(), 2);
        let err = green::task::Builder::new().spawn_on_worker(2, || ()).expect_err("no worker 2");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("no worker 2"), "{err}");
    });
    assert_eq!(green::run(green::task::workers), 1);
    assert_eq!(green::task::workers(), 0, "outside a runtime");
}

#[test]
fn threads_outside_the_runtime_spawn_on_it_through_a_handle() {
    for workers in [1, 3] {
        let (sum, threads) = green::Builder::new().workers(workers).run(|| {
            let handle = green::Handle::current();
            // The spawner threads report through a channel: main parks on
            // it rather than blocking its worker's thread in a thread join.
            let (report, reports) = green::channel::unbounded();
            for t in 0..4u64 {
                let (handle, report) = (handle.clone(), report.clone());
                thread::spawn(move || {
                    let tasks: Vec<_> = (0..50u64)
                        .map(|i| handle.spawn(move || (t * 50 + i, thread::current().id())))
                        .collect();
                    for task in tasks {
                        report.send(task.join().expect("finished")).expect("main listens");
                    }
                });
            }
            drop(report);
            let results: Vec<(u64, ThreadId)> = reports.iter().collect();
            let sum: u64 = results.iter().map(|(v, _)| v).sum();
            let threads: HashSet<ThreadId> = results.iter().map(|(_, t)| *t).collect();
            (sum, threads)
        });
        assert_eq!(sum, (0..200).sum::<u64>(), "{workers} workers: every task ran once");
        assert!(threads.len() <= workers, "tasks ran on the runtime's threads");
    }
}

#[test]
fn a_handle_to_a_runtime_that_has_ended_spawns_nothing() {
    let (handle, ran) = {
        let ran = Arc::new(AtomicUsize::new(0));
        let handle = green::run(green::Handle::current);
        (handle, ran)
    };
    let counter = ran.clone();
    let task = handle.spawn(move || counter.fetch_add(1, Ordering::SeqCst));
    let err = task.join().expect_err("the runtime is gone");
    assert!(err.is_cancelled(), "{err}");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(green::Handle::try_current().is_none(), "no runtime here");
}

#[test]
fn a_hundred_thousand_distributed_tasks_all_run_once() {
    const TASKS: u64 = 100_000;
    let (sum, ran) = green::Builder::new().workers(2).run(|| {
        let ran = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..TASKS)
            .map(|i| {
                let ran = ran.clone();
                green::spawn_distributed(move || {
                    ran.fetch_add(1, Ordering::Relaxed);
                    i
                })
            })
            .collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().expect("finished")).sum();
        (sum, ran.load(Ordering::SeqCst))
    });
    assert_eq!(ran, TASKS as usize);
    assert_eq!(sum, (0..TASKS).sum::<u64>());
}

#[test]
fn main_returning_with_twenty_thousand_tasks_queued_drops_them_unstarted() {
    /// Counts its drops, and those that happen inside a coroutine.
    struct Counted(Arc<AtomicUsize>, Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
            if green::try_current().is_some() {
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    const TASKS: usize = 20_000;
    let dropped = Arc::new(AtomicUsize::new(0));
    let in_coroutines = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    green::Builder::new().workers(2).run(|| {
        for _ in 0..TASKS {
            let counted = Counted(dropped.clone(), in_coroutines.clone());
            let ran = ran.clone();
            drop(green::spawn_distributed(move || {
                let _counted = counted;
                ran.fetch_add(1, Ordering::SeqCst);
            }));
        }
        // Returns at once: most are still queued.
    });
    assert_eq!(dropped.load(Ordering::SeqCst), TASKS, "every closure was dropped, run or not");
    assert_eq!(in_coroutines.load(Ordering::SeqCst), TASKS, "each inside a coroutine, where its waits work");
    assert!(ran.load(Ordering::SeqCst) <= TASKS);
}

#[test]
fn a_plain_thread_cancels_and_joins_a_distributed_task() {
    let outcome = green::Builder::new().workers(2).run(|| {
        let sleeper = green::spawn_distributed(|| green::sleep(Duration::from_secs(3600)));
        let (outcome, got) = green::channel::oneshot();
        // The handle goes to a thread outside the runtime, which cancels
        // the task (through its worker's inbox) and joins it there.
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            sleeper.cancel();
            let _ = outcome.send(sleeper.join());
        });
        got.recv().expect("the thread reports")
    });
    assert_eq!(outcome.expect("the task finished"), Err(green::Cancelled));
}

#[test]
fn a_job_spawned_by_a_task_that_then_holds_its_thread_is_taken_by_an_idle_worker() {
    // A distributed task spawns another and computes without yielding:
    // the spawn rang nobody (the job waits where the spawner runs, as a
    // chain of spawns would), so only the monitor, seeing that worker
    // make no progress, can send the idle worker for it.
    let ran_elsewhere = green::Builder::new().workers(2).run(|| {
        // On worker 1, while worker 0 only waits for it.
        let outer = green::task::Builder::new().spawn_on_worker(1, || {
            let here = thread::current().id();
            let done = Arc::new(AtomicUsize::new(0));
            let seen = done.clone();
            let inner = green::spawn_distributed(move || {
                seen.store(1, Ordering::SeqCst);
                thread::current().id()
            });
            let give_up = Instant::now() + Duration::from_secs(30);
            while done.load(Ordering::SeqCst) == 0 && Instant::now() < give_up {
                std::hint::spin_loop();
            }
            let there = inner.join().expect("the inner task ran");
            done.load(Ordering::SeqCst) == 1 && there != here
        });
        outer.expect("the runtime has worker 1").join().expect("the outer task finished")
    });
    assert!(ran_elsewhere, "the idle worker took the job queued behind the busy task");
}
