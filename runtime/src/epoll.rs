//! The runtime's epoll instance, waited on with one system call per poll.
//!
//! `polling::Poller` creates the epoll instance and deletes descriptors
//! from it; its own `wait` and `add` are not used. That `wait`
//! makes five system calls whatever happens: it re-arms a `timerfd` for the
//! deadline (`timerfd_settime` and an `epoll_ctl` to re-enable the one-shot
//! timer), waits (`epoll_pwait`), then empties its notification `eventfd`
//! (`read`) and re-enables it (`epoll_ctl`), even when neither fired. The
//! runtime polls at every idle moment, so those four extra calls were half
//! the system calls of a socket round trip between two coroutines (16
//! instead of 8; PERF.md, "System calls per operation").
//!
//! [`Epoll::wait`] instead waits with `epoll_pwait2` on the same instance:
//! its timeout has nanosecond precision, so no timer descriptor is needed
//! (where the kernel lacks it, or a seccomp filter refuses it, `epoll_wait`
//! with the timeout rounded up to the next millisecond). Wake-ups from
//! other threads ([`Epoll::notify`]) go through an `eventfd` of this
//! module's, registered edge-triggered, so it is never read or re-armed:
//! each write is a new edge, reported once. A flag keeps a burst of
//! notifications to one write per poll: a notifier that finds it set knows
//! that a write is already on its way to the poll, and that the poll will
//! see what it posted (the ordering argument is at [`Epoll::notify`]).
//!
//! Descriptors are added here too ([`Epoll::add`]), with `EPOLLRDHUP`,
//! which `polling` never asks for: the reactor needs to know that a peer has
//! shut its side down (`reactor.rs`, `Reactor::mark_drained`).
//!
//! `polling`'s own timer and notifier stay registered (it adds them when it
//! creates the instance) but never fire: nothing arms the timer or calls
//! `Poller::notify`. Their events would carry its reserved key,
//! `usize::MAX`, which matches no source of the reactor.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use polling::{Event, PollMode, Poller};

/// The key of this module's wake-up descriptor: above any key the reactor
/// makes (`reactor.rs` puts a slab index in the low 32 bits, and a slab
/// never reaches four billion entries) and below `polling`'s `usize::MAX`.
pub(crate) const WAKE_KEY: u64 = u64::MAX - 1;

/// Whether `epoll_pwait2` has been refused by this kernel; then every wait
/// uses `epoll_wait`. Process-wide: the kernel does not change.
static NO_PWAIT2: AtomicBool = AtomicBool::new(false);

/// One runtime's epoll instance and its wake-up descriptor.
#[derive(Debug)]
pub(crate) struct Epoll {
    /// Registers descriptors; owns the instance.
    poller: Poller,
    /// An `eventfd` registered edge-triggered under [`WAKE_KEY`].
    wake: OwnedFd,
    /// Set by the notifier that writes `wake`, cleared by the poll after its
    /// wait: while it is set, other notifiers need not write.
    notified: AtomicBool,
}

/// Readiness of one event, as `polling` reads it (`epoll.rs` of that
/// crate): a hang-up or an error wakes both directions, so that a waiting
/// operation is retried and reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ready {
    /// The key the descriptor was registered with.
    pub(crate) key: u64,
    /// Readable, hung up, or in error.
    pub(crate) readable: bool,
    /// Writable, hung up, or in error.
    pub(crate) writable: bool,
    /// The peer will send nothing more (`EPOLLRDHUP`), the connection hung
    /// up, or it is in error: every later read returns at once.
    pub(crate) read_closed: bool,
}

/// Events `epoll_wait` may return in one call.
const EVENTS: usize = 1024;

/// Storage for the events of one wait, reused across polls.
pub(crate) struct Events {
    /// The kernel fills the first `len` entries.
    list: Vec<libc::epoll_event>,
    /// How many entries the last wait filled.
    len: usize,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("len", &self.len).finish_non_exhaustive()
    }
}

impl Events {
    /// Room for [`EVENTS`] events.
    pub(crate) fn new() -> Events {
        Events { list: vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS], len: 0 }
    }

    /// The events of the last wait, without the wake-up descriptor's.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Ready> + '_ {
        let read =
            (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLPRI) as u32;
        let write = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        let closed = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        self.list[..self.len].iter().filter(|e| e.u64 != WAKE_KEY).map(move |e| Ready {
            key: e.u64,
            readable: e.events & read != 0,
            writable: e.events & write != 0,
            read_closed: e.events & closed != 0,
        })
    }

    /// How many events the last wait returned (the wake-up included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Epoll {
    /// A new epoll instance with its wake-up descriptor registered.
    ///
    /// # Errors
    ///
    /// The error of `epoll_create1`, `eventfd` or `epoll_ctl`.
    pub(crate) fn new() -> io::Result<Epoll> {
        let poller = Poller::new()?;
        // SAFETY: `eventfd` takes no pointers; it returns a new descriptor
        // or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by `eventfd`, is open, and nothing
        // else owns it.
        let wake = unsafe { OwnedFd::from_raw_fd(fd) };
        let key = usize::try_from(WAKE_KEY).map_err(|_| io::Error::other("the wake-up key needs 64 bits"))?;
        // SAFETY: `add_with_mode` needs `wake` deleted before it closes; it is declared after `poller` in
        // `Epoll`, so it is dropped (closed) after `poller` has closed the epoll instance, and an instance
        // that is gone registers nothing.
        unsafe { poller.add_with_mode(&wake, Event::readable(key), PollMode::Edge)? };
        Ok(Epoll { poller, wake, notified: AtomicBool::new(false) })
    }

    /// Registers `fd` under `key`, edge-triggered, for reading (with
    /// `EPOLLRDHUP`, so that a peer's shutdown is an event of its own:
    /// `polling` does not ask for it) and writing.
    ///
    /// # Safety
    ///
    /// `fd` must be deleted with [`Epoll::delete`] before it closes: a
    /// descriptor closed while registered stays in the epoll set for as
    /// long as another descriptor shares its open file, and its events
    /// would carry `key` to whoever holds that key next. (`polling`'s own
    /// `add` has the same contract.)
    pub(crate) unsafe fn add(&self, fd: BorrowedFd<'_>, key: usize) -> io::Result<()> {
        let flags = libc::EPOLLIN
            | libc::EPOLLRDHUP
            | libc::EPOLLPRI
            | libc::EPOLLOUT
            | libc::EPOLLHUP
            | libc::EPOLLERR
            | libc::EPOLLET;
        let mut event = libc::epoll_event { events: flags as u32, u64: key as u64 };
        // SAFETY: `epoll_ctl` reads the event, alive for the call, and
        // registers `fd`, which the caller keeps open until it is deleted;
        // the epoll descriptor is the poller's, open for as long as `self`.
        let rc = unsafe {
            libc::epoll_ctl(self.poller.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut event)
        };
        if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    /// Deletes `fd` from the epoll set. An error means it was not in it.
    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.poller.delete(fd)
    }

    /// Waits up to `timeout` (None: until an event) and fills `events`.
    /// An interrupted wait (`EINTR`) returns no events and no error.
    ///
    /// # Errors
    ///
    /// What `epoll_pwait2` or `epoll_wait` returned other than `EINTR`.
    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.len = 0;
        let filled = if NO_PWAIT2.load(Ordering::Relaxed) {
            self.wait_millis(events, timeout)
        } else {
            match self.wait_nanos(events, timeout) {
                Err(err) if matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
                    NO_PWAIT2.store(true, Ordering::Relaxed);
                    self.wait_millis(events, timeout)
                }
                other => other,
            }
        };
        // After the wait, before the caller reads the inbox: see `notify`.
        self.notified.swap(false, Ordering::AcqRel);
        match filled {
            Ok(len) => events.len = len,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
        Ok(())
    }

    /// `epoll_pwait2` with the timeout as it is.
    fn wait_nanos(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        let timespec = timeout.map(|t| libc::timespec {
            tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: t.subsec_nanos().into(),
        });
        let timespec_ptr = timespec.as_ref().map_or(std::ptr::null(), std::ptr::from_ref);
        let capacity = libc::c_int::try_from(events.list.len()).unwrap_or(libc::c_int::MAX);
        let (epfd, list) = (self.poller.as_raw_fd(), events.list.as_mut_ptr());
        // SAFETY: epoll_pwait2 writes at most `capacity` entries to `list` (it has that many), reads the
        // timespec (alive for the call) or nothing if null, and a null mask leaves the mask as it is;
        // `epfd` is the poller's, open as long as `self`.
        let filled = unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                epfd,
                list,
                capacity,
                timespec_ptr,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
        usize::try_from(filled).map_err(|_| io::Error::last_os_error())
    }

    /// `epoll_wait` with the timeout rounded up to whole milliseconds, so
    /// that a wait never ends before a timer is due.
    fn wait_millis(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        let millis = timeout.map_or(-1, |t| {
            let rounded = t.as_nanos().div_ceil(1_000_000);
            libc::c_int::try_from(rounded).unwrap_or(libc::c_int::MAX)
        });
        let capacity = libc::c_int::try_from(events.list.len()).unwrap_or(libc::c_int::MAX);
        let (epfd, list) = (self.poller.as_raw_fd(), events.list.as_mut_ptr());
        // SAFETY: epoll_wait writes at most `capacity` entries to `list`, which has that many; `epfd` is
        // the poller's, open for as long as `self`.
        let filled = unsafe { libc::epoll_wait(epfd, list, capacity, millis) };
        usize::try_from(filled).map_err(|_| io::Error::last_os_error())
    }

    /// Ends the current or the next [`Epoll::wait`]. Safe from any thread.
    ///
    /// Only the first notifier after a wait writes the `eventfd`; later ones
    /// find `notified` set and return. None of them is lost: a notifier
    /// that posts something (the inbox) does so before it sets `notified`,
    /// and the wait clears `notified` with a read-modify-write after it
    /// returns, before the scheduler reads what was posted. If a notifier
    /// found the flag set, the clearing swap comes after its own in the
    /// flag's order, reads it, and so (acquire on release) makes its post
    /// visible to the scheduler; if it found the flag clear, it writes, and
    /// the next wait returns at once.
    pub(crate) fn notify(&self) {
        if self.notified.swap(true, Ordering::AcqRel) {
            return;
        }
        let one = 1u64.to_ne_bytes();
        // SAFETY: `write` reads the 8 bytes of `one`, alive for the call;
        // `wake` is open for as long as `self`.
        let written = unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        if written < 0 {
            // The counter is full (`EAGAIN`, after 2^64 - 2 writes that no
            // one read): reading it resets it, and the edge of the next
            // write wakes the wait as well as this one would have.
            self.reset();
            // SAFETY: as above.
            unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        }
    }

    /// Empties the wake-up counter.
    fn reset(&self) {
        let mut value = [0u8; 8];
        // SAFETY: `read` writes at most 8 bytes into `value`, which has 8;
        // `wake` is open for as long as `self`.
        unsafe { libc::read(self.wake.as_raw_fd(), value.as_mut_ptr().cast(), value.len()) };
    }

    /// The epoll descriptor (for `/proc/self/fdinfo` in tests).
    #[cfg(test)]
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        self.poller.as_raw_fd()
    }

    /// The wake-up descriptor (for tests).
    #[cfg(test)]
    pub(crate) fn wake_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.wake)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_ends_the_next_wait_and_is_not_an_event() -> io::Result<()> {
        let epoll = Epoll::new()?;
        let mut events = Events::new();
        epoll.notify();
        epoll.notify(); // coalesced: one write
        epoll.wait(&mut events, None)?;
        assert_eq!(events.len(), 1, "the wake-up, once");
        assert_eq!(events.iter().count(), 0, "the wake-up is not a source's event");
        // Edge-triggered: the counter still holds a value, but no new edge.
        epoll.wait(&mut events, Some(Duration::ZERO))?;
        assert_eq!(events.len(), 0);
        // The flag was cleared by the wait: the next notifier writes again.
        epoll.notify();
        epoll.wait(&mut events, Some(Duration::from_secs(60)))?;
        assert_eq!(events.len(), 1);
        Ok(())
    }

    #[test]
    fn a_notification_from_another_thread_ends_a_wait_without_timeout() -> io::Result<()> {
        let epoll = std::sync::Arc::new(Epoll::new()?);
        let notifier = {
            let epoll = epoll.clone();
            std::thread::spawn(move || epoll.notify())
        };
        let mut events = Events::new();
        epoll.wait(&mut events, None)?;
        assert_eq!(events.len(), 1);
        notifier.join().map_err(|_| io::Error::other("the notifier panicked"))?;
        Ok(())
    }

    #[test]
    fn a_full_counter_is_reset_and_still_wakes() -> io::Result<()> {
        let epoll = Epoll::new()?;
        let mut events = Events::new();
        let almost_full = (u64::MAX - 1).to_ne_bytes();
        // SAFETY: writes the 8 bytes of `almost_full` to the open eventfd.
        let written = unsafe { libc::write(epoll.wake_fd().as_raw_fd(), almost_full.as_ptr().cast(), 8) };
        assert_eq!(written, 8);
        epoll.wait(&mut events, Some(Duration::ZERO))?;
        epoll.notify(); // EAGAIN, reset, write
        epoll.wait(&mut events, Some(Duration::ZERO))?;
        assert_eq!(events.len(), 1, "the notification after the reset");
        Ok(())
    }

    #[test]
    fn both_waits_time_out_without_events() -> io::Result<()> {
        let epoll = Epoll::new()?;
        let mut events = Events::new();
        let start = std::time::Instant::now();
        epoll.wait(&mut events, Some(Duration::from_millis(2)))?;
        epoll.wait_millis(&mut events, Some(Duration::from_micros(1))).map(|n| events.len = n)?;
        assert_eq!(events.len(), 0);
        assert!(start.elapsed() >= Duration::from_millis(2), "a wait never ends before its timeout");
        let _ = epoll.raw_fd();
        Ok(())
    }
}
