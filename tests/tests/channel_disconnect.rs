//! Disconnection: what receivers get once every sender is gone, what
//! senders get once every receiver is gone, who is woken, and when the
//! messages left in a channel are dropped (counted with drop tokens).

use std::thread;

use green::channel::{self, RecvError, SendError, SendTimeoutError, Sender, TryRecvError, TrySendError};
use green_tests::{DropCounter, DropToken};

#[test]
fn receivers_get_what_is_buffered_then_disconnected() {
    let (tx, rx) = channel::bounded(8);
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    let rx2 = rx.clone();
    drop(tx);
    assert!(rx.is_disconnected());
    assert_eq!(rx.recv(), Ok(0));
    assert_eq!(rx2.try_recv(), Ok(1));
    assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(60)), Ok(2));
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    assert_eq!(rx2.try_recv(), Err(TryRecvError::Disconnected));
    assert!(rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap_err().is_disconnected());
}

#[test]
fn every_send_gives_its_message_back_once_the_receivers_are_gone() {
    green::run(|| {
        let counter = DropCounter::new();
        let (tx, rx) = channel::bounded::<DropToken>(2);
        let rx2 = rx.clone();
        drop(rx);
        assert!(!tx.is_disconnected(), "one receiver is left");
        drop(rx2);
        assert!(tx.is_disconnected());

        let back = match tx.send(counter.token()) {
            Err(SendError::Disconnected(token)) => token,
            other => panic!("expected Disconnected, got {other:?}"),
        };
        let back2 = match tx.try_send(counter.token()) {
            Err(TrySendError::Disconnected(token)) => token,
            other => panic!("expected Disconnected, got {other:?}"),
        };
        let back3 = match tx.send_timeout(counter.token(), std::time::Duration::from_secs(60)) {
            Err(SendTimeoutError::Disconnected(token)) => token,
            other => panic!("expected Disconnected, got {other:?}"),
        };
        assert_eq!(counter.dropped(), 0, "the messages came back, none was dropped by the channel");
        drop((back, back2, back3));
        assert_eq!(counter.dropped(), 3);
    });
}

#[test]
fn parked_receivers_are_woken_when_the_last_sender_drops() {
    green::run(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let receivers: Vec<_> = (0..3)
            .map(|_| {
                let rx = rx.clone();
                green::spawn(move || rx.recv())
            })
            .collect();
        green::yield_now(); // all three park in recv
        let tx2 = tx.clone();
        drop(tx);
        green::yield_now();
        assert!(receivers.iter().all(|r| !r.is_finished()), "a sender is still alive");
        drop(tx2);
        for receiver in receivers {
            assert_eq!(receiver.join().unwrap(), Err(RecvError::Disconnected));
        }
    });
}

#[test]
fn parked_senders_get_their_messages_back_when_the_last_receiver_drops() {
    green::run(|| {
        let counter = DropCounter::new();
        let (tx, rx) = channel::bounded::<DropToken>(1);
        tx.send(counter.token()).unwrap(); // the buffer is full now
        let senders: Vec<_> = (0..3)
            .map(|_| {
                let (tx, token) = (tx.clone(), counter.token());
                green::spawn(move || match tx.send(token) {
                    Err(SendError::Disconnected(token)) => token,
                    other => panic!("expected Disconnected, got {other:?}"),
                })
            })
            .collect();
        green::yield_now(); // all three park in send
        assert!(senders.iter().all(|s| !s.is_finished()));
        assert_eq!(counter.dropped(), 0);
        drop(rx);
        assert_eq!(counter.dropped(), 1, "the buffered message is dropped with the last receiver");
        let returned: Vec<DropToken> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        assert_eq!(counter.dropped(), 1, "the parked messages went back to their senders");
        drop(returned);
        assert_eq!(counter.dropped(), 4);
    });
}

#[test]
fn a_parked_rendezvous_sender_gets_its_message_back() {
    green::run(|| {
        let (tx, rx) = channel::rendezvous::<String>();
        let sender = green::spawn(move || tx.send(String::from("unsent")));
        green::yield_now();
        drop(rx);
        assert_eq!(sender.join().unwrap().unwrap_err().into_inner(), "unsent");
    });
}

#[test]
fn messages_left_in_the_channel_are_dropped_with_the_last_receiver() {
    green::run(|| {
        let counter = DropCounter::new();
        let (tx, rx) = channel::unbounded::<DropToken>();
        for _ in 0..10 {
            tx.send(counter.token()).unwrap();
        }
        let rx2 = rx.clone();
        drop(rx);
        assert_eq!(counter.dropped(), 0, "a receiver is still alive");
        drop(rx2);
        assert_eq!(counter.dropped(), 10, "dropped with the last receiver, while a sender lives");
        assert!(tx.send(counter.token()).is_err());
        assert_eq!(counter.dropped(), 11, "the returned message was dropped by the caller");
    });
}

/// A message that holds a sender of its own channel: dropping it with the
/// channel's buffer must not deadlock on the channel's own lock.
struct Loop {
    /// Keeps a sender of the channel the message sits in.
    _sender: Sender<Loop>,
}

#[test]
fn a_message_whose_drop_uses_the_channel_does_not_deadlock() {
    let (tx, rx) = channel::unbounded();
    tx.send(Loop { _sender: tx.clone() }).unwrap();
    drop(tx);
    // The only sender left is inside the buffered message; dropping the
    // receiver drops the message, which drops that sender.
    drop(rx);
}

#[test]
fn a_thread_parked_in_recv_is_woken_by_a_coroutine_dropping_the_sender() {
    let (tx, rx) = channel::unbounded::<u8>();
    let (parked_tx, parked_rx) = channel::rendezvous::<()>();
    let thread = thread::spawn(move || {
        drop(parked_tx); // tells the coroutine the thread is about to park
        rx.recv()
    });
    green::run(move || {
        assert_eq!(parked_rx.recv(), Err(RecvError::Disconnected));
        drop(tx);
    });
    assert_eq!(thread.join().unwrap(), Err(RecvError::Disconnected));
}

#[test]
fn a_thread_parked_in_send_is_woken_by_a_coroutine_dropping_the_receiver() {
    let (tx, rx) = channel::rendezvous::<u8>();
    let thread = thread::spawn(move || tx.send(7));
    green::run(move || {
        // Nothing to synchronise on: whether the thread has parked yet or
        // not, its send fails once the receiver is gone.
        drop(rx);
    });
    assert_eq!(thread.join().unwrap(), Err(SendError::Disconnected(7)));
}

#[test]
fn a_coroutine_parked_in_send_is_woken_by_a_thread_dropping_the_receiver() {
    green::run(|| {
        let (tx, rx) = channel::bounded::<u8>(1);
        tx.send(1).unwrap();
        let (go_tx, go_rx) = channel::rendezvous::<()>();
        let thread = thread::spawn(move || {
            let _ = go_rx.recv(); // the coroutine is about to park
            drop(rx);
        });
        drop(go_tx);
        assert_eq!(tx.send(2), Err(SendError::Disconnected(2)));
        thread.join().unwrap();
    });
}
