//! Structured concurrency across workers: a scope's children and a task
//! group's members may be distributed. The scope still waits for every
//! child (which may borrow from it), the first failure still cancels the
//! rest wherever they run, and a group's cancel reaches members on other
//! workers.

use std::collections::HashSet;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// Counts its drops, from any thread.
struct Token<'a>(&'a AtomicUsize);

impl Drop for Token<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Records the calling thread in `seen`, then blocks it until a second
/// thread has been recorded: only a steal by the other worker ends it (the
/// cap keeps a failure from hanging the test).
fn until_two_threads(seen: &Mutex<HashSet<ThreadId>>) {
    seen.lock().expect("not poisoned").insert(thread::current().id());
    let give_up = Instant::now() + Duration::from_secs(20);
    while seen.lock().expect("not poisoned").len() < 2 && Instant::now() < give_up {
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn distributed_children_borrow_from_the_parent_and_run_on_several_threads() {
    let (sum, threads) = green::Builder::new().workers(2).run(|| {
        let numbers: Vec<u64> = (1..=10_000).collect();
        let threads = Mutex::new(HashSet::<ThreadId>::new());
        let sum = green::scope(|s| {
            let handles: Vec<_> = numbers
                .chunks(100)
                .map(|chunk| {
                    let threads = &threads;
                    s.spawn_distributed(move || {
                        until_two_threads(threads);
                        Ok::<u64, io::Error>(chunk.iter().sum())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("summed")).sum::<u64>()
        })
        .expect("no child failed");
        (sum, threads.into_inner().expect("not poisoned").len())
    });
    assert_eq!(sum, 50_005_000);
    assert_eq!(threads, 2, "the children ran on both workers");
}

#[test]
fn a_failing_distributed_child_cancels_its_siblings_on_every_worker_and_the_body() {
    let dropped = AtomicUsize::new(0);
    let outcome = green::Builder::new().workers(2).run(|| {
        green::scope(|s| {
            for _ in 0..8 {
                // Made here and moved in: a sibling the failure cancels
                // before it starts never runs, and dropping its closure
                // is how it ends.
                let token = Token(&dropped);
                s.spawn_distributed(move || {
                    let _token = token;
                    green::sleep(Duration::from_secs(3600)).map_err(|_| "cancelled")
                });
            }
            s.spawn_distributed(|| Err::<(), _>("no route to host"));
            // Would sleep an hour; the failure cancels it.
            green::sleep(Duration::from_secs(3600))
        })
    });
    let error = outcome.expect_err("a child failed");
    assert_eq!(error.into_error(), Some("no route to host"));
    assert_eq!(dropped.load(Ordering::SeqCst), 8, "every sibling ended before the scope returned");
}

#[test]
fn a_panicking_distributed_child_is_the_scopes_failure() {
    let outcome = green::Builder::new().workers(2).run(|| {
        green::scope(|s| {
            s.spawn_distributed(|| -> Result<(), io::Error> { panic!("child exploded") });
        })
    });
    match outcome {
        Err(green::ScopeError::Panicked { payload, .. }) => {
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"child exploded"));
        }
        other => panic!("expected the child's panic, got {other:?}"),
    }
}

#[test]
fn a_timeout_around_the_scope_cancels_distributed_children_and_waits_for_them() {
    let ended = AtomicUsize::new(0);
    let outcome = green::Builder::new().workers(2).run(|| {
        green::timeout(Duration::from_millis(50), || {
            green::scope(|s| {
                for _ in 0..16 {
                    // Moved in, so that a child the deadline cancels
                    // before it starts counts when its closure is dropped.
                    let token = Token(&ended);
                    s.spawn_distributed(move || {
                        let _token = token;
                        // Ignores the first cancellation: the scope still
                        // waits for it, and the next wait fails too.
                        let _ = green::sleep(Duration::from_secs(3600));
                        green::sleep(Duration::from_secs(3600)).map_err(|_| "cancelled")
                    });
                }
            })
        })
    });
    assert!(outcome.is_err(), "the deadline passed");
    assert_eq!(ended.load(Ordering::SeqCst), 16, "every child ended before the scope returned");
}

#[test]
fn ten_thousand_distributed_children_all_run_once() {
    const CHILDREN: usize = 10_000;
    let ran = AtomicUsize::new(0);
    green::Builder::new().workers(2).run(|| {
        green::scope(|s| {
            for _ in 0..CHILDREN {
                let ran = &ran;
                s.spawn_distributed(move || {
                    ran.fetch_add(1, Ordering::Relaxed);
                    Ok::<(), io::Error>(())
                });
            }
        })
        .expect("no child failed");
    });
    assert_eq!(ran.load(Ordering::Relaxed), CHILDREN);
}

#[test]
fn distributed_scope_children_work_on_a_runtime_of_one_worker() {
    let data = [1, 2, 3];
    let total = green::run(|| {
        green::scope(|s| {
            let child = s.spawn_distributed(|| Ok::<i32, io::Error>(data.iter().sum()));
            child.join().expect("summed")
        })
        .expect("no child failed")
    });
    assert_eq!(total, 6);
}

#[test]
fn main_returning_while_a_coroutine_waits_in_a_scope_of_distributed_children_ends_the_runtime() {
    // A coroutine sits in a scope whose distributed children wait forever
    // when main returns: the runtime still shuts down. (Each child either
    // ends before its parent is torn down, or the parent is leaked; both
    // are sound, and neither hangs.)
    let started = Arc::new(AtomicUsize::new(0));
    let counted = started.clone();
    green::Builder::new().workers(2).run(move || {
        let (all_started, wait_started) = green::channel::bounded::<()>(4);
        let _parent = green::spawn(move || {
            let _ = green::scope(|s| {
                for _ in 0..4 {
                    let all_started = all_started.clone();
                    let counted = counted.clone();
                    s.spawn_distributed(move || {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let _ = all_started.send(());
                        loop {
                            if green::sleep(Duration::from_secs(3600)).is_err() {
                                return Ok::<(), io::Error>(());
                            }
                        }
                    });
                }
            });
        });
        for _ in 0..4 {
            wait_started.recv().expect("every child starts");
        }
    });
    assert_eq!(started.load(Ordering::SeqCst), 4);
}

#[test]
fn task_group_members_may_be_distributed_and_are_joined_as_they_finish() {
    let (sum, threads) = green::Builder::new().workers(2).run(|| {
        let mut group = green::TaskGroup::new();
        let threads = Arc::new(Mutex::new(HashSet::new()));
        for n in 0..200u64 {
            let threads = threads.clone();
            group.spawn_distributed(move || {
                until_two_threads(&threads);
                (n, thread::current().id())
            });
        }
        let mut sum = 0;
        let mut threads = HashSet::new();
        while let Some((_, result)) = group.join_next() {
            let (n, thread) = result.expect("no member failed");
            sum += n;
            threads.insert(thread);
        }
        (sum, threads.len())
    });
    assert_eq!(sum, 199 * 200 / 2);
    assert_eq!(threads, 2, "the members ran on both workers");
}

#[test]
fn cancelling_a_task_group_reaches_distributed_members_on_other_workers() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let counted = stopped.clone();
    let cancelled = green::Builder::new().workers(2).run(move || {
        let mut group = green::TaskGroup::new();
        let (started, wait_started) = green::channel::bounded::<()>(32);
        for _ in 0..32 {
            let counted = counted.clone();
            let started = started.clone();
            group.spawn_distributed(move || {
                let _ = started.send(());
                if green::sleep(Duration::from_secs(3600)).is_err() {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        for _ in 0..32 {
            wait_started.recv().expect("every member starts");
        }
        group.cancel_all();
        let results = group.join_all();
        results.iter().filter(|(_, result)| result.is_ok()).count()
    });
    // Each member saw the cancellation at its sleep and then returned.
    assert_eq!(stopped.load(Ordering::SeqCst), 32);
    assert_eq!(cancelled, 32, "they returned normally after the cancellation");
}

#[test]
fn a_distributed_member_cancelled_before_it_started_is_reported_cancelled() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counted = ran.clone();
    let all_cancelled = green::Builder::new().workers(2).run(move || {
        let mut group = green::TaskGroup::new();
        for _ in 0..100 {
            let counted = counted.clone();
            group.spawn_distributed(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            });
        }
        // Nothing ran yet: the stand-ins have not started.
        group.cancel_all();
        group.join_all().iter().all(|(_, result)| result.as_ref().is_err_and(green::JoinError::is_cancelled))
    });
    assert!(all_cancelled);
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no cancelled member ran");
}

#[test]
fn a_panicking_distributed_member_is_a_panic_at_its_join() {
    let message = green::Builder::new().workers(2).run(|| {
        let mut group = green::TaskGroup::new();
        group.spawn_distributed(|| -> u32 { panic!("member exploded") });
        let (_, result) = group.join_next().expect("one member");
        let error = result.expect_err("it panicked");
        assert!(error.is_panic(), "{error:?}");
        *error.into_panic().downcast::<&str>().expect("a str payload")
    });
    assert_eq!(message, "member exploded");
}

#[test]
fn dropping_a_task_group_cancels_its_distributed_members() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let counted = stopped.clone();
    green::Builder::new().workers(2).run(move || {
        let (started, wait_started) = green::channel::bounded::<()>(8);
        let (done, wait_done) = green::channel::bounded::<()>(8);
        {
            let mut group = green::TaskGroup::new();
            for _ in 0..8 {
                let (counted, started, done) = (counted.clone(), started.clone(), done.clone());
                group.spawn_distributed(move || {
                    let _ = started.send(());
                    if green::sleep(Duration::from_secs(3600)).is_err() {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                    let _ = done.send(());
                });
            }
            for _ in 0..8 {
                wait_started.recv().expect("every member starts");
            }
        }
        for _ in 0..8 {
            wait_done.recv().expect("every member ends");
        }
    });
    assert_eq!(stopped.load(Ordering::SeqCst), 8);
}

#[test]
fn a_parent_torn_down_while_its_distributed_child_still_runs_is_not_unwound_under_it() {
    // The parent's frame holds a value the child borrows; at shutdown the
    // child's destructor still uses it for a while, on the other worker.
    // Whichever ends first, the child must never see the value dropped.
    struct Alive(std::sync::atomic::AtomicBool);
    impl Drop for Alive {
        fn drop(&mut self) {
            self.0.store(false, Ordering::SeqCst);
        }
    }
    /// Looks at the borrowed value when dropped, after a while.
    struct Check<'a>(&'a Alive, Arc<Mutex<Option<bool>>>);
    impl Drop for Check<'_> {
        fn drop(&mut self) {
            // A slow destructor: its thread is busy, waits would fail.
            std::thread::sleep(Duration::from_millis(100));
            *self.1.lock().expect("not poisoned") = Some(self.0.0.load(Ordering::SeqCst));
        }
    }
    let saw_alive = Arc::new(Mutex::new(None));
    let report = saw_alive.clone();
    green::Builder::new().workers(2).run(move || {
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let _parent = green::spawn(move || {
            let alive = Alive(std::sync::atomic::AtomicBool::new(true));
            let _ = green::scope(|s| {
                let alive = &alive;
                s.spawn_distributed(move || {
                    let _check = Check(alive, report);
                    let _ = started_tx.send(());
                    while green::sleep(Duration::from_secs(3600)).is_ok() {}
                    Ok::<(), io::Error>(())
                });
            });
        });
        // Let the parent place its child, then hold this worker's thread
        // until the other worker has started it.
        green::yield_now();
        green::yield_now();
        started.recv().expect("the child starts on the other worker");
    });
    assert_eq!(
        *saw_alive.lock().expect("not poisoned"),
        Some(true),
        "the child never saw its borrow dropped"
    );
}
