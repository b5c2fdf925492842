//! A socket that outlives one runtime keeps working in the next one on the
//! same thread, and one still registered with a runtime that is running on
//! another thread says so instead of misbehaving.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread;

use green::net::{TcpListener, UnixStream};

/// Connects from a plain thread, sends a message and checks the echo.
fn client(addr: SocketAddr) -> thread::JoinHandle<io::Result<()>> {
    thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.write_all(b"hello")?;
        let mut buf = [0; 5];
        stream.read_exact(&mut buf)?;
        assert_eq!(&buf, b"hello");
        Ok(())
    })
}

#[test]
fn a_listener_serves_in_two_runtimes_one_after_the_other() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    for _round in 0..2 {
        green::run(|| {
            // The client starts only once main has parked in `accept`, so
            // the accept registers the listener with this runtime; in round
            // 1 that replaces the registration left by round 0's runtime,
            // which has ended.
            let client = green::spawn(move || client(addr));
            let (mut stream, _) = listener.accept()?;
            let mut buf = [0; 5];
            stream.read_exact(&mut buf)?;
            stream.write_all(&buf)?;
            client.join().expect("no panic").join().expect("client thread")
        })?;
    }
    Ok(())
}

#[test]
fn waiting_in_a_second_running_runtime_is_a_clear_error() -> io::Result<()> {
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0")?);
    let (registered_tx, registered_rx) = mpsc::channel::<()>();
    let (mut release, release_rx) = UnixStream::pair()?;
    let home = {
        let listener = listener.clone();
        thread::spawn(move || {
            green::run(move || {
                // An accept that parks registers the listener with this
                // runtime, which then stays alive until released.
                let _accepting = green::spawn(move || listener.accept().map(|_| ()));
                green::yield_now();
                registered_tx.send(()).ok();
                let mut byte = [0];
                (&release_rx).read_exact(&mut byte)
            })
        })
    };
    registered_rx.recv().expect("the home runtime registered the listener");
    let err = green::run(|| listener.accept().map(|_| ())).expect_err("a second runtime cannot wait on it");
    release.write_all(b"x")?;
    home.join().expect("home thread")?;
    assert!(err.to_string().contains("try_clone"), "the error says what to do: {err}");
    Ok(())
}
