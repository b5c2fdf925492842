//! [`UnixListener`]: `std::os::unix::net::UnixListener` for coroutines.

use std::io;
use std::iter::FusedIterator;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;

use crate::net::UnixStream;
use crate::net::accept::{self, ShortageLog};
use crate::net::convert::socket_conversions;
use crate::net::socket::Socket;

/// A Unix-domain socket server, listening for connections.
///
/// The API of [`std::os::unix::net::UnixListener`]. `accept` and
/// `incoming` park the calling coroutine until a connection arrives (on a
/// plain thread they block the thread), and survive running out of file
/// descriptors as [`TcpListener`](crate::net::TcpListener) does.
///
/// Dropping the listener does not remove its socket file, as with `std`.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use green::net::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("green-doc-{}.sock", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     let listener = UnixListener::bind(&path)?;
///     let client_path = path.clone();
///     let client = green::spawn(move || -> std::io::Result<()> {
///         UnixStream::connect(&client_path)?.write_all(b"hi")
///     });
///     let (mut stream, _) = listener.accept()?;
///     let mut text = String::new();
///     stream.read_to_string(&mut text)?;
///     client.join().unwrap()?;
///     assert_eq!(text, "hi");
///     Ok(())
/// }).unwrap();
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    /// The `std` listener, non-blocking, with its readiness.
    socket: Socket<net::UnixListener>,
    /// Whether the current descriptor shortage has been reported.
    shortage: ShortageLog,
}

socket_conversions!(UnixListener, net::UnixListener);

impl UnixListener {
    fn from_socket(socket: Socket<net::UnixListener>) -> UnixListener {
        UnixListener { socket, shortage: ShortageLog::default() }
    }

    /// Creates a listener bound to `path`.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if a file exists at `path` (remove a stale socket file
    /// first); `InvalidInput` if the path is too long.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        Ok(UnixListener::from_socket(Socket::new(net::UnixListener::bind(path)?)?))
    }

    /// Creates a listener bound to `addr`: a path or an abstract name.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        Ok(UnixListener::from_socket(Socket::new(net::UnixListener::bind_addr(addr)?)?))
    }

    /// Accepts a new connection, parking until one arrives.
    ///
    /// # Errors
    ///
    /// A cancellation error (see [`crate::is_cancelled`]) if the coroutine
    /// is cancelled while it waits; `WouldBlock` in non-blocking mode when
    /// no connection is queued; errors of `accept(2)` other than those
    /// retried (see [`TcpListener`](crate::net::TcpListener)).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, peer) =
            accept::accept(&self.socket, &self.shortage, describe, net::UnixListener::accept)?;
        Ok((UnixStream::from_accepted(stream)?, peer))
    }

    /// An endless iterator over the connections as they arrive.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }

    /// Takes the pending error of the socket (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket.get_ref().take_error()
    }

    /// Creates a second handle to the same listener (a duplicated
    /// descriptor), starting in the same blocking mode.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener::from_socket(self.socket.try_clone(net::UnixListener::try_clone)?))
    }

    /// Chooses whether `accept` waits (the default) or returns
    /// `WouldBlock` when no connection is queued; the descriptor is
    /// non-blocking at the OS level either way.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.socket.set_nonblocking(nonblocking);
        Ok(())
    }
}

/// Names the listener in the descriptor-shortage message.
fn describe(listener: &net::UnixListener) -> String {
    let Ok(addr) = listener.local_addr() else { return String::from("a Unix socket") };
    if let Some(path) = addr.as_pathname() {
        path.display().to_string()
    } else if let Some(name) = addr.as_abstract_name() {
        format!("@{}", String::from_utf8_lossy(name))
    } else {
        String::from("an unnamed Unix socket")
    }
}

/// The iterator returned by [`UnixListener::incoming`]: accepts
/// connections forever, never returning `None`.
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    /// The listener accepting the connections.
    listener: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

impl FusedIterator for UnixIncoming<'_> {}
