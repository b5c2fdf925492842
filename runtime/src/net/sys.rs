//! The few socket system calls `std` cannot make for us.
//!
//! `std` creates sockets in blocking mode and connects them with a blocking
//! `connect(2)`. A green socket must never block the thread, so this file
//! creates sockets that are non-blocking from birth
//! (`SOCK_NONBLOCK | SOCK_CLOEXEC`), starts a connect without waiting for
//! it, and accepts with `accept4(2)` so that the new connection is
//! non-blocking without a second system call. Stream reads and writes are
//! made here as raw system calls ([`recv`], [`send`]): in a process of more
//! than one thread (a runtime of several workers, the blocking pool, the
//! stall watchdog's thread), glibc's `recv`, `send`, `read` and `write`
//! wrappers, which `std` calls, switch thread cancellation on and off around
//! the call, 387 instructions per round trip of a byte between two
//! coroutines (PERF.md); Rust never cancels a thread, and the `syscall`
//! function is not a cancellation point. Everything else (options,
//! addresses, datagrams, vectored I/O) is delegated to the `std` types.
//!
//! Descriptors are returned as [`OwnedFd`] the moment they exist, so an
//! error or a cancellation on the way closes them.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::SocketAddr as UnixSocketAddr;
use std::path::Path;
use std::ptr;

/// Turns the `-1` a libc call returns on failure into
/// [`io::Error::last_os_error`] (the job of mio's `syscall!`). Callers write
/// the `unsafe` call themselves, so that each carries its own `SAFETY`.
fn os_result(result: libc::c_int) -> io::Result<libc::c_int> {
    if result == -1 { Err(io::Error::last_os_error()) } else { Ok(result) }
}

/// Receives into `buf` from the stream socket `fd`, as `recv(fd, buf, 0)`:
/// the count read, 0 at end of stream.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let (null, fd, len) = (ptr::null_mut::<libc::c_void>(), fd.as_raw_fd(), buf.len());
    // SAFETY: recvfrom(fd, buf, len, 0, NULL, NULL) writes at most `len` bytes into `buf`, borrowed
    // mutably for the call, and no address (both pointers null); `fd` was borrowed, so it is open.
    let read = unsafe { libc::syscall(libc::SYS_recvfrom, fd, buf.as_mut_ptr(), len, 0, null, null) };
    usize::try_from(read).map_err(|_| io::Error::last_os_error())
}

/// Sends `buf` on the stream socket `fd`, as `send(fd, buf, flags)`: the
/// count written.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8], flags: libc::c_int) -> io::Result<usize> {
    let (null, fd, len) = (ptr::null::<libc::c_void>(), fd.as_raw_fd(), buf.len());
    // SAFETY: sendto(fd, buf, len, flags, NULL, 0) reads at most `len` bytes of `buf`, borrowed for
    // the call, and no address; `fd` was borrowed, so it is open.
    let written = unsafe { libc::syscall(libc::SYS_sendto, fd, buf.as_ptr(), len, flags, null, 0) };
    usize::try_from(written).map_err(|_| io::Error::last_os_error())
}

/// Creates a socket of `domain` and `kind` (`SOCK_STREAM`, ...), already
/// non-blocking and close-on-exec.
pub(crate) fn new_socket(domain: libc::c_int, kind: libc::c_int) -> io::Result<OwnedFd> {
    let kind = kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `socket` takes no pointers; any arguments are sound.
    let fd = os_result(unsafe { libc::socket(domain, kind, 0) })?;
    // SAFETY: `socket` just returned `fd`, so it is open and owned by
    // nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The address family of `addr`, for [`new_socket`].
pub(crate) fn domain_of(addr: &SocketAddr) -> libc::c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// Switches `O_NONBLOCK` on or off (the flag belongs to the open file
/// description, so descriptors `dup`ed from this one share it).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    let mut on = libc::c_int::from(nonblocking);
    // SAFETY: `fd` is open for the call (it is borrowed) and `FIONBIO`
    // reads one `c_int` through the pointer, which points at `on`.
    os_result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONBIO, &mut on) })?;
    Ok(())
}

/// Sets an integer socket option.
pub(crate) fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    let value = ptr::from_ref(&value).cast::<libc::c_void>();
    // SAFETY: `fd` is open for the call; `value` points at a `c_int` of
    // `len` bytes that lives across the call.
    os_result(unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, value, len) })?;
    Ok(())
}

/// Binds `fd` to `addr`.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &RawAddr) -> io::Result<()> {
    // SAFETY: `fd` is open for the call; `addr` points at `addr.len` valid
    // bytes of a socket address.
    os_result(unsafe { libc::bind(fd.as_raw_fd(), addr.as_ptr(), addr.len) })?;
    Ok(())
}

/// Marks `fd` as a listening socket. A `backlog` of `-1` asks for the
/// largest queue the system allows (`net.core.somaxconn`).
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: libc::c_int) -> io::Result<()> {
    // SAFETY: `listen` takes no pointers; `fd` is open for the call.
    os_result(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
    Ok(())
}

/// What a non-blocking `connect(2)` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connect {
    /// The connection is established (typical of Unix sockets).
    Done,
    /// The handshake goes on in the kernel; the socket turns writable when
    /// it has finished, and `SO_ERROR` tells how.
    InProgress,
}

/// Starts connecting `fd` to `addr` without waiting for the handshake.
///
/// # Errors
///
/// What `connect(2)` reports, except `EINPROGRESS` (and `EINTR`, after
/// which the connect also goes on asynchronously), which become
/// [`Connect::InProgress`]. A Unix socket whose listener's backlog is full
/// fails with `WouldBlock`.
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: &RawAddr) -> io::Result<Connect> {
    // SAFETY: `fd` is open for the call; `addr` points at `addr.len` valid
    // bytes of a socket address.
    match os_result(unsafe { libc::connect(fd.as_raw_fd(), addr.as_ptr(), addr.len) }) {
        Ok(_) => Ok(Connect::Done),
        Err(err) if matches!(err.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) => {
            Ok(Connect::InProgress)
        }
        Err(err) => Err(err),
    }
}

/// Accepts a connection on the listening socket `fd` with `accept4(2)`:
/// the new descriptor is non-blocking and close-on-exec from the start.
pub(crate) fn accept(fd: BorrowedFd<'_>) -> io::Result<(OwnedFd, SocketAddr)> {
    let mut peer = RawAddr::empty();
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fd` is open for the call; `peer.storage` has room for
    // `peer.len` bytes, and `accept4` writes at most that many and stores
    // the real length back into `peer.len`.
    let stream = os_result(unsafe {
        libc::accept4(fd.as_raw_fd(), ptr::from_mut(&mut peer.storage).cast(), &mut peer.len, flags)
    })?;
    // SAFETY: `accept4` just returned `stream`, so it is open and owned by
    // nobody else.
    let stream = unsafe { OwnedFd::from_raw_fd(stream) };
    let peer = peer.to_inet()?;
    Ok((stream, peer))
}

/// Who the socket `fd` is connected to, in words, for the task dump: its
/// peer's address (`"127.0.0.1:4000"`, `"unix:/run/app.sock"`), or for a
/// socket with no peer (a listener) its own, as `"local 0.0.0.0:80"`;
/// `None` if `fd` is no socket or has neither.
///
/// Takes a plain number: the dump names the descriptor of a parked wait,
/// and the call reads nothing of ours but the buffer it fills, so a
/// descriptor closed meanwhile only makes it fail (or name whatever now
/// has that number).
pub(crate) fn describe_peer(fd: std::os::fd::RawFd) -> Option<String> {
    let mut peer = RawAddr::empty();
    // SAFETY: `peer.storage` has room for `peer.len` bytes; `getpeername` writes at most that many and stores the
    // real length back into `peer.len`. The descriptor is a number the kernel checks.
    let named = unsafe { libc::getpeername(fd, ptr::from_mut(&mut peer.storage).cast(), &mut peer.len) };
    if named == 0 {
        return peer.describe();
    }
    let mut local = RawAddr::empty();
    // SAFETY: as for `getpeername` above.
    let named = unsafe { libc::getsockname(fd, ptr::from_mut(&mut local.storage).cast(), &mut local.len) };
    if named == 0 { local.describe().map(|local| format!("local {local}")) } else { None }
}

/// A socket address in the C layout the kernel reads and writes.
pub(crate) struct RawAddr {
    /// Big enough for any address family and suitably aligned for each.
    storage: libc::sockaddr_storage,
    /// How many bytes of `storage` hold the address.
    len: libc::socklen_t,
}

impl RawAddr {
    /// An all-zero address with room for any family, for the kernel to
    /// fill in.
    fn empty() -> RawAddr {
        // SAFETY: `sockaddr_storage` is plain data (integers and byte
        // arrays), for which all-zero bytes are a valid value.
        let storage = unsafe { mem::zeroed::<libc::sockaddr_storage>() };
        RawAddr { storage, len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t }
    }

    /// Copies `value`, a `sockaddr_*` struct, to the start of the storage.
    fn store<T>(value: T) -> RawAddr {
        const { assert!(mem::size_of::<T>() <= mem::size_of::<libc::sockaddr_storage>()) };
        let mut addr = RawAddr::empty();
        // SAFETY: `sockaddr_storage` is at least as large as `T` (checked
        // above at compile time) and aligned for every `sockaddr_*` type,
        // which is what it exists for; `T` is plain data.
        unsafe { ptr::write(ptr::from_mut(&mut addr.storage).cast::<T>(), value) };
        addr.len = mem::size_of::<T>() as libc::socklen_t;
        addr
    }

    /// The C form of an IP socket address.
    pub(crate) fn from_inet(addr: &SocketAddr) -> RawAddr {
        match addr {
            SocketAddr::V4(addr) => RawAddr::store(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: addr.port().to_be(),
                // `s_addr` is in network byte order, which is the order
                // of `octets()`; `from_ne_bytes` keeps the bytes as they are.
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(addr.ip().octets()) },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(addr) => RawAddr::store(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: addr.port().to_be(),
                sin6_flowinfo: addr.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: addr.ip().octets() },
                sin6_scope_id: addr.scope_id(),
            }),
        }
    }

    /// The C form of a Unix socket address: a filesystem path, or (with
    /// `abstract_name`) a name in Linux's abstract namespace.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if a path contains a NUL byte or either is too long
    /// for `sun_path`.
    pub(crate) fn from_unix(name: &[u8], abstract_name: bool) -> io::Result<RawAddr> {
        let mut addr =
            libc::sockaddr_un { sun_family: libc::AF_UNIX as libc::sa_family_t, sun_path: [0; 108] };
        // An abstract name starts with a NUL byte; a path ends with one.
        let offset = usize::from(abstract_name);
        let used = offset + name.len() + usize::from(!abstract_name);
        if !abstract_name && name.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "paths must not contain interior null bytes",
            ));
        }
        if used > addr.sun_path.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "Unix socket address is {used} bytes long but at most {} fit in sun_path: use a \
                     shorter path",
                    addr.sun_path.len()
                ),
            ));
        }
        for (slot, byte) in addr.sun_path[offset..].iter_mut().zip(name) {
            *slot = *byte as libc::c_char;
        }
        let mut raw = RawAddr::store(addr);
        raw.len = (mem::offset_of!(libc::sockaddr_un, sun_path) + used) as libc::socklen_t;
        Ok(raw)
    }

    /// The C form of a Unix socket path.
    pub(crate) fn from_path(path: &Path) -> io::Result<RawAddr> {
        RawAddr::from_unix(path.as_os_str().as_bytes(), false)
    }

    /// The C form of a `std` Unix socket address: a path or an abstract
    /// name.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an unnamed address, which cannot be connected
    /// or sent to.
    pub(crate) fn from_unix_addr(addr: &UnixSocketAddr) -> io::Result<RawAddr> {
        if let Some(path) = addr.as_pathname() {
            return RawAddr::from_path(path);
        }
        if let Some(name) = addr.as_abstract_name() {
            return RawAddr::from_unix(name, true);
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot connect or send to an unnamed Unix socket address: bind the peer to a path or \
             an abstract name",
        ))
    }

    /// The address for the kernel to read.
    fn as_ptr(&self) -> *const libc::sockaddr {
        ptr::from_ref(&self.storage).cast()
    }

    /// The address the kernel stored here, in words: an IP address and
    /// port, or `unix:` and a path, `@` and an abstract name, or
    /// `(unnamed)`.
    fn describe(&self) -> Option<String> {
        if let Ok(inet) = self.to_inet() {
            return Some(inet.to_string());
        }
        if libc::c_int::from(self.storage.ss_family) != libc::AF_UNIX {
            return None;
        }
        // SAFETY: the family says the kernel stored a `sockaddr_un` here; the storage is large and aligned
        // enough for one.
        let unix = unsafe { ptr::read(ptr::from_ref(&self.storage).cast::<libc::sockaddr_un>()) };
        let offset = mem::offset_of!(libc::sockaddr_un, sun_path);
        let len = (self.len as usize).saturating_sub(offset).min(unix.sun_path.len());
        let name: Vec<u8> = unix.sun_path[..len].iter().map(|&c| c as u8).collect();
        Some(match name.split_first() {
            None => "unix:(unnamed)".to_owned(),
            Some((0, abstract_name)) => format!("unix:@{}", String::from_utf8_lossy(abstract_name)),
            Some(_) => {
                let path = name.split(|&b| b == 0).next().unwrap_or_default();
                format!("unix:{}", String::from_utf8_lossy(path))
            }
        })
    }

    /// The IP socket address the kernel stored here.
    fn to_inet(&self) -> io::Result<SocketAddr> {
        match libc::c_int::from(self.storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the kernel stored a `sockaddr_in`
                // here; the storage is large and aligned enough for one.
                let addr = unsafe { ptr::read(ptr::from_ref(&self.storage).cast::<libc::sockaddr_in>()) };
                let ip = Ipv4Addr::from(addr.sin_addr.s_addr.to_ne_bytes());
                Ok(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(addr.sin_port))))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the kernel stored a `sockaddr_in6`
                // here; the storage is large and aligned enough for one.
                let addr = unsafe { ptr::read(ptr::from_ref(&self.storage).cast::<libc::sockaddr_in6>()) };
                let ip = Ipv6Addr::from(addr.sin6_addr.s6_addr);
                let port = u16::from_be(addr.sin6_port);
                Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, addr.sin6_flowinfo, addr.sin6_scope_id)))
            }
            family => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("green: accept returned an address of family {family}, not an IP address"),
            )),
        }
    }
}
