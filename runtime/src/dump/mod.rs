//! The task dump: every coroutine, where it is in its life, and what it
//! waits for, to explain a hang. [`dump()`](crate::dump()) makes one;
//! a [`Dump`] prints as text for people ([`Display`](std::fmt::Display)),
//! as JSON for programs ([`Dump::to_json`]), and finds the coroutines that
//! wait on each other ([`Dump::cycles`]).
//!
//! ```
//! use green::sync::Mutex;
//!
//! green::run(|| {
//!     let lock = std::sync::Arc::new(Mutex::new(()));
//!     let held = lock.lock().unwrap();
//!     let waiter = {
//!         let lock = lock.clone();
//!         green::task::Builder::new().name("waiter").spawn(move || drop(lock.lock())).unwrap()
//!     };
//!     green::yield_now(); // the waiter runs, and parks on the lock
//!     let dump = green::dump();
//!     let parked = dump.coroutines().iter().find(|c| c.name.as_deref() == Some("waiter")).unwrap();
//!     let wait = parked.waits_on.as_ref().unwrap();
//!     assert_eq!(wait.kind, green::dump::WaitKind::Mutex);
//!     assert_eq!(wait.holder, Some(green::dump::Holder::Coroutine(green::current().id())));
//!     println!("{dump}");
//!     drop(held);
//!     waiter.join().unwrap();
//! });
//! ```
//!
//! # How the records are read
//!
//! A coroutine's record belongs to its worker's thread, and only that
//! thread reads it (`collect.rs` has the argument). A dump made in a
//! coroutine reads its own worker's records itself, and asks each other
//! worker of its runtime for its part by posting a request to the worker's
//! inbox, which the worker's scheduler answers between two switches: within
//! 61 switches when it is busy, at once when it is idle. A dump made on a
//! plain thread asks every worker of every runtime of the process that
//! way. The caller waits for the answers the way any green wait does: a
//! coroutine parks (its worker keeps running, and answers others), a thread
//! blocks.
//!
//! A worker whose thread a coroutine holds (it computes, or blocks in a
//! system call) cannot answer. After [`ANSWER_WAIT`] the dump gives up on
//! it and says so, naming the coroutine that holds it and for how long,
//! from the stall watchdog's stamps ([`Silent`]); its coroutines are
//! missing from the dump.
//!
//! # Backtraces
//!
//! Each coroutine's [`Backtrace`] is its own stack's frames, innermost
//! first. A suspended coroutine's stack is read by resuming it, on its own
//! worker, into a capture step that walks the stack and suspends again
//! before any of the coroutine's code runs (`backtrace.rs` has the
//! argument); the running caller's stack is read where it stands; a
//! coroutine running on another worker has none. The frames are named on
//! the thread that made the dump, once per address. [`Options`] makes a
//! dump without them, which is ten times faster.
//!
//! # JSON
//!
//! [`Dump::to_json`] writes one object; every field is always present
//! (`null` where there is nothing to say). Times are milliseconds, as
//! numbers with a fraction; ids are numbers; addresses are numbers.
//!
//! ```text
//! {
//!   "version": 2,                        // 2: backtraces
//!   "coroutines": [ {
//!     "id": 7,                           // TaskId
//!     "name": "worker" | null,
//!     "spawned_at": "src/main.rs:12:5" | null,
//!     "runtime": 3,                      // the id a runtime's workers share
//!     "worker": 0,
//!     "state": "runnable" | "running" | "parked",
//!     "in_state_ms": 1203.5 | null,      // how long in that state, where known
//!     "waits_on": null | {
//!       "kind": "channel recv",          // WaitKind::as_str
//!       "object": 140737488355328,       // fd, queue address, joined id; 0: none
//!       "holder": 5 | "thread" | null,   // a lock's holder, a joined coroutine
//!       "peer": "127.0.0.1:4000" | null  // socket waits
//!     },
//!     "cancel_requested": false,
//!     "deadline_ms": 250.0 | null,       // time left until the nearest deadline
//!     "parent": 2 | null,                // the coroutine whose scope it is a child of
//!     "children": [8, 9],                // its unfinished scope children
//!     "backtrace": null | [ {            // innermost frame first
//!       "ip": 94558412, "function": "app::handler" | null,
//!       "file": "src/main.rs" | null, "line": 40 | null
//!     } ],
//!     "backtrace_missing": null | "not requested" | "not started" | "running"
//!       | "too little stack left to capture" | "unavailable"
//!   } ],
//!   "silent_workers": [ {
//!     "runtime": 3, "worker": 1, "label": "worker 1",
//!     "running": null | { "id": 12, "name": "spinner" | null, "spawned_at": "..." | null },
//!     "running_ms": 1500.0,              // how long it has held the thread, at least
//!     "reason": "..."
//!   } ],
//!   "cycles": [ [2, 3] ]                 // each waits on the next, the last on the first
//! }
//! ```

mod ask;
pub(crate) mod backtrace;
pub(crate) mod collect;
pub(crate) mod entry;
pub(crate) mod graph;
mod json;
pub(crate) mod kind;
pub(crate) mod signal;
pub(crate) mod snapshot;
mod text;

pub use ask::{ANSWER_WAIT, Options, dump, dump_within};
pub use backtrace::{Backtrace, CAPTURE_ROOM, Frame, MAX_FRAMES};
pub use entry::{Coroutine, Holder, Silent, State, Wait};
pub use graph::Cycle;
pub use kind::WaitKind;
pub use signal::signal_dumps;
pub use snapshot::Dump;
