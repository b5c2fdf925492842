//! Coroutines: spawning, naming, joining, and finding out who is running.
//!
//! A coroutine (also called a task here) is a closure running on a stack of
//! its own, scheduled cooperatively with the other coroutines of its
//! runtime. It runs until it blocks (on I/O, a sleep, a join, ...) or calls
//! [`yield_now`](crate::yield_now), and then the thread runs another.
//!
//! Inside, from the bottom up: `state.rs` and `id.rs` (plain data),
//! `coroutine.rs`, `error.rs`, `slot.rs`, `cancel_state.rs`, the task's
//! record `cell.rs`, then what runs on top of the runtime's context:
//! `teardown.rs`, `spawn.rs`, `join.rs`, `group.rs`.

pub(crate) mod cancel_state;
pub(crate) mod cell;
pub(crate) mod coroutine;
pub(crate) mod distributed;
pub(crate) mod error;
mod group;
pub(crate) mod id;
pub(crate) mod join;
pub(crate) mod slot;
pub(crate) mod spawn;
pub(crate) mod state;
pub(crate) mod teardown;
pub(crate) mod visits;

pub use distributed::{DistributedHandle, Handle, spawn_distributed, workers};
pub use error::JoinError;
pub use group::TaskGroup;
pub use id::{Task, TaskId};
pub use join::JoinHandle;
pub use spawn::{Builder, current, spawn, try_current};
