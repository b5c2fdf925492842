//! The reactor: epoll readiness turned into wake-ups.
//!
//! The reactor keeps, for every registered descriptor, the wakers of the
//! coroutines waiting to read it and to write it. A coroutine whose read
//! hits `EAGAIN` adds its waker here and parks (`net/io.rs`); the
//! scheduler's poll (`Reactor::poll`) moves the wakers of ready
//! descriptors into a list the scheduler wakes once every borrow here has
//! ended. DESIGN.md ("One request, end to end") follows a read through
//! every step.
//!
//! File descriptors are registered once, lazily (at their first `EAGAIN`),
//! in edge-triggered mode for both directions, so a wait adds no
//! `epoll_ctl` of its own. Every operation is tried first and waits only on `EAGAIN`,
//! which is what makes edge triggering safe: a coroutine never waits for an
//! edge that already happened, because it has just seen the descriptor not
//! ready, and registration itself reports any readiness present at that
//! moment.
//!
//! The poller key of a source is its slab index with a generation in the
//! high bits. A slot is reused only with a new generation, so an event that
//! was already queued for a closed descriptor finds a mismatch and is
//! dropped: a harmless miss, never a wake-up of a stranger.
//!
//! # Who keeps a registered descriptor open
//!
//! [`Poller::add`] is `unsafe`: a descriptor must be deleted from the
//! poller before it is closed. [`Reactor::register`] passes that contract
//! on to its caller as its own `# Safety` section, and the one caller,
//! `net::IoSource`, meets it by construction: it owns the socket (and so
//! the descriptor), and its destructor deregisters before the socket's own
//! destructor closes the descriptor. Deregistering takes the descriptor as
//! a `BorrowedFd`, so the type system proves it is still open then.
//!
//! ```text
//!   IoSource<S> dropped (or into_inner)
//!     1. Reactor::deregister(fd, registered)   epoll_ctl(DEL); slot freed
//!        or deregister_remote(fd, registered)  epoll_ctl(DEL); slot queued
//!                                              for the owner's next poll
//!     2. S dropped: close(fd)
//! ```

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use slab::Slab;

use crate::epoll::{Epoll, Events};

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
pub(crate) struct ReactorShared {
    /// The epoll instance. It is thread-safe; the runtime's inbox holds it
    /// too, to interrupt the wait.
    poller: Arc<Epoll>,
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

/// A descriptor's entry in the reactor.
#[derive(Debug)]
struct Source<W> {
    /// Generation this slot was filled with (high bits of the poller key).
    generation: u32,
    /// Tasks waiting for readability.
    readers: Vec<W>,
    /// Tasks waiting for writability.
    writers: Vec<W>,
    /// False once a read drained the descriptor (see
    /// [`Reactor::mark_drained`]) and no readable event has come since.
    readable: bool,
    /// The peer has shut its side down, or the connection hung up or
    /// failed: never cleared, because no new event will announce the end
    /// of the stream a read still has to return.
    read_closed: bool,
}

impl<W> Source<W> {
    /// The wait list for `interest`.
    fn list(&mut self, interest: Interest) -> &mut Vec<W> {
        match interest {
            Interest::Read => &mut self.readers,
            Interest::Write => &mut self.writers,
        }
    }
}

/// One runtime's reactor. Lives in the runtime's context (`context.rs`).
///
/// It keeps wakers of type `W` (the runtime's are `task::cell::Waker`)
/// in the wait lists of its sources and hands them back when their
/// descriptor is ready or deregistered; it never wakes anything itself.
#[derive(Debug)]
pub(crate) struct Reactor<W> {
    /// What other threads may touch.
    shared: Arc<ReactorShared>,
    /// Registered descriptors, indexed by the low bits of the poller key.
    sources: RefCell<Slab<Source<W>>>,
    /// Buffer epoll fills; reused across polls.
    events: RefCell<Events>,
    /// Generation for the next registration.
    next_generation: Cell<u32>,
    /// Wakers currently in wait lists (for deadlock detection).
    waiters: Cell<usize>,
}

/// A descriptor's registration with one reactor, kept by the socket until
/// it hands it back to [`Reactor::deregister`] or [`deregister_remote`].
#[derive(Debug)]
#[must_use = "a registration must be passed to `deregister` before its descriptor closes"]
pub(crate) struct Registered {
    /// The poller key: slab index and generation.
    key: usize,
    /// The descriptor registered, to check that the one deregistered is the
    /// same (in debug builds).
    fd: RawFd,
    /// The reactor's thread-safe part.
    shared: Arc<ReactorShared>,
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

impl<W> Reactor<W> {
    /// A reactor with a new epoll instance, for the runtime `id`.
    ///
    /// # Errors
    ///
    /// The error of creating the epoll instance (and its wake-up
    /// descriptor), with advice when the cause is a descriptor limit.
    pub(crate) fn new(id: u64) -> io::Result<Reactor<W>> {
        let shared = ReactorShared {
            poller: Arc::new(Epoll::new().map_err(poller_error)?),
            orphans: Mutex::new(Vec::new()),
            id,
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

    /// The epoll instance, for the inbox to interrupt `epoll_wait` with.
    pub(crate) fn poller(&self) -> &Arc<Epoll> {
        &self.shared.poller
    }

    /// Wakers waiting for I/O right now.
    pub(crate) fn waiters(&self) -> usize {
        self.waiters.get()
    }

    /// Registers `fd` for edge-triggered readiness in both directions.
    ///
    /// # Errors
    ///
    /// What `epoll_ctl` reports, with the descriptor and the limit to raise
    /// (see [`register_error`]), or an error if more than 2^32 descriptors
    /// are registered with this runtime at once.
    ///
    /// # Safety
    ///
    /// `fd` must stay open until it has been deleted from the poller, by
    /// passing it with the returned registration to [`Reactor::deregister`]
    /// or [`deregister_remote`]: the caller owns the descriptor (or the
    /// value that owns it) and deregisters before it gives that up. This is
    /// the contract of [`Epoll::add`] passed on to the caller.
    pub(crate) unsafe fn register(&self, fd: BorrowedFd<'_>) -> io::Result<Registered> {
        let generation = self.next_generation.get();
        self.next_generation.set(generation.wrapping_add(1).max(1));
        let index = self.sources.borrow_mut().insert(Source {
            generation,
            readers: Vec::new(),
            writers: Vec::new(),
            readable: true,
            read_closed: false,
        });
        if index > 0xffff_ffff {
            self.sources.borrow_mut().remove(index);
            return Err(io::Error::other(
                "green: more than 2^32 descriptors registered with one runtime; spread the sockets \
                 over several runtimes",
            ));
        }
        let key = encode(index, generation);
        // SAFETY: `Epoll::add` needs `fd` deleted from the poller before it closes: this function's
        // `# Safety` makes the caller keep `fd` open until it passes the registration returned here to
        // `deregister` or `deregister_remote`, and both delete `fd` from this poller.
        let added = unsafe { self.shared.poller.add(fd, key) };
        if let Err(err) = added {
            self.sources.borrow_mut().remove(index);
            return Err(register_error(fd.as_raw_fd(), err));
        }
        Ok(Registered { key, fd: fd.as_raw_fd(), shared: self.shared.clone() })
    }

    /// Removes a registration made by this reactor: deletes `fd` from the
    /// poller and frees the slot, moving its waiters into `woken`: the
    /// caller wakes them, so that they retry (and find the descriptor
    /// gone). `fd` is the descriptor `registered` was made for, still open
    /// (it is borrowed).
    pub(crate) fn deregister(&self, fd: BorrowedFd<'_>, registered: Registered, woken: &mut Vec<W>) {
        debug_assert!(Arc::ptr_eq(&registered.shared, &self.shared), "deregistered from another reactor");
        delete_from_poller(&self.shared, fd, &registered);
        self.free_slot(registered.key, woken);
    }

    fn free_slot(&self, key: usize, woken: &mut Vec<W>) {
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
            woken.extend(source.readers.into_iter().chain(source.writers));
        }
    }

    /// Adds `waker` to the wait list of `key` for `interest`; false (and
    /// `waker` dropped) if the source is gone, deregistered since the
    /// caller found its key.
    pub(crate) fn add_waiter(&self, key: usize, interest: Interest, waker: W) -> bool {
        let (index, generation) = decode(key);
        let mut sources = self.sources.borrow_mut();
        let Some(source) = sources.get_mut(index).filter(|s| s.generation == generation) else {
            return false;
        };
        source.list(interest).push(waker);
        self.waiters.set(self.waiters.get() + 1);
        true
    }

    /// Records that a read of `key` emptied its receive queue (a stream
    /// read that returned less than it asked for), so that the next read
    /// waits for the next readable event instead of trying first and
    /// failing with `EAGAIN` (one system call saved per request of a
    /// request-response connection; tokio's `clear_readiness` does the
    /// same).
    ///
    /// Sound because the descriptor is registered edge-triggered and
    /// events reach `readable` only in [`Reactor::poll`], on this thread:
    /// data that arrives after the read makes a new edge, which the next
    /// poll turns into `readable = true` and wakes the reader. The caller
    /// must call this right after the read, with no switch in between, so
    /// that no poll runs between the read and the mark.
    pub(crate) fn mark_drained(&self, key: usize) {
        let (index, generation) = decode(key);
        if let Some(source) = self.sources.borrow_mut().get_mut(index).filter(|s| s.generation == generation)
        {
            source.readable = false;
        }
    }

    /// Whether `key` may have data: false only after
    /// [`Reactor::mark_drained`] with no readable event since, and before
    /// any sign that the stream has ended (a read that returned data may
    /// leave an end of stream that arrived with it, already announced). A
    /// key that is gone may have anything: true.
    pub(crate) fn may_be_readable(&self, key: usize) -> bool {
        let (index, generation) = decode(key);
        let sources = self.sources.borrow();
        sources.get(index).filter(|s| s.generation == generation).is_none_or(|s| s.readable || s.read_closed)
    }

    /// Removes the wakers `which` picks from the wait list of `key` for
    /// `interest` (a wait that ended by a timeout or cancellation leaves
    /// its waker there: nobody woke it).
    pub(crate) fn remove_waiters(&self, key: usize, interest: Interest, which: impl Fn(&W) -> bool) {
        let (index, generation) = decode(key);
        let mut sources = self.sources.borrow_mut();
        let Some(source) = sources.get_mut(index).filter(|s| s.generation == generation) else { return };
        let list = source.list(interest);
        let before = list.len();
        list.retain(|waker| !which(waker));
        self.waiters.set(self.waiters.get() - (before - list.len()));
    }

    /// Waits up to `timeout` (None: indefinitely) for I/O events and moves
    /// the wakers of ready sources (and of sources deregistered from other
    /// threads) into `due`; returns how many I/O events the wait returned.
    /// Wakes nobody itself: the caller wakes `due` after every borrow here
    /// has ended.
    pub(crate) fn poll(&self, timeout: Option<Duration>, due: &mut Vec<W>) -> io::Result<usize> {
        self.free_orphans(due);
        let mut events = self.events.borrow_mut();
        self.shared.poller.wait(&mut events, timeout)?;
        let mut sources = self.sources.borrow_mut();
        let before = due.len();
        let mut count = 0;
        for event in events.iter() {
            count += 1;
            let Ok(key) = usize::try_from(event.key) else { continue };
            let (index, generation) = decode(key);
            let Some(source) = sources.get_mut(index).filter(|s| s.generation == generation) else {
                continue; // a source removed since the event was queued
            };
            if event.read_closed {
                source.read_closed = true;
            }
            if event.readable {
                source.readable = true;
                due.append(&mut source.readers);
            }
            if event.writable {
                due.append(&mut source.writers);
            }
        }
        self.waiters.set(self.waiters.get() - (due.len() - before));
        Ok(count)
    }

    fn free_orphans(&self, woken: &mut Vec<W>) {
        // The list is only pushed to and taken, so a panic elsewhere while
        // it was locked cannot have left it half-changed: ignore poisoning.
        let orphans = {
            let mut orphans = self.shared.orphans.lock().unwrap_or_else(PoisonError::into_inner);
            if orphans.is_empty() {
                return;
            }
            std::mem::take(&mut *orphans)
        };
        for key in orphans {
            self.free_slot(key, woken);
        }
    }

    /// Drops every registration and waker (at runtime shutdown, after every
    /// task is gone).
    pub(crate) fn clear(&self) {
        self.sources.borrow_mut().clear();
        self.waiters.set(0);
    }
}

impl<W> Drop for Reactor<W> {
    fn drop(&mut self) {
        self.shared.alive.store(false, Ordering::Release);
    }
}

/// Deletes `fd` from the poller `registered` belongs to, from any thread;
/// the slab slot is freed by the owning runtime at its next poll. `fd` is
/// the descriptor `registered` was made for, still open (it is borrowed).
pub(crate) fn deregister_remote(fd: BorrowedFd<'_>, registered: Registered) {
    delete_from_poller(&registered.shared, fd, &registered);
    registered.shared.orphans.lock().unwrap_or_else(PoisonError::into_inner).push(registered.key);
}

fn delete_from_poller(shared: &ReactorShared, fd: BorrowedFd<'_>, registered: &Registered) {
    debug_assert_eq!(fd.as_raw_fd(), registered.fd, "deregistered a different descriptor");
    // An error here means the descriptor is already gone from the epoll
    // set; either way there is nothing left to undo.
    let _ = shared.poller.delete(fd);
}

/// The error of creating the epoll instance, with advice when a descriptor
/// limit is the cause (the message follows "cannot create the epoll
/// instance: ").
fn poller_error(err: io::Error) -> io::Error {
    let advice = match err.raw_os_error() {
        Some(libc::EMFILE) => "; raise the per-process descriptor limit (ulimit -n) or close descriptors",
        Some(libc::ENFILE) => "; raise the system-wide limit (sysctl fs.file-max) or close descriptors",
        Some(libc::ENOMEM) => "; free memory",
        _ => return err,
    };
    io::Error::new(err.kind(), format!("{err}{advice}"))
}

/// The error of adding descriptor `fd` to the epoll instance: what
/// `epoll_ctl` said, and what to do about it.
///
/// `ENOMEM` is returned as it is: it is transient, and callers with a
/// policy for shortages (the accept loop backs off) recognise it by its
/// OS error code, which a message would hide.
fn register_error(fd: RawFd, err: io::Error) -> io::Error {
    let advice = match err.raw_os_error() {
        Some(libc::ENOMEM) => return err,
        Some(libc::ENOSPC) => {
            "; the per-user limit on descriptors registered with epoll is reached: raise it with \
             sysctl fs.epoll.max_user_watches, or close sockets"
        }
        _ => "",
    };
    io::Error::new(
        err.kind(),
        format!("green: cannot register descriptor {fd} with the runtime's epoll instance: {err}{advice}"),
    )
}

impl<W> Reactor<W> {
    /// The descriptors in this reactor's epoll set, read from
    /// `/proc/self/fdinfo` (one `tfd:` line per registered descriptor).
    #[cfg(test)]
    pub(crate) fn registered_fds(&self) -> io::Result<Vec<RawFd>> {
        let epoll = self.shared.poller.raw_fd();
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{epoll}"))?;
        let fds = info
            .lines()
            .filter_map(|line| line.strip_prefix("tfd:"))
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .collect();
        Ok(fds)
    }

    /// How many slab slots are in use.
    #[cfg(test)]
    pub(crate) fn slots_in_use(&self) -> usize {
        self.sources.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn deregister_deletes_the_descriptor_and_frees_its_slot() -> io::Result<()> {
        let reactor = Reactor::<()>::new(1)?;
        let own = reactor.registered_fds()?; // the poller's wake-up descriptors
        let (a, _b) = UnixStream::pair()?;
        // SAFETY: `register` needs `a` open until the registration is passed
        // to `deregister`; `a` lives to the end of this function and the
        // registration is passed to `deregister` two statements below.
        let registered = unsafe { reactor.register(a.as_fd())? };
        assert!(reactor.registered_fds()?.contains(&a.as_raw_fd()));
        reactor.deregister(a.as_fd(), registered, &mut Vec::new());
        assert_eq!(reactor.registered_fds()?, own);
        assert_eq!(reactor.slots_in_use(), 0);
        Ok(())
    }

    #[test]
    fn a_remote_deregistration_deletes_at_once_and_frees_the_slot_at_the_next_poll() -> io::Result<()> {
        let reactor = Reactor::<()>::new(1)?;
        let own = reactor.registered_fds()?; // the poller's wake-up descriptors
        let (a, _b) = UnixStream::pair()?;
        // SAFETY: `register` needs `a` open until the registration is passed to `deregister_remote`; `a`
        // lives to the end of this function and the registration is passed on the other thread, which is
        // joined before `a` is dropped.
        let registered = unsafe { reactor.register(a.as_fd())? };
        std::thread::scope(|scope| {
            scope.spawn(|| deregister_remote(a.as_fd(), registered));
        });
        assert_eq!(reactor.registered_fds()?, own);
        assert_eq!(reactor.slots_in_use(), 1);
        reactor.poll(Some(Duration::ZERO), &mut Vec::new())?;
        assert_eq!(reactor.slots_in_use(), 0);
        Ok(())
    }

    #[test]
    fn a_refused_registration_names_the_descriptor_and_frees_its_slot() -> io::Result<()> {
        let reactor = Reactor::<()>::new(1)?;
        // epoll refuses regular files (EPERM).
        let file = std::fs::File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))?;
        // SAFETY: `register` needs `file` open until the registration is
        // deregistered; this one fails, so there is none, and `file` lives
        // to the end of the function anyway.
        let err = unsafe { reactor.register(file.as_fd()) }.expect_err("epoll does not take regular files");
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        let message = err.to_string();
        assert!(message.contains(&format!("cannot register descriptor {}", file.as_raw_fd())), "{message}");
        assert_eq!(reactor.slots_in_use(), 0);
        Ok(())
    }

    #[test]
    fn errors_of_limits_say_which_limit_to_raise() {
        let full = register_error(7, io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(full.to_string().contains("fs.epoll.max_user_watches"), "{full}");
        // Kept as the OS error, so that the accept loop backs off.
        let memory = register_error(7, io::Error::from_raw_os_error(libc::ENOMEM));
        assert_eq!(memory.raw_os_error(), Some(libc::ENOMEM));
        let descriptors = poller_error(io::Error::from_raw_os_error(libc::EMFILE));
        assert!(descriptors.to_string().contains("ulimit -n"), "{descriptors}");
    }
}
