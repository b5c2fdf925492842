//! What a parked coroutine waits for, as one word: [`WaitKind`]. Plain
//! data, depending on nothing else in the crate, so that the lowest layers
//! (the wait queues' touches, the task record) can name a wait without
//! knowing the dump that reads it.

/// The kind of thing a parked coroutine waits for, in a [`Dump`](crate::Dump).
///
/// A coroutine records it when it parks: its wait queue carries it (set
/// once, when the primitive is made), or its park names it (a socket, a
/// join, a sleep). [`WaitKind::as_str`] is the name the text and the JSON
/// of a dump use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[repr(u8)]
pub enum WaitKind {
    /// Nothing recorded: a wait the runtime cannot name.
    Unknown = 0,
    /// A socket to become readable (a read, a receive, an accept).
    Read,
    /// A socket to become writable (a write, a send, a connect).
    Write,
    /// Room in a channel (a send).
    ChannelSend,
    /// A message on a channel (a receive).
    ChannelRecv,
    /// One of several channel operations (a select).
    Select,
    /// A [`Mutex`](crate::sync::Mutex).
    Mutex,
    /// An [`RwLock`](crate::sync::RwLock), to read or to write.
    RwLock,
    /// Permits of a [`Semaphore`](crate::sync::Semaphore).
    Semaphore,
    /// A notification of a [`Condvar`](crate::sync::Condvar).
    Condvar,
    /// The other parties of a [`Barrier`](crate::sync::Barrier).
    Barrier,
    /// An [`Event`](crate::sync::Event) to be set.
    Event,
    /// The jobs of a [`WaitGroup`](crate::sync::WaitGroup).
    WaitGroup,
    /// The initialiser of a [`OnceCell`](crate::sync::OnceCell).
    OnceCell,
    /// Another coroutine to finish (a join).
    Join,
    /// The children of a [`green::scope`](crate::scope).
    Scope,
    /// The members of a [`TaskGroup`](crate::TaskGroup).
    TaskGroup,
    /// A sleep (with its deadline, or until cancelled).
    Sleep,
    /// A pause before a socket operation is tried again (out of file
    /// descriptors, a full Unix socket).
    Backoff,
    /// A closure on the blocking pool ([`green::blocking`](crate::blocking)),
    /// or room in the pool's queue.
    BlockingPool,
    /// Work for an idle worker: the service coroutine of a worker of a
    /// runtime of several.
    Jobs,
}

impl WaitKind {
    /// Every kind, in the order of their numbers (see [`WaitKind::from_u8`]).
    const ALL: [WaitKind; 21] = [
        WaitKind::Unknown,
        WaitKind::Read,
        WaitKind::Write,
        WaitKind::ChannelSend,
        WaitKind::ChannelRecv,
        WaitKind::Select,
        WaitKind::Mutex,
        WaitKind::RwLock,
        WaitKind::Semaphore,
        WaitKind::Condvar,
        WaitKind::Barrier,
        WaitKind::Event,
        WaitKind::WaitGroup,
        WaitKind::OnceCell,
        WaitKind::Join,
        WaitKind::Scope,
        WaitKind::TaskGroup,
        WaitKind::Sleep,
        WaitKind::Backoff,
        WaitKind::BlockingPool,
        WaitKind::Jobs,
    ];

    /// The kind numbered `n` (`kind as u8`); [`WaitKind::Unknown`] for a
    /// number no kind has.
    pub(crate) fn from_u8(n: u8) -> WaitKind {
        WaitKind::ALL.get(usize::from(n)).copied().unwrap_or(WaitKind::Unknown)
    }

    /// The kind's name in a dump: `"channel recv"`, `"mutex"`, `"join"`, ...
    ///
    /// ```
    /// assert_eq!(green::dump::WaitKind::ChannelRecv.as_str(), "channel recv");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            WaitKind::Unknown => "unknown",
            WaitKind::Read => "socket read",
            WaitKind::Write => "socket write",
            WaitKind::ChannelSend => "channel send",
            WaitKind::ChannelRecv => "channel recv",
            WaitKind::Select => "select",
            WaitKind::Mutex => "mutex",
            WaitKind::RwLock => "rwlock",
            WaitKind::Semaphore => "semaphore",
            WaitKind::Condvar => "condvar",
            WaitKind::Barrier => "barrier",
            WaitKind::Event => "event",
            WaitKind::WaitGroup => "waitgroup",
            WaitKind::OnceCell => "oncecell",
            WaitKind::Join => "join",
            WaitKind::Scope => "scope",
            WaitKind::TaskGroup => "taskgroup",
            WaitKind::Sleep => "sleep",
            WaitKind::Backoff => "backoff",
            WaitKind::BlockingPool => "blocking pool",
            WaitKind::Jobs => "jobs",
        }
    }

    /// The wait in the words of a deadlock report: `"a channel"`, `"a
    /// Mutex"`, `"a join of another coroutine"`, ...
    pub(crate) fn phrase(self) -> &'static str {
        match self {
            WaitKind::Unknown => "something unknown",
            WaitKind::Read | WaitKind::Write | WaitKind::Backoff => "I/O",
            WaitKind::ChannelSend | WaitKind::ChannelRecv => "a channel",
            WaitKind::Select => "a select over several channels (or a wait in no known queue)",
            WaitKind::Mutex => "a Mutex",
            WaitKind::RwLock => "an RwLock",
            WaitKind::Semaphore => "a Semaphore",
            WaitKind::Condvar => "a Condvar",
            WaitKind::Barrier => "a Barrier",
            WaitKind::Event => "an Event",
            WaitKind::WaitGroup => "a WaitGroup",
            WaitKind::OnceCell => "a OnceCell",
            WaitKind::Join => "a join of another coroutine",
            WaitKind::Scope => "the children of a green::scope",
            WaitKind::TaskGroup => "a TaskGroup",
            // A report comes only when no timer is armed.
            WaitKind::Sleep => "a sleep with no deadline",
            WaitKind::BlockingPool => "the blocking pool",
            WaitKind::Jobs => "jobs for its worker",
        }
    }
}

impl std::fmt::Display for WaitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_comes_back_from_its_number() {
        for (n, kind) in WaitKind::ALL.iter().enumerate() {
            assert_eq!(*kind as u8 as usize, n);
            assert_eq!(WaitKind::from_u8(n as u8), *kind);
        }
        assert_eq!(WaitKind::from_u8(200), WaitKind::Unknown);
    }
}
