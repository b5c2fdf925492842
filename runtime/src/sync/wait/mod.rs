//! Waiting on primitives: every blocking primitive (channels, select,
//! locks, semaphores, events, barriers, ...) waits through this module;
//! none of them parks anything itself.
//!
//! A primitive keeps its state behind a lock (a `std::sync::Mutex` for the
//! locks, a `SpinLock` for a channel), held only for short, non-blocking
//! critical sections, and a [`WaitQueue`](queue::WaitQueue) of entries,
//! each holding a waiter's handle. The files, from the bottom up:
//!
//! * `touch.rs`: who has used a primitive (its own runtime only, or
//!   others too), for the deadlock check;
//! * `core.rs`: the data of a shared waiter, and the runtime's cache of
//!   them (kept in the runtime's context);
//! * `party.rs`: who waits (a coroutine or a thread), how a wait ends
//!   (`Outcome`), and the one loop every wait runs (`wait_claimed`: a
//!   coroutine parks in one epoch, a thread with `std::thread::park`);
//! * `waiter.rs`: the shared waiter, for a wait that several queues or
//!   lock-free notifiers may end;
//! * `sole.rs`: the sole waiter, for a wait in one queue whose every claim
//!   happens under that queue's lock (a plain channel `send` or `recv`);
//! * `queue.rs`: the queue itself, the locked queue of the locks, and the
//!   waiters claimed under a lock to be woken after it (`Woken`).
//!
//! # The claim: who decides how a wait ends
//!
//! A waiter's `state` starts `WAITING` and changes exactly once:
//!
//! 1. **Claimed** with a token, by a notifier, under the primitive's lock
//!    (`WaiterHandle::claim`): the notifier has done the waiter's
//!    operation on its behalf (handed it a message, taken its message,
//!    granted it the lock or the permits) and then wakes it. The token
//!    says which operation (the branch of a select).
//! 2. **Abandoned** by the waiter itself, when its deadline passes or it is
//!    cancelled (`Waiter::wait`). A notifier that then tries to claim it
//!    fails and moves on to the next waiter: nothing was handed over.
//!
//! Both are a compare-and-swap from `WAITING`, so exactly one wins. That
//! is what makes every wait cancel-safe by construction: an interrupted wait
//! either lost the race to a notifier (the operation completed, and the
//! waiter reports success) or won it (the operation never happened, and
//! the primitive is exactly as if the waiter had never come). It is also
//! what makes `select` take exactly one branch: all its entries, in
//! different queues, share one waiter, and only one claim can succeed.
//!
//! A claim that moves a message (`WaiterHandle::claim_with`) passes
//! through `TRANSFERRING`: the owner, woken by anything else, sees the
//! token only once the message has moved, and waits meanwhile.
//!
//! A party that waits in one queue only, and whose every claim is made
//! under that queue's lock (a plain `send` or `recv` on a channel), needs
//! none of this: it waits with the lighter `SoleWaiter` (`sole.rs`).
//!
//! # Waking
//!
//! A coroutine is woken by the rules of `park.rs`: directly when the
//! notifier runs on the coroutine's own thread, through its runtime's
//! inbox otherwise (see `inbox.rs`). A waiter records the epoch of the
//! park it is about to enter before checking its state one last time, so
//! a claim that lands in between is never missed. A thread is woken with
//! `Thread::unpark`; `park` may wake spuriously, so the loop re-checks.

pub(crate) mod core;
pub(crate) mod party;
pub(crate) mod queue;
pub(crate) mod sole;
pub(crate) mod touch;
pub(crate) mod waiter;
