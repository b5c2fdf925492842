//! One worker's counters, and the recorder through which its thread writes
//! them.
//!
//! # Who touches what
//!
//! | what | written by | read by |
//! |---|---|---|
//! | [`Counters`] (atomics, shared through an `Arc`) | the worker's own thread only, through its [`Recorder`] (the workers' queues count steals through it too) | anyone, through the registry (`registry.rs`) |
//! | the [`Recorder`]'s sampler (`Cell`s, in the runtime's context) | the worker's thread: a wake-up starts a sample, the resumed coroutine ends it | nobody else |
//! | the switch count and the stalls | the scheduler and the watchdog, in the worker's `Stamp` (`watchdog.rs`) | the registry |
//!
//! One writer per counter, so an increment is a relaxed load and a relaxed
//! store (a plain `mov` each on x86), never a locked read-modify-write. A
//! reader may see one counter a little ahead of another, except that it
//! never sees more finished coroutines than spawned ones: `finished` is
//! stored with release and loaded, first, with acquire.
//!
//! # Timing a wake-up
//!
//! ```text
//!   park::wake (rule 2, Parked -> Runnable)        the woken coroutine, back from its park
//!     recorder.woke():                               task.delay_timed?  (one test of a byte
//!       countdown -= 1   (a decrement, a branch)       of its record, already at hand)
//!       reached 0, once in about `every`:  ──┐         yes: recorder.resumed():
//!         no sample in flight?               │            delay = now - woken_at,
//!           woken_at = now (the clock)       └──>         counted in its bucket
//!           task.delay_timed = true
//!         countdown = a new pseudo-random
//!         count, `every` on average
//! ```
//!
//! The clock is read twice per sample and never otherwise. One sample is
//! in flight at a time: a wake-up whose turn comes while one is pending is
//! not timed. The countdowns are spread at random around their mean, so
//! that a workload that wakes its coroutines in a fixed cycle (four
//! consumers served in turn) does not have the same one timed every time.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::snapshot::{DelayHistogram, WorkerMetrics};

/// What one worker has counted: written by that worker alone, read by
/// anyone.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Coroutines spawned on this worker (started there).
    spawned: AtomicU64,
    /// Of those, the ones that finished or were torn down. Stored with
    /// release, loaded with acquire before `spawned`.
    finished: AtomicU64,
    /// Parked coroutines at the loop's last turn.
    parked: AtomicU64,
    /// Coroutines in the run queue at the loop's last turn.
    queued: AtomicU64,
    /// Polls of the reactor.
    polls: AtomicU64,
    /// I/O events those polls returned.
    events: AtomicU64,
    /// Jobs taken from other workers' queues.
    steals: AtomicU64,
    /// Timed wake-ups, by bucket of [`DelayHistogram`].
    delays: [AtomicU64; DelayHistogram::BUCKETS],
}

/// Adds `n` to a counter only the calling thread writes: a load and a
/// store, not a locked read-modify-write.
#[inline(always)]
fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl Counters {
    /// Every counter, as it is now; `switches` and `stalls`, which the
    /// worker's stamp keeps, are left at 0.
    pub(crate) fn read(&self) -> WorkerMetrics {
        // First: whatever spawns the finished ones were, they are visible.
        let finished = self.finished.load(Ordering::Acquire);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        WorkerMetrics {
            spawned: load(&self.spawned),
            finished,
            parked: load(&self.parked),
            queued: load(&self.queued),
            polls: load(&self.polls),
            events: load(&self.events),
            steals: load(&self.steals),
            delay: DelayHistogram::from_counts(std::array::from_fn(|bucket| load(&self.delays[bucket]))),
            switches: 0,
            stalls: 0,
        }
    }
}

/// The worker's side of its [`Counters`], kept in the runtime's context:
/// everything that counts goes through here, on the worker's thread.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// The counters others read.
    counters: Arc<Counters>,
    /// Wake-ups left before the next one is timed.
    countdown: Cell<u32>,
    /// One wake-up in this many is timed, on average; 0: none.
    every: u32,
    /// The state of the generator that spreads the countdowns (xorshift).
    seed: Cell<u32>,
    /// The sample in flight, if any.
    sample: Cell<Sample>,
}

/// Where the timing of wake-ups stands.
#[derive(Debug, Clone, Copy)]
enum Sample {
    /// No wake-up is being timed.
    Idle,
    /// A coroutine woken at this instant is being timed: the first one to
    /// resume with its `delay_timed` mark set.
    Timing(Instant),
    /// Nothing is timed any more (the runtime is shutting down, or
    /// sampling is off).
    Stopped,
}

impl Recorder {
    /// A recorder with fresh counters that times one wake-up in `every`
    /// on average (none if 0).
    pub(crate) fn new(every: u32) -> Recorder {
        let recorder = Recorder {
            counters: Arc::default(),
            countdown: Cell::new(u32::MAX),
            every,
            seed: Cell::new(0x9E37_79B9),
            sample: Cell::new(if every == 0 { Sample::Stopped } else { Sample::Idle }),
        };
        if every > 0 {
            recorder.countdown.set(recorder.next_countdown());
        }
        recorder
    }

    /// The counters, to register them for readers.
    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// A coroutine was spawned.
    #[inline]
    pub(crate) fn spawned(&self) {
        add(&self.counters.spawned, 1);
    }

    /// A coroutine finished or was torn down.
    #[inline]
    pub(crate) fn finished(&self) {
        let counter = &self.counters.finished;
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// The reactor was polled and returned `events` events.
    #[inline]
    pub(crate) fn polled(&self, events: usize) {
        add(&self.counters.polls, 1);
        add(&self.counters.events, events as u64);
    }

    /// `jobs` distributed tasks were taken from other workers' queues.
    pub(crate) fn stole(&self, jobs: usize) {
        add(&self.counters.steals, jobs as u64);
    }

    /// The loop's turn: `parked` coroutines are parked and `queued` are
    /// in the run queue now.
    #[inline]
    pub(crate) fn publish(&self, parked: usize, queued: usize) {
        self.counters.parked.store(parked as u64, Ordering::Relaxed);
        self.counters.queued.store(queued as u64, Ordering::Relaxed);
    }

    /// A coroutine was made runnable after a park; returns whether this
    /// wake-up is timed, and then the caller marks the coroutine (see the
    /// module documentation).
    #[inline(always)]
    pub(crate) fn woke(&self) -> bool {
        let left = self.countdown.get().wrapping_sub(1);
        self.countdown.set(left);
        left == 0 && self.start_sample()
    }

    /// The countdown has run out: times this wake-up, unless another is
    /// being timed or sampling has stopped.
    #[cold]
    #[inline(never)]
    fn start_sample(&self) -> bool {
        self.countdown.set(self.next_countdown());
        if matches!(self.sample.get(), Sample::Idle) {
            self.sample.set(Sample::Timing(Instant::now()));
            return true;
        }
        false
    }

    /// The coroutine whose wake-up is timed has resumed: counts its delay.
    #[cold]
    #[inline(never)]
    pub(crate) fn resumed(&self) {
        if let Sample::Timing(woken_at) = self.sample.get() {
            self.sample.set(Sample::Idle);
            self.count_delay(woken_at.elapsed());
        }
    }

    /// Counts one delay in its bucket.
    fn count_delay(&self, delay: Duration) {
        add(&self.counters.delays[DelayHistogram::bucket(delay)], 1);
    }

    /// Times nothing any more: the runtime is shutting down, and the
    /// coroutines that would end a sample may never run again.
    pub(crate) fn stop_sampling(&self) {
        self.sample.set(Sample::Stopped);
    }

    /// The next countdown: `every` on average, spread from half to one and
    /// a half times it.
    fn next_countdown(&self) -> u32 {
        if self.every <= 1 {
            return self.every.max(1);
        }
        let mut x = self.seed.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed.set(x);
        (self.every / 2).saturating_add(x % self.every)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wakes until one is timed; returns how many wake-ups that took.
    fn wake_until_timed(recorder: &Recorder) -> u32 {
        (1..=u32::MAX).find(|_| recorder.woke()).unwrap_or(u32::MAX)
    }

    #[test]
    fn about_one_wake_up_in_every_is_timed_and_counted_when_it_resumes() {
        let recorder = Recorder::new(64);
        let mut total = 0;
        for round in 1..=100 {
            let took = wake_until_timed(&recorder);
            assert!((32..96).contains(&took), "{took}");
            total += took;
            recorder.resumed();
            recorder.resumed(); // a second resume of nothing timed counts nothing
            assert_eq!(recorder.counters.read().delay.count(), round);
        }
        assert!((5_400..7_400).contains(&total), "{total}: 64 on average");
    }

    #[test]
    fn one_sample_at_a_time() {
        let recorder = Recorder::new(1);
        assert!(recorder.woke());
        assert!(!recorder.woke(), "the first is still in flight");
        recorder.resumed();
        assert!(recorder.woke());
        recorder.stop_sampling();
        recorder.resumed();
        assert!(!recorder.woke());
        assert_eq!(recorder.counters.read().delay.count(), 1);
    }

    #[test]
    fn every_zero_times_nothing() {
        let recorder = Recorder::new(0);
        assert!((0..10_000).all(|_| !recorder.woke()));
    }

    #[test]
    fn finished_never_reads_ahead_of_spawned() {
        let recorder = Recorder::new(DelayHistogram::SAMPLE_EVERY);
        recorder.spawned();
        recorder.spawned();
        recorder.finished();
        recorder.polled(3);
        recorder.stole(2);
        recorder.publish(4, 5);
        let read = recorder.counters.read();
        assert_eq!((read.spawned, read.finished, read.polls, read.events), (2, 1, 1, 3));
        assert_eq!((read.steals, read.parked, read.queued), (2, 4, 5));
    }
}
