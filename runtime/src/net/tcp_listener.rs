//! [`TcpListener`]: `std::net::TcpListener` for coroutines.

use std::io;
use std::iter::FusedIterator;
use std::net::{self, SocketAddr};
use std::os::fd::AsFd;

use crate::net::TcpStream;
use crate::net::accept::{self, ShortageLog};
use crate::net::addr::{self, ToSocketAddrs};
use crate::net::convert::socket_conversions;
use crate::net::socket::{self, Socket, Ttl};
use crate::net::sys::{self, RawAddr};

/// A TCP socket server, listening for connections.
///
/// The API of [`std::net::TcpListener`]: [`accept`](TcpListener::accept)
/// and [`incoming`](TcpListener::incoming) park the calling coroutine
/// until a connection arrives (on a plain thread they block the thread).
///
/// If the process runs out of file descriptors (`EMFILE`), `accept` does
/// not fail: it prints one line to stderr, pauses with exponential backoff
/// (1 ms up to 100 ms) and retries, so the server goes on serving once
/// connections close. Connections that fail while queued
/// (`ECONNABORTED`, ...) are skipped silently.
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
///     let client = green::spawn(move || -> std::io::Result<String> {
///         let mut stream = TcpStream::connect(addr)?;
///         let mut reply = String::new();
///         stream.read_to_string(&mut reply)?;
///         Ok(reply)
///     });
///     let (mut stream, _peer) = listener.accept()?;
///     stream.write_all(b"hello")?;
///     drop(stream);
///     assert_eq!(client.join().unwrap()?, "hello");
///     Ok(())
/// }).unwrap();
/// ```
pub struct TcpListener {
    /// The `std` listener, non-blocking, with its readiness.
    socket: Socket<net::TcpListener>,
    /// Whether the current descriptor shortage has been reported.
    shortage: ShortageLog,
}

socket_conversions!(TcpListener, net::TcpListener);

impl TcpListener {
    fn from_socket(socket: Socket<net::TcpListener>) -> TcpListener {
        TcpListener { socket, shortage: ShortageLog::default() }
    }

    /// Creates a listener bound to `addr`, trying each address it resolves
    /// to in turn.
    ///
    /// Like `std`, the socket has `SO_REUSEADDR` set, so a server can be
    /// restarted at once. The accept queue is as long as the system allows
    /// (`net.core.somaxconn`), so that bursts of connections are not
    /// dropped while the accepting coroutine is busy.
    ///
    /// # Errors
    ///
    /// The last address's error (address in use, permission denied, ...),
    /// or `InvalidInput` if `addr` resolves to nothing.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        addr::each_addr(addr, |addr| TcpListener::bind_one(addr, false))
    }

    /// Like [`bind`](TcpListener::bind), with `SO_REUSEPORT` set too: any
    /// number of listeners of this process (of the same user) may bind the
    /// same address, and the kernel spreads incoming connections over them.
    /// That is the thread-per-core server: each worker of a runtime
    /// ([`green::Builder::workers`](crate::Builder::workers)) binds its own
    /// listener and accepts on it, so connections never cross workers.
    /// (The other shape is one listener whose accept loop hands each
    /// connection to [`spawn_distributed`](crate::spawn_distributed).)
    ///
    /// # Errors
    ///
    /// As `bind`; also `AddrInUse` if a listener without `SO_REUSEPORT`
    /// (or of another user) holds the address.
    ///
    /// ```
    /// green::run(|| -> std::io::Result<()> {
    ///     let first = green::net::TcpListener::bind_reuse_port("127.0.0.1:0")?;
    ///     let second = green::net::TcpListener::bind_reuse_port(first.local_addr()?)?;
    ///     assert_eq!(first.local_addr()?, second.local_addr()?);
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn bind_reuse_port<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        addr::each_addr(addr, |addr| TcpListener::bind_one(addr, true))
    }

    /// Binds one address, with `SO_REUSEPORT` if `reuse_port`.
    fn bind_one(addr: &SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
        let fd = sys::new_socket(sys::domain_of(addr), libc::SOCK_STREAM)?;
        sys::set_int_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if reuse_port {
            sys::set_int_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        }
        sys::bind(fd.as_fd(), &RawAddr::from_inet(addr))?;
        sys::listen(fd.as_fd(), -1)?;
        Ok(TcpListener::from_socket(Socket::from_nonblocking(net::TcpListener::from(fd))))
    }

    /// Accepts a new connection, parking until one arrives.
    ///
    /// The stream is created non-blocking and close-on-exec by
    /// `accept4(2)`, in one system call.
    ///
    /// # Errors
    ///
    /// A cancellation error (see [`crate::is_cancelled`]) if the coroutine
    /// is cancelled while it waits; `WouldBlock` in non-blocking mode when
    /// no connection is queued; other errors of `accept(2)` except those
    /// the type documentation says are retried.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, peer) =
            accept::accept(&self.socket, &self.shortage, describe, |listener| sys::accept(listener.as_fd()))?;
        Ok((TcpStream::from_connected(net::TcpStream::from(fd)), peer))
    }

    /// An endless iterator over the connections as they arrive; each item
    /// is what [`accept`](TcpListener::accept) returns, without the peer
    /// address.
    ///
    /// ```no_run
    /// use std::io::Write;
    /// green::run(|| -> std::io::Result<()> {
    ///     let listener = green::net::TcpListener::bind("127.0.0.1:8080")?;
    ///     for stream in listener.incoming() {
    ///         let mut stream = stream?;
    ///         green::spawn(move || stream.write_all(b"hello\n"));
    ///     }
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }

    /// Sets `IP_TTL`, the time-to-live of packets sent from accepted
    /// sockets.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a `ttl` outside 1..=255, also for `u32::MAX`,
    /// which `std` passes on as `-1` and so resets the default instead.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.socket.get_ref().set_ttl(socket::check_ttl(ttl, Ttl::Unicast)?)
    }

    /// Gets `IP_TTL`; see [`set_ttl`](TcpListener::set_ttl).
    pub fn ttl(&self) -> io::Result<u32> {
        self.socket.get_ref().ttl()
    }

    /// Takes the pending error of the socket (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket.get_ref().take_error()
    }

    /// Creates a second handle to the same listener (a duplicated
    /// descriptor). It starts in the same blocking mode and then keeps its
    /// own. Use it to accept in a runtime on another thread: a socket waits
    /// in the runtime where it first waited.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener::from_socket(self.socket.try_clone(net::TcpListener::try_clone)?))
    }

    /// Chooses whether `accept` waits for a connection (the default) or
    /// returns `WouldBlock` when none is queued.
    ///
    /// The descriptor is always non-blocking at the OS level, so this is
    /// never needed to keep a thread from blocking; it exists for code that
    /// polls for connections, as with `std`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.socket.set_nonblocking(nonblocking);
        Ok(())
    }
}

/// Names the listener in the descriptor-shortage message.
fn describe(listener: &net::TcpListener) -> String {
    match listener.local_addr() {
        Ok(addr) => addr.to_string(),
        Err(_) => String::from("a TCP listener"),
    }
}

/// The iterator returned by [`TcpListener::incoming`]: accepts connections
/// forever, never returning `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    /// The listener accepting the connections.
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

impl FusedIterator for Incoming<'_> {}
