//! The report in its two forms: text for the terminal, and with `--out`
//! the files `compare.md`, `ratios.svg` and `threads.svg`.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use crate::machine::Machine;
use crate::runner::Settings;
use crate::svg::{self, Series};
use crate::table::{self, RATIOS, Row};

/// Everything the report says, gathered.
#[derive(Debug)]
pub struct Report<'a> {
    /// Where and how it ran.
    pub machine: &'a Machine,
    /// How long criterion measured.
    pub settings: Settings,
    /// The command line that made it, for the record.
    pub command: String,
    /// One row per group.
    pub rows: &'a [Row],
}

/// How to read a ratio, in one paragraph.
const READING: &str = "Each figure is the median time per element (per unit of the group's criterion \
    throughput: one yield, one task, one round trip). A ratio is green's median over the other's: below 1 \
    green is faster (0.5 = half the time), above 1 it is slower. green/tokio compares the one-thread \
    runtimes (green's and tokio's current_thread), green_2w/tokio_mt runtimes of two workers each, \
    green/threads green with one OS thread per task. – = not measured (the group has no such variant, or \
    --filter left it out).";

/// What `--quick` costs in precision.
const QUICK_CAVEAT: &str = "--quick takes few, short samples: expect figures to move by tens of percent \
    from run to run, more on a busy machine.";

impl Report<'_> {
    /// How to read the table, with the caveat of `--quick` when it applies.
    fn reading(&self) -> String {
        if self.settings == Settings::QUICK {
            format!("{READING} {QUICK_CAVEAT}")
        } else {
            READING.to_owned()
        }
    }

    /// The title, above the machine description.
    fn title(&self) -> String {
        format!("green vs tokio vs OS threads: median time per element ({})", self.settings.describe())
    }

    /// The report for the terminal.
    pub fn text(&self) -> String {
        let mut text = format!("{}\n", self.title());
        for line in self.machine.lines() {
            let _ = writeln!(text, "{line}");
        }
        text.push('\n');
        text.push_str(&table::render(self.rows));
        let others = table::other_variants(self.rows);
        if !others.is_empty() {
            let _ = writeln!(text, "{}", wrap(&format!("also measured: {}", others.join(", ")), 100));
        }
        let _ = writeln!(text, "\n{}", wrap(&self.reading(), 100));
        text
    }

    /// `compare.md`.
    pub fn markdown(&self) -> String {
        let mut md = String::from("# green vs tokio vs OS threads\n\n");
        for line in self.machine.lines() {
            let (key, value) = line.split_once(':').unwrap_or(("", &line));
            let _ = writeln!(md, "- **{}**: {}", key.trim(), value.trim());
        }
        md.push('\n');
        md.push_str(&table::render(self.rows));
        let others = table::other_variants(self.rows);
        if !others.is_empty() {
            let _ = writeln!(md, "\nAlso measured: {}.", others.join(", "));
        }
        let _ = writeln!(
            md,
            "\nMade by `{}`: every bench target of green-benches run by criterion 0.8 ({}), the median of \
             each benchmark's samples (`estimates.json`) divided by its group's throughput \
             (`benchmark.json`).\n\n{}\n\n\
             ![green/tokio and green_2w/tokio_mt for each group, log scale](ratios.svg)\n\n\
             ![green/threads for each group, log scale](threads.svg)",
            self.command,
            self.settings.describe(),
            self.reading()
        );
        md
    }

    /// The charts, by file name.
    pub fn charts(&self) -> [(&'static str, String); 2] {
        let notes = self.machine.lines().map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "));
        let ratios =
            [Series { ratio: RATIOS[0], color: "#3182bd" }, Series { ratio: RATIOS[1], color: "#e6550d" }];
        let threads = [Series { ratio: RATIOS[2], color: "#756bb1" }];
        [
            ("ratios.svg", svg::ratio_chart("green against tokio, per group", &notes, self.rows, &ratios)),
            (
                "threads.svg",
                svg::ratio_chart("green against OS threads, per group", &notes, self.rows, &threads),
            ),
        ]
    }

    /// Writes `compare.md` and the charts into `dir`, creating it.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let failed = |what: &str, err: io::Error| io::Error::new(err.kind(), format!("{what}: {err}"));
        fs::create_dir_all(dir).map_err(|err| failed(&format!("cannot create {}", dir.display()), err))?;
        let [ratios, threads] = self.charts();
        for (name, contents) in [("compare.md", self.markdown()), ratios, threads] {
            let path = dir.join(name);
            fs::write(&path, contents)
                .map_err(|err| failed(&format!("cannot write {}", path.display()), err))?;
        }
        Ok(())
    }
}

/// `text` broken into lines of at most `width` characters, between words.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_length = 0;
    for word in text.split_whitespace() {
        let length = word.chars().count();
        if line_length > 0 && line_length + 1 + length > width {
            out.push('\n');
            line_length = 0;
        } else if line_length > 0 {
            out.push(' ');
            line_length += 1;
        }
        out.push_str(word);
        line_length += length;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Profile;

    fn machine() -> Machine {
        Machine {
            cpu: "Some CPU".to_owned(),
            cores: 2,
            kernel: "6.1.0".to_owned(),
            rustc: "rustc 1.95.0".to_owned(),
            date: "2026-01-02 03:04 UTC".to_owned(),
            profile: Profile { codegen_units: "1".to_owned(), lto: "\"thin\"".to_owned() },
        }
    }

    #[test]
    fn both_forms_describe_the_machine_above_the_table() {
        let machine = machine();
        let rows = [Row {
            group: "switch".to_owned(),
            unit: "element",
            variants: vec![("green".to_owned(), 10.0), ("corosensei".to_owned(), 2.0)],
        }];
        let report = Report {
            machine: &machine,
            settings: Settings::QUICK,
            command: "compare --quick".to_owned(),
            rows: &rows,
        };
        let text = report.text();
        let table_at = text.find("| group").unwrap();
        for part in
            ["Some CPU, 2 logical cores, Linux 6.1.0", "rustc 1.95.0", "codegen-units = 1", "2026-01-02"]
        {
            assert!(text.find(part).is_some_and(|at| at < table_at), "{part} above the table:\n{text}");
        }
        assert!(text.contains("also measured: switch/corosensei 2.00 ns"), "{text}");
        assert!(text.contains("tens of percent"), "the caveat of --quick:\n{text}");
        let md = report.markdown();
        assert!(md.contains("- **machine**: Some CPU") && md.contains("`compare --quick`"), "{md}");
        assert!(md.contains("](ratios.svg)") && md.contains("](threads.svg)"), "{md}");
        let full = Report { settings: Settings::FULL, ..report };
        assert!(!full.text().contains("tens of percent"));
    }

    #[test]
    fn wrapping_breaks_between_words() {
        assert_eq!(wrap("aa bb cc dd", 5), "aa bb\ncc dd");
        assert_eq!(wrap("  one   two ", 80), "one two");
        assert_eq!(wrap("longerthanwidth x", 4), "longerthanwidth\nx");
    }
}
