//! Deadlocks on channels and locks are reported instead of hanging: a wait
//! on a primitive that no other thread or runtime has used cannot be ended
//! from outside, so when every coroutine is parked on such waits (and no
//! timer or I/O is pending) `run` panics with a report that lists every
//! parked coroutine, what it waits on and for how long. A primitive another
//! thread has used, or a thread that is still computing, keeps the runtime
//! waiting instead.

use std::rc::Rc;
use std::time::{Duration, Instant};

use green::sync::Mutex;
use green_tests::{DropCounter, panic_text_of};

/// Runs `main` on a runtime whose main coroutine is named "entry" and
/// returns the message `run` panicked with.
fn report_of(main: impl FnOnce()) -> String {
    panic_text_of("run must report the deadlock instead of hanging", || {
        green::Builder::new().name("entry").run(main)
    })
}

#[test]
fn waiting_on_a_receiver_whose_only_sender_the_waiter_holds_is_reported() {
    let counter = DropCounter::new();
    let report = report_of(|| {
        let _token = counter.token();
        let (tx, rx) = green::channel::bounded::<u32>(1);
        let _keep = tx;
        let _ = rx.recv();
    });
    assert!(report.contains("deadlock"), "{report}");
    assert!(report.contains("'entry'"), "names the parked coroutine: {report}");
    assert!(report.contains("a channel"), "says what it waits on: {report}");
    assert_eq!(counter.dropped(), 1, "main was unwound");
}

#[test]
fn a_lock_order_deadlock_is_reported_with_both_coroutines() {
    let report = report_of(|| {
        let (a, b) = (Rc::new(Mutex::new(())), Rc::new(Mutex::new(())));
        let (a1, b1) = (a.clone(), b.clone());
        let first = green::task::Builder::new()
            .name("a-then-b")
            .spawn(move || {
                let _a = a1.lock();
                green::yield_now();
                let _b = b1.lock();
            })
            .expect("spawned");
        let second = green::task::Builder::new()
            .name("b-then-a")
            .spawn(move || {
                let _b = b.lock();
                green::yield_now();
                let _a = a.lock();
            })
            .expect("spawned");
        let _ = first.join();
        let _ = second.join();
    });
    assert!(report.contains("deadlock"), "{report}");
    assert!(report.contains("'a-then-b'") && report.contains("'b-then-a'"), "{report}");
    assert!(report.contains("a Mutex"), "{report}");
    assert!(report.contains("a join of another coroutine"), "main's wait: {report}");
    assert!(report.contains(" for "), "how long each has waited: {report}");
}

#[test]
fn a_coroutine_waiting_for_a_thread_that_is_still_computing_is_not_reported() {
    let value = green::run(|| {
        let (tx, rx) = green::channel::bounded::<u64>(1);
        std::thread::spawn(move || {
            // Computes for longer than the runtime's grace before it first
            // touches the channel.
            let started = Instant::now();
            let mut x = 0u64;
            while started.elapsed() < Duration::from_millis(1500) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            tx.send(42).expect("receiver alive");
        });
        rx.recv().expect("the thread sends")
    });
    assert_eq!(value, 42);
}

#[test]
fn a_primitive_another_thread_has_used_keeps_the_runtime_waiting() {
    let values = green::run(|| {
        let (tx, rx) = green::channel::bounded::<u64>(1);
        std::thread::spawn(move || {
            tx.send(1).expect("receiver alive");
            // Blocks (uses no CPU) for longer than the grace: only its
            // earlier use of the channel tells the runtime that this
            // thread may still send.
            std::thread::sleep(Duration::from_millis(1500));
            tx.send(2).expect("receiver alive");
        });
        let first = rx.recv().expect("the thread sends");
        let second = rx.recv().expect("the thread sends again");
        (first, second)
    });
    assert_eq!(values, (1, 2));
}

#[test]
fn a_wait_on_a_semaphore_nobody_else_can_release_is_reported() {
    let report = report_of(|| {
        let permits = green::sync::Semaphore::new(0);
        let _ = permits.acquire();
    });
    assert!(report.contains("a Semaphore"), "{report}");
}
