//! `green::scope`: children borrow from the parent, the scope waits for all
//! of them, and the first failure cancels the rest (the body too: see
//! `scope_cancels_body.rs`). At runtime shutdown a parent in a scope is torn
//! down after its children, without waiting for them (they are gone), and
//! `run` returns with every destructor run.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::rc::Rc;
use std::time::Duration;

use green::net::UnixStream;
use green::{ScopeError, scope};
use green_tests::{DropCounter, describe, run_in_child_or_hang};

/// Longer than any test runs: a wait this long ends only by cancellation.
const HOUR: Duration = Duration::from_secs(3600);

/// Turns a hang of the runtime's shutdown into a test failure: far beyond
/// what any of these needs, never a speed target.
const HANG: Duration = Duration::from_secs(60);

/// Runs `body` in a child process and asserts that it finished (did not
/// hang) and passed.
fn in_child_without_hanging(test: &str, body: impl FnOnce()) {
    match run_in_child_or_hang(test, HANG, body) {
        Ok(Some(output)) => assert!(output.status.success(), "{}", describe(&output)),
        Ok(None) => panic!("green::run did not return: shutdown hung"),
        Err(err) => panic!("cannot run the child process: {err}"),
    }
}

/// Pushes its name onto a shared log when dropped.
struct Mark(&'static str, Rc<RefCell<Vec<&'static str>>>);

impl Drop for Mark {
    fn drop(&mut self) {
        self.1.borrow_mut().push(self.0);
    }
}

/// Blocks in a read that nothing will ever satisfy, until cancelled.
fn block_until_cancelled() -> io::Result<()> {
    let (reader, _writer) = UnixStream::pair()?;
    let mut buf = [0; 1];
    (&reader).read(&mut buf).map(|_| ())
}

#[test]
fn children_borrow_from_the_parent_and_all_finish_before_the_scope_returns() {
    green::run(|| {
        let finished = Cell::new(0);
        let names = vec![String::from("a"), String::from("b"), String::from("c")];
        let outcome = scope(|s| {
            for name in &names {
                let finished = &finished;
                s.spawn(move || {
                    for _ in 0..name.len() + 2 {
                        green::yield_now();
                    }
                    finished.set(finished.get() + 1);
                    Ok::<_, io::Error>(name.len())
                });
            }
            "body done"
        });
        assert_eq!(outcome.expect("no failure"), "body done");
        assert_eq!(finished.get(), 3, "every child finished before scope returned");
    });
}

#[test]
fn join_handles_return_values() {
    green::run(|| {
        let data = [1, 2, 3, 4];
        let sum = scope(|s| {
            let handles: Vec<_> =
                data.chunks(2).map(|c| s.spawn(move || Ok::<_, io::Error>(c.iter().sum::<i32>()))).collect();
            handles.into_iter().map(|h| h.join().expect("child ok")).sum::<i32>()
        })
        .expect("no failure");
        assert_eq!(sum, 10);
    });
}

#[test]
fn the_first_error_cancels_the_siblings_and_is_reported() {
    green::run(|| {
        let cancelled_siblings = Cell::new(0);
        let outcome = scope(|s| {
            for _ in 0..3 {
                let cancelled_siblings = &cancelled_siblings;
                s.spawn(move || {
                    let err = block_until_cancelled().expect_err("only cancellation ends the read");
                    assert!(green::is_cancelled(&err));
                    cancelled_siblings.set(cancelled_siblings.get() + 1);
                    Err::<(), _>(err)
                });
            }
            s.spawn(|| {
                green::yield_now();
                Err::<(), _>(io::Error::other("boom"))
            });
        });
        match outcome {
            Err(ScopeError::Failed { error, .. }) => assert_eq!(error.to_string(), "boom"),
            other => panic!("expected the child's error, got {other:?}"),
        }
        assert_eq!(cancelled_siblings.get(), 3, "every sibling was cancelled and finished");
    });
}

#[test]
fn a_panicking_child_is_reported_and_the_others_are_cancelled() {
    green::run(|| {
        let outcome = scope(|s| {
            s.spawn(block_until_cancelled);
            s.spawn(|| -> io::Result<()> { panic!("child exploded") });
        });
        match outcome {
            Err(err @ ScopeError::Panicked { .. }) => {
                assert!(err.to_string().contains("child exploded"), "{err}")
            }
            other => panic!("expected the panic, got {other:?}"),
        }
    });
}

#[test]
fn a_panicking_body_still_waits_for_its_children() {
    green::run(|| {
        let child_done = Rc::new(Cell::new(false));
        let flag = child_done.clone();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = scope(|s| {
                s.spawn(move || {
                    let result = block_until_cancelled();
                    flag.set(true);
                    result
                });
                green::yield_now();
                panic!("body exploded");
            });
        }));
        assert!(caught.is_err(), "the body's panic comes out of scope");
        assert!(child_done.get(), "the child finished before the panic left the scope");
    });
}

#[test]
fn a_timeout_around_the_scope_cancels_the_children() {
    green::run(|| {
        let outcome = green::timeout(Duration::from_millis(5), || {
            scope(|s| {
                s.spawn(block_until_cancelled);
                s.spawn(block_until_cancelled);
            })
        });
        // The deadline interrupted the parent while it waited; it cancelled
        // the children and waited for them, and the timeout reports itself.
        assert!(outcome.is_err(), "the timeout scope reports Elapsed: {outcome:?}");
    });
}

#[test]
fn at_shutdown_scoped_children_are_torn_down_before_their_parent() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let log = order.clone();
    green::run(move || {
        // A detached coroutine sits in a scope whose child blocks forever;
        // main returns, and shutdown must unwind the child first.
        green::spawn(move || {
            let parent_local = Mark("parent", log.clone());
            let _ = scope(|s| {
                let parent_local = &parent_local;
                let log = log.clone();
                s.spawn(move || {
                    let _child_local = Mark("child", log);
                    let _still_borrowed = &parent_local.0;
                    block_until_cancelled()
                });
            });
        });
        green::yield_now();
        green::yield_now();
    });
    assert_eq!(*order.borrow(), ["child", "parent"]);
}

#[test]
fn at_shutdown_a_detached_coroutine_in_a_scope_body_with_a_sleeping_child_is_torn_down() {
    in_child_without_hanging(
        "at_shutdown_a_detached_coroutine_in_a_scope_body_with_a_sleeping_child_is_torn_down",
        || {
            let counter = DropCounter::new();
            let after_scope = Rc::new(Cell::new(false));
            let after_sleep = Rc::new(Cell::new(0));
            green::run(|| {
                let (counter, after_scope, after_sleep) =
                    (counter.clone(), after_scope.clone(), after_sleep.clone());
                green::spawn(move || {
                    let _parent = counter.token();
                    let borrowed = counter.token();
                    let outcome = scope(|s| {
                        let _body = counter.token();
                        let (token, borrowed, after_sleep) = (counter.token(), &borrowed, &after_sleep);
                        s.spawn(move || {
                            let _child = token;
                            let _still_borrowed = borrowed;
                            green::sleep(HOUR)?;
                            after_sleep.set(after_sleep.get() + 1);
                            Ok::<(), green::Cancelled>(())
                        });
                        let slept = green::sleep(HOUR);
                        after_sleep.set(after_sleep.get() + 1);
                        slept
                    });
                    drop(outcome);
                    after_scope.set(true);
                });
                for _ in 0..3 {
                    green::yield_now();
                }
            });
            assert_eq!(counter.dropped(), 4, "parent, borrowed, body and child tokens were all dropped");
            assert!(!after_scope.get(), "the parent's code after the scope never ran");
            assert_eq!(after_sleep.get(), 0, "no code after a sleep ran");
        },
    );
}

#[test]
fn at_shutdown_a_scope_whose_child_never_started_is_torn_down() {
    in_child_without_hanging("at_shutdown_a_scope_whose_child_never_started_is_torn_down", || {
        let counter = DropCounter::new();
        let child_ran = Rc::new(Cell::new(false));
        green::run(|| {
            let (counter, child_ran) = (counter.clone(), child_ran.clone());
            green::spawn(move || {
                let _parent = counter.token();
                let _ = scope(|s| {
                    let (token, child_ran) = (counter.token(), &child_ran);
                    // Spawned, then the body parks and main returns before
                    // the child's turn comes.
                    s.spawn(move || {
                        let _child = token;
                        child_ran.set(true);
                        Ok::<(), green::Cancelled>(())
                    });
                    green::sleep(HOUR)
                });
            });
            // The detached coroutine runs until its body parks; its child
            // is queued behind main.
            green::yield_now();
        });
        assert_eq!(counter.dropped(), 2, "the parent's and the unstarted child's tokens");
        assert!(!child_ran.get());
    });
}

#[test]
fn at_shutdown_nested_scopes_are_torn_down_children_first() {
    in_child_without_hanging("at_shutdown_nested_scopes_are_torn_down_children_first", || {
        let order = Rc::new(RefCell::new(Vec::new()));
        let log = order.clone();
        green::run(move || {
            green::spawn(move || {
                let _parent = Mark("parent", log.clone());
                let _ = scope(|outer| {
                    let log = &log;
                    let _ = scope(|inner| {
                        // A child of the outer scope spawned from the inner
                        // body: it stays on the parent's teardown list when
                        // the inner scope ends.
                        outer.spawn(move || {
                            let _mark = Mark("outer child", log.clone());
                            green::sleep(HOUR)
                        });
                        inner.spawn(move || {
                            let _mark = Mark("inner child", log.clone());
                            green::yield_now();
                            Ok::<(), green::Cancelled>(())
                        });
                    });
                    let _body = Mark("outer body", log.clone());
                    green::sleep(HOUR)
                });
            });
            for _ in 0..5 {
                green::yield_now();
            }
        });
        assert_eq!(*order.borrow(), ["inner child", "outer child", "outer body", "parent"]);
    });
}

#[test]
fn a_child_spawned_after_a_failure_is_cancelled_at_once() {
    green::run(|| {
        let late = Cell::new(None);
        let outcome = scope(|s| {
            s.spawn(|| Err::<(), _>(io::Error::other("first")));
            green::yield_now(); // the failure happens
            // A late child waits for a message that a helper sends once the
            // others have had their turns: if the spawn did not cancel it,
            // it gets the message.
            let (release, wait) = green::channel::oneshot::<()>();
            green::spawn(move || {
                for _ in 0..10 {
                    green::yield_now();
                }
                let _ = release.send(());
            });
            let late = &late;
            s.spawn(move || {
                late.set(Some(wait.recv()));
                Ok(())
            });
        });
        assert_eq!(
            outcome.err().and_then(ScopeError::into_error).map(|e| e.to_string()),
            Some("first".into())
        );
        assert_eq!(late.take(), Some(Err(green::channel::RecvError::Cancelled)));
    });
}
