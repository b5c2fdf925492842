//! Turning a stack overflow into a report instead of silent corruption.
//!
//! A coroutine that overflows its stack touches the guard page below it.
//! With a real guard (kernel guard region or `PROT_NONE` page) that access
//! raises `SIGSEGV`. The handler installed here runs on the thread's
//! alternate signal stack (the coroutine's own stack is exhausted), compares
//! the faulting address with the guard page of the coroutine that is
//! running on this thread, and if it matches writes
//!
//! ```text
//! coroutine 'worker-7' (id 12) has overflowed its stack of 65536 bytes
//! fatal runtime error: stack overflow; raise the stack size with
//! green::task::Builder::stack_size or green::Builder::stack_size
//! ```
//!
//! to stderr and aborts, as Rust does for threads. Any other fault is handed
//! to the handler that was installed before (normally the standard
//! library's, which reports overflows of thread stacks).
//!
//! The report is formatted into a fixed buffer ([`Message`], 512 bytes).
//! Everything but the name is bounded (two numbers of at most 20 digits and
//! fixed text), so [`Report::format`] measures that first and gives the
//! name what is left: a longer name is cut on a character boundary and
//! ends with `…`. Whatever the name, the report says what happened and how
//! to fix it.
//!
//! The scheduler publishes "who runs on which stack" in [`RUNNING`] before
//! every switch into a coroutine and clears it after. The handler only reads
//! that thread-local (a plain `Cell` of `Copy` data with no lazy
//! initialisation), formats into a buffer on its own stack and calls
//! `write(2)` and `abort(3)`: nothing that allocates or locks.

use std::cell::Cell;
use std::io;
use std::mem;
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::StackBounds;
use crate::task::id::Task;

/// What the signal handler needs to know about the running coroutine,
/// kept by its task for as long as the task lives.
#[derive(Debug)]
pub(crate) struct Running {
    /// Who the coroutine is.
    pub(crate) task: Task,
    /// Where its stack lies; before the task first runs, only the size
    /// class of the stack reserved for it.
    pub(crate) stack: Cell<StackBounds>,
}

thread_local! {
    /// Set by [`enter`] before the scheduler switches into a coroutine and
    /// reset by [`leave`] after it switches back: one pointer write each.
    static RUNNING: Cell<*const Running> = const { Cell::new(ptr::null()) };

    /// The alternate signal stack this module installed for this thread, if
    /// the thread had none.
    static ALT_STACK: AltStack = const { AltStack { base: Cell::new(0), len: Cell::new(0) } };
}

/// Publishes that the coroutine described by `running` is about to run. The
/// caller keeps `running` alive until [`leave`].
#[inline]
pub(crate) fn enter(running: &Running) {
    RUNNING.set(running);
}

/// Publishes that no coroutine runs on this thread any more.
#[inline]
pub(crate) fn leave() {
    RUNNING.set(ptr::null());
}

/// The handler that was installed for `SIGSEGV` before ours: set (from a
/// leaked `Box`, never freed) before ours is installed, so the handler never
/// finds it null once it can run.
static PREVIOUS_SEGV: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());

/// Installs the overflow handler for the process (once) and an alternate
/// signal stack for the calling thread (if it has none).
///
/// # Errors
///
/// If either cannot be installed; a failure to install the handler is
/// reported again on every later call, not only the first.
pub(crate) fn install() -> io::Result<()> {
    /// The outcome of installing the handler: `None`, or the OS error.
    static INSTALLED: OnceLock<Option<i32>> = OnceLock::new();
    let failed = INSTALLED.get_or_init(|| install_handler().err().map(|err| err.raw_os_error().unwrap_or(0)));
    if let Some(code) = *failed {
        let err = io::Error::from_raw_os_error(code);
        return Err(io::Error::new(err.kind(), format!("sigaction(SIGSEGV) failed: {err}")));
    }
    ensure_alt_stack()
}

fn install_handler() -> io::Result<()> {
    // SAFETY: sigaction is plain data; all-zero is a valid empty value.
    let previous: libc::sigaction = unsafe { mem::zeroed() };
    let previous = Box::into_raw(Box::new(previous));
    // SAFETY: querying only; `previous` is valid for writes (a fresh Box).
    let rc = unsafe { libc::sigaction(libc::SIGSEGV, ptr::null(), previous) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    PREVIOUS_SEGV.store(previous, Ordering::Release);
    // SAFETY: sigaction is plain data; all-zero is a valid empty value.
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = handle_segv as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `action` is valid for the call and names a handler with the
    // signature SA_SIGINFO asks for, which only does async-signal-safe work.
    let rc = unsafe { libc::sigaction(libc::SIGSEGV, &action, ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An alternate signal stack owned by a thread; removed and unmapped when
/// the thread exits.
struct AltStack {
    /// Start of the mapping, or 0 when this module installed none.
    base: Cell<usize>,
    /// Length of the mapping.
    len: Cell<usize>,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        if self.base.get() == 0 {
            return;
        }
        let disable = libc::stack_t { ss_sp: ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        // SAFETY: disabling the alternate stack of the exiting thread before
        // unmapping it; the pointer is valid for the call.
        unsafe { libc::sigaltstack(&disable, ptr::null_mut()) };
        // SAFETY: the mapping was created by `ensure_alt_stack` for this
        // thread and is no longer its signal stack.
        unsafe { libc::munmap(self.base.get() as *mut libc::c_void, self.len.get()) };
    }
}

fn ensure_alt_stack() -> io::Result<()> {
    // SAFETY: stack_t is plain data; all-zero is a valid value to fill.
    let mut current: libc::stack_t = unsafe { mem::zeroed() };
    // SAFETY: querying only; the out-pointer is valid.
    if unsafe { libc::sigaltstack(ptr::null(), &mut current) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if current.ss_flags & libc::SS_DISABLE == 0 {
        return Ok(()); // the thread has one already (the standard library's)
    }
    let page = super::page_size();
    let len = (libc::SIGSTKSZ.max(16 * 1024)).div_ceil(page) * page;
    // SAFETY: a fresh anonymous mapping aliases nothing.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let stack = libc::stack_t { ss_sp: base, ss_flags: 0, ss_size: len };
    // SAFETY: `stack` describes a mapping owned by this thread until the
    // thread-local `ALT_STACK` is dropped, which disables it first.
    if unsafe { libc::sigaltstack(&stack, ptr::null_mut()) } != 0 {
        let err = io::Error::last_os_error();
        // SAFETY: the mapping was never installed; nothing else uses it.
        unsafe { libc::munmap(base, len) };
        return Err(err);
    }
    ALT_STACK.with(|alt| {
        alt.base.set(base as usize);
        alt.len.set(len);
    });
    Ok(())
}

extern "C" fn handle_segv(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo, alive for the whole call,
    // to a handler installed with SA_SIGINFO.
    let siginfo = unsafe { &*info };
    // SAFETY: for SIGSEGV the kernel fills in the faulting address, the
    // field `si_addr` reads.
    let address = unsafe { siginfo.si_addr() } as usize;
    let running = RUNNING.get();
    if running.is_null() {
        return chain(signal, info, context);
    }
    // SAFETY: the scheduler keeps the task (and so its `Running`) alive
    // from `enter` to `leave`, and a fault on this thread between the two
    // interrupts that task.
    let running = unsafe { &*running };
    let stack = running.stack.get();
    let (guard_start, guard_end) = stack.guard_range();
    if guard_start <= address && address < guard_end {
        Report { task: &running.task, stack_size: stack.class, found_by: b"" }.format().write_to_stderr();
        // SAFETY: abort is async-signal-safe and never returns.
        unsafe { libc::abort() };
    }
    chain(signal, info, context);
}

/// Hands a fault that is not a coroutine overflow to the previous handler.
fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let previous = PREVIOUS_SEGV.load(Ordering::Acquire);
    if previous.is_null() {
        // Not reached (the pointer is set before the handler is installed);
        // if it were, the default action is the safe answer.
        // SAFETY: resetting a signal to its default action has no
        // preconditions.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
        return;
    }
    // SAFETY: set once by `install_handler` from a leaked Box, never freed,
    // and filled in by the kernel before it was published.
    let previous = unsafe { &*previous };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction
        // runs again and the kernel kills the process with SIGSEGV.
        // SAFETY: `previous` is a valid sigaction for the call.
        unsafe { libc::sigaction(signal, previous, ptr::null_mut()) };
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so its
        // address is a function with this signature.
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { mem::transmute(handler) };
        handler(signal, info, context);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO is a function that
        // takes the signal number only.
        let handler: extern "C" fn(libc::c_int) = unsafe { mem::transmute(handler) };
        handler(signal);
    }
}

/// Reports an overflow found in a canary page and aborts. Runs outside any
/// signal handler, on the scheduler's stack.
pub(crate) fn report_canary(task: &Task, stack: &StackBounds) -> ! {
    let found_by = b" (found by the canary check: memory below the stack was overwritten)";
    Report { task, stack_size: stack.class, found_by }.format().write_to_stderr();
    std::process::abort()
}

/// An overflow report, before formatting.
struct Report<'a> {
    /// The coroutine that overflowed.
    task: &'a Task,
    /// The size it was given (its stack's size class).
    stack_size: usize,
    /// How the overflow was found, when not by a fault: added after the
    /// size, empty otherwise.
    found_by: &'a [u8],
}

impl Report<'_> {
    /// Text before the name.
    const START: &'static [u8] = b"\ncoroutine '";
    /// Text between the name and the id.
    const AFTER_NAME: &'static [u8] = b"' (id ";
    /// Text between the id and the size.
    const AFTER_ID: &'static [u8] = b") has overflowed its stack of ";
    /// Text between the size and `found_by`.
    const AFTER_SIZE: &'static [u8] = b" bytes";
    /// The end: what to do about it.
    const END: &'static [u8] = b"\nfatal runtime error: stack overflow; raise the stack size with \
                                  green::task::Builder::stack_size or green::Builder::stack_size\n";
    /// Ends a name that was cut short.
    const ELLIPSIS: &'static str = "…";

    /// Formats the report without allocating (it runs in a signal handler):
    /// the name gets what room the rest leaves, cut on a character boundary
    /// and marked with an ellipsis if it has to be.
    fn format(&self) -> Message {
        let id = Digits::new(self.task.id().as_u64());
        let size = Digits::new(self.stack_size as u64);
        let name = self.task.display_name();
        let rest = Self::START.len()
            + Self::AFTER_NAME.len()
            + id.as_bytes().len()
            + Self::AFTER_ID.len()
            + size.as_bytes().len()
            + Self::AFTER_SIZE.len()
            + self.found_by.len()
            + Self::END.len();
        let room = Message::CAPACITY.saturating_sub(rest);
        let mut message = Message::new();
        message.push(Self::START);
        if name.len() <= room {
            message.push(name.as_bytes());
        } else {
            let mut end = room.saturating_sub(Self::ELLIPSIS.len());
            while !name.is_char_boundary(end) {
                end -= 1; // reaches 0 at worst, always a boundary
            }
            message.push(&name.as_bytes()[..end]);
            message.push(Self::ELLIPSIS.as_bytes());
        }
        message.push(Self::AFTER_NAME);
        message.push(id.as_bytes());
        message.push(Self::AFTER_ID);
        message.push(size.as_bytes());
        message.push(Self::AFTER_SIZE);
        message.push(self.found_by);
        message.push(Self::END);
        message
    }
}

/// The decimal digits of a number, without allocating.
struct Digits {
    /// The digits, right-aligned.
    bytes: [u8; 20],
    /// Index of the first digit in `bytes`.
    start: usize,
}

impl Digits {
    fn new(mut value: u64) -> Digits {
        let mut bytes = [0u8; 20];
        let mut start = bytes.len();
        loop {
            start -= 1;
            bytes[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        Digits { bytes, start }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// A fixed buffer to format a report in without allocating.
struct Message {
    /// The bytes written so far.
    bytes: [u8; Message::CAPACITY],
    /// How many bytes of `bytes` are used.
    len: usize,
}

impl Message {
    /// Bytes a message holds; small enough for an alternate signal stack.
    const CAPACITY: usize = 512;

    fn new() -> Message {
        Message { bytes: [0; Message::CAPACITY], len: 0 }
    }

    /// Appends `part`, or as much of it as fits.
    fn push(&mut self, part: &[u8]) {
        let n = part.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&part[..n]);
        self.len += n;
    }

    /// The bytes written so far.
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn write_to_stderr(&self) {
        let bytes = self.as_bytes();
        // SAFETY: `bytes` is valid for reads of its length for the whole
        // call; write is async-signal-safe.
        unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: Option<&str>, id: u64, found_by: &[u8]) -> String {
        let task = Task::for_test(id, name);
        let message = Report { task: &task, stack_size: 65536, found_by }.format();
        String::from_utf8(message.as_bytes().to_vec()).expect("the report is UTF-8, whatever the name")
    }

    fn assert_complete(report: &str) {
        for essential in [
            "has overflowed its stack of 65536 bytes",
            "fatal runtime error: stack overflow",
            "green::task::Builder::stack_size or green::Builder::stack_size\n",
        ] {
            assert!(report.contains(essential), "{essential:?} missing from {report:?}");
        }
    }

    #[test]
    fn formats_numbers_without_allocating() {
        assert_eq!(Digits::new(0).as_bytes(), b"0");
        assert_eq!(Digits::new(18_446_744_073_709_551_615).as_bytes(), b"18446744073709551615");
    }

    #[test]
    fn a_short_name_is_reported_whole() {
        let text = report(Some("worker-7"), 12, b"");
        assert_eq!(
            text,
            "\ncoroutine 'worker-7' (id 12) has overflowed its stack of 65536 bytes\nfatal runtime \
             error: stack overflow; raise the stack size with green::task::Builder::stack_size or \
             green::Builder::stack_size\n"
        );
        assert_complete(&report(None, 1, b""));
        assert!(report(None, 1, b"").contains("'<unnamed>'"));
    }

    #[test]
    fn a_long_name_is_cut_and_the_report_still_says_everything() {
        let canary = b" (found by the canary check: memory below the stack was overwritten)".as_slice();
        let long = "x".repeat(10_000);
        let wide = "é".repeat(5_000);
        let wider = "🦀".repeat(3_000);
        let mixed: String = (0..4_000).map(|i| if i % 3 == 0 { '日' } else { 'a' }).collect();
        for name in [long.as_str(), &wide, &wider, &mixed] {
            for found_by in [b"".as_slice(), canary] {
                let text = report(Some(name), u64::MAX, found_by);
                assert_complete(&text);
                assert!(text.len() <= Message::CAPACITY);
                let shown = text
                    .strip_prefix("\ncoroutine '")
                    .and_then(|rest| rest.split_once("…' (id 18446744073709551615)"))
                    .map(|(shown, _)| shown)
                    .unwrap_or_else(|| panic!("no cut name in {text:?}"));
                assert!(name.starts_with(shown) && shown.len() > 100, "{text:?}");
                assert_eq!(text.contains("canary"), !found_by.is_empty());
            }
        }
        // A name that just fits is not cut.
        let room = Message::CAPACITY - report(Some(""), u64::MAX, b"").len();
        let exact = "y".repeat(room);
        let text = report(Some(&exact), u64::MAX, b"");
        assert!(text.contains(&format!("'{exact}'")) && !text.contains('…'), "{text:?}");
        assert_complete(&report(Some(&"y".repeat(room + 1)), u64::MAX, b""));
    }
}
