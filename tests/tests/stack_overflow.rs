//! Stack overflow: a coroutine that overflows its stack kills the process
//! with a report that names it, its id and its stack size, and says how to
//! raise it, under every kind of stack protection and whatever its name
//! (a name too long for the report is cut, never the report).
//!
//! Each overflow happens in a child process (see
//! [`green_tests::run_in_child`]); the test inspects how the child died and
//! what it wrote to stderr.

use std::hint::black_box;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

use green::Protection;
use green_tests::{describe, run_in_child, stderr_of};

/// Usable stack size of the coroutines that overflow.
const STACK: usize = 64 * 1024;

/// Recurses until the stack runs out. Every frame holds a buffer the
/// optimiser cannot remove.
fn recurse_forever(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    black_box(&mut frame);
    if black_box(depth == u64::MAX) {
        return 0;
    }
    recurse_forever(depth + 1) + u64::from(black_box(frame[0]))
}

/// Recurses `depth` frames deep, writing a non-zero pattern over each
/// frame, calls `at_bottom` from the deepest one and returns.
fn descend(depth: u32, at_bottom: fn()) -> u64 {
    let mut frame = [0xA5u8; 256];
    black_box(&mut frame);
    if depth == 0 {
        at_bottom();
        return u64::from(black_box(frame[0]));
    }
    descend(depth - 1, at_bottom) + u64::from(black_box(frame[255]))
}

/// Spawns a coroutine named "deep" with a [`STACK`]-byte stack on a runtime
/// protected with `protection`, lets it recurse forever and joins it.
fn overflow_deep_coroutine(protection: Protection) {
    green::Builder::new().stack_protection(protection).run(|| {
        let deep = green::task::Builder::new()
            .name("deep")
            .stack_size(STACK)
            .spawn(|| recurse_forever(0))
            .expect("spawn the coroutine that overflows");
        let _ = deep.join();
    });
    eprintln!("the runtime survived the overflow");
}

/// Asserts that the child aborted with the overflow report for coroutine
/// `name`, and that the runtime did not carry on after the overflow.
///
/// The report must give the size the coroutine was given ([`STACK`], a
/// whole number of pages, which `stack_size` documents as the usable
/// size), so that the user can compare it with what they set.
fn assert_overflow_report(output: &Output, name: &str) {
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{}", describe(output));
    let stderr = stderr_of(output);
    for expected in [
        format!("coroutine '{name}' (id "),
        format!("has overflowed its stack of {STACK} bytes"),
        "stack_size".to_owned(),
    ] {
        assert!(stderr.contains(&expected), "stderr lacks {expected:?}: {}", describe(output));
    }
    assert!(!stderr.contains("survived"), "{}", describe(output));
}

#[test]
fn overflow_with_auto_protection_is_reported() -> io::Result<()> {
    let output = run_in_child("overflow_with_auto_protection_is_reported", || {
        overflow_deep_coroutine(Protection::Auto);
    })?;
    assert_overflow_report(&output, "deep");
    Ok(())
}

#[test]
fn overflow_with_a_guard_page_is_reported() -> io::Result<()> {
    let output = run_in_child("overflow_with_a_guard_page_is_reported", || {
        overflow_deep_coroutine(Protection::GuardPage);
    })?;
    assert_overflow_report(&output, "deep");
    Ok(())
}

#[test]
fn overflow_with_a_guard_region_is_reported_where_the_kernel_has_them() -> io::Result<()> {
    let output = run_in_child("overflow_with_a_guard_region_is_reported_where_the_kernel_has_them", || {
        overflow_deep_coroutine(Protection::GuardRegion);
    })?;
    let stderr = stderr_of(&output);
    if output.status.code() == Some(101) && stderr.contains("MADV_GUARD_INSTALL") {
        // This kernel has no guard regions (Linux < 6.13): the runtime said
        // so instead of running unguarded, which is what it should do.
        assert!(stderr.contains("Protection::Auto"), "suggests the fallback: {}", describe(&output));
        return Ok(());
    }
    assert_overflow_report(&output, "deep");
    Ok(())
}

#[test]
fn overflow_of_the_main_coroutine_is_reported() -> io::Result<()> {
    let output = run_in_child("overflow_of_the_main_coroutine_is_reported", || {
        green::Builder::new().stack_size(STACK).run(|| recurse_forever(0));
        eprintln!("the runtime survived the overflow");
    })?;
    assert_overflow_report(&output, "main");
    Ok(())
}

#[test]
fn overflow_of_an_unnamed_coroutine_is_reported() -> io::Result<()> {
    let output = run_in_child("overflow_of_an_unnamed_coroutine_is_reported", || {
        green::run(|| {
            let _ =
                green::task::Builder::new().stack_size(STACK).spawn(|| recurse_forever(0)).unwrap().join();
        });
        eprintln!("the runtime survived the overflow");
    })?;
    assert_overflow_report(&output, "<unnamed>");
    Ok(())
}

/// Asserts that the child aborted with a complete overflow report for a
/// coroutine whose name, `name`, is too long for the report: the report is
/// valid UTF-8, shows the start of the name cut with an ellipsis, and still
/// says which size overflowed and how to raise it.
fn assert_cut_name_report(output: &Output, name: &str) {
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{}", describe(output));
    let stderr = String::from_utf8(output.stderr.clone())
        .unwrap_or_else(|_| panic!("the report is not UTF-8: {}", describe(output)));
    let report =
        stderr.split("coroutine '").nth(1).unwrap_or_else(|| panic!("no report: {}", describe(output)));
    let (shown, rest) =
        report.split_once("…' (id ").unwrap_or_else(|| panic!("the name is not cut: {}", describe(output)));
    assert!(name.starts_with(shown), "the report shows another name: {}", describe(output));
    assert!(shown.chars().count() >= 50, "the name was cut to almost nothing: {}", describe(output));
    for expected in [
        format!("has overflowed its stack of {STACK} bytes"),
        "fatal runtime error: stack overflow".to_owned(),
        "green::task::Builder::stack_size or green::Builder::stack_size\n".to_owned(),
    ] {
        assert!(rest.contains(&expected), "the report lacks {expected:?}: {}", describe(output));
    }
    assert!(!stderr.contains("survived"), "{}", describe(output));
}

/// Runs a coroutine named `name` that overflows, in a child.
fn overflow_named(test: &str, name: &str) -> io::Result<Output> {
    run_in_child(test, || {
        green::run(|| {
            let deep = green::task::Builder::new()
                .name(name)
                .stack_size(STACK)
                .spawn(|| recurse_forever(0))
                .expect("spawn the coroutine that overflows");
            let _ = deep.join();
        });
        eprintln!("the runtime survived the overflow");
    })
}

#[test]
fn overflow_of_a_coroutine_with_a_10000_byte_name_is_reported_in_full() -> io::Result<()> {
    let name = "n".repeat(10_000);
    let output = overflow_named("overflow_of_a_coroutine_with_a_10000_byte_name_is_reported_in_full", &name)?;
    assert_cut_name_report(&output, &name);
    Ok(())
}

#[test]
fn overflow_of_a_coroutine_with_a_long_multi_byte_name_is_reported_in_full() -> io::Result<()> {
    // Two-, three- and four-byte characters, so that no fixed cut lands on
    // a character boundary by luck.
    let name: String = "é日🦀".repeat(1_000);
    let output =
        overflow_named("overflow_of_a_coroutine_with_a_long_multi_byte_name_is_reported_in_full", &name)?;
    assert_cut_name_report(&output, &name);
    Ok(())
}

#[test]
fn overflow_of_a_main_coroutine_with_a_long_name_is_reported_in_full() -> io::Result<()> {
    let name = "🦀".repeat(2_500);
    let output = run_in_child("overflow_of_a_main_coroutine_with_a_long_name_is_reported_in_full", || {
        green::Builder::new().name(name.as_str()).stack_size(STACK).run(|| recurse_forever(0));
        eprintln!("the runtime survived the overflow");
    })?;
    assert_cut_name_report(&output, &name);
    Ok(())
}

/// Deepest recursion tried before concluding that the canary check never
/// fired: far more frames than a [`STACK`]-byte stack holds.
const MAX_DEPTH: u32 = 4_000;

/// Under [`Protection::Canary`] (only through the unsafe
/// `stack_protection_unchecked`) the page below a stack is writable, so an
/// overflow into it does not fault and the runtime must notice the damage
/// itself.
///
/// Where a stack ends exactly is the runtime's business (stack tops are
/// shifted by cache colour), so this finds it the way an unlucky program
/// would, and overflows by no more than one frame: coroutine number `k`
/// recurses `k` frames deep and returns, on the stack coroutine `k - 1` has
/// just given back, so the first coroutine to reach past its stack lands a
/// frame into the canary page, and then `at_bottom` runs from its deepest
/// frame. The runtime must abort with a report at the next check: when the
/// coroutine switches out or finishes.
///
/// Main prints `depth k` before coroutine `k` starts; coroutine `k` prints
/// `returned k` once back at the top of its stack.
fn step_into_the_canary(at_bottom: fn()) {
    // SAFETY: not upheld, on purpose, in this child process that exists to
    // see the canary check fire: the coroutine reaches one frame (a few
    // hundred bytes) into the canary page, a whole page, and no further, so
    // it writes into no other stack; the process aborts at the next check.
    let builder = unsafe { green::Builder::new().stack_protection_unchecked(Protection::Canary) };
    builder.run(|| {
        for depth in 1..MAX_DEPTH {
            eprintln!("depth {depth}");
            let deep = green::task::Builder::new()
                .name("deep")
                .stack_size(STACK)
                .spawn(move || {
                    black_box(descend(depth, at_bottom));
                    eprintln!("returned {depth}");
                })
                .expect("spawn the coroutine that overflows");
            deep.join().expect("the coroutine returns");
        }
    });
    eprintln!("the runtime survived the overflow");
}

/// The last depth main started a coroutine with, from the child's stderr.
fn last_depth(stderr: &str) -> Option<u32> {
    stderr.lines().rev().find_map(|line| line.strip_prefix("depth ")?.parse().ok())
}

#[test]
fn canary_overflow_is_reported_when_the_coroutine_finishes() -> io::Result<()> {
    let output = run_in_child("canary_overflow_is_reported_when_the_coroutine_finishes", || {
        step_into_the_canary(|| ());
    })?;
    assert_overflow_report(&output, "deep");
    assert!(stderr_of(&output).contains("canary"), "found by the canary check: {}", describe(&output));
    Ok(())
}

#[test]
fn canary_overflow_is_reported_when_the_coroutine_switches_out() -> io::Result<()> {
    let output = run_in_child("canary_overflow_is_reported_when_the_coroutine_switches_out", || {
        step_into_the_canary(green::yield_now);
    })?;
    assert_overflow_report(&output, "deep");
    let stderr = stderr_of(&output);
    assert!(stderr.contains("canary"), "found by the canary check: {}", describe(&output));
    let depth = last_depth(&stderr).expect("main started coroutines");
    assert!(
        !stderr.contains(&format!("returned {depth}\n")),
        "the overflow must be caught when the coroutine yields from its deepest frame, before it \
         runs again: {}",
        describe(&output)
    );
    Ok(())
}

#[test]
fn overflow_of_a_plain_thread_gets_the_standard_report() -> io::Result<()> {
    // The runtime's SIGSEGV handler is installed first; a fault that is not
    // a coroutine's must reach the standard library's handler.
    let output = run_in_child("overflow_of_a_plain_thread_gets_the_standard_report", || {
        green::run(|| green::spawn(|| 1).join().unwrap());
        let thread = std::thread::Builder::new()
            .name("plain".into())
            .stack_size(256 * 1024)
            .spawn(|| recurse_forever(0))
            .expect("spawn a thread");
        let _ = thread.join();
        eprintln!("the thread survived the overflow");
    })?;
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{}", describe(&output));
    let stderr = stderr_of(&output);
    // The standard report reads "thread 'plain' (<tid>) has overflowed its
    // stack" (older toolchains omit the tid).
    assert!(stderr.contains("thread 'plain'"), "{}", describe(&output));
    assert!(
        stderr.contains("has overflowed its stack\nfatal runtime error: stack overflow"),
        "{}",
        describe(&output)
    );
    assert!(!stderr.contains("coroutine '"), "not reported as a coroutine: {}", describe(&output));
    Ok(())
}
