//! A minimal HTTP/1.1 server that answers every request with `Hello,
//! world!`, on green threads or on tokio (`--runtime`), so that the two
//! runtimes can be compared under a real HTTP client such as `wrk`.
//!
//! Both servers run the same parser, the same answers and the same buffer
//! sizes (`src/http.rs`); only the runtime differs. A connection keeps
//! reading while the client keeps it alive, answers every complete request
//! in what it has read, in order and with one write, and closes after an
//! answer to a request that asked for it (`Connection: close`, or HTTP/1.0
//! without `keep-alive`) or after `400 Bad Request` for a malformed one.
//!
//! | `--runtime` | `--workers 1` | `--workers N` |
//! |---|---|---|
//! | `green` | `green::run`: one worker | N workers; one accept loop places each connection's coroutine on any of them (`spawn_distributed`) |
//! | `tokio` | a `current_thread` runtime | a `multi_thread` runtime of N workers |
//!
//! Once it listens, the server prints one line, `http_hello: listening on
//! ADDR (...)`, which scripts and tests read for the port.
//!
//! ```text
//! cargo run --release --example http_hello -- --runtime green --workers 2 --addr 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/
//! wrk -t1 -c100 -d5s --latency http://127.0.0.1:8080/
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use green_examples::Flag::Value;
use green_examples::http::{Connection, LINGER_BYTES, LINGER_TIME, Next};

const USAGE: &str = "\
usage: http_hello [--runtime green|tokio] [--workers N] [--addr HOST:PORT]

An HTTP/1.1 server answering every request with 'Hello, world!', with
keep-alive and pipelining; a malformed request gets 400 Bad Request and its
connection is closed. Prints 'http_hello: listening on ADDR' once it listens.

  --runtime NAME    green: a coroutine per connection (default);
                    tokio: a task per connection
  --workers N       worker threads, 1 to 256 (default 1). green: 1 is
                    green::run, more spread the connections over the
                    workers; tokio: 1 is a current_thread runtime, more a
                    multi_thread one
  --addr HOST:PORT  address to listen on (default 127.0.0.1:8080); port 0
                    picks a free one";

/// How long an accept loop waits after a failed accept (typically out of
/// descriptors) before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The room the answers to one read start with: a few hundred answers
/// before the vector grows.
const OUT_CAPACITY: usize = 16 * 1024;

/// The runtime a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runtime {
    /// `green`: a coroutine per connection.
    Green,
    /// tokio: a task per connection.
    Tokio,
}

impl FromStr for Runtime {
    type Err = ();

    fn from_str(text: &str) -> Result<Runtime, ()> {
        match text {
            "green" => Ok(Runtime::Green),
            "tokio" => Ok(Runtime::Tokio),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Runtime::Green => "green",
            Runtime::Tokio => "tokio",
        })
    }
}

/// `--addr`: a socket address, or a host name and port resolved to its
/// first address.
#[derive(Debug, Clone, Copy)]
struct ListenAddr(SocketAddr);

impl FromStr for ListenAddr {
    type Err = ();

    fn from_str(text: &str) -> Result<ListenAddr, ()> {
        match text.parse() {
            Ok(addr) => Ok(ListenAddr(addr)),
            Err(_) => {
                text.to_socket_addrs().ok().and_then(|mut addrs| addrs.next()).map(ListenAddr).ok_or(())
            }
        }
    }
}

fn main() {
    let flags = green_examples::Flags::from_env(
        "http_hello",
        USAGE,
        &[Value("runtime"), Value("workers"), Value("addr")],
    );
    let runtime: Runtime = flags.get("runtime", Runtime::Green, "green or tokio");
    let workers: usize = flags.get_number("workers", 1, 1..=256);
    let ListenAddr(addr) = flags.get(
        "addr",
        ListenAddr(SocketAddr::from(([127, 0, 0, 1], 8080))),
        "an address such as 127.0.0.1:8080 or localhost:0",
    );
    let served = match runtime {
        Runtime::Green => serve_green(addr, workers),
        Runtime::Tokio => serve_tokio(addr, workers),
    };
    if let Err(err) = served {
        eprintln!("http_hello: {err}");
        std::process::exit(1);
    }
}

/// Prints the one line a script or test waits for, and flushes it.
fn announce(addr: SocketAddr, runtime: Runtime, workers: usize) -> io::Result<()> {
    let shape = match (runtime, workers) {
        (Runtime::Green, 1) => "one coroutine per connection, 1 worker".to_owned(),
        (Runtime::Green, n) => format!("one coroutine per connection, spread over {n} workers"),
        (Runtime::Tokio, 1) => "one task per connection, current_thread".to_owned(),
        (Runtime::Tokio, n) => format!("one task per connection, multi_thread with {n} workers"),
    };
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "http_hello: listening on {addr} ({runtime}: {shape})")?;
    stdout.flush()
}

/// Adds the address to an error from binding a listener.
fn cannot_listen(addr: SocketAddr) -> impl FnOnce(io::Error) -> io::Error {
    move |err| io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}"))
}

/// Reports how a connection ended, if that is worth a line: a peer that
/// resets, goes away or stays silent is the peer's business.
fn report(ended: io::Result<()>) {
    match ended {
        Ok(()) => {}
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::TimedOut
            ) => {}
        Err(err) => eprintln!("http_hello: a connection failed: {err}"),
    }
}

/// A green runtime of `workers` workers: one accept loop, and a coroutine
/// per connection, placed on any worker when there are several.
fn serve_green(addr: SocketAddr, workers: usize) -> io::Result<()> {
    green::Builder::new().workers(workers).run(|| {
        let listener = green::net::TcpListener::bind(addr).map_err(cannot_listen(addr))?;
        announce(listener.local_addr()?, Runtime::Green, workers)?;
        loop {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(err) if green::is_cancelled(&err) => return Err(err),
                Err(err) => {
                    eprintln!("http_hello: accept failed: {err}");
                    green::sleep(ACCEPT_BACKOFF)?;
                    continue;
                }
            };
            // Each handle is dropped at once: the coroutine is detached and
            // ends with its connection.
            let builder = green::task::Builder::new();
            let started = if workers > 1 {
                builder.spawn_distributed(move || report(serve_green_connection(stream))).map(drop)
            } else {
                builder.spawn(move || report(serve_green_connection(stream))).map(drop)
            };
            if let Err(err) = started {
                eprintln!("http_hello: cannot start a coroutine for a connection: {err}");
            }
        }
    })
}

/// Serves one connection on green threads until the client closes it or a
/// request ends it.
fn serve_green_connection(mut stream: green::net::TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut connection = Connection::new();
    let mut out = Vec::with_capacity(OUT_CAPACITY);
    loop {
        let n = match stream.read(connection.spare()) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        let next = connection.received(n, &mut out);
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if next == Next::Close {
            stream.shutdown(Shutdown::Write)?;
            // Whatever the client still sends is discarded for a bounded
            // time (see `LINGER_TIME` in `src/http.rs`); the socket then closes.
            let _ = green::timeout(LINGER_TIME, || discard_green(&mut stream));
            return Ok(());
        }
    }
}

/// Reads and drops up to [`LINGER_BYTES`] until the client closes.
fn discard_green(stream: &mut green::net::TcpStream) {
    let mut scratch = [0; 4096];
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => discarded += n,
        }
    }
}

/// A tokio runtime, `current_thread` for one worker or `multi_thread` for
/// several, with a task per connection.
fn serve_tokio(addr: SocketAddr, workers: usize) -> io::Result<()> {
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(cannot_listen(addr))?;
        announce(listener.local_addr()?, Runtime::Tokio, workers)?;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    eprintln!("http_hello: accept failed: {err}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            tokio::spawn(async move { report(serve_tokio_connection(stream).await) });
        }
    })
}

/// [`serve_green_connection`] for a tokio socket: the same steps, with
/// `async` reads and writes.
async fn serve_tokio_connection(mut stream: tokio::net::TcpStream) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    stream.set_nodelay(true)?;
    let mut connection = Connection::new();
    let mut out = Vec::with_capacity(OUT_CAPACITY);
    loop {
        let n = match stream.read(connection.spare()).await {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        let next = connection.received(n, &mut out);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if next == Next::Close {
            stream.shutdown().await?;
            let _ = tokio::time::timeout(LINGER_TIME, discard_tokio(&mut stream)).await;
            return Ok(());
        }
    }
}

/// [`discard_green`] for a tokio socket.
async fn discard_tokio(stream: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;

    let mut scratch = [0; 4096];
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        match stream.read(&mut scratch).await {
            Ok(0) | Err(_) => return,
            Ok(n) => discarded += n,
        }
    }
}
