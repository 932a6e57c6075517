//! Bar charts drawn on the server as inline SVG: successes and failures stacked per time bucket,
//! with a title and an accessible name that say the totals. No style attributes: the colours
//! come from `svg.chart .ok` and `.bad` in the console's style sheet.

use crate::service::dashboard::Bucket;
use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 22.0;

/// Escapes text for SVG/HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// What a chart shows and how its buckets are named.
#[derive(Debug, Clone, Copy)]
pub struct ChartSpec<'a> {
    /// The element id (its title's id derives from it).
    pub id: &'a str,
    /// What the chart shows, e.g. "Provisioning in the last 24 hours".
    pub title: &'a str,
    /// Label every this many buckets on the time axis (the first and then every n-th).
    pub label_every: usize,
}

/// Draws `buckets` as stacked bars (successes below, failures above). `label` names a bucket
/// (axis labels and each bar's tooltip). The text given is escaped.
pub fn bar_chart(spec: &ChartSpec<'_>, buckets: &[Bucket], label: impl Fn(&Bucket) -> String) -> String {
    let succeeded: i64 = buckets.iter().map(|b| b.succeeded).sum();
    let failed: i64 = buckets.iter().map(|b| b.failed).sum();
    let max = buckets.iter().map(|b| b.succeeded + b.failed).max().unwrap_or(0).max(1);
    let summary = format!("{}: {succeeded} succeeded, {failed} failed", spec.title);
    let id = escape(spec.id);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}" aria-labelledby="{id}-title" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{label}</title>"#,
        label = escape(&summary),
    );
    // The legend, in the top margin.
    let lx = WIDTH - RIGHT - 150.0;
    let _ = write!(
        svg,
        r#"<rect class="ok" x="{lx}" y="4" width="10" height="10"/><text x="{}" y="13">succeeded</text><rect class="bad" x="{}" y="4" width="10" height="10"/><text x="{}" y="13">failed</text>"#,
        lx + 14.0,
        lx + 80.0,
        lx + 94.0
    );
    let plot_height = HEIGHT - TOP - BOTTOM;
    let base = TOP + plot_height;
    // Axis: the baseline, the top line with the largest count.
    let _ = write!(
        svg,
        r#"<line x1="{LEFT}" y1="{base}" x2="{x2}" y2="{base}"/><line x1="{LEFT}" y1="{TOP}" x2="{x2}" y2="{TOP}"/><text x="{tx}" y="{ty}" text-anchor="end">{max}</text><text x="{tx}" y="{base}" text-anchor="end">0</text>"#,
        x2 = WIDTH - RIGHT,
        tx = LEFT - 4.0,
        ty = TOP + 4.0,
    );
    let slot = (WIDTH - LEFT - RIGHT) / buckets.len().max(1) as f64;
    let bar = (slot - 2.0).max(1.0);
    let scale = plot_height / max as f64;
    let every = spec.label_every.max(1);
    for (i, bucket) in buckets.iter().enumerate() {
        let x = LEFT + slot * i as f64 + 1.0;
        let name = escape(&label(bucket));
        let ok_h = bucket.succeeded as f64 * scale;
        let bad_h = bucket.failed as f64 * scale;
        let _ = write!(
            svg,
            r#"<g><title>{name}: {} succeeded, {} failed</title>"#,
            bucket.succeeded, bucket.failed
        );
        if bucket.succeeded > 0 {
            let _ = write!(
                svg,
                r#"<rect class="ok" x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{ok_h:.1}"/>"#,
                base - ok_h
            );
        }
        if bucket.failed > 0 {
            let _ = write!(
                svg,
                r#"<rect class="bad" x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{bad_h:.1}"/>"#,
                base - ok_h - bad_h
            );
        }
        svg.push_str("</g>");
        if i % every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{name}</text>"#,
                x + bar / 2.0,
                HEIGHT - 6.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn bucket(hour: u8, succeeded: i64, failed: i64) -> Bucket {
        Bucket {
            start: datetime!(2026-03-01 00:00 UTC) + time::Duration::hours(hour.into()),
            succeeded,
            failed,
        }
    }

    const SPEC: ChartSpec<'static> = ChartSpec {
        id: "chart-hours",
        title: "Last <24> hours & \"more\"",
        label_every: 2,
    };

    #[test]
    fn bars_are_stacked_and_scaled_to_the_largest() {
        let buckets = [bucket(0, 3, 1), bucket(1, 0, 0), bucket(2, 0, 2)];
        let svg = bar_chart(&SPEC, &buckets, |b| format!("{:02}:00", b.start.hour()));
        assert!(svg.starts_with(r#"<svg class="chart" id="chart-hours""#), "{svg}");
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains("3 succeeded, 3 failed"), "totals in the name: {svg}");
        // One legend swatch each, then the bars.
        assert_eq!(svg.matches(r#"class="ok""#).count(), 1 + 1);
        assert_eq!(svg.matches(r#"class="bad""#).count(), 1 + 2);
        // The tallest bar (4) fills the plot, up to its top at y=20.
        assert!(svg.contains(r#"<rect class="bad" x="41.0" y="20.0""#), "{svg}");
        assert!(svg.contains("<title>02:00: 0 succeeded, 2 failed</title>"));
        // Labels on buckets 0 and 2 only.
        assert!(svg.contains(">00:00</text>") && svg.contains(">02:00</text>") && !svg.contains(">01:00</text>"));
        assert!(!svg.contains("style="));
        assert_eq!(svg.matches("<g>").count(), svg.matches("</g>").count());
    }

    #[test]
    fn text_is_escaped() {
        let svg = bar_chart(&SPEC, &[bucket(0, 1, 0)], |_| "<b>&'".into());
        assert!(svg.contains("Last &lt;24&gt; hours &amp; &quot;more&quot;: 1 succeeded, 0 failed"));
        assert!(svg.contains("&lt;b&gt;&amp;&#39;"));
        assert!(!svg.contains("<b>"));
    }

    #[test]
    fn an_empty_chart_draws_axes_only() {
        let svg = bar_chart(&SPEC, &[bucket(0, 0, 0), bucket(1, 0, 0)], |_| String::new());
        assert_eq!(svg.matches("<rect").count(), 2, "the legend only");
        assert!(svg.contains("0 succeeded, 0 failed"));
        assert!(svg.ends_with("</svg>"));
    }
}
