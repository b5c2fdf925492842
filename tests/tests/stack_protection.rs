//! Stack protection: whatever `Protection` safe code picks, every stack
//! handed to a coroutine is mapped and has a guard that faults; when the
//! guard cannot be had, `spawn` fails with an error saying why, and keeps
//! failing the same way, rather than handing out a weaker or broken stack.
//!
//! * The guard-page budget (a quarter of `vm.max_map_count`) runs out:
//!   every later spawn fails with the same error, naming
//!   `vm.max_map_count` and the `sysctl` command that raises it; the stacks
//!   already handed out stay usable, and once they are free, spawning
//!   works again. A region refused half-way leaves nothing in the pool.
//! * Under `Auto`, when the kernel refuses guard regions, the same: guard
//!   pages, then that error, never an unguarded (canary) stack.
//! * An insisted `GuardRegion` that the kernel refuses is an error, never
//!   another protection.
//! * `Canary` is refused by the safe builder.
//!
//! Kernels with guard regions (Linux 6.13+) never need guard pages, so
//! the tests of `Auto` make the kernel refuse guard regions: memory locked
//! with `mlockall` cannot have them. Every scenario runs in a child process
//! (see [`green_tests::run_in_child`]), which owns its budget and its
//! locked memory, and which a bad stack would crash.

use std::io;
use std::panic;

use green::{JoinHandle, Protection};
use green_tests::{describe, panic_message, run_in_child, stderr_of};

/// Stack size of the coroutines that fill the budget.
const STACK: usize = 16 * 1024;

/// The guard pages a process may make: a quarter of `vm.max_map_count`.
fn guard_page_budget() -> usize {
    let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(65_530);
    max_map_count / 4
}

/// Spawns coroutines (which wait to start) until `spawn` fails, and
/// returns them and the error. Panics if spawning goes on well past the
/// guard-page budget: some stacks went unguarded.
fn spawn_until_refused() -> (Vec<JoinHandle<u32>>, io::Error) {
    let cap = guard_page_budget() + 64;
    let mut handles = Vec::new();
    loop {
        match green::task::Builder::new().stack_size(STACK).spawn(|| 1) {
            Ok(handle) => handles.push(handle),
            Err(err) => return (handles, err),
        }
        assert!(
            handles.len() <= cap,
            "{} stacks were handed out, more than the guard-page budget allows: some are unguarded",
            handles.len()
        );
    }
}

/// Asserts that `err` is the spent-budget error and says how to raise it.
fn assert_budget_error(err: &io::Error) {
    let message = err.to_string();
    for expected in ["vm.max_map_count", "sysctl -w vm.max_map_count=", "guard page"] {
        assert!(message.contains(expected), "the error lacks {expected:?}: {message}");
    }
}

/// Fills the budget, checks that the error repeats, runs every coroutine
/// spawned (each on a mapped, guarded stack), then spawns again on the
/// freed stacks.
fn exhaust_the_budget_and_recover() {
    let (handles, err) = spawn_until_refused();
    assert_budget_error(&err);
    for attempt in 0..3 {
        let again = green::task::Builder::new().stack_size(STACK).spawn(|| 2);
        let again = again.err().unwrap_or_else(|| {
            panic!("spawn {attempt} after the budget error succeeded: a stack of a refused region?")
        });
        assert_budget_error(&again);
        assert_eq!(again.to_string(), err.to_string(), "the error repeats as it was");
    }
    let spawned = handles.len();
    let ran: u32 = handles.into_iter().map(|h| h.join().expect("a coroutine on a budgeted stack")).sum();
    assert_eq!(ran as usize, spawned);
    let reused = green::task::Builder::new().stack_size(STACK).spawn(|| 3);
    assert_eq!(reused.expect("spawn on a freed stack").join().expect("join"), 3);
    eprintln!("refused after {spawned} stacks, recovered");
}

#[test]
fn a_spent_guard_page_budget_refuses_every_spawn_until_stacks_are_freed() -> io::Result<()> {
    let output =
        run_in_child("a_spent_guard_page_budget_refuses_every_spawn_until_stacks_are_freed", || {
            green::Builder::new().stack_protection(Protection::GuardPage).run(exhaust_the_budget_and_recover);
        })?;
    assert!(output.status.success(), "{}", describe(&output));
    assert!(stderr_of(&output).contains("recovered"), "{}", describe(&output));
    Ok(())
}

/// Makes every mapping created from now on locked (on fault, so nothing is
/// populated early). The kernel refuses guard regions in locked memory.
/// Returns false if the process may not lock memory.
fn lock_future_mappings() -> bool {
    // SAFETY: mlockall only changes how the process's memory is paged.
    let rc = unsafe { libc::mlockall(libc::MCL_FUTURE | libc::MCL_ONFAULT) };
    if rc != 0 {
        eprintln!("skipped: mlockall failed: {}", io::Error::last_os_error());
    }
    rc == 0
}

#[test]
fn auto_never_falls_back_to_an_unguarded_stack() -> io::Result<()> {
    let output = run_in_child("auto_never_falls_back_to_an_unguarded_stack", || {
        if !lock_future_mappings() {
            return;
        }
        green::run(exhaust_the_budget_and_recover);
    })?;
    assert!(output.status.success(), "{}", describe(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("recovered") || stderr.contains("skipped"), "{}", describe(&output));
    Ok(())
}

#[test]
fn an_insisted_guard_region_is_never_replaced() -> io::Result<()> {
    let output = run_in_child("an_insisted_guard_region_is_never_replaced", || {
        // The main coroutine's stack gets a guard region: the kernel has
        // them. Then memory is locked, and the next region cannot.
        green::Builder::new().stack_protection(Protection::GuardRegion).run(|| {
            if !lock_future_mappings() {
                return;
            }
            // A size of its own, so that it needs a new region.
            let refused = green::task::Builder::new().stack_size(128 * 1024).spawn(|| 1);
            let err = refused.expect_err("a stack without a guard region was handed out");
            let message = err.to_string();
            for expected in ["GuardRegion", "MADV_GUARD_INSTALL", "Protection::Auto"] {
                assert!(message.contains(expected), "the error lacks {expected:?}: {message}");
            }
            // SAFETY: munlockall only changes how the process's memory is
            // paged.
            assert_eq!(unsafe { libc::munlockall() }, 0);
            let spawned = green::task::Builder::new().stack_size(128 * 1024).spawn(|| 2);
            assert_eq!(spawned.expect("spawn with memory unlocked").join().expect("join"), 2);
            eprintln!("refused while memory was locked");
        });
    })?;
    let stderr = stderr_of(&output);
    if output.status.code() == Some(101)
        && stderr.contains("MADV_GUARD_INSTALL")
        && stderr.contains("does not offer")
    {
        return Ok(()); // a kernel without guard regions (Linux < 6.13): nothing to replace
    }
    assert!(output.status.success(), "{}", describe(&output));
    assert!(stderr.contains("refused while") || stderr.contains("skipped"), "{}", describe(&output));
    Ok(())
}

#[test]
fn the_safe_builder_refuses_canaries() {
    let outcome = panic::catch_unwind(|| green::Builder::new().stack_protection(Protection::Canary));
    let payload = outcome.expect_err("Protection::Canary was accepted by the safe builder");
    let message = panic_message(&*payload).unwrap_or_default();
    assert!(message.contains("stack_protection_unchecked"), "{message}");
    // The other protections are all accepted.
    for protection in [Protection::Auto, Protection::GuardRegion, Protection::GuardPage] {
        let _ = green::Builder::new().stack_protection(protection);
    }
}
