//! Timeouts and deadlines as scopes, and shields for cleanup that must not
//! be interrupted.
//!
//! ```
//! use std::io::Read;
//! use std::time::Duration;
//!
//! green::run(|| {
//!     let (reader, _writer) = green::net::UnixStream::pair().unwrap();
//!     // Nothing is ever written: the read is cancelled when the scope's
//!     // deadline passes (it fails with a cancellation error), and the
//!     // scope reports that its deadline did it.
//!     let outcome = green::timeout(Duration::from_millis(10), || {
//!         let err = (&reader).read(&mut [0; 16]).unwrap_err();
//!         assert!(green::is_cancelled(&err));
//!     });
//!     assert!(outcome.is_err());
//! });
//! ```
//!
//! See `task/cancel_state.rs` for the rules: the nearest deadline wins,
//! delivery is level-triggered, a timeout belongs to the scope that set it,
//! and a shield hides every deadline and cancel request outside it.
//! [`FrameGuard`] is how every scope function opens its frame, also
//! [`crate::scope()`], whose body runs inside a frame that its failing
//! children cancel.

use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::task::cancel_state::FrameId;
use crate::task::cell::TaskCell;

/// The deadline of a [`timeout`] or [`deadline`] scope passed while its
/// body was blocked (the blocking call failed with a cancellation error,
/// and the body's result was discarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    /// The scope's deadline.
    deadline: Instant,
}

impl Elapsed {
    /// The deadline that passed.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("green: the deadline of a timeout scope passed")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `body` with a deadline `duration` from now; see [`deadline`].
///
/// A duration so long that its deadline cannot be represented (such as
/// [`Duration::MAX`]) means no deadline: `body` runs to the end, and can
/// still be cancelled from outside.
///
/// ```
/// use std::time::Duration;
/// green::run(|| {
///     let never = green::timeout(Duration::MAX, || {
///         green::sleep(Duration::from_millis(1)).map(|()| "slept")
///     });
///     assert_eq!(never, Ok(Ok("slept")));
/// });
/// ```
///
/// # Panics
///
/// Outside a coroutine, or if `body` panics.
pub fn timeout<T>(duration: Duration, body: impl FnOnce() -> T) -> Result<T, Elapsed> {
    match Instant::now().checked_add(duration) {
        Some(at) => deadline(at, body),
        // No deadline: nothing to open a frame for.
        None => Ok(body()),
    }
}

/// Runs `body`; if `at` passes while it is blocked, the blocking call is
/// cancelled (it fails with its cancellation error, and so does every
/// later one in the scope), and once `body` returns, its result is
/// replaced by `Err(Elapsed)`.
///
/// Scopes nest, and the nearest deadline wins. A timeout belongs to the
/// scope that set it: when an inner scope's deadline passes, the inner
/// scope returns `Err(Elapsed)` and the outer one carries on; when the
/// outer one's passes, both are cancelled, and each reports its own.
/// If `body` finishes without being cancelled by this deadline, its result
/// is returned even if the deadline has passed meanwhile.
///
/// ```
/// use std::time::{Duration, Instant};
/// green::run(|| {
///     let outer = green::timeout(Duration::from_secs(60), || {
///         let inner = green::timeout(Duration::from_millis(5), || {
///             green::sleep(Duration::from_secs(10))
///         });
///         assert!(inner.is_err(), "the inner deadline passed");
///         "the outer scope carried on"
///     });
///     assert_eq!(outer, Ok("the outer scope carried on"));
/// });
/// ```
///
/// # Panics
///
/// Outside a coroutine: a plain thread has no scheduler to cancel its
/// blocking calls. If `body` panics, the panic passes through (the scope is
/// closed on the way).
pub fn deadline<T>(at: Instant, body: impl FnOnce() -> T) -> Result<T, Elapsed> {
    let frame = FrameGuard::open(Some(at), false, "green::timeout and green::deadline");
    let value = body();
    if frame.close() { Err(Elapsed { deadline: at }) } else { Ok(value) }
}

/// Runs `body` where no cancellation from outside reaches it: neither the
/// deadlines of enclosing timeout scopes nor a cancel request of the task.
/// Timeout scopes opened inside still apply. For cleanup that must finish,
/// such as a goodbye message or a flush; pair it with a timeout inside so
/// it cannot hang forever.
///
/// ```
/// use std::time::Duration;
/// green::run(|| {
///     let outcome = green::timeout(Duration::from_millis(1), || {
///         green::shield(|| green::sleep(Duration::from_millis(20)))
///     });
///     // The sleep inside the shield ran to the end; nothing was cancelled
///     // by the deadline, so the scope returns the body's value.
///     assert!(outcome.is_ok());
/// });
/// ```
///
/// # Panics
///
/// Outside a coroutine.
pub fn shield<T>(body: impl FnOnce() -> T) -> T {
    let frame = FrameGuard::open(None, true, "green::shield");
    let value = body();
    frame.close();
    value
}

/// An open frame on the running task's cancel stack (see
/// `task/cancel_state.rs`); closed on drop, so a panic in the body, or the
/// unwind that tears the task down at shutdown, closes it too.
pub(crate) struct FrameGuard {
    /// The task whose stack holds the frame: the one that opened it, which
    /// is also the one that closes it (a frame never leaves its task).
    task: Rc<TaskCell>,
    /// The frame, `None` once closed.
    id: Option<FrameId>,
}

impl FrameGuard {
    /// Opens a frame on the running task: with a deadline, a shield, or
    /// neither (a cancel scope, cancelled by hand through
    /// `CancelState::cancel_frame`).
    ///
    /// # Panics
    ///
    /// Outside a coroutine; `what` names the caller in the message.
    pub(crate) fn open(deadline: Option<Instant>, shield: bool, what: &str) -> FrameGuard {
        let task = Context::with(Context::running_task)
            .flatten()
            .unwrap_or_else(|| panic!("{what} called outside a coroutine (start one with green::run)"));
        let id = task.cancel.push(deadline, shield);
        FrameGuard { task, id: Some(id) }
    }

    /// The frame, to cancel it from elsewhere while it is open.
    pub(crate) fn id(&self) -> Option<FrameId> {
        self.id
    }

    /// Closes the frame; returns whether it cancelled something (its
    /// deadline passed, or it was cancelled, while something in it
    /// waited).
    pub(crate) fn close(mut self) -> bool {
        self.pop()
    }

    fn pop(&mut self) -> bool {
        match self.id.take() {
            Some(id) => self.task.cancel.pop(id),
            None => false,
        }
    }
}

impl Drop for FrameGuard {
    fn drop(&mut self) {
        self.pop();
    }
}

impl fmt::Debug for FrameGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameGuard").field("task", &self.task.id()).field("open", &self.id.is_some()).finish()
    }
}
