//! What this is: a small program that does one runtime operation `count`
//! times and nothing else, for tools that count what a whole process does
//! (callgrind's instructions, strace's system calls). It measures nothing
//! itself.
//!
//! A tool run on `probe OP N` and on `probe OP 2N` differs only by `N`
//! operations: start-up, the first mapping of stacks and shutdown cancel in
//! the difference. `benches/scripts/callgrind.sh` and
//! `benches/scripts/syscalls.sh` run it that way.
//!
//! | operation | one unit of `count` | the same workload as |
//! |---|---|---|
//! | `switch` | one `resume` of a bare corosensei coroutine that only suspends | `switch`, corosensei |
//! | `yield` | one `green::yield_now()` by a task alone in its runtime | `switch`, green |
//! | `yield-many` | one `green::yield_now()` by one of 200 tasks taking turns | `yield_many`, green |
//! | `spawn` | one empty task spawned and joined, 10,000 spawned before any is joined | `spawn_many`, green |
//! | `spawn-cold` | one empty task spawned and joined, 10,000 per fresh runtime (`green::run`) | `spawn_many_cold`, green |
//! | `channel` | one round trip over two `bounded(1)` channels | `channel_ping_pong`, green |
//! | `mutex` | one uncontended `lock` and unlock of a `green::sync::Mutex` in a coroutine | `mutex_uncontended`, green |
//! | `io` | one round trip of a byte over a Unix socket pair, each side waiting for readiness | none: it exists for its system calls |
//! | `tokio-yield` | one `tokio::task::yield_now()` by a task alone in a `current_thread` runtime | `switch`, tokio |

use std::io::{self, Read, Write};
use std::process::ExitCode;

use corosensei::{Coroutine, Yielder};
use green::channel;
use green::net::UnixStream;

const USAGE: &str =
    "usage: probe switch|yield|yield-many|spawn|spawn-cold|channel|mutex|io|tokio-yield COUNT";

/// `spawn`: tasks spawned before the first is joined, as in `spawn_many`.
const SPAWN_BATCH: u64 = 10_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (operation, count) = match args.as_slice() {
        [operation, count] => match count.parse::<u64>() {
            Ok(count) => (operation.as_str(), count),
            Err(_) => return usage(&format!("COUNT must be a whole number, not {count:?}")),
        },
        _ => return usage("expected an operation and a count"),
    };
    let result = match operation {
        "switch" => bare_switches(count),
        "yield" => green::run(|| yields(count)),
        "yield-many" => green::run(|| many_yields(count)),
        "spawn" => green::run(|| spawns(count)),
        "spawn-cold" => cold_spawns(count),
        "channel" => green::run(|| channel_round_trips(count)),
        "mutex" => green::run(|| mutex_locks(count)),
        "io" => green::run(|| io_round_trips(count)),
        "tokio-yield" => tokio_yields(count),
        other => return usage(&format!("unknown operation {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("probe: {operation}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("probe: {problem}\n{USAGE}");
    ExitCode::from(2)
}

/// `count` resume/suspend pairs of a corosensei coroutine on its default
/// stack, outside any runtime.
fn bare_switches(count: u64) -> io::Result<()> {
    let mut coroutine = Coroutine::new(|yielder: &Yielder<(), ()>, ()| {
        loop {
            yielder.suspend(());
        }
    });
    for _ in 0..count {
        coroutine.resume(());
    }
    Ok(())
}

/// One task yields `count` times while `main` waits in `join`, so every
/// yield is a switch out to the scheduler and straight back.
fn yields(count: u64) -> io::Result<()> {
    let task = green::spawn(move || {
        for _ in 0..count {
            green::yield_now();
        }
    });
    task.join().map_err(io::Error::other)
}

/// `yield-many`: tasks taking turns, as in `yield_many`.
const YIELD_TASKS: u64 = 200;

/// [`YIELD_TASKS`] tasks yield `count` times in all, taking turns through
/// the run queue, while `main` waits to join them.
fn many_yields(count: u64) -> io::Result<()> {
    let tasks: Vec<_> = (0..YIELD_TASKS)
        .map(|i| {
            let mine = count / YIELD_TASKS + u64::from(i < count % YIELD_TASKS);
            green::spawn(move || {
                for _ in 0..mine {
                    green::yield_now();
                }
            })
        })
        .collect();
    for task in tasks {
        task.join().map_err(io::Error::other)?;
    }
    Ok(())
}

/// `count` empty tasks, spawned in batches of [`SPAWN_BATCH`] and joined
/// after each batch.
fn spawns(count: u64) -> io::Result<()> {
    let mut left = count;
    while left > 0 {
        let batch = left.min(SPAWN_BATCH);
        let tasks: Vec<_> = (0..batch).map(|_| green::spawn(|| ())).collect();
        for task in tasks {
            task.join().map_err(io::Error::other)?;
        }
        left -= batch;
    }
    Ok(())
}

/// `count` empty tasks, [`SPAWN_BATCH`] per runtime: each batch starts a
/// runtime, spawns and joins its tasks, and ends the runtime.
fn cold_spawns(count: u64) -> io::Result<()> {
    let mut left = count;
    while left > 0 {
        let batch = left.min(SPAWN_BATCH);
        green::run(|| spawns(batch))?;
        left -= batch;
    }
    Ok(())
}

/// `count` round trips of a number between two tasks over two capacity-1
/// channels: every receive finds its channel empty and parks.
fn channel_round_trips(count: u64) -> io::Result<()> {
    let (to_pong, from_ping) = channel::bounded::<u64>(1);
    let (to_ping, from_pong) = channel::bounded::<u64>(1);
    let ping = green::spawn(move || -> io::Result<u64> {
        let mut ball = 0;
        for _ in 0..count {
            to_pong.send(ball).map_err(|_| io::Error::other("pong hung up"))?;
            ball = from_pong.recv().map_err(io::Error::other)?;
        }
        Ok(ball)
    });
    let pong = green::spawn(move || {
        for ball in from_ping.iter() {
            if to_ping.send(ball + 1).is_err() {
                break;
            }
        }
    });
    let ball = ping.join().map_err(io::Error::other)??;
    pong.join().map_err(io::Error::other)?;
    if ball != count {
        return Err(io::Error::other(format!("the ball came back as {ball}, not {count}")));
    }
    Ok(())
}

/// `count` uncontended lock and unlock pairs of one mutex, in the main
/// coroutine.
fn mutex_locks(count: u64) -> io::Result<()> {
    let lock = green::sync::Mutex::new(0u64);
    for _ in 0..count {
        *lock.lock().map_err(|_| io::Error::other("poisoned"))? += 1;
    }
    let total = *lock.lock().map_err(|_| io::Error::other("poisoned"))?;
    if total != count {
        return Err(io::Error::other(format!("counted {total}, not {count}")));
    }
    Ok(())
}

/// `count` round trips of one byte over a Unix socket pair between two
/// tasks. Each read finds nothing at first, so each side waits for
/// readiness once per round trip, and with both sides waiting the runtime
/// polls the reactor.
fn io_round_trips(count: u64) -> io::Result<()> {
    let (mut near, mut far) = UnixStream::pair()?;
    let echo = green::spawn(move || -> io::Result<()> {
        let mut byte = [0u8];
        for _ in 0..count {
            far.read_exact(&mut byte)?;
            far.write_all(&byte)?;
        }
        Ok(())
    });
    let mut byte = [7u8];
    for _ in 0..count {
        near.write_all(&byte)?;
        near.read_exact(&mut byte)?;
    }
    echo.join().map_err(io::Error::other)?
}

/// One tokio task yields `count` times on a runtime configured as the
/// benches' (`current_thread`, timers and I/O on) while the caller awaits
/// it.
fn tokio_yields(count: u64) -> io::Result<()> {
    let runtime = green_benches::current_thread_runtime();
    runtime.block_on(async move {
        let task = tokio::spawn(async move {
            for _ in 0..count {
                tokio::task::yield_now().await;
            }
        });
        task.await.map_err(io::Error::other)
    })
}
