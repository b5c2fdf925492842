//! A small TCP server with a bug built in, to see what a task dump says
//! about a hang. It counts: every line a client sends gets the count of
//! lines so far back. One of three bugs, chosen with `--bug`, leaves some
//! coroutines stuck while the server goes on serving:
//!
//! * `deadlock`: two coroutines move money between two accounts, each
//!   taking the two locks in the opposite order: each holds one lock and
//!   waits for the other. The dump finds the cycle.
//! * `forgotten-sender`: a coroutine asks for a value and waits for the
//!   reply, whose sender was put in a queue nobody reads. The dump shows it
//!   parked in a channel receive, and for how long.
//! * `spin`: a coroutine computes a checksum forever without yielding, on
//!   worker 1 of the two. That worker cannot answer the dump; the dump says
//!   so, naming the coroutine and how long it has held the thread.
//!
//! ```text
//! cargo run --release --example stuck -- --bug deadlock
//! kill -QUIT <pid>          # the pid it prints; the dump goes to stderr
//! ```
//!
//! `--quit-after SECONDS` sends the `SIGQUIT` itself, waits for the dump and
//! exits, for a run without a second terminal.

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Write};
use std::process;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use green::channel::{self, OneshotSender};
use green::net::{TcpListener, TcpStream};
use green::sync::Mutex;
use green_examples::{Flag, Flags};

const USAGE: &str = "usage: stuck [--bug deadlock|forgotten-sender|spin] [--addr IP] [--port PORT] \
[--quit-after SECONDS]

A counting server over TCP (every line a client sends gets the count back) on two workers,
with one bug built in:
  deadlock          two coroutines take two locks in opposite orders and wait for each other
  forgotten-sender  a coroutine waits for a reply whose sender was stashed and forgotten
  spin              a coroutine computes forever without yielding, holding worker 1
It prints its pid; kill -QUIT <pid> makes the runtime print a task dump to stderr.
--quit-after SECONDS sends that SIGQUIT itself after SECONDS, waits for the dump and exits.";

/// The bug to build in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    /// None: a healthy server.
    None,
    /// A lock-order deadlock between two coroutines.
    Deadlock,
    /// A receive whose sender was stashed and forgotten.
    ForgottenSender,
    /// A coroutine that never yields.
    Spin,
}

impl std::str::FromStr for Bug {
    type Err = ();

    fn from_str(text: &str) -> Result<Bug, ()> {
        match text {
            "deadlock" => Ok(Bug::Deadlock),
            "forgotten-sender" => Ok(Bug::ForgottenSender),
            "spin" => Ok(Bug::Spin),
            "none" => Ok(Bug::None),
            _ => Err(()),
        }
    }
}

fn main() {
    let flags = Flags::from_env(
        "stuck",
        USAGE,
        &[Flag::Value("bug"), Flag::Value("addr"), Flag::Value("port"), Flag::Value("quit-after")],
    );
    let bug_name = flags.get("bug", String::from("none"), "deadlock, forgotten-sender, spin or none");
    let bug = flags.get("bug", Bug::None, "deadlock, forgotten-sender, spin or none");
    let addr = flags.get_listen_addr(0);
    let quit_after = flags.get_seconds("quit-after", Duration::ZERO, 0.0..=3600.0);
    let served = green::Builder::new().workers(2).dump_on_sigquit(true).run(move || -> io::Result<()> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        println!(
            "stuck: pid {pid}, listening on {local} with --bug {bug_name}; kill -QUIT {pid} prints a task dump",
            pid = process::id()
        );
        io::stdout().flush()?;
        // Kept alive for the whole run, as a server keeps its state.
        let _state = start_bug(bug)?;
        green::task::Builder::new().name("health-check").spawn(move || health_check(local))?;
        if !quit_after.is_zero() {
            green::task::Builder::new().name("quitter").spawn(move || quit(quit_after))?;
        }
        serve(&listener)
    });
    if let Err(err) = served {
        eprintln!("stuck: {err}");
        process::exit(1);
    }
}

/// What the bugs keep alive: the stashed reply senders.
type Stash = Rc<RefCell<Vec<OneshotSender<u64>>>>;

/// Starts the coroutines of `bug`; returns what must stay alive with the
/// server.
fn start_bug(bug: Bug) -> io::Result<Stash> {
    let stash: Stash = Rc::default();
    match bug {
        Bug::None => {}
        Bug::Deadlock => {
            let (checking, savings) = (Arc::new(Mutex::new(100u64)), Arc::new(Mutex::new(100u64)));
            let (from, to) = (checking.clone(), savings.clone());
            green::task::Builder::new()
                .name("checking-to-savings")
                .spawn(move || transfer(&from, &to, 10))?;
            green::task::Builder::new()
                .name("savings-to-checking")
                .spawn(move || transfer(&savings, &checking, 20))?;
        }
        Bug::ForgottenSender => {
            // The reply's sender goes into a queue the loader was meant to
            // drain; the loader was never started, and the queue lives on.
            let requests = stash.clone();
            green::task::Builder::new().name("cache-warmer").spawn(move || {
                let (reply, answer) = channel::oneshot();
                requests.borrow_mut().push(reply);
                answer.recv()
            })?;
        }
        Bug::Spin => {
            green::task::Builder::new().name("checksum").spawn_on_worker(1, || {
                let mut sum = 0u64;
                loop {
                    // Never parks nor yields: worker 1 runs nothing else.
                    sum = std::hint::black_box(sum.wrapping_mul(31).wrapping_add(7));
                }
            })?;
        }
    }
    Ok(stash)
}

/// Moves `amount` from `from` to `to`, locking `from` first: two of these
/// in opposite directions deadlock.
fn transfer(from: &Mutex<u64>, to: &Mutex<u64>, amount: u64) {
    let Ok(mut source) = from.lock() else { return };
    // Someone else runs now, and takes the other lock first.
    green::yield_now();
    let Ok(mut target) = to.lock() else { return };
    *source -= amount;
    *target += amount;
}

/// A client of the server itself, which connects and waits for a line the
/// server never sends unasked: a socket wait with a peer, in the dump.
fn health_check(server: std::net::SocketAddr) -> io::Result<String> {
    let stream = TcpStream::connect(server)?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line)
}

/// Sends this process `SIGQUIT` after `after`, waits for the dump to be
/// printed, and exits.
fn quit(after: Duration) -> io::Result<()> {
    green::sleep(after).map_err(io::Error::other)?;
    // SAFETY: `kill` takes two integers and touches no memory of ours.
    if unsafe { libc::kill(libc::getpid(), libc::SIGQUIT) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let asked = Instant::now();
    while green::dump::signal_dumps() == 0 && asked.elapsed() < Duration::from_secs(10) {
        green::sleep(Duration::from_millis(10)).map_err(io::Error::other)?;
    }
    process::exit(0);
}

/// Accepts clients forever, one coroutine each.
fn serve(listener: &TcpListener) -> io::Result<()> {
    let count = Arc::new(Mutex::new(0u64));
    loop {
        let (stream, peer) = listener.accept()?;
        let count = count.clone();
        green::task::Builder::new().name(format!("client {peer}")).spawn(move || answer(stream, &count))?;
    }
}

/// Answers each line of one client with the count of lines so far.
fn answer(stream: TcpStream, count: &Mutex<u64>) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        line?;
        let now = {
            let mut count = count.lock().map_err(|_| io::Error::other("the count's lock is poisoned"))?;
            *count += 1;
            *count
        };
        writeln!(writer, "{now}")?;
    }
    Ok(())
}
