//! What this is: the one report of the benchmarks. `compare` runs every
//! bench target of green-benches with criterion, reads the medians
//! criterion wrote, and prints one table: a row per group, the median time
//! per element of `green`, `green_2w`, `tokio`, `tokio_mt` and `threads`,
//! and the ratios green/tokio, green_2w/tokio_mt and green/threads (below 1:
//! green is faster). Above the table it describes the machine and the
//! build. It measures nothing itself; criterion does.
//!
//! ```text
//! cargo run --release -p green-benches --bin compare -- [--quick] [--filter REGEX] [--out DIR]
//! ```
//!
//! The groups and variants are not listed here: they are whatever the
//! bench files define, as criterion reports them. A variant a group lacks
//! shows as `–`.
//!
//! | file | its one job |
//! |---|---|
//! | `args.rs` | the command line |
//! | `runner.rs` | finding, building and running the bench targets, with progress on stderr |
//! | `results.rs` | reading criterion's `estimates.json` and `benchmark.json` of this run |
//! | `json.rs` | the JSON reader those files and `cargo metadata` need |
//! | `table.rs` | rows, units, ratios and the table |
//! | `machine.rs` | CPU, cores, kernel, rustc, date and the bench profile |
//! | `svg.rs` | the ratio charts |
//! | `report.rs` | the report for the terminal and the files of `--out` |
//!
//! Exit status: 0 when every bench target ran, 1 when one failed or
//! nothing was measured (the table of what was is printed anyway), 2 for a
//! bad command line.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod args;
mod json;
mod machine;
mod report;
mod results;
mod runner;
mod svg;
mod table;

use std::io;
use std::process::ExitCode;
use std::time::SystemTime;

use args::{Options, Request};
use machine::Machine;
use report::Report;
use runner::{Outcome, Progress, Settings};

const USAGE: &str = "\
usage: compare [--quick] [--filter REGEX] [--out DIR]

Runs every criterion benchmark of green-benches and prints one table: for
each group, the median time per element of green, green_2w, tokio, tokio_mt
and threads, and the ratios green/tokio, green_2w/tokio_mt and
green/threads (below 1: green is faster). Progress goes to stderr, the
table to stdout.

  --quick         short measurements (warm-up 0.2 s, measurement 0.4 s,
                  10 samples): about two minutes after the build
                  (default: warm-up 1 s, measurement 3 s, 100 samples)
  --filter REGEX  run only the benchmarks whose group/variant matches
                  (criterion's filter, e.g. spawn or '^switch/')
  --out DIR       also write DIR/compare.md, DIR/ratios.svg and
                  DIR/threads.svg";

fn main() -> ExitCode {
    let options = match args::parse(std::env::args_os().skip(1)) {
        Ok(Request::Run(options)) => options,
        Ok(Request::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("compare: {problem}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("compare: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmarks `options` ask for and reports them.
fn run(options: &Options) -> io::Result<ExitCode> {
    let settings = if options.quick { Settings::QUICK } else { Settings::FULL };
    let workspace = runner::workspace()?;
    runner::build()?;

    let filter = options.filter.as_deref();
    let counts: Vec<usize> =
        workspace.benches.iter().map(|bench| runner::count(bench, filter)).collect::<io::Result<_>>()?;
    let total: usize = counts.iter().sum();
    if total == 0 {
        let filter = filter.unwrap_or_default();
        eprintln!("compare: no benchmark's group/variant matches --filter '{filter}'");
        return Ok(ExitCode::FAILURE);
    }
    let mut criterion_args = settings.criterion_args();
    criterion_args.extend(options.filter.clone());

    // Results written from here on are this run's.
    let start = SystemTime::now();
    let mut progress = Progress::new(total);
    let mut outcome = Outcome::default();
    for (bench, &count) in workspace.benches.iter().zip(&counts) {
        // A target none of whose benchmarks match the filter is skipped.
        if count > 0 {
            runner::run(bench, &criterion_args, &mut progress, &mut outcome);
        }
    }
    progress.finish();

    let criterion_dir = workspace.target_dir.join("criterion");
    let (measurements, problems) = results::collect(&criterion_dir, start);
    for problem in &problems {
        eprintln!("compare: {problem}");
    }
    if measurements.is_empty() {
        eprintln!("compare: criterion wrote no results in {} during this run", criterion_dir.display());
        return Ok(ExitCode::FAILURE);
    }
    let rows = table::rows(&measurements, &outcome.started);
    let machine = Machine::here(start, &workspace.root.join("Cargo.toml"));
    let report = Report { machine: &machine, settings, command: command_line(options), rows: &rows };
    print!("{}", report.text());
    if let Some(dir) = &options.out {
        report.write(dir)?;
        eprintln!("compare: wrote compare.md, ratios.svg and threads.svg in {}", dir.display());
    }
    if !outcome.failures.is_empty() {
        for failure in &outcome.failures {
            eprintln!("compare: {failure}");
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The command that makes this report, for `compare.md`.
fn command_line(options: &Options) -> String {
    let mut command = String::from("cargo run --release -p green-benches --bin compare --");
    if options.quick {
        command.push_str(" --quick");
    }
    if let Some(filter) = &options.filter {
        command.push_str(&format!(" --filter '{filter}'"));
    }
    if let Some(out) = &options.out {
        command.push_str(&format!(" --out {}", out.display()));
    }
    command
}
