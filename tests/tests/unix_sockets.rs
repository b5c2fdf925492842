//! Unix-domain sockets: a listener echoing to many coroutine clients over a
//! path, connects that find the accept queue full (and back off until it
//! drains), abstract names, `UnixStream::pair`, and datagram round trips
//! over a pair and over bound paths.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::rc::Rc;

use green::JoinHandle;
use green::net::{UnixDatagram, UnixListener, UnixStream};
use green_tests::net::{SocketPath, set_listen_backlog};

fn join<T>(handle: JoinHandle<io::Result<T>>) -> io::Result<T> {
    handle.join().map_err(|err| io::Error::other(format!("a coroutine failed: {err}")))?
}

/// Echoes until the client shuts down its sending half.
fn echo(mut stream: UnixStream) -> io::Result<()> {
    let mut data = Vec::new();
    stream.read_to_end(&mut data)?;
    stream.write_all(&data)
}

/// Sends `message`, half-closes, and returns what comes back.
fn round_trip(path: PathBuf, message: String) -> io::Result<String> {
    let mut stream = UnixStream::connect(&path)?;
    stream.write_all(message.as_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// Accepts `count` connections, one echo coroutine each.
fn serve(listener: Rc<UnixListener>, count: usize) -> JoinHandle<io::Result<()>> {
    green::spawn(move || -> io::Result<()> {
        let handlers: Vec<_> = listener
            .incoming()
            .take(count)
            .map(|stream| Ok(green::spawn(move || echo(stream?))))
            .collect::<io::Result<_>>()?;
        handlers.into_iter().try_for_each(join)
    })
}

#[test]
fn a_listener_echoes_to_many_clients_over_a_path() -> io::Result<()> {
    const CLIENTS: usize = 100;
    let socket_path = SocketPath::new("echo");
    green::run(|| -> io::Result<()> {
        let listener = Rc::new(UnixListener::bind(socket_path.path())?);
        assert_eq!(listener.local_addr()?.as_pathname(), Some(socket_path.path()));
        let server = serve(listener, CLIENTS);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let path = socket_path.path().to_owned();
                green::spawn(move || round_trip(path, format!("unix client {i}")))
            })
            .collect();
        for (i, client) in clients.into_iter().enumerate() {
            assert_eq!(join(client)?, format!("unix client {i}"));
        }
        join(server)
    })
}

#[test]
fn connects_to_a_full_accept_queue_wait_until_it_drains() -> io::Result<()> {
    const CLIENTS: usize = 24;
    let socket_path = SocketPath::new("backlog");
    green::run(|| -> io::Result<()> {
        let listener = Rc::new(UnixListener::bind(socket_path.path())?);
        // A queue of two: most of the clients find it full (EAGAIN).
        set_listen_backlog(&*listener, 1)?;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let path = socket_path.path().to_owned();
                green::spawn(move || round_trip(path, format!("queued client {i}")))
            })
            .collect();
        green::yield_now(); // every client tries to connect before anyone accepts
        let server = serve(listener, CLIENTS);
        for (i, client) in clients.into_iter().enumerate() {
            assert_eq!(join(client)?, format!("queued client {i}"));
        }
        join(server)
    })
}

#[test]
fn connecting_to_a_missing_path_fails() {
    let socket_path = SocketPath::new("missing");
    let err = green::run(|| UnixStream::connect(socket_path.path())).expect_err("nothing listens");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

#[test]
fn a_stream_pair_talks_both_ways() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (left, right) = UnixStream::pair()?;
        let right = green::spawn(move || -> io::Result<()> {
            let mut request = [0; 4];
            (&right).read_exact(&mut request)?;
            assert_eq!(&request, b"ping");
            (&right).write_all(b"pong")
        });
        (&left).write_all(b"ping")?;
        let mut reply = [0; 4];
        (&left).read_exact(&mut reply)?;
        assert_eq!(&reply, b"pong");
        join(right)?;
        // The peer is gone: end of file.
        assert_eq!((&left).read(&mut reply)?, 0);
        Ok(())
    })
}

#[test]
fn a_datagram_pair_round_trip() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (a, b) = UnixDatagram::pair()?;
        let echo = green::spawn(move || -> io::Result<()> {
            let mut buf = [0; 64];
            for _ in 0..10 {
                let n = b.recv(&mut buf)?;
                b.send(&buf[..n])?;
            }
            Ok(())
        });
        let mut buf = [0; 64];
        for i in 0..10 {
            let message = format!("datagram {i}");
            a.send(message.as_bytes())?;
            let n = a.recv(&mut buf)?;
            assert_eq!(&buf[..n], message.as_bytes());
        }
        join(echo)
    })
}

#[test]
fn datagrams_between_bound_paths_and_from_an_unbound_socket() -> io::Result<()> {
    let server_path = SocketPath::new("dgram-server");
    let client_path = SocketPath::new("dgram-client");
    green::run(|| -> io::Result<()> {
        let server = UnixDatagram::bind(server_path.path())?;
        let client = UnixDatagram::bind(client_path.path())?;
        let echo = green::spawn(move || -> io::Result<()> {
            let mut buf = [0; 64];
            let (n, from) = server.recv_from(&mut buf)?;
            let from = from.as_pathname().map(ToOwned::to_owned).expect("the client is bound to a path");
            server.send_to(&buf[..n], from)?;
            // From an unbound socket: no address to reply to.
            let (n, from) = server.recv_from(&mut buf)?;
            assert!(from.is_unnamed());
            assert_eq!(&buf[..n], b"anonymous");
            Ok(())
        });
        client.send_to(b"to a path", server_path.path())?;
        let mut buf = [0; 64];
        let (n, from) = client.recv_from(&mut buf)?;
        assert_eq!(&buf[..n], b"to a path");
        assert_eq!(from.as_pathname(), Some(server_path.path()));

        UnixDatagram::unbound()?.send_to(b"anonymous", server_path.path())?;
        join(echo)
    })
}

#[test]
fn abstract_names_bind_and_connect() -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;

    let name = format!("green-test-abstract-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    green::run(|| -> io::Result<()> {
        let listener = Rc::new(UnixListener::bind_addr(&addr)?);
        assert_eq!(listener.local_addr()?.as_abstract_name(), Some(name.as_bytes()));
        let server = serve(listener, 1);
        let mut stream = UnixStream::connect_addr(&addr)?;
        stream.write_all(b"no file on disk")?;
        stream.shutdown(Shutdown::Write)?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        assert_eq!(reply, "no file on disk");
        join(server)?;
        let unnamed = UnixDatagram::unbound()?.local_addr()?;
        let err = UnixStream::connect_addr(&unnamed).expect_err("an unnamed address");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        Ok(())
    })
}
