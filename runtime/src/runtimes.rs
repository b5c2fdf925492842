//! The workers running in the process, for the task dump: each one's
//! inbox, where a dump posts its request, and its stall watchdog stamp,
//! which says what a worker that does not answer is running.
//!
//! A worker is listed by its scheduler for as long as `run` runs, whether
//! or not the watchdog watches it (every scheduler keeps a stamp). Only
//! `Arc`s of thread-safe parts are shared: the list never gives anyone
//! access to a worker's tasks, which only that worker's own thread reads
//! (`dump/collect.rs`).

use std::sync::{Arc, Mutex, PoisonError};

use crate::inbox::Inbox;
use crate::watchdog::Stamp;

/// One listed worker.
#[derive(Debug)]
pub(crate) struct Listed {
    /// The identity of its runtime: the id its workers share (a runtime of
    /// one: its own id).
    pub(crate) runtime: u64,
    /// The worker's own id (its context's), unique in the process.
    pub(crate) id: u64,
    /// Its index in its runtime.
    pub(crate) worker: usize,
    /// Its inbox, to post a dump request to.
    pub(crate) inbox: Arc<Inbox>,
    /// Its watchdog stamp: what it runs now.
    pub(crate) stamp: Arc<Stamp>,
}

/// Every listed worker, in the order they started.
static LISTED: Mutex<Vec<Arc<Listed>>> = Mutex::new(Vec::new());

/// Lists a worker until the returned [`Listing`] is dropped.
pub(crate) fn list(listed: Listed) -> Listing {
    let listed = Arc::new(listed);
    LISTED.lock().unwrap_or_else(PoisonError::into_inner).push(listed.clone());
    Listing(listed)
}

/// The workers listed now.
pub(crate) fn all() -> Vec<Arc<Listed>> {
    LISTED.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// A worker's place on the list; taken off when dropped.
#[derive(Debug)]
pub(crate) struct Listing(Arc<Listed>);

impl Drop for Listing {
    fn drop(&mut self) {
        LISTED.lock().unwrap_or_else(PoisonError::into_inner).retain(|listed| !Arc::ptr_eq(listed, &self.0));
    }
}
