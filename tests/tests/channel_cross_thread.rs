//! Channels between plain OS threads and coroutines, in both directions,
//! and between coroutines of two runtimes: a waiting coroutine parks (its
//! thread keeps running the other coroutines) and a waiting thread blocks;
//! timeouts work on both.
//!
//! "The coroutine parked rather than blocked its thread" is shown without
//! timing: the party that will wake it only acts after another coroutine
//! of the same runtime has run, which it can only do if the thread is free.

use std::cell::Cell;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use green::channel::{self, RecvTimeoutError, SendTimeoutError};

#[test]
fn a_thread_sends_to_a_parked_coroutine() {
    green::run(|| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let (go_tx, go_rx) = channel::rendezvous::<()>();
        let thread = thread::spawn(move || {
            go_rx.recv().unwrap(); // blocks this thread until the helper runs
            for i in 0..100 {
                tx.send(i).unwrap();
            }
        });
        // Runs only once main has parked in `recv` below.
        let helper = green::spawn(move || go_tx.send(()).unwrap());
        let received: Vec<u32> = rx.iter().collect();
        assert_eq!(received, (0..100).collect::<Vec<_>>());
        helper.join().unwrap();
        thread.join().unwrap();
    });
}

#[test]
fn a_coroutine_sends_to_a_parked_thread() {
    let (tx, rx) = channel::bounded::<u32>(2);
    let thread = thread::spawn(move || rx.iter().collect::<Vec<_>>());
    green::run(move || {
        for i in 0..1_000 {
            tx.send(i).unwrap(); // parks the coroutine while the thread catches up
        }
    });
    assert_eq!(thread.join().unwrap(), (0..1_000).collect::<Vec<_>>());
}

#[test]
fn a_thread_parked_in_send_is_released_by_a_coroutine() {
    let (tx, rx) = channel::bounded::<u32>(1);
    let thread = thread::spawn(move || {
        for i in 0..1_000 {
            tx.send(i).unwrap(); // blocks the thread while the buffer is full
        }
    });
    let received = green::run(move || rx.iter().collect::<Vec<_>>());
    assert_eq!(received, (0..1_000).collect::<Vec<_>>());
    thread.join().unwrap();
}

#[test]
fn a_waiting_coroutine_leaves_its_thread_to_the_others() {
    green::run(|| {
        let (tx, rx) = channel::unbounded::<&str>();
        let ran = Rc::new(Cell::new(false));
        let other = {
            let ran = ran.clone();
            green::spawn(move || {
                ran.set(true);
                // Only now does anyone send; main is parked meanwhile.
                thread::spawn(move || tx.send("from a thread").unwrap())
            })
        };
        assert_eq!(rx.recv(), Ok("from a thread"));
        assert!(ran.get());
        other.join().unwrap().join().unwrap();
    });
}

#[test]
fn ping_pong_between_a_thread_and_a_coroutine() {
    const ROUNDS: u32 = 2_000;
    let (ping_tx, ping_rx) = channel::rendezvous::<u32>();
    let (pong_tx, pong_rx) = channel::rendezvous::<u32>();
    let thread = thread::spawn(move || {
        for ball in ping_rx.iter() {
            pong_tx.send(ball + 1).unwrap();
        }
    });
    green::run(move || {
        let mut ball = 0;
        for _ in 0..ROUNDS {
            ping_tx.send(ball).unwrap();
            ball = pong_rx.recv().unwrap() + 1;
        }
        assert_eq!(ball, 2 * ROUNDS);
    });
    thread.join().unwrap();
}

#[test]
fn ping_pong_between_coroutines_of_two_runtimes() {
    const ROUNDS: u32 = 2_000;
    let (ping_tx, ping_rx) = channel::bounded::<u32>(1);
    let (pong_tx, pong_rx) = channel::bounded::<u32>(1);
    let other = thread::spawn(move || {
        green::run(move || {
            for ball in ping_rx.iter() {
                pong_tx.send(ball + 1).unwrap();
            }
        })
    });
    green::run(move || {
        let mut ball = 0;
        for _ in 0..ROUNDS {
            ping_tx.send(ball).unwrap();
            ball = pong_rx.recv().unwrap() + 1;
        }
        assert_eq!(ball, 2 * ROUNDS);
    });
    other.join().unwrap();
}

#[test]
fn timeouts_on_a_thread() {
    let (tx, rx) = channel::bounded::<u8>(1);
    assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
    tx.send(1).unwrap();
    assert_eq!(tx.send_timeout(2, Duration::from_millis(1)), Err(SendTimeoutError::Timeout(2)));
    assert_eq!(rx.len(), 1, "the timed-out send left nothing behind");
    // A ready operation succeeds even if its deadline has passed.
    let past = Instant::now();
    assert_eq!(rx.recv_deadline(past), Ok(1));
    assert_eq!(tx.send_deadline(3, past), Ok(()));
    assert_eq!(rx.try_recv(), Ok(3));
}

#[test]
fn timeouts_in_a_coroutine_park_it() {
    green::run(|| {
        let (tx, rx) = channel::bounded::<u8>(1);
        let ticks = Rc::new(Cell::new(0u32));
        let ticker = {
            let ticks = ticks.clone();
            green::spawn(move || {
                ticks.set(ticks.get() + 1);
            })
        };
        assert_eq!(rx.recv_timeout(Duration::from_millis(2)), Err(RecvTimeoutError::Timeout));
        assert_eq!(ticks.get(), 1, "the other coroutine ran while main waited");
        ticker.join().unwrap();
        tx.send(1).unwrap();
        assert_eq!(tx.send_timeout(2, Duration::from_millis(2)), Err(SendTimeoutError::Timeout(2)));
        assert_eq!(rx.try_recv(), Ok(1));
        assert!(rx.is_empty(), "the timed-out send left nothing behind");
    });
}

#[test]
fn a_thread_waiting_with_a_timeout_gets_a_message_from_a_coroutine() {
    let (tx, rx) = channel::rendezvous::<&str>();
    let thread = thread::spawn(move || rx.recv_timeout(Duration::from_secs(60)));
    green::run(move || tx.send("in time").unwrap());
    assert_eq!(thread.join().unwrap(), Ok("in time"));
}
