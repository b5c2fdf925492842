//! `green::sync::Semaphore`: a request that can never be met (more permits
//! than any semaphore can have) fails at once with `TooManyPermits` and
//! never queues, so it holds back nobody: not 100,000 waiters behind it,
//! not waiters being cancelled while permits come back from another
//! thread, and not when it races a `close`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use green::sync::{AcquireError, Event, Semaphore, TryAcquireError};
use green_tests::DropCounter;

/// The smallest request no semaphore can ever meet.
const IMPOSSIBLE: usize = Semaphore::MAX_PERMITS + 1;

/// How an impossible request ended, whichever method made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// `TooManyPermits`, from a waiting or a `try_` method.
    TooMany,
    /// `Closed`, from either.
    Closed,
    /// Anything else: wrong, but reported by the assertions of the test
    /// rather than by a panic in a thread that others wait for.
    Otherwise,
}

/// Makes the `k`th impossible request (the three methods in turn) and says
/// how it was refused.
fn request_the_impossible(semaphore: &Semaphore, k: usize) -> Refused {
    let refused = match k % 3 {
        0 => semaphore.acquire_many(IMPOSSIBLE).map(drop).map_err(Some),
        1 => semaphore.acquire_many_timeout(usize::MAX, Duration::MAX).map(drop).map_err(Some),
        _ => semaphore.try_acquire_many(IMPOSSIBLE).map(drop).map_err(|err| match err {
            TryAcquireError::TooManyPermits => Some(AcquireError::TooManyPermits),
            TryAcquireError::Closed => Some(AcquireError::Closed),
            TryAcquireError::NoPermits => None,
        }),
    };
    match refused {
        Err(Some(AcquireError::TooManyPermits)) => Refused::TooMany,
        Err(Some(AcquireError::Closed)) => Refused::Closed,
        _ => Refused::Otherwise,
    }
}

#[test]
fn a_hundred_thousand_waiters_behind_an_impossible_request_are_all_served() {
    const WAITERS: usize = 100_000;
    // 32 KiB stacks: 100,000 coroutines fit in the address space easily.
    green::Builder::new().stack_size(32 * 1024).run(|| {
        let semaphore = Rc::new(Semaphore::new(0));
        let impossible = {
            let semaphore = semaphore.clone();
            green::spawn(move || semaphore.acquire_many(IMPOSSIBLE).map(|permits| permits.num_permits()))
        };
        green::yield_now(); // it runs first: had it queued, it would be at the head
        assert!(impossible.is_finished(), "an impossible request fails at once; it does not queue");
        assert_eq!(impossible.join().unwrap(), Err(AcquireError::TooManyPermits));
        let served = Rc::new(Cell::new(0));
        let waiters: Vec<_> = (0..WAITERS)
            .map(|_| {
                let (semaphore, served) = (semaphore.clone(), served.clone());
                green::spawn(move || {
                    semaphore.acquire()?.forget();
                    served.set(served.get() + 1);
                    Ok::<_, AcquireError>(())
                })
            })
            .collect();
        green::yield_now(); // every waiter queues
        assert_eq!(served.get(), 0);
        // More impossible requests while they wait, by every method.
        for k in 0..3 {
            assert_eq!(request_the_impossible(&semaphore, k), Refused::TooMany);
        }
        semaphore.add_permits(WAITERS);
        assert_eq!(semaphore.available_permits(), 0, "every permit went to a waiter at once");
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), Ok(()));
        }
        assert_eq!(served.get(), WAITERS);
    });
}

#[test]
fn waiters_cancelled_while_another_thread_releases_lose_nothing_and_an_impossible_request_blocks_none() {
    const WAITERS: usize = 200;
    const RELEASED: usize = WAITERS / 2;
    let semaphore = Arc::new(Semaphore::new(0));
    let granted = green::run(|| {
        let drops = DropCounter::new();
        let spawn_waiter = |semaphore: &Arc<Semaphore>| {
            let (semaphore, token) = (semaphore.clone(), drops.token());
            green::spawn(move || {
                let _token = token;
                semaphore.acquire().map(|permit| permit.forget())
            })
        };
        // An impossible request at the head, and one among the waiters.
        let head = {
            let semaphore = semaphore.clone();
            green::spawn(move || request_the_impossible(&semaphore, 0))
        };
        green::yield_now();
        assert!(head.is_finished(), "an impossible request fails at once; it does not queue");
        let mut waiters: Vec<_> = (0..WAITERS / 2).map(|_| spawn_waiter(&semaphore)).collect();
        let middle = {
            let semaphore = semaphore.clone();
            green::spawn(move || request_the_impossible(&semaphore, 1))
        };
        waiters.extend((0..WAITERS / 2).map(|_| spawn_waiter(&semaphore)));
        green::yield_now(); // all queue
        assert_eq!(head.join().unwrap(), Refused::TooMany);
        assert_eq!(middle.join().unwrap(), Refused::TooMany);
        // Another thread gives permits back one at a time while every
        // other waiter is cancelled: a cancel and a grant race for each.
        let released = Arc::new(Event::new());
        let releaser = {
            let (semaphore, released) = (semaphore.clone(), released.clone());
            thread::spawn(move || {
                for _ in 0..RELEASED {
                    semaphore.add_permits(1);
                    thread::yield_now();
                }
                released.set();
            })
        };
        for waiter in waiters.iter().step_by(2) {
            waiter.cancel();
            green::yield_now();
        }
        released.wait().unwrap();
        releaser.join().unwrap();
        // Whoever still waits gets a permit now.
        let still_waiting = WAITERS - waiters.iter().filter(|waiter| waiter.is_finished()).count();
        semaphore.add_permits(still_waiting);
        let outcomes: Vec<_> = waiters.into_iter().map(|waiter| waiter.join().unwrap()).collect();
        let granted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        let cancelled = outcomes.iter().filter(|&&outcome| outcome == Err(AcquireError::Cancelled)).count();
        assert_eq!(granted + cancelled, WAITERS, "each waiter was granted or cancelled: {outcomes:?}");
        assert!(cancelled <= WAITERS / 2, "only the cancelled half can have failed");
        assert_eq!(drops.dropped(), WAITERS, "every waiter's frame was dropped");
        // Every permit given is either forgotten by a waiter or available.
        assert_eq!(semaphore.available_permits(), RELEASED + still_waiting - granted);
        granted
    });
    assert!(granted >= WAITERS / 2, "every waiter not cancelled was granted a permit");
}

#[test]
fn impossible_requests_racing_a_close_fail_at_once_with_one_of_two_errors() {
    const THREADS: usize = 3;
    const COROUTINES: usize = 4;
    const ROUNDS: usize = 2_000;
    let semaphore = Arc::new(Semaphore::new(1));
    let closing = Arc::new(AtomicBool::new(false));
    // The racers and the closer start together.
    let start = Arc::new(Barrier::new(THREADS + 2));
    // Each racer's first request (before the race) and all the others.
    let race = |semaphore: &Semaphore, start: &Barrier| {
        let first = request_the_impossible(semaphore, 2);
        start.wait();
        let rest: Vec<_> = (0..ROUNDS).map(|k| request_the_impossible(semaphore, k)).collect();
        (first, rest)
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (semaphore, start) = (semaphore.clone(), start.clone());
            thread::spawn(move || vec![race(&semaphore, &start)])
        })
        .collect();
    let runtime = {
        let (semaphore, start) = (semaphore.clone(), start.clone());
        thread::spawn(move || {
            green::run(|| {
                let first = request_the_impossible(&semaphore, 2);
                start.wait();
                let coroutines: Vec<_> = (0..COROUTINES)
                    .map(|_| {
                        let semaphore = semaphore.clone();
                        green::spawn(move || {
                            (0..ROUNDS)
                                .map(|k| {
                                    green::yield_now();
                                    request_the_impossible(&semaphore, k)
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                coroutines.into_iter().map(|coroutine| (first, coroutine.join().unwrap())).collect::<Vec<_>>()
            })
        })
    };
    let closer = {
        let (semaphore, start, closing) = (semaphore.clone(), start.clone(), closing.clone());
        thread::spawn(move || {
            start.wait();
            for _ in 0..ROUNDS / 4 {
                thread::yield_now();
            }
            closing.store(true, Ordering::SeqCst);
            semaphore.close();
        })
    };
    closer.join().unwrap();
    let mut results = Vec::new();
    for racer in threads.into_iter().chain([runtime]) {
        results.extend(racer.join().unwrap());
    }
    for (first, rest) in results {
        assert_eq!(first, Refused::TooMany, "the first request came before any close");
        // Closing is for good: once one request saw it, every later one does.
        let closed_from = rest.iter().position(|&refused| refused == Refused::Closed).unwrap_or(rest.len());
        assert!(
            rest[closed_from..].iter().all(|&refused| refused == Refused::Closed),
            "a request after one that saw the close did not: {rest:?}"
        );
    }
    assert!(closing.load(Ordering::SeqCst) && semaphore.is_closed());
    assert_eq!(semaphore.available_permits(), 1, "nothing was taken");
    assert_eq!(request_the_impossible(&semaphore, 0), Refused::Closed);
    assert_eq!(semaphore.acquire().map(drop), Err(AcquireError::Closed));
}
