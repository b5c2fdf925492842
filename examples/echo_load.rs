//! The load generator for the echo servers (`echo`, `echo_tokio`,
//! `echo_threads`): `--connections` connections in a closed loop, each
//! sending a message of `--size` bytes, waiting for all of it to come back,
//! and sending the next, for `--duration`. Every echoed byte is checked
//! against what was sent (each message carries its sequence number, so a
//! lost, repeated or misrouted echo shows too); a wrong echo, a closed or
//! failed connection, or an echo that takes longer than 10 s counts as an
//! error, ends that connection, and makes the program exit with status 1.
//!
//! It runs on a tokio `current_thread` runtime: one thread, one task per
//! connection, the same client for every server, and cheap enough that
//! `benches/scripts/servers.sh` can give it one CPU and the server another.
//! All connections are opened before the clock starts.
//!
//! The result is one line on stdout, for people and for scripts:
//!
//! ```text
//! echo_load rps=51234.5 p50_us=18 p99_us=41 max_us=900 requests=256172 connections=100 size=64 errors=0
//! ```
//!
//! ```text
//! cargo run --release --example echo_load -- --addr 127.0.0.1:7000 --connections 100 --duration 5
//! ```

#![warn(clippy::undocumented_unsafe_blocks)]

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use green_examples::Flag::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const USAGE: &str = "\
usage: echo_load --addr ADDR [--connections N] [--duration SECS] [--size BYTES]

Loads an echo server with N connections, each sending a message and waiting
for its whole echo before the next (a closed loop), checks every byte, and
prints one line: echo_load rps=... p50_us=... p99_us=... max_us=...
requests=... connections=... size=... errors=...
Exits with status 1 if any echo was wrong or any connection failed.

  --addr ADDR        the server's address, such as 127.0.0.1:7000
  --connections N    connections, 1 to 10000 (default 100); the soft limit
                     on open files is raised to the hard one if needed
  --duration SECS    how long to send, 0.1 to 3600, fractions allowed
                     (default 5)
  --size BYTES       bytes per message, 1 to 1048576 (default 64)";

/// How long the measurement may overrun its duration before the
/// connections still waiting for an echo count as failed: a bound against
/// a server that stopped answering, far above any echo's time on a
/// working one.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// Descriptors kept free for everything but the connections.
const SPARE_DESCRIPTORS: u64 = 64;

fn main() {
    let flags = green_examples::Flags::from_env(
        "echo_load",
        USAGE,
        &[Value("addr"), Value("connections"), Value("duration"), Value("size")],
    );
    let options = Options {
        addr: flags.get_required("addr", "an address such as 127.0.0.1:7000"),
        connections: flags.get_number("connections", 100, 1..=10_000),
        duration: flags.get_seconds("duration", Duration::from_secs(5), 0.1..=3600.0),
        size: flags.get_number("size", 64, 1..=1 << 20),
    };
    let measured = raise_open_file_limit(options.connections as u64 + SPARE_DESCRIPTORS).and_then(|()| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(measure(&options))
    });
    match measured {
        Ok(summary) => {
            println!("{summary}");
            if summary.errors > 0 {
                std::process::exit(1);
            }
        }
        Err(err) => {
            eprintln!("echo_load: {err}");
            std::process::exit(1);
        }
    }
}

/// What to measure.
#[derive(Debug)]
struct Options {
    /// The server.
    addr: SocketAddr,
    /// How many connections.
    connections: usize,
    /// How long they send.
    duration: Duration,
    /// Bytes per message.
    size: usize,
}

/// Raises the soft limit on open files to the hard limit if it is below
/// `needed`.
fn raise_open_file_limit(needed: u64) -> io::Result<()> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable `rlimit` for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max < needed {
        return Err(io::Error::other(format!(
            "{needed} open files are needed, but the hard limit is {}; raise it (ulimit -Hn) or use \
             fewer --connections",
            limit.rlim_max
        )));
    }
    // An unlimited hard limit cannot be the soft limit of open files.
    limit.rlim_cur = if limit.rlim_max == libc::RLIM_INFINITY { needed } else { limit.rlim_max };
    // SAFETY: `limit` is a valid `rlimit`, read above, whose soft limit is
    // now at most its hard limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("cannot raise the limit on open files: {err}")));
    }
    Ok(())
}

/// What one connection measured.
#[derive(Debug, Default)]
struct Tally {
    /// The latency of each echo, in microseconds.
    latencies: Vec<u32>,
    /// The error that ended the connection.
    error: Option<io::Error>,
}

/// The result line.
#[derive(Debug)]
struct Summary {
    /// Echoes per second over the run.
    rps: f64,
    /// Median latency, in microseconds.
    p50: u32,
    /// 99th percentile, in microseconds.
    p99: u32,
    /// The slowest echo, in microseconds.
    max: u32,
    /// Echoes received and checked.
    requests: usize,
    /// Connections opened.
    connections: usize,
    /// Bytes per message.
    size: usize,
    /// Connections ended by an error.
    errors: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Summary { rps, p50, p99, max, requests, connections, size, errors } = self;
        write!(
            f,
            "echo_load rps={rps:.1} p50_us={p50} p99_us={p99} max_us={max} requests={requests} \
             connections={connections} size={size} errors={errors}"
        )
    }
}

/// Opens the connections, runs them to the deadline, and sums up.
async fn measure(options: &Options) -> io::Result<Summary> {
    let addr = options.addr;
    let mut streams = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|err| io::Error::new(err.kind(), format!("cannot connect to {addr}: {err}")))?;
        stream.set_nodelay(true)?;
        streams.push(stream);
    }

    let start = Instant::now();
    let deadline = start + options.duration;
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(n, stream)| tokio::spawn(run_connection(stream, n, options.size, deadline)))
        .collect();
    let mut tallies = Vec::with_capacity(tasks.len());
    for task in tasks {
        tallies.push(task.await.map_err(|err| io::Error::other(format!("a connection task failed: {err}")))?);
    }
    let elapsed = start.elapsed().as_secs_f64();

    let mut latencies: Vec<u32> = tallies.iter().flat_map(|tally| tally.latencies.iter().copied()).collect();
    latencies.sort_unstable();
    let errors: Vec<&io::Error> = tallies.iter().filter_map(|tally| tally.error.as_ref()).collect();
    if let Some(first) = errors.first() {
        eprintln!("echo_load: {} of {} connections failed; the first: {first}", errors.len(), tallies.len());
    }
    Ok(Summary {
        rps: latencies.len() as f64 / elapsed,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        max: latencies.last().copied().unwrap_or(0),
        requests: latencies.len(),
        connections: options.connections,
        size: options.size,
        errors: errors.len(),
    })
}

/// Connection `n`: messages of `size` bytes, one at a time, until
/// `deadline`; each echo is checked.
async fn run_connection(mut stream: TcpStream, n: usize, size: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    // One timer per connection bounds every wait, rather than one per
    // message.
    let ran = tokio::time::timeout_at(
        deadline + ANSWER_LIMIT,
        exchange(&mut stream, n, size, deadline, &mut tally),
    );
    match ran.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tally.error = Some(err),
        Err(_) => {
            let message = format!("connection {n}: no echo within {ANSWER_LIMIT:?} of the end of the run");
            tally.error = Some(io::Error::new(io::ErrorKind::TimedOut, message));
        }
    }
    tally
}

/// The closed loop of [`run_connection`]: sends, reads the whole echo,
/// checks it, records its latency.
async fn exchange(
    stream: &mut TcpStream,
    n: usize,
    size: usize,
    deadline: Instant,
    tally: &mut Tally,
) -> io::Result<()> {
    // A pattern of the connection's own, whose first bytes are replaced by
    // each message's sequence number.
    let mut sent: Vec<u8> = (0..size).map(|i| (n.wrapping_mul(131).wrapping_add(i)) as u8).collect();
    let mut echoed = vec![0; size];
    let stamp = size.min(8);
    for sequence in 0u64.. {
        let begin = Instant::now();
        if begin >= deadline {
            break;
        }
        sent[..stamp].copy_from_slice(&sequence.to_le_bytes()[..stamp]);
        stream.write_all(&sent).await?;
        match stream.read_exact(&mut echoed).await {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                let message =
                    format!("connection {n}: the server closed the connection during message {sequence}");
                return Err(io::Error::new(err.kind(), message));
            }
            Err(err) => return Err(err),
        }
        if echoed != sent {
            let at = sent.iter().zip(&echoed).position(|(a, b)| a != b).unwrap_or(0);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "connection {n}: wrong echo of message {sequence}: byte {at} is {:#04x}, sent {:#04x}",
                    echoed[at], sent[at]
                ),
            ));
        }
        tally.latencies.push(u32::try_from(begin.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    // Nothing may follow the last echo: closing our side, the server's
    // end of file must come next.
    stream.shutdown().await?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await?;
    if !rest.is_empty() {
        let message = format!("connection {n}: {} bytes came after the last echo", rest.len());
        return Err(io::Error::new(io::ErrorKind::InvalidData, message));
    }
    Ok(())
}

/// The `p`th percentile of `sorted` (nearest rank), or 0 if it is empty.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
