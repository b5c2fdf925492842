//! Many coroutines at once: spawns `--count` coroutines that each sleep
//! `--sleep-ms` and wake, and reports how long spawning took, how long the
//! whole run took, and how much resident memory each coroutine cost.
//!
//! Run with `cargo run --release --example many -- --count 1000000 --stack-size 16384`;
//! add `--workers 2` to spread the coroutines over two threads.
//!
//! Memory is read from `VmRSS` in `/proc/self/status` (Linux only) and
//! reported twice: right after spawning, when no coroutine has started yet
//! (a spawned coroutine's closure waits in its task record and its stack is
//! only reserved), and once every coroutine has run and parked in `sleep`,
//! which is the cost of an idle coroutine. Both include the `JoinHandle`
//! kept for each. A coroutine's stack reserves `--stack-size` bytes of
//! address space, but only the pages it touches become resident.

use std::fs;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use green::{Cancelled, DistributedHandle, JoinError, JoinHandle};

use green_examples::Flag::Value;

const USAGE: &str = "\
usage: many [--count N] [--sleep-ms MS] [--stack-size BYTES] [--workers N]

Spawns N coroutines that each sleep MS milliseconds, joins them, and reports
spawn time, total time and resident memory per coroutine. A run longer than
a second prints a progress line every second.

  --count N           coroutines to spawn, 1 to 10000000 (default 100000)
  --sleep-ms MS       how long each sleeps, 0 to 3600000 (default 100)
  --stack-size BYTES  stack size of each coroutine, 4096 to 1073741824
                      (4 KiB to 1 GiB; default 262144, green::DEFAULT_STACK_SIZE).
                      A stack reserves address space; only the pages it
                      touches cost memory. 1 GiB is the most for which the
                      default 100000 coroutines still fit in the 128 TiB of
                      address space a process has on x86_64 Linux.
  --workers N         worker threads, 1 to 256 (default 1); with more than
                      one the coroutines are spawned with spawn_distributed
                      and spread over them";

/// The smallest `--stack-size`: one page, which is what the runtime rounds
/// anything smaller up to.
const MIN_STACK_SIZE: usize = 4096;

/// The largest `--stack-size`: the runtime's own limit (1 GiB). 100,000
/// such stacks still fit in x86_64's 128 TiB of user address space.
const MAX_STACK_SIZE: usize = green::Builder::MAX_STACK_SIZE;

/// How often a sleeper or the joining loop looks at the clock to see
/// whether a progress line is due.
const PROGRESS_CHECK_EVERY: usize = 4096;

fn main() {
    let flags = green_examples::Flags::from_env(
        "many",
        USAGE,
        &[Value("count"), Value("sleep-ms"), Value("stack-size"), Value("workers")],
    );
    let count: usize = flags.get_number("count", 100_000, 1..=10_000_000);
    let sleep = Duration::from_millis(flags.get_number("sleep-ms", 100, 0..=3_600_000));
    let stack_size: usize =
        flags.get_number("stack-size", green::DEFAULT_STACK_SIZE, MIN_STACK_SIZE..=MAX_STACK_SIZE);
    let workers: usize = flags.get_number("workers", 1, 1..=256);

    // The main coroutine keeps the default stack; only the sleepers get
    // `--stack-size`, so that a size the system cannot provide shows up as
    // a spawn error below rather than as a runtime that cannot start.
    if let Err(err) = green::Builder::new().workers(workers).run(|| run(count, sleep, stack_size, workers)) {
        eprintln!("many: {err}");
        std::process::exit(1);
    }
}

/// A sleeper's handle: on this worker, or on any.
enum Sleeper {
    /// Spawned on the calling worker.
    Local(JoinHandle<Result<(), Cancelled>>),
    /// Placed on any worker.
    Distributed(DistributedHandle<Result<(), Cancelled>>),
}

impl Sleeper {
    fn join(self) -> Result<Result<(), Cancelled>, JoinError> {
        match self {
            Sleeper::Local(handle) => handle.join(),
            Sleeper::Distributed(handle) => handle.join(),
        }
    }
}

fn run(count: usize, sleep: Duration, stack_size: usize, workers: usize) -> io::Result<()> {
    let spread = if workers > 1 { format!(", spread over {workers} workers") } else { String::new() };
    println!("many: {count} coroutines, each sleeping {sleep:?}, stacks of {stack_size} bytes{spread}");
    let rss_before = resident_bytes()?;
    let start = Instant::now();
    let progress = Arc::new(Progress::new(start, count));
    let mut sleepers = Vec::with_capacity(count);
    for i in 0..count {
        let progress_of_sleeper = progress.clone();
        let body = move || {
            progress_of_sleeper.one_asleep();
            drop(progress_of_sleeper);
            green::sleep(sleep)
        };
        let builder = green::task::Builder::new().stack_size(stack_size);
        let sleeper = if workers > 1 {
            builder.spawn_distributed(body).map(Sleeper::Distributed)
        } else {
            builder.spawn(body).map(Sleeper::Local)
        };
        match sleeper {
            Ok(sleeper) => sleepers.push(sleeper),
            Err(err) => {
                return Err(io::Error::new(
                    err.kind(),
                    format!(
                        "cannot spawn coroutine {} of {count} with a stack of {stack_size} bytes: {err}; \
                         try a smaller --stack-size or --count",
                        i + 1
                    ),
                ));
            }
        }
        progress.one_spawned();
    }
    let spawned = start.elapsed();
    let rss_spawned = resident_bytes()?;
    if workers == 1 {
        // Main goes to the back of the run queue: every sleeper runs up to
        // its park in `sleep` before main continues.
        green::yield_now();
    } else {
        // The sleepers run on every worker: wait until all have reported.
        while progress.asleep.load(Ordering::Relaxed) < count {
            green::sleep(Duration::from_millis(1)).map_err(|_| io::Error::other("cancelled"))?;
        }
    }
    let asleep = start.elapsed();
    let rss_asleep = resident_bytes()?;
    for sleeper in sleepers {
        sleeper.join().map_err(|err| io::Error::other(err.to_string()))??;
        progress.one_joined();
    }
    let total = start.elapsed();

    let n = count as f64;
    let per_coroutine = |rss: u64| rss.saturating_sub(rss_before) as f64 / n;
    println!("spawn:       {:>9.1} ms  ({:.0} ns per coroutine)", ms(spawned), ms(spawned) * 1e6 / n);
    println!("all asleep:  {:>9.1} ms  (every coroutine has run up to its sleep)", ms(asleep));
    println!("total:       {:>9.1} ms  (each coroutine slept {} ms)", ms(total), sleep.as_millis());
    println!("RSS before:  {:>9.1} MiB", mib(rss_before));
    println!(
        "RSS spawned: {:>9.1} MiB  ({:.0} bytes per coroutine)",
        mib(rss_spawned),
        per_coroutine(rss_spawned)
    );
    println!(
        "RSS asleep:  {:>9.1} MiB  ({:.0} bytes per coroutine)",
        mib(rss_asleep),
        per_coroutine(rss_asleep)
    );
    Ok(())
}

/// How far a run has got, for the progress lines: at most one a second,
/// none at all for a run that is over within its first second. Sleepers on
/// any worker report here, so the counts are atomics.
#[derive(Debug)]
struct Progress {
    /// When the run started.
    start: Instant,
    /// When the last progress line was printed (or the run started).
    last_line: Mutex<Instant>,
    /// Calls to `tick` since the clock was last read.
    ticks: AtomicUsize,
    /// Coroutines to spawn.
    count: usize,
    /// Coroutines spawned so far.
    spawned: AtomicUsize,
    /// Coroutines that have run up to their sleep.
    asleep: AtomicUsize,
    /// Coroutines joined after waking.
    joined: AtomicUsize,
}

impl Progress {
    fn new(start: Instant, count: usize) -> Progress {
        Progress {
            start,
            last_line: Mutex::new(start),
            ticks: AtomicUsize::new(0),
            count,
            spawned: AtomicUsize::new(0),
            asleep: AtomicUsize::new(0),
            joined: AtomicUsize::new(0),
        }
    }

    /// One more coroutine spawned.
    fn one_spawned(&self) {
        self.spawned.fetch_add(1, Ordering::Relaxed);
        self.tick();
    }

    /// One more coroutine has run up to its sleep.
    fn one_asleep(&self) {
        self.asleep.fetch_add(1, Ordering::Relaxed);
        self.tick();
    }

    /// One more coroutine joined.
    fn one_joined(&self) {
        self.joined.fetch_add(1, Ordering::Relaxed);
        self.tick();
    }

    /// Prints a progress line if a second has passed since the last one. Reads the clock only every
    /// [`PROGRESS_CHECK_EVERY`] steps, so that it costs next to nothing.
    fn tick(&self) {
        if self.ticks.fetch_add(1, Ordering::Relaxed) + 1 < PROGRESS_CHECK_EVERY {
            return;
        }
        self.ticks.store(0, Ordering::Relaxed);
        let now = Instant::now();
        {
            let mut last_line = self.last_line.lock().unwrap_or_else(PoisonError::into_inner);
            if now - *last_line < Duration::from_secs(1) {
                return;
            }
            *last_line = now;
        }
        println!(
            "many: {:>6.1} s: spawned {} of {count}, {} asleep, {} joined",
            (now - self.start).as_secs_f64(),
            self.spawned.load(Ordering::Relaxed),
            self.asleep.load(Ordering::Relaxed),
            self.joined.load(Ordering::Relaxed),
            count = self.count,
        );
    }
}

/// The process's resident set size, from `VmRSS` in `/proc/self/status`.
fn resident_bytes() -> io::Result<u64> {
    let status = fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| io::Error::other("no VmRSS line in /proc/self/status (this example needs Linux)"))?;
    Ok(kib * 1024)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
