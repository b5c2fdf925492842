//! The examples as whole programs: what a user sees on a bad command line,
//! and how the servers behave under the inputs that used to break them.
//!
//! These tests run the compiled example binaries. Cargo gives integration
//! tests the path of `[[bin]]` targets only, so the examples are found next
//! to this test's own executable: `target/<profile>/deps/cli-<hash>` →
//! `target/<profile>/examples/<name>`. `cargo test` builds a package's
//! examples before it runs its tests; a missing binary fails the test with
//! a message saying how to build it.
//!
//! Every child process is killed when its test ends, passed or failed
//! ([`Running`] is a drop guard). Servers listen on 127.0.0.1 port 0 and
//! print the port they got. Output is waited for with a bound
//! ([`OUTPUT_LIMIT`]) so that a server that stays silent fails the test
//! instead of hanging it; nothing here measures time.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Every example, by name.
const EXAMPLES: [&str; 15] = [
    "hello",
    "echo",
    "echo_threads",
    "echo_tokio",
    "echo_load",
    "http_hello",
    "many",
    "timeouts",
    "stuck",
    "crawler",
    "pipeline",
    "chat",
    "fib_server",
    "fib_probe",
    "showdown",
];

/// Every model of `fib_server`, by the name `--model` takes.
const FIB_MODELS: [&str; 7] =
    ["green", "green-pool", "green-workers", "threads", "processes", "tokio", "tokio-pool"];

/// How long to wait for a line, a connection or an exit that should come
/// at once: a bound against hanging, not a measurement.
const OUTPUT_LIMIT: Duration = Duration::from_secs(20);

/// How long `showdown --quick` may take to print its table: a bound
/// against hanging, well above the half minute it takes on two cores.
const SHOWDOWN_LIMIT: Duration = Duration::from_secs(240);

/// The path of the compiled example `name`.
fn example(name: &str) -> io::Result<PathBuf> {
    let test = std::env::current_exe()?;
    let profile_dir = test.parent().and_then(Path::parent).ok_or_else(|| {
        io::Error::other(format!("cannot find the target directory from {}", test.display()))
    })?;
    let path = profile_dir.join("examples").join(name);
    let build = "build the examples with the profile of this test: `cargo test --release -p green-examples` \
                 builds them before it runs the tests, and so does \
                 `cargo build --release -p green-examples --examples`";
    let built = match path.metadata().and_then(|meta| meta.modified()) {
        Ok(built) => built,
        Err(_) => {
            let message = format!("example binary {} is missing: {build}", path.display());
            return Err(io::Error::new(io::ErrorKind::NotFound, message));
        }
    };
    // A binary older than its source would test old behaviour (a test run
    // filtered with `--test cli` does not rebuild the examples). Its source
    // is its own file and the whole library.
    let sources = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![sources.join(format!("{name}.rs"))];
    rust_files(&sources.join("src"), &mut files);
    for source in files {
        if let Ok(edited) = source.metadata().and_then(|meta| meta.modified())
            && edited > built
        {
            let message =
                format!("example binary {} is older than {}: {build}", path.display(), source.display());
            return Err(io::Error::other(message));
        }
    }
    Ok(path)
}

/// Adds the `.rs` files under `dir`, at any depth, to `files`.
fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for path in entries.filter_map(|entry| Some(entry.ok()?.path())) {
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// Starts an example with its stdout and stderr piped.
fn spawn(name: &str, args: &[&str]) -> io::Result<Child> {
    Command::new(example(name)?)
        .args(args)
        // Run by cargo, `showdown` first builds its two helper programs;
        // here they are built already, and cargo's lock is this test's.
        .env_remove("CARGO")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// Runs an example to completion and returns what it printed.
fn run(name: &str, args: &[&str]) -> io::Result<Output> {
    Running::new(spawn(name, args)?)?.finish()
}

/// Runs an example through `sh -c`, after `limits` (such as `ulimit -n
/// 256`) have been applied to the shell it replaces.
fn run_limited(limits: &str, name: &str, args: &[&str]) -> io::Result<Output> {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{limits} && exec \"$0\" \"$@\""))
        .arg(example(name)?)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    Running::new(child)?.finish()
}

/// An example that is running, killed when this is dropped. Its stdout
/// arrives line by line on a channel; its stderr is collected whole
/// (unless it was taken before, to be read line by line too).
struct Running {
    /// The process.
    child: Child,
    /// Its stdout, a line at a time, from a thread that reads it.
    lines: Receiver<String>,
    /// The thread collecting its stderr, if it was not taken before.
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    fn new(mut child: Child) -> io::Result<Running> {
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("stdout is not piped"))?;
        let lines = read_lines(stdout);
        let stderr = child.stderr.take().map(|mut stderr| {
            thread::spawn(move || {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text);
                text
            })
        });
        Ok(Running { child, lines, stderr })
    }

    /// Starts a server example and returns it with the address it printed
    /// on its first line (`... listening on 127.0.0.1:PORT ...`).
    fn server(name: &str, args: &[&str]) -> io::Result<(Running, SocketAddr)> {
        Running::server_of(spawn(name, args)?)
    }

    /// [`Running::server`], with its stderr line by line on a channel.
    fn server_with_stderr_lines(
        name: &str,
        args: &[&str],
    ) -> io::Result<(Running, SocketAddr, Receiver<String>)> {
        let mut child = spawn(name, args)?;
        let stderr = child.stderr.take().ok_or_else(|| io::Error::other("stderr is not piped"))?;
        let (running, addr) = Running::server_of(child)?;
        Ok((running, addr, read_lines(stderr)))
    }

    /// The server `child`, and the address on its first line.
    fn server_of(child: Child) -> io::Result<(Running, SocketAddr)> {
        let running = Running::new(child)?;
        let first = running.line()?;
        let addr = first
            .split_whitespace()
            .find_map(|word| word.parse::<SocketAddr>().ok())
            .ok_or_else(|| io::Error::other(format!("no address in the server's first line: {first:?}")))?;
        Ok((running, addr))
    }

    /// The next line of stdout.
    fn line(&self) -> io::Result<String> {
        self.lines.recv_timeout(OUTPUT_LIMIT).map_err(|_| {
            io::Error::new(io::ErrorKind::TimedOut, format!("no line of output within {OUTPUT_LIMIT:?}"))
        })
    }

    /// Waits for the process to end and returns its status and output.
    fn finish(self) -> io::Result<Output> {
        self.finish_within(OUTPUT_LIMIT)
    }

    /// [`finish`](Running::finish), for a process that may be silent for
    /// up to `limit` between two lines.
    fn finish_within(mut self, limit: Duration) -> io::Result<Output> {
        let mut stdout = Vec::new();
        loop {
            match self.lines.recv_timeout(limit) {
                Ok(line) => {
                    stdout.extend_from_slice(line.as_bytes());
                    stdout.push(b'\n');
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "the example did not exit"));
                }
            }
        }
        let status = self.child.wait()?;
        let stderr = self.stderr.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        Ok(Output { status, stdout, stderr: stderr.into_bytes() })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Already gone if `finish` ran; then these fail harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each line of `output` (a child's stdout or stderr) down a
/// channel, from a thread, until the process closes it.
fn read_lines(output: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks that a command line was refused the way every example refuses
/// one, and returns the error line.
fn refused(name: &str, args: &[&str]) -> io::Result<String> {
    let output = run(name, args)?;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    let context = format!("{name} {args:?}: status {:?}, stderr {stderr:?}", output.status.code());
    assert_eq!(output.status.code(), Some(2), "{context}");
    assert_eq!(stdout, "", "{context}: nothing on stdout");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{context}: one error line and one pointing at --help");
    assert!(lines[0].starts_with(&format!("{name}: ")), "{context}");
    assert!(lines[1].contains("see --help"), "{context}");
    assert!(!stderr.contains("panicked") && !stderr.contains("invalid digit"), "{context}");
    Ok(lines[0].to_owned())
}

fn assert_success(name: &str, status: ExitStatus, stderr: &str) {
    assert!(status.success(), "{name} failed: {status}; stderr: {stderr}");
}

#[test]
fn every_example_prints_its_usage_for_help() -> io::Result<()> {
    for name in EXAMPLES {
        for help in ["--help", "-h"] {
            let output = run(name, &[help])?;
            assert_eq!(output.status.code(), Some(0), "{name} {help}");
            assert!(text(&output.stdout).starts_with(&format!("usage: {name}")), "{name} {help}");
            assert_eq!(text(&output.stderr), "", "{name} {help}");
        }
    }
    Ok(())
}

/// Regression: `--bogus` said "--bogus needs a value", and `--bogus 5`
/// printed the whole usage text after the error.
#[test]
fn every_example_calls_an_unknown_flag_unknown() -> io::Result<()> {
    for name in EXAMPLES {
        for args in [&["--bogus"][..], &["--bogus", "5"]] {
            let error = refused(name, args)?;
            assert!(error.starts_with(&format!("{name}: unknown flag --bogus (")), "{error}");
        }
    }
    Ok(())
}

#[test]
fn a_missing_value_or_a_bad_number_is_told_in_plain_words() -> io::Result<()> {
    assert_eq!(refused("many", &["--count"])?, "many: --count needs a value");
    assert_eq!(
        refused("many", &["--count", "abc"])?,
        "many: --count must be a whole number from 1 to 10000000 (got 'abc')"
    );
    for name in ["echo", "echo_threads", "echo_tokio", "chat"] {
        let error = refused(name, &["--port", "70000"])?;
        assert_eq!(error, format!("{name}: --port must be a whole number from 0 to 65535 (got '70000')"));
        let error = refused(name, &["--addr", "localhost:1"])?;
        assert!(error.contains("--addr must be an IP address"), "{error}");
    }
    assert_eq!(refused("echo", &["--quiet=yes"])?, "echo: --quiet takes no value");
    Ok(())
}

/// Regression: `--stack-size 0` was accepted, and a huge one panicked with
/// a backtrace while the runtime started.
#[test]
fn many_refuses_a_stack_size_outside_its_range() -> io::Result<()> {
    for size in ["0", "4095", "99999999999999", "1073741825"] {
        let error = refused("many", &["--stack-size", size, "--count", "10"])?;
        assert_eq!(
            error,
            format!("many: --stack-size must be a whole number from 4096 to 1073741824 (got '{size}')")
        );
    }
    Ok(())
}

#[test]
fn many_reports_a_spawn_failure_in_one_line() -> io::Result<()> {
    // 256 MiB of address space: the runtime starts, but not one region of
    // 1 GiB stacks can be mapped.
    let output = run_limited("ulimit -v 262144", "many", &["--stack-size", "1073741824", "--count", "10"])?;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("many: cannot spawn coroutine 1 of 10 with a stack of 1073741824 bytes: "),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(())
}

#[test]
fn a_clamped_value_is_announced_in_one_line() -> io::Result<()> {
    let output = run("crawler", &["--concurrency", "0", "--urls", "1"])?;
    let stderr = text(&output.stderr);
    assert_success("crawler", output.status, &stderr);
    assert_eq!(stderr, "crawler: --concurrency 0 is less than 1; using 1\n");
    assert!(text(&output.stdout).contains(", 1 at a time,"));
    Ok(())
}

/// Connects to an echo server, has `payload` echoed and closes.
fn echo_once(addr: SocketAddr, payload: &[u8]) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(OUTPUT_LIMIT))?;
    stream.write_all(payload)?;
    stream.shutdown(Shutdown::Write)?;
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed)?;
    assert_eq!(echoed, payload);
    Ok(())
}

#[test]
fn echo_quiet_logs_nothing_per_connection() -> io::Result<()> {
    for name in ["echo", "echo_threads"] {
        let (server, addr) = Running::server(name, &["--port", "0", "--exit-after", "3", "--quiet"])?;
        for _ in 0..3 {
            echo_once(addr, b"hello\n")?;
        }
        let output = server.finish()?;
        let stderr = text(&output.stderr);
        assert_success(name, output.status, &stderr);
        assert_eq!(text(&output.stdout), format!("{name}: served 3 connections, exiting\n"));
        assert_eq!(stderr, "");

        // And without --quiet, two lines per connection.
        let (server, addr) = Running::server(name, &["--port", "0", "--exit-after", "1"])?;
        echo_once(addr, b"hello\n")?;
        let output = server.finish()?;
        assert_eq!(text(&output.stdout).lines().count(), 3, "{}", text(&output.stdout));
    }
    Ok(())
}

/// Reads from a chat client until the server closes the connection (a
/// reset after the server's last words counts as closing).
fn read_until_closed(stream: &mut TcpStream) -> io::Result<String> {
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => break,
            Err(err) => return Err(err),
        }
    }
    Ok(text(&received))
}

/// Reads one line from a chat client.
fn chat_line(reader: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    Ok(line)
}

/// Regression: a line was judged only when its newline came, so a client
/// that streamed bytes without one was never told and never disconnected.
#[test]
fn chat_disconnects_a_client_whose_line_passes_the_limit_before_its_newline() -> io::Result<()> {
    let (server, addr) = Running::server("chat", &["--port", "0", "--max-line", "64"])?;
    let other = TcpStream::connect(addr)?;
    other.set_read_timeout(Some(OUTPUT_LIMIT))?;
    let mut other = BufReader::new(other);
    assert!(chat_line(&mut other)?.starts_with("*** welcome, guest1"));

    let mut streamer = TcpStream::connect(addr)?;
    streamer.set_read_timeout(Some(OUTPUT_LIMIT))?;
    // A client that keeps sending and never sends a newline.
    let mut sender = streamer.try_clone()?;
    let sending = thread::spawn(move || {
        let chunk = [b'x'; 100];
        // Ends when the server has closed the connection.
        for _ in 0..100_000 {
            if sender.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let received = read_until_closed(&mut streamer)?;
    assert!(received.starts_with("*** welcome, guest2"), "{received:?}");
    assert!(received.ends_with("*** line too long (max 64 bytes); disconnecting\n"), "{received:?}");
    drop(streamer);
    let _ = sending.join();

    assert_eq!(chat_line(&mut other)?, "*** guest2 joined\n");
    assert_eq!(chat_line(&mut other)?, "*** guest2 was disconnected: line too long\n");
    let log: Vec<String> = (0..3).map(|_| server.line()).collect::<io::Result<_>>()?;
    assert!(log[2].starts_with("chat: disconnecting guest2 "), "{log:?}");
    assert!(log[2].ends_with("it sent a line longer than 64 bytes; 1 online"), "{log:?}");
    Ok(())
}

/// Regression: when one departure set off others, every log line gave the
/// count after all of them (`guest2 closed the connection; 8 online` with
/// 18 still there).
#[test]
fn chat_counts_every_departure_when_many_leave_at_once() -> io::Result<()> {
    const CLIENTS: usize = 20;
    let (server, addr) = Running::server("chat", &["--port", "0"])?;
    let mut clients = Vec::new();
    for n in 1..=CLIENTS {
        clients.push(TcpStream::connect(addr)?);
        let joined = server.line()?;
        assert!(joined.ends_with(&format!("joined; {n} online")), "{joined}");
    }
    drop(clients);
    let mut counts = Vec::new();
    while counts.last() != Some(&0) {
        let line = server.line()?;
        let count = line
            .strip_suffix(" online")
            .and_then(|rest| rest.rsplit(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| io::Error::other(format!("no online count in {line:?}")))?;
        counts.push(count);
    }
    let expected: Vec<usize> = (0..CLIENTS).rev().collect();
    assert_eq!(counts, expected);
    Ok(())
}

/// Regression: under `--concurrency 5000` the crawler printed a line for
/// every url and every server error, thousands of them.
#[test]
fn crawler_under_heavy_load_prints_counts_not_a_line_per_url() -> io::Result<()> {
    // Too few descriptors for the connections in flight, so that
    // connections fail as well as requests.
    let args = ["--urls", "3000", "--concurrency", "5000", "--timeout-ms", "300", "--deadline-ms", "5000"];
    let output = run_limited("ulimit -n 512", "crawler", &args)?;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_success("crawler", output.status, &stderr);
    assert!(stdout.lines().count() <= 30, "a summary, not a line per url:\n{stdout}");
    assert!(stderr.lines().count() <= 2, "not a line per error:\n{stderr}");

    let summary = stdout.lines().find(|line| line.starts_with("3000 urls in ")).expect("a summary line");
    let numbers: Vec<usize> =
        summary.split([' ', ',', ':']).filter_map(|word| word.parse().ok()).skip(2).collect();
    assert_eq!(numbers.len(), 4, "ok, failed, timed out, cancelled: {summary}");
    assert_eq!(numbers.iter().sum::<usize>(), 3000, "{summary}");
    let failed = numbers[1];
    assert!(failed > 0, "the /fail/ and /drop/ paths fail: {summary}");

    let lines: Vec<&str> = stdout.lines().collect();
    let kinds_at = lines.iter().position(|line| *line == "failures by kind:").expect("failures by kind");
    let by_kind: usize = lines[kinds_at + 1..]
        .iter()
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    assert_eq!(by_kind, failed, "the counts by kind add up:\n{stdout}");
    let samples_at = lines.iter().position(|line| *line == "first failures:").expect("samples");
    let samples = lines[samples_at + 1..].iter().take_while(|line| line.starts_with("  ")).count();
    assert!((1..=3).contains(&samples), "a few samples:\n{stdout}");
    assert!(lines.iter().any(|line| line.starts_with("server side: ")), "{stdout}");
    Ok(())
}

/// The number before `word` in a `--stats` line (`12 spawned,`, `34
/// switches`).
fn stat(line: &str, word: &str) -> Option<u64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| w.trim_end_matches(',') == word)?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}

#[test]
fn echo_stats_prints_the_metrics_while_it_serves() -> io::Result<()> {
    for workers in ["1", "2"] {
        let args = ["--port", "0", "--quiet", "--stats", "--workers", workers];
        let (server, addr, stderr) = Running::server_with_stderr_lines("echo", &args)?;
        for i in 0..3 {
            echo_once(addr, format!("hello {i}\n").as_bytes())?;
        }
        // A line a second; the first one that has seen the three
        // connections: main, the stats coroutine, three connections (and a
        // service coroutine per worker).
        let mut lines = Vec::new();
        let line = loop {
            let line = match stderr.recv_timeout(OUTPUT_LIMIT) {
                Ok(line) if lines.len() < 20 => line,
                _ => {
                    let message = format!("no stats line with the connections on stderr: {lines:#?}");
                    return Err(io::Error::new(io::ErrorKind::TimedOut, message));
                }
            };
            assert!(line.starts_with("echo: stats: "), "{line}");
            if stat(&line, "spawned").is_some_and(|spawned| spawned >= 5) {
                break line;
            }
            lines.push(line);
        };
        assert!(stat(&line, "switches").is_some_and(|switches| switches > 0), "{line}");
        for part in ["alive,", "parked,", "polls/s,", "events/poll,", "steals", "delay p50", "p99"] {
            assert!(line.contains(part), "{part:?} missing from {line:?}");
        }
        drop(server);
    }
    Ok(())
}

#[test]
fn echo_serves_on_several_workers_in_both_shapes() -> io::Result<()> {
    for shape in
        [&["--workers", "2"][..], &["--workers", "2", "--reuseport"], &["--workers", "3", "--reuseport"]]
    {
        let mut args = vec!["--port", "0", "--exit-after", "6", "--quiet"];
        args.extend_from_slice(shape);
        let (server, addr) = Running::server("echo", &args)?;
        for i in 0..6 {
            echo_once(addr, format!("hello {i}\n").as_bytes())?;
        }
        let output = server.finish()?;
        let stderr = text(&output.stderr);
        assert_success("echo", output.status, &stderr);
        assert_eq!(stderr, "", "{shape:?}");
        let stdout = text(&output.stdout);
        assert_eq!(stdout, "echo: served 6 connections, exiting\n", "{shape:?}");
    }
    assert_eq!(
        refused("echo", &["--workers", "0"])?,
        "echo: --workers must be a whole number from 1 to 256 (got '0')"
    );
    Ok(())
}

#[test]
fn many_spreads_its_coroutines_over_workers() -> io::Result<()> {
    let output = run("many", &["--count", "2000", "--sleep-ms", "1", "--workers", "2"])?;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_success("many", output.status, &stderr);
    assert!(stdout.starts_with("many: 2000 coroutines, each sleeping 1ms"), "{stdout}");
    assert!(stdout.lines().next().is_some_and(|line| line.ends_with("spread over 2 workers")), "{stdout}");
    assert!(stdout.contains("all asleep:"), "{stdout}");
    assert_eq!(
        refused("many", &["--workers", "257"])?,
        "many: --workers must be a whole number from 1 to 256 (got '257')"
    );
    Ok(())
}

/// One connection to a `fib_server`, asking a line at a time.
struct FibClient {
    /// The socket, for writing requests.
    stream: TcpStream,
    /// The same socket, buffered, for reading answers.
    reader: BufReader<TcpStream>,
}

impl FibClient {
    fn connect(addr: SocketAddr) -> io::Result<FibClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(OUTPUT_LIMIT))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(FibClient { stream, reader })
    }

    /// Sends `request` and a newline, and returns the answer line with its
    /// newline.
    fn ask(&mut self, request: &str) -> io::Result<String> {
        self.stream.write_all(format!("{request}\n").as_bytes())?;
        let mut answer = String::new();
        self.reader.read_line(&mut answer)?;
        Ok(answer)
    }
}

/// `stuck` prints a task dump on the SIGQUIT it sends itself, and the dump
/// names each bug: the cycle, the channel waiter, the spinning coroutine.
#[test]
fn stuck_names_each_bug_in_the_dump_it_prints_on_sigquit() -> io::Result<()> {
    let expected: [(&str, &[&str]); 3] = [
        (
            "deadlock",
            &[
                "deadlock: a cycle of coroutines waiting on each other",
                "'checking-to-savings' waits on mutex",
                "held by coroutine",
            ],
        ),
        ("forgotten-sender", &["'cache-warmer' (runtime", "in channel recv"]),
        ("spin", &["worker 1 (runtime", "did not answer: coroutine", "'checksum'", "has been running for"]),
    ];
    for (bug, says) in expected {
        let output = run("stuck", &["--bug", bug, "--quit-after", "0.3"])?;
        let stderr = text(&output.stderr);
        assert_success("stuck", output.status, &stderr);
        assert!(stderr.contains("green: SIGQUIT: green: task dump:"), "--bug {bug}: {stderr}");
        assert!(stderr.contains("'health-check'"), "--bug {bug}: {stderr}");
        for said in says {
            assert!(stderr.contains(said), "--bug {bug} should say {said:?}: {stderr}");
        }
    }
    Ok(())
}

#[test]
fn fib_server_answers_in_every_model_and_keeps_a_connection_after_a_bad_line() -> io::Result<()> {
    for model in FIB_MODELS {
        let (_server, addr) = Running::server("fib_server", &["--model", model, "--workers", "2"])?;
        let mut client = FibClient::connect(addr)?;
        assert_eq!(client.ask("10")?, "55\n", "{model}");
        for bad in ["abc", "41", ""] {
            let error = client.ask(bad)?;
            assert!(error.starts_with("error: expected a whole number from 0 to 40"), "{model}: {error:?}");
        }
        assert_eq!(client.ask("20")?, "6765\n", "{model}: the connection goes on after errors");
        assert_eq!(client.ask(" 0\r")?, "0\n", "{model}");
    }
    Ok(())
}

#[test]
fn fib_server_closes_only_the_connection_that_sends_an_over_long_line() -> io::Result<()> {
    for model in FIB_MODELS {
        let (_server, addr) = Running::server("fib_server", &["--model", model, "--workers", "2"])?;
        let mut other = FibClient::connect(addr)?;
        assert_eq!(other.ask("1")?, "1\n", "{model}");

        // 100 digits and no newline: judged without waiting for one.
        let mut long = TcpStream::connect(addr)?;
        long.set_read_timeout(Some(OUTPUT_LIMIT))?;
        long.write_all(&[b'7'; 100])?;
        let received = read_until_closed(&mut long)?;
        assert_eq!(received, "error: line longer than 64 bytes; closing the connection\n", "{model}");

        assert_eq!(other.ask("10")?, "55\n", "{model}: the other connection goes on");
        assert_eq!(FibClient::connect(addr)?.ask("2")?, "1\n", "{model}: and new ones are served");
    }
    Ok(())
}

#[test]
fn the_showdown_programs_refuse_a_bad_command_line_in_one_line() -> io::Result<()> {
    let models = "green, green-pool, green-workers, threads, processes, tokio, tokio-pool";
    assert_eq!(
        refused("fib_server", &["--model", "fibers"])?,
        format!("fib_server: --model must be one of {models} (got 'fibers')")
    );
    assert_eq!(
        refused("showdown", &["--models", "green,fibers"])?,
        format!(
            "showdown: --models must be a comma-separated list of models from: {models} (got 'green,fibers')"
        )
    );
    assert_eq!(
        refused("fib_probe", &["--duration", "1"])?,
        "fib_probe: --addr is required: give an address such as 127.0.0.1:7000"
    );
    assert_eq!(
        refused("fib_probe", &["--addr", "127.0.0.1:1", "--duration", "0"])?,
        "fib_probe: --duration must be a number of seconds from 0.1 to 3600, such as 1.5 (got '0')"
    );
    Ok(())
}

/// The value of `key=` in a result line of `fib_probe` or `echo_load`.
fn probe_field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace().find_map(|field| field.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

#[test]
fn fib_probe_measures_a_green_server_and_finds_no_wrong_answer() -> io::Result<()> {
    let (_server, addr) = Running::server("fib_server", &["--model", "green"])?;
    let addr = addr.to_string();
    let args = ["--addr", &addr, "--duration", "0.3", "--probes", "2", "--heavy", "1", "--heavy-n", "15"];
    let output = run("fib_probe", &args)?;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_success("fib_probe", output.status, &stderr);
    assert_eq!(stderr, "");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stdout}");
    let line = lines[0];
    assert!(line.starts_with("probe rps="), "{line}");
    for key in ["rps", "p50_us", "p99_us", "max_us", "requests", "heavy_done", "heavy_rps", "errors"] {
        assert!(probe_field(line, key).is_some(), "{key} in {line}");
    }
    assert!(probe_field(line, "requests").is_some_and(|requests| requests > 0.0), "{line}");
    assert_eq!(probe_field(line, "errors"), Some(0.0), "{line}");

    // Nothing listening: one line, status 1.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string();
    let output = run("fib_probe", &["--addr", &closed, "--duration", "0.1"])?;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with(&format!("fib_probe: cannot connect to {closed}: ")), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    Ok(())
}

/// A directory of its own for a test, removed when the test ends.
struct TempDir {
    /// The directory.
    path: PathBuf,
}

impl TempDir {
    fn new(name: &str) -> io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("green-examples-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[test]
fn showdown_quick_runs_every_model_and_writes_its_table_and_chart() -> io::Result<()> {
    let out = TempDir::new("showdown")?;
    let dir = out.path.join("report");
    let dir_arg = dir.to_string_lossy().into_owned();
    let output =
        Running::new(spawn("showdown", &["--quick", "--out", &dir_arg])?)?.finish_within(SHOWDOWN_LIMIT)?;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_success("showdown", output.status, &stderr);

    assert!(stdout.starts_with("showdown on "), "a header line with the machine first:\n{stdout}");
    let header = stdout.lines().find(|line| line.starts_with("model ")).expect("a header row");
    for column in ["alone req/s", "loaded req/s", "loaded p99", "peak RSS MiB", "threads"] {
        assert!(header.contains(column), "{column} in {header}");
    }
    let markdown = fs::read_to_string(dir.join("showdown.md"))?;
    let svg = fs::read_to_string(dir.join("showdown.svg"))?;
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"), "{svg}");
    for model in FIB_MODELS {
        let row = stdout.lines().find(|line| line.split_whitespace().next() == Some(model));
        assert!(row.is_some(), "a row for {model}:\n{stdout}");
        assert!(markdown.contains(&format!("| `{model}` |")), "{model} in the Markdown:\n{markdown}");
        assert!(svg.contains(&format!(">{model}</text>")), "{model} in the chart");
        assert!(stderr.contains(&format!("] {model}: ")), "progress lines for {model}:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(())
}

#[test]
fn echo_tokio_echoes_on_one_worker_and_on_two() -> io::Result<()> {
    for workers in ["1", "2"] {
        let args = ["--port", "0", "--exit-after", "3", "--quiet", "--workers", workers];
        let (server, addr) = Running::server("echo_tokio", &args)?;
        for i in 0..3 {
            echo_once(addr, format!("hello {i}\n").as_bytes())?;
        }
        let output = server.finish()?;
        let stderr = text(&output.stderr);
        assert_success("echo_tokio", output.status, &stderr);
        assert_eq!(stderr, "", "--workers {workers}");
        assert_eq!(
            text(&output.stdout),
            "echo_tokio: served 3 connections, exiting\n",
            "--workers {workers}"
        );
    }
    // Without --quiet, two lines per connection, as echo prints them.
    let (server, addr) = Running::server("echo_tokio", &["--port", "0", "--exit-after", "1"])?;
    echo_once(addr, b"hello\n")?;
    let stdout = text(&server.finish()?.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("echo_tokio: conn-1 (127.0.0.1:") && lines[0].ends_with(") connected"));
    assert!(lines[1].ends_with(") closed after 6 bytes"), "{stdout}");
    assert_eq!(
        refused("echo_tokio", &["--workers", "0"])?,
        "echo_tokio: --workers must be a whole number from 1 to 256 (got '0')"
    );
    Ok(())
}

#[test]
fn echo_load_measures_a_green_echo_server_and_finds_no_wrong_echo() -> io::Result<()> {
    let (_server, addr) = Running::server("echo", &["--port", "0", "--quiet"])?;
    let addr = addr.to_string();
    let output = run("echo_load", &["--addr", &addr, "--connections", "10", "--duration", "1"])?;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_success("echo_load", output.status, &stderr);
    assert_eq!(stderr, "");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stdout}");
    let line = lines[0];
    assert!(line.starts_with("echo_load rps="), "{line}");
    for key in ["rps", "p50_us", "p99_us", "max_us", "requests", "connections", "size", "errors"] {
        assert!(probe_field(line, key).is_some(), "{key} in {line}");
    }
    assert!(probe_field(line, "requests").is_some_and(|requests| requests > 0.0), "{line}");
    assert_eq!(probe_field(line, "connections"), Some(10.0), "{line}");
    assert_eq!(probe_field(line, "size"), Some(64.0), "{line}");
    assert_eq!(probe_field(line, "errors"), Some(0.0), "{line}");
    Ok(())
}

/// A server that echoes every read with its first byte changed.
fn start_wrong_echo_server() -> io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    buf[0] ^= 0xff;
                    if stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

#[test]
fn echo_load_fails_on_a_wrong_echo_and_on_a_closed_port() -> io::Result<()> {
    let addr = start_wrong_echo_server()?.to_string();
    let output = run("echo_load", &["--addr", &addr, "--connections", "2", "--duration", "0.2"])?;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(probe_field(&stdout, "errors"), Some(2.0), "{stdout}");
    assert_eq!(probe_field(&stdout, "requests"), Some(0.0), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("echo_load: 2 of 2 connections failed; the first: connection "), "{stderr}");
    assert!(stderr.contains(": wrong echo of message 0: byte 0 is "), "{stderr}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string();
    let output = run("echo_load", &["--addr", &closed, "--duration", "0.1"])?;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with(&format!("echo_load: cannot connect to {closed}: ")), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    assert_eq!(
        refused("echo_load", &["--duration", "1"])?,
        "echo_load: --addr is required: give an address such as 127.0.0.1:7000"
    );
    assert_eq!(
        refused("echo_load", &["--addr", &closed, "--connections", "0"])?,
        "echo_load: --connections must be a whole number from 1 to 10000 (got '0')"
    );
    Ok(())
}

/// Every way `http_hello` runs: both runtimes, one worker and two.
const HTTP_SERVERS: [[&str; 4]; 4] = [
    ["--runtime", "green", "--workers", "1"],
    ["--runtime", "green", "--workers", "2"],
    ["--runtime", "tokio", "--workers", "1"],
    ["--runtime", "tokio", "--workers", "2"],
];

/// Starts `http_hello` with `args` on a free port.
fn http_server(args: &[&str]) -> io::Result<(Running, SocketAddr)> {
    let mut all = vec!["--addr", "127.0.0.1:0"];
    all.extend_from_slice(args);
    Running::server("http_hello", &all)
}

/// A GET that keeps the connection open.
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/// An answer read from an HTTP connection.
#[derive(Debug)]
struct HttpResponse {
    /// The status line, without its CR LF.
    status: String,
    /// The header lines, each as (name in lower case, value).
    headers: Vec<(String, String)>,
    /// The body, `Content-Length` bytes.
    body: Vec<u8>,
}

impl HttpResponse {
    /// The value of the header `name` (lower case), if there is one.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(have, _)| have == name).map(|(_, value)| value.as_str())
    }
}

/// One HTTP connection, written to directly and read through a buffer.
struct HttpClient {
    /// The socket, for writing requests.
    stream: TcpStream,
    /// The same socket, buffered, for reading answers.
    reader: BufReader<TcpStream>,
}

impl HttpClient {
    fn connect(addr: SocketAddr) -> io::Result<HttpClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(OUTPUT_LIMIT))?;
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(HttpClient { stream, reader })
    }

    fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.write_all(request)
    }

    /// Reads one answer: its head, and then its body unless it answers a
    /// `HEAD` request.
    fn response(&mut self, to_head: bool) -> io::Result<HttpResponse> {
        let status = self.head_line()?;
        let mut headers = Vec::new();
        loop {
            let line = self.head_line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) =
                line.split_once(':').ok_or_else(|| io::Error::other(format!("not a header: {line:?}")))?;
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut response = HttpResponse { status, headers, body: Vec::new() };
        let length = response.header("content-length").and_then(|length| length.parse::<usize>().ok());
        let length = length.ok_or_else(|| io::Error::other(format!("no Content-Length: {response:?}")))?;
        if !to_head {
            response.body = vec![0; length];
            self.reader.read_exact(&mut response.body)?;
        }
        Ok(response)
    }

    /// One line of a head, which must end with CR LF, without it.
    fn head_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        line.strip_suffix("\r\n")
            .map(str::to_owned)
            .ok_or_else(|| io::Error::other(format!("a head line not ended by CR LF: {line:?}")))
    }

    /// Whether the server closes the connection with nothing more sent (a
    /// reset after the last answer counts as closing).
    fn is_closed(&mut self) -> io::Result<bool> {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => Ok(rest.is_empty()),
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => Ok(true),
            Err(err) => Err(err),
        }
    }
}

/// Checks a `200 OK` with the hello body (or none, for `HEAD`).
fn assert_hello(response: &HttpResponse, to_head: bool, context: &str) {
    assert_eq!(response.status, "HTTP/1.1 200 OK", "{context}: {response:?}");
    assert_eq!(response.header("content-length"), Some("14"), "{context}: {response:?}");
    let body: &[u8] = if to_head { b"" } else { b"Hello, world!\n" };
    assert_eq!(response.body, body, "{context}: {response:?}");
}

/// Seconds since the Unix epoch of an IMF-fixdate (`Sun, 06 Dec 2026
/// 10:00:00 GMT`), whose day name must agree with its date.
fn parse_http_date(date: &str) -> Option<u64> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (day_name, rest) = date.split_once(", ")?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = fields[..] else { return None };
    let two = |text: &str| (text.len() == 2).then(|| text.parse::<u64>().ok()).flatten();
    let (day, year) = (two(day)?, (year.len() == 4).then(|| year.parse::<u64>().ok()).flatten()?);
    let month = MONTHS.iter().position(|name| *name == month)? as u64 + 1;
    let clock: Vec<u64> = time.split(':').map(two).collect::<Option<_>>()?;
    let [hour, minute, second] = clock[..] else { return None };
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    // Days from 1970-01-01, counting years from March (Hinnant's
    // days_from_civil), so that February's leap day is a year's last.
    let (year, month) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let (era, year_of_era) = (year / 400, year % 400);
    let day_of_year = (153 * month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = (era * 146_097 + day_of_era).checked_sub(719_468)?;
    (DAYS[(days % 7) as usize] == day_name).then_some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[test]
fn the_http_date_parser_of_these_tests_knows_its_dates() {
    assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
    assert_eq!(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"), Some(951_782_400));
    assert_eq!(parse_http_date("Sun, 06 Dec 2026 10:00:00 GMT"), Some(1_796_551_200));
    assert_eq!(parse_http_date("Mon, 06 Dec 2026 10:00:00 GMT"), None, "the wrong day name");
    assert_eq!(parse_http_date("Sunday, 06-Dec-26 10:00:00 GMT"), None, "not IMF-fixdate");
}

#[test]
fn http_hello_answers_a_get_with_its_length_and_the_date() -> io::Result<()> {
    for args in HTTP_SERVERS {
        let context = args.join(" ");
        let (_server, addr) = http_server(&args)?;
        let mut client = HttpClient::connect(addr)?;
        client.send(GET)?;
        let response = client.response(false)?;
        assert_hello(&response, false, &context);
        assert_eq!(response.header("connection"), None, "{context}: keep-alive is HTTP/1.1's default");

        let date = response.header("date").unwrap_or_default();
        let secs = parse_http_date(date);
        assert!(secs.is_some(), "{context}: Date {date:?} is not an IMF-fixdate");
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // A check of the calendar, not of speed: a wrong day or hour is off
        // by far more than a minute.
        assert!(secs.is_some_and(|secs| secs.abs_diff(now) < 60), "{context}: Date {date:?} is not now");

        // The connection stays open for the next request.
        client.send(GET)?;
        assert_hello(&client.response(false)?, false, &context);
    }
    Ok(())
}

#[test]
fn http_hello_answers_three_pipelined_requests_in_order() -> io::Result<()> {
    let head: &[u8] = b"HEAD / HTTP/1.1\r\nHost: test\r\n\r\n";
    let close: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    for args in HTTP_SERVERS {
        let context = args.join(" ");
        let (_server, addr) = http_server(&args)?;
        let mut client = HttpClient::connect(addr)?;
        // One write: a GET, a HEAD (whose answer has no body) and a GET
        // that closes, so the order of the answers shows.
        client.send(&[GET, head, close].concat())?;
        let first = client.response(false)?;
        assert_hello(&first, false, &context);
        assert_eq!(first.header("connection"), None, "{context}");
        assert_hello(&client.response(true)?, true, &context);
        let last = client.response(false)?;
        assert_hello(&last, false, &context);
        assert_eq!(last.header("connection"), Some("close"), "{context}");
        assert!(client.is_closed()?, "{context}: closed after the answer to Connection: close");
    }
    Ok(())
}

#[test]
fn http_hello_answers_a_request_sent_a_byte_at_a_time() -> io::Result<()> {
    for args in HTTP_SERVERS {
        let context = args.join(" ");
        let (_server, addr) = http_server(&args)?;
        let mut client = HttpClient::connect(addr)?;
        for byte in GET {
            client.send(&[*byte])?;
        }
        assert_hello(&client.response(false)?, false, &context);
        // And the connection goes on.
        client.send(GET)?;
        assert_hello(&client.response(false)?, false, &context);
    }
    Ok(())
}

#[test]
fn http_hello_closes_only_the_connection_of_a_malformed_request() -> io::Result<()> {
    for args in HTTP_SERVERS {
        let context = args.join(" ");
        let (_server, addr) = http_server(&args)?;
        let mut other = HttpClient::connect(addr)?;
        other.send(GET)?;
        assert_hello(&other.response(false)?, false, &context);

        let mut bad = HttpClient::connect(addr)?;
        bad.send(b"GARBAGE\r\n\r\n")?;
        let response = bad.response(false)?;
        assert_eq!(response.status, "HTTP/1.1 400 Bad Request", "{context}: {response:?}");
        assert_eq!(response.header("connection"), Some("close"), "{context}");
        assert!(response.body.starts_with(b"bad request: "), "{context}: {response:?}");
        assert!(bad.is_closed()?, "{context}: closed after 400");

        // The open connection and new ones are still served.
        other.send(GET)?;
        assert_hello(&other.response(false)?, false, &context);
        let mut new = HttpClient::connect(addr)?;
        new.send(GET)?;
        assert_hello(&new.response(false)?, false, &context);
    }
    Ok(())
}

#[test]
fn http_hello_closes_an_http_1_0_connection_unless_asked_to_keep_it() -> io::Result<()> {
    for args in HTTP_SERVERS {
        let context = args.join(" ");
        let (_server, addr) = http_server(&args)?;
        let mut client = HttpClient::connect(addr)?;
        client.send(b"GET / HTTP/1.0\r\n\r\n")?;
        let response = client.response(false)?;
        assert_hello(&response, false, &context);
        assert_eq!(response.header("connection"), Some("close"), "{context}");
        assert!(client.is_closed()?, "{context}: HTTP/1.0 closes by default");

        let mut kept = HttpClient::connect(addr)?;
        for _ in 0..2 {
            kept.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")?;
            let response = kept.response(false)?;
            assert_hello(&response, false, &context);
            assert_eq!(response.header("connection"), Some("keep-alive"), "{context}");
        }
    }
    Ok(())
}

#[test]
fn http_hello_refuses_a_bad_command_line_in_one_line() -> io::Result<()> {
    assert_eq!(
        refused("http_hello", &["--runtime", "fibers"])?,
        "http_hello: --runtime must be green or tokio (got 'fibers')"
    );
    assert_eq!(
        refused("http_hello", &["--workers", "0"])?,
        "http_hello: --workers must be a whole number from 1 to 256 (got '0')"
    );
    let error = refused("http_hello", &["--addr", "nowhere"])?;
    assert!(error.starts_with("http_hello: --addr must be an address such as 127.0.0.1:8080"), "{error}");
    Ok(())
}
