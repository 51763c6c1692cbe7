//! The HTML report (`--report FILE.html`): one self-contained page with the summary
//! table and SVG charts drawn with plotters: load; replicas (desired, ready, starting)
//! against the oracle; each metric against its target; latency against the SLO; the
//! queue. Every chart overlays all compared policies.
use std::fmt::Write as _;

use plotters::prelude::*;

use crate::render::Header;
use crate::series::{Row, RunSeries};
use crate::sim::RunOutput;
use crate::stats::Slo;
use crate::units::trim_float;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 300;

/// Colours of compared policies, in order.
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];
const GREY: RGBColor = RGBColor(90, 90, 90);

/// One line of a chart.
struct Line {
    name: String,
    color: RGBColor,
    width: u32,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

fn line(name: String, color: RGBColor, rows: &[Row], f: impl Fn(&Row) -> f64) -> Line {
    Line {
        name,
        color,
        width: 2,
        dashed: false,
        points: rows.iter().map(|r| (r.t, f(r))).collect(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Splits a line at NaN values into drawable runs.
fn segments(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for &(x, y) in points {
        if y.is_finite() {
            out.last_mut().expect("never empty").push((x, y));
        } else if !out.last().expect("never empty").is_empty() {
            out.push(Vec::new());
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// The time unit for an axis spanning `secs`.
fn time_unit(secs: f64) -> (f64, &'static str) {
    if secs >= 3.0 * 86_400.0 {
        (86_400.0, "days")
    } else if secs >= 3.0 * 3600.0 {
        (3600.0, "hours")
    } else if secs >= 180.0 {
        (60.0, "minutes")
    } else {
        (1.0, "seconds")
    }
}

fn chart(title: &str, y_desc: &str, x_max: f64, lines: &[Line]) -> Result<String, String> {
    let labelled = lines.iter().filter(|l| !l.name.is_empty()).count();
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .fold(0.0, f64::max);
    // Headroom above the data for the legend.
    let headroom = if labelled > 3 { 1.6 } else { 1.3 };
    let y_max = if y_max > 0.0 { y_max * headroom } else { 1.0 };
    let (unit, unit_name) = time_unit(x_max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..(x_max / unit).max(1e-9), 0f64..y_max)
            .map_err(|e| e.to_string())?;
        c.configure_mesh()
            .x_labels(12)
            .y_labels(6)
            .x_label_formatter(&|x| trim_float(*x, 2))
            .y_label_formatter(&|y| trim_float(*y, 2))
            .x_desc(unit_name)
            .y_desc(y_desc)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        for l in lines {
            let style = ShapeStyle {
                color: l.color.to_rgba(),
                filled: false,
                stroke_width: l.width,
            };
            let points: Vec<(f64, f64)> = l.points.iter().map(|&(x, y)| (x / unit, y)).collect();
            for (i, seg) in segments(&points).into_iter().enumerate() {
                let anno = if l.dashed {
                    c.draw_series(DashedLineSeries::new(seg, 6, 4, style))
                } else {
                    c.draw_series(LineSeries::new(seg, style))
                }
                .map_err(|e| e.to_string())?;
                if i == 0 && !l.name.is_empty() {
                    let color = l.color;
                    let width = l.width;
                    anno.label(l.name.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(width))
                    });
                }
            }
        }
        if labelled > 0 {
            c.configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The report's charts as SVG documents: load; replicas (desired, ready, starting)
/// against the oracle; each metric against its target; latency against the SLO
/// (without `slo`, no SLO lines); the queue. A chart with no data at all is left out
/// (`podscale demo` has no per-step latency nor an oracle).
///
/// # Errors
/// When plotters fails to draw (not expected with the SVG backend).
pub fn charts(series: &[&RunSeries], x_max: f64, slo: Option<Slo>) -> Result<Vec<String>, String> {
    let Some(first) = series.first() else {
        return Err("nothing to report".into());
    };
    let color = |i: usize| COLORS[i % COLORS.len()];
    let mut charts = Vec::new();

    let step = first.step;
    let mut load = line("arrivals".into(), GREY, &first.rows, |r| {
        r.arrivals as f64 / step
    });
    load.width = 1;
    charts.push(chart("Load", "requests / s", x_max, &[load])?);

    let mut lines = Vec::new();
    for (i, s) in series.iter().enumerate() {
        lines.push(line(
            format!("{} desired", s.policy),
            color(i),
            &s.rows,
            |r| f64::from(r.desired),
        ));
        let mut ready = line(format!("{} ready", s.policy), color(i), &s.rows, |r| {
            f64::from(r.ready)
        });
        ready.width = 1;
        lines.push(ready);
        // Dashed, same colour, no legend entry of its own (the chart title names it).
        let mut starting = line(String::new(), color(i), &s.rows, |r| f64::from(r.starting));
        starting.width = 1;
        starting.dashed = true;
        lines.push(starting);
    }
    let has_oracle = first.rows.iter().any(|r| r.oracle.is_finite());
    let mut oracle = line("oracle".into(), RGBColor(0, 0, 0), &first.rows, |r| {
        r.oracle
    });
    oracle.dashed = true;
    lines.push(oracle);
    charts.push(chart(
        if has_oracle {
            "Replicas: desired (thick), ready (thin), starting (dashed); oracle (black, dashed)"
        } else {
            "Replicas: desired (thick), ready (thin), starting (dashed)"
        },
        "replicas",
        x_max,
        &lines,
    )?);

    let mut labels: Vec<String> = Vec::new();
    for s in series {
        for c in &s.columns {
            if !labels.contains(&c.label) {
                labels.push(c.label.clone());
            }
        }
    }
    for label in &labels {
        let mut lines = Vec::new();
        let mut unit = "";
        for (i, s) in series.iter().enumerate() {
            let Some(k) = s.columns.iter().position(|c| &c.label == label) else {
                continue;
            };
            let col = &s.columns[k];
            unit = col.unit;
            lines.push(line(s.policy.clone(), color(i), &s.rows, |r| r.metrics[k]));
            let target = col.target;
            let mut t = line(format!("{} target", s.policy), color(i), &s.rows, |_| {
                target
            });
            t.dashed = true;
            t.width = 1;
            lines.push(t);
        }
        charts.push(chart(
            &format!("{label} as the controller read it; target dashed"),
            if unit.is_empty() { "value" } else { "percent" },
            x_max,
            &lines,
        )?);
    }

    let mut lines = Vec::new();
    for (i, s) in series.iter().enumerate() {
        lines.push(line(
            format!("{} latency p95", s.policy),
            color(i),
            &s.rows,
            |r| r.latency_p95,
        ));
        let mut ttft = line(format!("{} TTFT p95", s.policy), color(i), &s.rows, |r| {
            r.ttft_p95
        });
        ttft.width = 1;
        lines.push(ttft);
    }
    let has_latency = lines
        .iter()
        .any(|l| l.points.iter().any(|p| p.1.is_finite()));
    for (name, v) in slo.map_or_else(Vec::new, |slo| {
        vec![("SLO latency", slo.e2e), ("SLO TTFT", slo.ttft)]
    }) {
        let mut l = line(name.into(), RGBColor(0, 0, 0), &first.rows, |_| v);
        l.dashed = true;
        l.width = 1;
        lines.push(l);
    }
    if has_latency {
        charts.push(chart(
            "Latency and TTFT (p95 of requests completed in each step) against the SLO",
            "seconds",
            x_max,
            &lines,
        )?);
    }

    let lines: Vec<Line> = series
        .iter()
        .enumerate()
        .map(|(i, s)| line(s.policy.clone(), color(i), &s.rows, |r| r.waiting as f64))
        .collect();
    charts.push(chart(
        "Requests waiting (Service and replica queues)",
        "requests",
        x_max,
        &lines,
    )?);
    Ok(charts)
}

/// The whole report.
///
/// # Errors
/// When plotters fails to draw (not expected with the SVG backend).
pub fn html(runs: &[RunOutput], header: &Header) -> Result<String, String> {
    let Some(first) = runs.first() else {
        return Err("nothing to report".into());
    };
    let series: Vec<&RunSeries> = runs.iter().map(|r| &r.series).collect();
    let charts = charts(
        &series,
        first.summary.simulated_seconds,
        Some(first.summary.slo),
    )?;
    let mut out = String::new();
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <title>podscale simulate report</title>\n<style>\n\
         body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}\n\
         h1{font-size:1.5em}table{border-collapse:collapse;margin:1em 0}\n\
         td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:right}\n\
         td:first-child,th:first-child{text-align:left}.note{color:#555;font-size:.9em}\n\
         figure{margin:1.5em 0}\n</style></head><body>\n",
    );
    let _ = writeln!(out, "<h1>podscale simulate</h1>");
    let _ = writeln!(
        out,
        "<p>{}<br>Model: {}<br>SLO: {}<br>Oracle: {} · seed {}</p>",
        escape(&header.traffic),
        escape(&header.model),
        escape(&header.slo),
        escape(&header.oracle),
        header.seed
    );
    out.push_str("<table><tr><th></th>");
    for r in runs {
        let _ = write!(out, "<th>{}</th>", escape(&r.summary.policy));
    }
    out.push_str("</tr>\n");
    for (label, cells) in crate::render::summary_rows(runs) {
        let _ = write!(out, "<tr><td>{}</td>", escape(label));
        for c in cells {
            let _ = write!(out, "<td>{}</td>", escape(&c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    for svg in charts {
        let _ = writeln!(out, "<figure>{svg}</figure>");
    }
    out.push_str(
        "<p class=\"note\">Decisions come from podscale's HPA engine (the algorithm of \
         kube-controller-manager), run at every sync on the simulated metrics. Replicas \
         and latencies come from the server model; see <code>podscale simulate \
         --print-model</code>.</p>\n</body></html>\n",
    );
    Ok(out)
}
