//! Shared helpers for the integration tests.
//!
//! * [`DropCounter`]: hands out tokens and counts how many were dropped, to
//!   prove that cancelled coroutines ran their destructors.
//! * [`run_in_child`]: runs one test body in a fresh copy of the test
//!   binary, for behaviour that ends the process (a stack overflow aborts)
//!   or needs the process to itself (counting open descriptors);
//!   [`run_in_child_or_hang`] for a body that hangs when the behaviour
//!   under test is broken, [`run_in_child_with_env`] for one that needs its
//!   environment changed.
//! * [`open_fds`], [`mappings`], [`thread_cpu_time`]: what the process
//!   holds and what the calling thread has used, read from the kernel.

use std::cell::Cell;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Counts drops of the [`DropToken`]s it hands out.
///
/// `Rc`-based on purpose: tokens live on coroutine stacks, which never
/// leave their thread.
#[derive(Debug, Clone, Default)]
pub struct DropCounter {
    /// Tokens dropped so far, shared with every token.
    dropped: Rc<Cell<usize>>,
}

impl DropCounter {
    /// A counter at zero.
    pub fn new() -> DropCounter {
        DropCounter::default()
    }

    /// A token that increments this counter when it is dropped.
    pub fn token(&self) -> DropToken {
        DropToken { dropped: self.dropped.clone() }
    }

    /// How many tokens have been dropped.
    pub fn dropped(&self) -> usize {
        self.dropped.get()
    }
}

/// Increments its [`DropCounter`] when dropped.
#[derive(Debug)]
pub struct DropToken {
    /// The counter's cell.
    dropped: Rc<Cell<usize>>,
}

impl Drop for DropToken {
    fn drop(&mut self) {
        self.dropped.set(self.dropped.get() + 1);
    }
}

/// Environment variable that tells a re-executed test binary which test it
/// runs as a child.
const CHILD_ENV: &str = "GREEN_TESTS_CHILD";

/// Runs `body` in a child process and returns what the child did.
///
/// The test binary re-executes itself (`std::env::current_exe()`) with
/// `--exact <test> --nocapture --test-threads=1` and [`CHILD_ENV`] set to
/// `test`, so the child runs only the test named `test`, which must be the
/// test calling this function. In that child, this function runs `body`
/// and, if `body` returns, exits the process with status 0; in the parent,
/// it returns the child's exit status, stdout and stderr.
///
/// # Errors
///
/// If the child cannot be started, or if it ran no test (`test` is not the
/// exact name of the calling test).
pub fn run_in_child(test: &str, body: impl FnOnce()) -> io::Result<Output> {
    run_in_child_with_env(test, &[], body)
}

/// Like [`run_in_child`], with the child's environment changed by `env`:
/// each variable set to the value given, or removed where it is `None`.
///
/// # Errors
///
/// As [`run_in_child`].
pub fn run_in_child_with_env(
    test: &str,
    env: &[(&str, Option<&str>)],
    body: impl FnOnce(),
) -> io::Result<Output> {
    if std::env::var_os(CHILD_ENV).as_deref() == Some(OsStr::new(test)) {
        body();
        // `exit` runs no destructors: flush what the body printed first.
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        std::process::exit(0);
    }
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]).env(CHILD_ENV, test);
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let output = command.output()?;
    if String::from_utf8_lossy(&output.stdout).contains("running 0 tests") {
        return Err(io::Error::other(format!(
            "the child process ran no test named {test:?}: pass the exact name of the test that \
             calls run_in_child"
        )));
    }
    Ok(output)
}

/// Like [`run_in_child`], for a body that would hang if the behaviour under
/// test were broken: a child still running after `limit` is killed, and
/// this returns `Ok(None)`. `limit` only turns a hang into a failure; pick
/// one far beyond what the body needs (a minute), never a speed target.
///
/// # Errors
///
/// As [`run_in_child`].
pub fn run_in_child_or_hang(test: &str, limit: Duration, body: impl FnOnce()) -> io::Result<Option<Output>> {
    if std::env::var_os(CHILD_ENV).as_deref() == Some(OsStr::new(test)) {
        return run_in_child(test, body).map(Some);
    }
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Read both pipes on threads, so that a chatty child cannot block on a
    // full pipe while this waits for it to exit.
    let mut stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout pipe"))?;
    let mut stderr = child.stderr.take().ok_or_else(|| io::Error::other("no stderr pipe"))?;
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = io::Read::read_to_end(&mut stderr, &mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let Some(status) = status else { return Ok(None) };
    if String::from_utf8_lossy(&stdout).contains("running 0 tests") {
        return Err(io::Error::other(format!(
            "the child process ran no test named {test:?}: pass the exact name of the test that \
             calls run_in_child_or_hang"
        )));
    }
    Ok(Some(Output { status, stdout, stderr }))
}

/// Describes a child's exit status and output, for assertion messages.
pub fn describe(output: &Output) -> String {
    let mut text = String::new();
    let _ = write!(text, "child exited with {:?}", output.status);
    if let Some(signal) = output.status.signal() {
        let _ = write!(text, " (signal {signal})");
    }
    let _ = write!(
        text,
        "\n--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

/// The child's stderr as text.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Number of file descriptors the process has open (entries of
/// `/proc/self/fd`, not counting the one used to list them).
///
/// # Errors
///
/// If `/proc/self/fd` cannot be read.
pub fn open_fds() -> io::Result<usize> {
    let mut count: usize = 0;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        entry?;
        count += 1;
    }
    // One of the entries is the directory being listed.
    Ok(count.saturating_sub(1))
}

/// Number of memory mappings of the process (lines of `/proc/self/maps`).
///
/// # Errors
///
/// If `/proc/self/maps` cannot be read.
pub fn mappings() -> io::Result<usize> {
    Ok(std::fs::read_to_string("/proc/self/maps")?.lines().count())
}

/// CPU time (user plus system) the calling OS thread has used so far,
/// from `getrusage(RUSAGE_THREAD)`.
///
/// Per thread rather than per process, so that tests running in parallel
/// in the same binary do not count against each other.
///
/// # Errors
///
/// If `getrusage` fails.
pub fn thread_cpu_time() -> io::Result<Duration> {
    // SAFETY: rusage is plain data; all-zero is a valid value to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the out-pointer is valid for writes for the whole call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(timeval(usage.ru_utime) + timeval(usage.ru_stime))
}

fn timeval(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u64::try_from(tv.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

/// The message of a panic payload, if it is a string (as `panic!` makes).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}
pub mod net;

/// Runs `f`, which must panic, and returns the text it panicked with.
///
/// # Panics
///
/// If `f` returns instead (`what` says what should have made it panic),
/// or its payload is not a string.
pub fn panic_text_of(what: &str, f: impl FnOnce()) -> String {
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err(what);
    panic_message(&*payload).expect("a string message").to_owned()
}
