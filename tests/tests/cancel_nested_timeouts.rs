//! `green::timeout` and `green::deadline` as scopes: the nearest deadline
//! interrupts, and each scope reports `Elapsed` only for its own deadline
//! (`timeout.rs`, `task/cancel_state.rs`). An inner expiry is the inner
//! scope's alone; an outer expiry cancels the inner body too, but the inner
//! scope, whose own deadline has not passed, returns its body's value; when
//! both deadlines have passed, both report. A body that does not block is
//! never cut short, a closed scope cancels nothing later, scopes are per
//! coroutine, and `Elapsed::deadline` is the scope's.
//!
//! Deadlines that must pass during a test are either already in the past
//! when the scope opens (the first blocking call is cancelled at once) or
//! a few milliseconds away; nothing here measures how long anything took.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::channel::{self, RecvTimeoutError};
use green::sync::{Event, WaitError};
use green::{Cancelled, Elapsed};

/// Longer than any test runs: a wait this long ends only by cancellation.
const FOREVER: Duration = Duration::from_secs(3600);

/// A deadline that passes while the test waits on it.
const SHORT: Duration = Duration::from_millis(5);

/// An instant `ago` before now: a deadline that has already passed.
fn past(ago: Duration) -> Instant {
    Instant::now().checked_sub(ago).expect("the monotonic clock has run for more than a second")
}

/// Lets every coroutine that is runnable now, and those they spawn or wake
/// on the way, run until it parks.
fn let_others_park() {
    for _ in 0..3 {
        green::yield_now();
    }
}

#[test]
fn an_inner_expiry_is_reported_by_the_inner_scope_alone_and_the_outer_body_carries_on() {
    green::run(|| {
        let outer = green::timeout(FOREVER, || {
            let inner = green::timeout(SHORT, || green::sleep(FOREVER));
            let after = green::sleep(Duration::from_millis(1));
            (inner.is_err(), after)
        });
        assert_eq!(
            outer,
            Ok((true, Ok(()))),
            "only the inner scope elapsed; the outer body could block again"
        );
    });
}

#[test]
fn an_outer_expiry_cancels_the_inner_body_but_only_the_outer_scope_reports_elapsed() {
    green::run(|| {
        let inner = Cell::new(None);
        let after_inner = Cell::new(None);
        let outer = green::timeout(SHORT, || {
            inner.set(Some(green::timeout(FOREVER, || green::sleep(FOREVER))));
            // Still inside the outer scope, whose deadline has passed:
            // delivery is level-triggered.
            after_inner.set(Some(green::sleep(FOREVER)));
        });
        assert!(outer.is_err(), "the outer deadline passed");
        assert_eq!(
            inner.get(),
            Some(Ok(Err(Cancelled))),
            "the inner scope's own deadline did not pass: it returns its body's value, the cancelled sleep"
        );
        assert_eq!(after_inner.get(), Some(Err(Cancelled)));
    });
}

#[test]
fn when_both_deadlines_have_passed_each_scope_reports_its_own() {
    green::run(|| {
        let outer_at = past(Duration::from_millis(2));
        let inner_at = past(Duration::from_millis(1));
        let inner = Cell::new(None);
        let outer = green::deadline(outer_at, || {
            inner.set(Some(green::deadline(inner_at, || green::sleep(FOREVER))))
        });
        let inner = inner.get().expect("the outer body ran");
        assert_eq!(inner.expect_err("the inner deadline had passed").deadline(), inner_at);
        assert_eq!(outer.expect_err("the outer deadline had passed").deadline(), outer_at);
    });
}

#[test]
fn a_body_that_does_not_block_returns_its_value_even_past_its_deadline() {
    green::run(|| {
        assert_eq!(green::deadline(past(Duration::from_millis(1)), || 7), Ok(7));
        let at = Instant::now() + Duration::from_millis(1);
        let value = green::deadline(at, || {
            while Instant::now() <= at {
                std::hint::spin_loop(); // computing, not blocking: nothing can interrupt it
            }
            8
        });
        assert_eq!(value, Ok(8));
    });
}

#[test]
fn a_scope_that_returned_cancels_nothing_when_its_deadline_passes_later() {
    green::run(|| {
        assert_eq!(green::timeout(Duration::from_millis(2), || 42), Ok(42));
        assert_eq!(
            green::sleep(Duration::from_millis(10)),
            Ok(()),
            "the closed scope's deadline came and went"
        );
    });
}

#[test]
fn a_deadline_in_the_past_cancels_the_first_blocking_call() {
    green::run(|| {
        let before = Cell::new(false);
        let slept = Cell::new(None);
        let outcome = green::deadline(past(Duration::from_millis(1)), || {
            before.set(true);
            slept.set(Some(green::sleep(FOREVER)));
        });
        assert!(outcome.is_err());
        assert!(before.get(), "the body ran up to its first blocking call");
        assert_eq!(slept.get(), Some(Err(Cancelled)), "which failed at once");
    });
}

#[test]
fn timeouts_in_sibling_coroutines_are_independent() {
    green::run(|| {
        let release = Rc::new(Event::new());
        let waiter = |timeout: Duration| {
            let release = release.clone();
            green::spawn(move || green::timeout(timeout, || release.wait()))
        };
        let short = waiter(SHORT);
        let long = waiter(FOREVER);
        let_others_park();
        let short = short.join().unwrap();
        assert!(short.is_err(), "the short scope elapsed");
        assert!(!long.is_finished(), "its sibling's scope did not");
        release.set();
        assert_eq!(long.join().unwrap(), Ok(Ok(())));
    });
}

#[test]
fn a_timeout_belongs_to_its_coroutine_not_to_the_coroutines_it_spawns() {
    green::run(|| {
        let release = Rc::new(Event::new());
        let mut spawned = None;
        let outcome = green::timeout(SHORT, || {
            let release = release.clone();
            spawned = Some(green::spawn(move || release.wait()));
            green::sleep(FOREVER)
        });
        assert!(outcome.is_err(), "the spawner's scope elapsed");
        let spawned = spawned.expect("the body ran");
        assert!(!spawned.is_finished(), "the coroutine it spawned was not cancelled");
        release.set();
        assert_eq!(spawned.join().unwrap(), Ok(()));
    });
}

#[test]
fn a_timeout_around_a_structured_scope_cancels_its_children() {
    green::run(|| {
        let release = Event::new(); // never set
        let children = Cell::new(0);
        let mut scope = None;
        let outcome = green::timeout(SHORT, || {
            scope = Some(green::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| {
                        let waited = release.wait();
                        if waited == Err(WaitError::Cancelled) {
                            children.set(children.get() + 1);
                        }
                        waited
                    });
                }
            }));
        });
        assert!(outcome.is_err(), "the deadline passed while the scope waited for its children");
        let scope = scope.expect("the body ran");
        assert!(scope.is_err_and(|err| err.is_cancelled()), "the scope reports its parent's cancellation");
        assert_eq!(children.get(), 3, "every child's wait was cancelled");
    });
}

#[test]
fn elapsed_carries_the_deadline_of_its_own_scope() {
    green::run(|| {
        let at = Instant::now() + Duration::from_millis(2);
        let err = green::deadline(at, || green::sleep(FOREVER)).expect_err("the deadline passed");
        assert_eq!(err.deadline(), at);

        let before = Instant::now();
        let err = green::timeout(SHORT, || green::sleep(FOREVER)).expect_err("the deadline passed");
        let after = Instant::now();
        assert!(before + SHORT <= err.deadline() && err.deadline() <= after);

        let inner_at = Instant::now() + Duration::from_millis(2);
        let outer = green::timeout(FOREVER, || green::deadline(inner_at, || green::sleep(FOREVER)));
        let inner: Result<_, Elapsed> = outer.expect("the outer deadline did not pass");
        assert_eq!(inner.expect_err("the inner deadline passed").deadline(), inner_at);
    });
}

#[test]
fn an_operation_timeout_and_a_scope_deadline_are_told_apart() {
    green::run(|| {
        let (_tx, rx) = channel::unbounded::<u32>();
        let mut received = None;
        let outcome =
            green::deadline(past(Duration::from_millis(1)), || received = Some(rx.recv_timeout(FOREVER)));
        assert!(outcome.is_err());
        assert_eq!(received, Some(Err(RecvTimeoutError::Cancelled)), "the scope cancelled the receive");

        let outcome = green::timeout(FOREVER, || rx.recv_timeout(Duration::from_millis(1)));
        assert_eq!(
            outcome,
            Ok(Err(RecvTimeoutError::Timeout)),
            "the receive's own timeout is not the scope's"
        );
    });
}

#[test]
fn a_scope_whose_body_panics_is_closed_on_the_way_out() {
    green::run(|| {
        let outer = green::timeout(FOREVER, || {
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                let _: Result<(), Elapsed> =
                    green::timeout(Duration::from_millis(1), || panic!("in the body"));
            }));
            assert!(caught.is_err());
            // Were the inner scope still open, its deadline would cancel
            // this sleep.
            green::sleep(Duration::from_millis(10))
        });
        assert_eq!(outer, Ok(Ok(())));
    });
}
