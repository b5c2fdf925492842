//! Networking: TCP, UDP and Unix-domain sockets with the names and
//! semantics of `std::net` and `std::os::unix::net`.
//!
//! Every operation looks blocking. Inside a coroutine it parks the
//! coroutine until the socket is ready, and the thread runs other
//! coroutines meanwhile; on a plain thread it blocks the thread, exactly
//! like the `std` type.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use green::net::{TcpListener, TcpStream};
//!
//! green::run(|| -> std::io::Result<()> {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     // A line-echo server: one coroutine per connection.
//!     green::spawn(move || -> std::io::Result<()> {
//!         for stream in listener.incoming() {
//!             let stream = stream?;
//!             green::spawn(move || -> std::io::Result<()> {
//!                 let mut line = String::new();
//!                 BufReader::new(&stream).read_line(&mut line)?;
//!                 (&stream).write_all(line.as_bytes())
//!             });
//!         }
//!         Ok(())
//!     });
//!     let clients: Vec<_> = (0..10)
//!         .map(|i| green::spawn(move || -> std::io::Result<String> {
//!             let mut stream = TcpStream::connect(addr)?;
//!             writeln!(stream, "client {i}")?;
//!             let mut reply = String::new();
//!             BufReader::new(stream).read_line(&mut reply)?;
//!             Ok(reply)
//!         }))
//!         .collect();
//!     for (i, client) in clients.into_iter().enumerate() {
//!         assert_eq!(client.join().unwrap()?, format!("client {i}\n"));
//!     }
//!     Ok(())
//! }).unwrap();
//! ```
//!
//! # Inside and outside a runtime
//!
//! The same socket works in both places. This was chosen over refusing to
//! work outside a runtime (tokio's choice) so that code written for `std`
//! keeps working when part of a program is not green, e.g. a plain thread
//! that talks to a green server in a test. The descriptor is always
//! non-blocking; on `EAGAIN` a coroutine parks on the runtime's epoll
//! reactor, while a plain thread blocks in `poll(2)`.
//!
//! # What differs from `std`
//!
//! * **Timeouts** (`set_read_timeout`, `set_write_timeout`) are enforced
//!   by the wait and fail with [`ErrorKind::TimedOut`](std::io::ErrorKind)
//!   (`std` on Unix says `WouldBlock`). They belong to one handle: a
//!   `try_clone` starts with a copy and keeps its own, where `std`'s clones
//!   share theirs. A timeout over 584 years is no timeout and reads back
//!   as `None`; `std` does the same from about 290 million years on (e.g.
//!   for `Duration::MAX`).
//! * **`set_ttl(u32::MAX)`** fails with `InvalidInput`, like every value
//!   outside 1..=255; `std` passes it to the kernel as `-1`, which resets
//!   the default, so the call succeeds and sets 64. The same holds for
//!   `UdpSocket::set_multicast_ttl_v4` (range 0..=255).
//! * **`set_nonblocking(true)`** makes an operation return `WouldBlock`
//!   instead of waiting. It is never needed to keep a thread from
//!   blocking. Like the timeouts, the mode belongs to one handle.
//! * **Running out of descriptors** does not fail `accept`: listeners back
//!   off and retry, printing one line to stderr (see [`TcpListener`]).
//! * **Cancellation**: a wait interrupted because the coroutine is
//!   cancelled fails with an error that [`crate::is_cancelled`]
//!   recognises. A connect cut short this way, or by its timeout, closes
//!   its half-made socket.
//!
//! # Caveats
//!
//! * Resolving a host name (`connect("example.com:80")`, [`lookup_host`])
//!   calls `getaddrinfo(3)` on the blocking pool ([`crate::blocking`]):
//!   the coroutine parks, the others run, and a lookup costs a hand-off to
//!   a pool thread. An address written as numbers needs no lookup. The
//!   address parameters take [`ToSocketAddrs`], a sealed trait with
//!   `std`'s implementations (strings, pairs, `SocketAddr`s, slices).
//! * A socket registers with the runtime of the first coroutine that waits
//!   on it, and can wait only there while that runtime runs (plain threads
//!   can always use it). Once that runtime has ended, the next runtime to
//!   wait on it takes it over. To hand a connection to a runtime on another
//!   thread, move it there before its first wait, or give that runtime its
//!   own descriptor with `try_clone`.
//! * `O_NONBLOCK` belongs to the open file description, which `try_clone`
//!   and `dup` share. Converting one handle back to a `std` socket (which
//!   switches the descriptor to blocking mode) while a green clone lives
//!   makes that clone block its thread.
//!
//! # Where things are
//!
//! One socket type per file (`tcp_listener.rs`, `tcp_stream.rs`, `udp.rs`,
//! `unix_listener.rs`, `unix_stream.rs`, `unix_datagram.rs`), each a thin
//! layer over its `std` counterpart wrapped in a `Socket` (`socket.rs`:
//! timeouts, non-blocking mode, the argument checks `std` lacks), around an
//! `IoSource` (`io.rs`: owns the `std` socket and its registration with a
//! reactor, runs the retry-on-`EAGAIN` loop, and deregisters before the
//! descriptor closes). `accept.rs` is the accept loop and its
//! descriptor-shortage policy, `backoff.rs` the pause it uses, `sys.rs` the
//! raw system calls `std` cannot make (a non-blocking connect, `accept4`),
//! `addr.rs` address resolution, `convert.rs` the conversions to and from
//! descriptors and `std` types.

mod accept;
mod addr;
mod backoff;
mod convert;
mod io;
mod socket;
pub(crate) mod sys;
mod tcp_listener;
mod tcp_stream;
mod udp;
mod unix_datagram;
mod unix_listener;
mod unix_stream;

pub use addr::{ToSocketAddrs, lookup_host};

/// Socket operations a thread completes without waiting before the
/// coroutine that completes the next one yields to the others: so a
/// connection whose data is always ready cannot starve the rest of its
/// worker (as tokio's budget of 128 per task).
pub(crate) const IO_BUDGET: u32 = 128;
pub use tcp_listener::{Incoming, TcpListener};
pub use tcp_stream::TcpStream;
pub use udp::UdpSocket;
pub use unix_datagram::UnixDatagram;
pub use unix_listener::{UnixIncoming, UnixListener};
pub use unix_stream::UnixStream;

/// Every socket type is `Send` and `Sync`, like its `std` counterpart
/// (checked at compile time).
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<TcpListener>();
    send_and_sync::<TcpStream>();
    send_and_sync::<UdpSocket>();
    send_and_sync::<UnixListener>();
    send_and_sync::<UnixStream>();
    send_and_sync::<UnixDatagram>();
    send_and_sync::<Incoming<'_>>();
    send_and_sync::<UnixIncoming<'_>>();
};
