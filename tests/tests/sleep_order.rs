//! Sleeping and yielding: sleepers wake in deadline order (ties in the
//! order they went to sleep), never early; yielders take turns round-robin.
//!
//! Assertions are about order and lower bounds, never about how fast.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A shared log the coroutines of one test append to.
type Log<T> = Rc<RefCell<Vec<T>>>;

#[test]
fn sleepers_wake_in_deadline_order() {
    // Deadlines are fixed by main from one instant, so the order they are
    // armed in (spawn order) differs from deadline order by design. The
    // first lies 20 ms ahead so that all are armed before any is due.
    let offsets_ms = [50u64, 10, 40, 0, 30, 20, 60];
    let log: Log<u64> = Rc::default();
    green::run(|| {
        let start = Instant::now() + Duration::from_millis(20);
        let handles: Vec<_> = offsets_ms
            .iter()
            .map(|&ms| {
                let log = log.clone();
                let deadline = start + Duration::from_millis(ms);
                green::spawn(move || {
                    green::sleep_until(deadline).expect("not cancelled");
                    assert!(Instant::now() >= deadline, "woke before its deadline");
                    log.borrow_mut().push(ms);
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    });
    let mut sorted = offsets_ms.to_vec();
    sorted.sort_unstable();
    assert_eq!(*log.borrow(), sorted);
}

#[test]
fn sleep_durations_wake_shortest_first() {
    // Spawned longest first: if one started late it would only wake later
    // still, so the expected order holds however the starts are spread.
    let durations_ms = [80u64, 60, 40, 20, 0];
    let log: Log<u64> = Rc::default();
    green::run(|| {
        let handles: Vec<_> = durations_ms
            .iter()
            .map(|&ms| {
                let log = log.clone();
                green::spawn(move || {
                    let start = Instant::now();
                    green::sleep(Duration::from_millis(ms)).expect("not cancelled");
                    assert!(start.elapsed() >= Duration::from_millis(ms), "woke early");
                    log.borrow_mut().push(ms);
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    });
    assert_eq!(*log.borrow(), [0, 20, 40, 60, 80]);
}

#[test]
fn equal_deadlines_wake_in_the_order_they_went_to_sleep() {
    // Coroutine i goes to sleep at turn SLEEP_TURN[i], which is neither
    // spawn order nor its reverse.
    const SLEEP_TURN: [usize; 6] = [3, 1, 4, 0, 5, 2];
    let turn = Rc::new(Cell::new(0));
    let went_to_sleep: Log<usize> = Rc::default();
    let woke: Log<usize> = Rc::default();
    green::run(|| {
        let deadline = Instant::now() + Duration::from_millis(30);
        let handles: Vec<_> = (0..SLEEP_TURN.len())
            .map(|i| {
                let (turn, went_to_sleep, woke) = (turn.clone(), went_to_sleep.clone(), woke.clone());
                green::spawn(move || {
                    while turn.get() != SLEEP_TURN[i] {
                        green::yield_now();
                    }
                    went_to_sleep.borrow_mut().push(i);
                    turn.set(turn.get() + 1);
                    green::sleep_until(deadline).expect("not cancelled");
                    woke.borrow_mut().push(i);
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    });
    assert_eq!(*went_to_sleep.borrow(), [3, 1, 5, 0, 2, 4]);
    assert_eq!(*woke.borrow(), *went_to_sleep.borrow());
}

#[test]
fn sleep_zero_and_sleep_until_the_past_return() {
    green::run(|| {
        green::sleep(Duration::ZERO).expect("not cancelled");
        green::sleep_until(Instant::now()).expect("not cancelled");
        green::sleep_until(Instant::now() - Duration::from_secs(1)).expect("not cancelled");
        // Also with other coroutines around.
        let other = green::spawn(|| {
            green::sleep(Duration::ZERO).expect("not cancelled");
            green::sleep_until(Instant::now() - Duration::from_millis(1)).expect("not cancelled");
            "returned"
        });
        green::sleep(Duration::ZERO).expect("not cancelled");
        assert_eq!(other.join().unwrap(), "returned");
    });
}

#[test]
fn sleep_outside_a_runtime_sleeps_the_thread() {
    let start = Instant::now();
    green::sleep(Duration::from_millis(20)).expect("not cancelled");
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn a_sleeping_coroutine_lets_the_others_run() {
    let log: Log<&str> = Rc::default();
    green::run(|| {
        let sleeper_log = log.clone();
        let sleeper = green::spawn(move || {
            green::sleep(Duration::from_millis(100)).expect("not cancelled");
            sleeper_log.borrow_mut().push("sleeper woke");
        });
        let worker_log = log.clone();
        let worker = green::spawn(move || {
            for _ in 0..100 {
                green::yield_now();
            }
            worker_log.borrow_mut().push("worker done");
        });
        worker.join().unwrap();
        sleeper.join().unwrap();
    });
    assert_eq!(*log.borrow(), ["worker done", "sleeper woke"]);
}

#[test]
fn timers_fire_while_other_coroutines_keep_the_run_queue_busy() {
    // The spinner never lets the run queue empty; the sleeper's timer must
    // fire anyway. The spinner gives up after a minute, far beyond any
    // timer delay, only so that a broken runtime fails instead of hanging.
    let woke = Rc::new(Cell::new(false));
    let spins = green::run(|| {
        let flag = woke.clone();
        green::spawn(move || {
            green::sleep(Duration::from_millis(5)).expect("not cancelled");
            flag.set(true);
        });
        let flag = woke.clone();
        let spinner = green::spawn(move || {
            let give_up = Instant::now() + Duration::from_secs(60);
            let mut spins = 0u64;
            while !flag.get() && Instant::now() < give_up {
                green::yield_now();
                spins += 1;
            }
            spins
        });
        spinner.join().unwrap()
    });
    assert!(woke.get(), "the sleeper never woke while the spinner yielded ({spins} yields)");
}

#[test]
fn yielding_coroutines_take_turns_in_fifo_order() {
    let log: Log<char> = Rc::default();
    green::run(|| {
        let handles: Vec<_> = ['A', 'B', 'C']
            .into_iter()
            .map(|name| {
                let log = log.clone();
                green::spawn(move || {
                    for _ in 0..3 {
                        log.borrow_mut().push(name);
                        green::yield_now();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    });
    assert_eq!(log.borrow().iter().collect::<String>(), "ABCABCABC");
}

#[test]
fn yield_now_lets_every_runnable_coroutine_run_once_before_the_caller_resumes() {
    let log: Log<String> = Rc::default();
    green::run(|| {
        for i in 0..3 {
            let log = log.clone();
            green::spawn(move || log.borrow_mut().push(format!("child {i}")));
        }
        log.borrow_mut().push("main before".into());
        green::yield_now();
        log.borrow_mut().push("main after".into());
    });
    assert_eq!(*log.borrow(), ["main before", "child 0", "child 1", "child 2", "main after"]);
}

#[test]
fn a_spawned_coroutine_starts_only_when_the_spawner_gives_way() {
    let started = Rc::new(Cell::new(false));
    green::run(|| {
        let flag = started.clone();
        let handle = green::spawn(move || flag.set(true));
        assert!(!started.get(), "spawn does not switch to the new coroutine");
        handle.join().unwrap();
        assert!(started.get());
    });
}
