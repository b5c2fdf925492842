//! UDP round trips between coroutines: `send_to`/`recv_from` ping-pong,
//! connected `send`/`recv`, `peek_from`, a receive timeout and
//! non-blocking mode.

use std::io;
use std::time::Duration;

use green::JoinHandle;
use green::net::UdpSocket;

fn join<T>(handle: JoinHandle<io::Result<T>>) -> io::Result<T> {
    handle.join().map_err(|err| io::Error::other(format!("a coroutine failed: {err}")))?
}

#[test]
fn send_to_and_recv_from_between_two_coroutines() -> io::Result<()> {
    const ROUNDS: u32 = 200;
    green::run(|| -> io::Result<()> {
        let client = UdpSocket::bind("127.0.0.1:0")?;
        let server = UdpSocket::bind("127.0.0.1:0")?;
        let server_addr = server.local_addr()?;
        // Parks in recv_from before the first datagram is sent.
        let ponger = green::spawn(move || -> io::Result<()> {
            let mut buf = [0; 64];
            for _ in 0..ROUNDS {
                let (n, from) = server.recv_from(&mut buf)?;
                let reply = [b"pong ", &buf[5..n]].concat();
                server.send_to(&reply, from)?;
            }
            Ok(())
        });
        let mut buf = [0; 64];
        for round in 0..ROUNDS {
            client.send_to(format!("ping {round}").as_bytes(), server_addr)?;
            let (n, from) = client.recv_from(&mut buf)?;
            assert_eq!(from, server_addr);
            assert_eq!(&buf[..n], format!("pong {round}").as_bytes());
        }
        join(ponger)
    })
}

#[test]
fn connected_sockets_send_and_recv() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let a = UdpSocket::bind("127.0.0.1:0")?;
        let b = UdpSocket::bind("127.0.0.1:0")?;
        a.connect(b.local_addr()?)?;
        b.connect(a.local_addr()?)?;
        assert_eq!(a.peer_addr()?, b.local_addr()?);
        let echo = green::spawn(move || -> io::Result<()> {
            let mut buf = [0; 32];
            let n = b.recv(&mut buf)?;
            b.send(&buf[..n])?;
            Ok(())
        });
        a.send(b"connected datagram")?;
        let mut buf = [0; 32];
        let n = a.recv(&mut buf)?;
        assert_eq!(&buf[..n], b"connected datagram");
        join(echo)
    })
}

#[test]
fn peek_from_leaves_the_datagram_queued() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let a = UdpSocket::bind("127.0.0.1:0")?;
        let b = UdpSocket::bind("127.0.0.1:0")?;
        let to = b.local_addr()?;
        let sender = green::spawn(move || -> io::Result<usize> { a.send_to(b"look twice", to) });
        let mut buf = [0; 32];
        let (peeked, from) = b.peek_from(&mut buf)?; // parks until the datagram arrives
        assert_eq!(&buf[..peeked], b"look twice");
        let (n, from_again) = b.recv_from(&mut buf)?;
        assert_eq!((&buf[..n], from_again), (&b"look twice"[..], from));
        join(sender)?;
        Ok(())
    })
}

#[test]
fn a_receive_timeout_fails_with_timed_out_and_non_blocking_mode_with_would_block() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let err = socket.recv_from(&mut [0; 8]).expect_err("nobody sends");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        socket.set_nonblocking(true)?;
        let err = socket.recv_from(&mut [0; 8]).expect_err("nothing is queued");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        Ok(())
    })
}

#[test]
fn options_are_the_std_socket_options() -> io::Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_ttl(17)?;
    assert_eq!(socket.ttl()?, 17);
    socket.set_broadcast(true)?;
    assert!(socket.broadcast()?);
    let clone = socket.try_clone()?;
    assert_eq!(clone.local_addr()?, socket.local_addr()?);
    let err = socket.send_to(b"x", &[][..] as &[std::net::SocketAddr]).expect_err("no address");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    Ok(())
}
