//! A coroutine in a CPU loop that calls `yield_now` between slices of work
//! (what the caveats advise) lets timers, I/O and wake-ups from other
//! threads through at its next yield, even when nothing else is runnable:
//! the scheduler looks for them whenever a task yields alone, not only
//! every 61 switches.
//!
//! Each test counts the slices the loop ran after the event had happened
//! (a deadline passed, another thread wrote or sent) until it got
//! through, never how long anything took: every slice computes for at
//! least 2 ms, so the event must get through at the yield that ends the
//! first slice started after it (the counts would be around 61 if the
//! scheduler only looked every 61 switches). A slow thread start under
//! load only delays when counting begins.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The most slices the loop may run before the event gets through.
const PROMPT: u32 = 3;

/// Runs slices of at least 2 ms of busy work, yielding after each, until
/// `done` is set; returns how many slices ran after `happened` was true at
/// a slice's start (the event had happened: a thread wrote, a deadline
/// passed). Gives up (and fails the test) after 10,000 slices.
fn spin_until(done: &Cell<bool>, happened: impl Fn() -> bool) -> u32 {
    let mut slices = 0;
    let mut total = 0;
    while !done.get() {
        let counts = happened();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        slices += u32::from(counts);
        total += 1;
        assert!(total < 10_000, "the event never got through the CPU loop");
        green::yield_now();
    }
    slices
}

#[test]
fn a_timer_fires_at_the_next_yield_of_a_lone_cpu_loop() {
    let slices = green::run(|| {
        let done = Rc::new(Cell::new(false));
        let flag = done.clone();
        let sleeper = green::spawn(move || {
            green::sleep(Duration::from_millis(1)).expect("not cancelled");
            flag.set(true);
        });
        // Let the sleeper arm its timer; from here the loop is alone.
        green::yield_now();
        let due = Instant::now() + Duration::from_millis(1);
        let slices = spin_until(&done, || Instant::now() >= due);
        sleeper.join().expect("the sleeper finished");
        slices
    });
    assert!(slices <= PROMPT, "the timer waited {slices} slices of the CPU loop");
}

#[test]
fn a_readable_socket_is_seen_at_the_next_yield_of_a_lone_cpu_loop() {
    let slices = green::run(|| {
        let (mut reader, writer) = green::net::UnixStream::pair().expect("a socket pair");
        let done = Rc::new(Cell::new(false));
        let flag = done.clone();
        let reading = green::spawn(move || {
            let mut byte = [0; 1];
            reader.read_exact(&mut byte).expect("a byte arrives");
            flag.set(true);
        });
        // The reader parks in epoll; a plain thread writes while the loop
        // computes.
        green::yield_now();
        // Back to std (and blocking mode) for the plain thread.
        let mut writer = std::os::unix::net::UnixStream::from(writer);
        let written = Arc::new(AtomicBool::new(false));
        let wrote = written.clone();
        let thread = std::thread::spawn(move || {
            let result = writer.write_all(b"x");
            wrote.store(true, Ordering::SeqCst);
            result
        });
        let slices = spin_until(&done, || written.load(Ordering::SeqCst));
        reading.join().expect("the reader finished");
        thread.join().expect("the writer thread").expect("written");
        slices
    });
    assert!(slices <= PROMPT, "the read waited {slices} slices of the CPU loop");
}

#[test]
fn a_wake_up_from_another_thread_arrives_at_the_next_yield_of_a_lone_cpu_loop() {
    let slices = green::run(|| {
        let (tx, rx) = green::channel::bounded::<u8>(1);
        let done = Rc::new(Cell::new(false));
        let flag = done.clone();
        let receiving = green::spawn(move || {
            rx.recv().expect("a message arrives");
            flag.set(true);
        });
        green::yield_now();
        let sent = Arc::new(AtomicBool::new(false));
        let was_sent = sent.clone();
        let thread = std::thread::spawn(move || {
            let result = tx.send(1);
            was_sent.store(true, Ordering::SeqCst);
            result
        });
        let slices = spin_until(&done, || sent.load(Ordering::SeqCst));
        receiving.join().expect("the receiver finished");
        thread.join().expect("the sender thread").expect("sent");
        slices
    });
    assert!(slices <= PROMPT, "the wake-up waited {slices} slices of the CPU loop");
}

#[test]
fn a_zero_sleep_makes_a_yielding_cpu_loop_stop_when_its_timeout_passes() {
    let (outcome, deadline, stopped) = green::run(|| {
        let deadline = Instant::now() + Duration::from_millis(5);
        let mut slices = 0u32;
        let outcome = green::deadline(deadline, || -> Result<(), green::Cancelled> {
            loop {
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(1) {
                    std::hint::spin_loop();
                }
                slices += 1;
                assert!(slices < 10_000, "the loop was never cancelled");
                green::yield_now();
                // Returns at once, unless the coroutine is cancelled.
                green::sleep(Duration::ZERO)?;
            }
        });
        (outcome, deadline, Instant::now())
    });
    assert!(outcome.is_err(), "the scope's deadline passed and the scope says so");
    assert!(stopped >= deadline, "the loop was not stopped before its deadline");
}
