//! The numeric edges of the public API of `green::sync`, `green::channel`
//! and `green::sleep`: timeouts too long to have a deadline (they wait
//! without one, as `std`'s `Condvar::wait_timeout` and
//! `mpsc::Receiver::recv_timeout` do), far but representable deadlines,
//! channel capacities of 0 and `usize::MAX`, barriers of 0 and
//! `usize::MAX` parties, and many holders at once. Nothing wraps, hangs
//! or panics. (The semaphore's limits: `sync_semaphore.rs` and
//! `semaphore_impossible.rs`.)

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use green::channel::{self, RecvTimeoutError, Select, TrySendError};
use green::sync::{Barrier, Condvar, Event, Mutex, OnceCell, RwLock, Semaphore, WaitError, WaitGroup};

/// Timeouts that no `Instant` can be that far from now: they mean "no
/// deadline".
const UNREPRESENTABLE: [Duration; 3] =
    [Duration::MAX, Duration::from_secs(u64::MAX), Duration::from_secs(i64::MAX as u64 + 1)];

/// A timeout that is a real deadline, some 146 billion years away: it arms
/// a timer (and the reactor's timer descriptor) without waking anyone.
const FAR: Duration = Duration::from_secs(1 << 62);

/// Spawns `wait`, lets it run until it parks, then runs `then` (which
/// should end the wait), and returns what `wait` returned.
fn after_parking<T: 'static>(wait: impl FnOnce() -> T + 'static, then: impl FnOnce()) -> T {
    let waiting = green::spawn(wait);
    green::yield_now();
    assert!(!waiting.is_finished(), "the wait did not wait");
    then();
    waiting.join().unwrap()
}

/// Every timed wait of the crate with `timeout`, each ended by another
/// coroutine after it parked: each must succeed, none may time out.
fn every_timed_wait_succeeds_with(timeout: Duration) {
    green::run(|| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let receiving = rx.clone();
        assert_eq!(after_parking(move || receiving.recv_timeout(timeout), || tx.send(1).unwrap()), Ok(1));
        let sending = tx.clone();
        let sent =
            after_parking(move || sending.send_timeout(2, timeout).is_ok(), || assert_eq!(rx.recv(), Ok(2)));
        assert!(sent, "the send waited for the receiver and succeeded");
        let selecting = rx.clone();
        let selected = after_parking(
            move || Select::new().recv(&selecting, |r| r.ok()).timeout(timeout, || None).wait(),
            || tx.send(3).unwrap(),
        );
        assert_eq!(selected, Some(3));
        let (once_tx, once_rx) = channel::oneshot();
        assert_eq!(after_parking(move || once_rx.recv_timeout(timeout), || once_tx.send(4).unwrap()), Ok(4));
        let receiving = rx.clone();
        let scoped =
            after_parking(move || green::timeout(timeout, || receiving.recv()), || tx.send(5).unwrap());
        assert_eq!(scoped, Ok(Ok(5)));

        let mutex = Rc::new(Mutex::new(6));
        let guard = mutex.lock().unwrap();
        let locking = mutex.clone();
        let locked =
            after_parking(move || locking.lock_timeout(timeout).map(|value| *value).ok(), || drop(guard));
        assert_eq!(locked, Some(6));

        let rwlock = Rc::new(RwLock::new(7));
        let reader = rwlock.read().unwrap();
        let writing = rwlock.clone();
        let written =
            after_parking(move || writing.write_timeout(timeout).map(|value| *value).ok(), || drop(reader));
        assert_eq!(written, Some(7));
        let writer = rwlock.write().unwrap();
        let reading = rwlock.clone();
        let read =
            after_parking(move || reading.read_timeout(timeout).map(|value| *value).ok(), || drop(writer));
        assert_eq!(read, Some(7));

        let pair = Rc::new((Mutex::new(false), Condvar::new()));
        let waiting = pair.clone();
        let notified = after_parking(
            move || {
                let (flag, changed) = &*waiting;
                let (guard, result) = changed.wait_timeout(flag.lock().unwrap(), timeout).unwrap();
                (*guard, result.timed_out())
            },
            || {
                *pair.0.lock().unwrap() = true;
                pair.1.notify_one();
            },
        );
        assert_eq!(notified, (true, false));
        *pair.0.lock().unwrap() = false;
        let waiting = pair.clone();
        let notified = after_parking(
            move || {
                let (flag, changed) = &*waiting;
                let guard = flag.lock().unwrap();
                let (guard, result) = changed.wait_timeout_while(guard, timeout, |flag| !*flag).unwrap();
                (*guard, result.timed_out())
            },
            || {
                *pair.0.lock().unwrap() = true;
                pair.1.notify_all();
            },
        );
        assert_eq!(notified, (true, false));

        let semaphore = Rc::new(Semaphore::new(0));
        let acquiring = semaphore.clone();
        let acquired = after_parking(
            move || acquiring.acquire_timeout(timeout).map(|permit| permit.num_permits()),
            || semaphore.add_permits(1),
        );
        assert_eq!(acquired, Ok(1));
        let acquiring = semaphore.clone();
        let acquired = after_parking(
            move || acquiring.acquire_many_timeout(3, timeout).map(|permits| permits.num_permits()),
            || semaphore.add_permits(2),
        );
        assert_eq!(acquired, Ok(3));

        let event = Rc::new(Event::new());
        let waiting = event.clone();
        assert_eq!(after_parking(move || waiting.wait_timeout(timeout), || event.set()), Ok(()));

        let barrier = Rc::new(Barrier::new(2));
        let waiting = barrier.clone();
        let passed = after_parking(
            move || waiting.wait_timeout(timeout).map(|result| result.is_leader()),
            || assert_eq!(barrier.wait().map(|result| result.is_leader()), Ok(true)),
        );
        assert_eq!(passed, Ok(false));

        let group = Rc::new(WaitGroup::new());
        let job = group.add();
        let waiting = group.clone();
        assert_eq!(after_parking(move || waiting.wait_timeout(timeout), || job.done()), Ok(()));

        let cell = Rc::new(OnceCell::new());
        let waiting = cell.clone();
        let value = after_parking(move || waiting.wait_timeout(timeout).copied(), || cell.set(8).unwrap());
        assert_eq!(value, Ok(8));

        // A sleep that long ends when the coroutine is cancelled.
        let sleeping = green::spawn(move || green::sleep(timeout));
        green::yield_now();
        assert!(!sleeping.is_finished());
        sleeping.cancel();
        assert_eq!(sleeping.join().unwrap(), Err(green::Cancelled));
    });
}

#[test]
fn timeouts_too_long_for_a_deadline_wait_without_one() {
    for timeout in UNREPRESENTABLE {
        every_timed_wait_succeeds_with(timeout);
    }
}

#[test]
fn far_but_representable_deadlines_arm_a_timer_and_still_wait() {
    every_timed_wait_succeeds_with(FAR);
}

#[test]
fn a_plain_thread_waits_with_timeouts_too_long_for_a_deadline() {
    for timeout in UNREPRESENTABLE.into_iter().chain([FAR]) {
        let (tx, rx) = channel::rendezvous::<u32>();
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let event = Arc::new(Event::new());
        let waiter = {
            let (pair, event) = (pair.clone(), event.clone());
            thread::spawn(move || {
                let received = rx.recv_timeout(timeout);
                let (flag, changed) = &*pair;
                let guard = flag.lock().unwrap();
                let (guard, result) = changed.wait_timeout_while(guard, timeout, |flag| !*flag).unwrap();
                (received, *guard, result.timed_out(), event.wait_timeout(timeout))
            })
        };
        green::run(move || {
            tx.send(1).unwrap(); // a rendezvous: returns once the thread has the message
            *pair.0.lock().unwrap() = true;
            pair.1.notify_all();
            event.set();
        });
        assert_eq!(waiter.join().unwrap(), (Ok(1), true, false, Ok(())));
    }
}

#[test]
fn a_sleep_too_long_for_a_deadline_ends_with_the_timeout_scope_around_it() {
    green::run(|| {
        let slept = green::timeout(Duration::from_millis(1), || green::sleep(Duration::MAX));
        assert!(slept.is_err(), "the scope's deadline cancels the sleep: {slept:?}");
    });
}

#[test]
#[should_panic(expected = "deadlock")]
fn a_sleep_for_ever_with_nothing_else_to_run_is_reported_as_a_deadlock() {
    green::run(|| {
        let _ = green::sleep(Duration::MAX);
    });
}

#[test]
fn a_receive_with_a_deadline_in_the_past_or_a_zero_timeout_does_not_wait() {
    let (_tx, rx) = channel::bounded::<u8>(1);
    assert_eq!(rx.recv_timeout(Duration::ZERO), Err(RecvTimeoutError::Timeout));
    assert_eq!(
        rx.recv_deadline(std::time::Instant::now() - Duration::from_secs(1)),
        Err(RecvTimeoutError::Timeout)
    );
}

#[test]
fn a_channel_of_capacity_usize_max_allocates_as_it_goes_and_never_fills() {
    let (tx, rx) = channel::bounded::<u64>(usize::MAX);
    assert_eq!(tx.capacity(), Some(usize::MAX));
    for i in 0..10_000 {
        tx.try_send(i).unwrap();
    }
    assert!(!tx.is_full());
    assert_eq!(rx.len(), 10_000);
    assert_eq!(rx.try_iter().sum::<u64>(), 10_000 * 9_999 / 2);
    // Zero-sized messages need no memory at all.
    let (tx, rx) = channel::bounded::<()>(usize::MAX);
    for _ in 0..100_000 {
        tx.try_send(()).unwrap();
    }
    assert_eq!((rx.len(), tx.is_full()), (100_000, false));
}

#[test]
fn a_channel_of_capacity_zero_is_a_rendezvous() {
    let (tx, rx) = channel::bounded::<u8>(0);
    assert_eq!(tx.capacity(), Some(0));
    assert!(tx.is_full() && rx.is_empty());
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)), "no receiver is waiting");
    let receiver = thread::spawn(move || rx.recv());
    tx.send(2).unwrap();
    assert_eq!(receiver.join().unwrap(), Ok(2));
}

#[test]
fn a_barrier_of_zero_parties_is_one_of_one() {
    let barrier = Barrier::new(0);
    for _ in 0..3 {
        assert_eq!(barrier.wait().map(|result| result.is_leader()), Ok(true));
    }
}

#[test]
fn a_barrier_of_usize_max_parties_counts_arrivals_and_withdrawals_without_overflow() {
    green::run(|| {
        let barrier = Rc::new(Barrier::new(usize::MAX));
        assert_eq!(barrier.wait_timeout(Duration::ZERO).map(drop), Err(WaitError::TimedOut));
        let parties: Vec<_> = (0..1_000)
            .map(|_| {
                let barrier = barrier.clone();
                green::spawn(move || barrier.wait_timeout(Duration::MAX).map(drop))
            })
            .collect();
        green::yield_now();
        assert!(format!("{barrier:?}").contains("arrived: 1000"), "{barrier:?}");
        for party in &parties {
            party.cancel();
        }
        for party in parties {
            assert_eq!(party.join().unwrap(), Err(WaitError::Cancelled));
        }
        assert!(
            format!("{barrier:?}").contains("arrived: 0, generation: 0"),
            "every party withdrew: {barrier:?}"
        );
    });
}

#[test]
fn a_hundred_thousand_readers_and_guards_at_once() {
    const HOLDERS: usize = 100_000;
    let lock = RwLock::new(1);
    let readers: Vec<_> = (0..HOLDERS).map(|_| lock.read().unwrap()).collect();
    assert!(lock.try_write().is_err());
    assert_eq!(readers.iter().map(|reader| **reader).sum::<usize>(), HOLDERS);
    drop(readers);
    *lock.write().unwrap() += 1;
    let group = WaitGroup::new();
    let first = group.add();
    let guards: Vec<_> = (1..HOLDERS).map(|_| first.clone()).collect();
    assert_eq!(group.count(), HOLDERS);
    assert_eq!(group.wait_timeout(Duration::ZERO), Err(WaitError::TimedOut));
    drop((first, guards));
    assert_eq!((group.count(), group.wait()), (0, Ok(())));
    let done = Cell::new(0);
    green::run(|| {
        done.set(Semaphore::new(Semaphore::MAX_PERMITS).acquire_many(HOLDERS).unwrap().num_permits())
    });
    assert_eq!(done.get(), HOLDERS);
}
