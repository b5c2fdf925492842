//! The machine and the build the numbers come from: CPU, cores, kernel,
//! compiler, date and the profile every runtime was compiled with.
//!
//! Whatever cannot be read is called unknown rather than stopping the
//! report: the figures are worth having without it.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where and how the benchmarks ran.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The CPU's model name, from `/proc/cpuinfo`.
    pub cpu: String,
    /// Logical cores this process may use.
    pub cores: usize,
    /// The kernel release, from `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// When the run started, `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// The bench profile's settings that decide how the code is optimised.
    pub profile: Profile,
}

/// The `[profile.bench]` settings that matter for a fair comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `codegen-units`, as written (cargo's default for an optimised
    /// build is 16).
    pub codegen_units: String,
    /// `lto`, as written (cargo's default is `false`).
    pub lto: String,
}

impl Machine {
    /// The machine this runs on, started at `start`, building with the
    /// workspace manifest `manifest`.
    pub fn here(start: SystemTime, manifest: &Path) -> Machine {
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| cpu_model(&info))
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |release| release.trim().to_owned());
        let profile = fs::read_to_string(manifest)
            .map(|text| Profile::from_manifest(&text))
            .unwrap_or_else(|_| Profile { codegen_units: "unknown".to_owned(), lto: "unknown".to_owned() });
        Machine {
            cpu,
            cores: thread::available_parallelism().map_or(1, usize::from),
            kernel,
            rustc: rustc_version(),
            date: utc_date(start),
            profile,
        }
    }

    /// The description above the table, one line each.
    pub fn lines(&self) -> [String; 3] {
        [
            format!("machine: {}, {} logical cores, Linux {}", self.cpu, self.cores, self.kernel),
            format!("built:   {}, {}", self.rustc, self.profile.describe()),
            format!("date:    {}", self.date),
        ]
    }
}

impl Profile {
    /// The settings of `[profile.bench]` in a workspace manifest, falling
    /// back as cargo does: `bench` inherits from `release`, and `release`
    /// from cargo's defaults.
    pub fn from_manifest(manifest: &str) -> Profile {
        let setting = |key: &str| {
            toml_value(manifest, "profile.bench", key)
                .or_else(|| toml_value(manifest, "profile.release", key))
        };
        Profile {
            codegen_units: setting("codegen-units").unwrap_or_else(|| "16".to_owned()),
            lto: setting("lto").unwrap_or_else(|| "false".to_owned()),
        }
    }

    /// `bench profile: codegen-units = 1, lto = "thin", ...`.
    pub fn describe(&self) -> String {
        format!(
            "bench profile: codegen-units = {}, lto = {} (every runtime built in one program with the \
             same profile)",
            self.codegen_units, self.lto
        )
    }
}

/// The first `model name` in the text of `/proc/cpuinfo`.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "model name")
        .map(|(_, name)| name.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The value of `key` in the table `[table]` of a Cargo manifest, as
/// written (a string keeps its quotes). This reads the one-line `key =
/// value` form cargo manifests use for profile settings, not all of TOML.
fn toml_value(manifest: &str, table: &str, key: &str) -> Option<String> {
    let header = format!("[{table}]");
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.split_once('#').map_or(line, |(code, _)| code).trim();
        if line.starts_with('[') {
            inside = line == header;
        } else if inside
            && let Some((name, value)) = line.split_once('=')
            && name.trim() == key
        {
            return Some(value.trim().to_owned());
        }
    }
    None
}

/// `rustc -V`, for the compiler in `RUSTC` if that is set.
fn rustc_version() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    match Command::new(&rustc).arg("-V").output() {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        _ => format!("unknown rustc ({} -V failed)", rustc.to_string_lossy()),
    }
}

/// `time` in UTC, `YYYY-MM-DD HH:MM UTC`.
pub fn utc_date(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", of_day / 3600, of_day % 3600 / 60)
}

/// The Gregorian date `days` days after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(seconds: u64) -> String {
        utc_date(UNIX_EPOCH + Duration::from_secs(seconds))
    }

    #[test]
    fn dates_are_gregorian_and_utc() {
        assert_eq!(at(0), "1970-01-01 00:00 UTC");
        assert_eq!(at(951_782_400), "2000-02-29 00:00 UTC"); // a leap day of a year divisible by 400
        assert_eq!(at(1_709_251_199), "2024-02-29 23:59 UTC");
        assert_eq!(at(1_709_251_200), "2024-03-01 00:00 UTC");
        assert_eq!(at(4_107_542_400), "2100-03-01 00:00 UTC"); // 2100 has no 29 February
        assert_eq!(at(1_767_225_599), "2025-12-31 23:59 UTC");
        assert_eq!(utc_date(UNIX_EPOCH - Duration::from_secs(1)), "1970-01-01 00:00 UTC");
    }

    #[test]
    fn the_bench_profile_falls_back_to_release_and_defaults() {
        let manifest = "[workspace]\nmembers = [\"a\"]\n\n[profile.release]\ncodegen-units = 4 # few\n\
                        lto = \"fat\"\n\n[profile.bench]\ndebug = 1\ncodegen-units = 1\n";
        let profile = Profile::from_manifest(manifest);
        assert_eq!(profile, Profile { codegen_units: "1".to_owned(), lto: "\"fat\"".to_owned() });
        assert_eq!(
            Profile::from_manifest("[package]\nname = \"x\"\n"),
            Profile { codegen_units: "16".to_owned(), lto: "false".to_owned() }
        );
        assert!(profile.describe().contains("every runtime built in one program with the same profile"));
    }

    #[test]
    fn the_cpu_is_the_first_model_name() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: X\nmodel name\t: Some  CPU @ 2.0GHz\n\n\
                       processor\t: 1\nmodel name\t: Some  CPU @ 2.0GHz\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("Some CPU @ 2.0GHz"));
        assert_eq!(cpu_model("processor : 0\n"), None);
    }
}
