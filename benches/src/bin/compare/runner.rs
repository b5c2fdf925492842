//! Running the benchmarks: finding the bench targets with `cargo
//! metadata`, building them, then one `cargo bench` per target with
//! criterion's options, showing one progress line per benchmark instead of
//! criterion's own output.
//!
//! The steps, in order:
//!
//! 1. `cargo metadata` names the bench targets of `green-benches`, the
//!    target directory (criterion writes under its `criterion/`) and the
//!    workspace root (whose manifest has the bench profile).
//! 2. `cargo bench --benches --no-run` builds them all, with cargo's
//!    output shown: a build can take minutes, and its errors are the user's
//!    to read.
//! 3. `cargo bench --bench NAME -- --list [FILTER]` counts the benchmarks
//!    each target will run, for the `n/total` of the progress lines.
//! 4. `cargo bench --bench NAME -- --noplot <settings> [FILTER]` runs them.
//!    criterion says `Benchmarking <group>/<variant>` on stderr as each
//!    starts; that becomes a progress line. The rest of its output is kept
//!    only as the last lines, shown if the target fails.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::json::{self, Value};

/// The package whose bench targets are run.
const PACKAGE: &str = "green-benches";

/// The manifest of that package, so that `compare` works from any
/// directory.
const MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");

/// How many of a failed target's last output lines are shown.
const TAIL: usize = 25;

/// What `cargo metadata` says about the workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The workspace's root folder; its `Cargo.toml` has the profiles.
    pub root: PathBuf,
    /// Where cargo builds, and criterion writes `criterion/`.
    pub target_dir: PathBuf,
    /// The bench targets of `green-benches`, in manifest order.
    pub benches: Vec<String>,
}

/// How long criterion measures each benchmark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// `--warm-up-time`, in seconds.
    pub warm_up: f64,
    /// `--measurement-time`, in seconds.
    pub measurement: f64,
    /// `--sample-size`, if not criterion's 100. The OS-thread variants set
    /// 10 for themselves in the bench files whatever this says.
    pub sample_size: Option<usize>,
    /// `--nresamples`, if not criterion's 100,000: the bootstrap behind its
    /// confidence intervals, which the median's point estimate read here
    /// does not use.
    pub resamples: Option<usize>,
}

impl Settings {
    /// The default run: 1 s of warm-up and 3 s of measurement per
    /// benchmark, criterion's 100 samples.
    pub const FULL: Settings =
        Settings { warm_up: 1.0, measurement: 3.0, sample_size: None, resamples: None };

    /// `--quick`: about two minutes for ~90 benchmarks on two cores. Ten
    /// samples (criterion's least) make a slow variant cost ten iterations
    /// instead of a hundred; the few resamples make the analysis instant.
    pub const QUICK: Settings =
        Settings { warm_up: 0.2, measurement: 0.4, sample_size: Some(10), resamples: Some(1000) };

    /// The options for criterion.
    pub fn criterion_args(&self) -> Vec<String> {
        let mut args = vec![
            "--noplot".to_owned(),
            "--warm-up-time".to_owned(),
            self.warm_up.to_string(),
            "--measurement-time".to_owned(),
            self.measurement.to_string(),
        ];
        if let Some(samples) = self.sample_size {
            args.extend(["--sample-size".to_owned(), samples.to_string()]);
        }
        if let Some(resamples) = self.resamples {
            args.extend(["--nresamples".to_owned(), resamples.to_string()]);
        }
        args
    }

    /// In words: `warm-up 1 s, measurement 3 s, 100 samples (10 for the
    /// OS-thread variants)`.
    pub fn describe(&self) -> String {
        let samples = match self.sample_size.unwrap_or(100) {
            10 => "10 samples".to_owned(),
            samples => format!("{samples} samples (10 for the OS-thread variants)"),
        };
        format!("warm-up {} s, measurement {} s, {samples}", self.warm_up, self.measurement)
    }
}

/// What running the benchmarks came to.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The benchmarks that started, as `group/variant`, in order.
    pub started: Vec<String>,
    /// One line per bench target that failed.
    pub failures: Vec<String>,
}

/// The cargo to run: the one that runs this program, if it does.
fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")));
    command.arg("--quiet");
    command
}

/// Reads `cargo metadata` for the workspace of `green-benches`.
pub fn workspace() -> io::Result<Workspace> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path", MANIFEST])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| io::Error::new(err.kind(), format!("cannot run cargo metadata: {err}")))?;
    if !output.status.success() {
        return Err(io::Error::other(format!("cargo metadata failed ({})", output.status)));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut workspace =
        parse_metadata(&text).map_err(|err| io::Error::other(format!("cargo metadata: {err}")))?;
    // Without the manifest, cargo's order will do.
    if let Ok(manifest) = fs::read_to_string(MANIFEST) {
        sort_as_declared(&mut workspace.benches, &manifest);
    }
    Ok(workspace)
}

/// The [`Workspace`] in `cargo metadata`'s output.
fn parse_metadata(text: &str) -> Result<Workspace, String> {
    let metadata = json::parse(text).map_err(|err| err.to_string())?;
    let path =
        |key: &str| metadata.get(key).and_then(Value::as_str).map(PathBuf::from).ok_or(format!("no {key}"));
    let package = metadata
        .get("packages")
        .and_then(Value::as_array)
        .and_then(|packages| {
            packages.iter().find(|package| package.get("name").and_then(Value::as_str) == Some(PACKAGE))
        })
        .ok_or(format!("no package {PACKAGE}"))?;
    let is_bench = |target: &&Value| {
        target
            .get("kind")
            .and_then(Value::as_array)
            .is_some_and(|kinds| kinds.iter().any(|kind| kind.as_str() == Some("bench")))
    };
    let benches: Vec<String> = package
        .get("targets")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter(is_bench)
        .filter_map(|target| target.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    if benches.is_empty() {
        return Err(format!("{PACKAGE} has no bench targets"));
    }
    Ok(Workspace { root: path("workspace_root")?, target_dir: path("target_directory")?, benches })
}

/// Sorts `benches` into the order `manifest` (the text of the package's
/// Cargo.toml) declares them in: `cargo metadata` lists them by name, and
/// the bench files come in an order that reads from the scheduler up.
/// A name the manifest does not spell `name = "..."` goes last.
fn sort_as_declared(benches: &mut [String], manifest: &str) {
    benches.sort_by_key(|name| manifest.find(&format!("name = \"{name}\"")).unwrap_or(usize::MAX));
}

/// Builds every bench target, cargo's output going to stderr.
pub fn build() -> io::Result<()> {
    eprintln!("compare: building the benchmarks (cargo bench --no-run)");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
        .args(["bench", "-p", PACKAGE, "--manifest-path", MANIFEST, "--benches", "--no-run"])
        .stdout(Stdio::from(io::stderr()))
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("building the benchmarks failed ({status})")))
    }
}

/// `cargo bench --bench NAME` with the arguments for criterion after `--`.
fn bench_command(bench: &str, criterion_args: &[String]) -> Command {
    let mut command = cargo();
    command.args(["bench", "-p", PACKAGE, "--manifest-path", MANIFEST, "--bench", bench, "--"]);
    command.args(criterion_args);
    command
}

/// How many benchmarks of `bench` match `filter`, as criterion's `--list`
/// says. A failure (an invalid `--filter`, say) comes with the last lines
/// criterion printed: the run would fail the same way.
pub fn count(bench: &str, filter: Option<&str>) -> io::Result<usize> {
    let mut args = vec!["--list".to_owned()];
    args.extend(filter.map(str::to_owned));
    let output = bench_command(bench, &args).stdin(Stdio::null()).env("RUST_BACKTRACE", "0").output()?;
    if !output.status.success() {
        let why = why_it_failed(&String::from_utf8_lossy(&output.stderr));
        return Err(io::Error::other(format!(
            "listing the benchmarks of {bench} failed ({}): {why}",
            output.status
        )));
    }
    let listing = String::from_utf8_lossy(&output.stdout);
    Ok(listing.lines().filter(|line| line.ends_with(": benchmark")).count())
}

/// What a failed benchmark program said about why: its panic message if
/// it panicked (criterion panics on a bad filter), else its last lines.
fn why_it_failed(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    let message: Vec<&str> = match lines.iter().position(|line| line.contains("panicked at")) {
        Some(panic) => lines[panic + 1..]
            .iter()
            .copied()
            .take_while(|line| !line.starts_with("stack backtrace:") && !line.starts_with("note:"))
            .collect(),
        None => lines[lines.len().saturating_sub(3)..].to_vec(),
    };
    message.join(" ")
}

/// The progress lines on stderr: one per benchmark, rewritten in place on
/// a terminal.
#[derive(Debug)]
pub struct Progress {
    /// When the first benchmark started.
    start: Instant,
    /// Benchmarks started so far.
    started: usize,
    /// Benchmarks there will be, as criterion listed them.
    total: usize,
    /// Whether stderr is a terminal, where a line can be rewritten.
    terminal: bool,
}

impl Progress {
    /// Progress over `total` benchmarks.
    pub fn new(total: usize) -> Progress {
        Progress { start: Instant::now(), started: 0, total, terminal: io::stderr().is_terminal() }
    }

    /// Says that `id` of the target `bench` has started.
    fn begin(&mut self, bench: &str, id: &str) {
        self.started += 1;
        let count = format!("{}/{}", self.started, self.total);
        let line = format!("[{count}] {} {bench}: {id}", clock(self.start.elapsed()));
        let mut stderr = io::stderr().lock();
        // Clear the line first: the one before may have been longer.
        let _ = if self.terminal { write!(stderr, "\r\x1b[2K{line}") } else { writeln!(stderr, "{line}") };
        let _ = stderr.flush();
    }

    /// Ends the progress display and says how long it took.
    pub fn finish(&self) {
        let elapsed = clock(self.start.elapsed());
        if self.terminal {
            eprint!("\r\x1b[2K");
        }
        eprintln!("compare: {} benchmarks in {elapsed}", self.started);
    }
}

/// A duration as `m:ss`.
pub fn clock(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

/// Runs the bench target `bench` with `criterion_args`, reporting each
/// benchmark's start to `progress` and adding it to `outcome`.
pub fn run(bench: &str, criterion_args: &[String], progress: &mut Progress, outcome: &mut Outcome) {
    let mut command = bench_command(bench, criterion_args);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            outcome.failures.push(format!("{bench}: cannot run cargo bench: {err}"));
            return;
        }
    };
    let (lines, received) = mpsc::channel();
    let readers: Vec<_> = [child.stdout.take().map(box_reader), child.stderr.take().map(box_reader)]
        .into_iter()
        .flatten()
        .map(|pipe| {
            let lines = lines.clone();
            thread::spawn(move || forward_lines(pipe, &lines))
        })
        .collect();
    drop(lines);
    let mut tail = VecDeque::with_capacity(TAIL);
    let mut current = String::new();
    // Ends when both pipes are closed: the benchmark program has exited.
    for line in received {
        if let Some(id) = benchmark_started(&line)
            && id != current
        {
            current = id.to_owned();
            progress.begin(bench, id);
            outcome.started.push(current.clone());
        }
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    for reader in readers {
        let _ = reader.join();
    }
    match child.wait() {
        Ok(status) if status.success() => {}
        Ok(status) => {
            let last: Vec<String> = tail.into_iter().map(|line| format!("    {line}")).collect();
            eprintln!(
                "\ncompare: bench target {bench} failed ({status}); its last lines:\n{}",
                last.join("\n")
            );
            outcome.failures.push(format!("{bench}: cargo bench failed ({status})"));
        }
        Err(err) => outcome.failures.push(format!("{bench}: {err}")),
    }
}

fn box_reader(pipe: impl Read + Send + 'static) -> Box<dyn Read + Send> {
    Box::new(pipe)
}

/// Sends each line of `pipe` (invalid UTF-8 replaced) until it closes or
/// the receiver is gone.
fn forward_lines(pipe: Box<dyn Read + Send>, lines: &mpsc::Sender<String>) {
    let mut reader = BufReader::new(pipe);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer).trim_end().to_owned();
                if lines.send(line).is_err() {
                    return;
                }
            }
        }
    }
}

/// The benchmark a criterion line is about, if it is one of its
/// `Benchmarking <id>` or `Benchmarking <id>: <stage>` lines.
fn benchmark_started(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("Benchmarking ")?;
    let id = rest.split_once(": ").map_or(rest, |(id, _)| id).trim();
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criterion_lines_name_the_benchmark() {
        assert_eq!(benchmark_started("Benchmarking yield_many/green"), Some("yield_many/green"));
        assert_eq!(
            benchmark_started("Benchmarking yield_many/green: Warming up for 1.0000 s"),
            Some("yield_many/green")
        );
        assert_eq!(benchmark_started("yield_many/green        time:   [3.78 ms 4.38 ms 4.92 ms]"), None);
        assert_eq!(benchmark_started("Benchmarking "), None);
    }

    #[test]
    fn settings_become_criterion_options() {
        assert_eq!(
            Settings::FULL.criterion_args(),
            ["--noplot", "--warm-up-time", "1", "--measurement-time", "3"]
        );
        let quick = Settings::QUICK.criterion_args();
        assert!(quick.windows(2).any(|pair| pair == ["--sample-size", "10"]), "{quick:?}");
    }

    #[test]
    fn metadata_names_the_bench_targets() {
        let metadata = r#"{"packages":[
            {"name":"green","targets":[{"kind":["lib"],"name":"green"}]},
            {"name":"green-benches","targets":[
                {"kind":["lib"],"name":"green_benches"},
                {"kind":["bin"],"name":"compare"},
                {"kind":["bench"],"name":"scheduler"},
                {"kind":["bench"],"name":"sync"}]}],
            "target_directory":"/t","workspace_root":"/w"}"#;
        let workspace = parse_metadata(metadata).unwrap();
        assert_eq!(workspace.benches, ["scheduler", "sync"]);
        assert_eq!(workspace.target_dir, PathBuf::from("/t"));
        assert_eq!(workspace.root, PathBuf::from("/w"));
        assert!(parse_metadata(r#"{"packages":[]}"#).unwrap_err().contains("no package green-benches"));
    }

    #[test]
    fn benches_run_in_the_order_the_manifest_declares_them() {
        let mut benches = ["blocking", "net", "scheduler", "unknown"].map(str::to_owned);
        let manifest =
            "[[bench]]\nname = \"scheduler\"\n[[bench]]\nname = \"net\"\n[[bench]]\nname = \"blocking\"\n";
        sort_as_declared(&mut benches, manifest);
        assert_eq!(benches, ["scheduler", "net", "blocking", "unknown"]);
    }

    #[test]
    fn a_failure_is_told_by_its_panic_message() {
        let stderr = "\nthread 'main' (1) panicked at criterion/src/lib.rs:1003:21:\nUnable to parse '(' as a \
                      regular expression: unclosed group\nstack backtrace:\n  0: main\nnote: Some details\n\
                      error: bench failed\n";
        assert_eq!(why_it_failed(stderr), "Unable to parse '(' as a regular expression: unclosed group");
        assert_eq!(why_it_failed("a\nb\n\nc\nd\n"), "b c d");
    }

    #[test]
    fn clock_shows_minutes_and_seconds() {
        assert_eq!(clock(Duration::from_millis(65_900)), "1:05");
        assert_eq!(clock(Duration::ZERO), "0:00");
    }
}
