//! A TCP echo server on green threads: one coroutine per connection,
//! written in the blocking style of `std::net`. With `--workers N` the
//! connections are spread over N threads, in one of the two classic
//! shapes: one accept loop that hands each connection to any worker
//! (`spawn_distributed`), or with `--reuseport` one listener per worker
//! (`SO_REUSEPORT`), each serving the connections the kernel gives it.
//!
//! `echo_threads` is the same server with one OS thread per connection.
//!
//! With `--stats` it prints the runtime's metrics (`green::metrics`) on
//! stderr once a second while it serves.
//!
//! ```text
//! cargo run --release --example echo -- --port 7000
//! cargo run --release --example echo -- --port 7000 --workers 2 --reuseport
//! cargo run --release --example echo -- --port 7000 --stats
//! printf 'hello\n' | nc -q1 127.0.0.1 7000
//! ```

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use green::metrics::WorkerMetrics;
use green::net::{TcpListener, TcpStream};
use green::{DistributedHandle, JoinError, JoinHandle};
use green_examples::Flag::{Switch, Value};

const USAGE: &str = "\
usage: echo [--addr IP] [--port PORT] [--exit-after N] [--quiet] [--workers N [--reuseport]] [--stats]

A TCP echo server with one coroutine per connection.

  --addr IP         address to listen on (default 127.0.0.1)
  --port PORT       port to listen on, 0 to 65535; 0 picks a free one
                    (default 7000)
  --exit-after N    stop accepting after N connections, finish serving them
                    and exit; 0 serves forever (0 to 1000000000, default 0)
  --quiet           log only errors and the startup and exit lines, not two
                    lines per connection
  --workers N       worker threads, 1 to 256 (default 1): one accept loop
                    hands each connection to any worker
  --reuseport       one listener per worker instead (SO_REUSEPORT), each
                    serving the connections the kernel gives it
  --stats           print the runtime's metrics on stderr once a second:
                    coroutines spawned, alive, parked and queued; switches,
                    polls and events per poll; steals; the median and 99th
                    percentile of the scheduling delay (a bucket's bound)";

fn main() {
    let flags = green_examples::Flags::from_env(
        "echo",
        USAGE,
        &[
            Value("addr"),
            Value("port"),
            Value("exit-after"),
            Switch("quiet"),
            Value("workers"),
            Switch("reuseport"),
            Switch("stats"),
        ],
    );
    let addr = flags.get_listen_addr(7000);
    let exit_after: usize = flags.get_number("exit-after", 0, 0..=1_000_000_000);
    let quiet = flags.switch("quiet");
    let workers: usize = flags.get_number("workers", 1, 1..=256);
    let reuseport = flags.switch("reuseport");
    let stats = flags.switch("stats");

    let served = green::Builder::new().workers(workers).run(|| {
        if stats {
            // Torn down when `run` ends, in its sleep.
            green::task::Builder::new().name("stats").spawn(print_stats)?;
        }
        if reuseport {
            serve_per_worker(addr, exit_after, quiet, workers)
        } else {
            serve(addr, exit_after, quiet, workers)
        }
    });
    if let Err(err) = served {
        eprintln!("echo: {err}");
        std::process::exit(1);
    }
}

/// A connection's coroutine: on the accepting worker, or on any.
enum Handler {
    /// Spawned on the accepting worker.
    Local(JoinHandle<()>),
    /// Placed on any worker.
    Distributed(DistributedHandle<()>),
}

impl Handler {
    /// Starts `handle(stream)` as coroutine `conn-N`, on any worker if
    /// `anywhere`.
    fn start(stream: TcpStream, n: usize, quiet: bool, anywhere: bool) -> io::Result<Handler> {
        let builder = green::task::Builder::new().name(format!("conn-{n}"));
        if anywhere {
            builder.spawn_distributed(move || handle(stream, quiet)).map(Handler::Distributed)
        } else {
            builder.spawn(move || handle(stream, quiet)).map(Handler::Local)
        }
    }

    fn join(self) -> Result<(), JoinError> {
        match self {
            Handler::Local(handle) => handle.join(),
            Handler::Distributed(handle) => handle.join(),
        }
    }
}

/// One accept loop; each connection's coroutine goes to any worker.
fn serve(addr: SocketAddr, exit_after: usize, quiet: bool, workers: usize) -> io::Result<()> {
    let listener = TcpListener::bind(addr)
        .map_err(|err| io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}")))?;
    let spread = if workers > 1 { format!(", spread over {workers} workers") } else { String::new() };
    println!("echo: listening on {} (one coroutine per connection{spread})", listener.local_addr()?);

    // Handlers are kept only when we will wait for them before exiting;
    // serving forever, each handler is detached by dropping its handle.
    let mut handlers = Vec::new();
    let mut accepted = 0;
    while exit_after == 0 || accepted < exit_after {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Typically out of descriptors: report, let connections
                // close, try again. Only this coroutine waits.
                eprintln!("echo: accept failed: {err}");
                green::sleep(Duration::from_millis(100))?;
                continue;
            }
        };
        accepted += 1;
        match Handler::start(stream, accepted, quiet, workers > 1) {
            Ok(handler) if exit_after > 0 => handlers.push(handler),
            Ok(_detached) => {}
            Err(err) => eprintln!("echo: cannot start a coroutine for connection {accepted}: {err}"),
        }
    }
    for handler in handlers {
        if let Err(err) = handler.join() {
            eprintln!("echo: {err}");
        }
    }
    println!("echo: served {accepted} connections, exiting");
    Ok(())
}

/// One listener per worker, all bound to one port with `SO_REUSEPORT`;
/// each worker serves the connections its listener accepts.
fn serve_per_worker(addr: SocketAddr, exit_after: usize, quiet: bool, workers: usize) -> io::Result<()> {
    let first = TcpListener::bind_reuse_port(addr)
        .map_err(|err| io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}")))?;
    let addr = first.local_addr()?;
    println!(
        "echo: listening on {addr} (one coroutine per connection, one listener on each of {workers} workers)"
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let (enough, enough_reached) = green::channel::bounded::<()>(workers);
    let mut first = Some(first);
    let mut acceptors = Vec::with_capacity(workers);
    for worker in 0..workers {
        let (accepted, enough) = (accepted.clone(), enough.clone());
        let first = first.take();
        let acceptor = green::task::Builder::new().name(format!("acceptor-{worker}")).spawn_on_worker(
            worker,
            move || {
                let listener = match first {
                    Some(listener) => listener,
                    None => TcpListener::bind_reuse_port(addr)?,
                };
                accept_loop(&listener, &accepted, exit_after, quiet, &enough)
            },
        )?;
        acceptors.push(acceptor);
    }
    if exit_after > 0 {
        // Enough connections: the acceptors stop accepting, serve what
        // they have, and end.
        let _ = enough_reached.recv();
        acceptors.iter().for_each(DistributedHandle::cancel);
    }
    for acceptor in acceptors {
        match acceptor.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("echo: {err}"),
            // Stopped before it started (enough connections came to the
            // others first): it never listened, nothing to report.
            Err(err) if err.is_cancelled() => {}
            Err(err) => eprintln!("echo: {err}"),
        }
    }
    println!("echo: served {} connections, exiting", accepted.load(Ordering::SeqCst));
    Ok(())
}

/// The accept loop of one worker's listener: serves each connection in a
/// coroutine of this worker, until `exit_after` connections have been
/// accepted by all the workers together (then it says so on `enough`),
/// or it is cancelled; then waits for its connections.
fn accept_loop(
    listener: &TcpListener,
    accepted: &AtomicUsize,
    exit_after: usize,
    quiet: bool,
    enough: &green::channel::Sender<()>,
) -> io::Result<()> {
    let mut handlers = Vec::new();
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) if green::is_cancelled(&err) => break,
            Err(err) => {
                eprintln!("echo: accept failed: {err}");
                if green::sleep(Duration::from_millis(100)).is_err() {
                    break;
                }
                continue;
            }
        };
        let n = accepted.fetch_add(1, Ordering::SeqCst) + 1;
        match Handler::start(stream, n, quiet, false) {
            Ok(handler) if exit_after > 0 => handlers.push(handler),
            Ok(_detached) => {}
            Err(err) => eprintln!("echo: cannot start a coroutine for connection {n}: {err}"),
        }
        if exit_after > 0 && n >= exit_after {
            let _ = enough.try_send(());
            break;
        }
    }
    // Finishing the connections is not cancelled with the accept loop.
    green::shield(|| {
        for handler in handlers {
            if let Err(err) = handler.join() {
                eprintln!("echo: {err}");
            }
        }
    });
    Ok(())
}

/// Prints a line of the runtime's metrics on stderr every second, until the
/// runtime cancels its sleep at shutdown.
fn print_stats() {
    let Some(mut last) = green::runtime_metrics() else { return };
    while green::sleep(Duration::from_secs(1)).is_ok() {
        let Some(now) = green::runtime_metrics() else { return };
        eprintln!("{}", stats_line(&last.total(), &now.total()));
        last = now;
    }
}

/// One line of metrics: totals now, rates over the second since `last`.
fn stats_line(last: &WorkerMetrics, now: &WorkerMetrics) -> String {
    let polls = now.polls - last.polls;
    let per_poll = match polls {
        0 => "-".to_owned(),
        polls => format!("{:.1}", (now.events - last.events) as f64 / polls as f64),
    };
    let quantile = |q| match now.delay.quantile(q) {
        None => "-".to_owned(),
        Some(Duration::MAX) => ">1s".to_owned(),
        Some(bound) => format!("<{bound:?}"),
    };
    format!(
        "echo: stats: {} spawned, {} alive, {} parked, {} queued | {} switches ({}/s), {polls} polls/s, \
         {per_poll} events/poll, {} steals | delay p50 {} p99 {} ({} timed)",
        now.spawned,
        now.alive(),
        now.parked,
        now.queued,
        now.switches,
        now.switches - last.switches,
        now.steals,
        quantile(0.5),
        quantile(0.99),
        now.delay.count(),
    )
}

/// Serves one connection; errors end this connection only. Logs the
/// connection's start and end unless `quiet`, and its failure always.
fn handle(stream: TcpStream, quiet: bool) {
    let peer = match stream.peer_addr() {
        Ok(peer) => peer.to_string(),
        Err(_) => "unknown peer".to_owned(),
    };
    let me = green::current();
    let name = me.name().unwrap_or("?");
    if !quiet {
        println!("echo: {name} ({peer}) connected");
    }
    match echo(stream) {
        Ok(bytes) if !quiet => println!("echo: {name} ({peer}) closed after {bytes} bytes"),
        Ok(_) => {}
        Err(err) => eprintln!("echo: {name} ({peer}) failed: {err}"),
    }
}

/// Writes back everything read until the peer closes; returns the bytes
/// echoed.
fn echo(mut stream: TcpStream) -> io::Result<u64> {
    stream.set_nodelay(true)?;
    let mut buf = [0; 16 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}
