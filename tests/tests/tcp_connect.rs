//! Connecting: a refused connect, `connect_timeout` succeeding and timing
//! out, a read timeout, and no descriptor left behind by a connect that
//! timed out or whose coroutine was cancelled.
//!
//! A connect that never completes is made locally, without an external
//! address: a listener whose accept queue is shrunk to its minimum (backlog
//! 0) and filled. Linux then drops further handshakes (SYNs) and the client
//! retransmits after a second, so those connects hang.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Duration;

use green::net::{TcpListener, TcpStream};
use green_tests::net::set_listen_backlog;
use green_tests::{describe, open_fds, run_in_child};

/// How long the connects that must time out wait; it only needs to be
/// shorter than the client's first SYN retransmission (1 s).
const SHORT: Duration = Duration::from_millis(100);

/// The address of a port nobody listens on (one that was free a moment
/// ago).
fn closed_port() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.local_addr()
}

/// A listener whose accept queue is full, and the connections filling it:
/// a new connect to it hangs. Returns the address, the listener and the
/// queued client streams, all of which must be kept alive.
fn saturated_listener() -> io::Result<(SocketAddr, TcpListener, Vec<TcpStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    set_listen_backlog(&listener, 0)?;
    let addr = listener.local_addr()?;
    let mut queued = Vec::new();
    // Backlog 0 admits one connection on current kernels; allow a few more
    // for kernels that round the queue length up.
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, SHORT) {
            Ok(stream) => queued.push(stream),
            Err(err) if err.kind() == io::ErrorKind::TimedOut => return Ok((addr, listener, queued)),
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::other("8 connections to a listener with backlog 0 did not fill its queue"))
}

#[test]
fn connecting_to_a_closed_port_is_refused() -> io::Result<()> {
    let addr = closed_port()?;
    green::run(|| -> io::Result<()> {
        let err = TcpStream::connect(addr).expect_err("nobody listens");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        let err = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect_err("nobody listens");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        Ok(())
    })
}

#[test]
fn connect_tries_every_address_and_reports_the_last_error() -> io::Result<()> {
    let closed = closed_port()?;
    green::run(|| -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let open = listener.local_addr()?;
        let stream = TcpStream::connect(&[closed, open][..])?;
        assert_eq!(stream.peer_addr()?, open);
        let err = TcpStream::connect(&[closed, closed][..]).expect_err("nobody listens");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        let err = TcpStream::connect(&[][..] as &[SocketAddr]).expect_err("no address");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        Ok(())
    })
}

#[test]
fn connect_timeout_connects_and_rejects_a_zero_timeout() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        let (accepted, peer) = listener.accept()?;
        assert_eq!(peer, stream.local_addr()?);
        assert_eq!(accepted.peer_addr()?, stream.local_addr()?);
        let err = TcpStream::connect_timeout(&addr, Duration::ZERO).expect_err("zero timeout");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        Ok(())
    })
}

#[test]
fn connect_timeout_times_out_when_the_handshake_never_completes() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (addr, _listener, _queued) = saturated_listener()?;
        let err = TcpStream::connect_timeout(&addr, SHORT).expect_err("the queue is full");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        Ok(())
    })
}

#[test]
fn a_read_timeout_fails_a_read_that_gets_no_data_with_timed_out() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let mut stream = TcpStream::connect(listener.local_addr()?)?;
        let (_silent_peer, _) = listener.accept()?;
        assert_eq!(stream.read_timeout()?, None);
        stream.set_read_timeout(Some(Duration::from_millis(20)))?;
        assert_eq!(stream.read_timeout()?, Some(Duration::from_millis(20)));
        let err = stream.read(&mut [0; 8]).expect_err("the peer sends nothing");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let err = stream.set_read_timeout(Some(Duration::ZERO)).expect_err("zero timeout");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        Ok(())
    })
}

/// Counting descriptors needs the process to itself, hence the child.
#[test]
fn timed_out_and_cancelled_connects_close_their_sockets() -> io::Result<()> {
    let output = run_in_child("timed_out_and_cancelled_connects_close_their_sockets", || {
        let (addr, listener, queued) = saturated_listener().expect("a saturated listener");
        let before = open_fds().expect("/proc/self/fd");
        green::run(|| {
            for _ in 0..3 {
                let err = TcpStream::connect_timeout(&addr, SHORT).expect_err("the queue is full");
                assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            }
            // Connects without a timeout, parked when `main` returns: the
            // runtime cancels them, unwinding their stacks.
            for _ in 0..3 {
                green::spawn(move || TcpStream::connect(addr));
            }
            green::yield_now(); // each starts its connect and parks
        });
        let after = open_fds().expect("/proc/self/fd");
        assert_eq!(after, before, "descriptors leaked by connects that timed out or were cancelled");
        drop((listener, queued));
    })?;
    assert!(output.status.success(), "{}", describe(&output));
    Ok(())
}
