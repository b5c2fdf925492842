//! The tokio model of `echo`: the same TCP echo server, with the same
//! flags and output, as one tokio task per connection. `--workers 1` runs
//! a `current_thread` runtime, more a `multi_thread` runtime of that many
//! workers. `benches/scripts/servers.sh` runs it beside `echo` and
//! `echo_threads` under `echo_load`.
//!
//! ```text
//! cargo run --release --example echo_tokio -- --port 7002 --workers 2
//! printf 'hello\n' | nc -q1 127.0.0.1 7002
//! ```

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use green_examples::Flag::{Switch, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const USAGE: &str = "\
usage: echo_tokio [--addr IP] [--port PORT] [--exit-after N] [--quiet] [--workers N]

A TCP echo server with one tokio task per connection (the tokio model of `echo`).

  --addr IP         address to listen on (default 127.0.0.1)
  --port PORT       port to listen on, 0 to 65535; 0 picks a free one
                    (default 7000)
  --exit-after N    stop accepting after N connections, finish serving them
                    and exit; 0 serves forever (0 to 1000000000, default 0)
  --quiet           log only errors and the startup and exit lines, not two
                    lines per connection
  --workers N       worker threads, 1 to 256 (default 1): 1 is a
                    current_thread runtime, more a multi_thread one";

/// How long the accept loop waits after a failed accept (typically out of
/// descriptors) before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

fn main() {
    let flags = green_examples::Flags::from_env(
        "echo_tokio",
        USAGE,
        &[Value("addr"), Value("port"), Value("exit-after"), Switch("quiet"), Value("workers")],
    );
    let addr = flags.get_listen_addr(7000);
    let exit_after: usize = flags.get_number("exit-after", 0, 0..=1_000_000_000);
    let quiet = flags.switch("quiet");
    let workers: usize = flags.get_number("workers", 1, 1..=256);

    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()
    };
    let served = runtime.and_then(|runtime| runtime.block_on(serve(addr, exit_after, quiet, workers)));
    if let Err(err) = served {
        eprintln!("echo_tokio: {err}");
        std::process::exit(1);
    }
}

/// One accept loop; a task per connection.
async fn serve(addr: SocketAddr, exit_after: usize, quiet: bool, workers: usize) -> io::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|err| io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}")))?;
    let shape =
        if workers > 1 { format!("multi_thread with {workers} workers") } else { "current_thread".into() };
    println!("echo_tokio: listening on {} (one task per connection, {shape})", listener.local_addr()?);

    // Handles are kept only when we will wait for them before exiting;
    // serving forever, each task is detached by dropping its handle.
    let mut handlers = Vec::new();
    let mut accepted = 0;
    while exit_after == 0 || accepted < exit_after {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Typically out of descriptors: report, let connections
                // close, try again.
                eprintln!("echo_tokio: accept failed: {err}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        accepted += 1;
        let handler = tokio::spawn(handle(stream, accepted, quiet));
        if exit_after > 0 {
            handlers.push(handler);
        }
    }
    for handler in handlers {
        if let Err(err) = handler.await {
            eprintln!("echo_tokio: a connection task failed: {err}");
        }
    }
    println!("echo_tokio: served {accepted} connections, exiting");
    Ok(())
}

/// Serves connection `n`; errors end this connection only. Logs the
/// connection's start and end unless `quiet`, and its failure always.
async fn handle(stream: TcpStream, n: usize, quiet: bool) {
    let peer = match stream.peer_addr() {
        Ok(peer) => peer.to_string(),
        Err(_) => "unknown peer".to_owned(),
    };
    if !quiet {
        println!("echo_tokio: conn-{n} ({peer}) connected");
    }
    match echo(stream).await {
        Ok(bytes) if !quiet => println!("echo_tokio: conn-{n} ({peer}) closed after {bytes} bytes"),
        Ok(_) => {}
        Err(err) => eprintln!("echo_tokio: conn-{n} ({peer}) failed: {err}"),
    }
}

/// Writes back everything read until the peer closes; returns the bytes
/// echoed.
async fn echo(mut stream: TcpStream) -> io::Result<u64> {
    stream.set_nodelay(true)?;
    let mut buf = [0; 16 * 1024];
    let mut total = 0;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}
