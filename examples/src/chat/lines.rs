//! Splitting a client's byte stream into lines, with a limit on the length
//! of a line that holds however the client behaves: a line longer than the
//! limit is reported as soon as the bytes since the last newline pass it,
//! without waiting for a newline that may never come, so a reader never
//! holds more than the limit plus one read.

use std::io::{self, Read};

/// What [`LineReader`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line of text, without its `\n` or `\r\n`.
    Text(String),
    /// A line longer than the limit, found as soon as the bytes since the
    /// last newline passed it; the reader is left mid-line.
    TooLong,
    /// A line that is not UTF-8; it was discarded.
    NotUtf8,
}

/// Splits a byte stream into lines of at most `max` bytes, holding no more
/// than `max` bytes plus one read.
#[derive(Debug)]
pub struct LineReader<R> {
    /// Where the bytes come from.
    inner: R,
    /// Bytes read but not yet returned as a line.
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    /// The longest line accepted, without its newline.
    max: usize,
    /// Whether `inner` has reached its end.
    eof: bool,
}

/// Bytes asked of the stream per read.
pub const READ_CHUNK: usize = 4096;

impl<R: Read> LineReader<R> {
    /// Reads lines of at most `max` bytes from `inner`.
    pub fn new(inner: R, max: usize) -> LineReader<R> {
        LineReader { inner, buf: Vec::new(), scanned: 0, max, eof: false }
    }

    /// The next line, or `None` at the end of the stream. A last line
    /// without a newline counts as a line.
    ///
    /// [`Line::TooLong`] comes as soon as the bytes since the last newline
    /// are more than a line may hold, without waiting for the newline; the
    /// stream is then mid-line, and the caller is expected to stop reading
    /// (the chat disconnects the client).
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            if let Some(at) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=self.scanned + at).collect();
                self.scanned = 0;
                line.pop();
                return Ok(Some(self.finish(line)));
            }
            self.scanned = self.buf.len();
            // One byte more than `max` may be the `\r` of a `\r\n`.
            let room = self.max + usize::from(self.buf.last() == Some(&b'\r'));
            if self.buf.len() > room {
                self.buf.clear();
                self.scanned = 0;
                return Ok(Some(Line::TooLong));
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let line = std::mem::take(&mut self.buf);
                self.scanned = 0;
                return Ok(Some(self.finish(line)));
            }
            let mut chunk = [0; READ_CHUNK];
            match self.inner.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Judges a complete line (its `\n` removed).
    fn finish(&self, mut line: Vec<u8>) -> Line {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > self.max {
            return Line::TooLong;
        }
        match String::from_utf8(line) {
            Ok(text) => Line::Text(text),
            Err(_) => Line::NotUtf8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read.
    struct Trickle<'a> {
        /// What is left to read.
        data: &'a [u8],
        /// Bytes per read.
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// The lines of `data`, up to the end or the first over-long line.
    fn lines(data: &[u8], max: usize, step: usize) -> Vec<Line> {
        let mut reader = LineReader::new(Trickle { data, step }, max);
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            let too_long = line == Line::TooLong;
            lines.push(line);
            if too_long {
                break;
            }
        }
        lines
    }

    #[test]
    fn lines_are_split_on_newlines_whatever_the_reads() {
        for step in [1, 2, 3, 7, 4096] {
            let found = lines(b"hello\r\nworld\n\nlast without newline", 64, step);
            let expected = ["hello", "world", "", "last without newline"].map(|t| Line::Text(t.to_owned()));
            assert_eq!(found, expected, "step {step}");
        }
    }

    #[test]
    fn a_non_utf8_line_is_reported_and_the_next_line_is_read() {
        for step in [1, 5, 4096] {
            let found = lines(b"fits\n\xff\xfe bad\n0123456789\r\n0123456789\n", 10, step);
            let expected = [
                Line::Text(String::from("fits")),
                Line::NotUtf8,
                Line::Text(String::from("0123456789")),
                Line::Text(String::from("0123456789")),
            ];
            assert_eq!(found, expected, "step {step}");
        }
    }

    #[test]
    fn an_over_long_line_is_reported_whether_or_not_its_newline_has_come() {
        for step in [1, 5, 4096] {
            let found = lines(b"fits\nyyyyyyyyyyy\r\nnever read\n", 10, step);
            assert_eq!(found, [Line::Text(String::from("fits")), Line::TooLong], "step {step}");
            assert_eq!(lines(&[b'z'; 50], 10, step), [Line::TooLong], "a last line without a newline");
        }
    }

    /// A client that streams bytes and never sends a newline.
    struct Endless {
        /// Bytes handed out so far.
        given: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            buf.fill(b'x');
            self.given += buf.len();
            Ok(buf.len())
        }
    }

    /// Regression: a partial line was held (and skipped) until its newline
    /// came, so a client that never sent one was never told, and kept its
    /// connection and the reader's time forever.
    #[test]
    fn a_line_without_end_is_too_long_as_soon_as_it_passes_the_limit() {
        for max in [1, 10, 1024, 100_000] {
            let mut reader = LineReader::new(Endless { given: 0 }, max);
            assert_eq!(reader.next_line().unwrap(), Some(Line::TooLong), "max {max}");
            assert!(reader.inner.given <= max + 1 + READ_CHUNK, "max {max}: read {}", reader.inner.given);
            assert!(reader.buf.capacity() <= 2 * (max + 1 + READ_CHUNK), "max {max}: memory stays bounded");
        }
    }
}
