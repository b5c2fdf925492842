//! The protocol of `fib_server`, which `fib_probe` speaks and `showdown`
//! drives, and the list of the server's concurrency models: the parts that
//! touch no socket, so that the three programs agree on them and their
//! tests run without a network.
//!
//! The protocol is one line per request and one line per answer. The
//! client sends a whole number `n` from 0 to [`MAX_N`] and a newline; the
//! server answers with `fib(n)` and a newline, computed the slow way
//! ([`fib`]) so that a request costs CPU time that grows with `n`: `1` is
//! a cheap request, `30` takes milliseconds, `40` about a second. Any other
//! line is answered with a line that starts with `error: `, and the
//! connection goes on. A line longer than [`MAX_LINE`] bytes is answered
//! with [`TOO_LONG`] as soon as the bytes since the last newline pass the
//! limit, and the server closes that connection.
//!
//! ```
//! use green_examples::fib::{Frame, Framer, fib, parse_request};
//!
//! let mut framer = Framer::new();
//! framer.push(b"10\nabc\n4");
//! assert_eq!(framer.next_frame(), Some(Frame::Line(b"10".to_vec())));
//! assert_eq!(framer.next_frame(), Some(Frame::Line(b"abc".to_vec())));
//! assert_eq!(framer.next_frame(), None); // "4" waits for its newline
//! assert_eq!(parse_request(b"10").map(fib), Ok(55));
//! assert!(parse_request(b"abc").unwrap_err().starts_with("error: "));
//! ```

use std::fmt;
use std::hint::black_box;
use std::str::FromStr;

/// The largest `n` the server computes: `fib(40)` takes about a second.
pub const MAX_N: u32 = 40;

/// The longest line the server accepts, in bytes, without its `\n` or
/// `\r\n`.
pub const MAX_LINE: usize = 64;

/// The answer to a line longer than [`MAX_LINE`], after which the server
/// closes the connection.
pub const TOO_LONG: &str = "error: line longer than 64 bytes; closing the connection\n";

/// Bytes a server asks of a connection per read.
pub const READ_CHUNK: usize = 4096;

/// How `fib_server` serves its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// One green thread per connection on one worker, `fib` computed in
    /// the connection's coroutine.
    Green,
    /// As `Green`, but `fib` runs on the blocking pool while
    /// the coroutine waits.
    GreenPool,
    /// One green thread per connection, spread over several workers,
    /// `fib` computed in the coroutine.
    GreenWorkers,
    /// One OS thread per connection.
    Threads,
    /// Pre-forked processes sharing one listening socket, each a
    /// one-worker green runtime.
    Processes,
    /// One tokio task per connection on a multi-threaded runtime, `fib`
    /// computed in the task.
    Tokio,
    /// As `Tokio`, but `fib` runs on tokio's blocking pool.
    TokioPool,
}

impl Model {
    /// Every model, in the order `showdown` runs them.
    pub const ALL: [Model; 7] = [
        Model::Green,
        Model::GreenPool,
        Model::GreenWorkers,
        Model::Threads,
        Model::Processes,
        Model::Tokio,
        Model::TokioPool,
    ];

    /// The name `--model` takes.
    pub fn name(self) -> &'static str {
        match self {
            Model::Green => "green",
            Model::GreenPool => "green-pool",
            Model::GreenWorkers => "green-workers",
            Model::Threads => "threads",
            Model::Processes => "processes",
            Model::Tokio => "tokio",
            Model::TokioPool => "tokio-pool",
        }
    }

    /// How the model serves a connection, in a few words.
    pub fn summary(self) -> &'static str {
        match self {
            Model::Green => "a coroutine per connection on one thread; fib inline",
            Model::GreenPool => "a coroutine per connection on one thread; fib on the blocking pool",
            Model::GreenWorkers => "a coroutine per connection, spread over N workers; fib inline",
            Model::Threads => "an OS thread per connection; fib inline",
            Model::Processes => "N pre-forked processes, each one green worker; fib inline",
            Model::Tokio => "a task per connection on N tokio workers; fib inline",
            Model::TokioPool => "a task per connection on N tokio workers; fib in spawn_blocking",
        }
    }

    /// The names of all models, separated by commas, for usage texts and
    /// errors.
    pub fn names() -> String {
        Model::ALL.map(Model::name).join(", ")
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Model::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownModel;

impl FromStr for Model {
    type Err = UnknownModel;

    fn from_str(name: &str) -> Result<Model, UnknownModel> {
        Model::ALL.into_iter().find(|model| model.name() == name).ok_or(UnknownModel)
    }
}

/// `fib(n)` computed the slow way, by recursion without memory: about
/// `1.6 × fib(n)` calls, so the time it takes doubles every step and a
/// half of `n`.
///
/// [`black_box`] hides `n` from the optimizer at every call, so that it can
/// neither fold a call into a constant nor turn the recursion into a loop.
pub fn fib(n: u32) -> u64 {
    let n = black_box(n);
    if n < 2 { u64::from(n) } else { fib(n - 1) + fib(n - 2) }
}

/// `fib(n)` computed in `n` steps, for a client to check the server's
/// answers.
pub fn fib_fast(n: u32) -> u64 {
    let (mut current, mut next) = (0u64, 1u64);
    for _ in 0..n {
        (current, next) = (next, current + next);
    }
    current
}

/// Reads a request line (without its newline): the `n` to answer
/// `fib(n)` for, or the error line to answer with (newline included).
///
/// Spaces and tabs around the number, and a `\r` before the newline, are
/// allowed.
///
/// # Errors
///
/// The line is not a whole number from 0 to [`MAX_N`].
pub fn parse_request(line: &[u8]) -> Result<u32, String> {
    let text = String::from_utf8_lossy(line);
    let trimmed = text.trim_matches([' ', '\t', '\r']);
    let digits = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit());
    match trimmed.parse::<u32>() {
        Ok(n) if digits && n <= MAX_N => Ok(n),
        _ => Err(format!("error: expected a whole number from 0 to {MAX_N} (got {trimmed:?})\n")),
    }
}

/// What [`Framer`] found in the bytes pushed into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole line, without its `\n`.
    Line(Vec<u8>),
    /// More than [`MAX_LINE`] bytes without a newline: the connection is
    /// to be closed. The framer is emptied.
    TooLong,
}

/// Cuts the bytes of a connection into lines, wherever the reads split
/// them, and finds a line that is too long as soon as its bytes pass the
/// limit, without waiting for a newline that may never come.
///
/// It does no I/O itself, so that a blocking loop and an `async` one use
/// the same rules: push what a read returned, then take frames until there
/// are none.
#[derive(Debug, Default)]
pub struct Framer {
    /// Bytes pushed and not yet returned as a line.
    buffered: Vec<u8>,
}

impl Framer {
    /// An empty framer.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Adds bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffered.extend_from_slice(bytes);
    }

    /// The next whole line, [`Frame::TooLong`], or `None` when the bytes
    /// pushed so far end in the middle of a line of allowed length.
    pub fn next_frame(&mut self) -> Option<Frame> {
        let newline = self.buffered.iter().position(|&b| b == b'\n');
        let length = newline.unwrap_or(self.buffered.len());
        // A line may be one byte longer if that byte is the `\r` of `\r\n`.
        let carriage_return = length > 0 && self.buffered[length - 1] == b'\r';
        if length > MAX_LINE + usize::from(carriage_return) {
            self.buffered.clear();
            return Some(Frame::TooLong);
        }
        let newline = newline?;
        let mut line: Vec<u8> = self.buffered.drain(..=newline).collect();
        line.pop();
        Some(Frame::Line(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_and_fast_fib_agree() {
        for n in 0..=25 {
            assert_eq!(fib(n), fib_fast(n), "fib({n})");
        }
        assert_eq!(fib_fast(MAX_N), 102_334_155);
        assert_eq!(fib_fast(93), 12_200_160_415_121_876_738, "the largest that fits a u64");
    }

    #[test]
    fn every_model_is_found_by_its_name() {
        for model in Model::ALL {
            assert_eq!(model.name().parse(), Ok(model));
            assert_eq!(model.to_string(), model.name());
        }
        assert_eq!("fibers".parse::<Model>(), Err(UnknownModel));
        assert_eq!(Model::names(), "green, green-pool, green-workers, threads, processes, tokio, tokio-pool");
    }

    #[test]
    fn a_request_is_a_whole_number_up_to_the_limit() {
        assert_eq!(parse_request(b"10"), Ok(10));
        assert_eq!(parse_request(b" 0\r"), Ok(0));
        assert_eq!(parse_request(b"040"), Ok(40));
        for bad in [&b""[..], b"abc", b"41", b"-1", b"+5", b"1.5", b"99999999999", b"1 2", b"\xff"] {
            let error = parse_request(bad).unwrap_err();
            assert!(error.starts_with("error: expected a whole number from 0 to 40 (got "), "{error}");
            assert!(error.ends_with(")\n") && error.lines().count() == 1, "one line: {error:?}");
        }
        assert_eq!(
            parse_request(b"abc"),
            Err("error: expected a whole number from 0 to 40 (got \"abc\")\n".into())
        );
    }

    #[test]
    fn lines_are_found_wherever_reads_split_them() {
        let mut framer = Framer::new();
        framer.push(b"1");
        assert_eq!(framer.next_frame(), None);
        framer.push(b"2\r\n3");
        assert_eq!(framer.next_frame(), Some(Frame::Line(b"12\r".to_vec())));
        assert_eq!(framer.next_frame(), None);
        framer.push(b"\n\n");
        assert_eq!(framer.next_frame(), Some(Frame::Line(b"3".to_vec())));
        assert_eq!(framer.next_frame(), Some(Frame::Line(Vec::new())));
        assert_eq!(framer.next_frame(), None);
    }

    #[test]
    fn a_line_is_too_long_as_soon_as_it_passes_the_limit() {
        let mut framer = Framer::new();
        framer.push(&[b'x'; MAX_LINE]);
        assert_eq!(framer.next_frame(), None, "the limit itself is allowed");
        framer.push(b"\r");
        assert_eq!(framer.next_frame(), None, "it may be the \\r of \\r\\n");
        framer.push(b"\n");
        assert_eq!(framer.next_frame(), Some(Frame::Line([&[b'x'; MAX_LINE][..], b"\r"].concat())));

        framer.push(&[b'x'; MAX_LINE + 1]);
        assert_eq!(framer.next_frame(), Some(Frame::TooLong), "no newline needed");
        assert_eq!(framer.next_frame(), None, "emptied");

        framer.push(&[b'x'; MAX_LINE + 1]);
        framer.push(b"\n");
        assert_eq!(framer.next_frame(), Some(Frame::TooLong), "with its newline too");
    }

    #[test]
    fn the_too_long_answer_names_the_limit() {
        assert!(TOO_LONG.contains(&format!(" {MAX_LINE} bytes")));
        assert!(TOO_LONG.starts_with("error: ") && TOO_LONG.ends_with('\n'));
    }
}
