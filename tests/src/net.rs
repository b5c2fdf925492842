//! Helpers for the networking tests (`tcp_*.rs`, `udp.rs`, `unix_sockets.rs`,
//! `emfile.rs`, `net_outside_runtime.rs`).
//!
//! * [`raise_fd_limit`], [`set_fd_soft_limit`], [`highest_open_fd`]: the
//!   descriptor table, for tests that open many sockets or run out on
//!   purpose.
//! * [`set_linger_zero`], [`set_buffer_sizes`], [`set_listen_backlog`]: the
//!   socket options `std` does not expose, to provoke resets, full buffers
//!   and full accept queues.
//! * [`is_nonblocking`]: the descriptor's mode, to check conversions.
//! * [`SocketPath`]: a unique Unix socket path, removed when dropped.
//! * [`connected_pair`], [`join_io`]: a connected pair of green TCP
//!   streams, and the result of a coroutine that does I/O.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

fn os_result(result: libc::c_int) -> io::Result<()> {
    if result == -1 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

fn fd_limits() -> io::Result<libc::rlimit> {
    let mut limits = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: the out-pointer is valid for writes for the whole call.
    os_result(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limits) })?;
    Ok(limits)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, which must allow at
/// least `needed` descriptors.
///
/// # Errors
///
/// If the hard limit is below `needed` (the message says how to raise it),
/// or if the limit cannot be read or set.
pub fn raise_fd_limit(needed: u64) -> io::Result<()> {
    let mut limits = fd_limits()?;
    if limits.rlim_max < needed {
        return Err(io::Error::other(format!(
            "this test needs {needed} file descriptors but the hard limit (RLIMIT_NOFILE) is {}: raise \
             it, e.g. with `ulimit -Hn {needed}` as root or in /etc/security/limits.conf",
            limits.rlim_max
        )));
    }
    limits.rlim_cur = limits.rlim_max;
    // SAFETY: the pointer is valid for reads for the whole call.
    os_result(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limits) })
}

/// Sets the soft `RLIMIT_NOFILE`: new descriptors must be numbered below
/// `limit`. Descriptors already open above it stay open.
///
/// # Errors
///
/// If the limit cannot be read or set.
pub fn set_fd_soft_limit(limit: u64) -> io::Result<()> {
    let mut limits = fd_limits()?;
    limits.rlim_cur = limit;
    // SAFETY: the pointer is valid for reads for the whole call.
    os_result(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limits) })
}

/// The highest descriptor number the process has open, from
/// `/proc/self/fd`. The descriptor used for the listing counts too, so the
/// answer may be one above the highest descriptor open afterwards.
///
/// # Errors
///
/// If `/proc/self/fd` cannot be read.
pub fn highest_open_fd() -> io::Result<RawFd> {
    let mut highest = 0;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Some(fd) = entry?.file_name().to_str().and_then(|name| name.parse::<RawFd>().ok()) {
            highest = highest.max(fd);
        }
    }
    Ok(highest)
}

/// Sets `SO_LINGER` to zero seconds, so that closing the socket resets
/// the connection (sends RST) instead of shutting it down gracefully.
///
/// # Errors
///
/// If `setsockopt` fails.
pub fn set_linger_zero(socket: &impl AsFd) -> io::Result<()> {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    let len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
    let value = std::ptr::from_ref(&linger).cast::<libc::c_void>();
    let fd = socket.as_fd().as_raw_fd();
    // SAFETY: `fd` is open for the call (borrowed from `socket`); `value`
    // points at a `linger` of `len` bytes.
    os_result(unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER, value, len) })
}

/// Shrinks the socket's send and receive buffers to about `bytes` each (the
/// kernel doubles the value and enforces a minimum), so that a transfer
/// of a few megabytes overflows them. Below about 64 KiB (two loopback
/// segments) TCP itself stalls on window probes.
///
/// # Errors
///
/// If `setsockopt` fails.
pub fn set_buffer_sizes(socket: &impl AsFd, bytes: libc::c_int) -> io::Result<()> {
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let value = std::ptr::from_ref(&bytes).cast::<libc::c_void>();
    let fd = socket.as_fd().as_raw_fd();
    for option in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: `fd` is open for the call; `value` points at a `c_int`
        // of `len` bytes.
        os_result(unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, option, value, len) })?;
    }
    Ok(())
}

/// Calls `listen` again on a listening socket, which on Linux changes the
/// length of its accept queue. With a backlog of 0, one connection fills a
/// TCP listener's queue; later handshakes are dropped and retried by the
/// client, so their connects hang until they time out.
///
/// # Errors
///
/// If `listen` fails.
pub fn set_listen_backlog(listener: &impl AsFd, backlog: libc::c_int) -> io::Result<()> {
    // SAFETY: `listen` takes no pointers; the descriptor is open for the
    // call (borrowed from `listener`).
    os_result(unsafe { libc::listen(listener.as_fd().as_raw_fd(), backlog) })
}

/// Whether the descriptor is in non-blocking mode (`O_NONBLOCK`).
///
/// # Errors
///
/// If `fcntl` fails.
pub fn is_nonblocking(socket: &impl AsFd) -> io::Result<bool> {
    // SAFETY: `F_GETFL` takes no pointer; the descriptor is open for the
    // call (borrowed from `socket`).
    let flags = unsafe { libc::fcntl(socket.as_fd().as_raw_fd(), libc::F_GETFL) };
    os_result(flags)?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// A fresh path for a Unix socket in the temporary directory, unique in
/// the process and between processes; the file is removed on drop.
#[derive(Debug)]
pub struct SocketPath {
    /// The path.
    path: PathBuf,
}

impl SocketPath {
    /// A new path whose file name contains `tag`, the process id and a
    /// counter. Nothing exists there yet.
    pub fn new(tag: &str) -> SocketPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("green-{tag}-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        SocketPath { path }
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A connected pair of green TCP streams on loopback: (client side, server
/// side).
pub fn connected_pair() -> io::Result<(green::net::TcpStream, green::net::TcpStream)> {
    let listener = green::net::TcpListener::bind("127.0.0.1:0")?;
    let client = green::net::TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}

/// The result of a coroutine that does I/O, with its panic or
/// cancellation as an I/O error.
pub fn join_io<T>(handle: green::JoinHandle<io::Result<T>>) -> io::Result<T> {
    handle.join().map_err(|err| io::Error::other(format!("a coroutine failed: {err}")))?
}
