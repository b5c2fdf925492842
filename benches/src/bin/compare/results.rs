//! What criterion wrote: one [`Measurement`] per benchmark run in this
//! invocation, read from its result files.
//!
//! For every benchmark criterion keeps a folder under
//! `<target>/criterion/`, named after the group and the variant
//! (`yield_many/green`), and writes two files in its `new/` folder at the
//! end of each run:
//!
//! * `estimates.json`: the statistics of the run, in nanoseconds per
//!   iteration; only `median.point_estimate` is read here (the median of
//!   the samples' times per iteration);
//! * `benchmark.json`: the benchmark's identity (`group_id`,
//!   `function_id`, `value_str`) and its `throughput`, the number of
//!   elements (yields, tasks, round trips) or bytes one iteration handles.
//!
//! The folders stay from earlier runs, so a file older than the start of
//! this invocation is a stale result and is skipped.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::json::{self, Value};

/// What one iteration of a benchmark handles: the divisor from a median
/// per iteration to the median per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throughput {
    /// `Throughput::Elements(n)` (or the element half of
    /// `ElementsAndBytes`).
    Elements(u64),
    /// `Throughput::Bytes(n)` or `BytesDecimal(n)`.
    Bytes(u64),
    /// `Throughput::Bits(n)`.
    Bits(u64),
    /// No throughput set: the unit is the iteration.
    Iteration,
}

impl Throughput {
    /// How many units one iteration handles (at least 1).
    pub fn count(self) -> u64 {
        match self {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::Bits(n) => n.max(1),
            Throughput::Iteration => 1,
        }
    }

    /// The unit's name: `element`, `byte`, `bit` or `iteration`.
    pub fn unit(self) -> &'static str {
        match self {
            Throughput::Elements(_) => "element",
            Throughput::Bytes(_) => "byte",
            Throughput::Bits(_) => "bit",
            Throughput::Iteration => "iteration",
        }
    }
}

/// One benchmark's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The criterion group (`yield_many`): a row of the table.
    pub group: String,
    /// The variant within the group (`green`, `tokio_mt`): a column.
    pub variant: String,
    /// The median time of one iteration, in nanoseconds.
    pub median_ns: f64,
    /// What one iteration handles.
    pub throughput: Throughput,
}

impl Measurement {
    /// The median time per unit (per element, usually), in nanoseconds.
    pub fn per_unit_ns(&self) -> f64 {
        self.median_ns / self.throughput.count() as f64
    }
}

/// The benchmark's identity and throughput, from `benchmark.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `group_id`.
    pub group: String,
    /// `function_id`, followed by `/value_str` when the benchmark has a
    /// parameter.
    pub variant: String,
    /// `throughput`.
    pub throughput: Throughput,
}

/// The median nanoseconds per iteration in an `estimates.json`.
pub fn parse_estimates(text: &str) -> Result<f64, String> {
    let value = json::parse(text).map_err(|err| err.to_string())?;
    let median = value.at(&["median", "point_estimate"]).and_then(Value::as_f64);
    match median {
        Some(ns) if ns >= 0.0 => Ok(ns),
        Some(_) => Err("median.point_estimate is negative".to_owned()),
        None => Err("no number at median.point_estimate".to_owned()),
    }
}

/// The identity and throughput in a `benchmark.json`.
pub fn parse_benchmark(text: &str) -> Result<Identity, String> {
    let value = json::parse(text).map_err(|err| err.to_string())?;
    let group = value.get("group_id").and_then(Value::as_str).ok_or("no string at group_id")?;
    let function = value.get("function_id").and_then(Value::as_str);
    let parameter = value.get("value_str").and_then(Value::as_str);
    let variant = match (function, parameter) {
        (Some(function), Some(parameter)) => format!("{function}/{parameter}"),
        (Some(name), None) | (None, Some(name)) => name.to_owned(),
        (None, None) => return Err("neither function_id nor value_str is a string".to_owned()),
    };
    let throughput = match value.get("throughput") {
        None | Some(Value::Null) => Throughput::Iteration,
        Some(kind) => parse_throughput(kind).ok_or("throughput is not one criterion writes")?,
    };
    Ok(Identity { group: group.to_owned(), variant, throughput })
}

/// criterion's `Throughput`, serialised as `{"Elements": 1000}`.
fn parse_throughput(kind: &Value) -> Option<Throughput> {
    let count = |key: &str| kind.get(key).and_then(Value::as_f64).map(|n| n as u64);
    if let Some(n) = count("Elements") {
        Some(Throughput::Elements(n))
    } else if let Some(n) = count("Bytes").or_else(|| count("BytesDecimal")) {
        Some(Throughput::Bytes(n))
    } else if let Some(n) = count("Bits") {
        Some(Throughput::Bits(n))
    } else {
        let both = kind.get("ElementsAndBytes")?;
        both.get("elements").and_then(Value::as_f64).map(|n| Throughput::Elements(n as u64))
    }
}

/// The results criterion wrote under `criterion_dir` at or after `since`,
/// sorted by group and variant, and one line for each result folder that
/// could not be read.
pub fn collect(criterion_dir: &Path, since: SystemTime) -> (Vec<Measurement>, Vec<String>) {
    // File times may be kept to the second: a result written in the second
    // the run started must not look older than the start.
    let since = since
        .duration_since(UNIX_EPOCH)
        .map_or(UNIX_EPOCH, |elapsed| UNIX_EPOCH + Duration::from_secs(elapsed.as_secs()));
    let mut folders = Vec::new();
    find_results(criterion_dir, 0, &mut folders);
    let mut measurements = Vec::new();
    let mut problems = Vec::new();
    for folder in folders {
        match read_result(&folder, since) {
            Ok(Some(measurement)) => measurements.push(measurement),
            Ok(None) => {}
            Err(err) => problems.push(format!("skipped {}: {err}", folder.display())),
        }
    }
    measurements.sort_by(|a, b| (&a.group, &a.variant).cmp(&(&b.group, &b.variant)));
    (measurements, problems)
}

/// How deep below `criterion/` a benchmark's folder may be:
/// `group/function/value`.
const MAX_DEPTH: usize = 3;

/// Adds every folder below `dir` that holds a `new/benchmark.json` to
/// `found`. A folder that cannot be listed holds no results worth a
/// complaint (criterion's own `report/` among them).
fn find_results(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
        // `new` and `change` are a benchmark's own files, `report` is
        // criterion's HTML; the folders of saved baselines hold no `new/`.
        if !is_dir || ["new", "change", "report"].iter().any(|skip| name == *skip) {
            continue;
        }
        if path.join("new").join("benchmark.json").is_file() {
            found.push(path.clone());
        }
        find_results(&path, depth + 1, found);
    }
}

/// The measurement in `folder/new/`, or `None` if it is older than
/// `since`.
fn read_result(folder: &Path, since: SystemTime) -> io::Result<Option<Measurement>> {
    let new = folder.join("new");
    let estimates_path = new.join("estimates.json");
    let benchmark_path = new.join("benchmark.json");
    for path in [&estimates_path, &benchmark_path] {
        if fs::metadata(path)?.modified()? < since {
            return Ok(None);
        }
    }
    let invalid = |path: &Path, err: String| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{}: {err}", path.display()))
    };
    let median_ns = parse_estimates(&fs::read_to_string(&estimates_path)?)
        .map_err(|err| invalid(&estimates_path, err))?;
    let identity = parse_benchmark(&fs::read_to_string(&benchmark_path)?)
        .map_err(|err| invalid(&benchmark_path, err))?;
    Ok(Some(Measurement {
        group: identity.group,
        variant: identity.variant,
        median_ns,
        throughput: identity.throughput,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `estimates.json` as criterion 0.8 writes it.
    const ESTIMATES: &str = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":5998361.775583331,"upper_bound":8219808.404916669},"point_estimate":7083955.47777778,"standard_error":567836.8153348687},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":3381729.6666666665,"upper_bound":3527900.5},"point_estimate":3460389.9444444445,"standard_error":47036.066258543244},"median_abs_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":145372.22208579385,"upper_bound":365487.9097779592},"point_estimate":250921.56177858543,"standard_error":71954.80033611578},"slope":null,"std_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":5003207.999269485,"upper_bound":6138159.345351638},"point_estimate":5686047.267648553,"standard_error":291743.53028098}}"#;

    /// A `benchmark.json` as criterion 0.8 writes it.
    const BENCHMARK: &str = r#"{"group_id":"fs_read","function_id":"green","value_str":null,"throughput":{"Elements":1000},"full_id":"fs_read/green","directory_name":"fs_read/green","title":"fs_read/green"}"#;

    #[test]
    fn the_median_is_read_from_estimates() {
        assert_eq!(parse_estimates(ESTIMATES), Ok(3460389.9444444445));
        assert!(parse_estimates(r#"{"mean":{"point_estimate":1}}"#).unwrap_err().contains("median"));
        assert!(parse_estimates(r#"{"median":{"point_estimate":-1}}"#).is_err());
        assert!(parse_estimates("{\"median\":").unwrap_err().starts_with("not JSON"));
    }

    #[test]
    fn identity_and_throughput_are_read_from_benchmark() {
        let identity = parse_benchmark(BENCHMARK).unwrap();
        assert_eq!(
            identity,
            Identity {
                group: "fs_read".to_owned(),
                variant: "green".to_owned(),
                throughput: Throughput::Elements(1000)
            }
        );
        let with = |throughput: &str| {
            let text =
                format!(r#"{{"group_id":"g","function_id":"f","value_str":null,"throughput":{throughput}}}"#);
            parse_benchmark(&text).map(|identity| identity.throughput)
        };
        assert_eq!(with(r#"{"Bytes":4096}"#), Ok(Throughput::Bytes(4096)));
        assert_eq!(with(r#"{"BytesDecimal":10}"#), Ok(Throughput::Bytes(10)));
        assert_eq!(with(r#"{"Bits":8}"#), Ok(Throughput::Bits(8)));
        assert_eq!(with(r#"{"ElementsAndBytes":{"elements":5,"bytes":80}}"#), Ok(Throughput::Elements(5)));
        assert_eq!(with("null"), Ok(Throughput::Iteration));
        assert!(with(r#"{"Furlongs":3}"#).is_err());
    }

    #[test]
    fn a_parameter_joins_the_variant() {
        let text = r#"{"group_id":"g","function_id":"green","value_str":"64","throughput":null}"#;
        assert_eq!(parse_benchmark(text).map(|identity| identity.variant), Ok("green/64".to_owned()));
        let text = r#"{"group_id":"g","function_id":null,"value_str":"64"}"#;
        assert_eq!(parse_benchmark(text).map(|identity| identity.variant), Ok("64".to_owned()));
        assert!(parse_benchmark(r#"{"group_id":"g","function_id":null,"value_str":null}"#).is_err());
        assert!(parse_benchmark(r#"{"function_id":"green"}"#).is_err());
    }

    #[test]
    fn per_unit_divides_by_the_throughput() {
        let measurement = |throughput| Measurement {
            group: "g".to_owned(),
            variant: "green".to_owned(),
            median_ns: 3000.0,
            throughput,
        };
        assert_eq!(measurement(Throughput::Elements(1000)).per_unit_ns(), 3.0);
        assert_eq!(measurement(Throughput::Bytes(300)).per_unit_ns(), 10.0);
        assert_eq!(measurement(Throughput::Iteration).per_unit_ns(), 3000.0);
        assert_eq!(measurement(Throughput::Elements(0)).per_unit_ns(), 3000.0);
    }

    #[test]
    fn only_results_written_since_the_start_are_collected() {
        let root = std::env::temp_dir().join(format!("compare-results-{}", std::process::id()));
        let write = |dir: &str, group: &str, variant: &str| {
            let new = root.join(dir).join("new");
            fs::create_dir_all(&new).unwrap();
            fs::write(new.join("estimates.json"), r#"{"median":{"point_estimate":2000.0}}"#).unwrap();
            let benchmark = format!(
                r#"{{"group_id":"{group}","function_id":"{variant}","value_str":null,"throughput":{{"Elements":2}}}}"#
            );
            fs::write(new.join("benchmark.json"), benchmark).unwrap();
        };
        write("old/green", "old", "green");
        // A result of an earlier run: an hour old.
        let an_hour_ago = fs::FileTimes::new().set_modified(SystemTime::now() - Duration::from_secs(3600));
        for file in ["estimates.json", "benchmark.json"] {
            let file = fs::File::options().write(true).open(root.join("old/green/new").join(file)).unwrap();
            file.set_times(an_hour_ago).unwrap();
        }
        let start = SystemTime::now() - Duration::from_secs(2);
        write("fresh/green", "fresh", "green");
        write("fresh/tokio", "fresh", "tokio");
        fs::create_dir_all(root.join("broken/green/new")).unwrap();
        fs::write(root.join("broken/green/new/benchmark.json"), "{").unwrap();
        fs::write(root.join("broken/green/new/estimates.json"), "{").unwrap();
        let (found, problems) = collect(&root, start);
        fs::remove_dir_all(&root).unwrap();
        let names: Vec<(&str, &str)> = found.iter().map(|m| (m.group.as_str(), m.variant.as_str())).collect();
        assert_eq!(names, [("fresh", "green"), ("fresh", "tokio")]);
        assert_eq!(found[0].per_unit_ns(), 1000.0);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("broken"), "{problems:?}");
    }
}
