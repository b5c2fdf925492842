//! Shared helpers for the examples: a small command-line flag parser
//! (this file), the socket-free parts of the `chat` example ([`chat`]),
//! the request protocol and server models of `fib_server`, `fib_probe`
//! and `showdown` ([`fib`]), and the HTTP/1.1 parser and answers that both
//! runtimes of `http_hello` share ([`http`]).
//!
//! Every example takes flags of the form `--name value` or `--name=value`,
//! switches of the form `--name` (no value), and `--help` (or `-h`), which
//! prints the example's usage text to stdout and exits with status 0. There
//! are no positional arguments; that is all the examples need, and it keeps
//! them free of external crates.
//!
//! A command line the example cannot run with is reported the way a
//! well-kept command-line tool does it: one line on stderr that names the
//! flag and says what it accepts, then `see --help for usage`, and exit
//! status 2. Numbers are checked against a range stated in plain words
//! (`--port must be a whole number from 0 to 65535 (got '70000')`), never
//! with Rust's parse-error text. A value that is clamped into its range
//! instead is announced on stderr in one line.
//!
//! ```
//! use green_examples::Flag::{Switch, Value};
//! use green_examples::{Flags, Parsed};
//!
//! let args = ["--port", "8000", "--addr=0.0.0.0", "--quiet"].map(String::from);
//! let flags = [Value("addr"), Value("port"), Value("count"), Switch("quiet")];
//! let Parsed::Flags(flags) = Flags::parse("demo", &flags, args).unwrap() else {
//!     panic!("not --help");
//! };
//! assert_eq!(flags.number("port", 7000u16, 0..=65535).unwrap(), 8000);
//! assert_eq!(flags.value("addr", String::from("127.0.0.1"), "an address").unwrap(), "0.0.0.0");
//! assert_eq!(flags.number("count", 5u32, 1..=10).unwrap(), 5); // not given: the default
//! assert!(flags.switch("quiet"));
//! ```

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod chat;
pub mod fib;
pub mod http;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::process;
use std::str::FromStr;
use std::time::Duration;

/// A flag an example accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `--name value` or `--name=value`.
    Value(&'static str),
    /// `--name` alone: on when given, off when not.
    Switch(&'static str),
}

impl Flag {
    /// The flag's name, without the leading `--`.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Value(name) | Flag::Switch(name) => name,
        }
    }
}

/// The flags given on a command line.
#[derive(Debug)]
pub struct Flags {
    /// The example's name, which starts the lines it prints to stderr.
    program: &'static str,
    /// Each value flag's value as typed; a flag given twice keeps the last.
    values: HashMap<&'static str, String>,
    /// The switches that were given.
    switches: HashSet<&'static str>,
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
    /// What was wrong, naming the flag, in one line.
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

/// A number taken from a flag, and what was done to fit it into its range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clamped<T> {
    /// The number to use.
    pub value: T,
    /// One line saying the value typed was replaced by `value`, if it was.
    pub note: Option<String>,
}

impl Flags {
    /// Parses the process's arguments for the example `program`,
    /// accepting `flags`.
    ///
    /// Prints `usage` to stdout and exits with status 0 on `--help`; prints
    /// the error and `see --help for usage` to stderr and exits with status
    /// 2 on a bad command line.
    pub fn from_env(program: &'static str, usage: &str, flags: &[Flag]) -> Flags {
        match Flags::parse(program, flags, std::env::args().skip(1)) {
            Ok(Parsed::Flags(flags)) => flags,
            Ok(Parsed::Help) => {
                println!("{usage}");
                process::exit(0);
            }
            Err(err) => exit_with(program, &err),
        }
    }

    /// Parses `args` (without the program name) for the example `program`,
    /// accepting `flags`. `--help` anywhere wins over everything else.
    ///
    /// # Errors
    ///
    /// An argument that is not a flag, a flag not in `flags`, a value flag
    /// without its value, or a switch given a value.
    pub fn parse(
        program: &'static str,
        flags: &[Flag],
        args: impl IntoIterator<Item = String>,
    ) -> Result<Parsed, FlagError> {
        let args: Vec<String> = args.into_iter().collect();
        if args.iter().any(|arg| arg == "--help" || arg == "-h") {
            return Ok(Parsed::Help);
        }
        let mut values = HashMap::new();
        let mut switches = HashSet::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(given) = arg.strip_prefix("--") else {
                let accepted = accepted(program, flags);
                return Err(FlagError::new(if arg.starts_with('-') {
                    format!("unknown flag {arg} (flags start with --; {accepted})")
                } else {
                    format!("unexpected argument '{arg}' (flags look like --name value; {accepted})")
                }));
            };
            let (name, inline) = match given.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (given, None),
            };
            // Checked before anything else, so that `--bogus 5` says what is
            // wrong with `--bogus`, not that it needs a value.
            let Some(flag) = flags.iter().copied().find(|flag| flag.name() == name) else {
                return Err(FlagError::new(format!("unknown flag --{name} ({})", accepted(program, flags))));
            };
            match flag {
                Flag::Switch(name) => {
                    if inline.is_some() {
                        return Err(FlagError::new(format!("--{name} takes no value")));
                    }
                    switches.insert(name);
                }
                Flag::Value(name) => {
                    let value = match inline {
                        Some(value) => Some(value.to_owned()),
                        // The next argument, unless it is the next flag.
                        None => args.next().filter(|next| !next.starts_with("--")),
                    };
                    match value {
                        Some(value) if !value.is_empty() => values.insert(name, value),
                        _ => return Err(FlagError::new(format!("--{name} needs a value"))),
                    };
                }
            }
        }
        Ok(Parsed::Flags(Flags { program, values, switches }))
    }

    /// Whether the switch `--name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.contains(name)
    }

    /// The value of `--name` parsed as a `T`, or `default` if the flag was
    /// not given. `expected` says in words what the flag takes, for the
    /// error (`"an IP address such as 127.0.0.1 or ::1"`).
    ///
    /// # Errors
    ///
    /// The value does not parse as a `T`.
    pub fn value<T: FromStr>(&self, name: &str, default: T, expected: &str) -> Result<T, FlagError> {
        match self.values.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| FlagError::new(format!("--{name} must be {expected} (got '{text}')"))),
        }
    }

    /// The value of `--name` as a whole number in `range`, or `default` if
    /// the flag was not given.
    ///
    /// # Errors
    ///
    /// The value is not a whole number in `range`; the error states the
    /// range.
    pub fn number<T>(&self, name: &str, default: T, range: RangeInclusive<T>) -> Result<T, FlagError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(text) = self.values.get(name) else { return Ok(default) };
        match text.parse::<T>() {
            Ok(value) if range.contains(&value) => Ok(value),
            _ => Err(out_of_range(name, text, &range)),
        }
    }

    /// Like [`number`](Flags::number), but a whole number outside `range`
    /// is replaced by the nearest end of it, with a note saying so.
    ///
    /// # Errors
    ///
    /// The value is not a whole number (or too large for a `T`).
    pub fn clamped<T>(
        &self,
        name: &str,
        default: T,
        range: RangeInclusive<T>,
    ) -> Result<Clamped<T>, FlagError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(text) = self.values.get(name) else { return Ok(Clamped { value: default, note: None }) };
        let Ok(value) = text.parse::<T>() else { return Err(out_of_range(name, text, &range)) };
        let (least, most) = (*range.start(), *range.end());
        let (value, note) = if value < least {
            (least, Some(format!("--{name} {text} is less than {least}; using {least}")))
        } else if value > most {
            (most, Some(format!("--{name} {text} is more than {most}; using {most}")))
        } else {
            (value, None)
        };
        Ok(Clamped { value, note })
    }

    /// The value of `--name` parsed as a `T`; there is no default.
    /// `expected` says in words what the flag takes, for the error.
    ///
    /// # Errors
    ///
    /// The flag was not given, or its value does not parse as a `T`.
    pub fn required<T: FromStr>(&self, name: &str, expected: &str) -> Result<T, FlagError> {
        let Some(text) = self.values.get(name) else {
            return Err(FlagError::new(format!("--{name} is required: give {expected}")));
        };
        text.parse().map_err(|_| FlagError::new(format!("--{name} must be {expected} (got '{text}')")))
    }

    /// The value of `--name` as a number of seconds in `range` (fractions
    /// allowed: `1.5`), or `default` if the flag was not given.
    ///
    /// # Errors
    ///
    /// The value is not a number of seconds in `range`; the error states
    /// the range.
    pub fn seconds(
        &self,
        name: &str,
        default: Duration,
        range: RangeInclusive<f64>,
    ) -> Result<Duration, FlagError> {
        let Some(text) = self.values.get(name) else { return Ok(default) };
        match text.parse::<f64>() {
            Ok(seconds) if range.contains(&seconds) => Ok(Duration::from_secs_f64(seconds)),
            _ => Err(FlagError::new(format!(
                "--{name} must be a number of seconds from {} to {}, such as 1.5 (got '{text}')",
                range.start(),
                range.end()
            ))),
        }
    }

    /// The address a server listens on, from `--addr IP` (default
    /// 127.0.0.1) and `--port PORT` (0 to 65535, default `default_port`);
    /// a bad value is reported and the example exits with status 2.
    pub fn get_listen_addr(&self, default_port: u16) -> SocketAddr {
        let ip = self.get("addr", IpAddr::from([127, 0, 0, 1]), "an IP address such as 127.0.0.1 or ::1");
        SocketAddr::new(ip, self.get_number("port", default_port, 0..=u16::MAX))
    }

    /// Like [`value`](Flags::value), but a bad value is reported and the
    /// example exits with status 2.
    pub fn get<T: FromStr>(&self, name: &str, default: T, expected: &str) -> T {
        self.value(name, default, expected).unwrap_or_else(|err| exit_with(self.program, &err))
    }

    /// Like [`required`](Flags::required), but a missing or bad value is
    /// reported and the example exits with status 2.
    pub fn get_required<T: FromStr>(&self, name: &str, expected: &str) -> T {
        self.required(name, expected).unwrap_or_else(|err| exit_with(self.program, &err))
    }

    /// Like [`seconds`](Flags::seconds), but a bad value is reported and the
    /// example exits with status 2.
    pub fn get_seconds(&self, name: &str, default: Duration, range: RangeInclusive<f64>) -> Duration {
        self.seconds(name, default, range).unwrap_or_else(|err| exit_with(self.program, &err))
    }

    /// Like [`number`](Flags::number), but a bad value is reported and the
    /// example exits with status 2.
    pub fn get_number<T>(&self, name: &str, default: T, range: RangeInclusive<T>) -> T
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        self.number(name, default, range).unwrap_or_else(|err| exit_with(self.program, &err))
    }

    /// Like [`clamped`](Flags::clamped), but a bad value is reported and the
    /// example exits with status 2, and a clamped one is announced in one
    /// line on stderr.
    pub fn get_clamped<T>(&self, name: &str, default: T, range: RangeInclusive<T>) -> T
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        match self.clamped(name, default, range) {
            Ok(Clamped { value, note }) => {
                if let Some(note) = note {
                    eprintln!("{}: {note}", self.program);
                }
                value
            }
            Err(err) => exit_with(self.program, &err),
        }
    }
}

/// The error for a value that is not a whole number in `range`.
fn out_of_range<T: fmt::Display>(name: &str, text: &str, range: &RangeInclusive<T>) -> FlagError {
    FlagError::new(format!(
        "--{name} must be a whole number from {} to {} (got '{text}')",
        range.start(),
        range.end()
    ))
}

/// The flags `program` accepts, for an error about one it does not.
fn accepted(program: &str, flags: &[Flag]) -> String {
    if flags.is_empty() {
        return format!("{program} takes only --help");
    }
    let names: Vec<String> = flags.iter().map(|flag| format!("--{}", flag.name())).collect();
    format!("accepted: {}, --help", names.join(", "))
}

/// Reports a bad command line the way every example does, and exits.
fn exit_with(program: &str, err: &FlagError) -> ! {
    eprintln!("{program}: {err}");
    eprintln!("see --help for usage");
    process::exit(2);
}

#[cfg(test)]
mod tests {
    use super::Flag::{Switch, Value};
    use super::*;

    const FLAGS: &[Flag] = &[Value("port"), Value("addr"), Value("count"), Switch("quiet")];

    fn parse(args: &[&str]) -> Result<Parsed, FlagError> {
        Flags::parse("demo", FLAGS, args.iter().map(|a| a.to_string()))
    }

    fn flags(args: &[&str]) -> Flags {
        match parse(args) {
            Ok(Parsed::Flags(flags)) => flags,
            other => panic!("expected flags, got {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse(args) {
            Err(err) => err.to_string(),
            Ok(other) => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn both_spellings_and_defaults() {
        let flags = flags(&["--port", "8000", "--addr=::1"]);
        assert_eq!(flags.number("port", 7000u16, 0..=65535), Ok(8000));
        assert_eq!(flags.value("addr", String::new(), "an address").as_deref(), Ok("::1"));
        let empty = self::flags(&[]);
        assert_eq!(empty.number("port", 7000u16, 0..=65535), Ok(7000));
        assert!(!empty.switch("quiet"));
    }

    #[test]
    fn help_wins_wherever_it_is() {
        assert!(matches!(parse(&["--port", "1", "--help"]), Ok(Parsed::Help)));
        assert!(matches!(parse(&["-h"]), Ok(Parsed::Help)));
        assert!(matches!(parse(&["--bogus", "--help"]), Ok(Parsed::Help)));
        assert!(matches!(parse(&["--port", "--help"]), Ok(Parsed::Help)));
    }

    #[test]
    fn an_unknown_flag_is_called_unknown_whether_or_not_a_value_follows() {
        for args in [&["--bogus"][..], &["--bogus", "5"], &["--bogus=5"], &["--port", "1", "--bogus"]] {
            let err = error(args);
            assert!(err.starts_with("unknown flag --bogus ("), "{args:?}: {err}");
            assert!(err.contains("--port") && err.contains("--quiet"), "lists what is accepted: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        assert!(error(&["-x"]).starts_with("unknown flag -x (flags start with --;"));
        assert!(error(&["7000"]).starts_with("unexpected argument '7000'"));
        let none = Flags::parse("hello", &[], ["--bogus".to_owned()]).unwrap_err().to_string();
        assert_eq!(none, "unknown flag --bogus (hello takes only --help)");
    }

    #[test]
    fn a_value_flag_without_its_value_says_so() {
        assert_eq!(error(&["--port"]), "--port needs a value");
        assert_eq!(error(&["--port", "--addr", "x"]), "--port needs a value");
        assert_eq!(error(&["--port="]), "--port needs a value");
    }

    #[test]
    fn a_switch_takes_no_value() {
        let flags = flags(&["--quiet", "--port", "1"]);
        assert!(flags.switch("quiet"));
        assert_eq!(flags.number("port", 0u16, 0..=65535), Ok(1));
        assert_eq!(error(&["--quiet=yes"]), "--quiet takes no value");
        // The word after a switch is not its value.
        assert!(error(&["--quiet", "yes"]).starts_with("unexpected argument 'yes'"));
    }

    #[test]
    fn a_bad_number_is_told_its_range_in_words() {
        let range = "--port must be a whole number from 0 to 65535";
        for bad in ["seventy", "70000", "-1", "1.5", "99999999999999999999999"] {
            let err = flags(&["--port", bad]).number("port", 0u16, 0..=65535).unwrap_err().to_string();
            assert_eq!(err, format!("{range} (got '{bad}')"));
        }
        let err = flags(&["--count", "0"]).number("count", 1usize, 1..=10_000_000).unwrap_err().to_string();
        assert_eq!(err, "--count must be a whole number from 1 to 10000000 (got '0')");
        let err = flags(&["--addr", "nowhere"]).value("addr", 0u8, "an IP address").unwrap_err().to_string();
        assert_eq!(err, "--addr must be an IP address (got 'nowhere')");
    }

    #[test]
    fn a_required_flag_says_what_to_give() {
        let addr = "an address such as 127.0.0.1:7000";
        let err = flags(&[]).required::<SocketAddr>("addr", addr).unwrap_err().to_string();
        assert_eq!(err, "--addr is required: give an address such as 127.0.0.1:7000");
        let err = flags(&["--addr", "home"]).required::<SocketAddr>("addr", addr).unwrap_err().to_string();
        assert_eq!(err, "--addr must be an address such as 127.0.0.1:7000 (got 'home')");
        let given = flags(&["--addr", "127.0.0.1:9"]).required::<SocketAddr>("addr", addr);
        assert_eq!(given, Ok(SocketAddr::from(([127, 0, 0, 1], 9))));
    }

    #[test]
    fn seconds_take_fractions_and_state_their_range() {
        let seconds = |args: &[&str]| flags(args).seconds("count", Duration::from_secs(5), 0.1..=60.0);
        assert_eq!(seconds(&[]), Ok(Duration::from_secs(5)));
        assert_eq!(seconds(&["--count", "1.5"]), Ok(Duration::from_millis(1500)));
        assert_eq!(seconds(&["--count", "2"]), Ok(Duration::from_secs(2)));
        for bad in ["0", "-1", "61", "nan", "inf", "soon"] {
            let err = seconds(&["--count", bad]).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("--count must be a number of seconds from 0.1 to 60, such as 1.5 (got '{bad}')")
            );
        }
    }

    #[test]
    fn a_clamped_number_says_what_it_became() {
        let clamped = |text: &str| flags(&["--count", text]).clamped("count", 4usize, 1..=100);
        assert_eq!(clamped("7"), Ok(Clamped { value: 7, note: None }));
        assert_eq!(
            clamped("0"),
            Ok(Clamped { value: 1, note: Some(String::from("--count 0 is less than 1; using 1")) })
        );
        assert_eq!(
            clamped("5000"),
            Ok(Clamped { value: 100, note: Some(String::from("--count 5000 is more than 100; using 100")) })
        );
        let err = clamped("many").unwrap_err().to_string();
        assert_eq!(err, "--count must be a whole number from 1 to 100 (got 'many')");
        let default = flags(&[]).clamped("count", 4usize, 1..=100);
        assert_eq!(default, Ok(Clamped { value: 4, note: None }));
    }
}
