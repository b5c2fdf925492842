//! A TCP read that returns less than it asked for marks the socket drained,
//! and the next read waits for the next readable event instead of trying
//! first (one `EAGAIN` system call saved per request). These tests attack
//! that shortcut: data that arrives while the reader is away, end of stream
//! after a short read, timeouts, several readers of one socket, a switch to
//! non-blocking mode, a stream moved to another runtime, and 100,000 short
//! reads. Each would hang, lose data or read a stale end of stream if the
//! mark outlived the data it described.

use std::io::{self, Read, Write};
use std::time::Duration;

use green::JoinHandle;
use green::net::TcpStream;
use green_tests::net::{connected_pair, join_io};

#[test]
fn data_that_arrives_while_the_reader_is_away_is_read_after_a_short_read() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut writer, mut reader) = connected_pair()?;
        let (ready_tx, ready_rx) = green::channel::bounded::<()>(1);
        let (sent_tx, sent_rx) = green::channel::bounded::<()>(1);
        let peer = green::spawn(move || -> io::Result<()> {
            writer.write_all(b"first")?;
            ready_rx.recv().map_err(io::Error::other)?;
            // The reader has drained the socket and is parked on a channel,
            // not on the socket: the readable event finds no waiter.
            writer.write_all(b"second")?;
            sent_tx.send(()).map_err(io::Error::other)?;
            Ok(())
        });
        let mut buf = [0u8; 64];
        let n = reader.read(&mut buf)?;
        assert_eq!(&buf[..n], b"first", "a short read");
        ready_tx.send(()).map_err(io::Error::other)?;
        sent_rx.recv().map_err(io::Error::other)?;
        // Let the runtime poll (and see the event) before the next read.
        for _ in 0..10 {
            green::yield_now();
        }
        let n = reader.read(&mut buf)?;
        assert_eq!(&buf[..n], b"second");
        join_io(peer)
    })
}

#[test]
fn end_of_stream_after_a_short_read_is_read_every_time() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut writer, mut reader) = connected_pair()?;
        writer.write_all(b"last words")?;
        let mut buf = [0u8; 64];
        let n = reader.read(&mut buf)?;
        assert_eq!(&buf[..n], b"last words");
        drop(writer);
        assert_eq!(reader.read(&mut buf)?, 0, "end of stream");
        assert_eq!(reader.read(&mut buf)?, 0, "end of stream, again, without waiting");
        Ok(())
    })
}

#[test]
fn an_end_of_stream_announced_with_the_last_data_is_read_after_it() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut writer, mut reader) = connected_pair()?;
        let (go_tx, go_rx) = green::channel::bounded::<()>(1);
        let peer = green::spawn(move || -> io::Result<()> {
            writer.write_all(b"x")?;
            go_rx.recv().map_err(io::Error::other)?;
            // The last data and the end of stream, together.
            writer.write_all(b"abc")?;
            writer.shutdown(std::net::Shutdown::Write)?;
            Ok(())
        });
        let mut buf = [0u8; 64];
        // The first read waits (so the socket is registered), then reads
        // short: drained.
        assert_eq!(reader.read(&mut buf)?, 1);
        go_tx.send(()).map_err(io::Error::other)?;
        join_io(peer)?;
        // The runtime polls: the readable event and the peer's shutdown
        // are seen together, before the next read.
        for _ in 0..10 {
            green::yield_now();
        }
        let n = reader.read(&mut buf)?;
        assert_eq!(&buf[..n], b"abc", "the last data, short: drained again");
        // No new event will come: the end of stream must be read anyway.
        assert_eq!(reader.read(&mut buf)?, 0, "end of stream");
        Ok(())
    })
}

#[test]
fn a_read_timeout_after_a_short_read_still_times_out_and_later_data_is_read() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut writer, mut reader) = connected_pair()?;
        reader.set_read_timeout(Some(Duration::from_millis(20)))?;
        writer.write_all(b"a")?;
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf)?, 1);
        let err = reader.read(&mut buf).expect_err("nothing more was sent");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        writer.write_all(b"b")?;
        assert_eq!(reader.read(&mut buf)?, 1);
        assert_eq!(buf[0], b'b');
        Ok(())
    })
}

#[test]
fn a_full_read_does_not_mark_the_socket_drained() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut writer, mut reader) = connected_pair()?;
        writer.write_all(b"abcdefgh")?;
        drop(writer);
        let mut buf = [0u8; 4];
        // Make sure all eight bytes are queued before the first read.
        let mut got = Vec::new();
        while got.len() < 8 {
            let n = reader.read(&mut buf)?;
            assert!(n > 0, "end of stream after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"abcdefgh");
        assert_eq!(reader.read(&mut buf)?, 0);
        Ok(())
    })
}

#[test]
fn two_coroutines_reading_one_socket_get_every_byte_between_them() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut writer, reader) = connected_pair()?;
        let reader = std::sync::Arc::new(reader);
        let readers: Vec<JoinHandle<io::Result<usize>>> = (0..2)
            .map(|_| {
                let reader = reader.clone();
                green::spawn(move || -> io::Result<usize> {
                    let mut total = 0;
                    let mut buf = [0u8; 3];
                    loop {
                        match (&*reader).read(&mut buf)? {
                            0 => return Ok(total),
                            n => total += n,
                        }
                    }
                })
            })
            .collect();
        for i in 0..1_000u32 {
            writer.write_all(&[(i % 251) as u8; 5])?;
            if i % 7 == 0 {
                green::yield_now();
            }
        }
        drop(writer);
        let mut total = 0;
        for reader in readers {
            total += join_io(reader)?;
        }
        assert_eq!(total, 5_000);
        Ok(())
    })
}

#[test]
fn switching_to_non_blocking_and_back_after_a_short_read_loses_nothing() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut writer, mut reader) = connected_pair()?;
        writer.write_all(b"x")?;
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf)?, 1);
        reader.set_nonblocking(true)?;
        let err = reader.read(&mut buf).expect_err("nothing is queued");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        writer.write_all(b"yz")?;
        reader.set_nonblocking(false)?;
        let mut got = Vec::new();
        while got.len() < 2 {
            let n = reader.read(&mut buf)?;
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"yz");
        Ok(())
    })
}

#[test]
fn a_stream_drained_in_one_runtime_reads_in_the_next() -> io::Result<()> {
    let (mut writer, mut reader) = green::run(|| -> io::Result<(TcpStream, TcpStream)> {
        let (mut writer, mut reader) = connected_pair()?;
        writer.write_all(b"one")?;
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf)?, 3);
        Ok((writer, reader))
    })?;
    writer.write_all(b"two")?;
    green::run(move || -> io::Result<()> {
        let mut buf = [0u8; 8];
        let n = reader.read(&mut buf)?;
        assert_eq!(&buf[..n], b"two");
        Ok(())
    })
}

#[test]
fn a_hundred_thousand_request_response_rounds_each_with_a_short_read() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut client, mut server) = connected_pair()?;
        let echo = green::spawn(move || -> io::Result<u64> {
            let mut buf = [0u8; 64];
            let mut rounds = 0;
            loop {
                match server.read(&mut buf)? {
                    0 => return Ok(rounds),
                    n => {
                        server.write_all(&buf[..n])?;
                        rounds += 1;
                    }
                }
            }
        });
        let mut buf = [0u8; 64];
        for i in 0..100_000u32 {
            let message = i.to_le_bytes();
            client.write_all(&message)?;
            client.read_exact(&mut buf[..4])?;
            assert_eq!(buf[..4], message);
        }
        drop(client);
        assert_eq!(join_io(echo)?, 100_000);
        Ok(())
    })
}
