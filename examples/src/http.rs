//! The HTTP/1.1 of `http_hello`: a request parser, the two responses the
//! server sends, and the per-connection state that ties them together. It
//! touches no socket, so the green and the tokio server run exactly this
//! code and differ only in how they read and write, and its tests run
//! without a network.
//!
//! # What is understood
//!
//! A request is a head, a request line and header lines each ended by
//! CRLF and the whole ended by an empty line, at most [`MAX_HEAD`] bytes,
//! then a body of `Content-Length` bytes (none without the header), which
//! the server reads and throws away. The parser is incremental in the
//! simplest way: it is given every byte buffered so far and answers
//!
//! 1. [`Parse::Complete`]: the first request's head is all there; its
//!    length, its body's length and whether the connection stays open
//!    after the answer;
//! 2. [`Parse::Partial`]: nothing wrong yet, more bytes are needed;
//! 3. [`Parse::Error`]: the request is malformed (or uses what this server
//!    does not support) and gets `400 Bad Request`, after which the
//!    connection closes: once a request's framing is in doubt, nothing
//!    after it on the connection can be trusted.
//!
//! Partial is judged as early as it can be: a request line or header line
//! that has already shown a byte it may not hold is an error before its
//! CRLF arrives, so a client sending binary junk (a TLS hello, say) is
//! refused at once rather than after 8 KiB.
//!
//! | input | outcome |
//! |---|---|
//! | `HTTP/1.1` | keep-alive unless `Connection: close`; `Host` required, once |
//! | `HTTP/1.0` | close unless `Connection: keep-alive` |
//! | another `HTTP/x.y` | error: version not supported |
//! | header names | case-insensitive, tokens only, no space before the colon |
//! | `Content-Length` | digits only; two that differ are an error |
//! | `Transfer-Encoding` | error: not supported (a client must send a length) |
//! | a line folded onto the next (obsolete) | error |
//! | a line ended by a bare LF | error |
//! | empty lines before the request line | skipped, as RFC 9112 asks |
//! | a head over [`MAX_HEAD`] | error |
//!
//! # Pipelining
//!
//! A client may send its next requests before the answer to the first.
//! [`Connection::received`] answers every complete request in its buffer,
//! in order, appending the answers to one output buffer, so the server
//! writes them with one call; a request split over many reads is answered
//! when its last byte comes. The buffer holds [`READ_BUFFER`] bytes, twice
//! [`MAX_HEAD`]: what stays in it between reads is at most a partial head,
//! so a read always has at least [`MAX_HEAD`] bytes of room.
//!
//! ```
//! use green_examples::http::{Connection, Next};
//!
//! let mut connection = Connection::new();
//! let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET";
//! connection.spare()[..request.len()].copy_from_slice(request);
//! let mut out = Vec::new();
//! assert_eq!(connection.received(request.len(), &mut out), Next::Read);
//! let text = String::from_utf8(out).unwrap();
//! assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2); // the third waits for its end
//! assert!(text.ends_with("\r\n\r\nHello, world!\n"));
//! ```

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest request head accepted, in bytes, from the request line to
/// the empty line that ends the head, both included.
pub const MAX_HEAD: usize = 8 * 1024;

/// The bytes a connection buffers; each read asks for what is free of it.
pub const READ_BUFFER: usize = 2 * MAX_HEAD;

/// The body of every `200 OK`.
pub const HELLO: &[u8] = b"Hello, world!\n";

/// How long a server keeps reading (and discarding) after it has sent its
/// last answer and shut down its side of a connection it closes. Closing a
/// socket with unread bytes makes the kernel send a reset, which can
/// destroy the answer before the client has read it; reading what the
/// client still sends, for a bounded time and amount, lets the answer
/// arrive. nginx calls this a lingering close.
pub const LINGER_TIME: Duration = Duration::from_secs(1);

/// The most bytes a server discards during [`LINGER_TIME`].
pub const LINGER_BYTES: usize = 64 * 1024;

/// The length of an IMF-fixdate: `Sun, 06 Dec 2026 10:00:00 GMT`.
pub const DATE_LEN: usize = 29;

/// The HTTP versions this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`: a connection closes after each answer unless the client
    /// asks for `Connection: keep-alive`.
    Http10,
    /// `HTTP/1.1`: a connection stays open unless either side says
    /// `Connection: close`.
    Http11,
}

/// A request whose head is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Bytes of the head, from the first byte buffered (empty lines before
    /// the request line included) to the empty line that ends it.
    pub head_len: usize,
    /// Bytes of the body that follow the head, from `Content-Length`.
    pub body_len: u64,
    /// The version of the request line.
    pub version: Version,
    /// Whether the connection stays open after the answer.
    pub keep_alive: bool,
    /// Whether the method is `HEAD`, whose answer has the headers of a
    /// `GET` answer but no body.
    pub head_method: bool,
}

/// What the bytes buffered so far hold; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// The first request's head is complete.
    Complete(Request),
    /// No error yet, but the head is not complete.
    Partial,
    /// The first request is malformed or unsupported, for this reason.
    Error(&'static str),
}

/// The reason for a head longer than [`MAX_HEAD`].
const TOO_LONG: &str = "request head longer than 8192 bytes";

/// Parses the first request in `buf`, every byte buffered so far.
///
/// A partial head is parsed again from the start when more bytes come:
/// at most [`MAX_HEAD`] bytes per read, which keeps the parser free of
/// state between calls at a cost that is small against a read.
pub fn parse_request(buf: &[u8]) -> Parse {
    match parse_head(buf) {
        Ok(Some(request)) => Parse::Complete(request),
        Ok(None) => Parse::Partial,
        Err(reason) => Parse::Error(reason),
    }
}

/// What the header lines of a head said, as far as the server cares.
#[derive(Debug, Default)]
struct Headers {
    /// The value of `Content-Length`, if one was given.
    content_length: Option<u64>,
    /// `Connection` listed `close`.
    close: bool,
    /// `Connection` listed `keep-alive`.
    keep_alive: bool,
    /// How many `Host` headers there were.
    hosts: usize,
}

/// [`parse_request`], with `?`: `Ok(None)` for a partial head.
fn parse_head(buf: &[u8]) -> Result<Option<Request>, &'static str> {
    let mut pos = 0;
    let mut request_line = None;
    let mut headers = Headers::default();
    loop {
        let rest = &buf[pos..];
        let Some(newline) = rest.iter().position(|&byte| byte == b'\n') else {
            if buf.len() >= MAX_HEAD {
                return Err(TOO_LONG);
            }
            check_partial_line(rest, request_line.is_none())?;
            return Ok(None);
        };
        pos += newline + 1;
        if pos > MAX_HEAD {
            return Err(TOO_LONG);
        }
        let line = rest[..newline].strip_suffix(b"\r").ok_or("a line of the head ends without CR LF")?;
        match request_line {
            // Empty lines before the request line are skipped.
            None if line.is_empty() => {}
            None => request_line = Some(parse_request_line(line)?),
            Some((version, head_method)) if line.is_empty() => {
                return finish(pos, version, head_method, &headers).map(Some);
            }
            Some(_) => parse_header_line(line, &mut headers)?,
        }
    }
}

/// Checks the start of a line whose end has not come: it may not hold a
/// byte its kind of line never holds (a CR may only be its last byte).
fn check_partial_line(line: &[u8], is_request_line: bool) -> Result<(), &'static str> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if is_request_line {
        if !line.iter().all(|&byte| is_visible(byte) || byte == b' ') {
            return Err("the request line holds a byte that is not printable ASCII");
        }
    } else if line.first().is_some_and(|&byte| byte == b' ' || byte == b'\t') {
        return Err("a header line is folded onto the previous one (obsolete line folding)");
    } else if !line.iter().all(|&byte| is_field_byte(byte)) {
        return Err("a header line holds a control byte");
    }
    Ok(())
}

/// Parses `METHOD SP TARGET SP HTTP/1.x` and returns the version and
/// whether the method is `HEAD`.
fn parse_request_line(line: &[u8]) -> Result<(Version, bool), &'static str> {
    const MALFORMED: &str = "malformed request line (expected METHOD TARGET HTTP/1.1)";
    let mut parts = line.split(|&byte| byte == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MALFORMED);
    };
    if method.is_empty() || !method.iter().all(|&byte| is_token_byte(byte)) {
        return Err("malformed method in the request line");
    }
    if target.is_empty() || !target.iter().all(|&byte| is_visible(byte)) {
        return Err("malformed target in the request line");
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err("HTTP version not supported (only HTTP/1.0 and HTTP/1.1)");
        }
        _ => return Err(MALFORMED),
    };
    Ok((version, method == b"HEAD"))
}

/// Parses `NAME: VALUE` into what `headers` keeps of it.
fn parse_header_line(line: &[u8], headers: &mut Headers) -> Result<(), &'static str> {
    if line.first().is_some_and(|&byte| byte == b' ' || byte == b'\t') {
        return Err("a header line is folded onto the previous one (obsolete line folding)");
    }
    let colon = line.iter().position(|&byte| byte == b':').ok_or("a header line has no colon")?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&byte| is_token_byte(byte)) {
        return Err("malformed header name (a token, with no space before the colon)");
    }
    if !value.iter().all(|&byte| is_field_byte(byte)) {
        return Err("a header value holds a control byte");
    }
    let value = value.trim_ascii();
    if name.eq_ignore_ascii_case(b"content-length") {
        let length = parse_length(value)?;
        if headers.content_length.is_some_and(|earlier| earlier != length) {
            return Err("two Content-Length headers that differ");
        }
        headers.content_length = Some(length);
    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
        return Err("Transfer-Encoding is not supported (send Content-Length)");
    } else if name.eq_ignore_ascii_case(b"connection") {
        for option in value.split(|&byte| byte == b',').map(<[u8]>::trim_ascii) {
            headers.close |= option.eq_ignore_ascii_case(b"close");
            headers.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
        }
    } else if name.eq_ignore_ascii_case(b"host") {
        headers.hosts += 1;
    }
    Ok(())
}

/// A `Content-Length` value: one or more digits, at most `u64::MAX`.
fn parse_length(value: &[u8]) -> Result<u64, &'static str> {
    const MALFORMED: &str = "malformed Content-Length (expected a whole number of bytes)";
    if value.is_empty() {
        return Err(MALFORMED);
    }
    value.iter().try_fold(0u64, |length, &byte| {
        if !byte.is_ascii_digit() {
            return Err(MALFORMED);
        }
        length.checked_mul(10).and_then(|length| length.checked_add(u64::from(byte - b'0'))).ok_or(MALFORMED)
    })
}

/// The request whose head ended at `head_len`, once its headers agree with
/// its version.
fn finish(
    head_len: usize,
    version: Version,
    head_method: bool,
    headers: &Headers,
) -> Result<Request, &'static str> {
    if headers.hosts > 1 {
        return Err("more than one Host header");
    }
    let keep_alive = match version {
        Version::Http11 if headers.hosts == 0 => return Err("an HTTP/1.1 request without a Host header"),
        Version::Http11 => !headers.close,
        Version::Http10 => headers.keep_alive && !headers.close,
    };
    Ok(Request { head_len, body_len: headers.content_length.unwrap_or(0), version, keep_alive, head_method })
}

/// A byte of a token (a method, a header name): RFC 9110's `tchar`.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A visible ASCII byte, not a space.
fn is_visible(byte: u8) -> bool {
    (0x21..=0x7e).contains(&byte)
}

/// A byte a header line may hold: visible ASCII, space, tab, or (obsolete
/// but allowed in values) any byte above ASCII.
fn is_field_byte(byte: u8) -> bool {
    is_visible(byte) || byte == b' ' || byte == b'\t' || byte >= 0x80
}

/// Appends the answer to `request`: `200 OK` and [`HELLO`] (no body for
/// `HEAD`), dated `date`. A `Connection` header says what happens to the
/// connection whenever the version's default does not.
pub fn write_hello(out: &mut Vec<u8>, request: &Request, date: &[u8; DATE_LEN]) {
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nServer: green-examples\r\nContent-Type: text/plain\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, HELLO.len());
    match (request.version, request.keep_alive) {
        (Version::Http11, true) => {}
        (Version::Http10, true) => out.extend_from_slice(b"\r\nConnection: keep-alive"),
        (_, false) => out.extend_from_slice(b"\r\nConnection: close"),
    }
    out.extend_from_slice(b"\r\n\r\n");
    if !request.head_method {
        out.extend_from_slice(HELLO);
    }
}

/// Appends `400 Bad Request`, dated `date`, whose body is a line giving
/// `reason`; the server closes the connection after it.
pub fn write_bad_request(out: &mut Vec<u8>, reason: &str, date: &[u8; DATE_LEN]) {
    const PREFIX: &str = "bad request: ";
    out.extend_from_slice(
        b"HTTP/1.1 400 Bad Request\r\nServer: green-examples\r\nContent-Type: text/plain\r\nDate: ",
    );
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\nContent-Length: ");
    push_decimal(out, PREFIX.len() + reason.len() + 1);
    out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    out.extend_from_slice(PREFIX.as_bytes());
    out.extend_from_slice(reason.as_bytes());
    out.push(b'\n');
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// `secs` seconds after the Unix epoch as an IMF-fixdate, the one date
/// format HTTP senders use: `Sun, 06 Dec 2026 10:00:00 GMT`. Years past
/// 9999 do not fit its four digits; they give the last second of 9999.
pub fn imf_fixdate(secs: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    /// 9999-12-31 23:59:59 UTC.
    const LAST: u64 = 253_402_300_799;
    let secs = secs.min(LAST);
    let (days, second_of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);

    let mut text = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    // 1970-01-01 was a Thursday, the first of `DAYS`.
    text[0..3].copy_from_slice(DAYS[(days % 7) as usize]);
    two_digits(&mut text[5..7], day);
    text[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two_digits(&mut text[12..14], year / 100);
    two_digits(&mut text[14..16], year % 100);
    two_digits(&mut text[17..19], hour);
    two_digits(&mut text[20..22], minute);
    two_digits(&mut text[23..25], second);
    text
}

/// Writes `n`, below 100, as two digits.
fn two_digits(slot: &mut [u8], n: u64) {
    slot[0] = b'0' + (n / 10) as u8;
    slot[1] = b'0' + (n % 10) as u8;
}

/// The proleptic Gregorian (year, month 1-12, day 1-31) of the day `days`
/// after 1970-01-01.
///
/// The calendar is counted from 0000-03-01 in eras of 400 years (146,097
/// days, which repeat exactly), each year starting in March so that the
/// leap day is the year's last; this is Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Days from 0000-03-01 to 1970-01-01.
    let days = days + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 0 is March, 11 February.
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 { march_month + 3 } else { march_month - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// The `Date` of the answers a thread writes, formatted once a second.
#[derive(Debug)]
struct DateCache {
    /// The second since the epoch `text` is for.
    second: u64,
    /// That second as an IMF-fixdate.
    text: [u8; DATE_LEN],
}

impl DateCache {
    /// The date of `now`, formatted again only if its second is not the
    /// last one asked for.
    fn at(&mut self, now: SystemTime) -> [u8; DATE_LEN] {
        // A clock set before 1970 dates answers 1970-01-01.
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
        if second != self.second {
            self.second = second;
            self.text = imf_fixdate(second);
        }
        self.text
    }
}

thread_local! {
    /// Each thread's cache: the servers' threads never share one.
    static DATE: RefCell<DateCache> = RefCell::new(DateCache { second: 0, text: imf_fixdate(0) });
}

/// The current time as an IMF-fixdate, from this thread's cache, which
/// formats a date at most once a second.
pub fn current_date() -> [u8; DATE_LEN] {
    DATE.with(|cache| cache.borrow_mut().at(SystemTime::now()))
}

/// What a server does after [`Connection::received`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Write the answers (if any) and read again.
    Read,
    /// Write the answers, then close the connection: the last request
    /// asked for it, or was malformed.
    Close,
}

/// One connection's side of the protocol: the bytes received and not yet
/// answered, and what is left to skip of a request body. The server reads
/// into [`spare`](Connection::spare), says how many bytes came with
/// [`received`](Connection::received), and writes what it appended.
#[derive(Debug)]
pub struct Connection {
    /// [`READ_BUFFER`] bytes: a partial request head at the front, then
    /// room for the next read.
    buf: Box<[u8]>,
    /// How many bytes at the front of `buf` hold data.
    filled: usize,
    /// Bytes of the last request's body not received yet, to be skipped
    /// when they come.
    body_left: u64,
}

impl Default for Connection {
    fn default() -> Connection {
        Connection::new()
    }
}

impl Connection {
    /// A connection that has received nothing.
    pub fn new() -> Connection {
        Connection { buf: vec![0; READ_BUFFER].into_boxed_slice(), filled: 0, body_left: 0 }
    }

    /// The free part of the buffer, where the next read goes: never less
    /// than [`MAX_HEAD`] bytes.
    pub fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.filled..]
    }

    /// Takes in `n` bytes just read into [`spare`](Connection::spare),
    /// appends to `out` the answer to every request now complete, in order,
    /// and says whether to read on or close after writing them.
    ///
    /// # Panics
    ///
    /// If `n` is more than the length of `spare`.
    pub fn received(&mut self, n: usize, out: &mut Vec<u8>) -> Next {
        assert!(n <= self.buf.len() - self.filled, "received more bytes than spare() had room for");
        self.filled += n;
        let date = current_date();
        let mut pos = 0;
        let next = loop {
            let skipped = self.body_left.min((self.filled - pos) as u64);
            pos += skipped as usize;
            self.body_left -= skipped;
            if self.body_left > 0 {
                break Next::Read;
            }
            match parse_request(&self.buf[pos..self.filled]) {
                Parse::Complete(request) => {
                    write_hello(out, &request, &date);
                    pos += request.head_len;
                    self.body_left = request.body_len;
                    if !request.keep_alive {
                        break Next::Close;
                    }
                }
                Parse::Partial => break Next::Read,
                Parse::Error(reason) => {
                    write_bad_request(out, reason, &date);
                    break Next::Close;
                }
            }
        };
        // What is left is a partial head, shorter than MAX_HEAD (longer is
        // an error), so the next read has at least MAX_HEAD bytes of room.
        self.buf.copy_within(pos..self.filled, 0);
        self.filled -= pos;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(text: &[u8]) -> Request {
        match parse_request(text) {
            Parse::Complete(request) => request,
            other => {
                panic!("{:?}: expected a complete request, got {other:?}", String::from_utf8_lossy(text))
            }
        }
    }

    fn error(text: &[u8]) -> &'static str {
        match parse_request(text) {
            Parse::Error(reason) => reason,
            other => panic!("{:?}: expected an error, got {other:?}", String::from_utf8_lossy(text)),
        }
    }

    /// Feeds `chunks` to a new connection, one read each, and returns the
    /// answers of each read and what the last one said.
    fn feed(chunks: &[&[u8]]) -> (Vec<String>, Next) {
        let mut connection = Connection::new();
        let mut answers = Vec::new();
        let mut next = Next::Read;
        for chunk in chunks {
            connection.spare()[..chunk.len()].copy_from_slice(chunk);
            let mut out = Vec::new();
            next = connection.received(chunk.len(), &mut out);
            answers.push(String::from_utf8(out).unwrap());
        }
        (answers, next)
    }

    /// The status lines in `text`, in order (a body ends with `\n` alone).
    fn statuses(text: &str) -> Vec<&str> {
        text.split(['\r', '\n']).filter(|line| line.starts_with("HTTP/1.1 ")).collect()
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n";

    #[test]
    fn a_simple_get_is_complete_and_keeps_the_connection() {
        let request = complete(GET);
        assert_eq!(
            request,
            Request {
                head_len: GET.len(),
                body_len: 0,
                version: Version::Http11,
                keep_alive: true,
                head_method: false
            }
        );
    }

    #[test]
    fn every_prefix_of_a_request_is_partial() {
        let text = b"POST /submit?x=1 HTTP/1.1\r\nHost: example\r\nContent-Length: 5\r\nX-A: b\tc\r\n\r\n";
        for end in 0..text.len() {
            assert_eq!(parse_request(&text[..end]), Parse::Partial, "{end}");
        }
        assert_eq!(complete(text).body_len, 5);
    }

    #[test]
    fn versions_and_connection_decide_keep_alive() {
        let cases: [(&[u8], bool); 8] = [
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: a\r\nconnection: Upgrade, CLOSE\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nCONNECTION:Keep-Alive\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: upgrade\r\n\r\n", false),
        ];
        for (text, keep_alive) in cases {
            assert_eq!(complete(text).keep_alive, keep_alive, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn header_names_are_case_insensitive_and_values_trimmed() {
        let request = complete(b"GET / HTTP/1.1\r\nhOsT: a\r\ncontent-LENGTH: \t 12 \r\n\r\n");
        assert_eq!(request.body_len, 12);
        assert_eq!(
            complete(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n").body_len,
            7
        );
    }

    #[test]
    fn empty_lines_before_the_request_line_are_skipped() {
        let text = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(complete(text).head_len, text.len());
    }

    #[test]
    fn malformed_request_lines_are_errors() {
        for text in [
            &b"GET /\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTX/1.1\r\nHost: a\r\n\r\n",
            b"GET / http/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"hello\r\n\r\n",
        ] {
            error(text);
        }
        assert_eq!(
            error(b"GET / HTTP/2.0\r\n\r\n"),
            "HTTP version not supported (only HTTP/1.0 and HTTP/1.1)"
        );
        assert_eq!(error(b"GET / HTTP/1.1\nHost: a\n\n"), "a line of the head ends without CR LF");
    }

    #[test]
    fn malformed_headers_are_errors() {
        for text in [
            &b"GET / HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nName : value\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ] {
            error(text);
        }
        assert_eq!(
            error(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
            "Transfer-Encoding is not supported (send Content-Length)"
        );
    }

    #[test]
    fn junk_is_refused_before_its_line_ends() {
        assert!(matches!(parse_request(b"\x16\x03\x01\x02\x00"), Parse::Error(_)));
        assert!(matches!(parse_request(b"GET / HTTP/1.1\r\nX: \x00"), Parse::Error(_)));
        assert!(matches!(parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n\tfold"), Parse::Error(_)));
        // A CR at the very end is the start of CR LF.
        assert_eq!(parse_request(b"GET / HTTP/1.1\r"), Parse::Partial);
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: a\r"), Parse::Partial);
    }

    #[test]
    fn a_head_is_limited_to_max_head_bytes() {
        let start = b"GET / HTTP/1.1\r\nHost: a\r\nX: ";
        let end = b"\r\n\r\n";
        let fill = |total: usize| {
            let mut text = start.to_vec();
            text.resize(total - end.len(), b'x');
            text.extend_from_slice(end);
            text
        };
        let exactly = fill(MAX_HEAD);
        assert_eq!(complete(&exactly).head_len, MAX_HEAD);
        assert_eq!(error(&fill(MAX_HEAD + 1)), TOO_LONG);
        // Without its end: partial below the limit, an error at it.
        assert_eq!(parse_request(&exactly[..MAX_HEAD - 1]), Parse::Partial);
        assert_eq!(error(&vec![b'x'; MAX_HEAD]), TOO_LONG);
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_in_one_buffer() {
        let text = [
            GET,
            b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        ]
        .concat();
        let (answers, next) = feed(&[&text]);
        assert_eq!(next, Next::Close);
        let answer = &answers[0];
        assert_eq!(statuses(answer), ["HTTP/1.1 200 OK"; 3]);
        // The HEAD answer has no body: two bodies for three answers.
        assert_eq!(answer.matches("\r\n\r\nHello, world!\n").count(), 2);
        assert_eq!(answer.matches("Connection: close\r\n").count(), 1);
        assert!(answer.ends_with("Connection: close\r\n\r\nHello, world!\n"));
    }

    #[test]
    fn a_request_split_byte_by_byte_is_answered_once_complete() {
        let chunks: Vec<&[u8]> = GET.chunks(1).collect();
        let (answers, next) = feed(&chunks);
        assert_eq!(next, Next::Read);
        assert!(answers[..answers.len() - 1].iter().all(String::is_empty));
        assert_eq!(statuses(&answers[answers.len() - 1]), ["HTTP/1.1 200 OK"]);
    }

    #[test]
    fn a_body_is_skipped_even_across_reads() {
        let post = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123";
        let (answers, next) = feed(&[post, b"456", b"789GET / HTTP/1.1\r\nHost: a\r\n\r\n"]);
        assert_eq!(next, Next::Read);
        assert_eq!(statuses(&answers[0]), ["HTTP/1.1 200 OK"]);
        assert_eq!(answers[1], "");
        assert_eq!(statuses(&answers[2]), ["HTTP/1.1 200 OK"]);
    }

    #[test]
    fn a_malformed_request_gets_400_after_the_good_ones_and_nothing_after_it() {
        let text = [GET, b"BAD\r\n\r\n", GET].concat();
        let (answers, next) = feed(&[&text]);
        assert_eq!(next, Next::Close);
        assert_eq!(statuses(&answers[0]), ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"]);
        let bad = &answers[0][answers[0].find("HTTP/1.1 400").unwrap()..];
        assert!(bad.contains("\r\nConnection: close\r\n"), "{bad}");
        let (head, body) = bad.split_once("\r\n\r\n").unwrap();
        let length = head.lines().find_map(|line| line.strip_prefix("Content-Length: ")).unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), body.len());
        assert!(body.starts_with("bad request: malformed request line"), "{body}");
    }

    #[test]
    fn the_buffer_always_has_room_for_a_whole_head() {
        let mut connection = Connection::new();
        let mut out = Vec::new();
        let partial = vec![b'x'; MAX_HEAD - 1];
        let text = [GET, &partial].concat();
        connection.spare()[..text.len()].copy_from_slice(&text);
        assert_eq!(connection.received(text.len(), &mut out), Next::Read);
        assert!(connection.spare().len() > MAX_HEAD);
    }

    #[test]
    fn the_hello_answer_has_a_correct_length_and_date() {
        let date = imf_fixdate(1_796_551_200);
        let mut out = Vec::new();
        write_hello(&mut out, &complete(GET), &date);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let head = format!("{head}\r\n");
        assert_eq!(body, "Hello, world!\n");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("\r\nContent-Length: 14\r\n"), "{head}");
        assert!(head.contains("\r\nDate: Sun, 06 Dec 2026 10:00:00 GMT\r\n"), "{head}");
        assert!(!head.contains("Connection"), "{head}");

        let mut out = Vec::new();
        write_hello(&mut out, &complete(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), &date);
        assert!(String::from_utf8(out).unwrap().contains("\r\nConnection: keep-alive\r\n"));
    }

    #[test]
    fn dates_match_known_timestamps() {
        let known = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_709_164_799, "Wed, 28 Feb 2024 23:59:59 GMT"),
            (1_796_551_200, "Sun, 06 Dec 2026 10:00:00 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (u64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (secs, text) in known {
            assert_eq!(std::str::from_utf8(&imf_fixdate(secs)).unwrap(), text, "{secs}");
        }
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_one_before() {
        // Each day's date is the day after the previous one's: no day is
        // skipped or repeated, month lengths and leap years included.
        let mut last = civil_from_days(0);
        for days in 1..146_097 * 2 {
            let (year, month, day) = civil_from_days(days);
            let (last_year, last_month, last_day) = last;
            let next_day = (year, month, day) == (last_year, last_month, last_day + 1);
            let next_month = day == 1 && (year, month) == (last_year, last_month + 1);
            let next_year = (month, day) == (1, 1) && (year, last_month, last_day) == (last_year + 1, 12, 31);
            assert!(next_day || next_month || next_year, "{last:?} then {:?}", (year, month, day));
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            if next_month || next_year {
                let expected = match last_month {
                    2 if leap => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                assert_eq!(last_day, expected, "{last:?}");
            }
            last = (year, month, day);
        }
    }

    #[test]
    fn the_date_cache_formats_again_only_when_the_second_changes() {
        let mut cache = DateCache { second: 0, text: imf_fixdate(0) };
        let at = |secs: f64| UNIX_EPOCH + Duration::from_secs_f64(secs);
        assert_eq!(&cache.at(at(1_796_551_200.2)), b"Sun, 06 Dec 2026 10:00:00 GMT");
        assert_eq!(&cache.at(at(1_796_551_200.9)), b"Sun, 06 Dec 2026 10:00:00 GMT");
        assert_eq!(&cache.at(at(1_796_551_201.0)), b"Sun, 06 Dec 2026 10:00:01 GMT");
    }
}
