//! The stall watchdog: a coroutine that holds its worker's thread past the
//! threshold is named on stderr, once per incident; one that parks or
//! yields is not. Each case runs in a child process, whose stderr is the
//! report.

use std::io;
use std::time::{Duration, Instant};

use green_tests::{describe, run_in_child, stderr_of};

/// Spins until the watchdog has reported one more stall than `before`
/// (or 20 s have passed: then the test fails on the missing report).
fn spin_until_reported(before: u64) {
    let start = Instant::now();
    while green::watchdog::stalls_reported() == before && start.elapsed() < Duration::from_secs(20) {
        std::hint::spin_loop();
    }
}

/// Spins for `time` without parking or yielding.
fn spin_for(time: Duration) {
    let start = Instant::now();
    while start.elapsed() < time {
        std::hint::spin_loop();
    }
}

fn reports(stderr: &str) -> usize {
    stderr.matches("green: stall:").count()
}

#[test]
fn a_spinning_coroutine_is_named_with_its_spawn_site_once_per_incident() -> io::Result<()> {
    let line = line!() + 5; // the line of `.spawn(` below
    let output = run_in_child("a_spinning_coroutine_is_named_with_its_spawn_site_once_per_incident", || {
        let threshold = Duration::from_millis(20);
        green::Builder::new().stall_watchdog(Some(threshold)).run(|| {
            let before = green::watchdog::stalls_reported();
            let spinner = green::task::Builder::new().name("spinner").spawn(move || {
                spin_until_reported(before);
                // The same incident goes on: no second report.
                spin_for(threshold * 10);
            });
            spinner.unwrap().join().unwrap();
        });
    })?;
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(reports(&stderr), 1, "{stderr}");
    assert!(stderr.contains("green: stall: coroutine 'spinner' (id "), "{stderr}");
    assert!(stderr.contains(&format!("spawned at {}:{line}:", file!())), "{stderr}");
    assert!(stderr.contains("has held the thread 'a_spinning_coroutine"), "names the thread: {stderr}");
    assert!(stderr.contains("green::blocking::unblock") && stderr.contains("green::yield_now()"), "{stderr}");
    Ok(())
}

#[test]
fn two_incidents_are_two_reports() -> io::Result<()> {
    let output = run_in_child("two_incidents_are_two_reports", || {
        green::Builder::new().stall_watchdog(Some(Duration::from_millis(10))).run(|| {
            for name in ["first", "second"] {
                let before = green::watchdog::stalls_reported();
                let task = green::task::Builder::new().name(name).spawn(move || spin_until_reported(before));
                task.unwrap().join().unwrap();
            }
        });
    })?;
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(reports(&stderr), 2, "{stderr}");
    assert!(stderr.contains("coroutine 'first'") && stderr.contains("coroutine 'second'"), "{stderr}");
    Ok(())
}

#[test]
fn a_blocking_std_call_is_a_stall_too() -> io::Result<()> {
    let output = run_in_child("a_blocking_std_call_is_a_stall_too", || {
        green::Builder::new().stall_watchdog(Some(Duration::from_millis(10))).run(|| {
            let sleeper = green::task::Builder::new().name("std-sleeper").spawn(|| {
                // Blocks the thread, as std::fs or a DNS lookup would.
                let before = green::watchdog::stalls_reported();
                let start = Instant::now();
                while green::watchdog::stalls_reported() == before
                    && start.elapsed() < Duration::from_secs(20)
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            sleeper.unwrap().join().unwrap();
        });
    })?;
    let stderr = stderr_of(&output);
    assert_eq!(reports(&stderr), 1, "{}", describe(&output));
    assert!(stderr.contains("coroutine 'std-sleeper'"), "{stderr}");
    Ok(())
}

#[test]
fn coroutines_that_yield_or_park_are_never_reported() -> io::Result<()> {
    let output = run_in_child("coroutines_that_yield_or_park_are_never_reported", || {
        let threshold = Duration::from_millis(20);
        green::Builder::new().stall_watchdog(Some(threshold)).run(|| {
            let yielder = green::spawn(move || {
                let start = Instant::now();
                while start.elapsed() < threshold * 15 {
                    spin_for(threshold / 10);
                    green::yield_now();
                }
            });
            let sleeper = green::spawn(move || green::sleep(threshold * 15));
            yielder.join().unwrap();
            sleeper.join().unwrap().unwrap();
        });
    })?;
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(reports(&stderr), 0, "{stderr}");
    Ok(())
}

#[test]
fn a_runtime_without_the_watchdog_is_not_watched() -> io::Result<()> {
    let output = run_in_child("a_runtime_without_the_watchdog_is_not_watched", || {
        green::Builder::new().stall_watchdog(None).run(|| spin_for(Duration::from_millis(300)));
    })?;
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(reports(&stderr), 0, "{stderr}");
    Ok(())
}

#[test]
fn a_stall_on_another_worker_names_that_worker() -> io::Result<()> {
    let output = run_in_child("a_stall_on_another_worker_names_that_worker", || {
        green::Builder::new().workers(2).stall_watchdog(Some(Duration::from_millis(10))).run(|| {
            let before = green::watchdog::stalls_reported();
            let spinner = green::task::Builder::new()
                .name("remote-spinner")
                .spawn_on_worker(1, move || spin_until_reported(before));
            spinner.unwrap().join().unwrap();
        });
    })?;
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(reports(&stderr), 1, "{stderr}");
    assert!(
        stderr.contains("coroutine 'remote-spinner'") && stderr.contains("has held worker 1"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn a_hundred_thousand_short_coroutines_under_a_tight_watchdog() {
    // The hazard check runs as each task record is freed: many of them,
    // while the watchdog looks every 250 µs, must all go through.
    let total = green::Builder::new().stall_watchdog(Some(Duration::from_millis(1))).run(|| {
        let mut total = 0u64;
        for batch in 0..10u64 {
            let handles: Vec<_> = (0..10_000u64).map(|i| green::spawn(move || batch * 10_000 + i)).collect();
            total += handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>();
        }
        total
    });
    assert_eq!(total, (0..100_000u64).sum::<u64>());
}
