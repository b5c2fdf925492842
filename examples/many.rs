//! Many coroutines at once: spawns `--count` coroutines that each sleep
//! `--sleep-ms` and wake, and reports how long spawning took, how long the
//! whole run took, and how much resident memory each coroutine cost.
//!
//! Run with `cargo run --release --example many -- --count 1000000 --stack-size 16384`.
//!
//! Memory is read from `VmRSS` in `/proc/self/status` (Linux only) and
//! reported twice: right after spawning, when no coroutine has started yet
//! (a spawned coroutine's closure waits in its task record and its stack is
//! only reserved), and once every coroutine has run and parked in `sleep`,
//! which is the cost of an idle coroutine. Both include the `JoinHandle`
//! kept for each. A coroutine's stack reserves `--stack-size` bytes of
//! address space, but only the pages it touches become resident.

use std::cell::Cell;
use std::fs;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green_examples::Flag::Value;

const USAGE: &str = "\
usage: many [--count N] [--sleep-ms MS] [--stack-size BYTES]

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
                      address space a process has on x86_64 Linux.";

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
        &[Value("count"), Value("sleep-ms"), Value("stack-size")],
    );
    let count: usize = flags.get_number("count", 100_000, 1..=10_000_000);
    let sleep = Duration::from_millis(flags.get_number("sleep-ms", 100, 0..=3_600_000));
    let stack_size: usize =
        flags.get_number("stack-size", green::DEFAULT_STACK_SIZE, MIN_STACK_SIZE..=MAX_STACK_SIZE);

    // The main coroutine keeps the default stack; only the sleepers get
    // `--stack-size`, so that a size the system cannot provide shows up as
    // a spawn error below rather than as a runtime that cannot start.
    if let Err(err) = green::run(|| run(count, sleep, stack_size)) {
        eprintln!("many: {err}");
        std::process::exit(1);
    }
}

fn run(count: usize, sleep: Duration, stack_size: usize) -> io::Result<()> {
    println!("many: {count} coroutines, each sleeping {sleep:?}, stacks of {stack_size} bytes");
    let rss_before = resident_bytes()?;
    let start = Instant::now();
    let progress = Rc::new(Progress::new(start, count));
    let mut sleepers = Vec::with_capacity(count);
    for i in 0..count {
        let progress_of_sleeper = progress.clone();
        let sleeper = green::task::Builder::new().stack_size(stack_size).spawn(move || {
            progress_of_sleeper.one_asleep();
            drop(progress_of_sleeper);
            green::sleep(sleep)
        });
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
    // Main goes to the back of the run queue: every sleeper runs up to its
    // park in `sleep` before main continues.
    green::yield_now();
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
/// none at all for a run that is over within its first second. Everything
/// runs on one thread, so plain `Cell`s do.
#[derive(Debug)]
struct Progress {
    /// When the run started.
    start: Instant,
    /// When the last progress line was printed (or the run started).
    last_line: Cell<Instant>,
    /// Calls to `tick` since the clock was last read.
    ticks: Cell<usize>,
    /// Coroutines to spawn.
    count: usize,
    /// Coroutines spawned so far.
    spawned: Cell<usize>,
    /// Coroutines that have run up to their sleep.
    asleep: Cell<usize>,
    /// Coroutines joined after waking.
    joined: Cell<usize>,
}

impl Progress {
    fn new(start: Instant, count: usize) -> Progress {
        Progress {
            start,
            last_line: Cell::new(start),
            ticks: Cell::new(0),
            count,
            spawned: Cell::new(0),
            asleep: Cell::new(0),
            joined: Cell::new(0),
        }
    }

    /// One more coroutine spawned.
    fn one_spawned(&self) {
        self.spawned.set(self.spawned.get() + 1);
        self.tick();
    }

    /// One more coroutine has run up to its sleep.
    fn one_asleep(&self) {
        self.asleep.set(self.asleep.get() + 1);
        self.tick();
    }

    /// One more coroutine joined.
    fn one_joined(&self) {
        self.joined.set(self.joined.get() + 1);
        self.tick();
    }

    /// Prints a progress line if a second has passed since the last one. Reads the clock only every
    /// [`PROGRESS_CHECK_EVERY`] steps, so that it costs next to nothing.
    fn tick(&self) {
        let ticks = self.ticks.get() + 1;
        if ticks < PROGRESS_CHECK_EVERY {
            self.ticks.set(ticks);
            return;
        }
        self.ticks.set(0);
        let now = Instant::now();
        if now - self.last_line.get() < Duration::from_secs(1) {
            return;
        }
        self.last_line.set(now);
        println!(
            "many: {:>6.1} s: spawned {} of {count}, {} asleep, {} joined",
            (now - self.start).as_secs_f64(),
            self.spawned.get(),
            self.asleep.get(),
            self.joined.get(),
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
