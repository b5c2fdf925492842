//! Backtraces of coroutines for the dump: the frames of a suspended
//! coroutine's own stack, named.
//!
//! # How a suspended stack is read
//!
//! A suspended coroutine's stack is not on any thread's call chain, so no
//! unwinder reaches it from the outside, and starting one from the saved
//! stack pointer would mean an unwinder of our own (the registers a
//! switch saves are not those the unwind tables describe at that point).
//! Instead the dump **resumes the coroutine into a capture step**: the
//! worker that owns the coroutine leaves a [`Request`] on its thread and
//! resumes it; every suspension of a coroutine goes through one function
//! (`park.rs`, `suspend`), which, back from the switch with a request
//! waiting, takes it, walks its own stack with the ordinary unwinder
//! ([`record`]) and suspends again at once, before anything else of the
//! coroutine runs.
//! From the coroutine's point of view nothing happened: its wait
//! registrations, its state and its wake-up reason are untouched, and no
//! code of its own ran.
//!
//! Why this is sound: the coroutine runs on the thread it always runs on
//! (its own worker answers the dump, `collect.rs`); the capture step reads
//! only this module's thread-locals; it resumes
//! only suspended coroutines, never the running one, from the scheduler's
//! loop between two switches or from the coroutine making the dump, with
//! no borrow of the runtime's state held; and it needs [`CAPTURE_ROOM`]
//! bytes of free stack, which it checks first: a coroutine parked deeper
//! than that is left without a backtrace rather than pushed into its
//! guard page.
//!
//! Naming the frames (reading the program's DWARF line tables) is done by
//! the `backtrace` crate, the code std uses for its own backtraces, which
//! std does not expose: `std::backtrace::Backtrace` neither gives the
//! addresses (to group identical stacks and name each address once) nor
//! stops at the bottom of a coroutine's stack.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The free stack the capture step needs below the frame that suspended.
/// The unwinder used 4.9 KiB on its first walk in a thread and 1.7 KiB on
/// later ones on the machine this was measured on (Linux, glibc, the
/// unwinder of libgcc; debug builds; release builds a little less); the
/// thread that resumes coroutines for a dump walks its own stack first
/// ([`warm_up`]), so that their walks are later ones.
pub const CAPTURE_ROOM: usize = 12 * 1024;

/// The most frames kept of one stack, innermost first: deeper recursion
/// is cut there.
pub const MAX_FRAMES: usize = 256;

/// One frame of a coroutine's backtrace. A call the compiler inlined into
/// its caller is a frame of its own, at the same address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Frame {
    /// The return address into the frame's function (its call is the
    /// instruction before, which the symbol was looked up at). Frames
    /// inlined into one function share it.
    pub ip: usize,
    /// The function, demangled, without its hash; `None` where the
    /// program has no symbol for the address.
    pub function: Option<String>,
    /// The source file, where the program has line tables.
    pub file: Option<String>,
    /// The line in `file`.
    pub line: Option<u32>,
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.function {
            Some(function) => write!(f, "{function}")?,
            None => write!(f, "{:#x}", self.ip)?,
        }
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " at {file}:{line}"),
            (Some(file), None) => write!(f, " at {file}"),
            _ => Ok(()),
        }
    }
}

/// A coroutine's backtrace in a dump, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backtrace {
    /// The frames of the coroutine's stack, innermost first: the call
    /// that parked or yielded (or made the dump) at the top, the
    /// coroutine's entry at the bottom. Coroutines with identical stacks
    /// share one list.
    Captured(Arc<[Frame]>),
    /// The dump was made without backtraces.
    NotRequested,
    /// The coroutine has not started: it has no stack yet.
    NotStarted,
    /// The coroutine runs on another worker at this moment.
    Running,
    /// The coroutine parked with less than [`CAPTURE_ROOM`] bytes of its
    /// stack left.
    NoRoom,
    /// The dump was made where coroutines cannot be resumed (on a
    /// runtime's thread outside its coroutines), or the coroutine's
    /// record was in use.
    Unavailable,
}

impl Backtrace {
    /// The frames, if captured.
    pub fn frames(&self) -> Option<&[Frame]> {
        match self {
            Backtrace::Captured(frames) => Some(frames),
            _ => None,
        }
    }

    /// Why there are no frames, in words; `None` if captured.
    pub fn missing(&self) -> Option<&'static str> {
        match self {
            Backtrace::Captured(_) => None,
            Backtrace::NotRequested => Some("not requested"),
            Backtrace::NotStarted => Some("not started"),
            Backtrace::Running => Some("running"),
            Backtrace::NoRoom => Some("too little stack left to capture"),
            Backtrace::Unavailable => Some("unavailable"),
        }
    }

    /// Whether some frame's function name contains `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.frames().is_some_and(|frames| {
            frames.iter().any(|f| f.function.as_deref().is_some_and(|n| n.contains(name)))
        })
    }
}

/// A stack as captured, before its frames are named: return addresses,
/// innermost first, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Raw {
    /// The addresses.
    Addresses(Box<[usize]>),
    /// No capture; the [`Backtrace`] to report instead.
    Missing(Backtrace),
}

/// What the dump asks of the coroutine it resumes: read your stack, from
/// `limit` to `base`, and suspend again through `yielder` (the task's
/// `TaskYielder`, opaque here).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    /// The resumed task's yielder.
    pub(crate) yielder: *const (),
    /// The lowest usable address of its stack.
    pub(crate) limit: usize,
    /// The highest (exclusive).
    pub(crate) base: usize,
}

thread_local! {
    /// The request of the dump resuming a coroutine on this thread, from
    /// the resume until the coroutine takes it. A thread-local, not a flag
    /// of the task record: every switch checks it, and a thread-local is
    /// one load that keeps nothing alive across the switch.
    static REQUEST: Cell<Option<Request>> = const { Cell::new(None) };
    /// Where the capture step leaves the stack it read, for the worker
    /// that resumed it.
    static CAPTURED: RefCell<Option<Raw>> = const { RefCell::new(None) };
}

/// Whether a dump resumed the coroutine calling this (every suspension
/// asks, back from its switch).
#[inline(always)]
pub(crate) fn capture_requested() -> bool {
    REQUEST.with(|request| request.get().is_some())
}

/// Asks the next coroutine resumed on this thread for its stack. The
/// caller resumes it at once, and then calls [`end_request`].
pub(crate) fn request(request: Request) {
    REQUEST.with(|slot| slot.set(Some(request)));
}

/// The request for the calling coroutine's stack, taken.
pub(crate) fn take_request() -> Option<Request> {
    REQUEST.with(Cell::take)
}

/// Withdraws a request the resumed coroutine did not take (it always
/// does); returns whether there was one.
pub(crate) fn end_request() -> bool {
    REQUEST.with(Cell::take).is_some()
}

/// Reads the calling coroutine's stack into this thread's capture slot
/// (see [`take_captured`]): the frames above the one of the function that
/// starts at `anchor` (the capture step, or the dump itself: the frames of
/// the walk are left out with it), up to `base`, the top of the
/// coroutine's stack. Needs [`CAPTURE_ROOM`] bytes above `limit`, the
/// bottom of the stack.
#[inline(never)]
pub(crate) fn record(anchor: usize, limit: usize, base: usize) {
    let here = 0u8;
    let raw = if std::ptr::from_ref(&here).addr().saturating_sub(limit) < CAPTURE_ROOM {
        Raw::Missing(Backtrace::NoRoom)
    } else {
        Raw::Addresses(walk(anchor, limit, base))
    };
    CAPTURED.with(|slot| *slot.borrow_mut() = Some(raw));
}

/// The return addresses of the frames above `anchor`'s on the stack
/// between `limit` and `base`, innermost first; all of them if no frame is
/// `anchor`'s.
fn walk(anchor: usize, limit: usize, base: usize) -> Box<[usize]> {
    let mut frames = Vec::with_capacity(48);
    let mut above = None;
    backtrace::trace(|frame| {
        // The canonical frame address: the caller's stack pointer at the
        // call. Off the coroutine's stack, the walk has left it for the
        // frames that resumed it, on another stack, higher or lower.
        if !(limit..=base).contains(&frame.sp().addr()) {
            return false;
        }
        frames.push(frame.ip().addr());
        // The start of the function the frame belongs to, from the unwind
        // tables.
        if above.is_none() && frame.symbol_address().addr() == anchor {
            above = Some(frames.len());
        }
        frames.len() < MAX_FRAMES + above.unwrap_or(MAX_FRAMES)
    });
    let kept = frames.split_off(above.unwrap_or(0));
    kept.into_iter().take(MAX_FRAMES).collect()
}

/// Walks the caller's stack once a thread, so that what the unwinder sets
/// up on its first walk in a thread (its caches, an allocator arena) is
/// set up there rather than on a suspended coroutine's stack. `limit`: the
/// bottom of the caller's stack if it is a coroutine's (then the walk needs
/// [`CAPTURE_ROOM`] above it, or waits for another call).
pub(crate) fn warm_up(limit: Option<usize>) {
    thread_local! {
        static WARM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    let here = 0u8;
    let room = limit.map_or(usize::MAX, |limit| std::ptr::from_ref(&here).addr().saturating_sub(limit));
    if room >= CAPTURE_ROOM && !WARM.replace(true) {
        backtrace::trace(|frame| {
            std::hint::black_box((frame.ip(), frame.sp(), frame.symbol_address()));
            true
        });
    }
}

/// What the last [`record`] on this thread left, if anything.
pub(crate) fn take_captured() -> Option<Raw> {
    CAPTURED.with(|slot| slot.borrow_mut().take())
}

/// Names the frames of stacks captured as addresses; the same stack is
/// named once, and shared.
#[derive(Default)]
pub(crate) struct Namer {
    /// Stacks named so far.
    stacks: HashMap<Box<[usize]>, Arc<[Frame]>>,
    /// Frames of each address named so far.
    addresses: HashMap<usize, Vec<Frame>>,
    /// The working directory, which source paths are shown relative to
    /// (as std's backtraces do); read at the first frame.
    here: Option<Option<std::path::PathBuf>>,
}

impl Namer {
    /// `raw` as a [`Backtrace`].
    pub(crate) fn name(&mut self, raw: Raw) -> Backtrace {
        let addresses = match raw {
            Raw::Missing(why) => return why,
            Raw::Addresses(addresses) => addresses,
        };
        if let Some(frames) = self.stacks.get(&addresses) {
            return Backtrace::Captured(frames.clone());
        }
        let mut frames = Vec::with_capacity(addresses.len());
        let here = self.here.get_or_insert_with(|| std::env::current_dir().ok());
        for &ip in addresses.iter() {
            let named = self.addresses.entry(ip).or_insert_with(|| symbols(ip, here.as_deref()));
            frames.extend(named.iter().cloned());
        }
        let frames: Arc<[Frame]> = frames.into();
        self.stacks.insert(addresses, frames.clone());
        Backtrace::Captured(frames)
    }
}

/// The frames at the return address `ip`: one per function inlined there,
/// innermost first; one unnamed frame if the program has no symbol for it.
/// Files under `here` are named relative to it.
fn symbols(ip: usize, here: Option<&std::path::Path>) -> Vec<Frame> {
    let mut frames = Vec::new();
    // A return address points after the call: the call itself is the
    // byte before, which is what the line tables should be asked about.
    let call = ip.saturating_sub(1);
    backtrace::resolve(std::ptr::without_provenance_mut(call), |symbol| {
        frames.push(Frame {
            ip,
            function: symbol.name().map(|name| format!("{name:#}")),
            file: symbol.filename().map(|file| {
                let relative = here.and_then(|here| file.strip_prefix(here).ok());
                relative.unwrap_or(file).display().to_string()
            }),
            line: symbol.lineno(),
        });
    });
    if frames.is_empty() {
        frames.push(Frame { ip, function: None, file: None, line: None });
    }
    frames
}
