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

use std::io;
use std::os::fd::RawFd;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::cancel;
use crate::park::WakeReason;
use crate::reactor::{self, Interest, Reactor, Registered};
use crate::scheduler::{self, Scheduler};

/// Readiness waiting for one descriptor, owned by the socket that owns the
/// descriptor. Must be dropped before the descriptor is closed (declare it
/// before the std socket in the struct).
#[derive(Debug)]
pub(crate) struct IoSource {
    /// The descriptor waited on.
    fd: RawFd,
    /// The registration with the runtime this socket first waited in.
    registration: Mutex<Option<Registered>>,
}

impl IoSource {
    /// Readiness for `fd`, which must be in non-blocking mode.
    pub(crate) fn new(fd: RawFd) -> IoSource {
        IoSource { fd, registration: Mutex::new(None) }
    }

    /// Runs `op` until it does not fail with `WouldBlock`, waiting for
    /// `interest` in between; gives up with `TimedOut` after `timeout`.
    pub(crate) fn io<R>(
        &self,
        interest: Interest,
        timeout: Option<Duration>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            match op() {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.wait(interest, deadline)?,
                result => return result,
            }
        }
    }

    /// Waits until the descriptor may be ready for `interest`.
    ///
    /// # Errors
    ///
    /// `TimedOut` once `deadline` passes; a cancellation error (see
    /// [`crate::is_cancelled`]) if the coroutine is cancelled; an error if
    /// the socket is registered with another runtime.
    pub(crate) fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        if !scheduler::in_coroutine() {
            return poll_blocking(self.fd, interest, deadline);
        }
        let reason = Scheduler::with(|s| -> io::Result<WakeReason> {
            let key = self.key_in(&s.reactor)?;
            Ok(s.reactor.wait(key, interest, deadline))
        })
        .expect("in_coroutine implies a runtime")?;
        match reason {
            WakeReason::Ready => Ok(()),
            WakeReason::TimedOut => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "green: operation timed out"))
            }
            WakeReason::Cancelled => Err(cancel::cancelled_error()),
        }
    }
}

impl IoSource {
    /// The descriptor's poller key in `reactor`, registering it there on
    /// first use. A registration left by a runtime that has ended is
    /// replaced; one held by a runtime that is still running elsewhere is an
    /// error.
    fn key_in(&self, reactor: &Reactor) -> io::Result<usize> {
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
        if let Some(stale) = slot.take() {
            reactor::deregister_remote(self.fd, &stale);
        }
        let registered = reactor.register(self.fd)?;
        let key = registered.key();
        *slot = Some(registered);
        Ok(key)
    }
}

impl Drop for IoSource {
    fn drop(&mut self) {
        let registration = self.registration.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        let Some(registered) = registration else { return };
        let local = Scheduler::with(|s| {
            if s.reactor.id() == registered.runtime() {
                s.reactor.deregister(self.fd, &registered);
                true
            } else {
                false
            }
        });
        if local != Some(true) {
            reactor::deregister_remote(self.fd, &registered);
        }
    }
}

/// Blocks the thread in `poll(2)` until `fd` is ready for `interest` or
/// `deadline` passes.
fn poll_blocking(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
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
        let mut pollfd = libc::pollfd { fd, events, revents: 0 };
        // SAFETY: `pollfd` is valid for the call and describes one entry.
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
