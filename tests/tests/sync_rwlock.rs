//! `green::sync::RwLock`: shared readers, exclusive writers, strict arrival
//! order (a waiting writer holds back later readers; the readers behind it
//! go in together), waits that time out or are cancelled without a trace,
//! poisoning, and use across runtimes and threads.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, TryLockError};
use std::thread;
use std::time::Duration;

use green::sync::{LockError, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[test]
fn readers_share_the_lock() {
    green::run(|| {
        let lock = Rc::new(RwLock::new(5));
        let inside = Rc::new(Cell::new(0));
        let most = Rc::new(Cell::new(0));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (lock, inside, most) = (lock.clone(), inside.clone(), most.clone());
                green::spawn(move || {
                    let value = lock.read().unwrap();
                    inside.set(inside.get() + 1);
                    most.set(most.get().max(inside.get()));
                    green::yield_now(); // the others come in meanwhile
                    inside.set(inside.get() - 1);
                    *value
                })
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.join().unwrap(), 5);
        }
        assert_eq!(most.get(), 4, "all four readers held the lock at once");
    });
}

/// Writers update the two halves with a switch in between; readers must
/// never see them differ.
fn write_and_check(lock: &RwLock<(u64, u64)>, rounds: usize) {
    for round in 0..rounds {
        if round % 4 == 0 {
            let mut pair = lock.write().unwrap();
            pair.0 += 1;
            green::yield_now();
            pair.1 += 1;
        } else {
            let pair = lock.read().unwrap();
            let (a, b) = *pair;
            green::yield_now();
            assert_eq!((a, b), *pair, "a writer changed the data under a reader");
            assert_eq!(a, b, "a reader saw a half-done write");
        }
    }
}

#[test]
fn writers_exclude_everyone_across_runtimes_and_threads() {
    const COROUTINES: usize = 10;
    const ROUNDS: usize = 200;
    let lock = Arc::new(RwLock::new((0u64, 0u64)));
    let runtimes: Vec<_> = (0..2)
        .map(|_| {
            let lock = lock.clone();
            thread::spawn(move || {
                green::run(|| {
                    let workers: Vec<_> = (0..COROUTINES)
                        .map(|_| {
                            let lock = lock.clone();
                            green::spawn(move || write_and_check(&lock, ROUNDS))
                        })
                        .collect();
                    for worker in workers {
                        worker.join().unwrap();
                    }
                })
            })
        })
        .collect();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let lock = lock.clone();
            thread::spawn(move || write_and_check(&lock, ROUNDS))
        })
        .collect();
    for handle in runtimes.into_iter().chain(threads) {
        handle.join().unwrap();
    }
    let writes = ((2 * COROUTINES + 2) * ROUNDS / 4) as u64;
    assert_eq!(*lock.read().unwrap(), (writes, writes));
}

#[test]
fn a_waiting_writer_holds_back_later_readers() {
    green::run(|| {
        let lock = Rc::new(RwLock::new(()));
        let log = Rc::new(RefCell::new(Vec::new()));
        let first_reader = lock.read().unwrap();
        let writer = {
            let (lock, log) = (lock.clone(), log.clone());
            green::spawn(move || {
                let _write = lock.write().unwrap();
                log.borrow_mut().push("writer");
            })
        };
        green::yield_now(); // the writer queues behind the reader
        assert!(matches!(lock.try_read(), Err(TryLockError::WouldBlock)), "no reader overtakes the writer");
        let reader = {
            let (lock, log) = (lock.clone(), log.clone());
            green::spawn(move || {
                let _read = lock.read().unwrap();
                log.borrow_mut().push("later reader");
            })
        };
        green::yield_now(); // the later reader queues behind the writer
        assert!(log.borrow().is_empty());
        drop(first_reader);
        writer.join().unwrap();
        reader.join().unwrap();
        assert_eq!(*log.borrow(), ["writer", "later reader"]);
    });
}

#[test]
fn the_readers_queued_behind_a_writer_go_in_together_before_the_next_writer() {
    green::run(|| {
        let lock = Rc::new(RwLock::new(0));
        let inside = Rc::new(Cell::new(0));
        let most = Rc::new(Cell::new(0));
        let log = Rc::new(RefCell::new(Vec::new()));
        let write = lock.write().unwrap();
        let readers: Vec<_> = (0..3)
            .map(|i| {
                let (lock, inside, most, log) = (lock.clone(), inside.clone(), most.clone(), log.clone());
                green::spawn(move || {
                    let value = lock.read().unwrap();
                    log.borrow_mut().push(format!("reader {i} sees {}", *value));
                    inside.set(inside.get() + 1);
                    most.set(most.get().max(inside.get()));
                    green::yield_now();
                    inside.set(inside.get() - 1);
                })
            })
            .collect();
        let second_writer = {
            let (lock, log) = (lock.clone(), log.clone());
            green::spawn(move || {
                let mut value = lock.write().unwrap();
                *value += 1;
                log.borrow_mut().push(format!("writer makes {}", *value));
            })
        };
        green::yield_now(); // all four queue, in spawn order
        let mut write = write;
        *write = 1;
        drop(write);
        second_writer.join().unwrap();
        for reader in readers {
            reader.join().unwrap();
        }
        assert_eq!(most.get(), 3, "the three readers held the lock together");
        assert_eq!(
            *log.borrow(),
            ["reader 0 sees 1", "reader 1 sees 1", "reader 2 sees 1", "writer makes 2"]
        );
    });
}

#[test]
fn a_writer_that_times_out_lets_the_readers_it_held_back_in() {
    green::run(|| {
        let lock = Rc::new(RwLock::new(()));
        let held = lock.read().unwrap();
        let writer = {
            let lock = lock.clone();
            green::spawn(move || {
                lock.write_timeout(Duration::from_millis(5)).map(drop).map_err(|e| e.is_timeout())
            })
        };
        let reader = {
            let lock = lock.clone();
            green::spawn(move || lock.read_timeout(Duration::from_secs(60)).map(drop).is_ok())
        };
        green::yield_now(); // the writer queues behind `held`, the reader behind the writer
        assert_eq!(writer.join().unwrap(), Err(true), "the writer timed out");
        // As if the writer had never come: the reader shares the lock with
        // `held`, which is still here.
        assert!(reader.join().unwrap());
        assert!(lock.try_read().is_ok(), "no waiter left: readers enter freely");
        drop(held);
        assert!(lock.try_write().is_ok(), "nothing is left held");
    });
}

#[test]
fn a_cancelled_writer_leaves_no_trace() {
    green::run(|| {
        let lock = Rc::new(RwLock::new(0));
        let held = lock.read().unwrap();
        let writer = {
            let lock = lock.clone();
            green::spawn(move || lock.write().map(|mut value| *value = 1).map_err(|e| e.is_cancelled()))
        };
        green::yield_now();
        writer.cancel();
        assert_eq!(writer.join().unwrap(), Err(true), "the write was cancelled");
        assert!(lock.try_read().is_ok());
        drop(held);
        assert_eq!(*lock.try_write().unwrap(), 0);
        assert!(!lock.is_poisoned(), "cancellation never poisons");
    });
}

#[test]
fn read_timeout_gives_up_while_a_writer_holds_the_lock() {
    let lock = RwLock::new(1);
    let write = lock.write().unwrap();
    assert!(matches!(lock.read_timeout(Duration::from_millis(1)), Err(LockError::TimedOut)));
    assert!(matches!(lock.write_timeout(Duration::from_millis(1)), Err(LockError::TimedOut)));
    drop(write);
    assert_eq!(*lock.read_timeout(Duration::from_millis(1)).unwrap(), 1);
}

#[test]
fn try_read_and_try_write_never_wait() {
    let lock = RwLock::new(0);
    let read = lock.try_read().unwrap();
    assert!(lock.try_read().is_ok(), "readers share");
    assert!(matches!(lock.try_write(), Err(TryLockError::WouldBlock)));
    drop(read);
    let write = lock.try_write().unwrap();
    assert!(matches!(lock.try_read(), Err(TryLockError::WouldBlock)));
    assert!(matches!(lock.try_write(), Err(TryLockError::WouldBlock)));
    drop(write);
    assert!(lock.try_write().is_ok());
}

#[test]
fn a_panicking_writer_poisons_and_a_panicking_reader_does_not() {
    green::run(|| {
        let lock = Rc::new(RwLock::new(1));
        let reader = {
            let lock = lock.clone();
            green::spawn(move || {
                let _read = lock.read().unwrap();
                panic!("while reading");
            })
        };
        assert!(reader.join().unwrap_err().is_panic());
        assert!(!lock.is_poisoned(), "a read guard never poisons");
        let writer = {
            let lock = lock.clone();
            green::spawn(move || {
                let mut value = lock.write().unwrap();
                *value = 2;
                panic!("while writing");
            })
        };
        assert!(writer.join().unwrap_err().is_panic());
        assert!(lock.is_poisoned());
        assert_eq!(lock.read().map(drop).unwrap_err().into_poisoned().map(|value| *value), Some(2));
        assert!(matches!(lock.try_write(), Err(TryLockError::Poisoned(_))));
        lock.clear_poison();
        assert_eq!(*lock.write().unwrap(), 2);
    });
}

#[test]
fn a_coroutine_and_a_plain_thread_wait_for_each_other() {
    let lock = Arc::new(RwLock::new(0));
    let write = lock.write().unwrap();
    let runtime = {
        let lock = lock.clone();
        thread::spawn(move || {
            green::run(|| {
                let value = *lock.read().unwrap(); // parks until the thread writes
                let mut write = lock.write().unwrap();
                *write += value;
                *write
            })
        })
    };
    let mut write = write;
    *write = 21;
    drop(write);
    assert_eq!(runtime.join().unwrap(), 42);
    assert_eq!(*lock.read().unwrap(), 42);
}

#[test]
fn the_runtimes_shutdown_releases_held_and_awaited_locks() {
    let lock = Arc::new(RwLock::new(0));
    green::run(|| {
        let writer = lock.clone();
        green::spawn(move || {
            let _write = writer.write().unwrap();
            let _ = green::sleep(Duration::from_secs(3600));
        });
        for _ in 0..2 {
            let reader = lock.clone();
            green::spawn(move || {
                let _read = reader.read();
            });
        }
        green::yield_now();
    });
    assert!(!lock.is_poisoned());
    assert!(lock.try_write().is_ok(), "nothing is left held or queued");
}

#[test]
fn a_static_rwlock_and_std_thread_safety() {
    static CONFIG: RwLock<u32> = RwLock::new(3);
    assert_eq!(*CONFIG.read().unwrap(), 3);
    fn send_sync<T: Send + Sync>() {}
    fn sync<T: Sync>() {}
    send_sync::<RwLock<Vec<u8>>>();
    sync::<RwLockReadGuard<'static, u8>>();
    sync::<RwLockWriteGuard<'static, u8>>();
    // `!Send` guards are compile_fail doctests on the types.
}
