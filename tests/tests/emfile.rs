//! A listener that runs out of file descriptors (`EMFILE` on accept) backs
//! off instead of failing or spinning, picks up the queued connections once
//! descriptors are freed, and says so on stderr once per shortage.
//!
//! The work happens in a child process (the test binary run again), whose
//! descriptor limit can be lowered and whose stderr can be read. The child
//! fills its descriptor table with `/dev/null` handles ("spares") so that
//! it decides exactly when descriptors free up:
//!
//! ```text
//!  per shortage (episode), starting with a full table:
//!    free 8 spares, connect 8 clients      (their connections queue)
//!    accept x4: EMFILE -> message, backoff  | free 4 spares -> 4 accepted
//!    accept x4: EMFILE -> same shortage     | free 4 spares -> 4 accepted
//!    every client gets its echo; then all connections close
//!    non-blocking accept: WouldBlock       (caught up: the shortage ends)
//!    refill the table with spares
//! ```
//!
//! Two episodes: the parent expects exactly two messages.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;

use green::JoinHandle;
use green::net::{TcpListener, TcpStream};
use green_tests::net::{highest_open_fd, set_fd_soft_limit};
use green_tests::{describe, run_in_child, stderr_of};

/// Connections per episode (even: half are accepted at a time).
const CLIENTS: usize = 8;
/// Shortages the child goes through.
const EPISODES: usize = 2;
/// The message after the listener's address.
const MESSAGE_END: &str = " failed: too many open files (EMFILE); backing off until descriptors are \
                           freed — raise the limit with ulimit -n";

#[test]
fn accept_backs_off_while_descriptors_run_out_and_serves_when_they_are_freed() -> io::Result<()> {
    let output =
        run_in_child("accept_backs_off_while_descriptors_run_out_and_serves_when_they_are_freed", || {
            if let Err(err) = serve_through_shortages() {
                panic!("the child failed: {err}");
            }
        })?;
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = stderr_of(&output);
    let messages: Vec<&str> = stderr.lines().filter(|line| line.contains("backing off")).collect();
    assert_eq!(messages.len(), EPISODES, "expected one message per shortage; {}", describe(&output));
    for message in messages {
        assert!(
            message.starts_with("green: accept on 127.0.0.1:") && message.ends_with(MESSAGE_END),
            "unexpected message: {message}"
        );
    }
    Ok(())
}

fn join<T>(handle: JoinHandle<io::Result<T>>) -> io::Result<T> {
    handle.join().map_err(|err| io::Error::other(format!("a coroutine failed: {err}")))?
}

fn serve_through_shortages() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0")?);
        let addr = listener.local_addr()?;
        // New descriptors must now be numbered below `limit`: room for the
        // spares and little else.
        let limit = highest_open_fd()? as usize + 1 + 4 * CLIENTS;
        set_fd_soft_limit(limit as u64)?;
        let mut spares = Vec::new();
        fill_descriptor_table(&mut spares)?;
        for _ in 0..EPISODES {
            episode(&listener, addr, &mut spares)?;
        }
        Ok(())
    })
}

/// Opens `/dev/null` until the descriptor table is full.
fn fill_descriptor_table(spares: &mut Vec<File>) -> io::Result<()> {
    loop {
        match File::open("/dev/null") {
            Ok(file) => spares.push(file),
            Err(err) if err.raw_os_error() == Some(libc::EMFILE) => return Ok(()),
            Err(err) => return Err(err),
        }
    }
}

/// Closes `count` spares.
fn free(spares: &mut Vec<File>, count: usize) {
    assert!(spares.len() >= count, "only {} spare descriptors left, {count} needed", spares.len());
    spares.truncate(spares.len() - count);
}

/// See the module documentation.
fn episode(listener: &Rc<TcpListener>, addr: SocketAddr, spares: &mut Vec<File>) -> io::Result<()> {
    free(spares, CLIENTS);
    let streams: Vec<TcpStream> =
        (0..CLIENTS).map(|_| TcpStream::connect(addr)).collect::<io::Result<_>>()?;
    fill_descriptor_table(spares)?; // full, whatever the clients took
    let clients: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, stream)| green::spawn(move || client(stream, i as u8)))
        .collect();

    let mut handlers = Vec::new();
    for _half in 0..2 {
        let acceptor = accept(listener.clone(), CLIENTS / 2);
        green::yield_now(); // the acceptor runs until its accept fails and it pauses
        assert!(!acceptor.is_finished(), "accepted a connection with a full descriptor table");
        free(spares, CLIENTS / 2); // the backed-off accept picks up queued connections
        handlers.extend(join(acceptor)?);
    }
    // Every connection is still open (the coroutines hand their streams
    // back), so the descriptor count has been exact up to here.
    let client_streams: Vec<TcpStream> = clients.into_iter().map(join).collect::<io::Result<_>>()?;
    let server_streams: Vec<TcpStream> = handlers.into_iter().map(join).collect::<io::Result<_>>()?;
    drop((client_streams, server_streams));

    // Caught up: nothing queued and descriptors free, which ends the
    // shortage, so the next one prints its message again.
    listener.set_nonblocking(true)?;
    let err = listener.accept().expect_err("nothing is queued");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    listener.set_nonblocking(false)?;
    fill_descriptor_table(spares)
}

/// Accepts `count` connections, an echo coroutine for each.
fn accept(
    listener: Rc<TcpListener>,
    count: usize,
) -> JoinHandle<io::Result<Vec<JoinHandle<io::Result<TcpStream>>>>> {
    green::spawn(move || {
        (0..count)
            .map(|_| {
                let (stream, _) = listener.accept()?;
                Ok(green::spawn(move || echo_one(stream)))
            })
            .collect()
    })
}

/// Echoes one byte; returns the stream, still open.
fn echo_one(mut stream: TcpStream) -> io::Result<TcpStream> {
    let mut byte = [0];
    stream.read_exact(&mut byte)?;
    stream.write_all(&byte)?;
    Ok(stream)
}

/// Sends its id and checks the echo; returns the stream, still open.
fn client(mut stream: TcpStream, id: u8) -> io::Result<TcpStream> {
    stream.write_all(&[id])?;
    let mut echoed = [0];
    stream.read_exact(&mut echoed)?;
    assert_eq!(echoed[0], id, "client {id} got another client's byte");
    Ok(stream)
}
