//! Outside a runtime the blocking calls behave like their `std`
//! counterparts and the coroutine queries say there is no coroutine.

use std::panic;
use std::time::{Duration, Instant};

use green_tests::panic_message;

#[test]
fn sleep_until_outside_a_runtime_blocks_the_thread_until_the_deadline() {
    let deadline = Instant::now() + Duration::from_millis(20);
    green::sleep_until(deadline).expect("not cancelled");
    assert!(Instant::now() >= deadline);
}

#[test]
fn sleep_until_the_past_outside_a_runtime_returns() {
    green::sleep_until(Instant::now() - Duration::from_secs(1)).expect("not cancelled");
    green::sleep(Duration::ZERO).expect("not cancelled");
}

#[test]
fn yield_now_outside_a_runtime_returns() {
    for _ in 0..10 {
        green::yield_now();
    }
}

#[test]
fn try_current_outside_a_runtime_is_none() {
    assert_eq!(green::try_current(), None);
}

#[test]
fn current_outside_a_runtime_panics_with_a_clear_message() {
    let payload = panic::catch_unwind(green::current).expect_err("current() must panic");
    let message = panic_message(&*payload).unwrap_or_default();
    assert!(message.contains("outside a coroutine"), "{message}");
    assert!(message.contains("green::run"), "says how to start one: {message}");
}

#[test]
fn after_run_returns_the_thread_is_outside_again() {
    let inside = green::run(green::try_current);
    assert!(inside.is_some());
    assert_eq!(green::try_current(), None);
    let deadline = Instant::now() + Duration::from_millis(10);
    green::sleep_until(deadline).expect("not cancelled");
    assert!(Instant::now() >= deadline);
    assert!(green::task::Builder::new().spawn(|| ()).is_err());
}

#[test]
fn after_run_panics_the_thread_is_outside_again() {
    let result = panic::catch_unwind(|| green::run(|| -> () { panic!("main fails") }));
    assert!(result.is_err());
    assert_eq!(green::try_current(), None);
    assert!(green::task::Builder::new().spawn(|| ()).is_err());
    assert_eq!(green::run(|| 3), 3, "a new runtime can start");
}

#[test]
fn a_plain_thread_next_to_a_runtime_is_outside() {
    green::run(|| {
        let from_thread = std::thread::spawn(|| {
            let deadline = Instant::now() + Duration::from_millis(5);
            green::sleep_until(deadline).expect("not cancelled");
            green::yield_now();
            (
                green::try_current(),
                Instant::now() >= deadline,
                green::task::Builder::new().spawn(|| ()).is_err(),
            )
        })
        .join()
        .unwrap();
        assert_eq!(from_thread, (None, true, true));
        assert!(green::try_current().is_some());
    });
}
