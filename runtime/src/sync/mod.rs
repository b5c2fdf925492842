//! Synchronisation primitives that park coroutines instead of blocking
//! threads, and work between coroutines and plain threads alike.
//!
//! Every wait here goes through one mechanism (`waiter.rs`): a waiter in a
//! FIFO queue, claimed by exactly one notifier or abandoned by its own
//! timeout or cancellation. That single rule is why every primitive is
//! fair (first come, first served), why an interrupted wait leaves the
//! primitive as if the waiter had never come, and why they all work across
//! threads: a coroutine of another runtime is woken through its runtime's
//! inbox, a plain thread with `unpark`.

pub(crate) mod waiter;
