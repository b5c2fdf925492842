//! A crawler against a local HTTP server it starts itself: a concurrency
//! limit (a semaphore), a timeout per request and a deadline for the whole
//! crawl, then a summary table.
//!
//! The server serves three kinds of path: `/page/N` answers after a short
//! delay, `/slow/N` takes two seconds (longer than the per-request timeout),
//! `/fail/N` answers `500`, and `/drop/N` closes the connection without a
//! word. The crawl runs in a `green::scope` inside a `green::deadline`:
//! when the deadline passes, the scope cancels every fetch still waiting
//! for a permit or a response, and each is reported as such.
//!
//! Run with `cargo run --release --example crawler -- --urls 40 --concurrency 4`.
//!
//! A crawl of up to 60 urls prints a line per url. A bigger one (try
//! `--urls 20000 --concurrency 5000`) prints counts instead: of each kind
//! of failure, with the first few failures as samples, and of the errors
//! the server side ran into (connections reset by a client that gave up,
//! too many open files). Nothing is printed per url or per error.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream};
use green::sync::{AcquireError, Semaphore};
use green_examples::Flag::Value;

const USAGE: &str = "\
usage: crawler [--urls N] [--concurrency N] [--timeout-ms MS] [--deadline-ms MS]

Starts a local HTTP server with fast, slow, failing and dropping paths, then
fetches N of them with at most --concurrency at a time, a per-request
timeout and an overall deadline, and prints what happened: to each url for
up to 60 urls, as counts by kind with a few samples for more.

  --urls N          paths to fetch, 1 to 1000000 (default 60)
  --concurrency N   fetches in flight at once, 1 to 100000; a value outside
                    that is clamped (default 4)
  --timeout-ms MS   per-request timeout, 1 to 3600000 (default 300)
  --deadline-ms MS  deadline for the whole crawl, 1 to 3600000 (default 1000)";

/// A crawl of at most this many urls gets a line per url in the summary;
/// a bigger one gets counts and samples.
const TABLE_LIMIT: usize = 60;

/// Failures shown as samples when there is no line per url.
const SAMPLES: usize = 3;

/// Kinds of error listed by name in a summary; the rest are counted
/// together.
const KINDS_SHOWN: usize = 10;

/// What happened to one URL.
#[derive(Debug)]
enum Outcome {
    /// The server answered with this status and body length.
    Answered { status: u16, bytes: usize },
    /// The request failed (connection refused, reset, bad response).
    Failed {
        /// What went wrong.
        message: String,
        /// Whether the process had run out of file descriptors, which
        /// `--concurrency` or `ulimit -n` can fix.
        out_of_descriptors: bool,
    },
    /// The per-request timeout passed.
    TimedOut,
    /// The overall deadline passed before the fetch finished or started.
    Cancelled,
}

impl Outcome {
    fn failed(err: &io::Error) -> Outcome {
        Outcome::Failed {
            message: err.to_string(),
            out_of_descriptors: err.raw_os_error() == Some(libc::EMFILE),
        }
    }

    /// What happened, in words.
    fn describe(&self) -> String {
        match self {
            Outcome::Answered { status, bytes } if *status < 400 => format!("{status}, {bytes} bytes"),
            Outcome::Answered { status, .. } => format!("{status} from the server"),
            Outcome::Failed { message, .. } => format!("failed: {message}"),
            Outcome::TimedOut => String::from("timed out"),
            Outcome::Cancelled => String::from("cancelled by the overall deadline"),
        }
    }
}

/// One line of the summary.
struct Row {
    /// The path fetched.
    path: String,
    /// How it ended.
    outcome: Outcome,
    /// How long it took from the start of the crawl.
    finished_at: Duration,
}

/// How many times each kind of error happened, by its message; a run
/// with thousands of errors reports a few lines of counts.
#[derive(Debug, Default)]
struct Tally {
    /// Occurrences of each message.
    counts: BTreeMap<String, usize>,
}

impl Tally {
    fn add(&mut self, kind: String) {
        *self.counts.entry(kind).or_insert(0) += 1;
    }

    fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// Prints the counts, most frequent first, at most [`KINDS_SHOWN`]
    /// lines and one for the rest.
    fn print(&self) {
        let mut kinds: Vec<(&String, &usize)> = self.counts.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        for (kind, count) in kinds.iter().take(KINDS_SHOWN) {
            println!("  {count:>7}  {kind}");
        }
        if kinds.len() > KINDS_SHOWN {
            let rest: usize = kinds[KINDS_SHOWN..].iter().map(|(_, count)| **count).sum();
            println!("  {rest:>7}  of {} other kinds", kinds.len() - KINDS_SHOWN);
        }
    }
}

fn main() {
    let flags = green_examples::Flags::from_env(
        "crawler",
        USAGE,
        &[Value("urls"), Value("concurrency"), Value("timeout-ms"), Value("deadline-ms")],
    );
    let urls: usize = flags.get_number("urls", 60, 1..=1_000_000);
    let concurrency: usize = flags.get_clamped("concurrency", 4, 1..=100_000);
    let timeout = Duration::from_millis(flags.get_number("timeout-ms", 300, 1..=3_600_000));
    let deadline = Duration::from_millis(flags.get_number("deadline-ms", 1000, 1..=3_600_000));
    if let Err(err) = green::run(|| crawl(urls, concurrency, timeout, deadline)) {
        eprintln!("crawler: {err}");
        std::process::exit(1);
    }
}

fn crawl(urls: usize, concurrency: usize, timeout: Duration, deadline: Duration) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server_errors = Rc::new(RefCell::new(Tally::default()));
    {
        let server_errors = server_errors.clone();
        green::task::Builder::new().name("server").spawn(move || serve(&listener, &server_errors))?;
    }
    println!(
        "crawler: server on http://{addr}; {urls} urls, {concurrency} at a time, {timeout:?} per request, {deadline:?} in all"
    );

    let paths: Vec<String> = (0..urls)
        .map(|i| match i % 6 {
            3 => format!("/slow/{i}"),
            4 => format!("/fail/{i}"),
            5 => format!("/drop/{i}"),
            _ => format!("/page/{i}"),
        })
        .collect();
    let permits = Semaphore::new(concurrency);
    let rows = RefCell::new(Vec::new());
    let start = Instant::now();
    let crawl = green::deadline(start + deadline, || {
        green::scope(|s| -> io::Result<()> {
            for path in &paths {
                let (permits, rows) = (&permits, &rows);
                s.try_spawn(move || -> io::Result<()> {
                    let outcome = match permits.acquire() {
                        Ok(_permit) => match green::timeout(timeout, || fetch(addr, path)) {
                            Ok(Ok(answer)) => answer,
                            Ok(Err(err)) if green::is_cancelled(&err) => Outcome::Cancelled,
                            Ok(Err(err)) => Outcome::failed(&err),
                            Err(_elapsed) => Outcome::TimedOut,
                        },
                        Err(AcquireError::Cancelled) => Outcome::Cancelled,
                        Err(err) => Outcome::failed(&io::Error::other(format!("no permit: {err:?}"))),
                    };
                    rows.borrow_mut().push(Row { path: path.clone(), outcome, finished_at: start.elapsed() });
                    // A failed fetch is a row in the table, not a failure of
                    // the crawl: every child returns Ok.
                    Ok(())
                })?;
            }
            Ok(())
        })
    });
    let total = start.elapsed();
    // A fetch that could not even be started (no memory for its stack)
    // ends the crawl with that error, after the ones started have ended.
    if let Ok(Ok(Err(err))) = crawl {
        return Err(io::Error::new(err.kind(), format!("cannot start a fetch: {err}")));
    }
    print_summary(&rows.into_inner(), urls, total, crawl.is_err(), &server_errors.borrow());
    Ok(())
}

/// Fetches `path` with HTTP/1.0 and returns the status and body length.
fn fetch(addr: SocketAddr, path: &str) -> io::Result<Outcome> {
    let mut stream = TcpStream::connect(addr)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP status line in the response"))?;
    let bytes = text.split_once("\r\n\r\n").map_or(0, |(_, body)| body.len());
    Ok(Outcome::Answered { status, bytes })
}

/// The local server: one coroutine per connection. Its errors are counted
/// in `errors`, not printed: under load there can be thousands.
fn serve(listener: &TcpListener, errors: &Rc<RefCell<Tally>>) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) => {
                errors.borrow_mut().add(format!("accept failed: {err}"));
                // Let connections close before trying again; only this
                // coroutine waits.
                if green::sleep(Duration::from_millis(10)).is_err() {
                    return;
                }
                continue;
            }
        };
        let errors_of_answer = errors.clone();
        let answering = green::task::Builder::new().spawn(move || {
            if let Err(err) = answer(stream)
                && !green::is_cancelled(&err)
            {
                errors_of_answer.borrow_mut().add(format!("answering failed: {err}"));
            }
        });
        if let Err(err) = answering {
            errors.borrow_mut().add(format!("cannot start a coroutine for a connection: {err}"));
        }
    }
}

/// Reads one request and answers it according to its path.
fn answer(stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = if path.starts_with("/slow/") {
        green::sleep(Duration::from_secs(2))?;
        (200, "slow but sure\n")
    } else if path.starts_with("/fail/") {
        (500, "internal error\n")
    } else if path.starts_with("/drop/") {
        return Ok(()); // close without answering
    } else if path.starts_with("/page/") {
        green::sleep(Duration::from_millis(20))?;
        (200, "<html>a page</html>\n")
    } else {
        (404, "not found\n")
    };
    let mut stream = &stream;
    write!(stream, "HTTP/1.0 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

fn print_summary(rows: &[Row], urls: usize, total: Duration, deadline_passed: bool, server_errors: &Tally) {
    let mut rows: Vec<&Row> = rows.iter().collect();
    rows.sort_by_key(|row| row.finished_at);
    let at = |row: &Row| row.finished_at.as_secs_f64() * 1e3;
    if urls <= TABLE_LIMIT {
        println!("\n{:<12} {:>9}  outcome", "path", "at (ms)");
        for row in &rows {
            println!("{:<12} {:>9.1}  {}", row.path, at(row), row.outcome.describe());
        }
    }
    let (mut ok, mut timed_out, mut cancelled) = (0, 0, 0);
    let mut failures = Tally::default();
    let mut samples = Vec::new();
    let mut out_of_descriptors = 0;
    for row in &rows {
        match &row.outcome {
            Outcome::Answered { status, .. } if *status < 400 => ok += 1,
            Outcome::TimedOut => timed_out += 1,
            Outcome::Cancelled => cancelled += 1,
            failed => {
                if let Outcome::Failed { out_of_descriptors: true, .. } = failed {
                    out_of_descriptors += 1;
                }
                failures.add(failed.describe());
                if samples.len() < SAMPLES {
                    samples.push(row);
                }
            }
        }
    }
    println!(
        "\n{} urls in {:.0} ms: {ok} ok, {} failed, {timed_out} timed out, {cancelled} cancelled{}",
        rows.len(),
        total.as_secs_f64() * 1e3,
        failures.total(),
        if deadline_passed { " (the overall deadline passed)" } else { "" }
    );
    if failures.total() > 0 {
        println!("failures by kind:");
        failures.print();
        if urls > TABLE_LIMIT {
            println!("first failures:");
            for row in samples {
                println!("  {:<12} {:>9.1} ms  {}", row.path, at(row), row.outcome.describe());
            }
        }
    }
    if out_of_descriptors > 0 {
        println!(
            "{out_of_descriptors} fetches found no file descriptor free: lower --concurrency or raise the \
             limit on open files (ulimit -n)"
        );
    }
    if server_errors.total() == 0 {
        println!("server side: no errors");
    } else {
        println!("server side: {} errors", server_errors.total());
        server_errors.print();
    }
}
