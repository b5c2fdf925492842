//! Every kind of blocking call is a cancellation point: a coroutine parked
//! in it and cancelled gets the call's own cancellation error, and the
//! socket, channel, lock or other primitive it waited on is left exactly
//! as if it had never come (nothing taken, nothing enqueued, nobody held
//! back, no descriptor left open). One test per kind of call, and a few
//! where the cancellation comes from a `green::timeout` scope instead of a
//! `JoinHandle::cancel`.
//!
//! Each test parks one coroutine in the call, cancels it, joins it, checks
//! the error, and then shows that the primitive still behaves as before:
//! its data still arrives, its lock is free and not poisoned, its permits
//! are all there, the next waiter in line is served.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::TaskGroup;
use green::channel::{self, RecvError, RecvTimeoutError, Select, SendError, TryRecvError};
use green::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixStream};
use green::sync::{
    AcquireError, Barrier, Condvar, Event, Mutex, OnceCell, RwLock, Semaphore, TryAcquireError, WaitError,
    WaitGroup,
};
use green_tests::net::{set_buffer_sizes, set_listen_backlog};
use green_tests::{DropCounter, DropToken, describe, open_fds, run_in_child};

/// Longer than any test runs: a wait this long ends only by cancellation.
const FOREVER: Duration = Duration::from_secs(3600);

/// Lets every coroutine that is runnable now, and those they spawn or wake
/// on the way, run until it parks. `yield_now` puts the caller behind
/// everyone runnable, so each round gives each of them a turn.
fn let_others_park() {
    for _ in 0..3 {
        green::yield_now();
    }
}

/// Runs `blocking` in a new coroutine, lets it park, cancels it, and
/// returns what it returned.
fn cancel_while_parked<T: 'static>(blocking: impl FnOnce() -> T + 'static) -> T {
    let handle = green::spawn(blocking);
    let_others_park();
    assert!(!handle.is_finished(), "the coroutine should be parked in its blocking call");
    handle.cancel();
    handle.join().expect("a cancelled coroutine that returns is joined with its value")
}

/// Asserts that `err` is the cancellation error of an I/O call, not an
/// error that retry loops would swallow.
fn assert_io_cancelled(err: &io::Error) {
    assert!(green::is_cancelled(err), "expected a cancellation error, got {err:?}");
    assert_ne!(err.kind(), io::ErrorKind::Interrupted, "read_exact and write_all would retry it");
}

/// A connected TCP pair: (client, server side).
fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

/// A listener whose accept queue is full, and the connections filling it
/// (keep all of them alive): a new connect to it hangs, because Linux drops
/// the handshake and the client retries only after a second. As in
/// `tcp_connect.rs`.
fn saturated_listener() -> io::Result<(SocketAddr, TcpListener, Vec<TcpStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    set_listen_backlog(&listener, 0)?;
    let addr = listener.local_addr()?;
    let mut queued = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(stream) => queued.push(stream),
            Err(err) if err.kind() == io::ErrorKind::TimedOut => return Ok((addr, listener, queued)),
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::other("8 connections to a listener with backlog 0 did not fill its queue"))
}

// ---------------------------------------------------------------- sockets

#[test]
fn a_cancelled_accept_leaves_the_listener_working() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0")?);
        let accepting = listener.clone();
        let err = cancel_while_parked(move || accepting.accept().map(|_| ())).expect_err("nobody connects");
        assert_io_cancelled(&err);
        let client = TcpStream::connect(listener.local_addr()?)?;
        let (_server, peer) = listener.accept()?;
        assert_eq!(peer, client.local_addr()?, "the next connection is accepted as usual");
        Ok(())
    })
}

/// Counting descriptors needs the process to itself, hence the child.
#[test]
fn a_cancelled_connect_closes_the_socket_it_made() -> io::Result<()> {
    let output = run_in_child("a_cancelled_connect_closes_the_socket_it_made", || {
        green::run(|| {
            let (addr, _listener, _queued) = saturated_listener().expect("a saturated listener");
            let before = open_fds().expect("/proc/self/fd");
            for _ in 0..3 {
                let err = cancel_while_parked(move || TcpStream::connect(addr).map(|_| ()))
                    .expect_err("the accept queue is full");
                assert_io_cancelled(&err);
            }
            assert_eq!(
                open_fds().expect("/proc/self/fd"),
                before,
                "a cancelled connect left its socket open"
            );
        });
    })?;
    assert!(output.status.success(), "{}", describe(&output));
    Ok(())
}

#[test]
fn a_cancelled_tcp_read_consumes_nothing() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (client, server) = tcp_pair()?;
        let server = Rc::new(server);
        let reading = server.clone();
        let err = cancel_while_parked(move || (&*reading).read(&mut [0; 16])).expect_err("nothing was sent");
        assert_io_cancelled(&err);
        (&client).write_all(b"after")?;
        let mut buf = [0; 5];
        (&*server).read_exact(&mut buf)?;
        assert_eq!(&buf, b"after", "the stream still delivers, from the first byte");
        Ok(())
    })
}

#[test]
fn a_cancelled_tcp_write_reports_it_and_every_byte_written_before_arrives() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (client, server) = tcp_pair()?;
        set_buffer_sizes(&client, 64 * 1024)?;
        set_buffer_sizes(&server, 64 * 1024)?;
        // Nobody reads: the writer fills both socket buffers and parks.
        let (written, err) = cancel_while_parked(move || {
            let chunk = vec![0xA5_u8; 64 * 1024];
            let mut written = 0;
            loop {
                match (&client).write(&chunk) {
                    Ok(n) => written += n,
                    Err(err) => return (written, err),
                }
            }
        });
        assert_io_cancelled(&err);
        assert!(written > 0, "the writer filled the buffers before it parked");
        // The writer's stream was dropped when its coroutine returned: the
        // reader sees exactly the bytes the writes reported, then EOF.
        let mut received = Vec::new();
        (&server).read_to_end(&mut received)?;
        assert_eq!(received.len(), written);
        assert!(received.iter().all(|&b| b == 0xA5));
        Ok(())
    })
}

#[test]
fn a_cancelled_udp_recv_from_consumes_nothing() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let socket = Rc::new(UdpSocket::bind("127.0.0.1:0")?);
        let receiving = socket.clone();
        let err = cancel_while_parked(move || receiving.recv_from(&mut [0; 16]).map(|(n, _)| n))
            .expect_err("nothing was sent");
        assert_io_cancelled(&err);
        let peer = UdpSocket::bind("127.0.0.1:0")?;
        peer.send_to(b"datagram", socket.local_addr()?)?;
        let mut buf = [0; 16];
        let (n, from) = socket.recv_from(&mut buf)?;
        assert_eq!((&buf[..n], from), (&b"datagram"[..], peer.local_addr()?));
        Ok(())
    })
}

#[test]
fn a_cancelled_unix_stream_read_consumes_nothing() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (reader, writer) = UnixStream::pair()?;
        let reader = Rc::new(reader);
        let reading = reader.clone();
        let err = cancel_while_parked(move || (&*reading).read(&mut [0; 16])).expect_err("nothing was sent");
        assert_io_cancelled(&err);
        (&writer).write_all(b"after")?;
        let mut buf = [0; 5];
        (&*reader).read_exact(&mut buf)?;
        assert_eq!(&buf, b"after");
        Ok(())
    })
}

#[test]
fn a_cancelled_unix_datagram_recv_consumes_nothing() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (receiver, sender) = UnixDatagram::pair()?;
        let receiver = Rc::new(receiver);
        let receiving = receiver.clone();
        let err = cancel_while_parked(move || receiving.recv(&mut [0; 16])).expect_err("nothing was sent");
        assert_io_cancelled(&err);
        sender.send(b"datagram")?;
        let mut buf = [0; 16];
        let n = receiver.recv(&mut buf)?;
        assert_eq!(&buf[..n], b"datagram");
        Ok(())
    })
}

// ------------------------------------------------------- time and joining

#[test]
fn a_cancelled_sleep_returns_cancelled() {
    green::run(|| {
        assert_eq!(cancel_while_parked(|| green::sleep(FOREVER)), Err(green::Cancelled));
    });
}

#[test]
fn a_cancelled_sleep_until_returns_cancelled() {
    green::run(|| {
        let until = Instant::now() + FOREVER;
        assert_eq!(cancel_while_parked(move || green::sleep_until(until)), Err(green::Cancelled));
    });
}

#[test]
fn a_cancelled_join_is_interrupted_and_the_joined_coroutine_runs_on() {
    green::run(|| {
        let release = Rc::new(Event::new());
        let (report, outcome) = channel::oneshot();
        let target = green::spawn({
            let release = release.clone();
            move || {
                let _ = report.send(release.wait());
                42
            }
        });
        let target_id = target.id();
        let err = cancel_while_parked(move || target.join()).expect_err("the joiner was cancelled");
        assert!(err.is_interrupted(), "{err}");
        assert!(!err.is_cancelled(), "the joined coroutine itself was not cancelled");
        assert_eq!(err.id(), target_id);
        release.set();
        assert_eq!(outcome.recv(), Ok(Ok(())), "the joined coroutine's own wait was not cancelled");
    });
}

#[test]
fn a_cancelled_scoped_join_is_interrupted_and_the_scope_then_cancels_the_child() {
    green::run(|| {
        // The parent is a coroutine of its own, so that a handle can cancel
        // it while it joins its scoped child.
        let parent = green::spawn(|| {
            let release = Event::new(); // never set
            let child_saw = Cell::new(None);
            let mut joined = None;
            let scope = green::scope(|s| {
                let child = s.spawn(|| {
                    let waited = release.wait();
                    child_saw.set(Some(waited));
                    waited
                });
                joined = Some(child.join());
            });
            (scope.map_err(|err| err.is_cancelled()), joined, child_saw.get())
        });
        let_others_park();
        parent.cancel();
        let (scope, joined, child_saw) = parent.join().unwrap();
        let err = joined.expect("the body ran").expect_err("the join was cancelled");
        assert!(err.is_interrupted(), "{err}");
        assert_eq!(child_saw, Some(Err(WaitError::Cancelled)), "the scope cancelled the child it waited for");
        assert_eq!(scope, Err(true), "the scope reports that its parent was cancelled");
    });
}

#[test]
fn a_cancelled_join_next_is_interrupted_and_the_member_stays_in_the_group() {
    green::run(|| {
        let release = Rc::new(Event::new());
        let member_release = release.clone();
        let (member, next, mut group) = cancel_while_parked(move || {
            let mut group = TaskGroup::new();
            let member = group.spawn(move || member_release.wait());
            let next = group.join_next();
            (member, next, group)
        });
        let (id, result) = next.expect("the group had a member");
        assert_eq!(id, member);
        assert!(result.expect_err("the joiner was cancelled").is_interrupted());
        assert_eq!(group.len(), 1, "the member is still in the group");
        release.set();
        let (id, result) = group.join_next().expect("the member is joined now");
        assert_eq!(id, member);
        assert_eq!(result.expect("it finished"), Ok(()), "the member itself was not cancelled");
        assert!(group.join_next().is_none());
    });
}

// --------------------------------------------------------------- channels

#[test]
fn a_cancelled_send_on_a_full_channel_enqueues_nothing_and_keeps_no_place_in_line() {
    green::run(|| {
        let (tx, rx) = channel::bounded::<u32>(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let first = {
            let tx = tx.clone();
            green::spawn(move || tx.send(3))
        };
        let second = {
            let tx = tx.clone();
            green::spawn(move || tx.send(4))
        };
        let_others_park(); // both park, the first ahead of the second
        first.cancel();
        assert_eq!(first.join().unwrap(), Err(SendError::Cancelled(3)), "the message came back");
        assert_eq!(rx.len(), 2, "the cancelled message was not enqueued");
        // The place this frees goes to the oldest sender still waiting.
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(second.join().unwrap(), Ok(()));
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2, 4]);
    });
}

#[test]
fn a_cancelled_receive_consumes_nothing_and_the_next_receiver_is_served() {
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
        let_others_park(); // both park, the first ahead of the second
        first.cancel();
        assert_eq!(first.join().unwrap(), Err(RecvError::Cancelled));
        tx.send(1).unwrap();
        assert_eq!(second.join().unwrap(), Ok(1), "the message went to the receiver still waiting");
        tx.send(2).unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
    });
}

#[test]
fn a_cancelled_rendezvous_send_gives_its_message_back_and_hands_nothing_over() {
    green::run(|| {
        let counter = DropCounter::new();
        let (tx, rx) = channel::rendezvous::<DropToken>();
        let (sending, token) = (tx.clone(), counter.token());
        let back = cancel_while_parked(move || match sending.send(token) {
            Err(SendError::Cancelled(token)) => Some(token),
            _ => None,
        });
        assert!(back.is_some(), "the send failed with Cancelled, carrying its message");
        assert_eq!(counter.dropped(), 0);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)), "nothing was handed over");
        assert!(tx.try_send(counter.token()).unwrap_err().is_full(), "and no receiver waits");
        drop(back);
        assert_eq!(counter.dropped(), 2);
    });
}

#[test]
fn a_cancelled_oneshot_recv_reports_cancelled_and_the_sender_gets_its_message_back() {
    green::run(|| {
        let (tx, rx) = channel::oneshot::<u32>();
        assert_eq!(cancel_while_parked(move || rx.recv()), Err(RecvError::Cancelled));
        assert!(tx.is_disconnected(), "the receiver went with its coroutine");
        assert_eq!(tx.send(7), Err(7));
    });
}

#[test]
fn a_cancelled_oneshot_recv_deadline_leaves_the_receiver_usable() {
    green::run(|| {
        let (tx, rx) = channel::oneshot::<u32>();
        let rx = Rc::new(rx);
        let receiving = rx.clone();
        let until = Instant::now() + FOREVER;
        let result = cancel_while_parked(move || receiving.recv_deadline(until));
        assert_eq!(result, Err(RecvTimeoutError::Cancelled), "cancelled, not timed out");
        tx.send(7).unwrap();
        assert_eq!(rx.try_recv(), Ok(7));
    });
}

#[test]
fn a_cancelled_select_runs_its_first_branch_with_cancelled_and_no_branch_happens() {
    green::run(|| {
        let counter = DropCounter::new();
        let (tx1, rx1) = channel::rendezvous::<u32>();
        let (tx2, rx2) = channel::rendezvous::<u32>();
        let (tx3, rx3) = channel::bounded::<DropToken>(1);
        tx3.send(counter.token()).unwrap(); // full: the send branch must wait too
        let ran = cancel_while_parked({
            let (rx1, rx2, tx3, token) = (rx1.clone(), rx2.clone(), tx3.clone(), counter.token());
            move || {
                Select::new()
                    .recv(&rx1, |r| format!("recv 1: {r:?}"))
                    .recv(&rx2, |r| format!("recv 2: {r:?}"))
                    .send(&tx3, token, |r| format!("send 3: {r:?}"))
                    .wait()
            }
        });
        assert_eq!(ran, "recv 1: Err(Cancelled)");
        assert_eq!(counter.dropped(), 1, "the send branch's message was not sent, and was dropped");
        assert_eq!(rx3.len(), 1, "only the message sent before is in the channel");
        assert!(tx1.try_send(1).unwrap_err().is_full(), "the first receive branch withdrew");
        assert!(tx2.try_send(2).unwrap_err().is_full(), "the second receive branch withdrew");
        drop(rx3.try_recv());
        assert_eq!(counter.dropped(), 2);
    });
}

#[test]
fn a_cancelled_select_whose_first_branch_sends_gets_its_message_back() {
    green::run(|| {
        let counter = DropCounter::new();
        let (tx1, rx1) = channel::rendezvous::<u32>();
        let (tx3, rx3) = channel::bounded::<DropToken>(1);
        tx3.send(counter.token()).unwrap();
        let back = cancel_while_parked({
            let (rx1, tx3, token) = (rx1.clone(), tx3.clone(), counter.token());
            move || {
                Select::new()
                    .send(&tx3, token, |r| match r {
                        Err(SendError::Cancelled(token)) => Some(token),
                        _ => None,
                    })
                    .recv(&rx1, |_| None)
                    .wait()
            }
        });
        assert!(back.is_some(), "the send branch ran with Cancelled and its message");
        assert_eq!(counter.dropped(), 0);
        assert_eq!(rx3.len(), 1);
        assert!(tx1.try_send(1).unwrap_err().is_full(), "the receive branch withdrew");
    });
}

// ------------------------------------------------------------------ locks

#[test]
fn a_cancelled_lock_takes_nothing_poisons_nothing_and_the_next_waiter_gets_the_lock() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(Vec::new()));
        let held = lock.lock().unwrap();
        let locker = |name: &'static str| {
            let lock = lock.clone();
            green::spawn(move || lock.lock().map(|mut log| log.push(name)).map_err(|err| err.is_cancelled()))
        };
        let first = locker("first");
        let second = locker("second");
        let_others_park();
        first.cancel();
        assert_eq!(first.join().unwrap(), Err(true), "LockError::Cancelled");
        drop(held);
        assert_eq!(second.join().unwrap(), Ok(()));
        assert!(!lock.is_poisoned());
        assert_eq!(*lock.try_lock().expect("the lock is free"), ["second"]);
    });
}

#[test]
fn a_cancelled_read_lock_leaves_no_reader_behind() {
    green::run(|| {
        let lock = Rc::new(RwLock::new(0));
        let writer = lock.write().unwrap();
        let reading = lock.clone();
        let result =
            cancel_while_parked(move || reading.read().map(|n| *n).map_err(|err| err.is_cancelled()));
        assert_eq!(result, Err(true), "LockError::Cancelled");
        drop(writer);
        assert!(lock.try_write().is_ok(), "no reader was left holding the lock");
        assert!(!lock.is_poisoned());
    });
}

#[test]
fn a_cancelled_write_lock_stops_holding_back_the_readers_behind_it() {
    green::run(|| {
        let lock = Rc::new(RwLock::new(0));
        let reader = lock.read().unwrap();
        let writer = {
            let lock = lock.clone();
            green::spawn(move || lock.write().map(|mut n| *n += 1).map_err(|err| err.is_cancelled()))
        };
        let_others_park();
        let queued_reader = {
            let lock = lock.clone();
            green::spawn(move || lock.read().map(|n| *n).map_err(|err| err.is_cancelled()))
        };
        let_others_park();
        assert!(!queued_reader.is_finished(), "a reader queues behind the parked writer");
        writer.cancel();
        assert_eq!(writer.join().unwrap(), Err(true), "LockError::Cancelled");
        assert_eq!(queued_reader.join().unwrap(), Ok(0), "with the writer gone, the reader went in");
        let another = lock.try_read().expect("and so do new readers");
        drop((reader, another));
        assert_eq!(*lock.try_write().expect("the lock is free"), 0, "the cancelled writer wrote nothing");
        assert!(!lock.is_poisoned());
    });
}

#[test]
fn a_cancelled_condvar_wait_leaves_the_mutex_free_and_takes_no_notification() {
    green::run(|| {
        let pair = Rc::new((Mutex::new(0u32), Condvar::new()));
        let waiter = || {
            let pair = pair.clone();
            green::spawn(move || {
                let (lock, changed) = &*pair;
                let guard = lock.lock().unwrap();
                changed.wait(guard).map(|n| *n).map_err(|err| err.is_cancelled())
            })
        };
        let first = waiter();
        let second = waiter();
        let_others_park(); // both wait, the first ahead of the second
        first.cancel();
        assert_eq!(first.join().unwrap(), Err(true), "LockError::Cancelled");
        let (lock, changed) = &*pair;
        *lock.try_lock().expect("the cancelled waiter does not hold the mutex") = 5;
        assert!(!lock.is_poisoned());
        changed.notify_one();
        assert_eq!(second.join().unwrap(), Ok(5), "the one notification went to the waiter still waiting");
    });
}

#[test]
fn a_cancelled_acquire_takes_no_permit() {
    green::run(|| {
        let semaphore = Rc::new(Semaphore::new(1));
        let held = semaphore.try_acquire().unwrap();
        let acquiring = semaphore.clone();
        let result = cancel_while_parked(move || acquiring.acquire().map(|permit| permit.num_permits()));
        assert_eq!(result, Err(AcquireError::Cancelled));
        drop(held);
        assert_eq!(semaphore.available_permits(), 1);
        assert!(semaphore.try_acquire().is_ok(), "nobody waits before us");
    });
}

#[test]
fn a_cancelled_acquire_many_gives_back_what_it_had_and_stops_holding_others_back() {
    green::run(|| {
        let semaphore = Rc::new(Semaphore::new(3));
        let held = semaphore.try_acquire_many(2).unwrap();
        let many = {
            let semaphore = semaphore.clone();
            green::spawn(move || semaphore.acquire_many(3).map(|permit| permit.num_permits()))
        };
        let_others_park();
        assert_eq!(
            semaphore.try_acquire().unwrap_err(),
            TryAcquireError::NoPermits,
            "the parked acquire_many holds back later acquirers"
        );
        many.cancel();
        assert_eq!(many.join().unwrap(), Err(AcquireError::Cancelled));
        assert_eq!(semaphore.available_permits(), 1, "the permit that was free is free again");
        let one = semaphore.try_acquire().expect("nobody holds the queue back any more");
        drop((one, held));
        assert_eq!(semaphore.available_permits(), 3);
    });
}

// --------------------------------------------------- events and the like

#[test]
fn a_cancelled_event_wait_leaves_the_event_clear_and_the_other_waiters_waiting() {
    green::run(|| {
        let event = Rc::new(Event::new());
        let waiter = || {
            let event = event.clone();
            green::spawn(move || event.wait())
        };
        let first = waiter();
        let second = waiter();
        let_others_park();
        first.cancel();
        assert_eq!(first.join().unwrap(), Err(WaitError::Cancelled));
        assert!(!event.is_set());
        assert!(!second.is_finished());
        event.set();
        assert_eq!(second.join().unwrap(), Ok(()));
    });
}

#[test]
fn a_cancelled_barrier_wait_withdraws_and_the_barrier_still_needs_n() {
    green::run(|| {
        let barrier = Rc::new(Barrier::new(3));
        let party = || {
            let barrier = barrier.clone();
            move || barrier.wait().map(|arrival| arrival.is_leader())
        };
        assert_eq!(cancel_while_parked(party()), Err(WaitError::Cancelled));
        let parties = [green::spawn(party()), green::spawn(party())];
        let_others_park();
        assert!(
            parties.iter().all(|p| !p.is_finished()),
            "two arrivals do not trip a barrier of three: the cancelled party is not counted"
        );
        assert!(barrier.wait().unwrap().is_leader(), "the third arrival trips it");
        for party in parties {
            assert_eq!(party.join().unwrap(), Ok(false));
        }
    });
}

#[test]
fn a_cancelled_wait_group_wait_changes_nothing() {
    green::run(|| {
        let group = Rc::new(WaitGroup::new());
        let job = group.add();
        let waiter = || {
            let group = group.clone();
            green::spawn(move || group.wait())
        };
        let first = waiter();
        let second = waiter();
        let_others_park();
        first.cancel();
        assert_eq!(first.join().unwrap(), Err(WaitError::Cancelled));
        assert_eq!(group.count(), 1);
        assert!(!second.is_finished());
        drop(job);
        assert_eq!(second.join().unwrap(), Ok(()));
        assert_eq!(group.count(), 0);
    });
}

#[test]
fn a_cancelled_once_cell_wait_leaves_the_cell_to_its_initialiser() {
    green::run(|| {
        let cell = Rc::new(OnceCell::new());
        let release = Rc::new(Event::new());
        let initialiser = {
            let (cell, release) = (cell.clone(), release.clone());
            green::spawn(move || {
                cell.get_or_init(|| {
                    release.wait().expect("the initialiser is not cancelled");
                    7
                })
                .copied()
            })
        };
        let watching = cell.clone();
        assert_eq!(cancel_while_parked(move || watching.wait().copied()), Err(WaitError::Cancelled));
        assert_eq!(cell.get(), None);
        release.set();
        assert_eq!(initialiser.join().unwrap(), Ok(7));
        assert_eq!(cell.get(), Some(&7));
    });
}

#[test]
fn a_cancelled_contender_never_runs_its_initialiser_and_is_passed_over() {
    green::run(|| {
        let cell: Rc<OnceCell<&str>> = Rc::new(OnceCell::new());
        let release = Rc::new(Event::new());
        let first = {
            let (cell, release) = (cell.clone(), release.clone());
            green::spawn(move || {
                let value = cell.get_or_try_init(|| {
                    release.wait().expect("the first initialiser is not cancelled");
                    Err(io::Error::other("the first initialiser fails"))
                });
                value.copied().map_err(|err| err.to_string())
            })
        };
        let cancelled_init_ran = Rc::new(Cell::new(false));
        let second = {
            let (cell, ran) = (cell.clone(), cancelled_init_ran.clone());
            green::spawn(move || {
                cell.get_or_init(|| {
                    ran.set(true);
                    "second"
                })
                .copied()
            })
        };
        let third = {
            let cell = cell.clone();
            green::spawn(move || cell.get_or_init(|| "third").copied())
        };
        let_others_park(); // the first holds the turn; the others queue in order
        second.cancel();
        assert_eq!(second.join().unwrap(), Err(WaitError::Cancelled));
        release.set();
        assert_eq!(first.join().unwrap(), Err(String::from("the first initialiser fails")));
        assert_eq!(third.join().unwrap(), Ok("third"), "the turn skipped the cancelled contender");
        assert!(!cancelled_init_ran.get());
        assert_eq!(cell.get(), Some(&"third"));
    });
}

// ------------------------------------------- cancelled by a timeout scope

#[test]
fn a_timeout_scope_cancels_an_accept() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let mut accepted = None;
        let outcome = green::timeout(Duration::from_millis(5), || accepted = Some(listener.accept()));
        assert!(outcome.is_err(), "the scope reports that its deadline passed");
        let err = accepted.expect("the body ran").map(|_| ()).expect_err("nobody connected");
        assert_io_cancelled(&err);
        let client = TcpStream::connect(listener.local_addr()?)?;
        assert_eq!(listener.accept()?.1, client.local_addr()?, "the listener still works");
        Ok(())
    })
}

#[test]
fn a_timeout_scope_cancels_a_lock_wait_and_leaves_the_lock_free() {
    green::run(|| {
        let lock = Mutex::new(0);
        let held = lock.lock().unwrap();
        let mut waited = None;
        let outcome = green::timeout(Duration::from_millis(5), || {
            waited = Some(lock.lock().map(|_| ()).map_err(|err| err.is_cancelled()));
        });
        assert!(outcome.is_err(), "the scope reports that its deadline passed");
        assert_eq!(waited, Some(Err(true)), "the lock wait failed with LockError::Cancelled");
        drop(held);
        assert!(lock.try_lock().is_ok());
        assert!(!lock.is_poisoned());
    });
}

#[test]
fn a_passed_deadline_cancels_an_acquire_and_takes_no_permit() {
    green::run(|| {
        let semaphore = Semaphore::new(1);
        let held = semaphore.try_acquire().unwrap();
        let at = Instant::now();
        let mut acquired = None;
        let outcome = green::deadline(at, || acquired = Some(semaphore.acquire().map(|_| ())));
        assert_eq!(outcome.expect_err("the deadline had passed").deadline(), at);
        assert_eq!(acquired, Some(Err(AcquireError::Cancelled)));
        drop(held);
        assert_eq!(semaphore.available_permits(), 1);
    });
}
