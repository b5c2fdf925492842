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

use std::fs;
use std::io;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: many [--count N] [--sleep-ms MS] [--stack-size BYTES]

Spawns N coroutines that each sleep MS milliseconds, joins them, and reports
spawn time, total time and resident memory per coroutine.

  --count N           coroutines to spawn (default 100000)
  --sleep-ms MS       how long each sleeps (default 100)
  --stack-size BYTES  stack size of each coroutine (default green::DEFAULT_STACK_SIZE)";

fn main() {
    let flags = green_examples::Flags::from_env(USAGE, &["count", "sleep-ms", "stack-size"]);
    let count: usize = flags.get("count", 100_000);
    let sleep = Duration::from_millis(flags.get("sleep-ms", 100));
    let stack_size: usize = flags.get("stack-size", green::DEFAULT_STACK_SIZE);

    let outcome = green::Builder::new().stack_size(stack_size).run(|| run(count, sleep, stack_size));
    if let Err(err) = outcome {
        eprintln!("many: {err}");
        std::process::exit(1);
    }
}

fn run(count: usize, sleep: Duration, stack_size: usize) -> io::Result<()> {
    println!("many: {count} coroutines, each sleeping {sleep:?}, stacks of {stack_size} bytes");
    let rss_before = resident_bytes()?;
    let start = Instant::now();
    let mut sleepers = Vec::with_capacity(count);
    for i in 0..count {
        let sleeper = green::task::Builder::new().spawn(move || green::sleep(sleep));
        match sleeper {
            Ok(sleeper) => sleepers.push(sleeper),
            Err(err) => return Err(io::Error::new(err.kind(), format!("spawn #{i} failed: {err}"))),
        }
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
    }
    let total = start.elapsed();

    let n = count.max(1) as f64;
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
