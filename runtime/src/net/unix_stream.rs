//! [`UnixStream`]: `std::os::unix::net::UnixStream` for coroutines.
//!
//! # Connecting
//!
//! A Unix-domain connect completes at once or fails at once; it never
//! reports `EINPROGRESS`. The one case where a blocking connect would
//! sleep is a listener whose accept queue is full: a non-blocking socket
//! gets `EAGAIN` instead, and no readiness event announces that the queue
//! has room (the kernel would wait on the listener, not on the connecting
//! socket). So `connect` retries with [`Backoff`] pauses, 1 ms doubling to
//! 100 ms, until the listener has accepted enough to take it.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::net::backoff::Backoff;
use crate::net::convert::socket_conversions;
use crate::net::socket::Socket;
use crate::net::sys::{self, Connect, RawAddr};
use crate::reactor::Interest;

/// A Unix-domain stream socket.
///
/// The API of [`std::os::unix::net::UnixStream`]. Reads and writes park the
/// calling coroutine until the socket is ready (on a plain thread they
/// block the thread). [`Read`] and [`Write`] are implemented for
/// `UnixStream` and `&UnixStream`. Read and write timeouts fail a call with
/// [`io::ErrorKind::TimedOut`] and belong to this handle, as for
/// [`TcpStream`](crate::net::TcpStream#timeouts).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use green::net::UnixStream;
///
/// green::run(|| -> std::io::Result<()> {
///     let (mut a, mut b) = UnixStream::pair()?;
///     let writer = green::spawn(move || a.write_all(b"over the pair"));
///     let mut text = String::new();
///     b.read_to_string(&mut text)?; // ends when `a` is dropped
///     writer.join().unwrap()?;
///     assert_eq!(text, "over the pair");
///     Ok(())
/// }).unwrap();
/// ```
pub struct UnixStream {
    /// The `std` stream, non-blocking, with its readiness and timeouts.
    socket: Socket<net::UnixStream>,
}

socket_conversions!(UnixStream, net::UnixStream);

impl UnixStream {
    fn from_socket(socket: Socket<net::UnixStream>) -> UnixStream {
        UnixStream { socket }
    }

    /// Wraps a stream `std` accepted, switching it to non-blocking mode.
    pub(crate) fn from_accepted(stream: net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream::from_socket(Socket::new(stream)?))
    }

    /// Connects to the socket bound at `path`.
    ///
    /// # Errors
    ///
    /// `NotFound` or `ConnectionRefused` if nothing listens there;
    /// `InvalidInput` if the path is too long for a socket address; a
    /// cancellation error (see [`crate::is_cancelled`]) if the coroutine is
    /// cancelled while the listener's queue is full.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::connect_raw(&RawAddr::from_path(path.as_ref())?)
    }

    /// Connects to the socket at `addr`: a path or an abstract name.
    ///
    /// # Errors
    ///
    /// As [`connect`](UnixStream::connect); `InvalidInput` for an unnamed
    /// address.
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        UnixStream::connect_raw(&RawAddr::from_unix_addr(addr)?)
    }

    /// See the module documentation.
    fn connect_raw(addr: &RawAddr) -> io::Result<UnixStream> {
        let fd = sys::new_socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
        let mut backoff = Backoff::new();
        let in_progress = loop {
            match sys::connect(fd.as_fd(), addr) {
                Ok(Connect::Done) => break false,
                Ok(Connect::InProgress) => break true,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => backoff.pause(None)?,
                Err(err) => return Err(err),
            }
        };
        let stream = UnixStream::from_socket(Socket::from_nonblocking(net::UnixStream::from(fd)));
        if in_progress {
            // Only after `EINTR`, which a connect that does not sleep
            // should never see; wait for the end as TCP does.
            stream.socket.wait(Interest::Write, None)?;
            if let Some(err) = stream.take_error()? {
                return Err(err);
            }
        }
        Ok(stream)
    }

    /// Creates a pair of connected sockets.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = net::UnixStream::pair()?;
        Ok((UnixStream::from_accepted(a)?, UnixStream::from_accepted(b)?))
    }

    /// The address of the local end.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }

    /// The address of the remote end.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().peer_addr()
    }

    /// Shuts down the read half, the write half or both. After
    /// `Shutdown::Write` the peer reads end-of-file but can still send.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.get_ref().shutdown(how)
    }

    /// Bounds every later read call to `timeout`; `None` waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }

    /// Bounds every later write call to `timeout`; `None` waits forever.
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

    /// Chooses whether reads and writes wait (the default) or return
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

    /// Creates a second handle to the same connection (a duplicated
    /// descriptor), with a copy of this handle's timeouts and mode.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream::from_socket(self.socket.try_clone(net::UnixStream::try_clone)?))
    }
}

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read_with(|stream| sys::recv(stream.as_fd(), buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.socket.read_with(|mut stream| stream.read_vectored(bufs))
    }
}

impl Write for &UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Flags 0, as `std` writes a Unix stream (with `write`).
        self.socket.write_with(|stream| sys::send(stream.as_fd(), buf, 0))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.socket.write_with(|mut stream| stream.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
