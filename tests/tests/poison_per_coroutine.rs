//! Poisoning is decided per coroutine, not per OS thread: a coroutine
//! suspended in a destructor in the middle of its unwind (std then reports
//! `thread::panicking()` for the whole thread) does not make another
//! coroutine's clean guard drop poison the lock; a guard dropped by the
//! unwinding coroutine itself still does.

use std::rc::Rc;

use green::sync::{Event, Mutex};

/// Waits for `event` when dropped: parks its coroutine mid-unwind.
struct WaitsOnDrop(Rc<Event>);

impl Drop for WaitsOnDrop {
    fn drop(&mut self) {
        let _ = self.0.wait();
    }
}

#[test]
fn a_clean_guard_drop_does_not_poison_while_another_coroutine_is_suspended_mid_unwind() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(0));
        let event = Rc::new(Event::new());
        let e = event.clone();
        let panicking = green::spawn(move || {
            let _waits = WaitsOnDrop(e);
            panic!("unwinds and parks in a destructor");
        });
        green::yield_now(); // it panics and parks mid-unwind
        *lock.lock().expect("not poisoned") += 1;
        assert!(!lock.is_poisoned(), "a clean guard drop in main did not poison the lock");
        event.set();
        assert!(panicking.join().unwrap_err().is_panic());
        assert!(!lock.is_poisoned());
    });
}

#[test]
fn a_guard_taken_before_and_dropped_during_another_coroutines_unwind_does_not_poison() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(0));
        let event = Rc::new(Event::new());
        let go = Rc::new(Event::new());
        let (l, g) = (lock.clone(), go.clone());
        let holder = green::spawn(move || {
            let mut guard = l.lock().expect("free");
            let _ = g.wait(); // parked holding the guard
            *guard += 1;
        });
        green::yield_now();
        let e = event.clone();
        let panicking = green::spawn(move || {
            let _waits = WaitsOnDrop(e);
            panic!("unwinds and parks in a destructor");
        });
        green::yield_now();
        go.set();
        holder.join().expect("the holder finished cleanly");
        assert!(!lock.is_poisoned(), "the holder's guard dropped cleanly");
        event.set();
        assert!(panicking.join().unwrap_err().is_panic());
    });
}

#[test]
fn a_guard_dropped_by_the_unwinding_coroutine_still_poisons_while_another_is_suspended_mid_unwind() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(0));
        let first_event = Rc::new(Event::new());
        let e = first_event.clone();
        let first = green::spawn(move || {
            let _waits = WaitsOnDrop(e);
            panic!("the first unwind parks in a destructor");
        });
        green::yield_now();
        let l = lock.clone();
        let second = green::spawn(move || {
            let _guard = l.lock().expect("free");
            panic!("the second unwind drops a guard");
        });
        assert!(second.join().unwrap_err().is_panic());
        assert!(lock.is_poisoned(), "the guard dropped by the panicking coroutine poisoned the lock");
        first_event.set();
        assert!(first.join().unwrap_err().is_panic());
    });
}

#[test]
fn a_guard_dropped_in_a_panic_poisons_as_in_std() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(0));
        let l = lock.clone();
        let failed = green::spawn(move || {
            let _guard = l.lock().expect("free");
            panic!("poisons");
        });
        assert!(failed.join().unwrap_err().is_panic());
        assert!(lock.is_poisoned());
    });
}
