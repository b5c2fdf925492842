//! Reads and writes that move less than asked: a writer pushing 8 MiB in
//! uneven `write` calls while the reader takes odd-sized bites, `write_all`
//! parking on a full socket buffer until the peer reads, `read_exact`, and
//! `read_exact` cut short by end-of-file.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};

use green_tests::net::{connected_pair, join_io, set_buffer_sizes};

/// The size of the big transfers.
const TOTAL: usize = 8 * 1024 * 1024;

/// Byte `i` of every transfer: a period (251) that no chunk size divides,
/// so a lost, repeated or reordered chunk shows.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

#[test]
fn eight_mebibytes_in_uneven_writes_and_odd_reads() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut writer, mut reader) = connected_pair()?;
        let sender = green::spawn(move || -> io::Result<usize> {
            let data: Vec<u8> = (0..TOTAL).map(pattern).collect();
            let sizes = [1, 3, 1000, 65_537, 1 << 20];
            let (mut offset, mut calls) = (0, 0);
            while offset < TOTAL {
                let end = (offset + sizes[calls % sizes.len()]).min(TOTAL);
                let n = if calls % 2 == 0 {
                    writer.write(&data[offset..end])?
                } else {
                    // Vectored: the same bytes split in two slices.
                    let mid = offset + (end - offset) / 2;
                    writer
                        .write_vectored(&[IoSlice::new(&data[offset..mid]), IoSlice::new(&data[mid..end])])?
                };
                assert!(n > 0 && n <= end - offset, "write returned {n} for {} bytes", end - offset);
                offset += n;
                calls += 1;
            }
            writer.shutdown(std::net::Shutdown::Write)?;
            Ok(calls)
        });

        let sizes = [7, 1, 4093, 65_521, 13];
        let mut buf = vec![0; 65_521];
        let (mut received, mut reads) = (0, 0);
        loop {
            let want = sizes[reads % sizes.len()];
            let n = if reads % 3 == 2 {
                let (a, b) = buf[..want].split_at_mut(want / 2);
                reader.read_vectored(&mut [IoSliceMut::new(a), IoSliceMut::new(b)])?
            } else {
                reader.read(&mut buf[..want])?
            };
            if n == 0 {
                break;
            }
            for (k, byte) in buf[..n].iter().enumerate() {
                assert_eq!(*byte, pattern(received + k), "byte {} is wrong", received + k);
            }
            received += n;
            reads += 1;
        }
        assert_eq!(received, TOTAL);
        join_io(sender)?;
        Ok(())
    })
}

#[test]
fn write_all_parks_on_a_full_buffer_until_the_peer_reads() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut writer, mut reader) = connected_pair()?;
        // Buffers of a few hundred kilobytes, far less than 8 MiB. (Much
        // smaller ones, below two loopback segments of 64 KiB, would stall
        // TCP itself on window probes.)
        set_buffer_sizes(&writer, 128 * 1024)?;
        set_buffer_sizes(&reader, 128 * 1024)?;

        // One `write` on a socket with little room sends part of the buffer
        // and returns its length instead of waiting for room for the rest.
        let big: Vec<u8> = (0..TOTAL).map(pattern).collect();
        let first = writer.write(&big)?;
        assert!(first > 0 && first < TOTAL, "a write of 8 MiB into a small buffer returned {first}");

        let sender = green::spawn(move || -> io::Result<()> { writer.write_all(&big[first..]) });
        // The sender runs until the buffers are full and it parks.
        green::yield_now();
        assert!(!sender.is_finished(), "write_all of 8 MiB finished with nobody reading");

        let mut received = vec![0; TOTAL];
        reader.read_exact(&mut received)?;
        join_io(sender)?;
        assert!(received.iter().enumerate().all(|(i, byte)| *byte == pattern(i)), "corrupted transfer");
        Ok(())
    })
}

#[test]
fn read_exact_waits_for_every_byte_and_reports_a_short_stream() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let (mut writer, mut reader) = connected_pair()?;
        let sender = green::spawn(move || -> io::Result<()> {
            // Three writes, parked between by yields: the reader sees the
            // bytes arrive in pieces.
            for piece in [&b"par"[..], b"tial", b"ly sent, then closed"] {
                writer.write_all(piece)?;
                green::yield_now();
            }
            Ok(())
        });
        let mut first = [0; 7];
        reader.read_exact(&mut first)?;
        assert_eq!(&first, b"partial");

        // Fewer bytes remain than asked for: the stream ends first.
        let mut rest = [0; 64];
        let err = reader.read_exact(&mut rest).expect_err("the stream ends before 64 more bytes");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        join_io(sender)?;
        Ok(())
    })
}
