//! Sleeping and yielding.

use std::time::{Duration, Instant};

use crate::cancel::Cancelled;
use crate::context::{self, Context};
use crate::dump::kind::WaitKind;
use crate::park;
use crate::task::cell::ParkSite;
use crate::task::state::WakeReason;

/// Puts the calling coroutine to sleep for at least `duration`.
///
/// Only the coroutine sleeps; the thread runs others meanwhile. On a plain
/// thread (outside a runtime) this is [`std::thread::sleep`].
///
/// A duration too long to have a deadline (`Instant::now() + duration`
/// does not fit in an [`Instant`]; `Duration::MAX`, for one) means for
/// ever: the coroutine sleeps until it is cancelled, and a plain thread
/// for good, as with `std::thread::sleep`. No deadline is computed that
/// could overflow. (A coroutine that sleeps for ever while nothing else on
/// its runtime can ever run is a deadlock, and reported as one.)
///
/// # Errors
///
/// [`Cancelled`] if the coroutine is cancelled before the time is up (by
/// [`JoinHandle::cancel`](crate::JoinHandle::cancel), an enclosing
/// [`timeout`](crate::timeout), its group or scope, or runtime shutdown):
/// a sleep is a cancellation point like any blocking call, so that a loop
/// such as `loop { work(); green::sleep(period)?; }` ends when asked to.
/// Also at once on a runtime's thread outside its coroutines (a destructor
/// the runtime runs itself), where sleeping would freeze the runtime.
///
/// ```
/// use std::time::{Duration, Instant};
/// green::run(|| {
///     let start = Instant::now();
///     green::sleep(Duration::from_millis(5)).unwrap();
///     assert!(start.elapsed() >= Duration::from_millis(5));
/// });
/// ```
pub fn sleep(duration: Duration) -> Result<(), Cancelled> {
    match Instant::now().checked_add(duration) {
        Some(deadline) => sleep_until(deadline),
        None => sleep_forever(),
    }
}

/// Puts the calling coroutine to sleep until `deadline`.
///
/// Coroutines whose deadlines are equal wake in the order they went to
/// sleep. On a plain thread this blocks the thread.
///
/// # Errors
///
/// [`Cancelled`], as for [`sleep`].
pub fn sleep_until(deadline: Instant) -> Result<(), Cancelled> {
    if context::outside_coroutines_of_running_runtime() {
        return Err(Cancelled);
    }
    if !context::in_coroutine() {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        return Ok(());
    }
    loop {
        match park::park(Some(deadline), ParkSite::of(WaitKind::Sleep)) {
            WakeReason::TimedOut => return Ok(()),
            WakeReason::Cancelled => return Err(Cancelled),
            WakeReason::Ready if Instant::now() >= deadline => return Ok(()),
            WakeReason::Ready => continue,
        }
    }
}

/// Sleeps until the coroutine is cancelled; a plain thread never wakes.
fn sleep_forever() -> Result<(), Cancelled> {
    if context::outside_coroutines_of_running_runtime() {
        return Err(Cancelled);
    }
    if !context::in_coroutine() {
        loop {
            std::thread::park();
        }
    }
    while park::park(None, ParkSite::of(WaitKind::Sleep)) != WakeReason::Cancelled {}
    Err(Cancelled)
}

/// Lets the other runnable coroutines run before the caller continues.
///
/// The caller goes to the back of the run queue. On a plain thread this is
/// [`std::thread::yield_now`].
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// green::run(|| {
///     let seen = Rc::new(Cell::new(false));
///     let flag = seen.clone();
///     green::spawn(move || flag.set(true));
///     green::yield_now();
///     assert!(seen.get());
/// });
/// ```
// Inlined into the caller on purpose: see `park::yield_now`.
#[inline(always)]
pub fn yield_now() {
    if Context::with(park::yield_now) != Some(true) {
        std::thread::yield_now();
    }
}
