//! Starting a runtime: [`run`] and [`Builder`].

use std::sync::Arc;

use crate::scheduler::{Config, Scheduler};
use crate::stack::Protection;

/// Default usable stack size of a coroutine: 256 KiB of address space, of
/// which only the pages a coroutine touches cost memory.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Runs `main` as the main coroutine of a new runtime on the calling thread
/// and returns its value.
///
/// The thread becomes the runtime's scheduler until `main` returns. `main`
/// may borrow from the caller, since it cannot outlive this call.
///
/// When `main` returns, every coroutine still alive is cancelled: its stack
/// is unwound, so its destructors run and nothing it owns leaks, and its
/// `JoinHandle` reports [`JoinError::is_cancelled`](crate::JoinError::is_cancelled).
/// Join the coroutines whose work must complete.
///
/// # Panics
///
/// * If `main` panics, `run` panics with the same payload after tearing
///   down the other coroutines.
/// * If called inside a running runtime (one thread runs one runtime at a
///   time; use [`spawn`](crate::spawn) there).
/// * If the runtime cannot start (no epoll instance, no stack for `main`).
///
/// # Examples
///
/// ```
/// let greeting = String::from("hello");
/// let n = green::run(|| {
///     let child = green::spawn(|| 2 + 2);
///     greeting.len() + child.join().unwrap()
/// });
/// assert_eq!(n, 9);
/// ```
pub fn run<F, T>(main: F) -> T
where
    F: FnOnce() -> T,
{
    Builder::new().run(main)
}

/// Options for a runtime.
///
/// ```
/// let value = green::Builder::new()
///     .stack_size(64 * 1024)
///     .name("entry")
///     .run(|| green::current().name().map(str::to_owned));
/// assert_eq!(value.as_deref(), Some("entry"));
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    /// Default stack size of coroutines spawned in the runtime.
    stack_size: usize,
    /// Name of the main coroutine.
    name: Option<Arc<str>>,
    /// How guard pages below stacks are protected.
    protection: Protection,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Default options: [`DEFAULT_STACK_SIZE`], main coroutine named
    /// `"main"`, [`Protection::Auto`].
    pub fn new() -> Builder {
        Builder {
            stack_size: DEFAULT_STACK_SIZE,
            name: Some(Arc::from("main")),
            protection: Protection::Auto,
        }
    }

    /// Sets the default usable stack size in bytes of every coroutine of
    /// the runtime, the main one included. [`task::Builder::stack_size`]
    /// overrides it for one coroutine.
    ///
    /// [`task::Builder::stack_size`]: crate::task::Builder::stack_size
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Names the main coroutine (default `"main"`).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// Chooses how the page below each stack catches overflows; see
    /// [`Protection`]. The default, [`Protection::Auto`], is right unless
    /// you are testing a particular mechanism.
    pub fn stack_protection(mut self, protection: Protection) -> Builder {
        self.protection = protection;
        self
    }

    /// Runs `main` on a runtime with these options; see [`run`].
    pub fn run<F, T>(self, main: F) -> T
    where
        F: FnOnce() -> T,
    {
        let config = Config { stack_size: self.stack_size, protection: self.protection };
        Scheduler::run(config, self.name, main)
    }
}
