//! `green::scope`: children borrow from the parent, the scope waits for all
//! of them, and the first failure cancels the rest.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::rc::Rc;
use std::time::Duration;

use green::net::UnixStream;
use green::{ScopeError, scope};

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
            struct Mark(&'static str, Rc<RefCell<Vec<&'static str>>>);
            impl Drop for Mark {
                fn drop(&mut self) {
                    self.1.borrow_mut().push(self.0);
                }
            }
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
