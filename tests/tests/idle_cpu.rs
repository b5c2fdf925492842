//! An idle runtime sleeps in `epoll_wait`: while its coroutines are all
//! asleep, its thread uses next to no CPU.
//!
//! This bounds CPU *use*, not speed: a runtime that polls in a loop while
//! waiting burns a whole core (~300 ms of CPU over the 300 ms sleep); one
//! that blocks uses well under a millisecond. The 50 ms bound sits far from
//! both. CPU time is measured for the runtime's own thread only
//! (`RUSAGE_THREAD`), so tests running in parallel do not count.

use std::time::Duration;

use green_tests::thread_cpu_time;

const NAP: Duration = Duration::from_millis(300);
const BUDGET: Duration = Duration::from_millis(50);

#[test]
fn a_runtime_whose_only_coroutine_sleeps_uses_almost_no_cpu() {
    let used = green::run(|| {
        // Let the runtime finish starting before measuring.
        green::yield_now();
        let before = thread_cpu_time().expect("getrusage");
        green::sleep(NAP).expect("not cancelled");
        thread_cpu_time().expect("getrusage") - before
    });
    assert!(used < BUDGET, "the thread used {used:?} of CPU while its only coroutine slept for {NAP:?}");
}

#[test]
fn a_runtime_whose_coroutines_all_wait_uses_almost_no_cpu() {
    // Main parked in a join, the others in sleeps of various lengths.
    let used = green::run(|| {
        green::yield_now();
        let before = thread_cpu_time().expect("getrusage");
        let sleepers: Vec<_> =
            (1..=10u32).map(|i| green::spawn(move || green::sleep(NAP / 10 * i))).collect();
        for sleeper in sleepers {
            sleeper.join().unwrap().expect("not cancelled");
        }
        thread_cpu_time().expect("getrusage") - before
    });
    assert!(used < BUDGET, "the thread used {used:?} of CPU while its coroutines slept for {NAP:?}");
}
