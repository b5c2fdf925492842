//! Cancellation leaks nothing: a cancelled coroutine's error travels up
//! its own frames with `?`, so every value on its stack is dropped and
//! every socket it held is closed. Checked by counting drops
//! ([`DropCounter`]) and open descriptors, for coroutines cancelled by
//! handle, by a dropped `TaskGroup`, by a `green::scope` whose child
//! failed, by a timeout scope, and before they ever ran.
//!
//! Descriptor counts are per process, so those tests run in a child
//! process of their own ([`run_in_child`]); the count is taken inside the
//! runtime, whose own descriptors (epoll, its wake-up eventfd) are open by
//! then.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use green::TaskGroup;
use green::channel;
use green::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use green::sync::{Event, Mutex, Semaphore, WaitGroup};
use green_tests::net::set_listen_backlog;
use green_tests::{DropCounter, DropToken, describe, open_fds, run_in_child};

/// Longer than any test runs: a wait this long ends only by cancellation.
const FOREVER: Duration = Duration::from_secs(3600);

/// Coroutines per test.
const COROUTINES: usize = 12;

/// Runs `body` in a child process (see [`run_in_child`]) and checks that
/// it passed.
fn in_child(test: &str, body: impl FnOnce()) -> io::Result<()> {
    let output = run_in_child(test, body)?;
    assert!(output.status.success(), "{}", describe(&output));
    Ok(())
}

/// Open descriptors now; panics if `/proc/self/fd` cannot be read.
fn fds() -> usize {
    open_fds().expect("/proc/self/fd")
}

/// Lets every coroutine that is runnable now, and those they spawn or wake
/// on the way, run until it parks.
fn let_others_park() {
    for _ in 0..3 {
        green::yield_now();
    }
}

/// A connected TCP pair: (client, server side).
fn tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

/// Sockets of every kind, and a token, owned by one coroutine.
struct Held {
    /// Read from, by the coroutines that block in TCP.
    tcp: (TcpStream, TcpStream),
    /// Read from, by the coroutines that block in a Unix stream.
    unix: (UnixStream, UnixStream),
    /// Received from, by the coroutines that block in UDP.
    udp: UdpSocket,
    /// Counts the drop of the whole.
    _token: DropToken,
}

impl Held {
    fn new(counter: &DropCounter) -> io::Result<Held> {
        Ok(Held {
            tcp: tcp_pair()?,
            unix: UnixStream::pair()?,
            udp: UdpSocket::bind("127.0.0.1:0")?,
            _token: counter.token(),
        })
    }

    /// Blocks in a read that nothing will satisfy: TCP, Unix or UDP,
    /// depending on `which`.
    fn read(&self, which: usize) -> io::Result<()> {
        let mut buf = [0; 8];
        match which % 3 {
            0 => (&self.tcp.0).read(&mut buf).map(drop),
            1 => (&self.unix.0).read(&mut buf).map(drop),
            _ => self.udp.recv_from(&mut buf).map(drop),
        }
    }
}

/// [`COROUTINES`] sets of sockets.
fn held_sockets(counter: &DropCounter) -> Vec<Held> {
    (0..COROUTINES).map(|_| Held::new(counter).expect("sockets")).collect()
}

#[test]
fn cancelled_coroutines_holding_sockets_close_every_descriptor() -> io::Result<()> {
    in_child("cancelled_coroutines_holding_sockets_close_every_descriptor", || {
        green::run(|| {
            let before = fds();
            let counter = DropCounter::new();
            let readers: Vec<_> = (0..COROUTINES)
                .map(|i| {
                    let held = Held::new(&counter).expect("sockets");
                    green::spawn(move || held.read(i))
                })
                .collect();
            let_others_park();
            assert!(fds() > before);
            assert!(readers.iter().all(|r| !r.is_finished()), "every reader parks");
            for reader in &readers {
                reader.cancel();
            }
            for reader in readers {
                let err = reader.join().unwrap().expect_err("nothing was sent");
                assert!(green::is_cancelled(&err), "{err}");
            }
            assert_eq!(counter.dropped(), COROUTINES);
            assert_eq!(fds(), before, "a cancelled coroutine left a socket open");
        });
    })
}

/// Holds a token in this frame and `depth` more below it, then waits.
fn wait_deep_down(counter: &DropCounter, depth: usize, wait: &dyn Fn() -> io::Result<()>) -> io::Result<()> {
    let _token = counter.token();
    if depth == 0 { wait() } else { wait_deep_down(counter, depth - 1, wait) }
}

#[test]
fn values_in_every_frame_of_cancelled_coroutines_are_dropped() {
    const DEPTH: usize = 3;
    green::run(|| {
        let counter = DropCounter::new();
        let (_tx, rx) = channel::unbounded::<u32>();
        let (_reader_peer, reader) = UnixStream::pair().unwrap();
        let reader = Rc::new(reader);
        let event = Rc::new(Event::new());
        let lock = Rc::new(Mutex::new(()));
        let semaphore = Rc::new(Semaphore::new(0));
        let held = lock.lock().unwrap();
        let never = Rc::new(Event::new());
        let joined = {
            let never = never.clone();
            green::spawn(move || never.wait())
        };
        let joined = Rc::new(Cell::new(Some(joined)));
        // One blocking call of each kind, each reporting its cancellation
        // as an `io::Error`, as `?` in an `io::Result` function would.
        let waits: Vec<Box<dyn Fn() -> io::Result<()>>> = vec![
            Box::new(|| Ok(green::sleep(FOREVER)?)),
            Box::new(move || rx.recv().map(drop).map_err(|_| io::Error::from(green::Cancelled))),
            Box::new(move || (&*reader).read(&mut [0; 8]).map(drop)),
            Box::new(move || Ok(event.wait()?)),
            Box::new({
                let lock = lock.clone();
                move || lock.lock().map(drop).map_err(io::Error::from)
            }),
            Box::new(move || semaphore.acquire().map(drop).map_err(io::Error::from)),
            Box::new(move || {
                let handle = joined.take().expect("joined once");
                handle.join().map(drop).map_err(|err| {
                    assert!(err.is_interrupted());
                    io::Error::from(green::Cancelled)
                })
            }),
        ];
        let kinds = waits.len();
        let waiters: Vec<_> = waits
            .into_iter()
            .map(|wait| {
                let counter = counter.clone();
                green::spawn(move || {
                    let _outer = counter.token();
                    wait_deep_down(&counter, DEPTH, &*wait)
                })
            })
            .collect();
        let_others_park();
        assert_eq!(counter.dropped(), 0, "every waiter is parked with its tokens alive");
        assert!(waiters.iter().all(|w| !w.is_finished()));
        for waiter in &waiters {
            waiter.cancel();
        }
        for waiter in waiters {
            let err = waiter.join().unwrap().expect_err("every wait was cancelled");
            assert!(green::is_cancelled(&err), "{err}");
        }
        assert_eq!(counter.dropped(), kinds * (DEPTH + 2), "one token per frame, plus the outer one");
        drop(held);
        never.set();
    });
}

#[test]
fn a_dropped_task_group_cancels_its_members_and_they_release_everything() -> io::Result<()> {
    in_child("a_dropped_task_group_cancels_its_members_and_they_release_everything", || {
        green::run(|| {
            let before = fds();
            let counter = DropCounter::new();
            let finished = WaitGroup::new();
            let mut group = TaskGroup::new();
            for i in 0..COROUTINES {
                let held = Held::new(&counter).expect("sockets");
                let done = finished.add();
                group.spawn(move || {
                    let result = {
                        let held = held;
                        held.read(i)
                    };
                    // Marked done only once everything it held is gone.
                    drop(done);
                    result
                });
            }
            let_others_park();
            assert_eq!(counter.dropped(), 0, "every member is parked in its read");
            drop(group);
            finished.wait().expect("this coroutine is not cancelled");
            assert_eq!(counter.dropped(), COROUTINES);
            assert_eq!(fds(), before, "a cancelled member left a socket open");
        });
    })
}

#[test]
fn a_task_group_dropped_before_its_members_ran_drops_what_they_captured() -> io::Result<()> {
    in_child("a_task_group_dropped_before_its_members_ran_drops_what_they_captured", || {
        green::run(|| {
            let before = fds();
            let counter = DropCounter::new();
            // Made first: making sockets parks this coroutine (in connect
            // and accept), which would let members spawned earlier run.
            let helds = held_sockets(&counter);
            let mut group = TaskGroup::new();
            let ran = Rc::new(Cell::new(false));
            let captured = Rc::new(());
            for (i, held) in helds.into_iter().enumerate() {
                let (ran, captured) = (ran.clone(), captured.clone());
                group.spawn(move || {
                    let _captured = captured;
                    ran.set(true);
                    held.read(i)
                });
            }
            drop(group); // none of them has run
            // The cancelled members are discarded when the scheduler gets
            // to them in the run queue.
            green::yield_now();
            assert_eq!(Rc::strong_count(&captured), 1, "every closure was dropped");
            assert!(!ran.get(), "and none ran");
            assert_eq!(counter.dropped(), COROUTINES);
            assert_eq!(fds(), before, "a closure that never ran kept its sockets");
        });
    })
}

#[test]
fn a_coroutine_cancelled_before_it_ran_closes_the_sockets_it_captured() -> io::Result<()> {
    in_child("a_coroutine_cancelled_before_it_ran_closes_the_sockets_it_captured", || {
        green::run(|| {
            let before = fds();
            let counter = DropCounter::new();
            // Made first: making sockets parks this coroutine (in connect
            // and accept), which would let coroutines spawned earlier run.
            let handles: Vec<_> = held_sockets(&counter)
                .into_iter()
                .enumerate()
                .map(|(i, held)| green::spawn(move || held.read(i)))
                .collect();
            for handle in &handles {
                handle.cancel();
            }
            for handle in handles {
                assert!(handle.join().expect_err("it never ran").is_cancelled());
            }
            assert_eq!(counter.dropped(), COROUTINES);
            assert_eq!(fds(), before);
        });
    })
}

#[test]
fn a_scope_whose_child_failed_releases_what_its_siblings_held() -> io::Result<()> {
    in_child("a_scope_whose_child_failed_releases_what_its_siblings_held", || {
        green::run(|| {
            let before = fds();
            let counter = DropCounter::new();
            let outcome = green::scope(|s| {
                for i in 0..COROUTINES {
                    let held = Held::new(&counter).expect("sockets");
                    s.spawn(move || held.read(i));
                }
                // Runs after the siblings have parked in their reads.
                s.spawn(|| Err::<(), _>(io::Error::other("the failing child")));
            });
            let err = outcome.expect_err("a child failed").into_error().expect("with an error, not a panic");
            assert_eq!(
                err.to_string(),
                "the failing child",
                "the first failure, not a sibling's cancellation"
            );
            assert_eq!(counter.dropped(), COROUTINES);
            assert_eq!(fds(), before, "a cancelled sibling left a socket open");
        });
    })
}

#[test]
fn a_scope_whose_child_panicked_releases_what_its_siblings_held() -> io::Result<()> {
    in_child("a_scope_whose_child_panicked_releases_what_its_siblings_held", || {
        green::run(|| {
            let before = fds();
            let counter = DropCounter::new();
            let outcome = green::scope(|s| {
                for i in 0..COROUTINES {
                    let held = Held::new(&counter).expect("sockets");
                    s.spawn(move || held.read(i));
                }
                s.spawn(|| -> io::Result<()> { panic!("the panicking child") });
            });
            let err = outcome.expect_err("a child panicked");
            assert!(matches!(err, green::ScopeError::Panicked { .. }), "{err}");
            assert_eq!(counter.dropped(), COROUTINES);
            assert_eq!(fds(), before, "a cancelled sibling left a socket open");
        });
    })
}

/// A listener whose accept queue is full, and the connections filling it
/// (keep all of them alive): a new connect to it hangs. As in
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

#[test]
fn timeout_scopes_that_cut_connects_and_reads_short_leave_no_descriptor() -> io::Result<()> {
    in_child("timeout_scopes_that_cut_connects_and_reads_short_leave_no_descriptor", || {
        green::run(|| {
            let (addr, _listener, _queued) = saturated_listener().expect("a saturated listener");
            let before = fds();
            let counter = DropCounter::new();
            for (i, held) in held_sockets(&counter).into_iter().enumerate() {
                let outcome = green::timeout(Duration::from_millis(2), move || -> io::Result<()> {
                    if i % 2 == 0 {
                        held.read(i)
                    } else {
                        let _held = held;
                        TcpStream::connect(addr).map(drop)
                    }
                });
                assert!(outcome.is_err(), "the deadline passed");
            }
            assert_eq!(counter.dropped(), COROUTINES);
            assert_eq!(fds(), before, "a cut-short connect or read left a socket open");
        });
    })
}

#[test]
fn a_cancelled_writer_drops_its_unsent_buffer_and_closes_its_socket() -> io::Result<()> {
    in_child("a_cancelled_writer_drops_its_unsent_buffer_and_closes_its_socket", || {
        green::run(|| {
            let before = fds();
            let counter = DropCounter::new();
            let (client, server) = tcp_pair().expect("a TCP pair");
            let token = counter.token();
            // Nobody reads: the writer fills the socket buffers and parks.
            let writer = green::spawn(move || -> io::Result<()> {
                let _token = token;
                let buffer = vec![0u8; 16 << 20];
                (&client).write_all(&buffer)
            });
            let_others_park();
            assert!(!writer.is_finished());
            writer.cancel();
            let err = writer.join().unwrap().expect_err("the write could not finish");
            assert!(green::is_cancelled(&err), "write_all did not retry the cancellation: {err}");
            assert_eq!(counter.dropped(), 1);
            drop(server);
            assert_eq!(fds(), before);
        });
    })
}
