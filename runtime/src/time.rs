//! Sleeping and yielding.

use std::time::{Duration, Instant};

use crate::park::{self, WakeReason};
use crate::scheduler::{self, Scheduler};

/// Puts the calling coroutine to sleep for at least `duration`.
///
/// Only the coroutine sleeps; the thread runs others meanwhile. On a plain
/// thread (outside a runtime) this is [`std::thread::sleep`].
///
/// ```
/// green::run(|| {
///     let start = std::time::Instant::now();
///     green::sleep(std::time::Duration::from_millis(5));
///     assert!(start.elapsed() >= std::time::Duration::from_millis(5));
/// });
/// ```
pub fn sleep(duration: Duration) {
    match Instant::now().checked_add(duration) {
        Some(deadline) => sleep_until(deadline),
        None => sleep_forever(),
    }
}

/// Puts the calling coroutine to sleep until `deadline`.
///
/// Coroutines whose deadlines are equal wake in the order they went to
/// sleep. On a plain thread this blocks the thread.
pub fn sleep_until(deadline: Instant) {
    if !scheduler::in_coroutine() {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        return;
    }
    loop {
        match park::park(Some(deadline)) {
            WakeReason::TimedOut | WakeReason::Cancelled => return,
            WakeReason::Ready if Instant::now() >= deadline => return,
            WakeReason::Ready => continue,
        }
    }
}

fn sleep_forever() {
    if !scheduler::in_coroutine() {
        loop {
            std::thread::park();
        }
    }
    while park::park(None) != WakeReason::Cancelled {}
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
// Inlined into the caller on purpose: see `Scheduler::yield_now`.
#[inline(always)]
pub fn yield_now() {
    if Scheduler::with(Scheduler::yield_now) != Some(true) {
        std::thread::yield_now();
    }
}
