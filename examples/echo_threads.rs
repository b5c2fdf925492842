//! The baseline for `echo`: the same TCP echo server with `std::net` and
//! one OS thread per connection.
//!
//! ```text
//! cargo run --release --example echo_threads -- --port 7001
//! printf 'hello\n' | nc -q1 127.0.0.1 7001
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use green_examples::Flag::{Switch, Value};

const USAGE: &str = "\
usage: echo_threads [--addr IP] [--port PORT] [--exit-after N] [--quiet]

A TCP echo server with one OS thread per connection (the baseline for `echo`).

  --addr IP         address to listen on (default 127.0.0.1)
  --port PORT       port to listen on, 0 to 65535; 0 picks a free one
                    (default 7000)
  --exit-after N    stop accepting after N connections, finish serving them
                    and exit; 0 serves forever (0 to 1000000000, default 0)
  --quiet           log only errors and the startup and exit lines, not two
                    lines per connection";

fn main() {
    let flags = green_examples::Flags::from_env(
        "echo_threads",
        USAGE,
        &[Value("addr"), Value("port"), Value("exit-after"), Switch("quiet")],
    );
    let addr = flags.get_listen_addr(7000);
    let exit_after: usize = flags.get_number("exit-after", 0, 0..=1_000_000_000);
    let quiet = flags.switch("quiet");

    if let Err(err) = serve(addr, exit_after, quiet) {
        eprintln!("echo_threads: {err}");
        std::process::exit(1);
    }
}

fn serve(addr: SocketAddr, exit_after: usize, quiet: bool) -> io::Result<()> {
    let listener = TcpListener::bind(addr)
        .map_err(|err| io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}")))?;
    println!("echo_threads: listening on {} (one OS thread per connection)", listener.local_addr()?);

    // Handlers are kept only when we will wait for them before exiting;
    // serving forever, each thread is detached by dropping its handle.
    let mut handlers = Vec::new();
    let mut accepted = 0;
    while exit_after == 0 || accepted < exit_after {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Typically out of descriptors: report, let connections
                // close, try again.
                eprintln!("echo_threads: accept failed: {err}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        accepted += 1;
        let handler =
            thread::Builder::new().name(format!("conn-{accepted}")).spawn(move || handle(stream, quiet));
        match handler {
            Ok(handler) if exit_after > 0 => handlers.push(handler),
            Ok(_detached) => {}
            Err(err) => eprintln!("echo_threads: cannot start a thread for connection {accepted}: {err}"),
        }
    }
    for handler in handlers {
        if handler.join().is_err() {
            eprintln!("echo_threads: a connection thread panicked");
        }
    }
    println!("echo_threads: served {accepted} connections, exiting");
    Ok(())
}

/// Serves one connection; errors end this connection only. Logs the
/// connection's start and end unless `quiet`, and its failure always.
fn handle(stream: TcpStream, quiet: bool) {
    let peer = match stream.peer_addr() {
        Ok(peer) => peer.to_string(),
        Err(_) => "unknown peer".to_owned(),
    };
    let me = thread::current();
    let name = me.name().unwrap_or("?");
    if !quiet {
        println!("echo_threads: {name} ({peer}) connected");
    }
    match echo(stream) {
        Ok(bytes) if !quiet => println!("echo_threads: {name} ({peer}) closed after {bytes} bytes"),
        Ok(_) => {}
        Err(err) => eprintln!("echo_threads: {name} ({peer}) failed: {err}"),
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
