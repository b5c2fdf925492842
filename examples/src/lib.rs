//! Shared helpers for the examples: a small command-line flag parser.
//!
//! Every example takes flags of the form `--name value` or `--name=value`,
//! and `--help`, which prints the example's usage text and exits. There are
//! no boolean flags besides `--help` and no positional arguments; that is
//! all the examples need, and it keeps them free of external crates.
//!
//! ```
//! use green_examples::{Flags, Parsed};
//!
//! let args = ["--port", "8000", "--addr=0.0.0.0"].map(String::from);
//! let Parsed::Flags(mut flags) = Flags::parse("usage: demo", &["addr", "port"], args).unwrap() else {
//!     panic!("not --help");
//! };
//! assert_eq!(flags.value("port", 7000u16).unwrap(), 8000);
//! assert_eq!(flags.value("addr", String::from("127.0.0.1")).unwrap(), "0.0.0.0");
//! assert_eq!(flags.value("count", 5u32).unwrap(), 5); // not given: the default
//! ```

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

use std::collections::HashMap;
use std::fmt;
use std::process;
use std::str::FromStr;

/// The flags given on a command line, by name (without the leading `--`).
#[derive(Debug)]
pub struct Flags {
    /// The example's usage text, printed for `--help` and after errors.
    usage: &'static str,
    /// Each flag's value as typed; a flag given twice keeps the last value.
    values: HashMap<String, String>,
}

/// What a command line asked for.
#[derive(Debug)]
pub enum Parsed {
    /// `--help` (or `-h`) was among the arguments.
    Help,
    /// Flags to run with.
    Flags(Flags),
}

/// A command line the example cannot run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError {
    /// What was wrong, naming the flag.
    message: String,
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FlagError {}

impl FlagError {
    fn new(message: String) -> FlagError {
        FlagError { message }
    }
}

impl Flags {
    /// Parses the process's arguments, accepting the flags named in
    /// `known`.
    ///
    /// Prints `usage` and exits with status 0 on `--help`; prints the
    /// error and `usage` and exits with status 2 on a bad command line.
    pub fn from_env(usage: &'static str, known: &[&str]) -> Flags {
        match Flags::parse(usage, known, std::env::args().skip(1)) {
            Ok(Parsed::Flags(flags)) => flags,
            Ok(Parsed::Help) => {
                println!("{usage}");
                process::exit(0);
            }
            Err(err) => exit_with(usage, &err),
        }
    }

    /// Parses `args` (without the program name), accepting the flags named
    /// in `known`.
    ///
    /// # Errors
    ///
    /// An argument that is not a flag, a flag not in `known`, or a flag
    /// without a value.
    pub fn parse(
        usage: &'static str,
        known: &[&str],
        args: impl IntoIterator<Item = String>,
    ) -> Result<Parsed, FlagError> {
        let mut values = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Ok(Parsed::Help);
            }
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(FlagError::new(format!(
                    "unexpected argument '{arg}': flags look like --name value"
                )));
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = args.next().filter(|next| !next.starts_with("--"));
                    let value = value.ok_or_else(|| FlagError::new(format!("--{flag} needs a value")))?;
                    (flag.to_owned(), value)
                }
            };
            if !known.contains(&name.as_str()) {
                let known: Vec<String> = known.iter().map(|k| format!("--{k}")).collect();
                let accepted = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
                return Err(FlagError::new(format!("unknown flag --{name} (accepted: {accepted}, --help)")));
            }
            values.insert(name, value);
        }
        Ok(Parsed::Flags(Flags { usage, values }))
    }

    /// The value of `--name` parsed as a `T`, or `default` if the flag was
    /// not given.
    ///
    /// # Errors
    ///
    /// The value does not parse as a `T`.
    pub fn value<T>(&self, name: &str, default: T) -> Result<T, FlagError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.values.get(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|err| FlagError::new(format!("--{name} {text}: {err}"))),
        }
    }

    /// Like [`value`](Flags::value), but a bad value prints the error and
    /// the usage text and exits with status 2.
    pub fn get<T>(&self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.value(name, default).unwrap_or_else(|err| exit_with(self.usage, &err))
    }
}

/// Reports a bad command line the way every example does, and exits.
fn exit_with(usage: &str, err: &FlagError) -> ! {
    eprintln!("error: {err}\n\n{usage}");
    process::exit(2);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, FlagError> {
        Flags::parse("usage", &["port", "addr"], args.iter().map(|a| a.to_string()))
    }

    fn flags(args: &[&str]) -> Flags {
        match parse(args) {
            Ok(Parsed::Flags(flags)) => flags,
            other => panic!("expected flags, got {other:?}"),
        }
    }

    #[test]
    fn both_spellings_and_defaults() {
        let flags = flags(&["--port", "8000", "--addr=::1"]);
        assert_eq!(flags.value("port", 7000u16), Ok(8000));
        assert_eq!(flags.value("addr", String::new()).as_deref(), Ok("::1"));
        let empty = self::flags(&[]);
        assert_eq!(empty.value("port", 7000u16), Ok(7000));
    }

    #[test]
    fn help_wins_wherever_it_is() {
        assert!(matches!(parse(&["--port", "1", "--help"]), Ok(Parsed::Help)));
        assert!(matches!(parse(&["-h"]), Ok(Parsed::Help)));
    }

    #[test]
    fn bad_command_lines_name_the_flag() {
        let unknown = parse(&["--prot", "1"]).unwrap_err().to_string();
        assert!(unknown.contains("--prot") && unknown.contains("--port"), "{unknown}");
        let missing = parse(&["--port"]).unwrap_err().to_string();
        assert!(missing.contains("--port needs a value"), "{missing}");
        let swallowed = parse(&["--port", "--addr", "x"]).unwrap_err().to_string();
        assert!(swallowed.contains("--port needs a value"), "{swallowed}");
        assert!(parse(&["7000"]).is_err());
        let bad = flags(&["--port", "seventy"]).value("port", 0u16).unwrap_err().to_string();
        assert!(bad.starts_with("--port seventy:"), "{bad}");
    }
}
