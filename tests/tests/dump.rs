//! The task dump (`green::dump`): every kind of wait is named, with its
//! holder, peer and deadline; the JSON parses and has the documented
//! fields; cycles are found while other coroutines keep running, also
//! across workers, and the deadlock report names them; a worker held by a
//! spinning coroutine is reported as silent; a plain thread sees every
//! runtime; `SIGQUIT` prints a dump only when asked; a hundred thousand
//! parked coroutines are dumped.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use green::TaskId;
use green::channel;
use green::dump::{Coroutine, Dump, Holder, State, WaitKind};
use green::net::{TcpListener, TcpStream, UnixStream};
use green::sync::{Barrier, Condvar, Event, Mutex, OnceCell, RwLock, Semaphore, WaitGroup};
use green_tests::{describe, panic_text_of, run_in_child_with_env, stderr_of};

/// The coroutine named `name` in `dump`.
fn named<'a>(dump: &'a Dump, name: &str) -> &'a Coroutine {
    dump.coroutines()
        .iter()
        .find(|c| c.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no coroutine named {name:?} in the dump:\n{dump}"))
}

/// Spawns a coroutine named `name` running `f`.
#[track_caller]
fn spawn_named<T: 'static>(name: &str, f: impl FnOnce() -> T + 'static) -> green::JoinHandle<T> {
    green::task::Builder::new().name(name).spawn(f).expect("spawned")
}

/// Yields until a dump shows every coroutine in `names` parked (each needs
/// a turn or a few to get there), and returns that dump.
fn dump_when_parked(names: &[&str]) -> Dump {
    for _ in 0..1000 {
        green::yield_now();
        let dump = green::dump();
        let parked = |name: &&str| {
            dump.coroutines().iter().any(|c| c.name.as_deref() == Some(*name) && c.state == State::Parked)
        };
        if names.iter().all(parked) {
            return dump;
        }
    }
    panic!("not all of {names:?} parked:\n{}", green::dump());
}

/// The kind of what `name` waits for.
fn kind_of(dump: &Dump, name: &str) -> WaitKind {
    named(dump, name).waits_on.as_ref().unwrap_or_else(|| panic!("{name} waits on nothing:\n{dump}")).kind
}

#[test]
fn every_kind_of_wait_is_named() -> io::Result<()> {
    green::run(|| -> io::Result<()> {
        let me = green::current().id();
        // Sockets: an accept, a read with a peer, a write into a full pipe.
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let listening = listener.local_addr()?;
        let accepting = spawn_named("acceptor", move || listener.accept().map(|_| ()));
        let server = std::net::TcpListener::bind("127.0.0.1:0")?;
        let client = TcpStream::connect(server.local_addr()?)?;
        let client_addr = client.local_addr()?;
        let (accepted, _) = server.accept()?;
        let reading = spawn_named("reader", move || {
            let mut client = client;
            let mut byte = [0u8];
            client.read(&mut byte)
        });
        let (mut full, _unread) = UnixStream::pair()?;
        let writing = spawn_named("writer", move || full.write_all(&vec![0u8; 16 << 20]));
        // Channels.
        let (_keep_tx, rx) = channel::bounded::<u32>(1);
        let receiving = spawn_named("receiver", move || rx.recv().ok());
        let (tx, _keep_rx) = channel::bounded::<u32>(1);
        tx.try_send(1).expect("room for one");
        let sending = spawn_named("sender", move || tx.send(2).is_ok());
        let (_a_tx, a_rx) = channel::bounded::<u32>(1);
        let (_b_tx, b_rx) = channel::bounded::<u32>(1);
        let selecting = spawn_named("selector", move || {
            channel::Select::new().recv(&a_rx, |m| m.ok()).recv(&b_rx, |m| m.ok()).wait()
        });
        // Locks, held by main.
        let mutex = Rc::new(Mutex::new(0));
        let held = mutex.lock().expect("free");
        let locking = spawn_named("locker", {
            let mutex = mutex.clone();
            move || mutex.lock().map(|_| ()).is_ok()
        });
        let rwlock = Rc::new(RwLock::new(0));
        let written = rwlock.write().expect("free");
        let reading_lock = spawn_named("lock-reader", {
            let rwlock = rwlock.clone();
            move || rwlock.read().map(|_| ()).is_ok()
        });
        let semaphore = Rc::new(Semaphore::new(0));
        let acquiring = spawn_named("acquirer", {
            let semaphore = semaphore.clone();
            move || semaphore.acquire().map(|_| ()).is_ok()
        });
        let condvar = Rc::new((Mutex::new(false), Condvar::new()));
        let notified = spawn_named("notified", {
            let condvar = condvar.clone();
            move || {
                let (lock, cv) = &*condvar;
                let guard = lock.lock().expect("free");
                cv.wait_while(guard, |ready| !*ready).map(|_| ()).is_ok()
            }
        });
        let barrier = Rc::new(Barrier::new(2));
        let gathering = spawn_named("gatherer", {
            let barrier = barrier.clone();
            move || barrier.wait().is_ok()
        });
        let event = Rc::new(Event::new());
        let watching = spawn_named("watcher", {
            let event = event.clone();
            move || event.wait().is_ok()
        });
        let group = WaitGroup::new();
        let job = group.add();
        let counting = spawn_named("counter", move || group.wait().is_ok());
        let cell = Rc::new(OnceCell::new());
        let gate = Rc::new(Event::new());
        let initialising = spawn_named("initialiser", {
            let (cell, gate) = (cell.clone(), gate.clone());
            move || {
                let _ = cell.get_or_init(|| {
                    let _ = gate.wait();
                    1
                });
            }
        });
        let initialised = spawn_named("cell-waiter", {
            let cell = cell.clone();
            move || cell.wait().is_ok()
        });
        // Joins, sleeps, scopes, groups, the blocking pool.
        let sleeper = spawn_named("sleeper", || green::sleep(Duration::from_secs(3600)).is_ok());
        let sleeper_id = sleeper.id();
        let joining = spawn_named("joiner", move || sleeper.join().is_ok());
        let dozing = spawn_named("dozer", || green::sleep(Duration::MAX).is_ok());
        let scoped = spawn_named("scope-parent", {
            let gate = gate.clone();
            move || {
                let _ = green::scope(|s| -> Result<(), ()> {
                    s.spawn(move || -> Result<(), ()> {
                        let _ = gate.wait();
                        Ok(())
                    });
                    Ok(())
                });
            }
        });
        let grouping = spawn_named("group-owner", {
            let gate = gate.clone();
            move || {
                let mut members = green::TaskGroup::new();
                members.spawn(move || gate.wait().is_ok());
                members.join_next().is_some()
            }
        });
        let (release_pool, pool_waits) = std::sync::mpsc::channel::<()>();
        let pooled =
            spawn_named("pool-caller", move || green::blocking::unblock(move || pool_waits.recv()).is_ok());
        // A scope deadline, and a cancellation the coroutine is shielded from.
        let timing = spawn_named("timed", {
            let gate = gate.clone();
            move || green::timeout(Duration::from_secs(3600), || gate.wait()).is_ok()
        });
        let shielded = spawn_named("shielded", {
            let gate = gate.clone();
            move || green::shield(|| gate.wait()).is_ok()
        });
        let yielding = Rc::new(std::cell::Cell::new(true));
        let yielder = spawn_named("yielder", {
            let flag = yielding.clone();
            move || {
                while flag.get() {
                    green::yield_now();
                }
            }
        });

        dump_when_parked(&[
            "acceptor",
            "reader",
            "writer",
            "receiver",
            "sender",
            "selector",
            "locker",
            "lock-reader",
            "acquirer",
            "notified",
            "gatherer",
            "watcher",
            "counter",
            "initialiser",
            "cell-waiter",
            "sleeper",
            "joiner",
            "dozer",
            "scope-parent",
            "group-owner",
            "pool-caller",
            "timed",
            "shielded",
        ]);
        // Cancelled while it waits: the shield keeps it parked.
        shielded.cancel();
        let dump = dump_when_parked(&["shielded"]);
        let text = dump.to_string();
        assert_eq!(named(&dump, "main").state, State::Running, "{text}");
        assert_eq!(named(&dump, "yielder").state, State::Runnable, "{text}");

        let acceptor = named(&dump, "acceptor").waits_on.clone().expect("parked");
        assert_eq!(acceptor.kind, WaitKind::Read, "{text}");
        assert_eq!(acceptor.peer, Some(format!("local {listening}")), "{text}");
        let reader = named(&dump, "reader").waits_on.clone().expect("parked");
        assert_eq!(reader.kind, WaitKind::Read);
        assert_eq!(reader.peer, Some(accepted.local_addr()?.to_string()), "{text}");
        assert!(reader.object > 0, "names the descriptor: {text}");
        assert!(text.contains(&format!("({})", accepted.local_addr()?)), "{text}");
        assert_ne!(reader.peer, Some(client_addr.to_string()), "the peer, not the socket's own address");
        assert_eq!(kind_of(&dump, "writer"), WaitKind::Write, "{text}");
        assert!(named(&dump, "writer").waits_on.as_ref().and_then(|w| w.peer.clone()).is_some());

        assert_eq!(kind_of(&dump, "receiver"), WaitKind::ChannelRecv, "{text}");
        assert_eq!(kind_of(&dump, "sender"), WaitKind::ChannelSend, "{text}");
        assert_eq!(kind_of(&dump, "selector"), WaitKind::Select, "{text}");

        let locker = named(&dump, "locker").waits_on.clone().expect("parked");
        assert_eq!((locker.kind, locker.holder), (WaitKind::Mutex, Some(Holder::Coroutine(me))), "{text}");
        let reader = named(&dump, "lock-reader").waits_on.clone().expect("parked");
        assert_eq!((reader.kind, reader.holder), (WaitKind::RwLock, Some(Holder::Coroutine(me))), "{text}");
        assert_eq!(kind_of(&dump, "acquirer"), WaitKind::Semaphore, "{text}");
        assert_eq!(kind_of(&dump, "notified"), WaitKind::Condvar, "{text}");
        assert_eq!(kind_of(&dump, "gatherer"), WaitKind::Barrier, "{text}");
        assert_eq!(kind_of(&dump, "watcher"), WaitKind::Event, "{text}");
        assert_eq!(kind_of(&dump, "counter"), WaitKind::WaitGroup, "{text}");
        assert_eq!(kind_of(&dump, "initialiser"), WaitKind::Event, "{text}");
        assert_eq!(kind_of(&dump, "cell-waiter"), WaitKind::OnceCell, "{text}");

        let joiner = named(&dump, "joiner").waits_on.clone().expect("parked");
        assert_eq!(
            (joiner.kind, joiner.holder),
            (WaitKind::Join, Some(Holder::Coroutine(sleeper_id))),
            "{text}"
        );
        assert_eq!(kind_of(&dump, "sleeper"), WaitKind::Sleep, "{text}");
        let left = named(&dump, "sleeper").deadline.expect("a sleep has a deadline");
        assert!(left > Duration::from_secs(3000) && left <= Duration::from_secs(3600), "{left:?}");
        assert_eq!(kind_of(&dump, "dozer"), WaitKind::Sleep, "{text}");
        assert_eq!(named(&dump, "dozer").deadline, None, "{text}");

        let parent = named(&dump, "scope-parent");
        assert_eq!(kind_of(&dump, "scope-parent"), WaitKind::Scope, "{text}");
        assert_eq!(parent.children.len(), 1, "{text}");
        let child = dump.coroutine(parent.children[0]).expect("the child is listed");
        assert_eq!(child.parent, Some(parent.id), "{text}");
        assert_eq!(child.waits_on.as_ref().map(|w| w.kind), Some(WaitKind::Event), "{text}");
        assert_eq!(kind_of(&dump, "group-owner"), WaitKind::TaskGroup, "{text}");
        assert_eq!(kind_of(&dump, "pool-caller"), WaitKind::BlockingPool, "{text}");

        let timed = named(&dump, "timed");
        assert!(timed.deadline.is_some_and(|left| left > Duration::from_secs(3000)), "{text}");
        assert!(!timed.cancel_requested, "{text}");
        assert!(named(&dump, "shielded").cancel_requested, "{text}");
        assert!(named(&dump, "shielded").in_state_for.is_some(), "{text}");
        assert!(text.contains("cancellation requested"), "{text}");
        assert!(text.contains(&format!("held by coroutine {me} 'main'")), "{text}");

        // A few waits end as they should once let go; the runtime tears the
        // rest down when main returns.
        release_pool.send(()).expect("the pool thread waits");
        assert!(pooled.join().expect("no panic"), "the pool call came back");
        drop(held);
        assert!(locking.join().expect("no panic"));
        drop(written);
        assert!(reading_lock.join().expect("no panic"));
        gate.set();
        initialising.join().expect("no panic");
        assert!(initialised.join().expect("no panic"));
        assert!(timing.join().expect("no panic"));
        yielding.set(false);
        yielder.join().expect("no panic");
        drop((accepting, reading, writing, receiving, sending, selecting, acquiring, notified, gathering));
        drop((
            watching, counting, joining, dozing, scoped, grouping, shielded, job, semaphore, barrier, event,
        ));
        Ok(())
    })
}

/// A value of the tiny JSON checker below.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Array(Vec<Json>),
    Object(HashMap<String, Json>),
}

impl Json {
    /// The field `name` of an object.
    fn field(&self, name: &str) -> &Json {
        match self {
            Json::Object(fields) => {
                fields.get(name).unwrap_or_else(|| panic!("no field {name:?} in {self:?}"))
            }
            other => panic!("{other:?} is not an object (looking for {name:?})"),
        }
    }

    fn array(&self) -> &[Json] {
        match self {
            Json::Array(items) => items,
            other => panic!("{other:?} is not an array"),
        }
    }

    fn number(&self) -> f64 {
        match self {
            Json::Number(n) => *n,
            other => panic!("{other:?} is not a number"),
        }
    }

    fn text(&self) -> &str {
        match self {
            Json::Text(text) => text,
            other => panic!("{other:?} is not a string"),
        }
    }
}

/// Parses `text` as one JSON value (RFC 8259), or says where it is not.
fn parse_json(text: &str) -> Result<Json, String> {
    let mut parser = Parser { bytes: text.as_bytes(), at: 0 };
    let value = parser.value()?;
    parser.space();
    if parser.at != parser.bytes.len() {
        return Err(format!("trailing characters at {}", parser.at));
    }
    Ok(value)
}

/// A recursive-descent JSON parser: enough to check validity and read
/// fields, nothing more.
struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while self.bytes.get(self.at).is_some_and(|b| b" \t\n\r".contains(b)) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Result<(), String> {
        self.space();
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", byte as char, self.at))
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(format!("bad literal at {}", self.at))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.space();
        match self.bytes.get(self.at) {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Json::Text),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(format!("unexpected character at {}", self.at)),
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        self.eat(b'{')?;
        let mut fields = HashMap::new();
        self.space();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Json::Object(fields));
        }
        loop {
            self.space();
            let name = self.string()?;
            self.eat(b':')?;
            let value = self.value()?;
            if fields.insert(name.clone(), value).is_some() {
                return Err(format!("field {name:?} twice"));
            }
            self.space();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Json::Object(fields));
                }
                _ => return Err(format!("expected , or }} at {}", self.at)),
            }
        }
    }

    fn array(&mut self) -> Result<Json, String> {
        self.eat(b'[')?;
        let mut items = Vec::new();
        self.space();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.space();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(format!("expected , or ] at {}", self.at)),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let Some(&byte) = self.bytes.get(self.at) else { return Err("unterminated string".into()) };
            self.at += 1;
            match byte {
                b'"' => return Ok(out),
                b'\\' => {
                    let escape = *self.bytes.get(self.at).ok_or("unterminated escape")?;
                    self.at += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let hex = self.bytes.get(self.at..self.at + 4).ok_or("short \\u escape")?;
                            let code =
                                u32::from_str_radix(std::str::from_utf8(hex).map_err(|e| e.to_string())?, 16)
                                    .map_err(|e| e.to_string())?;
                            self.at += 4;
                            out.push(char::from_u32(code).ok_or("a surrogate in \\u")?);
                        }
                        other => return Err(format!("bad escape \\{}", other as char)),
                    }
                }
                0..=0x1f => return Err(format!("a raw control character in a string at {}", self.at - 1)),
                _ => {
                    // A UTF-8 sequence: copy it whole.
                    let start = self.at - 1;
                    let len = match byte {
                        0xf0.. => 4,
                        0xe0.. => 3,
                        0xc0.. => 2,
                        _ => 1,
                    };
                    let chunk = self.bytes.get(start..start + len).ok_or("cut UTF-8")?;
                    out.push_str(std::str::from_utf8(chunk).map_err(|e| e.to_string())?);
                    self.at = start + len;
                }
            }
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(|b| b"+-.eE0123456789".contains(b)) {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).map_err(|e| e.to_string())?;
        if text.starts_with('.') || text.ends_with('.') || text.starts_with("-.") {
            return Err(format!("bad number {text:?}"));
        }
        text.parse().map(Json::Number).map_err(|_| format!("bad number {text:?}"))
    }
}

#[test]
fn the_json_checker_refuses_what_is_not_json() {
    for bad in ["{", "[1,]", "{\"a\":1,}", "\"\n\"", "01x", "{\"a\" 1}", "nul", "[1] 2"] {
        assert!(parse_json(bad).is_err(), "{bad:?} is not JSON");
    }
    let value = parse_json(r#"{"a":[1,-2.5e3,true,null],"b":"\u00e9\"x"}"#).expect("JSON");
    assert_eq!(value.field("a").array().len(), 4);
    assert_eq!(value.field("b").text(), "é\"x");
}

#[test]
fn the_dump_is_json_with_the_documented_fields() {
    green::run(|| {
        let lock = Rc::new(Mutex::new(()));
        let held = lock.lock().expect("free");
        let odd_name = "a \"quoted\"\nname\\with\ttabs";
        let waiter = spawn_named(odd_name, {
            let lock = lock.clone();
            move || drop(lock.lock())
        });
        let sleeper = spawn_named("sleeper", || green::sleep(Duration::from_secs(60)));
        let dump = dump_when_parked(&[odd_name, "sleeper"]);
        let json = dump.to_json();
        let value = parse_json(&json).unwrap_or_else(|err| panic!("not JSON ({err}):\n{json}"));
        assert_eq!(value.field("version").number(), 2.0);
        assert!(value.field("silent_workers").array().is_empty());
        assert!(value.field("cycles").array().is_empty());
        let coroutines = value.field("coroutines").array();
        assert_eq!(coroutines.len(), dump.coroutines().len());
        for coroutine in coroutines {
            for field in [
                "id",
                "name",
                "spawned_at",
                "runtime",
                "worker",
                "state",
                "in_state_ms",
                "waits_on",
                "cancel_requested",
                "deadline_ms",
                "parent",
                "children",
                "backtrace",
                "backtrace_missing",
            ] {
                coroutine.field(field);
            }
            assert!(["runnable", "running", "parked"].contains(&coroutine.field("state").text()));
        }
        let by_name = |name: &str| {
            coroutines.iter().find(|c| c.field("name") == &Json::Text(name.to_owned())).expect("listed")
        };
        let parked = by_name(odd_name);
        assert_eq!(parked.field("state").text(), "parked");
        let wait = parked.field("waits_on");
        assert_eq!(wait.field("kind").text(), "mutex");
        assert_eq!(wait.field("holder").number(), green::current().id().as_u64() as f64);
        assert_eq!(wait.field("peer"), &Json::Null);
        assert!(wait.field("object").number() > 0.0);
        assert!(parked.field("in_state_ms").number() >= 0.0);
        assert!(parked.field("spawned_at").text().starts_with(file!()), "{json}");
        assert!(!parked.field("spawned_at").text().contains(":33:"), "the caller of spawn_named: {json}");
        let frames = parked.field("backtrace").array();
        assert_eq!(parked.field("backtrace_missing"), &Json::Null);
        assert!(
            frames.iter().any(|f| matches!(f.field("function"), Json::Text(name) if name.contains("Mutex"))
                && matches!(f.field("line"), Json::Number(line) if *line > 0.0)),
            "{json}"
        );
        assert!(frames.iter().all(|f| f.field("ip").number() > 0.0), "{json}");
        let sleeping = by_name("sleeper");
        assert!(sleeping.field("deadline_ms").number() > 50_000.0, "{json}");
        assert_eq!(by_name("main").field("state").text(), "running");
        assert_eq!(by_name("main").field("spawned_at"), &Json::Null);
        drop(held);
        waiter.join().expect("no panic");
        sleeper.cancel();
        let _ = sleeper.join();
    });
}

/// Spawns two coroutines that take `first` and `second` in opposite orders
/// (meeting at a barrier in between, so both hold one): a lock-order
/// deadlock. Returns their ids.
fn lock_order_deadlock(names: [&str; 2]) -> [TaskId; 2] {
    let (first, second) = (Rc::new(Mutex::new(())), Rc::new(Mutex::new(())));
    let met = Rc::new(Barrier::new(2));
    let pairs = [(first.clone(), second.clone()), (second, first)];
    let mut names = names.into_iter();
    pairs.map(|(a, b)| {
        let met = met.clone();
        spawn_named(names.next().expect("two names"), move || {
            let _a = a.lock();
            let _ = met.wait();
            let _b = b.lock();
        })
        .id()
    })
}

#[test]
fn a_lock_order_cycle_is_found_while_other_coroutines_keep_running() {
    green::run(|| {
        let [a, b] = lock_order_deadlock(["a-then-b", "b-then-a"]);
        // Others go on meanwhile: a ping-pong and a ticker.
        let (ping, pong) = (channel::bounded::<u64>(1), channel::bounded::<u64>(1));
        let stop = Rc::new(std::cell::Cell::new(false));
        let player = spawn_named("player", {
            let stop = stop.clone();
            let (to_main, from_main) = (pong.0, ping.1);
            move || {
                while let Ok(ball) = from_main.recv() {
                    if stop.get() || to_main.send(ball + 1).is_err() {
                        break;
                    }
                }
            }
        });
        let ticker = spawn_named("ticker", || while green::sleep(Duration::from_millis(1)).is_ok() {});
        let mut ball = 0;
        let dump = loop {
            ping.0.send(ball).expect("the player plays");
            ball = pong.1.recv().expect("the player answers");
            let dump = green::dump();
            if !dump.cycles().is_empty() {
                break dump;
            }
            assert!(ball < 10_000, "no cycle found:\n{dump}");
        };
        let text = dump.to_string();
        assert_eq!(dump.cycles().len(), 1, "{text}");
        let mut members = dump.cycles()[0].members.clone();
        members.sort();
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(members, expected, "{text}");
        assert_eq!(dump.cycles()[0].members[0], members[0], "starts at the smallest id");
        assert_eq!(named(&dump, "a-then-b").blocked_by(), Some(b), "{text}");
        assert_eq!(named(&dump, "b-then-a").blocked_by(), Some(a), "{text}");
        assert!(text.contains("deadlock: a cycle of coroutines waiting on each other"), "{text}");
        assert!(
            text.contains("'a-then-b' waits on mutex") && text.contains("'b-then-a' waits on mutex"),
            "{text}"
        );
        stop.set(true);
        ping.0.send(ball).expect("the player plays");
        player.join().expect("no panic");
        ticker.cancel();
        let _ = ticker.join();
    });
}

#[test]
fn a_cycle_of_joins_is_found() {
    green::run(|| {
        let (give_a, take_a) = channel::oneshot::<green::JoinHandle<()>>();
        let (give_b, take_b) = channel::oneshot::<green::JoinHandle<()>>();
        let a = spawn_named("joins-b", move || {
            if let Ok(b) = take_b.recv() {
                let _ = b.join();
            }
        });
        let b = spawn_named("joins-a", move || {
            if let Ok(a) = take_a.recv() {
                let _ = a.join();
            }
        });
        let (a_id, b_id) = (a.id(), b.id());
        give_a.send(a).expect("b waits");
        give_b.send(b).expect("a waits");
        let dump = dump_when_parked(&["joins-a", "joins-b"]);
        assert_eq!(dump.cycles().len(), 1, "{dump}");
        let mut members = dump.cycles()[0].members.clone();
        members.sort();
        assert_eq!(members, [a_id.min(b_id), a_id.max(b_id)], "{dump}");
        assert!(dump.to_string().contains("waits on join of coroutine"), "{dump}");
    });
}

#[test]
fn a_cycle_across_workers_is_found() {
    green::Builder::new().workers(2).run(|| {
        let (first, second) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
        let met = Arc::new(Barrier::new(2));
        let mut ids = Vec::new();
        for (worker, (a, b), name) in
            [(0, (first.clone(), second.clone()), "left"), (1, (second.clone(), first.clone()), "right")]
        {
            let met = met.clone();
            let handle = green::task::Builder::new()
                .name(name)
                .spawn_on_worker(worker, move || {
                    let _a = a.lock();
                    let _ = met.wait();
                    let _b = b.lock();
                })
                .expect("spawned");
            ids.push(handle.id());
            std::mem::forget(handle);
        }
        let dump = (0..1000)
            .map(|_| {
                green::sleep(Duration::from_millis(1)).expect("not cancelled");
                green::dump()
            })
            .find(|dump| !dump.cycles().is_empty())
            .expect("the cycle is found");
        let cycle = &dump.cycles()[0];
        let mut members = cycle.members.clone();
        members.sort();
        ids.sort();
        assert_eq!(members, ids, "{dump}");
        assert_eq!(named(&dump, "left").worker, 0, "{dump}");
        assert_eq!(named(&dump, "right").worker, 1, "{dump}");
        assert_eq!(kind_of(&dump, "worker-1"), WaitKind::Jobs, "the idle service: {dump}");
    });
}

#[test]
fn the_deadlock_report_names_the_cycle() {
    let report = panic_text_of("run must report the deadlock", || {
        green::Builder::new().name("entry").run(|| {
            lock_order_deadlock(["a-then-b", "b-then-a"]);
            green::sleep(Duration::MAX).expect_err("torn down");
        })
    });
    assert!(report.contains("green: deadlock"), "{report}");
    assert!(report.contains("cycle: coroutine 'a-then-b' (id"), "{report}");
    assert!(report.contains(") waits on coroutine 'b-then-a' (id"), "{report}");
    assert!(report.contains(", which waits on coroutine 'a-then-b' (id"), "{report}");
    assert!(report.contains("waits on a Mutex held by coroutine 'b-then-a'"), "{report}");
}

#[test]
fn the_deadlock_report_across_workers_names_the_cycle() {
    let report = panic_text_of("run must report the deadlock", || {
        green::Builder::new().workers(2).name("entry").run(|| {
            let (first, second) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
            let met = Arc::new(Barrier::new(2));
            let handles: Vec<_> =
                [(0, (first.clone(), second.clone()), "left"), (1, (second, first), "right")]
                    .into_iter()
                    .map(|(worker, (a, b), name)| {
                        let met = met.clone();
                        green::task::Builder::new()
                            .name(name)
                            .spawn_on_worker(worker, move || {
                                let _a = a.lock();
                                let _ = met.wait();
                                let _b = b.lock();
                            })
                            .expect("spawned")
                    })
                    .collect();
            for handle in handles {
                let _ = handle.join();
            }
        })
    });
    assert!(report.contains("on the 2 workers"), "{report}");
    assert!(
        report.contains("'left' (id") && report.contains("on worker 0 waits on a Mutex held by"),
        "{report}"
    );
    assert!(report.contains("cycle: coroutine '"), "{report}");
    assert!(report.contains("'right' (id") && report.contains(", which waits on coroutine '"), "{report}");
}

#[test]
fn a_worker_held_by_a_spinning_coroutine_is_named_as_silent() {
    green::Builder::new().workers(2).run(|| {
        let (spinning, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let spinner = green::task::Builder::new()
            .name("spinner")
            .spawn_on_worker(1, {
                let (spinning, stop) = (spinning.clone(), stop.clone());
                move || {
                    spinning.store(true, Ordering::Release);
                    while !stop.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                }
            })
            .expect("spawned");
        while !spinning.load(Ordering::Acquire) {
            green::sleep(Duration::from_millis(1)).expect("not cancelled");
        }
        let dump = green::dump::dump_within(Duration::from_millis(50));
        stop.store(true, Ordering::Release);
        spinner.join().expect("no panic");
        let text = dump.to_string();
        assert_eq!(dump.silent_workers().len(), 1, "{text}");
        let silent = &dump.silent_workers()[0];
        assert_eq!(silent.worker, 1, "{text}");
        let running = silent.running.as_ref().expect("the spinner is named");
        assert_eq!(running.name(), Some("spinner"), "{text}");
        assert!(silent.running_for >= Duration::from_millis(50), "{text}");
        assert!(text.contains("worker 1 (runtime") && text.contains("did not answer"), "{text}");
        assert!(text.contains("'spinner'") && text.contains("has been running for"), "{text}");
        assert!(dump.coroutines().iter().all(|c| c.worker == 0), "worker 1's coroutines are missing: {text}");
        let json = parse_json(&dump.to_json()).expect("JSON");
        let silent = &json.field("silent_workers").array()[0];
        assert_eq!(silent.field("running").field("name").text(), "spinner");
        assert!(silent.field("running_ms").number() >= 50.0);
    });
}

#[test]
fn a_plain_thread_dumps_every_runtime_of_the_process() {
    let release = Arc::new(Event::new());
    let (ready, parked) = std::sync::mpsc::channel();
    let runtimes: Vec<_> = ["alpha", "beta"]
        .into_iter()
        .map(|name| {
            let (release, ready) = (release.clone(), ready.clone());
            std::thread::spawn(move || {
                green::run(move || {
                    let waiter = spawn_named(name, move || release.wait().is_ok());
                    green::yield_now();
                    ready.send(()).expect("the test waits");
                    waiter.join().expect("no panic")
                })
            })
        })
        .collect();
    parked.recv().expect("alpha parked");
    parked.recv().expect("beta parked");
    let dump = green::dump();
    release.set();
    for runtime in runtimes {
        assert!(runtime.join().expect("no panic"));
    }
    let (alpha, beta) = (named(&dump, "alpha"), named(&dump, "beta"));
    assert_ne!(alpha.runtime, beta.runtime, "{dump}");
    assert_eq!(alpha.waits_on.as_ref().map(|w| w.kind), Some(WaitKind::Event), "{dump}");
    assert_eq!(alpha.state, State::Parked, "{dump}");
    // The mains wait in their joins, each in its own runtime (other tests'
    // runtimes may be listed too).
    for runtime in [alpha.runtime, beta.runtime] {
        let main =
            dump.coroutines().iter().find(|c| c.runtime == runtime && c.name.as_deref() == Some("main"));
        assert_eq!(main.and_then(|c| c.waits_on.as_ref()).map(|w| w.kind), Some(WaitKind::Join), "{dump}");
    }
}

#[test]
fn sigquit_prints_a_dump_when_asked() -> io::Result<()> {
    let output = run_in_child_with_env(
        "sigquit_prints_a_dump_when_asked",
        &[("GREEN_DUMP_ON_SIGQUIT", None)],
        || {
            green::Builder::new().dump_on_sigquit(true).run(|| {
                let (_tx, rx) = channel::bounded::<u32>(1);
                let waiter = spawn_named("waiter", move || rx.recv().is_ok());
                green::yield_now();
                quit_and_wait_for_the_dump();
                waiter.cancel();
                let _ = waiter.join();
            });
        },
    )?;
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(stderr.contains("green: SIGQUIT: green: task dump: 2 coroutines"), "{stderr}");
    assert!(stderr.contains("'waiter'") && stderr.contains("parked for"), "{stderr}");
    assert!(stderr.contains("in channel recv"), "{stderr}");
    Ok(())
}

#[test]
fn the_environment_turns_the_sigquit_dump_on() -> io::Result<()> {
    let output = run_in_child_with_env(
        "the_environment_turns_the_sigquit_dump_on",
        &[("GREEN_DUMP_ON_SIGQUIT", Some("1"))],
        || {
            green::run(|| {
                let sleeper = spawn_named("sleeper", || green::sleep(Duration::from_secs(60)).is_ok());
                green::yield_now();
                quit_and_wait_for_the_dump();
                sleeper.cancel();
                let _ = sleeper.join();
            });
        },
    )?;
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(stderr.contains("green: SIGQUIT:") && stderr.contains("'sleeper'"), "{stderr}");
    assert!(stderr.contains("in sleep") && stderr.contains("deadline in"), "{stderr}");
    Ok(())
}

#[test]
fn sigquit_is_left_alone_unless_asked() -> io::Result<()> {
    let output = run_in_child_with_env(
        "sigquit_is_left_alone_unless_asked",
        &[("GREEN_DUMP_ON_SIGQUIT", None)],
        || {
            green::run(|| green::spawn(|| ()).join().expect("no panic"));
            // SAFETY: sigaction is plain data; all-zero is a valid value to fill.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: querying only; `action` is valid for writes.
            let rc = unsafe { libc::sigaction(libc::SIGQUIT, std::ptr::null(), &mut action) };
            assert_eq!(rc, 0);
            assert_eq!(action.sa_sigaction, libc::SIG_DFL, "SIGQUIT keeps its default action");
            assert_eq!(green::dump::signal_dumps(), 0);
            println!("default action kept");
        },
    )?;
    assert!(output.status.success(), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("default action kept"), "{}", describe(&output));
    Ok(())
}

/// Sends the process `SIGQUIT` and waits (parked, a millisecond at a time)
/// until the dump has been printed: the count only moves after it is.
fn quit_and_wait_for_the_dump() {
    let before = green::dump::signal_dumps();
    // SAFETY: `kill` takes two integers and touches no memory of ours.
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGQUIT) }, 0);
    let asked = Instant::now();
    while green::dump::signal_dumps() == before {
        assert!(asked.elapsed() < Duration::from_secs(20), "no dump came");
        green::sleep(Duration::from_millis(1)).expect("not cancelled");
    }
}

/// How many parked coroutines the big dump lists, unless
/// `GREEN_TEST_DUMP_COUNT` says otherwise: DESIGN.md's million ("Seeing
/// inside: the task dump") is this test run with
/// `GREEN_TEST_DUMP_COUNT=1000000`, which needs some 5 GB of memory.
const PARKED: usize = 100_000;

#[test]
fn a_hundred_thousand_parked_coroutines_are_dumped() {
    let count = std::env::var("GREEN_TEST_DUMP_COUNT").ok().and_then(|n| n.parse().ok()).unwrap_or(PARKED);
    dump_many(count);
}

/// Parks `count` coroutines on one event, dumps them, and prints how long
/// the dump, its text and its JSON took (no assertion on time: speed lives
/// in the benches).
fn dump_many(count: usize) {
    green::Builder::new().stack_size(16 * 1024).run(|| {
        let event = Rc::new(Event::new());
        let handles: Vec<_> = (0..count)
            .map(|_| {
                let event = event.clone();
                green::task::Builder::new().name("parked").spawn(move || event.wait().is_ok()).expect("spawned")
            })
            .collect();
        green::yield_now();
        let start = Instant::now();
        let dump = green::dump::Options::new().backtraces(false).dump();
        let taken = start.elapsed();
        let text = dump.to_string();
        let as_text = start.elapsed() - taken;
        let json = dump.to_json();
        let as_json = start.elapsed() - taken - as_text;
        eprintln!(
            "dump of {count} parked coroutines: {taken:?} to take, {as_text:?} as text ({} bytes), {as_json:?} \
             as JSON ({} bytes)",
            text.len(),
            json.len()
        );
        eprintln!("{text}");
        assert_eq!(dump.coroutines().len(), count + 1);
        assert!(dump.coroutines().iter().filter(|c| c.state == State::Parked).count() == count);
        assert!(text.contains(&format!("{count} coroutines parked in event, spawned at")), "{}", &text[..2000]);
        assert!(text.len() < 10_000, "alike coroutines share one block");
        event.set();
        for handle in handles {
            assert!(handle.join().expect("no panic"));
        }
    });
}
