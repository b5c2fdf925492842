//! Panics: a panicking coroutine reports to its joiner and nobody else; a
//! panic in main leaves `run` with its payload; a dropped handle detaches.

use std::cell::{Cell, RefCell};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use green_tests::{DropCounter, describe, panic_message, run_in_child, stderr_of};

#[test]
fn join_reports_the_panic_with_payload_message_and_name() {
    green::run(|| {
        let handle = green::task::Builder::new().name("bad").spawn(|| -> u32 { panic!("boom") }).unwrap();
        let id = handle.id();
        let err = handle.join().expect_err("the coroutine panicked");
        assert!(err.is_panic());
        assert!(!err.is_cancelled());
        assert_eq!(err.panic_message(), Some("boom"));
        assert_eq!(err.name(), Some("bad"));
        assert_eq!(err.id(), id);
        let shown = err.to_string();
        assert!(shown.contains("'bad'") && shown.contains("boom"), "{shown}");
        let payload = err.into_panic();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    });
}

#[test]
fn formatted_panic_messages_are_reported() {
    green::run(|| {
        let err = green::spawn(|| -> () { panic!("failed at step {}", 3) }).join().unwrap_err();
        assert_eq!(err.panic_message(), Some("failed at step 3"));
        assert_eq!(err.name(), None);
    });
}

#[test]
fn non_string_payloads_come_back_intact() {
    #[derive(Debug, PartialEq)]
    struct Custom(u32);
    green::run(|| {
        let err = green::spawn(|| panic::panic_any(Custom(17))).join().unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.panic_message(), None);
        assert_eq!(err.into_panic().downcast::<Custom>().ok().as_deref(), Some(&Custom(17)));
    });
}

#[test]
fn the_scheduler_and_other_coroutines_keep_running_after_a_panic() {
    let counter = DropCounter::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    green::run(|| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let log = log.clone();
                let token = counter.token();
                green::spawn(move || {
                    let _token = token;
                    green::yield_now();
                    if i % 2 == 1 {
                        panic!("odd {i}");
                    }
                    green::yield_now();
                    log.borrow_mut().push(i);
                    i
                })
            })
            .collect();
        let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().map_err(|e| e.to_string())).collect();
        for (i, outcome) in outcomes.iter().enumerate() {
            match outcome {
                Ok(value) => assert_eq!(*value, i),
                Err(message) => assert!(i % 2 == 1 && message.contains(&format!("odd {i}")), "{message}"),
            }
        }
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 3);
        // The runtime is still usable.
        assert_eq!(green::spawn(|| 9).join().unwrap(), 9);
    });
    assert_eq!(*log.borrow(), [0, 2, 4]);
    assert_eq!(counter.dropped(), 6, "the panicking coroutines unwound and dropped their values");
}

#[test]
fn a_panic_in_main_leaves_run_with_the_same_payload() {
    #[derive(Debug, PartialEq)]
    struct Payload(&'static str);
    let payload = panic::catch_unwind(|| green::run(|| panic::panic_any(Payload("from main"))))
        .expect_err("run must panic");
    assert_eq!(payload.downcast_ref::<Payload>(), Some(&Payload("from main")));

    let payload = panic::catch_unwind(|| green::run(|| -> () { panic!("main says {}", "no") })).unwrap_err();
    assert_eq!(panic_message(&*payload), Some("main says no"));
}

#[test]
fn a_panic_in_main_tears_down_the_other_coroutines() {
    let counter = DropCounter::new();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        green::run(|| {
            for _ in 0..3 {
                let token = counter.token();
                green::spawn(move || {
                    let _token = token;
                    green::sleep(Duration::from_secs(3600)).expect("not cancelled");
                });
            }
            green::yield_now();
            panic!("main gives up");
        })
    }));
    assert!(result.is_err());
    assert_eq!(counter.dropped(), 3);
    // The thread is free for a new runtime.
    assert_eq!(green::run(|| 1), 1);
}

#[test]
fn dropping_a_join_handle_detaches_the_coroutine() {
    let done = Rc::new(Cell::new(false));
    green::run(|| {
        let flag = done.clone();
        let handle = green::spawn(move || {
            for _ in 0..3 {
                green::yield_now();
            }
            flag.set(true);
        });
        drop(handle);
        // Wait for it through something else: a coroutine that yields more
        // often than the detached one does.
        green::spawn(|| {
            for _ in 0..10 {
                green::yield_now();
            }
        })
        .join()
        .unwrap();
        assert!(done.get(), "the detached coroutine ran to completion");
    });
}

#[test]
fn a_detached_coroutine_that_sleeps_still_finishes() {
    let done = Rc::new(Cell::new(false));
    let deadline = Rc::new(Cell::new(None));
    green::run(|| {
        let (flag, shared_deadline) = (done.clone(), deadline.clone());
        drop(green::spawn(move || {
            let wake_at = Instant::now() + Duration::from_millis(5);
            shared_deadline.set(Some(wake_at));
            green::sleep_until(wake_at).expect("not cancelled");
            flag.set(true);
        }));
        green::yield_now();
        // Sleep past its deadline; the last sleep starts after the deadline,
        // so the detached coroutine's timer, due earlier, fires first.
        let wake_at = deadline.get().expect("the detached coroutine has started");
        green::sleep_until(wake_at).expect("not cancelled");
        green::sleep(Duration::from_millis(1)).expect("not cancelled");
        assert!(done.get(), "the detached coroutine woke and finished");
    });
}

#[test]
fn a_detached_coroutine_may_panic_without_harm() {
    let after = Rc::new(Cell::new(false));
    green::run(|| {
        drop(green::spawn(|| -> () { panic!("nobody is listening") }));
        green::yield_now();
        let flag = after.clone();
        green::spawn(move || flag.set(true)).join().unwrap();
    });
    assert!(after.get());
}

#[test]
fn a_panic_report_names_the_coroutine() -> io::Result<()> {
    let output = run_in_child("a_panic_report_names_the_coroutine", || {
        green::run(|| {
            let err =
                green::task::Builder::new().name("reporter").spawn(|| -> () { panic!("loud") }).unwrap();
            assert!(err.join().is_err());
        });
    })?;
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("coroutine 'reporter' (id "), "{}", describe(&output));
    assert!(stderr.contains("panicked"), "{}", describe(&output));
    assert!(stderr.contains("loud"), "the standard report follows: {}", describe(&output));
    Ok(())
}
