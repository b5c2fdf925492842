//! `green::sync::Event`: `set` wakes every waiter exactly once, whether it
//! is a coroutine of this runtime, of another runtime, or a plain thread;
//! `clear` makes waits wait again; an interrupted wait (timeout,
//! cancellation, a coroutine unwound at shutdown) leaves the event as if
//! the waiter had never come.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use green::sync::{Event, WaitError};
use green_tests::thread_cpu_time;

/// Short enough to keep the suite fast; long enough not to matter: no test
/// depends on how long a timeout really took.
const SHORT: Duration = Duration::from_millis(20);

/// Runs `f` in a destructor: how a test gets code to run while a runtime
/// shuts down.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn event_is_send_and_sync() {
    assert_send_sync::<Event>();
    assert_send_sync::<WaitError>();
}

#[test]
fn set_wakes_every_waiter_exactly_once_coroutines_other_runtimes_and_threads() {
    const HERE: usize = 20;
    const THERE: usize = 10;
    const THREADS: usize = 5;
    let event = Arc::new(Event::new());
    let woken = Arc::new(AtomicUsize::new(0));
    // Counts every party that is about to wait, so that `set` comes after
    // all of them have at least started (most will be parked by then).
    let started = Arc::new(AtomicUsize::new(0));

    let wait = {
        let (event, woken, started) = (event.clone(), woken.clone(), started.clone());
        move || {
            started.fetch_add(1, Ordering::SeqCst);
            let result = event.wait();
            woken.fetch_add(1, Ordering::SeqCst);
            result
        }
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let wait = wait.clone();
            thread::spawn(wait)
        })
        .collect();
    let other_runtime = {
        let wait = wait.clone();
        thread::spawn(move || {
            green::run(move || {
                let waiters: Vec<_> = (0..THERE).map(|_| green::spawn(wait.clone())).collect();
                waiters.into_iter().map(|w| w.join().unwrap()).collect::<Vec<_>>()
            })
        })
    };
    green::run(|| {
        let waiters: Vec<_> = (0..HERE).map(|_| green::spawn(wait.clone())).collect();
        // The coroutines of this runtime all run and park before main
        // goes on.
        green::yield_now();
        assert_eq!(woken.load(Ordering::SeqCst), 0, "nobody passes a clear event");
        while started.load(Ordering::SeqCst) < HERE + THERE + THREADS {
            green::yield_now();
        }
        event.set();
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), Ok(()));
        }
    });
    for thread in threads {
        assert_eq!(thread.join().unwrap(), Ok(()));
    }
    assert_eq!(other_runtime.join().unwrap(), vec![Ok(()); THERE]);
    assert_eq!(woken.load(Ordering::SeqCst), HERE + THERE + THREADS);
}

#[test]
fn a_set_event_lets_waits_through_until_it_is_cleared() {
    green::run(|| {
        let event = Event::new();
        assert!(!event.is_set());
        assert_eq!(event.wait_timeout(SHORT), Err(WaitError::TimedOut));
        event.set();
        event.set(); // setting twice is harmless
        assert!(event.is_set());
        for _ in 0..3 {
            assert_eq!(event.wait(), Ok(()));
            assert_eq!(event.wait_timeout(Duration::ZERO), Ok(()), "a set event needs no time");
        }
        event.clear();
        assert!(!event.is_set());
        assert_eq!(event.wait_timeout(SHORT), Err(WaitError::TimedOut));
        event.set();
        assert_eq!(event.wait(), Ok(()));
    });
}

#[test]
fn waiters_woken_by_a_set_are_not_stopped_by_a_clear_right_after() {
    green::run(|| {
        let event = Arc::new(Event::new());
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let event = event.clone();
                green::spawn(move || event.wait())
            })
            .collect();
        green::yield_now();
        // A pulse: set and clear before any woken waiter has run.
        event.set();
        event.clear();
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), Ok(()));
        }
        assert!(!event.is_set());
    });
}

#[test]
fn a_timed_out_waiter_leaves_and_the_others_still_wake() {
    green::run(|| {
        let event = Arc::new(Event::new());
        let patient: Vec<_> = (0..3)
            .map(|_| {
                let event = event.clone();
                green::spawn(move || event.wait())
            })
            .collect();
        let impatient = {
            let event = event.clone();
            green::spawn(move || event.wait_timeout(SHORT))
        };
        let from_thread = {
            let event = event.clone();
            thread::spawn(move || event.wait_timeout(SHORT))
        };
        assert_eq!(impatient.join().unwrap(), Err(WaitError::TimedOut));
        assert_eq!(from_thread.join().unwrap(), Err(WaitError::TimedOut));
        event.set();
        for waiter in patient {
            assert_eq!(waiter.join().unwrap(), Ok(()));
        }
    });
}

#[test]
fn a_deadline_in_the_past_times_out_at_once_unless_the_event_is_set() {
    let event = Event::new();
    let past = std::time::Instant::now();
    assert_eq!(event.wait_deadline(past), Err(WaitError::TimedOut));
    green::run(|| assert_eq!(event.wait_deadline(past), Err(WaitError::TimedOut)));
    event.set();
    assert_eq!(event.wait_deadline(past), Ok(()));
}

#[test]
fn a_huge_timeout_means_no_timeout() {
    green::run(|| {
        let event = Arc::new(Event::new());
        let waiter = {
            let event = event.clone();
            green::spawn(move || event.wait_timeout(Duration::MAX))
        };
        green::yield_now();
        event.set();
        assert_eq!(waiter.join().unwrap(), Ok(()));
    });
}

#[test]
fn a_plain_thread_wakes_a_coroutine_and_a_coroutine_wakes_a_plain_thread() {
    let to_coroutine = Arc::new(Event::new());
    let to_thread = Arc::new(Event::new());
    let thread = {
        let (to_coroutine, to_thread) = (to_coroutine.clone(), to_thread.clone());
        thread::spawn(move || {
            to_coroutine.set();
            to_thread.wait()
        })
    };
    green::run(|| {
        assert_eq!(to_coroutine.wait(), Ok(()));
        to_thread.set();
    });
    assert_eq!(thread.join().unwrap(), Ok(()));
}

#[test]
fn coroutines_of_two_runtimes_wake_each_other_back_and_forth() {
    const ROUNDS: usize = 100;
    let ping: Arc<Vec<Event>> = Arc::new((0..ROUNDS).map(|_| Event::new()).collect());
    let pong: Arc<Vec<Event>> = Arc::new((0..ROUNDS).map(|_| Event::new()).collect());
    let other = {
        let (ping, pong) = (ping.clone(), pong.clone());
        thread::spawn(move || {
            green::run(move || {
                for round in 0..ROUNDS {
                    ping[round].wait().unwrap();
                    pong[round].set();
                }
            })
        })
    };
    green::run(|| {
        for round in 0..ROUNDS {
            ping[round].set();
            assert_eq!(pong[round].wait(), Ok(()), "round {round}");
        }
    });
    other.join().unwrap();
}

#[test]
fn a_wait_in_a_destructor_during_shutdown_is_cancelled_and_leaves_the_event_usable() {
    let event = Arc::new(Event::new());
    let seen = Arc::new(Mutex::new(None));
    green::run(|| {
        let (event, seen) = (event.clone(), seen.clone());
        green::spawn(move || {
            let _on_drop = OnDrop(move || *seen.lock().unwrap() = Some(event.wait()));
            let _ = green::sleep(Duration::MAX);
        });
        green::yield_now();
    });
    assert_eq!(*seen.lock().unwrap(), Some(Err(WaitError::Cancelled)));
    assert!(!event.is_set(), "cancellation did not set the event");
    event.set();
    assert_eq!(event.wait(), Ok(()));
}

#[test]
fn a_coroutine_unwound_while_it_waits_does_not_stop_later_sets() {
    let event = Arc::new(Event::new());
    green::run(|| {
        for _ in 0..3 {
            let event = event.clone();
            green::spawn(move || event.wait());
        }
        green::yield_now();
        // Main returns: the three parked waiters are unwound.
    });
    // The unwound waiters are gone; a set and a new wait work as usual.
    event.set();
    green::run(|| assert_eq!(event.wait(), Ok(())));
}

#[test]
fn cancellation_and_timeouts_convert_into_io_errors() {
    let timed_out = std::io::Error::from(WaitError::TimedOut);
    assert_eq!(timed_out.kind(), std::io::ErrorKind::TimedOut);
    assert!(!green::is_cancelled(&timed_out));
    assert!(green::is_cancelled(&std::io::Error::from(WaitError::Cancelled)));
}

/// A coroutine waiting on an event parks: its runtime's thread sits idle
/// (bounds CPU use like the `idle_cpu` test, not speed).
#[test]
fn a_runtime_whose_coroutines_wait_on_an_event_uses_almost_no_cpu() {
    const NAP: Duration = Duration::from_millis(300);
    const BUDGET: Duration = Duration::from_millis(50);
    let used = green::run(|| {
        green::yield_now();
        let event = Arc::new(Event::new());
        let before = thread_cpu_time().expect("getrusage");
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let event = event.clone();
                green::spawn(move || event.wait_timeout(NAP))
            })
            .collect();
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), Err(WaitError::TimedOut));
        }
        thread_cpu_time().expect("getrusage") - before
    });
    assert!(used < BUDGET, "the thread used {used:?} of CPU while its coroutines waited {NAP:?}");
}

#[test]
fn a_cancelled_waiter_reports_it_and_the_other_waiters_still_wake() {
    green::run(|| {
        let event = Arc::new(Event::new());
        let cancelled = {
            let event = event.clone();
            green::spawn(move || event.wait())
        };
        let patient = {
            let event = event.clone();
            green::spawn(move || event.wait())
        };
        green::yield_now();
        cancelled.cancel();
        assert_eq!(cancelled.join().unwrap(), Err(WaitError::Cancelled));
        assert!(!event.is_set() && !patient.is_finished());
        event.set();
        assert_eq!(patient.join().unwrap(), Ok(()));
    });
}

#[test]
fn a_timeout_scope_cancels_a_wait() {
    green::run(|| {
        let event = Event::new();
        let outcome = green::timeout(SHORT, || event.wait());
        assert!(outcome.is_err(), "the scope reports its deadline: {outcome:?}");
        // Inside the scope, the wait itself said why it ended.
        let inner = green::timeout(SHORT, || {
            let result = event.wait();
            assert_eq!(result, Err(WaitError::Cancelled));
        });
        assert!(inner.is_err());
        // A set event needs no waiting, so a timeout scope does not matter.
        event.set();
        assert_eq!(green::timeout(SHORT, || event.wait()), Ok(Ok(())));
    });
}
