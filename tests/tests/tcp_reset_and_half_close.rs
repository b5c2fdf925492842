//! How a connection ends: a peer that resets it (RST), and a peer that
//! closes only its sending half (FIN) and goes on reading.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use green_tests::net::{connected_pair, join_io, set_linger_zero};

#[test]
fn a_reset_wakes_the_parked_reader_with_connection_reset() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (client, mut server) = connected_pair()?;
        let reader = green::spawn(move || -> io::Result<(io::ErrorKind, io::Result<usize>)> {
            let mut buf = [0; 16];
            let kind = server.read(&mut buf).expect_err("the peer reset the connection").kind();
            // Linux reports the reset once; the connection is then closed.
            Ok((kind, server.write(b"anyone there?")))
        });
        green::yield_now(); // the reader parks: nothing has arrived

        // SO_LINGER 0: closing sends RST instead of FIN.
        set_linger_zero(&client)?;
        drop(client);

        let (kind, write) = join_io(reader)?;
        assert_eq!(kind, io::ErrorKind::ConnectionReset);
        let write_kind = write.expect_err("writing to a reset connection fails").kind();
        assert!(
            matches!(write_kind, io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset),
            "writing to a reset connection failed with {write_kind:?}"
        );
        Ok(())
    })
}

#[test]
fn half_close_gives_the_peer_end_of_file_and_keeps_the_other_direction() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut client, mut server) = connected_pair()?;
        let responder = green::spawn(move || -> io::Result<Vec<u8>> {
            // Reads the whole request: it ends when the client shuts down
            // its sending half.
            let mut request = Vec::new();
            server.read_to_end(&mut request)?;
            server.write_all(b"response after end of request")?;
            Ok(request)
        });

        client.write_all(b"a request of unknown length")?;
        client.shutdown(Shutdown::Write)?;
        let err = client.write(b"more").expect_err("the sending half is shut down");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);

        let mut response = String::new();
        client.read_to_string(&mut response)?; // ends when the server drops its stream
        assert_eq!(response, "response after end of request");
        assert_eq!(join_io(responder)?, b"a request of unknown length");
        Ok(())
    })
}

#[test]
fn shutdown_read_makes_reads_return_end_of_file() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut client, _server) = connected_pair()?;
        client.shutdown(Shutdown::Read)?;
        let mut buf = [0; 8];
        assert_eq!(client.read(&mut buf)?, 0);
        Ok(())
    })
}
