//! `green::sync::Semaphore`: never more holders than permits, strict
//! arrival order (a large waiter at the head holds back small ones),
//! timeouts and cancellation that give back everything, `close`,
//! `forget`, use across runtimes and threads, and the edges of the permit
//! count: requests for no permits, the most permits a semaphore can have.
//! (Requests that can never be met: `semaphore_impossible.rs`.)

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use green::sync::{AcquireError, Semaphore, SemaphorePermit, TryAcquireError};

/// Counts holders inside and the most ever seen at once.
#[derive(Default)]
struct Occupancy {
    /// Holders now.
    inside: AtomicUsize,
    /// The most holders seen at once.
    most: AtomicUsize,
}

impl Occupancy {
    fn enter(&self) {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

fn use_a_permit(semaphore: &Semaphore, occupancy: &Occupancy, rounds: usize) {
    for _ in 0..rounds {
        let _permit = semaphore.acquire().unwrap();
        occupancy.enter();
        green::yield_now();
        occupancy.leave();
    }
}

#[test]
fn holders_never_outnumber_the_permits_across_runtimes_and_threads() {
    const PERMITS: usize = 3;
    let semaphore = Arc::new(Semaphore::new(PERMITS));
    let occupancy = Arc::new(Occupancy::default());
    let runtimes: Vec<_> = (0..2)
        .map(|_| {
            let (semaphore, occupancy) = (semaphore.clone(), occupancy.clone());
            thread::spawn(move || {
                green::run(|| {
                    let workers: Vec<_> = (0..10)
                        .map(|_| {
                            let (semaphore, occupancy) = (semaphore.clone(), occupancy.clone());
                            green::spawn(move || use_a_permit(&semaphore, &occupancy, 200))
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
            let (semaphore, occupancy) = (semaphore.clone(), occupancy.clone());
            thread::spawn(move || use_a_permit(&semaphore, &occupancy, 200))
        })
        .collect();
    for handle in runtimes.into_iter().chain(threads) {
        handle.join().unwrap();
    }
    let most = occupancy.most.load(Ordering::SeqCst);
    assert!(most <= PERMITS, "{most} holders at once with {PERMITS} permits");
    assert!(most >= 2, "the permits were shared ({most} at most)");
    assert_eq!(semaphore.available_permits(), PERMITS, "every permit came back");
}

#[test]
fn a_large_waiter_at_the_head_holds_back_small_ones_and_is_not_starved() {
    green::run(|| {
        let semaphore = Rc::new(Semaphore::new(1));
        let log = Rc::new(RefCell::new(Vec::new()));
        let held = semaphore.acquire().unwrap();
        let large = {
            let (semaphore, log) = (semaphore.clone(), log.clone());
            green::spawn(move || {
                let permits = semaphore.acquire_many(3).unwrap();
                log.borrow_mut().push("large");
                drop(permits);
            })
        };
        let small = {
            let (semaphore, log) = (semaphore.clone(), log.clone());
            green::spawn(move || {
                let _permit = semaphore.acquire().unwrap();
                log.borrow_mut().push("small");
            })
        };
        green::yield_now(); // the large waiter queues first, then the small one
        semaphore.add_permits(1);
        assert_eq!(semaphore.available_permits(), 1, "the large waiter needs 3: nothing handed out");
        assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::NoPermits, "no overtaking");
        green::yield_now();
        assert!(log.borrow().is_empty(), "the small waiter did not overtake the large one");
        drop(held); // 2 available: still short of 3
        semaphore.add_permits(1); // 3: the large waiter goes
        large.join().unwrap();
        small.join().unwrap();
        assert_eq!(*log.borrow(), ["large", "small"]);
        assert_eq!(semaphore.available_permits(), 3);
    });
}

#[test]
fn a_large_waiter_that_times_out_lets_the_small_ones_behind_it_go() {
    green::run(|| {
        let semaphore = Rc::new(Semaphore::new(1));
        let large = {
            let semaphore = semaphore.clone();
            green::spawn(move || semaphore.acquire_many_timeout(5, Duration::from_millis(5)).map(drop))
        };
        let small = {
            let semaphore = semaphore.clone();
            green::spawn(move || semaphore.acquire_timeout(Duration::from_secs(60)).map(|p| p.num_permits()))
        };
        green::yield_now(); // the large one queues (1 < 5), the small one behind it
        assert_eq!(large.join().unwrap(), Err(AcquireError::TimedOut));
        assert_eq!(small.join().unwrap(), Ok(1), "as if the large waiter had never come");
        assert_eq!(semaphore.available_permits(), 1, "nothing was lost");
    });
}

#[test]
fn a_cancelled_acquire_takes_nothing() {
    green::run(|| {
        let semaphore = Rc::new(Semaphore::new(2));
        let held = semaphore.acquire_many(2).unwrap();
        let waiter = {
            let semaphore = semaphore.clone();
            green::spawn(move || semaphore.acquire().map(drop))
        };
        green::yield_now();
        waiter.cancel();
        assert_eq!(waiter.join().unwrap(), Err(AcquireError::Cancelled));
        drop(held);
        assert_eq!(semaphore.available_permits(), 2);
        assert_eq!(semaphore.try_acquire_many(2).map(|p| p.num_permits()), Ok(2), "nobody waits any more");
    });
}

#[test]
fn close_wakes_every_waiter_with_an_error_and_fails_later_acquires() {
    green::run(|| {
        let semaphore = Rc::new(Semaphore::new(1));
        let held = semaphore.acquire().unwrap();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let semaphore = semaphore.clone();
                green::spawn(move || semaphore.acquire().map(drop))
            })
            .collect();
        green::yield_now();
        semaphore.close();
        assert!(semaphore.is_closed());
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), Err(AcquireError::Closed));
        }
        assert_eq!(semaphore.acquire().map(drop), Err(AcquireError::Closed));
        assert_eq!(semaphore.try_acquire().map(drop), Err(TryAcquireError::Closed));
        drop(held); // permits held at close may still be released
        assert_eq!(semaphore.available_permits(), 1);
        assert_eq!(semaphore.acquire().map(drop), Err(AcquireError::Closed), "but are not handed out");
    });
}

#[test]
fn a_forgotten_permit_is_gone_for_good() {
    let semaphore = Semaphore::new(3);
    semaphore.acquire_many(2).unwrap().forget();
    assert_eq!(semaphore.available_permits(), 1);
    let permit = semaphore.try_acquire().unwrap();
    assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    drop(permit);
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn acquire_timeout_gives_up_and_the_permits_stay_put() {
    let semaphore = Semaphore::new(1);
    let held = semaphore.acquire().unwrap();
    assert_eq!(semaphore.acquire_timeout(Duration::from_millis(1)).map(drop), Err(AcquireError::TimedOut));
    drop(held);
    assert_eq!(semaphore.acquire_timeout(Duration::from_millis(1)).map(|p| p.num_permits()), Ok(1));
    assert_eq!(semaphore.available_permits(), 1);
}

#[test]
fn a_thread_releases_a_permit_a_coroutine_waits_for() {
    let semaphore = Arc::new(Semaphore::new(0));
    let runtime = {
        let semaphore = semaphore.clone();
        thread::spawn(move || {
            green::run(|| {
                let served = Rc::new(Cell::new(0));
                let waiters: Vec<_> = (0..4)
                    .map(|_| {
                        let (semaphore, served) = (semaphore.clone(), served.clone());
                        green::spawn(move || {
                            semaphore.acquire().unwrap().forget();
                            served.set(served.get() + 1);
                        })
                    })
                    .collect();
                for waiter in waiters {
                    waiter.join().unwrap();
                }
                served.get()
            })
        })
    };
    for _ in 0..4 {
        semaphore.add_permits(1);
        thread::yield_now();
    }
    assert_eq!(runtime.join().unwrap(), 4);
    assert_eq!(semaphore.available_permits(), 0);
}

#[test]
fn the_runtimes_shutdown_loses_no_permit() {
    let semaphore = Arc::new(Semaphore::new(2));
    green::run(|| {
        let holder = semaphore.clone();
        green::spawn(move || {
            let _permits = holder.acquire_many(2).unwrap();
            let _ = green::sleep(Duration::from_secs(3600));
        });
        let waiter = semaphore.clone();
        green::spawn(move || {
            let _permit = waiter.acquire();
        });
        green::yield_now();
    });
    assert_eq!(semaphore.available_permits(), 2);
    assert_eq!(semaphore.try_acquire_many(2).map(|p| p.num_permits()), Ok(2));
}

#[test]
fn errors_convert_to_io_errors_and_types_are_thread_safe() {
    assert!(green::is_cancelled(&std::io::Error::from(AcquireError::Cancelled)));
    assert_eq!(std::io::Error::from(AcquireError::TimedOut).kind(), std::io::ErrorKind::TimedOut);
    let too_many = std::io::Error::from(AcquireError::TooManyPermits);
    assert_eq!(too_many.kind(), std::io::ErrorKind::InvalidInput);
    assert!(too_many.to_string().contains("MAX_PERMITS"), "the message names the limit: {too_many}");
    assert!(TryAcquireError::TooManyPermits.to_string().contains("could never be met"));
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Semaphore>();
    send_sync::<SemaphorePermit<'static>>();
    static LIMIT: Semaphore = Semaphore::new(1);
    assert_eq!(LIMIT.available_permits(), 1);
}

#[test]
fn a_request_for_no_permits_succeeds_at_once_even_behind_a_waiter() {
    green::run(|| {
        let semaphore = Rc::new(Semaphore::new(1));
        let large = {
            let semaphore = semaphore.clone();
            green::spawn(move || semaphore.acquire_many(2).map(|permits| permits.num_permits()))
        };
        green::yield_now(); // the large waiter queues: 1 < 2
        let none = {
            let semaphore = semaphore.clone();
            green::spawn(move || semaphore.acquire_many(0).map(|permits| permits.num_permits()))
        };
        green::yield_now();
        assert!(none.is_finished(), "a request for nothing does not queue behind the large waiter");
        assert_eq!(none.join().unwrap(), Ok(0));
        assert_eq!(semaphore.try_acquire_many(0).map(|permits| permits.num_permits()), Ok(0));
        let timed = semaphore.acquire_many_timeout(0, Duration::from_secs(3600));
        assert_eq!(timed.map(|permits| permits.num_permits()), Ok(0));
        assert_eq!(semaphore.available_permits(), 1, "nothing was taken from the large waiter");
        assert_eq!(semaphore.try_acquire().unwrap_err(), TryAcquireError::NoPermits, "it still waits first");
        semaphore.add_permits(1);
        assert_eq!(large.join().unwrap(), Ok(2));
        semaphore.close();
        assert_eq!(semaphore.acquire_many(0).map(drop), Err(AcquireError::Closed));
        assert_eq!(semaphore.try_acquire_many(0).map(drop), Err(TryAcquireError::Closed));
    });
}

#[test]
fn add_permits_past_the_maximum_panics_up_front_counting_held_permits() {
    let semaphore = Semaphore::new(Semaphore::MAX_PERMITS);
    let held = semaphore.acquire().unwrap();
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS - 1);
    // Available plus held is the maximum already: one more cannot be added,
    // or giving back the held permit could not be counted.
    let refused = panic::catch_unwind(AssertUnwindSafe(|| semaphore.add_permits(1)))
        .expect_err("add_permits past MAX_PERMITS panics at once, not when a permit comes back");
    let message = refused.downcast_ref::<String>().map_or("", String::as_str);
    assert!(message.contains("MAX_PERMITS") && message.contains("nothing was added"), "{message}");
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS - 1, "unchanged");
    drop(held); // gives back what was taken, without a panic
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
    // A forgotten permit makes room for one.
    semaphore.acquire().unwrap().forget();
    semaphore.add_permits(1);
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
    // An addition that would overflow `usize` is refused the same way.
    let empty = Semaphore::new(1);
    assert!(panic::catch_unwind(AssertUnwindSafe(|| empty.add_permits(usize::MAX))).is_err());
    assert_eq!(empty.available_permits(), 1);
}

#[test]
fn a_semaphore_can_have_max_permits_and_hand_them_all_out_at_once() {
    let semaphore = Semaphore::new(Semaphore::MAX_PERMITS);
    let all = semaphore.acquire_many(Semaphore::MAX_PERMITS).unwrap();
    assert_eq!((all.num_permits(), semaphore.available_permits()), (Semaphore::MAX_PERMITS, 0));
    drop(all);
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
}

#[test]
#[should_panic(expected = "more permits than Semaphore::MAX_PERMITS")]
fn new_with_more_than_max_permits_panics_naming_the_limit() {
    let _ = Semaphore::new(usize::MAX);
}

#[test]
fn forget_permits_takes_at_most_what_is_available_and_makes_room() {
    let semaphore = Semaphore::new(3);
    let held = semaphore.acquire().unwrap();
    assert_eq!(semaphore.forget_permits(usize::MAX), 2, "only the available ones, however many asked for");
    assert_eq!(semaphore.forget_permits(1), 0, "none left");
    drop(held);
    assert_eq!(semaphore.available_permits(), 1);
    // The semaphore has one permit in all now: room for MAX_PERMITS - 1.
    semaphore.add_permits(Semaphore::MAX_PERMITS - 1);
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
    assert_eq!(semaphore.forget_permits(Semaphore::MAX_PERMITS), Semaphore::MAX_PERMITS);
}

#[test]
fn forget_permits_leaves_a_waiter_waiting_for_the_rest() {
    green::run(|| {
        let semaphore = Rc::new(Semaphore::new(2));
        let waiter = {
            let semaphore = semaphore.clone();
            green::spawn(move || semaphore.acquire_many(3).map(|permits| permits.num_permits()))
        };
        green::yield_now(); // it waits: 2 < 3
        assert_eq!(semaphore.forget_permits(1), 1);
        semaphore.add_permits(1);
        assert_eq!(semaphore.available_permits(), 2, "still short of 3: nothing handed out");
        semaphore.add_permits(1);
        assert_eq!(waiter.join().unwrap(), Ok(3));
        assert_eq!(semaphore.available_permits(), 3);
    });
}

#[test]
fn at_the_maximum_permits_forgotten_and_added_back_across_threads_keep_the_count() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 10_000;
    let semaphore = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let semaphore = semaphore.clone();
            thread::spawn(move || {
                for k in 0..ROUNDS {
                    let permits = semaphore.acquire_many(1 + k % 3).unwrap();
                    if k % 2 == 0 {
                        // The forget makes the room this addition takes.
                        let n = permits.num_permits();
                        permits.forget();
                        semaphore.add_permits(n);
                    } else {
                        drop(permits); // never overflows, whatever the others do
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
    assert!(panic::catch_unwind(AssertUnwindSafe(|| semaphore.add_permits(1))).is_err(), "full");
    assert_eq!(semaphore.forget_permits(usize::MAX), Semaphore::MAX_PERMITS);
    semaphore.add_permits(Semaphore::MAX_PERMITS);
    assert_eq!(semaphore.available_permits(), Semaphore::MAX_PERMITS);
}
