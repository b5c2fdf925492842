//! `TaskGroup`: members joined in the order they finish, cancelled
//! together, and cancelled when the group is dropped; a member cancelled
//! before it started is joined like any other, and a failed spawn leaves
//! the group as it was. (How many members a join looks at is counted by
//! the unit test in `task/group.rs`; `scope_scaling.rs` runs 100,000.)

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use green::TaskGroup;
use green::net::UnixStream;

/// Blocks in a read that nothing will ever satisfy, until cancelled.
fn block_until_cancelled() -> io::Result<()> {
    let (reader, _writer) = UnixStream::pair()?;
    (&reader).read(&mut [0; 1]).map(|_| ())
}

#[test]
fn members_are_joined_in_the_order_they_finish() {
    green::run(|| {
        let mut group = TaskGroup::new();
        let mut ids = Vec::new();
        for yields in [5usize, 1, 3] {
            ids.push(group.spawn(move || {
                for _ in 0..yields {
                    green::yield_now();
                }
                yields
            }));
        }
        assert_eq!(group.len(), 3);
        let mut seen = Vec::new();
        while let Some((id, result)) = group.join_next() {
            let value = result.expect("no member failed");
            assert_eq!(id, ids[[5, 1, 3].iter().position(|&y| y == value).unwrap()]);
            seen.push(value);
        }
        assert_eq!(seen, [1, 3, 5]);
        assert!(group.is_empty());
        assert!(group.join_next().is_none());
    });
}

#[test]
fn members_that_finished_while_nobody_joined_come_out_in_the_order_they_finished() {
    green::run(|| {
        let mut group = TaskGroup::new();
        // Member 2 finishes first, then 0, then 1: each waits for the one
        // before it, and the last tells the joiner, which joins nothing
        // until then.
        let (to_0, from_2) = green::channel::oneshot::<()>();
        let (to_1, from_0) = green::channel::oneshot::<()>();
        let (to_joiner, from_1) = green::channel::oneshot::<()>();
        group.spawn(move || {
            from_2.recv().expect("member 2 runs first");
            to_1.send(()).expect("member 1 waits");
            0
        });
        group.spawn(move || {
            from_0.recv().expect("member 0 runs before");
            to_joiner.send(()).expect("the joiner waits");
            1
        });
        group.spawn(move || {
            to_0.send(()).expect("member 0 waits");
            2
        });
        from_1.recv().expect("member 1 finishes last");
        let order: Vec<usize> = std::iter::from_fn(|| group.join_next())
            .map(|(_, result)| result.expect("no member failed"))
            .collect();
        assert_eq!(order, [2, 0, 1]);
    });
}

#[test]
fn a_panicking_member_is_reported_and_the_others_finish() {
    green::run(|| {
        let mut group = TaskGroup::new();
        group.spawn(|| -> u32 { panic!("member exploded") });
        group.spawn(|| {
            green::yield_now();
            7
        });
        let results = group.join_all();
        assert_eq!(results.len(), 2);
        let panicked = results.iter().filter(|(_, r)| r.as_ref().is_err_and(|e| e.is_panic())).count();
        let values: Vec<u32> = results.into_iter().filter_map(|(_, r)| r.ok()).collect();
        assert_eq!(panicked, 1);
        assert_eq!(values, [7]);
    });
}

#[test]
fn cancel_all_reaches_every_blocked_member() {
    green::run(|| {
        let mut group = TaskGroup::new();
        for _ in 0..4 {
            group.spawn(block_until_cancelled);
        }
        green::yield_now(); // let them block
        group.cancel_all();
        let results = group.join_all();
        assert_eq!(results.len(), 4);
        for (_, result) in results {
            let err = result.expect("no panic").expect_err("the read was cancelled");
            assert!(green::is_cancelled(&err), "{err}");
        }
    });
}

#[test]
fn dropping_the_group_cancels_its_members() {
    green::run(|| {
        let ended = Rc::new(Cell::new(0));
        {
            let mut group = TaskGroup::new();
            for _ in 0..3 {
                let ended = ended.clone();
                group.spawn(move || {
                    let result = block_until_cancelled();
                    ended.set(ended.get() + 1);
                    result
                });
            }
            green::yield_now();
        }
        // Each cancelled member runs once more to return.
        green::yield_now();
        assert_eq!(ended.get(), 3);
    });
}

#[test]
fn a_cancelled_joiner_gets_an_interrupted_error_and_the_member_stays() {
    green::run(|| {
        let joiner = green::spawn(|| {
            let mut group = TaskGroup::new();
            group.spawn(|| {
                for _ in 0..10 {
                    green::yield_now();
                }
                1
            });
            let (_, first) = group.join_next().expect("one member");
            let interrupted = first.expect_err("the joiner was cancelled").is_interrupted();
            (interrupted, group.len())
        });
        green::yield_now();
        joiner.cancel();
        assert_eq!(joiner.join().expect("no panic"), (true, 1));
    });
}

#[test]
fn members_released_in_any_order_are_joined_in_that_order() {
    green::run(|| {
        let mut group = TaskGroup::new();
        let mut releases = Vec::new();
        for i in 0..200usize {
            let (tx, rx) = green::channel::oneshot::<()>();
            releases.push(tx);
            group.spawn(move || {
                rx.recv().expect("released");
                i
            });
        }
        green::yield_now(); // every member waits
        // Release them in an order unlike the spawn order: odd ones last,
        // each half backwards. Each join comes after one release, so the
        // members finish one at a time.
        let order: Vec<usize> =
            (0..200).rev().filter(|i| i % 2 == 0).chain((0..200).rev().filter(|i| i % 2 == 1)).collect();
        let mut releases: Vec<Option<_>> = releases.into_iter().map(Some).collect();
        for &i in &order {
            releases[i].take().expect("released once").send(()).expect("the member waits");
            let (_, result) = group.join_next().expect("a member is left");
            assert_eq!(result.expect("no member failed"), i);
        }
        assert!(group.is_empty());
        assert!(group.join_next().is_none());
    });
}

#[test]
fn members_cancelled_before_they_started_are_joined_with_their_ids() {
    green::run(|| {
        let ran = Rc::new(Cell::new(0));
        let mut group = TaskGroup::new();
        let mut ids = Vec::new();
        for _ in 0..5 {
            let ran = ran.clone();
            ids.push(group.spawn(move || ran.set(ran.get() + 1)));
        }
        group.cancel_all();
        let mut joined = Vec::new();
        while let Some((id, result)) = group.join_next() {
            assert!(result.expect_err("never ran").is_cancelled());
            joined.push(id);
        }
        joined.sort();
        ids.sort();
        assert_eq!(joined, ids, "every member was joined once, under its own id");
        assert_eq!(ran.get(), 0);
    });
}

#[test]
fn a_failed_spawn_leaves_the_group_as_it_was() {
    green::run(|| {
        let mut group = TaskGroup::new();
        group.spawn(|| 1);
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // No stack of this size can be had.
            group.spawn_with(green::task::Builder::new().stack_size(1 << 60), || 2)
        }));
        assert!(failed.is_err(), "the spawn failed");
        assert_eq!(group.len(), 1);
        group.spawn(|| 3);
        let mut values: Vec<u32> =
            group.join_all().into_iter().map(|(_, r)| r.expect("no failure")).collect();
        values.sort_unstable();
        assert_eq!(values, [1, 3]);
        assert!(group.is_empty());
    });
}
