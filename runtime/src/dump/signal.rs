//! A task dump on `SIGQUIT`, opt-in: [`Builder::dump_on_sigquit`]
//! (crate::Builder::dump_on_sigquit), or `GREEN_DUMP_ON_SIGQUIT=1` in the
//! environment. Nothing here is installed otherwise, and `SIGQUIT` keeps
//! its default action (end the process with a core dump).
//!
//! ```text
//!  kill -QUIT <pid>
//!    handler (any thread, async-signal-safe):   thread green-dump:
//!      write(pipe, 1 byte) ------------------->   read(pipe) returns
//!                                                 dump(): as from a plain thread, every
//!                                                   worker of every runtime is asked
//!                                                 print it to stderr
//! ```
//!
//! The handler only writes a byte to a pipe, with the descriptor it loads
//! from an atomic, keeping `errno` as it found it: both async-signal-safe.
//! A thread of the runtime's own (`green-dump`) waits on the pipe's other
//! end, makes the dump and prints it. Rejected: setting a flag that each
//! scheduler checks between switches. A worker that a coroutine holds
//! (the very hang a dump is for) would never look, and a runtime of one
//! worker would then print nothing at all; the thread prints in every
//! case, and says which workers did not answer.
//!
//! Installed once per process, by the first runtime that asks, and left in
//! place when that runtime ends: a later `SIGQUIT` then prints the dump of
//! whatever runtimes run at that moment (perhaps none).

use std::fs::File;
use std::io::{self, Read, Write};
use std::mem;
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::thread;

/// The environment variable that turns the `SIGQUIT` dump on for every
/// runtime of the process when it is `1`.
pub(crate) const ENV: &str = "GREEN_DUMP_ON_SIGQUIT";

/// The pipe's write end, for the handler; -1 until installed.
static WRITE_END: AtomicI32 = AtomicI32::new(-1);

/// Dumps printed on `SIGQUIT` so far.
static DUMPS: AtomicU64 = AtomicU64::new(0);

/// The `green-dump` thread has started.
static THREAD: AtomicBool = AtomicBool::new(false);

/// Task dumps printed to stderr on `SIGQUIT` since the process started.
///
/// ```
/// assert_eq!(green::dump::signal_dumps(), 0); // nothing asked for one
/// ```
pub fn signal_dumps() -> u64 {
    DUMPS.load(Ordering::Relaxed)
}

/// Threads this module adds to the process: 1 once installed (the
/// deadlock check counts the threads that might wake a coroutine, and this
/// one never does).
pub(crate) fn threads() -> usize {
    usize::from(THREAD.load(Ordering::Relaxed))
}

/// Whether the environment asks for the `SIGQUIT` dump.
pub(crate) fn asked_by_env() -> bool {
    std::env::var_os(ENV).is_some_and(|value| value == "1")
}

/// Installs the `SIGQUIT` handler and its thread, once per process.
///
/// # Errors
///
/// What the pipe, the thread or `sigaction` failed with (the same error
/// on every later call).
pub(crate) fn install() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), (io::ErrorKind, String)>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| install_once().map_err(|err| (err.kind(), err.to_string())))
        .clone()
        .map_err(|(kind, message)| io::Error::new(kind, format!("green: cannot dump on SIGQUIT: {message}")))
}

fn install_once() -> io::Result<()> {
    let mut ends = [0; 2];
    // SAFETY: `ends` has room for the two descriptors `pipe2` writes.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `pipe2` just made the read end; nobody else owns it.
    let read_end = unsafe { OwnedFd::from_raw_fd(ends[0]) };
    // SAFETY: the write end too.
    let write_end = unsafe { OwnedFd::from_raw_fd(ends[1]) };
    // A full pipe drops the byte rather than block the handler: a dump is
    // on its way then anyway.
    // SAFETY: `fcntl` with `F_SETFL` takes an integer and touches no memory of ours.
    if unsafe { libc::fcntl(ends[1], libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    thread::Builder::new().name("green-dump".into()).spawn(move || serve(File::from(read_end)))?;
    THREAD.store(true, Ordering::Relaxed);
    // The handler may use the descriptor for the rest of the process.
    WRITE_END.store(std::os::fd::IntoRawFd::into_raw_fd(write_end), Ordering::Release);
    // SAFETY: `sigaction` is plain data; all-zero is a valid empty value.
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = on_sigquit as *const () as usize;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action` is valid for the call and names a handler with the signature a handler without
    // `SA_SIGINFO` has, which does only async-signal-safe work.
    if unsafe { libc::sigaction(libc::SIGQUIT, &action, ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The `SIGQUIT` handler: one byte into the pipe, `errno` kept.
extern "C" fn on_sigquit(_signal: libc::c_int) {
    let fd = WRITE_END.load(Ordering::Acquire);
    if fd < 0 {
        return;
    }
    // SAFETY: `__errno_location` returns the calling thread's `errno`, valid for reads and writes.
    let errno = unsafe { *libc::__errno_location() };
    let byte = 1u8;
    // SAFETY: `byte` is valid for a read of one byte; `write` is async-signal-safe.
    unsafe { libc::write(fd, ptr::from_ref(&byte).cast(), 1) };
    // SAFETY: as above: the calling thread's `errno`, restored for the code the signal interrupted.
    unsafe { *libc::__errno_location() = errno };
}

/// The `green-dump` thread: a dump on stderr per wake-up of the pipe.
fn serve(mut pipe: File) {
    let mut bytes = [0u8; 64];
    loop {
        match pipe.read(&mut bytes) {
            Ok(0) => return,
            Ok(_) => {
                let dump = super::dump();
                let text = format!("green: SIGQUIT: {dump}");
                let _ = io::stderr().lock().write_all(text.as_bytes());
                DUMPS.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
