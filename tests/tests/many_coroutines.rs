//! Scale: 100,000 coroutines alive at the same time on one thread, each
//! with a stack of its own, all of which finish.

use std::cell::Cell;
use std::rc::Rc;

const COROUTINES: usize = 100_000;

/// Counts coroutines as they start and finish.
#[derive(Default)]
struct Census {
    /// Coroutines that have started.
    started: Cell<usize>,
    /// Coroutines started and not yet finished.
    alive: Cell<usize>,
    /// The most coroutines ever alive at once.
    peak: Cell<usize>,
    /// Coroutines that ran to the end.
    finished: Cell<usize>,
    /// Set by main once every coroutine has started: they may finish.
    release: Cell<bool>,
}

#[test]
fn a_hundred_thousand_coroutines_are_alive_at_once() {
    let census = Rc::new(Census::default());
    // 32 KiB stacks: 3.2 GB of address space, of which only the pages each
    // coroutine touches are backed.
    let sum = green::Builder::new().stack_size(32 * 1024).run(|| {
        let handles: Vec<_> = (0..COROUTINES)
            .map(|i| {
                let census = census.clone();
                green::spawn(move || {
                    census.started.set(census.started.get() + 1);
                    census.alive.set(census.alive.get() + 1);
                    census.peak.set(census.peak.get().max(census.alive.get()));
                    // Stay alive until all have started.
                    while !census.release.get() {
                        green::yield_now();
                    }
                    census.alive.set(census.alive.get() - 1);
                    census.finished.set(census.finished.get() + 1);
                    i as u64
                })
            })
            .collect();
        // Each yield lets every runnable coroutine run once (FIFO), so the
        // first normally suffices; the loop does not depend on it.
        while census.started.get() < COROUTINES {
            green::yield_now();
        }
        assert_eq!(census.finished.get(), 0, "none may finish before the release");
        census.release.set(true);
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(census.peak.get(), COROUTINES, "peak of simultaneously alive coroutines");
    assert_eq!(census.finished.get(), COROUTINES);
    assert_eq!(census.alive.get(), 0);
    let n = COROUTINES as u64;
    assert_eq!(sum, n * (n - 1) / 2);
}
