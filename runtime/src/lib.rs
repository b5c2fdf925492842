//! `green`: green threads for Rust.
//!
//! Stackful coroutines (on [corosensei]) run on a user-space scheduler, one
//! per OS thread, with an epoll event loop underneath. Code is written in
//! the blocking style of `std`, `stream.read(&mut buf)?`, but a blocked
//! coroutine parks and the thread runs the others.
//!
//! ```
//! use std::time::Duration;
//!
//! let total = green::run(|| {
//!     let workers: Vec<_> = (0..100u64)
//!         .map(|i| green::spawn(move || {
//!             green::sleep(Duration::from_millis(1));
//!             i
//!         }))
//!         .collect();
//!     workers.into_iter().map(|w| w.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 4950);
//! ```
//!
//! Start with [`run`], then [`spawn`], [`sleep`], [`yield_now`], the
//! socket types in [`net`] and the files in [`fs`]. [`metrics()`] shows
//! what every runtime of the process is doing, from any thread.
//! `DESIGN.md` in the repository explains how it works inside.
//!
//! # Before you start: what cooperative scheduling asks of you
//!
//! * **Do not block the thread.** One runtime is one OS thread, and its
//!   coroutines take turns on it. A blocking `std` call in a coroutine
//!   (`std::fs`, `std::net`, `std::thread::sleep`, a `std::sync::Mutex`
//!   held elsewhere) stops every coroutine of the runtime until it
//!   returns. Use `green::sleep`, [`net`], [`fs`], [`channel`] and
//!   [`sync`] instead; run blocking calls that have no green version with
//!   [`blocking::unblock`], on a pool of OS threads, while only the calling
//!   coroutine waits. Host names are resolved on that pool.
//! * **Long CPU loops hold the thread.** A coroutine runs until it blocks
//!   in `green` or calls [`yield_now`]; a loop that computes for a second
//!   delays every other coroutine by a second. Call [`yield_now`] every
//!   few milliseconds of work, or move the work to [`blocking::unblock`].
//!   The stall [`watchdog`] names a coroutine that holds its thread for
//!   over 100 ms on stderr ([`Builder::stall_watchdog`]).
//! * **When it hangs, ask.** [`dump()`] lists every coroutine, what it waits
//!   for and who holds it, and finds coroutines that wait on each other;
//!   [`Builder::dump_on_sigquit`] prints one on `kill -QUIT`.
//! * **One worker uses one core.** [`run`] is one worker;
//!   [`Builder::workers`] runs more, and [`spawn_distributed`] places a
//!   `Send` closure on any of them. A coroutine never moves to another
//!   thread once started, which is why [`spawn`] needs no `Send`.
//! * **Cancellation is an error, not a kill**: a cancelled coroutine's
//!   blocking calls fail (level-triggered) until it returns; it stops only
//!   where it checks them. At shutdown the coroutines still alive are
//!   unwound, so their destructors run.
//!
//! `DESIGN.md` lists the rest of the caveats and why each one exists.
//!
//! [corosensei]: https://docs.rs/corosensei

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms, clippy::undocumented_unsafe_blocks)]

pub mod blocking;
mod board;
mod cancel;
pub mod channel;
mod context;
mod debugger;
pub mod dump;
mod epoll;
pub mod fs;
mod inbox;
pub mod metrics;
pub mod net;
mod park;
mod reactor;
mod run_queue;
mod runtime;
mod runtimes;
mod scheduler;
mod scope;
mod stack;
pub mod sync;
pub mod task;
mod time;
mod timeout;
mod timer;
pub mod watchdog;
mod workers;

pub use cancel::{Cancelled, is_cancelled};
pub use dump::{Dump, dump};
pub use metrics::{metrics, runtime_metrics};
pub use runtime::{Builder, DEFAULT_STACK_SIZE, run};
pub use scope::{Scope, ScopeError, ScopedJoinHandle, scope};
pub use stack::Protection;
pub use task::{
    DistributedHandle, Handle, JoinError, JoinHandle, Task, TaskGroup, TaskId, current, spawn,
    spawn_distributed, try_current,
};
pub use time::{sleep, sleep_until, yield_now};
pub use timeout::{Elapsed, deadline, shield, timeout};

/// The examples in README.md, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
