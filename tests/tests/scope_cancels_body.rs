//! A failing child of `green::scope` cancels its siblings *and the scope's
//! body* (trio's nursery rule): the body runs in the parent coroutine, and
//! its blocking calls fail with cancellation errors from the failure until
//! the body returns, so `scope` returns the failure promptly. Only the
//! body: the parent's code after the scope, an enclosing scope's body, and
//! the parent's own cancel request are left as they were. A shield inside
//! the body holds the cancellation off until it closes; a timeout inside
//! the body does not report the scope's cancellation as its own expiry.
//!
//! Most bodies here block on a [`fallback`] wait, which a helper coroutine
//! releases once every other coroutine has had several turns: a body that
//! the failure does not cancel gets `Ok` and the test fails instead of
//! hanging. The sleeping body of the first test runs in a child process,
//! which is killed if it hangs. Nothing here measures how long anything
//! took.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::time::Duration;

use green::channel::{OneshotReceiver, RecvError, oneshot};
use green::net::UnixStream;
use green::{Cancelled, ScopeError, scope};
use green_tests::{DropCounter, describe, run_in_child_or_hang};

/// Longer than any test runs: a wait this long ends only by cancellation.
const FOREVER: Duration = Duration::from_secs(3600);

/// Lets every coroutine that is runnable now run until it parks, and those
/// it wakes on the way.
fn let_others_run() {
    for _ in 0..10 {
        green::yield_now();
    }
}

/// A wait for the body that a cancellation interrupts, and that a helper
/// coroutine ends with `Ok` after the others have had their turns (the
/// failing child among them), in case nothing cancelled it.
fn fallback() -> OneshotReceiver<()> {
    let (release, wait) = oneshot();
    green::spawn(move || {
        let_others_run();
        let _ = release.send(());
    });
    wait
}

#[test]
fn a_failing_child_cancels_the_sleeping_body_and_the_parent_sleeps_normally_afterwards() {
    let test = "a_failing_child_cancels_the_sleeping_body_and_the_parent_sleeps_normally_afterwards";
    let output = run_in_child_or_hang(test, Duration::from_secs(60), || {
        green::run(|| {
            let cancelled_sleeps = Cell::new(0);
            let outcome = scope(|s| {
                s.spawn(|| {
                    green::yield_now();
                    Err::<(), _>("the child failed")
                });
                // A body that ignores the first error: every later sleep
                // fails too (level-triggered), until it gives up.
                for _ in 0..3 {
                    if green::sleep(FOREVER) == Err(Cancelled) {
                        cancelled_sleeps.set(cancelled_sleeps.get() + 1);
                    }
                }
                "the body's value"
            });
            match outcome {
                Err(ScopeError::Failed { error, .. }) => assert_eq!(error, "the child failed"),
                other => panic!("expected the child's failure, got {other:?}"),
            }
            assert_eq!(cancelled_sleeps.get(), 3, "every sleep of the body was cancelled");
            assert_eq!(
                green::sleep(Duration::from_millis(1)),
                Ok(()),
                "the parent is not cancelled afterwards"
            );
            assert_eq!(green::sleep(Duration::ZERO), Ok(()));
        });
    });
    match output {
        Ok(Some(output)) => assert!(output.status.success(), "{}", describe(&output)),
        Ok(None) => panic!("the scope never returned: its body was not cancelled"),
        Err(err) => panic!("cannot run the child process: {err}"),
    }
}

#[test]
fn a_panicking_child_cancels_the_body_blocked_in_a_read() -> io::Result<()> {
    green::run(|| {
        let (reader, writer) = UnixStream::pair()?;
        let read = Cell::new(None);
        let outcome = scope(|s| {
            s.spawn(|| -> Result<(), &str> {
                green::yield_now();
                panic!("child exploded")
            });
            // The fallback: a byte, once the others have had their turns.
            green::spawn(move || {
                let_others_run();
                let _ = (&writer).write(b"x");
            });
            read.set(Some((&reader).read(&mut [0; 8])));
        });
        assert!(matches!(outcome, Err(ScopeError::Panicked { .. })), "{outcome:?}");
        let err = read.take().expect("the body read").expect_err("the read was cancelled");
        assert!(green::is_cancelled(&err), "{err}");
        Ok(())
    })
}

#[test]
fn a_failure_reaches_a_runnable_body_at_its_next_wait_and_not_after_the_body() {
    green::run(|| {
        let waited = Cell::new(None);
        let outcome = scope(|s| {
            s.spawn(|| Err::<(), _>("failed at once"));
            let wait = fallback();
            // The child fails while the body is runnable, not parked: no
            // one wakes it, but its next wait sees the cancellation.
            green::yield_now();
            green::yield_now();
            waited.set(Some(wait.recv()));
        });
        assert_eq!(outcome.err().and_then(ScopeError::into_error), Some("failed at once"));
        assert_eq!(waited.take(), Some(Err(RecvError::Cancelled)));

        // A failure after the body has returned finds the body's frame
        // closed: it cancels the siblings, not the parent.
        let outcome = scope(|s| {
            s.spawn(|| {
                let_others_run();
                Err::<(), _>("late")
            });
            "returned before the failure"
        });
        assert_eq!(outcome.err().and_then(ScopeError::into_error), Some("late"));
        assert_eq!(green::sleep(Duration::from_millis(1)), Ok(()));
    });
}

#[test]
fn siblings_and_body_are_all_cancelled_and_their_destructors_run() {
    let counter = DropCounter::new();
    green::run(|| {
        let waited = Cell::new(None);
        let outcome = scope(|s| {
            for _ in 0..10 {
                let token = counter.token();
                s.spawn(move || {
                    let _token = token;
                    green::sleep(FOREVER).map_err(|Cancelled| "cancelled")
                });
            }
            s.spawn(|| {
                green::yield_now();
                Err::<(), _>("first")
            });
            let _token = counter.token();
            waited.set(Some(fallback().recv()));
        });
        assert_eq!(outcome.err().and_then(ScopeError::into_error), Some("first"));
        assert_eq!(waited.take(), Some(Err(RecvError::Cancelled)));
        assert_eq!(counter.dropped(), 11, "ten siblings and the body");
    });
}

#[test]
fn a_shield_in_the_body_holds_the_cancellation_off_until_it_closes() {
    green::run(|| {
        let (to_body, from_helper) = oneshot::<&str>();
        let shielded = Cell::new(None);
        let after_shield = Cell::new(None);
        let outcome = scope(|s| {
            s.spawn(|| Err::<(), _>("failed"));
            // Sends only after the failure: the shielded wait below is
            // still under way when the scope is cancelled.
            green::spawn(move || {
                let_others_run();
                let _ = to_body.send("sent after the failure");
            });
            shielded.set(Some(green::shield(|| from_helper.recv())));
            after_shield.set(Some(fallback().recv()));
        });
        assert_eq!(outcome.err().and_then(ScopeError::into_error), Some("failed"));
        assert_eq!(shielded.take(), Some(Ok("sent after the failure")));
        assert_eq!(after_shield.take(), Some(Err(RecvError::Cancelled)), "outside the shield it applies");
    });
}

#[test]
fn a_timeout_in_the_body_does_not_report_the_scopes_cancellation_as_its_expiry() {
    green::run(|| {
        let inner = Cell::new(None);
        let outcome = scope(|s| {
            s.spawn(|| {
                green::yield_now();
                Err::<(), _>("failed")
            });
            let wait = fallback();
            inner.set(Some(green::timeout(FOREVER, || wait.recv())));
        });
        assert_eq!(outcome.err().and_then(ScopeError::into_error), Some("failed"));
        // The timeout's own deadline did not pass: it returns its body's
        // value, the receive's cancellation error.
        assert_eq!(inner.take(), Some(Ok(Err(RecvError::Cancelled))));
    });
}

#[test]
fn an_inner_scopes_failure_cancels_only_the_inner_body() {
    green::run(|| {
        let inner_wait = Cell::new(None);
        let outer_sleep = Cell::new(None);
        let outcome: Result<(), ScopeError<&str>> = scope(|_outer| {
            let inner = scope(|s| {
                s.spawn(|| Err::<(), _>("inner failure"));
                inner_wait.set(Some(fallback().recv()));
            });
            assert_eq!(inner.err().and_then(ScopeError::into_error), Some("inner failure"));
            outer_sleep.set(Some(green::sleep(Duration::from_millis(1))));
        });
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(inner_wait.take(), Some(Err(RecvError::Cancelled)));
        assert_eq!(outer_sleep.take(), Some(Ok(())), "the outer body was not cancelled");
    });
}

#[test]
fn an_outer_failure_reaches_a_body_inside_an_inner_scope_which_cancels_its_children() {
    green::run(|| {
        let inner_child = Cell::new(None);
        let inner_body = Cell::new(None);
        let inner_outcome = Cell::new(None);
        let outcome = scope(|outer| {
            outer.spawn(|| {
                green::yield_now();
                Err::<(), _>("outer failure")
            });
            let inner = scope(|s| {
                s.spawn(|| {
                    inner_child.set(Some(fallback().recv()));
                    Ok::<(), ()>(())
                });
                inner_body.set(Some(fallback().recv()));
            });
            inner_outcome.set(Some(inner.map_err(|e| e.is_cancelled())));
        });
        assert_eq!(outcome.err().and_then(ScopeError::into_error), Some("outer failure"));
        assert_eq!(inner_body.take(), Some(Err(RecvError::Cancelled)), "the inner body was cancelled");
        assert_eq!(inner_outcome.take(), Some(Err(true)), "the inner scope reports its cancellation");
        assert_eq!(inner_child.take(), Some(Err(RecvError::Cancelled)), "the inner child was cancelled too");
    });
}

#[test]
fn the_parents_own_cancellation_is_neither_cleared_nor_caused_by_the_scope() {
    green::run(|| {
        // A parent whose own cancellation arrives after its scope failed:
        // the scope's cancellation ended with the scope, its own goes on.
        let (to_main, from_parent) = oneshot::<()>();
        let parent = green::spawn(move || {
            let waited = Cell::new(None);
            let outcome = scope(|s| {
                s.spawn(|| Err::<(), _>("failed"));
                waited.set(Some(fallback().recv()));
            });
            let failed = outcome.err().and_then(ScopeError::into_error);
            let after_scope = green::sleep(Duration::ZERO);
            // Now wait to be cancelled by main.
            let _ = to_main.send(());
            let own = green::sleep(FOREVER);
            let still = green::sleep(Duration::ZERO);
            (failed, waited.take(), after_scope, own, still)
        });
        from_parent.recv().expect("the parent got past its scope");
        parent.cancel();
        let (failed, waited, after_scope, own, still) = parent.join().expect("no panic");
        assert_eq!(failed, Some("failed"));
        assert_eq!(waited, Some(Err(RecvError::Cancelled)), "the body was cancelled");
        assert_eq!(after_scope, Ok(()), "the scope did not cancel the parent");
        assert_eq!(own, Err(Cancelled), "the parent's own cancellation reached it");
        assert_eq!(still, Err(Cancelled), "and stays: the scope did not clear it");
    });
}
