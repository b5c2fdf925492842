//! Cancellation is level-triggered and delivered at parks: once a
//! coroutine is cancelled, every blocking call that has to wait fails, as
//! often as it is called, until the coroutine returns; code between
//! blocking calls is never interrupted; a coroutine cancelled before it
//! ran never runs; cancelling a finished coroutine does nothing; and a
//! `green::shield` holds the request back until the shielded code is done,
//! while a timeout opened inside the shield still applies.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::rc::Rc;
use std::time::Duration;

use green::channel::{self, RecvError};
use green::net::UnixStream;
use green::sync::{Event, WaitError};
use green::{Cancelled, TaskGroup};
use green_tests::DropCounter;

/// Longer than any test runs: a wait this long ends only by cancellation.
const FOREVER: Duration = Duration::from_secs(3600);

/// How many times the loops below block again after being cancelled.
const ROUNDS: usize = 1000;

/// Lets every coroutine that is runnable now, and those they spawn or wake
/// on the way, run until it parks. `yield_now` puts the caller behind
/// everyone runnable, so each round gives each of them a turn.
fn let_others_park() {
    for _ in 0..3 {
        green::yield_now();
    }
}

#[test]
fn a_sleep_loop_that_ignores_the_cancellation_gets_it_every_time_and_ends() {
    green::run(|| {
        let sleeper =
            green::spawn(|| (0..ROUNDS).filter(|_| green::sleep(FOREVER) == Err(Cancelled)).count());
        let_others_park();
        sleeper.cancel();
        assert_eq!(sleeper.join().unwrap(), ROUNDS, "every sleep after the cancel failed at once");
    });
}

#[test]
fn a_read_loop_that_ignores_the_cancellation_gets_it_every_time_and_ends() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (reader, _writer) = UnixStream::pair()?;
        let reading = green::spawn(move || {
            let cancelled = (0..ROUNDS)
                .filter(|_| (&reader).read(&mut [0; 8]).is_err_and(|err| green::is_cancelled(&err)))
                .count();
            // A loop that retries until it has its bytes (and retries
            // `Interrupted`, as `read_exact` does) ends too: the
            // cancellation is not `Interrupted`.
            let exact = (&reader).read_exact(&mut [0; 8]);
            (cancelled, exact)
        });
        let_others_park();
        reading.cancel();
        let (cancelled, exact) = reading.join().unwrap();
        assert_eq!(cancelled, ROUNDS);
        assert!(exact.is_err_and(|err| green::is_cancelled(&err)));
        Ok(())
    })
}

#[test]
fn a_receive_loop_that_ignores_the_cancellation_gets_it_every_time_and_ends() {
    green::run(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let receiving = {
            let rx = rx.clone();
            green::spawn(move || (0..ROUNDS).filter(|_| rx.recv() == Err(RecvError::Cancelled)).count())
        };
        let_others_park();
        receiving.cancel();
        assert_eq!(receiving.join().unwrap(), ROUNDS);
        tx.send(1).unwrap();
        assert_eq!(rx.try_recv(), Ok(1), "none of the cancelled receives left a receiver behind");
    });
}

/// Delivery happens at a park (DESIGN.md, "Cancellation"): a call that
/// can complete without waiting does, so a cancelled coroutine can still
/// take what is ready, for instance to clean up.
#[test]
fn a_cancelled_coroutine_still_gets_what_is_ready_without_waiting() {
    green::run(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let parked_on = Rc::new(Event::new());
        let receiving = {
            let parked_on = parked_on.clone();
            green::spawn(move || (parked_on.wait(), rx.recv(), rx.recv()))
        };
        let_others_park();
        receiving.cancel(); // it is runnable now, and runs once this coroutine parks
        tx.send(1).unwrap();
        let (waited, ready, would_wait) = receiving.join().unwrap();
        assert_eq!(waited, Err(WaitError::Cancelled));
        assert_eq!(ready, Ok(1), "the message was there: no wait, no cancellation");
        assert_eq!(would_wait, Err(RecvError::Cancelled));
    });
}

#[test]
fn a_coroutine_cancelled_before_it_ran_never_runs_and_its_closure_is_dropped() {
    green::run(|| {
        let counter = DropCounter::new();
        let ran = Rc::new(Cell::new(false));
        let handle = {
            let (ran, token) = (ran.clone(), counter.token());
            green::spawn(move || {
                let _token = token;
                ran.set(true);
            })
        };
        handle.cancel();
        let err = handle.join().expect_err("it never ran, so it has no value");
        assert!(err.is_cancelled(), "{err}");
        assert!(!ran.get());
        assert_eq!(counter.dropped(), 1, "what the closure captured was dropped");
    });
}

#[test]
fn a_group_member_cancelled_before_it_ran_never_runs() {
    green::run(|| {
        let counter = DropCounter::new();
        let ran = Rc::new(Cell::new(0));
        let mut group = TaskGroup::new();
        for _ in 0..3 {
            let (ran, token) = (ran.clone(), counter.token());
            group.spawn(move || {
                let _token = token;
                ran.set(ran.get() + 1);
            });
        }
        group.cancel_all();
        let results = group.join_all();
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(|(_, result)| result.as_ref().is_err_and(|err| err.is_cancelled())));
        assert_eq!(ran.get(), 0);
        assert_eq!(counter.dropped(), 3);
    });
}

#[test]
fn cancelling_a_finished_coroutine_changes_nothing() {
    green::run(|| {
        let handle = green::spawn(|| 42);
        let_others_park();
        assert!(handle.is_finished());
        handle.cancel();
        handle.cancel();
        assert_eq!(handle.join().unwrap(), 42, "it returned before the cancel, and its value is kept");
        assert_eq!(green::sleep(Duration::from_millis(1)), Ok(()), "nobody else was cancelled");
    });
}

#[test]
fn a_coroutine_cancelled_while_runnable_runs_on_until_its_next_blocking_call() {
    green::run(|| {
        let steps = Rc::new(RefCell::new(Vec::new()));
        let handle = {
            let steps = steps.clone();
            green::spawn(move || {
                steps.borrow_mut().push("started");
                green::yield_now(); // runnable, not parked, when it is cancelled
                steps.borrow_mut().push("ran on after the cancel");
                green::yield_now(); // yielding is not a cancellation point
                steps.borrow_mut().push("and on");
                green::sleep(FOREVER)
            })
        };
        green::yield_now(); // it starts and yields back
        assert_eq!(*steps.borrow(), ["started"]);
        handle.cancel();
        assert_eq!(handle.join().unwrap(), Err(Cancelled), "delivered at the first blocking call");
        assert_eq!(*steps.borrow(), ["started", "ran on after the cancel", "and on"]);
    });
}

#[test]
fn a_cancel_inside_a_shield_is_delivered_when_the_shield_ends() {
    green::run(|| {
        let release = Rc::new(Event::new());
        let handle = {
            let release = release.clone();
            green::spawn(move || {
                let shielded = green::shield(|| release.wait());
                let after = green::sleep(FOREVER);
                (shielded, after)
            })
        };
        let_others_park();
        handle.cancel();
        let_others_park();
        assert!(!handle.is_finished(), "the shielded wait was not interrupted");
        release.set();
        assert_eq!(handle.join().unwrap(), (Ok(()), Err(Cancelled)));
    });
}

#[test]
fn every_blocking_call_inside_a_shield_completes_after_a_cancel() {
    green::run(|| {
        let parked_on = Rc::new(Event::new());
        let handle = {
            let parked_on = parked_on.clone();
            green::spawn(move || {
                let first = parked_on.wait();
                let shielded = green::shield(|| {
                    (0..3).map(|_| green::sleep(Duration::from_millis(1))).collect::<Vec<_>>()
                });
                (first, shielded, green::sleep(FOREVER))
            })
        };
        let_others_park();
        handle.cancel();
        let (first, shielded, after) = handle.join().unwrap();
        assert_eq!(first, Err(WaitError::Cancelled));
        assert_eq!(shielded, [Ok(()), Ok(()), Ok(())], "the request is hidden inside the shield");
        assert_eq!(after, Err(Cancelled), "and seen again after it");
    });
}

#[test]
fn a_timeout_opened_inside_a_shield_still_applies() {
    green::run(|| {
        let parked_on = Rc::new(Event::new());
        let handle = {
            let parked_on = parked_on.clone();
            green::spawn(move || {
                let first = parked_on.wait();
                let mut inner = None;
                let timed = green::shield(|| {
                    green::timeout(Duration::from_millis(5), || inner = Some(green::sleep(FOREVER)))
                });
                (first, timed.is_err(), inner)
            })
        };
        let_others_park();
        handle.cancel();
        let (first, elapsed, inner) = handle.join().unwrap();
        assert_eq!(first, Err(WaitError::Cancelled));
        assert!(elapsed, "the timeout inside the shield reports that its deadline passed");
        assert_eq!(inner, Some(Err(Cancelled)), "the sleep it cut short");
    });
}

#[test]
fn a_cancel_request_inside_a_timeout_scope_is_not_reported_as_a_timeout() {
    green::run(|| {
        let handle = green::spawn(|| green::timeout(FOREVER, || green::sleep(FOREVER)));
        let_others_park();
        handle.cancel();
        assert_eq!(
            handle.join().unwrap(),
            Ok(Err(Cancelled)),
            "the scope's own deadline did not pass: it returns the body's value, the sleep's error"
        );
    });
}
