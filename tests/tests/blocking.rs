//! The blocking pool, `green::blocking`: work runs on pool threads while
//! coroutines keep running; panics, backpressure, cancellation, shutdown,
//! plain threads and several workers.
//!
//! Closures that must be running at some moment wait on a gate (a std
//! channel) that the test opens; nothing here waits for time to pass.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use green::blocking;

/// Opens a gate that pool work waits on: the work blocks its pool thread
/// until `open`, or for at most 20 s (then the test fails on its result).
fn gate() -> (mpsc::Sender<()>, impl FnOnce() -> bool + Send + 'static) {
    let (open, opened) = mpsc::channel::<()>();
    (open, move || opened.recv_timeout(Duration::from_secs(20)).is_ok())
}

/// Yields until `done` or 100,000 turns have passed.
fn yield_until(done: impl Fn() -> bool) -> bool {
    for _ in 0..100_000 {
        if done() {
            return true;
        }
        green::yield_now();
    }
    done()
}

/// Waits (on the runtime's timers) until `done`, for at most 20 s.
fn sleep_until(done: impl Fn() -> bool) -> bool {
    for _ in 0..20_000 {
        if done() {
            return true;
        }
        if green::sleep(Duration::from_millis(1)).is_err() {
            return done();
        }
    }
    done()
}

#[test]
fn a_ticker_keeps_ticking_while_pool_work_blocks_and_the_work_sees_its_ticks() {
    // The work waits for the ticker to tick 50 times: were it run on the
    // runtime's thread, the ticker could never run and the gate would
    // time out.
    let (ticked, waited) = green::run(|| {
        let ticks = Rc::new(Cell::new(0));
        let (open, wait) = gate();
        let seen = ticks.clone();
        let ticker = green::spawn(move || {
            while seen.get() < 50 {
                seen.set(seen.get() + 1);
                green::yield_now();
            }
            open.send(()).unwrap();
        });
        let waited = blocking::unblock(wait).unwrap();
        ticker.join().unwrap();
        (ticks.get(), waited)
    });
    assert!(waited, "the pool work never saw the gate open: the loop was blocked");
    assert_eq!(ticked, 50);
}

#[test]
fn pool_work_runs_in_parallel() {
    // Four closures meet at one barrier: they can only all return if four
    // pool threads run them at the same time.
    let met = green::run(|| {
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let barrier = barrier.clone();
                blocking::spawn(move || barrier.wait().is_leader()).unwrap()
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).filter(|&leader| leader).count()
    });
    assert_eq!(met, 1);
}

#[test]
fn a_panic_in_pool_work_is_an_error_and_the_pool_goes_on() {
    let (err, after, stats) = green::run(|| {
        let err = blocking::unblock(|| -> u32 { panic!("disk on fire") }).unwrap_err();
        let after = blocking::unblock(|| 7).unwrap();
        (err, after, blocking::stats())
    });
    assert!(err.is_panic() && !err.is_cancelled());
    assert_eq!(err.panic_message(), Some("disk on fire"));
    assert!(err.to_string().contains("disk on fire"), "{err}");
    let io = std::io::Error::from(err);
    assert_eq!(io.kind(), std::io::ErrorKind::Other);
    assert_eq!(after, 7);
    assert_eq!((stats.completed, stats.panicked), (2, 1));
}

#[test]
fn a_pool_panic_can_be_resumed_and_caught_in_the_coroutine() {
    let caught = green::run(|| {
        panic::catch_unwind(AssertUnwindSafe(|| {
            match blocking::unblock(|| -> () { panic::panic_any(42u64) }) {
                Ok(()) => {}
                Err(err) => panic::resume_unwind(err.into_panic()),
            }
        }))
        .unwrap_err()
        .downcast::<u64>()
        .map(|n| *n)
    });
    assert_eq!(caught.ok(), Some(42));
}

#[test]
fn a_full_queue_makes_the_submitter_wait_until_there_is_room() {
    green::Builder::new().blocking_threads(1).blocking_queue_limit(2).run(|| {
        let (open, wait) = gate();
        let first = blocking::spawn(wait).unwrap();
        assert!(sleep_until(|| blocking::stats().busy == 1), "the first closure never started");
        let queued: Vec<_> = (0..2).map(|i| blocking::spawn(move || i).unwrap()).collect();
        assert_eq!(blocking::stats().queued, 2);
        let submitted = Rc::new(Cell::new(false));
        let flag = submitted.clone();
        let fourth = green::spawn(move || {
            let handle = blocking::spawn(|| 3).unwrap();
            flag.set(true);
            handle.join().unwrap()
        });
        // The fourth waits for room: it cannot get any while the thread is
        // held and the queue is full.
        for _ in 0..1_000 {
            green::yield_now();
        }
        assert!(!submitted.get(), "a submit went through a full queue");
        assert_eq!(blocking::stats().queued, 2);
        open.send(()).unwrap();
        assert!(first.join().unwrap());
        let rest: Vec<i32> = queued.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(rest, [0, 1]);
        assert_eq!(fourth.join().unwrap(), 3);
        assert!(submitted.get());
    });
}

#[test]
fn cancelled_while_queued_the_work_never_runs() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counted = ran.clone();
    let (err, stats) = green::Builder::new().blocking_threads(1).run(move || {
        let (open, wait) = gate();
        let holder = blocking::spawn(wait).unwrap();
        assert!(sleep_until(|| blocking::stats().busy == 1));
        let waiter = green::spawn(move || blocking::unblock(move || counted.fetch_add(1, Ordering::SeqCst)));
        assert!(yield_until(|| blocking::stats().queued == 1));
        waiter.cancel();
        let err = waiter.join().unwrap().unwrap_err();
        assert_eq!(blocking::stats().queued, 0, "the cancelled work left the queue");
        open.send(()).unwrap();
        assert!(holder.join().unwrap());
        // One more closure through the only thread: had the cancelled one
        // stayed queued, it would have run before this one.
        blocking::unblock(|| ()).unwrap();
        (err, blocking::stats())
    });
    assert!(err.is_cancelled(), "{err}");
    assert!(green::is_cancelled(&std::io::Error::from(err)));
    assert_eq!(ran.load(Ordering::SeqCst), 0, "cancelled queued work ran");
    assert_eq!(stats.cancelled_queued, 1);
    assert_eq!(stats.cancelled_running, 0);
    assert_eq!(stats.started, 2);
}

/// A result that reports where it is dropped.
struct Tracked(mpsc::Sender<&'static str>);

impl Drop for Tracked {
    fn drop(&mut self) {
        let on = if std::thread::current().name().is_some_and(|n| n.starts_with("green-blocking")) {
            "pool"
        } else {
            "elsewhere"
        };
        let _ = self.0.send(on);
    }
}

#[test]
fn cancelled_while_running_the_work_finishes_and_its_result_is_dropped_on_the_pool() {
    let (dropped_tx, dropped) = mpsc::channel();
    let (err, stats) = green::run(move || {
        let (open, wait) = gate();
        let waiter = green::spawn(move || {
            blocking::unblock(move || {
                wait();
                Tracked(dropped_tx)
            })
            .map(drop)
        });
        assert!(sleep_until(|| blocking::stats().busy == 1));
        waiter.cancel();
        let err = waiter.join().unwrap().unwrap_err();
        open.send(()).unwrap();
        (err, blocking::stats())
    });
    assert!(err.is_cancelled());
    assert_eq!(stats.cancelled_running, 1);
    assert_eq!(stats.cancelled_queued, 0);
    assert_eq!(dropped.recv_timeout(Duration::from_secs(20)), Ok("pool"));
}

#[test]
fn a_handle_cancels_queued_work_and_a_dropped_handle_still_runs() {
    let (ran_tx, ran) = mpsc::channel();
    green::Builder::new().blocking_threads(1).run(move || {
        let (open, wait) = gate();
        let holder = blocking::spawn(wait).unwrap();
        let first = ran_tx.clone();
        let cancelled = blocking::spawn(move || first.send("cancelled").unwrap()).unwrap();
        let detached = ran_tx.clone();
        drop(blocking::spawn(move || detached.send("detached").unwrap()).unwrap());
        assert!(cancelled.cancel());
        assert!(!cancelled.cancel(), "cancelled twice");
        assert!(cancelled.join().unwrap_err().is_cancelled());
        open.send(()).unwrap();
        assert!(holder.join().unwrap());
        assert!(blocking::spawn(|| ()).unwrap().join().is_ok());
    });
    assert_eq!(ran.recv_timeout(Duration::from_secs(20)), Ok("detached"));
    assert!(ran.try_recv().is_err(), "the cancelled closure ran");
}

#[test]
fn shutdown_drops_queued_work_and_does_not_wait_for_running_work() {
    let (ran_tx, ran) = mpsc::channel::<&str>();
    let dropped = Arc::new(AtomicUsize::new(0));
    struct CountDrop(Arc<AtomicUsize>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let (open, wait) = gate();
    let counted = dropped.clone();
    green::Builder::new().blocking_threads(1).run(move || {
        let running = ran_tx.clone();
        drop(blocking::spawn(move || {
            wait();
            running.send("running").unwrap();
        }));
        assert!(sleep_until(|| blocking::stats().busy == 1));
        for _ in 0..10 {
            let token = CountDrop(counted.clone());
            let never = ran_tx.clone();
            drop(blocking::spawn(move || {
                let _token = token;
                never.send("queued").unwrap();
            }));
        }
        // A coroutine still waiting on the pool when main returns is torn
        // down with the runtime.
        green::spawn(|| blocking::unblock(|| ()));
    });
    // `run` returned with the first closure still blocked on its gate.
    assert_eq!(dropped.load(Ordering::SeqCst), 10, "queued closures were not dropped at shutdown");
    open.send(()).unwrap();
    assert_eq!(ran.recv_timeout(Duration::from_secs(20)), Ok("running"));
    assert!(ran.recv_timeout(Duration::from_millis(100)).is_err(), "a queued closure ran after shutdown");
}

#[test]
fn threads_start_when_needed_and_retire_when_idle() {
    green::Builder::new().blocking_idle_timeout(Duration::from_millis(20)).run(|| {
        assert_eq!(blocking::stats().threads, 0, "a pool thread started before any work");
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (open, wait) = gate();
                (open, blocking::spawn(wait).unwrap())
            })
            .collect();
        assert!(sleep_until(|| blocking::stats().busy == 3));
        assert_eq!(blocking::stats().threads, 3);
        for (open, handle) in handles {
            open.send(()).unwrap();
            assert!(handle.join().unwrap());
        }
        assert!(sleep_until(|| blocking::stats().threads == 0), "idle threads did not retire");
        assert_eq!(blocking::unblock(|| 5).unwrap(), 5, "the pool starts again after retiring");
    });
}

#[test]
fn a_plain_thread_uses_the_process_pool() {
    let value = std::thread::spawn(|| blocking::unblock(|| 40 + 2).unwrap()).join().unwrap();
    assert_eq!(value, 42);
    let err =
        std::thread::spawn(|| blocking::unblock(|| -> () { panic!("plain") }).unwrap_err()).join().unwrap();
    assert_eq!(err.panic_message(), Some("plain"));
}

#[test]
fn every_worker_of_a_runtime_of_several_uses_the_pool() {
    let sums = green::Builder::new().workers(2).run(|| {
        let handles: Vec<_> = (0..64u64)
            .map(|i| green::spawn_distributed(move || blocking::unblock(move || i * 2).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(sums, 2 * (0..64).sum::<u64>());
}

#[test]
fn a_coroutine_waiting_on_slow_pool_work_is_not_a_deadlock() {
    // Every coroutine is parked, no timer, no I/O: only the pool thread
    // can wake the main coroutine, and the runtime must know it.
    let slept = green::run(|| {
        blocking::unblock(|| {
            let (_keep, never) = mpsc::channel::<()>();
            never.recv_timeout(Duration::from_millis(1_500)).is_err()
        })
        .unwrap()
    });
    assert!(slept);
}

#[test]
fn a_hundred_thousand_closures_through_a_small_queue() {
    let total = green::Builder::new().blocking_threads(4).blocking_queue_limit(16).run(|| {
        let coroutines: Vec<_> = (0..1_000u64)
            .map(|c| {
                green::spawn(move || {
                    (0..100u64).map(|i| blocking::unblock(move || c * 100 + i).unwrap()).sum::<u64>()
                })
            })
            .collect();
        coroutines.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(total, (0..100_000u64).sum::<u64>());
}

#[test]
fn cancelling_many_queued_waiters_keeps_the_queue_bounded() {
    green::Builder::new().blocking_threads(1).blocking_queue_limit(8).run(|| {
        let (open, wait) = gate();
        let holder = blocking::spawn(wait).unwrap();
        assert!(sleep_until(|| blocking::stats().busy == 1));
        for round in 0..2_000 {
            let waiter = green::spawn(move || blocking::unblock(move || round));
            assert!(yield_until(|| blocking::stats().queued == 1));
            waiter.cancel();
            assert!(waiter.join().unwrap().unwrap_err().is_cancelled());
        }
        assert_eq!(blocking::stats().cancelled_queued, 2_000);
        open.send(()).unwrap();
        assert!(holder.join().unwrap());
        assert_eq!(blocking::unblock(|| "after").unwrap(), "after");
    });
}

#[test]
#[should_panic(expected = "blocking_threads(0)")]
fn zero_pool_threads_is_refused_before_the_runtime_starts() {
    green::Builder::new().blocking_threads(0).run(|| ());
}

#[test]
#[should_panic(expected = "blocking_queue_limit(0)")]
fn a_zero_queue_limit_is_refused_before_the_runtime_starts() {
    green::Builder::new().blocking_queue_limit(0).run(|| ());
}

#[test]
fn a_timeout_around_pool_work_cancels_the_wait() {
    let outcome = green::run(|| {
        let (open, wait) = gate();
        let outcome = green::timeout(Duration::from_millis(5), || blocking::unblock(wait));
        open.send(()).unwrap();
        outcome
    });
    // The timeout fired while the closure was running: its wait was
    // cancelled, and the scope reports the elapsed deadline.
    assert!(outcome.is_err());
}
