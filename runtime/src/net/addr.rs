//! Turning addresses into the socket addresses an operation tries:
//! [`ToSocketAddrs`] and [`lookup_host`], with `std`'s rules (`bind` and
//! `connect` try every address in turn and report the last error;
//! `send_to` uses the first address only).
//!
//! Resolving a host name calls `getaddrinfo(3)`, which blocks its thread
//! for as long as the resolver takes (seconds, when a name server does
//! not answer). In a coroutine, it runs on the blocking pool
//! (`blocking.rs`), so the other coroutines keep running; an address
//! written as numbers is parsed in place, with no hand-off.

use std::io;
use std::net::{self, IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::vec;

use crate::context::Context;

/// Anything that names socket addresses: what `std::net::ToSocketAddrs`
/// is implemented for (`SocketAddr`, `(IpAddr, u16)`, `"host:port"`,
/// `("host", port)`, `&[SocketAddr]`, references to these), with the same
/// meaning.
///
/// The one difference is where a host name is resolved: in a coroutine,
/// on the blocking pool, so a slow resolver parks the coroutine instead of
/// stopping its thread. The trait is sealed: it cannot be implemented
/// outside `green`. To connect to addresses of your own making, resolve
/// them first and pass a `SocketAddr` or a slice of them.
///
/// ```
/// use green::net::{TcpListener, TcpStream};
///
/// green::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap(); // parsed, no resolver
///     let port = listener.local_addr().unwrap().port();
///     let stream = TcpStream::connect(("localhost", port)); // resolved on the pool
///     assert!(stream.is_ok());
/// });
/// ```
pub trait ToSocketAddrs: sealed::Resolve {}

/// The trait's method, out of reach of other crates.
mod sealed {
    use super::Addrs;

    /// See [`ToSocketAddrs`](super::ToSocketAddrs).
    pub trait Resolve {
        /// The addresses, resolving a host name if there is one.
        fn resolve(&self) -> std::io::Result<Addrs>;
    }
}

/// The addresses something resolved to, in the resolver's order.
pub(crate) type Addrs = vec::IntoIter<SocketAddr>;

/// Resolves `host` (such as `"example.com:443"` or `("example.com", 443)`)
/// to its socket addresses, in the resolver's order.
///
/// In a coroutine, the resolver (`getaddrinfo(3)`) runs on the blocking
/// pool while the coroutine parks; a cancelled lookup returns a cancelled
/// error at once (the resolver finishes on its thread, unseen). On a plain
/// thread it runs in place, as `std` does.
///
/// ```
/// green::run(|| {
///     let addrs: Vec<_> = green::net::lookup_host("localhost:80").unwrap().collect();
///     assert!(addrs.iter().all(|addr| addr.port() == 80 && addr.ip().is_loopback()));
/// });
/// ```
///
/// # Errors
///
/// The resolver's error (a malformed address, a port out of range, an
/// unknown host), or a cancelled error.
pub fn lookup_host<A: ToSocketAddrs>(host: A) -> io::Result<vec::IntoIter<SocketAddr>> {
    host.resolve()
}

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
    for addr in addr.resolve()? {
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
    addr.resolve()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))
}

/// One address, no resolver.
fn one(addr: SocketAddr) -> io::Result<Addrs> {
    Ok(vec![addr].into_iter())
}

/// A name for the resolver: `"host:port"`, or a host and a port.
enum Name {
    /// `"host:port"`, as `std` parses it.
    Whole(String),
    /// A host and a port.
    Pair(String, u16),
}

impl Name {
    /// The host part, for the test resolver.
    #[cfg(test)]
    fn host(&self) -> &str {
        match self {
            Name::Whole(text) => text.rsplit_once(':').map_or(text.as_str(), |(host, _)| host),
            Name::Pair(host, _) => host,
        }
    }

    /// `std`'s resolution of the name, collected.
    fn lookup(&self) -> io::Result<Addrs> {
        let addrs: Vec<SocketAddr> = match self {
            Name::Whole(text) => net::ToSocketAddrs::to_socket_addrs(text.as_str())?.collect(),
            Name::Pair(host, port) => net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port))?.collect(),
        };
        Ok(addrs.into_iter())
    }
}

/// Resolves `name`: on the blocking pool in a coroutine, in place on a
/// plain thread.
fn resolve_name(name: Name) -> io::Result<Addrs> {
    let lookup = move || resolver::lookup(&name);
    if Context::with(|_| ()).is_some() { crate::blocking::unblock_io(lookup) } else { lookup() }
}

/// The call to the system's resolver. Unit tests put a resolver of their
/// own in front of it, which can be made as slow as a test needs.
mod resolver {
    use std::io;
    #[cfg(test)]
    use std::sync::{Condvar, Mutex, PoisonError};

    use super::{Addrs, Name};

    /// The system's resolution of `name`.
    #[cfg(not(test))]
    pub(super) fn lookup(name: &Name) -> io::Result<Addrs> {
        name.lookup()
    }

    /// As the real one, but a host ending in `.slow.test` waits until
    /// [`release_slow`] lets it answer (for at most 10 s), and then
    /// resolves to 127.0.0.1.
    #[cfg(test)]
    pub(super) fn lookup(name: &Name) -> io::Result<Addrs> {
        use std::time::Duration;
        let host = name.host();
        if !host.ends_with(".slow.test") {
            return name.lookup();
        }
        let (lock, released) = &SLOW;
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = released
            .wait_timeout_while(guard, Duration::from_secs(10), |hosts| !hosts.iter().any(|h| h == host))
            .unwrap_or_else(PoisonError::into_inner);
        if !guard.iter().any(|h| h == host) {
            return Err(io::Error::other("the slow test resolver was never released"));
        }
        Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], 80))].into_iter())
    }

    /// The slow hosts that may answer, and where their lookups wait.
    #[cfg(test)]
    static SLOW: (Mutex<Vec<String>>, Condvar) = (Mutex::new(Vec::new()), Condvar::new());

    /// Lets every lookup of `host` (a `*.slow.test` name) answer.
    #[cfg(test)]
    pub(super) fn release_slow(host: &str) {
        let (lock, released) = &SLOW;
        lock.lock().unwrap_or_else(PoisonError::into_inner).push(host.to_owned());
        released.notify_all();
    }
}

macro_rules! resolved_in_place {
    ($($ty:ty),* $(,)?) => {
        $(
            impl ToSocketAddrs for $ty {}

            impl sealed::Resolve for $ty {
                fn resolve(&self) -> io::Result<Addrs> {
                    one(SocketAddr::from(*self))
                }
            }
        )*
    };
}

resolved_in_place!(SocketAddr, SocketAddrV4, SocketAddrV6, (IpAddr, u16), (Ipv4Addr, u16), (Ipv6Addr, u16));

impl ToSocketAddrs for str {}

impl sealed::Resolve for str {
    fn resolve(&self) -> io::Result<Addrs> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return one(addr);
        }
        resolve_name(Name::Whole(self.to_owned()))
    }
}

impl ToSocketAddrs for String {}

impl sealed::Resolve for String {
    fn resolve(&self) -> io::Result<Addrs> {
        self.as_str().resolve()
    }
}

impl ToSocketAddrs for (&str, u16) {}

impl sealed::Resolve for (&str, u16) {
    fn resolve(&self) -> io::Result<Addrs> {
        let (host, port) = *self;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return one(SocketAddr::new(ip, port));
        }
        resolve_name(Name::Pair(host.to_owned(), port))
    }
}

impl ToSocketAddrs for (String, u16) {}

impl sealed::Resolve for (String, u16) {
    fn resolve(&self) -> io::Result<Addrs> {
        (self.0.as_str(), self.1).resolve()
    }
}

impl ToSocketAddrs for [SocketAddr] {}

impl sealed::Resolve for [SocketAddr] {
    fn resolve(&self) -> io::Result<Addrs> {
        let addrs: Vec<SocketAddr> = self.to_vec();
        Ok(addrs.into_iter())
    }
}

impl<const N: usize> ToSocketAddrs for [SocketAddr; N] {}

impl<const N: usize> sealed::Resolve for [SocketAddr; N] {
    fn resolve(&self) -> io::Result<Addrs> {
        self.as_slice().resolve()
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}

impl<T: sealed::Resolve + ?Sized> sealed::Resolve for &T {
    fn resolve(&self) -> io::Result<Addrs> {
        (**self).resolve()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    /// A lookup that the resolver holds up parks only its coroutine: a
    /// ticker on the same thread keeps running, and it is the ticker that
    /// lets the resolver answer. Were the lookup to block the thread, the
    /// ticker could never run, the resolver would give up after 10 s, and
    /// the lookup would fail.
    #[test]
    fn a_slow_resolver_does_not_stop_the_other_coroutines() {
        let (addrs, ticks) = crate::run(|| {
            let ticks = Rc::new(Cell::new(0u32));
            let seen = ticks.clone();
            let ticker = crate::spawn(move || {
                while seen.get() < 20 {
                    seen.set(seen.get() + 1);
                    crate::yield_now();
                }
                resolver::release_slow("db.slow.test");
            });
            let addrs: Vec<SocketAddr> = lookup_host("db.slow.test:5432").map(Iterator::collect)?;
            ticker.join().map_err(io::Error::other)?;
            Ok::<_, io::Error>((addrs, ticks.get()))
        })
        .expect("the lookup succeeds once the ticker releases the resolver");
        assert_eq!(addrs, [SocketAddr::from(([127, 0, 0, 1], 80))]);
        assert_eq!(ticks, 20);
    }

    #[test]
    fn numeric_addresses_are_parsed_in_place_and_names_resolve_like_std() {
        crate::run(|| {
            let parsed: Vec<_> = lookup_host("10.1.2.3:99").unwrap().collect();
            assert_eq!(parsed, [SocketAddr::from(([10, 1, 2, 3], 99))]);
            let pair: Vec<_> = lookup_host(("::1", 7)).unwrap().collect();
            assert_eq!(pair, [SocketAddr::from((Ipv6Addr::LOCALHOST, 7))]);
            let local: Vec<_> = lookup_host(("localhost", 8080)).unwrap().collect();
            let std_local: Vec<_> =
                net::ToSocketAddrs::to_socket_addrs(&("localhost", 8080)).unwrap().collect();
            assert_eq!(local, std_local);
            for bad in ["no port", "localhost:99999", "localhost:"] {
                let ours = lookup_host(bad).map(|_| ()).unwrap_err();
                let theirs = net::ToSocketAddrs::to_socket_addrs(bad).map(|_| ()).unwrap_err();
                assert_eq!(ours.kind(), theirs.kind(), "{bad}");
            }
        });
    }

    #[test]
    fn a_cancelled_lookup_returns_a_cancelled_error() {
        let err = crate::run(|| {
            let lookup = crate::spawn(|| lookup_host("cancel.slow.test:1").map(|_| ()));
            crate::yield_now(); // it is now parked on the pool
            lookup.cancel();
            let outcome = lookup.join().expect("the lookup returns its error");
            resolver::release_slow("cancel.slow.test");
            outcome
        })
        .unwrap_err();
        assert!(crate::is_cancelled(&err), "{err}");
    }
}
