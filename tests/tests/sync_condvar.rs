//! `green::sync::Condvar` with `green::sync::Mutex`: producer/consumer,
//! `notify_one` wakes one and `notify_all` all, timeouts, waits that give
//! up without swallowing a notification, cancellation, and waits across
//! runtimes and plain threads without lost wake-ups.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use green::sync::{Condvar, LockError, Mutex};

/// A bounded queue: a mutex and two condition variables.
struct Bounded {
    /// The items.
    items: Mutex<VecDeque<u64>>,
    /// Signalled when an item is added.
    not_empty: Condvar,
    /// Signalled when an item is taken.
    not_full: Condvar,
}

const CAPACITY: usize = 4;

impl Bounded {
    fn new() -> Bounded {
        Bounded { items: Mutex::new(VecDeque::new()), not_empty: Condvar::new(), not_full: Condvar::new() }
    }

    fn push(&self, item: u64) {
        let mut items =
            self.not_full.wait_while(self.items.lock().unwrap(), |items| items.len() == CAPACITY).unwrap();
        items.push_back(item);
        drop(items);
        self.not_empty.notify_one();
    }

    fn pop(&self) -> u64 {
        let mut items =
            self.not_empty.wait_while(self.items.lock().unwrap(), |items| items.is_empty()).unwrap();
        let item = items.pop_front().expect("not empty");
        drop(items);
        self.not_full.notify_one();
        item
    }
}

#[test]
fn producers_and_consumers_on_coroutines_and_threads_pass_every_item() {
    const PER_PRODUCER: u64 = 500;
    let queue = Arc::new(Bounded::new());
    // Two producers and two consumers on a runtime, the same on plain
    // threads; every item is consumed exactly once.
    let runtime = {
        let queue = queue.clone();
        thread::spawn(move || {
            green::run(|| {
                let producers: Vec<_> = (0..2u64)
                    .map(|p| {
                        let queue = queue.clone();
                        green::spawn(move || (0..PER_PRODUCER).for_each(|i| queue.push(p * PER_PRODUCER + i)))
                    })
                    .collect();
                let consumers: Vec<_> = (0..2)
                    .map(|_| {
                        let queue = queue.clone();
                        green::spawn(move || (0..PER_PRODUCER).map(|_| queue.pop()).sum::<u64>())
                    })
                    .collect();
                producers.into_iter().for_each(|p| p.join().unwrap());
                consumers.into_iter().map(|c| c.join().unwrap()).sum::<u64>()
            })
        })
    };
    let producers: Vec<_> = (2..4u64)
        .map(|p| {
            let queue = queue.clone();
            thread::spawn(move || (0..PER_PRODUCER).for_each(|i| queue.push(p * PER_PRODUCER + i)))
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let queue = queue.clone();
            thread::spawn(move || (0..PER_PRODUCER).map(|_| queue.pop()).sum::<u64>())
        })
        .collect();
    producers.into_iter().for_each(|p| p.join().unwrap());
    let total: u64 = runtime.join().unwrap() + consumers.into_iter().map(|c| c.join().unwrap()).sum::<u64>();
    let n = 4 * PER_PRODUCER;
    assert_eq!(total, n * (n - 1) / 2);
    assert!(queue.items.lock().unwrap().is_empty());
}

#[test]
fn notify_one_wakes_one_waiter_and_notify_all_the_rest() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(()));
        let changed = Rc::new(Condvar::new());
        let woken = Rc::new(Cell::new(0));
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let (lock, changed, woken) = (lock.clone(), changed.clone(), woken.clone());
                green::spawn(move || {
                    let guard = lock.lock().unwrap();
                    let _guard = changed.wait(guard).unwrap();
                    woken.set(woken.get() + 1);
                })
            })
            .collect();
        green::yield_now(); // all five wait
        changed.notify_one();
        for _ in 0..5 {
            green::yield_now(); // the woken one runs; nobody else is runnable
        }
        assert_eq!(woken.get(), 1);
        changed.notify_all();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(woken.get(), 5);
    });
}

#[test]
fn waiters_are_notified_oldest_first() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(Vec::new()));
        let changed = Rc::new(Condvar::new());
        let waiters: Vec<_> = (0..4)
            .map(|i| {
                let (lock, changed) = (lock.clone(), changed.clone());
                green::spawn(move || {
                    let guard = lock.lock().unwrap();
                    changed.wait(guard).unwrap().push(i);
                })
            })
            .collect();
        green::yield_now();
        for _ in 0..4 {
            changed.notify_one();
            green::yield_now();
        }
        waiters.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(*lock.lock().unwrap(), [0, 1, 2, 3]);
    });
}

#[test]
fn wait_timeout_returns_with_the_lock_held_after_the_timeout() {
    green::run(|| {
        let lock = Mutex::new(0);
        let changed = Condvar::new();
        let (mut guard, result) =
            changed.wait_timeout(lock.lock().unwrap(), Duration::from_millis(2)).unwrap();
        assert!(result.timed_out());
        *guard += 1; // the lock is held again
        assert!(lock.try_lock().is_err());
        drop(guard);
        let (guard, result) = changed
            .wait_timeout_while(lock.lock().unwrap(), Duration::from_millis(2), |value| *value == 1)
            .unwrap();
        assert!(result.timed_out(), "the condition stayed true");
        let (guard, result) =
            changed.wait_timeout_while(guard, Duration::from_secs(60), |value| *value == 0).unwrap();
        assert!(!result.timed_out(), "the condition was already false");
        assert_eq!(*guard, 1);
    });
}

#[test]
fn a_waiter_that_timed_out_does_not_swallow_a_notification() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(()));
        let changed = Rc::new(Condvar::new());
        let impatient = {
            let (lock, changed) = (lock.clone(), changed.clone());
            green::spawn(move || {
                changed.wait_timeout(lock.lock().unwrap(), Duration::from_millis(2)).unwrap().1.timed_out()
            })
        };
        let patient = {
            let (lock, changed) = (lock.clone(), changed.clone());
            green::spawn(move || {
                changed.wait_timeout(lock.lock().unwrap(), Duration::from_secs(60)).unwrap().1.timed_out()
            })
        };
        green::yield_now(); // both wait, the impatient one first
        assert!(impatient.join().unwrap(), "it timed out");
        changed.notify_one();
        assert!(!patient.join().unwrap(), "the one notification reached the waiter that stayed");
    });
}

#[test]
fn a_cancelled_wait_fails_and_leaves_the_mutex_free() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(0));
        let changed = Rc::new(Condvar::new());
        let waiter = {
            let (lock, changed) = (lock.clone(), changed.clone());
            green::spawn(move || changed.wait(lock.lock().unwrap()).map(drop).map_err(|e| e.is_cancelled()))
        };
        let stays = {
            let (lock, changed) = (lock.clone(), changed.clone());
            green::spawn(move || *changed.wait(lock.lock().unwrap()).unwrap())
        };
        green::yield_now();
        waiter.cancel();
        assert_eq!(waiter.join().unwrap(), Err(true), "the wait was cancelled");
        *lock.try_lock().expect("the cancelled waiter does not hold the mutex") = 9;
        changed.notify_one();
        assert_eq!(stays.join().unwrap(), 9, "the notification went to the waiter that stayed");
        assert!(!lock.is_poisoned());
    });
}

#[test]
fn a_timeout_scope_cancels_a_condvar_wait() {
    green::run(|| {
        let lock = Mutex::new(());
        let changed = Condvar::new();
        let outcome = green::timeout(Duration::from_millis(2), || {
            matches!(changed.wait(lock.lock().unwrap()), Err(LockError::Cancelled))
        });
        assert!(outcome.is_err(), "the scope's deadline passed");
        assert!(lock.try_lock().is_ok());
    });
}

#[test]
fn a_plain_thread_and_a_coroutine_hand_a_turn_back_and_forth() {
    const ROUNDS: u32 = 1_000;
    let turn = Arc::new((Mutex::new(0u32), Condvar::new()));
    let player = |mine: u32| {
        let turn = turn.clone();
        move || {
            let (lock, changed) = &*turn;
            for _ in 0..ROUNDS {
                let mut current =
                    changed.wait_while(lock.lock().unwrap(), |current| *current % 2 != mine).unwrap();
                *current += 1;
                drop(current);
                changed.notify_all();
            }
        }
    };
    let thread = thread::spawn(player(1));
    green::run(player(0));
    thread.join().unwrap();
    assert_eq!(*turn.0.lock().unwrap(), 2 * ROUNDS, "no wake-up was lost");
}

#[test]
fn a_notification_crosses_runtimes() {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let waiter = {
        let pair = pair.clone();
        thread::spawn(move || {
            green::run(|| {
                let (ready, changed) = &*pair;
                *changed.wait_while(ready.lock().unwrap(), |ready| !*ready).unwrap()
            })
        })
    };
    green::run(|| {
        let (ready, changed) = &*pair;
        *ready.lock().unwrap() = true;
        changed.notify_all();
    });
    assert!(waiter.join().unwrap());
}

#[test]
fn a_poisoned_mutex_is_reported_after_the_wait() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(0));
        let changed = Rc::new(Condvar::new());
        let waiter = {
            let (lock, changed) = (lock.clone(), changed.clone());
            green::spawn(move || {
                changed.wait(lock.lock().unwrap()).map(drop).unwrap_err().into_poisoned().is_some()
            })
        };
        green::yield_now();
        let panicker = {
            let (lock, changed) = (lock.clone(), changed.clone());
            green::spawn(move || {
                let _guard = lock.lock().unwrap();
                changed.notify_one();
                panic!("poisons the mutex");
            })
        };
        assert!(panicker.join().unwrap_err().is_panic());
        assert!(waiter.join().unwrap(), "the waiter got its guard back inside the poison error");
    });
}

#[test]
fn condvar_is_send_sync_and_static() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Condvar>();
    static CHANGED: Condvar = Condvar::new();
    CHANGED.notify_all();
}
