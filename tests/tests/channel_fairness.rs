//! Fairness, as the channel module defines it:
//!
//! 1. parked senders complete in the order they parked, and parked
//!    receivers get messages in the order they parked;
//! 2. a parked party is never overtaken by a newcomer: a place freed in a
//!    full buffer goes to the oldest parked sender (a newcomer's `try_send`
//!    still finds the channel full), and a message sent while a receiver is
//!    parked goes to it (a newcomer's `try_recv` finds the channel empty).
//!
//! Coroutines of one runtime run in a deterministic order (the run queue
//! is FIFO), so "S1 parks before S2" is arranged with `yield_now`: each
//! spawned coroutine runs until it parks before main continues.

use std::cell::RefCell;
use std::rc::Rc;

use green::channel::{self, TryRecvError, TrySendError};

#[test]
fn parked_senders_complete_in_the_order_they_parked() {
    green::run(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        tx.send(0).unwrap();
        let completed = Rc::new(RefCell::new(Vec::new()));
        let senders: Vec<_> = (1..=5)
            .map(|i| {
                let (tx, completed) = (tx.clone(), completed.clone());
                let sender = green::spawn(move || {
                    tx.send(i).unwrap();
                    completed.borrow_mut().push(i);
                });
                green::yield_now(); // it runs and parks before the next comes
                assert!(!sender.is_finished(), "sender {i} is parked");
                sender
            })
            .collect();
        let received: Vec<u32> = (0..6).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(received, [0, 1, 2, 3, 4, 5]);
        senders.into_iter().for_each(|s| s.join().unwrap());
        assert_eq!(*completed.borrow(), [1, 2, 3, 4, 5]);
    });
}

#[test]
fn parked_rendezvous_senders_are_received_in_the_order_they_parked() {
    green::run(|| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let senders: Vec<_> = (0..5)
            .map(|i| {
                let tx = tx.clone();
                let sender = green::spawn(move || tx.send(i).unwrap());
                green::yield_now();
                sender
            })
            .collect();
        assert_eq!((0..5).map(|_| rx.recv().unwrap()).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        senders.into_iter().for_each(|s| s.join().unwrap());
    });
}

#[test]
fn parked_receivers_get_messages_in_the_order_they_parked() {
    green::run(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let receivers: Vec<_> = (0..5)
            .map(|i| {
                let rx = rx.clone();
                let receiver = green::spawn(move || rx.recv().unwrap());
                green::yield_now();
                assert!(!receiver.is_finished(), "receiver {i} is parked");
                receiver
            })
            .collect();
        for message in 10..15 {
            tx.send(message).unwrap();
        }
        let got: Vec<u32> = receivers.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(got, [10, 11, 12, 13, 14]);
    });
}

#[test]
fn a_freed_place_goes_to_the_parked_sender_not_to_a_newcomer() {
    green::run(|| {
        let (tx, rx) = channel::bounded::<&str>(1);
        tx.send("buffered").unwrap();
        let parked = {
            let tx = tx.clone();
            green::spawn(move || tx.send("parked").unwrap())
        };
        green::yield_now();
        assert_eq!(rx.recv(), Ok("buffered"));
        // The place just freed was handed to the parked sender at once.
        assert_eq!(tx.try_send("newcomer"), Err(TrySendError::Full("newcomer")));
        assert!(tx.is_full());
        assert_eq!(rx.recv(), Ok("parked"));
        assert_eq!(tx.try_send("newcomer"), Ok(()));
        assert_eq!(rx.recv(), Ok("newcomer"));
        parked.join().unwrap();
    });
}

#[test]
fn a_message_for_a_parked_receiver_cannot_be_taken_by_a_newcomer() {
    green::run(|| {
        let (tx, rx) = channel::bounded::<u32>(4);
        let parked = {
            let rx = rx.clone();
            green::spawn(move || rx.recv().unwrap())
        };
        green::yield_now();
        tx.send(7).unwrap();
        // The parked receiver has not run yet, but the message is its own.
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(rx.is_empty());
        assert_eq!(parked.join().unwrap(), 7);
    });
}

#[test]
fn a_parked_sender_is_not_starved_by_a_busy_competitor() {
    // A competitor retries `try_send` between every receive. Once the slow
    // sender has parked, its message is the next to enter the buffer, so it
    // is received second, however often the competitor tries.
    green::run(|| {
        let (tx, rx) = channel::bounded::<&str>(1);
        tx.send("first").unwrap();
        let parked = {
            let tx = tx.clone();
            green::spawn(move || tx.send("parked").unwrap())
        };
        green::yield_now();
        let mut received = Vec::new();
        let mut competitor_sent = 0;
        while received.len() < 10 {
            for _ in 0..3 {
                if tx.try_send("competitor").is_ok() {
                    competitor_sent += 1;
                }
            }
            received.push(rx.recv().unwrap());
        }
        assert_eq!(&received[..2], ["first", "parked"]);
        assert!(received[2..].iter().all(|m| *m == "competitor"));
        assert_eq!(competitor_sent, 8, "the competitor got each place after that");
        parked.join().unwrap();
    });
}
