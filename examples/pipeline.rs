//! A pipeline on green threads: a producer feeds a bounded queue, N workers
//! drain it, a collector counts what comes out. A progress line every
//! `--report` ms shows the queue depth and the throughput, so backpressure
//! is visible: with a fast producer and slow workers the queue stays full
//! and the producer spends its time parked in `send`; with a slow producer
//! the queue stays empty and the workers wait.
//!
//! ```text
//!   producer ──send──> [ bounded queue: --queue ] ──recv──> worker 1..N ──send──> collector
//!     (--rate/s)           full? send parks            (--work ms each)            counts, latency
//! ```
//!
//! ```text
//! cargo run --release --example pipeline                      # fast producer: queue full, producer parked
//! cargo run --release --example pipeline -- --rate 200        # producer slower than the workers: queue empty
//! cargo run --release --example pipeline -- --workers 16      # more workers: the queue drains
//! ```
//!
//! A worker's "work" is a `green::sleep`, standing for an I/O-bound step
//! (a call to another service): it parks the worker and lets the others
//! run. CPU-bound work would hold the one thread of this runtime.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::JoinHandle;
use green::channel::{self, Receiver, Sender, TrySendError};
use green::sync::Event;
use green_examples::Flag::Value;

const USAGE: &str = "\
usage: pipeline [--items N] [--workers N] [--queue N] [--rate N] [--work MS] [--report MS]

A producer feeds a bounded queue that N worker coroutines drain; a
collector counts the results. Prints the queue depth and the throughput
every --report ms, so backpressure shows.

  --items N     items to produce, 1 to 1000000000 (default 400)
  --workers N   worker coroutines, 1 to 100000; a value outside that is
                clamped (default 4)
  --queue N     capacity of the queue between producer and workers, 0 to
                1000000; 0 hands each item over directly (default 16)
  --rate N      items the producer makes per second, 0 to 1000000; 0 = as
                fast as it can (default 0)
  --work MS     time a worker spends on each item, in milliseconds, 0 to
                60000; the work is a sleep, like waiting for another
                service (default 10)
  --report MS   time between progress lines, in milliseconds, 1 to 3600000;
                a value outside that is clamped (default 200)";

/// What the command line asked for.
#[derive(Debug, Clone, Copy)]
struct Config {
    /// Items to produce.
    items: u64,
    /// Worker coroutines.
    workers: usize,
    /// Capacity of the queue between the producer and the workers.
    queue: usize,
    /// Items per second the producer makes; 0 for as fast as it can.
    rate: u64,
    /// Time a worker spends on each item.
    work: Duration,
    /// Time between progress lines.
    report: Duration,
}

fn main() {
    let flags = green_examples::Flags::from_env(
        "pipeline",
        USAGE,
        &[Value("items"), Value("workers"), Value("queue"), Value("rate"), Value("work"), Value("report")],
    );
    let config = Config {
        items: flags.get_number("items", 400, 1..=1_000_000_000),
        workers: flags.get_clamped("workers", 4, 1..=100_000),
        queue: flags.get_number("queue", 16, 0..=1_000_000),
        rate: flags.get_number("rate", 0, 0..=1_000_000),
        work: Duration::from_millis(flags.get_number("work", 10, 0..=60_000)),
        report: Duration::from_millis(flags.get_clamped("report", 200, 1..=3_600_000)),
    };
    if let Err(err) = green::run(|| run(config)) {
        eprintln!("pipeline: {err}");
        std::process::exit(1);
    }
}

/// One item on its way through the pipeline.
#[derive(Debug)]
struct Item {
    /// When the producer made it, for the latency.
    made: Instant,
}

/// What the producer is doing, for the progress lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Producer {
    /// Making items and finding room in the queue.
    Running,
    /// Parked in `send`: the queue is full.
    Parked,
    /// Waiting for its next tick (`--rate`).
    Pacing,
    /// All items made; the queue is closed.
    Finished,
}

impl Producer {
    fn describe(self) -> &'static str {
        match self {
            Producer::Running => "running",
            Producer::Parked => "parked in send",
            Producer::Pacing => "pacing (--rate)",
            Producer::Finished => "finished",
        }
    }
}

/// Counters shared by the coroutines of the pipeline. All of them run on
/// one thread, so plain `Cell`s in an `Rc` do.
#[derive(Debug)]
struct Stats {
    /// When the pipeline started.
    start: Instant,
    /// Items made and handed to the queue.
    produced: Cell<u64>,
    /// What the producer is doing now.
    producer: Cell<Producer>,
    /// Sends that found the queue full and parked.
    parked_sends: Cell<u64>,
    /// Time the producer spent parked in those sends.
    parked_time: Cell<Duration>,
    /// Items the collector has received.
    collected: Cell<u64>,
    /// Sum of the items' time from producer to collector.
    latency_total: Cell<Duration>,
    /// The longest such time.
    latency_max: Cell<Duration>,
}

fn run(config: Config) -> io::Result<()> {
    println!(
        "pipeline: {} items, producer at {}, queue of {}, {} workers x {:?} per item (at most {:.0} items/s)",
        config.items,
        if config.rate == 0 { "full speed".to_owned() } else { format!("{}/s", config.rate) },
        config.queue,
        config.workers,
        config.work,
        capacity_per_second(&config),
    );
    let stats = Rc::new(Stats {
        start: Instant::now(),
        produced: Cell::new(0),
        producer: Cell::new(Producer::Running),
        parked_sends: Cell::new(0),
        parked_time: Cell::new(Duration::ZERO),
        collected: Cell::new(0),
        latency_total: Cell::new(Duration::ZERO),
        latency_max: Cell::new(Duration::ZERO),
    });
    let (queue_tx, queue_rx) = channel::bounded::<Item>(config.queue);
    let (done_tx, done_rx) = channel::unbounded::<Item>();
    let finished = Rc::new(Event::new());

    let reporter = {
        let (stats, finished, queue) = (stats.clone(), finished.clone(), queue_rx.clone());
        spawn("the reporter", move || report(&stats, &finished, &queue, config))?
    };
    let producer = {
        let stats = stats.clone();
        spawn("the producer", move || produce(&stats, queue_tx, config))?
    };
    let workers = (0..config.workers)
        .map(|i| {
            let (queue, done) = (queue_rx.clone(), done_tx.clone());
            spawn(&format!("worker {}", i + 1), move || work(&queue, &done, config.work))
        })
        .collect::<io::Result<Vec<_>>>()?;
    // The workers hold the only other handles: when they are gone, the
    // collector's `iter` ends.
    drop((queue_rx, done_tx));
    let collector = {
        let (stats, finished) = (stats.clone(), finished.clone());
        spawn("the collector", move || {
            collect(&stats, &done_rx);
            finished.set();
        })?
    };

    for handle in [producer, collector, reporter].into_iter().chain(workers) {
        if let Err(err) = handle.join() {
            eprintln!("pipeline: {err}");
        }
    }
    summarise(&stats, &config);
    Ok(())
}

/// Spawns one coroutine of the pipeline; the error says which could not be
/// started (there is no memory or address space left for its stack).
fn spawn(what: &str, f: impl FnOnce() + 'static) -> io::Result<JoinHandle<()>> {
    green::task::Builder::new()
        .spawn(f)
        .map_err(|err| io::Error::new(err.kind(), format!("cannot start {what}: {err}")))
}

/// The most items per second the workers can finish.
fn capacity_per_second(config: &Config) -> f64 {
    if config.work.is_zero() { f64::INFINITY } else { config.workers as f64 / config.work.as_secs_f64() }
}

/// Makes `config.items` items, at `config.rate` per second if it is not 0,
/// and sends them; dropping `queue` at the end tells the workers.
fn produce(stats: &Stats, queue: Sender<Item>, config: Config) {
    let tick = (config.rate > 0).then(|| Duration::from_secs_f64(1.0 / config.rate as f64));
    for id in 0..config.items {
        if let Some(tick) = tick {
            stats.producer.set(Producer::Pacing);
            let next = stats.start + tick.mul_f64(id as f64);
            if green::sleep_until(next).is_err() {
                break;
            }
        }
        stats.producer.set(Producer::Running);
        let item = Item { made: Instant::now() };
        // Try first, so that a full queue can be counted and shown.
        let sent = match queue.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(item)) => {
                stats.producer.set(Producer::Parked);
                let parked = Instant::now();
                let sent = queue.send(item).map_err(|err| err.to_string());
                stats.parked_sends.set(stats.parked_sends.get() + 1);
                stats.parked_time.set(stats.parked_time.get() + parked.elapsed());
                sent
            }
            Err(err @ TrySendError::Disconnected(_)) => Err(err.to_string()),
        };
        if let Err(err) = sent {
            eprintln!("pipeline: the producer stops at item {id}: {err}");
            break;
        }
        stats.produced.set(stats.produced.get() + 1);
    }
    stats.producer.set(Producer::Finished);
}

/// Takes items from the queue until it is closed and empty, spends
/// `per_item` on each, and passes it on.
fn work(queue: &Receiver<Item>, done: &Sender<Item>, per_item: Duration) {
    for item in queue.iter() {
        if green::sleep(per_item).is_err() || done.send(item).is_err() {
            return;
        }
    }
}

/// Counts the finished items and their latency.
fn collect(stats: &Stats, done: &Receiver<Item>) {
    for item in done.iter() {
        let latency = item.made.elapsed();
        stats.collected.set(stats.collected.get() + 1);
        stats.latency_total.set(stats.latency_total.get() + latency);
        stats.latency_max.set(stats.latency_max.get().max(latency));
    }
}

/// Prints a progress line every `config.report` until `finished` is set.
fn report(stats: &Stats, finished: &Event, queue: &Receiver<Item>, config: Config) {
    println!(
        "{:>7}  {:>6}  {:>13}  {:<16}  {:>6}  {:>8}",
        "time", "made", "queue", "producer", "done", "done/s"
    );
    let mut last = (Instant::now(), 0);
    // The wait doubles as the timer: it ends early when the run is over.
    while finished.wait_timeout(config.report).is_err() {
        let now = Instant::now();
        let collected = stats.collected.get();
        let rate = (collected - last.1) as f64 / (now - last.0).as_secs_f64();
        last = (now, collected);
        let depth = queue.len();
        let queue_text = match queue.capacity() {
            Some(capacity) if depth >= capacity => format!("{depth}/{capacity} full"),
            Some(capacity) => format!("{depth}/{capacity}"),
            None => depth.to_string(),
        };
        println!(
            "{:>6.2}s  {:>6}  {:>13}  {:<16}  {:>6}  {:>8.0}",
            stats.start.elapsed().as_secs_f64(),
            stats.produced.get(),
            queue_text,
            stats.producer.get().describe(),
            collected,
            rate,
        );
    }
}

fn summarise(stats: &Stats, config: &Config) {
    let elapsed = stats.start.elapsed();
    let collected = stats.collected.get();
    println!(
        "pipeline: {collected} items in {:.2} s: {:.0} items/s (the workers can do at most {:.0}/s)",
        elapsed.as_secs_f64(),
        collected as f64 / elapsed.as_secs_f64(),
        capacity_per_second(config),
    );
    let parked = stats.parked_time.get();
    println!(
        "producer: parked in send {} times, {:.2} s in all ({:.0}% of the run){}",
        stats.parked_sends.get(),
        parked.as_secs_f64(),
        100.0 * parked.as_secs_f64() / elapsed.as_secs_f64(),
        if parked > elapsed / 2 {
            ": the workers are the bottleneck, and the full queue held the producer back"
        } else {
            ""
        },
    );
    if collected > 0 {
        println!(
            "latency (made -> collected): mean {:.1} ms, max {:.1} ms",
            (stats.latency_total.get() / u32::try_from(collected).unwrap_or(u32::MAX)).as_secs_f64() * 1e3,
            stats.latency_max.get().as_secs_f64() * 1e3,
        );
    }
}
