//! `green::sync::Barrier`: each generation releases exactly `n` parties,
//! all of whom arrived before any left, with exactly one leader; parties
//! may be coroutines of any runtime or plain threads; a party whose wait
//! times out, is cancelled or is unwound withdraws, and the barrier still
//! needs `n`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use green::sync::{Barrier, BarrierWaitResult, WaitError};

/// Short enough to keep the suite fast; no test depends on how long a
/// timeout really took.
const SHORT: Duration = Duration::from_millis(20);

/// Runs `f` in a destructor: how a test gets code to run while a runtime
/// shuts down.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn barrier_is_send_and_sync() {
    assert_send_sync::<Barrier>();
    assert_send_sync::<BarrierWaitResult>();
}

/// What the parties of one generation record.
struct Generations {
    /// Per generation: parties that arrived (counted before `wait`).
    arrived: Vec<AtomicUsize>,
    /// Per generation: parties that left (counted after `wait`).
    left: Vec<AtomicUsize>,
    /// Per generation: parties told they lead.
    leaders: Vec<AtomicUsize>,
}

impl Generations {
    fn new(generations: usize) -> Generations {
        let counters = || (0..generations).map(|_| AtomicUsize::new(0)).collect();
        Generations { arrived: counters(), left: counters(), leaders: counters() }
    }

    /// One party's run through every generation.
    fn party(&self, barrier: &Barrier, n: usize) {
        for generation in 0..self.arrived.len() {
            self.arrived[generation].fetch_add(1, Ordering::SeqCst);
            let result = barrier.wait().expect("nobody cancels this party");
            assert_eq!(
                self.arrived[generation].load(Ordering::SeqCst),
                n,
                "generation {generation} released a party before all {n} had arrived"
            );
            if result.is_leader() {
                self.leaders[generation].fetch_add(1, Ordering::SeqCst);
            }
            self.left[generation].fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn every_generation_releases_exactly_n_parties_with_one_leader() {
    const GENERATIONS: usize = 200;
    // Three coroutines here, two in another runtime, two plain threads.
    const N: usize = 7;
    let barrier = Arc::new(Barrier::new(N));
    let record = Arc::new(Generations::new(GENERATIONS));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (barrier, record) = (barrier.clone(), record.clone());
            thread::spawn(move || record.party(&barrier, N))
        })
        .collect();
    let other_runtime = {
        let (barrier, record) = (barrier.clone(), record.clone());
        thread::spawn(move || {
            green::run(move || {
                let parties: Vec<_> = (0..2)
                    .map(|_| {
                        let (barrier, record) = (barrier.clone(), record.clone());
                        green::spawn(move || record.party(&barrier, N))
                    })
                    .collect();
                for party in parties {
                    party.join().unwrap();
                }
            })
        })
    };
    green::run(|| {
        let parties: Vec<_> = (0..3)
            .map(|_| {
                let (barrier, record) = (barrier.clone(), record.clone());
                green::spawn(move || record.party(&barrier, N))
            })
            .collect();
        for party in parties {
            party.join().unwrap();
        }
    });
    for thread in threads {
        thread.join().unwrap();
    }
    other_runtime.join().unwrap();
    for generation in 0..GENERATIONS {
        assert_eq!(record.left[generation].load(Ordering::SeqCst), N, "generation {generation}");
        assert_eq!(record.leaders[generation].load(Ordering::SeqCst), 1, "generation {generation}");
    }
}

#[test]
fn the_last_to_arrive_leads_and_the_others_wait_for_it() {
    green::run(|| {
        let barrier = Arc::new(Barrier::new(3));
        let passed = Arc::new(AtomicUsize::new(0));
        let early: Vec<_> = (0..2)
            .map(|_| {
                let (barrier, passed) = (barrier.clone(), passed.clone());
                green::spawn(move || {
                    let result = barrier.wait();
                    passed.fetch_add(1, Ordering::SeqCst);
                    result
                })
            })
            .collect();
        green::yield_now();
        assert_eq!(passed.load(Ordering::SeqCst), 0, "two of three have arrived: nobody passes");
        assert_eq!(barrier.wait().map(|r| r.is_leader()), Ok(true));
        for party in early {
            assert_eq!(party.join().unwrap().map(|r| r.is_leader()), Ok(false));
        }
        assert_eq!(passed.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn a_timed_out_party_withdraws_and_the_barrier_still_needs_n() {
    green::run(|| {
        let barrier = Arc::new(Barrier::new(3));
        // A patient party waits through everything below.
        let patient = {
            let barrier = barrier.clone();
            green::spawn(move || barrier.wait())
        };
        green::yield_now();
        // An impatient coroutine and an impatient thread arrive one after
        // the other and give up. Had the first still been counted, the
        // second would have been the third arrival and tripped the barrier.
        let coroutine = {
            let barrier = barrier.clone();
            green::spawn(move || barrier.wait_timeout(SHORT))
        };
        assert_eq!(coroutine.join().unwrap(), Err(WaitError::TimedOut));
        let thread = {
            let barrier = barrier.clone();
            thread::spawn(move || barrier.wait_timeout(SHORT))
        };
        assert_eq!(thread.join().unwrap(), Err(WaitError::TimedOut));
        assert!(!patient.is_finished(), "the patient party is not disturbed by the others' timeouts");
        // Two more arrivals complete the generation of three.
        let second = {
            let barrier = barrier.clone();
            green::spawn(move || barrier.wait())
        };
        green::yield_now();
        assert_eq!(barrier.wait().map(|r| r.is_leader()), Ok(true));
        assert_eq!(patient.join().unwrap().map(|r| r.is_leader()), Ok(false));
        assert_eq!(second.join().unwrap().map(|r| r.is_leader()), Ok(false));
    });
}

#[test]
fn a_party_that_timed_out_can_come_back() {
    let barrier = Arc::new(Barrier::new(2));
    assert_eq!(barrier.wait_timeout(SHORT), Err(WaitError::TimedOut));
    assert_eq!(barrier.wait_deadline(std::time::Instant::now()), Err(WaitError::TimedOut));
    let other = {
        let barrier = barrier.clone();
        thread::spawn(move || barrier.wait().map(|r| r.is_leader()))
    };
    let mine = barrier.wait().map(|r| r.is_leader());
    let theirs = other.join().unwrap();
    assert_eq!([mine, theirs].iter().filter(|r| **r == Ok(true)).count(), 1, "{mine:?} {theirs:?}");
    assert!(mine.is_ok() && theirs.is_ok());
}

#[test]
fn a_barrier_of_one_or_zero_never_waits() {
    for n in [0, 1] {
        let barrier = Barrier::new(n);
        for _ in 0..3 {
            assert_eq!(barrier.wait().map(|r| r.is_leader()), Ok(true));
            assert_eq!(barrier.wait_timeout(Duration::ZERO).map(|r| r.is_leader()), Ok(true));
        }
    }
}

/// After a runtime's shutdown, checks that `barrier` (of two) is empty:
/// one party alone times out, two pass with one leader.
fn assert_nobody_is_counted(barrier: &Arc<Barrier>) {
    assert_eq!(barrier.wait_timeout(SHORT), Err(WaitError::TimedOut), "a withdrawn party was still counted");
    let other = {
        let barrier = barrier.clone();
        thread::spawn(move || barrier.wait().map(|r| r.is_leader()))
    };
    let mine = barrier.wait().map(|r| r.is_leader());
    let theirs = other.join().unwrap();
    assert!(mine.is_ok() && theirs.is_ok(), "{mine:?} {theirs:?}");
    assert_ne!(mine, theirs, "exactly one leader");
}

#[test]
fn a_wait_in_a_destructor_during_shutdown_is_cancelled_and_withdraws() {
    let barrier = Arc::new(Barrier::new(2));
    let seen = Arc::new(Mutex::new(None));
    green::run(|| {
        let (barrier, seen) = (barrier.clone(), seen.clone());
        green::spawn(move || {
            let _on_drop = OnDrop(move || *seen.lock().unwrap() = Some(barrier.wait()));
            let _ = green::sleep(Duration::MAX);
        });
        green::yield_now();
    });
    assert_eq!(*seen.lock().unwrap(), Some(Err(WaitError::Cancelled)));
    assert_nobody_is_counted(&barrier);
}

#[test]
fn a_party_unwound_while_it_waits_withdraws() {
    let barrier = Arc::new(Barrier::new(2));
    green::run(|| {
        let barrier = barrier.clone();
        green::spawn(move || barrier.wait());
        green::yield_now();
        // Main returns: the waiting party is unwound.
    });
    assert_nobody_is_counted(&barrier);
}

#[test]
fn a_cancelled_party_withdraws_and_the_others_are_not_disturbed() {
    green::run(|| {
        let barrier = Arc::new(Barrier::new(2));
        let cancelled = {
            let barrier = barrier.clone();
            green::spawn(move || barrier.wait())
        };
        green::yield_now();
        cancelled.cancel();
        assert_eq!(cancelled.join().unwrap(), Err(WaitError::Cancelled));
        // Had the cancelled party still been counted, this one would lead.
        assert_eq!(barrier.wait_timeout(SHORT), Err(WaitError::TimedOut));
        let other = {
            let barrier = barrier.clone();
            green::spawn(move || barrier.wait())
        };
        green::yield_now();
        assert_eq!(barrier.wait().map(|r| r.is_leader()), Ok(true));
        assert_eq!(other.join().unwrap().map(|r| r.is_leader()), Ok(false));
    });
}
