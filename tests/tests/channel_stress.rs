//! Many producers and consumers: every message is delivered exactly once,
//! and each consumer sees each producer's messages in the order they were
//! sent. Variants cover the three buffer kinds (small bounded, unbounded,
//! rendezvous) and three placements (all coroutines in one runtime,
//! coroutines of two runtimes on two threads, plain threads mixed with
//! coroutines).
//!
//! Sizes are scaled down in debug builds; a release run moves a few
//! million messages in all.

use std::thread;

use green::channel::{self, Receiver, Sender};

/// Multiplies every message count in release builds.
const SCALE: u64 = if cfg!(debug_assertions) { 1 } else { 10 };

/// The kinds of channel every placement is run with.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `bounded(4)`: senders park often.
    SmallBounded,
    /// `unbounded()`: senders never park.
    Unbounded,
    /// `rendezvous()`: every message is a hand-off between two parties.
    Rendezvous,
}

impl Kind {
    fn make(self) -> (Sender<u64>, Receiver<u64>) {
        match self {
            Kind::SmallBounded => channel::bounded(4),
            Kind::Unbounded => channel::unbounded(),
            Kind::Rendezvous => channel::rendezvous(),
        }
    }
}

/// A message: the producer in the high 32 bits, its sequence number in the
/// low 32.
fn message(producer: u64, seq: u64) -> u64 {
    producer << 32 | seq
}

fn produce(tx: Sender<u64>, producer: u64, count: u64) {
    for seq in 0..count {
        tx.send(message(producer, seq)).expect("a consumer is alive until every producer is done");
    }
}

fn consume(rx: Receiver<u64>) -> Vec<u64> {
    rx.iter().collect()
}

/// Checks the consumers' logs: each of `producers × per_producer` messages
/// exactly once overall, and within each log each producer's messages in
/// increasing order.
fn check(logs: &[Vec<u64>], producers: u64, per_producer: u64) {
    let mut seen = vec![0u8; (producers * per_producer) as usize];
    for (consumer, log) in logs.iter().enumerate() {
        let mut last: Vec<Option<u64>> = vec![None; producers as usize];
        for &m in log {
            let (producer, seq) = (m >> 32, m & 0xffff_ffff);
            assert!(
                producer < producers && seq < per_producer,
                "consumer {consumer} got a message never sent: {m:#x}"
            );
            let last = &mut last[producer as usize];
            assert!(
                last.is_none_or(|last| last < seq),
                "consumer {consumer} got message {seq} of producer {producer} after message {last:?}"
            );
            *last = Some(seq);
            seen[(producer * per_producer + seq) as usize] += 1;
        }
    }
    for (i, &count) in seen.iter().enumerate() {
        let (producer, seq) = (i as u64 / per_producer, i as u64 % per_producer);
        assert_eq!(count, 1, "message {seq} of producer {producer} was delivered {count} times");
    }
}

/// All producers and consumers are coroutines of one runtime.
fn one_runtime(kind: Kind, producers: u64, consumers: usize, per_producer: u64) {
    let logs = green::run(|| {
        let (tx, rx) = kind.make();
        let consumers: Vec<_> = (0..consumers)
            .map(|_| {
                let rx = rx.clone();
                green::spawn(move || consume(rx))
            })
            .collect();
        drop(rx);
        for producer in 0..producers {
            let tx = tx.clone();
            green::spawn(move || produce(tx, producer, per_producer));
        }
        drop(tx);
        consumers.into_iter().map(|c| c.join().expect("consumer")).collect::<Vec<_>>()
    });
    check(&logs, producers, per_producer);
}

/// Two runtimes on two threads, each with half the producers and half the
/// consumers, so that most hand-offs cross threads.
fn two_runtimes(kind: Kind, producers: u64, consumers: usize, per_producer: u64) {
    let (tx, rx) = kind.make();
    let runtimes: Vec<_> = (0..2u64)
        .map(|runtime| {
            let (tx, rx) = (tx.clone(), rx.clone());
            thread::spawn(move || {
                green::run(move || {
                    let mine: Vec<_> = (0..consumers / 2)
                        .map(|_| {
                            let rx = rx.clone();
                            green::spawn(move || consume(rx))
                        })
                        .collect();
                    drop(rx);
                    for producer in (0..producers).filter(|p| p % 2 == runtime) {
                        let tx = tx.clone();
                        green::spawn(move || produce(tx, producer, per_producer));
                    }
                    drop(tx);
                    mine.into_iter().map(|c| c.join().expect("consumer")).collect::<Vec<_>>()
                })
            })
        })
        .collect();
    drop((tx, rx));
    let logs: Vec<Vec<u64>> = runtimes.into_iter().flat_map(|r| r.join().expect("runtime thread")).collect();
    check(&logs, producers, per_producer);
}

/// Plain threads and coroutines of two runtimes, on both sides: producer
/// `p` is a thread if `p % 3 == 0`, else a coroutine of runtime `p % 2`;
/// consumers likewise.
fn mixed(kind: Kind, producers: u64, consumers: usize, per_producer: u64) {
    let (tx, rx) = kind.make();
    let mut threads = Vec::new();
    for producer in (0..producers).filter(|p| p % 3 == 0) {
        let tx = tx.clone();
        threads.push(thread::spawn(move || {
            produce(tx, producer, per_producer);
            Vec::new()
        }));
    }
    for _ in (0..consumers).filter(|c| c % 3 == 0) {
        let rx = rx.clone();
        threads.push(thread::spawn(move || vec![consume(rx)]));
    }
    for runtime in 0..2u64 {
        let (tx, rx) = (tx.clone(), rx.clone());
        threads.push(thread::spawn(move || {
            green::run(move || {
                let mine: Vec<_> = (0..consumers)
                    .filter(|c| c % 3 != 0 && *c as u64 % 2 == runtime)
                    .map(|_| {
                        let rx = rx.clone();
                        green::spawn(move || consume(rx))
                    })
                    .collect();
                drop(rx);
                for producer in (0..producers).filter(|p| p % 3 != 0 && p % 2 == runtime) {
                    let tx = tx.clone();
                    green::spawn(move || produce(tx, producer, per_producer));
                }
                drop(tx);
                mine.into_iter().map(|c| c.join().expect("consumer")).collect::<Vec<_>>()
            })
        }));
    }
    drop((tx, rx));
    let logs: Vec<Vec<u64>> = threads.into_iter().flat_map(|t| t.join().expect("thread")).collect();
    check(&logs, producers, per_producer);
}

#[test]
fn one_runtime_small_bounded() {
    one_runtime(Kind::SmallBounded, 8, 8, 20_000 * SCALE);
}

#[test]
fn one_runtime_unbounded() {
    one_runtime(Kind::Unbounded, 8, 8, 20_000 * SCALE);
}

#[test]
fn one_runtime_rendezvous() {
    one_runtime(Kind::Rendezvous, 8, 8, 10_000 * SCALE);
}

#[test]
fn two_runtimes_small_bounded() {
    two_runtimes(Kind::SmallBounded, 8, 8, 5_000 * SCALE);
}

#[test]
fn two_runtimes_unbounded() {
    two_runtimes(Kind::Unbounded, 8, 8, 5_000 * SCALE);
}

#[test]
fn two_runtimes_rendezvous() {
    two_runtimes(Kind::Rendezvous, 8, 8, 2_000 * SCALE);
}

#[test]
fn threads_and_coroutines_small_bounded() {
    mixed(Kind::SmallBounded, 9, 9, 3_000 * SCALE);
}

#[test]
fn threads_and_coroutines_unbounded() {
    mixed(Kind::Unbounded, 9, 9, 3_000 * SCALE);
}

#[test]
fn threads_and_coroutines_rendezvous() {
    mixed(Kind::Rendezvous, 9, 9, 1_000 * SCALE);
}
