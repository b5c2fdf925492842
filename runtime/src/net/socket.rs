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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::net::backoff::Backoff;
use crate::net::io::{FdOwner, IoSource};
use crate::net::sys;
use crate::reactor::Interest;

/// A non-blocking `std` socket with its readiness, timeouts and mode.
pub(crate) struct Socket<S: FdOwner> {
    /// The `std` socket (which owns the descriptor, always `O_NONBLOCK`)
    /// with its registration; it deregisters before the descriptor closes.
    source: IoSource<S>,
    /// Read timeout in nanoseconds; 0 for none.
    read_timeout: AtomicU64,
    /// Write timeout in nanoseconds; 0 for none.
    write_timeout: AtomicU64,
    /// Set by `set_nonblocking(true)`: operations return `WouldBlock`
    /// instead of waiting.
    nonblocking: AtomicBool,
}

impl<S: FdOwner> Socket<S> {
    /// Wraps `inner`, switching its descriptor to non-blocking mode.
    pub(crate) fn new(inner: S) -> io::Result<Socket<S>> {
        sys::set_nonblocking(inner.as_fd(), true)?;
        Ok(Socket::from_nonblocking(inner))
    }

    /// Wraps `inner`, whose descriptor is already non-blocking.
    pub(crate) fn from_nonblocking(inner: S) -> Socket<S> {
        Socket {
            source: IoSource::new(inner),
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
    #[inline]
    pub(crate) fn get_ref(&self) -> &S {
        self.source.get_ref()
    }

    /// Unwraps the `std` socket, still in non-blocking mode (and no longer
    /// registered with any reactor).
    pub(crate) fn into_inner(self) -> S {
        self.source.into_inner()
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
        let copy = Socket::from_nonblocking(clone(self.get_ref())?);
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
            return op(self.get_ref());
        }
        self.source.io(Interest::Read, self.read_timeout(), op)
    }

    /// [`Socket::read_with`] for a read of `len` bytes from a TCP stream,
    /// where `op` returns the count read: after a read that came back short,
    /// the next one waits for new data first (see `IoSource::read_stream`).
    ///
    /// Only for TCP. A Unix stream read may also stop short at a message
    /// that carries credentials or descriptors, with data after it that no
    /// new event announces. A TCP read stops short of what is queued only
    /// at an urgent-data mark (`MSG_OOB`, which the runtime's sockets never
    /// send): then the rest waits for the peer's next segment or the read
    /// timeout, as in tokio.
    pub(crate) fn read_stream_with(
        &self,
        len: usize,
        op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.is_nonblocking() {
            return self.read_with(op);
        }
        self.source.read_stream(self.read_timeout(), len, op)
    }

    /// Runs a write-side `op` (write, send) until it does not fail with
    /// `WouldBlock`, waiting for writability in between, for at most the
    /// write timeout.
    pub(crate) fn write_with<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        if self.is_nonblocking() {
            return op(self.get_ref());
        }
        self.source.io(Interest::Write, self.write_timeout(), op)
    }

    /// Like [`Socket::write_with`], but pauses with [`Backoff`] instead of
    /// waiting for writability, for sends whose readiness the socket does
    /// not report (see the `backoff` module).
    pub(crate) fn write_with_backoff<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        let deadline = deadline_after(self.write_timeout());
        let mut backoff = Backoff::new();
        loop {
            match op(self.get_ref()) {
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

    /// Sets the read timeout; `None` waits forever, and so does a timeout
    /// over 584 years (see [`encode_timeout`]).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout.store(encode_timeout(timeout)?, Ordering::Relaxed);
        Ok(())
    }

    /// Sets the write timeout; `None` waits forever, and so does a timeout
    /// over 584 years (see [`encode_timeout`]).
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

/// Stores a timeout as nanoseconds, 0 meaning none.
///
/// A timeout too long for 64 bits of nanoseconds (over 584 years, e.g.
/// `Duration::MAX`) is stored as none: it could never expire. `std` reads
/// `Duration::MAX` back as `None` too (the kernel stores a timeout of more
/// than about 290 million years as "forever").
///
/// # Errors
///
/// `InvalidInput` for a zero duration, as `std` does.
fn encode_timeout(timeout: Option<Duration>) -> io::Result<u64> {
    match timeout {
        None => Ok(0),
        Some(timeout) if timeout.is_zero() => {
            Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"))
        }
        Some(timeout) => Ok(u64::try_from(timeout.as_nanos()).unwrap_or(0)),
    }
}

/// The range of values the kernel accepts for a time-to-live option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ttl {
    /// `IP_TTL`: 1 to 255 hops.
    Unicast,
    /// `IP_MULTICAST_TTL`: 0 (this host only) to 255 hops.
    Multicast,
}

/// Checks a time-to-live before it is passed to the kernel as a C `int`.
///
/// `std` converts the `u32` with `as`, so `u32::MAX` arrives as `-1`, which
/// the kernel takes as "reset to the default": `set_ttl(u32::MAX)` would
/// succeed and set 64. Every value outside the range is rejected here
/// instead, with the error kind the kernel gives the others.
///
/// # Errors
///
/// `InvalidInput` naming the option and its range.
pub(crate) fn check_ttl(ttl: u32, kind: Ttl) -> io::Result<u32> {
    let (option, min) = match kind {
        Ttl::Unicast => ("IP_TTL", 1),
        Ttl::Multicast => ("IP_MULTICAST_TTL", 0),
    };
    if (min..=255).contains(&ttl) {
        return Ok(ttl);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{option} must be between {min} and 255 hops, not {ttl} (64 is the usual default)"),
    ))
}

/// The inverse of [`encode_timeout`].
fn decode_timeout(nanos: u64) -> Option<Duration> {
    (nanos != 0).then(|| Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_trip_and_zero_is_refused() {
        for timeout in
            [Duration::from_nanos(1), Duration::from_millis(1500), Duration::from_secs(86_400 * 365)]
        {
            assert_eq!(decode_timeout(encode_timeout(Some(timeout)).unwrap()), Some(timeout));
        }
        assert_eq!(decode_timeout(encode_timeout(None).unwrap()), None);
        let err = encode_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_timeout_past_64_bits_of_nanoseconds_never_expires() {
        let longest = Duration::from_nanos(u64::MAX);
        assert_eq!(decode_timeout(encode_timeout(Some(longest)).unwrap()), Some(longest));
        for endless in [longest + Duration::from_nanos(1), Duration::from_secs(u64::MAX), Duration::MAX] {
            assert_eq!(decode_timeout(encode_timeout(Some(endless)).unwrap()), None, "{endless:?}");
        }
    }

    #[test]
    fn ttls_outside_the_kernel_range_are_refused_not_wrapped() {
        assert_eq!(check_ttl(1, Ttl::Unicast).unwrap(), 1);
        assert_eq!(check_ttl(255, Ttl::Unicast).unwrap(), 255);
        assert_eq!(check_ttl(0, Ttl::Multicast).unwrap(), 0);
        for (ttl, kind) in
            [(0, Ttl::Unicast), (256, Ttl::Unicast), (u32::MAX, Ttl::Unicast), (u32::MAX, Ttl::Multicast)]
        {
            let err = check_ttl(ttl, kind).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(&ttl.to_string()), "{err}");
        }
    }
}
