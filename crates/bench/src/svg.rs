//! The plot of BENCHMARKS.md, written as SVG by hand: throughput against connections and
//! against pool size, side by side.
//!
//! Two small line charts need axes, ticks, polylines and a legend — a few dozen lines of
//! SVG text — so no plotting crate (and its font and image dependencies) is pulled in. The
//! x axes are categorical (1, 8, 32, 128 connections; 10, 1,000, 100,000 tokens), which
//! spaces them evenly, as a log scale would.

use crate::report::{Results, Row};
use std::fmt::Write;

/// One line of a chart: a value per x category (missing ones are skipped).
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
    pub dashed: bool,
}

/// One chart.
pub struct Panel {
    pub title: String,
    pub x_title: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
}

const COLORS: [&str; 6] = [
    "#222222", "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
];
const W: f64 = 440.0;
const H: f64 = 320.0;
const L: f64 = 70.0;
const R: f64 = 20.0;
const T: f64 = 40.0;
const B: f64 = 110.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn panel(out: &mut String, p: &Panel, x0: f64) {
    let max = p
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let top = nice_ceiling(max.max(1.0));
    let (pw, ph) = (W - L - R, H - T - B);
    let n = p.categories.len().max(1);
    let x = |i: usize| x0 + L + pw * (i as f64 + 0.5) / n as f64;
    let y = |v: f64| T + ph * (1.0 - v / top);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" font-size="14" font-weight="bold">{}</text>"#,
        x0 + L,
        esc(&p.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##,
        x0 + L
    );
    for k in 0..=4 {
        let v = top * k as f64 / 4.0;
        let yy = y(v);
        let _ = writeln!(
            out,
            r##"<line x1="{}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            x0 + L,
            x0 + L + pw,
            x0 + L - 6.0,
            yy + 4.0,
            fmt_k(v)
        );
    }
    for (i, c) in p.categories.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            x(i),
            T + ph + 16.0,
            esc(c)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
        x0 + L + pw / 2.0,
        T + ph + 34.0,
        esc(&p.x_title)
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {} {:.1})">requests per second</text>"#,
        x0 + 16.0,
        T + ph / 2.0,
        x0 + 16.0,
        T + ph / 2.0
    );
    for (si, s) in p.series.iter().enumerate() {
        let color = COLORS[si % COLORS.len()];
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let pts: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i), y(v))))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
            pts.join(" ")
        );
        for p in &pts {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(out, r#"<circle cx="{px}" cy="{py}" r="3" fill="{color}"/>"#);
        }
        let ly = T + ph + 52.0 + 14.0 * (si / 2) as f64;
        let lx = x0 + L + (si % 2) as f64 * pw / 2.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{:.1}" font-size="11">{}</text>"#,
            ly - 4.0,
            lx + 18.0,
            ly - 4.0,
            lx + 22.0,
            ly,
            esc(&s.name)
        );
    }
}

/// 1, 2 or 5 × 10^k at or above `v`.
pub fn nice_ceiling(v: f64) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * mag)
}

fn fmt_k(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}k", (v / 1000.0 * 10.0).round() / 10.0)
    } else {
        format!("{v:.0}")
    }
}

/// `100000` as `100,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The panels side by side as one SVG document.
pub fn render(panels: &[Panel]) -> String {
    let width = W * panels.len() as f64;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H}" viewBox="0 0 {width} {H}" font-family="sans-serif">"#
    );
    out.push('\n');
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, p) in panels.iter().enumerate() {
        panel(&mut out, p, W * i as f64);
    }
    out.push_str("</svg>\n");
    out
}

fn rate(res: &Results, id: &str) -> Option<f64> {
    res.row(id).map(|r: &Row| r.summary.rate)
}

/// The two charts of BENCHMARKS.md from a run's rows.
pub fn plot(
    res: &Results,
    conns: &[usize],
    sizes: &[usize],
    sweep_strategy: &str,
    matrix_conns: usize,
) -> String {
    let small = sizes.first().copied();
    let by_conns =
        |name: &str, group: &str, tokens: Option<usize>, strategy: Option<&str>| Series {
            name: name.to_string(),
            values: conns
                .iter()
                .map(|&c| rate(res, &Row::key(group, tokens, strategy, c)))
                .collect(),
            dashed: group == "baseline",
        };
    let first = Panel {
        title: "Throughput vs connections".into(),
        x_title: format!(
            "connections ({} tokens, {sweep_strategy})",
            small.unwrap_or(0)
        ),
        categories: conns.iter().map(|c| c.to_string()).collect(),
        series: vec![
            by_conns("baseline (bare axum)", "baseline", None, None),
            by_conns("token/get", "get", small, Some(sweep_strategy)),
            by_conns(
                "get + report (pairs/s)",
                "get+report",
                small,
                Some(sweep_strategy),
            ),
        ],
    };
    let base = rate(res, &Row::key("baseline", None, None, matrix_conns));
    let mut series = vec![Series {
        name: "baseline (bare axum)".into(),
        values: sizes.iter().map(|_| base).collect(),
        dashed: true,
    }];
    for (group, g) in [("get", "get"), ("get+report", "pairs")] {
        for s in ["round_robin", "best"] {
            series.push(Series {
                name: format!("{g} {s}"),
                values: sizes
                    .iter()
                    .map(|&n| rate(res, &Row::key(group, Some(n), Some(s), matrix_conns)))
                    .collect(),
                dashed: false,
            });
        }
    }
    let second = Panel {
        title: "Throughput vs pool size".into(),
        x_title: format!("tokens in the pool ({matrix_conns} connections)"),
        categories: sizes.iter().map(|&n| thousands(n)).collect(),
        series,
    };
    render(&[first, second])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(10), "10");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(1.5), 2.0);
        assert_eq!(nice_ceiling(37_000.0), 50_000.0);
        assert_eq!(nice_ceiling(51_000.0), 100_000.0);
    }

    #[test]
    fn render_draws_every_series_and_skips_missing_points() {
        let p = Panel {
            title: "t <1>".into(),
            x_title: "x".into(),
            categories: vec!["1".into(), "8".into()],
            series: vec![
                Series {
                    name: "a".into(),
                    values: vec![Some(10.0), Some(20.0)],
                    dashed: false,
                },
                Series {
                    name: "b".into(),
                    values: vec![None, Some(5.0)],
                    dashed: true,
                },
            ],
        };
        let svg = render(&[p]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("t &lt;1&gt;"));
        assert!(svg.contains("stroke-dasharray"));
    }
}
