//! What this measures: a TCP echo server on loopback, written the plain way
//! on each runtime, under one client that is the same for every variant.
//! One group, `tcp_echo`; one element is one request, a 64-byte message
//! echoed back.
//!
//! | variant | server |
//! |---|---|
//! | `green` | `green::run`: `green::net::TcpListener`, one `green::spawn`ed task per connection, echoing through std's `Read`/`Write` |
//! | `tokio` | tokio's `current_thread` runtime: `tokio::net::TcpListener`, one `tokio::spawn`ed task per connection, `AsyncReadExt`/`AsyncWriteExt` |
//! | `green_2w` | a `green` runtime of [`WORKERS`] workers whose accept loop hands each connection to `spawn_distributed` |
//! | `tokio_mt` | the `tokio` server on tokio's `multi_thread` runtime of as many workers |
//! | `threads` | `std::net::TcpListener`, one OS thread per connection |
//!
//! The client, not a runtime: 2 OS threads, 50 connections (25 each),
//! `TCP_NODELAY` on both ends. One iteration is 20 rounds; in a round a
//! client thread writes the message on each of its connections, then reads
//! the whole echo back from each, so the server has up to 25 requests of
//! each client thread in flight: 1,000 requests per iteration.
//!
//! What is inside the timed region:
//!
//! * Only the round trips. Starting the server (runtime, bind, the thread
//!   it runs on) and connecting happen once per variant, before the first
//!   sample, and end with one untimed round trip on every connection, so
//!   every connection has been accepted and has its handler before any
//!   clock starts. The connections stay open for the whole variant.
//! * Each sample (`iter_custom`) starts the two client threads, releases
//!   them together with a [`Barrier`] and stops the clock at a second
//!   barrier they reach when done, before they exit.
//! * At the end of a variant the clients close their connections; each
//!   handler reads end-of-file and returns; the server, which accepted the
//!   known number of connections and then waits for its handlers, returns;
//!   its runtime stops and its thread is joined.
//!
//! **Server CPU per request.** Wall time alone can hide a run bound by the
//! client, so each variant also prints, when it ends, a line such as
//! `tcp_echo/green: server CPU 5.9 µs/request over N requests`: the
//! process's CPU time (`getrusage(RUSAGE_SELF)`, user + system) over each
//! sample, less the CPU time the client threads took
//! (`CLOCK_THREAD_CPUTIME_ID`, read by each around its rounds), summed
//! over every sample of the variant, warm-up included, and divided by the
//! requests of those samples. Loopback delivers a segment in the sending
//! thread's system call, so the kernel's receive path of a request is
//! charged to the client and that of a reply to the server: the figure
//! is the server's share, not a sum of the server's code alone.
//!
//! An iteration takes milliseconds, so the group samples in flat mode
//! (every sample the same number of iterations) to fit the measurement
//! time. Unlike in the other files, the OS-thread variant is not orders of
//! magnitude slower here (every variant waits on the same loopback
//! system calls), so it keeps the group's 100 samples.
//!
//! Run with `cargo bench -p green-benches --bench net`; shorten with
//! `-- --warm-up-time 1 --measurement-time 3`. Medians are in
//! `target/criterion/tcp_echo/<runtime>/new/estimates.json`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Barrier;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use green_benches::{WORKERS, current_thread_runtime, multi_thread_runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The group's name, also the prefix of the CPU lines.
const GROUP: &str = "tcp_echo";
/// Connections, over all client threads.
const CONNECTIONS: usize = 50;
/// Client threads; each drives `CONNECTIONS / CLIENT_THREADS` connections.
const CLIENT_THREADS: usize = 2;
/// Round trips per connection per iteration.
const ROUNDS: usize = 20;
/// Bytes of one request (and of its echo).
const MESSAGE_LEN: usize = 64;
/// Requests (round trips) per iteration, over all connections.
const REQUESTS: u64 = (CONNECTIONS * ROUNDS) as u64;
/// The buffer an echo handler reads into.
const ECHO_BUFFER: usize = 1024;

fn tcp_echo(c: &mut Criterion) {
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(REQUESTS)).sampling_mode(SamplingMode::Flat);

    echo_variant(&mut group, "green", green_server);
    echo_variant(&mut group, "tokio", |ready| tokio_server(current_thread_runtime(), ready));
    echo_variant(&mut group, "green_2w", green_2w_server);
    echo_variant(&mut group, "tokio_mt", |ready| tokio_server(multi_thread_runtime(), ready));
    echo_variant(&mut group, "threads", threads_server);
    group.finish();
}

/// Benchmarks the server that `serve` runs (on a thread of its own) as
/// `name`, then shuts it down and prints its CPU per request. The server
/// starts at the first sample, so a variant the filter leaves out starts
/// nothing.
fn echo_variant(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    serve: impl Fn(mpsc::Sender<SocketAddr>) + Copy + Send + 'static,
) {
    let mut bench: Option<EchoBench> = None;
    group.bench_function(name, |b| {
        let bench = bench.get_or_insert_with(|| EchoBench::start(serve));
        b.iter_custom(|iters| bench.sample(iters));
    });
    if let Some(bench) = bench {
        let (requests, server_cpu) = bench.finish();
        if requests > 0 {
            let per_request = server_cpu.as_secs_f64() * 1e6 / requests as f64;
            eprintln!("{GROUP}/{name}: server CPU {per_request:.1} µs/request over {requests} requests");
        }
    }
}

/// A running server, the client's connections to it, and the server CPU
/// counted so far.
struct EchoBench {
    /// The thread the server runs on; it returns once every connection has
    /// closed.
    server: JoinHandle<()>,
    /// The connections, one list per client thread.
    clients: Vec<Vec<TcpStream>>,
    /// Requests in the samples so far.
    requests: u64,
    /// Server CPU time in the samples so far.
    server_cpu: Duration,
}

impl EchoBench {
    /// Starts `serve` on a thread, connects the client to the address it
    /// reports, and makes one untimed round trip on every connection.
    fn start(serve: impl FnOnce(mpsc::Sender<SocketAddr>) + Send + 'static) -> EchoBench {
        let (ready, listening) = mpsc::channel();
        let server = thread::Builder::new()
            .name("echo-server".into())
            .spawn(move || serve(ready))
            .expect("spawn the echo server's thread");
        let addr = listening.recv().expect("the echo server reports its address");
        let mut clients: Vec<Vec<TcpStream>> = (0..CLIENT_THREADS).map(|_| Vec::new()).collect();
        for i in 0..CONNECTIONS {
            let stream = TcpStream::connect(addr).expect("connect to the echo server");
            stream.set_nodelay(true).expect("TCP_NODELAY on a client connection");
            clients[i % CLIENT_THREADS].push(stream);
        }
        for connections in &mut clients {
            round(connections);
        }
        EchoBench { server, clients, requests: 0, server_cpu: Duration::ZERO }
    }

    /// Runs `iters` iterations on the client threads and returns their wall
    /// time; adds their requests and server CPU time to the totals.
    fn sample(&mut self, iters: u64) -> Duration {
        let arrived = Barrier::new(CLIENT_THREADS + 1);
        let start_line = Barrier::new(CLIENT_THREADS + 1);
        let finish_line = Barrier::new(CLIENT_THREADS + 1);
        let (elapsed, process_cpu, client_cpu) = thread::scope(|scope| {
            let threads: Vec<_> = self
                .clients
                .iter_mut()
                .map(|connections| {
                    let (arrived, start_line, finish_line) = (&arrived, &start_line, &finish_line);
                    scope.spawn(move || {
                        arrived.wait();
                        start_line.wait();
                        let cpu_before = thread_cpu_time();
                        for _ in 0..iters {
                            for _ in 0..ROUNDS {
                                round(connections);
                            }
                        }
                        let cpu = thread_cpu_time().saturating_sub(cpu_before);
                        finish_line.wait();
                        cpu
                    })
                })
                .collect();
            // The client threads are waiting at `start_line` now: what the
            // process spends from here on is the rounds and the server.
            arrived.wait();
            let process_before = process_cpu_time();
            start_line.wait();
            let start = Instant::now();
            finish_line.wait();
            let elapsed = start.elapsed();
            let process_cpu = process_cpu_time().saturating_sub(process_before);
            let client_cpu: Duration = threads.into_iter().map(|t| t.join().expect("client thread")).sum();
            (elapsed, process_cpu, client_cpu)
        });
        self.requests += iters * REQUESTS;
        self.server_cpu += process_cpu.saturating_sub(client_cpu);
        elapsed
    }

    /// Closes the connections, waits for the server to return, and gives
    /// the requests and server CPU time of all samples.
    fn finish(self) -> (u64, Duration) {
        drop(self.clients);
        self.server.join().expect("the echo server shuts down cleanly");
        (self.requests, self.server_cpu)
    }
}

/// One round on one client thread's connections: the message out on each,
/// then its whole echo back from each.
fn round(connections: &mut [TcpStream]) {
    let message = [0x5a; MESSAGE_LEN];
    for stream in connections.iter_mut() {
        stream.write_all(&message).expect("client: send a request");
    }
    let mut reply = [0; MESSAGE_LEN];
    for stream in connections.iter_mut() {
        stream.read_exact(&mut reply).expect("client: read the echo");
        assert_eq!(reply, message, "client: the echo differs from the request");
    }
}

/// Echoes what `stream` receives until end-of-file: the handler of
/// `green`, `green_2w` (green's `TcpStream` implements std's `Read` and
/// `Write`, parking the task) and `threads`.
fn echo(mut stream: impl Read + Write) {
    let mut buf = [0; ECHO_BUFFER];
    loop {
        let n = stream.read(&mut buf).expect("echo: read a request");
        if n == 0 {
            return;
        }
        stream.write_all(&buf[..n]).expect("echo: write the echo");
    }
}

/// `green`: one worker, one task per connection.
fn green_server(ready: mpsc::Sender<SocketAddr>) {
    green::run(|| {
        let listener = green::net::TcpListener::bind("127.0.0.1:0").expect("green: bind");
        ready.send(listener.local_addr().expect("green: local address")).expect("the bench waits");
        let handlers: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (stream, _) = listener.accept().expect("green: accept");
                stream.set_nodelay(true).expect("green: TCP_NODELAY");
                green::spawn(move || echo(stream))
            })
            .collect();
        for handler in handlers {
            handler.join().expect("green: echo task");
        }
    });
}

/// `green_2w`: [`WORKERS`] workers; each connection is spawned with
/// `spawn_distributed` before its stream is first used, so it may run on
/// any worker.
fn green_2w_server(ready: mpsc::Sender<SocketAddr>) {
    green::Builder::new().workers(WORKERS).run(|| {
        let listener = green::net::TcpListener::bind("127.0.0.1:0").expect("green_2w: bind");
        ready.send(listener.local_addr().expect("green_2w: local address")).expect("the bench waits");
        let handlers: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (stream, _) = listener.accept().expect("green_2w: accept");
                stream.set_nodelay(true).expect("green_2w: TCP_NODELAY");
                green::spawn_distributed(move || echo(stream))
            })
            .collect();
        for handler in handlers {
            handler.join().expect("green_2w: echo task");
        }
    });
}

/// `tokio` and `tokio_mt`: one task per connection on `rt`.
fn tokio_server(rt: tokio::runtime::Runtime, ready: mpsc::Sender<SocketAddr>) {
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("tokio: bind");
        ready.send(listener.local_addr().expect("tokio: local address")).expect("the bench waits");
        let mut handlers = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let (stream, _) = listener.accept().await.expect("tokio: accept");
            stream.set_nodelay(true).expect("tokio: TCP_NODELAY");
            handlers.push(tokio::spawn(tokio_echo(stream)));
        }
        for handler in handlers {
            handler.await.expect("tokio: echo task");
        }
    });
}

/// [`echo`] for tokio.
async fn tokio_echo(mut stream: tokio::net::TcpStream) {
    let mut buf = [0; ECHO_BUFFER];
    loop {
        let n = stream.read(&mut buf).await.expect("tokio echo: read a request");
        if n == 0 {
            return;
        }
        stream.write_all(&buf[..n]).await.expect("tokio echo: write the echo");
    }
}

/// `threads`: one OS thread per connection.
fn threads_server(ready: mpsc::Sender<SocketAddr>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("threads: bind");
    ready.send(listener.local_addr().expect("threads: local address")).expect("the bench waits");
    let handlers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (stream, _) = listener.accept().expect("threads: accept");
            stream.set_nodelay(true).expect("threads: TCP_NODELAY");
            thread::spawn(move || echo(stream))
        })
        .collect();
    for handler in handlers {
        handler.join().expect("threads: echo thread");
    }
}

/// The CPU time (user and system) of the whole process so far, threads
/// that have exited included.
fn process_cpu_time() -> Duration {
    // SAFETY: `rusage` is plain integers and `timeval`s; all-zero is a
    // valid value of each field.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage` for the duration of the
    // call, which is all getrusage writes; RUSAGE_SELF is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF): {}", io::Error::last_os_error());
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

/// The CPU time (user and system) of the calling thread so far.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable `timespec` for the duration of
    // the call, which is all clock_gettime writes.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID): {}", io::Error::last_os_error());
    let secs = u64::try_from(now.tv_sec).expect("thread CPU time is not negative");
    let nanos = u32::try_from(now.tv_nsec).expect("tv_nsec is below one second");
    Duration::new(secs, nanos)
}

/// A `timeval` of `getrusage` as a [`Duration`].
fn timeval(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).expect("CPU time is not negative");
    let micros = u64::try_from(tv.tv_usec).expect("tv_usec is not negative");
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

criterion_group!(benches, tcp_echo);
criterion_main!(benches);
