//! `Barrier`: `n` parties wait until all of them have arrived, then all go
//! on together; and again, for the next generation.
//!
//! # States (of one generation)
//!
//! 1. **Gathering**: `arrived` parties (`0 <= arrived < n`) are queued.
//!    An arrival adds one; a waiter that gives up (timeout, cancellation,
//!    or its coroutine unwound) withdraws and takes one away.
//! 2. **Tripped**: the `n`th arrival sets `arrived` back to 0, advances
//!    `generation`, claims every queued waiter and wakes them after
//!    releasing the lock. It is the leader. The barrier is Gathering again,
//!    for the next generation, at once.
//!
//! # Who decides: the generation, not the claim
//!
//! A trip releases `n - 1` waiters in one step, but a claim is one
//! compare-and-swap per waiter, and a waiter may abandon its wait (timeout)
//! between two of them. The claim therefore only says "wake up"; what
//! happened is decided under the lock by the generation. A waiter that
//! gave up takes the lock and looks: if the generation it joined is still
//! the current one, it withdraws (`arrived -= 1`) and reports the timeout,
//! and the barrier still needs `n`; if the generation has moved on, the
//! trip counted it before it could withdraw, so its wait succeeded, exactly
//! as if it had lost the race to the claim. Either way every other party
//! sees a consistent barrier: a generation trips with exactly `n` parties.
//!
//! Rejected: Java's "broken barrier", where one party's timeout fails every
//! other party's wait too. It makes a timeout visible to the others, which
//! every other primitive here avoids (an interrupted wait leaves the
//! primitive as if the waiter had never come), and a program that wants it
//! can build it from a failed `wait_timeout` and an [`Event`] the others
//! also watch.
//!
//! [`Event`]: crate::sync::Event

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::wait::party::{Outcome, deadline_after};
use super::wait::queue::WaitQueue;
use super::wait::waiter::{Waiter, WaiterHandle};
use super::wait_error::WaitError;
use crate::dump::kind::WaitKind;

/// The token a trip claims waiters with.
const TRIPPED: usize = 0;

/// Lets `n` coroutines or threads wait until all `n` have arrived.
///
/// Reusable: once `n` parties have arrived they are all released, and the
/// next `n` calls to `wait` form the next generation. Exactly one party of
/// each generation (the last to arrive) is the *leader*. Works between
/// coroutines of any runtimes and plain threads.
///
/// ```
/// use std::sync::Arc;
/// use green::sync::Barrier;
///
/// green::run(|| {
///     let barrier = Arc::new(Barrier::new(3));
///     let parties: Vec<_> = (0..3)
///         .map(|_| {
///             let barrier = barrier.clone();
///             green::spawn(move || barrier.wait().unwrap().is_leader())
///         })
///         .collect();
///     let leaders = parties.into_iter().map(|p| p.join().unwrap()).filter(|&leader| leader).count();
///     assert_eq!(leaders, 1);
/// });
/// ```
///
/// # Timeouts and cancellation
///
/// A party whose wait times out or is cancelled *withdraws*: it is no
/// longer counted, and the barrier still needs `n` arrivals, which the
/// party may provide again by calling `wait` again. The parties already
/// waiting are not disturbed. If the last party arrives at the moment the
/// wait gives up, the trip wins and the wait succeeds.
pub struct Barrier {
    /// How many parties make a generation (at least 1).
    n: usize,
    /// The generation being gathered.
    state: Mutex<Round>,
}

/// The generation being gathered; see the module docs.
#[derive(Debug)]
struct Round {
    /// Parties of this generation that have arrived and not withdrawn.
    arrived: usize,
    /// How many generations have tripped so far.
    generation: u64,
    /// The parties waiting in this generation, oldest first.
    waiters: WaitQueue<WaiterHandle>,
}

/// What [`Barrier::wait`] returns when the barrier trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult {
    /// Whether this party was the last to arrive.
    leader: bool,
}

impl BarrierWaitResult {
    /// Whether this party is its generation's leader: exactly one party
    /// per generation is, the one whose arrival tripped the barrier.
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

impl Barrier {
    /// A barrier for `n` parties. `Barrier::new(0)` behaves like
    /// `Barrier::new(1)`, as with `std::sync::Barrier`: nobody waits. Any
    /// `n` is accepted, as by `std`; one larger than the parties that can
    /// ever wait at once (`usize::MAX`) never trips, and its waits end only
    /// by timeout or cancellation.
    pub fn new(n: usize) -> Barrier {
        let round = Round { arrived: 0, generation: 0, waiters: WaitQueue::new(WaitKind::Barrier) };
        Barrier { n: n.max(1), state: Mutex::new(round) }
    }

    /// Waits until `n` parties (this one included) have called `wait`.
    ///
    /// # Errors
    ///
    /// [`WaitError::Cancelled`] if the calling coroutine is cancelled
    /// before the barrier trips; it has then withdrawn (see the type's
    /// docs).
    pub fn wait(&self) -> Result<BarrierWaitResult, WaitError> {
        self.wait_until(None)
    }

    /// Waits until `n` parties have arrived, or `timeout` has elapsed.
    ///
    /// # Errors
    ///
    /// [`WaitError::TimedOut`] or [`WaitError::Cancelled`]; the party has
    /// withdrawn and the barrier still needs `n` arrivals.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<BarrierWaitResult, WaitError> {
        self.wait_until(deadline_after(timeout))
    }

    /// Waits until `n` parties have arrived, or `deadline` has passed.
    ///
    /// # Errors
    ///
    /// As [`Barrier::wait_timeout`].
    pub fn wait_deadline(&self, deadline: Instant) -> Result<BarrierWaitResult, WaitError> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<BarrierWaitResult, WaitError> {
        let arrival = {
            let mut state = self.lock();
            // Cannot overflow: `arrived < n <= usize::MAX` between calls.
            state.arrived += 1;
            if state.arrived >= self.n {
                state.arrived = 0;
                state.generation = state.generation.wrapping_add(1);
                let woken: Vec<WaiterHandle> = state.waiters.drain().filter(|w| w.claim(TRIPPED)).collect();
                drop(state);
                for waiter in woken {
                    waiter.wake();
                }
                return Ok(BarrierWaitResult { leader: true });
            }
            let waiter = Waiter::new();
            state.waiters.push(waiter.handle());
            Arrival { barrier: self, generation: state.generation, waiter, settled: false }
        };
        let outcome = arrival.waiter.wait(deadline);
        arrival.settle(outcome)
    }

    fn lock(&self) -> MutexGuard<'_, Round> {
        // Nothing panics while the lock is held; a poisoned lock still
        // guards a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A party queued in a generation. Dropped before it has settled (its
/// coroutine unwound while it waited), it withdraws.
struct Arrival<'a> {
    /// The barrier it waits at.
    barrier: &'a Barrier,
    /// The generation it joined.
    generation: u64,
    /// The waiter whose handle is in the queue.
    waiter: Waiter,
    /// Whether the outcome has been decided (and the drop has nothing to do).
    settled: bool,
}

impl Arrival<'_> {
    /// Turns the wait's outcome into the result; see the module docs.
    fn settle(mut self, outcome: Outcome) -> Result<BarrierWaitResult, WaitError> {
        let why = match outcome {
            Outcome::Claimed(_) => None,
            Outcome::TimedOut => Some(WaitError::TimedOut),
            Outcome::Cancelled => Some(WaitError::Cancelled),
        };
        self.settled = true;
        match why {
            Some(why) if self.withdraw() => Err(why),
            Some(_) => {
                // The barrier tripped before the party could withdraw: it
                // passed after all.
                crate::park::retract_cancellation();
                Ok(BarrierWaitResult { leader: false })
            }
            None => Ok(BarrierWaitResult { leader: false }),
        }
    }

    /// Withdraws if the generation it joined has not tripped; returns
    /// whether it did.
    fn withdraw(&self) -> bool {
        let mut state = self.barrier.lock();
        if state.generation != self.generation {
            return false;
        }
        // At least this party arrived in this generation.
        state.arrived -= 1;
        state.waiters.remove(&self.waiter);
        true
    }
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        if !self.settled && self.waiter.claimed().is_none() {
            self.withdraw();
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .field("arrived", &state.arrived)
            .field("generation", &state.generation)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_withdrawn_party_is_no_longer_counted() {
        let barrier = Barrier::new(2);
        assert_eq!(barrier.wait_timeout(Duration::ZERO), Err(WaitError::TimedOut));
        let state = barrier.lock();
        assert_eq!((state.arrived, state.generation, state.waiters.len()), (0, 0, 0));
    }

    #[test]
    fn a_barrier_of_one_never_waits_and_always_leads() {
        for n in [0, 1] {
            let barrier = Barrier::new(n);
            for generation in 1..=3 {
                assert_eq!(barrier.wait().map(|r| r.is_leader()), Ok(true));
                assert_eq!(barrier.lock().generation, generation);
            }
        }
    }
}
