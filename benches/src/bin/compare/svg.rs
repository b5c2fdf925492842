//! The charts: for each group, a horizontal bar per ratio on a log scale
//! around the 1× line, written as SVG by hand.
//!
//! ```text
//!                 0.1×        1×         10×
//!   yield_many     ▐██████████│              green/tokio 0.25×
//!                        ▐████│              green_2w/tokio_mt 0.71×
//!   spawn_many                │█████▌        green/tokio 2.6×
//!                ← green faster   green slower →
//! ```
//!
//! A bar starts at 1× and ends at the ratio: to the left when green took
//! less time, to the right when it took more. A log scale makes 0.5× and
//! 2× equally long. A missing ratio has no bar, only a `–`.

use std::fmt::Write as _;

use crate::table::{MISSING, Ratio, Row, format_ratio};

/// One kind of bar: a ratio and its colour.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    /// The ratio the bars show.
    pub ratio: Ratio,
    /// The bars' fill colour.
    pub color: &'static str,
}

/// The chart's geometry, in SVG user units.
mod layout {
    /// The width of the whole chart.
    pub const WIDTH: f64 = 980.0;
    /// The left edge of the plot; group names are right-aligned before it.
    pub const LEFT: f64 = 200.0;
    /// The width of the plot, leaving room for value labels beyond it.
    pub const PLOT: f64 = 680.0;
    /// The height of a bar.
    pub const BAR: f64 = 12.0;
    /// The distance from one bar of a group to the next.
    pub const BAR_STEP: f64 = 14.0;
    /// The space between two groups' bars.
    pub const GROUP_GAP: f64 = 10.0;
}

/// Escapes text for SVG: the five characters XML gives a meaning.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(character),
        }
    }
    out
}

/// A logarithmic axis from `low` to `high`, both powers of ten.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LogAxis {
    /// The ratio at the left end.
    low: f64,
    /// The ratio at the right end.
    high: f64,
}

impl LogAxis {
    /// The decades around `values` and around 1×, at least 0.1× to 10×.
    fn around(values: impl Iterator<Item = f64>) -> LogAxis {
        let (least, most) = values
            .filter(|value| value.is_finite() && *value > 0.0)
            .fold((0.1f64, 10.0f64), |(least, most), value| (least.min(value), most.max(value)));
        LogAxis { low: 10f64.powf(least.log10().floor()), high: 10f64.powf(most.log10().ceil()) }
    }

    /// Where `value` falls, from 0 (left end) to 1 (right end).
    fn fraction(self, value: f64) -> f64 {
        let span = (self.high / self.low).log10();
        ((value / self.low).log10() / span).clamp(0.0, 1.0)
    }

    /// The grid: every power of ten, and 2× and 5× of each while the axis
    /// spans few decades; each with whether it is a power of ten.
    fn ticks(self) -> Vec<(f64, bool)> {
        let decades = (self.high / self.low).log10().round() as i32;
        let steps: &[f64] = if decades <= 4 { &[1.0, 2.0, 5.0] } else { &[1.0] };
        let mut ticks = Vec::new();
        for decade in 0..=decades {
            let power = self.low * 10f64.powi(decade);
            for &step in steps {
                if step == 1.0 || decade < decades {
                    ticks.push((power * step, step == 1.0));
                }
            }
        }
        ticks
    }
}

/// A tick's label: `0.1×`, `2×`, `100×`.
fn tick_label(value: f64) -> String {
    let text = if value >= 1.0 { format!("{value:.0}") } else { format!("{}", (value * 1e6).round() / 1e6) };
    format!("{text}×")
}

/// A chart of `series` for each row that has at least one of them, titled
/// `title`, with `notes` (the machine, the build) in small type under it.
pub fn ratio_chart(title: &str, notes: &[String], rows: &[Row], series: &[Series]) -> String {
    use layout::{BAR, BAR_STEP, GROUP_GAP, LEFT, PLOT, WIDTH};
    let rows: Vec<&Row> =
        rows.iter().filter(|row| series.iter().any(|s| row.ratio(s.ratio).is_some())).collect();
    let axis = LogAxis::around(rows.iter().flat_map(|row| series.iter().filter_map(|s| row.ratio(s.ratio))));
    let x_of = |value: f64| LEFT + PLOT * axis.fraction(value);
    let one = x_of(1.0);

    let mut svg = String::new();
    let _ =
        writeln!(svg, r#"<text x="20" y="30" font-size="19" font-weight="bold">{}</text>"#, escape(title));
    let mut y = 50.0;
    for note in notes {
        let _ = writeln!(svg, r##"<text x="20" y="{y}" font-size="12" fill="#444">{}</text>"##, escape(note));
        y += 16.0;
    }
    // The legend.
    y += 12.0;
    let mut x = LEFT;
    for entry in series {
        let name = entry.ratio.name();
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{}" width="14" height="14" fill="{}"/>"#,
            y - 11.0,
            entry.color
        );
        let _ = writeln!(svg, r#"<text x="{}" y="{y}" font-size="13">{}</text>"#, x + 20.0, escape(&name));
        x += 40.0 + 8.0 * name.chars().count() as f64;
    }

    let group = series.len() as f64 * BAR_STEP + GROUP_GAP;
    let top = y + 22.0;
    let bottom = top + rows.len().max(1) as f64 * group;
    // Every other group on a light band, so that a group's bars read
    // together.
    for i in (1..rows.len()).step_by(2) {
        let band = top + i as f64 * group;
        let _ = writeln!(
            svg,
            r##"<rect x="20" y="{band:.1}" width="{}" height="{group:.1}" fill="#f4f4f4"/>"##,
            WIDTH - 40.0
        );
    }
    for (value, decade) in axis.ticks() {
        let x = x_of(value);
        let (stroke, size) = if decade { ("#bbb", 12) } else { ("#e2e2e2", 10) };
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="{stroke}"/>"#
        );
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" font-size="{size}" text-anchor="middle">{}</text>"#,
            bottom + 15.0,
            escape(&tick_label(value))
        );
    }
    if rows.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="middle">no group has these ratios</text>"#,
            LEFT + PLOT / 2.0,
            top + group / 2.0 + 4.0
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let group_top = top + i as f64 * group + GROUP_GAP / 2.0;
        let middle = group_top + series.len() as f64 * BAR_STEP / 2.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="end">{}</text>"#,
            LEFT - 12.0,
            middle + 4.5,
            escape(&row.label())
        );
        for (j, entry) in series.iter().enumerate() {
            let bar_y = group_top + j as f64 * BAR_STEP;
            let text_y = bar_y + BAR - 2.0;
            let Some(ratio) = row.ratio(entry.ratio) else {
                let _ = writeln!(
                    svg,
                    r##"<text x="{:.1}" y="{text_y:.1}" font-size="12" fill="#888">{MISSING}</text>"##,
                    one + 5.0
                );
                continue;
            };
            let end = x_of(ratio);
            // At least a sliver, so that 1.0× still shows a bar.
            let (from, width) = (one.min(end), (end - one).abs().max(1.5));
            let _ = writeln!(
                svg,
                r#"<rect x="{from:.1}" y="{bar_y:.1}" width="{width:.1}" height="{BAR}" fill="{}"/>"#,
                entry.color
            );
            let (label_x, anchor) =
                if ratio < 1.0 { (from - 5.0, "end") } else { (from + width + 5.0, "start") };
            let _ = writeln!(
                svg,
                r#"<text x="{label_x:.1}" y="{text_y:.1}" font-size="11" text-anchor="{anchor}">{}</text>"#,
                escape(&format!("{}×", format_ratio(ratio)))
            );
        }
    }
    // The 1× line over the bars, and which side is which.
    let _ = writeln!(
        svg,
        r##"<line x1="{one:.1}" y1="{:.1}" x2="{one:.1}" y2="{bottom:.1}" stroke="#222" stroke-width="1.5"/>"##,
        top - 6.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="{one:.1}" y="{:.1}" font-size="11" text-anchor="middle">same time</text>"#,
        top - 9.0
    );
    let below = bottom + 34.0;
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{below:.1}" font-size="13" text-anchor="end" fill="#2a7a2a">← green faster</text>"##,
        one - 8.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{below:.1}" font-size="13" fill="#a03030">green slower →</text>"##,
        one + 8.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="#444">median time per element of the green variant over that of the other (log scale)</text>"##,
        LEFT + PLOT / 2.0,
        below + 20.0
    );
    let height = below + 34.0;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"Helvetica, Arial, sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{svg}</svg>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::RATIOS;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape(r#"a<b & "c" > 'd'"#), "a&lt;b &amp; &quot;c&quot; &gt; &apos;d&apos;");
        assert_eq!(escape("µs – plain"), "µs – plain");
    }

    #[test]
    fn the_axis_covers_the_ratios_in_whole_decades() {
        assert_eq!(LogAxis::around([0.5, 2.0].into_iter()), LogAxis { low: 0.1, high: 10.0 });
        assert_eq!(LogAxis::around([0.004, 31.0].into_iter()), LogAxis { low: 0.001, high: 100.0 });
        assert_eq!(LogAxis::around(std::iter::empty()), LogAxis { low: 0.1, high: 10.0 });
        let axis = LogAxis { low: 0.1, high: 10.0 };
        assert_eq!(axis.fraction(1.0), 0.5);
        assert_eq!(axis.fraction(0.1), 0.0);
        assert_eq!(axis.fraction(1000.0), 1.0);
        let labels: Vec<String> = axis.ticks().into_iter().map(|(value, _)| tick_label(value)).collect();
        assert_eq!(labels, ["0.1×", "0.2×", "0.5×", "1×", "2×", "5×", "10×"]);
    }

    #[test]
    fn a_chart_escapes_names_and_marks_missing_ratios() {
        let row = Row {
            group: "a<b>".to_owned(),
            unit: "element",
            variants: vec![("green".to_owned(), 1.0), ("tokio".to_owned(), 4.0)],
        };
        let series =
            [Series { ratio: RATIOS[0], color: "#3182bd" }, Series { ratio: RATIOS[1], color: "#e6550d" }];
        let svg = ratio_chart("t & t", &["machine \"x\"".to_owned()], &[row], &series);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert!(
            svg.contains(">a&lt;b&gt;</text>") && svg.contains("t &amp; t") && svg.contains("&quot;x&quot;")
        );
        assert!(svg.contains(">0.25×</text>"), "the ratio's label");
        assert!(svg.contains(&format!(">{MISSING}</text>")), "no green_2w/tokio_mt");
        assert!(!svg.contains("<b>"), "no raw markup from names");
    }
}
