//! More than a thousand TCP connections open at once on one runtime: the
//! server, one handler per connection and every client are coroutines of
//! one thread. Each client sends a payload of its own and must read back
//! exactly that payload.

use std::io::{self, Read, Write};
use std::rc::Rc;

use green::JoinHandle;
use green::net::{TcpListener, TcpStream};

/// Connections open at the same time.
const CONNECTIONS: usize = 1024;

/// What client `i` sends: its number repeated to a length of its own
/// (14 to 700 bytes), so that a mix-up between connections shows.
fn payload(i: usize) -> Vec<u8> {
    format!("client {i:05} | ").repeat(1 + i % 50).into_bytes()
}

/// Echoes until the client closes; returns the number of bytes echoed.
fn echo(mut stream: TcpStream) -> io::Result<usize> {
    let mut buf = [0; 1024];
    let mut echoed = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(echoed);
        }
        stream.write_all(&buf[..n])?;
        echoed += n;
    }
}

/// Sends the payload, reads it back, and returns the connection still open.
fn client(addr: std::net::SocketAddr, i: usize) -> io::Result<TcpStream> {
    let payload = payload(i);
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(&payload)?;
    let mut echoed = vec![0; payload.len()];
    stream.read_exact(&mut echoed)?;
    assert!(echoed == payload, "client {i} read back bytes that are not its own");
    Ok(stream)
}

fn join<T>(handle: JoinHandle<io::Result<T>>) -> io::Result<T> {
    handle.join().map_err(|err| io::Error::other(format!("a coroutine failed: {err}")))?
}

#[test]
fn a_thousand_simultaneous_echo_connections() -> io::Result<()> {
    // Each connection takes two descriptors in this process (both ends).
    green_tests::net::raise_fd_limit(2 * CONNECTIONS as u64 + 64)?;
    green::run(|| -> io::Result<()> {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0")?);
        let addr = listener.local_addr()?;
        let server = green::spawn(move || -> io::Result<Vec<JoinHandle<io::Result<usize>>>> {
            (0..CONNECTIONS)
                .map(|_| {
                    let (stream, _) = listener.accept()?;
                    Ok(green::spawn(move || echo(stream)))
                })
                .collect()
        });
        let clients: Vec<_> = (0..CONNECTIONS).map(|i| green::spawn(move || client(addr, i))).collect();

        // Every client keeps its connection, so all of them are open now.
        let open: Vec<TcpStream> = clients.into_iter().map(join).collect::<io::Result<_>>()?;
        assert_eq!(open.len(), CONNECTIONS);
        let handlers = join(server)?;
        assert_eq!(handlers.len(), CONNECTIONS);

        drop(open); // end of file for every handler
        let echoed: usize = handlers.into_iter().map(join).sum::<io::Result<usize>>()?;
        assert_eq!(echoed, (0..CONNECTIONS).map(|i| payload(i).len()).sum::<usize>());
        Ok(())
    })
}
