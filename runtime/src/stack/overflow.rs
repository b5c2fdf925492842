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
//! The scheduler publishes "who runs on which stack" in [`RUNNING`] before
//! every switch into a coroutine and clears it after. The handler only reads
//! that thread-local (a plain `Cell` of `Copy` data with no lazy
//! initialisation), formats into a buffer on its own stack and calls
//! `write(2)` and `abort(3)`: nothing that allocates or locks.

use std::cell::Cell;
use std::io;
use std::mem;
use std::ptr;
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::StackBounds;

/// What the overflow reporter needs to know about a stack's coroutine.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    /// The coroutine's id.
    pub(crate) id: u64,
    /// The coroutine's name, if it has one.
    pub(crate) name: Option<Arc<str>>,
}

impl Owner {
    #[cfg(test)]
    pub(crate) fn for_test() -> Owner {
        Owner { id: 0, name: Some(Arc::from("test")) }
    }
}

/// What the signal handler needs to know about the running coroutine,
/// kept by its task for as long as the task lives.
#[derive(Debug)]
pub(crate) struct Running {
    /// Who the coroutine is.
    pub(crate) owner: Owner,
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

/// The handler that was installed for `SIGSEGV` before ours.
static PREVIOUS_SEGV: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());

/// Installs the overflow handler for the process (once) and an alternate
/// signal stack for the calling thread (if it has none).
pub(crate) fn install() -> io::Result<()> {
    static INSTALL: Once = Once::new();
    let mut result = Ok(());
    INSTALL.call_once(|| result = install_handler());
    result?;
    ensure_alt_stack()
}

fn install_handler() -> io::Result<()> {
    // SAFETY: sigaction is plain data; all-zero is a valid empty value.
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = handle_segv as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    let previous = Box::into_raw(Box::new(action));
    // SAFETY: both pointers are valid for the call; the handler is a
    // function with the signature SA_SIGINFO asks for.
    let rc = unsafe { libc::sigaction(libc::SIGSEGV, &action, previous) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    PREVIOUS_SEGV.store(previous, Ordering::Release);
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
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let address = unsafe { (*info).si_addr() } as usize;
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
        let name: &[u8] = match &running.owner.name {
            Some(name) => name.as_bytes(),
            None => b"<unnamed>",
        };
        let mut message = Message::new();
        message.push(b"\ncoroutine '");
        message.push(name);
        message.push(b"' (id ");
        message.push_number(running.owner.id);
        message.push(b") has overflowed its stack of ");
        message.push_number(stack.class as u64);
        message.push(
            b" bytes\nfatal runtime error: stack overflow; raise the stack size with \
              green::task::Builder::stack_size or green::Builder::stack_size\n",
        );
        message.write_to_stderr();
        // SAFETY: abort is async-signal-safe and never returns.
        unsafe { libc::abort() };
    }
    chain(signal, info, context);
}

/// Hands a fault that is not a coroutine overflow to the previous handler.
fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let previous = PREVIOUS_SEGV.load(Ordering::Acquire);
    // SAFETY: set once by `install_handler` from a leaked Box, never freed.
    let previous = unsafe { &*previous };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction
        // runs again and the kernel kills the process with SIGSEGV.
        // SAFETY: the pointer refers to a valid sigaction.
        unsafe { libc::sigaction(signal, previous, ptr::null_mut()) };
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it
        // has this signature.
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { mem::transmute(handler) };
        handler(signal, info, context);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO takes the signal only.
        let handler: extern "C" fn(libc::c_int) = unsafe { mem::transmute(handler) };
        handler(signal);
    }
}

/// Reports an overflow found in a canary page and aborts. Runs outside any
/// signal handler, on the scheduler's stack.
pub(crate) fn report_canary(owner: &Owner, stack: &StackBounds) -> ! {
    let name = owner.name.as_deref().unwrap_or("<unnamed>");
    eprintln!(
        "\ncoroutine '{name}' (id {}) has overflowed its stack of {} bytes (found by the canary \
         check: memory below the stack was overwritten)\nfatal runtime error: stack overflow; \
         raise the stack size with green::task::Builder::stack_size or green::Builder::stack_size",
        owner.id, stack.class
    );
    std::process::abort()
}

/// A fixed buffer to format a report in without allocating.
struct Message {
    /// The bytes written so far.
    bytes: [u8; 512],
    /// How many bytes of `bytes` are used.
    len: usize,
}

impl Message {
    fn new() -> Message {
        Message { bytes: [0; 512], len: 0 }
    }

    fn push(&mut self, part: &[u8]) {
        let n = part.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&part[..n]);
        self.len += n;
    }

    fn push_number(&mut self, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    fn write_to_stderr(&self) {
        // SAFETY: the buffer is valid for `len` bytes; write is
        // async-signal-safe.
        unsafe { libc::write(libc::STDERR_FILENO, self.bytes.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_without_allocating() {
        let mut m = Message::new();
        m.push(b"id ");
        m.push_number(0);
        m.push(b" ");
        m.push_number(18_446_744_073_709_551_615);
        assert_eq!(&m.bytes[..m.len], b"id 0 18446744073709551615");
    }
}
