//! `channel::oneshot`: one message, from a coroutine or a thread, to a
//! coroutine or a thread; a dropped sender or receiver is reported, and a
//! receiver that timed out can still get the message.

use std::thread;
use std::time::Duration;

use green::channel::{self, RecvError, RecvTimeoutError, TryRecvError};
use green_tests::DropCounter;

#[test]
fn the_message_arrives_in_a_coroutine() {
    green::run(|| {
        let (tx, rx) = channel::oneshot();
        let worker = green::spawn(move || tx.send(String::from("done")).unwrap());
        assert_eq!(rx.recv(), Ok(String::from("done")));
        worker.join().unwrap();
    });
}

#[test]
fn a_thread_answers_a_coroutine_and_a_coroutine_answers_a_thread() {
    let (to_thread, thread_rx) = channel::oneshot::<u32>();
    let (to_coroutine, coroutine_rx) = channel::oneshot::<u32>();
    let thread = thread::spawn(move || {
        let question = thread_rx.recv().unwrap(); // blocks the thread
        to_coroutine.send(question * 2).unwrap();
    });
    let answer = green::run(move || {
        to_thread.send(21).unwrap();
        coroutine_rx.recv().unwrap() // parks the coroutine
    });
    assert_eq!(answer, 42);
    thread.join().unwrap();
}

#[test]
fn a_dropped_sender_disconnects_the_receiver() {
    green::run(|| {
        let (tx, rx) = channel::oneshot::<u8>();
        let waiting = green::spawn(move || rx.recv());
        green::yield_now(); // parks in recv
        drop(tx);
        assert_eq!(waiting.join().unwrap(), Err(RecvError::Disconnected));
    });
}

#[test]
fn a_dropped_receiver_gives_the_message_back() {
    let counter = DropCounter::new();
    let (tx, rx) = channel::oneshot();
    assert!(!tx.is_disconnected());
    drop(rx);
    assert!(tx.is_disconnected());
    let back = tx.send(counter.token()).unwrap_err();
    assert_eq!(counter.dropped(), 0, "the message came back");
    drop(back);
    assert_eq!(counter.dropped(), 1);
}

#[test]
fn an_unreceived_message_is_dropped_with_the_receiver() {
    let counter = DropCounter::new();
    let (tx, rx) = channel::oneshot();
    tx.send(counter.token()).unwrap();
    assert_eq!(counter.dropped(), 0);
    drop(rx);
    assert_eq!(counter.dropped(), 1);
}

#[test]
fn try_recv_sees_empty_then_the_message_then_disconnected() {
    let (tx, rx) = channel::oneshot();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send(5).unwrap();
    assert_eq!(rx.try_recv(), Ok(5));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected), "the sender is used up");
}

#[test]
fn a_receiver_that_timed_out_still_gets_the_message() {
    green::run(|| {
        let (tx, rx) = channel::oneshot();
        assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
        green::spawn(move || tx.send("late").unwrap());
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok("late"));
    });
}
