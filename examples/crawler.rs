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

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream};
use green::sync::{AcquireError, Semaphore};

const USAGE: &str = "\
usage: crawler [--urls N] [--concurrency N] [--timeout-ms MS] [--deadline-ms MS]

Starts a local HTTP server with fast, slow, failing and dropping paths, then
fetches N of them with at most --concurrency at a time, a per-request
timeout and an overall deadline, and prints what happened to each.

  --urls N          paths to fetch (default 60)
  --concurrency N   fetches in flight at once (default 4)
  --timeout-ms MS   per-request timeout (default 300)
  --deadline-ms MS  deadline for the whole crawl (default 1000)";

/// What happened to one URL.
#[derive(Debug)]
enum Outcome {
    /// The server answered with this status and body length.
    Answered { status: u16, bytes: usize },
    /// The request failed (connection refused, reset, bad response).
    Failed(String),
    /// The per-request timeout passed.
    TimedOut,
    /// The overall deadline passed before the fetch finished or started.
    Cancelled,
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

fn main() {
    let flags = green_examples::Flags::from_env(USAGE, &["urls", "concurrency", "timeout-ms", "deadline-ms"]);
    let urls: usize = flags.get("urls", 60);
    let concurrency: usize = flags.get("concurrency", 4);
    let timeout = Duration::from_millis(flags.get("timeout-ms", 300));
    let deadline = Duration::from_millis(flags.get("deadline-ms", 1000));
    if let Err(err) = green::run(|| crawl(urls, concurrency.max(1), timeout, deadline)) {
        eprintln!("crawler: {err}");
        std::process::exit(1);
    }
}

fn crawl(urls: usize, concurrency: usize, timeout: Duration, deadline: Duration) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    green::task::Builder::new().name("server").spawn(move || serve(listener))?;
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
        green::scope(|s| {
            for path in &paths {
                let (permits, rows) = (&permits, &rows);
                s.spawn(move || -> io::Result<()> {
                    let outcome = match permits.acquire() {
                        Ok(_permit) => match green::timeout(timeout, || fetch(addr, path)) {
                            Ok(Ok(answer)) => answer,
                            Ok(Err(err)) if green::is_cancelled(&err) => Outcome::Cancelled,
                            Ok(Err(err)) => Outcome::Failed(err.to_string()),
                            Err(_elapsed) => Outcome::TimedOut,
                        },
                        Err(AcquireError::Cancelled) => Outcome::Cancelled,
                        Err(err) => Outcome::Failed(format!("no permit: {err:?}")),
                    };
                    rows.borrow_mut().push(Row { path: path.clone(), outcome, finished_at: start.elapsed() });
                    // A failed fetch is a row in the table, not a failure of
                    // the crawl: every child returns Ok.
                    Ok(())
                });
            }
        })
    });
    let total = start.elapsed();
    print_summary(&rows.into_inner(), total, crawl.is_err());
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

/// The local server: one coroutine per connection.
fn serve(listener: TcpListener) -> io::Result<()> {
    for stream in listener.incoming() {
        let stream = stream?;
        green::spawn(move || {
            if let Err(err) = answer(stream)
                && !green::is_cancelled(&err)
            {
                eprintln!("server: {err}");
            }
        });
    }
    Ok(())
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

fn print_summary(rows: &[Row], total: Duration, deadline_passed: bool) {
    let mut rows: Vec<&Row> = rows.iter().collect();
    rows.sort_by_key(|row| row.finished_at);
    println!("\n{:<12} {:>9}  outcome", "path", "at (ms)");
    let (mut ok, mut failed, mut timed_out, mut cancelled) = (0, 0, 0, 0);
    for row in &rows {
        let outcome = match &row.outcome {
            Outcome::Answered { status, bytes } if *status < 400 => {
                ok += 1;
                format!("{status}, {bytes} bytes")
            }
            Outcome::Answered { status, .. } => {
                failed += 1;
                format!("{status} from the server")
            }
            Outcome::Failed(err) => {
                failed += 1;
                format!("failed: {err}")
            }
            Outcome::TimedOut => {
                timed_out += 1;
                String::from("timed out")
            }
            Outcome::Cancelled => {
                cancelled += 1;
                String::from("cancelled by the overall deadline")
            }
        };
        println!("{:<12} {:>9.1}  {outcome}", row.path, row.finished_at.as_secs_f64() * 1e3);
    }
    println!(
        "\n{} urls in {:.0} ms: {ok} ok, {failed} failed, {timed_out} timed out, {cancelled} cancelled{}",
        rows.len(),
        total.as_secs_f64() * 1e3,
        if deadline_passed { " (the overall deadline passed)" } else { "" }
    );
}
