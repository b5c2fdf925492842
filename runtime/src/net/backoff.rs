//! [`Backoff`]: waiting out a shortage that no descriptor will report.
//!
//! Most waits in `net` are for readiness, which epoll announces. A few
//! conditions have no readiness event to wait for:
//!
//! * `accept` failing with `EMFILE`/`ENFILE`: the connection stays queued
//!   and the listener stays readable, but nothing says when a descriptor
//!   frees up. Retrying at once would spin at 100% CPU.
//! * a Unix `connect` finding the listener's backlog full (`EAGAIN`): the
//!   kernel would make a blocking connect sleep on the *listener's* queue,
//!   which the client's descriptor cannot be polled for.
//! * a Unix datagram `send_to` finding the receiver's queue full: the
//!   sending socket itself stays writable.
//!
//! For these the caller sleeps 1 ms, then 2, 4, ... up to 100 ms between
//! tries. Inside a coroutine only the coroutine sleeps; on a plain thread
//! the thread does.
//!
//! The wait parks directly rather than through [`crate::sleep`] because a
//! cancelled coroutine must stop retrying: `sleep` returns quietly on
//! cancellation, which would turn the retry loop into a busy loop while the
//! runtime shuts down. Here cancellation is an error.

use std::io;
use std::time::{Duration, Instant};

use crate::cancel;
use crate::context;
use crate::dump::kind::WaitKind;
use crate::park;
use crate::task::cell::ParkSite;
use crate::task::state::WakeReason;

/// The first pause.
const FIRST_DELAY: Duration = Duration::from_millis(1);
/// The longest pause: how late, at worst, a retry notices that the
/// shortage is over.
const MAX_DELAY: Duration = Duration::from_millis(100);

/// Exponentially growing pauses between retries of one operation.
#[derive(Debug)]
pub(crate) struct Backoff {
    /// The next pause.
    delay: Duration,
}

impl Backoff {
    /// A backoff whose first pause is [`FIRST_DELAY`].
    pub(crate) fn new() -> Backoff {
        Backoff { delay: FIRST_DELAY }
    }

    /// Pauses for the current delay (cut short at `deadline`) and doubles
    /// it for next time.
    ///
    /// # Errors
    ///
    /// `TimedOut` if `deadline` has passed when the pause would begin; a
    /// cancellation error (see [`crate::is_cancelled`]) if the coroutine is
    /// cancelled while it pauses.
    pub(crate) fn pause(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let now = Instant::now();
        if deadline.is_some_and(|deadline| deadline <= now) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "green: operation timed out"));
        }
        let pause_end = now + self.delay;
        let wake = deadline.map_or(pause_end, |deadline| deadline.min(pause_end));
        self.delay = (self.delay * 2).min(MAX_DELAY);
        if !context::in_coroutine() {
            std::thread::sleep(wake.saturating_duration_since(now));
            return Ok(());
        }
        loop {
            match park::park(Some(wake), ParkSite::of(WaitKind::Backoff)) {
                WakeReason::TimedOut => return Ok(()),
                WakeReason::Cancelled => return Err(cancel::cancelled_error()),
                // A stray wake-up from an earlier wait: keep pausing.
                WakeReason::Ready if Instant::now() < wake => continue,
                WakeReason::Ready => return Ok(()),
            }
        }
    }
}
