//! The `--report FILE.html` page: every candidate's replica-hours against SLO attainment
//! with the Pareto front, the front as a table, the winning manifest, and the winner's
//! replay against the seed's (the simulator's own charts and summary rows).
use std::fmt::Write as _;

use plotters::prelude::*;
use podscale_sim::RunOutput;
use podscale_sim::render::Header;
use podscale_sim::series::RunSeries;
use podscale_sim::units::trim_float;

use crate::search::Outcome;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The scatter of every candidate (grey), the front (blue line), the seed (red) and the
/// winner (green), with the goal as a dashed line.
///
/// # Errors
/// When plotters fails to draw (not expected with the SVG backend).
pub fn front_chart(outcome: &Outcome) -> Result<String, String> {
    let c = &outcome.candidates;
    let pct = |i: usize| c[i].score.attainment() * 100.0;
    let hours = |i: usize| c[i].score.replica_hours;
    let x_max = (0..c.len()).map(hours).fold(0.0, f64::max).max(1e-9) * 1.05;
    let y_min = (0..c.len())
        .map(pct)
        .fold(100.0, f64::min)
        .min(outcome.goal * 100.0)
        .floor()
        .max(0.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut ch = ChartBuilder::on(&root)
            .caption(
                "Candidates: replica-hours against SLO attainment; Pareto front in blue",
                ("sans-serif", 17),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..x_max, y_min..100.5)
            .map_err(|e| e.to_string())?;
        ch.configure_mesh()
            .x_desc("replica-hours")
            .y_desc("SLO attainment (%)")
            .x_label_formatter(&|x| trim_float(*x, 1))
            .y_label_formatter(&|y| trim_float(*y, 1))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        let grey = RGBColor(160, 160, 160);
        ch.draw_series((0..c.len()).map(|i| Circle::new((hours(i), pct(i)), 3, grey.filled())))
            .map_err(|e| e.to_string())?;
        let blue = RGBColor(31, 119, 180);
        ch.draw_series(LineSeries::new(
            outcome.front.iter().map(|&i| (hours(i), pct(i))),
            blue.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label("Pareto front")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], blue.stroke_width(2)));
        let goal = outcome.goal * 100.0;
        ch.draw_series(DashedLineSeries::new(
            vec![(0.0, goal), (x_max, goal)],
            6,
            4,
            BLACK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?
        .label("goal")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(1)));
        let red = RGBColor(214, 39, 40);
        ch.draw_series([Circle::new((hours(0), pct(0)), 6, red.filled())])
            .map_err(|e| e.to_string())?
            .label("seed")
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, red.filled()));
        if let Some(w) = outcome.winner {
            let green = RGBColor(44, 160, 44);
            ch.draw_series([Circle::new((hours(w), pct(w)), 6, green.filled())])
                .map_err(|e| e.to_string())?
                .label("winner")
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, green.filled()));
        }
        ch.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(200, 200, 200))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// What the page shows besides the outcome.
#[derive(Debug)]
pub struct Page<'a> {
    pub header: &'a Header,
    /// The seed's and the winner's replays on the searched traffic (seed first).
    pub replays: &'a [RunOutput],
    /// The winner's manifest.
    pub manifest: Option<&'a str>,
    /// Lines about the holdout, if any.
    pub holdout: Option<&'a str>,
}

/// The whole page.
///
/// # Errors
/// When plotters fails to draw (not expected with the SVG backend).
pub fn html(outcome: &Outcome, page: &Page<'_>) -> Result<String, String> {
    let mut out = String::new();
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <title>podscale tune report</title>\n<style>\n\
         body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}\n\
         h1{font-size:1.5em}h2{font-size:1.2em}table{border-collapse:collapse;margin:1em 0}\n\
         td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:right}\n\
         td:first-child,th:first-child,td.l{text-align:left}pre{background:#f6f6f6;padding:1em}\n\
         figure{margin:1.5em 0}\n</style></head><body>\n<h1>podscale tune</h1>\n",
    );
    let h = page.header;
    let _ = writeln!(
        out,
        "<p>{}<br>Model: {}<br>SLO: {} · goal {}%<br>{} candidates evaluated ({} invalid \
         skipped) of {} points · seed {}</p>",
        escape(&h.traffic),
        escape(&h.model),
        escape(&h.slo),
        trim_float(outcome.goal * 100.0, 2),
        outcome.candidates.len(),
        outcome.invalid,
        outcome.space_size,
        h.seed
    );
    if let Some(text) = page.holdout {
        let _ = writeln!(out, "<p><b>Holdout:</b> {}</p>", escape(text));
    }
    let _ = writeln!(out, "<figure>{}</figure>", front_chart(outcome)?);
    out.push_str(
        "<h2>Pareto front</h2>\n<table><tr><th>#</th><th>replica-hours</th>\
         <th>SLO attainment</th><th>meets goal</th><th>changes from the seed</th></tr>\n",
    );
    for &i in &outcome.front {
        let c = &outcome.candidates[i];
        let _ = writeln!(
            out,
            "<tr><td>{}{}</td><td>{}</td><td>{}%</td><td>{}</td><td class=\"l\">{}</td></tr>",
            i,
            if Some(i) == outcome.winner {
                " (winner)"
            } else {
                ""
            },
            trim_float(c.score.replica_hours, 2),
            trim_float(c.score.attainment() * 100.0, 2),
            if c.score.meets(outcome.goal) {
                "yes"
            } else {
                "no"
            },
            escape(&c.changes)
        );
    }
    out.push_str("</table>\n");
    if let Some(m) = page.manifest {
        let _ = writeln!(out, "<h2>Winning manifest</h2>\n<pre>{}</pre>", escape(m));
    }
    if let Some(first) = page.replays.first() {
        out.push_str("<h2>Replay on the searched traffic: winner against the seed</h2>\n<table><tr><th></th>");
        for r in page.replays {
            let _ = write!(out, "<th>{}</th>", escape(&r.summary.policy));
        }
        out.push_str("</tr>\n");
        for (label, cells) in podscale_sim::render::summary_rows(page.replays) {
            let _ = write!(out, "<tr><td>{}</td>", escape(label));
            for c in cells {
                let _ = write!(out, "<td>{}</td>", escape(&c));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
        let series: Vec<&RunSeries> = page.replays.iter().map(|r| &r.series).collect();
        for svg in podscale_sim::report::charts(
            &series,
            first.summary.simulated_seconds,
            Some(first.summary.slo),
        )? {
            let _ = writeln!(out, "<figure>{svg}</figure>");
        }
    }
    out.push_str("</body></html>\n");
    Ok(out)
}
