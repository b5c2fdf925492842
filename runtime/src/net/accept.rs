//! The accept loop both listeners share, and how it survives running out
//! of file descriptors.
//!
//! `accept(2)` fails for three kinds of reasons, handled differently:
//!
//! 1. **A shortage** (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): the
//!    connection stays queued and the listener stays readable, so waiting
//!    for readiness would return at once and the loop would spin at 100%
//!    CPU. Instead the loop pauses with exponential backoff (1 ms doubling
//!    to 100 ms, see [`Backoff`]) and retries until a descriptor is free,
//!    so a server under a descriptor limit slows down instead of failing
//!    or burning CPU. Linux allocates the new descriptor before it looks
//!    at the queue, so a full table fails an `accept` even when nothing is
//!    queued.
//! 2. **A connection that died in the queue** (`ECONNABORTED`, and the
//!    network errors `accept(2)` says to treat like `EAGAIN`: `EPROTO`,
//!    `EPERM`, `ENETDOWN`, ...) or a signal (`EINTR`): the failed call
//!    consumed that connection; the loop retries at once, silently. Should
//!    such errors keep coming (a firewall refusing every connection) the
//!    loop pauses between them as for a shortage, so it cannot spin.
//! 3. Anything else is returned.
//!
//! # One message per shortage
//!
//! When a shortage begins, one line goes to stderr, naming the listener and
//! what to do, e.g.
//!
//! ```text
//! green: accept on 127.0.0.1:8080 failed: too many open files (EMFILE); backing off until descriptors are freed — raise the limit with ulimit -n
//! ```
//!
//! The shortage lasts until the listener has caught up: until an `accept`
//! finds nothing queued (`EAGAIN`, which also proves a descriptor could be
//! allocated). A server that accepts one connection whenever one frees up
//! stays in one shortage and prints nothing more; the next shortage prints
//! again.
//!
//! In non-blocking mode (`set_nonblocking(true)`) every error is returned
//! as it is: the caller asked not to wait.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::net::backoff::Backoff;
use crate::net::io::FdOwner;
use crate::net::socket::Socket;

/// How many per-connection failures in a row are retried at once before
/// the loop starts pausing between them.
const IMMEDIATE_RETRIES: u32 = 16;

/// Remembers whether the listener's current shortage has been reported.
#[derive(Debug, Default)]
pub(crate) struct ShortageLog {
    /// Set when the message has been printed; cleared when the listener
    /// has caught up.
    reported: AtomicBool,
}

impl ShortageLog {
    /// Prints the message for `err` unless this shortage was reported.
    fn report(&self, err: &io::Error, listener: impl FnOnce() -> String) {
        if !self.reported.swap(true, Ordering::Relaxed) {
            eprintln!("{}", shortage_message(err, &listener()));
        }
    }

    /// Ends the current shortage, if any.
    fn end(&self) {
        if self.reported.load(Ordering::Relaxed) {
            self.reported.store(false, Ordering::Relaxed);
        }
    }
}

/// What to do after `accept` failed; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Out of descriptors or memory: pause, then retry.
    Shortage,
    /// One queued connection failed, or a signal arrived: retry.
    Connection,
    /// Report to the caller.
    Fatal,
}

fn classify(err: &io::Error) -> Failure {
    match err.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => Failure::Shortage,
        Some(
            libc::ECONNABORTED
            | libc::EPROTO
            | libc::EPERM
            | libc::EINTR
            | libc::ENETDOWN
            | libc::ENONET
            | libc::EHOSTDOWN
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH,
        ) => Failure::Connection,
        _ => Failure::Fatal,
    }
}

/// The line printed when a shortage begins on `listener`.
fn shortage_message(err: &io::Error, listener: &str) -> String {
    let (what, resource, advice) = match err.raw_os_error() {
        Some(libc::EMFILE) => {
            ("too many open files (EMFILE)", "descriptors are", "raise the limit with ulimit -n")
        }
        Some(libc::ENFILE) => (
            "too many open files in the system (ENFILE)",
            "descriptors are",
            "raise the system-wide limit with sysctl fs.file-max",
        ),
        Some(libc::ENOBUFS) => ("no buffer space for the socket (ENOBUFS)", "memory is", "free memory"),
        _ => ("out of memory (ENOMEM)", "memory is", "free memory"),
    };
    format!("green: accept on {listener} failed: {what}; backing off until {resource} freed — {advice}")
}

/// Accepts one connection on `socket` with `op`, following the module
/// documentation. `describe` names the listener in the shortage message.
pub(crate) fn accept<S: FdOwner, T>(
    socket: &Socket<S>,
    log: &ShortageLog,
    describe: impl Fn(&S) -> String,
    mut op: impl FnMut(&S) -> io::Result<T>,
) -> io::Result<T> {
    let mut backoff = Backoff::new();
    let mut failures_in_a_row = 0;
    loop {
        let accepted = socket.read_with(|listener| {
            let accepted = op(listener);
            if matches!(&accepted, Err(err) if err.kind() == io::ErrorKind::WouldBlock) {
                log.end(); // caught up: nothing queued, and a descriptor was free
            }
            accepted
        });
        let err = match accepted {
            Ok(accepted) => return Ok(accepted),
            Err(err) if socket.is_nonblocking() => return Err(err),
            Err(err) => err,
        };
        match classify(&err) {
            Failure::Shortage => {
                log.report(&err, || describe(socket.get_ref()));
                backoff.pause(None)?;
            }
            Failure::Connection => {
                failures_in_a_row += 1;
                if failures_in_a_row > IMMEDIATE_RETRIES {
                    backoff.pause(None)?;
                }
            }
            Failure::Fatal => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emfile_message_is_one_actionable_line() {
        let message = shortage_message(&io::Error::from_raw_os_error(libc::EMFILE), "127.0.0.1:8080");
        assert_eq!(
            message,
            "green: accept on 127.0.0.1:8080 failed: too many open files (EMFILE); backing off until \
             descriptors are freed — raise the limit with ulimit -n"
        );
    }

    #[test]
    fn errors_are_classified_as_accept_documents() {
        assert_eq!(classify(&io::Error::from_raw_os_error(libc::ENFILE)), Failure::Shortage);
        assert_eq!(classify(&io::Error::from_raw_os_error(libc::ECONNABORTED)), Failure::Connection);
        assert_eq!(classify(&io::Error::from_raw_os_error(libc::EBADF)), Failure::Fatal);
        assert_eq!(classify(&io::Error::other("cancelled")), Failure::Fatal);
    }
}
