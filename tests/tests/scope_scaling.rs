//! `green::scope` and `TaskGroup` with 100,000 children or members: the
//! bookkeeping per child is O(1) (the unit tests in `scope.rs` and
//! `task/group.rs` count the entries it looks at, for N and 4N), so these
//! finish like the same number of plain handles; here they just have to
//! finish, with every child run, joined or cancelled exactly once and
//! every destructor run.
//!
//! The children yield once, so that they are all alive together and finish
//! in an order of the scheduler's choosing.

use std::cell::Cell;
use std::io;

use green::{ScopeError, TaskGroup, scope};
use green_tests::DropCounter;

const N: usize = 100_000;

/// Small stacks: 100,000 coroutines alive at once (only the pages each
/// touches are backed).
fn runtime() -> green::Builder {
    green::Builder::new().stack_size(32 * 1024)
}

#[test]
fn a_scope_with_100_000_children_finishes() {
    let counter = DropCounter::new();
    runtime().run(|| {
        let sum = Cell::new(0usize);
        let outcome = scope(|s| {
            for i in 0..N {
                let (sum, token) = (&sum, counter.token());
                s.spawn(move || {
                    let _token = token;
                    green::yield_now();
                    sum.set(sum.get() + i);
                    Ok::<(), io::Error>(())
                });
            }
        });
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(sum.get(), N * (N - 1) / 2, "every child ran once");
    });
    assert_eq!(counter.dropped(), N);
}

#[test]
fn a_scope_with_100_000_children_and_a_failure_cancels_them_all() {
    let counter = DropCounter::new();
    runtime().run(|| {
        let cancelled = Cell::new(0usize);
        let outcome = scope(|s| {
            for _ in 0..N {
                let (cancelled, token) = (&cancelled, counter.token());
                s.spawn(move || {
                    let _token = token;
                    let slept = green::sleep(std::time::Duration::from_secs(3600));
                    cancelled.set(cancelled.get() + usize::from(slept.is_err()));
                    slept.map_err(|_| "cancelled")
                });
            }
            s.spawn(|| {
                green::yield_now();
                Err::<(), _>("the one failure")
            });
        });
        match outcome {
            Err(ScopeError::Failed { error, .. }) => assert_eq!(error, "the one failure"),
            other => panic!("expected the failure, got {other:?}"),
        }
        assert_eq!(cancelled.get(), N, "every sibling was cancelled");
    });
    assert_eq!(counter.dropped(), N);
}

#[test]
fn nested_scopes_spawning_into_the_outer_one_100_000_times_finish() {
    runtime().run(|| {
        let ran = Cell::new(0usize);
        let outcome = scope(|outer| {
            for _ in 0..N / 2 {
                let ran = &ran;
                // Each inner scope spawns a child into the outer scope and
                // one of its own: the inner scope's release passes over the
                // outer child's entry.
                let inner = scope(|inner| {
                    outer.spawn(move || {
                        green::yield_now();
                        ran.set(ran.get() + 1);
                        Ok::<(), io::Error>(())
                    });
                    inner.spawn(move || {
                        ran.set(ran.get() + 1);
                        Ok::<(), io::Error>(())
                    });
                });
                assert!(inner.is_ok(), "{inner:?}");
            }
        });
        assert!(outcome.is_ok(), "{outcome:?}");
        assert_eq!(ran.get(), N);
    });
}

#[test]
fn a_task_group_with_100_000_members_finishes() {
    let counter = DropCounter::new();
    runtime().run(|| {
        let mut group = TaskGroup::new();
        for i in 0..N {
            let token = counter.token();
            group.spawn(move || {
                let _token = token;
                green::yield_now();
                i
            });
        }
        assert_eq!(group.len(), N);
        let mut sum = 0;
        let mut joined = 0;
        while let Some((_, result)) = group.join_next() {
            sum += result.expect("no member failed");
            joined += 1;
        }
        assert_eq!(joined, N);
        assert_eq!(sum, N * (N - 1) / 2, "every member was joined once");
    });
    assert_eq!(counter.dropped(), N);
}

#[test]
fn a_task_group_of_100_000_cancelled_members_joins_them_all() {
    runtime().run(|| {
        let mut group = TaskGroup::new();
        for _ in 0..N {
            group.spawn(|| green::sleep(std::time::Duration::from_secs(3600)));
        }
        green::yield_now(); // let them all go to sleep
        group.cancel_all();
        let results = group.join_all();
        assert_eq!(results.len(), N);
        assert!(results.iter().all(|(_, r)| matches!(r, Ok(Err(green::Cancelled)))));
        assert!(group.is_empty());
    });
}
