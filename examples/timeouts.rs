//! A tour of cancellation: a timeout around a slow read, nested deadlines,
//! cancelling a coroutine, a scope whose failing child cancels its
//! siblings, and cleanup that a shield protects.
//!
//! Run with `cargo run --release --example timeouts`. Every step prints
//! what happened and how long it took.

use std::io::{self, Read, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use green::net::UnixStream;

const USAGE: &str = "usage: timeouts\n\nWalks through timeouts, deadlines, cancellation, scopes and shields.";

fn main() {
    green_examples::Flags::from_env("timeouts", USAGE, &[]);
    START.get_or_init(Instant::now);
    let outcome = green::run(|| -> io::Result<()> {
        slow_read()?;
        nested_deadlines();
        cancel_a_coroutine()?;
        failing_child_cancels_siblings()?;
        shielded_cleanup()?;
        Ok(())
    });
    if let Err(err) = outcome {
        eprintln!("timeouts: {err}");
        std::process::exit(1);
    }
}

/// A read from a peer that answers too late is cut short by a timeout.
fn slow_read() -> io::Result<()> {
    step("1. a 50 ms timeout around a read whose answer comes after 200 ms");
    let (mut ours, mut theirs) = UnixStream::pair()?;
    let peer = green::task::Builder::new().spawn(move || -> io::Result<()> {
        green::sleep(Duration::from_millis(200))?;
        theirs.write_all(b"too late")
    })?;
    let mut buf = [0; 16];
    match green::timeout(Duration::from_millis(50), || ours.read(&mut buf)) {
        Ok(read) => say(&format!("read finished in time: {read:?}")),
        Err(elapsed) => say(&format!("{elapsed}; the read was cancelled and nothing was consumed")),
    }
    // The answer was not lost: it is still there to read.
    peer.join().map_err(io::Error::other)??;
    let n = ours.read(&mut buf)?;
    say(&format!("reading again gets it: {:?}", String::from_utf8_lossy(&buf[..n])));
    Ok(())
}

/// The nearest deadline wins, and each scope reports only its own.
fn nested_deadlines() {
    step("2. nested deadlines: outer 100 ms, inner 30 ms, then the inner one is longer");
    let outer = green::timeout(Duration::from_millis(100), || {
        let inner = green::timeout(Duration::from_millis(30), || green::sleep(Duration::from_secs(10)));
        say(&format!("inner scope: {}", describe(&inner.map(|_| ()))));
        let inner = green::timeout(Duration::from_secs(10), || green::sleep(Duration::from_secs(10)));
        let slept =
            if matches!(inner, Ok(Err(_))) { "its sleep was cancelled by the outer deadline" } else { "" };
        say(&format!("second inner scope (10 s): {}; {slept}", describe(&inner)));
    });
    say(&format!("outer scope: {}", describe(&outer)));
}

/// `cancel` is delivered at the coroutine's blocking call, as an error that
/// `?` carries out; every later blocking call fails too.
fn cancel_a_coroutine() -> io::Result<()> {
    step("3. cancelling a coroutine that is waiting for a message");
    let (mut reader, _writer) = UnixStream::pair()?;
    let worker = green::task::Builder::new().name("worker").spawn(move || -> io::Result<usize> {
        let mut buf = [0; 16];
        let n = reader.read(&mut buf)?; // cancelled here
        Ok(n)
    })?;
    green::sleep(Duration::from_millis(20))?;
    worker.cancel();
    match worker.join() {
        Ok(Err(err)) if green::is_cancelled(&err) => say(&format!("worker returned: {err}")),
        other => say(&format!("worker ended unexpectedly: {other:?}")),
    }
    Ok(())
}

/// In a scope, the first child to fail cancels the others; the scope waits
/// for all of them and reports that first failure.
fn failing_child_cancels_siblings() -> io::Result<()> {
    step("4. a scope whose child fails after 30 ms; its two siblings wait for 10 s");
    let outcome = green::scope(|s| -> io::Result<()> {
        for name in ["sibling-a", "sibling-b"] {
            s.try_spawn(move || -> io::Result<()> {
                let result = green::sleep(Duration::from_secs(10));
                say(&format!("{name}: {}", if result.is_err() { "cancelled" } else { "finished" }));
                Ok(result?)
            })?;
        }
        s.try_spawn(|| -> io::Result<()> {
            green::sleep(Duration::from_millis(30))?;
            Err(io::Error::other("the upstream server refused"))
        })?;
        Ok(())
    });
    match outcome {
        // `Err` here: a child could not be started.
        Ok(started) => started.map(|()| say("the scope finished without failure")),
        Err(err) => {
            say(&format!("the scope failed: {err}"));
            Ok(())
        }
    }
}

/// Cleanup inside `shield` runs to the end even though the coroutine has
/// been cancelled; a timeout inside the shield still bounds it.
fn shielded_cleanup() -> io::Result<()> {
    step("5. a cancelled coroutine flushes its state in a shield (bounded by its own 1 s timeout)");
    let worker = green::task::Builder::new().spawn(|| {
        let work = green::sleep(Duration::from_secs(10));
        say(&format!("work: {}", if work.is_err() { "cancelled" } else { "done" }));
        let flushed = green::shield(|| {
            green::timeout(Duration::from_secs(1), || green::sleep(Duration::from_millis(40)))
        });
        say(&format!(
            "cleanup in the shield: {}",
            if flushed.is_ok() { "ran to the end" } else { "cut short" }
        ));
        let after = green::sleep(Duration::from_millis(1));
        say(&format!(
            "blocking again after the shield: {}",
            if after.is_err() { "cancelled again (level-triggered)" } else { "ran" }
        ));
    })?;
    green::sleep(Duration::from_millis(20))?;
    worker.cancel();
    worker.join().map_err(io::Error::other)?;
    Ok(())
}

/// Describes a scope's outcome.
fn describe<T>(outcome: &Result<T, green::Elapsed>) -> &'static str {
    if outcome.is_ok() { "finished (its deadline did not fire)" } else { "elapsed (its own deadline fired)" }
}

fn step(what: &str) {
    println!("\n{what}");
}

/// When the tour started.
static START: OnceLock<Instant> = OnceLock::new();

/// Prints `what` with the time since the tour started.
fn say(what: &str) {
    let elapsed = START.get_or_init(Instant::now).elapsed();
    println!("  {:>7.1} ms  {what}", elapsed.as_secs_f64() * 1e3);
}
