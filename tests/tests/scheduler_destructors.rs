//! Destructors the runtime runs itself never freeze its thread: the
//! closure of a coroutine cancelled before it started is dropped inside
//! that coroutine (where a wait fails with a cancellation error instead of
//! blocking), and a wait made on the runtime's thread outside any
//! coroutine (a detached coroutine's result dropped by the scheduler)
//! fails instead of parking the thread.
//!
//! Each scenario hangs when broken, so it runs in a child process that is
//! killed if it does not finish within a minute.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use green::sync::Mutex;
use green_tests::{describe, run_in_child_or_hang};

const HANG: Duration = Duration::from_secs(60);

/// Locks `lock` when dropped and records whether it got it.
struct LocksOnDrop {
    lock: Rc<Mutex<u32>>,
    got: Rc<Cell<Option<bool>>>,
}

impl Drop for LocksOnDrop {
    fn drop(&mut self) {
        self.got.set(Some(self.lock.lock().is_ok()));
    }
}

/// Runs `body` in a child that must finish with status 0.
fn finishes(test: &str, body: impl FnOnce()) {
    let output = run_in_child_or_hang(test, HANG, body).expect("child runs");
    let output = output.unwrap_or_else(|| panic!("{test}: the runtime froze"));
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn the_closure_of_a_coroutine_cancelled_before_it_started_is_dropped_where_waits_work() {
    finishes("the_closure_of_a_coroutine_cancelled_before_it_started_is_dropped_where_waits_work", || {
        let got = Rc::new(Cell::new(None));
        let lock = Rc::new(Mutex::new(0));
        let got_here = got.clone();
        green::run(move || {
            let holder_lock = lock.clone();
            // Holds the lock across a sleep: the drop below finds it held.
            let holder = green::spawn(move || {
                let _guard = holder_lock.lock().expect("free");
                green::sleep(Duration::from_millis(20)).expect("not cancelled");
            });
            green::yield_now();
            let on_drop = LocksOnDrop { lock: lock.clone(), got: got_here };
            let never = green::spawn(move || drop(on_drop));
            never.cancel();
            assert!(never.join().unwrap_err().is_cancelled());
            holder.join().expect("the holder finishes: the thread did not freeze");
        });
        assert_eq!(got.get(), Some(false), "the drop's lock wait failed: its coroutine was cancelled");
    });
}

#[test]
fn a_detached_result_whose_drop_waits_does_not_freeze_the_runtime() {
    finishes("a_detached_result_whose_drop_waits_does_not_freeze_the_runtime", || {
        let got = Rc::new(Cell::new(None));
        let got_here = got.clone();
        green::run(move || {
            let lock = Rc::new(Mutex::new(0));
            let holder_lock = lock.clone();
            let holder = green::spawn(move || {
                let _guard = holder_lock.lock().expect("free");
                green::sleep(Duration::from_millis(20)).expect("not cancelled");
            });
            green::yield_now();
            // Detached: its result is dropped when it finishes.
            drop(green::spawn(move || LocksOnDrop { lock, got: got_here }));
            holder.join().expect("the holder finishes: the thread did not freeze");
        });
        assert!(got.get().is_some(), "the result was dropped");
    });
}

#[test]
fn closures_left_unstarted_at_shutdown_are_dropped_where_waits_fail_instead_of_blocking() {
    finishes("closures_left_unstarted_at_shutdown_are_dropped_where_waits_fail_instead_of_blocking", || {
        let got = Rc::new(Cell::new(None));
        let lock = Rc::new(Mutex::new(0));
        let (got_here, lock_here) = (got.clone(), lock.clone());
        green::run(move || {
            std::mem::forget(lock_here.lock().expect("free")); // held for good
            let on_drop = LocksOnDrop { lock: lock_here, got: got_here };
            // Main returns before it starts.
            green::spawn(move || drop(on_drop));
        });
        assert_eq!(got.get(), Some(false), "the wait failed at shutdown");
    });
}

#[test]
fn a_detached_coroutines_result_is_dropped_inside_that_coroutine() {
    /// Records, when dropped, which coroutine (if any) drops it.
    struct WhereDropped(Rc<Cell<Option<Option<green::TaskId>>>>);
    impl Drop for WhereDropped {
        fn drop(&mut self) {
            self.0.set(Some(green::try_current().map(|task| task.id())));
        }
    }
    let seen = Rc::new(Cell::new(None));
    let id = green::run(|| {
        let s = seen.clone();
        let handle = green::spawn(move || {
            green::yield_now();
            WhereDropped(s)
        });
        let id = handle.id();
        drop(handle); // detached before it finishes
        green::sleep(Duration::from_millis(1)).expect("not cancelled");
        id
    });
    assert_eq!(seen.get(), Some(Some(id)), "dropped by the coroutine that made it, not by the scheduler");
}
