//! The showdown of concurrency models: `fib_server` in each of its models,
//! measured by `fib_probe` under the same two loads, in one table.
//!
//! For each model, `showdown` starts the server as a process of its own,
//! then runs two phases against it:
//!
//! 1. **alone**: a few connections ask for `fib(1)`, a request that costs
//!    next to nothing, one request in flight each: how fast the model
//!    answers when nothing else happens;
//! 2. **under load**: the same, beside twice as many connections as there
//!    are cores asking for `fib(30)` nonstop (milliseconds of CPU time
//!    each): does a cheap request still get through quickly while the
//!    server is busy?
//!
//! While the loaded phase runs it samples the server's thread count
//! (`Threads:` in `/proc/<pid>/status`) and, at its end, reads its peak
//! resident memory (`VmHWM`); for the `processes` model, the parent's and
//! its workers' are added up. Then it stops the server (`SIGTERM`, then
//! `SIGKILL`) and goes on with the next model.
//!
//! It prints one line per step to stderr while it runs, and the table to
//! stdout. `--out DIR` also writes `DIR/showdown.md` (the table in
//! Markdown) and `DIR/showdown.svg` (a bar chart of the same numbers).
//!
//! `fib_server` and `fib_probe` are found next to this program's own
//! executable, where cargo puts every example:
//!
//! ```text
//! cargo build --release -p green-examples --examples
//! target/release/examples/showdown --quick --out /tmp/showdown
//! ```
//!
//! Every process it starts is stopped when the step that started it ends,
//! also when the step fails (a drop guard), and dies with `showdown` if
//! `showdown` itself is killed (`PR_SET_PDEATHSIG`).

#![warn(clippy::undocumented_unsafe_blocks)]

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use green_examples::Flag::{Switch, Value};
use green_examples::fib::Model;

const USAGE: &str = "\
usage: showdown [--quick] [--models LIST] [--duration SECS] [--heavy N] [--out DIR]

Runs fib_server in each concurrency model against fib_probe and prints one
table: cheap requests per second alone and under heavy load, the p99 latency
of cheap requests under load, the heavy requests served, the server's peak
memory and its threads. fib_server and fib_probe must be next to this
program (cargo build --release -p green-examples --examples puts them there).

  --quick           short phases (1.5 s each instead of 5 s)
  --models LIST     the models to run, separated by commas (default all:
                    green, green-pool, green-workers, threads, processes,
                    tokio, tokio-pool)
  --duration SECS   length of each phase, 0.1 to 600, fractions allowed
                    (default 5, or 1.5 with --quick)
  --heavy N         heavy connections in the loaded phase, 0 to 1000
                    (default twice the number of cores)
  --out DIR         also write DIR/showdown.md and DIR/showdown.svg";

/// Connections asking for cheap requests, in both phases.
const PROBES: usize = 4;

/// The `n` of a heavy request.
const HEAVY_N: u32 = 30;

/// How long a server may take to say it listens.
const START_LIMIT: Duration = Duration::from_secs(10);

/// How long a probe may run past its duration before it counts as hung.
const PROBE_GRACE: Duration = Duration::from_secs(60);

/// How long a process asked to stop with `SIGTERM` has before `SIGKILL`.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How often the server's threads are counted during the loaded phase.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

fn main() {
    let flags = green_examples::Flags::from_env(
        "showdown",
        USAGE,
        &[Switch("quick"), Value("models"), Value("duration"), Value("heavy"), Value("out")],
    );
    let cores = thread::available_parallelism().map_or(1, usize::from);
    let quick = flags.switch("quick");
    let models: ModelList = flags.get(
        "models",
        ModelList(Model::ALL.to_vec()),
        &format!("a comma-separated list of models from: {}", Model::names()),
    );
    let default_duration = if quick { Duration::from_millis(1500) } else { Duration::from_secs(5) };
    let plan = Plan {
        models: models.0,
        duration: flags.get_seconds("duration", default_duration, 0.1..=600.0),
        heavy: flags.get_number("heavy", (2 * cores).min(1000), 0..=1000),
        workers: cores.min(256),
    };
    let out: PathBuf = flags.get("out", PathBuf::new(), "a directory");
    // An empty value is refused by the parser, so empty means not given.
    let out = (!out.as_os_str().is_empty()).then_some(out);
    if let Err(err) = run(&plan, out.as_deref()) {
        eprintln!("showdown: {err}");
        std::process::exit(1);
    }
}

/// The models given to `--models`, in the order given, each once.
#[derive(Debug, Clone)]
struct ModelList(Vec<Model>);

impl FromStr for ModelList {
    type Err = ();

    fn from_str(text: &str) -> Result<ModelList, ()> {
        let mut models = Vec::new();
        for name in text.split(',') {
            let model: Model = name.trim().parse().map_err(drop)?;
            if !models.contains(&model) {
                models.push(model);
            }
        }
        Ok(ModelList(models))
    }
}

/// What to run.
#[derive(Debug)]
struct Plan {
    /// The models, in the order they run.
    models: Vec<Model>,
    /// The length of each phase.
    duration: Duration,
    /// Heavy connections in the loaded phase.
    heavy: usize,
    /// `--workers` for the servers: the number of cores.
    workers: usize,
}

/// The machine the numbers were measured on.
#[derive(Debug)]
struct Machine {
    /// The CPU's model name, from `/proc/cpuinfo`.
    cpu: String,
    /// Cores this process may use.
    cores: usize,
    /// The kernel's name and release.
    kernel: String,
    /// When the showdown ran, in UTC.
    date: String,
}

/// One phase's result, as `fib_probe` printed it.
#[derive(Debug, Default, Clone)]
struct Probe {
    /// Cheap answers per second.
    rps: f64,
    /// Median latency of a cheap answer, in microseconds.
    p50_us: u64,
    /// 99th percentile latency of a cheap answer, in microseconds.
    p99_us: u64,
    /// Heavy answers per second.
    heavy_rps: f64,
    /// Connections ended by an error (a wrong answer among them).
    errors: u64,
}

/// A model's row of the table.
#[derive(Debug)]
struct Row {
    /// The model.
    model: Model,
    /// The phase with cheap requests only.
    alone: Probe,
    /// The phase with heavy connections beside them.
    loaded: Probe,
    /// The server's peak resident memory, summed over its processes, in
    /// KiB.
    peak_rss_kib: u64,
    /// The most threads the server had while loaded, summed over its
    /// processes.
    threads: usize,
}

/// Runs every model of `plan` and prints (and writes, with `out`) the
/// table.
fn run(plan: &Plan, out: Option<&Path>) -> io::Result<()> {
    build_siblings()?;
    let server = sibling("fib_server")?;
    let probe = sibling("fib_probe")?;
    if let Some(out) = out {
        fs::create_dir_all(out)
            .map_err(|err| io::Error::new(err.kind(), format!("cannot create {}: {err}", out.display())))?;
    }
    let machine = Machine::here();
    let phase = plan.duration.as_secs_f64();
    eprintln!(
        "showdown: {} models, two phases of {phase} s each, {} heavy connections in the second; \
         about {:.0} s",
        plan.models.len(),
        plan.heavy,
        plan.models.len() as f64 * (2.0 * phase + 0.5)
    );
    let mut rows = Vec::with_capacity(plan.models.len());
    for (i, &model) in plan.models.iter().enumerate() {
        let step = format!("[{}/{}] {model}", i + 1, plan.models.len());
        rows.push(measure(model, plan, &server, &probe, &step)?);
    }
    print!("{}", text_table(&machine, plan, &rows));
    if let Some(out) = out {
        for (name, contents) in
            [("showdown.md", markdown(&machine, plan, &rows)), ("showdown.svg", svg(&machine, plan, &rows))]
        {
            let path = out.join(name);
            fs::write(&path, contents).map_err(|err| {
                io::Error::new(err.kind(), format!("cannot write {}: {err}", path.display()))
            })?;
            eprintln!("showdown: wrote {}", path.display());
        }
    }
    Ok(())
}

/// Starts `model`'s server, runs both phases against it, and stops it.
fn measure(model: Model, plan: &Plan, server: &Path, probe: &Path, step: &str) -> io::Result<Row> {
    let workers = plan.workers.to_string();
    let mut command = Command::new(server);
    command.args(["--model", model.name(), "--workers", &workers]);
    let (mut server, addr) = start_server(command)
        .map_err(|err| io::Error::new(err.kind(), format!("{model}: cannot start fib_server: {err}")))?;
    let pid = server.child.id();
    eprintln!("showdown: {step}: listening on {addr} (pid {pid})");

    let alone = run_probe(probe, addr, plan.duration, 0, || {})
        .map_err(|err| io::Error::new(err.kind(), format!("{model}, alone: {err}")))?;
    eprintln!("showdown: {step}: alone: {}", describe(&alone));

    let mut threads = 0;
    let loaded = run_probe(probe, addr, plan.duration, plan.heavy, || {
        if let Ok(now) = footprint(pid) {
            threads = threads.max(now.threads);
        }
    })
    .map_err(|err| io::Error::new(err.kind(), format!("{model}, under load: {err}")))?;
    eprintln!("showdown: {step}: beside {} heavy connections: {}", plan.heavy, describe(&loaded));

    let end = footprint(pid)
        .map_err(|err| io::Error::new(err.kind(), format!("{model}: cannot read its /proc status: {err}")))?;
    server.stop();
    let threads = threads.max(end.threads);
    let plural = if threads == 1 { "" } else { "s" };
    eprintln!("showdown: {step}: peak RSS {} MiB, {threads} thread{plural}; stopped", mib(end.peak_rss_kib));
    Ok(Row { model, alone, loaded, peak_rss_kib: end.peak_rss_kib, threads })
}

/// A phase's result in a few words, for a progress line.
fn describe(probe: &Probe) -> String {
    let errors =
        if probe.errors > 0 { format!(", {} connections failed", probe.errors) } else { String::new() };
    format!(
        "{} cheap req/s, p50 {}, p99 {}, {:.1} heavy req/s{errors}",
        grouped(probe.rps),
        latency(probe.p50_us),
        latency(probe.p99_us),
        probe.heavy_rps
    )
}

/// Builds `fib_server` and `fib_probe` with this program's profile when it
/// was started by `cargo run` (which sets `CARGO`), so that
/// `cargo run --release --example showdown` works on a fresh clone: cargo
/// builds only the example it runs. A no-op when they are up to date.
fn build_siblings() -> io::Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else { return Ok(()) };
    let me = std::env::current_exe()?;
    let release = me.components().any(|part| part.as_os_str() == "release");
    let mut command = Command::new(cargo);
    command.args([
        "build",
        "--quiet",
        "-p",
        "green-examples",
        "--example",
        "fib_server",
        "--example",
        "fib_probe",
    ]);
    if release {
        command.arg("--release");
    }
    if let Some(manifest) = std::env::var_os("CARGO_MANIFEST_DIR") {
        command.arg("--manifest-path").arg(Path::new(&manifest).join("Cargo.toml"));
    }
    eprintln!(
        "showdown: building fib_server and fib_probe (cargo build{})",
        if release { " --release" } else { "" }
    );
    let status = command.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("building fib_server and fib_probe failed ({status})")))
    }
}

/// The path of the example `name` next to this program.
fn sibling(name: &str) -> io::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{name} is not next to showdown (looked for {}); build every example with \
                 `cargo build --release -p green-examples --examples`",
                path.display()
            ),
        ))
    }
}

/// A process this program started, stopped when dropped: asked with
/// `SIGTERM`, then killed if it has not ended within [`STOP_GRACE`].
#[derive(Debug)]
struct Guard {
    /// The process.
    child: Child,
}

impl Guard {
    /// Starts `command` with a guard on it, set to die with this program.
    fn spawn(mut command: Command) -> io::Result<Guard> {
        die_with_showdown(&mut command);
        Ok(Guard { child: command.spawn()? })
    }

    /// Stops the process and reaps it; harmless if it has ended.
    fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if terminate(&self.child).is_ok() {
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `SIGTERM` to `child`.
fn terminate(child: &Child) -> io::Result<()> {
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    // SAFETY: `kill` only sends a signal, touching no memory here; `pid` is an unreaped child (the caller's
    // `try_wait` found it running, and only this process reaps it), so the id is still that child's.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    if sent == -1 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Has the process that `command` starts die with this one, so that no
/// server or probe outlives a `showdown` that is killed.
fn die_with_showdown(command: &mut Command) {
    let showdown = std::process::id();
    // `prctl` takes its arguments as unsigned longs; SIGKILL is 9.
    let signal = libc::SIGKILL as libc::c_ulong;
    let hook = move || {
        // SAFETY: `PR_SET_PDEATHSIG` reads only its integer argument, a valid signal number, and touches no
        // memory of this process.
        let set = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) };
        if set == -1 {
            return Err(io::Error::last_os_error());
        }
        // Had `showdown` died before `prctl`, the signal would never come.
        if std::os::unix::process::parent_id() != showdown {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    };
    // SAFETY: `hook` runs in the child between `fork` and `exec`, where only async-signal-safe work is
    // allowed: it calls `prctl` and `getppid` and makes its errors from error numbers, so it neither
    // allocates nor takes a lock.
    unsafe { command.pre_exec(hook) };
}

/// Starts a server and waits (at most [`START_LIMIT`]) for its
/// `listening on <addr>` line.
fn start_server(mut command: Command) -> io::Result<(Guard, SocketAddr)> {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut server = Guard::spawn(command)?;
    let stdout = server.child.stdout.take().ok_or_else(|| io::Error::other("stdout is not piped"))?;
    let (first_line, first) = mpsc::channel();
    thread::Builder::new().name("server-stdout".into()).spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = first_line.send(lines.next());
        // The rest is read and dropped, so that the server never writes
        // into a closed pipe.
        for _ in lines.map_while(Result::ok) {}
    })?;
    let line = match first.recv_timeout(START_LIMIT) {
        Ok(Some(Ok(line))) => line,
        Ok(Some(Err(err))) => return Err(err),
        Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            let status = server.child.wait()?;
            return Err(io::Error::other(format!("it exited ({status}) before it listened")));
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("no line within {START_LIMIT:?}")));
        }
    };
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok())
        .ok_or_else(|| io::Error::other(format!("its first line is not 'listening on ADDR': {line:?}")))?;
    Ok((server, addr))
}

/// Runs `fib_probe` against `addr` for `duration`, with `heavy` heavy
/// connections, calling `sample` every [`SAMPLE_EVERY`] while it runs.
fn run_probe(
    binary: &Path,
    addr: SocketAddr,
    duration: Duration,
    heavy: usize,
    mut sample: impl FnMut(),
) -> io::Result<Probe> {
    let mut command = Command::new(binary);
    command
        .arg("--addr")
        .arg(addr.to_string())
        .arg("--duration")
        .arg(duration.as_secs_f64().to_string())
        .args(["--probes", &PROBES.to_string(), "--heavy", &heavy.to_string()])
        .args(["--heavy-n", &HEAVY_N.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut probe = Guard::spawn(command)?;
    let stdout = collect(probe.child.stdout.take())?;
    let stderr = collect(probe.child.stderr.take())?;
    let deadline = Instant::now() + duration + PROBE_GRACE;
    let status: ExitStatus = loop {
        if let Some(status) = probe.child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "fib_probe did not finish"));
        }
        sample();
        thread::sleep(SAMPLE_EVERY);
    };
    let (stdout, stderr) = (finished(stdout)?, finished(stderr)?);
    if !status.success() {
        return Err(io::Error::other(format!("fib_probe failed ({status}): {}", stderr.trim())));
    }
    if !stderr.is_empty() {
        eprint!("{stderr}");
    }
    let line = stdout
        .lines()
        .find(|line| line.starts_with("probe "))
        .ok_or_else(|| io::Error::other(format!("fib_probe printed no result line: {stdout:?}")))?;
    parse_probe(line)
}

/// Reads a child's pipe to its end, on a thread.
fn collect(pipe: Option<impl Read + Send + 'static>) -> io::Result<thread::JoinHandle<io::Result<String>>> {
    let mut pipe = pipe.ok_or_else(|| io::Error::other("the pipe is not set up"))?;
    thread::Builder::new().name("probe-output".into()).spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text)?;
        Ok(text)
    })
}

/// What a [`collect`] thread read.
fn finished(reader: thread::JoinHandle<io::Result<String>>) -> io::Result<String> {
    reader.join().map_err(|_| io::Error::other("a pipe reader panicked"))?
}

/// Reads `fib_probe`'s result line (`probe rps=... p50_us=... ...`).
fn parse_probe(line: &str) -> io::Result<Probe> {
    let mut probe = Probe::default();
    let mut found = 0;
    for field in line.split_whitespace().skip(1) {
        let Some((key, value)) = field.split_once('=') else { continue };
        let bad = || io::Error::other(format!("fib_probe's {key} is not a number: {line:?}"));
        match key {
            "rps" => probe.rps = value.parse().map_err(|_| bad())?,
            "p50_us" => probe.p50_us = value.parse().map_err(|_| bad())?,
            "p99_us" => probe.p99_us = value.parse().map_err(|_| bad())?,
            "heavy_rps" => probe.heavy_rps = value.parse().map_err(|_| bad())?,
            "errors" => probe.errors = value.parse().map_err(|_| bad())?,
            _ => continue,
        }
        found += 1;
    }
    if found < 5 {
        return Err(io::Error::other(format!("fib_probe's result line lacks fields: {line:?}")));
    }
    Ok(probe)
}

/// A server's use of the machine, summed over its processes.
#[derive(Debug, Clone, Copy)]
struct Footprint {
    /// Peak resident memory (`VmHWM`), in KiB.
    peak_rss_kib: u64,
    /// Threads (`Threads:`).
    threads: usize,
}

/// The footprint of process `pid` and its children.
///
/// # Errors
///
/// `pid`'s own status cannot be read (it has ended). A child that ends
/// while it is read is left out.
fn footprint(pid: u32) -> io::Result<Footprint> {
    let mut total = status_of(pid)?;
    for child in children_of(pid) {
        if let Ok(footprint) = status_of(child) {
            total.peak_rss_kib += footprint.peak_rss_kib;
            total.threads += footprint.threads;
        }
    }
    Ok(total)
}

/// `VmHWM` and `Threads` from `/proc/<pid>/status`.
fn status_of(pid: u32) -> io::Result<Footprint> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> io::Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no {name} in /proc/{pid}/status")))
    };
    let threads = usize::try_from(field("Threads:")?).map_err(io::Error::other)?;
    Ok(Footprint { peak_rss_kib: field("VmHWM:")?, threads })
}

/// The child processes of `pid`: from `/proc/<pid>/task/<pid>/children`
/// where the kernel has it, else by reading every process's `PPid`.
fn children_of(pid: u32) -> Vec<u32> {
    if let Ok(list) = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        return list.split_whitespace().filter_map(|child| child.parse().ok()).collect();
    }
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&candidate| {
            let Ok(status) = fs::read_to_string(format!("/proc/{candidate}/status")) else { return false };
            status
                .lines()
                .find_map(|line| line.strip_prefix("PPid:"))
                .is_some_and(|parent| parent.trim().parse() == Ok(pid))
        })
        .collect()
}

impl Machine {
    /// The machine this runs on; what cannot be read is called unknown.
    fn here() -> Machine {
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, name)| name.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let read = |path: &str| fs::read_to_string(path).map(|text| text.trim().to_owned());
        let kernel = match (read("/proc/sys/kernel/ostype"), read("/proc/sys/kernel/osrelease")) {
            (Ok(name), Ok(release)) => format!("{name} {release}"),
            _ => "unknown kernel".to_owned(),
        };
        Machine {
            cpu,
            cores: thread::available_parallelism().map_or(1, usize::from),
            kernel,
            date: utc_now(),
        }
    }

    /// The machine and date in one line.
    fn line(&self) -> String {
        format!("{}, {} cores, {}, {}", self.cpu, self.cores, self.kernel, self.date)
    }
}

/// The current time in UTC, `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = green_examples::http::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", of_day / 3600, of_day % 3600 / 60)
}

/// `value` rounded, with a comma between thousands: `12,345`.
fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A latency in microseconds, in the unit that reads best.
fn latency(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// KiB in MiB, one decimal.
fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// What the two phases were, in one sentence.
fn workload(plan: &Plan) -> String {
    format!(
        "cheap = {PROBES} connections asking fib(1), one request in flight each; under load = the same \
         beside {} connections asking fib({HEAVY_N}) nonstop; {} s per phase; servers with {} workers \
         where they use several",
        plan.heavy,
        plan.duration.as_secs_f64(),
        plan.workers
    )
}

/// The table's cells for one row, in column order.
fn cells(row: &Row) -> [String; 7] {
    let warn = |probe: &Probe| if probe.errors > 0 { " (!)" } else { "" };
    [
        row.model.name().to_owned(),
        format!("{}{}", grouped(row.alone.rps), warn(&row.alone)),
        format!("{}{}", grouped(row.loaded.rps), warn(&row.loaded)),
        latency(row.loaded.p99_us),
        format!("{:.1}", row.loaded.heavy_rps),
        mib(row.peak_rss_kib),
        row.threads.to_string(),
    ]
}

/// The table for the terminal.
fn text_table(machine: &Machine, plan: &Plan, rows: &[Row]) -> String {
    let header =
        ["model", "alone req/s", "loaded req/s", "loaded p99", "heavy req/s", "peak RSS MiB", "threads"];
    let body: Vec<[String; 7]> = rows.iter().map(cells).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            body.iter()
                .map(|cells| cells[column].chars().count())
                .chain([header[column].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        let mut line = String::new();
        for (column, cell) in cells.iter().enumerate() {
            let pad = widths[column] - cell.chars().count();
            if column == 0 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad + 2));
                line.push_str(cell);
            }
        }
        line.push('\n');
        line
    };
    let mut table = format!("showdown on {}\n{}\n\n", machine.line(), workload(plan));
    table.push_str(&line(&header));
    for cells in &body {
        table.push_str(&line(&cells.each_ref().map(String::as_str)));
    }
    if rows.iter().any(|row| row.alone.errors + row.loaded.errors > 0) {
        table.push_str("(!) some connections failed in that phase; see the progress lines on stderr\n");
    }
    table
}

/// The table as a Markdown document.
fn markdown(machine: &Machine, plan: &Plan, rows: &[Row]) -> String {
    let mut md = String::from("# Showdown of concurrency models\n\n");
    let _ = writeln!(md, "Measured on {}.\n", machine.line());
    let _ = writeln!(md, "Workload: {}.\n", workload(plan));
    md.push_str(
        "| model | how it serves | cheap req/s alone | cheap req/s under load | cheap p99 under load \
         | heavy req/s under load | peak RSS (MiB) | threads |\n|---|---|--:|--:|--:|--:|--:|--:|\n",
    );
    for row in rows {
        let [name, alone, loaded, p99, heavy, rss, threads] = cells(row);
        let _ = writeln!(
            md,
            "| `{name}` | {} | {alone} | {loaded} | {p99} | {heavy} | {rss} | {threads} |",
            row.model.summary()
        );
    }
    if rows.iter().any(|row| row.alone.errors + row.loaded.errors > 0) {
        md.push_str("\n(!) some connections failed in that phase.\n");
    }
    md.push_str(
        "\nPeak RSS is `VmHWM` from `/proc/<pid>/status` at the end of the loaded phase, and threads the \
         most `Threads:` seen during it; for `processes` both are summed over the parent and its workers.\n",
    );
    md
}

/// Escapes text for SVG.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least
/// `value`.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|&top| top >= value)
        .unwrap_or(10.0 * power)
}

/// A number for an axis: `40k`, `1.5k`, `800`.
fn compact(value: f64) -> String {
    if value >= 1000.0 {
        let thousands = value / 1000.0;
        if thousands.fract() == 0.0 { format!("{thousands:.0}k") } else { format!("{thousands:.1}k") }
    } else {
        format!("{value:.0}")
    }
}

/// A latency for an axis tick: `100 µs`, `1 ms`, `10 s`.
fn latency_tick(us: f64) -> String {
    let (value, unit) = match us {
        ..1e3 => (us, "µs"),
        ..1e6 => (us / 1e3, "ms"),
        _ => (us / 1e6, "s"),
    };
    format!("{value:.0} {unit}")
}

/// The horizontal axis of a chart panel.
#[derive(Debug, Clone, Copy)]
enum Axis {
    /// Requests per second, from 0 to `max`, ticks every fifth.
    Rate {
        /// The value at the right end.
        max: f64,
    },
    /// Microseconds on a log scale, from `low` over `decades` powers of
    /// ten, a tick at each.
    Latency {
        /// The value at the left end, a power of ten.
        low: f64,
        /// Powers of ten from end to end.
        decades: f64,
    },
}

impl Axis {
    /// An axis for request rates up to the largest of `values`.
    fn rate(values: impl Iterator<Item = f64>) -> Axis {
        Axis::Rate { max: nice_ceiling(values.fold(0.0, f64::max)) }
    }

    /// A log axis from the power of ten at or below the smallest of
    /// `values` (0, for no answer, left out) to the one at or above the
    /// largest.
    fn latency(values: impl Iterator<Item = f64>) -> Axis {
        let (least, most) = values
            .filter(|&us| us > 0.0)
            .fold((f64::INFINITY, 0.0f64), |(least, most), us| (least.min(us), most.max(us)));
        let low = if least.is_finite() { 10f64.powf(least.log10().floor()).max(1.0) } else { 1.0 };
        let high = if most > 0.0 { 10f64.powf(most.log10().ceil()) } else { 10.0 };
        Axis::Latency { low, decades: (high / low).log10().round().max(1.0) }
    }

    /// Where `value` falls, from 0 (left end) to 1 (right end).
    fn fraction(self, value: f64) -> f64 {
        let fraction = match self {
            Axis::Rate { max } => value / max,
            Axis::Latency { low, decades } => (value.max(low) / low).log10() / decades,
        };
        fraction.clamp(0.0, 1.0)
    }

    /// The ticks: each value with its label.
    fn ticks(self) -> Vec<(f64, String)> {
        match self {
            Axis::Rate { max } => {
                (0..=5).map(|i| max * f64::from(i) / 5.0).map(|v| (v, compact(v))).collect()
            }
            Axis::Latency { low, decades } => {
                (0..=decades as i32).map(|i| low * 10f64.powi(i)).map(|us| (us, latency_tick(us))).collect()
            }
        }
    }

    /// A value's label at the end of its bar.
    fn label(self, value: f64) -> String {
        match self {
            Axis::Rate { .. } => grouped(value),
            Axis::Latency { .. } if value <= 0.0 => "no answer".to_owned(),
            Axis::Latency { .. } => latency(value as u64),
        }
    }
}

/// One kind of bar in a chart panel: a value for each model.
#[derive(Debug)]
struct Series {
    /// Its name in the legend.
    name: &'static str,
    /// Its fill colour.
    color: &'static str,
    /// One value per row of the table, in the table's order.
    values: Vec<f64>,
}

/// The chart's geometry, in SVG user units.
mod layout {
    /// The width of the whole chart.
    pub const WIDTH: f64 = 960.0;
    /// The left edge of the plot; model names are right-aligned before it.
    pub const LEFT: f64 = 150.0;
    /// The width of the plot, leaving room for the value labels after it.
    pub const PLOT: f64 = 680.0;
    /// The height of a bar.
    pub const BAR: f64 = 13.0;
    /// The distance from one bar of a model to the next.
    pub const BAR_STEP: f64 = 14.0;
    /// The space between two models' bars.
    pub const GROUP_GAP: f64 = 9.0;
}

/// Draws one panel of horizontal bars at `y`, a group of one bar per
/// series for each row, and returns the `y` below it.
fn panel(
    svg: &mut String,
    y: f64,
    title: &str,
    axis_label: &str,
    rows: &[Row],
    series: &[Series],
    axis: Axis,
) -> f64 {
    use layout::{BAR, BAR_STEP, GROUP_GAP, LEFT, PLOT};
    let _ = writeln!(svg, r#"<text x="20" y="{y}" font-size="15" font-weight="bold">{}</text>"#, xml(title));
    // The legend, right-aligned with the plot.
    for (i, entry) in series.iter().enumerate() {
        let x = LEFT + PLOT - 110.0 * (series.len() - i) as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{}" width="14" height="14" fill="{}"/>"#,
            y - 12.0,
            entry.color
        );
        let _ = writeln!(svg, r#"<text x="{}" y="{y}" font-size="12">{}</text>"#, x + 20.0, xml(entry.name));
    }
    let group = series.len() as f64 * BAR_STEP + GROUP_GAP;
    let top = y + 14.0;
    let bottom = top + rows.len() as f64 * group;
    let x_of = |value: f64| LEFT + PLOT * axis.fraction(value);
    for (value, label) in axis.ticks() {
        let x = x_of(value);
        let _ = writeln!(svg, r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/>"##);
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            bottom + 15.0,
            xml(&label)
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let group_top = top + i as f64 * group + GROUP_GAP / 2.0;
        let middle = group_top + series.len() as f64 * BAR_STEP / 2.0;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" font-size="13" text-anchor="end">{}</text>"#,
            LEFT - 10.0,
            middle + 4.5,
            row.model
        );
        for (j, series) in series.iter().enumerate() {
            let value = series.values.get(i).copied().unwrap_or(0.0);
            let bar_y = group_top + j as f64 * BAR_STEP;
            let width = x_of(value) - LEFT;
            let _ = writeln!(
                svg,
                r#"<rect x="{LEFT}" y="{bar_y:.1}" width="{width:.1}" height="{BAR}" fill="{}"/>"#,
                series.color
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
                LEFT + width + 5.0,
                bar_y + 10.5,
                xml(&axis.label(value))
            );
        }
    }
    let _ = writeln!(svg, r##"<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" stroke="#333"/>"##);
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#333"/>"##,
        LEFT + PLOT
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
        LEFT + PLOT / 2.0,
        bottom + 32.0,
        xml(axis_label)
    );
    bottom + 40.0
}

/// A bar chart of the table: cheap requests per second and the p99
/// latency of a cheap request, each alone and under load; rates on a
/// linear axis, latencies on a logarithmic one.
fn svg(machine: &Machine, plan: &Plan, rows: &[Row]) -> String {
    const ALONE: &str = "#9ecae1";
    const LOADED: &str = "#3182bd";
    const ALONE_P99: &str = "#fdae6b";
    const LOADED_P99: &str = "#e6550d";
    let mut svg = String::new();
    let title = "Showdown of concurrency models: fib_server";
    let _ = writeln!(svg, r#"<text x="20" y="32" font-size="20" font-weight="bold">{title}</text>"#);
    let _ =
        writeln!(svg, r##"<text x="20" y="52" font-size="12" fill="#444">{}</text>"##, xml(&machine.line()));
    // The workload in two lines, split after its first clause, to fit.
    let workload = workload(plan);
    let (first, rest) = workload.split_once("; ").unwrap_or((workload.as_str(), ""));
    for (line, y) in [(first, 68), (rest, 84)] {
        let _ = writeln!(svg, r##"<text x="20" y="{y}" font-size="12" fill="#444">{}</text>"##, xml(line));
    }

    let rates = [
        Series { name: "alone", color: ALONE, values: rows.iter().map(|row| row.alone.rps).collect() },
        Series { name: "under load", color: LOADED, values: rows.iter().map(|row| row.loaded.rps).collect() },
    ];
    let axis = Axis::rate(rates.iter().flat_map(|series| series.values.iter().copied()));
    let title = "Cheap requests per second (higher is better)";
    let axis_label = format!("requests per second for fib(1) over {PROBES} connections");
    let y = panel(&mut svg, 118.0, title, &axis_label, rows, &rates, axis);

    let p99 = |probe: &Probe| probe.p99_us as f64;
    let latencies = [
        Series { name: "alone", color: ALONE_P99, values: rows.iter().map(|row| p99(&row.alone)).collect() },
        Series {
            name: "under load",
            color: LOADED_P99,
            values: rows.iter().map(|row| p99(&row.loaded)).collect(),
        },
    ];
    let axis = Axis::latency(latencies.iter().flat_map(|series| series.values.iter().copied()));
    let title = "p99 latency of a cheap request (lower is better; log scale)";
    let axis_label = "99th percentile of the time from sending fib(1) to its answer";
    let bottom = panel(&mut svg, y + 36.0, title, axis_label, rows, &latencies, axis);

    let (width, height) = (layout::WIDTH, bottom + 8.0);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"Helvetica, Arial, sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{svg}</svg>\n"
    )
}
