//! `compare` as a whole program, on command lines it must refuse before
//! it builds or runs anything: one line on stderr, nothing on stdout, exit
//! status 2.

use std::io;
use std::process::{Command, Output};

/// Runs `compare` with `args`.
fn compare(args: &[&str]) -> io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_compare")).args(args).output()
}

/// Checks that `args` are refused with one line that starts with `start`.
fn refused(args: &[&str], start: &str) -> io::Result<()> {
    let output = compare(args)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line, got {stderr:?}");
    assert!(stderr.starts_with(start), "{args:?}: {stderr:?}");
    assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
    Ok(())
}

#[test]
fn an_unknown_flag_exits_2_with_one_line() -> io::Result<()> {
    refused(&["--bogus"], "compare: unknown flag --bogus (accepted: --quick")
}

#[test]
fn a_flag_without_its_value_exits_2_with_one_line() -> io::Result<()> {
    refused(&["--quick", "--out"], "compare: --out needs a value")?;
    refused(&["stray"], "compare: unexpected argument 'stray'")
}

#[test]
fn help_prints_usage_and_succeeds() -> io::Result<()> {
    let output = compare(&["--help"])?;
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("usage: compare"));
    Ok(())
}
