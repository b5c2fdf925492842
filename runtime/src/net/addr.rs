//! Turning `impl ToSocketAddrs` into the addresses an operation tries,
//! with `std`'s rules: `bind` and `connect` try every address in turn and
//! report the last error; `send_to` uses the first address only.
//!
//! Resolving a host name calls `getaddrinfo(3)`, which blocks the thread
//! (not only the coroutine); pass a `SocketAddr` to avoid it.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Runs `attempt` on each address `addr` resolves to until one succeeds.
///
/// # Errors
///
/// The resolver's error; else the last attempt's error; else
/// `InvalidInput` if `addr` resolved to no address at all.
pub(crate) fn each_addr<A, T>(addr: A, mut attempt: impl FnMut(&SocketAddr) -> io::Result<T>) -> io::Result<T>
where
    A: ToSocketAddrs,
{
    let mut last_error = None;
    for addr in addr.to_socket_addrs()? {
        match attempt(&addr) {
            Ok(value) => return Ok(value),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any addresses")))
}

/// The first address `addr` resolves to.
///
/// # Errors
///
/// The resolver's error, or `InvalidInput` if there is no address.
pub(crate) fn first_addr<A: ToSocketAddrs>(addr: A) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))
}
