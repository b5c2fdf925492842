//! [`UnixDatagram`]: `std::os::unix::net::UnixDatagram` for coroutines.
//!
//! # Sending to a full receiver
//!
//! A datagram sent to a receiver whose queue is full fails with `EAGAIN`.
//! For a *connected* socket the kernel wakes the sender when the receiver
//! drains its queue, so [`send`](UnixDatagram::send) waits for
//! writability like every other operation. For
//! [`send_to`](UnixDatagram::send_to) it does not: the sending socket
//! stays writable, and waiting for readiness would return at once, so
//! `send_to` retries with [`Backoff`](crate::net::backoff::Backoff) pauses
//! (1 ms doubling to 100 ms) until the datagram fits or the write timeout
//! expires.

use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::net::convert::socket_conversions;
use crate::net::socket::Socket;

/// A Unix-domain datagram socket.
///
/// The API of [`std::os::unix::net::UnixDatagram`]. Sends and receives
/// park the calling coroutine until they can proceed (on a plain thread
/// they block the thread). Read and write timeouts fail a call with
/// [`io::ErrorKind::TimedOut`] and belong to this handle.
///
/// # Examples
///
/// ```
/// use green::net::UnixDatagram;
///
/// green::run(|| -> std::io::Result<()> {
///     let (a, b) = UnixDatagram::pair()?;
///     a.send(b"one datagram")?;
///     let mut buf = [0; 32];
///     let n = b.recv(&mut buf)?;
///     assert_eq!(&buf[..n], b"one datagram");
///     Ok(())
/// }).unwrap();
/// ```
pub struct UnixDatagram {
    /// The `std` socket, non-blocking, with its readiness and timeouts.
    socket: Socket<net::UnixDatagram>,
}

socket_conversions!(UnixDatagram, net::UnixDatagram);

impl UnixDatagram {
    fn from_socket(socket: Socket<net::UnixDatagram>) -> UnixDatagram {
        UnixDatagram { socket }
    }

    /// Wraps a new `std` socket.
    fn wrap(socket: net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram::from_socket(Socket::new(socket)?))
    }

    /// Creates a socket bound to `path`.
    ///
    /// # Errors
    ///
    /// `AddrInUse` if a file exists at `path`; `InvalidInput` if the path
    /// is too long.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::wrap(net::UnixDatagram::bind(path)?)
    }

    /// Creates a socket bound to `addr`: a path or an abstract name.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::wrap(net::UnixDatagram::bind_addr(addr)?)
    }

    /// Creates a socket bound to no address. It can send, and receive
    /// replies once connected.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::wrap(net::UnixDatagram::unbound()?)
    }

    /// Creates a pair of connected sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = net::UnixDatagram::pair()?;
        Ok((UnixDatagram::wrap(a)?, UnixDatagram::wrap(b)?))
    }

    /// Sets the default destination of [`send`](UnixDatagram::send) and
    /// the only source [`recv`](UnixDatagram::recv) accepts. Does not wait.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.socket.get_ref().connect(path)
    }

    /// Like [`connect`](UnixDatagram::connect), to a path or an abstract
    /// name.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.socket.get_ref().connect_addr(addr)
    }

    /// Sends `buf` as one datagram to the connected socket, parking while
    /// the receiver's queue is full.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write_with(|socket| socket.send(buf))
    }

    /// Receives one datagram from the connected socket, parking until one
    /// arrives. A datagram longer than `buf` is cut to fit.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read_with(|socket| socket.recv(buf))
    }

    /// Sends `buf` as one datagram to the socket bound at `path`; see the
    /// module documentation for a full receiver.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.socket.write_with_backoff(|socket| socket.send_to(buf, path))
    }

    /// Like [`send_to`](UnixDatagram::send_to), to a path or an abstract
    /// name.
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.socket.write_with_backoff(|socket| socket.send_to_addr(buf, addr))
    }

    /// Receives one datagram and the address of its sender, parking until
    /// one arrives.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.read_with(|socket| socket.recv_from(buf))
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }

    /// The address of the connected socket.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().peer_addr()
    }

    /// Shuts down the read half, the write half or both; a shut-down read
    /// half makes [`recv`](UnixDatagram::recv) return 0.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.get_ref().shutdown(how)
    }

    /// Bounds every later receive call to `timeout`; `None` waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }

    /// Bounds every later send call to `timeout`; `None` waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_write_timeout(timeout)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.socket.read_timeout())
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.socket.write_timeout())
    }

    /// Chooses whether sends and receives wait (the default) or return
    /// `WouldBlock`; the descriptor is non-blocking at the OS level either
    /// way.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.socket.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending error of the socket (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket.get_ref().take_error()
    }

    /// Creates a second handle to the same socket (a duplicated
    /// descriptor), with a copy of this handle's timeouts and mode.
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram::from_socket(self.socket.try_clone(net::UnixDatagram::try_clone)?))
    }
}
