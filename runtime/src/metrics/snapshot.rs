//! What a reader of the metrics gets: plain values, copied out of the
//! workers' counters at one moment (see `counters.rs`).

use std::ops::AddAssign;
use std::time::Duration;

/// Every runtime running in the process, as [`metrics`](crate::metrics())
/// found it.
///
/// ```
/// let metrics = green::run(green::metrics);
/// assert!(!metrics.runtimes.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// One entry per runtime (a [`green::run`](crate::run) or
    /// [`Builder::run`](crate::Builder::run) that has not returned yet), in
    /// the order they started.
    pub runtimes: Vec<RuntimeMetrics>,
}

impl Metrics {
    /// The runtime with identity `id` ([`RuntimeMetrics::id`]), if it is
    /// still running.
    pub fn runtime(&self, id: u64) -> Option<&RuntimeMetrics> {
        self.runtimes.iter().find(|runtime| runtime.id == id)
    }
}

/// One runtime: its workers' counters and its blocking pool.
///
/// ```
/// let runtime = green::Builder::new().workers(2).run(|| green::runtime_metrics());
/// let runtime = runtime.expect("called inside a runtime");
/// assert_eq!(runtime.workers.len(), 2);
/// assert!(runtime.total().spawned >= 1); // main, at least
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeMetrics {
    /// This runtime's identity: unique in the process, never reused. Tells
    /// two snapshots of the same runtime apart from those of another.
    pub id: u64,
    /// One entry per worker, worker 0 (the thread that called `run`) first.
    /// A worker whose thread has not started yet reads all zeros.
    pub workers: Vec<WorkerMetrics>,
    /// The runtime's blocking pool, as
    /// [`blocking::stats`](crate::blocking::stats) reads it inside the
    /// runtime (all zeros until the pool is first used).
    pub blocking: PoolStats,
}

impl RuntimeMetrics {
    /// The sum over the workers: counts and gauges added up, the
    /// histograms merged.
    pub fn total(&self) -> WorkerMetrics {
        let mut total = WorkerMetrics::default();
        for worker in &self.workers {
            total += worker;
        }
        total
    }
}

/// One worker: what its scheduler has done since the runtime started, and
/// what it holds now.
///
/// Counts (`spawned`, `finished`, `switches`, `polls`, `events`, `steals`,
/// `stalls`, the delay histogram) only grow. `alive()` is exact at any
/// moment. The two gauges, `parked` and `queued`, are as of the worker's
/// last turn of its loop: at most 61 coroutine runs ago, or when it last
/// went to sleep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// Coroutines started on this worker: every spawn, the main coroutine,
    /// and in a runtime of several the worker's service coroutine (which
    /// takes distributed tasks) and each distributed task it started.
    pub spawned: u64,
    /// Of those, the ones that have finished (or been torn down).
    pub finished: u64,
    /// Coroutines parked (waiting for I/O, a timer, a lock, a message, a
    /// join), as of the worker's last turn.
    pub parked: u64,
    /// Coroutines in the run queue, ready to run, as of the worker's last
    /// turn.
    pub queued: u64,
    /// Switches into a coroutine: every resume, after a wake-up, a yield or
    /// a spawn.
    pub switches: u64,
    /// Polls of the reactor (`epoll_wait`), with or without waiting.
    pub polls: u64,
    /// I/O events those polls returned.
    pub events: u64,
    /// Distributed tasks this worker took from other workers' queues.
    pub steals: u64,
    /// Stalls the watchdog reported on this worker (see
    /// [`watchdog`](crate::watchdog)).
    pub stalls: u64,
    /// Scheduling delay: from a parked coroutine being woken to its
    /// resuming, for a sample of the wake-ups (see [`DelayHistogram`]).
    pub delay: DelayHistogram,
}

impl WorkerMetrics {
    /// Coroutines alive now: spawned and not finished.
    pub fn alive(&self) -> u64 {
        self.spawned.saturating_sub(self.finished)
    }

    /// I/O events per poll of the reactor, on average (0 before the first
    /// poll).
    pub fn events_per_poll(&self) -> f64 {
        if self.polls == 0 { 0.0 } else { self.events as f64 / self.polls as f64 }
    }
}

impl AddAssign<&WorkerMetrics> for WorkerMetrics {
    fn add_assign(&mut self, other: &WorkerMetrics) {
        self.spawned += other.spawned;
        self.finished += other.finished;
        self.parked += other.parked;
        self.queued += other.queued;
        self.switches += other.switches;
        self.polls += other.polls;
        self.events += other.events;
        self.steals += other.steals;
        self.stalls += other.stalls;
        self.delay += &other.delay;
    }
}

/// How many buckets a [`DelayHistogram`] has: below 1 µs, below 2 µs, ...
/// below 2^20 µs (1.05 s), and the rest.
const BUCKETS: usize = 22;

/// A histogram of scheduling delays in power-of-two buckets: bucket 0
/// holds delays below 1 µs, bucket `i` (1 to 20) those of at least
/// 2^(i-1) and below 2^i µs, and the last bucket those of 2^20 µs (1.05 s)
/// or more, as Go's `/sched/latencies:seconds`.
///
/// The delay is the time from a parked coroutine being made runnable (by
/// I/O, a timer, a message, a lock, a join, a wake-up from another thread)
/// to the moment its worker resumes it: the time it waited in the run
/// queue behind others. Yields and first runs are not counted.
///
/// Not every wake-up is timed: about one in
/// [`SAMPLE_EVERY`](DelayHistogram::SAMPLE_EVERY) per worker (or as set by
/// [`Builder::delay_sampling`](crate::Builder::delay_sampling)), one at a
/// time, so that reading the clock costs the switch path nothing
/// measurable (DESIGN.md, "Metrics"). The counts are samples: multiply by
/// the rate for an estimate of all wake-ups.
///
/// ```
/// use std::time::Duration;
///
/// // Every wake-up timed: each sleep ends with one.
/// let delay = green::Builder::new().delay_sampling(1).run(|| {
///     for _ in 0..20 {
///         green::sleep(Duration::from_millis(1)).unwrap();
///     }
///     green::runtime_metrics().unwrap().total().delay
/// });
/// assert_eq!(delay.count(), 20);
/// let (p50, p99) = (delay.quantile(0.5).unwrap(), delay.quantile(0.99).unwrap());
/// assert!(p50 <= p99);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DelayHistogram {
    /// Samples per bucket.
    counts: [u64; BUCKETS],
}

impl DelayHistogram {
    /// By default, one wake-up in this many is timed, on average, per
    /// worker (when no other timed one is still waiting to run).
    pub const SAMPLE_EVERY: u32 = 1024;

    /// The number of buckets.
    pub const BUCKETS: usize = BUCKETS;

    /// A histogram with these counts per bucket.
    pub(crate) fn from_counts(counts: [u64; BUCKETS]) -> DelayHistogram {
        DelayHistogram { counts }
    }

    /// The bucket a delay of `delay` falls in.
    pub(crate) fn bucket(delay: Duration) -> usize {
        let micros = delay.as_micros();
        // Below 1 µs: bucket 0; below 2^i µs: bucket i.
        let bits = (u128::BITS - micros.leading_zeros()) as usize;
        bits.min(BUCKETS - 1)
    }

    /// The samples in each bucket, bucket 0 first.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The number of samples.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The delays in bucket `bucket` are below this; `None` for the last
    /// bucket, which has no bound (and for a bucket past the last).
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::metrics::DelayHistogram;
    ///
    /// assert_eq!(DelayHistogram::upper_bound(0), Some(Duration::from_micros(1)));
    /// assert_eq!(DelayHistogram::upper_bound(3), Some(Duration::from_micros(8)));
    /// assert_eq!(DelayHistogram::upper_bound(DelayHistogram::BUCKETS - 1), None);
    /// ```
    pub fn upper_bound(bucket: usize) -> Option<Duration> {
        (bucket + 1 < BUCKETS).then(|| Duration::from_micros(1 << bucket))
    }

    /// The upper bound of the bucket that holds the `q`-quantile (`q` from 0
    /// to 1: 0.5 for the median, 0.99 for the 99th percentile): that share
    /// of the samples were below it. `Duration::MAX` if it lies in the last
    /// bucket; `None` if there are no samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        // The rank of the sample at the quantile, 1-based.
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(DelayHistogram::upper_bound(bucket).unwrap_or(Duration::MAX));
            }
        }
        Some(Duration::MAX)
    }
}

impl AddAssign<&DelayHistogram> for DelayHistogram {
    fn add_assign(&mut self, other: &DelayHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
    }
}

/// A snapshot of a blocking pool's counters; see
/// [`blocking::stats`](crate::blocking::stats) and
/// [`RuntimeMetrics::blocking`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Pool threads alive now.
    pub threads: usize,
    /// Of those, the ones running a closure now.
    pub busy: usize,
    /// Closures waiting for a thread now.
    pub queued: usize,
    /// Closures that have started on a pool thread, since the pool began.
    pub started: u64,
    /// Closures that have returned or panicked.
    pub completed: u64,
    /// Of those, the ones that panicked.
    pub panicked: u64,
    /// Closures dropped without running because their waiter was
    /// cancelled (or their handle cancelled them) while they were queued.
    pub cancelled_queued: u64,
    /// Closures whose waiter was cancelled while they ran: they ran to
    /// their end and their result was dropped.
    pub cancelled_running: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_fall_in_power_of_two_buckets() {
        let micros = Duration::from_micros;
        assert_eq!(DelayHistogram::bucket(Duration::from_nanos(999)), 0);
        assert_eq!(DelayHistogram::bucket(micros(1)), 1);
        assert_eq!(DelayHistogram::bucket(micros(3)), 2);
        assert_eq!(DelayHistogram::bucket(micros(4)), 3);
        assert_eq!(DelayHistogram::bucket(micros((1 << 20) - 1)), 20);
        assert_eq!(DelayHistogram::bucket(micros(1 << 20)), 21);
        assert_eq!(DelayHistogram::bucket(Duration::from_secs(3600)), 21);
        for bucket in 0..BUCKETS - 1 {
            let bound = DelayHistogram::upper_bound(bucket).unwrap();
            assert_eq!(DelayHistogram::bucket(bound - Duration::from_nanos(1)), bucket);
            assert_eq!(DelayHistogram::bucket(bound), bucket + 1);
        }
    }

    #[test]
    fn quantiles_name_the_bucket_bound() {
        let mut counts = [0; BUCKETS];
        counts[2] = 98; // below 4 µs
        counts[10] = 1; // below 1,024 µs
        counts[BUCKETS - 1] = 1;
        let histogram = DelayHistogram::from_counts(counts);
        assert_eq!(histogram.count(), 100);
        assert_eq!(histogram.quantile(0.5), Some(Duration::from_micros(4)));
        assert_eq!(histogram.quantile(0.98), Some(Duration::from_micros(4)));
        assert_eq!(histogram.quantile(0.99), Some(Duration::from_micros(1024)));
        assert_eq!(histogram.quantile(1.0), Some(Duration::MAX));
        assert_eq!(DelayHistogram::default().quantile(0.5), None);
    }
}
