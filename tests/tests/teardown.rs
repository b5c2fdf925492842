//! Shutdown always finishes, whatever the coroutines do with the unwind
//! that tears them down: `run` returns after `main` returns even when user
//! code catches that unwind (a per-request `catch_unwind` loop), when a
//! destructor waits, or when a coroutine is suspended in the middle of an
//! unwind of its own. A coroutine that refuses to die is leaked (its stack
//! stays mapped) with one line on stderr naming it.
//!
//! Every scenario that hangs when broken runs in a child process that is
//! killed if it does not finish within a minute.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use green::sync::{Event, Mutex};
use green_tests::{DropCounter, describe, run_in_child_or_hang, stderr_of};

const HOUR: Duration = Duration::from_secs(3600);
/// Only turns a hang into a failure.
const HANG: Duration = Duration::from_secs(60);

/// Runs `body` in a child that must exit with status 0; returns its stderr.
fn finishes(test: &str, body: impl FnOnce()) -> String {
    let output = run_in_child_or_hang(test, HANG, body).expect("child runs");
    let output = output.unwrap_or_else(|| panic!("{test}: the child hung: run never returned"));
    assert!(output.status.success(), "{}", describe(&output));
    stderr_of(&output)
}

#[test]
fn a_catch_unwind_loop_around_waits_does_not_keep_run_from_returning() {
    let stderr = finishes("a_catch_unwind_loop_around_waits_does_not_keep_run_from_returning", || {
        let returned = green::run(|| {
            green::task::Builder::new()
                .name("isolating-server")
                .spawn(|| {
                    // Per-request panic isolation: every request runs
                    // behind its own panic boundary.
                    loop {
                        let _ = panic::catch_unwind(|| green::sleep(HOUR));
                    }
                })
                .expect("spawned");
            green::yield_now();
            7
        });
        assert_eq!(returned, 7);
        println!("run returned");
    });
    assert!(stderr.contains("isolating-server"), "the leak is reported by name: {stderr}");
    assert_eq!(stderr.matches("isolating-server").count(), 1, "one line: {stderr}");
}

#[test]
fn a_loop_that_catches_the_unwind_and_keeps_the_payload_is_given_up_on() {
    finishes("a_loop_that_catches_the_unwind_and_keeps_the_payload_is_given_up_on", || {
        green::run(|| {
            green::spawn(|| {
                let mut kept = Vec::new();
                loop {
                    if let Err(payload) = panic::catch_unwind(|| green::sleep(HOUR)) {
                        kept.push(payload);
                    }
                    // Holding the payloads, it waits on: nothing stops it
                    // but the budget of failing waits.
                    let _ = green::sleep(HOUR);
                }
            });
            green::yield_now();
        });
    });
}

#[test]
fn a_yield_loop_behind_catch_unwind_is_given_up_on() {
    finishes("a_yield_loop_behind_catch_unwind_is_given_up_on", || {
        green::run(|| {
            green::spawn(|| {
                loop {
                    let _ = panic::catch_unwind(green::yield_now);
                }
            });
            green::yield_now();
        });
    });
}

#[test]
fn destructors_that_wait_during_the_teardown_see_their_waits_fail() {
    /// Waits on a lock that main holds forever, when dropped.
    struct LocksOnDrop {
        lock: Rc<Mutex<()>>,
        saw: Rc<Cell<Option<bool>>>,
    }
    impl Drop for LocksOnDrop {
        fn drop(&mut self) {
            self.saw.set(Some(self.lock.lock().is_ok()));
            // A sleep in a destructor returns too.
            let _ = green::sleep(HOUR);
        }
    }
    let saw = Rc::new(Cell::new(None));
    let lock = Rc::new(Mutex::new(()));
    green::run(|| {
        // Locked for good: the guard is leaked, so the teardown finds the
        // lock held.
        std::mem::forget(lock.lock().expect("free"));
        let guard = LocksOnDrop { lock: lock.clone(), saw: saw.clone() };
        green::spawn(move || {
            let _guard = guard;
            green::sleep(HOUR).expect("not cancelled");
        });
        green::yield_now();
    });
    assert_eq!(saw.get(), Some(false), "the lock wait failed instead of blocking the thread");
}

#[test]
fn a_coroutine_suspended_in_the_middle_of_its_own_unwind_finishes_it_at_shutdown() {
    /// Waits for an event nobody sets, when dropped.
    struct WaitsOnDrop(Rc<Event>, Rc<Cell<u32>>);
    impl Drop for WaitsOnDrop {
        fn drop(&mut self) {
            let _ = self.0.wait();
            self.1.set(self.1.get() + 1);
        }
    }
    let counter = DropCounter::new();
    let drops = Rc::new(Cell::new(0));
    green::run(|| {
        let (token, event, drops) = (counter.token(), Rc::new(Event::new()), drops.clone());
        green::spawn(move || {
            let _token = token;
            let _waits = WaitsOnDrop(event, drops);
            panic!("a panic whose unwind waits in a destructor");
        });
        // Let it panic and park in the destructor.
        green::yield_now();
        green::yield_now();
    });
    assert_eq!(drops.get(), 1, "the waiting destructor finished");
    assert_eq!(counter.dropped(), 1, "the rest of the unwind ran");
}

#[test]
fn ten_thousand_coroutines_that_refuse_to_die_are_all_given_up_on() {
    let stderr = finishes("ten_thousand_coroutines_that_refuse_to_die_are_all_given_up_on", || {
        green::run(|| {
            for _ in 0..10_000 {
                green::spawn(|| {
                    loop {
                        let _ = panic::catch_unwind(|| green::sleep(HOUR));
                    }
                });
            }
            green::yield_now();
        });
    });
    assert_eq!(stderr.matches("is leaked").count(), 10_000, "one line each");
}

#[test]
fn a_refusing_coroutine_next_to_ordinary_ones_does_not_stop_their_teardown() {
    let stderr = finishes("a_refusing_coroutine_next_to_ordinary_ones_does_not_stop_their_teardown", || {
        let counter = DropCounter::new();
        green::run(|| {
            for i in 0..100 {
                let token = counter.token();
                green::spawn(move || {
                    let _token = token;
                    if i == 50 {
                        loop {
                            let _ = panic::catch_unwind(|| green::sleep(HOUR));
                        }
                    }
                    green::sleep(HOUR).expect("not cancelled");
                });
            }
            green::yield_now();
        });
        // The refusing one keeps its token: it never finished unwinding.
        assert_eq!(counter.dropped(), 99);
    });
    assert_eq!(stderr.matches("is leaked").count(), 1, "{stderr}");
}

#[test]
fn the_deadlock_report_is_not_swallowed_by_a_main_inside_a_scope() {
    let stderr = finishes("the_deadlock_report_is_not_swallowed_by_a_main_inside_a_scope", || {
        let payload = panic::catch_unwind(AssertUnwindSafe(|| {
            green::run(|| {
                let stuck = green::spawn(|| green::sleep(Duration::MAX));
                let _ = green::scope(|s| {
                    s.spawn(|| green::sleep(Duration::MAX).map_err(|_| "cancelled"));
                    let _ = stuck.join();
                });
            })
        }))
        .expect_err("run reports the deadlock");
        let message = green_tests::panic_message(&*payload).unwrap_or_default().to_owned();
        assert!(message.contains("deadlock"), "{message}");
    });
    assert!(stderr.contains("deadlock"), "{stderr}");
}

#[test]
fn a_coroutine_caught_unwinding_in_a_destructor_loop_of_its_own_is_given_up_on() {
    /// Loops on a sleep that fails, ignoring the error, when dropped.
    struct Stubborn;
    impl Drop for Stubborn {
        fn drop(&mut self) {
            loop {
                let _ = green::sleep(HOUR);
            }
        }
    }
    finishes("a_coroutine_caught_unwinding_in_a_destructor_loop_of_its_own_is_given_up_on", || {
        green::run(|| {
            green::spawn(|| {
                let _stubborn = Stubborn;
                green::sleep(HOUR).expect("not cancelled");
            });
            green::yield_now();
        });
    });
}
