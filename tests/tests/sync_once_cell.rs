//! `green::sync::OnceCell`: exactly one initialiser runs, and everyone
//! (coroutines of any runtime, plain threads) gets its value; the others
//! park meanwhile instead of spinning; a panicking or failing initialiser
//! hands the turn to the oldest waiting one; interrupted waits leave the
//! cell as if the waiter had never come.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use green::sync::{Event, OnceCell, WaitError};
use green_tests::{panic_message, thread_cpu_time};

/// Short enough to keep the suite fast; no test depends on how long a
/// timeout really took.
const SHORT: Duration = Duration::from_millis(20);

/// Runs `f` in a destructor: how a test gets code to run while a runtime
/// shuts down.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn a_cell_is_sync_when_its_value_is_send_and_sync() {
    assert_send_sync::<OnceCell<String>>();
    assert_send::<OnceCell<Cell<u8>>>(); // Send, not Sync (a compile_fail doctest shows that)
}

#[test]
fn the_plain_operations_behave_like_once_lock() {
    let mut cell = OnceCell::new();
    assert_eq!(cell.get(), None);
    assert_eq!(format!("{cell:?}"), "OnceCell(<uninit>)");
    assert_eq!(cell.set(1), Ok(()));
    assert_eq!(cell.set(2), Err(2));
    assert_eq!(cell.get(), Some(&1));
    assert_eq!(cell.get_or_init(|| unreachable!("the cell is full")), Ok(&1));
    assert_eq!(format!("{cell:?}"), "OnceCell(1)");
    *cell.get_mut().unwrap() += 10;
    assert_eq!(cell.clone().into_inner(), Some(11));
    assert_eq!(cell.take(), Some(11));
    assert_eq!(cell.get(), None);
    assert_eq!(cell.get_or_init(|| 3), Ok(&3));
    assert_eq!(cell.into_inner(), Some(3));
    assert_eq!(OnceCell::from("full").get(), Some(&"full"));
    assert_eq!(OnceCell::<u8>::default().into_inner(), None);
}

static GLOBAL: OnceCell<String> = OnceCell::new();

#[test]
fn a_cell_can_be_a_static() {
    let value = green::run(|| GLOBAL.get_or_init(|| String::from("global")).cloned());
    assert_eq!(value.as_deref(), Ok("global"));
    assert_eq!(GLOBAL.wait().map(String::as_str), Ok("global"));
}

#[test]
fn concurrent_initialisers_run_one_closure_and_all_get_its_value() {
    const HERE: usize = 20;
    const THERE: usize = 10;
    const THREADS: usize = 4;
    let cell = Arc::new(OnceCell::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(Event::new()); // the first initialiser is inside its closure
    let release = Arc::new(Event::new()); // ... and may finish
    let entered = Arc::new(AtomicUsize::new(0));
    let contend = {
        let (cell, calls, running, entered) = (cell.clone(), calls.clone(), running.clone(), entered.clone());
        move |who: String| {
            running.wait().unwrap();
            entered.fetch_add(1, Ordering::SeqCst);
            let value = cell.get_or_init(|| {
                calls.fetch_add(1, Ordering::SeqCst);
                who
            });
            value.cloned()
        }
    };
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let contend = contend.clone();
            thread::spawn(move || contend(format!("thread {i}")))
        })
        .collect();
    let other_runtime = {
        let contend = contend.clone();
        thread::spawn(move || {
            green::run(move || {
                let all: Vec<_> = (0..THERE)
                    .map(|i| {
                        let contend = contend.clone();
                        green::spawn(move || contend(format!("there {i}")))
                    })
                    .collect();
                all.into_iter().map(|c| c.join().unwrap()).collect::<Vec<_>>()
            })
        })
    };
    let here = green::run(|| {
        let first = {
            let (cell, calls, running, release) =
                (cell.clone(), calls.clone(), running.clone(), release.clone());
            green::spawn(move || {
                cell.get_or_init(|| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    running.set();
                    release.wait().unwrap();
                    String::from("first")
                })
                .cloned()
            })
        };
        let others: Vec<_> = (0..HERE)
            .map(|i| {
                let contend = contend.clone();
                green::spawn(move || contend(format!("here {i}")))
            })
            .collect();
        while entered.load(Ordering::SeqCst) < HERE + THERE + THREADS {
            green::yield_now();
        }
        assert_eq!(cell.get(), None, "the first initialiser has not finished");
        release.set();
        let mut values = vec![first.join().unwrap()];
        values.extend(others.into_iter().map(|c| c.join().unwrap()));
        values
    });
    let mut values = here;
    values.extend(threads.into_iter().map(|t| t.join().unwrap()));
    values.extend(other_runtime.join().unwrap());
    assert_eq!(values.len(), 1 + HERE + THERE + THREADS);
    assert!(values.iter().all(|v| v.as_deref() == Ok("first")), "{values:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "exactly one closure ran");
}

/// Queues `names` as initialisers of `cell` behind a first initialiser that
/// panics once `go` is set; each queued one runs `closure(name)` if it gets
/// the turn. Returns what each queued one got, in queue order, and the
/// closures that ran.
fn behind_a_panicking_initialiser(
    names: &[&'static str],
    closure: impl Fn(&'static str) -> String + Clone + 'static,
) -> (Vec<Result<String, WaitError>>, Vec<&'static str>) {
    green::run(|| {
        let cell = Rc::new(OnceCell::new());
        let ran = Rc::new(std::cell::RefCell::new(Vec::new()));
        let go = Rc::new(Event::new());
        let first = {
            let (cell, ran, go) = (cell.clone(), ran.clone(), go.clone());
            green::spawn(move || {
                cell.get_or_init(|| -> String {
                    ran.borrow_mut().push("first");
                    go.wait().unwrap();
                    panic!("the first initialiser fails");
                })
                .cloned()
            })
        };
        green::yield_now();
        let queued: Vec<_> = names
            .iter()
            .map(|&name| {
                let (cell, ran, closure) = (cell.clone(), ran.clone(), closure.clone());
                green::spawn(move || {
                    cell.get_or_init(|| {
                        ran.borrow_mut().push(name);
                        closure(name)
                    })
                    .cloned()
                })
            })
            .collect();
        // Every queued coroutine runs and parks behind the first, in order.
        green::yield_now();
        go.set();
        let panicked = first.join().unwrap_err();
        assert_eq!(panicked.panic_message(), Some("the first initialiser fails"));
        let results =
            queued.into_iter().map(|q| q.join().unwrap_or_else(|e| Ok(format!("panic: {e}")))).collect();
        let ran = ran.borrow().clone();
        (results, ran)
    })
}

#[test]
fn a_panicking_initialiser_hands_the_turn_to_the_oldest_waiter() {
    let (results, ran) = behind_a_panicking_initialiser(&["b", "c", "d"], |name| format!("made by {name}"));
    assert_eq!(ran, ["first", "b"], "after the panic, the oldest waiter ran its closure, and only it");
    assert_eq!(results, vec![Ok(String::from("made by b")); 3]);
}

#[test]
fn the_turn_passes_down_the_queue_while_initialisers_keep_failing() {
    let (results, ran) = behind_a_panicking_initialiser(&["b", "c", "d"], |name| {
        if name == "d" { format!("made by {name}") } else { panic!("{name} fails too") }
    });
    assert_eq!(ran, ["first", "b", "c", "d"]);
    assert!(
        results[0].as_ref().is_ok_and(|r| r.starts_with("panic:") && r.contains("b fails too")),
        "{results:?}"
    );
    assert!(
        results[1].as_ref().is_ok_and(|r| r.starts_with("panic:") && r.contains("c fails too")),
        "{results:?}"
    );
    assert_eq!(results[2], Ok(String::from("made by d")));
}

#[test]
fn a_failing_try_init_leaves_the_cell_empty_and_returns_its_error() {
    let cell: OnceCell<u16> = OnceCell::new();
    let parse = |text: &str| text.parse::<u16>().map_err(std::io::Error::other);
    let err = cell.get_or_try_init(|| parse("seventy")).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Other);
    assert_eq!(cell.get(), None);
    assert_eq!(cell.get_or_try_init(|| parse("7000")).ok(), Some(&7000));
    assert_eq!(cell.get_or_try_init(|| parse("1")).ok(), Some(&7000), "a full cell runs no closure");
}

#[test]
fn waiters_park_instead_of_spinning() {
    // The initialiser takes NAP (a slow computation, not synchronisation)
    // while a plain thread and a runtime full of coroutines wait for it.
    // Bounds CPU use like the `idle_cpu` test: spinning burns ~NAP of CPU
    // on each waiting thread, parking well under a millisecond.
    const NAP: Duration = Duration::from_millis(300);
    const BUDGET: Duration = Duration::from_millis(50);
    let cell = Arc::new(OnceCell::new());
    let running = Arc::new(Event::new());
    let initialiser = {
        let (cell, running) = (cell.clone(), running.clone());
        thread::spawn(move || {
            green::run(move || {
                *cell
                    .get_or_init(|| {
                        running.set();
                        green::sleep(NAP).unwrap();
                        42
                    })
                    .unwrap()
            })
        })
    };
    let waiting_thread = {
        let (cell, running) = (cell.clone(), running.clone());
        thread::spawn(move || {
            running.wait().unwrap();
            let before = thread_cpu_time().expect("getrusage");
            let value = *cell.get_or_init(|| 0).unwrap();
            (value, thread_cpu_time().expect("getrusage") - before)
        })
    };
    let (values, used) = green::run(|| {
        running.wait().unwrap();
        let before = thread_cpu_time().expect("getrusage");
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let cell = cell.clone();
                green::spawn(move || *cell.get_or_init(|| 0).unwrap())
            })
            .collect();
        let values: Vec<i32> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        (values, thread_cpu_time().expect("getrusage") - before)
    });
    assert_eq!(initialiser.join().unwrap(), 42);
    assert_eq!(values, [42; 10]);
    assert!(used < BUDGET, "the runtime used {used:?} of CPU while its coroutines waited for {NAP:?}");
    let (value, used) = waiting_thread.join().unwrap();
    assert_eq!(value, 42);
    assert!(used < BUDGET, "the thread used {used:?} of CPU while it waited for {NAP:?}");
}

#[test]
fn initialising_the_same_cell_from_its_own_initialiser_panics_with_a_message() {
    let cell: OnceCell<u8> = OnceCell::new();
    let payload =
        panic::catch_unwind(AssertUnwindSafe(|| cell.get_or_init(|| *cell.get_or_init(|| 1).unwrap())))
            .expect_err("re-entrant initialisation must panic, not hang");
    let message = panic_message(&*payload).unwrap_or_default();
    assert!(message.contains("initialise its own cell"), "{message}");
    // The outer turn was released by the unwinding panic.
    assert_eq!(cell.get_or_init(|| 2), Ok(&2));
}

#[test]
fn set_fails_while_an_initialiser_runs_and_wait_gets_the_value() {
    green::run(|| {
        let cell = Rc::new(OnceCell::new());
        let go = Rc::new(Event::new());
        let initialiser = {
            let (cell, go) = (cell.clone(), go.clone());
            green::spawn(move || {
                cell.get_or_init(|| {
                    go.wait().unwrap();
                    "initialised"
                })
                .copied()
            })
        };
        let watcher = {
            let cell = cell.clone();
            green::spawn(move || cell.wait().copied())
        };
        green::yield_now();
        assert_eq!(cell.set("set"), Err("set"), "an initialiser is running");
        assert_eq!(cell.wait_timeout(SHORT), Err(WaitError::TimedOut));
        go.set();
        assert_eq!(initialiser.join().unwrap(), Ok("initialised"));
        assert_eq!(watcher.join().unwrap(), Ok("initialised"));
        assert_eq!(cell.set("set"), Err("set"), "the cell is full");
    });
}

#[test]
fn set_from_a_coroutine_wakes_a_waiting_thread() {
    let cell = Arc::new(OnceCell::new());
    let waiter = {
        let cell = cell.clone();
        thread::spawn(move || cell.wait().copied())
    };
    let timed = {
        let cell = cell.clone();
        thread::spawn(move || cell.wait_timeout(Duration::from_secs(3600)).copied())
    };
    green::run(|| assert_eq!(cell.set(5), Ok(())));
    assert_eq!(waiter.join().unwrap(), Ok(5));
    assert_eq!(timed.join().unwrap(), Ok(5));
}

#[test]
fn a_wait_in_a_destructor_during_shutdown_is_cancelled_and_runs_no_closure() {
    let cell = Arc::new(OnceCell::new());
    let running = Arc::new(Event::new());
    let release = Arc::new(Event::new());
    // A plain thread holds the turn across the runtime's shutdown.
    let initialiser = {
        let (cell, running, release) = (cell.clone(), running.clone(), release.clone());
        thread::spawn(move || {
            cell.get_or_init(|| {
                running.set();
                release.wait().unwrap();
                "from the thread"
            })
            .copied()
        })
    };
    running.wait().unwrap();
    let seen = Arc::new(Mutex::new(None));
    let watched = Arc::new(Mutex::new(None));
    green::run(|| {
        let (cell, seen, watched) = (cell.clone(), seen.clone(), watched.clone());
        green::spawn(move || {
            let _on_drop = OnDrop(move || {
                *seen.lock().unwrap() = Some(cell.get_or_init(|| "from the destructor").copied());
                *watched.lock().unwrap() = Some(cell.wait().copied());
            });
            let _ = green::sleep(Duration::MAX);
        });
        green::yield_now();
    });
    assert_eq!(*seen.lock().unwrap(), Some(Err(WaitError::Cancelled)));
    assert_eq!(*watched.lock().unwrap(), Some(Err(WaitError::Cancelled)));
    release.set();
    assert_eq!(initialiser.join().unwrap(), Ok("from the thread"));
    assert_eq!(cell.get(), Some(&"from the thread"));
}

#[test]
fn initialisers_unwound_at_shutdown_pass_the_turn_on_and_leave_the_cell_empty() {
    let cell = Arc::new(OnceCell::new());
    let ran = Arc::new(AtomicUsize::new(0));
    green::run(|| {
        let never = Arc::new(Event::new());
        for _ in 0..4 {
            let (cell, ran, never) = (cell.clone(), ran.clone(), never.clone());
            green::spawn(move || {
                cell.get_or_init(|| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    never.wait().unwrap();
                    "never"
                })
                .copied()
            });
        }
        green::yield_now();
        // Main returns: the initialiser and the three queued behind it are
        // unwound, in whatever order the runtime tears them down.
    });
    // The unwinding initialiser handed its turn to a queued one, which,
    // unwound too, passed it on; or the queued ones left first. Either
    // way, whoever gets a turn at shutdown does not keep it.
    assert!(ran.load(Ordering::SeqCst) >= 1);
    assert_eq!(cell.get(), None);
    // Nobody holds the turn any more (`set` fails while someone does).
    assert_eq!(cell.set("after"), Ok(()));
    assert_eq!(cell.get_or_init(|| "not run"), Ok(&"after"));
}

#[test]
fn a_cancelled_waiter_runs_no_closure_and_the_turn_skips_it() {
    green::run(|| {
        let cell = Rc::new(OnceCell::new());
        let ran = Rc::new(std::cell::RefCell::new(Vec::new()));
        let go = Rc::new(Event::new());
        let spawn_initialiser = |name: &'static str| {
            let (cell, ran, go) = (cell.clone(), ran.clone(), go.clone());
            green::spawn(move || {
                cell.get_or_init(|| {
                    ran.borrow_mut().push(name);
                    if name == "first" {
                        go.wait().unwrap();
                        panic!("the first initialiser fails");
                    }
                    name
                })
                .copied()
            })
        };
        let first = spawn_initialiser("first");
        green::yield_now();
        let cancelled = spawn_initialiser("cancelled");
        let next = spawn_initialiser("next");
        green::yield_now();
        cancelled.cancel();
        assert_eq!(cancelled.join().unwrap(), Err(WaitError::Cancelled));
        go.set();
        assert!(first.join().unwrap_err().is_panic());
        assert_eq!(next.join().unwrap(), Ok("next"));
        assert_eq!(*ran.borrow(), ["first", "next"], "the cancelled waiter's closure never ran");
    });
}

#[test]
fn a_timeout_scope_bounds_the_wait_for_another_initialiser() {
    green::run(|| {
        let cell = Rc::new(OnceCell::new());
        let go = Rc::new(Event::new());
        let slow = {
            let (cell, go) = (cell.clone(), go.clone());
            green::spawn(move || {
                cell.get_or_init(|| {
                    go.wait().unwrap();
                    "slow"
                })
                .copied()
            })
        };
        green::yield_now();
        let outcome = green::timeout(SHORT, || cell.get_or_init(|| "impatient").copied());
        assert!(outcome.is_err(), "{outcome:?}");
        go.set();
        assert_eq!(slow.join().unwrap(), Ok("slow"));
        assert_eq!(cell.get(), Some(&"slow"));
    });
}
