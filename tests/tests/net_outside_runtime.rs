//! The socket types on plain threads, with no runtime: every operation
//! blocks the thread as the `std` call would. A plain-thread client talks
//! to a green server, a green client to a plain-thread server, a coroutine
//! and a plain thread share one stream, and timeouts fail with `TimedOut`.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use green::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use green_tests::net::is_nonblocking;

fn join_thread<T>(handle: thread::JoinHandle<io::Result<T>>) -> io::Result<T> {
    handle.join().map_err(|_| io::Error::other("the plain thread panicked"))?
}

#[test]
fn a_plain_thread_client_talks_to_a_green_server() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client = thread::spawn(move || -> io::Result<String> {
        assert!(green::try_current().is_none(), "this is a plain thread");
        let mut stream = TcpStream::connect(addr)?;
        stream.write_all(b"from a plain thread")?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    });
    green::run(|| -> io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        let mut request = Vec::new();
        stream.read_to_end(&mut request)?;
        stream.write_all(&request)
    })?;
    assert_eq!(join_thread(client)?, "from a plain thread");
    Ok(())
}

#[test]
fn a_green_client_talks_to_a_plain_thread_server() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || -> io::Result<()> {
        let (mut stream, _) = listener.accept()?; // blocks this thread in poll(2)
        let mut request = Vec::new();
        stream.read_to_end(&mut request)?;
        stream.write_all(&request)
    });
    let reply = green::run(|| -> io::Result<String> {
        let mut stream = TcpStream::connect(addr)?;
        stream.write_all(b"from a coroutine")?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    })?;
    join_thread(server)?;
    assert_eq!(reply, "from a coroutine");
    Ok(())
}

#[test]
fn a_coroutine_and_a_plain_thread_share_one_stream() -> io::Result<()> {
    const MESSAGES: usize = 100;
    let (left, right) = UnixStream::pair()?;
    let left = Arc::new(left);
    // The plain thread writes through `&UnixStream` while a coroutine reads
    // through another reference to the same stream.
    let writer = {
        let left = Arc::clone(&left);
        thread::spawn(move || -> io::Result<()> {
            let mut right = right;
            for i in 0..MESSAGES {
                (&*left).write_all(&[i as u8])?;
                let mut echoed = [0];
                right.read_exact(&mut echoed)?;
                assert_eq!(echoed[0], i as u8);
                right.write_all(&echoed)?;
            }
            Ok(())
        })
    };
    green::run(|| -> io::Result<()> {
        let mut buf = [0];
        for i in 0..MESSAGES {
            (&*left).read_exact(&mut buf)?;
            assert_eq!(buf[0], i as u8);
        }
        Ok(())
    })?;
    join_thread(writer)
}

#[test]
fn timeouts_on_a_plain_thread_fail_with_timed_out() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut stream = TcpStream::connect(listener.local_addr()?)?;
    let (_silent_peer, _) = listener.accept()?;
    stream.set_read_timeout(Some(Duration::from_millis(20)))?;
    let err = stream.read(&mut [0; 8]).expect_err("the peer sends nothing");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);

    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(20)))?;
    let err = socket.recv_from(&mut [0; 8]).expect_err("nobody sends");
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    Ok(())
}

#[test]
fn a_refused_connect_on_a_plain_thread_is_refused() -> io::Result<()> {
    let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let err = TcpStream::connect(addr).expect_err("nobody listens");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    Ok(())
}

#[test]
fn conversions_to_std_hand_back_a_blocking_socket() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    assert!(is_nonblocking(&listener)?);
    let std_listener = std::net::TcpListener::from(listener);
    assert!(!is_nonblocking(&std_listener)?);
    let addr = std_listener.local_addr()?;
    // A std client, a std accept: both block as std code expects.
    let client = thread::spawn(move || std::net::TcpStream::connect(addr));
    let (std_stream, _) = std_listener.accept()?;
    let mut client = client.join().map_err(|_| io::Error::other("the client thread panicked"))??;
    // Back into green, then write through it.
    assert!(!is_nonblocking(&std_stream)?);
    let mut stream = TcpStream::from(std_stream);
    assert!(is_nonblocking(&stream)?);
    stream.write_all(b"converted")?;
    let mut buf = [0; 9];
    client.read_exact(&mut buf)?;
    assert_eq!(&buf, b"converted");
    Ok(())
}
