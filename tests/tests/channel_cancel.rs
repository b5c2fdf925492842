//! Cancelling a coroutine that waits on a channel: the wait fails with its
//! `Cancelled` error and had no effect. A cancelled send gives its message
//! back and enqueued nothing; a cancelled receive consumed nothing, and the
//! next message goes to the next receiver. Also under a `green::timeout`
//! scope, and at runtime shutdown.

use std::time::Duration;

use green::channel::{self, RecvError, SendError};
use green_tests::{DropCounter, DropToken};

#[test]
fn a_cancelled_send_gives_its_message_back_and_sends_nothing() {
    green::run(|| {
        let counter = DropCounter::new();
        let (tx, rx) = channel::bounded::<DropToken>(1);
        tx.send(counter.token()).unwrap();
        let sending = {
            let (tx, token) = (tx.clone(), counter.token());
            green::spawn(move || match tx.send(token) {
                Err(SendError::Cancelled(token)) => token,
                other => panic!("expected Cancelled, got {other:?}"),
            })
        };
        green::yield_now(); // parks: the buffer is full
        sending.cancel();
        let back = sending.join().unwrap();
        assert_eq!(counter.dropped(), 0);
        assert_eq!(rx.len(), 1, "only the first message is in the channel");
        drop(rx.recv().unwrap());
        assert!(rx.try_recv().is_err(), "the cancelled message was not sent");
        drop(back);
        assert_eq!(counter.dropped(), 2);
    });
}

#[test]
fn a_cancelled_receive_consumes_nothing() {
    green::run(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let first = {
            let rx = rx.clone();
            green::spawn(move || rx.recv())
        };
        let second = {
            let rx = rx.clone();
            green::spawn(move || rx.recv())
        };
        green::yield_now(); // both park, first ahead of second
        first.cancel();
        green::yield_now(); // first runs, sees the cancellation, withdraws
        tx.send(1).unwrap();
        assert_eq!(first.join().unwrap(), Err(RecvError::Cancelled));
        assert_eq!(second.join().unwrap(), Ok(1), "the message went to the next receiver");
    });
}

#[test]
fn a_hand_off_that_wins_the_race_against_a_cancellation_is_reported() {
    // The cancellation only takes effect when the cancelled coroutine runs
    // and abandons its wait. A message handed over before that is its own:
    // the receive reports it rather than losing it.
    green::run(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let receiver = green::spawn(move || rx.recv());
        green::yield_now(); // parks
        receiver.cancel();
        tx.send(1).unwrap(); // claims the receiver before it runs again
        assert_eq!(receiver.join().unwrap(), Ok(1));
    });
}

#[test]
fn a_timeout_scope_cancels_a_receive() {
    green::run(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let outcome = green::timeout(Duration::from_millis(2), || rx.recv());
        assert!(outcome.is_err(), "the scope's deadline passed");
        tx.send(7).unwrap();
        assert_eq!(rx.try_recv(), Ok(7), "the cancelled receive left the message for later");
    });
}

// At shutdown the runtime unwinds parked coroutines from inside their
// wait. The channels below outlive the runtime, so a waiter left in a queue
// would be found later: a message handed to a dead receiver would be lost.

#[test]
fn a_sender_torn_down_at_shutdown_leaves_nothing_in_the_channel() {
    let counter = DropCounter::new();
    let (tx, rx) = channel::rendezvous::<DropToken>();
    green::run(|| {
        let (tx, token) = (tx.clone(), counter.token());
        green::spawn(move || {
            let _ = tx.send(token); // parks forever: nobody receives
        });
        green::yield_now();
    });
    assert_eq!(counter.dropped(), 1, "the parked message was dropped when its sender was torn down");
    assert!(rx.try_recv().is_err(), "and it is not in the channel");
    drop(tx);
}

#[test]
fn a_receiver_torn_down_at_shutdown_is_not_handed_messages() {
    let (tx, rx) = channel::rendezvous::<u32>();
    green::run(|| {
        let rx = rx.clone();
        green::spawn(move || {
            let _ = rx.recv(); // parks forever: nobody sends
        });
        green::yield_now();
    });
    // With no live receiver waiting, a rendezvous send cannot complete.
    assert!(tx.try_send(1).unwrap_err().is_full());
    drop(rx);
}

#[test]
fn a_select_torn_down_at_shutdown_withdraws_every_branch() {
    let counter = DropCounter::new();
    let (tx, rx) = channel::rendezvous::<DropToken>();
    let (other_tx, other_rx) = channel::rendezvous::<u32>();
    green::run(|| {
        let (tx, other_rx, token) = (tx.clone(), other_rx.clone(), counter.token());
        green::spawn(move || {
            channel::Select::new().send(&tx, token, |_| ()).recv(&other_rx, |_| ()).wait();
        });
        green::yield_now();
    });
    assert_eq!(counter.dropped(), 1, "the send branch's message was dropped");
    assert!(rx.try_recv().is_err(), "the send branch left nothing");
    assert!(other_tx.try_send(1).unwrap_err().is_full(), "the receive branch left no receiver behind");
}
