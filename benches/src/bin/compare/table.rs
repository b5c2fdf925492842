//! The table: one row per criterion group, the median time per element of
//! each runtime, and the ratios that compare them.
//!
//! | column | what it holds |
//! |---|---|
//! | `green`, `green_2w`, `tokio`, `tokio_mt`, `threads` | the variant's median time per element (per unit of the group's throughput) |
//! | `green/tokio` | `green` over `tokio`: both one thread |
//! | `green_2w/tokio_mt` | `green_2w` over `tokio_mt`: both [`WORKERS`](green_benches::WORKERS) workers |
//! | `green/threads` | `green` over OS threads |
//!
//! A ratio below 1 means green took less time: green is faster. A variant a
//! group does not have (or that this run did not measure) is `–`, and so
//! is every ratio that needs it. Variants without a column (`switch`'s
//! `corosensei`, say) are listed under the table, in the same unit.

use std::fmt::Write as _;

use crate::results::Measurement;

/// The variants with a column, in column order.
pub const COLUMNS: [&str; 5] = ["green", "green_2w", "tokio", "tokio_mt", "threads"];

/// The ratios with a column, each numerator over denominator.
pub const RATIOS: [Ratio; 3] = [
    Ratio { numerator: "green", denominator: "tokio" },
    Ratio { numerator: "green_2w", denominator: "tokio_mt" },
    Ratio { numerator: "green", denominator: "threads" },
];

/// What a missing figure shows.
pub const MISSING: &str = "–";

/// One ratio between two variants of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    /// The variant on top: a green one.
    pub numerator: &'static str,
    /// The variant it is compared with.
    pub denominator: &'static str,
}

impl Ratio {
    /// The column header: `green/tokio`.
    pub fn name(self) -> String {
        format!("{}/{}", self.numerator, self.denominator)
    }
}

/// One group's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The criterion group.
    pub group: String,
    /// The unit the times are per: `element` unless the group's throughput
    /// says otherwise.
    pub unit: &'static str,
    /// Each variant measured, with its median time per unit in
    /// nanoseconds, in the order of [`COLUMNS`] and then by name.
    pub variants: Vec<(String, f64)>,
}

impl Row {
    /// The median time per unit of `variant`, if it was measured.
    pub fn time(&self, variant: &str) -> Option<f64> {
        self.variants.iter().find(|(name, _)| name == variant).map(|&(_, ns)| ns)
    }

    /// The value of `ratio` in this group, if both its variants were
    /// measured.
    pub fn ratio(&self, ratio: Ratio) -> Option<f64> {
        divide(self.time(ratio.numerator), self.time(ratio.denominator))
    }

    /// The group's name as the table shows it: with its unit when that is
    /// not the element.
    pub fn label(&self) -> String {
        match self.unit {
            "element" => self.group.clone(),
            unit => format!("{} (per {unit})", self.group),
        }
    }
}

/// `numerator / denominator`, if both are there and the quotient means
/// something.
pub fn divide(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    match (numerator, denominator) {
        (Some(top), Some(bottom)) if bottom > 0.0 && top >= 0.0 => Some(top / bottom),
        _ => None,
    }
}

/// The rows of `measurements`, one per group. Groups come in the order of
/// their first benchmark in `run_order` (ids such as `yield_many/green`, as
/// they ran), and groups not in it after those, by name.
pub fn rows(measurements: &[Measurement], run_order: &[String]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for measurement in measurements {
        let entry = (measurement.variant.clone(), measurement.per_unit_ns());
        match rows.iter_mut().find(|row| row.group == measurement.group) {
            Some(row) => row.variants.push(entry),
            None => rows.push(Row {
                group: measurement.group.clone(),
                unit: measurement.throughput.unit(),
                variants: vec![entry],
            }),
        }
    }
    let column = |name: &str| COLUMNS.iter().position(|column| *column == name).unwrap_or(COLUMNS.len());
    for row in &mut rows {
        row.variants.sort_by(|(a, _), (b, _)| (column(a), a).cmp(&(column(b), b)));
    }
    let first_run = |group: &str| {
        run_order
            .iter()
            .position(|id| id.strip_prefix(group).is_some_and(|rest| rest.starts_with('/')))
            .unwrap_or(usize::MAX)
    };
    rows.sort_by(|a, b| (first_run(&a.group), &a.group).cmp(&(first_run(&b.group), &b.group)));
    rows
}

/// A time in nanoseconds in the unit that reads best, to three
/// significant figures: `812 ns`, `1.25 µs`, `40.0 ms`.
pub fn format_time(ns: f64) -> String {
    // Each unit until its figure would round to 1000.
    let (value, unit) = match ns {
        ..999.5 => (ns, "ns"),
        ..999.5e3 => (ns / 1e3, "µs"),
        ..999.5e6 => (ns / 1e6, "ms"),
        _ => (ns / 1e9, "s"),
    };
    let decimals = match value {
        ..9.995 => 2,
        ..99.95 => 1,
        _ => 0,
    };
    format!("{value:.decimals$} {unit}")
}

/// A ratio to two significant figures, or whole from 10 up: `0.42`,
/// `3.1`, `17`, `1234`, `0.0031`.
pub fn format_ratio(ratio: f64) -> String {
    if ratio <= 0.0 || !ratio.is_finite() {
        return format!("{ratio}");
    }
    // Rounded first, so that 0.00996 counts as the 0.010 it prints as;
    // from 10 up, whole numbers.
    let scale = if ratio >= 10.0 { 1.0 } else { 10f64.powf(ratio.log10().floor() - 1.0) };
    let rounded = (ratio / scale).round() * scale;
    let decimals = (1.0 - (rounded.log10() + 1e-9).floor()).clamp(0.0, 6.0) as usize;
    format!("{rounded:.decimals$}")
}

/// The table in Markdown, its columns padded to line up in a terminal too.
pub fn render(rows: &[Row]) -> String {
    let mut header = vec!["group".to_owned()];
    header.extend(COLUMNS.iter().map(|name| (*name).to_owned()));
    header.extend(RATIOS.iter().map(|ratio| ratio.name()));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![row.label()];
            cells.extend(COLUMNS.iter().map(|name| row.time(name).map_or(MISSING.to_owned(), format_time)));
            cells.extend(
                RATIOS.iter().map(|&ratio| row.ratio(ratio).map_or(MISSING.to_owned(), format_ratio)),
            );
            cells
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| body.iter().chain([&header]).map(|cells| cells[i].chars().count()).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        let mut line = String::from("|");
        for (i, cell) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            // The group's name to the left, the figures to the right.
            let _ = if i == 0 { write!(line, " {cell}{pad} |") } else { write!(line, " {pad}{cell} |") };
        }
        line.push('\n');
        line
    };
    let mut table = line(&header);
    table.push('|');
    for (i, width) in widths.iter().enumerate() {
        let dashes = "-".repeat(width + 1);
        let _ = if i == 0 { write!(table, ":{dashes}|") } else { write!(table, "{dashes}:|") };
    }
    table.push('\n');
    for cells in &body {
        table.push_str(&line(cells));
    }
    table
}

/// The variants without a column, each as `group/variant time`:
/// `switch/corosensei 2.91 ns`.
pub fn other_variants(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .flat_map(|row| {
            row.variants
                .iter()
                .filter(|(name, _)| !COLUMNS.contains(&name.as_str()))
                .map(|(name, ns)| format!("{}/{name} {}", row.group, format_time(*ns)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Throughput;

    fn measurement(group: &str, variant: &str, median_ns: f64) -> Measurement {
        Measurement {
            group: group.to_owned(),
            variant: variant.to_owned(),
            median_ns,
            throughput: Throughput::Elements(10),
        }
    }

    #[test]
    fn times_read_in_the_best_unit() {
        assert_eq!(format_time(0.4567), "0.46 ns");
        assert_eq!(format_time(61.24), "61.2 ns");
        assert_eq!(format_time(812.0), "812 ns");
        assert_eq!(format_time(999.7), "1.00 µs");
        assert_eq!(format_time(1_250.0), "1.25 µs");
        assert_eq!(format_time(40_000_000.0), "40.0 ms");
        assert_eq!(format_time(2.5e9), "2.50 s");
    }

    #[test]
    fn ratios_keep_two_significant_figures() {
        assert_eq!(format_ratio(0.4234), "0.42");
        assert_eq!(format_ratio(3.04), "3.0");
        assert_eq!(format_ratio(17.4), "17");
        assert_eq!(format_ratio(1234.0), "1234");
        assert_eq!(format_ratio(0.003_14), "0.0031");
        assert_eq!(format_ratio(1.0), "1.0");
        assert_eq!(format_ratio(0.009_996), "0.010");
        assert_eq!(format_ratio(9.96), "10");
    }

    #[test]
    fn a_ratio_needs_both_variants() {
        assert_eq!(divide(Some(3.0), Some(4.0)), Some(0.75));
        assert_eq!(divide(Some(3.0), None), None);
        assert_eq!(divide(None, Some(4.0)), None);
        assert_eq!(divide(Some(3.0), Some(0.0)), None);
        let rows = rows(
            &[
                measurement("g", "green", 30.0),
                measurement("g", "tokio", 60.0),
                measurement("g", "threads", 3000.0),
            ],
            &[],
        );
        let [green_tokio, green_2w_tokio_mt, green_threads] = RATIOS.map(|ratio| rows[0].ratio(ratio));
        assert_eq!(green_tokio, Some(0.5));
        assert_eq!(green_2w_tokio_mt, None);
        assert_eq!(green_threads, Some(0.01));
    }

    #[test]
    fn groups_come_in_the_order_they_ran_and_variants_in_column_order() {
        let measurements = [
            measurement("b", "tokio", 1.0),
            measurement("b", "green", 1.0),
            measurement("a", "corosensei", 1.0),
            measurement("a", "threads", 1.0),
            measurement("c", "green", 1.0),
        ];
        let order = ["b/green".to_owned(), "bb/green".to_owned(), "a/threads".to_owned()];
        let rows = rows(&measurements, &order);
        let groups: Vec<&str> = rows.iter().map(|row| row.group.as_str()).collect();
        assert_eq!(groups, ["b", "a", "c"]);
        let variants: Vec<&str> = rows[0].variants.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(variants, ["green", "tokio"]);
        let variants: Vec<&str> = rows[1].variants.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(variants, ["threads", "corosensei"]);
    }

    #[test]
    fn the_table_shows_missing_variants_as_dashes() {
        let rows = rows(
            &[
                measurement("yield_many", "green", 219.0),
                measurement("yield_many", "tokio", 870.0),
                measurement("yield_many", "green_2w", 150.0),
                measurement("switch", "green", 120.0),
                measurement("switch", "corosensei", 29.1),
            ],
            &["yield_many/green".to_owned(), "switch/green".to_owned()],
        );
        let table = render(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert_eq!(
            lines[0],
            "| group      |   green | green_2w |   tokio | tokio_mt | threads | green/tokio \
             | green_2w/tokio_mt | green/threads |"
        );
        assert!(lines[1].starts_with("|:-----------|--------:|"), "{table}");
        assert_eq!(
            lines[2],
            "| yield_many | 21.9 ns |  15.0 ns | 87.0 ns |        – |       – |        0.25 \
             |                 – |             – |"
        );
        assert_eq!(
            lines[3],
            "| switch     | 12.0 ns |        – |       – |        – |       – |           – \
             |                 – |             – |"
        );
        // Every line is as wide as the header, counted in characters.
        assert!(lines.iter().all(|line| line.chars().count() == lines[0].chars().count()), "{table}");
        assert_eq!(other_variants(&rows), ["switch/corosensei 2.91 ns"]);
    }

    #[test]
    fn a_group_per_byte_says_so() {
        let mut per_byte = measurement("copy", "green", 100.0);
        per_byte.throughput = Throughput::Bytes(50);
        let rows = rows(&[per_byte], &[]);
        assert_eq!(rows[0].label(), "copy (per byte)");
        assert_eq!(rows[0].time("green"), Some(2.0));
    }
}
