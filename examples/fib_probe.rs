//! A load generator and latency probe for `fib_server`: how fast does a
//! server answer cheap requests, alone or while other connections keep it
//! busy with expensive ones?
//!
//! `--probes` connections each send `1` and wait for the answer, one
//! request in flight per connection, for `--duration`; the latency of
//! every answer is recorded. Beside them, `--heavy` connections send
//! `--heavy-n` (30 by default, milliseconds of CPU time per request) over
//! and over, one in flight each. The heavy load starts first, one
//! connection at a time (each has its first request in flight before the
//! next connects, as clients arrive over time); then the probes connect
//! and start. Every answer is checked against `fib(n)`; a wrong answer, an
//! error line or a lost connection counts as an error and ends that
//! connection.
//!
//! The result is one line on stdout, for people and for `showdown`:
//!
//! ```text
//! probe rps=12345.6 p50_us=40 p99_us=120 max_us=900 requests=18518 heavy_done=310 heavy_rps=206.7 errors=0
//! ```
//!
//! `rps`, the percentiles and `requests` are those of the probe
//! connections; `heavy_done` counts the heavy answers received while the
//! probes ran.
//!
//! ```text
//! cargo run --release --example fib_probe -- --addr 127.0.0.1:7000 --duration 2 --heavy 4
//! ```

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use green_examples::Flag::Value;
use green_examples::fib::{MAX_N, fib_fast};

const USAGE: &str = "\
usage: fib_probe --addr ADDR [--duration SECS] [--probes N] [--heavy N] [--heavy-n N]

Measures how fast a fib_server answers cheap requests (fib(1)), alone or
beside connections that keep asking for expensive ones, and prints one line:
probe rps=... p50_us=... p99_us=... max_us=... requests=... heavy_done=...
heavy_rps=... errors=...

  --addr ADDR       the server's address, such as 127.0.0.1:7000
  --duration SECS   how long the probes run, 0.1 to 3600, fractions allowed
                    (default 5)
  --probes N        connections sending cheap requests, one in flight each,
                    1 to 1000 (default 4)
  --heavy N         connections sending expensive requests nonstop, one in
                    flight each, 0 to 1000 (default 0)
  --heavy-n N       the n of the expensive requests, 0 to 40 (default 30)";

/// The n of a cheap request.
const CHEAP_N: u32 = 1;

/// How long one answer may take before the connection counts as failed: a
/// bound against a server that stopped answering, far above any answer's
/// time on a working one.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

fn main() {
    let flags = green_examples::Flags::from_env(
        "fib_probe",
        USAGE,
        &[Value("addr"), Value("duration"), Value("probes"), Value("heavy"), Value("heavy-n")],
    );
    let options = Options {
        addr: flags.get_required("addr", "an address such as 127.0.0.1:7000"),
        duration: flags.get_seconds("duration", Duration::from_secs(5), 0.1..=3600.0),
        probes: flags.get_number("probes", 4, 1..=1000),
        heavy: flags.get_number("heavy", 0, 0..=1000),
        heavy_n: flags.get_number("heavy-n", 30, 0..=MAX_N),
    };
    match measure(&options) {
        Ok(result) => println!("{result}"),
        Err(err) => {
            eprintln!("fib_probe: {err}");
            std::process::exit(1);
        }
    }
}

/// What to measure.
#[derive(Debug)]
struct Options {
    /// The server.
    addr: SocketAddr,
    /// How long the probe connections send requests.
    duration: Duration,
    /// How many probe connections.
    probes: usize,
    /// How many heavy connections.
    heavy: usize,
    /// The n the heavy connections ask for.
    heavy_n: u32,
}

/// The phase of a measurement, as the heavy connections see it: the load
/// is starting, the probes are running, or it is over.
const STARTING: u8 = 0;
/// See [`STARTING`].
const MEASURING: u8 = 1;
/// See [`STARTING`].
const STOPPED: u8 = 2;

/// One connection to the server, asking one request at a time.
#[derive(Debug)]
struct Connection {
    /// The socket, for writing requests.
    stream: TcpStream,
    /// The same socket, buffered, for reading answers.
    reader: BufReader<TcpStream>,
    /// The last answer read.
    answer: String,
}

impl Connection {
    /// Connects to `addr`.
    fn open(addr: SocketAddr) -> io::Result<Connection> {
        let stream = TcpStream::connect(addr)
            .map_err(|err| io::Error::new(err.kind(), format!("cannot connect to {addr}: {err}")))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(ANSWER_LIMIT))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Connection { stream, reader, answer: String::new() })
    }

    /// Sends the request `n`.
    fn send(&mut self, n: u32) -> io::Result<()> {
        self.stream.write_all(format!("{n}\n").as_bytes())
    }

    /// Reads the answer to a request `n` and checks that it is `fib(n)`.
    fn receive(&mut self, n: u32) -> io::Result<()> {
        self.answer.clear();
        if self.reader.read_line(&mut self.answer)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        let answer = self.answer.trim_end();
        if answer.parse::<u64>().ok() != Some(fib_fast(n)) {
            return Err(io::Error::other(format!("asked fib({n}), got {answer:?}")));
        }
        Ok(())
    }
}

/// What one probe connection measured.
#[derive(Debug, Default)]
struct ProbeTally {
    /// The latency of each answer, in microseconds.
    latencies: Vec<u64>,
    /// The first error, which ended the connection.
    error: Option<io::Error>,
}

/// What one heavy connection did.
#[derive(Debug, Default)]
struct HeavyTally {
    /// Answers received while the probes ran.
    done: u64,
    /// The error that ended the connection while the probes ran.
    error: Option<io::Error>,
}

/// The result line.
#[derive(Debug)]
struct Summary {
    /// Cheap answers per second over the probes' run.
    rps: f64,
    /// Median latency of the cheap answers, in microseconds.
    p50: u64,
    /// 99th percentile, in microseconds.
    p99: u64,
    /// The slowest cheap answer, in microseconds.
    max: u64,
    /// Cheap answers received.
    requests: usize,
    /// Heavy answers received while the probes ran.
    heavy_done: u64,
    /// Heavy answers per second over the probes' run.
    heavy_rps: f64,
    /// Connections ended by an error.
    errors: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Summary { rps, p50, p99, max, requests, heavy_done, heavy_rps, errors } = self;
        write!(
            f,
            "probe rps={rps:.1} p50_us={p50} p99_us={p99} max_us={max} requests={requests} \
             heavy_done={heavy_done} heavy_rps={heavy_rps:.1} errors={errors}"
        )
    }
}

/// Runs the heavy connections and the probes, and sums up.
fn measure(options: &Options) -> io::Result<Summary> {
    // The heavy connections arrive one by one, each with its first request
    // in flight before the next connects, as clients arrive over time: a
    // server that places connections where there is room (an idle worker,
    // an idle process) can see the load it already has.
    let phase = Arc::new(AtomicU8::new(STARTING));
    let mut heavy_sockets = Vec::with_capacity(options.heavy);
    let mut heavy_threads = Vec::with_capacity(options.heavy);
    for _ in 0..options.heavy {
        let connection = Connection::open(options.addr)?;
        heavy_sockets.push(connection.stream.try_clone()?);
        let (started, first_sent) = mpsc::channel();
        let (phase, n) = (phase.clone(), options.heavy_n);
        heavy_threads.push(spawn("heavy", move || hammer(connection, n, &phase, started))?);
        // An error means the thread ended at once; the loop goes on.
        let _ = first_sent.recv();
    }
    let probes: Vec<Connection> =
        (0..options.probes).map(|_| Connection::open(options.addr)).collect::<io::Result<_>>()?;

    phase.store(MEASURING, Ordering::SeqCst);
    let start = Instant::now();
    let deadline = start + options.duration;
    let probe_threads = probes
        .into_iter()
        .map(|connection| spawn("probe", move || probe(connection, deadline)))
        .collect::<io::Result<Vec<_>>>()?;
    let tallies: Vec<ProbeTally> = probe_threads.into_iter().map(join).collect::<io::Result<_>>()?;
    let elapsed = start.elapsed().as_secs_f64();

    // Ends the heavy connections without waiting for the answers in
    // flight: their reads fail at once, and that is not an error.
    phase.store(STOPPED, Ordering::SeqCst);
    for socket in &heavy_sockets {
        let _ = socket.shutdown(Shutdown::Both);
    }
    let heavy: Vec<HeavyTally> = heavy_threads.into_iter().map(join).collect::<io::Result<_>>()?;

    let mut latencies: Vec<u64> = tallies.iter().flat_map(|tally| tally.latencies.iter().copied()).collect();
    latencies.sort_unstable();
    let errors: Vec<&io::Error> = tallies
        .iter()
        .filter_map(|tally| tally.error.as_ref())
        .chain(heavy.iter().filter_map(|tally| tally.error.as_ref()))
        .collect();
    if let Some(first) = errors.first() {
        eprintln!("fib_probe: {} connections failed; the first: {first}", errors.len());
    }
    let heavy_done = heavy.iter().map(|tally| tally.done).sum::<u64>();
    Ok(Summary {
        rps: latencies.len() as f64 / elapsed,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied().unwrap_or(0),
        requests: latencies.len(),
        heavy_done,
        heavy_rps: heavy_done as f64 / elapsed,
        errors: errors.len(),
    })
}

/// Starts a named thread.
fn spawn<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> io::Result<JoinHandle<T>> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|err| io::Error::new(err.kind(), format!("cannot start a {name} thread: {err}")))
}

/// Waits for a thread; its panic becomes an error.
fn join<T>(thread: JoinHandle<T>) -> io::Result<T> {
    thread.join().map_err(|_| io::Error::other("a measuring thread panicked"))
}

/// A probe connection: cheap requests, one at a time, until `deadline`.
fn probe(mut connection: Connection, deadline: Instant) -> ProbeTally {
    let mut tally = ProbeTally::default();
    loop {
        let sent = Instant::now();
        if sent >= deadline {
            return tally;
        }
        if let Err(err) = connection.send(CHEAP_N).and_then(|()| connection.receive(CHEAP_N)) {
            tally.error = Some(err);
            return tally;
        }
        tally.latencies.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
}

/// A heavy connection: requests for `fib(n)`, one at a time, until
/// `phase` says [`STOPPED`]; the answers received while it says
/// [`MEASURING`] are counted. Says on `started` when its first request is
/// out (or failed).
fn hammer(mut connection: Connection, n: u32, phase: &AtomicU8, started: mpsc::Sender<()>) -> HeavyTally {
    let mut tally = HeavyTally::default();
    let mut started = Some(started);
    while phase.load(Ordering::SeqCst) != STOPPED {
        let sent = connection.send(n);
        if let Some(started) = started.take() {
            let _ = started.send(());
        }
        match sent.and_then(|()| connection.receive(n)) {
            Ok(()) if phase.load(Ordering::SeqCst) == MEASURING => tally.done += 1,
            Ok(()) => {}
            Err(err) => {
                if phase.load(Ordering::SeqCst) != STOPPED {
                    tally.error = Some(err);
                }
                break;
            }
        }
    }
    tally
}

/// The `p`th percentile of `sorted` (nearest rank), or 0 if it is empty.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
