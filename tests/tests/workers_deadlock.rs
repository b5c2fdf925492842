//! Deadlocks in a runtime of several workers: reported once every worker
//! is stalled and nothing outside the runtime can wake anything, with the
//! coroutines of every worker in the report; never while one worker still
//! runs or a wake-up is on its way between workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use green_tests::panic_text_of;

/// Runs `main` on a runtime of `workers` workers whose main coroutine is
/// named "entry" and returns the message `run` panicked with.
fn report_of(workers: usize, main: impl FnOnce()) -> String {
    panic_text_of("run must report the deadlock instead of hanging", || {
        green::Builder::new().name("entry").workers(workers).run(main)
    })
}

/// Counts its drops, from any thread.
struct Token(Arc<AtomicUsize>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Spawns `f` named `name` on worker `worker`.
fn on_worker(
    worker: usize,
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> green::task::DistributedHandle<()> {
    green::task::Builder::new().name(name).spawn_on_worker(worker, f).expect("the runtime has this worker")
}

#[test]
fn a_channel_cycle_across_two_workers_is_reported_with_both_coroutines() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let report = report_of(2, || {
        // Each waits for a message the other would send, and keeps the
        // other's sender.
        let (to_left, left_inbox) = green::channel::bounded::<u32>(1);
        let (to_right, right_inbox) = green::channel::bounded::<u32>(1);
        let token = Token(dropped.clone());
        let left = on_worker(0, "left", move || {
            let _token = token;
            let _keep = to_right;
            let _ = left_inbox.recv();
        });
        let token = Token(dropped.clone());
        let right = on_worker(1, "right", move || {
            let _token = token;
            let _keep = to_left;
            let _ = right_inbox.recv();
        });
        let _ = left.join();
        let _ = right.join();
    });
    assert!(report.contains("deadlock"), "{report}");
    assert!(report.contains("on the 2 workers"), "{report}");
    assert!(report.contains("'left'") && report.contains("on worker 0 waits on a channel"), "{report}");
    assert!(report.contains("'right'") && report.contains("on worker 1 waits on a channel"), "{report}");
    assert!(report.contains("'entry'"), "names main: {report}");
    assert!(
        !report.contains("'worker-0'") && !report.contains("'worker-1'"),
        "leaves the services out: {report}"
    );
    assert_eq!(dropped.load(Ordering::Relaxed), 2, "both workers' coroutines were unwound");
}

#[test]
fn a_lock_order_deadlock_across_workers_is_reported() {
    let report = report_of(2, || {
        let first = Arc::new(green::sync::Mutex::new(()));
        let second = Arc::new(green::sync::Mutex::new(()));
        // Each takes one lock, says so, waits to hear the other has its
        // own, then asks for the other's.
        let (left_has, left_holds) = green::channel::oneshot();
        let (right_has, right_holds) = green::channel::oneshot();
        let (a, b) = (first.clone(), second.clone());
        let left = on_worker(0, "left", move || {
            let _mine = a.lock().expect("free");
            let _ = left_has.send(());
            let _ = right_holds.recv();
            let _theirs = b.lock();
        });
        let right = on_worker(1, "right", move || {
            let _mine = second.lock().expect("free");
            let _ = right_has.send(());
            let _ = left_holds.recv();
            let _theirs = first.lock();
        });
        let _ = left.join();
        let _ = right.join();
    });
    assert!(report.contains("deadlock"), "{report}");
    assert!(report.contains("'left' (id"), "{report}");
    assert!(report.contains("on worker 0 waits on a Mutex"), "{report}");
    assert!(report.contains("on worker 1 waits on a Mutex"), "{report}");
}

#[test]
fn main_joining_a_distributed_task_that_sleeps_forever_is_reported() {
    let report = report_of(3, || {
        let stuck = on_worker(2, "sleeper", || {
            let _ = green::sleep(Duration::MAX);
        });
        let _ = stuck.join();
    });
    assert!(report.contains("on the 3 workers"), "{report}");
    assert!(
        report.contains("'sleeper'") && report.contains("on worker 2 waits on a sleep with no deadline"),
        "{report}"
    );
}

#[test]
fn ping_pong_between_workers_is_never_taken_for_a_deadlock() {
    // Every hand-off leaves one worker with nothing to do while a wake-up
    // is on its way to it: the judge must see the post.
    const ROUNDS: u32 = 5_000;
    let total = green::Builder::new().workers(2).run(|| {
        let (ping, pings) = green::channel::bounded::<u32>(1);
        let (pong, pongs) = green::channel::bounded::<u32>(1);
        let echo = on_worker(1, "echo", move || {
            while let Ok(n) = pings.recv() {
                if pong.send(n + 1).is_err() {
                    return;
                }
            }
        });
        let mut total = 0;
        for n in 0..ROUNDS {
            ping.send(n).expect("the echo task runs");
            total += pongs.recv().expect("the echo task answers") - n;
        }
        drop(ping);
        echo.join().expect("the echo task ends");
        total
    });
    assert_eq!(total, ROUNDS);
}

#[test]
fn a_worker_still_computing_keeps_the_others_waiting() {
    // Main and two workers have nothing to do for longer than the stall
    // grace while the last one computes; then it sends.
    let answer = green::Builder::new().workers(4).run(|| {
        let (tx, rx) = green::channel::bounded::<u64>(1);
        let _computer = on_worker(3, "computer", move || {
            let start = Instant::now();
            let mut x: u64 = 1;
            while start.elapsed() < Duration::from_millis(1_500) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            let _ = tx.send(x | 1);
        });
        rx.recv().expect("the computer sends")
    });
    assert_eq!(answer & 1, 1);
}

#[test]
fn a_handle_used_from_a_plain_thread_keeps_the_runtime_waiting() {
    // A thread outside the runtime has spawned on it: the runtime cannot
    // know when it will again, so with nothing else to do it waits, also
    // past the stall grace, rather than reporting a deadlock.
    let value = green::Builder::new().workers(2).run(|| {
        let handle = green::Handle::current();
        let (tx, rx) = green::channel::bounded::<u32>(1);
        let thread = std::thread::spawn(move || {
            handle.spawn(|| ()).join().expect("the first task runs");
            // Blocked, using no CPU, for longer than the stall grace.
            std::thread::sleep(Duration::from_millis(1_500));
            handle.spawn(move || tx.send(5).expect("main waits")).join().expect("the second task runs");
        });
        let value = rx.recv().expect("sent by the task the thread spawned");
        thread.join().expect("the thread ends");
        value
    });
    assert_eq!(value, 5);
}
