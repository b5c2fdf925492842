//! A cancelled coroutine does not freeze its thread: every wait of a
//! cancelled coroutine fails at once (cancellation is level-triggered), but
//! only after the other coroutines had a turn, so a loop that ignores the
//! error still lets them run.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use green::sync::Mutex;

/// Iterations after which the looping coroutine gives up on its own: far
/// more than it needs when the others get their turns.
const LIMIT: u32 = 1_000_000;

/// Spawns a coroutine that loops on `wait` ignoring its error until `stop`
/// is set (or `LIMIT` runs out), cancels it once it is parked, and returns
/// how many iterations it had made when main ran again.
fn iterations_before_main_runs_again(wait: impl Fn() + 'static) -> u32 {
    green::run(|| {
        let (count, stop) = (Rc::new(Cell::new(0u32)), Rc::new(Cell::new(false)));
        let (c, s) = (count.clone(), stop.clone());
        let looping = green::spawn(move || {
            while !s.get() && c.get() < LIMIT {
                wait();
                c.set(c.get() + 1);
            }
        });
        green::yield_now(); // it starts and parks
        looping.cancel();
        green::yield_now(); // its turn: one failing wait, then ours
        let seen = count.get();
        stop.set(true);
        looping.join().expect("it returns");
        seen
    })
}

#[test]
fn a_loop_ignoring_the_error_of_sleep_lets_main_run() {
    let seen = iterations_before_main_runs_again(|| {
        let _ = green::sleep(Duration::from_secs(3600));
    });
    assert!(seen < LIMIT, "main ran again after {seen} iterations");
}

#[test]
fn a_loop_ignoring_the_error_of_a_lock_lets_main_run() {
    let lock = Rc::new(Mutex::new(()));
    let held = lock.clone();
    let seen = green::run(move || {
        // Held by a parked coroutine, so every lock() below would wait.
        let holder = green::spawn(move || {
            let _guard = held.lock().expect("free");
            let _ = green::sleep(Duration::from_secs(3600));
        });
        green::yield_now();
        let (count, stop) = (Rc::new(Cell::new(0u32)), Rc::new(Cell::new(false)));
        let (c, s, l) = (count.clone(), stop.clone(), lock.clone());
        let looping = green::spawn(move || {
            while !s.get() && c.get() < LIMIT {
                let _ = l.lock();
                c.set(c.get() + 1);
            }
        });
        green::yield_now();
        looping.cancel();
        green::yield_now();
        let seen = count.get();
        stop.set(true);
        looping.join().expect("it returns");
        holder.cancel();
        let _ = holder.join();
        seen
    });
    assert!(seen < LIMIT, "main ran again after {seen} iterations");
}

#[test]
fn a_loop_ignoring_the_error_of_a_channel_receive_lets_main_run() {
    let (_tx, rx) = green::channel::bounded::<u8>(1);
    let seen = iterations_before_main_runs_again(move || {
        let _ = rx.recv();
    });
    assert!(seen < LIMIT, "main ran again after {seen} iterations");
}

#[test]
fn a_loop_ignoring_the_error_of_a_timeout_scope_lets_others_run() {
    // The same through a timeout scope: once its deadline has passed, every
    // wait inside it fails.
    let ticks = green::run(|| {
        let ticks = Rc::new(Cell::new(0u32));
        let t = ticks.clone();
        let ticker = green::spawn(move || {
            // Wakes after the scope's deadline has passed, while main is
            // looping on failing waits.
            green::sleep(Duration::from_millis(5)).expect("not cancelled");
            for _ in 0..10 {
                t.set(t.get() + 1);
                green::yield_now();
            }
        });
        let spun = Cell::new(0u32);
        let _ = green::timeout(Duration::from_millis(1), || {
            while ticks.get() < 10 && spun.get() < LIMIT {
                let _ = green::sleep(Duration::from_secs(3600));
                spun.set(spun.get() + 1);
            }
        });
        ticker.join().expect("it ticks");
        assert!(spun.get() < LIMIT, "the ticker ran while the scope's waits failed");
        ticks.get()
    });
    assert_eq!(ticks, 10);
}
