//! Backtraces in the task dump: a parked coroutine's backtrace names the
//! function that parked, on the caller's worker, on another worker and
//! from a plain thread; the coroutine goes on afterwards as if nothing had
//! happened (its message, its timeout, its cancellation, its unwind); a
//! coroutine parked deep in its stack is left without one rather than
//! pushed into its guard page; identical stacks share one block of text;
//! and a hundred thousand of them are captured.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use green::channel;
use green::dump::{Backtrace, Dump, Options, State};
use green::sync::Event;
use green::{Protection, TaskId};

/// Parks in a channel receive, in a frame of its own.
#[inline(never)]
fn park_in_a_named_function(rx: &channel::Receiver<u32>) -> u32 {
    std::hint::black_box(rx.recv().expect("a message comes"))
}

/// Yields until `id` is parked in a dump, and returns that dump.
fn dump_when_parked(id: TaskId) -> Dump {
    for _ in 0..1000 {
        green::yield_now();
        let dump = green::dump();
        if dump.coroutine(id).is_some_and(|c| c.state == State::Parked) {
            return dump;
        }
    }
    panic!("{id} did not park:\n{}", green::dump());
}

/// The frames of `id` in `dump`, as text, for failure messages.
fn frames_of(dump: &Dump, id: TaskId) -> String {
    match &dump.coroutine(id).expect("listed").backtrace {
        Backtrace::Captured(frames) => frames.iter().map(|f| format!("{f}\n")).collect(),
        other => format!("{other:?}"),
    }
}

#[test]
fn a_parked_coroutines_backtrace_contains_the_function_that_parked() {
    for protection in [Protection::Auto, Protection::GuardPage] {
        green::Builder::new().stack_protection(protection).run(|| {
            let (tx, rx) = channel::unbounded();
            let parked = green::spawn(move || park_in_a_named_function(&rx));
            let dump = dump_when_parked(parked.id());
            let backtrace = &dump.coroutine(parked.id()).expect("listed").backtrace;
            assert!(backtrace.contains("park_in_a_named_function"), "{}", frames_of(&dump, parked.id()));
            assert!(
                backtrace.contains("Receiver"),
                "the receive is named too: {}",
                frames_of(&dump, parked.id())
            );
            let text = dump.to_string();
            assert!(text.contains("park_in_a_named_function"), "{text}");
            // The coroutine goes on as if it had not been resumed.
            tx.send(7).expect("sent");
            assert_eq!(parked.join().expect("no panic"), 7);
        });
    }
}

#[test]
fn the_frames_start_at_the_parking_call_and_end_at_the_coroutines_stack() {
    green::run(|| {
        let (_tx, rx) = channel::unbounded::<u32>();
        let parked = green::spawn(move || park_in_a_named_function(&rx));
        let dump = dump_when_parked(parked.id());
        let frames = dump.coroutine(parked.id()).and_then(|c| c.backtrace.frames()).expect("captured");
        let names: Vec<&str> = frames.iter().filter_map(|f| f.function.as_deref()).collect();
        assert!(
            !names.iter().any(|n| n.contains("capture_for_dump") || n.starts_with("backtrace::")),
            "the capture step's own frames are left out: {names:#?}"
        );
        assert!(
            !names.iter().any(|n| n.contains("dump::ask") || n.contains("collect")),
            "the walk stops at the bottom of the coroutine's stack, before the dumper's frames: {names:#?}"
        );
        let parked_at = names.iter().position(|n| n.contains("park_in_a_named_function"));
        let recv_at = names.iter().position(|n| n.contains("recv"));
        assert!(recv_at < parked_at, "innermost first: {names:#?}");
        parked.cancel();
    });
}

#[test]
fn the_dumping_coroutines_own_backtrace_names_its_caller() {
    #[inline(never)]
    fn dump_from_here() -> Dump {
        std::hint::black_box(green::dump())
    }
    green::run(|| {
        let dump = dump_from_here();
        let me = dump.coroutine(green::current().id()).expect("listed");
        assert_eq!(me.state, State::Running);
        assert!(me.backtrace.contains("dump_from_here"), "{}", frames_of(&dump, me.id));
    });
}

#[test]
fn backtraces_come_from_every_worker_and_from_a_plain_thread() {
    let (tx, rx) = std::sync::mpsc::channel();
    let (release, released) = (Arc::new(Event::new()), Arc::new(AtomicBool::new(false)));
    let runtime = {
        let release = release.clone();
        let released = released.clone();
        std::thread::spawn(move || {
            green::Builder::new().workers(2).run(move || {
                let (msg_tx, msg_rx) = channel::unbounded::<u32>();
                let far = green::task::Builder::new()
                    .name("far")
                    .spawn_on_worker(1, move || park_in_a_named_function(&msg_rx))
                    .expect("spawned");
                let dump = (0..1000)
                    .map(|_| {
                        green::sleep(Duration::from_millis(1)).expect("not cancelled");
                        green::dump()
                    })
                    .find(|d| d.coroutine(far.id()).is_some_and(|c| c.state == State::Parked))
                    .expect("the far coroutine parks");
                let c = dump.coroutine(far.id()).expect("listed");
                assert_eq!(c.worker, 1);
                assert!(c.backtrace.contains("park_in_a_named_function"), "{}", frames_of(&dump, far.id()));
                tx.send(far.id()).expect("the test waits");
                release.wait().expect("not cancelled");
                released.store(true, Ordering::SeqCst);
                msg_tx.send(3).expect("sent");
                assert_eq!(far.join().expect("no panic"), 3);
            })
        })
    };
    let far = rx.recv().expect("the runtime reports its coroutine");
    let dump = green::dump();
    let c = dump.coroutine(far).expect("a plain thread sees every runtime");
    assert!(c.backtrace.contains("park_in_a_named_function"), "{}", frames_of(&dump, far));
    assert!(!released.load(Ordering::SeqCst));
    release.set();
    runtime.join().expect("the runtime ends");
}

#[test]
fn a_coroutine_not_yet_started_has_no_stack_and_says_so() {
    green::run(|| {
        let waiting = green::spawn(|| 1);
        let dump = green::dump();
        assert_eq!(dump.coroutine(waiting.id()).expect("listed").backtrace, Backtrace::NotStarted);
        assert_eq!(waiting.join().expect("no panic"), 1);
    });
}

#[test]
fn a_dump_without_backtraces_says_so() {
    green::run(|| {
        let (_tx, rx) = channel::unbounded::<u32>();
        let parked = green::spawn(move || park_in_a_named_function(&rx));
        dump_when_parked(parked.id());
        let dump = Options::new().backtraces(false).dump();
        let c = dump.coroutine(parked.id()).expect("listed");
        assert_eq!(c.backtrace, Backtrace::NotRequested);
        assert!(dump.to_json().contains("\"backtrace\":null,\"backtrace_missing\":\"not requested\""));
        parked.cancel();
    });
}

/// Recurses, a kibibyte a frame, until `room` bytes of the stack below
/// `top` are used, then parks.
#[inline(never)]
fn park_deep(top: usize, room: usize, rx: &channel::Receiver<u32>) -> u32 {
    let frame = std::hint::black_box([0u8; 1024]);
    let here = std::ptr::from_ref(&frame).addr();
    if top - here >= room {
        return park_in_a_named_function(rx);
    }
    park_deep(top, room, rx) + u32::from(frame[0])
}

#[test]
fn a_coroutine_parked_deep_in_its_stack_is_not_pushed_into_its_guard() {
    const STACK: usize = 64 * 1024;
    for protection in [Protection::Auto, Protection::GuardPage] {
        green::Builder::new().stack_protection(protection).run(|| {
            let (tx, rx) = channel::unbounded();
            let deep = green::task::Builder::new()
                .stack_size(STACK)
                .spawn(move || {
                    let top = 0u8;
                    // Less than the capture's room is left below.
                    let used = STACK - green::dump::CAPTURE_ROOM / 2;
                    park_deep(std::ptr::from_ref(&top).addr(), used, &rx)
                })
                .expect("spawned");
            let dump = dump_when_parked(deep.id());
            assert_eq!(dump.coroutine(deep.id()).expect("listed").backtrace, Backtrace::NoRoom);
            assert!(dump.to_string().contains("no backtrace: too little stack left"), "{dump}");
            tx.send(1).expect("sent");
            assert_eq!(deep.join().expect("no panic"), 1);
        });
    }
}

#[test]
fn the_coroutine_goes_on_unchanged_through_many_dumps_and_races() {
    green::Builder::new().workers(2).run(|| {
        // A coroutine on each worker times out over and over, while this
        // one dumps both workers again and again: every timeout and every
        // message comes, once.
        let mut handles = Vec::new();
        let (tx, rx) = channel::unbounded::<u32>();
        for worker in 0..2 {
            let rx = rx.clone();
            handles.push(
                green::task::Builder::new()
                    .spawn_on_worker(worker, move || {
                        let (mut timeouts, mut got) = (0u32, 0u32);
                        loop {
                            match rx.recv_timeout(Duration::from_micros(200)) {
                                Ok(0) => return (timeouts, got),
                                Ok(n) => got += n,
                                Err(err) if err.is_timeout() => timeouts += 1,
                                Err(err) => panic!("{err}"),
                            }
                        }
                    })
                    .expect("spawned"),
            );
        }
        let mut captured = 0;
        for round in 0..200u32 {
            // A turn for the coroutine of this worker.
            green::yield_now();
            let dump = green::dump();
            captured += dump.coroutines().iter().filter(|c| c.backtrace.contains("recv_timeout")).count();
            if round % 2 == 0 {
                tx.send(1).expect("sent");
            }
        }
        tx.send(0).expect("sent");
        tx.send(0).expect("sent");
        let mut total = 0;
        for handle in handles {
            let (_timeouts, got) = handle.join().expect("no panic");
            total += got;
        }
        assert_eq!(total, 100, "every message received once");
        assert!(captured > 0, "some dumps found the coroutines parked");
    });
}

#[test]
fn a_coroutine_suspended_mid_unwind_is_captured_and_finishes_its_unwind() {
    /// Waits in its destructor, while the coroutine unwinds.
    struct WaitsInDrop(Option<channel::Receiver<u32>>);
    impl Drop for WaitsInDrop {
        fn drop(&mut self) {
            if let Some(rx) = self.0.take() {
                park_in_a_named_function(&rx);
            }
        }
    }
    green::run(|| {
        let (tx, rx) = channel::unbounded();
        let unwinding = green::spawn(move || {
            let _guard = WaitsInDrop(Some(rx));
            panic!("boom");
        });
        let dump = dump_when_parked(unwinding.id());
        let c = dump.coroutine(unwinding.id()).expect("listed");
        assert!(c.backtrace.contains("park_in_a_named_function"), "{}", frames_of(&dump, c.id));
        assert!(c.backtrace.contains("WaitsInDrop"), "{}", frames_of(&dump, c.id));
        tx.send(1).expect("sent");
        let err = unwinding.join().expect_err("the panic goes on");
        assert!(err.is_panic());
    });
}

#[test]
fn a_yielded_coroutines_backtrace_names_its_loop() {
    #[inline(never)]
    fn yield_in_a_loop(stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            green::yield_now();
        }
    }
    green::run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let yielder = {
            let stop = stop.clone();
            green::spawn(move || yield_in_a_loop(&stop))
        };
        green::yield_now();
        let dump = green::dump();
        let c = dump.coroutine(yielder.id()).expect("listed");
        assert_eq!(c.state, State::Runnable);
        assert!(c.backtrace.contains("yield_in_a_loop"), "{}", frames_of(&dump, c.id));
        stop.store(true, Ordering::SeqCst);
        yielder.join().expect("no panic");
    });
}

#[test]
fn identical_stacks_share_one_block_and_many_are_captured() {
    let count: usize =
        std::env::var("GREEN_TEST_DUMP_COUNT").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    green::Builder::new().stack_size(32 * 1024).run(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let handles: Vec<_> = (0..count)
            .map(|_| {
                let rx = rx.clone();
                green::spawn(move || park_in_a_named_function(&rx))
            })
            .collect();
        for _ in 0..3 {
            green::yield_now();
        }
        let start = std::time::Instant::now();
        let dump = green::dump();
        // No assertion on time: speed lives in the benches.
        eprintln!("dump of {count} parked coroutines with backtraces: {:?}", start.elapsed());
        let parked: Vec<_> =
            dump.coroutines().iter().filter(|c| c.backtrace.contains("park_in_a_named_function")).collect();
        assert_eq!(parked.len(), count);
        let first = parked[0].backtrace.frames().expect("captured").as_ptr();
        assert!(
            parked.iter().all(|c| c.backtrace.frames().is_some_and(|f| f.as_ptr() == first)),
            "one list of frames, shared"
        );
        let text = dump.to_string();
        assert!(text.contains(&format!("{count} coroutines parked in channel recv")), "{}", &text[..2000]);
        assert_eq!(text.matches("park_in_a_named_function").count(), 1, "the block's frames, once");
        for _ in 0..count {
            tx.send(1).expect("sent");
        }
        let sum: u32 = handles.into_iter().map(|h| h.join().expect("no panic")).sum();
        assert_eq!(sum as usize, count);
    });
}

#[test]
fn a_plain_thread_dumps_with_backtraces_while_runtimes_start_and_end() {
    let stop = Arc::new(AtomicBool::new(false));
    let dumper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let dump = Options::new().answer_wait(Duration::from_millis(50)).dump();
                seen += dump
                    .coroutines()
                    .iter()
                    .filter(|c| c.backtrace.contains("park_in_a_named_function"))
                    .count();
                // Every entry is whole: a backtrace, or why there is none.
                for c in dump.coroutines() {
                    assert!(c.backtrace.frames().is_some() || c.backtrace.missing().is_some());
                }
            }
            seen
        })
    };
    let runtimes: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for round in 0..25 {
                    green::Builder::new().workers(1 + round % 2).run(|| {
                        let (tx, rx) = channel::unbounded();
                        let parked: Vec<_> = (0..20)
                            .map(|_| {
                                let rx = rx.clone();
                                green::spawn(move || park_in_a_named_function(&rx))
                            })
                            .collect();
                        green::sleep(Duration::from_millis(2)).expect("not cancelled");
                        // Half get their message; the rest are cancelled, or
                        // torn down by the runtime's end, with a dump racing.
                        for _ in 0..10 {
                            tx.send(1).expect("sent");
                        }
                        for handle in parked.iter().skip(15) {
                            handle.cancel();
                        }
                        drop(parked);
                    });
                }
            })
        })
        .collect();
    for runtime in runtimes {
        runtime.join().expect("every runtime ends");
    }
    stop.store(true, Ordering::SeqCst);
    let seen = dumper.join().expect("no dump panicked");
    eprintln!("parked coroutines seen with their backtraces: {seen}");
}

#[test]
fn cancellations_from_another_thread_race_the_capture_and_each_lands_once() {
    green::run(|| {
        let (_tx, rx) = channel::unbounded::<u32>();
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let rx = rx.clone();
                Arc::new(green::task::spawn_distributed(move || match rx.recv() {
                    Ok(_) => 0,
                    Err(err) if err.is_cancelled() => 1,
                    Err(err) => panic!("{err}"),
                }))
            })
            .collect();
        green::yield_now();
        let thread = {
            let handles = handles.clone();
            std::thread::spawn(move || {
                for handle in handles {
                    handle.cancel();
                }
            })
        };
        let mut dumps = 0;
        while !thread.is_finished() || dumps < 3 {
            let dump = green::dump();
            assert!(dump.coroutines().len() <= 201, "{dump}");
            dumps += 1;
        }
        thread.join().expect("the cancelling thread ends");
        let mut cancelled = 0;
        for handle in handles {
            let handle = Arc::into_inner(handle).expect("the only handle left");
            cancelled += handle.join().expect("no panic");
        }
        assert_eq!(cancelled, 200, "every receive ended by its cancellation, once");
    });
}
