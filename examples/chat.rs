//! A line-based TCP chat server on green threads: every line a client sends
//! goes to every other client.
//!
//! ```text
//! cargo run --release --example chat -- --port 7001
//! nc 127.0.0.1 7001          # in two or more terminals; type lines
//! ```
//!
//! # Structure
//!
//! ```text
//!                      HubEvent (bounded channel)
//!   client A ──reader A──┐                      ┌──> [queue A] ──writer A──> client A
//!   client B ──reader B──┼──> hub coroutine ────┼──> [queue B] ──writer B──> client B
//!   client C ──reader C──┘   (owns the members) └──> [queue C] ──writer C──> client C
//!                              try_send only         bounded: --queue lines
//! ```
//!
//! Each client has a reader coroutine (socket to hub) and a writer
//! coroutine (its own outgoing queue to socket). The hub is the only owner
//! of the member list and never waits on a client: it hands each line to
//! every other member's queue with `try_send`.
//!
//! # Slow clients
//!
//! A client that does not read (or reads slower than the others talk) fills
//! its socket buffers, then its outgoing queue. When the queue is full the
//! hub **disconnects that client** and says so on the server log, as IRC
//! servers do ("SendQ exceeded") and Redis does (client output buffer
//! limits). Chosen over dropping lines for it: a chat with silent holes is
//! worse than a clear disconnect the client can notice and recover from
//! (reconnect), and a client that stopped reading altogether would
//! otherwise cost a full queue of memory forever. Either way the others
//! never wait for it: the hub only ever `try_send`s.
//!
//! # Malformed input
//!
//! Lines longer than `--max-line` bytes and lines that are not UTF-8 are
//! not sent on; the client is told why, the server log says so, and the
//! connection carries on with the next line. A reader never holds more than
//! `--max-line` bytes plus one read's worth, however long the line.
//!
//! The hub logic ([`Hub`]) and the line splitting ([`LineReader`]) do not
//! touch sockets, so their tests run without a network
//! (`cargo test -p green-examples --example chat`).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use green::channel::{self, Receiver, Sender, TrySendError};
use green::net::{TcpListener, TcpStream};

const USAGE: &str = "\
usage: chat [--addr IP] [--port PORT] [--queue N] [--max-line BYTES]

A line-based TCP chat server: every line a client sends goes to every
other client. Connect with `nc 127.0.0.1 PORT`.

  --addr IP          address to listen on (default 127.0.0.1)
  --port PORT        port to listen on; 0 picks a free one (default 7001)
  --queue N          lines queued for a client that is slow to read; when
                     they are full, that client is disconnected (default 64)
  --max-line BYTES   longest line accepted, without the newline; longer
                     lines are refused with a message (default 1024)";

/// Events the hub can have waiting: more than that, and readers park (the
/// clients that talk fastest are held back by TCP's own flow control).
const HUB_QUEUE: usize = 1024;

fn main() {
    let flags = green_examples::Flags::from_env(USAGE, &["addr", "port", "queue", "max-line"]);
    let addr = SocketAddr::new(flags.get("addr", IpAddr::from([127, 0, 0, 1])), flags.get("port", 7001));
    let queue: usize = flags.get("queue", 64usize).max(1);
    let max_line: usize = flags.get("max-line", 1024usize).max(1);

    if let Err(err) = green::run(|| serve(addr, queue, max_line)) {
        eprintln!("chat: {err}");
        std::process::exit(1);
    }
}

/// Accepts clients forever.
fn serve(addr: SocketAddr, queue: usize, max_line: usize) -> io::Result<()> {
    let listener = TcpListener::bind(addr)
        .map_err(|err| io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}")))?;
    println!(
        "chat: listening on {} (queue of {queue} lines per client, lines up to {max_line} bytes)",
        listener.local_addr()?
    );
    let (hub, events) = channel::bounded(HUB_QUEUE);
    green::task::Builder::new().name("hub").spawn(move || run_hub(&events, queue))?;

    let mut next_id = 1;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) => {
                // Typically out of descriptors: report, let connections
                // close, try again. Only this coroutine waits.
                eprintln!("chat: accept failed: {err}");
                let _ = green::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let id = next_id;
        next_id += 1;
        if let Err(err) = start_client(id, stream, peer, &hub, queue, max_line) {
            eprintln!("chat: cannot serve {peer}: {err}");
        }
    }
}

/// Starts the reader and the writer of a new client and tells the hub.
fn start_client(
    id: u64,
    stream: TcpStream,
    peer: SocketAddr,
    hub: &Sender<HubEvent>,
    queue: usize,
    max_line: usize,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let stream = Arc::new(stream);
    let (outgoing, lines) = channel::bounded(queue);
    let name = format!("guest{id}");
    {
        let stream = stream.clone();
        green::task::Builder::new()
            .name(format!("{name}-writer"))
            .spawn(move || write_client(&stream, &lines))?;
    }
    if hub.send(HubEvent::Joined { id, name: name.clone(), peer, outgoing, conn: stream.clone() }).is_err() {
        return Err(io::Error::other("the hub has stopped"));
    }
    let hub = hub.clone();
    green::task::Builder::new()
        .name(format!("{name}-reader"))
        .spawn(move || read_client(id, &stream, &hub, max_line))?;
    Ok(())
}

/// Reads lines from a client and passes them to the hub until the client
/// goes.
fn read_client(id: u64, stream: &TcpStream, hub: &Sender<HubEvent>, max_line: usize) {
    let mut lines = LineReader::new(stream, max_line);
    let why = loop {
        let event = match lines.next_line() {
            Ok(Some(Line::Text(text))) => HubEvent::Said { id, text },
            Ok(Some(Line::TooLong)) => HubEvent::Refused { id, why: format!("over {max_line} bytes") },
            Ok(Some(Line::NotUtf8)) => HubEvent::Refused { id, why: String::from("not valid UTF-8") },
            Ok(None) => break String::from("closed the connection"),
            Err(err) => break format!("read failed: {err}"),
        };
        if hub.send(event).is_err() {
            return;
        }
    };
    let _ = hub.send(HubEvent::Left { id, why });
}

/// Writes a client's queued lines to it until its queue is closed (it left
/// or was disconnected) or the socket fails; then shuts the socket down, so
/// that its reader stops too.
fn write_client(stream: &TcpStream, lines: &Receiver<Arc<str>>) {
    for line in lines.iter() {
        if (&*stream).write_all(line.as_bytes()).is_err() {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// What readers and the accept loop tell the hub.
enum HubEvent {
    /// A client connected.
    Joined {
        /// Its number.
        id: u64,
        /// Its name in the chat.
        name: String,
        /// Its address, for the log.
        peer: SocketAddr,
        /// Its outgoing queue.
        outgoing: Sender<Arc<str>>,
        /// Its socket, to shut down if it has to be disconnected.
        conn: Arc<TcpStream>,
    },
    /// A client sent a line.
    Said {
        /// Who.
        id: u64,
        /// The line, without its newline.
        text: String,
    },
    /// A client sent a line that cannot be passed on.
    Refused {
        /// Who.
        id: u64,
        /// What was wrong with it.
        why: String,
    },
    /// A client's connection ended.
    Left {
        /// Who.
        id: u64,
        /// How, for the log.
        why: String,
    },
}

/// The hub coroutine: applies events to the member list and disconnects
/// the clients the hub gives up on.
fn run_hub(events: &Receiver<HubEvent>, queue: usize) {
    let mut hub: Hub<(SocketAddr, Arc<TcpStream>)> = Hub::new();
    for event in events.iter() {
        let dropped = match event {
            HubEvent::Joined { id, name, peer, outgoing, conn } => {
                println!("chat: {name} ({peer}) joined; {} online", hub.len() + 1);
                hub.join(id, name, outgoing, (peer, conn))
            }
            HubEvent::Said { id, text } => hub.say(id, &text),
            HubEvent::Refused { id, why } => {
                if let Some(name) = hub.name(id) {
                    println!("chat: {name} sent a line {why}; not passed on");
                }
                hub.tell(id, &format!("*** your line was {why}, so it was not sent\n"))
            }
            HubEvent::Left { id, why } => match hub.leave(id) {
                Some((member, dropped)) => {
                    println!("chat: {} ({}) {why}; {} online", member.name, member.conn.0, hub.len());
                    dropped
                }
                // Already disconnected by the hub; its reader noticed.
                None => Vec::new(),
            },
        };
        for Dropped { member, why } in dropped {
            let (peer, conn) = &member.conn;
            match why {
                DropReason::TooSlow => println!(
                    "chat: disconnecting {} ({peer}): its queue of {queue} lines is full, it does not read fast \
                     enough; {} online",
                    member.name,
                    hub.len()
                ),
                DropReason::Gone => println!("chat: {} ({peer}) is gone; {} online", member.name, hub.len()),
            }
            // Wakes its writer (parked in a write to a client that does not
            // read) and its reader, which both end.
            let _ = conn.shutdown(Shutdown::Both);
        }
        // Coroutines take turns only when one parks or yields. With events
        // waiting, `iter` does not park, so without this the hub would
        // pass on a whole burst before any writer ran, and a full queue
        // would measure the burst instead of the client. A writer that
        // gets its turn empties its queue into the socket unless the
        // socket is full: only a client that does not read falls behind.
        green::yield_now();
    }
}

/// The chat's members and the rules for passing lines around; knows
/// nothing of sockets (`C` is whatever the caller keeps per member).
#[derive(Debug)]
struct Hub<C> {
    /// The members, by id (so that lines go out in joining order).
    members: BTreeMap<u64, Member<C>>,
}

/// One member of the chat.
#[derive(Debug)]
struct Member<C> {
    /// Its name in the chat.
    name: String,
    /// Its outgoing queue.
    outgoing: Sender<Arc<str>>,
    /// What the caller keeps for it (its connection).
    conn: C,
}

/// A member the hub dropped while passing a line on.
#[derive(Debug)]
struct Dropped<C> {
    /// The member, removed from the hub.
    member: Member<C>,
    /// Why.
    why: DropReason,
}

/// Why the hub dropped a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropReason {
    /// Its outgoing queue was full.
    TooSlow,
    /// Its outgoing queue was closed: its writer has stopped.
    Gone,
}

impl<C> Hub<C> {
    fn new() -> Hub<C> {
        Hub { members: BTreeMap::new() }
    }

    /// Members online.
    fn len(&self) -> usize {
        self.members.len()
    }

    /// A member's name.
    fn name(&self, id: u64) -> Option<&str> {
        self.members.get(&id).map(|m| m.name.as_str())
    }

    /// Adds a member, greets it and tells the others.
    fn join(&mut self, id: u64, name: String, outgoing: Sender<Arc<str>>, conn: C) -> Vec<Dropped<C>> {
        let others = self.members.len();
        let line: Arc<str> = format!("*** {name} joined\n").into();
        self.members.insert(id, Member { name: name.clone(), outgoing, conn });
        let mut dropped = self.tell(id, &format!("*** welcome, {name}; {others} other(s) here\n"));
        dropped.extend(self.send_to_all(Some(id), line));
        dropped
    }

    /// Removes a member and tells the others; `None` if it was not there.
    fn leave(&mut self, id: u64) -> Option<(Member<C>, Vec<Dropped<C>>)> {
        let member = self.members.remove(&id)?;
        let dropped = self.send_to_all(None, format!("*** {} left\n", member.name).into());
        Some((member, dropped))
    }

    /// Passes a member's line to every other member.
    fn say(&mut self, from: u64, text: &str) -> Vec<Dropped<C>> {
        match self.members.get(&from) {
            Some(member) => {
                let line = format!("{}: {text}\n", member.name).into();
                self.send_to_all(Some(from), line)
            }
            None => Vec::new(),
        }
    }

    /// Sends a line to one member.
    fn tell(&mut self, to: u64, line: &str) -> Vec<Dropped<C>> {
        let Some(member) = self.members.get(&to) else { return Vec::new() };
        match member.outgoing.try_send(line.into()) {
            Ok(()) => Vec::new(),
            Err(err) => {
                let Some(gone) = self.drop_member(to, &err) else { return Vec::new() };
                let announcement = gone.announcement();
                let mut dropped = vec![gone];
                dropped.extend(self.send_to_all(None, announcement));
                dropped
            }
        }
    }

    /// Sends `line` to every member but `except`, without ever waiting;
    /// drops the members it cannot reach and tells the rest about them.
    fn send_to_all(&mut self, except: Option<u64>, line: Arc<str>) -> Vec<Dropped<C>> {
        let mut dropped = Vec::new();
        let mut pending = vec![(except, line)];
        while let Some((except, line)) = pending.pop() {
            let mut unreachable = Vec::new();
            for (&id, member) in &self.members {
                if Some(id) == except {
                    continue;
                }
                if let Err(err) = member.outgoing.try_send(line.clone()) {
                    unreachable.push((id, err));
                }
            }
            for (id, err) in unreachable {
                if let Some(gone) = self.drop_member(id, &err) {
                    pending.push((None, gone.announcement()));
                    dropped.push(gone);
                }
            }
        }
        dropped
    }

    /// Removes a member that a `try_send` failed for.
    fn drop_member<T>(&mut self, id: u64, err: &TrySendError<T>) -> Option<Dropped<C>> {
        let why = if err.is_full() { DropReason::TooSlow } else { DropReason::Gone };
        self.members.remove(&id).map(|member| Dropped { member, why })
    }
}

impl<C> Dropped<C> {
    /// What the remaining members are told.
    fn announcement(&self) -> Arc<str> {
        let what = match self.why {
            DropReason::TooSlow => "was disconnected: too slow to read",
            DropReason::Gone => "left",
        };
        format!("*** {} {what}\n", self.member.name).into()
    }
}

/// What [`LineReader`] found.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line of text, without its `\n` or `\r\n`.
    Text(String),
    /// A line longer than the limit; it was discarded.
    TooLong,
    /// A line that is not UTF-8; it was discarded.
    NotUtf8,
}

/// Splits a byte stream into lines of at most `max` bytes, holding no more
/// than `max` bytes plus one read.
#[derive(Debug)]
struct LineReader<R> {
    /// Where the bytes come from.
    inner: R,
    /// Bytes read but not yet returned as a line.
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    /// The longest line accepted, without its newline.
    max: usize,
    /// Whether the current line has passed `max` and is being skipped.
    discarding: bool,
    /// Whether `inner` has reached its end.
    eof: bool,
}

impl<R: Read> LineReader<R> {
    fn new(inner: R, max: usize) -> LineReader<R> {
        LineReader { inner, buf: Vec::new(), scanned: 0, max, discarding: false, eof: false }
    }

    /// The next line, or `None` at the end of the stream. A last line
    /// without a newline counts as a line.
    fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            if let Some(at) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=self.scanned + at).collect();
                self.scanned = 0;
                line.pop();
                return Ok(Some(self.finish(line)));
            }
            self.scanned = self.buf.len();
            if self.buf.len() > self.max + 1 {
                // Too long already (one more byte may be the `\r` of a
                // `\r\n`): skip to the next newline.
                self.discarding = true;
                self.buf.clear();
                self.scanned = 0;
            }
            if self.eof {
                if self.buf.is_empty() && !self.discarding {
                    return Ok(None);
                }
                let line = std::mem::take(&mut self.buf);
                self.scanned = 0;
                return Ok(Some(self.finish(line)));
            }
            let mut chunk = [0; 4096];
            match self.inner.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Judges a complete line (its `\n` removed).
    fn finish(&mut self, mut line: Vec<u8>) -> Line {
        if std::mem::take(&mut self.discarding) {
            return Line::TooLong;
        }
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

    /// A member's queue of `capacity` lines; the test keeps the receiving end.
    fn member(hub: &mut Hub<()>, id: u64, capacity: usize) -> (Receiver<Arc<str>>, Vec<Dropped<()>>) {
        let (tx, rx) = channel::bounded(capacity);
        let dropped = hub.join(id, format!("guest{id}"), tx, ());
        (rx, dropped)
    }

    fn received(rx: &Receiver<Arc<str>>) -> Vec<String> {
        rx.try_iter().map(|line| line.to_string()).collect()
    }

    #[test]
    fn a_line_goes_to_every_other_member_and_not_back() {
        let mut hub = Hub::new();
        let (a, _) = member(&mut hub, 1, 8);
        let (b, _) = member(&mut hub, 2, 8);
        let (c, _) = member(&mut hub, 3, 8);
        assert_eq!(
            received(&a),
            ["*** welcome, guest1; 0 other(s) here\n", "*** guest2 joined\n", "*** guest3 joined\n"]
        );
        assert_eq!(received(&b), ["*** welcome, guest2; 1 other(s) here\n", "*** guest3 joined\n"]);
        assert_eq!(received(&c), ["*** welcome, guest3; 2 other(s) here\n"]);
        assert!(hub.say(2, "hello").is_empty());
        assert_eq!(received(&a), ["guest2: hello\n"]);
        assert_eq!(received(&b), Vec::<String>::new());
        assert_eq!(received(&c), ["guest2: hello\n"]);
    }

    #[test]
    fn a_member_whose_queue_is_full_is_dropped_and_the_others_are_told() {
        let mut hub = Hub::new();
        let (talker, _) = member(&mut hub, 1, 100);
        let (slow, _) = member(&mut hub, 2, 3);
        let (fast, _) = member(&mut hub, 3, 100);
        // The slow member's queue: its welcome, guest3 joined, then one line.
        assert!(hub.say(1, "one").is_empty());
        let dropped = hub.say(1, "two");
        assert_eq!(dropped.len(), 1);
        assert_eq!((dropped[0].member.name.as_str(), dropped[0].why), ("guest2", DropReason::TooSlow));
        assert_eq!(hub.len(), 2);
        let told = ["guest1: one\n", "guest1: two\n", "*** guest2 was disconnected: too slow to read\n"];
        assert_eq!(received(&fast)[1..], told[..], "the others got every line, in order");
        assert!(received(&talker).ends_with(&[told[2].to_owned()]));
        // The dropped member's queue is closed once its sender is dropped:
        // its writer sends what is queued, then stops.
        drop(dropped);
        assert_eq!(received(&slow).len(), 3);
        assert!(slow.is_disconnected());
        // Nothing more goes to it.
        assert!(hub.say(3, "three").is_empty());
        assert_eq!(received(&talker), ["guest3: three\n"]);
    }

    #[test]
    fn a_member_whose_writer_stopped_is_dropped_quietly() {
        let mut hub = Hub::new();
        let (a, _) = member(&mut hub, 1, 8);
        let (b, _) = member(&mut hub, 2, 8);
        drop(b);
        let dropped = hub.say(1, "anyone?");
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].why, DropReason::Gone);
        assert!(received(&a).ends_with(&[String::from("*** guest2 left\n")]));
        assert_eq!(hub.leave(2).map(|(m, _)| m.name), None, "a later Left event finds nobody");
    }

    #[test]
    fn leaving_tells_the_others() {
        let mut hub = Hub::new();
        let (a, _) = member(&mut hub, 1, 8);
        let (_b, _) = member(&mut hub, 2, 8);
        let (member, dropped) = hub.leave(2).expect("guest2 is a member");
        assert_eq!(member.name, "guest2");
        assert!(dropped.is_empty());
        assert!(received(&a).ends_with(&[String::from("*** guest2 left\n")]));
        assert_eq!(hub.len(), 1);
    }

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

    fn lines(data: &[u8], max: usize, step: usize) -> Vec<Line> {
        let mut reader = LineReader::new(Trickle { data, step }, max);
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            lines.push(line);
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
    fn over_long_and_non_utf8_lines_are_reported_and_the_next_line_is_read() {
        let mut data = Vec::new();
        data.extend_from_slice(&[b'x'; 10_000]);
        data.extend_from_slice(b"\nfits\n\xff\xfe bad\n");
        data.extend_from_slice(&[b'y'; 11]);
        data.extend_from_slice(b"\r\n0123456789\r\n");
        for step in [1, 5, 4096] {
            let found = lines(&data, 10, step);
            let expected = [
                Line::TooLong,
                Line::Text(String::from("fits")),
                Line::NotUtf8,
                Line::TooLong,
                Line::Text(String::from("0123456789")),
            ];
            assert_eq!(found, expected, "step {step}");
        }
        assert_eq!(lines(&[b'z'; 50], 10, 7), [Line::TooLong], "an over-long last line without a newline");
    }
}
