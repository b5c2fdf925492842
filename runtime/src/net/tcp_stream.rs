//! [`TcpStream`]: `std::net::TcpStream` for coroutines.
//!
//! # Connecting without blocking the thread
//!
//! `std` connects with a blocking `connect(2)`. Here the socket is created
//! non-blocking, `connect` starts the handshake (`EINPROGRESS`), and the
//! coroutine parks until the socket turns writable. Writable means the
//! handshake has *ended*, not that it succeeded: `SO_ERROR` tells, and a
//! wake-up that arrives before the end (see `park`: a wake-up may be
//! spurious) is recognised by `getpeername` failing with `ENOTCONN`, and
//! waited out again.
//!
//! The descriptor is an `OwnedFd` from the moment it exists, so a connect
//! that fails, times out or is cancelled (its coroutine unwound) closes it.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{self, Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::net::addr::{self, ToSocketAddrs};
use crate::net::convert::socket_conversions;
use crate::net::socket::{self, Socket, Ttl};
use crate::net::sys::{self, Connect, RawAddr};
use crate::reactor::Interest;

/// A TCP connection.
///
/// The API of [`std::net::TcpStream`]. Reads, writes and connects park the
/// calling coroutine until the socket is ready, and the thread runs other
/// coroutines meanwhile; on a plain thread they block the thread.
///
/// [`Read`] and [`Write`] are implemented for `TcpStream` and for
/// `&TcpStream`, so one coroutine can read while another writes through a
/// shared reference. `read_exact`, `write_all` and the rest come from those
/// traits.
///
/// # Timeouts
///
/// [`set_read_timeout`](TcpStream::set_read_timeout) and
/// [`set_write_timeout`](TcpStream::set_write_timeout) bound each read or
/// write call; when one expires the call fails with
/// [`io::ErrorKind::TimedOut`] (where `std` on Unix reports `WouldBlock`).
/// The timeouts belong to this handle: a [`try_clone`](TcpStream::try_clone)
/// starts with a copy and then keeps its own. As with `std`, a zero
/// timeout is refused with `InvalidInput`. One too long to ever expire
/// (over 584 years, e.g. `Duration::MAX`) means no timeout and reads back
/// as `None`, as `std` reads back `Duration::MAX`.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use green::net::{TcpListener, TcpStream};
///
/// green::run(|| -> std::io::Result<()> {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let echo = green::spawn(move || -> std::io::Result<()> {
///         let (mut stream, _) = listener.accept()?;
///         let mut buf = [0; 4];
///         stream.read_exact(&mut buf)?;
///         stream.write_all(&buf)
///     });
///     let mut stream = TcpStream::connect(addr)?;
///     stream.write_all(b"ping")?;
///     let mut reply = [0; 4];
///     stream.read_exact(&mut reply)?;
///     assert_eq!(&reply, b"ping");
///     echo.join().unwrap()
/// }).unwrap();
/// ```
pub struct TcpStream {
    /// The `std` stream, non-blocking, with its readiness and timeouts.
    socket: Socket<net::TcpStream>,
}

socket_conversions!(TcpStream, net::TcpStream);

impl TcpStream {
    fn from_socket(socket: Socket<net::TcpStream>) -> TcpStream {
        TcpStream { socket }
    }

    /// Wraps a connected stream whose descriptor is already non-blocking
    /// (from `accept4`).
    pub(crate) fn from_connected(stream: net::TcpStream) -> TcpStream {
        TcpStream::from_socket(Socket::from_nonblocking(stream))
    }

    /// Opens a connection to `addr`, trying each address it resolves to
    /// in turn, like `std`.
    ///
    /// # Errors
    ///
    /// The last address's error (`ConnectionRefused`, ...); `InvalidInput`
    /// if `addr` resolves to nothing; a cancellation error (see
    /// [`crate::is_cancelled`]) if the coroutine is cancelled meanwhile.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        addr::each_addr(addr, |addr| TcpStream::connect_once(addr, None))
    }

    /// Opens a connection to `addr`, giving up after `timeout`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use green::net::{TcpListener, TcpStream};
    ///
    /// green::run(|| -> std::io::Result<()> {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let stream = TcpStream::connect_timeout(&listener.local_addr()?, Duration::from_secs(5))?;
    ///     assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    ///     Ok(())
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// `TimedOut` after `timeout` (the half-made socket is closed);
    /// `InvalidInput` for a zero `timeout`, as `std` does; otherwise as
    /// [`connect`](TcpStream::connect).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        let deadline = socket::deadline_after(Some(timeout));
        TcpStream::connect_once(addr, deadline)
    }

    /// One connection attempt; see the module documentation.
    fn connect_once(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let fd = sys::new_socket(sys::domain_of(addr), libc::SOCK_STREAM)?;
        let progress = sys::connect(fd.as_fd(), &RawAddr::from_inet(addr))?;
        let stream = TcpStream::from_connected(net::TcpStream::from(fd));
        if progress == Connect::InProgress {
            stream.finish_connect(deadline)?;
        }
        Ok(stream)
    }

    /// Waits for a started handshake to end, and reports how it ended.
    fn finish_connect(&self, deadline: Option<Instant>) -> io::Result<()> {
        loop {
            self.socket.wait(Interest::Write, deadline)?;
            if let Some(err) = self.socket.get_ref().take_error()? {
                return Err(err);
            }
            match self.socket.get_ref().peer_addr() {
                Ok(_) => return Ok(()),
                // Woken before the handshake ended: wait again.
                Err(err) if err.kind() == io::ErrorKind::NotConnected => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// The address of the remote end.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().peer_addr()
    }

    /// The address of the local end.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }

    /// Shuts down the read half, the write half or both; see
    /// [`std::net::TcpStream::shutdown`]. After `Shutdown::Write` the peer
    /// reads end-of-file but can still send.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.get_ref().shutdown(how)
    }

    /// Reads data without removing it from the socket's queue, parking
    /// until some is available.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read_with(|stream| stream.peek(buf))
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm when `true`).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.socket.get_ref().set_nodelay(nodelay)
    }

    /// Gets `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.socket.get_ref().nodelay()
    }

    /// Sets `IP_TTL`, the time-to-live of outgoing packets.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a `ttl` outside 1..=255, also for `u32::MAX`,
    /// which `std` passes on as `-1` and so resets the default instead.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.socket.get_ref().set_ttl(socket::check_ttl(ttl, Ttl::Unicast)?)
    }

    /// Gets `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.socket.get_ref().ttl()
    }

    /// Bounds every later read (and peek) call to `timeout`; `None` waits
    /// forever. See [Timeouts](TcpStream#timeouts).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }

    /// Bounds every later write call to `timeout`; `None` waits forever.
    /// See [Timeouts](TcpStream#timeouts).
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
    /// `WouldBlock` when the socket is not ready. The descriptor is always
    /// non-blocking at the OS level; this decides only whether the wait
    /// happens.
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
    ///
    /// A socket waits in the runtime where it first waited; give a
    /// coroutine of another thread's runtime a handle of its own with this.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream::from_socket(self.socket.try_clone(net::TcpStream::try_clone)?))
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.socket.read_stream_with(len, |stream| sys::recv(stream.as_fd(), buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.socket.read_with(|mut stream| stream.read_vectored(bufs))
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // `MSG_NOSIGNAL`, as `std` sends: a closed peer is `EPIPE`, never
        // `SIGPIPE`.
        self.socket.write_with(|stream| sys::send(stream.as_fd(), buf, libc::MSG_NOSIGNAL))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.socket.write_with(|mut stream| stream.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
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
