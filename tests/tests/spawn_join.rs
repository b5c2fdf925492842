//! Spawning coroutines and joining them: values come back, names and ids
//! are reported, options are honoured, and misuse fails with a message.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::hint::black_box;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Barrier};

use green_tests::panic_message;

#[test]
fn join_returns_the_coroutine_value() {
    green::run(|| {
        let number = green::spawn(|| 6 * 7);
        let text = green::spawn(|| String::from("green"));
        let list = green::spawn(|| vec![1u8, 2, 3]);
        let unit = green::spawn(|| ());
        assert_eq!(number.join().unwrap(), 42);
        assert_eq!(text.join().unwrap(), "green");
        assert_eq!(list.join().unwrap(), [1, 2, 3]);
        unit.join().unwrap();
    });
}

#[test]
fn many_coroutines_are_all_joined() {
    let total = green::run(|| {
        let handles: Vec<_> = (0..1_000u64).map(|i| green::spawn(move || i * 2)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(total, 999 * 1_000);
}

#[test]
fn join_order_is_independent_of_finish_order() {
    const N: usize = 8;
    let finished = Rc::new(RefCell::new(Vec::new()));
    let results = green::run(|| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let finished = finished.clone();
                green::spawn(move || {
                    // The first spawned finishes last.
                    for _ in 0..(N - i) * 3 {
                        green::yield_now();
                    }
                    finished.borrow_mut().push(i);
                    i * 100
                })
            })
            .collect();
        // Joined first to last, while they finish last to first.
        handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    assert_eq!(results, (0..N).map(|i| i * 100).collect::<Vec<_>>());
    assert_eq!(*finished.borrow(), (0..N).rev().collect::<Vec<_>>(), "finish order");
}

#[test]
fn join_of_an_already_finished_coroutine_returns_at_once() {
    green::run(|| {
        let handle = green::spawn(|| "done");
        while !handle.is_finished() {
            green::yield_now();
        }
        assert_eq!(handle.join().unwrap(), "done");
    });
}

#[test]
fn is_finished_turns_true_when_the_coroutine_returns() {
    green::run(|| {
        let release = Rc::new(Cell::new(false));
        let gate = release.clone();
        let handle = green::spawn(move || {
            while !gate.get() {
                green::yield_now();
            }
            7
        });
        assert!(!handle.is_finished(), "not started yet");
        green::yield_now();
        assert!(!handle.is_finished(), "started, waiting for the gate");
        release.set(true);
        green::yield_now();
        assert!(handle.is_finished(), "returned after the gate opened");
        assert_eq!(handle.join().unwrap(), 7);
    });
}

#[test]
fn main_coroutine_is_named_main_by_default() {
    let name = green::run(|| green::current().name().map(str::to_owned));
    assert_eq!(name.as_deref(), Some("main"));
}

#[test]
fn runtime_builder_names_the_main_coroutine() {
    let name = green::Builder::new().name("entry").run(|| green::current().name().map(str::to_owned));
    assert_eq!(name.as_deref(), Some("entry"));
}

#[test]
fn spawned_coroutines_are_unnamed_unless_named() {
    green::run(|| {
        let unnamed = green::spawn(|| green::current().name().map(str::to_owned));
        let named = green::task::Builder::new()
            .name("worker")
            .spawn(|| green::current().name().map(str::to_owned))
            .unwrap();
        assert_eq!(unnamed.task().name(), None);
        assert_eq!(named.task().name(), Some("worker"));
        assert_eq!(unnamed.join().unwrap(), None);
        assert_eq!(named.join().unwrap().as_deref(), Some("worker"));
    });
}

#[test]
fn ids_are_unique_and_match_the_handle() {
    green::run(|| {
        let main_id = green::current().id();
        let handles: Vec<_> = (0..100).map(|_| green::spawn(|| green::current().id())).collect();
        let mut seen = HashSet::from([main_id]);
        for handle in handles {
            let from_handle = handle.id();
            assert_eq!(handle.task().id(), from_handle);
            let from_inside = handle.join().unwrap();
            assert_eq!(from_inside, from_handle, "current().id() inside == JoinHandle::id()");
            assert!(seen.insert(from_inside), "id {from_inside} reused");
        }
    });
}

#[test]
fn current_reports_the_running_coroutine_across_switches() {
    green::run(|| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                green::task::Builder::new()
                    .name(format!("w{i}"))
                    .spawn(move || {
                        for _ in 0..3 {
                            assert_eq!(green::current().name(), Some(format!("w{i}").as_str()));
                            green::yield_now();
                        }
                    })
                    .unwrap()
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
            assert_eq!(green::current().name(), Some("main"));
        }
    });
}

/// Uses about `depth` KiB of stack, so that it fails on a stack smaller
/// than that.
fn use_stack(depth: usize) -> u64 {
    let mut frame = [0u8; 1024];
    black_box(&mut frame);
    if depth == 0 {
        return u64::from(frame[0]);
    }
    let below = use_stack(depth - 1);
    black_box(below + u64::from(frame[1023]))
}

#[test]
fn task_builder_stack_size_gives_a_larger_stack() {
    // 1 MiB of frames overflows the default 256 KiB stack; the builder's
    // 4 MiB holds it.
    const { assert!(green::DEFAULT_STACK_SIZE < 1024 * 1024) };
    green::run(|| {
        let handle = green::task::Builder::new()
            .name("big")
            .stack_size(4 * 1024 * 1024)
            .spawn(|| use_stack(1024))
            .unwrap();
        assert_eq!(handle.join().unwrap(), 0);
    });
}

#[test]
fn task_builder_small_stack_runs_small_coroutines() {
    green::run(|| {
        let handles: Vec<_> = (0..100)
            .map(|i| green::task::Builder::new().stack_size(16 * 1024).spawn(move || i + 1).unwrap())
            .collect();
        let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, 5050);
    });
}

#[test]
fn runtime_builder_stack_size_applies_to_main_and_spawned_coroutines() {
    green::Builder::new().stack_size(4 * 1024 * 1024).run(|| {
        assert_eq!(use_stack(1024), 0, "main coroutine");
        assert_eq!(green::spawn(|| use_stack(1024)).join().unwrap(), 0, "spawned coroutine");
    });
}

#[test]
fn task_builder_spawn_outside_a_runtime_is_an_error() {
    let err = green::task::Builder::new().spawn(|| ()).expect_err("no runtime runs on this thread");
    let message = err.to_string();
    assert!(message.contains("outside a green runtime"), "{message}");
    assert!(message.contains("green::run"), "says how to start one: {message}");
}

#[test]
fn spawn_outside_a_runtime_panics_with_the_same_message() {
    let expected = green::task::Builder::new().spawn(|| ()).unwrap_err().to_string();
    let payload = panic::catch_unwind(|| green::spawn(|| ())).expect_err("spawn must panic");
    assert_eq!(panic_message(&*payload), Some(expected.as_str()));
}

#[test]
fn nested_run_inside_a_coroutine_panics_and_the_outer_runtime_goes_on() {
    green::run(|| {
        let in_main = panic::catch_unwind(|| green::run(|| 1)).expect_err("nested run in main");
        let message = panic_message(&*in_main).unwrap_or_default().to_owned();
        assert!(message.contains("inside a running green runtime"), "{message}");
        assert!(message.contains("green::spawn"), "says what to use instead: {message}");

        let in_child = green::spawn(|| panic::catch_unwind(|| green::run(|| 1)).is_err());
        assert!(in_child.join().unwrap(), "nested run in a spawned coroutine");

        assert_eq!(green::spawn(|| 5).join().unwrap(), 5, "the outer runtime still works");
    });
}

#[test]
fn run_returns_the_value_of_main() {
    assert_eq!(green::run(|| 42), 42);
    assert_eq!(green::run(|| String::from("out")), "out");
}

#[test]
fn main_may_borrow_from_the_caller() {
    let mut log = Vec::new();
    let greeting = String::from("hi");
    let length = green::run(|| {
        log.push(greeting.as_str());
        green::yield_now();
        log.push("after yield");
        greeting.len()
    });
    assert_eq!(length, 2);
    assert_eq!(log, ["hi", "after yield"]);
}

#[test]
fn runtimes_run_one_after_another_on_the_same_thread() {
    for round in 0..3 {
        let value = green::run(|| green::spawn(move || round * 10).join().unwrap());
        assert_eq!(value, round * 10);
    }
}

#[test]
fn two_runtimes_on_two_threads_run_independently() {
    // Both runtimes are inside `run` at the same time: each waits at the
    // barrier from its main coroutine.
    let barrier = Arc::new(Barrier::new(2));
    let worker = |label: &'static str, barrier: Arc<Barrier>| {
        std::thread::spawn(move || {
            green::run(|| {
                barrier.wait();
                let handles: Vec<_> = (0..50u64)
                    .map(|i| {
                        green::spawn(move || {
                            green::yield_now();
                            (green::current().id(), i)
                        })
                    })
                    .collect();
                let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
                barrier.wait();
                let name = green::current().name().map(str::to_owned);
                (label, name, results)
            })
        })
    };
    let a = worker("a", barrier.clone());
    let b = worker("b", barrier);
    let (label_a, name_a, results_a) = a.join().unwrap();
    let (label_b, name_b, results_b) = b.join().unwrap();
    assert_eq!((label_a, label_b), ("a", "b"));
    assert_eq!(name_a.as_deref(), Some("main"));
    assert_eq!(name_b.as_deref(), Some("main"));
    for results in [&results_a, &results_b] {
        assert_eq!(results.iter().map(|&(_, i)| i).sum::<u64>(), 49 * 50 / 2);
    }
    let ids_a: HashSet<_> = results_a.iter().map(|&(id, _)| id).collect();
    let ids_b: HashSet<_> = results_b.iter().map(|&(id, _)| id).collect();
    assert_eq!(ids_a.len(), 50);
    assert_eq!(ids_b.len(), 50);
    assert!(ids_a.is_disjoint(&ids_b), "ids are unique across runtimes");
}

#[test]
fn spawned_coroutines_may_capture_and_return_non_send_values() {
    green::run(|| {
        let shared = Rc::new(RefCell::new(Vec::new()));
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let shared = shared.clone();
                green::spawn(move || {
                    shared.borrow_mut().push(i);
                    green::yield_now();
                    Rc::new(i)
                })
            })
            .collect();
        let returned: Vec<Rc<i32>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(returned.iter().map(|r| **r).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(*shared.borrow(), [0, 1, 2]);
        assert_eq!(Rc::strong_count(&shared), 1, "the coroutines released their clones");
    });
}

#[test]
fn a_coroutine_may_spawn_and_join_coroutines() {
    fn tree(depth: u32) -> u64 {
        if depth == 0 {
            return 1;
        }
        let left = green::spawn(move || tree(depth - 1));
        let right = green::spawn(move || tree(depth - 1));
        left.join().unwrap() + right.join().unwrap()
    }
    let leaves = green::run(|| green::spawn(|| tree(8)).join().unwrap());
    assert_eq!(leaves, 256);
}

#[test]
fn a_panic_caught_inside_a_coroutine_does_not_disturb_it() {
    let value = green::run(|| {
        green::spawn(|| {
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                green::yield_now();
                panic!("inner");
            }));
            assert!(caught.is_err());
            green::yield_now();
            green::current().name().is_none()
        })
        .join()
        .unwrap()
    });
    assert!(value);
}
