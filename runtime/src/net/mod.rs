//! Networking: TCP, UDP and Unix-domain sockets with the names and
//! semantics of `std::net` and `std::os::unix::net`.
//!
//! Every operation looks blocking. Inside a coroutine it parks the
//! coroutine until the socket is ready, and the thread runs other
//! coroutines meanwhile; on a plain thread it blocks the thread, exactly
//! like the `std` type.

mod io;

pub(crate) use io::IoSource;
