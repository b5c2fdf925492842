//! Shutdown: coroutines still alive when main returns are cancelled and
//! their stacks unwound, so everything they own is dropped, whatever they
//! were doing; their handles report the cancellation.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use green::JoinHandle;
use green_tests::{DropCounter, DropToken, describe, mappings, open_fds, run_in_child};

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_coroutine_parked_in_sleep_is_unwound() {
    let counter = DropCounter::new();
    let resumed = Rc::new(Cell::new(false));
    green::run(|| {
        let (token, resumed) = (counter.token(), resumed.clone());
        green::spawn(move || {
            let _token = token;
            green::sleep(HOUR).expect("not cancelled");
            resumed.set(true);
        });
        green::yield_now();
        assert_eq!(counter.dropped(), 0, "still asleep while main runs");
    });
    assert_eq!(counter.dropped(), 1);
    assert!(!resumed.get(), "the code after the sleep never ran");
}

#[test]
fn a_coroutine_sleeping_forever_is_unwound() {
    let counter = DropCounter::new();
    green::run(|| {
        let token = counter.token();
        green::spawn(move || {
            let _token = token;
            green::sleep(Duration::MAX).expect("not cancelled");
        });
        green::yield_now();
    });
    assert_eq!(counter.dropped(), 1);
}

#[test]
fn a_coroutine_that_never_started_drops_its_closure() {
    let counter = DropCounter::new();
    let started = Rc::new(Cell::new(false));
    green::run(|| {
        let (token, started) = (counter.token(), started.clone());
        // Spawned as main's last act: main returns before it is scheduled.
        green::spawn(move || {
            started.set(true);
            drop(token);
        });
    });
    assert!(!started.get(), "it was cancelled before it started");
    assert_eq!(counter.dropped(), 1);
}

#[test]
fn a_runnable_coroutine_that_keeps_yielding_is_unwound() {
    let counter = DropCounter::new();
    green::run(|| {
        let token = counter.token();
        green::spawn(move || {
            let _token = token;
            loop {
                green::yield_now();
            }
        });
        for _ in 0..5 {
            green::yield_now();
        }
    });
    assert_eq!(counter.dropped(), 1);
}

#[test]
fn a_coroutine_parked_in_join_is_unwound_with_the_one_it_joins() {
    let counter = DropCounter::new();
    green::run(|| {
        let token = counter.token();
        let sleeper = green::spawn(move || {
            let _token = token;
            green::sleep(HOUR).expect("not cancelled");
        });
        let token = counter.token();
        green::spawn(move || {
            let _token = token;
            let _ = sleeper.join();
        });
        green::yield_now();
    });
    assert_eq!(counter.dropped(), 2);
}

#[test]
fn every_frame_of_a_deep_stack_is_unwound() {
    fn descend(depth: usize, counter: &DropCounter) {
        let _token = counter.token();
        if depth == 0 {
            green::sleep(HOUR).expect("not cancelled");
        } else {
            descend(depth - 1, counter);
        }
    }
    let counter = DropCounter::new();
    green::run(|| {
        let inner = counter.clone();
        green::spawn(move || descend(99, &inner));
        green::yield_now();
        assert_eq!(counter.dropped(), 0);
    });
    assert_eq!(counter.dropped(), 100);
}

#[test]
fn many_coroutines_in_every_state_are_all_unwound() {
    let counter = DropCounter::new();
    green::run(|| {
        for i in 0..300 {
            let token = counter.token();
            green::spawn(move || {
                let _token = token;
                match i % 3 {
                    0 => green::sleep(HOUR),
                    1 => loop {
                        green::yield_now();
                    },
                    _ => green::sleep(Duration::MAX),
                }
            });
        }
        green::yield_now();
        // And some that never start.
        for _ in 0..100 {
            let token = counter.token();
            green::spawn(move || drop(token));
        }
    });
    assert_eq!(counter.dropped(), 400);
}

#[test]
fn a_join_handle_returned_out_of_run_reports_cancellation() {
    let handle: JoinHandle<u32> = green::run(|| {
        green::task::Builder::new()
            .name("sleeper")
            .spawn(|| {
                green::sleep(HOUR).expect("not cancelled");
                1
            })
            .unwrap()
    });
    let id = handle.id();
    let err = handle.join().expect_err("the coroutine never finished");
    assert!(err.is_cancelled());
    assert!(!err.is_panic());
    assert_eq!(err.name(), Some("sleeper"));
    assert_eq!(err.id(), id);
    assert!(err.to_string().contains("cancelled"), "{err}");
}

#[test]
fn a_join_handle_of_a_never_started_coroutine_reports_cancellation() {
    let handle = green::run(|| green::spawn(|| 1));
    assert!(handle.join().unwrap_err().is_cancelled());
}

#[test]
fn a_finished_coroutine_keeps_its_result_after_shutdown() {
    let handle = green::run(|| {
        let handle = green::spawn(|| 5);
        green::yield_now();
        assert!(handle.is_finished());
        handle
    });
    assert_eq!(handle.join().unwrap(), 5);
}

/// Spawns a coroutine from its destructor.
struct SpawnOnDrop {
    /// Given to the coroutine spawned on drop.
    token: Option<DropToken>,
    /// Set when the spawn succeeded.
    spawned: Rc<Cell<bool>>,
}

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        let token = self.token.take();
        let spawned = green::task::Builder::new().spawn(move || {
            let _token = token;
            green::sleep(HOUR).expect("not cancelled");
        });
        self.spawned.set(spawned.is_ok());
    }
}

#[test]
fn coroutines_spawned_by_destructors_during_shutdown_are_unwound_too() {
    let counter = DropCounter::new();
    let spawned = Rc::new(Cell::new(false));
    green::run(|| {
        let guard = SpawnOnDrop { token: Some(counter.token()), spawned: spawned.clone() };
        green::spawn(move || {
            let _guard = guard;
            green::sleep(HOUR).expect("not cancelled");
        });
        green::yield_now();
    });
    assert!(spawned.get(), "the destructor could spawn");
    assert_eq!(counter.dropped(), 1, "and what it spawned was unwound");
}

/// Blocks in its destructor: sleeps, yields and joins.
struct BlockOnDrop {
    /// A coroutine to join from the destructor.
    join: Option<JoinHandle<()>>,
    /// What the destructor saw.
    log: Rc<RefCell<Vec<&'static str>>>,
}

impl Drop for BlockOnDrop {
    fn drop(&mut self) {
        let slept = green::sleep(HOUR);
        self.log.borrow_mut().push(if slept.is_err() { "sleep cancelled" } else { "slept" });
        green::yield_now();
        self.log.borrow_mut().push("yielded");
        if let Some(handle) = self.join.take() {
            let interrupted = handle.join().is_err_and(|e| e.is_interrupted() || e.is_cancelled());
            self.log.borrow_mut().push(if interrupted { "join cancelled" } else { "join returned" });
        }
    }
}

#[test]
fn destructors_that_block_during_shutdown_return_at_once() {
    let log = Rc::new(RefCell::new(Vec::new()));
    green::run(|| {
        let other = green::spawn(|| {
            // Torn down at shutdown, by which time nobody reads the result.
            let _ = green::sleep(HOUR);
        });
        let guard = BlockOnDrop { join: Some(other), log: log.clone() };
        green::spawn(move || {
            let _guard = guard;
            green::sleep(HOUR).expect("not cancelled");
        });
        green::yield_now();
    });
    assert_eq!(*log.borrow(), ["sleep cancelled", "yielded", "join cancelled"]);
}

/// Panics in its destructor; its token is dropped after that.
struct PanicOnDrop {
    /// Counts the drop of this value.
    _token: DropToken,
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("destructor panics during shutdown");
    }
}

// A destructor that panics while a *started* coroutine is unwound aborts
// the process, as it would on a thread (a panic during unwinding cannot be
// caught); so only a never-started coroutine's closure is dropped outside
// any unwinding, and only there can a panicking destructor be survived.
#[test]
fn a_panicking_destructor_of_a_never_started_coroutine_does_not_stop_the_others() -> io::Result<()> {
    // In a child process, so that a runtime that aborts here does not take
    // the other tests of this binary with it.
    let output =
        run_in_child("a_panicking_destructor_of_a_never_started_coroutine_does_not_stop_the_others", || {
            let counter = DropCounter::new();
            let value = green::run(|| {
                let token = counter.token();
                green::spawn(move || {
                    let _token = token;
                    green::sleep(HOUR).expect("not cancelled");
                });
                green::yield_now();
                let bomb = PanicOnDrop { _token: counter.token() };
                green::spawn(move || drop(bomb));
                let token = counter.token();
                green::spawn(move || drop(token));
                "main's value"
            });
            assert_eq!(value, "main's value");
            assert_eq!(counter.dropped(), 3, "every value dropped, and only once");
        })?;
    assert!(output.status.success(), "{}", describe(&output));
    Ok(())
}

#[test]
fn run_closes_every_descriptor_it_opened() -> io::Result<()> {
    // In a child process: other tests of this binary open descriptors in
    // parallel and would disturb the count.
    let output = run_in_child("run_closes_every_descriptor_it_opened", || {
        let before = open_fds().expect("count descriptors");
        for _ in 0..3 {
            green::run(|| {
                for _ in 0..100 {
                    green::spawn(|| green::sleep(HOUR));
                }
                green::sleep(Duration::from_millis(1)).expect("not cancelled");
            });
        }
        let after = open_fds().expect("count descriptors");
        assert_eq!(after, before, "descriptors open before and after three runtimes");
    })?;
    assert!(output.status.success(), "{}", describe(&output));
    Ok(())
}

#[test]
fn run_unmaps_the_stacks_it_mapped() -> io::Result<()> {
    // In a child process, like the descriptor count. A first runtime warms
    // up whatever the process maps once (allocator arenas, the signal
    // stack); later ones must leave the count where they found it.
    let output = run_in_child("run_unmaps_the_stacks_it_mapped", || {
        let many = || {
            green::run(|| {
                for _ in 0..1_000 {
                    green::task::Builder::new().stack_size(64 * 1024).spawn(|| green::sleep(HOUR)).unwrap();
                }
                green::yield_now();
            })
        };
        many();
        let before = mappings().expect("count mappings");
        many();
        many();
        let after = mappings().expect("count mappings");
        assert_eq!(after, before, "mappings before and after two runtimes of 1,000 coroutines");
    })?;
    assert!(output.status.success(), "{}", describe(&output));
    Ok(())
}
