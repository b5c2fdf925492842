//! A tour of the basics: `spawn`, `join`, `sleep` and `yield_now`, printing
//! who runs when. Run with `cargo run --release --example hello`.

use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: hello\n\nSpawns two coroutines next to `main` and prints, in order, what each does.";

fn main() {
    green_examples::Flags::from_env("hello", USAGE, &[]);
    if let Err(err) = green::run(tour) {
        eprintln!("hello: {err}");
        std::process::exit(1);
    }
}

fn tour() -> io::Result<()> {
    say("spawning 'sleeper' and 'yielder'; they start when main blocks or yields");
    let sleeper = green::task::Builder::new().name("sleeper").spawn(|| -> io::Result<i32> {
        say("sleeping 10 ms (only this coroutine sleeps, not the thread)");
        green::sleep(Duration::from_millis(10))?;
        say("awake, returning 42");
        Ok(42)
    })?;
    let yielder = green::task::Builder::new().name("yielder").spawn(|| {
        for turn in 1..=3 {
            say(&format!("turn {turn}, yielding"));
            green::yield_now();
        }
    })?;
    green::yield_now();
    say("back after one yield: both have had their first turn");
    yielder.join().map_err(io::Error::other)?;
    say("yielder joined; joining sleeper parks main until it wakes");
    let answer = sleeper.join().map_err(io::Error::other)??;
    say(&format!("sleeper returned {answer}"));
    Ok(())
}

/// Prints `what` with the time since start and the running coroutine.
fn say(what: &str) {
    static START: OnceLock<Instant> = OnceLock::new();
    let elapsed = START.get_or_init(Instant::now).elapsed();
    let me = green::current();
    let who = format!("{} #{}", me.name().unwrap_or("?"), me.id());
    println!("{:>5.1} ms  {who:<11} {what}", elapsed.as_secs_f64() * 1e3);
}
