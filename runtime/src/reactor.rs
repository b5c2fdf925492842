//! The reactor: epoll readiness turned into wake-ups.
//!
//! # From an epoll event to a resumed coroutine
//!
//! ```text
//!  coroutine A: stream.read(buf)
//!    read(2) -> EAGAIN
//!    IoSource::wait(Read) ----------> Reactor::wait(key, Read)
//!                                       sources[key].readers.push(waker)
//!                                       park()  ==== A suspended ====
//!  scheduler loop (run queue empty)
//!    Reactor::poll(timeout)
//!      epoll_wait -> Event { key, readable }
//!      key -> (slab index, generation) -> sources[index]
//!      generation matches: move readers into `due`    (borrow ends here)
//!    for waker in due: waker.wake(Ready) -> A Runnable, pushed once
//!    pop A, resume ------------------> park() returns Ready
//!                                      read(2) -> n bytes
//! ```
//!
//! File descriptors are registered once, lazily (at their first `EAGAIN`),
//! in edge-triggered mode for both directions, so waiting costs no
//! `epoll_ctl`. Every operation is tried first and waits only on `EAGAIN`,
//! which is what makes edge triggering safe: a coroutine never waits for an
//! edge that already happened, because it has just seen the descriptor not
//! ready, and registration itself reports any readiness present at that
//! moment.
//!
//! The poller key of a source is its slab index with a generation in the
//! high bits. A slot is reused only with a new generation, so an event that
//! was already queued for a closed descriptor finds a mismatch and is
//! dropped: a harmless miss, never a wake-up of a stranger.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use polling::{Event, Events, PollMode, Poller};
use slab::Slab;

use crate::park::{self, WakeReason, Waker};

/// Which readiness an operation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// The descriptor can be read (or accepted from, or has hung up).
    Read,
    /// The descriptor can be written (or a connect finished).
    Write,
}

/// The parts of a reactor that other threads may touch: a socket dropped
/// on another thread deletes itself from the poller and leaves its slab
/// slot to be freed by the owning thread.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The epoll instance. `Poller` is thread-safe.
    poller: Poller,
    /// Slab keys of sources dropped on other threads, freed at the next
    /// poll.
    orphans: Mutex<Vec<usize>>,
    /// Identifies the runtime, so a socket can tell whether it is used in
    /// the runtime it registered with.
    id: u64,
    /// Cleared when the reactor is dropped: a registration with a runtime
    /// that has ended may be replaced by one with the current runtime.
    alive: AtomicBool,
}

impl Shared {
    /// The runtime's identity.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Interrupts the runtime's `epoll_wait` (from any thread).
    pub(crate) fn notify(&self) -> io::Result<()> {
        self.poller.notify()
    }
}

/// A descriptor's entry in the reactor.
#[derive(Debug)]
struct Source {
    /// Generation this slot was filled with (high bits of the poller key).
    generation: u32,
    /// Tasks waiting for readability.
    readers: Vec<Waker>,
    /// Tasks waiting for writability.
    writers: Vec<Waker>,
}

/// One runtime's reactor. Lives in the scheduler.
#[derive(Debug)]
pub(crate) struct Reactor {
    /// What other threads may touch.
    shared: Arc<Shared>,
    /// Registered descriptors, indexed by the low bits of the poller key.
    sources: RefCell<Slab<Source>>,
    /// Buffer epoll fills; reused across polls.
    events: RefCell<Events>,
    /// Generation for the next registration.
    next_generation: Cell<u32>,
    /// Wakers currently in wait lists (for deadlock detection).
    waiters: Cell<usize>,
}

/// A descriptor's registration with one reactor, kept by the socket.
#[derive(Debug)]
pub(crate) struct Registered {
    /// The poller key: slab index and generation.
    key: usize,
    /// The reactor's thread-safe part.
    shared: Arc<Shared>,
}

impl Registered {
    /// The runtime this registration belongs to.
    pub(crate) fn runtime(&self) -> u64 {
        self.shared.id
    }

    /// Whether that runtime is still running.
    pub(crate) fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::Acquire)
    }

    /// The poller key.
    pub(crate) fn key(&self) -> usize {
        self.key
    }
}

fn encode(index: usize, generation: u32) -> usize {
    (generation as usize) << 32 | index
}

fn decode(key: usize) -> (usize, u32) {
    (key & 0xffff_ffff, (key >> 32) as u32)
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let shared = Shared {
            poller: Poller::new()?,
            orphans: Mutex::new(Vec::new()),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            alive: AtomicBool::new(true),
        };
        Ok(Reactor {
            shared: Arc::new(shared),
            sources: RefCell::new(Slab::new()),
            events: RefCell::new(Events::new()),
            next_generation: Cell::new(1),
            waiters: Cell::new(0),
        })
    }

    /// This runtime's identity.
    pub(crate) fn id(&self) -> u64 {
        self.shared.id
    }

    /// The part other threads may use.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Wakers waiting for I/O right now.
    pub(crate) fn waiters(&self) -> usize {
        self.waiters.get()
    }

    /// Registers `fd` for edge-triggered readiness in both directions.
    ///
    /// The caller must call [`Reactor::deregister`] (or
    /// [`deregister_remote`]) before closing `fd`.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<Registered> {
        let generation = self.next_generation.get();
        self.next_generation.set(generation.wrapping_add(1).max(1));
        let index =
            self.sources.borrow_mut().insert(Source { generation, readers: Vec::new(), writers: Vec::new() });
        if index > 0xffff_ffff {
            self.sources.borrow_mut().remove(index);
            return Err(io::Error::other("green: more than 2^32 descriptors registered with one runtime"));
        }
        let key = encode(index, generation);
        // SAFETY: the contract of this function makes the caller delete the
        // descriptor from the poller before it is closed.
        let added = unsafe { self.shared.poller.add_with_mode(fd, Event::all(key), PollMode::Edge) };
        if let Err(err) = added {
            self.sources.borrow_mut().remove(index);
            return Err(err);
        }
        Ok(Registered { key, shared: self.shared.clone() })
    }

    /// Removes a registration made by this reactor, waking its waiters so
    /// they retry (and find the descriptor gone).
    pub(crate) fn deregister(&self, fd: RawFd, registered: &Registered) {
        delete_from_poller(&self.shared, fd);
        self.free_slot(registered.key);
    }

    fn free_slot(&self, key: usize) {
        let (index, generation) = decode(key);
        let source = {
            let mut sources = self.sources.borrow_mut();
            match sources.get(index) {
                Some(source) if source.generation == generation => Some(sources.remove(index)),
                _ => None,
            }
        };
        if let Some(source) = source {
            self.waiters.set(self.waiters.get() - source.readers.len() - source.writers.len());
            for waker in source.readers.into_iter().chain(source.writers) {
                waker.wake(WakeReason::Ready);
            }
        }
    }

    /// Parks the running task until `key` is ready for `interest`, the
    /// deadline passes, or the task is cancelled.
    pub(crate) fn wait(&self, key: usize, interest: Interest, deadline: Option<Instant>) -> WakeReason {
        let (index, generation) = decode(key);
        {
            let mut sources = self.sources.borrow_mut();
            let Some(source) = sources.get_mut(index).filter(|s| s.generation == generation) else {
                return WakeReason::Ready;
            };
            let list = match interest {
                Interest::Read => &mut source.readers,
                Interest::Write => &mut source.writers,
            };
            list.push(park::waker());
        }
        self.waiters.set(self.waiters.get() + 1);
        let reason = park::park(deadline);
        // After a timeout or cancellation our waker is still listed; after
        // a spurious `Ready` (see `park`) it may be too. After a real event
        // `poll` has moved it out and this finds nothing.
        self.forget_waiter(key, interest);
        reason
    }

    /// Removes the running task's waker from a wait list after a timeout or
    /// cancellation (it is still there: nobody woke it).
    fn forget_waiter(&self, key: usize, interest: Interest) {
        let (index, generation) = decode(key);
        let task = park::waker();
        let mut sources = self.sources.borrow_mut();
        let Some(source) = sources.get_mut(index).filter(|s| s.generation == generation) else { return };
        let list = match interest {
            Interest::Read => &mut source.readers,
            Interest::Write => &mut source.writers,
        };
        let before = list.len();
        list.retain(|w| !w.same_task(&task));
        self.waiters.set(self.waiters.get() - (before - list.len()));
    }

    /// Waits up to `timeout` (None: indefinitely) for I/O events and moves
    /// the wakers of ready sources into `due`. Wakes nobody itself: the
    /// caller wakes `due` after every borrow here has ended.
    pub(crate) fn poll(&self, timeout: Option<Duration>, due: &mut Vec<Waker>) -> io::Result<()> {
        self.free_orphans();
        let mut events = self.events.borrow_mut();
        events.clear();
        match self.shared.poller.wait(&mut events, timeout) {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(err) => return Err(err),
        }
        let mut sources = self.sources.borrow_mut();
        let before = due.len();
        for event in events.iter() {
            let (index, generation) = decode(event.key);
            let Some(source) = sources.get_mut(index).filter(|s| s.generation == generation) else {
                continue; // a source removed since the event was queued
            };
            if event.readable {
                due.append(&mut source.readers);
            }
            if event.writable {
                due.append(&mut source.writers);
            }
        }
        self.waiters.set(self.waiters.get() - (due.len() - before));
        Ok(())
    }

    fn free_orphans(&self) {
        let orphans = match self.shared.orphans.lock() {
            Ok(mut orphans) if !orphans.is_empty() => std::mem::take(&mut *orphans),
            _ => return,
        };
        for key in orphans {
            self.free_slot(key);
        }
    }

    /// Drops every registration and waker (at runtime shutdown, after every
    /// task is gone).
    pub(crate) fn clear(&self) {
        self.sources.borrow_mut().clear();
        self.waiters.set(0);
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        self.shared.alive.store(false, Ordering::Release);
    }
}

/// Deletes a descriptor from the poller it was registered with, from any
/// thread; the slab slot is freed by the owning runtime at its next poll.
pub(crate) fn deregister_remote(fd: RawFd, registered: &Registered) {
    delete_from_poller(&registered.shared, fd);
    if let Ok(mut orphans) = registered.shared.orphans.lock() {
        orphans.push(registered.key);
    }
}

fn delete_from_poller(shared: &Shared, fd: RawFd) {
    // SAFETY: the socket that owns `fd` calls this from its destructor,
    // before it closes the descriptor, so `fd` is open for the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    // An error here means the descriptor was never added or is already gone;
    // either way there is nothing left to undo.
    let _ = shared.poller.delete(fd);
}
