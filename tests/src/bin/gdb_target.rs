//! A small program for the debugger test (`tests/tests/gdb.rs`): two
//! workers, a coroutine parked in a channel receive in
//! `waits_for_the_debugger`, one asleep in `sleeps_for_the_debugger` on
//! the other worker; once both are parked, the main coroutine stops the
//! process with `SIGTRAP` for the debugger that runs it.

use std::time::Duration;

use green::channel;
use green::dump::{Options, State};

/// Parks in a channel receive, in a frame of its own.
#[inline(never)]
fn waits_for_the_debugger(rx: &channel::Receiver<u32>) -> u32 {
    std::hint::black_box(rx.recv().unwrap_or(0))
}

/// Sleeps, in a frame of its own.
#[inline(never)]
fn sleeps_for_the_debugger() {
    let _ = std::hint::black_box(green::sleep(Duration::from_secs(3600)));
}

fn main() {
    let protection = match std::env::var_os("GDB_TARGET_GUARD_PAGES") {
        Some(_) => green::Protection::GuardPage,
        None => green::Protection::Auto,
    };
    green::Builder::new().workers(2).stack_protection(protection).run(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let waiter = green::task::Builder::new()
            .name("waiter")
            .spawn_on_worker(0, move || waits_for_the_debugger(&rx))
            .expect("spawned");
        let sleeper = green::task::Builder::new()
            .name("sleeper")
            .spawn_on_worker(1, sleeps_for_the_debugger)
            .expect("spawned");
        let ids = [waiter.id(), sleeper.id()];
        loop {
            green::sleep(Duration::from_millis(1)).expect("not cancelled");
            let dump = Options::new().backtraces(false).dump();
            let parked = |id| dump.coroutine(id).is_some_and(|c| c.state == State::Parked);
            if ids.iter().all(|id| parked(*id)) {
                break;
            }
        }
        println!("waiter {} sleeper {}", ids[0], ids[1]);
        // SAFETY: `raise` has no preconditions; SIGTRAP stops the process
        // for the debugger running it.
        unsafe { libc::raise(libc::SIGTRAP) };
        let _ = tx.send(1);
        sleeper.cancel();
        let _ = waiter.join();
    });
}
