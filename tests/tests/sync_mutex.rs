//! `green::sync::Mutex`: exclusion, FIFO hand-off, timeouts and
//! cancellation that leave no trace, poisoning, and use across coroutines,
//! runtimes and plain threads.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, TryLockError};
use std::thread;
use std::time::Duration;

use green::sync::{LockError, Mutex, MutexGuard};

/// Increments the counter `rounds` times, each time reading it, letting
/// others run while holding the lock, and writing it back: a second
/// holder at any moment would lose an update.
fn increment(counter: &Mutex<u64>, rounds: usize) {
    for _ in 0..rounds {
        let mut count = counter.lock().unwrap();
        let seen = *count;
        green::yield_now(); // a coroutine parks others; a thread yields the CPU
        *count = seen + 1;
    }
}

#[test]
fn coroutines_of_two_runtimes_and_plain_threads_exclude_each_other() {
    const COROUTINES: usize = 20;
    const ROUNDS: usize = 200;
    let counter = Arc::new(Mutex::new(0u64));
    let runtimes: Vec<_> = (0..2)
        .map(|_| {
            let counter = counter.clone();
            thread::spawn(move || {
                green::run(|| {
                    let workers: Vec<_> = (0..COROUTINES)
                        .map(|_| {
                            let counter = counter.clone();
                            green::spawn(move || increment(&counter, ROUNDS))
                        })
                        .collect();
                    for worker in workers {
                        worker.join().unwrap();
                    }
                })
            })
        })
        .collect();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let counter = counter.clone();
            thread::spawn(move || increment(&counter, ROUNDS))
        })
        .collect();
    for handle in runtimes.into_iter().chain(threads) {
        handle.join().unwrap();
    }
    let expected = (2 * COROUTINES * ROUNDS + 2 * ROUNDS) as u64;
    assert_eq!(*counter.lock().unwrap(), expected);
}

#[test]
fn parked_lockers_get_the_lock_in_arrival_order_and_newcomers_wait() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(Vec::new()));
        let held = lock.lock().unwrap();
        let lockers: Vec<_> = (0..5)
            .map(|i| {
                let lock = lock.clone();
                green::spawn(move || lock.lock().unwrap().push(i))
            })
            .collect();
        green::yield_now(); // each runs in spawn order and parks in `lock`
        drop(held);
        // The lock went straight to the oldest waiter: a newcomer cannot
        // take it, not even at the moment it changes hands.
        assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
        for locker in lockers {
            locker.join().unwrap();
        }
        assert_eq!(*lock.lock().unwrap(), [0, 1, 2, 3, 4]);
    });
}

#[test]
fn a_queued_waiter_is_not_starved_by_a_holder_that_locks_again_at_once() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(0u32));
        let hog = {
            let lock = lock.clone();
            green::spawn(move || {
                for _ in 0..100 {
                    let mut rounds = lock.lock().unwrap();
                    green::yield_now();
                    *rounds += 1;
                }
            })
        };
        green::yield_now(); // the hog holds the lock, yielding
        let seen = lock.lock().unwrap();
        // The hog released once, and its next `lock` queued behind us.
        assert!(*seen <= 1, "the waiter got the lock only after {} rounds of the hog", *seen);
        drop(seen);
        hog.join().unwrap();
        assert_eq!(*lock.lock().unwrap(), 100);
    });
}

#[test]
fn try_lock_fails_while_held_and_succeeds_once_free() {
    let lock = Mutex::new(1);
    let held = lock.try_lock().unwrap();
    assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
    drop(held);
    *lock.try_lock().unwrap() += 1;
    assert_eq!(lock.into_inner().unwrap(), 2);
}

#[test]
fn a_timed_out_waiter_leaves_no_trace_and_the_next_waiter_gets_the_lock() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(Vec::new()));
        let held = lock.lock().unwrap();
        let impatient = {
            let lock = lock.clone();
            green::spawn(move || {
                lock.lock_timeout(Duration::from_millis(5))
                    .map(|mut log| log.push("impatient"))
                    .map_err(|e| e.is_timeout())
            })
        };
        let patient = {
            let lock = lock.clone();
            green::spawn(move || lock.lock().unwrap().push("patient"))
        };
        green::yield_now(); // both queue: impatient first
        assert_eq!(impatient.join().unwrap(), Err(true), "it timed out");
        assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)), "still held by main");
        drop(held);
        patient.join().unwrap();
        assert_eq!(*lock.try_lock().unwrap(), ["patient"]);
        assert!(!lock.is_poisoned());
    });
}

#[test]
fn lock_timeout_on_a_free_lock_takes_it() {
    let lock = Mutex::new(5);
    assert_eq!(*lock.lock_timeout(Duration::ZERO).unwrap(), 5);
}

#[test]
fn a_cancelled_waiter_leaves_the_lock_as_if_it_had_never_come() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(Vec::new()));
        let held = lock.lock().unwrap();
        let cancelled = {
            let lock = lock.clone();
            green::spawn(move || {
                lock.lock().map(|mut log| log.push("cancelled")).map_err(|e| e.is_cancelled())
            })
        };
        let next = {
            let lock = lock.clone();
            green::spawn(move || lock.lock().unwrap().push("next"))
        };
        green::yield_now();
        cancelled.cancel();
        assert_eq!(cancelled.join().unwrap(), Err(true), "its wait was cancelled");
        drop(held);
        next.join().unwrap();
        assert_eq!(*lock.try_lock().unwrap(), ["next"]);
        assert!(!lock.is_poisoned(), "a cancellation never poisons");
    });
}

#[test]
fn a_timeout_scope_cancels_a_lock_wait() {
    green::run(|| {
        let lock = Mutex::new(0);
        let held = lock.lock().unwrap();
        let outcome = green::timeout(Duration::from_millis(5), || {
            let error = lock.lock().map(drop).unwrap_err();
            assert!(error.is_cancelled());
            let as_io = std::io::Error::from(error);
            assert!(green::is_cancelled(&as_io));
        });
        assert!(outcome.is_err(), "the scope reports its deadline");
        drop(held);
        assert!(lock.try_lock().is_ok());
    });
}

#[test]
fn an_uncontended_lock_succeeds_even_in_a_cancelled_coroutine() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(0));
        let worker = {
            let lock = lock.clone();
            green::spawn(move || {
                green::yield_now(); // cancelled here, before it locks
                *lock.lock().unwrap() += 1;
            })
        };
        green::yield_now(); // the worker starts, and yields back
        worker.cancel();
        worker.join().unwrap();
        assert_eq!(*lock.lock().unwrap(), 1);
    });
}

#[test]
fn a_panicking_holder_poisons_the_lock() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(7));
        let panicker = {
            let lock = lock.clone();
            green::spawn(move || {
                let mut value = lock.lock().unwrap();
                *value = 8;
                panic!("while holding the lock");
            })
        };
        assert!(panicker.join().unwrap_err().is_panic());
        assert!(lock.is_poisoned());
        let guard = match lock.lock() {
            Err(LockError::Poisoned(poisoned)) => poisoned.into_inner(),
            other => panic!("expected a poisoned lock, got {other:?}"),
        };
        assert_eq!(*guard, 8, "the poisoned guard still holds the lock and the data");
        drop(guard);
        assert!(matches!(lock.try_lock(), Err(TryLockError::Poisoned(_))));
        lock.clear_poison();
        assert_eq!(*lock.lock().unwrap(), 8);
    });
    let lock = Mutex::new(1);
    let _ = std::panic::catch_unwind(|| {
        let _guard = lock.lock().unwrap();
        panic!("on a plain thread");
    });
    assert_eq!(lock.into_inner().unwrap_err().into_poisoned(), Some(1));
}

#[test]
fn a_guard_taken_during_a_panic_does_not_poison() {
    struct LocksOnDrop<'a>(&'a Mutex<u32>);
    impl Drop for LocksOnDrop<'_> {
        fn drop(&mut self) {
            *self.0.lock().unwrap() += 1;
        }
    }
    let lock = Mutex::new(0);
    let _ = std::panic::catch_unwind(|| {
        let _cleanup = LocksOnDrop(&lock);
        panic!("unwinding runs the cleanup");
    });
    assert!(!lock.is_poisoned());
    assert_eq!(lock.into_inner().unwrap(), 1);
}

#[test]
fn the_runtimes_shutdown_releases_held_and_awaited_locks_without_poisoning() {
    let lock = Arc::new(Mutex::new(0));
    green::run(|| {
        let holder = lock.clone();
        green::spawn(move || {
            let _guard = holder.lock().unwrap();
            let _ = green::sleep(Duration::from_secs(3600)); // unwound at shutdown, holding the lock
        });
        let waiter = lock.clone();
        green::spawn(move || {
            let _guard = waiter.lock(); // unwound at shutdown, waiting
        });
        green::yield_now();
    });
    assert!(!lock.is_poisoned(), "the shutdown unwind is a cancellation, not a panic");
    assert_eq!(*lock.try_lock().unwrap(), 0, "nothing is left held");
}

#[test]
fn a_coroutine_waits_for_a_plain_thread_that_holds_the_lock() {
    let lock = Arc::new(Mutex::new(0));
    let waiting = Arc::new(AtomicBool::new(false));
    let mut holder = lock.lock().unwrap();
    let runtime = {
        let (lock, waiting) = (lock.clone(), waiting.clone());
        thread::spawn(move || {
            green::run(|| {
                assert!(lock.lock_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
                waiting.store(true, Ordering::Release);
                *lock.lock().unwrap()
            })
        })
    };
    while !waiting.load(Ordering::Acquire) {
        thread::yield_now();
    }
    *holder = 42;
    drop(holder);
    assert_eq!(runtime.join().unwrap(), 42, "the coroutine saw the thread's write");
}

#[test]
fn a_plain_thread_waits_for_a_coroutine_that_holds_the_lock() {
    let lock = Arc::new(Mutex::new(0));
    let waiting = Arc::new(AtomicBool::new(false));
    green::run(|| {
        let mut held = lock.lock().unwrap();
        let thread = {
            let (lock, waiting) = (lock.clone(), waiting.clone());
            thread::spawn(move || {
                assert!(lock.lock_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
                waiting.store(true, Ordering::Release);
                *lock.lock().unwrap()
            })
        };
        while !waiting.load(Ordering::Acquire) {
            green::yield_now(); // the only coroutine: returns at once, lock still held
        }
        *held = 7;
        drop(held);
        assert_eq!(thread.join().unwrap(), 7);
    });
}

#[test]
fn a_guard_held_across_a_sleep_lets_other_coroutines_run() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(()));
        let log = Rc::new(RefCell::new(Vec::new()));
        let sleeper = {
            let (lock, log) = (lock.clone(), log.clone());
            green::spawn(move || {
                let _guard = lock.lock().unwrap();
                log.borrow_mut().push("sleeper holds");
                green::sleep(Duration::from_millis(5)).unwrap();
                log.borrow_mut().push("sleeper releases");
            })
        };
        let locker = {
            let (lock, log) = (lock.clone(), log.clone());
            green::spawn(move || {
                let _guard = lock.lock().unwrap();
                log.borrow_mut().push("locker holds");
            })
        };
        let bystander = {
            let log = log.clone();
            green::spawn(move || log.borrow_mut().push("bystander ran"))
        };
        bystander.join().unwrap();
        assert!(!sleeper.is_finished(), "the sleeper still holds the lock");
        sleeper.join().unwrap();
        locker.join().unwrap();
        assert_eq!(*log.borrow(), ["sleeper holds", "bystander ran", "sleeper releases", "locker holds"]);
    });
}

#[test]
fn debug_shows_the_data_or_that_it_is_locked() {
    let lock = Mutex::new(3);
    assert_eq!(format!("{lock:?}"), "Mutex { data: 3, poisoned: false, .. }");
    let guard: MutexGuard<'_, i32> = lock.lock().unwrap();
    assert_eq!(format!("{guard:?} {guard}"), "3 3");
    assert_eq!(format!("{lock:?}"), "Mutex { data: <locked>, poisoned: false, .. }");
}

#[test]
fn a_static_mutex_needs_no_initialiser() {
    static COUNT: Mutex<u32> = Mutex::new(0);
    *COUNT.lock().unwrap() += 1;
    assert!(*COUNT.lock().unwrap() >= 1);
}

#[test]
fn mutex_and_guard_have_std_thread_safety() {
    fn send_sync<T: Send + Sync>() {}
    fn sync<T: Sync>() {}
    send_sync::<Mutex<std::cell::Cell<u8>>>(); // Sync needs only T: Send, as in std
    sync::<MutexGuard<'static, u8>>();
    send_sync::<LockError<()>>();
    // `MutexGuard: !Send` is a compile_fail doctest on the type.
}
