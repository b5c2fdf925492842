//! [`IoSource`]: the blocking-style I/O loop every socket type shares.
//!
//! Every socket is non-blocking at the OS level. An operation is tried
//! once; on `EAGAIN` the caller waits for readiness and tries again:
//!
//! * inside a coroutine, by parking it on the runtime's reactor (the
//!   descriptor is registered with that runtime at its first wait);
//! * on a plain thread, by blocking the thread in `poll(2)`, so the socket
//!   behaves like its `std` counterpart.
//!
//! A socket may be moved to another thread (the types are `Send` and
//! `Sync`, like std's). It stays registered with the runtime it first
//! waited in; waiting on it from a coroutine of a different runtime is an
//! error that says so (use `try_clone` to get a descriptor of its own).
//!
//! # Ownership
//!
//! An `IoSource<S>` owns the socket `S` and with it the descriptor. That
//! is what makes registering with the reactor safe to do from safe code
//! (an `unsafe` operation: the descriptor must leave the epoll set before
//! it closes): the descriptor cannot close while the `IoSource` exists, and
//! the `IoSource` deregisters before it lets the socket go, in `Drop`
//! (which runs before the fields are dropped) and in `into_inner`. `S` is
//! an [`FdOwner`], a type that holds one descriptor for its whole life, so
//! the descriptor deregistered is the one registered.

use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::ptr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::cancel;
use crate::context::Context;
use crate::dump::kind::WaitKind;
use crate::park;
use crate::reactor::{self, Interest, Reactor, Registered};
use crate::task::cell::ParkSite;
use crate::task::cell::Waker;
use crate::task::state::WakeReason;

/// A value that owns one descriptor for its whole life: the `std` socket
/// types an [`IoSource`] holds.
///
/// # Safety
///
/// `as_fd` names the same descriptor every time it is called on one value,
/// and the value closes that descriptor only when it is dropped (or gives
/// it away by being consumed). [`IoSource`] relies on this to delete from
/// the poller the descriptor it registered, while it is still open.
pub(crate) unsafe trait FdOwner: AsFd {}

/// Implements [`FdOwner`] for `std` socket types.
macro_rules! fd_owner {
    ($($socket:ty),*) => {
        $(
            // SAFETY: each std socket wraps one `OwnedFd`, set at creation, never replaced (no API swaps it)
            // and closed only by its destructor, when the socket is dropped or consumed; `as_fd` borrows it:
            // one descriptor for the value's whole life, as `FdOwner` requires.
            unsafe impl FdOwner for $socket {}
        )*
    };
}

fd_owner!(
    std::net::TcpStream,
    std::net::TcpListener,
    std::net::UdpSocket,
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixListener,
    std::os::unix::net::UnixDatagram
);

/// A socket with its readiness: the socket `S` (which owns the descriptor)
/// and its registration with the runtime it first waited in.
pub(crate) struct IoSource<S: FdOwner> {
    /// The registration with the runtime this socket first waited in;
    /// `None` until the first wait inside a coroutine.
    registration: Mutex<Option<Registered>>,
    /// The socket. It keeps the descriptor open for as long as the
    /// registration exists: `Drop` and `into_inner` deregister first.
    inner: S,
}

impl<S: FdOwner> IoSource<S> {
    /// Takes ownership of `inner`, whose descriptor must be in
    /// non-blocking mode (a blocking one would block the thread in the
    /// first operation). Registers nothing yet.
    pub(crate) fn new(inner: S) -> IoSource<S> {
        IoSource { registration: Mutex::new(None), inner }
    }

    /// The socket.
    #[inline]
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Deregisters the descriptor and gives the socket back, still open.
    pub(crate) fn into_inner(self) -> S {
        let mut source = ManuallyDrop::new(self);
        source.deregister();
        // SAFETY: `source` is a `ManuallyDrop` never dropped, so no destructor runs on its fields, and
        // this is the only read of `registration`: the bitwise copy is its sole owner, dropped once here
        // (it holds `None` after `deregister`).
        drop(unsafe { ptr::read(&source.registration) });
        // SAFETY: `source` is a `ManuallyDrop` never dropped, so no destructor runs on its fields, and
        // this is the only read of `inner`: the returned socket is its sole owner, and its descriptor is
        // closed once, by whoever drops it.
        unsafe { ptr::read(&source.inner) }
    }

    /// Runs `op` until it does not fail with `WouldBlock`, waiting for
    /// `interest` in between; gives up with `TimedOut` after `timeout`.
    #[inline]
    pub(crate) fn io<R>(
        &self,
        interest: Interest,
        timeout: Option<Duration>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            match op(&self.inner) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.wait(interest, deadline)?,
                result => {
                    Context::with(spend_budget);
                    return result;
                }
            }
        }
    }

    /// [`IoSource::io`] for a read of a stream socket of `len` bytes, where
    /// `op` returns the count read: a count short of `len` (but not 0, the
    /// end of the stream, which every later read must see again) means the
    /// socket's receive queue was empty when the read returned, so the next
    /// read waits for the next readable event first instead of failing with
    /// `EAGAIN` (see [`Reactor::mark_drained`]).
    pub(crate) fn read_stream(
        &self,
        timeout: Option<Duration>,
        len: usize,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        if self.drained() {
            self.wait(Interest::Read, deadline)?;
        }
        loop {
            match op(&self.inner) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.wait(Interest::Read, deadline)?,
                result => {
                    if let Ok(read) = result
                        && read > 0
                        && read < len
                    {
                        // Before the budget's yield: no poll may run
                        // between the read and the mark.
                        self.mark_drained();
                    }
                    Context::with(spend_budget);
                    return result;
                }
            }
        }
    }

    /// Whether the last read in this thread's runtime drained the
    /// descriptor and no readable event has come since.
    fn drained(&self) -> bool {
        Context::with(|cx| {
            if !cx.has_current() {
                return false;
            }
            let slot = self.registration.lock().unwrap_or_else(PoisonError::into_inner);
            slot.as_ref()
                .is_some_and(|r| r.runtime() == cx.reactor.id() && !cx.reactor.may_be_readable(r.key()))
        })
        .unwrap_or(false)
    }

    /// Marks the descriptor drained in this thread's runtime, if it is
    /// registered there.
    fn mark_drained(&self) {
        Context::with(|cx| {
            let slot = self.registration.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(registered) = slot.as_ref().filter(|r| r.runtime() == cx.reactor.id()) {
                cx.reactor.mark_drained(registered.key());
            }
        });
    }

    /// Waits until the descriptor may be ready for `interest`: inside a
    /// coroutine on the runtime's reactor, elsewhere in `poll(2)`.
    ///
    /// # Errors
    ///
    /// `TimedOut` once `deadline` passes; a cancellation error (see
    /// [`crate::is_cancelled`]) if the coroutine is cancelled; an error if
    /// the socket is registered with another runtime, or cannot be
    /// registered with this one.
    pub(crate) fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        let parked = Context::with(|cx| -> Option<io::Result<WakeReason>> {
            if !cx.has_current() {
                return None; // the scheduler loop itself, e.g. a destructor at shutdown
            }
            let fd = self.inner.as_fd().as_raw_fd();
            Some(self.key_in(&cx.reactor).map(|key| park_on(cx, key, fd, interest, deadline)))
        });
        let Some(parked) = parked.flatten() else {
            return poll_blocking(self.inner.as_fd(), interest, deadline);
        };
        match parked? {
            WakeReason::Ready => Ok(()),
            WakeReason::TimedOut => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "green: operation timed out"))
            }
            WakeReason::Cancelled => Err(cancel::cancelled_error()),
        }
    }

    /// The descriptor's poller key in `reactor`, registering it there on
    /// first use. A registration left by a runtime that has ended is
    /// replaced; one held by a runtime that is still running elsewhere is an
    /// error.
    fn key_in(&self, reactor: &Reactor<Waker>) -> io::Result<usize> {
        let mut slot = self.registration.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some(registered) if registered.runtime() == reactor.id() => return Ok(registered.key()),
            Some(registered) if registered.is_alive() => {
                return Err(io::Error::other(
                    "green: this socket is registered with the runtime of another thread, which is \
                     still running, and cannot be waited on here; give this runtime its own \
                     descriptor with try_clone()",
                ));
            }
            Some(_) | None => {}
        }
        let fd = self.inner.as_fd();
        if let Some(stale) = slot.take() {
            reactor::deregister_remote(fd, stale);
        }
        // SAFETY: `fd` must stay open until deregistered. It is `self.inner`'s, an `FdOwner` open until
        // dropped; this `IoSource` gives `inner` up only in `Drop` and `into_inner`, which both first pass
        // the registration stored here, with that descriptor, to `deregister` or `deregister_remote`.
        let registered = unsafe { reactor.register(fd)? };
        let key = registered.key();
        *slot = Some(registered);
        Ok(key)
    }

    /// Deletes the descriptor from the poller it is registered with, if
    /// any, while `inner` still holds it open: on the owning runtime's
    /// thread through its reactor (which frees the slot at once), elsewhere
    /// through the reactor's thread-safe part.
    fn deregister(&mut self) {
        let registration = self.registration.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        let Some(registered) = registration else { return };
        let fd = self.inner.as_fd();
        let mut registered = Some(registered);
        Context::with(|cx| {
            if registered.as_ref().is_some_and(|r| r.runtime() == cx.reactor.id())
                && let Some(registered) = registered.take()
            {
                // Its waiters retry, and find the descriptor gone.
                let mut woken = Vec::new();
                cx.reactor.deregister(fd, registered, &mut woken);
                for waker in &woken {
                    park::wake(cx, waker, WakeReason::Ready);
                }
            }
        });
        if let Some(registered) = registered {
            reactor::deregister_remote(fd, registered);
        }
    }
}

/// Counts one operation that completed without waiting against the
/// thread's I/O budget; when the budget is spent, the running coroutine
/// yields (with the operation's result in hand) and the budget starts
/// again.
///
/// # The I/O budget
///
/// A coroutine whose socket always has data (a client that pipelines, a
/// fast peer on loopback) never hits `EAGAIN`, so it would never park and
/// never let the other coroutines of its worker run: one busy connection
/// could starve every other one for as long as it stays busy (tokio's
/// cooperative budget answers the same problem). Every [`IO_BUDGET`]
/// operations completed on a thread without a wait, the coroutine that
/// completes the next one yields. The count is per thread, not per
/// coroutine, so the switch path does not reset it: a coroutine that
/// parks often may be the one that yields, at the cost of one yield per
/// [`IO_BUDGET`] operations, well under 1 ns per operation.
///
/// [`IO_BUDGET`]: crate::net::IO_BUDGET
#[inline]
fn spend_budget(cx: &Context) {
    let left = cx.io_budget.get() - 1;
    if left > 0 {
        cx.io_budget.set(left);
        return;
    }
    cx.io_budget.set(crate::net::IO_BUDGET);
    // At shutdown a yield starts the teardown: the operation's result
    // would be lost with it.
    if !cx.shutting_down.get() {
        park::yield_now(cx);
    }
}

/// Parks the running task of `cx` until the descriptor `fd`, registered as
/// `key`, may be ready for `interest`, `deadline` passes or the task is
/// cancelled: the wait of a read or write that hit `EAGAIN`.
fn park_on(cx: &Context, key: usize, fd: RawFd, interest: Interest, deadline: Option<Instant>) -> WakeReason {
    if !cx.reactor.add_waiter(key, interest, park::waker()) {
        // Deregistered meanwhile: retry, and find the descriptor gone.
        return WakeReason::Ready;
    }
    let kind = match interest {
        Interest::Read => WaitKind::Read,
        Interest::Write => WaitKind::Write,
    };
    // A descriptor is never negative here: it is open.
    let reason = park::park(deadline, ParkSite { kind, object: fd as u64 });
    // After a timeout or cancellation the waker is still listed; after a
    // spurious `Ready` (see `park.rs`, rule 4) it may be too. After a real
    // event the poll has moved it out and this finds nothing.
    let me = park::waker();
    cx.reactor.remove_waiters(key, interest, |waker| waker.same_task(&me));
    reason
}

impl<S: FdOwner> Drop for IoSource<S> {
    /// Deregisters before `inner` is dropped (fields are dropped after this
    /// returns), so the descriptor leaves the epoll set while it is open.
    fn drop(&mut self) {
        self.deregister();
    }
}

impl<S: FdOwner + fmt::Debug> fmt::Debug for IoSource<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoSource")
            .field("inner", &self.inner)
            .field("registration", &self.registration)
            .finish()
    }
}

/// Blocks the thread in `poll(2)` until `fd` is ready for `interest` or
/// `deadline` passes.
fn poll_blocking(fd: BorrowedFd<'_>, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
    let events = match interest {
        Interest::Read => libc::POLLIN,
        Interest::Write => libc::POLLOUT,
    };
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "green: operation timed out"));
                }
                // Round up so that a sub-millisecond remainder still waits.
                left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32
            }
        };
        let mut pollfd = libc::pollfd { fd: fd.as_raw_fd(), events, revents: 0 };
        // SAFETY: `poll` reads and writes `nfds` = 1 `pollfd` through the
        // pointer, which points at `pollfd`, a local that outlives the call;
        // the descriptor in it is open for the call, being borrowed.
        let rc = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
        match rc {
            -1 => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
            0 => continue, // re-check the deadline
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::RawFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    /// The descriptors in the running runtime's epoll set.
    fn registered_fds() -> io::Result<Vec<RawFd>> {
        Context::with(|cx| cx.reactor.registered_fds()).expect("called inside a runtime")
    }

    /// A connected pair, the first end non-blocking and registered with
    /// the running runtime (through a first wait), and a duplicate of its
    /// descriptor. The duplicate keeps the socket open when the first end
    /// closes, so an epoll entry left behind would stay visible.
    fn registered_pair() -> io::Result<(IoSource<UnixStream>, UnixStream, UnixStream)> {
        let (a, b) = UnixStream::pair()?;
        a.set_nonblocking(true)?;
        let dup = a.try_clone()?;
        let source = IoSource::new(a);
        source.wait(Interest::Write, None)?; // writable at once: registers, then returns
        assert!(registered_fds()?.contains(&source.get_ref().as_raw_fd()));
        Ok((source, b, dup))
    }

    #[test]
    fn dropping_a_source_deletes_its_descriptor_from_the_epoll_set() -> io::Result<()> {
        crate::run(|| -> io::Result<()> {
            let (source, _peer, _dup) = registered_pair()?;
            let fd = source.get_ref().as_raw_fd();
            drop(source);
            assert!(!registered_fds()?.contains(&fd), "descriptor {fd} left in the epoll set");
            Ok(())
        })
    }

    #[test]
    fn into_inner_deregisters_and_hands_back_the_open_socket() -> io::Result<()> {
        crate::run(|| -> io::Result<()> {
            let (source, mut peer, _dup) = registered_pair()?;
            let fd = source.get_ref().as_raw_fd();
            let mut socket = source.into_inner();
            assert!(!registered_fds()?.contains(&fd), "descriptor {fd} left in the epoll set");
            socket.write_all(b"still open")?;
            let mut buf = [0; 10];
            peer.read_exact(&mut buf)?;
            assert_eq!(&buf, b"still open");
            Ok(())
        })
    }

    #[test]
    fn a_source_dropped_on_another_thread_leaves_the_epoll_set() -> io::Result<()> {
        crate::run(|| -> io::Result<()> {
            let (source, _peer, _dup) = registered_pair()?;
            let fd = source.get_ref().as_raw_fd();
            std::thread::spawn(move || drop(source))
                .join()
                .map_err(|_| io::Error::other("the dropping thread panicked"))?;
            assert!(!registered_fds()?.contains(&fd), "descriptor {fd} left in the epoll set");
            Ok(())
        })
    }
}
