//! Conversions every socket type offers, written once: to and from file
//! descriptors and the matching `std` type, and `Debug`.
//!
//! The invocation `socket_conversions!(TcpStream, std::net::TcpStream)`
//! expects a type with a field `socket: Socket<std::net::TcpStream>` and a
//! constructor `fn from_socket(Socket<std::net::TcpStream>) -> Self`, and
//! implements:
//!
//! | conversion | the descriptor afterwards |
//! |---|---|
//! | `AsRawFd`, `AsFd` | unchanged (non-blocking) |
//! | `FromRawFd`, `From<OwnedFd>`, `From<std type>` | switched to non-blocking |
//! | `IntoRawFd`, `From<green type> for OwnedFd` | left non-blocking |
//! | `From<green type> for std type` | switched back to blocking, as `std` code expects |
//!
//! `Debug` shows what the `std` type shows: the addresses and the
//! descriptor.

/// Implements the conversions in the module documentation for one type.
macro_rules! socket_conversions {
    ($green:ident, $std:ty) => {
        impl ::std::os::fd::AsRawFd for $green {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                ::std::os::fd::AsRawFd::as_raw_fd(self.socket.get_ref())
            }
        }

        impl ::std::os::fd::AsFd for $green {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                ::std::os::fd::AsFd::as_fd(self.socket.get_ref())
            }
        }

        /// The descriptor is handed over in non-blocking mode.
        impl ::std::os::fd::IntoRawFd for $green {
            fn into_raw_fd(self) -> ::std::os::fd::RawFd {
                ::std::os::fd::IntoRawFd::into_raw_fd(self.socket.into_inner())
            }
        }

        /// Takes over a descriptor and switches it to non-blocking mode.
        impl ::std::os::fd::FromRawFd for $green {
            /// # Safety
            ///
            /// `fd` must be an open socket of the kind this type wraps,
            /// owned by the caller, who hands that ownership over (as for
            /// the `std` type's `from_raw_fd`).
            unsafe fn from_raw_fd(fd: ::std::os::fd::RawFd) -> $green {
                // SAFETY: the std type's `from_raw_fd` needs `fd` to be an open socket of its kind whose
                // ownership the caller hands over; this function's `# Safety` section makes the caller
                // guarantee exactly that.
                let inner = unsafe { <$std as ::std::os::fd::FromRawFd>::from_raw_fd(fd) };
                $green::from(inner)
            }
        }

        /// Takes over a descriptor and switches it to non-blocking mode.
        impl ::std::convert::From<::std::os::fd::OwnedFd> for $green {
            fn from(fd: ::std::os::fd::OwnedFd) -> $green {
                $green::from(<$std>::from(fd))
            }
        }

        /// The descriptor is handed over in non-blocking mode.
        impl ::std::convert::From<$green> for ::std::os::fd::OwnedFd {
            fn from(socket: $green) -> ::std::os::fd::OwnedFd {
                ::std::os::fd::OwnedFd::from(socket.socket.into_inner())
            }
        }

        /// Wraps a `std` socket, switching its descriptor to non-blocking
        /// mode (so it must not be used through other handles that expect
        /// blocking calls).
        impl ::std::convert::From<$std> for $green {
            fn from(inner: $std) -> $green {
                $green::from_socket($crate::net::socket::Socket::adopt(inner))
            }
        }

        /// Unwraps the `std` socket and puts it back in blocking mode, so
        /// that it behaves as `std` code expects.
        impl ::std::convert::From<$green> for $std {
            fn from(socket: $green) -> $std {
                socket.socket.into_blocking()
            }
        }

        impl ::std::fmt::Debug for $green {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(self.socket.get_ref(), f)
            }
        }
    };
}

pub(crate) use socket_conversions;
