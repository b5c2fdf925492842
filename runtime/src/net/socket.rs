//! [`Socket`]: a `std` socket in non-blocking mode plus what every green
//! socket adds to it.
//!
//! Each public socket type (`TcpStream`, `UdpSocket`, `UnixListener`, ...)
//! is a `Socket` around its `std` counterpart. `std` does the socket
//! options, the addresses and the system calls; `Socket` turns the
//! `WouldBlock` those calls return into a wait (see [`IoSource`]), and
//! keeps the two settings that `std` stores in the kernel but that cannot
//! live there for a socket that is always non-blocking:
//!
//! * **Timeouts.** `SO_RCVTIMEO`/`SO_SNDTIMEO` only apply to blocking
//!   calls, so the read and write timeouts are kept here and enforced by
//!   the wait, which fails with `ErrorKind::TimedOut` (the kind `std`
//!   reports as `WouldBlock` on Unix; `TimedOut` says what happened).
//! * **Non-blocking mode.** `set_nonblocking(true)` is remembered here: the
//!   descriptor is non-blocking either way, and the flag only decides
//!   whether `WouldBlock` is waited out or handed to the caller.
//!
//! Both are atomics, so the socket types stay `Send` and `Sync` and can be
//! shared like `std`'s. Unlike `std`'s, they belong to one handle: a
//! `try_clone` starts with a copy of the settings and keeps its own.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::net::IoSource;
use crate::net::backoff::Backoff;
use crate::net::sys;
use crate::reactor::Interest;

/// A non-blocking `std` socket with its readiness, timeouts and mode.
pub(crate) struct Socket<S: AsFd> {
    /// Waits for the descriptor's readiness. Declared first so that it is
    /// dropped (and the descriptor removed from the reactor) before `inner`
    /// closes the descriptor.
    source: IoSource,
    /// The `std` socket; owns the descriptor, which is always `O_NONBLOCK`.
    inner: S,
    /// Read timeout in nanoseconds; 0 for none.
    read_timeout: AtomicU64,
    /// Write timeout in nanoseconds; 0 for none.
    write_timeout: AtomicU64,
    /// Set by `set_nonblocking(true)`: operations return `WouldBlock`
    /// instead of waiting.
    nonblocking: AtomicBool,
}

impl<S: AsFd> Socket<S> {
    /// Wraps `inner`, switching its descriptor to non-blocking mode.
    pub(crate) fn new(inner: S) -> io::Result<Socket<S>> {
        sys::set_nonblocking(inner.as_fd(), true)?;
        Ok(Socket::from_nonblocking(inner))
    }

    /// Wraps `inner`, whose descriptor is already non-blocking.
    pub(crate) fn from_nonblocking(inner: S) -> Socket<S> {
        Socket {
            source: IoSource::new(inner.as_fd().as_raw_fd()),
            inner,
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
            nonblocking: AtomicBool::new(false),
        }
    }

    /// Wraps `inner` for an infallible conversion (`From`, `FromRawFd`).
    ///
    /// Switching an open socket to non-blocking mode (`ioctl(FIONBIO)`)
    /// does not fail on Linux; if it ever did, operations would block the
    /// thread instead of the coroutine, which is slower but still correct,
    /// so the error is not worth a panic.
    pub(crate) fn adopt(inner: S) -> Socket<S> {
        let _ = sys::set_nonblocking(inner.as_fd(), true);
        Socket::from_nonblocking(inner)
    }

    /// The `std` socket, for options and addresses.
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the `std` socket, still in non-blocking mode.
    pub(crate) fn into_inner(self) -> S {
        let Socket { source, inner, .. } = self;
        drop(source); // deregister while the descriptor is still open
        inner
    }

    /// Unwraps the `std` socket and puts it back in blocking mode, as a
    /// `std` user expects. Shares the reasoning of [`Socket::adopt`]: the
    /// switch does not fail for an open socket.
    pub(crate) fn into_blocking(self) -> S {
        let inner = self.into_inner();
        let _ = sys::set_nonblocking(inner.as_fd(), false);
        inner
    }

    /// A second handle to the same socket: `clone` duplicates the `std`
    /// socket (the copy shares `O_NONBLOCK`); the settings are copied.
    pub(crate) fn try_clone(&self, clone: impl FnOnce(&S) -> io::Result<S>) -> io::Result<Socket<S>> {
        let copy = Socket::from_nonblocking(clone(&self.inner)?);
        copy.read_timeout.store(self.read_timeout.load(Ordering::Relaxed), Ordering::Relaxed);
        copy.write_timeout.store(self.write_timeout.load(Ordering::Relaxed), Ordering::Relaxed);
        copy.nonblocking.store(self.nonblocking.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(copy)
    }

    /// Runs a read-side `op` (read, recv, accept, peek) until it does not
    /// fail with `WouldBlock`, waiting for readability in between, for at
    /// most the read timeout.
    pub(crate) fn read_with<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        if self.is_nonblocking() {
            return op(&self.inner);
        }
        self.source.io(Interest::Read, self.read_timeout(), || op(&self.inner))
    }

    /// Runs a write-side `op` (write, send) until it does not fail with
    /// `WouldBlock`, waiting for writability in between, for at most the
    /// write timeout.
    pub(crate) fn write_with<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        if self.is_nonblocking() {
            return op(&self.inner);
        }
        self.source.io(Interest::Write, self.write_timeout(), || op(&self.inner))
    }

    /// Like [`Socket::write_with`], but pauses with [`Backoff`] instead of
    /// waiting for writability, for sends whose readiness the socket does
    /// not report (see the `backoff` module).
    pub(crate) fn write_with_backoff<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let deadline = deadline_after(self.write_timeout());
        let mut backoff = Backoff::new();
        loop {
            match op(&self.inner) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock && !self.is_nonblocking() => {
                    backoff.pause(deadline)?;
                }
                result => return result,
            }
        }
    }

    /// Waits once for `interest` until `deadline` (for connect, which is
    /// not an operation to retry).
    pub(crate) fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        self.source.wait(interest, deadline)
    }

    /// Whether `set_nonblocking(true)` is in force.
    pub(crate) fn is_nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    /// See the module documentation.
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
    }

    /// Sets the read timeout; `None` waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout.store(encode_timeout(timeout)?, Ordering::Relaxed);
        Ok(())
    }

    /// Sets the write timeout; `None` waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.write_timeout.store(encode_timeout(timeout)?, Ordering::Relaxed);
        Ok(())
    }

    /// The read timeout.
    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        decode_timeout(self.read_timeout.load(Ordering::Relaxed))
    }

    /// The write timeout.
    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        decode_timeout(self.write_timeout.load(Ordering::Relaxed))
    }
}

/// The instant `timeout` from now; `None` if there is no timeout or it
/// reaches past what `Instant` can represent (then it is never reached).
pub(crate) fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|timeout| Instant::now().checked_add(timeout))
}

/// Stores a timeout as nanoseconds, 0 meaning none. Timeouts longer than
/// 584 years are cut to that.
fn encode_timeout(timeout: Option<Duration>) -> io::Result<u64> {
    match timeout {
        None => Ok(0),
        Some(timeout) if timeout.is_zero() => {
            Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"))
        }
        Some(timeout) => Ok(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX)),
    }
}

/// The inverse of [`encode_timeout`].
fn decode_timeout(nanos: u64) -> Option<Duration> {
    (nanos != 0).then(|| Duration::from_nanos(nanos))
}
