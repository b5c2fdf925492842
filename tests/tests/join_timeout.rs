//! Waiting for a coroutine without giving up its handle:
//! `JoinHandle::join_timeout`, `join_deadline` and `wait` keep the handle
//! when the time runs out or the caller is cancelled, so that it can be
//! joined again, cancelled, or dropped (detaching the coroutine). Durations
//! and deadlines too far away to represent mean no time limit.
//!
//! Coroutines that must still be running when a wait times out wait on a
//! channel that the test fills only afterwards; nothing here measures how
//! long anything took.

use std::time::{Duration, Instant};

use green::JoinHandle;
use green::channel::{OneshotSender, RecvError, oneshot};
use green_tests::DropCounter;

/// Longer than any test runs.
const FOREVER: Duration = Duration::from_secs(3600);

/// A coroutine that returns what it receives, and the sender to release it.
fn released_by_channel() -> (JoinHandle<Result<u32, RecvError>>, OneshotSender<u32>) {
    let (tx, rx) = oneshot::<u32>();
    (green::spawn(move || rx.recv()), tx)
}

#[test]
fn a_timed_out_join_keeps_the_handle_and_a_later_join_succeeds() {
    green::run(|| {
        let (mut handle, release) = released_by_channel();
        let err = handle.join_timeout(Duration::from_millis(1)).expect_err("still waiting");
        assert!(err.is_timeout(), "{err}");
        assert!(!err.is_cancelled() && !err.is_interrupted() && !err.is_panic());
        assert!(!handle.is_finished());
        // Time out again, with a deadline this time.
        let err = handle.join_deadline(Instant::now()).expect_err("still waiting");
        assert!(err.is_timeout(), "{err}");
        release.send(7).expect("the coroutine waits");
        assert_eq!(handle.join_timeout(FOREVER).expect("it finished"), Ok(7));
        let again = handle.join_timeout(FOREVER).expect_err("the result was taken");
        assert!(again.is_already_joined(), "{again}");
        assert!(handle.join().expect_err("still spent").is_already_joined());
    });
}

#[test]
fn a_timed_out_join_then_cancel_then_join_reports_the_cancellation() {
    green::run(|| {
        // Started and parked: cancelling makes its wait fail, and it
        // returns that.
        let (mut started, _release) = released_by_channel();
        green::yield_now();
        assert!(started.join_timeout(Duration::ZERO).expect_err("parked").is_timeout());
        started.cancel();
        let returned = started.join().expect("it returned");
        assert!(returned.is_err(), "its receive was cancelled: {returned:?}");

        // Never started: cancelling means it never runs, and the join says
        // so.
        let ran = std::rc::Rc::new(std::cell::Cell::new(false));
        let flag = ran.clone();
        let mut unstarted = green::spawn(move || flag.set(true));
        assert!(unstarted.join_timeout(Duration::ZERO).expect_err("not run yet").is_timeout());
        unstarted.cancel();
        let err = unstarted.join().expect_err("it never ran");
        assert!(err.is_cancelled(), "{err}");
        assert!(!ran.get());
    });
}

#[test]
fn a_cancelled_caller_gets_an_interrupted_error_and_keeps_a_usable_handle() {
    green::run(|| {
        let (target, release) = released_by_channel();
        let caller = green::spawn(move || {
            let mut target = target;
            let first = target.join_timeout(FOREVER).map(|_| ());
            // Cancellation is level-triggered: a second wait fails the same
            // way, and the handle is still whole.
            let second = target.wait();
            (first, second, target)
        });
        green::yield_now(); // let the caller park in its join
        caller.cancel();
        let (first, second, mut target) = caller.join().expect("the caller returned");
        let first = first.expect_err("interrupted");
        assert!(first.is_interrupted(), "{first}");
        assert!(second.expect_err("interrupted again").is_interrupted());
        assert!(!target.is_finished(), "the target was not cancelled");
        release.send(3).expect("the target waits");
        assert!(target.wait().is_ok());
        assert!(target.is_finished());
        assert_eq!(target.join().expect("it finished"), Ok(3));
    });
}

#[test]
fn wait_under_a_timeout_scope_keeps_the_handle() {
    green::run(|| {
        let (mut handle, release) = released_by_channel();
        let waited = green::timeout(Duration::from_millis(1), || handle.wait());
        assert!(waited.is_err(), "the deadline passed first: {waited:?}");
        let waited = green::timeout(Duration::from_millis(1), || handle.join_timeout(FOREVER));
        assert!(waited.is_err(), "the scope's deadline passed first: {waited:?}");
        release.send(9).expect("the coroutine waits");
        assert!(handle.wait().is_ok());
        // `wait` leaves the result in the handle.
        assert_eq!(handle.join().expect("it finished"), Ok(9));
    });
}

#[test]
fn a_result_that_is_ready_is_returned_even_with_no_time_left() {
    green::run(|| {
        let mut handle = green::spawn(|| 5);
        green::yield_now();
        assert!(handle.is_finished());
        assert_eq!(handle.join_timeout(Duration::ZERO).expect("ready"), 5);

        let mut handle = green::spawn(|| 6);
        green::yield_now();
        let past = Instant::now().checked_sub(Duration::from_millis(1)).unwrap_or_else(Instant::now);
        assert_eq!(handle.join_deadline(past).expect("ready"), 6);
    });
}

#[test]
fn durations_and_deadlines_too_far_away_mean_no_time_limit() {
    green::run(|| {
        let (mut handle, release) = released_by_channel();
        let (mut far, release_far) = released_by_channel();
        green::spawn(move || {
            green::yield_now();
            let _ = release.send(1);
            let _ = release_far.send(2);
        });
        assert_eq!(handle.join_timeout(Duration::MAX).expect("no limit"), Ok(1));
        let far_away = Instant::now().checked_add(Duration::from_secs(100 * 365 * 24 * 3600));
        let far_away = far_away.expect("a century fits in an Instant");
        assert_eq!(far.join_deadline(far_away).expect("no limit"), Ok(2));
        // And the scope functions with the same arguments.
        assert_eq!(green::timeout(Duration::MAX, || green::sleep(Duration::ZERO)), Ok(Ok(())));
        assert_eq!(green::deadline(far_away, || green::sleep(Duration::from_millis(1))), Ok(Ok(())));
    });
}

#[test]
fn a_handle_dropped_after_a_timed_out_join_detaches_the_coroutine() {
    let counter = DropCounter::new();
    let finished = std::rc::Rc::new(std::cell::Cell::new(false));
    green::run(|| {
        let (tx, rx) = oneshot::<()>();
        let token = counter.token();
        let flag = finished.clone();
        let mut handle = green::spawn(move || {
            let _token = token;
            rx.recv().expect("released");
            flag.set(true);
        });
        assert!(handle.join_timeout(Duration::from_millis(1)).expect_err("waiting").is_timeout());
        drop(handle);
        tx.send(()).expect("still running after its handle was dropped");
        for _ in 0..3 {
            green::yield_now();
        }
        assert!(finished.get(), "the detached coroutine ran to the end");
        assert_eq!(counter.dropped(), 1);
    });
}

#[test]
fn a_joined_coroutine_that_panics_is_reported_once() {
    green::run(|| {
        let mut handle = green::spawn(|| -> u32 { panic!("boom") });
        let err = handle.join_timeout(FOREVER).expect_err("it panicked");
        assert!(err.is_panic(), "{err}");
        assert_eq!(err.panic_message(), Some("boom"));
        assert!(handle.join().expect_err("spent").is_already_joined());
    });
}

#[test]
fn the_enclosing_scope_still_reports_its_own_expiry_around_a_timed_join() {
    green::run(|| {
        let (mut handle, _release) = released_by_channel();
        // The inner join's limit is an hour, the scope's a millisecond:
        // the scope's deadline interrupts the join, and the scope reports it.
        let outcome = green::timeout(Duration::from_millis(1), || handle.join_timeout(FOREVER));
        let err = outcome.expect_err("the scope's deadline passed");
        assert!(err.deadline() <= Instant::now());
        assert_eq!(green::sleep(Duration::ZERO), Ok(()), "the scope is closed");
        handle.cancel();
        assert!(handle.join().expect("returned").is_err());
    });
}
