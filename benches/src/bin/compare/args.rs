//! The command line: `--quick`, `--filter REGEX`, `--out DIR`, `--help`.
//!
//! Flags take their value as the next argument or after `=`
//! (`--out=DIR`). Anything else is refused with one line that says what was
//! wrong and what is accepted; `main` prints it and exits with status 2.

use std::ffi::OsString;
use std::path::PathBuf;

/// What the flags accepted, for error messages.
const ACCEPTED: &str = "accepted: --quick, --filter REGEX, --out DIR, --help";

/// What to run and where to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Short measurements: the whole run in about two minutes.
    pub quick: bool,
    /// Only the benchmarks whose `group/variant` matches this regular
    /// expression (criterion's own filter, passed through).
    pub filter: Option<String>,
    /// Where to write `compare.md` and the charts, if anywhere.
    pub out: Option<PathBuf>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Print the usage text.
    Help,
    /// Run the benchmarks and report.
    Run(Options),
}

/// Parses the arguments after the program's name. `--help` (or `-h`)
/// anywhere wins over everything else.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Request, String> {
    let mut texts = Vec::new();
    for arg in args {
        match arg.into_string() {
            Ok(text) => texts.push(text),
            Err(arg) => return Err(format!("argument {} is not UTF-8 ({ACCEPTED})", arg.to_string_lossy())),
        }
    }
    if texts.iter().any(|arg| arg == "--help" || arg == "-h") {
        return Ok(Request::Help);
    }
    let mut options = Options::default();
    let mut args = texts.into_iter();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(if arg.starts_with('-') {
                format!("unknown flag {arg} ({ACCEPTED})")
            } else {
                format!("unexpected argument '{arg}' ({ACCEPTED})")
            });
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (flag, None),
        };
        let mut value = || match inline.clone().or_else(|| args.next()) {
            Some(value) if !value.is_empty() && !value.starts_with("--") => Ok(value),
            _ => Err(format!("--{name} needs a value")),
        };
        match name {
            "quick" if inline.is_some() => return Err("--quick takes no value".to_owned()),
            "quick" => options.quick = true,
            "filter" => options.filter = Some(value()?),
            "out" => options.out = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown flag --{name} ({ACCEPTED})")),
        }
    }
    Ok(Request::Run(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Request, String> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn flags_in_both_spellings() {
        let expected = Options { quick: true, filter: Some("spawn".to_owned()), out: Some("/tmp/x".into()) };
        assert_eq!(
            parse_strs(&["--quick", "--filter", "spawn", "--out", "/tmp/x"]),
            Ok(Request::Run(expected.clone()))
        );
        assert_eq!(parse_strs(&["--filter=spawn", "--out=/tmp/x", "--quick"]), Ok(Request::Run(expected)));
        assert_eq!(parse_strs(&[]), Ok(Request::Run(Options::default())));
        assert_eq!(parse_strs(&["--out", "x", "--help"]), Ok(Request::Help));
        assert_eq!(parse_strs(&["--bogus", "-h"]), Ok(Request::Help));
    }

    #[test]
    fn bad_command_lines_get_one_line_each() {
        for (args, start) in [
            (&["--bogus"][..], "unknown flag --bogus ("),
            (&["--bogus=1"], "unknown flag --bogus ("),
            (&["-q"], "unknown flag -q ("),
            (&["quick"], "unexpected argument 'quick' ("),
            (&["--out"], "--out needs a value"),
            (&["--out="], "--out needs a value"),
            (&["--filter", "--quick"], "--filter needs a value"),
            (&["--quick=yes"], "--quick takes no value"),
        ] {
            let err = parse_strs(args).expect_err(start);
            assert!(err.starts_with(start), "{args:?}: {err}");
            assert!(!err.contains('\n'), "{args:?}: {err}");
        }
    }
}
