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
//! A line longer than `--max-line` bytes **ends the connection**, as soon
//! as the bytes the client has sent since its last newline pass the limit:
//! a client that streams bytes and never sends a newline is not waited for.
//! It is told `*** line too long (max N bytes); disconnecting`, the others
//! are told it was disconnected, and the server log says so. Chosen over
//! skipping to the next newline: that newline may never come, and reading
//! on to find it would spend the server's time on a client that is not
//! speaking the protocol. A reader never holds more than `--max-line`
//! bytes plus one read's worth.
//!
//! A line that is not UTF-8 is not sent on; the client is told why, the
//! server log says so, and the connection carries on with the next line.
//!
//! # The online count
//!
//! The server log gives the number of members online after each join and
//! each departure. When many clients leave at once, one departure can set
//! off others (telling the rest that a client left finds more whose
//! connections are gone), so the hub records the count at the moment it
//! removes each member, and every log line carries its own count: a burst
//! of departures reads N-1, N-2, ... down to the true number.
//!
//! The hub's rules ([`Hub`]) and the line splitting ([`LineReader`]) do
//! not touch sockets; they are in the examples' library, `src/chat/`, with
//! tests that run without a network (`cargo test -p green-examples`). This
//! file is the socket side: accepting, a reader and a writer per client,
//! and the hub coroutine that applies events and writes the log.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use green::channel::{self, Receiver, Sender};
use green::net::{TcpListener, TcpStream};
use green_examples::Flag::Value;
use green_examples::chat::{Departure, DropReason, Dropped, Hub, Line, LineReader};

const USAGE: &str = "\
usage: chat [--addr IP] [--port PORT] [--queue N] [--max-line BYTES]

A line-based TCP chat server: every line a client sends goes to every
other client. Connect with `nc 127.0.0.1 PORT`.

  --addr IP          address to listen on (default 127.0.0.1)
  --port PORT        port to listen on, 0 to 65535; 0 picks a free one
                     (default 7001)
  --queue N          lines queued for a client that is slow to read; when
                     they are full, that client is disconnected (1 to
                     100000, a value outside that is clamped; default 64)
  --max-line BYTES   longest line accepted, without the newline; a client
                     that sends a longer one is told so and disconnected
                     (1 to 1048576, a value outside that is clamped;
                     default 1024)";

/// How long a client that is disconnected for an over-long line gets to
/// read what is queued for it, its farewell last, before its socket is
/// closed anyway.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(5);

/// Events the hub can have waiting: more than that, and readers park (the
/// clients that talk fastest are held back by TCP's own flow control).
const HUB_QUEUE: usize = 1024;

fn main() {
    let flags = green_examples::Flags::from_env(
        "chat",
        USAGE,
        &[Value("addr"), Value("port"), Value("queue"), Value("max-line")],
    );
    let addr = flags.get_listen_addr(7001);
    let queue: usize = flags.get_clamped("queue", 64, 1..=100_000);
    let max_line: usize = flags.get_clamped("max-line", 1024, 1..=1 << 20);

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
    green::task::Builder::new().name("hub").spawn(move || run_hub(&events, queue, max_line))?;

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
/// goes, or sends a line too long to take.
fn read_client(id: u64, stream: &TcpStream, hub: &Sender<HubEvent>, max_line: usize) {
    let mut lines = LineReader::new(stream, max_line);
    let why = loop {
        let event = match lines.next_line() {
            Ok(Some(Line::Text(text))) => HubEvent::Said { id, text },
            Ok(Some(Line::TooLong)) => {
                // The hub disconnects it; nothing more is read.
                let _ = hub.send(HubEvent::TooLong { id });
                return;
            }
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
    /// A client's line passed `--max-line` bytes (its newline may not have
    /// come yet): it is to be disconnected.
    TooLong {
        /// Who.
        id: u64,
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
/// the clients the hub gives up on. Each line it logs about a member going
/// carries the count of members online right after that one went.
fn run_hub(events: &Receiver<HubEvent>, queue: usize, max_line: usize) {
    let mut hub: Hub<(SocketAddr, Arc<TcpStream>)> = Hub::new();
    for event in events.iter() {
        let dropped = match event {
            HubEvent::Joined { id, name, peer, outgoing, conn } => {
                println!("chat: {name} ({peer}) joined; {} online", hub.online() + 1);
                hub.join(id, name, outgoing, (peer, conn))
            }
            HubEvent::Said { id, text } => hub.say(id, &text),
            HubEvent::TooLong { id } => {
                let farewell = format!("*** line too long (max {max_line} bytes); disconnecting\n");
                match hub.expel(id, &farewell, "line too long") {
                    Some(Departure { member, online, dropped }) => {
                        let (peer, conn) = &member.conn;
                        println!(
                            "chat: disconnecting {} ({peer}): it sent a line longer than {max_line} bytes; \
                             {online} online",
                            member.name
                        );
                        // Its writer sends what is queued, the farewell last,
                        // and closes; this bounds the wait for a client that
                        // does not read.
                        let _ = conn.set_write_timeout(Some(FAREWELL_TIMEOUT));
                        dropped
                    }
                    None => Vec::new(),
                }
            }
            HubEvent::Refused { id, why } => {
                if let Some(name) = hub.name(id) {
                    println!("chat: {name} sent a line {why}; not passed on");
                }
                hub.tell(id, &format!("*** your line was {why}, so it was not sent\n"))
            }
            HubEvent::Left { id, why } => match hub.leave(id) {
                Some(Departure { member, online, dropped }) => {
                    println!("chat: {} ({}) {why}; {online} online", member.name, member.conn.0);
                    dropped
                }
                // Already disconnected by the hub; its reader noticed.
                None => Vec::new(),
            },
        };
        for Dropped { member, why, online } in dropped {
            let (peer, conn) = &member.conn;
            match why {
                DropReason::TooSlow => println!(
                    "chat: disconnecting {} ({peer}): its queue of {queue} lines is full, it does not read fast \
                     enough; {online} online",
                    member.name
                ),
                DropReason::Gone => println!("chat: {} ({peer}) is gone; {online} online", member.name),
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
