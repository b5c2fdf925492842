//! Deadlock: when every coroutine is parked and nothing (no timer, no I/O)
//! could ever wake one, `run` panics with a report instead of hanging.
//!
//! With the public API alone, main cannot join into a cycle of joins: a
//! `JoinHandle` has one owner, so once two coroutines hold each other's
//! handles nobody else holds either. Main therefore waits forever in the
//! cycle tests with `sleep(Duration::MAX)`, which arms no timer.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use green::JoinHandle;
use green_tests::{DropCounter, panic_message, panic_text_of};

/// Where a coroutine finds a handle someone else spawned.
type Slot = Rc<RefCell<Option<JoinHandle<()>>>>;

/// Runs `main` on a runtime whose main coroutine is named "entry" and
/// returns the message `run` panicked with.
fn panic_of(main: impl FnOnce()) -> String {
    panic_text_of("run must panic instead of hanging", || green::Builder::new().name("entry").run(main))
}

#[test]
fn main_joining_a_coroutine_that_sleeps_forever_is_reported() {
    let counter = DropCounter::new();
    let message = panic_of(|| {
        let token = counter.token();
        let stuck = green::spawn(move || {
            let _token = token;
            green::sleep(Duration::MAX).expect("not cancelled");
        });
        let _ = stuck.join();
    });
    assert!(message.contains("deadlock"), "{message}");
    assert!(message.contains("entry"), "names the runtime's main coroutine: {message}");
    assert_eq!(counter.dropped(), 1, "the stuck coroutine was unwound");
}

#[test]
fn main_joining_a_chain_of_joins_that_ends_nowhere_is_reported() {
    let counter = DropCounter::new();
    let message = panic_of(|| {
        let token = counter.token();
        let last = green::spawn(move || {
            let _token = token;
            green::sleep(Duration::MAX).expect("not cancelled");
        });
        let token = counter.token();
        let middle = green::spawn(move || {
            let _token = token;
            let _ = last.join();
        });
        let token = counter.token();
        let first = green::spawn(move || {
            let _token = token;
            let _ = middle.join();
        });
        let _ = first.join();
    });
    assert!(message.contains("deadlock"), "{message}");
    assert_eq!(counter.dropped(), 3);
}

#[test]
fn two_coroutines_joining_each_other_are_reported() {
    let counter = DropCounter::new();
    let message = panic_of(|| {
        let (slot_a, slot_b): (Slot, Slot) = Default::default();
        let (token, partner) = (counter.token(), slot_b.clone());
        let a = green::spawn(move || {
            let _token = token;
            // B is spawned after A: wait until main has handed B over.
            while partner.borrow().is_none() {
                green::yield_now();
            }
            let b = partner.borrow_mut().take().unwrap();
            let _ = b.join();
        });
        let (token, partner) = (counter.token(), slot_a.clone());
        let b = green::spawn(move || {
            let _token = token;
            let a = partner.borrow_mut().take().expect("main handed A over before B started");
            let _ = a.join();
        });
        *slot_a.borrow_mut() = Some(a);
        *slot_b.borrow_mut() = Some(b);
        green::sleep(Duration::MAX).expect("not cancelled");
    });
    assert!(message.contains("deadlock"), "{message}");
    assert_eq!(counter.dropped(), 2, "the deadlocked coroutines were unwound");
}

#[test]
fn main_sleeping_forever_alone_is_reported() {
    let message = panic_of(|| {
        let _ = green::sleep(Duration::MAX);
    });
    assert!(message.contains("deadlock"), "{message}");
}

#[test]
fn a_pending_timer_is_not_a_deadlock() {
    // Main parks in a join with no timer of its own; the sleeper's timer is
    // what will wake the pair.
    let value = green::run(|| {
        green::spawn(|| {
            green::sleep(Duration::from_millis(10)).expect("not cancelled");
            4
        })
        .join()
        .unwrap()
    });
    assert_eq!(value, 4);
}

#[test]
fn a_runtime_after_a_deadlock_works() {
    let _ = panic_of(|| {
        let _ = green::sleep(Duration::MAX);
    });
    assert_eq!(green::try_current(), None);
    assert_eq!(green::run(|| green::spawn(|| 2).join().unwrap()), 2);
}

#[test]
fn a_coroutine_joining_itself_panics_instead_of_hanging() {
    let report: Rc<RefCell<Option<String>>> = Rc::default();
    green::run(|| {
        let slot: Slot = Rc::default();
        let (own, reported) = (slot.clone(), report.clone());
        let handle = green::task::Builder::new()
            .name("narcissus")
            .spawn(move || {
                let me = own.borrow_mut().take().expect("main put my handle here");
                let joined = panic::catch_unwind(AssertUnwindSafe(|| me.join()));
                let payload = joined.expect_err("joining itself must panic");
                *reported.borrow_mut() = panic_message(&*payload).map(str::to_owned);
            })
            .unwrap();
        *slot.borrow_mut() = Some(handle);
        for _ in 0..100 {
            if report.borrow().is_some() {
                break;
            }
            green::yield_now();
        }
    });
    let message = report.borrow().clone().expect("the self-join returned with a panic");
    assert!(message.contains("join itself"), "{message}");
    assert!(message.contains("narcissus"), "names the coroutine: {message}");
}
