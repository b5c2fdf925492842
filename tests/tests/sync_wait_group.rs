//! `green::sync::WaitGroup`: `wait` returns once every guard is gone, and
//! not before; guards may be dropped by coroutines of any runtime or by
//! plain threads, also by panicking; every waiter wakes exactly once; a
//! timed-out or cancelled wait leaves the group unchanged; the group can
//! be used again after it emptied.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use green::sync::{Event, WaitError, WaitGroup, WaitGroupGuard};

/// Short enough to keep the suite fast; no test depends on how long a
/// timeout really took.
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
fn the_group_and_its_guards_are_send_and_sync() {
    assert_send_sync::<WaitGroup>();
    assert_send_sync::<WaitGroupGuard>();
}

#[test]
fn wait_returns_after_every_job_everywhere_is_done() {
    const HERE: usize = 50;
    const THERE: usize = 20;
    const THREADS: usize = 4;
    let group = WaitGroup::new();
    let finished = Arc::new(AtomicUsize::new(0));
    // The jobs hold on until `go`, so that `wait` really has to wait.
    let go = Arc::new(Event::new());
    let job = |guard: WaitGroupGuard| {
        let (finished, go) = (finished.clone(), go.clone());
        move || {
            go.wait().unwrap();
            finished.fetch_add(1, Ordering::SeqCst);
            guard.done();
        }
    };
    let threads: Vec<_> = (0..THREADS).map(|_| thread::spawn(job(group.add()))).collect();
    let there: Vec<_> = (0..THERE).map(|_| job(group.add())).collect();
    let other_runtime = thread::spawn(move || {
        green::run(move || {
            let jobs: Vec<_> = there.into_iter().map(green::spawn).collect();
            for job in jobs {
                job.join().unwrap();
            }
        })
    });
    green::run(|| {
        for _ in 0..HERE {
            green::spawn(job(group.add()));
        }
        assert_eq!(group.count(), HERE + THERE + THREADS);
        assert_eq!(group.wait_timeout(SHORT), Err(WaitError::TimedOut));
        go.set();
        assert_eq!(group.wait(), Ok(()));
        assert_eq!(finished.load(Ordering::SeqCst), HERE + THERE + THREADS, "wait returned early");
        assert_eq!(group.count(), 0);
    });
    for thread in threads {
        thread.join().unwrap();
    }
    other_runtime.join().unwrap();
}

#[test]
fn an_empty_group_does_not_wait() {
    let group = WaitGroup::new();
    assert_eq!(group.count(), 0);
    assert_eq!(group.wait(), Ok(()));
    green::run(|| {
        assert_eq!(group.wait(), Ok(()));
        assert_eq!(group.wait_timeout(Duration::ZERO), Ok(()));
    });
}

#[test]
fn cloning_a_guard_counts_one_more_job_and_each_drop_one_less() {
    let group = WaitGroup::new();
    let first = group.add();
    let second = first.clone();
    let third = second.clone();
    assert_eq!(group.count(), 3);
    drop(second);
    assert_eq!(group.count(), 2);
    first.done();
    assert_eq!(group.wait_timeout(Duration::ZERO), Err(WaitError::TimedOut));
    third.done();
    assert_eq!(group.count(), 0);
    assert_eq!(group.wait_timeout(Duration::ZERO), Ok(()));
}

#[test]
fn every_waiter_wakes_exactly_once() {
    const COROUTINES: usize = 10;
    const THREADS: usize = 3;
    let group = Arc::new(WaitGroup::new());
    let guard = group.add();
    let woken = Arc::new(AtomicUsize::new(0));
    let wait = {
        let (group, woken) = (group.clone(), woken.clone());
        move || {
            let result = group.wait();
            woken.fetch_add(1, Ordering::SeqCst);
            result
        }
    };
    let threads: Vec<_> = (0..THREADS).map(|_| thread::spawn(wait.clone())).collect();
    green::run(|| {
        let waiters: Vec<_> = (0..COROUTINES).map(|_| green::spawn(wait.clone())).collect();
        green::yield_now();
        assert_eq!(woken.load(Ordering::SeqCst), 0, "nobody passes while a job is counted");
        guard.done();
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), Ok(()));
        }
    });
    for thread in threads {
        assert_eq!(thread.join().unwrap(), Ok(()));
    }
    assert_eq!(woken.load(Ordering::SeqCst), COROUTINES + THREADS);
}

#[test]
fn a_timed_out_wait_leaves_the_group_unchanged() {
    green::run(|| {
        let group = Arc::new(WaitGroup::new());
        let job = group.add();
        let impatient = {
            let group = group.clone();
            green::spawn(move || group.wait_timeout(SHORT))
        };
        let patient = {
            let group = group.clone();
            green::spawn(move || group.wait())
        };
        assert_eq!(impatient.join().unwrap(), Err(WaitError::TimedOut));
        assert_eq!(group.count(), 1, "the timeout did not count the job done");
        assert!(!patient.is_finished());
        drop(job);
        assert_eq!(patient.join().unwrap(), Ok(()));
    });
}

#[test]
fn the_group_can_be_used_again_after_it_emptied() {
    let group = Arc::new(WaitGroup::new());
    for round in 0..5 {
        let guards: Vec<_> = (0..3).map(|_| group.add()).collect();
        assert_eq!(group.wait_timeout(Duration::ZERO), Err(WaitError::TimedOut), "round {round}");
        let threads: Vec<_> = guards.into_iter().map(|guard| thread::spawn(move || guard.done())).collect();
        assert_eq!(group.wait(), Ok(()), "round {round}");
        for thread in threads {
            thread.join().unwrap();
        }
    }
}

#[test]
fn a_job_that_panics_is_still_done() {
    green::run(|| {
        let group = WaitGroup::new();
        let guard = group.add();
        let failing = green::spawn(move || {
            let _guard = guard;
            panic!("the job fails");
        });
        assert_eq!(group.wait(), Ok(()));
        assert!(failing.join().unwrap_err().is_panic());
    });
}

#[test]
fn a_wait_in_a_destructor_during_shutdown_is_cancelled_and_leaves_the_group_unchanged() {
    let group = Arc::new(WaitGroup::new());
    let job = group.add();
    let seen = Arc::new(Mutex::new(None));
    green::run(|| {
        let (group, seen) = (group.clone(), seen.clone());
        green::spawn(move || {
            let _on_drop = OnDrop(move || *seen.lock().unwrap() = Some(group.wait()));
            let _ = green::sleep(Duration::MAX);
        });
        green::yield_now();
    });
    assert_eq!(*seen.lock().unwrap(), Some(Err(WaitError::Cancelled)));
    assert_eq!(group.count(), 1);
    let waiter = {
        let group = group.clone();
        thread::spawn(move || group.wait())
    };
    job.done();
    assert_eq!(waiter.join().unwrap(), Ok(()));
}

#[test]
fn a_waiter_unwound_at_shutdown_is_gone_and_the_group_still_works() {
    let group = Arc::new(WaitGroup::new());
    let job = group.add();
    green::run(|| {
        let group = group.clone();
        green::spawn(move || group.wait());
        green::yield_now();
    });
    assert_eq!(group.count(), 1);
    job.done();
    assert_eq!(group.wait(), Ok(()));
}

#[test]
fn a_cancelled_wait_reports_it_and_leaves_the_group_unchanged() {
    green::run(|| {
        let group = Arc::new(WaitGroup::new());
        let job = group.add();
        let waiter = {
            let group = group.clone();
            green::spawn(move || group.wait())
        };
        green::yield_now();
        waiter.cancel();
        assert_eq!(waiter.join().unwrap(), Err(WaitError::Cancelled));
        assert_eq!(green::timeout(SHORT, || group.wait()).map_err(|_| "elapsed"), Err("elapsed"));
        assert_eq!(group.count(), 1);
        job.done();
        assert_eq!(group.wait(), Ok(()));
    });
}
