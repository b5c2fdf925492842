//! `Select` takes exactly one branch: a losing receive consumed nothing, a
//! losing send sent nothing (its message is dropped or given back), the
//! timeout and default branches run only when nothing happened, and all of
//! it holds when a message arrives at the very moment a select times out.
//! Messages are drop tokens or numbered, so that "nothing lost, nothing
//! duplicated" is counted, not assumed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use green::channel::{self, RecvError, Select, SendError, TryRecvError};
use green_tests::{DropCounter, DropToken};

#[test]
fn a_losing_receive_consumes_nothing() {
    const EACH: usize = 1_000;
    const SELECTS: usize = 1_200;
    green::run(|| {
        let counter = DropCounter::new();
        let (tx1, rx1) = channel::bounded::<(usize, DropToken)>(EACH);
        let (tx2, rx2) = channel::bounded::<(usize, DropToken)>(EACH);
        for i in 0..EACH {
            tx1.send((i, counter.token())).unwrap();
            tx2.send((i, counter.token())).unwrap();
        }
        let (mut from1, mut from2) = (Vec::new(), Vec::new());
        for _ in 0..SELECTS {
            let (which, (i, token)) =
                Select::new().recv(&rx1, |m| (1, m.unwrap())).recv(&rx2, |m| (2, m.unwrap())).wait();
            drop(token);
            if which == 1 { from1.push(i) } else { from2.push(i) }
        }
        assert_eq!(from1.len() + from2.len(), SELECTS);
        assert_eq!(rx1.len() + rx2.len(), 2 * EACH - SELECTS, "the losers' messages are still there");
        assert_eq!(counter.dropped(), SELECTS);
        // Each channel gave up its messages in order, from the front.
        assert_eq!(from1, (0..from1.len()).collect::<Vec<_>>());
        assert_eq!(from2, (0..from2.len()).collect::<Vec<_>>());
        // Both were always ready: the random start takes each about half
        // the time (the chance that one never won is 2^-1200).
        assert!(!from1.is_empty() && !from2.is_empty(), "an always-ready first branch starved the second");
        drop((rx1, rx2));
        assert_eq!(counter.dropped(), 2 * EACH);
    });
}

#[test]
fn a_losing_send_sends_nothing_and_drops_its_message() {
    const SELECTS: usize = 200;
    green::run(|| {
        let counter = DropCounter::new();
        let (tx1, rx1) = channel::unbounded::<DropToken>();
        let (tx2, rx2) = channel::unbounded::<DropToken>();
        for _ in 0..SELECTS {
            Select::new()
                .send(&tx1, counter.token(), |r| r.unwrap())
                .send(&tx2, counter.token(), |r| r.unwrap())
                .wait();
        }
        assert_eq!(rx1.len() + rx2.len(), SELECTS, "one message per select");
        assert_eq!(counter.dropped(), SELECTS, "the losers' messages were dropped");
        assert!(!rx1.is_empty() && !rx2.is_empty());
    });
}

#[test]
fn a_losing_send_from_gives_its_message_back() {
    green::run(|| {
        let counter = DropCounter::new();
        let (tx1, rx1) = channel::unbounded::<DropToken>();
        let (tx2, rx2) = channel::unbounded::<DropToken>();
        let mut kept = Vec::new();
        for _ in 0..200 {
            let mut first = Some(counter.token());
            let mut second = Some(counter.token());
            Select::new()
                .send_from(&tx1, &mut first, |r| r.unwrap())
                .send_from(&tx2, &mut second, |r| r.unwrap())
                .wait();
            assert!(first.is_some() != second.is_some(), "exactly one message was taken");
            kept.extend(first.into_iter().chain(second));
        }
        assert_eq!(kept.len(), 200);
        assert_eq!(rx1.len() + rx2.len(), 200);
        assert_eq!(counter.dropped(), 0, "nothing was dropped: 200 sent, 200 given back");
    });
}

#[test]
fn a_send_and_a_receive_both_ready_do_exactly_one() {
    green::run(|| {
        let (in_tx, in_rx) = channel::unbounded::<u32>();
        let (out_tx, out_rx) = channel::unbounded::<u32>();
        for i in 0..100 {
            in_tx.send(i).unwrap();
        }
        for _ in 0..100 {
            let before = (in_rx.len(), out_rx.len());
            let received = Select::new().recv(&in_rx, |m| m.is_ok()).send(&out_tx, 7, |r| r.is_err()).wait();
            let after = (in_rx.len(), out_rx.len());
            if received {
                assert_eq!(after, (before.0 - 1, before.1));
            } else {
                assert_eq!(after, (before.0, before.1 + 1));
            }
        }
    });
}

#[test]
fn the_timeout_runs_when_nothing_is_ready_and_consumes_nothing() {
    green::run(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let (full_tx, full_rx) = channel::bounded::<u32>(1);
        full_tx.send(1).unwrap();
        let mut message = Some(2);
        let what = Select::new()
            .recv(&rx, |_| "received")
            .send_from(&full_tx, &mut message, |_| "sent")
            .timeout(Duration::from_millis(2), || "timed out")
            .wait();
        assert_eq!(what, "timed out");
        assert_eq!(message, Some(2), "the unsent message came back");
        assert_eq!(full_rx.try_iter().collect::<Vec<_>>(), [1], "nothing was added");
        tx.send(3).unwrap();
        assert_eq!(rx.try_recv(), Ok(3), "the receive branch left no trace");
        // A ready branch is taken even if the deadline has passed.
        tx.send(4).unwrap();
        let what = Select::new().recv(&rx, |m| m.unwrap()).deadline(Instant::now(), || 0).wait();
        assert_eq!(what, 4);
    });
}

#[test]
fn the_default_runs_only_when_nothing_is_ready() {
    let (tx, rx) = channel::unbounded::<u32>();
    let got = Select::new().recv(&rx, |m| m.ok()).default(|| None).wait();
    assert_eq!(got, None);
    tx.send(5).unwrap();
    let got = Select::new().recv(&rx, |m| m.ok()).default(|| None).wait();
    assert_eq!(got, Some(5));
}

#[test]
fn a_select_in_a_coroutine_receives_from_a_thread() {
    green::run(|| {
        let (never_tx, never_rx) = channel::unbounded::<u32>();
        let (tx, rx) = channel::rendezvous::<u32>();
        let thread = thread::spawn(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
            }
        });
        for i in 0..100 {
            let got = Select::new().recv(&never_rx, |_| None).recv(&rx, |m| m.ok()).wait();
            assert_eq!(got, Some(i));
        }
        thread.join().unwrap();
        drop(never_tx);
    });
}

#[test]
fn a_select_on_a_thread_is_woken_by_a_coroutine() {
    let (tx, rx) = channel::rendezvous::<&str>();
    let (_never_tx, never_rx) = channel::unbounded::<&str>();
    let thread =
        thread::spawn(move || Select::new().recv(&never_rx, |_| "wrong").recv(&rx, |m| m.unwrap()).wait());
    green::run(move || tx.send("from a coroutine").unwrap());
    assert_eq!(thread.join().unwrap(), "from a coroutine");
}

#[test]
fn a_disconnected_channel_is_a_ready_branch() {
    green::run(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let (gone_tx, gone_rx) = channel::unbounded::<u32>();
        drop(gone_tx);
        let got = Select::new().recv(&gone_rx, |m| m).wait();
        assert_eq!(got, Err(RecvError::Disconnected));

        // Parked, then woken by the last sender's drop.
        let waiting = green::spawn(move || Select::new().recv(&rx, |m| m).wait());
        green::yield_now();
        drop(tx);
        assert_eq!(waiting.join().unwrap(), Err(RecvError::Disconnected));

        // A parked send branch gets its message back.
        let (tx, rx) = channel::rendezvous::<String>();
        let waiting = green::spawn(move || Select::new().send(&tx, String::from("back"), |r| r).wait());
        green::yield_now();
        drop(rx);
        assert_eq!(waiting.join().unwrap(), Err(SendError::Disconnected(String::from("back"))));
    });
}

#[test]
fn a_select_never_pairs_with_itself() {
    green::run(|| {
        // Alone on a rendezvous channel, a select that both sends and
        // receives on it must not hand its message to its own receive.
        let (tx, rx) = channel::rendezvous::<u32>();
        let what = Select::new()
            .recv(&rx, |_| "received")
            .send(&tx, 1, |_| "sent")
            .timeout(Duration::from_millis(2), || "timed out")
            .wait();
        assert_eq!(what, "timed out");

        // With a partner parked on either side, the matching branch wins.
        let receiver = {
            let rx = rx.clone();
            green::spawn(move || rx.recv().unwrap())
        };
        green::yield_now();
        let what = Select::new().recv(&rx, |_| "received").send(&tx, 2, |_| "sent").wait();
        assert_eq!(what, "sent");
        assert_eq!(receiver.join().unwrap(), 2);

        let sender = {
            let tx = tx.clone();
            green::spawn(move || tx.send(3).unwrap())
        };
        green::yield_now();
        let what = Select::new().send(&tx, 4, |_| 0).recv(&rx, |m| m.unwrap()).wait();
        assert_eq!(what, 3);
        sender.join().unwrap();
    });
}

#[test]
fn a_parked_select_is_found_behind_its_own_entry() {
    // The select parks a receive and a send on one rendezvous channel; a
    // receiver that arrives meanwhile must pair with its send.
    green::run(|| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let select = {
            let (tx, rx) = (tx.clone(), rx.clone());
            green::spawn(move || Select::new().recv(&rx, |_| "received").send(&tx, 9, |_| "sent").wait())
        };
        green::yield_now(); // the select parks in both queues
        assert_eq!(rx.recv(), Ok(9));
        assert_eq!(select.join().unwrap(), "sent");
    });
}

#[test]
fn a_cancelled_select_runs_the_first_branch_with_cancelled() {
    green::run(|| {
        let (_tx, rx) = channel::unbounded::<u32>();
        let (out_tx, out_rx) = channel::rendezvous::<String>();
        let waiting = green::spawn(move || {
            Select::new()
                .send(&out_tx, String::from("mine"), |r| match r {
                    Err(SendError::Cancelled(message)) => Some(message),
                    _ => None,
                })
                .recv(&rx, |_| None)
                .wait()
        });
        green::yield_now(); // it parks in both queues
        waiting.cancel();
        assert_eq!(
            waiting.join().unwrap(),
            Some(String::from("mine")),
            "the message came back with the error"
        );
        assert_eq!(out_rx.try_recv(), Err(TryRecvError::Disconnected), "nothing was ever sent");
    });
}

/// Counts live messages across threads (the shared `DropCounter` is for
/// one thread).
#[derive(Debug)]
struct Live {
    /// The message's number.
    id: u64,
    /// Messages created and not yet dropped, shared by all.
    live: Arc<AtomicUsize>,
}

impl Live {
    fn new(id: u64, live: &Arc<AtomicUsize>) -> Live {
        live.fetch_add(1, Ordering::SeqCst);
        Live { id, live: live.clone() }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Burns a few microseconds without sleeping, so that a thread's sends and
/// receives land at scattered moments relative to the other side's
/// timeouts.
/// Keeps the producer's thread busy for `micros` microseconds, without a
/// system call: gaps between messages from 0 to 48 µs straddle the 20 µs
/// timeout on any machine, so both outcomes of the race happen (a loop of a
/// fixed count did not: on a fast machine every gap was under 20 µs).
fn spin(micros: u64) {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_micros(micros) {
        std::hint::spin_loop();
    }
}

const RACES: u64 = if cfg!(debug_assertions) { 2_000 } else { 20_000 };

#[test]
fn a_receive_racing_its_timeout_loses_and_duplicates_nothing() {
    let live = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = channel::unbounded::<Live>();
    let producer = {
        let live = live.clone();
        thread::spawn(move || {
            for id in 0..RACES {
                spin(id % 13 * 4);
                tx.send(Live::new(id, &live)).unwrap();
            }
        })
    };
    let (received, timeouts) = green::run(move || {
        let (mut received, mut timeouts) = (Vec::new(), 0u64);
        loop {
            let got = Select::new().recv(&rx, Some).timeout(Duration::from_micros(20), || None).wait();
            match got {
                Some(Ok(message)) => received.push(message.id),
                Some(Err(_)) => break,
                None => timeouts += 1,
            }
        }
        (received, timeouts)
    });
    producer.join().unwrap();
    assert_eq!(received, (0..RACES).collect::<Vec<_>>(), "every message once, in order");
    assert_eq!(live.load(Ordering::SeqCst), 0, "every message was dropped exactly once");
    assert!(timeouts > 0, "the race was exercised");
}

#[test]
fn a_send_racing_its_timeout_loses_and_duplicates_nothing() {
    let live = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = channel::rendezvous::<Live>();
    let consumer = thread::spawn(move || {
        let mut received = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_micros(15)) {
                Ok(message) => {
                    // Away for 0 to 48 µs before the next receive, so the
                    // sender's 20 µs timeout both wins and loses.
                    spin(message.id % 13 * 4);
                    received.push(message.id);
                }
                Err(err) if err.is_timeout() => {}
                Err(_) => return received,
            }
        }
    });
    let timeouts = {
        let live = live.clone();
        green::run(move || {
            let mut timeouts = 0u64;
            for id in 0..RACES {
                let mut message = Some(Live::new(id, &live));
                while message.is_some() {
                    let sent = Select::new()
                        .send_from(&tx, &mut message, |r| r.is_ok())
                        .timeout(Duration::from_micros(20), || false)
                        .wait();
                    if !sent {
                        timeouts += 1;
                    }
                }
            }
            timeouts
        })
    };
    let received = consumer.join().unwrap();
    assert_eq!(received, (0..RACES).collect::<Vec<_>>(), "every message once, in order");
    assert_eq!(live.load(Ordering::SeqCst), 0);
    assert!(timeouts > 0, "the race was exercised");
}
