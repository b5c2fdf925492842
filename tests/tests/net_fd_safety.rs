//! The edges of the socket API: the numbers it is given and the
//! descriptors it hands over.
//!
//! * Every numeric argument `std` also takes (time-to-live values, read,
//!   write and connect timeouts, datagram sizes) gives the result `std`
//!   gives, checked side by side, except `set_ttl(u32::MAX)`, which `std`
//!   wraps to `-1` (reset the default) and green refuses.
//! * Timeouts too long to expire (`Duration::MAX`, 584 years) neither wrap
//!   into an instant timeout nor fail: the wait simply lasts until the data
//!   comes.
//! * A socket that has waited in a runtime (and so is in its epoll set)
//!   and is then converted to a `std` socket, an `OwnedFd` or a raw
//!   descriptor leaves the epoll set first, whether it is converted in the
//!   runtime or on another thread.

use std::io::{self, Read, Write};
use std::net;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net as unix;
use std::thread;
use std::time::Duration;

use green::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixStream};
use green_tests::net::SocketPath;

/// Time-to-live values on both sides of every boundary: 0, the valid
/// range, the largest `c_int`, and the values that wrap to negative ones.
const TTLS: [u32; 9] = [0, 1, 64, 255, 256, i32::MAX as u32, i32::MAX as u32 + 1, u32::MAX - 1, u32::MAX];

/// Timeouts longer than any wait: the longest the sockets store exactly,
/// and two that they store as "none", as the kernel does for `std`.
const ENDLESS: [Duration; 3] = [Duration::from_nanos(u64::MAX), Duration::from_secs(u64::MAX), Duration::MAX];

/// The error kind of a result, or `None` for success.
fn kind<T>(result: &io::Result<T>) -> Option<io::ErrorKind> {
    result.as_ref().err().map(io::Error::kind)
}

/// Compares `set` on a green socket with the same call on a `std` socket
/// for every value in [`TTLS`]: the same outcome, and a refused value
/// leaves the option as it was. `u32::MAX` is the exception: `std` passes
/// it on as `-1`, which resets the default, and green refuses it.
fn compare_ttls(
    option: &str,
    green_set: impl Fn(u32) -> io::Result<()>,
    green_get: impl Fn() -> io::Result<u32>,
    std_set: impl Fn(u32) -> io::Result<()>,
) -> io::Result<()> {
    for ttl in TTLS {
        let before = green_get()?;
        let green = green_set(ttl);
        let std = std_set(ttl);
        if ttl == u32::MAX {
            assert_eq!(kind(&std), None, "std {option}({ttl}) wraps to -1 and succeeds");
            assert_eq!(kind(&green), Some(io::ErrorKind::InvalidInput), "green {option}({ttl})");
        } else {
            assert_eq!(kind(&green), kind(&std), "{option}({ttl}): green {green:?}, std {std:?}");
        }
        match green {
            Ok(()) => assert_eq!(green_get()?, ttl, "{option}({ttl})"),
            Err(_) => assert_eq!(green_get()?, before, "a refused {option}({ttl}) changed the option"),
        }
    }
    Ok(())
}

#[test]
fn ttls_are_checked_as_std_checks_them_and_never_wrap() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let std_listener = net::TcpListener::bind("127.0.0.1:0")?;
    compare_ttls(
        "TcpListener::set_ttl",
        |t| listener.set_ttl(t),
        || listener.ttl(),
        |t| std_listener.set_ttl(t),
    )?;

    let stream = TcpStream::connect(listener.local_addr()?)?;
    let std_stream = net::TcpStream::connect(std_listener.local_addr()?)?;
    compare_ttls("TcpStream::set_ttl", |t| stream.set_ttl(t), || stream.ttl(), |t| std_stream.set_ttl(t))?;

    let udp = UdpSocket::bind("127.0.0.1:0")?;
    let std_udp = net::UdpSocket::bind("127.0.0.1:0")?;
    compare_ttls("UdpSocket::set_ttl", |t| udp.set_ttl(t), || udp.ttl(), |t| std_udp.set_ttl(t))?;
    compare_ttls(
        "UdpSocket::set_multicast_ttl_v4",
        |t| udp.set_multicast_ttl_v4(t),
        || udp.multicast_ttl_v4(),
        |t| std_udp.set_multicast_ttl_v4(t),
    )
}

/// The timeout setters and getters of one socket type, green and `std`.
struct Timeouts<'a> {
    /// The type's name, for messages.
    name: &'a str,
    /// `set_read_timeout` and `set_write_timeout` of the green socket.
    green_set: [&'a dyn Fn(Option<Duration>) -> io::Result<()>; 2],
    /// `read_timeout` and `write_timeout` of the green socket.
    green_get: [&'a dyn Fn() -> io::Result<Option<Duration>>; 2],
    /// `set_read_timeout` and `set_write_timeout` of the `std` socket.
    std_set: [&'a dyn Fn(Option<Duration>) -> io::Result<()>; 2],
    /// `read_timeout` and `write_timeout` of the `std` socket.
    std_get: [&'a dyn Fn() -> io::Result<Option<Duration>>; 2],
}

impl Timeouts<'_> {
    /// Zero is refused with `InvalidInput` and leaves the timeout as it
    /// was; a timeout that can never expire reads back as `None`; a normal
    /// one reads back as set. Both as `std` does.
    fn compare(&self) -> io::Result<()> {
        for (side, direction) in ["read", "write"].into_iter().enumerate() {
            let what = format!("{}::set_{direction}_timeout", self.name);
            let second = Some(Duration::from_secs(1));
            (self.green_set[side])(second)?;
            (self.std_set[side])(second)?;
            let green = (self.green_set[side])(Some(Duration::ZERO));
            let std = (self.std_set[side])(Some(Duration::ZERO));
            assert_eq!(kind(&green), Some(io::ErrorKind::InvalidInput), "{what}(0)");
            assert_eq!(kind(&std), Some(io::ErrorKind::InvalidInput), "std {what}(0)");
            assert_eq!((self.green_get[side])()?, second, "a refused {what}(0) changed the timeout");
            for endless in [Duration::from_secs(u64::MAX), Duration::MAX] {
                (self.green_set[side])(Some(endless))?;
                (self.std_set[side])(Some(endless))?;
                assert_eq!((self.std_get[side])()?, None, "std {what}({endless:?})");
                assert_eq!((self.green_get[side])()?, None, "{what}({endless:?})");
            }
            (self.green_set[side])(second)?;
            assert_eq!((self.green_get[side])()?, second, "{what}(1 s)");
        }
        Ok(())
    }
}

#[test]
fn timeouts_refuse_zero_and_read_back_endless_ones_as_none_like_std() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let tcp = TcpStream::connect(listener.local_addr()?)?;
    let std_listener = net::TcpListener::bind("127.0.0.1:0")?;
    let std_tcp = net::TcpStream::connect(std_listener.local_addr()?)?;
    Timeouts {
        name: "TcpStream",
        green_set: [&|t| tcp.set_read_timeout(t), &|t| tcp.set_write_timeout(t)],
        green_get: [&|| tcp.read_timeout(), &|| tcp.write_timeout()],
        std_set: [&|t| std_tcp.set_read_timeout(t), &|t| std_tcp.set_write_timeout(t)],
        std_get: [&|| std_tcp.read_timeout(), &|| std_tcp.write_timeout()],
    }
    .compare()?;

    let udp = UdpSocket::bind("127.0.0.1:0")?;
    let std_udp = net::UdpSocket::bind("127.0.0.1:0")?;
    Timeouts {
        name: "UdpSocket",
        green_set: [&|t| udp.set_read_timeout(t), &|t| udp.set_write_timeout(t)],
        green_get: [&|| udp.read_timeout(), &|| udp.write_timeout()],
        std_set: [&|t| std_udp.set_read_timeout(t), &|t| std_udp.set_write_timeout(t)],
        std_get: [&|| std_udp.read_timeout(), &|| std_udp.write_timeout()],
    }
    .compare()?;

    let (stream, _) = UnixStream::pair()?;
    let (std_stream, _) = unix::UnixStream::pair()?;
    Timeouts {
        name: "UnixStream",
        green_set: [&|t| stream.set_read_timeout(t), &|t| stream.set_write_timeout(t)],
        green_get: [&|| stream.read_timeout(), &|| stream.write_timeout()],
        std_set: [&|t| std_stream.set_read_timeout(t), &|t| std_stream.set_write_timeout(t)],
        std_get: [&|| std_stream.read_timeout(), &|| std_stream.write_timeout()],
    }
    .compare()?;

    let (datagram, _) = UnixDatagram::pair()?;
    let (std_datagram, _) = unix::UnixDatagram::pair()?;
    Timeouts {
        name: "UnixDatagram",
        green_set: [&|t| datagram.set_read_timeout(t), &|t| datagram.set_write_timeout(t)],
        green_get: [&|| datagram.read_timeout(), &|| datagram.write_timeout()],
        std_set: [&|t| std_datagram.set_read_timeout(t), &|t| std_datagram.set_write_timeout(t)],
        std_get: [&|| std_datagram.read_timeout(), &|| std_datagram.write_timeout()],
    }
    .compare()
}

#[test]
fn a_read_with_an_endless_timeout_waits_for_its_data_in_a_coroutine() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        for timeout in ENDLESS {
            let (reader, mut writer) = UnixStream::pair()?;
            reader.set_read_timeout(Some(timeout))?;
            let read = green::spawn(move || -> io::Result<Vec<u8>> {
                let mut buf = [0; 5];
                (&reader).read_exact(&mut buf)?;
                Ok(buf.to_vec())
            });
            green::yield_now(); // the reader runs, finds nothing and parks
            writer.write_all(b"hello")?;
            let data = read.join().map_err(|_| io::Error::other("the reader panicked"))??;
            assert_eq!(data, b"hello", "read timeout {timeout:?}");
        }
        Ok(())
    })
}

#[test]
fn a_read_with_an_endless_timeout_waits_for_its_data_on_a_plain_thread() -> io::Result<()> {
    for timeout in ENDLESS {
        let (reader, mut writer) = UnixStream::pair()?;
        reader.set_read_timeout(Some(timeout))?;
        let read = thread::spawn(move || -> io::Result<Vec<u8>> {
            let mut buf = [0; 5];
            (&reader).read_exact(&mut buf)?;
            Ok(buf.to_vec())
        });
        writer.write_all(b"hello")?;
        let data = read.join().map_err(|_| io::Error::other("the reader panicked"))??;
        assert_eq!(data, b"hello", "read timeout {timeout:?}");
    }
    Ok(())
}

#[test]
fn connect_timeout_refuses_zero_and_takes_endless_durations_like_std() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let check = || -> io::Result<()> {
        let green = TcpStream::connect_timeout(&addr, Duration::ZERO);
        let std = net::TcpStream::connect_timeout(&addr, Duration::ZERO);
        assert_eq!(kind(&green), Some(io::ErrorKind::InvalidInput));
        assert_eq!(kind(&green), kind(&std));
        for timeout in ENDLESS {
            let stream = TcpStream::connect_timeout(&addr, timeout)?;
            assert_eq!(stream.peer_addr()?, addr, "connect_timeout({timeout:?})");
            net::TcpStream::connect_timeout(&addr, timeout)?;
        }
        Ok(())
    };
    check()?; // on a plain thread
    green::run(check)
}

#[test]
fn oversized_datagrams_fail_as_with_std_instead_of_waiting() -> io::Result<()> {
    // Over the 65,507 bytes an IPv4 UDP datagram can carry.
    let udp = UdpSocket::bind("127.0.0.1:0")?;
    let std_udp = net::UdpSocket::bind("127.0.0.1:0")?;
    let to = std_udp.local_addr()?;
    let big = vec![0; 70_000];
    // Over the sender's buffer (`net.core.wmem_max` caps it below 300 KB
    // unless raised), which a Unix datagram must fit in.
    let huge = vec![0; 64 << 20];
    let path = SocketPath::new("fd-safety-datagram");
    let receiver = unix::UnixDatagram::bind(path.path())?;
    let (pair, _peer) = UnixDatagram::pair()?;
    let (std_pair, _std_peer) = unix::UnixDatagram::pair()?;
    let datagram = UnixDatagram::unbound()?;
    let std_datagram = unix::UnixDatagram::unbound()?;
    let check = || -> io::Result<()> {
        let green = udp.send_to(&big, to).map(drop);
        let std = std_udp.send_to(&big, to).map(drop);
        assert!(green.is_err(), "a 70,000-byte UDP datagram was sent");
        assert_eq!(green.unwrap_err().raw_os_error(), std.unwrap_err().raw_os_error());

        let green = datagram.send_to(&huge, path.path()).map(drop);
        let std = std_datagram.send_to(&huge, path.path()).map(drop);
        assert!(green.is_err(), "a 64 MiB Unix datagram was sent");
        assert_eq!(green.unwrap_err().raw_os_error(), std.unwrap_err().raw_os_error());

        let green = pair.send(&huge).map(drop);
        let std = std_pair.send(&huge).map(drop);
        assert!(green.is_err(), "a 64 MiB Unix datagram was sent");
        assert_eq!(green.unwrap_err().raw_os_error(), std.unwrap_err().raw_os_error());
        Ok(())
    };
    check()?; // on a plain thread
    green::run(check)?;
    drop(receiver);
    Ok(())
}

#[test]
fn unix_addresses_too_long_for_sun_path_are_refused_like_std() -> io::Result<()> {
    let long = std::env::temp_dir().join("x".repeat(200));
    let green = UnixStream::connect(&long).map(drop);
    let std = unix::UnixStream::connect(&long).map(drop);
    assert_eq!(kind(&green), Some(io::ErrorKind::InvalidInput));
    assert_eq!(kind(&green), kind(&std));
    Ok(())
}

/// How many epoll instances of this process have `fd` in their set, read
/// from `/proc/self/fdinfo` (an epoll descriptor lists one `tfd:` line per
/// descriptor it watches). While `fd` is open no other descriptor has its
/// number, so any entry found is for it.
fn epoll_sets_holding(fd: RawFd) -> io::Result<usize> {
    let mut holding = 0;
    for entry in std::fs::read_dir("/proc/self/fdinfo")? {
        // Other tests open and close descriptors meanwhile: skip those gone.
        let Ok(info) = std::fs::read_to_string(entry?.path()) else { continue };
        let watched = info
            .lines()
            .filter_map(|line| line.strip_prefix("tfd:"))
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<RawFd>().ok());
        holding += watched.filter(|&watched| watched == fd).count();
    }
    Ok(holding)
}

/// A connected pair whose first end has waited in the running runtime, and
/// so is in its epoll set.
fn registered_pair() -> io::Result<(UnixStream, UnixStream)> {
    let (a, mut b) = UnixStream::pair()?;
    let reader = green::spawn(move || -> io::Result<UnixStream> {
        let mut buf = [0; 1];
        (&a).read_exact(&mut buf)?;
        Ok(a)
    });
    green::yield_now(); // the reader finds nothing and waits: registered
    b.write_all(b"x")?;
    let a = reader.join().map_err(|_| io::Error::other("the reader panicked"))??;
    assert_eq!(epoll_sets_holding(a.as_raw_fd())?, 1, "a socket that waited is registered");
    Ok((a, b))
}

#[test]
fn converting_a_registered_socket_takes_it_out_of_the_epoll_set_first() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (a, _b) = registered_pair()?;
        let std: unix::UnixStream = a.into();
        assert_eq!(epoll_sets_holding(std.as_raw_fd())?, 0, "From<UnixStream> for std");

        let (a, _b) = registered_pair()?;
        let owned = OwnedFd::from(a);
        assert_eq!(epoll_sets_holding(owned.as_raw_fd())?, 0, "From<UnixStream> for OwnedFd");

        let (a, _b) = registered_pair()?;
        // The raw descriptor is adopted at once, so that it is closed.
        let fd = a.into_raw_fd();
        assert_eq!(epoll_sets_holding(fd)?, 0, "IntoRawFd");
        // SAFETY: `into_raw_fd` just handed over `fd`, open and owned by
        // nobody else.
        drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        Ok(())
    })
}

#[test]
fn a_registered_socket_converted_on_another_thread_leaves_the_epoll_set() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (a, _b) = registered_pair()?;
        let fd = a.as_raw_fd();
        let converted = thread::spawn(move || OwnedFd::from(a))
            .join()
            .map_err(|_| io::Error::other("the converting thread panicked"))?;
        assert_eq!(converted.as_raw_fd(), fd);
        assert_eq!(epoll_sets_holding(fd)?, 0, "converted on another thread");
        Ok(())
    })
}
