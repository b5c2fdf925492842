//! Stack sizes: every size a user can pass to `task::Builder::stack_size`
//! or `Builder::stack_size` either gives a stack at least that large or is
//! refused up front with an error that names the limit. Nothing wraps round
//! to a tiny stack, and no size yields a stack pointer outside its mapping.
//!
//! * Above [`green::Builder::MAX_STACK_SIZE`] (1 GiB): `spawn` returns an
//!   `InvalidInput` error and spawns nothing; `run` panics before starting
//!   anything. Each of these runs in a child process (see
//!   [`green_tests::run_in_child`]), so that a size that did wrap would
//!   crash the child, not the test binary.
//! * 0 and every size below a page: the smallest stack, one page.
//! * Exactly the maximum: accepted (the system may still refuse to map
//!   it, which is then the error).

use std::cell::Cell;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use green::Builder;
use green_tests::{DropCounter, describe, panic_message, run_in_child};

/// Sizes no stack may have: just above the maximum, sizes whose rounding
/// to pages or whose region (16 stacks and their guard pages) overflows
/// `usize`, and sizes near `usize::MAX`.
fn impossible_sizes() -> Vec<usize> {
    let max = Builder::MAX_STACK_SIZE;
    vec![
        max + 1,
        max + 4096,
        2 * max,
        1 << 40,
        1 << 60,
        usize::MAX / 16 + 1,
        usize::MAX - 4095,
        usize::MAX - 1,
        usize::MAX,
    ]
}

/// Asserts that `err` refuses `size` as too large, naming the limit and the
/// builder methods that set the size.
fn assert_names_the_limit(message: &str, size: usize) {
    for expected in [
        size.to_string(),
        Builder::MAX_STACK_SIZE.to_string(),
        "green::task::Builder::stack_size".to_owned(),
        "green::Builder::stack_size".to_owned(),
    ] {
        assert!(message.contains(&expected), "the error for {size} lacks {expected:?}: {message}");
    }
}

#[test]
fn the_maximum_is_one_gibibyte() {
    assert_eq!(Builder::MAX_STACK_SIZE, 1 << 30);
}

#[test]
fn spawn_refuses_impossible_sizes_and_spawns_nothing() -> io::Result<()> {
    let output = run_in_child("spawn_refuses_impossible_sizes_and_spawns_nothing", || {
        green::run(|| {
            let ran = Rc::new(Cell::new(false));
            let drops = DropCounter::new();
            let sizes = impossible_sizes();
            for &size in &sizes {
                let token = drops.token();
                let flag = ran.clone();
                let spawned = green::task::Builder::new().name("huge").stack_size(size).spawn(move || {
                    drop(token);
                    flag.set(true);
                });
                let err = spawned.err().unwrap_or_else(|| panic!("a stack of {size} bytes was given"));
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{size}: {err}");
                assert_names_the_limit(&err.to_string(), size);
            }
            assert_eq!(drops.dropped(), sizes.len(), "a refused closure is dropped at once");
            green::yield_now();
            assert!(!ran.get(), "a refused closure ran");
            // The runtime is unharmed: a sensible size still works.
            let child = green::task::Builder::new().stack_size(64 * 1024).spawn(|| 6 * 7);
            assert_eq!(child.expect("spawn after the refusals").join().expect("join"), 42);
        });
        eprintln!("every impossible size was refused");
    })?;
    assert!(output.status.success(), "{}", describe(&output));
    Ok(())
}

#[test]
fn run_refuses_impossible_sizes_before_starting_anything() -> io::Result<()> {
    let output = run_in_child("run_refuses_impossible_sizes_before_starting_anything", || {
        for size in impossible_sizes() {
            let ran = Cell::new(false);
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                Builder::new().stack_size(size).run(|| ran.set(true));
            }));
            let payload = outcome.err().unwrap_or_else(|| panic!("run accepted a stack of {size} bytes"));
            let message = panic_message(&*payload).unwrap_or_default();
            assert_names_the_limit(message, size);
            assert!(!ran.get(), "main ran with a stack of {size} bytes");
        }
        // And the thread can still run a runtime.
        assert_eq!(green::run(|| 5), 5);
        eprintln!("every impossible size was refused");
    })?;
    assert!(output.status.success(), "{}", describe(&output));
    Ok(())
}

#[test]
fn sizes_below_a_page_give_the_smallest_stack_and_run() {
    green::run(|| {
        for size in [0, 1, 16, 100, 4095, 4096, 4097] {
            let child = green::task::Builder::new().stack_size(size).spawn(move || size + 1);
            assert_eq!(child.expect("a small stack").join().expect("join"), size + 1);
        }
    });
    assert_eq!(Builder::new().stack_size(0).run(|| 2 + 2), 4);
}

#[test]
fn the_maximum_itself_is_accepted() {
    green::run(|| {
        let child = green::task::Builder::new().stack_size(Builder::MAX_STACK_SIZE).spawn(|| {
            // Use more than a small stack would hold.
            let buffer = std::hint::black_box([1u8; 512 * 1024]);
            buffer.iter().map(|&b| u32::from(b)).sum::<u32>()
        });
        match child {
            Ok(child) => assert_eq!(child.join().expect("join"), 512 * 1024),
            // Sixteen such stacks are 16 GiB of address space: a system that
            // commits address space up front (vm.overcommit_memory = 2) or
            // limits it (ulimit -v) may refuse the mapping, which is then
            // the error, not the size.
            Err(err) => {
                assert_ne!(err.kind(), io::ErrorKind::InvalidInput, "the maximum was refused: {err}");
                assert!(err.to_string().contains("cannot map"), "{err}");
            }
        }
    });
}
