//! A TCP server that answers each line `n` with `fib(n)`, computed the
//! slow way so that a request costs CPU time, in one of seven concurrency
//! models (`--model`): the program `showdown` compares them under the same
//! load. The protocol is described in `src/fib.rs`.
//!
//! The models differ only in where a connection's loop runs and where the
//! CPU-bound `fib` runs:
//!
//! | model | a connection's loop | `fib` |
//! |---|---|---|
//! | `green` | a coroutine on the one worker | inline: every other connection waits |
//! | `green-pool` | a coroutine on the one worker | on the blocking pool (`green::blocking::unblock`) |
//! | `green-workers` | a coroutine on any of N workers | inline: that worker's connections wait |
//! | `threads` | an OS thread | inline: the kernel preempts it |
//! | `processes` | a coroutine in one of N forked processes | inline: that process's connections wait |
//! | `tokio` | a task on N tokio workers | inline: that worker's tasks wait |
//! | `tokio-pool` | a task on N tokio workers | on tokio's blocking pool |
//!
//! A green connection yields after each answer: the runtime switches
//! coroutines only where one parks or yields, and a connection whose next
//! request is always waiting would otherwise never park (`--no-yield`
//! shows what that does; `serve_connection` explains it).
//!
//! Once it listens, the server prints exactly one line to stdout,
//! `listening on <addr>`, so that a parent process can read the port.
//!
//! ```text
//! cargo run --release --example fib_server -- --model green --listen 127.0.0.1:7000
//! printf '10\n30\nabc\n' | nc -q1 127.0.0.1 7000
//! ```

#![warn(clippy::undocumented_unsafe_blocks)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use green_examples::Flag::{Switch, Value};
use green_examples::fib::{Frame, Framer, MAX_LINE, MAX_N, Model, READ_CHUNK, TOO_LONG, fib, parse_request};

const USAGE: &str = "\
usage: fib_server [--model MODEL] [--listen ADDR] [--workers N] [--no-yield]

A TCP server answering each line n (a whole number from 0 to 40) with fib(n),
computed by naive recursion, so that a request costs CPU time: 1 is cheap,
30 takes milliseconds, 40 about a second. Any other line is answered with a
line starting with 'error: ', and a line longer than 64 bytes closes the
connection. Prints 'listening on ADDR' once it listens.

  --model MODEL   how connections are served (default green):
                    green          a coroutine per connection on one thread;
                                   fib inline
                    green-pool     the same, fib on a thread outside the
                                   runtime while the coroutine waits
                    green-workers  a coroutine per connection, spread over N
                                   workers; fib inline
                    threads        an OS thread per connection; fib inline
                    processes      N pre-forked processes sharing the
                                   listening socket, each one green worker
                    tokio          a task per connection on N tokio workers;
                                   fib inline
                    tokio-pool     the same, fib in spawn_blocking
  --listen ADDR   address to listen on (default 127.0.0.1:0; port 0 picks a
                  free one)
  --workers N     workers or processes for the models that use several, 1 to
                  256 (default: the number of cores)
  --no-yield      in the green models, do not yield after each answer: a
                  connection whose next request is always waiting then keeps
                  its worker, and the others wait for seconds";

// The usage text states the protocol's limits in words.
const _: () = assert!(MAX_N == 40 && MAX_LINE == 64);

/// How long an accept loop waits after a failed accept (typically out of
/// descriptors) before it tries again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

fn main() {
    let flags = green_examples::Flags::from_env(
        "fib_server",
        USAGE,
        &[Value("model"), Value("listen"), Value("workers"), Switch("no-yield")],
    );
    let expected = format!("one of {}", Model::names());
    let model: Model = flags.get("model", Model::Green, &expected);
    let listen: SocketAddr =
        flags.get("listen", SocketAddr::from(([127, 0, 0, 1], 0)), "an address such as 127.0.0.1:7000");
    let cores = thread::available_parallelism().map_or(1, usize::from);
    let workers: usize = flags.get_number("workers", cores.min(256), 1..=256);
    let yields = !flags.switch("no-yield");

    let served = match model {
        Model::Green => serve_green(listen, 1, Shape::Inline, yields),
        Model::GreenPool => serve_green(listen, 1, Shape::Offload, yields),
        Model::GreenWorkers => serve_green(listen, workers, Shape::Distributed, yields),
        Model::Threads => serve_threads(listen),
        Model::Processes => processes::serve(listen, workers, yields),
        Model::Tokio => serve_tokio(listen, workers, false),
        Model::TokioPool => serve_tokio(listen, workers, true),
    };
    if let Err(err) = served {
        eprintln!("fib_server: {err}");
        std::process::exit(1);
    }
}

/// Prints the one line a parent process waits for, and flushes it.
fn announce(addr: SocketAddr) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()
}

/// Adds the address to an error from binding a listener.
fn cannot_listen(addr: SocketAddr) -> impl FnOnce(io::Error) -> io::Error {
    move |err| io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}"))
}

/// Reports how a connection ended, if that is worth a line: a peer that
/// resets or goes away is the peer's business.
fn report(ended: io::Result<()>) {
    match ended {
        Ok(()) => {}
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
            ) => {}
        Err(err) => eprintln!("fib_server: a connection failed: {err}"),
    }
}

/// Serves one connection with blocking reads and writes (a green socket
/// parks its coroutine, a `std` one its thread) until the peer closes it or
/// sends a line that is too long. `compute` answers a request for
/// `fib(n)`; each answer is written before the next request is computed.
///
/// With `yields`, the loop calls `green::yield_now` after each answer.
/// A green worker switches coroutines only where one parks or yields, and
/// a read that finds its request already there does not park: without the
/// yield, a connection whose client always has the next request waiting
/// by the time the answer is written gives its worker up only when the
/// runtime's I/O budget runs out (every 128 socket operations of the
/// worker), which with a 5 ms `fib(30)` per request is up to a third of
/// a second (`--no-yield` shows it). tokio's budget is the same size.
fn serve_connection<S, C>(mut stream: S, mut compute: C, yields: bool) -> io::Result<()>
where
    S: Read + Write,
    C: FnMut(u32) -> io::Result<u64>,
{
    let mut framer = Framer::new();
    let mut chunk = [0; READ_CHUNK];
    // Answers not yet written: error lines wait for the next write.
    let mut pending = Vec::new();
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        framer.push(&chunk[..n]);
        while let Some(frame) = framer.next_frame() {
            match frame {
                Frame::Line(line) => match parse_request(&line) {
                    Ok(n) => {
                        writeln!(pending, "{}", compute(n)?)?;
                        stream.write_all(&pending)?;
                        pending.clear();
                        if yields {
                            green::yield_now();
                        }
                    }
                    Err(error) => pending.extend_from_slice(error.as_bytes()),
                },
                Frame::TooLong => {
                    pending.extend_from_slice(TOO_LONG.as_bytes());
                    return stream.write_all(&pending);
                }
            }
        }
        if !pending.is_empty() {
            stream.write_all(&pending)?;
            pending.clear();
        }
    }
}

/// Computes `fib(n)` where the connection runs.
fn inline(n: u32) -> io::Result<u64> {
    Ok(fib(n))
}

/// Computes `fib(n)` on a thread of the runtime's blocking pool while the
/// calling coroutine waits and the worker serves the other connections.
fn offloaded(n: u32) -> io::Result<u64> {
    Ok(green::blocking::unblock(move || fib(n))?)
}

/// Where a green server runs a connection, and where its `fib` runs.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// On the accepting worker, `fib` inline.
    Inline,
    /// On the accepting worker, `fib` offloaded.
    Offload,
    /// On any worker, `fib` inline.
    Distributed,
}

/// The `green`, `green-pool` and `green-workers` models: a green runtime
/// of `workers` workers, one coroutine per connection.
fn serve_green(listen: SocketAddr, workers: usize, shape: Shape, yields: bool) -> io::Result<()> {
    green::Builder::new().workers(workers).run(|| {
        let listener = green::net::TcpListener::bind(listen).map_err(cannot_listen(listen))?;
        announce(listener.local_addr()?)?;
        accept_green(&listener, shape, yields)
    })
}

/// A green accept loop: starts a coroutine for each connection, shaped by
/// `shape` (and yielding after each answer if `yields`), and never returns
/// but on cancellation.
fn accept_green(listener: &green::net::TcpListener, shape: Shape, yields: bool) -> io::Result<()> {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) if green::is_cancelled(&err) => return Err(err),
            Err(err) => {
                eprintln!("fib_server: accept failed: {err}");
                green::sleep(ACCEPT_BACKOFF)?;
                continue;
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            eprintln!("fib_server: cannot set TCP_NODELAY: {err}");
        }
        // Each handle is dropped at once: the connection's coroutine is
        // detached and ends with its connection.
        let builder = green::task::Builder::new();
        let started = match shape {
            Shape::Inline => {
                builder.spawn(move || report(serve_connection(stream, inline, yields))).map(drop)
            }
            Shape::Offload => {
                builder.spawn(move || report(serve_connection(stream, offloaded, yields))).map(drop)
            }
            Shape::Distributed => {
                builder.spawn_distributed(move || report(serve_connection(stream, inline, yields))).map(drop)
            }
        };
        if let Err(err) = started {
            eprintln!("fib_server: cannot start a coroutine for a connection: {err}");
        }
    }
}

/// The `threads` model: `std` only, one OS thread per connection.
fn serve_threads(listen: SocketAddr) -> io::Result<()> {
    let listener = std::net::TcpListener::bind(listen).map_err(cannot_listen(listen))?;
    announce(listener.local_addr()?)?;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) => {
                eprintln!("fib_server: accept failed: {err}");
                thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            eprintln!("fib_server: cannot set TCP_NODELAY: {err}");
        }
        let started = thread::Builder::new()
            .name("connection".into())
            .spawn(move || report(serve_connection(stream, inline, false)));
        if let Err(err) = started {
            eprintln!("fib_server: cannot start a thread for a connection: {err}");
        }
    }
}

/// The `tokio` and `tokio-pool` models: a multi-threaded tokio runtime of
/// `workers` workers, one task per connection; `fib` runs in the task, or
/// on the blocking pool if `offload`.
fn serve_tokio(listen: SocketAddr, workers: usize, offload: bool) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(cannot_listen(listen))?;
        announce(listener.local_addr()?)?;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    eprintln!("fib_server: accept failed: {err}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            if let Err(err) = stream.set_nodelay(true) {
                eprintln!("fib_server: cannot set TCP_NODELAY: {err}");
            }
            tokio::spawn(async move { report(serve_tokio_connection(stream, offload).await) });
        }
    })
}

/// [`serve_connection`] for a tokio socket: the same rules, with `async`
/// reads and writes; `fib` runs in the task, or on the blocking pool if
/// `offload`.
async fn serve_tokio_connection(mut stream: tokio::net::TcpStream, offload: bool) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut framer = Framer::new();
    let mut chunk = [0; READ_CHUNK];
    let mut pending = Vec::new();
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        framer.push(&chunk[..n]);
        while let Some(frame) = framer.next_frame() {
            match frame {
                Frame::Line(line) => match parse_request(&line) {
                    Ok(n) => {
                        let value = if offload {
                            tokio::task::spawn_blocking(move || fib(n)).await.map_err(io::Error::other)?
                        } else {
                            fib(n)
                        };
                        writeln!(pending, "{value}")?;
                        stream.write_all(&pending).await?;
                        pending.clear();
                    }
                    Err(error) => pending.extend_from_slice(error.as_bytes()),
                },
                Frame::TooLong => {
                    pending.extend_from_slice(TOO_LONG.as_bytes());
                    return stream.write_all(&pending).await;
                }
            }
        }
        if !pending.is_empty() {
            stream.write_all(&pending).await?;
            pending.clear();
        }
    }
}

/// The `processes` model: pre-forked worker processes that share one
/// listening socket.
///
/// The parent binds the socket, then forks the workers before anything
/// has started a thread, which is what makes `fork` sound here (see
/// `fork_worker`). Each worker is a one-worker green runtime accepting
/// from the shared socket; the kernel wakes the workers waiting in `epoll`
/// and one of them wins each connection. The parent serves nothing: it
/// waits for its workers. A worker that dies takes only its own
/// connections with it.
///
/// Every worker asks the kernel to kill it when the parent dies
/// (`PR_SET_PDEATHSIG`), so stopping the parent in any way, even with
/// `SIGKILL`, stops them all, and no signal needs forwarding.
mod processes {
    use std::fs;
    use std::io;
    use std::net::{SocketAddr, TcpListener};

    use super::{Shape, accept_green, announce, cannot_listen};

    /// Binds `listen`, forks `workers` worker processes (yielding after
    /// each answer if `yields`) and waits for them.
    ///
    /// # Errors
    ///
    /// The socket cannot be bound, a worker cannot be forked, or every
    /// worker has ended (it never returns otherwise).
    pub fn serve(listen: SocketAddr, workers: usize, yields: bool) -> io::Result<()> {
        let listener = TcpListener::bind(listen).map_err(cannot_listen(listen))?;
        let addr = listener.local_addr()?;
        let mut children = Vec::with_capacity(workers);
        for _ in 0..workers {
            match fork_worker(&listener, yields) {
                Ok(child) => children.push(child),
                Err(err) => {
                    // The workers already forked die with this process.
                    return Err(io::Error::new(err.kind(), format!("cannot start a worker process: {err}")));
                }
            }
        }
        // The parent accepts nothing; the workers have their copies.
        drop(listener);
        // Printed after the forks, so that no worker inherits it unflushed.
        announce(addr)?;
        wait_for(children)
    }

    /// The number of threads this process has, from `/proc/self/task`.
    fn thread_count() -> io::Result<usize> {
        Ok(fs::read_dir("/proc/self/task")?.count())
    }

    /// Forks a worker process that serves connections from `listener`
    /// (yielding after each answer if `yields`) until its parent dies, and
    /// returns its process id. Only the parent returns.
    ///
    /// # Why the fork is sound
    ///
    /// `fork` copies only the thread that calls it. In a process with other
    /// threads, a lock one of them held at that moment (the allocator's,
    /// stdout's) stays locked in the child forever, and whatever it was
    /// changing stays half-changed; the child may then call only
    /// async-signal-safe functions until it `exec`s. This function forks
    /// only after counting the process's threads and finding one: the
    /// parent starts none (the runtime, and with it every thread, starts in
    /// the child), so the child is a whole, consistent copy of a
    /// single-threaded process and may allocate, print and start threads
    /// like any new process. The child never returns from this function
    /// (`worker` ends in `process::exit`), so it never runs the parent's
    /// code after the fork.
    ///
    /// # Errors
    ///
    /// The process has more than one thread (forking it would not be
    /// sound), or `fork` failed.
    pub(super) fn fork_worker(listener: &TcpListener, yields: bool) -> io::Result<libc::pid_t> {
        let threads = thread_count()?;
        if threads != 1 {
            return Err(io::Error::other(format!(
                "the process has {threads} threads; it may fork only while it has one"
            )));
        }
        let parent = std::process::id();
        // SAFETY: the process has one thread (counted just above, and none started since), so no lock is held
        // by a thread the child lacks and the child is a whole copy that may do anything; it never returns
        // from here (`worker` exits). The section "Why the fork is sound" above gives the whole argument.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => Err(io::Error::last_os_error()),
            0 => worker(listener, parent, yields),
            child => Ok(child),
        }
    }

    /// The life of a worker process: dies with its parent, serves from its
    /// copy of the listening socket on a one-worker green runtime, and
    /// exits.
    fn worker(listener: &TcpListener, parent: u32, yields: bool) -> ! {
        let served = die_with_parent(parent).and_then(|()| {
            let listener = green::net::TcpListener::from(listener.try_clone()?);
            green::run(|| accept_green(&listener, Shape::Inline, yields))
        });
        let code = match served {
            Ok(()) => 0,
            Err(err) => {
                eprintln!("fib_server: worker process {}: {err}", std::process::id());
                1
            }
        };
        std::process::exit(code)
    }

    /// Has the kernel kill this process when its parent dies.
    ///
    /// # Errors
    ///
    /// `prctl` failed, or the parent `parent` had already died (then the
    /// signal would never come).
    fn die_with_parent(parent: u32) -> io::Result<()> {
        // `prctl` takes its arguments as unsigned longs; SIGKILL is 9.
        let signal = libc::SIGKILL as libc::c_ulong;
        // SAFETY: `PR_SET_PDEATHSIG` reads only its integer argument, a valid signal number, and touches no
        // memory of this process.
        let set = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) };
        if set == -1 {
            return Err(io::Error::last_os_error());
        }
        // Had the parent died before `prctl`, this process would have been
        // adopted, and the signal is sent only for a death after it.
        if std::os::unix::process::parent_id() != parent {
            return Err(io::Error::other("the parent process ended before the worker started"));
        }
        Ok(())
    }

    /// Waits for the worker processes `children`, reporting each that
    /// ends, until none is left.
    fn wait_for(mut children: Vec<libc::pid_t>) -> io::Result<()> {
        while !children.is_empty() {
            let mut status: libc::c_int = 0;
            // SAFETY: `waitpid` writes the status of the child it reaped into `status`, a live, writable
            // `c_int` of this frame, and touches no other memory.
            let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
            if pid == -1 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            children.retain(|&child| child != pid);
            let how = if libc::WIFSIGNALED(status) {
                format!("killed by signal {}", libc::WTERMSIG(status))
            } else {
                format!("exited with status {}", libc::WEXITSTATUS(status))
            };
            eprintln!("fib_server: worker process {pid} {how}; {} left", children.len());
        }
        Err(io::Error::other("every worker process has ended"))
    }
}
