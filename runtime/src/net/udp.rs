//! [`UdpSocket`]: `std::net::UdpSocket` for coroutines.

use std::io;
use std::net::{self, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::net::addr::{self, ToSocketAddrs};
use crate::net::convert::socket_conversions;
use crate::net::socket::{self, Socket, Ttl};

/// A UDP socket.
///
/// The API of [`std::net::UdpSocket`]. Sends and receives park the calling
/// coroutine until the socket is ready (on a plain thread they block the
/// thread). Read and write timeouts fail a call with
/// [`io::ErrorKind::TimedOut`] and belong to this handle, as for
/// [`TcpStream`](crate::net::TcpStream#timeouts).
///
/// # Examples
///
/// ```
/// use green::net::UdpSocket;
///
/// green::run(|| -> std::io::Result<()> {
///     let a = UdpSocket::bind("127.0.0.1:0")?;
///     let b = UdpSocket::bind("127.0.0.1:0")?;
///     a.send_to(b"hi", b.local_addr()?)?;
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf)?;
///     assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr()?));
///     Ok(())
/// }).unwrap();
/// ```
pub struct UdpSocket {
    /// The `std` socket, non-blocking, with its readiness and timeouts.
    socket: Socket<net::UdpSocket>,
}

socket_conversions!(UdpSocket, net::UdpSocket);

impl UdpSocket {
    fn from_socket(socket: Socket<net::UdpSocket>) -> UdpSocket {
        UdpSocket { socket }
    }

    /// Creates a socket bound to `addr`, trying each address it resolves
    /// to in turn.
    ///
    /// # Errors
    ///
    /// The last address's error, or `InvalidInput` if `addr` resolves to
    /// nothing.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        addr::each_addr(addr, |addr| Ok(UdpSocket::from_socket(Socket::new(net::UdpSocket::bind(addr)?)?)))
    }

    /// Receives one datagram, parking until one arrives; returns its length
    /// and sender. A datagram longer than `buf` is cut to fit.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.read_with(|socket| socket.recv_from(buf))
    }

    /// Like [`recv_from`](UdpSocket::recv_from), leaving the datagram
    /// queued.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.read_with(|socket| socket.peek_from(buf))
    }

    /// Sends `buf` as one datagram to the first address `addr` resolves to,
    /// parking while the send buffer is full.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `addr` resolves to nothing; the errors of
    /// `sendto(2)`.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let addr = addr::first_addr(addr)?;
        self.socket.write_with(|socket| socket.send_to(buf, addr))
    }

    /// Sets the default destination of [`send`](UdpSocket::send) and the
    /// only source [`recv`](UdpSocket::recv) accepts, using the first
    /// address `addr` resolves to that works. Does not wait: UDP has no
    /// handshake.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        addr::each_addr(addr, |addr| self.socket.get_ref().connect(addr))
    }

    /// Sends `buf` to the connected address.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write_with(|socket| socket.send(buf))
    }

    /// Receives one datagram from the connected address.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read_with(|socket| socket.recv(buf))
    }

    /// Like [`recv`](UdpSocket::recv), leaving the datagram queued.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read_with(|socket| socket.peek(buf))
    }

    /// The connected address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().peer_addr()
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a `ttl` outside 1..=255, also for `u32::MAX`,
    /// which `std` passes on as `-1` and so resets the default instead.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.socket.get_ref().set_ttl(socket::check_ttl(ttl, Ttl::Unicast)?)
    }

    /// Gets `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.socket.get_ref().ttl()
    }

    /// Sets `SO_BROADCAST`, which allows sending to a broadcast address.
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.socket.get_ref().set_broadcast(broadcast)
    }

    /// Gets `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.socket.get_ref().broadcast()
    }

    /// Joins an IPv4 multicast group on the interface with address
    /// `interface` (`0.0.0.0`: let the system choose).
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.socket.get_ref().join_multicast_v4(group, interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.socket.get_ref().leave_multicast_v4(group, interface)
    }

    /// Joins an IPv6 multicast group on the interface with index
    /// `interface` (0: let the system choose).
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.socket.get_ref().join_multicast_v6(group, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.socket.get_ref().leave_multicast_v6(group, interface)
    }

    /// Sets `IP_MULTICAST_LOOP`: whether this host receives its own IPv4
    /// multicast datagrams.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.socket.get_ref().set_multicast_loop_v4(on)
    }

    /// Gets `IP_MULTICAST_LOOP`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.socket.get_ref().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL` (0 keeps multicast datagrams on this host).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a `ttl` over 255, also for `u32::MAX`, which
    /// `std` passes on as `-1` and so resets the default instead.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.socket.get_ref().set_multicast_ttl_v4(socket::check_ttl(ttl, Ttl::Multicast)?)
    }

    /// Gets `IP_MULTICAST_TTL`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.socket.get_ref().multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.socket.get_ref().set_multicast_loop_v6(on)
    }

    /// Gets `IPV6_MULTICAST_LOOP`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.socket.get_ref().multicast_loop_v6()
    }

    /// Bounds every later receive call to `timeout`; `None` waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }

    /// Bounds every later send call to `timeout`; `None` waits forever.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero duration, as `std` does.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_write_timeout(timeout)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.socket.read_timeout())
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.socket.write_timeout())
    }

    /// Chooses whether sends and receives wait (the default) or return
    /// `WouldBlock`; the descriptor is non-blocking at the OS level either
    /// way.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.socket.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending error of the socket (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.socket.get_ref().take_error()
    }

    /// Creates a second handle to the same socket (a duplicated
    /// descriptor), with a copy of this handle's timeouts and mode.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket::from_socket(self.socket.try_clone(net::UdpSocket::try_clone)?))
    }
}
